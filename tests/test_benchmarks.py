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
