"""LightFM side of quality.py, run in LightFM's own environment (numpy, scipy and lightfm 1.17
only): LightFM's WARP trained the protocol's way, as ``awe-tf train`` trains WSABIE.

1. On the validation carve-out: train epoch by epoch, rank the carve-out's rows after each and
   stop after ``patience`` epochs without a better monitored precision; the best epoch is chosen,
   as awe-tf chooses its own: an epoch level with the best on the monitored precision (up to
   rounding) is better where it is higher on the protocol's other one (P@3 beside P@1, P@1
   beside P@10).
2. On the whole training part: train afresh for the chosen epochs, rank the test part's rows
   once, and write their top ``k`` labels (``[n, k]`` int64, best first) to ``argv[2]``; the
   caller computes the metrics from them with awe-tf's own code.

The .npz (``argv[1]``) holds both stages, keys prefixed ``carve_`` and ``full_``: ``train_Y``
(the training part's positives, CSR parts), ``eval_Y`` (the scored rows' positives) and, by
task, either ``train_X`` / ``eval_X`` (annotation: each row's features, transformed as awe-tf
transforms them; LightFM represents a row by their sum, with a constant feature beside them, as
WSABIE does, and ranks the scored rows as new users) or ``eval_users`` (recommendation: the
training row of each scored user, who keeps a representation of its own, LightFM's usual set-up);
optional ``eval_exclude`` (labels not to rank per scored row) and ``candidates`` (the labels that
may be ranked); and ``settings``: dimension, most epochs, patience, monitored k, k, seed,
threads. Prints one JSON line: the chosen epochs, the carve-out's precision after each epoch and
each stage's seconds (the carve-out's include its ranking after every epoch).
"""

import json
import sys
import time

import numpy as np
import scipy.sparse as sp


def _csr(data, name: str, shape=None) -> sp.csr_matrix:
    parts = (data[name + "_data"], data[name + "_indices"], data[name + "_indptr"])
    return sp.csr_matrix(parts, shape=tuple(data[name + "_shape"]) if shape is None else shape)


def _has(data, name: str) -> bool:
    return name + "_data" in data.files


def _top(scores: np.ndarray, k: int, exclude, candidates) -> np.ndarray:
    """The ``k`` best columns of each row, best first, ties towards the lower index, a NaN score
    as -inf; excluded (stored non-zero in ``exclude``) and non-candidate columns after all others,
    as awe-tf's ``top_k`` ranks them."""
    scores = scores.astype(np.float64)
    scores[np.isnan(scores)] = -np.inf
    barred = np.zeros(scores.shape, bool)
    if candidates is not None:
        allowed = np.zeros(scores.shape[1], bool)
        allowed[candidates] = True
        barred[:, ~allowed] = True
    if exclude is not None:
        exclude = sp.csr_matrix(exclude, copy=True)
        exclude.eliminate_zeros()
        rows, cols = exclude.nonzero()
        barred[rows, cols] = True
    order = np.lexsort((-scores, barred), axis=1)  # barred last, then by score, ties in column order
    return order[:, :k]  # whole rows: the protocols' sets have few labels


def _precision(top: np.ndarray, positives: sp.csr_matrix, k: int) -> float:
    """Mean over rows with a positive of |top-k ∩ positives| / k."""
    has = np.diff(positives.indptr) > 0
    hits = np.array([np.isin(top[i, :k], positives.indices[positives.indptr[i]:positives.indptr[i + 1]]).sum()
                     for i in np.flatnonzero(has)])
    return float(hits.mean() / k) if hits.size else float("nan")


ROUNDING = 1e-12  # awe-tf's: two means of the same rows that differ in their last bits are level


def _better(value, check, best, best_check) -> bool:
    """awe-tf's rule (its ValidationRanking): higher on the monitored precision, or level with the
    best on it and higher on the other."""
    return value > best + ROUNDING or (value >= best - ROUNDING and check > best_check + ROUNDING)


class Stage:
    """One stage's data: the training interactions, LightFM's user features (None: one
    representation per training user) and how to pick the scored rows' representations."""

    def __init__(self, data, prefix):
        self.train = _csr(data, prefix + "train_Y")
        self.train.data[:] = 1.0  # WARP reads every stored entry as a positive
        self.eval_Y = _csr(data, prefix + "eval_Y")
        self.exclude = _csr(data, prefix + "eval_exclude") if _has(data, prefix + "eval_exclude") else None
        self.candidates = data[prefix + "candidates"] if prefix + "candidates" in data.files else None
        n_train, n_labels = self.train.shape
        if _has(data, prefix + "train_X"):  # annotation: the scored rows are new users, after the training rows
            features = sp.vstack([_csr(data, prefix + "train_X"), _csr(data, prefix + "eval_X")]).tocsr()
            constant = sp.csr_matrix(np.ones((features.shape[0], 1), np.float32))
            self.features = sp.hstack([features, constant]).tocsr().astype(np.float32)
            self.interactions = sp.vstack([self.train, sp.csr_matrix((self.eval_Y.shape[0], n_labels))]).tocoo()
            self.rows = np.arange(n_train, n_train + self.eval_Y.shape[0])
        else:  # recommendation: the scored users are training users
            self.features = None
            self.interactions = self.train.tocoo()
            self.rows = data[prefix + "eval_users"]

    def top(self, model, k):
        _, users = model.get_user_representations(self.features)
        item_bias, items = model.get_item_representations()
        return _top(users[self.rows] @ items.T + item_bias, k, self.exclude, self.candidates)


def main():
    from lightfm import LightFM  # here: the ranking above is checked (tests/test_benchmarks.py) where LightFM is not

    data = np.load(sys.argv[1])
    dimension, most, patience, monitor_k, k, seed, threads = (int(v) for v in data["settings"])

    def model():
        return LightFM(no_components=dimension, loss="warp", learning_rate=0.05, max_sampled=10, random_state=seed)

    carve, history, checks, began = Stage(data, "carve_"), [], [], time.perf_counter()
    n_labels = carve.train.shape[1]
    check_k = 3 if monitor_k == 1 else 1  # awe-tf's check_metric
    check_k = monitor_k if check_k > n_labels else check_k
    lightfm, best = model(), 0
    for epoch in range(1, most + 1):
        lightfm.fit_partial(carve.interactions, user_features=carve.features, epochs=1, num_threads=threads)
        top = carve.top(lightfm, max(monitor_k, check_k))
        history.append(_precision(top, carve.eval_Y, monitor_k))
        checks.append(_precision(top, carve.eval_Y, check_k))
        if best == 0 or _better(history[-1], checks[-1], history[best - 1], checks[best - 1]):
            best = epoch
        elif patience and epoch - best >= patience:
            break
    carve_seconds, began = time.perf_counter() - began, time.perf_counter()
    full, lightfm = Stage(data, "full_"), model()
    lightfm.fit_partial(full.interactions, user_features=full.features, epochs=best, num_threads=threads)
    np.save(sys.argv[2], full.top(lightfm, k))
    print(json.dumps({"epochs": best, "validation": history, "seconds_validation": carve_seconds,
                      "seconds_refit": time.perf_counter() - began}))


if __name__ == "__main__":
    main()
