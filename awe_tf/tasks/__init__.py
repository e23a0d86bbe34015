"""Training tasks: WARP (first violator) and its all-violators variant as TFRS tasks."""

from awe_tf.tasks.warp import (
    TASKS,
    AllViolatorsWarp,
    FirstViolatorWarp,
    PairMean,
    WarpTask,
    all_violators,
    first_violators,
    harmonic,
)

__all__ = ["TASKS", "AllViolatorsWarp", "FirstViolatorWarp", "PairMean", "WarpTask", "all_violators",
           "first_violators", "harmonic"]
