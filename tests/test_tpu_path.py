"""The TPU path, checked on a CPU without pretending a TPU ran: the code that chooses the TPU
variants is driven by ``is_tpu`` (patched here to say yes), and what it chooses must be what a
TPU needs: the tensor-only input pipeline, one static batch shape divisible by the replicas,
an XLA-compiled step on exactly those shapes, and a clear refusal of the embedding engine."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from awe_tf.data import load_dataset
from awe_tf.data.pipeline import TrainingBatches
from awe_tf.training import ModelConfig, TrainConfig, build_model, fit

fit_module = importlib.import_module("awe_tf.training.fit")  # the module (the package exports the function)


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")


def _static(spec) -> bool:
    return all(s.shape.is_fully_defined() for s in tf.nest.flatten(spec))


def test_a_tpu_gets_the_tensor_pipeline_with_one_static_shape(corel, monkeypatch):
    batches = TrainingBatches(corel.train, pairs_per_batch=1000, bucketing=False, replicas=8)
    assert batches.batch_size % 8 == 0
    data = batches.tensor_dataset()
    assert _static(data.element_spec)
    shapes = {tuple(s.shape) for s in tf.nest.flatten(data.element_spec)}
    assert {shape[0] for shape in shapes} == {batches.batch_size}
    steps = batches.steps_per_epoch()
    first = [b["label_ids"].shape for b in data.take(steps + 1)]  # the last, padded batch of epoch 0 too
    assert len(set(first)) == 1
    calls = []
    monkeypatch.setattr(TrainingBatches, "dataset", lambda self, *a, **k: calls.append("generator"))
    monkeypatch.setattr(fit_module, "is_tpu", lambda strategy: True)
    chosen = fit_module.training_input(batches, tf.distribute.get_strategy())
    assert not calls and _static(chosen.element_spec)  # never the Python generator


def test_the_xla_step_trains_on_the_tpu_batch_shapes(corel, monkeypatch):
    used = []
    tensor_dataset = TrainingBatches.tensor_dataset

    def spy(self, *args, **kwargs):
        used.append((self.bucketing, self.batch_size))
        return tensor_dataset(self, *args, **kwargs)

    monkeypatch.setattr(TrainingBatches, "tensor_dataset", spy)
    monkeypatch.setattr(fit_module, "is_tpu", lambda strategy: True)
    config = ModelConfig(dimension=8, num_negatives=5)
    before = build_model(corel.train, config).U.table.numpy()
    # bucketing asked for, as the CLI's --strategy auto leaves it: the TPU path turns it off itself
    result = fit(corel.train, config, TrainConfig(epochs=1, verbose=0, jit_compile=True, bucketing=True))
    assert used and used[0][0] is False
    after = result.model.U.table.numpy()
    assert np.isfinite(after).all() and not np.array_equal(before, after)
    assert np.isfinite(result.history["loss"]).all()


def test_the_tpu_embedding_engine_is_refused_on_a_tpu(corel, monkeypatch):
    from awe_tf.layers import towers

    monkeypatch.setattr(towers, "is_tpu", lambda strategy: True)
    with pytest.raises(ValueError, match="not supported on a TPU.*replicated TPU variables"):
        build_model(corel.train, ModelConfig(dimension=8, tpu_embedding=True))


def test_auto_falls_back_from_a_tpu_name_it_cannot_resolve_and_says_why():
    """``TPU_NAME`` naming a TPU that no lookup resolves (off Google's cloud) made ``auto`` fail with
    a URLError instead of falling back to the GPUs or this CPU."""
    import os
    import subprocess
    import sys

    script = ("from awe_tf.training.strategies import make_strategy\n"
              "strategy = make_strategy('auto', log=print)\n"
              "print(type(strategy).__name__, strategy.num_replicas_in_sync)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TPU_NAME": "no-such-tpu", "TF_CPP_MIN_LOG_LEVEL": "3",
                               "CUDA_VISIBLE_DEVICES": ""})  # no GPU: auto's last fallback, this CPU
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("not on a TPU (") and "tpu='local'" in lines[0], proc.stdout
    assert lines[-1] == "_DefaultDistributionStrategy 1", proc.stdout


def test_a_tpu_named_is_that_tpu_or_an_error_and_an_address_nothing_answers_at_says_so():
    """``auto`` with a TPU named does not fall back to another device without a word, and a
    grpc:// address nothing listens at is refused at once (TensorFlow would wait for ever, deaf
    to Ctrl-C); strategy 'default' inside another strategy's scope, which would be the scope's, and
    fit given one strategy inside another's scope, are refused by name."""
    from awe_tf.training.strategies import free_ports, make_strategy

    address = f"grpc://localhost:{free_ports(1)[0]}"
    for name in ("tpu", "auto"):
        with pytest.raises(ValueError, match=f"no TPU found at {address}: nothing answers at that address"):
            make_strategy(name, tpu=address, log=print)
    mirrored, default = tf.distribute.MirroredStrategy(["/cpu:0"]), tf.distribute.get_strategy()
    emotions, small = load_dataset("emotions").train, (ModelConfig(dimension=4), TrainConfig(epochs=1, verbose=0))
    with mirrored.scope():
        for name in ("default", "auto"):
            with pytest.raises(ValueError, match=f"strategy '{name}' asked for inside the scope of MirroredStrategy"):
                make_strategy(name)
        with pytest.raises(ValueError, match="fit: strategy _DefaultDistributionStrategy given inside the scope of "
                                             "another strategy, MirroredStrategy"):
            fit(emotions, *small, strategy=default)
        for given in (None, mirrored):  # the scope's own strategy, or none: trained under the scope's
            assert fit(emotions, *small, strategy=given).model.distribute_strategy is mirrored
    assert make_strategy("default") is default


