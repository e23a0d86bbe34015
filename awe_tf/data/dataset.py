"""The in-memory form of every data set: a sparse input matrix X and a label matrix Y."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import numbers
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.errors import BELOW_NORMAL, FLOAT32_TINY, is_number
from awe_tf.data.frames import frame_values, is_frame

ANNOTATION = "annotation"
RECOMMENDATION = "recommendation"
# A split's parts' digests (Dataset.fingerprint) as a run records them, and the part each is of
PART_FINGERPRINTS = {"data_fingerprint": "training", "test_fingerprint": "test"}


def check_finite_rows(X: sp.csr_matrix, what: str) -> None:
    """Refuse a float32 CSR ``X`` holding NaN or infinite values (a value beyond float32's range
    became infinite in the conversion), naming the first row that holds one; the message starts
    with ``what``."""
    if X.nnz and not np.all(np.isfinite(X.data)):
        row = _row_of(X, np.flatnonzero(~np.isfinite(X.data))[0])
        raise ValueError(f"{what} NaN or infinite values (or values beyond float32's range, 3.4e38), first in "
                         f"row {row}" + (" (a pivot's empty cells? fill them with 0: fillna(0))"
                                         if np.isnan(X.data).any() else ""))


CHECKED_AT_ONCE = 1 << 20  # values :func:`refuse_subnormal` checks at a time


class ValuesRefused(ValueError):
    """Values that read as numbers but cannot be taken as they are (text, masked entries, values
    float32 reads as 0), named by where they are; not a matter of the matrix's shape."""


