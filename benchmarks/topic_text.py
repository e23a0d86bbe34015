"""WSABIE, ``--affinity auto`` and the baselines on synthetic bag-of-words text made from latent
topics (:func:`synthetic.topic_text`): the shape of the text sets ``--affinity auto`` must hold
up on without being tuned to them (thousands of documents, tens of thousands of words, hundreds of
labels), where the log-odds SVD baseline can rank above WSABIE. With ``--labels-from keywords``
the labels follow words of their own instead (:func:`synthetic.keyword_text`, by default 2,000
words and 200 labels), where regression can.

For each seed (the data's and the training's) it draws the set, splits it by the annotation
protocol and runs, as ``awe-tf train --dimension D`` and ``awe-tf train --dimension D --affinity
auto`` do, WSABIE (epochs chosen on the validation carve-out, then refitted) and auto (its
validation table printed), then scores both, the log-odds SVD (its rank chosen on the carve-out, as
the reports choose it: D, D/2, D/4 or D/8) and popularity on the test
part once. It prints each method's test P@1, P@3 and P@10 per seed, their means ± standard
deviations over the seeds, auto's paired change against WSABIE and what auto chose.

    python benchmarks/topic_text.py [--seeds 3] [--documents 18000] [--words 20000]
        [--labels 600] [--topics 40] [--labels-from topics|keywords] [--keywords 3]
        [--dimension 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
from quality import markdown, mean_sd  # noqa: E402
from synthetic import check_keyword_sizes, check_topic_sizes, keyword_text, topic_text  # noqa: E402

import awe_tf  # noqa: E402, F401  (sets up Keras 2 before TensorFlow is imported)
from awe_tf.baselines import LogOddsSVD, Popularity, svd_ranks  # noqa: E402
from awe_tf.evaluation import evaluate_model, svd_rank  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig, choose_affinity  # noqa: E402
from awe_tf.training.selection import validate_then_refit  # noqa: E402

METRICS = ("precision@1", "precision@3", "precision@10")
METHODS = ("WSABIE", "auto", "SVD", "popularity")


def draw(args, seed: int):
    """The seed's set, as the flags ask."""
    if args.labels_from == "keywords":
        return keyword_text(args.documents, args.words, args.labels, args.keywords, seed=seed)
    return topic_text(args.documents, args.words, args.labels, args.topics, seed=seed)


def one_seed(seed: int, args) -> dict:
    split = draw(args, seed)
    model_config, train_config = ModelConfig(dimension=args.dimension, seed=seed), TrainConfig(seed=seed, verbose=0)
    began = time.perf_counter()
    wsabie = validate_then_refit(split.train, model_config, train_config, 1).final.model
    wsabie_seconds = time.perf_counter() - began
    began = time.perf_counter()
    auto = choose_affinity(split.train, model_config, train_config)
    auto_seconds = time.perf_counter() - began
    print(auto.table())
    rank = svd_rank(split.train, svd_ranks(args.dimension), seed)
    scorers = {"WSABIE": wsabie.score, "auto": auto.final.model.score,
               "SVD": LogOddsSVD(rank, seed=seed).fit(split.train).score,
               "popularity": Popularity().fit(split.train).score}
    metrics = {name: {m: float(evaluate_model(score, split)["metrics"][m]) for m in METRICS}
               for name, score in scorers.items()}
    print(f"seed {seed}: " + "; ".join(f"{name} " + " ".join(f"{metrics[name][m]:.4f}" for m in METRICS)
                                       for name in METHODS) + f" (P@1 P@3 P@10); auto chose {auto.name}", flush=True)
    return {"seed": seed, "metrics": metrics, "auto_chose": auto.name, "seconds": {"WSABIE": wsabie_seconds,
                                                                                  "auto": auto_seconds}}


def table(runs: list[dict]) -> str:
    rows = []
    for m in METRICS:
        values = {name: [run["metrics"][name][m] for run in runs] for name in METHODS}
        rows.append({"metric": m.replace("precision", "P"), **{name: mean_sd(values[name]) for name in METHODS},
                     "auto - WSABIE": mean_sd(np.subtract(values["auto"], values["WSABIE"]))})
    seconds = {name: np.mean([run["seconds"][name] for run in runs]) for name in ("WSABIE", "auto")}
    chose = ", ".join(run["auto_chose"] for run in runs)
    return markdown(rows) + f"\n\nauto chose: {chose}; seconds WSABIE / auto: {seconds['WSABIE']:.0f} / " \
        f"{seconds['auto']:.0f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--documents", type=int, default=18_000)
    parser.add_argument("--words", type=int, help="default: 20000 (topics), 2000 (keywords)")
    parser.add_argument("--labels", type=int, help="default: 600 (topics), 200 (keywords)")
    parser.add_argument("--topics", type=int, default=40)
    parser.add_argument("--labels-from", choices=("topics", "keywords"), default="topics",
                        help="what a document's labels follow: its latent topics, or words of their own")
    parser.add_argument("--keywords", type=int, default=3, help="words of each label's own (keywords)")
    parser.add_argument("--dimension", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write every seed's figures here")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.dimension < 1:
        parser.error("--seeds and --dimension must be at least 1")
    keywords = args.labels_from == "keywords"
    if args.words is None:
        args.words = 2_000 if keywords else 20_000
    if args.labels is None:
        args.labels = 200 if keywords else 600
    try:
        if keywords:
            check_keyword_sizes(args.documents, args.words, args.labels, args.keywords)
        else:
            check_topic_sizes(args.documents, args.words, args.labels, args.topics)
    except ValueError as error:
        parser.error(str(error))
    runs = [one_seed(seed, args) for seed in range(args.seeds)]
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
