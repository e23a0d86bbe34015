"""Iterative learning of G (the paper's scheme): train a linear model, build G from its U,
retrain U and V with G fixed, and repeat."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from awe_tf.affinities import spec_of
from awe_tf.config import ModelConfig, SettingError, TrainConfig, engine_for
from awe_tf.data.dataset import Dataset, Split, labelled_rows
from awe_tf.evaluation import data_mismatch
from awe_tf.training.fit import (
    FitResult,
    build_model,
    check_arguments,
    check_models,
    check_own_reference,
    fit,
    progress_log,
    start_from,
)


def needs_iterations(affinity) -> bool:
    """Whether the affinity is built from a previous model (and so trains with fit_iterative)."""
    return affinity.reference_part() is not None


def build_g(model, previous, train: Dataset) -> None:
    """Fix the G of ``model``'s affinity (its part built from the training set) from the U of an
    earlier model, ``previous``, and the training data ``train``."""
    model.affinity.reference_part().set_reference(
        previous.U.table.numpy(), previous.prepare(train.X), train.Y, previous.input_bias,
        label_embeddings=previous.V.table.numpy(),
    )


def on_linear_model(train: Dataset, model_config: ModelConfig, linear) -> FitResult:
    """A model of ``model_config`` (an affinity built from the training set) made from a trained
    linear model as it is, nothing trained: its U and V, and G built from its U on ``train``
    (e.g. :class:`~awe_tf.affinities.vote.NeighbourVote` on a WSABIE)."""
    check_arguments("on_linear_model", train, model_config)
    check_models(linear=linear)
    model = build_model(train, model_config)
    if model.affinity.reference_part() is None:
        raise ValueError(f"{model_config.affinity!r} has no part built from the training set to build from a model")
    start_from(model, linear)
    build_g(model, linear, train)
    return FitResult.as_given(model)


def fit_iterative(train: Dataset, model_config: ModelConfig, train_config: TrainConfig | None = None,
                  iterations: int = 3, validation: Split | None = None, output_dir=None,
                  epochs_per_step=None, warm_start: bool = True, init_from=None,
                  log=None) -> tuple[FitResult, list[FitResult]]:
    """Learn an affinity that is built from a previous model's embedding (k-NN).

    Step 0 trains the linear model (constant G, i.e. WSABIE) with ``train_config``. Each of the
    ``iterations`` steps then (1) embeds the training inputs with the current U, (2) fixes G
    from those embeddings (each training input's k nearest other training inputs), and (3)
    trains U and V with that G, starting from the current U and V and continuing the current
    optimiser state (Adagrad's accumulators; :mod:`awe_tf.training.optimiser`), so the steps
    make one optimisation rather than restarting it. Each step trains at least one epoch: the point of
    a step is U and V learnt with its G. With ``engine="native"``
    every step runs natively where the native engine has G's form (k-NN, RBF, cluster, the vote,
    beside constants: :meth:`~awe_tf.affinities.Affinity.native_form`); otherwise the steps with
    G use the graph step.

    Args:
        train: training data.
        model_config: settings of the final model; its ``affinity`` must contain a k-NN part.
        train_config: optimiser and epochs for every step.
        iterations: how many times G is rebuilt (the paper's T).
        validation: optional validation split for early stopping within each step.
        output_dir: checkpoints of each step go to ``step-0``, ``step-1``, ... below it.
        epochs_per_step: epochs of each step 0..iterations (default: ``train_config.epochs``
            each); e.g. the best epochs each step found on validation, for the final refit.
        warm_start: start each step's U, V and optimiser state from the previous step's (else
            U and V from scratch, with a fresh optimiser).
        init_from: a trained linear model of the same data to be step 0 (a WSABIE), as it is:
            step 0 then trains nothing and reports ``best_epoch`` 0.
        log: where the steps' progress lines go (default: printed, unless ``train_config.verbose``
            is 0).

    Returns:
        ``(final result, results of every step)``.

    Raises:
        OtherSettings: (:class:`~awe_tf.training.callbacks.OtherSettings`) a checkpoint in
            ``output_dir`` of other settings; with ``init_from``, also one of step 1 that began
            from another step 0 (another model, or the same one trained again since), which a
            step after it, whose previous step trained on since, trains afresh over instead.
    """
    check_arguments("fit_iterative", train, model_config, train_config, validation)
    check_models(init_from=init_from)
    train_config = train_config or TrainConfig()
    log = progress_log(log, train_config)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a whole number of at least 1 (times G is rebuilt), got {iterations!r}")
    final_model = build_model(train, model_config)
    source = final_model.affinity.reference_part()
    if source is None:
        from awe_tf.affinities import REGISTRY

        given = getattr(model_config, "affinity", None)
        given = given if isinstance(given, str) else spec_of(final_model.affinity)
        raise SettingError("model_config.affinity", f"{given!r} has no part built from the training set and an "
                           "earlier model's U, which iterative learning rebuilds (one of "
                           f"{', '.join(n for n, r in REGISTRY.items() if r.iterative)}): train it with "
                           "awe_tf.training.fit(train, model_config, train_config)")
    check_own_reference(train, model_config)
    k = getattr(source, "k", None)  # the neighbours of k-NN-like G
    n_reference = labelled_rows(train.Y).size
    if k is not None and 2 * k >= n_reference:
        log(f"  (k = {k} neighbours of {n_reference} training inputs with a label: each input's neighbours are most "
            "of them, so G is close to the labels' frequencies; a smaller k, or more data, tells inputs apart)")
    where = (lambda step: Path(output_dir) / f"step-{step}") if output_dir is not None else (lambda step: None)
    linear_config = dataclasses.replace(model_config, affinity=None)
    began = time.perf_counter()
    epochs = list(epochs_per_step or [train_config.epochs] * (iterations + 1))
    if len(epochs) != iterations + 1:
        raise ValueError(f"epochs_per_step needs {iterations + 1} entries, got {len(epochs)}")
    if min(epochs[1:]) < 1 or (init_from is None and epochs[0] < 1):
        raise ValueError(f"every step trains at least one epoch (step 0 none only when init_from is it), got {epochs}")
    other = init_from is not None and data_mismatch(init_from.n_features, init_from.n_labels, init_from.label_names,
                                                    train)
    if other:  # step 0 is taken as it is: G is built from its U on this data's rows
        raise ValueError(f"init_from is step 0 as it is, so it must be a model of this data: {other}; train a linear "
                         "model on this data starting from it (fit(..., init_from=it)), and give that")

    g_engine = engine_for(model_config, train_config).engine  # the graph step where the native one lacks this G

    def config(step):
        return dataclasses.replace(train_config, epochs=epochs[step],
                                   engine=train_config.engine if step == 0 else g_engine)

    native = " with the native engine" if train_config.engine == "native" else ""
    with_g = " with the native engine" if g_engine == "native" else " (graph engine)" if native else ""
    if init_from is not None:
        log(f"step 0/{iterations}: the linear model given (not trained again)")
        results = [FitResult.as_given(init_from)]
    else:
        log(f"step 0/{iterations}: the linear model (constant G){native}")
        results = [fit(train, linear_config, config(0), validation, where(0))]
    previous = results[0].model
    for step in range(1, iterations + 1):
        log(f"step {step}/{iterations}: G ({spec_of(final_model.affinity)}) from the step-{step - 1} model, "
            f"then U and V retrained{with_g}")
        model = final_model if step == iterations else build_model(train, model_config)
        if warm_start:  # each step trains on from here: iterative learning retrains U and V with each new G
            start_from(model, previous)
        build_g(model, previous, train)
        carry = warm_start and previous.optimizer is not None
        if warm_start and not carry:
            log("  (the previous model has no optimiser state: this step starts a fresh optimiser)")
        # A checkpoint of this step that began from another previous step (one that has trained on
        # since, e.g. with more epochs) is not this step's: it trains afresh over it. Step 1 of a run
        # given its step 0 (init_from) is refused instead, as fit refuses another init_from: the
        # start given is another model than the one the run began from.
        given = step == 1 and init_from is not None
        results.append(fit(train, model_config, config(step), validation, where(step), model=model,
                           continue_from=previous if carry else None,
                           other_start="refuse" if given else "restart"))
        previous = results[-1].model
    resumed = sum(result.resumed_seconds for result in results)  # the steps' epochs kept from earlier processes
    final = dataclasses.replace(results[-1], train_seconds=resumed + time.perf_counter() - began,
                                resumed_seconds=resumed)
    return final, results