def refuse_subnormal(values: np.ndarray, what: str, place: Callable[[int], str] | None = None) -> None:
    """Refuse ``values`` (a matrix's stored values) of wider floats than float32 holding a value
    other than 0 below float32's smallest normal number, which float32 holds without its digits
    or as 0 (a feature's value, a label read as 0), as the readers refuse such a value in a file.
    ``place``: where the value at a position of ``values`` is, in words (e.g. its row and column)."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return
    for start in range(0, values.size, CHECKED_AT_ONCE):  # a block at a time: no copies of a large array
        block = values[start : start + CHECKED_AT_ONCE]
        tiny = (np.abs(block) < FLOAT32_TINY) & (block != 0)
        if tiny.any():
            first = int(np.flatnonzero(tiny)[0])
            at = f" ({place(start + first)})" if place is not None else ""
            raise ValuesRefused(f"{what} holds {float(block[first])!r}{at}, {BELOW_NORMAL}: scale the column up, "
                                "or write 0")


def float_array(values, what: str) -> np.ndarray:
    """``values`` (an array, nested lists, a tensor) as a NumPy array of numbers in their own
    precision (Python objects, such as Decimal, as float64), checked: no text (numbers written as
    text are refused too), no masked entries, and, for wider floats than float32, no value other
    than 0 below float32's smallest normal number (:func:`refuse_subnormal`); each refusal names
    the value's row and column. NumPy's ValueError where ``values`` are not an array (rows of
    other lengths)."""
    if np.ma.is_masked(values):
        raise ValuesRefused(f"{what} is a masked array with masked entries: fill them first (X.filled(0))")
    array = np.asarray(values)
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"  # a DataFrame's values: F

    def place(i: int) -> str:
        if array.ndim != 2:
            return f"column {i}" if array.ndim == 1 else f"position {i}"
        return "row {}, column {}".format(*np.unravel_index(i, array.shape, order=order))

    if array.dtype.kind in "USO":
        flat = array.ravel(order=order)
        text = next((i for i, value in enumerate(flat) if isinstance(value, (str, bytes, np.str_, np.bytes_))), None)
        if text is not None:
            raise ValuesRefused(f"{what} holds text, {str(flat[text])!r} ({place(text)}): give numbers")
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            bad = next(i for i, value in enumerate(flat) if not is_number(value))
            raise ValuesRefused(f"{what} holds {type(flat[bad]).__name__} values, not numbers, e.g. {flat[bad]!r} "
                                f"({place(bad)})") from None
    refuse_subnormal(array.ravel(order=order), what, place)  # a view of a C or F array: no copy
    return array


def float32_matrix(values, what: str,
                   not_a_matrix: Callable[[Exception], Exception] | None = None) -> sp.csr_matrix:
    """``values`` (a SciPy sparse matrix, an array, nested lists, a tensor: rows x columns, or
    one row) as a float32 CSR matrix, checked as :func:`float_array` checks an array (a sparse
    matrix's stored values in their own precision). A value beyond float32's range becomes inf
    (for the caller's :func:`check_finite_rows`). Where SciPy or NumPy cannot read ``values`` as
    a matrix, their TypeError or ValueError, or what ``not_a_matrix(error)`` makes of it."""
    refused = not_a_matrix or (lambda error: error)
    try:
        if sp.issparse(values):
            matrix = sp.csr_matrix(values)  # in its own precision: values float32 would read as 0
            refuse_subnormal(matrix.data, what, lambda i: f"row {_row_of(matrix, i)}, column {matrix.indices[i]}")
            with np.errstate(over="ignore"):
                return matrix.astype(np.float32, copy=False)
        array = values if np.ma.isMaskedArray(values) else np.asarray(values)
        if array.ndim > 2:
            raise ValueError(f"a matrix has 2 dimensions (rows x columns), got {array.ndim}")
        array = float_array(array, what)
        with np.errstate(over="ignore"):
            return sp.csr_matrix(array, dtype=np.float32)
    except ValuesRefused:  # the values', which names them: not the matrix's
        raise
    except (TypeError, ValueError) as error:
        raise refused(error) from None


def _row_of(matrix: sp.csr_matrix, position: int) -> int:
    """The row of a CSR matrix's stored value at ``position`` of its ``data``."""
    return int(np.searchsorted(matrix.indptr, position, side="right") - 1)


def first_difference(names: list[str], others: list[str], ours: str = "in training", theirs: str = "there",
                     what: str = "feature") -> str:
    """Where two lists of names first differ, in words: ``names`` are ``ours``, ``others``
    ``theirs`` (with the columns of a nominal attribute whose values the two list in other orders:
    ``m`` of values ``{a,b,c}`` in training and ``{c,b,a}`` there).

    Example:
        >>> first_difference(["a", "b"], ["a", "c"])
        "feature 1 is 'c' there, 'b' in training ('b' is not there)"
        >>> first_difference(["a", "b", "c"], ["a", "c", "b"])
        "feature 1 is 'c' there, 'b' in training ('b' is feature 2 there)"
        >>> first_difference(["a", "b", "c"], ["a", "b"])
        "2 features there, 3 in training: the first not there is 'c' (feature 2)"
        >>> first_difference(["Mode"], ["mode"])
        "feature 0 is 'mode' there, 'Mode' in training ('Mode' is not there; the two differ in letter case only)"
        >>> print(first_difference(["m=b", "m=c"], ["m=b", "m=a"]))  # doctest: +NORMALIZE_WHITESPACE
        feature 1 is 'm=a' there, 'm=c' in training ('m=c' is not there; both are values of the nominal
        attribute 'm', a column each but its first value: does the file list its values in another order?
        list them as the training file does)
    """
    names, others = list(names), list(others)
    for index, (name, other) in enumerate(zip(names, others, strict=False)):
        if name != other:
            where = f"{what} {others.index(name)} {theirs}" if name in others else f"not {theirs}"
            where = f"{name!r} is {where}" + (lookalike(str(name), str(other)) or (
                other_value_order(str(name), str(other)) if what == "feature" else ""))
            return f"{what} {index} is {other!r} {theirs}, {name!r} {ours} ({where})"
    if len(others) == len(names):
        return f"{len(others)} {what}s {theirs}, {len(names)} {ours}, the same"
    shorter, longer, lacking = (others, names, theirs) if len(others) < len(names) else (names, others, ours)
    return (f"{len(others)} {what}s {theirs}, {len(names)} {ours}: the first not {lacking} is "
            f"{longer[len(shorter)]!r} ({what} {len(shorter)})")


def lookalike(name: str, other: str) -> str:
    """What makes two names that print alike differ, where that is all: their Unicode form (an
    accented letter as one character or as a letter and a combining accent: NFC against NFD), or
    letter case; else nothing."""
    import unicodedata

    if unicodedata.normalize("NFC", name) == unicodedata.normalize("NFC", other):
        return "; the two are the same letters in another Unicode form (NFC against NFD): save both files alike"
    if name.casefold() == other.casefold():
        return "; the two differ in letter case only"
    return ""


def other_value_order(name: str, other: str) -> str:
    """Where two feature names are columns of one nominal attribute (``m=a``, ``m=c``: a column
    for each of its values but the first), what that says of two files' attributes: their values
    listed in other orders; else nothing."""
    attribute, value = name.partition("=")[::2]
    if value and other.partition("=")[0] == attribute and other.partition("=")[2]:
        return (f"; both are values of the nominal attribute {attribute!r}, a column each but its first value: "
                "does the file list its values in another order? list them as the training file does")
    return ""


def are_column_numbers(names) -> bool:
    """Whether names are only their column numbers (``3`` or ``f3`` at position 3), as data without
    names of its own has them: they name nothing its sizes do not."""
    return all(str(name) in (str(i), f"f{i}") for i, name in enumerate(names))


def labelled_rows(Y) -> np.ndarray:
    """The rows of a label matrix with at least one label, in order: the rows that give training
    pairs, and the only ones a neighbour-based method (the k-NN baselines, an affinity built from
    the training set) takes as neighbours."""
    return np.flatnonzero(sp.csr_matrix(Y).getnnz(axis=1) > 0)


def non_binary_columns(X: sp.csr_matrix) -> np.ndarray:
    """Which columns of ``X`` hold a value other than 0 and 1 (numeric, not binary), a mask.

    Example:
        >>> non_binary_columns(sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [0.0, 2.0, 1.0]]))).tolist()
        [False, True, False]
    """
    other = X.data != 1.0  # the stored zeros a matrix may keep are not read: 0 is binary
    other &= X.data != 0.0
    return np.bincount(X.indices[other], minlength=X.shape[1]) > 0


CATEGORY_CODING = ("a category (an ARFF nominal attribute) is one column per value but the first, named "
                   "attribute=value: a row holds 1 on the column of its value (none for the first value), never "
                   "another number, never two columns of one attribute")  # no apostrophe: TF escapes it in errors


def category_columns(categories, n_features: int, what: str = "categories") -> tuple[tuple[int, ...], ...]:
    """``categories`` (:attr:`Dataset.categories`; None: none) as tuples, checked.

    Raises:
        ValueError: a category without columns, ids not ascending in one, an id from 0 to
            ``n_features`` - 1 in none or in two; the message starts with ``what``.
    """
    groups = tuple(tuple(int(column) for column in np.asarray(group, np.int64).reshape(-1))
                   for group in categories or ())
    seen = [column for group in groups for column in group]
    if any(not group for group in groups) or len(set(seen)) != len(seen) \
            or any(list(group) != sorted(group) for group in groups) \
            or any(not 0 <= column < n_features for column in seen):
        raise ValueError(f"{what} are lists of column ids (ascending, from 0 to {n_features - 1}), one list a "
                         f"category, no column in two, got {[list(group) for group in groups][:3]}")
    return groups


def category_table(categories) -> tuple[np.ndarray, np.ndarray]:
    """The columns of ``categories`` in ascending order, and the category of each (its place in
    ``categories``): the table both checks of a row's coding look a feature id up in."""
    columns = np.concatenate([np.asarray(group, np.int64) for group in categories])
    order = np.argsort(columns)
    return columns[order], np.repeat(np.arange(len(categories)), [len(group) for group in categories])[order]


def category_coding_error(X: sp.csr_matrix, categories, names=None) -> str | None:
    """Where rows of ``X`` code a category otherwise than as its reader does: a value other than
    1 on a column of a category (the value's place in the list given as a weight), or two columns
    of one category in a row.

    Args:
        X: raw rows, CSR without stored zeros.
        categories: :attr:`Dataset.categories`.
        names: the features' names, to name a column by (None: by number).

    Returns:
        The first such row in words, or None.

    Example:
        >>> X = sp.csr_matrix(np.array([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]], np.float32))
        >>> category_coding_error(X, [(0, 1)], ["genre=pop", "genre=rock", "tempo"])
        "row 1 has two values of one category ('genre=pop', 'genre=rock')"
        >>> category_coding_error(X * 2, [(0, 1)])
        'row 0 has 2 on column 0, a column of a category'
        >>> category_coding_error(X[:1], [(0, 1)]) is None
        True
    """
    if not categories or not X.nnz:
        return None
    columns, group_of = category_table(categories)
    place = np.minimum(np.searchsorted(columns, X.indices), columns.size - 1)
    hit = (columns[place] == X.indices) & (X.data != 0)
    if not hit.any():
        return None
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))[hit]
    column_name = (lambda c: repr(str(names[c]))) if names is not None else (lambda c: f"column {c}")
    odd = np.flatnonzero(X.data[hit] != 1)
    entries = np.flatnonzero(hit)
    keys = rows * len(categories) + group_of[place[hit]]
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    twice = first[counts > 1]
    if odd.size and (not twice.size or rows[odd[0]] <= rows[twice.min()]):
        entry = entries[odd[0]]
        return f"row {rows[odd[0]]} has {X.data[entry]:g} on {column_name(X.indices[entry])}, a column of a category"
    if twice.size:
        at = twice.min()
        both = entries[keys == keys[at]]
        return f"row {rows[at]} has two values of one category ({', '.join(column_name(c) for c in X.indices[both])})"
    return None


