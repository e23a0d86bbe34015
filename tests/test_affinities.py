"""Affinities against NumPy references of their equations; specs; sums; iterative k-NN."""

import logging

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities import KNN, Affinity, Constant, Sum, TopK, get, parse, serialize
from awe_tf.affinities.base import context_lookup
from awe_tf.data import load_dataset
from awe_tf.evaluation import evaluate_model
from awe_tf.models import AWEModel
from awe_tf.training import ModelConfig, TrainConfig, fit_iterative
from awe_tf.training.optimiser import adagrad_accumulator
from tests.contexts import reference_rows_of, training_pair_scores


def test_specs():
    knn = parse("knn:k=7")
    assert isinstance(knn, KNN) and knn.k == 7
    both = parse("constant:0.5+knn:k=3")
    assert isinstance(both, Sum) and both.uses_context
    assert [type(c) for c in both.components] == [Constant, KNN] and both.components[0].c == 0.5
    assert isinstance(Constant(1.0) + KNN(3), Sum)
    with pytest.raises(ValueError, match="unknown affinity 'nosuch"):
        parse("nosuch:gamma=1")
    with pytest.raises(ValueError, match=r"knn has no setting q \(it takes k, prior, search\)"):
        parse("knn:q=1")
    with pytest.raises(ValueError, match="k must be positive"):
        parse("knn:k=0")
    assert parse("lowrank:c=0").c == 0.0  # G the learnt factors alone: they start near 0, not at it, and learn


def test_sum_config_round_trip():
    both = parse("constant:2+knn:k=4")
    again = get(serialize(both))
    assert serialize(again) == serialize(both)
    assert again.components[1].k == 4 and again.components[0].c == 2.0


def test_context_lookup():
    ids = tf.constant([[1, 4, 9, 10], [0, 10, 10, 10]])  # |Y| = 10 pads
    weights = tf.constant([[0.5, 0.25, 1.0, 0.0], [0.75, 0.0, 0.0, 0.0]])
    got = context_lookup((ids, weights), tf.constant([[[4, 2], [9, 1]], [[0, 9], [3, 0]]])).numpy()
    np.testing.assert_allclose(got, [[[0.25, 0], [1.0, 0.5]], [[0.75, 0], [0, 0.75]]])


def knn_reference(latent, bias, train_X, train_Y, query_X, k, exclude_self=False):
    """G by the equation: the share of the k most cosine-similar training inputs with label y,
    among those with a label (with ``exclude_self`` the queries are those rows)."""
    train_X, train_Y = reference_rows_of(train_X, train_Y)
    query_X = train_X if exclude_self else query_X

    def embed(X):
        return X @ latent[:-1] + latent[-1] if bias else X @ latent

    Z, Q = embed(train_X), embed(query_X)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    sims = Q @ Z.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    G = np.zeros((Q.shape[0], train_Y.shape[1]))
    for i, row in enumerate(sims):
        for n in np.argsort(-row)[:k]:
            G[i] += train_Y[n] / k
    return G


