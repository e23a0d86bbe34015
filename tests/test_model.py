"""AWEModel: scoring by hand, negative sampling, max-norm, config and save/load round trip."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.data.pipeline import TrainingBatches, feature_batch
from awe_tf.layers.sampling import NegativeSampler
from awe_tf.models import AWEModel
from tests.test_pipeline import toy


def test_scores_are_x_U_V():
    model = AWEModel(n_features=5, n_labels=4, dimension=3, normalisation="none", input_bias=False)
    X = sp.csr_matrix([[1.0, 0, 2.0, 0, 0], [0, 0, 0, 0, 0.5]])
    U, V = model.U.table.numpy(), model.V.table.numpy()
    np.testing.assert_allclose(model.score(X), X.toarray() @ U @ V.T, rtol=1e-5, atol=1e-6)


def test_leave_one_out_pair_scores():
    model = AWEModel(n_features=6, n_labels=6, dimension=4, normalisation="none", num_negatives=3)
    U, V = model.U.table.numpy(), model.V.table.numpy()
    ids = np.array([[1, 3, 4, 0]])
    weights = np.array([[1.0, 1.0, 1.0, 0.0]], np.float32)
    self_position = np.array([[0, 2, -1]])
    labels = np.array([[1, 4, 5]])
    pair_inputs = model.affinity.pair_inputs(tf.gather(U, ids), weights, self_position)
    scores = model.affinity.pair_scores(pair_inputs, tf.gather(V, np.stack([labels, labels[:, ::-1]], -1)))
    x = U[1] + U[3] + U[4]
    want = [(x - U[1]) @ V[1], (x - U[4]) @ V[4], x @ V[5]]
    np.testing.assert_allclose(scores.numpy()[0, :, 0], want, rtol=1e-5)
    other = [(x - U[1]) @ V[5], (x - U[4]) @ V[4], x @ V[1]]
    np.testing.assert_allclose(scores.numpy()[0, :, 1], other, rtol=1e-5)


def test_negatives_never_valid_when_positive():
    sampler = NegativeSampler(n_labels=8, num_negatives=50)
    label_ids = tf.constant([[1, 2, 5, 8], [0, 8, 8, 8]])  # 8 = |Y| padding
    ids, valid = sampler(label_ids, 7)
    ids, valid = ids.numpy(), valid.numpy()
    assert ids.shape == (2, 4, 50)
    positives = [{1, 2, 5}, {0}]
    for b in range(2):
        np.testing.assert_array_equal(valid[b], ~np.isin(ids[b], list(positives[b])))
    again, _ = sampler(label_ids, 7)
    np.testing.assert_array_equal(ids, again.numpy())  # stateless: same step, same draws


def test_sampling_scales_to_a_million_labels():
    sampler = NegativeSampler(n_labels=1_000_000, num_negatives=16)
    label_ids = tf.constant(np.sort(np.random.default_rng(0).choice(1_000_000, (64, 32)), axis=1), tf.int32)
    ids, valid = sampler(label_ids, 1)
    assert ids.shape == (64, 32, 16) and valid.numpy().mean() > 0.99


def test_training_keeps_rows_in_the_ball_and_learns():
    data = toy("annotation", n=80)
    model = AWEModel(data.n_features, data.n_labels, dimension=8, max_norm=0.5, num_negatives=5, margin=0.1)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.5))
    batches = TrainingBatches(data, pairs_per_batch=64)
    history = model.fit(batches.dataset(epochs=None), epochs=3, steps_per_epoch=batches.steps_per_epoch(),
                        verbose=0)
    assert np.linalg.norm(model.U.table.numpy(), axis=1).max() <= 0.5 + 1e-5
    assert np.linalg.norm(model.V.table.numpy(), axis=1).max() <= 0.5 + 1e-5
    assert {"violation_rate", "rank_estimate", "loss"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # Keras' evaluate reports what fit logs: the mean loss per pair (TFRS' test_step, a batch's sum)
    evaluated = model.evaluate(batches.dataset(epochs=1), verbose=0, return_dict=True)
    assert {"violation_rate", "rank_estimate", "loss"} <= set(evaluated)
    assert 0 < evaluated["loss"] < 2 * history.history["loss"][0], (evaluated, history.history["loss"])


def test_compile_without_an_optimiser_gives_the_one_fit_trains_with():
    """``model.compile()`` (as after ``load_model``) gives TrainConfig's Adagrad at its learning
    rate, not Keras' RMSprop, so that Keras' fit trains as awe_tf's fit does and the native engine
    can read its state; a given optimiser is kept."""
    from awe_tf.config import TrainConfig
    from awe_tf.training.optimiser import plain_kind

    data = toy("annotation", n=40)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3)
    model.compile()
    assert plain_kind(model.optimizer) == "adagrad", type(model.optimizer)
    assert float(model.optimizer.learning_rate) == pytest.approx(TrainConfig().learning_rate)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.3))
    assert plain_kind(model.optimizer) == "sgd" and float(model.optimizer.learning_rate) == pytest.approx(0.3)


def test_keras_fit_and_evaluate_refuse_rows_and_labels_with_what_to_use():
    """Keras' fit and evaluate take batches of training pairs: rows and labels, as arrays or as a
    data set of them, are refused with the way to train and to measure precision, not an error
    from inside the step."""
    data = toy("annotation", n=40)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    X, Y = data.X.toarray(), data.Y.toarray()
    for method in (model.fit, model.evaluate):
        name = method.__name__
        with pytest.raises(TypeError, match=f"Keras' {name} takes batches of training pairs.*got ndarray"):
            method(X, Y, verbose=0)
        with pytest.raises(TypeError, match=f"Keras' {name} takes batches.*got csr_matrix"):
            method(data.X, verbose=0)
        pairs = tf.data.Dataset.from_tensor_slices((X.astype("float32"), Y.astype("float32"))).batch(8)
        with pytest.raises(TypeError, match=f"Keras' {name} takes batches.*got tuple.*evaluate_model"):
            method(pairs, verbose=0)
    batches = TrainingBatches(data, pairs_per_batch=32).dataset(epochs=1)  # what they take, as they take it
    assert "loss" in model.evaluate(batches, verbose=0, return_dict=True)


def test_evaluate_draws_other_negatives_for_each_batch():
    """Keras' evaluate over one batch given twice: the second draws other negatives (the running
    loss moves), and evaluate run again repeats itself."""
    data = toy("annotation", n=40)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    batch = next(TrainingBatches(data, pairs_per_batch=64).batches(0))
    twice = tf.data.Dataset.from_tensors(batch).repeat(2)

    class Running(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_test_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    runs = [Running(), Running()]
    for running in runs:
        model.evaluate(twice, verbose=0, callbacks=[running])
    assert runs[0].losses[0] != runs[0].losses[1], runs[0].losses
    assert runs[0].losses == runs[1].losses


def test_training_step_is_traced_once():
    # The optimiser's slots are made by compile(); made by the first step, tf.function would
    # trace the step twice (once creating variables, once without): seconds of a first epoch.
    data = toy("annotation", n=40)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    traced = []
    step = model.train_step

    def counting_step(inputs):
        traced.append(1)
        return step(inputs)

    model.train_step = counting_step
    batches = TrainingBatches(data, pairs_per_batch=32)
    model.fit(batches.dataset(epochs=None), epochs=2, steps_per_epoch=batches.steps_per_epoch(), verbose=0)
    assert len(traced) == 1
    assert model.optimizer.variables and int(model.optimizer.iterations) == 2 * batches.steps_per_epoch()


def test_keras_backup_and_restore_leaves_the_model_fit_to_train_again(tmp_path):
    """Keras' BackupAndRestore (preemption backups) deletes the model's training state when its
    fit ends, and Keras' next fit of the model reads it: without the model's class-level None
    that fit stops with an AttributeError."""
    data = toy("annotation", n=40)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3)
    model.compile()
    batches = TrainingBatches(data, pairs_per_batch=32)
    steps = batches.steps_per_epoch()
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model.fit(batches.dataset(epochs=None), epochs=2, steps_per_epoch=steps, callbacks=[backup], verbose=0)
    assert int(model.optimizer.iterations) == 2 * steps
    before = model.V.table.numpy().copy()
    history = model.fit(batches.dataset(epochs=None), epochs=1, steps_per_epoch=steps, verbose=0)
    assert len(history.history["loss"]) == 1 and int(model.optimizer.iterations) == 3 * steps
    assert not np.allclose(model.V.table.numpy(), before)


def test_training_step_is_traced_without_autograph():
    # Keras' training function is converted by AutoGraph, which converts what it calls unless
    # told not to. Inside the step (the frames below train_step) nothing may be converted: the
    # task, the affinity, the sampler.
    data = toy("recommendation", n=40)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3, data_task="recommendation")
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    stacks = []
    pair_scores = model.affinity.pair_scores

    def recording_pair_scores(*args, **kwargs):
        stacks.append(_callers(stop="train_step"))
        return pair_scores(*args, **kwargs)

    model.affinity.pair_scores = recording_pair_scores
    batches = TrainingBatches(data, pairs_per_batch=32)
    model.fit(batches.dataset(epochs=None), epochs=1, steps_per_epoch=batches.steps_per_epoch(), verbose=0)
    assert len(stacks) >= 2 and all(below_the_step for _, below_the_step in stacks)  # scored without, with gradient
    assert [code.co_name for codes, _ in stacks for code in codes if _converted(code)] == []


def test_scoring_graphs_are_traced_without_autograph():
    data = toy("annotation", n=20)
    model = AWEModel(data.n_features, data.n_labels, dimension=4)
    codes = []
    score_all = model.affinity.score_all

    def recording_score_all(*args, **kwargs):
        codes.extend(_callers()[0])
        return score_all(*args, **kwargs)

    model.affinity.score_all = recording_score_all
    model.score(data.X)
    model.top_k(data.X, 3)
    assert {"score", "top_k"} <= {code.co_name for code in codes}
    assert [code.co_name for code in codes if _converted(code)] == []


def _callers(stop: str | None = None):
    """``(code objects of the caller's callers, innermost first, up to a frame of the function
    named stop; whether that frame was found)``."""
    codes = []
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name != stop:
        codes.append(frame.f_code)
        frame = frame.f_back
    return codes, frame is not None


def _converted(code) -> bool:
    """Whether AutoGraph converted this function (it names them tf__<name>, in files it generates)."""
    return code.co_name.startswith("tf__") or "__autograph_generated_file" in code.co_filename


def test_save_load_round_trip(tmp_path):
    model = AWEModel(n_features=7, n_labels=5, dimension=4, margin=0.5, label_names=list("abcde"))
    model.U.table.assign(model.U.table * 0.3)
    X = sp.random(6, 7, density=0.5, random_state=0, format="csr")
    model.save_model(tmp_path / "m")
    loaded = AWEModel.load_model(tmp_path / "m")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.score(X), model.score(X))
    again = AWEModel.from_config(model.get_config())
    assert again.get_config() == model.get_config()


def test_rows_start_at_the_initial_scale():
    # rows of U and V start near norm init_scale (a label no training example reaches keeps its
    # start: at a million items most rows are rarely trained, so their starting scores compete
    # with learnt ones), and the scale is part of the saved config
    from awe_tf.config import ModelConfig, SettingError

    for scale in (1.0, 0.1):
        model = AWEModel(n_features=2000, n_labels=3000, dimension=64, init_scale=scale)
        for table in (model.U.table, model.V.table):
            norms = np.linalg.norm(table.numpy(), axis=1)
            assert abs(np.median(norms) - scale) < 0.05 * scale
        assert AWEModel.from_config(model.get_config()).U.init_scale == scale
    assert AWEModel(n_features=3, n_labels=4).init_scale == ModelConfig().init_scale
    with pytest.raises(SettingError, match="init_scale"):
        ModelConfig(init_scale=0.0)


def test_a_model_saved_before_the_initial_scale_was_recorded_loads_as_scale_1(tmp_path):
    import json

    model = AWEModel(n_features=7, n_labels=5, dimension=4, init_scale=1.0)
    model.save_model(tmp_path / "m")
    path = tmp_path / "m" / "awe_model.json"
    config = json.loads(path.read_text())
    del config["init_scale"]
    path.write_text(json.dumps(config))
    loaded = AWEModel.load_model(tmp_path / "m")
    assert loaded.init_scale == 1.0 and loaded.get_config() == model.get_config()
    X = sp.random(6, 7, density=0.5, random_state=0, format="csr")
    np.testing.assert_array_equal(loaded.score(X), model.score(X))


def test_label_names_are_not_walked_by_keras():
    # Keras walks tracked containers (element by element) whenever it collects layers and
    # metrics, several times a step: names kept as a tracked list made every training step at a
    # million labels cost a third of a second. They must be a plain tuple, outside tracking.
    names = [f"item {i}" for i in range(3000)]
    model = AWEModel(n_features=3000, n_labels=3000, dimension=4, data_task="recommendation", label_names=names)
    assert model.label_names == tuple(names) and model.get_config()["label_names"] == names
    containers = tf.__internal__.tracking.TrackableDataStructure
    walked = [t for t in model._self_tracked_trackables if isinstance(t, containers)]
    assert all(len(getattr(t, "_values", ())) < 100 for t in walked)
    assert not any(t is model.label_names for t in model._self_tracked_trackables)


def test_bad_inputs_raise():
    model = AWEModel(n_features=3, n_labels=4)
    with pytest.raises(ValueError, match="3"):
        model.score(sp.csr_matrix(np.ones((2, 5))))
    with pytest.raises(ValueError, match="NaN"):
        model.score(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="loss"):
        AWEModel(n_features=3, n_labels=4, loss="hinge")
    with pytest.raises(FileNotFoundError):
        AWEModel.load_model("/nonexistent/model")
    with pytest.raises(ValueError, match=r"candidates must be label ids from 0 to 3, got \[4, -1\]"):
        model.top_k(np.eye(3)[:1], 2, candidates=[1, 4, -1])
    with pytest.raises(ValueError, match="candidates must be a list of whole label ids, got float64"):
        model.top_k(np.eye(3)[:1], 2, candidates=[1.5])
    assert model.top_k(np.eye(3)[:1], 2, candidates=[])[0].tolist() == [[-1, -1]]  # nothing may be ranked


def test_training_calls_say_what_goes_where():
    """A whole split for its training part, or one config for the other, is refused with a
    TypeError saying what to pass, before any work (not a Keras or attribute error from inside)."""
    from awe_tf.data import load_dataset
    from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative
    from awe_tf.training.auto import choose_affinity

    split = load_dataset("corel5k")
    cases = {"train must be a Dataset .*split.train.*got a Split": lambda: fit(split, ModelConfig()),
             "model_config must be a ModelConfig, got a TrainConfig": lambda: fit(split.train, TrainConfig(epochs=1)),
             "train_config must be a TrainConfig, got a ModelConfig": lambda: fit(split.train, ModelConfig(),
                                                                                  ModelConfig()),
             "validation must be a Split.*got a Dataset": lambda: fit(split.train, validation=split.test),
             "fit_iterative: train must be a Dataset": lambda: fit_iterative(split, ModelConfig(affinity="knn")),
             "choose_affinity: train must be a Dataset": lambda: choose_affinity(split, ModelConfig(), TrainConfig())}
    for message, call in cases.items():
        with pytest.raises(TypeError, match=message):
            call()
    model = AWEModel(split.train.n_features, split.train.n_labels, dimension=4)
    for given, message in ((split.test, r"not a Dataset: give its rows, data.X"),
                           (split, r"not a Split: give a part's rows, split.test.X")):
        for score in (model.score, model.top_k):
            with pytest.raises(TypeError, match=message):  # not float()'s error from inside SciPy
                score(given)


@pytest.mark.parametrize("name", ["corel5k", "ml-100k"])
def test_a_test_split_is_refused_as_validation(name):
    """Epochs chosen on a data set's test part would report an optimistic test score: fit and
    fit_iterative refuse its protocol split as their validation, before any work, and the carve-out
    given beside the data it was carved from (whose rows it holds out), and take the carve-out
    beside its own training part."""
    from awe_tf.data import load_dataset, validation_split
    from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative

    split = load_dataset(name)
    for call in (fit, fit_iterative):
        message = f"{call.__name__}: validation is a data set's test split.*validation_split"
        with pytest.raises(ValueError, match=message):
            call(split.train, ModelConfig(), TrainConfig(), validation=split)
    carve = validation_split(split.train)
    assert (split.held_out, carve.held_out) == ("test", "validation")
    assert split.test.test_part and not split.train.test_part and not carve.test.test_part
    for call, test in ((fit, split.test), (fit_iterative, split.test.rows(np.arange(3)))):  # its rows, or some
        with pytest.raises(ValueError, match=rf"{call.__name__}: train is a data set's test part \(split.test\).*"
                                             "train on split.train"):
            call(test, ModelConfig(affinity="knn" if call is fit_iterative else None), TrainConfig())
    # the part the carve-out was made from, itself or a copy, holds its held-out rows: training on it is refused
    for call, train in ((fit, split.train), (fit_iterative, dataclasses.replace(split.train))):
        with pytest.raises(ValueError, match=rf"{call.__name__}: validation was carved out of this training data.*"
                                             rf"{call.__name__}\(validation.train, ..., validation=validation\)"):
            call(train, ModelConfig(affinity="knn" if call is fit_iterative else None), TrainConfig(),
                 validation=carve)
    with pytest.raises(ValueError, match="held_out must be one of"):
        dataclasses.replace(split, held_out="Test")
    mine = dataclasses.replace(split, held_out="validation")  # files whose second part is for validation
    with pytest.raises(ValueError, match="epochs must be at least 1"):  # taken as validation: refused further on
        fit(split.train, ModelConfig(), TrainConfig(epochs=0), validation=mine)
    result = fit(carve.train, ModelConfig(dimension=4, num_negatives=2), TrainConfig(epochs=1, verbose=0),
                 validation=carve)
    assert result.model is not None


def test_public_api():
    import awe_tf

    assert awe_tf.AWEModel is AWEModel
    for name in awe_tf.__all__:
        assert getattr(awe_tf, name) is not None
    import tensorflow as tf

    assert tf.keras.__name__.startswith("tf_keras")  # Keras 2, as TFRS needs


def test_import_awe_tf_alone_reaches_the_subpackages():
    """``import awe_tf`` then ``awe_tf.models...`` / ``awe_tf.serving...``, as the README writes
    them, in a fresh process where nothing else imported those subpackages."""
    script = ("import awe_tf; print(awe_tf.models.AWEModel.__name__, awe_tf.serving.load.__name__, "
              "awe_tf.data.load_split.__name__)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["AWEModel", "load", "load_split"]
    import awe_tf

    for wrong in ("modles", "datasets", "models.x"):  # a typo, the data folder, a dotted name: none imported
        with pytest.raises(AttributeError, match=f"no attribute '{wrong}'"):
            getattr(awe_tf, wrong)
    assert not hasattr(awe_tf, "datasets.corel5k") and "models" in dir(awe_tf) and "AWEModel" in dir(awe_tf)
    import pkgutil

    assert set(awe_tf._SUBMODULES) == {module.name for module in pkgutil.iter_modules(awe_tf.__path__)}


def test_evaluating_a_model_checks_it_was_trained_on_that_data():
    """A model evaluated on data whose labels have other names or another order (the same ids
    naming other labels) is refused, not scored as if it were the same; a model may be given
    itself, not only its ``score``."""
    from awe_tf.data import load_dataset
    from awe_tf.evaluation import evaluate_model

    split = load_dataset("corel5k")
    names = list(split.train.label_names)
    model = AWEModel(split.train.n_features, split.train.n_labels, dimension=4, label_names=names, seed=0)
    assert evaluate_model(model, split) == evaluate_model(model.score, split)
    moved = dataclasses.replace(split, train=dataclasses.replace(split.train, label_names=names[1:] + names[:1]))
    for given in (model, model.score):
        with pytest.raises(ValueError, match=rf"the model's labels in another order .*: \d+ of 374 label ids name "
                                             rf"another label \(label 0 is {names[0]!r} in the model, {names[1]!r} in "
                                             r"the data\)"):
            evaluate_model(given, moved)
    numbered = dataclasses.replace(split, train=dataclasses.replace(split.train, label_names=[str(j) for j in
                                                                                            range(374)]))
    by_number = AWEModel(split.train.n_features, 374, dimension=4, label_names=list(range(374)), seed=0)
    assert evaluate_model(by_number, numbered)["n_test"] == 500  # names compared as text: 7 and "7" are one
    smaller = AWEModel(split.train.n_features, 7, dimension=4)
    with pytest.raises(ValueError, match="7 labels but the data 499 / 374"):
        evaluate_model(smaller.score, split)
    with pytest.raises(TypeError, match=r"evaluate_model\(model, split\) takes the model .* first, got a Split"):
        evaluate_model(split, split)
    from awe_tf.evaluation import evaluate_served

    unlabelled = dataclasses.replace(split, test=split.test.with_matrices(Y=sp.csr_matrix(split.test.Y.shape)))
    for call, what in ((evaluate_model, model), (evaluate_served, None)):  # every metric would be NaN
        with pytest.raises(ValueError, match=rf"{call.__name__}: the test part \(500 rows\) holds no positive label"):
            call(what, unlabelled)
    from awe_tf.data import validation_split
    from awe_tf.training import ModelConfig, TrainConfig, fit

    with pytest.raises(ValueError, match="fit: validation: the data has the model.s labels in another order"):
        fit(split.train, ModelConfig(dimension=4), TrainConfig(epochs=1, verbose=0), validation=validation_split(
            moved.train))  # checked once, before training: validation then ranks unchecked every epoch


def test_evaluating_a_baseline_imports_no_tensorflow():
    script = ("import sys, awe_tf; from awe_tf.baselines import Popularity; from awe_tf.evaluation import "
              "evaluate_model; split = awe_tf.load_dataset('corel5k'); "
              "evaluate_model(Popularity().fit(split.train).score, split); print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stderr[-2000:]


def test_a_scored_model_can_be_freed():
    """Scoring keeps traced functions with the model, not in a global cache that would keep every
    model (each tuning trial, each iterative step) alive."""
    import gc
    import weakref

    model = AWEModel(n_features=5, n_labels=4, dimension=3)
    model.score(sp.csr_matrix(np.eye(5)))
    model.top_k(sp.csr_matrix(np.eye(5)), 2)
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def _compiled(affinity=None):
    data = toy("annotation", n=80, n_items=11)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, num_negatives=3, affinity=affinity, seed=1)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    return model, data


def _graph_epoch(model, data) -> None:
    """One epoch of the graph step on ``data``."""
    batches = TrainingBatches(data, pairs_per_batch=64)
    model.fit(batches.dataset(epochs=None), epochs=1, steps_per_epoch=batches.steps_per_epoch(), verbose=0)


def _graph_trained(affinity=None):
    model, data = _compiled(affinity)
    _graph_epoch(model, data)
    return model, data


def _whole_read_scores(model, data) -> np.ndarray:
    """The model's scores of ``data.X`` through :meth:`AWEModel.call`: one whole read of V."""
    batch = feature_batch(data.X)
    return model(model.model_inputs(batch["feature_ids"], batch["feature_weights"])).numpy()


