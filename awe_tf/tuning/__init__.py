"""Hyper-parameter search with KerasTuner: search spaces as data, tuners that train AWE models
in an overridden ``run_trial``, the best trial as ``awe-tf train`` flags. KerasTuner is needed only
when a tuner is made (:func:`make_tuner`; ``pip install 'awe-tf[tuning]'``). The spaces load
without TensorFlow (the command line's flags read them); the tuners, which train, on first use."""

from awe_tf.tuning.spaces import COMMON, affinity_spec, space, train_flags

# from .tuner, on first use
_TUNER = ("ORACLES", "check_searchable", "hyperparameters", "make_tuner", "oracle_seed", "search_name", "tuner_class")
__all__ = ["COMMON", "affinity_spec", "space", "train_flags", *_TUNER]


def __getattr__(name):
    if name in _TUNER:
        from awe_tf.tuning import tuner

        return getattr(tuner, name)
    raise AttributeError(f"module 'awe_tf.tuning' has no attribute {name!r}")
