"""tf.distribute: MirroredStrategy over 2 logical CPUs trains like the default strategy; every
training step compiles with XLA (jit_compile=True, the stand-in for TPU compilation) and computes
what the graph step computes."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from awe_tf.data import load_dataset
from awe_tf.evaluation import evaluate_model
from awe_tf.training import ModelConfig, TrainConfig, fit
from awe_tf.training.strategies import free_ports

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
# Mirrored against default: the replicas split each batch and draw other negatives, so the models
# differ, by more than a repeated run's spread (P@10 within 0.001 on Corel5k) and far less than
# what training adds over popularity (0.03 P@10 after these 3 epochs).
TOLERANCE = 0.01  # P@10
# What training prints of corel5k's U and V cut in two by --shard-bytes 4096 (d = 16).
SHARDED_IN_TWO = r"U 500 x 16 \(31 KB\): 2 shards of 250, 250 rows; V 374 x 16 \(23 KB\): 2 shards of 187, 187 rows"
ASYNC_TOLERANCE = 0.05  # P@1, parameter-server training: asynchronous workers apply stale gradients


def test_mirrored_strategy_on_two_cpus_matches_the_default():
    script = textwrap.dedent("""
        import json, numpy as np
        from awe_tf.training.strategies import make_strategy, split_cpu
        devices = split_cpu(2)
        from awe_tf.data import load_dataset
        from awe_tf.evaluation import evaluate_model
        from awe_tf.training import ModelConfig, TrainConfig, fit
        split = load_dataset("corel5k")
        out = {}
        for name in ("default", "mirrored"):
            strategy = make_strategy(name, devices=devices)
            config = TrainConfig(epochs=3, verbose=0, bucketing=False)
            model = fit(split.train, ModelConfig(dimension=32, num_negatives=10), config, strategy=strategy).model
            out[name] = evaluate_model(model.score, split)["metrics"]["precision@10"]
            out[name + "_replicas"] = strategy.num_replicas_in_sync
            if name == "mirrored":  # every replica holds the same U and V, inside the max-norm ball
                copies = [v.numpy() for v in model.U.table.values] + [v.numpy() for v in model.V.table.values]
                same = np.array_equal(copies[0], copies[1]) and np.array_equal(copies[2], copies[3])
                out["copies_equal"] = bool(same)
                out["max_norm"] = float(max(np.linalg.norm(c, axis=1).max() for c in copies))
        from awe_tf.evaluation import baseline_scores
        out["popularity"] = baseline_scores(split)["popularity"]["precision@10"]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["default_replicas"] == 1 and out["mirrored_replicas"] == 2
    assert out["copies_equal"] and out["max_norm"] <= 3.0 + 1e-4
    assert min(out["default"], out["mirrored"]) > out["popularity"] + 0.02, out
    assert abs(out["mirrored"] - out["default"]) <= TOLERANCE, out


@pytest.mark.parametrize("spec", [None, "sigmoid", "linear-sigmoid:alpha=1,beta=0.25", "topk:k=3", "lowrank",
                                  "matrix"])
def test_training_steps_compile_with_xla(spec):
    """XLA (the stand-in for TPU compilation) compiles the training step of WSABIE and of every
    jointly learnt affinity at the one static batch shape a TPU takes, and the compiled step
    computes what the graph step computes: from the same weights and batch, the same loss and the
    same updated U and V (up to float error)."""
    import tensorflow as tf

    from awe_tf.data.pipeline import TrainingBatches
    from awe_tf.training import build_model

    split = load_dataset("corel5k")
    batch, out = None, {}
    for jit in (False, True):
        model = build_model(split.train, ModelConfig(dimension=16, num_negatives=8, affinity=spec))
        model.compile(optimizer=tf.keras.optimizers.Adagrad(0.05), jit_compile=jit)
        if batch is None:
            prepared = split.train.with_matrices(X=model.prepare(split.train.X))
            batch = next(iter(TrainingBatches(prepared, pairs_per_batch=1024, bucketing=False).dataset(epochs=1)))
        logs = tf.function(model.train_step, jit_compile=jit)(batch)
        out[jit] = (float(logs["loss"]), model.U.table.numpy(), model.V.table.numpy())
    assert np.isfinite(out[False][0]) and out[True][0] == pytest.approx(out[False][0], rel=1e-5), out
    for table in (1, 2):
        np.testing.assert_allclose(out[True][table], out[False][table], atol=1e-5)


