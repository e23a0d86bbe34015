"""awe-tf diagnose: what G does on the test part, measured the same way for every affinity."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from awe_tf.data import load_dataset
from awe_tf.diagnostics import PairValues, figure, pair_values, profile, verdict
from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")


def test_the_linear_model_has_a_constant_g(corel):
    model = fit(corel.train, ModelConfig(dimension=8, num_negatives=5), TrainConfig(epochs=1, verbose=0)).model
    report = profile(model, corel)
    for side in ("g_positives", "g_negatives"):  # exactly, not a ratio of scores with its rounding
        assert report[side]["p10"] == report[side]["p90"] == report[side]["mean"] == 1.0
    assert report["g_zero_on_positives"] == 0.0 and report["margin_in_linear_terms"] == pytest.approx(model.margin)
    assert "the model is WSABIE" in verdict(report)


def test_a_run_where_auto_chose_a_closed_form_is_diagnosed_as_it(corel, tmp_path):
    """G = 1 with the SVD's U and V: diagnose reads the run's record and names the SVD (or ridge),
    not WSABIE; every test positive is counted (none dropped for a linear score near 0)."""
    from awe_tf.diagnostics import diagnose
    from awe_tf.runs import publish
    from awe_tf.training import svd_start

    model = svd_start(corel.train, ModelConfig(dimension=8))
    publish(tmp_path, model, {"auto": True, "affinity": "constant", "validation": {"auto": {"made": "log-odds SVD"}}})
    report = diagnose(tmp_path, corel)
    assert "the model is the log-odds SVD that --affinity auto chose" in report["verdict"]
    assert "margin_in_linear_terms" not in report  # made, not trained: no margin to read in linear terms
    measured = pair_values(model, corel)
    assert (measured.positives == 1.0).all() and (measured.negatives == 1.0).all()  # no NaN: none dropped
    made = {"made": "reduced-rank ridge (lambda 1)"}
    publish(tmp_path, model, {"auto": True, "affinity": "constant", "validation": {"auto": made}})
    verdict_of_ridge = diagnose(tmp_path, corel)["verdict"]
    assert "the model is the reduced-rank ridge (lambda 1) that --affinity auto chose" in verdict_of_ridge
    publish(tmp_path, model, {"auto": True, "affinity": "constant", "validation": {"auto": {"made": None}}})
    assert diagnose(tmp_path, corel)["verdict"].endswith("the model is WSABIE")


def test_a_knn_affinity_is_profiled_from_its_g_rows(corel):
    result, _ = fit_iterative(corel.train, ModelConfig(dimension=8, num_negatives=5, affinity="knn:k=10"),
                              TrainConfig(epochs=1, verbose=0), iterations=1, log=lambda line: None)
    model = result.model
    report = profile(model, corel)
    # G is the share of x's 10 neighbours carrying y: a multiple of 0.1, 0 for some positives
    assert 0.0 < report["g_zero_on_positives"] < 1.0
    assert report["g_positives"]["mean"] > 3 * report["g_negatives"]["mean"]
    assert report["margin_in_linear_terms"] == pytest.approx(model.margin / report["g_positives"]["mean"])
    assert "% of the test positives" in verdict(report)


def test_the_verdict_says_what_a_wider_margin_and_the_steps_mean():
    """The reason line reads the margin in linear terms against WSABIE's, and names step 0 of the
    k-NN trend as the linear model's."""
    spread = {"mean": 0.415, "p10": 0.1, "p90": 0.8}
    report = {"g_positives": spread, "g_negatives": {**spread, "mean": 0.246}, "g_zero_on_positives": 0.1,
              "margin": 1.0, "margin_in_linear_terms": 2.41, "step_knn_precision": [0.645, 0.658, 0.665]}
    why = verdict(report)
    assert "G favours positives (0.415 against 0.246 for random labels)" in why
    assert "turns the margin 1 into 2.41 in linear terms (a positive must beat a label by more than WSABIE asks" in why
    assert "k-NN P@1 in each step's U improves (0.645 -> 0.658 -> 0.665; step 0: the linear model's)" in why
    without_0 = verdict({**report, "step_knn_precision": [0.658, 0.665], "knn_steps": [1, 2]})  # step 0 left out
    assert "k-NN P@1 in each step's U improves (0.658 -> 0.665; from step 1)" in without_0
    peaked = verdict({**report, "step_knn_precision": [0.645, 0.671, 0.648]})  # first and last level: a peak between
    assert "k-NN P@1 in each step's U holds from first to last, best at step 1 (0.645 -> 0.671 -> 0.648;" in peaked
    assert "best at" not in why
    numbered = verdict({**report, "step_knn_precision": [0.645, 0.671, 0.648], "knn_steps": [1, 2, 3]})
    assert "holds from first to last, best at step 2 (0.645 -> 0.671 -> 0.648; from step 1)" in numbered
    started = verdict({**report, "steps_started_from": "runs/w/model"})  # --init-from: step 0 is that model
    assert "(0.645 -> 0.658 -> 0.665; step 0: the model it started from, runs/w/model)" in started


