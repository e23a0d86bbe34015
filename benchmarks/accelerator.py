"""One prepared accelerator check: correctness and speed of awe-tf on a GPU against this machine's
CPU, in one run, written as a JSON and a Markdown table.

    python benchmarks/accelerator.py --out $OUT                   # on a GPU machine (< 8 minutes)
    python benchmarks/accelerator.py --device cpu --smoke --out D # the same script on a CPU (2-3 min)

Correctness (Corel5k, bundled with the package; the protocol's split): WSABIE, linear sigmoid,
top-k, the low-rank matrix and iterative k-NN each train on the device under the default
strategy, under MirroredStrategy and with ``jit_compile``, and once on the CPU in the same run;
every mode with one static batch shape, so that XLA sees the same batches; each device P@1 and
P@5 must lie within ``TOLERANCE`` of the CPU's (floating-point sums differ
between devices, so training paths differ a little: 0.03 is about 1.5 standard errors of P@1 on
Corel5k's 500 test images). The device's WSABIE is exported (the portable flavour) and loaded in
a fresh process, whose top 10 must equal the in-process ranking.

Speed: graph-engine pairs/s on the device against the native engine on every CPU core, each
over its second epoch (the first traces and warms up), on ml-100k when ``AWE_DATA_DIR`` has it
and on a synthetic catalogue of ``--items`` items (``benchmarks/synthetic.py``); and batch
scoring queries/s over all ``--items`` labels through the model's own top-k, device against
CPU. MirroredStrategy spans every GPU there is (one replica on a one-GPU machine). Targets (on
a GPU): graph WSABIE >= 5x the native engine at 1M items; scoring >= 20x the CPU's queries/s;
every P@k within the tolerance.

With ``--device cpu`` the "device" is this CPU (MirroredStrategy over it alone), its default mode
is the CPU's run itself (not trained twice), and TensorFlow runs deterministic ops on one thread:
the mirrored run must then give the CPU run's P@k exactly (training is seeded end to end), the
ratios are about 1 (those of scoring; the graph step on one thread against the native engine on
every core is not), and the run only says the script works. ``--smoke`` trains on Corel5k's first
2,000 training rows (d = 16, one epoch, batches of about 2,048 pairs: few steps) and a
10,000-item catalogue.
"""

from __future__ import annotations

import argparse
import dataclasses
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

import awe_tf  # noqa: E402,F401  (sets up Keras 2 before TensorFlow loads)
from awe_tf.config import ModelConfig, TrainConfig  # noqa: E402

MODELS = {
    "WSABIE": None,
    "linear sigmoid": "linear-sigmoid:alpha=1,beta=0.25",
    "top-k": "topk:k=5",
    "low-rank matrix": "lowrank:rank=8",
    "iterative k-NN": "knn:k=20",
}
MODES = ("default", "mirrored", "jit")
TOLERANCE = 0.03
KS = (1, 5)


@dataclasses.dataclass
class Sizes:
    """What one run trains and measures: full (a GPU, minutes) or smoke (a CPU, seconds)."""

    dimension: int
    epochs: int
    items: int
    users: int
    queries: int
    train_rows: int | None = None  # correctness trains on the first rows of Corel5k's training part
    pairs_per_batch: int = TrainConfig.pairs_per_batch  # correctness's batches

    @classmethod
    def of(cls, smoke: bool, items: int | None, users: int | None) -> Sizes:
        if smoke:
            return cls(16, 1, items or 10_000, users or 3_000, 128, train_rows=2000, pairs_per_batch=2048)
        return cls(64, 5, items or 1_000_000, users or 200_000, 4096)


def devices(kind: str):
    """``(device name, devices of MirroredStrategy)``: every GPU, or the CPU alone."""
    import tensorflow as tf

    if kind == "cpu":
        return "/CPU:0", ["/CPU:0"]
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise SystemExit("error: no GPU is visible to TensorFlow here (use --device cpu for the CPU smoke run)")
    return "/GPU:0", [f"/GPU:{i}" for i in range(len(gpus))]


def precision(model, split) -> dict:
    from awe_tf.evaluation import evaluate_model

    metrics = evaluate_model(model.score, split)["metrics"]
    return {f"precision@{k}": round(float(metrics[f"precision@{k}"]), 4) for k in KS}


def train(split, affinity, sizes: Sizes, device: str | None = None, strategy=None, jit: bool = False):
    """One model of :data:`MODELS`, trained on ``device`` (or under ``strategy``)."""
    import tensorflow as tf

    from awe_tf.training import fit, fit_iterative
    from awe_tf.training.selection import is_iterative

    model_config = ModelConfig(dimension=sizes.dimension, num_negatives=10, affinity=affinity, seed=0)
    # one static batch shape in every mode, so that XLA's run sees the CPU run's batches
    train_config = TrainConfig(epochs=sizes.epochs, verbose=0, seed=0, jit_compile=jit, bucketing=False,
                               pairs_per_batch=sizes.pairs_per_batch)
    with strategy.scope() if strategy is not None else tf.device(device):
        if is_iterative(model_config):
            return fit_iterative(split.train, model_config, train_config, iterations=1, log=lambda line: None)[0].model
        return fit(split.train, model_config, train_config).model


