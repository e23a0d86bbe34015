"""Data sets by name (the bundled Corel5k and those under ``AWE_DATA_DIR``) and by files."""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import os
import re
from pathlib import Path

from awe_tf.data.dataset import Dataset, Split, first_difference
from awe_tf.data.errors import DataFormatError
from awe_tf.data.interactions import MOVIELENS_FILES, read_interactions, read_movielens
from awe_tf.data.mulan import meka_hint, read_mulan
from awe_tf.data.protocols import N_HELD_OUT, protocol_split
from awe_tf.data.text import some_of
from awe_tf.data.xmlrepo import linked_row_lists, read_row_lists, read_xmlrepo, row_lists, stray_row_lists

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "datasets"
DEFAULT_DATASET = "corel5k"

# name -> (folder under the data dir, train file, test file or None, label xml or None, format)
KNOWN = {
    "corel5k": ("mulan/corel5k", "Corel5k-train-sparse.arff", "Corel5k-test-sparse.arff", "Corel5k.xml", "mulan"),
    "emotions": ("mulan/emotions", "emotions-train.arff", "emotions-test.arff", "emotions.xml", "mulan"),
    "scene": ("mulan/scene", "scene-train.arff", "scene-test.arff", "scene.xml", "mulan"),
    "cal500": ("mulan/cal500", "cal500.arff", None, "cal500.xml", "mulan"),
    "tmc2007": ("mulan/tmc2007", "tmc2007-500-train.arff", "tmc2007-500-test.arff", "tmc2007-500.xml", "mulan"),
    "ml-100k": ("ml-100k", "u.data", None, None, "movielens"),
}
FORMATS = ("mulan", "movielens", "xmlrepo", "interactions")
FORMAT_NAMES = {"mulan": "Mulan ARFF", "movielens": "MovieLens ratings (every rating an implicit positive)",
                "xmlrepo": "Extreme Classification text", "interactions": "user, item[, weight] interactions"}


def data_dir() -> Path | None:
    """The folder named by ``AWE_DATA_DIR``, if set."""
    value = os.environ.get("AWE_DATA_DIR")
    return Path(value) if value else None


def _locate(name: str, entry: tuple) -> Path | None:
    """Where the named data set of :func:`layout`'s ``entry`` is, or None."""
    folder, train_file = entry[:2]
    root = data_dir()
    if root is not None and (root / folder / train_file).exists():
        return root / folder
    if name == DEFAULT_DATASET:
        return BUNDLED_DIR / "corel5k"
    return None


class NotMulan(ValueError):
    """A folder of ``AWE_DATA_DIR`` named as a data set whose files are not a Mulan download's."""


class NoArff(NotMulan):
    """A folder with no ARFF file in it or a folder below: no download of any kind here."""


