"""What the commands share: the usage error, the whole-number option types, output paths
checked before any work, the monitored metric, the refusal of --iterations and the settings'
configs."""

from __future__ import annotations

import _thread
import argparse
import dataclasses
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from awe_tf.config import ModelConfig, TrainConfig


def whole_number(text: str) -> int:
    """An option's whole number (argparse's ``type``)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def at_least(minimum: int) -> Callable[[str], int]:
    """The type of an option that takes a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        value = whole_number(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {value}")
        return value

    return parse


class UsageError(ValueError):
    """A command line that cannot work as given (the message names the flags)."""


PLOT_FORMATS = (".png", ".pdf", ".svg")  # figures a command draws, by the file's extension


def writable_directory(path: Path, flag: str) -> Path:
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


LOCK = ".awe-tf.lock"  # in a run's directory while a command writes it
_held = {}  # the lock files this process holds, by path, open until its command ends


def hold_directory(path: Path, flag: str, lock: str = LOCK, held: str = "") -> None:
    """Hold the directory ``path`` for this command: an advisory lock on its ``lock`` file (one
    per search of ``awe-tf tune``'s, in their shared folder; :data:`LOCK` for a run's directory),
    which the system lets go when the process ends, however it ends (:func:`release_directories`
    at the command's end). Another process holding it is a UsageError naming ``flag``: two runs
    writing one directory would resume from each other's checkpoints and write over each other's
    results. Holding it again is nothing; a file system without locks leaves it unheld. ``held``:
    what is held, said after the path where another process holds it (`` (search NAME)``)."""
    import fcntl

    path = Path(path).resolve() / lock
    if path in _held:
        return
    try:
        handle = open(path, "a+")  # held past this function: release_directories closes it
    except OSError as error:  # a read-only folder (a finished run's, kept so)
        raise UsageError(f"{flag} {path.parent}: cannot write there ({error.strerror})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise UsageError(f"{flag} {path.parent}{held}: another awe-tf command"
                         f"{f' (process {holder})' if holder else ''} is writing there; wait for it to end, or give "
                         f"another {flag}") from None
    except OSError:  # no locks there (some network file systems)
        handle.close()
        return
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    _held[path] = handle


def release_directories() -> None:
    """Let go of the directories this process holds (:func:`hold_directory`)."""
    while _held:
        _held.popitem()[1].close()


def output_file(path: str | None, flag: str = "--output", run: Path | None = None) -> Path | None:
    """``path`` as a file this process can write (its folder made if missing), or None; else a
    UsageError naming ``flag``, checked before any work. In ``run``, where it is a run's directory
    (it holds ``metrics.json`` or a stage's folder), not the run's own files (:func:`refuse_run_part`)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give the JSON file to write")
    refuse_run_part(path, run, flag, "give another file")
    writable_directory(path.resolve().parent, flag)
    return path


def refuse_run_part(path: Path, run: Path | None, flag: str, remedy: str) -> None:
    """A UsageError naming ``flag`` where ``path`` is one of a run's own files: in ``run``, a run's
    directory (it holds ``metrics.json`` or a stage's folder), or in any folder above ``path``
    that holds a finished run (``metrics.json``): its ``metrics.json`` and ``features.json``,
    which the run's other commands read, or anything in its stages' and model's folders (a later
    train refuses them as files no run wrote)."""
    from awe_tf import runs

    files, folders = (runs.METRICS, runs.FEATURES), (runs.RUN_MODEL, *runs.STAGES)
    resolved = Path(path).resolve()
    above = [folder for folder in resolved.parents if (folder / runs.METRICS).is_file()]
    for folder in ([Path(run)] if run is not None else []) + above:
        if not resolved.is_relative_to(folder.resolve()):
            continue
        inside = resolved.relative_to(folder.resolve())
        if any((folder / part).exists() for part in (runs.METRICS, *runs.STAGES)) and inside.parts \
                and inside.parts[0] in files + folders:
            raise UsageError(f"{flag} {path} would write into {folder}'s own files (its {' and '.join(files)} and its "
                             f"folders {', '.join(folders)} hold the run, which evaluate, export and diagnose read); "
                             f"{remedy}")


def monitor_of(args, split) -> str:
    """The validation metric to watch: ``--monitor``, else the protocol's (P@10 for recommendation,
    P@1 otherwise)."""
    from awe_tf.data.protocols import default_monitor

    return args.monitor or default_monitor(split.train)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler's preemption), read as Ctrl-C is: the command
    stops where it is, keeping what it finished, and says how to go on."""


