"""fit(): learns on real data, stops early on validation, resumes a killed run."""

import dataclasses
import json
import re

import numpy as np
import pytest
import tensorflow as tf

from awe_tf.baselines import Popularity
from awe_tf.data import load_dataset, validation_split
from awe_tf.evaluation import evaluate_model
from awe_tf.training import ModelConfig, TrainConfig, build_model, fit
from awe_tf.training.optimiser import adagrad_accumulator


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")  # bundled: no data dir needed


def test_wsabie_beats_popularity_on_corel5k(corel):
    result = fit(corel.train, ModelConfig(dimension=32, num_negatives=10),
                 TrainConfig(epochs=3, verbose=0))
    model_p1 = evaluate_model(result.model.score, corel)["metrics"]["precision@1"]
    popular = evaluate_model(Popularity().fit(corel.train).score, corel)["metrics"]["precision@1"]
    assert model_p1 > popular + 0.08, (model_p1, popular)
    assert result.pairs_per_second > 0 and result.epochs_run == 3


def test_a_small_training_set_takes_the_fewest_steps_an_epoch_takes(data_dir):
    """Emotions' 391 training rows (3,128 pair slots) make 4 steps of 1,024 slots; by default an
    epoch is cut into at least 32 steps (33: examples of 8 and 16 slots do not fill each step)."""
    emotions = load_dataset("emotions").train
    for given, steps in (({}, 33), ({"min_steps_per_epoch": 1}, 4)):
        settings = TrainConfig(epochs=1, verbose=0, **given)
        model = fit(emotions, ModelConfig(dimension=8, num_negatives=3), settings).model
        assert int(model.optimizer.iterations) == steps, given


def test_several_steps_a_call_train_as_one_a_call_does_with_the_step_traced_once(monkeypatch, data_dir):
    """steps_per_execution groups the graph engine's steps into calls, an epoch's last call
    shorter (33 steps an epoch, 8 a call): the same steps, the same U and V; Keras' own loop
    would trace the step twice."""
    from awe_tf.models.awe import AWEModel

    traced = []
    step = AWEModel.train_step
    monkeypatch.setattr(AWEModel, "train_step", lambda self, inputs: traced.append(1) or step(self, inputs))
    emotions = load_dataset("emotions").train
    tables = {}

    class Calls(tf.keras.callbacks.Callback):  # the steps Keras says each call ran (StopAtNonFiniteStep reads them)
        def on_train_batch_begin(self, batch, logs=None):
            self.first = batch

        def on_train_batch_end(self, batch, logs=None):
            calls.append((self.first, batch))

    for per_call in (1, 8):
        traced.clear()
        calls = []
        model = fit(emotions, ModelConfig(dimension=8, num_negatives=3),
                    TrainConfig(epochs=2, verbose=0, steps_per_execution=per_call), callbacks=[Calls()]).model
        assert int(model.optimizer.iterations) == 66 and len(traced) == 1, (per_call, len(traced))
        assert int(model.steps_per_execution.numpy()) == 1  # what the model runs afterwards: a step a call
        tables[per_call] = (model.U.table.numpy(), model.V.table.numpy())
    assert calls == 2 * [(0, 7), (8, 15), (16, 23), (24, 31), (32, 32)]
    for one, several in zip(tables[1], tables[8], strict=True):
        np.testing.assert_array_equal(one, several)

    class Stop(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("stopped")

    model = build_model(emotions, ModelConfig(dimension=8, num_negatives=3))
    with pytest.raises(RuntimeError, match="stopped"):
        fit(emotions, train_config=TrainConfig(epochs=1, verbose=0), model=model, callbacks=[Stop()])
    assert int(model.steps_per_execution.numpy()) == 1  # also when training stops with an error


def test_a_non_finite_loss_names_the_step_or_the_calls_steps():
    from awe_tf.training.callbacks import StopAtNonFiniteStep, TrainingDiverged

    stop = StopAtNonFiniteStep(0.1)
    stop.on_epoch_begin(2)
    for first, last, said in ((4, 4, "at epoch 3, step 5;"), (8, 15, "at epoch 3, in one of steps 9-16;")):
        stop.on_train_batch_begin(first)
        stop.on_train_batch_end(last, {"loss": 1.5})  # finite: training goes on
        stop.on_train_batch_begin(first)
        with pytest.raises(TrainingDiverged, match=f"the loss is nan {said} lower the learning rate"):
            stop.on_train_batch_end(last, {"loss": float("nan")})


def test_the_progress_bar_shows_the_epochs_mean_loss(corel, capsys):
    """Keras' progress bar shows a logged value as it is only for a metric's name; any other it
    averages over the steps again (the WARP loss is a running mean already)."""
    result = fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=1))
    shown = re.findall(r" loss: ([0-9.]+)", capsys.readouterr().out)
    assert shown and float(shown[-1]) == pytest.approx(result.history["loss"][-1], abs=1e-4), shown[-3:]