@pytest.mark.parametrize("prior", [True, False])
def test_knn_affinity_matches_its_equation(prior, tmp_path):
    rng = np.random.default_rng(0)
    n, n_features, n_labels, k = 30, 6, 5, 4
    train_X = rng.random((n, n_features))
    train_Y = (rng.random((n, n_labels)) < 0.4).astype(float)
    query_X = rng.random((7, n_features))
    model = AWEModel(n_features, n_labels, dimension=3, affinity=f"knn:k=4,prior={int(prior)}",
                     normalisation="none", input_bias=True)
    latent = rng.normal(size=(n_features + 1, 3)).astype(np.float32)
    model.affinity.set_reference(latent, sp.csr_matrix(train_X), sp.csr_matrix(train_Y), input_bias=True)
    G = knn_reference(latent, True, train_X, train_Y, query_X, k)
    context = model.affinity.context(sp.csr_matrix(query_X)).toarray()
    np.testing.assert_allclose(context[:, :n_labels], G, rtol=1e-5)
    assert not context[:, n_labels].any()  # the hard match has no offset
    G_train = knn_reference(latent, True, train_X, train_Y, None, k, exclude_self=True)
    assert 0 < model.affinity.n_reference == len(G_train) < n  # rows without a label are no one's neighbour
    G_rows = model.affinity.training_context(np.arange(len(G_train))).toarray()[:, :n_labels]
    np.testing.assert_allclose(G_rows, G_train, rtol=1e-5)
    U, V = model.U.table.numpy(), model.V.table.numpy()
    if prior:  # the bias feature's term U_bias . V_y is a label prior outside G
        want_scores = G * (query_X @ U[:-1] @ V.T) + U[-1] @ V.T
    else:  # the paper's eq. 9 with the bias as one more input feature
        want_scores = G * ((query_X @ U[:-1] + U[-1]) @ V.T)
    assert (G == 0).any()  # some labels have no neighbour: they score 0, or their prior
    np.testing.assert_allclose(model.score(query_X), want_scores, rtol=1e-4, atol=1e-6)
    # Pair scores in training use the same G through the padded context.
    scores, labels = training_pair_scores(model, query_X, G)
    want = np.take_along_axis(want_scores[:, None, :].repeat(2, 1), labels, axis=2)
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-6)
    ids, top = model.top_k(query_X, k=n_labels)  # ranks every label the same way
    np.testing.assert_allclose(top, -np.sort(-want_scores, axis=1), rtol=1e-4, atol=1e-6)
    # Saved and loaded, the model scores new inputs on its own, identically.
    model.save_model(tmp_path / "knn")
    loaded = AWEModel.load_model(tmp_path / "knn")
    np.testing.assert_array_equal(loaded.score(query_X), model.score(query_X))


def test_knn_without_reference_says_how_to_build_it():
    model = AWEModel(4, 3, affinity="knn:k=2")
    with pytest.raises(RuntimeError, match="fit_iterative"):
        model.score(np.ones((1, 4)))


def test_iterative_knn_trains_end_to_end_on_corel5k(retracing_warnings):
    split = load_dataset("corel5k")
    final, steps = fit_iterative(split.train, ModelConfig(dimension=32, num_negatives=10, affinity="knn:k=20"),
                                 TrainConfig(epochs=2, verbose=0), iterations=3, log=lambda line: None)
    assert len(steps) == 4 and final.model is steps[-1].model
    # Each step's new G computes its rows without tracing a graph of its own: no retracing to warn of.
    assert not retracing_warnings()
    linear = evaluate_model(steps[0].model.score, split)["metrics"]["precision@1"]
    awe = evaluate_model(final.model.score, split)["metrics"]["precision@1"]
    assert awe > 0.3 and linear > 0.3, (linear, awe)
    # G of the last step came from the previous step's U.
    np.testing.assert_array_equal(final.model.affinity.latent.numpy(), steps[-2].model.U.table.numpy())
    # Each step continued the optimiser state of the one before: Adagrad's accumulators only grow.
    for before, after in zip(steps[:-1], steps[1:], strict=True):
        for table in ("U", "V"):
            grown = [adagrad_accumulator(step.model.optimizer, getattr(step.model, table).table).numpy()
                     for step in (before, after)]
            assert (grown[1] >= grown[0]).all() and (grown[1] > grown[0]).any(), table


@pytest.mark.parametrize("spec", ["knn:k=5", "constant:0+rbf:k=5"])
def test_a_trained_model_round_trips_through_a_keras_file(spec, tmp_path, caplog):
    """Keras' own format (``model.save("m.keras")``, ``tf.keras.models.load_model``), after
    training has called the model: G's reference set comes back with it."""
    split = load_dataset("corel5k")
    final, _ = fit_iterative(split.train, ModelConfig(dimension=8, num_negatives=5, affinity=spec),
                             TrainConfig(epochs=1, verbose=0), iterations=1, log=lambda line: None)
    final.model.save(tmp_path / "m.keras")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):  # Keras warns through TensorFlow's logger
        loaded = tf.keras.models.load_model(tmp_path / "m.keras")
    X = split.test.X[:40]
    np.testing.assert_array_equal(loaded.score(X), final.model.score(X))
    np.testing.assert_array_equal(loaded.top_k(X, 5)[0], final.model.top_k(X, 5)[0])
    # It comes back compiled, with the optimiser's state, quietly: training can go on from it.
    assert "compile()" not in caplog.text
    assert loaded.optimizer.get_config() == final.model.optimizer.get_config()
    for table in ("U", "V"):
        np.testing.assert_array_equal(adagrad_accumulator(loaded.optimizer, getattr(loaded, table).table).numpy(),
                                      adagrad_accumulator(final.model.optimizer, getattr(final.model, table).table))


