"""awe-tf at the sizes the paper was invented for, on one machine: a synthetic recommendation set
of up to a million items and users (``benchmarks/synthetic.py``), trained for a fixed number of
epochs by

* WSABIE with the native engine (C, every core),
* WSABIE with the graph engine (the TensorFlow step),
* AWE linear sigmoid (eq. 6, alpha 1, beta 0.25) with the native engine,
* LightFM's WARP (``--lightfm-python``, a Python with lightfm 1.17; see warp_throughput.py),
* on request (``--methods ... "parameter-server WSABIE"``), WSABIE under parameter-server training:
  2 workers and 2 parameter servers started in the benchmark's process on loopback, U and V
  sharded across the servers, for ``--ps-epochs`` (default 1); it reports pairs/s per worker,

each in its own process, with every core. It prints pairs/s, seconds per epoch (the first epoch
apart: it includes tracing for the graph engine), peak resident memory against the bytes of U,
V, the optimiser state and the input CSR, and held-out P@10 (the protocol's 5 items per user,
on ``--eval-users`` users) after each epoch against popularity, with ratios against LightFM and
each method's training time to LightFM's final P@10.

awe-tf trains with its defaults (Adagrad, learning rate, initial scale, margin, max-norm) apart
from d, K = 10 (LightFM's ``max_sampled``) and the graph engine's batches of 4,096 pairs
(``pairs_per_batch``; 1,024 by default; the native engine takes pairs one at a time); LightFM
with its own (learning rate 0.05).
``--margin`` and ``--learning-rate`` change awe-tf's for every method, and ``--linear-sigmoid``
the linear sigmoid row's alpha and beta, to see how a setting moves the methods against each other.

    python benchmarks/scale.py                                # 100,000 items and users: minutes
    python benchmarks/scale.py --items 1000000 --users 1000000 --lightfm-python /tmp/lfm/bin/python

Targets (ratios in one run on this project's 2-core machines): native WSABIE >= 3x LightFM's
pairs/s at 1M items with LightFM's P@10 or better; native AWE linear sigmoid >= 1.5x with P@10
>= native WSABIE's; peak memory <= 2x (U + V + optimiser state + input CSR); graph engine >= 0.5x
LightFM's pairs/s on ml-100k (``warp_throughput.py --engine graph``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import awe_tf  # noqa: E402,F401  (Keras 2 as tf.keras, before TensorFlow loads)

PARAMETER_SERVER = "parameter-server WSABIE"  # see the module docstring
LINEAR_SIGMOID = "alpha=1,beta=0.25"  # eq. 6 at the paper's best beta (Table 3); --linear-sigmoid changes it
WORKERS, SERVERS = 2, 2
METHODS = {
    "native WSABIE": ("native", None),
    "graph WSABIE": ("graph", None),
    "native AWE linear sigmoid": ("native", "linear-sigmoid:" + LINEAR_SIGMOID),
    PARAMETER_SERVER: ("graph", None),
}


def _data(args):
    from synthetic import recommendation_set

    from awe_tf.data.dataset import labelled_rows

    split = recommendation_set(args.users, args.items, per_user=args.per_user, seed=args.seed)
    users = labelled_rows(split.test.Y)
    sample = np.sort(np.random.default_rng(args.seed).choice(users, min(args.eval_users, users.size), replace=False))
    return split, sample


def _training_and_sample(args):
    """The training part and the test part's sampled users: all that training and scoring read
    (the rest of the test part is let go, as a user scoring a sample would)."""
    from awe_tf.data import Split

    split, sample = _data(args)
    test = Split(train=split.train, test=split.test.rows(sample), exclude=split.exclude[sample],
                 candidates=split.candidates)
    return split.train, test


def configs(args, method: str, epochs: int, bucketing: bool = True):
    """``(ModelConfig, TrainConfig)`` of ``method``: d, K = 10 as LightFM's ``max_sampled`` and
    batches of 4,096 pairs, awe-tf's defaults otherwise (the same for every method and for
    ``memory_phases.py``)."""
    from awe_tf.training import ModelConfig, TrainConfig

    engine, affinity = METHODS[method]
    if affinity is not None and affinity.startswith("linear-sigmoid:"):
        affinity = "linear-sigmoid:" + args.linear_sigmoid
    return (ModelConfig(dimension=args.dimension, num_negatives=10, affinity=affinity, seed=args.seed,
                        margin=args.margin),
            TrainConfig(epochs=epochs, verbose=0, seed=args.seed, engine=engine, threads=args.threads,
                        pairs_per_batch=4096, bucketing=bucketing, learning_rate=args.learning_rate))


def held_out_precision(model, test) -> float:
    """P@10 of ``model`` on ``test`` (the sampled users' split of :func:`_training_and_sample`)."""
    from awe_tf.evaluation import evaluate_model

    return evaluate_model(model.score, test, ks=(10,))["metrics"]["precision@10"]


def model_bytes(model, X) -> dict:
    """What peak memory is measured against, by part: U + V, the optimiser's state (Adagrad's, one
    accumulator the size of each table) and the input CSR ``X``."""
    tables = 4 * model.dimension * (model.U.table.shape[0] + model.V.table.shape[0])
    return {"U + V": tables, "optimiser state": tables,
            "input CSR": int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)}


