"""--affinity auto: WSABIE and the candidates trained on the validation carve-out, a candidate
kept only when it beats WSABIE there by more than its standard error, within the time budget."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from awe_tf.baselines import LogOddsSVD
from awe_tf.data import load_dataset
from awe_tf.evaluation import evaluate_model
from awe_tf.training import ModelConfig, TrainConfig
from awe_tf.training.auto import (
    AT_THE_CAP,
    ROUNDING,
    AutoResult,
    Trial,
    _leader,
    _paired,
    check_metric,
    choose_affinity,
    chosen_name,
    guard_metrics,
    reported_name,
    svd_name,
)

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SMALL = {"model_config": ModelConfig(dimension=16, num_negatives=5), "train_config": TrainConfig(epochs=3, verbose=0)}


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")


def test_a_candidate_replaces_wsabie_only_by_the_rule_on_paired_carve_out_differences(corel):
    picked = choose_affinity(corel.train, **SMALL, candidates=("constant:1+knn:k=20", "constant:1"), budget=50,
                             vote_weights=(3.0,), log=lambda line: None)
    trials = {trial.affinity: trial for trial in picked.trials}
    assert set(trials) == {None, "vote:weight=3,k=20", "constant:1+knn:k=20", "constant:1"}
    for trial in picked.trials[1:]:  # paired differences over the same validation rows as WSABIE's
        assert trial.gain == pytest.approx(trial.score - picked.trials[0].score, abs=1e-9)
        assert trial.both_gain == pytest.approx(trial.both - picked.trials[0].both, abs=1e-9)
        assert 0 <= trial.standard_error < 0.1 and 0 <= trial.both_error < 0.1

    def qualifies(t):  # a trained candidate: a gain above its standard error; the vote: any gain; on neither
        # metric a loss of one standard error or more (all up to rounding)
        def no_loss(gain, error):
            return gain >= 0 or gain > -error + ROUNDING

        return (t.both_gain > (0 if t.vote else t.both_error) + ROUNDING and no_loss(t.gain, t.standard_error)
                and no_loss(t.check_gain, t.check_error))

    winner = max((t for t in picked.trials[1:] if qualifies(t)), key=lambda t: t.both, default=None)
    assert picked.affinity == (winner.affinity if winner else None)
    if picked.affinity in ("constant:1+knn:k=20", "vote:weight=3,k=20"):  # the final model carries G's reference set
        assert picked.final.model.affinity.reference_part().n_reference == corel.train.n_examples
    header = picked.table("precision@1").splitlines()[0].split()
    assert f"CPU time {picked.cpu_seconds:.1f} s in all" in picked.table("precision@1")
    assert picked.cpu_seconds >= sum(trial.cpu_seconds for trial in picked.trials) > 0  # every stage, the refit too
    assert picked.budget == (50, picked.trials[0].cpu_seconds)  # as given, in units of WSABIE's run
    assert "*" in picked.table("precision@1")
    assert header[:10] == ["candidate", "validation", "precision@1", "precision@1", "vs", "WSABIE", "precision@3", "vs",
                           "WSABIE", "mean"]  # each change names its metric
    metrics = evaluate_model(picked.final.model.score, corel)["metrics"]
    assert metrics["precision@1"] > 0.25


def test_a_winner_needs_a_real_gain_and_no_real_loss_on_the_other_metric():
    assert check_metric("precision@1") == "precision@3" and check_metric("precision@10") == "precision@1"
    def trial(gain, check_gain, both_gain, error=0.01):
        return Trial("knn:k=20", 0.5, gain, error, check_gain, error, 0.5, both_gain, error)

    assert trial(0.011, 0.014, 0.012, error=0.009).beats_wsabie  # neither alone is clear, their mean is
    assert trial(0.0, 0.03, 0.015).beats_wsabie  # no loss on the monitored metric
    assert not trial(0.05, -0.02, 0.015).beats_wsabie  # a real loss on the other metric
    assert not trial(0.005, 0.005, 0.005).beats_wsabie  # within the noise
    assert not Trial(None, 0.5, gain=1.0).beats_wsabie and not Trial("knn:k=20", note="not run").beats_wsabie
    # one validation row alone differs: the mean difference equals its standard error in exact arithmetic,
    # and however it rounds, a loss of that size is a real loss and a gain of it no real gain (WSABIE stays)
    one_row = np.zeros(242)
    one_row[7] = -1 / 3
    loss, error = _paired(one_row, np.zeros(242))
    assert -loss == pytest.approx(error, rel=1e-12)
    for rounded in (error, float(np.nextafter(error, 0)), float(np.nextafter(error, 1))):
        check_loss = Trial("knn:k=20", 0.5, 0.02, 0.005, loss, rounded, 0.5, 0.02, 0.005)
        assert not check_loss.beats_wsabie and not dataclasses.replace(check_loss, vote=True).beats_wsabie
        assert dataclasses.replace(check_loss, check_gain=loss / 2).beats_wsabie  # half a standard error: no real loss
        mean_gain = Trial("knn:k=20", 0.5, 0.0, 0.005, 0.0, 0.005, 0.5, -loss, rounded)
        assert not mean_gain.beats_wsabie
    assert trial(0.02, 0.0, 0.02, error=0.005).beats_wsabie  # no change at all on one metric is no loss


def test_with_two_labels_the_check_metric_is_the_monitored_one():
    """No ranking of 2 labels has a third place: auto compares on P@1 alone and runs through."""
    assert check_metric("precision@1", n_labels=2) == "precision@1"
    assert check_metric("precision@1", n_labels=3) == "precision@3"
    emotions = load_dataset("emotions").train
    two = dataclasses.replace(emotions, Y=emotions.Y[:, :2], label_names=emotions.label_names[:2])
    picked = choose_affinity(two, ModelConfig(dimension=8, num_negatives=1), TrainConfig(epochs=2, verbose=0),
                             candidates=(), vote_weights=(3.0,), log=lambda line: None)
    assert picked.check == "precision@1" and picked.rows > 0
    wsabie = picked.trials[0]  # its note says where its best epoch is the last of the 2 allowed, only there
    assert (AT_THE_CAP in wsabie.note) == (wsabie.epochs == [2])
    vote = picked.trials[1]
    assert vote.ran and vote.check_gain == pytest.approx(vote.gain, abs=1e-12)  # the same metric twice
    assert "precision@1 vs WSABIE" in picked.table()
    lines = picked.table().splitlines()
    below = lines[next(i for i, line in enumerate(lines) if "(WSABIE)" in line) + 1]  # its notes' line, if any
    assert "mean of both" not in below  # one metric: nothing to give beside it


def test_the_table_shows_a_change_that_rounds_to_zero_without_a_sign_of_its_own():
    cancelled = Trial("vote:weight=3,k=20", 0.5, 0.01, 0.02, -0.01, 0.02, 0.5, -1e-17, 0.0217, vote=True)
    table = AutoResult(None, None, [Trial(None, 0.5, both=0.45), cancelled], 1.0, [3]).table()
    assert "+0.0000 ± 0.0217" in table and "-0.0000" not in table
    assert "+0.0100 ± 0.0200" in table and "-0.0100 ± 0.0200" in table
    assert table.splitlines()[2] == "    precision@3 0.4000, mean of both 0.4500"  # WSABIE's own, under its row
    assert table.splitlines()[4] == "    not chosen: no gain on the mean of both"  # the one vote: why it is not chosen
    assert table.splitlines()[5].startswith("* the choice; the changes are against WSABIE's row, ± one standard")


def test_a_candidate_that_qualifies_but_is_not_the_choice_says_so():
    """Two candidates beat WSABIE; the one below the choice on the mean of both says why it is not
    chosen, as those that fail the rule do."""
    better = Trial("knn:k=20", 0.6, 0.1, 0.01, 0.1, 0.01, 0.6, 0.1, 0.01)
    good = Trial("linear-sigmoid", 0.58, 0.08, 0.01, 0.08, 0.01, 0.58, 0.08, 0.01)
    assert better.beats_wsabie and good.beats_wsabie
    lines = AutoResult("knn:k=20", None, [Trial(None, 0.5, both=0.5), better, good], 1.0, [2]).table().splitlines()
    row = next(i for i, line in enumerate(lines) if "linear-sigmoid" in line)
    assert lines[row + 1] == ("    not chosen: it beats WSABIE, but the choice scores higher on the mean of both (or "
                              "level, and comes earlier)")
    chosen = next(i for i, line in enumerate(lines) if line.startswith("* ") and "knn" in line)
    assert "not chosen" not in lines[chosen + 1]


def test_the_table_marks_a_best_epoch_at_the_cap():
    """A row whose best epoch is the last allowed says its score may still be rising, and the
    table says how to allow more; none at the cap, no such line."""
    from awe_tf.training.auto import _at_the_cap

    assert _at_the_cap([2, 3], 3) and not _at_the_cap([2, 2], 3)
    capped = Trial("knn:k=20", 0.5, 0.0, 0.01, 0.0, 0.01, 0.5, 0.0, 0.01, epochs=[3, 3], note=_at_the_cap([3, 3], 3))
    table = AutoResult(None, None, [Trial(None, 0.5, both=0.5, epochs=[2]), capped], 1.0, [2]).table()
    lines = table.splitlines()  # header, WSABIE's row and its notes, k-NN's row and its notes
    assert "knn:k=20" in lines[3]
    assert lines[4] == ("    a best epoch is the last allowed (3): the score may still be rising; not chosen: no gain "
                        "on the mean of both")
    assert "may score higher with more epochs (--epochs; TrainConfig.epochs in Python)" in table
    assert "more epochs" not in AutoResult(None, None, [Trial(None, 0.5, both=0.5)], 1.0, [2]).table()


def test_too_little_data_to_choose_on_says_what_to_do_instead(corel):
    """Auto cannot run without a validation carve-out: the error says so, and to name an
    affinity and train without validation (auto has no such switch itself)."""
    few = corel.train.rows(np.arange(3))  # a carve-out of 20% of 3 rows holds none
    with pytest.raises(ValueError, match="too little data to choose the affinity on: name one and train with "
                                         r"--no-validate \(in Python: fit without validation\)"):
        choose_affinity(few, ModelConfig(dimension=4), TrainConfig(epochs=1, verbose=0), log=lambda line: None)
    with pytest.raises(ValueError, match=r"so model_config's 'sigmoid' would be ignored: leave it None"):  # not dropped
        choose_affinity(few, ModelConfig(dimension=4, affinity="sigmoid"), TrainConfig(epochs=1, verbose=0))


def test_candidates_over_the_budget_are_not_run_and_wsabie_stays(corel):
    picked = choose_affinity(corel.train, **SMALL, candidates=("constant:1+knn:k=20",), budget=1.0,
                             log=lambda line: None)
    assert picked.affinity is None and len(picked.trials) == 7  # WSABIE, 3 votes, the SVD, ridge, the trained one
    assert all(trial.note.startswith("not run: over the 1x budget") for trial in picked.trials[1:])
    for trial in picked.trials[1:]:  # each says why: what it was expected to take past what was left
        expected, spent, limit = map(float, re.fullmatch(r"not run: over the 1x budget \(expected ([\d.]+) s with a "
                                                          r"winner's making after it, ([\d.]+) s spent of ([\d.]+) s\)",
                                                          trial.note).groups())
        assert spent + expected > limit - 0.1 and limit == round(picked.trials[0].cpu_seconds, 1), trial.note
    assert "a larger one (--auto-budget; budget= in Python) runs them" in picked.table()
    assert picked.final.model.affinity.reference_part() is None  # WSABIE, refitted


def test_cli_trains_with_the_auto_affinity(tmp_path):
    out = tmp_path / "auto"
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "auto", "--epochs", "3",
                           "--dimension", "16", "--negatives", "5", "--no-baselines", "--verbose", "0", "-o", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "validation precision@1" in proc.stdout and "constant (WSABIE)" in proc.stdout
    assert ("choosing the affinity on the protocol's validation carve-out, by the mean of precision@1 and "
            "precision@3 against WSABIE (epochs by precision@1)") in proc.stdout
    # each stage's own progress is shown set in under the line that names it: WSABIE's refit, k-NN's steps
    lines = proc.stdout.splitlines()

    def indent(part):
        return next(len(line) - len(line.lstrip()) for line in lines if part in line)

    assert indent("refitting on the whole training part for") > indent("auto: WSABIE first")
    assert "validation carve-out:" in proc.stdout
    if "auto: knn:k=20, from WSABIE" in proc.stdout:  # not run where the budget is spent first
        assert indent("step 3/3: G (knn:k=20,") > indent("auto: knn:k=20, from WSABIE")
    report = json.loads((out / "metrics.json").read_text())
    assert report["request"]["affinity"] == "auto" and "auto_budget" not in report["request"]
    assert report["auto"] and report["validation"]["auto"]["trials"][0]["affinity"] is None
    assert report["affinity"] == report["validation"]["auto"]["chosen"]
    for trial in report["validation"]["auto"]["trials"][1:]:  # Corel5k: P@5 and P@10 guard every candidate run
        ran = trial["score"] is not None
        assert set(trial["guard"]) == ({"precision@5", "precision@10"} if ran else set())
        assert all(len(change) == 2 and change[1] >= 0 for change in trial["guard"].values())
    made = report["validation"]["auto"]["made"]
    assert made is None or made.startswith(("log-odds SVD (rank ", "reduced-rank ridge (lambda "))
    chosen = made or ("WSABIE" if report["affinity"] == "constant" else report["affinity"])
    # a vote chosen is said to be WSABIE's model as it is, which --affinity with its spec would not give
    said = f"{report['affinity']} is built on WSABIE's model as it is, nothing trained"
    assert (said in proc.stdout) == report["affinity"].startswith("vote:"), proc.stdout[-3000:]
    assert f"\nmodel (auto: {chosen}) " in proc.stdout  # the test table names what auto chose
    refused = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "auto", "--no-validate",
                              "-o", str(tmp_path / "x")], capture_output=True, text=True, env=ENV, timeout=300)
    assert refused.returncode == 2 and "--affinity auto" in refused.stderr
    for flags, message in ((["--affinity", "auto", "--auto-budget", "0"], "'0' is not a finite number above 0"),
                           (["--affinity", "auto", "--auto-budget", "inf"], "'inf' is not a finite number above 0"),
                           (["--auto-budget", "2"], "--auto-budget is the time budget of --affinity auto")):
        refused = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", *flags, "-o", str(tmp_path / "x")],
                                 capture_output=True, text=True, env=ENV, timeout=300)
        assert refused.returncode == 2 and message in refused.stderr and not refused.stdout


def test_cli_auto_takes_the_budget_given(tmp_path):
    """At 1.5x WSABIE's CPU time the trained candidates (k-NN's three steps the first) do not fit:
    they are not run, the table says a larger budget runs them, and the run records the budget.
    Run again where it finished, it takes every stage from its record and ends where it did."""
    out = tmp_path / "auto"
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--affinity", "auto", "--epochs", "2",
                           "--dimension", "8", "--negatives", "5", "--no-baselines", "--verbose", "0", "-o", str(out),
                           "--auto-budget", "1.5"], capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "knn:k=20" in proc.stdout and "not run: over the 1.5x budget" in proc.stdout
    assert "a larger one (--auto-budget; budget= in Python) runs them" in proc.stdout
    report = json.loads((out / "metrics.json").read_text())
    capped = report["validation"]["auto"]["trials"][0]["epochs"] == [2]  # WSABIE's best epoch the last allowed
    said = proc.stdout.splitlines()
    wsabie_notes = said[next(i for i, line in enumerate(said) if "constant (WSABIE)" in line) + 1]  # under its row
    assert capped == ("a best epoch is the last allowed (2): the score may still be rising" in wsabie_notes)
    any_capped = any(AT_THE_CAP in trial["note"] for trial in report["validation"]["auto"]["trials"])
    assert any_capped == ("may score higher with more epochs (--epochs; TrainConfig.epochs in Python)" in proc.stdout)
    assert json.loads((out / "metrics.json").read_text())["request"]["auto_budget"] == 1.5
    assert "holds a finished run" not in proc.stdout
    again = subprocess.run(proc.args, capture_output=True, text=True, env=ENV, timeout=900)
    assert again.returncode == 0 and f"auto: WSABIE: as an earlier run finished it ({out / 'auto' / 'auto.json'}; " \
        "its models restored from their checkpoints)" in again.stdout
    assert "Resuming from the checkpoint" not in again.stdout  # restored quietly: nothing of it trains
    rerun = json.loads((out / "metrics.json").read_text())
    assert rerun["validation"]["auto"]["trials"] == report["validation"]["auto"]["trials"]
    assert rerun["metrics"] == report["metrics"]  # the same model
    assert rerun["train_seconds"] >= report["validation"]["auto"]["trials"][0]["seconds"]  # WSABIE's, as recorded
    other = subprocess.run([*proc.args, "--epochs", "3"], capture_output=True, text=True, env=ENV, timeout=900)
    assert other.returncode == 2 and "records a choice with other data or settings (--epochs: 2 -> 3)" in other.stderr
    assert other.stderr.strip().endswith("--restart discards it") and "Traceback" not in other.stderr
    # A larger budget, as the table says: the finished run goes on, its stages kept, k-NN run now
    larger = subprocess.run([*proc.args[:-1], "20"], capture_output=True, text=True, env=ENV, timeout=900)
    assert larger.returncode == 0, larger.stderr[-2000:]
    assert "auto: WSABIE: as an earlier run finished it" in larger.stdout
    assert "auto: knn:k=20, from WSABIE" in larger.stdout
    assert json.loads((out / "metrics.json").read_text())["request"]["auto_budget"] == 20
    fresh = subprocess.run([*proc.args, "--restart"], capture_output=True, text=True, env=ENV, timeout=900)
    assert fresh.returncode == 0 and "discarded the earlier run in" in fresh.stdout
    assert "auto" in fresh.stdout.split("discarded the earlier run in")[1].splitlines()[0]
    assert "as an earlier run finished it" not in fresh.stdout


class _Clock:
    """The process's CPU seconds (``now``, what the stages cost) and a wall clock that runs
    ``stretch`` times faster than they once the machine gets busy (``busy``)."""

    def __init__(self, stretch: float = 1.0):
        self.now, self.wall, self.stretch, self.busy = 0.0, 0.0, stretch, False

    def advance(self, cost: float):
        self.now += cost
        self.wall += cost * (self.stretch if self.busy else 1.0)

    def process_time(self):
        return self.now

    def perf_counter(self):
        return self.wall


def _staged(monkeypatch, knn_wins: bool, vote_rows=None, built=None, stretch: float = 1.0, svd: float | None = None,
            svd_wins: bool = False, task: str = "annotation", ridge: float | None = None, deeper: int = 0):
    """choose_affinity with training replaced by a clock: WSABIE costs 5 + 5 (validation, refit),
    k-NN (3 steps) 24, linear sigmoid 8, building a vote 0.5 CPU seconds; the validation rows say
    whether k-NN beats WSABIE, and how many rows each vote (spec: rows) gets right where WSABIE
    does not. ``built`` collects each vote built: (spec, the training data, the linear model).
    After WSABIE the wall clock runs ``stretch`` times faster (other work on the machine).
    ``svd``: the SVD is a candidate, costing that much to make; ``svd_wins``: it beats WSABIE.
    ``task``: the data's. ``ridge``: ridge is a candidate at lambda 1 and 10, costing that much to
    make at both; at lambda 10 it beats WSABIE (at 1 it is level), and on each metric past the two
    compared (the guard metrics) it gets ``deeper`` rows wrong where WSABIE does not."""
    import types

    import numpy as np

    from awe_tf.training import auto
    from awe_tf.training.selection import Chosen

    clock = _Clock(stretch)
    vote_rows = vote_rows or {}
    built = [] if built is None else built
    monkeypatch.setattr(auto, "time", clock)
    monkeypatch.setattr(auto, "checked_validation", lambda train, *why: types.SimpleNamespace(train="carve-out"))
    monkeypatch.setattr(auto, "check_arguments", lambda *arguments: None)  # the training part is a name here
    cost = {None: 5.0, "knn:k=20": 24.0, "linear-sigmoid:alpha=1,beta=0": 8.0}

    class Step:
        def __init__(self, affinity, stage=""):
            self.model = affinity if not stage else f"{affinity} ({stage})"

    def choose_epochs(train, config, train_config, iterations, output_dir=None, init_from=None, log=None):
        clock.advance(cost[config.affinity])
        if config.affinity == "linear-sigmoid:alpha=1,beta=0":  # learnt from WSABIE, which no epoch beats
            return [0], [Step(config.affinity)]
        return [1] * (iterations + (1 if iterations > 1 else 0)), [Step(config.affinity)]

    def svd_starts(train, config, ranks):  # as if the first rank were best: one model for the stage
        clock.advance(svd)
        yield ranks[0], "svd" if train == "carve-out" else "svd (whole part)"

    def refit(train, config, train_config, epochs, iterations, init_from=None, output_dir=None, log=None):
        clock.advance(5.0)
        return Step(config.affinity, "refit")

    def row_scores(model, carve, metrics):
        from threadpoolctl import threadpool_info

        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
        rows = np.zeros(400)
        if (model == "knn:k=20" and knn_wins) or (model == "svd" and svd_wins) or model == "ridge 10":
            rows[:200] = 1.0
        rows[: vote_rows.get(model, 0)] = 1.0
        deep = np.ones(400)  # the metrics past the two compared: every row right, but ridge's first ``deeper``
        if model == "ridge 10":
            deep[:deeper] = 0.0
        return [rows, rows] + [deep] * (len(metrics) - 2)

    def on_linear_model(train, config, linear):
        clock.advance(0.5)
        built.append((config.affinity, train, linear))
        return Step(config.affinity)

    def validate_then_refit(train, config, train_config, iterations, output_dir=None, log=None):  # WSABIE
        epochs, steps = choose_epochs(train, config, train_config, iterations)
        chosen = Chosen(validation=steps[-1], final=refit(train, config, train_config, epochs, iterations),
                        epochs=epochs)
        clock.busy = True
        return chosen

    monkeypatch.setattr(auto, "choose_epochs", choose_epochs)
    monkeypatch.setattr(auto, "refit", refit)
    monkeypatch.setattr(auto, "validate_then_refit", validate_then_refit)
    monkeypatch.setattr(auto, "_row_scores", row_scores)
    monkeypatch.setattr(auto, "on_linear_model", on_linear_model)
    monkeypatch.setattr(auto, "svd_starts", svd_starts)
    made = []  # ridge's models, on which part, in the order made

    def ridge_starts(train, config, penalties):
        clock.advance(ridge)
        for penalty in penalties:
            made.append((penalty, train))
            yield penalty, f"ridge {penalty:g}" if train == "carve-out" else f"ridge {penalty:g} (whole part)"

    monkeypatch.setattr(auto, "ridge_starts", ridge_starts)

    class Part(str):  # the training part, by name: a data set of 10 labels
        n_labels = 10

    Part.task = task

    return auto.choose_affinity(Part("training part"), ModelConfig(), TrainConfig(), candidates=tuple(cost)[1:],
                                svd=svd is not None, ridge_penalties=(1.0, 10.0) if ridge is not None else (),
                                budget=5.0, vote_weights=(1.0, 3.0, 10.0) if vote_rows else (),
                                log=lambda line: None), made


def test_the_budget_keeps_room_for_the_leaders_refit(monkeypatch):
    """(And BLAS runs on one thread during the choice, as its stages assert, and on as many as
    before once it returns.)"""
    from threadpoolctl import threadpool_info

    before = [pool["num_threads"] for pool in threadpool_info()]
    picked, _ = _staged(monkeypatch, knn_wins=True)
    assert [pool["num_threads"] for pool in threadpool_info()] == before
    notes = {trial.affinity: trial.note for trial in picked.trials}
    # after WSABIE (10) and k-NN (24), linear sigmoid (8) and k-NN's refit (3 steps of 8) would pass 50
    assert picked.affinity == "knn:k=20" and notes["linear-sigmoid:alpha=1,beta=0"].startswith("not run")
    assert picked.seconds <= 5.0 * 10 + 1e-9


def test_the_svd_is_made_before_the_trained_candidates_and_its_time_is_no_measure_of_their_steps(monkeypatch):
    """The SVD's 8 CPU seconds are not a training step: k-NN's 3 steps are still guessed at 5
    each (WSABIE 10 + SVD 8 + k-NN 15 + its refit 15 = 48), so k-NN runs."""
    picked, _ = _staged(monkeypatch, knn_wins=False, svd=8.0)
    ran = [trial.name for trial in picked.trials if trial.ran]
    assert ran[:3] == ["constant (WSABIE)", svd_name(64), "knn:k=20"] and picked.affinity is None


def test_the_svds_making_on_the_whole_part_is_budgeted_at_its_carve_out_time(monkeypatch):
    """The SVD leads at 18 CPU seconds: linear sigmoid (guessed at 5) and a making of 18 would pass
    50, so it is not run; the winner is made from the whole training part (18 more), nothing
    trained, within the budget."""
    picked, _ = _staged(monkeypatch, knn_wins=False, svd=18.0, svd_wins=True)
    notes = {trial.name: trial.note for trial in picked.trials}
    assert (picked.affinity, picked.made, picked.epochs) == (None, svd_name(64), [0])
    assert picked.final.model == "svd (whole part)" and picked.final.epochs_run == 0
    assert picked.final.train_seconds == pytest.approx(18.0)  # the making, on the wall clock
    assert notes["linear-sigmoid:alpha=1,beta=0"].startswith("not run")
    assert picked.seconds == pytest.approx(10 + 18 + 18)


def test_a_trained_candidate_that_kept_wsabies_start_says_so(monkeypatch):
    picked, _ = _staged(monkeypatch, knn_wins=False)
    notes = {trial.name: trial.note for trial in picked.trials}
    assert notes["linear-sigmoid:alpha=1,beta=0"] == "no epoch beat WSABIE's start, kept as it is"
    assert notes["knn:k=20"] == ""


def test_a_closed_form_whose_best_setting_is_at_an_end_of_more_than_two_says_so():
    from awe_tf.training.auto import _at_an_end

    assert _at_an_end([0.5, 0.4, 0.3], 0) == _at_an_end([0.3, 0.4, 0.5], 2) != ""
    assert "one beyond might score higher" in _at_an_end([0.3, 0.4, 0.5], 2)
    assert _at_an_end([0.3, 0.5, 0.4], 1) == "" and _at_an_end([0.4, 0.5], 1) == ""  # in the middle; two: no middle
    assert _at_an_end([0.5, 0.5, 0.5], 0) == ""  # a tie with its neighbour: no sign of more beyond


def test_ridge_is_no_candidate_for_recommendation(monkeypatch):
    """Where inputs and labels are the same items, ridge would give each item back from itself:
    it is neither made nor listed, whatever penalties are asked for."""
    picked, made = _staged(monkeypatch, knn_wins=False, task="recommendation", ridge=1.0)
    assert not made and not any((trial.made or "").startswith("reduced-rank ridge") for trial in picked.trials)


def test_ridge_is_one_row_at_its_best_lambda_and_a_winner_is_made_at_it_within_the_budget(monkeypatch):
    """Ridge leads at lambda 10 after 18 CPU seconds: one row, named by that lambda; linear sigmoid
    (guessed at 5) and a making of 18 would pass 50, so it is not run; the winner is made from
    the whole training part at lambda 10 (the basis once, then the penalties up to 10)."""
    picked, made = _staged(monkeypatch, knn_wins=False, ridge=18.0)
    rows = [trial for trial in picked.trials if (trial.made or "").startswith("reduced-rank ridge")]
    assert [trial.name for trial in rows] == ["reduced-rank ridge (lambda 10)"] and rows[0].beats_wsabie
    assert rows[0].note == "the best of lambda 1, 10 on the carve-out (mean of both 0.0000, 0.5000), nothing trained"
    assert (picked.affinity, picked.made, picked.epochs) == (None, "reduced-rank ridge (lambda 10)", [0])
    assert picked.final.model == "ridge 10 (whole part)" and picked.final.epochs_run == 0
    assert made == [(1.0, "carve-out"), (10.0, "carve-out"), (1.0, "training part"), (10.0, "training part")]
    notes = {trial.name: trial.note for trial in picked.trials}
    assert notes["linear-sigmoid:alpha=1,beta=0"].startswith("not run")
    assert picked.seconds == pytest.approx(10 + 18 + 18)


def test_a_candidate_that_clearly_loses_a_deeper_reported_metric_does_not_win(monkeypatch):
    """Ridge at lambda 10 gains half the rows on P@1 and P@3, but on P@5 (the guard metric of 10
    labels) it gets 40 rows of 400 wrong that WSABIE gets right: a loss of over 6 standard errors,
    so WSABIE stays, and its row says why. A few rows wrong (2: 1.4 standard errors) are within
    what the guard lets through."""
    picked, _ = _staged(monkeypatch, knn_wins=False, ridge=18.0, deeper=40)
    ridge = next(trial for trial in picked.trials if trial.made)
    assert list(ridge.guard) == ["precision@5"] and ridge.both_gain == pytest.approx(0.5)
    assert not ridge.beats_wsabie and picked.made is None and picked.affinity is None
    assert "nothing trained; below WSABIE on precision@5 -0.1000 ± 0.0150" in picked.table()
    picked, _ = _staged(monkeypatch, knn_wins=False, ridge=18.0, deeper=2)
    assert picked.made == "reduced-rank ridge (lambda 10)" and "below WSABIE on" not in picked.table()


def test_the_guard_metrics_are_the_protocols_other_reported_ones():
    assert guard_metrics("precision@1", "precision@3", 374) == ("precision@5", "precision@10")
    # P@k only below |Y|: at k = |Y| every ranking scores the same
    assert guard_metrics("precision@1", "precision@3", 11) == ("precision@5", "precision@10")
    assert guard_metrics("precision@1", "precision@3", 10) == ("precision@5",)
    assert guard_metrics("precision@1", "precision@3", 6) == ("precision@5",)
    assert guard_metrics("precision@1", "precision@3", 5) == ()
    assert guard_metrics("precision@1", "precision@1", 2) == ()  # a ranking of 2 labels has no choice at k = 3, 5
    assert guard_metrics("precision@3", "precision@1", 22) == ("precision@5", "precision@10")
    assert guard_metrics("recall@1", "recall@3", 22) == ("precision@5", "precision@10")  # by k, not by name
    # recommendation's protocol reports P@1 and P@10: the CLI's monitor and check are those two
    assert guard_metrics("precision@10", "precision@1", 1682, "recommendation") == ()
    assert guard_metrics("precision@1", "precision@3", 1682, "recommendation") == ("precision@10",)
    # a clear loss is two standard errors, up to rounding; one (a single row) is let through
    trial = Trial("knn:k=20", 0.6, 0.02, 0.005, 0.02, 0.005, 0.6, 0.02, 0.005, guard={"precision@10": (-0.01, 0.005)})
    assert not trial.beats_wsabie and trial.guard_losses == ["precision@10 -0.0100 ± 0.0050"]
    for loss in (-0.005, -0.0099):
        assert dataclasses.replace(trial, guard={"precision@10": (loss, 0.005)}).beats_wsabie
    vote = dataclasses.replace(trial, affinity="vote:weight=3,k=20", vote=True)
    assert not vote.beats_wsabie  # the vote is guarded too
    two = dataclasses.replace(vote, guard={"precision@5": (-0.02, 0.005), "precision@10": (-0.01, 0.005)},
                              note="WSABIE's model, nothing trained")
    lines = AutoResult(None, None, [Trial(None, 0.5, both=0.5), two], 1.0, [3]).table().splitlines()
    legend = next(i for i, line in enumerate(lines) if line.startswith("* the choice"))
    assert lines[legend - 1].endswith("WSABIE's model, nothing trained; below WSABIE on precision@5 -0.0200 ± "
                                      "0.0050, precision@10 -0.0100 ± 0.0050")  # the legend follows


def test_a_report_holds_no_nan_or_infinity_however_deep():
    """JSON has neither: a trial's scores, and the standard errors in its guard (infinite with one
    validation row), are written as null."""
    from awe_tf.cli.train import _finite

    record = {"score": float("nan"), "epochs": [3, 4], "guard": {"precision@5": (-0.1, float("inf"))}, "note": ""}
    assert _finite(record) == {"score": None, "epochs": [3, 4], "guard": {"precision@5": [-0.1, None]}, "note": ""}
    json.dumps(_finite(record), allow_nan=False)


def test_a_run_is_named_by_what_auto_chose(capsys):
    """The name in train's test table and in quality.py: WSABIE for G = 1 (constant), the SVD where
    it won (G = 1 too), else the affinity."""
    from awe_tf.cli.train import _print_table

    assert chosen_name(None) == chosen_name("constant") == "WSABIE" and chosen_name("knn:k=20") == "knn:k=20"
    assert chosen_name(None, "log-odds SVD") == "log-odds SVD"
    assert reported_name({"affinity": "knn:k=20", "validation": None}) == "knn:k=20"
    assert reported_name({"affinity": "constant", "validation": {"best_epochs": [3]}}) == "WSABIE"
    ridge = {"affinity": "constant", "auto": True, "metrics": {"precision@1": 0.5}, "n_test": 10, "n_excluded": 0,
             "validation": {"auto": {"chosen": "constant", "made": "reduced-rank ridge (lambda 10)"}}}
    assert reported_name(ridge) == "reduced-rank ridge (lambda 10)"
    _print_table(ridge, "precision@1", "annotation")
    assert "model (auto: reduced-rank ridge (lambda 10)) " in capsys.readouterr().out
    earlier = {"affinity": "constant", "validation": {"auto": {"chosen": "constant", "svd": True}}}  # before ridge
    assert reported_name(earlier) == "log-odds SVD"


def test_without_a_leader_the_next_candidate_still_runs(monkeypatch):
    picked, _ = _staged(monkeypatch, knn_wins=False)
    ran = {trial.affinity for trial in picked.trials if trial.ran}
    assert picked.affinity is None and "linear-sigmoid:alpha=1,beta=0" in ran


def test_the_budget_counts_cpu_time_so_a_busy_machine_runs_the_same_candidates(monkeypatch):
    """Other work that stretches the wall clock threefold after WSABIE (k-NN's 24 s then read 72,
    and linear sigmoid would not fit a wall-clock budget of 50) runs the same candidates as a quiet
    machine; the trials report the wall seconds too."""
    quiet, _ = _staged(monkeypatch, knn_wins=False)
    busy, _ = _staged(monkeypatch, knn_wins=False, stretch=3.0)
    assert [trial.ran for trial in busy.trials] == [trial.ran for trial in quiet.trials]
    assert busy.trials[-1].affinity == "linear-sigmoid:alpha=1,beta=0" and busy.trials[-1].ran
    knn = next(trial for trial in busy.trials if trial.affinity == "knn:k=20")
    assert (knn.cpu_seconds, knn.seconds) == (24.0, 72.0) and busy.seconds > 5.0 * 10


def test_a_vote_that_wins_is_built_on_wsabies_refit_and_needs_no_budget(monkeypatch):
    from awe_tf.training.auto import vote_spec

    built = []
    rows = {vote_spec(1): 10, vote_spec(3): 30, vote_spec(10): 30}  # 3 and 10 tie: the smaller weight
    picked, _ = _staged(monkeypatch, knn_wins=False, vote_rows=rows, built=built)
    assert picked.affinity == vote_spec(3) and picked.epochs == [1]  # WSABIE's epochs: nothing else trained
    assert [(spec, train) for spec, train, _ in built] == [(vote_spec(1), "carve-out"), (vote_spec(3), "carve-out"),
                                                          (vote_spec(10), "carve-out"), (vote_spec(3), "training part")]
    assert all(linear is None for _, _, linear in built[:3])  # the votes on the carve-out: on WSABIE's stage model
    assert built[-1][2] == "None (refit)" and picked.final.model == vote_spec(3)  # the winner: on WSABIE's refit
    ran = {trial.affinity for trial in picked.trials if trial.ran}
    assert "knn:k=20" in ran  # WSABIE 10, three votes 1.5, k-NN 24, the winning vote's build 0.5: no refit
    assert picked.seconds == pytest.approx(10 + 1.5 + 24 + 0.5)
    table = picked.table("precision@1")
    assert "nothing trained" in table and f"* {vote_spec(3)}" in table


def test_a_vote_needs_any_gain_at_its_chosen_weight_and_no_real_loss():
    def vote(weight, both_gain, gain=0.0, error=0.01):
        return Trial(f"vote:weight={weight:g},k=20", 0.5 + both_gain, gain, error, both_gain, error, 0.5 + both_gain,
                     both_gain, error, vote=True)

    small = vote(1, 0.004)  # below its standard error, still a gain: the vote's knob is chosen, not tested
    assert small.beats_wsabie and _leader([Trial(None, 0.5), small]) is small
    trained = Trial("knn:k=20", 0.504, 0.004, 0.01, 0.004, 0.01, 0.504, 0.004, 0.01)
    assert not trained.beats_wsabie and _leader([Trial(None, 0.5), trained]) is None
    assert not vote(1, 0.0).beats_wsabie and not vote(1, 0.02, gain=-0.02).beats_wsabie  # a real loss on one
    # only the best weight counts: a worse weight that qualifies does not win over it when it fails
    best, worse = vote(3, 0.03, gain=-0.05), vote(1, 0.01)
    assert _leader([Trial(None, 0.5), worse, best]) is None
    big = Trial("knn:k=20", 0.6, 0.1, 0.01, 0.1, 0.01, 0.6, 0.1, 0.01)
    assert _leader([Trial(None, 0.5), vote(3, 0.03), big]) is big  # a trained candidate that does better wins
    # The table says which weight is the vote's and why a candidate is not chosen (a weight that would pass,
    # not being the vote's, has nothing to say: the vote's line says which one competes)
    wsabie = Trial(None, 0.5, both=0.5)
    lines = AutoResult(None, None, [wsabie, worse, best, trained], 1.0, [2]).table().splitlines()
    notes = {lines[at - 1].split()[0]: line.strip() for at, line in enumerate(lines) if line.startswith("    ")}
    assert notes["vote:weight=3,k=20"] == ("the vote's weight: the best of its weights on the mean of both (the "
                                           "smaller on a tie); not chosen: a loss of one standard error or more on "
                                           "precision@1")
    assert "vote:weight=1,k=20" not in notes
    assert notes["knn:k=20"] == "not chosen: a gain on the mean of both of at most one standard error"
    winner = AutoResult("vote:weight=1,k=20", None, [wsabie, small], 1.0, [2]).table()
    assert "not chosen" not in winner and "the vote's weight" not in winner  # one weight: nothing to choose among


def test_a_tie_goes_to_the_smaller_weight_and_the_earlier_row_whatever_the_last_bits():
    """Two weights that get the same rows right score the same mean, but summed in another order
    its last bits can differ: still a tie, which the smaller weight wins; among the winners the
    earlier row wins one the same way."""
    low = Trial("vote:weight=1,k=20", 0.8, 0.0, 0.02, 0.004, 0.004, 0.6623931623931623, 0.002, 0.008, vote=True)
    high = dataclasses.replace(low, affinity="vote:weight=3,k=20", both=0.6623931623931624)
    assert high.both > low.both and _leader([Trial(None, 0.8), low, high]) is low
    assert _leader([Trial(None, 0.8), dataclasses.replace(low, both=0.66), high]) is high  # a real difference
    svd = Trial(None, 0.8, 0.05, 0.01, 0.05, 0.01, 0.7, 0.05, 0.01, made="log-odds SVD")
    ridge = dataclasses.replace(svd, made="reduced-rank ridge (lambda 1)", both=0.7 + 1e-16)
    assert _leader([Trial(None, 0.8), svd, ridge]) is svd


def test_a_change_that_cancels_out_is_zero_not_its_last_bits():
    """Rows that gain and lose the same amounts (thirds, as P@3 has) average to exactly 0, as the
    trials in metrics.json report it, not to a remainder of the float sums."""
    rows = np.array([2 / 3, 1 / 3, 1.0, 0.0, 1 / 3, 2 / 3] * 7)
    baseline = np.roll(rows, 1)
    assert (rows - baseline).mean() != 0.0  # the float sums' remainder this guards against
    gain, error = _paired(rows, baseline)
    assert gain == 0.0 and error > 0.0
    assert _paired(rows, baseline - 1e-6)[0] == pytest.approx(1e-6)  # a real change, however small, stays


def test_one_validation_row_replaces_wsabie_with_nothing_and_the_table_says_so():
    """With one validation row a difference has no standard error (infinite): no candidate, the
    vote included, replaces WSABIE on it; the table says how many rows it scored, and when they
    are too few to tell the candidates apart."""
    gain, error = _paired(np.array([1.0]), np.array([0.0]))
    assert gain == 1.0 and error == float("inf")
    one = Trial("vote:weight=3,k=20", 1.0, gain, error, gain, error, 1.0, gain, error, vote=True)
    assert not one.beats_wsabie and _leader([Trial(None, 0.0), one]) is None
    table = AutoResult(None, None, [Trial(None, 0.0, both=0.0), one], 1.0, [3], rows=1).table()
    assert table.endswith("scored on 1 validation rows: too few to tell the candidates apart, WSABIE is kept "
                          "unless a gain is beyond doubt")
    assert "    not chosen: one validation row, no standard error to tell a gain by" in table.splitlines()
    assert AutoResult(None, None, [Trial(None, 0.5, both=0.5)], 1.0, [3], rows=78).table().endswith(
        "scored on 78 validation rows")
    assert "the vote, a knob on WSABIE's own model chosen as knobs are, with any gain" in table  # one vote row ran
    assert "with any gain" not in AutoResult(None, None, [Trial(None, 0.5, both=0.5)], 1.0, [3]).table()


def test_the_table_says_the_time_spent_against_the_budget():
    """The CPU seconds of the whole choice beside the budget, in seconds and as the multiple of
    WSABIE's run it was given in; no line where the result holds no time (made by hand)."""
    trials = [Trial(None, 0.5, both=0.5, cpu_seconds=4.3)]
    table = AutoResult(None, None, trials, 9.0, [3], cpu_seconds=26.04, budget=(5.0, 4.26)).table()
    assert "CPU time 26.0 s in all, refit included, against a budget of 21.3 s (5x WSABIE's 4.3 s)" in table
    assert "CPU time" not in AutoResult(None, None, trials, 9.0, [3]).table()


