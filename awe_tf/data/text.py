"""Reading data files as UTF-8 text, line by line, and the checks every reader shares: errors
name the file and line, never a codec's or NumPy's internals."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from awe_tf.data.errors import DataFormatError

DUPLICATES = ("error", "sum")


SPLIT_NAMES = {"train", "test", "trn", "tst", "training", "testing"}  # a split's name after the data's: left out
# File names that say which part a file is, not which data: such a file is named by its folder.
PART_NAMES = SPLIT_NAMES | {"data", "interactions"}


def some_of(names, shown: int = 5) -> str:
    """The first ``shown`` of ``names``, and how many more there are (messages naming a few)."""
    names = list(names)
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def data_name(path) -> str:
    """A data set's name from its file: the file's name without its extension and without a split's
    name after a last ``-``, ``_`` or ``.`` (``bibtex-train.arff``: bibtex, Mulan's naming;
    ``movie_data.csv`` keeps its name), or, for a file named only as a part (``train.txt``,
    ``data.csv``), its folder's name (``bibtex/train.txt``: bibtex).

    Example:
        >>> data_name("data/bibtex-train.arff"), data_name("bibtex/train.txt"), data_name("my clicks.csv")
        ('bibtex', 'bibtex', 'my clicks')
    """
    path = Path(path)
    folder = path.resolve().parent.name
    if path.stem.lower() in PART_NAMES:
        return folder or path.stem
    head, part = re.match(r"(.*?)(?:[-_.]([^-_.]*))?$", path.stem).groups()
    return head if head and part and part.lower() in SPLIT_NAMES else path.stem


def text_lines(path) -> Iterator[tuple[int, str]]:
    """The lines of a UTF-8 text file as ``(line number, text)``, without line endings.

    Lines end with LF, CRLF, or CR alone (old Mac files). A UTF-8 byte-order mark is skipped. A
    binary file, a UTF-16 file or a line that is not valid UTF-8 stops with a
    :class:`DataFormatError` naming the file (and line, and byte).
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as err:
        raise DataFormatError(path, f"cannot open: {err.strerror}") from None
    with handle:
        head = handle.peek(8192)[:8192] if hasattr(handle, "peek") else b""
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise DataFormatError(path, "the file is UTF-16 text; save it as UTF-8")
        if b"\x00" in head:
            raise DataFormatError(path, "this is a binary file, not a text data file")
        lines = handle
        if b"\r" in head and b"\n" not in head:  # lines ended by CR alone (old Mac files)
            lines = handle.read().split(b"\r")
            if lines[-1] == b"":  # the last line's end
                lines.pop()
        for line_no, raw in enumerate(lines, start=1):
            if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(path, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                                      "save the file as UTF-8", line_no) from None
            yield line_no, text.rstrip("\r\n")


ADDS_UP = "add repeated entries up"  # what duplicates="sum" does with values (sum_hint)
LABEL_ONCE = "read a repeated label once"  # and with a label, present or not


def sum_hint(summed: str = ADDS_UP, flag: bool = True) -> str:
    """The end of a message about an entry given twice: how to have it read (``flag``: the command
    line's way too, for data read from a file), and what that does."""
    return f"use duplicates='sum'{' (--duplicates sum)' if flag else ''} to {summed}"


def check_duplicates(path, rows, cols, lines, describe, duplicates: str = "error", summed: str = ADDS_UP,
                     unit: str | None = None) -> None:
    """Stop at the first (row, column) entry given twice, naming both lines, unless
    ``duplicates="sum"`` (then the caller reads such entries as ``summed`` says).

    Args:
        rows, cols: the entries' row and column indices.
        lines: the line each entry was read from (with ``unit``, its place in data given in
            memory: ``unit="position"``).
        describe: the name of the entry at a given index, for the message.
        duplicates: ``error`` (the default of every reader) or ``sum``.
        summed: what ``sum`` does with these entries, for the message (a label is read once).
    """
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    if duplicates == "sum" or len(rows) < 2:
        return
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    keys = rows * (int(cols.max()) + 1) + cols
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if repeated.size:
        first, second = order[repeated[0]], order[repeated[0] + 1]
        raise DataFormatError(path, f"{describe(first)} is given twice (first "
                              f"{f'at {unit}' if unit else 'on line'} {lines[first]}); {sum_hint(summed, not unit)}",
                              lines[second] if unit else int(lines[second]), unit)
