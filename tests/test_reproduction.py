"""`awe-tf reproduce`: the paper's tables on real data, in a small "smoke" setting."""

import csv
import dataclasses
import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "reproduce", *args], capture_output=True, text=True,
                          env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_annotation_table(tmp_path, data_dir):
    run("annotation", "--datasets", "corel5k", "emotions", "--epochs", "2", "--dimension", "16", "--iterations", "1",
        "--init-scale", "1", "-o", str(tmp_path))
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["dataset"], r["method"]) for r in rows[:4]] == [
        ("corel5k", "k-NN"), ("corel5k", "k-NN (WSABIE space)"), ("corel5k", "WSABIE"), ("corel5k", "AWE k-NN (k=20)")]
    assert len(rows) == 8 and all(0 < float(r["precision@1"]) <= 1 for r in rows)
    # k-NN in input space is the baseline the paper's own table has: Corel5k P@1 near 0.40
    knn = next(r for r in rows if r["dataset"] == "corel5k" and r["method"] == "k-NN")
    assert 0.35 < float(knn["precision@1"]) < 0.45
    table = (tmp_path / "results.md").read_text()
    assert "| emotions | AWE k-NN (k=20) |" in table
    mine = {(r["dataset"], r["method"].split(" (k=")[0]): float(r["precision@1"]) for r in rows}  # AWE k-NN's change
    change = 100 * (mine["emotions", "AWE k-NN"] / mine["emotions", "WSABIE"] - 1)  # beside the paper's Table 1's
    assert "the paper's Table 1 (MagnaTagATune) +8.2% / +4.5%; here corel5k " in table
    assert f", emotions {change:+.1f}% / " in table
    assert "d = 16, at most 2 epochs, AWE k-NN in 1 iterative step, seed 0, engine graph, initial scale 1 (every " \
           "setting: settings.json)" in table
    assert (tmp_path / "annotation_precision_at_1.png").stat().st_size > 5000
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["seeds"] == [0] and settings["dimension"] == 16 and settings["seconds"] > 0
    assert settings["init_scale"] == 1.0 and settings["kept"] == []
    # run again: every data set is taken from kept/, and settings.json says which
    run("annotation", "--datasets", "corel5k", "emotions", "--epochs", "2", "--dimension", "16", "--iterations", "1",
        "--init-scale", "1", "-o", str(tmp_path))
    assert json.loads((tmp_path / "settings.json").read_text())["kept"] == ["seed-0-corel5k", "seed-0-emotions"]


def test_recommendation_table_reports_changes_against_wsabie(tmp_path, data_dir):
    proc = run("recommendation", "--epochs", "1", "--dimension", "16", "--betas", "0", "0.5", "--ks", "5", "5",
               "--rests", "0", "learn", "0.0", "-o", str(tmp_path))  # repeats run once
    with open(tmp_path / "results.csv") as f:
        rows = {(r["method"], r["setting"]): r for r in csv.DictReader(f)}
    assert set(rows) == {("SVD", ""), ("WSABIE", ""), ("AWE linear sigmoid", "beta=0"),
                         ("AWE linear sigmoid", "beta=0.5"), ("AWE top-k", "k=5"), ("AWE top-k, rest learnt", "k=5")}
    assert len(rows) == 6 and "AWE top-k, rest learnt k=5: done in" in proc.stdout
    learnt = {key: row["rest learnt"] for key, row in rows.items()}  # the learnt rest is kept, in [0, 1]
    assert 0.0 <= float(learnt.pop(("AWE top-k, rest learnt", "k=5"))) <= 1.0 and set(learnt.values()) == {""}
    wsabie = rows[("WSABIE", "")]
    assert float(wsabie["change@1"]) == 0.0
    for row in rows.values():
        want = 100 * (float(row["precision@10"]) / float(wsabie["precision@10"]) - 1)
        assert abs(float(row["change@10"]) - want) < 1e-6
    table = (tmp_path / "results.md").read_text()
    assert "| AWE top-k | k=5 |" in table and "| change@10 | paper @1 | paper @10 | rest learnt |" in table
    assert "| beta=0.5 |" in table and table.split("| beta=0.5 |")[1].split("\n")[0].endswith("| +28% | +20% |  |")
    assert table.split("| AWE top-k | k=5 |")[1].split("\n")[0].endswith("| +18% | +17% |  |")  # the paper's Table 3
    assert (tmp_path / "recommendation_beta.png").exists() and (tmp_path / "recommendation_k.png").exists()
    assert json.loads((tmp_path / "settings.json").read_text())["top_k_rests"] == [0.0, "learn"]


