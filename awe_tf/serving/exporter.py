"""Export a trained model for TF Serving, and load an export back (in any process)."""

from __future__ import annotations

import contextlib
import decimal
import json
import logging
import numbers
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.config import check_whole
from awe_tf.data.dataset import CATEGORY_CODING, category_coding_error, float_array
from awe_tf.data.frames import is_frame
from awe_tf.data.interactions import model_rows_of_items
from awe_tf.data.pipeline import NEGATIVE_ITEMS, pad_rows, raw_rows
from awe_tf.layers.scann_index import BRUTE_FORCE_ROWS
from awe_tf.models import inference
from awe_tf.models.saving import tables_digest
from awe_tf.optional import require
from awe_tf.serving import layout, ops
from awe_tf.serving.signature import FLAVOURS, PADDING_ID, ServingModule

SIGNATURE = "serving_default"
METADATA_FILE = "awe_export.json"
WARMUP_FILE = "tf_serving_warmup_requests"
LABELS_FILE = "labels.json"  # the label names, a JSON list indexed by label id, for clients without awe-tf
FEATURES_FILE = "features.json"  # an annotation model's feature names by feature id, where export was given them


@contextlib.contextmanager
def _quiet(*loggers: str):
    """Python loggers held at WARNING or above for a while (where a notebook's kernel shows INFO
    lines), then as they were."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).getEffectiveLevel()))
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def request_arrays(X, n_features: int | None = None, names=None, every: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Raw input rows (a sparse or dense matrix; a DataFrame as
    :func:`~awe_tf.data.frames.by_position` reads it, ``names`` the features' names where
    known, ``every`` where each must have its column) as the signature's padded ``feature_ids``
    (padding ``-1``) and ``feature_weights``; values stay raw (the graph transforms them)."""
    X = raw_rows(X, n_features if n_features is not None else np.shape(X)[1], names, every)
    width = max(1, int(np.diff(X.indptr).max()) if X.shape[0] else 1)
    return pad_rows(X, np.arange(X.shape[0]), width, PADDING_ID)


def id_array(values, field: str, ndim: int = 2) -> np.ndarray:
    """``values`` as the signature's int32 ids, refusing what int32 would change: fractional
    values, and ids beyond int32's range (which would wrap around to other ids)."""
    array = _rows_array(values, field, f"pad shorter rows with {PADDING_ID}")
    if array.dtype == object or array.dtype.kind not in "iuf":
        raise ValueError(f"{field} must be integer ids, got {array.dtype} values")
    if array.ndim != ndim:
        raise ValueError(f"{field} must have {ndim} dimensions (rows of ids), got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{field} must be whole numbers, got {array[array != np.round(array)][:3].tolist()}")
    info = np.iinfo(np.int32)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise ValueError(f"{field} holds ids beyond int32's range ({info.min}..{info.max}): "
                         f"{array[(array < info.min) | (array > info.max)][:3].tolist()}")
    return array.astype(np.int32)


def weight_array(values, field: str) -> np.ndarray:
    """``values`` as the signature's float32 weights, checked as the readers check a file's
    values (:func:`~awe_tf.data.dataset.float_array`: no text, nothing other than 0 below
    float32's smallest normal number, which float32 reads as 0), rows of one length."""
    array = float_array(_rows_array(values, field, "pad shorter rows with weight 0, as feature_ids with -1"), field)
    with np.errstate(over="ignore"):  # a value beyond float32's range becomes inf, refused with the request
        return array.astype(np.float32)


def _whole_k(k, max_k: int) -> int:
    """``k`` (a number, or one held by a 0-dimensional array or tensor) as an int from 1 to
    ``max_k``, or a ValueError saying so."""
    given = np.asarray(k)
    # .item() of a NumPy time span of no unit is a bare int, of a date a number: neither is a count
    value = given.item() if given.ndim == 0 and given.dtype.kind not in "mM" else None
    try:
        whole = isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, bool) \
            and float(value).is_integer()
    except (ValueError, OverflowError):
        whole = False
    if not whole or not 1 <= value <= max_k:
        raise ValueError(f"k must be a whole number from 1 to {max_k} (this export's largest), got {k!r}")
    return int(value)