def test_the_svd_as_a_model_ranks_as_the_svd_baseline_within_the_max_norm(corel, data_dir):
    """U and V from the log-odds SVD's factors: each row's scores are the SVD baseline's (fitted as
    the reports fit it) times one positive factor, on binary features (Corel5k) and on numeric
    ones that the model standardises (Emotions, whose 78 columns hold the SVD's rank below d: the
    dimensions past it are 0); the bias row is a label prior of at most PRIOR_SCALE times a
    training score's typical size in any score,
    which ranks a row with no input by the labels' training frequency (Spearman's rho above 0.75),
    and no row of U or V passes max_norm, however small."""
    from awe_tf.evaluation import standardised
    from awe_tf.training.closed_form import PRIOR_SCALE, svd_start

    # tolerance: Emotions' standardised columns are summed in float32 with much cancelling
    for split, dimension, tolerance in ((corel, 16, 1e-5), (load_dataset("emotions"), 100, 5e-3)):
        scaled = standardised(split)
        X = split.test.X[:200]
        expected = LogOddsSVD(rank=dimension).fit(scaled.train).score(scaled.test.X[:200])
        rank = min(dimension, split.train.n_features + split.train.n_labels - 1)
        for max_norm in (3.0, 0.05):
            config = ModelConfig(dimension=dimension, max_norm=max_norm, affinity="knn:k=20")
            model = svd_start(split.train, config)
            assert model.affinity.reference_part() is None  # G = 1 whatever affinity the settings name
            scores = model.score(X)
            np.testing.assert_allclose(scores / np.linalg.norm(scores, axis=1, keepdims=True),
                                       expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=tolerance)
            U, V = model.U.table.numpy(), model.V.table.numpy()
            assert not U[:, rank:].any() and not V[:, rank:].any()
            prior = V @ U[split.train.n_features]  # what a row with nothing the model uses scores
            sizes = np.abs(model.score(split.train.X)).ravel()
            typical = np.median(sizes[sizes > 0])  # the code's is a sample's: within a factor 2 of it
            assert 0 < np.abs(prior).max() <= 2 * PRIOR_SCALE * typical
            frequency = np.asarray(split.train.Y.sum(axis=0)).ravel()
            assert np.corrcoef(np.argsort(np.argsort(prior)), np.argsort(np.argsort(frequency)))[0, 1] > 0.75
            if split is corel:  # binary features: a row of none is empty as the model reads it, scored by the prior
                empty = model.score(sp.csr_matrix((1, split.train.n_features)))[0]
                assert np.corrcoef(np.argsort(np.argsort(empty)), np.argsort(np.argsort(prior)))[0, 1] > 0.99
            assert np.linalg.norm(U, axis=1).max() <= max_norm * (1 + 1e-6)
            assert np.linalg.norm(V, axis=1).max() <= max_norm * (1 + 1e-6)