@pytest.mark.parametrize("rest", ["1.5", "-0.2", "half"])
def test_reproduce_refuses_a_top_k_rest_outside_0_and_1(rest, capsys):
    from awe_tf.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "recommendation", "--rests", rest])
    error = capsys.readouterr().err
    assert "nor 'learn'" in error or "is not a number" in error


def test_means_over_seeds_keep_the_order_and_recompute_the_changes():
    from awe_tf.reproduction import mean_rows

    per_seed = [{"seed": s, "method": m, "setting": "", "precision@1": p1, "precision@10": p10}
                for s, rows in ((0, [("WSABIE", 0.30, 0.14), ("SVD", 0.27, 0.13)]),
                                (1, [("WSABIE", 0.34, 0.16), ("SVD", 0.25, 0.11)]))
                for m, p1, p10 in rows]
    wsabie, svd = mean_rows("recommendation", per_seed)
    assert (wsabie["method"], svd["method"]) == ("WSABIE", "SVD")
    assert wsabie["precision@1"] == pytest.approx(0.32) and svd["precision@10"] == pytest.approx(0.12)
    assert wsabie["precision@1_std"] == pytest.approx(0.04 / 2 ** 0.5)
    assert svd["change@1"] == pytest.approx(100 * (0.26 / 0.32 - 1)) and wsabie["change@10"] == 0.0


def test_annotation_over_two_seeds_reports_means_and_each_seed(tmp_path, data_dir):
    proc = run("annotation", "--datasets", "emotions", "--epochs", "1", "--dimension", "8", "--iterations", "1",
        "--seeds", "0", "1", "--engine", "native", "--threads", "1", "-o", str(tmp_path))
    with open(tmp_path / "results_per_seed.csv") as f:
        per_seed = list(csv.DictReader(f))
    with open(tmp_path / "results.csv") as f:
        means = {r["method"]: r for r in csv.DictReader(f)}
    assert sorted({r["seed"] for r in per_seed}) == ["0", "1"] and len(per_seed) == 2 * len(means)
    for method, row in means.items():
        values = [float(r["precision@1"]) for r in per_seed if r["method"] == method]
        assert float(row["precision@1"]) == pytest.approx(sum(values) / 2)
        assert float(row["precision@1_std"]) == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert " ± " in (tmp_path / "results.md").read_text()
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["seeds"] == [0, 1] and settings["engine"] == "native" and settings["threads"] == 1
    assert "retracing" not in proc.stderr + proc.stdout  # TensorFlow's warnings stay out of the output


def test_reproduce_trains_the_linear_models_with_the_native_engine(monkeypatch, data_dir):
    """``--engine native``: WSABIE, linear sigmoid and every step of AWE k-NN train natively, top-k
    (which the native engine refuses) with the graph step."""
    from awe_tf import reproduction
    from awe_tf.native import NativeWarp

    native, scales = [], set()
    real = NativeWarp.__init__

    def spy(self, model, *args, **kwargs):
        native.append(model.affinity.name)
        scales.add(model.init_scale)
        real(self, model, *args, **kwargs)

    monkeypatch.setattr(NativeWarp, "__init__", spy)
    rows = reproduction.annotation(["emotions"], dimension=8, epochs=2, iterations=1, engine="native", threads=1,
                                   init_scale=0.5, log=lambda line: None)
    assert scales == {0.5}  # the initial scale reaches every model
    assert len(rows) == 4 and all(0 < r["precision@1"] <= 1 for r in rows)
    # WSABIE, AWE's step 0 and its step with G, each on the validation carve-out and in the refit
    assert len(native) == 6 and sum(name.startswith("knn") for name in native) == 2, native
    native.clear()
    rows = reproduction.recommendation(dimension=8, epochs=1, betas=(0.0,), top_ks=(5,), top_k_rests=(0.0, "learn"),
                                       engine="native", threads=1, log=lambda line: None)
    assert [r["method"] for r in rows][:4] == ["SVD", "WSABIE", "AWE linear sigmoid", "AWE top-k"] and len(rows) == 5
    # WSABIE, linear sigmoid and top-k as eq. 7, each stage; not top-k with its rest learnt
    assert len(native) == 6 and sum(name.startswith("top") for name in native) == 2, native


@pytest.mark.parametrize("args, said", [
    (["annotation", "--datasets", "corel5k", "nosuch"], "unknown data set 'nosuch'"),
    (["annotation", "--datasets", "ml-100k"], "ml-100k is a recommendation data set"),
    (["annotation", "--betas", "0", "--from-scratch"], "--betas, --from-scratch are not for the annotation table"),
    (["recommendation", "--datasets", "scene"], "--datasets is not for the recommendation table"),
    (["recommendation", "--betas", "nan"], "must be a finite number"),
])
def test_reproduce_refuses_what_it_cannot_run_before_any_work(args, said, tmp_path, data_dir):
    """Found before any model trains (a bad name or beta stopped the run after the data sets
    before it had trained, throwing their results away); the other table's flags are refused,
    not ignored."""
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "reproduce", *args, "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "done in" not in proc.stdout and not (tmp_path / "out").exists()


