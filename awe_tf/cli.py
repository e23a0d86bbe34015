"""The ``awe-tf`` command: a thin layer over the library.

    awe-tf datasets
    awe-tf train [--dataset NAME | --train FILE [--test FILE] [--labels XML] [--format F]] [options]
    awe-tf evaluate [MODEL_DIR] [--served EXPORT] [--dataset NAME | --train FILE ...]
    awe-tf export MODEL_DIR BASE_DIR [--name NAME] [--dataset NAME | --train FILE ...]

Bad input (a flag, a data file, an output directory) stops with one line naming it, exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up noise out of the output
# TensorFlow's Python warnings too: a command reports what it did, not TensorFlow's advice.
logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _data_args(parser, without: str = "corel5k, the bundled one"):
    group = parser.add_argument_group("data (a named data set, or files)")
    group.add_argument("--dataset", help=f"a named data set (see `awe-tf datasets`); without it and --train: {without}")
    group.add_argument("--train", help="training file (or the whole data set, for protocol splits)")
    group.add_argument("--test", help="test file, for data that comes with its own split")
    group.add_argument("--labels", help="Mulan label list (.xml)")
    group.add_argument("--format", choices=["mulan", "movielens", "xmlrepo", "interactions"],
                       help="the files' format; guessed from the file name when left out")
    group.add_argument("--duplicates", choices=["error", "sum"], default="error",
                       help="an entry given twice in a data file (a feature in one row, a (user, item) pair): stop "
                            "with an error naming both lines, or add their values up")
    group.add_argument("--header", choices=list(HEADERS), default="auto",
                       help="whether an interactions file's first line names its columns (auto: told from the line; "
                            "train says when it read one)")


HEADERS = {"auto": None, "yes": True, "no": False}  # --header: read_files' header=

def _header_read(args, split) -> str:
    """What a run records of ``--header``: for an interactions file, what the reader decided
    (``yes`` or ``no``), so the run's data reads the same however the automatic rule may change;
    ``auto`` for the other formats, whose layout is fixed."""
    from awe_tf.data.registry import guess_format

    if (args.format or guess_format(Path(args.train))) != "interactions":
        return "auto"
    return "yes" if split.train.header else "no"


def _data_flags(args) -> list[str]:
    """The command-line flags that name ``args``' data (what a printed ``train`` command needs),
    defaults left out."""
    data = ["--dataset", args.dataset] if args.dataset else []
    for flag, value in (("--train", args.train), ("--test", args.test), ("--labels", args.labels),
                        ("--format", args.format), ("--duplicates", None if args.duplicates == "error" else
                                                      args.duplicates),
                        ("--header", None if args.header == "auto" else args.header)):
        data += [flag, value] if value else []
    return data


def _check_data_flags(args) -> None:
    """Refuse data flags that do not go together (before any other work)."""
    if args.train and args.dataset:
        raise UsageError("give either --dataset or --train, not both")
    if not args.train and (args.test or args.labels or args.format or args.duplicates != "error"
                           or args.header != "auto"):
        raise UsageError("--test, --labels, --format, --duplicates and --header go with --train")


def _run_data(args, run: Path | None):
    """Without --dataset or --train, have ``args`` name the data the run in ``run`` was trained
    and tested on (:func:`~awe_tf.runs.recorded_data`): its named data set, or its files. Returns
    that record (None where the data is given, or the run has none)."""
    from awe_tf import runs

    if args.dataset or args.train:
        return None
    recorded = runs.recorded_data(run)
    if recorded is not None and recorded.files:
        files = recorded.files
        args.train, args.test, args.labels, args.format = (files.get(k) for k in ("train", "test", "labels", "format"))
        args.duplicates = files.get("duplicates", args.duplicates)
        args.header = files.get("header", args.header)
    elif recorded is not None:
        args.dataset = recorded.dataset
    return recorded


def _load(args, run: Path | None = None, header_from: Path | None = None):
    """``(split, name, recorded)`` of a command's data: --dataset, or --train's files; without them
    the data the run in ``run`` was trained on (:func:`_run_data`; ``recorded`` is its record,
    else None), refused if it has changed since; else the bundled default. A file the run in
    ``run`` (or ``header_from``) was trained on reads its first line as that run did
    (:func:`~awe_tf.runs.recorded_header`)."""
    from awe_tf import runs
    from awe_tf.data import DEFAULT_DATASET, load_dataset, load_split

    _check_data_flags(args)
    if args.train and args.header == "auto":
        header = runs.recorded_header(header_from or run, args.train)
        if header is not None:
            args.header, args.header_recorded_in = header, header_from or run
    recorded = _run_data(args, run)
    if args.train:
        split = load_split(args.train, args.test, args.labels, args.format, duplicates=args.duplicates,
                           header=HEADERS[args.header])
        name = split.train.name
    else:
        name = args.dataset or DEFAULT_DATASET
        split = load_dataset(name)
    changed = runs.changed_parts(recorded, split)
    if changed:
        raise UsageError(f"the {' and '.join(changed)} data of {run} changed after it was trained; give the data "
                         "to use with --dataset or --train")
    return split, name, recorded


class UsageError(ValueError):
    """A command line that cannot work as given (the message names the flags)."""


PLOT_FORMATS = (".png", ".pdf", ".svg")  # figures a command draws, by the file's extension


def _directory(path: Path, flag: str) -> Path:
    """``path`` as a directory this process can write to, made if missing; else a UsageError
    naming ``flag`` (checked before any work, so nothing is half-written)."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{flag} {path}: {parent} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".awe-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write there ({err.strerror})") from None
    return path