def test_early_stopping_restores_best(corel):
    carve = validation_split(corel.train)
    result = fit(carve.train, ModelConfig(dimension=16, num_negatives=5),
                 TrainConfig(epochs=30, learning_rate=0.5, patience=1, verbose=0), validation=carve)
    scores = result.history["val_precision@1"]
    assert result.epochs_run < 30  # stopped early
    assert result.best_epoch == int(np.argmax(scores)) + 1
    final = evaluate_model(result.model.score, carve)["metrics"]["precision@1"]
    assert final == pytest.approx(max(scores))


def test_rerun_of_an_early_stopped_run_says_it_stopped(corel, tmp_path, capsys):
    carve = validation_split(corel.train)
    settings = dict(epochs=30, learning_rate=0.5, patience=1)
    first = fit(carve.train, ModelConfig(dimension=16, num_negatives=5), TrainConfig(**settings, verbose=0),
                validation=carve, output_dir=tmp_path)
    assert first.epochs_run < 30
    again = fit(carve.train, ModelConfig(dimension=16, num_negatives=5), TrainConfig(**settings, verbose=1),
                validation=carve, output_dir=tmp_path)
    out = capsys.readouterr().out
    assert f"Resuming from the checkpoint after epoch {first.epochs_run} in " in out
    assert ": it stopped early there (1 epoch without a better validation score, patience 1), nothing is left to " \
        "train" in out
    assert again.epochs_run == first.epochs_run and again.best_epoch == first.best_epoch


