"""``awe-tf predict``: a trained model's top labels for rows named on the command line: users of
its data by id, a new user's items, new users' interactions in a file, or the rows of an
annotation file in its data's format. It ranks as
``awe-tf evaluate`` does (``AWEModel.top_k``: a user's own items and items never trained on left
out), so what it prints is what the evaluated model ranks."""

from __future__ import annotations

import json
from pathlib import Path

from awe_tf.cli.common import UsageError, empty_row_ranking, note_unpublished, output_file
from awe_tf.cli.data_flags import (
    HEADERS,
    check_data_flags,
    format_read,
    load_data,
    recorded_text,
    same_data,
    spare_data_files,
    split_column,
)
from awe_tf.data.text import some_of

ASKED = ("--user", "--items", "--rows")
SHOWN = 5  # the rows printed where the answers go to a file (--output) as well


def _asked(args) -> str:
    """The one of :data:`ASKED` the command was given."""
    given = [flag for flag, value in zip(ASKED, (args.user, args.items, args.rows), strict=True) if value]
    if len(given) != 1:
        raise UsageError("give one of --user (users of the model's data, by id), --items (a new user's items, by "
                         "id) or --rows FILE (rows of a data file in its data's format)" +
                         (f", not {' and '.join(given)}" if given else ""))
    return given[0]


def _whole_data(args):
    """The model's data as its files hold it, not split (after :func:`load_data`, ``args`` name
    it): every interaction of every user, a test file's of its own among them."""
    from awe_tf.data import DEFAULT_DATASET, RECOMMENDATION, read_files
    from awe_tf.data.protocols import merge_interactions
    from awe_tf.data.registry import read_dataset

    if args.train:
        train, test = read_files(args.train, args.test, args.labels, args.format, duplicates=args.duplicates,
                                 header=HEADERS[args.header], split_column=split_column(args))
        return merge_interactions(train, test)[0] if test is not None and train.task == RECOMMENDATION else train
    return read_dataset(args.dataset or DEFAULT_DATASET)[0]


def _users(data, name: str, users: list[str]):
    """The rows of ``users`` (ids as the data file gives them) in ``data`` and their ids."""
    try:
        return data.X[data.rows_of(users)], [user.strip() for user in users]  # as the rows know them
    except KeyError as error:
        raise UsageError(f"--user: {error.args[0]}; a user it has not seen goes in --items") from None


def _data_format(args) -> tuple[str, object]:
    """The format of the model's data and its label list (Mulan ARFF's; else None): its files',
    where ``args`` name files (after :func:`load_data`, or :func:`_items_alone`), else the named
    set's (those :func:`load_data` read it from)."""
    from awe_tf.data import DEFAULT_DATASET
    from awe_tf.data.registry import named_files

    if args.train:
        return format_read(args), args.labels
    files = getattr(args, "named_files", None)  # the files load_data read the named set from
    if files:
        return files["format"], files["labels"]
    _, _, labels, fmt = named_files(args.dataset or DEFAULT_DATASET)
    return fmt, labels


def _file_rows(args, split, name: str):
    """The rows of ``--rows FILE``, read as one file (no split) in the format of the model's data,
    with its label list for Mulan ARFF, and refused where their features are not the model's:
    ``(X, row names)``."""
    from awe_tf.data.dataset import first_difference
    from awe_tf.data.mulan import read_mulan
    from awe_tf.data.registry import FORMAT_NAMES
    from awe_tf.data.xmlrepo import read_xmlrepo

    fmt, labels = _data_format(args)
    try:
        rows = read_mulan(args.rows, labels, unlabelled=True) if fmt == "mulan" else \
            read_xmlrepo(args.rows, counts_of=("the model", split.train.n_features, split.train.n_labels))
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"--rows {args.rows}, read as {FORMAT_NAMES[fmt]} (the format of the model's data, {name}): "
                         f"{error}") from None
    if list(rows.feature_names) != list(split.train.feature_names):
        raise UsageError(f"--rows {args.rows}: its features are not those of {name} that {args.model} was trained "
                         f"on: {first_difference(split.train.feature_names, rows.feature_names)}; give rows with the "
                         "same features (attributes), in the same order")
    if not rows.n_examples:
        raise UsageError(f"--rows {args.rows} holds no row")
    return rows.X, [f"row {i + 1}" for i in range(rows.n_examples)]


