"""Fitting an AWE model: inside a ``tf.distribute`` strategy scope, with progress output,
TensorBoard logs, validation precision@k for early stopping, and resumable checkpoints."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.base import error_text, parts_of
from awe_tf.affinities.neighbours import RowsOfError
from awe_tf.config import ModelConfig, SettingError, TrainConfig, affinity_of, check_monitor
from awe_tf.data.dataset import RECOMMENDATION, Dataset, Split, are_column_numbers, labelled_rows
from awe_tf.data.pipeline import TrainingBatches
from awe_tf.distribute import is_parameter_server, is_tpu, rows_by_workers, sharding_text, xla_problem
from awe_tf.evaluation import data_mismatch
from awe_tf.memory import return_free_memory
from awe_tf.models import AWEModel
from awe_tf.models.saving import arrays_digest, tables_digest
from awe_tf.training.callbacks import (
    FREE_ON_RESUME,
    EpochCheckpoint,
    ReturnFreeMemory,
    StopAtNonFiniteStep,
    StopOnNonFinite,
    ValidationRanking,
    plain,
    set_up_text,
)
from awe_tf.training.optimiser import adagrad_accumulators, continue_optimiser, plain_kind


@dataclasses.dataclass
class FitResult:
    """A trained model and what happened while training it. ``train_seconds`` and
    ``pairs_per_second`` count every epoch it holds, those of earlier processes that a resumed
    checkpoint kept (``resumed_seconds`` of the time, ``resumed_cpu_seconds`` of their CPU time)
    included: the same command run again on a finished run, which trains nothing, reports the
    run's time and rate."""

    model: AWEModel
    history: dict
    best_epoch: int | None  # the epoch whose weights the model holds, by validation (0: the start kept; None: none)
    epochs_run: int
    train_seconds: float
    pairs_per_second: float | None
    start_metrics: dict | None = None  # validation metrics of the model it started from (init_from), as epoch 0
    resumed_seconds: float = 0.0
    resumed_cpu_seconds: float = 0.0

    @classmethod
    def as_given(cls, model) -> FitResult:
        """The result of a model taken as it is, nothing trained (``best_epoch`` 0)."""
        return cls(model=model, history={}, best_epoch=0, epochs_run=0, train_seconds=0.0, pairs_per_second=None)


def build_model(data: Dataset, model_config: ModelConfig, strategy=None) -> AWEModel:
    """An AWEModel sized for ``data`` and adapted to it (its input transform's statistics), created
    in the strategy's scope."""
    strategy = strategy or tf.distribute.get_strategy()
    options = {**model_config.to_dict(), "affinity": affinity_of(model_config)}  # a G of its own
    with strategy.scope():
        model = AWEModel(
            n_features=data.n_features,
            n_labels=data.n_labels,
            label_names=data.label_names,
            data_task=data.task,
            **options,
        )
    model.adapt(data)
    return model


