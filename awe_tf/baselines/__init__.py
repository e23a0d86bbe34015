"""Baselines reported beside every result (popularity, k-NN in input and embedding space, SVD), and
reduced-rank ridge, one of `--affinity auto`'s candidates."""

from awe_tf.baselines.knn import KNN
from awe_tf.baselines.popularity import Popularity
from awe_tf.baselines.ridge import ReducedRankRidge
from awe_tf.baselines.svd import LogOddsSVD, log_odds_weights, svd_ranks

__all__ = ["KNN", "LogOddsSVD", "Popularity", "ReducedRankRidge", "log_odds_weights", "svd_ranks"]
