"""Reproduce the paper's tables on real data (``awe-tf reproduce annotation|recommendation``).

* Annotation (Tables 1 and 2): k-NN in input space, k-NN in WSABIE's embedding space, WSABIE,
  and AWE with the k-NN affinity (k = 20, 3 iterative steps, WSABIE's learning rate and margin
  reused) on CAL500, Corel5k, Emotions and Scene; P@1 and P@3; d = 100.
* Recommendation (Table 3) on ml-100k: log-odds SVD, WSABIE, AWE linear sigmoid for each beta
  (alpha = 1) and AWE top-k for each k; P@1 and P@10 as the change relative to WSABIE, as the
  paper reports them; d = 64.

Every model picks its number of epochs on the protocol's validation carve-out of the training
part (early stopping), then is refitted on the whole training part and scored once on the test
part (``docs/protocols.md`` splits). Output: ``results.md`` (tables), ``results.csv``,
PNG plots and ``settings.json`` (seeds and settings). Each finished unit of work (an annotation
data set, or the recommendation table, for one seed) is kept in ``kept/`` as it ends, with the
settings it ran with, so an interrupted run loses at most the unit it was in (:func:`over_seeds`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from awe_tf.config import engine_for
from awe_tf.data import load_dataset
from awe_tf.evaluation import baseline_scores, evaluate_model
from awe_tf.training import ModelConfig, TrainConfig
from awe_tf.training.selection import validate_then_refit

ANNOTATION = ("cal500", "corel5k", "emotions", "scene")
BETAS = (-1.0, -0.5, 0.0, 0.25, 0.5)
TOP_KS = (1, 5, 7, 11)
TOP_K_RESTS = (0.0, "learn")  # eq. 7's top-k; and G of the other terms learnt from 1 (WSABIE's ranking)


def top_k_row(k: int, rest: float | str) -> tuple[str, str, str]:
    """``(method, setting, affinity spec)`` of a top-k row: ``rest`` 0 is the paper's eq. 7."""
    if rest == "learn":
        return "AWE top-k, rest learnt", f"k={k}", f"topk:k={k},rest=learn"
    if float(rest) == 0.0:
        return "AWE top-k", f"k={k}", f"topk:k={k}"
    return f"AWE top-k, rest {float(rest):g}", f"k={k}", f"topk:k={k},rest={float(rest):g}"


def _quiet(line):
    pass


def train_chosen(train, model_config: ModelConfig, train_config: TrainConfig, iterations: int = 3):
    """The final model: epochs picked on the validation carve-out, then refitted on all of ``train``."""
    return validate_then_refit(train, model_config, train_config, iterations, log=_quiet).final.model


def annotation(datasets=ANNOTATION, dimension: int = 100, epochs: int = 30, iterations: int = 3, k: int = 20,
               seed: int = 0, engine: str = "graph", threads: int = 0, init_scale: float = ModelConfig.init_scale,
               log=print) -> list[dict]:
    """Rows ``{dataset, method, precision@1, precision@3}`` of Tables 1 and 2 (``engine="native"``:
    WSABIE and every step of AWE k-NN train with the native engine, on ``threads`` threads;
    ``init_scale`` as :class:`~awe_tf.config.ModelConfig`'s)."""
    rows = []
    for name in datasets:
        began = time.perf_counter()
        split = load_dataset(name)
        train_config = TrainConfig(epochs=epochs, seed=seed, verbose=0, engine=engine, threads=threads)
        model_config = ModelConfig(dimension=dimension, seed=seed, init_scale=init_scale)
        wsabie = train_chosen(split.train, model_config, train_config)
        log(f"{name}: WSABIE trained in {time.perf_counter() - began:.0f}s; AWE k-NN (k={k}, {iterations} "
            f"iterative step{'s' * (iterations != 1)}) next")
        awe = train_chosen(split.train, dataclasses.replace(model_config, affinity=f"knn:k={k}"), train_config,
                           iterations)
        log(f"{name}: AWE k-NN trained, {time.perf_counter() - began:.0f}s so far; scoring it and the baselines")
        baselines = baseline_scores(split, wsabie, k=k, ranks=(dimension,))
        methods = {"k-NN": baselines["knn_input"],
                   "k-NN (WSABIE space)": baselines["knn_embedding"],
                   "WSABIE": evaluate_model(wsabie.score, split)["metrics"],
                   f"AWE k-NN (k={k})": evaluate_model(awe.score, split)["metrics"]}
        for method, metrics in methods.items():
            rows.append({"dataset": name, "method": method, "precision@1": metrics["precision@1"],
                         "precision@3": metrics["precision@3"]})
        log(f"{name}: done in {time.perf_counter() - began:.0f}s")
    return rows