def pairwise_reference(name, terms, **options):
    """f from the feature-pair terms t_i = x_i U_i . V_y of one (x, y), by each equation."""
    terms = np.asarray(terms, np.float64)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    if name == "topk":
        rest = options.get("rest", 0.0)
        return (1 - rest) * np.sort(terms)[::-1][: options["k"]].sum() + rest * terms.sum()
    if name == "sigmoid":
        return (sig(terms) * terms).sum()
    if name == "linear-sigmoid-score":
        s = terms.sum()
        return sig(options["alpha"] * s + options["beta"]) * s
    if name == "linear-sigmoid-pair":
        return (sig(options["alpha"] * terms + options["beta"]) * terms).sum()
    raise ValueError(name)


CASES = [
    ("topk:k=2", "topk", {"k": 2}),
    ("max", "topk", {"k": 1}),
    ("topk:k=9", "topk", {"k": 9}),  # more than the features: all of them
    ("topk:k=2,rest=0.25", "topk", {"k": 2, "rest": 0.25}),
    ("topk:k=2,rest=learn", "topk", {"k": 2, "rest": 1.0}),  # a learnt rest starts at 1: the linear model
    ("sigmoid", "sigmoid", {}),
    ("linear-sigmoid:alpha=2,beta=-0.5", "linear-sigmoid-score", {"alpha": 2, "beta": -0.5}),
    ("linear-sigmoid:alpha=1,beta=0.25,on=pair", "linear-sigmoid-pair", {"alpha": 1, "beta": 0.25}),
]


