"""Keras side of the native engine: the model's variables, in TensorFlow's own buffers where it
shares them (else NumPy copies), trained in chunks of examples by ``warp.c``, one chunk per Keras
step."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.config import NATIVE_TRAINS
from awe_tf.data.dataset import RECOMMENDATION, Dataset
from awe_tf.data.pipeline import training_matrices
from awe_tf.layers.towers import share_buffer
from awe_tf.training.optimiser import adagrad_accumulator, plain_kind

CHUNK_PAIRS = 1 << 17  # positive pairs per Keras step (per call into C): progress output, not speed


def _harmonic_table(n_labels: int) -> np.ndarray:
    """L(r) = sum_{i <= r} 1/i for r = 0 .. |Y|."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n_labels + 1))]).astype(np.float32)


def _address(tensor) -> int:
    """Where an eager CPU tensor's buffer is."""
    return tensor._numpy().ctypes.data  # noqa: SLF001 (EagerTensor's own view of its buffer, no copy)


def _shares_its_buffer(variable) -> bool:
    """Whether TensorFlow hands out ``variable``'s own float32 CPU buffer on a read (two reads at
    one address), not a copy (:func:`_own_view`)."""
    if variable.dtype != tf.float32 or "CPU" not in (variable.device or "CPU").upper():
        return False
    try:
        first, second = variable.value(), variable.value()  # both held: two copies never share an address
        return _address(first) == _address(second)
    except (AttributeError, TypeError, ValueError):  # not an eager CPU tensor
        return False


def _own_view(variable, own_at: int | None = None) -> np.ndarray | None:
    """A writable NumPy view of a buffer that ``variable`` alone holds, or None where TensorFlow
    hands out a copy on every read instead (a variable read or updated sparsely, e.g. by graph
    training or scoring, since its buffer was last shared again,
    :meth:`~awe_tf.layers.MaxNormEmbedding.share_buffer`; or not a float32 array in this
    process's memory).

    Two reads at the same address are the variable's buffer. It is then copied once into a
    buffer of its own: an assignment from another variable (``init_from``, ``continue_from``)
    shares that variable's buffer until TensorFlow writes to either, and C writes behind
    TensorFlow's back. The copy is skipped where the buffer is at ``own_at``, an address where the
    caller knows it to be the variable's alone (it made the copy itself, or the variable was just
    made). An alias made later, after the engine's set-up or while C trains (a callback assigning
    these variables to others, or keeping a tensor read from them), is not seen: it would change
    with training.
    """
    if not _shares_its_buffer(variable):
        return None
    if own_at is None or _address(variable.value()) != own_at:
        variable.assign(tf.raw_ops.DeepCopy(x=variable.value()))
    view = variable.value()._numpy()  # noqa: SLF001
    return view if view.flags.c_contiguous and view.flags.writeable else None


