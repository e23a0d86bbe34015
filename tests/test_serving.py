"""TF Serving export: both flavours load in a fresh process and return the in-memory model's
top-k; the portable flavour needs only stock ops; warmup records parse; exports are atomic."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf import serving
from awe_tf.data import load_dataset
from awe_tf.models import AWEModel
from awe_tf.serving import layout
from awe_tf.training import ModelConfig, TrainConfig, fit

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SPECS = ["constant", "knn:k=10", "sigmoid", "topk:k=3", "topk:k=3,rest=learn", "vote:weight=3,k=10"]


@pytest.fixture(scope="module")
def corel():
    return load_dataset("corel5k")


@pytest.fixture(scope="module")
def wsabie(corel):
    config = ModelConfig(dimension=16, num_negatives=10)
    return fit(corel.train, config, TrainConfig(epochs=2, verbose=0)).model


def model_with(spec, corel, wsabie):
    """A model with affinity ``spec`` sharing the trained WSABIE's U and V (and G from its U)."""
    model = AWEModel(corel.train.n_features, corel.train.n_labels, dimension=16, affinity=spec, max_norm=3.0,
                     label_names=corel.train.label_names)
    model.U.table.assign(wsabie.U.table)
    model.V.table.assign(wsabie.V.table)
    if model.affinity.uses_context:
        model.affinity.set_reference(wsabie.U.table.numpy(), model.prepare(corel.train.X), corel.train.Y, True)
    for weight in model.affinity.trainable_weights:  # moved off its start, so a weight lost in export shows
        weight.assign(tf.fill(tf.shape(weight), 0.4))
    return model


