"""Evaluating a model and the baselines on a protocol split, and reporting the numbers."""

from __future__ import annotations

import dataclasses
import numbers
import sys
import warnings

import numpy as np
import scipy.sparse as sp

from awe_tf.baselines import KNN, LogOddsSVD, Popularity, svd_ranks
from awe_tf.data.dataset import RECOMMENDATION, Dataset, Split, first_difference
from awe_tf.data.overlap import mostly_trained_on, trained_on
from awe_tf.data.protocols import default_monitor, validation_split
from awe_tf.memory import return_free_memory
from awe_tf.metrics import evaluate_scorer, protocol_ks, ranked, ranking_report


def data_mismatch(n_features, n_labels, label_names, data, feature_names=None) -> str | None:
    """What makes ``data`` other than the data a model of these sizes and label names was
    trained on, in words, or None.

    Args:
        n_features, n_labels: the model's |X| and |Y|.
        label_names: the model's label names (None: compare the sizes only).
        data: a :class:`~awe_tf.data.Dataset` (a split's training part).
        feature_names: the names of the features the model was trained on, where they are known
            (a run's record, an export's; None: not compared).

    Returns:
        Other sizes, or labels or features of other names or in another order (the same ids would
        then name other labels or features) described in words; None when the data is the model's.
    """
    if (n_features, n_labels) != (data.n_features, data.n_labels):
        return (f"the model has {n_features} features / {n_labels} labels but the data {data.n_features} / "
                f"{data.n_labels}")
    if label_names is not None and tuple(map(str, label_names)) != tuple(map(str, data.label_names)):
        differ = [j for j, (a, b) in enumerate(zip(label_names, data.label_names, strict=True)) if str(a) != str(b)]
        j = differ[0]
        reordered = sorted(map(str, label_names)) == sorted(map(str, data.label_names))
        return ((f"the data has the model's labels in another order (label ids follow the data's order): "
                 f"{len(differ)} of {n_labels} label ids name another label" if reordered else
                 f"the model was trained on other labels: {len(differ)} of {n_labels} label ids name another label")
                + f" (label {j} is {label_names[j]!r} in the model, {data.label_names[j]!r} in the data)")
    if feature_names is not None and list(map(str, feature_names)) != list(map(str, data.feature_names)):
        where = first_difference([str(f) for f in feature_names], [str(f) for f in data.feature_names],
                                 "in the model's data", "in this data")
        return f"the model was trained on other features, or on these in another order: {where}"
    return None


def evaluate_model(score_fn, split: Split, ks=None) -> dict:
    """Rank the test part with ``score_fn(X)`` under the protocol (k = 1, 3, 5, and 10 when
    there are at least 10 labels, unless ``ks`` is given). ``score_fn`` may be a model itself,
    or its ``score``: the model's data is then checked first (:func:`data_mismatch`, a
    ValueError), as it enters; training's own validation ranks with :func:`rank_test_part`.

    Returns:
        ``{"metrics": {...}, "n_test": ..., "n_excluded": ...}``, and ``"by_training_items"``
        where a recommendation test part has users with training items and users with none
        (:func:`by_training_items`).

    Raises:
        TypeError: ``split`` not a Split, or ``score_fn`` not a model or its score (a Split, an
            export, a model's top_k).
        ValueError: a model trained on other data, a test part without a positive label
            (nothing to score), or ks not integers of at least 1 and at most the labels.
    """
    if not isinstance(split, Split):
        raise TypeError(f"evaluate_model ranks a Split's test part (load_dataset(name), load_split(...)), got a "
                        f"{type(split).__name__}")
    if not callable(score_fn):
        raise TypeError(f"evaluate_model(model, split) takes the model (or its score) first, got a "
                        f"{type(score_fn).__name__}")
    if getattr(score_fn, "__name__", "") == "top_k":
        raise TypeError("evaluate_model takes what scores every label: a model, or its score, not its top_k")
    model = getattr(score_fn, "__self__", score_fn)  # a model, or the model whose method was given
    serving = sys.modules.get("awe_tf.serving.exporter")  # loaded wherever an export is
    if serving is not None and isinstance(model, serving.ServedModel):
        raise TypeError("evaluate_model scores a trained model; an export (awe_tf.serving.load) answers raw rows "
                        "with its top labels: rank the test part with awe_tf.evaluation.evaluate_served(served, split)")
    models = sys.modules.get("awe_tf.models")  # loaded wherever a model exists; a baseline's score needs none
    if models is not None and isinstance(model, models.AWEModel):
        problem = data_mismatch(model.n_features, model.n_labels, model.label_names, split.train)
        if problem:
            later = split.train.task == RECOMMENDATION and model.label_names is not None and \
                set(map(str, split.train.label_names)) - set(map(str, model.label_names))
            raise ValueError(f"evaluate_model: {problem}; evaluate it on the data it was trained on" + (
                " (a later period's interactions, with items new since: "
                "awe_tf.data.protocols.onto_items(split, model.label_names) leaves them out)" if later else ""))
        _warn_if_trained_on(model, split)
        score_fn = model.score if score_fn is model else score_fn
    check_scorable("evaluate_model", split)
    return rank_test_part(score_fn, split, checked_ks("evaluate_model", ks, split.test.n_labels))