def recommendation(dimension: int = 64, epochs: int = 30, betas=BETAS, top_ks=TOP_KS, top_k_rests=TOP_K_RESTS,
                   seed: int = 0, engine: str = "graph", threads: int = 0, from_wsabie: bool = True,
                   init_scale: float = ModelConfig.init_scale, log=print) -> list[dict]:
    """Rows ``{method, setting, precision@1, precision@10, change@1, change@10}`` of Table 3 (the
    changes are relative to WSABIE, in percent; ``engine="native"`` trains WSABIE, linear sigmoid
    and top-k with the native engine, top-k with its rest learnt, which it cannot train, with the
    graph step). With
    ``from_wsabie`` (the paper's set-up) each AWE model is learnt jointly starting from the
    trained WSABIE's U and V (at each stage, the WSABIE of that stage's data); else from scratch.
    Top-k runs once per k and per ``top_k_rests`` value (:func:`top_k_row`); a learnt rest is
    logged with the row."""
    split = load_dataset("ml-100k")
    train_config = TrainConfig(epochs=epochs, seed=seed, verbose=0, monitor="precision@10", engine=engine,
                               threads=threads)
    model_config = ModelConfig(dimension=dimension, seed=seed, init_scale=init_scale)
    results = [("SVD", "", baseline_scores(split, ranks=(dimension,))["svd"], None)]  # the paper's, at d
    specs = [("WSABIE", "", None)]
    specs += [("AWE linear sigmoid", f"beta={b:g}", f"linear-sigmoid:alpha=1,beta={b:g}") for b in betas]
    specs += [top_k_row(k, rest) for rest in top_k_rests for k in top_ks]
    wsabie = None
    for method, setting, affinity in specs:
        began = time.perf_counter()
        config = dataclasses.replace(model_config, affinity=affinity)
        chosen = validate_then_refit(split.train, config, engine_for(config, train_config),
                                     init_from=wsabie if from_wsabie else None, log=_quiet)
        wsabie = chosen if affinity is None else wsabie
        rest = chosen.final.model.affinity.learnt_scalars().get("rest")
        results.append((method, setting, evaluate_model(chosen.final.model.score, split)["metrics"], rest))
        learnt = "" if rest is None else f" (rest learnt: {rest:.3f})"
        log(f"{' '.join(filter(None, (method, setting)))}: done in {time.perf_counter() - began:.0f}s{learnt}")
    return _with_changes([{"method": method, "setting": setting, "precision@1": m["precision@1"],
                           "precision@10": m["precision@10"], "rest learnt": rest}
                          for method, setting, m, rest in results])


def _with_changes(rows: list[dict]) -> list[dict]:
    """Recommendation rows with ``change@1`` and ``change@10``: percent against WSABIE's row."""
    wsabie = next(r for r in rows if r["method"] == "WSABIE")
    return [{**r, "change@1": 100 * (r["precision@1"] / wsabie["precision@1"] - 1),
             "change@10": 100 * (r["precision@10"] / wsabie["precision@10"] - 1)} for r in rows]


