"""Every notebook runs top to bottom, unedited except for its "parameters" cell (smoke settings)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SMOKE = {
    "01_quickstart.ipynb": "EPOCHS = 1\nDIMENSION = 16\nITERATIONS = 1",
    "02_annotation_reproduction.ipynb": "DATASETS = ['corel5k']\nEPOCHS = 1\nDIMENSION = 16\nITERATIONS = 1\n"
                                        "INIT_SCALE = 1.0",
    "03_recommendation_reproduction.ipynb": "EPOCHS = 1\nDIMENSION = 16\nBETAS = [0]\nKS = [5]\nRESTS = [0.0]",
    "04_tuning.ipynb": "TRIALS = 2\nEPOCHS = 1\nORACLE = 'random'\nPROJECT = 'smoke'",
    "05_export_and_serving.ipynb": "EPOCHS = 1",
    "06_tpu_and_distributed.ipynb": "EPOCHS = 1",
}


def test_every_notebook_has_smoke_settings_and_no_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMOKE)
    for path in NOTEBOOKS.glob("*.ipynb"):
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), f"{path.name}: strip outputs"
        assert sum("parameters" in c.metadata.get("tags", []) for c in book.cells) == 1, path.name
        assert "find_spec(\"awe_tf\") is None" in book.cells[1].source  # the guarded Colab install


@pytest.mark.parametrize("elsewhere", [None, "other"])
def test_the_movielens_cell_points_at_files_a_restart_kept_or_it_downloads(tmp_path, monkeypatch, data_dir,
                                                                          elsewhere):
    """Notebook 03's data cell, with AWE_DATA_DIR unset (a restart lost it) or set to a folder
    without ml-100k (notebook 02's Mulan folder): where ./data/ml-100k is there from before, it
    downloads nothing and points AWE_DATA_DIR at it; else it downloads there and points at it."""
    import io
    import os
    import zipfile

    book = nbformat.read(NOTEBOOKS / "03_recommendation_reproduction.ipynb", as_version=4)
    cell = next(c.source for c in book.cells if "ml-100k.zip" in c.source)
    movielens = (data_dir / "ml-100k").resolve()  # before the move: data_dir may be relative (CI's ../shared/data)
    monkeypatch.chdir(tmp_path)
    if elsewhere:
        (tmp_path / elsewhere).mkdir()
        monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path / elsewhere))
    else:
        monkeypatch.delenv("AWE_DATA_DIR", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ml-100k").symlink_to(movielens)
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: pytest.fail("downloaded again"))
    exec(cell, {})
    assert os.environ["AWE_DATA_DIR"] == str((tmp_path / "data").resolve())
    (tmp_path / "data" / "ml-100k").unlink()  # nothing there: a download
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("ml-100k/u.data", "1\t1\t5\t0\n")
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path / (elsewhere or "none")))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: io.BytesIO(archive.getvalue()))
    exec(cell, {})
    assert os.environ["AWE_DATA_DIR"] == str((tmp_path / "data").resolve())
    assert (tmp_path / "data" / "ml-100k" / "u.data").exists()


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_notebook_runs(name, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("AWE_DATA_DIR", str(data_dir.resolve()))  # the kernel runs in tmp_path
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in book.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = SMOKE[name]
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in book.cells if c.cell_type == "code" for o in c.outputs)
    assert "Traceback" not in text and "cuInit" not in text