def test_killed_run_resumes_from_checkpoint(corel, tmp_path, capsys):
    model_config = ModelConfig(dimension=16, num_negatives=5)
    carve = validation_split(corel.train)
    full = fit(carve.train, model_config, TrainConfig(epochs=4, patience=0, verbose=0),
               validation=carve, output_dir=tmp_path / "a")
    # The same run, "killed" after 2 epochs, then started again with the same command.
    fit(carve.train, model_config, TrainConfig(epochs=2, patience=0, verbose=0),
        validation=carve, output_dir=tmp_path / "b")
    state = json.loads((tmp_path / "b" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2
    # Killed between the two writes of epoch 3's end: its weights saved (here epoch 1's, to tell
    # them apart), its state not. The run resumes from the checkpoint its state records, epoch 2.
    last = tmp_path / "b" / "checkpoints" / "last"
    for part in last.glob("ckpt-1.*"):
        (last / part.name.replace("ckpt-1", "ckpt-3")).write_bytes(part.read_bytes())
    (last / "checkpoint").write_text((last / "checkpoint").read_text().replace('"ckpt-2"', '"ckpt-3"', 1))
    assert tf.train.latest_checkpoint(str(last)).endswith("ckpt-3")
    resumed = fit(carve.train, model_config, TrainConfig(epochs=4, patience=0, verbose=1),
                  validation=carve, output_dir=tmp_path / "b")
    out = capsys.readouterr().out
    assert "Resuming from the checkpoint after epoch 2" in out and "nothing is left to train" not in out
    assert resumed.epochs_run == 4
    assert len(resumed.history["val_precision@1"]) == 4
    # Same seeds and batches: the resumed run ends where the uninterrupted one did.
    np.testing.assert_allclose(resumed.history["val_precision@1"], full.history["val_precision@1"], atol=0.02)
    assert (tmp_path / "b" / "logs").exists()
    # Its time counts the kept epochs' too; run again once finished, nothing trains, and the result
    # still reports the run's time and rate (metrics.json's final_fit_seconds, pairs_per_second).
    assert resumed.resumed_seconds == pytest.approx(state["seconds"]) and resumed.train_seconds > state["seconds"]
    again = fit(carve.train, model_config, TrainConfig(epochs=4, patience=0, verbose=1), validation=carve,
                output_dir=tmp_path / "b")
    out = capsys.readouterr().out
    assert "Resuming from the checkpoint after epoch 4" in out and "nothing is left to train" in out
    recorded = json.loads((tmp_path / "b" / "checkpoints" / "state.json").read_text())["seconds"]
    assert again.epochs_run == 4 and again.train_seconds >= recorded > state["seconds"]
    assert again.pairs_per_second == pytest.approx(carve.train.Y.nnz * 4 / again.train_seconds)


def test_a_run_resumed_under_another_number_of_replicas_says_so_and_other_shards_are_refused(corel, tmp_path,
                                                                                               capsys):
    """The strategy is not a setting a checkpoint holds a run to: a run may move between machines.
    Where some of the kept epochs trained with another number of replicas (or under parameter
    servers), the model goes on from them but is no one set-up's own, and the run says so, every
    time it is taken up (the checkpoint keeps each set-up it trained under); where only the
    strategy's class differs (one device, or one replica mirrored) it does not. A best epoch kept
    as more or fewer arrays than the model has (its tables held in shards) is refused by name,
    not left to Keras' set_weights."""
    config, carve = ModelConfig(dimension=8, num_negatives=3), validation_split(corel.train)
    fit(carve.train, config, TrainConfig(epochs=1, verbose=0), validation=carve, output_dir=tmp_path)
    state_path = tmp_path / "checkpoints" / "state.json"
    here = {"strategy": "one device", "replicas": 1, "parameter_servers": False}
    assert json.loads(state_path.read_text())["set_ups"] == [here]
    two = {"strategy": "MirroredStrategy", "replicas": 2, "parameter_servers": False}
    servers = {"strategy": "ParameterServerStrategyV2", "replicas": 1, "parameter_servers": True}
    for epochs, kept, said in (
            (2, [{**two, "replicas": 1}], None),  # one replica mirrored: the same steps
            (3, [two, here], "MirroredStrategy, 2 replicas"),
            (4, [two, here], "MirroredStrategy, 2 replicas"),  # again: the epoch this process trained does not hide it
            (5, [servers], "ParameterServerStrategyV2, 1 replica updating parameter servers asynchronously")):
        state = json.loads(state_path.read_text())
        if epochs != 4:
            state_path.write_text(json.dumps({**state, "set_ups": kept}))
        capsys.readouterr()
        fit(carve.train, config, TrainConfig(epochs=epochs, verbose=0), validation=carve, output_dir=tmp_path)
        out = capsys.readouterr().out
        note = (f"note: some of the checkpoint's epochs trained under {said}, these under one device, 1 replica: the "
                "model goes on from them, but is not what one set-up trains alone")
        assert (note in out) if said else ("note: some of the checkpoint's" not in out), out
        assert json.loads(state_path.read_text())["set_ups"] == kept + [here] * (here not in kept)
    with np.load(tmp_path / "checkpoints" / "best.npz") as best:
        arrays = {name: best[name] for name in best.files}
    np.savez(tmp_path / "checkpoints" / "best.npz", **arrays, **{f"w{len(arrays)}": np.zeros(3)})
    with pytest.raises(RuntimeError, match=rf"holds the best epoch's weights as {len(arrays) + 1} arrays, this model "
                                           rf"has {len(arrays)}: parameter servers held the run's tables in shards"):
        fit(carve.train, config, TrainConfig(epochs=6, verbose=0), validation=carve, output_dir=tmp_path)


def test_checkpoint_of_other_settings_is_refused(corel, tmp_path):
    fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0),
        output_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"other data or settings \(model.dimension: 8 -> 16\).*--restart"):
        fit(corel.train, ModelConfig(dimension=16, num_negatives=3), TrainConfig(epochs=1, verbose=0),
            output_dir=tmp_path)


def test_a_checkpoint_of_the_other_engine_is_refused_and_an_older_one_resumes(corel, tmp_path):
    """The native engine's sequential WARP learns other U and V than the graph step: a run is not
    continued by the other engine. A checkpoint written before the engine was recorded resumes."""
    config = ModelConfig(dimension=8, num_negatives=3)
    fit(corel.train, config, TrainConfig(epochs=1, verbose=0), output_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"train.engine: .graph. -> .native."):
        fit(corel.train, config, TrainConfig(epochs=2, verbose=0, engine="native"), output_dir=tmp_path)
    path = tmp_path / "checkpoints" / "state.json"
    state = json.loads(path.read_text())
    del state["settings"]["train"]["engine"]  # as written when the engine was free to change
    path.write_text(json.dumps(state))
    assert fit(corel.train, config, TrainConfig(epochs=2, verbose=0), output_dir=tmp_path).epochs_run == 2