def test_fit_trains_with_xla():
    split = load_dataset("corel5k")
    result = fit(split.train, ModelConfig(dimension=16, num_negatives=8),
                 TrainConfig(epochs=2, verbose=0, bucketing=False, jit_compile=True))
    assert result.model.jit_compile and all(np.isfinite(result.history["loss"]))
    from awe_tf.evaluation import baseline_scores

    popularity = baseline_scores(split)["popularity"]["precision@10"]
    assert evaluate_model(result.model.score, split)["metrics"]["precision@10"] > popularity + 0.01


WORKER = json.dumps({"cluster": {"worker": ["localhost:1", "localhost:2"], "ps": ["localhost:3"]},
                     "task": {"type": "worker", "index": 0}})
CHIEF = WORKER.replace('"worker", "index"', '"chief", "index"')  # its workers and ps never start


@pytest.mark.parametrize("args, tf_config, message", [
    (["train", "--strategy", "multiworker"], None, "needs TF_CONFIG"),
    (["train", "--strategy", "parameter-server"], None, "needs TF_CONFIG"),
    (["cluster-task"], None, "a cluster task needs TF_CONFIG"),
    (["train", "--strategy", "multiworker"], '{"cluster": {"worker": [}', "TF_CONFIG is not valid JSON"),
    (["train", "--strategy", "multiworker"], '{"cluster": {"worker": ["localhost:1", "localhost:2"]}}',
     "TF_CONFIG names no task: this process's place in the cluster"),
    (["train", "--strategy", "multiworker"], WORKER.replace('"index": 0', '"index": 5'),
     "TF_CONFIG's task is worker 5, but its cluster lists 2 worker addresses: index 0 to 1"),
    (["train", "--strategy", "parameter-server"], WORKER, "TF_CONFIG's task must be chief, got 'worker'"),
    (["train", "--strategy", "parameter-server", "--jit-compile"], CHIEF, "without --jit-compile"),
    (["train", "--cpu-replicas", "2"], None, "--cpu-replicas splits the CPU for --strategy mirrored"),
    (["train", "--strategy", "mirrored", "--tpu", "grpc://10.0.0.2:8470"], None,
     "--tpu names the TPU of --strategy tpu (or auto)"),
    (["train", "--shard-bytes", "4096"], None, "--shard-bytes cuts the tables of --strategy parameter-server"),
    (["train", "--strategy", "mirrored", "--cpu-replicas", "2", "--jit-compile"], None,
     "--jit-compile: 2 CPU replicas"),
    (["train", "--strategy", "mirrored", "--cpu-replicas", "2", "--engine", "native"], None,
     "--engine native runs on this machine's CPUs, under no --strategy (mirrored)"),
    (["train", "--strategy", "mirrored", "--engine", "native"], None,  # one replica: the engine's steps are outside it
     "--engine native runs on this machine's CPUs, under no --strategy (mirrored): use --engine graph, or leave "
     "--strategy at its default"),
    (["train", "--strategy", "multiworker", "--engine", "native"], WORKER.replace(', "ps": ["localhost:3"]', ""),
     "under no --strategy (multiworker)"),  # refused before the cluster's wait (its other worker never starts)
])
def test_cli_strategies_fail_clearly(args, tf_config, message):
    """Each before the data is read: TensorFlow would hang without a word, or fail at the first
    step with a traceback."""
    env = {k: v for k, v in ENV.items() if k != "TF_CONFIG"} | ({"TF_CONFIG": tf_config} if tf_config else {})
    argv = [*args, *(["--epochs", "1"] if args[0] == "train" else [])]
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-1000:]
    assert "data:" not in proc.stdout


def test_a_coordinator_says_which_tasks_it_waits_for_and_stops_on_ctrl_c():
    """TensorFlow's own wait for a missing worker or parameter server says nothing and ignores
    Ctrl-C; the coordinator waits first, naming them, and stops on SIGINT."""
    import signal

    ports = free_ports(3)
    config = {"cluster": {"chief": [f"localhost:{ports[0]}"], "worker": [f"localhost:{ports[1]}"],
                          "ps": [f"localhost:{ports[2]}"]}, "task": {"type": "chief", "index": 0}}
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "train", "--strategy", "parameter-server",
                             "--epochs", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "TF_CONFIG": json.dumps(config), "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        import threading

        lines = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=120)  # TensorFlow's own wait says nothing: no line at all
        line = lines[0] if lines else ""
        assert f"waiting for worker 0 at localhost:{ports[1]}, ps 0 at localhost:{ports[2]}" in line, line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130 and "interrupted" in proc.stderr.read()
    finally:
        proc.kill()


