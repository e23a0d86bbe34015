"""The awe-tf command, run as a user would: a subprocess with the installed entry point (each
affinity's case trains through the command's ``main`` in this process, then reloads and evaluates in
a subprocess)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import awe_tf

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", *args], capture_output=True, text=True, env=ENV,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_a_graph_errors_cause_is_its_own_message_without_the_stack():
    """TensorFlow's graph errors open with a header and the Python stack where the node was
    defined; the lost-task line keeps the message that says which task and why."""
    import tensorflow as tf

    from awe_tf.cli import error_cause

    @tf.function
    def failing(x):
        with tf.control_dependencies([tf.debugging.assert_equal(x, 0, message="task /job:worker/task:1 is gone")]):
            return tf.identity(x)

    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        failing(tf.constant(1))
    assert "Detected at node" in str(raised.value)  # the shape of error this is for
    cause = error_cause(raised.value)
    assert cause.startswith("assertion failed: [task /job:worker/task:1 is gone]"), cause
    assert "Graph execution error" not in cause and "File " not in cause and "[[" not in cause


def test_train_on_the_bundled_default_then_evaluate(tmp_path):
    out = tmp_path / "run"
    proc = run("train", "--epochs", "2", "--dimension", "16", "--negatives", "5", "--steps-per-execution", "3",
               "-o", str(out))
    report = json.loads((out / "metrics.json").read_text())
    assert report["train_config"]["steps_per_execution"] == 3
    for key in ("precision@1", "precision@3", "precision@5", "precision@10"):
        assert 0.0 <= report["metrics"][key] <= 1.0
    assert set(report["baselines"]) == {"popularity", "knn_input", "knn_embedding", "svd"}
    assert report["baselines"]["popularity"]["precision@1"] < report["metrics"]["precision@1"]
    assert report["baselines"]["svd"]["rank"] in (16, 8, 4, 2)  # chosen on the carve-out among d's halvings
    assert (f"its rank chosen on the validation carve-out: {report['baselines']['svd']['rank']}, by precision@1"
            ) in proc.stdout
    assert report["n_test"] == 500 and report["n_excluded"] == 0 and report["train_seconds"] > 0
    assert "precision@1" in proc.stdout and "knn_input" in proc.stdout and "Epoch 1/" in proc.stdout
    assert "\nmodel (WSABIE) " in proc.stdout and "knn_embedding: cosine k-NN in the model's space" in proc.stdout
    assert "cuInit" not in proc.stderr + proc.stdout and "oneDNN" not in proc.stderr + proc.stdout
    evaluated = run("evaluate", str(out / "model"), "--output", str(tmp_path / "e.json"))
    again = json.loads((tmp_path / "e.json").read_text())
    assert again["metrics"] == pytest.approx(report["metrics"])
    assert "model" in evaluated.stdout and f"metrics: {tmp_path / 'e.json'}" in evaluated.stdout
    # --output may not write over the run's own files; a file of one's own beside them it may
    kept = (out / "metrics.json").read_text()
    for own in (out / "metrics.json", out / "model" / "awe_model.json"):
        refused = run("evaluate", str(out), "--output", str(own), check=False)
        assert refused.returncode == 2 and "would write into" in refused.stderr, refused.stderr
    assert (out / "metrics.json").read_text() == kept
    for mine in (out / "evaluated.json", out / "reports" / "evaluated.json"):
        run("evaluate", str(out), "--output", str(mine))
        assert json.loads(mine.read_text())["metrics"] == pytest.approx(report["metrics"])
    # nor may export write a version into the run's model/ folder (a later train would refuse it as foreign)
    refused = run("export", str(out), str(out), "--name", "model", "--flavour", "portable", check=False)
    assert refused.returncode == 2 and "the export " + str(out / "model") + " would write into" in refused.stderr
    assert "give another BASE or --name" in refused.stderr
    assert not any(part.isdigit() for part in os.listdir(out / "model"))  # no version written
    # predict on the test file's rows ranks as evaluate scored them
    from awe_tf.data.registry import KNOWN, locate

    test_file = locate("corel5k") / KNOWN["corel5k"][2]
    said = run("predict", str(out), "--rows", str(test_file), "-k", "10", "--output", str(tmp_path / "p.jsonl"))
    assert said.stdout.splitlines()[1].startswith("row 1: ")
    assert sum(line.startswith("row ") for line in said.stdout.splitlines()) == 5  # the other 495 in the file only
    assert "(495 rows more than the 5 above)" in said.stdout
    assert _answers_score(tmp_path / "p.jsonl", awe_tf.load_dataset("corel5k")) == pytest.approx(report["metrics"])
    (tmp_path / "rows.txt").write_text("1 499 374\n0 1:1\n")  # rows in another format than the run's data
    refused = run("predict", str(out), "--rows", str(tmp_path / "rows.txt"), check=False)
    assert "read as Mulan ARFF (the format of the model's data, corel5k)" in refused.stderr and refused.returncode == 2
    # a model made in Python and saved alone, without label names: the default data's, as evaluate takes it
    from awe_tf.models import AWEModel

    bare = AWEModel(499, 374, dimension=4, seed=0)
    bare.save_model(tmp_path / "bare")
    for base, name in ((out, "model"), (out / "validation", "exported")):  # nor into another run's folders
        other = run("export", str(tmp_path / "bare"), str(base), "--name", name, "--flavour", "portable", check=False)
        assert other.returncode == 2 and f"would write into {out}'s own files" in other.stderr, other.stderr
    run("predict", str(tmp_path / "bare"), "--rows", str(test_file), "-k", "3", "--output", str(tmp_path / "b.jsonl"))
    first = json.loads((tmp_path / "b.jsonl").read_text().splitlines()[0])
    split = awe_tf.load_dataset("corel5k")
    top, scores = bare.top_k(split.test.X[:1], 3)
    assert first["labels"] == [split.train.label_names[j] for j in top[0]]
    # a model saved outside a run (a folder named model, nothing else beside it): no run's files to keep
    import shutil

    shutil.copytree(out / "model", tmp_path / "alone" / "model")
    run("evaluate", str(tmp_path / "alone" / "model"), "--output", str(tmp_path / "alone" / "metrics.json"))


def _answers_score(answers_file, split) -> dict:
    """The metrics of ``awe-tf predict``'s answers (one JSON row per test row, in order) on the
    split's test part."""
    from awe_tf.metrics import ranking_report

    index = {name: j for j, name in enumerate(split.train.label_names)}
    answers = [json.loads(line) for line in answers_file.read_text().splitlines()]
    top = np.asarray([[index[name] for name in answer["labels"]] for answer in answers])
    return ranking_report(top, split.test.Y, (1, 3, 5, 10))["metrics"]


def test_predict_ranks_every_test_user_as_evaluate_scored_them(tmp_path):
    """A trained recommendation run's answers for its users (--user) give the metrics train
    reported; a new user's items (--items) rank as the model's top_k ranks that row, with the run's
    data file there or gone."""
    from awe_tf.data import load_split
    from awe_tf.data.interactions import rows_of_items
    from awe_tf.models import AWEModel

    rng = np.random.default_rng(0)
    lines = ["user,item,weight"] + [f"u{user},item-{item},{rng.integers(1, 4)}" for user in range(120)
                                    for item in rng.choice(np.arange(25) + 12 * (user % 4), 16, replace=False)]
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    run("train", "--train", str(clicks), "--epochs", "2", "--dimension", "8", "--no-baselines", "--verbose", "0",
        "-o", str(out))
    report = json.loads((out / "metrics.json").read_text())
    split = load_split(clicks)
    users = [str(user) for user in split.test.row_ids]
    said = run("predict", str(out), "--user", *users, "-k", "10", "--output", str(tmp_path / "p.jsonl"))
    assert said.stdout.startswith("data: clicks (what ") and f"\n{users[0]}: item-" in said.stdout
    assert _answers_score(tmp_path / "p.jsonl", split) == pytest.approx(report["metrics"])
    assert [json.loads(line)["row"] for line in (tmp_path / "p.jsonl").read_text().splitlines()] == users
    new = run("predict", str(out), "--items", "item-3", "item-7", "-k", "5", "--output", str(tmp_path / "n.jsonl"))
    answer = json.loads((tmp_path / "n.jsonl").read_text())
    model = AWEModel.load_model(out / "model")
    ids, scores = model.top_k(rows_of_items(list(model.label_names), [["item-3", "item-7"]]), 5)
    assert answer["labels"] == [model.label_names[j] for j in ids[0]] and "item-3" not in answer["labels"]
    assert answer["scores"] == pytest.approx(scores[0].tolist()) and "new user: " in new.stdout
    # past the items a user can be given (not their own, seen in training): every one of those, none else
    run("predict", str(out), "--user", users[0], "-k", "60", "--output", str(tmp_path / "all.jsonl"))
    given = json.loads((tmp_path / "all.jsonl").read_text())["labels"]
    own = {split.train.label_names[j] for j in split.train.X[0].indices}
    seen = {split.train.label_names[j] for j in np.flatnonzero(split.train.Y.getnnz(axis=0))}
    assert len(given) == len(set(given)) and set(given) == seen - own
    # --all-items: every item the file gives the user in, none of them ranked (a deployed model's question)
    run("predict", str(out), "--user", users[0], "--all-items", "-k", "60", "--output", str(tmp_path / "every.jsonl"))
    every = json.loads((tmp_path / "every.jsonl").read_text())
    had = {line.split(",")[1] for line in lines[1:] if line.split(",")[0] == users[0]}
    assert had > own and set(every["labels"]) == seen - had
    assert [split.train.label_names[j] for j in every["label_ids"]] == every["labels"]
    for command in (["predict", str(out), "--user", users[0]], ["evaluate", str(out)]):  # the data is not written over
        refused = run(*command, "--output", str(clicks), check=False)
        assert refused.returncode == 2 and "a data file this command reads" in refused.stderr, refused.stderr
    assert clicks.read_text() == "\n".join(lines) + "\n"
    # new users' interactions in a file, weights and a repeated pair (added up) included
    (tmp_path / "new.tsv").write_text("n1\titem-3\t2\nn2\titem-7\t1\nn1\titem-9\t1\nn1\titem-3\t1\n")
    run("predict", str(out), "--rows", str(tmp_path / "new.tsv"), "-k", "5", "--output", str(tmp_path / "r.jsonl"))
    answers = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    ids, scores = model.top_k(rows_of_items(list(model.label_names), [["item-3", "item-9"], ["item-7"]],
                                            [[3.0, 1.0], [1.0]]), 5)
    assert [a["row"] for a in answers] == ["n1", "n2"] and [a["label_ids"] for a in answers] == ids.tolist()
    (tmp_path / "odd.tsv").write_text("n1\titem-3\nn1\tnope\n")
    for asked, words in ((["--user", "nobody"], "--user: no row of clicks has the id 'nobody'"),
                         (["--items", "item-3", "nothing"], "--items: items the model does not have: 'nothing'"),
                         (["--rows", str(tmp_path / "odd.tsv")], "--rows " + str(tmp_path / "odd.tsv") +
                          ": items the model does not have: 'nope'")):
        refused = run("predict", str(out), *asked, check=False)
        assert refused.returncode == 2 and refused.stderr.startswith(f"error: {words}"), refused.stderr
        assert "items new since it was trained: --unknown-items skip ranks" in refused.stderr or "--user" in asked
    skipped = run("predict", str(out), "--rows", str(tmp_path / "odd.tsv"), "--unknown-items", "skip", "-k", "5",
                  "--output", str(tmp_path / "skipped.jsonl"))  # ranked for the items the model has, and said
    assert "note: 1 item the model does not have, left out of the rows (--unknown-items skip): 'nope'" in skipped.stdout
    user = run("predict", str(out), "--user", users[0], "--unknown-items", "skip", check=False)
    assert user.returncode == 2 and "--unknown-items goes with --items or --rows" in user.stderr
    assert json.loads((tmp_path / "skipped.jsonl").read_text())["label_ids"] == \
        model.top_k(rows_of_items(list(model.label_names), [["item-3"]]), 5)[0][0].tolist()
    # the run's data file gone (a run copied to another machine): the model's item names are all --items and
    # --rows need, the same answers; --user needs the data
    clicks.rename(tmp_path / "elsewhere.csv")
    alone = run("predict", str(out), "--rows", str(tmp_path / "new.tsv"), "-k", "5", "--output",
                str(tmp_path / "alone.jsonl"))
    assert f"note: the run's data files are gone ({clicks})" in alone.stdout
    assert [json.loads(line)["label_ids"] for line in (tmp_path / "alone.jsonl").read_text().splitlines()] == \
        ids.tolist()
    assert "new user: " in run("predict", str(out), "--items", "item-3", "item-7", "-k", "5").stdout
    refused = run("predict", str(out), "--user", users[0], check=False)
    assert refused.returncode == 2 and "names data files that are not there now" in refused.stderr, refused.stderr


