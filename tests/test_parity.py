"""What is served is what was evaluated: for dense numeric, sparse binary and interaction data,
a trained model is exported in both flavours, loaded in a fresh process, sent the raw test rows
as the data files hold them, and its answers give the same precision@k as `awe-tf evaluate`."""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
BUNDLED = Path(__file__).resolve().parent.parent / "awe_tf" / "datasets" / "corel5k"
SMALL = ["--epochs", "2", "--no-validate", "--no-baselines", "--dimension", "16", "--negatives", "5", "--verbose", "0"]


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", *args], capture_output=True, text=True, env=ENV,
                          timeout=600)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def files(name, data_dir):
    if name == "corel5k":
        return ["--train", str(BUNDLED / "Corel5k-train-sparse.arff"),
                "--test", str(BUNDLED / "Corel5k-test-sparse.arff"), "--labels", str(BUNDLED / "Corel5k.xml")]
    if name == "emotions":
        folder = data_dir / "mulan" / "emotions"
        return ["--train", str(folder / "emotions-train.arff"), "--test", str(folder / "emotions-test.arff"),
                "--labels", str(folder / "emotions.xml")]
    return ["--train", str(data_dir / "ml-100k" / "u.data")]


CASES = {  # case -> (data, extra training flags)
    "emotions (dense numeric)": ("emotions", []),
    "emotions, k-NN affinity": ("emotions", ["--affinity", "knn:k=10", "--iterations", "1"]),
    "corel5k (sparse binary)": ("corel5k", []),
    "ml-100k (interactions)": ("ml-100k", ["--engine", "native", "--threads", "1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_served_answers_give_the_evaluated_precision(case, data_dir, tmp_path):
    name, extra = CASES[case]
    data = files(name, data_dir)
    run("train", *data, *SMALL, *extra, "-o", str(tmp_path / "run"))
    run("export", str(tmp_path / "run" / "model"), str(tmp_path / "base"), "--name", "m", *data,
        "--recall-queries", "200")
    for flavour, export in (("portable", "m-portable"), ("scann", "m")):
        out = tmp_path / f"{flavour}.json"
        proc = run("evaluate", str(tmp_path / "run" / "model"), "--served", str(tmp_path / "base" / export), *data,
                   "--output", str(out))
        report = json.loads(out.read_text())
        served, evaluated = report["served"]["metrics"], report["metrics"]
        assert served.keys() == evaluated.keys() and "precision@1" in served
        metadata = json.loads(next((tmp_path / "base" / export).glob("*/assets.extra/awe_export.json")).read_text())
        if flavour == "portable":  # exact ranking: the same figures, to the last digit
            assert served == evaluated, (case, served, evaluated)
            assert "the same metrics as the model" in proc.stdout
        else:  # ScaNN: within what its measured recall allows (exact here: these label sets are small)
            assert report["served"]["largest_difference"] <= 1.0 - metadata["recall"] + 1e-9, case
        assert metadata["recall"] >= 0.99


def test_raw_rows_straight_from_the_arff_file_are_served_as_evaluated(data_dir, tmp_path):
    """Emotions' test rows parsed here with the csv module alone (no awe-tf reader, no protocol
    scaling) and sent to the portable export in a fresh process: the same precision@1."""
    data = files("emotions", data_dir)
    run("train", *data, *SMALL, "-o", str(tmp_path / "run"))
    exported = run("export", str(tmp_path / "run" / "model"), str(tmp_path / "base"), "--name", "m", "--flavour",
                   "portable")
    # without data flags the export measures recall on the run's own test rows (Emotions has 202), as evaluate scores
    metadata = json.loads(next((tmp_path / "base" / "m").glob("*/assets.extra/awe_export.json")).read_text())
    assert metadata["recall_queries"] == 202 and "recall measured on the test part of" in exported.stdout
    # the ARFF attributes' names by feature id, for clients that send features by name
    names = json.loads(next((tmp_path / "base" / "m").glob("*/assets.extra/features.json")).read_text())
    attributes = [line.split()[1] for line in (data_dir / "mulan" / "emotions" / "emotions-test.arff").read_text()
                  .splitlines() if line.lower().startswith("@attribute")]
    assert names == attributes[:72]  # Emotions: 72 features, then its 6 labels
    run("evaluate", str(tmp_path / "run" / "model"), *data, "--output", str(tmp_path / "e.json"))
    lines = (data_dir / "mulan" / "emotions" / "emotions-test.arff").read_text().splitlines()
    rows = [r for r in csv.reader(lines[lines.index(next(x for x in lines if x.lower().startswith("@data"))) + 1:])
            if r]
    features = [[float(v) for v in r[:72]] for r in rows]  # Emotions: 72 numeric features, then 6 labels
    labels = [[int(v) for v in r[72:]] for r in rows]
    (tmp_path / "rows.json").write_text(json.dumps({"features": features, "labels": labels}))
    script = textwrap.dedent(f"""
        import json
        import numpy as np
        from awe_tf import serving
        rows = json.loads(open({str(tmp_path / "rows.json")!r}).read())
        served = serving.load({str(tmp_path / "base" / "m")!r})
        ids = np.tile(np.arange(72), (len(rows["features"]), 1))
        top = served(feature_ids=ids, feature_weights=np.array(rows["features"]), k=1)["label_ids"][:, 0]
        labels = np.array(rows["labels"])
        has = labels.sum(axis=1) > 0
        print(json.dumps(float(labels[np.arange(len(top)), top][has].mean())))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((tmp_path / "e.json").read_text())["metrics"]["precision@1"]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == pytest.approx(evaluated, abs=1e-12)


def test_raw_movielens_lines_with_their_ratings_are_served_as_evaluated(data_dir, tmp_path):
    """ml-100k's u.data read here with the csv module alone, held out as the protocol says, and
    each user's training items sent with their ratings, as the file has them, to the portable
    export in a fresh process: the same precision@1 and @10 as `awe-tf evaluate` (training read
    every rating as an interaction of 1, and so does the served model)."""
    data = files("ml-100k", data_dir)
    run("train", *data, *SMALL, "--engine", "native", "--threads", "1", "-o", str(tmp_path / "run"))
    run("export", str(tmp_path / "run" / "model"), str(tmp_path / "base"), "--name", "m", "--flavour", "portable")
    run("evaluate", str(tmp_path / "run" / "model"), *data, "--output", str(tmp_path / "e.json"))
    script = textwrap.dedent(f"""
        import csv, json
        import numpy as np
        from awe_tf import serving
        lines = list(csv.reader(open({str(data_dir / "ml-100k" / "u.data")!r}), delimiter="\\t"))
        ratings = {{}}
        for user, item, rating, _ in lines:
            ratings.setdefault(int(user), {{}})[int(item)] = float(rating)
        column = {{item: i for i, item in enumerate(sorted({{int(line[1]) for line in lines}}))}}
        rng = np.random.default_rng(0)  # the protocol: 5 held-out items per user, users in ascending order
        requests, held = [], []
        for user in sorted(ratings):
            items = sorted(ratings[user])
            out = set(rng.choice(items, 5, replace=False).tolist())
            requests.append([(column[i], ratings[user][i]) for i in items if i not in out])
            held.append({{column[i] for i in out}})
        width = max(map(len, requests))
        ids = np.full((len(requests), width), -1, np.int32)
        weights = np.zeros((len(requests), width), np.float32)
        for row, request in enumerate(requests):
            ids[row, :len(request)], weights[row, :len(request)] = zip(*request)
        assert weights.max() == 5.0  # the ratings themselves, not 1s
        served = serving.load({str(tmp_path / "base" / "m")!r})
        top = served(feature_ids=ids, feature_weights=weights, k=10)["label_ids"]
        hits = np.array([[label in held[row] for label in top[row]] for row in range(len(top))])
        print(json.dumps([float(hits[:, 0].mean()), float(hits.mean())]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((tmp_path / "e.json").read_text())["metrics"]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    assert served == pytest.approx([evaluated["precision@1"], evaluated["precision@10"]], abs=1e-12)
