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

A constant G (WSABIE; a closed form that ``--affinity auto`` can choose, the log-odds SVD or
reduced-rank ridge, which a run's ``metrics.json`` names) is its c; a closed form's U and V were
made, not trained against a margin, so its report has no margin in linear terms. For affinities built from the
training set G is read from the model's context rows; for the others, whose G weighs feature
terms, the effective G of a pair is f(x, y) / x^T U^T V y.
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

from awe_tf.affinities import Constant, spec_of
from awe_tf.affinities.base import parts_of
from awe_tf.data.dataset import Split

NEGATIVES = 20  # random labels drawn per test positive
LEVEL = 0.005  # k-NN P@1 of two iterative steps closer than this is level (the verdict's trend)


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


def _part_scores(model, X, part) -> np.ndarray:
    """``[n, |Y|]`` scores of raw rows by one part of the model's sum alone (its G with the model's
    U and V), as the model scores them."""
    import tensorflow as tf

    from awe_tf.data.pipeline import feature_batch
    from awe_tf.models.inference import check_rows

    batch = feature_batch(check_rows(model, X))
    ids, weights = model.transform(tf.constant(batch["feature_ids"]), tf.constant(batch["feature_weights"]))
    ids, weights = model.with_bias(ids, weights)
    return part.score_all(model.U(ids), weights, model.V.table, None, ids).numpy()


def _ratio(scores, linear) -> np.ndarray:
    """The effective G of pairs, f / x^T U^T V y (NaN where the linear score is about 0)."""
    usable = np.abs(linear) > 1e-6
    return np.where(usable, scores / np.where(usable, linear, 1.0), np.nan)


def g_values(model, split: Split, rows, labels) -> np.ndarray:
    """G(x, y) of test rows ``rows`` and labels ``labels`` (see the module docstring). In a sum,
    the part built from the training set gives its G from its context rows, a constant its c,
    and any other part its effective G."""
    X = split.test.X
    parts = parts_of(model.affinity)
    if all(isinstance(part, Constant) for part in parts):  # G is c exactly; a ratio of scores would add rounding
        return np.full(len(rows), float(sum(part.c for part in parts)))
    source = model.affinity.reference_part()
    if source is not None:
        context = sp.csr_matrix(source.context(model.prepare(X)))
        G = np.asarray(context[rows, labels]).ravel()
        if model.affinity.additive:
            return model.affinity.added(G)
        if source.has_offset:
            G = G + context[:, -1].toarray().ravel()[rows]
        G = G + sum(p.c for p in parts if isinstance(p, Constant))
        others = [p for p in parts if not isinstance(p, Constant) and p.reference_part() is None]
        if others:
            linear = _linear_scores(model, X)[rows, labels]
            G = G + sum(_ratio(_part_scores(model, X, p)[rows, labels], linear) for p in others)
        return G
    return _ratio(model.score(X)[rows, labels], _linear_scores(model, X)[rows, labels])


def _summary(values: np.ndarray) -> dict:
    values = values[np.isfinite(values)]
    if not values.size:
        return {"mean": float("nan"), "median": float("nan"), "p10": float("nan"), "p90": float("nan")}
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "p10": float(np.quantile(values, 0.1)), "p90": float(np.quantile(values, 0.9))}


@dataclasses.dataclass
class PairValues:
    """What a profile summarises, one value per pair: G (for an additive affinity, what it adds)
    of the test positives and of random labels, and for an additive affinity the linear score
    x^T U^T V y of the same pairs."""

    positives: np.ndarray
    negatives: np.ndarray
    linear_positives: np.ndarray | None = None
    linear_negatives: np.ndarray | None = None


