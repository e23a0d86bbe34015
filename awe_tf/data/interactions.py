"""Readers for implicit-feedback data: MovieLens (``u.data``, ``ratings.dat``, ``ratings.csv``)
and a plain interactions file (``user, item[, weight]`` as TSV or CSV)."""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Iterable, Sequence
from numbers import Real
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import RECOMMENDATION, Dataset
from awe_tf.data.errors import (
    BELOW_NORMAL,
    FLOAT32_MAX,
    FLOAT32_TINY,
    DataFormatError,
    check_finite,
    is_number,
    parse_float,
)
from awe_tf.data.text import ADDS_UP, check_duplicates, data_name, some_of, text_lines

INTERACTION_SEPARATORS = ("\t", ",")  # an interactions file's: tabs, or commas in a .csv (read_interactions)
# Column names of users and of items, lower case: a header that names them in another order than
# user, item is refused (read_interactions); with the weights' and times', they make a first line a header.
USER_WORDS = {"user", "users", "userid", "user_id", "uid", "customer", "customerid", "customer_id"}
ITEM_WORDS = {"item", "items", "itemid", "item_id", "iid", "movie", "movieid", "movie_id", "product", "productid",
              "product_id"}
HEADER_WORDS = USER_WORDS | ITEM_WORDS | {"rating", "weight", "count", "timestamp", "time"}
UNIX_TIMES = 1e8  # Unix seconds since 1973: a third column all whole numbers of at least this holds times
SEMICOLON_LINES = 5  # the first lines whose first fields all holding ';' make a .csv one of semicolons
LONE_FIRST_LINE = 10  # interactions from which a first line whose user and item are in no other line is noted
TIME_WORDS = {"timestamp", "time", "ts", "date", "datetime", "unix_time", "unixtime", "created", "created_at"}


def _sort_key(ids):
    """Ascending id order: numerically when every id is an integer, else as text; ids equal as
    integers (``50``, ``050``) in text order, so the order never depends on how a set iterates."""
    try:
        return sorted(ids, key=lambda i: (int(i), i))
    except ValueError:
        return sorted(ids)


def _number_key(text: str) -> str | None:
    """What an id written as a whole number in ASCII digits stands for, as text without leading
    zeros or a decimal point of zeros after it (``007``, ``7.0``: ``7``; ``000``: ``0``); None for
    any other id (``x7``, ``-7``, ``+7``, ``7.5``)."""
    whole, point, decimals = text.partition(".")
    if not (whole.isascii() and whole.isdigit()) or point and decimals.strip("0"):
        return None
    return whole.lstrip("0") or "0"


def same_number_ids(ids: Iterable, known: Iterable | None = None) -> dict[str, str]:
    """Ids that are one whole number written otherwise: with other leading zeros, or decimal zeros
    (``'007'``, ``'7.0'`` and ``'7'``). Ids are compared as text, so these are other users or items:
    what was meant only where the zeros tell ids apart; where a tool dropped or added them (a
    spreadsheet reading ids as numbers), they were meant as the same. Only ids of ASCII digits
    count (with a point and zeros after them).

    Args:
        ids: the ids to look through (text, or anything read as its text).
        known: other ids (a training file's); None: ``ids`` themselves.

    Returns:
        With ``known``, each id of ``ids`` that ``known`` lacks but holds written otherwise, with
        ``known``'s spelling (the first in text order where it has several); without, each id of
        ``ids`` that another of them is written otherwise, with the first in text order. In text
        order.

    Example:
        >>> same_number_ids(["007", "8", "x"], known=["7", "8"])
        {'007': '7'}
        >>> same_number_ids(["7", "007", "07", "8", "8.0"])
        {'07': '007', '7': '007', '8.0': '8'}
    """
    ids = {str(i) for i in ids}
    against = ids if known is None else {str(k) for k in known}
    first = {}
    for text in against:  # one pass: the first spelling of each number in text order
        key = _number_key(text)
        if key is not None and (key not in first or text < first[key]):
            first[key] = text
    found = {i: first[key] for i in ids - (set() if known is None else against)
             if (key := _number_key(i)) is not None and first.get(key, i) != i}
    return dict(sorted(found.items()))


OTHER_ZEROS = "written with other leading or decimal zeros"  # how ids of one number differ (same_number_ids)


def same_number_pairs(found: dict[str, str]) -> str:
    """The first three ids :func:`same_number_ids` ``found``, each with its other spelling."""
    return some_of([f"{i!r} for {other!r}" for i, other in found.items()], shown=3)


