"""Training settings as plain data, shared by the Python API, the CLI and tuning."""

from __future__ import annotations

import dataclasses

ENGINES = ("graph", "native")


@dataclasses.dataclass
class ModelConfig:
    """What :class:`~awe_tf.models.AWEModel` is built with (besides the data's sizes)."""

    dimension: int = 64
    margin: float = 1.0
    num_negatives: int = 64
    loss: str = "warp"
    normalisation: str = "l2"
    max_norm: float = 3.0
    affinity: object = None
    seed: int = 0
    input_bias: bool = True
    tpu_embedding: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TrainConfig:
    """How a model is trained.

    Attributes:
        epochs: the most epochs to train.
        learning_rate: the optimiser's step size.
        optimizer: ``adagrad`` (default) or ``sgd`` (the paper's plain SGD).
        pairs_per_batch: about how many positive (x, y) pairs make one step.
        bucketing: group examples by length (a few static shapes) instead of one padded shape.
        patience: stop after this many epochs without a better validation score (0: never).
        monitor: the validation metric early stopping watches, e.g. ``precision@1``.
        seed: seed of the batch order (the model has its own for sampling).
        verbose: Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.
        steps_per_execution: training steps run per call into the compiled graph (the same
            training). Raise it on TPUs, where each call has a fixed cost. On CPUs it makes
            later epochs no faster, while Keras traces a multi-step loop twice, which lengthens
            the first epoch.
        jit_compile: compile the training step with XLA (as TPUs do); use with
            ``bucketing=False`` so the step has one static shape.
        engine: ``graph`` (default): the TensorFlow training step, for every model, strategy
            and device; ``native``: sequential WARP in C on this machine's CPU cores, for the
            linear model (WSABIE) only, several times faster there (:mod:`awe_tf.native`).
        threads: CPU threads of the native engine (0: every core this process may use). With
            more than one, threads update shared rows without locks, so runs are not repeatable.
    """

    epochs: int = 10
    learning_rate: float = 0.05
    optimizer: str = "adagrad"
    pairs_per_batch: int = 1024
    bucketing: bool = True
    patience: int = 3
    monitor: str = "precision@1"
    seed: int = 0
    verbose: int = 2
    steps_per_execution: int = 1
    jit_compile: bool = False
    engine: str = "graph"
    threads: int = 0

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (every core) or positive, got {self.threads}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def make_optimizer(self):
        import tensorflow as tf

        if self.optimizer == "adagrad":
            return tf.keras.optimizers.Adagrad(self.learning_rate)
        if self.optimizer == "sgd":
            return tf.keras.optimizers.SGD(self.learning_rate)
        raise ValueError(f"optimizer must be 'adagrad' or 'sgd', got {self.optimizer!r}")

    def make_embedding_optimizer(self):
        """The same optimiser for tables a TPU's embedding engine updates (``tpu_embedding``)."""
        import tensorflow as tf

        if self.optimizer == "adagrad":  # Keras' Adagrad starts its accumulators at 0.1 as well
            return tf.tpu.experimental.embedding.Adagrad(self.learning_rate, initial_accumulator_value=0.1)
        if self.optimizer == "sgd":
            return tf.tpu.experimental.embedding.SGD(self.learning_rate)
        raise ValueError(f"optimizer must be 'adagrad' or 'sgd', got {self.optimizer!r}")
