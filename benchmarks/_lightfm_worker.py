"""LightFM side of warp_throughput.py and scale.py, run in LightFM's own environment (it needs
numpy, scipy and lightfm 1.17 only). Reads the split from an .npz (optionally ``eval_users``, the
users whose P@10 is measured, and ``dimension``), prints one JSON line."""

import json
import sys
import time

import numpy as np
import scipy.sparse as sp
from _memory import peak_rss  # this file's folder is first on the path


def top10(scores):
    """The 10 best columns per row, best first, ties towards the lower index (awe-tf's ``top_k``),
    without sorting whole rows: a partition, then a sort of what it kept. A row whose 10th score
    is tied with columns the partition left out (which of the tied it keeps is arbitrary) is
    ranked again from every column at or above that score."""
    keys = -scores
    part = np.argpartition(keys, 9, axis=1)[:, :10]
    kept = np.take_along_axis(keys, part, axis=1)
    tenth = kept.max(axis=1, keepdims=True)
    for row in np.flatnonzero((keys == tenth).sum(axis=1) > (kept == tenth).sum(axis=1)):
        better = np.flatnonzero(keys[row] < tenth[row])  # fewer than 10, all kept
        part[row] = np.concatenate([better, np.flatnonzero(keys[row] == tenth[row])[:10 - better.size]])
        kept[row] = keys[row, part[row]]
    order = np.lexsort((part, kept), axis=1)
    return np.take_along_axis(part, order, axis=1)


def precision_at_10(model, train, val, candidates, threads, users=None, chunk=32):
    """Mean P@10 over ``users`` (default: every user with held-out items), scored ``chunk`` users
    at a time (never users x items at once)."""
    n_users, n_items = train.shape
    users = np.flatnonzero(np.diff(val.indptr) > 0) if users is None else np.asarray(users)
    items = np.arange(n_items, dtype=np.int32)
    allowed = np.zeros(n_items, bool)
    allowed[candidates] = True
    hits = []
    for start in range(0, users.size, chunk):
        block = users[start:start + chunk]
        scores = np.stack([model.predict(int(user), items, num_threads=threads) for user in block])
        scores[:, ~allowed] = -np.inf
        seen = train[block]
        scores[np.repeat(np.arange(block.size), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = top10(scores)
        hits.append(np.asarray(val[np.repeat(block, 10), top.ravel()]).reshape(-1, 10).sum(axis=1))
    return float((np.concatenate(hits) / 10).mean())


def main():
    from lightfm import LightFM  # here, so that the ranking above can be tested without LightFM

    path = sys.argv[1]
    epochs, threads, target, seed = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    data = np.load(path)
    shape = tuple(data["shape"])
    train = sp.csr_matrix((data["train_data"], data["train_indices"], data["train_indptr"]), shape=shape)
    val = sp.csr_matrix((data["val_data"], data["val_indices"], data["val_indptr"]), shape=shape)
    users = data["eval_users"] if "eval_users" in data.files else None
    dimension = int(data["dimension"]) if "dimension" in data.files else 64
    model = LightFM(no_components=dimension, loss="warp", learning_rate=0.05, max_sampled=10, random_state=seed)
    coo = train.tocoo()
    seconds, reached, history, epoch_seconds = 0.0, None, [], []
    for _epoch in range(epochs):
        began = time.perf_counter()
        model.fit_partial(coo, epochs=1, num_threads=threads)
        epoch_seconds.append(time.perf_counter() - began)
        seconds += epoch_seconds[-1]
        p10 = precision_at_10(model, train, val, data["candidates"], threads, users)
        history.append(p10)
        if reached is None and p10 >= target:
            reached = seconds
    print(json.dumps({"pairs_per_second": train.nnz * epochs / seconds, "train_seconds": seconds,
                      "seconds_to_target": reached, "history": history, "epoch_seconds": epoch_seconds,
                      "peak_rss_bytes": peak_rss()}))


if __name__ == "__main__":
    main()
