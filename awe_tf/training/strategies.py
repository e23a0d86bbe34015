"""``tf.distribute`` strategies by name, for the CLI and notebooks.

Batch sizes are global (``TrainConfig.pairs_per_batch`` is split across replicas by
``tf.distribute``); the WARP loss is a sum over pairs and gradients are summed across replicas;
negatives are drawn with a stateless RNG keyed on (seed, replica, step), so a run repeats exactly.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

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


def tf_config(what: str) -> dict:
    """``TF_CONFIG``, the cluster and this process's task in it, read for ``what`` (a strategy, a
    cluster task).

    Raises:
        ValueError: naming what is wrong: TF_CONFIG missing, not JSON, without a cluster or a
            task, or whose task its cluster does not list (a job it lacks, an index that is not a
            whole number from 0 to its addresses less 1).
    """
    if "TF_CONFIG" not in os.environ:
        raise ValueError(f"{what} needs TF_CONFIG describing the cluster and this process's task in it")
    try:
        config = json.loads(os.environ["TF_CONFIG"])
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ValueError('TF_CONFIG must be {"cluster": {...}, "task": {"type": ..., "index": ...}}')
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise ValueError('TF_CONFIG names no task: this process\'s place in the cluster, "task": {"type": "worker", '
                         '"index": 0}')
    addresses = config["cluster"].get(task["type"])
    index = task.get("index", 0)
    if not isinstance(addresses, list):
        raise ValueError(f"TF_CONFIG's task is a {task['type']!r}, a job its cluster does not list (it lists "
                         f"{', '.join(map(repr, config['cluster']))})")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(f"TF_CONFIG's task index must be a whole number, got {index!r}")
    if not addresses:
        raise ValueError(f"TF_CONFIG's task is a {task['type']!r}, but its cluster lists no {task['type']} address")
    if not 0 <= index < len(addresses):
        raise ValueError(f"TF_CONFIG's task is {task['type']} {index!r}, but its cluster lists {len(addresses)} "
                         f"{task['type']} address{'es' * (len(addresses) != 1)}: index 0 to {len(addresses) - 1}")
    return config


def cluster_text(config: dict) -> str:
    """A cluster and this process's place in it, in words: ``worker 0 of 2 workers, 2 ps``."""
    task = config.get("task") or {}
    jobs = ", ".join(f"{len(addresses)} {job}{'s' * (len(addresses) != 1 and job != 'ps')}"
                     for job, addresses in config["cluster"].items())
    return f"{task.get('type')} {task.get('index', 0)} of {jobs}"


def wait_for_tasks(config: dict, log=print, every: float = 30.0, timeout: float | None = None) -> None:
    """Wait until every worker and parameter server of ``config`` accepts connections (they run
    ``awe-tf cluster-task``), saying which it waits for, so a task that never starts shows (and
    Ctrl-C stops the wait): TensorFlow's own wait says nothing and cannot be interrupted.
    ``timeout``: seconds before a ValueError names the missing tasks (None: wait on)."""
    began, said = time.monotonic(), -math.inf
    while True:
        missing = [f"{job} {index} at {address}" for job in ("worker", "ps")
                   for index, address in enumerate(config["cluster"].get(job, [])) if not _listening(address)]
        if not missing:
            return
        waited = time.monotonic() - began
        if timeout is not None and waited > timeout:
            raise ValueError(f"no answer after {waited:.0f} s from {', '.join(missing)}: start each with awe-tf "
                             "cluster-task and the same TF_CONFIG cluster")
        if waited - said >= every:
            log(f"waiting for {', '.join(missing)} (awe-tf cluster-task with TF_CONFIG); Ctrl-C stops")
            said = waited
        time.sleep(0.5)


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


# The servers this process runs, held for its lifetime: TensorFlow cannot stop a gRPC server, and
# its destructor waits for the server to end, for ever at times.
_SERVERS: list = []


