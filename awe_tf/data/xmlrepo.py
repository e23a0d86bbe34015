"""Reader for the Extreme Classification Repository text format.

The first line is ``N F L`` (examples, features, labels); each following line is
``l1,l2,... f:v f:v ...`` with 0-based label and feature indices (the label list may be empty),
its parts separated by spaces or tabs.

Some of the repository's data sets are one file with their splits beside it (``Bibtex_data.txt``,
``bibtex_trSplit.txt``, ``bibtex_tstSplit.txt``): each split file lists 1-based row numbers, one
column per split. :func:`row_lists` finds them and :func:`read_row_lists` reads one split, the
first unless another column is asked for.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import ANNOTATION, Dataset
from awe_tf.data.errors import DataFormatError, parse_float, parse_int
from awe_tf.data.text import LABEL_ONCE, check_duplicates, data_name, text_lines

ONE_BASED = ": indices count from 0; are this file's counted from 1, as LibSVM's are? take 1 from each"


def _row(path, line_no: int, line: str) -> tuple[list[int], list[tuple[int, str]]]:
    """One row's label indices and ``(feature index, value text)`` pairs, as the line writes them
    (``l1,l2 f:v f:v``, spaces or tabs between parts; no labels where the first part is a pair);
    what does not read as such is refused, naming the line. Indices are not checked against the
    header's counts here."""
    parts = line.split()
    labels_text, features = ("", parts) if ":" in parts[0] else (parts[0], parts[1:])
    labels = []
    for text in labels_text.split(",") if labels_text else ():
        if not text:
            raise DataFormatError(path, f"empty label in the list {labels_text!r} (a row's labels are one "
                                  "comma-separated list without spaces)", line_no)
        labels.append(parse_int(path, text, line_no, "label index"))
    pairs = []
    for token in features:
        if ":" not in token:
            raise DataFormatError(path, f"feature {token!r} is not 'index:value' (a row's labels come first, as "
                                  "one comma-separated list without spaces)", line_no)
        index_text, value_text = token.split(":", 1)
        pairs.append((parse_int(path, index_text, line_no, "feature index"), value_text))
    return labels, pairs


def _check_index(path, line_no: int, what: str, index: int, count: int) -> None:
    """Refuse a ``what`` (feature or label) index outside 0 .. ``count`` - 1, the header's count; one
    just past the end may be counted from 1, as LibSVM's are."""
    if not 0 <= index < count:
        raise DataFormatError(path, f"{what} index {index} out of range (0..{count - 1}"
                              f"{ONE_BASED if index == count else ''})", line_no)


def _counts(path, lines: list[str], given: tuple[str, int, int] | None = None) -> str | None:
    """What to put first in a file of rows without the header 'N F L' (LibSVM's multi-label
    layout): the header, its rows and, where ``given`` (``(whose, F, L)``: a training file's, a
    model's) does not say them, one more than its largest feature and label index (a floor: the
    data's vocabulary may hold more); where no row has feature 0 or label 0 (LibSVM counts from
    1), taking 1 from each index first. None where a line does not read as a row."""
    try:
        rows = [_row(path, line_no, line) for line_no, line in enumerate(lines, start=1) if line.strip()]
    except DataFormatError:
        return None
    features = [index for _, pairs in rows for index, _ in pairs]
    labels = [label for row_labels, _ in rows for label in row_labels]
    from_one = bool(features and labels) and min(features) >= 1 and min(labels) >= 1
    if given is not None:
        whose, n_features, n_labels = given
        put = f"put '{len(rows)} {n_features} {n_labels}' first ({whose} F and L)"
    else:
        put = (f"put '{len(rows)} {max(features, default=-1) + 1 - from_one} {max(labels, default=-1) + 1 - from_one}' "
               "first (F and L as its rows use them: give the data's own where it has more features or labels)")
    return (f"no row has feature 0 or label 0, so its indices count from 1, as LibSVM's do: take 1 from each, then "
            f"{put}" if from_one else put)


