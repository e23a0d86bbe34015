"""pandas DataFrames, read by their names: SciPy and NumPy read a frame by position and drop its
column and row names, so a frame given with its columns in another order than the data's, or
under names other than the features', would be read as other features without a word. pandas is
not a requirement: a frame is told by its ``columns`` and ``index``."""

from __future__ import annotations

import collections

import numpy as np
import scipy.sparse as sp


def is_frame(value) -> bool:
    """Whether ``value`` is a DataFrame (it has named columns and an index)."""
    return hasattr(value, "columns") and hasattr(value, "index")


def _numbers(values) -> bool:
    """Whether a column's values read as numbers."""
    try:
        np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def frame_values(frame, what: str):
    """A pandas DataFrame's values as a matrix SciPy reads: a sparse frame's as its sparse matrix
    (not made dense), any other's as numbers, a column that holds none named."""
    if hasattr(frame, "sparse"):  # only a frame of sparse columns has the accessor
        return sp.csr_matrix(frame.sparse.to_coo())
    try:
        return np.asarray(frame, dtype=np.float64)
    except (TypeError, ValueError) as error:
        if hasattr(frame, "isna") and frame.isna().to_numpy().any():  # pandas' NA, which NumPy cannot read
            column = next(str(c) for c in frame.columns if frame[c].isna().to_numpy().any())
            raise ValueError(f"{what} is a DataFrame with missing values (column {column!r}): fill them, "
                             "fillna(0)") from None
        bad = next((str(column) for column in frame.columns if not _numbers(frame[column])), None)
        named = f" (column {bad!r})" if bad is not None else ""
        words = (f"; categories as one 0/1 column per value: pd.get_dummies(df, columns=[{bad!r}], dtype=float)"
                 if bad else "")
        raise ValueError(f"{what} is a DataFrame with values that are not numbers{named}: "
                         f"{str(error).splitlines()[0]}{words}") from None


def by_position(X, names=None, every: bool = False):
    """``X`` as a matrix read by position: a pandas DataFrame's columns by name where the model knows
    its features' names (``names``: a recommendation model's items, in any order and any subset of
    them, an item without a column 0 in every row, no interaction; with ``every``, an annotation
    export's features, each of which must have its column, in any order: a feature left out
    would be read as the value 0, which standardised is not its mean); or, where no names are
    known, a frame whose columns are numbered 0, 1, ... in order. A frame with other columns is
    refused (read by position, it would give features other than the named ones), and so is one
    naming a feature that two share (MovieLens titles)."""
    if not is_frame(X):
        return X
    columns = [str(column) for column in X.columns]
    if not columns:
        raise ValueError("inputs are a DataFrame with no column: give a column per feature")
    odd = ""
    what = "features" if every else "items"
    if names is not None:
        position = {}
        for i, name in enumerate(names):
            position.setdefault(str(name), []).append(i)
        unknown = [column for column in columns if column not in position]
        twice = [column for column, count in collections.Counter(columns).items() if count > 1]
        given = set(columns)
        missing = [name for name in position if name not in given] if every else []
        if not unknown and not twice and not missing:
            shared = next((column for column in columns if len(position[column]) > 1), None)
            if shared is not None:
                raise ValueError(f"inputs are a DataFrame with a column named {shared!r}, the name of "
                                 f"{len(position[shared])} of the model's {what}: give rows by position "
                                 f"(df.to_numpy() with every {what[:-1]}'s column in the model's order)")
            rows = sp.coo_matrix(frame_values(X, "inputs"))
            at = np.asarray([position[column][0] for column in columns], np.int64)
            return sp.csr_matrix((rows.data, (rows.row, at[rows.col])), shape=(rows.shape[0], len(names)))
        if unknown:
            shown, said = unknown, f"not among the model's {what}"
        elif twice:
            shown, said = twice, "a column twice"
        else:
            shown, said = missing, f"{what} without a column"
        odd = f" ({', '.join(map(repr, shown[:3]))}{' and more' if len(shown) > 3 else ''}: {said})"
    if columns != [str(i) for i in range(len(columns))]:
        numbered = all(column.isdigit() for column in columns)
        kind = "numbered columns other than 0, 1, 2, ... in order" if numbered else "named columns"
        by_name = ("columns named as the model's items (label_names; any subset, in any order), or " if not every
                   else "a column named as each of the model's features (feature_names, features.json; in any "
                   "order), or ") if names is not None else ""
        read = "by position" if names is None else f"by its {what}' names, each once" + (
            " and only those" if unknown else "")
        raise ValueError(f"inputs are a DataFrame with {kind}{odd}, which the model reads {read}: give "
                         f"{by_name}df.to_numpy() with the columns in the training data's order")
    return frame_values(X, "inputs")
