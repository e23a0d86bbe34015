"""Embedding tables U and V with the max-norm projection of the paper's Algorithm 1."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.config import ModelConfig
from awe_tf.distribute import is_parameter_server, is_tpu, shards

WHOLE_TABLE_ROWS = 65536
BLOCK_ROWS = 32768  # rows per block where a table is read in blocks (MaxNormEmbedding.row_blocks)


def embed_rows(X, table, input_bias: bool) -> np.ndarray:
    """x^T U for every row of a (prepared, sparse) input matrix ``X``, plus U's last row when it is
    the always-on bias feature's: ``[n, d]`` float32 (NumPy, for whole data sets at once)."""
    table = np.asarray(table, np.float32)
    n_features = table.shape[0] - int(bool(input_bias))
    embedded = sp.csr_matrix(X) @ table[:n_features]
    if input_bias:
        embedded = embedded + table[n_features]
    return np.asarray(embedded, np.float32)


def gather_rows(table, ids):
    """The rows of ``table`` (a tensor, a variable, or a table sharded across parameter servers)
    at ``ids`` of any shape, ``[*ids.shape, d]``. A sharded table's ``tf.gather`` takes 1-D ids
    only and returns their rows grouped by shard, not in the ids' order (TensorFlow 2.20), so
    rows are looked up as embeddings are, flat."""
    flat = tf.nn.embedding_lookup(table, tf.reshape(ids, [-1]))
    return tf.reshape(flat, tf.concat([tf.shape(ids), tf.shape(flat)[1:]], 0))