def _readers(model, table) -> list:
    """The ops reading ``table``'s variable in the model's traced scoring graph."""
    from awe_tf.models import inference

    graph = inference.graphs(model).scores.get_concrete_function().graph
    inner = [internal for external, internal in graph.captures if external is table.handle]
    return [consumer for tensor in inner for consumer in tensor.consumers()]


def _waits_for(op) -> set:
    """The control inputs of ``op`` and of the ops it takes inputs from."""
    return {*op.control_inputs, *(c for tensor in op.inputs for c in _waits_for(tensor.op))}


def _reads_of(model, table) -> set:
    return {op.type for op in _readers(model, table)}


def _no_sharing(monkeypatch):
    """Scoring as where TensorFlow cannot be asked to share a table's buffer again."""
    from awe_tf.layers.towers import MaxNormEmbedding

    monkeypatch.setattr(MaxNormEmbedding, "share_buffer", lambda self: False)


@pytest.mark.parametrize("shareable", [True, False])
def test_after_the_graph_step_scoring_reads_v_in_blocks_and_scores_the_same(monkeypatch, shareable):
    """The graph step reads V sparsely, after which TensorFlow copies V on every whole read.
    Scoring first has it hand out V's own buffer again (share_buffer), then takes V's blocks as
    slices of one read, copying nothing; where that cannot be done it gathers V a block of rows
    at a time. Either way each block is read once the block before is scored, and the scores are
    a whole read's."""
    from awe_tf.layers import towers
    from awe_tf.native.engine import _shares_its_buffer

    fresh = AWEModel(7, 11, dimension=4, seed=1)
    assert _shares_its_buffer(fresh.V.table) and not fresh.labels_in_blocks()
    assert _reads_of(fresh, fresh.V.table) == {"ReadVariableOp"}

    if not shareable:
        _no_sharing(monkeypatch)
    monkeypatch.setattr(towers, "BLOCK_ROWS", 3)  # 11 labels: blocks of 3, 3, 3 and 2 rows
    model, data = _graph_trained()
    assert not _shares_its_buffer(model.V.table)  # copy-on-read after the step's sparse reads
    assert model.V.read_sparsely and model.labels_in_blocks()
    reads = _readers(model, model.V.table)
    if shareable:
        assert [op.type for op in reads] == ["ReadVariableOp"]
        blocks = [op for op in reads[0].outputs[0].consumers() if op.type == "StridedSlice"]
    else:
        assert {op.type for op in reads} == {"ResourceGather"}
        blocks = reads
    assert len(blocks) == 4
    # one block read at a time: each read but the first waits for the scores of the block before
    waits = sorted((_waits_for(op) for op in blocks), key=len)
    scored = [op for op in blocks[0].graph.get_operations() if op.type == "MatMul"]
    assert [len(w) for w in waits] == [0, 1, 1, 1] and set().union(*waits) == set(scored[:3])
    np.testing.assert_allclose(model.score(data.X), _whole_read_scores(model, data), rtol=1e-6, atol=1e-7)
    assert _shares_its_buffer(model.V.table) == shareable  # scoring left V's buffer handed out as it is