def test_interactions_with_a_test_file_of_their_own_train_and_evaluate_on_it(tmp_path):
    """train --train log.csv --test later.csv: the test file's interactions are the test part (the
    data line says so, and counts a user only there); evaluate reads both files again and scores
    what train reported; predict ranks a user only in the test file (no training items)."""
    rng = np.random.default_rng(1)
    rows = [(f"u{user}", f"item-{item}") for user in range(60)
            for item in rng.choice(np.arange(20) + 10 * (user % 3), 14, replace=False)]
    train_rows = [row for i, row in enumerate(rows) if i % 14 < 10]
    test_rows = [row for i, row in enumerate(rows) if i % 14 >= 10] + [("late", "item-3"), ("late", "item-new")]
    for name, part in (("log.csv", train_rows), ("later.csv", test_rows)):
        (tmp_path / name).write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in part))
    out = tmp_path / "run"
    said = run("train", "--train", str(tmp_path / "log.csv"), "--test", str(tmp_path / "later.csv"), "--epochs", "2",
               "--dimension", "8", "--no-baselines", "--verbose", "0", "-o", str(out))
    assert "test 61 users (the test file's interactions: the data's own split; 1 test interaction with an item in " \
           "no training row: never ranked, never hit; 1 user only in the test file, tested with no training items)" \
           in said.stdout, said.stdout
    report = json.loads((out / "metrics.json").read_text())
    groups = report["by_training_items"]  # the users the model knows, apart from the one it does not
    assert (groups["with"]["users"], groups["without"]["users"]) == (60, 1)
    assert report["metrics"]["precision@1"] == pytest.approx((60 * groups["with"]["precision@1"]
                                                             + groups["without"]["precision@1"]) / 61)
    line = f"the model on the 60 test users with training items: P@1 {groups['with']['precision@1']:.4f}"
    assert line in said.stdout
    evaluated = run("evaluate", str(out), "--output", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == pytest.approx(report["metrics"])
    assert line in evaluated.stdout and "; test part: later.csv" in evaluated.stdout
    late = run("predict", str(out), "--user", "late", "-k", "3").stdout
    assert "late: item-" in late and "note: late: no item the model trained on, so ranked by what it learnt" in late
    new = run("predict", str(out), "--items", "item-new", "item-3", "-k", "3").stdout  # item-new: the test file's
    assert "note: item-new: in no training row, so read as nothing" in new and "note: new user" not in new
    # every interaction of both files: the test file's user is in the data, its items left out of the ranking
    every = run("predict", str(out), "--user", "late", "--all-items", "-k", "60", "--output", str(tmp_path / "a.jsonl"))
    assert every.returncode == 0 and not {"item-3", "item-new"} & set(json.loads((tmp_path / "a.jsonl").read_text())
                                                                         ["labels"])
    refused = run("evaluate", str(out), "--train", str(tmp_path / "log.csv"), check=False)  # the test file's item
    assert refused.returncode == 2 and f"a test file of its own, whose items count too: --test {tmp_path}" \
        in refused.stderr, refused.stderr
    (tmp_path / "new.csv").write_text("user,item\nz1,fresh-1\n")
    refused = run("train", "--train", str(tmp_path / "log.csv"), "--test", str(tmp_path / "new.csv"), check=False)
    assert refused.returncode == 2 and "every item of its test part is in no training row" in refused.stderr


def test_train_says_what_its_data_cannot_teach(tmp_path):
    """One xmlrepo file, no test file: the data line names the data by its folder (the file is
    train.txt), says the test part is every fifth row, and counts the training rows with no label
    and the label and feature only the test rows have (the label's row of V stays untrained, the
    model leaves the feature out), and the test row that has no other feature."""
    rows = []
    for i in range(50):
        if i % 5 == 0:  # test rows: label 3 and feature 5 only here (row 0: nothing else)
            rows.append(f"{i % 3},3 5:2" if i == 0 else f"{i % 3},3 {i % 4}:1 5:2")
        elif i in (1, 2):
            rows.append(f"{i % 4}:1")  # no label
        else:
            rows.append(f"{i % 3} {i % 4}:1 4:1")
    (tmp_path / "mydata").mkdir()
    data = tmp_path / "mydata" / "train.txt"
    data.write_text("50 6 4\n" + "\n".join(rows) + "\n")
    proc = run("train", "--train", str(data), "--epochs", "1", "--no-validate", "--no-baselines", "--dimension", "4",
               "--negatives", "2", "-o", str(tmp_path / "run"))
    assert "data: Dataset('mydata'" in proc.stdout and "engine: graph (the TensorFlow training step)" in proc.stdout
    assert ("test 10 examples (every fifth row of the file: no test file given; 1 row with no feature the model "
            "uses: each ranked as the others, by the learnt label prior (by label order with --no-bias))"
            ) in proc.stdout
    assert "2 training rows with no label: no pair to learn from" in proc.stdout
    assert "read as Extreme Classification text (--format xmlrepo), told from the name train.txt;" in proc.stdout
    assert "1 label in no training example, so untrained rows of V: 10 of the test part's 20 positives" in proc.stdout
    assert ("1 feature that no training row trains (in none, or numeric and constant there), left out of every row "
            "scored: 10 test values") in proc.stdout


def test_the_data_line_names_a_constant_column_whatever_the_test_rows_hold():
    """A numeric column constant in training is left out of every row scored: the data line says
    so even where the test rows hold the same constant (no test value it would have moved)."""
    from awe_tf.cli.train import _training_notes
    from awe_tf.data.protocols import Coverage

    constant = _training_notes(Coverage(untrained_features=1))
    assert constant == ["1 feature that no training row trains (in none, or numeric and constant there), left out of "
                        "every row scored"]
    assert _training_notes(Coverage(untrained_features=2, test_values_of_untrained_features=7))[0].endswith(
        "2 features that no training row trains (in none, or numeric and constant there), left out of every row "
        "scored: 7 test values")


def test_train_reads_weights_and_categories_and_says_which_numeric_columns_it_keeps(tmp_path):
    """An ARFF file of two tf-idf-like numeric columns (0 in most rows), one dense numeric
    column, and a motif declared {NO,YES} (genbase's shape): it trains, and the data line says
    the two sparse columns are kept as they are."""
    header = ("@relation w\n@attribute t1 numeric\n@attribute t2 numeric\n@attribute d numeric\n"
              "@attribute m {NO,YES}\n@attribute a {0,1}\n@attribute b {0,1}\n@data\n")
    rows = [f"{0.3 * (i % 3 == 0)},{0.7 * (i % 4 == 1)},{i % 5},{'YES' if i % 2 else 'NO'},{i % 2},{(i + 1) % 2}"
            for i in range(40)]
    (tmp_path / "w.arff").write_text(header + "\n".join(rows) + "\n")
    (tmp_path / "l.xml").write_text('<labels xmlns="http://mulan.sourceforge.net/labels"><label name="a"/>'
                                    '<label name="b"/></labels>')
    proc = run("train", "--train", str(tmp_path / "w.arff"), "--labels", str(tmp_path / "l.xml"), "--epochs", "1",
               "--no-validate", "--no-baselines", "--dimension", "4", "--negatives", "1", "-o", str(tmp_path / "run"))
    assert "|X|=4," in proc.stdout  # t1, t2, d, m=YES
    assert ("2 numeric columns 0 in half the training rows or more (bag-of-words weights), kept as they are, not "
            "standardised, so that rows stay sparse") in proc.stdout
    assert "1 numeric column standardised with the training part's mean and standard deviation" in proc.stdout  # d
    assert "1 column of 0/1 values (binary or nominal attributes, or numbers only 0 and 1 in training), kept as " \
           "they are" in proc.stdout  # m=YES: every column said once


def test_ids_written_with_other_zeros_and_unweighted_items_are_said(tmp_path):
    """A test file whose ids are the training file's with zeros added (a spreadsheet's) is read
    as it is, other users and items, and train's and evaluate's data lines say so; where every
    test item is such an id, the refusal says what they are. predict --items of a model trained
    on weighted items (ratings) notes that the items weigh 1 each."""
    rng = np.random.default_rng(0)
    lines = [f"{u},{i},{rng.integers(1, 6)}" for u in range(1, 41) for i in rng.choice(30, 8, replace=False)]
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "\n".join(lines) + "\n")
    (tmp_path / "t.csv").write_text("user,item\n001,7\n2,07\n3,8\n")
    (tmp_path / "z.csv").write_text("user,item\n3,0007\n")
    refused = run("train", "--train", str(tmp_path / "r.csv"), "--test", str(tmp_path / "z.csv"), check=False)
    assert refused.returncode == 2 and ("every item of its test part is in no training row, and an item never trained "
                                        "on is not ranked: every precision would be 0 (ids are compared as text; its "
                                        "items are training items written with other leading or decimal zeros (1: "
                                        "'0007' for '7'): write them alike)") in refused.stderr, refused.stderr
    out = tmp_path / "run"
    said = run("train", "--train", str(tmp_path / "r.csv"), "--test", str(tmp_path / "t.csv"), "--epochs", "1",
               "--no-validate", "--no-baselines", "--dimension", "4", "--negatives", "2", "-o", str(out)).stdout
    for what, pair in (("user", "'001' for '1'"), ("item", "'07' for '7'")):
        line = (f"note: {what} ids of the test file written with other leading or decimal zeros than training ids "
                f"(1: {pair})")
        assert line in said and line in run("evaluate", str(out)).stdout
    items = run("predict", str(out), "--items", "7", "8", "-k", "3").stdout
    assert "note: the model was trained on users whose items carry weights" in items
    assert "note: the model was trained" not in run("predict", str(out), "--user", "5", "-k", "3").stdout
    # a later week with new items: refused, or scored as the same week with them left out by hand (the model's
    # test-file item '07' is in neither: an item of the model's the data lacks)
    later = [f"{u},{i}" for u in range(1, 41) for i in (u % 30, (u + 11) % 30, 100 + u % 3)]
    (tmp_path / "later.csv").write_text("user,item\n" + "\n".join(later) + "\n")
    (tmp_path / "known.csv").write_text("user,item\n" + "\n".join(r for r in later if int(r.split(",")[1]) < 100))
    given = ["--train", str(tmp_path / "r.csv"), "--test"]
    refused = run("evaluate", str(out), *given, str(tmp_path / "later.csv"), check=False)
    assert refused.returncode == 2 and "3 of its items are not the model's ('100', '101', '102')" in refused.stderr
    skipped = run("evaluate", str(out), *given, str(tmp_path / "later.csv"), "--unknown-items", "skip",
                  "--output", str(tmp_path / "s.json")).stdout
    assert ("note: 3 items the model does not have, left out (--unknown-items skip): '100', '101', '102': 40 test "
            "interactions, never rankable, and 0 input items of the users'") in skipped
    assert json.loads((tmp_path / "s.json").read_text())["left_out"] == {
        "items": ["100", "101", "102"], "test_interactions": 40, "input_interactions": 0, "untested_users": 2}
    (tmp_path / "r2.csv").write_text((tmp_path / "r.csv").read_text() + "1,100,1\n2,101,1\n")  # a later log
    (tmp_path / "new.csv").write_text("user,item\n3,100\n4,101\n")  # nothing the model could rank: refused
    empty = run("evaluate", str(out), "--train", str(tmp_path / "r2.csv"), "--test", str(tmp_path / "new.csv"),
                "--unknown-items", "skip", check=False)
    assert empty.returncode == 2 and "its test part has no example with a positive label to score" in empty.stderr
    (tmp_path / "rows.csv").write_text("z,7\nz,8\n")  # a new user's items without the weights training's had
    assert "note: the model was trained on users whose items carry weights" in \
        run("predict", str(out), "--rows", str(tmp_path / "rows.csv"), "-k", "3").stdout
    known = run("evaluate", str(out), *given, str(tmp_path / "known.csv"), "--unknown-items", "skip",  # lacks '07'
                "--output", str(tmp_path / "k.json")).stdout
    assert "left out (--unknown-items skip)" not in known
    assert json.loads((tmp_path / "s.json").read_text())["metrics"] == \
        json.loads((tmp_path / "k.json").read_text())["metrics"]


