"""Affinity functions G: one module per family, over the shared :class:`Affinity` base."""

from awe_tf.affinities.base import Affinity
from awe_tf.affinities.constant import Constant

AFFINITIES = {"constant": Constant}


def get(spec) -> Affinity:
    """An affinity from a layer, a config dict ``{"class_name", "config"}`` or a name."""
    if isinstance(spec, Affinity):
        return spec
    if spec is None:
        return Constant()
    if isinstance(spec, str):
        if spec not in AFFINITIES:
            raise ValueError(f"unknown affinity {spec!r}; known: {', '.join(AFFINITIES)}")
        return AFFINITIES[spec]()
    if isinstance(spec, dict):
        import tensorflow as tf

        return tf.keras.utils.deserialize_keras_object(spec, custom_objects=dict(AFFINITIES))
    raise TypeError(f"cannot make an affinity from {spec!r}")


__all__ = ["AFFINITIES", "Affinity", "Constant", "get"]
