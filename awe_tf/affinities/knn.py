"""k-nearest-neighbour affinity (paper, eq. 9), built from a previous model's embedding."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.base import Affinity, context_lookup
from awe_tf.affinities.constant import pair_queries


def cosine_neighbours(queries: np.ndarray, reference: np.ndarray, k: int, exclude_rows=None,
                      batch_size: int = 1024) -> np.ndarray:
    """Indices ``[n, k]`` of each query's ``k`` most cosine-similar reference rows.

    ``exclude_rows[i]`` (if given) is a reference row query i may not pick (itself).
    Work is done ``batch_size`` queries at a time: memory ``O(batch_size * n_reference)``.
    """
    def unit(M):
        norms = np.linalg.norm(M, axis=1, keepdims=True)
        return M / np.maximum(norms, 1e-12)

    queries, reference = unit(np.asarray(queries, np.float32)), unit(np.asarray(reference, np.float32))
    k = min(k, reference.shape[0] - (exclude_rows is not None))
    out = np.empty((queries.shape[0], k), np.int64)
    for start in range(0, queries.shape[0], batch_size):
        sims = queries[start : start + batch_size] @ reference.T
        if exclude_rows is not None:
            rows = np.arange(sims.shape[0])
            sims[rows, np.asarray(exclude_rows[start : start + batch_size])] = -np.inf
        out[start : start + batch_size] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def neighbour_label_weights(neighbours: np.ndarray, labels: sp.csr_matrix) -> sp.csr_matrix:
    """G rows: ``(1/k) sum over the neighbours of their label rows``, as CSR ``[n, |Y|]``."""
    n, k = neighbours.shape
    W = sp.csr_matrix((np.full(n * k, 1.0 / k, np.float32), (np.repeat(np.arange(n), k), neighbours.ravel())),
                      shape=(n, labels.shape[0]))
    G = sp.csr_matrix(W @ labels, dtype=np.float32)
    G.sort_indices()
    return G


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class KNN(Affinity):
    """G(x, y) = (1/k) sum_{x' in N_k(x)} y'_y: the share of x's k nearest training inputs that
    carry label y, neighbours found by cosine similarity in the latent space of an earlier model
    (x -> x^T U_prev). The score is f(x, y) = G(x, y) x^T U^T V y.

    This is the G of the paper's iterative scheme: train a linear model, embed the training set
    with its U, fix G, retrain U and V (:func:`awe_tf.training.fit_iterative`). The affinity
    carries the frozen U_prev, the embedded training set and its labels, so a saved model scores
    new inputs on its own.

    Cost: finding neighbours is ``O(n_train d)`` per input (exact search, batched, outside the
    graph); training pairs then cost as the linear model plus a ``log T`` lookup per score
    (T = distinct labels among the neighbours, at most k |Y_x'|); scoring all labels adds one
    ``[B, |Y|]`` scatter.

    Args:
        k: neighbours per input.
    """

    uses_context = True

    def __init__(self, k: int = 20, **kwargs):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        self.k = int(k)

        def variable(name, shape, dtype=tf.float32):  # shapes are set by set_reference (or a restore)
            return tf.Variable(tf.zeros(shape, dtype), trainable=False, name=name, shape=tf.TensorShape(None))

        self.reference = variable("reference", [0, 0])  # embedded training inputs
        self.latent = variable("latent_U", [0, 0])  # the frozen U that embeds inputs
        self.label_indices = variable("label_indices", [0], tf.int32)
        self.label_indptr = variable("label_indptr", [1], tf.int64)
        self.state = variable("state", [3], tf.int64)  # n_train, |Y|, input bias (0/1)
        self._training_context = None

    @property
    def input_bias(self) -> bool:
        return bool(self.state.numpy()[2])

    @property
    def labels_shape(self):
        n, labels, _ = self.state.numpy()
        return int(n), int(labels)

    @property
    def ready(self) -> bool:
        return self.state.numpy()[0] > 0

    def set_reference(self, latent_U: np.ndarray, train_X: sp.csr_matrix, train_Y: sp.csr_matrix,
                      input_bias: bool) -> None:
        """Fix G: embed the (prepared) training inputs with ``latent_U`` and keep them, their
        labels and ``latent_U`` for finding the neighbours of any input later."""
        labels = sp.csr_matrix(train_Y, dtype=np.float32)
        labels.sort_indices()
        self.state.assign([labels.shape[0], labels.shape[1], int(bool(input_bias))])
        self.latent.assign(np.asarray(latent_U, np.float32))
        self.label_indices.assign(labels.indices.astype(np.int32))
        self.label_indptr.assign(labels.indptr.astype(np.int64))
        self.reference.assign(self._embed(train_X))
        self._training_context = None

    def _embed(self, X: sp.csr_matrix) -> np.ndarray:
        latent = self.latent.numpy()
        n_features = latent.shape[0] - self.input_bias
        Z = sp.csr_matrix(X) @ latent[:n_features]
        return np.asarray(Z + latent[n_features] if self.input_bias else Z, np.float32)

    def _labels(self) -> sp.csr_matrix:
        indices = self.label_indices.numpy()
        return sp.csr_matrix((np.ones(indices.size, np.float32), indices, self.label_indptr.numpy()),
                             shape=self.labels_shape)

    def _check_ready(self):
        if not self.ready:
            raise RuntimeError("the k-NN affinity has no reference set yet: train it with "
                               "awe_tf.training.fit_iterative (or call set_reference)")

    def context(self, X):
        self._check_ready()
        neighbours = cosine_neighbours(self._embed(X), self.reference.numpy(), self.k)
        return neighbour_label_weights(neighbours, self._labels())

    def training_context(self, n_rows: int):
        self._check_ready()
        if n_rows != self.labels_shape[0]:
            raise ValueError(f"the k-NN affinity's reference set has {self.labels_shape[0]} rows, "
                             f"the training data {n_rows}: build G from the same training data")
        if self._training_context is None:
            reference = self.reference.numpy()
            neighbours = cosine_neighbours(reference, reference, self.k, exclude_rows=np.arange(n_rows))
            self._training_context = neighbour_label_weights(neighbours, self._labels())
        return self._training_context

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        return pair_queries(features, weights, self_position), context

    def pair_scores(self, pair_inputs, labels, label_ids):
        queries, context = pair_inputs
        return context_lookup(context, label_ids) * tf.einsum("bmd,bmnd->bmn", queries, labels)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        ids, values = context
        batch, width = tf.shape(ids)[0], tf.shape(ids)[1]
        n = tf.shape(labels)[0]
        rows = tf.repeat(tf.range(batch), width)
        dense = tf.scatter_nd(tf.stack([rows, tf.reshape(ids, [-1])], 1), tf.reshape(values, [-1]),
                              tf.stack([batch, n + 1]))[:, :n]  # padding id |Y| lands in the dropped column
        return dense * tf.matmul(query, labels, transpose_b=True)

    def get_config(self):
        return {**super().get_config(), "k": self.k}
