"""The benchmark scripts run as their docstrings say (their speed figures are not checked here:
speed belongs to benchmarks/, on demand; that a synthetic set has something to learn is)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_affinity_scoring_gives_a_row_for_every_affinity(data_dir):
    """Every spec scores, those built from the training set included (the cluster affinity,
    which is not a neighbour affinity, stopped the script)."""
    script = ROOT / "benchmarks" / "affinity_scoring.py"
    tree = ast.parse(script.read_text())  # read, not imported: benchmarks/ stays off sys.path
    specs = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", None) == "SPECS")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "affinity_scoring.py"), "--dataset", "emotions",
                           "--dimension", "4", "--repeats", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split()[0] for line in proc.stdout.splitlines()[3:] if line.strip()]
    assert rows == specs


def test_warp_throughput_refuses_bad_arguments_before_any_work(other_lightfm):
    """A LightFM Python that is not there, no epochs, or a setting awe-tf refuses stop with a usage
    error (exit 2), before LightFM's run; the README's initial scale is a flag."""
    script = str(ROOT / "benchmarks" / "warp_throughput.py")
    for argv, said in ((["--lightfm-python", "/no/such/python"], "no such program"),
                       (["--lightfm-python", other_lightfm], "warp_throughput.py), got 1.16"),
                       (["--epochs", "0"], "--epochs must be at least 1"),
                       (["--init-scale", "-1"], "init_scale")):
        proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)


def test_affinity_engines_refuses_what_the_native_engine_cannot_train(data_dir):
    script = str(ROOT / "benchmarks" / "affinity_engines.py")
    for argv, said in ((["--affinity", "topk:k=2,rest=learn"], "the native engine does not train it"),
                       (["--affinity", "knn:k=5+topk:k=2"], "the native engine does not train it"),
                       (["--iterations", "0"], "--iterations must be at least 1")):
        proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)


@pytest.mark.parametrize("affinity", ["knn:k=20", "linear-sigmoid"])  # iterative, and from WSABIE
def test_affinity_engines_trains_both_engines_and_prints_their_ratio(data_dir, affinity):
    script = str(ROOT / "benchmarks" / "affinity_engines.py")
    proc = subprocess.run([sys.executable, script, "--dataset", "emotions", "--affinity", affinity, "--iterations", "1",
                           "--epochs", "2", "--dimension", "16", "--threads", "1"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for engine in ("graph", "native"):
        row = next(line for line in lines if line.startswith(engine))
        assert float(row.split("P@1")[1].split()[0]) > 0.55, row  # popularity: 0.475 on Emotions
    assert float(lines[-1].rsplit(":", 1)[1]) > 0


def test_quality_refuses_unknown_data_and_no_seeds_before_any_run(data_dir, tmp_path):
    """And --from-json, which takes everything from the saved runs, refuses what it would ignore."""
    script = str(ROOT / "benchmarks" / "quality.py")
    saved = tmp_path / "runs.json"
    saved.write_text("{}")
    for argv, said in ((["--datasets", "emotions", "nosuch"], "unknown data set 'nosuch'"),
                       (["--seeds", "0"], "--seeds must be at least 1"),
                       (["--seeds", "1", "2"], "2: not a flag (--seeds takes how many seeds, one number)"),
                       (["--from-json", str(tmp_path / "none.json")], "no such file"),
                       (["--from-json", str(saved), "--seeds", "2"], "give no --datasets, --seeds"),
                       (["--from-json", str(saved), "--dimension", "8"], "(got --dimension 8)"),
                       (["--from-json", str(saved), "--json", str(tmp_path / "x.json")], "nothing new to write")):
        proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)


def test_vote_weights_refuses_bad_arguments_and_scores_every_training_row_out_of_fold(data_dir, tmp_path):
    """Bad flags stop with a usage error before any training; ``--folds`` adds the out-of-fold
    part, every method scored, beside the carve-out and the test part."""
    script = str(ROOT / "benchmarks" / "vote_weights.py")
    for argv, said in ((["--folds", "1"], "--folds must be 0 (none) or at least 2"),
                       (["--seeds", "0"], "--seeds must be at least 1"),
                       (["--weights", "3", "nan"], "--weights must be finite numbers of at least 0"),
                       (["--weights", "-1"], "--weights must be finite numbers of at least 0"),
                       (["--datasets", "nosuch"], "unknown data set 'nosuch'")):
        proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (argv, proc.stderr)
    out = tmp_path / "votes.json"
    proc = subprocess.run([sys.executable, script, "--datasets", "emotions", "--seeds", "1", "--weights", "3",
                           "--folds", "2", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = json.loads(out.read_text())
    methods = ["WSABIE", "w=3", "k-NN (WSABIE space)"]
    for part in ("carve-out", "test", "out of fold"):
        assert list(run[part]) == methods, part
        assert all(0 <= value <= 1 for values in run[part].values() for value in values), run[part]
    assert "out of fold: change against WSABIE over 1 runs" in proc.stdout
    # every training row scored once, by a model that did not train on it: Emotions' training part has 391
    assert run["out of fold rows"] == 391
    assert list(run["out of fold errors"]) == methods[1:]
    assert all(0 <= error < 0.1 for errors in run["out of fold errors"].values() for error in errors)
    assert min(run["out of fold errors"]["k-NN (WSABIE space)"]) > 0  # k-NN ranks some rows otherwise than WSABIE


def _module(name: str):
    """A benchmarks/ module, loaded from its file (benchmarks/ stays off sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lightfm_side_of_quality_ranks_and_scores_as_awe_tf_does():
    """quality.py's LightFM worker chooses LightFM's epochs by its own ranking of the carve-out:
    the same top-k (exclusions, candidates, ties towards the lower label) and precision as
    awe-tf's metric code, so the peer's epochs are chosen as awe-tf's are."""
    import numpy as np
    import scipy.sparse as sp

    from awe_tf.metrics import precision_at_k, top_k

    worker = _module("_lightfm_protocol")
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(40, 30)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.05] = np.nan
    exclude = sp.random(40, 30, density=0.2, random_state=1, format="csr")
    exclude.data[::7] = 0.0  # stored zeros exclude nothing
    candidates = np.sort(rng.choice(30, 22, replace=False))
    positives = sp.random(40, 30, density=0.15, random_state=2, format="csr")
    for k in (1, 3, 10):
        for excl, cand in ((None, None), (exclude, candidates)):
            ours = worker._top(scores, k, excl, cand)
            np.testing.assert_array_equal(ours, top_k(scores, k, excl, cand))
            assert worker._precision(ours, positives, k) == pytest.approx(precision_at_k(ours, positives, k))


