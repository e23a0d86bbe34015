"""The README's Python example runs as printed."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "precision@1" in out and (tmp_path / "corel-model" / "awe_model.json").exists()


def test_readme_colab_strategy_cell_falls_back_to_the_cpu(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    cell = next(b for b in blocks if 'make_strategy("auto")' in b)
    namespace = {}
    exec(compile(cell, "README.md", "exec"), namespace)
    assert capsys.readouterr().out.split()[:2] == ["_DefaultDistributionStrategy", "1"]
    assert namespace["result"].history["loss"][-1] < namespace["result"].history["loss"][0]