def worker(args) -> dict:
    """One awe-tf method, in this process: train, time, measure memory and P@10."""
    import tensorflow as tf
    from _memory import current_rss, peak_rss
    from _timing import EpochTimes

    from awe_tf.baselines import Popularity
    from awe_tf.training import fit

    (tf.ones([8, 8]) @ tf.ones([8, 8])).numpy()  # TensorFlow's runtime started: its memory is not the model's
    runtime_rss = current_rss()
    train, test = _training_and_sample(args)
    timer = EpochTimes()

    strategy, epochs, bucketing = None, args.epochs, True
    data_rss = current_rss()  # the runtime and the data set, before training makes anything
    history = []

    class Precision(tf.keras.callbacks.Callback):  # after the timer's epoch end: not in the epoch's time
        def on_epoch_end(self, epoch, logs=None):
            history.append(held_out_precision(self.model, test))

    callbacks = [timer, Precision()]
    if args.worker == PARAMETER_SERVER:
        from awe_tf.distribute import shards
        from awe_tf.training.strategies import local_cluster, parameter_server_strategy

        # shards of at least 64 KB: U and V are cut in two from a few hundred rows (tests' small sets) up
        strategy = parameter_server_strategy(local_cluster(WORKERS, SERVERS), min_shard_bytes=1 << 16)
        epochs, bucketing = args.ps_epochs, False  # workers build their input from tensors alone
        callbacks = [timer]  # P@10 once, after training
    model_config, train_config = configs(args, args.worker, epochs, bucketing)
    result = fit(train, model_config, train_config, callbacks=callbacks, strategy=strategy)
    cluster = {} if strategy is None else {"cluster": {
        "workers": WORKERS, "parameter servers": SERVERS, "U shards": shards(result.model.U.table),
        "V shards": shards(result.model.V.table)}}
    times = timer.seconds
    if args.worker == PARAMETER_SERVER:
        history = [held_out_precision(result.model, test)]
    popularity = held_out_precision(Popularity().fit(train), test)
    pairs = train.Y.nnz
    return {
        **cluster,
        "pairs": int(pairs), "epoch_seconds": times,
        "pairs_per_second": pairs * len(times) / sum(times),
        "steady_pairs_per_second": pairs * (len(times) - 1) / sum(times[1:]) if len(times) > 1 else None,
        "precision@10": history[-1], "history": history, "popularity_precision@10": popularity,
        "peak_rss_bytes": peak_rss(), "rss_after_imports_bytes": runtime_rss, "rss_with_data_bytes": data_rss,
        "model_bytes": model_bytes(result.model, train.X),
    }


