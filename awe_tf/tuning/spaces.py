"""Search spaces as data: the usual knobs of every model plus each affinity's own.

A space maps a setting to ``(kind, *arguments)``: ``("float", low, high)`` or
``("float", low, high, "log")``, ``("int", low, high)``, ``("choice", [values])``. Model and
training settings use the names of :class:`~awe_tf.training.ModelConfig` and
:class:`~awe_tf.training.TrainConfig`; affinity settings are prefixed ``affinity.`` and use the
names of the affinity's spec (``linear-sigmoid:alpha=1,beta=0.25``); each affinity declares its
own where it is registered. The same names are the
flags of ``awe-tf train`` (``learning_rate`` -> ``--learning-rate``), so a best trial's settings
are a command line.
"""

from __future__ import annotations

import numpy as np

COMMON = {
    "learning_rate": ("float", 0.01, 0.3, "log"),
    "margin": ("float", 0.1, 2.0),
    "dimension": ("choice", [16, 32, 64, 100]),
    "num_negatives": ("choice", [16, 32, 64]),
}


def describe(spec) -> str:
    """A space's entry in words: ``from 0.01 to 0.3, log scale``, ``one of 16, 32, 64``.

    Example:
        >>> describe(COMMON["learning_rate"]), describe(COMMON["num_negatives"])
        ('from 0.01 to 0.3, log scale', 'one of 16, 32, 64')
    """
    kind, *arguments = spec
    if kind == "choice":
        return "one of " + ", ".join(map(str, arguments[0]))
    low, high, *scale = arguments
    return f"from {low:g} to {high:g}" + (", log scale" if scale == ["log"] else "")


def space(affinity: str = "constant", include_common: bool = True) -> dict:
    """The search space for an affinity family name (``linear-sigmoid``, ``knn``, ...): the usual
    knobs and the affinity's own, as it registered them (:func:`awe_tf.affinities.register`);
    for a spec with settings (``knn:k=20``), those settings are held fixed and left out.

    Raises:
        UnknownAffinity: a name the registry does not hold.
        ValueError: a setting the family does not have, or a value it refuses.
    """
    from awe_tf.affinities import REGISTRY, UnknownAffinity, known_names, parse, term_settings

    if "+" in affinity:
        raise UnknownAffinity(f"no search space for the sum {affinity!r}: a search tunes one family (its settings "
                              "and the usual knobs); name one, e.g. knn")
    family = affinity.split(":", 1)[0].strip()
    if family not in REGISTRY:
        raise UnknownAffinity(f"no search space for affinity {affinity!r}{known_names(family)}")
    fixed = term_settings(affinity)[1]  # settings every trial keeps (knn:k=20)
    if fixed:
        parse(affinity)  # a value the family refuses, refused before any trial
    found = dict(COMMON) if include_common else {}
    found.update({f"affinity.{name}": spec for name, spec in REGISTRY[family].space.items() if name not in fixed})
    return found


def unsearched_note(known, fixed=()) -> str | None:
    """For an affinity of one's own (a :class:`~awe_tf.affinities.Registration`) registered without
    a search space, a note that a search leaves its settings at their defaults (those not among
    ``fixed``, the settings the search was given); else None."""
    from awe_tf.affinities import settings_of

    own = settings_of(known.factory) if not known.factory.__module__.startswith("awe_tf.") else set()
    own -= set(fixed)
    if not own or known.space:
        return None
    return (f"note: {known.name} registers no search space for its settings ({', '.join(sorted(own))}): they stay at "
            "their defaults, and only the usual knobs are searched (register(..., space=...) names what to search)")


def affinity_spec(affinity: str, values: dict) -> str | None:
    """The affinity spec string for chosen ``affinity.*`` values, beside the settings the searched
    ``affinity`` holds fixed (``knn:k=20``), every setting written out in name order; None: the
    constant, WSABIE.

    Example:
        >>> affinity_spec("linear-sigmoid:alpha=1e20", {"affinity.beta": 0.5})
        'linear-sigmoid:alpha=1e20,beta=0.5'
    """
    from awe_tf.affinities import term_settings

    family, fixed = term_settings(affinity)
    settings = {**fixed, **{key.split(".", 1)[1]: value for key, value in values.items()
                            if key.startswith("affinity.")}}
    if family == "constant" and not settings:
        return None
    if not settings:
        return family
    return family + ":" + ",".join(f"{key}={_plain(value)}" for key, value in sorted(settings.items()))


# ``awe-tf train``'s flag of each model and training setting that takes a value, and of the
# switches a setting's non-default value is given by.
VALUE_FLAGS = {"dimension": "--dimension", "margin": "--margin", "num_negatives": "--negatives", "loss": "--loss",
               "normalisation": "--normalisation", "max_norm": "--max-norm", "init_scale": "--init-scale",
               "epochs": "--epochs", "learning_rate": "--learning-rate", "optimizer": "--optimizer",
               "pairs_per_batch": "--pairs-per-batch", "min_steps_per_epoch": "--min-steps-per-epoch",
               "patience": "--patience", "engine": "--engine", "threads": "--threads",
               "seed": "--seed"}  # a searched seed is the model's and training's
SWITCHES = {("input_bias", False): "--no-bias", ("tpu_embedding", True): "--tpu-embedding",
            ("jit_compile", True): "--jit-compile"}


def setting_flags(name: str, value) -> list[str] | None:
    """``awe-tf train``'s flags that give setting ``name`` the ``value`` (None: none can)."""
    if name == "epochs" and value < 1:  # 0 keeps a start as it is, which train's --epochs does not take
        return None
    if name in VALUE_FLAGS:
        return [VALUE_FLAGS[name], _plain(value)]
    return [SWITCHES[(name, value)]] if (name, value) in SWITCHES else None


def train_flags(affinity: str, values: dict) -> list[str]:
    """``awe-tf train`` flags for chosen values (what :mod:`awe_tf.cli.parser` accepts)."""
    out = []
    for key, value in values.items():
        flags = setting_flags(key, value) if not key.startswith(("affinity.", "tuner/")) else None
        out += flags or []
    spec = affinity_spec(affinity, values)
    if spec:
        out += ["--affinity", spec]
    return out


def _plain(value) -> str:
    """A value as a command line gives it: floats to the digit that reads back the same (NumPy's
    too, which the Bayesian oracle proposes and whose repr is ``np.float64(...)``), without a
    ``+``, NumPy's whole numbers as plain ones."""
    if isinstance(value, float | np.floating):
        return repr(float(value)).replace("e+", "e")  # 1e+20 as 1e20: a spec reads '+' as a sum's
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)