def check_own_affinity(model: AWEModel, train: Dataset) -> None:
    """Check an affinity of one's own (a class outside awe-tf, alone or in a sum) before any
    training, where it is not built from the training set: two training rows are scored. A
    ``score_all`` that fails or returns another shape than ``[batch, |Y|]`` is named now, not at
    the first evaluation after training; so are ``pair_inputs`` and ``pair_scores`` (the training
    step's hooks) failing, returning another shape than ``[B, M, N]``, or scoring a row's labels
    otherwise than ``score_all`` does: the model would train on one score and rank by another.
    (Whether a saved model can rebuild G is checked as the model is built:
    :func:`~awe_tf.affinities.base.check_saveable`.)"""
    from awe_tf.data.pipeline import feature_batch

    mine = [part for part in parts_of(model.affinity) if not type(part).__module__.startswith("awe_tf.")]
    if not mine or model.affinity.reference_part() is not None or train.n_examples == 0:
        return
    named = ", ".join(type(part).__name__ for part in mine)
    rows = train.X[:2]
    try:
        scores = model.score(rows)
    except tf.errors.OperatorNotAllowedInGraphError:  # a Python branch on a tensor: the CLI says how to write it
        raise
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(f"{named}: scoring two training rows failed before training, in score_all "
                         f"(which returns [batch, |Y|] scores): {error_text(error)}") from None
    if model.affinity.uses_context:  # G's context rows come with training batches only
        return
    n, labels = rows.shape[0], np.unique([0, model.n_labels // 2, model.n_labels - 1]).astype(np.int32)
    batch = feature_batch(model.check_rows(rows))
    inputs = model.model_inputs(tf.constant(batch["feature_ids"]), tf.constant(batch["feature_weights"]))
    inputs["self_position"] = -tf.ones([n, 1], tf.int32)  # one pair a row, its label not among its inputs
    label_ids = tf.constant(np.broadcast_to(labels, (n, 1, labels.size)))
    try:
        paired = np.asarray(model.pair_scores(model.pair_inputs(inputs), label_ids))
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(f"{named}: scoring two training rows' pairs failed before training, in pair_inputs or "
                         f"pair_scores (which returns [B, M, N] scores): {error_text(error)}") from None
    if paired.shape != (n, 1, labels.size):
        raise ValueError(f"{named}: pair_scores returns [B, M, N] scores (B examples, M pairs each, N labels a pair), "
                         f"[{n}, 1, {labels.size}] for two rows' pairs against {labels.size} labels; got "
                         f"{list(paired.shape)}")
    expected = scores[:, labels]
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    if not np.allclose(paired[:, 0, :], expected, rtol=1e-4, atol=tolerance):
        row, column = np.unravel_index(np.argmax(np.abs(paired[:, 0, :] - expected)), expected.shape)
        raise ValueError(f"{named}: pair_scores and score_all score the same row and label otherwise (training row "
                         f"{row}, label {labels[column]}: {paired[row, 0, column]:.6g} against "
                         f"{expected[row, column]:.6g}): training follows pair_scores, ranking and the exports "
                         "score_all; make them agree")


REFERENCE_ROWS = 1000  # the most training rows an affinity of one's own built from the training set is tried on


def check_own_reference(train: Dataset, model_config: ModelConfig) -> None:
    """Check an affinity of one's own built from the training set (a
    :class:`~awe_tf.affinities.ReferenceAffinity` outside awe-tf) before any training, as
    :func:`check_own_affinity` checks the others. On a model of its own (left behind: the model
    trained keeps nothing of the check), G is built from the untrained U on at most
    :data:`REFERENCE_ROWS` labelled training rows, then two of them are given G rows eagerly, as
    training gives them (each not its own neighbour), and scored through the scoring graph, as
    evaluation and the exports trace it.

    Args:
        train: the training data.
        model_config: the settings of the model to train.

    Raises:
        ValueError: naming the hook and what to do, for a ``set_reference`` that fails or sets an
            attribute (a saved model keeps only the variables made in ``__init__``, and loads without
            calling it), or a ``rows_of`` that fails, returns other than
            :data:`~awe_tf.affinities.neighbours.ROWS_OF` says, or cannot be traced into a graph.
    """
    own = getattr(affinity_of(model_config), "reference_part", lambda: None)()  # (None: WSABIE)
    labelled = labelled_rows(train.Y)
    if own is None or type(own).__module__.startswith("awe_tf.") or labelled.size < 2:  # (< 2: set_reference says)
        return
    model = build_model(train, model_config)
    part = model.affinity.reference_part()
    name, rows = type(part).__name__, labelled[:REFERENCE_ROWS]
    tried = f"(G built from the untrained model on {rows.size} training rows, before training)"
    before = dict(vars(part))
    try:
        part.set_reference(model.U.table.numpy(), model.prepare(train.X[rows]), train.Y[rows], model.input_bias,
                           label_embeddings=model.V.table.numpy())
    except (ValueError, TypeError, AttributeError, IndexError, NotImplementedError,
            tf.errors.InvalidArgumentError) as error:
        raise ValueError(f"{name}.set_reference failed {tried}: {error_text(error)}") from None
    changed = [key for key, value in vars(part).items() if key not in before or value is not before[key]]
    public = [key for key in changed if not key.startswith("_")]  # Keras' own records change with a new variable
    if changed:
        raise ValueError(f"{name}.set_reference sets {', '.join(sorted(public or changed))}, which a saved model "
                         "would not have: a model keeps the variables its affinity made in __init__, and loads "
                         "without calling set_reference; make each a variable in __init__ "
                         "(awe_tf.affinities.stored_variable(name, shape): its shape may change) and assign it in "
                         "set_reference (.assign(value))")
    try:
        part.training_context(np.arange(2))  # as training gives them: eagerly, each row not its own neighbour
    except RowsOfError:
        raise
    except (ValueError, TypeError, AttributeError, IndexError, NotImplementedError,
            tf.errors.InvalidArgumentError) as error:
        raise ValueError(f"{name}.rows_of failed on two training rows {tried}: {error_text(error)}") from None
    try:
        model.score(train.X[rows[:2]])
    except tf.errors.OperatorNotAllowedInGraphError:
        raise ValueError(f"{name}: a Python if (or while, and, or) on a tensor's value cannot be traced into a graph, "
                         "as scoring and the exports trace rows_of: branch with tf.cond or tf.where (README: Adding "
                         "an affinity)") from None
    except (ValueError, TypeError, AttributeError, IndexError, NotImplementedError,
            tf.errors.InvalidArgumentError) as error:
        hint = " (a tensor has no value while a graph is traced: compute with TensorFlow ops)" \
            if "numpy" in str(error) else ""
        raise ValueError(f"{name}: scoring two training rows failed {tried}, as the scoring graph traces "
                         f"rows_of{hint}: {error_text(error)}") from None


def check_arguments(caller: str, train, model_config=None, train_config=None, validation=None) -> None:
    """Refuse what a training call was given in the wrong place (a whole split for its training
    part, one config for the other), before any work.

    Args:
        caller: the function's name, for the message.
        train, model_config, train_config, validation: its arguments (None: not given).

    Raises:
        TypeError: naming the argument, what it must be, and what it got.
        ValueError: for a data set's test part given as the training data, its test split given
            as the validation split, or a validation carve-out of ``train`` itself (its held-out
            rows among those trained on).
    """
    expected = {"train": (train, Dataset, "a Dataset (a split's training part: split.train)"),
                "model_config": (model_config, ModelConfig, "a ModelConfig"),
                "train_config": (train_config, TrainConfig, "a TrainConfig"),
                "validation": (validation, Split, "a Split (awe_tf.data.validation_split(split.train))")}
    for name, (value, kind, what) in expected.items():
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{caller}: {name} must be {what}, got a {type(value).__name__}")
    if train is not None and train.test_part:
        raise ValueError(f"{caller}: train is a data set's test part (split.test), or rows of it: a model trained on "
                         "it is scored on the rows it learnt from; train on split.train")
    if validation is not None and validation.held_out == "test":
        raise ValueError(f"{caller}: validation is a data set's test split: epochs chosen on its test part make that "
                         "part's score optimistic; give the carve-out of its training part and train on the "
                         "carve-out's own: carve = awe_tf.data.validation_split(split.train), then "
                         f"{caller}(carve.train, ..., validation=carve) (a split of files whose second one is for "
                         "validation: dataclasses.replace(split, held_out='validation'))")
    if validation is not None and validation.carved_from is not None and validation.carved_from.same_content(train) \
            and not validation.train.same_content(train):  # (a carve-out that held nothing out is its source)
        raise ValueError(f"{caller}: validation was carved out of this training data (validation_split(train)), so "
                         "the rows it holds out would be trained on: its scores would be optimistic and stop nothing. "
                         "Train on the carve-out's training part: "
                         f"{caller}(validation.train, ..., validation=validation)")


def check_models(**models) -> None:
    """Refuse a model argument (by its name, ``init_from=...``) that is not an :class:`AWEModel`;
    None is none given.

    Raises:
        TypeError: naming the argument and what it got (a :class:`FitResult`: its ``.model``).
    """
    for flag, value in models.items():
        if value is not None and not isinstance(value, AWEModel):
            where = "its .model" if isinstance(value, FitResult) else "a saved model: AWEModel.load_model(directory)"
            kind = "an AWEModel" if flag == "model" else "a trained AWEModel"  # fit trains a model given untrained
            raise TypeError(f"{flag} takes {kind}, got {type(value).__name__} ({where})")


def check_callbacks(caller: str, callbacks, validation=None) -> None:
    """Refuse a callback that is not a ``tf.keras`` one (Keras 2, tf_keras, what TFRS models take):
    Keras 3's (``import keras``, Colab's default) fail deep inside Keras 2's loop. With
    ``validation``, refuse an ``EarlyStopping`` that restores its best weights: the caller keeps
    the best epoch's weights itself, and Keras' callback, which judges epochs by its own rule,
    would put back another epoch's after it, leaving the model at an epoch other than
    ``best_epoch``."""
    for callback in callbacks:
        if validation is not None and isinstance(callback, tf.keras.callbacks.EarlyStopping) \
                and callback.restore_best_weights:
            raise ValueError(f"{caller}: EarlyStopping(restore_best_weights=True) beside validation: {caller} keeps "
                             "the weights of the epoch that validated best itself (best_epoch), and the callback "
                             "would put back those of another epoch after it; leave restore_best_weights False "
                             "(TrainConfig.patience stops early on the validation ranking)")
        if not isinstance(callback, tf.keras.callbacks.Callback):
            kind, origin = type(callback).__name__, type(callback).__module__
            keras3 = origin.split(".")[0] == "keras"
            raise TypeError(f"{caller}: callbacks are tf.keras callbacks (Keras 2, which TFRS models need; awe-tf "
                            f"makes tf.keras tf_keras), got {kind} from {origin}" + (
                                f": Keras 3's (import keras); use tf.keras.callbacks.{kind}" if keras3 else ""))


def fit(train: Dataset, model_config: ModelConfig | None = None, train_config: TrainConfig | None = None,
        validation: Split | None = None, output_dir=None, strategy=None, model: AWEModel | None = None,
        callbacks=(), continue_from: AWEModel | None = None, init_from: AWEModel | None = None,
        other_start: str = "refuse") -> FitResult:
    """Train an AWE model on ``train`` with WARP.

    Args:
        train: training data (annotation or recommendation), with its raw feature values: the
            model's input transform is fitted on it (:meth:`~awe_tf.models.AWEModel.adapt`).
        model_config: model settings (defaults: WSABIE, d = 64).
        train_config: optimiser, epochs, batch and early-stopping settings.
        validation: a protocol validation split (``test`` part scored with ``exclude`` and
            ``candidates``); enables ``val_*`` metrics, early stopping and best-weight restore.
        output_dir: where checkpoints (``checkpoints/``) and TensorBoard logs (``logs/``) go. A
            run killed mid-way resumes from its last finished epoch when called again with the
            same directory and settings (and the same ``init_from``, ``model`` and
            ``continue_from``, which the checkpoint records as digests: see ``other_start``).
        strategy: a ``tf.distribute`` strategy, or its name (``mirrored``, ``tpu``, ...:
            :func:`~awe_tf.training.strategies.make_strategy`); default: the current one.
        model: continue training this model instead of building one.
        callbacks: extra Keras callbacks (``tf.keras``'s: Keras 2, which TFRS needs; Keras 3's
            are refused). Their batch hooks run once per call into the training graph, after
            ``TrainConfig.steps_per_execution`` steps (8 by default; 1 for every step).
        continue_from: an earlier, trained model whose optimiser state (Adagrad's accumulators of
            U and V) this run starts from, as the steps of iterative learning do
            (:func:`~awe_tf.training.optimiser.continue_optimiser`). A run resumed from a
            checkpoint takes the state the checkpoint holds instead.
        init_from: a trained model of the same dimension (and bias feature) whose U and V this
            run starts from (joint learning from a WSABIE, as the paper's Table 3 did; fine-tuning
            on newer data): rows by label name where both models have names, a label (item) it
            lacks starting at its initial row (:func:`start_from`), else by position; rows longer
            than this model's max-norm clipped to it (a line ``init_from: ...``, printed whatever
            ``verbose`` is, says what the start became). With
            ``validation`` the start is scored as epoch 0 and kept if no epoch beats it (unless
            it lacks some of the data's labels, whose rows no epoch 0 trained); with
            ``epochs=0`` it is kept as it is.
        other_start: what to do with a checkpoint in ``output_dir`` that differs from this run
            only in what it began from (the ``model`` given, the state ``continue_from`` gave its
            optimiser): ``"refuse"`` it (a RuntimeError), or
            ``"restart"``: train afresh and write over it, as a step of iterative training does
            when the step before it has trained on since.

    Returns:
        A :class:`FitResult` with the model holding the best (or last) weights.

    Raises:
        ValueError: among others, a ``strategy`` given inside the scope of another (a name:
            :func:`~awe_tf.training.strategies.make_strategy`'s refusals).
        RuntimeError: a checkpoint in ``output_dir`` of other data or settings, or whose best
            epoch is kept as other shards than this model's tables (:class:`~awe_tf.training.callbacks.OtherSettings`).
    """
    check_arguments("fit", train, model_config, train_config, validation)
    callbacks = list(callbacks)  # a generator is read once, here
    check_callbacks("fit", callbacks, validation)
    model_config = model_config or ModelConfig()
    train_config = train_config or TrainConfig()
    if isinstance(strategy, str):  # a name, as --strategy gives it
        from awe_tf.training.strategies import make_strategy

        strategy = make_strategy(strategy)
    elif strategy is not None and not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"fit: strategy must be a tf.distribute strategy or its name ('mirrored', 'tpu', ...: "
                        f"awe_tf.training.make_strategy), got a {type(strategy).__name__}")
    if strategy is not None and tf.distribute.has_strategy() and strategy is not tf.distribute.get_strategy():
        scope = type(tf.distribute.get_strategy()).__name__
        raise ValueError(f"fit: strategy {type(strategy).__name__} given inside the scope of another strategy, "
                         f"{scope}: call fit outside the `with strategy.scope():` block, or leave strategy out to "
                         "train under the scope's")
    strategy = strategy or tf.distribute.get_strategy()
    problem = xla_problem(strategy) if train_config.jit_compile else None
    if problem:
        raise ValueError(f"jit_compile cannot compile the training step: {problem}; train without it")
    if is_parameter_server(strategy) and train_config.bucketing:
        raise ValueError("parameter-server training needs TrainConfig(bucketing=False): workers build their "
                         "batches from tensors, in one static shape")
    if validation is not None:  # before anything is built
        check_monitor(train_config.monitor, validation.test.n_labels)
    from awe_tf.training.selection import is_iterative  # selection builds on this module

    if model is None and is_iterative(model_config):
        raise SettingError("model_config.affinity", f"{model_config.affinity!r} is built from an earlier model's U, "
                           "which fit does not build: train it with awe_tf.training.fit_iterative(train, model_config, "
                           "train_config, iterations=3), which trains the linear model, builds G from it and "
                           "retrains (or give fit a model whose G is built)")
    if train_config.epochs == 0 and init_from is None and model is None:
        raise SettingError("epochs", "must be at least 1 for a model that starts untrained (0 keeps a model "
                           "started from a trained one, init_from)")
    check_models(model=model, init_from=init_from, continue_from=continue_from)
    # the optimiser's state is taken row by row: a label (an item) of another name would take another's
    other = continue_from is not None \
        and data_mismatch(continue_from.n_features, continue_from.n_labels, continue_from.label_names, train)
    if other:
        raise ValueError(f"continue_from: {other}: its optimiser state would go to other labels' (items') rows; "
                         "continue a model of this data, its labels in this order (init_from takes rows by name)")
    if other_start not in ("refuse", "restart"):
        raise ValueError(f"other_start must be 'refuse' or 'restart', got {other_start!r}")
    given = model is not None
    if model is None:
        model = build_model(train, model_config, strategy)
    elif not model.transform.adapted:
        model.adapt(train)
    check_own_affinity(model, train)
    if is_parameter_server(strategy):
        progress_log(None, train_config)(f"tables on the parameter servers: "
                                         f"{sharding_text({'U': model.U.table, 'V': model.V.table})}")
    if validation is not None:  # validation ranks each epoch unchecked (rank_test_part): check it once, here
        problem = data_mismatch(model.n_features, model.n_labels, model.label_names, validation.train)
        if problem:
            raise ValueError(f"fit: validation: {problem}; give the carve-out of the training data")
    prepared = train.with_matrices(X=model.prepare(train.X))  # the inputs U is trained on
    return_free_memory()  # what transforming the inputs freed, before the optimiser's state is made
    native = train_config.engine == "native"
    if native:
        from awe_tf.native import NativeWarp, threads_for

        if train_config.jit_compile:
            raise ValueError("jit_compile is for the graph engine; the native engine is compiled C already")
        # Checks the model and strategy before anything else is built, and makes U and V its own before the
        # optimiser's state exists (:class:`NativeWarp`); reads the optimiser only once training begins.
        batches = NativeWarp(model, prepared, threads_for(train_config.threads), seed=train_config.seed,
                             strategy=strategy, context=_training_context(model, train, strategy))
    with strategy.scope():
        model.compile(optimizer=train_config.make_optimizer(),
                      jit_compile=train_config.jit_compile,
                      run_eagerly=native)  # one call into C per step: nothing to trace
    if native:
        batches.optimiser_state_made()
    else:
        batches = TrainingBatches(
            prepared,
            pairs_per_batch=train_config.pairs_per_batch,
            min_steps_per_epoch=train_config.min_steps_per_epoch,
            bucketing=train_config.bucketing and not is_tpu(strategy),  # a TPU takes one static batch shape
            seed=train_config.seed,
            context=_training_context(model, train, strategy),
            replicas=1 if is_parameter_server(strategy) else strategy.num_replicas_in_sync,
        )
    all_callbacks = list(callbacks)
    ranking = None
    if validation is not None:
        ranking = ValidationRanking(validation, monitor=train_config.monitor, patience=train_config.patience)
        all_callbacks.insert(0, ranking)
    stop = StopOnNonFinite if is_parameter_server(strategy) else StopAtNonFiniteStep  # no step hooks there
    all_callbacks.insert(0, stop(train_config.learning_rate))  # before anything keeps the weights
    all_callbacks.insert(1, ReturnFreeMemory())  # after the check's reads of U and V, before anything scores
    start_epoch = 0
    checkpoint = None
    if output_dir is not None:
        output_dir = Path(output_dir)
        # What must match for a checkpoint to be resumed (more epochs or other verbosity may differ).
        free = ("epochs", *FREE_ON_RESUME, *(("min_steps_per_epoch",) if native else ()))  # native: no steps
        resumable = {k: v for k, v in train_config.to_dict().items() if k not in free}
        settings = {"model": plain(model.get_config()), "train": resumable, "data": train.fingerprint()}
        if init_from is not None:  # a run resumed from its checkpoint must have begun from the same U and V
            settings["init_from"] = tables_digest(init_from)
        start = start_record(model if given else None, continue_from)
        if start:
            settings["start"] = start
        checkpoint = EpochCheckpoint(output_dir / "checkpoints", model, settings, ranking, strategy=strategy)
        start_epoch = checkpoint.restore(other_start)
        if checkpoint.restarted and train_config.verbose:
            print(f"Training afresh: the checkpoint in {output_dir / 'checkpoints'} began from another model or "
                  "optimiser state (in iterative training, the step before this one trained on since)")
        all_callbacks.append(checkpoint)
        all_callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=str(output_dir / "logs"),
                                                            update_freq="epoch", profile_batch=0))
        if start_epoch > train_config.epochs:
            raise RuntimeError(f"{output_dir / 'checkpoints'} holds a run of {start_epoch} epochs, more than the "
                               f"{train_config.epochs} asked for; ask for at least {start_epoch} to continue it, or "
                               "start afresh (awe-tf train --restart; in Python, remove the output directory first)")
    if init_from is not None and start_epoch == 0:
        note, new = start_from(model, init_from)
        if note:  # what the start became (rows by name, rows clipped), whatever the verbosity of the epochs
            print(f"init_from: {note}")
        # the start is a candidate too, epoch 0, kept if no epoch beats it; not with labels new since, at their
        # initial rows (chosen, the model would be published with them untrained)
        if ranking is not None and not new:
            ranking.set_model(model)
            start = ranking.consider_start()
            if train_config.verbose:
                print("Epoch 0 (the model started from) - " + " - ".join(
                    f"val_{name}: {value:.4f}" for name, value in ranking.logged(start).items()))
    if continue_from is not None and start_epoch == 0:
        with strategy.scope():
            continue_optimiser(continue_from, model)
    epochs_left = train_config.epochs - start_epoch
    waited = start_epoch - 1 - ranking.best_epoch if ranking is not None else 0  # epochs since the best one
    stopped_early = ranking is not None and train_config.patience and start_epoch and waited >= train_config.patience
    if start_epoch and train_config.verbose:
        done = ""
        if start_epoch == train_config.epochs:
            done = ": the epochs asked for are trained, nothing is left to train"
        elif stopped_early:
            done = (f": it stopped early there ({waited} epoch{'s' * (waited != 1)} without a better validation "
                    f"score, patience {train_config.patience}), nothing is left to train")
        print(f"Resuming from the checkpoint after epoch {start_epoch} in {output_dir / 'checkpoints'}{done}")
    if start_epoch and checkpoint.moved and start_epoch < train_config.epochs and not stopped_early:
        print(f"note: some of the checkpoint's epochs trained under {'; '.join(map(set_up_text, checkpoint.moved))}, "
              f"these under {set_up_text(checkpoint.set_up)}: the model goes on from them, but is not what one "
              "set-up trains alone (the steps' batches and sums differ)")
    began = time.perf_counter()
    history: dict = {}
    epochs_run = start_epoch
    if epochs_left > 0 and not stopped_early:
        steps = batches.steps_per_epoch()
        if native:
            dataset = batches.dataset(start_epoch)
            all_callbacks.insert(0, batches.callback())  # first: the others read the epoch's weights
            model.train_function = batches.train_function  # Keras calls it for each step instead of the graph's
        else:
            dataset = training_input(batches, strategy, start_epoch)
        try:
            # Several graph steps a call while fit trains (native: a chunk a call); one for whatever
            # the model runs afterwards, as compiled: Keras' predict and evaluate of a data set of
            # unknown size, and its *_on_batch calls, take no more than one.
            model.steps_per_execution = 1 if native else train_config.steps_per_execution
            result = model.fit(
                dataset,
                epochs=train_config.epochs,
                initial_epoch=start_epoch,
                steps_per_epoch=steps,
                callbacks=all_callbacks,
                verbose=train_config.verbose,
            )
        finally:
            if native:
                batches.release()  # an exception skips on_train_end: the copies' steps go back into the model
                model.train_function = None  # a later model.fit runs the graph step again
            model.steps_per_execution = 1
        history = {key: [float(v) for v in values] for key, values in result.history.items()}
        epochs_run = start_epoch + len(next(iter(result.history.values()), []))
    elif ranking is not None and ranking.best_weights is not None:
        model.set_weights(ranking.best_weights)
    if checkpoint is not None:  # it holds the epochs of earlier, interrupted runs too
        history = checkpoint.history
    resumed = checkpoint.seconds_before if checkpoint is not None else 0.0  # the kept epochs' own time
    seconds = resumed + time.perf_counter() - began
    model.note_training_data(train)  # evaluate_model then tells a test part cut from it
    pairs = batches.n_pairs * epochs_run
    return FitResult(
        model=model,
        history=history,
        best_epoch=(ranking.best_epoch + 1) if ranking is not None and ranking.best_weights is not None else None,
        epochs_run=epochs_run,
        train_seconds=seconds,
        pairs_per_second=pairs / seconds if pairs and seconds > 0 else None,  # None: no epoch ran
        start_metrics=ranking.start if ranking is not None else None,
        resumed_seconds=resumed,
        resumed_cpu_seconds=checkpoint.cpu_seconds_before if checkpoint is not None else 0.0,
    )


