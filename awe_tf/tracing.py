"""Graphs made once per object (a model's scoring graphs, an input transform's graph), traced on
first use and then called as that one graph."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf


class TracedOnce:
    """``function`` as one graph for ``signature``, traced as written (without AutoGraph) on the
    first call or :meth:`get_concrete_function`, and called as that graph from then on.

    ``tf.function`` counts, per Python code object rather than per graph, how many of its recent
    calls traced, and warns of "retracing" when many did. A graph made for each new model and
    called once or twice, as in a process that builds many models, would set that warning off
    though nothing is traced twice. Calls to the traced (concrete) function are not counted.

    Args:
        function: graph code (G's hooks and the layers' calls; no Python branch on a tensor).
        signature: the ``tf.TensorSpec`` of each argument.
    """

    def __init__(self, function: Callable, signature: Sequence[tf.TensorSpec]):
        self._function = tf.function(function, input_signature=signature, autograph=False)
        self._concrete = None

    def get_concrete_function(self) -> tf.types.experimental.ConcreteFunction:
        """The traced graph, traced now if it was not yet.

        Returns:
            The ``ConcreteFunction`` every call runs.
        """
        if self._concrete is None:
            self._concrete = self._function.get_concrete_function()
        return self._concrete

    def __call__(self, *args) -> Any:
        """Run the traced graph on ``args`` (tensors, or arrays of the signature's dtypes)."""
        return self.get_concrete_function()(*args)