def _output_file(path: str | None, flag: str = "--output", run: Path | None = None) -> Path | None:
    """``path`` as a file this process can write (its folder made if missing), or None; else a
    UsageError naming ``flag``, checked before any work. In ``run``, where it is a run's directory
    (it holds ``metrics.json`` or a stage's folder), not the run's own files: its ``metrics.json``,
    which the run's other commands read, and anything in its stages' and model's folders."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give the JSON file to write")
    if run is not None and path.resolve().is_relative_to(Path(run).resolve()):
        from awe_tf import runs
        from awe_tf.models.saving import RUN_MODEL

        own = (runs.METRICS, RUN_MODEL, *runs.STAGES)
        inside = path.resolve().relative_to(Path(run).resolve())
        if any((Path(run) / part).exists() for part in own[:1] + own[2:]) and inside.parts[0] in own:
            raise UsageError(f"{flag} {path} would write into {run}'s own files (its {runs.METRICS} and its "
                             f"folders {', '.join(own[1:])} hold the run, which evaluate, export and diagnose read); "
                             "give another file")
    _directory(path.resolve().parent, flag)
    return path


def _print_table(report: dict) -> None:
    from awe_tf.evaluation import BASELINES, format_table

    affinity = report.get("affinity") or "constant"
    chosen = "WSABIE" if affinity == "constant" else affinity
    rows = {f"model ({'auto: ' if report.get('auto') else ''}{chosen})": report["metrics"],
            **report.get("baselines", {})}
    print(format_table(rows))
    shown = [name for name in report.get("baselines", {}) if name in BASELINES]
    if shown:
        print("baselines: " + "; ".join(f"{name}: {BASELINES[name]}" for name in shown))
    print(f"test examples: {report['n_test']} (left out, no positive label: {report['n_excluded']})")


def cmd_datasets(args) -> int:
    from awe_tf.data import list_datasets

    for entry in list_datasets():
        where = entry["path"] or "not available (set AWE_DATA_DIR)"
        tag = " [bundled]" if entry["bundled"] else " [also bundled]" if entry["name"] == "corel5k" else ""
        print(f"{entry['name']:<10} {entry['format']:<10} {entry['split']:<24} {where}{tag}")
    return 0


def cmd_affinities(args) -> int:
    from awe_tf.affinities import REGISTRY, settings_of

    for name in sorted(REGISTRY):
        known = REGISTRY[name]
        settings = ", ".join(sorted(settings_of(known.factory))) or "-"
        kind = "built from the training set (--iterations)" if known.iterative else "learnt with U and V, or fixed"
        tuned = ", ".join(known.space) or "-"
        print(f"{name:<16}{kind}\n{'':<16}settings: {settings}; tuned: {tuned}")
    return 0


def cmd_train(args) -> int:
    from awe_tf.distribute import on_one_machine, xla_problem
    from awe_tf.training.strategies import make_strategy, split_cpu

    if args.cpu_replicas and args.strategy != "mirrored":
        raise UsageError("--cpu-replicas splits the CPU for --strategy mirrored")
    if args.strategy == "parameter-server" and (args.jit_compile or args.engine == "native"):  # before its wait
        raise UsageError("--strategy parameter-server trains with the graph step on its workers, without "
                         "--jit-compile (the tables live on the parameter servers) or --engine native")
    devices = split_cpu(args.cpu_replicas) if args.cpu_replicas else None
    strategy = make_strategy(args.strategy, tpu=args.tpu, devices=devices, min_shard_bytes=args.shard_bytes, log=print)
    if args.strategy != "default":
        print(f"strategy: {type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s)")
    problem = xla_problem(strategy) if args.jit_compile else None
    if problem:  # before the data: TensorFlow would fail only in the first step
        raise UsageError(f"--jit-compile: {problem}; train without it")
    if args.engine == "native" and not on_one_machine(strategy):
        raise UsageError(f"--engine native runs on this machine's CPUs, not under {type(strategy).__name__}: "
                         "use --engine graph")
    with strategy.scope():
        return _train(args)


def _check_parts(args, split, name: str, parts: str) -> None:
    """Stop before any work where a part to use (``"train"``: both; ``"test"``) holds no positive
    label: nothing to train on or nothing to score, found otherwise only after training."""
    from awe_tf.data import RECOMMENDATION
    from awe_tf.data.protocols import N_HELD_OUT

    recommendation = split.train.task == RECOMMENDATION
    if parts == "train" and split.train.Y.nnz == 0:
        raise UsageError(f"{args.train or name}: its training part has no example with a positive label" + (
            f" (a user with exactly {N_HELD_OUT} items has them all held out for testing)" if recommendation else ""))
    if split.test.Y.nnz == 0:
        raise UsageError(f"{args.test or args.train or name}: its test part has no example with a positive label to "
                         "score" + (f" (no user has the {N_HELD_OUT} items the protocol holds out)" if recommendation
                                    else ""))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _test_notes(counts) -> str:
    """What train's data line adds about the test part, from the split's
    :func:`~awe_tf.data.protocols.coverage`."""
    from awe_tf.data.protocols import N_HELD_OUT

    every = {5: "fifth"}.get(counts.test_every, f"{counts.test_every}-th")
    notes = [f"every {every} row of the file: no test file given"] if counts.test_every else []
    if counts.untested_users:
        notes.append(f"{_plural(counts.untested_users, 'user')} with fewer than {N_HELD_OUT} items: not tested")
    if counts.users_without_training_items:
        notes.append(f"{_plural(counts.users_without_training_items, 'user')} with exactly {N_HELD_OUT} items: all "
                     "held out, tested with no training items")
    return f" ({'; '.join(notes)})" if notes else ""


def _training_notes(counts) -> list[str]:
    """What train's data line says the training part cannot teach, from the split's
    :func:`~awe_tf.data.protocols.coverage`."""
    notes = []
    if counts.unlabelled_rows:
        notes.append(f"{_plural(counts.unlabelled_rows, 'training row')} with no label: no pair to learn from")
    if counts.untrained_labels:
        notes.append(f"{_plural(counts.untrained_labels, 'label')} in no training example, so untrained rows of V: "
                     f"{counts.test_positives_of_untrained_labels} of the test part's {counts.test_positives} "
                     "positives")
    if counts.test_values_of_untrained_features:
        notes.append(f"{_plural(counts.untrained_features, 'feature')} in no training row, so untrained rows of U: "
                     f"{counts.test_values_of_untrained_features} test values")
    return notes


def _monitor(args, split) -> str:
    """The validation metric to watch: ``--monitor``, else the protocol's (P@10 for recommendation,
    P@1 otherwise)."""
    from awe_tf.data.protocols import default_monitor

    return args.monitor or default_monitor(split.train)


def _check_monitor(args, monitor: str, n_labels: int) -> None:
    """:func:`~awe_tf.config.check_monitor`, whose error, for the default monitor (not the user's
    choice), says it is the default and what to give instead."""
    from awe_tf.config import SettingError, check_monitor

    try:
        check_monitor(monitor, n_labels)
    except SettingError:
        if args.monitor:
            raise
        raise UsageError(f"the default --monitor, {monitor}, needs at least {monitor.split('@')[1]} labels and the "
                         f"data has {n_labels}: give --monitor precision@K with K at most {n_labels}") from None


def _iterations_refused() -> UsageError:
    """The error for --iterations given with an affinity that is not built from the training set."""
    from awe_tf.affinities import REGISTRY

    return UsageError("--iterations is for affinities built from the training set ("
                      + ", ".join(name for name, known in REGISTRY.items() if known.iterative) + ")")


def _check_workers_agree(args, request: dict, train_config, iterations) -> None:
    """Refuse, on every worker, settings or data that differ among the workers of a multi-worker
    run (each runs its own command), before any model is built: the run's ``request``
    (:func:`~awe_tf.runs.request`) with every training setting but those each worker may set for
    itself, G's rebuilds, the start and ``--restart``."""
    from awe_tf.distribute import differences_among_workers

    free = ("verbose", "threads")
    settings = {**request, "train": {key: value for key, value in train_config.to_dict().items() if key not in free},
                "run": {"iterations": iterations, "init_from": args.init_from,
                        "restart": args.restart}}  # a start, or one worker discarding
    problem = differences_among_workers(settings)
    if problem:
        raise UsageError(f"the workers were not given the same command and data: {problem}")