def _mulan_layout(folder: Path) -> tuple[str, str | None, str]:
    """A Mulan folder's files, as Mulan's downloads name them: ``(train, test or None, labels)``
    (one ``.xml`` label list; one ``.arff`` whose name holds the word ``train`` and one ``test``, or a
    single ``.arff`` that the protocol splits; hidden files, a Mac's ``._`` copies, left out).
    :class:`NotMulan` saying what is wrong with the folder otherwise."""
    try:
        files = sorted(path.name for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    except OSError as error:
        raise NotMulan(f"{folder} cannot be read ({error.strerror or error})") from None
    arffs = [name for name in files if name.lower().endswith(".arff")]
    xmls = [name for name in files if name.lower().endswith(".xml")]
    files_instead = "give its files instead, --train FILE.arff [--test FILE.arff] --labels FILE.xml (load_split)"
    if not arffs:
        inside = sorted(path.name for path in folder.glob("*/*") if path.suffix.lower() == ".arff")
        if inside:  # an archive unpacked into a folder of its own name
            raise NotMulan(f"{folder} holds no .arff file, but a folder in it does ({some_of(inside)}): move them up "
                           f"into it, or {files_instead[:1].lower()}{files_instead[1:]}")
        raise NoArff(f"{folder} holds no .arff file, so it is no Mulan download: give a data file of another format "
                     "with --train FILE (and --format where its name cannot tell; in Python, load_split)")
    if len(xmls) != 1:
        raise NotMulan(f"{folder} holds {some_of(xmls) if xmls else 'no .xml label list'}, where a Mulan download "
                       f"has one .xml list of its labels: {files_instead}")
    words = {name: set(re.split(r"[^a-z0-9]+", name.lower()[: -len(".arff")])) for name in arffs}
    parts = [[name for name in arffs if part in words[name]] for part in ("train", "test")]  # bibtex-train, train
    if [len(named) for named in parts] == [1, 1]:
        return parts[0][0], parts[1][0], xmls[0]
    if not parts[0] and not parts[1] and len(arffs) == 1:
        return arffs[0], None, xmls[0]
    raise NotMulan(f"{folder}'s .arff files ({some_of(arffs)}) are neither one training and one test file nor a "
                   f"single file the protocol splits: {files_instead}")


def _found(name: str) -> tuple | None:
    """A Mulan data set found by its folder's name under ``AWE_DATA_DIR`` (``mulan/NAME/``, else
    ``NAME/``): its :data:`KNOWN`-style entry, or None where there is no such folder;
    :class:`NotMulan` where the folder's files are not a Mulan download's."""
    root = data_dir()
    if root is None or not name or name.startswith(".") or any(mark in name for mark in ("/", "\\")):
        return None
    for folder in (f"mulan/{name}", name):
        try:
            here = (root / folder).is_dir()
        except OSError:  # a folder above it that cannot be searched
            continue
        if here:
            return (folder, *_mulan_layout(root / folder), "mulan")
    return None


def layout(name: str) -> tuple:
    """A named data set's entry, as :data:`KNOWN` gives it: ``(folder under the data dir, train
    file, test file or None, label xml or None, format)``. Beside the names :data:`KNOWN` lists
    (each in its own folder, or else in a Mulan download's folder of its name), a Mulan data set
    downloaded into ``AWE_DATA_DIR`` is named by its folder, ``mulan/NAME/`` or ``NAME/``
    (:func:`_mulan_layout` says what it must hold). ValueError for a name neither names;
    :class:`NotMulan` for a folder of that name whose files are not a Mulan download's."""
    root, known = data_dir(), KNOWN.get(name)
    if known is not None and (root is None or known[4] != "mulan" or (root / known[0] / known[1]).exists()):
        return known
    try:
        found = _found(name)
    except NotMulan:
        if known is None:
            raise
        found = None  # a folder of a named set's name that is no download (yet): its own layout, not there
    if found is not None or known is not None:
        return found or known
    looks_like_a_file = any(mark in name for mark in ("/", "\\", ".")) or Path(name).exists()
    hint = "; a data file is read with --train FILE (in Python, load_split(FILE))" if looks_like_a_file else \
        ("; a Mulan data set is found by its folder's name in AWE_DATA_DIR (mulan/NAME/ or NAME/)" if root else
         "; set AWE_DATA_DIR to the folder that holds the others (a Mulan data set there is found by its folder's "
         "name, mulan/NAME/ or NAME/)")
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(known_names())}{hint}")


def known_names(refused: dict | None = None) -> list[str]:
    """The data sets named here: :data:`KNOWN`'s, then the Mulan downloads found in
    ``AWE_DATA_DIR`` (:func:`layout`), by name; folders that are none, hidden or unreadable left
    out (``refused``, where given, gets why, by name, for those holding ``.arff`` files, in them or
    in a folder below)."""
    root = data_dir()
    found = []
    if root is not None:
        taken = {KNOWN[name][0].split("/")[0] for name in KNOWN}  # ml-100k/, mulan/
        for parent in (root / "mulan", root):
            try:
                folders = sorted(path.name for path in parent.iterdir() if path.is_dir()) if parent.is_dir() else []
            except OSError:
                continue
            for folder in folders:
                if folder not in taken and folder not in KNOWN:
                    try:
                        found += [folder] if _found(folder) is not None else []
                    except NoArff:
                        pass
                    except NotMulan as why:
                        if refused is not None:
                            refused[folder] = str(why)
    return [*KNOWN, *sorted(set(found))]


def list_datasets(refused: dict | None = None) -> list[dict]:
    """Every named data set with where it would be read from (``None``: not available here);
    ``refused``, where given, gets the folders passed over and why (:func:`known_names`)."""
    out = []
    for name in known_names(refused):
        entry = layout(name)
        _, _, test, _, fmt = entry
        where = _locate(name, entry)
        out.append(
            {
                "name": name,
                "format": fmt,
                "split": "given train/test files" if test else "protocol split",
                "path": str(where) if where else None,
                "bundled": where is not None and where == BUNDLED_DIR / "corel5k",
            }
        )
    return out


