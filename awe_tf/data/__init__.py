"""Data: readers, the protocols of ``docs/protocols.md`` and tf.data pipelines."""

from awe_tf.data.dataset import ANNOTATION, RECOMMENDATION, Dataset, Split
from awe_tf.data.errors import DataFormatError
from awe_tf.data.interactions import read_interactions, read_movielens
from awe_tf.data.mulan import read_mulan
from awe_tf.data.protocols import protocol_split, validation_split
from awe_tf.data.registry import DEFAULT_DATASET, list_datasets, load_dataset, load_split, read_files
from awe_tf.data.xmlrepo import read_xmlrepo

__all__ = [
    "ANNOTATION",
    "RECOMMENDATION",
    "DEFAULT_DATASET",
    "DataFormatError",
    "Dataset",
    "Split",
    "list_datasets",
    "load_dataset",
    "load_split",
    "protocol_split",
    "read_files",
    "read_interactions",
    "read_movielens",
    "read_mulan",
    "read_xmlrepo",
    "validation_split",
]