def _train(args) -> int:
    import tensorflow as tf

    from awe_tf import runs
    from awe_tf.config import ModelConfig, SettingError, TrainConfig, check_engine
    from awe_tf.data.protocols import coverage
    from awe_tf.evaluation import baseline_scores, evaluate_model
    from awe_tf.models.saving import RUN_MODEL, model_directory, run_directory, tables_digest
    from awe_tf.training.selection import DETAIL, checked_validation, choose_epochs, epochs_text, is_iterative, refit

    split, name, _ = _load(args, header_from=Path(args.output))  # a rerun into a finished run: its header's reading
    monitor = _monitor(args, split)
    auto = args.affinity == "auto"
    if auto and (args.init_from or not args.validate or args.iterations is not None):
        raise UsageError("--affinity auto chooses on the validation carve-out, from WSABIE: it takes neither "
                         "--no-validate, --init-from nor --iterations")
    try:
        model_config = ModelConfig(
            dimension=args.dimension, margin=args.margin, num_negatives=args.num_negatives, loss=args.loss,
            normalisation=args.normalisation, max_norm=args.max_norm, init_scale=args.init_scale, seed=args.seed,
            input_bias=args.input_bias, tpu_embedding=args.tpu_embedding,
            affinity=None if auto else args.affinity,
        )
    except SettingError as error:  # the command line's own choice besides the registry's affinities
        from awe_tf.affinities import UnknownAffinity

        if isinstance(error.__context__, UnknownAffinity):  # the registry's error, which ModelConfig's replaced
            raise SettingError("affinity", f"{error.problem}; or auto (chosen on the validation carve-out)") from None
        raise
    iterative = is_iterative(model_config)
    if args.iterations is not None and not iterative:
        raise _iterations_refused()
    iterations = 3 if args.iterations is None else args.iterations
    train_config = TrainConfig(
        epochs=args.epochs, learning_rate=args.learning_rate, optimizer=args.optimizer,
        pairs_per_batch=args.pairs_per_batch, patience=args.patience, monitor=monitor,
        seed=args.seed, verbose=args.verbose, jit_compile=args.jit_compile, engine=args.engine,
        threads=args.threads,
        # XLA and parameter-server workers take one static batch shape
        bucketing=not (args.jit_compile or args.strategy == "parameter-server"),  # fit gives a TPU one shape
    )
    check_engine(model_config, train_config)
    _check_parts(args, split, name, "train")
    from awe_tf.affinities import get, spec_of

    chosen = "auto" if auto else spec_of(get(model_config.affinity or "constant"))  # as parsed: spellings agree
    request = runs.request(chosen, model_config, train_config, args.validate, split)  # the data's hashes, once
    if args.strategy == "multiworker":
        _check_workers_agree(args, request, train_config, iterations)
    if args.validate:
        checked_validation(split.train)
        _check_monitor(args, monitor, split.train.n_labels)  # one the carve-out's ranking can report
    start = (None, None)
    if args.init_from:
        try:
            start = runs.start_models(Path(args.init_from), args.validate, (split.train.n_features,
                                                                            split.train.n_labels, args.dimension,
                                                                            args.input_bias))
        except runs.RunError as error:
            raise UsageError(f"--init-from {args.init_from}: {error}") from None
        earlier = runs.read_metrics(run_directory(args.init_from)) or {}
        if earlier.get("data_fingerprint") not in (None, request["data"]["data_fingerprint"]):  # same shape only
            print(f"note: --init-from {args.init_from} was trained on other training data than this run's: its "
                  "scores on this run's validation and test rows are not held out where it saw those rows")
    start_digest = tables_digest(start[1]) if args.init_from else None  # the final stage's start, as it was
    out = _directory(Path(args.output), "--output")
    runs.clear_unpublished(out)  # left by a run killed while publishing its results
    if not args.restart:
        changed = runs.changed_request(out, request)
        if changed:  # a finished run of other settings: its model would be replaced without a word
            raise UsageError(f"{out} holds a finished run of other data or settings ({'; '.join(changed)}): give "
                             "another --output, or --restart to discard it")
    if args.restart:  # everything of earlier runs goes: a killed restart leaves no old model behind
        discarded = runs.discard(out)
        if discarded:
            print(f"--restart: discarded the earlier run in {out} ({', '.join(discarded)})")
    before = runs.checkpoint_times(out)  # what earlier processes trained, if this one keeps it
    counts = coverage(split)
    print(f"data: {split.train!r}\n      test {split.test.n_examples} examples{_test_notes(counts)}")
    for note in _training_notes(counts):
        print(f"      {note}")
    if split.train.header:  # say so, where a wrong guess (or a forced skip) shows
        print(f"      the first line, {', '.join(split.train.header)}, read as the columns' names" + (
            " (--header no keeps it as data)" if args.header == "auto" else
            f" (as {args.header_recorded_in} read it)" if getattr(args, "header_recorded_in", None)
            else " (--header yes)"))
    epochs = [args.epochs] * (iterations + 1 if iterative else 1)
    validation_report = None
    began = time.perf_counter()
    if auto:
        from awe_tf.training.auto import choose_affinity

        print(f"choosing the affinity on the protocol's validation carve-out, watching {monitor}")
        picked = choose_affinity(split.train, model_config, train_config, log=lambda line: print(DETAIL + line))
        print(picked.table(monitor))
        model_config = dataclasses.replace(model_config, affinity=picked.affinity)
        result, epochs = picked.final, picked.epochs
        validation_report = {"auto": {"chosen": picked.affinity or "constant", "seconds": picked.seconds,
                                      "trials": [_finite(dataclasses.asdict(trial)) for trial in picked.trials]}}
    elif args.validate:
        print(f"[1/2] choosing the number of epochs on the protocol's validation split, watching {monitor}")
        epochs, chosen = choose_epochs(split.train, model_config, train_config, iterations, out / "validation",
                                       init_from=start[0], log=print)  # the stages' lines, whatever --verbose
        validation_report = {"best_epochs": epochs, "steps": [c.history for c in chosen],
                             "starts": [c.start_metrics for c in chosen]}  # epoch 0 of a run from --init-from
        for step, (c, e) in enumerate(zip(chosen, epochs, strict=True)):
            label = f"step {step}: " if iterative else ""
            scores = c.history.get("val_" + monitor, [])
            at_start = f"validation {monitor} = {c.start_metrics[monitor]:.4f}" if c.start_metrics else None
            if e == 0:
                shown = "the start kept" if c.epochs_run else "the model given, as it is"
                shown += f", {at_start}" if at_start else ""
            else:
                shown = f"validation {monitor} = {scores[e - 1]:.4f}" if len(scores) >= e else "no validation score"
                shown += f"; the start's {at_start}" if at_start else ""
            print(f"{DETAIL}{label}best epoch {e} ({shown})")
        print(f"[2/2] refitting on the whole training part for {epochs_text(epochs)}")
    final_config = dataclasses.replace(train_config, epochs=epochs[0], patience=0)
    if not auto:
        result = refit(split.train, model_config, train_config, epochs, iterations, out / "final",
                       init_from=start[1], log=print)
    train_seconds = runs.earlier_seconds(before, runs.checkpoint_times(out)) + time.perf_counter() - began
    model = result.model
    from awe_tf.training.callbacks import worker_directory

    if worker_directory():  # a worker other than the chief: its outputs stay out of the chief's way
        out = out / worker_directory()
        out.mkdir(parents=True, exist_ok=True)
    print("scoring the test part with the model" + ("" if args.no_baselines else " and the baselines"))
    report = evaluate_model(model.score, split)
    report["baselines"] = {} if args.no_baselines else baseline_scores(split, model, rank=args.dimension)
    report.update(
        {
            "dataset": name,
            **request["data"],  # runs.fingerprints(split)
            "train_seconds": train_seconds,
            "final_fit_seconds": result.train_seconds,
            "pairs_per_second": result.pairs_per_second,
            "epochs": epochs,
            "affinity": model_config.affinity or "constant",
            "auto": auto,
            "strategy": args.strategy,  # of this process: a resumed run may have begun under another
            "strategy_class": type(tf.distribute.get_strategy()).__name__,  # what it chose (auto: TPU, GPUs, CPU)
            "init_from": str(model_directory(args.init_from).resolve()) if args.init_from else None,
            "init_from_digest": start_digest,
            "data_files": {"train": str(Path(args.train).resolve()),
                           "test": str(Path(args.test).resolve()) if args.test else None,
                           "labels": str(Path(args.labels).resolve()) if args.labels else None,
                           "format": args.format, "duplicates": args.duplicates, "header": _header_read(args, split)}
            if args.train else None,
            "model_config": model_config.to_dict(),
            "train_config": final_config.to_dict(),
            "validation": validation_report,
            "affinity_learnt": model.affinity.learnt_scalars(),
            "request": request,
        }
    )
    runs.publish(out, model, report)
    print()
    if report["affinity_learnt"]:
        print("learnt in G: " + ", ".join(f"{k} = {v:.4f}" for k, v in report["affinity_learnt"].items()))
    _print_table(report)
    print(f"trained in {train_seconds:.1f}s; model: {out / RUN_MODEL}; metrics: {out / runs.METRICS}")
    return 0


