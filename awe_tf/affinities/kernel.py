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

import tensorflow as tf

from awe_tf.affinities.base import register
from awe_tf.affinities.neighbours import NeighbourAffinity, raw_inputs_tensor

KERNEL_SPACE = {"k": ("int", 5, 50), "gamma": ("float", 0.05, 5.0, "log"), "label_gamma": ("float", 0.1, 5.0, "log")}


def _neg_sq_distances(Q, R, candidates=None):
    """-||q - r||^2 for every query row and reference row (or, with ``candidates`` ``[b, c]``,
    for each query and its candidate rows)."""
    if candidates is not None:
        return -tf.reduce_sum(tf.square(Q[:, None, :] - tf.gather(R, candidates)), axis=-1)
    squares_q = tf.reduce_sum(Q * Q, axis=1)
    squares_r = tf.reduce_sum(R * R, axis=1)
    return -(squares_q[:, None] + squares_r[None, :] - 2 * tf.matmul(Q, R, transpose_b=True))


def _input_neg_sq_distances(affinity, raw):
    """-||x - x_n||^2 between padded raw inputs ``(ids, weights)`` and every stored training input."""
    ids, weights = raw
    n_train = affinity.state[0]
    n_features = tf.cast(tf.shape(affinity.latent)[0], tf.int64) - affinity.state[2]
    X = raw_inputs_tensor(affinity.inputs, n_train, n_features)
    batch = tf.shape(ids, out_type=tf.int64)[0]
    index = tf.stack([tf.repeat(tf.range(batch), tf.shape(ids, out_type=tf.int64)[1]),
                      tf.cast(tf.reshape(ids, [-1]), tf.int64)], 1)
    Q = tf.scatter_nd(index, tf.reshape(weights, [-1]), tf.stack([batch, n_features]))  # dense [b, |X|]
    cross = tf.transpose(tf.sparse.sparse_dense_matmul(X, Q, adjoint_b=True))  # [b, n_train]
    squares_x = tf.math.unsorted_segment_sum(tf.square(X.values), X.indices[:, 0], n_train)
    return -(tf.reduce_sum(Q * Q, axis=1)[:, None] + squares_x[None, :] - 2 * cross)


@register("rbf", space=KERNEL_SPACE, short="k")
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

    def closeness(self, raw, Z, candidates=None):
        return self.gamma * _input_neg_sq_distances(self, raw)

    def kernel(self, closeness):
        return tf.exp(closeness)

    def label_match(self, neighbours, weights):
        if self.label_gamma is None:
            return super().label_match(neighbours, weights)
        # ||e_y - y_n||^2 = |y_n| + 1 - 2 y_n[y]: an offset for every label, plus more for y in y_n.
        sizes = tf.cast(tf.gather(self.labels.indptr[1:] - self.labels.indptr[:-1], neighbours), tf.float32)
        far = weights * tf.exp(-self.label_gamma * (sizes + 1))
        near = weights * tf.exp(-self.label_gamma * (sizes - 1)) - far
        return self._accumulate(neighbours, near, offsets=tf.reduce_sum(far, axis=1))

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "label_gamma": self.label_gamma}


@register("latent-rbf", space=KERNEL_SPACE, short="k")
class LatentRBF(RBF):
    """Gaussian kernel in the latent space of an earlier model (eq. 8): ||x^T U_prev - x_n^T U_prev||."""

    space = "latent"
    index_metric = "squared_l2"

    def closeness(self, raw, Z, candidates=None):
        return self.gamma * _neg_sq_distances(Z, self.reference, candidates)


@register("hybrid-rbf", space={**KERNEL_SPACE, "latent_gamma": ("float", 0.05, 5.0, "log")}, short="k")
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

    def closeness(self, raw, Z, candidates=None):
        return super().closeness(raw, None) + self.latent_gamma * _neg_sq_distances(Z, self.reference)

    def get_config(self):
        return {**super().get_config(), "latent_gamma": self.latent_gamma}