def same_number_note(found: dict[str, str], what: str, whose: str, where: str = "") -> str:
    """A data note on ids :func:`same_number_ids` ``found``.

    Args:
        found: what :func:`same_number_ids` returned.
        what: ``user`` or ``item``.
        whose: the ids they are written otherwise than, ``"training ids"``.
        where: whose ids they are, ``"of the test file "`` (with its space), or nothing.
    """
    return (f"{what} ids {where}{OTHER_ZEROS} than {whose} ({len(found)}: "
            f"{same_number_pairs(found)}): ids are compared as text, so they are read as other {what}s; write them "
            f"alike where they are one {what}")


def interactions_to_dataset(users, items, weights, name, path, item_names=None, lines=None,
                            duplicates: str = "error", values_as_ones: bool = False, header=None,
                            unit: str | None = None, notes: tuple[str, ...] = ()) -> Dataset:
    """Build the recommendation data set: one row per user, X = Y = the user's items.

    Every interaction is an implicit positive (Y = 1); X keeps the weights, or with
    ``values_as_ones`` is 1 for each (user, item) pair (:class:`Dataset`). A pair given twice is
    an error naming both lines, or with ``duplicates="sum"`` its weights add up (with
    ``values_as_ones``: it is one interaction). Users are in ascending id order, which the
    protocol's split relies on. ``lines``: where each interaction was read, lines of ``path``, or
    with ``unit`` places in data given in memory (:func:`from_interactions`). ``notes``: the
    reader's, before the data set's own.
    """
    if not users:
        raise DataFormatError(path, "no interactions found (empty file)" if unit is None else "no interactions given")
    user_ids = _sort_key(set(users))
    item_ids = _sort_key(set(items))
    user_index = {u: i for i, u in enumerate(user_ids)}
    item_index = {t: i for i, t in enumerate(item_ids)}
    rows = np.fromiter((user_index[u] for u in users), np.int64, len(users))
    cols = np.fromiter((item_index[t] for t in items), np.int64, len(items))
    check_duplicates(path, rows, cols, lines if lines is not None else np.arange(1, len(users) + 1),
                     lambda i: f"the interaction (user {users[i]}, item {items[i]})", duplicates,
                     "read a repeated rating as one interaction" if values_as_ones else ADDS_UP, unit)
    X = sp.csr_matrix((np.asarray(weights, np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids)))
    X.sum_duplicates()
    Y = X.copy()
    Y.data[:] = 1.0
    if values_as_ones:
        X = Y.copy()
    names = [item_names.get(t, str(t)) if item_names else str(t) for t in item_ids]
    notes += tuple(same_number_note(found, what, "its other ids")
                   for what, ids in (("user", user_ids), ("item", item_ids)) if (found := same_number_ids(ids)))
    return Dataset(
        X=X,
        Y=Y,
        feature_names=names,
        label_names=names,
        task=RECOMMENDATION,
        name=name,
        row_ids=np.asarray(user_ids, dtype=object if not all(isinstance(u, int) for u in user_ids) else np.int64),
        values_as_ones=values_as_ones,
        header=header,
        notes=notes,
    )


def _is_integer(text: str) -> bool:
    """Whether an id is a whole number (``-17`` too): the one test of the readers' integer ids,
    which are ordered by value (:func:`_sort_key`)."""
    try:
        int(text)
    except ValueError:
        return False
    return True


def _column_words(fields) -> list[str]:
    """A first line's fields as column names are compared: unquoted, in lower case."""
    return [field.strip("\"'").lower() for field in fields]


def _is_header(first: list[str], second: list[str] | None) -> bool:
    """Whether a table's first line names its columns (``header=None``, the default): a field is
    a known column name, its weight is not a number, or an id of it is not an integer where the
    next line's is. The last cannot tell a header of other words from a first user or item whose
    id alone is text: ``header=True`` / ``False`` (``--header yes`` / ``no``) says which."""
    words = _column_words(first)
    if any(word in HEADER_WORDS for word in words):
        return True
    if len(first) >= 3 and first[2] and not is_number(first[2]):  # an empty one: a separator at the line's end
        return True
    if second is not None:
        return any(not _is_integer(a) and _is_integer(b) for a, b in zip(first[:2], second[:2], strict=False))
    return False


def _fields(path, line: str, line_no: int, sep) -> list[str]:
    """One line's fields. A comma-separated line with a quote in it is read as CSV (a quoted field
    may hold the comma, ``"Lord of the Rings, The"``, and its quotes are dropped; spaces between a
    closing quote and the next comma are dropped, as around an unquoted field); other lines,
    tab-separated ones included, are split at the separator as they are."""
    if sep != "," or '"' not in line:
        return [f.strip() for f in (line.split(sep) if sep else line.split())]
    try:
        return [f.strip() for f in next(csv.reader([line], skipinitialspace=True, strict=True))]
    except csv.Error as err:
        spaced = re.sub(r'"[ \t]+(?=,|$)', '"', line)  # spaces after a closing quote, as around unquoted fields
        if spaced != line:
            try:
                return [f.strip() for f in next(csv.reader([spaced], skipinitialspace=True, strict=True))]
            except csv.Error:
                pass
        raise DataFormatError(path, f"malformed quoting ({err})", line_no) from None