def cmd_evaluate(args) -> int:
    from awe_tf.evaluation import evaluate_served, format_table, rank_test_part
    from awe_tf.models.saving import run_directory, tables_digest

    if not args.model and not args.served:
        raise UsageError("give the model directory written by `awe-tf train` (OUTPUT/model), --served EXPORT, or both")
    _check_data_flags(args)
    run = run_directory(args.model) if args.model else None
    output = _output_file(args.output, run=run)
    split, name, recorded = _load(args, run)  # a run's model: its data, unless told otherwise
    _check_parts(args, split, name, "test")
    print(f"data: {name}" + (f" (what {recorded.source} records)" if recorded else ""))
    model = served = None
    if args.model:  # both loaded and checked before any scoring
        from awe_tf.models import AWEModel

        model = AWEModel.load_model(args.model)
        _same_data(model.n_features, model.n_labels, model.label_names, split, name, args.model, args, run)
    if args.served:
        from awe_tf import serving

        served = serving.load(args.served)
        recorded_tables = served.metadata.get("tables_digest")  # None: an export older than this record
        if model is not None and recorded_tables and recorded_tables != tables_digest(model):  # before its data
            raise UsageError(f"--served {args.served} was exported from another model than {args.model} (their U and "
                             "V differ): compare an export with the model it was made from, or evaluate each alone")
        _same_data(served.metadata.get("n_features"), served.metadata.get("n_labels"), served.label_names, split, name,
                   served.path)
    rows, report = {}, None
    if model is not None:
        report = rank_test_part(model.score, split)  # its data checked above
        rows["model"] = report["metrics"]
    if served is not None:
        answered = evaluate_served(served, split)
        flavour = served.metadata.get("flavour", "export")
        rows[f"served ({flavour})"] = answered["metrics"]
        report = report or answered
        report["served"] = {"path": str(served.path), "flavour": flavour, "metrics": answered["metrics"]}
    report["dataset"] = name
    print(format_table(rows))
    print(f"test examples: {report['n_test']} (left out, no positive label: {report['n_excluded']})")
    if len(rows) == 2:
        first, second = rows.values()
        gap = max(abs(first[key] - second[key]) for key in second if key in first)
        report["served"]["largest_difference"] = gap
        print("the served answers give the same metrics as the model" if gap == 0 else
              f"the served answers differ from the model's by up to {gap:.4f} " + (
                  "(the portable flavour should rank as the model does: please report this)" if flavour == "portable"
                  else "(ScaNN retrieval is approximate; the portable flavour ranks exactly)"), end="")
        missing = sorted(set(first) - set(second), key=lambda m: (m.split("@")[0], int(m.split("@")[1])))
        print(f"; the export answers too few labels for {', '.join(missing)}" if missing else "")
    if output is not None:
        output.write_text(json.dumps(report, indent=1))
    return 0


def _same_data(n_features, n_labels, label_names, split, name, where, args=None, run=None) -> None:
    """Refuse data other than what the model at ``where`` was trained on (:func:`~awe_tf.evaluation.data_mismatch`);
    where ``args`` read --train with --header auto otherwise than the run in ``run`` read its own
    file (a copy of that file is read afresh), the message names the run's --header."""
    from awe_tf import runs
    from awe_tf.evaluation import data_mismatch

    problem = data_mismatch(n_features, n_labels, label_names, split.train)
    if problem:
        hint = ""
        if args is not None and args.train and args.header == "auto" and run is not None:
            try:
                files = (runs.read_metrics(run) or {}).get("data_files") or {}
            except (OSError, runs.RunError):
                files = {}
            if files.get("header") in ("yes", "no") and files["header"] != _header_read(args, split):
                hint = (f"; {run} read its file ({files.get('train')}) with --header {files['header']}: give that "
                        "to read a copy the same way")
        raise UsageError(f"{where}: {problem} ({name}); give the data it was trained on (--dataset or --train){hint}")


