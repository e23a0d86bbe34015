"""Affinities that weight each feature-pair term t_i = x_i U_i . V_y separately.

For a label y, f(x, y) = sum_i G_i(x, y) t_i. The shared base computes the terms of every pair
and candidate label (``[B, M, N, L]``, the pair's own item and padding masked out) and each
subclass says only how they combine: most as a sum of one value per term
(:meth:`PairwiseAffinity.term_values`), top-k by its own rule.

Cost: ``O(B M N L d)`` to score a batch's candidates in training, or ``O(B |Y| L d)`` through
all labels when that is less (``|Y| < M N``: long recommendation inputs, whose M is as large as
L, so the candidate route grows as L^2); ``O(B |Y| L d)`` (memory ``B |Y| L``) to score all
labels, L the batch's longest input: the batch's non-zero features only, never all of |X|.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from awe_tf.affinities.base import Affinity, NativeForm, pair_dots, pair_queries, positive_weight, register
from awe_tf.layers.towers import gather_rows


def _own_mask(present, own):
    """``[B, M, L]``: the features of each pair's input, less the pair's own item ``own [B, M]``."""
    positions = tf.range(tf.shape(present)[1])
    return present[:, None, :] & ~tf.equal(positions[None, None, :], own[..., None])


def _unit_interval(weight):
    """Keeps a learnt weight in [0, 1] (a Keras constraint: applied after each optimiser step)."""
    return tf.clip_by_value(weight, 0.0, 1.0)


def _pick(values, label_ids, own):
    """``values[b, label_ids[b, m, n], own[b, m]]`` from ``values`` ``[B, |Y|, L]`` (0 where own < 0)."""
    shape = tf.shape(values)
    flat = tf.reshape(values, [-1])  # a flat gather is much faster than a batched one
    rows = tf.range(shape[0])[:, None, None] * shape[1] + tf.cast(label_ids, tf.int32)
    index = rows * shape[2] + tf.maximum(own, 0)[..., None]
    return tf.where(own[..., None] >= 0, tf.gather(flat, index), 0.0)


class PairwiseAffinity(Affinity):
    """Base of the per-feature-pair affinities. Subclasses implement :meth:`term_values` (G a sum
    over terms) or :meth:`combine` and :meth:`combine_leaving_out` (top-k); those whose G is
    indexed by feature and label ids (a matrix, low-rank factors) also :meth:`gate`."""

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        terms = features * weights[..., None]  # [B, L, d]: x_i U_i
        return terms, tf.not_equal(weights, 0.0), tf.cast(self_position, tf.int32), feature_ids

    def pair_scores(self, pair_inputs, labels, label_ids):
        terms, present, own, feature_ids = pair_inputs
        t = tf.einsum("bld,bmnd->bmnl", terms, labels)
        mask = tf.broadcast_to(_own_mask(present, own)[:, :, None, :], tf.shape(t))
        return self.combine(t, mask, self.gate(feature_ids, label_ids))

    def pair_scores_by_id(self, pair_inputs, label_ids, lookup, table=None):
        def through_candidates():
            return self.pair_scores(pair_inputs, lookup(label_ids), label_ids)

        labels = None if table is None else table()
        if labels is None:
            return through_candidates()

        def through_all_labels():
            terms, present, own, feature_ids = pair_inputs
            t = tf.einsum("bld,nd->bnl", terms, labels)  # [B, |Y|, L]
            return self.combine_leaving_out(t, present, self.gate(feature_ids, None), own, label_ids)

        shape = tf.shape(label_ids)
        return tf.cond(shape[1] * shape[2] > tf.shape(labels)[0], through_all_labels, through_candidates)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        terms = features * weights[..., None]
        t = tf.einsum("bld,nd->bnl", terms, labels)
        present = tf.broadcast_to(tf.not_equal(weights, 0.0)[:, None, :], tf.shape(t))
        return self.combine(t, present, self.gate(feature_ids, None))

    def gate(self, feature_ids, label_ids):
        """G_i(y) from ids, ``[B, M, N, L]`` for ``label_ids`` ``[B, M, N]``, or ``[B, |Y|, L]``
        for every label when ``label_ids`` is None; ``None`` when G does not depend on ids."""
        return None

    def term_values(self, terms, gate):
        """G_i(y) t_i for each term, for affinities whose score is the sum of these."""
        raise NotImplementedError

    def combine(self, terms, present, gate):
        """Scores from the feature-pair terms ``[..., L]`` (``present`` False on masked terms)."""
        return tf.reduce_sum(tf.where(present, self.term_values(terms, gate), 0.0), axis=-1)

    def combine_leaving_out(self, terms, present, gate, own, label_ids):
        """Scores ``[B, M, N]`` of ``label_ids`` from the terms of every label ``[B, |Y|, L]``
        (``present`` ``[B, L]``), each pair leaving out its own term ``own`` ``[B, M]``."""
        values = tf.where(present[:, None, :], self.term_values(terms, gate), 0.0)
        total = tf.gather(tf.reduce_sum(values, axis=-1), label_ids, batch_dims=1)
        return total - _pick(values, label_ids, own)

    def cost_per_score(self, width: int) -> int:
        return max(1, width)


class LowRankFactors:
    """Factors Uhat (|X| x r) and Vhat (|Y| x r) of a G indexed by feature and label ids."""

    def make_factors(self, layer, n_inputs, n_labels, rank, seed):
        init = tf.keras.initializers.RandomNormal(stddev=0.01, seed=seed)
        self.U_hat = layer.add_weight(name="U_hat", shape=(n_inputs, rank), initializer=init)
        self.V_hat = layer.add_weight(name="V_hat", shape=(n_labels, rank), initializer=init)

    def factor_gate(self, feature_ids, label_ids):
        left = gather_rows(self.U_hat, feature_ids)  # [B, L, r]
        if label_ids is None:
            return tf.einsum("blr,nr->bnl", left, self.V_hat)
        return tf.einsum("blr,bmnr->bmnl", left, gather_rows(self.V_hat, label_ids))


@register("topk", space={"k": ("int", 1, 11)}, short="k")
class TopK(PairwiseAffinity):
    """Max (eq. 7, ``k = 1``) and top-k: G_i(x, y) = 1 for the k largest terms t_i of the pair,
    0 otherwise, so f(x, y) = the sum of the k largest x_i U_i . V_y. An input with fewer than
    k features sums all of them. The model's always-on bias feature is a per-label prior, not a
    feature of the input: its term always counts, outside the k (else, with its weight of 1
    against the scaled-down weights of a long input, it would win most of the k places and the
    model would rank by popularity).

    ``rest`` is G of the terms outside the k: 0 in eq. 7, 1 gives back the linear model, and
    between the two f = (1 - rest) * (the k largest terms) + rest * (all terms). ``rest=learn``
    learns it jointly with U and V, starting at 1 and kept in [0, 1]: a model started from a
    trained WSABIE (``init_from``) starts as that WSABIE's ranking and moves towards top-k only
    as far as the WARP loss gains by it.

    Args:
        k: how many terms count.
        rest: G of the other terms, a number in [0, 1] or ``"learn"``.

    Example:
        An input of three features whose rows of U are 1, 2 and 0.5 (d = 1, each x_i = 1), and
        two labels whose rows of V are 1 and -1: the terms are (1, 2, 0.5) and (-1, -2, -0.5).

        >>> features, weights = tf.constant([[[1.0], [2.0], [0.5]]]), tf.ones([1, 3])
        >>> labels = tf.constant([[1.0], [-1.0]])
        >>> TopK(k=1).score_all(features, weights, labels).numpy().tolist()  # the largest term
        [[2.0, -0.5]]
        >>> TopK(k=2).score_all(features, weights, labels).numpy().tolist()
        [[3.0, -1.5]]
        >>> TopK(k=1, rest=1.0).score_all(features, weights, labels).numpy().tolist()  # WSABIE's sum
        [[3.5, -3.5]]
    """

    def __init__(self, k: int = 5, rest: float | str = 0.0, **kwargs):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        self.k = int(k)
        if rest != "learn":
            if isinstance(rest, bool) or not isinstance(rest, numbers.Real) or not 0.0 <= rest <= 1.0:
                raise ValueError(f"rest must be a number in [0, 1] or 'learn', got {rest!r}")
            rest = float(rest)
        self.rest = rest
        self.input_bias = False

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        self.input_bias = bool(input_bias)
        if self.rest == "learn":
            self.rest_weight = self.add_weight(name="rest", shape=(), initializer=tf.keras.initializers.Constant(1.0),
                                               constraint=_unit_interval)

    @property
    def _counts_rest(self) -> bool:
        """The terms outside the k count: rest is learnt or a non-zero number."""
        return self.rest != 0.0

    def _with_rest(self, top, every):
        """f from the sum of the k largest terms and the sum of all of them."""
        rest = self.rest_weight if self.rest == "learn" else self.rest
        return (1.0 - rest) * top + rest * every

    def _prior(self, terms, present):
        """``(bias term or 0, input terms, input mask)``: the bias term split off the last place."""
        if not self.input_bias:
            return 0.0, terms, present
        bias = tf.where(present[..., -1], terms[..., -1], 0.0)
        return bias, terms[..., :-1], present[..., :-1]

    def combine(self, terms, present, gate):
        prior, terms, present = self._prior(terms, present)
        masked = tf.where(present, terms, -1e30)
        k = tf.minimum(self.k, tf.shape(terms)[-1])
        top = tf.math.top_k(masked, k=k).values
        chosen = tf.reduce_sum(tf.where(top > -1e29, top, 0.0), axis=-1)
        if self._counts_rest:
            chosen = self._with_rest(chosen, tf.reduce_sum(tf.where(present, terms, 0.0), axis=-1))
        return prior + chosen

    def combine_leaving_out(self, terms, present, gate, own, label_ids):
        # The k largest terms without the own one are among the k + 1 largest of all terms: drop
        # the own term if it is there, else the (k + 1)-th.
        prior, terms, present = self._prior(terms, present[:, None, :])
        masked = tf.where(present, terms, -1e30)
        width = tf.minimum(self.k + 1, tf.shape(terms)[-1])
        top = tf.math.top_k(masked, k=width)
        values = tf.gather(top.values, label_ids, batch_dims=1)  # [B, M, N, k + 1]
        is_own = tf.equal(tf.gather(top.indices, label_ids, batch_dims=1), own[:, :, None, None])
        last = tf.one_hot(self.k, width, on_value=True, off_value=False, dtype=tf.bool)  # none if width <= k
        drop = tf.where(tf.reduce_any(is_own, axis=-1, keepdims=True), is_own, last)
        chosen = tf.reduce_sum(tf.where(~drop & (values > -1e29), values, 0.0), axis=-1)
        if self._counts_rest:
            kept = tf.where(present, terms, 0.0)
            every = tf.gather(tf.reduce_sum(kept, axis=-1), label_ids, batch_dims=1) - _pick(kept, label_ids, own)
            chosen = self._with_rest(chosen, every)
        if self.input_bias:
            chosen += tf.gather(prior, label_ids, batch_dims=1)
        return chosen

    def native_form(self) -> NativeForm | None:
        if self.rest == "learn":
            return None  # a weight learnt with U and V, which the native engine does not have
        return NativeForm(c=0.0, top_k=self.k, rest=self.rest, prior=True)

    def get_config(self):
        return {**super().get_config(), "k": self.k, "rest": self.rest}


@register("max")
def max_term(**settings) -> TopK:
    """Max (eq. 7): only the largest term counts, top-k with k = 1."""
    if settings:
        raise TypeError(f"max takes no settings, got {sorted(settings)}")
    return TopK(k=1)


@register("sigmoid", short="activation")
class Sigmoid(PairwiseAffinity):
    """G_i(x, y) = s(t_i) per feature pair (eq. 5 with s = sigmoid), so f = sum_i s(t_i) t_i:
    terms that agree strongly count fully, weak or negative ones are damped.

    With ``form="activation"`` the score is the general form of eq. 4, f = sum_i s(t_i) (the
    activation replaces the product instead of gating it).

    With ``rank = r`` the gate has parameters of its own, learnt jointly with U and V:
    G_i(x, y) = s(Uhat_i . Vhat_y) with low-rank Uhat (|X| x r), Vhat (|Y| x r).

    Args:
        activation: a Keras activation name (default ``sigmoid``).
        form: ``"gate"`` (f = sum s(t_i) t_i) or ``"activation"`` (f = sum s(t_i)).
        rank: 0 (gate on U, V themselves) or the rank of separate gate factors.
        seed: initialiser seed of the factors.
    """

    def __init__(self, activation: str = "sigmoid", form: str = "gate", rank: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if form not in ("gate", "activation"):
            raise ValueError(f"form must be 'gate' or 'activation', got {form!r}")
        if int(rank) != rank or rank < 0:
            raise ValueError(f"rank must be 0 (the gate on U and V) or a positive whole number, got {rank}")
        if rank and form != "gate":
            raise ValueError("separate factors (rank > 0) need form='gate'")
        self.activation = activation
        self.form = form
        self.rank = int(rank)
        self.seed = seed
        self._s = tf.keras.activations.get(activation)

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        if self.rank:
            self.factors = LowRankFactors()
            self.factors.make_factors(self, n_inputs, n_labels, self.rank, self.seed)

    def gate(self, feature_ids, label_ids):
        return self.factors.factor_gate(feature_ids, label_ids) if self.rank else None

    def term_values(self, terms, gate):
        if gate is not None:  # separate factors: s(Uhat_i . Vhat_y)
            return self._s(gate) * terms
        return self._s(terms) * terms if self.form == "gate" else self._s(terms)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "form": self.form, "rank": self.rank,
                "seed": self.seed}


@register("linear-sigmoid", space={"alpha": ("float", 0.25, 4.0, "log"), "beta": ("float", -1.0, 0.5)})
class LinearSigmoid(PairwiseAffinity):
    """Linear sigmoid (eq. 6): G = sigmoid(alpha s + beta).

    ``on="score"`` (the paper's form) applies it to the whole score s = x^T U^T V y, so
    f = sigmoid(alpha s + beta) s: one weight per (x, y) that grows with the linear model's
    confidence (beta shifts where the weighting turns on; beta -> -inf gives f -> 0, large beta
    gives back the linear model). ``on="pair"`` applies it to each term, f = sum_i
    sigmoid(alpha t_i + beta) t_i, which can reweight features within one input.

    Args:
        alpha: slope.
        beta: offset.
        on: ``"score"`` or ``"pair"``.

    Example:
        The input and labels of :class:`TopK`'s example, whose linear scores are 3.5 and -3.5:
        sigmoid(3.5) 3.5 and sigmoid(-3.5) (-3.5).

        >>> features, weights = tf.constant([[[1.0], [2.0], [0.5]]]), tf.ones([1, 3])
        >>> scores = LinearSigmoid().score_all(features, weights, tf.constant([[1.0], [-1.0]]))
        >>> [round(float(score), 4) for score in scores[0]]
        [3.3974, -0.1026]
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, on: str = "score", **kwargs):
        super().__init__(**kwargs)
        if on not in ("score", "pair"):
            raise ValueError(f"on must be 'score' or 'pair', got {on!r}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.on = on

    def _weighted(self, score):
        return tf.sigmoid(self.alpha * score + self.beta) * score

    def scalar_form(self):
        return (0.0, 1.0, self.alpha, self.beta) if self.on == "score" else None

    def term_values(self, terms, gate):  # on="pair"
        return self._weighted(terms)

    # on="score" needs only x^T U per pair, as the linear model: no per-feature terms.
    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        if self.on == "pair":
            return super().pair_inputs(features, weights, self_position, context, feature_ids)
        return pair_queries(features, weights, self_position)

    def pair_scores(self, pair_inputs, labels, label_ids):
        if self.on == "pair":
            return super().pair_scores(pair_inputs, labels, label_ids)
        return self._weighted(pair_dots(labels, pair_inputs))

    def pair_scores_by_id(self, pair_inputs, label_ids, lookup, table=None):
        if self.on == "pair":
            return super().pair_scores_by_id(pair_inputs, label_ids, lookup, table)
        return Affinity.pair_scores_by_id(self, pair_inputs, label_ids, lookup)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        if self.on == "pair":
            return super().score_all(features, weights, labels, context, feature_ids)
        query = tf.reduce_sum(features * weights[..., None], axis=1)
        return self._weighted(tf.matmul(query, labels, transpose_b=True))

    def cost_per_score(self, width: int) -> int:
        return 1 if self.on == "score" else max(1, width)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "on": self.on}