def checked_ks(caller: str, ks, n_labels: int) -> tuple[int, ...] | None:
    """The ks given to ``caller`` as a tuple, None where none was given (the protocol's then):
    integers of at least 1 and at most ``n_labels`` (a k above them has no precision@k), else
    a ValueError (TypeError: not a list of numbers) saying so."""
    if ks is None:
        return None
    if isinstance(ks, (numbers.Number, str)) or not hasattr(ks, "__iter__"):
        raise TypeError(f"{caller}: ks is a list of ks, such as ks=(1, 5), got {ks!r}")
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in ks):
        raise ValueError(f"{caller}: ks must be integers of at least 1, got {ks!r}")
    if max(ks) > n_labels:
        raise ValueError(f"{caller}: precision@{max(ks)} needs at least {max(ks)} labels to rank; the data has "
                         f"{n_labels}")
    return tuple(int(k) for k in ks)


def _warn_if_trained_on(model, split: Split) -> None:
    """Warn where at least half of ``split``'s test part is rows (recommendation: held-out items)
    that ``model`` was trained on (:func:`~awe_tf.data.overlap.trained_on`, for each data set
    ``fit`` trained it on that is still held), and at least twice as many as the split's own
    training part repeats (data of few distinct rows repeats them in any test part): a split of
    the whole data a model was trained on, or a carve-out of its own training part. Its metrics
    then measure what the model remembers."""
    for trained in model.training_data():
        if trained is split.train or trained.same_content(split.train):  # the test part is held out from it
            continue
        shared, total = seen = trained_on(split.test, trained)
        if mostly_trained_on(seen, trained_on(split.test, split.train)):  # the split's own: what any model sees
            what = "held-out items" if split.test.task == RECOMMENDATION else "labelled test rows"
            warnings.warn(f"evaluate_model: {shared:,} of the {total:,} {what} of {split.test.name} are ones the "
                          f"model was trained on ({trained.name}, {trained.n_examples:,} rows, given to fit): the "
                          "metrics measure what it remembers, not how it ranks; score a test part held out from its "
                          "training data", stacklevel=3)
            return


def check_scorable(caller: str, split: Split) -> None:
    """Refuse a test part without a positive label, where every metric would be NaN."""
    if not split.test.Y.nnz:
        raise ValueError(f"{caller}: the test part ({split.test.n_examples} rows) holds no positive label to rank: "
                         "nothing to score")


def rank_test_part(score_fn, split: Split, ks=None, with_rows: bool = False) -> dict:
    """:func:`evaluate_model` without its check of a model's data: for callers that checked it
    where the data entered (``fit`` checks its validation split once; validation then ranks
    with this every epoch). Where a recommendation test part has users with training items and
    users with none, ``by_training_items`` gives the metrics of each apart (:func:`by_training_items`),
    from the same ranking. ``with_rows``: ``score_fn(X, rows)`` is also given the test rows'
    numbers (:func:`~awe_tf.metrics.ranked`)."""
    test = split.test
    ks = ks or protocol_ks(test.n_labels)
    top = ranked(score_fn, test.X, test.Y.shape[1], max(ks), split.exclude, split.candidates, with_rows=with_rows)
    report = ranking_report(top, test.Y, ks)
    report["n_excluded"] += split.untested  # users the split could not test: no positive either
    groups = _by_training_items(top, split, ks)
    if groups is not None:
        report["by_training_items"] = groups
    # Ranking many labels a few rows at a time leaves the batches' freed scores held by the C
    # heap, which would count from then on (for the rest of training, when validation ranks
    # after each epoch).
    return_free_memory()
    return report


