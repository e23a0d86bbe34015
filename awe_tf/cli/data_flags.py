"""The data a command reads: the data flags (a named data set, or files), their checks, and the
data a run recorded, which a later command on that run reads by default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from awe_tf.cli.common import UsageError, at_least

if TYPE_CHECKING:
    from awe_tf.runs import RecordedData

HEADERS = {"auto": None, "yes": True, "no": False}  # --header: read_files' header=


def add_data_args(parser, without: str = "corel5k, the bundled one"):
    group = parser.add_argument_group("data (a named data set, or files)")
    group.add_argument("--dataset", help="a named data set (see `awe-tf datasets`), or a Mulan download's folder "
                       f"in AWE_DATA_DIR by its name; without it and --train: {without}")
    group.add_argument("--train", help="training file (or the whole data set, for protocol splits)")
    group.add_argument("--test", help="test file, for data that comes with its own split (interactions: a later "
                                      "period's, each user's test items; not for MovieLens)")
    group.add_argument("--labels", help="Mulan label list (.xml)")
    group.add_argument("--format", choices=["mulan", "movielens", "xmlrepo", "interactions"],
                       help="the files' format; guessed from the file name when left out")
    group.add_argument("--duplicates", choices=["error", "sum"], default="error",
                       help="an entry given twice in a data file (a feature in one row, a (user, item) pair): stop "
                            "with an error naming both lines, or add their values up")
    group.add_argument("--header", choices=list(HEADERS), default="auto",
                       help="whether an interactions file's first line names its columns (auto: told from the line; "
                            "train says when it read one)")
    group.add_argument("--split-column", type=at_least(1), metavar="N",
                       help="split an Extreme Classification --train file by column N of the X_trSplit.txt and "
                            "X_tstSplit.txt lists beside it, its split N (default: 1)")


def format_read(args) -> str:
    """The format ``args``' --train file is read as: --format, else the one its name tells."""
    from awe_tf.data.registry import guess_format

    return args.format or guess_format(Path(args.train))


def header_read(args, split) -> str:
    """What a run records of ``--header``: for an interactions file, what the reader decided
    (``yes`` or ``no``), so the run's data reads the same however the automatic rule may change;
    ``auto`` for the other formats, whose layout is fixed."""
    if format_read(args) != "interactions":
        return "auto"
    return "yes" if split.train.header else "no"


def data_files(args, split) -> dict | None:
    """What a run (its ``metrics.json``) or an export records of ``args``' data files, to read
    them again as they were read (:func:`~awe_tf.runs.read_record`); None for a named data set."""
    if not args.train:
        return None
    from awe_tf.runs import file_path

    return {"train": file_path(args.train), "test": file_path(args.test), "labels": file_path(args.labels),
            "format": format_read(args),  # as read, whatever telling it would say later
            "duplicates": args.duplicates, "header": header_read(args, split),
            "split_column": split.test_rows_column if split.test_rows_file is not None else None}  # lists read


def data_record(args, split, name: str, fingerprints: dict | None = None) -> dict:
    """What a run's ``metrics.json`` and an export's ``awe_export.json`` record of the data ``args``
    name (``split``, called ``name``), for later commands to read it back by
    (:func:`~awe_tf.runs.read_record`); ``fingerprints``: the parts' digests where they are known
    already (:func:`~awe_tf.runs.fingerprints`, which hashes every matrix)."""
    from awe_tf import runs

    return {"dataset": name, "data_files": data_files(args, split), "dataset_files": dataset_files(args),
            **(fingerprints or runs.fingerprints(split))}


def dataset_files(args) -> dict | None:
    """The files a named data set was read from (``--dataset``, or the default one; as
    :func:`load_data` found them when it read the data), which a run records beside its name:
    read again from them while they are there, the run's own data is what it was trained on,
    wherever the name is found later (another ``AWE_DATA_DIR``, a folder that now holds other
    files). None for data given as files."""
    return None if args.train else getattr(args, "named_files", None)


def _named_files_now(name: str) -> dict:
    """Where the named data set ``name`` is read from now, as :func:`dataset_files` records it."""
    from awe_tf.data.registry import named_files
    from awe_tf.runs import file_path

    train, test, labels, fmt = named_files(name)
    return {"train": file_path(train), "test": file_path(test), "labels": file_path(labels), "format": fmt}


