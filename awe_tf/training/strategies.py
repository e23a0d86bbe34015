"""``tf.distribute`` strategies by name, for the CLI and notebooks.

Batch sizes are global (``TrainConfig.pairs_per_batch`` is split across replicas by
``tf.distribute``); the WARP loss is a sum over pairs and gradients are summed across replicas;
negatives are drawn with a stateless RNG keyed on (seed, replica, step), so a run repeats exactly.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "parameter-server", "tpu")


def split_cpu(replicas: int) -> list[str]:
    """Split this machine's CPU into ``replicas`` logical devices (for MirroredStrategy on CPU,
    e.g. to test multi-replica training without GPUs). Call before TensorFlow first runs an op."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as error:
        raise RuntimeError("split_cpu must run before TensorFlow initialises its devices "
                           "(call it first thing in the process)") from error
    return [f"/cpu:{i}" for i in range(replicas)]


def make_strategy(name: str = "default", tpu: str | None = None, devices=None) -> tf.distribute.Strategy:
    """The strategy called ``name``.

    Args:
        name: ``default`` (one device), ``mirrored`` (all local GPUs, or ``devices``),
            ``multiworker`` (MultiWorkerMirroredStrategy; the cluster comes from ``TF_CONFIG``),
            ``parameter-server`` or ``tpu``.
        tpu: the TPU address for ``tpu`` (``grpc://...`` or a name); empty: Colab's or the
            environment's TPU.
        devices: device names for ``mirrored`` (default: every GPU, else the CPU).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs TF_CONFIG describing the cluster and this worker")
        json.loads(os.environ["TF_CONFIG"])  # fail here, readably, on a malformed TF_CONFIG
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise ValueError(f"no TPU found{' at ' + tpu if tpu else ''}: {error}") from error
        return tf.distribute.TPUStrategy(resolver)
    if name == "parameter-server":
        raise ValueError("parameter-server training is not supported yet (issue #4): use mirrored or multiworker")
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
