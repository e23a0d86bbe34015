"""Where a training run's peak memory is reached: resident memory through the phases of one
``scale.py`` method on its synthetic set (``benchmarks/synthetic.py``), in this process.

Each phase is a stretch of the run (the data generated, the model built, the inputs transformed,
the engine set up, each epoch, the tables handed back, scoring, ranking); for each it prints the resident
memory as it began and ended, the highest seen while it ran (sampled every few milliseconds), and by
how much it raised the process's peak (read from the kernel's high-water mark as the phase began
and ended, so a spike shorter than the sampling still counts). Sizes are also given as multiples of
the model's bytes (U + V + optimiser state + input CSR, as ``scale.py`` counts them), so that the
phase that sets ``scale.py``'s peak/model ratio, and by how much, can be read off.

    python benchmarks/memory_phases.py --items 1000000 --users 1000000 [--method "native WSABIE"]
                                       [--epochs N --score-each-epoch] [--top-k 10]

Phases are marked by wrapping the library's functions in this process only (``fit``'s model
build, ``AWEModel.prepare``, ``compile``, the native engine's set-up, load, store and release) and
by Keras callbacks for the epochs; the library itself is not changed. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import awe_tf  # noqa: E402,F401  (Keras 2 as tf.keras, before TensorFlow loads)


class Phases:
    """Resident memory through the phases of a run. Each piece of a phase is a row: resident
    memory at its start and end (bytes), the highest sampled while it ran (``highest``), and the
    process's high-water mark as it began and ended (``peak_before``, ``peak_after``). Phases
    nest: an inner one is a row of its own, and the outer one pauses (a row) and resumes (another
    row of the same name) around it.

    Args:
        current_rss: ``() -> bytes`` resident now.
        peak_rss: ``() -> bytes`` the process's high-water mark so far.
        interval: seconds between samples of ``current_rss`` (a background thread).
    """

    def __init__(self, current_rss, peak_rss, interval: float = 0.005):
        self.current_rss, self.peak_rss = current_rss, peak_rss
        self.rows: list[dict] = []
        self.stack: list[dict] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sampler = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self.sampler.start()

    def _sample(self, interval: float) -> None:
        while not self.done.wait(interval):
            with self.lock:  # read under the lock: a phase that begins meanwhile does not get the last one's figure
                if self.stack:
                    self.stack[-1]["highest"] = max(self.stack[-1]["highest"], self.current_rss())

    def _open(self, name: str) -> dict:
        rss = self.current_rss()
        return {"phase": name, "start": rss, "highest": rss, "peak_before": self.peak_rss(),
                "began": time.perf_counter()}

    def _close(self, row: dict) -> None:
        rss = self.current_rss()
        row.update(end=rss, highest=max(row["highest"], rss), peak_after=self.peak_rss(),
                   seconds=time.perf_counter() - row["began"])
        self.rows.append(row)

    def begin(self, name: str) -> None:
        with self.lock:
            if self.stack:  # the outer phase pauses: what it held so far is one row
                self._close(self.stack[-1])
            self.stack.append(self._open(name))

    def end(self) -> None:
        with self.lock:
            self._close(self.stack.pop())
            if self.stack:  # the outer phase resumes as a new row of the same name
                self.stack[-1] = self._open(self.stack[-1]["phase"])

    def wrap(self, owner, attribute: str, name: str) -> None:
        """Make ``owner.attribute`` (a function or method) a phase of its own."""
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            self.begin(name)
            try:
                return original(*args, **kwargs)
            finally:
                self.end()

        setattr(owner, attribute, wrapped)

    def close(self) -> None:
        """End every open phase and stop sampling."""
        while self.stack:
            self.end()
        self.done.set()


def merged(rows: list[dict]) -> list[dict]:
    """One row per phase, in order of first appearance, from its pieces (an outer phase cut where
    a nested one runs, and a phase run many times, as the native engine's store at each epoch's
    end): seconds and peak rises (``rise``) summed, the start of the first piece, the end of the
    last, the highest of all."""
    out: dict[str, dict] = {}
    for row in rows:
        # Linux's high-water mark may read a few pages lower a moment later (per-thread counters)
        rise = max(row["peak_after"] - row["peak_before"], 0)
        if row["phase"] not in out:
            out[row["phase"]] = {**row, "rise": rise}
            continue
        kept = out[row["phase"]]
        kept.update(end=row["end"], highest=max(kept["highest"], row["highest"]),
                    seconds=kept["seconds"] + row["seconds"], rise=kept["rise"] + rise, peak_after=row["peak_after"])
    return list(out.values())


def peak_phase(rows: list[dict]) -> str | None:
    """The phase in which the process reached its peak: the first piece, among those that raised
    the high-water mark, to end with the highest one. None if no piece raised it (the peak came
    before the first phase or between two)."""
    top = max(row["peak_after"] for row in rows)
    return next((row["phase"] for row in rows if row["peak_after"] == top > row["peak_before"]), None)


def run(args) -> tuple[list[dict], dict, float]:
    """Train ``args.method`` as ``scale.py``'s worker does, phase by phase.

    Returns:
        ``(rows, model bytes by part, held-out P@10)``: the pieces of the phases (:class:`Phases`).
    """
    from _memory import current_rss, peak_rss

    phases = Phases(current_rss, peak_rss)
    phases.begin("TensorFlow started")
    import importlib

    import tensorflow as tf
    from scale import _training_and_sample, configs, held_out_precision, model_bytes

    from awe_tf.models import AWEModel
    from awe_tf.native import NativeWarp

    fit_module = importlib.import_module("awe_tf.training.fit")  # the module: awe_tf.training.fit is the function
    (tf.ones([8, 8]) @ tf.ones([8, 8])).numpy()
    phases.end()
    phases.begin("data generated")
    train, test = _training_and_sample(args)
    phases.end()

    for owner, attribute, name in ((fit_module, "build_model", "model built"),
                                   (AWEModel, "prepare", "inputs transformed"),
                                   (AWEModel, "compile", "compiled (optimiser state)"),
                                   (NativeWarp, "__init__", "native engine set up"),
                                   (NativeWarp, "load", "native tables loaded"),
                                   (NativeWarp, "store", "native tables stored"),
                                   (NativeWarp, "release", "native tables released")):
        phases.wrap(owner, attribute, name)

    class Epochs(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            phases.begin(f"epoch {epoch + 1}")

        def on_epoch_end(self, epoch, logs=None):
            phases.end()

    class Scoring(tf.keras.callbacks.Callback):  # as scale.py's worker scores: after each epoch, inside fit
        def on_epoch_end(self, epoch, logs=None):
            phases.begin(f"scoring after epoch {epoch + 1}")
            held_out_precision(self.model, test)
            phases.end()

    model_config, train_config = configs(args, args.method, args.epochs)
    phases.begin("fit, other")
    result = fit_module.fit(train, model_config, train_config,
                            callbacks=[Epochs()] + ([Scoring()] if args.score_each_epoch else []))
    phases.end()
    phases.begin("scoring (P@10)")
    held_out = held_out_precision(result.model, test)
    phases.end()
    if args.top_k:
        phases.begin(f"ranking (top_k, k = {args.top_k})")
        result.model.top_k(test.test.X, k=args.top_k)
        phases.end()
    phases.close()
    return phases.rows, model_bytes(result.model, train.X), held_out


def report(rows: list[dict], parts: dict, precision: float, args) -> str:
    """The phases as a table (:func:`merged`), the peak and the phase that reached it."""
    def gb(n):
        return f"{n / 2**30:.2f}"

    model = sum(parts.values())
    peak = max(row["peak_after"] for row in rows)
    lines = [f"{args.method}: {args.users:,} users, {args.items:,} items, d = {args.dimension}, {args.epochs} "
             f"epoch(s); model {gb(model)} GB (" + ", ".join(f"{k} {gb(v)}" for k, v in parts.items()) + ")", ""]
    head = (f"{'phase':<30}{'seconds':>8}{'start GB':>10}{'end GB':>8}{'highest GB':>12}{'peak rise GB':>14}"
            f"{'highest/model':>15}")
    lines += [head, "-" * len(head)]
    for row in merged(rows):
        rise = gb(row["rise"]) if row["rise"] >= 2**20 else ""
        lines.append(f"{row['phase']:<30}{row['seconds']:>8.1f}{gb(row['start']):>10}{gb(row['end']):>8}"
                     f"{gb(row['highest']):>12}{rise:>14}{row['highest'] / model:>15.2f}")
    where = peak_phase(rows)
    lines += ["", f"peak {gb(peak)} GB = {peak / model:.2f}x the model, "
                  + (f"reached in '{where}'" if where else "reached outside the marked phases")
                  + f"; held-out P@10 {precision:.4f}",
              "highest: the most resident memory sampled during the phase (every 5 ms); peak rise: how much the "
              "phase raised the process's high-water mark (VmHWM), which no sampling misses. A phase's figures "
              "leave out the phases nested in it (the native engine's load and store inside an epoch or the fit)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    from scale import METHODS, PARAMETER_SERVER, check_arguments, set_arguments

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="native WSABIE", choices=[m for m in METHODS if m != PARAMETER_SERVER])
    parser.add_argument("--score-each-epoch", action="store_true",
                        help="also score P@10 after each epoch inside fit, as scale.py does")
    parser.add_argument("--top-k", type=int, default=0, metavar="K",
                        help="then rank the held-out users' K best items with model.top_k, as a phase of its own")
    set_arguments(parser, epochs=1)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if not Path("/proc/self/status").exists():
        raise SystemExit("memory_phases.py reads /proc: Linux only")
    print(report(*run(args), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
