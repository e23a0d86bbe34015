"""Linear models made in closed form, nothing trained: G = 1, WSABIE's f(x, y) = x^T U^T V y,
with U and V the factors of the log-odds SVD baseline (:func:`svd_start`) or of reduced-rank
ridge regression (:func:`ridge_start`) instead of learnt ones. ``--affinity auto`` has both among
its candidates, for data where one ranks better than WARP learns to; WARP can also train from
either (``fit(..., init_from=svd_start(...))``, the start scored as epoch 0 and kept if no epoch
beats it).

Each scores an input as (z P) Q^T for factors P (a row per input feature) and Q (a row per
label), so U = aP and V = bQ rank every label as it does, for any a, b > 0. a sets the median
norm of the embedded training inputs to 1 and b the longest row of V to 1, so that scores are on
the scale of the WARP margin; both are lowered where a row of U or V would pass ``max_norm``. The
dimensions past the factors' rank are 0 (and stay 0 in training: a dimension's gradient in U is
its value in V and the other way round).

* The SVD is fitted as the reports fit it (numeric columns standardised,
  :func:`~awe_tf.evaluation.standardiser`); the model's input transform standardises the same
  way and then scales a row to unit norm, which leaves the row's ranking as it is. (A row with a
  feature the model leaves out, :attr:`~awe_tf.layers.transform.InputTransform.ignored`, is
  ranked without it; no training row has one.) The bias feature's row holds a label prior too
  small to reorder a row's ranking but among near-equal scores (at most :data:`PRIOR_SCALE`
  times a training score's typical size): a row with nothing the model uses (a user
  with no training item, common in a test file of a later period) scores 0 for every label by
  the SVD, and is ranked by the prior, the labels' training frequency as nearly as V's rows
  allow (least squares), instead of by label order. The rank is the
  one asked for (d by default; ``--affinity auto`` chooses among
  :func:`~awe_tf.baselines.svd_ranks`), lower only on data of fewer rows, or fewer features and
  labels together, where the scores' rank is at most min(|X| + 1, |Y|) anyway; the dimensions
  past it are 0.
* Ridge regresses the labels on the inputs as the model sees them (its input transform, and the
  bias feature where the model has one, which then holds each label's intercept), cut to rank d;
  its basis is every one of the inputs' right singular vectors up to 2,048 input columns or 8d,
  else their top 8d (:class:`~awe_tf.baselines.ReducedRankRidge`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from awe_tf.baselines.ridge import ReducedRankRidge
from awe_tf.baselines.svd import LogOddsSVD
from awe_tf.config import ModelConfig
from awe_tf.data.dataset import Dataset
from awe_tf.evaluation import scaled_by, standardiser
from awe_tf.models.awe import AWEModel
from awe_tf.training.fit import build_model

RIDGE_BASIS = 8  # ridge's basis, in multiples of d
PRIOR_SCALE = 1e-6  # the SVD model's label prior, at most this times a training score's typical size


def svd_start(train: Dataset, model_config: ModelConfig, strategy=None, rank: int | None = None) -> AWEModel:
    """The log-odds SVD of ``train`` as a linear model (module docstring).

    Args:
        train: the training data, raw values (the model's transform is adapted to it, and the
            SVD fitted on it with its numeric columns standardised).
        model_config: the model's settings; its affinity is ignored (G = 1), its ``dimension``
            is the SVD's rank unless ``rank`` is given, its ``max_norm`` bounds the rows and its
            ``seed`` seeds the SVD.
        strategy: the ``tf.distribute`` strategy the model is made under (default: the current).
        rank: the SVD's rank, from 1 to ``dimension`` (:func:`~awe_tf.baselines.svd_ranks` are
            the ranks the reports and ``--affinity auto`` try).

    Returns:
        An untrained linear :class:`~awe_tf.models.AWEModel` holding the SVD's U and V.
    """
    return next(svd_starts(train, model_config, (model_config.dimension if rank is None else rank,), strategy))[1]


def svd_starts(train: Dataset, model_config: ModelConfig, ranks, strategy=None):
    """Yield ``(rank, model)`` for each of ``ranks`` in turn, as :func:`svd_start` makes it, the
    SVD factorised once at the largest. A rank past what the data allows (fewer rows, or fewer
    features and labels together) is made at that, and still named as asked, so that a part of
    fewer rows names its models as the whole part does. It is one model whose U and V are set
    anew for each rank: use each before asking for the next."""
    if not 1 <= min(ranks) <= max(ranks) <= model_config.dimension:
        raise ValueError(f"SVD ranks must be from 1 to the model's dimension {model_config.dimension}, got {ranks}")
    model = build_model(train, dataclasses.replace(model_config, affinity=None), strategy)
    transform = standardiser(train)
    scaled = train if transform is None else scaled_by(train, transform)
    svd = LogOddsSVD(rank=max(ranks), seed=model_config.seed).fit(scaled)
    Z = model.prepare(train.X)
    frequency = np.log1p(np.asarray(train.Y.sum(axis=0), np.float64).ravel())
    for rank in ranks:
        _set_factors(model, Z, *svd.factors(rank), prior=frequency - frequency.mean())  # at most the fitted rank
        yield rank, model


def ridge_start(train: Dataset, model_config: ModelConfig, penalty: float = 1.0, strategy=None) -> AWEModel:
    """Reduced-rank ridge regression of ``train``'s labels on its inputs as a linear model
    (module docstring).

    Args:
        train: the training data, raw values (the model's transform is adapted to it, and the
            regression fitted on the inputs as the model transforms them).
        model_config: the model's settings; its affinity is ignored (G = 1), its ``dimension``
            is the rank the weights are cut to, its ``max_norm`` bounds the rows, its
            ``input_bias`` gives the regression an intercept and its ``seed`` seeds the basis.
        penalty: lambda, above 0.
        strategy: the ``tf.distribute`` strategy the model is made under (default: the current).

    Returns:
        An untrained linear :class:`~awe_tf.models.AWEModel` holding ridge's U and V.
    """
    return next(ridge_starts(train, model_config, (penalty,), strategy))[1]


def ridge_starts(train: Dataset, model_config: ModelConfig, penalties, strategy=None):
    """Yield ``(penalty, model)`` for each of ``penalties`` in turn, as :func:`ridge_start` makes
    it, the regression's basis found once. It is one model whose U and V are set anew for each
    penalty: use each before asking for the next."""
    model = build_model(train, dataclasses.replace(model_config, affinity=None), strategy)
    Z = model.prepare(train.X)
    if model.input_bias:
        Z = sp.hstack([Z, np.ones((Z.shape[0], 1), np.float32)], format="csr")
    ridge = ReducedRankRidge(rank=model_config.dimension, basis=RIDGE_BASIS * model_config.dimension,
                             seed=model_config.seed).fit(Z, train.Y)
    for penalty in penalties:
        P, Q = ridge.factors(penalty)
        _set_factors(model, Z, P, Q)
        yield penalty, model


def _set_factors(model: AWEModel, Z, P: np.ndarray, Q: np.ndarray, prior: np.ndarray | None = None) -> None:
    """U = aP and V = bQ (module docstring), with ``Z`` the training inputs as P's rows embed
    them; dimensions past the rank are 0, and so are rows of U past P's (the bias feature's,
    where P has none) but for ``prior``: label scores ``[|Y|]`` the bias feature's row gives, as
    nearly as V's rows allow (least squares), scaled to :data:`PRIOR_SCALE` times a score's typical
    size at most."""
    rank = P.shape[1]
    embedded = np.linalg.norm(np.asarray(Z @ P), axis=1)
    a = _scale(1.0 / np.median(embedded[embedded > 0]) if np.any(embedded > 0) else 1.0, P, model.max_norm)
    b = _scale(1.0 / _longest(Q), Q, model.max_norm)
    U = np.zeros(model.U.table.shape, np.float32)
    V = np.zeros(model.V.table.shape, np.float32)
    U[: P.shape[0], :rank] = a * P
    V[:, :rank] = b * Q
    if prior is not None and model.input_bias and P.shape[0] == model.n_features:
        factors = V[:, :rank]  # least squares by its normal equations: no float64 copy of a million rows
        gram = (factors.T @ factors).astype(np.float64)
        row = np.linalg.lstsq(gram, (factors.T @ prior.astype(np.float32)).astype(np.float64), rcond=None)[0]
        row = row.astype(np.float32)
        largest = float(np.abs(factors @ row).max(initial=0.0))
        if largest > 0:
            U[model.n_features, :rank] = row * (PRIOR_SCALE * _typical_score(Z, U[: P.shape[0]], V) / largest)
    model.U.table.assign(U)
    model.V.table.assign(V)


def _typical_score(Z, U: np.ndarray, V: np.ndarray, rows: int = 256, labels: int = 4096) -> float:
    """The median size of the non-zero scores ``Z U V^T`` of at most ``rows`` training inputs with a
    value, spread over Z, against at most ``labels`` labels spread over V (a sample: all of them at
    a million labels would not fit); 1 where none is non-zero. (Empty rows, users only in a test
    file, and the zero rows of V of the labels no training row holds are left out: counted, they
    could make the median 0.)"""
    Z = sp.csr_matrix(Z)
    filled = np.flatnonzero(Z.getnnz(axis=1) > 0)
    some_rows = filled[np.linspace(0, filled.size - 1, min(rows, filled.size)).astype(np.int64)] if filled.size \
        else np.zeros(0, np.int64)
    some = np.linspace(0, V.shape[0] - 1, min(labels, V.shape[0])).astype(np.int64)
    sizes = np.abs(np.asarray(Z[some_rows] @ U) @ V[some].T).ravel()
    sizes = sizes[sizes > 0]
    return float(np.median(sizes)) if sizes.size else 1.0


def _longest(rows: np.ndarray) -> float:
    longest = float(np.linalg.norm(rows, axis=1).max(initial=0.0))
    return longest if longest > 0 else 1.0


def _scale(wanted: float, rows: np.ndarray, max_norm: float) -> float:
    """``wanted``, lowered so that no row of ``rows`` times it passes ``max_norm``."""
    return min(wanted, max_norm / _longest(rows))
