"""The ``awe-tf`` command: a thin layer over the library.

    awe-tf datasets
    awe-tf train [--dataset NAME | --train FILE [--test FILE] [--labels XML] [--format F]] [options]
    awe-tf evaluate [MODEL_DIR] [--served EXPORT] [--dataset NAME | --train FILE ...]
    awe-tf export MODEL_DIR BASE_DIR [--name NAME] [--dataset NAME | --train FILE ...]

Bad input (a flag, a data file, an output directory) stops with one line naming it, exit code 2.
The parts: :mod:`~awe_tf.cli.parser` (the flags), :mod:`~awe_tf.cli.data_flags` (the data a
command reads), :mod:`~awe_tf.cli.train` and :mod:`~awe_tf.cli.commands` (what each command
does), :mod:`~awe_tf.cli.common` (the checks of output paths they share); this module runs one.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import re
import shlex
import signal
import sys
import threading
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up noise out of the output
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # and gRPC's, a cluster task's server starting
# TensorFlow's Python warnings too: a command reports what it did, not TensorFlow's advice.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from awe_tf.cli.common import (  # noqa: E402  (after the settings above)
    Terminated,
    UsageError,
    catch_sigterm,
    release_directories,
    reproduce_output,
)
from awe_tf.cli.parser import build_parser, flag_of  # noqa: E402

__all__ = ["UsageError", "build_parser", "import_user_module", "main"]


def import_user_module(module: str) -> None:
    """``--import MODULE``: a module name, found from the current folder as ``python -m`` finds it,
    or a ``.py`` file's path (imported under its file name, the name a saved model records).
    An ImportError names the module and why."""
    name, path = module, None
    if module.endswith(".py") or os.sep in module:
        path = Path(module)
        if path.suffix != ".py" or not path.is_file():
            raise ImportError(f"--import {module}: no such Python file (give a module name, or a .py file's path)")
        name = path.stem
        loaded = getattr(sys.modules.get(name), "__file__", None)
        if loaded is not None and Path(loaded).resolve() != path.resolve():
            raise ImportError(f"--import {module}: a module named {name} is loaded already ({loaded}); rename the file")
        folder = str(path.resolve().parent)
    else:
        folder = os.getcwd()
    if folder not in sys.path:
        sys.path.append(folder)  # after the installed packages: a file of the folder never hides one of theirs
    try:
        imported = importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"--import {module}: {err}") from None
    except TypeError as err:  # a relative name, e.g. .mymodule
        if _module_file(err) is None:  # importlib's own: the name
            raise ImportError(f"--import {module}: {err} (give a module name or a .py file's path)") from None
        raise ImportError(f"--import {module} failed: {_module_error(err)}") from None
    except Exception as err:  # the module's own code: a SyntaxError, a NameError, ...
        raise ImportError(f"--import {module} failed: {_module_error(err)}") from None
    found = getattr(imported, "__file__", None)
    own = Path(folder) / f"{name.replace('.', os.sep)}.py"
    if path is None and found is not None and own.is_file() and Path(found).resolve() != own.resolve():
        raise ImportError(f"--import {module} imported {found}, an installed module of that name, not {own}: rename "
                          "yours, or give its path (--import ./FILE.py)")


def _module_file(error: Exception) -> str | None:
    """The file of the module an import ran when ``error`` was raised: the first frame of the
    traceback that runs a module's own code (``<module>``) outside importlib; None if none does."""
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.name == "<module>" and "importlib" not in frame.filename and "<frozen" not in frame.filename:
            return frame.filename
    return None


def _module_error(error: Exception) -> str:
    """What went wrong in a module's own code, on one line: the error's first line and where (the
    file and line of a SyntaxError; else the module's own last line in the traceback, the one that
    called into a library where the error was raised there)."""
    said = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, SyntaxError):
        return f"SyntaxError: {error.msg} ({error.filename}, line {error.lineno})"
    own = _module_file(error)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == own]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(error).__name__}: {said}{where}"


