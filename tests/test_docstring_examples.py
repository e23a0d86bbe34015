"""The runnable examples in the library's docstrings give the numbers they show (doctest)."""

import doctest
import importlib

import pytest

# The modules whose docstrings carry examples: the WARP rank weight and violators, the top-k and
# linear sigmoid affinities, the ranking metrics, the SVD's weights and ranks, padding, data names,
# search spaces in words, numeric columns, attributes that look like labels left out of a list,
# the spread over seeds.
MODULES = ("awe_tf.tasks.warp", "awe_tf.affinities.pairwise", "awe_tf.metrics.ranking", "awe_tf.baselines.svd",
           "awe_tf.data.pipeline", "awe_tf.data.text", "awe_tf.tuning.spaces", "awe_tf.data.dataset",
           "awe_tf.data.mulan", "awe_tf.reproduction")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_give_what_they_show(name):
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted > 0, f"{name} has no example left"
    assert results.failed == 0, f"{results.failed} of {name}'s examples gave other results (see the output above)"
