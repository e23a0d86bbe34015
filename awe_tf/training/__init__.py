"""Training: fit loops, settings, callbacks (early stopping, resumable checkpoints), and the
choice of an affinity on validation (``--affinity auto``)."""

from awe_tf.config import ModelConfig, TrainConfig
from awe_tf.training.auto import AutoResult, choose_affinity
from awe_tf.training.closed_form import ridge_start, svd_start
from awe_tf.training.fit import FitResult, build_model, fit
from awe_tf.training.iterative import fit_iterative
from awe_tf.training.strategies import make_strategy

__all__ = ["AutoResult", "FitResult", "ModelConfig", "TrainConfig", "build_model", "choose_affinity", "fit",
           "fit_iterative", "make_strategy", "ridge_start", "svd_start"]
