"""The WARP tasks against a NumPy reference of the sequential rule (the paper's Algorithm 1)."""

import numpy as np
import pytest
import tensorflow as tf

from awe_tf.tasks import AllViolatorsWarp, FirstViolatorWarp, PairMean, first_violators, harmonic, violations


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
            return weight * (margin - pos + score), rank, True
    return 0.0, 0, False


def all_violators_reference(pos, neg, valid, n_labels, n_pos, margin):
    viol = [s for s, ok in zip(neg, valid, strict=False) if ok and s > pos - margin]
    if not viol:
        return 0.0, 0, False
    rank = int(np.floor((n_labels - n_pos) * len(viol) / max(sum(valid), 1)))
    weight = sum(1.0 / i for i in range(1, rank + 1))
    return weight * np.mean([margin - pos + s for s in viol]), rank, True


def batch(seed=3, B=6, M=4, K=9, n_labels=50):
    """Scores of every (example, pair, label) ``S [B, M, |Y|]``, each example's positives
    (sorted, padded with |Y|) and K draws per pair, some of which hit a positive."""
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(B, M, n_labels)).astype(np.float32)
    label_ids = np.full((B, M), n_labels, np.int32)
    for b in range(B):
        count = rng.integers(1, M + 1)
        label_ids[b, :count] = np.sort(rng.choice(n_labels, count, replace=False))
    negatives = rng.integers(0, n_labels, size=(B, M, K)).astype(np.int32)
    negatives[:, :, 1] = label_ids[:, :1]  # every pair's second draw hits the example's first positive
    for b, m in zip(*np.nonzero(label_ids < n_labels), strict=True):
        if (b + m) % 3 == 0:  # a third of the pairs score far above every draw: no violator
            S[b, m, label_ids[b, m]] = 6.0
    valid = np.stack([~np.isin(negatives[b], label_ids[b]) for b in range(B)])
    return S, label_ids, negatives, valid


def scorer(S):
    def scores_of(label_ids, gradient):
        table = S if gradient else tf.stop_gradient(S)
        return tf.gather(table, label_ids, batch_dims=2)

    return scores_of


@pytest.mark.parametrize("task, reference", [(FirstViolatorWarp, sequential_warp),
                                             (AllViolatorsWarp, all_violators_reference)])
def test_tasks_match_the_reference_pair_by_pair(task, reference):
    S, label_ids, negatives, valid = batch()
    n_labels, margin = S.shape[2], 0.5
    warp = task(margin=margin)
    pair_mask = label_ids < n_labels
    room = tf.constant((n_labels - pair_mask.sum(axis=1))[:, None], tf.float32)
    positive_ids = tf.constant(np.minimum(label_ids, n_labels - 1)[..., None])
    scores = scorer(tf.constant(S))(tf.concat([positive_ids, negatives], -1), gradient=False)
    violates = violations(scores[..., 0], scores[..., 1:], tf.constant(valid), margin)
    violated = tf.reduce_any(violates, axis=-1) & pair_mask
    rank = tf.where(violated, warp.rank_estimate(violates, tf.constant(valid), room), 0.0)  # the variant's hooks
    hinge, _ = warp.hinge(scorer(tf.constant(S)), positive_ids, tf.constant(negatives), violates)
    losses = np.where(violated.numpy(), harmonic(rank).numpy() * hinge.numpy(), 0.0)
    want_total = 0.0
    for b in range(S.shape[0]):
        for m in range(S.shape[1]):
            pos = S[b, m, min(label_ids[b, m], n_labels - 1)]
            want, want_rank, want_violated = reference(pos, S[b, m, negatives[b, m]], valid[b, m], n_labels,
                                                       pair_mask[b].sum(), margin)
            if not pair_mask[b, m]:
                want, want_rank, want_violated = 0.0, 0, False
            assert bool(violated.numpy()[b, m]) == want_violated, (b, m)
            assert rank.numpy()[b, m] == want_rank, (b, m)
            assert losses[b, m] == pytest.approx(want, rel=1e-4, abs=1e-5), (b, m)
            want_total += want
    total, _ = warp(scorer(tf.constant(S)), tf.constant(label_ids), tf.constant(negatives), tf.constant(valid),
                    n_labels)
    assert float(total) == pytest.approx(want_total, rel=1e-4)
    assert 0 < violated.numpy().sum() < pair_mask.sum()  # the batch has pairs of both kinds


