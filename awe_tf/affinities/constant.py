"""Constant affinity G_ij = c: the linear embedding model WSABIE (paper, eq. 1)."""

from __future__ import annotations

import tensorflow as tf

from awe_tf.affinities.base import Affinity, pair_dots, pair_queries, positive_weight, register


@register("constant", short="c")
class Constant(Affinity):
    """G_ij(x, y) = c, so f(x, y) = c x^T U^T V y (WSABIE when c = 1).

    Cost: scoring B inputs against N labels is one ``[B, d] x [d, N]`` product after a
    ``[B, L, d]`` gather-and-sum; training pairs cost ``O(B (L + M K) d)``
    forward and ``O(B (L + M) d)`` backward (only each pair's first violator is differentiated).

    Args:
        c: the constant weight.
    """

    def __init__(self, c: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.c = positive_weight(c)

    @property
    def zero_at_start(self) -> bool:
        return self.c == 0

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        """c (x^T U) per pair, ``[B, M, d]``, without the pair's own item where it has one."""
        return self.c * pair_queries(features, weights, self_position)

    def pair_scores(self, pair_inputs, labels, label_ids=None):
        return pair_dots(labels, pair_inputs)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        query = self.c * tf.reduce_sum(features * weights[..., None], axis=1)
        return tf.matmul(query, labels, transpose_b=True)

    def scalar_form(self):
        return (self.c, 0.0, 0.0, 0.0)

    def get_config(self):
        return {**super().get_config(), "c": self.c}
