"""Splitting row-wise work across the workers of a multi-worker strategy (the MapReduce step of
the paper's iterative scheme: each worker finds the neighbours of its share of the training
rows, then every worker receives all of them through a TensorFlow collective)."""

from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.data.pipeline import pad_rows


def is_parameter_server(strategy) -> bool:
    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def is_tpu(strategy) -> bool:
    """Whether ``strategy`` runs on TPU cores (its steps XLA-compiled, one static input shape)."""
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def is_default_strategy(strategy) -> bool:
    """Whether ``strategy`` is TensorFlow's default, no ``tf.distribute`` strategy chosen (what the
    native engine trains under): not parameter servers, TPU cores or mirrored replicas, nor one of
    these with a single replica (a mirrored strategy of one GPU, a cluster of one worker), whose
    variables and metrics the engine, stepping outside the strategy's replicas, cannot update. (By
    its class, which TensorFlow does not export: ``_DefaultDistributionStrategy`` and its V1 twin.)"""
    return type(strategy).__name__.startswith("_DefaultDistributionStrategy")


def xla_problem(strategy) -> str | None:
    """Why XLA cannot compile the training step under ``strategy`` (``jit_compile``), or None:
    parameter-server workers keep the tables on other tasks, and TensorFlow 2.20 compiles no
    step across several CPU replicas (mirrored CPU devices, CPU workers). TPUs always compile."""
    if is_parameter_server(strategy):
        return "under parameter-server training the tables live on the parameter servers, outside the compiled step"
    if strategy.num_replicas_in_sync > 1 and not is_tpu(strategy) and \
            any("CPU" in device.upper() for device in strategy.extended.worker_devices):
        return (f"{strategy.num_replicas_in_sync} CPU replicas ({type(strategy).__name__}): TensorFlow compiles no "
                "step across CPU devices")
    return None


def shards(variable) -> int:
    """How many parameter-server shards a table is split into (1: not sharded)."""
    return len(getattr(variable, "variables", [variable]))


def sharding_text(tables: dict) -> str:
    """How tables (``{"U": variable, ...}``) are cut across the parameter servers, one line:
    ``U 374 x 16 (23 KB): 2 shards of 187, 187 rows; V ...``. TensorFlow's partitioner cuts a
    table into shards of at least the minimum size, at most one per parameter server, and rounds
    both, so the cut is stated rather than left to be inferred from ``--shard-bytes``."""
    parts = []
    for name, table in tables.items():
        pieces = getattr(table, "variables", [table])
        rows = [int(piece.shape[0]) for piece in pieces]
        size = sum(rows) * int(pieces[0].shape[1]) * pieces[0].dtype.size
        size_text = f"{size / 2 ** 20:,.1f} MB" if size >= 2 ** 20 else f"{size / 1024:,.0f} KB" if size >= 1024 \
            else f"{size} bytes"
        parts.append(f"{name} {sum(rows)} x {int(pieces[0].shape[1])} ({size_text}): "
                     + (f"{len(rows)} shards of {', '.join(map(str, rows))} rows" if len(rows) > 1 else "1 shard"))
    return "; ".join(parts)


