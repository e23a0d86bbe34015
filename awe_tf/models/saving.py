"""A model on disk: its config as JSON (``awe_model.json``) and its weights as a TensorFlow
checkpoint (U, V, G's variables, the labels it may rank), readable without the training code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from awe_tf.config import with_earlier_defaults
from awe_tf.runs import RUN_MODEL

CONFIG_FILE = "awe_model.json"
WEIGHTS_PREFIX = "weights/ckpt"
FORMAT = 2  # 2 keeps the input transform and the data's task with the model


def _weights(model) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(U=model.U.table, V=model.V.table, affinity=model.affinity, rankable=model.rankable)


def arrays_digest(arrays) -> str:
    """A short digest of arrays' values (tensors or variables read one at a time, in order)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(tf.convert_to_tensor(array)).tobytes())
    return digest.hexdigest()[:16]


def tables_digest(model) -> str:
    """A short digest of a model's U and V, read a block of rows at a time: what tells two
    models' tables apart (the start a run began from, ``init_from``, which its checkpoints
    record; the model an export was made from)."""
    return arrays_digest(block for table in (model.U, model.V) for block in table.row_blocks())


def save(model, directory) -> Path:
    """Write ``model``'s config and weights to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _weights(model).write(str(directory / WEIGHTS_PREFIX))
    (directory / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, **model.get_config()}, indent=1))
    return directory


def model_directory(directory) -> Path:
    """The directory a saved model is in: ``directory`` itself, or, for the output directory of
    an ``awe-tf train`` run, its ``model/``. FileNotFoundError, naming what is there, otherwise."""
    directory = Path(directory)
    if (directory / CONFIG_FILE).exists():
        return directory
    if (directory / RUN_MODEL / CONFIG_FILE).exists():
        return directory / RUN_MODEL
    if not directory.exists():
        raise FileNotFoundError(f"{directory} does not exist")
    from awe_tf.runs import AUTO, checkpoint_dirs  # (runs reads saved models: imported here, not at the top)

    if checkpoint_dirs(directory) or (directory / AUTO).is_dir():  # steps' too; --affinity auto's stages
        raise FileNotFoundError(f"{directory} is an awe-tf train run that has not finished (checkpoints, no "
                                f"{RUN_MODEL}/ yet): run its command again to resume it, or wait for it to finish")
    from awe_tf.serving.layout import exports_below

    exported = exports_below(directory)
    if exported:
        what = "is an export (a SavedModel for TF Serving)" if len(exported[0].relative_to(directory).parts) < 2 \
            else "holds exports (SavedModels for TF Serving)"
        raise FileNotFoundError(f"{directory} {what}, not a trained model: give the run's folder (or its model/) it "
                                "was exported from; `awe-tf evaluate --served EXPORT` scores an export on its own, and "
                                "awe_tf.serving.load(EXPORT) loads it in Python")
    raise FileNotFoundError(f"{directory} holds no saved AWE model (no {CONFIG_FILE} here, nor in {RUN_MODEL}/ as in "
                            "a run's output)")


def run_directory(directory) -> Path | None:
    """The output directory of the ``awe-tf train`` run whose model ``directory`` names (the
    run's directory or its ``model/``), or None for a model saved elsewhere."""
    saved = model_directory(directory)
    return saved.parent if saved.name == RUN_MODEL else None


def saved_config(directory) -> dict:
    """The config of the model saved in ``directory`` (:func:`model_directory`), as written, without
    building the model."""
    path = model_directory(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _damaged(path, "not a model's config, as awe-tf writes it", error) from None
    if not isinstance(config, dict):
        raise _damaged(path, "not a model's config, as awe-tf writes it", TypeError(f"a JSON {type(config).__name__}, "
                                                                                    "not an object"))
    return config


def load(model_class, directory):
    """Rebuild a model :func:`save` wrote, as ``model_class``, from its directory or from the
    output directory of the run that wrote it (:func:`model_directory`)."""
    directory = model_directory(directory)
    config = saved_config(directory)
    if config.pop("format", 1) < FORMAT:
        raise ValueError(f"{directory} was saved by an earlier awe-tf, which did not keep the model's input "
                         "transform with it: train it again")
    try:
        model = model_class.from_config(with_earlier_defaults(config))
    except (TypeError, KeyError) as error:  # settings missing or unknown: not what save wrote (or G's own code)
        raise _damaged(directory / CONFIG_FILE, "the model it describes cannot be built", error,
                       "the model folder is damaged, or its affinity's own code (an --import module) failed on these "
                       "settings") from None
    try:
        _weights(model).read(str(directory / WEIGHTS_PREFIX)).assert_existing_objects_matched()
    except (tf.errors.OpError, IndexError, ValueError) as error:  # files missing, cut short, of other shapes
        raise _damaged(directory / WEIGHTS_PREFIX.split("/")[0], "the model's weights cannot be read", error) from None
    return model


def _damaged(path: Path, what: str, error: Exception,
             cause: str = "the model folder is damaged or incomplete; save, train or copy it again") -> ValueError:
    """The refusal of a saved model's file that does not read as :func:`save` wrote it: ``what``
    went wrong, TensorFlow's or Python's ``error``, and its likely ``cause``."""
    said = next(iter((getattr(error, "message", None) or str(error)).strip().splitlines()), "")[:200]
    return ValueError(f"{path}: {what} ({type(error).__name__}{': ' + said if said else ''}): {cause}")