def split_column(args) -> int:
    """The column of an Extreme Classification file's split lists that ``args`` read
    (``--split-column``, 1 where not given)."""
    return getattr(args, "split_column", None) or 1


def flags_of_data(args) -> list[str]:
    """The command-line flags that name ``args``' data (what a printed ``train`` command needs),
    defaults left out; files by their absolute paths, so the command runs from any directory."""
    from awe_tf.runs import file_path

    data = ["--dataset", args.dataset] if args.dataset else []
    files = {flag: file_path(value) for flag, value in (("--train", args.train), ("--test", args.test),
                                                        ("--labels", args.labels))}
    for flag, value in (*files.items(),
                        ("--format", args.format), ("--duplicates", None if args.duplicates == "error" else
                                                      args.duplicates),
                        ("--header", None if args.header == "auto" else args.header),
                        ("--split-column", None if split_column(args) == 1 else str(split_column(args)))):
        data += [flag, value] if value else []
    return data


def check_data_flags(args) -> None:
    """Refuse data flags that do not go together (before any other work)."""
    if args.train and args.dataset:
        raise UsageError("give either --dataset or --train, not both")
    if not args.train and (args.test or args.labels or args.format or args.duplicates != "error"
                           or args.header != "auto"):
        raise UsageError("--test, --labels, --format, --duplicates and --header go with --train")
    if getattr(args, "split_column", None) is not None and not args.train:
        raise UsageError("--split-column goes with --train: an Extreme Classification file with its split lists "
                         "beside it")


def _run_data(args, run: Path | None, record: RecordedData | None = None) -> RecordedData | None:
    """Without --dataset or --train, have ``args`` name the data the run in ``run`` was trained
    and tested on (:func:`~awe_tf.runs.recorded_data`), or that ``record`` (a
    :class:`~awe_tf.runs.RecordedData` read elsewhere: an export's) names: a named data set (read
    from the files it was read from then, ``args.named_files``, while they are there), or files.
    Returns that record (None where the data is given, or there is none); a run's folder (its stages
    or feature names beside the model) without its record is refused (:class:`~awe_tf.runs.RunError`)."""
    from awe_tf import runs

    if args.dataset or args.train:
        return None
    recorded = record if record is not None else runs.recorded_data(run)
    if recorded is None and run is not None and any((Path(run) / name).exists() for name in (*runs.STAGES,
                                                                                                runs.FEATURES)):
        raise runs.RunError(f"{run} holds a run's model but no {runs.METRICS}, which records the data it was trained "
                            "on (a run folder copied without it?): give that data with --dataset or --train")
    if recorded is not None and recorded.files:
        files = recorded.files
        args.train, args.test, args.labels, args.format = (files.get(k) for k in ("train", "test", "labels", "format"))
        args.duplicates = files.get("duplicates", args.duplicates)
        args.header = files.get("header", args.header)
        args.split_column = files.get("split_column") or 1  # none: no lists read, or a record before it (the first)
    elif recorded is not None:
        args.dataset = recorded.dataset
        if recorded.dataset_files_here():  # the files it read then, where they are, whatever the name reads now
            args.named_files = recorded.dataset_files
    return recorded


