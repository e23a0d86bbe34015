"""What the commands' checks share: the usage error, and output paths checked before any work."""

from __future__ import annotations

import os
from pathlib import Path


class UsageError(ValueError):
    """A command line that cannot work as given (the message names the flags)."""


PLOT_FORMATS = (".png", ".pdf", ".svg")  # figures a command draws, by the file's extension


def directory(path: Path, flag: str) -> Path:
    """``path`` as a directory this process can write to, made if missing; else a UsageError
    naming ``flag`` (checked before any work, so nothing is half-written)."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{flag} {path}: {parent} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".awe-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write there ({err.strerror})") from None
    return path


def output_file(path: str | None, flag: str = "--output", run: Path | None = None) -> Path | None:
    """``path`` as a file this process can write (its folder made if missing), or None; else a
    UsageError naming ``flag``, checked before any work. In ``run``, where it is a run's directory
    (it holds ``metrics.json`` or a stage's folder), not the run's own files: its ``metrics.json``,
    which the run's other commands read, and anything in its stages' and model's folders."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give the JSON file to write")
    if run is not None and path.resolve().is_relative_to(Path(run).resolve()):
        from awe_tf import runs
        from awe_tf.models.saving import RUN_MODEL

        own = (runs.METRICS, RUN_MODEL, *runs.STAGES)
        inside = path.resolve().relative_to(Path(run).resolve())
        if any((Path(run) / part).exists() for part in own[:1] + own[2:]) and inside.parts[0] in own:
            raise UsageError(f"{flag} {path} would write into {run}'s own files (its {runs.METRICS} and its "
                             f"folders {', '.join(own[1:])} hold the run, which evaluate, export and diagnose read); "
                             "give another file")
    directory(path.resolve().parent, flag)
    return path
