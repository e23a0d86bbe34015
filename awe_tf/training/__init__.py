"""Training: fit loops, settings, callbacks (early stopping, resumable checkpoints).

The settings (:mod:`.config`) load without TensorFlow, so the command line can show its
defaults quickly; the fit loops load on first use.
"""

from awe_tf.training.config import ModelConfig, TrainConfig

_LAZY = {"FitResult": "awe_tf.training.fit", "build_model": "awe_tf.training.fit", "fit": "awe_tf.training.fit",
         "fit_iterative": "awe_tf.training.iterative"}
__all__ = ["FitResult", "ModelConfig", "TrainConfig", "build_model", "fit", "fit_iterative"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'awe_tf.training' has no attribute {name!r}")
