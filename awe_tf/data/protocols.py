"""The splits and validation carve-outs of the evaluation protocols (``docs/protocols.md``).

Every reported figure uses these, so numbers compare across runs, libraries and papers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import RECOMMENDATION, Dataset, Split, first_difference
from awe_tf.data.overlap import trained_on
from awe_tf.data.pipeline import raw_rows

N_HELD_OUT = 5
TEST_EVERY = 5  # annotation data with no test file: every fifth row is test


def modulo_split(data: Dataset, every: int = TEST_EVERY) -> tuple[Dataset, Dataset]:
    """Annotation split for data with no given split: 0-based row ``i % every == 0`` is test."""
    is_test = np.arange(data.n_examples) % every == 0
    return data.rows(~is_test), data.rows(is_test)


def validation_rows(n_train: int, seed: int = 0) -> np.ndarray:
    """A seeded random 20% of the training rows: ``sorted(default_rng(0).permutation(n)[: n // 5])``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_train)[: n_train // 5])


def untrained_features(X, numeric, mean=None) -> np.ndarray:
    """A mask of the input features whose standardised value (the protocol's) is 0 in every row
    of ``X``, so that training learns nothing of them: the binary (bag-of-words) columns that no
    row holds, and the numeric ones (``numeric``, a mask) that are constant over the rows at
    their standardising mean (``mean``, one per numeric column; None: their own mean, which a
    constant column always is). A model ignores them in the rows it scores
    (:class:`~awe_tf.layers.transform.InputTransform`): their rows of U never trained."""
    X = raw_rows(X, X.shape[1])  # stored zeros dropped: a column of them is in no row
    untrained = X.getnnz(axis=0) == 0
    numeric = np.flatnonzero(np.asarray(numeric, bool))
    if numeric.size and X.shape[0]:
        block = X[:, numeric]
        low, high = (np.asarray(m.toarray(), np.float64).ravel() for m in (block.min(axis=0), block.max(axis=0)))
        at_mean = True if mean is None else np.abs(high - mean) <= 1e-9 * np.maximum(1.0, np.abs(high))
        untrained[numeric] = (low == high) & at_mean
    return untrained


def _values_off(X: sp.csr_matrix, columns, constants) -> int:
    """How many values of ``X`` (:func:`~awe_tf.data.pipeline.raw_rows`) in ``columns`` differ
    from those columns' ``constants`` (absent entries are 0): what a model that ignores those
    features sees otherwise than in training."""
    block = sp.csc_matrix(X[:, columns])
    total = 0
    for j, constant in enumerate(constants):
        values = block.data[block.indptr[j]:block.indptr[j + 1]]
        total += values.size if constant == 0 else block.shape[0] - int((values == constant).sum())
    return total


SPARSE_SHARE = 0.5  # a numeric column zero in at least this share of the rows is kept as it is
STATISTICS_BLOCK = 1 << 24  # values (float64) of the numeric columns densified at once by column_statistics


def _numeric_block(X, columns) -> tuple[sp.csc_matrix, np.ndarray]:
    """``(X``'s ``columns`` as a CSC block, stored zeros dropped; whether each is 0 in at least
    :data:`SPARSE_SHARE` of the rows``)``. Only those columns are read: data with no numeric
    column (every recommendation set) costs nothing here."""
    block = sp.csc_matrix(sp.csr_matrix(X)[:, columns])
    block.eliminate_zeros()
    return block, np.diff(block.indptr) <= (1 - SPARSE_SHARE) * block.shape[0]


def sparse_columns(X, numeric) -> np.ndarray:
    """The mask of the columns flagged in ``numeric`` that are 0 (or absent) in at least
    :data:`SPARSE_SHARE` of the rows of ``X``: bag-of-words weights, which
    :func:`column_statistics` keeps as they are."""
    numeric = np.asarray(numeric, bool)
    sparse = np.zeros(numeric.size, bool)
    sparse[numeric] = _numeric_block(X, np.flatnonzero(numeric))[1]
    return sparse


def column_statistics(X, numeric) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of the columns flagged in ``numeric`` over the rows of ``X`` (float64; a
    standard deviation of 0 is replaced by 1, so a constant column is only centred).

    A numeric column that is 0 in at least :data:`SPARSE_SHARE` of the rows
    (:func:`sparse_columns`: a word's tf-idf weight in a bag of words, as in RCV1 or EUR-Lex)
    gets mean 0 and std 1: it is kept as it is, as the protocol keeps binary bag-of-words
    columns. Standardised, it would have a value in every row, and a sparse file of tens of
    thousands of such columns would become dense (a model's input transform leaves columns of
    mean 0 and std 1 out of its dense block: :func:`standardised_columns`). Not scaled either:
    divided by its spread, a rare word would outweigh a common one by the ratio of their
    spreads, a second inverse document frequency on top of tf-idf's own. (A sparse column of
    large counts then weighs as its counts do, as a bag of words of counts does.)

    The other columns are densified a block of columns at a time; NumPy sums a block of one
    column in another order than a wider one, so figures may differ in the last bit from those
    of one block where the block holds one column."""
    columns = np.flatnonzero(np.asarray(numeric, bool))
    mean, std = np.zeros(columns.size), np.ones(columns.size)
    rows = X.shape[0]
    if not rows:
        return mean, std
    block, sparse = _numeric_block(X, columns)
    dense = np.flatnonzero(~sparse)
    step = max(1, STATISTICS_BLOCK // rows)
    for start in range(0, dense.size, step):
        chosen = dense[start:start + step]
        values = block[:, chosen].toarray(order="C").astype(np.float64)
        spread = values.std(axis=0)
        spread[spread == 0] = 1.0
        mean[chosen], std[chosen] = values.mean(axis=0), spread
    return mean, std


def standardised_columns(numeric, mean, std) -> np.ndarray:
    """The mask of the columns that standardising changes.

    Args:
        numeric: a mask of the numeric columns.
        mean, std: one of each per numeric column (:func:`column_statistics`).

    Returns:
        The numeric columns whose mean and std are not 0 and 1. The others keep their values,
        and so their zeros: an absent entry stays absent.
    """
    numeric = np.asarray(numeric, bool)
    changed = numeric.copy()
    changed[numeric] = (np.asarray(mean) != 0) | (np.asarray(std) != 1)
    return changed


def annotation_split(train: Dataset, test: Dataset | None = None) -> Split:
    """The annotation protocol: the given train/test files, or ``i % 5 == 0`` as test when
    there is no given split.

    Both parts keep their raw feature values and carry the training part's ``numeric_scale``:
    the protocol's standardisation of numeric columns is part of the model
    (:class:`~awe_tf.layers.transform.InputTransform`), which adopts those statistics when it
    is trained on the part or its validation carve-out, so the model that is evaluated and the
    one that is served take the same raw rows.
    """
    every = TEST_EVERY if test is None else 0
    if every:
        train, test = modulo_split(train, every)
    else:
        _same_columns(train, test)
    if np.asarray(train.numeric_features, bool).any():
        scale = column_statistics(train.X, train.numeric_features)
        train = dataclasses.replace(train, numeric_scale=scale)
        test = dataclasses.replace(test, numeric_scale=scale)
    return Split(train=train, test=test, test_every=every)


def _same_columns(train: Dataset, test: Dataset) -> None:
    """Refuse a test part whose features or labels are not the training part's, in order: read by
    position, its columns would be scored as other ones (two DataFrames with their columns in
    another order)."""
    for what, ours, theirs in (("feature", train.feature_names, test.feature_names),
                               ("label", train.label_names, test.label_names)):
        if list(ours) != list(theirs):
            raise ValueError(f"{test.name}: the test part's {what}s are not the training part's: "
                             f"{first_difference(list(ours), list(theirs), theirs='in the test part', what=what)}; "
                             f"give them in the training part's order (a DataFrame: df[train.{what}_names])")


def annotation_validation(train: Dataset) -> Split:
    """Carve the protocol's validation rows out of a training part."""
    val = validation_rows(train.n_examples)
    keep = np.ones(train.n_examples, bool)
    keep[val] = False
    return Split(train=train.rows(keep), test=train.rows(val), held_out="validation", carved_from=train)


def hold_out_items(Y: sp.csr_matrix, seed: int, n_held_out: int = N_HELD_OUT):
    """For each user (rows in ascending user-id order) draw ``n_held_out`` of the sorted item ids
    with ``default_rng(seed).choice(items, n_held_out, replace=False)``.

    A user with exactly ``n_held_out`` items draws them all, as the recipe does (the draw moves
    the generator on for every later user): that user is tested with no training items. One
    with fewer, where the recipe's draw cannot be made, keeps them all for training, draws
    nothing and is not tested; ``skipped`` counts them.

    Returns:
        ``(kept, held_out, skipped)``: two boolean masks over ``Y.data`` in CSR order, and the
        number of users skipped.
    """
    rng = np.random.default_rng(seed)
    held = np.zeros(Y.nnz, bool)
    skipped = 0
    for user in range(Y.shape[0]):
        start, end = Y.indptr[user], Y.indptr[user + 1]
        items = Y.indices[start:end]  # sorted ascending: CSR with sorted indices
        if items.size < n_held_out:
            skipped += 1
            continue
        chosen = rng.choice(items, n_held_out, replace=False)
        held[start:end] = np.isin(items, chosen)
    return ~held, held, skipped


def _mask_csr(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    out = matrix.copy()
    out.data = np.where(keep, out.data, 0).astype(np.float32)
    out.eliminate_zeros()
    return out


def recommendation_split(data: Dataset, seed: int = 0, held_out: str = "") -> Split:
    """The recommendation (YouTube) protocol: 5 held-out items per user drawn with
    ``default_rng(seed)``; the rest are training.

    The test part's inputs are each user's training items and its labels the held-out items;
    the ranking excludes the user's training items and covers only items seen in training. Where
    every user has held-out items, the test part's inputs and ``exclude`` are the training part's
    own matrices, not copies (at a million users, each copy is the size of the training set); where
    the inputs' weights equal the labels (implicit data), the training inputs and labels are one
    matrix too: treat a split's matrices as read-only. ``held_out`` names the held-out part's
    use (:class:`~awe_tf.data.dataset.Split`).
    """
    if data.task != RECOMMENDATION:
        raise ValueError(f"{data.name} is {data.task} data, not recommendation data")
    data.X.sort_indices()
    data.Y.sort_indices()
    if not np.array_equal(data.X.indices, data.Y.indices) or not np.array_equal(data.X.indptr, data.Y.indptr):
        raise ValueError("recommendation data needs X and Y with the same non-zero pattern")
    kept, held, skipped = hold_out_items(data.Y, seed)
    return _split_held(data, kept, held, skipped, held_out)


def _split_held(data: Dataset, kept: np.ndarray, held: np.ndarray, skipped: int, held_out: str,
                own_test_file: bool = False) -> Split:
    """The split of recommendation data (X and Y of one non-zero pattern, indices sorted) whose
    interactions ``held`` (a mask over ``Y.data``) are the test part's labels, those ``kept`` the
    training part (:func:`recommendation_split` says how the parts share matrices); users with no
    held interaction are not in the test part."""
    train_Y = _mask_csr(data.Y, kept)
    # inputs weighted as the labels are (implicit data: every weight 1): one training matrix serves as both
    train_X = train_Y if np.array_equal(data.X.data, data.Y.data) else _mask_csr(data.X, kept)
    test_Y = _mask_csr(data.Y, held)
    train = data.with_matrices(X=train_X, Y=train_Y)
    test = data.with_matrices(X=train_X, Y=test_Y)
    has_test = np.diff(test_Y.indptr) > 0
    candidates = np.flatnonzero(np.asarray(train_Y.sum(axis=0)).ravel() > 0)
    everyone = has_test.all()  # every user tested (the usual case): the parts share the training matrices
    return Split(
        train=train,
        test=test if everyone else test.rows(has_test),
        exclude=train_Y if everyone else train_Y[has_test],
        candidates=candidates,
        untested=skipped,
        held_out=held_out,
        own_test_file=own_test_file,
    )


def merge_interactions(train: Dataset, test: Dataset) -> tuple[Dataset, np.ndarray, int]:
    """Two recommendation data sets (a training file's interactions and a test file's) as one, read
    by name into one set of users and items (their ``row_ids`` and ``label_names``, in ascending id
    order), the training part's name, notes and settings kept; which of its interactions (a
    mask over ``Y.data``) come from ``test`` only; and how many of the test file's users have none
    (all their test interactions repeat training ones: they are not tested). A test interaction that repeats the user's
    training one is the training one (the notes count them, and name the test file's ids that are
    training ids written with other leading or decimal zeros, :func:`~awe_tf.data.interactions.same_number_ids`;
    the test file's own notes are kept, marked as its, and a first line of its read as a header
    unlike the training file's is noted)."""
    from awe_tf.data.interactions import _sort_key, same_number_ids, same_number_note

    for part in (train, test):
        if part.task != RECOMMENDATION:
            raise ValueError(f"{part.name} is {part.task} data, not recommendation data")
    notes = tuple(f"the test file: {note}" for note in test.notes)
    if test.header and test.header != train.header:  # (a header alike in both goes without saying)
        from awe_tf.data.errors import is_number

        numbers = all(is_number(field) for field in test.header)
        notes += (f"the test file's first line, {', '.join(test.header)}, read as the columns' names"
                  + (": numbers only, as an interaction's are (a file without a header line? a header is read "
                     "in both files or in neither: give it the training file's)" if numbers else ""),)
    notes += tuple(same_number_note(found, what, "training ids", "of the test file ") for what, ids, known in (
        ("user", test.row_ids, train.row_ids), ("item", test.label_names, train.label_names))
        if (found := same_number_ids(ids, known)))
    users = _sort_key({str(u) for part in (train, test) for u in part.row_ids})
    items = _sort_key({str(i) for part in (train, test) for i in part.label_names})
    user_at = {u: i for i, u in enumerate(users)}
    item_at = {t: i for i, t in enumerate(items)}
    parts = []
    for part in (train, test):
        X = part.X.tocoo()
        rows = np.asarray([user_at[str(u)] for u in part.row_ids], np.int64)[X.row]
        cols = np.asarray([item_at[str(t)] for t in part.label_names], np.int64)[X.col]
        parts.append((rows, cols, X.data.astype(np.float32)))
    n_items = len(items)
    repeated = np.isin(parts[1][0] * n_items + parts[1][1], parts[0][0] * n_items + parts[0][1])
    rows = np.concatenate([parts[0][0], parts[1][0][~repeated]])
    cols = np.concatenate([parts[0][1], parts[1][1][~repeated]])
    values = np.concatenate([parts[0][2], parts[1][2][~repeated]])
    from_test = np.concatenate([np.zeros(len(parts[0][0]), bool), np.ones(int((~repeated).sum()), bool)])
    order = np.lexsort((cols, rows))  # CSR order: the mask follows Y.data
    shape = (len(users), n_items)
    X = sp.csr_matrix((values[order], (rows[order], cols[order])), shape=shape)
    Y = sp.csr_matrix((np.ones(len(order), np.float32), (rows[order], cols[order])), shape=shape)
    n = int(repeated.sum())
    only = len(np.setdiff1d(parts[1][0], parts[1][0][~repeated]))  # test users all of whose test items repeat
    notes += (f"{n} test interaction{'s' * (n > 1)} repeat{'s' * (n == 1)} the user's training one{'s' * (n > 1)}: not "
              "tested (a user's own items are not ranked)" + (
                  f"; {only} user{'s' * (only > 1)} of the test file had no other, and {'are' if only > 1 else 'is'} "
                  "not tested" if only else ""),) if n else ()
    if np.any(parts[1][2] != 1.0):
        notes += ("the test file's weights are not used: a test interaction is an item to find, whatever its weight",)
    data = dataclasses.replace(train, X=X if not train.values_as_ones else Y.copy(), Y=Y, feature_names=list(items),
                               label_names=list(items), row_ids=np.asarray(users, dtype=object),
                               notes=tuple(train.notes) + notes, numeric_features=None)
    return data, from_test[order], only


def own_recommendation_split(train: Dataset, test: Dataset) -> Split:
    """Interactions data split by a test file of its own (a later period's interactions, say),
    not by the protocol's draw: the test part's labels are each user's interactions in ``test``,
    its inputs the user's in ``train``, as in :func:`recommendation_split`, both read into one set
    of users and items (:func:`merge_interactions`): a user only in the test file is tested with
    no training items, an item only there is a column never trained on, which is not ranked (as
    the protocol's items held out and in no training row). A test interaction that repeats the
    user's training one is not tested (a user's own items are not ranked, so it could never be
    hit): the training part's notes count them, and the split's ``untested`` the test file's users
    left with none."""
    data, held, untested = merge_interactions(train, test)
    return _split_held(data, ~held, held, untested, "", own_test_file=True)


@dataclasses.dataclass(frozen=True)
class LeftOut:
    """What :func:`onto_items` left out of a split.

    Attributes:
        items: the names of the data's items the model lacks.
        test_interactions: their test interactions (never rankable by the model).
        input_interactions: their places in users' inputs (the users' training items).
        untested_users: the users then left with no test interaction, not tested.
    """

    items: tuple[str, ...] = ()
    test_interactions: int = 0
    input_interactions: int = 0
    untested_users: int = 0


def onto_items(split: Split, names: Sequence[str]) -> tuple[Split, LeftOut]:
    """A recommendation split whose items are those a model names, in its order: a model of an
    earlier period scored on a later one's interactions.

    An item of the data the model lacks (new since it was trained) is left out of every part: its
    test interactions, which the model could never rank, and its places in users' inputs (as
    ``rows_of(..., unknown="skip")`` leaves it out of a row). An item of the model's that the data
    lacks has no interaction. A user left with no test interaction is not tested (counted in
    ``untested``). The candidates are the data's training items that the model has. Items are
    matched by name, as text. The split is made first, so where the protocol drew each user's
    held-out items (no test file), the new items were among those it could draw: such a user is
    tested on the rest of them, not on as many as the protocol holds out.

    Args:
        split: a recommendation split (``load_split``, ``protocol_split``).
        names: the model's label names.

    Returns:
        ``(split, left_out)``: ``split`` itself where its items are the model's, in order; matrices
        the parts shared are shared still.

    Raises:
        ValueError: annotation data.
    """
    if split.train.task != RECOMMENDATION:
        raise ValueError("onto_items is for recommendation data, whose items are its labels")
    names = [str(name) for name in names]
    data_names = [str(name) for name in split.train.label_names]
    if data_names == names:
        return split, LeftOut()
    at = {name: j for j, name in enumerate(names)}
    column = np.asarray([at.get(name, -1) for name in data_names], np.int64)  # each data item's in the model's
    made = {}  # by the arrays a matrix holds: the parts share them (Split), and so do their remade ones

    def onto(matrix):
        matrix = sp.csr_matrix(matrix)
        key = (matrix.shape, *(part.__array_interface__["data"][0] for part in (matrix.data, matrix.indices,
                                                                                 matrix.indptr)))
        if key not in made:
            coo = matrix.tocoo()
            keep = column[coo.col] >= 0
            out = sp.csr_matrix((coo.data[keep], (coo.row[keep], column[coo.col[keep]])),
                                shape=(coo.shape[0], len(names)))
            out.sort_indices()
            made[key] = out
        return made[key]

    train_X, train_Y, test_X, test_Y = (onto(m) for m in (split.train.X, split.train.Y, split.test.X, split.test.Y))
    tested = np.diff(test_Y.indptr) > 0
    gone = tuple(name for name, j in zip(data_names, column, strict=True) if j < 0)
    left = LeftOut(items=gone, test_interactions=int(split.test.Y.nnz - test_Y.nnz),
                   input_interactions=int(split.train.X.nnz - train_X.nnz), untested_users=int((~tested).sum()))
    named = {"feature_names": list(names), "label_names": list(names), "numeric_scale": None,
             "numeric_features": np.zeros(len(names), bool)}  # a recommendation model standardises nothing
    exclude = None if split.exclude is None else onto(split.exclude)
    if not tested.all():
        test = dataclasses.replace(split.test, X=test_X, Y=test_Y, **named).rows(tested)
        exclude = None if exclude is None else exclude[tested]
    else:
        test = dataclasses.replace(split.test, X=test_X, Y=test_Y, **named)
    return dataclasses.replace(
        split, train=dataclasses.replace(split.train, X=train_X, Y=train_Y, **named), test=test, exclude=exclude,
        candidates=np.flatnonzero(np.asarray(train_Y.sum(axis=0)).ravel() > 0),
        untested=split.untested + left.untested_users,
    ), left


def recommendation_validation(train: Dataset) -> Split:
    """The same recipe on the training part with ``default_rng(1)``."""
    return dataclasses.replace(recommendation_split(train, seed=1, held_out="validation"), carved_from=train)


@dataclasses.dataclass
class Coverage:
    """What a split can test and its training part can teach, in counts (``awe-tf train``'s
    data line): the test part's origin (``test_every``: every n-th row of one file, 0: a test
    file, a file's own lists of rows, ``test_rows_file``, or the recommendation split, by the
    protocol's draw or a test file's interactions, ``own_test_file``) and its
    positives; for recommendation only, the users too
    short to test, those tested with no training items and the test positives of items in no
    training row (never ranked); for annotation only (0 for
    recommendation, whose items never trained on are not ranked at all), the training rows with
    no label (no pair to learn from), the labels in no training row (their rows of V stay as
    they started) and the features no training row trains (:func:`untrained_features`, which a
    model ignores), the test positives and values those touch, the test rows left with no
    feature a model uses (each ranked as every other such row is), the numeric columns kept
    as they are, not standardised, being 0 in half the training rows or more
    (:func:`sparse_columns`), and those standardised; for a test file (annotation), its labelled
    rows that are training rows, inputs and labels alike (:func:`~awe_tf.data.overlap.trained_on`:
    what their scores measure is what the model remembers), ``(shared, labelled rows)``."""

    test_every: int = 0
    test_rows_file: Path | None = None
    test_rows_column: int = 1
    own_test_file: bool = False
    untested_users: int = 0
    test_positives_never_trained: int = 0
    users_without_training_items: int = 0
    unlabelled_rows: int = 0
    untrained_labels: int = 0
    test_positives_of_untrained_labels: int = 0
    test_positives: int = 0
    untrained_features: int = 0
    test_values_of_untrained_features: int = 0
    test_rows_without_features: int = 0  # none the model uses: every such row is ranked the same
    numeric_kept: int = 0
    numeric_standardised: int = 0
    binary_kept: int = 0  # columns of 0/1 values (binary or nominal attributes), which the model takes as they are
    test_rows_trained_on: tuple[int, int] = (0, 0)


def coverage(split: Split) -> Coverage:
    """The :class:`Coverage` of ``split``."""
    train, test = split.train, split.test
    if train.task == RECOMMENDATION:  # items never trained on are not ranked at all (the split's candidates)
        never = np.ones(test.n_labels, bool)
        never[split.candidates] = False
        return Coverage(own_test_file=split.own_test_file, untested_users=split.untested,
                        test_positives=int(test.Y.nnz), test_positives_never_trained=int(test.Y[:, never].nnz),
                        users_without_training_items=int((test.X.getnnz(axis=1) == 0).sum()))
    numeric = np.asarray(train.numeric_features, bool)
    mean, std = train.numeric_scale if train.numeric_scale is not None else column_statistics(train.X, numeric)
    labels = train.Y.getnnz(axis=0) == 0
    untrained = untrained_features(train.X, numeric, mean)
    features = np.flatnonzero(untrained)
    constants = np.asarray(sp.csr_matrix(train.X)[:, features].max(axis=0).toarray()).ravel()  # 0: in no row
    # a standardised column the model uses has a value in every row (an absent one is a raw 0)
    standardised = standardised_columns(numeric, mean, std)
    numeric_used = bool((standardised & ~untrained).any())
    test_X = raw_rows(test.X, test.n_features)  # stored zeros dropped
    bare = 0 if numeric_used else int((test_X[:, ~untrained].getnnz(axis=1) == 0).sum())
    from_file = not split.test_every and split.test_rows_file is None  # a test file's rows, not the protocol's draw
    return Coverage(test_every=split.test_every, test_rows_file=split.test_rows_file,
                    test_rows_column=split.test_rows_column,
                    test_rows_trained_on=trained_on(test, train) if from_file else (0, 0),
                    unlabelled_rows=int((train.Y.getnnz(axis=1) == 0).sum()),
                    untrained_labels=int(labels.sum()), test_positives_of_untrained_labels=int(test.Y[:, labels].nnz),
                    test_positives=int(test.Y.nnz), untrained_features=int(features.size),
                    test_values_of_untrained_features=_values_off(test_X, features, constants),
                    test_rows_without_features=bare,
                    numeric_kept=int((sparse_columns(train.X, numeric) & ~untrained).sum()),
                    numeric_standardised=int((standardised & ~untrained).sum()),
                    binary_kept=int((~numeric & ~untrained).sum()))


def protocol_split(train: Dataset, test: Dataset | None = None) -> Split:
    """The protocol's train/test split for either task (``held_out="test"``: training refuses it as
    a validation split, and its test part, marked ``test_part``, as training data); recommendation
    data given a test file of its own is split by it (:func:`own_recommendation_split`)."""
    if train.task == RECOMMENDATION:
        split = recommendation_split(train) if test is None else own_recommendation_split(train, test)
    else:
        split = annotation_split(train, test)
    return dataclasses.replace(split, test=dataclasses.replace(split.test, test_part=True), held_out="test")


def default_monitor(data: Dataset) -> str:
    """The metric that chooses epochs and settings where none is named: the one the protocol leads
    with, P@10 for recommendation, P@1 for annotation."""
    return "precision@10" if data.task == RECOMMENDATION else "precision@1"


def validation_split(train: Dataset) -> Split:
    """The protocol's validation carve-out of a training part, for either task. Train on its
    ``train`` part: ``fit(carve.train, ..., validation=carve)`` (``fit(train, ...)`` would train on
    the rows it holds out, and is refused)."""
    if train.task == RECOMMENDATION:
        return recommendation_validation(train)
    return annotation_validation(train)


__all__ = [
    "Coverage",
    "LeftOut",
    "annotation_split",
    "coverage",
    "column_statistics",
    "sparse_columns",
    "standardised_columns",
    "default_monitor",
    "annotation_validation",
    "hold_out_items",
    "merge_interactions",
    "modulo_split",
    "onto_items",
    "own_recommendation_split",
    "protocol_split",
    "recommendation_split",
    "recommendation_validation",
    "untrained_features",
    "validation_rows",
    "validation_split",
]