def test_a_cluster_task_stops_on_ctrl_c():
    """A worker or parameter server started by hand says where it serves once it does, and stops
    on Ctrl-C, as that line says (TensorFlow's own wait in the server ignores it); a second task
    at its address stops with one line (its port taken)."""
    import signal

    ports = free_ports(3)
    config = {"cluster": {"chief": [f"localhost:{ports[0]}"], "worker": [f"localhost:{ports[1]}"],
                          "ps": [f"localhost:{ports[2]}"]}, "task": {"type": "ps", "index": 0}}
    proc = subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "cluster-task"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**ENV, "TF_CONFIG": json.dumps(config), "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        assert f"serving as ps 0 of a parameter-server cluster (TF_CONFIG), at localhost:{ports[2]}; stop with " \
               "Ctrl-C" in proc.stdout.readline()  # once it serves
        _wait_for_ports([ports[2]], [proc])  # serving
        second = subprocess.run([sys.executable, "-m", "awe_tf.cli", "cluster-task"], capture_output=True, text=True,
                                env={**ENV, "TF_CONFIG": json.dumps(config)}, timeout=120)  # its port taken
        assert second.returncode == 2 and "serving as" not in second.stdout, second.stdout
        assert f"error: this task's server could not start at localhost:{ports[2]} (" in second.stderr
        assert "Traceback" not in second.stderr and "give this task another port in TF_CONFIG" in second.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130 and "interrupted" in proc.stderr.read()
    finally:
        proc.kill()


def _wait_for_ports(ports, processes, timeout=120):
    """Block until a server listens on every port (or fail if one of the processes died)."""
    import socket
    import time

    deadline = time.time() + timeout
    for port in ports:
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            dead = [p for p in processes if p.poll() is not None]
            assert not dead and time.time() < deadline, dead[0].stderr.read()[-2000:] if dead else "timeout"
            time.sleep(0.2)