@dataclasses.dataclass
class Dataset:
    """Examples as rows of a sparse input matrix ``X`` and a binary label matrix ``Y``.

    Attributes:
        X: ``n x |X|`` float32 CSR matrix of input features.
        Y: ``n x |Y|`` float32 CSR matrix, 1 where the label is positive (any positive value given
            reads as 1, as the readers read a file's; a negative one is refused).
        feature_names: one name per column of ``X`` (None: ``"0"``, ``"1"``, ...).
        label_names: one name per column of ``Y`` (None: ``"0"``, ``"1"``, ...).
        task: ``"annotation"`` (x are features, y labels) or ``"recommendation"`` (x are the items
            a user interacted with and y the same item vocabulary: ``X`` and ``Y`` share columns).
        name: a short name for messages and reports.
        numeric_features: boolean mask over the columns of ``X``; numeric columns are
            standardised (by the model's input transform), binary (bag-of-words) ones are kept
            as they are. None (the default): for annotation, the columns holding a value other
            than 0 and 1 (the protocols standardise numeric columns and keep binary ones; a
            reader marks a file's own numeric attributes, and one that is 0 in half the rows or
            more, such as tf-idf weights, is left as it is even so); for recommendation, none (a
            user's items and their weights).
        row_ids: the original id of each row (user id, example index), for reports.
        numeric_scale: ``(mean, std)`` of the numeric columns over the protocol's training
            part, set by the split; a model trained on any rows of that part (its validation
            carve-out too) standardises with these. None: the model fits them on its own rows.
        values_as_ones: whether ``X`` holds 1 for every entry whatever value the data file gave it
            (MovieLens ratings read as implicit feedback). A model trained on it reads any
            non-zero raw value as 1, so a row sent with the file's values ranks as in training.
        header: the fields of a table's first line that the reader took for the columns' names,
            not data (None: it had none).
        test_part: whether this is the test part of a protocol split (``load_dataset``,
            ``load_split``, ``protocol_split``), its rows included: training refuses it (a model
            trained on it would be scored on the rows it learnt from).
        notes: what the reader saw that may not be what the file's author meant (an attribute
            that looks like a label left out of the label list), for commands to print.
        categories: the column ids of each category, one tuple a category: an ARFF nominal
            attribute read as one 0/1 column per value but its first (``attribute=value``). A
            model trained on the data refuses rows coding one otherwise (a value's place in the
            list as a weight, two values of one attribute): :func:`category_coding_error`.
    """

    X: sp.csr_matrix
    Y: sp.csr_matrix
    feature_names: list[str] | None = None
    label_names: list[str] | None = None
    task: str = ANNOTATION
    name: str = "data"
    numeric_features: np.ndarray | None = None
    row_ids: np.ndarray | None = None
    numeric_scale: tuple | None = None
    values_as_ones: bool = False
    header: tuple[str, ...] | None = None
    test_part: bool = False
    notes: tuple[str, ...] = ()
    categories: tuple[tuple[int, ...], ...] = ()

    def _refuse_one_value_per_row(self, listed: bool) -> None:
        """Refuse a Y of one value per row (class labels, ``y`` of scikit-learn), which SciPy would
        read as one row of labels."""
        if self.X is None or self.Y is None:  # said as such below
            return
        flat = getattr(self.Y, "ndim", None) == 1 or listed and len(self.Y) and all(
            isinstance(value, numbers.Number) for value in self.Y)
        if not flat:
            return
        try:
            one_row = np.ndim(self.X) < 2 or np.shape(self.X)[0] == 1  # a 1-D X is one row, as SciPy reads it
        except ValueError:  # rows of several lengths: said where X is read
            return
        if not one_row:
            raise ValueError(f"{self.name}: Y is one value per row ({len(self.Y)} values): Y must be a matrix of rows "
                             "x labels, 1 where a label applies (one class per row: np.eye(n_classes)[y] makes it)")

    def _not_a_matrix(self, part: str, values, error: Exception) -> ValueError:
        """The refusal of ``values`` given as X or Y (``part``) that SciPy cannot read as a matrix
        of numbers."""
        return ValueError(f"{self.name}: {part} must be a matrix of rows x columns (SciPy sparse or NumPy"
                          f"{', 1 where a label applies' if part == 'Y' else ''}), got a {type(values).__name__} "
                          f"SciPy cannot read as one"
                          f"{' (lists of label ids? make a 0/1 matrix of them first)' if part == 'Y' else ''}: "
                          f"{str(error).splitlines()[0][:120]}")

    def __post_init__(self):
        listed = isinstance(self.Y, (list, tuple))  # before it is a matrix: lists of label ids look alike
        self._names_of_frames()
        self._refuse_one_value_per_row(listed)
        for part in ("X", "Y"):
            if getattr(self, part) is None:
                raise ValueError(f"{self.name}: {part} is None: a Dataset needs both X and Y")
            values = getattr(self, part)  # a value beyond float32's range is inf in the matrix, refused below
            setattr(self, part, float32_matrix(values, f"{self.name}: {part}",
                                               functools.partial(self._not_a_matrix, part, values)))
        # names are text, as a model keeps its label names and an export writes them
        self.feature_names = [str(name) for name in (self.feature_names if self.feature_names is not None
                                                     else range(self.X.shape[1]))]
        self.label_names = [str(name) for name in (self.label_names if self.label_names is not None
                                                   else range(self.Y.shape[1]))]
        self.X.sort_indices()
        self.Y.sort_indices()
        if self.X.shape[0] != self.Y.shape[0]:
            raise ValueError(f"{self.name}: X has {self.X.shape[0]} rows but Y has {self.Y.shape[0]}")
        if len(self.feature_names) != self.X.shape[1]:
            raise ValueError(f"{self.name}: {len(self.feature_names)} feature names for {self.X.shape[1]} columns")
        if len(self.label_names) != self.Y.shape[1]:
            raise ValueError(f"{self.name}: {len(self.label_names)} label names for {self.Y.shape[1]} labels")
        if self.task not in (ANNOTATION, RECOMMENDATION):
            raise ValueError(f"task must be {ANNOTATION!r} or {RECOMMENDATION!r}, got {self.task!r}")
        if self.task == RECOMMENDATION and self.X.shape[1] != self.Y.shape[1]:
            raise ValueError("recommendation data needs X and Y over the same item vocabulary")
        if self.task == ANNOTATION:  # (a recommendation set's items may share a name: MovieLens titles)
            for part, names in (("label", self.label_names), ("feature", self.feature_names)):
                twice = next((name for name, count in Counter(names).items() if count > 1), None)
                if twice is not None:
                    raise ValueError(f"{self.name}: two {part}s are named {twice!r}: a model names its {part}s by "
                                     f"these names ({'its answers' if part == 'label' else 'rows read by column'}), "
                                     f"so each must be one {part}'s; rename one")
        if listed and self.Y.nnz and not np.all(self.Y.data == 1.0):
            raise ValueError(f"{self.name}: Y, given as lists, holds values other than 0 and 1 (first "
                             f"{self.Y.data[self.Y.data != 1.0][0]:g}): lists of label ids? make a 0/1 matrix of them "
                             "first (an array or SciPy matrix of other positive values reads them as 1)")
        if self.Y.nnz and not np.all(self.Y.data == 1.0):  # as the readers read labels (docs/protocols.md)
            if np.isnan(self.Y.data).any():
                raise ValueError(f"{self.name}: Y holds NaN: give 0 where a label does not apply (a pivot's empty "
                                 "cells? fill them with 0: fillna(0))")
            if self.Y.data.min() < 0 or not np.all(np.isfinite(self.Y.data)):
                odd = self.Y.data[~(np.isfinite(self.Y.data) & (self.Y.data >= 0))][:3].tolist()
                raise ValueError(f"{self.name}: Y holds a positive value where a label applies and 0 (or nothing) "
                                 f"elsewhere, got {odd} (a -1/+1 encoding? give 0 where a label does not apply)")
            self.Y = self.Y.copy()  # any positive value is a positive label: 1, the zeros dropped
            self.Y.data[:] = 1.0 * (self.Y.data > 0)
            self.Y.eliminate_zeros()
        if self.task == ANNOTATION and self.X.nnz and self.X.shape == self.Y.shape and self.X.nnz == self.Y.nnz \
                and self.feature_names == self.label_names and np.array_equal(self.X.indptr, self.Y.indptr) \
                and np.array_equal(self.X.indices, self.Y.indices):
            raise ValueError(f"{self.name}: X and Y hold the same entries under the same names, each row's labels its "
                             "own inputs: as annotation a model learns to give a row's inputs back. For a user's "
                             "items in and out give task='recommendation' (each pair's input then leaves its own "
                             "item out, and rankings leave out the user's items)")
        leaked = self._labels_among_inputs()
        if leaked:
            raise ValueError(f"{self.name}: X holds the label column{'s' * (len(leaked) > 1)} "
                             f"{', '.join(map(repr, leaked[:3]))}{' and more' if len(leaked) > 3 else ''} (a feature "
                             "named as a label, present in the same rows): a model would read each row's labels from "
                             "its inputs; give X without them (df.drop(columns=label_columns))")
        if self.task == RECOMMENDATION and self.X.nnz and self.X.data.min() < 0:
            raise ValueError(f"{self.name}: recommendation inputs are items with weights above 0 (as an interactions "
                             f"file's), got {self.X.data[self.X.data < 0][:3].tolist()}")
        check_finite_rows(self.X, f"{self.name}: X holds")
        self.categories = category_columns(self.categories, self.X.shape[1], f"{self.name}: categories")
        if self.numeric_features is None:  # a category's columns are 0/1, whatever values they hold
            self.numeric_features = non_binary_columns(self.X) if self.task == ANNOTATION \
                else np.zeros(self.X.shape[1], dtype=bool)
            self.numeric_features[[column for group in self.categories for column in group]] = False
        self.numeric_features = np.asarray(self.numeric_features)
        if self.numeric_features.dtype != bool or self.numeric_features.shape != (self.X.shape[1],):
            raise ValueError(f"{self.name}: numeric_features is a boolean mask over X's {self.X.shape[1]} columns, "
                             f"got {self.numeric_features.dtype} of shape {self.numeric_features.shape}")
        if self.row_ids is None:
            self.row_ids = np.arange(self.X.shape[0])
        numeric = [column for group in self.categories for column in group if self.numeric_features[column]]
        if numeric:
            raise ValueError(f"{self.name}: feature {self.feature_names[numeric[0]]!r} is both a column of a category "
                             "(0 or 1) and numeric: give numeric_features False there, or leave it out")

    def _labels_among_inputs(self) -> list[str]:
        """For annotation, the features named as a label and present in exactly that label's rows:
        the label copied into the inputs (a frame's label columns left among its features). Column
        numbers, the default names, name nothing: feature 3 and label 3 may match by chance."""
        if self.task != ANNOTATION or not self.feature_names or not self.label_names:
            return []
        label_at = {str(name): j for j, name in enumerate(self.label_names)}
        shared = [(i, label_at[str(name)]) for i, name in enumerate(self.feature_names)  # columns numbered in both
                  if str(name) in label_at and not str(name) == str(i) == str(label_at[str(name)])]  # are no names
        if not shared:
            return []
        X, Y = sp.csc_matrix(self.X), sp.csc_matrix(self.Y)
        X.sort_indices()
        Y.sort_indices()
        return [str(self.feature_names[i]) for i, j in shared
                if X.indptr[i + 1] > X.indptr[i]
                and np.array_equal(X.indices[X.indptr[i]:X.indptr[i + 1]], Y.indices[Y.indptr[j]:Y.indptr[j + 1]])]

    def _names_of_frames(self) -> None:
        """Names from a pandas DataFrame given as X or Y (its columns, and its index as the row
        ids), which SciPy reads by position and without its names; names given beside a frame
        must be its columns, in order."""
        rows = [[str(row) for row in frame.index] for frame in (self.X, self.Y) if is_frame(frame)]
        if len(rows) == 2 and rows[0] != rows[1]:
            where = first_difference(rows[0], rows[1], "in X's", "in Y's", "row")
            raise ValueError(f"{self.name}: the DataFrames given as X and Y index other rows ({where}): a row's "
                             "labels are its own only in the same order; align them first (Y.loc[X.index])")
        for part, names in (("X", "feature_names"), ("Y", "label_names")):
            frame = getattr(self, part)
            if not is_frame(frame):
                continue
            columns = [str(column) for column in frame.columns]
            given = getattr(self, names)
            if given is None:
                setattr(self, names, columns)
            elif [str(name) for name in given] != columns:
                where = first_difference([str(name) for name in given], columns, f"in {names}", "in the frame",
                                         "column")
                raise ValueError(f"{self.name}: {names} differ from the columns of the DataFrame given as {part} "
                                 f"({where}): a frame is read by position, so give the names in its columns' order, "
                                 "or leave them out")
            if self.row_ids is None:
                self.row_ids = np.asarray(frame.index)
            setattr(self, part, frame_values(frame, f"{self.name}: {part}"))

    @classmethod
    def from_interactions(cls, users, items=None, weights=None, name: str = "interactions",
                          duplicates: str = "error") -> Dataset:
        """A recommendation data set from (user, item[, weight]) interactions in memory, as an
        interactions file of those rows reads (:func:`awe_tf.data.interactions.from_interactions`,
        which says what it takes and refuses)."""
        from awe_tf.data.interactions import from_interactions

        return from_interactions(users, items, weights, name=name, duplicates=duplicates)

    @property
    def n_examples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def n_labels(self) -> int:
        return self.Y.shape[1]

    def fingerprint(self) -> str:
        """A hash of the data's content (values, labels, names, task): two data sets share it
        only if they hold the same data, so a run can tell whether its data changed."""
        digest = hashlib.sha256()
        for matrix in (self.X, self.Y):
            matrix = sp.csr_matrix(matrix)
            matrix.sort_indices()
            for part in (np.asarray(matrix.shape, np.int64), matrix.indptr.astype(np.int64),
                         matrix.indices.astype(np.int64), matrix.data.astype(np.float32)):
                digest.update(part.tobytes())
        digest.update(json.dumps([self.feature_names, self.label_names, self.task,
                                  np.asarray(self.numeric_features, bool).tolist()]).encode("utf-8"))
        return digest.hexdigest()

    def same_content(self, other: Dataset) -> bool:
        """Whether ``other`` holds the same data (:meth:`fingerprint`), hashed only where the
        sizes already match."""
        return other is self or ((other.X.shape, other.X.nnz, other.Y.shape, other.Y.nnz)
                                 == (self.X.shape, self.X.nnz, self.Y.shape, self.Y.nnz)
                                 and other.fingerprint() == self.fingerprint())

    def rows_of(self, ids) -> np.ndarray:
        """The row numbers of the examples with these ``row_ids`` (a user's id as the data gives
        it, compared as text, spaces around it left out as the readers leave them), in the order given.

        Raises:
            KeyError: an id no row has, the first named; or one of several rows (the data's ids
                repeated, or told apart only by spaces around them), which rows_of cannot choose among.
            TypeError: one id given alone, not in a list (a text id would be read as its characters).
        """
        if isinstance(ids, (str, bytes, int, np.integer)):
            raise TypeError(f"rows_of takes a list of ids: rows_of([{ids!r}])")
        exact, loose = {}, {}
        for row, row_id in enumerate(self.row_ids):
            exact.setdefault(str(row_id), []).append(row)
            loose.setdefault(str(row_id).strip(), []).append(row)
        rows = []
        for given in ids:
            # spaces around an id are no part of it, as read from files; an id given as the data has
            # it is its row, where only those spaces tell the data's own ids apart (rows made in Python)
            text = str(given)
            matches = exact.get(text) or loose.get(text.strip(), [])
            if len(matches) > 1:
                named = [str(self.row_ids[row]) for row in matches[:3]]
                spaces = "; spaces around an id are left out" if len(set(named)) > 1 else ""
                raise KeyError(f"{text!r} is the id of {len(matches)} rows of {self.name} (rows {matches[:3]}: "
                               f"{', '.join(map(repr, named))}{spaces}): take such a row by its number, "
                               f"data.X[[{matches[0]}]]")
            if not matches:
                raise self._unknown_id(text.strip(), loose)
            rows.append(matches[0])
        return np.array(rows, dtype=np.int64)

    def _unknown_id(self, row_id: str, known: dict) -> KeyError:
        """The refusal of an id no row has, with some ids the data has (``known``, by text)."""
        from awe_tf.data.interactions import same_number_ids

        other = same_number_ids([row_id], known).get(row_id)
        return KeyError(f"no row of {self.name} has the id {row_id!r} (its {len(self.row_ids)} rows' ids are as its "
                        f"data gives them: {', '.join(map(str, list(known)[:3]))}, ...)" + (
                            f"; ids are compared as text, and {other!r} is the same number" if other else ""))

    def rows(self, index) -> Dataset:
        """The examples at ``index`` (an index array or boolean mask), as a new data set."""
        index = np.asarray(index)
        return dataclasses.replace(self, X=self.X[index], Y=self.Y[index], row_ids=self.row_ids[index])

    def with_matrices(self, X=None, Y=None) -> Dataset:
        return dataclasses.replace(self, X=self.X if X is None else X, Y=self.Y if Y is None else Y)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, task={self.task}, n={self.n_examples}, "
            f"|X|={self.n_features}, |Y|={self.n_labels}, nnz(X)={self.X.nnz}, nnz(Y)={self.Y.nnz})"
        )