def read_files(train, test=None, labels=None, format: str | None = None, name: str | None = None,
               duplicates: str = "error", header: bool | None = None, split_column: int = 1):
    """Read a data set from files (UTF-8 text).

    Args:
        train: the training file (or, for MovieLens, the file or its folder).
        test: an optional test file (not for MovieLens: an interactions test file splits the
            data by its interactions, :func:`~awe_tf.data.protocols.own_recommendation_split`;
            the two files' first lines must be read alike, as columns' names or as data,
            unless ``header`` says how to read both). Without one, an Extreme
            Classification file that has its split files beside it (``X_data.txt``,
            ``x_trSplit.txt``, ``x_tstSplit.txt``) is split by their ``split_column``
            (:func:`~awe_tf.data.xmlrepo.row_lists`); a test file given beside them is refused
            (the file holds its test rows), and so is a file without lists of its own beside
            lists of a data file that is not there (:func:`~awe_tf.data.xmlrepo.stray_row_lists`),
            and a test file that holds exactly the training file's rows (the same file, or a
            copy: a test part the model learnt from).
        labels: the Mulan label ``.xml`` (required for ``mulan``).
        format: one of ``mulan``, ``movielens``, ``xmlrepo``, ``interactions``; guessed from the
            file name when omitted.
        duplicates: what an entry given twice means, for every format: an ``error`` naming both
            lines (the default), or ``sum`` (values add up; a label, an implicit positive or a
            MovieLens input stays one).
        header: for ``interactions``, whether the first line names the columns (None: told
            from the line, :func:`~awe_tf.data.interactions.read_interactions`).
        split_column: which split of an Extreme Classification file's own split lists splits it,
            the lists' column (1-based, the repository's split number; 1, the first, by
            default); another is refused for data without such lists.

    Returns:
        ``(train, test)`` data sets; ``test`` is ``None`` when no test file is given.
    """
    return _read_files(train, test, labels, format, name, duplicates, header, split_column)[:2]


def _read_files(train, test, labels, format, name, duplicates, header, split_column=1):
    """:func:`read_files`, and the :class:`~awe_tf.data.xmlrepo.RowLists` that split the file, or
    None. A test file that holds exactly the training file's rows (the same file, or a copy) is
    refused: the model would be scored on the rows it learnt from."""
    if isinstance(split_column, bool) or not isinstance(split_column, numbers.Integral) or split_column < 1:
        raise ValueError(f"split_column (--split-column) must be a whole number from 1, the lists' first column; got "
                         f"{split_column!r}")
    xmlrepo = (format or guess_format(Path(train))) == "xmlrepo"
    if split_column != 1 and (not xmlrepo or row_lists(train) is None):
        linked = linked_row_lists(train) if xmlrepo else None
        raise ValueError(f"{train}: split_column (--split-column) {split_column} chooses a column of the split lists "
                         "beside an Extreme Classification file (X_trSplit.txt, X_tstSplit.txt); this data has none"
                         + (f" beside it (the file it links to, {linked}, has: give that path)" if linked else
                            ": leave it out"))  # refused before the file is read: a large one takes a while
    first, second, lists = _read_parts(train, test, labels, format, name, duplicates, header, int(split_column))
    if second is not None and lists is None and second.same_content(first):
        same = "is the training file" if Path(test).resolve() == Path(train).resolve() else \
            f"holds the same rows as {train}"
        protocol = "5 items of each user held out" if first.task == "recommendation" else "every fifth row held out"
        raise DataFormatError(test, f"the test file {same}: a test part of training rows scores the model on the "
                                    "rows it learnt from; give a file of held-out rows, or leave the test file out "
                                    f"(--test; test= in Python) for the protocol's split, {protocol}")
    return first, second, lists