def test_where_wsabie_learns_nothing_the_svd_wins_and_is_made_from_the_whole_part(corel):
    """A learning rate that leaves WSABIE at its random start: the SVD, at the best of its ranks on
    the carve-out (d, d/2, d/4, d/8, each one's score in its row's note), beats it there, wins, and
    the model returned is the SVD of the whole training part at that rank (it ranks as that SVD),
    not WSABIE's refit or the carve-out's SVD."""
    import re

    from awe_tf.data.protocols import validation_split
    from awe_tf.training.auto import SVD

    picked = choose_affinity(corel.train, ModelConfig(dimension=16, num_negatives=5),
                             TrainConfig(epochs=1, learning_rate=1e-7, verbose=0), candidates=(),
                             vote_weights=(), ridge_penalties=(), log=lambda line: None)
    rank = int(re.fullmatch(rf"{SVD} \(rank (\d+)\)", picked.made).group(1))
    assert (picked.affinity, picked.name, picked.epochs) == (None, svd_name(rank), [0])
    svd = picked.trials[1]
    assert svd.beats_wsabie and svd.name == picked.made and f"* {picked.made}" in picked.table()
    assert "* constant (WSABIE)" not in picked.table()
    scores = [float(each) for each in re.search(r"mean of both ([^)]*)\)", svd.note).group(1).split(", ")]
    assert len(scores) == 4 and scores[(16, 8, 4, 2).index(rank)] == max(scores)
    X = corel.test.X
    top = picked.final.model.score(X).argmax(axis=1)
    whole = LogOddsSVD(rank=16).fit(corel.train).score(X, rank).argmax(axis=1)
    carve = LogOddsSVD(rank=16).fit(validation_split(corel.train).train).score(X, rank).argmax(axis=1)
    assert (top == whole).mean() > 0.99 and (top == carve).mean() < 0.9