@pytest.mark.parametrize("spec, name, options", CASES)
def test_pairwise_affinities_match_their_equations(spec, name, options):
    rng = np.random.default_rng(1)
    n_features, n_labels = 6, 5
    model = AWEModel(n_features, n_labels, dimension=4, affinity=spec, normalisation="none", input_bias=False)
    U, V = model.U.table.numpy(), model.V.table.numpy()
    X = rng.random((3, n_features)) * (rng.random((3, n_features)) < 0.7)
    X[0, :3] = 0.0  # a sparse row: padding must not count (top-k would pick a 0 over negatives)
    scores = model.score(X)
    for row in range(3):
        ids = np.flatnonzero(X[row])
        for label in range(n_labels):
            terms = X[row, ids] * (U[ids] @ V[label])
            assert scores[row, label] == pytest.approx(pairwise_reference(name, terms, **options), rel=1e-4, abs=1e-5)
    # Training pairs drop the pair's own item (recommendation) from the terms.
    ids = np.array([[0, 2, 5, 0]])
    weights = np.array([[1.0, 0.5, 2.0, 0.0]], np.float32)
    pair_inputs = model.affinity.pair_inputs(tf.gather(U, ids), weights, np.array([[1, -1]], np.int32))
    labels = np.array([[[2, 4], [1, 3]]])
    got = model.affinity.pair_scores(pair_inputs, tf.gather(V, labels), labels).numpy()
    for m, keep in enumerate([[0, 2], [0, 1, 2]]):
        for n in range(2):
            terms = weights[0, keep] * (U[ids[0, keep]] @ V[labels[0, m, n]])
            assert got[0, m, n] == pytest.approx(pairwise_reference(name, terms, **options), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("k, rest", [(1, 0.0), (2, 0.0), (2, 0.5), (1, "learn")])
def test_topk_always_counts_the_bias_feature(k, rest):
    """The always-on bias feature is a label prior: top-k takes the k best input terms plus it,
    in scoring, in training pairs, and through all labels; a rest weights the other input terms,
    never the prior."""
    rng = np.random.default_rng(3)
    n_features, n_labels = 6, 5
    model = AWEModel(n_features, n_labels, dimension=4, affinity=f"topk:k={k},rest={rest}", normalisation="none")
    if rest == "learn":
        model.affinity.rest_weight.assign(0.7)
    r = 0.7 if rest == "learn" else rest

    def top_and_rest(terms):
        return (1 - r) * np.sort(terms)[::-1][:k].sum() + r * terms.sum()
    U, V = model.U.table.numpy(), model.V.table.numpy()
    model.U.table.assign(np.vstack([U[:-1], 3 * U[-1:]]))  # a bias term that would win every place
    U = model.U.table.numpy()
    X = rng.random((3, n_features)) * (rng.random((3, n_features)) < 0.8)
    scores = model.score(X)
    for row in range(3):
        ids = np.flatnonzero(X[row])
        for label in range(n_labels):
            want = top_and_rest(X[row, ids] * (U[ids] @ V[label])) + U[-1] @ V[label]
            assert scores[row, label] == pytest.approx(want, rel=1e-4, abs=1e-5)
    ids = np.array([[0, 2, 5, 1, n_features]])  # the model appends the bias id last
    weights = np.array([[1.0, 0.5, 2.0, 0.7, 1.0]], np.float32)
    own = np.array([[1, -1, 3]], np.int32)
    labels = rng.integers(0, n_labels, size=(1, 3, 2))  # M N = 6 > |Y| = 5: the all-label route
    pair_inputs = model.affinity.pair_inputs(tf.gather(U, ids), weights, own, None, ids)
    by_candidates = model.affinity.pair_scores(pair_inputs, tf.gather(V, labels), labels).numpy()
    by_labels = model.affinity.pair_scores_by_id(pair_inputs, labels, lambda i: tf.gather(V, i), lambda: V).numpy()
    for m in range(3):
        keep = [i for i in range(4) if i != own[0, m]]
        for n in range(2):
            y = labels[0, m, n]
            want = top_and_rest(weights[0, keep] * (U[ids[0, keep]] @ V[y])) + U[-1] @ V[y]
            assert by_candidates[0, m, n] == pytest.approx(want, rel=1e-4, abs=1e-5)
            assert by_labels[0, m, n] == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_topk_learns_its_rest_from_the_linear_model_within_0_and_1():
    """``rest=learn``: G of the terms outside the k is a trainable weight that starts at 1, so a
    top-k model started from a trained WSABIE ranks as it; the optimiser keeps it in [0, 1]."""
    from awe_tf.training import fit

    split = load_dataset("corel5k")
    wsabie = fit(split.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    started = fit(split.train, ModelConfig(dimension=8, num_negatives=3, affinity="topk:k=2,rest=learn"),
                  TrainConfig(epochs=0, verbose=0), init_from=wsabie).model
    rest = started.affinity.rest_weight
    assert any(v is rest for v in started.trainable_variables) and float(rest.numpy()) == 1.0
    X = split.test.X[:40]
    np.testing.assert_allclose(started.score(X), wsabie.score(X), rtol=1e-5, atol=1e-5)
    rest.assign(0.4)  # between: (1 - rest) x the top 2 + rest x all terms, by the equation test's reference
    plain = fit(split.train, ModelConfig(dimension=8, num_negatives=3, affinity="topk:k=2"),
                TrainConfig(epochs=0, verbose=0), init_from=wsabie).model
    np.testing.assert_allclose(started.score(X), 0.6 * plain.score(X) + 0.4 * wsabie.score(X), rtol=1e-4, atol=1e-5)
    started.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=1.0))
    for gradient, bound in ((-10.0, 1.0), (10.0, 0.0)):  # a step past either end stops there
        started.optimizer.apply_gradients([(tf.constant(gradient), rest)])
        assert float(rest.numpy()) == bound
    for bad in (1.5, -0.1, "half", True):
        with pytest.raises(ValueError, match="rest must be a number in"):
            TopK(k=2, rest=bad)


