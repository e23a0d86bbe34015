"""Affinities built from the training set and an earlier model (the paper's iterative scheme).

:class:`ReferenceAffinity` keeps what such a G needs to score any input on its own: its
*reference rows*, the training rows that have a label (their labels, and their inputs in the
space G works in: raw inputs, and/or their embedding by a frozen U_prev from an earlier model),
and that U_prev. Its G rows are computed with TensorFlow ops (in batches when eager; the same
ops run inside an exported serving graph) and reach the model as context.
:class:`NeighbourAffinity` is the kernel form, G(x, y) = sum over x's nearest reference rows x_n
of K(x, x_n) L(y, y_n); the cluster affinity is another.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.affinities.base import Affinity, NativeForm, context_lookup, pair_dots, pair_queries
from awe_tf.config import SCORE_BUDGET
from awe_tf.data.dataset import labelled_rows
from awe_tf.layers.scann_index import searcher
from awe_tf.layers.towers import embed_rows, gather_rows
from awe_tf.optional import require


def _padded_to_csr(ids: np.ndarray, weights: np.ndarray, n_labels: int) -> sp.csr_matrix:
    """A padded context (ids padded with |Y|, weight 0) as CSR ``[b, |Y| + 1]``."""
    keep = weights != 0
    rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1]).reshape(ids.shape)
    G = sp.csr_matrix((weights[keep], (rows[keep], ids[keep])), shape=(ids.shape[0], n_labels + 1), dtype=np.float32)
    G.sort_indices()
    return G


ROWS_OF = ("returns (ids [b, T] int, weights [b, T] float): each row's labels with a G weight (a row of fewer "
           "padded with id |Y| and weight 0; an id |Y| with a weight is a share every label gets)")


class RowsOfError(ValueError):
    """G rows other than :meth:`ReferenceAffinity.rows_of` returns (:data:`ROWS_OF`)."""


def _described(value) -> str:
    """What a hook returned, in a few words: ``2 values: int32 [2, 4], float32 [2, 3]``."""
    def one(item):
        shape = getattr(item, "shape", None)
        kind = getattr(getattr(item, "dtype", None), "name", type(item).__name__)
        return f"{kind} {list(shape) if shape is not None else '(no shape)'}"

    if isinstance(value, (tuple, list)):
        return f"{len(value)} values: " + ", ".join(one(item) for item in value)
    return f"one {one(value)}"


def checked_rows(affinity, made, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The G rows an affinity's ``rows_of`` made, checked.

    Args:
        affinity: the :class:`ReferenceAffinity` whose ``rows_of`` made them.
        made: what it returned.
        rows: the inputs it was given.

    Returns:
        ``(ids, weights)``, NumPy ``[rows, T]``.

    Raises:
        RowsOfError: naming the hook, where they are other than :data:`ROWS_OF` says.
    """
    name = f"{type(affinity).__name__}.rows_of {ROWS_OF}"
    if not isinstance(made, (tuple, list)) or len(made) != 2:
        raise RowsOfError(f"{name}; for {rows} rows it returned {_described(made)}")
    ids, weights = (np.asarray(item) for item in made)
    if ids.ndim != 2 or ids.shape != weights.shape or ids.shape[0] != rows \
            or not np.issubdtype(ids.dtype, np.integer) or not np.issubdtype(weights.dtype, np.floating):
        raise RowsOfError(f"{name}; for {rows} rows it returned {_described(made)}")
    if ids.size and (ids.min() < 0 or ids.max() > affinity.n_labels):
        raise RowsOfError(f"{name}; it returned ids from {ids.min()} to {ids.max()}, where |Y| is {affinity.n_labels}")
    return ids, weights


def context_scatter_index(ids, n_labels):
    """The ``[row, label]`` index ``[m, 2]`` of a context's real entries (ids below ``n_labels``;
    the offset entry and the padding left out), and the mask ``[b, T]`` that picks them."""
    batch, width = tf.shape(ids)[0], tf.shape(ids)[1]
    real = ids < n_labels
    index = tf.boolean_mask(tf.stack([tf.repeat(tf.range(batch)[:, None], width, axis=1), ids], -1), real)
    return index, real