def test_train_says_when_its_epochs_are_chosen_on_few_rows_or_capped(tmp_path):
    """50 rows: the carve-out scores 10, too few to tell epochs apart, and the line says so; the
    best epoch is the last --epochs allows, and the line says the score may still be rising."""
    rows = [f"{i % 3} {i % 4}:1 4:1" for i in range(50)]
    data = tmp_path / "small" / "train.txt"
    data.parent.mkdir()
    data.write_text("50 5 3\n" + "\n".join(rows) + "\n")
    proc = run("train", "--train", str(data), "--epochs", "1", "--no-baselines", "--dimension", "4", "--negatives", "2",
               "-o", str(tmp_path / "run"))
    chosen = proc.stdout.split("[2/2]")[0]
    assert "only 8 validation rows with a positive label to score: too few to tell epochs apart" in chosen
    assert "best epoch 1 (validation precision@1 = " in chosen
    assert "the last of --epochs 1, so the score may still be rising: try more" in chosen
    (tmp_path / "rows.txt").write_text("0 1:1\n")  # rows without their header: the model's counts are named
    refused = run("predict", str(tmp_path / "run"), "--rows", str(tmp_path / "rows.txt"), check=False)
    assert refused.returncode == 2 and "put '1 5 3' first (the model's F and L)" in refused.stderr
    assert "as its rows use them" not in refused.stderr  # the counts the rows alone give are not the ones asked for
    (tmp_path / "rows.txt").write_text("1 4 3\n0 1:1\n")  # a header of other counts: refused, naming the model's
    refused = run("predict", str(tmp_path / "run"), "--rows", str(tmp_path / "rows.txt"), check=False)
    assert refused.returncode == 2 and "its header's 4 features and 3 labels differ from the model's 5 and 3" \
        in refused.stderr


def test_a_copy_of_a_header_yes_file_is_refused_with_the_header_named(tmp_path):
    """A header of words above text ids reads as data unless --header yes says otherwise; the run
    records it for its own file only, so a copy read with --header auto has one more user and item:
    the refusal names the run's --header."""
    import shutil

    rng = __import__("numpy").random.default_rng(0)
    rows = ["person,thing"] + [f"u{user},i{item}" for user in range(40) for item in rng.choice(30, 12, replace=False)]
    data = tmp_path / "clicks.csv"
    data.write_text("\n".join(rows) + "\n")
    run("train", "--train", str(data), "--header", "yes", "--epochs", "1", "--no-validate", "--no-baselines",
        "--dimension", "4", "-o", str(tmp_path / "r"))
    shutil.copy(data, tmp_path / "copy.csv")
    refused = run("evaluate", str(tmp_path / "r"), "--train", str(tmp_path / "copy.csv"), check=False)
    assert refused.returncode == 2 and f"read its file ({data}) with --header yes" in refused.stderr, refused.stderr
    run("evaluate", str(tmp_path / "r"), "--train", str(tmp_path / "copy.csv"), "--header", "yes")
    # other data whose header --header auto reads as the run read its own: refused without the hint
    other = tmp_path / "other.csv"
    other.write_text("user,item\n" + "\n".join(f"u{user},i{item}" for user in range(40)
                                                for item in rng.choice(20, 12, replace=False)) + "\n")
    refused = run("evaluate", str(tmp_path / "r"), "--train", str(other), check=False)
    assert refused.returncode == 2 and "give the data it was trained on" in refused.stderr, refused.stderr
    assert "--header" not in refused.stderr, refused.stderr


def test_train_says_when_it_read_a_header_and_header_no_keeps_the_line(tmp_path):
    """A first user whose id alone is text, above integer users, reads as a header: train says
    so, and --header no (recorded with the run, so evaluate reads the file the same way) keeps it
    as data."""
    rng = __import__("numpy").random.default_rng(0)
    rows = ["anon\t3"] + [f"{user}\t{item}" for user in range(1, 40) for item in rng.choice(30, 12, replace=False)]
    data = tmp_path / "clicks.tsv"
    data.write_text("\n".join(rows) + "\n")
    common = ["--train", str(data), "--epochs", "1", "--no-validate", "--no-baselines", "--dimension", "4"]
    told = run("train", *common, "-o", str(tmp_path / "told"))
    assert "the first line, anon, 3, read as the columns' names (--header no keeps it" in told.stdout
    assert "n=39," in told.stdout
    assert json.loads((tmp_path / "told" / "metrics.json").read_text())["data_files"]["header"] == "yes"  # as read
    forced = run("train", *common, "--header", "yes", "-o", str(tmp_path / "forced"))
    assert "the first line, anon, 3, read as the columns' names (--header yes)" in forced.stdout
    kept = run("train", *common, "--header", "no", "-o", str(tmp_path / "kept"))
    assert "read as the columns' names" not in kept.stdout and "n=40," in kept.stdout
    assert json.loads((tmp_path / "kept" / "metrics.json").read_text())["data_files"]["header"] == "no"
    run("evaluate", str(tmp_path / "kept"))  # its data read again with --header no: the same fingerprint
    metrics = json.loads((tmp_path / "kept" / "metrics.json").read_text())["metrics"]
    again = run("evaluate", str(tmp_path / "kept"), "--train", str(data), "--output", str(tmp_path / "again.json"))
    assert json.loads((tmp_path / "again.json").read_text())["metrics"] == pytest.approx(metrics), again.stdout
    rerun = run("train", *common, "-o", str(tmp_path / "told"))  # the run's own file, no --header: as it read it
    assert f"read as the columns' names (as {tmp_path / 'told'} read it)" in rerun.stdout
    rerun = run("train", *common, "-o", str(tmp_path / "kept"))  # auto would read a header; kept read none
    assert "read as the columns' names" not in rerun.stdout and "n=40," in rerun.stdout
    exported = run("export", str(tmp_path / "kept"), str(tmp_path / "served"), "--flavour", "portable")
    assert "recall measured on the test part of clicks" in exported.stdout  # the run's data, read as recorded
    refused = run("export", str(tmp_path / "kept"), str(tmp_path / "served"), "--flavour", "portable", "--version",
                  "1", check=False)  # version 1 is there: refused before anything is said to be measured
    assert refused.returncode == 2 and refused.stdout == "" and "version" in refused.stderr, refused
    both = run("evaluate", str(tmp_path / "kept"), "--served", str(tmp_path / "served" / "awe"))
    assert "the served answers give the same metrics as the model" in both.stdout  # its own export: accepted
    # The export alone is scored on the data it names (the run's file, read with --header no), not the default
    alone = run("evaluate", "--served", str(tmp_path / "served" / "awe"), "--output", str(tmp_path / "alone.json"))
    assert "data: clicks (what " in alone.stdout and "awe_export.json records)" in alone.stdout, alone.stdout
    assert json.loads((tmp_path / "alone.json").read_text())["served"]["metrics"] == pytest.approx(metrics)
    same = run("evaluate", "--served", str(tmp_path / "served" / "awe"), "--train", str(data), "--output",
               str(tmp_path / "same.json"))  # the file the export records, named: read as recorded (--header no)
    assert json.loads((tmp_path / "same.json").read_text())["served"]["metrics"] == pytest.approx(metrics), same.stdout
    moved = data.rename(tmp_path / "moved.tsv")  # the export names a file that is gone: said, not scored on other data
    gone = run("evaluate", "--served", str(tmp_path / "served" / "awe"), check=False)
    assert gone.returncode == 2 and "awe_export.json names data files that are not there now" in gone.stderr
    told = run("evaluate", "--served", str(tmp_path / "served" / "awe"), "--train", str(moved), "--header", "no",
               "--output", str(tmp_path / "told.json"))  # the data given: the export's record is not read
    assert json.loads((tmp_path / "told.json").read_text())["served"]["metrics"] == pytest.approx(metrics), told.stdout


def test_a_printed_command_names_the_data_as_it_was_read():
    """tune's printed train command carries every data flag that is not a default (the command is
    quoted for a shell as a whole: ``Tuner.best``)."""
    from awe_tf.cli import build_parser
    from awe_tf.cli.data_flags import flags_of_data

    args = build_parser().parse_args(["tune", "--train", "my clicks.csv", "--duplicates", "sum", "--header", "no"])
    assert flags_of_data(args) == ["--train", os.path.abspath("my clicks.csv"), "--duplicates", "sum", "--header",
                                   "no"]  # files by their absolute paths: the command runs from anywhere
    assert flags_of_data(build_parser().parse_args(["tune", "--dataset", "emotions"])) == ["--dataset", "emotions"]
    assert flags_of_data(build_parser().parse_args(["tune", "--train", "x_data.txt", "--split-column", "3"])) == [
        "--train", os.path.abspath("x_data.txt"), "--split-column", "3"]
    assert "--split-column" not in flags_of_data(build_parser().parse_args(["tune", "--train", "x_data.txt",
                                                                            "--split-column", "1"]))


def test_output_into_a_reader_that_stopped_early_is_no_error():
    """``awe-tf datasets | head -1``: the pipe closes before the command writes; it exits 0, quietly."""
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "datasets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Broken pipe" not in error and "Exception" not in error, error


