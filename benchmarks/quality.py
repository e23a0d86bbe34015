"""WSABIE under the protocols of shared/PROTOCOLS.md, mean of 3 seeds, beside LightFM's WARP.

Runs `awe-tf train` (validation-chosen epochs, refit on the full training part, test scored
once) for each data set and seed, and prints our mean against the LightFM reference numbers
(measured with LightFM 1.17 WARP under the same protocols, mean of 3 seeds, 2 threads).

    AWE_DATA_DIR=../shared/data python benchmarks/quality.py [--datasets ml-100k corel5k ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# The command line of each data set: LightFM's reference settings (d, epochs) where it has them.
RECIPES = {
    "ml-100k": ["--dimension", "64", "--epochs", "15"],
    "corel5k": ["--dimension", "100", "--epochs", "10"],
    # emotions: 391 training rows; no row scaling and small batches (more steps) won on validation.
    "emotions": ["--dimension", "64", "--epochs", "15", "--normalisation", "none", "--pairs-per-batch", "64"],
    "scene": ["--dimension", "64", "--epochs", "15"],
}
LIGHTFM = {  # mean of 3 seeds, LightFM 1.17 WARP, 2 threads
    "ml-100k": {"precision@1": 0.290, "precision@10": 0.1385},
    "corel5k": {"precision@1": 0.357},
    "emotions": {"precision@1": 0.690},
    "scene": {"precision@1": 0.735},
}


def run(dataset: str, seed: int, out: Path, extra) -> dict:
    cmd = [sys.executable, "-m", "awe_tf.cli", "train", "--dataset", dataset, "--seed", str(seed),
           "--verbose", "0", "-o", str(out), *RECIPES[dataset], *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads((out / "metrics.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(RECIPES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args, extra = parser.parse_known_args()
    results = {}
    print(f"{'data':<10}{'metric':<14}{'awe-tf WSABIE':>22}{'LightFM WARP':>14}{'ratio':>8}   knn_input  svd")
    for dataset in args.datasets:
        reports = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.seeds):
                reports.append(run(dataset, seed, Path(tmp) / str(seed), extra))
        results[dataset] = reports
        for metric, reference in LIGHTFM[dataset].items():
            values = [r["metrics"][metric] for r in reports]
            mean = sum(values) / len(values)
            spread = max(values) - min(values)
            knn = reports[0]["baselines"]["knn_input"][metric]
            svd = reports[0]["baselines"]["svd"][metric]
            print(f"{dataset:<10}{metric:<14}{mean:>14.4f} ±{spread / 2:.4f}{reference:>14.4f}"
                  f"{mean / reference:>8.3f}   {knn:.4f}    {svd:.4f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
