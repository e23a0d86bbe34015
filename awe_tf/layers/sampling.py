"""Negative sampling for WARP: K uniform label draws per positive pair, with the draws that hit
one of the example's positives marked (the counterpart of TFRS's ``RemoveAccidentalHits``)."""

from __future__ import annotations

import tensorflow as tf

DENSE_ENTRIES = 1 << 22  # the largest [B, |Y| + 1] table of positives (bytes) built to test draws against


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
        positives, sorted and padded with |Y| (so the list can be searched)."""
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        seed = tf.stack([tf.cast(self.seed * 1000 + replica, tf.int64), tf.cast(step, tf.int64)])
        shape = tf.shape(label_ids)
        ids = tf.random.stateless_uniform(
            [shape[0], shape[1] * self.num_negatives], seed=seed, minval=0, maxval=self.n_labels,
            dtype=tf.int32, alg="philox",  # one algorithm everywhere: XLA's default differs from the CPU's
        )
        out = [shape[0], shape[1], self.num_negatives]
        return tf.reshape(ids, out), tf.reshape(self._not_positive(label_ids, ids), out)

    def _not_positive(self, label_ids, ids):
        """``[B, N]`` whether each draw ``ids`` ``[B, N]`` is not one of its example's positives:
        read from a ``[B, |Y| + 1]`` table of them where it holds at most :data:`DENSE_ENTRIES`
        entries (cheaper than searching), else found by a binary search of the sorted list."""
        shape = tf.shape(label_ids)
        width = self.n_labels + 1

        def table():
            rows = tf.range(shape[0])[:, None] * width
            flat = tf.reshape(rows + label_ids, [-1, 1])  # padding (|Y|) adds up in its own column, never drawn
            counts = tf.scatter_nd(flat, tf.ones_like(flat[:, 0], tf.int8), [shape[0] * width])
            return tf.equal(tf.gather(counts, rows + ids), 0)

        def search():
            where = tf.searchsorted(label_ids, ids, side="left")
            return tf.not_equal(tf.gather(label_ids, tf.minimum(where, shape[1] - 1), batch_dims=1), ids)

        if width > DENSE_ENTRIES:
            return search()
        return tf.cond(tf.cast(shape[0], tf.int64) * width <= DENSE_ENTRIES, table, search)

    def get_config(self):
        return {**super().get_config(), "n_labels": self.n_labels, "num_negatives": self.num_negatives,
                "seed": self.seed}
