"""k-nearest neighbours by cosine similarity, in input space or in a learnt embedding space.

The score of label j for input x is sum over the k training examples most similar to x of
cos(x, x_n) * Y_nj. Training examples without a label are no neighbours: each would add 0 to every
label, so the ranking would be that of fewer neighbours. With ``exclude_self``, a test row never
counts the training row of the same id (recommendation: a user is not their own neighbour).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import Dataset, labelled_rows


def _unit_rows(M):
    if sp.issparse(M):
        M = sp.csr_matrix(M, dtype=np.float32)
        norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ M)
    M = np.asarray(M, dtype=np.float32)
    norms = np.linalg.norm(M, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return M / norms


class KNN:
    """Cosine k-NN over training examples.

    Args:
        k: neighbours per query.
        transform: optional ``X -> Z`` map (e.g. a model's ``embed_inputs``) applied to training
            and query rows; the identity gives k-NN in input space.
        exclude_self: drop training rows whose id equals the query's id.
        name: the name reports use.
    """

    def __init__(self, k: int = 20, transform=None, exclude_self: bool = False, name: str = "knn"):
        self.k = k
        self.transform = transform
        self.exclude_self = exclude_self
        self.name = name

    def _space(self, X):
        return _unit_rows(self.transform(X) if self.transform is not None else X)

    def fit(self, train: Dataset) -> KNN:
        labelled = labelled_rows(train.Y)  # the others vote for nothing
        train = train.rows(labelled) if labelled.size < train.n_examples else train
        self.Z = self._space(train.X)
        self.Y = sp.csr_matrix(train.Y, dtype=np.float32)
        self.ids = np.asarray(train.row_ids)
        return self

    def score(self, X, query_ids=None, batch_size: int = 1024) -> np.ndarray:
        out = []
        for start in range(0, X.shape[0], batch_size):
            Q = self._space(X[start : start + batch_size])
            sims = Q @ self.Z.T
            sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
            if self.exclude_self and query_ids is not None:
                own = np.asarray(query_ids[start : start + batch_size])[:, None] == self.ids[None, :]
                sims[own] = -np.inf
            k = min(self.k, sims.shape[1])
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            weights = np.take_along_axis(sims, nearest, axis=1)
            weights[~np.isfinite(weights)] = 0.0
            rows = np.repeat(np.arange(sims.shape[0]), k)
            W = sp.csr_matrix((weights.ravel(), (rows, nearest.ravel())), shape=sims.shape)
            out.append(np.asarray((W @ self.Y).todense()))
        return np.concatenate(out) if out else np.zeros((0, self.Y.shape[1]))
