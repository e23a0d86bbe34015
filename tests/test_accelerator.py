"""benchmarks/accelerator.py, the prepared GPU check, runs end to end on a CPU (--device cpu --smoke)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_accelerator_check_runs_on_a_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "accelerator.py"), "--device", "cpu", "--smoke",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "accelerator.json").read_text())
    rows = report["correctness"]
    assert {row["model"] for row in rows} == {"WSABIE", "linear sigmoid", "top-k", "low-rank matrix", "iterative k-NN"}
    assert {row["mode"] for row in rows} == {"default", "mirrored", "jit"}
    assert all(row["within_tolerance"] for row in rows)
    # With deterministic ops on one thread, the mirrored run over the CPU alone repeats the CPU run.
    assert all(row["device"] == row["cpu"] for row in rows if row["mode"] == "mirrored")
    assert all(0.1 < row["device"]["precision@1"] < 1 for row in rows)  # learnt: a random ranking gets about 0.01
    assert report["export"] == {"loaded_in_a_fresh_process": True, "top10_agreement": 1.0, "rows": 200}
    speed = report["speed"]
    synthetic = next(value for key, value in speed.items() if key.startswith("synthetic"))
    assert synthetic["graph_on_device_pairs_per_s"] > 0 and synthetic["native_all_cpu_cores_pairs_per_s"] > 0
    assert speed["scoring"]["labels"] == 10_000 and speed["scoring"]["device_queries_per_s"] > 0
    assert "skipped" in speed["ml-100k"]  # a smoke run measures the synthetic set only
    table = (tmp_path / "accelerator.md").read_text()
    assert "| iterative k-NN | jit |" in table and "scoring queries/s over 10,000 labels" in table
