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

EULER_GAMMA = float(np.euler_gamma)


def harmonic(rank):
    """L(r) = sum_{i <= r} 1/i = digamma(r + 1) + gamma (exact, 0 at r = 0)."""
    rank = tf.cast(rank, tf.float32)
    return tf.math.digamma(rank + 1.0) + EULER_GAMMA


def first_violators(positive, negative, negative_valid, pair_mask, room, margin: float = 1.0):
    """Which draw is each pair's first violator, and the rank it implies.

    Args:
        positive: ``[B, M]`` scores f(x, y) of positive pairs.
        negative: ``[B, M, K]`` scores of each pair's K sampled labels, in draw order.
        negative_valid: ``[B, M, K]`` bool, False where a draw hit one of the example's positives.
        pair_mask: ``[B, M]`` bool, False on padding.
        room: ``[B, 1]`` |Y| - |Y_x|, the labels that could outrank y.
        margin: gamma.

    Returns:
        ``(first [B, M] int32, rank [B, M], violated [B, M] bool)``.
    """
    violates = (negative > positive[..., None] - margin) & negative_valid
    violated = tf.reduce_any(violates, axis=-1) & pair_mask
    first = tf.argmax(tf.cast(violates, tf.int32), axis=-1, output_type=tf.int32)
    trials = tf.cumsum(tf.cast(negative_valid, tf.float32), axis=-1)  # valid draws so far
    n_trials = tf.maximum(tf.gather(trials, first[..., None], batch_dims=2)[..., 0], 1.0)
    rank = tf.where(violated, tf.floor(room / n_trials), 0.0)
    return first, rank, violated


def all_violators(positive, negative, negative_valid, pair_mask, room, margin: float = 1.0):
    """Every violator of each pair: ``(rank [B, M], violated [B, M], mean hinge [B, M])``, the
    rank from the fraction of the valid draws that violate (shapes as in :func:`first_violators`)."""
    violates = (negative > positive[..., None] - margin) & negative_valid
    violated = tf.reduce_any(violates, axis=-1) & pair_mask
    n_violators = tf.reduce_sum(tf.cast(violates, tf.float32), axis=-1)
    n_valid = tf.maximum(tf.reduce_sum(tf.cast(negative_valid, tf.float32), axis=-1), 1.0)
    rank = tf.where(violated, tf.floor(room * n_violators / n_valid), 0.0)
    hinge = margin - positive[..., None] + negative
    mean_hinge = tf.reduce_sum(tf.where(violates, hinge, 0.0), axis=-1) / tf.maximum(n_violators, 1.0)
    return rank, violated, mean_hinge


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class PairMean(tf.keras.metrics.Metric):
    """The weighted mean of per-pair values: what ``tf.keras.metrics.Mean`` computes, for the
    dense ``[B, M]`` values and weights of a WARP step only. Keras converts a metric's
    ``update_state`` with AutoGraph every time a training step is traced; ``Mean``'s general one
    (ragged inputs, broadcasting) took a third of the trace of a WSABIE step, this one is two sums.
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

    The loss of a pair with a violator is L(r) times its hinge, L held constant under
    differentiation; the returned loss is the *sum* over the batch's pairs (each pair's gradient
    has the same size whatever the batch, as in the paper's per-pair SGD). Metrics: ``warp_loss``
    (mean per pair), ``violation_rate`` (share of pairs with a violator), ``rank_estimate``.
    Subclasses say which violators a pair has (:meth:`violations`).

    Args:
        margin: gamma.
    """

    def __init__(self, margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.loss_tracker = PairMean(name="warp_loss")
        self.violation_tracker = PairMean(name="violation_rate")
        self.rank_tracker = PairMean(name="rank_estimate")

    def violations(self, scores_of, positive_ids, negative_ids, negative_valid, pair_mask, room):
        """``(hinge, rank, violated, scored label ids)`` of each pair, all ``[B, M]`` but the
        ids of the labels scored with gradient (``[B, M, n]``).

        Args:
            scores_of: ``(label ids [B, M, N], gradient: bool) -> scores [B, M, N]`` of each
                pair against those labels, differentiable only with ``gradient``.
            positive_ids: ``[B, M, 1]`` each pair's label.
            negative_ids: ``[B, M, K]`` its sampled labels; ``negative_valid`` where they are
                not positives of the example.
            pair_mask: ``[B, M]`` False on padding.
            room: ``[B, 1]`` |Y| - |Y_x|.
        """
        raise NotImplementedError

    def call(self, scores_of, label_ids, negative_ids, negative_valid, n_labels, training=False):
        """The summed loss of a batch's pairs and the ids of the labels scored with gradient.

        Args:
            label_ids: ``[B, M]`` each example's positive labels, padded with ``n_labels``.
            Others: as in :meth:`violations`.
        """
        pair_mask = label_ids < n_labels
        positive_ids = tf.minimum(label_ids, n_labels - 1)[..., None]
        room = tf.cast(n_labels - tf.reduce_sum(tf.cast(pair_mask, tf.int32), axis=1), tf.float32)[:, None]
        hinge, rank, violated, scored = self.violations(scores_of, positive_ids, negative_ids, negative_valid,
                                                        pair_mask, room)
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
    """Sequential WARP: each pair's first violating draw (module docstring). All K draws are
    scored without gradient to find it; then only the positive and that violator are scored
    with gradient, so the backward pass costs one label per pair, not K."""

    def violations(self, scores_of, positive_ids, negative_ids, negative_valid, pair_mask, room):
        scores = scores_of(tf.concat([positive_ids, negative_ids], -1), gradient=False)
        first, rank, violated = first_violators(scores[..., 0], scores[..., 1:], negative_valid, pair_mask, room,
                                                self.margin)
        chosen = tf.gather(negative_ids, first[..., None], batch_dims=2)  # [B, M, 1]
        scored = scores_of(tf.concat([positive_ids, chosen], -1), gradient=True)
        return self.margin - scored[..., 0] + scored[..., 1], rank, violated, chosen


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class AllViolatorsWarp(WarpTask):
    """All-violators WARP: the mean hinge over every violating draw, the rank from their share
    (module docstring); all K draws are differentiated."""

    def violations(self, scores_of, positive_ids, negative_ids, negative_valid, pair_mask, room):
        scores = scores_of(tf.concat([positive_ids, negative_ids], -1), gradient=True)
        rank, violated, hinge = all_violators(scores[..., 0], scores[..., 1:], negative_valid, pair_mask, room,
                                              self.margin)
        return hinge, rank, violated, negative_ids


TASKS = {"warp": FirstViolatorWarp, "warp-all": AllViolatorsWarp}
