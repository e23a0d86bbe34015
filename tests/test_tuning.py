"""KerasTuner searches: spaces as data, trials trained through run_trial on the validation carve-out,
three oracles, resuming, and the best trial as `awe-tf train` flags."""

import json
import os
import shlex
from pathlib import Path

import numpy as np
import pytest

from awe_tf import tuning
from awe_tf.affinities import REGISTRY, parse
from awe_tf.cli import build_parser
from awe_tf.data import load_dataset
from awe_tf.training import ModelConfig, TrainConfig, selection

SMALL = {"model_config": ModelConfig(num_negatives=10), "train_config": TrainConfig(epochs=1, patience=0)}
SPACE = {"learning_rate": ("float", 0.02, 0.2, "log"), "dimension": ("choice", [16, 32])}


def space_but_negatives(affinity: str) -> dict:
    """The affinity's default search space without the negatives, which SMALL holds fixed."""
    return {key: value for key, value in tuning.space(affinity).items() if key != "num_negatives"}


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")


@pytest.fixture
def fits(monkeypatch):
    """Every training run a trial starts (the real fit, recorded)."""
    calls = []
    real = selection.fit

    def recording(train, model_config, train_config, validation=None, **kwargs):
        calls.append({"n_train": train.n_examples, "validation": validation.test.n_examples,
                      "epochs": train_config.epochs, "affinity": model_config.affinity,
                      "dimension": model_config.dimension, "engine": train_config.engine,
                      "input_bias": model_config.input_bias, "min_steps_per_epoch": train_config.min_steps_per_epoch})
        return real(train, model_config, train_config, validation=validation, **kwargs)

    monkeypatch.setattr(selection, "fit", recording)
    return calls


def test_spaces_are_data_and_best_values_become_train_flags():
    found = tuning.space("linear-sigmoid")
    assert {"learning_rate", "margin", "dimension", "num_negatives", "affinity.alpha", "affinity.beta"} <= set(found)
    assert set(tuning.space("topk", include_common=False)) == {"affinity.k"}
    with pytest.raises(ValueError, match="no search space for affinity 'nosuch'"):
        tuning.space("nosuch")
    # the Bayesian oracle proposes NumPy numbers: flags as plain ones
    values = {"learning_rate": 0.0512345678, "dimension": np.int64(32), "margin": np.float64(1.1576410575707972),
              "affinity.alpha": np.float64(1.5), "affinity.beta": -0.25}
    flags = tuning.train_flags("linear-sigmoid", values)
    args = build_parser().parse_args(["train", *flags])
    assert args.learning_rate == 0.0512345678 and args.dimension == 32  # every digit: the trial's own rate
    assert args.margin == 1.1576410575707972 and "np." not in " ".join(flags)
    affinity = parse(args.affinity)
    assert affinity.alpha == 1.5 and affinity.beta == -0.25
    assert tuning.affinity_spec("constant", {"dimension": 16}) is None
    hp = tuning.hyperparameters(found)
    assert hp.get("affinity.beta") >= -1.0 and "affinity.alpha" in hp.values


