"""Cluster affinity (paper, eq. 10): hierarchical k-means over the embedded training inputs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.neighbours import NeighbourAffinity, _variable


def kmeans(points: np.ndarray, k: int, iterations: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from a k-means++ start: ``(centroids [k, d], assignment [n])``."""
    rng = np.random.default_rng(seed)
    points = np.asarray(points, np.float64)
    k = max(1, min(k, points.shape[0]))
    centroids = [points[rng.integers(points.shape[0])]]
    closest = ((points - centroids[0]) ** 2).sum(axis=1)
    for _ in range(1, k):  # k-means++: next centre drawn in proportion to squared distance
        total = closest.sum()
        pick = rng.choice(points.shape[0], p=closest / total) if total > 0 else rng.integers(points.shape[0])
        centroids.append(points[pick])
        closest = np.minimum(closest, ((points - points[pick]) ** 2).sum(axis=1))
    centroids = np.array(centroids)
    assignment = np.zeros(points.shape[0], np.int64)
    for _ in range(iterations):
        assignment = nearest(points, centroids)
        for c in range(k):
            members = points[assignment == c]
            if len(members):
                centroids[c] = members.mean(axis=0)
    return centroids.astype(np.float32), nearest(points, centroids)


def nearest(points: np.ndarray, centroids: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) of every point, in batches."""
    out = np.empty(points.shape[0], np.int64)
    squares = (centroids * centroids).sum(axis=1)
    for start in range(0, points.shape[0], batch_size):
        block = points[start : start + batch_size]
        out[start : start + batch_size] = np.argmin(squares[None, :] - 2 * block @ centroids.T, axis=1)
    return out


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class Cluster(NeighbourAffinity):
    """G(x, y) = 1 when y is among the ``top`` most frequent labels of the training inputs in
    x's leaf, else 0: the leaves of a two-level k-means tree over the training inputs embedded
    by an earlier model (x -> x^T U_prev). The score is f(x, y) = G(x, y) x^T U^T V y.

    Inference finds x's leaf by descending the tree (``O((b1 + b2) d)``, b1 x b2 ~ ``leaves``)
    and scores only that leaf's ``top`` labels: ``O(top d)`` per input instead of ``O(|Y| d)``.

    Args:
        leaves: about how many leaves (b1 = b2 = ceil(sqrt(leaves))).
        top: labels kept per leaf.
        iterations: k-means iterations per level.
        seed: k-means seed.
    """

    space = "latent"

    def __init__(self, leaves: int = 64, top: int = 50, iterations: int = 10, seed: int = 0, **kwargs):
        super().__init__(k=1, **kwargs)
        if leaves < 1 or top < 1:
            raise ValueError("leaves and top must be positive")
        self.leaves = int(leaves)
        self.top = int(top)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.upper = _variable("upper_centroids", [0, 0])
        self.lower = _variable("lower_centroids", [0, 0])  # children of upper centroid c: rows c*b .. c*b+b-1
        self.leaf_labels = _variable("leaf_labels", [0, 0], tf.int32)  # [leaves, top], padded with |Y|

    def set_reference(self, latent_U, train_X, train_Y, input_bias) -> None:
        super().set_reference(latent_U, train_X, train_Y, input_bias)
        Z = self.reference.numpy()
        branching = int(np.ceil(np.sqrt(self.leaves)))
        upper, assignment = kmeans(Z, branching, self.iterations, self.seed)
        lower = np.zeros((upper.shape[0] * branching, Z.shape[1]), np.float32)
        leaf = np.zeros(Z.shape[0], np.int64)
        for c in range(upper.shape[0]):
            members = np.flatnonzero(assignment == c)
            centroids, sub = kmeans(Z[members], branching, self.iterations, self.seed + c + 1)
            lower[c * branching : c * branching + centroids.shape[0]] = centroids
            lower[c * branching + centroids.shape[0] : (c + 1) * branching] = np.inf  # unused slots
            leaf[members] = c * branching + sub
        Y = sp.csr_matrix(train_Y)
        n_leaves, n_labels = lower.shape[0], Y.shape[1]
        counts = sp.csr_matrix((np.ones(len(leaf)), (leaf, np.arange(len(leaf)))), shape=(n_leaves, len(leaf))) @ Y
        counts = counts.toarray()
        top = min(self.top, n_labels)
        order = np.argsort(-counts, axis=1, kind="stable")[:, :top]
        kept = np.where(np.take_along_axis(counts, order, axis=1) > 0, order, n_labels)
        self.upper.assign(upper)
        self.lower.assign(lower)
        self.leaf_labels.assign(np.sort(kept, axis=1).astype(np.int32))

    def leaf_of(self, Z: np.ndarray) -> np.ndarray:
        """The leaf of each embedded input, found by descending the tree."""
        upper, lower = self.upper.numpy(), self.lower.numpy()
        branching = lower.shape[0] // upper.shape[0]
        first = nearest(Z, upper)
        leaf = np.empty(Z.shape[0], np.int64)
        for c in np.unique(first):
            rows = np.flatnonzero(first == c)
            children = lower[c * branching : (c + 1) * branching]
            usable = np.isfinite(children).all(axis=1)
            leaf[rows] = c * branching + np.flatnonzero(usable)[nearest(Z[rows], children[usable])]
        return leaf

    def _leaf_context(self, Z: np.ndarray) -> sp.csr_matrix:
        labels = self.leaf_labels.numpy()[self.leaf_of(Z)]  # [n, top], padded with |Y|
        n_labels = self.n_labels
        rows = np.repeat(np.arange(labels.shape[0]), labels.shape[1])
        keep = labels.ravel() < n_labels
        G = sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], labels.ravel()[keep])),
                          shape=(labels.shape[0], n_labels + 1))
        G.sort_indices()
        return G

    def context(self, X):
        self._check_ready()
        return self._leaf_context(self._embed(sp.csr_matrix(X)))

    def training_context(self, n_rows: int):
        self._check_ready()
        if n_rows != int(self.state.numpy()[0]):
            raise ValueError("the cluster affinity was built from other training data")
        if self._training_context is None:
            self._training_context = self._leaf_context(self.reference.numpy())
        return self._training_context

    def get_config(self):
        config = super().get_config()
        config.pop("k")
        config.pop("search")
        return {**config, "leaves": self.leaves, "top": self.top, "iterations": self.iterations, "seed": self.seed}
