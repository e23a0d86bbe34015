"""``awe-tf predict``: a trained model's top labels for rows named on the command line: users of
its data by id, a new user's items, or the rows of a data file in its data's format. It ranks as
``awe-tf evaluate`` does (``AWEModel.top_k``: a user's own items and items never trained on left
out), so what it prints is what the evaluated model ranks."""

from __future__ import annotations

import json

from awe_tf.cli.common import UsageError, output_file
from awe_tf.cli.data_flags import HEADERS, check_data_flags, load_data, same_data

ASKED = ("--user", "--items", "--rows")


def _asked(args) -> str:
    """The one of :data:`ASKED` the command was given."""
    given = [flag for flag, value in zip(ASKED, (args.user, args.items, args.rows), strict=True) if value]
    if len(given) != 1:
        raise UsageError("give one of --user (users of the model's data, by id), --items (a new user's items, by "
                         "id) or --rows FILE (rows of a data file in its data's format)" +
                         (f", not {' and '.join(given)}" if given else ""))
    return given[0]


def _users(split, name: str, users: list[str]):
    """The training rows of ``users`` (ids as the data file gives them) and their ids."""
    index = {str(user): row for row, user in enumerate(split.train.row_ids)}
    unknown = [user for user in users if user not in index]
    if unknown:
        known = ", ".join(map(str, list(index)[:3]))
        raise UsageError(f"--user {unknown[0]}: no user of {name} has that id (its {len(index)} users' ids are as "
                         f"its file gives them: {known}, ...); a user it has not seen goes in --items")
    return split.train.X[[index[user] for user in users]], list(users)


def _file_rows(args, split, name: str):
    """The rows of ``--rows FILE``, read in the format of the model's data (and with its label list,
    for Mulan ARFF), refused where their features are not the model's: ``(X, row names)``."""
    from awe_tf.data import read_files
    from awe_tf.data.registry import KNOWN, locate

    fmt, labels = args.format, args.labels
    if args.dataset:  # a named set: its own format and label list
        _, _, _, xml, fmt = KNOWN[args.dataset]
        labels = locate(args.dataset) / xml if xml else None
    try:
        rows = read_files(args.rows, None, labels, fmt, duplicates=args.duplicates, header=HEADERS[args.header])[0]
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"--rows {args.rows}: {error}") from None
    if list(rows.feature_names) != list(split.train.feature_names):
        raise UsageError(f"--rows {args.rows}: its {rows.n_features} features are not those of {name} that "
                         f"{args.model} was trained on ({split.train.n_features}): give rows with the same "
                         "attributes, in the same order")
    return rows.X, [f"row {i + 1}" for i in range(rows.n_examples)]


def cmd_predict(args) -> int:
    from awe_tf.data import RECOMMENDATION
    from awe_tf.data.interactions import rows_of_items
    from awe_tf.models import AWEModel
    from awe_tf.models.saving import run_directory

    asked = _asked(args)
    check_data_flags(args)
    run = run_directory(args.model)
    output = output_file(args.output, run=run)
    split, name, recorded = load_data(args, run)
    recommendation = split.train.task == RECOMMENDATION
    if recommendation == (asked == "--rows"):
        raise UsageError(f"{asked} is for {'annotation' if asked == '--rows' else 'recommendation'} models; "
                         f"{name} is {split.train.task} data: " +
                         ("give --user ID or --items ID ..." if recommendation else "give --rows FILE"))
    model = AWEModel.load_model(args.model)
    same_data(model.n_features, model.n_labels, model.label_names, split, name, args.model, args, run)
    if asked == "--user":
        X, rows = _users(split, name, args.user)
    elif asked == "--items":
        try:
            X = rows_of_items(list(model.label_names), [args.items])
        except ValueError as error:
            raise UsageError(f"--items: {error}") from None
        rows = ["new user"]
    else:
        X, rows = _file_rows(args, split, name)
    print(f"data: {name}" + (f" (what {recorded.source} records)" if recorded else ""))
    ids, scores = model.top_k(X, args.k)
    names = model.label_names
    answers = [{"row": row, "labels": [names[j] for j in top if j >= 0],
                "scores": [float(s) for j, s in zip(top, score, strict=True) if j >= 0]}
               for row, top, score in zip(rows, ids, scores, strict=True)]
    for answer in answers:
        ranked = ", ".join(f"{label} ({score:.4f})" for label, score in zip(answer["labels"], answer["scores"],
                                                                             strict=True))
        print(f"{answer['row']}: {ranked or 'no label left to rank'}")
    if output is not None:
        output.write_text("".join(json.dumps(answer) + "\n" for answer in answers))
        print(f"answers: {output}")
    return 0

