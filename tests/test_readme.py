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
