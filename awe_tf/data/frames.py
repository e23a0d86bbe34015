"""pandas DataFrames, read by their names: SciPy and NumPy read a frame by position and drop its
column and row names, so a frame given with its columns in another order than the data's, or
under names other than the features', would be read as other features without a word. pandas is
not a requirement: a frame is told by its ``columns`` and ``index``."""

from __future__ import annotations

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
        bad = next((str(column) for column in frame.columns if not _numbers(frame[column])), None)
        named = f" (column {bad!r})" if bad is not None else ""
        raise ValueError(f"{what} is a DataFrame with values that are not numbers{named}: "
                         f"{str(error).splitlines()[0]}") from None


def by_position(X, names=None):
    """``X`` as a matrix read by position: a pandas DataFrame's columns in the order of ``names``
    (the model's features by name, where it knows them: a recommendation model's items), or, where
    no names are known, a frame whose columns are numbered 0, 1, ... in order; a frame with other
    columns is refused (read by position, it would give features other than the named ones)."""
    if not is_frame(X):
        return X
    columns = [str(column) for column in X.columns]
    place = {column: i for i, column in enumerate(columns)}
    if names is not None and len(place) == len(columns) and sorted(columns) == sorted(str(name) for name in names):
        return frame_values(X[[X.columns[place[str(name)]] for name in names]], "inputs")
    if columns != [str(i) for i in range(len(columns))]:
        raise ValueError("inputs are a DataFrame with named columns, which the model reads by position: give "
                         + ("its columns named as the model's items (label_names), or " if names is not None else "")
                         + "df.to_numpy() with the columns in the training data's order")
    return frame_values(X, "inputs")
