"""Seeded synthetic data sets made on the fly (nothing to download): a recommendation set of any
size, and bag-of-words text annotated from latent topics (:func:`topic_text`) or from keywords
(:func:`keyword_text`).

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
from awe_tf.data.protocols import protocol_split, recommendation_split


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


def check_topic_sizes(documents: int, words: int, labels: int, topics: int) -> None:
    """Refuse (ValueError) sizes :func:`topic_text` cannot draw a split set with."""
    if documents < 10 or min(words, labels, topics) < 1:
        raise ValueError(f"need documents >= 10 (every fifth is tested) and words, labels, topics >= 1; got "
                         f"documents {documents}, words {words}, labels {labels}, topics {topics}")


def topic_text(documents: int = 18_000, words: int = 20_000, labels: int = 600, topics: int = 40,
               length: int = 90, labels_per_document: float = 3.0, seed: int = 0) -> Split:
    """Bag-of-words documents annotated with labels, both drawn from latent topics (a topic
    model's data: low rank, sparse, a long tail of words and labels), split by the annotation
    protocol (every fifth document tested).

    Each topic has a distribution over words (half a Zipf law shared by all topics, half a sparse
    Dirichlet draw of its own) and one over labels (95% a sparse Dirichlet draw of its own, 5% a
    power law shared by all). A document mixes a few topics (Dirichlet weights, concentration
    0.1), has 1 + Poisson(``length``) words (a word's count is its value) and
    1 + Poisson(``labels_per_document`` - 1) label draws (repeats merge), each from its mixture.
    """
    check_topic_sizes(documents, words, labels, topics)
    if length < 1 or labels_per_document < 1:
        raise ValueError(f"need length >= 1 and labels_per_document >= 1; got {length} and {labels_per_document}")
    rng = np.random.default_rng(seed)
    zipf = np.arange(1, words + 1, dtype=np.float64) ** -1.05
    word_cdf = np.cumsum(0.5 * zipf / zipf.sum() + 0.5 * rng.dirichlet(np.full(words, 0.01), size=topics), axis=1)
    shared = np.arange(1, labels + 1, dtype=np.float64) ** -0.8
    label_p = 0.95 * rng.dirichlet(np.full(labels, 0.003), size=topics) + 0.05 * shared / shared.sum()
    rows, columns, label_rows, label_columns = [], [], [], []
    for document in range(documents):
        mixture = rng.dirichlet(np.full(topics, 0.1))
        for topic, count in enumerate(rng.multinomial(rng.poisson(length) + 1, mixture)):
            if count:
                drawn = np.searchsorted(word_cdf[topic], rng.random(count) * word_cdf[topic, -1])
                rows.append(np.full(count, document))
                columns.append(np.minimum(drawn, words - 1))
        drawn = rng.choice(labels, size=1 + rng.poisson(labels_per_document - 1), p=mixture @ label_p)
        label_rows.append(np.full(drawn.size, document))
        label_columns.append(drawn)
    return _text_split(rows, columns, label_rows, label_columns, (documents, words, labels), "topic-text")


def check_keyword_sizes(documents: int, words: int, labels: int, keywords: int) -> None:
    """Refuse (ValueError) sizes :func:`keyword_text` cannot draw a split set with."""
    check_topic_sizes(documents, words, labels, 1)
    if keywords < 1 or labels * keywords > words - 100:
        raise ValueError(f"need keywords >= 1 and labels * keywords <= words - 100 (keywords are words of their "
                         f"own, past the 100 commonest); got keywords {keywords}, labels {labels}, words {words}")


def keyword_text(documents: int = 18_000, words: int = 2_000, labels: int = 200, keywords: int = 3,
                 length: int = 90, labels_per_document: float = 3.0, seed: int = 0) -> Split:
    """Bag-of-words documents annotated with labels that their words name: each label has
    ``keywords`` words of its own (drawn among all but the 100 commonest), and a document with the
    label holds each of them with probability 0.6 (1 + Poisson(0.5) times); the rest of its 1 +
    Poisson(``length``) words come from a Zipf law over the whole vocabulary, and 5% of its labels
    are drawn with none of their words. A document has 1 + Poisson(``labels_per_document`` - 1)
    label draws from a power law (repeats merge). The labels are linear in the words, with no
    latent structure among them: the home ground of regression, split by the annotation protocol
    (every fifth document tested).
    """
    check_keyword_sizes(documents, words, labels, keywords)
    if length < 1 or labels_per_document < 1:
        raise ValueError(f"need length >= 1 and labels_per_document >= 1; got {length} and {labels_per_document}")
    rng = np.random.default_rng(seed)
    zipf = np.arange(1, words + 1, dtype=np.float64) ** -1.05
    word_cdf = np.cumsum(zipf) / zipf.sum()
    own = (100 + rng.permutation(words - 100)[: labels * keywords]).reshape(labels, keywords)
    popularity = np.arange(1, labels + 1, dtype=np.float64) ** -0.8
    rows, columns, label_rows, label_columns = [], [], [], []
    for document in range(documents):
        background = np.minimum(np.searchsorted(word_cdf, rng.random(rng.poisson(length) + 1)), words - 1)
        drawn = np.unique(rng.choice(labels, size=1 + rng.poisson(labels_per_document - 1),
                                     p=popularity / popularity.sum()))
        named = own[drawn[rng.random(drawn.size) >= 0.05]].ravel()  # the keywords of the labels named
        named = named[rng.random(named.size) < 0.6]
        doc_words = np.concatenate([background, np.repeat(named, 1 + rng.poisson(0.5, named.size))])
        rows.append(np.full(doc_words.size, document))
        columns.append(doc_words)
        label_rows.append(np.full(drawn.size, document))
        label_columns.append(drawn)
    return _text_split(rows, columns, label_rows, label_columns, (documents, words, labels), "keyword-text")


def _text_split(rows, columns, label_rows, label_columns, sizes, name) -> Split:
    """The documents' words (a word's count its value) and labels, each a list of per-document
    (row, column) arrays, as a data set of ``sizes`` (documents, words, labels), split by the
    annotation protocol."""
    documents, words, labels = sizes
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    X = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, columns)), shape=(documents, words))
    X.sum_duplicates()  # a word's count
    label_rows, label_columns = np.concatenate(label_rows), np.concatenate(label_columns)
    Y = sp.csr_matrix((np.ones(label_rows.size, np.float32), (label_rows, label_columns)), shape=(documents, labels))
    Y.sum_duplicates()
    Y.data[:] = 1.0
    data = Dataset(X=X, Y=Y, feature_names=[f"w{i}" for i in range(words)],  # counts kept as they are, as text's
                   label_names=[f"l{j}" for j in range(labels)], name=f"{name}-{documents}x{words}x{labels}",
                   numeric_features=np.zeros(words, bool))
    return protocol_split(data)


if __name__ == "__main__":  # a module of the benchmarks, not one of their scripts: say how it is used
    import sys

    if not set(sys.argv[1:]) <= {"-h", "--help"}:
        sys.exit(f"synthetic.py takes no arguments (got {' '.join(sys.argv[1:])}): it is a module that other "
                 "benchmarks import; --help says what it makes")
    print(__doc__.strip() + "\n\nThe benchmarks that draw their data from it: grep -l synthetic benchmarks/*.py")
