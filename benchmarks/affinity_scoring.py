"""Scoring throughput of every affinity: inputs ranked per second against all labels, and the
ratio to the linear model (constant G) measured in the same run.

Each model has random U and V (and a reference set built from them for the affinities that need
one): scoring cost does not depend on training. Corel5k (bundled) by default; ml-100k with
AWE_DATA_DIR.

    python benchmarks/affinity_scoring.py [--dataset corel5k] [--dimension 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from awe_tf.data import load_dataset  # noqa: E402
from awe_tf.models import AWEModel  # noqa: E402
from awe_tf.training.iterative import build_g  # noqa: E402

SPECS = [
    "constant", "sigmoid", "sigmoid:rank=8", "linear-sigmoid:alpha=1,beta=0.25", "linear-sigmoid:on=pair",
    "topk:k=5", "max", "matrix", "lowrank:rank=8", "knn:k=20", "knn:k=20,search=scann", "rbf:k=20,gamma=0.1",
    "latent-rbf:k=20", "hybrid-rbf:k=20,gamma=0.1", "cluster:leaves=64,top=50", "constant:1+knn:k=20",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="corel5k")
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    split = load_dataset(args.dataset)
    train, X = split.train, split.test.X
    print(f"{args.dataset}: {X.shape[0]} test inputs x {train.n_labels} labels, d={args.dimension}\n")
    print(f"{'affinity':<36}{'inputs/s':>12}{'vs constant':>13}")
    baseline = None
    for spec in ["constant", *SPECS]:  # the first constant run only warms the process up
        model = AWEModel(train.n_features, train.n_labels, dimension=args.dimension, affinity=spec)
        if model.affinity.reference_part() is not None:  # G built from the training set: from this model's U
            build_g(model, model, train)
        model.top_k(X[:32], k=10)  # trace and build indexes outside the clock
        began = time.perf_counter()
        for _ in range(args.repeats):
            model.top_k(X, k=10)
        rate = X.shape[0] * args.repeats / (time.perf_counter() - began)
        if baseline is None:
            baseline = 0.0
            continue
        baseline = baseline or rate
        print(f"{spec:<36}{rate:>12,.0f}{rate / baseline:>13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
