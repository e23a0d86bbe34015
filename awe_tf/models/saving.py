"""A model on disk: its config as JSON (``awe_model.json``) and its weights as a TensorFlow
checkpoint (U, V, G's variables, the labels it may rank), readable without the training code."""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from awe_tf.config import with_earlier_defaults

CONFIG_FILE = "awe_model.json"
WEIGHTS_PREFIX = "weights/ckpt"
FORMAT = 2  # 2 keeps the input transform and the data's task with the model


def _weights(model) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(U=model.U.table, V=model.V.table, affinity=model.affinity, rankable=model.rankable)


def save(model, directory) -> Path:
    """Write ``model``'s config and weights to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _weights(model).write(str(directory / WEIGHTS_PREFIX))
    (directory / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, **model.get_config()}, indent=1))
    return directory


def load(model_class, directory):
    """Rebuild a model :func:`save` wrote, as ``model_class``."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.exists():
        raise FileNotFoundError(f"{directory} holds no saved AWE model ({CONFIG_FILE} missing)")
    config = json.loads(config_path.read_text())
    if config.pop("format", 1) < FORMAT:
        raise ValueError(f"{directory} was saved by an earlier awe-tf, which did not keep the model's input "
                         "transform with it: train it again")
    model = model_class.from_config(with_earlier_defaults(config))
    _weights(model).read(str(directory / WEIGHTS_PREFIX)).assert_existing_objects_matched()
    return model