def test_a_run_whose_reader_stopped_early_finishes_its_work(tmp_path):
    """``awe-tf train ... | head -1``: training goes on after the reader has gone, publishes its
    model and exits 0."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "train", "--epochs", "2", "--dimension", "4",
                             "--negatives", "3", "--no-baselines", "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.readline()  # the first line, then the reader stops
    proc.stdout.close()
    error = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 0 and "Broken pipe" not in error, error[-2000:]
    assert (out / "model").exists() and json.loads((out / "metrics.json").read_text())["metrics"]["precision@1"] > 0


def test_datasets_lists_the_bundled_default():
    proc = run("datasets")
    corel = next(line for line in proc.stdout.splitlines() if line.startswith("corel5k"))
    assert "bundled]" in corel and "not available" not in corel


def test_a_run_of_a_named_set_reads_the_files_it_read_wherever_the_name_is_found_later(tmp_path, data_dir):
    """A run of --dataset NAME records the files the name was read from: its own data is read
    from them when AWE_DATA_DIR names another folder of that name (and the leak check holds: that
    folder's test part is the run's training rows); once they are gone, a run whose name now reads
    other data is refused, saying where it read and where the name reads now."""
    emotions = data_dir / "mulan" / "emotions"
    first, swapped = tmp_path / "d1" / "songs", tmp_path / "d2" / "songs"
    for folder, (train, test) in ((first, ("train", "test")), (swapped, ("test", "train"))):
        folder.mkdir(parents=True)
        shutil.copy(emotions / f"emotions-{train}.arff", folder / "songs-train.arff")
        shutil.copy(emotions / f"emotions-{test}.arff", folder / "songs-test.arff")
        shutil.copy(emotions / "emotions.xml", folder / "songs.xml")

    def awe(where, *args, check=True):
        proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", *args], capture_output=True, text=True,
                              env={**ENV, "AWE_DATA_DIR": str(where)}, timeout=600)
        assert not check or proc.returncode == 0, proc.stderr
        return proc

    out = tmp_path / "run"
    awe(tmp_path / "d1", "train", "--dataset", "songs", "-d", "8", "--epochs", "1", "--no-validate", "--no-baselines",
        "-o", str(out))
    trained = json.loads((out / "metrics.json").read_text())
    assert trained["dataset"] == "songs" and trained["dataset_files"]["train"] == str(first / "songs-train.arff")
    again = awe(tmp_path / "d2", "evaluate", str(out), "--output", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == pytest.approx(trained["metrics"])
    assert f"data: songs (what {out / 'metrics.json'} records, read from {first})" in again.stdout, again.stdout
    leaked = awe(tmp_path / "d2", "evaluate", str(out), "--dataset", "songs", check=False)
    assert leaked.returncode == 2 and "391 of the 391 labelled test rows of songs are ones" in leaked.stderr
    awe(tmp_path / "d2", "export", str(out), str(tmp_path / "served"), "--flavour", "portable")
    exported = json.loads(next((tmp_path / "served").glob("*/1/assets.extra/awe_export.json")).read_text())["data"]
    assert exported["dataset"] == "songs" and exported["data_files"] is None \
        and exported["dataset_files"] == trained["dataset_files"]  # the named set, as the run read it
    with open(first / "songs-train.arff", "a") as file:  # a row more in the files it read
        file.write((emotions / "emotions-test.arff").read_text().splitlines()[-1] + "\n")
    edited = awe(tmp_path / "d2", "evaluate", str(out), check=False)
    assert edited.returncode == 2 and f"(read again from {first / 'songs-train.arff'} and " in edited.stderr \
        and "which changed since)" in edited.stderr, edited.stderr
    shutil.rmtree(first)
    moved = awe(tmp_path / "d2", "evaluate", str(out), check=False)
    assert moved.returncode == 2 and f"(it read {first / 'songs-train.arff'} and {first / 'songs-test.arff'}; " \
        f"songs is read from {swapped} now)" in moved.stderr, moved.stderr


def test_bad_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("u1\ti1\n\nu2\ti2\tnot-a-number\n")
    proc = run("train", "--train", str(bad), "-o", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2
    assert f"{bad}:3" in proc.stderr and "not a number" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_on_files(tmp_path, data_dir):
    emotions = data_dir / "mulan" / "emotions"
    out = tmp_path / "files"
    run("train", "--train", str(emotions / "emotions-train.arff"), "--test", str(emotions / "emotions-test.arff"),
        "--labels", str(emotions / "emotions.xml"), "--epochs", "2", "--no-baselines", "-o", str(out))
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_test"] + report["n_excluded"] == 202
    assert set(report["metrics"]) == {"precision@1", "precision@3", "precision@5", "recall@1", "recall@3", "recall@5"}
    # The run (or its model/) is evaluated and diagnosed on the files it was trained on, found in its metrics.json
    run("evaluate", str(out), "--output", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == pytest.approx(report["metrics"])
    assert run("diagnose", str(out / "model")).stdout.startswith("emotions, ")  # emotions-train.arff's data set
    # The training file alone is split by the protocol, its test part cut from rows the run trained on:
    # refused, not scored as a test; a test file holding a few training rows is scored with a note
    given = ["--train", str(emotions / "emotions-train.arff"), "--labels", str(emotions / "emotions.xml")]
    for command in ("evaluate", "diagnose"):
        leaked = run(command, str(out), *given, check=False)
        assert leaked.returncode == 2 and "79 of the 79 labelled test rows of emotions are ones" in leaked.stderr, \
            leaked.stderr
    lines = (emotions / "emotions-train.arff").read_text().splitlines()
    rows = lines[next(i for i, line in enumerate(lines) if line.lower().startswith("@data")) + 1:][:10]
    mixed = tmp_path / "emotions-mixed.arff"
    mixed.write_text((emotions / "emotions-test.arff").read_text().rstrip("\n") + "\n" + "\n".join(rows) + "\n")
    noted = run("evaluate", str(out), *given, "--test", str(mixed))
    # the run's test file gone: its training file alone is what it trained on; both gone: not checked, said
    kept = (out / "metrics.json").read_text()
    record = json.loads(kept)
    record["data_files"]["test"] = str(tmp_path / "gone-test.arff")
    (out / "metrics.json").write_text(json.dumps(record))
    gone = run("evaluate", str(out), *given, check=False)
    assert gone.returncode == 2 and "79 of the 79 labelled test rows of emotions are ones" in gone.stderr, gone.stderr
    record["data_files"]["train"] = str(tmp_path / "gone-train.arff")
    (out / "metrics.json").write_text(json.dumps(record))
    unchecked = run("evaluate", str(out), *given)
    assert "whether " in unchecked.stdout and "was trained on these test rows is not checked" in unchecked.stdout
    (out / "metrics.json").write_text(kept)
    assert "note: 10 of the 212 labelled test rows of emotions are ones" in noted.stdout \
        and "(its own test part: 0 of 202)" in noted.stdout
    saved = shutil.copytree(out / "model", tmp_path / "saved")  # the model outside its run: the default data
    alone = run("diagnose", str(saved), check=False)
    assert alone.returncode == 2 and "72 features / 6 labels but the data 499 / 374 (corel5k)" in alone.stderr
    copied = tmp_path / "copied"  # the same file names, other data: refused, not scored as if the same
    copied.mkdir()
    for name in ("emotions-test.arff", "emotions.xml"):
        shutil.copyfile(emotions / name, copied / name)
    train = (emotions / "emotions-train.arff").read_text().splitlines()
    (copied / "emotions-train.arff").write_text("\n".join(train[:-1]) + "\n")  # one example fewer
    files = json.loads((out / "metrics.json").read_text())
    files["data_files"]["train"] = str(copied / "emotions-train.arff")
    (out / "metrics.json").write_text(json.dumps(files))
    changed = run("evaluate", str(out / "model"), check=False)
    assert changed.returncode == 2 and "the training data of" in changed.stderr and "Traceback" not in changed.stderr
    (copied / "emotions-train.arff").unlink()  # moved away since
    moved = run("evaluate", str(out), check=False)
    assert moved.returncode == 2 and "not there now" in moved.stderr and "metrics.json" in moved.stderr
    # export needs the data only to measure recall: it says why it measures on random rows, and exports
    exported = run("export", str(out), str(tmp_path / "served"), "--flavour", "portable")
    assert "recall measured on random rows" in exported.stdout and "not there now" in exported.stdout
    assert any((tmp_path / "served").glob("*/1/saved_model.pb"))
    del files["data_files"]  # a run recorded before the files were: its name alone is no data set
    files["dataset"] = "my-emotions"  # (one of the named sets' names would name that set, the same data here)
    (out / "metrics.json").write_text(json.dumps(files))
    unnamed = run("evaluate", str(out), check=False)
    assert unnamed.returncode == 2 and "names the data set 'my-emotions', which is not found now" in unnamed.stderr \
        and "--train" in unnamed.stderr
    (out / "metrics.json").write_text('{"dataset": ')  # a record cut short: the file is named, not a parser's line
    broken = run("evaluate", str(out), check=False)
    assert broken.returncode == 2 and f"{out / 'metrics.json'} cannot be read as JSON" in broken.stderr
    assert "Traceback" not in broken.stderr


def _kill_when(proc, state, epochs, deadline_s=300):
    """SIGKILL ``proc`` once the checkpoint ``state`` records ``epochs`` finished epochs."""
    import signal
    import time

    deadline = time.time() + deadline_s
    try:
        while time.time() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text())["epoch"] >= epochs:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)


def test_sigterm_stops_a_run_as_ctrl_c_does_and_main_puts_the_callers_handler_back(tmp_path):
    """SIGTERM (kill, timeout, a scheduler) ends a training run with 143 and how to go on; main()
    leaves SIGTERM's handler as it found it, called from the main thread or another."""
    import signal
    import threading

    from awe_tf import cli

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "train", "--epochs", "50", "--patience", "0",
                             "--dimension", "8", "--negatives", "2", "--no-validate", "--no-baselines", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    state = out / "final" / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, said = proc.communicate(timeout=120)
    assert proc.returncode == 143, said[-2000:]
    assert "terminated (SIGTERM): the same command again goes on from its last finished epoch" in said
    assert "Traceback" not in said
    mine = lambda signum, frame: None  # noqa: E731  (a caller's own handler)
    before, hook = signal.signal(signal.SIGTERM, mine), sys.unraisablehook
    try:
        assert cli.main(["datasets"]) == 0 and signal.getsignal(signal.SIGTERM) is mine
        codes = []
        thread = threading.Thread(target=lambda: codes.append(cli.main(["datasets"])))
        thread.start()
        thread.join()
        assert codes == [0] and signal.getsignal(signal.SIGTERM) is mine
        assert sys.unraisablehook is hook
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_lost_cluster_tasks_line_ends_the_output(tmp_path):
    """A cluster task lost mid-run stops the command with one line, and that line ends its output:
    what TensorFlow's C++ runtime logs after it as the process ends (a failure for each function
    it removes from the lost task) is dropped. Called from Python, main leaves stderr alone."""
    script = """
import atexit, os, sys
import tensorflow as tf
import awe_tf.cli.parser as parser
from awe_tf import cli

def lost(args):
    raise tf.errors.UnavailableError(None, None, "Socket closed")

parser.cmd_train = lost
atexit.register(lambda: os.write(2, b"E0000 context.cc:908] Failed to remove function remotely\\n"))
if sys.argv[1] == "from-python":
    cli.main(sys.argv[2:])
    sys.exit(cli.main(sys.argv[2:]))
sys.exit(cli.main())
"""
    flags = ["train", "--strategy", "parameter-server", "-o", str(tmp_path / "run")]
    for how in ([], ["from-python"]):
        proc = subprocess.run([sys.executable, "-c", script, *how, *flags], capture_output=True, text=True, env=ENV,
                              timeout=300)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert lines[-1 if not how else -2].startswith("error: a task of the cluster stopped answering (Socket closed)")
        assert ("Failed to remove function remotely" in lines[-1]) == bool(how), proc.stderr[-2000:]
        assert proc.stderr.count("error: a task of the cluster") == 1 + bool(how)


def test_an_interruption_caught_inside_a_finalizer_arrives_again():
    """Ctrl-C or SIGTERM whose handler ran inside a finalizer (a __del__, a thread pool's shutdown),
    which Python drops with "Exception ignored in", is delivered again to the main thread, so the
    command still stops; other errors in finalizers go to the hook there was before."""
    import signal
    import threading

    from awe_tf.cli.common import Terminated, catch_sigterm

    class Finalized:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    seen = []
    before, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        catch_sigterm()
        catch_sigterm()  # again (train does, after a strategy is made): one hook, not two
        for error in (Terminated(), KeyboardInterrupt()):
            began = time.monotonic()
            with pytest.raises(KeyboardInterrupt) as raised:
                Finalized(error)
                threading.Event().wait(30)  # a wait on a lock, which the signal wakes as the first would have
            assert type(raised.value) is type(error) and time.monotonic() - began < 10
        assert seen == []
        Finalized(ValueError("not an interruption"))
        assert [type(each.exc_value) for each in seen] == [ValueError]
    finally:
        signal.signal(signal.SIGTERM, before)
        sys.unraisablehook = hook


def test_killed_run_resumes_when_the_command_is_run_again(tmp_path):
    out = tmp_path / "killed"
    flags = ["--epochs", "12", "--patience", "0", "--dimension", "16", "--negatives", "5", "--pairs-per-batch", "256",
             "--no-baselines", "-o", str(out)]
    run("train", "--epochs", "1", "--dimension", "8", "--negatives", "5", "--no-baselines", "-o", str(out))
    assert (out / "model").exists() and (out / "metrics.json").exists()
    # A restart discards the earlier run's results at once: killed, it leaves no stale model to export.
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "train", "--restart", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    state = out / "validation" / "checkpoints" / "state.json"
    _kill_when(proc, state, 2)
    killed = json.loads(state.read_text())
    done = killed["epoch"]
    assert 2 <= done < 12 and killed["seconds"] > 0
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    again = run("train", *flags)
    assert f"Resuming from the checkpoint after epoch {done} " in again.stdout
    assert f"Epoch {done + 1}/12" in again.stdout and "Epoch 1/12" not in again.stdout.split("[2/2]")[0]
    report = json.loads((out / "metrics.json").read_text())
    assert len(report["validation"]["steps"][0]["val_precision@1"]) == 12
    # the killed process's training time counts too
    assert report["train_seconds"] >= killed["seconds"] + report["final_fit_seconds"]
    refused = run("train", "--epochs", "12", "--dimension", "8", "-o", str(out), check=False)
    assert refused.returncode == 2 and "--restart" in refused.stderr and "Traceback" not in refused.stderr
    assert "--dimension: 16 -> 8" in refused.stderr  # the setting named by its flag


def test_commands_on_a_run_with_a_continuation_cut_short_say_they_use_the_published_model(tmp_path):
    out = tmp_path / "run"
    flags = ["--dimension", "8", "--negatives", "5", "--no-validate", "--no-baselines", "--patience", "0",
             "--pairs-per-batch", "256", "-o", str(out)]
    run("train", "--epochs", "1", *flags)
    published = json.loads((out / "metrics.json").read_text())
    assert "holds training newer" not in run("evaluate", str(out)).stdout
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "train", "--epochs", "12", *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _kill_when(proc, out / "final" / "checkpoints" / "state.json", 3)
    evaluated = run("evaluate", str(out), "--output", str(tmp_path / "e.json"))
    assert f"note: {out} holds training newer than the model it published" in evaluated.stdout
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == pytest.approx(published["metrics"])
    run("train", "--epochs", "12", *flags)  # goes on, and publishes
    assert "holds training newer" not in run("evaluate", str(out)).stdout
    shutil.copytree(out, tmp_path / "copy", copy_function=shutil.copy)  # the files' times are the copy's
    assert "holds training newer" not in run("evaluate", str(tmp_path / "copy")).stdout


def test_what_a_run_writes_is_its_own_and_only_training_since_it_published_is_noted(tmp_path):
    from awe_tf import runs

    run = tmp_path / "run"
    own = {"auto/auto.json": "{}", "auto/auto.partial": "{", "auto/.worker-1/auto.json": "{}",
           "auto/WSABIE/validation/checkpoints/state.json": '{"seconds": 2.0}', "auto/WSABIE/final/logs/events": "",
           "final/step-1/checkpoints/state.json": '{"seconds": 3.0}', "final/step-1/logs/events": "",
           "final/checkpoints/state.json": '{"seconds": 5.0}', "model/weights/ckpt.index": "", "model/.DS_Store": "",
           "metrics.json": json.dumps({"metrics": {}, "trained_seconds": {
               "final/checkpoints/state.json": 5.0, "final/step-1/checkpoints/state.json": 3.0,
               "auto/WSABIE/validation/checkpoints/state.json": 2.0}})}
    for name, text in own.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(text)
    assert runs.foreign_parts(run) == [] and runs.unpublished_training_note(run) is None
    (run / "final" / "step-1" / "checkpoints" / "state.json").unlink()  # checkpoints removed since: no training
    assert runs.unpublished_training_note(run) is None
    (run / "final" / "checkpoints" / "state.json").write_text('{"seconds": 7.5}')  # trained on since
    assert "holds training newer than the model it published" in runs.unpublished_training_note(run)
    (run / "final" / "checkpoints" / "state.json").write_text('{"seconds": 5.0}')
    (run / "auto" / "vote" / "checkpoints").mkdir(parents=True)
    (run / "auto" / "vote" / "checkpoints" / "state.json").write_text('{"seconds": 1.0}')  # a stage begun since
    assert runs.unpublished_training_note(run) is not None
    (run / "metrics.json").write_text("{")  # unreadable: the command that reads it says so, not this note
    assert runs.unpublished_training_note(run) is None
    (run / "final" / "step-1" / "notes.txt").write_text("mine")
    assert runs.foreign_parts(run) == ["final (final/step-1/notes.txt is not a checkpoint)",
                                       "metrics.json (not a run's report)"]


