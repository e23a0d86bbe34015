"""An affinity built from the training set (AWE k-NN by default) trained by both engines in one
run: the graph step and the native engine, the same settings, the same fixed epochs per step (no
validation), on a named data set. Prints each engine's training seconds (every step, G's making
included) and the test part's P@1 and P@3, and the time ratio graph / native.

    AWE_DATA_DIR=../shared/data python benchmarks/iterative_engines.py [--dataset corel5k]
        [--affinity knn:k=20] [--iterations 3] [--epochs 10] [--threads 2]

The native engine runs on ``--threads`` threads (Hogwild: with more than one, its figures vary
from run to run); the graph step on TensorFlow's own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from awe_tf.config import SettingError  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig  # noqa: E402

ENGINES = ("graph", "native")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="corel5k", help="a named data set (awe-tf datasets)")
    parser.add_argument("--affinity", default="knn:k=20", help="an affinity built from the training set")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every step")
    parser.add_argument("--dimension", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="the native engine's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    for name in ("iterations", "epochs", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    try:
        model_config = ModelConfig(dimension=args.dimension, affinity=args.affinity, seed=args.seed,
                                   init_scale=args.init_scale)
        configs = {engine: TrainConfig(epochs=args.epochs, engine=engine, threads=args.threads, seed=args.seed,
                                       verbose=0) for engine in ENGINES}
    except (SettingError, ValueError) as error:  # before any work
        parser.error(str(error))
    from awe_tf.config import NATIVE_TRAINS, affinity_of

    affinity = affinity_of(model_config)
    if affinity.reference_part() is None or affinity.native_form() is None:
        parser.error(f"--affinity {args.affinity}: not an affinity built from the training set that the native "
                     f"engine trains every step of (it trains {NATIVE_TRAINS})")

    from awe_tf.data import load_dataset
    from awe_tf.evaluation import evaluate_model
    from awe_tf.training import fit_iterative

    split = load_dataset(args.dataset)
    results = {}
    for engine in ENGINES:
        began = time.perf_counter()
        final, _ = fit_iterative(split.train, model_config, configs[engine], iterations=args.iterations)
        seconds = time.perf_counter() - began
        metrics = evaluate_model(final.model.score, split, ks=(1, 3))["metrics"]
        results[engine] = (seconds, metrics["precision@1"], metrics["precision@3"])
        print(f"{engine:<8}{seconds:>9.1f} s   P@1 {metrics['precision@1']:.4f}   P@3 {metrics['precision@3']:.4f}",
              flush=True)
    print(f"\n{args.dataset}, {args.affinity}, {args.iterations} steps after the linear one, {args.epochs} epochs "
          f"each, d = {args.dimension}, native on {args.threads} thread(s)")
    print(f"time ratio graph / native: {results['graph'][0] / results['native'][0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
