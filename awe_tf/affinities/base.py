"""The shared base of every affinity G, and the registry that makes an affinity known.

AWE scores a pair as f(x, y) = sum_ij G_ij(x, y) x_i U_i^T V_j y_j. Here y is a single label j,
so the score of label j is sum_i G_i(x, j) x_i (U_i . V_j). An affinity layer receives the
embedded input features ``E = U[ids]`` (``[B, L, d]``) with their weights ``w`` (``[B, L]``) and
label embeddings, and returns scores; each subclass supplies only its G.

Training scores each of a batch's positive pairs against several labels (the positive itself
and sampled negatives). That happens in two steps, so work that depends only on x is done once
per pair: :meth:`Affinity.pair_inputs` turns the batch's inputs into whatever G needs per pair,
and :meth:`Affinity.pair_scores` scores that against labels.

Scores are linear in G, so affinities add: ``Constant(1.0) + KNN(k=20)`` is the affinity
G = 1 + G_knn, whose score is the sum of the two scores (:class:`Sum`).

Some affinities are built from the training set and an earlier model (the k-NN affinity: G(x, y)
grows with how many of x's neighbours carry y; they train with
:func:`~awe_tf.training.fit_iterative`). They subclass
:class:`~awe_tf.affinities.neighbours.ReferenceAffinity`, which declares their further hooks;
their G rows reach the model as ``context = (ids [B, T], weights [B, T])``, ids sorted and padded
with |Y|.

An affinity is one file: a class over this base, made known by :func:`register`, which gives it
its spec name (``knn:k=20``), Keras serialisation and its tuning search space; the parser, the
tuner, the command line and training all read the registry.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Registration:
    """What the library knows of an affinity, from :func:`register`.

    Attributes:
        name: its name in specs (``knn`` in ``knn:k=20``).
        factory: the class (or a function) that makes it from its settings.
        space: the tuning search space of its settings, as data (:mod:`awe_tf.tuning.spaces`).
        short: the setting a bare value stands for (``knn:20`` is ``knn:k=20``), if any.
    """

    name: str
    factory: Callable
    space: dict
    short: str | None

    @property
    def iterative(self) -> bool:
        """It is built from the training set and an earlier model (its class says so), so it
        trains with :func:`~awe_tf.training.fit_iterative`."""
        return bool(getattr(self.factory, "iterative", False))


REGISTRY: dict[str, Registration] = {}


@dataclasses.dataclass(frozen=True)
class NativeForm:
    """The score as the native engine computes it (``awe_tf/native/warp.c``), from the linear
    score s = s_in + s_b (s_in over the input's features, s_b = U_bias . V_y the bias feature's
    term, the label prior) and, where the affinity has one, G(x, y), one number per example and
    label:

        f = s (c + lam sigmoid(alpha s + beta))                                  (without G)
        f = (c + g_scale G) s_in + (c + (prior ? 1 : g_scale G)) s_b + g_added G   (with G, lam = 0)
        f = (1 - rest) (the top_k largest t_i) + rest s_in + s_b                  (top_k > 0)

    WSABIE is the default; linear sigmoid sets ``lam, alpha, beta``; k-NN ``c = 0, g_scale = 1``;
    a constant beside it, c > 0; the neighbour vote, which adds to the linear score, ``g_added``;
    top-k ``top_k, rest``, its terms t_i = x_i U_i . V_y (the pair's own item left out).

    Attributes:
        c: the constant part of G.
        lam, alpha, beta: f's sigmoid of the linear score, weighted by ``lam`` (0: none).
        g_scale: G's weight on the linear score.
        g_added: G's weight added to the score.
        prior: the bias feature's term stays outside G (weighted 1, not G).
        top_k, rest: top-k's k (0: not top-k) and G of the terms outside the k.
    """

    c: float = 1.0
    lam: float = 0.0
    alpha: float = 0.0
    beta: float = 0.0
    g_scale: float = 0.0
    g_added: float = 0.0
    prior: bool = False
    top_k: int = 0
    rest: float = 0.0

    @property
    def uses_g(self) -> bool:
        """Whether the score reads G: training then needs each example's row of it."""
        return self.g_scale != 0.0 or self.g_added != 0.0


def register(name: str, space: dict | None = None, short: str | None = None):
    """Make an affinity known by ``name`` (a class decorator; also takes a factory function):
    registers the class for Keras serialisation (package ``awe_tf``) and records its search space
    (:class:`Registration`). Two affinities may not share a name, nor a class name.
    """

    if not isinstance(name, str) or not name.strip() or any(mark in name for mark in ":+,= "):
        raise ValueError(f"an affinity's name is text without ':', '+', ',', '=' or spaces, which a spec "
                         f"reads as its parts (knn:k=5+constant:0.3); got {name!r}")

    def decorate(factory):
        if name in REGISTRY and _defined_as(REGISTRY[name].factory) != _defined_as(factory):
            module, where = _defined_as(REGISTRY[name].factory)
            whose = "awe-tf's own" if module.startswith("awe_tf.") else f"{module}'s"
            raise ValueError(f"an affinity is already registered as {name!r} ({whose} {where}): register yours under "
                             "another name")
        if isinstance(factory, type):
            key = f"awe_tf>{factory.__name__}"
            known = tf.keras.utils.get_registered_object(key)
            same = known is not None and _defined_as(known) == _defined_as(factory)
            if known is not None and not same:  # (the same class defined again, as a module reloaded, is fine)
                raise ValueError(f"another class is registered for Keras as {key}; give the affinity class "
                                 "another name")
            tf.keras.utils.register_keras_serializable(package="awe_tf")(factory)
        REGISTRY[name] = Registration(name, factory, dict(space or {}), short)
        return factory

    return decorate


def _defined_as(factory) -> tuple[str, str]:
    """Where a class or function is defined: the same one defined again (a module reloaded, a
    notebook cell run again) registers under its name again."""
    return factory.__module__, factory.__qualname__


class Affinity(tf.keras.layers.Layer):
    """Base class of G. Subclasses implement :meth:`pair_inputs`, :meth:`pair_scores` and
    :meth:`score_all`; every other hook has a default here. The hooks are traced as written,
    without AutoGraph (training, scoring and the exports alike): a branch on a tensor's value
    takes ``tf.cond`` or ``tf.where``, not a Python ``if``.

    Attributes:
        uses_context: G is read from per-input rows of label weights (the model feeds them in).
        iterative: G is built from the training set and an earlier model
            (:class:`~awe_tf.affinities.neighbours.ReferenceAffinity` and its subclasses).
        candidates_only: G is zero outside each input's context labels, where every other label
            scores its prior, so a ranking need score only those
            (:class:`~awe_tf.models.retrieval.Retrieval`).
        has_prior: the score adds the bias feature's U_bias . V_y outside G.
        additive: G is added to the linear score instead of weighting its terms
            (:class:`~awe_tf.affinities.vote.NeighbourVote`), as its ``added(G)``; diagnostics
            read it so, and a sum refuses it (it holds the linear score already).
    """

    uses_context = False
    iterative = False
    candidates_only = False
    has_prior = False
    additive = False  # the score is x^T U^T V y + G(x, y), not G's weighting of its terms (the vote)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._record_defaults()

    def _record_defaults(self) -> None:
        """For a class without a ``get_config`` of its own, whose config Keras makes from the
        arguments its constructor was given: record the others too, at their defaults, so that a
        saved model keeps every setting it was built with (not whatever default a later version of
        the class has) and :func:`~awe_tf.affinities.spec_of` writes each one out."""
        recorded = getattr(getattr(self, "_auto_config", None), "config", None)
        if not getattr(self, "_auto_get_config", False) or recorded is None:
            return
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and parameter.default is not parameter.empty and name not in recorded \
                    and isinstance(parameter.default, (str, int, float, bool, type(None))):
                recorded[name] = parameter.default

    @property
    def zero_at_start(self) -> bool:
        """Whether G is 0 for every pair before training (a constant or matrix of c = 0): alone,
        every score is 0 and U and V get no gradient, so :func:`~awe_tf.affinities.parse` refuses
        it; in a sum beside another G it is that G's pure form."""
        return False

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        """Called once by the model with |X| (the rows of U, bias included) and |Y|; affinities
        with parameters indexed by feature or label (a G matrix) create them here.
        ``input_bias``: the last feature of every input is the model's always-on bias feature
        (a per-label prior, not a feature of the input)."""

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        """The input side of each training pair, in whatever form :meth:`pair_scores` takes.

        Args:
            features: ``[B, L, d]`` embedded input features ``U_i``.
            weights: ``[B, L]`` feature values ``x_i`` (0 on padding).
            self_position: ``[B, M]`` int, the position in the feature list of a term to drop
                from x for that pair (the label's own item in recommendation data), -1 for none.
            context: ``(ids, weights)`` of the example's label weights, for ``uses_context``.
            feature_ids: ``[B, L]`` the ids of the features (rows of U), for G indexed by them.

        Returns:
            A tensor or nest of tensors; it must be differentiable with respect to
            ``features`` (the training loop stops its gradient where it is not wanted).
        """
        raise NotImplementedError

    def pair_scores(self, pair_inputs, labels, label_ids):
        """Scores ``[B, M, N]`` of each pair's input against ``labels`` (``[B, M, N, d]``,
        the embeddings of the label ids ``label_ids`` ``[B, M, N]``)."""
        raise NotImplementedError

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        """Scores ``[B, N]`` of every input against every label of ``labels`` (``[N, d]``)."""
        raise NotImplementedError

    def pair_scores_by_id(self, pair_inputs, label_ids, lookup, table=None):
        """Scores ``[B, M, N]`` of each pair against the labels ``label_ids`` ``[B, M, N]``: the
        same as :meth:`pair_scores` on ``lookup(label_ids)``. ``table``, a function giving the
        whole label table ``[|Y|, d]`` (or None when it is sharded), lets an affinity score a batch
        through all labels instead where that is cheaper (the per-feature-pair affinities on long
        inputs); only those call it, so the others never read the table."""
        return self.pair_scores(pair_inputs, lookup(label_ids), label_ids)

    def cost_per_score(self, width: int) -> int:
        """Memory per (input, label) score relative to the linear model, for an input of
        ``width`` features (scoring sizes its batches by it)."""
        return 1

    def reference_part(self):
        """The part of this affinity built from the training set (itself, a part of a sum), or
        None."""
        return self if self.iterative else None

    def scalar_form(self) -> tuple[float, float, float, float] | None:
        """``(c, lam, alpha, beta)`` when the score is a function of the linear score s = x^T U^T
        V y alone, f = s (c + lam sigmoid(alpha s + beta)): then a pair costs what WSABIE's does,
        and the native engine trains it. None (the default) for any other G."""
        return None

    def native_form(self) -> NativeForm | None:
        """The score as the native engine computes it (:class:`NativeForm`), or None where it
        cannot (the default for G other than those of :meth:`scalar_form`)."""
        form = self.scalar_form()
        return None if form is None else NativeForm(*form)

    def learnt_scalars(self) -> dict[str, float]:
        """G's jointly learnt single numbers by name (top-k's ``rest``), what a run reports beside
        its metrics; empty for most affinities."""
        return {w.name.rsplit("/", 1)[-1].split(":")[0]: float(w.numpy()) for w in self.trainable_weights
                if w.shape.rank == 0}

    def check_ready(self) -> None:
        """Raise a clear error if G cannot score yet (an affinity built from the training set
        without its reference set)."""

    def __add__(self, other):
        from awe_tf.affinities.combine import Sum

        return Sum([*parts_of(self), *parts_of(other)])


def _keras_own(cls: type, method: str) -> bool:
    """Whether the ``method`` that ``cls`` has is Keras' own (no class of awe-tf or of a user
    writes one on the way there)."""
    owner = next(c for c in cls.__mro__ if method in vars(c))
    return owner.__module__.split(".")[0] in ("tf_keras", "keras", "tensorflow")


def unsaved_settings(affinity) -> list[str]:
    """The arguments of ``affinity``'s constructor that its ``get_config`` leaves out: a saved
    model rebuilds its G from that config (``from_config``), with those arguments' defaults. None
    where Keras' own ``get_config`` or constructor is the class's (Keras records the arguments
    given), or the class writes its own ``from_config`` (it maps its config back itself).

    Raises:
        ValueError: ``get_config`` cannot make a config (Keras' own, for an argument it cannot
            serialise), naming the class.
    """
    cls = type(affinity)
    if _keras_own(cls, "get_config") or _keras_own(cls, "__init__") or not _keras_own(cls, "from_config"):
        return []
    try:
        config = affinity.get_config()
    except NotImplementedError as error:
        raise ValueError(f"{cls.__name__}.get_config(): {str(error).splitlines()[0]}") from None
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [name for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind not in variadic and name not in config]


def check_saveable(affinity) -> None:
    """Refuse an affinity a saved model could not rebuild as it is: for each part (of a sum), a
    ``get_config`` that leaves out an argument of its constructor (:func:`unsaved_settings`),
    which would load with that argument's default and score otherwise, or a config that does not
    make the way a saved model's does (serialised, written as JSON, read back, rebuilt by its class: a
    constructor without ``**kwargs``, which Keras' config entries reach; a value JSON cannot
    hold). Checked as a model is built from an affinity (not from a saved config), so that it is
    said before any training, not when the trained model is loaded.

    Raises:
        ValueError: naming the class and what to change.
    """
    from awe_tf.affinities import serialize

    for part in parts_of(affinity):
        cls = type(part)
        unsaved = unsaved_settings(part)
        if unsaved:
            raise ValueError(f"{cls.__name__}.get_config() leaves out {', '.join(unsaved)}: a saved model would "
                             "rebuild G with their defaults, and score otherwise; return every argument of __init__ "
                             "from get_config (or write none: Keras then records them)")
        try:
            cls.from_config(json.loads(json.dumps(serialize(part)))["config"])  # what saving writes, loading reads
        except Exception as error:  # noqa: BLE001 - whatever the class raises is what a load would
            raise ValueError(f"{cls.__name__}: its config does not rebuild it, as loading a saved model would not: "
                             f"{error_text(error)} (its __init__ takes **kwargs and passes them to Affinity's; its "
                             "get_config returns values JSON holds: numbers, text, lists)") from None


def error_text(error: BaseException, limit: int = 300) -> str:
    """An error's type and first line, in one line; under Keras' wrappers (a layer's call, a
    class rebuilt from its config), those of the error they wrap."""
    if "Error when deserializing" in str(error) and error.__context__ is not None:
        error = error.__context__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling layer"):
        lines = lines[1:]
    return f"{type(error).__name__}: {(lines or [''])[0][:limit]}"


def parts_of(affinity) -> list:
    """The affinities a sum adds up, or the affinity itself in a list."""
    from awe_tf.affinities.combine import Sum

    return list(affinity.components) if isinstance(affinity, Sum) else [affinity]


def positive_weight(c) -> float:
    """A constant weight of the linear score, ``c`` (G = c, or a learnt G's start), refused below
    0: a negative G turns the ranking upside down. (0 is the pure form of a sum, ``constant:0+knn``;
    alone it leaves nothing to learn, which :func:`~awe_tf.affinities.parse` refuses.)"""
    c = float(c)
    if not c >= 0:
        raise ValueError(f"c must be 0 or above (G = c weighs the linear score x^T U^T V y), got {c:g}")
    return c


def pair_dots(labels, queries):
    """Each pair's query against its labels, ``[B, M, N]``: ``labels`` ``[B, M, N, d]`` dotted with
    ``queries`` ``[B, M, d]``. Multiplied and summed rather than one batched matrix-vector
    product: the pairs' products are tiny (N = K + 1 or 2 rows of d), which CPU matrix kernels
    run slowly, most of all their gradients (``benchmarks/warp_step_profile.py --ops``)."""
    return tf.reduce_sum(labels * queries[..., None, :], axis=-1)


def pair_queries(features, weights, self_position):
    """x^T U for each training pair, ``[B, M, d]``: sum_i x_i U_i less the pair's own item, if any
    (``self_position`` ``[B, M]``, -1 for none; recommendation pairs never see y in x)."""
    terms = features * weights[..., None]  # [B, L, d]: x_i U_i
    query = tf.reduce_sum(terms, axis=1)  # [B, d]
    shape = tf.shape(terms)
    flat = tf.reshape(terms, [-1, shape[2]])  # a flat gather is much faster than batch_dims=1
    self_position = tf.cast(self_position, tf.int32)
    index = tf.range(shape[0])[:, None] * shape[1] + tf.maximum(self_position, 0)
    own = tf.gather(flat, index) * tf.cast(self_position >= 0, terms.dtype)[..., None]  # [B, M, d]
    return query[:, None, :] - own


def context_lookup(context, label_ids, offset_id=None):
    """The context weight of each label id: ``context = (ids [B, T] sorted, padded with |Y|;
    weights [B, T])``, ``label_ids`` ``[B, ...]`` -> weights of the same shape (0 if absent).

    With ``offset_id`` (= |Y|), an entry with that id (sorted last, before the padding, which
    has weight 0) is an offset added to every label's weight.
    """
    ids, weights = context
    label_ids = tf.cast(label_ids, ids.dtype)
    shape = tf.shape(label_ids)
    flat = tf.reshape(label_ids, [shape[0], -1])
    if offset_id is not None:
        flat = tf.concat([flat, tf.fill([shape[0], 1], tf.cast(offset_id, ids.dtype))], 1)
    where = tf.minimum(tf.searchsorted(ids, flat, side="left"), tf.shape(ids)[1] - 1)
    found = tf.equal(tf.gather(ids, where, batch_dims=1), flat)
    value = tf.where(found, tf.gather(weights, where, batch_dims=1), 0.0)
    if offset_id is not None:
        value = value[:, :-1] + value[:, -1:]
    return tf.reshape(value, shape)
