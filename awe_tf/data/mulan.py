"""Reader for Mulan multi-label data: an ARFF file (dense or sparse rows) plus its label XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import ANNOTATION, Dataset, lookalike
from awe_tf.data.errors import DataFormatError, is_number, parse_float, parse_int
from awe_tf.data.text import ADDS_UP, DUPLICATES, LABEL_ONCE, data_name, sum_hint, text_lines

_ATTRIBUTE = re.compile(r"@attribute\s+('(?:[^']|\\')*'|\"(?:[^\"]|\\\")*\"|[^\s{]+)(?:\s+|(?=\{))(.+)$", re.I)


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
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise DataFormatError(xml_path, f"label name{'s' if len(twice) > 1 else ''} listed twice: "
                              + ", ".join(map(repr, twice)))
    return names


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(name: str) -> str:
    """An attribute name or value as written, without its quotes; inside quotes Weka's escapes
    (a backslash before a quote, a backslash, %, t, n or r) are read as it writes them
    (``'rock\\'n\\'roll'`` is rock'n'roll); any other backslash stays."""
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        return re.sub(r"\\(['\"\\\\%tnr])", lambda m: _ESCAPES.get(m.group(1), m.group(1)), name[1:-1])
    return name


def _cut(text: str, separator: str, once: bool = False) -> list[str]:
    """``text`` cut at each ``separator`` outside quotes (Weka's ``'...'`` or ``"..."``, with
    backslash escapes inside), or at the first only (``once``)."""
    if separator not in text:
        return [text]
    if "'" not in text and '"' not in text:
        return text.split(separator, 1 if once else -1)
    pieces, start, quote, escaped = [], 0, None, False
    for at, char in enumerate(text):
        if escaped:
            escaped = False
        elif quote and char == "\\":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == separator:
            pieces.append(text[start:at])
            start = at + 1
            if once:
                break
    return [*pieces, text[start:]]


def _without_comment(line: str) -> str:
    """The line up to a ``%`` outside quotes (a comment, as Weka reads one anywhere on a line)."""
    return _cut(line, "%", once=True)[0].rstrip()


def _fields(text: str) -> list[str]:
    """``text``'s comma-separated values, a comma inside quotes kept (``'x,y'`` is one value)."""
    return [field.strip() for field in _cut(text, ",")]


def _holds_numbers(kind) -> bool:
    """Whether an attribute of this kind holds numbers: ``numeric``, or nominal with numbers for
    values (``{0,1}``)."""
    return kind == "numeric" or all(is_number(value) for value in kind)


def _codes(kind, as_numbers: bool) -> dict | None:
    """What each value of a nominal attribute reads as: its number (``as_numbers``), or its place
    in the list (Weka's own coding: ``{NO,YES}`` reads NO as 0, YES as 1); None for a numeric
    attribute."""
    if kind == "numeric":
        return None
    if as_numbers:
        return {value: float(value) for value in kind}
    return {value: float(at) for at, value in enumerate(kind)}


