"""Training: fit loops, settings, callbacks (early stopping, resumable checkpoints)."""

from awe_tf.config import ModelConfig, TrainConfig
from awe_tf.training.fit import FitResult, build_model, fit
from awe_tf.training.iterative import fit_iterative

__all__ = ["FitResult", "ModelConfig", "TrainConfig", "build_model", "fit", "fit_iterative"]
