"""Why an AWE model wins or loses against WSABIE: its G on the test part, measured.

f(x, y) = sum_ij G_ij(x, y) x_i U_i^T V_j y_j generalises WSABIE (G = 1), so what G does to the
pairs that matter says where AWE can gain. :func:`profile` reports, for a trained model:

* the share of test positives whose G is 0 (the model ranks them by its prior alone, or not);
* G on the positives against G on random labels (does G separate them at all?);
* G against the margin: a WARP hinge asks f(x, y) to beat f(x, ybar) by gamma, so where G
  scales the score, G = g acts as the margin gamma / g of the linear model;
* for models learnt in iterative steps, the k-NN precision in each step's U (does the space G is
  built in get better or worse from step to step?).

:func:`figure` draws the same: the distributions of G on positives and on random labels, and the
steps' k-NN precision.

For affinities built from the training set G is read from the model's context rows; for the
others, whose G weighs feature terms, the effective G of a pair is f(x, y) / x^T U^T V y.
An additive affinity (the neighbour vote, f = x^T U^T V y + w N) is reported as what it adds,
w N, beside the linear score's own gap between positives and random labels, which it competes
with; it has no margin to scale.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from awe_tf.affinities import Constant, Sum
from awe_tf.data.dataset import Split

NEGATIVES = 20  # random labels drawn per test positive


def _linear_scores(model, X) -> np.ndarray:
    """x^T U^T V y with the model's own U and V (its bias feature included), for every label."""
    Z = model.embed_inputs(X)
    return Z @ model.V.table.numpy().T


def _pairs(split: Split, seed: int):
    """Test positives ``(row, label)`` and, for each, ``NEGATIVES`` random labels that are not
    positives of that row (nor excluded by the protocol)."""
    Y = sp.csr_matrix(split.test.Y)
    rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
    labels = Y.indices.astype(np.int64)
    rng = np.random.default_rng(seed)
    negative_rows = np.repeat(rows, NEGATIVES)
    negative_labels = rng.integers(0, Y.shape[1], negative_rows.size)
    blocked = Y if split.exclude is None else (Y + sp.csr_matrix(split.exclude)).astype(bool)
    keep = ~np.asarray(sp.csr_matrix(blocked)[negative_rows, negative_labels]).ravel().astype(bool)
    return (rows, labels), (negative_rows[keep], negative_labels[keep])


def g_values(model, split: Split, rows, labels) -> np.ndarray:
    """G(x, y) of test rows ``rows`` and labels ``labels`` (see the module docstring)."""
    X = split.test.X
    source = model.affinity.reference_part()
    if source is not None:
        context = sp.csr_matrix(source.context(model.prepare(X)))
        G = np.asarray(context[rows, labels]).ravel()
        if model.affinity.additive:
            return model.affinity.added(G)
        if source.has_offset:
            G = G + context[:, -1].toarray().ravel()[rows]
        parts = model.affinity.components if isinstance(model.affinity, Sum) else [model.affinity]
        return G + sum(p.c for p in parts if isinstance(p, Constant))
    linear = _linear_scores(model, X)[rows, labels]
    full = model.score(X)[rows, labels]
    usable = np.abs(linear) > 1e-6
    return np.where(usable, full / np.where(usable, linear, 1.0), np.nan)


def _summary(values: np.ndarray) -> dict:
    values = values[np.isfinite(values)]
    if not values.size:
        return {"mean": float("nan"), "median": float("nan"), "p10": float("nan"), "p90": float("nan")}
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "p10": float(np.quantile(values, 0.1)), "p90": float(np.quantile(values, 0.9))}


@dataclasses.dataclass
class Values:
    """What a profile summarises, one value per pair: G (for an additive affinity, what it adds)
    of the test positives and of random labels, and for an additive affinity the linear score
    x^T U^T V y of the same pairs."""

    positives: np.ndarray
    negatives: np.ndarray
    linear_positives: np.ndarray | None = None
    linear_negatives: np.ndarray | None = None


def values(model, split: Split, seed: int = 0) -> Values:
    """G of a trained model on ``split``'s test positives and on random labels (:func:`_pairs`)."""
    (rows, labels), (negative_rows, negative_labels) = _pairs(split, seed)
    found = Values(g_values(model, split, rows, labels), g_values(model, split, negative_rows, negative_labels))
    if model.affinity.additive:  # what it adds competes with the linear score: keep that too
        linear = _linear_scores(model, split.test.X)
        found.linear_positives, found.linear_negatives = linear[rows, labels], linear[negative_rows, negative_labels]
    return found