def read_arff(path, duplicates: str = "error", numbers=frozenset(), unknown_as_zero=frozenset()):
    """Parse an ARFF file (UTF-8 text).

    Args:
        duplicates: an attribute given twice in one sparse row is an ``error`` (default), or
            its values are added up (``sum``; never for a category, whose values do not add up).
        numbers: names of nominal attributes of numbers to read as their numbers whatever their
            list (labels: ``{0,1,2}``); the others are read as numbers only when their list is a
            presence, two numbers one of them 0 (``{0,1}``, ``{1,0}``), and otherwise as a category.
        unknown_as_zero: names of attributes whose missing value ``?`` reads as 0 (the labels of
            rows to rank, which nothing reads); elsewhere ``?`` is refused.

    Returns:
        ``(names, kinds, matrix, lines)``: attribute names, their kinds (``"numeric"`` or the
        tuple of nominal values), a CSR matrix of the values (a category's values as their place
        in the list, 0 for the first; the other nominal values as their numbers), and the line each data row was
        read from. A value a sparse row leaves out is the attribute's first: 0 for a numeric
        one, and for a nominal one its first listed value, as Weka writes sparse rows (``{1,0}``:
        1).

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
    declared: set = set()
    codes: list = []
    categories: set = set()  # nominal attributes read by their place in the list
    filled: dict = {}  # nominal attributes whose first value is not 0: what a sparse row's omission means
    for line_no, raw in text_lines(path):
        line = _without_comment(raw.strip())
        if not line:
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
                    kinds.append(tuple(_unquote(v) for v in _fields(kind[1:-1])))
                else:
                    raise DataFormatError(path, f"attribute {name!r} has unsupported type {kind!r}", line_no)
                if name in declared:
                    raise DataFormatError(path, f"attribute {name!r} is declared twice (the second at this line): "
                                          "a label list names attributes, so each name must be unique", line_no)
                names.append(name)
                declared.add(name)
                kind = kinds[-1]
                as_numbers = kind != "numeric" and _holds_numbers(kind) and (name in numbers or _read_as_number(kind))
                codes.append(_codes(kind, as_numbers))
                if kind != "numeric" and not as_numbers:
                    categories.add(len(names) - 1)
                if codes[-1] is not None and codes[-1][kind[0]] != 0.0:
                    filled[len(names) - 1] = codes[-1][kind[0]]
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
            for entry in filter(None, _fields(body)):
                parts = entry.split(None, 1)  # a quoted value may hold spaces
                if len(parts) != 2:
                    raise DataFormatError(path, f"sparse entry {entry!r} is not 'index value'", line_no)
                index = parse_int(path, parts[0], line_no, "attribute index")
                if not 0 <= index < len(names):
                    raise DataFormatError(
                        path, f"attribute index {index} out of range (0..{len(names) - 1})", line_no
                    )
                if index in seen and duplicates == "error":
                    raise DataFormatError(path, f"attribute {names[index]!r} (index {index}) is given twice in this "
                                          f"row; {sum_hint(LABEL_ONCE if names[index] in numbers else ADDS_UP)}",
                                          line_no)
                if index in seen and index in categories:
                    raise DataFormatError(path, f"attribute {names[index]!r} (index {index}) is given twice in this "
                                          "row: a category's values do not add up", line_no)
                seen.add(index)
                value = _value(path, parts[1], kinds[index], codes[index], names[index], line_no, unknown_as_zero)
                if value != 0.0:
                    rows.append(n_rows)
                    cols.append(index)
                    vals.append(value)
            for index in filled.keys() - seen:  # left out: the attribute's first value
                rows.append(n_rows)
                cols.append(index)
                vals.append(filled[index])
        else:
            fields = _fields(line)
            if len(fields) != len(names):
                weighted = len(fields) == len(names) + 1 and re.fullmatch(r"\{\s*[-+.\deE]+\s*\}", fields[-1].strip())
                raise DataFormatError(
                    path, f"row has {len(fields)} values but there are {len(names)} attributes" + (
                        f" (the last, {fields[-1].strip()}, is a Weka instance weight, which is not read: remove "
                        "the instance weights)" if weighted else ""), line_no
                )
            for index, text in enumerate(fields):
                value = _value(path, text, kinds[index], codes[index], names[index], line_no, unknown_as_zero)
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


def _value(path, text: str, kind, codes: dict | None, name: str, line_no: int, unknown_as_zero=frozenset()) -> float:
    text = _unquote(text)
    if text == "?":
        if name in unknown_as_zero:
            return 0.0
        raise DataFormatError(path, f"missing value '?' for attribute {name!r}: every value is needed; fill it in (a "
                              "measurement: the column's training mean, since 0 reads as a real value; a count or a "
                              "word's weight: 0; a label: 0 or 1) or leave the row out", line_no)
    if codes is None:
        return parse_float(path, text, line_no, f"value of {name!r}")
    if text not in codes:
        shown = ",".join(kind[:8]) + (f",... ({len(kind)} values)" if len(kind) > 8 else "")
        raise DataFormatError(path, f"value {text!r} of {name!r} is not one of {{{shown}}}", line_no)
    return codes[text]


_MEKA = re.compile(r"@relation\s+.*?-C\s+(-?\d+)", re.I)


def meka_hint(path) -> str:
    """What to do with an ARFF file given without a label list, where its ``@relation`` line is
    MEKA's (``'name: -C 5'``: the first 5 attributes are labels; -5, the last 5): the end of the
    message refusing it, or '' for any other file (an unreadable one too: its own error comes
    when it is read)."""
    try:
        for _, line in text_lines(path):
            if line.strip().lower().startswith("@relation"):
                found = _MEKA.match(line.strip())
                if not found:
                    return ""
                n = int(found.group(1))
                return (f"; its @relation line is MEKA's, -C {n}: the {'first' if n > 0 else 'last'} {abs(n)} "
                        "attributes are labels. Write a Mulan XML naming them, <labels xmlns=\"http://mulan."
                        "sourceforge.net/labels\"><label name=\"...\"/>...</labels>, and pass it with --labels")
            if line.strip().lower().startswith("@attribute"):
                return ""
    except DataFormatError:
        return ""
    return ""


def _named_features(arff_path, csc, feature_cols, names, kinds):
    """:func:`_features`, refusing two features of one name: an attribute named as a category's
    column (``attribute=value``), which a request or a check by name would mix up."""
    X, feature_names, numeric, categories = _features(csc, feature_cols, names, kinds)
    twice = [name for name, count in Counter(feature_names).items() if count > 1]
    if twice:
        raise DataFormatError(arff_path, f"two features named {twice[0]!r}: a category's column (attribute=value) "
                                         "and an attribute of that name; rename the attribute")
    return X, feature_names, numeric, categories


def read_mulan(arff_path, xml_path, name: str | None = None, duplicates: str = "error",
               unlabelled: bool = False) -> Dataset:
    """Read a Mulan data set: attributes named in the XML are labels, the rest are features.

    Labels are binarised as the protocol says: any non-zero value is a positive, 1 (a label holding
    values other than 0 and 1 is noted, :func:`_graded_labels`, but with ``duplicates="sum"``). A negative
    value is refused: it usually means a file coding absent labels as -1, which binarised would
    make every label a positive. Numeric features are flagged so the model's input transform
    standardises them; nominal ``{0,1}`` features are kept as binary bag-of-words columns, and
    other nominal features (``{NO,YES}``, categories) become one 0/1 column per value
    (:func:`_features`).
    ``duplicates``: see :func:`read_arff`. ``unlabelled``: a file without any of the labels'
    attributes (rows to rank) is read too, every label absent, and a label's ``?`` (unknown, as
    Weka writes it) reads as absent.

    Raises:
        DataFormatError: a malformed file, or a label list that does not match the ARFF.
    """
    label_names = read_label_names(xml_path)
    names, kinds, matrix, lines = read_arff(arff_path, duplicates, numbers=set(label_names),
                                            unknown_as_zero=set(label_names) if unlabelled else frozenset())
    position = {n: i for i, n in enumerate(names)}
    missing = [n for n in label_names if n not in position]
    if unlabelled and len(missing) == len(label_names):
        X, feature_names, numeric, categories = _named_features(arff_path, matrix.tocsc(), np.arange(len(names)),
                                                                names, kinds)
        return Dataset(X=X, Y=sp.csr_matrix((X.shape[0], len(label_names)), dtype=np.float32),
                       feature_names=feature_names, label_names=label_names, task=ANNOTATION,
                       name=name or data_name(arff_path), numeric_features=numeric, categories=categories)
    if missing:
        shown = ", ".join(repr(n) for n in missing[:5]) + (", ..." if len(missing) > 5 else "")
        alike = next(((n, a) for n in missing for a in names if lookalike(n, a)), None)
        raise DataFormatError(xml_path, f"{len(missing)} label(s) not among the attributes of {arff_path}: {shown}" + (
            f" (the ARFF has {alike[1]!r} for {alike[0]!r}{lookalike(*alike)})" if alike else ""))
    label_cols = np.array([position[n] for n in label_names])
    is_label = np.zeros(len(names), bool)
    is_label[label_cols] = True
    feature_cols = np.flatnonzero(~is_label)
    if feature_cols.size == 0:
        raise DataFormatError(arff_path, "every attribute is a label; there are no input features")
    for col in label_cols:
        if not _holds_numbers(kinds[col]):
            raise DataFormatError(arff_path, f"label {names[col]!r} has values {{{','.join(kinds[col][:8])}}}, "
                                  "expected numbers such as {0,1} (0: absent, 1: present)")
    csc = matrix.tocsc()
    X, feature_names, numeric, categories = _named_features(arff_path, csc, feature_cols, names, kinds)
    Y = csc[:, label_cols].tocsr()
    Y.eliminate_zeros()
    wrong = np.flatnonzero(Y.data < 0)
    if wrong.size:  # e.g. labels coded -1/+1: binarised, every label would be a positive
        row = np.searchsorted(Y.indptr, wrong[0], side="right") - 1
        raise DataFormatError(arff_path, f"label {label_names[Y.indices[wrong[0]]]!r} is {Y.data[wrong[0]]:g}; a label "
                              "is 0 (absent) or positive (present: any positive value reads as 1), never negative",
                              int(lines[row]))
    # (with duplicates="sum" a label given twice in a row adds up to 2 here: not told from a value of 2)
    graded = _graded_labels(Y, label_names, Path(xml_path).name) if duplicates != "sum" else ()
    Y.data = np.ones_like(Y.data, np.float32)  # binarised (a label given twice, duplicates="sum", is one too)
    unlisted = unlisted_labels(names, kinds, label_cols)
    shown = ", ".join(repr(n) for n in unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
    one = len(unlisted) == 1
    notes = (f"{shown}: {{0,1}}, placed with the listed labels (between or right after them) but not in "
             f"{Path(xml_path).name}, read as {'a feature: a label' if one else 'features: labels'} left out of the "
             "list?",) if unlisted else ()
    return Dataset(
        X=X,
        Y=Y,
        feature_names=feature_names,
        label_names=label_names,
        task=ANNOTATION,
        name=name or data_name(arff_path),
        numeric_features=numeric,
        notes=notes + graded,
        categories=categories,
    )


def _graded_labels(Y: sp.csr_matrix, label_names, xml_name: str, shown: int = 3) -> tuple[str, ...]:
    """Notes on the labels holding values other than 0 and 1, which binarising reads as 1 (the
    protocol's rule): a numeric attribute the XML lists as a label (a tempo, a price), or labels
    coded {1,2}, then read as present in every row, with no other sign.

    Example:
        >>> Y = sp.csr_matrix(np.array([[120.0, 1.0], [95.0, 0.0]], np.float32))
        >>> note, = _graded_labels(Y, ["tempo", "rock"], "labels.xml")
        >>> note.split(": ")[0]
        "label 'tempo' holds values other than 0 and 1 (95 to 120, in 2 rows), each read as 1 (present)"
        >>> note.endswith("it is present in every row: a feature that labels.xml lists as a label?")
        True
    """
    csc = Y.tocsc()
    notes = []
    for col in range(csc.shape[1]):
        values = csc.data[csc.indptr[col]:csc.indptr[col + 1]]
        odd = values[values != 1]
        if odd.size == 0:
            continue
        if len(notes) == shown:
            notes.append("and more labels holding values other than 0 and 1")
            break
        every = values.size == csc.shape[0] > 1
        rows = f"{odd.size} row{'s' if odd.size > 1 else ''}"
        notes.append(f"label {label_names[col]!r} holds values other than 0 and 1 ({values.min():g} to "
                     f"{values.max():g}, in {rows}), each read as 1 (present): labels are binarised"
                     + (f"; it is present in every row: a feature that {xml_name} lists as a label?" if every else ""))
    return tuple(notes)


def _binary(kind) -> bool:
    """Whether a kind is a nominal presence of 0 and 1 (``{0,1}``, ``{1,0}``)."""
    return kind != "numeric" and sorted(kind) == ["0", "1"]


def unlisted_labels(names, kinds, label_cols) -> list[str]:
    """Attributes placed with the label list's attributes but not in it: a ``{0,1}`` attribute
    between two listed labels, and the ``{0,1}`` attributes right after the last one where an
    attribute that is not ``{0,1}`` comes before the first (features, then labels, as Mulan
    files are laid out; with labels first, or on bag-of-words data where every feature is
    ``{0,1}``, the attributes after the labels are features as well).

    Example:
        >>> kinds = ["numeric", ("0", "1"), ("0", "1"), ("0", "1"), ("0", "1")]
        >>> unlisted_labels(list("abcde"), kinds, [1, 3])  # c between the labels, e after them
        ['c', 'e']
    """
    listed = set(int(col) for col in label_cols)
    first, last = min(listed), max(listed)
    found = [col for col in range(first, last + 1) if col not in listed and _binary(kinds[col])]
    if any(not _binary(kind) for kind in kinds[:first]):
        col = last + 1
        while col < len(names) and _binary(kinds[col]):
            found.append(col)
            col += 1
    return [names[col] for col in found]


def _read_as_number(kind) -> bool:
    """Whether a nominal feature reads as its own number rather than as a category: two numbers,
    one of them 0 (``{0,1}``, ``{1,0}``), a presence or a weight."""
    return len(kind) <= 2 and _holds_numbers(kind) and any(float(value) == 0.0 for value in kind)


def _features(csc: sp.csc_matrix, columns, names, kinds) -> tuple[sp.csr_matrix, list[str], np.ndarray, tuple]:
    """The feature columns as the model reads them: ``(X, names, numeric mask, categories)``
    (categories: each category's column ids, :attr:`~awe_tf.data.dataset.Dataset.categories`).

    Numeric and ``{0,1}`` features are taken as they are. Any other nominal feature is a
    category: one 0/1 column per listed value but the first (named ``attribute=value``), so a
    row holds the column of its value and none where it has the first, the value Weka's sparse
    rows leave out (genbase's motifs, ``{NO,YES}``: one column, ``=YES``). The columns come from
    the header's list, so a training and a test file of one header read alike; a value no
    training row holds is a feature no row trains, which a model leaves out. A row identifier
    declared nominal (genbase's ``protein``) becomes such features, one per identifier."""
    blocks, feature_names, numeric, run, categories = [], [], [], [], []
    for c in columns:
        if kinds[c] == "numeric" or _read_as_number(kinds[c]):
            run.append(c)  # a run of plain columns is taken as one block
            feature_names.append(names[c])
            numeric.append(kinds[c] == "numeric")
            continue
        if run:
            blocks.append(csc[:, run])
            run = []
        kind = kinds[c]
        place = csc[:, [c]].toarray().ravel().astype(np.int64)  # read_arff's place in the list; absent: 0
        rows = np.flatnonzero(place > 0)
        blocks.append(sp.csc_matrix((np.ones(rows.size, np.float32), (rows, place[rows] - 1)),
                                    shape=(csc.shape[0], len(kind) - 1)))
        if len(kind) > 1:  # a nominal attribute of one value has no column
            categories.append(tuple(range(len(feature_names), len(feature_names) + len(kind) - 1)))
        feature_names += [f"{names[c]}={value}" for value in kind[1:]]
        numeric += [False] * (len(kind) - 1)
    if run:
        blocks.append(csc[:, run])
    return sp.hstack(blocks, format="csr"), feature_names, np.array(numeric, bool), tuple(categories)