def test_every_part_of_a_sum_counts_in_g(corel):
    """G of a sum is the sum of its parts' G: the part built from the training set (k-NN, its G
    on every feature with prior=0), and a part that weighs feature terms (low-rank), whose G is
    effective (diagnose counted only the k-NN part and the constants)."""
    from awe_tf.diagnostics import _linear_scores, _pairs, g_values

    config = ModelConfig(dimension=8, num_negatives=5, affinity="constant:0.5+lowrank:rank=2,c=1+knn:k=10,prior=0")
    model = fit_iterative(corel.train, config, TrainConfig(epochs=1, verbose=0), iterations=1,
                          log=lambda line: None)[0].model
    rows, labels = _pairs(corel, 0)[0]
    X = corel.test.X
    linear = _linear_scores(model, X)[rows, labels]
    whole = model.score(X)[rows, labels] / linear  # f = G x^T U^T V y for every pair: G as a whole
    clear = np.abs(linear) > 0.05
    np.testing.assert_allclose(g_values(model, corel, rows, labels)[clear], whole[clear], rtol=1e-3, atol=1e-3)
    assert g_values(model, corel, rows, labels)[clear].mean() > 1.2  # 0.5 + about 1 + the share of neighbours


def test_the_vote_is_profiled_as_what_it_adds_to_the_linear_score(corel):
    from awe_tf.training.iterative import on_linear_model

    wsabie = fit(corel.train, ModelConfig(dimension=8, num_negatives=5), TrainConfig(epochs=1, verbose=0)).model
    reports = [profile(on_linear_model(corel.train, ModelConfig(dimension=8, num_negatives=5,
                                                                affinity=f"vote:weight={w},k=10"), wsabie).model, corel)
               for w in (1.0, 1000.0)]
    small, large = reports
    assert small["additive"] and "margin_in_linear_terms" not in small
    assert large["g_positives"]["mean"] == pytest.approx(1000 * small["g_positives"]["mean"], rel=1e-4)  # w N
    assert small["g_positives"]["mean"] > 3 * small["g_negatives"]["mean"] and 0 < small["g_zero_on_positives"] < 1
    assert small["linear_positives"] == large["linear_positives"]  # the linear score is WSABIE's in both
    assert small["linear_positives"]["mean"] > small["linear_negatives"]["mean"]
    assert verdict(small).startswith("the linear score's gap") and verdict(large).startswith("the vote's gap")


def _series(axis):
    """Each histogram drawn on ``axis``: ``(bin centres, heights, widths)``."""
    out = []
    for bars in axis.containers:
        widths = np.array([p.get_width() for p in bars.patches])
        centres = np.array([p.get_x() for p in bars.patches]) + widths / 2
        out.append((centres, np.array([p.get_height() for p in bars.patches]), widths))
    return out


