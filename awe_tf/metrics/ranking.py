"""Ranking metrics as pure NumPy functions, exactly as ``docs/protocols.md`` defines them.

Ties in scores break towards the lower label index; excluded labels (a user's training items)
and labels outside ``candidates`` are never ranked before a label that may be.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

DEFAULT_KS = (1, 3, 5, 10)


ROWS_RANKED_AT_ONCE = 1 << 20  # scores a block of rows ranked together holds (4 MB as float32)


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None, candidates=None) -> np.ndarray:
    """Indices of the ``k`` best labels per row, best first.

    Args:
        scores: ``[n, |Y|]`` scores.
        k: how many labels to return (capped at ``|Y|``).
        exclude: optional ``[n, |Y|]`` sparse matrix; its non-zeros are ranked after every other
            label (so never, while k others are left).
        candidates: optional label indices; the others are ranked as excluded ones.

    Returns:
        ``[n, k]`` int array of label indices. Ties break towards the lower label index; a NaN
        score ranks as -inf, after every finite one; excluded labels and those outside
        ``candidates`` rank after all of them, whatever their scores. (An export answers -1
        instead of a label scored -inf or NaN: a model with such scores has diverged.)

    Example:
        >>> scores = np.array([[0.1, 0.9, 0.5, 0.9], [0.3, 0.2, 0.8, 0.0]])
        >>> top_k(scores, 2).tolist()  # labels 1 and 3 tie: the lower first
        [[1, 3], [2, 0]]
        >>> top_k(scores, 2, exclude=sp.csr_matrix([[0, 1, 0, 0], [0, 0, 0, 0]])).tolist()
        [[3, 2], [2, 0]]
    """
    scores = np.asarray(scores)
    n, n_labels = scores.shape
    barred = None
    if candidates is not None:
        barred = np.ones(n_labels, bool)
        barred[np.asarray(candidates)] = False
    rows, cols = (np.zeros(0, np.int64),) * 2 if exclude is None else sp.csr_matrix(exclude).nonzero()
    bounds = np.searchsorted(rows, np.arange(n + 1))  # row-major: row i's columns are one run
    k = min(k, n_labels)
    if k >= n_labels // 4:  # a full stable sort of the whole batch
        return np.argsort(_to_rank(scores, barred, rows, cols), axis=1, kind="stable")[:, :k]
    # Partitioned first, keeping every label tied with the k-th so the tie-break stays exact, in
    # blocks of rows that hold a few MB whatever |Y| (one row at a million labels): never a copy
    # of the whole batch and an int64 index of it.
    out = np.empty((n, k), np.int64)
    step = max(1, ROWS_RANKED_AT_ONCE // n_labels)
    for first in range(0, n, step):
        last = min(first + step, n)
        run = slice(bounds[first], bounds[last])
        block = _to_rank(scores[first:last], barred, rows[run] - first, cols[run])
        kth = np.partition(block, k - 1, axis=1)[:, k - 1]
        for row, values in enumerate(block):
            if np.isnan(kth[row]):  # fewer than k labels may be ranked: the barred go last, in label order
                out[first + row] = np.argsort(values, kind="stable")[:k]
                continue
            tied_or_better = np.flatnonzero(values <= kth[row])
            out[first + row] = tied_or_better[np.argsort(values[tied_or_better], kind="stable")[:k]]
    return out


def _to_rank(scores: np.ndarray, barred, rows, cols) -> np.ndarray:
    """What :func:`top_k` sorts ascending: a copy of ``scores`` (float32 kept as it is, widening
    it would change no order and double what ranking a million labels holds; anything else as
    float64), negated so that a stable sort keeps the lower index first among equal scores; a NaN
    score as -inf, and ``barred`` labels and the excluded ``(rows, cols)`` as NaN, which sorts
    after every number (so after an allowed label however it scored)."""
    ranked = np.array(scores, dtype=np.float32 if scores.dtype == np.float32 else np.float64, copy=True)
    np.copyto(ranked, -np.inf, where=np.isnan(ranked))
    if barred is not None:
        ranked[:, barred] = np.nan
    ranked[rows, cols] = np.nan
    np.negative(ranked, out=ranked)  # in place: no second copy
    return ranked


def hits_at_k(top: np.ndarray, positives: sp.csr_matrix, k: int) -> np.ndarray:
    """Per row, how many of the first ``k`` ranked labels are positives (an id of -1, a slot a
    ranking could not fill, is never one)."""
    positives = sp.csr_matrix(positives)
    if top.shape[0] == 0:
        return np.zeros(0, np.int64)
    rows = np.repeat(np.arange(top.shape[0]), k)
    ranked = top[:, :k].ravel()
    found = np.asarray(positives[rows, np.maximum(ranked, 0)]).ravel().astype(bool) & (ranked >= 0)
    return found.reshape(-1, k).sum(axis=1)


def row_values(top: np.ndarray, positives: sp.csr_matrix, metric: str) -> np.ndarray:
    """``precision@k`` (|top-k ∩ positives| / k) or ``recall@k`` (... / |positives|) of each row
    with a positive, in row order (rows without one are left out, as from every mean)."""
    name, k = metric.split("@")
    k = int(k)
    counts = np.diff(sp.csr_matrix(positives).indptr)
    has = counts > 0
    hits = hits_at_k(top, positives, k)[has]
    if name == "precision":
        return hits / k
    if name == "recall":
        return hits / counts[has]
    raise ValueError(f"metric must be precision@k or recall@k, got {metric!r}")


def precision_at_k(top: np.ndarray, positives: sp.csr_matrix, k: int) -> float:
    """Mean over rows with a positive of |top-k ∩ positives| / k.

    Example:
        Row 0 ranks labels 1 and 3 first and has 1 and 2 (1 of 2 found); row 1 ranks 2 and 0
        and has 0 (1 of 2): precision@2 is 0.5, recall@2 the mean of 1/2 and 1/1.

        >>> top, positives = np.array([[1, 3], [2, 0]]), sp.csr_matrix([[0, 1, 1, 0], [1, 0, 0, 0]])
        >>> precision_at_k(top, positives, 2), recall_at_k(top, positives, 2)
        (0.5, 0.75)
    """
    values = row_values(top, positives, f"precision@{k}")
    return float(values.mean()) if values.size else float("nan")


def recall_at_k(top: np.ndarray, positives: sp.csr_matrix, k: int) -> float:
    """Mean over rows with a positive of |top-k ∩ positives| / |positives|."""
    values = row_values(top, positives, f"recall@{k}")
    return float(values.mean()) if values.size else float("nan")


def ranking_report(top: np.ndarray, positives: sp.csr_matrix, ks=DEFAULT_KS) -> dict:
    """precision@k and recall@k for each k, plus ``n_test`` (rows scored) and ``n_excluded``
    (rows with no positive label, left out of every mean)."""
    positives = sp.csr_matrix(positives)
    counts = np.diff(positives.indptr)
    ks = [k for k in ks if k <= top.shape[1]]
    metrics = {f"precision@{k}": precision_at_k(top, positives, k) for k in ks}
    metrics.update({f"recall@{k}": recall_at_k(top, positives, k) for k in ks})
    return {"metrics": metrics, "n_test": int((counts > 0).sum()), "n_excluded": int((counts == 0).sum())}


def protocol_ks(n_labels: int, ks=DEFAULT_KS) -> tuple[int, ...]:
    """k = 1, 3, 5, and 10 only when there are at least 10 labels."""
    return tuple(k for k in ks if k != 10 or n_labels >= 10)


# Below this, two means (or a difference and its standard error) count as equal: means of the same
# rows' values, summed in another order, can differ in their last bits, which must not decide.
ROUNDING = 1e-12


def check_metric(monitor: str, n_labels: int | None = None) -> str:
    """The protocol's second metric beside ``monitor``: the protocols report P@1 with P@3 for
    annotation and P@1 with P@10 for recommendation, so k = 3 beside k = 1, else k = 1. With
    fewer than 3 labels (``n_labels``), where no ranking has a third place, it is the monitored
    metric itself. ``--affinity auto`` compares candidates on both; early stopping breaks ties
    on ``monitor`` by it."""
    name, k = monitor.split("@")
    check = 3 if int(k) == 1 else 1
    return monitor if n_labels is not None and check > n_labels else f"{name}@{check}"


SCORES_PER_BATCH = 1 << 23  # scores held at once while ranking (32 MB as float32), whatever |Y|


def ranked(score_fn, X: sp.csr_matrix, n_labels: int, k: int, exclude=None, candidates=None,
           batch_size: int | None = None, with_rows: bool = False) -> np.ndarray:
    """The ``k`` best labels of each row of ``X``, ``[n, k]``, ranked with ``score_fn(X_rows) ->
    [b, |Y|]`` in batches (:func:`top_k`'s order, ``exclude`` and ``candidates``).

    ``batch_size`` rows at a time (default: as many as keep about :data:`SCORES_PER_BATCH`
    scores, at most 1024: a million labels are ranked 8 rows at a time, never all rows at once).
    With ``with_rows``, ``score_fn`` is called as ``score_fn(X_rows, row_indices)``.
    """
    X = sp.csr_matrix(X)
    if batch_size is None:
        batch_size = max(1, min(1024, SCORES_PER_BATCH // max(1, n_labels)))
    tops = []
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        args = (X[start:stop], np.arange(start, stop)) if with_rows else (X[start:stop],)
        excl = exclude[start:stop] if exclude is not None else None
        tops.append(top_k(np.asarray(score_fn(*args)), k, excl, candidates))
    return np.concatenate(tops) if tops else np.zeros((0, k), np.int64)


def evaluate_scorer(score_fn, X: sp.csr_matrix, positives, exclude=None, candidates=None,
                    ks=DEFAULT_KS, batch_size: int | None = None, with_rows: bool = False) -> dict:
    """Rank with ``score_fn(X_rows) -> [b, |Y|]`` in batches (:func:`ranked`) and report the
    metrics."""
    top = ranked(score_fn, X, positives.shape[1], max(ks), exclude, candidates, batch_size, with_rows)
    return ranking_report(top, positives, ks)