def share_buffer(variable) -> bool:
    """Have whole reads of ``variable`` hand out its own buffer again, not a copy, until the next
    sparse read or write runs (TensorFlow's ``DisableCopyOnRead``; from the first sparse access
    TensorFlow copies a variable on every whole read). Call it between training steps, never
    while one runs. A TensorFlow operation that later writes to the variable while a whole read
    still holds the buffer gives the variable a copy first, so what was read does not change.

    Returns:
        Whether it could: not for a variable sharded across parameter servers or mirrored by a
        distribution strategy, nor inside a graph (where it would run in no set order with the
        graph's sparse reads), nor where the variable's device has no such kernel.
    """
    if shards(variable) > 1 or isinstance(variable, tf.distribute.DistributedValues) or not tf.executing_eagerly():
        return False
    try:
        tf.raw_ops.DisableCopyOnRead(resource=variable.handle)
    except (tf.errors.NotFoundError, tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
        return False
    return True


@tf.keras.utils.register_keras_serializable(package="awe_tf")
class MaxNormEmbedding(tf.keras.layers.Layer):
    """A ``rows x dimension`` embedding table (U for input features, V for labels).

    Rows start as N(0, init_scale^2 / d) draws (norm about ``init_scale``), projected into the
    ball of radius ``max_norm``, and are kept inside it: after each training step,
    :meth:`project` rescales every row that the step
    touched to norm at most ``max_norm``. On a large table only those rows are visited (the cost
    is per batch, not per table); a small one (at most ``WHOLE_TABLE_ROWS`` rows, which a batch
    touches many times over) is clipped in one pass, which is cheaper and gives the same result
    since untouched rows are inside the ball already.

    Args:
        rows: number of rows (|X| or |Y|).
        dimension: embedding dimension d.
        max_norm: the radius of the ball rows are projected onto.
        init_scale: about the norm of a row as it starts.
        seed: initialiser seed.
        tpu_embedding: keep the table in a ``tfrs.layers.embedding.TPUEmbedding`` layer, which
            off a TPU behaves as the plain table (for checkpoints that hold it). Refused under
            TPUStrategy (see :meth:`_build_tpu_embedding`), where the plain table is replicated.

    Attributes:
        read_whole: look rows up from a whole read of the table instead of a sparse one (not
            part of the config). The native engine sets it while C trains the table in the
            variable's own buffer, which a whole read hands out as it is; a sparse read would give
            the variable other memory while C holds its buffer, to be shared again and copied
            before the next chunk. Any other sparse read (the graph step's) defeats it.
        read_sparsely: a sparse read or write of the table (a lookup of rows, and so the
            sparse optimiser steps its gradients make; the rows' max-norm projection) has been
            traced in this process (not part of the config): set as a graph is traced, before it
            runs. From the first one that runs TensorFlow keeps the variable in copy-on-read mode,
            where every whole read copies it (see :meth:`row_blocks`), until :meth:`share_buffer`
            ends that; the next sparse read or write starts it again.
        buffer_shared: :meth:`share_buffer` works on this table (not part of the config). It
            says nothing of the mode now: a reader that relies on whole reads not copying calls
            :meth:`share_buffer` right before it reads (scoring, before every batch).
    """

    def __init__(self, rows: int, dimension: int, max_norm: float = ModelConfig.max_norm, seed: int | None = None,
                 tpu_embedding: bool = False, init_scale: float = ModelConfig.init_scale, **kwargs):
        super().__init__(**kwargs)
        self.rows = int(rows)
        self.dimension = int(dimension)
        self.max_norm = float(max_norm)
        self.init_scale = float(init_scale)
        self.seed = seed
        self.tpu_embedding = bool(tpu_embedding)
        self.read_whole = False  # set by the native engine (class docstring)
        self.read_sparsely = False  # set as sparse reads are traced (class docstring)
        self.buffer_shared = False  # set by share_buffer (class docstring)

    def build(self, input_shape=None):
        init = tf.keras.initializers.RandomNormal(stddev=self.init_scale / math.sqrt(self.dimension), seed=self.seed)
        if self.tpu_embedding:
            self._build_tpu_embedding(init)
        else:
            self.table = self.add_weight(
                name="table", shape=(self.rows, self.dimension), initializer=init, trainable=True
            )
            if shards(self.table) > 1:
                # Sharded across parameter servers, each shard was drawn alone (the same seed, so
                # the same rows in every shard): draw the whole table once instead, as unsharded.
                self.table.assign(self._clip(init((self.rows, self.dimension))))
            else:
                self.table.assign(self._clip(self.table))
        super().build(input_shape)

    def _build_tpu_embedding(self, init):
        """The table inside a ``tfrs.layers.embedding.TPUEmbedding`` layer, off a TPU: the layer
        looks rows up from an ordinary variable that the model's optimizer trains, exactly as
        without it. Under TPUStrategy it is refused: see the comment below."""
        import tensorflow_recommenders as tfrs

        strategy = tf.distribute.get_strategy()
        if is_parameter_server(strategy):
            raise ValueError("tpu_embedding is not for parameter servers, where the plain tables are sharded "
                             "instead (leave tpu_embedding off)")
        if is_tpu(strategy):
            # TensorFlow's embedding engine (tpu_embedding_v2/v3) takes ids only as direct inputs
            # of the step, with static per-replica shapes, and its host copy of the table is stale
            # while training; WARP draws V's ids inside the step, U's ids pass the input transform
            # and the bias feature first, and validation, max-norm projection and export read the
            # tables. None of that holds there, so refuse before building anything.
            raise ValueError("tpu_embedding (--tpu-embedding) is not supported on a TPU: the TPU embedding "
                             "engine needs the ids as direct inputs of the step, and WARP samples V's ids inside "
                             "it. Leave it off: under TPUStrategy U and V train as replicated TPU variables")
        table = tf.tpu.experimental.embedding.TableConfig(
            vocabulary_size=self.rows, dim=self.dimension, combiner="sum", name=f"{self.name}_table",
            initializer=lambda shape, dtype=None: self._clip(init(shape)),
        )
        feature = tf.tpu.experimental.embedding.FeatureConfig(table=table, name=f"{self.name}_ids")
        self.tpu_layer = tfrs.layers.embedding.TPUEmbedding(feature, optimizer=None)  # off a TPU: Keras trains it
        self.tpu_layer.build(None)
        self.table = next(iter(self.tpu_layer.embedding_tables.values()))

    def _clip(self, rows):
        norms = tf.norm(rows, axis=-1, keepdims=True)
        return rows * tf.minimum(1.0, self.max_norm / tf.maximum(norms, 1e-12))

    def call(self, ids):
        if self.read_whole and shards(self.table) == 1 and not self.tpu_embedding:
            return tf.gather(tf.convert_to_tensor(self.table), ids)
        self.read_sparsely = True
        if self.tpu_embedding:
            return self.tpu_layer(ids)
        return tf.nn.embedding_lookup(self.table, ids)  # also for tables sharded across parameter servers

    def share_buffer(self) -> bool:
        """Have whole reads of the table hand out its own buffer again, not a copy, until the
        next sparse read or write runs (the module's :func:`share_buffer`, whose conditions
        hold). Not for a table in a TPU embedding layer. Returns whether it could."""
        if self.tpu_embedding or not share_buffer(self.table):
            return False
        self.buffer_shared = True
        return True

    def whole_reads_copy(self) -> bool:
        """Whether reading the table whole copies it: after a sparse read (:attr:`read_sparsely`),
        unless :meth:`share_buffer` works on it (scoring calls it before every batch), the native
        engine has it read whole (:attr:`read_whole`: it keeps such a table in TensorFlow's own
        buffer, and a sparse read would undo that) or it is sharded across parameter servers
        (where a whole read gathers the shards anyway)."""
        return self.read_sparsely and not (self.read_whole or self.buffer_shared) and shards(self.table) == 1

    def row_blocks(self, rows: int | None = None) -> Iterator:
        """The table as tensors of at most ``rows`` rows each (default ``BLOCK_ROWS``), in order,
        each read as it is asked for (in a graph, under the control dependencies in force then).
        Where a whole read would copy the table (:meth:`whole_reads_copy`) each block is
        gathered from the variable, so no more than a block is copied at a time; otherwise they
        are slices of one whole read, which TensorFlow hands out without a copy once
        :meth:`share_buffer` has run (call it first); each slice is a view of that read where it
        starts on a 64-byte boundary, as blocks of ``BLOCK_ROWS`` rows do."""
        rows = int(rows or BLOCK_ROWS)
        copies = self.whole_reads_copy()
        whole = None if copies else tf.convert_to_tensor(self.table)
        for start in range(0, self.rows, rows):
            if copies:
                yield tf.gather(self.table, tf.range(start, min(start + rows, self.rows)))
            else:
                yield whole[start : start + rows]

    def all_finite(self) -> bool:
        """Whether every value of the table is finite, checked a block of rows at a time
        (:meth:`row_blocks`), so the check never holds a copy of the whole table; with its buffer
        shared (:meth:`share_buffer`), it copies none."""
        self.share_buffer()
        return all(bool(tf.reduce_all(tf.math.is_finite(block))) for block in self.row_blocks())

    def whole_table(self, stop_gradient: bool = False):
        """The table as one tensor (held constant under differentiation with ``stop_gradient``),
        or None when it is sharded across parameter servers (reading it whole would fetch every
        shard)."""
        if shards(self.table) > 1:
            return None
        table = tf.convert_to_tensor(self.table)
        return tf.stop_gradient(table) if stop_gradient else table

    def take_rows(self, other: MaxNormEmbedding, at, source) -> int:
        """Set rows ``at`` to ``other``'s rows ``source`` (NumPy id arrays of one length), clipped
        to this table's max-norm, a block of ``BLOCK_ROWS`` at a time: no copy of either whole
        table (under parameter servers, only the shards the rows are on are read and written).
        Returns how many of them were longer than the max-norm."""
        self.read_sparsely = True
        longer = 0
        for start in range(0, len(at), BLOCK_ROWS):
            rows = tf.gather(other.table, tf.constant(source[start : start + BLOCK_ROWS], tf.int64))
            longer += self._longer(rows)
            self.table.scatter_update(tf.IndexedSlices(self._clip(rows),
                                                       tf.constant(at[start : start + BLOCK_ROWS], tf.int64)))
        return longer

    def clip_table(self) -> int:
        """Clip every row to the max-norm (where a whole table was given to it: a start's): each row
        taken from the table itself (:meth:`take_rows`; a row within it is written back as it was);
        returns how many rows were longer."""
        every = np.arange(self.rows, dtype=np.int64)
        return self.take_rows(self, every, every)

    def _longer(self, rows) -> int:
        """How many of ``rows`` are longer than the max-norm (beyond float32's rounding of a row
        that the same max-norm clipped)."""
        return int(tf.reduce_sum(tf.cast(tf.norm(rows, axis=-1) > self.max_norm * (1 + 1e-5), tf.int32)))

    def project(self, ids) -> None:
        """Rescale rows ``ids`` (any shape; repeats and out-of-range padding ids are ignored)."""
        # With several replicas each sees other ids; projecting the whole (synchronised) table
        # keeps every copy identical. Parameter-server workers update the table asynchronously,
        # so there a whole-table rewrite would undo the other workers' steps: rows only.
        strategy = tf.distribute.get_strategy()
        if not is_parameter_server(strategy) and (self.rows <= WHOLE_TABLE_ROWS or strategy.num_replicas_in_sync > 1):
            self.table.assign(self._clip(self.table))
            return
        self.read_sparsely = True
        ids = tf.reshape(ids, [-1])
        offset = 0
        for shard in getattr(self.table, "variables", [self.table]):  # a sharded table: each shard in turn
            rows = shard.shape[0]
            local = ids - offset
            valid = tf.boolean_mask(local, (local >= 0) & (local < rows))
            unique, _ = tf.unique(valid)
            shard.scatter_update(tf.IndexedSlices(self._clip(tf.gather(shard, unique)), unique))
            offset += rows

    def get_config(self):
        return {
            **super().get_config(),
            "rows": self.rows,
            "dimension": self.dimension,
            "max_norm": self.max_norm,
            "init_scale": self.init_scale,
            "seed": self.seed,
            "tpu_embedding": self.tpu_embedding,
        }