def test_a_shared_buffer_read_before_more_training_keeps_its_values():
    """share_buffer is safe between steps: a tensor read whole from the shared buffer keeps its
    values when the table is written after it (TensorFlow gives the variable a copy first), by a
    sparse write or by more training, and the writes take effect."""
    from awe_tf.native.engine import _shares_its_buffer

    model, data = _graph_trained()
    np.testing.assert_allclose(model.score(data.X), _whole_read_scores(model, data), rtol=1e-6, atol=1e-7)
    assert _shares_its_buffer(model.V.table)  # scoring shared V's buffer again
    held = model.V.table.value()
    before = held.numpy().copy()
    model.V.table.scatter_update(tf.IndexedSlices(tf.fill([1, 4], 0.5), [2]))
    np.testing.assert_array_equal(held.numpy(), before)
    assert np.all(model.V.table.numpy()[2] == 0.5)

    model.score(data.X)
    held = model.V.table.value()
    before = held.numpy().copy()
    _graph_epoch(model, data)
    np.testing.assert_array_equal(held.numpy(), before)
    assert not np.array_equal(model.V.table.numpy(), before)
    np.testing.assert_allclose(model.score(data.X), _whole_read_scores(model, data), rtol=1e-6, atol=1e-7)


def test_scoring_traced_before_training_is_traced_again_when_v_must_be_gathered(monkeypatch):
    """A graph traced while V's buffer was shared reads V once whole; after the graph step, where
    the buffer cannot be shared again, that read would copy V every batch: scoring traces a graph
    that gathers V's blocks instead."""
    from awe_tf.layers import towers

    _no_sharing(monkeypatch)
    monkeypatch.setattr(towers, "BLOCK_ROWS", 3)
    model, data = _compiled()
    model.score(data.X)
    assert _reads_of(model, model.V.table) == {"ReadVariableOp"}
    _graph_epoch(model, data)
    scores = model.score(data.X)
    assert _reads_of(model, model.V.table) == {"ResourceGather"}
    np.testing.assert_allclose(scores, _whole_read_scores(model, data), rtol=1e-6, atol=1e-7)


