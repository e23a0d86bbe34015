"""The benchmark scripts run as their docstrings say (their figures are not checked here: speed
belongs to benchmarks/, on demand)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_affinity_scoring_gives_a_row_for_every_affinity(data_dir):
    """Every spec scores, those built from the training set included (the cluster affinity,
    which is not a neighbour affinity, stopped the script)."""
    script = ROOT / "benchmarks" / "affinity_scoring.py"
    tree = ast.parse(script.read_text())  # read, not imported: benchmarks/ stays off sys.path
    specs = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", None) == "SPECS")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "affinity_scoring.py"), "--dataset", "emotions",
                           "--dimension", "4", "--repeats", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split()[0] for line in proc.stdout.splitlines()[3:] if line.strip()]
    assert rows == specs


def test_warp_throughput_refuses_bad_arguments_before_any_work():
    """A LightFM Python that is not there, no epochs, or a setting awe-tf refuses stop with a usage
    error (exit 2), before LightFM's run; the README's initial scale is a flag."""
    script = str(ROOT / "benchmarks" / "warp_throughput.py")
    for argv, said in ((["--lightfm-python", "/no/such/python"], "no such program"),
                       (["--epochs", "0"], "--epochs must be at least 1"),
                       (["--init-scale", "-1"], "init_scale")):
        proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)


def test_quality_refuses_unknown_data_and_no_seeds_before_any_run(data_dir):
    script = str(ROOT / "benchmarks" / "quality.py")
    for argv, said in ((["--datasets", "emotions", "nosuch"], "unknown data set 'nosuch'"),
                       (["--seeds", "0"], "--seeds must be at least 1")):
        proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)