def raw_inputs_tensor(matrix, n_rows, n_columns) -> tf.SparseTensor:
    """The CSR matrix held in a :class:`StoredMatrix` as a ``tf.SparseTensor`` (graph-safe)."""
    rows = tf.RaggedTensor.from_row_splits(matrix.indices, matrix.indptr).value_rowids()
    indices = tf.stack([rows, tf.cast(matrix.indices, tf.int64)], 1)
    shape = tf.stack([tf.cast(n_rows, tf.int64), tf.cast(n_columns, tf.int64)])
    return tf.SparseTensor(indices, matrix.data, shape)


def stored_variable(name, shape, dtype=tf.float32):
    """A non-trainable variable whose shape :meth:`ReferenceAffinity.set_reference` (or a
    checkpoint restore) sets later, so it stays open here."""
    return tf.Variable(tf.zeros(shape, dtype), trainable=False, name=name, shape=tf.TensorShape(None))


class StoredMatrix(tf.Module):
    """A CSR matrix kept in three variables (so it is saved with the model)."""

    def __init__(self, name):
        super().__init__(name=name)
        self.data = stored_variable(f"{name}_data", [0])
        self.indices = stored_variable(f"{name}_indices", [0], tf.int32)
        self.indptr = stored_variable(f"{name}_indptr", [1], tf.int64)

    def assign(self, matrix: sp.csr_matrix):
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.sort_indices()
        self.data.assign(matrix.data)
        self.indices.assign(matrix.indices.astype(np.int32))
        self.indptr.assign(matrix.indptr.astype(np.int64))

    def value(self, n_columns: int) -> sp.csr_matrix:
        indptr = self.indptr.numpy()
        return sp.csr_matrix((self.data.numpy(), self.indices.numpy(), indptr), shape=(indptr.size - 1, n_columns))