def _read_table(path, sep, rows_are: str, header: bool | None = None):
    """The data lines of a delimited text table as ``(line number, fields)``, and the fields of
    its first line where that is a header, skipped (``header``: True, False, or None to tell by
    :func:`_is_header`), else None; a header with no line after it is refused, naming what the
    rows are (``rows_are``). Each row's fields are checked by the reader, in line order
    (:func:`_check_field_count` among its checks), so the first bad line is the one named."""
    rows = [(line_no, _fields(path, line, line_no, sep)) for line_no, line in text_lines(path) if line.strip()]
    if rows and rows[0][1] == ["sep=", ""]:  # a spreadsheet's line naming the separator, which it reads as such
        rows = rows[1:]
    skipped = None
    if rows and (header if header is not None else _is_header(rows[0][1], rows[1][1] if len(rows) > 1 else None)):
        skipped, rows = tuple(rows[0][1]), rows[1:]
        if not rows:
            raise DataFormatError(path, f"no {rows_are} after the header line")
    return rows, skipped


def _check_field_count(path, sep, line_no: int, fields: list[str], fewest: int, most: int,
                       hints_by_field_count: dict | None = None) -> None:
    """Refuse a row of fewer than ``fewest`` or more than ``most`` fields; ``hints_by_field_count``:
    what a row of some other number of fields may be, by that number, added to the error."""
    if not fewest <= len(fields) <= most:
        expected = fewest if fewest == most else f"{fewest} to {most}"
        hint = (hints_by_field_count or {}).get(len(fields), "")
        other = next((name for mark, name in OTHER_SEPARATORS.items() if mark != sep and mark in fields[0]), None)
        if len(fields) == 1 and other and not hint:
            hint = f" (the line holds {other}: " + (
                "a tab-separated file? name it .tsv, or anything but .csv" if other == "tabs" else
                f"awe-tf reads a .csv's fields at commas and other files' at tabs: {_convert_command(path, other)}")
            hint += ")"
        raise DataFormatError(path, f"expected {expected} fields separated by {sep or 'whitespace'!r}, got "
                                    f"{len(fields)}{hint}", line_no)


OTHER_SEPARATORS = {"\t": "tabs", ";": "semicolons", ",": "commas", "|": "bars"}  # what a line of one field may hold


def _convert_command(path: Path, other: str) -> str:
    """The command that writes a file separated by ``other`` (a name of :data:`OTHER_SEPARATORS`)
    as a .csv, or, for commas, names it one."""
    if other == "commas":
        return f"name it .csv: mv {shlex.quote(path.name)} {shlex.quote(path.stem + '.csv')}"
    mark = next(mark for mark, name in OTHER_SEPARATORS.items() if name == other)
    marks, commas = (f"{mark},", ",.") if other == "semicolons" else (mark, ",")  # a spreadsheet's decimal commas
    return f"tr '{marks}' '{commas}' < {shlex.quote(path.name)} > {shlex.quote(path.stem + '-commas.csv')}"


MOVIELENS_FILES = ("u.data", "ratings.dat", "ratings.csv")  # MovieLens' ratings files, the first found in a folder


def read_movielens(path, name: str | None = None, duplicates: str = "error") -> Dataset:
    """Read MovieLens ratings as implicit feedback: ``u.data`` (tab), ``ratings.dat`` (``::``)
    or ``ratings.csv`` (comma, with header), each row user, movie, rating, timestamp. Every
    rating is an input of 1, whatever its value (``values_as_ones``: a model trained on it reads
    a rating sent as it is as 1). Movie titles
    come from ``u.item`` / ``movies.dat`` / ``movies.csv`` beside it when present.
    ``duplicates``: see :func:`interactions_to_dataset`."""
    path = Path(path)
    if path.is_dir():
        for candidate in MOVIELENS_FILES:
            if (path / candidate).exists():
                path = path / candidate
                break
        else:
            raise DataFormatError(path, "no u.data, ratings.dat or ratings.csv in this folder")
    sep = {".dat": "::", ".csv": ","}.get(path.suffix, "\t")
    users, items, lines = [], [], []
    # --format interactions takes tabs or commas only: rows of '::' need them first
    other_separator = "" if sep in INTERACTION_SEPARATORS else \
        f", once their '::' are tabs: sed 's/::/\\t/g' {shlex.quote(path.name)} > {shlex.quote(path.stem + '.tsv')}" \
        " with GNU sed"
    hints = {3: f" (user, item, weight? --format interactions reads such rows, their weights kept{other_separator})"}
    rows, header = _read_table(path, sep, "ratings")
    for line_no, fields in rows:
        _check_field_count(path, sep, line_no, fields, 4, 4, hints)
        user, item = fields[0], fields[1]
        if not (user.isdigit() and item.isdigit()):
            raise DataFormatError(path, f"user and movie ids must be integers, got {user!r}, {item!r}", line_no)
        if parse_float(path, fields[2], line_no, "rating", normal=False) <= 0:  # MovieLens rates from 0.5 or 1 up
            raise DataFormatError(path, f"rating {fields[2]!r} is no interaction (MovieLens rates from 0.5 up, and "
                                        "every rating is read as one): leave rows of 0 or below out", line_no)
        users.append(int(user))
        items.append(int(item))
        lines.append(line_no)
    titles = _movie_titles(path.parent)
    return interactions_to_dataset(users, items, np.ones(len(users)), name or path.resolve().parent.name, path, titles,
                                   lines, duplicates, values_as_ones=True, header=header)


