"""Shared by the tests of affinities built from the training set: pair scores computed the way
training computes them, from G rows padded into a batch's context."""

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.data.pipeline import context_batch

PAIR_LABELS = np.array([[[0, 1, 2], [3, 4, 0]]])  # per input: 2 pairs of 3 labels each


def training_pair_scores(model, query_X, G):
    """Scores ``[n, 2, 3]`` of :data:`PAIR_LABELS` for the raw inputs ``query_X`` (features plus
    the model's bias feature, each with its own row of U), given their G rows ``G`` (``[n, |Y|]``)
    as training's padded context; and the labels scored."""
    n, n_features = query_X.shape
    U, V = model.U.table.numpy(), model.V.table.numpy()
    batch = context_batch(sp.csr_matrix(G), G.shape[1])
    labels = PAIR_LABELS.repeat(n, axis=0)
    weights = np.ones((n, n_features + 1), np.float32)
    weights[:, :-1] = query_X
    features = tf.gather(U, np.tile(np.arange(n_features + 1), (n, 1)))
    pair_inputs = model.affinity.pair_inputs(features, weights, -np.ones((n, 2), np.int32),
                                             (batch["context_ids"], batch["context_weights"]))
    return model.affinity.pair_scores(pair_inputs, tf.gather(V, labels), labels).numpy(), labels


def reference_rows_of(train_X, train_Y):
    """The rows an affinity built from the training set keeps (those with a label), as arrays."""
    keep = np.asarray(train_Y).any(axis=1)
    return np.asarray(train_X)[keep], np.asarray(train_Y)[keep]