def test_where_wsabie_learns_nothing_ridge_wins_at_its_best_lambda_and_is_made_from_the_whole_part(corel):
    """The learning rate that leaves WSABIE at its random start, ridge at two lambdas: the better
    of the two on the carve-out is ridge's one row, it beats WSABIE and wins, and the model
    returned is ridge at that lambda on the whole training part, not the carve-out's."""
    from awe_tf.data.protocols import validation_split
    from awe_tf.training import ridge_start
    from awe_tf.training.auto import _row_scores, ridge_name

    config = ModelConfig(dimension=16, num_negatives=5)
    picked = choose_affinity(corel.train, config, TrainConfig(epochs=1, learning_rate=1e-7, verbose=0), candidates=(),
                             vote_weights=(), svd=False, ridge_penalties=(10.0, 0.01), log=lambda line: None)
    carve = validation_split(corel.train)
    both = {penalty: np.mean(_row_scores(ridge_start(carve.train, config, penalty), carve,
                                         ("precision@1", "precision@3")), axis=0).mean() for penalty in (0.01, 10.0)}
    best = max(both, key=both.get)
    assert len(picked.trials) == 2 and picked.trials[1].both == pytest.approx(both[best])
    assert picked.trials[1].beats_wsabie
    assert (picked.affinity, picked.made, picked.epochs) == (None, ridge_name(best), [0])
    whole, on_carve = ridge_start(corel.train, config, best), ridge_start(carve.train, config, best)
    for table in ("U", "V"):
        made = getattr(picked.final.model, table).table.numpy()
        np.testing.assert_allclose(made, getattr(whole, table).table.numpy(), atol=1e-6)
        assert np.abs(made - getattr(on_carve, table).table.numpy()).max() > 1e-3