def _optimizer_settings(optimizer) -> tuple[float, float, bool]:
    """(learning rate, epsilon, whether Adagrad) of a Keras Adagrad or plain SGD optimiser."""
    rate = optimizer.learning_rate
    if isinstance(rate, tf.keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError("engine='native' takes a constant learning rate, not a schedule")
    rate = float(tf.keras.backend.get_value(rate))
    kind = plain_kind(optimizer)
    if kind == "adagrad":
        return rate, float(optimizer.epsilon), True
    if kind == "sgd":
        return rate, 0.0, False
    raise ValueError(f"engine='native' runs Adagrad or plain SGD (no momentum); got {type(optimizer).__name__}")


def check_supported(model, strategy=None) -> None:
    """Raise a clear error unless ``model`` (and the strategy) are what the native engine trains."""
    from awe_tf.distribute import is_default_strategy

    problems = []
    if model.affinity.native_form() is None:
        problems.append(f"it trains {NATIVE_TRAINS}, not {type(model.affinity).__name__}")
    if model.loss_name != "warp":
        problems.append(f"it computes the loss 'warp' only, not {model.loss_name!r}")
    if model.tpu_embedding:
        problems.append("its tables are plain arrays, not TPUEmbedding layers (tpu_embedding)")
    if model.n_labels >= 2**31:
        problems.append("it takes fewer than 2^31 labels")
    strategy = strategy or tf.distribute.get_strategy()
    if not is_default_strategy(strategy):
        problems.append(f"it runs on this machine's CPUs, not under {type(strategy).__name__}")
    if problems:
        raise ValueError("engine='native' cannot train this model: " + "; ".join(problems)
                         + ". Use engine='graph'.")


class NativeWarp:
    """Trains an :class:`~awe_tf.models.AWEModel` on ``data`` with ``warp.c``: WSABIE, or an AWE
    model whose score is a function of the linear score alone, whose G is one number per example
    and label, or top-k with a fixed rest (:meth:`Affinity.native_form`).

    Inside ``model.fit`` each step is one chunk of about ``CHUNK_PAIRS`` pairs of examples, in a
    fresh seeded order each epoch. C trains the model's U and V (and Adagrad accumulators) in
    TensorFlow's own buffers where TensorFlow shares them (``in_place``: no second copy of the
    model in memory); meanwhile scoring reads those tables whole, not sparsely. A variable that
    TensorFlow copies on every read (it was trained by the graph step, or read sparsely, as
    scoring does outside native training) is first shared again (:meth:`_share`); one that is
    not in this process's memory as a float32 array (a variable placed on a GPU) is trained as
    a NumPy copy instead, written
    back after every epoch (:class:`NativeSync`), before validation and checkpoint callbacks
    read it, and read again for the next. So at epoch ends the variables hold every table as
    trained; inside an epoch a table trained as a copy is behind, and a callback that saves or
    assigns weights at a step rather than at an epoch end sees that table as the epoch began,
    or has its assignment to it overwritten at the epoch's end.

    Setting the engine up gives U and V buffers of their own (a copy where the variable's is
    shared, as after an assignment from another model), so that load need not copy them on top
    of the optimiser's state; :meth:`optimiser_state_made` does the same for a new optimiser's
    state. A tensor read from U or V and kept after set-up (a callback's ``set_model``) would
    change with training.

    Args:
        model: the model (checked by :func:`check_supported`, with ``strategy``).
        data: the training set, its inputs transformed by the model (:meth:`AWEModel.prepare`).
        threads: CPU threads (Hogwild: with more than one, results depend on timing).
        seed: seed of the example order (the model's own seed keys the negative draws).
        strategy: the ``tf.distribute`` strategy training runs under (default: the current one).
        context: G's rows of ``data``'s rows (CSR ``[n, |Y| + 1]``, the last column an offset every
            label gets), for an affinity that reads G (:attr:`NativeForm.uses_g`).
    """

    def __init__(self, model, data: Dataset, threads: int, seed: int = 0, strategy=None, context=None):
        from awe_tf.native import library

        check_supported(model, strategy)
        self.lib = library()
        self.model = model
        self.threads = max(1, int(threads))
        self.seed = int(seed)
        X, Y, rows = training_matrices(data)
        if X.shape[1] != model.n_features or Y.shape[1] != model.n_labels:
            raise ValueError(f"data has {X.shape[1]} features and {Y.shape[1]} labels; the model was built for "
                             f"{model.n_features} and {model.n_labels}")
        # in C's types: the data's own arrays where they have those types already (no copy of the input)
        self.x = (np.ascontiguousarray(X.indptr, np.int64), np.ascontiguousarray(X.indices, np.int32),
                  np.ascontiguousarray(X.data, np.float32))
        self.y = (np.ascontiguousarray(Y.indptr, np.int64), np.ascontiguousarray(Y.indices, np.int32))
        self.leave_one_out = data.task == RECOMMENDATION
        self.rows = rows.astype(np.int32)
        self.n_pairs = int(Y.nnz)
        self.harmonic = _harmonic_table(model.n_labels)
        self.form = model.affinity.native_form()
        self.g = None
        if self.form.uses_g:
            if context is None or context.shape != (Y.shape[0], model.n_labels + 1):
                raise ValueError(f"{type(model.affinity).__name__} reads G: give its rows of the data's {Y.shape[0]} "
                                 f"rows (context, {Y.shape[0]} x {model.n_labels + 1})")
            context = sp.csr_matrix(context, dtype=np.float32)
            context.sort_indices()
            self.g = (np.ascontiguousarray(context.indptr, np.int64), np.ascontiguousarray(context.indices, np.int32),
                      np.ascontiguousarray(context.data, np.float32))
        self.n_chunks = max(1, min(self.rows.size, -(-self.n_pairs // CHUNK_PAIRS)))
        self._plan = (None, None)
        self.tables, self.unshareable = None, set()
        # Where a table's buffer is known to be its variable's alone, until the first load takes it
        # without copying it again. U and V are made so now, before the optimiser's state exists:
        # copied at load instead, each would come on top of everything training holds.
        self._own_at: dict[str, int] = {}
        for name, variable in (("U", model.U.table), ("V", model.V.table)):
            self._share(name, variable)
            if _own_view(variable) is not None:
                self._own_at[name] = _address(variable.value())

    def optimiser_state_made(self) -> None:
        """Say that the optimiser's state was just made (``compile`` with a new optimiser, as
        :func:`~awe_tf.training.fit` does after setting the engine up, before anything assigns
        it): each accumulator then holds the buffer its initial value was filled in, and nothing
        else does, so the first load takes it as it is. Without this call, load copies it into a
        buffer of its own first, on top of everything training holds."""
        optimizer = self.model.optimizer
        if self.tables is not None or optimizer is None or int(optimizer.iterations.numpy()) != 0:
            raise RuntimeError("optimiser_state_made() is for a new optimiser's state, before training loads it")
        for name, variable in self._variables().items():
            # a one-element state is TensorFlow's cached constant of the initial value, shared by every such state
            if name.startswith("acc") and variable.shape.num_elements() > 1 and _shares_its_buffer(variable):
                self._own_at[name] = _address(variable.value())

    def steps_per_epoch(self) -> int:
        return self.n_chunks

    def dataset(self, start_epoch: int = 0):
        """The steps' inputs: the global step number, from ``start_epoch``'s first step on."""
        return tf.data.Dataset.range(start_epoch * self.n_chunks, np.iinfo(np.int64).max)

    # ---------------------------------------------------------------- the tables C trains
    def _variables(self) -> dict:
        """The variables C trains, by the names ``warp.c``'s arguments have."""
        model = self.model
        variables = {"U": model.U.table, "V": model.V.table}
        if plain_kind(model.optimizer) == "adagrad":
            variables["accU"] = adagrad_accumulator(model.optimizer, model.U.table)
            variables["accV"] = adagrad_accumulator(model.optimizer, model.V.table)
        return variables

    def _share(self, name: str, variable) -> None:
        """Have TensorFlow hand out ``variable``'s own buffer on whole reads again, where a sparse
        read or update (the graph step's, scoring's) has it copy the table on every read
        (:func:`~awe_tf.layers.towers.share_buffer`; for U and V their layers' method, which
        scoring relies on too)."""
        layer = {"U": self.model.U, "V": self.model.V}.get(name)
        if layer is not None:
            layer.share_buffer()
        else:
            share_buffer(variable)

    def _table(self, name: str, variable) -> np.ndarray:
        """What C trains for ``variable``: its own buffer (:func:`_own_view`), shared again first
        (:meth:`_share`), else a copy. A variable found unshareable is trained as a copy for the
        rest of the run and not checked again (checking reads the table twice: two copies of it
        at once)."""
        view = None
        if name not in self.unshareable:
            self._share(name, variable)
            view = _own_view(variable, self._own_at.pop(name, None))
        if view is None:
            self.unshareable.add(name)
            return np.require(variable.numpy(), np.float32, ["C", "W"])  # numpy() is a copy already
        return view

    def load(self) -> None:
        """Read the optimiser's settings and point C at the model's tables and optimiser state."""
        self.lr, self.eps, _ = _optimizer_settings(self.model.optimizer)
        self.tables = {name: self._table(name, variable) for name, variable in self._variables().items()}
        self._read_whole(self.shared)

    def _read_whole(self, names) -> None:
        """Have scoring read whole those of U and V among ``names`` that TensorFlow still hands
        out as they are (:attr:`~awe_tf.layers.MaxNormEmbedding.read_whole`): a sparse read would
        give the variable other memory (C holds its buffer), which the next chunk would have to
        share again and copy. The others are read sparsely: read whole, a table copied on every
        read would be copied per batch."""
        variables = self._variables()
        whole = {name for name in {"U", "V"} & set(names) if _shares_its_buffer(variables[name])}
        self.model.U.read_whole, self.model.V.read_whole = "U" in whole, "V" in whole

    @property
    def shared(self) -> set:
        """The names of the tables C trains in their variables' own buffers."""
        return set(self.tables or ()) - self.unshareable

    @property
    def in_place(self) -> bool:
        """Whether every table is trained in TensorFlow's own buffer (no copy of the model)."""
        return self.tables is not None and self.shared == set(self._variables())

    def _current_tables(self) -> dict:
        """The tables for the next chunk: those in use, but a variable's own again where it moved
        (an assignment, or a sparse read, gives it other memory; its steps so far are in it) and
        where a copy was written back (:meth:`store`)."""
        if self.tables is None:
            self.load()
        shared = self.shared
        for name, variable in self._variables().items():
            if name not in self.tables or (name in shared and self._moved(name, variable)):
                self.tables.pop(name, None)  # the old buffer goes before the table is copied again
                self.tables[name] = self._table(name, variable)
        self._read_whole(self.shared)
        return self.tables

    def _moved(self, name: str, variable) -> bool:
        """Whether a table C trains in place is no longer its variable's buffer (an assignment, or
        a sparse read, gave the variable other memory)."""
        return _address(variable.value()) != self.tables[name].ctypes.data

    def store(self) -> None:
        """Write the copies back into the model's variables and let them go, so the next chunk
        starts from what the variables hold then (callbacks may assign them between epochs);
        the variables' own buffers were trained in place."""
        if self.tables is not None:
            variables = self._variables()
            for name in self.unshareable & set(self.tables):
                variables[name].assign(self.tables.pop(name))
            self._read_whole(self.shared)  # before validation scores: a callback may have read a table sparsely
            for name in self.shared:  # moved since: the next chunk takes it again, its old buffer goes now
                if self._moved(name, variables[name]):
                    del self.tables[name]

    def release(self) -> None:
        """Write the copies back and let go of every table: the end of training, finished or not
        (an exception mid-epoch too, so the model holds every step C took, as the graph engine's
        would)."""
        self.store()
        self.tables = None
        self._read_whole(())

    # ------------------------------------------------------------------------- training
    def _rows_of(self, step: int) -> np.ndarray:
        epoch, chunk = divmod(int(step), self.n_chunks)
        if self._plan[0] != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
            self._plan = (epoch, np.array_split(order, self.n_chunks))
        return np.ascontiguousarray(self._plan[1][chunk], np.int32)

    def run_step(self, step) -> np.ndarray:
        """Train on one chunk; returns ``[loss sum, pairs, violated pairs, rank sum]``."""
        t = self._current_tables()
        model = self.model
        rows = self._rows_of(step)
        stats = np.zeros(4, np.float64)
        seed = int(np.random.SeedSequence([model.seed, int(step)]).generate_state(1, np.uint64)[0])
        acc_u = t["accU"].ctypes.data if "accU" in t else None
        acc_v = t["accV"].ctypes.data if "accV" in t else None
        form = self.form
        g = [array.ctypes.data for array in self.g] if self.g is not None else [None] * 3
        status = self.lib.awe_warp_train(
            *self.x, *self.y, rows, rows.size, int(self.leave_one_out),
            model.n_features if model.input_bias else -1, t["U"], acc_u, t["V"], acc_v,
            model.n_labels, model.dimension, model.num_negatives, model.margin, self.lr, self.eps,
            model.max_norm, form.c, form.lam, form.alpha, form.beta, *g, form.g_scale, form.g_added, int(form.prior),
            form.top_k, form.rest, self.harmonic, seed, self.threads, stats,
        )
        if status != 0:
            raise MemoryError("the native WARP engine could not allocate its buffers or start its threads")
        return stats

    def train_step(self, step):
        """The model's ``train_step`` under this engine: one chunk, then the WARP metrics."""
        model = self.model
        stats = tf.numpy_function(self.run_step, [step], tf.float64, stateful=True)
        loss, pairs, violated, ranks = tf.unstack(tf.cast(tf.reshape(stats, [4]), tf.float32))
        model.optimizer.iterations.assign_add(1)
        task = model.task
        task.loss_tracker.update_state(tf.math.divide_no_nan(loss, pairs), pairs)
        task.violation_tracker.update_state(tf.math.divide_no_nan(violated, pairs), pairs)
        task.rank_tracker.update_state(tf.math.divide_no_nan(ranks, violated), violated)
        return model.get_metrics_result()

    def train_function(self, iterator):
        """What Keras runs for each training step while this engine trains (set as the model's
        ``train_function`` by :func:`~awe_tf.training.fit`): one chunk, no graph step, counted as
        Keras counts its own steps."""
        logs = self.train_step(next(iterator))
        self.model._train_counter.assign_add(1)
        return logs

    def callback(self) -> tf.keras.callbacks.Callback:
        return NativeSync(self)


class NativeSync(tf.keras.callbacks.Callback):
    """Tables in at the start of training, copies out after every epoch (first in the callback list,
    so validation and checkpoints see the epoch's weights) and at the end."""

    def __init__(self, engine: NativeWarp):
        super().__init__()
        self.engine = engine

    def on_train_begin(self, logs=None):
        self.engine.load()

    def on_epoch_end(self, epoch, logs=None):
        self.engine.store()

    def on_train_end(self, logs=None):
        self.engine.release()  # later callbacks may change the weights (best-weight restore)