def read_xmlrepo(path, name: str | None = None, duplicates: str = "error",
                 counts_of: tuple[Path | str, int, int] | None = None) -> Dataset:
    """Read one file of the repository's format into a data set. Its features are sparse
    values (bag-of-words or tf-idf); the columns holding a value other than 0 and 1 are numeric,
    as for any annotation data set without declared types (:class:`~awe_tf.data.dataset.Dataset`),
    so the same rows read from an ARFF file that declares them numeric train the same model: a
    tf-idf column, 0 in most rows, is kept as it is, and a dense real-valued one is standardised,
    as the protocol says. (Not a column of only 0s and 1s in over half the rows: binary here, kept
    as it is; declared numeric in ARFF, standardised.) A feature or label given twice in a row is
    an error, or with ``duplicates="sum"`` feature values add up (a label stays one).

    ``counts_of``: ``(training file, F, L)`` for a test file (or ``("the model", F, L)`` for rows
    a model ranks), whose header must count the same features and labels (checked before its rows,
    whose indices would be refused for the header's counts instead), and which a file without a
    header is told to give."""
    path = Path(path)
    lines = [line for _, line in text_lines(path)]
    if not lines or not lines[0].strip():
        raise DataFormatError(path, "empty file; expected a header 'N F L'", 1)
    header = lines[0].split()
    if len(header) != 3 or any(":" in h or "," in h for h in header):  # a row's index:value pairs, its label list
        shown = lines[0] if len(lines[0]) <= 60 else lines[0][:60] + "..."
        given = (f"{counts_of[0]}'s", *counts_of[1:]) if counts_of is not None else None
        counts = _counts(path, lines, given) if any(mark in lines[0] for mark in ":,") else None  # a row, no header
        raise DataFormatError(path, f"the first line must be the header 'N F L', got {shown!r}: N the rows, F the "
                                    "features and L the labels (indices count from 0: F and L are one more than the "
                                    "largest)" + (f". A file of rows without it (LibSVM's multi-label layout): "
                                                  f"{counts}" if counts else ""), 1)
    n, n_features, n_labels = (parse_int(path, h, 1, "header count") for h in header)
    if min(n, n_features, n_labels) < 1:
        raise DataFormatError(path, f"header counts 'N F L' must be at least 1, got {lines[0].strip()!r}", 1)
    if counts_of is not None and (n_features, n_labels) != tuple(counts_of[1:]):
        train, train_features, train_labels = counts_of
        raise DataFormatError(path, f"its header's {n_features} features and {n_labels} labels differ from {train}'s "
                                    f"{train_features} and {train_labels}", 1)
    body = [(i, line) for i, line in enumerate(lines[1:], start=2) if line.strip()]
    if len(body) != n:
        blank = [i for i, line in enumerate(lines[1:], start=2) if not line.strip()]
        shown = ", ".join(map(str, blank[:5])) + (", ..." if len(blank) > 5 else "")
        raise DataFormatError(path, f"header says {n} examples but the file has {len(body)}" + (
            f" (blank lines, which are no row: {shown}; a row with no labels and no features cannot be written)"
            if blank else ""), 1)
    xr, xc, xv, xl, yr, yc, yl = [], [], [], [], [], [], []
    for row, (line_no, line) in enumerate(body):
        labels, pairs = _row(path, line_no, line)
        for label in labels:
            _check_index(path, line_no, "label", label, n_labels)
            yr.append(row)
            yc.append(label)
            yl.append(line_no)
        for index, value_text in pairs:
            _check_index(path, line_no, "feature", index, n_features)
            xr.append(row)
            xc.append(index)
            xv.append(parse_float(path, value_text, line_no, f"feature {index}"))
            xl.append(line_no)
    check_duplicates(path, xr, xc, xl, lambda i: f"feature {xc[i]}", duplicates)
    check_duplicates(path, yr, yc, yl, lambda i: f"label {yc[i]}", duplicates, LABEL_ONCE)
    X = sp.csr_matrix((np.asarray(xv, np.float32), (xr, xc)), shape=(n, n_features))
    Y = sp.csr_matrix((np.ones(len(yr), np.float32), (yr, yc)), shape=(n, n_labels))
    X.sum_duplicates()
    X.eliminate_zeros()  # a stored 0 is no input, as everywhere else
    Y.sum_duplicates()
    Y.data[:] = 1.0
    from_one = bool(xc and yc) and min(xc) >= 1 and min(yc) >= 1  # a file of LibSVM's 1-based indices reads shifted
    return Dataset(
        X=X,
        Y=Y,
        feature_names=[f"f{i}" for i in range(n_features)],
        label_names=[f"l{i}" for i in range(n_labels)],
        task=ANNOTATION,
        name=name or (_stem(path) if _stem(path) not in ("", path.stem) else data_name(path)),
        notes=(f"no row of {path.name} has feature 0 or label 0: indices count from 0 here; if the file's count "
               "from 1, as LibSVM's do, take 1 from each",) if from_one else (),
    )


SPLIT_FILES = {"training": "_trSplit.txt", "test": "_tstSplit.txt"}  # after the data file's name less "_data"


@dataclasses.dataclass(frozen=True)
class RowLists:
    """A data file's own split, as the repository ships it: the files listing its training and
    its test rows (1-based row numbers, a column per split), and the column read (1-based, the
    repository's split number; the first by default)."""

    train: Path
    test: Path
    column: int = 1


def _folder_files(folder: Path) -> list[Path]:
    """The files in ``folder``, sorted by name."""
    return sorted(there for there in folder.iterdir() if there.is_file())


def _split_files(files: list[Path]) -> list[tuple[str, str, Path]]:
    """Every split file among ``files`` (any letter case): ``(the stem of the data file it splits,
    as the name writes it; its part, "training" or "test"; its path)``."""
    return [(there.name[: -len(suffix)], part, there) for there in files for part, suffix in SPLIT_FILES.items()
            if there.name.lower().endswith(suffix.lower())]