def test_an_interrupted_choice_goes_on_from_the_stages_it_finished(corel, tmp_path, monkeypatch):
    """With an output_dir, a choice interrupted in its trained candidate is taken up again: WSABIE
    and the vote are taken from auto.json (not trained or built again, their recorded seconds
    counted), the candidate trains, and the trials and the model are those of an uninterrupted
    choice. Other settings into that directory are refused."""
    from awe_tf.training import auto

    settings = {"candidates": ("linear-sigmoid:alpha=1,beta=0",), "vote_weights": (1.0,), "svd": False,
                "ridge_penalties": (), "budget": 50.0, **SMALL}
    whole = choose_affinity(corel.train, output_dir=tmp_path / "whole", log=lambda line: None, **settings)
    real = auto.choose_epochs

    def interrupted(train, config, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(auto, "choose_epochs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        choose_affinity(corel.train, output_dir=tmp_path / "cut", log=lambda line: None, **settings)
    kept = json.loads((tmp_path / "cut" / "auto.json").read_text())["stages"]
    assert list(kept) == ["WSABIE", "vote:weight=1,k=20"]
    trained, built, lines = [], [], []
    monkeypatch.setattr(auto, "choose_epochs", lambda *args, **kwargs: trained.append(args[1].affinity) or real(
        *args, **kwargs))
    real_build = auto.on_linear_model
    monkeypatch.setattr(auto, "on_linear_model", lambda train, config, *rest: built.append(config.affinity) or
                        real_build(train, config, *rest))
    again = choose_affinity(corel.train, output_dir=tmp_path / "cut", log=lines.append, **settings)
    assert trained == ["linear-sigmoid:alpha=1,beta=0"]  # only the stage the interruption cut short
    assert built == ([whole.affinity] if whole.affinity and whole.affinity.startswith("vote") else [])  # a winner's
    assert "auto: vote:weight=1,k=20: as an earlier run finished it" in " ".join(lines)
    timeless = [{**dataclasses.asdict(trial), "seconds": 0, "cpu_seconds": 0} for trial in whole.trials]
    assert [{**dataclasses.asdict(trial), "seconds": 0, "cpu_seconds": 0} for trial in again.trials] == timeless
    assert again.trials[0].cpu_seconds == kept["WSABIE"]["cpu_seconds"]  # the unit of the budget, as recorded
    np.testing.assert_array_equal(again.final.model.U.table.numpy(), whole.final.model.U.table.numpy())
    with pytest.raises(ValueError, match=r"auto.json records a choice with other data or settings \(svd: false -> "
                                         r"true\)"):
        choose_affinity(corel.train, output_dir=tmp_path / "cut", log=lambda line: None, **{**settings, "svd": True})


def test_a_choice_cut_short_in_wsabie_counts_the_epochs_its_checkpoints_kept(corel, tmp_path, monkeypatch):
    """Interrupted after WSABIE's validation stage, before its refit: the rerun resumes WSABIE and
    its CPU time, the budget's unit, includes the validation stage's, as its checkpoints recorded
    it (not only the refit this process trained). Then, at a budget the candidate does not fit,
    the decision not to run it is recorded and taken again as it was."""
    from awe_tf.training import auto, selection

    settings = {"candidates": ("linear-sigmoid:alpha=1,beta=0",), "vote_weights": (), "svd": False,
                "ridge_penalties": (), "budget": 50.0, **SMALL}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(selection, "refit", interrupted)
        with pytest.raises(KeyboardInterrupt):
            choose_affinity(corel.train, output_dir=tmp_path / "a", log=lambda line: None, **settings)
    assert not (tmp_path / "a" / "auto.json").exists()
    state = json.loads((tmp_path / "a" / "WSABIE" / "validation" / "checkpoints" / "state.json").read_text())
    assert state["cpu_seconds"] > 0
    again = choose_affinity(corel.train, output_dir=tmp_path / "a", log=lambda line: None, **settings)
    unit = json.loads((tmp_path / "a" / "auto.json").read_text())["stages"]["WSABIE"]["cpu_seconds"]
    refitted = json.loads((tmp_path / "a" / "WSABIE" / "final" / "checkpoints" / "state.json").read_text())
    assert unit == again.trials[0].cpu_seconds and unit >= state["cpu_seconds"] + refitted["cpu_seconds"]
    tight = {**settings, "budget": 1.01}  # no room for the candidate after WSABIE
    first = choose_affinity(corel.train, output_dir=tmp_path / "b", log=lambda line: None, **tight)
    assert first.trials[1].note.startswith(auto.OVER_BUDGET)
    kept = json.loads((tmp_path / "b" / "auto.json").read_text())["stages"]["linear-sigmoid:alpha=1,beta=0"]
    assert kept["trial"]["note"] == first.trials[1].note and kept["seconds"] == 0
    lines = []
    choose_affinity(corel.train, output_dir=tmp_path / "b", log=lines.append, **tight)
    assert "auto: linear-sigmoid:alpha=1,beta=0: as an earlier run decided it" in " ".join(lines)
    # A larger budget, as the table's note suggests: WSABIE is kept, the candidate it left out now runs
    lines.clear()
    larger = choose_affinity(corel.train, output_dir=tmp_path / "b", log=lines.append, **settings)
    assert "auto: WSABIE: as an earlier run finished it" in " ".join(lines) and larger.trials[1].ran
    assert "auto: linear-sigmoid:alpha=1,beta=0, from WSABIE, on the validation carve-out" in lines
    assert not larger.kept_larger and "kept from an earlier choice" not in larger.table()
    # The smaller budget: the candidate the larger one ran is kept, and said to be. The stage's record keeps
    # the budget it ran under, whatever budget the file's settings name since (a later run's, one that wrote
    # a stage of its own); a record that names none (an earlier awe-tf's) ran under the file's.
    record = tmp_path / "b" / "auto.json"
    written = json.loads(record.read_text())
    for settings_budget, stage_budget in ((50.0, 50.0), (1.01, 50.0), (50.0, None)):
        kept = json.loads(json.dumps(written))
        kept["settings"]["budget"] = settings_budget
        for stage in kept["stages"].values():
            if stage_budget is None:
                del stage["budget"]
        record.write_text(json.dumps(kept))
        lines.clear()
        smaller = choose_affinity(corel.train, output_dir=tmp_path / "b", log=lines.append, **tight)
        assert smaller.trials[1].ran and smaller.kept_larger == {"linear-sigmoid:alpha=1,beta=0": 50.0}
        assert ("auto: linear-sigmoid:alpha=1,beta=0: as an earlier run finished it" in " ".join(lines)
                and "it ran under a 50x budget)" in " ".join(lines))
        assert ("kept from an earlier choice under a larger budget (up to 50x): linear-sigmoid:alpha=1,beta=0; a "
                "choice within 1.01x from the start could have left them out") in smaller.table()
    kept["stages"]["linear-sigmoid:alpha=1,beta=0"]["budget"] = 1.01  # run under this budget: nothing to say
    record.write_text(json.dumps(kept))
    assert not choose_affinity(corel.train, output_dir=tmp_path / "b", log=lines.append, **tight).kept_larger


def test_a_vote_chosen_is_said_to_be_wsabies_model_as_it_is():
    """The vote auto chooses is built on WSABIE's model, nothing trained; its spec given back to
    --affinity would train in iterative steps, another model, and train says so; of another
    choice it says nothing."""
    from types import SimpleNamespace

    from awe_tf.cli.train import vote_note

    trials = [Trial(None, 0.5), Trial("vote:weight=3,k=20", 0.6, vote=True), Trial("knn:k=20", 0.55)]
    assert vote_note(SimpleNamespace(affinity="vote:weight=3,k=20", trials=trials)) == (
        "vote:weight=3,k=20 is built on WSABIE's model as it is, nothing trained (this run's model/); given to "
        "--affinity, it would train U and V in iterative steps, another model")
    for other in (None, "knn:k=20"):
        assert vote_note(SimpleNamespace(affinity=other, trials=trials)) is None


def test_diagnose_reads_the_steps_of_an_auto_run_that_chose_an_iterative_affinity(data_dir, tmp_path):
    """auto keeps its winner's refit and WSABIE's (its step 0) under OUTPUT/auto: diagnose reads
    k-NN P@1 in each step's U from there, step 0 to 3 (at these settings a k-NN family wins on
    Emotions' carve-out)."""
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--dataset", "emotions", "--affinity", "auto",
                           "--dimension", "8", "--epochs", "3", "--negatives", "5", "--auto-budget", "50",
                           "--no-baselines", "--verbose", "0", "-o", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    chosen = json.loads((out / "metrics.json").read_text())["affinity"]
    assert "knn:k=20" in chosen, f"this test needs an iterative winner, auto chose {chosen}"
    report = tmp_path / "diagnosis.json"
    diagnosed = subprocess.run([sys.executable, "-m", "awe_tf.cli", "diagnose", str(out), "--output", str(report)],
                               capture_output=True, text=True, env=ENV, timeout=600)
    assert diagnosed.returncode == 0, diagnosed.stderr[-2000:]
    found = json.loads(report.read_text())
    assert found["knn_steps"] == [0, 1, 2, 3] and "knn_steps_note" not in found
    assert all(0 < p <= 1 for p in found["step_knn_precision"])