def _start_workers(out, epochs, dimensions=(16, 16), outs=None):
    """Two `awe-tf train --strategy multiworker` processes on loopback (TF_CONFIG), into ``out``
    (or each into its own of ``outs``)."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index, (dimension, own) in enumerate(zip(dimensions, outs or (out, out), strict=True)):
        args = [sys.executable, "-m", "awe_tf.cli", "train", "--strategy", "multiworker", "--epochs", str(epochs),
                "--dimension", str(dimension), "--negatives", "10", "--no-validate", "--no-baselines", "--verbose",
                "2", "-o", str(own)]
        env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return workers


def _finish(workers, timeout=400):
    results = []
    for worker in workers:
        try:
            stdout, stderr = worker.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            raise AssertionError("a worker hung") from None
        results.append((worker.returncode, stdout, stderr))
    return results


def test_multiworker_workers_given_different_settings_are_refused_by_name(tmp_path):
    """Each worker runs its own command: one that differs is named, on every worker, before any
    model is built."""
    results = _finish(_start_workers(tmp_path / "two", epochs=1, dimensions=(16, 32)), timeout=300)
    for (code, _stdout, stderr), (theirs, own) in zip(results, ((32, 16), (16, 32)), strict=True):
        assert code == 2, stderr[-3000:]
        assert f"model.dimension = {theirs} where this worker has {own}" in stderr, stderr[-3000:]
        assert "Traceback" not in stderr, stderr[-3000:]
    assert not (tmp_path / "two" / "final").exists()


def test_multiworker_workers_of_folders_holding_other_epochs_are_refused(tmp_path):
    """Workers given folders of their own, one holding a finished epoch (a run resumed after an
    interruption), would go on from other epochs and fail inside a collective: refused on every
    worker, naming the epochs and the shared --output."""
    import json as json_

    outs = (tmp_path / "own0", tmp_path / "own1")
    (outs[0] / "final" / "checkpoints").mkdir(parents=True)
    (outs[0] / "final" / "checkpoints" / "state.json").write_text(json_.dumps({"epoch": 1}))
    results = _finish(_start_workers(None, epochs=2, outs=outs), timeout=300)
    for code, _stdout, stderr in results:
        assert code == 2 and "Traceback" not in stderr, stderr[-3000:]
        assert "the workers' --output folders hold other runs: the worker of replica " in stderr, stderr[-3000:]
        assert "final/checkpoints = " in stderr and "give every worker one shared --output" in stderr, stderr[-3000:]


def test_multiworker_trains_like_one_worker_and_survives_a_killed_worker(tmp_path):
    import time

    single = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--epochs", "3", "--dimension", "16",
                             "--negatives", "10", "--no-validate", "--no-baselines", "-o", str(tmp_path / "one")],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    results = _finish(_start_workers(tmp_path / "two", epochs=3))
    for code, _stdout, stderr in results:
        assert code == 0, stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["metrics"]["precision@10"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["metrics"]["precision@10"]
    from awe_tf.models import AWEModel

    chief, worker = (AWEModel.load_model(tmp_path / "two" / where / "model") for where in ("", ".worker-1"))
    for table in ("U", "V"):  # the workers hold one model: the same weights, to the bit
        np.testing.assert_array_equal(getattr(chief, table).table.numpy(), getattr(worker, table).table.numpy())
    assert abs(one - two) <= TOLERANCE, (one, two)

    # Stop worker 1 with SIGTERM (kill, a scheduler's preemption) once the chief has checkpointed an
    # epoch: it stops (TensorFlow's cluster runtime would take the signal and go on), saying how to
    # go on; the chief must fail, not hang; and the same command run again resumes from that
    # checkpoint and finishes.
    out = tmp_path / "killed"
    workers = _start_workers(out, epochs=30)
    state = out / "final" / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline and workers[0].poll() is None:
        time.sleep(0.2)
    assert state.exists(), workers[0].communicate()[1][-3000:]
    workers[1].terminate()
    (code, _, stderr), (stopped, _, said) = _finish(workers, timeout=300)  # neither hangs (or this times out)
    assert stopped == 143 and "terminated (SIGTERM): the same command again goes on from its last finished epoch" \
        in said, said[-2000:]
    assert code == 2 and "error: a task of the cluster stopped answering (" in stderr, stderr[-2000:]
    assert "start it again, then each worker's command, which goes on from its last finished epoch" in stderr
    cause = stderr.split("stopped answering (", 1)[1].split("): start it again", 1)[0]
    assert cause and "Detected at node" not in cause and cause != "Graph execution error:", stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    done = json.loads(state.read_text())["epoch"]
    results = _finish(_start_workers(out, epochs=done + 2))
    for code, _stdout, stderr in results:
        assert code == 0, stderr[-3000:]
    assert f"Resuming from the checkpoint after epoch {done}" in results[0][1]
    assert json.loads(state.read_text())["epoch"] == done + 2
    assert (out / "metrics.json").exists()


def test_a_run_finds_its_checkpoints_without_walking_the_logs_other_workers_change(tmp_path, monkeypatch):
    """A multi-worker run reads its checkpoints' times while another worker deletes its
    TensorBoard folder (logs/workertemp_1): a walk of the stage found it gone and the worker
    stopped (FileNotFoundError). The checkpoints are looked up where fit writes them, never under
    logs/ (a listing of any folder there fails here, as the vanished one did)."""
    import json as json_module

    from awe_tf import runs

    for place in ("validation", "final", "final/step-1", "auto/WSABIE/final", "auto/knn_k=20/step-1"):
        (tmp_path / place / "checkpoints").mkdir(parents=True)
        (tmp_path / place / "checkpoints" / "state.json").write_text(json_module.dumps({"seconds": 2.0}))
    for place in ("final", "auto/WSABIE/final", "auto/knn_k=20"):
        (tmp_path / place / "logs" / "workertemp_1" / "train").mkdir(parents=True)
    real = os.scandir

    def scandir(path="."):
        if "logs" in str(path):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    times = runs.checkpoint_times(tmp_path)
    assert sorted(str(state.relative_to(tmp_path)) for state in times) == [
        "final/checkpoints/state.json", "final/step-1/checkpoints/state.json", "validation/checkpoints/state.json"]
    assert sorted(runs.trained_seconds(tmp_path)) == [  # what a run publishes records auto's stages' too
        "auto/WSABIE/final/checkpoints/state.json", "auto/knn_k=20/step-1/checkpoints/state.json",
        *sorted(str(state.relative_to(tmp_path)) for state in times)]


def test_parameter_server_cluster_of_local_processes_trains_sharded_tables(tmp_path):
    """Two workers and two parameter servers (`awe-tf cluster-task`) and a coordinator
    (`awe-tf train --strategy parameter-server`), all on loopback, as on a real cluster."""
    picked = free_ports(5)
    ports = {"chief": picked[:1], "worker": picked[1:3], "ps": picked[3:]}
    cluster = {job: [f"localhost:{p}" for p in hosts] for job, hosts in ports.items()}

    def env(job, index):
        return {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": job, "index": index}})}

    tasks = [subprocess.Popen([sys.executable, "-m", "awe_tf.cli", "cluster-task"], env=env(job, index),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for job in ("worker", "ps") for index in range(2)]
    common = ["--epochs", "3", "--dimension", "16", "--negatives", "10", "--no-validate", "--no-baselines"]
    try:
        _wait_for_ports(ports["worker"] + ports["ps"], tasks)
        coordinator = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--strategy", "parameter-server",
                                      "--shard-bytes", "4096", *common, "-o", str(tmp_path / "ps")],
                                     capture_output=True, text=True, env=env("chief", 0), timeout=600)
    finally:
        for task in tasks:
            task.kill()
    assert coordinator.returncode == 0, coordinator.stderr[-3000:]
    assert re.search(SHARDED_IN_TWO, coordinator.stdout), coordinator.stdout[-2000:]
    assert "strategy: ParameterServerStrategyV2, a replica on each worker" in coordinator.stdout
    assert "Could not get Model metric results" not in coordinator.stderr
    single = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", *common[:-1], "-o", str(tmp_path / "one")],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    ps = json.loads((tmp_path / "ps" / "metrics.json").read_text())["metrics"]["precision@1"]
    report = json.loads((tmp_path / "one" / "metrics.json").read_text())
    one, popularity = report["metrics"]["precision@1"], report["baselines"]["popularity"]["precision@1"]
    # Workers update the parameter servers asynchronously (stale gradients), more so on a loaded machine (the
    # suite's other worker), so the margins are wider than for one process.
    assert ps > popularity + 0.02 and abs(ps - one) <= ASYNC_TOLERANCE, (ps, one, popularity)


def test_sharded_tables_train_exactly_as_unsharded_ones():
    """One worker (no asynchrony), in-process cluster: tables cut into shards on two parameter
    servers must give the very model an unsharded table gives (initialisation, lookups,
    gradients and max-norm projection all shard-aware); so must iterative k-NN, whose steps carry
    Adagrad's accumulators shard by shard."""
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import tensorflow as tf
        from awe_tf.distribute import shards, sharding_text
        from awe_tf.training.strategies import local_cluster, parameter_server_strategy
        from awe_tf.data import load_dataset
        from awe_tf.evaluation import evaluate_model
        from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative
        from awe_tf.baselines import Popularity
        split = load_dataset("corel5k")
        out = {"popularity": evaluate_model(Popularity().fit(split.train).score, split)["metrics"]["precision@1"]}
        ports = json.loads(sys.argv[1])
        runs = (("sharded", 4096, "sigmoid"), ("whole", 1 << 30, "sigmoid"), ("knn sharded", 4096, "knn:k=10"),
                ("knn whole", 1 << 30, "knn:k=10"))
        for n, (name, shard_bytes, affinity) in enumerate(runs):
            cluster = local_cluster(workers=1, parameter_servers=2, ports=ports[3 * n:3 * n + 3])
            strategy = parameter_server_strategy(cluster, shard_bytes)
            model_config = ModelConfig(dimension=16, num_negatives=10, affinity=affinity)
            train_config = TrainConfig(epochs=4 if affinity == "sigmoid" else 2, verbose=0, bucketing=False)
            with strategy.scope():  # as awe-tf train runs: every step under the cluster's strategy
                result = fit(split.train, model_config, train_config) if affinity == "sigmoid" else \
                    fit_iterative(split.train, model_config, train_config, iterations=1)[0]
            out[name] = {"shards": shards(result.model.U.table),
                         "cut": sharding_text({"U": result.model.U.table}),
                         "p1": evaluate_model(result.model.score, split)["metrics"]["precision@1"],
                         "U": tf.convert_to_tensor(result.model.U.table).numpy().round(5).tolist()}
            if name in ("sharded", "knn sharded"):  # exported from Python as it is (tables on the cluster)
                import tempfile
                from awe_tf import serving
                with tempfile.TemporaryDirectory() as folder:
                    with strategy.scope():  # inside the scope, the copy would be sharded again: said
                        try:
                            serving.export(result.model, folder, "m", flavour="portable", log=None)
                        except ValueError as error:
                            out[name]["in scope"] = str(error)
                    served = serving.load(serving.export(result.model, folder, "m", flavour="portable", log=None))
                    rows = split.test.X[:20]
                    out[name]["served"] = bool(np.array_equal(served(rows, k=5)["label_ids"],
                                                              result.model.top_k(rows, 5)[0]))
        # a model given to fit unadapted is adapted to its data under parameter servers too
        from awe_tf.models import AWEModel
        strategy = parameter_server_strategy(local_cluster(workers=1, parameter_servers=2, ports=ports[12:15]), 4096)
        with strategy.scope():
            given = AWEModel(split.train.n_features, split.train.n_labels, dimension=4)
            fit(split.train, train_config=TrainConfig(epochs=1, verbose=0, bucketing=False), model=given)
        out["given adapted"] = bool(given.transform.adapted)
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(free_ports(15))], capture_output=True, text=True,
                          env=ENV, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sharded"]["shards"] == 2 and out["whole"]["shards"] == 1 and out["sharded"]["served"]
    assert "exported outside the strategy's scope" in out["sharded"]["in scope"]
    rows = len(out["whole"]["U"])  # what training prints of the cut (corel5k's features and the bias feature)
    size = f"{rows * 16 * 4 / 1024:.0f} KB"
    assert out["sharded"]["cut"] == f"U {rows} x 16 ({size}): 2 shards of {(rows + 1) // 2}, {rows // 2} rows", out
    assert out["whole"]["cut"] == f"U {rows} x 16 ({size}): 1 shard", out
    np.testing.assert_allclose(out["sharded"]["U"], out["whole"]["U"], atol=1e-4)
    assert out["sharded"]["p1"] == out["whole"]["p1"], (out["sharded"]["p1"], out["whole"]["p1"])
    assert out["sharded"]["p1"] > out["popularity"] + 0.03, (out["sharded"]["p1"], out["popularity"])
    assert out["knn sharded"]["shards"] == 2 and out["knn sharded"]["served"]  # G's reference set exported too
    np.testing.assert_allclose(out["knn sharded"]["U"], out["knn whole"]["U"], atol=1e-4)
    assert out["knn sharded"]["p1"] == out["knn whole"]["p1"]
    assert out["given adapted"]


