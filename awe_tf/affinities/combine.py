"""Sums of affinities: G = G_1 + G_2 + ..., whose score is the sum of the parts' scores."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from awe_tf.affinities.base import REGISTRY, Affinity, NativeForm


def _name(affinity) -> str:
    """The spec name an affinity is registered under (its class name if none)."""
    return next((name for name, known in REGISTRY.items() if known.factory is type(affinity)),
                type(affinity).__name__)


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class Sum(Affinity):
    """G = sum of ``components``; f = sum of their scores (scores are linear in G).

    ``Constant(c) + KNN(k=20)`` keeps the linear model's ranking in play beside the k-NN
    weighting; c = 0 gives the pure k-NN form. At most one component may use context.

    Args:
        components: affinity layers (or their serialised configs).
    """

    def __init__(self, components, **kwargs):
        super().__init__(**kwargs)
        self.components = [
            c if isinstance(c, Affinity) else tf.keras.utils.deserialize_keras_object(c) for c in components
        ]
        additive = sorted({_name(c) for c in self.components if c.additive})
        if additive:
            raise ValueError(f"{', '.join(additive)} adds to the linear score, which it holds already: use it alone, "
                             "not in a sum")
        users = [c for c in self.components if c.uses_context]
        if len(users) > 1:
            raise ValueError("at most one affinity in a sum may use context")
        self.uses_context = bool(users)
        self._context_user = users[0] if users else None

    @property
    def zero_at_start(self) -> bool:
        return all(c.zero_at_start for c in self.components)

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        for c in self.components:
            c.attach(n_inputs, n_labels, input_bias)

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        return tuple(c.pair_inputs(features, weights, self_position, context, feature_ids) for c in self.components)

    def pair_scores(self, pair_inputs, labels, label_ids):
        parts = zip(self.components, pair_inputs, strict=True)
        return tf.add_n([c.pair_scores(p, labels, label_ids) for c, p in parts])

    def pair_scores_by_id(self, pair_inputs, label_ids, lookup, table=None):
        parts = zip(self.components, pair_inputs, strict=True)
        return tf.add_n([c.pair_scores_by_id(p, label_ids, lookup, table) for c, p in parts])

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        return tf.add_n([c.score_all(features, weights, labels, context, feature_ids) for c in self.components])

    def cost_per_score(self, width: int) -> int:
        return max(c.cost_per_score(width) for c in self.components)

    def context(self, X):
        return self._context_user.context(X)

    def training_context(self, rows):
        return self._context_user.training_context(rows)

    def reference_part(self):
        found = [c.reference_part() for c in self.components if c.reference_part() is not None]
        return found[0] if found else None

    def scalar_form(self):
        form = self.native_form()
        return None if form is None or form.uses_g else (form.c, form.lam, form.alpha, form.beta)

    def native_form(self) -> NativeForm | None:
        """The parts' forms summed: constants beside at most one G read per example and label,
        or beside at most one sigmoid (two with other (alpha, beta) are no longer of the form)."""
        forms = [c.native_form() for c in self.components]
        if any(form is None for form in forms):
            return None
        if any(form.top_k for form in forms):
            return None  # top-k's terms alone
        special = [form for form in forms if form.lam != 0.0 or form.uses_g]
        if len(special) > 1:
            return None
        c = sum(form.c for form in forms)  # the constants' and the special part's own
        return dataclasses.replace(special[0], c=c) if special else NativeForm(c=c)

    def check_ready(self) -> None:
        for c in self.components:
            c.check_ready()

    def get_config(self):
        from awe_tf.affinities import serialize

        return {**super().get_config(), "components": [serialize(c) for c in self.components]}
