"""Settings as plain data, shared by the Python API, the CLI and tuning. Reading them needs no
TensorFlow, so the command line shows its defaults at once. Each setting is checked where it is
made, so a bad value stops before any work, with its name in the error."""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import re

ENGINES = ("graph", "native")
LOSSES = ("warp", "warp-all")  # WARP's first-violator and all-violators variants (awe_tf.tasks)
NORMALISATIONS = ("l2", "l1", "none")
OPTIMIZERS = ("adagrad", "sgd")
MONITORED = re.compile(r"(precision|recall)@[1-9][0-9]*")
SCORE_BUDGET = 1 << 24  # floats one scoring batch may hold (scores, or distances to training inputs): 64 MB


class SettingError(ValueError):
    """A setting outside its range; ``field`` names it (the CLI names its flag instead)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def check_monitor(monitor: str, n_labels: int | None = None) -> int:
    """The k of a monitored metric (a TrainConfig's ``monitor``), which validation reports beside
    the protocol's ks.

    Args:
        monitor: ``precision@k`` or ``recall@k``.
        n_labels: the data's labels, if known: k may not exceed them.

    Returns:
        k.

    Raises:
        SettingError: ``monitor`` is not such a metric, or k is above ``n_labels``.
    """
    if not isinstance(monitor, str) or not MONITORED.fullmatch(monitor):
        raise SettingError("monitor", f"must be precision@k or recall@k (k a whole number, at least 1), got "
                                      f"{monitor!r}")
    k = int(monitor.split("@")[1])
    if n_labels is not None and k > n_labels:
        raise SettingError("monitor", f"{monitor} needs at least {k} labels to rank; the data has {n_labels}")
    return k


def check_whole(field: str, value, least: int) -> None:
    """Refuse (SettingError) a ``value`` of ``field`` that is not a whole number of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise SettingError(field, f"must be a whole number of at least {least}, got {value!r}")


def _positive(field: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise SettingError(field, f"must be a finite number above 0, got {value!r}")


def _plain_numbers(config) -> None:
    """Store a checked config's numbers and switches as Python's own (a NumPy int64 or float32
    passes the checks, but JSON, which checkpoints and searches record settings in, cannot write
    it); a switch must be True or False (``"no"`` would read as True)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.type in ("int", "float") and isinstance(value, numbers.Real) and not isinstance(value, bool):
            setattr(config, field.name, int(value) if field.type == "int" else float(value))
        elif field.type == "bool":
            _one_of(field.name, value, (True, False))
            setattr(config, field.name, bool(value))


def _one_of(field: str, value, choices) -> None:
    if value not in choices:
        raise SettingError(field, f"must be one of {', '.join(map(str, choices))}, got {value!r}")


# Settings added after runs were first saved, with the value every earlier run had: a saved model,
# checkpoint or search whose recorded settings lack one was made with that value, not today's default.
EARLIER_MODEL_DEFAULTS = {"init_scale": 1.0}
EARLIER_TRAIN_DEFAULTS = {"min_steps_per_epoch": 1}


def with_earlier_defaults(config: dict, earlier: dict = EARLIER_MODEL_DEFAULTS) -> dict:
    """Recorded settings (a model's by default), with ``earlier``'s values where they lack one."""
    return {**earlier, **config}


# What Keras and other libraries call a setting of these configs, by their name for it.
OTHER_NAMES = {"batch_size": "pairs_per_batch", "lr": "learning_rate", "embedding_dim": "dimension",
               "embedding_dimension": "dimension", "num_epochs": "epochs", "negatives": "num_negatives",
               "n_negatives": "num_negatives", "max_sampled": "num_negatives", "no_components": "dimension"}
_CONFIGS = []  # the config classes (_named_settings), where a setting given to the other one belongs


def _named_settings(cls):
    """A config class whose constructor refuses a setting it does not have with the one meant:
    its own setting of that name elsewhere (:data:`OTHER_NAMES`) or the closest name, or the other
    config class, where the setting is that one's; where Python says only "unexpected keyword"."""
    import difflib
    import functools

    made = cls.__init__
    _CONFIGS.append(cls)

    @functools.wraps(made)
    def __init__(self, *args, **kwargs):
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = next((key for key in kwargs if key not in names), None)
        if unknown is not None:
            meant = OTHER_NAMES.get(unknown, unknown)
            owner = next((other for other in _CONFIGS if other is not cls
                          and meant in {field.name for field in dataclasses.fields(other)}), None)
            close = meant if meant in names else next(iter(difflib.get_close_matches(unknown, names, 1)), None)
            said = (f" ({meant!r} is a {owner.__name__} setting)" if owner is not None else
                    f" (did you mean {close!r}?)" if close else "")
            raise TypeError(f"{cls.__name__} has no setting {unknown!r}{said}; its settings: {', '.join(names)}")
        made(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


@_named_settings
@dataclasses.dataclass
class ModelConfig:
    """What :class:`~awe_tf.models.AWEModel` is built with (besides the data's sizes); each field
    is the model's argument of the same name (see its docstring). ``init_scale`` is about the
    norm of a row of U and V as training starts; runs saved before it existed started at 1.0
    (:data:`EARLIER_MODEL_DEFAULTS`)."""

    dimension: int = 64
    margin: float = 1.0
    num_negatives: int = 64
    loss: str = "warp"
    normalisation: str = "l2"
    max_norm: float = 3.0
    init_scale: float = 0.1
    affinity: object = None
    seed: int = 0
    input_bias: bool = True
    tpu_embedding: bool = False

    def __post_init__(self):
        check_whole("dimension", self.dimension, 1)
        _positive("margin", self.margin)
        check_whole("num_negatives", self.num_negatives, 1)
        _one_of("loss", self.loss, LOSSES)
        _one_of("normalisation", self.normalisation, NORMALISATIONS)
        _positive("max_norm", self.max_norm)
        _positive("init_scale", self.init_scale)
        check_whole("seed", self.seed, 0)
        _plain_numbers(self)  # input_bias and tpu_embedding True or False too
        if isinstance(self.affinity, str):
            from awe_tf.affinities import parse

            try:
                parse(self.affinity)
            except ValueError as error:
                raise SettingError("affinity", f"{self.affinity!r}: {error}") from None
        elif self.affinity is not None and not isinstance(self.affinity, dict):
            from awe_tf.affinities import Affinity

            if not isinstance(self.affinity, Affinity):
                raise SettingError("affinity", "must be a spec (knn:k=20), an awe_tf.affinities layer or its config "
                                               f"dict, got {type(self.affinity).__name__}")

    def to_dict(self) -> dict:
        """The settings as plain data: an affinity given as a layer is its config
        (:func:`~awe_tf.affinities.serialize`), so a model built from them has a G of its own."""
        settings = {field.name: copy.deepcopy(getattr(self, field.name)) for field in dataclasses.fields(self)
                    if field.name != "affinity" or isinstance(self.affinity, (str, dict, type(None)))}
        if "affinity" not in settings:
            from awe_tf.affinities import serialize

            settings["affinity"] = serialize(self.affinity)
        return settings


@_named_settings
@dataclasses.dataclass
class TrainConfig:
    """How a model is trained.

    Attributes:
        epochs: the most epochs to train (0 only for a model that starts from a trained one:
            it is kept as it starts). With validation, early stopping (``patience``) usually
            ends a run well before: the cap is there for scores that keep rising.
        learning_rate: the optimiser's step size (the default is Adagrad's).
        optimizer: ``adagrad`` (default) or ``sgd`` (the paper's plain SGD). SGD needs a rate of
            its own, well below Adagrad's (choose it on validation): a step of the graph engine
            adds up the steps of its pairs, and Adagrad's steps shrink as its squared gradients
            add up while SGD's do not.
        pairs_per_batch: the most positive (x, y) pair slots one step holds (each example's
            labels padded to the step's longest, rounded up to a multiple of 8).
        min_steps_per_epoch: the fewest steps an epoch of the graph engine takes, data allowing:
            a training set of fewer pair slots than ``pairs_per_batch`` times this is cut into
            this many smaller steps (down to room for one example a step per replica). On a small
            data set a few large steps an epoch would leave the model barely moved after each epoch, and the
            epochs that validation chooses among would differ by a step or two of the optimiser
            each (1: batches of ``pairs_per_batch`` whatever the data's size, as every run had
            before the setting existed: :data:`EARLIER_TRAIN_DEFAULTS`). The native engine,
            which takes pairs one at a time, has no steps to cut.
        bucketing: group examples by length (a few static shapes) instead of one padded shape.
        patience: stop after this many epochs without a better validation score (0: never).
        monitor: the validation metric early stopping watches, e.g. ``precision@1``.
        seed: seed of the batch order (the model has its own for sampling).
        verbose: Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
        steps_per_execution: graph engine steps run per call into the compiled graph (the same
            training, in fewer calls: each call, and the callbacks Keras runs after it, has a
            fixed cost). 1 gives per-step callbacks and progress.
        jit_compile: compile the training step with XLA (as TPUs do); use with
            ``bucketing=False`` so the step has one static shape.
        engine: ``graph`` (default): the TensorFlow training step, for every model, strategy
            and device; ``native``: sequential WARP in C on this machine's CPU cores, for the
            models :data:`NATIVE_TRAINS` lists, several times faster there (:mod:`awe_tf.native`).
        threads: CPU threads of the native engine (0: every core this process may use). With
            more than one, threads update shared rows without locks, so runs are not repeatable.
    """

    epochs: int = 30
    learning_rate: float = 0.05
    optimizer: str = "adagrad"
    pairs_per_batch: int = 1024
    min_steps_per_epoch: int = 32
    bucketing: bool = True
    patience: int = 3
    monitor: str = "precision@1"
    seed: int = 0
    verbose: int = 2
    steps_per_execution: int = 8
    jit_compile: bool = False
    engine: str = "graph"
    threads: int = 0

    def __post_init__(self):
        check_whole("epochs", self.epochs, 0)
        _positive("learning_rate", self.learning_rate)
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        check_whole("pairs_per_batch", self.pairs_per_batch, 1)
        check_whole("min_steps_per_epoch", self.min_steps_per_epoch, 1)
        check_whole("patience", self.patience, 0)
        check_monitor(self.monitor)
        check_whole("seed", self.seed, 0)
        _one_of("verbose", self.verbose, (0, 1, 2))
        check_whole("steps_per_execution", self.steps_per_execution, 1)
        _one_of("engine", self.engine, ENGINES)
        check_whole("threads", self.threads, 0)
        _plain_numbers(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def make_optimizer(self):
        import tensorflow as tf

        if self.optimizer == "adagrad":
            return tf.keras.optimizers.Adagrad(self.learning_rate)
        if self.optimizer == "sgd":
            return tf.keras.optimizers.SGD(self.learning_rate)
        raise ValueError(f"optimizer must be 'adagrad' or 'sgd', got {self.optimizer!r}")


def affinity_of(model_config: ModelConfig):
    """A new layer of the config's affinity (None: WSABIE), made from its spec or config; a layer
    given in the config is copied from its config (as Keras' ``clone_model`` does), so no two
    models share G's variables."""
    from awe_tf.affinities import Affinity, get

    affinity = model_config.affinity
    if isinstance(affinity, Affinity):
        return type(affinity).from_config(affinity.get_config())
    return None if affinity is None else get(copy.deepcopy(affinity))


NATIVE_TRAINS = ("WSABIE, linear sigmoid (on the whole score) and the affinities built from the training set (k-NN, "
                 "RBF, cluster, the neighbour vote), with their sums with constants, and top-k (max) with a fixed "
                 "rest")  # Affinity.native_form's


def _native_trains(affinity) -> bool:
    """Whether the native engine trains this G: WSABIE, a score that is a function of the linear
    score alone, or one whose G is a number per example and label (``Affinity.native_form``)."""
    return affinity is None or affinity.native_form() is not None


def engine_for(model_config: ModelConfig, train_config: TrainConfig) -> TrainConfig:
    """``train_config``, with the graph engine instead where the native one cannot train
    ``model_config``'s affinity."""
    if train_config.engine != "native" or _native_trains(affinity_of(model_config)):
        return train_config
    return dataclasses.replace(train_config, engine="graph")


def check_engine(model_config: ModelConfig, train_config: TrainConfig) -> None:
    """Refuse, before any work, a native-engine run of a model that engine cannot train: it
    trains the models :data:`NATIVE_TRAINS` lists (loss ``warp``, plain tables), and of another
    sum with a G built from the training set, the linear step 0 (the steps with G train with the
    graph engine)."""
    if train_config.engine != "native":
        return
    affinity = affinity_of(model_config)
    if not _native_trains(affinity) and affinity.reference_part() is None:
        raise SettingError("engine", f"native trains {NATIVE_TRAINS}, not {model_config.affinity!r}: use the graph "
                                     "engine")
    if model_config.loss != "warp":
        raise SettingError("engine", f"native computes the loss 'warp' only, not {model_config.loss!r}")
    if model_config.tpu_embedding:
        raise SettingError("engine", "native keeps U and V as plain arrays in this machine's memory, not in "
                           "TPUEmbedding layers (tpu_embedding)")