def profile(model, split: Split, seed: int = 0, measured: Values | None = None) -> dict:
    """G of a trained model on ``split``'s test part (module docstring), as plain data; from
    ``measured`` where :func:`values` has been called already."""
    measured = measured if measured is not None else values(model, split, seed)
    positive, negative = measured.positives, measured.negatives
    zero = float(np.mean(np.abs(positive) < 1e-9)) if positive.size else float("nan")
    mean_positive = _summary(positive)["mean"]
    report = {
        "affinity": type(model.affinity).__name__,
        "test_positives": int(positive.size),
        "g_zero_on_positives": zero,
        "g_positives": _summary(positive),
        "g_negatives": _summary(negative),
        "margin": model.margin,
    }
    if model.affinity.additive:  # what it adds, against the gap it competes with; no margin scaled
        report.update(additive=True, linear_positives=_summary(measured.linear_positives),
                      linear_negatives=_summary(measured.linear_negatives))
    else:
        report["margin_in_linear_terms"] = model.margin / mean_positive if mean_positive > 0 else float("inf")
    return report


def _bins(values: np.ndarray, count: int = 40) -> np.ndarray:
    """Histogram bin edges over ``values``; one bin a unit wide where they are one value up to
    rounding (G = 1 of the linear model, read as a ratio of two scores)."""
    centre = float(np.median(values)) if values.size else 0.0
    if not values.size or np.ptp(values) <= 1e-3 * max(1.0, abs(centre)):
        return np.array([centre - 0.5, centre + 0.5])
    return np.histogram_bin_edges(values, bins=count)


