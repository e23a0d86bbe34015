"""The shared base of affinities built from the training set: G(x, y) sums, over training
inputs x_n near x, a kernel weight K(x, x_n) times how well y matches x_n's labels.

The affinity carries what it needs to score any input on its own: the training labels, the
training inputs in the space its kernel works in (raw inputs, and/or their embedding by a frozen
U_prev from an earlier model), and that U_prev. G rows are computed outside the graph (exact
search in batches, or ScaNN for latent spaces) and fed to the model as context.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.base import Affinity, context_lookup
from awe_tf.affinities.constant import pair_queries


def _variable(name, shape, dtype=tf.float32):
    # Shapes are set by set_reference (or by a checkpoint restore), so they stay open here.
    return tf.Variable(tf.zeros(shape, dtype), trainable=False, name=name, shape=tf.TensorShape(None))


class _Matrix(tf.Module):
    """A CSR matrix kept in three variables (so it is saved with the model)."""

    def __init__(self, name):
        super().__init__(name=name)
        self.data = _variable(f"{name}_data", [0])
        self.indices = _variable(f"{name}_indices", [0], tf.int32)
        self.indptr = _variable(f"{name}_indptr", [1], tf.int64)

    def assign(self, matrix: sp.csr_matrix):
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.sort_indices()
        self.data.assign(matrix.data)
        self.indices.assign(matrix.indices.astype(np.int32))
        self.indptr.assign(matrix.indptr.astype(np.int64))

    def value(self, n_columns: int) -> sp.csr_matrix:
        indptr = self.indptr.numpy()
        return sp.csr_matrix((self.data.numpy(), self.indices.numpy(), indptr), shape=(indptr.size - 1, n_columns))


class NeighbourAffinity(Affinity):
    """G(x, y) = sum_{n in N_k(x)} K(x, x_n) L(y, y_n), over the k training inputs x_n with the
    largest kernel weight K; the score is f(x, y) = G(x, y) x^T U^T V y.

    Subclasses set the space (``input``: raw x; ``latent``: x^T U_prev; ``hybrid``: both), the
    kernel and the label match L: the hard match L = y_n[y], or the soft one
    L = exp(-lambda_y ||e_y - y_n||^2), which gives every label a share (an offset per input).

    Args:
        k: training inputs per query (the sparse approximation of the sum over all of them).
        search: ``exact`` (batched brute force) or ``scann`` (approximate, latent space only).
    """

    uses_context = True
    space = "latent"

    def __init__(self, k: int = 20, search: str = "exact", **kwargs):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if search not in ("exact", "scann"):
            raise ValueError(f"search must be 'exact' or 'scann', got {search!r}")
        if search == "scann" and self.space != "latent":
            raise ValueError("ScaNN search is for latent-space affinities")
        self.k = int(k)
        self.search = search
        self.latent = _variable("latent_U", [0, 0])  # the frozen U_prev
        self.reference = _variable("reference", [0, 0])  # training inputs embedded by U_prev
        self.inputs = _Matrix("inputs")  # raw training inputs (input and hybrid spaces)
        self.labels = _Matrix("labels")
        self.state = _variable("state", [3], tf.int64)  # n_train, |Y|, input bias (0/1)
        self._training_context = None
        self._searcher = None

    # --------------------------------------------------------------------- reference set
    @property
    def ready(self) -> bool:
        return self.state.numpy()[0] > 0

    @property
    def n_labels(self) -> int:
        return int(self.state.numpy()[1])

    @property
    def input_bias(self) -> bool:
        return bool(self.state.numpy()[2])

    def set_reference(self, latent_U: np.ndarray, train_X: sp.csr_matrix, train_Y: sp.csr_matrix,
                      input_bias: bool, label_embeddings=None) -> None:
        """Fix G: keep the (prepared) training inputs, their labels and U_prev = ``latent_U``
        (``label_embeddings``, the earlier model's V, is for affinities that rank labels by it)."""
        self.state.assign([train_Y.shape[0], train_Y.shape[1], int(bool(input_bias))])
        self.latent.assign(np.asarray(latent_U, np.float32))
        self.labels.assign(train_Y)
        if self.space in ("input", "hybrid"):
            self.inputs.assign(train_X)
        if self.space in ("latent", "hybrid"):
            self.reference.assign(self._embed(train_X))
        self._training_context = None
        self._searcher = None

    def _embed(self, X) -> np.ndarray:
        latent = self.latent.numpy()
        n_features = latent.shape[0] - self.input_bias
        Z = sp.csr_matrix(X) @ latent[:n_features]
        return np.asarray(Z + latent[n_features] if self.input_bias else Z, np.float32)

    def _check_ready(self):
        if not self.ready:
            raise RuntimeError(f"the {type(self).__name__} affinity has no reference set yet: train it with "
                               "awe_tf.training.fit_iterative (or call set_reference)")

    # ------------------------------------------------------------- kernel, search, labels
    def closeness(self, X_batch, Z_batch):
        """``[b, n_train]`` values that order training inputs by kernel weight (higher: nearer)."""
        raise NotImplementedError

    def kernel(self, closeness: np.ndarray) -> np.ndarray:
        """Kernel weights ``K`` of the chosen neighbours from their closeness values."""
        raise NotImplementedError

    def label_match(self, neighbours: np.ndarray, weights: np.ndarray, labels: sp.csr_matrix) -> sp.csr_matrix:
        """G rows ``[n, |Y| + 1]`` (the last column: an offset every label gets) from the
        neighbours and their kernel weights. Default: the hard match, no offset."""
        n, k = neighbours.shape
        W = sp.csr_matrix((weights.ravel().astype(np.float32), (np.repeat(np.arange(n), k), neighbours.ravel())),
                          shape=(n, labels.shape[0]))
        G = sp.hstack([W @ labels, sp.csr_matrix((n, 1), dtype=np.float32)], format="csr")
        G.eliminate_zeros()
        G.sort_indices()
        return G

    def _neighbours(self, X, Z, exclude_self: bool, batch_size: int = 1024):
        """The k nearest training inputs of each query (raw rows ``X`` and/or embedded ``Z``, as
        the space needs), with their closeness values; ``exclude_self``: query i is training
        input i and may not pick itself."""
        n_train = int(self.state.numpy()[0])
        n_queries = X.shape[0] if X is not None else Z.shape[0]
        k = min(self.k, n_train - exclude_self)
        if self.search == "scann":
            return self._scann_neighbours(Z, k, exclude_self)
        ids = np.empty((n_queries, k), np.int64)
        values = np.empty((n_queries, k), np.float64)
        for start in range(0, n_queries, batch_size):
            stop = min(start + batch_size, n_queries)
            close = self.closeness(None if X is None else X[start:stop], None if Z is None else Z[start:stop])
            if exclude_self:
                close[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            part = np.argpartition(-close, k - 1, axis=1)[:, :k]
            ids[start:stop] = part
            values[start:stop] = np.take_along_axis(close, part, axis=1)
        return ids, values

    def _scann_neighbours(self, Z, k, exclude_self):
        import scann

        if self._searcher is None:
            reference = self.reference.numpy()
            unit = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
            leaves = max(1, int(np.sqrt(unit.shape[0])))
            self._searcher = (
                scann.scann_ops_pybind.builder(unit, k + 1, "dot_product")
                .tree(num_leaves=leaves, num_leaves_to_search=max(1, leaves // 4),
                      training_sample_size=unit.shape[0], random_init=False)  # the same index in every process
                .score_ah(2, anisotropic_quantization_threshold=0.2)
                .reorder(max(100, 4 * k))
                .build()
            )
        queries = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
        ids, sims = self._searcher.search_batched(queries, final_num_neighbors=k + 1)
        ids, sims = np.asarray(ids, np.int64), np.asarray(sims, np.float64)
        if exclude_self:  # drop the query itself wherever it was found, else the last one
            own = ids == np.arange(ids.shape[0])[:, None]
            drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
            keep = np.ones_like(ids, bool)
            keep[np.arange(ids.shape[0]), drop] = False
            return ids[keep].reshape(-1, k), sims[keep].reshape(-1, k)
        return ids[:, :k], sims[:, :k]

    def _query_spaces(self, X):
        X = sp.csr_matrix(X)
        return (X if self.space in ("input", "hybrid") else None,
                self._embed(X) if self.space in ("latent", "hybrid") else None)

    def context(self, X):
        self._check_ready()
        ids, close = self._neighbours(*self._query_spaces(X), exclude_self=False)
        return self.label_match(ids, self.kernel(close), self.labels.value(self.n_labels))

    def training_context(self, n_rows: int):
        self._check_ready()
        n_train = int(self.state.numpy()[0])
        if n_rows != n_train:
            raise ValueError(f"the {type(self).__name__} affinity's reference set has {n_train} rows, the "
                             f"training data {n_rows}: build G from the same training data")
        if self._training_context is None:
            n_features = int(tf.shape(self.latent)[0]) - self.input_bias
            X = self.inputs.value(n_features) if self.space in ("input", "hybrid") else None
            Z = self.reference.numpy() if self.space in ("latent", "hybrid") else None
            ids, close = self._neighbours(X, Z, exclude_self=True)
            self._training_context = self.label_match(ids, self.kernel(close), self.labels.value(self.n_labels))
        return self._training_context

    # ------------------------------------------------------------------------ scoring
    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        return pair_queries(features, weights, self_position), context

    def attach(self, n_inputs: int, n_labels: int) -> None:
        self.offset_id = n_labels  # G rows carry the offset every label gets in column |Y|

    def pair_scores(self, pair_inputs, labels, label_ids):
        queries, context = pair_inputs
        G = context_lookup(context, label_ids, offset_id=self.offset_id)
        return G * tf.einsum("bmd,bmnd->bmn", queries, labels)

    has_offset = False  # whether G gives every label a share (then all labels must be scored)

    def candidate_scores(self, query, labels, context):
        """Scores ``[B, T]`` of the context's candidate labels for inputs embedded as ``query``
        (``[B, d]``): G times x^T U^T V y; 0 on padding and on the offset entry."""
        ids, values = context
        n = tf.shape(labels)[0]
        candidates = tf.gather(labels, tf.minimum(ids, n - 1))  # [B, T, d]
        return tf.where(ids < n, values * tf.einsum("bd,btd->bt", query, candidates), 0.0)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        """Scores of every label; without an offset only the candidate labels (those of the
        neighbours, ``[B, T]``) are scored and the rest are 0: ``O(B T d)``, not ``O(B |Y| d)``."""
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        ids, values = context
        batch, width = tf.shape(ids)[0], tf.shape(ids)[1]
        n = tf.shape(labels)[0]
        scores = self.candidate_scores(query, labels, context)
        rows = tf.repeat(tf.range(batch), width)
        index = tf.stack([rows, tf.reshape(tf.minimum(ids, n), [-1])], 1)
        dense = tf.scatter_nd(index, tf.reshape(scores, [-1]), tf.stack([batch, n + 1]))[:, :n]
        if self.has_offset:
            offset = tf.reduce_sum(tf.where(tf.equal(ids, n), values, 0.0), axis=1, keepdims=True)
            dense += offset * tf.matmul(query, labels, transpose_b=True)
        return dense

    def get_config(self):
        return {**super().get_config(), "k": self.k, "search": self.search}