def test_exports_load_in_a_fresh_process_with_the_same_top_k(tmp_path, corel, wsabie):
    X = corel.test.X[:64]
    expected, paths = {}, {}
    for spec in SPECS:
        model = wsabie if spec == "constant" else model_with(spec, corel, wsabie)
        ids, scores = model.top_k(X, 10)
        for flavour in serving.FLAVOURS:
            key = f"{spec.replace(':', '_').replace(',', '_').replace('=', '')}-{flavour}"
            paths[key] = str(serving.export(model, tmp_path / "base", key, flavour=flavour, candidates=374, queries=X,
                                            log=None))
            expected[key] = (ids, scores)
    sp.save_npz(tmp_path / "X.npz", sp.csr_matrix(X))
    script = textwrap.dedent(f"""
        import json, numpy as np, scipy.sparse as sp
        from awe_tf import serving
        X = sp.load_npz({str(tmp_path / "X.npz")!r})
        out = {{}}
        for key, path in json.loads({json.dumps(json.dumps(paths))}).items():
            served = serving.load(path)
            result = served(X, k=10)
            out[key + "/ids"], out[key + "/scores"] = result["label_ids"], result["scores"]
            out[key + "/labels"] = result["labels"]
        np.savez({str(tmp_path / "served.npz")!r}, **out)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = np.load(tmp_path / "served.npz")
    names = np.asarray(corel.train.label_names)
    for key, (ids, scores) in expected.items():
        np.testing.assert_array_equal(served[key + "/ids"], ids, err_msg=key)
        np.testing.assert_allclose(served[key + "/scores"], scores, rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_array_equal(served[key + "/labels"], names[ids], err_msg=key)
    # The audit: portable exports need stock ops only; ScaNN exports are flagged as needing ScaNN.
    for key, path in paths.items():
        custom = serving.custom_ops(path)
        if key.endswith("portable"):
            assert custom == [] and all(serving.ops.is_stock(op) for op in serving.required_ops(path)), key
        else:
            assert "Scann>ScannSearchBatched" in custom, key
    for flavour in serving.FLAVOURS:
        cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--all", "--dir"]
        show = subprocess.run(cli + [paths[f"knn_k10-{flavour}"]], capture_output=True, text=True, env=ENV, timeout=300)
        assert show.returncode == 0, show.stderr[-2000:]
        assert "feature_ids" in show.stdout and "label_ids" in show.stdout and "scores" in show.stdout


def test_a_plain_tensorflow_client_may_leave_the_optional_inputs_out(tmp_path, corel, wsabie):
    """``tf.saved_model.load(path).serve(feature_ids, feature_weights, k)``, without awe_tf's
    loader, applies the defaults of ``exclude_ids`` and ``exclude_inputs`` (the signature
    wrapper of ``.signatures`` asks for all five) and answers as the loader does."""
    X = corel.test.X[:16]
    path = serving.export(wsabie, tmp_path, "m", flavour="portable", log=None)
    ids, weights = serving.request_arrays(X, corel.train.n_features)
    loaded = tf.saved_model.load(str(path))  # kept: the function needs the object's variables alive
    plain = loaded.serve(tf.constant(ids), tf.constant(weights), tf.constant(5))
    np.testing.assert_array_equal(plain["label_ids"].numpy(), serving.load(path)(X, k=5)["label_ids"])
    np.testing.assert_array_equal(plain["label_ids"].numpy(), wsabie.top_k(X, 5)[0])


def test_the_export_says_when_scann_searches_exactly(tmp_path, corel, wsabie):
    """Corel5k's labels (what ScaNN searches for WSABIE) and its training inputs (what it
    searches for a k-NN G's neighbours) are few enough for ScaNN to search exactly; the export
    says so once, naming which, and that the portable flavour serves as well."""
    knn = model_with("knn:k=10", corel, wsabie)
    for model, searched in ((wsabie, f"{corel.train.n_labels} labels"),
                            (knn, f"{corel.train.n_examples} training inputs")):
        lines = []
        serving.export(model, tmp_path / searched.split()[1], "m", flavour="scann", log=lines.append)
        notes = [line for line in lines if line.startswith("note:")]
        assert len(notes) == 1 and searched in notes[0] and "portable" in notes[0], lines


def test_an_export_logs_no_info_lines_where_a_notebook_shows_them(tmp_path, wsabie, caplog):
    """A notebook's kernel shows Python's INFO records; TensorFlow's saving logs some (the assets of
    a temporary folder, inputs renamed): none while exporting, and the loggers' levels are as
    they were after it."""
    import logging

    caplog.set_level(logging.INFO)
    before = {name: logging.getLogger(name).level for name in ("tensorflow", "absl")}
    serving.export(wsabie, tmp_path, "m", flavour="scann", log=lambda line: None)
    assert [r.getMessage() for r in caplog.records if r.name in ("tensorflow", "absl") and r.levelno < 30] == []
    assert {name: logging.getLogger(name).level for name in ("tensorflow", "absl")} == before


def test_warmup_records_are_valid_requests(tmp_path, wsabie):
    from tensorflow_serving.apis import prediction_log_pb2

    path = serving.export(wsabie, tmp_path, "m", flavour="portable", log=None)
    served = serving.load(path)
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) == 5
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "m" and request.model_spec.signature_name == "serving_default"
        inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        out = served.signature(**{key: tf.constant(value) for key, value in inputs.items()})
        assert out["label_ids"].shape == (1, int(inputs["k"]))
    metadata = json.loads((path / "assets.extra" / "awe_export.json").read_text())
    assert metadata["flavour"] == "portable" and metadata["recall_at_10"] == 1.0 and metadata["custom_ops"] == []


def test_requests_are_checked_and_padding_is_ignored(tmp_path, wsabie):
    served = serving.load(serving.export(wsabie, tmp_path, "m", flavour="scann", candidates=50, log=None))
    plain = served(feature_ids=[[3, 7]], feature_weights=[[1.0, 0.5]], k=5)
    padded = served(feature_ids=[[3, 7, -1, -1], [5, -1, -1, -1]], feature_weights=[[1.0, 0.5, 9.0, 9.0],
                                                                                      [1.0, 0, 0, 0]], k=5)
    np.testing.assert_array_equal(padded["label_ids"][:1], plain["label_ids"])
    np.testing.assert_allclose(padded["scores"][:1], plain["scores"], rtol=1e-6)
    for k in (0, 51):  # checked in Python before the graph (which checks it again for TF Serving's clients)
        with pytest.raises(ValueError, match="k must be a whole number from 1 to 50"):
            served(feature_ids=[[3]], k=k)
    del served.metadata["n_features"]  # an export that does not record |X|: ids checked by the graph alone
    with pytest.raises(tf.errors.InvalidArgumentError, match="feature_ids must be <"):
        served(feature_ids=[[wsabie.n_features]], k=5)


def test_versions_increase_and_old_ones_are_pruned(tmp_path, wsabie):
    for _ in range(3):
        serving.export(wsabie, tmp_path, "m", flavour="portable", keep=2, log=None)
    assert layout.versions(tmp_path / "m") == [2, 3]
    assert serving.load(tmp_path / "m").path.name == "3"  # <base>/<name> loads the newest
    with pytest.raises(ValueError, match="not newer"):
        serving.export(wsabie, tmp_path, "m", version=3, flavour="portable", log=None)
    assert serving.export(wsabie, tmp_path, "m", version=10, flavour="portable", log=None).name == "10"
    with pytest.raises(ValueError, match="holds portable exports"):  # flavours do not mix under one name
        serving.export(wsabie, tmp_path, "m", flavour="scann", log=None)
    with pytest.raises(ValueError, match="keep must be at least 1"):  # refused before any work
        serving.export(wsabie, tmp_path, "m", flavour="portable", keep=0, log=None)
    other = AWEModel(wsabie.n_features + 1, wsabie.n_labels, dimension=4)  # another input space under the name
    with pytest.raises(ValueError, match=r"newest version \(10\) serves a model whose ids mean other things "
                                         r"\(n_features 499 -> 500, label names\)"):
        serving.export(other, tmp_path, "m", flavour="portable", log=None)
    renamed = AWEModel(wsabie.n_features, wsabie.n_labels, dimension=4,  # the same sizes, other labels
                       label_names=[f"x{i}" for i in range(wsabie.n_labels)])
    with pytest.raises(ValueError, match=r"\(label names\).*--new-ids \(new_ids=True in Python\)"):
        serving.export(renamed, tmp_path, "m", flavour="portable", log=None)
    assert layout.versions(tmp_path / "m") == [2, 3, 10]
    said = []  # exported, with a note that the ids changed meaning, for the clients
    assert serving.export(renamed, tmp_path, "m", flavour="portable", log=said.append, new_ids=True).name == "11"
    assert said[-1].startswith("note: this version's ids mean other things than version 10's (label names): a client")
    said.clear()
    serving.export(renamed, tmp_path, "m", flavour="portable", log=said.append, new_ids=True)  # same ids as 11
    assert not any(line.startswith("note: this version's ids") for line in said)
    lines = []  # random probes: as many as asked for, and the note says how to give real rows
    serving.export(other, tmp_path, "other", flavour="portable", log=lines.append, random_queries=7)
    assert any("(7 random probe rows: give the data (awe-tf export --dataset or --train" in line for line in lines)


def test_features_named_otherwise_are_other_ids_to_a_version_and_to_evaluate_served(tmp_path, corel, wsabie):
    """An annotation model exported with its features' names: a later version whose features are
    the same number but in another order is refused under the name (its clients' feature ids would
    name other features), as a version without names is not; evaluate_served refuses data of other
    features or labels than the export's, as evaluate_model does, and scores the export's own."""
    import dataclasses

    from awe_tf.data.dataset import Split
    from awe_tf.evaluation import evaluate_served

    names = list(corel.train.feature_names)
    swapped = [names[1], names[0], *names[2:]]
    served = serving.load(serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=names))
    with pytest.raises(ValueError, match=r"serves a model whose ids mean other things \(feature names or their "
                                         r"order\)"):
        serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=swapped)
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None).name == "2"  # names not known
    with pytest.raises(ValueError, match=r"m's newest version naming them \(1\) serves a model whose ids mean other "
                                         r"things \(feature names or their order\)"):  # version 2 named none
        serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=swapped)
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=names).name == "3"
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=swapped,
                          new_ids=True).name == "4"
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None).name == "5"
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=swapped).name == "6"
    with pytest.raises(ValueError, match=r"m.s newest version \(6\) serves"):
        serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=names)
    # a version exported with new ids and no names ends what the older names say
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, new_ids=True).name == "7"
    assert serving.export(wsabie, tmp_path, "m", flavour="portable", log=None, feature_names=names).name == "8"
    split = Split(corel.train, corel.test)
    other_features = Split(dataclasses.replace(corel.train, feature_names=swapped), corel.test)
    with pytest.raises(ValueError, match=r"evaluate_served: the model was trained on other features, or on these in "
                                         r"another order"):
        evaluate_served(served, other_features)
    labels = list(corel.train.label_names)
    other_labels = Split(dataclasses.replace(corel.train, label_names=[labels[1], labels[0], *labels[2:]]), corel.test)
    with pytest.raises(ValueError, match=r"evaluate_served: the data has the model's labels in another order"):
        evaluate_served(served, other_labels)
    assert evaluate_served(served, split)["metrics"]["precision@1"] > 0


def test_a_killed_export_leaves_no_visible_version(tmp_path, wsabie):
    wsabie.save_model(tmp_path / "model")
    script = textwrap.dedent(f"""
        import os, signal, tensorflow as tf
        from awe_tf import serving
        from awe_tf.models import AWEModel
        save = tf.saved_model.save
        def save_then_die(*args, **kwargs):
            save(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)  # killed after the SavedModel, before the rename
        tf.saved_model.save = save_then_die
        serving.export(AWEModel.load_model({str(tmp_path / "model")!r}), {str(tmp_path / "base")!r}, "m",
                       flavour="portable")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    model_dir = tmp_path / "base" / "m"
    leftovers = [p.name for p in model_dir.iterdir()]
    assert leftovers and all(name.startswith(".partial-") for name in leftovers)  # hidden from TF Serving
    assert layout.versions(model_dir) == []
    with pytest.raises(FileNotFoundError):
        serving.load(model_dir)
    serving.export(wsabie, tmp_path / "base", "m", flavour="portable", log=None)
    assert sorted(p.name for p in model_dir.iterdir()) == ["1"]  # the abandoned directory is cleaned up


