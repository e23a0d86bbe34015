"""The shared base of every affinity G.

AWE scores a pair as f(x, y) = sum_ij G_ij(x, y) x_i U_i^T V_j y_j. Here y is a single label j,
so the score of label j is sum_i G_i(x, j) x_i (U_i . V_j). An affinity layer receives the
embedded input features ``E = U[ids]`` (``[B, L, d]``) with their weights ``w`` (``[B, L]``) and
label embeddings, and returns scores; each subclass supplies only its G.
"""

from __future__ import annotations

import tensorflow as tf


class Affinity(tf.keras.layers.Layer):
    """Base class of G. Subclasses implement :meth:`pair_scores` and :meth:`score_all`."""

    def pair_scores(self, features, weights, self_position, positives, negatives):
        """Scores of training pairs and of their sampled negatives.

        Args:
            features: ``[B, L, d]`` embedded input features ``U_i``.
            weights: ``[B, L]`` feature values ``x_i`` (0 on padding).
            self_position: ``[B, M]`` position in the feature list of a term to drop from x for
                that pair (the label's own item in recommendation data), ``-1`` for none.
            positives: ``[B, M, d]`` embeddings ``V_y`` of each example's positive labels.
            negatives: ``[B, M, K, d]`` embeddings of each pair's sampled negative labels.

        Returns:
            ``(positive_scores [B, M], negative_scores [B, M, K])``.
        """
        raise NotImplementedError

    def score_all(self, features, weights, labels):
        """Scores ``[B, N]`` of every input against every label of ``labels`` (``[N, d]``)."""
        raise NotImplementedError
