"""Negative sampling for WARP: K uniform label draws per positive pair, with the draws that hit
one of the example's positives marked (the counterpart of TFRS's ``RemoveAccidentalHits``)."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class NegativeSampler(tf.keras.layers.Layer):
    """K labels per positive pair, ``[B, M, K]``, drawn uniformly with a stateless RNG keyed on
    (seed, replica, step), so every replica draws its own and a resumed run draws the same; and
    whether each draw is valid (not a positive of the example). WARP skips invalid draws.

    Args:
        n_labels: |Y|.
        num_negatives: K.
        seed: the draws' seed.
    """

    def __init__(self, n_labels: int, num_negatives: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.n_labels, self.num_negatives, self.seed = int(n_labels), int(num_negatives), int(seed)

    def call(self, label_ids, step):
        """``(ids [B, M, K], valid [B, M, K])`` for ``label_ids`` ``[B, M]``: each example's
        positives, sorted and padded with |Y| (so the list doubles as a membership table)."""
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        seed = tf.stack([tf.cast(self.seed * 1000 + replica, tf.int64), tf.cast(step, tf.int64)])
        shape = tf.shape(label_ids)
        ids = tf.random.stateless_uniform(
            [shape[0], shape[1] * self.num_negatives], seed=seed, minval=0, maxval=self.n_labels,
            dtype=tf.int32, alg="philox",  # one algorithm everywhere: XLA's default differs from the CPU's
        )
        where = tf.searchsorted(label_ids, ids, side="left")  # a membership test without a [B, |Y|] mask
        hit = tf.gather(label_ids, tf.minimum(where, shape[1] - 1), batch_dims=1)
        out = [shape[0], shape[1], self.num_negatives]
        return tf.reshape(ids, out), tf.reshape(tf.not_equal(hit, ids), out)

    def get_config(self):
        return {**super().get_config(), "n_labels": self.n_labels, "num_negatives": self.num_negatives,
                "seed": self.seed}
