"""What each weight of the neighbour vote does, on the carve-out and on the test part.

For each data set and seed: WSABIE trained the protocol's way (``awe-tf train --dimension 100``'s
model: epochs chosen on the validation carve-out, then refitted), then the vote
(``vote:weight=w,k=20``) built on it at each weight, nothing trained, and scored on the carve-out
(on WSABIE's carve-out model) and on the test part (on its refit), beside k-NN in WSABIE's space.
It prints each weight's change against WSABIE on the two reported metrics, per run and as the
mean, worst and count of losses over the runs: the evidence ``--affinity auto``'s rule for the
vote rests on (README, "Choosing an affinity").

``--folds N`` (annotation sets; ignored, with a note, for recommendation sets) adds a third
part, out of fold: the training part is cut into N seeded folds; for each, WSABIE is trained on
the others for the epochs the carve-out chose (no early stopping of its own) and every method is
built on it and scored on the fold's rows. So each weight is measured on every training row, N
times the carve-out's rows, and the carve-out's optimism for WSABIE (its epochs chosen on the rows
that compare the methods) is diluted to the carve-out's share of the rows scored. It also writes
the paired standard error of each method's change against WSABIE over those rows. Two things
still differ from the test part's models: those train on all the training rows, so the vote and
k-NN have 1/(N-1) more neighbours to draw on; and the numeric columns' standardisation is the
training part's, which includes each fold's features (not its labels), as the carve-out's does.
Where the test part's changes differ from the out-of-fold ones by more than that explains, the
test file is drawn from elsewhere than the training file.

    AWE_DATA_DIR=../shared/data python benchmarks/vote_weights.py [--datasets emotions scene ...]
        [--seeds 3] [--weights 1 3 10] [--folds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import awe_tf  # noqa: E402, F401  (sets up Keras 2 before TensorFlow is imported)
from awe_tf.baselines import KNN  # noqa: E402
from awe_tf.data import RECOMMENDATION, load_dataset  # noqa: E402
from awe_tf.data.dataset import Split  # noqa: E402
from awe_tf.metrics import ranked, row_values  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig  # noqa: E402
from awe_tf.training.auto import VOTE_K, check_metric, vote_spec  # noqa: E402
from awe_tf.training.iterative import on_linear_model  # noqa: E402
from awe_tf.training.selection import checked_validation, refit, validate_then_refit  # noqa: E402

DATASETS = ["cal500", "corel5k", "emotions", "scene", "tmc2007", "ml-100k"]


def _rows(top, positives, metrics) -> list[np.ndarray]:
    return [row_values(top, positives, metric) for metric in metrics]


def row_scores(split, train, wsabie, model_config, weights, metrics) -> dict:
    """Each method's value of each metric per row of ``split``'s test part: WSABIE, the vote at
    each weight (built on ``wsabie`` from ``train``) and k-NN in WSABIE's space."""
    test, k = split.test, max(int(metric.split("@")[1]) for metric in metrics)
    out = {"WSABIE": _rows(ranked(wsabie.score, test.X, test.n_labels, k, split.exclude, split.candidates),
                           test.Y, metrics)}
    for weight in weights:
        vote = on_linear_model(train, dataclasses.replace(model_config, affinity=vote_spec(weight)), wsabie).model
        out[f"w={weight:g}"] = _rows(ranked(vote.score, test.X, test.n_labels, k, split.exclude, split.candidates),
                                     test.Y, metrics)
    knn = KNN(VOTE_K, transform=wsabie.embed_inputs, exclude_self=train.task == RECOMMENDATION).fit(train)
    top = ranked(lambda X, rows: knn.score(X, query_ids=test.row_ids[rows]), test.X, test.n_labels, k,
                 split.exclude, split.candidates, with_rows=True)
    out["k-NN (WSABIE space)"] = _rows(top, test.Y, metrics)
    return out


def _means(rows: dict) -> dict:
    return {method: [float(values.mean()) for values in metrics] for method, metrics in rows.items()}


def scores(split, train, wsabie, model_config, weights, metrics) -> dict:
    """Each method's mean of each metric on ``split``'s test part (:func:`row_scores`)."""
    return _means(row_scores(split, train, wsabie, model_config, weights, metrics))


