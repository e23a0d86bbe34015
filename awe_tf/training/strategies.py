"""``tf.distribute`` strategies by name, for the CLI and notebooks.

Batch sizes are global (``TrainConfig.pairs_per_batch`` is split across replicas by
``tf.distribute``); the WARP loss is a sum over pairs and gradients are summed across replicas;
negatives are drawn with a stateless RNG keyed on (seed, replica, step), so a run repeats exactly.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "auto", "mirrored", "multiworker", "parameter-server", "tpu")


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


def free_ports(n: int, low: int = 28000, high: int = 32000) -> list[int]:
    """``n`` different free loopback ports from ``[low, high)``, below the system's ephemeral
    range (Linux's starts at 32768), from a random start: a port the system hands to a connection
    (another cluster's traffic) cannot take one between its pick and its server's start. All are
    held until every one is picked. (The README's parameter-server block uses ports below ``low``.)
    Raises RuntimeError when fewer than ``n`` are free."""
    import contextlib
    import itertools
    import random
    import socket

    start = random.randrange(low, high)
    with contextlib.ExitStack() as held:
        ports = []
        for port in itertools.chain(range(start, high), range(low, start)):
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                probe.close()  # a busy port: let go of it at once
                continue
            held.enter_context(probe)
            ports.append(port)
            if len(ports) == n:
                return ports
    raise RuntimeError(f"no {n} free ports from {low} to {high - 1}")


def local_cluster(workers: int = 2, parameter_servers: int = 2, ports=None):
    """Start an in-process cluster on loopback and return its cluster resolver, for
    parameter-server training on one machine (tests, trying it out); the calling process is the
    coordinator.

    Args:
        workers, parameter_servers: how many of each.
        ports: the servers' ports, workers first (default: :func:`free_ports`).
    """
    n = workers + parameter_servers
    ports = free_ports(n) if ports is None else list(ports)
    if len(ports) != n:
        raise ValueError(f"local_cluster: {n} servers need {n} ports, got {len(ports)}")
    hosts = [f"localhost:{port}" for port in ports]
    spec = {"worker": hosts[:workers], "ps": hosts[workers:]}
    cluster = tf.train.ClusterSpec(spec)
    config = tf.compat.v1.ConfigProto()
    # In-process servers share this machine's threads: too few inter-op threads deadlock them.
    config.inter_op_parallelism_threads = max(4, workers + 1)
    for job, addresses in spec.items():
        for index in range(len(addresses)):
            tf.distribute.Server(cluster, job_name=job, task_index=index, config=config, protocol="grpc", start=True)
    return tf.distribute.cluster_resolver.SimpleClusterResolver(cluster, rpc_layer="grpc")


def run_cluster_task() -> None:
    """Run this process as a worker or parameter server of the cluster in ``TF_CONFIG`` (the
    coordinator is the process that trains, with ``--strategy parameter-server``); blocks."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if resolver.task_type not in ("worker", "ps"):
        raise ValueError(f"TF_CONFIG's task type must be worker or ps here, got {resolver.task_type!r}")
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type, task_index=resolver.task_id,
                                  protocol=resolver.rpc_layer or "grpc", start=True)
    server.join()


def parameter_server_strategy(resolver, min_shard_bytes: int = 256 << 10):
    """ParameterServerStrategy whose large variables (the tables U and V) are split across the
    parameter servers in shards of at least ``min_shard_bytes``."""
    shards = len(resolver.cluster_spec().as_dict().get("ps", [])) or 1
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(min_shard_bytes=min_shard_bytes,
                                                                             max_shards=shards)
    return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


def make_strategy(name: str = "default", tpu: str | None = None, devices=None,
                  min_shard_bytes: int = 256 << 10) -> tf.distribute.Strategy:
    """The strategy called ``name``.

    Args:
        name: ``default`` (one device), ``auto`` (a TPU if one is reachable, else the local GPUs
            mirrored, else the default), ``mirrored`` (all local GPUs, or ``devices``),
            ``multiworker`` (MultiWorkerMirroredStrategy; the cluster comes from ``TF_CONFIG``),
            ``parameter-server`` (this process coordinates the workers and parameter servers of
            ``TF_CONFIG``, each running :func:`run_cluster_task`; tables are sharded across the
            parameter servers) or ``tpu``.
        tpu: the TPU address for ``tpu`` (``grpc://...`` or a name); empty: Colab's or the
            environment's TPU.
        devices: device names for ``mirrored`` (default: every GPU, else the CPU).
        min_shard_bytes: for ``parameter-server``, the smallest shard a table is cut into.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "auto":  # Colab and notebooks: a TPU if there is one, else all GPUs, else this CPU
        try:
            return make_strategy("tpu", tpu=tpu)
        except ValueError:
            pass
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
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
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy parameter-server needs TF_CONFIG describing the cluster (workers, ps, and "
                             "this process as chief); start workers and ps with `awe-tf cluster-task`")
        return parameter_server_strategy(tf.distribute.cluster_resolver.TFConfigClusterResolver(), min_shard_bytes)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