def _terminated(signum, frame):
    raise Terminated()


def _delivered_again(unraisable, hook):
    """``sys.unraisablehook`` that gives an interruption Python dropped back to the main thread.

    A signal's handler runs wherever the main thread is; inside a finalizer (a ``__del__``, a
    thread pool's shutdown) Python cannot raise what it raised, prints "Exception ignored in" and
    goes on, and the command would run to its end after a Ctrl-C or SIGTERM. The signal is sent
    to the main thread again, from another thread a moment later, so that it arrives once the
    finalizer and this hook are done (one that lands in a finalizer again comes back here); a
    signal, not a scheduled call, so that a main thread waiting on a lock wakes as it did for the
    first. Anything else, an interruption dropped in another thread (which no signal raised) or
    one at the interpreter's exit (no thread can start), goes to the hook there was before."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        signum = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
        again = threading.Timer(0.01, _send_again, (signum,))
        again.daemon = True  # nothing to wait for at exit
        try:
            again.start()
            return
        except RuntimeError:  # the interpreter is shutting down
            pass
    hook(unraisable)


def _send_again(signum: int) -> None:
    """Send ``signum`` to the main thread, if a handler of Python's still takes it (the command
    has not put the system's default back meanwhile, which would end the process unannounced);
    where threads cannot be sent signals (Windows), as a call Python schedules there."""
    if not callable(signal.getsignal(signum)):
        return
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident, signum)
    else:
        _thread.interrupt_main(signum)


def catch_sigterm() -> None:
    """Have SIGTERM stop this process as :class:`Terminated` (from the main thread only; elsewhere
    nothing changes), and Ctrl-C or SIGTERM caught inside a finalizer arrive again outside it
    (:func:`_delivered_again`). Call it again once a ``tf.distribute`` strategy is made:
    TensorFlow's cluster runtime (multi-worker) takes SIGTERM for itself to note a preemption, and
    would leave the process running."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
        if getattr(sys.unraisablehook, "func", None) is not _delivered_again:
            sys.unraisablehook = functools.partial(_delivered_again, hook=sys.unraisablehook)


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, with an s where ``n`` is not 1."""
    return f"{n} {word}{'s' * (n != 1)}"


def held_out_rows(task: str) -> str:
    """What the rows of a ``task``'s test part are called: users (recommendation) or examples."""
    from awe_tf.data.dataset import RECOMMENDATION

    return "users" if task == RECOMMENDATION else "examples"


def scored_rows_line(report: dict, task: str) -> str:
    """The line under a test table: the rows of the test part and those left out of the means
    (for recommendation, users with no held-out item: too few items to hold any out, or, with a
    test file of its own, every test interaction a training one)."""
    rows = held_out_rows(task)
    why = "no held-out item" if rows == "users" else "no positive label"
    return f"test {rows}: {report['n_test']} (left out, {why}: {report['n_excluded']})"


def by_training_items_line(groups: dict | None, prior: bool = True, popularity: dict | None = None) -> str | None:
    """The line under a test table that gives the model's P@1 and P@10 apart for the test users
    with training items and those without (:func:`~awe_tf.evaluation.by_training_items`), or None;
    ``prior``: whether the model has a label prior to rank those without by (not with --no-bias);
    ``popularity``: the popularity baseline's groups, given beside the model's (the users without
    training items are where a model is closest to it)."""
    if not groups:
        return None

    def scores(group):
        return ", ".join(f"P@{k} {group[f'precision@{k}']:.4f}" for k in (1, 10) if f"precision@{k}" in group)

    def said(name):
        beside = (popularity or {}).get(name)
        return scores(groups[name]) + (f" (popularity {scores(beside)})" if beside else "")

    return (f"the model on the {groups['with']['users']} test users with training items: {said('with')}; on the "
            f"{groups['without']['users']} with none ({empty_row_ranking(prior)}): {said('without')}")


