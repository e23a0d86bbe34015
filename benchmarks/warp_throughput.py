"""WARP training speed: awe-tf WSABIE against LightFM's WARP on ml-100k, in the same run.

Both train on the protocol's validation carve-out of ml-100k (docs/protocols.md, default_rng(1))
and are scored on its validation users after every epoch (scoring time not counted). Prints
positive pairs per second of each and their ratio, the training time each needs to first reach
a validation P@10 (``--target``) and that ratio, and both final validation P@10.

LightFM 1.17 builds only with pip's legacy path, so it lives in its own environment (never in
the project's requirements):

    python3 -m venv /tmp/lfm && /tmp/lfm/bin/pip install pip==23.0.1 setuptools==65.5.0 wheel numpy scipy
    /tmp/lfm/bin/pip wheel --no-deps --no-use-pep517 lightfm==1.17 -w /tmp/lfmwheel
    /tmp/lfm/bin/pip install /tmp/lfmwheel/lightfm-1.17*.whl
    AWE_DATA_DIR=../shared/data python benchmarks/warp_throughput.py --lightfm-python /tmp/lfm/bin/python

awe-tf trains with its native engine (``TrainConfig(engine="native")``, C on as many threads as
LightFM gets) unless ``--engine graph`` asks for the TensorFlow training step.

Targets: pairs/s ratio >= 1 and time-to-quality ratio <= 1.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _peers import check_lightfm  # noqa: E402

from awe_tf.data import load_dataset, validation_split  # noqa: E402
from awe_tf.evaluation import evaluate_model  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig  # noqa: E402


def awe_run(carve, epochs, target, model_config, train_config):
    import tensorflow as tf

    from awe_tf.training import fit

    clock = {"seconds": 0.0, "reached": None, "history": [], "epochs": []}

    class Clock(tf.keras.callbacks.Callback):
        """Counts training time only: the clock stops while the validation users are scored."""

        def on_epoch_begin(self, epoch, logs=None):
            clock["began"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            spent = time.perf_counter() - clock["began"]
            clock["seconds"] += spent
            clock["epochs"].append(spent)
            p10 = evaluate_model(self.model.score, carve, ks=(10,))["metrics"]["precision@10"]
            clock["history"].append(p10)
            if clock["reached"] is None and p10 >= target:
                clock["reached"] = clock["seconds"]

    n_pairs = carve.train.Y.nnz
    fit(carve.train, model_config, dataclasses.replace(train_config, epochs=epochs, patience=0, verbose=0),
        callbacks=[Clock()])
    steady = n_pairs * (epochs - 1) / sum(clock["epochs"][1:]) if epochs > 1 else float("nan")
    return {"pairs_per_second": n_pairs * epochs / clock["seconds"], "steady_pairs_per_second": steady,
            "first_epoch_seconds": clock["epochs"][0],
            "other_epoch_seconds": float(np.median(clock["epochs"][1:] or [0])),
            "train_seconds": clock["seconds"], "seconds_to_target": clock["reached"], "history": clock["history"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lightfm-python", default=sys.executable,
                        help="a Python with lightfm 1.17 (default: this one)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.12,
                        help="validation P@10 to reach (validation users have 5 fewer training items than at "
                             "test time, so validation figures run below the test part's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs-per-batch", type=int, default=4096)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--negatives", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("graph", "native"), default="native",
                        help="awe-tf's training engine (TrainConfig.engine)")
    parser.add_argument("--steps-per-execution", type=int, default=TrainConfig.steps_per_execution,
                        help="graph engine steps per call into the compiled graph (TrainConfig.steps_per_execution)")
    parser.add_argument("--init-scale", type=float, default=ModelConfig.init_scale,
                        help="awe-tf's initial row norm (ModelConfig.init_scale; the README's table: 1)")
    args = parser.parse_args()
    for name in ("epochs", "threads", "pairs_per_batch", "negatives", "steps_per_execution"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    try:
        model_config = ModelConfig(dimension=64, num_negatives=args.negatives, seed=args.seed,
                                   init_scale=args.init_scale)
        train_config = TrainConfig(learning_rate=args.learning_rate, pairs_per_batch=args.pairs_per_batch,
                                   min_steps_per_epoch=1,  # steps of --pairs-per-batch, as it says
                                   steps_per_execution=args.steps_per_execution,
                                   seed=args.seed, engine=args.engine, threads=args.threads)
    except ValueError as error:  # before LightFM's run
        parser.error(str(error))
    problem = check_lightfm(args.lightfm_python)
    if problem:
        parser.error(problem)

    split = load_dataset("ml-100k")
    carve = validation_split(split.train)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "split.npz"
        train = carve.train.Y.tocsr()
        val = carve.test.Y  # the validation part: every user with held-out items, in user order
        assert carve.test.n_examples == train.shape[0], "every ml-100k user has validation items"
        np.savez(path, shape=np.array(train.shape), train_data=train.data, train_indices=train.indices,
                 train_indptr=train.indptr, val_data=val.data, val_indices=val.indices, val_indptr=val.indptr,
                 candidates=carve.candidates)
        proc = subprocess.run([args.lightfm_python, str(Path(__file__).with_name("_lightfm_worker.py")), str(path),
                               str(args.epochs), str(args.threads), str(args.target), str(args.seed)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit("LightFM run failed; is --lightfm-python a Python with lightfm 1.17?")
        lightfm = json.loads(proc.stdout.strip().splitlines()[-1])
    awe = awe_run(carve, args.epochs, args.target, model_config, train_config)

    def when(run):
        return f"{run['seconds_to_target']:.2f}s" if run["seconds_to_target"] is not None else "never"

    print(f"ml-100k validation split, {args.epochs} epochs, d=64, {args.threads} threads for LightFM and the native "
          f"engine; awe-tf engine: {args.engine}, initial scale {args.init_scale:g}"
          + (f", {args.steps_per_execution} steps a call" if args.engine == "graph" else "") + "\n")
    print(f"{'':<22}{'pairs/s':>12}{'to P@10>=' + str(args.target):>16}{'final P@10':>12}")
    print(f"{'awe-tf WSABIE':<22}{awe['pairs_per_second']:>12,.0f}{when(awe):>16}{awe['history'][-1]:>12.4f}")
    last = lightfm["history"][-1]
    print(f"{'LightFM WARP':<22}{lightfm['pairs_per_second']:>12,.0f}{when(lightfm):>16}{last:>12.4f}")
    ratio = awe["pairs_per_second"] / lightfm["pairs_per_second"]
    print(f"\npairs/s ratio (awe-tf / LightFM): {ratio:.2f}   (target >= 1; awe-tf after its first "
          f"epoch: {awe['steady_pairs_per_second']:,.0f} pairs/s, "
          f"{awe['steady_pairs_per_second'] / lightfm['pairs_per_second']:.2f}x LightFM's)")
    print(f"awe-tf epoch times: first {awe['first_epoch_seconds']:.2f}s (Keras set-up and, for the graph engine, "
          f"tracing included), median of the others {awe['other_epoch_seconds']:.2f}s")
    if awe["seconds_to_target"] is not None and lightfm["seconds_to_target"] is not None:
        print(f"time-to-quality ratio (awe-tf / LightFM): {awe['seconds_to_target'] / lightfm['seconds_to_target']:.2f}"
              "   (target <= 1)")
    else:
        print("time-to-quality ratio: n/a (one of them never reached the target)")
    print("P@10 per epoch, awe-tf :", " ".join(f"{p:.3f}" for p in awe["history"]))
    print("P@10 per epoch, LightFM:", " ".join(f"{p:.3f}" for p in lightfm["history"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