def test_the_figure_draws_what_the_profile_summarises(corel):
    from awe_tf.training.iterative import on_linear_model

    wsabie = fit(corel.train, ModelConfig(dimension=8, num_negatives=5), TrainConfig(epochs=1, verbose=0)).model
    vote = on_linear_model(corel.train, ModelConfig(dimension=8, num_negatives=5, affinity="vote:weight=1,k=10"),
                           wsabie).model
    measured = pair_values(vote, corel)
    report = {**profile(vote, corel, measured=measured), "step_knn_precision": [0.30, 0.34, 0.33]}
    shown = figure(report, measured)
    assert len(shown.axes) == 3  # w N, the linear score, the steps
    for axis, (positives, negatives), (kind, n) in zip(
            shown.axes[:2], [("g_positives", "g_negatives"), ("linear_positives", "linear_negatives")],
            [("w N", measured.positives.size), ("linear score", measured.linear_positives.size)], strict=True):
        legend = [text.get_text() for text in axis.get_legend().texts]
        assert kind in axis.get_xlabel() and any(text.startswith(f"test positives ({n:,}") for text in legend)
        drawn = _series(axis)
        assert len(drawn) == 2
        for (centres, heights, widths), key in zip(drawn, (negatives, positives), strict=True):
            assert (heights * widths).sum() == pytest.approx(1.0, abs=1e-6)  # a density
            median = centres[np.searchsorted(np.cumsum(heights * widths), 0.5)]  # within a bin of the report's
            assert median == pytest.approx(report[key]["median"], abs=widths[0])
    assert list(shown.axes[2].lines[0].get_ydata()) == report["step_knn_precision"]
    low, high = shown.axes[2].get_ylim()  # a few rows' change is not drawn as a steep rise
    assert high - low >= 0.1 and low <= 0.30 and high >= 0.34
    linear = figure(profile(wsabie, corel), pair_values(wsabie, corel))  # G = 1 up to rounding: one bin, one panel
    assert len(linear.axes) == 1 and "= 1 in linear terms" in linear.axes[0].get_title()
    drawn = _series(linear.axes[0])
    assert len(drawn) == 2 and all(c.size == 1 and c[0] == pytest.approx(1.0) and h[0] == pytest.approx(1.0)
                                   for c, h, _ in drawn)


def test_a_few_outliers_are_drawn_at_the_edges_not_over_the_whole_range():
    """G read as a ratio f / x^T U^T V y is huge where the linear score is near 0: those few
    values must not squash the rest into one bar."""
    rng = np.random.default_rng(0)
    positives = np.r_[rng.normal(1.0, 0.1, 2000), 1e6, -1e6]
    shown = figure({"affinity": "Ratio", "margin": 1.0}, PairValues(positives, rng.normal(0.5, 0.1, 2000)))
    (_, _, widths), (centres, heights, _) = _series(shown.axes[0])
    assert centres[-1] - centres[0] < 10 and widths[0] < 0.25  # around the values, not out to +-1e6
    assert (heights * widths).sum() == pytest.approx(1.0)  # every value drawn, the two beyond at the edges
    legend = [text.get_text() for text in shown.axes[0].get_legend().texts]
    assert legend == ["random labels (2,000)", "test positives (2,002; 2 beyond, at the edges)"]
    # a small group's tail (G of the few positives a k-NN G reaches) is not cut by a large group's mass at 0
    positives = np.r_[np.zeros(850), np.linspace(0.3, 1.0, 150)]
    negatives = np.r_[np.zeros(19000), np.full(1000, 0.05)]
    shown = figure({"affinity": "KNN", "margin": 1.0}, PairValues(positives, negatives))
    (_, _, widths), (centres, _, _) = _series(shown.axes[0])
    assert centres[-1] + widths[-1] / 2 == pytest.approx(1.0)
    assert not any("beyond" in text.get_text() for text in shown.axes[0].get_legend().texts)


