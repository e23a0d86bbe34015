"""benchmarks/warp_step_profile.py's op profile: TensorFlow's profiler output read back per op."""

import os
import sys
from pathlib import Path

import pytest

from tests.test_pipeline import toy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


def test_op_times_sum_each_ops_events_on_the_compute_threads_per_step():
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    from warp_step_profile import op_times

    space = xplane_pb2.XSpace()
    plane = space.planes.add(name="/host:CPU")
    names = {1: "warp/V/embedding_lookup:ResourceGather", 2: "ExecutorState::Process", 3: "ParallelFor",
             4: "mul:Mul"}
    for key, name in names.items():
        plane.event_metadata[key].name = name
    for thread, events in (("tf_Compute/1", [(1, 3.0), (2, 9.0), (4, 1.0)]), ("tf_Compute/2", [(1, 1.0), (3, 5.0)]),
                           ("python", [(1, 7.0)])):
        line = plane.lines.add(name=thread)
        for key, ms in events:
            line.events.add(metadata_id=key, duration_ps=int(ms * 1e9))
    times = op_times(space.SerializeToString(), steps=2)
    # both compute threads' gathers, not the python thread's; the executor's own events left out
    assert times == pytest.approx({"warp/V/embedding_lookup:ResourceGather": 2.0, "mul:Mul": 0.5})


def test_op_profile_reads_a_real_train_step():
    from warp_step_profile import op_profile

    wall, ops = op_profile(toy("recommendation", n=60, n_items=40), pairs_per_batch=64)
    assert wall > 0 and ops and all(ms > 0 for ms in ops.values())
    assert any(name.endswith(":ResourceGather") for name in ops)  # the rows of U and V looked up
    assert sum(ops.values()) < (os.cpu_count() or 1) * wall  # thread time: no more than every core's


def test_fit_rate_times_both_inputs_in_turns(monkeypatch):
    import warp_step_profile

    from awe_tf.config import TrainConfig

    fits, made = [], {}
    original = warp_step_profile._model

    def model(train, pairs_per_batch, steps_per_execution=1):
        built, batches = original(train, pairs_per_batch, steps_per_execution)
        made["steps a call"] = int(built.steps_per_execution.numpy())
        dataset, fit = batches.dataset, built.fit

        def recorded(epochs=None, **kwargs):  # the generator pipeline (forever), or the one the cache reads
            made["forever" if epochs is None else "once"] = dataset(epochs=epochs, **kwargs)
            return made["forever" if epochs is None else "once"]

        def counted(data, **kwargs):
            fits.append(data)
            return fit(data, **kwargs)

        batches.dataset, built.fit = recorded, counted
        return built, batches

    monkeypatch.setattr(warp_step_profile, "_model", model)
    rates = warp_step_profile.fit_rate(toy("recommendation", n=60, n_items=40), 64, epochs=1, rounds=2)
    assert len(rates) == 2 and all(rate > 0 for rate in rates)
    assert made["steps a call"] == TrainConfig().steps_per_execution  # as the library trains
    generator = made["forever"]
    which = ["generator" if data is generator else "cached" for data in fits]
    # each input traced once, then the two take turns, which goes first alternating
    assert which == ["generator", "cached", "cached", "generator", "generator", "cached"]
    assert len({id(data) for data in fits}) == 2
