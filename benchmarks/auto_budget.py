"""What other work on the machine does to ``--affinity auto``'s budget, counted on the wall clock
and in CPU time.

Runs ``choose_affinity`` twice on one data set, once on a quiet machine and once with busy loops
(one per core) started as soon as its WSABIE stage ends, and times each stage both ways. It
prints each stage's cost in units of the WSABIE stage, on the wall clock and in CPU time, and
which candidates each run ran: the ratios a wall-clock budget would decide on move with the
load, the CPU-time ones (what the budget counts) do not.

    AWE_DATA_DIR=../shared/data python benchmarks/auto_budget.py [--dataset scene] [--dimension 64]
        [--busy 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import awe_tf  # noqa: E402, F401  (sets up Keras 2 before TensorFlow is imported)
from awe_tf.data import load_dataset  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig, auto  # noqa: E402

STAGES = ("validate_then_refit", "on_linear_model", "choose_epochs")  # WSABIE, a vote, a trained candidate


def timed_run(split, dimension: int, busy: int) -> tuple[list, list]:
    """``choose_affinity`` with its stages timed: ``([(stage, wall s, CPU s)], [candidates run])``;
    ``busy`` loops start once the WSABIE stage ends and stop with the run."""
    stages, loops, originals = [], [], {name: getattr(auto, name) for name in STAGES}

    def timing(name):
        def stage(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            out = originals[name](*args, **kwargs)
            stages.append((name, time.perf_counter() - wall, time.process_time() - cpu))
            if name == "validate_then_refit":
                loops.extend(subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy))
            return out
        return stage

    try:
        for name in STAGES:
            setattr(auto, name, timing(name))
        result = auto.choose_affinity(split.train, ModelConfig(dimension=dimension), TrainConfig(verbose=0),
                                      log=lambda line: None)
    finally:
        for loop in loops:
            loop.kill()
        for name, original in originals.items():
            setattr(auto, name, original)
    ran = [trial.name for trial in result.trials if trial.ran and not trial.vote and trial.affinity]
    return stages, ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="scene")
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy loops in the second run")
    args = parser.parse_args()
    split = load_dataset(args.dataset)
    for label, busy in (("quiet", 0), (f"{args.busy} busy loops after WSABIE", args.busy)):
        stages, ran = timed_run(split, args.dimension, busy)
        _, unit_wall, unit_cpu = stages[0]
        print(f"{args.dataset}, {label}:")
        for name, wall, cpu in stages:
            print(f"  {name:<22} wall {wall:7.2f} s ({wall / unit_wall:5.2f} WSABIE)   "
                  f"CPU {cpu:7.2f} s ({cpu / unit_cpu:5.2f} WSABIE)")
        print(f"  trained candidates run: {', '.join(ran) or 'none'}")


if __name__ == "__main__":
    main()
