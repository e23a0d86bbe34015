"""Cluster affinity (paper, eq. 10): hierarchical k-means over the embedded training inputs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.base import register
from awe_tf.affinities.neighbours import ReferenceAffinity, stored_variable


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


@register("cluster", space={"leaves": ("choice", [16, 64, 256]), "top": ("choice", [25, 50, 100])})
class Cluster(ReferenceAffinity):
    """G(x, y) = 1 when y is among the ``top`` labels of x's leaf, else 0: the leaves of a
    two-level k-means tree over the training inputs embedded by an earlier model
    (x -> x^T U_prev). The score is f(x, y) = G(x, y) x^T U^T V y (eq. 10).

    A leaf's labels are those the earlier model scores highest at the leaf's centroid
    (``rank_by="score"``, when its label embeddings V_prev are given to :meth:`set_reference`),
    or the most frequent labels of the leaf's training inputs (``rank_by="count"``).

    Inference finds x's leaf by descending the tree (``O((b1 + b2) d)``, b1 x b2 ~ ``leaves``)
    and scores only that leaf's ``top`` labels: ``O(top d)`` per input instead of ``O(|Y| d)``
    (every other label scores 0; :class:`~awe_tf.layers.retrieval.Retrieval`).

    Args:
        leaves: about how many leaves (b1 = b2 = ceil(sqrt(leaves))).
        top: labels kept per leaf.
        rank_by: ``score`` or ``count`` (above).
        iterations: k-means iterations per level.
        seed: k-means seed.
    """

    space = "latent"

    def __init__(self, leaves: int = 64, top: int = 50, iterations: int = 10, seed: int = 0, rank_by: str = "score",
                 **kwargs):
        super().__init__(**kwargs)
        if leaves < 1 or top < 1:
            raise ValueError("leaves and top must be positive")
        if rank_by not in ("score", "count"):
            raise ValueError(f"rank_by must be 'score' or 'count', got {rank_by!r}")
        self.rank_by = rank_by
        self.leaves = int(leaves)
        self.top = int(top)
        self.iterations = int(iterations)
        self.seed = int(seed)
        self.upper = stored_variable("upper_centroids", [0, 0])
        self.lower = stored_variable("lower_centroids", [0, 0])  # children of upper centroid c: rows c*b .. c*b+b-1
        self.leaf_labels = stored_variable("leaf_labels", [0, 0], tf.int32)  # [leaves, top], padded with |Y|

    def set_reference(self, latent_U, train_X, train_Y, input_bias, label_embeddings=None) -> None:
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
        n_leaves, n_labels = lower.shape[0], self.n_labels
        Y = self.labels.value(n_labels)  # the reference rows' labels
        top = min(self.top, n_labels)
        kept = np.full((n_leaves, top), n_labels, np.int64)
        if self.rank_by == "score" and label_embeddings is not None:
            usable = np.isfinite(lower).all(axis=1)
            for start in range(0, n_leaves, 64):  # the earlier model's best labels at each centroid
                block = np.where(usable[start : start + 64, None], lower[start : start + 64], 0.0)
                scores = block @ np.asarray(label_embeddings, np.float32).T
                kept[start : start + 64] = np.argpartition(-scores, top - 1, axis=1)[:, :top]
            kept[~usable] = n_labels
        else:
            counts = sp.csr_matrix((np.ones(len(leaf)), (leaf, np.arange(len(leaf)))),
                                   shape=(n_leaves, len(leaf))) @ Y
            counts = counts.toarray()
            order = np.argsort(-counts, axis=1, kind="stable")[:, :top]
            kept = np.where(np.take_along_axis(counts, order, axis=1) > 0, order, n_labels)
        self.upper.assign(upper)
        self.lower.assign(lower)
        self.leaf_labels.assign(np.sort(kept, axis=1).astype(np.int32))

    def graph_leaf(self, Z):
        """The leaf of each embedded input ``Z`` ``[b, d]``, found by descending the tree."""
        upper, lower = self.upper, self.lower
        n_upper = tf.shape(upper)[0]
        branching = tf.shape(lower)[0] // n_upper
        first = tf.argmin(tf.reduce_sum(upper * upper, 1)[None, :] - 2 * tf.matmul(Z, upper, transpose_b=True),
                          axis=1, output_type=tf.int32)
        children = tf.gather(tf.reshape(lower, [n_upper, branching, -1]), first)  # [b, branching, d]
        usable = tf.reduce_all(tf.math.is_finite(children), axis=-1)
        children = tf.where(usable[..., None], children, 0.0)
        distance = tf.reduce_sum(children * children, -1) - 2 * tf.einsum("bd,bcd->bc", Z, children)
        second = tf.argmin(tf.where(usable, distance, np.inf), axis=1, output_type=tf.int32)
        return first * branching + second

    def rows_of(self, raw, Z, exclude=None, neighbours=None):
        """G rows: weight 1 on each of the input's leaf labels (ids sorted, padded with |Y|)."""
        ids = tf.gather(self.leaf_labels, self.graph_leaf(Z))
        n_labels = tf.cast(self.state[1], tf.int32)
        ids = tf.pad(ids, [[0, 0], [0, 1]], constant_values=n_labels)
        return ids, tf.cast(ids < n_labels, tf.float32)

    def get_config(self):
        return {**super().get_config(), "leaves": self.leaves, "top": self.top, "iterations": self.iterations,
                "seed": self.seed, "rank_by": self.rank_by}
