"""The serving graph: a ``tf.Module`` whose ``serving_default`` signature takes padded feature
ids, their values and ``k``, and returns the top-k ``label_ids``, ``labels`` and ``scores``.

Two flavours share the signature:

* ``portable``: exact scoring with stock TensorFlow ops only (any TF Serving, TF Java, Triton).
  Linear and per-feature-pair affinities score every label and take the top k; neighbour and
  cluster affinities find G's neighbours (or leaf) exactly and score only their labels.
* ``scann``: ScaNN retrieval. For linear and per-(x, y) affinities, ScaNN over the label
  embeddings V fetches ``candidates`` labels for the query x^T U and the exact AWE score re-ranks
  them. For k-NN and latent RBF affinities, ScaNN over the embedded training inputs finds the
  neighbours that define G. Affinities whose G needs raw-input distances (RBF, hybrid) or a
  tree of their own (cluster) have no ScaNN index and are served as in ``portable``.

Inputs are validated in the graph: a bad request fails with a message naming the field, never
a silently wrong answer.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from awe_tf.affinities import neighbour_part

FLAVOURS = ("scann", "portable")
PADDING_ID = -1  # feature ids of -1 are padding (their values are ignored)
BRUTE_FORCE_ROWS = 20_000  # ScaNN indexes this small are searched exactly (and still fast)


def build_scann_index(database: np.ndarray, neighbours: int, metric: str):
    """A ScaNN TF searcher over ``database`` (brute force when small, else a tree with
    anisotropic hashing and exact re-ordering), serialised as a ``tf.Module``."""
    from scann.scann_ops.py import scann_ops

    database = np.ascontiguousarray(database, np.float32)
    n = database.shape[0]
    builder = scann_ops.builder(database, neighbours, metric)
    if n <= BRUTE_FORCE_ROWS:
        builder = builder.score_brute_force()
    else:
        leaves = int(min(2000, max(16, np.sqrt(n))))
        builder = (builder.tree(num_leaves=leaves, num_leaves_to_search=max(8, leaves // 8),
                                training_sample_size=min(n, 250_000), random_init=False)
                   .score_ah(2, anisotropic_quantization_threshold=0.2)
                   .reorder(max(4 * neighbours, 100)))
    return builder.build().serialize_to_module()


def _search(index, queries, neighbours: int):
    from scann.scann_ops.py import scann_ops

    ids, _ = scann_ops.searcher_from_module(index).search_batched(queries, final_num_neighbors=neighbours)
    return ids


class _Unsaved:
    """Holds the Keras model out of sight of SavedModel tracking (plain Python attribute)."""

    def __init__(self, model):
        self.model = model


class ServingModule(tf.Module):
    """The exported object: the model's variables, optional ScaNN indexes and ``serve``.

    Args:
        model: a trained :class:`~awe_tf.models.AWEModel`.
        flavour: ``scann`` or ``portable`` (module docstring).
        candidates: labels ScaNN fetches per query before exact re-ranking (linear and per-pair
            affinities); the largest k a request may ask for.
    """

    def __init__(self, model, flavour: str = "scann", candidates: int = 100):
        super().__init__(name="awe_serving")
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
        self.flavour = flavour
        self._unsaved = _Unsaved(model)  # not saved as a Keras object: its variables are, below
        self.model_variables = list(model.variables)
        names = model.label_names or [str(i) for i in range(model.n_labels)]
        self.label_names = tf.Variable(np.array([str(n).encode("utf-8") for n in names], dtype=object), trainable=False,
                                       name="label_names")
        self.n_features, self.n_labels = model.n_features, model.n_labels
        self.candidates = 0
        self.neighbours = 0
        self.label_index = None
        self.neighbour_index = None
        source = neighbour_part(model.affinity)
        if flavour == "scann" and source is None:
            self.candidates = int(min(candidates, model.n_labels))
            self.label_index = build_scann_index(model.V.table.numpy(), self.candidates, "dot_product")
        elif flavour == "scann" and getattr(source, "scann_metric", None):
            source._check_ready()
            self.neighbours = int(min(source.k, int(source.state.numpy()[0])))
            self.neighbour_index = build_scann_index(source.scann_database(), self.neighbours, source.scann_metric)
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="feature_ids"),
            tf.TensorSpec([None, None], tf.float32, name="feature_weights"),
            tf.TensorSpec([], tf.int32, name="k"),
        ])

    @property
    def max_k(self) -> int:
        return self.candidates or self.n_labels

    # --------------------------------------------------------------------------- the graph
    def _checked(self, feature_ids, feature_weights, k):
        """Validate a request; return ids (padding mapped to 0) and prepared (normalised) values."""
        model = self._unsaved.model
        checks = [
            tf.debugging.assert_equal(tf.shape(feature_ids), tf.shape(feature_weights),
                                      message="feature_ids and feature_weights must have the same shape"),
            tf.debugging.assert_greater_equal(feature_ids, PADDING_ID,
                                              message=f"feature_ids must be >= 0 (or {PADDING_ID} for padding)"),
            tf.debugging.assert_less(feature_ids, self.n_features,
                                     message=f"feature_ids must be < {self.n_features} (the model's features)"),
            tf.debugging.assert_all_finite(feature_weights, "feature_weights must be finite"),
            tf.debugging.assert_greater_equal(k, 1, message="k must be at least 1"),
            tf.debugging.assert_less_equal(k, self.max_k, message=f"k must be at most {self.max_k} for this export"),
        ]
        with tf.control_dependencies(checks):
            padding = tf.equal(feature_ids, PADDING_ID)
            ids = tf.where(padding, 0, feature_ids)
            weights = tf.where(padding, 0.0, feature_weights)
        # A feature given twice in one row would be normalised differently from the summed row.
        ordered = tf.sort(tf.where(padding, -1 - tf.range(tf.shape(ids)[1])[None, :], feature_ids), axis=1)
        repeated = tf.reduce_any(tf.equal(ordered[:, 1:], ordered[:, :-1]) & (ordered[:, 1:] >= 0))
        with tf.control_dependencies([tf.debugging.Assert(tf.logical_not(repeated),
                                                          ["a feature id appears twice in one row of feature_ids"])]):
            weights = tf.identity(weights)
        if model.normalisation == "l2":
            norms = tf.sqrt(tf.reduce_sum(weights * weights, axis=1, keepdims=True))
        elif model.normalisation == "l1":
            norms = tf.reduce_sum(tf.abs(weights), axis=1, keepdims=True)
        else:
            norms = tf.ones_like(weights[:, :1])
        return ids, weights / tf.where(norms > 0, norms, 1.0)

    def _serve(self, feature_ids, feature_weights, k):
        model = self._unsaved.model
        ids, weights = self._checked(feature_ids, feature_weights, k)
        inputs = {"feature_ids": ids, "feature_weights": weights}
        if self.label_index is not None:
            top, scores = self._rerank_candidates(ids, weights, k)
        else:
            source = neighbour_part(model.affinity)
            if source is not None:
                neighbours = None
                if self.neighbour_index is not None:
                    Z = source.scann_queries(source.graph_embed(ids, weights))
                    neighbours = _search(self.neighbour_index, Z, self.neighbours)
                inputs["context_ids"], inputs["context_weights"] = source.graph_context(ids, weights, neighbours)
            scores, top = tf.math.top_k(model(inputs), k)  # ties: the lower label id first
        return {"label_ids": top, "labels": tf.gather(self.label_names, top), "scores": scores}

    def _rerank_candidates(self, ids, weights, k):
        """ScaNN's candidates for x^T U, re-ranked by their exact AWE scores."""
        model = self._unsaved.model
        bias_ids, bias_weights = model._with_bias(ids, weights)
        features = model.U(bias_ids)
        query = tf.reduce_sum(features * bias_weights[..., None], axis=1)
        candidates = tf.sort(_search(self.label_index, query, self.candidates), axis=1)  # ties: lower id first
        no_drop = -tf.ones([tf.shape(ids)[0], 1], tf.int32)
        pair_inputs = model.affinity.pair_inputs(features, bias_weights, no_drop, None, bias_ids)
        scores = model.affinity.pair_scores(pair_inputs, model.V(candidates)[:, None], candidates[:, None])[:, 0]
        scores, where = tf.math.top_k(scores, k)
        return tf.gather(candidates, where, batch_dims=1), scores