def test_ranking_by_g_and_the_label_prior_reads_v_once_whole():
    """k-NN ranking scores G's labels and every label's prior: both from one whole read of V, so
    no sparse read beside it has TensorFlow copy V (or leave it copied on every read)."""
    from awe_tf.models import inference
    from awe_tf.native.engine import _shares_its_buffer

    data = toy("annotation", n=40, n_items=9)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, affinity="knn:k=3", seed=1)
    model.adapt(data)
    model.affinity.set_reference(model.U.table.numpy(), model.prepare(data.X), data.Y, model.input_bias)
    model.V(tf.constant([0, 1]))  # a sparse read: copy-on-read, as after the graph step
    ids, _ = model.top_k(data.X, k=3)
    graph = inference.graphs(model).retrieve.get_concrete_function().graph
    reads = [op.type for external, internal in graph.captures if external is model.V.table.handle
             for op in internal.consumers()]
    assert reads and set(reads) == {"ReadVariableOp"}
    assert _shares_its_buffer(model.V.table) and (ids >= 0).all()


def test_after_the_graph_step_top_k_ranks_v_in_blocks_as_a_whole_read_does(monkeypatch):
    """top_k in the process reads V a block at a time too, keeping each row's k best so far
    (retrieval.best_by_blocks, tested on its own for ties); it ranks as one whole read of V does."""
    from awe_tf.layers import towers
    from awe_tf.models import inference

    monkeypatch.setattr(towers, "BLOCK_ROWS", 3)  # 11 labels: blocks of 3, 3, 3 and 2 rows
    model, data = _graph_trained()
    graph = inference.graphs(model).retrieve.get_concrete_function().graph
    reads = [op for external, internal in graph.captures if external is model.V.table.handle
             for op in internal.consumers()]
    assert [op.type for op in reads] == ["ReadVariableOp"]  # V's buffer shared again (share_buffer)
    assert len([op for op in reads[0].outputs[0].consumers() if op.type == "StridedSlice"]) == 4
    exclude = sp.random(data.n_examples, data.n_labels, density=0.3, random_state=0, format="csr")
    blocked = {k: model.top_k(data.X, k=k, exclude=exclude) for k in (1, 4, 11)}

    monkeypatch.setattr(model, "labels_in_blocks", lambda: False)  # one whole read of V
    assert {op.type for op in _readers(model, model.V.table)} == {"ReadVariableOp"}
    whole = model.score(data.X)
    for k, (ids, scores) in blocked.items():
        whole_ids, whole_scores = model.top_k(data.X, k=k, exclude=exclude)
        np.testing.assert_array_equal(ids == -1, whole_ids == -1)  # excluded labels leave the same slots empty
        np.testing.assert_allclose(scores, whole_scores, rtol=1e-6, atol=1e-7)
        found = ids >= 0
        rows = np.nonzero(found)[0]
        np.testing.assert_allclose(whole[rows, ids[found]], scores[found], rtol=1e-6, atol=1e-7)
        assert not exclude[rows, ids[found]].any()
        assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in ids)
    assert (blocked[11][0] == -1).any()


