"""The commands other than ``train``: datasets, affinities, evaluate, diagnose, export, inspect,
tune, reproduce and cluster-task."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

from awe_tf.cli.common import (
    PLOT_FORMATS,
    Terminated,
    UsageError,
    by_training_items_line,
    check_monitor_fits,
    configs_of,
    hold_directory,
    import_anywhere,
    iterations_refused,
    monitor_of,
    note_unpublished,
    output_file,
    plural,
    refuse_run_part,
    reproduce_output,
    scored_rows_line,
    writable_directory,
)
from awe_tf.cli.data_flags import (
    check_data_flags,
    check_labels,
    check_not_trained_on,
    check_parts,
    data_record,
    flags_of_data,
    load_data,
    recorded_text,
    same_data,
    spare_data_files,
)
from awe_tf.data.text import some_of


def cmd_datasets(args) -> int:
    from awe_tf.data import list_datasets
    from awe_tf.data.registry import data_dir

    refused = {}
    entries = list_datasets(refused)
    width = max(10, *(len(entry["name"]) for entry in entries))
    for entry in entries:
        where = entry["path"] or ("not in AWE_DATA_DIR" if data_dir() else "not available (set AWE_DATA_DIR)")
        tag = " [bundled]" if entry["bundled"] else " [also bundled]" if entry["name"] == "corel5k" else ""
        print(f"{entry['name']:<{width}} {entry['format']:<10} {entry['split']:<24} {where}{tag}")
    for name, why in refused.items():
        print(f"not a data set: {name}: {why}")
    return 0


def cmd_affinities(args) -> int:
    from awe_tf.affinities import REGISTRY, settings_of

    for name in sorted(REGISTRY):
        known = REGISTRY[name]
        settings = ", ".join(sorted(settings_of(known.factory))) or "-"
        kind = "built from the training set (--iterations)" if known.iterative else "learnt with U and V, or fixed"
        tuned = ", ".join(known.space) or "-"
        print(f"{name:<16}{kind}; {_engines(known)}\n{'':<16}settings: {settings}; tuned: {tuned}")
    return 0


def _engines(known) -> str:
    """Which engines train an affinity at its default settings (README, Training engines)."""
    try:
        native = known.factory().native_form() is not None
    except Exception:  # noqa: BLE001 (a factory that needs settings: only the graph step is known to train it)
        native = False
    return "engines: graph, native" if native else "engines: graph"


def cmd_evaluate(args) -> int:
    from awe_tf.evaluation import evaluate_served, format_table, rank_test_part
    from awe_tf.models.saving import run_directory, tables_digest

    if not args.model and not args.served:
        raise UsageError("give the model directory written by `awe-tf train` (OUTPUT/model), --served EXPORT, or both")
    check_data_flags(args)
    given_data = bool(args.dataset or args.train)  # before load_data names the recorded data in args
    run = run_directory(args.model) if args.model else None
    record = files_from = None
    if args.served:  # found before the data is read
        from awe_tf import runs
        from awe_tf.serving import layout
        from awe_tf.serving.exporter import metadata_file, read_metadata

        try:
            exported = layout.resolve(args.served)
        except FileNotFoundError as error:
            raise UsageError(f"--served {args.served}: {error}") from None
        if run is None:  # an export alone: the data it records, if any; else the files as it read them
            kept = read_metadata(exported).get("data")
            if kept and not given_data:
                record = runs.read_record(kept, metadata_file(exported))
            if (kept or {}).get("data_files"):
                files_from = (metadata_file(exported), kept["data_files"])
    output = output_file(args.output, run=run)
    # a run's model: its data, unless told otherwise
    split, name, recorded = load_data(args, run, record=record, files_from=files_from)
    spare_data_files(output, args)
    check_parts(args, split, name, "test")
    unnamed = args.served and run is None and recorded is None and not given_data  # the default data set
    print(f"data: {name}" + recorded_text(recorded, args) +
          (f" (the default: {args.served} records no data; give it with --dataset or --train)" if unnamed else "") +
          (f"; test part: {Path(args.test).name}" if args.test else ""))
    for note in split.train.notes:  # what its reader saw that may not be what was meant, as train says
        print(f"      note: {note}")
    model = served = None
    left_out = {}  # what --unknown-items skip left out
    if args.model:  # both loaded and checked before any scoring
        from awe_tf.models import AWEModel

        model = AWEModel.load_model(args.model)
        note_unpublished(run)
        split = _onto_model_items(args, split, name, model.label_names, args.model, left_out)
        same_data(model.n_features, model.n_labels, model.label_names, split, name, args.model, args, run)
    if args.served:
        from awe_tf import serving

        served = serving.load(args.served)
        if model is None:
            split = _onto_model_items(args, split, name, served.label_names, served.path, left_out)
        recorded_tables = served.metadata.get("tables_digest")  # None: an export older than this record
        if model is not None and recorded_tables and recorded_tables != tables_digest(model):  # before its data
            raise UsageError(f"--served {args.served} was exported from another model than {args.model} (their U and "
                             "V differ): compare an export with the model it was made from, or evaluate each alone")
        same_data(served.metadata.get("n_features"), served.metadata.get("n_labels"), served.label_names, split, name,
                  served.path, args, feature_names=served.feature_names)
    check_not_trained_on(run, split, name, recorded)
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
    if left_out:
        report["left_out"] = left_out
    print(format_table(rows))
    print(scored_rows_line(report, split.train.task))
    groups = by_training_items_line(report.get("by_training_items"), model is None or model.input_bias)
    if groups:
        print(groups)
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
        print(f"metrics: {output}")
    return 0


def _onto_model_items(args, split, name: str, names, where, left_out: dict):
    """The split as ``evaluate --unknown-items skip`` scores it: its items the model's
    (:func:`~awe_tf.data.protocols.onto_items`), what was left out said in a note and kept in
    ``left_out`` (for the report), and the test part checked again; as it is without the flag."""
    from awe_tf.data import RECOMMENDATION
    from awe_tf.data.protocols import onto_items

    if args.unknown_items == "refuse":
        return split
    if split.train.task != RECOMMENDATION:
        raise UsageError(f"--unknown-items is for recommendation models' items; {name} is {split.train.task} data")
    if names is None:
        raise UsageError(f"{where} records no item names, so the data's items cannot be matched to its: give the data "
                         "it was trained on")
    split, left = onto_items(split, names)
    if left.items:
        left_out.update(dataclasses.asdict(left))
        tested = left.untested_users
        users = f"; {plural(tested, 'user')} left with none, not tested" if tested else ""
        print(f"      note: {plural(len(left.items), 'item')} the model does not have, left out (--unknown-items "
              f"skip): {some_of([repr(item) for item in left.items])}: "
              f"{plural(left.test_interactions, 'test interaction')}, never rankable, and "
              f"{plural(left.input_interactions, 'input item')} of the users'{users}")
        check_parts(args, split, name, "test")  # nothing left to score: said, not NaN
    return split


def cmd_diagnose(args) -> int:
    from awe_tf.diagnostics import diagnose
    from awe_tf.models.saving import run_directory, saved_config
    from awe_tf.optional import require

    run = Path(args.run)
    check_data_flags(args)
    earlier = run_directory(run)  # the run (None: a model saved outside one); a missing path stops here
    if args.plot:  # checked before any work, as the run's outputs are
        if Path(args.plot).suffix.lower() not in PLOT_FORMATS:
            raise UsageError(f"--plot {args.plot}: name a {', '.join(PLOT_FORMATS[:-1])} or {PLOT_FORMATS[-1]} "
                             "file (the format is the extension's)")
        require("matplotlib", "--plot")
        writable_directory(Path(args.plot).resolve().parent, "--plot")
    output = output_file(args.output, run=earlier)
    split, name, recorded = load_data(args, earlier)  # the run's own data, unless told otherwise
    spare_data_files(output, args)
    saved = saved_config(run)
    same_data(saved["n_features"], saved["n_labels"], saved.get("label_names"), split, name, run, args, earlier)
    check_not_trained_on(earlier, split, name, recorded)
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
    if "margin_in_linear_terms" in report:  # not for the vote (additive) nor a closed form (nothing trained)
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
        print(f"report: {output}")
    return 0


def cmd_export(args) -> int:
    from awe_tf import runs, serving
    from awe_tf.models import AWEModel
    from awe_tf.models.saving import run_directory
    from awe_tf.serving.exporter import check_target

    check_data_flags(args)
    run = run_directory(args.model)  # a missing or empty model path stops here, before BASE is made
    flavours = serving.FLAVOURS if args.flavour == "both" else (args.flavour,)
    names = {flavour: args.name if len(flavours) == 1 or flavour == "scann" else f"{args.name}-{flavour}"
             for flavour in flavours}
    for name in names.values():  # a run's model/ folder is the run's: a later train would refuse it
        refuse_run_part(Path(args.base) / name, run, "the export", "give another BASE or --name")
    writable_directory(Path(args.base), "BASE")
    model = AWEModel.load_model(args.model)
    note_unpublished(run)
    queries = split = recorded = None
    recall = None  # what recall is measured on, said once every target is checked (a refusal comes first)
    if args.dataset or args.train:
        split, name, _ = load_data(args)
    else:  # a run's model: its data, as evaluate takes it; recall is not worth refusing for
        try:
            if runs.read_metrics(run) is not None:
                split, name, recorded = load_data(args, run)
        except (ValueError, FileNotFoundError) as error:  # UsageError and RunError among them
            recall = f"recall measured on random rows: the run's data cannot be read ({error})"
    if split is not None:
        recall = f"recall measured on the test part of {name}" + (f" (what {recorded.source} records)" if recorded
                                                                   else "")
        same_data(model.n_features, model.n_labels, model.label_names, split, name, args.model, args, run)
        queries = split.test.X[: args.recall_queries]  # raw rows, as clients will send them
    data = data_record(args, split, name) if split is not None else None  # evaluate --served reads it back
    annotation = split is not None and model.data_task != "recommendation"
    feature_names = split.train.feature_names if annotation else None  # features.json, for clients
    for flavour, name in names.items():  # every target checked before the first is written
        check_target(model, args.base, name, flavour, args.version, args.keep, args.new_ids, feature_names)
    if recall:
        print(recall)
    for flavour, name in names.items():
        serving.export(model, args.base, name, version=args.version, flavour=flavour, keep=args.keep,
                       candidates=args.candidates, queries=queries, random_queries=args.recall_queries,
                       new_ids=args.new_ids, data=data, feature_names=feature_names)
    return 0


def cmd_inspect(args) -> int:
    from awe_tf.serving import custom_ops, layout, report

    path = layout.resolve(args.path)
    print(report(path))
    return 1 if args.require_stock and custom_ops(path) else 0


def cmd_tune(args) -> int:
    from awe_tf.affinities import REGISTRY, term_settings
    from awe_tf.tuning import check_searchable, make_tuner, search_name
    from awe_tf.tuning.spaces import space, unsearched_note

    try:  # before the data is read
        space(args.affinity.strip())
    except ValueError as error:
        raise UsageError(f"--affinity {args.affinity!r}: {error}") from None
    family, fixed = term_settings(args.affinity)
    known = REGISTRY[family]
    if args.iterations is not None and not known.iterative:
        raise iterations_refused()
    model_config, train_config = configs_of(args)  # every trial's fixed settings; the affinity is searched
    check_searchable(args.affinity.strip(), model_config, train_config)
    if args.oracle == "hyperband" and args.trials is not None:
        print("note: hyperband sets its own number of trials from --epochs; --trials is for random and bayesian")
    trials = args.trials or 10
    split, name, _ = load_data(args)
    check_labels(args, split, name)
    print(f"data: {split.train!r}")
    monitor = monitor_of(args, split)
    check_monitor_fits(args, monitor, split.train.n_labels)
    # the search held against another command searching it, which would train its trials twice over: a lock beside
    # its folder, not in it (--restart removes the folder); other searches in --output go on
    searched = search_name(split.train, args.affinity, args.oracle)
    hold_directory(writable_directory(Path(args.output), "--output"), "--output", f".{searched}.lock",
                   held=f" (search {searched})")
    earlier = Path(args.output) / searched
    discarded = args.restart and earlier.exists()
    tuner = make_tuner(args.oracle, split.train, args.affinity, directory=args.output, max_trials=trials,
                       max_epochs=args.epochs, seed=args.seed, iterations=args.iterations or 1, overwrite=args.restart,
                       model_config=model_config, train_config=dataclasses.replace(train_config, monitor=monitor))
    if discarded:
        print(f"--restart: discarded the earlier search in {earlier}")
    print(f"searching {args.affinity} on {name} with {args.oracle} ({tuner.project_dir}); objective: validation "
          f"{monitor} on the protocol's validation carve-out of the training part")
    note = unsearched_note(known, fixed)
    if note:
        print(note)
    done = len(tuner.oracle.trials)
    if args.oracle != "hyperband" and done >= trials:
        finished = sum(trial.status == "COMPLETED" for trial in tuner.oracle.trials.values())
        cut = sum(trial.status == "RUNNING" for trial in tuner.oracle.trials.values())  # KerasTuner gives them again
        print(f"the search has {done} trials already ({finished} finished), --trials {trials}: none to add" +
              (f"; {plural(cut, 'trial')} cut short {'goes' if cut == 1 else 'go'} on" if cut else "") +
              " (a larger --trials adds trials)")
    tuner.search()
    best = tuner.best(data_flags=flags_of_data(args),  # --import as given here, runnable from any folder
                      imports=[import_anywhere(module) for module in args.imports] or None)
    print(f"best validation {monitor}: {best['score']:.4f} after {best['trials']} trials, by trial {best['trial_id']} "
          f"(folder {tuner.project_dir}/trial_{best['trial_id']}; KerasTuner's 'Trial #' lines count the trials "
          "from 1, these ids from 0)")
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
    out = reproduce_output(args)
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

    def serving(task, index, address):
        print(f"serving as {task} {index} of a parameter-server cluster (TF_CONFIG), at {address}; stop with Ctrl-C",
              flush=True)

    try:
        run_cluster_task(serving)
    except KeyboardInterrupt as interrupt:  # ended here, whatever printing does: collecting TensorFlow's server could
        terminated = isinstance(interrupt, Terminated)  # wait for ever
        try:
            print("terminated (SIGTERM)" if terminated else "interrupted", file=sys.stderr, flush=True)
            sys.stdout.flush()
        finally:
            os._exit(143 if terminated else 130)
    return 0


def _once(values) -> list:
    """``values`` with repeats dropped, in their order (a repeated setting would be averaged as a seed)."""
    return list(dict.fromkeys(values))