def cmd_diagnose(args) -> int:
    from awe_tf.diagnostics import diagnose
    from awe_tf.models.saving import run_directory, saved_config
    from awe_tf.optional import require

    run = Path(args.run)
    _check_data_flags(args)
    earlier = run_directory(run)  # the run (None: a model saved outside one); a missing path stops here
    if args.plot:  # checked before any work, as the run's outputs are
        if Path(args.plot).suffix.lower() not in PLOT_FORMATS:
            raise UsageError(f"--plot {args.plot}: name a {', '.join(PLOT_FORMATS[:-1])} or {PLOT_FORMATS[-1]} "
                             "file (the format is the extension's)")
        require("matplotlib", "--plot")
        _directory(Path(args.plot).resolve().parent, "--plot")
    output = _output_file(args.output, run=earlier)
    split, name, _ = _load(args, earlier)  # the run's own data, unless told otherwise
    saved = saved_config(run)
    _same_data(saved["n_features"], saved["n_labels"], saved.get("label_names"), split, name, run, args, earlier)
    report = diagnose(run, split, seed=args.seed, plot_to=args.plot)
    positives, negatives = report["g_positives"], report["g_negatives"]
    print(f"{name}, {report['affinity']} affinity, {report['test_positives']} test positives")
    g = "w N" if report.get("additive") else "G"  # the vote: what it adds to the linear score
    print(f"  {g + ' = 0 on positives:':<24} {100 * report['g_zero_on_positives']:.1f}%")
    summaries = [(f"{g} on positives:", positives), (f"{g} on random labels:", negatives)]
    if report.get("additive"):  # added to the linear score: that score is what it competes with
        summaries += [("linear on positives:", report["linear_positives"]),
                      ("linear on random labels:", report["linear_negatives"])]
    for title, values in summaries:
        print(f"  {title:<24} mean {values['mean']:.4g}, median {values['median']:.4g}, "
              f"10%-90% {values['p10']:.4g} to {values['p90']:.4g}")
    if not report.get("additive"):
        print(f"  margin {report['margin']:g}, in linear terms {report['margin_in_linear_terms']:.4g}")
    if report.get("step_knn_precision"):
        steps = zip(report["knn_steps"], report["step_knn_precision"], strict=True)
        print("  k-NN P@1 in each step's U (step: P@1): " + " -> ".join(f"{step}: {p:.4f}" for step, p in steps))
    if report.get("knn_steps_note"):
        print(f"  ({report['knn_steps_note']})")
    print(f"why: {report['verdict']}")
    if args.plot:
        print(f"plot: {report['plot']}")
    if output is not None:
        output.write_text(json.dumps(report, indent=1))
    return 0


def cmd_export(args) -> int:
    from awe_tf import runs, serving
    from awe_tf.models import AWEModel
    from awe_tf.models.saving import run_directory
    from awe_tf.serving.exporter import check_target

    _check_data_flags(args)
    run = run_directory(args.model)  # a missing or empty model path stops here, before BASE is made
    _directory(Path(args.base), "BASE")
    model = AWEModel.load_model(args.model)
    queries = split = recorded = None
    if args.dataset or args.train:
        split, name, _ = _load(args)
    else:  # a run's model: its data, as evaluate takes it; recall is not worth refusing for
        try:
            if runs.read_metrics(run) is not None:
                split, name, recorded = _load(args, run)
        except (ValueError, FileNotFoundError) as error:  # UsageError and RunError among them
            print(f"recall measured on random rows: the run's data cannot be read ({error})")
    if split is not None:
        print(f"recall measured on the test part of {name}" + (f" (what {recorded.source} records)" if recorded
                                                                else ""))
        _same_data(model.n_features, model.n_labels, model.label_names, split, name, args.model, args, run)
        queries = split.test.X[: args.recall_queries]  # raw rows, as clients will send them
    flavours = serving.FLAVOURS if args.flavour == "both" else (args.flavour,)
    names = {flavour: args.name if len(flavours) == 1 or flavour == "scann" else f"{args.name}-{flavour}"
             for flavour in flavours}
    for flavour, name in names.items():  # every target checked before the first is written
        check_target(model, args.base, name, flavour, args.version, args.keep, args.new_ids)
    for flavour, name in names.items():
        serving.export(model, args.base, name, version=args.version, flavour=flavour, keep=args.keep,
                       candidates=args.candidates, queries=queries, random_queries=args.recall_queries,
                       new_ids=args.new_ids)
    return 0


def cmd_inspect(args) -> int:
    from awe_tf.serving import custom_ops, layout, report

    path = layout.resolve(args.path)
    print(report(path))
    return 1 if args.require_stock and custom_ops(path) else 0


def cmd_tune(args) -> int:
    from awe_tf.affinities import REGISTRY
    from awe_tf.training import TrainConfig
    from awe_tf.tuning import make_tuner

    known = REGISTRY.get(args.affinity.strip())
    if args.iterations is not None and known is not None and not known.iterative:
        raise _iterations_refused()
    if args.oracle == "hyperband" and args.trials is not None:
        print("note: hyperband sets its own number of trials from --epochs; --trials is for random and bayesian")
    trials = args.trials or 10
    split, name, _ = _load(args)
    print(f"data: {split.train!r}")
    monitor = _monitor(args, split)
    _check_monitor(args, monitor, split.train.n_labels)
    tuner = make_tuner(args.oracle, split.train, args.affinity, directory=args.output, max_trials=trials,
                       max_epochs=args.epochs, seed=args.seed, iterations=args.iterations or 1,
                       train_config=TrainConfig(monitor=monitor))
    print(f"searching {args.affinity} on {name} with {args.oracle} ({tuner.project_dir}); objective: validation "
          f"{monitor} on the protocol's validation carve-out of the training part")
    done = len(tuner.oracle.trials)
    if args.oracle != "hyperband" and done >= trials:
        finished = sum(trial.status == "COMPLETED" for trial in tuner.oracle.trials.values())
        print(f"the search has {done} trials already ({finished} finished), --trials {trials}: none to add (a "
              "larger --trials adds trials)")
    tuner.search()
    best = tuner.best(data_flags=_data_flags(args), imports=args.imports or None)  # --import as given here
    print(f"best validation {monitor}: {best['score']:.4f} after {best['trials']} trials")
    if best["command"]:
        print(f"train it with:\n  {best['command']}")
    else:  # the trials' configs hold a setting no flag of train gives
        print("its settings include some awe-tf train cannot be given: " + "; ".join(best["not_in_command"]))
    return 0


