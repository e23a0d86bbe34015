"""``awe-tf train``: the strategy, the data, the validation carve-out (or ``--affinity auto``), the
refit, the test part scored once and the run published."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

from awe_tf.cli.common import (
    UsageError,
    by_training_items_line,
    catch_sigterm,
    check_monitor_fits,
    configs_of,
    held_out_rows,
    hold_directory,
    iterations_refused,
    monitor_of,
    plural,
    scored_rows_line,
    writable_directory,
)
from awe_tf.cli.data_flags import check_parts, data_record, load_data, split_column_hint


def cmd_train(args) -> int:
    from awe_tf.distribute import is_default_strategy, xla_problem
    from awe_tf.training.strategies import make_strategy, split_cpu

    if args.cpu_replicas and args.strategy != "mirrored":
        raise UsageError("--cpu-replicas splits the CPU for --strategy mirrored")
    if args.tpu and args.strategy not in ("tpu", "auto"):
        raise UsageError("--tpu names the TPU of --strategy tpu (or auto)")
    if args.shard_bytes is not None and args.strategy != "parameter-server":
        raise UsageError("--shard-bytes cuts the tables of --strategy parameter-server")
    if args.strategy == "parameter-server" and (args.jit_compile or args.engine == "native"):  # before its wait
        raise UsageError("--strategy parameter-server trains with the graph step on its workers, without "
                         "--jit-compile (the tables live on the parameter servers) or --engine native")
    if args.engine == "native" and args.strategy not in ("default", "auto"):  # before a cluster's wait
        raise UsageError(f"--engine native runs on this machine's CPUs, under no --strategy ({args.strategy}): use "
                         "--engine graph, or leave --strategy at its default")
    devices = split_cpu(args.cpu_replicas) if args.cpu_replicas else None
    strategy = make_strategy(args.strategy, tpu=args.tpu, devices=devices, log=print,
                             **({"min_shard_bytes": args.shard_bytes} if args.shard_bytes else {}))
    catch_sigterm()  # again: a cluster's runtime takes SIGTERM for itself
    if args.strategy != "default":
        alone = args.strategy == "mirrored" and not args.cpu_replicas and \
            all("CPU" in device.upper() for device in strategy.extended.worker_devices)  # one replica, on the CPU
        print(f"strategy: {type(strategy).__name__}, {_replicas(strategy)}"
              + (" (no GPU here: --cpu-replicas N splits the CPU into N)" if alone else ""))
    problem = xla_problem(strategy) if args.jit_compile else None
    if problem:  # before the data: TensorFlow would fail only in the first step
        raise UsageError(f"--jit-compile: {problem}; train without it")
    if args.engine == "native" and not is_default_strategy(strategy):
        raise UsageError(f"--engine native runs on this machine's CPUs, not under {type(strategy).__name__} (of "
                         f"{plural(strategy.num_replicas_in_sync, 'replica')}): use --engine graph, or leave "
                         "--strategy at its default")
    with strategy.scope():
        return _train(args)


def _replicas(strategy) -> str:
    """What trains under ``strategy``: its replicas, or under parameter servers a replica on each
    worker (the line before counts the cluster's tasks)."""
    from awe_tf.distribute import is_parameter_server

    return "a replica on each worker" if is_parameter_server(strategy) else \
        plural(strategy.num_replicas_in_sync, "replica")


def _check_workers_agree(args, request: dict, train_config, iterations) -> None:
    """Refuse, on every worker, settings or data that differ among the workers of a multi-worker
    run (each runs its own command), before any model is built: the run's ``request``
    (:func:`~awe_tf.runs.request`) with every training setting but those each worker may set for
    itself, G's rebuilds, the start, ``--restart``, and the epochs the run's folder holds (workers
    of folders of their own resume from other epochs, and their collectives fail)."""
    from awe_tf import runs
    from awe_tf.distribute import differences_among_workers

    free = ("verbose", "threads")
    settings = {**request, "train": {key: value for key, value in train_config.to_dict().items() if key not in free},
                "run": {"iterations": iterations, "init_from": args.init_from,
                        "restart": args.restart}}  # a start, or one worker discarding
    problem = differences_among_workers(settings)
    if problem:
        raise UsageError(f"the workers were not given the same command and data: {problem}")
    held = differences_among_workers(runs.finished_epochs(Path(args.output))) if not args.restart else None  # (each
    if held:  # discards its own): workers of folders of their own would go on from other epochs
        raise UsageError(f"the workers' --output folders hold other runs: {held}: give every worker one shared "
                         "--output, where they go on from the chief's checkpoints")


def _train(args) -> int:
    import tensorflow as tf

    from awe_tf import runs
    from awe_tf.baselines import svd_ranks
    from awe_tf.config import SettingError, check_engine, engine_for
    from awe_tf.data.dataset import RECOMMENDATION
    from awe_tf.data.protocols import coverage, default_monitor, validation_split
    from awe_tf.evaluation import baseline_scores, evaluate_model
    from awe_tf.models.saving import model_directory, run_directory, tables_digest
    from awe_tf.training.auto import BUDGET, RecordRefused, choose_affinity
    from awe_tf.training.selection import DETAIL, checked_validation, choose_epochs, epochs_text, is_iterative, refit

    if args.auto_budget is not None and args.affinity != "auto":
        raise UsageError("--auto-budget is the time budget of --affinity auto")
    # The run's directory, held against another command writing it (a multi-worker run's processes share it): at
    # once where it exists, else once it is made, after the checks (a refused command leaves no directory behind).
    hold = args.strategy != "multiworker"
    if hold and Path(args.output).is_dir():
        hold_directory(Path(args.output), "--output")
    # a rerun into a finished run: its header's reading
    split, name, _ = load_data(args, files_from=runs.recorded_files(Path(args.output)))
    monitor = monitor_of(args, split)
    auto = args.affinity == "auto"
    if auto and (args.init_from or not args.validate or args.iterations is not None):
        raise UsageError("--affinity auto chooses on the validation carve-out, from WSABIE: it takes neither "
                         "--no-validate, --init-from nor --iterations")
    try:
        model_config, train_config = configs_of(args, model={
            "affinity": None if auto else args.affinity, "tpu_embedding": args.tpu_embedding,
        }, train={
            "monitor": monitor, "verbose": args.verbose, "steps_per_execution": args.steps_per_execution,
            "jit_compile": args.jit_compile,
            # XLA and parameter-server workers take one static batch shape
            "bucketing": not (args.jit_compile or args.strategy == "parameter-server"),  # fit gives a TPU one shape
        })
    except SettingError as error:  # the command line's own choice besides the registry's affinities
        from awe_tf.affinities import UnknownAffinity

        if isinstance(error.__context__, UnknownAffinity):  # the registry's error, which ModelConfig's replaced
            terms = [term.split(":")[0].strip() for term in args.affinity.split("+")]
            if "auto" in terms:  # a term of a sum, or auto given settings
                raise SettingError("affinity", f"{args.affinity!r}: auto chooses the whole affinity (WSABIE among its "
                                               "candidates), with no settings of its own and not as a term of a sum: "
                                               "give --affinity auto alone") from None
            raise SettingError("affinity", f"{error.problem}; or auto (chosen on the validation carve-out)") from None
        raise
    iterative = is_iterative(model_config)
    if args.iterations is not None and not iterative:
        raise iterations_refused()
    iterations = 3 if args.iterations is None else args.iterations
    check_engine(model_config, train_config)
    check_parts(args, split, name, "train")
    from awe_tf.affinities import get, spec_of

    chosen = "auto" if auto else spec_of(get(model_config.affinity or "constant"))  # as parsed: spellings agree
    request = runs.request(chosen, model_config, train_config, args.validate, split,  # the data's hashes, once
                           auto_budget=args.auto_budget)
    if args.strategy == "multiworker":
        _check_workers_agree(args, request, train_config, iterations)
    if args.validate:
        checked_validation(split.train)
        check_monitor_fits(args, monitor, split.train.n_labels)  # one the carve-out's ranking can report
    start = (None, None)
    if args.init_from:
        own = Path(args.output).resolve()
        start_at = Path(args.init_from).resolve()
        if start_at == own or any(own / part in (start_at, *start_at.parents) for part in runs.parts()):
            raise UsageError(f"--init-from {args.init_from} is this run's own --output {args.output}, or in it: the "
                             "run would write over the model it starts from (--restart would discard it first); give "
                             "another --output")
        try:
            start = runs.start_models(Path(args.init_from), args.validate, (split.train.n_features,
                                                                            split.train.n_labels, args.dimension,
                                                                            args.input_bias), split.train,
                                      iterative)
        except runs.RunError as error:
            raise UsageError(f"--init-from {args.init_from}: {error}") from None
        earlier = runs.read_metrics(run_directory(args.init_from)) or {}
        if earlier.get("data_fingerprint") not in (None, request["data"]["data_fingerprint"]):  # same shape only
            print(f"note: --init-from {args.init_from} was trained on other training data than this run's: where "
                  "that data holds any of this run's validation or test rows, their scores are not held out (which "
                  "rows it held is not recorded)")
    start_digest = tables_digest(start[1]) if args.init_from else None  # the final stage's start, as it was
    out = writable_directory(Path(args.output), "--output")
    if hold:
        hold_directory(out, "--output")
    runs.clear_unpublished(out)  # left by a run killed while publishing its results
    foreign = runs.foreign_parts(out)
    if foreign:  # publishing replaces them, --restart deletes them
        raise UsageError(f"--output {out} holds {', '.join(foreign)}, not written by an awe-tf run: a run there would "
                         "replace what it holds, and --restart delete it; give another --output, or move it out")
    if not args.restart:
        changed = runs.changed_request(out, request)
        if changed:  # a finished run of other settings: its model would be replaced without a word
            raise UsageError(f"{out} holds a finished run of other data or settings ({'; '.join(changed)}"
                             f"{split_column_hint(out, split)}): give another --output, or --restart to discard it")
    if args.restart:  # everything of earlier runs goes: a killed restart leaves no old model behind
        discarded = runs.discard(out)
        args.discarded = True  # from here, an interruption is gone on from without --restart
        if discarded:
            print(f"--restart: discarded the earlier run in {out} ({', '.join(discarded)})")
    before = runs.checkpoint_times(out)  # what earlier processes trained, if this one keeps it
    counts = coverage(split)
    print(f"data: {split.train!r}\n      test {split.test.n_examples} {held_out_rows(split.train.task)}"
          f"{_test_notes(counts)}")
    for note in (*_training_notes(counts), *(f"note: {note}" for note in split.train.notes)):
        print(f"      {note}")
    if args.train and not args.format:  # say which, where a wrong guess shows
        print(f"      {_format_note(Path(args.train))}")
    if split.train.header:  # say so, where a wrong guess (or a forced skip) shows
        print(f"      the first line, {', '.join(split.train.header)}, read as the columns' names" + (
            " (--header no keeps it as data)" if args.header == "auto" else
            f" (as {args.header_recorded_in} read it)" if getattr(args, "header_recorded_in", None)
            else " (--header yes)"))
    print(_engine_line(args, iterative and engine_for(model_config, train_config).engine != "native"))
    epochs = [args.epochs] * (iterations + 1 if iterative else 1)
    validation_report = None
    began = time.perf_counter()
    if auto:
        from awe_tf.metrics import check_metric
        from awe_tf.training.auto import compared_on

        print(f"choosing the affinity on the protocol's validation carve-out, by "
              f"{compared_on(monitor, check_metric(monitor, split.train.n_labels))} against WSABIE (epochs by "
              f"{monitor})")
        try:
            picked = choose_affinity(split.train, model_config, train_config, log=lambda line: print(DETAIL + line),
                                     budget=args.auto_budget or BUDGET, output_dir=out / runs.AUTO)
        except RecordRefused as error:  # the command's way out too
            raise UsageError(f"{error}; --restart discards it") from None
        print(picked.table(monitor))  # its rows say where a best epoch is the last of --epochs
        note = vote_note(picked)
        if note:
            print(f"{DETAIL}{note}")
        model_config = dataclasses.replace(model_config, affinity=picked.affinity)
        result, epochs = picked.final, picked.epochs
        validation_report = {"auto": {"chosen": picked.affinity or "constant", "made": picked.made,
                                      "seconds": picked.seconds,
                                      "trials": [_finite(dataclasses.asdict(trial)) for trial in picked.trials]}}
    elif args.validate:
        print(f"[1/2] choosing the number of epochs on the protocol's validation split, watching {monitor}")
        epochs, chosen = choose_epochs(split.train, model_config, train_config, iterations, out / "validation",
                                       init_from=start[0], log=print)  # the stages' lines, whatever --verbose
        validation_report = {"best_epochs": epochs, "steps": [c.history for c in chosen],
                             "starts": [c.start_metrics for c in chosen]}  # epoch 0 of a run from --init-from
        best = []  # each step's validation score at its best epoch, where known
        for step, (c, e) in enumerate(zip(chosen, epochs, strict=True)):
            label = f"step {step}: " if iterative else ""
            scores = c.history.get("val_" + monitor, [])
            start_score = c.start_metrics[monitor] if c.start_metrics else None
            if start_score is None and e == 0 and not c.epochs_run:  # step 0 given (--init-from): the steps' bar
                start_score = evaluate_model(c.model.score, validation_split(split.train))["metrics"][monitor]
            at_start = f"validation {monitor} = {start_score:.4f}" if start_score is not None else None
            if e == 0:
                shown = "the start kept" if c.epochs_run else "the model given, as it is"
                shown += f", {at_start}" if at_start else ""
                best.append(start_score)
            else:
                shown = f"validation {monitor} = {scores[e - 1]:.4f}" if len(scores) >= e else "no validation score"
                shown += f"; the start's {at_start}" if at_start else ""
                if e == args.epochs and len(scores) >= e:
                    shown += f"; the last of --epochs {args.epochs}, so the score may still be rising: try more"
                best.append(scores[e - 1] if len(scores) >= e else None)
            print(f"{DETAIL}{label}best epoch {e} ({shown})")
        note = _earlier_step_scored_higher(best, monitor) if iterative else None
        if note:
            print(f"{DETAIL}{note}")
        print(f"[2/2] refitting on the whole training part for {epochs_text(epochs)}")
    final_config = dataclasses.replace(train_config, epochs=epochs[0], patience=0)
    if not auto:
        result = refit(split.train, model_config, train_config, epochs, iterations, out / "final",
                       init_from=start[1], log=print)
    nothing_left = False  # every stage trained by earlier runs: this one wrote no checkpoint
    if auto:  # every process's time on the choice, as its record and its stages' checkpoints kept it
        train_seconds = picked.seconds
    else:
        after = runs.checkpoint_times(out)
        nothing_left = bool(before) and after == before
        train_seconds = runs.earlier_seconds(before, after) + (0.0 if nothing_left else time.perf_counter() - began)
    model = result.model
    from awe_tf.training.callbacks import worker_directory

    if worker_directory():  # a worker other than the chief: its outputs stay out of the chief's way
        out = out / worker_directory()
        out.mkdir(parents=True, exist_ok=True)
    digest = tables_digest(model)
    earlier = runs.earlier_report(out, digest, request["data"])  # of this model and data: {} where none
    if nothing_left:  # the finished run's own record, set-up included, rather than its checkpoints' epochs alone
        train_seconds = earlier.get("train_seconds", train_seconds)
    kept = earlier.get("baselines") if args.no_baselines else None  # a rerun with --no-baselines keeps them
    print("scoring the test part with the model" + ("" if args.no_baselines else " and the baselines"))
    if kept:
        print(f"{DETAIL}--no-baselines: the baselines scored by the earlier run in {out} are kept (the same model "
              "and data)")
    report = evaluate_model(model.score, split)  # with by_training_items where the test part has both kinds
    report["baselines"] = (kept or {}) if args.no_baselines else baseline_scores(split, model,
                                                                                 ranks=svd_ranks(args.dimension))
    report.update(
        {
            "model_digest": digest,  # what a rerun with --no-baselines keeps the earlier baselines by
            **data_record(args, split, name, request["data"]),  # what later commands read the data back by
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
            "model_config": model_config.to_dict(),
            "train_config": final_config.to_dict(),
            "validation": validation_report,
            "affinity_learnt": model.affinity.learnt_scalars(),
            "request": request,
        }
    )
    annotation = split.train.task != RECOMMENDATION  # a recommendation model's inputs are its labels, named
    runs.publish(out, model, report, split.train.feature_names if annotation else None)
    print()
    if report["affinity_learnt"]:
        print("learnt in G: " + ", ".join(f"{k} = {v:.4f}" for k, v in report["affinity_learnt"].items()))
    _print_table(report, default_monitor(split.train), split.train.task)  # what svd_rank chooses by
    trained = (f"trained by earlier runs, {train_seconds:.1f}s as they recorded it (nothing was left to train)"
               if nothing_left else f"trained in {train_seconds:.1f}s")
    print(f"{trained}; model: {out / runs.RUN_MODEL}; metrics: {out / runs.METRICS}")
    return 0


def _earlier_step_scored_higher(best: list, monitor: str) -> str | None:
    """A note when the last iterative step's best validation score is below an earlier step's
    (``best``: each step's, None where unknown): the model kept is the last step's, as
    ``--iterations`` asks, and the note says which setting would have stopped at the better one."""
    from awe_tf.metrics import ROUNDING  # two means of the same rows can differ in their last bits

    known = [(score, step) for step, score in enumerate(best[:-1]) if score is not None]
    if best[-1] is None or not known or max(known)[0] <= best[-1] + ROUNDING:
        return None
    score, step = max(known, key=lambda item: (item[0], -item[1]))  # the earliest of the best
    instead = f"--iterations {step} would stop there" if step else "training without --affinity (WSABIE) keeps it"
    return (f"note: the last step's validation {monitor} ({best[-1]:.4f}) is below step {step}'s ({score:.4f}); "
            f"the model kept is the last step's, as --iterations asks; {instead}")


def _engine_line(args, graph_steps: bool) -> str:
    """Which engine trains (README, Training engines), and on how many threads; ``graph_steps``:
    an iterative affinity's steps with G train on the graph step (a G the native engine lacks)."""
    if args.engine != "native":
        return "engine: graph (the TensorFlow training step)"
    from awe_tf.native import threads_for

    threads = threads_for(args.threads)
    rest = "; the steps with G on the graph step" if graph_steps else ""
    return f"engine: native (WARP in C, {plural(threads, 'thread')}{rest})"


def _format_note(train: Path) -> str:
    """How a --train path given without --format was read: the format and what told it
    (:func:`~awe_tf.data.registry.told_format`)."""
    from awe_tf.data.registry import FORMAT_NAMES, told_format

    guessed, told = told_format(train)
    return f"read as {FORMAT_NAMES[guessed]} (--format {guessed}), told from {told}; --format names another"


def _test_notes(counts) -> str:
    """What train's data line adds about the test part, from the split's
    :func:`~awe_tf.data.protocols.coverage`."""
    from awe_tf.data.protocols import N_HELD_OUT

    every = {5: "fifth"}.get(counts.test_every, f"{counts.test_every}-th")
    notes = [f"every {every} row of the file: no test file given"] if counts.test_every else []
    if counts.test_rows_file is not None:
        own = ("in its first column: the data set's own split" if counts.test_rows_column == 1 else
               f"in its column {counts.test_rows_column}: the data set's own split {counts.test_rows_column}")
        notes.append(f"the rows {counts.test_rows_file.name} lists {own}")
    if counts.untested_users:
        why = "of the test file with every test interaction a training one" if counts.own_test_file else \
            f"with fewer than {N_HELD_OUT} items"
        notes.append(f"{plural(counts.untested_users, 'user')} {why}: not tested")
    if counts.own_test_file:
        notes.append("the test file's interactions: the data's own split")
    if counts.test_positives_never_trained:
        notes.append(f"{plural(counts.test_positives_never_trained, 'test interaction')} with an item in no training "
                     "row: never ranked, never hit")
    if counts.users_without_training_items:
        notes.append(f"{plural(counts.users_without_training_items, 'user')} " +
                     ("only in the test file" if counts.own_test_file else
                      f"with exactly {N_HELD_OUT} items: all held out") + ", tested with no training items")
    if counts.test_rows_without_features:
        notes.append(f"{plural(counts.test_rows_without_features, 'row')} with no feature the model uses: each ranked "
                     "as the others, by the learnt label prior (by label order with --no-bias)")
    shared, labelled = counts.test_rows_trained_on
    if shared:
        notes.append(f"{shared:,} of its {labelled:,} labelled rows are training rows, inputs and labels alike: "
                     "their scores measure what the model remembers, not how it ranks")
    return f" ({'; '.join(notes)})" if notes else ""


def vote_note(picked) -> str | None:
    """Where auto chose the vote (an :class:`~awe_tf.training.auto.AutoResult`), that it is WSABIE's
    model as it is, which its spec given to ``--affinity`` would not give; else None."""
    if not any(trial.vote and trial.affinity == picked.affinity for trial in picked.trials):
        return None
    return (f"{picked.affinity} is built on WSABIE's model as it is, nothing trained (this run's model/); given to "
            "--affinity, it would train U and V in iterative steps, another model")


def _training_notes(counts) -> list[str]:
    """What train's data line says the training part cannot teach, from the split's
    :func:`~awe_tf.data.protocols.coverage`."""
    notes = []
    if counts.unlabelled_rows:
        notes.append(f"{plural(counts.unlabelled_rows, 'training row')} with no label: no pair to learn from")
    if counts.untrained_labels:
        notes.append(f"{plural(counts.untrained_labels, 'label')} in no training example, so untrained rows of V: "
                     f"{counts.test_positives_of_untrained_labels} of the test part's {counts.test_positives} "
                     "positives")
    if counts.numeric_standardised:
        notes.append(f"{plural(counts.numeric_standardised, 'numeric column')} standardised with the training part's "
                     "mean and standard deviation (by the model: a saved or exported model takes raw values)")
    if counts.numeric_kept:
        notes.append(f"{plural(counts.numeric_kept, 'numeric column')} 0 in half the training rows or more "
                     "(bag-of-words weights), kept as they are, not standardised, so that rows stay sparse")
    if counts.binary_kept and (counts.numeric_kept or counts.numeric_standardised):  # so the columns add up
        notes.append(f"{plural(counts.binary_kept, 'column')} of 0/1 values (binary or nominal attributes, or numbers "
                     "only 0 and 1 in training), kept as they are")
    if counts.untrained_features:
        touched = counts.test_values_of_untrained_features
        notes.append(f"{plural(counts.untrained_features, 'feature')} that no training row trains (in none, or "
                     "numeric and constant there), left out of every row scored"
                     + (f": {plural(touched, 'test value')}" if touched else ""))
    return notes


def _finite(record):
    """JSON has no NaN or infinity: such numbers become null (in nested dicts and lists too)."""
    if isinstance(record, dict):
        return {k: _finite(v) for k, v in record.items()}
    if isinstance(record, (list, tuple)):
        return [_finite(v) for v in record]
    return None if isinstance(record, float) and not math.isfinite(record) else record


def _print_table(report: dict, svd_chosen_by: str, task: str) -> None:
    """The test part's table of the model and the baselines, what each baseline is (the SVD's
    rank, and the metric that chose it on the carve-out, ``svd_chosen_by``), and the rows scored."""
    from awe_tf.evaluation import BASELINES, format_table
    from awe_tf.training.auto import reported_name

    rows = {f"model ({'auto: ' if report.get('auto') else ''}{reported_name(report)})": report["metrics"],
            **report.get("baselines", {})}
    print(format_table(rows))
    baselines = report.get("baselines", {})
    shown = [name for name in baselines if name in BASELINES]
    if shown:
        ranked_by = {name: f": {part['rank']}, by {svd_chosen_by}" for name, part in baselines.items()
                     if "rank" in part}
        print("baselines: " + "; ".join(f"{name}: {BASELINES[name]}{ranked_by.get(name, '')}" for name in shown))
    print(scored_rows_line(report, task))
    prior = report.get("model_config", {}).get("input_bias", True)
    groups = by_training_items_line(report.get("by_training_items"), prior,
                                    baselines.get("popularity", {}).get("by_training_items"))
    if groups:
        print(groups)
