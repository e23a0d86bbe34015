"""k-nearest-neighbour affinity (paper, eq. 9), built from a previous model's embedding."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from awe_tf.affinities.base import register
from awe_tf.affinities.neighbours import NeighbourAffinity


def _unit(M):
    return M / np.maximum(np.linalg.norm(M, axis=1, keepdims=True), 1e-12)


def _unit_tf(M):
    return M / tf.maximum(tf.norm(M, axis=-1, keepdims=True), 1e-12)


@register("knn", space={"k": ("int", 5, 50)}, short="k")
class KNN(NeighbourAffinity):
    """G(x, y) = (1/k) sum_{x' in N_k(x)} y'_y: the share of x's k nearest training inputs (of
    those with a label) that carry label y, neighbours found by cosine similarity in the latent
    space of an earlier model (x -> x^T U_prev). The score is f(x, y) = G(x, y) x^T U^T V y.

    This is the G of the paper's iterative scheme: train a linear model, embed the training set
    with its U, fix G, retrain U and V (:func:`awe_tf.training.fit_iterative`).

    Cost: finding neighbours is ``O(n_train d)`` per input with exact search (batched, outside
    the graph; ``search="scann"`` makes it sublinear); training pairs then cost as the linear
    model plus a ``log T`` lookup per score (T = distinct labels among the neighbours, at most
    k |Y_x'|); scoring all labels adds one ``[B, |Y|]`` scatter.

    Args:
        k: neighbours per input.
        search: ``exact`` or ``scann`` (approximate k-NN).
    """

    space = "latent"
    index_metric = "dot_product"  # on unit vectors: the cosine order

    def closeness(self, raw, Z, candidates=None):
        queries, reference = _unit_tf(Z), _unit_tf(self.reference)
        if candidates is None:
            return tf.matmul(queries, reference, transpose_b=True)
        return tf.einsum("bd,bcd->bc", queries, tf.gather(reference, candidates))

    def kernel(self, closeness):
        return tf.ones_like(closeness) / tf.cast(tf.shape(closeness)[1], closeness.dtype)

    def index_database(self):
        return _unit(self.reference.numpy())

    def index_queries(self, Z):
        return _unit_tf(Z)
