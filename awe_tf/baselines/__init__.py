"""Baselines reported beside every result: popularity, k-NN (input and embedding space), SVD."""

from awe_tf.baselines.knn import KNN
from awe_tf.baselines.popularity import Popularity
from awe_tf.baselines.svd import LogOddsSVD, log_odds_weights

__all__ = ["KNN", "LogOddsSVD", "Popularity", "log_odds_weights"]