def _movie_titles(folder: Path) -> dict:
    for file, sep in (("u.item", "|"), ("movies.dat", "::"), ("movies.csv", ",")):
        target = folder / file
        if target.exists():
            titles = {}
            for line_no, line in enumerate(target.read_text(encoding="latin-1").splitlines(), start=1):
                fields = _fields(target, line, line_no, sep)
                if len(fields) >= 2 and fields[0].isdigit():
                    titles[int(fields[0])] = fields[1]
            return titles
    return {}


TABLE_FIELDS = 5  # fields from which a row is a table's (features and label columns), not an interaction's


def _separator(path: Path) -> str:
    """An interactions file's field separator: commas in a ``.csv``, tabs in any other."""
    return "," if path.suffix.lower() == ".csv" else "\t"


def _check_not_a_table(path: Path, first_row: list[str]) -> None:
    """Refuse an interactions file whose first row has :data:`TABLE_FIELDS` fields or more and
    names no interactions column (:data:`HEADER_WORDS`): a table of features and label columns,
    which is not a format awe-tf reads from a file; say what is. (A log with more columns than
    user, item and weight has its own error, with the command that keeps the first three.)"""
    if len(first_row) >= TABLE_FIELDS and not any(word in HEADER_WORDS for word in _column_words(first_row)):
        raise DataFormatError(path, f"its first row has {len(first_row)} fields, where an interactions file (what a "
                                    ".csv or .tsv is read as) has user, item[, weight]: a table of features and label "
                                    "columns is read from Mulan ARFF (--format mulan, with its label list) or "
                                    "Extreme Classification text (--format xmlrepo), or in Python as "
                                    "awe_tf.Dataset(df[feature_columns], df[label_columns]) (README: Your own "
                                    "data); interactions with more columns: keep the first three, "
                                    + _cut_command(path))


def _cut_command(path: Path, columns: int = 3) -> str:
    """The command that keeps an interactions file's first ``columns`` columns (user, item,
    weight; 2: user and item)."""
    cut = f"cut {'-d, ' if _separator(path) == ',' else ''}-f1-{columns} {shlex.quote(path.name)}"  # tabs: default
    return cut + f" > {shlex.quote(f'{path.stem}-{columns}cols{path.suffix}')}"


def _check_column_order(path: Path, sep: str, header: tuple[str, ...]) -> None:
    """Refuse a header that names a user or an item column where the other belongs: the columns
    are read by position, user then item, so ``item,user`` would swap users and items."""
    words = _column_words(header)
    if not any(word in ITEM_WORDS and at != 1 or word in USER_WORDS and at != 0 for at, word in enumerate(words)):
        return
    swap = ""
    if len(words) > 1 and words[0] in ITEM_WORDS and words[1] in USER_WORDS:  # the usual mistake: a swap
        fields = "-F, -v OFS=," if sep == "," else r"-F'\t' -v OFS='\t'"
        swap = (f": awk {fields} '{{t = $1; $1 = $2; $2 = t; print}}' {shlex.quote(path.name)} > "
                f"{shlex.quote(f'{path.stem}-user-first{path.suffix}')}")
    raise DataFormatError(path, f"its first line names the columns {', '.join(header)}, but they are read by "
                                "position, the user's id first, then the item's" +
                                (", then the weight" if len(header) > 2 else "") + "; put them in that order" + swap)


