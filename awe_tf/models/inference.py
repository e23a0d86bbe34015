"""Scoring and ranking raw input rows with a trained model, in batches that bound memory.

:func:`score` gives every label's score (what evaluation ranks); :func:`top_k` gives the k best
labels through the model's :class:`~awe_tf.layers.retrieval.Retrieval`, the code both export
flavours run. Rows go in as the data file has them; the model's input transform does the rest.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.config import SCORE_BUDGET, check_whole
from awe_tf.data.dataset import RECOMMENDATION
from awe_tf.data.pipeline import NEGATIVE_ITEMS, feature_batch, pad_rows, raw_rows
from awe_tf.memory import return_free_memory
from awe_tf.models.retrieval import Retrieval
from awe_tf.tracing import TracedOnce

ROWS = 512  # the most rows scored at once
PADDED = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.float32)]  # raw rows, padded


class _Graphs:
    """A model's traced scoring functions, one graph each for every batch of padded raw rows."""

    def __init__(self, model):
        # a list of blocks of labels (columns) in order: V's blocks, or one block of all labels
        scored = model.score_by_label_blocks if model.labels_in_blocks() else lambda inputs: [model(inputs)]
        self.scores = TracedOnce(lambda ids, weights: scored(model.model_inputs(ids, weights)), PADDED)
        self.scores_near = TracedOnce(  # G's neighbours found by an index
            lambda ids, weights, neighbours: scored(model.model_inputs(ids, weights, neighbours)),
            [*PADDED, tf.TensorSpec([None, None], tf.int32)])
        self.latent = TracedOnce(  # x^T U_prev, the query of G's neighbour index
            lambda ids, weights: model.affinity.reference_part().graph_embed(*model.transform(ids, weights)), PADDED)
        ranking = [*PADDED, tf.TensorSpec([], tf.int32), tf.TensorSpec([None, None], tf.int32),
                   tf.TensorSpec([None], tf.float32)]
        retrieval = Retrieval(model, label_blocks=model.labels_in_blocks())
        self.retrieve = TracedOnce(
            lambda ids, weights, k, left_out, allowed: retrieval(ids, weights, k, left_out, allowed), ranking)
        self.retrieve_near = TracedOnce(  # G's neighbours found by an index
            lambda ids, weights, k, left_out, allowed, neighbours: retrieval(ids, weights, k, left_out, allowed,
                                                                             neighbours),
            [*ranking, tf.TensorSpec([None, None], tf.int32)])


def forget_graphs(model) -> None:
    """Drop the model's traced scoring graphs (:func:`graphs`), which hold its input transform as
    it was traced: the next scoring traces them with the transform as it is now."""
    model.__dict__.pop("_awe_graphs", None)


def graphs(model) -> _Graphs:
    """The model's scoring graphs for the next batch, traced once per model on first use and kept
    with it (outside Keras' attribute tracking, so they neither get saved nor outlive it); one
    set for each way the tables are read (:attr:`MaxNormEmbedding.read_whole`, which the native
    engine sets while it trains; V whole or in blocks, :meth:`AWEModel.labels_in_blocks`; V's
    blocks sliced from one read or gathered, :meth:`MaxNormEmbedding.whole_reads_copy`).

    It first has TensorFlow hand out V's own buffer on whole reads again
    (:meth:`MaxNormEmbedding.share_buffer`): call it right before running the graph it returns."""
    if "_awe_graphs" not in model.__dict__:
        object.__setattr__(model, "_awe_graphs", {})
    cache = model.__dict__["_awe_graphs"]
    model.V.share_buffer()  # before every batch: the graph's whole reads of V then copy nothing
    reads = (model.U.read_whole, model.V.read_whole, model.labels_in_blocks(), model.V.whole_reads_copy())
    if reads not in cache:
        cache[reads] = _Graphs(model)
    return cache[reads]


def check_rows(model, X) -> sp.csr_matrix:
    """Raw input rows as a float32 CSR matrix (repeats summed, zeros dropped), checked against |X|
    and for bad values: for a recommendation model, whose inputs are items with the weights of an
    interactions file, a negative weight too (no reader gives one, and it would not be read as
    training read its data), and a category coded otherwise than its reader does (the value's
    place in its list as a weight, two values of one attribute: a row training never saw)."""
    X = raw_rows(X, model.n_features, model.label_names if model.data_task == RECOMMENDATION else None)
    if model.data_task == RECOMMENDATION and X.nnz and X.data.min() < 0:
        raise ValueError(f"{NEGATIVE_ITEMS}, got {X.data[X.data < 0][:3].tolist()}")
    wrong = model.transform.coding_error(X)
    if wrong:
        raise ValueError(f"inputs: {wrong}")
    return X