def out_of_fold(train, epochs, model_config, train_config, weights, metrics, folds: int, seed: int) -> dict:
    """Every row of ``train`` scored by a model trained without its fold (module docstring):
    WSABIE refitted on the other folds for ``epochs``. ``{"means": each method's mean of each
    metric, "errors": the paired standard error of its change against WSABIE's, "rows": the rows
    scored}``."""
    fold = np.random.default_rng(seed).permutation(train.n_examples) % folds
    per_fold = []
    for f in range(folds):
        part = Split(train=train.rows(fold != f), test=train.rows(fold == f))
        wsabie = refit(part.train, model_config, train_config, epochs, 1, log=lambda line: None).model
        per_fold.append(row_scores(part, part.train, wsabie, model_config, weights, metrics))
    rows = {method: [np.concatenate([scored[method][i] for scored in per_fold]) for i in range(len(metrics))]
            for method in per_fold[0]}
    errors = {method: [float((values - base).std(ddof=1) / np.sqrt(values.size))
                       for values, base in zip(rows[method], rows["WSABIE"], strict=True)]
              for method in rows if method != "WSABIE"}
    return {"means": _means(rows), "errors": errors, "rows": int(rows["WSABIE"][0].size)}


def run(dataset: str, seed: int, weights, folds: int = 0) -> dict:
    """One data set and seed: WSABIE the protocol's way, then every method on the carve-out, the
    test part and, with ``folds``, out of fold (module docstring)."""
    split = load_dataset(dataset)
    monitor = "precision@10" if split.train.task == RECOMMENDATION else "precision@1"
    metrics = (monitor, check_metric(monitor))
    model_config = ModelConfig(dimension=100, seed=seed)
    train_config = TrainConfig(verbose=0, seed=seed, monitor=monitor)
    chosen = validate_then_refit(split.train, model_config, train_config, 1, log=lambda line: None)
    carve = checked_validation(split.train)
    result = {"data": dataset, "seed": seed, "metrics": list(metrics), "epochs": chosen.epochs,
              "carve-out": scores(carve, carve.train, chosen.validation.model, model_config, weights, metrics),
              "test": scores(split, split.train, chosen.final.model, model_config, weights, metrics)}
    if folds and split.train.task == RECOMMENDATION:
        print(f"{dataset}: no out-of-fold part (--folds cuts annotation rows; a recommendation set's users keep "
              "training items in every part)", flush=True)
    elif folds:
        scored = out_of_fold(split.train, chosen.epochs, model_config, train_config, weights, metrics, folds,
                             seed=100 + seed)  # folds drawn apart from the carve-out's default_rng(0)
        result["out of fold"], result["out of fold errors"] = scored["means"], scored["errors"]
        result["out of fold rows"] = scored["rows"]
    return result


def _changes(result: dict, part: str) -> str:
    """WSABIE's scores on ``part``, then each method's changes against them (out of fold, with
    their paired standard errors)."""
    base, errors = result[part]["WSABIE"], result.get(part + " errors", {})

    def change(method, values):
        spread = errors.get(method, [None] * len(values))
        return " / ".join(f"{v - b:+.3f}" + ("" if e is None else f" ± {e:.3f}")
                          for v, b, e in zip(values, base, spread, strict=True))

    return (f"{' / '.join(result['metrics'])}: WSABIE {' / '.join(f'{v:.3f}' for v in base)}; "
            + ", ".join(f"{m} {change(m, v)}" for m, v in result[part].items() if m != "WSABIE"))


def summary(results: list[dict], part: str) -> list[str]:
    """Per method: mean, worst and number of losses of its change against WSABIE, per metric
    (over the runs that have ``part``)."""
    results = [r for r in results if part in r]
    if not results:
        return []
    methods = [m for m in results[0][part] if m != "WSABIE"]
    lines = [f"{part}: change against WSABIE over {len(results)} runs (mean / worst / runs below WSABIE), "
             "monitored metric then check metric"]
    for method in methods:
        changes = np.array([np.subtract(r[part][method], r[part]["WSABIE"]) for r in results])
        cells = [f"{changes[:, i].mean():+.3f} / {changes[:, i].min():+.3f} / {int((changes[:, i] < -1e-9).sum())}"
                 for i in range(changes.shape[1])]
        lines.append(f"  {method:<22}" + "    ".join(cells))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    parser.add_argument("--folds", type=int, default=0,
                        help="also score every training row out of fold, with this many folds (annotation sets)")
    parser.add_argument("--json", help="write every run's scores here")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.folds == 1 or args.folds < 0:
        parser.error(f"--folds must be 0 (none) or at least 2, got {args.folds}")
    if not all(math.isfinite(weight) and weight >= 0 for weight in args.weights):
        parser.error(f"--weights must be finite numbers of at least 0, got {args.weights}")
    from awe_tf.data.registry import locate

    for dataset in args.datasets:  # every data set found before the first run
        try:
            locate(dataset)
        except (FileNotFoundError, ValueError) as error:
            parser.error(str(error))
    results = []
    for seed in range(args.seeds):
        for dataset in args.datasets:
            result = run(dataset, seed, args.weights, args.folds)
            results.append(result)
            for part in ("test", "out of fold"):
                if part in result:
                    print(f"{dataset} seed {seed} {part}: {_changes(result, part)}", flush=True)
    for part in ("carve-out", "out of fold", "test"):
        print("\n".join(summary(results, part)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
