"""Truncated SVD with log-odds column weighting (the paper's SVD baseline).

Each column j of the training matrix but a numeric one (weighted 1; fitted on rows as the reports
scale them, :func:`~awe_tf.evaluation.standardised`, the numeric columns are those standardised)
is weighted by the log-odds of it being absent,
w_j = max(log((n - c_j + 0.5) / (c_j + 0.5)), floor) (n rows, c_j of them non-zero), so rare
columns count more; the floor keeps columns present in over half the rows in play. The
weighted matrix Z = [X W_x, Y W_y] (for recommendation X and Y are the same item matrix, so
Z = Y W) is factorised to rank r, Z ~ A S B^T. An input is folded into that space through its
weighted features and the label block is reconstructed and un-weighted:
score(x) = (x W_x B_x) B_y^T W_y^-1, so the weighting shapes the latent space without
burying popular labels in the ranking.

The rank matters more than for a learnt embedding: B_x B_y^T is a block of B B^T, which at Z's
full column rank is the identity, whose off-diagonal blocks are 0 (x W_x B_x B_y^T = 0: for
annotation every label scores 0), and near it little more than noise (for recommendation an
item then scores mostly from itself, which ranking leaves out). So the rank is chosen among a
few (:func:`svd_ranks`: d, d/2, d/4, d/8) on the protocol's validation carve-out wherever the SVD
is reported or used (:func:`~awe_tf.evaluation.baseline_scores`, ``--affinity auto``; ``awe-tf
reproduce`` keeps the paper's, at d); one factorisation at the largest serves every smaller rank,
whose factors are its leading columns.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from awe_tf.data.dataset import RECOMMENDATION, Dataset


def log_odds_weights(M: sp.csr_matrix, floor: float = 0.5) -> np.ndarray:
    """max(log((n - c_j + 0.5) / (c_j + 0.5)), floor) per column, c_j = non-zeros of column j.

    Example:
        Four rows; column 0 in three of them (log(1.5 / 3.5) < 0: the floor), the others in one
        (log(3.5 / 1.5)).

        >>> log_odds_weights(sp.csr_matrix([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1]])).round(4).tolist()
        [0.5, 0.8473, 0.8473]
    """
    n = M.shape[0]
    counts = np.asarray((M != 0).sum(axis=0)).ravel()
    return np.maximum(np.log((n - counts + 0.5) / (counts + 0.5)), floor)


def svd_ranks(dimension: int) -> tuple[int, ...]:
    """The ranks the SVD is tried at for an embedding of ``dimension``: d, d/2, d/4 and d/8
    (rounded down, at least 1), largest first (module docstring).

    Example:
        >>> svd_ranks(100), svd_ranks(4)
        ((100, 50, 25, 12), (4, 2, 1))
    """
    return tuple(sorted({max(1, dimension // 2**halvings) for halvings in range(4)}, reverse=True))


class LogOddsSVD:
    """Rank-``rank`` SVD baseline (module docstring); :meth:`factors` and :meth:`score` also give
    it at any smaller rank."""

    name = "svd"

    def __init__(self, rank: int = 64, floor: float = 0.5, seed: int = 0):
        self.rank = rank
        self.floor = floor
        self.seed = seed

    def fit(self, train: Dataset) -> LogOddsSVD:
        self.shared = train.task == RECOMMENDATION
        Y = sp.csr_matrix(train.Y, dtype=np.float64)
        self.wy = log_odds_weights(Y, self.floor)
        if self.shared:
            self.wx = self.wy
            Z = Y @ sp.diags(self.wy)
        else:
            X = sp.csr_matrix(train.X, dtype=np.float64)
            numeric = np.asarray(train.numeric_features, bool)
            self.wx = np.where(numeric, 1.0, log_odds_weights(X, self.floor))
            Z = sp.hstack([X @ sp.diags(self.wx), Y @ sp.diags(self.wy)]).tocsr()
        rank = max(1, min(self.rank, min(Z.shape) - 1))
        _, values, vt = svds(Z, k=rank, random_state=self.seed)
        B = vt[np.argsort(-values, kind="stable")].T  # leading singular vectors first
        self.bx = B if self.shared else B[: train.n_features]
        self.by = B if self.shared else B[train.n_features :]
        return self

    def factors(self, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(P, Q)`` with score(x) = (x P) Q^T: P = W_x B_x, one row per feature, and
        Q = W_y^-1 B_y, one row per label (a linear embedding model's U and V up to scale), at
        ``rank`` (default: the fitted one; a larger one gives the fitted one, which is at most
        the data's own rank less 1)."""
        bx, by = self.bx[:, :rank], self.by[:, :rank]
        return self.wx[:, None] * bx, by / self.wy[:, None]

    def score(self, X, rank: int | None = None) -> np.ndarray:
        P, Q = self.factors(rank)
        return np.asarray(sp.csr_matrix(X, dtype=np.float64) @ P) @ Q.T