@pytest.mark.parametrize("spec", ["topk:k=1", "topk:k=3", "topk:k=9", "topk:k=3,rest=0.5", "topk:k=2,rest=learn",
                                  "sigmoid", "sigmoid:form=activation",
                                  "sigmoid:rank=2", "linear-sigmoid:beta=0.5,on=pair", "matrix:c=0.5",
                                  "lowrank:rank=2", "constant:0.5+topk:k=2", "linear-sigmoid:beta=0.5"])
def test_scoring_through_all_labels_equals_scoring_candidates(spec):
    """Long inputs (M N > |Y|) score their candidates through all labels, each pair leaving its
    own term out: same scores and gradients as the candidate route, ties and short rows too."""
    rng = np.random.default_rng(5)
    n_features, n_labels = 9, 6
    model = AWEModel(n_features, n_labels, dimension=4, affinity=spec, normalisation="none", input_bias=False)
    affinity = model.affinity
    for weight in affinity.weights:  # move G's parameters away from their flat start
        weight.assign(weight + rng.normal(scale=0.5, size=weight.shape).astype(np.float32))
    ids = np.array([[0, 2, 5, 7, 1, 0], [3, 4, 8, 0, 0, 0], [6, 6, 1, 2, 0, 0]])  # row 2: a tie
    weights = np.array([[1, .5, 2, 1, .3, 0], [1, 1, .7, 0, 0, 0], [1, 1, 2, 1, 0, 0]], np.float32)
    own = np.array([[1, -1, 4, 0], [2, 0, -1, -1], [0, 1, 3, -1]], np.int32)  # [B, M]
    labels = rng.integers(0, n_labels, size=(3, 4, 3))  # M N = 12 > |Y| = 6
    features = tf.gather(model.U.table, ids)
    table = tf.convert_to_tensor(model.V.table)

    def scores(route_table):
        with tf.GradientTape() as tape:
            tape.watch([features, table])
            pair_inputs = affinity.pair_inputs(features, weights, own, None, ids)
            got = affinity.pair_scores_by_id(pair_inputs, labels, lambda i: tf.gather(table, i), route_table)
            loss = tf.reduce_sum(got * rng.normal(size=got.shape).astype(np.float32))
        gradients = tape.gradient(loss, [features, table, *affinity.trainable_weights])  # G's own parameters too
        assert all(g is not None for g in gradients), spec
        return got.numpy(), [tf.convert_to_tensor(g).numpy() for g in gradients]

    state = rng.bit_generator.state
    via_candidates, grads_candidates = scores(None)
    rng.bit_generator.state = state
    via_labels, grads_labels = scores(lambda: table)
    np.testing.assert_allclose(via_labels, via_candidates, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_labels, grads_candidates, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", ["sigmoid", "linear-sigmoid:alpha=1,beta=0.25", "topk:k=5", "topk:k=5,rest=learn"])
def test_pairwise_affinities_train_on_corel5k_and_round_trip(spec, tmp_path):
    from awe_tf.baselines import Popularity
    from awe_tf.training import fit

    split = load_dataset("corel5k")
    result = fit(split.train, ModelConfig(dimension=32, num_negatives=10, affinity=spec),
                 TrainConfig(epochs=4, verbose=0))
    p1 = evaluate_model(result.model.score, split)["metrics"]["precision@1"]
    popular = evaluate_model(Popularity().fit(split.train).score, split)["metrics"]["precision@1"]
    assert p1 > popular + 0.05, (spec, p1, popular)
    result.model.save_model(tmp_path / "m")
    loaded = AWEModel.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(split.test.X[:50]), result.model.score(split.test.X[:50]))


