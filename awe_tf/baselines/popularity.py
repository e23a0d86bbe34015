"""Popularity: every input gets the labels ranked by how often they are positive in training."""

from __future__ import annotations

import numpy as np

from awe_tf.data.dataset import Dataset


class Popularity:
    """Score label j by its count of training positives (the same ranking for every input)."""

    name = "popularity"

    def fit(self, train: Dataset) -> Popularity:
        self.counts = np.asarray(train.Y.sum(axis=0), dtype=np.float64).ravel()
        return self

    def score(self, X) -> np.ndarray:
        return np.tile(self.counts, (X.shape[0], 1))
