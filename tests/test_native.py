"""The native engine (awe_tf.native): warp.c against a NumPy reference of the same per-pair rule,
learning on real data, checkpoints and resume, and clear refusals."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.baselines import Popularity
from awe_tf.data import load_dataset, validation_split
from awe_tf.data.dataset import ANNOTATION, RECOMMENDATION, Dataset
from awe_tf.data.pipeline import TrainingBatches
from awe_tf.evaluation import evaluate_model
from awe_tf.native import NativeWarp
from awe_tf.training import ModelConfig, TrainConfig, build_model, fit, fit_iterative
from awe_tf.training.fit import _training_context
from awe_tf.training.iterative import build_g
from awe_tf.training.optimiser import adagrad_accumulator

MASK = (1 << 64) - 1


class SplitMix:
    """warp.c's random numbers (splitmix64), in Python integers."""

    def __init__(self, state):
        self.state = state & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return ((self.next() >> 32) * n) >> 32


def reference_step(engine, step, U, V, accU, accV):
    """One native step with one thread, written out plainly from the paper's rule (warp.c's
    module comment): NumPy float32, updating U, V, accU and accV in place; returns the stats.
    The score of a label y from the input's features' term s_in = x~ . V_y (x~ = sum_i x_i U_i,
    the pair's own item left out) and the bias feature's s_b = U_bias . V_y: a function of s_in +
    s_b, or, where the affinity reads G (one number per example and label, its training rows
    ``engine.g``), (c + g_scale G) s_in + (c + (prior ? 1 : g_scale G)) s_b + g_added G
    (``awe_tf.affinities.base.NativeForm``)."""
    model, form = engine.model, engine.form
    indptr, indices, data = engine.x
    y_indptr, y_indices = engine.y
    d, n_labels, margin = model.dimension, model.n_labels, model.margin
    lr, eps = np.float32(engine.lr), np.float32(engine.eps)
    bias = model.n_features if model.input_bias else None
    seed = int(np.random.SeedSequence([model.seed, step]).generate_state(1, np.uint64)[0])
    rng = SplitMix(seed ^ ((0xD1B54A32D192ED03 * 1) & MASK))
    stats = np.zeros(4)
    c, lam, alpha, beta, g_scale, g_added = (np.float32(getattr(form, name)) for name in
                                             ("c", "lam", "alpha", "beta", "g_scale", "g_added"))
    G = None if engine.g is None else sp.csr_matrix((engine.g[2], engine.g[1], engine.g[0]),
                                                    shape=(len(engine.g[0]) - 1, n_labels + 1)).toarray()

    def scored(x, u_b, row, y, terms_of):
        """f, d f / d s_in, d f / d s_b, and top-k's k largest terms (their places in the input)."""
        s_in, s_b = np.dot(x, V[y]), np.dot(u_b, V[y])
        if form.top_k:
            places, terms = terms_of(y)
            top = places[np.argsort(-terms, kind="stable")[:form.top_k]]
            chosen = terms[np.isin(places, top)].sum()
            return (np.float32(1) - np.float32(form.rest)) * chosen + np.float32(form.rest) * s_in + s_b, \
                np.float32(form.rest), np.float32(1), top
        if G is None:
            s = s_in + s_b
            g = np.float32(1) / (np.float32(1) + np.exp(-(alpha * s + beta)))
            slope = c + lam * (g + alpha * s * g * (np.float32(1) - g))
            return s * (c + lam * g), slope, slope, []
        g = G[row, y] + G[row, n_labels]  # the label's weight and the offset every label gets
        a_in = c + g_scale * g
        a_b = c + (np.float32(1) if form.prior else g_scale * g)
        return a_in * s_in + a_b * s_b + g_added * g, a_in, a_b, []

    def update(table, acc, row, gradient):
        if acc is not None:
            acc[row] += gradient * gradient
            table[row] -= lr * gradient / np.sqrt(acc[row] + eps)
        else:
            table[row] -= lr * gradient
        norm = np.sqrt(np.dot(table[row], table[row]))
        if norm > model.max_norm:
            table[row] *= np.float32(model.max_norm / norm)

    for row in engine._rows_of(step):
        feats, weights = indices[indptr[row]:indptr[row + 1]], data[indptr[row]:indptr[row + 1]]
        labels = y_indices[y_indptr[row]:y_indptr[row + 1]]
        query = weights @ U[feats]
        u_b = U[bias].copy() if bias is not None else np.zeros(d, np.float32)
        order = list(range(len(labels)))
        for p in range(len(labels) - 1, 0, -1):
            q = rng.below(p + 1)
            order[p], order[q] = order[q], order[p]
        total, total_b = np.zeros(d, np.float32), np.zeros(d, np.float32)
        own = np.zeros((len(feats), d), np.float32)
        top_part = np.zeros((len(feats), d), np.float32)  # top-k: the k largest terms' gradient, by place
        kept = np.float32(1) - np.float32(form.rest)
        for p in order:
            y = labels[p]
            x = query.copy()
            self_at = np.flatnonzero(feats == y) if engine.leave_one_out else []
            if len(self_at):
                x -= weights[self_at[0]] * U[y]
            places = np.array([i for i in range(len(feats)) if not (len(self_at) and i == self_at[0])], int)

            def terms_of(label, places=places, feats=feats, weights=weights):  # x_i U_i . V_label, own item left out
                return places, np.array([weights[i] * np.dot(U[feats[i]], V[label]) for i in places], np.float32)

            positive, in_y, b_y, top_y = scored(x, u_b, row, y, terms_of)
            violator, trials = None, 0
            for draw in [rng.below(n_labels) for _ in range(model.num_negatives)]:  # all K drawn first
                if draw in labels:
                    continue
                trials += 1
                if scored(x, u_b, row, draw, terms_of)[0] > positive - margin:
                    violator = draw
                    break
            stats[1] += 1
            if violator is None:
                continue
            negative, in_c, b_c, top_c = scored(x, u_b, row, violator, terms_of)
            rank = (n_labels - len(labels)) // trials
            weight = np.float32(np.sum(1.0 / np.arange(1, rank + 1)))
            stats += [weight * (margin - positive + negative), 0, 1, rank]
            dx = weight * (in_c * V[violator] - in_y * V[y])
            total_b += weight * (b_c * V[violator] - b_y * V[y])
            for i in top_c:
                top_part[i] += weight * kept * V[violator]
            for i in top_y:
                top_part[i] -= weight * kept * V[y]
            grad_y = in_y * x + b_y * u_b + kept * (weights[top_y] @ U[feats[top_y]] if len(top_y) else 0)
            grad_c = in_c * x + b_c * u_b + kept * (weights[top_c] @ U[feats[top_c]] if len(top_c) else 0)
            update(V, accV, y, -weight * grad_y)
            update(V, accV, violator, weight * grad_c)
            total += dx
            if len(self_at):
                own[self_at[0]] += dx
        for i, f in enumerate(feats):
            update(U, accU, f, weights[i] * (total - own[i] + top_part[i]))
        if bias is not None:
            update(U, accU, bias, total_b)
    return stats


