"""Validate, then refit: the protocol every awe-tf entry point trains by.

The number of epochs is chosen on the protocol's validation carve-out of the training part
(early stopping on validation precision@k; ``docs/protocols.md``), then the model is
refitted on the whole training part for that many epochs, and only then scored on the test
part. Affinities built from a previous model (k-NN, the RBF family) train iteratively
(:func:`~awe_tf.training.fit_iterative`), and choose the epochs of each step.

``awe-tf train --validate``, ``awe-tf reproduce`` and the tuners' trials all go through
:func:`train_model`, :func:`choose_epochs` and :func:`refit`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from awe_tf.config import ModelConfig, TrainConfig, affinity_of
from awe_tf.data import validation_split
from awe_tf.data.dataset import RECOMMENDATION, Dataset, Split, labelled_rows
from awe_tf.data.protocols import N_HELD_OUT
from awe_tf.training.fit import FitResult, fit, progress_log
from awe_tf.training.iterative import fit_iterative, needs_iterations


def is_iterative(model_config: ModelConfig) -> bool:
    """Whether the model's affinity is built from a previous model (and so trains in steps)."""
    return model_config.affinity is not None and needs_iterations(affinity_of(model_config))


def train_model(train: Dataset, model_config: ModelConfig, train_config: TrainConfig, iterations: int = 3,
                validation: Split | None = None, output_dir=None, epochs_per_step=None, init_from=None,
                log=None) -> tuple[FitResult, list[FitResult]]:
    """:func:`fit`, or :func:`fit_iterative` with ``iterations`` steps where the affinity needs
    them: ``(final result, result of each step)`` (one step for a plain fit). ``init_from``: a
    trained linear model to start from (:func:`fit`)."""
    if is_iterative(model_config):
        return fit_iterative(train, model_config, train_config, iterations, validation, output_dir,
                             epochs_per_step=epochs_per_step, init_from=init_from, log=log)
    if epochs_per_step is not None:
        train_config = dataclasses.replace(train_config, epochs=epochs_per_step[0])
    result = fit(train, model_config, train_config, validation=validation, output_dir=output_dir,
                 init_from=init_from)
    return result, [result]


def best_score(result: FitResult, monitor: str) -> float:
    """The best validation ``monitor`` a fit reached (an error if it recorded none)."""
    scores = result.history.get("val_" + monitor, [])
    if not scores:
        raise RuntimeError(f"the fit recorded no validation {monitor}")
    return max(scores)


WITHOUT_VALIDATION = "train with --no-validate (in Python: fit without validation)"


FEW_ROWS = 30  # validation rows below which a choice among epochs or candidates is mostly noise


def scored_rows(carve: Split) -> int:
    """The validation rows with a positive label: those a metric scores."""
    return int(labelled_rows(carve.test.Y).size)


def checked_validation(train: Dataset, choosing: str = "the epochs", remedy: str = WITHOUT_VALIDATION) -> Split:
    """The protocol's validation carve-out of ``train``, refused (ValueError) when it has no
    example to score, as with too little data (recommendation: users need at least 5 items of
    training data to have validation items, and more than 5 to keep any for its training). The
    message says what could not be chosen (``choosing``) and what to do instead (``remedy``)."""
    carve = validation_split(train)
    if scored_rows(carve) == 0 or carve.train.Y.nnz == 0:
        why = (f"; it holds out {N_HELD_OUT} of each user's training items, so only users with {N_HELD_OUT} training "
               f"items or more are scored ({2 * N_HELD_OUT} or more in a file whose test part holds out {N_HELD_OUT}), "
               "and only those with more keep any to train on" if train.task == RECOMMENDATION else "")
        raise ValueError(f"{train.name}: the protocol's validation carve-out has no example with a positive label to "
                         f"score ({carve.train.n_examples} training / {carve.test.n_examples} validation rows{why}); "
                         f"too little data to choose {choosing} on: {remedy}")
    return carve


DETAIL = " " * 6  # progress lines about a stage, set in under the line that names it