@pytest.mark.parametrize("widths", [[11], [3, 3, 3, 2], [1, 4, 6], [5, 1, 1, 4]])
def test_best_by_blocks_is_one_top_k_over_the_joined_blocks(widths):
    """Exact ties within and across blocks, labels masked to -inf, k below, within and above a
    block's width: the same scores as one top_k over every label, and the same ids wherever a
    label is left, ties to the lower id."""
    from awe_tf.models.retrieval import best_by_blocks

    scores = np.random.default_rng(0).integers(0, 4, size=(6, 11)).astype(np.float32)  # many ties
    scores[:, [2, 6, 9]] = scores[:, [2]]
    masked = np.zeros_like(scores, bool)
    masked[1, :] = True  # a row with no label left
    masked[2, ::2] = True
    expected_scores = np.where(masked, -np.inf, scores)
    blocks = np.split(scores, np.cumsum(widths)[:-1], axis=1)

    def mask(ids, block):
        return tf.where(tf.gather(tf.constant(masked), ids, batch_dims=1), -np.inf, block)

    for k in (1, 2, 5, 11):
        ids, values = best_by_blocks([tf.constant(b) for b in blocks], tf.constant(k), mask)
        top_values = tf.math.top_k(tf.constant(expected_scores), k).values
        np.testing.assert_array_equal(values.numpy(), top_values.numpy())
        order = np.lexsort((np.arange(11)[None, :].repeat(6, 0), -expected_scores), axis=1)[:, :k]
        real = top_values.numpy() > -np.inf
        np.testing.assert_array_equal(ids.numpy()[real], order[real])  # ties to the lower label id