def run_cluster_task(serving=None) -> None:
    """Run this process as a worker or parameter server of the cluster in ``TF_CONFIG`` (the
    coordinator is the process that trains, with ``--strategy parameter-server``); blocks until
    Ctrl-C (a KeyboardInterrupt). The server lives as long as the process: a caller ends the
    process after it (``awe-tf cluster-task`` with ``os._exit``, so that nothing collects it).
    ``serving``: called with ``(task type, index, address)`` once the server has started."""
    tf_config("a cluster task")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if resolver.task_type not in ("worker", "ps"):
        raise ValueError(f"TF_CONFIG's task type must be worker or ps here, got {resolver.task_type!r}")
    _SERVERS.append(tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                         task_index=resolver.task_id, protocol=resolver.rpc_layer or "grpc",
                                         start=True))
    if serving is not None:
        serving(resolver.task_type, resolver.task_id, resolver.cluster_spec().task_address(resolver.task_type,
                                                                                          resolver.task_id))
    # It serves from its own threads; Python waits where Ctrl-C reaches it (the server's join would
    # not), a second at a time: a SIGINT the kernel hands to one of gRPC's threads only sets
    # Python's flag, which the main thread reads when its sleep ends.
    while True:
        time.sleep(1.0)



def parameter_server_strategy(resolver, min_shard_bytes: int = 256 << 10):
    """ParameterServerStrategy whose large variables (the tables U and V) are split across the
    parameter servers in shards of at least ``min_shard_bytes``."""
    shards = len(resolver.cluster_spec().as_dict().get("ps", [])) or 1
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(min_shard_bytes=min_shard_bytes,
                                                                             max_shards=shards)
    return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


GOOGLE_PCI_VENDOR = "0x1ae0"  # the PCI vendor id of Google's TPU chips


def tpu_vm() -> bool:
    """Whether this machine looks like a Cloud TPU VM, its TPU chips attached to it rather than
    reached over the network (Colab's TPU runtimes are such VMs): chips as ``/dev/accel0``, ... (TPU
    v2 to v4; character devices, not the ``/dev/accel/`` folder of other accelerators), or PCI
    devices of Google's bound to VFIO (v5 and later), or the TPU runtime's ``TPU_ACCELERATOR_TYPE``."""
    chips = any(path.name[len("accel"):].isdigit() and path.is_char_device() for path in Path("/dev").glob("accel*"))
    vendors = Path("/sys/bus/pci/drivers/vfio-pci").glob("*/vendor")
    google = any(_read(vendor) == GOOGLE_PCI_VENDOR for vendor in vendors)
    return chips or google or "TPU_ACCELERATOR_TYPE" in os.environ


