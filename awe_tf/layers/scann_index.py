"""ScaNN indexes, configured in one place: the same index in memory (ScaNN's pybind searcher, for
training and scoring) and in an export (ScaNN's TensorFlow ops, saved in the SavedModel), so a
served model finds the neighbours the evaluated one found."""

from __future__ import annotations

import numpy as np

from awe_tf.optional import require

BRUTE_FORCE_ROWS = 20_000  # indexes this small are searched exactly (and still fast)


def _configured(builder, n_rows: int, neighbours: int):
    """Brute force up to ``BRUTE_FORCE_ROWS`` rows; above, a k-means tree with anisotropic hashing
    and exact re-ordering. Deterministic (``random_init=False``): every process builds the same."""
    if n_rows <= BRUTE_FORCE_ROWS:
        return builder.score_brute_force()
    leaves = int(min(2000, max(16, np.sqrt(n_rows))))
    return (builder.tree(num_leaves=leaves, num_leaves_to_search=max(8, leaves // 8),
                         training_sample_size=min(n_rows, 250_000), random_init=False)
            .score_ah(2, anisotropic_quantization_threshold=0.2)
            .reorder(max(4 * neighbours, 100)))


def searcher(database: np.ndarray, neighbours: int, metric: str):
    """An in-memory searcher over ``database``'s rows (``metric``: ``dot_product`` or ``squared_l2``)."""
    scann = require("scann", "a ScaNN index")
    database = np.ascontiguousarray(database, np.float32)
    return _configured(scann.scann_ops_pybind.builder(database, neighbours, metric), database.shape[0],
                       neighbours).build()


def serving_index(database: np.ndarray, neighbours: int, metric: str):
    """The same index as :func:`searcher`, built with ScaNN's TensorFlow ops and serialised as a
    ``tf.Module`` (it is saved with the export, and needs ScaNN's ops to load)."""
    scann_ops = require("scann.scann_ops.py.scann_ops", "a ScaNN index")
    database = np.ascontiguousarray(database, np.float32)
    return _configured(scann_ops.builder(database, neighbours, metric), database.shape[0],
                       neighbours).build().serialize_to_module()


def search_serving_index(index, queries, neighbours):
    """The ``neighbours`` (an int or a scalar tensor) best rows of a :func:`serving_index` per
    query, in TensorFlow ops."""
    from scann.scann_ops.py import scann_ops

    ids, _ = scann_ops.searcher_from_module(index).search_batched(queries, final_num_neighbors=neighbours)
    return ids