def cmd_reproduce(args) -> int:
    import time as clock

    from awe_tf import reproduction
    from awe_tf.optional import require

    require("matplotlib", "awe-tf reproduce's plots")  # before the work, not after it
    out = Path(args.output or f"runs/reproduce-{args.table}")
    began = clock.perf_counter()
    seeds = _once(args.seeds or [args.seed])
    other = {"annotation": {"--betas": args.betas, "--ks": args.ks, "--rests": args.rests,
                            "--from-scratch": not args.from_wsabie},
             "recommendation": {"--datasets": args.datasets, "--iterations": args.iterations}}[args.table]
    given = [flag for flag, value in other.items() if value]
    if given:  # the other table's settings: ignored, they would read as if they had been used
        raise UsageError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} not for the {args.table} table")
    if args.table == "annotation":
        settings = {"datasets": _once(args.datasets or reproduction.ANNOTATION), "dimension": args.dimension or 100,
                    "epochs": args.epochs, "iterations": args.iterations or 3, "k": 20}
    else:
        settings = {"dimension": args.dimension or 64, "epochs": args.epochs,
                    "betas": _once(args.betas or reproduction.BETAS), "top_ks": _once(args.ks or reproduction.TOP_KS),
                    "top_k_rests": _once(args.rests or reproduction.TOP_K_RESTS),
                    "from_wsabie": args.from_wsabie}
    settings.update(engine=args.engine, threads=args.threads, init_scale=args.init_scale)
    try:  # every data set and model named, before any work
        reproduction.check_settings(args.table, settings)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    rows, per_seed, kept = reproduction.over_seeds(args.table, seeds, keep=out / reproduction.KEPT, **settings)
    settings["seeds"] = seeds
    settings["seconds"] = round(clock.perf_counter() - began, 1)  # of this run: the kept units' time is not in it
    settings["kept"] = kept
    written = reproduction.write_report(args.table, rows, out, settings, per_seed)
    print(written[1].read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_cluster_task(args) -> int:
    from awe_tf.training.strategies import run_cluster_task

    print("serving as a parameter-server-training task (TF_CONFIG); stop with Ctrl-C", flush=True)
    run_cluster_task()
    return 0


class _Help(argparse.HelpFormatter):
    """Help that ends each option with its default, where it has one (a switch is off unless given)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, argparse.SUPPRESS) or action.nargs == 0 or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``awe-tf train: error: ... (see awe-tf train --help)``) and
    every option's default in its help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _finite(record: dict) -> dict:
    """JSON has no NaN or infinity: such numbers become null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


def _at_least(minimum: int):
    """The type of an option that takes a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        value = _whole(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {value}")
        return value

    return parse


_positive = _at_least(1)
_non_negative = _at_least(0)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _once(values) -> list:
    """``values`` with repeats dropped, in their order (a repeated setting would be averaged as a seed)."""
    return list(dict.fromkeys(values))


def _rest(text: str) -> float | str:
    """Top-k's ``rest``: ``learn`` or a number in [0, 1]."""
    if text == "learn":
        return text
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1] nor 'learn'")
    return value