def read_interactions(path, name: str | None = None, duplicates: str = "error", header: bool | None = None) -> Dataset:
    """Read ``user, item[, weight]`` rows: tab-separated (``.tsv``/other) or comma (``.csv``).

    ``header``: whether the first line names the columns; None tells by :func:`_is_header` (a
    known column name such as ``user``, ``item``, ``uid``; a weight that is not a number; an id
    that is not an integer where the next line's is). Either every row has a weight or none
    does. A (user, item) pair given twice is an error, or with ``duplicates="sum"`` its weights
    add up. A header that names the user's and the item's columns in another order is refused
    (:data:`USER_WORDS`, :data:`ITEM_WORDS`). A third column of times is refused, not read as
    weights: named as one in the header (``ts``, ``timestamp``, :data:`TIME_WORDS`), or holding
    only whole numbers of :data:`UNIX_TIMES` or more (Unix seconds).
    """
    path = Path(path)
    sep = _separator(path)
    users, items, weights, lines = [], [], [], []
    told = header is not None
    rows, header = _read_table(path, sep, "interactions", header)
    first = [header] if header is not None else []
    first += [fields for _, fields in rows[:SEMICOLON_LINES - len(first)]]
    if sep == "," and first and all(";" in fields[0] for fields in first):  # a user "u1;i1;4" of item "5", else
        raise DataFormatError(path, f"its first line's first field, {first[0][0]!r}, holds semicolons, as do the "
                                    "next lines', but a .csv's fields are read at its commas: a file separated by "
                                    "semicolons (with decimal commas?) becomes one of commas with "
                                    f"{_convert_command(path, 'semicolons')}")
    _check_not_a_table(path, list(header if header is not None else rows[0][1]) if rows else [])
    if header is not None:
        _check_column_order(path, sep, header)
    if header is not None and len(header) == 3 and header[2].strip("\"'").lower() in TIME_WORDS:
        raise DataFormatError(path, f"its third column is {header[2]!r}, which would be read as each interaction's "
                                    "weight: a time is no weight; keep user and item, "
                                    f"{_cut_command(path, 2)} (a duration, a weight: rename the column)")
    hints = {n: f" (keep the first three columns, user, item and weight: {_cut_command(path)})"
             for n in range(TABLE_FIELDS, max((len(fields) for _, fields in rows), default=0) + 1)}
    hints[4] = (f" (user, item, weight, timestamp? keep the first three columns: {_cut_command(path)}; --format "
                "movielens reads such rows, a single file, where user and item ids are whole numbers, every rating "
                "above 0 as 1)")
    weighted = next(((line_no, fields) for line_no, fields in rows if len(fields) == 3), None)
    trailing = {4: f" (the last empty: does every line end with {sep!r}? keep the first three columns: "
                   f"{_cut_command(path)})"}
    for line_no, fields in rows:
        _check_field_count(path, sep, line_no, fields, 2, 3, trailing if len(fields) == 4 and not fields[3] else hints)
        if not fields[0] or not fields[1]:
            raise DataFormatError(path, f"empty {'user' if not fields[0] else 'item'} id", line_no)
        if weighted is not None and len(fields) == 2:  # read as 1, it would sit among the weights unsaid
            # a weight there that is no number is what is wrong (a header, say), not the rows without one
            parse_float(path, weighted[1][2], weighted[0], "weight", normal=False)
            raise DataFormatError(path, f"no weight, where line {weighted[0]} has one: give every row a weight "
                                        "(user, item, weight) or none", line_no)
        if len(fields) == 3 and not fields[2]:
            raise DataFormatError(path, f"empty weight (does every line end with {sep!r}? user and item alone take "
                                        "none after them)", line_no)
        weight = parse_float(path, fields[2], line_no, "weight", normal=False) if len(fields) == 3 else 1.0
        if problem := _weight_problem(weight):
            raise DataFormatError(path, problem, line_no)
        users.append(fields[0])
        items.append(fields[1])
        weights.append(weight)
        lines.append(line_no)
    if weighted is not None and min(weights) >= UNIX_TIMES and all(float(w).is_integer() for w in weights):
        raise DataFormatError(path, f"every weight is a whole number of {UNIX_TIMES:,.0f} or more (line "
                                    f"{weighted[0]}: {weighted[1][2]}): times (Unix seconds), not weights? keep user "
                                    f"and item, {_cut_command(path, 2)}; weights that large: scale them down")
    notes = ()
    if not told and header is None and len(users) >= LONE_FIRST_LINE and users.count(users[0]) == 1 \
            and items.count(items[0]) == 1 and not (_is_integer(users[0]) and _is_integer(items[0])):  # ids: data
        notes = (f"the first line, {', '.join(rows[0][1])}, read as an interaction, of a user and an item in no other "
                 "line: if it names the columns, --header yes (header=True) skips it",)
    return interactions_to_dataset(users, items, weights, name or data_name(path), path, lines=lines,
                                   duplicates=duplicates, header=header, notes=notes)


def _whole_number(value) -> bool:
    """Whether an id is a whole number (an int, a NumPy integer; not a bool), kept as its text."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _missing(value) -> bool:
    """Whether an id is a missing value: None, NaN, pandas' NA or NaT."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ in ("NAType",
                                                                                                       "NaTType")


def _index(values):
    """A pandas column's index (its row labels), or None for a list or an array (a list's ``index``
    is a method)."""
    index = getattr(values, "index", None)
    return None if index is None or callable(index) else index


