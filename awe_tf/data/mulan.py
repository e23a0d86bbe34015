"""Reader for Mulan multi-label data: an ARFF file (dense or sparse rows) plus its label XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import ANNOTATION, Dataset
from awe_tf.data.errors import DataFormatError, parse_float, parse_int
from awe_tf.data.text import DUPLICATES, data_name, text_lines

_ATTRIBUTE = re.compile(r"@attribute\s+('(?:[^']|\\')*'|\"(?:[^\"]|\\\")*\"|\S+)\s+(.+)$", re.I)


def read_label_names(xml_path) -> list[str]:
    """The label names listed in a Mulan ``.xml`` file, in file order."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as err:
        raise DataFormatError(xml_path, f"cannot read the label list: {err}") from None
    names = [el.get("name") for el in root.iter() if el.tag.split("}")[-1] == "label"]
    if not names or any(n is None for n in names):
        raise DataFormatError(xml_path, "no <label name=...> entries found")
    if len(set(names)) != len(names):
        raise DataFormatError(xml_path, "a label name is listed twice")
    return names


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(name: str) -> str:
    """An attribute name or value as written, without its quotes; inside quotes Weka's escapes
    (a backslash before a quote, a backslash, %, t, n or r) are read as it writes them
    (``'rock\\'n\\'roll'`` is rock'n'roll); any other backslash stays."""
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        return re.sub(r"\\(['\"\\\\%tnr])", lambda m: _ESCAPES.get(m.group(1), m.group(1)), name[1:-1])
    return name


def read_arff(path, duplicates: str = "error"):
    """Parse an ARFF file (UTF-8 text).

    Args:
        duplicates: an attribute given twice in one sparse row is an ``error`` (default), or
            its values are added up (``sum``).

    Returns:
        ``(names, kinds, matrix, lines)``: attribute names, their kinds (``"numeric"`` or the
        tuple of nominal values), a CSR matrix of the values (nominal values as their float
        value), and the line each data row was read from.

    Raises:
        DataFormatError: naming the file and line of any malformed header or data row.
    """
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    path = Path(path)
    names: list[str] = []
    kinds: list = []
    rows, cols, vals = [], [], []
    row_lines: list[int] = []
    n_rows = 0
    in_data = False
    for line_no, raw in text_lines(path):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@relation"):
                continue
            if low.startswith("@attribute"):
                match = _ATTRIBUTE.match(line)
                if not match:
                    raise DataFormatError(path, f"malformed attribute line: {line[:80]!r}", line_no)
                name, kind = _unquote(match.group(1)), match.group(2).strip()
                if kind.lower() in ("numeric", "real", "integer"):
                    kinds.append("numeric")
                elif kind.startswith("{") and kind.endswith("}"):
                    kinds.append(tuple(_unquote(v.strip()) for v in kind[1:-1].split(",")))
                else:
                    raise DataFormatError(path, f"attribute {name!r} has unsupported type {kind!r}", line_no)
                names.append(name)
                continue
            if low.startswith("@data"):
                if not names:
                    raise DataFormatError(path, "@data before any @attribute", line_no)
                in_data = True
                continue
            raise DataFormatError(path, f"unexpected header line: {line[:80]!r}", line_no)
        if line.startswith("{"):
            if not line.endswith("}"):
                raise DataFormatError(path, "sparse row does not end with '}'", line_no)
            body = line[1:-1].strip()
            seen = set()
            for entry in filter(None, (e.strip() for e in body.split(","))):
                parts = entry.split()
                if len(parts) != 2:
                    raise DataFormatError(path, f"sparse entry {entry!r} is not 'index value'", line_no)
                index = parse_int(path, parts[0], line_no, "attribute index")
                if not 0 <= index < len(names):
                    raise DataFormatError(
                        path, f"attribute index {index} out of range (0..{len(names) - 1})", line_no
                    )
                if index in seen and duplicates == "error":
                    raise DataFormatError(path, f"attribute {names[index]!r} (index {index}) is given twice in this "
                                          "row; use duplicates='sum' (--duplicates sum) to add repeated entries "
                                          "up", line_no)
                seen.add(index)
                value = _value(path, parts[1], kinds[index], names[index], line_no)
                if value != 0.0:
                    rows.append(n_rows)
                    cols.append(index)
                    vals.append(value)
        else:
            fields = [f.strip() for f in line.split(",")]
            if len(fields) != len(names):
                raise DataFormatError(
                    path, f"row has {len(fields)} values but there are {len(names)} attributes", line_no
                )
            for index, text in enumerate(fields):
                value = _value(path, text, kinds[index], names[index], line_no)
                if value != 0.0:
                    rows.append(n_rows)
                    cols.append(index)
                    vals.append(value)
        row_lines.append(line_no)
        n_rows += 1
    if not in_data:
        raise DataFormatError(path, "no @data section (empty or not an ARFF file)")
    if n_rows == 0:
        raise DataFormatError(path, "the @data section has no rows")
    matrix = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(n_rows, len(names)),
    )
    matrix.sum_duplicates()
    return names, kinds, matrix, np.asarray(row_lines)


