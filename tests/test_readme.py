"""The README's Python example runs as printed."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "precision@1" in out and (tmp_path / "corel-model" / "awe_model.json").exists()


def test_readme_own_file_example_runs(tmp_path, monkeypatch, capsys):
    """The "your own file" block, as printed, on a clicks.csv of users who each draw most of
    their items from one of a few groups (so the model has something to learn)."""
    import numpy as np

    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "clicks.csv" in b)
    rng = np.random.default_rng(0)
    lines = ["user,item"]
    for user in range(150):
        group = user % 4
        items = rng.choice(20, 16, replace=False) + 20 * group  # 5 held out, 5 more for validation, 6 to train
        lines += [f"u{user},item-{item}" for item in items] + [f"u{user},item-{rng.integers(80, 88)}"]
    (tmp_path / "clicks.csv").write_text("\n".join(dict.fromkeys(lines)) + "\n")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "precision@10" in out and "validation precision@10" in out
    assert (tmp_path / "models" / "clicks" / "1" / "saved_model.pb").exists()
    assert "item-" in out.splitlines()[-1]  # the served answers' labels are the file's item names


def test_readme_colab_strategy_cell_falls_back_to_the_cpu(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    cell = next(b for b in blocks if 'make_strategy("auto")' in b)
    namespace = {}
    exec(compile(cell, "README.md", "exec"), namespace)
    assert capsys.readouterr().out.split()[:2] == ["_DefaultDistributionStrategy", "1"]
    assert namespace["result"].history["loss"][-1] < namespace["result"].history["loss"][0]


def test_docs_link_only_to_files_in_the_repository():
    root = README.parent
    for doc in [README, root / "export" / "README.md", root / "docs" / "protocols.md"]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path = (doc.parent / target).resolve()
            assert path.exists() and root in path.parents, f"{doc.name} links to {target}"


def test_readme_examples_write_to_their_own_directories():
    lines = [line for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S) for line in block.splitlines()
             if line.strip().startswith("awe-tf train")]
    outputs = [re.search(r"(?:-o|--output) (\S+)", line) for line in lines]
    assert all(outputs), [line for line, found in zip(lines, outputs, strict=True) if not found]
    assert len({found.group(1) for found in outputs}) == len(outputs)


def test_gitignore_covers_runs_and_exports():
    ignored = (README.parent / ".gitignore").read_text().split()
    assert "runs/" in ignored and "/models/" in ignored


def test_readme_parameter_server_recipe_runs_on_one_machine(tmp_path):
    """The block that starts a local parameter-server cluster, run as printed: tables sharded,
    the model above popularity, the strategy recorded, no task left running. Its ports lie below
    both the system's ephemeral range and the range the other tests' clusters pick from
    (``free_ports``), so nothing else takes them."""
    import signal

    block = next(b for b in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S) if "cluster-task" in b)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    import inspect

    from awe_tf.training.strategies import free_ports
    from tests.test_distribute import SHARDED_IN_TWO

    picked_from = inspect.signature(free_ports).parameters["low"].default
    assert all(int(port) < min(low, picked_from) for port in re.findall(r"localhost:(\d+)", block))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(["bash", "-c", block], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
        left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever a failure left running
        except ProcessLookupError:
            pass
    assert re.search(SHARDED_IN_TWO, out), out[-2000:] + err[-3000:]
    report = json.loads((tmp_path / "runs" / "ps" / "metrics.json").read_text())
    assert (report["strategy"], report["strategy_class"]) == ("parameter-server", "ParameterServerStrategyV2")
    assert report["metrics"]["precision@1"] > report["baselines"]["popularity"]["precision@1"]
    assert not left, "the block's kill leaves no task running"