class _Places:
    """Where interactions given in memory are, for messages, worked out only when one is named:
    ``places[i]`` is the position ``i``, with a pandas column's index label beside it where the two
    differ (rows filtered out before)."""

    def __init__(self, values):
        self.index = _index(values)

    def __getitem__(self, i) -> str:
        i = int(i)
        label = self.index[i] if self.index is not None and i < len(self.index) else i
        return str(i) if _whole_number(label) and label == i else f"{i}, index {label!r}"


def _ids(values, what: str) -> list[str]:
    """Interaction ids given in memory as text, as an interactions file's are read: text (its
    surrounding spaces dropped) or whole numbers, one per interaction (a list, a NumPy array, a
    pandas column); a missing id, an empty one or one of another type refused, at its place."""
    if hasattr(values, "columns"):
        raise ValueError(f"{what} ids are a DataFrame: give its columns, as "
                         "Dataset.from_interactions(df['user'], df['item'], df['rating'])")
    array = np.asarray(values, dtype=object if isinstance(values, (list, tuple)) else None)
    if array.ndim != 1:
        raise ValueError(f"{what} ids must be one id per interaction (a list or a column), got shape {array.shape}")
    if array.dtype.kind in "iu":  # the common cases, without a look at each id
        return array.astype(str).tolist()
    ids = array.tolist()
    if not all(type(value) is str for value in ids):
        missing = next((i for i, value in enumerate(ids) if _missing(value)), None)
        if missing is not None:
            _refuse(values, what, missing, f"no id ({ids[missing]}): drop the interactions without one (dropna)")
        for i, value in enumerate(ids):
            if _whole_number(value):
                ids[i] = str(int(value))
            elif not isinstance(value, str):
                hint = ("astype(int) (pandas makes an id column that has a missing value floats: drop those rows "
                        "first)" if isinstance(value, float) else "give ids as text or integers")
                _refuse(values, what, i, f"{value!r} ({type(value).__name__}): ids are text or whole numbers; {hint}")
    ids = [value.strip() for value in ids]
    empty = next((i for i, value in enumerate(ids) if not value), None)
    if empty is not None:
        _refuse(values, what, empty, "an empty id")
    return ids


def _refuse(values, what: str, i: int, message: str):
    raise DataFormatError(f"{what} ids", message, _Places(values)[i], "position")


def _weights(weights, n: int) -> np.ndarray:
    """One positive, finite number per interaction (all 1 where ``weights`` is None); a missing one,
    one that is no number and one not above 0 refused, at its place."""
    if weights is None:
        return np.ones(n, np.float64)
    if hasattr(weights, "columns"):
        raise ValueError("weights are a DataFrame: give its column, df['rating']")
    values = np.asarray(weights, dtype=object if isinstance(weights, (list, tuple)) else None)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"weights must be one number per interaction: {n} interactions, weights of shape "
                         f"{values.shape}")
    places = _Places(weights)
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        bad = next(i for i, value in enumerate(values.tolist()) if not is_number(value))
        raise DataFormatError("weights", f"weight {values[bad]!r} is not a number", places[bad], "position") from None
    bad = np.flatnonzero(~np.isfinite(numbers) | (np.abs(numbers) > FLOAT32_MAX) | (numbers < FLOAT32_TINY))
    if bad.size:
        i = int(bad[0])
        check_finite("weights", float(numbers[i]), places[i], "weight", "position", normal=False)  # NaN, inf, huge
        raise DataFormatError("weights", _weight_problem(float(numbers[i])), places[i], "position")
    return numbers


def _weight_problem(weight: float) -> str | None:
    """What is wrong with a finite interaction weight, or None: not above 0, or so small that
    float32, as which a model keeps it, cannot hold it as a normal number."""
    if weight <= 0:
        return (f"weight {weight!r} must be positive (an interaction of weight 0, an impression without a click, is no "
                "interaction: leave it out)")
    if weight < FLOAT32_TINY:
        return f"weight {weight!r} is {BELOW_NORMAL}: scale the weights up"
    return None


def _check_aligned(columns: dict) -> None:
    """Refuse pandas columns whose row labels differ (one sorted or filtered apart from the others):
    they are paired by position, so each user would be given another row's item."""
    indexes = {name: _index(values) for name, values in columns.items()}
    given = {name: index for name, index in indexes.items() if index is not None}
    if len(given) < 2:
        return
    (first, index), *others = given.items()
    for name, other in others:
        same = index.equals(other) if hasattr(index, "equals") else list(index) == list(other)
        if not same:
            raise ValueError(f"{first} and {name} are pandas columns with other row labels (an index sorted or "
                             "filtered apart): interactions are paired by position, so give columns of one frame, "
                             "df['user'], df['item'], df['rating']")