def training_input(batches: TrainingBatches, strategy, start_epoch: int = 0):
    """The graph step's input for ``strategy``, from ``start_epoch`` on, forever (Keras counts
    the steps of each epoch):

    * parameter servers: a ``DatasetCreator``, each worker building its copy from tensors alone;
    * a TPU: the tensor-only pipeline (no Python generator: it runs on the TPU hosts), every batch
      one static shape divisible by the replicas, distributed to the cores;
    * else the generator pipeline (bucketed batches where ``batches.bucketing``), distributed when
      there are several replicas.
    """
    if is_parameter_server(strategy):
        return tf.keras.utils.experimental.DatasetCreator(
            lambda context: batches.tensor_dataset(start_epoch=start_epoch))
    if is_tpu(strategy):
        return strategy.experimental_distribute_dataset(batches.tensor_dataset(start_epoch=start_epoch))
    dataset = batches.dataset(epochs=None, start_epoch=start_epoch)
    return strategy.experimental_distribute_dataset(dataset) if strategy.num_replicas_in_sync > 1 else dataset


def progress_log(log, train_config: TrainConfig | None):
    """Where a training stage's progress lines go: ``log``, or where it is None, printed unless
    ``train_config.verbose`` is 0 (then nowhere)."""
    if log is not None:
        return log
    return print if (train_config or TrainConfig()).verbose else (lambda line: None)