def test_portable_export_refuses_custom_ops(tmp_path, wsabie, monkeypatch):
    from awe_tf.serving import exporter as export_module

    class Leaky(export_module.ServingModule):  # a portable module that wrongly holds a ScaNN index
        def __init__(self, model, flavour, candidates):
            super().__init__(model, "scann", candidates)

    monkeypatch.setattr(export_module, "ServingModule", Leaky)
    with pytest.raises(RuntimeError, match="non-stock ops"):
        serving.export(wsabie, tmp_path, "m", flavour="portable", log=None)
    assert layout.versions(tmp_path / "m") == []


def test_cli_exports_both_flavours_and_inspects_them(tmp_path, wsabie):
    wsabie.save_model(tmp_path / "model")
    run = [sys.executable, "-m", "awe_tf.cli"]
    proc = subprocess.run([*run, "export", str(tmp_path / "model"), str(tmp_path / "base"), "--name", "corel",
                           "--dataset", "corel5k", "--recall-queries", "100"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "recall@10 of the scann graph" in proc.stdout
    assert layout.versions(tmp_path / "base" / "corel") == [1]
    assert layout.versions(tmp_path / "base" / "corel-portable") == [1]
    scann = subprocess.run([*run, "inspect", str(tmp_path / "base" / "corel"), "--require-stock"],
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert scann.returncode == 1 and "CUSTOM" in scann.stdout and "Scann>ScannSearchBatched" in scann.stdout
    portable = subprocess.run([*run, "inspect", str(tmp_path / "base" / "corel-portable"), "--require-stock"],
                              capture_output=True, text=True, env=ENV, timeout=300)
    assert portable.returncode == 0 and "only stock TensorFlow ops" in portable.stdout
    # a model whose labels mean other things, where only corel-portable held one: neither flavour is written
    renamed = AWEModel(wsabie.n_features, wsabie.n_labels, dimension=4, label_names=[f"x{i}" for i in range(374)])
    renamed.save_model(tmp_path / "renamed")
    shutil.rmtree(tmp_path / "base" / "corel")
    refused = subprocess.run([*run, "export", str(tmp_path / "renamed"), str(tmp_path / "base"), "--name", "corel"],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert refused.returncode == 2 and "corel-portable's newest version (1) serves a model" in refused.stderr
    assert not (tmp_path / "base" / "corel").exists() and layout.versions(tmp_path / "base" / "corel-portable") == [1]


def test_deployment_kit_requests_match_the_signature(tmp_path, wsabie):
    """export/rest_request.json and export/grpc_client.py build requests the exported graph takes."""
    import importlib.util
    from pathlib import Path

    kit = Path(__file__).resolve().parent.parent / "export"
    served = serving.load(serving.export(wsabie, tmp_path, "awe", flavour="scann", log=None))
    body = json.loads((kit / "rest_request.json").read_text())
    assert body["signature_name"] == "serving_default"
    inputs = body["inputs"]
    out = served.signature(feature_ids=tf.constant(inputs["feature_ids"], tf.int32),
                           feature_weights=tf.constant(inputs["feature_weights"], tf.float32),
                           k=tf.constant(inputs["k"], tf.int32))
    assert out["labels"].shape == (2, inputs["k"])
    spec = importlib.util.spec_from_file_location("grpc_client", kit / "grpc_client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    rows = [client.parse_row("3,17:0.5,42"), client.parse_row("5")]
    for bad, words in (("3.5", "not a feature id"), ("4294967301", "not a feature id"), ("3:x", "not a number"),
                       ("3:", r"the value '' of feature 3 is not a number \(write 3 alone for value 1\)"),
                       ("3:1_0", "not a number"), ("3:nan", "not a number"), ("3:1e40", "beyond float32's range")):
        with pytest.raises(ValueError, match=words):
            client.parse_row(bad)
    assert client.parse_row(" 3 : 2 ,4:-1.5e-3, 5:.5") == [(3, 2.0), (4, -1.5e-3), (5, 0.5)]
    with pytest.raises(ValueError, match="no rows to request"):
        client.build_request("awe", [], k=4)
    request = client.build_request("awe", rows, k=4)
    arrays = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
    out = served.signature(**{key: tf.constant(value) for key, value in arrays.items()})
    want = served(sp.csr_matrix(([1.0, 0.5, 1.0, 1.0], ([0, 0, 0, 1], [3, 17, 42, 5])),
                                shape=(2, wsabie.n_features)), k=4)
    np.testing.assert_array_equal(out["label_ids"].numpy(), want["label_ids"])
    first = int(want["label_ids"][0, 0])
    excluding = client.build_request("awe", rows, k=4, exclude=client.parse_ids(f"{first},7"))
    arrays = {key: tf.make_ndarray(value) for key, value in excluding.inputs.items()}
    out = served.signature(**{key: tf.constant(value) for key, value in arrays.items()})
    assert first not in out["label_ids"].numpy()[0] and 7 not in out["label_ids"].numpy()
    # What the client prints: each label's name, id and score; an empty slot (-1) left out.
    lines = client.answer_lines(*(out[name].numpy() for name in ("label_ids", "labels", "scores")))
    ids, names = out["label_ids"].numpy()[0], out["labels"].numpy()[0]
    assert lines[0].startswith(f"row 0: {names[0].decode()} [{ids[0]}] (")
    assert client.answer_lines(np.array([[4, -1]]), np.array([[b"x", b""]]), np.array([[0.5, -np.inf]])) == \
        ["row 0: x [4] (0.500)"]
    with pytest.raises(ValueError, match="'x' is not a label id"):
        client.parse_ids("3,x")
    assert "models.config" in {p.name for p in kit.iterdir()} and "Dockerfile" in {p.name for p in kit.iterdir()}


def test_label_names_keep_their_unicode(tmp_path):
    model = AWEModel(4, 3, dimension=4, label_names=["Amélie (2001)", "b", "c"], seed=3)
    served = serving.load(serving.export(model, tmp_path, "m", flavour="portable", log=None))
    result = served(np.eye(4)[:1], k=3)
    assert "Amélie (2001)" in result["labels"][0].tolist()
    assert served.label_names == ["Amélie (2001)", "b", "c"]  # what evaluate checks the data's labels against
    assert json.loads((served.path / "assets.extra" / "labels.json").read_bytes().decode("utf-8")) == served.label_names
    unnamed = serving.load(serving.export(AWEModel(4, 3, dimension=4), tmp_path, "u", flavour="portable", log=None))
    assert not (unnamed.path / "assets.extra" / "labels.json").exists()  # no names to give
    assert not (unnamed.path / "assets.extra" / "features.json").exists()
    featured = serving.export(AWEModel(4, 3, dimension=4), tmp_path, "f", flavour="portable", log=None,
                              feature_names=["é", "b", "c", 7])
    assert json.loads((featured / "assets.extra" / "features.json").read_text(encoding="utf-8")) == ["é", "b", "c", "7"]
    for names, words in ((["a"], "1 names for the model's 4 features"), (list("abcd"), "for annotation models")):
        other = AWEModel(4, 4, dimension=4, data_task="recommendation") if len(names) == 4 else AWEModel(4, 3)
        with pytest.raises(ValueError, match=words):
            serving.export(other, tmp_path, "g", flavour="portable", log=None, feature_names=names)
    from awe_tf.models.saving import tables_digest

    model.save_model(tmp_path / "saved")  # the export names the model it was made from, as saved and reloaded
    assert served.metadata["tables_digest"] == tables_digest(AWEModel.load_model(tmp_path / "saved"))
    assert served.metadata["tables_digest"] != tables_digest(AWEModel(4, 3, dimension=4, seed=4))
    np.testing.assert_array_equal(result["label_ids"], model.top_k(np.eye(4)[:1], 3)[0])


def test_a_new_users_items_by_name_are_the_rows_of_their_ids(tmp_path):
    names = ["i0", "i1", "i2", "Heat (1995)", "Heat (1995)", "i5"]  # two items share a title, as on MovieLens
    model = AWEModel(6, 6, dimension=4, data_task="recommendation", label_names=names, seed=3)
    served = serving.load(serving.export(model, tmp_path, "m", flavour="portable", log=None))
    rows = served.rows_of([["i2", "i0"], ["i5"]], weights=[[2.0, 1.0], [3.0]])
    np.testing.assert_array_equal(rows.toarray(), [[1, 0, 2, 0, 0, 0], [0, 0, 0, 0, 0, 3]])
    by_name = served(rows, k=3)
    by_id = served(feature_ids=np.array([[2, 0], [5, -1]]), feature_weights=np.array([[2.0, 1.0], [3.0, 0.0]]), k=3)
    np.testing.assert_array_equal(by_name["label_ids"], by_id["label_ids"])
    assert not set(by_name["label_ids"][0]) & {0, 2}  # the user's own items left out, as for any row
    for items, words in (([["i9", "i1"]], "items the model does not have: 'i9'"),
                         ([["Heat (1995)"]], "'Heat (1995)' names more than one item (ids [3, 4]"),
                         ([["i1", "i1"]], "appears twice in a row"), (["i1", "i2"], "one list of names per row"),
                         ([[3.5]], "item names are text (or whole numbers, read as their text)"),
                         ([[3]], "items the model does not have: '3'"), ([{"i1": 0}], "one list of names per row")):
        with pytest.raises(ValueError, match=re.escape(words)):
            served.rows_of(items)
    with pytest.raises(ValueError, match=r"weights must be positive finite numbers, .* got 0.0 \(an item of weight 0"):
        served.rows_of([["i1", "i2"]], weights=[[1.0, 0.0]])  # weight 0 would be neither an input nor left out
    with pytest.raises(ValueError, match=r"positive finite numbers, as an interactions file's are, got nan$"):
        served.rows_of([["i1", "i2"]], weights=[[1.0, np.nan]])
    for odd, words in ((True, "got True (bool)"), ("5", "got '5' (str)")):  # not numbers: refused, not converted
        with pytest.raises(ValueError, match=re.escape(f"weights must be numbers, as an interactions file's are, "
                                                       f"{words}")):
            served.rows_of([["i1", "i2"]], weights=[[5, odd]])
    assert served.rows_of([["i1", "i2"]], weights=[[np.float32(2), 3]]).sum() > 0  # NumPy's numbers are numbers
    with pytest.raises(ValueError, match="weights must be one list per row"):
        served.rows_of([["i1", "i2"]], weights=[2.0, 1.0])
    assert served.rows_of(row for row in [["i2"]]).nnz == 1  # rows from a generator, read once
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model of unweighted items: weights left out say nothing
        served.rows_of([["i2", "i0"]])
    # what a row reads otherwise than a training row would is said: items without the weights the model's
    # users' items had, items left out, items in no training row (read as nothing)
    rated = AWEModel(6, 6, dimension=4, data_task="recommendation", label_names=names, seed=3,
                     input_transform={"numeric": [], "mean": [], "std": [], "weighted": True, "ignored": [1]})
    rated_served = serving.load(serving.export(rated, tmp_path, "r", flavour="portable", log=None))
    with pytest.warns(UserWarning, match="trained on users whose items carry weights .* give weights=, as the file"):
        rated_served.rows_of([["i2", "i0"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rated_served.rows_of([["i2", "i0"]], weights=[[4.0, 1.0]])
    with pytest.warns(UserWarning) as said:
        read = rated_served.rows_of([["new", "i2", "i1", 7]], weights=[[1.0, 2.0, 3.0, 4.0]], unknown="skip")
    assert [str(w.message) for w in said] == [
        "2 items the model does not have, left out of the rows (unknown='skip'): 'new', '7'",
        "items in no training row, so read as nothing (and never ranked): 'i1'"]
    np.testing.assert_array_equal(read.toarray(), [[0, 3, 2, 0, 0, 0]])
    # items new since the export: refused, naming the choice to skip them, which ranks the rest of each row
    with pytest.raises(ValueError, match=re.escape("items new since it was trained: unknown='skip' ranks")):
        served.rows_of([["i2", "new"]])
    with pytest.warns(UserWarning, match=re.escape("2 items the model does not have, left out of the rows "
                                                   "(unknown='skip'): 'new', 'newer'")):
        skipped = served.rows_of([["new", "i2", "newer", "i0"], ["i5", "new"]], [[9.0, 2.0, 9.0, 1.0], [3.0, 9.0]],
                                 unknown="skip")
    np.testing.assert_array_equal(skipped.toarray(), rows.toarray())
    with pytest.raises(ValueError, match=r"unknown must be one of \('refuse', 'skip'\)"):
        served.rows_of([["i2"]], unknown="drop")
    # A client without awe-tf maps its items to feature ids by the export's labels.json: the names in label id order
    assert json.loads((served.path / "assets.extra" / "labels.json").read_text(encoding="utf-8")) == names
    annotation = serving.load(serving.export(AWEModel(4, 3, dimension=4, label_names=["a", "b", "c"]), tmp_path,
                                             "a", flavour="portable", log=None))
    with pytest.raises(ValueError, match="rows_of is for recommendation models"):
        annotation.rows_of([["a"]])


def test_recommendation_exports_leave_out_the_users_items_and_still_return_k(tmp_path):
    """Own items and items never seen in training are left out; ScaNN (a tree index here, above
    its brute-force size) fetches more candidates so k labels still come back; empty requests work."""
    n = 25_000
    model = AWEModel(n, n, dimension=8, data_task="recommendation", seed=2)
    unseen = np.arange(40)
    mask = np.ones(n, np.float32)
    mask[unseen] = 0
    model.rankable.assign(mask)
    rng = np.random.default_rng(0)
    X = sp.vstack([sp.csr_matrix((np.ones(300), ([0] * 300, rng.choice(n, 300, replace=False))), shape=(1, n))
                   for _ in range(12)]).tocsr()
    exact, _ = model.top_k(X, 50)
    own = [set(X[i].indices) for i in range(X.shape[0])]
    assert not any(set(row) & own[i] for i, row in enumerate(exact)) and not np.isin(exact, unseen).any()
    for flavour in serving.FLAVOURS:
        served = serving.load(serving.export(model, tmp_path, flavour, flavour=flavour, candidates=50, log=None))
        ids = served(X, k=50)["label_ids"]
        assert ids.shape == (12, 50) and (ids >= 0).all(), flavour
        assert not any(set(row) & own[i] for i, row in enumerate(ids)) and not np.isin(ids, unseen).any()
        overlap = np.mean([len(set(a) & set(b)) / 50 for a, b in zip(ids, exact, strict=True)])
        assert overlap == 1.0 if flavour == "portable" else overlap > 0.8, (flavour, overlap)
        mine = served(X[:2], k=5, exclude=[[int(ids[0, 0])], [int(ids[1, 1])]])["label_ids"]
        assert ids[0, 0] not in mine[0] and ids[1, 1] not in mine[1] and ids[0, 1] == mine[0, 0]
        everything = served(X[:1], k=5, exclude_inputs=False)["label_ids"][0]
        np.testing.assert_array_equal(everything, model.top_k(X[:1], 5, exclude_inputs=False)[0][0])
        empty = served(feature_ids=np.zeros((0, 3), np.int32), feature_weights=np.zeros((0, 3), np.float32), k=5)
        assert empty["label_ids"].shape == (0, 5) and empty["scores"].shape == (0, 5)
        outputs = served.signature.function.structured_outputs
        declared = {name: output.shape.rank for name, output in outputs.items()}
        assert declared == {"label_ids": 2, "labels": 2, "scores": 2}, (flavour, declared)  # [batch, k] declared


@pytest.mark.parametrize("flavour", serving.FLAVOURS)
def test_an_input_of_weight_zero_is_not_in_the_row_on_any_path(tmp_path, flavour):
    """A stored 0 is no input: the transform drops it, so it is not one of the row's own items
    either. The in-memory model, the Python loader and the raw signature agree, and rank as if
    the item had not been sent; none of them changes the caller's matrix."""
    n = 30
    model = AWEModel(n, n, dimension=4, data_task="recommendation", seed=3)
    ids = np.array([[0, 4, 9]], np.int32)

    def with_zero():
        X = sp.csr_matrix((np.array([0.0, 5.0, 4.0]), (np.zeros(3, int), ids[0])), shape=(1, n))  # float64
        assert X.nnz == 3  # the 0 is stored
        return X

    expected = model.top_k(sp.csr_matrix(([5.0, 4.0], ([0, 0], [4, 9])), shape=(1, n)), n)[0]
    assert 0 in expected[0] and 4 not in expected[0]
    X = with_zero()
    np.testing.assert_array_equal(model.top_k(X, n)[0], expected)
    assert X.nnz == 3 and X.indices.tolist() == [0, 4, 9] and X.data.tolist() == [0.0, 5.0, 4.0]  # untouched
    served = serving.load(serving.export(model, tmp_path, "m", flavour=flavour, candidates=n, log=None))
    np.testing.assert_array_equal(served(with_zero(), k=n)["label_ids"], expected)
    raw = served(feature_ids=ids, feature_weights=np.array([[0.0, 5.0, 4.0]], np.float32), k=n)["label_ids"]
    np.testing.assert_array_equal(raw, expected)
    # a stored 0 in an exclusion list excludes nothing, as in evaluation's ranking
    exclude = sp.csr_matrix(([0.0, 1.0], ([0, 0], [int(expected[0, 0]), int(expected[0, 1])])), shape=(1, n))
    np.testing.assert_array_equal(model.top_k(with_zero(), 2, exclude=exclude)[0][0], [expected[0, 0], expected[0, 2]])


def test_a_loaded_export_reads_a_dataframe_by_its_item_names(tmp_path):
    """Rows given to a recommendation export as a DataFrame are read by item name, in any column
    order; an annotation export reads them by its features' names where it was given them, and
    otherwise refuses named columns."""
    from tests.test_pipeline import Frame

    items = ["m1", "m2", "m3", "m4", "m5"]
    model = AWEModel(5, 5, dimension=4, data_task="recommendation", label_names=items, seed=1)
    served = serving.load(serving.export(model, tmp_path, "m", flavour="portable", log=None))
    rows = np.array([[1, 0, 2, 0, 0], [0, 0, 0, 1, 1]], float)
    shuffled = Frame(rows, items)[["m5", "m3", "m1", "m4", "m2"]]
    np.testing.assert_array_equal(served(shuffled, k=2)["label_ids"], served(rows, k=2)["label_ids"])
    annotation = serving.load(serving.export(AWEModel(5, 3, dimension=4), tmp_path, "a", flavour="portable", log=None))
    with pytest.raises(ValueError, match="a DataFrame with named columns, which the model reads by position"):
        annotation(Frame(rows, items))
    with pytest.raises(ValueError, match=r"numbered columns other than 0, 1, 2, ... in order, which the model reads"):
        annotation(Frame(rows, ["4", "3", "2", "1", "0"]))
    # An annotation export given its features' names (features.json) reads a frame by them, in any order,
    # every feature with its column: one left out would read as 0, which standardised is not its mean.
    named = serving.load(serving.export(AWEModel(5, 3, dimension=4), tmp_path, "f", flavour="portable", log=None,
                                        feature_names=items))
    np.testing.assert_array_equal(named(shuffled, k=2)["label_ids"], named(rows, k=2)["label_ids"])
    with pytest.raises(ValueError, match=r"\('m4': features without a column\).*a column named as each of the model's"):
        named(Frame(rows[:, [0, 1, 2, 4]], ["m1", "m2", "m3", "m5"]))
    with pytest.raises(ValueError, match=r"\('label': not among the model's features\), which the model reads by its "
                                         r"features' names, each once and only those"):  # a label's column beside them
        named(Frame(np.hstack([rows, rows[:, :1]]), [*items, "label"]))