def lightfm(args, python: str) -> dict:
    split, sample = _data(args)
    import scipy.sparse as sp

    train = split.train.Y.tocsr()
    users = np.asarray(split.test.row_ids)  # the test part's rows are the users with held-out items
    held = split.test.Y.tocoo()
    val = sp.csr_matrix((held.data, (users[held.row], held.col)), shape=train.shape)  # by user, as LightFM's rows
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "split.npz"
        np.savez(path, shape=np.array(train.shape), train_data=train.data, train_indices=train.indices,
                 train_indptr=train.indptr, val_data=val.data, val_indices=val.indices, val_indptr=val.indptr,
                 candidates=split.candidates, eval_users=users[sample], dimension=np.array(args.dimension))
        began = time.perf_counter()
        proc = subprocess.run([python, str(Path(__file__).with_name("_lightfm_worker.py")), str(path), str(args.epochs),
                               str(threads(args)), "1.0", str(args.seed)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"LightFM run failed; is --lightfm-python a Python with lightfm 1.17?\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    times = out["epoch_seconds"]
    return {"pairs": int(train.nnz), "epoch_seconds": times, "pairs_per_second": out["pairs_per_second"],
            "steady_pairs_per_second": train.nnz * (len(times) - 1) / sum(times[1:]) if len(times) > 1 else None,
            "precision@10": out["history"][-1], "history": out["history"], "peak_rss_bytes": out["peak_rss_bytes"],
            "wall_seconds": time.perf_counter() - began}


def _gb(n) -> str:
    return f"{n / 2**30:.2f}"


def time_to(history, epoch_seconds, target: float) -> float | None:
    """Training seconds until the first epoch whose P@10 is at least ``target`` (None: never)."""
    for precision, seconds in zip(history, np.cumsum(epoch_seconds), strict=True):
        if precision >= target:
            return float(seconds)
    return None


def _figure(value, spec: str = ".2f") -> str:
    """A table's figure, or "-" where a method has none (LightFM's memory against a model of its own)."""
    return "-" if value is None else format(value, spec)


def report(args, results: dict) -> str:
    lines = [f"synthetic set: {args.users:,} users, {args.items:,} items, about {args.per_user} per user; d = "
             f"{args.dimension}, {args.epochs} epochs, threads {threads(args)}; P@10 on "
             f"{args.eval_users:,} users"]
    from awe_tf.config import ModelConfig, TrainConfig

    changed = [f"{name} {value}" for name, value, default in (
        ("margin", args.margin, ModelConfig.margin), ("learning rate", args.learning_rate, TrainConfig.learning_rate),
        ("linear sigmoid", args.linear_sigmoid, LINEAR_SIGMOID)) if value != default]
    lines += ([f"awe-tf settings changed: {', '.join(changed)}"] if changed else []) + [""]
    reference = results.get("LightFM WARP")
    head = (f"{'method':<28}{'pairs/s':>12}{'vs LightFM':>11}{'s/epoch':>9}{'first':>8}{'P@10':>8}"
            f"{'popularity':>11}{'peak GB':>9}{'model GB':>10}{'peak/model':>11}{'(peak-TF)/model':>17}"
            f"{'(peak-TF-data)/model':>22}")
    lines += [head, "-" * len(head)]
    for name, r in results.items():
        rate = r["steady_pairs_per_second"] or r["pairs_per_second"]
        ratio = f"{rate / (reference['steady_pairs_per_second'] or reference['pairs_per_second']):.2f}" \
            if reference else "-"
        model = sum(r["model_bytes"].values()) if "model_bytes" in r else None
        above, training = (_figure((r["peak_rss_bytes"] - r[before]) / model if model else None)
                           for before in ("rss_after_imports_bytes", "rss_with_data_bytes"))
        times = r["epoch_seconds"]
        later = np.median(times[1:]) if len(times) > 1 else times[0]
        lines.append(f"{name:<28}{rate:>12,.0f}{ratio:>11}{later:>9.2f}{times[0]:>8.2f}{r['precision@10']:>8.4f}"
                     f"{_figure(r.get('popularity_precision@10'), '.4f'):>11}{_gb(r['peak_rss_bytes']):>9}"
                     f"{_gb(model) if model else '-':>10}"
                     f"{_figure(r['peak_rss_bytes'] / model if model else None):>11}"
                     f"{above:>17}{training:>22}")
    if reference is None:
        lines.append("(LightFM left out: give --lightfm-python PY, a Python with lightfm 1.17, for the ratios)")
    target = reference["precision@10"] if reference else None
    lines += ["", "P@10 after each epoch (training seconds so far)"
              + (f"; time to LightFM's final P@10 ({target:.4f})" if target is not None else "") + ":"]
    for name, r in results.items():
        if len(r.get("history", ())) == len(r["epoch_seconds"]):
            seconds = np.cumsum(r["epoch_seconds"])
            reached = time_to(r["history"], r["epoch_seconds"], target) if target is not None else None
            lines.append(f"  {name:<28}" + ", ".join(f"{p:.4f} ({t:.1f} s)" for p, t in zip(r["history"], seconds,
                                                                                          strict=True))
                         + ("" if target is None else f"; reached in {reached:.1f} s" if reached is not None
                            else "; not reached"))
    for name, r in results.items():
        if "cluster" in r:
            cluster = r["cluster"]
            rate = r["steady_pairs_per_second"] or r["pairs_per_second"]
            per_worker = rate / cluster["workers"]
            lines += ["", f"{name}: {cluster['workers']} workers and {cluster['parameter servers']} parameter servers "
                          f"in one process on loopback, U in {cluster['U shards']} shards and V in "
                          f"{cluster['V shards']}: "
                          f"{per_worker:,.0f} pairs/s per worker ({len(r['epoch_seconds'])} epoch(s); the first "
                          "epoch's tracing is included when there is only one)"]
    started = min((r["rss_after_imports_bytes"] for r in results.values() if "rss_after_imports_bytes" in r), default=0)
    data = min((r["rss_with_data_bytes"] - r["rss_after_imports_bytes"] for r in results.values()
                if "rss_with_data_bytes" in r), default=0)
    lines += ["", "pairs/s: after the first epoch where there are several; peak: the process's peak resident memory "
              f"(TensorFlow's own, about {_gb(started)} GB once started, included; peak-TF leaves that out, and "
              f"peak-TF-data the benchmark's data set as well, about {_gb(data)} GB as kept: the training part and "
              "the scored users' test rows); model: U + V + optimiser state + input CSR (the training inputs as the "
              "data set holds them; the engine's transformed copy is not counted)"]
    return "\n".join(lines)


def threads(args) -> int:
    """The threads every method gets: ``--threads``, or the cores this process may use (as the
    native engine counts them, so that LightFM gets as many)."""
    from awe_tf.native import threads_for

    return threads_for(args.threads)


def check_arguments(parser, args) -> None:
    """Refuse, through ``parser`` (a usage error, before any work), settings the runs cannot take:
    the synthetic set's sizes, counts below 1, awe-tf's settings (as its configs check them) and a
    LightFM Python that cannot run LightFM."""
    from _peers import check_lightfm
    from synthetic import check_sizes

    try:
        check_sizes(args.users, args.items, args.per_user)
        for name in ("epochs", "dimension", "eval_users", "ps_epochs"):
            if getattr(args, name, 1) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
        if args.threads < 0:
            raise ValueError(f"--threads must be 0 (every core) or more, got {args.threads}")
        for method in getattr(args, "methods", None) or [args.method]:
            configs(args, method, args.epochs)
    except ValueError as error:
        parser.error(str(error))
    python = getattr(args, "lightfm_python", None)
    problem = check_lightfm(python) if python else None
    if problem:
        parser.error(problem)


def set_arguments(parser, epochs: int) -> None:
    """The options of the synthetic set and of training that this script and ``memory_phases.py``
    share (``epochs``: the default number of epochs)."""
    from awe_tf.config import ModelConfig, TrainConfig

    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--per-user", type=int, default=20, help="item draws per user (repeats merge)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    parser.add_argument("--eval-users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    # awe-tf's defaults unless asked: the same for every awe-tf method, to see how a setting moves them
    parser.add_argument("--margin", type=float, default=ModelConfig.margin, help="WARP's margin, every awe-tf method")
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate,
                        help="every awe-tf method's")
    parser.add_argument("--linear-sigmoid", default=LINEAR_SIGMOID,
                        help="the linear sigmoid row's settings (default: the paper's best Table 3 row)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    set_arguments(parser, epochs=3)
    parser.add_argument("--methods", nargs="+", default=[m for m in METHODS if m != PARAMETER_SERVER],
                        choices=list(METHODS), help=f"which awe-tf methods ({PARAMETER_SERVER!r} only when named)")
    parser.add_argument("--ps-epochs", type=int, default=1, help=f"epochs of {PARAMETER_SERVER!r}")
    parser.add_argument("--lightfm-python", help="a Python with lightfm 1.17 (none: LightFM is left out)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    results = {}
    if args.lightfm_python:
        print("LightFM WARP ...", flush=True)
        results["LightFM WARP"] = lightfm(args, args.lightfm_python)
    for name in args.methods:
        print(f"{name} ...", flush=True)
        command = [sys.executable, __file__, "--worker", name, *[a for a in (argv or sys.argv[1:])
                                                                if a != "--worker"]]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    table = report(args, results)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
