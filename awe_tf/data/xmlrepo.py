"""Reader for the Extreme Classification Repository text format.

The first line is ``N F L`` (examples, features, labels); each following line is
``l1,l2,... f:v f:v ...`` with 0-based label and feature indices (the label list may be empty),
its parts separated by spaces or tabs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import ANNOTATION, Dataset
from awe_tf.data.errors import DataFormatError, parse_float, parse_int
from awe_tf.data.text import check_duplicates, data_name, text_lines


def read_xmlrepo(path, name: str | None = None, duplicates: str = "error") -> Dataset:
    """Read one file of the repository's format into a data set. Its features are sparse
    values (bag-of-words or tf-idf), kept as they are. A feature or label given twice in a row
    is an error, or with ``duplicates="sum"`` feature values add up (a label stays one)."""
    path = Path(path)
    lines = [line for _, line in text_lines(path)]
    if not lines or not lines[0].strip():
        raise DataFormatError(path, "empty file; expected a header 'N F L'", 1)
    header = lines[0].split()
    if len(header) != 3:
        raise DataFormatError(path, f"header must be 'N F L', got {lines[0]!r}", 1)
    n, n_features, n_labels = (parse_int(path, h, 1, "header count") for h in header)
    if min(n, n_features, n_labels) < 1:
        raise DataFormatError(path, f"header counts 'N F L' must be at least 1, got {lines[0].strip()!r}", 1)
    body = [(i, line) for i, line in enumerate(lines[1:], start=2) if line.strip()]
    if len(body) != n:
        blank = [i for i, line in enumerate(lines[1:], start=2) if not line.strip()]
        shown = ", ".join(map(str, blank[:5])) + (", ..." if len(blank) > 5 else "")
        raise DataFormatError(path, f"header says {n} examples but the file has {len(body)}" + (
            f" (blank lines, which are no row: {shown}; a row with no labels and no features cannot be written)"
            if blank else ""), 1)
    xr, xc, xv, xl, yr, yc, yl = [], [], [], [], [], [], []
    for row, (line_no, line) in enumerate(body):
        parts = line.split()  # spaces or tabs
        first = parts[0]
        if ":" in first:  # no labels on this row
            labels_text, features = "", parts
        else:
            labels_text, features = first, parts[1:]
        for text in labels_text.split(",") if labels_text else ():
            if not text:
                raise DataFormatError(path, f"empty label in the list {labels_text!r} (a row's labels are one "
                                      "comma-separated list without spaces)", line_no)
            label = parse_int(path, text, line_no, "label index")
            if not 0 <= label < n_labels:
                raise DataFormatError(path, f"label index {label} out of range (0..{n_labels - 1})", line_no)
            yr.append(row)
            yc.append(label)
            yl.append(line_no)
        for token in filter(None, features):
            if ":" not in token:
                raise DataFormatError(path, f"feature {token!r} is not 'index:value' (a row's labels come first, as "
                                      "one comma-separated list without spaces)", line_no)
            index_text, value_text = token.split(":", 1)
            index = parse_int(path, index_text, line_no, "feature index")
            if not 0 <= index < n_features:
                raise DataFormatError(path, f"feature index {index} out of range (0..{n_features - 1})", line_no)
            xr.append(row)
            xc.append(index)
            xv.append(parse_float(path, value_text, line_no, f"feature {index}"))
            xl.append(line_no)
    check_duplicates(path, xr, xc, xl, lambda i: f"feature {xc[i]}", duplicates)
    check_duplicates(path, yr, yc, yl, lambda i: f"label {yc[i]}", duplicates)
    X = sp.csr_matrix((np.asarray(xv, np.float32), (xr, xc)), shape=(n, n_features))
    Y = sp.csr_matrix((np.ones(len(yr), np.float32), (yr, yc)), shape=(n, n_labels))
    X.sum_duplicates()
    X.eliminate_zeros()  # a stored 0 is no input, as everywhere else
    Y.sum_duplicates()
    Y.data[:] = 1.0
    return Dataset(
        X=X,
        Y=Y,
        feature_names=[f"f{i}" for i in range(n_features)],
        label_names=[f"l{i}" for i in range(n_labels)],
        task=ANNOTATION,
        name=name or data_name(path),
        numeric_features=np.zeros(n_features, bool),
    )