def evaluate_served(served, split: Split, ks=None, batch_size: int = 256) -> dict:
    """Rank the test part with an exported model (:func:`awe_tf.serving.load`): its raw rows go
    in as requests of ``batch_size`` rows, and the metrics are computed from the answers. The
    export leaves out what the protocol leaves out (a recommendation model: the user's own items
    and items never seen in training), so for the portable flavour the figures equal
    :func:`evaluate_model`'s.

    Returns:
        ``{"metrics": {...}, "n_test": ..., "n_excluded": ...}``.

    Raises:
        ValueError: a test part without a positive label (nothing to score), data other than
            the export's model was trained on (:func:`data_mismatch`: sizes, label names, and
            feature names where the export holds them), ks not integers of at least 1 and at most
            the labels, or an export whose largest k is below a k given or every k to report.
    """
    from awe_tf.metrics import ranking_report

    check_scorable("evaluate_served", split)
    recorded = served.metadata
    problem = data_mismatch(recorded.get("n_features", split.train.n_features), recorded.get("n_labels",
                            split.train.n_labels), served.label_names, split.train, served.feature_names)
    if problem:  # the export's ids would be read as this data's: other labels, other features
        raise ValueError(f"evaluate_served: {problem}; score the export on the data its model was trained on")
    test = split.test
    max_k = int(served.metadata.get("max_k", test.n_labels))
    given = checked_ks("evaluate_served", ks, test.n_labels)
    if given is not None and max(given) > max_k:
        raise ValueError(f"evaluate_served: the export answers at most k = {max_k}, below the ks given, {list(given)}")
    ks = [k for k in (given or protocol_ks(test.n_labels)) if k <= max_k]  # the protocol's that it answers
    if not ks:
        raise ValueError(f"the export answers at most k = {max_k}, below every k to report")
    tops = [served(test.X[start : start + batch_size], k=max(ks))["label_ids"].astype(np.int64)
            for start in range(0, test.n_examples, batch_size)]
    top = np.concatenate(tops) if tops else np.zeros((0, max(ks)), np.int64)
    report = ranking_report(top, test.Y, ks)
    report["n_excluded"] += split.untested
    return report


def standardiser(train: Dataset):
    """The transform that standardises ``train``'s numeric columns by the training part's mean and
    standard deviation, nothing else (an InputTransform without normalisation), as the protocol
    scales features for the baselines (a model does it itself); None where no column is numeric."""
    from awe_tf.layers.transform import InputTransform

    numeric = np.asarray(train.numeric_features, bool)
    if not numeric.any():
        return None
    return InputTransform(train.n_features, "none").adapt(train.X, numeric, train.numeric_scale)


def standardised(split: Split) -> Split:
    """The split with its numeric columns standardised (:func:`standardiser`, :func:`scaled_by`)."""
    transform = standardiser(split.train)
    if transform is None:
        return split
    return dataclasses.replace(split, train=scaled_by(split.train, transform), test=scaled_by(split.test, transform))


def scaled_by(data: Dataset, transform) -> Dataset:
    """``data`` with ``transform`` (:func:`standardiser`'s) applied, and numeric where it
    standardised a column only: the numeric columns it keeps as they are (0 in at least half the
    training rows, tf-idf weights) then read as bag-of-words columns, whether or not the data file
    declared them numeric (the SVD weighs the numeric columns by 1, the others by their log-odds)."""
    numeric = np.zeros(data.n_features, bool)
    numeric[transform.numeric if transform.numeric is not None else []] = True
    return dataclasses.replace(data, X=transform.apply(data.X), numeric_features=numeric)


BASELINES = {  # name -> what it is, as reports say it
    "popularity": "labels by training frequency",
    "knn_input": "cosine k-NN in input space",
    "svd": "log-odds-weighted truncated SVD, its rank chosen on the validation carve-out",
    "knn_embedding": "cosine k-NN in the model's space x^T U",
}


def embedding_knn(model, task: str, k: int = 20, name: str = "knn_embedding") -> KNN:
    """Cosine k-NN in ``model``'s embedding space x^T U (it embeds raw rows as it scores them);
    for recommendation a user's own training row is not its neighbour."""
    return KNN(k, transform=model.embed_inputs, exclude_self=task == RECOMMENDATION, name=name)


def baseline_scores(split: Split, model=None, k: int = 20, ranks=None) -> dict:
    """Fit the baselines (:data:`BASELINES`) on the training part and evaluate each on the test
    part: ``knn_input`` and ``svd`` (of the best of ``ranks`` on the validation carve-out,
    :func:`svd_rank`; default :func:`~awe_tf.baselines.svd_ranks` of the model's dimension, as
    ``awe-tf train`` gives them, or of 64 without a model) on standardised numeric
    features, ``knn_embedding`` when a model is given (:func:`embedding_knn`)."""
    recommendation = split.train.task == RECOMMENDATION
    scaled = standardised(split)
    rank = svd_rank(scaled.train, ranks or svd_ranks(model.dimension if model is not None else 64))
    methods = {
        "popularity": (Popularity(), scaled),
        "knn_input": (KNN(k, exclude_self=recommendation, name="knn_input"), scaled),
        "svd": (LogOddsSVD(rank), scaled),
    }
    if model is not None:
        methods["knn_embedding"] = (embedding_knn(model, split.train.task, k), split)
    scores = {name: evaluate_baseline(method, part) for name, (method, part) in methods.items()}
    scores["svd"]["rank"] = rank  # as chosen (the data may hold it lower: at most its rows or columns less 1)
    return scores


