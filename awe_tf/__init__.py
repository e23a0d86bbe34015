"""awe-tf: Affinity Weighted Embedding (Weston, Weiss & Yee) on TensorFlow / TFRS.

Names used throughout, from the paper:

* ``U`` -- the input embedding, one d-dimensional row per input feature (|X| x d).
* ``V`` -- the label embedding, one d-dimensional row per label (|Y| x d).
* ``G`` -- the affinity: a weight G_ij(x, y) on each feature-pair term x_i U_i^T V_j y_j.
  A constant G gives the linear embedding model WSABIE, f(x, y) = x^T U^T V y.
* ``WARP`` -- the Weighted Approximate-Rank Pairwise loss that trains U, V (and G).

TensorFlow Recommenders needs Keras 2, so ``TF_USE_LEGACY_KERAS=1`` is set here, before
TensorFlow is first imported; ``tf.keras`` is then ``tf_keras``.
"""

import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no CUDA/oneDNN start-up noise on CPU machines
if _os.environ["TF_USE_LEGACY_KERAS"] != "1":
    raise ImportError(
        "awe_tf needs TF_USE_LEGACY_KERAS=1 (TensorFlow Recommenders runs on Keras 2); "
        f"it is set to {_os.environ['TF_USE_LEGACY_KERAS']!r} in this process."
    )
if "tensorflow" in __import__("sys").modules:  # pragma: no cover - depends on import order
    import tensorflow as _tf

    if not _tf.keras.__name__.startswith("tf_keras"):
        raise ImportError(
            "TensorFlow was imported before awe_tf with Keras 3 as tf.keras. Import awe_tf "
            "first, or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow."
        )

__version__ = "0.1.0"

from awe_tf.data import Dataset, list_datasets, load_dataset  # noqa: E402

_LAZY = {  # TensorFlow-heavy parts load on first use, so `awe-tf datasets` and the data layer stay fast
    "AWEModel": "awe_tf.models",
    "ModelConfig": "awe_tf.config",
    "TrainConfig": "awe_tf.config",
    "fit": "awe_tf.training",
    "fit_iterative": "awe_tf.training",
    "evaluate_model": "awe_tf.evaluation",
}
# Subpackages and modules reached as attributes on first use (``awe_tf.models.AWEModel`` after
# ``import awe_tf`` alone), listed, so nothing else (a data folder, a dotted name) is imported.
_SUBMODULES = ("affinities", "baselines", "cli", "config", "data", "diagnostics", "distribute", "evaluation",
               "layers", "memory", "metrics", "models", "native", "optional", "reproduction", "runs", "serving",
               "tasks", "tracing", "training", "tuning")
__all__ = ["Dataset", "load_dataset", "list_datasets", "__version__", *_LAZY]


def __getattr__(name):
    """The lazy names and the subpackages above, imported on first use."""
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'awe_tf' has no attribute {name!r}")


def __dir__():
    """What ``import awe_tf`` reaches, lazy names and subpackages included (tab completion)."""
    return sorted({*globals(), *_LAZY, *_SUBMODULES})
