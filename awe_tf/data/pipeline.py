"""tf.data input pipelines with static shapes.

An example becomes a padded bag of input features and a padded list of positive labels:

* ``feature_ids`` ``[L]`` int32 and ``feature_weights`` ``[L]`` float32 (padding: id 0, weight 0);
* ``label_ids`` ``[M]`` int32, sorted ascending, padded with ``|Y|`` (a sentinel above every
  label id, so the sorted list doubles as the membership table that masks sampled negatives);
* ``self_position`` ``[M]`` int32: for recommendation data, where the label's own item sits in
  the feature list (the pair (x, y) drops y from x, or every model learns to copy its input);
  ``-1`` for annotation data.

See :class:`TrainingBatches` for how examples are grouped into batches.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from awe_tf.data.dataset import RECOMMENDATION, Dataset, Split, check_finite_rows, float32_matrix, labelled_rows
from awe_tf.data.errors import is_number
from awe_tf.data.frames import by_position

PAD_ROWS = 65536  # rows padded at a time when a whole data set is (the temporaries of one such block)
CHUNK_BYTES = 8 << 20  # the bytes of batches a chunk of TrainingBatches.dataset gathers before TensorFlow takes it
_SHAPES = "shapes"  # a chunk's [n, 1 + keys] array: each batch's rows, then each key's width


def _round8(n):
    """Round a width (an int; or each of an array's) up to a multiple of 8, at least 8 (fewer
    distinct shapes, aligned vectors)."""
    if np.ndim(n) == 0:  # one width (the batching loop asks once per row): plain ints, fast
        return max(8, -(-int(n) // 8) * 8)
    return np.maximum(8, -(-np.asarray(n, np.int64) // 8) * 8)


# A recommendation model's inputs are items weighted as an interactions file weighs them (the
# reader refuses a weight <= 0); a negative one, from a caller, is refused where rows are scored.
NEGATIVE_ITEMS = "item weights must not be negative: a recommendation model's inputs are items weighted as an " \
    "interactions file weighs them (0 leaves an item out)"


def raw_rows(X, n_features: int, names=None, every: bool = False) -> sp.csr_matrix:
    """Input rows as a float32 CSR matrix (repeated entries summed, zeros dropped: a feature
    of value 0 is not in the row), checked: ``n_features`` columns, and values that are finite
    in float32 (where a value beyond 3.4e38 becomes inf) and, other than 0, not below its
    smallest normal number (as the readers and a ``Dataset`` refuse them). The caller's matrix is left as it was:
    its arrays are shared, not changed, and copied where something must change. A pandas
    DataFrame is read as :func:`~awe_tf.data.frames.by_position` says (``names``: the features' names, where
    known; ``every``: each must have its column)."""
    if isinstance(X, (Dataset, Split)):
        part = "its rows, data.X" if isinstance(X, Dataset) else "a part's rows, split.test.X"
        raise TypeError(f"inputs are rows (a matrix, a DataFrame), not a {type(X).__name__}: give {part}")
    if X is None:
        raise TypeError("inputs are rows (a matrix, a DataFrame), got None")
    X = by_position(X, names, every)
    try:
        dimensions = np.ndim(X)
    except ValueError as error:  # rows of other lengths
        raise _not_rows(error) from None
    if not sp.issparse(X) and dimensions > 2:
        raise ValueError(f"inputs are rows, a 2-D matrix (or one row), got an array of {dimensions} dimensions")
    text = _text_in(X)
    if text is not None:
        raise TypeError(f"inputs are rows of numbers, a column per feature, got text ({str(text)!r}); for a "
                        "recommendation model, a user's items by name make a row with model.rows_of([[...]]) (an "
                        "export's: served.rows_of([[...]]))")
    X = float32_matrix(X, "an input row", _not_rows)
    if X.shape[1] != n_features:
        raise ValueError(f"inputs have {X.shape[1]} features; the model takes {n_features}")
    check_finite_rows(X, "inputs contain")
    if not X.has_canonical_format or (X.nnz and not X.data.all()):
        X = X.copy()  # the conversion may share the caller's arrays, which the next two rewrite
        X.sum_duplicates()
        X.eliminate_zeros()
    return X


def _not_rows(error) -> ValueError:
    """The refusal of inputs NumPy or SciPy cannot read as a matrix of numbers."""
    said = str(error).splitlines()[0]
    ragged = " (its rows are of other lengths: give each a value for every feature)" if "inhomogeneous" in said else ""
    return ValueError(f"inputs are rows, a matrix of numbers with a column per feature; NumPy cannot read them as "
                      f"one{ragged}: {said[:120]}")


def _text_in(X):
    """The first value of dense rows ``X`` (an array, nested lists, a tensor) that is text (a
    number written as text too: rows are numbers, and text there is most often ids); None where
    they hold none."""
    if sp.issparse(X):
        return None
    dtype = getattr(X, "dtype", None)
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # a tensor's
    if dtype is not None and np.dtype(dtype).kind not in "USO":  # numbers only
        return None
    try:
        values = np.asarray(X)
    except ValueError:  # rows of several lengths: the conversion says so
        return None
    if values.dtype.kind not in "USO":
        return None
    flat = values.ravel()
    first = next((at for at, value in enumerate(flat) if isinstance(value, (str, bytes))), None)
    if first is None:
        return None
    shown = (value for value in flat[first:first + 1000] if isinstance(value, (str, bytes)) and not is_number(value))
    return next(shown, flat[first])  # a word near the first text, where there is one


def pad_rows(matrix: sp.csr_matrix, rows: np.ndarray, width: int, pad_id: int, with_values: bool = True):
    """The non-zeros of ``rows`` as ``[len(rows), width]`` ids (and values), padded right.

    Example:
        >>> matrix = sp.csr_matrix([[0, 2.0, 0, 1.0], [3.0, 0, 0, 0]])
        >>> ids, values = pad_rows(matrix, np.array([1, 0]), width=3, pad_id=9)
        >>> ids.tolist(), values.tolist()
        ([[0, 9, 9], [1, 3, 9]], [[3.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    """
    rows = np.asarray(rows, np.int64)
    starts = matrix.indptr[rows].astype(np.int64)
    lengths = matrix.indptr[rows + 1].astype(np.int64) - starts
    if lengths.size and lengths.max() > width:
        longest = int(np.argmax(lengths))
        raise ValueError(f"row {int(rows[longest])} has {int(lengths[longest])} entries, more than the width {width}")
    ids = np.full((len(rows), width), pad_id, np.int32)
    values = np.zeros((len(rows), width), np.float32)
    out_row = np.repeat(np.arange(len(rows)), lengths)
    column = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # place in its row
    source = np.repeat(starts, lengths) + column
    ids[out_row, column] = matrix.indices[source]
    if with_values:
        values[out_row, column] = matrix.data[source]
    return ids, values


def self_positions(feature_ids: np.ndarray, feature_weights: np.ndarray, label_ids: np.ndarray, n_labels: int,
                   real: np.ndarray) -> np.ndarray:
    """Where each label sits in its example's feature list, for recommendation data (X and Y share
    the item vocabulary, and a pair's input leaves its own item out).

    Args:
        feature_ids: ``[B, L]`` each example's feature ids, sorted; the used part of a row is its
            entries with a non-zero weight (the rest is padding).
        feature_weights: ``[B, L]`` their weights.
        label_ids: ``[B, M]`` each example's labels, padded with ``n_labels``.
        n_labels: |Y|.
        real: ``[B]`` False for masked filler rows.

    Returns:
        ``[B, M]`` int32 column of each label in its feature list; -1 where the label is not
        among the used features, for padding and for masked rows.
    """
    n, width = feature_ids.shape
    used = np.count_nonzero(feature_weights, axis=1)
    span = np.int64(max(int(feature_ids.max(initial=0)), n_labels) + 1)
    # one sorted key per used feature, row by row (row * span + id), so one search serves all rows
    keys = (np.arange(n, dtype=np.int64)[:, None] * span + feature_ids)[np.arange(width) < used[:, None]]
    first = np.cumsum(used) - used
    wanted = np.arange(n, dtype=np.int64)[:, None] * span + label_ids
    position = np.searchsorted(keys, wanted) - first[:, None]
    found = np.take_along_axis(feature_ids, np.clip(position, 0, width - 1), axis=1) == label_ids
    keep = found & (position < used[:, None]) & (label_ids < n_labels) & np.asarray(real)[:, None]
    return np.where(keep, position, -1).astype(np.int32)


def feature_batch(X: sp.csr_matrix, width: int | None = None) -> dict:
    """Padded feature ids and weights of every row of X (for scoring)."""
    X = sp.csr_matrix(X)
    X.sort_indices()
    lengths = np.diff(X.indptr)
    width = width or _round8(int(lengths.max()) if len(lengths) else 1)
    ids, weights = pad_rows(X, np.arange(X.shape[0]), width, 0)
    return {"feature_ids": ids, "feature_weights": weights}


def context_batch(context: sp.csr_matrix, n_labels: int, width: int | None = None, rows=None) -> dict:
    """Padded per-example label weights (an affinity's context): ids sorted, padded with |Y|."""
    context = sp.csr_matrix(context)
    context.sort_indices()
    rows = np.arange(context.shape[0]) if rows is None else rows
    lengths = np.diff(context.indptr)[rows] if len(rows) else np.zeros(0, int)
    width = width or _round8(int(lengths.max()) if len(lengths) else 1)
    ids, weights = pad_rows(context, rows, width, n_labels)
    return {"context_ids": ids, "context_weights": weights}


def training_matrices(data: Dataset):
    """What training reads of ``data`` (its inputs already transformed by the model): ``(X, Y,
    rows)``, the inputs and the labels as CSR with sorted indices (sorted label ids double as
    membership tables), and the rows that have a positive label (a row without one gives no
    training pair)."""
    X = sp.csr_matrix(data.X, dtype=np.float32)
    X.sort_indices()
    Y = data.Y
    Y.sort_indices()
    rows = labelled_rows(Y)
    if rows.size == 0:
        raise ValueError(f"{data.name}: no training example has a positive label")
    return X, Y, rows


def _packed(batches: list[dict], keys: list[str]) -> dict:
    """Batches of several shapes as one element of flat arrays: each key's arrays end to end, and
    under :data:`_SHAPES` each batch's rows and each key's width (:func:`_unpacked` cuts them)."""
    packed = {key: np.concatenate([batch[key].ravel() for batch in batches]) for key in keys}
    packed[_SHAPES] = np.array([[len(batch[keys[0]])] + [batch[key].shape[1] for key in keys] for batch in batches],
                               np.int64)
    return packed


def _unpacked(chunk: dict, signature: dict):
    """The ``tf.data.Dataset`` of the batches :func:`_packed` joined, each key in the shape of
    ``signature`` (its static dimensions declared)."""
    import tensorflow as tf

    shapes = chunk[_SHAPES]
    rows = shapes[:, 0]
    sizes = {key: rows * shapes[:, column] for column, key in enumerate(signature, 1)}
    starts = {key: tf.cumsum(size, exclusive=True) for key, size in sizes.items()}

    def batch(i):
        return {key: tf.ensure_shape(tf.reshape(chunk[key][starts[key][i]:starts[key][i] + sizes[key][i]],
                                                tf.stack([rows[i], shapes[i, column]])), spec.shape)
                for (column, (key, spec)) in enumerate(signature.items(), 1)}

    return tf.data.Dataset.range(tf.shape(rows, out_type=tf.int64)[0]).map(batch)


@dataclasses.dataclass
class TrainingBatches:
    """Shuffled training batches over one data set (its inputs already transformed by the model,
    :meth:`~awe_tf.models.AWEModel.prepare`), re-drawn each epoch.

    Batches hold at most ``pairs_per_batch`` padded pair slots, fewer where that would make an
    epoch fewer than ``min_steps_per_epoch`` steps (:attr:`batch_pairs`: the data's slots over
    ``min_steps_per_epoch``, and at least room for one example of 8 slots per replica).
    With ``bucketing`` (the default) examples are sorted by their number of labels (ties in a
    fresh random order each epoch) and cut into batches of at most :attr:`batch_pairs` padded
    pair slots, each padded only to its own longest example (rounded up to a multiple of 8);
    the batch order is shuffled. Padding then costs little even when example sizes vary a lot
    (MovieLens users have 15 to 700 items). Without ``bucketing``, every batch has the one static
    shape of the longest example, as TPUs need; a short last batch is filled with masked rows.
    """

    data: Dataset
    pairs_per_batch: int = 1024
    bucketing: bool = True
    seed: int = 0
    context: sp.csr_matrix | None = None  # per-row label weights of an affinity, ``[n, |Y|]``
    replicas: int = 1  # without bucketing, the batch is a multiple of this (each replica its equal share)
    min_steps_per_epoch: int = 1  # the fewest steps an epoch takes, data allowing (class docstring)

    def __post_init__(self):
        if self.context is not None:
            self.context = sp.csr_matrix(self.context, dtype=np.float32)
            self.context.sort_indices()
            rows, labels = self.data.Y.shape
            if self.context.shape[0] != rows or self.context.shape[1] not in (labels, labels + 1):
                raise ValueError(f"context has shape {self.context.shape}, expected {rows} x {labels} (+1)")
            self.context_width = _round8(int(np.diff(self.context.indptr).max()))
        self.X, self.Y, self.rows = training_matrices(self.data)
        self.leave_one_out = self.data.task == RECOMMENDATION
        n_labels_per_row = np.diff(self.Y.indptr)
        self.n_feat = np.diff(self.X.indptr)
        self.n_lab = n_labels_per_row
        self.n_pairs = int(self.Y.nnz)
        slots = int(_round8(self.n_lab[self.rows]).sum())  # each example's labels padded as a batch pads them
        self.batch_pairs = min(self.pairs_per_batch, max(8 * self.replicas, -(-slots // self.min_steps_per_epoch)))
        if self.bucketing:
            # Batch boundaries over the examples sorted by label count: the same every epoch.
            lengths = np.sort(self.n_lab[self.rows])
            self.bounds, start = [], 0
            while start < lengths.size:
                end = start + 1
                while end < lengths.size and (end - start + 1) * _round8(lengths[end]) <= self.batch_pairs:
                    end += 1
                self.bounds.append((start, end))
                start = end
        else:
            self.label_width = _round8(int(self.n_lab[self.rows].max()))
            self.feature_width = _round8(int(self.n_feat[self.rows].max()))
            size = max(1, self.batch_pairs // self.label_width)
            self.batch_size = -(-size // self.replicas) * self.replicas

    def steps_per_epoch(self) -> int:
        if self.bucketing:
            return len(self.bounds)
        return -(-self.rows.size // self.batch_size)

    def batches(self, epoch: int):
        """Yield the batches of one epoch (a fresh shuffle per epoch, seeded by epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        shuffled = rng.permutation(self.rows)
        if self.bucketing:
            ordered = shuffled[np.argsort(self.n_lab[shuffled], kind="stable")]
            plan = [ordered[a:b] for a, b in self.bounds]
        else:
            plan = [shuffled[a : a + self.batch_size] for a in range(0, shuffled.size, self.batch_size)]
        for index in rng.permutation(len(plan)):
            rows = plan[index]
            if self.bucketing:
                yield self.make_batch(rows, _round8(int(self.n_feat[rows].max())),
                                      _round8(int(self.n_lab[rows].max())))
            else:
                if rows.size < self.batch_size:  # masked filler rows keep the one static shape
                    rows = np.concatenate([rows, np.full(self.batch_size - rows.size, -1)])
                yield self.make_batch(rows, self.feature_width, self.label_width)

    def make_batch(self, rows: np.ndarray, feat_width: int, label_width: int) -> dict:
        real = rows >= 0
        safe = np.where(real, rows, rows[0])  # a batch's first row is always real
        n_labels = self.Y.shape[1]
        feature_ids, feature_weights = pad_rows(self.X, safe, feat_width, 0)
        label_ids, _ = pad_rows(self.Y, safe, label_width, n_labels, with_values=False)
        feature_weights[~real] = 0.0
        label_ids[~real] = n_labels
        if self.leave_one_out:
            self_position = self_positions(feature_ids, feature_weights, label_ids, n_labels, real)
        else:
            self_position = np.full(label_ids.shape, -1, np.int32)
        batch = {
            "feature_ids": feature_ids,
            "feature_weights": feature_weights,
            "label_ids": label_ids,
            "self_position": self_position,
        }
        if self.context is not None:
            width = None if self.bucketing else self.context_width
            batch.update(context_batch(self.context, n_labels, width, safe))
            batch["context_weights"][~real] = 0.0
        return batch

    def dataset(self, epochs: int | None = None, start_epoch: int = 0):
        """A ``tf.data.Dataset`` of the batches of ``epochs`` epochs (forever when ``None``, as
        Keras' ``fit(..., steps_per_epoch=batches.steps_per_epoch())`` wants it; ``dataset(1)`` is
        one epoch, for a ``fit`` without ``steps_per_epoch``).

        The batches are made in Python (:meth:`batches`) and handed to TensorFlow in chunks, each
        closed once it holds :data:`CHUNK_BYTES` or its epoch ends, which TensorFlow cuts into
        batches again: each element of a generator costs a call into Python from TensorFlow's
        input thread, and a chunk's call is shared by its batches. The next chunk is made while
        the batches of the last are trained on. Under a multi-worker strategy each worker takes
        every n-th batch once the chunks are cut (tf.data's ``DATA`` sharding), not whole chunks."""
        import tensorflow as tf

        b, f, m = (None, None, None) if self.bucketing else (self.batch_size, self.feature_width, self.label_width)
        signature = {
            "feature_ids": tf.TensorSpec([b, f], tf.int32),
            "feature_weights": tf.TensorSpec([b, f], tf.float32),
            "label_ids": tf.TensorSpec([b, m], tf.int32),
            "self_position": tf.TensorSpec([b, m], tf.int32),
        }
        if self.context is not None:
            t = None if self.bucketing else self.context_width
            signature["context_ids"] = tf.TensorSpec([b, t], tf.int32)
            signature["context_weights"] = tf.TensorSpec([b, t], tf.float32)

        keys = list(signature)

        def generate():  # each epoch's batches in chunks of at least CHUNK_BYTES (an epoch's last may hold less)
            epoch = start_epoch
            while epochs is None or epoch < start_epoch + epochs:
                chunk, size = [], 0
                for batch in self.batches(epoch):
                    chunk.append(batch)
                    size += sum(value.nbytes for value in batch.values())
                    if size >= CHUNK_BYTES:
                        yield _packed(chunk, keys)
                        chunk, size = [], 0
                if chunk:
                    yield _packed(chunk, keys)
                epoch += 1

        packed = {key: tf.TensorSpec([None], spec.dtype) for key, spec in signature.items()}
        packed[_SHAPES] = tf.TensorSpec([None, len(keys) + 1], tf.int64)
        chunks = tf.data.Dataset.from_generator(generate, output_signature=packed).prefetch(1)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return chunks.flat_map(lambda chunk: _unpacked(chunk, signature)).prefetch(4).with_options(options)

    def tensor_dataset(self, epochs: int | None = None, start_epoch: int = 0):
        """The same batches as :meth:`dataset` without ``bucketing``, built only from tensors (no
        Python generator), so that it runs on remote workers (parameter-server training) and TPU
        hosts. Every example is padded once to the static widths and kept in memory; each epoch is
        a fresh seeded shuffle; a short last batch is filled with masked rows, so every batch has
        the same static shape (no example is dropped, as ``drop_remainder`` would)."""
        import tensorflow as tf

        if self.bucketing:
            raise ValueError("a tensor-only pipeline needs bucketing=False (one static batch shape)")
        n_labels = self.Y.shape[1]
        parts = [self.make_batch(self.rows[start:start + PAD_ROWS], self.feature_width, self.label_width)
                 for start in range(0, self.rows.size, PAD_ROWS)]  # bounded temporaries at a million rows
        examples = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        if self.context is not None:
            examples.update(context_batch(self.context, n_labels, self.context_width, self.rows))
        fill = {"feature_ids": 0, "feature_weights": 0.0, "label_ids": n_labels, "self_position": -1,
                "context_ids": n_labels, "context_weights": 0.0}
        size = self.batch_size

        widths = {key: value.shape[1] for key, value in examples.items()}

        def pad(batch):  # and declare the one static shape (XLA and TPUs need it known when traced)
            missing = size - tf.shape(batch["label_ids"])[0]
            return {key: tf.ensure_shape(tf.pad(value, [[0, missing], [0, 0]], constant_values=fill[key]),
                                         [size, widths[key]]) for key, value in batch.items()}

        data = tf.data.Dataset.from_tensor_slices(examples)
        data = data.shuffle(len(self.rows), seed=self.seed, reshuffle_each_iteration=True)
        data = data.batch(size).map(pad).repeat(epochs)
        return data.skip(start_epoch * self.steps_per_epoch()).prefetch(4)