def start_record(given: AWEModel | None, continue_from: AWEModel | None) -> dict:
    """What a run begins from beyond its settings, as its checkpoints record it (``start``): the
    model it was ``given`` (digests of its U and V, ``tables``, and of G's own variables, k-NN's
    neighbours or a learnt weight, ``affinity``) and the optimiser state ``continue_from`` hands
    it (Adagrad's accumulators of U and V, ``optimiser``). An iterative step is given the
    previous step's U and V, G built from them and its Adagrad state, so a step resumed from its
    checkpoint is known to continue from the same previous step. Empty where neither is given."""
    record = {}
    if given is not None:
        weights = given.affinity.weights
        record.update(tables=tables_digest(given), affinity=arrays_digest(weights) if weights else None)
    if continue_from is not None:
        state = continue_from.optimizer is not None and plain_kind(continue_from.optimizer) == "adagrad"
        record["optimiser"] = arrays_digest(part for table in (continue_from.U.table, continue_from.V.table)
                                            for part in adagrad_accumulators(continue_from.optimizer, table)) \
            if state else None
    return record


def label_rows(names, start_names, ids: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """Which rows of V a model of labels ``names`` takes from a start of labels ``start_names``,
    by name: ``(ours, theirs)``, the rows of the labels both have; None where rows go by position
    (either has no names, or, unless they are ``ids`` (a recommendation model's items, ids of their
    own), only its column numbers, ``"0"``, ``"1"``, ...; or the two lists are the same).

    Raises:
        ValueError: a name two labels share (MovieLens titles two films share: it does not say
            which row is which), or no name in both.
    """
    def numbered(labels) -> bool:
        return labels is None or (not ids and are_column_numbers(labels))

    if numbered(names) or numbered(start_names) or list(names) == list(start_names):
        return None
    shared = next((name for labels in (names, start_names) for name, count in Counter(labels).items() if count > 1),
                  None)
    if shared is not None:
        raise ValueError(f"{shared!r} names two labels, so a name does not say which row is which; start from a model "
                         "of this data, its labels in this order")
    place = {name: j for j, name in enumerate(start_names)}
    ours = np.array([i for i, name in enumerate(names) if name in place], np.int64)
    if not ours.size:
        raise ValueError(f"none of its {len(start_names):,} labels is one of this data's (first {start_names[0]!r} "
                         f"there, {names[0]!r} here); start from a model of this data")
    return ours, np.array([place[names[i]] for i in ours], np.int64)


def start_from(model: AWEModel, trained: AWEModel) -> tuple[str | None, int]:
    """Give ``model`` the U and V of ``trained`` (the same dimension and bias feature); G's own
    parameters keep their initial values.

    Rows are taken by name where both models name their labels (:func:`label_rows`): a label's
    row of V (and, for recommendation, whose inputs are its items, the item's row of U) is the
    row of that name in ``trained``, wherever it is there, clipped to this model's max-norm; a
    label ``trained`` lacks keeps its initial row (a catalogue grown since, as
    ``tf.train.warm_start``'s vocabulary remapping does). Otherwise rows are taken by position,
    and the sizes must match; an annotation model's features always are (its model holds no
    feature names).

    Every row taken is clipped to this model's max-norm (a start trained with a larger one has
    longer rows), as each training step keeps them.

    Returns:
        ``(note, new)``: a note on the labels taken by name, those ``trained`` lacks (``new`` of
        them) and those this model leaves out, and on the rows clipped; where the rows went by
        position, ``(None, 0)``, or the note on the rows clipped.
    """
    rows = label_rows(model.label_names, trained.label_names, model.data_task == RECOMMENDATION)
    both_items = model.data_task == RECOMMENDATION and trained.data_task == RECOMMENDATION
    if rows is not None and model.data_task != trained.data_task:
        raise ValueError("cannot start a recommendation model from an annotation model, or the other way round")
    for table in ("U", "V"):
        mine, theirs = getattr(model, table).table, getattr(trained, table).table
        by_name = rows is not None and (table == "V" or both_items)
        if mine.shape[1] != theirs.shape[1] or model.input_bias != trained.input_bias \
                or (not by_name and mine.shape[0] != theirs.shape[0]):
            raise ValueError(f"cannot start from a model whose {table} is {tuple(theirs.shape)}: this one's is "
                             f"{tuple(mine.shape)} (the same dimension and bias feature are needed, and the same "
                             f"{'labels' if table == 'V' else 'features'}, or labels named in both, whose rows are "
                             "then taken by name)")
    longer = {}  # the start's rows longer than this model's max-norm, by table: clipped, as a step would
    if rows is None:
        for table in ("U", "V"):
            getattr(model, table).table.assign(getattr(trained, table).table)
            longer[table] = getattr(model, table).clip_table()
        return _clipped_note(model, longer), 0
    ours, theirs = rows
    longer["V"] = model.V.take_rows(trained.V, ours, theirs)
    if both_items:
        bias = [model.n_features] if model.input_bias else []  # the bias feature's row, after the items'
        longer["U"] = model.U.take_rows(trained.U, np.concatenate([ours, bias]).astype(np.int64),
                                        np.concatenate([theirs, [trained.n_features] if bias else []]).astype(np.int64))
    else:
        model.U.table.assign(trained.U.table)
        longer["U"] = model.U.clip_table()
    what = "items" if model.data_task == RECOMMENDATION else "labels"
    taken = set(ours.tolist())
    new = [name for i, name in enumerate(model.label_names) if i not in taken]
    shown = f" ({', '.join(map(repr, new[:3]))}{', ...' if len(new) > 3 else ''})" if new else ""
    clipped = _clipped_note(model, longer)
    return (f"{ours.size:,} of the {model.n_labels:,} {what} start at the start's rows of their names, {len(new):,} "
            f"new{shown} at their initial rows; {trained.n_labels - ours.size:,} of the start's {what} are not this "
            "data's" + (f"; {clipped}" if clipped else "")), len(new)


def _clipped_note(model: AWEModel, longer: dict) -> str | None:
    """What :func:`start_from` says of the start's rows longer than this model's max-norm (a start
    trained with a larger one), which it clipped to it; None where none were."""
    if not any(longer.values()):
        return None
    counts = " and ".join(f"{count:,} rows of {table}" for table, count in sorted(longer.items()) if count)
    return (f"the start's rows longer than this model's max-norm {model.U.max_norm:g} are clipped to it ({counts}), "
            "as every step keeps them")


def _training_context(model, train: Dataset, strategy):
    """G rows of the training rows, for affinities built from the training set (each row not its
    own neighbour): under a multi-worker strategy each worker computes its share of the rows and
    all receive every row (the MapReduce step of the paper's iterative scheme). G is computed
    for the reference rows (the rows with a label); a row without one gives no training pair,
    and its G row is empty."""
    source = model.affinity.reference_part()
    if source is None:
        return None
    source.check_ready()
    labelled = labelled_rows(train.Y)
    if source.n_reference != labelled.size:
        raise ValueError(f"the {type(source).__name__} affinity's reference set has {source.n_reference} rows, the "
                         f"training data {labelled.size} with a label: build G from this training data (a G built "
                         "by an earlier awe-tf from rows without a label too must be built again)")
    with strategy.scope():
        G = rows_by_workers(source.training_context, labelled.size, model.n_labels + 1)
    if labelled.size == train.n_examples:
        return G
    place = sp.csr_matrix((np.ones(labelled.size, np.float32), (labelled, np.arange(labelled.size))),
                          shape=(train.n_examples, labelled.size))
    return sp.csr_matrix(place @ G)