def correctness(split, sizes: Sizes, device: str, mirrored: list[str], log) -> list[dict]:
    import tensorflow as tf

    rows = []
    strategy = tf.distribute.MirroredStrategy(devices=mirrored)
    for name, affinity in MODELS.items():
        began = time.perf_counter()
        reference = precision(train(split, affinity, sizes, device="/CPU:0"), split)
        for mode in MODES:
            if mode == "default" and device == "/CPU:0":
                got = reference  # the CPU's default run is the reference run itself (a smoke run)
            elif mode == "mirrored":
                got = precision(train(split, affinity, sizes, strategy=strategy), split)
            else:
                got = precision(train(split, affinity, sizes, device=device, jit=mode == "jit"), split)
            worst = max(abs(got[m] - reference[m]) for m in got)
            rows.append({"model": name, "mode": mode, "device": got, "cpu": reference,
                         "largest_difference": round(worst, 4), "within_tolerance": worst <= TOLERANCE})
            log(f"  {name:<16} {mode:<9} device {got} cpu {reference} -> {'ok' if worst <= TOLERANCE else 'OFF'}")
        log(f"  ({name}: {time.perf_counter() - began:.0f}s)")
    return rows


def export_round_trip(split, sizes: Sizes, device: str, out: Path) -> dict:
    """Export the device's WSABIE (portable flavour), load it in a fresh process, compare top 10."""
    from awe_tf.metrics import top_k
    from awe_tf.serving import export

    model = train(split, None, sizes, device=device)
    path = export(model, out, "awe", flavour="portable", log=lambda line: None)
    rows = split.test.X[:200]
    expected = top_k(model.score(rows), 10)
    np.save(out / "rows_indptr.npy", rows.indptr)
    script = (
        "import sys, json, numpy as np, scipy.sparse as sp\n"
        "import awe_tf\nfrom awe_tf.serving import load\n"
        "d = sys.argv[1]\n"
        f"X = sp.csr_matrix((np.load(d + '/data.npy'), np.load(d + '/indices.npy'), np.load(d + '/rows_indptr.npy')),"
        f" shape={tuple(rows.shape)})\n"
        "print(json.dumps(load(sys.argv[2])(X, k=10)['label_ids'].tolist()))\n"
    )
    np.save(out / "data.npy", rows.data)
    np.save(out / "indices.npy", rows.indices)
    proc = subprocess.run([sys.executable, "-c", script, str(out), str(path)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    if proc.returncode != 0:
        return {"loaded_in_a_fresh_process": False, "error": proc.stderr[-1000:]}
    served = np.array(json.loads(proc.stdout.strip().splitlines()[-1]))
    same = float(np.mean(np.sort(served, axis=1) == np.sort(expected, axis=1)))
    return {"loaded_in_a_fresh_process": True, "top10_agreement": round(same, 4), "rows": int(rows.shape[0])}


def pairs_per_second(split, sizes: Sizes, engine: str, device: str | None) -> float:
    """Positive pairs per second of the second epoch (the first one traces and warms up)."""
    import tensorflow as tf
    from _timing import EpochTimes

    from awe_tf.training import fit

    model_config = ModelConfig(dimension=sizes.dimension, num_negatives=10, seed=0)
    train_config = TrainConfig(epochs=2, verbose=0, seed=0, engine=engine, threads=0)
    timer = EpochTimes()
    with tf.device(device or "/CPU:0"):
        fit(split.train, model_config, train_config, callbacks=[timer])
    return split.train.Y.nnz / timer.seconds[-1]


def scoring_rate(split, sizes: Sizes, device: str, repeats: int = 3) -> float:
    """Inputs ranked over every label per second on ``device`` through the library's own top-k
    (in memory-bounded batches), the best of ``repeats``; an untrained model of the same sizes."""
    import tensorflow as tf

    from awe_tf.training import build_model

    X = split.test.X[: sizes.queries]
    with tf.device(device):
        model = build_model(split.train, ModelConfig(dimension=sizes.dimension, seed=0))
        model.top_k(X[:64], 10)  # traced and warm
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            model.top_k(X, 10)
            best = min(best, time.perf_counter() - began)
    return X.shape[0] / best


def speed(sizes: Sizes, device: str, log, smoke: bool = False) -> dict:
    from synthetic import recommendation_set

    from awe_tf.data import load_dataset

    out = {}
    sets = {}
    try:
        if smoke:
            raise FileNotFoundError("not in a smoke run")
        sets["ml-100k"] = load_dataset("ml-100k")
    except (FileNotFoundError, ValueError) as error:
        out["ml-100k"] = {"skipped": str(error)}
    sets[f"synthetic {sizes.items:,} items"] = recommendation_set(sizes.users, sizes.items)
    for name, split in sets.items():
        graph = pairs_per_second(split, sizes, "graph", device)
        native = pairs_per_second(split, sizes, "native", None)
        out[name] = {"graph_on_device_pairs_per_s": round(graph), "native_all_cpu_cores_pairs_per_s": round(native),
                     "ratio": round(graph / native, 3)}
        log(f"  {name}: graph on device {graph:,.0f} pairs/s, native on the CPU {native:,.0f} -> {graph / native:.2f}x")
    split = sets[f"synthetic {sizes.items:,} items"]
    on_device, on_cpu = scoring_rate(split, sizes, device), scoring_rate(split, sizes, "/CPU:0")
    queries = min(sizes.queries, split.test.X.shape[0])
    out["scoring"] = {"labels": sizes.items, "queries": queries, "device_queries_per_s": round(on_device),
                      "cpu_queries_per_s": round(on_cpu), "ratio": round(on_device / on_cpu, 3)}
    log(f"  scoring over {sizes.items:,} labels: device {on_device:,.0f} queries/s, CPU {on_cpu:,.0f} "
        f"-> {on_device / on_cpu:.2f}x")
    return out


def markdown(report: dict) -> str:
    lines = [f"Device: {report['device']} ({'smoke' if report['smoke'] else 'full'} run, "
             f"{report['seconds']:.0f} s; tolerance {TOLERANCE})", "",
             "| model | mode | P@1 device / CPU | P@5 device / CPU | within tolerance |", "|---|---|---|---|---|"]
    for row in report["correctness"]:
        d, c = row["device"], row["cpu"]
        ok = "yes" if row["within_tolerance"] else "NO"
        lines.append(f"| {row['model']} | {row['mode']} | {d['precision@1']:.3f} / {c['precision@1']:.3f} | "
                     f"{d['precision@5']:.3f} / {c['precision@5']:.3f} | {ok} |")
    exported = report["export"]
    lines += ["", f"Export loaded in a fresh process: {exported.get('loaded_in_a_fresh_process')}, top-10 agreement "
                  f"{exported.get('top10_agreement', '-')}",
              "", "| speed | device | CPU | ratio |", "|---|---|---|---|"]
    for name, row in report["speed"].items():
        if "skipped" in row:
            lines.append(f"| {name} | skipped | | |")
        elif name == "scoring":
            lines.append(f"| scoring queries/s over {row['labels']:,} labels | {row['device_queries_per_s']:,} | "
                         f"{row['cpu_queries_per_s']:,} | {row['ratio']:.2f} |")
        else:
            lines.append(f"| {name}: graph (device) against native (all CPU cores), pairs/s | "
                         f"{row['graph_on_device_pairs_per_s']:,} | {row['native_all_cpu_cores_pairs_per_s']:,} | "
                         f"{row['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--smoke", action="store_true", help="small sizes: the whole script in seconds")
    parser.add_argument("--out", default=os.environ.get("OUT", "accelerator-results"), help="where the results go")
    parser.add_argument("--items", type=int, help="synthetic catalogue size (default 1,000,000; smoke 10,000)")
    parser.add_argument("--users", type=int, help="synthetic users (default 200,000; smoke 3,000)")
    parser.add_argument("--skip-speed", action="store_true", help="correctness and export only")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    device, mirrored = devices(args.device)
    import tensorflow as tf

    if args.device == "cpu":
        # Graph-engine trainings of one model on a CPU are not bit-identical without deterministic
        # ops, nor always with them when TensorFlow runs independent ops or an op's shards on
        # several threads of a busy machine. With deterministic ops on one thread the mirrored
        # run over the CPU alone repeats the CPU run exactly.
        tf.config.experimental.enable_op_determinism()
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)

    from awe_tf.data import load_dataset

    sizes = Sizes.of(args.smoke, args.items, args.users)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0]).get(
        "device_name", "GPU") if args.device == "gpu" else "CPU"
    print(f"device {name}; correctness on Corel5k (d = {sizes.dimension}, {sizes.epochs} epochs"
          + (f", the first {sizes.train_rows} training rows" if sizes.train_rows else "") + ")", flush=True)
    split = load_dataset("corel5k")
    if sizes.train_rows:  # the per-term affinities (top-k, low-rank) cost d per feature per candidate
        split = dataclasses.replace(split, train=split.train.rows(np.arange(sizes.train_rows)))
    report = {"device": name, "smoke": args.smoke, "sizes": dataclasses.asdict(sizes), "tolerance": TOLERANCE}
    report["correctness"] = correctness(split, sizes, device, mirrored, lambda line: print(line, flush=True))
    with tempfile.TemporaryDirectory() as tmp:
        report["export"] = export_round_trip(split, sizes, device, Path(tmp))
    print(f"  export: {report['export']}", flush=True)
    report["speed"] = {} if args.skip_speed else speed(sizes, device, lambda line: print(line, flush=True),
                                                          args.smoke)
    report["seconds"] = time.perf_counter() - began
    (out / "accelerator.json").write_text(json.dumps(report, indent=1))
    (out / "accelerator.md").write_text(markdown(report))
    print(markdown(report))
    failed = [row for row in report["correctness"] if not row["within_tolerance"]]
    return 1 if failed or report["export"].get("top10_agreement") != 1.0 else 0


if __name__ == "__main__":
    sys.exit(main())