HELD_OUT = ("", "test", "validation")  # what a Split's second part is for (Split.held_out)


@dataclasses.dataclass
class Split:
    """Train and test parts of one data set, as the protocol defines them.

    For recommendation, ``test.X`` holds each user's *training* items (the input at test time)
    and ``test.Y`` the held-out items; ``exclude`` is then the matrix of training positives that
    the ranking leaves out, and ``candidates`` the labels that may be ranked at all. The parts
    may share matrices (a recommendation split where every user is tested: ``test.X`` and
    ``exclude`` are the training part's own; of implicit data: ``train.X`` and ``train.Y`` hold
    the same arrays), so treat them as read-only. ``untested`` counts the users a recommendation
    split could not test (fewer items than it holds out): they are not in ``test``, and the
    metrics count them with the rows they leave out for having no positive. ``test_every``: n
    where the test part is every n-th row of one file (annotation data given without a test
    file), else 0. ``test_rows_file``: the file that listed the test part's rows, for a file split
    by the lists of rows shipped with it, else None, and ``test_rows_column`` the column (split)
    read there. ``held_out``: what the second
    part is for, ``"test"`` in the protocol split that ``load_dataset`` and ``load_split``
    return, ``"validation"`` in a validation carve-out, empty in a split built otherwise
    (training refuses a ``"test"`` split as its validation). ``carved_from``: the data set a
    validation carve-out was made from (its held-out rows are among that set's rows, so training
    on it with this split as its validation is refused), else None. ``own_test_file``: a
    recommendation split whose test part is a test file's interactions, not the protocol's draw.
    """

    train: Dataset
    test: Dataset
    exclude: sp.csr_matrix | None = None
    candidates: np.ndarray | None = None
    untested: int = 0
    test_every: int = 0
    test_rows_file: Path | None = None
    test_rows_column: int = 1
    held_out: str = ""
    carved_from: Dataset | None = dataclasses.field(default=None, repr=False, compare=False)
    own_test_file: bool = False

    def __post_init__(self):
        if self.held_out not in HELD_OUT:
            raise ValueError(f"held_out must be one of {HELD_OUT}, got {self.held_out!r}")