def _widths(model, X: sp.csr_matrix) -> np.ndarray:
    """The most features each raw row has once transformed (its numeric block and bias included)."""
    numeric = 0 if model.transform.numeric is None else model.transform.numeric.size
    return np.diff(X.indptr) + numeric + model.input_bias


def _rows_fitting(model, width: int) -> int:
    """Rows scored at once: a batch's scores (times the affinity's cost) stay near 64 MB, and so
    does a neighbour affinity's search over its training inputs."""
    rows = SCORE_BUDGET // (model.n_labels * model.affinity.cost_per_score(int(width)))
    source = model.affinity.reference_part()
    if source is not None:
        rows = min(rows, source.queries_per_batch())
    return max(1, min(ROWS, rows))


def row_batches(model, X: sp.csr_matrix, batch_size: int | None = None) -> list[np.ndarray]:
    """Row indices of each scoring batch: ``batch_size`` rows at a time in order, or, by
    default, as many as keep a batch near the scoring budget. Where the cost of a score grows
    with the input's length (per-feature-pair affinities), rows are then taken shortest first,
    so short rows share large batches and only long ones go a few at a time."""
    n = X.shape[0]
    widths = _widths(model, X)
    if batch_size is not None:
        check_whole("batch_size", batch_size, 1)
    if batch_size is None and model.affinity.cost_per_score(2) == 1:  # cost independent of length
        batch_size = _rows_fitting(model, int(widths.max()) if n else 1)
    if batch_size is not None:
        return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    order = np.argsort(widths, kind="stable")
    plan, start = [], 0
    while start < n:
        size = ROWS
        while (fits := _rows_fitting(model, widths[order[min(start + size, n) - 1]])) < size:
            size = fits  # the longest row of a smaller batch may be shorter: try again
        plan.append(order[start : start + size])
        start += size
    return plan


def score(model, X, batch_size: int | None = None) -> np.ndarray:
    """Scores ``[n, |Y|]`` of raw input rows (:meth:`AWEModel.score`)."""
    X = check_rows(model, X)
    model.affinity.check_ready()
    out = np.empty((X.shape[0], model.n_labels), np.float32)
    for index in row_batches(model, X, batch_size):
        batch = feature_batch(X[index])
        ids, weights = batch["feature_ids"], batch["feature_weights"]
        neighbours = _index_neighbours(model, ids, weights)
        if neighbours is not None:
            scores = graphs(model).scores_near(ids, weights, neighbours)
        else:
            scores = graphs(model).scores(ids, weights)
        blocks = [np.asarray(block) for block in scores]  # each a block of labels, together every label
        for block in blocks:
            check_score_shape(model.affinity, block.shape, len(index), None)
        check_score_shape(model.affinity, (len(index), sum(block.shape[1] for block in blocks)), len(index),
                          model.n_labels)
        column = 0
        for block in blocks:
            out[index, column : column + block.shape[1]] = block
            column += block.shape[1]
    return out


def check_score_shape(affinity, shape, rows: int | None, labels: int | None) -> None:
    """Refuse scores (an affinity's ``score_all``) whose shape is not ``[rows, labels]``, where
    known (None: not known, a graph's batch as it is traced; a block's labels), which written into
    an answer would leave parts of it unset or repeat one row's. ``shape``: an array's, or a graph
    tensor's (not checked where its rank is unknown).

    Raises:
        ValueError: naming the affinity, the shape and the one expected.
    """
    if isinstance(shape, tf.TensorShape):
        if shape.rank is None:
            return
        shape = shape.as_list()
    shape = list(shape)
    known = [(got, want) for got, want in zip(shape, (rows, labels), strict=False) if None not in (got, want)]
    if len(shape) != 2 or any(got != want for got, want in known):
        batch = f" for a batch of {rows} rows" if rows is not None else ""
        wanted = f"[{'batch' if rows is None else rows}, {'|Y|' if labels is None else labels}]"
        raise ValueError(f"{type(affinity).__name__}.score_all returned scores of shape {shape}{batch}; it returns one "
                         f"score per row and label, {wanted} here")


