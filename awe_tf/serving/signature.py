"""The serving graph: a ``tf.Module`` whose ``serving_default`` signature takes padded feature
ids, their raw values (as the data file has them) and ``k``, and returns the top-k ``label_ids``,
``labels`` and ``scores``. Two optional inputs leave labels out: ``exclude_ids`` (label ids padded
with -1, one row per request row or one row for all) and ``exclude_inputs`` (the request's own
items; on by default for recommendation models). Labels a recommendation model never saw in
training are never returned. The graph applies the model's input transform and ranks exactly as
:meth:`~awe_tf.models.AWEModel.top_k` and ``awe-tf evaluate`` do.

Two flavours share the signature:

* ``portable``: exact scoring with stock TensorFlow ops only (any TF Serving, TF Java, Triton).
  Linear and per-feature-pair affinities score every label and take the top k; affinities built
  from the training set find G's neighbours (or leaf) exactly, and where G is zero outside them
  (k-NN, cluster, the hard-match RBF family) score only their labels.
* ``scann``: ScaNN retrieval. For linear and per-(x, y) affinities, ScaNN over the label
  embeddings V fetches ``candidates`` labels for the query x^T U (plus as many as a row leaves
  out, so that k labels still come back) and the exact AWE score re-ranks them. For k-NN and
  latent RBF affinities, ScaNN over the embedded training inputs finds the neighbours that
  define G. Affinities whose G needs raw-input distances (RBF, hybrid) or a
  tree of their own (cluster) have no ScaNN index and are served as in ``portable``.

Inputs are validated in the graph: a bad request fails with a message naming the field, never
a silently wrong answer.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from awe_tf.data.dataset import RECOMMENDATION
from awe_tf.data.pipeline import NEGATIVE_ITEMS
from awe_tf.layers.scann_index import serving_index
from awe_tf.layers.transform import repeated_in_a_row
from awe_tf.models.retrieval import Retrieval

FLAVOURS = ("scann", "portable")
PADDING_ID = -1  # feature ids of -1 are padding (their values are ignored)


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
        if flavour == "scann":
            from awe_tf.optional import require

            require("scann", "the scann export flavour")
        self.flavour = flavour
        self.model_variables = list(model.variables)  # the Keras model itself is not saved: its variables are
        names = model.label_names or [str(i) for i in range(model.n_labels)]
        self.label_names = tf.Variable(np.array([str(n).encode("utf-8") for n in names], dtype=object), trainable=False,
                                       name="label_names")
        self.n_features, self.n_labels = model.n_features, model.n_labels
        self.interactions = model.data_task == RECOMMENDATION  # inputs are items: they may be left out
        self.unrankable = int(np.sum(model.rankable.numpy() <= 0))
        self.coding_checks = model.transform.coding_checks  # a category coded as its reader does
        self.rankable = model.rankable
        self.candidates = 0
        self.neighbours = 0
        self.indexed_rows = 0  # the rows a ScaNN index searches: V's, or G's training inputs
        index, neighbour_index = None, None
        source = model.affinity.reference_part()
        if source is not None:
            source.check_ready()
        if flavour == "scann" and source is None:
            self.candidates = int(min(candidates, model.n_labels))
            index = serving_index(model.V.table.numpy(), self.candidates, "dot_product")
            self.indexed_rows = model.n_labels
        elif flavour == "scann" and source.index_metric is not None:
            self.neighbours = source.neighbours_per_query()
            database = source.index_database()
            neighbour_index = serving_index(database, self.neighbours, source.index_metric)
            self.indexed_rows = int(database.shape[0])
        self.retrieval = Retrieval(model, index, self.candidates, neighbour_index, self.neighbours)
        no_exclusions = tf.fill([1, 1], PADDING_ID)
        own_items = tf.constant(self.interactions)

        def serve(feature_ids, feature_weights, k, exclude_ids=no_exclusions, exclude_inputs=own_items):
            return self._serve(feature_ids, feature_weights, k, exclude_ids, exclude_inputs)

        # The defaults become the SignatureDef's: a request may leave those two inputs out.
        self.serve = tf.function(serve, input_signature=[
            tf.TensorSpec([None, None], tf.int32, name="feature_ids"),
            tf.TensorSpec([None, None], tf.float32, name="feature_weights"),
            tf.TensorSpec([], tf.int32, name="k"),
            tf.TensorSpec([None, None], tf.int32, name="exclude_ids"),
            tf.TensorSpec([], tf.bool, name="exclude_inputs"),
        ], autograph=False)  # as the model's own graphs: G's hooks are graph code as written

    @property
    def max_k(self) -> int:
        return self.candidates or self.n_labels

    # --------------------------------------------------------------------------- the graph
    def _checked(self, feature_ids, feature_weights, k, exclude_ids, exclude_inputs):
        """Validate a request; return its ids and raw values with padding as id 0, value 0."""
        batch = tf.shape(feature_ids)[0]
        same_shape = tf.debugging.assert_equal(tf.shape(feature_ids), tf.shape(feature_weights),
                                               message="feature_ids and feature_weights must have the same shape")
        with tf.control_dependencies([same_shape]):  # before the checks that pair ids with weights
            values = tf.where(tf.equal(feature_ids, PADDING_ID), 0.0, feature_weights)  # padding's are ignored
        checks = [
            same_shape,
            tf.debugging.assert_greater_equal(feature_ids, PADDING_ID,
                                              message=f"feature_ids must be >= 0 (or {PADDING_ID} for padding)"),
            tf.debugging.assert_less(feature_ids, self.n_features,
                                     message=f"feature_ids must be < {self.n_features} (the model's features)"),
            tf.debugging.assert_all_finite(values, "feature_weights must be finite"),
            tf.debugging.assert_greater_equal(k, 1, message="k must be at least 1"),
            tf.debugging.assert_less_equal(k, self.max_k, message=f"k must be at most {self.max_k} for this export"),
            tf.debugging.assert_greater_equal(exclude_ids, PADDING_ID,
                                              message=f"exclude_ids must be >= 0 (or {PADDING_ID} for padding)"),
            tf.debugging.assert_less(exclude_ids, self.n_labels,
                                     message=f"exclude_ids must be < {self.n_labels} (the model's labels)"),
            tf.debugging.Assert(tf.logical_or(tf.equal(tf.shape(exclude_ids)[0], 1),
                                              tf.equal(tf.shape(exclude_ids)[0], batch)),
                                ["exclude_ids must have one row, or one row per row of feature_ids"]),
        ]
        if not self.interactions:
            checks.append(tf.debugging.Assert(tf.logical_not(exclude_inputs), [
                "exclude_inputs is for recommendation models, whose inputs are their labels"]))
        else:
            checks.append(tf.debugging.Assert(tf.reduce_all(values >= 0.0), [f"feature_weights: {NEGATIVE_ITEMS}"]))
        with tf.control_dependencies(checks):
            padding = tf.equal(feature_ids, PADDING_ID)
            ids = tf.where(padding, 0, feature_ids)
            weights = tf.where(padding, 0.0, feature_weights)
        # A feature given twice in one row would be transformed differently from the summed row.
        repeated = repeated_in_a_row(tf.where(padding, PADDING_ID, feature_ids))
        twice = "a feature id appears twice in one row of feature_ids (a row pads with -1, not 0)"
        once = tf.debugging.Assert(tf.logical_not(repeated), [twice])
        with tf.control_dependencies([once]):  # a category's column given twice is said as twice
            coded = self.coding_checks(ids, weights)
        with tf.control_dependencies([once, *coded]):
            return tf.identity(ids), tf.identity(weights)

    def _left_out(self, feature_ids, feature_weights, exclude_ids, exclude_inputs):
        """Each row's excluded label ids ``[B, E]``, sorted, padded with |Y|. An input of weight
        0 is no input, so it is not one of the row's own items (as
        :func:`~awe_tf.data.pipeline.raw_rows` drops it for the in-memory model)."""
        batch = tf.shape(feature_ids)[0]
        given = tf.cond(tf.equal(tf.shape(exclude_ids)[0], batch), lambda: exclude_ids,
                        lambda: tf.tile(exclude_ids[:1], [batch, 1]))
        parts = [given]
        if self.interactions:
            parts.append(tf.where(exclude_inputs & tf.not_equal(feature_weights, 0.0), feature_ids, PADDING_ID))
        left_out = tf.concat(parts, 1)
        return tf.sort(tf.where(left_out >= 0, left_out, self.n_labels), axis=1)

    def _serve(self, feature_ids, feature_weights, k, exclude_ids, exclude_inputs):
        ids, weights = self._checked(feature_ids, feature_weights, k, exclude_ids, exclude_inputs)
        with tf.control_dependencies([ids, weights]):  # after the checks: a bad request fails with their message
            left_out = self._left_out(feature_ids, feature_weights, exclude_ids, exclude_inputs)

        def answer():
            top, scores = self.retrieval(ids, weights, k, left_out, self.rankable)
            found = top >= 0  # fewer than k labels left to rank: the rest are -1
            labels = tf.where(found, tf.gather(self.label_names, tf.maximum(top, 0)), "")
            return {"label_ids": top, "labels": labels, "scores": scores}

        def nothing():
            return {"label_ids": tf.zeros([0, k], tf.int32), "labels": tf.zeros([0, k], tf.string),
                    "scores": tf.zeros([0, k], tf.float32)}

        # [batch, k] each, declared so in the signature (a ScaNN search's outputs have no known rank),
        # which a client that reads its shapes from the SignatureDef sizes its buffers by.
        return {name: tf.ensure_shape(value, [None, None])
                for name, value in tf.cond(tf.shape(ids)[0] > 0, answer, nothing).items()}