def pair_values(model, split: Split, seed: int = 0) -> PairValues:
    """G of a trained model on ``split``'s test positives and on random labels (:func:`_pairs`,
    drawn with ``seed``)."""
    (rows, labels), (negative_rows, negative_labels) = _pairs(split, seed)
    found = PairValues(g_values(model, split, rows, labels), g_values(model, split, negative_rows, negative_labels))
    if model.affinity.additive:  # what it adds competes with the linear score: keep that too
        linear = _linear_scores(model, split.test.X)
        found.linear_positives, found.linear_negatives = linear[rows, labels], linear[negative_rows, negative_labels]
    return found


def profile(model, split: Split, seed: int = 0, measured: PairValues | None = None, made: str | None = None) -> dict:
    """G of a trained model on ``split``'s test part (module docstring), as plain data; from
    ``measured`` where :func:`pair_values` has been called already (``seed``, of the random
    labels, then goes unused). ``made``: the closed form whose U and V the model holds (G = 1,
    nothing trained against a margin), as a run's record names it."""
    measured = measured if measured is not None else pair_values(model, split, seed)
    positive, negative = measured.positives, measured.negatives
    zero = float(np.mean(np.abs(positive) < 1e-9)) if positive.size else float("nan")
    mean_positive = _summary(positive)["mean"]
    report = {
        "affinity": spec_of(model.affinity),  # as --affinity names it, every setting written out
        "test_positives": int(positive.size),
        "g_zero_on_positives": zero,
        "g_positives": _summary(positive),
        "g_negatives": _summary(negative),
        "margin": model.margin,
    }
    if model.affinity.additive:  # what it adds, against the gap it competes with; no margin scaled
        report.update(additive=True, linear_positives=_summary(measured.linear_positives),
                      linear_negatives=_summary(measured.linear_negatives))
    elif made:  # its U and V were made, not trained against a margin
        report["made"] = made
    else:
        report["margin_in_linear_terms"] = model.margin / mean_positive if mean_positive > 0 else float("inf")
    return report


def _bins(groups: list[np.ndarray], count: int = 40) -> np.ndarray:
    """Histogram bin edges shared by ``groups`` (the positives' and the random labels' values):
    from the least to the greatest value, but no further than twice the span of the groups' 1st
    to 99th percentiles (the widest of each group's own, so a small group's tail is not cut by a
    large one's) beyond it, so that a few outliers (a ratio G = f / x^T U^T V y where the linear
    score is near 0) do not squash the rest into one bar; one bin a unit wide where the values
    are one value up to rounding (G = 1 of the linear model, read as such a ratio)."""
    groups = [group for group in groups if group.size]
    if not groups:
        return np.array([-0.5, 0.5])
    found = np.concatenate(groups)
    centre = float(np.median(found))
    low = min(float(np.percentile(group, 1)) for group in groups)
    high = max(float(np.percentile(group, 99)) for group in groups)
    if max(high, found.max()) - min(low, found.min()) <= 1e-3 * max(1.0, abs(centre)):
        return np.array([centre - 0.5, centre + 0.5])
    reach = 2 * (high - low)
    return np.linspace(max(found.min(), low - reach), min(found.max(), high + reach), count + 1)