def test_the_lightfm_worker_breaks_ties_between_epochs_as_awe_tf_does():
    """The peer's epochs are chosen by awe-tf's rule (ValidationRanking._improves): level on the
    monitored precision up to rounding, the other metric decides."""
    from awe_tf.data import load_dataset
    from awe_tf.training.callbacks import ValidationRanking

    worker = _module("_lightfm_protocol")
    ranking = ValidationRanking(load_dataset("corel5k"))
    cases = [((0.5, 0.3), (0.5, 0.3)), ((0.5, 0.31), (0.5, 0.3)), ((0.5 - 1e-16, 0.31), (0.5, 0.3)),
             ((0.49, 0.9), (0.5, 0.3)), ((0.51, 0.0), (0.5, 0.3)), ((0.5, 0.29), (0.5, 0.3))]
    for (value, check), (best, best_check) in cases:
        ranking.best, ranking.best_check = best, best_check
        assert worker._better(value, check, best, best_check) == ranking._improves(value, check), (value, check)


def test_quality_refuses_a_lightfm_python_that_cannot_run_lightfm(data_dir, other_lightfm):
    """Before any training: a program that is not there, and a Python without lightfm 1.17."""
    script = str(ROOT / "benchmarks" / "quality.py")
    for python, said in (("/no/such/py", "no such program"), (other_lightfm, "needs a Python with lightfm 1.17")):
        proc = subprocess.run([sys.executable, script, "--lightfm-python", python], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_lightfm_side_of_quality_gets_the_protocols_rows_and_awe_tf_flags(data_dir):
    """The worker's recommendation stage: each scored user's training row is the row its
    exclusions came from, and only items seen in training are candidates; LightFM takes the
    flags given after the recipe's."""
    import numpy as np
    import scipy.sparse as sp

    from awe_tf.data import load_dataset

    quality = _module("quality")
    split = load_dataset("ml-100k")
    arrays = {}
    quality._stage_arrays(arrays, "full_", split, "l2")

    def csr(name):
        return sp.csr_matrix((arrays[name + "_data"], arrays[name + "_indices"], arrays[name + "_indptr"]),
                             shape=tuple(arrays[name + "_shape"]))

    users, exclude, train = arrays["full_eval_users"], csr("full_eval_exclude"), csr("full_train_Y")
    assert users.size == split.test.n_examples
    assert (exclude != train[users]).nnz == 0
    assert csr("full_eval_Y").multiply(train[users]).nnz == 0  # held-out items are not training items
    np.testing.assert_array_equal(arrays["full_candidates"], np.flatnonzero(train.getnnz(axis=0)))
    settings = quality.lightfm_settings([*quality.RECIPE, "--dimension", "32", "--epochs", "4"])
    assert (settings.dimension, settings.epochs, settings.monitor) == (32, 4, None)


def test_lightfm_side_of_the_speed_benchmarks_ranks_ties_as_awe_tf_does():
    """warp_throughput.py's and scale.py's LightFM worker keeps the 10 best columns per row by a
    partition: where the 10th score is tied with columns the partition could leave out, it keeps
    the lowest of the tied, as awe-tf's top_k does (the worker imports LightFM only to train)."""
    import sys

    import numpy as np

    from awe_tf.metrics import top_k

    sys.path.insert(0, str(ROOT / "benchmarks"))  # the worker imports its neighbour _memory, as when run
    try:
        worker = _module("_lightfm_worker")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 40)).astype(np.float32)  # many ties at every place
    scores[:2] = 1.0  # all tied
    scores[1, 35:] = 5.0  # five better columns at the end, the rest tied
    scores[2, :] = -np.inf  # nothing allowed
    scores[2, 30:] = 0.0
    ours = worker.top10(scores)
    theirs = np.asarray(top_k(scores, 10))
    assert np.array_equal(ours[[0, 1]], [np.arange(10), [35, 36, 37, 38, 39, 0, 1, 2, 3, 4]])
    assert np.array_equal(ours[3:], theirs[3:])
    assert np.array_equal(ours[2, :10], np.r_[30:40]) and np.array_equal(theirs[2], np.r_[30:40])