def carve_text(carve: Split) -> str:
    """What the validation carve-out holds, as progress lines give it: rows for annotation (and
    those with a label, where some have none: only they are scored); for recommendation, where
    every user keeps training items, the held-out items and their users, and the users with too
    few items to hold any out."""
    if carve.train.task == RECOMMENDATION:
        whole = carve.carved_from if carve.carved_from is not None else carve.train
        none = int((whole.Y.getnnz(axis=1) == 0).sum())  # before the carve: users only in a test file of their own
        n = carve.untested - none  # too few items to hold any out: they train with them all
        untested = f"; {n} user{'s' if n != 1 else ''} with fewer than {N_HELD_OUT} " \
                   f"hold{'s' if n == 1 else ''} none out" if n else ""
        untested += f"; {none} user{'s' if none != 1 else ''} with no training item" if none else ""
        return (f"{scored_rows(carve)} users' held-out items ({carve.test.Y.nnz} in all) for validation, their other "
                f"items train{untested}")
    scored = scored_rows(carve)
    unscored = f" ({scored} with a label: the rows scored)" if scored < carve.test.n_examples else ""
    return f"{carve.train.n_examples} train / {carve.test.n_examples} validation examples{unscored}"


def epochs_text(epochs) -> str:
    """The epochs of each step as progress lines give them: ``5 epochs``, ``1 epoch``, ``3+1+1 epochs``."""
    total = "+".join(map(str, epochs))
    return f"{total} epoch{'' if total == '1' else 's'}"


def choose_epochs(train: Dataset, model_config: ModelConfig, train_config: TrainConfig, iterations: int = 3,
                  output_dir=None, init_from=None, log=None) -> tuple[list[int], list[FitResult]]:
    """Train on the validation carve-out of ``train`` with early stopping on
    ``train_config.monitor``: the best epoch of each step, and each step's result (``init_from``:
    a linear model trained on the same carve-out, to start from)."""
    carve = checked_validation(train)
    log = progress_log(log, train_config)
    log(f"{DETAIL}validation carve-out: {carve_text(carve)}")
    scored = scored_rows(carve)
    if scored < FEW_ROWS:
        log(f"{DETAIL}only {scored} validation rows with a positive label to score: too few to tell epochs apart "
            f"(one row moves the score by 1/{scored}); with more data it can, or {WITHOUT_VALIDATION} for epochs "
            "of your own")
    _, steps = train_model(carve.train, model_config, train_config, iterations, carve, output_dir,
                           init_from=init_from, log=log)
    return [train_config.epochs if step.best_epoch is None else step.best_epoch for step in steps], steps


def refit(train: Dataset, model_config: ModelConfig, train_config: TrainConfig, epochs: list[int],
          iterations: int = 3, output_dir=None, init_from=None, log=None) -> FitResult:
    """Train on all of ``train`` for the chosen ``epochs`` (one per step), without validation
    (``init_from``: a linear model trained on all of ``train``, to start from)."""
    final = dataclasses.replace(train_config, epochs=epochs[0], patience=0)
    result, _ = train_model(train, model_config, final, iterations, None, output_dir, epochs_per_step=epochs,
                            init_from=init_from, log=log)
    return result


@dataclasses.dataclass
class Chosen:
    """A model trained the protocol's way: on the validation carve-out, where its epochs are
    chosen (``validation``: its last step), then refitted on the whole training part (``final``)."""

    validation: FitResult
    final: FitResult
    epochs: list[int]


def validate_then_refit(train: Dataset, model_config: ModelConfig, train_config: TrainConfig, iterations: int = 3,
                        init_from: Chosen | None = None, output_dir=None, log=None) -> Chosen:
    """:func:`choose_epochs` then :func:`refit`; ``init_from``, a linear model chosen the same
    way, gives each stage the model of its own data to start from; ``output_dir``, where the
    stages keep their checkpoints (``validation/``, ``final/``), so the same call again goes on
    from them."""
    log = progress_log(log, train_config)
    place = (lambda stage: None) if output_dir is None else (lambda stage: Path(output_dir) / stage)
    epochs, steps = choose_epochs(train, model_config, train_config, iterations, output_dir=place("validation"),
                                  init_from=init_from.validation.model if init_from else None, log=log)
    log(f"{DETAIL}refitting on the whole training part for {epochs_text(epochs)}")
    final = refit(train, model_config, train_config, epochs, iterations, output_dir=place("final"),
                  init_from=init_from.final.model if init_from else None, log=log)
    return Chosen(validation=steps[-1], final=final, epochs=epochs)
