"""Training tasks: WARP (first violator) and its all-violators variant as TFRS tasks."""

from awe_tf.tasks.warp import (
    TASKS,
    AllViolatorsWarp,
    FirstViolatorWarp,
    PairMean,
    WarpTask,
    first_violators,
    harmonic,
    violations,
    violator_share_rank,
)

__all__ = ["TASKS", "AllViolatorsWarp", "FirstViolatorWarp", "PairMean", "WarpTask", "first_violators", "harmonic",
           "violations", "violator_share_rank"]