def test_topic_text_scores_every_method_on_a_set_with_topics_to_learn(tmp_path):
    """benchmarks/topic_text.py end to end on a small set: WSABIE, auto, the SVD and popularity
    scored on the test part, the set learnable (WSABIE and the SVD far above popularity), the
    same seed the same set; sizes it cannot draw are usage errors before any work."""
    script = str(ROOT / "benchmarks" / "topic_text.py")
    out = tmp_path / "topics.json"
    proc = subprocess.run([sys.executable, script, "--seeds", "1", "--documents", "1500", "--words", "2000",
                           "--labels", "60", "--topics", "8", "--dimension", "8", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(out.read_text())["runs"][0]
    metrics = run["metrics"]
    assert set(metrics) == {"WSABIE", "auto", "SVD", "popularity"}
    for method in ("WSABIE", "SVD", "auto"):
        assert metrics[method]["precision@1"] > metrics["popularity"]["precision@1"] + 0.2, method
    assert f"auto chose: {run['auto_chose']}" in proc.stdout and "| P@10 |" in proc.stdout
    for argv, said in ((["--documents", "5"], "documents >= 10"), (["--seeds", "0"], "--seeds")):
        refused = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and said in refused.stderr and "Traceback" not in refused.stderr

    topic_text = _module("synthetic").topic_text
    first, again, other = (topic_text(300, 500, 20, 4, seed=seed) for seed in (0, 0, 1))
    assert (first.train.X != again.train.X).nnz == 0 and (first.test.Y != again.test.Y).nnz == 0
    assert (first.train.X != other.train.X).nnz > 0
    assert first.train.n_examples == 240 and first.train.X.max() > 1  # a word's count is its value


def test_keyword_text_labels_follow_words_of_their_own():
    """synthetic.keyword_text: the same seed the same set; regression on the words ranks far above
    popularity (the labels are linear in them); sizes with too few words for the keywords are
    refused."""
    import numpy as np
    import scipy.sparse as sp

    from awe_tf.baselines import Popularity, ReducedRankRidge
    from awe_tf.evaluation import evaluate_model

    keyword_text = _module("synthetic").keyword_text
    first, again, other = (keyword_text(1000, 600, 40, seed=seed) for seed in (0, 0, 1))
    assert (first.train.X != again.train.X).nnz == 0 and (first.test.Y != again.test.Y).nnz == 0
    assert (first.train.X != other.train.X).nnz > 0 and first.train.n_examples == 800

    def with_ones(X):
        return sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")

    P, Q = ReducedRankRidge(rank=40).fit(with_ones(first.train.X), first.train.Y).factors(1.0)
    ridge = evaluate_model(lambda X: np.asarray(with_ones(X) @ P) @ Q.T, first)["metrics"]["precision@1"]
    popularity = evaluate_model(Popularity().fit(first.train).score, first)["metrics"]["precision@1"]
    assert ridge > popularity + 0.3, (ridge, popularity)
    with pytest.raises(ValueError, match="labels \\* keywords <= words - 100"):
        keyword_text(100, 200, 40)


@pytest.mark.parametrize("script", sorted(path.name for path in (ROOT / "benchmarks").glob("[!_]*.py")))
def test_every_benchmark_script_says_what_it_does_when_asked(script):
    """``python benchmarks/X.py --help`` prints the script's docstring (or its usage) and exits 0,
    for every script, the shared modules that only others import included."""
    path = ROOT / "benchmarks" / script
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{script} has no docstring to say what it does"
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0 and doc.splitlines()[0] in " ".join(proc.stdout.split()), proc.stderr[-500:]
