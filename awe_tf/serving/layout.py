"""The TF Serving directory layout ``<base>/<name>/<version>/``, written atomically.

A version is written under a hidden temporary name beside its final one and renamed into place
when complete, so a server polling ``<base>/<name>`` (TF Serving reads only all-digit names)
never sees a half-written version. Versions only increase; older ones can be pruned.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

TEMPORARY_PREFIX = ".partial-"


def versions(model_dir) -> list[int]:
    """The complete versions under ``model_dir``, ascending."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def latest(model_dir) -> Path:
    """The newest version directory of ``model_dir``."""
    if not Path(model_dir).exists():
        raise FileNotFoundError(f"{model_dir} does not exist")
    found = versions(model_dir)
    if not found:
        raise FileNotFoundError(_not_an_export(Path(model_dir)))
    return Path(model_dir) / str(found[-1])


def exports_below(path) -> list[Path]:
    """The folders of the SavedModels (``saved_model.pb``) at ``path`` or up to two folders below
    it: an export's version, an export (``NAME/1``), the folder exports were written into
    (``BASE/NAME/1``)."""
    path = Path(path)
    if not path.is_dir():
        return []
    return sorted(found.parent for pattern in ("saved_model.pb", "*/saved_model.pb", "*/*/saved_model.pb")
                  for found in path.glob(pattern))


def _not_an_export(path: Path) -> str:
    """Why ``path``, a folder with no versions, is no export, and what to give instead where it is
    something a user might take for one: a trained model (a run's folder or a saved model), or the
    folder exports were written into."""
    from awe_tf.models.saving import CONFIG_FILE  # (saving imports TensorFlow: only for this message)
    from awe_tf.runs import RUN_MODEL

    if (path / CONFIG_FILE).exists() or (path / RUN_MODEL / CONFIG_FILE).exists():
        return (f"{path} is a trained model (a run's folder or a saved model), not an export: export it first, "
                f"`awe-tf export {path} BASE --name NAME`, and give BASE/NAME (or BASE/NAME-portable)")
    names = sorted({below.relative_to(path).parts[0] for below in exports_below(path)
                    if len(below.relative_to(path).parts) == 2})
    if names:
        listed = ", ".join(map(repr, names[:-1])) + " and " + repr(names[-1]) if len(names) > 1 else repr(names[0])
        return f"{path} holds the exports {listed}, not one export: give one of them, e.g. {path / names[0]}"
    return f"{path} holds no model versions (no all-digit subdirectories)"


def resolve(path) -> Path:
    """A SavedModel directory: ``path`` itself, or the newest version under ``<base>/<name>``."""
    path = Path(path)
    return path if (path / "saved_model.pb").exists() else latest(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned(model_dir) -> list[Path]:
    """Delete temporary directories left by exports whose process has died."""
    removed = []
    for path in Path(model_dir).glob(TEMPORARY_PREFIX + "*"):
        try:
            pid = int(path.name.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def next_version(model_dir, version: int | None = None, keep: int | None = None) -> int:
    """The version a new export of ``model_dir`` gets: ``version``, checked to be newer than every
    existing one, or one more than the newest (``keep`` is checked too)."""
    existing = versions(model_dir)
    if version is None:
        version = existing[-1] + 1 if existing else 1
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    if existing and version <= existing[-1]:
        raise ValueError(f"version {version} is not newer than the existing version {existing[-1]} in {model_dir}")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    return version


def write_version(model_dir, write: Callable[[Path], None], version: int | None = None,
                  keep: int | None = None) -> Path:
    """Run ``write(directory)`` into a temporary directory, then rename it to ``<version>``.

    Args:
        model_dir: ``<base>/<name>``; created if missing.
        write: fills the directory it is given (SavedModel, assets.extra, ...).
        version: the version number; default one more than the newest. It must be newer than every
            existing version (servers load the highest number).
        keep: keep only this many newest versions after writing (None: keep all).

    Returns:
        The final version directory.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned(model_dir)
    version = next_version(model_dir, version, keep)
    temporary = model_dir / f"{TEMPORARY_PREFIX}{version}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write(temporary)
        final = model_dir / str(version)
        os.rename(temporary, final)  # atomic within one file system; fails if it already exists
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if keep is not None:
        for old in versions(model_dir)[:-keep]:
            shutil.rmtree(model_dir / str(old), ignore_errors=True)
    return final
