"""The ``awe-tf`` command: a thin layer over the library.

    awe-tf datasets
    awe-tf train [--dataset NAME | --train FILE [--test FILE] [--labels XML] [--format F]] [options]
    awe-tf evaluate MODEL_DIR [--dataset NAME | --train FILE ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up noise out of the output
# TensorFlow's Python warnings too: a command that builds many models (reproduce, tune) otherwise
# prints "triggered tf.function retracing" for the scoring functions every model traces once.
logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _data_args(parser):
    group = parser.add_argument_group("data (a named data set, or files)")
    group.add_argument("--dataset", help="a named data set (see `awe-tf datasets`); default corel5k")
    group.add_argument("--train", help="training file (or the whole data set, for protocol splits)")
    group.add_argument("--test", help="test file, for data that comes with its own split")
    group.add_argument("--labels", help="Mulan label list (.xml)")
    group.add_argument("--format", choices=["mulan", "movielens", "xmlrepo", "interactions"])


def _load(args):
    from awe_tf.data import DEFAULT_DATASET, load_dataset, load_split

    if args.train:
        if args.dataset:
            raise SystemExit("error: give either --dataset or --train, not both")
        return load_split(args.train, args.test, args.labels, args.format), Path(args.train).stem
    if args.test or args.labels:
        raise SystemExit("error: --test and --labels go with --train")
    name = args.dataset or DEFAULT_DATASET
    return load_dataset(name), name


def _print_table(report: dict) -> None:
    from awe_tf.evaluation import format_table

    rows = {"model": report["metrics"], **report.get("baselines", {})}
    print(format_table(rows))
    print(f"test examples: {report['n_test']} (left out, no positive label: {report['n_excluded']})")


def cmd_datasets(args) -> int:
    from awe_tf.data import list_datasets

    for entry in list_datasets():
        where = entry["path"] or "not available (set AWE_DATA_DIR)"
        tag = " [bundled]" if entry["bundled"] else ""
        print(f"{entry['name']:<10} {entry['format']:<10} {entry['split']:<24} {where}{tag}")
    return 0


def cmd_train(args) -> int:
    from awe_tf.training.strategies import make_strategy, split_cpu

    devices = split_cpu(args.cpu_replicas) if args.cpu_replicas else None
    strategy = make_strategy(args.strategy, tpu=args.tpu, devices=devices, min_shard_bytes=args.shard_bytes)
    if args.strategy != "default":
        print(f"strategy: {type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s)")
    with strategy.scope():
        return _train(args)


def _monitor(args, split) -> str:
    """The validation metric to watch: ``--monitor``, else P@10 for recommendation, P@1 otherwise."""
    from awe_tf.data import RECOMMENDATION

    return args.monitor or ("precision@10" if split.train.task == RECOMMENDATION else "precision@1")


def _train(args) -> int:
    import dataclasses

    from awe_tf.evaluation import baseline_scores, evaluate_model
    from awe_tf.training import ModelConfig, TrainConfig
    from awe_tf.training.selection import choose_epochs, is_iterative, refit

    split, name = _load(args)
    out = Path(args.output)
    if args.restart:
        for part in ("validation", "final"):
            shutil.rmtree(out / part, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    monitor = _monitor(args, split)
    model_config = ModelConfig(
        dimension=args.dimension, margin=args.margin, num_negatives=args.negatives, loss=args.loss,
        normalisation=args.normalisation, max_norm=args.max_norm, seed=args.seed, input_bias=args.input_bias,
        tpu_embedding=args.tpu_embedding,
        affinity=args.affinity,
    )
    iterative = is_iterative(model_config)
    if args.iterations and not iterative:
        raise ValueError("--iterations is for affinities built from the training set (knn, rbf, latent-rbf, "
                         "hybrid-rbf)")
    iterations = args.iterations or 3
    train_config = TrainConfig(
        epochs=args.epochs, learning_rate=args.learning_rate, optimizer=args.optimizer,
        pairs_per_batch=args.pairs_per_batch, patience=args.patience, monitor=monitor,
        seed=args.seed, verbose=args.verbose, jit_compile=args.jit_compile, engine=args.engine,
        threads=args.threads,
        # XLA and parameter-server workers take one static batch shape
        bucketing=not (args.jit_compile or args.strategy in ("parameter-server", "tpu")),
    )
    print(f"data: {split.train!r}\n      test {split.test.n_examples} examples")
    epochs = [args.epochs] * (iterations + 1 if iterative else 1)
    validation_report = None
    began = time.perf_counter()
    if args.validate:
        print(f"[1/2] choosing the number of epochs on the protocol's validation split, watching {monitor}")
        epochs, chosen = choose_epochs(split.train, model_config, train_config, iterations, out / "validation")
        validation_report = {"best_epochs": epochs, "steps": [c.history for c in chosen]}
        for step, (c, e) in enumerate(zip(chosen, epochs, strict=True)):
            label = f"step {step}: " if iterative else ""
            print(f"      {label}best epoch {e} (validation {monitor} = "
                  f"{c.history.get('val_' + monitor, [float('nan')] * e)[e - 1]:.4f})")
        print(f"[2/2] refitting on the full training part for {'+'.join(map(str, epochs))} epochs")
    final_config = dataclasses.replace(train_config, epochs=epochs[0], patience=0)
    result = refit(split.train, model_config, train_config, epochs, iterations, out / "final")
    train_seconds = time.perf_counter() - began
    model = result.model
    from awe_tf.distribute import shards

    if shards(model.U.table) > 1 or shards(model.V.table) > 1:
        print(f"tables sharded across parameter servers: U in {shards(model.U.table)} shards, "
              f"V in {shards(model.V.table)}")
    from awe_tf.training.callbacks import worker_directory

    if worker_directory():  # a worker other than the chief: its outputs stay out of the chief's way
        out = out / worker_directory()
        out.mkdir(parents=True, exist_ok=True)
    model.save_model(out / "model")
    print("scoring the test part with the model" + ("" if args.no_baselines else " and the baselines"))
    report = evaluate_model(model.score, split)
    report["baselines"] = {} if args.no_baselines else baseline_scores(split, model, rank=args.dimension)
    report.update(
        {
            "dataset": name,
            "train_seconds": train_seconds,
            "final_fit_seconds": result.train_seconds,
            "pairs_per_second": result.pairs_per_second,
            "epochs": epochs,
            "affinity": args.affinity or "constant",
            "model_config": model_config.to_dict(),
            "train_config": final_config.to_dict(),
            "validation": validation_report,
        }
    )
    (out / "metrics.json").write_text(json.dumps(report, indent=1, default=str))
    print()
    _print_table(report)
    print(f"trained in {train_seconds:.1f}s; model: {out / 'model'}; metrics: {out / 'metrics.json'}")
    return 0


def cmd_evaluate(args) -> int:
    from awe_tf.evaluation import evaluate_model
    from awe_tf.models import AWEModel

    model = AWEModel.load_model(args.model)
    split, name = _load(args)
    if split.train.n_features != model.n_features or split.train.n_labels != model.n_labels:
        raise SystemExit(
            f"error: the model has {model.n_features} features / {model.n_labels} labels but "
            f"{name} has {split.train.n_features} / {split.train.n_labels}"
        )
    report = evaluate_model(model.score, split)
    report["dataset"] = name
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))
    _print_table(report)
    return 0


def cmd_export(args) -> int:
    from awe_tf import serving
    from awe_tf.models import AWEModel

    model = AWEModel.load_model(args.model)
    queries = None
    if args.dataset or args.train:
        split, name = _load(args)
        if split.train.n_features != model.n_features:
            raise SystemExit(f"error: the model has {model.n_features} features but {name} has "
                             f"{split.train.n_features}")
        queries = split.test.X[: args.recall_queries]
    flavours = serving.FLAVOURS if args.flavour == "both" else (args.flavour,)
    for flavour in flavours:
        name = args.name if len(flavours) == 1 or flavour == "scann" else f"{args.name}-{flavour}"
        serving.export(model, args.base, name, version=args.version, flavour=flavour, keep=args.keep,
                       candidates=args.candidates, queries=queries)
    return 0


def cmd_inspect(args) -> int:
    from awe_tf.serving import custom_ops, layout, report

    path = layout.resolve(args.path)
    print(report(path))
    return 1 if args.require_stock and custom_ops(path) else 0


def cmd_tune(args) -> int:
    from awe_tf.training import ModelConfig, TrainConfig
    from awe_tf.tuning import make_tuner

    split, name = _load(args)
    monitor = _monitor(args, split)
    tuner = make_tuner(args.oracle, split.train, args.affinity, directory=args.output, max_trials=args.trials,
                       max_epochs=args.epochs, seed=args.seed, iterations=args.iterations,
                       model_config=ModelConfig(seed=args.seed),
                       train_config=TrainConfig(epochs=args.epochs, monitor=monitor, seed=args.seed))
    print(f"searching {args.affinity} on {name} with {args.oracle} ({tuner.project_dir}); objective: validation "
          f"{monitor} on the protocol's validation carve-out of the training part")
    tuner.search()
    best = tuner.best()
    print(f"best validation {monitor}: {best['score']:.4f} after {best['trials']} trials")
    data = ["--dataset", args.dataset] if args.dataset else []
    print("train it with:\n  awe-tf train " + " ".join(data + best["flags"]))
    return 0


def cmd_reproduce(args) -> int:
    import time as clock

    from awe_tf import reproduction

    out = Path(args.output or f"runs/reproduce-{args.table}")
    began = clock.perf_counter()
    seeds = args.seeds or [args.seed]
    if args.table == "annotation":
        settings = {"datasets": args.datasets or list(reproduction.ANNOTATION), "dimension": args.dimension or 100,
                    "epochs": args.epochs, "iterations": args.iterations, "k": 20}
    else:
        settings = {"dimension": args.dimension or 64, "epochs": args.epochs,
                    "betas": args.betas or list(reproduction.BETAS), "top_ks": args.ks or list(reproduction.TOP_KS)}
    settings.update(engine=args.engine, threads=args.threads)
    rows, per_seed = reproduction.over_seeds(args.table, seeds, **settings)
    settings["seeds"] = seeds
    settings["seconds"] = round(clock.perf_counter() - began, 1)
    written = reproduction.write_report(args.table, rows, out, settings, per_seed)
    print(written[1].read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def cmd_cluster_task(args) -> int:
    from awe_tf.training.strategies import run_cluster_task

    print("serving as a parameter-server-training task (TF_CONFIG); stop with Ctrl-C", flush=True)
    run_cluster_task()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="awe-tf", description="Affinity Weighted Embedding on TensorFlow")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("datasets", help="list the named data sets").set_defaults(func=cmd_datasets)

    train = sub.add_parser("train", help="train a model, evaluate it and the baselines")
    _data_args(train)
    train.add_argument("--output", "-o", default="runs/latest",
                       help="output directory (default runs/latest); running the same command again "
                            "resumes an interrupted run from its last checkpoint")
    train.add_argument("--restart", action="store_true",
                       help="discard the checkpoints in the output directory and train from scratch")
    model = train.add_argument_group("model")
    model.add_argument("--dimension", "-d", type=int, default=64)
    model.add_argument("--margin", type=float, default=1.0)
    model.add_argument("--negatives", type=int, default=64, help="labels sampled per example per step")
    model.add_argument("--loss", choices=["warp", "warp-all"], default="warp")
    model.add_argument("--normalisation", choices=["l2", "l1", "none"], default="l2")
    model.add_argument("--max-norm", type=float, default=3.0)
    model.add_argument("--affinity", help="the affinity G as a spec, e.g. knn:k=20 or constant:1+knn:k=20 "
                       "(default: constant, i.e. WSABIE)")
    model.add_argument("--iterations", type=int, help="times G is rebuilt from the model (knn; default 3)")
    model.add_argument("--no-bias", dest="input_bias", action="store_false",
                       help="no always-on input feature (no learnt per-label bias)")
    fitting = train.add_argument_group("training")
    fitting.add_argument("--epochs", type=int, default=10)
    fitting.add_argument("--learning-rate", "--lr", type=float, default=0.05)
    fitting.add_argument("--optimizer", choices=["adagrad", "sgd"], default="adagrad")
    fitting.add_argument("--pairs-per-batch", type=int, default=1024)
    fitting.add_argument("--patience", type=int, default=3)
    fitting.add_argument("--monitor", help="validation metric for early stopping (default by task)")
    fitting.add_argument("--no-validate", dest="validate", action="store_false",
                         help="skip choosing the epoch count on the validation split")
    fitting.add_argument("--no-baselines", action="store_true")
    fitting.add_argument("--seed", type=int, default=0)
    fitting.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2])
    fitting.add_argument("--engine", choices=["graph", "native"], default="graph",
                         help="graph: the TensorFlow step (every model, strategy and device); native: WARP in C "
                              "on this machine's cores, for WSABIE (the constant affinity) only, several times faster "
                              "(with --iterations: step 0, the linear model)")
    fitting.add_argument("--threads", type=int, default=0,
                         help="threads of the native engine (default: every core; with 1 runs are repeatable)")
    scale = train.add_argument_group("distribution")
    scale.add_argument("--strategy", choices=["default", "auto", "mirrored", "multiworker", "parameter-server", "tpu"],
                       default="default", help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    scale.add_argument("--tpu", help="TPU address for --strategy tpu (default: Colab's / the environment's)")
    scale.add_argument("--cpu-replicas", type=int,
                       help="split the CPU into this many devices (with --strategy mirrored, for trying it out)")
    scale.add_argument("--shard-bytes", type=int, default=256 << 10,
                       help="parameter-server: the smallest shard the tables U and V are cut into (default 256 KiB)")
    scale.add_argument("--jit-compile", action="store_true",
                       help="compile the training step with XLA (one static batch shape, as on TPU)")
    scale.add_argument("--tpu-embedding", action="store_true",
                       help="keep U and V in tfrs TPUEmbedding layers (on a TPU: its embedding engine; "
                            "elsewhere the same training as without)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="score a saved model on a data set's test part")
    evaluate.add_argument("model", help="the model directory written by `awe-tf train` (OUTPUT/model)")
    _data_args(evaluate)
    evaluate.add_argument("--output", help="write the metrics as JSON here")
    evaluate.set_defaults(func=cmd_evaluate)

    export = sub.add_parser("export", help="export a saved model for TF Serving (<base>/<name>/<version>/)")
    export.add_argument("model", help="the model directory written by `awe-tf train` (OUTPUT/model)")
    export.add_argument("base", help="the base directory TF Serving serves models from")
    export.add_argument("--name", default="awe", help="model name (default awe)")
    export.add_argument("--flavour", choices=["scann", "portable", "both"], default="both",
                        help="scann: ScaNN retrieval (needs ScaNN's ops); portable: stock ops only; both "
                             "(default): <name> is scann, <name>-portable portable")
    export.add_argument("--version", type=int, help="version number (default: newest + 1)")
    export.add_argument("--keep", type=int, help="keep only this many newest versions")
    export.add_argument("--candidates", type=int, default=100,
                        help="labels ScaNN fetches before exact re-ranking; also the largest k (default 100)")
    export.add_argument("--recall-queries", type=int, default=500,
                        help="test rows of the data set used to measure recall@10 (with --dataset/--train)")
    _data_args(export)
    export.set_defaults(func=cmd_export)

    tune = sub.add_parser("tune", help="search hyper-parameters with KerasTuner on the validation carve-out")
    _data_args(tune)
    tune.add_argument("--affinity", default="constant",
                      help="affinity family whose knobs are searched with the usual ones (constant, sigmoid, "
                           "linear-sigmoid, topk, lowrank, matrix, knn, rbf, latent-rbf, cluster)")
    tune.add_argument("--oracle", choices=["random", "bayesian", "hyperband"], default="random")
    tune.add_argument("--trials", type=int, default=10, help="trials (random, bayesian)")
    tune.add_argument("--epochs", type=int, default=10, help="epochs per trial (hyperband: the most)")
    tune.add_argument("--iterations", type=int, default=1, help="G rebuilds per trial for knn-type affinities")
    tune.add_argument("--monitor", help="validation metric to maximise (default by task)")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--output", "-o", default="runs/tuning",
                      help="search directory; running the same command again resumes the search")
    tune.set_defaults(func=cmd_tune)

    reproduce = sub.add_parser("reproduce", help="the paper's tables: annotation (Tables 1, 2) or recommendation "
                               "(Table 3)")
    reproduce.add_argument("table", choices=["annotation", "recommendation"])
    reproduce.add_argument("--output", "-o", help="default runs/reproduce-<table>")
    reproduce.add_argument("--datasets", nargs="+", help="annotation data sets (default cal500 corel5k emotions scene)")
    reproduce.add_argument("--dimension", "-d", type=int, help="default 100 (annotation), 64 (recommendation)")
    reproduce.add_argument("--epochs", type=int, default=30, help="the most epochs per model (early stopping)")
    reproduce.add_argument("--iterations", type=int, default=3, help="AWE k-NN: times G is rebuilt")
    reproduce.add_argument("--betas", nargs="+", type=float, help="linear sigmoid betas (default -1 -0.5 0 0.25 0.5)")
    reproduce.add_argument("--ks", nargs="+", type=int, help="top-k affinity k values (default 1 5 7 11)")
    reproduce.add_argument("--engine", choices=["graph", "native"], default="graph",
                           help="native: WSABIE (and AWE k-NN's linear step 0) train with the native engine")
    reproduce.add_argument("--threads", type=int, default=0,
                           help="threads of the native engine (default: every core; with 1 runs are repeatable)")
    reproduce.add_argument("--seed", type=int, default=0)
    reproduce.add_argument("--seeds", nargs="+", type=int,
                           help="run every model once per seed and report means ± standard deviations")
    reproduce.set_defaults(func=cmd_reproduce)

    task = sub.add_parser("cluster-task", help="run as a worker or parameter server for --strategy parameter-server "
                          "(reads TF_CONFIG; blocks)")
    task.set_defaults(func=cmd_cluster_task)

    inspect = sub.add_parser("inspect", help="list the ops an exported SavedModel needs, stock or custom")
    inspect.add_argument("path", help="a SavedModel (version) directory, or <base>/<name> for its newest version")
    inspect.add_argument("--require-stock", action="store_true", help="exit 1 if any op is not stock TensorFlow")
    inspect.set_defaults(func=cmd_inspect)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from awe_tf.data import DataFormatError

    try:
        return args.func(args)
    except (DataFormatError, FileNotFoundError, ValueError, RuntimeError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
