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


@pytest.fixture
def other_lightfm(tmp_path) -> str:
    """A program the benchmarks must refuse as LightFM's Python: it says its lightfm is 1.16,
    whatever it is asked (wherever the tests run, with or without a LightFM of their own)."""
    program = tmp_path / "python-with-lightfm-1.16"
    program.write_text("#!/bin/sh\necho 1.16\n")
    program.chmod(0o755)
    return str(program)


@pytest.fixture
def retracing_warnings(caplog, monkeypatch):
    """``() -> messages``: TensorFlow's "retracing" warnings logged during the test, as a Python
    session sees them. TensorFlow's logger is set to WARNING (importing the CLI silences it), and
    tf.function's count of traces per code object starts afresh: it warns at most twice per code
    object per process, so earlier tests could have used the warnings up."""
    import logging

    from tensorflow.python.eager.polymorphic_function import polymorphic_function

    caplog.set_level(logging.WARNING, logger="tensorflow")
    monkeypatch.setattr(polymorphic_function, "_frequent_tracing_detector_manager",
                        polymorphic_function._FrequentTracingDetectorManager())
    return lambda: [message for message in caplog.messages if "retracing" in message]
