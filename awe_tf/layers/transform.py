"""The input transform: what training fits on its data besides U, V and G, kept inside the model
so that every scorer (training, evaluation, the exported serving graphs) applies it to raw rows."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.config import NORMALISATIONS
from awe_tf.data.dataset import CATEGORY_CODING, category_coding_error, category_columns, category_table
from awe_tf.tracing import TracedOnce

BATCH_ENTRIES = 1 << 20  # padded entries transformed at once by :meth:`InputTransform.apply`
# A category coded otherwise than its reader does, in a request's graph (no apostrophe: TF escapes it)
CATEGORY_NOT_ONE = f"feature_weights: a value other than 1 on a column of a category; {CATEGORY_CODING}"
CATEGORY_TWICE = f"feature_ids: two values of one category in a row; {CATEGORY_CODING}"
TOO_LARGE = ("an input value is too large: after the model's input transform (standardised with the training "
             "statistics, then normalised) it is beyond float32's range, 3.4e38")


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class InputTransform(tf.keras.layers.Layer):
    """Raw feature values in, the values U is trained on out (a Keras preprocessing layer).

    1. With ``values_as_ones``, every non-zero value is 1: the data file's values were not the
       inputs training saw (MovieLens ratings read as implicit feedback, every rating an
       interaction of 1), so a row sent as the file has it is read as training read it.
    2. Numeric columns are standardised with the mean and standard deviation of the data the
       model was trained on (a standard deviation of 0 counts as 1): x_i <- (x_i - mean_i) / std_i.
       A numeric feature absent from a row is a raw 0, so after this step every numeric column
       has its value in every row. Binary and bag-of-words columns are left as they are, and so
       are numeric columns whose statistics are mean 0 and std 1, as
       :func:`~awe_tf.data.protocols.column_statistics` gives a column that is 0 in half the
       rows or more (tf-idf weights), which standardising would make dense.
    3. The features no training row trained (:func:`~awe_tf.data.protocols.untrained_features`:
       in no training row, or numeric and constant there) are left out: their rows of U never
       moved from where they started, and a value there (a word no training document had, a
       constant column's other value) would add their random row to the score and change the
       row's norm.
    4. Each row is scaled to unit norm: ``l2`` (default), ``l1``, or not at all (``none``). The
       norm is summed in float64, so it neither overflows nor depends on the order of the terms.

    The output lists a row's non-zero entries in ascending feature id, then padding (id 0,
    weight 0), so the same row gives the same tensors however it was padded or ordered.

    Args:
        n_features: |X|, the number of input features.
        normalisation: ``l2``, ``l1`` or ``none``.
        numeric: the ids of the numeric columns it standardises (ascending; those whose
            statistics are not mean 0 and std 1, which it leaves as they are); None until
            :meth:`adapt`.
        mean: their means.
        std: their standard deviations (0 replaced by 1).
        values_as_ones: whether any non-zero value reads as 1 (step 1); set by :meth:`adapt`
            from the data's ``values_as_ones``.
        ignored: the ids of the features left out (step 3), ascending; set by :meth:`adapt`.
        categories: each category's column ids (:attr:`~awe_tf.data.dataset.Dataset.categories`:
            an ARFF nominal attribute's 0/1 columns); set by :meth:`adapt`. The transform does not
            change them; the scorers refuse rows that code one otherwise than training read it
            (:meth:`coding_error`).
        weighted: whether the rows it was fitted to weigh their items otherwise than 1 each, as it
            reads them (:func:`weighs_items`: a recommendation model's users, by an interactions
            file's weights, ratings, or repeats summed): a row of such a model sent without its
            weights reads otherwise than training rows did. It does not change the transform;
            :meth:`~awe_tf.models.AWEModel.adapt` sets it, for recommendation data.
    """

    def __init__(self, n_features: int, normalisation: str = "l2", numeric=None, mean=None, std=None,
                 values_as_ones: bool = False, ignored=None, categories=None, weighted: bool = False, **kwargs):
        super().__init__(**kwargs)
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
        self.n_features = int(n_features)
        self.normalisation = normalisation
        self.take({"numeric": numeric, "mean": mean, "std": std, "values_as_ones": values_as_ones,
                   "ignored": ignored, "categories": categories, "weighted": weighted})

    def take(self, fitted: dict | None) -> None:
        """Take what another transform's :meth:`adapt` fitted (a model's ``input_transform``
        config; None: nothing fitted), in place: the layer its model tracks stays the same one."""
        fitted = fitted or {}
        self._set(fitted.get("numeric"), fitted.get("mean"), fitted.get("std"))
        self.values_as_ones = bool(fitted.get("values_as_ones", False))
        self.ignored = _ascending_ids(fitted.get("ignored"), self.n_features, "ignored feature")
        self.categories = category_columns(fitted.get("categories") or (), self.n_features)
        self.weighted = bool(fitted.get("weighted", False))
        self._graph = None

    def _set(self, numeric, mean, std) -> None:
        self.numeric = None if numeric is None else np.asarray(numeric, np.int64).reshape(-1)
        self.mean = np.asarray(mean if mean is not None else [], np.float64).reshape(-1)
        self.std = np.asarray(std if std is not None else [], np.float64).reshape(-1)
        count = 0 if self.numeric is None else self.numeric.size
        if self.mean.size != count or self.std.size != count:
            raise ValueError(f"{count} numeric columns need as many means and standard deviations, got "
                             f"{self.mean.size} and {self.std.size}")
        if self.numeric is not None:
            self.numeric = _ascending_ids(self.numeric, self.n_features, "numeric column")

    @property
    def adapted(self) -> bool:
        """Whether :meth:`adapt` has fitted the statistics (a model built by hand has not)."""
        return self.numeric is not None

    def adapt(self, X, numeric_mask, statistics=None, values_as_ones: bool = False, categories=()) -> InputTransform:
        """Fit the means and standard deviations of the columns flagged in ``numeric_mask`` on
        the raw training rows ``X``, or take them as given (``statistics = (mean, std)``, the
        protocol's training-part statistics when ``X`` is a carve-out of it); ``values_as_ones``:
        the data file's values were not its inputs (class docstring, step 1); ``categories``:
        the data's (class docstring), which its rows must code as a reader does."""
        from awe_tf.data.protocols import column_statistics, standardised_columns, untrained_features

        numeric_mask = np.asarray(numeric_mask, bool)
        if X.shape[1] != self.n_features or numeric_mask.size != self.n_features:
            raise ValueError(f"the transform takes {self.n_features} features, got data with {X.shape[1]}")
        categories = category_columns(categories, self.n_features)  # checked before anything is fitted
        wrong = category_coding_error(sp.csr_matrix(X), categories)
        if wrong:
            raise ValueError(f"the training data's {wrong}: {CATEGORY_CODING}")
        mean, std = statistics if statistics is not None else column_statistics(X, numeric_mask)
        self._set(np.flatnonzero(numeric_mask), mean, std)
        self.ignored = np.flatnonzero(untrained_features(X, numeric_mask, self.mean))
        changed = standardised_columns(numeric_mask, self.mean, self.std)[numeric_mask]  # the rest stay sparse
        self._set(self.numeric[changed], self.mean[changed], self.std[changed])
        self.values_as_ones = bool(values_as_ones)
        self.categories = categories
        self._graph = None
        return self

    def coding_error(self, X: sp.csr_matrix) -> str | None:
        """Where raw rows ``X`` (CSR) code a category otherwise than its reader does, in words
        ending in how a row codes one; None where they do not (or there are no categories)."""
        wrong = category_coding_error(X, self.categories)
        return f"{wrong}: {CATEGORY_CODING}" if wrong else None

    def coding_checks(self, ids, weights) -> list:
        """:meth:`coding_error`'s refusals as graph assertions on padded raw rows (``[B, L]`` int32
        ids and values; padding: value 0), for a scorer that takes requests as tensors."""
        if not self.categories:
            return []
        columns, group_of = category_table(self.categories)
        is_column, place = _member(ids, columns)
        given = is_column & tf.not_equal(weights, 0.0)
        group = tf.where(given, tf.reshape(tf.gather(tf.constant(group_of, tf.int32), place), tf.shape(ids)), -1)
        not_one = tf.reduce_any(given & tf.not_equal(weights, 1.0))
        return [tf.debugging.Assert(tf.logical_not(not_one), [CATEGORY_NOT_ONE]),
                tf.debugging.Assert(tf.logical_not(repeated_in_a_row(group)), [CATEGORY_TWICE])]

    # ------------------------------------------------------------------------- the graph
    def call(self, feature_ids, feature_weights):
        """Transform padded raw rows (``[B, L]`` ids and values; padding: any id in range with
        value 0) into ``[B, L']`` ids and values (class docstring)."""
        ids = tf.cast(feature_ids, tf.int32)
        wide = tf.cast(feature_weights, tf.float64)  # float64 until the end: a large raw value stays finite
        if self.values_as_ones:
            wide = tf.cast(tf.not_equal(wide, 0.0), tf.float64)
        numeric = self.numeric if self.numeric is not None else np.zeros(0, np.int64)
        if numeric.size:
            ids, wide = self._standardise(ids, wide, numeric)
        if self.ignored.size:
            wide = tf.where(_member(ids, self.ignored)[0], tf.zeros_like(wide), wide)
        if self.normalisation == "l2":
            norms = tf.sqrt(tf.reduce_sum(wide * wide, axis=1, keepdims=True))
        elif self.normalisation == "l1":
            norms = tf.reduce_sum(tf.abs(wide), axis=1, keepdims=True)
        if self.normalisation != "none":
            wide = wide / tf.where(norms > 0, norms, 1.0)
        weights = tf.cast(wide, tf.float32)
        with tf.control_dependencies([tf.debugging.assert_all_finite(weights, TOO_LARGE)]):
            weights = tf.identity(weights)
        present = tf.not_equal(weights, 0.0)
        order = tf.argsort(tf.where(present, ids, self.n_features), axis=1, stable=True)
        return tf.gather(tf.where(present, ids, 0), order, batch_dims=1), tf.gather(weights, order, batch_dims=1)

    def _standardise(self, ids, weights, numeric: np.ndarray):
        """Move the numeric columns' values into a dense block, standardised, after the others."""
        batch, width = tf.shape(ids)[0], tf.shape(ids)[1]
        columns = tf.constant(numeric, tf.int32)
        is_numeric, position = _member(ids, numeric)
        is_numeric = tf.reshape(is_numeric, [-1])
        rows = tf.repeat(tf.range(batch), width)
        index = tf.boolean_mask(tf.stack([rows, position], 1), is_numeric)
        raw = tf.tensor_scatter_nd_add(tf.zeros([batch, numeric.size], weights.dtype), index,
                                       tf.boolean_mask(tf.reshape(weights, [-1]), is_numeric))
        standard = (raw - tf.constant(self.mean, weights.dtype)) / tf.constant(self.std, weights.dtype)
        weights = tf.where(tf.reshape(is_numeric, [batch, width]), tf.zeros_like(weights), weights)
        ids = tf.concat([ids, tf.tile(columns[None, :], [batch, 1])], 1)
        return ids, tf.concat([weights, standard], 1)

    # ------------------------------------------------------------------------- NumPy side
    def apply(self, X) -> sp.csr_matrix:
        """The transform of raw rows ``X`` (sparse or dense), as a CSR matrix with sorted indices,
        computed by the same graph as :meth:`call`. ``X`` itself is left as it was."""
        from awe_tf.data.pipeline import feature_batch, raw_rows

        X = raw_rows(X, self.n_features)  # repeats summed and zeros dropped on a copy, where there are any
        if self._graph_function() is None:
            return X.copy()
        lengths = np.diff(X.indptr) + (0 if self.numeric is None else self.numeric.size)
        # The output is written into arrays of its largest size, made once: parts kept per batch
        # and joined at the end would leave the heap fragmented, and the process's memory with it.
        most = int(lengths.sum())
        index_type = np.int32 if most < np.iinfo(np.int32).max else np.int64
        indptr = np.zeros(X.shape[0] + 1, index_type)
        indices, values = np.empty(most, index_type), np.empty(most, np.float32)
        start = filled = 0
        while start < X.shape[0]:
            stop = start + 1
            widest = max(8, int(lengths[start]))
            while stop < X.shape[0] and (stop - start + 1) * max(widest, int(lengths[stop])) <= BATCH_ENTRIES:
                widest = max(widest, int(lengths[stop]))
                stop += 1
            batch = feature_batch(X[start:stop])
            try:
                ids, weights = (t.numpy() for t in self._graph_function()(batch["feature_ids"],
                                                                          batch["feature_weights"]))
            except tf.errors.InvalidArgumentError as error:
                if TOO_LARGE not in error.message:
                    raise
                raise ValueError(TOO_LARGE) from None
            keep = weights != 0  # row by row, each row's ids ascending (call)
            count = int(keep.sum())
            indices[filled : filled + count], values[filled : filled + count] = ids[keep], weights[keep]
            indptr[start + 1 : stop + 1] = filled + np.cumsum(keep.sum(axis=1))
            filled += count
            start = stop
        if filled < most:  # zeros dropped, numeric columns moved into their block: shrink in place
            indices.resize(filled, refcheck=False)
            values.resize(filled, refcheck=False)
        out = sp.csr_matrix((values, indices, indptr), shape=(X.shape[0], self.n_features))
        out.sum_duplicates()  # sorted indices (a no-op: each row's ids ascend already)
        return out

    def _graph_function(self):
        """``call`` as one traced function, or None when the transform is the identity."""
        numeric = self.numeric is not None and self.numeric.size
        if not (numeric or self.ignored.size or self.values_as_ones) and self.normalisation == "none":
            return None
        if getattr(self, "_graph", None) is None:
            self._graph = TracedOnce(self.call, [tf.TensorSpec([None, None], tf.int32),
                                                 tf.TensorSpec([None, None], tf.float32)])
        return self._graph

    def get_config(self):
        return {
            **super().get_config(),
            "n_features": self.n_features,
            "normalisation": self.normalisation,
            "numeric": None if self.numeric is None else self.numeric.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "values_as_ones": self.values_as_ones,
            "ignored": self.ignored.tolist(),
            "categories": [list(group) for group in self.categories],
            "weighted": self.weighted,
        }


def weighs_items(X, normalisation: str) -> bool:
    """Whether rows ``X`` (a recommendation model's users) weigh their items otherwise than 1
    each, as the transform reads them: where rows are scaled to unit norm (``l2``, ``l1``), a row
    whose items all have one weight reads as a row of 1s, so only weights that differ within a row
    count; with ``none``, any weight other than 1."""
    X = sp.csr_matrix(X)
    if normalisation == "none":
        return bool((X.data != 1).any())
    starts = X.indptr[:-1][np.diff(X.indptr) > 0]
    if not starts.size:
        return False
    return bool((np.maximum.reduceat(X.data, starts) != np.minimum.reduceat(X.data, starts)).any())


def _ascending_ids(ids, n_features: int, what: str) -> np.ndarray:
    """``ids`` as an ascending int64 array of feature ids below ``n_features`` (None: none)."""
    ids = np.asarray(ids if ids is not None else [], np.int64).reshape(-1)
    if ids.size and (np.any(np.diff(ids) <= 0) or ids[0] < 0 or ids[-1] >= n_features):
        raise ValueError(f"{what} ids must be ascending ids of the model's features")
    return ids


def repeated_in_a_row(keys):
    """Whether a row of ``keys`` (``[B, L]`` int) holds one key of at least 0 twice (a negative
    key is none)."""
    ordered = tf.sort(keys, axis=1)
    return tf.reduce_any(tf.equal(ordered[:, 1:], ordered[:, :-1]) & (ordered[:, 1:] >= 0))


def _member(ids, sorted_ids: np.ndarray):
    """Whether each of ``ids`` (``[B, L]``) is one of ``sorted_ids`` (ascending, not empty),
    ``[B, L]``, and where it is or would go among them, ``[B * L]``."""
    table = tf.constant(sorted_ids, tf.int32)
    flat = tf.reshape(ids, [1, -1])
    position = tf.minimum(tf.searchsorted(table[None, :], flat), sorted_ids.size - 1)[0]
    return tf.reshape(tf.equal(tf.gather(table, position), flat[0]), tf.shape(ids)), position
