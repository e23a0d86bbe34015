"""fit(): learns on real data, stops early on validation, resumes a killed run."""

import json

import numpy as np
import pytest

from awe_tf.baselines import Popularity
from awe_tf.data import load_dataset, validation_split
from awe_tf.evaluation import evaluate_model
from awe_tf.training import ModelConfig, TrainConfig, fit


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")  # bundled: no data dir needed


def test_wsabie_beats_popularity_on_corel5k(corel):
    result = fit(corel.train, ModelConfig(dimension=32, num_negatives=10),
                 TrainConfig(epochs=3, verbose=0))
    model_p1 = evaluate_model(result.model.score, corel)["metrics"]["precision@1"]
    popular = evaluate_model(Popularity().fit(corel.train).score, corel)["metrics"]["precision@1"]
    assert model_p1 > popular + 0.08, (model_p1, popular)
    assert result.pairs_per_second > 0 and result.epochs_run == 3


def test_early_stopping_restores_best(corel):
    carve = validation_split(corel.train)
    result = fit(carve.train, ModelConfig(dimension=16, num_negatives=5),
                 TrainConfig(epochs=30, learning_rate=0.5, patience=1, verbose=0), validation=carve)
    scores = result.history["val_precision@1"]
    assert result.epochs_run < 30  # stopped early
    assert result.best_epoch == int(np.argmax(scores)) + 1
    final = evaluate_model(result.model.score, carve)["metrics"]["precision@1"]
    assert final == pytest.approx(max(scores))


def test_killed_run_resumes_from_checkpoint(corel, tmp_path, capsys):
    model_config = ModelConfig(dimension=16, num_negatives=5)
    carve = validation_split(corel.train)
    full = fit(carve.train, model_config, TrainConfig(epochs=4, patience=0, verbose=0),
               validation=carve, output_dir=tmp_path / "a")
    # The same run, "killed" after 2 epochs, then started again with the same command.
    fit(carve.train, model_config, TrainConfig(epochs=2, patience=0, verbose=0),
        validation=carve, output_dir=tmp_path / "b")
    state = json.loads((tmp_path / "b" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2
    resumed = fit(carve.train, model_config, TrainConfig(epochs=4, patience=0, verbose=1),
                  validation=carve, output_dir=tmp_path / "b")
    assert "Resuming from the checkpoint after epoch 2" in capsys.readouterr().out
    assert resumed.epochs_run == 4
    assert len(resumed.history["val_precision@1"]) == 4
    # Same seeds and batches: the resumed run ends where the uninterrupted one did.
    np.testing.assert_allclose(resumed.history["val_precision@1"], full.history["val_precision@1"], atol=0.02)
    assert (tmp_path / "b" / "logs").exists()


def test_checkpoint_of_other_settings_is_refused(corel, tmp_path):
    fit(corel.train, ModelConfig(dimension=8, num_negatives=3), TrainConfig(epochs=1, verbose=0),
        output_dir=tmp_path)
    with pytest.raises(RuntimeError, match="other settings"):
        fit(corel.train, ModelConfig(dimension=16, num_negatives=3), TrainConfig(epochs=1, verbose=0),
            output_dir=tmp_path)
