"""The vectorised WARP loss against a NumPy reference of the sequential rule."""

import numpy as np
import pytest
import tensorflow as tf

from awe_tf.tasks import harmonic, warp_pair_losses
from awe_tf.tasks.warp import PairMean


def sequential_warp(pos, neg, valid, n_labels, n_pos, margin):
    """Algorithm 1 of WSABIE for one pair: draw until a violator, estimate the rank, weight."""
    trials = 0
    for score, ok in zip(neg, valid, strict=False):
        if not ok:  # a draw that hits a positive is redrawn: it is no trial
            continue
        trials += 1
        if score > pos - margin:
            rank = (n_labels - n_pos) // trials
            weight = sum(1.0 / i for i in range(1, rank + 1))
            return weight * (margin - pos + score), rank
    return 0.0, 0


def all_violators_reference(pos, neg, valid, n_labels, n_pos, margin):
    viol = [(s, ok) for s, ok in zip(neg, valid, strict=False) if ok and s > pos - margin]
    n_valid = sum(valid)
    if not viol:
        return 0.0
    rank = int(np.floor((n_labels - n_pos) * len(viol) / max(n_valid, 1)))
    weight = sum(1.0 / i for i in range(1, rank + 1))
    return weight * np.mean([margin - pos + s for s, _ in viol])


def test_harmonic_matches_sum():
    ranks = np.array([0, 1, 2, 3, 10, 1000])
    expected = [sum(1.0 / i for i in range(1, r + 1)) for r in ranks]
    np.testing.assert_allclose(harmonic(ranks).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("all_violators", [False, True])
def test_vectorised_matches_sequential(all_violators):
    rng = np.random.default_rng(3)
    B, M, K, n_labels, margin = 6, 4, 9, 50, 0.5
    pos = rng.normal(size=(B, M)).astype(np.float32)
    neg = rng.normal(size=(B, M, K)).astype(np.float32)
    valid = rng.random((B, M, K)) > 0.2
    pair_mask = rng.random((B, M)) > 0.15
    n_pos = rng.integers(1, 5, size=B)
    loss, rank, violated = warp_pair_losses(
        tf.constant(pos), tf.constant(neg), tf.constant(valid), tf.constant(pair_mask),
        n_labels, tf.constant(n_pos), margin, all_violators,
    )
    for b in range(B):
        for m in range(M):
            if all_violators:
                want = all_violators_reference(pos[b, m], neg[b, m], valid[b, m], n_labels, n_pos[b], margin)
            else:
                want, want_rank = sequential_warp(pos[b, m], neg[b, m], valid[b, m], n_labels, n_pos[b], margin)
                if pair_mask[b, m]:
                    assert rank.numpy()[b, m] == want_rank
            if not pair_mask[b, m]:
                want = 0.0
            assert loss.numpy()[b, m] == pytest.approx(want, rel=1e-4, abs=1e-5), (b, m)
    assert violated.numpy().sum() > 0 and (~violated.numpy() & pair_mask).sum() >= 0


def test_first_violator_by_hand():
    # pos = 1.0, margin 1: draws 0.5 (invalid, a positive), -0.5 (no), 0.2 (violates: 0.2 > 0).
    # Two valid trials -> rank floor((10 - 2) / 2) = 4, L(4) = 1 + 1/2 + 1/3 + 1/4 = 25/12,
    # hinge = 1 - 1 + 0.2 = 0.2, loss = 25/12 * 0.2.
    loss, rank, _ = warp_pair_losses(
        tf.constant([[1.0]]), tf.constant([[[0.5, -0.5, 0.2, 3.0]]]), tf.constant([[[False, True, True, True]]]),
        tf.constant([[True]]), 10, tf.constant([2]), 1.0,
    )
    assert rank.numpy()[0, 0] == 4
    assert loss.numpy()[0, 0] == pytest.approx(25 / 12 * 0.2, rel=1e-5)


def test_gradient_only_through_hinge():
    pos = tf.Variable([[1.0]])
    neg = tf.Variable([[[0.5]]])
    with tf.GradientTape() as tape:
        loss, _, _ = warp_pair_losses(pos, neg, tf.constant([[[True]]]), tf.constant([[True]]), 3,
                                      tf.constant([1]), 1.0)
        total = tf.reduce_sum(loss)
    g_pos, g_neg = tape.gradient(total, [pos, neg])
    # rank floor(2 / 1) = 2 -> L = 1.5 held constant: d/dpos = -1.5, d/dneg = +1.5
    assert g_pos.numpy()[0, 0] == pytest.approx(-1.5)
    assert g_neg.numpy()[0, 0, 0] == pytest.approx(1.5)


def test_pair_mean_is_keras_weighted_mean():
    rng = np.random.default_rng(0)
    ours, keras = PairMean(name="m"), tf.keras.metrics.Mean(name="m")
    for _ in range(3):
        values = rng.normal(size=(4, 5)).astype(np.float32)
        weights = (rng.random((4, 5)) > 0.3).astype(np.float32)
        ours.update_state(values, sample_weight=weights)
        keras.update_state(values, sample_weight=weights)
    assert float(ours.result()) == pytest.approx(float(keras.result()), rel=1e-6)
    ours.reset_state()
    assert float(ours.result()) == 0.0