def test_an_output_folder_holding_files_no_run_wrote_is_refused_before_they_are_replaced(tmp_path):
    small = ["--epochs", "1", "--dimension", "4", "--negatives", "3", "--no-baselines", "--no-validate"]
    cases = {"model/mine.bin": b"keep", "metrics.json": b'{"mine": true}', "validation/notes.txt": b"mine",
             "auto/plan.csv": b"a,b", "features.json": b"not json"}
    for number, (name, content) in enumerate(cases.items()):
        out = tmp_path / f"folder{number}"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)
        for restart in ([], ["--restart"]):
            refused = run("train", *small, "-o", str(out), *restart, check=False)
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert f"--output {out} holds {name.split('/')[0]} (" in refused.stderr, refused.stderr
            assert "not written by an awe-tf run" in refused.stderr and "Traceback" not in refused.stderr
            assert (out / name).read_bytes() == content
    own = tmp_path / "own"
    (own / "notes.txt").parent.mkdir()
    (own / "notes.txt").write_text("mine")  # beside a run's parts, a file of one's own is left alone
    run("train", *small, "-o", str(own))
    run("train", *small, "-o", str(own), "--restart")
    assert (own / "notes.txt").read_text() == "mine"


def test_a_finished_run_of_other_settings_is_not_replaced_without_a_word(tmp_path):
    """Iterative and plain runs keep their checkpoints in different places, and auto keeps none,
    so the checkpoints' own check cannot tell one run from another: the request recorded in
    metrics.json is compared."""
    out = str(tmp_path / "run")
    small = ["--epochs", "1", "--dimension", "4", "--negatives", "3", "--no-baselines", "-o", out]
    run("train", "--affinity", "knn:k=5", "--iterations", "1", *small)
    before = (tmp_path / "run" / "metrics.json").read_text()
    for other in ([], ["--affinity", "auto"]):
        refused = run("train", *other, *small, check=False)
        assert refused.returncode == 2, refused.stderr
        assert "holds a finished run of other data or settings" in refused.stderr
        assert 'affinity: "knn:k=5,prior=True,search=exact" -> ' in refused.stderr and "--restart" in refused.stderr
    assert (tmp_path / "run" / "metrics.json").read_text() == before
    assert "Resuming" in run("train", "--affinity", "knn:k=5", "--iterations", "1", *small).stdout  # the same: kept
    run("train", *small, "--restart")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["affinity"] == "constant"
    # auto keeps no checkpoints, so nothing else saw a rerun on other data: the request's fingerprints do
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        rows = [f"{rng.integers(4)} " + " ".join(f"{f}:1" for f in sorted(rng.choice(10, 3, replace=False)))
                for _ in range(100)]
        (tmp_path / f"{name}.txt").write_text("100 10 4\n" + "\n".join(rows) + "\n")
    auto = ["--affinity", "auto", "--epochs", "1", "--dimension", "4", "--negatives", "3", "--no-baselines", "-o",
            str(tmp_path / "auto")]
    run("train", "--train", str(tmp_path / "a.txt"), *auto)
    other = run("train", "--train", str(tmp_path / "b.txt"), *auto, check=False)
    assert other.returncode == 2 and "the training and test data changed" in other.stderr, other.stderr
    # the same training file with another test file: the test part is named as what changed
    plain = ["--epochs", "1", "--dimension", "4", "--negatives", "3", "--no-baselines", "--no-validate", "-o",
             str(tmp_path / "plain")]
    run("train", "--train", str(tmp_path / "a.txt"), "--test", str(tmp_path / "b.txt"), *plain)
    (tmp_path / "c.txt").write_text((tmp_path / "b.txt").read_text().replace("\n0 ", "\n1 ", 1))
    tested = run("train", "--train", str(tmp_path / "a.txt"), "--test", str(tmp_path / "c.txt"), *plain, check=False)
    assert tested.returncode == 2 and "(the test data changed)" in tested.stderr, tested.stderr