# The paper's own figures, for results.md to put beside ours. Its data (MagnaTagATune, YouTube) is
# not public, so only patterns and changes against WSABIE compare, never absolute values.
PAPER_TABLE_1 = {"WSABIE": (48.7, 37.5), "AWE k-NN": (52.7, 39.2)}  # MagnaTagATune, P@1 and P@3 in %
PAPER_TABLE_3 = {  # YouTube: (method, setting) -> change of P@1 and P@10 against WSABIE, in %
    ("SVD", ""): (-54, -57),
    ("AWE linear sigmoid", "beta=-1"): (2, 12),
    ("AWE linear sigmoid", "beta=-0.5"): (9, 16),
    ("AWE linear sigmoid", "beta=0"): (31, 29),
    ("AWE linear sigmoid", "beta=0.25"): (51, 40),
    ("AWE linear sigmoid", "beta=0.5"): (28, 20),
    ("AWE top-k", "k=1"): (6, 5),
    ("AWE top-k", "k=5"): (18, 17),
    ("AWE top-k", "k=7"): (19, 19),
    ("AWE top-k", "k=11"): (21, 21),
}


def _change(ours: float, wsabie: float) -> str:
    return f"{100 * (ours / wsabie - 1):+.1f}%" if wsabie else "-"


def _paper_cells(row: dict) -> dict:
    """A recommendation row's ``paper @1`` and ``paper @10``: the paper's Table 3 changes of its
    method and setting, or None where the paper has none."""
    change = PAPER_TABLE_3.get((row["method"], row["setting"]))
    return {"paper @1": f"{change[0]:+d}%" if change else None, "paper @10": f"{change[1]:+d}%" if change else None}


def paper_line(rows: list[dict]) -> str:
    """Annotation rows' AWE k-NN against WSABIE, per data set, beside the paper's Table 1
    (MagnaTagATune), as relative changes of P@1 / P@3."""
    awe, wsabie = PAPER_TABLE_1["AWE k-NN"], PAPER_TABLE_1["WSABIE"]
    ours = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        of = {r["method"].split(" (k=")[0]: r for r in rows if r["dataset"] == dataset}
        if "AWE k-NN" in of and "WSABIE" in of:
            ours.append(f"{dataset} " + " / ".join(_change(of["AWE k-NN"][metric], of["WSABIE"][metric])
                                                   for metric in ("precision@1", "precision@3")))
    return (f"AWE k-NN against WSABIE, P@1 / P@3: the paper's Table 1 (MagnaTagATune) {_change(awe[0], wsabie[0])} / "
            f"{_change(awe[1], wsabie[1])}; here {', '.join(ours) or '-'} (only the changes compare: the paper's "
            "data is not public)")


KEYS = {"annotation": ("dataset", "method"), "recommendation": ("method", "setting")}
METRICS = {"annotation": ("precision@1", "precision@3"), "recommendation": ("precision@1", "precision@10")}


KEPT = "kept"  # the finished units of a reproduce run, in its output directory


def check_settings(kind: str, settings: dict) -> None:
    """Refuse, before any work, a data set or a model a table's ``settings`` cannot run: an
    unknown annotation data set or a recommendation one in its place, one not here, a beta or
    k no affinity takes (ValueError or FileNotFoundError, naming it)."""
    from awe_tf.affinities import parse
    from awe_tf.data.registry import KNOWN, locate

    if kind == "annotation":
        for name in settings["datasets"]:
            if name in KNOWN and KNOWN[name][4] == "movielens":
                raise ValueError(f"{name} is a recommendation data set: the annotation table takes annotation ones")
            locate(name)
        return
    locate("ml-100k")
    for beta in settings["betas"]:
        parse(f"linear-sigmoid:alpha=1,beta={beta:g}")
    for rest in settings["top_k_rests"]:
        for k in settings["top_ks"]:
            parse(top_k_row(k, rest)[2])


def _kept_or_run(keep: Path | None, name: str, settings: dict, run, log) -> tuple[list[dict], bool]:
    """The rows of one unit of work, and whether they were kept: kept in ``keep`` by an earlier
    run with the same ``settings`` and the same training defaults (``TrainConfig``'s, which the
    run's models train with where the settings are silent; not those of how they run, which
    compute the same), else ``run()``'s, then kept there
    (written whole, or not at all)."""
    if keep is None:
        return run(), False
    from awe_tf import __version__
    from awe_tf.config import TrainConfig
    from awe_tf.data.registry import locate
    from awe_tf.training.callbacks import FREE_ON_RESUME

    names = settings.get("datasets") or ["ml-100k"]
    data = {name: sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in locate(name).iterdir()
                         if f.is_file()) for name in names}  # the files read, as they are now
    defaults = {k: v for k, v in TrainConfig().to_dict().items() if k not in FREE_ON_RESUME}  # what they compute
    key = {**settings, "data files": data, "awe-tf": __version__, "training defaults": defaults}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = Path(keep) / f"{name}-{digest}.json"
    if path.exists():
        log(f"{name}: kept from an earlier run ({path})")
        return json.loads(path.read_text())["rows"], True
    rows = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"settings": settings, "rows": rows}, default=str))
    os.replace(partial, path)
    return rows, False


