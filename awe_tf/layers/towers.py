"""Embedding tables U and V with the max-norm projection of the paper's Algorithm 1."""

from __future__ import annotations

import math

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class MaxNormEmbedding(tf.keras.layers.Layer):
    """A ``rows x dimension`` embedding table (U for input features, V for labels).

    Rows start as N(0, 1/sqrt(d)) draws and are kept inside the unit ball: after each training
    step, :meth:`project` rescales every row that the step touched to norm at most ``max_norm``
    (only those rows, so the cost is per batch, not per table).

    Args:
        rows: number of rows (|X| or |Y|).
        dimension: embedding dimension d.
        max_norm: the radius of the ball rows are projected onto.
        seed: initialiser seed.
    """

    def __init__(self, rows: int, dimension: int, max_norm: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rows = int(rows)
        self.dimension = int(dimension)
        self.max_norm = float(max_norm)
        self.seed = seed

    def build(self, input_shape=None):
        init = tf.keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(self.dimension), seed=self.seed)
        self.table = self.add_weight(
            name="table", shape=(self.rows, self.dimension), initializer=init, trainable=True
        )
        super().build(input_shape)

    def call(self, ids):
        return tf.gather(self.table, ids)

    def project(self, ids) -> None:
        """Rescale rows ``ids`` (any shape; repeats and out-of-range padding ids are ignored)."""
        ids = tf.reshape(ids, [-1])
        ids = tf.boolean_mask(ids, (ids >= 0) & (ids < self.rows))
        ids, _ = tf.unique(ids)
        rows = tf.gather(self.table, ids)
        norms = tf.norm(rows, axis=1, keepdims=True)
        scale = tf.minimum(1.0, self.max_norm / tf.maximum(norms, 1e-12))
        self.table.scatter_update(tf.IndexedSlices(rows * scale, ids))

    def get_config(self):
        return {
            **super().get_config(),
            "rows": self.rows,
            "dimension": self.dimension,
            "max_norm": self.max_norm,
            "seed": self.seed,
        }
