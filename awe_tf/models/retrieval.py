"""Top-k retrieval: the k best labels of input rows, as :meth:`AWEModel.top_k` and both export
flavours compute them (the counterpart of TFRS's ``BruteForce`` and ``ScaNN`` layers).

A ranking takes its candidate labels from one of three sources, then scores them exactly with
the AWE score and keeps the k best, ties going to the lower label id:

* every label (brute force), in the process a block of V's rows at a time where
  :meth:`AWEModel.labels_in_blocks` says so (``label_blocks``);
* G's own labels, for affinities whose G is zero outside a per-input set (k-NN, cluster): those
  are scored, and every other label scores its prior (the bias feature's U_bias . V_y, or 0),
  so they are taken in prior order, as many as may be needed;
* a ScaNN index over the label embeddings V (the ``scann`` export), fetching ``fetch`` labels,
  plus as many as a row may not return, for the query x^T U.

Every source leaves out, per row, a sorted list of label ids (``left_out``, padded with |Y|: a
user's own items, labels a request excludes) and, for all rows, the labels ``allowed`` marks 0
(a recommendation model's items never seen in training). Slots no label can fill get id -1 and
score -inf. TensorFlow ops only: the same code runs eagerly in batches and in a SavedModel.

:class:`Retrieval` is a ``tf.Module``, not a Keras layer: an export saves it (with its ScaNN
indexes) in a plain SavedModel, without Keras' layer serialisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from awe_tf.layers.scann_index import search_serving_index

NO_LABEL = -1


def _member(sorted_ids, ids):
    """Whether each of ``ids`` ``[B, n]`` is in its row of ``sorted_ids`` ``[B, m]`` (sorted; m may
    be 0: a request's empty ``exclude_ids``). A last column of the dtype's largest value, which
    no id equals, gives every search a place to land."""
    sorted_ids = tf.pad(sorted_ids, [[0, 0], [0, 1]], constant_values=sorted_ids.dtype.max)
    return tf.equal(tf.gather(sorted_ids, tf.searchsorted(sorted_ids, ids), batch_dims=1), ids)


def best(ids, scores, k):
    """The ``k`` best of each row's ``(ids, scores)`` ``[B, n]``, best first, ties to the lower
    id; ``-inf`` scores become id -1."""
    by_id = tf.argsort(ids, axis=1, stable=True)
    ids, scores = tf.gather(ids, by_id, batch_dims=1), tf.gather(scores, by_id, batch_dims=1)
    order = tf.argsort(-scores, axis=1, stable=True)[:, :k]
    ids, scores = tf.gather(ids, order, batch_dims=1), tf.gather(scores, order, batch_dims=1)
    return tf.where(scores > -np.inf, ids, NO_LABEL), scores


def best_by_blocks(blocks: Iterable[tf.Tensor], k, mask: Callable | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """The ``k`` best of each row over blocks of scores ``[B, n_i]`` of consecutive labels (the
    first block's from label 0), best first, ties to the lower id: what one ``tf.math.top_k``
    over the blocks joined returns, holding only a block and the k best so far at a time.

    Args:
        blocks: the score blocks, in label order.
        k: how many to keep (a scalar tensor or int).
        mask: ``(ids, scores) -> scores`` applied to each block first (e.g. -inf where a label
            may not be returned), or None.

    Returns:
        ``(ids [B, min(k, labels)], scores)``; where a slot's score is -inf its id is any label.
    """
    ids = scores = None
    start = 0
    for block in blocks:
        width = tf.shape(block)[1]
        block_ids = tf.broadcast_to(tf.range(start, start + width)[None, :], tf.shape(block))
        if mask is not None:
            block = mask(block_ids, block)
        top_scores, top = tf.math.top_k(block, tf.minimum(k, width))  # ties: the lower index first
        top += start
        if ids is not None:  # the k best so far first: on a tie their lower ids win
            top_scores, order = tf.math.top_k(tf.concat([scores, top_scores], 1), tf.minimum(k, start + width))
            top = tf.gather(tf.concat([ids, top], 1), order, batch_dims=1)
        ids, scores, start = top, top_scores, start + width
    return ids, scores


class _Unsaved:
    """Holds the Keras model out of sight of SavedModel tracking (its variables are saved by
    whoever exports them)."""

    def __init__(self, model):
        self.model = model


class Retrieval(tf.Module):
    """The k best labels of padded raw rows, by one of the sources of the module docstring.

    Args:
        model: a trained :class:`~awe_tf.models.AWEModel`.
        label_index: a ScaNN index over V (:func:`~awe_tf.layers.scann_index.serving_index`), or None.
        fetch: labels that index fetches per row before re-ranking (the largest k).
        neighbour_index: a ScaNN index over G's training inputs, to find its neighbours, or None
            (exact search, or neighbours given to each call).
        neighbours: neighbours that index returns per row.
        label_blocks: rank every label a block of V's rows at a time, keeping each row's k best
            so far (:meth:`AWEModel.score_by_label_blocks`), where scoring in this process reads
            V in blocks (:meth:`AWEModel.labels_in_blocks`); exports read V whole.
    """

    def __init__(self, model, label_index=None, fetch: int = 0, neighbour_index=None, neighbours: int = 0,
                 label_blocks: bool = False):
        super().__init__(name="retrieval")
        self._model = _Unsaved(model)
        self.label_index, self.fetch = label_index, int(fetch)
        self.neighbour_index, self.neighbours = neighbour_index, int(neighbours)
        self.n_labels = model.n_labels
        self.label_blocks = bool(label_blocks)

    def __call__(self, feature_ids, feature_weights, k, left_out, allowed, neighbours=None):
        """``(label ids [B, k], scores [B, k])`` of padded raw rows (padding: value 0).

        Args:
            left_out: ``[B, E]`` label ids each row may not return, sorted, padded with |Y|.
            allowed: ``[|Y|]``, non-zero for the labels any row may return.
            neighbours: ``[B, c]`` G's neighbours of each row, found outside (by the affinity's
                in-memory index), or None.
        """
        if self.label_index is not None:
            return self._index_candidates(feature_ids, feature_weights, k, left_out, allowed)
        model = self._model.model
        if self.neighbour_index is not None:
            source = model.affinity.reference_part()
            ids, weights = model.transform(feature_ids, feature_weights)
            neighbours = search_serving_index(self.neighbour_index,
                                              source.index_queries(source.graph_embed(ids, weights)), self.neighbours)
        inputs = model.model_inputs(feature_ids, feature_weights, neighbours)
        if model.affinity.candidates_only:
            return self._context_candidates(inputs, k, left_out, allowed)
        blocks = model.score_by_label_blocks(inputs) if self.label_blocks else [model(inputs)]
        ids, scores = best_by_blocks(
            blocks, k, lambda ids, scores: self._masked(ids, scores, left_out, allowed))
        return tf.where(scores > -np.inf, ids, NO_LABEL), scores

    def _masked(self, ids, scores, left_out, allowed):
        """``scores`` of ``ids``, -inf where the label is not one its row may return."""
        usable = (ids < self.n_labels) & ~_member(left_out, ids)
        usable &= tf.gather(allowed, tf.minimum(ids, self.n_labels - 1)) > 0
        return tf.where(usable, scores, -np.inf)

    def _rank(self, ids, scores, k, left_out, allowed):
        """The k best of candidate ``ids`` with ``scores``, leaving out what may not be returned."""
        return best(ids, self._masked(ids, scores, left_out, allowed), k)

    def _context_candidates(self, inputs, k, left_out, allowed):
        """G's labels scored; every other label scores its prior, so the best of them are the
        first in prior order that a row may return."""
        model = self._model.model
        ids = inputs["context_ids"]
        scores = model.candidate_scores(inputs)
        prior = tf.where(allowed > 0, model.label_prior(), -np.inf)  # labels no row may return come last
        blocked = tf.sort(tf.concat([ids, left_out], 1), axis=1)
        width = tf.minimum(self.n_labels, k + tf.shape(blocked)[1])  # enough to leave k after the blocked
        fill_scores, fill_ids = tf.math.top_k(prior, width)  # ties: the lower id first
        batch = tf.shape(ids)[0]
        fill_ids = tf.tile(fill_ids[None, :], [batch, 1])
        fill_scores = tf.where(_member(blocked, fill_ids), -np.inf, tf.tile(fill_scores[None, :], [batch, 1]))
        return self._rank(tf.concat([ids, fill_ids], 1), tf.concat([scores, fill_scores], 1), k, left_out, allowed)

    def _index_candidates(self, feature_ids, feature_weights, k, left_out, allowed):
        """ScaNN's candidates for x^T U, re-ranked by their exact AWE scores. Each row fetches as
        many more as labels it may not return, so k of them are still left."""
        model = self._model.model
        ids, weights = model.transform(feature_ids, feature_weights)
        bias_ids, bias_weights = model.with_bias(ids, weights)
        features = model.U(bias_ids)
        query = tf.reduce_sum(features * bias_weights[..., None], axis=1)
        extra = tf.reduce_max(tf.reduce_sum(tf.cast(left_out < self.n_labels, tf.int32), axis=1))
        unrankable = tf.reduce_sum(tf.cast(allowed <= 0, tf.int32))
        fetch = tf.minimum(self.fetch + extra + unrankable, self.n_labels)
        candidates = search_serving_index(self.label_index, query, fetch)
        no_drop = -tf.ones([tf.shape(ids)[0], 1], tf.int32)
        pair_inputs = model.affinity.pair_inputs(features, bias_weights, no_drop, None, bias_ids)
        scores = model.affinity.pair_scores(pair_inputs, model.V(candidates)[:, None], candidates[:, None])[:, 0]
        return self._rank(candidates, scores, k, left_out, allowed)