def from_interactions(users, items=None, weights=None, name: str = "interactions",
                      duplicates: str = "error") -> Dataset:
    """A recommendation data set from interactions in memory: user ``users[i]`` interacted with item
    ``items[i]``, at weight ``weights[i]`` (default 1 each). It is the data set an interactions file
    of those rows reads as (:func:`read_interactions`): one row per user, in ascending id order
    (``row_ids``), the items as X's and Y's columns, named by their ids (``label_names``), X holding
    the weights and Y 1 for each interaction.

    Args:
        users, items: one id per interaction, text or whole numbers (a list, a NumPy array, a
            pandas column: ``from_interactions(df["user_id"], df["item_id"], df["rating"])``);
            ids are kept as text (``5`` is the item named ``"5"``), without surrounding spaces.
            Pandas columns must share their index (columns of one frame).
        weights: one positive number per interaction, or None. They are the inputs' values, as an
            interactions file's weights are: ratings given here weigh a user's items by rating,
            where the MovieLens reader reads every rating as 1 (leave them out for that).
        name: the data set's name, for messages and reports.
        duplicates: a (user, item) pair given twice is refused (``"error"``, naming both places) or
            its weights add up (``"sum"``).

    Raises:
        ValueError (:class:`DataFormatError` where an interaction is at fault, naming its position
            and, for a pandas column where it differs, its index label): lengths or pandas indexes
            that differ, an id that is neither text nor a whole number (a missing one), a weight
            that is missing, not a number or not above 0 (an impression without a click is no
            interaction), a pair given twice; a DataFrame given whole.
    """
    if items is None:
        raise ValueError("give the users' ids and the items' ids, one per interaction, as "
                         "Dataset.from_interactions(df['user'], df['item'], df['rating'])"
                         + (" (the columns of the DataFrame, not the frame)" if hasattr(users, "columns") else ""))
    user_ids, item_ids = _ids(users, "user"), _ids(items, "item")
    if len(user_ids) != len(item_ids):
        raise ValueError(f"users and items must be one per interaction: {len(user_ids)} users, {len(item_ids)} items")
    _check_aligned({"users": users, "items": items, "weights": weights})
    values = _weights(weights, len(user_ids))
    return interactions_to_dataset(user_ids, item_ids, values.tolist(), name, name, duplicates=duplicates,
                                   lines=_Places(users), unit="position")


UNKNOWN_ITEMS = ("refuse", "skip")  # what rows_of_items does with an item the model does not have
# Items given without weights to a model whose training users' items had them (InputTransform.weighted)
UNWEIGHTED = ("the model was trained on users whose items carry weights (ratings, counts, repeats summed), and these "
              "items weigh 1 each, as no training user's did: it may rank them less well than with weights")


def model_rows_of_items(names, weighted: bool, ignored, items, weights=None, unknown: str = "refuse",
                        by_id: str = "X") -> tuple[sp.csr_matrix, list[str]]:
    """A recommendation model's input rows from each row's items by name (:func:`rows_of_items`),
    and what to warn of: items without ``weights`` where the model's training users weighed theirs
    (``weighted``), items ``unknown="skip"`` left out, and items in no training row (``ignored``,
    the input transform's untrained features), read as nothing. ``names``: the model's label
    names; ``by_id``: how the caller gives rows by id instead, where two items share a name."""
    said = [f"{UNWEIGHTED}: give weights=, as the file has them"] if weights is None and weighted else []
    items = list(items) if not isinstance(items, (str, dict)) else items  # a generator is read once, here
    lacking = items_lacking(names, items) if unknown == "skip" and not isinstance(items, (str, dict)) else []
    rows = rows_of_items(names, items, weights, shared=f"give those rows by id ({by_id})", unknown=unknown)
    if lacking:
        said.append(skipped_note(lacking, "unknown='skip'"))
    untrained = np.intersect1d(rows.indices, np.asarray(ignored if ignored is not None else [], np.int64))
    if untrained.size:
        said.append(f"items in no training row, so read as nothing (and never ranked): "
                    f"{some_of(repr(names[j]) for j in untrained)}")
    return rows, said


def skipped_note(lacking: Sequence[str], choice: str) -> str:
    """What a row of items says of the items the model lacks (:func:`items_lacking`) that
    ``choice`` (``unknown='skip'``, ``--unknown-items skip``) left out of it."""
    return (f"{len(lacking)} item{'s' * (len(lacking) > 1)} the model does not have, left out of the rows ({choice}): "
            f"{some_of(map(repr, lacking))}")


def items_lacking(names: Sequence[str], items: Iterable[Sequence]) -> list[str]:
    """The items of rows of ``items`` (lists of names, whole numbers read as their text) that
    ``names`` (a model's label names) lacks, each once, in the order first met: what
    :func:`rows_of_items` refuses, or leaves out with ``unknown="skip"``."""
    known = set(names)
    texts = (str(int(name)) if _whole_number(name) else name for row in items for name in row)
    return list(dict.fromkeys(name for name in texts if name not in known))


