"""Models: :class:`AWEModel` (towers + affinity + WARP task)."""

from awe_tf.models.awe import AWEModel

__all__ = ["AWEModel"]
