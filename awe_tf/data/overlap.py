"""How much of a test part a model trained on some data has seen: a test part cut from the rows a
model was trained on measures what it remembers, not how it ranks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import ANNOTATION, Dataset, labelled_rows


def _row_keys(matrices, seed: int = 0) -> np.ndarray:
    """One key per row of equally tall sparse ``matrices``: their rows projected on random
    vectors (two per matrix), as bytes. Equal rows give equal keys; distinct rows share one
    only by a coincidence of 64-bit floats."""
    rng = np.random.default_rng(seed)
    columns = []
    for matrix in matrices:
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        matrix.sort_indices()  # the same row, summed in the same order, gives the same floats
        columns.append(matrix @ rng.standard_normal((matrix.shape[1], 2)))
    keys = np.ascontiguousarray(np.hstack(columns))
    return keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).ravel()


def trained_on(test: Dataset, train: Dataset) -> tuple[int, int]:
    """How much of ``test`` a model trained on ``train`` has seen: ``(shared, total)``. For
    annotation, the labelled test rows (those the metrics score) whose inputs and labels are both
    a row of ``train``, of all labelled test rows; for recommendation, the test positives (a
    user's held-out items) that are training positives of the same user (by ``row_ids``) in
    ``train``, of all test positives. Metrics on what was trained on measure what the model
    remembers, not how it ranks."""
    labelled = labelled_rows(test.Y)
    total = labelled.size if test.task == ANNOTATION else int(test.Y.nnz)
    if test.task != train.task or test.X.shape[1] != train.X.shape[1] or test.Y.shape[1] != train.Y.shape[1] \
            or train.n_examples == 0:
        return 0, total
    if test.task == ANNOTATION:
        trained = _row_keys((train.X, train.Y))
        return int(np.isin(_row_keys((test.X[labelled], test.Y[labelled])), trained).sum()), total
    ids, asked_ids = np.asarray(train.row_ids).astype(str), np.asarray(test.row_ids).astype(str)
    order = np.argsort(ids, kind="stable")
    where = np.minimum(np.searchsorted(ids[order], asked_ids), ids.size - 1)
    user = np.where(ids[order][where] == asked_ids, order[where], -1)  # each test row's row in train, -1 for none
    test_Y, train_Y = sp.coo_matrix(test.Y), sp.coo_matrix(train.Y)
    n_items = np.int64(train.Y.shape[1])
    asked = user[test_Y.row].astype(np.int64) * n_items + test_Y.col
    known = train_Y.row.astype(np.int64) * n_items + train_Y.col
    return int(np.isin(asked[user[test_Y.row] >= 0], known).sum()), int(test.Y.nnz)


def mostly_trained_on(seen: tuple[int, int], usual: tuple[int, int]) -> bool:
    """Whether a test part repeats training rows far more than it should: ``seen``, its
    :func:`trained_on` count against the model's training data, is at least half of it, and its
    share at least twice ``usual``'s, what the data's own split repeats (data of few distinct rows
    repeats training rows in any test part)."""
    (shared, total), (usual_shared, usual_total) = seen, usual
    return shared > 0 and 2 * shared >= total and shared * usual_total >= 2 * usual_shared * total
