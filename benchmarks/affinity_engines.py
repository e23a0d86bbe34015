"""An AWE model trained by both engines in one run: the graph step and the native engine, the
same settings and the same fixed epochs (no validation), on a named data set. An affinity built
from the training set (AWE k-NN, the default) trains its iterative steps (``--iterations``) from
the linear model; any other starts from a WSABIE trained first by the native engine (its time
not counted), as the paper's Table 3 started its AWE models from WSABIE. Prints each engine's
training seconds (for an iterative affinity every step, G's making included) and the test
part's precision at the protocol's two ks (P@1 and P@3 for annotation, P@1 and P@10 for
recommendation), and the time ratio graph / native.

    AWE_DATA_DIR=../shared/data python benchmarks/affinity_engines.py [--dataset corel5k]
        [--affinity knn:k=20] [--iterations 3] [--epochs 10] [--threads 2]
    AWE_DATA_DIR=../shared/data python benchmarks/affinity_engines.py --dataset ml-100k \\
        --affinity topk:k=11 --epochs 5 --dimension 64

The native engine runs on ``--threads`` threads (Hogwild: with more than one, its figures vary
from run to run); the graph step on TensorFlow's own.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument("--affinity", default="knn:k=20", help="an affinity the native engine trains")
    parser.add_argument("--iterations", type=int, default=3, help="an iterative affinity's steps after the linear one")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every step (of WSABIE's too)")
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
    if affinity.native_form() is None:
        parser.error(f"--affinity {args.affinity}: the native engine does not train it (it trains {NATIVE_TRAINS})")

    from awe_tf.data import load_dataset
    from awe_tf.data.dataset import RECOMMENDATION
    from awe_tf.evaluation import evaluate_model
    from awe_tf.training import fit, fit_iterative

    split = load_dataset(args.dataset)
    ks = (1, 10) if split.train.task == RECOMMENDATION else (1, 3)  # what the protocols report
    iterative = affinity.reference_part() is not None
    start = None
    if not iterative:  # the AWE model starts from a trained WSABIE, as in the paper's Table 3
        start = fit(split.train, dataclasses.replace(model_config, affinity=None), configs["native"]).model
    results = {}
    for engine in ENGINES:
        began = time.perf_counter()
        if iterative:
            final, _ = fit_iterative(split.train, model_config, configs[engine], iterations=args.iterations)
        else:
            final = fit(split.train, model_config, configs[engine], init_from=start)
        seconds = time.perf_counter() - began
        metrics = evaluate_model(final.model.score, split, ks=ks)["metrics"]
        results[engine] = seconds
        shown = "   ".join(f"P@{k} {metrics[f'precision@{k}']:.4f}" for k in ks)
        print(f"{engine:<8}{seconds:>9.1f} s   {shown}", flush=True)
    how = (f"{args.iterations} steps after the linear one" if iterative else "from WSABIE (trained first, natively)")
    print(f"\n{args.dataset}, {args.affinity}, {how}, {args.epochs} epochs each, d = {args.dimension}, native on "
          f"{args.threads} thread(s)")
    print(f"time ratio graph / native: {results['graph'] / results['native']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