def test_top_k_returns_the_heaps_free_memory_once_it_has_ranked(monkeypatch):
    """Ranking batch by batch leaves the batches' freed scores with the C heap: top_k hands them
    back once, after its last batch, as evaluation does."""
    from awe_tf.models import inference

    events = []
    monkeypatch.setattr(inference, "return_free_memory", lambda: events.append("returned"))
    data = toy("annotation", n=30, n_items=9)
    model = AWEModel(data.n_features, data.n_labels, dimension=4, seed=0)
    graphs = inference.graphs(model)
    rank = graphs.retrieve
    monkeypatch.setattr(graphs, "retrieve", lambda *a: events.append("ranked") or rank(*a))
    model.top_k(data.X, k=3)
    assert events == ["ranked", "returned"]
    model.top_k(sp.vstack([data.X] * 40), k=3)  # 1,200 rows: several batches
    assert events[2:] == ["ranked"] * (len(events) - 3) + ["returned"] and len(events) > 5


def test_many_models_in_one_process_do_not_warn_of_retracing(retracing_warnings):
    """Each model traces its own scoring and transform graphs once. tf.function counts traces
    per code object, so ten models each scored once would look like retracing to it and warn
    (as a tuning run or a notebook would see); the graphs are called as traced functions."""
    data = toy("annotation", n=30, n_items=9)
    for seed in range(10):
        model = AWEModel(data.n_features, data.n_labels, dimension=4, seed=seed)
        model.adapt(data)
        model.score(data.X)
        model.top_k(data.X, k=3)
    assert not retracing_warnings()


