"""The SVD start: a linear model (G = 1, WSABIE's f(x, y) = x^T U^T V y) whose U and V start as
the factors of the log-odds SVD baseline (:class:`~awe_tf.baselines.LogOddsSVD`), not as random
draws.

The SVD scores an input as (x P) Q^T (:meth:`~awe_tf.baselines.LogOddsSVD.factors`), so U = aP
and V = bQ rank as it does, for any a, b > 0: exactly, on count and binary features (the model's
input transform scales a row to unit norm, which leaves its ranking as it is); on numeric columns,
which the transform standardises, closely but not exactly. a sets the median norm of the embedded
training inputs to 1 and b the longest row of V to 1, so scores start on the scale of the WARP
margin; both are lowered where a row of U or V would pass ``max_norm``. The bias feature's row
starts at 0; dimensions past the SVD's rank (data of fewer than d + 1 columns) keep their random
start.

Trained from with validation (``fit(..., init_from=svd_start(...))``), the start is scored as
epoch 0 and kept if no epoch beats it: ``--affinity auto``'s candidate "WSABIE from the SVD", for
data where the SVD ranks better than WARP learns to from random U and V.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from awe_tf.baselines.svd import LogOddsSVD
from awe_tf.config import ModelConfig
from awe_tf.data.dataset import Dataset
from awe_tf.training.fit import build_model


def svd_start(train: Dataset, model_config: ModelConfig, strategy=None):
    """A linear model of ``model_config``'s settings (its affinity ignored) for ``train``, U and V
    from the log-odds SVD of ``train`` at rank ``model_config.dimension`` (module docstring)."""
    model = build_model(train, dataclasses.replace(model_config, affinity=None), strategy)
    svd = LogOddsSVD(rank=model_config.dimension, seed=model_config.seed).fit(train)
    P, Q = svd.factors()
    rank = P.shape[1]
    embedded = np.linalg.norm(np.asarray(model.prepare(train.X) @ P), axis=1)
    a = _scale(1.0 / np.median(embedded[embedded > 0]) if np.any(embedded > 0) else 1.0, P, model_config.max_norm)
    b = _scale(1.0 / _longest(Q), Q, model_config.max_norm)
    U, V = model.U.table.numpy(), model.V.table.numpy()
    U[: train.n_features, :rank] = a * P
    U[train.n_features:] = 0.0  # the bias feature's row, where the model has one
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
