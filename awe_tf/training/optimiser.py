"""The optimiser state of U and V: read for the native engine, carried between iterative steps.

Keras' Adagrad (the default optimiser) keeps one accumulator of squared gradients per table; its
step size for a row shrinks as that row's accumulator grows. A fresh optimiser on a warm U and V
would restart every row at the large initial step size; :func:`continue_optimiser` lets the
next step of iterative learning continue the same optimisation instead.
"""

from __future__ import annotations

import tensorflow as tf


def adagrad_accumulator(optimizer, variable):
    """Keras Adagrad's accumulator of ``variable``."""
    try:
        return optimizer._accumulators[optimizer._index_dict[optimizer._var_key(variable)]]
    except (AttributeError, KeyError) as error:  # private API of tf_keras' Adagrad: fail loudly if it moves
        raise RuntimeError("cannot find the Adagrad accumulators of this tf_keras version; "
                           "train with engine='graph'") from error


def adagrad_accumulators(optimizer, table) -> list:
    """Keras Adagrad's accumulators of ``table``, one per shard where the table is cut across
    parameter servers (Keras keeps a slot per shard), in row order; one for a plain table."""
    return [adagrad_accumulator(optimizer, part) for part in getattr(table, "variables", [table])]


def plain_kind(optimizer) -> str | None:
    """``adagrad`` or ``sgd`` (plain, no momentum): the optimisers whose state this module knows;
    None for any other."""
    if isinstance(optimizer, tf.keras.optimizers.Adagrad):
        return "adagrad"
    if isinstance(optimizer, tf.keras.optimizers.SGD) and not float(tf.keras.backend.get_value(optimizer.momentum)):
        return "sgd"
    return None


def continue_optimiser(source, target) -> None:
    """Give ``target``'s optimiser the state ``source``'s left U and V in (both models compiled).

    Adagrad: the accumulators of U and V are copied, whole or shard by shard (however either
    model's tables are cut across parameter servers); plain SGD has no state. Other optimisers
    are refused.
    """
    if source.optimizer is None or target.optimizer is None:
        raise ValueError("both models need an optimiser (compile them first)")
    if type(source.optimizer) is not type(target.optimizer):
        raise ValueError(f"cannot continue the {type(source.optimizer).__name__} optimiser state with "
                         f"{type(target.optimizer).__name__}")
    kind = plain_kind(target.optimizer)
    if kind is None:
        raise ValueError(f"continue_optimiser carries Adagrad's state (and plain SGD has none), not "
                         f"{type(target.optimizer).__name__}'s")
    if kind == "adagrad":
        for mine, theirs in ((target.U.table, source.U.table), (target.V.table, source.V.table)):
            given = [tf.convert_to_tensor(part) for part in adagrad_accumulators(source.optimizer, theirs)]
            whole, start = given[0] if len(given) == 1 else tf.concat(given, 0), 0
            for part in adagrad_accumulators(target.optimizer, mine):
                part.assign(whole[start : start + part.shape[0]])
                start += part.shape[0]
