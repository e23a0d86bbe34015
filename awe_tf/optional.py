"""Optional dependencies, imported where they are needed: a missing one stops with what to
install, when the object that needs it is made (not half-way through training)."""

from __future__ import annotations

import importlib

# top-level module -> (the package pip installs, the awe-tf extra that brings it)
PACKAGES = {
    "scann": ("scann", "scann"),
    "keras_tuner": ("keras-tuner", "tuning"),
    "sklearn": ("scikit-learn", "tuning"),
    "tensorflow_serving": ("tensorflow-serving-api", "serving"),
    "matplotlib": ("matplotlib", "plots"),
}


def require(module: str, purpose: str):
    """Import ``module`` (e.g. ``scann`` or ``scann.scann_ops.py.scann_ops``), or raise an
    ImportError saying that ``purpose`` needs it and what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package, extra = PACKAGES.get(module.split(".")[0], (module.split(".")[0], None))
        how = f"pip install 'awe-tf[{extra}]' (or pip install {package})" if extra else f"pip install {package}"
        raise ImportError(f"{purpose} needs {package}, which is not installed here: {how}") from error