def load_data(args, run: Path | None = None, record: RecordedData | None = None,
              files_from: tuple[Path, dict] | None = None):
    """``(split, name, recorded)`` of a command's data: --dataset, or --train's files; without them
    the data the run in ``run`` was trained on, or that ``record`` names (:func:`_run_data`;
    ``recorded`` is that record, else None), refused if it has changed since; else the bundled
    default. A --train file that ``files_from`` (``(where, files)``, a record of data files:
    :func:`~awe_tf.runs.recorded_files`, by default the run's) names reads its first line as it
    was read then (:func:`~awe_tf.runs.recorded_header`)."""
    from awe_tf import runs
    from awe_tf.data import DEFAULT_DATASET, load_split

    check_data_flags(args)
    files_from = files_from or runs.recorded_files(run)
    if args.train and args.header == "auto" and files_from:
        header = runs.recorded_header(files_from[1], args.train)
        if header is not None:
            args.header, args.header_recorded_in = header, files_from[0]
    recorded = _run_data(args, run, record)
    kept = None  # the files a named data set was read from, as the record gives them
    if args.train:
        split = load_split(args.train, args.test, args.labels, args.format, duplicates=args.duplicates,
                           header=HEADERS[args.header], split_column=split_column(args))
        name = split.train.name
    else:
        name = args.dataset or DEFAULT_DATASET
        kept = getattr(args, "named_files", None)
        args.named_files = files = kept or _named_files_now(name)  # the files read, for the run to record
        split = load_split(files["train"], files["test"], files["labels"], files["format"], name=name)
    changed = runs.changed_parts(recorded, split)
    if changed and runs.read_as_binary_before(recorded, split, changed):
        raise UsageError(f"{recorded.source} was made by an awe-tf before commit 608857c, which read this Extreme "
                         "Classification text file's real-valued columns as binary (they are numeric now, a dense "
                         "one standardised): train it again (awe-tf train --restart, or another -o)")
    if changed:
        what = f"of {run} changed after it was trained" if run is not None else \
            f"that {recorded.source} records changed since"
        read = recorded.dataset_files  # a named data set's (None for files)
        files = f"{read['train']}{' and ' + read['test'] if read.get('test') else ''}" if read else ""
        where = "" if not read else f" (read again from {files}, which changed since)" if kept else \
            f" (it read {files}; {name} is read from {_named_folder(name)} now)"
        raise UsageError(f"the {' and '.join(changed)} data {what}{where}; give the data to use with --dataset or "
                         "--train")
    return split, name, recorded


def recorded_text(recorded: RecordedData | None, args) -> str:
    """What a data line adds where the data is what ``recorded`` names: the record, and for a
    named data set the folder it was read from (the run's own, wherever the name reads now)."""
    if recorded is None:
        return ""
    files = getattr(args, "named_files", None) if recorded.dataset else None  # a record of files names none
    column = (recorded.files or {}).get("split_column") or 1
    return (f" (what {recorded.source} records{', read from ' + str(Path(files['train']).parent) if files else ''}"
            f"{f', the split lists column {column}' if column != 1 else ''})")


def _named_folder(name: str) -> str:
    """Where a named data set is read from now, for a message."""
    from awe_tf.data.registry import locate

    try:
        return str(locate(name))
    except (OSError, ValueError):
        return "nowhere"


def _features_read_again(run: Path) -> list[str] | None:
    """The names of the features the run in ``run`` was trained on, from its data read again, for a
    run that records none (made before runs recorded them, or of features named by their column
    numbers); None, said in a note, where its data cannot be read again."""
    from awe_tf import runs
    from awe_tf.data.errors import DataFormatError

    try:
        return list(run_split(run).train.feature_names)
    except (OSError, UsageError, runs.RunError, DataFormatError) as error:
        print(f"note: {run} records no feature names and its data cannot be read again "
              f"({str(error).splitlines()[0]}): that these features are the model's, in its order, is not checked")
        return None


def run_split(run: Path):
    """The data the run in ``run`` was trained and tested on, read again as its record names it
    (:func:`load_data` with no data given); a :class:`UsageError` or
    :class:`~awe_tf.runs.RunError` where it cannot be (gone, changed)."""
    import argparse

    unset = argparse.ArgumentParser(add_help=False)
    add_data_args(unset)
    return load_data(unset.parse_args([]), run)[0]


def _training_file_alone(run: Path):
    """The training part of the run in ``run`` where it was given a test file (the whole training
    file), read from the files its record names, for when the test file is what is gone; None
    where that cannot be."""
    from awe_tf import runs
    from awe_tf.data import read_files

    try:
        files = (runs.read_metrics(run) or {}).get("data_files") or {}
    except (OSError, runs.RunError):
        return None
    needed = [files.get("train"), files.get("labels")]
    if not files.get("test") or not files.get("train") or not all(Path(f).exists() for f in needed if f):
        return None
    try:
        return read_files(files["train"], None, files.get("labels"), files.get("format"),
                          duplicates=files.get("duplicates", "error"), header=HEADERS[files.get("header", "auto")])[0]
    except (OSError, ValueError):
        return None