def _index_neighbours(model, ids, weights):
    """G's neighbours of a batch from the affinity's in-memory index (``search="scann"``, the
    index an export saves), or None: exact search, in the graph."""
    source = model.affinity.reference_part()
    if source is None or not source.searches_by_index:
        return None
    return source.search_index(graphs(model).latent(ids, weights).numpy()).astype(np.int32)


def exclusions(model, X: sp.csr_matrix, exclude=None, exclude_inputs: bool | None = None):
    """The labels a ranking of raw rows ``X`` leaves out, as a boolean CSR ``[n, |Y|]`` (or
    None): ``exclude``, plus each row's own items when ``exclude_inputs`` (default: for a
    recommendation model, whose inputs are items)."""
    if exclude_inputs is None:
        exclude_inputs = model.data_task == RECOMMENDATION
    if exclude_inputs and model.data_task != RECOMMENDATION:
        raise ValueError("exclude_inputs is for recommendation models, whose inputs are their labels")
    parts = []
    if exclude is not None:
        exclude = sp.csr_matrix(exclude, dtype=bool, copy=True)
        exclude.eliminate_zeros()  # a stored 0 excludes nothing, as in evaluation's ranking
        if exclude.shape != (X.shape[0], model.n_labels):
            raise ValueError(f"exclude has shape {exclude.shape}, expected {(X.shape[0], model.n_labels)}")
        parts.append(exclude)
    if exclude_inputs:
        parts.append(sp.csr_matrix(X, dtype=bool))
    if not parts:
        return None
    return sp.csr_matrix(sum(parts[1:], parts[0]), dtype=bool)


def allowed_labels(model, candidates=None) -> np.ndarray:
    """``[|Y|]`` 1 for the labels a ranking may return: those the model may rank (for
    recommendation, the items seen in training), narrowed to ``candidates`` if given."""
    allowed = (model.rankable.numpy() > 0).astype(np.float32)
    if candidates is not None:
        ids = np.asarray(candidates)
        ids = ids.astype(np.int64) if ids.size == 0 else ids
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(f"candidates must be a list of whole label ids, got {ids.dtype} values, shape {ids.shape}")
        if ((ids < 0) | (ids >= model.n_labels)).any():
            raise ValueError(f"candidates must be label ids from 0 to {model.n_labels - 1}, got "
                             f"{ids[(ids < 0) | (ids >= model.n_labels)][:3].tolist()}")
        chosen = np.zeros(model.n_labels, np.float32)
        chosen[ids.astype(np.int64)] = 1.0
        allowed *= chosen
    return allowed


def top_k(model, X, k: int = 10, exclude=None, candidates=None, exclude_inputs: bool | None = None):
    """The ``k`` best labels per raw row, best first: ``(label ids [n, k], scores [n, k])``
    (:meth:`AWEModel.top_k`)."""
    X = check_rows(model, X)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, got {k!r}")
    k = int(min(k, model.n_labels))  # at most |Y| columns
    model.affinity.check_ready()
    left_out = exclusions(model, X, exclude, exclude_inputs)
    allowed = tf.constant(allowed_labels(model, candidates))
    plan = row_batches(model, X)
    ids, scores = [], []
    for index in plan:
        batch = feature_batch(X[index])
        if left_out is not None:
            rows = left_out[index]
            rows.sort_indices()
            width = max(1, int(np.diff(rows.indptr).max(initial=0)))
            out_ids = pad_rows(rows, np.arange(rows.shape[0]), width, model.n_labels, with_values=False)[0]
        else:
            out_ids = np.full((len(index), 1), model.n_labels, np.int32)
        ids_, weights = batch["feature_ids"], batch["feature_weights"]
        arguments = (ids_, weights, tf.constant(k, tf.int32), tf.constant(out_ids), allowed)
        neighbours = _index_neighbours(model, ids_, weights)
        if neighbours is not None:
            found, values = graphs(model).retrieve_near(*arguments, neighbours)
        else:
            found, values = graphs(model).retrieve(*arguments)
        ids.append(found.numpy().astype(np.int64))
        scores.append(values.numpy())
    if not ids:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    order = np.concatenate(plan)
    out_ids, out_scores = np.empty((X.shape[0], k), np.int64), np.empty((X.shape[0], k), np.float32)
    out_ids[order], out_scores[order] = np.concatenate(ids), np.concatenate(scores)
    return_free_memory()  # what the batches' scores left held by the C heap, as evaluation does
    return out_ids, out_scores