def test_iterative_neighbour_build_is_shared_out_among_workers(tmp_path):
    """The k-NN (and cluster) G of the training set, built by two workers each doing half the rows,
    equals the one-process build on both workers; rows without a label (every seventh here) are
    no one's neighbour and get an empty G row, as fit places them."""
    script = textwrap.dedent("""
        import os, sys
        import scipy.sparse as sp
        import tensorflow as tf
        from awe_tf.training.strategies import make_strategy
        strategy = make_strategy("multiworker") if "TF_CONFIG" in os.environ else tf.distribute.get_strategy()
        from awe_tf import distribute
        from awe_tf.data import load_dataset
        from awe_tf.models import AWEModel
        from awe_tf.training.fit import _training_context
        split = load_dataset("corel5k")
        Y = split.train.Y.tolil()
        Y[::7] = 0
        train = split.train.with_matrices(Y=sp.csr_matrix(Y))
        for spec in ("knn:k=10", "cluster:leaves=16,top=30"):
            model = AWEModel(train.n_features, train.n_labels, dimension=16, affinity=spec)
            model.affinity.set_reference(model.U.table.numpy(), model.prepare(train.X), train.Y, True,
                                         label_embeddings=model.V.table.numpy())
            with strategy.scope():
                share = distribute.worker_share()
            G = _training_context(model, train, strategy)
            sp.save_npz(sys.argv[1] + spec.split(":")[0] + ".npz", G)
            print(share)
    """)
    one = subprocess.run([sys.executable, "-c", script, str(tmp_path / "one-")], capture_output=True, text=True,
                         env=ENV, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"w{i}-")], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                     "task": {"type": "worker", "index": i}})})
               for i in range(2)]
    results = _finish(workers, timeout=300)
    for i, (code, stdout, stderr) in enumerate(results):
        assert code == 0, stderr[-3000:]
        assert f"({i}, 2)" in stdout  # each worker did its own half
    import scipy.sparse as sp

    for name in ("knn", "cluster"):
        reference = sp.load_npz(tmp_path / f"one-{name}.npz")
        rows = reference.getnnz(axis=1)
        assert reference.shape[0] == 4500 and not rows[::7].any() and rows[1::7].all(), name
        for i in range(2):
            shared = sp.load_npz(tmp_path / f"w{i}-{name}.npz")
            assert shared.shape == reference.shape and abs(shared - reference).max() == 0, name


