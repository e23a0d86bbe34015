"""AWEModel: embedding towers U and V, an affinity G, and the WARP task, as one ``tfrs.Model``."""

from __future__ import annotations

import json
import os
import warnings
import weakref
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from awe_tf import affinities
from awe_tf.affinities.base import check_saveable, parts_of
from awe_tf.config import ModelConfig, TrainConfig
from awe_tf.data.dataset import ANNOTATION, RECOMMENDATION
from awe_tf.distribute import is_tpu, shards
from awe_tf.layers import MaxNormEmbedding, towers
from awe_tf.layers.sampling import NegativeSampler
from awe_tf.layers.transform import InputTransform, weighs_items
from awe_tf.models import inference, saving
from awe_tf.tasks import TASKS

DEFAULTS = ModelConfig()  # one source of defaults for the model, the command line and the docs
_RAW_ROWS = ("an AWEModel is called on model_inputs(feature_ids, feature_weights), transformed rows; got {}: "
             "score raw rows with model.score(X) or model.top_k(X)")
_NOT_BATCHES = ("Keras' {} takes batches of training pairs, dicts as awe_tf.data.pipeline.TrainingBatches(Dataset("
                "model.prepare(X), Y)).dataset(1) makes them; got {}: train with awe_tf.training.fit, and measure "
                "precision with awe_tf.evaluation.evaluate_model(model.score, split)")
_BATCH_KEYS = ("feature_ids", "feature_weights", "label_ids", "self_position")
TRANSFORM_SUFFIX = ".transform.json"  # beside save_weights' file: the input transform, which no weight holds
_NOT_SAVEDMODEL = ("{how} would write Keras' SavedModel of the model, whose serving signature takes its "
                   "transformed rows (what call takes) under the names a raw request uses: served, a data file's rows "
                   "would rank wrong. To save and restore the model: model.save('m.keras') (tf.keras.models.load_model "
                   "after import awe_tf) or model.save_model(DIR); to serve it: awe_tf.serving.export(model, BASE, "
                   "NAME), raw rows in")


def _rows_given(x) -> bool:
    """Whether Keras' fit or evaluate was given rows (arrays, matrices, lists, tensors) rather
    than a data set of batches (a ``tf.data.Dataset``, a distributed one, an iterator)."""
    import scipy.sparse as sp

    return isinstance(x, (np.ndarray, list, tuple, tf.Tensor, tf.SparseTensor)) or sp.issparse(x)


def _check_batch(inputs, method: str) -> None:
    """Refuse, as the step is traced, what is not a batch of training pairs (Keras' fit or
    evaluate given rows and labels, ``(X, Y)``), which the step would fail on obscurely."""
    if not isinstance(inputs, dict) or any(key not in inputs for key in _BATCH_KEYS):
        got = f"a dict of {sorted(inputs)}" if isinstance(inputs, dict) else type(inputs).__name__
        raise TypeError(_NOT_BATCHES.format(method, got))


def _densify_if_small(gradient, variable):
    """Sum a sparse gradient into a dense one for small tables: a batch touches each row of a
    small table many times, and one dense update beats de-duplicating the sparse one."""
    if isinstance(gradient, tf.IndexedSlices) and variable.shape[0] <= towers.WHOLE_TABLE_ROWS:
        return tf.math.unsorted_segment_sum(gradient.values, gradient.indices, variable.shape[0])
    return gradient


def _transform_file(filepath) -> str | None:
    """Where :meth:`AWEModel.save_weights` keeps the input transform beside weights saved at
    ``filepath``; None for an open file object (``h5py.File``), which has no such place."""
    return os.fspath(filepath) + TRANSFORM_SUFFIX if isinstance(filepath, (str, os.PathLike)) else None