def test_random_search_trains_on_validation_and_resumes(tmp_path, corel, fits):
    tuner = tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=2,
                              search_space={**SPACE, "affinity.k": ("int", 1, 5)}, **SMALL)
    tuner.search()
    assert len(fits) == 2
    carve_train = tuner.validation.train.n_examples
    assert all(c["n_train"] == carve_train < corel.train.n_examples for c in fits)  # never the whole training part
    assert all(c["affinity"].startswith("topk:k=") for c in fits)
    best = tuner.best()
    scores = [t.score for t in tuner.oracle.trials.values()]
    assert best["score"] == max(scores) and 0 < best["score"] <= 1 and best["objective"] == "val_precision@1"
    model_config, train_config = tuner.best_configs()  # what trains it again in Python
    assert model_config.dimension == best["values"]["dimension"] and model_config.affinity == best["affinity"]
    assert train_config.learning_rate == best["values"]["learning_rate"]
    assert train_config.verbose == TrainConfig().verbose  # the trials' 0 is theirs alone
    saved = json.loads((tmp_path / "corel5k-topk-random" / "best.json").read_text())
    assert saved["flags"] == best["flags"] and "--affinity" in saved["flags"]
    # what every trial was trained with besides the searched settings (SMALL's), where train's defaults differ
    assert best["flags"][-6:] == ["--negatives", "10", "--epochs", "1", "--patience", "0"]
    assert best["command"] is None and best["not_in_command"] == []
    named = tuner.best(data_flags=["--dataset", "corel5k"])["command"]
    assert named.startswith("awe-tf train --dataset corel5k --learning-rate ")
    # it trains into a folder of the search's own, not train's default runs/latest, where another would collide
    best_trial = tuner.oracle.get_best_trials(1)[0]
    assert shlex.split(named)[-4:] == ["--patience", "0", "--output",
                                       str(tmp_path / "corel5k-topk-random" / f"best-{best_trial.trial_id}")]
    assert tuner.best()["command"] == named  # best() again without the data's flags keeps the recorded command
    quoted = tuner.best(data_flags=["--train", "my clicks.csv"])["command"]
    assert shlex.split(quoted)[2:4] == ["--train", "my clicks.csv"]  # a shell reads the file's name whole
    with pytest.raises(NotImplementedError, match="keeps no trained models"):
        tuner.get_best_models(1)  # KerasTuner's models would be Keras 3 ones: said, not an AttributeError
    # The same search with a larger budget runs only the missing trial.
    again = tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=3,
                              search_space={**SPACE, "affinity.k": ("int", 1, 5)}, **SMALL)
    again.search()
    assert len(fits) == 3 and len(again.oracle.trials) == 3
    # Other settings are refused, before any trial: trials trained otherwise would be ranked with these.
    longer = {**SMALL, "train_config": TrainConfig(epochs=2, patience=0)}
    with pytest.raises(ValueError, match=r"other data or settings \(train.epochs: 1 -> 2\).*--output"):
        tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=4,
                          search_space={**SPACE, "affinity.k": ("int", 1, 5)}, **longer)
    with pytest.raises(ValueError, match="space.affinity.k"):
        tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=4,
                          search_space={**SPACE, "affinity.k": ("int", 1, 7)}, **SMALL)
    smaller = {**SMALL, "train_config": TrainConfig(epochs=1, patience=0, min_steps_per_epoch=4)}
    with pytest.raises(ValueError, match=r"train.min_steps_per_epoch: 32 -> 4"):  # it learns other U and V
        tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=4,
                          search_space={**SPACE, "affinity.k": ("int", 1, 5)}, **smaller)
    recorded = tmp_path / "corel5k-topk-random" / "search.json"
    older = json.loads(recorded.read_text())
    del older["train"]["engine"]  # as written when the engine was free to change: resumed as it is asked for
    recorded.write_text(json.dumps(older))
    tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=3,
                      search_space={**SPACE, "affinity.k": ("int", 1, 5)}, **SMALL)
    (tmp_path / "corel5k-topk-random" / "search.json").unlink()  # trials, but what they were trained with unknown
    with pytest.raises(ValueError, match="holds trials but no search.json"):
        tuning.make_tuner("random", corel.train, "topk", directory=tmp_path, max_trials=4,
                          search_space={**SPACE, "affinity.k": ("int", 1, 5)}, **SMALL)
    assert len(fits) == 3