def _read_parts(train, test, labels, format, name, duplicates, header, split_column=1):
    """:func:`_read_files` without its check of the test file's rows."""
    train = Path(train)
    fmt = format or guess_format(train)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if header is not None and fmt != "interactions":
        raise ValueError(f"{train}: header= (--header) is for interactions files; {fmt} files have a fixed layout")
    if labels is not None and fmt != "mulan":
        named = format is not None and train.suffix.lower() == ".arff"  # --format other than the file's name says
        own = ("number their labels themselves (l0, l1, ...; a model trained with a Mulan list's label names is "
               "scored on Mulan files)" if fmt == "xmlrepo" else "name their labels themselves")
        raise ValueError(f"{train}: a label list (--labels) is for Mulan data; {fmt} files {own}"
                         + (" (its .arff name says Mulan ARFF: give --format mulan, or leave --format out)"
                            if named else ""))
    if fmt == "mulan":
        if labels is None:
            raise ValueError(f"{train}: Mulan data needs its label list (--labels FILE.xml){meka_hint(train)}")
        out = (read_mulan(train, labels, name, duplicates),
               read_mulan(test, labels, name, duplicates) if test else None)
        if out[1] is not None and out[1].feature_names != out[0].feature_names:
            trained = set(out[0].feature_names)
            extra = [feature for feature in out[1].feature_names if feature not in trained]
            raise DataFormatError(test, f"its features differ from those of {train}: "
                                        f"{first_difference(out[0].feature_names, out[1].feature_names)}" + (
                                            f" (if {extra[0]!r} is a label, it is not in {Path(labels).name}, which "
                                            "lists the labels: add it there, and to the training file)"
                                            if extra else ""))
        return (*out, None)
    if fmt == "xmlrepo":
        with _read_as_named(format is None, "Extreme Classification text by its .txt name",
                            header_only=True):  # another layout fails on its first line
            first = read_xmlrepo(train, name, duplicates)
        lists = row_lists(train, split_column)
        stray = stray_row_lists(train) if lists is None and test is None else {}
        if stray:  # split by the protocol, the file's own split beside it would go unused, unsaid
            names = " or ".join(sorted(set(stray.values())))
            raise DataFormatError(train, f"it has no split files of its own, but {', '.join(p.name for p in stray)} "
                                         "beside it list the rows of a data file that is not there: if they are this "
                                         f"file's, name it {names} and they split it; to split it by the protocol "
                                         "(every fifth row a test row), move them away")
        if lists is not None and test is not None:  # the file holds the test rows: training on it all would leak them
            raise ValueError(f"{train}: its split files beside it ({lists.train.name}, {lists.test.name}) say it holds "
                             "its test rows too: drop --test (test= in Python), and the lists split it; to train on "
                             "the whole file, move the lists away")
        if lists is not None:  # the data set's own split, shipped as lists of rows
            train_rows, test_rows = read_row_lists(lists, first.n_examples)
            return first.rows(train_rows), first.rows(test_rows), lists
        second = read_xmlrepo(test, name, duplicates, counts_of=(train, first.n_features, first.n_labels)) \
            if test else None
        linked = linked_row_lists(train) if test is None else None
        if linked is not None:  # a data set's own split is not passed over unsaid
            first.notes = (*first.notes, f"{train} links to {linked}, beside which lie split lists: lists are read "
                                         "beside the path given, so this file is split by the protocol; give that "
                                         "path to split it by them")
        return first, second, None
    if fmt == "interactions":  # the reader refuses a table's rows, a .csv of features and labels
        first = read_interactions(train, name, duplicates, header)
        second = read_interactions(test, name, duplicates, header) if test else None
        if second is not None and header is None and (first.header is None) != (second.header is None):
            with_names, as_data = (test, train) if first.header is None else (train, test)
            raise DataFormatError(test, f"{with_names}'s first line is read as the columns' names and {as_data}'s as "
                                        "data: give both files the same layout, a header line in both or in neither "
                                        "(--header yes or no, header= in Python, reads both one way: the first "
                                        "interaction of a file without one, or a header as an interaction)")
        return first, second, None
    if test is not None:
        raise ValueError(f"{fmt} data is split by the protocol, {N_HELD_OUT} items of each user held out as its test "
                         "part: give only the training file (--train; in Python, no test file); for a split of your "
                         "own, give both files as interactions, user, item[, weight] (--format interactions; cut -f1-3 "
                         "keeps those of MovieLens' tab-separated rows)")
    if fmt == "movielens":
        folder = train.is_dir()  # no other format reads a folder: nothing else to suggest
        with _read_as_named(format is None, "a MovieLens folder" if folder else "MovieLens by its name",
                            other_formats=not folder):
            return read_movielens(train, name, duplicates), None, None
    raise AssertionError(f"format {fmt} has no reader")  # FORMATS lists the formats read above


@contextlib.contextmanager
def _read_as_named(guessed: bool, how: str, header_only: bool = False, other_formats: bool = True):
    """Where the format was ``guessed`` from a file's name, a malformed file's error
    (``header_only``: on its first line) says so, and (``other_formats``) how to read user,
    item[, weight] rows instead: a file of another layout named like those of the guessed format."""
    try:
        yield
    except DataFormatError as error:
        if not guessed or (header_only and error.line != 1):
            raise
        instead = "; --format interactions for user, item[, weight] rows" if other_formats else ""
        raise DataFormatError(error.path, f"{error.message} (read as {how}{instead})", error.line) from None


MOVIELENS_COLUMNS = ("user", "movie", "rating", "timestamp")  # a MovieLens ratings file's, in any of its forms


def _first_line_fields(path: Path) -> int | None:
    """How many comma-separated fields a file's first non-blank line has (read as the
    interactions reader reads a line); None: no such line, or a file that cannot be read as text,
    whose reader then says why."""
    from awe_tf.data.interactions import _fields
    from awe_tf.data.text import text_lines

    try:
        return next((len(_fields(path, line, number, ",")) for number, line in text_lines(path) if line.strip()),
                    None)
    except DataFormatError:
        return None