@pytest.mark.parametrize("spec", ["matrix:c=0.5", "lowrank:rank=3,c=1", "sigmoid:rank=2"])
def test_id_indexed_affinities_match_their_equations(spec):
    rng = np.random.default_rng(2)
    n_features, n_labels = 5, 4
    model = AWEModel(n_features, n_labels, dimension=3, affinity=spec, normalisation="none", input_bias=False)
    affinity = model.affinity
    if hasattr(affinity, "G"):
        affinity.G.assign(rng.normal(size=(n_features, n_labels)).astype(np.float32))
        G = affinity.G.numpy()
    else:
        affinity.factors.U_hat.assign(rng.normal(size=affinity.factors.U_hat.shape).astype(np.float32))
        affinity.factors.V_hat.assign(rng.normal(size=affinity.factors.V_hat.shape).astype(np.float32))
        raw = affinity.factors.U_hat.numpy() @ affinity.factors.V_hat.numpy().T
        G = 1 + raw if spec.startswith("lowrank") else 1 / (1 + np.exp(-raw))
    U, V = model.U.table.numpy(), model.V.table.numpy()
    X = rng.random((3, n_features)) * (rng.random((3, n_features)) < 0.8)
    want = np.array([[sum(G[i, y] * X[r, i] * U[i] @ V[y] for i in range(n_features)) for y in range(n_labels)]
                     for r in range(3)])
    np.testing.assert_allclose(model.score(X), want, rtol=1e-4, atol=1e-5)
    ids = np.array([[0, 3, 4]])
    weights = np.array([[1.0, 2.0, 0.5]], np.float32)
    labels = np.array([[[1, 2, 3]]])
    pair_inputs = affinity.pair_inputs(tf.gather(U, ids), weights, np.array([[-1]], np.int32), None, ids)
    got = affinity.pair_scores(pair_inputs, tf.gather(V, labels), labels).numpy()
    for n, y in enumerate(labels[0, 0]):
        expected = sum(G[i, y] * w * U[i] @ V[y] for i, w in zip(ids[0], weights[0], strict=True))
        assert got[0, 0, n] == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("spec", ["matrix", "lowrank:rank=4", "sigmoid:rank=4"])
def test_affinity_parameters_are_learnt_jointly(spec, tmp_path):
    from awe_tf.training import fit

    split = load_dataset("corel5k")
    model_config = ModelConfig(dimension=16, num_negatives=10, affinity=spec)
    result = fit(split.train, model_config, TrainConfig(epochs=1, verbose=0))
    fresh = AWEModel(split.train.n_features, split.train.n_labels, dimension=16, affinity=spec, input_bias=True)
    learnt = [w.numpy() for w in result.model.affinity.trainable_weights]
    initial = [w.numpy() for w in fresh.affinity.trainable_weights]
    assert learnt and all(not np.allclose(a, b) for a, b in zip(learnt, initial, strict=True))
    result.model.save_model(tmp_path / "m")
    loaded = AWEModel.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(split.test.X[:20]), result.model.score(split.test.X[:20]))


def test_matrix_refuses_a_huge_vocabulary():
    with pytest.raises(ValueError, match="lowrank"):
        AWEModel(100_000, 100_000, dimension=2, affinity="matrix")


def rbf_reference(space, train_X, train_Y, query_X, latent, k, gamma, latent_gamma, label_gamma):
    """Eq. 3 / eq. 8 summed over the k training inputs with a label with the largest kernel weight."""
    train_X, train_Y = reference_rows_of(train_X, train_Y)

    def embed(X):
        return X @ latent[:-1] + latent[-1]

    out = np.zeros((query_X.shape[0], train_Y.shape[1]))
    for i, x in enumerate(query_X):
        d_input = ((train_X - x) ** 2).sum(axis=1)
        d_latent = ((embed(train_X) - embed(x[None])) ** 2).sum(axis=1)
        log_k = {"input": -gamma * d_input, "latent": -gamma * d_latent,
                 "hybrid": -gamma * d_input - latent_gamma * d_latent}[space]
        for n in np.argsort(-log_k)[:k]:
            for y in range(train_Y.shape[1]):
                if label_gamma is None:
                    match = train_Y[n, y]
                else:
                    onehot = np.eye(train_Y.shape[1])[y]
                    match = np.exp(-label_gamma * ((onehot - train_Y[n]) ** 2).sum())
                out[i, y] += np.exp(log_k[n]) * match
    return out