def test_finished_units_are_kept_and_taken_up_again(tmp_path, monkeypatch, data_dir):
    """Each data set of a seed is kept as it finishes: a run stopped in the second loses none of
    the first, and a run with other settings does not take it."""
    from awe_tf import reproduction

    settings = {"datasets": ["corel5k", "emotions"], "dimension": 4, "epochs": 1, "iterations": 1, "k": 5}
    real = reproduction.annotation

    def stopped_at_emotions(datasets, **options):
        if datasets == ["emotions"]:
            raise KeyboardInterrupt  # Ctrl-C in the second data set
        return real(datasets, **options)

    monkeypatch.setattr(reproduction, "annotation", stopped_at_emotions)
    with pytest.raises(KeyboardInterrupt):
        reproduction.over_seeds("annotation", [0], log=lambda line: None, keep=tmp_path, **settings)
    assert [p.name.split("-")[2] for p in tmp_path.glob("seed-0-*.json")] == ["corel5k"]
    monkeypatch.setattr(reproduction, "annotation", real)
    lines = []
    rows, _, kept = reproduction.over_seeds("annotation", [0], log=lines.append, keep=tmp_path, **settings)
    assert kept == ["seed-0-corel5k"]
    assert any(line.startswith("seed-0-corel5k: kept from an earlier run") for line in lines)
    assert not any(line.startswith("seed-0-emotions: kept") for line in lines)
    assert {r["dataset"] for r in rows} == {"corel5k", "emotions"}
    lines.clear()
    _, _, kept = reproduction.over_seeds("annotation", [0], log=lines.append, keep=tmp_path,
                                         **{**settings, "dimension": 5})
    assert kept == [] and not any("kept" in line for line in lines)
    assert len(list(tmp_path.glob("seed-0-corel5k-*.json"))) == 2
    from awe_tf import config  # training defaults changed since: the units are not the same
    defaults = config.TrainConfig
    monkeypatch.setattr(config, "TrainConfig", lambda: dataclasses.replace(defaults(), min_steps_per_epoch=7))
    _, _, kept = reproduction.over_seeds("annotation", [0], log=lines.append, keep=tmp_path, **settings)
    assert kept == []
    # a default of how steps run, not of what they compute: the units of the same settings are the same
    monkeypatch.setattr(config, "TrainConfig", lambda: dataclasses.replace(defaults(), steps_per_execution=3))
    _, _, kept = reproduction.over_seeds("annotation", [0], log=lines.append, keep=tmp_path, **settings)
    assert kept == ["seed-0-corel5k", "seed-0-emotions"]


def test_a_report_states_the_settings_it_was_given():
    """results.md's line of settings holds those a caller gave (a notebook gives fewer than the CLI)."""
    from awe_tf.reproduction import _settings_line

    assert _settings_line({"dimension": 8, "seeds": [0, 1]}) == "d = 8, seeds 0, 1 (every setting: settings.json)"
    assert _settings_line({"dimension": 16, "epochs": 2, "seeds": [0], "engine": "graph", "init_scale": 1.0}) == \
        "d = 16, at most 2 epochs, seed 0, engine graph, initial scale 1 (every setting: settings.json)"
    assert _settings_line({"dimension": 16, "epochs": 1, "iterations": 1, "seeds": [2]}) == \
        "d = 16, at most 1 epoch, AWE k-NN in 1 iterative step, seed 2 (every setting: settings.json)"


def test_a_sweep_not_run_leaves_no_plot_of_an_earlier_run(tmp_path):
    """The beta sweep alone (no top-k run) writes its plot and removes the k plot an earlier run
    left in the folder, which would be shown beside this run's table as if it were this run's."""
    from awe_tf import reproduction

    (tmp_path / "recommendation_k.png").write_bytes(b"an earlier run's plot")
    rows = [{"method": "WSABIE", "setting": "", "precision@1": 0.3, "precision@10": 0.15, "change@1": 0.0,
             "change@10": 0.0}]
    rows += [{"method": "AWE linear sigmoid", "setting": f"beta={beta}", "precision@1": 0.3, "precision@10": 0.15,
              "change@1": change, "change@10": change} for beta, change in ((0, 1.0), (0.5, -1.0))]
    reproduction.write_report("recommendation", rows, tmp_path, {"seeds": [0]})
    assert (tmp_path / "recommendation_beta.png").exists() and not (tmp_path / "recommendation_k.png").exists()
