"""The WARP ranking loss (Weighted Approximate-Rank Pairwise) as TFRS tasks.

For a positive pair (x, y), sequential WARP draws negatives ybar (labels that are not positives
of x) one at a time until one *violates* the margin, f(x, ybar) > f(x, y) - gamma. If that took
N draws, the rank of y is estimated as r = floor((|Y| - |Y_x|) / N) and the pair's loss is

    L(r) * (gamma - f(x, y) + f(x, ybar)),    L(r) = sum_{i <= r} 1/i,

with L(r) held constant under differentiation. Pairs with no violator among the draws add no
loss. Here every pair gets its own K sampled labels, masked where they hit a positive, and the
"first violator" is found for all pairs at once with static shapes. Only the first violator is
differentiated, so the backward pass costs one label per pair, not K.

The all-violators variant (in the spirit of WMRB, Liu & Natarajan 2017) estimates the rank
from the *fraction* of violators among the K valid draws, r = floor((|Y| - |Y_x|) v / n), and
averages the hinge over every violator instead of taking the first. It uses more of each batch
(smoother gradients) but differentiates all K draws, and its rank estimate is coarser: it
cannot tell ranks below (|Y| - |Y_x|) / K apart, where sequential WARP's estimate can.

:class:`WarpTask` owns what both share (the weight L(r), the summed loss, the metrics); each
variant is a small subclass that says which violators a pair has and what rank they imply.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from awe_tf.config import LOSSES

EULER_GAMMA = float(np.euler_gamma)


def harmonic(rank):
    """L(r) = sum_{i <= r} 1/i = digamma(r + 1) + gamma, 0 at r = 0.

    Example:
        >>> [round(float(value), 4) for value in harmonic([0, 1, 3])]  # 0, 1, 1 + 1/2 + 1/3
        [0.0, 1.0, 1.8333]
    """
    rank = tf.cast(rank, tf.float32)
    return tf.where(rank > 0.0, tf.math.digamma(rank + 1.0) + EULER_GAMMA, 0.0)  # float32's digamma: not 0 at 1


def violations(positive, negative, negative_valid, margin: float = 1.0):
    """``[B, M, K]`` whether each valid draw violates the margin, f(x, ybar) > f(x, y) - gamma."""
    return (negative > positive[..., None] - margin) & negative_valid


def clipped_hinge(hinge):
    """max(0, hinge): a violator's hinge is positive when its scores are read once, as in one
    synchronous step; where U and V change between the violation test's read and the hinge's
    (parameter-server workers updating them meanwhile), a pair that no longer violates adds no
    loss and pushes nothing, as WARP's max(0, .) says."""
    return tf.maximum(hinge, 0.0)


def first_violators(violates, negative_valid, room):
    """Which draw is each pair's first violator, and the rank that implies: floor(room / N), N the
    valid draws up to it. ``(first [B, M] int32, rank [B, M])``; the rank is 0 without a violator.

    Args:
        violates: ``[B, M, K]`` (:func:`violations`), in draw order.
        negative_valid: ``[B, M, K]`` bool, False where a draw hit one of the example's positives.
        room: ``[B, 1]`` |Y| - |Y_x|, the labels that could outrank y.

    Example:
        A pair whose positive scores 0.5 (margin 1: a draw violates above -0.5) and whose four
        draws score -1.0 (no), 0.2 (a positive of the example: not a valid draw), -0.4 and 0.9
        (both violate). The first violator is draw 2, after N = 2 valid draws: r = floor(100 / 2).

        >>> valid = tf.constant([[[True, False, True, True]]])
        >>> violates = violations(tf.constant([[0.5]]), tf.constant([[[-1.0, 0.2, -0.4, 0.9]]]), valid)
        >>> violates.numpy().tolist()
        [[[False, False, True, True]]]
        >>> first, rank = first_violators(violates, valid, room=tf.constant([[100.0]]))
        >>> first.numpy().tolist(), rank.numpy().tolist()
        ([[2]], [[50.0]])
    """
    first = tf.argmax(tf.cast(violates, tf.int32), axis=-1, output_type=tf.int32)
    up_to_first = tf.range(tf.shape(violates)[-1]) <= first[..., None]
    n_trials = tf.maximum(tf.reduce_sum(tf.cast(negative_valid & up_to_first, tf.float32), axis=-1), 1.0)
    return first, tf.where(tf.reduce_any(violates, axis=-1), tf.floor(room / n_trials), 0.0)


def violator_share_rank(violates, negative_valid, room):
    """The rank from the share of the valid draws that violate: floor(room v / n), ``[B, M]``.

    Example:
        :func:`first_violators`' pair: 2 of its 3 valid draws violate, r = floor(100 * 2 / 3).

        >>> valid = tf.constant([[[True, False, True, True]]])
        >>> violates = violations(tf.constant([[0.5]]), tf.constant([[[-1.0, 0.2, -0.4, 0.9]]]), valid)
        >>> violator_share_rank(violates, valid, room=tf.constant([[100.0]])).numpy().tolist()
        [[66.0]]
    """
    n_violators = tf.reduce_sum(tf.cast(violates, tf.float32), axis=-1)
    n_valid = tf.maximum(tf.reduce_sum(tf.cast(negative_valid, tf.float32), axis=-1), 1.0)
    return tf.floor(room * n_violators / n_valid)


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class PairMean(tf.keras.metrics.Metric):
    """The weighted mean of per-pair values: what ``tf.keras.metrics.Mean`` computes, for the
    dense ``[B, M]`` values and weights of a WARP step only. Keras converts a metric's
    ``update_state`` with AutoGraph every time a training step is traced; ``Mean``'s general one
    (ragged inputs, broadcasting) is costly to trace, this one is two sums.
    """

    def __init__(self, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.total = self.add_weight(name="total", initializer="zeros")
        self.count = self.add_weight(name="count", initializer="zeros")

    @tf.autograph.experimental.do_not_convert
    def update_state(self, values, sample_weight):
        values = tf.cast(values, self.dtype)
        sample_weight = tf.cast(sample_weight, self.dtype)
        return tf.group(self.total.assign_add(tf.reduce_sum(values * sample_weight)),
                        self.count.assign_add(tf.reduce_sum(sample_weight)))

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)


