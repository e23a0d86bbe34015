"""The output directory of an ``awe-tf train`` run (RUN): what the run keeps there, and how a
later command reads it back.

    RUN/model/                   the model (``RUN_MODEL``; :mod:`awe_tf.models.saving` writes it)
    RUN/metrics.json             the test report, the run's settings and the data it used
    RUN/features.json            an annotation run's feature names, feature id n at position n
    RUN/validation/, RUN/final/  each stage's checkpoints (:mod:`awe_tf.training.callbacks`)
    RUN/auto/                    --affinity auto's stages' checkpoints and its record of them, auto.json
                                 (:mod:`awe_tf.training.auto`)

``awe-tf evaluate``, ``diagnose`` and ``export`` take a run's own data from its ``metrics.json``
unless told otherwise (:func:`recorded_data`), refused where it changed since
(:func:`changed_parts`); ``train`` resumes into a run (counting the time earlier processes
spent on it, :func:`earlier_seconds`), publishes its model and metrics together
(:func:`publish`), and may start from another run's models (:func:`start_models`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from awe_tf.data.dataset import PART_FINGERPRINTS as RECORDED  # what metrics.json keeps of the data
from awe_tf.data.dataset import are_column_numbers

RUN_MODEL = "model"  # where a run of ``awe-tf train`` keeps its model (RUN/model)
METRICS = "metrics.json"
FEATURES = "features.json"  # what the model's input ids name; a later command's data is checked against it
STAGES = ("validation", "final")  # the stages' checkpoint directories, in the order a run trains them
AUTO = "auto"  # --affinity auto's stages and its record of them (awe_tf.training.auto, module docstring 7)
LEDGER = "auto.json"  # that record, in auto's output_dir: the stages finished, and the settings they ran with
STAGED = ".partial"  # the suffix of the record's draft, written whole, then renamed into place


class RunError(ValueError):
    """A run directory that cannot give what was asked of it (the message says why)."""


def read_metrics(run: Path | None) -> dict | None:
    """The ``metrics.json`` of the run in ``run``, or None where there is none (no run, or one
    that has not finished)."""
    path = Path(run) / METRICS if run is not None else None
    if path is None or not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise RunError(f"{path} cannot be read as JSON ({error})") from None


@dataclasses.dataclass(frozen=True)
class RecordedData:
    """What a run's ``metrics.json`` says of the data the run was trained and tested on, or an
    export's ``awe_export.json`` of the data it measured its recall on.

    Attributes:
        source: the file it was read from: a run's ``metrics.json``, an export's record.
        dataset: the named data set (:func:`~awe_tf.data.registry.layout`), or None for files.
        files: ``train``, ``test``, ``labels`` (absolute paths or None), ``format``,
            ``duplicates``, ``header`` (how the first line was read) and ``split_column`` (the
            column of an Extreme Classification file's own split lists read; None where no lists
            were read; absent from records made before it, which read the first), for files;
            else None.
        fingerprints: the :data:`RECORDED` digests of the training and test parts.
        dataset_files: for a named data set, the files it was read from (``train``, ``test``,
            ``labels``, ``format``; :func:`~awe_tf.cli.data_flags.dataset_files`), read again while
            they are there; else None.
    """

    source: Path
    dataset: str | None
    files: dict | None
    fingerprints: dict
    dataset_files: dict | None = None

    def dataset_files_here(self) -> bool:
        """Whether the files the named data set was read from are all still there."""
        files = self.dataset_files or {}
        return bool(files.get("train")) and all(Path(files[k]).exists() for k in ("train", "test", "labels")
                                                 if files.get(k))


def recorded_data(run: Path | None) -> RecordedData | None:
    """The data the run in ``run`` recorded (None where it has no ``metrics.json``); a
    :class:`RunError` where that data cannot be read again (:func:`read_record`)."""
    recorded = read_metrics(run)
    if recorded is None:
        return None
    return read_record(recorded, Path(run) / METRICS)


def read_record(recorded: dict, source: Path) -> RecordedData:
    """The data that ``recorded`` (a run's ``metrics.json``, or what an export keeps of its data:
    ``dataset``, ``data_files`` and the :data:`RECORDED` fingerprints), read from ``source``,
    names; a :class:`RunError` where that data cannot be read again: files that are gone, or files
    the record does not name (a run from before the record)."""
    files = recorded.get("data_files") or None
    if files:
        missing = [path for path in (files.get(k) for k in ("train", "test", "labels")) if path and
                   not Path(path).exists()]
        if missing:
            raise RunError(f"{source} names data files that are not there now ({', '.join(missing)}): give the data "
                           "with --train (--test, --labels) or --dataset")
    dataset = None if files else recorded.get("dataset")
    record = RecordedData(source, dataset, files, {key: recorded[key] for key in RECORDED if recorded.get(key)},
                          recorded.get("dataset_files") if dataset else None)
    if not files and not record.dataset_files_here():  # a named set read from its files while they are there
        from awe_tf.data.registry import layout

        try:
            layout(dataset or "")
        except ValueError as error:
            if dataset:  # a Mulan download in AWE_DATA_DIR, not found there now
                gone = f"; it was read from {record.dataset_files['train']}, not there now" \
                    if record.dataset_files else ""
                raise RunError(f"{source} names the data set {dataset!r}, which is not found now ({error}{gone}): "
                               "give its files with --train (--test, --labels)") from None
            raise RunError(f"{source} does not name the files its data was read from: give them with --train "
                           "(--test, --labels)") from None
    return record
    try:
        if not record.dataset_files_here():  # read from the files it was read from, while they are there
            layout(dataset or "")
    except ValueError as error:
        if dataset:  # a Mulan download in AWE_DATA_DIR, not found there now
            gone = f"; it was read from {record.dataset_files['train']}, not there now" if record.dataset_files else ""
            raise RunError(f"{source} names the data set {dataset!r}, which is not found now ({error}{gone}): give "
                           "its files with --train (--test, --labels)") from None
        raise RunError(f"{source} does not name the files its data was read from: give them with --train "
                       "(--test, --labels)") from None
    return record


def recorded_files(run: Path | None) -> tuple[Path, dict] | None:
    """``(where, files)``: the record of the data files the run in ``run`` was trained on (its
    ``metrics.json``'s ``data_files``), or None. An unreadable record counts as none: it only
    decides how a file reads where nothing says otherwise (:func:`recorded_header`)."""
    try:
        files = (read_metrics(run) or {}).get("data_files")
    except (OSError, RunError):
        return None
    return (Path(run), files) if files else None


def file_path(path) -> str | None:
    """A data file's path as a run records it: absolute, with ``..`` tidied away where that names
    the same folder, and a link not followed. An Extreme Classification file's split lists are read
    beside the path given, so a link read again as its target could find other lists there, or
    none (and ``link/..`` is the folder above the link's target, not the folder holding the link)."""
    if path is None:
        return None
    given, tidy = Path(path).absolute(), Path(os.path.abspath(path))
    try:
        same = tidy == given or tidy.parent.samefile(given.parent)
    except OSError:  # a folder that is not there: nothing is read beside it
        same = True
    return str(tidy if same else given)


def recorded_header(files: dict | None, train) -> str | None:
    """How a record of data files (:func:`recorded_files`, or an export's) says the first line
    of ``train`` was read (``"yes"``: as the columns' names, ``"no"``: as data), where it names
    that file; else None."""
    files = files or {}
    recorded = files.get("train")  # the same file, however reached: a header is the file's, not its path's
    if recorded and Path(recorded).resolve() == Path(train).resolve() and files.get("header") in ("yes", "no"):
        return files["header"]
    return None


def fingerprints(split) -> dict:
    """What :data:`RECORDED` keeps of ``split``."""
    return dict(zip(RECORDED, (split.train.fingerprint(), split.test.fingerprint()), strict=True))


def changed_parts(recorded: RecordedData | None, split) -> list[str]:
    """The parts (``training``, ``test``) of ``split`` that differ from what ``recorded`` holds."""
    if recorded is None:
        return []
    now = fingerprints(split)
    return [RECORDED[key] for key, value in recorded.fingerprints.items() if value != now[key]]


def read_as_binary_before(recorded: RecordedData, split, changed: list[str]) -> bool:
    """Whether every part of ``split`` that differs from ``recorded`` (``changed``, as
    :func:`changed_parts` names them) is recorded as it was read before commit 608857c: the same
    rows, no column numeric (Extreme Classification text, whose columns with real values were then
    read as binary and are numeric now)."""
    parts = dict(zip(RECORDED.values(), (split.train, split.test), strict=True))
    return bool(changed) and all(
        recorded.fingerprints[key] == dataclasses.replace(
            parts[name], numeric_features=np.zeros(parts[name].n_features, bool)).fingerprint()
        for key, name in RECORDED.items() if name in changed)


def checkpoint_dirs(run: Path, auto: bool = False) -> list[Path]:
    """The checkpoint directories of the run in ``run``: each stage's, and each iterative step's
    (``final/step-1/checkpoints``), those that exist; with ``auto``, auto's stages' too (each a
    folder of ``auto/``, WSABIE's with stages of its own). Looked up where fit writes them, not by
    walking the stages: a multi-worker run's other workers create and delete TensorBoard's
    ``logs/workertemp_*`` folders meanwhile, which a walk can find gone (FileNotFoundError)."""
    stages = [Path(run) / stage for stage in STAGES]
    if auto and (Path(run) / AUTO).is_dir():
        for place in sorted((Path(run) / AUTO).iterdir()):
            stages += [place, *(place / stage for stage in STAGES)] if place.is_dir() else []
    found = []
    for stage_dir in stages:
        for place in (stage_dir, *sorted(stage_dir.glob("step-*"))):
            if (place / "checkpoints").is_dir():
                found.append(place / "checkpoints")
    return found


def _checkpoint_states(run: Path, auto: bool = False):
    """``(checkpoint directory, its state.json read)`` of each checkpoint of the run in ``run``
    (:func:`checkpoint_dirs`) whose state reads; those that do not (none yet, cut short) are left out."""
    for checkpoints in checkpoint_dirs(run, auto=auto):
        try:
            state = json.loads((checkpoints / "state.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(state, dict):
            yield checkpoints, state


def checkpoint_times(run: Path) -> dict:
    """``{state file: (seconds, start)}`` of the run in ``run``'s checkpoints: the training time
    each recorded, and what it began from (its ``start`` setting)."""
    found = {}
    for checkpoints, state in _checkpoint_states(run):
        try:
            found[checkpoints / "state.json"] = (float(state.get("seconds", 0.0)),
                                                 (state.get("settings") or {}).get("start"))
        except (ValueError, TypeError, AttributeError):
            continue
    return found


def finished_epochs(run: Path) -> dict:
    """``{checkpoint directory, relative to run: the last epoch it finished}`` of every checkpoint
    in the run in ``run`` (:func:`checkpoint_dirs`, auto's stages included), and ``metrics.json``:
    whether it holds a published model. Where a resumed run goes on from."""
    found = {METRICS: (Path(run) / METRICS).exists()}
    for checkpoints, state in _checkpoint_states(run, auto=True):
        try:
            found[checkpoints.relative_to(run).as_posix()] = int(state.get("epoch", 0))
        except (ValueError, TypeError):
            continue
    return found


def trained_seconds(run: Path) -> dict:
    """``{checkpoint state file, relative to run: seconds}`` of every checkpoint in the run in
    ``run`` (its stages', its iterative steps', auto's stages', :func:`checkpoint_dirs`): what
    :func:`publish` records, so that training into the run after it published shows
    (:func:`unpublished_training_note`), however the folder was copied since."""
    found = {}
    for checkpoints, state in _checkpoint_states(run, auto=True):
        try:
            found[(checkpoints / "state.json").relative_to(run).as_posix()] = float(state.get("seconds", 0.0))
        except (ValueError, TypeError):
            continue
    return found


def unpublished_training_note(run: Path | None) -> str | None:
    """A note where the run in ``run`` holds training done after it published its model: a
    checkpoint whose seconds ``metrics.json`` did not record so (:func:`trained_seconds`), from a
    later train command into it that was cut short, or is running. Commands that read the run's
    model use the one it published. None otherwise: checkpoints removed since are no training;
    runs published before the seconds were recorded, or whose record cannot be read, say nothing."""
    try:
        recorded = (read_metrics(run) or {}).get("trained_seconds") if run is not None else None
    except RunError:  # the commands that need the record say so themselves
        return None
    if not isinstance(recorded, dict):
        return None
    if all(recorded.get(state) == seconds for state, seconds in trained_seconds(Path(run)).items()):
        return None
    return (f"note: {run} holds training newer than the model it published (a later awe-tf train into it, cut short or "
            "still running): this is the published model; the same train command goes on from that training")


def earlier_seconds(before: dict, after: dict) -> float:
    """Training time earlier processes spent on a run that this process kept: the seconds of
    the checkpoints found ``before`` it trained (:func:`checkpoint_times`) that still record the
    same start ``after`` it. A checkpoint trained afresh over (an iterative step whose previous
    step changed) is another start now, and its time was thrown away with it."""
    return sum(seconds for state, (seconds, start) in before.items() if state in after and after[state][1] == start)


def folder_name(name: str) -> str:
    """``name`` (an affinity's spec, a stage's) as a folder's name: what a file name should not
    hold as ``_`` (``knn:k=20`` as ``knn_k=20``; ':' is not allowed in Windows' file names)."""
    return re.sub(r"[^\w.=-]+", "_", name)


def parts() -> tuple[str, ...]:
    """What a run's folder holds of the run (:func:`discard` removes them): its stages, auto's
    stages and record, its model, metrics and feature names."""
    return (*STAGES, AUTO, RUN_MODEL, METRICS, FEATURES)


def foreign_parts(run: Path) -> list[str]:
    """What of :func:`parts`' names ``run`` holds that no awe-tf run wrote there, each as
    ``name (why)``: a run there would replace it, and ``--restart`` delete it. A model folder holds
    the model's config; a stage's or auto's folder, files only in ``checkpoints/`` and ``logs/``
    folders (and auto's record); ``metrics.json`` is a run's report, ``features.json`` a list."""
    from awe_tf.models.saving import CONFIG_FILE, WEIGHTS_PREFIX

    run, found = Path(run), []
    for part in parts():
        path = run / part
        if not path.exists():
            continue
        if part == RUN_MODEL and not path.is_dir():
            why = "a file, not a model's folder"
        elif part == RUN_MODEL:  # a model's config and weights (or part of them: a save cut short)
            ours = {CONFIG_FILE, Path(WEIGHTS_PREFIX).parts[0]}
            other = next((entry.name for entry in sorted(path.iterdir())  # a file manager's hidden ones aside
                          if entry.name not in ours and not entry.name.startswith(".")), None)
            why = None if other is None else f"{other} in it, where a model's folder holds {CONFIG_FILE} and weights/"
        elif part in (METRICS, FEATURES):
            try:
                read = json.loads(path.read_text())
                ours = isinstance(read, dict) and "metrics" in read if part == METRICS else isinstance(read, list)
            except (OSError, ValueError):
                ours = False
            why = None if ours else "not a run's " + ("report" if part == METRICS else "list of feature names")
        else:
            why = "a file, not a folder" if not path.is_dir() else _foreign_file(path)
        if why:
            found.append(f"{part} ({why})")
    return found


def _foreign_file(folder: Path) -> str | None:
    """The first file in a stage's or auto's ``folder`` that training does not write, as words."""
    for place, folders, files in os.walk(folder):  # (os.walk passes over a folder gone meanwhile)
        folders[:] = [name for name in folders if name not in ("checkpoints", "logs")]  # training's: not walked
        inside = Path(place).relative_to(folder).parts
        ledger = folder.name == AUTO and (not inside or len(inside) == 1 and inside[0].startswith(".worker"))
        for name in files:
            if not (ledger and name in (LEDGER, Path(LEDGER).with_suffix(STAGED).name)):  # the record, or its draft
                return f"{Path(place, name).relative_to(folder.parent)} is not a checkpoint"
    return None


def discard(run: Path) -> list[str]:
    """Remove every part of an earlier run from ``run`` (its stages, model and metrics); return
    the names of those that were there."""
    run = Path(run)
    discarded = [part for part in parts() if (run / part).exists()]
    for part in discarded:
        if (run / part).is_dir():
            shutil.rmtree(run / part, ignore_errors=True)
        else:
            (run / part).unlink()
    return discarded


def clear_unpublished(run: Path) -> None:
    """Remove what a run killed while publishing left (:func:`publish`'s staging directories)."""
    for stale in Path(run).glob(".publishing-*"):
        shutil.rmtree(stale, ignore_errors=True)


def validation_weights(run: Path) -> list | None:
    """The weights of the best model of the run's validation stage, in order (None: it has none),
    which ``--init-from`` starts that stage from; a :class:`RunError` where they cannot be read."""
    import zipfile

    import numpy as np

    path = Path(run) / STAGES[0] / "checkpoints" / "best.npz"
    if not path.exists():
        return None
    try:
        with np.load(path) as weights:
            return [weights[f"w{i}"] for i in range(len(weights.files))]
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:  # cut short, or not what a run wrote
        raise RunError(f"{path}: its validation stage's model cannot be read ({type(error).__name__}: {error}): the "
                       "run's folder is damaged; add --no-validate to start from its final model alone") from None


def validation_digest(weights: list | None) -> str | None:
    """A digest of a run's validation-stage weights (:func:`validation_weights`; None: none):
    :func:`publish` records it, so a run that starts from this one can tell that model from one
    a later, unfinished continuation of the run wrote over it."""
    from awe_tf.models.saving import arrays_digest

    return None if weights is None else arrays_digest(weights)


def publish(run: Path, model, report: dict, feature_names=None) -> None:
    """Write ``model/`` and ``metrics.json`` (and ``features.json``, the training data's
    ``feature_names`` where given and more than column numbers, ``3`` or ``f3``, which name
    nothing the sizes do not) together at the end of a run: all are staged in a hidden
    directory and renamed into place, so an interrupted run never leaves half a model, nor a model
    beside another run's metrics. ``metrics.json`` records which validation-stage model goes with
    the model (:func:`validation_digest`)."""
    run = Path(run)
    staging = run / f".publishing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_model(staging / RUN_MODEL)
    report = {**report, "validation_model_digest": validation_digest(validation_weights(run)),
              "trained_seconds": trained_seconds(run)}  # what training newer than the model shows by
    (staging / METRICS).write_text(json.dumps(report, indent=1, default=str))
    if feature_names is not None and are_column_numbers(feature_names):
        feature_names = None
    if feature_names is not None:
        (staging / FEATURES).write_text(json.dumps([str(name) for name in feature_names], ensure_ascii=False),
                                        encoding="utf-8")
    if (run / RUN_MODEL).exists():
        os.rename(run / RUN_MODEL, staging / "replaced-model")
    os.rename(staging / RUN_MODEL, run / RUN_MODEL)
    if feature_names is not None:
        os.replace(staging / FEATURES, run / FEATURES)
    elif (run / FEATURES).exists():  # an earlier run's, of other data
        (run / FEATURES).unlink()
    os.replace(staging / METRICS, run / METRICS)
    shutil.rmtree(staging, ignore_errors=True)


def recorded_features(run: Path | None) -> list[str] | None:
    """The feature names the run in ``run`` recorded (:func:`publish`), or None: none recorded
    (a recommendation run, whose inputs are its labels; a run older than this record)."""
    path = Path(run) / FEATURES if run is not None else None
    if path is None or not path.is_file():
        return None
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunError(f"{path} cannot be read ({error}); train the run again") from None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise RunError(f"{path} is not a run's list of feature names (written over?); train the run again")
    return names


def request(affinity: str, model_config, train_config, validate: bool, split, auto_budget=None) -> dict:
    """What a train command asks for, as ``metrics.json`` records it (``request``): the affinity
    (``auto`` before it chooses), the model's and training's settings but those a resumed run may
    change (:data:`~awe_tf.training.callbacks.FREE_ON_RESUME` and the epochs; also G's rebuilds,
    whose steps a rerun with fewer takes up), validation, the data's fingerprints, and auto's
    budget where it is not the default (so requests made before it could be set read as before).
    (The start a run began from, ``--init-from``, its checkpoints check.)"""
    from awe_tf.training.auto import BUDGET
    from awe_tf.training.callbacks import FREE_ON_RESUME

    free = ("epochs", *FREE_ON_RESUME)
    asked = {"affinity": affinity,
             "model": {k: v for k, v in model_config.to_dict().items() if k != "affinity"},
             "train": {k: v for k, v in train_config.to_dict().items() if k not in free},
             "validate": validate, "data": fingerprints(split)}
    if auto_budget not in (None, BUDGET):
        asked["auto_budget"] = auto_budget
    return asked


def changed_request(run: Path, asked: dict) -> list[str]:
    """How ``asked`` (:func:`request`) differs from what the finished run in ``run`` asked for, as
    ``key: recorded -> asked`` lines (auto's budget aside); empty where it has none, or none recorded."""
    from awe_tf.training.callbacks import changes

    recorded = (read_metrics(run) or {}).get("request")
    if recorded is None:
        return []
    # auto's budget may change, as --epochs may: its record keeps the stages run (awe_tf.training.auto)
    recorded, asked = ({k: v for k, v in request.items() if k != "auto_budget"} for request in (recorded, asked))
    return changes(recorded, json.loads(json.dumps(asked, default=str)))  # as the record reads back


def earlier_report(run: Path, model_digest: str, data: dict) -> dict:
    """The report (``metrics.json``) of the finished run in ``run``, where it published the same
    model (its U and V's ``model_digest``, :func:`~awe_tf.models.saving.tables_digest`) trained and
    tested on the same ``data`` (:func:`fingerprints`); empty otherwise. A rerun that trained
    nothing takes its time from it, and one with ``--no-baselines`` its baselines."""
    earlier = read_metrics(run) or {}
    same = (earlier.get("model_digest") == model_digest
            and (earlier.get("request") or {}).get("data") == json.loads(json.dumps(data, default=str)))
    return earlier if same else {}


def shape_text(features: int, labels: int, dimension: int, bias: bool) -> str:
    """A model's shape in words, as the errors about starting from another model give it."""
    return f"{features} features, {labels} labels, dimension {dimension} and {'a' if bias else 'no'} bias feature"


def start_models(run: Path, validate: bool, shape: tuple[int, int, int, bool], data=None, iterative: bool = False):
    """``(validation-stage model or None, final model)`` of an earlier run (or a model saved
    elsewhere), for a run that starts from it (``--init-from``): the final model, and, when the new
    run validates, the best model of the earlier run's validation stage (trained on the same
    carve-out, so the epochs are still chosen on unseen rows). Its model must have the new run's
    ``shape``: features, labels, dimension and bias feature, checked first, before its stages;
    but given the new run's training ``data`` (a :class:`~awe_tf.data.Dataset`), labels both
    name are taken by name (:func:`~awe_tf.training.fit.label_rows`), so their number and order
    may differ, and so may a recommendation model's items; an annotation model's features must be
    the same, by name where the run recorded them. An ``iterative`` run takes the model as its
    step 0 as it is: its labels must be the data's. A :class:`RunError` says what is missing or
    different."""

    from awe_tf.models import AWEModel
    from awe_tf.models.saving import run_directory

    try:
        earlier = run_directory(run)  # RUN, also when RUN/model is given; None for a model saved elsewhere
    except FileNotFoundError as error:
        raise RunError(str(error)) from None
    final = AWEModel.load_model(run)
    by_name = False
    if data is not None and final.data_task == data.task:
        from awe_tf.training.fit import label_rows

        try:
            by_name = label_rows(data.label_names, final.label_names, data.task == "recommendation") is not None
        except ValueError as error:
            raise RunError(str(error)) from None
    if by_name and iterative:
        raise RunError("an affinity built in iterative steps takes the model it starts from as its step 0, as it is, "
                       "so its labels must be this data's, in this order; train WSABIE on this data from it first "
                       "(awe-tf train --init-from RUN, without --affinity), then start from that run")
    have = (final.n_features, final.n_labels, final.dimension, final.input_bias)
    items_by_name = by_name and data.task == "recommendation"  # a recommendation model's inputs are its items
    if (final.dimension, final.input_bias) != tuple(shape[2:]) or (not by_name and final.n_labels != shape[1]) \
            or (not items_by_name and final.n_features != shape[0]):
        raise RunError(f"its model has {shape_text(*have)}; this run has {shape_text(*shape)}: start from a model of "
                       "the same " + ("dimension and bias feature" if items_by_name else
                                      "features, dimension and bias feature" if by_name else "data and settings"))
    features = recorded_features(earlier) if earlier is not None and data is not None else None
    if features is not None and features != [str(name) for name in data.feature_names]:
        from awe_tf.data.dataset import first_difference

        raise RunError(f"it was trained on other features, or on these in another order "
                       f"({first_difference(features, data.feature_names, 'in its data', 'in this data')}): its rows "
                       "of U would start other features'; start from a model of these features")
    if not validate:
        return None, final
    weights = validation_weights(earlier) if earlier is not None else None
    if weights is None:
        raise RunError("it holds no validation-stage model (a model saved outside a run, a run with --no-validate or "
                       "--affinity auto, or one trained in iterative steps) to start this run's validation stage "
                       "from; add --no-validate")
    recorded = (read_metrics(earlier) or {}).get("validation_model_digest")  # runs before it was recorded: none
    if recorded is not None and recorded != validation_digest(weights):
        raise RunError("its validation stage has changed since its model was written: the run was continued and has "
                       "not finished (or is still running); finish it, or add --no-validate to start from its model "
                       "alone")
    stage = AWEModel.load_model(run)
    if len(weights) != len(stage.weights):  # kept shard by shard, as parameter servers held its tables
        raise RunError(f"its validation stage's model is kept as {len(weights)} arrays, the model has "
                       f"{len(stage.weights)} (a run whose tables parameter servers held in shards); add --no-validate "
                       "to start from its final model alone")
    stage.set_weights(weights)
    return stage, final