def build_parser() -> argparse.ArgumentParser:
    from awe_tf.config import ModelConfig, TrainConfig

    model_defaults, train_defaults = ModelConfig(), TrainConfig()
    parser = _Parser(prog="awe-tf", description="Affinity Weighted Embedding on TensorFlow")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import this Python module first (repeatable; a module name, found from the current "
                             "folder too, or a .py file's path): a module that registers an affinity of your own, so "
                             "--affinity and saved models can use it")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("datasets", help="list the named data sets").set_defaults(func=cmd_datasets)
    sub.add_parser("affinities", help="list the affinities G (--affinity specs), their settings and what tuning "
                                      "searches").set_defaults(func=cmd_affinities)

    train = sub.add_parser("train", help="train a model, evaluate it and the baselines")
    _data_args(train)
    train.add_argument("--output", "-o", default="runs/latest",
                       help="output directory; running the same command again resumes an interrupted run from its "
                            "last checkpoint (and refuses other data or settings)")
    train.add_argument("--restart", action="store_true",
                       help="discard what earlier runs left in the output directory (checkpoints, model, metrics) "
                            "and train from scratch")
    model = train.add_argument_group("model")
    model.add_argument("--dimension", "-d", type=_positive, default=model_defaults.dimension,
                       help="embedding dimension d")
    model.add_argument("--margin", type=_number, default=model_defaults.margin, help="the WARP margin")
    model.add_argument("--negatives", dest="num_negatives", metavar="K", type=_positive,
                       default=model_defaults.num_negatives,
                       help="labels sampled per example per step (WARP's K)")
    model.add_argument("--loss", choices=["warp", "warp-all"], default=model_defaults.loss,
                       help="warp: the first violating label per pair; warp-all: every violating label")
    model.add_argument("--normalisation", choices=["l2", "l1", "none"], default=model_defaults.normalisation,
                       help="how each input row is scaled (after numeric features are standardised)")
    model.add_argument("--max-norm", type=_number, default=model_defaults.max_norm,
                       help="the radius rows of U and V are kept in")
    model.add_argument("--init-scale", type=_number, default=model_defaults.init_scale,
                       help="about the norm of a row of U and V as training starts")
    model.add_argument("--affinity", help="the affinity G as a spec, e.g. knn:k=20, linear-sigmoid:alpha=1,beta=0.25 "
                       "or a sum such as constant:1+knn:k=20 (`awe-tf affinities` lists them; none: constant, i.e. "
                       "WSABIE); auto: chosen on the validation carve-out among WSABIE and a few candidates, "
                       "within 5x WSABIE's time (its candidates keep no checkpoints: interrupted, it chooses "
                       "again)")
    model.add_argument("--iterations", type=_positive,
                       help="times G is rebuilt from the model, for affinities built from the training set "
                            "(knn, rbf, latent-rbf, hybrid-rbf, cluster; none: 3)")
    model.add_argument("--init-from", metavar="RUN",
                       help="start U and V from an earlier run's trained model (its output directory; typically a "
                            "WSABIE), each stage from that run's model of the same stage: AWE learnt jointly from "
                            "the linear model (none: random U and V)")
    model.add_argument("--no-bias", dest="input_bias", action="store_false",
                       help="no always-on input feature (no learnt per-label bias)")
    fitting = train.add_argument_group("training")
    # at least 1 (0 epochs, a model kept as it starts, is for models started from a trained one, in Python)
    fitting.add_argument("--epochs", type=_positive, default=train_defaults.epochs,
                         help="the most epochs (each step's, for iterative affinities)")
    fitting.add_argument("--learning-rate", "--lr", type=_number, default=train_defaults.learning_rate,
                         help="the optimiser's step size (the default is Adagrad's)")
    fitting.add_argument("--optimizer", choices=["adagrad", "sgd"], default=train_defaults.optimizer,
                         help="adagrad, or the paper's plain SGD (give it a --learning-rate of its own: the "
                              "default is Adagrad's, far too large for SGD)")
    fitting.add_argument("--pairs-per-batch", type=_positive, default=train_defaults.pairs_per_batch,
                         help="the most (x, y) pair slots a step holds: each example's labels, padded to the longest "
                              "example in the step, rounded up to a multiple of 8 (an example longer than that is a "
                              "step of its own)")
    fitting.add_argument("--patience", type=_non_negative, default=train_defaults.patience,
                         help="stop after this many epochs without a better validation score (0: never)")
    fitting.add_argument("--monitor", help="validation metric for early stopping, precision@K or recall@K (none: "
                                           "precision@10 for recommendation, precision@1 otherwise)")
    fitting.add_argument("--no-validate", dest="validate", action="store_false",
                         help="skip choosing the epoch count on the validation split")
    fitting.add_argument("--no-baselines", action="store_true", help="do not score the baselines")
    fitting.add_argument("--seed", type=_non_negative, default=train_defaults.seed,
                         help="seed of initialisation, sampling and batch order")
    fitting.add_argument("--verbose", type=_whole, default=train_defaults.verbose, choices=[0, 1, 2],
                         help="0 silent, 1 progress bar, 2 one line per epoch")
    fitting.add_argument("--engine", choices=["graph", "native"], default=train_defaults.engine,
                         help="graph: the TensorFlow step (every model, strategy and device); native: WARP in C "
                              "on this machine's cores, several times faster, for WSABIE, linear sigmoid (on the "
                              "whole score) and their sums with constants (with --iterations: step 0, the linear "
                              "model)")
    fitting.add_argument("--threads", type=_non_negative, default=train_defaults.threads,
                         help="threads of the native engine (0: every core; with 1 runs are repeatable)")
    scale = train.add_argument_group("distribution")
    scale.add_argument("--strategy", choices=["default", "auto", "mirrored", "multiworker", "parameter-server", "tpu"],
                       default="default", help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    scale.add_argument("--tpu", help="TPU address for --strategy tpu (none: Colab's / the environment's)")
    scale.add_argument("--cpu-replicas", type=_positive,
                       help="split the CPU into this many devices (with --strategy mirrored, for trying it out; "
                            "none: one device)")
    scale.add_argument("--shard-bytes", type=_positive, default=256 << 10,
                       help="parameter-server: the smallest shard the tables U and V are cut into, in bytes "
                            "(at most one shard per parameter server; training prints the cut)")
    scale.add_argument("--jit-compile", action="store_true",
                       help="compile the training step with XLA (one static batch shape, as on TPU)")
    scale.add_argument("--tpu-embedding", action="store_true",
                       help="keep U and V in tfrs TPUEmbedding layers off a TPU (the same training as without); "
                            "refused under a TPUStrategy, where U and V are replicated variables")
    train.set_defaults(func=cmd_train, parser=train)

    evaluate = sub.add_parser("evaluate", help="score a saved model, or an export, on a data set's test part")
    evaluate.add_argument("model", nargs="?", help="the model written by `awe-tf train` (OUTPUT/model, or OUTPUT); "
                                                   "may be left out with --served")
    evaluate.add_argument("--served", metavar="EXPORT",
                          help="an export (a version directory, or BASE/NAME for its newest version): send it the "
                               "test part's raw rows and score its answers")
    _data_args(evaluate, without="the data the model's run was trained on (its metrics.json), else corel5k")
    evaluate.add_argument("--output", help="write the metrics as JSON to this file (none: print them only)")
    evaluate.set_defaults(func=cmd_evaluate, parser=evaluate)

    diagnose = sub.add_parser("diagnose", help="what a trained AWE model's G does on the test part (why it wins "
                                               "or loses against WSABIE)")
    diagnose.add_argument("run", help="the output directory of `awe-tf train` (holding model/ and metrics.json)")
    _data_args(diagnose, without="the data the run was trained on (its metrics.json)")
    diagnose.add_argument("--seed", type=_non_negative, default=0, help="seed of the random labels G is compared on")
    diagnose.add_argument("--output", help="write the report as JSON to this file (none: print it only)")
    diagnose.add_argument("--plot", metavar="FILE", help="also draw the report to this .png, .pdf or .svg file: "
                                                         "G on the test positives against random labels, and each "
                                                         "step's k-NN P@1")
    diagnose.set_defaults(func=cmd_diagnose, parser=diagnose)

    export = sub.add_parser("export", help="export a saved model for TF Serving (BASE/NAME/VERSION/)")
    export.add_argument("model", help="the model written by `awe-tf train` (OUTPUT/model, or OUTPUT)")
    export.add_argument("base", metavar="BASE", help="the base directory TF Serving serves models from")
    export.add_argument("--name", default="awe", help="model name")
    export.add_argument("--flavour", choices=["scann", "portable", "both"], default="both",
                        help="scann: ScaNN retrieval (needs ScaNN's ops); portable: stock ops only; both: NAME is "
                             "scann, NAME-portable portable")
    export.add_argument("--version", type=_positive, help="version number (none: newest + 1)")
    export.add_argument("--keep", type=_positive, help="keep only this many newest versions (none: all)")
    export.add_argument("--new-ids", action="store_true",
                        help="export under NAME a model whose inputs, labels or label names differ from its newest "
                             "version's (refused without it: the name's clients would send ids that mean other "
                             "things)")
    export.add_argument("--candidates", type=_positive, default=100,
                        help="labels ScaNN fetches before exact re-ranking; for the scann flavour also the largest k")
    export.add_argument("--recall-queries", type=_positive, default=500,
                        help="test rows of the data set used to measure recall@10, the first 5 also as warmup "
                             "requests (without --dataset or --train: the run's own data; for a model outside a "
                             "run, as many random probe rows)")
    _data_args(export, without="the run's own data, as evaluate; for a model outside a run, random probe rows "
                               "measure recall")
    export.set_defaults(func=cmd_export, parser=export)

    tune = sub.add_parser("tune", help="search hyper-parameters with KerasTuner on the validation carve-out")
    _data_args(tune)
    tune.add_argument("--affinity", default="constant",
                      help="affinity whose knobs are searched with the usual ones (`awe-tf affinities` lists them)")
    tune.add_argument("--oracle", choices=["random", "bayesian", "hyperband"], default="random",
                      help="KerasTuner's search algorithm")
    tune.add_argument("--trials", type=_positive, help="trials (random, bayesian; none: 10)")
    tune.add_argument("--epochs", type=_positive, default=10, help="epochs per trial (hyperband: the most)")
    tune.add_argument("--iterations", type=_positive,
                      help="G rebuilds per trial, for affinities built from the training set (none: 1)")
    tune.add_argument("--monitor", help="validation metric to maximise (none: precision@10 for recommendation, "
                                        "precision@1 otherwise)")
    tune.add_argument("--seed", type=_non_negative, default=0, help="seed of the search and of each trial")
    tune.add_argument("--output", "-o", default="runs/tuning",
                      help="search directory; running the same command again resumes the search")
    tune.set_defaults(func=cmd_tune, parser=tune)

    reproduce = sub.add_parser("reproduce", help="the paper's tables: annotation (Tables 1, 2) or recommendation "
                               "(Table 3)")
    reproduce.add_argument("table", choices=["annotation", "recommendation"], help="which of the paper's tables")
    reproduce.add_argument("--output", "-o", help="output directory (none: runs/reproduce-TABLE); each data set "
                           "and seed finished is kept there, so running the same command again goes on from them")
    reproduce.add_argument("--datasets", nargs="+", help="annotation data sets (none: cal500 corel5k emotions scene)")
    reproduce.add_argument("--dimension", "-d", type=_positive, help="none: 100 (annotation), 64 (recommendation)")
    reproduce.add_argument("--epochs", type=_positive, default=30, help="the most epochs per model (early stopping)")
    reproduce.add_argument("--iterations", type=_positive, help="annotation's AWE k-NN: times G is rebuilt (none: 3)")
    reproduce.add_argument("--betas", nargs="+", type=_number,
                           help="linear sigmoid betas (none: -1 -0.5 0 0.25 0.5)")
    reproduce.add_argument("--ks", nargs="+", type=_positive, help="top-k affinity k values (none: 1 5 7 11)")
    reproduce.add_argument("--rests", nargs="+", type=_rest,
                           help="top-k's G of the terms outside the k: numbers in [0, 1] or 'learn' (none: 0 learn; "
                                "0 is the paper's eq. 7, learn starts at 1, WSABIE's ranking)")
    reproduce.add_argument("--from-scratch", dest="from_wsabie", action="store_false",
                           help="recommendation: learn each AWE model from random U and V instead of starting from "
                                "the trained WSABIE's (the paper's set-up)")
    reproduce.add_argument("--engine", choices=["graph", "native"], default="graph",
                           help="native: WSABIE, linear sigmoid and AWE k-NN's linear step 0 train with the native "
                                "engine (the other AWE models with the graph step)")
    reproduce.add_argument("--threads", type=_non_negative, default=0,
                           help="threads of the native engine (0: every core; with 1 runs are repeatable)")
    reproduce.add_argument("--init-scale", type=_number, default=model_defaults.init_scale,
                           help="about the norm of a row of U and V as training starts (the README's reproduce "
                                "annotation tables were measured at 1, its recommendation table at 0.1)")
    reproduce.add_argument("--seed", type=_non_negative, default=0, help="the seed, when --seeds is not given")
    reproduce.add_argument("--seeds", nargs="+", type=_non_negative,
                           help="run every model once per seed and report means ± standard deviations")
    reproduce.set_defaults(func=cmd_reproduce, parser=reproduce)

    task = sub.add_parser("cluster-task", help="run as a worker or parameter server for --strategy parameter-server "
                          "(reads TF_CONFIG; blocks)")
    task.set_defaults(func=cmd_cluster_task, parser=task)

    inspect = sub.add_parser("inspect", help="list the ops an exported SavedModel needs, stock or custom")
    inspect.add_argument("path", help="a SavedModel (version) directory, or BASE/NAME for its newest version")
    inspect.add_argument("--require-stock", action="store_true", help="exit 1 if any op is not stock TensorFlow")
    inspect.set_defaults(func=cmd_inspect, parser=inspect)
    return parser


def _flag(parser, field: str) -> str:
    """The command-line flag of a setting (its argparse destination), else the setting's name."""
    for action in getattr(parser, "_actions", []):
        if action.dest == field and action.option_strings:
            return max(action.option_strings, key=len)
    return field


def import_user_module(module: str) -> None:
    """``--import MODULE``: a module name, found from the current folder as ``python -m`` finds it,
    or a ``.py`` file's path (imported under its file name, the name a saved model records).
    An ImportError names the module and why."""
    name, path = module, None
    if module.endswith(".py") or os.sep in module:
        path = Path(module)
        if path.suffix != ".py" or not path.is_file():
            raise ImportError(f"--import {module}: no such Python file (give a module name, or a .py file's path)")
        name = path.stem
        loaded = getattr(sys.modules.get(name), "__file__", None)
        if loaded is not None and Path(loaded).resolve() != path.resolve():
            raise ImportError(f"--import {module}: a module named {name} is loaded already ({loaded}); rename the file")
        folder = str(path.resolve().parent)
    else:
        folder = os.getcwd()
    if folder not in sys.path:
        sys.path.append(folder)  # after the installed packages: a file of the folder never hides one of theirs
    try:
        importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"--import {module}: {err}") from None
    except TypeError as err:  # a relative name, e.g. .mymodule
        raise ImportError(f"--import {module}: {err} (give a module name or a .py file's path)") from None