def _stem(path: Path) -> str:
    """The data set's name in an Extreme Classification file's name, as the repository spells it:
    ``Bibtex_data.txt`` (whose split lists are ``bibtex_trSplit.txt``, ...) -> ``Bibtex``."""
    return path.stem[:-5] if path.stem.lower().endswith("_data") else path.stem


def row_lists(path, column: int = 1) -> RowLists | None:
    """The split files beside the data file ``path`` (``X_data.txt``, or ``X.txt``, ->
    ``X_trSplit.txt`` and ``X_tstSplit.txt`` in any letter case, as the repository ships
    ``Bibtex_data.txt`` beside ``bibtex_trSplit.txt``), or None where there are none. One without
    the other is refused, naming the missing one, and so are two files that differ in letter case
    only. ``column``: the split they are read for (:class:`RowLists`)."""
    path = Path(path)
    stem = _stem(path)
    found = {}
    for their_stem, part, there in _split_files(_folder_files(path.parent)):
        if their_stem.lower() != stem.lower():
            continue
        if part in found:
            raise DataFormatError(there, f"{found[part].name} beside it lists the {part} rows of {path.name} "
                                         "too: keep one of the two")
        found[part] = there
    if not found:
        return None
    if len(found) == 1:
        (part, there), = found.items()
        other = "test" if part == "training" else "training"
        raise DataFormatError(there, f"this lists the {part} rows of {path.name}, but the file listing its {other} "
                                     f"rows, {stem}{SPLIT_FILES[other]} (in any letter case), is not beside it")
    return RowLists(found["training"], found["test"], column)


def linked_row_lists(path) -> Path | None:
    """The file ``path`` links to (itself, or through a linked folder) where that file has split
    lists beside it and ``path`` has none (lists are read beside the path given); else None."""
    target = Path(path).resolve()
    try:
        return target if row_lists(path) is None and row_lists(target) is not None else None
    except DataFormatError:  # lists there that are not a pair: not this file's split either way
        return None


def stray_row_lists(path) -> dict[Path, str]:
    """Split files beside the data file ``path`` that belong to no data file there, each with the
    name of the data file it would split: ``S_trSplit.txt`` or ``S_tstSplit.txt`` (any letter
    case) with neither ``S_data.txt`` nor ``S.txt`` beside it -> ``S_data.txt``. Where ``path`` has
    no lists of its own (:func:`row_lists`), they are likely its own, the data file renamed."""
    files = _folder_files(Path(path).parent)
    names = {there.name.lower() for there in files}
    return {there: f"{stem}_data.txt" for stem, _, there in _split_files(files)
            if not names & {f"{stem}_data.txt".lower(), f"{stem}.txt".lower()}}


def _listed_rows(path: Path, n: int, column: int = 1) -> np.ndarray:
    """The 0-based rows of a split file's ``column`` (1-based numbers up to ``n``), each once."""
    rows, lines = [], []
    for line_no, line in text_lines(path):
        fields = line.split()
        if fields:
            if len(fields) < column:
                raise DataFormatError(path, f"this line has {len(fields)} column{'s' * (len(fields) != 1)}, so no "
                                            f"column {column} (the split asked for): the lists hold a column per "
                                            "split", line_no)
            number = parse_int(path, fields[column - 1], line_no, "row number")
            if not 1 <= number <= n:
                raise DataFormatError(path, f"row number {number} is outside the data file's rows 1..{n} "
                                            "(split files count rows from 1)", line_no)
            rows.append(number - 1)
            lines.append(line_no)
    if not rows:
        raise DataFormatError(path, "lists no rows")
    rows = np.asarray(rows, np.int64)
    seen = np.zeros(n, np.int64)
    for row, line_no in zip(rows, lines, strict=True):
        if seen[row]:
            raise DataFormatError(path, f"row {row + 1} is listed twice in column {column} (line {seen[row]} too)",
                                  line_no)
        seen[row] = line_no
    return np.sort(rows)


def read_row_lists(lists: RowLists, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(training rows, test rows)``, 0-based and in the data file's order, of the split in
    ``lists`` (its column) over a data file of ``n`` rows. The two cover every row once, as the repository's
    do: a row in both, or in neither (the lists of another file?), is refused."""
    train, test = _listed_rows(lists.train, n, lists.column), _listed_rows(lists.test, n, lists.column)
    both = np.intersect1d(train, test)
    if both.size:
        raise DataFormatError(lists.test, f"row {int(both[0]) + 1} is listed as a test row and, in {lists.train.name}, "
                                          f"as a training row ({both.size} in both)")
    if train.size + test.size < n:
        missing, count = int(np.setdiff1d(np.arange(n), np.concatenate([train, test]))[0]), n - train.size - test.size
        raise DataFormatError(lists.test, f"row {missing + 1} of the data file's {n} is in neither this list nor "
                                          f"{lists.train.name} ({count} row{'s' * (count != 1)} in neither): a split's "
                                          "lists cover every row. Lists of another file? To train on some rows only, "
                                          "write them as a training and a test file (--train, --test)")
    return train, test