def rows_of_items(names: Sequence[str], items: Iterable[Sequence[str]],
                  weights: Iterable[Sequence[float]] | None = None, shared: str = "a name cannot tell which",
                  unknown: str = "refuse", skip_hint: str = "unknown='skip'") -> sp.csr_matrix:
    """Input rows of a recommendation model from each row's items by name (``names``: the model's
    label names, an interactions file's item ids, whose positions are its item ids; a whole number
    is read as its text, as :func:`from_interactions` keeps ids), one row per list of ``items``,
    each item at ``weights``' value (default 1 each). ``shared``: what the refusal of a name that
    two items share tells the caller to do instead. ``unknown``: ``refuse`` a name the model does
    not have (an item new since it was trained), or ``skip`` it (its row is the rest of its
    items, as if the item were not there); ``skip_hint`` names that choice in the refusal.

    Raises:
        ValueError: items not given as one list of names per row, weights not one positive
            number per item, a name the model does not have (named; not with ``skip``), one two
            items share (MovieLens titles: send ids), or an item twice in a row.
    """
    if unknown not in UNKNOWN_ITEMS:
        raise ValueError(f"unknown must be one of {UNKNOWN_ITEMS}, got {unknown!r}")
    index = {}
    for position, name in enumerate(names):
        index.setdefault(name, []).append(position)
    items = list(items) if not isinstance(items, (str, dict)) else items  # a generator is read once, here
    if isinstance(items, (str, dict)) or any(isinstance(row, (str, dict, set)) for row in items):
        raise ValueError("items must be one list of names per row ([['i3', 'i17']] for one user)")
    rows = [[str(int(name)) if _whole_number(name) else name.strip() if isinstance(name, str) else name
             for name in row] for row in items]  # spaces around an id are no part of it, as read from files
    odd = [name for row in rows for name in row if not isinstance(name, str)]
    if odd:
        raise ValueError(f"item names are text (or whole numbers, read as their text), as the model's labels "
                         f"are: got {odd[0]!r} ({type(odd[0]).__name__})")
    weights = list(weights) if weights is not None else [[1.0] * len(row) for row in rows]
    if len(weights) != len(rows) or any(np.ndim(w) != 1 or len(w) != len(r)
                                        for w, r in zip(weights, rows, strict=True)):
        raise ValueError("weights must be one list per row, one weight per item ([[2.0, 1.0]])")
    given = [w for row in weights for w in row]
    odd = [w for w in given if isinstance(w, (bool, np.bool_)) or not isinstance(w, Real)]
    if odd:  # text or True would be read as a number silently
        raise ValueError(f"weights must be numbers, as an interactions file's are, got {odd[0]!r} "
                         f"({type(odd[0]).__name__})")
    values = np.asarray(given, np.float64)
    if values.size and not (np.isfinite(values) & (values > 0)).all():
        bad = float(values[~(np.isfinite(values) & (values > 0))][0])
        raise ValueError(f"weights must be positive finite numbers, as an interactions file's are, got {bad!r}" + (
            " (an item of weight 0 is no interaction: leave it out)" if bad == 0 else ""))
    lacking = [name for row in rows for name in row if name not in index]
    if lacking and unknown == "skip":
        kept = [[name in index for name in row] for row in rows]
        rows = [[name for name, keep in zip(row, keeps, strict=True) if keep] for row, keeps in zip(rows, kept,
                                                                                                      strict=True)]
        values = np.asarray([w for row, keeps in zip(weights, kept, strict=True)
                             for w, keep in zip(row, keeps, strict=True) if keep], np.float64)
    elif lacking:
        found = same_number_ids(lacking, index)
        raise ValueError(f"items the model does not have: {some_of(map(repr, lacking))}"
                         + (f" ({same_number_pairs(found)}: the model's items {OTHER_ZEROS}? ids are compared as "
                            "text)" if found else "")
                         + f" (its items are named by its label names, e.g. {names[0]!r}: an interactions "
                           f"file's item ids, MovieLens' titles; an item it never trained on has no row; items new "
                           f"since it was trained: {skip_hint} ranks for the rest of each row's)")
    twice = sorted({name for row in rows for name in row if len(index[name]) > 1})
    if twice:
        raise ValueError(f"{', '.join(map(repr, twice[:3]))} name{'s' * (len(twice) == 1)} more than one item "
                         f"(ids {index[twice[0]]}{', ...' if len(twice) > 1 else ''}): {shared}")
    ids = [index[name][0] for row in rows for name in row]
    row_of = [r for r, row in enumerate(rows) for _ in row]
    matrix = sp.csr_matrix((values.astype(np.float32), (row_of, ids)), shape=(len(rows), len(names)))
    if matrix.nnz != len(ids):
        raise ValueError("an item appears twice in a row: send each once, with its summed weight")
    return matrix