def _beyond(part: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Which of ``part`` lie outside ``bins`` (beyond rounding)."""
    slack = 1e-6 * max(1.0, float(bins[-1] - bins[0]))
    return (part < bins[0] - slack) | (part > bins[-1] + slack)


def figure(report: dict, measured: PairValues):
    """The profile as a matplotlib ``Figure``, made without pyplot (so a notebook's plotting
    backend stays as it was): G (the vote: w N) on the test positives against random labels, as two
    histograms on shared bins, values beyond the bins counted in their edge bins; beside it, for
    an additive affinity, the linear score's; and for an iterative run the k-NN P@1 in each
    step's U."""
    from awe_tf.optional import require

    require("matplotlib", "drawing the diagnosis")
    from matplotlib.figure import Figure

    g = "w N" if report.get("additive") else "G"
    panels = [(f"{g} of a pair", measured.positives, measured.negatives)]
    if report.get("additive"):
        panels.append(("linear score x^T U^T V y", measured.linear_positives, measured.linear_negatives))
    steps = report.get("step_knn_precision") or []
    columns = len(panels) + bool(steps)
    shown = Figure(figsize=(4.5 * columns, 3.5), layout="tight")
    axes = shown.subplots(1, columns, squeeze=False)[0]
    for axis, (name, positive, negative) in zip(axes, panels, strict=False):
        positive, negative = positive[np.isfinite(positive)], negative[np.isfinite(negative)]
        bins = _bins([positive, negative])
        for part, label in ((negative, "random labels"), (positive, "test positives")):
            outside = int(_beyond(part, bins).sum())
            note = f"; {outside:,} beyond, at the edges" if outside else ""
            axis.hist(np.clip(part, bins[0], bins[-1]), bins, density=True, alpha=0.5,
                      label=f"{label} ({part.size:,}{note})")
        axis.set_xlabel(name)
        axis.set_ylabel("density")
        axis.legend(fontsize=8)
    title = f"{report['affinity']}: {g} on the test part"
    if "margin_in_linear_terms" in report:
        title += f" (margin {report['margin']:g} = {report['margin_in_linear_terms']:.3g} in linear terms)"
    axes[0].set_title(title, fontsize=9)
    if steps:
        numbers = report.get("knn_steps") or list(range(len(steps)))
        axes[-1].plot(numbers, steps, marker="o")
        for step, precision in zip(numbers, steps, strict=True):
            axes[-1].annotate(f"{precision:.3f}", (step, precision), textcoords="offset points", xytext=(0, 6),
                              ha="center", fontsize=8)
        middle = (max(steps) + min(steps)) / 2  # at least 0.1 of P@1 shown: a change of a few rows stays small
        span = max(max(steps) - min(steps), 0.1) * 0.6
        axes[-1].set_ylim(max(0.0, middle - span), min(1.0, middle + span))
        axes[-1].set_xticks(numbers)
        axes[-1].set_xlabel("iterative step (0: the linear model, or the model it started from)")
        axes[-1].set_ylabel("k-NN P@1 in the step's U")
    return shown


def plot(report: dict, measured: PairValues, path: str | Path) -> Path:
    """:func:`figure`, written to ``path`` (its format from the extension, as matplotlib reads it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure(report, measured).savefig(path, dpi=120, bbox_inches="tight")
    return path


def step_knn_precision(run_dir, split: Split, model_config: dict, k: int = 20, start=None,
                       start_digest: str | None = None, model_digest: str | None = None,
                       last_step: int | None = None, steps_dir: Path | None = None,
                       step_zero: Path | None = None) -> tuple[dict[int, float], str | None]:
    """k-NN P@1 in the U of each step of an iterative run: does the space G is built in improve
    from step to step?

    Args:
        run_dir: the run's directory; each step's U is read from the checkpoints it left
            (``run_dir/final/step-*``).
        split: the data the k-NN ranks (its training part the neighbours, its test part scored).
        model_config: the run's model settings (to rebuild a step's model around its checkpoint).
        k: the neighbours.
        start, start_digest: for a run started from another (``--init-from``), the model it was
            given and a digest of its U and V then (:func:`~awe_tf.models.saving.tables_digest`).
            That model was the run's step 0 and left no checkpoint; it is read from ``start``
            when it is still there and still the same.
        model_digest: the digest of the run's model (its U and V). Each step's checkpoint records
            the U and V it began from, which are the step before's: a step is read only where
            this chain leads from it to the run's model. A later run into the same directory
            that did not finish leaves checkpoints of its own steps beside the run's model;
            they are left out.
        last_step: the run's last step (its iterations); checkpoints of steps above it are
            another run's, left out.
        steps_dir: where the steps' checkpoints are (none: ``run_dir/final``; an ``--affinity
            auto`` run's winner's refit keeps them under ``run_dir/auto``).
        step_zero: the directory (holding ``checkpoints/``) of the training of the model that was
            step 0, where it left one (an auto run's WSABIE refit); the chain check leads to it too.

    Returns:
        ``({step: P@1}, note)``: the note says why steps are missing, else None.
    """
    import tensorflow as tf

    from awe_tf.config import ModelConfig
    from awe_tf.evaluation import embedding_knn, evaluate_baseline
    from awe_tf.models import AWEModel
    from awe_tf.models.saving import tables_digest
    from awe_tf.training import build_model

    def precision(model) -> float:
        return evaluate_baseline(embedding_knn(model, split.train.task, k, name="knn"), split)["precision@1"]

    def restored(checkpoint):
        model = build_model(split.train, ModelConfig(**{**model_config, "affinity": None}))  # U is all k-NN needs
        tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
        return model

    latest, digests, began_from = {}, {}, {}  # each step's model is read and let go, one at a time
    places = [(int(step.name.split("-")[1]), step) for step in Path(steps_dir or Path(run_dir, "final")).glob("step-*")]
    if step_zero is not None:
        places.append((0, Path(step_zero)))
    for number, step in places:
        checkpoint = tf.train.latest_checkpoint(str(step / "checkpoints" / "last"))
        if checkpoint is None:
            continue
        latest[number], digests[number] = checkpoint, tables_digest(restored(checkpoint))
        try:
            settings = json.loads((step / "checkpoints" / "state.json").read_text()).get("settings") or {}
        except (OSError, ValueError):
            settings = {}
        began_from[number] = (settings.get("start") or {}).get("tables")  # None: not recorded (an older run)
    notes = []
    beyond = sorted(n for n in latest if last_step is not None and n > last_step)
    if beyond:
        notes.append(f"the checkpoints of step{'s' * (len(beyond) > 1)} {', '.join(map(str, beyond))} are another "
                     f"run's (this one has {last_step} step{'s' * (last_step != 1)} after step 0): left out")
    stale = []
    steps = sorted((n for n in latest if n not in beyond), reverse=True)
    if model_digest is not None and steps:
        expected, above = model_digest, steps[0] + 1  # walking down from the last step: the U and V it ended with
        for number in steps:
            if expected is not None and number == above - 1 and digests[number] != expected:
                stale = [n for n in steps if n <= number]
                break
            expected, above = began_from[number], number
    if stale:
        notes.append(f"the checkpoints of step{'s' * (len(stale) > 1)} {', '.join(map(str, sorted(stale)))} are not "
                     "those of this run's model (a later run into its directory that did not finish): left out")
    out = {n: precision(restored(checkpoint)) for n, checkpoint in latest.items() if n not in stale and n not in beyond}
    if 0 not in latest and start is not None:
        try:
            given = AWEModel.load_model(start)
        except (OSError, ValueError) as error:
            notes.append(f"step 0, the model it started from ({start}), could not be read: {error}")
        else:
            if start_digest is None:  # recorded by runs from before the digest was
                notes.append(f"step 0, the model it started from ({start}), is left out: the run recorded no digest "
                             "of it")
            elif tables_digest(given) != start_digest:
                notes.append(f"step 0, the model it started from ({start}), has changed since")
            else:
                out[0] = precision(given)
    return dict(sorted(out.items())), "; ".join(notes) or None


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
        model = (f"the {report['made']} that --affinity auto chose (U and V its factors, nothing trained)"
                 if report.get("made") else "WSABIE")
        return f"G is the constant {positives['mean']:.4g}: the model is {model}"
    if report["g_zero_on_positives"] > 0.25:
        reasons.append(f"G is 0 for {100 * report['g_zero_on_positives']:.0f}% of the test positives, which then "
                       "rank by their prior alone")
    if negatives["mean"] > 0 and positives["mean"] / negatives["mean"] < 1.5:
        reasons.append(f"G hardly separates positives (mean {positives['mean']:.3g}) from random labels "
                       f"({negatives['mean']:.3g})")
    elif negatives["mean"] >= 0:
        reasons.append(f"G favours positives ({positives['mean']:.3g} against {negatives['mean']:.3g} for random "
                       "labels)")
    if report.get("margin_in_linear_terms", 0.0) > 2 * report["margin"]:
        reasons.append(f"and, scaling the score down, turns the margin {report['margin']:g} into "
                       f"{report['margin_in_linear_terms']:.3g} in linear terms (a positive must beat a label by "
                       "more than WSABIE asks, within the same bound on U and V)")
    steps = report.get("step_knn_precision")
    if steps and len(steps) > 1:
        trend = "improves" if steps[-1] > steps[0] + LEVEL else "degrades" if steps[-1] < steps[0] - LEVEL else \
            "holds"
        numbers = report.get("knn_steps") or list(range(len(steps)))  # a step left out is not in it
        best = int(np.argmax(steps))
        if steps[best] > max(steps[0], steps[-1]) + LEVEL:  # first against last would hide a peak between them
            trend += f" from first to last, best at step {numbers[best]}"
        given = report.get("steps_started_from")
        first = (f"from step {numbers[0]}" if numbers[0] != 0 else
                 f"step 0: the model it started from, {given}" if given else "step 0: the linear model's")
        reasons.append(f"k-NN P@1 in each step's U {trend} ({' -> '.join(f'{p:.3f}' for p in steps)}; {first})")
    return "; ".join(reasons) if reasons else "G is close to constant: the model behaves as WSABIE"


def diagnose(run_dir, split: Split, seed: int = 0, plot_to: str | Path | None = None) -> dict:
    """:func:`profile` of the model a run wrote (``run_dir``: the run's directory or its
    ``model/``; or any saved model's directory), plus the k-NN precision of its iterative steps
    where it has them (from the run's checkpoints), and a one-line :func:`verdict`; with
    ``plot_to``, its :func:`figure` written there too (the path kept as ``plot``)."""
    from awe_tf.models import AWEModel
    from awe_tf.models.saving import run_directory, tables_digest
    from awe_tf.runs import read_metrics

    model = AWEModel.load_model(run_dir)
    run_dir = run_directory(run_dir)  # None: a model saved outside a run, with no steps to read
    from awe_tf.training.auto import made_chosen

    metrics = read_metrics(run_dir)
    measured = pair_values(model, split, seed)
    report = profile(model, split, seed, measured, made=made_chosen(metrics))
    recorded = metrics if model.affinity.reference_part() is not None else None
    if recorded is not None:
        from awe_tf.config import ModelConfig, with_earlier_defaults

        config = with_earlier_defaults(recorded.get("model_config") or {})
        fields = {f.name for f in dataclasses.fields(ModelConfig)}
        places = {}
        if recorded.get("auto"):  # the winner's refit and WSABIE's, step 0, where auto's stages keep them
            from awe_tf.runs import AUTO
            from awe_tf.training.auto import WSABIE_STAGE, refit_stage, stage_directory

            places = {"steps_dir": stage_directory(run_dir / AUTO, refit_stage(recorded["affinity"])),
                      "step_zero": stage_directory(run_dir / AUTO, WSABIE_STAGE) / "final"}
        found, note = step_knn_precision(run_dir, split, {k: v for k, v in config.items() if k in fields},
                                         start=recorded.get("init_from"), start_digest=recorded.get("init_from_digest"),
                                         model_digest=tables_digest(model),
                                         last_step=len(recorded["epochs"]) - 1 if recorded.get("epochs") else None,
                                         **places)
        if not found and not note:
            steps = places.get("steps_dir") or run_dir / "final"
            note = f"the run's checkpoints of its steps ({steps}/step-*) are not there"
        report["step_knn_precision"], report["knn_steps"] = list(found.values()), list(found)
        if recorded.get("init_from"):
            report["steps_started_from"] = recorded["init_from"]  # step 0 is that model, not a linear one trained here
        if note:
            report["knn_steps_note"] = note
    report["verdict"] = verdict(report)
    if plot_to is not None:
        report["plot"] = str(plot(report, measured, plot_to))
    return report
