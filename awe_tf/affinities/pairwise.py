"""Affinities that weight each feature-pair term t_i = x_i U_i . V_y separately.

For a label y, f(x, y) = sum_i G_i(x, y) t_i. The shared base computes the terms of every pair
and candidate label (``[B, M, N, L]``, the pair's own item and padding masked out) and each
subclass says only how they combine. Cost: ``O(B M N L d)`` to score candidates in training and
``O(B |Y| L d)`` (memory ``B |Y| L``) to score all labels, L the batch's longest input: the
batch's non-zero features only, never all of |X|.
"""

from __future__ import annotations

import tensorflow as tf

from awe_tf.affinities.base import Affinity
from awe_tf.affinities.constant import pair_queries


class PairwiseAffinity(Affinity):
    """Base of the per-feature-pair affinities: subclasses implement :meth:`combine`."""

    def pair_inputs(self, features, weights, self_position, context=None):
        terms = features * weights[..., None]  # [B, L, d]: x_i U_i
        positions = tf.range(tf.shape(terms)[1])
        own = tf.equal(positions[None, None, :], tf.cast(self_position, tf.int32)[..., None])  # [B, M, L]
        present = tf.not_equal(weights, 0.0)[:, None, :] & ~own
        return terms, present

    def pair_scores(self, pair_inputs, labels, label_ids):
        terms, present = pair_inputs
        t = tf.einsum("bld,bmnd->bmnl", terms, labels)
        return self.combine(t, tf.broadcast_to(present[:, :, None, :], tf.shape(t)))

    def score_all(self, features, weights, labels, context=None):
        terms = features * weights[..., None]
        t = tf.einsum("bld,nd->bnl", terms, labels)
        present = tf.broadcast_to(tf.not_equal(weights, 0.0)[:, None, :], tf.shape(t))
        return self.combine(t, present)

    def combine(self, terms, present):
        """Scores from the feature-pair terms ``[..., L]`` (``present`` False on masked terms)."""
        raise NotImplementedError

    def cost_per_score(self, width: int) -> int:
        return max(1, width)


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class TopK(PairwiseAffinity):
    """Max (eq. 7, ``k = 1``) and top-k: G_i(x, y) = 1 for the k largest terms t_i of the pair,
    0 otherwise, so f(x, y) = the sum of the k largest x_i U_i . V_y. An input with fewer than
    k features sums all of them.

    Args:
        k: how many terms count.
    """

    def __init__(self, k: int = 5, **kwargs):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        self.k = int(k)

    def combine(self, terms, present):
        masked = tf.where(present, terms, -1e30)
        k = tf.minimum(self.k, tf.shape(terms)[-1])
        top = tf.math.top_k(masked, k=k).values
        return tf.reduce_sum(tf.where(top > -1e29, top, 0.0), axis=-1)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class Sigmoid(PairwiseAffinity):
    """G_i(x, y) = s(t_i) per feature pair (eq. 5 with s = sigmoid), so f = sum_i s(t_i) t_i:
    terms that agree strongly count fully, weak or negative ones are damped.

    With ``form="activation"`` the score is the general form of eq. 4, f = sum_i s(t_i) (the
    activation replaces the product instead of gating it).

    Args:
        activation: a Keras activation name (default ``sigmoid``).
        form: ``"gate"`` (f = sum s(t_i) t_i) or ``"activation"`` (f = sum s(t_i)).
    """

    def __init__(self, activation: str = "sigmoid", form: str = "gate", **kwargs):
        super().__init__(**kwargs)
        if form not in ("gate", "activation"):
            raise ValueError(f"form must be 'gate' or 'activation', got {form!r}")
        self.activation = activation
        self.form = form
        self._s = tf.keras.activations.get(activation)

    def combine(self, terms, present):
        value = self._s(terms) * terms if self.form == "gate" else self._s(terms)
        return tf.reduce_sum(tf.where(present, value, 0.0), axis=-1)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "form": self.form}


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class LinearSigmoid(PairwiseAffinity):
    """Linear sigmoid (eq. 6): G = sigmoid(alpha s + beta).

    ``on="score"`` (the paper's form) applies it to the whole score s = x^T U^T V y, so
    f = sigmoid(alpha s + beta) s: one weight per (x, y) that grows with the linear model's
    confidence (beta shifts where the weighting turns on; beta -> -inf gives f -> 0, large beta
    gives back the linear model). ``on="pair"`` applies it to each term, f = sum_i
    sigmoid(alpha t_i + beta) t_i, which can reweight features within one input.

    Args:
        alpha: slope.
        beta: offset.
        on: ``"score"`` or ``"pair"``.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, on: str = "score", **kwargs):
        super().__init__(**kwargs)
        if on not in ("score", "pair"):
            raise ValueError(f"on must be 'score' or 'pair', got {on!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.on = on

    def _weighted(self, score):
        return tf.sigmoid(self.alpha * score + self.beta) * score

    def combine(self, terms, present):  # on="pair"
        return tf.reduce_sum(tf.where(present, self._weighted(terms), 0.0), axis=-1)

    # on="score" needs only x^T U per pair, as the linear model: no per-feature terms.
    def pair_inputs(self, features, weights, self_position, context=None):
        if self.on == "pair":
            return super().pair_inputs(features, weights, self_position, context)
        return pair_queries(features, weights, self_position)

    def pair_scores(self, pair_inputs, labels, label_ids):
        if self.on == "pair":
            return super().pair_scores(pair_inputs, labels, label_ids)
        return self._weighted(tf.einsum("bmd,bmnd->bmn", pair_inputs, labels))

    def score_all(self, features, weights, labels, context=None):
        if self.on == "pair":
            return super().score_all(features, weights, labels, context)
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        return self._weighted(tf.matmul(query, labels, transpose_b=True))

    def cost_per_score(self, width: int) -> int:
        return 1 if self.on == "score" else max(1, width)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "on": self.on}