@pytest.mark.parametrize("spec, space", [
    ("rbf:k=5,gamma=0.5,label_gamma=0.7", "input"),
    ("rbf:k=5,gamma=0.5,label_gamma=none", "input"),
    ("latent-rbf:k=4,gamma=0.3,label_gamma=1", "latent"),
    ("hybrid-rbf:k=6,gamma=0.2,latent_gamma=0.4,label_gamma=0.5", "hybrid"),
])
def test_rbf_family_matches_its_equations(spec, space, tmp_path):
    rng = np.random.default_rng(4)
    n, n_features, n_labels = 25, 5, 4
    train_X = rng.random((n, n_features))
    train_Y = (rng.random((n, n_labels)) < 0.4).astype(float)
    query_X = rng.random((6, n_features))
    model = AWEModel(n_features, n_labels, dimension=3, affinity=spec, normalisation="none", input_bias=True)
    latent = rng.normal(size=(n_features + 1, 3)).astype(np.float32)
    model.affinity.set_reference(latent, sp.csr_matrix(train_X), sp.csr_matrix(train_Y), input_bias=True)
    a = model.affinity
    G = rbf_reference(space, train_X, train_Y, query_X, latent, a.k, a.gamma, getattr(a, "latent_gamma", 0),
                      a.label_gamma)
    U, V = model.U.table.numpy(), model.V.table.numpy()
    want = G * (query_X @ U[:-1] @ V.T) + U[-1] @ V.T  # the bias feature's prior outside G
    np.testing.assert_allclose(model.score(query_X), want, rtol=1e-4, atol=1e-6)
    model.save_model(tmp_path / "m")
    np.testing.assert_array_equal(AWEModel.load_model(tmp_path / "m").score(query_X), model.score(query_X))


def test_scann_search_finds_the_exact_neighbours():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(20, 8))
    train_X = np.repeat(centres, 30, axis=0) + 0.05 * rng.normal(size=(600, 8))
    train_Y = np.eye(20)[np.repeat(np.arange(20), 30)]
    train_Y[3::4] = 0  # rows without a label, which neither search may return
    train_Y = sp.csr_matrix(train_Y)
    exact = AWEModel(8, 20, dimension=8, affinity="knn:k=10", input_bias=False)
    approx = AWEModel(8, 20, dimension=8, affinity="knn:k=10,search=scann", input_bias=False)
    latent = np.eye(8, dtype=np.float32)
    for model in (exact, approx):
        model.affinity.set_reference(latent, sp.csr_matrix(train_X), train_Y, input_bias=False)
    queries = sp.csr_matrix(centres + 0.05 * rng.normal(size=centres.shape))
    G_exact = exact.affinity.context(queries).toarray()
    G_approx = approx.affinity.context(queries).toarray()
    np.testing.assert_allclose(G_approx, G_exact)  # well-separated clusters: the same neighbours' labels
    assert approx.affinity.n_reference == 450
    train_exact = exact.affinity.training_context(np.arange(450)).toarray()
    train_approx = approx.affinity.training_context(np.arange(450)).toarray()
    assert np.abs(train_exact - train_approx).sum(axis=1).mean() < 0.05
    np.testing.assert_allclose(train_approx[:, :20].sum(axis=1), 1, rtol=1e-6)  # k neighbours, each with a label


def test_g_from_fewer_than_two_training_rows_with_a_label_is_refused():
    model = AWEModel(4, 3, dimension=2, affinity="knn:k=2", input_bias=False)
    with pytest.raises(ValueError, match="0 training rows have a label: the KNN affinity needs at least 2"):
        model.affinity.set_reference(np.eye(4, dtype=np.float32), sp.csr_matrix(np.eye(4)), sp.csr_matrix((4, 3)),
                                     input_bias=False)


