"""Optional dependencies fail where they are needed, when the object that needs them is made,
with what to install."""

import sys

import pytest

from awe_tf.affinities import get
from awe_tf.data import load_dataset
from awe_tf.models import AWEModel


@pytest.mark.parametrize("missing, make, words", [
    ("scann", lambda: get("knn:k=5,search=scann"), ["search='scann' needs scann", "pip install 'awe-tf[scann]'"]),
    ("scann", lambda: __import__("awe_tf.serving", fromlist=["ServingModule"]).ServingModule(
        AWEModel(4, 3, dimension=2), "scann"), ["scann export flavour needs scann", "awe-tf[scann]"]),
    ("keras_tuner", lambda: __import__("awe_tf.tuning", fromlist=["make_tuner"]).make_tuner(
        "random", load_dataset("corel5k").train, "constant"), ["needs keras-tuner", "pip install 'awe-tf[tuning]'"]),
    ("matplotlib", lambda: __import__("awe_tf.diagnostics", fromlist=["figure"]).figure(
        {"affinity": "Constant"}, None), ["drawing the diagnosis needs matplotlib", "pip install 'awe-tf[plots]'"]),
])
def test_a_missing_optional_dependency_says_what_to_install(missing, make, words, monkeypatch):
    for name in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # importing it now fails, as where it is not installed
    with pytest.raises(ImportError) as raised:
        make()
    for word in words:
        assert word in str(raised.value), str(raised.value)