def _written(filepath) -> tuple:
    """When the weights at ``filepath`` were last written (an HDF5 file, or a TensorFlow
    checkpoint's ``.index``; None where there is none), to tell whether Keras wrote them where it
    asked first."""
    if not isinstance(filepath, (str, os.PathLike)):
        return ()
    path = os.fspath(filepath)
    local = "://" not in path  # os.stat's nanoseconds: TensorFlow's file system gives whole seconds here
    return tuple((os.stat(name).st_mtime_ns if local else tf.io.gfile.stat(name).mtime_nsec)
                 if tf.io.gfile.exists(name) else None for name in (path, path + ".index"))


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class AWEModel(tfrs.Model):
    """f(x, y) = sum_ij G_ij(x, y) x_i U_i^T V_j y_j, trained with WARP.

    With the default constant affinity this is WSABIE, f(x, y) = x^T U^T V y. Inputs are raw
    rows (values as the data file has them): the model's input transform standardises numeric
    features and scales rows as in training.

    Args:
        n_features: |X|, the number of input features (rows of U).
        n_labels: |Y|, the number of labels (rows of V).
        dimension: the embedding dimension d.
        affinity: G: an :class:`~awe_tf.affinities.Affinity`, its config dict, or a spec.
        margin: the WARP margin gamma.
        num_negatives: K, labels sampled per example per step.
        loss: ``"warp"`` (first violator) or ``"warp-all"`` (all violators).
        normalisation: how input rows are scaled before embedding: ``l2``, ``l1`` or ``none``
            (the last step of the model's :class:`~awe_tf.layers.transform.InputTransform`).
        max_norm: the radius C of the ball rows of U and V are kept in. Scores scale with C^2, so
            (C, gamma) is the same model as the paper's (1, gamma / C^2).
        init_scale: about the norm of a row of U and V as training starts (N(0, init_scale^2 / d)
            draws).
        seed: seed of the initialisers and of negative sampling.
        label_names: optional names of the labels (one per label, kept as strings), saved with
            the model.
        input_bias: add an always-on input feature (an extra row of U with x = 1), so that
            U_bias . V_y acts as a learnt per-label bias (LightFM's item bias).
        tpu_embedding: keep U and V in ``tfrs.layers.embedding.TPUEmbedding`` layers, off a TPU
            (the model trains exactly as without); refused under TPUStrategy, where U and V are
            replicated variables (see :class:`~awe_tf.layers.MaxNormEmbedding`).
        data_task: ``annotation``, or ``recommendation`` when inputs and labels are the same items
            (a user's items in, items out): then :meth:`top_k` and the exported graphs leave out
            the request's own items and the items never seen in training, as evaluation does.
        input_transform: what :meth:`adapt` fitted of the input transform (``numeric``, ``mean``,
            ``std``, and ``values_as_ones``, ``ignored``, ``categories`` and ``weighted`` when set).
    """

    # What Keras' fit reads to resume a run of BackupAndRestore, which deletes the model's own when
    # its training ends: a later fit of the model then reads this, not an AttributeError.
    _training_state = None

    def __init__(self, n_features: int, n_labels: int, dimension: int = DEFAULTS.dimension, affinity=None,
                 margin: float = DEFAULTS.margin, num_negatives: int = DEFAULTS.num_negatives,
                 loss: str = DEFAULTS.loss, normalisation: str = DEFAULTS.normalisation,
                 max_norm: float = DEFAULTS.max_norm, init_scale: float = DEFAULTS.init_scale,
                 seed: int = DEFAULTS.seed, label_names=None,
                 input_bias: bool = DEFAULTS.input_bias, tpu_embedding: bool = DEFAULTS.tpu_embedding,
                 data_task: str = ANNOTATION, input_transform: dict | None = None,
                 **kwargs):
        policy = tf.keras.mixed_precision.global_policy()
        if policy.compute_dtype != "float32":
            raise ValueError(f"awe-tf models compute in float32; Keras' global policy is {policy.name!r}: set "
                             "tf.keras.mixed_precision.set_global_policy('float32') before building one (mixed "
                             "precision is not supported: scores, margins and rank weights are float32 sums)")
        super().__init__(**kwargs)
        ModelConfig(dimension=dimension, margin=margin, num_negatives=num_negatives, loss=loss,  # its checks
                    normalisation=normalisation, max_norm=max_norm, init_scale=init_scale, seed=seed,
                    input_bias=input_bias, tpu_embedding=tpu_embedding)
        if n_features < 1 or n_labels < 2:
            raise ValueError(f"need at least 1 feature and 2 labels, got {n_features} and {n_labels}")
        if data_task not in (ANNOTATION, RECOMMENDATION):
            raise ValueError(f"data_task must be {ANNOTATION!r} or {RECOMMENDATION!r}, got {data_task!r}")
        if data_task == RECOMMENDATION and n_features != n_labels:
            raise ValueError(f"a recommendation model has its items as inputs and labels: {n_features} features "
                             f"but {n_labels} labels")
        self.n_features, self.n_labels, self.dimension = int(n_features), int(n_labels), int(dimension)
        self.margin, self.num_negatives, self.loss_name = float(margin), int(num_negatives), loss
        self.normalisation, self.max_norm, self.seed = normalisation, float(max_norm), int(seed)
        self.init_scale = float(init_scale)
        self._keep_label_names(label_names)
        self.input_bias, self.tpu_embedding, self.data_task = bool(input_bias), bool(tpu_embedding), data_task
        self.transform = InputTransform(n_features, normalisation, **(input_transform or {}), name="transform")
        # 1 for the labels a ranking may return (recommendation: the items seen in training)
        self.rankable = self.add_weight(name="rankable", shape=(n_labels,), initializer="ones", trainable=False)
        tables = {"tpu_embedding": self.tpu_embedding, "init_scale": self.init_scale}
        self.U = MaxNormEmbedding(n_features + self.input_bias, dimension, max_norm, seed=seed, name="U", **tables)
        self.V = MaxNormEmbedding(n_labels, dimension, max_norm, seed=seed + 1, name="V", **tables)
        self.affinity = affinities.get(affinity)
        if not isinstance(affinity, dict):  # built from a G, not loaded from a saved config: a saved model must
            check_saveable(self.affinity)  # rebuild this G, said before any training
        self.affinity.attach(n_features + self.input_bias, n_labels, self.input_bias)
        self.sampler = NegativeSampler(n_labels, num_negatives, seed, name="negatives")
        self.task = TASKS[loss](margin=margin, name="warp")
        # G is never called as a Keras layer (its weights are made by attach), and the transform,
        # sampler and task have no weights to build: marked built, or Keras' summary lists them,
        # G's weights included, as unused until their first call.
        for part in {self.transform, self.sampler, self.task, self.affinity, *parts_of(self.affinity)}:
            part.built = True
        self.U.build(None)
        self.V.build(None)
        # Every variable exists now. Left unbuilt, Keras records a first call's input shape and a
        # `.keras` file then fails to load, rebuilding the model from that shape as if its input
        # were one float tensor.
        self.built = True

    def adapt(self, data) -> None:
        """Fit what the model learns from its training data besides U, V and G: the input
        transform's statistics (and the data's categories, whose rows it refuses to find coded
        otherwise: :meth:`~awe_tf.layers.transform.InputTransform.adapt`) and, for recommendation,
        which items may be ranked (those with a training interaction). :func:`~awe_tf.training.fit`
        calls it on a model not yet adapted."""
        if (data.n_features, data.n_labels) != (self.n_features, self.n_labels):
            raise ValueError(f"{data.name} has {data.n_features} features / {data.n_labels} labels; the model was "
                             f"built for {self.n_features} / {self.n_labels}")
        self.transform.adapt(data.X, data.numeric_features, data.numeric_scale, data.values_as_ones, data.categories)
        inference.forget_graphs(self)
        if self.data_task == RECOMMENDATION:
            self.transform.weighted = not data.values_as_ones and weighs_items(data.X, self.normalisation)
            self.rankable.assign((np.asarray(data.Y.sum(axis=0)).ravel() > 0).astype(np.float32))

    def with_bias(self, feature_ids, weights):
        """Append the always-on bias feature (id |X|, weight 1) when the model has one."""
        if not self.input_bias:
            return feature_ids, weights
        batch = tf.shape(feature_ids)[0]
        bias_id = tf.fill([batch, 1], tf.constant(self.n_features, feature_ids.dtype))
        return tf.concat([feature_ids, bias_id], 1), tf.concat([weights, tf.ones([batch, 1], weights.dtype)], 1)

    def _context(self, inputs):
        return (inputs["context_ids"], inputs["context_weights"]) if self.affinity.uses_context else None

    # ----------------------------------------------------------------------------- training
    def compile(self, optimizer=None, **kwargs):
        """Keras' ``compile``, then the optimiser's slot variables are made at once. Made lazily by
        the first step instead, they would make ``tf.function`` trace the training step twice
        (once creating variables, once more without). Without an ``optimizer``, the one
        :func:`~awe_tf.training.fit` trains with by default (:class:`~awe_tf.config.TrainConfig`'s:
        Adagrad at its learning rate), not Keras' RMSprop."""
        if optimizer is None:
            optimizer = TrainConfig().make_optimizer()
        super().compile(optimizer=optimizer, **kwargs)
        if hasattr(self.optimizer, "build"):
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        """Compile a model loaded from a ``.keras`` file as it was saved (its optimiser and
        settings), the optimiser's slots made as :meth:`compile` makes them, so that the file's
        optimiser state loads into them. Keras' own skips any model with a ``compile`` of its
        own, with a warning, and leaves it uncompiled."""
        self.compile(**tf.keras.saving.deserialize_keras_object(config))

    def _loss(self, inputs, training: bool = False, step=None):
        """The WARP loss of a batch of training pairs (inputs as :class:`TrainingBatches` makes
        them) and the labels it scored with gradient; the negatives are drawn for ``step``
        (default: the optimiser's step count)."""
        label_ids = inputs["label_ids"]
        if step is None:
            step = self.optimizer.iterations if self.optimizer is not None else 0
        negative_ids, negative_valid = self.sampler(label_ids, step)
        pair_inputs = self.pair_inputs(inputs)
        frozen = tf.nest.map_structure(lambda t: None if t is None else tf.stop_gradient(t), pair_inputs)

        def scores_of(label_ids, gradient):
            if gradient:
                return self.pair_scores(pair_inputs, label_ids)
            return self.affinity.pair_scores_by_id(frozen, label_ids, lambda ids: tf.stop_gradient(self.V(ids)),
                                                   lambda: self.V.whole_table(stop_gradient=True))

        return self.task(scores_of, label_ids, negative_ids, negative_valid, self.n_labels, training=training)

    def pair_inputs(self, inputs):
        """The input side of a batch's training pairs (inputs as :class:`TrainingBatches` makes
        them: transformed features, each pair's ``self_position``, G's context where it has one),
        in the form the affinity's ``pair_scores`` takes."""
        feature_ids, weights = self.with_bias(inputs["feature_ids"], inputs["feature_weights"])
        return self.affinity.pair_inputs(self.U(feature_ids), weights, inputs["self_position"],
                                         self._context(inputs), feature_ids)

    def pair_scores(self, pair_inputs, label_ids):
        """Scores ``[B, M, N]`` of training pairs (:meth:`pair_inputs`) against ``label_ids``
        ``[B, M, N]``, as the training step scores them."""
        return self.affinity.pair_scores_by_id(pair_inputs, label_ids, self.V, self.V.whole_table)

    def compute_loss(self, inputs, training: bool = False):
        return self._loss(inputs, training)[0]

    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs):
        """One WARP step, traced as written, without AutoGraph (Keras' training function is
        converted, and would convert this and everything it calls): the step, the sampler, the
        task and G have no Python control flow on tensors."""
        _check_batch(inputs, "fit")
        with tf.GradientTape() as tape:
            loss, scored = self._loss(inputs, training=True)
            total = loss + tf.add_n(self.losses) if self.losses else loss
            # Gradients are summed over replicas; the loss is a sum over pairs already.
            scaled = total / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trainable_variables
        gradients = [_densify_if_small(g, v) for g, v in zip(tape.gradient(scaled, variables), variables, strict=False)]
        self.optimizer.apply_gradients(zip(gradients, variables, strict=False))
        self.U.project(self.with_bias(inputs["feature_ids"], inputs["feature_weights"])[0])
        self.V.project(tf.concat([tf.reshape(inputs["label_ids"], [-1]), tf.reshape(scored, [-1])], 0))
        return self.get_metrics_result()

    def make_train_function(self, force=False):
        """Keras' training function; where a call runs several steps (``steps_per_execution``),
        a loop over Keras' own one-step function, which is a ``tf.function`` of its own, so the
        step is traced once. (Keras' loop traces it twice: AutoGraph runs a loop's body once, ahead,
        to learn what the outputs it first sets there look like.) Keras' own function where a call
        runs one step, where Keras runs it eagerly or tunes the steps a call itself, under
        parameter servers (its coordinator schedules the loop) and on TPUs (where this loop has
        not been run: Keras' is the one known to work there)."""
        steps = self._steps_per_execution
        if (self.train_function is not None and not force) or self.run_eagerly or steps is None \
                or self._cluster_coordinator or self.autotune_steps_per_execution \
                or is_tpu(self.distribute_strategy) or int(steps.numpy()) == 1:
            return super().make_train_function(force)
        wanted = int(steps.numpy())
        steps.assign(1)  # Keras makes its one-step function when steps_per_execution reads 1
        try:
            one_step = super().make_train_function(force=True)
        finally:
            steps.assign(wanted)

        def train_function(iterator):
            # The outputs' first values: what the step returns, as zeros (the loop runs at least once).
            traced = one_step.get_concrete_function(iterator).structured_outputs
            outputs = tf.nest.map_structure(lambda t: tf.zeros(t.shape, t.dtype), traced)
            count = steps.read_value()  # Keras sets steps_per_execution to fewer for an epoch's last call
            return tf.while_loop(lambda done, _: done < count, lambda done, _: (done + 1, one_step(iterator)),
                                 (tf.zeros_like(count), outputs))[1]

        # Traced as written: AutoGraph would convert the loop it is already.
        self.train_function = self.train_tf_function = tf.function(train_function, reduce_retracing=True,
                                                                   autograph=False)
        return self.train_function

    @tf.autograph.experimental.do_not_convert
    def test_step(self, inputs):
        """Keras' ``evaluate`` on batches of held-out pairs: their WARP metrics as training logs
        them, ``loss`` the mean per pair (not the batch's sum, TFRS' own ``test_step``). Each
        batch draws its own negatives, keyed on its place in the evaluation (Keras' evaluation
        counter, 0 at each ``evaluate``), below 0 so as not to repeat a training step's: an
        ``evaluate`` repeats, and its batches' draws are independent."""
        _check_batch(inputs, "evaluate")
        counter = getattr(self, "_test_counter", None)  # tf_keras' own, kept out of checkpoints
        self._loss(inputs, step=None if counter is None else -1 - counter)
        return self.get_metrics_result()

    def get_metrics_result(self):
        """The logs of a training or evaluation step (the metrics so far this epoch, or this
        evaluation); Keras reads them from here after asynchronous (parameter-server) steps."""
        return {m.name: m.result() for m in self.metrics}  # loss: the mean WARP loss per pair this epoch

    # ------------------------------------------------------------------------------ scoring
    def call(self, inputs):
        """Scores ``[B, |Y|]`` of padded *transformed* inputs ``{"feature_ids", "feature_weights"}``
        (plus the affinity's ``context_ids`` / ``context_weights``); see :meth:`model_inputs`."""
        if not isinstance(inputs, dict):
            raise TypeError(_RAW_ROWS.format(type(inputs).__name__))
        return self._scores(inputs, [self._labels()])[0]

    def predict(self, x, *args, **kwargs):
        """Keras' ``predict``, for what :meth:`call` takes (a dict of :meth:`model_inputs`, or a
        ``tf.data.Dataset`` of them); raw rows are refused before Keras starts, which would bury
        the refusal in its traceback: :meth:`score` and :meth:`top_k` take them."""
        if not isinstance(x, (dict, tf.data.Dataset)):
            raise TypeError(_RAW_ROWS.format(type(x).__name__))
        return super().predict(x, *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        """Keras' ``fit``, for batches of training pairs (a ``tf.data.Dataset`` of
        :class:`~awe_tf.data.pipeline.TrainingBatches`' dicts, as :func:`awe_tf.training.fit` gives
        it); rows and labels are refused before Keras starts."""
        if _rows_given(x):
            raise TypeError(_NOT_BATCHES.format("fit", type(x).__name__))
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        """Keras' ``evaluate``: the WARP loss and rank estimate of batches of training pairs, as
        :meth:`fit` takes them; rows and labels are refused before Keras starts."""
        if _rows_given(x):
            raise TypeError(_NOT_BATCHES.format("evaluate", type(x).__name__))
        return super().evaluate(x, *args, **kwargs)

    def _labels(self):
        """V for scoring, as one whole read (where it is not sharded): an affinity that also
        gathers some of its rows then gathers them from that read, not from the variable, whose
        sparse read would have TensorFlow copy V while the whole read holds it."""
        whole = self.V.whole_table()
        return self.V.table if whole is None else whole

    def _scores(self, inputs, label_blocks) -> list:
        """Scores against each of ``label_blocks`` (V's rows in order), one block at a time: in a
        graph each block is read only once the last one is scored, so that a graph's independent
        reads do not all run at once and hold every block together."""
        feature_ids, weights = self.with_bias(inputs["feature_ids"], inputs["feature_weights"])
        features, context = self.U(feature_ids), self._context(inputs)
        scores, blocks = [], iter(label_blocks)
        while True:
            with tf.control_dependencies(scores[-1:]):
                labels = next(blocks, None)
            if labels is None:
                break
            block = self.affinity.score_all(features, weights, labels, context, feature_ids)
            inference.check_score_shape(self.affinity, block.shape, features.shape[0], labels.shape[0])
            scores.append(block)
        return scores

    def labels_in_blocks(self) -> bool:
        """Whether scoring in this process reads V a block of rows at a time
        (:meth:`score_by_label_blocks`): where V is one table (not sharded), a label's score
        depends on its own row of V alone (G a function of the linear score,
        :meth:`Affinity.scalar_form`), and V has more than one block
        (:data:`~awe_tf.layers.towers.BLOCK_ROWS`) or a whole read of it would copy it
        (:meth:`MaxNormEmbedding.whole_reads_copy`). Ranking then holds a block's scores and
        their masks at a time, not a whole batch's; where whole reads copy, only a block is
        copied at a time."""
        many = self.V.rows > towers.BLOCK_ROWS or self.V.whole_reads_copy()
        return many and shards(self.V.table) == 1 and self.affinity.scalar_form() is not None

    def score_by_label_blocks(self, inputs) -> list:
        """:meth:`call`'s scores as a list of blocks of labels (columns) in order, reading V a
        block of rows at a time (:meth:`MaxNormEmbedding.row_blocks`), for
        :meth:`labels_in_blocks`; the blocks are not joined, which would copy them. Exports keep
        :meth:`call`."""
        return self._scores(inputs, self.V.row_blocks())

    def model_inputs(self, feature_ids, feature_weights, neighbours=None) -> dict:
        """What :meth:`call` takes, from padded raw rows (``[B, L]`` ids and values; padding:
        value 0): the input transform, then G's context where the affinity is built from the
        training set (its neighbours searched exactly, or ``neighbours`` ``[B, c]`` found by an
        index). TensorFlow ops only: :meth:`score` and the exported serving graphs run this code."""
        ids, weights = self.transform(feature_ids, feature_weights)
        inputs = {"feature_ids": ids, "feature_weights": weights}
        source = self.affinity.reference_part()
        if source is not None:
            inputs["context_ids"], inputs["context_weights"] = source.graph_context(ids, weights, neighbours)
        return inputs

    def candidate_scores(self, inputs):
        """Scores ``[B, T]`` of each input's context labels (affinities whose G is zero elsewhere)."""
        feature_ids, weights = self.with_bias(inputs["feature_ids"], inputs["feature_weights"])
        return self.affinity.candidate_scores(self.U(feature_ids), weights, self._labels(), self._context(inputs))

    def label_prior(self):
        """What a label outside an input's context scores, ``[|Y|]`` (see :meth:`candidate_scores`)."""
        if not self.input_bias:
            return tf.zeros([self.n_labels])
        return self.affinity.prior_scores(self._labels(), self.U(tf.constant([self.n_features]))[0])

    def check_rows(self, X):
        """Raw input rows as a float32 CSR matrix (repeats summed, zeros dropped), checked against
        |X| and for bad values."""
        return inference.check_rows(self, X)

    def prepare(self, X):
        """Raw input rows, checked and transformed as in training (the model's input transform)."""
        return self.transform.apply(self.check_rows(X))

    def score(self, X, batch_size: int | None = None) -> np.ndarray:
        """Scores ``[n, |Y|]`` of raw input rows ``X`` (a sparse or dense matrix of the values
        as the data file has them): the input transform, G's context and the AWE score, by the
        same TensorFlow code as the exported portable graph. Rows are scored ``batch_size`` at a
        time (default: as many as keep one batch's scores near 64 MB, at most 512)."""
        return inference.score(self, X, batch_size)

    def embed_inputs(self, X, prepared: bool = False) -> np.ndarray:
        """The embedded inputs sum_i x_i U_i, ``[n, d]`` (for k-NN in embedding space)."""
        X = X if prepared else self.prepare(X)
        return towers.embed_rows(X, self.U.table.numpy(), self.input_bias)

    def rows_of(self, items, weights=None, unknown: str = "refuse"):
        """Input rows of a recommendation model from each row's items by name (its label names: an
        interactions file's item ids): ``model.top_k(model.rows_of([["i3", "i17"]]), 10)``
        recommends for a user the model never saw, as an export's ``rows_of`` does.

        Args:
            items: one list of item names per row (a user's items).
            weights: one list of weights per row, as the data file has them (default 1 each; a
                warning where the model's training users' items had weights other than 1).
            unknown: ``refuse`` an item the model does not have, or ``skip`` it.

        Raises:
            ValueError: not a recommendation model, a model without label names, a name it does
                not have (not with ``unknown="skip"``), or one two items share (send those by id).
        """
        from awe_tf.data.interactions import model_rows_of_items

        if self.data_task != RECOMMENDATION:
            raise ValueError("rows_of is for recommendation models, whose inputs are their items; give other "
                             "models' rows as a matrix of their features")
        if self.label_names is None:
            raise ValueError("the model has no label names: give its rows as a matrix, a column per item")
        rows, said = model_rows_of_items(self.label_names, self.transform.weighted, self.transform.ignored, items,
                                         weights, unknown, by_id="a matrix, a column per item")
        for warning in said:
            warnings.warn(warning, stacklevel=2)
        return rows

    def top_k(self, X, k: int = 10, exclude=None, candidates=None, exclude_inputs: bool | None = None):
        """The ``k`` best labels per row of raw inputs ``X``, best first: ``(label ids, scores)``.

        Ties break towards the lower label id. As the exported graphs do, a recommendation model
        leaves out each row's own items (``exclude_inputs``) and the items it never saw in
        training; ``exclude`` (``[n, |Y|]``, its non-zeros left out) and ``candidates`` (the label
        ids that may be ranked) narrow the ranking further; a slot no label can fill (all left
        out) is -1, with a warning (an id of -1 indexes a list's last name). A k above |Y| gives
        |Y| columns. With an affinity whose G is zero outside each input's own labels (k-NN,
        cluster), only those are scored.
        """
        ids, scores = inference.top_k(self, X, k, exclude, candidates, exclude_inputs)
        filled = (ids >= 0).sum(axis=1)
        above = f" (k = {k} is above the model's {self.n_labels} labels)" if k > ids.shape[1] else ""
        if ids.size and filled.min() < ids.shape[1]:
            warnings.warn(f"top_k: {int((filled < ids.shape[1]).sum())} of {len(ids)} rows have fewer than "
                          f"{ids.shape[1]} labels left to rank{above} (as few as {int(filled.min())}): their last "
                          "slots are label id -1, score -inf; keep the ids >= 0 before looking up names", stacklevel=2)
        elif above:
            warnings.warn(f"top_k: k = {k} is above the model's {self.n_labels} labels: every label is ranked, "
                          f"{ids.shape[1]} columns", stacklevel=2)
        return ids, scores

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def note_training_data(self, data) -> None:
        """Remember a data set this model was trained on, weakly (it is not kept alive for it),
        for :func:`~awe_tf.evaluation.evaluate_model` to tell a test part cut from it."""
        if not any(data is known for known in self.training_data()):  # once (iterative steps fit it again)
            self._training_data = (*getattr(self, "_training_data", ()), weakref.ref(data))

    def training_data(self) -> list:
        """The data sets this model was trained on (:meth:`note_training_data`) that are still
        held elsewhere; none for a model loaded from disk."""
        return [data for data in (ref() for ref in getattr(self, "_training_data", ())) if data is not None]

    # ------------------------------------------------------------------- configuration, I/O
    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _keep_label_names(self, names):
        """The label names as a plain tuple. A list attribute would become a tracked container,
        which Keras walks element by element whenever it collects the model's layers and metrics
        (several times a training step): with a million labels, a third of a second a step."""
        if names is not None and len(names) != self.n_labels:
            raise ValueError(f"label_names has {len(names)} names for {self.n_labels} labels")
        self.label_names = tuple(str(name) for name in names) if names is not None else None

    def _transform_config(self) -> dict | None:
        """What :meth:`adapt` fitted of the input transform, or None; ``values_as_ones``,
        ``ignored``, ``categories`` and ``weighted`` only when set, so the configs of models without them read as
        before they existed."""
        transform = self.transform.get_config()
        fitted = {key: transform[key] for key in ("numeric", "mean", "std")}
        if self.transform.values_as_ones:
            fitted["values_as_ones"] = True
        if self.transform.ignored.size:
            fitted["ignored"] = transform["ignored"]
        if self.transform.categories:
            fitted["categories"] = transform["categories"]
        if self.transform.weighted:
            fitted["weighted"] = True
        return fitted if self.transform.adapted or self.transform.values_as_ones or self.transform.ignored.size \
            or self.transform.categories or self.transform.weighted else None

    def get_config(self):
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
            "init_scale": self.init_scale,
            "seed": self.seed,
            "label_names": list(self.label_names) if self.label_names is not None else None,
            "input_bias": self.input_bias,
            "tpu_embedding": self.tpu_embedding,
            "data_task": self.data_task,
            "input_transform": self._transform_config(),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, filepath, overwrite=True, save_format=None, **kwargs):
        """Keras' ``save`` to a ``.keras`` file (HDF5 Keras itself refuses for a subclassed model);
        Keras' SavedModel (a folder, ``save_format="tf"``) is refused, saying what saves and what
        serves: its serving signature would take transformed rows under the names of raw ones."""
        path = os.fspath(filepath) if isinstance(filepath, (str, os.PathLike)) else str(filepath)
        if save_format == "tf" or (save_format is None and not path.endswith((".keras", ".h5", ".hdf5"))):
            raise ValueError(_NOT_SAVEDMODEL.format(how=f"model.save({path!r})"))
        return super().save(filepath, overwrite=overwrite, save_format=save_format, **kwargs)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        """TensorFlow's object graph below the model; refused for a SavedModel of it
        (``tf.saved_model.save(model, ...)``, ``tf.keras.models.save_model``), as :meth:`save`
        refuses one. The exports save a module of their own, which holds the model's variables,
        not the model."""
        if save_type == "savedmodel":
            raise ValueError(_NOT_SAVEDMODEL.format(how="a SavedModel of the model (tf.saved_model.save, "
                                                        "tf.keras.models.save_model)"))
        return super()._trackable_children(save_type, **kwargs)

    def save_weights(self, filepath, *args, **kwargs):
        """Keras' ``save_weights``, and beside its file (``FILE.transform.json``) what :meth:`adapt`
        fitted of the input transform, which is no weight: :meth:`load_weights` takes it back, so
        that a model built anew reads raw rows as the saved one did. Written only where Keras
        wrote the weights (not where its overwrite prompt was declined); an open ``h5py.File``
        has no place beside it, and gets none."""
        beside = _transform_file(filepath)
        overwrite = kwargs.get("overwrite", args[0] if args else True)
        before = _written(filepath) if not overwrite else None  # Keras asks before writing over weights
        out = super().save_weights(filepath, *args, **kwargs)
        if beside is not None and (before is None or not any(before) or _written(filepath) != before):
            with tf.io.gfile.GFile(beside, "w") as file:  # gs:// as Keras' own file
                file.write(json.dumps(self._transform_config()))
        return out

    def load_weights(self, filepath, *args, **kwargs):
        """Keras' ``load_weights``, with the input transform :meth:`save_weights` wrote beside the
        file: U, V and G rank raw rows as they were trained only through it. Without that file
        (weights written otherwise), a model whose transform was never fitted is warned about."""
        out = super().load_weights(filepath, *args, **kwargs)
        beside = _transform_file(filepath)
        if beside is not None and tf.io.gfile.exists(beside):
            with tf.io.gfile.GFile(beside) as file:
                self.transform.take(json.loads(file.read()))
            inference.forget_graphs(self)
        elif self._transform_config() is None:
            warnings.warn(f"{filepath}: the weights came without {os.path.basename(beside or TRANSFORM_SUFFIX)}, "
                          "which save_weights writes beside them with the input transform (what adapt fitted: "
                          "numeric columns' means and deviations); this model's was never fitted, so it reads raw "
                          "rows as they are: adapt it on the training data, or build it from the saved model's config "
                          "(AWEModel.from_config)", stacklevel=2)
        return out

    def set_weights(self, weights):
        """Keras' ``set_weights``: U, V and G's arrays. The input transform is no array among them,
        so a model whose transform was never fitted is warned about (its raw rows would be read
        unstandardised)."""
        super().set_weights(weights)
        if self._transform_config() is None:
            warnings.warn("set_weights: the input transform (what adapt fitted: numeric columns' means and deviations) "
                          "is not among a model's weights, and this model's was never fitted, so it reads raw rows as "
                          "they are: adapt it on the training data, or build it from the other model's config "
                          "(AWEModel.from_config(other.get_config()))", stacklevel=2)

    def save_model(self, directory) -> Path:
        """Write the config (JSON) and weights (a TF checkpoint) to ``directory``."""
        return saving.save(self, directory)

    @classmethod
    def load_model(cls, directory) -> AWEModel:
        """Rebuild a model written by :meth:`save_model`."""
        return saving.load(cls, directory)