def _read(path: Path) -> str:
    """A small system file's text, stripped; empty where it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


# Where TensorFlow's own TPU lookup (tpu='') reads a TPU the environment names
TPU_NAMED_BY = ("TPU_NAME", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS", "TPU_CONFIG")


NAME_A_TPU = (" (name one: awe-tf train --tpu ADDRESS or a Cloud TPU's name, tpu= in Python; --strategy auto falls "
              "back to the GPUs or this CPU)")  # strategy 'tpu' where nothing names a TPU


def make_strategy(name: str = "default", tpu: str | None = None, devices=None,
                  min_shard_bytes: int = 256 << 10, log=None) -> tf.distribute.Strategy:
    """The strategy called ``name``.

    Args:
        name: ``default`` (one device), ``auto`` (a TPU if one is reachable, else the local GPUs
            mirrored, else the default; with ``tpu``, that TPU or an error), ``mirrored`` (all
            local GPUs, or ``devices``),
            ``multiworker`` (MultiWorkerMirroredStrategy; the cluster comes from ``TF_CONFIG``),
            ``parameter-server`` (this process coordinates the workers and parameter servers of
            ``TF_CONFIG``, each running :func:`run_cluster_task`; tables are sharded across the
            parameter servers) or ``tpu``.
        tpu: the TPU address for ``tpu`` (``grpc://...``, a name, or ``local``, a TPU VM's own);
            empty: the one the environment names (:data:`TPU_NAMED_BY`), and on a TPU VM
            (:func:`tpu_vm`; Colab's TPU runtimes) its own, first where the environment names none.
        devices: device names for ``mirrored`` (default: every GPU, else the CPU).
        min_shard_bytes: for ``parameter-server``, the smallest shard a table is cut into.
        log: where to say what a cluster strategy waits for, and why ``auto`` found no TPU
            (``print``; None: nothing). The parameter-server coordinator waits for its workers and
            servers (:func:`wait_for_tasks`).

    Raises:
        ValueError: an unknown name; ``default`` or ``auto`` inside another strategy's scope
            (their one device would be the scope's strategy); no TPU found for ``tpu`` (or for
            ``auto`` given ``tpu``), a ``grpc://`` address nothing answers at at once; a
            ``TF_CONFIG`` a cluster strategy cannot use.
    """
    if name in ("default", "auto") and tf.distribute.has_strategy():  # one device would be the scope's strategy
        raise ValueError(f"strategy {name!r} asked for inside the scope of "
                         f"{type(tf.distribute.get_strategy()).__name__}: ask outside the `with strategy.scope():` "
                         "block, or leave the strategy out to use the scope's")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "auto" and tpu:  # a TPU named: that one, or an error (not another device without a word)
        return _tpu_strategy(tpu)
    if name == "auto":  # Colab and notebooks: a TPU if there is one, else all GPUs, else this CPU
        try:
            return _tpu_strategy(tpu, name_one=False)
        except ValueError as error:
            if log is not None:
                asked = "" if tpu or tpu_vm() else "; on a TPU VM, ask for tpu='local' (awe-tf train --tpu local)"
                log(f"not on a TPU ({str(error).splitlines()[0][:300]}){asked}")
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        config = tf_config("--strategy multiworker")
        if log is not None:  # TensorFlow waits here, without a word, until every worker has joined
            log(f"joining the cluster as {cluster_text(config)}: this waits until every worker runs the same "
                "command (TensorFlow's wait: Ctrl-C does not stop it, kill -9 does)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return _tpu_strategy(tpu)
    if name == "parameter-server":
        config = tf_config("--strategy parameter-server (workers, ps, and this process as chief; start workers and ps "
                           "with `awe-tf cluster-task`)")
        if (config.get("task") or {}).get("type") != "chief":
            raise ValueError(f"this process coordinates the training: TF_CONFIG's task must be chief, got "
                             f"{(config.get('task') or {}).get('type')!r} (workers and ps run `awe-tf cluster-task`)")
        if not config["cluster"].get("worker") or not config["cluster"].get("ps"):
            raise ValueError("--strategy parameter-server needs workers and ps in TF_CONFIG's cluster")
        wait_for_tasks(config, log or (lambda line: None))
        if log is not None:
            log(f"coordinating the cluster as {cluster_text(config)}")
        return parameter_server_strategy(tf.distribute.cluster_resolver.TFConfigClusterResolver(), min_shard_bytes)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def _tpu_strategy(tpu: str | None, name_one: bool = True) -> tf.distribute.Strategy:
    """A TPUStrategy of the TPU ``tpu`` names (:func:`make_strategy`), or a ValueError saying why
    none was found (with ``name_one``, where nothing named one, how to name it)."""
    # None: the TPU the environment names, if it names one; on a TPU VM (Colab's TPU runtimes are
    # TPU VMs, where TensorFlow's own lookup asks for a name) its own, 'local', first otherwise
    if tpu:
        tried = [tpu]
    elif tpu_vm():
        tried = ["", "local"] if any(os.environ.get(variable) for variable in TPU_NAMED_BY) else ["local", ""]
    else:
        tried = [""]
    # An address nothing answers at: TensorFlow's connection would wait for ever, deaf to Ctrl-C
    if tpu and tpu.startswith("grpc://") and not _listening(tpu[len("grpc://"):]):
        raise ValueError(f"no TPU found at {tpu}: nothing answers at that address (a TPU node's gRPC port is 8470)")
    errors = []
    for address in tried:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, tf.errors.OpError, OSError) as error:  # OSError: a TPU name no lookup resolves
            errors.append(error)
    failed = errors[0]  # the first attempt's says most
    hint = " (an address is given as grpc://HOST:PORT; anything else is a Cloud TPU's name)" \
        if tpu and ":" in tpu and not tpu.startswith("grpc://") else ""
    where = f" at {tpu}" if tpu else " (tried this TPU VM's own, tpu='local', and the environment's)" \
        if len(tried) > 1 else ""
    if not tpu and len(tried) == 1 and name_one:  # nothing named one: say how to
        hint = NAME_A_TPU
    raise ValueError(f"no TPU found{where}: {failed}{hint}") from failed
