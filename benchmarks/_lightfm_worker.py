"""LightFM side of warp_throughput.py, run in LightFM's own environment (it needs numpy,
scipy and lightfm 1.17 only). Reads the split from an .npz, prints one JSON line."""

import json
import sys
import time

import numpy as np
import scipy.sparse as sp
from lightfm import LightFM


def precision_at_10(model, train, val, candidates, threads):
    n_users, n_items = train.shape
    scores = np.empty((n_users, n_items), np.float64)
    items = np.arange(n_items, dtype=np.int32)
    for user in range(n_users):
        scores[user] = model.predict(user, items, num_threads=threads)
    allowed = np.zeros(n_items, bool)
    allowed[candidates] = True
    scores[:, ~allowed] = -np.inf
    rows, cols = train.nonzero()
    scores[rows, cols] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    has = np.diff(val.indptr) > 0
    hits = np.asarray(val[np.repeat(np.arange(n_users), 10), top.ravel()]).reshape(-1, 10).sum(axis=1)
    return float((hits[has] / 10).mean())


def main():
    path = sys.argv[1]
    epochs, threads, target, seed = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    data = np.load(path)
    shape = tuple(data["shape"])
    train = sp.csr_matrix((data["train_data"], data["train_indices"], data["train_indptr"]), shape=shape)
    val = sp.csr_matrix((data["val_data"], data["val_indices"], data["val_indptr"]), shape=shape)
    model = LightFM(no_components=64, loss="warp", learning_rate=0.05, max_sampled=10, random_state=seed)
    coo = train.tocoo()
    seconds, reached, history = 0.0, None, []
    for _epoch in range(epochs):
        began = time.perf_counter()
        model.fit_partial(coo, epochs=1, num_threads=threads)
        seconds += time.perf_counter() - began
        p10 = precision_at_10(model, train, val, data["candidates"], threads)
        history.append(p10)
        if reached is None and p10 >= target:
            reached = seconds
    print(json.dumps({"pairs_per_second": train.nnz * epochs / seconds, "train_seconds": seconds,
                      "seconds_to_target": reached, "history": history}))


if __name__ == "__main__":
    main()
