"""Keras callbacks: validation ranking metrics with early stopping, resumable checkpoints, and a
stop at the first non-finite loss."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from awe_tf.config import EARLIER_MODEL_DEFAULTS, EARLIER_TRAIN_DEFAULTS, check_monitor, with_earlier_defaults
from awe_tf.data.dataset import PART_FINGERPRINTS
from awe_tf.distribute import is_parameter_server
from awe_tf.evaluation import rank_test_part
from awe_tf.memory import return_free_memory
from awe_tf.metrics import ROUNDING, check_metric, protocol_ks

STATE_FILE = "state.json"


class ValidationRanking(tf.keras.callbacks.Callback):
    """After each epoch, rank the validation split, log ``val_precision@k`` etc., keep the best
    weights by ``monitor`` and stop after ``patience`` epochs without improvement.

    An epoch that ties the best on ``monitor`` (up to :data:`~awe_tf.metrics.ROUNDING`: the same
    rows' means can differ in their last bits) is better where it is higher on the protocol's
    other metric (:func:`~awe_tf.metrics.check_metric`: P@3 beside P@1, P@1 beside P@10). On a
    small carve-out P@1 moves in steps of one row, so epochs tie often, also while P@3 still
    rises.

    At the end of training the best weights are put back into the model. A run that starts from
    a trained model (:meth:`consider_start`) counts that start as epoch 0, so it is kept when no
    epoch beats it.
    """

    def __init__(self, split, ks=None, monitor: str = "precision@1", patience: int = 0):
        super().__init__()
        self.split = split
        k = check_monitor(monitor, split.test.n_labels)  # the protocol's ks, and the monitored one
        self.ks = ks or tuple(sorted({*protocol_ks(split.test.n_labels), k}))
        self.monitor = monitor
        self.check = check_metric(monitor, split.test.n_labels)  # breaks ties on monitor
        self.patience = patience
        self.best = -math.inf
        self.best_check = -math.inf
        self.best_epoch = -1
        self.best_weights = None
        self.start = None  # the validation metrics of a run's start, where consider_start scored one

    def evaluate(self) -> dict:
        return rank_test_part(self.model.score, self.split, self.ks)["metrics"]

    def _monitored(self, metrics: dict) -> float:
        if self.monitor not in metrics:
            raise ValueError(f"cannot monitor {self.monitor!r}; validation reports {sorted(metrics)}")
        return metrics[self.monitor]

    def _improves(self, value: float, check: float) -> bool:
        """Whether ``value`` (of ``monitor``) and ``check`` beat the best: higher on ``monitor``, or
        level with it and higher on the check metric."""
        if value > self.best + ROUNDING:
            return True
        return value >= self.best - ROUNDING and check > self.best_check + ROUNDING

    def _keep_if_best(self, metrics: dict, epoch: int) -> bool:
        value = self._monitored(metrics)
        check = metrics.get(self.check, value)
        if not self._improves(value, check):
            return False
        self.best_weights = _kept(self.best_weights, self.model.weights)
        self.best, self.best_check, self.best_epoch = value, check, epoch
        return True

    def consider_start(self) -> dict:
        """Score the model as it is before its first epoch: the weights to keep (epoch 0, kept as
        ``best_epoch`` -1) unless an epoch beats them. Returns its validation metrics (kept as
        :attr:`start`)."""
        self.start = self.evaluate()
        self._keep_if_best(self.start, -1)
        return self.start

    def logged(self, metrics: dict) -> dict:
        """The validation metrics an epoch logs: precision@k, and the monitored one (a recall@k)."""
        return {k: v for k, v in metrics.items() if k.startswith("precision") or k == self.monitor}

    def on_epoch_end(self, epoch, logs=None):
        metrics = self.evaluate()
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in self.logged(metrics).items()})
        if not self._keep_if_best(metrics, epoch) and self.patience and epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    def state(self) -> dict:
        return {"best": self.best, "best_check": self.best_check, "best_epoch": self.best_epoch, "start": self.start}

    def restore_state(self, state: dict, best_weights) -> None:
        self.best = state.get("best", -math.inf)
        self.best_check = state.get("best_check", -math.inf)  # a run saved before ties were broken: none
        self.best_epoch = state.get("best_epoch", -1)
        self.best_weights = best_weights
        self.start = state.get("start")


def _kept(kept: list | None, variables: list) -> list:
    """The values of ``variables`` (``Model.get_weights``'s order), read one at a time and copied
    into the arrays of ``kept`` where they fit (shape, dtype, writable): a new best holds one
    variable's copy beside the kept ones for a moment, not a second copy of them all (at a
    million items, U and V)."""
    if kept is not None and len(kept) != len(variables):
        kept = None
    out = []
    for i, variable in enumerate(variables):
        value = tf.keras.backend.get_value(variable)  # a copy of this variable alone
        old = None if kept is None else kept[i]
        if old is not None and old.shape == value.shape and old.dtype == value.dtype and old.flags.writeable:
            np.copyto(old, value)
            out.append(old)
        else:
            out.append(value)
        del value  # before the next read: one copy at a time
    return out


class ReturnFreeMemory(tf.keras.callbacks.Callback):
    """At each epoch's end, before the callbacks that score or save, hand back what the epoch
    (its batches, the check of U and V) freed but the C heap still holds
    (:func:`~awe_tf.memory.return_free_memory`), so that validation's scoring does not come on
    top of it."""

    def on_epoch_end(self, epoch, logs=None):
        return_free_memory()


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite loss or weights: it stopped, and nothing was saved after."""


class OtherSettings(RuntimeError):
    """A checkpoint of a run with other data or settings, refused. ``earlier``: where only plain
    model and training settings differ, their values in the checkpoint, by name (what would go on
    with it); else None."""

    def __init__(self, message: str, earlier: dict | None = None):
        super().__init__(message)
        self.earlier = earlier


def changed_settings(recorded: dict, settings: dict) -> dict | None:
    """The model and training settings whose value in ``recorded`` differs from ``settings``', by
    name, with the recorded value; None where anything else differs too (the data, a start, a
    setting whose value is a dict or a list)."""
    parts = ("model", "train")
    if {k: v for k, v in recorded.items() if k not in parts} != {k: v for k, v in settings.items() if k not in parts}:
        return None
    earlier = {}
    for part in parts:
        old, new = recorded.get(part) or {}, settings.get(part) or {}
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                if any(isinstance(value, (dict, list)) for value in (old.get(key), new.get(key))):
                    return None
                earlier[key] = old.get(key)
    return earlier


class StopOnNonFinite(tf.keras.callbacks.Callback):
    """Stop training with :class:`TrainingDiverged` at the end of an epoch whose loss, U or V is
    not finite, before any later callback (checkpoints, best weights) can keep the diverged
    weights. :class:`StopAtNonFiniteStep` checks after every call into the training graph as well."""

    def __init__(self, learning_rate: float | None = None):
        super().__init__()
        self.learning_rate = learning_rate
        self.epoch = 0

    def _stop(self, what: str, step: str = ""):
        advice = f"; lower the learning rate (it is {self.learning_rate:g})" if self.learning_rate else ""
        raise TrainingDiverged(f"training diverged: {what} at epoch {self.epoch + 1}{step}{advice}")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(f"the loss is {float(loss)}")
        for name in ("U", "V"):
            if not getattr(self.model, name).all_finite():
                self._stop(f"{name} holds non-finite values")


class StopAtNonFiniteStep(StopOnNonFinite):
    """:class:`StopOnNonFinite` that also stops after the first call into the training graph
    whose loss is not finite: the step, or, where a call runs several
    (``TrainConfig.steps_per_execution``), the call's steps, one of which made it so (not under
    parameter-server training, which allows no per-step callbacks)."""

    first_step = 0  # the current call's first step (Keras numbers them from 0 each epoch)

    def on_train_batch_begin(self, batch, logs=None):
        self.first_step = batch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            steps = f"step {batch + 1}" if batch == self.first_step else \
                f"in one of steps {self.first_step + 1}-{batch + 1}"
            self._stop(f"the loss is {float(loss)}", f", {steps}")


# Training settings a resumed run (or search) may change: how it runs, not what it computes. The
# engine is not one: the native engine's sequential WARP learns other U and V than the graph
# step's batches do. (The strategy is not a training setting: a run may move between them.)
FREE_ON_RESUME = ("verbose", "steps_per_execution", "jit_compile", "threads")


def as_recorded_now(recorded: dict, settings: dict) -> dict:
    """``recorded`` settings (a checkpoint's, a search's) with what they lack from before a setting
    existed, to compare with ``settings``: the value every earlier run had of a model or training
    setting added since (:func:`~awe_tf.config.with_earlier_defaults`; only settings that
    ``settings`` compares), ``settings``' engine where they were written before the engine had
    to match (nothing tells what it was), and ``settings``' categories, untrained features and
    weighted items where the input transform was written before it recorded them (the data's
    digest, compared too, says they are the same)."""
    recorded = dict(recorded)
    for part, earlier in (("model", EARLIER_MODEL_DEFAULTS), ("train", EARLIER_TRAIN_DEFAULTS)):
        if isinstance(recorded.get(part), dict):
            compared = settings.get(part, {})
            recorded[part] = with_earlier_defaults(recorded[part], {k: v for k, v in earlier.items() if k in compared})
    train = recorded.get("train")
    if isinstance(train, dict) and "engine" not in train and "engine" in settings.get("train", {}):
        recorded["train"] = {**train, "engine": settings["train"]["engine"]}
    # What the input transform records since (a category's columns; the features no training row
    # trains, left out of every row; whether its users' items were weighted): the data, compared by
    # its digest, says what they were, and an untrained feature's row got no gradient either way.
    transform = (recorded.get("model") or {}).get("input_transform") if isinstance(recorded.get("model"), dict) \
        else None
    now = (settings.get("model") or {}).get("input_transform") or {}
    since = {key: now[key] for key in ("categories", "ignored", "weighted") if now.get(key)}
    if isinstance(transform, dict) and any(key not in transform for key in since):
        recorded["model"] = {**recorded["model"], "input_transform": {
            **transform, **{key: value for key, value in since.items() if key not in transform}}}
    return recorded


def plain(value):
    """The JSON-comparable form of settings, as they are read back from a file (tuples become
    lists)."""
    return json.loads(json.dumps(value))


def changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """What differs between two settings dicts, as ``key: old -> new`` lines (nested keys
    joined by dots); a changed ``data`` fingerprint is reported as such, first (a run's, the
    parts that changed: :data:`~awe_tf.data.dataset.PART_FINGERPRINTS`), and a changed
    start (``init_from``, a digest of the U and V a run began from; ``start``, of the model it was
    given) in words."""
    if not prefix and old.get("data") != new.get("data"):
        before, now = old.get("data"), new.get("data")
        if not (isinstance(before, dict) and isinstance(now, dict)):  # a fit's record: its training data's digest
            return ["the training data changed"]
        parts = [part for key, part in PART_FINGERPRINTS.items() if key in before and key in now
                 and before[key] != now[key]]
        return [f"the {' and '.join(parts)} data changed" if parts else "the data changed"]
    found = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if a != b and not prefix and key == "start":
            found.append("start: " + (
                "its checkpoint records no model or optimiser state it was given to begin from (begun without one, "
                "or by an earlier awe-tf)" if a is None else
                "it was given a model or optimiser state to begin from, this run none" if b is None else
                "it began from another model or optimiser state than this one (in iterative training: another "
                "previous step's; for step 1 of a run given its step 0, --init-from or auto's WSABIE, another start or "
                "the same one trained again since)"))
        elif isinstance(a, dict) and isinstance(b, dict):
            found += changes(a, b, f"{prefix}{key}.")
        elif a != b and not prefix and key == "init_from":
            found.append("init_from: " + (
                "its checkpoint records no trained model it began from (begun without one, or by an earlier awe-tf)"
                if a is None else "it began from a trained model, this one from none" if b is None else
                "it began from other U and V than this one (another model, or the same one trained again since)"))
        elif a != b:
            found.append(f"{prefix}{key}: {_short(json.dumps(a))} -> {_short(json.dumps(b))}")
    return found


def _short(text: str, most: int = 60) -> str:
    """``text``, or its start and an ellipsis where it is longer than ``most`` characters (a cut
    value would read as a whole one, a quote left open)."""
    return text if len(text) <= most else text[:most - 3] + "..."


def other_settings(what: str, recorded: dict, settings: dict) -> str | None:
    """None where ``settings`` are the ``recorded`` ones; else the start of a refusal to resume
    ``what`` (e.g. "runs/x holds a checkpoint of a run"), naming what changed."""
    if recorded == settings:
        return None
    different = changes(recorded, settings) or ["the format of its settings"]
    return (f"{what} with other data or settings (" + "; ".join(different[:4])
            + ("; ..." if len(different) > 4 else "") + ")")


def worker_directory(strategy=None) -> str | None:
    """``.worker-<id>`` for a worker other than the chief of a multi-worker strategy, else None
    (the chief, or a single-machine strategy, writes to the real output directory)."""
    strategy = strategy or tf.distribute.get_strategy()
    if getattr(strategy.extended, "should_checkpoint", True):
        return None
    resolver = getattr(strategy, "cluster_resolver", None)
    return f".worker-{resolver.task_id}" if resolver is not None else ".worker"


def set_up_of(strategy) -> dict:
    """What of a strategy changes the steps a run takes, as a checkpoint records it: its number of
    replicas, and whether parameter servers update asynchronously (one device, and one replica
    mirrored or on one worker, step alike), with the strategy's name in words."""
    name = type(strategy).__name__
    return {"strategy": "one device" if name == "_DefaultDistributionStrategy" else name,
            "replicas": int(strategy.num_replicas_in_sync), "parameter_servers": is_parameter_server(strategy)}


def set_up_text(set_up: dict) -> str:
    """A set-up (:func:`set_up_of`) in words: ``MirroredStrategy, 2 replicas``."""
    count = set_up.get("replicas")
    return f"{set_up.get('strategy')}, {count} replica{'s' * (count != 1)}" + (
        " updating parameter servers asynchronously" if set_up.get("parameter_servers") else "")


def _steps_alike(set_up: dict) -> tuple:
    return set_up.get("replicas"), bool(set_up.get("parameter_servers"))


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Save model, optimiser and progress after every epoch, so that running the same command
    again after a crash resumes from the last finished epoch.

    Layout of ``directory``: ``last/`` (a ``tf.train.CheckpointManager`` of the model and
    optimiser), ``best.npz`` (the best weights so far) and ``state.json`` (epoch, history,
    early-stopping state, and the settings the run was started with).

    With several workers (MultiWorkerMirroredStrategy), every worker restores from the chief's
    directory, so all resume at the same epoch; workers other than the chief write their own
    copies to ``.worker-<id>/`` inside it.
    """

    def __init__(self, directory, model, settings: dict, validation: ValidationRanking | None = None,
                 strategy=None):
        super().__init__()
        self.directory = Path(directory)
        self.write_directory = self.directory / worker_directory(strategy) if worker_directory(strategy) else \
            self.directory
        self.settings = settings
        self.validation = validation
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.write_directory / "last"), max_to_keep=2)
        self.history: dict = {}
        self.seconds_before = self.cpu_seconds_before = 0.0  # the kept epochs': wall clock, CPU (every thread's)
        self.began, self.began_cpu = time.perf_counter(), time.process_time()
        self.restarted = False  # set by restore
        self.set_up = set_up_of(strategy or tf.distribute.get_strategy())
        self.set_ups = [self.set_up]  # each set-up the run's epochs trained under (a run may move between them)
        self.moved: list = []  # set by restore: the kept epochs' set-ups that step otherwise than this one

    def restore(self, other_start: str = "refuse") -> int:
        """Restore the last checkpoint if there is one; returns the epoch to start from.

        A checkpoint of other settings is refused (:class:`OtherSettings`). One that differs only in what it
        began from (the ``start`` setting) is refused too, or with ``other_start="restart"``
        left alone: training starts afresh (epoch 0) and writes over it from its first epoch, and
        :attr:`restarted` says so.
        """
        self.restarted = False
        state_path = self.directory / STATE_FILE
        latest = tf.train.latest_checkpoint(str(self.directory / "last"))
        if latest is None or not state_path.exists():
            return 0
        state = json.loads(state_path.read_text())
        recorded = state.get("settings") or {}
        recorded = as_recorded_now(recorded, self.settings)
        if other_start == "restart" and recorded.get("start") != self.settings.get("start") and \
                {**recorded, "start": None} == {**self.settings, "start": None}:
            self.restarted = True
            return 0
        refused = other_settings(f"{self.directory} holds a checkpoint of a run", recorded, self.settings)
        if refused:
            raise OtherSettings(f"{refused}; use another output directory, or start afresh (awe-tf train --restart; "
                                "in Python, remove the output directory first)",
                                changed_settings(recorded, self.settings))
        # The checkpoint of the epoch the state records: a run killed between the two writes of an
        # epoch's end has that epoch's weights saved, and its state (history, best so far) not yet.
        recorded_epoch = self.directory / "last" / f"ckpt-{int(state.get('epoch', 0))}"
        self.checkpoint.restore(str(recorded_epoch) if Path(f"{recorded_epoch}.index").exists()
                                else latest).expect_partial()
        self.history = state.get("history", {})
        self.seconds_before = float(state.get("seconds", 0.0))
        self.cpu_seconds_before = float(state.get("cpu_seconds", self.seconds_before))  # older: the wall clock's
        kept = state.get("set_ups", [])  # how the kept epochs trained (not a setting: a run may move)
        self.moved = [set_up for set_up in kept if _steps_alike(set_up) != _steps_alike(self.set_up)]
        self.set_ups = kept + [self.set_up] * (self.set_up not in kept)
        if self.validation is not None and (self.directory / "best.npz").exists():
            with np.load(self.directory / "best.npz") as best:
                weights = [best[f"w{i}"] for i in range(len(best.files))]
            arrays = len(self.checkpoint.model.weights)  # as best.npz keeps them: one per variable, or per shard
            if len(weights) != arrays:
                raise OtherSettings(f"{self.directory / 'best.npz'} holds the best epoch's weights as {len(weights)} "
                                    f"arrays, this model has {arrays}: parameter servers held the run's tables in "
                                    "shards, and it is taken up with other shards or none (another strategy, or "
                                    "another --shard-bytes, min_shard_bytes in Python); go on with the run's, or "
                                    "start afresh (awe-tf train --restart)")
            self.validation.restore_state(state.get("validation", {}), weights)
        return int(self.epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.manager.save(checkpoint_number=epoch + 1)
        state = {"epoch": epoch + 1, "history": self.history, "settings": self.settings, "set_ups": self.set_ups,
                 "seconds": self.seconds_before + time.perf_counter() - self.began,
                 "cpu_seconds": self.cpu_seconds_before + time.process_time() - self.began_cpu}
        if self.validation is not None:
            state["validation"] = self.validation.state()
            start_kept = self.validation.best_epoch == -1 and self.validation.best_weights is not None
            if self.validation.best_epoch == epoch or (start_kept and epoch == 0):  # the start, written once
                np.savez(self.write_directory / "best.npz", **{f"w{i}": w for i, w in
                                                                enumerate(self.validation.best_weights)})
        tmp = self.write_directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.write_directory / STATE_FILE)  # atomic: a crash never leaves half a file
