"""Reduced-rank ridge regression (awe_tf.baselines.ridge) against NumPy's own solve, and as a
linear model (awe_tf.training.closed_form.ridge_start)."""

import numpy as np
import pytest
import scipy.sparse as sp

from awe_tf.baselines import ReducedRankRidge, ridge
from awe_tf.data import load_dataset
from awe_tf.training import ModelConfig, ridge_start


def _data(rows=120, features=30, labels=8, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((rows, features))
    Y = (Z @ rng.standard_normal((features, labels)) + rng.standard_normal((rows, labels)) > 1.0).astype(float)
    return Z, Y


def _ridge(Z, Y, penalty):
    return np.linalg.solve(Z.T @ Z + penalty * np.eye(Z.shape[1]), Z.T @ Y)


@pytest.mark.parametrize("penalty", [0.01, 1.0, 100.0])
def test_uncut_it_is_ridge_regression(penalty):
    """Rank at least |Y|: P Q^T is ridge's W, whether Z comes sparse or dense."""
    Z, Y = _data()
    for given in (Z, sp.csr_matrix(Z)):
        P, Q = ReducedRankRidge(rank=8, basis=40).fit(given, sp.csr_matrix(Y)).factors(penalty)
        np.testing.assert_allclose(P @ Q.T, _ridge(Z, Y, penalty), atol=1e-10)
        np.testing.assert_allclose(Q.T @ Q, np.eye(8), atol=1e-10)


def test_cut_to_rank_r_it_predicts_the_best_rank_r_approximation_of_ridges_predictions():
    """Z P Q^T is the truncated SVD of ridge's predictions Z W (Eckart-Young), Q orthonormal."""
    Z, Y = _data(labels=12)
    P, Q = ReducedRankRidge(rank=3, basis=40).fit(Z, Y).factors(1.0)
    assert P.shape == (30, 3) and Q.shape == (12, 3)
    left, s, right = np.linalg.svd(Z @ _ridge(Z, Y, 1.0), full_matrices=False)
    np.testing.assert_allclose(Z @ P @ Q.T, (left[:, :3] * s[:3]) @ right[:3], atol=1e-9)
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-10)


def _within_top(Z, Y, penalty, size):
    """Ridge's predictions with W restricted to the span of Z's top ``size`` right singular vectors."""
    E = np.linalg.svd(Z, full_matrices=False)[2][:size].T
    return Z @ E @ _ridge(Z @ E, Y, penalty)


def test_with_more_columns_than_the_basis_it_solves_in_the_top_singular_vectors(monkeypatch):
    """Z of rank 10 with 200 columns and a basis of 15: the range finder spans Z's row space, so
    the predictions are ridge's exactly; with a basis of 4 they are ridge's within Z's top 4
    right singular vectors. Z is read 7 rows at a time, as a large Z is read in blocks, and is
    taken as past the columns whose basis is exact."""
    monkeypatch.setattr(ridge, "BLOCK_ROWS", 7)
    monkeypatch.setattr(ridge, "EXACT_COLUMNS", 0)
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((150, 10)) @ rng.standard_normal((10, 200))
    Y = (rng.random((150, 6)) < 0.3).astype(float)
    P, Q = ReducedRankRidge(rank=6, basis=15).fit(sp.csr_matrix(Z), Y).factors(0.5)
    np.testing.assert_allclose(Z @ P @ Q.T, Z @ _ridge(Z, Y, 0.5), atol=1e-8)
    P, Q = ReducedRankRidge(rank=6, basis=4).fit(Z, Y).factors(0.5)
    np.testing.assert_allclose(Z @ P @ Q.T, _within_top(Z, Y, 0.5, 4), atol=1e-6)


