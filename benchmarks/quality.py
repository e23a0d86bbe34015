"""WSABIE and ``--affinity auto`` under the protocols of docs/protocols.md, one recipe for
every data set, mean of 3 seeds, beside k-NN in WSABIE's space and LightFM's WARP.

For each data set and seed it runs, as a user would, ``awe-tf train --dimension 100`` (WSABIE)
and ``awe-tf train --dimension 100 --affinity auto`` (validation-chosen epochs and affinity,
refit on the whole training part, test part scored once), and prints each metric's mean and
sample standard deviation over the seeds, the baselines of the WSABIE run (k-NN in its
embedding space and in input space), auto's change against WSABIE and against k-NN in WSABIE's
space with the standard deviation of that paired difference over seeds, and what auto chose.

With ``--lightfm-python PY`` (a Python with lightfm 1.17; see warp_throughput.py) it also
runs LightFM's WARP in the same run, per data set and seed, the same way
(``_lightfm_protocol.py``): awe-tf's dimension, most epochs, patience and monitored metric (the
recipe's and any of those flags given), LightFM's own other settings (learning rate 0.05, 10
samples), epochs chosen on the same carve-out, refit on the whole training part, the test part
ranked once and scored by awe-tf's metric code; one thread, so that its figures repeat (LightFM's
threads update without locks). With ``--from-json`` it runs LightFM for the data sets, seeds and
settings of the earlier run (its WSABIE runs' ``metrics.json``; the most epochs, which they do
not record, awe-tf's default) and adds its column (``--json``
writes them back).

    AWE_DATA_DIR=../shared/data python benchmarks/quality.py [--datasets emotions scene ...]
        [--seeds 3] [--lightfm-python PY] [--markdown results.md] [--json results.json]
        [--readme README.md] [any awe-tf train flags]
    python benchmarks/quality.py --from-json results.json --readme README.md   # from saved runs
    python benchmarks/quality.py --from-json results.json --lightfm-python PY --json results.json

Every data set gets the same flags: nothing here is tuned to one of them.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmarks' shared modules, however this is loaded

from _peers import check_lightfm  # noqa: E402

RECIPE = ["--dimension", "100"]
METHODS = {"WSABIE": [], "AWE auto": ["--affinity", "auto"]}
DATASETS = ["cal500", "corel5k", "emotions", "scene", "tmc2007", "ml-100k"]


def lightfm_settings(flags) -> argparse.Namespace:
    """What LightFM takes of the awe-tf train flags (the recipe's and the user's, the last given
    winning): ``dimension``, ``epochs``, ``patience``, ``monitor`` (None: the protocol's) and the
    inputs' ``normalisation``."""
    from awe_tf.config import ModelConfig, TrainConfig

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dimension", "-d", type=int, default=ModelConfig().dimension)
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--patience", type=int, default=TrainConfig().patience)
    parser.add_argument("--monitor")
    parser.add_argument("--normalisation", default=ModelConfig().normalisation)
    return parser.parse_known_args(flags)[0]


def saved_settings(report: dict) -> argparse.Namespace:
    """:func:`lightfm_settings` of a saved WSABIE run (its ``metrics.json``: the settings it asked
    for; the most epochs, which a run does not record, is awe-tf's default)."""
    from awe_tf.config import TrainConfig

    model, train = report["model_config"], report["request"]["train"]
    return argparse.Namespace(dimension=model["dimension"], normalisation=model["normalisation"],
                              epochs=TrainConfig().epochs, patience=train["patience"],
                              monitor=train["monitor"])


def metrics_of(dataset: str) -> tuple[str, str]:
    return ("precision@1", "precision@10") if dataset == "ml-100k" else ("precision@1", "precision@3")


def run(dataset: str, seed: int, out: Path, flags) -> dict:
    cmd = [sys.executable, "-m", "awe_tf.cli", "train", "--dataset", dataset, "--seed", str(seed),
           "--verbose", "0", "-o", str(out), *flags]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:  # awe-tf train has said why, on stderr
        raise SystemExit(f"quality.py: awe-tf train --dataset {dataset} --seed {seed} failed (exit {proc.returncode})")
    return json.loads((out / "metrics.json").read_text())


def _csr_arrays(arrays: dict, name: str, matrix) -> None:
    import scipy.sparse as sp

    matrix = sp.csr_matrix(matrix)
    arrays.update({f"{name}_data": matrix.data.astype(np.float32), f"{name}_indices": matrix.indices,
                   f"{name}_indptr": matrix.indptr, f"{name}_shape": np.array(matrix.shape)})


def _stage_arrays(arrays: dict, prefix: str, split, normalisation: str) -> None:
    """One stage of ``_lightfm_protocol.py`` (its docstring): ``split``'s training part and scored
    rows; annotation inputs transformed as awe-tf's model transforms them (fitted on this stage's
    training part)."""
    from awe_tf.data import RECOMMENDATION
    from awe_tf.layers.transform import InputTransform

    train, scored = split.train, split.test
    _csr_arrays(arrays, prefix + "train_Y", train.Y)
    _csr_arrays(arrays, prefix + "eval_Y", scored.Y)
    if split.exclude is not None:
        _csr_arrays(arrays, prefix + "eval_exclude", split.exclude)
    if split.candidates is not None:
        arrays[prefix + "candidates"] = np.asarray(split.candidates)
    if train.task == RECOMMENDATION:  # each scored user's training row
        position = {user: row for row, user in enumerate(train.row_ids.tolist())}
        missing = [user for user in scored.row_ids.tolist() if user not in position]
        if missing:
            raise SystemExit(f"quality.py: {train.name}'s scored users {missing[:3]} are not training users")
        arrays[prefix + "eval_users"] = np.array([position[user] for user in scored.row_ids.tolist()], np.int64)
    else:
        transform = InputTransform(train.n_features, normalisation)
        transform.adapt(train.X, train.numeric_features, train.numeric_scale, train.values_as_ones)  # on ``train``
        _csr_arrays(arrays, prefix + "train_X", transform.apply(train.X))
        _csr_arrays(arrays, prefix + "eval_X", transform.apply(scored.X))


def lightfm_run(dataset: str, seed: int, out: Path, python: str, settings: argparse.Namespace) -> dict:
    """LightFM's WARP the protocol's way (module docstring).

    Args:
        dataset: the data set's name.
        seed: LightFM's random state.
        out: a folder for the worker's files.
        python: a Python with lightfm 1.17.
        settings: :func:`lightfm_settings`.

    Returns:
        The worker's report (chosen epochs, the carve-out's precision per epoch, seconds) with
        ``metrics``: the test part's, as awe-tf scores them.
    """
    from awe_tf.data import load_dataset, validation_split
    from awe_tf.data.protocols import default_monitor
    from awe_tf.metrics import row_values

    split = load_dataset(dataset)
    metrics = metrics_of(dataset)
    monitor = settings.monitor or default_monitor(split.train)  # what awe-tf train chooses epochs by
    k = max(int(metric.split("@")[1]) for metric in metrics)
    arrays = {"settings": np.array([settings.dimension, settings.epochs, settings.patience,
                                    int(monitor.split("@")[1]), k, seed, 1])}
    _stage_arrays(arrays, "carve_", validation_split(split.train), settings.normalisation)
    _stage_arrays(arrays, "full_", split, settings.normalisation)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "stages.npz", **arrays)
    proc = subprocess.run([python, str(Path(__file__).with_name("_lightfm_protocol.py")), str(out / "stages.npz"),
                           str(out / "top.npy")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"quality.py: LightFM on {dataset}, seed {seed}, failed; is --lightfm-python a Python with "
                         f"lightfm 1.17?\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    top = np.load(out / "top.npy")
    report["metrics"] = {metric: float(row_values(top, split.test.Y, metric).mean()) for metric in metrics}
    return report


def _lightfm(dataset: str, seed: int, tmp: Path, python: str, settings) -> dict:
    """:func:`lightfm_run`, with its progress line."""
    report = lightfm_run(dataset, seed, tmp / f"lightfm-{seed}", python, settings)
    print(f"{dataset} seed {seed} LightFM: " + ", ".join(f"{m} {report['metrics'][m]:.4f}" for m in metrics_of(dataset))
          + f" ({report['epochs']} epochs)", flush=True)
    return report


def mean_sd(values) -> str:
    from awe_tf.reproduction import seed_spread

    values = np.asarray(values, np.float64)
    spread = seed_spread(values)
    spread = "" if spread is None else f" ± {spread:.3f}"
    return f"{round(values.mean(), 3) + 0.0:.3f}{spread}"  # + 0.0: no "-0.000" for a difference of -1e-17


def rows_of(dataset: str, reports: dict) -> list[dict]:
    """One row per metric: the means, the paired changes and auto's choices."""
    wsabie, auto = reports["WSABIE"], reports["AWE auto"]
    rows = []
    for metric in metrics_of(dataset):
        w = np.array([r["metrics"][metric] for r in wsabie])
        a = np.array([r["metrics"][metric] for r in auto])
        knn = np.array([r["baselines"]["knn_embedding"][metric] for r in wsabie])
        rows.append({
            "data": dataset, "metric": metric.replace("precision", "P"),
            "WSABIE": mean_sd(w), "k-NN (WSABIE space)": mean_sd(knn),
            "k-NN (input)": f"{wsabie[0]['baselines']['knn_input'][metric]:.3f}",
            "AWE auto": mean_sd(a), "auto - WSABIE": mean_sd(a - w), "auto - k-NN (WSABIE)": mean_sd(a - knn),
            "LightFM": mean_sd([r["metrics"][metric] for r in reports["LightFM"]]) if reports.get("LightFM") else "",
            "auto chose": ", ".join(_chose(r) for r in auto),
            "seconds WSABIE / auto": f"{np.mean([r['seconds_total'] for r in wsabie]):.0f} / "
                                     f"{np.mean([r['seconds_total'] for r in auto]):.0f}",
        })
    return rows


def _chose(report: dict) -> str:
    """What a run trained, as auto's table names it."""
    from awe_tf.training.auto import reported_name

    return reported_name(report)


def markdown(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


MARKERS = ("<!-- quality.py -->", "<!-- /quality.py -->")


def replace_between(path: Path, table: str) -> None:
    """Put ``table`` between the two :data:`MARKERS` lines of ``path`` (an error if they are not there)."""
    text = path.read_text()
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        raise SystemExit(f"error: {path} has no {MARKERS[0]} ... {MARKERS[1]} lines to put the table between")
    path.write_text(text[: start + len(MARKERS[0])] + "\n" + table + "\n" + text[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", help=f"default: {' '.join(DATASETS)}")
    parser.add_argument("--seeds", type=int, metavar="N", help="how many seeds: 0, 1, ..., N-1 (default: 3)")
    parser.add_argument("--lightfm-python", help="a Python with lightfm 1.17: LightFM's WARP runs beside, in the same "
                                                 "run (none: its column is left empty)")
    parser.add_argument("--json", help="write every run's metrics.json here")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--from-json", help="rebuild the table from the --json of an earlier run")
    parser.add_argument("--readme", help="put the table in this file, between its <!-- quality.py --> and "
                                         "<!-- /quality.py --> lines (the project's README.md)")
    args, extra = parser.parse_known_args()
    if extra and not extra[0].startswith("-"):  # awe-tf train's flags are passed on; a stray value is not one
        seeds = " (--seeds takes how many seeds, one number)" if args.seeds is not None else ""
        parser.error(f"{extra[0]}: not a flag{seeds}; what follows this script's own flags goes to awe-tf train")
    if args.from_json:
        if not Path(args.from_json).is_file():
            parser.error(f"--from-json {args.from_json}: no such file")
        if args.datasets or args.seeds is not None or extra:
            parser.error("--from-json takes the data sets, seeds and settings of the saved runs: give no --datasets, "
                         f"--seeds or awe-tf train flags (got {' '.join(extra) or 'them'})")
        if args.json and not args.lightfm_python:
            parser.error("--json with --from-json writes the runs back only with --lightfm-python (nothing new to "
                         "write)")
    args.datasets = args.datasets or DATASETS
    args.seeds = 3 if args.seeds is None else args.seeds
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.lightfm_python:
        problem = check_lightfm(args.lightfm_python)
        if problem:
            parser.error(problem)
        settings = lightfm_settings([*RECIPE, *extra])
        if settings.monitor and not settings.monitor.startswith("precision@"):
            parser.error(f"--monitor {settings.monitor}: LightFM's epochs are chosen by precision@k only")
    if not args.from_json:  # every data set found before the first run
        from awe_tf.data.registry import locate

        for dataset in args.datasets:
            try:
                locate(dataset)
            except (FileNotFoundError, ValueError) as error:
                parser.error(str(error))
    results, rows = {}, []
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        for dataset, reports in results.items():
            if args.lightfm_python:  # LightFM for the earlier run's data sets and seeds, at its settings
                with tempfile.TemporaryDirectory() as tmp:
                    reports["LightFM"] = [
                        _lightfm(dataset, seed, Path(tmp), args.lightfm_python, saved_settings(report))
                        for seed, report in enumerate(reports["WSABIE"])]
            rows += rows_of(dataset, reports)
    for dataset in [] if args.from_json else args.datasets:
        reports = {method: [] for method in METHODS}
        if args.lightfm_python:
            reports["LightFM"] = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.seeds):
                for method, flags in METHODS.items():
                    began = time.perf_counter()
                    report = run(dataset, seed, Path(tmp) / f"{method}-{seed}".replace(" ", "-"),
                                 [*RECIPE, *flags, *extra])
                    report["seconds_total"] = time.perf_counter() - began
                    reports[method].append(report)
                    print(f"{dataset} seed {seed} {method}: " + ", ".join(
                        f"{m} {report['metrics'][m]:.4f}" for m in metrics_of(dataset))
                        + f" ({report['seconds_total']:.0f}s" + (f", chose {_chose(report)})"
                                                                  if flags else ")"), flush=True)
                if args.lightfm_python:
                    reports["LightFM"].append(_lightfm(dataset, seed, Path(tmp), args.lightfm_python, settings))
        results[dataset] = reports
        rows += rows_of(dataset, reports)
    table = markdown(rows)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.readme:
        replace_between(Path(args.readme), table)
    if args.json and (not args.from_json or args.lightfm_python):
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