def split_column_hint(run: Path, split) -> str:
    """Where ``split`` is of an Extreme Classification file's own lists and the run in ``run`` read
    another of their columns (its record's ``split_column``), or the file through a path without
    them (``split_column`` None), what says so and how to read the run's: an error's ending; else
    empty."""
    from awe_tf import runs

    try:
        files = (runs.read_metrics(run) or {}).get("data_files") or {}
    except (OSError, runs.RunError):
        return ""
    if split.test_rows_file is None or not files.get("train"):
        return ""
    if "split_column" in files and files["split_column"] is None:  # recorded as read without lists
        return (f"; {run} read {files['train']} with no split lists beside it, split by the protocol: give that path "
                "to read its split")
    column = files.get("split_column", 1)  # a record before it: the first
    if column == split.test_rows_column:
        return ""
    return f"; {run} read split column {column} of its lists: " + (
        f"--split-column {column} reads that split" if column != 1 else "leave --split-column out to read it")


def check_not_trained_on(run: Path | None, split, name: str, recorded: RecordedData | None) -> None:
    """Where a command was given data (``recorded`` is None) to score the run in ``run`` on,
    refuse a test part that repeats the run's training rows (:func:`~awe_tf.data.overlap.trained_on`)
    far more than the run's own test part does: at least half of it, and at least twice the share
    of the run's own (data with few distinct rows repeats training rows in any test part); note a
    smaller share. A file's protocol split cuts its test part from rows that a run given that file
    with --test trained on. Where the run's data cannot be read again (gone, changed), a note says
    nothing was checked."""
    from awe_tf import runs
    from awe_tf.data.dataset import RECOMMENDATION
    from awe_tf.data.errors import DataFormatError
    from awe_tf.data.overlap import mostly_trained_on, trained_on

    if run is None or recorded is not None:
        return
    try:
        own = runs.recorded_data(run)
        if own is None or own.fingerprints.get("test_fingerprint") == split.test.fingerprint():
            return  # no record, or the run's own test part
        own_split = run_split(run)
        trained, own_test = own_split.train, own_split.test
    except (OSError, UsageError, runs.RunError, DataFormatError) as error:
        trained, own_test = _training_file_alone(run), None  # a run given --test trained on all of that file
        if trained is None:
            print(f"note: whether {run} was trained on these test rows is not checked: its own data cannot be read "
                  f"again ({str(error).splitlines()[0]})")
            return
    seen = trained_on(split.test, trained)
    if not seen[0]:
        return
    usual = trained_on(own_test, trained) if own_test is not None else (0, 0)  # gone: taken to repeat none
    what = "test positives (held-out items)" if split.test.task == RECOMMENDATION else "labelled test rows"
    told = f"{seen[0]:,} of the {seen[1]:,} {what} of {name} are ones {run} was trained on"
    if mostly_trained_on(seen, usual):
        raise UsageError(f"{told}: scoring them would measure what the model remembers, not how it ranks. Give no "
                         "data to score the run's own test part, or data it was not trained on (--test FILE)"
                         f"{split_column_hint(run, split)}")
    own_part = f"its own test part: {usual[0]:,} of {usual[1]:,}" if own_test is not None else \
        "its own test file is gone"
    print(f"note: {told} ({own_part}); they are scored with the rest")


def spare_data_files(output: Path | None, args, *more, flag: str = "--output") -> None:
    """Refuse an ``output`` file that is one of the data files ``args`` name (after
    :func:`load_data`, the run's own where it named none) or ``more`` files the command reads:
    writing it would replace the data."""
    if output is None:
        return
    for given in (args.train, args.test, args.labels, *more):
        if given and Path(given).exists() and output.resolve() == Path(given).resolve():
            raise UsageError(f"{flag} {output} is {given}, a data file this command reads: give another file")


