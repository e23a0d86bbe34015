"""Where a WSABIE training step's time goes (ml-100k validation split, d = 64, 10 negatives).

Times, per step of one epoch's batches (already built, as tensors), parts of the forward pass
(the negatives drawn and checked against the example's positives; the pairs' queries x^T U; the
negatives scored, their draws and queries included), the forward pass, the forward and backward
pass, and the whole ``train_step`` (optimiser and max-norm projection included), with and
without XLA; then pairs per second of ``model.fit`` for several batch sizes, through
the generator pipeline and through cached batches. Each figure is a share of the whole step or
a ratio to the default batch size, measured in the same run.

    AWE_DATA_DIR=../shared/data python benchmarks/warp_step_profile.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from awe_tf.data import load_dataset, validation_split  # noqa: E402
from awe_tf.data.pipeline import TrainingBatches  # noqa: E402
from awe_tf.training import ModelConfig, TrainConfig, build_model  # noqa: E402


def _model(train, pairs_per_batch):
    model = build_model(train, ModelConfig(dimension=64, num_negatives=10))
    config = TrainConfig(learning_rate=0.1, pairs_per_batch=pairs_per_batch)
    model.compile(optimizer=config.make_optimizer(), steps_per_execution=config.steps_per_execution)
    return model, TrainingBatches(train.with_matrices(X=model.prepare(train.X)), pairs_per_batch)


def step_parts(train, pairs_per_batch: int, repeats: int) -> dict:
    """Milliseconds per step of each part, eager-free (tf.function), with and without XLA."""
    model, batches = _model(train, pairs_per_batch)
    data = [{k: tf.constant(v) for k, v in b.items()} for b in batches.batches(0)]
    signature = [{k: tf.TensorSpec([None, None], v.dtype) for k, v in data[0].items()}]

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


def fit_rate(train, pairs_per_batch: int, epochs: int) -> tuple[float, float]:
    """Pairs per second of model.fit after a first (tracing) epoch: generator and cached input."""
    model, batches = _model(train, pairs_per_batch)
    steps = batches.steps_per_epoch()
    model.fit(batches.dataset(epochs=None), epochs=1, steps_per_epoch=steps, verbose=0)
    began = time.perf_counter()
    model.fit(batches.dataset(epochs=None), epochs=epochs, steps_per_epoch=steps, verbose=0)
    generator = batches.n_pairs * epochs / (time.perf_counter() - began)
    cached = batches.dataset(epochs=1).cache().repeat()
    for _ in cached.take(steps):
        pass
    began = time.perf_counter()
    model.fit(cached, epochs=epochs, steps_per_epoch=steps, verbose=0)
    return generator, batches.n_pairs * epochs / (time.perf_counter() - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    train = validation_split(load_dataset("ml-100k").train).train

    parts = step_parts(train, args.pairs_per_batch, args.repeats)
    whole = parts["train_step"]
    print(f"WSABIE step, {args.pairs_per_batch} pairs per batch (ml-100k validation split, d=64, 10 negatives)")
    for name, ms in parts.items():
        print(f"  {name:<20}{ms:8.2f} ms   {ms / whole:6.2f} of train_step")
    print("\nmodel.fit, pairs/s after the first epoch")
    sizes = (1024, args.pairs_per_batch, 4 * args.pairs_per_batch)
    rates = {size: fit_rate(train, size, args.epochs) for size in sizes}
    base = rates[args.pairs_per_batch][0]
    for size, (generator, cached) in rates.items():
        print(f"  {size:>6} pairs/batch: generator {generator:10,.0f} ({generator / base:4.2f}x)   "
              f"cached batches {cached:10,.0f} ({cached / generator:4.2f}x the generator)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