def figure(report: dict, measured: Values):
    """The profile as a matplotlib figure: G (the vote: w N) on the test positives against random
    labels, as two histograms on shared bins; beside it, for an additive affinity, the linear
    score's; and for an iterative run the k-NN P@1 in each step's U."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = "w N" if report.get("additive") else "G"
    panels = [(f"{g} of a pair", measured.positives, measured.negatives)]
    if report.get("additive"):
        panels.append(("linear score x^T U^T V y", measured.linear_positives, measured.linear_negatives))
    steps = report.get("step_knn_precision") or []
    shown, axes = plt.subplots(1, len(panels) + bool(steps), figsize=(4.5 * (len(panels) + bool(steps)), 3.5),
                               squeeze=False)
    for axis, (name, positive, negative) in zip(axes[0], panels, strict=False):
        positive, negative = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
        bins = _bins(np.concatenate([positive, negative]))
        axis.hist(negative, bins, density=True, alpha=0.5, label=f"random labels ({negative.size:,})")
        axis.hist(positive, bins, density=True, alpha=0.5, label=f"test positives ({positive.size:,})")
        axis.set_xlabel(name)
        axis.set_ylabel("density")
        axis.legend(fontsize=8)
    title = f"{report['affinity']}: {g} on the test part"
    if "margin_in_linear_terms" in report:
        title += f" (margin {report['margin']:g} = {report['margin_in_linear_terms']:.3g} in linear terms)"
    axes[0][0].set_title(title, fontsize=9)
    if steps:
        axis = axes[0][-1]
        axis.plot(range(len(steps)), steps, marker="o")
        axis.set_xticks(range(len(steps)))
        axis.set_xlabel("iterative step (0: the linear model)")
        axis.set_ylabel("k-NN P@1 in the step's U")
    shown.tight_layout()
    return shown


def plot(report: dict, measured: Values, path) -> Path:
    """:func:`figure`, written to ``path`` (its format from the extension, as matplotlib reads it)."""
    import matplotlib.pyplot as plt

    shown = figure(report, measured)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shown.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(shown)
    return path


def step_knn_precision(run_dir, split: Split, model_config: dict, k: int = 20) -> list[float]:
    """k-NN P@1 in the U of each step of an iterative run (``run_dir/final/step-*``), from the
    checkpoints those steps left: does the space G is built in improve from step to step?"""
    import tensorflow as tf

    from awe_tf.baselines import KNN
    from awe_tf.config import ModelConfig
    from awe_tf.data.dataset import RECOMMENDATION
    from awe_tf.evaluation import evaluate_baseline
    from awe_tf.training import build_model

    out = []
    steps = sorted(Path(run_dir, "final").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    for step in steps:
        latest = tf.train.latest_checkpoint(str(step / "checkpoints" / "last"))
        if latest is None:
            continue
        model = build_model(split.train, ModelConfig(**{**model_config, "affinity": None}))  # U is all k-NN needs
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
        knn = KNN(k, transform=model.embed_inputs, exclude_self=split.train.task == RECOMMENDATION, name="knn")
        out.append(evaluate_baseline(knn, split)["precision@1"])
    return out


def verdict(report: dict) -> str:
    """One line: what the profile says about why AWE wins or loses."""
    reasons = []
    positives, negatives = report["g_positives"], report["g_negatives"]
    if report.get("additive"):
        added = positives["mean"] - negatives["mean"]
        gap = report["linear_positives"]["mean"] - report["linear_negatives"]["mean"]
        share = f"{100 * report['g_zero_on_positives']:.0f}% of the test positives get no vote and rank by the " \
                "linear score alone"
        if added > gap:
            return (f"the vote's gap between positives and random labels ({added:.3g}) is larger than the linear "
                    f"score's ({gap:.3g}): the vote leads, the linear score orders what it leaves level; {share}")
        return (f"the linear score's gap between positives and random labels ({gap:.3g}) is larger than the vote's "
                f"({added:.3g}): the linear score leads, the vote reorders labels whose linear scores nearly tie; "
                f"{share}")
    spread = max(positives["p90"] - positives["p10"], negatives["p90"] - negatives["p10"])
    if spread < 1e-6 * max(1.0, abs(positives["mean"])) and abs(positives["mean"] - negatives["mean"]) < 1e-6:
        return f"G is the constant {positives['mean']:.4g}: the model is WSABIE"
    if report["g_zero_on_positives"] > 0.25:
        reasons.append(f"G is 0 for {100 * report['g_zero_on_positives']:.0f}% of the test positives, which then "
                       "rank by their prior alone")
    if negatives["mean"] > 0 and positives["mean"] / negatives["mean"] < 1.5:
        reasons.append(f"G hardly separates positives (mean {positives['mean']:.3g}) from random labels "
                       f"({negatives['mean']:.3g})")
    elif negatives["mean"] >= 0:
        reasons.append(f"G favours positives ({positives['mean']:.3g} against {negatives['mean']:.3g} for random "
                       "labels)")
    if report["margin_in_linear_terms"] > 2 * report["margin"]:
        reasons.append(f"and, scaling the score down, turns the margin {report['margin']:g} into "
                       f"{report['margin_in_linear_terms']:.3g} in linear terms")
    steps = report.get("step_knn_precision")
    if steps and len(steps) > 1:
        trend = "improves" if steps[-1] > steps[0] + 0.005 else "degrades" if steps[-1] < steps[0] - 0.005 else \
            "holds"
        reasons.append(f"k-NN P@1 in each step's U {trend} ({' -> '.join(f'{p:.3f}' for p in steps)})")
    return "; ".join(reasons) if reasons else "G is close to constant: the model behaves as WSABIE"


def diagnose(run_dir, split: Split, seed: int = 0, plot_to=None) -> dict:
    """:func:`profile` of the model a run wrote (``run_dir/model``), plus the k-NN precision of
    its iterative steps where it has them, and a one-line :func:`verdict`; with ``plot_to``, its
    :func:`figure` written there too (the path kept as ``plot``)."""
    from awe_tf.models import AWEModel

    run_dir = Path(run_dir)
    model = AWEModel.load_model(run_dir / "model")
    measured = values(model, split, seed)
    report = profile(model, split, seed, measured)
    metrics = run_dir / "metrics.json"
    if model.affinity.reference_part() is not None and metrics.exists():
        from awe_tf.config import ModelConfig, with_earlier_defaults

        config = with_earlier_defaults(json.loads(metrics.read_text()).get("model_config") or {})
        fields = {f.name for f in dataclasses.fields(ModelConfig)}
        report["step_knn_precision"] = step_knn_precision(run_dir, split, {k: v for k, v in config.items()
                                                                          if k in fields})
    report["verdict"] = verdict(report)
    if plot_to is not None:
        report["plot"] = str(plot(report, measured, plot_to))
    return report
