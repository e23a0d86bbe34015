"""Ops audit: which ops a SavedModel needs, and whether stock TensorFlow (and so stock TF Serving,
TF Java, Triton's TF backend) has them."""

from __future__ import annotations

from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

# Ops a custom library registers carry its namespace ("Scann>ScannSearchBatched"); stock ops
# never do. Which library provides each namespace, for the error messages.
PROVIDERS = {"Scann": "scann (pip install scann; ScaNN's TF ops)"}


def required_ops(path) -> list[str]:
    """Every op type in the SavedModel at ``path`` (its graph and its function library), sorted."""
    proto = saved_model_pb2.SavedModel()
    file = Path(path) / "saved_model.pb"
    if not file.exists():
        raise FileNotFoundError(f"{path} is not a SavedModel directory (no saved_model.pb)")
    proto.ParseFromString(file.read_bytes())
    ops = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(ops)


def is_stock(op: str) -> bool:
    """Whether ``op`` is one of TensorFlow's own ops (not a custom library's)."""
    return ">" not in op and op_def_registry.get(op) is not None


def custom_ops(path) -> list[str]:
    """The ops of the SavedModel at ``path`` that stock TensorFlow does not have."""
    return [op for op in required_ops(path) if not is_stock(op)]


def provider(op: str) -> str:
    namespace = op.split(">", 1)[0] if ">" in op else None
    return PROVIDERS.get(namespace, "an unknown custom op library")


def load_op_libraries(ops) -> None:
    """Register the custom ops a SavedModel needs (ScaNN's), or say what to install."""
    if any(op.startswith("Scann>") for op in ops):
        from awe_tf.optional import require

        require("scann.scann_ops.py.scann_ops", "this SavedModel's ScaNN ops (or load the portable flavour)")
    unknown = [op for op in ops if not (is_stock(op) or op.startswith("Scann>"))]
    if unknown:
        raise RuntimeError(f"this SavedModel needs ops no installed library provides: {', '.join(unknown)}")


def report(path) -> str:
    """A readable audit: one line per op, marked stock or custom, and a verdict."""
    ops = required_ops(path)
    lines = [f"{len(ops)} ops in {path}:"]
    for op in ops:
        lines.append(f"  {op:40s} {'stock' if is_stock(op) else 'CUSTOM: ' + provider(op)}")
    custom = [op for op in ops if not is_stock(op)]
    if custom:
        lines.append(f"needs custom ops ({len(custom)}): stock TF Serving cannot load it; use a TF Serving build "
                     "with them (export/Dockerfile) or the portable flavour")
    else:
        lines.append("only stock TensorFlow ops: stock TF Serving, TF Java and Triton's TF backend can load it")
    return "\n".join(lines)
