"""The WARP ranking loss (Weighted Approximate-Rank Pairwise) as a TFRS task.

For a positive pair (x, y), sequential WARP draws negatives ybar (labels that are not positives
of x) one at a time until one *violates* the margin, f(x, ybar) > f(x, y) - gamma. If that took
N draws, the rank of y is estimated as r = floor((|Y| - |Y_x|) / N) and the pair's loss is

    L(r) * (gamma - f(x, y) + f(x, ybar)),    L(r) = sum_{i <= r} 1/i,

with L(r) held constant under differentiation. Pairs with no violator among the draws add no
loss. Here every pair gets its own K sampled labels, masked where they hit a positive, and the
"first violator" is found for all pairs at once with static shapes. Only the first violator is
differentiated, so the backward pass costs one label per pair, not K.

The ``all_violators`` variant (in the spirit of WMRB, Liu & Natarajan 2017) estimates the rank
from the *fraction* of violators among the K valid draws, r = floor((|Y| - |Y_x|) v / n), and
averages the hinge over every violator instead of taking the first. It uses more of each batch
(smoother gradients) but differentiates all K draws, and its rank estimate is coarser: it
cannot tell ranks below (|Y| - |Y_x|) / K apart, where sequential WARP's estimate can.
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


def _room(n_labels, n_positives):
    return tf.cast(n_labels - n_positives, tf.float32)[:, None]  # |Y| - |Y_x|, [B, 1]


def first_violators(positive, negative, negative_valid, pair_mask, n_labels, n_positives, margin: float = 1.0):
    """Which draw is each pair's first violator, and the rank it implies.

    Args:
        positive: ``[B, M]`` scores f(x, y) of positive pairs.
        negative: ``[B, M, K]`` scores of each pair's K sampled labels, in draw order.
        negative_valid: ``[B, M, K]`` bool, False where a draw hit one of the example's positives.
        pair_mask: ``[B, M]`` bool, False on padding.
        n_labels: |Y|.
        n_positives: ``[B]`` |Y_x|.
        margin: gamma.

    Returns:
        ``(first [B, M] int32, rank [B, M], violated [B, M] bool)``.
    """
    violates = (negative > positive[..., None] - margin) & negative_valid
    violated = tf.reduce_any(violates, axis=-1) & pair_mask
    first = tf.argmax(tf.cast(violates, tf.int32), axis=-1, output_type=tf.int32)
    trials = tf.cumsum(tf.cast(negative_valid, tf.float32), axis=-1)  # valid draws so far
    n_trials = tf.maximum(tf.gather(trials, first[..., None], batch_dims=2)[..., 0], 1.0)
    rank = tf.where(violated, tf.floor(_room(n_labels, n_positives) / n_trials), 0.0)
    return first, rank, violated


def warp_pair_losses(positive, negative, negative_valid, pair_mask, n_labels, n_positives,
                     margin: float = 1.0, all_violators: bool = False):
    """Per-pair WARP losses from the scores of all K draws (shapes as in :func:`first_violators`).

    Returns:
        ``(loss [B, M], rank [B, M], violated [B, M])``: loss 0 where there is no violator.
    """
    hinge = margin - positive[..., None] + negative  # [B, M, K]
    if all_violators:
        violates = (negative > positive[..., None] - margin) & negative_valid
        violated = tf.reduce_any(violates, axis=-1) & pair_mask
        n_violators = tf.reduce_sum(tf.cast(violates, tf.float32), axis=-1)
        n_valid = tf.maximum(tf.reduce_sum(tf.cast(negative_valid, tf.float32), axis=-1), 1.0)
        rank = tf.where(violated, tf.floor(_room(n_labels, n_positives) * n_violators / n_valid), 0.0)
        pair_hinge = tf.reduce_sum(tf.where(violates, hinge, 0.0), axis=-1) / tf.maximum(n_violators, 1.0)
    else:
        first, rank, violated = first_violators(positive, negative, negative_valid, pair_mask,
                                                n_labels, n_positives, margin)
        pair_hinge = tf.gather(hinge, first[..., None], batch_dims=2)[..., 0]
    loss = tf.where(violated, tf.stop_gradient(harmonic(rank)) * pair_hinge, 0.0)
    return loss, rank, violated


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


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class WarpTask(tf.keras.layers.Layer, tfrs.tasks.Task):
    """WARP as a TFRS task: a layer that owns the loss and its training metrics.

    The returned loss is the *sum* over the batch's pairs (each pair's gradient has the same
    size whatever the batch, as in the paper's per-pair SGD). Metrics: ``warp_loss`` (mean per
    pair), ``violation_rate`` (share of pairs with a violator) and ``rank_estimate``.

    Args:
        margin: gamma.
        all_violators: the all-violators variant (module docstring).
    """

    def __init__(self, margin: float = 1.0, all_violators: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.margin = float(margin)
        self.all_violators = bool(all_violators)
        self.loss_tracker = PairMean(name="warp_loss")
        self.violation_tracker = PairMean(name="violation_rate")
        self.rank_tracker = PairMean(name="rank_estimate")

    def select(self, positive, negative, negative_valid, pair_mask, n_labels, n_positives):
        """The first violator of each pair (:func:`first_violators`) with this task's margin."""
        return first_violators(positive, negative, negative_valid, pair_mask, n_labels, n_positives, self.margin)

    def call(self, positive, negative, negative_valid, pair_mask, n_labels, n_positives,
             violator=None, training=False):
        """The summed loss.

        With ``violator = (first, rank, violated, violator_score)`` (sequential WARP, the first
        violator's score computed with gradient by the caller), ``negative`` is only used to
        have found it; otherwise the loss is computed from ``negative`` directly.
        """
        if violator is not None and not self.all_violators:
            _, rank, violated, violator_score = violator
            hinge = self.margin - positive + violator_score
            loss = tf.where(violated, tf.stop_gradient(harmonic(rank)) * hinge, 0.0)
        else:
            loss, rank, violated = warp_pair_losses(
                positive, negative, negative_valid, pair_mask, n_labels, n_positives,
                self.margin, self.all_violators,
            )
        pairs = tf.cast(pair_mask, tf.float32)
        self.loss_tracker.update_state(loss, sample_weight=pairs)
        self.violation_tracker.update_state(tf.cast(violated, tf.float32), sample_weight=pairs)
        self.rank_tracker.update_state(rank, sample_weight=tf.cast(violated, tf.float32))
        return tf.reduce_sum(loss)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "all_violators": self.all_violators}
