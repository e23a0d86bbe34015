"""Reduced-rank ridge regression: each label's column of Y regressed on the inputs by least
squares, the weights then cut to rank r (low-rank least squares, as LEML; Yu et al. 2014).

With Z the inputs as rows (n x |X|) and Y the labels (n x |Y|), ridge's weights are
W = (Z^T Z + lambda I)^-1 Z^T Y, and its predictions Z W. The rank-r cut keeps the top r right
singular vectors Q of those predictions, W_r = (W Q) Q^T, so score(z) = z P Q^T with P = W Q:
a linear embedding model's U and V (Q has orthonormal columns).

W is solved in a basis of Z's right singular vectors E (Z^T Z = E diag(s^2) E^T): W = E M,
M = diag(1 / (s^2 + lambda)) E^T Z^T Y, so one basis serves every penalty lambda. Where Z has
at most ``basis`` columns, or at most :data:`EXACT_COLUMNS`, the basis is exact (an
eigendecomposition of Z^T Z: every direction of the inputs, however flat their spectrum); where
it has more, it is Z^T Z's top ``basis`` eigenvectors, found by a randomised range finder with
power iterations and a Rayleigh-Ritz step (Halko, Martinsson & Tropp 2011), and W is the ridge
solution within their span. There Z is read a block of rows at a time and nothing of size |X|^2
or rows x ``basis`` is held: beside Z and Y, memory grows with |X| x ``basis`` and
``basis`` x |Y|, time with Z's non-zeros times ``basis``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

EXACT_COLUMNS = 2048  # up to this many columns of Z the basis is exact whatever ``basis`` is
OVERSAMPLING = 20  # the range finder's extra columns beyond ``basis``
POWER_ITERATIONS = 2  # of Z^T Z, each sharpening the range's top directions
BLOCK_ROWS = 8192  # rows of Z read at a time


class ReducedRankRidge:
    """Reduced-rank ridge (module docstring): :meth:`fit` finds the basis once, :meth:`factors`
    gives ``(P, Q)`` for a penalty.

    Args:
        rank: r, the rank of the weights (at most |Y|, which leaves them uncut).
        basis: the most right singular vectors of Z the weights are solved in, where Z has more
            columns than this and than :data:`EXACT_COLUMNS`.
        seed: seed of the range finder.
    """

    def __init__(self, rank: int = 64, basis: int = 400, seed: int = 0):
        if rank < 1 or basis < 1:
            raise ValueError(f"rank and basis must be at least 1, got {rank} and {basis}")
        self.rank, self.basis, self.seed = rank, basis, seed

    def fit(self, Z, Y) -> ReducedRankRidge:
        """Find the basis and E^T Z^T Y.

        Args:
            Z: the inputs, ``[n, |X|]``, sparse or dense, as the scores will see them (a constant
                column included for an intercept).
            Y: the labels, ``[n, |Y|]``, sparse or dense.

        Returns:
            itself.
        """
        Z = sp.csr_matrix(Z, dtype=np.float64)
        Y = sp.csr_matrix(Y, dtype=np.float64)
        if Z.shape[0] != Y.shape[0]:
            raise ValueError(f"Z has {Z.shape[0]} rows and Y {Y.shape[0]}")
        self.s2, self.E = _basis(Z, self.basis, self.seed)
        EZY = np.zeros((self.E.shape[1], Y.shape[1]))  # E^T Z^T Y, [basis, |Y|]
        for start in range(0, Z.shape[0], BLOCK_ROWS):
            rows = slice(start, start + BLOCK_ROWS)
            EZY += np.asarray(Y[rows].T @ (Z[rows] @ self.E)).T
        self.EZY = EZY
        return self

    def factors(self, penalty: float) -> tuple[np.ndarray, np.ndarray]:
        """Ridge's weights at ``penalty`` (lambda, above 0), cut to rank r.

        Returns:
            ``(P, Q)``, ``[|X|, r]`` and ``[|Y|, r]`` (r at most |Y|), Q's columns orthonormal:
            score(z) = z P Q^T.
        """
        if not penalty > 0:
            raise ValueError(f"the penalty must be above 0, got {penalty!r}")
        M = self.EZY / (self.s2 + penalty)[:, None]  # W = E M
        # The predictions' Gram matrix is M^T diag(s^2) M: Q is the top left singular vectors of M^T diag(s).
        left, _, _ = np.linalg.svd(M.T * np.sqrt(self.s2), full_matrices=False)
        Q = left[:, : min(self.rank, left.shape[1])]
        return self.E @ (M @ Q), Q


def _basis(Z: sp.csr_matrix, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(s^2, E)``: Z's squared singular values and right singular vectors (Z^T Z's eigenvalues
    and eigenvectors), all of them where Z has at most ``size`` or :data:`EXACT_COLUMNS` columns,
    else the top ``size`` by a randomised range finder."""
    if Z.shape[1] <= max(size, EXACT_COLUMNS):
        s2, E = np.linalg.eigh(np.asarray((Z.T @ Z).todense()))
        return np.maximum(s2, 0.0), E
    rng = np.random.default_rng(seed)
    range_ = rng.standard_normal((Z.shape[1], size + OVERSAMPLING))
    for _ in range(POWER_ITERATIONS + 1):
        range_ = np.linalg.qr(_gram_times(Z, range_))[0]
    s2, vectors = np.linalg.eigh(range_.T @ _gram_times(Z, range_))  # Z^T Z within the range, ascending
    return np.maximum(s2[::-1][:size], 0.0), (range_ @ vectors)[:, ::-1][:, :size]


def _gram_times(Z: sp.csr_matrix, block: np.ndarray) -> np.ndarray:
    """Z^T Z times ``block``, Z read :data:`BLOCK_ROWS` rows at a time."""
    product = np.zeros_like(block)
    for start in range(0, Z.shape[0], BLOCK_ROWS):
        rows = Z[start:start + BLOCK_ROWS]
        product += rows.T @ (rows @ block)
    return product