def _say_skipped(names, items) -> None:
    """Say which of the rows' items the model does not have, where --unknown-items skip left them
    out (otherwise they were refused before this)."""
    from awe_tf.data.interactions import items_lacking, skipped_note

    lacking = items_lacking(names, items)
    if lacking:
        print(f"note: {skipped_note(lacking, '--unknown-items skip')}")


def _new_users(args, name: str, names: list[str], model):
    """The users of ``--rows FILE``, an interactions file (user, item[, weight], a repeated pair's
    weights added up), each user's items by id as the model names them: ``(X, user ids)``; a note
    where the file's rows weigh no item otherwise than its others, as the model reads them, and
    the model was trained on weighted items."""
    from awe_tf.data.interactions import UNWEIGHTED, read_interactions, rows_of_items
    from awe_tf.layers.transform import weighs_items

    fmt = _data_format(args)[0]
    if fmt != "interactions":  # MovieLens' items are named by their titles: an id file would name none of them
        raise UsageError(f"--rows reads new users' interactions for a model of an interactions file; {name} is "
                         f"{fmt} data: give its users with --user, or a new user's items with --items")
    try:
        users = read_interactions(args.rows, duplicates="sum")
        items = [[users.feature_names[j] for j in users.X[row].indices] for row in range(users.n_examples)]
        X = rows_of_items(names, items, [users.X[row].data.tolist() for row in range(users.n_examples)],
                          shared="--rows names items by id", unknown=args.unknown_items,
                          skip_hint="--unknown-items skip")
        _say_skipped(names, items)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"--rows {args.rows}: {error}") from None
    if model.transform.weighted and not weighs_items(users.X, model.normalisation):
        print(f"note: {UNWEIGHTED}; give --rows a third column of weights (user, item, weight)")
    return X, [str(user) for user in users.row_ids]


def _items_alone(args, run, asked: str, model, error: Exception) -> str:
    """Where the run's data cannot be read (its files gone: ``error``), a recommendation model that
    names its items answers ``--items``, and ``--rows`` where the run's data was an interactions file,
    from the model alone: its item names are all either needs (a user's own items are in the row).
    Has ``args`` name the recorded files, for their format; returns the data's name for messages.
    Anything else re-raises ``error``."""
    from awe_tf import runs
    from awe_tf.data import RECOMMENDATION
    from awe_tf.data.registry import guess_format
    from awe_tf.data.text import data_name

    files = (runs.recorded_files(run) or (None, {}))[1]
    gone = [path for path in (files.get(k) for k in ("train", "test", "labels")) if path and not Path(path).exists()]
    if args.dataset or args.train or asked == "--user" or model.data_task != RECOMMENDATION or not model.label_names \
            or not gone:
        raise error
    fmt = files.get("format") or guess_format(Path(files["train"]))
    if asked == "--rows" and fmt != "interactions":
        raise error
    args.train, args.format = files["train"], fmt
    print(f"note: the run's data files are gone ({', '.join(gone)}); the model's item names are all {asked} needs")
    return data_name(files["train"])


def _untrained_notes(model, X, rows: list[str], names: list[str]) -> None:
    """Notes on a recommendation model's input rows ``X``: items in them that no training row holds
    (the model reads them as nothing, and never ranks them), and rows left with no item it trained
    on (ranked by what it learnt of the items alone, the same for every such row)."""
    import numpy as np

    trained = model.rankable.numpy() > 0  # the items of a training row: the only inputs the model reads
    X = X.tocsr()
    untrained = np.flatnonzero((X.getnnz(axis=0) > 0) & ~trained)
    if untrained.size:
        print(f"note: {some_of([names[j] for j in untrained])}: in no training row, so read as nothing (and never "
              "ranked)")
    empty = [rows[i] for i in np.flatnonzero(X[:, trained].getnnz(axis=1) == 0)]
    if empty:
        print(f"note: {some_of(empty)}: no item the model trained on, so {empty_row_ranking(model.input_bias)}")


