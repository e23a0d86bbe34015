"""Affinity functions G: one module per family, over the shared :class:`Affinity` base.

Affinities are named on the command line by a spec: terms joined by ``+``, each a name with
optional ``key=value`` settings after a colon, e.g. ``knn:k=20``, ``constant:1+knn:k=20``,
``sigmoid``, ``sigmoid:rank=8``, ``linear-sigmoid:alpha=1,beta=0.25``, ``topk:k=5``, ``max``,
``matrix``, ``lowrank:rank=8``, ``rbf:k=20,gamma=0.1``, ``latent-rbf:label_gamma=none``,
``hybrid-rbf:gamma=0.1,latent_gamma=1``, ``knn:k=20,search=scann``, ``cluster:leaves=64,top=50``
(a bare value stands for the affinity's main setting: ``constant:C`` is ``constant:c=C``,
``topk:K`` is ``topk:k=K``). The names are those of :data:`REGISTRY`, which every affinity
module fills with :func:`register`; importing this package imports every module in it, so a new
affinity file here needs no other change.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re

from awe_tf.affinities.base import REGISTRY, Affinity, Registration, error_text, pair_queries, register
from awe_tf.affinities.cluster import Cluster
from awe_tf.affinities.combine import Sum
from awe_tf.affinities.constant import Constant
from awe_tf.affinities.kernel import RBF, HybridLatentRBF, LatentRBF
from awe_tf.affinities.knn import KNN
from awe_tf.affinities.neighbours import NeighbourAffinity, ReferenceAffinity, stored_variable
from awe_tf.affinities.pairwise import LinearSigmoid, LowRank, Matrix, PairwiseAffinity, Sigmoid, TopK

for _module in pkgutil.iter_modules(__path__):  # each affinity module registers its affinities
    importlib.import_module(f"{__name__}.{_module.name}")


def _value(text: str):
    """A setting's value as written: a whole number, a number, or text (Python's underscores in
    numbers, 1_0, are read as text, which the setting's own check refuses)."""
    if "_" in text:
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _setting(name: str, key: str, value):
    """``value`` as the type the affinity's setting ``key`` takes (that of its default), or a
    ValueError naming the setting."""
    try:
        parameter = inspect.signature(REGISTRY[name].factory).parameters.get(key)
    except (TypeError, ValueError):
        parameter = None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return value
    default = parameter.default
    if isinstance(value, str) and value.lower() == "none" and (default is None or "None" in str(parameter.annotation)):
        return None
    if default is None:  # a number as a number, a word as text: the class checks what it takes
        return value
    if isinstance(default, bool):
        words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False,
                 "0": False}
        if str(value).lower() in words:
            return words[str(value).lower()]
        raise ValueError(f"setting {key} of {name} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int):
            return value
        raise ValueError(f"setting {key} of {name} must be a whole number, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        if isinstance(value, str) and re.search(r"\bstr\b", str(parameter.annotation)):  # a number or a word
            return value
        raise ValueError(f"setting {key} of {name} must be a finite number, got {value!r}")
    return value


def settings_of(factory) -> set[str]:
    """The settings an affinity takes: its constructor's parameters and, where it passes keyword
    arguments on, those of the classes it passes them to."""
    import tensorflow as tf

    layer = set(inspect.signature(tf.keras.layers.Layer.__init__).parameters)
    found: set[str] = set()
    for owner in getattr(factory, "__mro__", [factory]):
        init = owner.__init__ if isinstance(owner, type) else owner
        if owner is tf.keras.layers.Layer or owner is object:
            break
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        found |= {name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    return found - layer - {"self"} - set(getattr(factory, "not_settings", ()))


class UnknownAffinity(ValueError):
    """An affinity name that :data:`REGISTRY` does not hold."""


def known_names(unknown: str) -> str:
    """The end of an unknown affinity name's message: the registry's names, and where the name is
    WSABIE's, which affinity that is."""
    hint = " (WSABIE is G = 1: constant, or leave the affinity out)" if unknown.lower() == "wsabie" else ""
    close = next((name for name in REGISTRY if name == unknown.lower().replace("_", "-").replace(" ", "-")), None)
    hint = hint or (f" (did you mean {close!r}?)" if close else "")
    return (f"{hint}; known: {', '.join(REGISTRY)} (an affinity of your own is known once the module that "
            "registers it is imported: awe-tf --import MODULE)")


def modules_of(spec: str) -> list[str]:
    """The modules outside awe-tf that register the affinities a spec names, in order: what
    ``awe-tf --import`` must import for a command that trains it (a class defined in a script
    run as ``__main__`` has no module to import, and is left out)."""
    modules = []
    for term in spec.split("+"):
        known = REGISTRY.get(term.partition(":")[0].strip())
        module = getattr(known.factory, "__module__", "") if known else ""
        if module and module.partition(".")[0] not in ("awe_tf", "__main__") and module not in modules:
            modules.append(module)
    return modules


def term_settings(term: str, spec: str | None = None) -> tuple[str, dict]:
    """``(name, settings)`` of one term of a spec (``knn:k=20`` -> ``("knn", {"k": 20})``), each
    setting's value as the type it takes; ``spec``, the whole spec, is named in errors.

    Raises:
        ValueError: naming the unknown affinity (:class:`UnknownAffinity`) or setting.
    """
    term = term.strip()
    spec = term if spec is None else spec
    name, _, settings = term.partition(":")
    name = name.strip()
    if name not in REGISTRY:
        raise UnknownAffinity(f"unknown affinity {name!r} in {spec!r}{known_names(name)}")
    options = {}
    for setting in filter(None, (s.strip() for s in settings.split(","))):
        key, eq, value = setting.partition("=")
        if not eq:
            if options and setting.isdigit():  # gamma=1,5: a decimal comma
                raise ValueError(f"{setting!r} after a comma in {spec!r} is no setting: settings are "
                                 "separated by commas, and numbers take a decimal point (1.5)")
            if REGISTRY[name].short is None:
                raise ValueError(f"{name} takes key=value settings, got {setting!r} in {spec!r}")
            key, value = REGISTRY[name].short, setting
        key = key.strip().replace("-", "_")
        if key in options:
            raise ValueError(f"setting {key} of {name} given twice in {spec!r}")
        options[key] = _setting(name, key, _value(value.strip()))
    unknown = sorted(set(options) - settings_of(REGISTRY[name].factory))
    if unknown:
        known = ", ".join(sorted(settings_of(REGISTRY[name].factory))) or "no settings"
        raise ValueError(f"{name} has no setting {', '.join(unknown)} (it takes {known}) in {spec!r}")
    return name, options


def parse(spec: str) -> Affinity:
    """An affinity from a spec such as ``constant:1+knn:k=20`` (module docstring).

    Raises:
        ValueError: naming the unknown affinity (:class:`UnknownAffinity`) or setting, or the
            setting whose value is wrong.
    """
    parts = []
    terms = [t.strip() for t in spec.split("+")]
    if len(terms) > 1 and not all(terms):
        raise ValueError(f"{spec!r} has an empty term: affinities are joined by single '+' signs")
    for term in filter(None, terms):
        name, options = term_settings(term, spec)
        factory = REGISTRY[name].factory
        try:
            parts.append(factory(**options))
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad settings for {name!r} in {spec!r}: {err}") from None
    if not parts:
        raise ValueError(f"empty affinity spec {spec!r}")
    affinity = parts[0] if len(parts) == 1 else Sum(parts)
    if affinity.zero_at_start:
        raise ValueError(f"{spec!r} is G = 0 everywhere at the start: every score is 0 and U and V get no gradient "
                         "(constant:1 is WSABIE)")
    return affinity


def serialize(affinity: Affinity) -> dict:
    """The affinity's config as plain data, without the auto-numbered layer names."""
    import tensorflow as tf

    def strip(config):
        if isinstance(config, dict):
            inner = config.get("config")
            if isinstance(inner, dict):
                inner.pop("name", None)
                for value in inner.values():
                    if isinstance(value, list):
                        for item in value:
                            strip(item)
        return config

    return strip(tf.keras.utils.serialize_keras_object(affinity))


def spec_of(affinity: Affinity) -> str:
    """A spec that reads as the affinity's settings, every one written out in name order
    (``knn:k=5,prior=True,search=exact``; sums joined by ``+``): two affinities of the same
    settings give the same text, however they were spelt."""
    from awe_tf.affinities.combine import Sum

    if isinstance(affinity, Sum):
        return "+".join(spec_of(part) for part in affinity.components)
    name = next((n for n, known in REGISTRY.items() if known.factory is type(affinity)), type(affinity).__name__)
    config = {k: v for k, v in affinity.get_config().items() if k not in ("name", "trainable", "dtype")}
    return name + (":" + ",".join(f"{k}={config[k]}" for k in sorted(config)) if config else "")


def _unknown_class(config: dict) -> dict | None:
    """The first config in ``config`` (a saved affinity's, a sum's parts' within it) whose class
    is not registered in this process, or None."""
    import tensorflow as tf

    name = config.get("registered_name") or f"awe_tf>{config.get('class_name')}"
    if tf.keras.utils.get_registered_object(name) is None:
        return config
    for value in (config.get("config") or {}).values():
        for inner in value if isinstance(value, list) else [value]:
            found = _unknown_class(inner) if isinstance(inner, dict) and "class_name" in inner else None
            if found is not None:
                return found
    return None


def get(spec) -> Affinity:
    """An affinity from a layer, a config dict ``{"class_name", "config"}``, a spec or ``None``
    (the constant affinity, i.e. WSABIE)."""
    if isinstance(spec, Affinity):
        return spec
    if spec is None:
        return Constant()
    if isinstance(spec, str):
        return parse(spec)
    if isinstance(spec, dict):
        import tensorflow as tf

        try:
            return tf.keras.utils.deserialize_keras_object(spec)  # classes are registered (awe_tf>Name)
        except (ValueError, TypeError) as error:
            unknown = _unknown_class(spec)
            if unknown is None:  # every class is known: the config is what does not rebuild
                raise ValueError(f"cannot rebuild the affinity {spec.get('class_name')} from its saved config: "
                                 f"{error_text(error)} (its classes are known: a from_config or __init__ does not "
                                 "take what its get_config returned)") from None
            name, module = unknown.get("class_name"), unknown.get("module")
            if module and not module.startswith("awe_tf"):  # an affinity of one's own, whose module is named
                raise ValueError(f"cannot rebuild the affinity {name} of module {module}: import {module} first "
                                 f"(awe-tf --import {module} run in the folder that holds it, or --import with its "
                                 f"file's path; in Python, import {module})") from None
            if module is None and (spec.get("registered_name") or "").startswith("awe_tf>"):  # registered, no module
                raise ValueError(f"cannot rebuild the affinity {name}: the model names no module for it, as for a "
                                 "class defined in the program that saved it (a script or notebook, __main__): "
                                 "define the class again (with @register) before loading, or move it into a "
                                 "module and import that (awe-tf --import MODULE)") from None
            why = str(error).split(". Full object config")[0][:200]  # not Keras' whole config
            raise ValueError(f"cannot rebuild the affinity {name}: import the module that defines it first "
                             f"(awe-tf --import MODULE) ({why})") from None
    raise TypeError(f"cannot make an affinity from {spec!r}")


__all__ = [
    "KNN", "RBF", "REGISTRY", "Affinity", "Cluster", "Constant", "HybridLatentRBF", "LatentRBF", "LinearSigmoid",
    "LowRank", "Matrix", "NeighbourAffinity", "PairwiseAffinity", "ReferenceAffinity", "Registration", "Sigmoid",
    "Sum", "TopK", "UnknownAffinity", "get", "known_names", "pair_queries", "parse", "register", "serialize",
    "settings_of", "stored_variable", "term_settings",
]
