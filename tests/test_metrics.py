"""precision@k / recall@k and the ranking rules (ties, exclusion, candidates), by hand."""

import numpy as np
import pytest
import scipy.sparse as sp

from awe_tf.metrics import precision_at_k, protocol_ks, ranking_report, recall_at_k, top_k


def test_ties_break_towards_lower_index():
    scores = np.array([[1.0, 2.0, 2.0, 0.0, 2.0]])
    assert top_k(scores, 3).tolist() == [[1, 2, 4]]
    big = np.zeros((1, 100))
    big[0, [70, 10, 40]] = 1.0
    assert top_k(big, 5).tolist() == [[10, 40, 70, 0, 1]]  # partition path keeps exact ties


def test_ranking_keeps_the_scores_precision_and_matches_a_full_stable_sort():
    # float64 scores that float32 could not tell apart keep their order
    close = np.array([[1.0, 1.0 + 1e-12, 0.5]])
    assert top_k(close, 2).tolist() == [[1, 0]]
    # a NaN score ranks after every number, on the partition path (k < |Y| / 4) as on the sort path
    for dtype in (np.float32, np.float64):
        with_nan = np.linspace(0, 1, 40, dtype=dtype)[None, :]
        with_nan[0, [39, 5]] = np.nan
        assert top_k(with_nan, 2).tolist() == [[38, 37]]
        assert top_k(with_nan[:, :6], 6).tolist() == [[4, 3, 2, 1, 0, 5]]
    # float32 scores, ranked in float32, on both the sort and the partition paths, with many ties
    rng = np.random.default_rng(0)
    for n_labels, k in ((12, 10), (2000, 10)):
        scores = rng.integers(0, 50, size=(20, n_labels)).astype(np.float32) / 7
        want = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(top_k(scores, k), want)


def test_exclusion_and_candidates():
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    exclude = sp.csr_matrix([[1, 0, 0, 0, 0]])
    assert top_k(scores, 2, exclude).tolist() == [[1, 2]]
    assert top_k(scores, 2, exclude, candidates=[0, 2, 4]).tolist() == [[2, 4]]


