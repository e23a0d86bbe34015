"""TF Serving export: SavedModels with ScaNN retrieval or stock ops only, written in the TF
Serving layout, audited for custom ops, and loadable in any process."""

from awe_tf.serving.exporter import ServedModel, export, load, request_arrays
from awe_tf.serving.layout import versions
from awe_tf.serving.ops import custom_ops, report, required_ops
from awe_tf.serving.signature import FLAVOURS, ServingModule

__all__ = ["FLAVOURS", "ServedModel", "ServingModule", "custom_ops", "export", "load", "report", "request_arrays",
           "required_ops", "versions"]