def _rows_array(values, field: str, padding: str) -> np.ndarray:
    """``values`` as a NumPy array, or a ValueError naming ``field`` where its rows are of other
    lengths (``padding``: how to make them one)."""
    try:
        return np.asarray(values)
    except ValueError as error:
        raise ValueError(f"{field} must be rows of one length ({padding}); NumPy cannot read them as an array "
                         f"({str(error).splitlines()[0][:80]})") from None


def _probe_inputs(n_features: int, rows: int = 200, seed: int = 0, categories=()) -> sp.csr_matrix:
    """Queries for measuring retrieval recall when none are given: a few random features each, of
    weight 1, at most one column of each category (a row the model takes)."""
    rng = np.random.default_rng(seed)
    width = min(5, n_features)
    cols = np.stack([rng.choice(n_features, width, replace=False) for _ in range(rows)])
    kind = np.arange(n_features) + len(categories)  # a category's columns share one kind, each other column its own
    for number, group in enumerate(categories):
        kind[list(group)] = number
    keep = np.ones(cols.shape, bool)
    for row in range(rows):
        keep[row, np.setdiff1d(np.arange(width), np.unique(kind[cols[row]], return_index=True)[1])] = False
    return sp.csr_matrix((np.ones(int(keep.sum()), np.float32),
                          (np.repeat(np.arange(rows), keep.sum(axis=1)), cols[keep])), shape=(rows, n_features))


def _recall(module: ServingModule, model, X, k: int = 10) -> float:
    """Share of the in-memory model's exact top-k (raw rows in, the same labels left out) that
    the serving graph returns."""
    k = min(k, module.max_k)
    exact, scores = inference.top_k(model, X, k)  # slots no label fills, -1, compared as they are
    ids, weights = request_arrays(X, model.n_features)
    served = module.serve(tf.constant(ids), tf.constant(weights), tf.constant(k, tf.int32))["label_ids"].numpy()
    ranked = np.isfinite(scores)
    hits = [len(set(a[r].tolist()) & set(b.tolist())) for a, b, r in zip(exact, served, ranked, strict=True)]
    return float(np.sum(hits) / max(1, ranked.sum()))


def warmup_records(path, name: str, ids: np.ndarray, weights: np.ndarray, k: int) -> int:
    """Write TF Serving warmup requests (PredictionLog protos, one TFRecord each) to ``path``."""
    require("tensorflow_serving.apis", "TF Serving warmup requests")
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in range(ids.shape[0]):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=SIGNATURE),
                inputs={"feature_ids": tf.make_tensor_proto(ids[row : row + 1]),
                        "feature_weights": tf.make_tensor_proto(weights[row : row + 1]),
                        "k": tf.make_tensor_proto(np.int32(k))},
            )
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return ids.shape[0]


def ids_of(model, feature_names=None) -> dict:
    """What a client's ids mean in an export of ``model``: the numbers of its inputs and labels,
    its task, and digests of its label names and of ``feature_names`` (an annotation model's
    features, in id order; each None without names)."""
    import hashlib

    def digest(names):
        return None if names is None else hashlib.sha256("\n".join(map(str, names)).encode()).hexdigest()[:16]

    return {"n_features": model.n_features, "n_labels": model.n_labels, "data_task": model.data_task,
            "labels_digest": digest(model.label_names), "features_digest": digest(feature_names)}


DIGEST_KEYS = ("labels_digest", "features_digest")  # ids_of's digests, kept in awe_export.json
ID_WORDS = dict(zip(DIGEST_KEYS, ("label names", "feature names or their order"), strict=True))  # changed_ids' words


