"""A seeded synthetic recommendation set of any size, made on the fly (nothing to download).

Items have a power-law popularity (item of popularity rank r drawn with weight r^-alpha) and
belong to one of ``groups`` latent groups; each user belongs to a group and draws a share
``in_group`` of its items from its group's items, the rest from the whole catalogue, both by
popularity. So P@10 above the popularity baseline is there to be learnt (from the group a
user's items reveal), and popularity is a real baseline to beat.

    from synthetic import recommendation_set
    split = recommendation_set(users=100_000, items=100_000)   # the protocol's split (5 held out)

Memory: the interactions as CSR (users x items_per_user entries), never users x items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from awe_tf.data import RECOMMENDATION, Dataset, Split
from awe_tf.data.protocols import recommendation_split


def check_sizes(users: int, items: int, per_user: int) -> None:
    """Refuse (ValueError) sizes the synthetic set cannot be drawn with."""
    if users < 1 or items < 2 * per_user or per_user < 6:
        raise ValueError(f"need users >= 1, per_user >= 6 (5 are held out) and items >= 2 * per_user; got users "
                         f"{users}, items {items}, per_user {per_user}")


def interactions(users: int, items: int, per_user: int = 20, groups: int = 50, in_group: float = 0.8,
                 alpha: float = 1.0, seed: int = 0) -> sp.csr_matrix:
    """``users x items`` 0/1 CSR: about ``per_user`` distinct items per user (draws that repeat
    an item merge)."""
    check_sizes(users, items, per_user)
    rng = np.random.default_rng(seed)
    weight = np.empty(items)
    weight[rng.permutation(items)] = np.arange(1, items + 1, dtype=np.float64) ** -alpha
    item_group = rng.integers(groups, size=items)
    user_group = rng.integers(groups, size=users)
    own = rng.random((users, per_user)) < in_group
    draws = np.empty((users, per_user), np.int64)
    everywhere = np.cumsum(weight) / weight.sum()
    draws[~own] = np.minimum(np.searchsorted(everywhere, rng.random(int((~own).sum()))), items - 1)
    for group in range(groups):
        members = np.flatnonzero(item_group == group)
        mask = own & (user_group == group)[:, None]
        if not members.size:
            draws[mask] = np.minimum(np.searchsorted(everywhere, rng.random(int(mask.sum()))), items - 1)
            continue
        cumulative = np.cumsum(weight[members]) / weight[members].sum()
        picks = np.minimum(np.searchsorted(cumulative, rng.random(int(mask.sum()))), members.size - 1)
        draws[mask] = members[picks]
    rows = np.repeat(np.arange(users), per_user)
    matrix = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, draws.ravel())), shape=(users, items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def recommendation_set(users: int, items: int, seed: int = 0, **settings) -> Split:
    """:func:`interactions` as a recommendation :class:`~awe_tf.data.Dataset`, split by the
    protocol (5 held-out items per user)."""
    matrix = interactions(users, items, seed=seed, **settings)
    names = [str(i) for i in range(items)]
    data = Dataset(X=matrix, Y=matrix.copy(), feature_names=names, label_names=names, task=RECOMMENDATION,
                   name=f"synthetic-{users}x{items}")
    return recommendation_split(data)
