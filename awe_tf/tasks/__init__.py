"""Training tasks: WARP (and its all-violators variant) as TFRS tasks."""

from awe_tf.tasks.warp import WarpTask, first_violators, harmonic, warp_pair_losses

__all__ = ["WarpTask", "first_violators", "harmonic", "warp_pair_losses"]
