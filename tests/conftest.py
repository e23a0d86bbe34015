import os
from pathlib import Path

import pytest

import awe_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

ROOT = Path(__file__).resolve().parent.parent


def _data_dir():
    value = os.environ.get("AWE_DATA_DIR")
    if value:
        return Path(value)
    guess = ROOT.parent / "shared" / "data"
    return guess if guess.exists() else None


@pytest.fixture(scope="session")
def data_dir():
    """The real data folder; CI must have it, so a missing folder fails there."""
    found = _data_dir()
    if found is None or not (found / "ml-100k" / "u.data").exists():
        if os.environ.get("CI"):
            pytest.fail("AWE_DATA_DIR is not set to the shared data folder in CI")
        pytest.skip("real data not available (set AWE_DATA_DIR)")
    os.environ["AWE_DATA_DIR"] = str(found)
    return found