def _value(path, text: str, kind, name: str, line_no: int) -> float:
    text = _unquote(text)
    if text == "?":
        raise DataFormatError(path, f"missing value '?' for attribute {name!r}: every value is needed; fill it in (0 "
                              "where a row lacks a feature, or the column's mean) or leave the row out", line_no)
    if kind == "numeric":
        return parse_float(path, text, line_no, f"value of {name!r}")
    if text not in kind:
        raise DataFormatError(path, f"value {text!r} of {name!r} is not one of {{{','.join(kind)}}}", line_no)
    if not _is_number(text):
        raise DataFormatError(path, f"attribute {name!r} is nominal, {{{','.join(kind)}}}, and {text!r} is not a "
                              "number: attributes are read as numbers (numeric, or nominal such as {0,1}); write it as "
                              "one 0/1 attribute per value", line_no)
    return parse_float(path, text, line_no, f"value of {name!r}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_mulan(arff_path, xml_path, name: str | None = None, duplicates: str = "error") -> Dataset:
    """Read a Mulan data set: attributes named in the XML are labels, the rest are features.

    Labels are binarised as the protocol says: any non-zero value is a positive, 1. A negative
    value is refused: it usually means a file coding absent labels as -1, which binarised would
    make every label a positive. Numeric features are flagged so the model's input transform
    standardises them; nominal ``{0,1}`` features are kept as binary bag-of-words columns.
    ``duplicates``: see :func:`read_arff`.

    Raises:
        DataFormatError: a malformed file, or a label list that does not match the ARFF.
    """
    label_names = read_label_names(xml_path)
    names, kinds, matrix, lines = read_arff(arff_path, duplicates)
    position = {n: i for i, n in enumerate(names)}
    missing = [n for n in label_names if n not in position]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataFormatError(xml_path, f"{len(missing)} label(s) not among the attributes of {arff_path}: {shown}")
    label_cols = np.array([position[n] for n in label_names])
    is_label = np.zeros(len(names), bool)
    is_label[label_cols] = True
    feature_cols = np.flatnonzero(~is_label)
    if feature_cols.size == 0:
        raise DataFormatError(arff_path, "every attribute is a label; there are no input features")
    for col in label_cols:
        if kinds[col] != "numeric" and not all(_is_number(value) for value in kinds[col]):
            raise DataFormatError(arff_path, f"label {names[col]!r} has values {kinds[col]}, expected numbers "
                                  "such as {0,1}")
    csc = matrix.tocsc()
    X = csc[:, feature_cols].tocsr()
    Y = csc[:, label_cols].tocsr()
    Y.eliminate_zeros()
    wrong = np.flatnonzero(Y.data < 0)
    if wrong.size:  # e.g. labels coded -1/+1: binarised, every label would be a positive
        row = np.searchsorted(Y.indptr, wrong[0], side="right") - 1
        raise DataFormatError(arff_path, f"label {label_names[Y.indices[wrong[0]]]!r} is {Y.data[wrong[0]]:g}; a label "
                              "is 0 (absent) or positive (present: any positive value reads as 1), never negative",
                              int(lines[row]))
    Y.data = np.ones_like(Y.data, np.float32)  # binarised (a label given twice, duplicates="sum", is one too)
    numeric = np.array([kinds[c] == "numeric" for c in feature_cols], dtype=bool)
    return Dataset(
        X=X,
        Y=Y,
        feature_names=[names[c] for c in feature_cols],
        label_names=label_names,
        task=ANNOTATION,
        name=name or data_name(arff_path),
        numeric_features=numeric,
    )