def worker_share() -> tuple[int, int]:
    """``(index, count)``: this worker's place among the workers of the current multi-worker
    strategy, one replica each; ``(0, 1)`` when there is nothing to share."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 0, 1
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict()
    chiefs, workers = len(spec.get("chief", [])), len(spec.get("worker", []))
    if chiefs + workers < 2 or strategy.num_replicas_in_sync != chiefs + workers:
        return 0, 1  # one worker, or several devices per worker: each worker does all the rows
    index = resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)
    return index, chiefs + workers


def _run(strategy, function):
    """``strategy.run`` inside a ``tf.function`` (collectives run eagerly are slow and warn)."""
    return tf.function(lambda: strategy.run(function))()


def _flat(settings: dict, prefix: str = "") -> dict:
    """``{"model": {"dimension": 16}}`` as ``{"model.dimension": 16}``."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences_among_workers(settings: dict) -> str | None:
    """What tells this worker's ``settings`` (plain JSON data: the model's, the training's, the
    data's fingerprint) apart from the other workers' of the current multi-worker strategy, or
    None when they all agree (or there is one worker). Every worker must call it: the settings
    travel through a TensorFlow collective. Workers given different settings otherwise fail
    later, inside a collective, with an error about tensor shapes or a crashed peer."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or strategy.num_replicas_in_sync < 2:
        return None
    text = np.frombuffer(json.dumps(settings, sort_keys=True, default=str).encode("utf-8"), np.uint8)

    def gather_lengths():
        return tf.distribute.get_replica_context().all_gather(tf.constant([text.size], tf.int64), axis=0)

    lengths = strategy.experimental_local_results(_run(strategy, gather_lengths))[0].numpy()
    padded = np.pad(text, (0, int(lengths.max()) - text.size)).astype(np.int32)[None]  # collectives take no uint8

    def gather_texts():
        return tf.distribute.get_replica_context().all_gather(tf.constant(padded), axis=0)

    gathered = strategy.experimental_local_results(_run(strategy, gather_texts))[0].numpy()
    own = _flat(json.loads(text.tobytes().decode("utf-8")))  # as the others' arrive: through JSON
    differences = []
    for replica, (row, length) in enumerate(zip(gathered, lengths, strict=True)):
        theirs = _flat(json.loads(row[:length].astype(np.uint8).tobytes().decode("utf-8")))
        keys = sorted(key for key in own.keys() | theirs.keys() if own.get(key) != theirs.get(key))
        if keys:
            differences.append(f"the worker of replica {replica} has " + ", ".join(
                f"{key} = {theirs.get(key)!r} where this worker has {own.get(key)!r}" for key in keys))
    return "; ".join(differences) or None


def rows_by_workers(compute, n_rows: int, n_columns: int) -> sp.csr_matrix:
    """All ``n_rows`` rows of a sparse result, each worker computing only its share.

    Args:
        compute: ``rows -> CSR [len(rows), n_columns]``, the result for those row numbers.
        n_rows: the number of rows.
        n_columns: the result's width.
    """
    index, count = worker_share()
    if count == 1:
        return compute(np.arange(n_rows))
    rows = np.arange(index, n_rows, count)
    part = sp.csr_matrix(compute(rows), dtype=np.float32)
    strategy = tf.distribute.get_strategy()
    share = -(-n_rows // count)
    width = int(np.diff(part.indptr).max()) if part.shape[0] else 0

    def widest():  # all-reduce has no max: gather every worker's width
        return tf.distribute.get_replica_context().all_gather(tf.constant([width], tf.int64), axis=0)

    width = max(1, int(strategy.experimental_local_results(_run(strategy, widest))[0].numpy().max()))
    columns, values = pad_rows(part, np.arange(part.shape[0]), width, -1)
    filler = share - part.shape[0]  # every worker sends the same shape
    columns = np.pad(columns, [(0, filler), (0, 0)], constant_values=-1)
    values = np.pad(values, [(0, filler), (0, 0)])
    row_ids = np.pad(rows.astype(np.int64), (0, filler), constant_values=-1)

    def gather():
        context = tf.distribute.get_replica_context()
        return tuple(context.all_gather(tf.constant(a), axis=0) for a in (row_ids, columns, values))

    row_ids, columns, values = (strategy.experimental_local_results(t)[0].numpy()
                                for t in _run(strategy, gather))
    keep = (row_ids[:, None] >= 0) & (columns >= 0)
    where = np.repeat(row_ids, width).reshape(columns.shape)
    return sp.csr_matrix((values[keep], (where[keep], columns[keep])), shape=(n_rows, n_columns), dtype=np.float32)