def test_cli_diagnoses_a_run_and_its_steps(tmp_path):
    out = tmp_path / "knn"
    train = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "knn:k=10", "--iterations", "2",
                            "--epochs", "1", "--dimension", "8", "--negatives", "5", "--no-baselines", "--verbose",
                            "0", "-o", str(out)], capture_output=True, text=True, env=ENV, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(out), "--plot", str(tmp_path / "d.jpeg")],
                         capture_output=True, text=True, env=ENV, timeout=600)
    assert bad.returncode != 0 and "--plot" in bad.stderr and ".png" in bad.stderr and "Traceback" not in bad.stderr
    plot = tmp_path / "figures" / "d.png"  # a folder not made yet
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(out), "--output",
                           str(tmp_path / "d.json"), "--plot", str(plot)], capture_output=True, text=True, env=ENV,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "corel5k, knn:k=10,prior=True,search=exact affinity" in proc.stdout  # the spec, as --affinity names it
    assert "why: " in proc.stdout and f"plot: {plot}" in proc.stdout
    assert f"report: {tmp_path / 'd.json'}" in proc.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["plot"] == str(plot)
    steps = report["step_knn_precision"]
    assert len(steps) == 3 and all(0 < p < 1 for p in steps)  # the linear step and the two with G
    assert report["knn_steps"] == [0, 1, 2] and "(step: P@1): 0: " in proc.stdout
    # A later run into the directory that did not finish (killed in step 1 of its refit) left its own step 0: the
    # steps' chain of starts no longer leads from it to the run's model, so it is left out, and why is said.
    later, killed = tmp_path / "later", tmp_path / "killed"
    train = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "knn:k=10", "--iterations", "2",
                            "--epochs", "2", "--dimension", "8", "--negatives", "5", "--no-validate", "--no-baselines",
                            "--verbose", "0", "-o", str(later)], capture_output=True, text=True, env=ENV, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    shutil.copytree(out, killed)
    shutil.rmtree(killed / "final" / "step-0")
    shutil.copytree(later / "final" / "step-0", killed / "final" / "step-0")
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(killed), "--output",
                           str(tmp_path / "k.json")], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mixed = json.loads((tmp_path / "k.json").read_text())
    assert mixed["knn_steps"] == [1, 2] and mixed["step_knn_precision"] == pytest.approx(steps[1:])
    assert "step 0 are not those of this run's model" in proc.stdout
    # the same run redone into its directory with fewer steps resumes its steps 0 and 1; step 2 is the other run's
    fewer = tmp_path / "fewer"
    shutil.copytree(out, fewer)
    train = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "knn:k=10", "--iterations", "1",
                            "--epochs", "1", "--dimension", "8", "--negatives", "5", "--no-baselines", "--verbose",
                            "0", "-o", str(fewer)], capture_output=True, text=True, env=ENV, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(fewer), "--output",
                           str(tmp_path / "f.json")], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shorter = json.loads((tmp_path / "f.json").read_text())
    assert shorter["knn_steps"] == [0, 1] and shorter["step_knn_precision"] == pytest.approx(steps[:2])
    assert "step 2 are another run's (this one has 1 step after step 0)" in proc.stdout
    # an auto run keeps its winner's steps under auto/, not final/: where they are gone, said, not left silent
    shutil.rmtree(killed / "final")
    recorded = json.loads((killed / "metrics.json").read_text())
    (killed / "metrics.json").write_text(json.dumps({**recorded, "auto": True}))
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(killed)], capture_output=True,
                          text=True, env=ENV, timeout=600)
    steps_dir = killed / "auto" / "knn_k=10_refit"
    assert proc.returncode == 0 and f"(the run's checkpoints of its steps ({steps_dir}/step-*) are not there)" \
        in proc.stdout
    # a run started from that one kept the model it was given as its step 0, which left no checkpoint
    joint = tmp_path / "joint"
    train = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "knn:k=10", "--iterations", "1",
                            "--init-from", str(out), "--no-validate", "--epochs", "1", "--dimension", "8",
                            "--negatives", "5", "--no-baselines", "--verbose", "0", "-o", str(joint)],
                           capture_output=True, text=True, env=ENV, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(joint), "--output",
                           str(tmp_path / "j.json")], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    started = json.loads((tmp_path / "j.json").read_text())
    assert started["knn_steps"] == [0, 1] and "knn_steps_note" not in started
    assert started["step_knn_precision"][0] == pytest.approx(steps[-1])  # the start's U: the first run's last step
    # the start retrained in its place since: step 0 is no longer that model, and is left out, with the reason
    retrain = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--epochs", "1", "--dimension", "8",
                              "--negatives", "5", "--no-validate", "--no-baselines", "--verbose", "0", "--seed", "5",
                              "--restart", "-o", str(out)], capture_output=True, text=True, env=ENV, timeout=600)
    assert retrain.returncode == 0, retrain.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(joint)], capture_output=True, text=True,
                          env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(step: P@1): 1: " in proc.stdout and "has changed since" in proc.stdout
    assert np.isfinite(report["g_positives"]["mean"])