def _tensor_as_bool() -> type:
    """TensorFlow's error for a tensor used as a Python bool while a graph is traced (imported
    only when an error is being handled, so commands that need no TensorFlow load none)."""
    if "tensorflow" not in sys.modules:
        return type("_NoTensorFlowError", (Exception,), {})
    return sys.modules["tensorflow"].errors.OperatorNotAllowedInGraphError


class _Output:
    """Standard output that, once its reader has gone (a pipe closed early: ``awe-tf train ... |
    head -1``), points its descriptor at /dev/null and carries on: the command finishes its work
    (a model, a run's results) and exits as it would have, instead of stopping at the next line it
    prints with the work lost."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self):
        try:
            descriptor = self.stream.fileno()
        except (OSError, ValueError, AttributeError):  # no descriptor of its own (captured, a notebook's stream)
            return
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, descriptor)
        os.close(null)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from awe_tf.config import SettingError
    from awe_tf.data import DataFormatError

    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    try:
        for module in args.imports:
            import_user_module(module)
        code = args.func(args)
        sys.stdout.flush()  # here, so a reader that stopped early is met now, not at exit
        return code
    except SettingError as err:
        print(f"error: {_flag(getattr(args, 'parser', None), err.field)} {err.problem}", file=sys.stderr)
    except _tensor_as_bool() as err:  # an affinity of one's own with a Python branch on a tensor
        print("error: a Python if (or while, and, or) on a tensor's value cannot be traced into a graph: an "
              "affinity's hooks branch with tf.cond or tf.where (README: Adding an affinity) "
              f"({str(err).splitlines()[0]})", file=sys.stderr)
    except (DataFormatError, ValueError, RuntimeError, ImportError, OSError) as err:  # OSError: a broken pipe too,
        print(f"error: {err}", file=sys.stderr)  # other than the output's (a reader of the output may stop early)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout
    return 2


if __name__ == "__main__":
    sys.exit(main())