def test_tpu_embedding_tables_train_as_plain_tables_off_a_tpu(tmp_path):
    """U and V inside tfrs TPUEmbedding layers (the TPU layout): off a TPU the layer looks rows up
    from ordinary variables, so the model starts, trains and scores exactly as with plain tables,
    and round-trips through save and load."""
    from awe_tf.models import AWEModel
    from awe_tf.training import build_model

    split = load_dataset("corel5k")
    plain_config = ModelConfig(dimension=16, num_negatives=10)
    tpu_config = ModelConfig(dimension=16, num_negatives=10, tpu_embedding=True)
    fresh = build_model(split.train, tpu_config)
    assert type(fresh.U.tpu_layer).__name__ == "TPUEmbedding" and fresh.U.whole_table() is not None
    np.testing.assert_array_equal(fresh.V.table.numpy(), build_model(split.train, plain_config).V.table.numpy())
    train_config = TrainConfig(epochs=2, verbose=0)
    plain = fit(split.train, plain_config, train_config).model
    tpu = fit(split.train, tpu_config, train_config).model
    np.testing.assert_allclose(tpu.U.table.numpy(), plain.U.table.numpy(), atol=1e-5)
    np.testing.assert_allclose(tpu.V.table.numpy(), plain.V.table.numpy(), atol=1e-5)
    assert np.linalg.norm(tpu.V.table.numpy(), axis=1).max() <= tpu.max_norm + 1e-5  # still projected
    p1 = evaluate_model(tpu.score, split)["metrics"]["precision@1"]
    assert p1 == pytest.approx(evaluate_model(plain.score, split)["metrics"]["precision@1"], abs=0.01)
    tpu.save_model(tmp_path / "m")
    loaded = AWEModel.load_model(tmp_path / "m")
    assert loaded.tpu_embedding
    np.testing.assert_array_equal(loaded.score(split.test.X[:50]), tpu.score(split.test.X[:50]))