def test_a_search_interrupted_mid_trial_goes_on_from_the_trials_last_epoch(tmp_path, corel, monkeypatch, capsys):
    import tensorflow as tf

    settings = {"model_config": ModelConfig(num_negatives=5, dimension=8),
                "train_config": TrainConfig(epochs=4, patience=0)}
    whole = tuning.make_tuner("random", corel.train, "constant", directory=tmp_path / "whole", max_trials=1,
                              search_space={"learning_rate": ("float", 0.02, 0.2, "log")}, **settings)
    whole.search()
    expected = [t.score for t in whole.oracle.trials.values()]
    assert not any((tmp_path / "whole").glob("**/training"))  # a finished trial's checkpoints are removed

    class Interrupt(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:  # after two finished epochs, each checkpointed
                raise KeyboardInterrupt

    real, calls = selection.fit, []

    def interrupted_once(*args, callbacks=(), **kwargs):
        calls.append(kwargs.get("output_dir"))
        return real(*args, callbacks=[*callbacks, *([Interrupt()] if len(calls) == 1 else [])], **kwargs)

    monkeypatch.setattr(selection, "fit", interrupted_once)
    cut = dict(directory=tmp_path / "cut", max_trials=1, search_space={"learning_rate": ("float", 0.02, 0.2, "log")},
               **settings)
    with pytest.raises(KeyboardInterrupt):
        tuning.make_tuner("random", corel.train, "constant", **cut).search()
    left = list((tmp_path / "cut").glob("*/trial_*/training/checkpoints/state.json"))
    assert len(left) == 1 and json.loads(left[0].read_text())["epoch"] == 2
    capsys.readouterr()
    again = tuning.make_tuner("random", corel.train, "constant", **cut)
    again.search()
    assert "going on from the checkpoints it left" in capsys.readouterr().out
    assert [t.score for t in again.oracle.trials.values()] == expected  # as the uninterrupted search scored it
    assert len(again.oracle.trials) == 1 and not left[0].exists() and calls[0] == calls[1]  # the same trial's


def test_cli_tune_killed_in_its_last_trial_says_the_trial_goes_on_and_finishes_it(tmp_path, data_dir):
    import subprocess
    import sys

    from tests.test_cli import _kill_when

    emotions = data_dir / "mulan" / "emotions"
    command = [sys.executable, "-m", "awe_tf.cli", "tune", "--train", str(emotions / "emotions-train.arff"), "--test",
               str(emotions / "emotions-test.arff"), "--labels", str(emotions / "emotions.xml"), "--affinity",
               "linear-sigmoid", "--trials", "2", "--epochs", "30", "--patience", "0", "--min-steps-per-epoch", "64",
               "-o", str(tmp_path)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    search = tmp_path / tuning.search_name(load_dataset("emotions").train, "linear-sigmoid", "random")
    _kill_when(proc, search / "trial_1" / "training" / "checkpoints" / "state.json", 1)  # in the second trial
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "the search has 2 trials already (1 finished), --trials 2: none to add; 1 trial cut short goes on (a " \
        "larger --trials adds trials)" in again.stdout
    assert "going on from the checkpoints it left" in again.stdout and "best validation precision@1" in again.stdout


@pytest.mark.parametrize("oracle", tuning.ORACLES)
def test_the_same_seed_proposes_the_same_trials(tmp_path, corel, oracle):
    """KerasTuner draws a random seed for a seed of 0, the CLI's default: every seed must repeat."""
    def first_trials(seed, folder):
        tuner = tuning.make_tuner(oracle, corel.train, "linear-sigmoid", directory=tmp_path / folder, max_trials=3,
                                  seed=seed, search_space=space_but_negatives("linear-sigmoid"), **SMALL)
        return [tuner.oracle.create_trial(f"tuner{i}").hyperparameters.values for i in range(2)]

    assert first_trials(0, "a") == first_trials(0, "b")
    assert first_trials(3, "c") == first_trials(3, "d") != first_trials(0, "e")
    # Seeds a few apart share no trial: KerasTuner moves its seed on by one per value drawn, so oracle seeds
    # must lie further apart than a search draws values (here, seeds up to the number of settings searched)
    searched = len(space_but_negatives("linear-sigmoid"))
    drawn = {seed: [trial for trial in first_trials(seed, f"s{seed}") if trial]  # hyperband's second waits: empty
             for seed in range(searched + 2)}
    for seed, trials in drawn.items():
        others = [trial for other, each in drawn.items() if other != seed for trial in each]
        assert not any(trial in others for trial in trials), (seed, trials)
    assert min(tuning.oracle_seed(seed + 1) - tuning.oracle_seed(seed) for seed in range(1000)) > 10**6
    assert tuning.oracle_seed(2**40) < 2**32  # NumPy's seeds (the Bayesian oracle's) are below 2^32
    tuning.make_tuner(oracle, corel.train, "constant", directory=tmp_path / "big", max_trials=1, seed=10**6,
                      search_space=SPACE, **SMALL)  # a large seed: the oracle is made


def test_hyperband_sets_each_trials_epochs(tmp_path, corel, fits):
    tuner = tuning.make_tuner("hyperband", corel.train, "constant", directory=tmp_path, max_epochs=3,
                              search_space=SPACE, **SMALL)
    tuner.search()
    epochs = {c["epochs"] for c in fits}
    assert len(fits) >= 3 and epochs <= {1, 2, 3} and len(epochs) > 1, fits
    for trial in tuner.oracle.trials.values():
        assert "tuner/epochs" in trial.hyperparameters.values


def test_max_epochs_bounds_every_oracles_trials_and_seed_seeds_them(tmp_path, corel, fits):
    tuner = tuning.make_tuner("random", corel.train, "constant", directory=tmp_path, max_trials=1, max_epochs=2,
                              seed=5, search_space=SPACE)
    assert tuner.base_model.seed == tuner.base_train.seed == 5  # no configs given: the trials' seed too
    tuner.search()
    assert [c["epochs"] for c in fits] == [2]
    assert tuner.best()["flags"][-4:] == ["--epochs", "2", "--seed", "5"]
    # a setting no flag of awe-tf train gives: no command, and which one is said
    unsayable = tuning.make_tuner("random", corel.train, "constant", directory=tmp_path / "u", max_trials=1,
                                  search_space=SPACE, train_config=TrainConfig(epochs=1, bucketing=False))
    unsayable.search()
    said = unsayable.best(data_flags=[])
    assert said["command"] is None and said["not_in_command"] == ["bucketing=False"]
    restarted = tuning.make_tuner("random", corel.train, "constant", directory=tmp_path / "u", max_trials=1,
                                  search_space=SPACE, overwrite=True, train_config=TrainConfig(epochs=2))
    assert not restarted.oracle.trials  # overwrite: KerasTuner starts afresh, with other settings too
    for wrong in ({"max_trials": 0}, {"max_trials": -3}, {"max_epochs": 0}, {"max_trials": 2.5}):
        with pytest.raises(ValueError, match=f"{next(iter(wrong))} must be a whole number of at least 1"):
            tuning.make_tuner("random", corel.train, directory=tmp_path / "x", **wrong)
    assert not (tmp_path / "x").exists()


def test_a_space_searches_config_fields_by_name_and_nothing_else(tmp_path, corel):
    tuner = tuning.make_tuner("random", corel.train, directory=tmp_path, search_space={
        "optimizer": ("choice", ["sgd"]), "max_norm": ("float", 1.0, 2.0)})
    model_config, train_config = tuner.settings({"optimizer": "sgd", "max_norm": 1.5})
    assert train_config.optimizer == "sgd" and model_config.max_norm == 1.5  # what the command will say, trained
    with pytest.raises(ValueError, match="the search space names 'lr'"):
        tuning.make_tuner("random", corel.train, directory=tmp_path / "x", search_space={"lr": ("float", 0.1, 1.0)})
    # values no trial can take are refused before the search
    for search_space, said in (({"dimension": ("float", 8, 16)}, "dimension must be a whole number"),
                               ({"margin": ("float", 0.0, 1.0)}, "margin must be a finite number above 0"),
                               ({"affinity.nosuch": ("int", 1, 2)}, "has no setting nosuch")):
        with pytest.raises(ValueError, match=said):
            tuning.make_tuner("random", corel.train, directory=tmp_path / "z", search_space=search_space)
    assert not (tmp_path / "z").exists()
    for family in REGISTRY:  # every registered space passes its own check
        tuning.make_tuner("random", corel.train, family, directory=tmp_path / "spaces", project_name=family)


def test_a_search_needs_a_carve_out_to_score_on_and_an_affinity_family(tmp_path):
    import scipy.sparse as sp

    from awe_tf.data import Dataset

    # a training part of 4 items a user: the carve-out holds 5 out, so no user has any to score
    few = sp.csr_matrix(([1.0] * 4 * 30, ([u for u in range(30) for _ in range(4)],
                                          [(u + i) % 20 for u in range(30) for i in range(4)])), shape=(30, 20))
    small = Dataset(X=few, Y=few.copy(), feature_names=[str(i) for i in range(20)],
                    label_names=[str(i) for i in range(20)], task="recommendation", name="small")
    with pytest.raises(ValueError, match="validation carve-out has no example .* --no-validate"):
        tuning.make_tuner("random", small, directory=tmp_path, max_trials=1)  # refused, not a NaN best
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"knn has no setting gamma \(it takes k, prior, search\)"):
        tuning.space("knn:gamma=5")  # settings held fixed must be the family's
    with pytest.raises(ValueError, match=r"the sum 'constant:1\+knn': a search tunes one family"):
        tuning.space("constant:1+knn")
    with pytest.raises(ValueError, match="not model_config's 'knn:k=5'"):  # the family searched is the tuner's
        tuning.make_tuner("random", small, "linear-sigmoid", directory=tmp_path / "y",
                          model_config=ModelConfig(affinity="knn:k=5"))


def test_a_spec_holds_its_settings_fixed_in_every_trial_and_searches_the_rest(tmp_path, corel, fits):
    """`awe-tf tune --affinity linear-sigmoid:alpha=1.5`: alpha is every trial's and the best
    command's, beta and the usual knobs are searched; a search resumed with other fixed settings
    is refused."""
    assert "affinity.alpha" not in tuning.space("linear-sigmoid:alpha=1.5") \
        and "affinity.beta" in tuning.space("linear-sigmoid:alpha=1.5")
    with pytest.raises(ValueError, match="bad settings for 'topk'"):
        tuning.space("topk:k=0")  # a value the family refuses, before any trial
    with pytest.raises(ValueError, match=r"searches 'affinity.alpha', which affinity='linear-sigmoid:alpha=1.5' holds "
                                         "fixed"):  # the searched value would win over the given one
        tuning.make_tuner("random", corel.train, "linear-sigmoid:alpha=1.5", directory=tmp_path / "both",
                          search_space={"affinity.alpha": ("float", 1.0, 2.0)}, **SMALL)
    assert tuning.affinity_spec("linear-sigmoid:alpha=1e+20", {}) == "linear-sigmoid:alpha=1e20"  # no '+' in a term
    tuner = tuning.make_tuner("random", corel.train, "linear-sigmoid:alpha=1.5", directory=tmp_path, max_trials=1,
                              search_space=space_but_negatives("linear-sigmoid:alpha=1.5"), **SMALL)
    assert Path(tuner.project_dir).name == "corel5k-linear-sigmoid_alpha=1.5-random"
    tuner.search()
    assert fits and all(parse(call["affinity"]).alpha == 1.5 for call in fits)
    best = tuner.best(data_flags=[])
    spec = best["flags"][best["flags"].index("--affinity") + 1]
    assert parse(spec).alpha == 1.5 and "beta=" in spec
    with pytest.raises(ValueError, match="holds a search"):
        tuning.make_tuner("random", corel.train, "linear-sigmoid:alpha=2", directory=tmp_path, max_trials=1,
                          project_name=Path(tuner.project_dir).name,
                          search_space=space_but_negatives("linear-sigmoid:alpha=2"), **SMALL)
    # a fixed setting the space searches is refused: no trial would train with it
    with pytest.raises(ValueError, match=r"model_config.num_negatives=10: the search space searches it, so no trial "
                                         r"would train with that value"):
        tuning.make_tuner("random", corel.train, "linear-sigmoid", directory=tmp_path / "held", **SMALL)


def test_the_best_command_trains_every_searched_setting_or_there_is_none(tmp_path, corel):
    """A searched seed is train's --seed; a searched setting no flag gives (bucketing) leaves the
    best trial without a command, named in not_in_command: the command trains what the trial
    trained, or there is none."""
    config = {"model_config": ModelConfig(dimension=4, num_negatives=3), "train_config": TrainConfig(epochs=1)}
    seeded = tuning.make_tuner("random", corel.train, directory=tmp_path / "a", max_trials=1, seed=5,
                               search_space={"seed": ("int", 3, 3), "input_bias": ("choice", [True])}, **config)
    seeded.search()
    best = seeded.best(data_flags=[])
    assert best["values"]["seed"] == 3 and best["not_in_command"] == []  # the bias on is train's default
    assert shlex.split(best["command"]).count("--seed") == 1 and "--seed 3" in best["command"]
    unflagged = tuning.make_tuner("random", corel.train, directory=tmp_path / "b", max_trials=1,
                                  search_space={"bucketing": ("choice", [False])}, **config)
    unflagged.search()
    best = unflagged.best(data_flags=[])
    assert best["command"] is None and [m.split("=")[0] for m in best["not_in_command"]] == ["bucketing"]


def test_cli_tune_refuses_iterations_it_would_drop_and_notes_hyperbands_trials(tmp_path, capsys):
    from awe_tf import cli

    code = cli.main(["tune", "--affinity", "linear-sigmoid", "--iterations", "3", "-o", str(tmp_path / "s")])
    assert code == 2 and "--iterations is for affinities built from the training set" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    code = cli.main(["tune", "--oracle", "hyperband", "--trials", "3", "--monitor", "precision@999", "-o",
                     str(tmp_path / "h")])  # stops before the search, after the note
    assert code == 2 and "note: hyperband sets its own number of trials" in capsys.readouterr().out


def test_a_bayesian_search_resumed_proposes_what_it_would_have_run_through(tmp_path, corel):
    """The trials a Bayesian search proposes from its Gaussian process depend on the seed and the
    trials so far, not on whether the process that proposes them made the earlier ones: a search
    resumed from its directory proposes what the same search run through would."""
    import shutil

    def tuner(folder):
        return tuning.make_tuner("bayesian", corel.train, "constant", directory=tmp_path / folder, max_trials=8,
                                 num_initial_points=2, seed=3, search_space=SPACE, **SMALL)

    through = tuner("a")
    for score in (0.2, 0.3, 0.25, 0.28):  # two random trials, then two of the Gaussian process
        trial = through.oracle.create_trial("tuner0")
        through.oracle.update_trial(trial.trial_id, {"val_precision@1": score})
        trial.status = "COMPLETED"
        through.oracle.end_trial(trial)
    through.save()  # as a search saves itself after each trial
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the search's directory, as an interruption leaves it
    resumed = tuner("b")
    assert resumed.oracle.trials.keys() == through.oracle.trials.keys()
    proposed = [t.oracle.create_trial("tuner0").hyperparameters.values for t in (through, resumed)]
    assert proposed[0] == proposed[1] and proposed[0]


def test_bayesian_optimisation_runs(tmp_path, corel, fits):
    tuner = tuning.make_tuner("bayesian", corel.train, "constant", directory=tmp_path, max_trials=2,
                              search_space=SPACE, **SMALL)
    tuner.search()
    assert len(fits) == 2 and 0 < tuner.best()["score"] <= 1
    with pytest.raises(ValueError, match="oracle must be one of"):
        tuning.make_tuner("grid", corel.train)


def test_a_bayesian_search_is_guided_for_half_its_trials(tmp_path, corel):
    """KerasTuner draws 3 random trials per searched setting before its Gaussian process proposes
    any (18 over linear-sigmoid's 6): a search of 10 trials would be random throughout. make_tuner
    draws at most half its trials at random, and no more than KerasTuner would."""
    assert len(tuning.space("linear-sigmoid")) == 6
    for trials, random in ((10, 5), (20, 10), (3, 2), (100, 18)):
        tuner = tuning.make_tuner("bayesian", corel.train, "linear-sigmoid", directory=tmp_path,
                                  project_name=f"t{trials}", max_trials=trials)
        assert tuner.oracle.num_initial_points == random, trials
    given = tuning.make_tuner("bayesian", corel.train, "linear-sigmoid", directory=tmp_path, project_name="given",
                              max_trials=10, num_initial_points=7)
    assert given.oracle.num_initial_points == 7


def test_cli_tune_prints_a_train_command_that_runs(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "tune", "--affinity", "linear-sigmoid", "--trials", "2",
                           "--epochs", "1", "-o", str(tmp_path / "search")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best validation precision@1" in proc.stdout and "Trial 2 Complete" in proc.stdout
    best = json.loads(next((tmp_path / "search").rglob("best.json")).read_text())
    assert f"by trial {best['trial_id']} (" in proc.stdout
    assert any((tmp_path / "search").rglob(f"trial_{best['trial_id']}"))
    assert "\x1b" not in proc.stdout  # no terminal codes in output that goes to a file or a pipe
    command = proc.stdout.strip().splitlines()[-1].split()
    assert command[:2] == ["awe-tf", "train"] and "--affinity" in command
    train = subprocess.run([sys.executable, "-m", "awe_tf.cli", *command[1:], "--epochs", "1", "--no-validate",
                            "--no-baselines", "-o", str(tmp_path / "run")],
                           capture_output=True, text=True, env=env, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["affinity"].startswith("linear-sigmoid:alpha=")


def test_the_printed_command_trains_on_the_files_searched(tmp_path, data_dir, capsys):
    from awe_tf import cli

    emotions = data_dir / "mulan" / "emotions"
    files = ["--train", str(emotions / "emotions-train.arff"), "--test", str(emotions / "emotions-test.arff"),
             "--labels", str(emotions / "emotions.xml")]
    assert cli.main(["tune", *files, "--trials", "1", "--epochs", "1", "--seed", "3", "--monitor", "precision@3",
                     "-o", str(tmp_path)]) == 0
    command = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert command[:2] == ["awe-tf", "train"] and command[2:8] == [f if f.startswith("--") else os.path.abspath(f)
                                                                   for f in files]  # runs from any directory
    # trained as the trials were: their most epochs, metric and seed, which train's defaults are not
    assert command[-8:-2] == ["--epochs", "1", "--monitor", "precision@3", "--seed", "3"]
    assert command[-2] == "--output" and Path(command[-1]).parent.parent == tmp_path
    iterative = tuning.make_tuner("random", load_dataset("emotions").train, "knn", directory=tmp_path / "knn")
    assert iterative.searched_flags("knn:k=15") == (["--iterations", "1"], [])  # train's default: 3 rebuilds of G
    assert iterative.searched_flags(None) == ([], [])
    saved = json.loads(next(tmp_path.glob("*/best.json")).read_text())
    assert saved["command"].split() == command  # best.json holds the command too


def test_cli_tune_restart_discards_the_search_that_other_settings_are_refused_by(tmp_path, data_dir, capsys):
    from awe_tf import cli

    emotions = data_dir / "mulan" / "emotions"
    files = ["--train", str(emotions / "emotions-train.arff"), "--test", str(emotions / "emotions-test.arff"),
             "--labels", str(emotions / "emotions.xml"), "--trials", "1", "-o", str(tmp_path)]
    assert cli.main(["tune", "--affinity", "linear-sigmoid", *files, "--epochs", "1"]) == 0
    folder = tmp_path / tuning.search_name(load_dataset("emotions").train, "linear-sigmoid", "random")
    assert folder.is_dir() and "discarded" not in capsys.readouterr().out
    assert cli.main(["tune", "--affinity", "linear-sigmoid", *files, "--epochs", "2"]) == 2
    refused = capsys.readouterr().err
    assert "(--epochs: 1 -> 2)" in refused and "--restart" in refused
    assert cli.main(["tune", "--affinity", "linear-sigmoid", *files, "--epochs", "2", "--restart"]) == 0
    assert f"--restart: discarded the earlier search in {folder}" in capsys.readouterr().out
    assert json.loads((folder / "search.json").read_text())["train"]["epochs"] == 2
    assert len(list(folder.glob("trial_*/trial.json"))) == 1  # the earlier trial went with it


def test_a_monitor_validation_cannot_report_stops_the_search_before_any_work(tmp_path, capsys):
    """precision@375 on 374 labels: one line, no search directory; a k the data has is reported
    by validation beside the protocol's ks."""
    from awe_tf import cli
    from awe_tf.data import load_dataset, validation_split
    from awe_tf.training.callbacks import ValidationRanking

    code = cli.main(["tune", "--monitor", "precision@375", "--trials", "1", "-o", str(tmp_path / "search")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "precision@375 needs at least 375 labels" in error[0]
    assert not (tmp_path / "search").exists()
    carve = validation_split(load_dataset("corel5k").train)
    assert ValidationRanking(carve, monitor="precision@7").ks == (1, 3, 5, 7, 10)
    assert ValidationRanking(carve).ks == (1, 3, 5, 10)


def test_cli_tune_trains_every_trial_with_trains_fixed_settings_and_names_them(tmp_path, fits, capsys):
    """tune takes train's flags for what it does not search: the trials train with them, the
    search records them (a resumed search with another is refused, by its flag) and the printed
    command gives them; an engine that cannot train the family searched is refused before work."""
    from awe_tf import cli

    search = ["tune", "--trials", "1", "--epochs", "1", "--engine", "native", "--threads", "1", "--no-bias",
              "--patience", "0", "--min-steps-per-epoch", "4", "-o", str(tmp_path / "s")]
    assert cli.main(search) == 0
    assert [(fit["engine"], fit["input_bias"], fit["min_steps_per_epoch"]) for fit in fits] == [("native", False, 4)]
    command = shlex.split(capsys.readouterr().out.strip().splitlines()[-1])
    assert command[:2] == ["awe-tf", "train"]
    for flags in (["--engine", "native"], ["--threads", "1"], ["--patience", "0"], ["--min-steps-per-epoch", "4"]):
        assert shlex.join(flags) in shlex.join(command), flags
    assert "--no-bias" in command
    recorded = json.loads(next((tmp_path / "s").glob("*/search.json")).read_text())
    assert recorded["train"]["engine"] == "native" and recorded["model"]["input_bias"] is False
    assert cli.main([*search[:-2], "--engine", "graph", "-o", str(tmp_path / "s")]) == 2
    assert '(--engine: "native" -> "graph")' in capsys.readouterr().err
    assert len(fits) == 1
    assert cli.main(["tune", "--affinity", "sigmoid", "--engine", "native", "-o", str(tmp_path / "t")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --engine native trains WSABIE") and not (tmp_path / "t").exists()
    with pytest.raises(ValueError, match="native trains WSABIE"):  # in Python too
        tuning.make_tuner("random", load_dataset("corel5k").train, "sigmoid", directory=tmp_path / "p",
                          train_config=TrainConfig(engine="native"))