def tiny(task, seed=0):
    rng = np.random.default_rng(seed)
    n, labels = 12, 15
    Y = sp.csr_matrix((rng.random((n, labels)) < 0.3).astype(np.float32))
    if task == RECOMMENDATION:
        X = Y.copy()
    else:
        X = sp.csr_matrix(rng.random((n, 9)) * (rng.random((n, 9)) < 0.5))
    return Dataset(X=X, Y=Y, feature_names=[str(i) for i in range(X.shape[1])],
                   label_names=[str(j) for j in range(labels)], task=task, name=f"tiny-{task}")


@pytest.mark.parametrize("task,optimizer,input_bias,affinity", [
    (RECOMMENDATION, "adagrad", True, None), (ANNOTATION, "adagrad", True, None), (ANNOTATION, "sgd", False, None),
    # AWE whose score is a function of the linear score s: s sigmoid(2 s - 0.5), and 0.5 s + s sigmoid(s + 0.25)
    (RECOMMENDATION, "adagrad", True, "linear-sigmoid:alpha=2,beta=-0.5"),
    (ANNOTATION, "sgd", True, "constant:0.5+linear-sigmoid:alpha=1,beta=0.25"),
    # G read per example and label, built from an earlier model: k-NN, its bias term outside G (prior, the default)
    # and inside it; beside a constant; the vote, added to the linear score; an RBF whose G has an offset
    (ANNOTATION, "adagrad", True, "knn:k=3"), (RECOMMENDATION, "adagrad", True, "knn:k=3"),
    (ANNOTATION, "sgd", True, "knn:k=3,prior=0"), (ANNOTATION, "adagrad", False, "knn:k=3"),
    (RECOMMENDATION, "adagrad", True, "constant:0.3+knn:k=3"), (ANNOTATION, "adagrad", True, "vote:weight=3,k=3"),
    (ANNOTATION, "adagrad", True, "rbf:k=4,gamma=0.5,label_gamma=1"),
    (ANNOTATION, "sgd", True, "cluster:leaves=4,top=5"),
    # top-k: the k largest of the pair's terms (its own item left out), the others weighted rest
    (RECOMMENDATION, "adagrad", True, "topk:k=2"), (RECOMMENDATION, "sgd", False, "topk:k=3,rest=0.25"),
    (ANNOTATION, "adagrad", True, "max"), (ANNOTATION, "adagrad", True, "topk:k=40,rest=0.5"),  # k above every row's
])
def test_native_step_matches_numpy_reference(task, optimizer, input_bias, affinity):
    data = tiny(task)
    config = ModelConfig(dimension=8, num_negatives=4, max_norm=1.0, input_bias=input_bias, seed=3, affinity=affinity)
    model = build_model(data, config)
    context = None
    if model.affinity.reference_part() is not None:  # G from an earlier model's U
        build_g(model, build_model(data, dataclasses.replace(config, affinity=None, seed=4)), data)
        context = _training_context(model, data, tf.distribute.get_strategy())
    model.compile(optimizer=TrainConfig(optimizer=optimizer, learning_rate=0.3).make_optimizer())
    engine = NativeWarp(model, data, threads=1, seed=5, context=context)
    assert (engine.g is not None) == (context is not None)
    engine.load()
    before = {name: table.copy() for name, table in engine.tables.items()}
    expected = {name: table.copy() for name, table in before.items()}
    for step in range(3):  # two epochs' worth of chunks and more: the example order changes per epoch
        want = reference_step(engine, step, expected["U"], expected["V"], expected.get("accU"), expected.get("accV"))
        got = engine.run_step(step)
        np.testing.assert_allclose(got, want, rtol=1e-4)
        assert got[2] > 0  # some pairs had a violator: the updates below were exercised
    for name in before:
        assert not np.allclose(engine.tables[name], before[name]), name
        np.testing.assert_allclose(engine.tables[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert np.all(np.linalg.norm(engine.tables["V"], axis=1) <= 1.0 + 1e-5)  # max-norm projection


@pytest.mark.parametrize("affinity,input_bias", [
    ("knn:k=3", True), ("knn:k=3", False), ("knn:k=3,prior=0", True), ("constant:0.3+knn:k=3", True),
    ("vote:weight=3,k=3", True), ("rbf:k=4,gamma=0.5,label_gamma=1", True), ("cluster:leaves=4,top=5", True),
    ("constant:0.5+linear-sigmoid:alpha=2,beta=-0.5", True), ("topk:k=2", True), ("topk:k=3,rest=0.25", False),
])
def test_the_native_form_scores_as_the_model_does(affinity, input_bias):
    """What the native engine trains (NativeForm, as the reference above computes it) is the
    model's own score, as scoring and serving compute it, for every label of every row."""
    data = tiny(ANNOTATION)
    config = ModelConfig(dimension=8, seed=3, affinity=affinity, input_bias=input_bias)
    model = build_model(data, config)
    if model.affinity.reference_part() is not None:
        build_g(model, build_model(data, dataclasses.replace(config, affinity=None, seed=4)), data)
    form = model.affinity.native_form()
    prepared = sp.csr_matrix(model.prepare(data.X))
    U, V = model.U.table.numpy(), model.V.table.numpy()
    if input_bias:  # the bias feature is U's last row
        s_in, s_b = prepared @ U[:-1] @ V.T, (U[-1] @ V.T)[None, :]
    else:
        s_in, s_b = prepared @ U @ V.T, np.zeros((1, V.shape[0]), np.float32)
    if form.top_k:
        dense = prepared.toarray()
        terms = dense[:, :, None] * (U[:dense.shape[1]] @ V.T)[None]  # [rows, features, labels]
        terms = np.where(dense[:, :, None] != 0, terms, -np.inf)  # only the input's features
        top = -np.sort(-terms, axis=1)[:, :form.top_k]
        expected = (1 - form.rest) * np.where(np.isfinite(top), top, 0).sum(axis=1) + form.rest * s_in + s_b
    elif form.lam:
        s = s_in + s_b
        expected = s * (form.c + form.lam / (1 + np.exp(-(form.alpha * s + form.beta))))
    else:
        rows = model.affinity.context(prepared).toarray()
        G = rows[:, :-1] + rows[:, -1:]  # a label's weight and the offset every label gets
        on_input, on_prior = form.c + form.g_scale * G, form.c + (1 if form.prior else form.g_scale * G)
        expected = on_input * s_in + on_prior * s_b + form.g_added * G
        assert len(np.unique(G)) > 1  # G tells labels apart: it is exercised
    np.testing.assert_allclose(model.score(data.X), expected, rtol=1e-4, atol=1e-5)


def test_native_g_rows_are_each_training_rows_neighbours_found_apart():
    """The rows of G the native engine trains with are, for each training row, the share of its k
    nearest other rows with a label (cosine in the earlier model's space, found here in NumPy)
    that carry each label; a row without a label has an empty row (and no pair), and the rows
    after it keep their places."""
    data = tiny(ANNOTATION)
    Y = data.Y.tolil()
    Y[4, :] = 0  # a training row without a label, mid-set
    data = Dataset(X=data.X, Y=sp.csr_matrix(Y), feature_names=data.feature_names, label_names=data.label_names,
                   task=ANNOTATION, name="tiny-unlabelled")
    config = ModelConfig(dimension=8, seed=3, affinity="knn:k=3")
    model, previous = build_model(data, config), build_model(data, dataclasses.replace(config, affinity=None, seed=4))
    build_g(model, previous, data)
    context = _training_context(model, data, tf.distribute.get_strategy())
    engine = NativeWarp(model, data, threads=1, seed=5, context=context)
    indptr, indices, values = engine.g
    got = sp.csr_matrix((values, indices, indptr), shape=(data.n_examples, data.n_labels + 1)).toarray()
    Z = previous.embed_inputs(data.X)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    labelled = np.flatnonzero(data.Y.getnnz(axis=1))
    assert 4 not in labelled and not got[4].any()
    for row in labelled:
        others = labelled[labelled != row]
        nearest = others[np.argsort(-(Z[others] @ Z[row]), kind="stable")[:3]]
        np.testing.assert_allclose(got[row, :-1], data.Y[nearest].toarray().mean(axis=0), atol=1e-6, err_msg=str(row))


@pytest.mark.parametrize("affinity", [
    None, "linear-sigmoid:alpha=2,beta=-0.5", "constant:0.5+linear-sigmoid:alpha=1,beta=0.25", "knn:k=3",
    "knn:k=3,prior=0", "constant:0.3+knn:k=3", "vote:weight=3,k=3", "rbf:k=4,gamma=0.5,label_gamma=1",
    "cluster:leaves=4,top=1", "topk:k=2", "topk:k=3,rest=0.25", "max",
])
def test_a_native_epoch_moves_u_and_v_by_the_graph_steps_own_gradient(affinity):
    """Independent of the NumPy reference's hand-derived updates: with two labels, one positive per
    example and a margin no score reaches, every pair's violator is the other label at rank 1, so
    WARP's loss is the sum of margin - f(x, y) + f(x, ybar) on both engines. One native epoch of
    plain SGD at a small learning rate (no projection: a max-norm out of reach) then moves U and V
    by minus the learning rate times the gradient TensorFlow's autodiff takes of the graph step's
    loss of the whole set, up to the second-order effect of updating pair by pair."""
    rng = np.random.default_rng(0)
    n, labels = 12, 2
    X = sp.csr_matrix(rng.random((n, 6)) * (rng.random((n, 6)) < 0.7) + np.eye(n, 6))  # no empty row
    # a quarter of the rows carry the second label: the bias row's gradients do not cancel
    Y = sp.csr_matrix(((np.arange(n)[:, None] % 4 == 0) == np.arange(labels)[None, :].astype(bool)).astype(np.float32))
    data = Dataset(X=X, Y=Y, feature_names=[str(i) for i in range(6)], label_names=["a", "b"], task=ANNOTATION,
                   name="two-labels")
    config = ModelConfig(dimension=8, num_negatives=32, margin=100.0, max_norm=100.0, seed=3, affinity=affinity)
    model = build_model(data, config)
    prepared = data.with_matrices(X=model.prepare(data.X))
    context = None
    if model.affinity.reference_part() is not None:
        build_g(model, build_model(data, dataclasses.replace(config, affinity=None, seed=4)), data)
        context = _training_context(model, data, tf.distribute.get_strategy())
    rate = 1e-3
    model.compile(optimizer=TrainConfig(optimizer="sgd", learning_rate=rate).make_optimizer())
    batch = next(iter(TrainingBatches(prepared, pairs_per_batch=1024, context=context).batches(0)))
    with tf.GradientTape() as tape:
        loss, _ = model._loss({key: tf.constant(value) for key, value in batch.items()}, training=True, step=0)
    gradients = [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, [model.U.table, model.V.table])]
    engine = NativeWarp(model, prepared, threads=1, seed=5, context=context)
    engine.load()
    before = {name: engine.tables[name].copy() for name in ("U", "V")}
    stats = engine.run_step(0)
    assert stats[1] == stats[2] == n  # every pair had its violator
    np.testing.assert_allclose(stats[0], float(loss), rtol=1e-4)  # the same loss, summed
    for name, gradient in zip(("U", "V"), gradients, strict=True):
        moved = engine.tables[name] - before[name]
        assert np.abs(gradient).max() > 1e-3, name  # something to compare
        np.testing.assert_allclose(moved, -rate * gradient, rtol=0.01, atol=0.01 * rate * np.abs(gradient).max(),
                                   err_msg=name)


def _tiny_engine(data=None):
    data = tiny(RECOMMENDATION) if data is None else data
    model = build_model(data, ModelConfig(dimension=8, num_negatives=4, seed=3))
    model.compile(optimizer=TrainConfig(learning_rate=0.3).make_optimizer())
    return NativeWarp(model, data, threads=1, seed=5)


def _no_sharing(monkeypatch):
    """The engine and scoring as where TensorFlow cannot be asked to share a table's buffer again
    (``share_buffer`` refused)."""
    from awe_tf.layers import towers
    from awe_tf.native import engine

    for module in (towers, engine):
        monkeypatch.setattr(module, "share_buffer", lambda variable: False)


@pytest.mark.parametrize("shareable", [True, False])
def test_native_trains_in_place_and_loses_no_step_when_tensorflow_moves_a_table(monkeypatch, shareable):
    """The tables are trained in the variables' own memory. A variable TensorFlow moves (a
    sparse read of U, after which it copies U on every read) is shared again and trained in
    place where it now is, or, where it cannot be shared again, trained as a copy from then on;
    either way losing no step: the same steps give the same tables as a run that stayed in place."""
    from awe_tf.native.engine import _address

    if not shareable:
        _no_sharing(monkeypatch)
    data = tiny(RECOMMENDATION)
    steady, moved = _tiny_engine(data), _tiny_engine(data)
    for engine in (steady, moved):
        engine.run_step(0)
        assert engine.in_place and set(engine.tables) == {"U", "V", "accU", "accV"}
        variables = engine._variables()
        assert all(_address(variables[name].value()) == table.ctypes.data for name, table in engine.tables.items())
    before = moved.model.V.table.numpy()
    moved.model.U.table.sparse_read([0])  # TensorFlow copies U on every read from now on
    moved.run_step(1)
    if shareable:  # U trained in place where it is now
        assert moved.in_place and moved.tables["U"].ctypes.data == _address(moved.model.U.table.value())
    else:
        assert moved.shared == {"V", "accU", "accV"} and not moved.in_place  # U is trained as a copy
    assert not np.allclose(moved.model.V.table.numpy(), before)  # V trained in place, nothing stored
    moved.store()
    for step in (1, 2):
        steady.run_step(step)
    moved.run_step(2)
    moved.store()
    for name, variable in steady._variables().items():
        np.testing.assert_array_equal(moved._variables()[name].numpy(), variable.numpy(), err_msg=name)


def test_native_trains_a_graph_trained_model_in_place():
    """The graph step reads and updates U and V sparsely (and, on large tables, their
    accumulators: here read sparsely by hand, as the tiny tables' are updated densely), after
    which TensorFlow copies each on every read; the engine has it share them again and trains
    all four in the variables' own buffers, not as copies beside them, and its steps are in
    the model."""
    from awe_tf.native.engine import _address, _shares_its_buffer
    from awe_tf.training.optimiser import adagrad_accumulator

    data = tiny(RECOMMENDATION)
    model = fit(data, ModelConfig(dimension=8, num_negatives=4, seed=3),
                TrainConfig(epochs=1, learning_rate=0.3, verbose=0)).model
    tables = [model.U.table, model.V.table]
    tables += [adagrad_accumulator(model.optimizer, table) for table in tables]
    for variable in tables:
        variable.sparse_read([0])  # what the graph step does to a large table's accumulators too
        assert not _shares_its_buffer(variable), variable.name
    before = [variable.numpy() for variable in tables]
    engine = NativeWarp(model, data, threads=1, seed=5)
    variables = engine._variables()
    engine.run_step(0)
    assert engine.in_place
    for name, table in engine.tables.items():
        assert _address(variables[name].value()) == table.ctypes.data, name
    for variable, start in zip(tables, before, strict=True):
        assert not np.array_equal(variable.numpy(), start), variable.name


def test_scoring_while_native_trains_reads_the_tables_whole_and_keeps_them_in_place():
    """Validation scores between epochs; while C trains U and V in place, scoring reads them
    whole (a sparse read would make TensorFlow copy them from then on), with the same scores as
    the sparse reads scoring does outside native training."""
    data = tiny(RECOMMENDATION)
    engine = _tiny_engine(data)
    engine.run_step(0)
    assert engine.model.U.read_whole and engine.model.V.read_whole
    engine.model.score(data.X)
    engine.run_step(1)
    assert engine.in_place
    whole = engine.model.score(data.X)
    engine.release()
    assert not engine.model.U.read_whole
    np.testing.assert_allclose(engine.model.score(data.X), whole, rtol=1e-6)
    engine.run_step(2)  # scoring read U sparsely: shared again, U is trained in place and read whole
    assert engine.in_place and engine.model.U.read_whole and engine.model.V.read_whole
    engine.model.V.table.sparse_read([0])  # a callback's sparse read mid-epoch: V is copied on reads now
    engine.store()  # the epoch's end, before validation scores: read whole, V would be copied per batch
    assert not engine.model.V.read_whole
    engine.run_step(3)
    assert engine.in_place and engine.model.V.read_whole


def test_a_table_assigned_at_an_epochs_end_is_still_read_whole_and_trained_in_place():
    """An assignment gives a variable other memory, as a sparse read does, but TensorFlow still
    shares it: validation reads it whole, the engine lets the old buffer go at once and takes the
    new one for the next chunk."""
    data = tiny(RECOMMENDATION)
    engine = _tiny_engine(data)
    engine.run_step(0)
    V = engine.model.V.table
    V.assign(V.numpy())  # a callback after the epoch's last step (weight averaging, set_weights)
    engine.store()
    assert engine.model.V.read_whole and "V" not in engine.tables
    engine.model.score(data.X)
    engine.run_step(1)
    assert engine.in_place


def test_a_table_copied_on_every_read_is_not_taken_for_its_own_buffer():
    """Two reads of a copy-on-read table are two copies; the first, freed, must not be mistaken
    for the second at the same address (a large table, whose copy the C library maps and unmaps,
    lands there every time), or C would train a copy that is thrown away."""
    import tensorflow as tf

    from awe_tf.native.engine import _own_view, _shares_its_buffer

    table = tf.Variable(tf.zeros([1 << 18, 64]))  # 64 MB
    assert _shares_its_buffer(table)
    table.sparse_read([0])
    assert not any(_shares_its_buffer(table) for _ in range(5)) and _own_view(table) is None


def test_native_fit_with_scoring_between_epochs_keeps_u_in_tensorflows_buffer():
    """End to end: a fit whose callback scores after every epoch (as validation does) leaves U
    in a buffer TensorFlow shares (two reads at one address), and scoring reads it sparsely again
    once training is over."""
    import tensorflow as tf

    from awe_tf.native.engine import _shares_its_buffer

    shared_after_scoring = []

    class Score(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.score(data.X)
            shared_after_scoring.append(_shares_its_buffer(self.model.U.table))

    data = tiny(RECOMMENDATION)
    model = fit(data, ModelConfig(dimension=8, num_negatives=4, seed=3),
                TrainConfig(epochs=3, engine="native", learning_rate=0.3, verbose=0), callbacks=[Score()]).model
    assert shared_after_scoring == [True] * 3 and not model.U.read_whole


def test_a_start_scored_on_validation_leaves_u_to_be_trained_in_place():
    """``init_from`` with validation scores the start before the first epoch; that read too is
    whole, so C still trains U in TensorFlow's buffer afterwards."""
    import tensorflow as tf

    from awe_tf.data import Split
    from awe_tf.native.engine import _shares_its_buffer

    shared = []

    class Check(tf.keras.callbacks.Callback):  # after validation's scoring at each epoch's end
        def on_epoch_end(self, epoch, logs=None):
            shared.append(_shares_its_buffer(self.model.U.table))

    data = tiny(RECOMMENDATION)
    config = ModelConfig(dimension=8, num_negatives=4, seed=3)
    native = TrainConfig(epochs=2, engine="native", learning_rate=0.3, verbose=0)
    source = fit(data, config, native).model
    result = fit(data, config, native, validation=Split(train=data, test=data), init_from=source, callbacks=[Check()])
    assert shared == [True, True] and not result.model.U.read_whole


@pytest.mark.parametrize("shareable", [True, False])
def test_native_trains_what_is_assigned_between_epochs(monkeypatch, shareable):
    """After an epoch's end (copies written back), the next chunk trains what the variables hold
    then: an assigned in-place V, and U, which scoring read sparsely, alike, whether it was
    shared again and trained in place or trained as a copy."""
    if not shareable:
        _no_sharing(monkeypatch)
    data = tiny(RECOMMENDATION)
    engine, fresh = _tiny_engine(data), _tiny_engine(data)
    start = {name: variable.numpy() for name, variable in fresh._variables().items()}
    engine.model.score(data.X)  # a sparse read of U: TensorFlow copies U on every read from now on
    engine.run_step(0)
    engine.store()  # the epoch's end
    for name, variable in engine._variables().items():  # what a callback might do between epochs
        variable.assign(start[name])
    for trained in (engine, fresh):
        trained.run_step(1)
        trained.store()
    assert engine.shared == ({"U", "V", "accU", "accV"} if shareable else {"V", "accU", "accV"})
    for name, variable in fresh._variables().items():
        np.testing.assert_array_equal(engine._variables()[name].numpy(), variable.numpy(), err_msg=name)


def test_native_steps_reach_the_model_when_training_stops_with_an_error(monkeypatch):
    """An exception mid-epoch (an interrupt, divergence) skips Keras' epoch and training ends: the
    steps C took on a table trained as a copy are in the model all the same."""
    import tensorflow as tf

    _no_sharing(monkeypatch)

    class Interrupt(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    data = tiny(RECOMMENDATION)
    model = build_model(data, ModelConfig(dimension=8, num_negatives=4, seed=3))
    model.score(data.X)  # U is read sparsely, so the engine trains it as a copy
    before = model.U.table.numpy()
    with pytest.raises(KeyboardInterrupt):
        fit(data, model=model, train_config=TrainConfig(epochs=2, engine="native", learning_rate=0.3, verbose=0),
            callbacks=[Interrupt()])
    assert not np.allclose(model.U.table.numpy(), before)


def _engine_as_fit_makes_it(data):
    """The engine set up before ``compile``, then told the optimiser's state is new, as ``fit`` does."""
    model = build_model(data, ModelConfig(dimension=8, num_negatives=4, seed=3))
    engine = NativeWarp(model, data, threads=1, seed=5)
    model.compile(optimizer=TrainConfig(learning_rate=0.3).make_optimizer())
    engine.optimiser_state_made()
    return engine


def _alone_in_its_buffer(variable) -> bool:
    """Whether nothing but ``variable`` holds its buffer: TensorFlow adds to a buffer in place
    only then, and copies it first where anything else holds it too."""
    import tensorflow as tf

    from awe_tf.native.engine import _address

    before = _address(variable.value())
    variable.assign_add(tf.zeros_like(variable))
    return _address(variable.value()) == before


def test_native_load_takes_tables_known_to_be_their_variables_own_without_copying_them():
    """Set up as ``fit`` does, the engine makes U and V the variables' own before the optimiser's
    state exists, and the accumulators are made fresh: load then trains all four where they are
    (no copy on top of the model), and each is the variable's alone, so C writes nothing else."""
    from awe_tf.native.engine import _address

    engine = _engine_as_fit_makes_it(tiny(RECOMMENDATION))
    variables = engine._variables()
    assert set(variables) == {"U", "V", "accU", "accV"}
    for name, variable in variables.items():
        assert _alone_in_its_buffer(variable), name
    where = {name: _address(variable.value()) for name, variable in variables.items()}
    engine.load()
    assert engine.in_place and {name: table.ctypes.data for name, table in engine.tables.items()} == where


def test_a_model_built_from_another_gets_tables_of_its_own_when_the_engine_is_set_up():
    """A model whose U and V were assigned from another's (which TensorFlow shares) before the
    engine is set up gets buffers of its own then, which load takes as they are."""
    from awe_tf.native.engine import _address
    from awe_tf.training.fit import start_from

    data = tiny(RECOMMENDATION)
    source = _engine_as_fit_makes_it(data).model
    model = build_model(data, ModelConfig(dimension=8, num_negatives=4, seed=4))
    tables = {"U": model.U.table, "V": model.V.table}
    start_from(model, source)
    assert not _alone_in_its_buffer(model.U.table)  # shared with the source's U (the check gave U a copy)
    start_from(model, source)  # shared again
    engine = NativeWarp(model, data, threads=1, seed=5)
    assert all(_alone_in_its_buffer(table) for table in tables.values())
    where = {name: _address(table.value()) for name, table in tables.items()}
    model.compile(optimizer=TrainConfig(learning_rate=0.3).make_optimizer())
    engine.load()
    assert {name: engine.tables[name].ctypes.data for name in tables} == where


def test_a_new_native_fit_copies_no_table_at_load_and_leaves_the_models_it_starts_from_alone(monkeypatch):
    """``fit`` sets the engine up before compiling and says the optimiser's state is new: a fresh
    run copies U and V once, at set-up, and nothing at load; a run started from another model's
    tables and optimiser state (``init_from``, ``continue_from``) trains without changing them."""
    import tensorflow as tf

    copies, at_load = [], []
    deep_copy, load = tf.raw_ops.DeepCopy, NativeWarp.load
    monkeypatch.setattr(tf.raw_ops, "DeepCopy", lambda **kwargs: copies.append(1) or deep_copy(**kwargs))

    def counted_load(engine):
        before = len(copies)
        load(engine)
        at_load.append(len(copies) - before)

    monkeypatch.setattr(NativeWarp, "load", counted_load)
    data = tiny(RECOMMENDATION)
    config = ModelConfig(dimension=8, num_negatives=4, seed=3)
    native = TrainConfig(epochs=2, engine="native", learning_rate=0.3, verbose=0)
    source = fit(data, config, native).model
    assert at_load == [0] and len(copies) == 2
    tables = source.trainable_variables + source.optimizer.variables[1:]  # the first is the step count
    assert len(tables) == 4  # U, V and their accumulators
    kept = [variable.numpy() for variable in tables]
    fit(data, config, native, init_from=source, continue_from=source)
    assert at_load == [0, 4]  # everything moved since set-up: copied before C writes to it
    for variable, before in zip(tables, kept, strict=True):
        np.testing.assert_array_equal(variable.numpy(), before, err_msg=variable.name)


def test_a_one_element_optimiser_state_is_copied_before_c_writes_to_it():
    """TensorFlow makes a one-element initial value from its cached constant, which every such
    state shares: training one (U of one feature, no bias, d = 1) must leave the next
    optimiser's start alone."""
    import tensorflow as tf

    data = tiny(ANNOTATION)
    data = Dataset(X=sp.csr_matrix(np.ones((data.n_examples, 1), np.float32)), Y=data.Y, feature_names=["x"],
                   label_names=data.label_names, task=ANNOTATION, name="one feature")
    model = build_model(data, ModelConfig(dimension=1, num_negatives=1, input_bias=False, seed=3))
    engine = NativeWarp(model, data, threads=1, seed=5)
    model.compile(optimizer=TrainConfig(learning_rate=0.3).make_optimizer())
    engine.optimiser_state_made()
    assert "accU" not in engine._own_at and "accV" in engine._own_at
    for step in range(3):
        engine.run_step(step)
    fresh = tf.keras.optimizers.Adagrad(0.3)
    fresh.build([tf.Variable(tf.zeros([1, 1]))])
    np.testing.assert_array_equal(fresh.variables[1].numpy(), np.float32([[0.1]]))


@pytest.mark.parametrize("make", [_tiny_engine, _engine_as_fit_makes_it], ids=["compiled first", "as fit does"])
def test_native_in_place_leaves_the_model_it_started_from_alone(make):
    """A model started from another (``init_from`` assigns the other's U and V, which TensorFlow
    shares until either is written) trains without changing the other, also after the engine
    was set up (the tables it knew as the variables' own have moved, and are copied at load)."""
    from awe_tf.training.fit import start_from
    from awe_tf.training.optimiser import continue_optimiser

    data = tiny(RECOMMENDATION)
    source, engine = make(data), make(data)
    source.load()
    start_from(engine.model, source.model)
    continue_optimiser(source.model, engine.model)
    kept = {name: variable.numpy() for name, variable in source._variables().items()}
    engine.run_step(0)
    assert engine.in_place
    for name, variable in source._variables().items():
        np.testing.assert_array_equal(variable.numpy(), kept[name], err_msg=name)
        assert not np.array_equal(engine._variables()[name].numpy(), kept[name]), name


@pytest.mark.parametrize("affinity", [None, "linear-sigmoid:alpha=1,beta=0.25"])
def test_native_engine_learns_on_movielens(data_dir, affinity):
    split = load_dataset("ml-100k")
    result = fit(split.train, ModelConfig(dimension=64, num_negatives=10, affinity=affinity),
                 TrainConfig(epochs=5, learning_rate=0.1, engine="native", verbose=0))
    metrics = evaluate_model(result.model.score, split)["metrics"]
    popular = evaluate_model(Popularity().fit(split.train).score, split)["metrics"]
    # LightFM's reference (benchmarks/quality.py) is P@10 0.1385; popularity 0.063.
    assert metrics["precision@10"] > 0.125, metrics
    assert metrics["precision@10"] > popular["precision@10"] + 0.05
    assert result.history["violation_rate"][-1] < result.history["violation_rate"][0]
    assert model_optimizer_moved(result.model)


def model_optimizer_moved(model):
    """The Adagrad accumulators (written back from C) hold the native steps' squared gradients."""
    return all(float(np.max(v.numpy())) > 0.1 + 1e-3 for v in model.optimizer.variables[1:])


def test_native_engine_on_annotation_beats_popularity():
    corel = load_dataset("corel5k")
    result = fit(corel.train, ModelConfig(dimension=32, num_negatives=10),
                 TrainConfig(epochs=5, engine="native", verbose=0))
    model_p1 = evaluate_model(result.model.score, corel)["metrics"]["precision@1"]
    popular = evaluate_model(Popularity().fit(corel.train).score, corel)["metrics"]["precision@1"]
    assert model_p1 > popular + 0.08, (model_p1, popular)


def test_native_killed_run_resumes_to_the_same_weights(tmp_path):
    corel = load_dataset("corel5k")
    carve = validation_split(corel.train)
    model_config = ModelConfig(dimension=16, num_negatives=5)

    def run(epochs, where):
        return fit(carve.train, model_config, TrainConfig(epochs=epochs, patience=0, engine="native", threads=1,
                                                          verbose=0), validation=carve, output_dir=where)

    full = run(4, tmp_path / "a")
    run(2, tmp_path / "b")
    resumed = run(4, tmp_path / "b")
    assert resumed.epochs_run == 4
    # One thread: the same seeds, example order and optimiser state give the same weights.
    for a, b in zip(full.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full.history["val_precision@1"], resumed.history["val_precision@1"])


def test_native_engine_refuses_what_it_cannot_train():
    corel = load_dataset("corel5k")
    for affinity in ("linear-sigmoid:on=pair", "sigmoid", "constant:1+topk:k=2", "topk:k=2,rest=learn"):
        with pytest.raises(ValueError, match="it trains WSABIE, linear sigmoid"):
            fit(corel.train, ModelConfig(dimension=8, affinity=affinity), TrainConfig(epochs=1, engine="native"))
    with pytest.raises(ValueError, match="fit_iterative"):  # k-NN: fit trains it with neither engine
        fit(corel.train, ModelConfig(dimension=8, affinity="knn:k=5"), TrainConfig(epochs=1, engine="native"))
    with pytest.raises(ValueError, match="'warp' only"):
        fit(corel.train, ModelConfig(dimension=8, loss="warp-all"), TrainConfig(epochs=1, engine="native"))
    with pytest.raises(ValueError, match="jit_compile"):
        fit(corel.train, ModelConfig(dimension=8), TrainConfig(epochs=1, engine="native", jit_compile=True))
    with pytest.raises(ValueError, match="engine must be one of"):
        TrainConfig(engine="cuda")
    import tensorflow as tf

    # a strategy of one replica too (one GPU mirrored): the engine steps outside its replicas
    with pytest.raises(ValueError, match="not under MirroredStrategy. Use engine='graph'"):
        fit(corel.train, ModelConfig(dimension=8), TrainConfig(epochs=1, engine="native"),
            strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))


def test_native_steps_are_counted_as_keras_steps_whatever_the_steps_per_execution():
    corel = load_dataset("corel5k")
    config = TrainConfig(epochs=3, engine="native", threads=1, verbose=0, steps_per_execution=4)
    model = fit(corel.train, ModelConfig(dimension=8, num_negatives=3), config).model
    assert int(model.optimizer.iterations.numpy()) == 3  # one chunk an epoch: every epoch trained
    assert int(model._train_counter.numpy()) == 3


def test_graph_step_is_used_again_after_a_native_fit():
    corel = load_dataset("corel5k")
    result = fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, engine="native",
                                                                                     verbose=0))
    assert int(result.model.optimizer.iterations.numpy()) == 1  # one chunk: Corel5k has < CHUNK_PAIRS pairs
    assert result.model.train_function is None  # the engine's step is unplugged after its fit
    fit(corel.train, model=result.model, train_config=TrainConfig(epochs=1, pairs_per_batch=1024, verbose=0))
    assert int(result.model.optimizer.iterations.numpy()) > 10  # the Keras graph step, batch by batch