class ReferenceAffinity(Affinity):
    """The shared base of affinities whose G comes from the training set and an earlier model:
    a reference set (:meth:`set_reference`), G rows per input as context (subclasses say how in
    :meth:`rows_of`), and the score f(x, y) = G(x, y) x^T U^T V y (+ b_y with ``prior``).

    b_y = U_bias . V_y is the label prior of the model's always-on bias feature (``input_bias``),
    kept outside G with ``prior``: it is not a feature of x, and weighted by G it would vanish
    for every label G gives nothing. Without the bias feature, or without ``prior``, the score is
    the paper's G(x, y) x^T U^T V y.

    Subclasses set the space G works in (``input``: raw x; ``latent``: x^T U_prev; ``hybrid``:
    both) and ``has_offset`` where G gives every label a share (an entry with id |Y| in a
    context row), so every label must be scored.
    """

    uses_context = True
    iterative = True
    space = "latent"
    has_offset = False
    prior = False
    searches_by_index = False  # G's neighbours come from a ScaNN index (``search="scann"``), not exact search
    index_metric = None  # the ScaNN distance of an index over G's reference rows (None: G has no such index)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.latent = stored_variable("latent_U", [0, 0])  # the frozen U_prev
        self.reference = stored_variable("reference", [0, 0])  # reference rows embedded by U_prev
        self.inputs = StoredMatrix("inputs")  # raw reference rows (input and hybrid spaces)
        self.labels = StoredMatrix("labels")
        self.state = stored_variable("state", [3], tf.int64)  # reference rows, |Y|, input bias (0/1)

    @property
    def candidates_only(self) -> bool:
        return not self.has_offset

    # ------------------------------------------------------------------ Keras .keras files
    def _kept_variables(self) -> list:
        """Every variable of the layer in a fixed order: Keras keeps in a ``.keras`` file only
        those set on the layer itself, not the ones of its :class:`StoredMatrix` modules."""
        matrices = [variable for matrix in (self.inputs, self.labels)
                    for variable in (matrix.data, matrix.indices, matrix.indptr)]
        return self._trainable_weights + self._non_trainable_weights + matrices

    def save_own_variables(self, store):
        for i, variable in enumerate(self._kept_variables()):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        variables = self._kept_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(f"the {self.name} affinity in this file has {len(store.keys())} variables, where "
                             f"this awe-tf keeps {len(variables)}: it was saved by another version; load the run's "
                             "model/ (AWEModel.load_model), which this version reads, and save that again")
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])

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

    @property
    def n_reference(self) -> int:
        """The reference rows G was built from: the training rows with a label (0 before
        :meth:`set_reference`)."""
        return int(self.state.numpy()[0])

    def set_reference(self, latent_U: np.ndarray, train_X: sp.csr_matrix, train_Y: sp.csr_matrix,
                      input_bias: bool, label_embeddings=None) -> None:
        """Fix G: keep the (prepared) training inputs that have a label, their labels and U_prev
        = ``latent_U`` (``label_embeddings``, the earlier model's V, is for affinities that rank
        labels by it). These *reference rows* are what G searches and counts, so the sums of
        the equations run over them: a training row without a label would take the place of a
        neighbour that has one and give no label (under the hard label match; under RBF's soft
        one, the same share to every label). Mulan sets such as birds leave many rows unlabelled."""
        train_Y = sp.csr_matrix(train_Y)
        labelled = labelled_rows(train_Y)
        if labelled.size < 2:
            raise ValueError(f"{labelled.size} training rows have a label: the {type(self).__name__} affinity needs "
                             "at least 2 (each row's G is built from the others)")
        if labelled.size < train_Y.shape[0]:
            train_X, train_Y = sp.csr_matrix(train_X)[labelled], train_Y[labelled]
        self.state.assign([train_Y.shape[0], train_Y.shape[1], int(bool(input_bias))])
        self.latent.assign(np.asarray(latent_U, np.float32))
        self.labels.assign(train_Y)
        if self.space in ("input", "hybrid"):
            self.inputs.assign(train_X)
        if self.space in ("latent", "hybrid"):
            self.reference.assign(self.embed(train_X))

    def embed(self, X) -> np.ndarray:
        """x^T U_prev of prepared rows ``X`` (NumPy)."""
        return embed_rows(X, self.latent.numpy(), self.input_bias)

    def check_ready(self):
        if not self.ready:
            raise RuntimeError(f"the {type(self).__name__} affinity has no reference set yet: train it with "
                               "awe_tf.training.fit_iterative (or call set_reference)")

    # ------------------------------------------------------------------ G rows, in TF ops
    def rows_of(self, raw, Z, exclude=None, neighbours=None):
        """G rows as a context, as :data:`ROWS_OF` says (ids in any order; an entry with id |Y| and
        a weight is an offset every label gets). Graph code: training runs it eagerly, the scoring
        graphs and exports trace it.

        Args:
            raw: ``(ids [b, L], weights [b, L])``, the prepared raw inputs (input/hybrid spaces).
            Z: ``[b, d]`` the inputs embedded by U_prev (latent/hybrid spaces).
            exclude: ``[b]`` the reference row each query is, not to be its own neighbour (or None).
            neighbours: ``[b, c]`` reference rows found by an index, or None.
        """
        raise NotImplementedError

    def graph_embed(self, feature_ids, weights):
        """x^T U_prev (plus U_prev's bias row when it has one) of padded prepared inputs."""
        latent = self.latent
        bias = tf.cast(self.state[2], tf.float32)
        Z = tf.reduce_sum(tf.gather(latent, feature_ids) * weights[..., None], axis=1)
        return Z + bias * latent[tf.shape(latent)[0] - 1]

    def graph_context(self, feature_ids, weights, neighbours=None):
        """G rows of padded prepared inputs, in TensorFlow ops (for scoring and serving graphs).

        Args:
            feature_ids: ``[b, L]`` int feature ids (padding: any id with weight 0).
            weights: ``[b, L]`` feature values.
            neighbours: ``[b, c]`` reference rows found by an index (ScaNN); None: exact search.
        """
        raw = (feature_ids, weights) if self.space in ("input", "hybrid") else None
        Z = self.graph_embed(feature_ids, weights) if self.space in ("latent", "hybrid") else None
        ids, weights = self.rows_of(raw, Z, neighbours=neighbours)
        # int32 and float32 (any integer and float type read alike), of rank 2, which what takes them
        # needs to know as it is traced (ops on a stored variable, whose shape is open, give no rank).
        return (tf.ensure_shape(tf.cast(ids, tf.int32), [None, None]),
                tf.ensure_shape(tf.cast(weights, tf.float32), [None, None]))

    def queries_per_batch(self) -> int:
        """Queries per batch: the [b, n_reference] closeness (and a dense raw batch) within the scoring
        budget."""
        width = max(1, self.n_reference) + (int(tf.shape(self.latent)[0]) if self.space in ("input", "hybrid") else 0)
        return max(1, min(1024, SCORE_BUDGET // width))

    # ------------------------------------------------------- an index over G's training inputs
    def neighbours_per_query(self) -> int:
        """How many reference rows G takes per query (what an index must return)."""
        return 0

    def index_database(self) -> np.ndarray:
        """The vectors an index over the reference rows searches, in ``index_metric``'s terms."""
        return self.reference.numpy()

    def index_queries(self, Z):
        """The index query of inputs embedded by U_prev, ``Z`` (a tensor; TensorFlow ops)."""
        return tf.convert_to_tensor(Z, tf.float32)

    def search_index(self, Z: np.ndarray, rows=None) -> np.ndarray:
        """G's neighbours ``[n, k]`` (reference rows) of embedded inputs ``Z`` from an in-memory
        ScaNN index (the one an export saves); with ``rows``, the queries are those reference
        rows, each not its own neighbour."""
        raise NotImplementedError(f"{type(self).__name__} has no index over its training inputs")

    def _contexts(self, X, Z, rows=None) -> sp.csr_matrix:
        """G rows (CSR ``[n, |Y| + 1]``) of prepared rows ``X`` and/or their embedding ``Z``;
        with ``rows``, they are those reference rows, each not its own neighbour. Here
        :meth:`rows_of` runs eagerly (the scoring graphs trace it): no graph is traced for each
        model's G."""
        from awe_tf.data.pipeline import feature_batch

        n_queries = X.shape[0] if X is not None else Z.shape[0]
        step = self.queries_per_batch()
        neighbours = self.search_index(Z, rows) if self.searches_by_index else None
        parts = []
        for start in range(0, n_queries, step):
            stop = min(start + step, n_queries)
            raw = None
            if X is not None:
                batch = feature_batch(X[start:stop])
                raw = (batch["feature_ids"], batch["feature_weights"])
            z = None if Z is None else tf.constant(Z[start:stop], tf.float32)
            exclude = None
            if rows is not None and neighbours is None:
                exclude = tf.constant(rows[start:stop], tf.int32)
            found = None if neighbours is None else tf.constant(neighbours[start:stop])
            ids, weights = checked_rows(self, self.rows_of(raw, z, exclude, found), stop - start)
            parts.append(_padded_to_csr(ids, weights, self.n_labels))
        if not parts:
            return sp.csr_matrix((0, self.n_labels + 1), dtype=np.float32)
        return sp.vstack(parts, format="csr")

    def context(self, X):
        """G rows (CSR ``[n, |Y| + 1]``) of prepared input rows ``X``."""
        self.check_ready()
        X = sp.csr_matrix(X)
        return self._contexts(X if self.space in ("input", "hybrid") else None,
                              self.embed(X) if self.space in ("latent", "hybrid") else None)

    def training_context(self, rows):
        """G rows of the reference rows numbered ``rows`` (the training rows with a label, in
        order: :func:`~awe_tf.data.dataset.labelled_rows`), each not its own neighbour (a worker of a multi-worker
        strategy computes its share; :func:`awe_tf.distribute.rows_by_workers`)."""
        self.check_ready()
        rows = np.asarray(rows, np.int64)
        n_features = int(tf.shape(self.latent)[0]) - self.input_bias
        X = self.inputs.value(n_features)[rows] if self.space in ("input", "hybrid") else None
        Z = self.reference.numpy()[rows] if self.space in ("latent", "hybrid") else None
        return self._contexts(X, Z, rows=rows)

    # ------------------------------------------------------------------------ scoring
    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        self.offset_id = n_labels  # G rows carry the offset every label gets in column |Y|
        self.has_prior = self.prior and bool(input_bias)

    def _split_prior(self, features, weights):
        """``(features, weights, U_bias [B, d] or None)``: the bias feature (last) taken out of x."""
        if not self.has_prior:
            return features, weights, None
        return features[:, :-1], weights[:, :-1], features[:, -1]

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        features, weights, bias = self._split_prior(features, weights)
        return pair_queries(features, weights, self_position), bias, context

    def pair_scores(self, pair_inputs, labels, label_ids):
        queries, bias, context = pair_inputs
        G = context_lookup(context, label_ids, offset_id=self.offset_id)
        scores = G * pair_dots(labels, queries)
        return scores if bias is None else scores + pair_dots(labels, bias[:, None, :])

    def native_form(self) -> NativeForm:
        return NativeForm(c=0.0, g_scale=1.0, prior=self.has_prior)

    def prior_scores(self, labels, bias_row):
        """What a label outside an input's context scores, ``[N]``: U_bias . V_y with the prior
        (``has_prior``), else 0."""
        if self.has_prior:
            return tf.linalg.matvec(labels, bias_row)
        return tf.zeros(tf.shape(labels)[:1], labels.dtype)

    def _prior_of_batch(self, labels, bias):
        """The prior of every label, ``[N]``, from a batch's bias rows (all the same row)."""
        if bias is None:
            return tf.zeros(tf.shape(labels)[:1], labels.dtype)
        first = tf.concat([bias, tf.zeros_like(labels[:1])], 0)[0]  # the row itself, also for an empty batch
        return self.prior_scores(labels, first)

    def _candidate_scores(self, query, prior, labels, context):
        """G x^T U^T V y + prior_y of each context label; 0 on padding and on the offset entry."""
        ids, values = context
        n = tf.shape(labels)[0]
        safe = tf.minimum(ids, n - 1)
        scores = values * tf.einsum("bd,btd->bt", query, gather_rows(labels, safe)) + tf.gather(prior, safe)
        return tf.where(ids < n, scores, 0.0)

    def candidate_scores(self, features, weights, labels, context):
        """Scores ``[B, T]`` of the context's candidate labels (``[B, L, d]`` embedded input
        features with their weights), exactly as :meth:`score_all` scores them."""
        features, weights, bias = self._split_prior(features, weights)
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        return self._candidate_scores(query, self._prior_of_batch(labels, bias), labels, context)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        """Scores of every label: a context label scores G x^T U^T V y + b_y, every other label
        its prior b_y (or 0), plus, where G gives every label a share (``has_offset``), that
        share of the linear score. Without an offset, only ``[B, T]`` scores are computed for G
        (T the context's width), not ``[B, |Y|]`` per input feature."""
        features, weights, bias = self._split_prior(features, weights)
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        ids, values = context
        batch = tf.shape(ids)[0]
        n = tf.shape(labels)[0]
        prior = self._prior_of_batch(labels, bias)
        dense = tf.tile(prior[None, :], [batch, 1])
        if self.has_offset:
            offset = tf.reduce_sum(tf.where(tf.equal(ids, n), values, 0.0), axis=1, keepdims=True)
            dense += offset * tf.matmul(query, labels, transpose_b=True)
        scores = self._candidate_scores(query, prior if not self.has_offset else tf.zeros_like(prior), labels, context)
        index, real = context_scatter_index(ids, n)
        if self.has_offset:
            return tf.tensor_scatter_nd_add(dense, index, tf.boolean_mask(scores, real))
        return tf.tensor_scatter_nd_update(dense, index, tf.boolean_mask(scores, real))

    def get_config(self):
        return {**super().get_config()}


class NeighbourAffinity(ReferenceAffinity):
    """G(x, y) = sum_{n in N_k(x)} K(x, x_n) L(y, y_n), over the k reference rows x_n (training
    inputs with a label) with the largest kernel weight K; the score is f(x, y) = G(x, y) x^T U^T
    V y + b_y (``prior``: see :class:`ReferenceAffinity`).

    Subclasses set the space, the kernel (:meth:`closeness`, :meth:`kernel`) and the label match
    L: the hard match L = y_n[y], or the soft one L = exp(-lambda_y ||e_y - y_n||^2), which gives
    every label a share (an offset per input).

    Args:
        k: reference rows per query (the sparse approximation of the sum over all of them).
        search: ``exact`` (batched brute force) or ``scann`` (approximate, latent space only;
            needs ScaNN).
        prior: keep the bias feature's term b_y outside G.
    """

    def __init__(self, k: int = 20, search: str = "exact", prior: bool = True, **kwargs):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if search not in ("exact", "scann"):
            raise ValueError(f"search must be 'exact' or 'scann', got {search!r}")
        if search == "scann":
            if self.index_metric is None:
                raise ValueError(f"ScaNN search is for latent-space affinities, not {type(self).__name__}")
            require("scann", "search='scann'")
        self.k = int(k)
        self.search = search
        self.searches_by_index = search == "scann"
        self.prior = bool(prior)
        self._searcher = None

    def set_reference(self, latent_U, train_X, train_Y, input_bias, label_embeddings=None) -> None:
        super().set_reference(latent_U, train_X, train_Y, input_bias, label_embeddings)
        self._searcher = None

    # ------------------------------------------------------------- kernel, search, labels
    def closeness(self, raw, Z, candidates=None):
        """Values that order reference rows by kernel weight (higher: nearer).

        Args:
            raw: ``(ids [b, L], weights [b, L])``, the prepared raw inputs (input/hybrid spaces).
            Z: ``[b, d]`` the inputs embedded by U_prev (latent/hybrid spaces).
            candidates: ``[b, c]`` reference rows to compare with; None: all of them.

        Returns:
            ``[b, n_reference]`` (or ``[b, c]``) closeness values.
        """
        raise NotImplementedError

    def kernel(self, closeness):
        """Kernel weights ``K`` of the chosen neighbours from their closeness values."""
        raise NotImplementedError

    def label_match(self, neighbours, weights):
        """G rows from neighbour rows and kernel weights. Default: the hard match y_n[y]."""
        return self._accumulate(neighbours, weights)

    def _accumulate(self, neighbours, weights, offsets=None):
        """sum_n weight_n y_n per query as a context, plus ``offsets`` ``[b]`` in column |Y|."""
        n_labels = tf.cast(self.state[1], tf.int64)
        batch = tf.shape(neighbours, out_type=tf.int64)[0]
        labels = tf.RaggedTensor.from_row_splits(self.labels.indices, self.labels.indptr)
        rows = tf.gather(labels, tf.reshape(neighbours, [-1]))  # [b * k, (labels)]
        lengths = rows.row_lengths()
        values = tf.repeat(tf.reshape(tf.cast(weights, tf.float32), [-1]), lengths)
        query = tf.repeat(tf.repeat(tf.range(batch), tf.shape(neighbours, out_type=tf.int64)[1]), lengths)
        keys = query * (n_labels + 1) + tf.cast(rows.flat_values, tf.int64)
        if offsets is not None:
            keys = tf.concat([keys, tf.range(batch) * (n_labels + 1) + n_labels], 0)
            values = tf.concat([values, tf.cast(offsets, tf.float32)], 0)
        unique, position = tf.unique(keys)
        sums = tf.math.unsorted_segment_sum(values, position, tf.size(unique))
        order = tf.argsort(unique)
        unique, sums = tf.gather(unique, order), tf.gather(sums, order)
        owner = unique // (n_labels + 1)
        ids = tf.RaggedTensor.from_value_rowids(tf.cast(unique % (n_labels + 1), tf.int32), owner, nrows=batch)
        sums = tf.RaggedTensor.from_value_rowids(sums, owner, nrows=batch)
        # One padding column more, so even a batch without any candidate has a width of 1.
        ids = tf.pad(ids.to_tensor(default_value=tf.cast(n_labels, tf.int32)), [[0, 0], [0, 1]],
                     constant_values=tf.cast(n_labels, tf.int32))
        return ids, tf.pad(sums.to_tensor(default_value=0.0), [[0, 0], [0, 1]])

    def rows_of(self, raw, Z, exclude=None, neighbours=None):
        if neighbours is None:
            close = self.closeness(raw, Z)
            n_reference = tf.shape(close)[1]
            k = tf.minimum(self.k, n_reference)
            if exclude is not None:  # query i is reference row exclude[i] and may not pick itself
                close = tf.where(tf.range(n_reference)[None, :] == exclude[:, None], -np.inf, close)
                k = tf.minimum(self.k, n_reference - 1)
            close, neighbours = tf.math.top_k(close, k)
        else:
            close = self.closeness(raw, Z, candidates=neighbours)
        return self.label_match(neighbours, self.kernel(close))

    # ------------------------------------------------------------------ ScaNN search
    def neighbours_per_query(self) -> int:
        return min(self.k, self.n_reference)

    def search_index(self, Z, rows=None):
        n_reference = self.n_reference
        exclude_self = rows is not None
        k = min(self.k, n_reference - exclude_self)
        if self._searcher is None:
            self._searcher = searcher(self.index_database(), self.k + 1, self.index_metric)
        ids, _ = self._searcher.search_batched(self.index_queries(Z).numpy(), final_num_neighbors=k + 1)
        ids = np.asarray(ids, np.int64)
        if exclude_self:  # drop the query itself wherever it was found, else the last one
            own = ids == np.asarray(rows)[:, None]
            drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
            keep = np.ones_like(ids, bool)
            keep[np.arange(ids.shape[0]), drop] = False
            return ids[keep].reshape(-1, k)
        return ids[:, :k]

    def get_config(self):
        return {**super().get_config(), "k": self.k, "search": self.search, "prior": self.prior}