def check_parts(args, split, name: str, parts: str) -> None:
    """Stop before any work where a part to use (``"train"``: both; ``"test"``) holds no positive
    label, or (training) the data has fewer than 2 labels (:func:`check_labels`): nothing to train
    on, rank or score, found otherwise only after training has begun."""
    from awe_tf.data import RECOMMENDATION
    from awe_tf.data.protocols import N_HELD_OUT

    recommendation = split.train.task == RECOMMENDATION
    if parts == "train":
        check_labels(args, split, name)
    if parts == "train" and split.train.Y.nnz == 0:
        raise UsageError(f"{args.train or name}: its training part has no example with a positive label" + (
            f" (a user with exactly {N_HELD_OUT} items has them all held out for testing)" if recommendation else ""))
    why = ""
    if recommendation:
        why = (" (every interaction of the test file repeats the user's training one, and a user's own items are "
               "not ranked)" if split.own_test_file else
               f" (no user has the {N_HELD_OUT} items the protocol holds out)")
    if split.test.Y.nnz == 0:
        raise UsageError(f"{args.test or args.train or name}: its test part has no example with a positive label to "
                         f"score{why}")
    if recommendation and not split.test.Y[:, split.candidates].nnz:
        import numpy as np

        from awe_tf.data.interactions import OTHER_ZEROS, same_number_ids, same_number_pairs

        names = np.asarray(split.train.label_names, dtype=object)
        found = same_number_ids(names[np.unique(split.test.Y.indices)], names[split.candidates])
        hint = (f" (ids are compared as text; its items are training items {OTHER_ZEROS} ({len(found)}: "
                f"{same_number_pairs(found)}): write them alike)") if found else ""
        raise UsageError(f"{args.test or args.train or name}: every item of its test part is in no training row, "
                         f"and an item never trained on is not ranked: every precision would be 0{hint}")


def check_labels(args, split, name: str) -> None:
    """Stop before any training where the data has fewer than 2 labels: nothing to rank (the
    model refuses it too, once training has begun)."""
    if split.train.n_labels < 2:
        count = split.train.n_labels
        raise UsageError(f"{args.train or name}: {count} label{'' if count == 1 else 's'}: there is nothing to rank; "
                         "a model needs at least 2 labels")


def same_data(n_features, n_labels, label_names, split, name, where, args=None, run=None,
              feature_names=None) -> None:
    """Refuse data other than what the model at ``where`` was trained on (:func:`~awe_tf.evaluation.data_mismatch`:
    its sizes, label names, and feature names where ``feature_names`` or the run in ``run`` records
    them); where ``args`` read --train with --header auto otherwise than the run in ``run`` read its own
    file (a copy of that file is read afresh), the message names the run's --header; where the run
    had an interactions test file of its own and ``args`` give none, it names that file (its items
    are among the model's); where ``args`` give a test file of interactions and the files hold items
    the model has not, it names them. A run that records no feature names, given data of named
    features, has them checked against its own data read again (:func:`_features_read_again`)."""
    from awe_tf import runs
    from awe_tf.data.dataset import are_column_numbers
    from awe_tf.evaluation import data_mismatch

    if feature_names is None and run is not None:
        feature_names = runs.recorded_features(run)
        given = args is not None and bool(getattr(args, "train", None) or getattr(args, "dataset", None))
        if feature_names is None and given and split.train.task == "annotation" \
                and not are_column_numbers(split.train.feature_names):
            feature_names = _features_read_again(run)
    problem = data_mismatch(n_features, n_labels, label_names, split.train, feature_names)
    if problem:
        hint = ""
        if args is not None and args.train and run is not None:
            try:
                files = (runs.read_metrics(run) or {}).get("data_files") or {}
            except (OSError, runs.RunError):
                files = {}
            if args.header == "auto" and files.get("header") in ("yes", "no") and \
                    files["header"] != header_read(args, split):
                hint = (f"; {run} read its file ({files.get('train')}) with --header {files['header']}: give that "
                        "to read a copy the same way")
            elif files.get("test") and not args.test and split.train.task == "recommendation":
                hint = f"; {run} was given a test file of its own, whose items count too: --test {files['test']}"
        if not hint and args is not None and args.test and label_names is not None \
                and split.train.task == "recommendation":
            new = sorted(set(map(str, split.train.label_names)) - set(map(str, label_names)))
            if new:
                hint = (f"; {len(new)} of its items {'is' if len(new) == 1 else 'are'} not the model's "
                        f"({', '.join(map(repr, new[:3]))}{', ...' if len(new) > 3 else ''}): the items of the files "
                        "given (--train and --test) are the data's; score the model on interactions of its own items "
                        "(leave the others out of the files; evaluate --unknown-items skip leaves them out)")
        raise UsageError(f"{where}: {problem} ({name}); give the data it was trained on (--dataset or --train){hint}")