def check_target(model, base_dir, name: str, flavour: str, version: int | None = None, keep: int | None = None,
                 new_ids: bool = False, feature_names=None) -> None:
    """Refuse (ValueError), before any work, an export of ``model`` as ``base_dir/name`` that
    :func:`export` could not write or should not: a bad name or version, another flavour under
    the name, or (unless ``new_ids``) a model whose ids mean other things than the newest
    version's (:func:`changed_ids`, with the model's ``feature_names`` where given: TF Serving
    would switch the name's clients to it)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad model name {name!r}: use a plain directory name")
    model_dir = Path(base_dir) / name
    layout.next_version(model_dir, version, keep)
    for existing in layout.versions(model_dir):
        recorded = read_metadata(model_dir / str(existing))
        other = recorded.get("flavour")
        if other not in (None, flavour):
            raise ValueError(f"{model_dir} holds {other} exports (version {existing}); a {flavour} export needs "
                             "another name (awe-tf export --name, export(name=...))")
    changed = None if new_ids else changed_ids(model, model_dir, feature_names)
    if changed:
        raise ValueError(f"{model_dir}'s {changed[2]} ({changed[0]}) serves a model whose ids mean other things "
                         f"({changed[1]}): its clients' requests would too; export this one under another name, or "
                         "with --new-ids (new_ids=True in Python) once its clients send the new ids")


def changed_ids(model, model_dir: Path, feature_names=None) -> tuple[int, str, str] | None:
    """Where the ids of ``model`` mean other things than those the versions exported in
    ``model_dir`` serve (:func:`ids_of`): ``(the version, what differs in words, which version it
    is in words)``; else None. Each of :func:`ids_of`'s entries is compared with the newest
    version that records it, back to the newest exported with new ids (``new_ids``): an export
    of an unnamed model, or one given no feature names, leaves the names of the version before it
    in force. Feature names are compared where this export is given them."""
    this = ids_of(model, feature_names)
    wanted = [key for key in this if not (key == "features_digest" and this[key] is None)]  # names given: known
    found, newest = {}, None  # the newest version recording each entry: (version, value)
    for existing in reversed(layout.versions(model_dir)):  # one file read, as a rule
        recorded = read_metadata(model_dir / str(existing))
        if not recorded:
            continue
        newest = existing if newest is None else newest
        for key in wanted:
            if key not in found and recorded.get(key) is not None:
                found[key] = (existing, recorded[key])
        if recorded.get("new_ids") or len(found) == len(wanted):
            break
    differ = [key for key in wanted if key in found and found[key][1] != this[key]]
    if not differ:
        return None
    version = max(found[key][0] for key in differ)
    told = ", ".join(ID_WORDS.get(key, f"{key} {found[key][1]} -> {this[key]}") for key in differ)
    return version, told, "newest version" if version == newest else "newest version naming them"


def export(model, base_dir, name: str, version: int | None = None, flavour: str = "scann", keep: int | None = None,
           candidates: int = 100, queries=None, log=print, random_queries: int = 200, new_ids: bool = False,
           data: dict | None = None, feature_names: Sequence[str] | None = None) -> Path:
    """Write ``model`` as ``<base_dir>/<name>/<version>/`` for TF Serving, atomically.

    The version directory holds the SavedModel (``serving_default``: inputs ``feature_ids``
    ``[batch, n]`` int32 padded with -1, ``feature_weights`` ``[batch, n]`` float32 raw values,
    ``k`` int32 scalar; outputs ``label_ids``, ``labels``, ``scores`` ``[batch, k]``), and in
    ``assets.extra/`` TF Serving warmup requests, ``awe_export.json`` (flavour, sizes, the
    largest k, the ops it needs, and ``recall``: recall@k of its top k against the exact ranking,
    k = ``recall_k``, 10 or the largest k where that is smaller) and, for a model with label
    names, ``labels.json``: the names as a JSON list, label id n at position n. A client maps a
    recommendation model's items to its ``feature_ids`` with it (its inputs are its labels:
    an interactions file's item ids); the graph's ``labels`` output gives the same names. Given
    ``feature_names`` (an annotation model's data's: ARFF attributes, XC text's column numbers),
    ``features.json`` holds them the same way, so a client sends its features by id.

    Args:
        model: a trained :class:`~awe_tf.models.AWEModel` (it need not have been called).
        base_dir: the directory TF Serving's ``--model_base_path`` parent points at.
        name: the model name (the ``<name>`` directory and the warmup requests' model_spec).
        version: default: one more than the newest existing version.
        flavour: ``scann`` (ScaNN retrieval; needs ScaNN's ops to load) or ``portable`` (stock
            ops only; the export fails if any other op slips in).
        keep: keep only this many newest versions.
        candidates: labels ScaNN fetches per query before exact re-ranking (and the largest k),
            where ScaNN searches V (G not built from the training set; where it is, the largest k is
            every label).
        queries: raw input rows (values as in the data file) used to measure recall@k and as
            warmup requests; default: ``random_queries`` rows of a few random features each.
        log: where progress lines go (``None``: nowhere).
        random_queries: how many random rows stand in for ``queries`` where none are given.
        new_ids: export a model whose ids mean other things than the newest version's under
            ``name`` (other inputs, labels or label names), for clients that send the new ones.
        data: what names the data the model is for (``awe-tf export`` gives its data set's name
            or files and fingerprints, as a run's ``metrics.json`` has them), kept in
            ``awe_export.json`` for ``awe-tf evaluate --served`` to score the export on. Files are
            named by their absolute paths on this machine, which the export carries wherever
            it is copied.
        feature_names: the names of the model's input features, feature id n at position n (its
            data's ``feature_names``), for ``features.json``; None: none is written. Refused for a
            recommendation model, whose inputs are its labels (``labels.json``).

    Returns:
        The version directory written.

    Raises:
        ValueError: as :func:`check_target` says, and for bad ``candidates`` or queries.
    """
    if feature_names is not None:
        feature_names = [str(feature) for feature in feature_names]
        if model.data_task == "recommendation":
            raise ValueError("feature_names is for annotation models: a recommendation model's inputs are its labels "
                             "(labels.json)")
        if len(feature_names) != model.n_features:
            raise ValueError(f"feature_names has {len(feature_names)} names for the model's {model.n_features} "
                             "features")
    check_target(model, base_dir, name, flavour, version, keep, new_ids, feature_names)  # before any work
    changed = changed_ids(model, Path(base_dir) / name, feature_names) if new_ids else None
    meaning = ids_of(model, feature_names)  # what its ids mean, recorded for a later version's check
    model = _whole_tables(model)
    require("tensorflow_serving.apis", "an export (its TF Serving warmup requests)")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates must be a whole number of at least 1, got {candidates!r}")
    model_dir = Path(base_dir) / name
    say = log or (lambda line: None)
    given = queries is not None
    check_whole("random_queries", random_queries, 1)
    queries = sp.csr_matrix(queries) if given else _probe_inputs(model.n_features, random_queries,
                                                                    categories=model.transform.categories)
    if queries.shape[0] == 0:
        raise ValueError("no queries to measure recall with (give at least one row, or none for random probes)")
    say(f"building the {flavour} serving graph ({model.n_labels} labels)")
    module = ServingModule(model, flavour, candidates)
    if 0 < module.indexed_rows <= BRUTE_FORCE_ROWS:  # ScaNN searches so small an index exactly
        searched = (f"the {model.n_labels} labels" if module.candidates
                    else f"the {module.indexed_rows} training inputs (G's neighbours)")
        say(f"note: ScaNN searches {searched} exactly, and exact scoring is as fast; the portable flavour "
            "serves this model just as well")
    recall_k = min(10, module.max_k)
    recall = _recall(module, model, queries, recall_k)
    source = "rows given" if given else ("random probe rows: give the data (awe-tf export --dataset or --train; "
                                         "queries= in Python) for real ones")
    say(f"recall@{recall_k} of the {flavour} graph against the exact ranking: {recall:.4f} "
        f"({queries.shape[0]} {source})")

    def write(directory: Path):
        options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
        with _quiet("tensorflow", "absl"):  # its INFO lines (a temporary folder's assets, inputs renamed)
            tf.saved_model.save(module, str(directory), signatures={SIGNATURE: module.serve}, options=options)
        custom = ops.custom_ops(directory)
        if flavour == "portable" and custom:
            raise RuntimeError(f"the portable export needs non-stock ops {custom}: it would not load in stock TF "
                               "Serving; this is a bug in awe-tf, please report it")
        extra = directory / "assets.extra"
        ids, weights = request_arrays(queries[:5], model.n_features)
        warmup_records(extra / WARMUP_FILE, name, ids, weights, min(10, module.max_k))
        metadata = {
            "format": 2, "flavour": flavour, "signature": SIGNATURE, "n_features": model.n_features,
            "n_labels": model.n_labels, "max_k": module.max_k, "candidates": module.candidates,
            "neighbours": module.neighbours, "data_task": model.data_task, "exclude_inputs": module.interactions,
            "unrankable_labels": module.unrankable, "custom_ops": custom,
            "recall_at_10": recall if recall_k == 10 else None, "recall_k": recall_k, "recall": recall,
            "recall_queries": int(queries.shape[0]), "named_labels": model.label_names is not None,
            "tables_digest": tables_digest(model),  # which model's U and V: evaluate --served checks it
            **{key: meaning[key] for key in DIGEST_KEYS}, "new_ids": new_ids,
            "model": model.get_config() | {"label_names": None},  # the names are in the graph (labels)
            "data": data,
        }
        metadata_file(directory).write_text(json.dumps(metadata, indent=1))
        if model.label_names is not None:
            (extra / LABELS_FILE).write_text(json.dumps(list(model.label_names), ensure_ascii=False), encoding="utf-8")
        if feature_names is not None:
            (extra / FEATURES_FILE).write_text(json.dumps(feature_names, ensure_ascii=False), encoding="utf-8")

    final = layout.write_version(model_dir, write, version=version, keep=keep)
    say(f"exported {final}")
    if changed:
        say(f"note: this version's ids mean other things than version {changed[0]}'s ({changed[1]}): a client "
            f"sending version {changed[0]}'s ids is answered about other labels; its clients need this version's ids "
            "(assets.extra/labels.json) as TF Serving switches to it")
    return final


def _whole_tables(model):
    """``model`` itself, or, where parameter servers hold its variables (a model trained under them
    in Python, its tables in shards), a copy of it holding them in this process, made as a saved
    model is loaded: a SavedModel's functions read variables the process saving it owns."""
    from awe_tf.distribute import is_parameter_server

    if not is_parameter_server(model.distribute_strategy):
        return model
    if tf.distribute.has_strategy():  # the copy would be made under it, its tables on the cluster again
        raise ValueError("a model trained under parameter servers is exported outside the strategy's scope: call "
                         "export after the `with strategy.scope():` block")
    with tempfile.TemporaryDirectory() as folder:
        model.save_model(Path(folder) / "model")
        return type(model).load_model(Path(folder) / "model")


def signature_defaults(path: Path) -> dict:
    """The default values ``serving_default`` records for its optional inputs (TF Serving fills
    them into a request that leaves those inputs out), as tensors."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    for graph in saved.meta_graphs:
        if SIGNATURE in graph.signature_def:
            return {name: tf.constant(tf.make_ndarray(value))
                    for name, value in graph.signature_def[SIGNATURE].defaults.items()}
    return {}


class _WithDefaults:
    """A loaded signature that, as TF Serving does, fills in the optional inputs a call leaves out."""

    def __init__(self, function, defaults: dict):
        self.function, self.defaults = function, defaults

    def __call__(self, **inputs):
        return self.function(**{**self.defaults, **inputs})


class ServedModel:
    """An exported model loaded for prediction: call it with raw input rows.

    Attributes:
        path: the version directory loaded.
        metadata: the export's ``awe_export.json`` (flavour, sizes, recall, ...).
        signature: the ``serving_default`` function, called with the signature's inputs as
            keyword tensors; the optional ones default as in TF Serving.
    """

    def __init__(self, path: Path, signature, metadata: dict, loaded):
        self.path, self.signature, self.metadata, self._loaded = path, signature, metadata, loaded

    @property
    def label_names(self) -> list[str] | None:
        """The labels' names the model was trained with (None where it had none, or an export
        older than this record)."""
        if not self.metadata.get("named_labels") or not hasattr(self._loaded, "label_names"):
            return None
        return [name.decode("utf-8") for name in self._loaded.label_names.numpy()]

    @property
    def feature_names(self) -> list[str] | None:
        """The names of the features an annotation model was exported with (its data's,
        ``features.json``), feature id n at position n; None where the export was given none."""
        path = Path(self.path) / "assets.extra" / FEATURES_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def __call__(self, X=None, k: int | None = None, feature_ids=None, feature_weights=None, exclude=None,
                 exclude_inputs: bool | None = None) -> dict:
        """Top-k labels of raw input rows ``X`` (sparse/dense matrix, values as in the data
        file), or of padded ``feature_ids`` / ``feature_weights`` arrays as the signature takes
        them. Requests are checked here first, so a bad one fails with a one-line ValueError.

        Args:
            k: how many labels (default 10, or every label the export can return if fewer).
            exclude: label ids to leave out: one list for every row, or one list per row (of any
                lengths).
            exclude_inputs: leave out each row's own items (recommendation models; default: the
                export's, on for them).

        Returns:
            ``{"label_ids": [n, k] int, "labels": [n, k] str, "scores": [n, k] float}``; a row
            with fewer than k labels left to rank ends in ids -1, labels "" and scores -inf.
        """
        max_k = int(self.metadata.get("max_k", 10))
        n_labels = int(self.metadata.get("n_labels", max_k))
        if X is not None:
            items = self.metadata.get("data_task") == "recommendation"  # its inputs are its labels
            names = (self.label_names if items else self.feature_names) if is_frame(X) else None  # read by name
            feature_ids, feature_weights = request_arrays(X, self.metadata.get("n_features"), names, every=not items)
        if feature_ids is None:
            raise ValueError("pass input rows X, or feature_ids and feature_weights")
        feature_ids = id_array(feature_ids, "feature_ids")
        if feature_weights is None:
            feature_weights = np.ones(feature_ids.shape, np.float32)
        feature_weights = weight_array(feature_weights, "feature_weights")
        self._check_features(feature_ids, feature_weights)
        k = min(10, max_k) if k is None else _whole_k(k, max_k)
        inputs = {"feature_ids": feature_ids, "feature_weights": feature_weights, "k": np.int32(k)}
        inputs["exclude_ids"] = self._exclusions(exclude, feature_ids.shape[0], n_labels)
        default = bool(self.metadata.get("exclude_inputs", False))
        if exclude_inputs and not default and self.metadata.get("data_task") != "recommendation":
            raise ValueError("exclude_inputs is for recommendation models, whose inputs are their labels")
        inputs["exclude_inputs"] = np.bool_(default if exclude_inputs is None else exclude_inputs)
        out = self.signature(**{key: tf.constant(value) for key, value in inputs.items()})
        labels = np.char.decode(out["labels"].numpy().astype(bytes), "utf-8")
        return {"label_ids": out["label_ids"].numpy(), "labels": labels, "scores": out["scores"].numpy()}

    def rows_of(self, items, weights=None, unknown: str = "refuse") -> sp.csr_matrix:
        """Input rows of a recommendation model from each row's items by name, as a client knows
        them: the names are the model's labels' (:attr:`label_names`: an interactions file's
        item ids), and its inputs are its labels. ``served(served.rows_of([["i3", "i17"]]))``
        recommends for a user the model never saw.

        Args:
            items: one list of item names per row (a new user's items).
            weights: one list of weights per row, as the data file has them (default 1 each; a
                warning where the model's training users' items had weights other than 1).
            unknown: ``refuse`` an item the model does not have (new since it was trained), or
                ``skip`` it: the row is then the rest of its items.

        Raises:
            ValueError: not a recommendation export, an export without names, a name the model
                does not have (named; not with ``unknown="skip"``), or one two items share
                (MovieLens titles: send ids).
        """
        if self.metadata.get("data_task") != "recommendation":
            raise ValueError("rows_of is for recommendation models, whose inputs are their items; give other "
                             "models' rows by feature id (X, or feature_ids)")
        names = self.label_names
        if names is None:
            raise ValueError(f"{self.path} records no item names: give the rows by id (X, or feature_ids)")
        transform = (self.metadata.get("model") or {}).get("input_transform") or {}
        rows, said = model_rows_of_items(names, transform.get("weighted", False), transform.get("ignored"), items,
                                         weights, unknown, by_id="X, or feature_ids")
        for warning in said:
            warnings.warn(warning, stacklevel=2)
        return rows

    def _check_features(self, feature_ids: np.ndarray, feature_weights: np.ndarray) -> None:
        """The checks the signature's graph makes of the raw inputs, here first, as one-line errors
        (the graph alone refuses a value its input transform takes beyond float32):
        weights of the ids' shape, ids from 0 to |X| - 1 or the padding -1, no id twice in a row,
        finite weights on the ids, not negative for a recommendation model, a category coded as
        its reader does (1 on its value's column, one value of each in a row) (``tests/test_bad_input.py``
        sends each case both ways, ``tests/test_transform.py`` a category's)."""
        if feature_weights.shape != feature_ids.shape:
            raise ValueError(f"feature_weights has shape {feature_weights.shape} but feature_ids {feature_ids.shape}: "
                             "give one weight per id")
        n_features = self.metadata.get("n_features")
        top = f"{n_features - 1}" if n_features is not None else "|X| - 1"
        bad = (feature_ids < PADDING_ID) | (feature_ids >= n_features if n_features is not None else False)
        if bad.any():
            raise ValueError(f"feature_ids must be feature ids from 0 to {top} (or {PADDING_ID}, padding), "
                             f"got {feature_ids[bad][:3].tolist()}")
        ordered = np.sort(feature_ids, axis=1)
        twice = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != PADDING_ID)
        if twice.any():
            row = int(np.flatnonzero(twice.any(axis=1))[0])
            raise ValueError(f"feature_ids: feature {ordered[row, 1:][twice[row]][0]} appears twice in row {row}; "
                             "send each feature once, with its summed weight")
        weights = feature_weights[feature_ids != PADDING_ID]
        if not np.isfinite(weights).all():
            raise ValueError(f"feature_weights must be finite numbers, got "
                             f"{weights[~np.isfinite(weights)][:3].tolist()}")
        if self.metadata.get("data_task") == "recommendation" and (weights < 0).any():
            raise ValueError(f"feature_weights: {NEGATIVE_ITEMS}, got {weights[weights < 0][:3].tolist()}")
        categories = ((self.metadata.get("model") or {}).get("input_transform") or {}).get("categories")
        if categories:
            given = feature_ids != PADDING_ID
            rows = sp.csr_matrix((feature_weights[given], (np.nonzero(given)[0], feature_ids[given])),
                                 shape=(feature_ids.shape[0], n_features))
            rows.eliminate_zeros()
            if category_coding_error(rows, categories):  # said again by name (features.json is read only then)
                wrong = category_coding_error(rows, categories, self.feature_names)
                raise ValueError(f"feature_ids, feature_weights: {wrong}: {CATEGORY_CODING}")

    @staticmethod
    def _exclusions(exclude, n_rows: int, n_labels: int) -> np.ndarray:
        """``exclude`` (one list of label ids, or one per row) as the padded ``exclude_ids``."""
        if exclude is None:
            return np.full((1, 1), PADDING_ID, np.int32)
        if isinstance(exclude, (str, bytes)) or not hasattr(exclude, "__iter__") or \
                (isinstance(exclude, np.ndarray) and exclude.ndim == 0):  # one id (ragged lists have no ndim)
            raise ValueError(f"exclude takes a list of label ids (exclude=[{exclude!r}]), or one list per row")
        items = list(exclude)
        per_row = bool(items) and all(np.ndim(item) == 1 for item in items)
        rows = [list(item) for item in items] if per_row else [items]
        if per_row and len(rows) != n_rows:
            raise ValueError(f"exclude has {len(rows)} lists for {n_rows} rows (give one list for all rows, or one "
                             "per row)")
        width = max(1, max(len(row) for row in rows))
        ids = id_array([row + [PADDING_ID] * (width - len(row)) for row in rows], "exclude_ids")
        if ((ids < PADDING_ID) | (ids >= n_labels)).any():
            raise ValueError(f"exclude_ids must be label ids from 0 to {n_labels - 1}, got "
                             f"{ids[(ids < PADDING_ID) | (ids >= n_labels)][:3].tolist()}")
        return ids


def load(path) -> ServedModel:
    """Load an export (a version directory, or ``<base>/<name>`` for its newest version) in
    this process, registering ScaNN's ops first when the export needs them."""
    path = layout.resolve(path)
    ops.load_op_libraries(ops.required_ops(path))
    loaded = tf.saved_model.load(str(path))
    if SIGNATURE not in loaded.signatures:
        raise ValueError(f"{path} has no {SIGNATURE} signature")
    return ServedModel(path, _WithDefaults(loaded.signatures[SIGNATURE], signature_defaults(path)), read_metadata(path),
                       loaded)


def metadata_file(version_dir) -> Path:
    """Where an export keeps its ``awe_export.json``: beside its warmup requests."""
    return Path(version_dir) / "assets.extra" / METADATA_FILE


def read_metadata(version_dir) -> dict:
    """An export's ``awe_export.json`` (its version directory's; empty where it has none).

    Raises:
        ValueError: the file is there but is not JSON.
    """
    source = metadata_file(version_dir)
    if not source.exists():
        return {}
    try:
        return json.loads(source.read_text())
    except ValueError as error:
        raise ValueError(f"{source} cannot be read as JSON ({error})") from None