def test_affinities_not_of_the_linear_score_alone_score_v_whole():
    model, data = _graph_trained(affinity="topk:k=2")
    assert model.V.read_sparsely and not model.labels_in_blocks()
    assert _reads_of(model, model.V.table) == {"ReadVariableOp"}
    assert np.isfinite(model.score(data.X)).all()


@pytest.mark.parametrize(("sparse", "shareable"), [(False, True), (True, True), (True, False)])
def test_all_finite_checks_every_block(monkeypatch, sparse, shareable):
    """The check reads a block at a time: slices of the table's own buffer, shared again after a
    sparse read where it can be (share_buffer), else gathered rows."""
    from awe_tf.layers import towers
    from awe_tf.native.engine import _shares_its_buffer

    monkeypatch.setattr(towers, "BLOCK_ROWS", 3)
    if not shareable:
        _no_sharing(monkeypatch)
    model = AWEModel(7, 11, dimension=4, seed=1)
    if sparse:
        model.V(tf.constant([0, 5]))
    assert model.V.whole_reads_copy() == sparse and len(list(model.V.row_blocks())) == 4
    np.testing.assert_array_equal(np.concatenate(list(model.V.row_blocks())), model.V.table.numpy())
    assert model.V.all_finite()
    assert _shares_its_buffer(model.V.table) == shareable and model.V.whole_reads_copy() == (not shareable)
    model.V.table.scatter_update(tf.IndexedSlices(tf.fill([1, 4], np.nan), [10]))  # the last block's last row
    assert not model.V.all_finite()


def test_shared_blocks_are_slices_of_the_tables_own_buffer(monkeypatch):
    """After a sparse read, share_buffer has whole reads hand out the variable's buffer again, and
    each block is a view into it: no block is a copy (TensorFlow slices without copying where the
    slice starts on a 64-byte boundary: rows of 16 floats here, blocks of 32,768 rows always)."""
    from awe_tf.layers import towers
    from awe_tf.native.engine import _address

    monkeypatch.setattr(towers, "BLOCK_ROWS", 3)
    model = AWEModel(7, 11, dimension=16, seed=1)
    model.V(tf.constant([0, 5]))
    assert model.V.share_buffer() and not model.V.whole_reads_copy()
    start = _address(model.V.table.value())
    row = 16 * np.dtype(np.float32).itemsize
    assert [_address(block) for block in model.V.row_blocks()] == [start + i * 3 * row for i in range(4)]


def test_a_table_the_native_engine_reads_whole_is_checked_without_a_sparse_read():
    """The check for non-finite values at each epoch's end must not make TensorFlow copy a table
    that C trains in its own buffer (read_whole), even where a sparse read was traced."""
    from awe_tf.native.engine import _shares_its_buffer

    model = AWEModel(7, 11, dimension=4, seed=1)
    tf.function(lambda ids: model.V(ids)).get_concrete_function(tf.TensorSpec([None], tf.int32))  # traced, not run
    model.V.read_whole = True
    assert model.V.read_sparsely and not model.V.whole_reads_copy()
    assert model.V.all_finite() and _shares_its_buffer(model.V.table)


def test_each_epochs_end_returns_memory_after_the_check_and_before_validation(monkeypatch):
    from awe_tf.data import Split
    from awe_tf.layers.towers import MaxNormEmbedding
    from awe_tf.training import ModelConfig, TrainConfig, callbacks, fit

    events = []
    check, validate = MaxNormEmbedding.all_finite, callbacks.rank_test_part
    monkeypatch.setattr(MaxNormEmbedding, "all_finite", lambda self: events.append("check") or check(self))
    monkeypatch.setattr(callbacks, "return_free_memory", lambda: events.append("returned"))
    monkeypatch.setattr(callbacks, "rank_test_part", lambda *a, **k: events.append("validated") or validate(*a, **k))
    data = toy("annotation", n=60, n_items=11)
    fit(data, ModelConfig(dimension=4, num_negatives=3), TrainConfig(epochs=2, verbose=0),
        validation=Split(train=data, test=data))
    assert events == ["check", "check", "returned", "validated"] * 2


def test_keras_summary_counts_the_affinity_s_weights_as_used():
    """G's weights are made by attach, not by Keras' build: the layer is marked built, so the
    summary lists them on its row, and no layer as unused."""
    lines = []
    AWEModel(10, 5, dimension=4, affinity="constant:1+matrix").summary(print_fn=lines.append)
    rows = [line for line in lines if "(Sum)" in line or "(Matrix)" in line]
    assert rows and not any("unused" in line for line in lines), lines
    assert any(line.split()[-1] == "55" for line in rows)  # the (10 + bias) x 5 matrix