def test_harmonic_matches_sum():
    ranks = np.array([0, 1, 2, 3, 10, 1000])
    expected = [sum(1.0 / i for i in range(1, r + 1)) for r in ranks]
    np.testing.assert_allclose(harmonic(ranks).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert harmonic(0).numpy() == 0.0  # exactly: a pair of rank 0 adds nothing (the native engine's table too)


def test_first_violator_by_hand():
    # pos = 1.0, margin 1: draws 0.5 (invalid, a positive), -0.5 (no), 0.2 (violates: 0.2 > 0).
    # Two valid trials, |Y| - |Y_x| = 10 - 2 -> rank floor(8 / 2) = 4.
    valid = tf.constant([[[False, True, True, True]]])
    violates = violations(tf.constant([[1.0]]), tf.constant([[[0.5, -0.5, 0.2, 3.0]]]), valid, 1.0)
    assert violates.numpy().tolist() == [[[False, False, True, True]]]
    first, rank = first_violators(violates, valid, tf.constant([[8.0]]))
    assert int(first[0, 0]) == 2 and float(rank[0, 0]) == 4


def test_gradient_only_through_the_positive_and_the_first_violator():
    # One pair: positive label 0 scores 1.0; draws label 1 (0.5: violates, 0.5 > 1 - 1), label 2.
    # |Y| = 3, |Y_x| = 1: rank floor(2 / 1) = 2, L(2) = 1.5 held constant; loss 1.5 (1 - 1 + 0.5).
    S = tf.Variable([[[1.0, 0.5, 0.9]]])
    with tf.GradientTape() as tape:
        total, scored = FirstViolatorWarp(margin=1.0)(scorer(S), tf.constant([[0]]), tf.constant([[[1, 2]]]),
                                                       tf.constant([[[True, True]]]), 3)
    gradient = tape.gradient(total, S).numpy()[0, 0]
    assert float(total) == pytest.approx(0.75) and scored.numpy().tolist() == [[[1]]]
    np.testing.assert_allclose(gradient, [-1.5, 1.5, 0.0])  # label 2, never the first violator, gets none


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


@pytest.mark.parametrize("task", [FirstViolatorWarp, AllViolatorsWarp])
def test_a_violator_that_no_longer_violates_when_its_hinge_is_read_adds_nothing(task):
    """The violation test and the hinge read the scores twice; where U and V changed in between
    (parameter-server workers), a pair whose violator no longer violates adds no loss and no
    gradient (its hinge was negative: the reported loss went below zero)."""
    S, label_ids, negatives, valid = batch()
    n_labels, margin = S.shape[2], 0.5
    positive_ids = tf.constant(np.minimum(label_ids, n_labels - 1)[..., None])
    before = tf.constant(S)
    scores = scorer(before)(tf.concat([positive_ids, negatives], -1), gradient=False)
    violates = violations(scores[..., 0], scores[..., 1:], tf.constant(valid), margin)
    assert violates.numpy().any()
    after = tf.Variable(S + 10.0 * np.eye(n_labels, dtype=np.float32)[np.minimum(label_ids, n_labels - 1)])
    with tf.GradientTape() as tape:  # every pair's positive now 10 higher: nothing violates when the hinge is read
        hinge, _ = task(margin=margin).hinge(scorer(after), positive_ids, tf.constant(negatives), violates)
        total = tf.reduce_sum(hinge)
    assert float(total) == 0.0 and not np.any(tape.gradient(total, after).numpy())
