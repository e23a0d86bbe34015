"""The peers the benchmarks measure awe-tf against, found before any work: LightFM runs in a
Python of its own (``--lightfm-python``), which must have lightfm 1.17 (see warp_throughput.py
for how to install it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def check_lightfm(python: str) -> str | None:
    """Why ``python`` cannot run the LightFM side (a missing program, no lightfm 1.17 or scipy
    there), in one line for a usage error; None where it can."""
    if not (Path(python).is_file() or shutil.which(python)):
        return f"--lightfm-python {python}: no such program"
    try:
        proc = subprocess.run([python, "-c", "import scipy, lightfm; print(lightfm.__version__)"], capture_output=True,
                              text=True)
    except OSError as error:  # not executable, not a program
        return f"--lightfm-python {python}: cannot run it ({error.strerror or error})"
    version = proc.stdout.strip()
    if proc.returncode != 0 or not version.startswith("1.17"):
        return (f"--lightfm-python {python}: needs a Python with lightfm 1.17 and scipy (see "
                f"benchmarks/warp_throughput.py), got {version or ''.join(proc.stderr.strip().splitlines()[-1:])}")
    return None