def test_precision_and_recall_by_hand():
    top = np.array([[0, 1, 2], [3, 2, 1], [0, 1, 2]])
    positives = sp.csr_matrix([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
    # row 0: hits in top-3 = {0, 2} -> P@3 = 2/3, P@1 = 1; row 1: P@1 = 1, P@3 = 1/3; row 2 left out
    assert precision_at_k(top, positives, 1) == pytest.approx(1.0)
    assert precision_at_k(top, positives, 3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(top, positives, 1) == pytest.approx((1 / 2 + 1) / 2)
    report = ranking_report(top, positives, ks=(1, 3))
    assert report["n_test"] == 2 and report["n_excluded"] == 1


def test_protocol_ks():
    assert protocol_ks(6) == (1, 3, 5)
    assert protocol_ks(374) == (1, 3, 5, 10)


def test_ranking_a_million_labels_scores_a_few_rows_at_a_time():
    from awe_tf.metrics.ranking import SCORES_PER_BATCH, evaluate_scorer

    n_rows, n_labels = 40, 1_000_000
    positives = sp.csr_matrix((np.ones(n_rows), (np.arange(n_rows), np.arange(n_rows) * 7)), shape=(n_rows, n_labels))
    seen = []

    def score(X):
        seen.append(X.shape[0])
        scores = np.zeros((X.shape[0], n_labels), np.float32)
        scores[:, :100] = 1.0  # labels 0-99 first: row 0's positive (label 0) is hit
        return scores

    report = evaluate_scorer(score, sp.csr_matrix((n_rows, 3)), positives, ks=(1,))
    assert sum(seen) == n_rows and max(seen) * n_labels <= SCORES_PER_BATCH
    assert report["metrics"]["precision@1"] == 1 / n_rows


def test_exclusion_and_candidates_on_both_paths_match_a_masked_full_sort():
    rng = np.random.default_rng(1)
    for n_labels, k in ((12, 10), (3000, 10)):  # the sort path, then the partition path (k < |Y| / 4)
        scores = rng.integers(0, 40, size=(25, n_labels)).astype(np.float32) / 7  # many ties
        exclude = sp.random(25, n_labels, density=0.1, format="csr", random_state=2, dtype=np.float32)
        exclude.data[:3] = 0  # an explicit zero excludes nothing
        candidates = rng.choice(n_labels, size=n_labels * 2 // 3, replace=False)
        masked = scores.astype(np.float64)
        barred = np.ones(n_labels, bool)
        barred[candidates] = False
        masked[:, barred] = -np.inf
        masked[exclude.toarray() != 0] = -np.inf
        want = np.argsort(-masked, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(top_k(scores, k, exclude, candidates), want)
        ranked_barred = ~np.isfinite(masked[np.arange(25)[:, None], want])  # where too few labels were left
        assert ranked_barred.any() == (n_labels == 12)  # the partition path never needs to rank one


def test_ranking_edge_cases_on_the_partition_path():
    nan_row = np.full((1, 100), np.nan)
    nan_row[0, [7, 3]] = [1.0, 2.0]  # fewer than k numbers: they come first, then the NaN by label
    assert top_k(nan_row, 5).tolist() == [[3, 7, 0, 1, 2]]
    scores = np.linspace(1, 0, 100)[None, :].repeat(3, axis=0)  # label 0 best
    as_coo = sp.coo_matrix(([1.0, 0.0], ([0, 1], [0, 0])), shape=(3, 100))  # row 1: an explicit zero
    assert top_k(scores, 2, as_coo).tolist() == [[1, 2], [0, 1], [0, 1]]
    assert top_k(scores, 2, sp.csr_matrix((3, 100))).tolist() == [[0, 1]] * 3  # nothing excluded
    assert top_k(np.zeros((0, 100)), 5, sp.csr_matrix((0, 100))).shape == (0, 5)
    nothing = ranking_report(np.zeros((0, 5), np.int64), sp.csr_matrix((0, 100)), (1, 5))  # no row: no crash
    assert nothing["n_test"] == 0 and np.isnan(nothing["metrics"]["precision@1"])


def test_a_label_that_may_be_ranked_comes_before_a_barred_one_whatever_it_scored():
    """-inf and NaN scores (a broken scorer's) still rank before excluded labels and labels outside
    the candidates, on both paths, the NaN as -inf."""
    for n_labels in (4, 100):  # the sort path, then the partition path
        scores = np.zeros((1, n_labels))
        scores[0, :4] = [-np.inf, 0.0, np.nan, 1.0]
        exclude = sp.csr_matrix(([1.0], ([0], [1])), shape=(1, n_labels))
        candidates = [0, 1, 2, 3]  # none of the labels beyond 4
        assert top_k(scores, 4, exclude, candidates).tolist() == [[3, 0, 2, 1]]


def test_ranking_many_labels_holds_a_few_rows_beside_the_scores():
    """The partition path ranks in blocks of rows of a few MB whatever the batch: what it
    allocates does not grow with the batch (a copy of the batch and an int64 index of it would be
    three times the batch's float32 scores)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    n_labels, candidates = 200_000, np.arange(0, 200_000, 2)

    def ranked_with_peak(n_rows):
        scores = rng.standard_normal((n_rows, n_labels)).astype(np.float32)
        exclude = sp.random(n_rows, n_labels, density=0.001, format="csr", random_state=4)
        tracemalloc.start()
        try:
            top = top_k(scores, 10, exclude, candidates)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        masked = np.where(np.isin(np.arange(n_labels), candidates), scores, -np.inf)
        masked[exclude.toarray() != 0] = -np.inf
        np.testing.assert_array_equal(top, np.argsort(-masked, axis=1, kind="stable")[:, :10])
        return peak, scores.nbytes

    small, _ = ranked_with_peak(20)
    large, nbytes = ranked_with_peak(80)  # 64 MB of scores
    assert large < 1.25 * small and large < nbytes / 2, (small, large)


def test_evaluating_a_model_hands_the_freed_scores_back_once_ranked(monkeypatch):
    import awe_tf.evaluation as evaluation
    from awe_tf.baselines import Popularity
    from awe_tf.data import load_dataset

    split = load_dataset("corel5k")
    calls = []
    popularity = Popularity().fit(split.train)

    def score(X):
        calls.append("scored")
        return popularity.score(X)

    monkeypatch.setattr(evaluation, "return_free_memory", lambda: calls.append("returned"))
    evaluation.evaluate_model(score, split)
    assert calls[-1] == "returned" and calls.count("returned") == 1 and "scored" in calls


def test_knn_baseline_counts_only_training_rows_with_a_label_as_neighbours():
    """Two near copies of the query with no label and two farther rows with labels: k = 2 finds
    the labelled ones (an unlabelled neighbour would only take a labelled one's place), and the
    scores equal those of a k-NN fitted on the labelled rows alone."""
    from awe_tf.baselines.knn import KNN
    from awe_tf.data import Dataset

    X = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.01], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], np.float32))
    Y = sp.csr_matrix(np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32))
    train = Dataset(X=X, Y=Y, feature_names=["a", "b"], label_names=["p", "q", "r"])
    query = sp.csr_matrix(np.array([[1.0, 0.0]], np.float32))
    scores = KNN(k=2).fit(train).score(query)
    np.testing.assert_allclose(scores, [[0.8, 0.6, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(scores, KNN(k=2).fit(train.rows([2, 3, 4])).score(query), rtol=1e-6)
