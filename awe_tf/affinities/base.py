"""The shared base of every affinity G.

AWE scores a pair as f(x, y) = sum_ij G_ij(x, y) x_i U_i^T V_j y_j. Here y is a single label j,
so the score of label j is sum_i G_i(x, j) x_i (U_i . V_j). An affinity layer receives the
embedded input features ``E = U[ids]`` (``[B, L, d]``) with their weights ``w`` (``[B, L]``) and
label embeddings, and returns scores; each subclass supplies only its G.

Training scores each of a batch's positive pairs against several labels (the positive itself
and sampled negatives). That happens in two steps, so work that depends only on x is done once
per pair: :meth:`Affinity.pair_inputs` turns the batch's inputs into whatever G needs per pair,
and :meth:`Affinity.pair_scores` scores that against labels.
"""

from __future__ import annotations

import tensorflow as tf


class Affinity(tf.keras.layers.Layer):
    """Base class of G. Subclasses implement the three methods below."""

    def pair_inputs(self, features, weights, self_position):
        """The input side of each training pair, in whatever form :meth:`pair_scores` takes.

        Args:
            features: ``[B, L, d]`` embedded input features ``U_i``.
            weights: ``[B, L]`` feature values ``x_i`` (0 on padding).
            self_position: ``[B, M]`` int, the position in the feature list of a term to drop
                from x for that pair (the label's own item in recommendation data), -1 for none.

        Returns:
            A tensor or nest of tensors; it must be differentiable with respect to
            ``features`` (the training loop stops its gradient where it is not wanted).
        """
        raise NotImplementedError

    def pair_scores(self, pair_inputs, labels):
        """Scores ``[B, M, N]`` of each pair's input against ``labels`` (``[B, M, N, d]``)."""
        raise NotImplementedError

    def score_all(self, features, weights, labels):
        """Scores ``[B, N]`` of every input against every label of ``labels`` (``[N, d]``)."""
        raise NotImplementedError