@pytest.mark.parametrize("spec", ["knn:k=5", "knn:k=5,prior=0", "knn:k=1", "cluster:leaves=9,top=20"])
def test_candidate_top_k_equals_ranking_all_scores(spec):
    from awe_tf.metrics import top_k

    split = load_dataset("corel5k")
    model = AWEModel(split.train.n_features, split.train.n_labels, dimension=16, affinity=spec)
    model.affinity.set_reference(model.U.table.numpy(), model.prepare(split.train.X), split.train.Y, True)
    X = split.test.X[:200]
    exclude = sp.csr_matrix(split.test.Y[:200])  # any sparse exclusion will do
    ids, scores = model.top_k(X, k=10, exclude=exclude, candidates=np.arange(0, 374, 2))
    dense = model.score(X)
    want = top_k(dense, 10, exclude, np.arange(0, 374, 2))
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(dense, want, axis=1), rtol=1e-5, atol=1e-6)
    ids, scores = model.top_k(X, k=5)  # no filters: the cluster's per-leaf path
    want = top_k(dense, 5)
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(dense, want, axis=1), rtol=1e-5, atol=1e-6)


def test_cluster_leaves_hold_their_members_labels():
    from awe_tf.affinities.cluster import kmeans

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 3)) * 10
    points = np.repeat(centres, 25, axis=0) + rng.normal(size=(100, 3))
    centroids, assignment = kmeans(points, 4)
    assert len(set(assignment.tolist())) == 4
    for c in range(4):  # each true cluster lands in one k-means cluster
        assert len(set(assignment[c * 25 : (c + 1) * 25].tolist())) == 1
    labels = sp.csr_matrix(np.eye(4)[np.repeat(np.arange(4), 25)])
    model = AWEModel(3, 4, dimension=3, affinity="cluster:leaves=16,top=1", normalisation="none", input_bias=False)
    model.affinity.set_reference(np.eye(3, dtype=np.float32), sp.csr_matrix(points), labels, False)
    G = model.affinity.context(sp.csr_matrix(centres)).toarray()[:, :4]
    np.testing.assert_array_equal(G, np.eye(4))  # a query at a centre gets its cluster's one label


def test_cluster_takes_only_its_own_settings():
    for setting in ("prior=1", "k=3", "search=scann"):  # the k-NN family's settings are not the cluster's
        with pytest.raises(ValueError, match=f"cluster has no setting {setting.split('=')[0]}"):
            get(f"cluster:leaves=4,{setting}")
    assert get("cluster:leaves=4").prior is False and "k" not in get("cluster:leaves=4").get_config()


def test_candidate_top_k_fills_from_the_allowed_labels_only():
    """With G's candidates and the labels allowed far apart (here the allowed labels are the 20
    with the lowest prior), the fill in prior order still finds k allowed labels."""
    from awe_tf.metrics import top_k

    split = load_dataset("corel5k")
    model = AWEModel(split.train.n_features, split.train.n_labels, dimension=16, affinity="knn:k=5")
    model.affinity.set_reference(model.U.table.numpy(), model.prepare(split.train.X), split.train.Y, True)
    allowed = np.argsort(model.label_prior().numpy())[:20]
    X = split.test.X[:50]
    ids, _ = model.top_k(X, k=10, candidates=allowed)
    assert (ids >= 0).all() and np.isin(ids, allowed).all()
    np.testing.assert_array_equal(ids, top_k(model.score(X), 10, None, allowed))


def test_two_affinities_may_not_share_a_name():
    from awe_tf.affinities import register

    with pytest.raises(ValueError, match="already registered as 'knn'"):
        register("knn")(type("Other", (Affinity,), {}))
    with pytest.raises(ValueError, match="registered for Keras as awe_tf>KNN"):
        register("another-knn")(type("KNN", (Affinity,), {}))


def test_iterative_learning_says_when_k_covers_most_of_the_training_set():
    """24 training inputs and k = 20: every input's neighbours are nearly all of them, and the
    run says so; k = 5 on the same rows says nothing."""
    train = load_dataset("emotions").train.rows(np.arange(24))
    for k, said in ((20, True), (5, False)):
        lines = []
        fit_iterative(train, ModelConfig(dimension=4, num_negatives=2, affinity=f"knn:k={k}"),
                      TrainConfig(epochs=1, verbose=0), iterations=1, log=lines.append)
        assert any(f"k = {k} neighbours of 24 training inputs" in line for line in lines) == said, lines
