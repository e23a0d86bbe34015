"""Seconds per training epoch, for the benchmarks (a Keras callback; validation scoring that
runs after an epoch's end is not counted)."""

import time

import tensorflow as tf

import awe_tf  # noqa: F401  (Keras 2 as tf.keras, before TensorFlow loads)


class EpochTimes(tf.keras.callbacks.Callback):
    """``seconds``: one entry per epoch, its training time."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seconds.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.seconds[-1] = time.perf_counter() - self.seconds[-1]
