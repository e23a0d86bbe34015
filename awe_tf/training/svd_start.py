"""The log-odds SVD baseline (:class:`~awe_tf.baselines.LogOddsSVD`) as a linear model: G = 1,
WSABIE's f(x, y) = x^T U^T V y, with U and V the SVD's factors instead of learnt ones.
``--affinity auto`` has it, as it is, among its candidates, for data where the SVD ranks better
than WARP learns to; WARP can also train from it (``fit(..., init_from=svd_start(...))``, the
start scored as epoch 0 and kept if no epoch beats it), hence the name.

The SVD, fitted as the reports fit it (numeric columns standardised,
:func:`~awe_tf.evaluation.standardiser`), scores an input as (x P) Q^T
(:meth:`~awe_tf.baselines.LogOddsSVD.factors`), so U = aP and V = bQ rank every label as it does,
for any a, b > 0: the model's input transform standardises the same way and then scales a row to
unit norm, which leaves the row's ranking as it is. (A row with a feature the model leaves out,
:attr:`~awe_tf.layers.transform.InputTransform.ignored`, is ranked without it; no training row
has one.) a sets the median norm of the embedded training inputs to 1 and b the longest row of V
to 1, so that scores are on the scale of the WARP margin; both are lowered where a row of U or V
would pass ``max_norm``. The bias feature's row is 0, and so are the dimensions past the SVD's
rank (which stay 0 in training: a dimension's gradient in U is its value in V and the other way
round). The rank is below d only on data of at most d rows, or of at most d features and labels
together, where the scores' rank is at most min(|X| + 1, |Y|) anyway.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from awe_tf.baselines.svd import LogOddsSVD
from awe_tf.config import ModelConfig
from awe_tf.data.dataset import Dataset
from awe_tf.evaluation import standardiser
from awe_tf.models.awe import AWEModel
from awe_tf.training.fit import build_model


def svd_start(train: Dataset, model_config: ModelConfig, strategy=None) -> AWEModel:
    """The log-odds SVD of ``train`` as a linear model (module docstring).

    Args:
        train: the training data, raw values (the model's transform is adapted to it, and the
            SVD fitted on it with its numeric columns standardised).
        model_config: the model's settings; its affinity is ignored (G = 1), its ``dimension``
            is the SVD's rank, its ``max_norm`` bounds the rows and its ``seed`` seeds the SVD.
        strategy: the ``tf.distribute`` strategy the model is made under (default: the current).

    Returns:
        An untrained linear :class:`~awe_tf.models.AWEModel` holding the SVD's U and V.
    """
    model = build_model(train, dataclasses.replace(model_config, affinity=None), strategy)
    transform = standardiser(train)
    scaled = train if transform is None else train.with_matrices(X=transform.apply(train.X))
    P, Q = LogOddsSVD(rank=model_config.dimension, seed=model_config.seed).fit(scaled).factors()
    rank = P.shape[1]
    embedded = np.linalg.norm(np.asarray(model.prepare(train.X) @ P), axis=1)
    a = _scale(1.0 / np.median(embedded[embedded > 0]) if np.any(embedded > 0) else 1.0, P, model_config.max_norm)
    b = _scale(1.0 / _longest(Q), Q, model_config.max_norm)
    U = np.zeros(model.U.table.shape, np.float32)  # the bias row and the dimensions past the rank: 0
    V = np.zeros(model.V.table.shape, np.float32)
    U[: train.n_features, :rank] = a * P
    V[:, :rank] = b * Q
    model.U.table.assign(U)
    model.V.table.assign(V)
    return model


def _longest(rows: np.ndarray) -> float:
    longest = float(np.linalg.norm(rows, axis=1).max(initial=0.0))
    return longest if longest > 0 else 1.0


def _scale(wanted: float, rows: np.ndarray, max_norm: float) -> float:
    """``wanted``, lowered so that no row of ``rows`` times it passes ``max_norm``."""
    return min(wanted, max_norm / _longest(rows))