def test_on_a_full_rank_z_the_power_iterations_find_the_top_singular_vectors(monkeypatch):
    """Z of full rank (80 columns) whose singular values fall by a tenth from one to the next: a
    basis of 10 found by the range finder gives the predictions of ridge within Z's exact top 10
    right singular vectors (without power iterations, or with one, the error is 10 to 10,000 times
    larger)."""
    monkeypatch.setattr(ridge, "EXACT_COLUMNS", 0)
    rng = np.random.default_rng(2)
    left = np.linalg.qr(rng.standard_normal((300, 80)))[0]
    right = np.linalg.qr(rng.standard_normal((80, 80)))[0]
    Z = (left * 0.9 ** np.arange(80)) @ right.T
    Y = (rng.random((300, 5)) < 0.3).astype(float)
    P, Q = ReducedRankRidge(rank=5, basis=10).fit(Z, Y).factors(1e-3)
    expected = _within_top(Z, Y, 1e-3, 10)
    np.testing.assert_allclose(Z @ P @ Q.T, expected, atol=1e-6 * np.abs(expected).max())


def test_up_to_the_exact_columns_the_basis_is_every_direction_whatever_its_size(monkeypatch):
    """A flat spectrum (a full-rank Z whose singular values barely fall) with a basis of 5: at most
    EXACT_COLUMNS columns it is ridge exactly, past them ridge within the 5 directions found."""
    Z, Y = _data(features=40)
    P, Q = ReducedRankRidge(rank=8, basis=5).fit(Z, Y).factors(1.0)
    np.testing.assert_allclose(Z @ P @ Q.T, Z @ _ridge(Z, Y, 1.0), atol=1e-9)
    monkeypatch.setattr(ridge, "EXACT_COLUMNS", 39)
    P, Q = ReducedRankRidge(rank=8, basis=5).fit(Z, Y).factors(1.0)
    assert np.abs(Z @ P @ Q.T - Z @ _ridge(Z, Y, 1.0)).max() > 0.1


def test_bad_settings_are_refused():
    Z, Y = _data()
    with pytest.raises(ValueError, match="rank and basis must be at least 1"):
        ReducedRankRidge(rank=0)
    with pytest.raises(ValueError, match="Z has 120 rows and Y 119"):
        ReducedRankRidge().fit(Z, Y[:-1])
    with pytest.raises(ValueError, match="the penalty must be above 0"):
        ReducedRankRidge().fit(Z, Y).factors(0.0)


def test_as_a_model_it_ranks_as_ridge_on_the_models_inputs_within_the_max_norm(data_dir):
    """Emotions (numeric columns the model standardises, 6 labels, d = 16 >= |Y|): each row's scores
    are ridge's on the model's inputs and a constant column, times one positive factor; the bias
    row holds the labels' intercepts; no row of U or V passes max_norm; dimensions past |Y| are 0."""
    split = load_dataset("emotions")
    X = split.test.X[:100]
    for max_norm in (3.0, 0.05):
        model = ridge_start(split.train, ModelConfig(dimension=16, max_norm=max_norm, affinity="knn:k=20"), 10.0)
        assert model.affinity.reference_part() is None  # G = 1 whatever affinity the settings name
        Z = np.asarray(model.prepare(split.train.X).todense())
        with_bias = np.hstack([Z, np.ones((Z.shape[0], 1))])
        expected = np.hstack([np.asarray(model.prepare(X).todense()), np.ones((100, 1))]) @ _ridge(
            with_bias, split.train.Y.toarray(), 10.0)
        scores = model.score(X)
        factor = (scores * expected).sum() / (expected * expected).sum()  # the one factor, least squares
        assert factor > 0
        np.testing.assert_allclose(scores, factor * expected, atol=1e-4 * np.abs(scores).max())
        U, V = model.U.table.numpy(), model.V.table.numpy()
        assert np.abs(U[split.train.n_features]).max() > 0 and not U[:, 6:].any() and not V[:, 6:].any()
        assert np.linalg.norm(U, axis=1).max() <= max_norm * (1 + 1e-6)
        assert np.linalg.norm(V, axis=1).max() <= max_norm * (1 + 1e-6)