def told_format(path: Path) -> tuple[str, str]:
    """A data file's format told from its name, and from what: ``("movielens", "the name
    u.data")``. A folder is MovieLens. A file named ``ratings.csv`` is MovieLens' only with
    MovieLens' four columns: with two or three it is a user's own ``user, item[, weight]`` rows,
    whose weights MovieLens' reading (every rating a 1) would drop."""
    if path.is_dir():
        return "movielens", "its being a folder"
    named = f"the name {path.name}"
    if path.name == "ratings.csv":
        fields = _first_line_fields(path)
        if fields is not None:
            return ("interactions" if fields < len(MOVIELENS_COLUMNS) else "movielens",
                    f"{named} and its first line's {fields} columns (MovieLens' has {len(MOVIELENS_COLUMNS)}: "
                    f"{', '.join(MOVIELENS_COLUMNS)})")
    if path.name in MOVIELENS_FILES:
        return "movielens", named
    by_suffix = {".arff": "mulan", ".tsv": "interactions", ".csv": "interactions", ".txt": "xmlrepo"}
    if path.suffix.lower() in by_suffix:
        return by_suffix[path.suffix.lower()], named
    raise ValueError(f"{path}: cannot tell the format from the name: give --format (format= in Python), one of "
                     "mulan (ARFF with a label list), xmlrepo (Extreme Classification text), interactions (user, "
                     "item[, weight] rows, tab- or comma-separated) or movielens (its ratings files)")


def guess_format(path: Path) -> str:
    """A data file's format from its name (:func:`told_format`)."""
    return told_format(path)[0]


def locate(name: str, entry: tuple | None = None) -> Path:
    """The folder a named data set is read from, without reading it (``entry``: its
    :func:`layout`, where known already): ValueError for a name not known (:func:`layout`),
    FileNotFoundError (saying where it was looked for) for one not here."""
    entry = entry or layout(name)
    folder, train_file = entry[:2]
    where = _locate(name, entry)
    if where is None:
        root = data_dir()
        if root is None:
            raise FileNotFoundError(f"data set {name!r} is not bundled; set AWE_DATA_DIR to a folder holding "
                                    f"{folder}/")
        other = []
        for parent in (root / "mulan", root):
            with contextlib.suppress(OSError):
                other += [path.relative_to(root) for path in parent.iterdir()
                          if path.is_dir() and path.name != name and path.name.lower() == name.lower()]
        spelt = f" (its folder {other[0]}/ is named otherwise: --dataset {other[0].name})" if other else ""
        raise FileNotFoundError(f"data set {name!r}: AWE_DATA_DIR is {root}, which holds no {folder}/{train_file}"
                                f"{spelt}")
    return where


def named_files(name: str = DEFAULT_DATASET) -> tuple[Path, Path | None, Path | None, str]:
    """A named data set's files and format: ``(train, test, labels, format)``, None for a file
    it has not (:func:`locate` says where they are looked for)."""
    entry = layout(name)
    where = locate(name, entry)
    _, train_file, test_file, xml, fmt = entry
    return where / train_file, where / test_file if test_file else None, where / xml if xml else None, fmt


def read_dataset(name: str = DEFAULT_DATASET) -> tuple[Dataset, Dataset | None]:
    """A named data set's files as :func:`read_files` reads them, not split: ``(train, test)``,
    ``test`` None where the data set has no test file."""
    train, test, labels, fmt = named_files(name)
    return read_files(train, test, labels, format=fmt, name=name)


def load_dataset(name: str = DEFAULT_DATASET) -> Split:
    """A named data set, split by the protocol (``docs/protocols.md``), raw values kept.

    ``corel5k`` ships with the package; the others are read from ``AWE_DATA_DIR``.
    """
    return protocol_split(*read_dataset(name))


def load_split(train, test=None, labels=None, format=None, name=None, duplicates: str = "error",
               header: bool | None = None, split_column: int = 1) -> Split:
    """Files read by :func:`read_files`, split by the protocol (by a file's own split files,
    where it has them: the split's ``test_rows_file`` names the list of its test rows, and
    ``test_rows_column`` the column read)."""
    first, second, lists = _read_files(train, test, labels, format, name, duplicates, header, split_column)
    split = protocol_split(first, second)
    return split if lists is None else dataclasses.replace(split, test_rows_file=lists.test,
                                                           test_rows_column=lists.column)


__all__ = ["Dataset", "list_datasets", "load_dataset", "load_split", "read_files", "DEFAULT_DATASET"]