class WarpTask(tf.keras.layers.Layer, tfrs.tasks.Task):
    """WARP as a TFRS task: a layer that owns the loss and its training metrics.

    Each pair's K draws are scored (without gradient) to find the ones that violate the margin;
    a pair with a violator costs L(r) times its hinge, L(r) held constant under differentiation.
    Subclasses supply the rest: the rank estimate r (:meth:`rank_estimate`) and the hinge, with
    gradient, of the violators they take (:meth:`hinge`). The returned loss is the *sum* over
    the batch's pairs (each pair's gradient has the same size whatever the batch, as in the
    paper's per-pair SGD). Metrics: ``loss`` (mean per pair), ``violation_rate`` (share of
    pairs with a violator), ``rank_estimate``.

    Args:
        margin: gamma.
    """

    def __init__(self, margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.margin = float(margin)
        # Named "loss", the key Keras' logs give the loss under: its progress bar shows a logged
        # value as it is only where a metric has that name, and averages the others over the steps.
        self.loss_tracker = PairMean(name="loss")
        self.violation_tracker = PairMean(name="violation_rate")
        self.rank_tracker = PairMean(name="rank_estimate")

    def rank_estimate(self, violates, negative_valid, room):
        """The estimated rank ``[B, M]`` of each pair's label from its violating draws
        (``[B, M, K]``), ``room`` ``[B, 1]`` = |Y| - |Y_x|."""
        raise NotImplementedError

    def hinge(self, scores_of, positive_ids, negative_ids, violates):
        """``(hinge [B, M], label ids scored with gradient [B, M, n])``: gamma - f(x, y) +
        f(x, ybar) for the violators this variant takes, differentiable."""
        raise NotImplementedError

    def call(self, scores_of, label_ids, negative_ids, negative_valid, n_labels, training=False):
        """The summed loss of a batch's pairs and the ids of the labels scored with gradient.

        Args:
            scores_of: ``(label ids [B, M, N], gradient: bool) -> scores [B, M, N]`` of each
                pair against those labels, differentiable only with ``gradient``.
            label_ids: ``[B, M]`` each example's positive labels, padded with ``n_labels``.
            negative_ids: ``[B, M, K]`` each pair's sampled labels, in draw order;
                ``negative_valid`` where they are not positives of the example.
            n_labels: |Y|.
        """
        pair_mask = label_ids < n_labels
        positive_ids = tf.minimum(label_ids, n_labels - 1)[..., None]
        room = tf.cast(n_labels - tf.reduce_sum(tf.cast(pair_mask, tf.int32), axis=1), tf.float32)[:, None]
        scores = scores_of(tf.concat([positive_ids, negative_ids], -1), gradient=False)
        violates = violations(scores[..., 0], scores[..., 1:], negative_valid, self.margin)
        violated = tf.reduce_any(violates, axis=-1) & pair_mask
        rank = tf.where(violated, self.rank_estimate(violates, negative_valid, room), 0.0)
        hinge, scored = self.hinge(scores_of, positive_ids, negative_ids, violates)
        loss = tf.where(violated, tf.stop_gradient(harmonic(rank)) * hinge, 0.0)
        pairs = tf.cast(pair_mask, tf.float32)
        self.loss_tracker.update_state(loss, sample_weight=pairs)
        self.violation_tracker.update_state(tf.cast(violated, tf.float32), sample_weight=pairs)
        self.rank_tracker.update_state(rank, sample_weight=tf.cast(violated, tf.float32))
        return tf.reduce_sum(loss), scored

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class FirstViolatorWarp(WarpTask):
    """Sequential WARP: each pair's first violating draw (module docstring); only the positive
    and that violator are scored with gradient, so the backward pass costs one label per pair."""

    def rank_estimate(self, violates, negative_valid, room):
        return first_violators(violates, negative_valid, room)[1]

    def hinge(self, scores_of, positive_ids, negative_ids, violates):
        first = tf.argmax(tf.cast(violates, tf.int32), axis=-1, output_type=tf.int32)
        chosen = tf.gather(negative_ids, first[..., None], batch_dims=2)  # [B, M, 1]
        scores = scores_of(tf.concat([positive_ids, chosen], -1), gradient=True)
        return clipped_hinge(self.margin - scores[..., 0] + scores[..., 1]), chosen


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class AllViolatorsWarp(WarpTask):
    """All-violators WARP: the mean hinge over every violating draw, the rank from their share
    (module docstring); all K draws are differentiated."""

    def rank_estimate(self, violates, negative_valid, room):
        return violator_share_rank(violates, negative_valid, room)

    def hinge(self, scores_of, positive_ids, negative_ids, violates):
        scores = scores_of(tf.concat([positive_ids, negative_ids], -1), gradient=True)
        each = clipped_hinge(self.margin - scores[..., :1] + scores[..., 1:])
        n_violators = tf.maximum(tf.reduce_sum(tf.cast(violates, tf.float32), axis=-1), 1.0)
        return tf.reduce_sum(tf.where(violates, each, 0.0), axis=-1) / n_violators, negative_ids


TASKS = dict(zip(LOSSES, (FirstViolatorWarp, AllViolatorsWarp), strict=True))  # by ModelConfig's loss names