def error_cause(error) -> str:
    """What a TensorFlow error says of its cause, on one line: its message's own lines, without a
    graph error's header (``Graph execution error:``, ``Detected at node ...``), the Python stack
    where the node was defined (indented lines) and the node names (``[[...]]``)."""
    lines = [line.strip() for line in str(error).splitlines()
             if line.strip() and not line[:1].isspace() and not line.startswith(("Graph execution error",
                                                                                  "Detected at node", "[["))]
    return " ".join(lines)


def _traced_line(error: Exception) -> str:
    """Where a graph's tracing failed (``FILE, line N, in NAME: SOURCE``): the last frame of the
    ``in user code:`` stack a TensorFlow error's message holds where a ``tf.function`` traced the
    code, else the last frame of the error's own traceback outside TensorFlow and Keras (Keras'
    layers, traced as they are called); "" where there is none."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)[^\n]*\n[ \t]+(\S[^\n]*)', str(error))
    if frames:
        return "{}, line {}, in {}: {}".format(*frames[-1])
    libraries = [f"{os.sep}{package}{os.sep}" for package in ("tensorflow", "tf_keras", "keras")]
    ours = [frame for frame in traceback.extract_tb(error.__traceback__)
            if not any(library in frame.filename for library in libraries)]
    return "".join(f"{frame.filename}, line {frame.lineno}, in {frame.name}: {frame.line}" for frame in ours[-1:])


def _tf_errors(*names: str) -> tuple[type, ...]:
    """TensorFlow's error classes of these names (``tf.errors``), looked up only when an error is
    being handled, so commands that need no TensorFlow load none; none where it was not loaded."""
    if "tensorflow" not in sys.modules:
        return ()
    return tuple(getattr(sys.modules["tensorflow"].errors, name) for name in names)


LOST_PEER = ("UnavailableError", "AbortedError")  # a cluster task that stopped answering mid-run
UNWRITTEN = ("ResourceExhaustedError", "PermissionDeniedError")  # a file TensorFlow could not write, memory it lacked
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)  # a full disk, a full quota


def _own_address() -> str:
    """This task's address, as ``TF_CONFIG`` gives it (its cluster at the task's type and index)."""
    import json

    try:
        config = json.loads(os.environ["TF_CONFIG"])
        return str(config["cluster"][config["task"]["type"]][int(config["task"]["index"])])
    except (KeyError, ValueError, TypeError, IndexError):
        return "its address in TF_CONFIG"


def _shortened(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 3] + "..."


def _mend(said: str, args) -> str:
    """What to do about a file that could not be written or memory that could not be had (``said``,
    the error's text), before running the command of ``args`` again."""
    if "No space left on device" in said or "quota exceeded" in said.lower():
        return "free some space"
    if "OOM" in said or "memory" in said.lower():
        steps = ", or train smaller steps (--pairs-per-batch)" if hasattr(args, "pairs_per_batch") else ""
        return f"give it more memory{steps}"
    return "make it writable" if "ermission" in said else "mend that"


class _Output:
    """Standard output that, once its reader has gone (a pipe closed early: ``awe-tf train ... |
    head -1``), points its descriptor at /dev/null and carries on: the command finishes its work
    (a model, a run's results) and exits as it would have, instead of stopping at the next line it
    prints with the work lost."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self):
        try:
            descriptor = self.stream.fileno()
        except (OSError, ValueError, AttributeError):  # no descriptor of its own (captured, a notebook's stream)
            return
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, descriptor)
        os.close(null)

    def __getattr__(self, name):
        return getattr(self.stream, name)


# Settings no flag sets directly: a flag of the commands that set them, and the flags that do
IMPLIED_BY = {"bucketing": ("jit_compile", "--jit-compile or --strategy parameter-server")}


def _named_by_flags(message: str, parser) -> str:
    """A refusal's changed settings as the library names them (``model.dimension: 16 -> 8``, a
    run's or search's recorded settings against this command's) named by the flags that set them
    (``--dimension: 16 -> 8``), where the command has one, or beside the flags that imply them
    (``train.bucketing (--jit-compile or --strategy parameter-server): true -> false``)."""

    def flag(match):
        name = flag_of(parser, match.group(2))
        command_flag, implied = IMPLIED_BY.get(match.group(2), (None, None))
        if not name.startswith("--") and command_flag and flag_of(parser, command_flag).startswith("--"):
            return f"{match.group(1)}.{match.group(2)} ({implied}): "
        return f"{name}: " if name.startswith("--") else match.group(0)

    named = re.sub(r"(?<![\w.])(model|train)\.(\w+): ", flag, message)
    # a list's entries once each: model.seed and train.seed are one --seed
    return re.sub(r"\(([^()]*--[^()]*)\)", lambda m: "(" + "; ".join(dict.fromkeys(m.group(1).split("; "))) + ")",
                  named)


def _resume_flags(error, parser) -> str:
    """For a checkpoint refused for plain settings alone (:class:`~awe_tf.training.callbacks.OtherSettings`
    with ``earlier``), each set by a flag that takes one value, those flags with the values the
    checkpoint has, which go on with it (a run of an earlier awe-tf, whose defaults changed since:
    ``--min-steps-per-epoch 1``); else nothing."""
    earlier = getattr(error, "earlier", None)
    takes_value = {action.dest for action in getattr(parser, "_actions", []) if action.option_strings
                   and action.nargs is None and not isinstance(action.const, bool)}
    if not earlier or any(key not in takes_value or value is None or isinstance(value, bool)
                          for key, value in earlier.items()):
        return ""
    return "; or go on with the settings it began with: " + " ".join(
        f"{flag_of(parser, key)} {shlex.quote(str(value))}" for key, value in earlier.items())


def _goes_on(args) -> str:
    """For a command that keeps what it finished (train's checkpoints, tune's trials, reproduce's
    units), how to go on after an interruption."""
    kept = {"train": "from its last finished epoch",
            "tune": "with the trials it finished, and a trial cut short from its last finished epoch",
            "reproduce": "from the units it finished"}.get(args.command)
    if kept is None:
        return ""
    where = reproduce_output(args) if args.command == "reproduce" else args.output
    if args.command == "train" and _nothing_finished(args):
        return f": no epoch had finished, so the same command again starts from the beginning (in {where})"
    return f": the same command {'without --restart' if _discarded(args) else 'again'} goes on {kept} (in {where})"


def _nothing_finished(args) -> bool:
    """Whether an interrupted ``train`` left nothing to go on from: no finished epoch of any stage
    (a checkpoint's ``state.json``) and no finished stage of auto's (``auto.json``) in its output
    folder. Not said by a multi-worker run's workers, whose chief may keep what this worker's
    folder lacks (a parameter-server run's coordinator keeps the run's checkpoints itself)."""
    if getattr(args, "strategy", None) == "multiworker":
        return False
    from awe_tf import runs  # not TensorFlow: an interruption before it loads is not kept waiting for it

    output = Path(args.output)
    try:
        epochs = runs.finished_epochs(output)
        return not any(epochs[place] for place in epochs if place != runs.METRICS) \
            and not (output / runs.AUTO / runs.LEDGER).exists()
    except OSError:  # a folder removed meanwhile: say what is usual
        return False


def _discarded(args) -> bool:
    """Whether this command's ``--restart`` has discarded the earlier run (``train`` sets
    ``args.discarded``): the same command again would discard what this one has trained since."""
    return getattr(args, "restart", False) and getattr(args, "discarded", False)


def main(argv=None) -> int:
    """Run the ``awe-tf`` command ``argv`` (default: this process's command line) and return its
    exit code: 0, 2 for bad input (one line on stderr), 130 or 143 when interrupted.

    Called without ``argv``, main is the process's command (``awe-tf``, ``python -m awe_tf.cli``):
    after a lost cluster task's line, what the process writes to stderr goes nowhere (TensorFlow's
    teardown logs). Called with ``argv`` from Python, stderr is left as it is."""
    args = build_parser().parse_args(argv)
    from awe_tf.config import SettingError
    from awe_tf.data import DataFormatError

    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    quiet = False  # whether stderr closes once the command is done (see above)
    main_thread = threading.current_thread() is threading.main_thread()
    terminate = signal.getsignal(signal.SIGTERM) if main_thread else None  # None too: a handler not set in Python
    unraisable = sys.unraisablehook
    try:
        catch_sigterm()
        for module in args.imports:
            import_user_module(module)
        code = args.func(args)
        sys.stdout.flush()  # here, so a reader that stopped early is met now, not at exit
        return code
    except SettingError as err:
        print(f"error: {flag_of(getattr(args, 'parser', None), err.field)} {err.problem}", file=sys.stderr)
    except _tf_errors("OperatorNotAllowedInGraphError") as err:  # an affinity with a Python branch on a tensor
        where = _traced_line(err)
        print("error: a Python if (or while, and, or) on a tensor's value cannot be traced into a graph: an "
              "affinity's hooks branch with tf.cond or tf.where (README: Adding an affinity)"
              + (f" ({where})" if where else ""), file=sys.stderr)
    except (DataFormatError, ValueError, RuntimeError, ImportError, OSError) as err:  # OSError: a broken pipe too,
        parser = getattr(args, "parser", None)
        room = isinstance(err, OSError) and err.errno in NO_ROOM  # a file of Python's own: state, metrics
        print(f"error: {_named_by_flags(str(err), parser)}{_resume_flags(err, parser)}"  # other than the output's
              + (f"; {_mend(str(err), args)}, then run it again{_goes_on(args)}" if room else ""),
              file=sys.stderr)  # (a reader of the output may stop early)
    except _tf_errors(*LOST_PEER) as err:
        if getattr(args, "strategy", None) not in ("multiworker", "parameter-server"):
            raise  # not a cluster's: TensorFlow's own error, whole
        said = _shortened(error_cause(err), 200)
        again = "each worker's command" if args.strategy == "multiworker" else "this command"
        goes_on = "starts from the beginning (no epoch had finished)" if _nothing_finished(args) else \
            "goes on from its last finished epoch"
        print(f"error: a task of the cluster stopped answering ({said or type(err).__name__}): start it again, then "
              f"{again}{' without --restart' if _discarded(args) else ''}, which {goes_on} (in {args.output})",
              file=sys.stderr)
        quiet = argv is None  # this process is the command: what it logs from here is TensorFlow's teardown
    except _tf_errors("UnknownError") as err:
        said = error_cause(err)
        if "Could not start gRPC server" not in said:
            raise  # TensorFlow's own error, whole
        print(f"error: this task's server could not start at {_own_address()} ({_shortened(said, 200)}): is another "
              "process serving that port (a task of an earlier cluster still running)? stop it, or give this task "
              "another port in TF_CONFIG", file=sys.stderr)
    except _tf_errors(*UNWRITTEN) as err:
        said = _shortened(error_cause(err), 300)
        print(f"error: {said}; {_mend(said, args)}, then run it again{_goes_on(args)}", file=sys.stderr)
    except KeyboardInterrupt as interrupt:
        _put_back(main_thread, terminate, unraisable)  # first: a second SIGTERM now stops nothing half-way
        terminated = isinstance(interrupt, Terminated)
        print(("terminated (SIGTERM)" if terminated else "interrupted") + _goes_on(args), file=sys.stderr)
        return 143 if terminated else 130
    finally:
        _put_back(main_thread, terminate, unraisable)
        sys.stdout = stdout
        release_directories()
        if quiet:
            _stderr_closed()
    return 2


def _stderr_closed() -> None:
    """Send what this process writes to stderr from here on to nowhere, so that the line just
    written ends the command's output: as a lost cluster task's functions are removed at exit,
    TensorFlow's C++ runtime logs a failure for each (about a hundred lines, which no log level
    setting stops). For a command that runs as a process of its own, which ends next."""
    sys.stderr.flush()
    nowhere = os.open(os.devnull, os.O_WRONLY)
    os.dup2(nowhere, 2)
    os.close(nowhere)


def _put_back(main_thread: bool, handler, unraisable) -> None:
    """SIGTERM's handler and ``sys.unraisablehook`` as they were before :func:`main` (a caller's, a
    notebook's); a handler that Python did not set (``handler`` None: TensorFlow's, in C) as the
    system's default."""
    if main_thread:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if handler is None else handler)
        sys.unraisablehook = unraisable