def test_a_recommendation_model_makes_rows_of_items_by_name_as_its_export_does():
    import warnings

    from awe_tf.data import Dataset

    data = Dataset.from_interactions(["u1", "u1", "u2", "u3", "u3"], ["a", "b", "b", "c", "a"], [5, 1, 2, 1, 3])
    model = AWEModel(3, 3, dimension=2, label_names=data.label_names, data_task="recommendation", seed=1)
    model.adapt(data)
    with pytest.warns(UserWarning, match="these items weigh 1 each.*give weights="):
        rows = model.rows_of([["a", "b"], ["c"]])
    np.testing.assert_array_equal(rows.toarray(), [[1, 1, 0], [0, 0, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # weights given: nothing to warn of
        weighted = model.rows_of([["a", "b"]], weights=[[5, 1]])
        assert (model.rows_of([[" a", "b "]], weights=[[5, 1]]) != weighted).nnz == 0  # spaces around ids left out
    np.testing.assert_array_equal(weighted.toarray(), data.X[data.rows_of(["u1"])].toarray())
    np.testing.assert_array_equal(model.top_k(weighted, 1)[0], model.top_k(data.X[data.rows_of(["u1"])], 1)[0])
    with pytest.raises(ValueError, match="items the model does not have: 'z'"):
        model.rows_of([["a", "z"]], weights=[[1, 1]])
    with pytest.raises(ValueError, match="rows_of is for recommendation models"):
        AWEModel(3, 3, dimension=2).rows_of([["a"]])


@pytest.fixture
def emotions(data_dir):
    from awe_tf.data import load_dataset

    return load_dataset("emotions")  # 72 numeric columns


def _emotions_model(split, **kwargs):
    """A model of Emotions (numeric columns, which the input transform standardises), adapted."""
    train = split.train
    model = AWEModel(train.n_features, train.n_labels, dimension=8, label_names=train.label_names, **kwargs)
    model.adapt(train)
    return model


@pytest.mark.parametrize("name", ["w.h5", "ckpt/w"])
def test_weights_loaded_into_a_model_built_anew_rank_as_the_saved_one(tmp_path, emotions, name):
    """Keras' save_weights / load_weights: the input transform (what adapt fitted, no weight)
    goes in a file beside the weights and comes back with them, so a model built with the same
    arguments, never adapted, scores raw rows as the saved model does; weights that come without
    it into such a model are warned about."""
    from awe_tf.models.awe import TRANSFORM_SUFFIX

    saved = _emotions_model(emotions)
    saved.save_weights(tmp_path / name)
    fresh = AWEModel(saved.n_features, saved.n_labels, dimension=8, label_names=saved.label_names)
    rows = emotions.test.X[:20]
    assert np.abs(fresh.score(rows) - saved.score(rows)).max() > 1e-3  # other tables, other transform
    fresh.load_weights(tmp_path / name)
    np.testing.assert_array_equal(fresh.score(rows), saved.score(rows))
    assert fresh.get_config()["input_transform"] == saved.get_config()["input_transform"]
    (tmp_path / (name + TRANSFORM_SUFFIX)).unlink()
    other = AWEModel(saved.n_features, saved.n_labels, dimension=8, label_names=saved.label_names)
    with pytest.warns(UserWarning, match="never fitted, so it reads raw rows as they are"):
        other.load_weights(tmp_path / name)
    arrays = AWEModel(saved.n_features, saved.n_labels, dimension=8, label_names=saved.label_names)
    with pytest.warns(UserWarning, match="set_weights: the input transform .* is not among a model's weights"):
        arrays.set_weights(saved.get_weights())  # arrays alone: the transform is not among them
    import warnings

    built = AWEModel.from_config(saved.get_config())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its transform came with its config
        built.set_weights(saved.get_weights())
    np.testing.assert_array_equal(built.score(rows), saved.score(rows))


def test_a_savedmodel_of_the_model_is_refused_saying_what_saves_and_what_serves(tmp_path, emotions):
    """Keras' SavedModel of the model (model.save(folder), tf.saved_model.save, a ModelCheckpoint
    without .keras) would serve transformed rows under raw rows' names: refused, naming .keras,
    save_model and the export; a .keras file is Keras' own and loads to the same scores."""
    model = _emotions_model(emotions)
    for save in (lambda: model.save(tmp_path / "folder"), lambda: model.save(tmp_path / "f", save_format="tf"),
                 lambda: tf.saved_model.save(model, str(tmp_path / "sm")),
                 lambda: tf.keras.models.save_model(model, str(tmp_path / "km"))):
        with pytest.raises(ValueError, match=r"SavedModel .* model\.save\('m\.keras'\) .* awe_tf\.serving\.export"):
            save()
    assert not (tmp_path / "folder").exists() and not (tmp_path / "sm" / "saved_model.pb").exists()
    model.save(tmp_path / "m.keras")
    loaded = tf.keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.score(emotions.test.X[:5]), model.score(emotions.test.X[:5]))


def test_a_mixed_precision_policy_is_refused_by_name():
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with pytest.raises(ValueError, match="compute in float32; Keras' global policy is 'mixed_float16'"):
            AWEModel(n_features=5, n_labels=4, dimension=3)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    AWEModel(n_features=5, n_labels=4, dimension=3)


def test_a_model_scored_before_it_is_adapted_scores_with_its_transform_after(emotions):
    rows = emotions.test.X[:10]
    early = AWEModel(emotions.train.n_features, emotions.train.n_labels, dimension=8)
    early.score(rows)  # traces the scoring graphs with the transform not fitted
    early.adapt(emotions.train)
    np.testing.assert_array_equal(early.score(rows), _emotions_model(emotions).score(rows))


def test_weights_kept_where_keras_overwrite_prompt_is_declined_keep_their_transform(tmp_path, emotions, monkeypatch):
    """save_weights(overwrite=False) over existing weights asks first; declined, Keras writes
    nothing, and neither is the transform beside them rewritten (it would no longer be theirs)."""
    from tf_keras.src.utils import io_utils

    from awe_tf.models.awe import TRANSFORM_SUFFIX

    saved = _emotions_model(emotions)
    saved.save_weights(tmp_path / "w.h5")
    kept = (tmp_path / ("w.h5" + TRANSFORM_SUFFIX)).read_text()
    never_adapted = AWEModel(saved.n_features, saved.n_labels, dimension=8)
    monkeypatch.setattr(io_utils, "ask_to_proceed_with_overwrite", lambda path: False)
    never_adapted.save_weights(tmp_path / "w.h5", overwrite=False)
    assert (tmp_path / ("w.h5" + TRANSFORM_SUFFIX)).read_text() == kept != "null"
    monkeypatch.setattr(io_utils, "ask_to_proceed_with_overwrite", lambda path: True)
    never_adapted.save_weights(tmp_path / "w.h5", overwrite=False)
    assert (tmp_path / ("w.h5" + TRANSFORM_SUFFIX)).read_text() == "null"
