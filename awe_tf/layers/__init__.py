"""Embedding towers U (input features) and V (labels)."""

from awe_tf.layers.towers import MaxNormEmbedding

__all__ = ["MaxNormEmbedding"]