def empty_row_ranking(prior: bool) -> str:
    """How a model ranks a row with nothing it uses (a user with no training item): by its label
    prior, the bias feature's row, or, without one (--no-bias), by label order."""
    return "ranked by what it learnt of the items alone" if prior else "ranked by item order: no label prior, --no-bias"


def check_monitor_fits(args, monitor: str, n_labels: int) -> None:
    """:func:`~awe_tf.config.check_monitor`, whose error, for the default monitor (not the user's
    choice), says it is the default and what to give instead."""
    from awe_tf.config import SettingError, check_monitor

    try:
        check_monitor(monitor, n_labels)
    except SettingError:
        if args.monitor:
            raise
        raise UsageError(f"the default --monitor, {monitor}, needs at least {monitor.split('@')[1]} labels and the "
                         f"data has {n_labels}: give --monitor precision@K with K at most {n_labels}") from None


def iterations_refused() -> UsageError:
    """The error for --iterations given with an affinity that is not built from the training set."""
    from awe_tf.affinities import REGISTRY

    return UsageError("--iterations is for affinities built from the training set ("
                      + ", ".join(name for name, known in REGISTRY.items() if known.iterative) + ")")


# The settings that commands give by flags named after their fields (awe_tf.cli.parser.add_setting_args, and
# --seed): what configs_of reads from the parsed arguments; a command passes anything else it sets itself.
SETTING_FIELDS = ("dimension", "margin", "num_negatives", "loss", "normalisation", "max_norm", "init_scale",
                  "input_bias", "epochs", "learning_rate", "optimizer", "pairs_per_batch", "min_steps_per_epoch",
                  "patience", "engine", "threads", "seed")


def configs_of(args: argparse.Namespace, model: dict | None = None,
               train: dict | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The model's and training's settings of a command.

    Args:
        args: the parsed command line; its :data:`SETTING_FIELDS` that it has and that are not
            None give those fields (the others keep the configs' defaults).
        model, train: more fields of ``ModelConfig`` and ``TrainConfig`` (name -> value), on top:
            what the command works out itself (the affinity, the monitored metric from the data).

    Returns:
        ``(ModelConfig, TrainConfig)``.
    """
    from awe_tf.config import ModelConfig, TrainConfig

    given = {name: getattr(args, name) for name in SETTING_FIELDS if getattr(args, name, None) is not None}

    def config(kind, extra):
        names = {field.name for field in dataclasses.fields(kind)}
        return kind(**{name: value for name, value in given.items() if name in names}, **(extra or {}))

    return config(ModelConfig, model), config(TrainConfig, train)


def reproduce_output(args) -> Path:
    """Where ``awe-tf reproduce`` writes: --output, else ``runs/reproduce-TABLE``."""
    return Path(args.output or f"runs/reproduce-{args.table}")


def import_anywhere(module: str) -> str:
    """``--import MODULE`` as a flag that imports the same module from any folder (a command
    ``tune`` prints, run elsewhere).

    Args:
        module: ``--import``'s value as given, once imported.

    Returns:
        A file's path made absolute; a top-level module found in the current folder named by
        its file's absolute path (imported under the same name, so a saved model names the same
        module); an installed or dotted module as given (a package of the current folder's
        modules still needs that folder).
    """
    if module.endswith(".py") or os.sep in module:
        return os.path.abspath(module)
    own = Path.cwd() / f"{module}.py"
    found = getattr(sys.modules.get(module), "__file__", None)
    if "." not in module and own.is_file() and found is not None and Path(found).resolve() == own.resolve():
        return str(own.resolve())
    return module


def note_unpublished(run: Path | None) -> None:
    """Say where a run holds training newer than the model it published, which the commands that
    read the run's model use (:func:`~awe_tf.runs.unpublished_training_note`)."""
    from awe_tf.runs import unpublished_training_note

    note = unpublished_training_note(run)
    if note:
        print(note)
