"""The RBF family (paper, eq. 3 and eq. 8): Gaussian kernels over training pairs.

G(x, y) = sum_n exp(-gamma ||x - x_n||^2) L(y, y_n), the sum running over the k training inputs
with the largest kernel weight (the rest add next to nothing), with the label match either soft,
L = exp(-label_gamma ||e_y - y_n||^2) (eq. 3's kernel on labels; every label gets a share), or
hard, L = y_n[y] (``label_gamma=None``: the large-label_gamma limit for single-label
neighbours, and its natural multi-label form). Variants differ in the space of the distance:

* :class:`RBF`: raw inputs x;
* :class:`LatentRBF` (eq. 8): the embedding x^T U_prev of an earlier model;
* :class:`HybridLatentRBF`: both, exp(-gamma ||x - x_n||^2 - latent_gamma ||z - z_n||^2).

Cost as :class:`~awe_tf.affinities.KNN`; exact search over all training inputs per query.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.neighbours import NeighbourAffinity


def _neg_sq_distances(Q, R) -> np.ndarray:
    """-||q - r||^2 for every query row and reference row (sparse or dense)."""
    def squares(M):
        return np.asarray(M.multiply(M).sum(axis=1)).ravel() if sp.issparse(M) else (M * M).sum(axis=1)

    cross = Q @ R.T
    cross = cross.toarray() if sp.issparse(cross) else np.asarray(cross)
    return -(squares(Q)[:, None] + squares(R)[None, :] - 2 * cross)


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class RBF(NeighbourAffinity):
    """Gaussian kernel over training pairs in input space (eq. 3); module docstring.

    Args:
        k: training inputs per query.
        gamma: the input kernel's width parameter.
        label_gamma: the label kernel's; ``None`` for the hard label match.
    """

    space = "input"

    def __init__(self, k: int = 20, gamma: float = 1.0, label_gamma: float | None = 1.0, **kwargs):
        super().__init__(k=k, **kwargs)
        label_gamma = None if label_gamma in (None, "none", "hard") else float(label_gamma)
        if gamma <= 0 or (label_gamma is not None and label_gamma <= 0):
            raise ValueError("gamma and label_gamma must be positive (label_gamma=none: the hard match)")
        self.gamma = float(gamma)
        self.label_gamma = label_gamma
        self.has_offset = label_gamma is not None

    def closeness(self, X_batch, Z_batch):
        n_features = int(tf.shape(self.latent)[0]) - self.input_bias
        return self.gamma * _neg_sq_distances(X_batch, self.inputs.value(n_features))

    def kernel(self, closeness):
        return np.exp(closeness)

    def label_match(self, neighbours, weights, labels):
        if self.label_gamma is None:
            return super().label_match(neighbours, weights, labels)
        # ||e_y - y_n||^2 = |y_n| + 1 - 2 y_n[y]: an offset for every label, plus more for y in y_n.
        sizes = np.diff(labels.indptr)[neighbours]  # [n, k]
        far = weights * np.exp(-self.label_gamma * (sizes + 1))
        near = weights * np.exp(-self.label_gamma * (sizes - 1)) - far
        G = super().label_match(neighbours, near, labels).tolil()
        G[:, labels.shape[1]] = far.sum(axis=1)[:, None]
        G = sp.csr_matrix(G, dtype=np.float32)
        G.sort_indices()
        return G

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "label_gamma": self.label_gamma}


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class LatentRBF(RBF):
    """Gaussian kernel in the latent space of an earlier model (eq. 8): ||x^T U_prev - x_n^T U_prev||."""

    space = "latent"

    def closeness(self, X_batch, Z_batch):
        return self.gamma * _neg_sq_distances(Z_batch, self.reference.numpy())


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class HybridLatentRBF(RBF):
    """The product of an input-space and a latent-space Gaussian kernel.

    Args:
        latent_gamma: the latent kernel's width parameter (``gamma`` is the input kernel's).
    """

    space = "hybrid"

    def __init__(self, k: int = 20, gamma: float = 1.0, latent_gamma: float = 1.0,
                 label_gamma: float | None = 1.0, **kwargs):
        super().__init__(k=k, gamma=gamma, label_gamma=label_gamma, **kwargs)
        if latent_gamma <= 0:
            raise ValueError("latent_gamma must be positive")
        self.latent_gamma = float(latent_gamma)

    def closeness(self, X_batch, Z_batch):
        return super().closeness(X_batch, None) + self.latent_gamma * _neg_sq_distances(Z_batch,
                                                                                         self.reference.numpy())

    def get_config(self):
        return {**super().get_config(), "latent_gamma": self.latent_gamma}
