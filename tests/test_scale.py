"""benchmarks/scale.py end to end on a small synthetic set: each method trains in its own
process, learns the latent groups (above popularity), and its memory is reported."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_scale_benchmark_runs_and_every_method_learns(tmp_path):
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--items", "3000", "--users", "3000",
                           "--epochs", "2", "--eval-users", "500", "--threads", "1", "--json", str(out),
                           "--methods", "native WSABIE", "graph WSABIE", "native AWE linear sigmoid",
                           "parameter-server WSABIE", "--ps-epochs", "2"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"native WSABIE", "graph WSABIE", "native AWE linear sigmoid", "parameter-server WSABIE"}
    for name, r in results.items():
        # parameter-server workers update asynchronously (stale gradients): above popularity is enough there
        factor = 1.0 if name == "parameter-server WSABIE" else 1.5
        assert r["precision@10"] > factor * r["popularity_precision@10"], name
        assert r["peak_rss_bytes"] >= r["rss_with_data_bytes"] > 0 and len(r["epoch_seconds"]) == 2
        assert r["peak_rss_bytes"] > r["rss_after_imports_bytes"] > 0
        # P@10 after every epoch (one figure, after training, for the asynchronous method)
        assert len(r["history"]) == (1 if name == "parameter-server WSABIE" else 2)
        assert r["history"][-1] == r["precision@10"]
        assert r["model_bytes"]["U + V"] == 4 * 64 * (3000 + 1 + 3000)  # items as features, the bias row, labels
    assert all(column in proc.stdout for column in ("peak/model", "(peak-TF-data)/model", "P@10 after each epoch"))
    cluster = results["parameter-server WSABIE"]["cluster"]
    assert cluster == {"workers": 2, "parameter servers": 2, "U shards": 2, "V shards": 2}  # U and V really sharded
    assert "pairs/s per worker" in proc.stdout


def test_bad_arguments_are_usage_errors_before_any_work(capsys, other_lightfm):
    """Sizes the synthetic set cannot take, counts below 1, a setting awe-tf refuses and a LightFM
    Python that is not there stop at once (exit 2, one line), not after LightFM's run or in a
    traceback; memory_phases.py shares the check."""
    import pytest

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import memory_phases
    import scale

    for argv, said in ((["--items", "10"], "items >= 2 * per_user; got users 100000, items 10"),
                       (["--epochs", "0"], "--epochs must be at least 1"),
                       (["--eval-users", "0"], "--eval-users must be at least 1"),
                       (["--learning-rate", "-1"], "learning_rate"),
                       (["--lightfm-python", "/no/such/python"], "--lightfm-python /no/such/python: no such program"),
                       (["--lightfm-python", other_lightfm], "warp_throughput.py), got 1.16")):
        for main in (scale.main, memory_phases.main):
            if main is memory_phases.main and argv[0] == "--lightfm-python":
                continue
            with pytest.raises(SystemExit) as stopped:
                main(argv)
            assert stopped.value.code == 2 and said in capsys.readouterr().err, (main, argv)


def test_time_to_a_precision_counts_training_seconds_until_the_first_epoch_that_reaches_it():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from scale import time_to

    assert time_to([0.05, 0.08, 0.07], [2.0, 3.0, 4.0], 0.08) == 5.0
    assert time_to([0.05, 0.08], [2.0, 3.0], 0.04) == 2.0
    assert time_to([0.05, 0.08], [2.0, 3.0], 0.09) is None


def test_a_worker_reports_its_own_peak_memory_not_its_parents():
    """Each method runs in a process of its own, started by the benchmark's; the worker's peak is
    its own (getrusage's carries over from the parent through exec)."""
    import numpy as np
    import pytest

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _memory import current_rss, peak_rss

    if not Path("/proc/self/status").exists():
        pytest.skip("the per-process figures come from Linux's /proc")
    held = np.ones(300 * 2**20 // 8)  # 300 MB in this, the parent, process
    code = "import sys; sys.path.insert(0, sys.argv[1]); from _memory import peak_rss; print(peak_rss())"
    child = int(subprocess.run([sys.executable, "-c", code, str(ROOT / "benchmarks")], capture_output=True,
                               text=True, check=True).stdout)
    assert peak_rss() >= current_rss() > held.nbytes
    assert 0 < child < 100 * 2**20  # a bare Python: a few megabytes, not the parent's hundreds


def test_the_memory_probe_finds_the_phase_that_raised_the_peak():
    """benchmarks/memory_phases.py's bookkeeping: a nested phase is a row of its own, the phase it
    interrupts one merged row, and a short allocation counts in the phase that made it, through
    the kernel's high-water mark even if no sample saw it."""
    import numpy as np
    import pytest

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _memory import current_rss, peak_rss
    from memory_phases import Phases, merged, peak_phase

    if not Path("/proc/self/status").exists():
        pytest.skip("the figures come from Linux's /proc")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the high-water mark back to what is resident now
    except OSError:
        pytest.skip("cannot reset the high-water mark here")
    phases = Phases(current_rss, peak_rss, interval=10.0)  # no sample in time: the high-water mark alone
    phases.begin("outer")
    phases.begin("allocates")
    block = np.ones(200 * 2**20 // 8)
    del block
    phases.end()
    phases.end()
    phases.close()
    rows = merged(phases.rows)
    assert [row["phase"] for row in rows] == ["outer", "allocates"]
    by_name = {row["phase"]: row for row in rows}
    assert by_name["allocates"]["rise"] > 150 * 2**20 and by_name["outer"]["rise"] < 50 * 2**20
    assert by_name["allocates"]["end"] < by_name["allocates"]["start"] + 100 * 2**20  # freed again
    assert peak_phase(phases.rows) == "allocates"


def test_the_peak_phase_is_the_first_to_reach_the_highest_mark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from memory_phases import peak_phase

    def row(phase, before, after):
        return {"phase": phase, "peak_before": before, "peak_after": after}

    # "a" comes within a page of the peak, "b" sets it, "c" reaches nothing new
    assert peak_phase([row("a", 100, 499), row("b", 499, 500), row("c", 500, 500)]) == "b"
    assert peak_phase([row("a", 100, 500), row("b", 500, 500)]) == "a"
    assert peak_phase([row("a", 500, 500), row("b", 500, 500)]) is None  # reached before the first phase
    assert peak_phase([row("a", 100, 200), row("b", 400, 400)]) is None  # reached between two phases


def test_the_memory_probe_runs_end_to_end():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory_phases.py"), "--items", "3000",
                           "--users", "3000", "--eval-users", "200", "--threads", "1", "--epochs", "2",
                           "--score-each-epoch", "--top-k", "5"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for phase in ("data generated", "model built", "inputs transformed", "native engine set up",
                  "compiled (optimiser state)", "native tables loaded", "epoch 1", "native tables stored",
                  "native tables released", "scoring (P@10)", "epoch 2", "scoring after epoch 2",
                  "ranking (top_k, k = 5)"):
        assert phase in proc.stdout, phase
    assert "x the model, reached in '" in proc.stdout