def test_a_missing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    import awe_tf.native as native

    monkeypatch.setattr(native, "_LIBRARY", None)
    monkeypatch.setenv("AWE_TF_CACHE", str(tmp_path))  # nothing built there yet
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(RuntimeError, match="could not compile the native WARP engine; train with engine='graph'"):
        native.library()
    assert not list(tmp_path.glob("*.so"))


def test_iterative_awe_trains_every_step_natively():
    corel = load_dataset("corel5k")
    lines = []
    final, steps = fit_iterative(corel.train, ModelConfig(dimension=32, num_negatives=10, affinity="knn:k=20"),
                                 TrainConfig(epochs=2, engine="native", threads=1, verbose=0), iterations=2,
                                 log=lines.append)
    assert [int(step.model.optimizer.iterations.numpy()) for step in steps] == [2, 2, 2]  # a native chunk an epoch
    for before, after in zip(steps, steps[1:], strict=False):  # Adagrad's state carried on: it only grows
        for table in ("U", "V"):
            old, new = (adagrad_accumulator(s.model.optimizer, getattr(s.model, table).table).numpy()
                        for s in (before, after))
            assert np.all(new >= old) and np.any(new > old), table
    assert all("native engine" in line for line in lines[:3]), lines
    knn = evaluate_model(final.model.score, corel)["metrics"]["precision@1"]
    wsabie = evaluate_model(steps[0].model.score, corel)["metrics"]["precision@1"]
    assert knn > max(0.3, wsabie), (knn, wsabie)


def test_an_iterative_affinity_beside_a_per_term_one_trains_its_steps_with_g_on_the_graph_step():
    corel = load_dataset("corel5k")
    lines = []
    _, steps = fit_iterative(corel.train, ModelConfig(dimension=8, num_negatives=3, affinity="knn:k=5+topk:k=2"),
                             TrainConfig(epochs=1, engine="native", threads=1, verbose=0), iterations=1,
                             log=lines.append)
    assert int(steps[0].model.optimizer.iterations.numpy()) == 1  # one native chunk
    assert int(steps[1].model.optimizer.iterations.numpy()) > 10  # graph batches
    assert "native engine" in lines[0] and "graph engine" in lines[1], lines