def by_training_items(score_fn, split: Split) -> dict | None:
    """A recommendation split's test metrics apart for its users with training items and those with
    none (users only in a test file of their own; ranked by what a model learnt of the labels
    alone), ``{"with": {"users", metrics...}, "without": {...}}``, where both groups have users;
    else None. A later period's users are often mostly new: the whole test part's figure then says
    little of how the model ranks for the users it knows. ``score_fn``: a model, or what scores raw
    rows (its ``score``), as :func:`evaluate_model` takes."""
    models = sys.modules.get("awe_tf.models")
    if models is not None and isinstance(score_fn, models.AWEModel):
        score_fn = score_fn.score
    if _known_users(split) is None:  # nothing to rank apart
        return None
    return rank_test_part(score_fn, split)["by_training_items"]


def _known_users(split: Split) -> np.ndarray | None:
    """Which test users of a recommendation split have training items, where some have and some
    have not; else None."""
    if split.train.task != RECOMMENDATION or split.exclude is None:
        return None
    known = split.test.X.getnnz(axis=1) > 0
    return None if known.all() or not known.any() else known


def _by_training_items(top: np.ndarray, split: Split, ks) -> dict | None:
    """:func:`by_training_items` from the test part's ranking ``top``."""
    known = _known_users(split)
    if known is None:
        return None
    Y = sp.csr_matrix(split.test.Y)
    return {name: {"users": int(rows.sum()), **ranking_report(top[rows], Y[np.flatnonzero(rows)], ks)["metrics"]}
            for name, rows in (("with", known), ("without", ~known))}


def svd_rank(train: Dataset, ranks, seed: int = 0) -> int:
    """The rank of ``ranks`` at which the log-odds SVD scores best on ``train``'s validation
    carve-out, by the protocol's leading metric (:func:`~awe_tf.data.protocols.default_monitor`;
    the larger rank on a tie; the largest where the carve-out has no positive to score or to
    fit); ``train`` as the SVD is fitted on it (numeric columns standardised), ``seed`` seeding the
    SVD. One rank is taken as it is. (``--affinity auto`` chooses its SVD candidate's rank among
    the same ranks by its own rule, the mean of the two metrics it compares.)"""
    ranks = sorted(ranks, reverse=True)
    if len(ranks) == 1:
        return ranks[0]
    carve = validation_split(train)
    if carve.train.Y.nnz == 0 or carve.test.Y.nnz == 0:  # too little data to choose on
        return ranks[0]
    monitor = default_monitor(train)
    k = int(monitor.split("@")[1])
    svd = LogOddsSVD(max(ranks), seed=seed).fit(carve.train)

    def carve_score(rank):
        return evaluate_scorer(lambda X: svd.score(X, rank), carve.test.X, carve.test.Y, carve.exclude,
                               carve.candidates, (k,))["metrics"][monitor]

    return ranks[int(np.argmax([carve_score(rank) for rank in ranks]))]


def evaluate_baseline(method, split: Split) -> dict:
    """Fit a baseline on ``split``'s training part and score its test part under the protocol: its
    metrics, with ``by_training_items`` where a recommendation test part has users with training
    items and users with none (:func:`by_training_items`). A k-NN leaves a test row's own training
    row out of its neighbours (by row id). A row the baseline gives every label that may be ranked
    the same score (nothing to go on: a user with no training item, a row with no neighbour) is
    ranked as popularity ranks it, not by label order. (:func:`svd_rank` chooses the SVD's rank
    without this fallback.)"""
    method.fit(split.train)
    fallback = None if isinstance(method, Popularity) else Popularity().fit(split.train)

    def score(X, rows):
        scores = method.score(X, query_ids=split.test.row_ids[rows]) if isinstance(method, KNN) else method.score(X)
        if fallback is not None:
            scores = np.asarray(scores)
            rankable = scores if split.candidates is None else scores[:, split.candidates]
            flat = rankable.max(axis=1) == rankable.min(axis=1)
            if flat.any():
                scores[flat] = fallback.score(X[np.flatnonzero(flat)])
        return scores

    report = rank_test_part(score, split, with_rows=True)
    return {**report["metrics"], **{key: report[key] for key in ("by_training_items",) if key in report}}


def format_table(rows: dict, metrics=("precision@1", "precision@3", "precision@5", "precision@10")) -> str:
    """A plain-text table: one row per method, one column per metric."""
    metrics = [m for m in metrics if any(m in r for r in rows.values())]
    width = max(len(name) for name in rows) + 2
    header = "method".ljust(width) + "".join(m.rjust(14) for m in metrics)
    lines = [header, "-" * len(header)]
    for name, values in rows.items():
        cells = "".join(
            (f"{values[m]:.4f}" if isinstance(values.get(m), float) else "-").rjust(14) for m in metrics
        )
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)
