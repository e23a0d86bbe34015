"""The linear score plus a vote of the input's nearest training inputs: a model that can fall
back to either end of what a user compares AWE with.

    f(x, y) = x^T U^T V y + w N(x, y),   N(x, y) = (1/k) sum_{n in N_k(x)} cos(z, z_n) y_n[y],

with z = x^T U_prev and N_k(x) the k training inputs with a label whose z_n are nearest to z by
cosine (k is min(k, those inputs) where there are fewer). N is the score of cosine k-NN in U_prev's
space (the ``knn_embedding`` baseline), divided by k.

This is not one of the paper's G, whose score G(x, y) x^T U^T V y is linear in the pair's
linear score: it adds the vote instead. What that buys: w = 0 is the linear model (WSABIE), and
as w grows the ranking becomes k-NN's in U_prev's space, the linear score ordering the labels
k-NN ties (those no neighbour carries, above all). With U_prev the model's own trained U it
needs no training of its own: ``--affinity auto`` builds it on WSABIE's U and V as they are and
chooses w on the validation carve-out. Trained like the other affinities built from the training
set (:func:`~awe_tf.training.fit_iterative`), U and V learn what the vote leaves to them. It
holds the linear score itself, so it is used alone, never in a sum of affinities.

Cost: the k-NN search of :class:`~awe_tf.affinities.KNN` per input; a training pair costs what
WSABIE's does plus one ``log T`` lookup; scoring all labels costs the linear model's plus a
``[B, T]`` scatter.
"""

from __future__ import annotations

import math
import numbers

import tensorflow as tf

from awe_tf.affinities.base import NativeForm, context_lookup, pair_dots, register
from awe_tf.affinities.knn import KNN
from awe_tf.affinities.neighbours import context_scatter_index
from awe_tf.layers.towers import gather_rows


@register("vote", space={"weight": ("float", 0.1, 100.0, "log"), "k": ("int", 5, 50)}, short="weight")
class NeighbourVote(KNN):
    """f(x, y) = x^T U^T V y + w N(x, y) (module docstring).

    Args:
        weight: w, the vote's weight against the linear score (0: the linear model).
        k: neighbours per input.
        search: ``exact`` or ``scann`` (approximate k-NN).
    """

    additive = True
    not_settings = ("prior",)  # KNN's, which it passes keyword arguments on to; the vote has none

    def __init__(self, weight: float = 1.0, k: int = 20, search: str = "exact", **kwargs):
        if "prior" in kwargs:
            raise ValueError("vote has no setting prior: its linear score keeps the bias feature's term already")
        super().__init__(k=k, search=search, prior=False, **kwargs)
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"the vote's weight must be a finite number of at least 0, got {weight!r}")
        self.weight = float(weight)

    @property
    def candidates_only(self) -> bool:
        return False  # every label has its linear score

    def kernel(self, closeness):
        """Each neighbour votes with its cosine similarity, divided by the neighbours taken
        (min(k, the reference rows))."""
        return closeness / tf.cast(tf.shape(closeness)[1], closeness.dtype)

    def added(self, G):
        """What G adds to a pair's linear score: w N (diagnostics report it)."""
        return self.weight * G

    def pair_scores(self, pair_inputs, labels, label_ids):
        queries, _, context = pair_inputs
        return pair_dots(labels, queries) + self.weight * context_lookup(context, label_ids)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        ids, values = context
        index, real = context_scatter_index(ids, tf.shape(labels)[0])
        return tf.tensor_scatter_nd_add(tf.matmul(query, labels, transpose_b=True), index,
                                        self.weight * tf.boolean_mask(values, real))

    def candidate_scores(self, features, weights, labels, context):
        """Scores ``[B, T]`` of the context's labels, x^T U^T V y + w N (0 on padding)."""
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        ids, values = context
        n = tf.shape(labels)[0]
        scores = tf.einsum("bd,btd->bt", query, gather_rows(labels, tf.minimum(ids, n - 1))) + self.weight * values
        return tf.where(ids < n, scores, 0.0)

    def native_form(self) -> NativeForm:
        return NativeForm(c=1.0, g_added=self.weight)

    def prior_scores(self, labels, bias_row):
        raise NotImplementedError("every label's vote score depends on the input (its linear score): there is no "
                                  "per-label prior to rank the labels outside the context by")

    def get_config(self):
        config = {**super().get_config(), "weight": self.weight}
        config.pop("prior", None)
        return config