@register("matrix", space={"c": ("float", 0.1, 2.0)}, short="c")
class Matrix(PairwiseAffinity):
    """G as a |X| x |Y| weight matrix, learnt jointly with U and V: f(x, y) =
    sum_i G_{i,y} x_i U_i . V_y. It starts at ``c`` everywhere (the linear model) and can then
    switch individual feature-label pairs up or down.

    Memory is |X| |Y| floats, so it is refused above ``max_cells``; use ``lowrank`` for large
    vocabularies.

    Args:
        c: the initial value of every G_{i,y}.
        max_cells: the largest |X| |Y| accepted.
    """

    def __init__(self, c: float = 1.0, max_cells: int = 50_000_000, **kwargs):
        super().__init__(**kwargs)
        self.c = positive_weight(c)
        self.max_cells = int(max_cells)

    @property
    def zero_at_start(self) -> bool:
        return self.c == 0

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        if n_inputs * n_labels > self.max_cells:
            raise ValueError(f"a {n_inputs} x {n_labels} G matrix has more than {self.max_cells} cells; "
                             "use the low-rank form (lowrank:rank=R)")
        self.G = self.add_weight(name="G", shape=(n_inputs, n_labels),
                                 initializer=tf.keras.initializers.Constant(self.c))

    def gate(self, feature_ids, label_ids):
        rows = gather_rows(self.G, feature_ids)  # [B, L, |Y|]
        if label_ids is None:
            return tf.transpose(rows, [0, 2, 1])
        shape = tf.shape(label_ids)
        flat = tf.reshape(label_ids, [shape[0], -1])  # [B, M N]
        picked = tf.gather(rows, flat, axis=2, batch_dims=1)  # [B, L, M N]
        return tf.reshape(tf.transpose(picked, [0, 2, 1]), tf.concat([shape, [-1]], 0))

    def term_values(self, terms, gate):
        return gate * terms

    def get_config(self):
        return {**super().get_config(), "c": self.c, "max_cells": self.max_cells}


@register("lowrank", space={"rank": ("choice", [4, 8, 16])}, short="rank")
class LowRank(PairwiseAffinity):
    """G_{i,y} = c + Uhat_i . Vhat_y, the low-rank form of :class:`Matrix`, learnt jointly with
    U and V (factors start near 0, so the model starts as the linear one). Memory
    ``(|X| + |Y|) r``.

    Args:
        rank: r.
        c: the constant part of G, 0 or above (0: G is the factors alone, which start near 0 and
            are learnt; a negative G would turn the ranking upside down).
        seed: initialiser seed of the factors.
    """

    def __init__(self, rank: int = 8, c: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if rank < 1:
            raise ValueError(f"rank must be positive, got {rank}")
        self.rank = int(rank)
        self.c = positive_weight(c)
        self.seed = seed

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        self.factors = LowRankFactors()
        self.factors.make_factors(self, n_inputs, n_labels, self.rank, self.seed)

    def gate(self, feature_ids, label_ids):
        return self.c + self.factors.factor_gate(feature_ids, label_ids)

    def term_values(self, terms, gate):
        return gate * terms

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, "c": self.c, "seed": self.seed}
