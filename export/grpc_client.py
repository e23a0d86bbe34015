"""Query a TF Serving model exported by awe-tf over gRPC (tensorflow-serving-api).

    python grpc_client.py --server localhost:8500 --model awe-portable --features 3,17,42 --k 10

Needs only `pip install tensorflow-serving-api grpcio` (not awe-tf). Each --features value is one
input row: comma-separated feature ids, optionally id:value (default value 1). Rows are padded
with id -1 (weight 0); the server normalises them as in training. --exclude 12,40 leaves those
label ids out of every row's answer.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import numpy as np

NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")  # a decimal number as a data file writes one
FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_row(text: str) -> list[tuple[int, float]]:
    """``3,17:0.5,42`` as [(3, 1.0), (17, 0.5), (42, 1.0)]; a ValueError names a bad entry (a
    value that is not a plain decimal number, or one float32, the request's type, cannot hold)."""
    pairs = []
    for item in filter(None, (entry.strip() for entry in text.split(","))):
        feature, colon, value = (part.strip() for part in item.partition(":"))
        if not (feature.isascii() and feature.isdigit()) or int(feature) > 2**31 - 1:
            raise ValueError(f"--features {text!r}: {feature!r} is not a feature id (a whole number, 0 to 2^31 - 1)")
        if colon and not NUMBER.fullmatch(value):
            raise ValueError(f"--features {text!r}: the value {value!r} of feature {feature} is not a number "
                             f"(write {feature} alone for value 1)")
        number = float(value) if colon else 1.0
        if abs(number) > FLOAT32_MAX:
            raise ValueError(f"--features {text!r}: the value {value} of feature {feature} is beyond float32's range "
                             "(the request's type)")
        pairs.append((int(feature), number))
    return pairs


def parse_ids(text: str) -> list[int]:
    """``12,40`` as [12, 40] (label ids for --exclude); a ValueError names a bad entry."""
    ids = []
    for item in filter(None, (entry.strip() for entry in text.split(","))):
        if not (item.isascii() and item.isdigit()) or int(item) > 2**31 - 1:
            raise ValueError(f"--exclude {text!r}: {item!r} is not a label id (a whole number, 0 to 2^31 - 1)")
        ids.append(int(item))
    return ids


def build_request(model: str, rows: list[list[tuple[int, float]]], k: int, version_label: str | None = None,
                  exclude: list[int] | None = None):
    """A PredictRequest for the serving_default signature (``exclude``: label ids never returned,
    for every row; left out, the signature's default excludes none)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if not rows:
        raise ValueError("no rows to request (give --features at least once)")
    width = max(1, max(len(r) for r in rows))
    ids = np.full((len(rows), width), -1, np.int32)
    weights = np.zeros((len(rows), width), np.float32)
    for i, row in enumerate(rows):
        for j, (feature, value) in enumerate(row):
            ids[i, j], weights[i, j] = feature, value
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    if version_label:
        request.model_spec.version_label = version_label
    request.inputs["feature_ids"].CopyFrom(tf.make_tensor_proto(ids))
    request.inputs["feature_weights"].CopyFrom(tf.make_tensor_proto(weights))
    request.inputs["k"].CopyFrom(tf.make_tensor_proto(np.int32(k)))
    if exclude:
        request.inputs["exclude_ids"].CopyFrom(tf.make_tensor_proto(np.asarray([exclude], np.int32)))
    return request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", default="awe-portable", help="awe-portable, or awe (ScaNN) with models.config")
    parser.add_argument("--version-label", help="e.g. stable (see models.config)")
    parser.add_argument("--features", action="append", required=True, help="one input row, e.g. 3,17:0.5,42")
    parser.add_argument("--k", type=int, default=10, help="how many labels (1 to the export's max_k)")
    parser.add_argument("--exclude", default="", help="label ids never to return, e.g. 12,40")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if not 1 <= args.k <= 2**31 - 1:
        parser.error(f"--k must be 1 to the export's max_k, got {args.k}")
    try:
        rows = [parse_row(r) for r in args.features]
        exclude = parse_ids(args.exclude)
    except ValueError as error:
        parser.error(str(error))

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up lines, before it is imported
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = build_request(args.model, rows, args.k, args.version_label, exclude)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(args.server))
    try:
        response = stub.Predict(request, args.timeout)
    except grpc.RpcError as error:  # unreachable server, unknown model, a request the graph refuses
        print(f"error: {args.server}, model {args.model}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    for line in answer_lines(*(tf.make_ndarray(response.outputs[name]) for name in ("label_ids", "labels", "scores"))):
        print(line)
    return 0


def answer_lines(label_ids, labels, scores) -> list[str]:
    """One line per request row: each label as ``name [id] (score)``, best first. The id is what
    maps an answer back to the data (names may repeat, as MovieLens titles do); a slot no label
    could fill (id -1) is left out."""
    lines = []
    for row, (ids, names, values) in enumerate(zip(label_ids, labels, scores, strict=True)):
        ranked = [f"{name.decode('utf-8')} [{label}] ({score:.3f})"
                  for label, name, score in zip(ids, names, values, strict=True) if label >= 0]
        lines.append(f"row {row}: {', '.join(ranked) or '(no label it may return)'}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
