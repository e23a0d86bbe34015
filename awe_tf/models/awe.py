"""AWEModel: embedding towers U and V, an affinity G, and the WARP task, as one ``tfrs.Model``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
import tensorflow_recommenders as tfrs

from awe_tf import affinities
from awe_tf.data.dataset import ANNOTATION, RECOMMENDATION
from awe_tf.data.pipeline import context_batch, feature_batch
from awe_tf.layers import MaxNormEmbedding
from awe_tf.layers.towers import WHOLE_TABLE_ROWS, embed_rows
from awe_tf.layers.transform import InputTransform
from awe_tf.tasks import WarpTask

LOSSES = ("warp", "warp-all")
CONFIG_FILE = "awe_model.json"
FORMAT = 2  # awe_model.json's format: 2 keeps the input transform and the task
WEIGHTS_PREFIX = "weights/ckpt"
SCORE_BUDGET = 1 << 24  # scores (times the affinity's cost per score) in one scoring batch


def _densify_if_small(gradient, variable):
    """Sum a sparse gradient into a dense one for small tables: a batch touches each row of a
    small table many times, and one dense update beats de-duplicating the sparse one."""
    if isinstance(gradient, tf.IndexedSlices) and variable.shape[0] <= WHOLE_TABLE_ROWS:
        return tf.math.unsorted_segment_sum(gradient.values, gradient.indices, variable.shape[0])
    return gradient


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class AWEModel(tfrs.Model):
    """f(x, y) = sum_ij G_ij(x, y) x_i U_i^T V_j y_j, trained with WARP.

    With the default constant affinity this is WSABIE, f(x, y) = x^T U^T V y.

    Args:
        n_features: |X|, the number of input features (rows of U).
        n_labels: |Y|, the number of labels (rows of V).
        dimension: the embedding dimension d.
        affinity: G: an :class:`~awe_tf.affinities.Affinity`, its config dict, or a name.
        margin: the WARP margin gamma.
        num_negatives: K, labels sampled per example per step.
        loss: ``"warp"`` (first violator) or ``"warp-all"`` (all violators).
        normalisation: how input rows are scaled before embedding: ``l2``, ``l1`` or ``none``
            (the last step of the model's :class:`~awe_tf.layers.transform.InputTransform`).
        max_norm: the radius C of the ball rows of U and V are kept in. Scores scale with C^2, so
            (C, gamma) is the same model as the paper's (1, gamma / C^2).
        seed: seed of the initialisers and of negative sampling.
        label_names: optional names of the labels, kept with the saved model.
        input_bias: add an always-on input feature (an extra row of U with x = 1), so that
            U_bias . V_y acts as a learnt per-label bias (LightFM's item bias).
        tpu_embedding: keep U and V in ``tfrs.layers.embedding.TPUEmbedding`` layers: on a TPU
            they live in its embedding memory (see :class:`~awe_tf.layers.MaxNormEmbedding`);
            elsewhere the model trains exactly as without.
        embedding_optimizer: the ``tf.tpu.experimental.embedding`` optimizer of U and V on a TPU.
        data_task: ``annotation``, or ``recommendation`` when inputs and labels are the same items (a
            user's items in, items out): then :meth:`top_k` and the exported graphs leave out
            the request's own items and the items never seen in training, as evaluation does.
        input_transform: the fitted statistics of the input transform (``numeric``, ``mean``,
            ``std``), as :meth:`adapt` sets them; every scorer applies the transform to raw rows.
    """

    def __init__(self, n_features: int, n_labels: int, dimension: int = 64, affinity=None,
                 margin: float = 1.0, num_negatives: int = 64, loss: str = "warp",
                 normalisation: str = "l2", max_norm: float = 1.0, seed: int = 0,
                 label_names=None, input_bias: bool = True, tpu_embedding: bool = False,
                 embedding_optimizer=None, data_task: str = ANNOTATION, input_transform: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if data_task not in (ANNOTATION, RECOMMENDATION):
            raise ValueError(f"data_task must be {ANNOTATION!r} or {RECOMMENDATION!r}, got {data_task!r}")
        if data_task == RECOMMENDATION and n_features != n_labels:
            raise ValueError(f"a recommendation model has its items as inputs and labels: {n_features} features "
                             f"but {n_labels} labels")
        if n_features < 1 or n_labels < 2:
            raise ValueError(f"need at least 1 feature and 2 labels, got {n_features} and {n_labels}")
        if dimension < 1 or num_negatives < 1:
            raise ValueError("dimension and num_negatives must be positive")
        self.n_features = int(n_features)
        self.n_labels = int(n_labels)
        self.dimension = int(dimension)
        self.margin = float(margin)
        self.num_negatives = int(num_negatives)
        self.loss_name = loss
        self.normalisation = normalisation
        self.max_norm = float(max_norm)
        self.seed = int(seed)
        self.label_names = list(label_names) if label_names is not None else None
        self.input_bias = bool(input_bias)
        self.tpu_embedding = bool(tpu_embedding)
        self.data_task = data_task
        self.transform = InputTransform(n_features, normalisation, **(input_transform or {}), name="transform")
        # 1 for the labels a ranking may return (recommendation: the items seen in training)
        self.rankable = self.add_weight(name="rankable", shape=(n_labels,), initializer="ones", trainable=False)
        tables = {"tpu_embedding": self.tpu_embedding, "embedding_optimizer": embedding_optimizer}
        self.U = MaxNormEmbedding(n_features + self.input_bias, dimension, max_norm, seed=seed, name="U", **tables)
        self.V = MaxNormEmbedding(n_labels, dimension, max_norm, seed=seed + 1, name="V", **tables)
        self.affinity = affinities.get(affinity)
        self.affinity.attach(n_features + self.input_bias, n_labels, self.input_bias)
        self.task = WarpTask(margin=margin, all_violators=(loss == "warp-all"), name="warp")
        self.U.build(None)
        self.V.build(None)

    def adapt(self, data) -> None:
        """Fit what the model learns from its training data besides U, V and G: the input
        transform's statistics and, for recommendation, which items may be ranked (those with a
        training interaction). :func:`~awe_tf.training.fit` calls it on a model not yet adapted."""
        if (data.n_features, data.n_labels) != (self.n_features, self.n_labels):
            raise ValueError(f"{data.name} has {data.n_features} features / {data.n_labels} labels; the model was "
                             f"built for {self.n_features} / {self.n_labels}")
        self.transform.adapt(data.X, data.numeric_features, data.numeric_scale)
        if self.data_task == RECOMMENDATION:
            self.rankable.assign((np.asarray(data.Y.sum(axis=0)).ravel() > 0).astype(np.float32))

    # ----------------------------------------------------------------------------- training
    def sample_negatives(self, label_ids, step):
        """K labels per positive pair, ``[B, M, K]``, drawn uniformly with a stateless RNG keyed
        on (seed, replica, step), and whether each draw is valid (not a positive of the example).
        """
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        seed = tf.stack([tf.cast(self.seed * 1000 + replica, tf.int64), tf.cast(step, tf.int64)])
        shape = tf.shape(label_ids)
        ids = tf.random.stateless_uniform(
            [shape[0], shape[1] * self.num_negatives], seed=seed, minval=0, maxval=self.n_labels,
            dtype=tf.int32, alg="philox",  # one algorithm everywhere: XLA's default differs from the CPU's
        )
        # label_ids is sorted and padded with |Y|: a membership test without a [B, |Y|] mask.
        where = tf.searchsorted(label_ids, ids, side="left")
        hit = tf.gather(label_ids, tf.minimum(where, shape[1] - 1), batch_dims=1)
        valid = tf.not_equal(hit, ids)
        out_shape = [shape[0], shape[1], self.num_negatives]
        return tf.reshape(ids, out_shape), tf.reshape(valid, out_shape)

    def with_bias(self, feature_ids, weights):
        """Append the always-on bias feature (id |X|, weight 1) when the model has one."""
        if not self.input_bias:
            return feature_ids, weights
        batch = tf.shape(feature_ids)[0]
        bias_id = tf.fill([batch, 1], tf.constant(self.n_features, feature_ids.dtype))
        return tf.concat([feature_ids, bias_id], 1), tf.concat([weights, tf.ones([batch, 1], weights.dtype)], 1)

    def _context(self, inputs):
        if not self.affinity.uses_context:
            return None
        return inputs["context_ids"], inputs["context_weights"]

    def _forward(self, inputs, step, training=False):
        label_ids = inputs["label_ids"]
        pair_mask = label_ids < self.n_labels
        negative_ids, negative_valid = self.sample_negatives(label_ids, step)
        feature_ids, weights = self.with_bias(inputs["feature_ids"], inputs["feature_weights"])
        pair_inputs = self.affinity.pair_inputs(self.U(feature_ids), weights, inputs["self_position"],
                                                self._context(inputs), feature_ids)
        positive_ids = tf.minimum(label_ids, self.n_labels - 1)[..., None]  # [B, M, 1]
        n_positives = tf.reduce_sum(tf.cast(pair_mask, tf.int32), axis=1)
        candidates = tf.concat([positive_ids, negative_ids], -1)
        table = self.V.whole_table  # read only by affinities that score through all labels
        if self.task.all_violators:
            scores = self.affinity.pair_scores_by_id(pair_inputs, candidates, self.V, table)
            loss = self.task(scores[..., 0], scores[..., 1:], negative_valid, pair_mask, self.n_labels,
                             n_positives, training=training)
            return loss, negative_ids
        # Sequential WARP: find each pair's first violator without gradient, then score only the
        # positive and that label with gradient (backward cost O(B M d) instead of O(B M K d)).
        scores = self.affinity.pair_scores_by_id(
            tf.nest.map_structure(lambda t: None if t is None else tf.stop_gradient(t), pair_inputs), candidates,
            lambda ids: tf.stop_gradient(self.V(ids)), lambda: self.V.whole_table(stop_gradient=True),
        )
        positive, negative = scores[..., 0], scores[..., 1:]
        first, rank, violated = self.task.select(positive, negative, negative_valid, pair_mask,
                                                 self.n_labels, n_positives)
        chosen = tf.gather(negative_ids, first[..., None], batch_dims=2)  # [B, M, 1]
        scored = tf.concat([positive_ids, chosen], -1)
        scores = self.affinity.pair_scores_by_id(pair_inputs, scored, self.V, table)
        loss = self.task(scores[..., 0], negative, negative_valid, pair_mask, self.n_labels, n_positives,
                         violator=(first, rank, violated, scores[..., 1]), training=training)
        return loss, chosen

    def compile(self, optimizer="rmsprop", **kwargs):
        """Keras' ``compile``, then the optimiser's slot variables are made at once. Made lazily by
        the first step instead, they would make ``tf.function`` trace the training step twice
        (once creating variables, once more without): a second of the first epoch on a CPU."""
        super().compile(optimizer=optimizer, **kwargs)
        if hasattr(self.optimizer, "build"):
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, inputs, training: bool = False):
        step = self.optimizer.iterations if self.optimizer is not None else 0
        return self._forward(inputs, step, training)[0]

    def train_step(self, inputs):
        if getattr(self, "native_engine", None) is not None:  # TrainConfig(engine="native"): awe_tf.native
            return self.native_engine.train_step(inputs)
        with tf.GradientTape() as tape:
            loss, negative_ids = self._forward(inputs, self.optimizer.iterations, training=True)
            total = loss + tf.add_n(self.losses) if self.losses else loss
            # Gradients are summed over replicas; the loss is a sum over pairs already.
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        gradients = [_densify_if_small(g, v) for g, v in zip(tape.gradient(scaled, variables), variables, strict=False)]
        self.optimizer.apply_gradients(zip(gradients, variables, strict=False))
        self.U.project(self.with_bias(inputs["feature_ids"], inputs["feature_weights"])[0])
        self.V.project(tf.concat([tf.reshape(inputs["label_ids"], [-1]), tf.reshape(negative_ids, [-1])], 0))
        return self.get_metrics_result()

    def get_metrics_result(self):
        """The logs of a training step; Keras reads them from here after asynchronous
        (parameter-server) steps."""
        logs = {m.name: m.result() for m in self.metrics if m is not self.task.loss_tracker}
        logs["loss"] = self.task.loss_tracker.result()  # mean WARP loss per pair this epoch
        return logs

    # ------------------------------------------------------------------------------ scoring
    def call(self, inputs):
        """Scores ``[B, |Y|]`` of padded *transformed* inputs ``{"feature_ids", "feature_weights"}``
        (plus the affinity's ``context_ids`` / ``context_weights``); see :meth:`model_inputs`."""
        feature_ids, weights = self.with_bias(inputs["feature_ids"], inputs["feature_weights"])
        return self.affinity.score_all(self.U(feature_ids), weights, self.V.table, self._context(inputs),
                                       feature_ids)

    def model_inputs(self, feature_ids, feature_weights, neighbours=None) -> dict:
        """What :meth:`call` takes, from padded raw rows (``[B, L]`` ids and values; padding:
        value 0): the input transform, then G's context where the affinity is built from the
        training set (its neighbours searched exactly, or ``neighbours`` ``[B, c]`` found by an
        index). TensorFlow ops only: :meth:`score` and the exported serving graphs run this code."""
        ids, weights = self.transform(feature_ids, feature_weights)
        inputs = {"feature_ids": ids, "feature_weights": weights}
        source = affinities.neighbour_part(self.affinity)
        if source is not None:
            inputs["context_ids"], inputs["context_weights"] = source.graph_context(ids, weights, neighbours)
        return inputs

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)])
    def _score_rows(self, feature_ids, feature_weights):
        return self(self.model_inputs(feature_ids, feature_weights))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([None, None], tf.int32)])
    def _score_rows_near(self, feature_ids, feature_weights, neighbours):
        return self(self.model_inputs(feature_ids, feature_weights, neighbours))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)])
    def _latent_rows(self, feature_ids, feature_weights):
        ids, weights = self.transform(feature_ids, feature_weights)
        return affinities.neighbour_part(self.affinity).graph_embed(ids, weights)

    def check_rows(self, X) -> sp.csr_matrix:
        """Raw input rows as a float32 CSR matrix, checked against |X| and for values that are
        not finite (or too large for float32)."""
        with np.errstate(over="ignore"):
            X = sp.csr_matrix(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"inputs have {X.shape[1]} features; the model was built for {self.n_features}")
        if X.nnz and not np.all(np.isfinite(X.data)):
            raise ValueError("inputs contain NaN or infinite values (or values beyond float32's range, 3.4e38)")
        X.sum_duplicates()
        return X

    def prepare(self, X) -> sp.csr_matrix:
        """Raw input rows, checked and transformed as in training (the model's
        :class:`~awe_tf.layers.transform.InputTransform`)."""
        return self.transform.apply(self.check_rows(X))

    def _widths(self, X: sp.csr_matrix) -> np.ndarray:
        """The most features each raw row has once transformed (its numeric block and bias included)."""
        numeric = 0 if self.transform.numeric is None else self.transform.numeric.size
        return np.diff(X.indptr) + numeric + self.input_bias

    def _rows_fitting(self, width: int) -> int:
        """Rows scored at once: a batch's scores (times the affinity's cost) stay near 64 MB, and so
        does a neighbour affinity's search over its training inputs."""
        rows = SCORE_BUDGET // (self.n_labels * self.affinity.cost_per_score(int(width)))
        source = affinities.neighbour_part(self.affinity)
        if source is not None:
            rows = min(rows, source.queries_per_batch())
        return max(1, min(512, rows))

    def _row_batches(self, X: sp.csr_matrix, batch_size: int | None = None) -> list[np.ndarray]:
        """Row indices of each scoring batch: ``batch_size`` rows at a time in order, or, by
        default, as many as keep a batch near the scoring budget. Where the cost of a score grows
        with the input's length (per-feature-pair affinities), rows are then taken shortest
        first, so short rows share large batches and only long ones go a few at a time."""
        n = X.shape[0]
        widths = self._widths(X)
        if batch_size is None and self.affinity.cost_per_score(2) == 1:  # cost independent of length
            batch_size = self._rows_fitting(int(widths.max()) if n else 1)
        if batch_size is not None:
            return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
        order = np.argsort(widths, kind="stable")
        plan, start = [], 0
        while start < n:
            size = 512
            while (fits := self._rows_fitting(widths[order[min(start + size, n) - 1]])) < size:
                size = fits  # the longest row of a smaller batch may be shorter: try again
            plan.append(order[start : start + size])
            start += size
        return plan

    def score(self, X, batch_size: int | None = None) -> np.ndarray:
        """Scores ``[n, |Y|]`` of raw input rows ``X`` (a sparse or dense matrix of the values
        as the data file has them): the input transform, G's context and the AWE score, by the
        same TensorFlow code as the exported portable graph.

        Rows are scored ``batch_size`` at a time (default: as many as keep one batch's scores
        near 64 MB, at most 512), so a large label set never needs a huge intermediate tensor.
        """
        X = self.check_rows(X)
        out = np.empty((X.shape[0], self.n_labels), np.float32)
        source = affinities.neighbour_part(self.affinity)
        if source is not None:
            source.check_ready()
        by_index = source is not None and getattr(source, "search", "exact") == "scann"
        for index in self._row_batches(X, batch_size):
            batch = feature_batch(X[index])
            ids, weights = batch["feature_ids"], batch["feature_weights"]
            if by_index:  # G's neighbours from the affinity's ScaNN index, as in training
                neighbours = source.index_neighbours(self._latent_rows(ids, weights).numpy())
                out[index] = self._score_rows_near(ids, weights, neighbours.astype(np.int32)).numpy()
            else:
                out[index] = self._score_rows(ids, weights).numpy()
        return out

    def embed_inputs(self, X, prepared: bool = False) -> np.ndarray:
        """The embedded inputs sum_i x_i U_i, ``[n, d]`` (for k-NN in embedding space)."""
        X = X if prepared else self.prepare(X)
        return embed_rows(X, self.U.table.numpy(), self.input_bias)

    def exclusions(self, X, exclude=None, exclude_inputs: bool | None = None):
        """The labels a ranking of raw rows ``X`` leaves out, as a boolean CSR ``[n, |Y|]`` (or
        None): ``exclude``, plus each row's own items when ``exclude_inputs`` (default: for a
        recommendation model, whose inputs are items)."""
        if exclude_inputs is None:
            exclude_inputs = self.data_task == RECOMMENDATION
        if exclude_inputs and self.data_task != RECOMMENDATION:
            raise ValueError("exclude_inputs is for recommendation models, whose inputs are their labels")
        parts = []
        if exclude is not None:
            exclude = sp.csr_matrix(exclude, dtype=bool)
            if exclude.shape != (X.shape[0], self.n_labels):
                raise ValueError(f"exclude has shape {exclude.shape}, expected {(X.shape[0], self.n_labels)}")
            parts.append(exclude)
        if exclude_inputs:
            parts.append(sp.csr_matrix(X, dtype=bool))
        if not parts:
            return None
        return sp.csr_matrix(sum(parts[1:], parts[0]), dtype=bool)

    def rankable_labels(self, candidates=None):
        """The label ids a ranking may return (``candidates`` narrowed to the labels the model may
        rank: for recommendation, the items seen in training), or None for all."""
        allowed = self.rankable.numpy() > 0
        if candidates is not None:
            chosen = np.zeros(self.n_labels, bool)
            chosen[np.asarray(candidates, np.int64)] = True
            allowed &= chosen
        elif allowed.all():
            return None
        return np.flatnonzero(allowed)

    def top_k(self, X, k: int = 10, exclude=None, candidates=None, exclude_inputs: bool | None = None):
        """The ``k`` best labels per row of raw inputs ``X``, best first: ``(label ids, scores)``.

        Ties break towards the lower label id. As the exported graphs do, a recommendation model
        leaves out each row's own items (``exclude_inputs``) and the items it never saw in
        training; ``exclude`` (``[n, |Y|]``, its non-zeros left out) and ``candidates`` (the label
        ids that may be ranked) narrow the ranking further. With an affinity that scores only
        candidate labels (k-NN, cluster), only those are scored: no ``[n, |Y|]`` scores are built.
        """
        from awe_tf.metrics import top_k as rank

        X = self.check_rows(X)
        exclude = self.exclusions(X, exclude, exclude_inputs)
        candidates = self.rankable_labels(candidates)
        if hasattr(self.affinity, "leaf_top_k") and exclude is None and candidates is None:
            return self._top_k_by_leaf(X, k)
        if getattr(self.affinity, "uses_context", False) and not getattr(self.affinity, "has_offset", True):
            return self._top_k_of_candidates(X, k, exclude, candidates)
        step = self._rows_fitting(int(self._widths(X).max()) if X.shape[0] else 1)  # never all n x |Y| scores
        ids, values = [], []
        for start in range(0, X.shape[0], step):
            scores = self.score(X[start : start + step])
            excluded = exclude[start : start + step] if exclude is not None else None
            ids.append(rank(scores, k, excluded, candidates))
            values.append(np.take_along_axis(scores, ids[-1], axis=1))
        if not ids:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(ids), np.concatenate(values)

    def _top_k_by_leaf(self, X, k):
        X = self.prepare(X)
        ids, scores, exact = self.affinity.leaf_top_k(X, self.embed_inputs(X, prepared=True), self.V.table.numpy(), k)
        if not exact.all():  # the rare row with fewer than k positive candidates: rank it exactly
            rows = np.flatnonzero(~exact)
            ids[rows], scores[rows] = self._top_k_of_candidates(X[rows], k, None, None, prepared=True)
        return ids, scores

    @tf.function(input_signature=[{key: tf.TensorSpec([None, None], tf.int32 if key.endswith("ids") else tf.float32)
                                   for key in ("feature_ids", "feature_weights", "context_ids", "context_weights")}])
    def _candidate_scores(self, inputs):
        feature_ids, weights = self.with_bias(inputs["feature_ids"], inputs["feature_weights"])
        return self.affinity.candidate_scores(self.U(feature_ids), weights, self.V.table, self._context(inputs))

    def _label_prior(self) -> np.ndarray:
        """What a label outside an input's candidates scores, ``[|Y|]``: the bias feature's
        U_bias . V_y where the affinity keeps it outside G, else 0."""
        if getattr(self.affinity, "has_prior", False):
            return self.V.table.numpy() @ self.U.table.numpy()[-1]
        return np.zeros(self.n_labels, np.float32)

    def _top_k_of_candidates(self, X, k, exclude, candidates, prepared=False):
        """Top k where only an input's candidate labels (its context) have scores of their own and
        every other label y scores the same for all inputs (its prior, or 0): the candidates are
        scored, the others are taken in their fixed prior order, and the two lists merged."""
        X = X if prepared else self.prepare(X)
        n = self.n_labels
        prior = self._label_prior()
        order = np.lexsort((np.arange(n), -prior))  # non-candidates, best first, ties to the lower id
        allowed = np.ones(n, bool)
        if candidates is not None:
            allowed = np.zeros(n, bool)
            allowed[np.asarray(candidates)] = True
            order = order[allowed[order]]
        out_ids = np.zeros((X.shape[0], k), np.int64)
        out_scores = np.full((X.shape[0], k), -np.inf, np.float32)
        for start in range(0, X.shape[0], 1024):
            rows = X[start : start + 1024]
            b = rows.shape[0]
            batch = feature_batch(rows)
            batch.update(context_batch(self.affinity.context(rows), n))
            scores = self._candidate_scores(batch).numpy()
            ids = batch["context_ids"].astype(np.int64)
            real = ids < n
            banned = sp.csr_matrix((b, n), dtype=bool)
            if exclude is not None:
                banned = sp.csr_matrix(exclude[start : start + b], dtype=bool)
            safe = np.minimum(ids, n - 1)
            usable = real & allowed[safe] & ~np.asarray(banned[np.arange(b)[:, None], safe].todense(), bool)
            # Labels that are no candidate: the first ones of the prior order not blocked in a row.
            taken = sp.csr_matrix((np.ones(real.sum(), bool), (np.nonzero(real)[0], ids[real])), shape=(b, n))
            blocked = (taken + banned).astype(bool)
            width = min(order.size, k + ids.shape[1] + int(np.diff(blocked.indptr).max(initial=0)))
            fill = order[:width]
            fill_ok = ~np.asarray(blocked[:, fill].todense(), bool)
            merged_ids = np.concatenate([ids, np.broadcast_to(fill, (b, width))], axis=1)
            merged = np.concatenate([np.where(usable, scores, -np.inf),
                                     np.where(fill_ok, prior[fill][None, :], -np.inf)], axis=1)
            best = np.lexsort((merged_ids, -merged), axis=-1)[:, :k]  # best first, ties to the lower id
            found = min(k, best.shape[1])
            out_ids[start : start + b, :found] = np.take_along_axis(merged_ids, best, 1)
            out_scores[start : start + b, :found] = np.take_along_axis(merged, best, 1)
        return out_ids, out_scores

    # ------------------------------------------------------------------- configuration, I/O
    def get_config(self):
        transform = self.transform.get_config()
        return {
            "n_features": self.n_features,
            "n_labels": self.n_labels,
            "dimension": self.dimension,
            "affinity": affinities.serialize(self.affinity),
            "margin": self.margin,
            "num_negatives": self.num_negatives,
            "loss": self.loss_name,
            "normalisation": self.normalisation,
            "max_norm": self.max_norm,
            "seed": self.seed,
            "label_names": self.label_names,
            "input_bias": self.input_bias,
            "tpu_embedding": self.tpu_embedding,
            "data_task": self.data_task,
            "input_transform": {key: transform[key] for key in ("numeric", "mean", "std")}
            if self.transform.adapted else None,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _saved_objects(self) -> dict:
        return {"U": self.U.table, "V": self.V.table, "affinity": self.affinity, "rankable": self.rankable}

    def save_model(self, directory) -> Path:
        """Write the config (JSON) and weights (a TF checkpoint) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tf.train.Checkpoint(**self._saved_objects()).write(str(directory / WEIGHTS_PREFIX))
        (directory / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, **self.get_config()}, indent=1))
        return directory

    @classmethod
    def load_model(cls, directory) -> AWEModel:
        """Rebuild a model written by :meth:`save_model`."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.exists():
            raise FileNotFoundError(f"{directory} holds no saved AWE model ({CONFIG_FILE} missing)")
        config = json.loads(config_path.read_text())
        if config.pop("format", 1) < FORMAT:
            raise ValueError(f"{directory} was saved by an earlier awe-tf, which did not keep the model's input "
                             "transform with it: train it again")
        model = cls.from_config(config)
        status = tf.train.Checkpoint(**model._saved_objects()).read(str(directory / WEIGHTS_PREFIX))
        status.assert_existing_objects_matched()
        return model
