"""Where a WSABIE training step's time goes (ml-100k validation split, d = 64, 10 negatives).

Times, per step of one epoch's batches (already built, as tensors), parts of the forward pass
(the negatives drawn and checked against the example's positives; the pairs' queries x^T U; the
negatives scored, their draws and queries included), the forward pass, the forward and backward
pass, and the whole ``train_step`` (optimiser and max-norm projection included), with and
without XLA; with ``--ops N``, the N ops and op types of ``train_step`` that take the most
thread time (TensorFlow's profiler); then pairs per second of ``model.fit`` (the library's steps
a call) for several batch sizes, through the generator pipeline and through the same batches
cached in memory, fits of the two taking turns. Each figure is a share of the
whole step, a share of the ops' thread time (``--ops``) or a ratio to the default batch size,
measured in the same run.

    AWE_DATA_DIR=../shared/data python benchmarks/warp_step_profile.py [--ops 12]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from awe_tf.data import load_dataset, validation_split  # noqa: E402
from awe_tf.data.pipeline import TrainingBatches  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig, build_model  # noqa: E402


def _model(train, pairs_per_batch, steps_per_execution=1):
    """The model and its batches; by default a step a call into the graph: the step is what the
    step's timings time (``fit`` runs TrainConfig's steps a call, as the library trains)."""
    model = build_model(train, ModelConfig(dimension=64, num_negatives=10))
    config = TrainConfig(learning_rate=0.1, pairs_per_batch=pairs_per_batch)
    model.compile(optimizer=config.make_optimizer(), steps_per_execution=steps_per_execution)
    return model, TrainingBatches(train.with_matrices(X=model.prepare(train.X)), pairs_per_batch)


def _epoch_tensors(batches) -> tuple[list[dict], list[dict]]:
    """One epoch's batches as tensors, and the signature every batch fits."""
    data = [{k: tf.constant(v) for k, v in b.items()} for b in batches.batches(0)]
    return data, [{k: tf.TensorSpec([None, None], v.dtype) for k, v in data[0].items()}]


def step_parts(train, pairs_per_batch: int, repeats: int) -> dict:
    """Milliseconds per step of each part, eager-free (tf.function), with and without XLA."""
    model, batches = _model(train, pairs_per_batch)
    data, signature = _epoch_tensors(batches)

    def forward(x):
        return model.compute_loss(x, training=True)

    def forward_backward(x):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, training=True)
        return tape.gradient(loss, model.trainable_variables)

    def negatives(x):  # K draws per pair and whether each is a positive of the example
        return model.sampler(x["label_ids"], model.optimizer.iterations)

    def queries(x):  # x^T U per pair: U's rows gathered and summed, less the pair's own item
        ids, weights = model.with_bias(x["feature_ids"], x["feature_weights"])
        return model.affinity.pair_inputs(model.U(ids), weights, x["self_position"])

    def negative_scores(x):  # V's rows of every draw gathered and scored against the pair's query
        ids, _ = negatives(x)
        return model.affinity.pair_scores_by_id(tf.stop_gradient(queries(x)), ids, model.V)

    parts = {}
    for name, function, xla in (("negatives drawn", negatives, False), ("pair queries", queries, False),
                                ("negatives scored", negative_scores, False), ("forward", forward, False),
                                ("forward + backward", forward_backward, False),
                                ("train_step", model.train_step, False), ("train_step, XLA", model.train_step, True)):
        compiled = tf.function(function, input_signature=signature, jit_compile=xla)
        for x in data:  # trace (and compile every batch shape)
            compiled(x)
        began = time.perf_counter()
        for _ in range(repeats):
            for x in data:
                compiled(x)
        parts[name] = 1000 * (time.perf_counter() - began) / (repeats * len(data))
    return parts