def test_mirrored_on_a_machine_without_gpus_says_how_to_split_the_cpu(tmp_path):
    """One replica on the CPU is what mirrored gives without GPUs: the strategy line says so, and
    names --cpu-replicas (the missing file then stops the run, after that line)."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("mirrored trains on the GPUs here")
    proc = subprocess.run([sys.executable, "-m", "awe_tf.cli", "train", "--strategy", "mirrored", "--train",
                           str(tmp_path / "none.csv"), "-o", str(tmp_path / "run")], capture_output=True, text=True,
                          env={k: v for k, v in ENV.items() if k != "TF_CONFIG"}, timeout=300)
    assert proc.returncode == 2 and "none.csv" in proc.stderr, proc.stderr[-500:]
    assert "strategy: MirroredStrategy, 1 replica (no GPU here: --cpu-replicas N splits the CPU into N)" in proc.stdout


def test_a_tpu_address_without_its_scheme_is_said_to_need_one():
    """TensorFlow reads "host:port" as a Cloud TPU's name and fails on looking it up: the refusal
    says how an address is given."""
    from awe_tf.training.strategies import make_strategy

    with pytest.raises(ValueError, match=r"no TPU found at 127.0.0.1:1: .* \(an address is given as grpc://HOST:PORT"):
        make_strategy("tpu", tpu="127.0.0.1:1")