def test_a_checkpoint_from_before_the_fewest_steps_an_epoch_was_recorded_resumes_with_1(corel, tmp_path):
    config = ModelConfig(dimension=8, num_negatives=3)
    fit(corel.train, config, TrainConfig(epochs=1, verbose=0, min_steps_per_epoch=1), output_dir=tmp_path)
    path = tmp_path / "checkpoints" / "state.json"
    state = json.loads(path.read_text())
    del state["settings"]["train"]["min_steps_per_epoch"]  # as written before the setting existed
    path.write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=r"train.min_steps_per_epoch: 1 -> 32"):  # its batches were not cut
        fit(corel.train, config, TrainConfig(epochs=2, verbose=0), output_dir=tmp_path)
    assert fit(corel.train, config, TrainConfig(epochs=2, verbose=0, min_steps_per_epoch=1),
               output_dir=tmp_path).epochs_run == 2
    native = TrainConfig(epochs=1, verbose=0, engine="native", threads=1)  # it takes pairs one at a time: no steps
    fit(corel.train, config, native, output_dir=tmp_path / "native")
    state = json.loads((tmp_path / "native" / "checkpoints" / "state.json").read_text())
    assert "min_steps_per_epoch" not in state["settings"]["train"]  # as a native checkpoint from before records it
    resumed = fit(corel.train, config, dataclasses.replace(native, epochs=2), output_dir=tmp_path / "native")
    assert resumed.epochs_run == 2


def test_a_checkpoint_from_before_the_initial_scale_was_recorded_resumes_as_scale_1(corel, tmp_path):
    config = ModelConfig(dimension=8, num_negatives=3, init_scale=1.0)
    fit(corel.train, config, TrainConfig(epochs=1, verbose=0), output_dir=tmp_path)
    path = tmp_path / "checkpoints" / "state.json"
    state = json.loads(path.read_text())
    del state["settings"]["model"]["init_scale"]  # as written before the setting existed
    path.write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match=r"model.init_scale: 1.0 -> 0.1"):  # it started at 1, not today's default
        fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=2, verbose=0),
            output_dir=tmp_path)
    assert fit(corel.train, config, TrainConfig(epochs=2, verbose=0), output_dir=tmp_path).epochs_run == 2


class _AccumulatorsAtStart(tf.keras.callbacks.Callback):
    """Records the Adagrad accumulators of U and V as training begins."""

    def on_train_begin(self, logs=None):
        self.values = _accumulators(self.model)


def _accumulators(model):
    return [adagrad_accumulator(model.optimizer, t).numpy() for t in (model.U.table, model.V.table)]


def test_a_run_continues_an_earlier_models_optimiser_state(corel, tmp_path):
    model_config, settings = ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=2, verbose=0)
    earlier = fit(corel.train, model_config, settings, output_dir=tmp_path / "earlier").model
    accumulated = _accumulators(earlier)
    assert all((a > 0.1 + 1e-3).any() for a in accumulated)  # trained: past Adagrad's initial 0.1
    start = _AccumulatorsAtStart()
    fit(corel.train, model_config, settings, callbacks=[start], continue_from=earlier)
    for got, want in zip(start.values, accumulated, strict=True):
        np.testing.assert_array_equal(got, want)
    # A model restored from its checkpoint (no epochs left to train) hands on the state it was saved with.
    restored = fit(corel.train, model_config, settings, output_dir=tmp_path / "earlier")
    assert restored.epochs_run == 2
    start = _AccumulatorsAtStart()
    fit(corel.train, model_config, settings, callbacks=[start], continue_from=restored.model)
    for got, want in zip(start.values, accumulated, strict=True):
        np.testing.assert_array_equal(got, want)
    # A resumed run keeps the state its own checkpoint holds, not the earlier model's.
    one = TrainConfig(epochs=1, verbose=0)
    fit(corel.train, model_config, one, output_dir=tmp_path / "resumed", continue_from=earlier)
    own = _accumulators(fit(corel.train, model_config, one, output_dir=tmp_path / "resumed",
                            continue_from=earlier).model)
    start = _AccumulatorsAtStart()
    fit(corel.train, model_config, settings, output_dir=tmp_path / "resumed", callbacks=[start],
        continue_from=earlier)
    for got, want in zip(start.values, own, strict=True):
        np.testing.assert_array_equal(got, want)
    # The checkpoint records the state it was begun from: another (or none) is another run
    fit(corel.train, model_config, one, output_dir=tmp_path / "fresh")
    with pytest.raises(RuntimeError, match="start: its checkpoint records no model or optimiser state it was given"):
        fit(corel.train, model_config, settings, output_dir=tmp_path / "fresh", continue_from=earlier)
    with pytest.raises(RuntimeError, match="start: it began from another model or optimiser state"):
        fit(corel.train, model_config, settings, output_dir=tmp_path / "resumed",
            continue_from=fit(corel.train, model_config, one).model)  # one epoch's accumulators, not two's


