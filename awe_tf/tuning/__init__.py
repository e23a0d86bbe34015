"""Hyper-parameter search with KerasTuner: search spaces as data, tuners that train AWE models
in an overridden ``run_trial``, the best trial as ``awe-tf train`` flags."""

from awe_tf.tuning.spaces import AFFINITY, COMMON, affinity_spec, space, train_flags
from awe_tf.tuning.tuner import ORACLES, BayesianOptimization, Hyperband, RandomSearch, hyperparameters, make_tuner

__all__ = ["AFFINITY", "COMMON", "ORACLES", "BayesianOptimization", "Hyperband", "RandomSearch", "affinity_spec",
           "hyperparameters", "make_tuner", "space", "train_flags"]