def over_seeds(kind: str, seeds, log=print, keep=None, **settings) -> tuple[list[dict], list[dict], list[str]]:
    """Run the ``kind`` table once per seed: ``(mean rows, per-seed rows, kept)``, ``kept`` the
    units taken from ``keep`` (``seed-0-corel5k``, ``seed-1``), not run here. With several seeds a
    mean row also has each metric's sample standard deviation (``precision@1_std``, ...); the
    recommendation changes are those of the means. With ``keep`` (a directory) each annotation
    data set, or each seed's recommendation table, is kept there once finished, and taken from
    there by a later call with the same settings instead of being run again."""
    run = annotation if kind == "annotation" else recommendation
    per_seed, kept = [], []
    for seed in seeds:
        log(f"seed {seed}")
        units = [{"datasets": [name]} for name in settings["datasets"]] if kind == "annotation" else [{}]
        for unit in units:
            unit_settings = {**settings, **unit, "seed": seed}
            name = f"seed-{seed}" + (f"-{unit['datasets'][0]}" if unit else "")
            rows, was_kept = _kept_or_run(keep, name, unit_settings, lambda s=unit_settings: run(log=log, **s), log)
            per_seed += [{"seed": seed, **row} for row in rows]
            kept += [name] if was_kept else []
    return mean_rows(kind, per_seed), per_seed, kept


def seed_spread(values) -> float | None:
    """The standard deviation of a figure over seeds, as every table here gives it beside the
    mean: the sample's (divided by n - 1, the seeds being a few draws of many); None for one seed.

    Example:
        >>> round(seed_spread([0.30, 0.32, 0.34]), 6), seed_spread([0.3])
        (0.02, None)
    """
    values = np.asarray(values, np.float64)
    return float(values.std(ddof=1)) if values.size > 1 else None


def mean_rows(kind: str, per_seed: list[dict]) -> list[dict]:
    """Per-seed rows (each with ``seed``) averaged per method, in their first order."""
    keys, metrics = KEYS[kind], METRICS[kind]
    groups: dict[tuple, list[dict]] = {}
    for row in per_seed:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    rows = []
    for key, group in groups.items():
        row = dict(zip(keys, key, strict=True))
        for metric in metrics:
            values = np.array([g[metric] for g in group], np.float64)
            row[metric] = float(values.mean())
            if len(group) > 1:
                row[metric + "_std"] = seed_spread(values)
        if "rest learnt" in group[0]:  # top-k's learnt rest, a mean over seeds (None for other rows)
            learnt = [float(g["rest learnt"]) for g in group if g["rest learnt"] not in (None, "")]
            row["rest learnt"] = float(np.mean(learnt)) if learnt else None
        rows.append(row)
    return _with_changes(rows) if kind == "recommendation" else rows


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(row, column):
        value = row[column]
        if value is None:
            return ""
        if column.startswith("change"):
            return f"{value:+.1f}%"
        if column + "_std" in row:  # a mean over seeds
            return f"{value:.4f} ± {row[column + '_std']:.4f}"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _settings_line(settings: dict) -> str:
    """The settings a report's table was made with, of those ``settings`` holds, in one line."""
    seeds = settings.get("seeds")
    parts = [f"d = {settings['dimension']}" if "dimension" in settings else None,
             f"at most {settings['epochs']} epoch{'s' * (settings['epochs'] != 1)}" if "epochs" in settings else None,
             f"AWE k-NN in {settings['iterations']} iterative step{'s' * (settings['iterations'] != 1)}"
             if "iterations" in settings else None,
             f"seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))}" if seeds else None,
             f"engine {settings['engine']}" if "engine" in settings else None,
             f"initial scale {settings['init_scale']:g}" if "init_scale" in settings else None]
    return ", ".join(part for part in parts if part) + " (every setting: settings.json)"