def test_tpu_embedding_tables_off_a_tpu_continue_their_optimiser_state(corel):
    """Off a TPU, tables kept in TPUEmbedding layers are ordinary variables of the Keras optimiser,
    so an iterative step carries their state as it does plain tables'."""
    model_config = ModelConfig(dimension=8, num_negatives=3, tpu_embedding=True)
    earlier = fit(corel.train, model_config, TrainConfig(epochs=1, verbose=0)).model
    start = _AccumulatorsAtStart()
    fit(corel.train, model_config, TrainConfig(epochs=1, verbose=0), callbacks=[start], continue_from=earlier)
    for got, want in zip(start.values, _accumulators(earlier), strict=True):
        np.testing.assert_array_equal(got, want)


def test_continue_from_refuses_another_optimiser(corel):
    earlier = fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    with pytest.raises(ValueError, match="cannot continue the Adagrad optimiser state with SGD"):
        fit(corel.train, ModelConfig(dimension=8, num_negatives=3),
            TrainConfig(epochs=1, verbose=0, optimizer="sgd"), continue_from=earlier)


def test_a_model_can_start_from_a_trained_one(corel):
    from awe_tf.training.fit import start_from

    wsabie = fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    seen = _AccumulatorsAtStart()
    tables = {}

    class Tables(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            tables.update(U=self.model.U.table.numpy(), V=self.model.V.table.numpy())

    result = fit(corel.train, ModelConfig(dimension=8, num_negatives=3, affinity="linear-sigmoid:beta=0.25"),
                 TrainConfig(epochs=1, verbose=0), init_from=wsabie, callbacks=[Tables(), seen])
    np.testing.assert_array_equal(tables["U"], wsabie.U.table.numpy())  # training began from WSABIE's U and V
    np.testing.assert_array_equal(tables["V"], wsabie.V.table.numpy())
    assert not np.array_equal(result.model.U.table.numpy(), wsabie.U.table.numpy())  # then learnt on
    other = fit(corel.train, ModelConfig(dimension=4, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    with pytest.raises(ValueError, match="cannot start from a model whose U is"):
        start_from(result.model, other)
    renamed = dataclasses.replace(corel.train, label_names=corel.train.label_names[::-1])  # ids name others
    started = fit(renamed, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=0, verbose=0),
                  init_from=wsabie).model  # each label from the row of its name: V reversed, U as it was
    np.testing.assert_array_equal(started.V.table.numpy(), wsabie.V.table.numpy()[::-1])
    np.testing.assert_array_equal(started.U.table.numpy(), wsabie.U.table.numpy())
    with pytest.raises(ValueError, match="^continue_from: the data has the model's labels in another order"):
        fit(renamed, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0),
            continue_from=wsabie)
    # A start trained with a larger max-norm: its longer rows are clipped to this model's, by position and by
    # name, and said to be (kept as epoch 0 unclipped, the published model would break its own max-norm)
    for data, how in ((corel.train, "position"), (renamed, "name")):
        norms = {table: np.linalg.norm(getattr(wsabie, table).table.numpy(), axis=1) for table in ("U", "V")}
        assert norms["U"].max() > 0.2 and norms["V"].max() > 0.2, how
        start_from(tight := build_model(data, ModelConfig(dimension=8, num_negatives=3, max_norm=0.2)), wsabie)
        for table in ("U", "V"):
            got = np.linalg.norm(getattr(tight, table).table.numpy(), axis=1)
            assert got.max() <= 0.2 * (1 + 1e-5), (how, table)
        note, _ = start_from(tight, wsabie)
        longer = [int((norms[table] > 0.2).sum()) for table in ("U", "V")]
        assert (f"the start's rows longer than this model's max-norm 0.2 are clipped to it ({longer[0]:,} rows of U "
                f"and {longer[1]:,} rows of V)") in note, (how, note)
    assert start_from(build_model(corel.train, ModelConfig(dimension=8, num_negatives=3)), wsabie) == (None, 0)


def test_a_start_of_an_older_catalogue_gives_each_item_its_own_row_and_new_items_their_initial_rows(capsys):
    """Fine-tuning on a later week: items gone, items new, all renumbered. Each item the start has
    begins at the start's rows of U and V of its name, a new one at its initial rows, the bias
    feature's row at the start's; such a start is no epoch-0 candidate (its new items untrained).
    A start sharing no item, naming two items alike, or of other labels named only by their
    numbers, is refused, and so is an iterative run's step 0 of other data."""
    from awe_tf.data import Dataset
    from awe_tf.models import AWEModel
    from awe_tf.training import fit_iterative

    def week(first):
        pairs = [(f"u{u}", f"m{first + (u * 7 + i) % 24}") for u in range(40) for i in range(15)]
        users, items = zip(*pairs, strict=True)
        return Dataset.from_interactions(list(users), list(items))

    config = ModelConfig(dimension=4, num_negatives=3, seed=3)
    old, new = week(0), week(1)  # m0 gone, m24 new; text ids, so most are renumbered
    start = fit(old, config, TrainConfig(epochs=1, verbose=0)).model
    model = fit(new, config, TrainConfig(epochs=0, verbose=1), init_from=start).model
    assert ("init_from: 23 of the 24 items start at the start's rows of their names, 1 new ('m24') at their initial "
            "rows; 1 of the start's items are not this data's") in capsys.readouterr().out
    fresh = build_model(new, config)
    for row, item in enumerate(new.label_names):
        for table in ("U", "V"):
            want = getattr(fresh, table) if item == "m24" else getattr(start, table)
            at = row if item == "m24" else old.label_names.index(item)
            np.testing.assert_allclose(getattr(model, table).table.numpy()[row], want.table.numpy()[at], rtol=1e-6)
    np.testing.assert_allclose(model.U.table.numpy()[-1], start.U.table.numpy()[-1], rtol=1e-6)  # the bias feature's
    carve = validation_split(new)
    assert fit(carve.train, config, TrainConfig(epochs=1, verbose=0), validation=carve,
               init_from=start).start_metrics is None  # new items: the start is not a candidate
    same = validation_split(old)
    assert fit(same.train, config, TrainConfig(epochs=1, verbose=0), validation=same,
               init_from=start).start_metrics is not None
    for start_, words in ((AWEModel(24, 24, dimension=4, data_task="recommendation",
                                    label_names=["m1", *old.label_names[1:]]),
                           "'m1' names two labels, so a name does not say which row is which"),
                          (fit(week(100), config, TrainConfig(epochs=1, verbose=0)).model,
                           "none of its 24 labels is one of this data's"),
                          (AWEModel(30, 30, dimension=4, data_task="recommendation",
                                    label_names=list(map(str, range(30)))),  # items' ids, though numbers
                           "none of its 30 labels is one of this data's")):
        with pytest.raises(ValueError, match=words):
            fit(new, config, TrainConfig(epochs=0, verbose=0), init_from=start_)
    numbered = Dataset(X=np.eye(6), Y=np.eye(6)[:, :4], label_names=list("0123"))  # annotation: numbers, not names
    with pytest.raises(ValueError, match=r"cannot start from a model whose V is \(5, 4\)"):
        fit(numbered, config, TrainConfig(epochs=0, verbose=0), init_from=AWEModel(6, 5, dimension=4,
                                                                                    label_names=list("01234")))
    with pytest.raises(ValueError, match=r"^continue_from: the model has 30 features / 30 labels but the data 24 / 24"):
        fit(new, config, TrainConfig(epochs=1, verbose=0), continue_from=AWEModel(30, 30, dimension=4,
                                                                                   data_task="recommendation"))
    with pytest.raises(ValueError, match="init_from is step 0 as it is, so it must be a model of this data: the model "
                                         "was trained on other labels"):
        fit_iterative(new, dataclasses.replace(config, affinity="knn:k=3"), TrainConfig(epochs=1, verbose=0),
                      iterations=1, init_from=start)

def test_a_started_model_keeps_its_start_when_no_epoch_beats_it(corel, tmp_path, monkeypatch):
    from awe_tf.config import SettingError
    from awe_tf.training.callbacks import ValidationRanking

    carve = validation_split(corel.train)
    wsabie = fit(carve.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    scores = iter([0.5, 0.4, 0.3])  # the start, then two worse epochs
    monkeypatch.setattr(ValidationRanking, "evaluate", lambda self: {"precision@1": next(scores)})
    config = ModelConfig(dimension=8, num_negatives=3, affinity="linear-sigmoid:beta=0.25")
    result = fit(carve.train, config, TrainConfig(epochs=2, verbose=0), validation=carve, init_from=wsabie,
                 output_dir=tmp_path / "run")
    assert result.best_epoch == 0 and result.epochs_run == 2
    np.testing.assert_array_equal(result.model.U.table.numpy(), wsabie.U.table.numpy())
    with np.load(tmp_path / "run" / "checkpoints" / "best.npz") as best:  # what a resumed run restores
        assert any(np.array_equal(best[name], wsabie.U.table.numpy()) for name in best.files)
    monkeypatch.undo()
    kept = fit(carve.train, config, TrainConfig(epochs=0, verbose=0), init_from=wsabie).model  # the refit of 0 epochs
    np.testing.assert_array_equal(kept.V.table.numpy(), wsabie.V.table.numpy())
    with pytest.raises(SettingError, match="at least 1 for a model that starts untrained"):
        fit(carve.train, config, TrainConfig(epochs=0, verbose=0))


def test_a_recall_monitor_is_logged_each_epoch_and_chooses_the_best(corel):
    carve = validation_split(corel.train)
    result = fit(carve.train, ModelConfig(dimension=8, num_negatives=3),
                 TrainConfig(epochs=2, verbose=0, patience=0, monitor="recall@3"), validation=carve)
    scores = result.history["val_recall@3"]
    assert len(scores) == 2 and "val_recall@1" not in result.history  # the monitored recall, not every one
    assert scores[result.best_epoch - 1] == max(scores)


def test_a_new_best_is_copied_into_the_arrays_kept_before(corel):
    """Each better epoch overwrites the kept best weights in place: at a million items a fresh
    copy beside the old one would cost U and V again."""
    from awe_tf.training.callbacks import ValidationRanking

    model = fit(corel.train, ModelConfig(dimension=4, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    ranking = ValidationRanking(corel)
    ranking.set_model(model)
    assert ranking._keep_if_best({"precision@1": 0.1}, 0)
    kept = ranking.best_weights
    first = [w.copy() for w in kept]
    model.U.table.assign(model.U.table * 0.5)  # the next epoch's weights
    assert not ranking._keep_if_best({"precision@1": 0.05}, 1)  # worse: nothing changes
    assert all(np.array_equal(a, b) for a, b in zip(ranking.best_weights, first, strict=True))
    assert ranking._keep_if_best({"precision@1": 0.2}, 2)
    assert all(new is old for new, old in zip(ranking.best_weights, kept, strict=True))  # the same arrays
    for kept_now, weight in zip(ranking.best_weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept_now, weight)
    model.U.table.assign(model.U.table * 0.5)  # a snapshot, not a view of the variables
    assert not any(np.array_equal(w, model.U.table.numpy()) for w in ranking.best_weights)


def test_an_epoch_level_with_the_best_wins_on_the_protocols_other_metric(corel):
    """P@1 moves in steps of one validation row: an epoch level with the best on it (also where
    the two means differ in their last bits) is better where its P@3 is higher, not otherwise;
    a higher P@1 wins whatever its P@3. Patience counts from the last such improvement."""
    from awe_tf.training.callbacks import ValidationRanking

    model = fit(corel.train, ModelConfig(dimension=4, num_negatives=3), TrainConfig(epochs=1, verbose=0)).model
    ranking = ValidationRanking(corel, patience=2)
    ranking.set_model(model)
    assert ranking._keep_if_best({"precision@1": 0.4, "precision@3": 0.30}, 0)
    assert not ranking._keep_if_best({"precision@1": 0.4, "precision@3": 0.30}, 1)  # level on both: the first stays
    assert not ranking._keep_if_best({"precision@1": 0.4, "precision@3": 0.25}, 2)
    assert ranking._keep_if_best({"precision@1": 0.4 - 1e-16, "precision@3": 0.31}, 3) and ranking.best_epoch == 3
    assert not ranking._keep_if_best({"precision@1": 0.39, "precision@3": 0.5}, 4)
    assert ranking._keep_if_best({"precision@1": 0.41, "precision@3": 0.1}, 5)
    assert ranking.state()["best_check"] == 0.1 and ranking.check == "precision@3"
    assert ValidationRanking(corel, monitor="precision@10").check == "precision@1"  # P@1 beside P@10


def test_an_iterative_run_continued_with_more_epochs_retrains_the_steps_after_the_one_that_changed(corel, tmp_path,
                                                                                                   capsys):
    """Step 1 of a k-NN run begins from step 0's model: when step 0 trains on (a larger
    ``epochs``), step 1's checkpoint began from another model and is trained afresh, so the
    continued run is the run of the larger ``epochs``, not the old step 1 resumed."""
    from awe_tf.models.saving import tables_digest
    from awe_tf.training import fit_iterative

    config = ModelConfig(dimension=8, num_negatives=5, affinity="knn:k=10")
    quiet = dict(iterations=1, log=lambda line: None)
    fit_iterative(corel.train, config, TrainConfig(epochs=1, verbose=0), output_dir=tmp_path / "a", **quiet)
    capsys.readouterr()
    continued, steps = fit_iterative(corel.train, config, TrainConfig(epochs=2, verbose=1),
                                     output_dir=tmp_path / "a", **quiet)
    out = capsys.readouterr().out
    assert "Resuming from the checkpoint after epoch 1" in out and "Training afresh" in out
    state = json.loads((tmp_path / "a" / "step-1" / "checkpoints" / "state.json").read_text())
    assert state["settings"]["start"]["tables"] == tables_digest(steps[0].model)  # the new step 0's
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2  # nothing of the old step 1 kept
    fresh, _ = fit_iterative(corel.train, config, TrainConfig(epochs=2, verbose=0), output_dir=tmp_path / "b",
                             **quiet)
    for table in ("U", "V"):
        np.testing.assert_allclose(getattr(continued.model, table).table.numpy(),
                                   getattr(fresh.model, table).table.numpy(), atol=1e-4)
    # The same command again resumes every step, the last one included.
    fit_iterative(corel.train, config, TrainConfig(epochs=2, verbose=1), output_dir=tmp_path / "a", **quiet)
    out = capsys.readouterr().out
    assert "Training afresh" not in out and out.count("Resuming from the checkpoint after epoch 2") == 2


def test_a_checkpoint_begun_from_another_given_model_is_refused_unless_restarting(corel, tmp_path):
    from awe_tf.models.saving import tables_digest
    from awe_tf.training import build_model

    config, train_config = ModelConfig(dimension=8, num_negatives=5), TrainConfig(epochs=1, verbose=0)
    given = build_model(corel.train, config)
    fit(corel.train, config, train_config, output_dir=tmp_path, model=given)
    other = build_model(corel.train, config)
    other.V.table.assign(other.V.table * 0.5)  # the same settings, another start
    other_start = build_model(corel.train, config)
    other_start.set_weights(other.get_weights())  # as it was given (training moves other's own tables)
    with pytest.raises(RuntimeError, match="start: it began from another model or optimiser state than this one"):
        fit(corel.train, config, train_config, output_dir=tmp_path, model=other)
    fit(corel.train, config, train_config, output_dir=tmp_path, model=other, other_start="restart")
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["settings"]["start"]["tables"] == tables_digest(other_start)  # trained afresh from the other


def test_an_affinity_given_as_a_layer_trains_as_its_spec_does(data_dir):
    """A layer in ModelConfig is a config: each model gets a G of its own, built from it (the
    k-NN layer's reference variables were deep-copied into a fixed empty shape, and assigning
    G then failed). The same seed gives the same scores as the spec."""
    from awe_tf.affinities import KNN, Constant
    from awe_tf.affinities.vote import NeighbourVote
    from awe_tf.training import fit_iterative
    from awe_tf.training.iterative import on_linear_model

    emotions = load_dataset("emotions")
    small = TrainConfig(epochs=1, verbose=0)
    X = emotions.test.X
    for layer, spec in ((KNN(k=5), "knn:k=5"), (Constant(0.5) + KNN(k=5), "constant:0.5+knn:k=5")):
        given = fit_iterative(emotions.train, ModelConfig(dimension=8, affinity=layer), small, iterations=1)[0].model
        named = fit_iterative(emotions.train, ModelConfig(dimension=8, affinity=spec), small, iterations=1)[0].model
        assert given.affinity is not layer and not layer.built
        np.testing.assert_array_equal(given.score(X), named.score(X))
    wsabie = fit(emotions.train, ModelConfig(dimension=8), small).model
    voted = on_linear_model(emotions.train, ModelConfig(dimension=8, affinity=NeighbourVote(weight=3.0)), wsabie)
    assert np.isfinite(voted.model.score(X)).all()
    with pytest.raises(TypeError, match="ranks a Split's test part"):
        evaluate_model(wsabie, emotions.train)
    with pytest.raises(TypeError, match="not its top_k"):
        evaluate_model(wsabie.top_k, emotions)


@pytest.mark.parametrize("task", ["annotation", "recommendation"])
def test_evaluate_model_warns_on_a_test_part_the_model_was_trained_on(task):
    """A model fitted on a whole data set, then scored on that set's protocol split, or fitted on a
    split's training part and scored on a carve-out of it, is scored on what it trained on: a
    warning names it; the split it was trained for draws none."""
    import warnings

    from awe_tf.data import protocol_split
    from tests.test_pipeline import toy

    data = toy(task, n=80)
    split = protocol_split(data)
    config = TrainConfig(epochs=1, verbose=0, pairs_per_batch=64)
    whole = fit(data, ModelConfig(dimension=4, num_negatives=3), config).model
    own = fit(split.train, ModelConfig(dimension=4, num_negatives=3), config).model
    with pytest.warns(UserWarning, match="are ones the model was trained on .data, 80 rows, given to fit"):
        evaluate_model(whole, split)
    carve = validation_split(split.train)
    with pytest.warns(UserWarning, match="are ones the model was trained on"):
        evaluate_model(own.score, carve)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none for the split it was trained for
        evaluate_model(own, split)