def op_times(space: bytes, steps: int) -> collections.Counter:
    """Milliseconds per step of each TensorFlow op that the profiler saw run on TensorFlow's
    compute threads (``tf_Compute`` lines of a serialised ``XSpace``), by op (``name:Type``);
    the executor's own events, which hold the ops, are left out."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals = collections.Counter()
    for plane in xplane_pb2.XSpace.FromString(space).planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if re.fullmatch(r"[^:]+:\w+", name):
                    totals[name] += event.duration_ps / 1e9 / steps
    return totals


def op_profile(train, pairs_per_batch: int) -> tuple[float, collections.Counter]:
    """``(wall milliseconds per train_step, op_times)`` over one epoch's batches: the model's
    ``train_step`` in a ``tf.function`` of its own (not Keras' training function), traced first."""
    model, batches = _model(train, pairs_per_batch)
    data, signature = _epoch_tensors(batches)
    compiled = tf.function(model.train_step, input_signature=signature)
    for x in data:
        compiled(x)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        began = time.perf_counter()
        for x in data:
            compiled(x)
        wall = 1000 * (time.perf_counter() - began) / len(data)
        tf.profiler.experimental.stop()
        space = next(Path(logdir).rglob("*.xplane.pb")).read_bytes()
    return wall, op_times(space, len(data))


def fit_rate(train, pairs_per_batch: int, epochs: int, rounds: int) -> tuple[float, float]:
    """Pairs per second of model.fit (TrainConfig's steps a call, as the library trains) through
    the generator pipeline (``TrainingBatches.dataset``) and through the same batches cached in
    memory: the median epoch over ``rounds`` fits of ``epochs`` epochs each, the two inputs taking
    turns (which goes first alternates), each fit's first epoch left out (it starts the input's
    iterator). Taking turns and the median keep the machine's changes of pace out of the ratio."""
    from _timing import EpochTimes

    model, batches = _model(train, pairs_per_batch, TrainConfig().steps_per_execution)
    steps = batches.steps_per_epoch()
    cached = batches.dataset(epochs=1).cache()
    for _ in cached:  # read through once: the cache is kept only when its input ends
        pass
    inputs = {"generator": batches.dataset(epochs=None), "cached": cached.repeat()}
    for data in inputs.values():  # trace the step
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    seconds = {name: [] for name in inputs}
    for round_ in range(rounds):
        for name in sorted(inputs, reverse=bool(round_ % 2)):
            times = EpochTimes()
            model.fit(inputs[name], epochs=epochs + 1, steps_per_epoch=steps, verbose=0, callbacks=[times])
            seconds[name] += times.seconds[1:]
    return tuple(batches.n_pairs / statistics.median(seconds[name]) for name in ("generator", "cached"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="epochs timed per fit (model.fit rates)")
    parser.add_argument("--rounds", type=int, default=4, help="fits of each input, taking turns")
    parser.add_argument("--ops", type=int, default=0, metavar="N",
                        help="also profile train_step and print the N ops and op types taking the most thread time")
    args = parser.parse_args()
    train = validation_split(load_dataset("ml-100k").train).train

    parts = step_parts(train, args.pairs_per_batch, args.repeats)
    whole = parts["train_step"]
    print(f"WSABIE step, {args.pairs_per_batch} pairs per batch (ml-100k validation split, d=64, 10 negatives)")
    for name, ms in parts.items():
        print(f"  {name:<20}{ms:8.2f} ms   {ms / whole:6.2f} of train_step")
    if args.ops:
        wall, ops = op_profile(train, args.pairs_per_batch)
        busy = sum(ops.values())
        by_type = collections.Counter()
        for name, ms in ops.items():
            by_type[name.rsplit(":", 1)[1]] += ms
        print(f"\ntrain_step under the profiler: {wall:.2f} ms a step; its ops ran {busy:.2f} ms of thread time "
              f"a step ({busy / wall:.2f} threads busy on average)")
        for title, counts in (("ops", ops), ("op types", by_type)):
            print(f"  the {args.ops} {title} with the most thread time, ms a step and share of all ops':")
            for name, ms in counts.most_common(args.ops):
                print(f"    {ms:7.2f} ms  {ms / busy:5.1%}  {name}")
    print(f"\nmodel.fit ({TrainConfig().steps_per_execution} steps a call), pairs/s: the median epoch of "
          f"{args.rounds} fits of each input, taking turns")
    sizes = (1024, args.pairs_per_batch, 4 * args.pairs_per_batch)
    rates = {size: fit_rate(train, size, args.epochs, args.rounds) for size in sizes}
    base = rates[args.pairs_per_batch][0]
    for size, (generator, cached) in rates.items():
        print(f"  {size:>6} pairs/batch: generator {generator:10,.0f} ({generator / base:4.2f}x)   "
              f"cached batches {cached:10,.0f} ({cached / generator:4.2f}x the generator)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