def test_a_data_file_given_through_a_link_is_read_again_through_it(tmp_path, capsys):
    """A run records a data file's path as given (absolute), not where a link points: an Extreme
    Classification file's split lists are read beside the path, so the file linked into a folder
    without lists (split by the protocol) and read again at its target, beside lists, would be
    another split: evaluate then scores the run's own test part, as train did."""
    from awe_tf import cli

    rng = np.random.default_rng(3)
    (tmp_path / "own").mkdir()
    (tmp_path / "linked").mkdir()
    rows = [f"{t},{(t + 1) % 6} " + " ".join(f"{f}:1" for f in sorted({*rng.choice(10, 3, replace=False).tolist(),
                                                                         10 + t}))
            for t in rng.integers(4, size=100)]
    (tmp_path / "own" / "Toy_data.txt").write_text("100 14 6\n" + "\n".join(rows) + "\n")
    order = rng.permutation(100) + 1
    (tmp_path / "own" / "toy_trSplit.txt").write_text("\n".join(map(str, np.sort(order[:70]))) + "\n")
    (tmp_path / "own" / "toy_tstSplit.txt").write_text("\n".join(map(str, np.sort(order[70:]))) + "\n")
    (tmp_path / "linked" / "Toy_data.txt").symlink_to(tmp_path / "own" / "Toy_data.txt")
    out = tmp_path / "run"
    assert cli.main(["train", "--train", str(tmp_path / "linked" / "Toy_data.txt"), "--epochs", "1", "--dimension",
                     "4", "--no-validate", "--no-baselines", "-o", str(out)]) == 0
    trained = capsys.readouterr().out
    assert "every fifth row of the file" in trained  # split by the protocol: no lists beside the link, as it says
    assert f"links to {tmp_path / 'own' / 'Toy_data.txt'}, beside which lie split lists" in trained
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["data_files"]["train"] == str(tmp_path / "linked" / "Toy_data.txt")
    assert recorded["data_files"]["split_column"] is None  # no lists read
    assert cli.main(["evaluate", str(out), "--output", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["metrics"] == recorded["metrics"] and again["n_test"] == recorded["n_test"] == 20
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--train", str(tmp_path / "own" / "Toy_data.txt")]) == 2  # its lists' split
    assert "with no split lists beside it, split by the protocol: give that path" in capsys.readouterr().err
    assert cli.main(["train", "--train", str(tmp_path / "linked" / "Toy_data.txt"), "--split-column", "2", "-o",
                     str(tmp_path / "never")]) == 2
    assert f"(the file it links to, {tmp_path / 'own' / 'Toy_data.txt'}, has: give that path)" in \
        capsys.readouterr().err


def test_a_recorded_path_drops_dots_only_where_they_name_the_same_folder(tmp_path, monkeypatch):
    """``..`` after a link is the folder above the link's target: a path through it is recorded as
    given, so that it reads the same file (and lists) again; elsewhere the path is tidied."""
    from awe_tf.runs import file_path

    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "x.txt").write_text("here")
    (tmp_path / "elsewhere" / "x.txt").write_text("there")
    (tmp_path / "data" / "link").symlink_to(tmp_path / "elsewhere" / "sub")
    monkeypatch.chdir(tmp_path / "data")
    through = file_path("link/../x.txt")
    assert through == str(tmp_path / "data" / "link" / ".." / "x.txt") and Path(through).read_text() == "there"
    assert file_path("../data/x.txt") == str(tmp_path / "data" / "x.txt")
    assert file_path(None) is None


def test_another_split_of_a_files_own_lists_is_recorded_and_read_again(tmp_path, capsys):
    """--split-column N splits an Extreme Classification file by its lists' column N; the run
    records it, so evaluate of the run (and a printed command) reads that split again."""
    from awe_tf import cli

    rng = np.random.default_rng(4)
    rows = [f"{t},{(t + 1) % 6} " + " ".join(f"{f}:1" for f in sorted({*rng.choice(10, 3, replace=False).tolist(),
                                                                         10 + t}))
            for t in rng.integers(4, size=100)]
    (tmp_path / "Toy_data.txt").write_text("100 14 6\n" + "\n".join(rows) + "\n")
    orders = [rng.permutation(100) + 1 for _ in range(3)]  # three splits, a column each
    for name, part in (("toy_trSplit.txt", slice(0, 70)), ("toy_tstSplit.txt", slice(70, 100))):
        columns = np.stack([np.sort(order[part]) for order in orders], axis=1)
        (tmp_path / name).write_text("\n".join(" ".join(map(str, line)) for line in columns) + "\n")
    out = tmp_path / "run"
    assert cli.main(["train", "--train", str(tmp_path / "Toy_data.txt"), "--split-column", "3", "--epochs", "1",
                     "--dimension", "4", "--no-validate", "--no-baselines", "-o", str(out)]) == 0
    assert "the rows toy_tstSplit.txt lists in its column 3: the data set's own split" in capsys.readouterr().out
    recorded = json.loads((out / "metrics.json").read_text())
    assert recorded["data_files"]["split_column"] == 3
    assert cli.main(["evaluate", str(out), "--output", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["metrics"] == recorded["metrics"]
    assert "metrics.json records, the split lists column 3)" in capsys.readouterr().out  # the data line says so
    # an export records it too: evaluate --served of the export alone scores the same split
    assert cli.main(["export", str(out), str(tmp_path / "models"), "--name", "toy", "--flavour", "portable"]) == 0
    assert cli.main(["evaluate", "--served", str(tmp_path / "models" / "toy"), "--output",
                     str(tmp_path / "served.json")]) == 0
    assert json.loads((tmp_path / "served.json").read_text())["metrics"] == recorded["metrics"]
    (tmp_path / "rows.txt").write_text("2 14 6\n 0:1 10:1\n 1:1 11:1\n")
    assert cli.main(["predict", str(out), "--rows", str(tmp_path / "rows.txt"), "-k", "2"]) == 0
    capsys.readouterr()
    # the first split's test rows were trained on here: refused, as any data holding them is, saying which it read
    data = ["--train", str(tmp_path / "Toy_data.txt")]
    assert cli.main(["evaluate", str(out), *data]) == 2
    refused = capsys.readouterr().err
    assert "are ones " in refused and "read split column 3 of its lists: --split-column 3 reads that split" in refused
    assert cli.main(["train", *data, "--epochs", "1", "--dimension", "4", "--no-validate", "--no-baselines", "-o",
                     str(out)]) == 2
    refused = capsys.readouterr().err
    assert "holds a finished run of other data" in refused and "--split-column 3 reads that split" in refused
    # a record made before runs recorded the column (none: the first) reads the first split
    first = tmp_path / "first"
    assert cli.main(["train", *data, "--epochs", "1", "--dimension", "4", "--no-validate", "--no-baselines", "-o",
                     str(first)]) == 0
    report = json.loads((first / "metrics.json").read_text())
    assert report["data_files"].pop("split_column") == 1
    (first / "metrics.json").write_text(json.dumps(report))
    assert cli.main(["evaluate", str(first), "--output", str(tmp_path / "first.json")]) == 0
    assert json.loads((tmp_path / "first.json").read_text())["metrics"] == report["metrics"] != recorded["metrics"]


def test_a_rerun_with_no_baselines_keeps_those_of_the_same_model_only(tmp_path):
    rng = np.random.default_rng(2)
    rows = [f"{rng.integers(4)} " + " ".join(f"{f}:1" for f in sorted(rng.choice(10, 3, replace=False)))
            for _ in range(120)]
    (tmp_path / "a.txt").write_text("120 10 4\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    flags = ["--train", str(tmp_path / "a.txt"), "--dimension", "4", "--negatives", "3", "--no-validate", "-o",
             str(out)]
    run("train", "--epochs", "1", *flags)
    scored = json.loads((out / "metrics.json").read_text())
    assert set(scored["baselines"]) >= {"popularity", "knn_input", "knn_embedding"}
    again = run("train", "--epochs", "1", "--no-baselines", *flags)
    assert "--no-baselines: the baselines scored by the earlier run" in again.stdout
    kept = json.loads((out / "metrics.json").read_text())
    assert kept["baselines"] == scored["baselines"] and kept["model_digest"] == scored["model_digest"]
    assert "knn_input" in again.stdout  # the table shows them
    # nothing trained by the rerun: its closing line and record give the first run's training time as that run
    # recorded it (its set-up included, beyond the seconds its checkpoints hold), not this command's set-up
    recorded, epochs = scored["train_seconds"], json.loads((out / "final" / "checkpoints" / "state.json").read_text())
    assert recorded > epochs["seconds"]
    assert f"trained by earlier runs, {recorded:.1f}s as they recorded it (nothing was left to train)" \
        in again.stdout and "trained in" not in again.stdout
    assert kept["train_seconds"] == recorded
    # trained on (another model): the earlier baselines are not this model's, so none are kept
    more = run("train", "--epochs", "2", "--no-baselines", *flags)
    assert "Resuming" in more.stdout and "earlier run" not in more.stdout
    assert "trained in " in more.stdout and "trained by earlier runs" not in more.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert report["baselines"] == {} and report["model_digest"] != scored["model_digest"]


def test_a_rerun_on_changed_data_stops_instead_of_reusing_the_model(tmp_path):
    """Data edited in place, with the same numbers of rows and interactions: the rerun names it."""
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [(u, i) for u in range(40) for i in sorted(rng.choice(30, 12, replace=False))]
    rows += [(40, 0), (40, 7), (40, 9)]  # too few items to hold 5 out: trained on, not tested, counted
    rows += [(41, i) for i in range(5)]  # exactly 5: all held out, tested with no training items
    data = tmp_path / "clicks.tsv"
    data.write_text("".join(f"u{u}\ti{i}\n" for u, i in rows))
    out = tmp_path / "run"
    flags = ["--train", str(data), "--epochs", "2", "--dimension", "8", "--negatives", "5", "--no-baselines",
             "-o", str(out)]
    said = run("train", *flags).stdout
    first = json.loads((out / "metrics.json").read_text())
    assert "test 41 users (1 user with fewer than 5 items: not tested; 1 user with exactly 5 items: all held " \
           "out, tested with no training items)" in said
    assert (first["n_test"], first["n_excluded"]) == (41, 1)
    assert "test users: 41 (left out, no held-out item: 1)" in said
    fewer = run("train", *flags, "--epochs", "1", check=False)  # a finished 2-epoch run is not cut to 1 silently
    assert fewer.returncode == 2 and "holds a run of 2 epochs, more than the 1 asked for" in fewer.stderr
    edited = [(u, (i + 1) % 30 if u == 3 and i + 1 not in dict.fromkeys(j for v, j in rows if v == 3) else i)
              for u, i in rows]
    data.write_text("".join(f"u{u}\ti{i}\n" for u, i in edited))
    stale = run("train", *flags, check=False)
    assert stale.returncode == 2 and "other data" in stale.stderr and "the training and test data changed" \
        in stale.stderr  # the protocol's split of the edited file: both parts
    assert "--restart" in stale.stderr and "Traceback" not in stale.stderr
    fresh = run("train", *flags, "--restart")
    second = json.loads((out / "metrics.json").read_text())
    assert second["data_fingerprint"] != first["data_fingerprint"] and "Resuming" not in fresh.stdout
    assert f"--restart: discarded the earlier run in {out} (validation, final, model, metrics.json)" in fresh.stdout
    assert first["strategy"] == second["strategy"] == "default"


def test_a_run_from_init_from_shows_its_start_and_is_resumed_only_from_the_same_start(tmp_path):
    """--init-from: the start's validation score is printed and kept as epoch 0, the run records
    where it began, and rerunning into its directory from another start (or none) is refused."""
    small = ["--dimension", "8", "--negatives", "5", "--no-baselines"]
    first, second, joint = tmp_path / "wsabie", tmp_path / "wsabie-2", tmp_path / "joint"
    run("train", "--epochs", "1", *small, "-o", str(first))
    run("train", "--epochs", "1", "--seed", "1", *small, "-o", str(second))
    flags = ["--affinity", "linear-sigmoid:alpha=1,beta=0", "--epochs", "1", *small, "-o", str(joint)]
    proc = run("train", *flags, "--init-from", str(first))
    report = json.loads((joint / "metrics.json").read_text())
    assert report["init_from"] == str((first / "model").resolve())
    start = report["validation"]["starts"][0]["precision@1"]
    assert 0 < start < 1 and f"Epoch 0 (the model started from) - val_precision@1: {start:.4f}" in proc.stdout
    assert "other training data" not in proc.stdout  # the same data as the start's
    assert f"validation precision@1 = {start:.4f}" in proc.stdout.split("[2/2]")[0].split("best epoch")[1]
    for other, said in ((["--init-from", str(second)], "init_from: it began from other U and V than this one"),
                        ([], "init_from: it began from a trained model, this one from none")):
        rerun = run("train", *flags, *other, check=False)  # another start, or none: not this run's checkpoints
        assert rerun.returncode == 2 and said in rerun.stderr and "--restart" in rerun.stderr
        assert "Traceback" not in rerun.stderr
    assert json.loads((joint / "metrics.json").read_text()) == report  # nothing of the refused reruns kept
    same = run("train", *flags, "--init-from", str(first / "model"))  # the same start, named by its model/:
    assert "Resuming" in same.stdout  # the finished run is taken up again
    assert json.loads((joint / "metrics.json").read_text())["init_from"] == report["init_from"]
    long_spec = "linear-sigmoid:alpha=1.06284825778047,beta=-0.728102705000141"  # a tuned spec, as tune prints it
    longer = run("train", "--affinity", long_spec, *flags[2:], "--init-from", str(first), check=False)
    assert longer.returncode == 2 and '-> "linear-sigmoid:alpha=1.06284825778047,beta=-0.72810' in longer.stderr
    assert '..." ' not in longer.stderr and "..." in longer.stderr  # a cut value ends in an ellipsis, not a quote
    # An iterative run from the start: step 0 is the model given, scored as it is, the bar its steps
    # are compared with (the same carve-out score as the start above)
    steps = run("train", "--affinity", "knn:k=10", "--iterations", "1", "--epochs", "1", *small, "-o",
                str(tmp_path / "knn"), "--init-from", str(first))
    assert f"step 0: best epoch 0 (the model given, as it is, validation precision@1 = {start:.4f})" in steps.stdout
    # ... and rerun from another start, it is refused as the run above is (it trained afresh, over the
    # finished run, when step 1 took the change for its step 0 having trained on)
    other = run("train", "--affinity", "knn:k=10", "--iterations", "1", "--epochs", "1", *small, "-o",
                str(tmp_path / "knn"), "--init-from", str(second), check=False)
    assert other.returncode == 2 and "for step 1 of a run given its step 0, --init-from or auto" \
        in other.stderr and "Traceback" not in other.stderr, other.stderr[-2000:]
    # A start in the run's own --output would be written over (with --restart, discarded first): refused
    own = run("train", *flags[:-1], str(first), "--init-from", str(first / "model"), "--restart", check=False)
    assert own.returncode == 2 and "is this run's own --output" in own.stderr and (first / "model").is_dir()
    # A continuation of the start run that has not finished rewrites its validation stage's best
    # model, not its model/: the two no longer go together, and starting from them is refused.
    best = first / "validation" / "checkpoints" / "best.npz"
    with np.load(best) as weights:
        changed = {name: weights[name] * 0.5 for name in weights.files}
    np.savez(best, **changed)
    mixed = run("train", *flags[:-1], str(tmp_path / "mixed"), "--init-from", str(first), check=False)
    assert mixed.returncode == 2 and "its validation stage has changed since its model was written" in mixed.stderr
    assert "Traceback" not in mixed.stderr


def test_a_start_trained_on_other_data_is_noted_or_mapped_by_name_and_items_a_model_lacks_are_named(tmp_path):
    """--init-from checks a start's shape; one trained on other data of that shape is taken
    (fine-tuning on new data is a use), with a note that it may have seen this run's held-out rows;
    one of other items (a week on, some gone, some new) starts each item from its row by name and
    says which are new. An evaluation whose test file brings items the model lacks names them."""
    rng = np.random.default_rng(0)
    files = []
    for name in ("a", "b"):
        rows = [f"{rng.integers(4)} " + " ".join(f"{f}:1" for f in sorted(rng.choice(10, 3, replace=False)))
                for _ in range(60)]
        files.append(tmp_path / f"{name}.txt")
        files[-1].write_text("60 10 4\n" + "\n".join(rows) + "\n")
    small = ["--epochs", "1", "--dimension", "4", "--negatives", "3", "--no-baselines", "--no-validate"]
    run("train", "--train", str(files[0]), *small, "-o", str(tmp_path / "a"))
    other = run("train", "--train", str(files[1]), *small, "--init-from", str(tmp_path / "a"),
                "-o", str(tmp_path / "b"))
    assert f"note: --init-from {tmp_path / 'a'} was trained on other training data than this run's" in other.stdout
    shifted = []  # a shop's catalogue a week on: one item gone, one new, as many as before
    for name, first in (("week1", 0), ("week2", 1)):
        shifted.append(tmp_path / f"{name}.tsv")
        shifted[-1].write_text("".join(f"u{u}\tm{first + (u + i) % 12}\n" for u in range(40) for i in range(7)))
    run("train", "--train", str(shifted[0]), *small, "-o", str(tmp_path / "w1"))
    grown = run("train", "--train", str(shifted[1]), *small, "--init-from", str(tmp_path / "w1"), "-o",
                str(tmp_path / "w2"))
    assert ("init_from: 11 of the 12 items start at the start's rows of their names, 1 new ('m12') at their initial "
            "rows; 1 of the start's items are not this data's") in grown.stdout
    iterative = run("train", "--train", str(shifted[1]), "--affinity", "knn:k=3", *small, "--init-from",
                    str(tmp_path / "w1"), "-o", str(tmp_path / "knn"), check=False)  # refused before any work
    assert iterative.returncode == 2 and "an affinity built in iterative steps takes the model it starts from as its " \
        "step 0, as it is" in iterative.stderr and not (tmp_path / "knn").exists(), iterative.stderr
    later = tmp_path / "later.tsv"
    later.write_text("u1\tm0\nu2\tm99\n")
    lacking = run("evaluate", str(tmp_path / "w1"), "--train", str(shifted[0]), "--test", str(later), check=False)
    assert lacking.returncode == 2 and "1 of its items is not the model's ('m99'): the items of the files given" \
        in lacking.stderr, lacking.stderr


def test_every_option_says_what_it_does_and_its_default():
    import argparse

    from awe_tf.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        text = command.format_help()
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"awe-tf {name} {action.dest} has no help"
            if action.option_strings and action.nargs != 0 and action.default is not None:
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)


def test_train_with_the_knn_affinity_then_evaluate_the_saved_model(tmp_path):
    out = tmp_path / "knn"
    proc = run("train", "--affinity", "constant:0.2+knn:k=10", "--iterations", "1", "--epochs", "2", "--dimension",
               "16", "--negatives", "5", "--no-baselines", "-o", str(out))
    assert "step 1/1: G (constant:c=0.2+knn:k=10,prior=True,search=exact) from the step-0 model" in proc.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert report["affinity"] == "constant:0.2+knn:k=10" and len(report["epochs"]) == 2
    evaluated = run("evaluate", str(out / "model"), "--output", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == pytest.approx(report["metrics"])
    assert "model" in evaluated.stdout
    # A step trained afresh over its old checkpoint (it began from another step 0) throws that
    # checkpoint's time away: train_seconds counts the resumed steps' earlier time only.
    step = next((out / "final").glob("step-1*/checkpoints/state.json"))
    state = json.loads(step.read_text())
    state["seconds"], state["settings"]["start"] = 1e6, {"tables": "0" * 16}
    step.write_text(json.dumps(state))
    rerun = run("train", "--affinity", "constant:0.2+knn:k=10", "--iterations", "1", "--epochs", "2", "--dimension",
                "16", "--negatives", "5", "--no-baselines", "-o", str(out))
    assert rerun.stdout.count("Training afresh") == 1 and "Resuming" in rerun.stdout
    assert json.loads((out / "metrics.json").read_text())["train_seconds"] < 1e5
    wrong = run("train", "--iterations", "2", "-o", str(tmp_path / "x"), check=False)
    assert wrong.returncode == 2 and "--iterations is for" in wrong.stderr


EVERY_AFFINITY = [
    "constant", "sigmoid", "sigmoid:rank=4", "linear-sigmoid:alpha=1,beta=0.25", "linear-sigmoid:on=pair",
    "topk:k=5", "topk:k=5,rest=learn", "max", "matrix", "lowrank:rank=4", "knn:k=10", "knn:k=10,search=scann",
    "rbf:k=10,gamma=0.1",
    "latent-rbf:k=10,label_gamma=none", "hybrid-rbf:k=10,gamma=0.1", "cluster:leaves=16,top=40", "constant:1+knn:k=10",
    "vote:weight=3,k=10",
]


def test_affinities_lists_the_engines_that_train_each(capsys):
    from awe_tf import cli

    assert cli.main(["affinities"]) == 0
    first_lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")}
    for name in ("constant", "linear-sigmoid", "knn", "rbf", "cluster", "vote", "topk", "max"):
        assert first_lines[name].endswith("engines: graph, native"), first_lines[name]
    for name in ("sigmoid", "matrix", "lowrank"):
        assert first_lines[name].endswith("engines: graph"), first_lines[name]


def test_every_built_in_affinity_has_a_cli_case():
    from awe_tf.affinities import REGISTRY

    built_in = {name for name, known in REGISTRY.items() if known.factory.__module__.startswith("awe_tf.")}
    assert built_in <= {spec.split(":")[0].split("+")[-1] for spec in EVERY_AFFINITY}


@pytest.mark.parametrize("spec", EVERY_AFFINITY)
def test_every_affinity_trains_through_the_cli_and_reloads(spec, tmp_path):
    from awe_tf import cli
    from awe_tf.affinities import parse

    out = tmp_path / "run"
    extra = ["--iterations", "1"] if parse(spec).reference_part() is not None else []
    # Trained in this process (the command's own entry point, without a second TensorFlow start-up
    # per case), then reloaded and evaluated in a fresh one, as a user would.
    assert cli.main(["train", "--affinity", spec, *extra, "--epochs", "1", "--no-validate", "--no-baselines",
                     "--dimension", "16", "--negatives", "5", "-o", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["affinity"] == spec and report["metrics"]["precision@1"] > 0.15, report["metrics"]
    learnt = report["affinity_learnt"]  # G's learnt single numbers: top-k's learnt rest, in [0, 1]
    assert set(learnt) == ({"rest"} if "rest=learn" in spec else set()) and all(0 <= v <= 1 for v in learnt.values())
    run("evaluate", str(out / "model"), "--output", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["metrics"] == pytest.approx(report["metrics"])


def test_native_engine_through_the_cli(tmp_path):
    out = tmp_path / "native"
    proc = run("train", "--engine", "native", "--threads", "1", "--epochs", "3", "--dimension", "32",
               "--negatives", "10", "-o", str(out))
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"]["precision@1"] > report["baselines"]["popularity"]["precision@1"] + 0.08, report
    assert "Epoch 3/" in proc.stdout and "violation_rate" in proc.stdout
    assert "engine: native (WARP in C, 1 thread)" in proc.stdout
    refused = run("train", "--engine", "native", "--affinity", "sigmoid", "-o", str(tmp_path / "sigmoid"), check=False)
    assert refused.returncode == 2
    assert "--engine native trains WSABIE" in refused.stderr and "use the graph engine" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_each_command_s_help_says_what_it_does(capsys):
    """A subcommand's own --help opens with the summary ``awe-tf --help`` lists for it."""
    from awe_tf import cli

    for command in ("cluster-task", "datasets", "evaluate"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0
        summary = next(action.help for action in cli.build_parser()._subparsers._group_actions[0]._choices_actions
                       if action.dest == command)
        assert " ".join(summary.split()) in " ".join(capsys.readouterr().out.split())


def test_a_second_command_into_a_directory_that_a_run_is_writing_is_refused(tmp_path):
    """While one process trains into -o (here one that holds the directory's lock as a run does),
    another train into it stops at once and names it; once that process ends, the directory is
    free again (the lock goes with the process, however it ends)."""
    from awe_tf.cli.common import LOCK, hold_directory, release_directories

    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.write('4242'); f.flush(); print('held', flush=True); "
                               "time.sleep(120)", str(out / LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = run("train", "--epochs", "1", "--dimension", "4", "--no-baselines", "-o", str(out), check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert f"--output {out}: another awe-tf command (process 4242) is writing there" in refused.stderr
        assert not (out / "validation").exists() and not (out / "metrics.json").exists()
    finally:
        holder.kill()
        holder.wait()
    hold_directory(out, "--output")  # free once the holder is gone; held by this process now
    try:
        hold_directory(out, "--output")  # again: nothing
        assert (out / LOCK).read_text() == str(os.getpid())
    finally:
        release_directories()
    done = run("train", "--epochs", "1", "--dimension", "4", "--no-baselines", "-o", str(out))
    assert (out / "metrics.json").exists() and "another awe-tf command" not in done.stderr


def test_a_search_another_process_is_running_is_refused_and_a_folder_without_room_for_a_lock_is_named(tmp_path):
    """A search is held by a lock beside its folder in --output (--restart removes the folder):
    a second tune of it stops at once, naming the process, while other searches of the folder may
    run; where no lock can be written (a read-only folder), the command stops naming it."""
    from awe_tf.cli.common import UsageError, hold_directory, release_directories
    from awe_tf.tuning import search_name

    out = tmp_path / "searches"
    out.mkdir()
    lock = out / f".{search_name(awe_tf.load_dataset('corel5k').train, 'constant', 'random')}.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); f.write('4242'); f.flush(); print('held', flush=True); "
                               "time.sleep(120)", str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = run("tune", "--affinity", "constant", "--trials", "1", "--epochs", "1", "-o", str(out), check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert f"--output {out} (search {lock.name[1:-5]}): another awe-tf command (process 4242) is writing " \
               "there" in refused.stderr
        assert [path.name for path in out.iterdir()] == [lock.name]
        other = run("tune", "--affinity", "linear-sigmoid", "--trials", "1", "--epochs", "1", "-o", str(out))
        assert "best validation precision@1" in other.stdout  # another search of the folder runs meanwhile
    finally:
        holder.kill()
        holder.wait()
        release_directories()
    unwritable = tmp_path / "read-only"
    (unwritable / lock.name).mkdir(parents=True)  # where no lock file can be written (a read-only folder, say)
    with pytest.raises(UsageError, match=r"--output .*read-only: cannot write there \(Is a directory\)"):
        hold_directory(unwritable, "--output", lock.name)


@pytest.mark.parametrize("kind, said, advice", [
    ("ResourceExhaustedError", "ckpt-1_temp: No space left on device [Op:SaveV2]", "free some space"),
    ("ResourceExhaustedError", "OOM when allocating tensor with shape[4096,64]", "give it more memory, or train "
                                                                                  "smaller steps (--pairs-per-batch)"),
    ("OSError", "No space left on device", "free some space"),  # Python's own writes: state.json, metrics.json
], ids=["full disk", "memory", "full disk, Python's write"])
def test_a_checkpoint_that_cannot_be_written_stops_with_one_line(kind, said, advice, tmp_path, monkeypatch, capsys):
    """An error writing a checkpoint (TensorFlow's, for a full disk or memory it could not get;
    Python's, for a full disk) ends the command with one line saying what to mend and how the run
    goes on."""
    import errno

    import tensorflow as tf

    from awe_tf import cli
    from awe_tf.training import callbacks

    def failing(self, epoch, logs=None):
        if kind == "OSError":
            raise OSError(errno.ENOSPC, said)
        raise getattr(tf.errors, kind)(None, None, said)

    monkeypatch.setattr(callbacks.EpochCheckpoint, "on_epoch_end", failing)
    out = tmp_path / "run"
    code = cli.main(["train", "--epochs", "1", "--dimension", "4", "--no-baselines", "--verbose", "0", "-o",
                     str(out)])  # the bundled data set
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1, error
    assert error[0].startswith("error: ") and said in error[0] and f"; {advice}, then run it again: " in error[0]
    assert str(out) in error[0] and not (out / "metrics.json").exists()


def test_an_iterative_run_whose_last_step_lost_ground_says_so():
    """The model kept is the last step's, as --iterations asks; where an earlier step (step 0: the
    linear model) scored higher on validation, a note names it and the setting that keeps it."""
    from awe_tf.cli.train import _earlier_step_scored_higher

    note = _earlier_step_scored_higher([0.70, 0.75, 0.77, 0.73], "precision@1")
    assert note == ("note: the last step's validation precision@1 (0.7300) is below step 2's (0.7700); the model "
                    "kept is the last step's, as --iterations asks; --iterations 2 would stop there")
    assert _earlier_step_scored_higher([0.70, 0.77, 0.77, 0.73], "precision@1").endswith("--iterations 1 would "
                                                                                           "stop there")
    assert _earlier_step_scored_higher([0.80, 0.75, 0.77, 0.73], "precision@1").endswith(
        "training without --affinity (WSABIE) keeps it")
    assert _earlier_step_scored_higher([0.70, 0.75, 0.77, 0.78], "precision@1") is None  # the last is the best
    assert _earlier_step_scored_higher([0.60, 0.6623931623931624, 0.6623931623931623], "precision@3") is None  # a tie
    assert _earlier_step_scored_higher([0.70, 0.75, 0.77, None], "precision@1") is None  # unknown: nothing said
    assert "step 1's (0.7500)" in _earlier_step_scored_higher([None, 0.75, None, 0.73], "precision@1")


def test_the_data_line_says_how_a_format_was_told_and_auto_what_it_compares_on(tmp_path):
    """A folder is read as MovieLens for being a folder, a file by its name; with fewer than 3
    labels auto compares candidates on the one metric, not on a mean of it with itself."""
    from awe_tf.cli.train import _format_note
    from awe_tf.training.auto import check_metric, compared_on

    assert _format_note(tmp_path) == ("read as MovieLens ratings (every rating an implicit positive) (--format "
                                      "movielens), told from its being a folder; --format names another")
    assert "(--format interactions), told from the name clicks.tsv" in _format_note(tmp_path / "clicks.tsv")
    assert compared_on("precision@1", check_metric("precision@1", 2)) == "precision@1"
    assert compared_on("precision@1", check_metric("precision@1", 5)) == "the mean of precision@1 and precision@3"


def test_every_setting_flag_sets_its_field_in_train_and_tune(capsys):
    """Each setting given by a flag named after its field (common.SETTING_FIELDS), at a value other
    than its default, reaches that field of ModelConfig or TrainConfig through configs_of, in train
    and in tune (but for what tune searches, and the optimiser, whose flags tune refuses, saying
    why); the flag is the one tune's best command gives the setting by (tuning.spaces)."""
    from awe_tf.cli import build_parser, flag_of
    from awe_tf.cli.common import SETTING_FIELDS, configs_of
    from awe_tf.config import ModelConfig, TrainConfig
    from awe_tf.tuning.spaces import COMMON, setting_flags

    other = {"dimension": 12, "margin": 0.5, "num_negatives": 7, "loss": "warp-all", "normalisation": "l1",
             "max_norm": 2.0, "init_scale": 0.3, "input_bias": False, "epochs": 4, "learning_rate": 0.02,
             "optimizer": "sgd", "pairs_per_batch": 512, "min_steps_per_epoch": 5, "patience": 1, "engine": "native",
             "threads": 1, "seed": 9}
    assert set(other) == set(SETTING_FIELDS)
    parser = build_parser()
    assert parser.parse_args(["tune", "--ma", "2"]).max_norm == 2  # a refused flag makes no short form ambiguous
    defaults = {**ModelConfig().to_dict(), **TrainConfig().to_dict()}
    for command, searched in (("train", ()), ("tune", (*COMMON, "optimizer"))):
        sub = parser.parse_args([command]).parser
        for field, value in other.items():
            assert value != defaults[field], field
            flag = flag_of(sub, field)
            if field in searched:  # not a flag of tune's: given, refused saying why (the search, or Adagrad)
                assert flag == field, (command, field)
                with pytest.raises(SystemExit) as refused:
                    parser.parse_args([command, *setting_flags(field, value)])
                assert refused.value.code == 2, field
                why = "tune's trials train with Adagrad" if field == "optimizer" else "tune searches this setting ("
                said = capsys.readouterr().err
                assert f"{setting_flags(field, value)[0]}: {why}" in said, field
                assert field == "optimizer" or "so it cannot hold it fixed" in said, field
                continue
            model_config, train_config = configs_of(parser.parse_args([command, *setting_flags(field, value)]))
            for config in (model_config, train_config):
                if hasattr(config, field):
                    assert getattr(config, field) == value, (command, field)
            assert setting_flags(field, value)[0] == flag, (command, field)


def test_the_command_line_reads_its_flags_without_tensorflow():
    """`awe-tf --help` and a command's flags come at once: building the parser loads no TensorFlow."""
    script = "import sys; from awe_tf.cli import build_parser; build_parser(); print('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stderr[-2000:]


def test_an_interrupted_train_reads_its_finished_epochs_without_tensorflow(tmp_path):
    """Interrupted before TensorFlow loads (reading its data), a resumed train says it goes on from
    its finished epochs, reading them without loading TensorFlow (a second Ctrl-C is not kept
    waiting for it)."""
    (tmp_path / "final" / "checkpoints").mkdir(parents=True)
    (tmp_path / "final" / "checkpoints" / "state.json").write_text('{"epoch": 2}')
    script = ("import sys; from awe_tf.cli import _goes_on, build_parser; "
              f"print(_goes_on(build_parser().parse_args(['train', '-o', {str(tmp_path)!r}]))); "
              "print('tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    said = f": the same command again goes on from its last finished epoch (in {tmp_path})"
    assert proc.stdout.splitlines() == [said, "False"]


def test_an_interrupted_command_says_how_to_go_on_where_it_keeps_its_work(tmp_path):
    from awe_tf.cli import _goes_on, build_parser

    parse = build_parser().parse_args
    run = tmp_path / "x"
    assert _goes_on(parse(["train", "-o", str(run)])) == \
        f": no epoch had finished, so the same command again starts from the beginning (in {run})"
    (run / "validation" / "checkpoints").mkdir(parents=True)
    (run / "validation" / "checkpoints" / "state.json").write_text('{"epoch": 1}')  # an epoch finished
    assert _goes_on(parse(["train", "-o", str(run)])) == \
        f": the same command again goes on from its last finished epoch (in {run})"
    auto = tmp_path / "auto"
    (auto / "auto").mkdir(parents=True)
    (auto / "auto" / "auto.json").write_text("{}")  # a stage of --affinity auto finished
    assert "goes on from its last finished epoch" in _goes_on(parse(["train", "-o", str(auto)]))
    # A cluster's task does not say so: its chief may keep what this task's folder lacks.
    assert "goes on from" in _goes_on(parse(["train", "-o", str(tmp_path / "y"), "--strategy", "multiworker"]))
    assert _goes_on(parse(["tune"])) == (": the same command again goes on with the trials it finished, and a trial "
                                         "cut short from its last finished epoch (in runs/tuning)")
    assert _goes_on(parse(["reproduce", "annotation"])).endswith("(in runs/reproduce-annotation)")
    assert _goes_on(parse(["evaluate", "runs/x"])) == ""  # nothing kept to go on from
    restarted = parse(["train", "-o", str(run), "--restart"])
    assert _goes_on(restarted).startswith(": the same command again")  # interrupted before it discarded anything
    restarted.discarded = True  # --restart again would discard the epochs the restart has finished since
    assert _goes_on(restarted) == \
        f": the same command without --restart goes on from its last finished epoch (in {run})"


def test_a_checkpoint_refused_for_settings_alone_says_the_flags_that_resume_it():
    """An earlier awe-tf's interrupted run, refused where defaults changed since, goes on with the
    values it began with; not where anything else changed (data, a start, a setting of no value)."""
    from awe_tf.cli import _named_by_flags, _resume_flags, build_parser
    from awe_tf.training.callbacks import OtherSettings, changed_settings, other_settings

    parser = build_parser()
    train = next(a for a in parser._actions if a.dest == "command").choices["train"]

    def refused(recorded, settings):  # as EpochCheckpoint.restore refuses a checkpoint, as main says it
        error = OtherSettings(other_settings("r/checkpoints holds a checkpoint of a run", recorded, settings)
                              + "; use another output directory, or start afresh (awe-tf train --restart; in Python, "
                              "remove the output directory first)",
                              changed_settings(recorded, settings))
        return _named_by_flags(str(error), train) + _resume_flags(error, train)

    now = {"model": {"init_scale": 0.1, "input_bias": True, "affinity": {"a": 2}}, "train": {"min_steps_per_epoch": 32},
           "data": "d"}
    earlier = {"model": {**now["model"], "init_scale": 1.0}, "train": {"min_steps_per_epoch": 1}, "data": "d"}
    said = refused(earlier, now)
    assert "(--init-scale: 1.0 -> 0.1; --min-steps-per-epoch: 1 -> 32)" in said
    assert said.endswith("; or go on with the settings it began with: --init-scale 1.0 --min-steps-per-epoch 1")
    for other in ({**earlier, "data": "e"}, {**now, "model": {**now["model"], "input_bias": False}},
                  {**earlier, "model": {**earlier["model"], "affinity": {"a": 1}}}):
        assert "go on with" not in refused(other, now), other
    # a setting no flag sets but others imply: named beside them (a rerun with --jit-compile)
    jit = refused({**now, "train": {**now["train"], "bucketing": True}}, {**now, "train": {**now["train"],
                                                                                            "bucketing": False}})
    assert "(train.bucketing (--jit-compile or --strategy parameter-server): true -> false)" in jit, jit
    # the model's seed and training's, both set by --seed, named once
    seeds = refused({**now, "model": {**now["model"], "seed": 0}, "train": {**now["train"], "seed": 0,
                                                                             "learning_rate": 0.05}},
                    {**now, "model": {**now["model"], "seed": 1}, "train": {**now["train"], "seed": 1,
                                                                            "learning_rate": 0.1}})
    assert "(--seed: 0 -> 1; --learning-rate: 0.05 -> 0.1); use another output directory" in seeds, seeds


def test_a_text_run_recorded_before_real_columns_were_numeric_says_so(tmp_path, capsys):
    """A run on Extreme Classification text with real values, recorded as an awe-tf that read
    every such column as binary recorded it (the same rows, no column numeric), is refused by
    evaluate with that reason and the way on; a run whose rows changed keeps the changed-data
    message."""
    import dataclasses

    import numpy as np

    from awe_tf import cli
    from awe_tf.data import load_split

    rng = np.random.default_rng(0)
    rows = [",".join(map(str, sorted(rng.choice(6, 2, replace=False)))) + " " + " ".join(
        f"{j}:{rng.uniform(0.1, 1):.2f}" for j in sorted(rng.choice(30, 5, replace=False))) for _ in range(60)]
    data = tmp_path / "d.txt"
    data.write_text("60 30 6\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert cli.main(["train", "--train", str(data), "--epochs", "1", "--no-validate", "--no-baselines",
                     "--dimension", "4", "--negatives", "2", "--verbose", "0", "-o", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    split = load_split(data)
    old = {key: dataclasses.replace(part, numeric_features=np.zeros(part.n_features, bool)).fingerprint()
           for key, part in (("data_fingerprint", split.train), ("test_fingerprint", split.test))}
    assert all(metrics[key] != value for key, value in old.items())  # the reading changed, not the rows
    (out / "metrics.json").write_text(json.dumps({**metrics, **old}))
    capsys.readouterr()
    assert cli.main(["evaluate", str(out / "model")]) == 2
    error = capsys.readouterr().err
    assert "made by an awe-tf before commit 608857c" in error and "--restart, or another -o" in error, error
    (out / "metrics.json").write_text(json.dumps({**metrics, "data_fingerprint": "0" * 64}))  # other rows
    assert cli.main(["evaluate", str(out / "model")]) == 2
    error = capsys.readouterr().err
    assert "the training data of" in error and "changed after it was trained" in error, error


def test_a_test_file_of_data_with_few_distinct_rows_is_scored_with_a_note(tmp_path):
    """Where every row repeats others (four distinct rows), any test part holds training rows,
    the run's own as much as a new file: scored, with a note saying how many of each."""
    patterns = ["1,0,1,0", "0,1,0,1", "1,1,1,1", "0,0,0,1"]
    header = ("@relation few\n@attribute a numeric\n@attribute b numeric\n@attribute y1 {0,1}\n"
              "@attribute y2 {0,1}\n@data\n")
    (tmp_path / "few.arff").write_text(header + "\n".join(patterns[i % 4] for i in range(80)) + "\n")
    (tmp_path / "new.arff").write_text(header + "\n".join(patterns[i % 4] for i in range(1, 21)) + "\n")
    (tmp_path / "few.xml").write_text('<labels xmlns="http://mulan.sourceforge.net/labels">'
                                      '<label name="y1"></label><label name="y2"></label></labels>')
    files = ["--train", str(tmp_path / "few.arff"), "--labels", str(tmp_path / "few.xml")]
    out = tmp_path / "run"
    run("train", *files, "--epochs", "1", "--no-baselines", "--no-validate", "-o", str(out))
    noted = run("evaluate", str(out), *files, "--test", str(tmp_path / "new.arff"))
    assert "note: 20 of the 20 labelled test rows of few are ones" in noted.stdout, noted.stdout
    assert "(its own test part: 16 of 16)" in noted.stdout
    # rows to rank may leave the labels' attributes out: the same answers as with them
    (tmp_path / "bare.arff").write_text("@relation few\n@attribute a numeric\n@attribute b numeric\n@data\n"
                                        + "\n".join(p[:3] for p in patterns) + "\n")
    for rows in ("new.arff", "bare.arff"):
        run("predict", str(out), "--rows", str(tmp_path / rows), "-k", "2", "--output", str(tmp_path / f"{rows}.jsonl"))
    labelled = [json.loads(line) for line in (tmp_path / "new.arff.jsonl").read_text().splitlines()][:4]
    bare = [json.loads(line) for line in (tmp_path / "bare.arff.jsonl").read_text().splitlines()]
    assert [answer["row"] for answer in bare] == ["row 1", "row 2", "row 3", "row 4"]
    for answer, same in zip(bare, labelled[3:] + labelled[:3], strict=True):  # bare's rows 1-4 are new's 4, 1, 2, 3
        assert answer["label_ids"] == same["label_ids"] and answer["scores"] == pytest.approx(same["scores"])


def test_data_with_the_features_in_another_order_is_refused_by_the_commands_a_run_or_export_names(tmp_path):
    """A run records its features' names (features.json): evaluate, predict and evaluate --served given
    data whose features are the model's in another order (the same ids would name other features) refuse
    it, naming where, as they refuse labels in another order, named as such."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(50, 10, 60)
    y1 = (a > 0).astype(int)

    def write(name, first, second, order):
        header = (f"@relation r\n@attribute {first} numeric\n@attribute {second} numeric\n"
                  "@attribute y1 {0,1}\n@attribute y2 {0,1}\n@data\n")
        columns = (a, b) if order == "ab" else (b, a)
        rows = [f"{columns[0][i]:.3f},{columns[1][i]:.3f},{y1[i]},{1 - y1[i]}" for i in range(60)]
        (tmp_path / name).write_text(header + "\n".join(rows) + "\n")

    write("d.arff", "a", "b", "ab")
    write("swapped.arff", "b", "a", "ba")  # the same data, its two columns swapped
    (tmp_path / "l.xml").write_text('<labels xmlns="http://mulan.sourceforge.net/labels">'
                                    '<label name="y1"></label><label name="y2"></label></labels>')
    (tmp_path / "r.xml").write_text('<labels xmlns="http://mulan.sourceforge.net/labels">'
                                    '<label name="y2"></label><label name="y1"></label></labels>')
    labels = ["--labels", str(tmp_path / "l.xml")]
    out = tmp_path / "run"
    run("train", "--train", str(tmp_path / "d.arff"), *labels, "--epochs", "1", "--dimension", "4", "--no-baselines",
        "--no-validate", "-o", str(out))
    assert json.loads((out / "features.json").read_text()) == ["a", "b"]
    assert run("evaluate", str(out), "--train", str(tmp_path / "d.arff"), *labels).returncode == 0
    expected = ("the model was trained on other features, or on these in another order: feature 0 is 'b' in this "
                "data, 'a' in the model's data ('a' is feature 1 in this data)")
    for command in (["evaluate", str(out)], ["predict", str(out), "--rows", str(tmp_path / "swapped.arff")]):
        refused = run(*command, "--train", str(tmp_path / "swapped.arff"), *labels, check=False)
        assert refused.returncode == 2 and expected in refused.stderr, refused.stderr
    reordered = run("evaluate", str(out), "--train", str(tmp_path / "d.arff"), "--labels", str(tmp_path / "r.xml"),
                    check=False)
    assert reordered.returncode == 2 and "the data has the model's labels in another order" in reordered.stderr, \
        reordered.stderr
    refused = run("export", str(out), str(tmp_path / "other"), "--flavour", "portable", "--train",
                  str(tmp_path / "swapped.arff"), *labels, check=False)
    assert refused.returncode == 2 and expected in refused.stderr, refused.stderr
    assert not list((tmp_path / "other").rglob("saved_model.pb"))  # refused before any export is written
    run("export", str(out), str(tmp_path / "served"), "--flavour", "portable")
    served = run("evaluate", "--served", str(tmp_path / "served" / "awe"), "--train", str(tmp_path / "swapped.arff"),
                 *labels, check=False)
    assert served.returncode == 2 and expected in served.stderr, served.stderr
    (out / "features.json").unlink()  # a run of an earlier awe-tf: the names come from its data, read again
    for command in (["evaluate", str(out)], ["export", str(out), str(tmp_path / "older"), "--flavour", "portable"]):
        refused = run(*command, "--train", str(tmp_path / "swapped.arff"), *labels, check=False)
        assert refused.returncode == 2 and expected in refused.stderr, refused.stderr
    (tmp_path / "d.arff").rename(tmp_path / "gone.arff")  # and where that data is gone, a note says so
    unchecked = run("evaluate", str(out), "--train", str(tmp_path / "swapped.arff"), *labels)
    assert "records no feature names and its data cannot be read again" in unchecked.stdout