def cmd_predict(args) -> int:
    from awe_tf.data import RECOMMENDATION
    from awe_tf.data.interactions import UNWEIGHTED, rows_of_items
    from awe_tf.models import AWEModel, inference
    from awe_tf.models.saving import run_directory
    from awe_tf.runs import RunError

    asked = _asked(args)
    check_data_flags(args)
    run = run_directory(args.model)
    output = output_file(args.output, run=run)
    if args.all_items and asked != "--user":
        raise UsageError("--all-items goes with --user")
    if args.unknown_items != "refuse" and asked == "--user":
        raise UsageError("--unknown-items goes with --items or --rows (a user of the data has only the model's items)")
    model = AWEModel.load_model(args.model)
    note_unpublished(run)
    try:
        split, name, recorded = load_data(args, run)
    except (UsageError, RunError) as error:  # the run's data gone: the model alone may do
        split, name, recorded = None, _items_alone(args, run, asked, model, error), None
    spare_data_files(output, args, args.rows)
    task = split.train.task if split is not None else model.data_task
    recommendation = task == RECOMMENDATION
    if not recommendation and asked != "--rows":
        raise UsageError(f"{asked} is for recommendation models; {name} is {task} data: give --rows FILE")
    if not recommendation and args.unknown_items != "refuse":
        raise UsageError(f"--unknown-items is for recommendation models' items; {name} is {task} data")
    if split is not None:
        same_data(model.n_features, model.n_labels, model.label_names, split, name, args.model, args, run)
    names = list(model.label_names or split.train.label_names)  # a model made in Python may have none: the data's
    if asked == "--user":
        X, rows = _users(_whole_data(args) if args.all_items else split.train, name, args.user)
    elif asked == "--items":
        try:
            X = rows_of_items(names, [args.items], shared="--items takes names; by id, rank the row in Python "
                                                           "(model.top_k)", unknown=args.unknown_items,
                              skip_hint="--unknown-items skip")
            _say_skipped(names, [args.items])
        except ValueError as error:
            raise UsageError(f"--items: {error}") from None
        if model.transform.weighted:
            print(f"note: {UNWEIGHTED}; --rows FILE takes a user's items with weights (user, item, weight)")
        rows = ["new user"]
    elif recommendation:
        X, rows = _new_users(args, name, names, model)
    else:
        X, rows = _file_rows(args, split, name)
    print(f"data: {name}" + recorded_text(recorded, args))
    if recommendation:
        _untrained_notes(model, X, rows, names)
    ids, scores = inference.top_k(model, X, args.k)  # the slots no label fills: the note below
    answers = [{"row": row, "labels": [names[j] for j in top if j >= 0], "label_ids": [int(j) for j in top if j >= 0],
                "scores": [float(s) for j, s in zip(top, score, strict=True) if j >= 0]}
               for row, top, score in zip(rows, ids, scores, strict=True)]
    fewer = min(len(answer["labels"]) for answer in answers)
    if fewer < args.k:  # a slot no label can fill
        print(f"note: fewer than -k {args.k} labels for some rows (as few as {fewer}): "
              + ("a user's own items and items no training row holds are not ranked" if recommendation
                 else f"the model has {model.n_labels}"))
    shown = answers if output is None else answers[:SHOWN]  # a file's thousands of rows go to the file only
    for answer in shown:
        ranked = ", ".join(f"{label} ({score:.4f})" for label, score in zip(answer["labels"], answer["scores"],
                                                                             strict=True))
        print(f"{answer['row']}: {ranked or 'no label left to rank'}")
    if output is not None:
        output.write_text("".join(json.dumps(answer) + "\n" for answer in answers))
        more = f" ({len(answers) - len(shown)} rows more than the {len(shown)} above)" if len(answers) > len(shown) \
            else ""
        print(f"answers: {output}{more}")
    return 0