def write_report(kind: str, rows: list[dict], directory, settings: dict,
                 per_seed: list[dict] | None = None) -> list[Path]:
    """``results.md``, ``results.csv``, plots and ``settings.json`` in ``directory`` (and, from
    several seeds, ``results_per_seed.csv``; the table and plots then show means, and the
    annotation bars their standard deviations)."""
    from matplotlib.figure import Figure  # not pyplot: a notebook's own plotting stays as it was

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "results.csv", directory / "results.md", directory / "settings.json"]
    _write_csv(written[0], rows)
    if per_seed is not None and len({r["seed"] for r in per_seed}) > 1:
        written.append(directory / "results_per_seed.csv")
        _write_csv(written[-1], per_seed)
    else:  # an earlier run's, of other seeds, would read as this one's
        (directory / "results_per_seed.csv").unlink(missing_ok=True)
    if kind == "annotation":
        text = _table(rows, ["dataset", "method", "precision@1", "precision@3"]) + f"\n\n{paper_line(rows)}"
        datasets = list(dict.fromkeys(r["dataset"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        for metric in ("precision@1", "precision@3"):
            figure = Figure(figsize=(8, 4))
            axis = figure.subplots()
            width = 0.8 / len(methods)
            for i, method in enumerate(methods):
                chosen = [next(r for r in rows if (r["dataset"], r["method"]) == (d, method)) for d in datasets]
                axis.bar([x + i * width for x in range(len(datasets))], [r[metric] for r in chosen], width,
                         yerr=[r.get(metric + "_std", 0.0) for r in chosen], label=method)
            axis.set_xticks([x + 0.4 - width / 2 for x in range(len(datasets))], datasets)
            axis.set_ylabel(metric)
            # above the plot, in one row: inside, it covered the tallest bars
            axis.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(methods), frameon=False)
            path = directory / f"annotation_{metric.replace('@', '_at_')}.png"
            figure.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
    else:
        columns = ["method", "setting", "precision@1", "precision@10", "change@1", "change@10", "paper @1", "paper @10"]
        learnt = any(r.get("rest learnt") is not None for r in rows)
        text = _table([{**row, **_paper_cells(row)} for row in rows], columns + ["rest learnt"] if learnt else columns)
        text += ("\n\npaper @1, paper @10: the paper's Table 3 (YouTube), the same changes against WSABIE (only "
                 "the changes compare: the paper's data is not public)")
        for family, name, key in (("AWE linear sigmoid", "beta", "beta="), ("AWE top-k", "k", "k=")):
            methods = list(dict.fromkeys(r["method"] for r in rows if r["method"].startswith(family)))
            if not methods:  # a sweep not run: no plot, not an earlier run's left beside this table
                (directory / f"recommendation_{name}.png").unlink(missing_ok=True)
                continue
            figure = Figure(figsize=(5, 3.5))
            axis = figure.subplots()
            ticks = set()
            for method in methods:
                chosen = [r for r in rows if r["method"] == method]
                x = [float(r["setting"][len(key):]) for r in chosen]
                ticks.update(x)
                for metric, style in (("change@1", "-"), ("change@10", "--")):
                    plain = " (rest 0, eq. 7)" if family == "AWE top-k" and len(methods) > 1 else ""
                    label = metric.replace("change", "P") + (plain if method == family else method[len(family):])
                    axis.plot(x, [r[metric] for r in chosen], style, marker="o", label=label)
            axis.set_xticks(sorted(ticks))
            axis.axhline(0, color="grey", linewidth=0.8)
            axis.set_xlabel(name)
            axis.set_ylabel("change against WSABIE (%)")
            axis.set_title(family)
            axis.legend(fontsize=8)
            path = directory / f"recommendation_{name}.png"
            figure.savefig(path, dpi=120, bbox_inches="tight")
            written.append(path)
    written[1].write_text(f"# {kind} reproduction\n\n{_settings_line(settings)}\n\n{text}\n")
    written[2].write_text(json.dumps(settings, indent=1))
    return written
