"""The neighbour vote, f = x^T U^T V y + w N(x, y): its equation against NumPy, its training pair
scores, its round trip, and its two ends on a trained WSABIE (w = 0: WSABIE; w large: k-NN in
WSABIE's space)."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities import parse
from awe_tf.affinities.vote import NeighbourVote
from awe_tf.baselines import KNN
from awe_tf.data import load_dataset
from awe_tf.models import AWEModel
from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative
from awe_tf.training.fit import _training_context
from awe_tf.training.iterative import on_linear_model
from tests.contexts import reference_rows_of, training_pair_scores


def vote_reference(latent, train_X, train_Y, query_X, k, exclude_self=False):
    """N by the equation: sum over the k most cosine-similar training inputs (in the space of
    ``latent``, whose last row is the bias feature's) with a label, of their cosine times their
    labels, over k (with ``exclude_self`` the queries are those rows)."""
    train_X, train_Y = reference_rows_of(train_X, train_Y)
    query_X = train_X if exclude_self else query_X

    def embed(X):
        return X @ latent[:-1] + latent[-1]

    Z, Q = embed(train_X), embed(query_X)
    sims = (Q / np.linalg.norm(Q, axis=1, keepdims=True)) @ (Z / np.linalg.norm(Z, axis=1, keepdims=True)).T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    N = np.zeros((Q.shape[0], train_Y.shape[1]))
    for i, row in enumerate(sims):
        for n in np.argsort(-row)[:k]:
            N[i] += row[n] * train_Y[n] / k
    return N


def test_the_vote_is_the_linear_score_plus_cosine_k_nn_of_the_earlier_space(tmp_path):
    rng = np.random.default_rng(0)
    n, n_features, n_labels, k, w = 30, 6, 5, 4, 2.5
    train_X = rng.random((n, n_features))
    train_Y = (rng.random((n, n_labels)) < 0.4).astype(float)
    query_X = rng.random((7, n_features))
    model = AWEModel(n_features, n_labels, dimension=3, affinity=f"vote:weight={w},k={k}", normalisation="none",
                     input_bias=True)
    latent = rng.normal(size=(n_features + 1, 3)).astype(np.float32)
    model.affinity.set_reference(latent, sp.csr_matrix(train_X), sp.csr_matrix(train_Y), input_bias=True)
    N = vote_reference(latent, train_X, train_Y, query_X, k)
    np.testing.assert_allclose(model.affinity.context(sp.csr_matrix(query_X)).toarray()[:, :n_labels], N,
                               rtol=1e-5, atol=1e-7)
    N_train = vote_reference(latent, train_X, train_Y, None, k, exclude_self=True)
    assert len(N_train) < n  # rows without a label are no one's neighbour
    np.testing.assert_allclose(model.affinity.training_context(np.arange(len(N_train))).toarray()[:, :n_labels],
                               N_train,
                               rtol=1e-5, atol=1e-7)
    U, V = model.U.table.numpy(), model.V.table.numpy()
    want_scores = (query_X @ U[:-1] + U[-1]) @ V.T + w * N  # the bias feature inside the linear score
    assert (N == 0).any()  # labels no neighbour carries keep their linear score
    np.testing.assert_allclose(model.score(query_X), want_scores, rtol=1e-4, atol=1e-5)
    # Training pairs are scored with the same N, read from the padded context.
    scores, labels = training_pair_scores(model, query_X, N)
    np.testing.assert_allclose(scores, np.take_along_axis(want_scores[:, None, :].repeat(2, 1), labels, axis=2),
                               rtol=1e-4, atol=1e-5)
    ids, top = model.top_k(query_X, k=n_labels)  # every label ranked, not only the neighbours'
    np.testing.assert_allclose(top, -np.sort(-want_scores, axis=1), rtol=1e-4, atol=1e-5)
    model.save_model(tmp_path / "vote")
    loaded = AWEModel.load_model(tmp_path / "vote")
    assert isinstance(loaded.affinity, NeighbourVote) and loaded.affinity.weight == w and loaded.affinity.k == k
    np.testing.assert_array_equal(loaded.score(query_X), model.score(query_X))


def test_vote_settings():
    vote = parse("vote:3")
    assert isinstance(vote, NeighbourVote) and vote.weight == 3.0 and vote.k == 20 and not vote.candidates_only
    assert "prior" not in vote.get_config()
    assert NeighbourVote(weight=np.float32(2)).weight == 2.0
    for bad in ("vote:weight=-1", "vote:weight=nan", "vote:k=0"):
        with pytest.raises(ValueError):
            parse(bad)
    with pytest.raises(ValueError, match=r"vote has no setting prior \(it takes k, search, weight\)"):
        parse("vote:prior=1")
    with pytest.raises(ValueError, match="vote has no setting prior"):
        NeighbourVote(prior=True)
    with pytest.raises(ValueError, match="^vote adds to the linear score.*use it alone"):  # a sum would count it twice
        parse("constant:1+vote:3")
    with pytest.raises(ValueError, match="setting weight of vote given twice"):
        parse("vote:weight=3,weight=1")
    with pytest.raises(ValueError, match="a finite number"):
        NeighbourVote(weight=True)


def test_on_a_trained_wsabie_the_vote_runs_from_wsabie_to_k_nn_in_its_space():
    split = load_dataset("corel5k")
    wsabie = fit(split.train, ModelConfig(dimension=16, num_negatives=10), TrainConfig(epochs=2, verbose=0)).model
    X = split.test.X[:300]
    linear = wsabie.score(X)

    def built(weight):
        return on_linear_model(split.train, ModelConfig(dimension=16, num_negatives=10,
                                                        affinity=f"vote:weight={weight},k=20"), wsabie).model

    none = built(0)
    np.testing.assert_array_equal(none.U.table.numpy(), wsabie.U.table.numpy())
    np.testing.assert_allclose(none.score(X), linear, rtol=1e-5, atol=1e-5)  # w = 0 is WSABIE
    knn = KNN(20, transform=wsabie.embed_inputs).fit(split.train).score(X)
    np.testing.assert_allclose(built(2).score(X), linear + 2 * knn / 20, rtol=1e-4, atol=1e-4)
    w = 1e3
    top = built(w).score(X).argmax(axis=1)  # w large: k-NN's best label, WSABIE breaking its ties
    rows = np.arange(len(top))
    best = knn.max(axis=1)
    spread = linear.max(axis=1) - linear.min(axis=1)
    assert (knn[rows, top] >= best - 20 * spread / w - 1e-6).all()  # the vote is knn / 20
    tied = knn >= best[:, None] - 1e-7
    assert (linear[rows, top] >= np.where(tied, linear, -np.inf).max(axis=1) - 1e-3).all()
    assert (tied.sum(axis=1) > 1).any()  # some rows have ties for WSABIE to break


def test_training_rows_without_a_label_are_no_ones_neighbour():
    """A third of Corel5k's training rows lose their labels (as many Mulan rows have none): the
    vote on WSABIE is still the k-NN baseline's in WSABIE's space (which takes only rows with a
    label), and G is trained on with those rows in the training data."""
    split = load_dataset("corel5k")
    Y = split.train.Y.tolil()
    Y[::3] = 0
    train = split.train.with_matrices(Y=Y.tocsr())
    config = ModelConfig(dimension=16, num_negatives=10)
    wsabie = fit(train, config, TrainConfig(epochs=1, verbose=0)).model
    X = split.test.X[:300]
    knn = KNN(20, transform=wsabie.embed_inputs).fit(train).score(X)
    vote = on_linear_model(train, dataclasses.replace(config, affinity="vote:weight=2,k=20"), wsabie).model
    assert vote.affinity.n_reference == train.Y.getnnz(axis=1).astype(bool).sum() < train.n_examples
    N = vote.affinity.context(vote.prepare(X)).toarray()[:, :-1]
    np.testing.assert_allclose(N, knn / 20, rtol=1e-4, atol=1e-6)
    G = _training_context(vote, train, tf.distribute.get_strategy()).toarray()  # what training reads, per row
    labelled = train.Y.getnnz(axis=1) > 0
    np.testing.assert_array_equal(G[labelled], vote.affinity.training_context(np.arange(labelled.sum())).toarray())
    assert not G[~labelled].any() and G[labelled].any(axis=1).all()
    result, steps = fit_iterative(train, dataclasses.replace(config, affinity="knn:k=20"),
                                  TrainConfig(epochs=1, verbose=0), iterations=1)
    assert result.model.affinity.n_reference == vote.affinity.n_reference and len(steps) == 2
