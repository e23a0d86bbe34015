"""The native CPU engine: sequential WARP in C, one pair at a time, on CPU threads, for WSABIE,
the AWE models whose score is a function of the linear score alone (linear sigmoid), those
whose G is one number per example and label, built from the training set (k-NN, RBF, cluster;
the neighbour vote), and top-k with a fixed rest.

The TensorFlow graph step (``TrainConfig(engine="graph")``, the default) scores batches of pairs
with static shapes, as TPUs and ``tf.distribute`` need. On a CPU that costs a fixed K + 3 row
gathers per pair and the overhead of some twenty ops per step; ``engine="native"`` instead runs
the paper's per-pair loop (Algorithm 1, with early exit at the first violator) compiled from
``warp.c``: single machine, same variables, optimiser state, callbacks and checkpoints. See
``warp.c`` for exactly what it computes.

The C source is compiled on first use with the system's C compiler (``cc``, or ``$CC``) into a
cache directory (``$AWE_TF_CACHE``, default ``~/.cache/awe-tf``), once per source version,
compiler flags and CPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("warp.c")
# -march=native first (vector instructions of this CPU); without it where the compiler lacks it.
FLAGS = (("-O3", "-fno-math-errno", "-march=native"), ("-O3", "-fno-math-errno"))
_LIBRARY = None


def _cache_dir() -> Path:
    return Path(os.environ.get("AWE_TF_CACHE") or Path.home() / ".cache" / "awe-tf")


def _cpu() -> str:
    """What -march=native depends on: the CPU's feature flags where Linux lists them (a library
    built for one CPU may not run on another that shares the cache directory)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compile(target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise RuntimeError("engine='native' needs a C compiler (cc, gcc or clang, or $CC) to build "
                           f"{SOURCE.name}; install one, or train with engine='graph' (--engine graph)")
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for flags in FLAGS:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            command = [compiler, *flags, "-fPIC", "-shared", "-pthread", str(SOURCE), "-o", str(out), "-lm"]
            try:
                proc = subprocess.run(command, capture_output=True, text=True)
            except OSError as error:  # $CC names no program
                errors.append(f"$ {' '.join(command)}\n{error}")
                continue
            if proc.returncode == 0:
                out.replace(target)  # atomic: a concurrent build never sees half a library
                return
            errors.append(f"$ {' '.join(command)}\n{proc.stderr.strip()}")
    raise RuntimeError("could not compile the native WARP engine; train with engine='graph' (--engine graph), or fix:\n"
                       + "\n".join(errors))


def library() -> ctypes.CDLL:
    """The compiled engine, built on first use (see the module docstring)."""
    global _LIBRARY
    if _LIBRARY is None:
        key = hashlib.sha256(SOURCE.read_bytes() + repr((FLAGS, platform.machine(), _cpu())).encode()).hexdigest()[:16]
        target = _cache_dir() / f"awe_warp_{key}.so"
        if not target.exists():
            _compile(target)
        lib = ctypes.CDLL(str(target))
        i64, i32, f32, f64 = (np.ctypeslib.ndpointer(t, flags="C_CONTIGUOUS")
                              for t in (np.int64, np.int32, np.float32, np.float64))
        opt_f32 = opt_i32 = opt_i64 = ctypes.c_void_p  # an Adagrad accumulator or G's rows, or None
        lib.awe_warp_train.argtypes = [
            i64, i32, f32, i64, i32, i32, ctypes.c_int64, ctypes.c_int, ctypes.c_int64,
            f32, opt_f32, f32, opt_f32, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
            ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_float,
            ctypes.c_float, ctypes.c_float, ctypes.c_float, ctypes.c_float,
            opt_i64, opt_i32, opt_f32, ctypes.c_float, ctypes.c_float, ctypes.c_int,  # G's rows, or None
            ctypes.c_int, ctypes.c_float,  # top-k's k and rest
            f32, ctypes.c_uint64, ctypes.c_int, f64,
        ]
        lib.awe_warp_train.restype = ctypes.c_int
        _LIBRARY = lib
    return _LIBRARY


def default_threads() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(asked: int) -> int:
    """The threads a setting of ``asked`` gives (``TrainConfig.threads``, ``--threads``): 0, every
    core this process may use."""
    return asked or default_threads()


from awe_tf.native.engine import NativeWarp  # noqa: E402

__all__ = ["NativeWarp", "default_threads", "library", "threads_for"]