def test_on_a_tpu_vm_the_tpu_is_looked_for_as_local_first(monkeypatch):
    """Colab's TPU runtimes are TPU VMs, where TensorFlow's own lookup (tpu='') asks for a TPU's
    name: on a machine that looks like one, ``tpu`` and ``auto`` try the VM's own TPU (``local``)
    first, then the environment's; here, on a CPU, both fail and ``auto`` falls back to the CPU."""
    from awe_tf.training import strategies

    tried = []

    class Resolver:  # records the addresses asked for, and finds no TPU at any
        def __init__(self, tpu):
            tried.append(tpu)
            raise ValueError(f"no TPU at {tpu!r}")

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", Resolver)
    monkeypatch.setattr(strategies, "tpu_vm", lambda: True)
    for variable in strategies.TPU_NAMED_BY:
        monkeypatch.delenv(variable, raising=False)
    said = []
    strategy = strategies.make_strategy("auto", log=said.append)
    assert tried == ["local", ""] and strategy is tf.distribute.get_strategy()
    assert said == ["not on a TPU (no TPU found (tried this TPU VM's own, tpu='local', and the environment's): "
                    "no TPU at 'local')"]
    tried.clear()
    monkeypatch.setenv("TPU_NAME", "my-tpu")  # a TPU the environment names is looked for first
    with pytest.raises(ValueError, match="no TPU at ''"):
        strategies.make_strategy("tpu")
    assert tried == ["", "local"]
    monkeypatch.delenv("TPU_NAME")
    tried.clear()
    monkeypatch.setattr(strategies, "tpu_vm", lambda: False)
    with pytest.raises(ValueError, match=r"^no TPU found: no TPU at '' \(name one: awe-tf train --tpu ADDRESS"):
        strategies.make_strategy("tpu")
    monkeypatch.setattr(strategies, "_listening", lambda address: address == "10.0.0.2:8470")  # something answers
    with pytest.raises(ValueError, match=r"^no TPU found at grpc://10.0.0.2:8470: no TPU at 'grpc://10.0.0.2:8470'$"):
        strategies.make_strategy("tpu", tpu="grpc://10.0.0.2:8470")
    assert tried == ["", "grpc://10.0.0.2:8470"]  # an address given is the one tried
