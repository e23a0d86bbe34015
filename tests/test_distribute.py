"""tf.distribute: MirroredStrategy over 2 logical CPUs trains like the default strategy; every
training step compiles with XLA (jit_compile=True, the stand-in for TPU compilation)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from awe_tf.data import load_dataset
from awe_tf.evaluation import evaluate_model
from awe_tf.training import ModelConfig, TrainConfig, fit

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
TOLERANCE = 0.03  # P@1 of mirrored against default: replicas draw other negatives per step


def test_mirrored_strategy_on_two_cpus_matches_the_default():
    script = textwrap.dedent("""
        import json, numpy as np
        from awe_tf.training.strategies import make_strategy, split_cpu
        devices = split_cpu(2)
        from awe_tf.data import load_dataset
        from awe_tf.evaluation import evaluate_model
        from awe_tf.training import ModelConfig, TrainConfig, fit
        split = load_dataset("corel5k")
        out = {}
        for name in ("default", "mirrored"):
            strategy = make_strategy(name, devices=devices)
            config = TrainConfig(epochs=3, verbose=0, bucketing=False)
            model = fit(split.train, ModelConfig(dimension=32, num_negatives=10), config, strategy=strategy).model
            out[name] = evaluate_model(model.score, split)["metrics"]["precision@1"]
            out[name + "_replicas"] = strategy.num_replicas_in_sync
            if name == "mirrored":  # every replica holds the same U and V, inside the max-norm ball
                copies = [v.numpy() for v in model.U.table.values] + [v.numpy() for v in model.V.table.values]
                same = np.array_equal(copies[0], copies[1]) and np.array_equal(copies[2], copies[3])
                out["copies_equal"] = bool(same)
                out["max_norm"] = float(max(np.linalg.norm(c, axis=1).max() for c in copies))
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["default_replicas"] == 1 and out["mirrored_replicas"] == 2
    assert out["copies_equal"] and out["max_norm"] <= 3.0 + 1e-4
    assert out["default"] > 0.3 and abs(out["mirrored"] - out["default"]) <= TOLERANCE, out


@pytest.mark.parametrize("spec", [None, "sigmoid", "linear-sigmoid:alpha=1,beta=0.25", "topk:k=3", "lowrank",
                                  "matrix"])
def test_training_steps_compile_with_xla(spec):
    split = load_dataset("corel5k")
    config = ModelConfig(dimension=16, num_negatives=8, affinity=spec)
    precision = {}
    for jit in (False, True):
        result = fit(split.train, config, TrainConfig(epochs=1, verbose=0, bucketing=False, jit_compile=jit))
        assert result.model.jit_compile is jit and np.isfinite(result.history["loss"][0])
        precision[jit] = evaluate_model(result.model.score, split)["metrics"]["precision@1"]
    # The same stateless negatives and batches: XLA trains the same model, up to float error.
    assert precision[True] == pytest.approx(precision[False], abs=0.01), precision


@pytest.mark.parametrize("args, message", [
    (["--strategy", "multiworker"], "needs TF_CONFIG"),
    (["--strategy", "parameter-server"], "not supported yet"),
])
def test_cli_strategies_fail_clearly(args, message):
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--epochs", "1", *args],
                          capture_output=True, text=True, env={k: v for k, v in ENV.items() if k != "TF_CONFIG"},
                          timeout=300)
    assert proc.returncode == 2 and message in proc.stderr
