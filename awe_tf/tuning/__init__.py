"""Hyper-parameter search with KerasTuner: search spaces as data, tuners that train AWE models
in an overridden ``run_trial``, the best trial as ``awe-tf train`` flags. KerasTuner is needed only
when a tuner is made (:func:`make_tuner`; ``pip install 'awe-tf[tuning]'``)."""

from awe_tf.tuning.spaces import COMMON, affinity_spec, space, train_flags
from awe_tf.tuning.tuner import ORACLES, hyperparameters, make_tuner, tuner_class

__all__ = ["COMMON", "ORACLES", "affinity_spec", "hyperparameters", "make_tuner", "space", "train_flags",
           "tuner_class"]
