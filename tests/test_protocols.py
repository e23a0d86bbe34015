"""The splits of docs/protocols.md, rebuilt here straight from the protocol's wording."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from awe_tf.data import Dataset, load_dataset, protocol_split, validation_split
from awe_tf.data.protocols import annotation_validation, coverage, modulo_split, validation_rows


def toy_annotation(n=12):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)) * [1, 10, 0]
    Y = (rng.random((n, 4)) > 0.5).astype(float)
    return Dataset(X=sp.csr_matrix(X), Y=sp.csr_matrix(Y), feature_names=list("abc"),
                   label_names=list("wxyz"), numeric_features=np.array([True, True, True]))


def test_modulo_split_takes_every_fifth_row():
    data = toy_annotation(12)
    train, test = modulo_split(data)
    assert list(test.row_ids) == [0, 5, 10]
    assert list(train.row_ids) == [1, 2, 3, 4, 6, 7, 8, 9, 11]


def test_coverage_counts_what_the_split_cannot_test_or_teach():
    """By hand: 10 rows, every fifth (0 and 5) test; row 1 has no label; label 3 and feature 2
    are only in the test rows (twice and once)."""
    from awe_tf.data.protocols import coverage

    Y = np.zeros((10, 4))
    Y[:, 0] = 1
    Y[1, 0] = 0
    Y[[0, 5], 3] = 1
    X = np.zeros((10, 3))
    X[:, 0] = 1
    X[0, 2] = 4.0
    data = Dataset(X=sp.csr_matrix(X), Y=sp.csr_matrix(Y), feature_names=list("abc"), label_names=list("wxyz"))
    counts = coverage(protocol_split(data))
    assert (counts.test_every, counts.unlabelled_rows, counts.untrained_labels) == (5, 1, 3)  # labels 1, 2 and 3
    assert (counts.test_positives_of_untrained_labels, counts.test_positives) == (2, 4)
    assert (counts.untrained_features, counts.test_values_of_untrained_features) == (2, 1)  # b and c; c's one value
    assert coverage(protocol_split(data, data)).test_every == 0  # a test file given


def test_validation_rows_recipe():
    want = sorted(np.random.default_rng(0).permutation(37)[: 37 // 5])
    assert list(validation_rows(37)) == want
    carve = annotation_validation(toy_annotation(12))
    assert list(carve.test.row_ids) == sorted(np.random.default_rng(0).permutation(12)[:2])


def toy_recommendation(n_users=30, n_items=40, seed=1):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n_users, n_items)) < 0.4).astype(float)
    Y[0, :4] = 1
    Y[0, 4:] = 0  # a user with only 4 items: kept whole
    return Dataset(X=sp.csr_matrix(Y), Y=sp.csr_matrix(Y), feature_names=[str(i) for i in range(n_items)],
                   label_names=[str(i) for i in range(n_items)], task="recommendation")


def test_recommendation_split_follows_the_recipe():
    data = toy_recommendation()
    split = protocol_split(data)
    rng = np.random.default_rng(0)
    dense = data.Y.toarray()
    want_test = np.zeros_like(dense)
    for user in range(dense.shape[0]):
        items = np.flatnonzero(dense[user])
        if items.size < 5:
            continue
        want_test[user, rng.choice(items, 5, replace=False)] = 1
    np.testing.assert_array_equal(split.train.Y.toarray(), dense - want_test)
    has_test = want_test.sum(axis=1) > 0
    np.testing.assert_array_equal(split.test.Y.toarray(), want_test[has_test])
    np.testing.assert_array_equal(split.test.X.toarray(), (dense - want_test)[has_test])  # input: training items
    np.testing.assert_array_equal(split.exclude.toarray(), (dense - want_test)[has_test])
    np.testing.assert_array_equal(split.candidates, np.flatnonzero((dense - want_test).sum(axis=0) > 0))
    assert split.test.n_examples == dense.shape[0] - 1


def test_a_user_with_exactly_five_items_draws_them_all_and_one_with_fewer_draws_nothing():
    """The recipe's draw works for 5 items of 5 (and moves the generator on for every later
    user); for fewer it cannot be made: no draw, the user is not tested but counted."""
    from awe_tf.evaluation import evaluate_model

    lengths = [8, 5, 3, 10, 7]
    dense = np.zeros((len(lengths), 12))
    for user, n in enumerate(lengths):
        dense[user, np.random.default_rng(user).choice(12, n, replace=False)] = 1
    data = Dataset(X=sp.csr_matrix(dense), Y=sp.csr_matrix(dense), feature_names=[str(i) for i in range(12)],
                   label_names=[str(i) for i in range(12)], task="recommendation")
    split = protocol_split(data)

    def recipe(draw_when):
        rng, held = np.random.default_rng(0), np.zeros_like(dense)
        for user in range(dense.shape[0]):
            items = np.flatnonzero(dense[user])
            if draw_when(items.size):
                held[user, rng.choice(items, 5, replace=False)] = 1
        return held

    want = recipe(lambda n: n >= 5)
    assert not np.array_equal(want, recipe(lambda n: n > 5))  # the five-item user's draw changes later users'
    tested = [0, 1, 3, 4]
    np.testing.assert_array_equal(split.test.Y.toarray(), want[tested])
    np.testing.assert_array_equal(split.train.Y.toarray(), dense - want)
    assert split.test.X[1].nnz == 0 and split.test.Y[1].nnz == 5  # tested with no training items
    assert split.untested == 1
    report = evaluate_model(lambda X: np.zeros((X.shape[0], 12), np.float32), split)
    assert (report["n_test"], report["n_excluded"]) == (4, 1)


def test_an_annotation_test_part_must_name_the_training_parts_columns_in_order():
    """Two data sets built apart (DataFrames) whose columns are in another order: read by position,
    the test part's features or labels would be scored as other ones, without a word."""
    X, Y = np.eye(4)[:, :3], np.eye(4)[:, [0, 1]]
    train = Dataset(X, Y, feature_names=["a", "b", "c"], label_names=["x", "y"])
    assert protocol_split(train, Dataset(X, Y, feature_names=["a", "b", "c"], label_names=["x", "y"])).test.n_examples
    with pytest.raises(ValueError, match=r"the test part's features are not the training part's: feature 0 is 'c' in "
                                         r"the test part, 'a' in training \('a' is feature 2 in the test part\); give "
                                         r"them in the training part's order "
                                         r"\(a DataFrame: df\[train.feature_names\]\)"):
        protocol_split(train, Dataset(X[:, ::-1], Y, feature_names=["c", "b", "a"], label_names=["x", "y"]))
    with pytest.raises(ValueError, match=r"the test part's labels are not the training part's: label 0 is 'y'"):
        protocol_split(train, Dataset(X, Y[:, ::-1], feature_names=["a", "b", "c"], label_names=["y", "x"]))


def test_interactions_split_by_a_test_file_of_their_own():
    """A test file of interactions (a later period's, say) is the test part: each user's test
    interactions are its labels and the user's training ones its inputs, both files read by name
    into one set of users and items; a user only in the test file is tested with no input, an
    item only there is not ranked, and a test interaction that repeats a training one is not
    tested, the training part's notes say."""
    train = Dataset.from_interactions(["u1", "u1", "u2", "u3"], ["a", "b", "b", "c"], [2, 1, 1, 1], name="log")
    test = Dataset.from_interactions(["u1", "u2", "u2", "u4", "u1"], ["c", "a", "z", "b", "a"], name="later")
    split = protocol_split(train, test)
    assert split.own_test_file and split.held_out == "test" and split.test.test_part
    names = split.train.label_names
    assert names == ["a", "b", "c", "z"] and list(split.train.row_ids) == ["u1", "u2", "u3", "u4"]
    np.testing.assert_array_equal(split.train.X.toarray(), [[2, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    assert list(split.test.row_ids) == ["u1", "u2", "u4"]  # u3 has no test interaction
    np.testing.assert_array_equal(split.test.Y.toarray(), [[0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 0, 0]])  # u1's a: trained
    np.testing.assert_array_equal(split.test.X.toarray(), split.train.X.toarray()[[0, 1, 3]])
    np.testing.assert_array_equal(split.exclude.toarray(), split.train.Y.toarray()[[0, 1, 3]])
    assert split.candidates.tolist() == [0, 1, 2]  # z is in no training row: never ranked
    assert split.train.notes == ("1 test interaction repeats the user's training one: not tested (a user's own "
                                 "items are not ranked)",)
    again = Dataset.from_interactions(["u1", "u3"], ["c", "c"], name="again")  # u3 only repeats
    repeated = protocol_split(train, again)
    assert repeated.train.notes == (
        "1 test interaction repeats the user's training one: not tested (a user's own items are not ranked); 1 user "
        "of the test file had no other, and is not tested",)
    assert repeated.untested == 1 and split.untested == 0  # u3: counted as left out (u2, u4: not in again)
    from awe_tf.cli.train import _test_notes

    assert "1 user of the test file with every test interaction a training one: not tested" in \
        _test_notes(coverage(repeated))
    assert coverage(split).own_test_file and coverage(split).users_without_training_items == 1
    assert coverage(split).test_positives_never_trained == 1  # u2's z
    from awe_tf.evaluation import by_training_items, evaluate_model
    from awe_tf.models import AWEModel

    model = AWEModel(4, 4, dimension=3, data_task="recommendation", seed=2)
    model.adapt(split.train)
    groups = by_training_items(model, split)  # u1 and u2 know items, u4 none
    assert (groups["with"]["users"], groups["without"]["users"]) == (2, 1)
    whole = evaluate_model(model, split)["metrics"]["precision@1"]
    assert whole == pytest.approx((2 * groups["with"]["precision@1"] + groups["without"]["precision@1"]) / 3)
    from awe_tf.baselines import Popularity
    from awe_tf.cli.common import by_training_items_line
    from awe_tf.evaluation import evaluate_baseline

    popularity = evaluate_baseline(Popularity(), split)  # the baseline's groups too, to compare the model's with
    apart = popularity["by_training_items"]
    assert (apart["with"]["users"], apart["without"]["users"]) == (2, 1)
    assert popularity["precision@1"] == pytest.approx((2 * apart["with"]["precision@1"]
                                                       + apart["without"]["precision@1"]) / 3)
    line = by_training_items_line(groups, True, apart)
    assert f"with none (ranked by what it learnt of the items alone): P@1 {groups['without']['precision@1']:.4f}" \
        in line and f"(popularity P@1 {apart['without']['precision@1']:.4f}" in line
    weighted = protocol_split(train, Dataset.from_interactions(["u1"], ["c"], [3]))
    assert weighted.train.notes == ("the test file's weights are not used: a test interaction is an item to find, "
                                    "whatever its weight",)


def test_a_later_periods_split_onto_an_earlier_models_items_leaves_the_new_items_out():
    """onto_items: the split a model of an earlier period scores on a later one's interactions is
    the split of those files with the new items' interactions left out, its items the model's in
    the model's order (one the data lacks has no interaction); a user left with no test
    interaction is not tested; the same items in order give the split back."""
    from awe_tf.data.protocols import onto_items

    def split_of(rows, tested):
        users, items = zip(*rows, strict=True)
        train = Dataset.from_interactions(users, items, [1 + len(i) for i in items], name="log")
        return protocol_split(train, Dataset.from_interactions(*zip(*tested, strict=True), name="later"))

    rows = [("u1", "a"), ("u1", "new"), ("u2", "b"), ("u2", "c"), ("u3", "a"), ("u3", "c")]
    tested = [("u1", "b"), ("u1", "new2"), ("u2", "a"), ("u3", "new2"), ("u4", "c")]
    model_items = ["c", "gone", "a", "b"]  # the model's order, and an item the data lacks
    split, left = onto_items(split_of(rows, tested), model_items)
    assert (left.items, left.test_interactions, left.input_interactions, left.untested_users) == (("new", "new2"), 2,
                                                                                                   1, 1)
    kept = [(u, i) for u, i in rows if i in model_items]
    by_hand = split_of(kept, [(u, i) for u, i in tested if i in model_items])  # u3's only test item is new
    order = [by_hand.train.label_names.index(name) if name in by_hand.train.label_names else -1
             for name in model_items]
    assert split.train.label_names == model_items and split.test.label_names == model_items
    for got, want in ((split.train.X, by_hand.train.X), (split.train.Y, by_hand.train.Y),
                      (split.test.X, by_hand.test.X), (split.test.Y, by_hand.test.Y), (split.exclude, by_hand.exclude)):
        want = want.toarray()
        np.testing.assert_array_equal(got.toarray(), np.where(np.array(order) >= 0, want[:, order], 0))
    assert list(split.test.row_ids) == list(by_hand.test.row_ids) == ["u1", "u2", "u4"]
    assert [model_items[j] for j in split.candidates] == ["c", "a", "b"]  # the data's training items the model has
    assert split.untested == 1 and split.train.X[0].data.tolist() == [2.0]  # u1's a, its weight kept
    from awe_tf.evaluation import evaluate_model
    from awe_tf.models import AWEModel

    model = AWEModel(4, 4, dimension=3, data_task="recommendation", label_names=model_items, seed=1)
    with pytest.raises(ValueError, match=r"items new since: awe_tf.data.protocols.onto_items\(split, model"):
        evaluate_model(model, split_of(rows, tested))
    assert evaluate_model(model, split)["n_test"] == 3
    same = split_of(kept, [("u1", "b")])
    assert onto_items(same, same.train.label_names)[0] is same
    implicit = protocol_split(Dataset.from_interactions(["u1", "u1", "u2", "u2"], ["a", "new", "b", "c"]),
                              Dataset.from_interactions(["u1", "u2"], ["b", "a"]))
    def same_arrays(*matrices):
        return all(np.shares_memory(m.data, matrices[0].data) for m in matrices[1:])

    assert same_arrays(implicit.train.X, implicit.train.Y, implicit.test.X, implicit.exclude)  # as a Split may
    shared, _ = onto_items(implicit, ["c", "b", "a"])
    assert same_arrays(shared.train.X, shared.train.Y, shared.test.X, shared.exclude)  # shared still
    np.testing.assert_array_equal(shared.train.X.toarray(), [[0, 0, 1], [1, 1, 0]])
    with pytest.raises(ValueError, match="for recommendation data"):
        onto_items(protocol_split(toy_annotation()), list("wxyz"))


def test_recommendation_split_shares_the_training_matrices_when_every_user_is_tested():
    data = toy_recommendation()
    dense = data.Y.toarray()
    dense[0, :8] = 1  # the short user now has held-out items too
    data = data.with_matrices(X=sp.csr_matrix(dense), Y=sp.csr_matrix(dense))
    split = protocol_split(data)
    assert split.test.n_examples == dense.shape[0]
    held = split.test.Y.toarray()
    assert (held.sum(axis=1) == 5).all() and (held <= dense).all()
    np.testing.assert_array_equal(split.train.Y.toarray(), dense - held)
    np.testing.assert_array_equal(split.test.X.toarray(), dense - held)
    np.testing.assert_array_equal(split.exclude.toarray(), dense - held)
    # no copies of the training part: at a million users each would be the training set's size
    for part, training in ((split.test.X, split.train.X), (split.exclude, split.train.Y)):
        assert np.shares_memory(part.indices, training.indices) and np.shares_memory(part.data, training.data)


def test_recommendation_split_shares_inputs_and_labels_only_where_the_weights_are_the_labels():
    data = toy_recommendation()
    implicit = protocol_split(data)  # every weight 1: the inputs are the labels
    assert np.shares_memory(implicit.train.X.data, implicit.train.Y.data)
    np.testing.assert_array_equal(implicit.train.X.toarray(), implicit.train.Y.toarray())
    weighted_X = data.X.copy()
    weighted_X.data = np.arange(1, weighted_X.nnz + 1, dtype=np.float32)  # ratings as input weights
    weighted = protocol_split(data.with_matrices(X=weighted_X))
    assert not np.shares_memory(weighted.train.X.data, weighted.train.Y.data)
    kept = weighted.train.Y.toarray() > 0
    np.testing.assert_array_equal(weighted.train.X.toarray(), np.where(kept, weighted_X.toarray(), 0))
    np.testing.assert_array_equal(weighted.train.Y.toarray(), implicit.train.Y.toarray())


def test_recommendation_validation_uses_seed_one():
    data = toy_recommendation()
    split = protocol_split(data)
    val = validation_split(split.train)
    rng = np.random.default_rng(1)
    dense = split.train.Y.toarray()
    first_user = next(u for u in range(dense.shape[0]) if dense[u].sum() >= 5)
    items = np.flatnonzero(dense[first_user])
    for user in range(first_user):
        assert dense[user].sum() < 5
    chosen = rng.choice(items, 5, replace=False)
    assert sorted(np.flatnonzero(val.test.Y.toarray()[0])) == sorted(chosen)


def test_progress_lines_say_what_the_carve_out_holds():
    """Annotation: rows on each side; recommendation, where every user keeps training items: the
    held-out items and their users (not users on both sides, which reads as a mistake)."""
    from awe_tf.training.selection import carve_text, scored_rows

    val = validation_split(protocol_split(toy_recommendation()).train)
    held = val.test.Y.toarray()
    users = int((held.sum(axis=1) > 0).sum())
    assert users > 0 and val.untested == 1  # a toy user with fewer than 5 training items
    assert carve_text(val) == f"{users} users' held-out items ({int(held.sum())} in all) for validation, their " \
                              "other items train; 1 user with fewer than 5 holds none out"
    annotation = validation_split(load_dataset("corel5k").train)
    assert carve_text(annotation) == f"{annotation.train.n_examples} train / {annotation.test.n_examples} " \
                                     "validation examples"  # every Corel5k row has a label
    # users with exactly 5 training items (all held out by the carve) and users only in a test file
    users = [f"u{u}" for u in range(6) for _ in range(5 if u < 3 else 8)]
    items = [f"i{i}" for u in range(6) for i in range(5 if u < 3 else 8)]
    later = Dataset.from_interactions(["new1", "new2", "u0"], ["i1", "i2", "i9"])
    carve = validation_split(protocol_split(Dataset.from_interactions(users, items), later).train)
    assert carve_text(carve) == "6 users' held-out items (30 in all) for validation, their other items train; " \
                                "2 users with no training item"
    unlabelled = dataclasses.replace(annotation, test=annotation.test.with_matrices(
        Y=annotation.test.Y.multiply(np.arange(annotation.test.n_examples)[:, None] % 2 == 0).tocsr()))
    assert carve_text(unlabelled).endswith(f"validation examples ({scored_rows(unlabelled)} with a label: the rows "
                                           "scored)") and scored_rows(unlabelled) < unlabelled.test.n_examples


def test_trained_on_counts_the_test_rows_and_positives_a_training_part_holds():
    """Annotation: a file's protocol split cut from the rows a run trained on whole shares every
    test row with it, the run's own protocol split none; a row equal in its inputs but not its
    labels is not shared. Recommendation: held-out items that are the same user's training items."""
    from awe_tf.data.overlap import trained_on

    data = toy_annotation(12)
    split = protocol_split(data)
    assert trained_on(split.test, data) == (3, 3)  # every test row is a row of the whole
    assert trained_on(split.test, split.train) == (0, 3)
    relabelled = dataclasses.replace(split.test, Y=sp.csr_matrix(1.0 - split.test.Y.toarray()))
    assert trained_on(relabelled, data) == (0, 3)
    # users 7 and 9 hold out items 0, 1 and 2, 3; the training part has user 7 with item 1, and user 9
    # with nothing (its item 2 is another user's), so one held-out positive of four was trained on
    held_out = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 1]], float))
    test = Dataset(X=held_out, Y=held_out, task="recommendation", row_ids=np.array([7, 9]))
    trained = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 0]], float))
    train = Dataset(X=trained, Y=trained, task="recommendation", row_ids=np.array([7, 8]))
    assert trained_on(test, train) == (1, 4)
    assert trained_on(test, train.rows(np.array([], int))) == (0, 4)  # nothing trained on
    unlabelled = dataclasses.replace(split.test, Y=sp.csr_matrix(split.test.Y.shape))  # rows no metric scores
    assert trained_on(unlabelled, data) == (0, 0)


def test_a_test_part_mostly_trained_on_is_half_of_it_and_twice_the_splits_own_share():
    """By hand: 40 of 79 rows seen is half and more; 30 is not; 40 of 79 where the data's own split
    repeats 30 of 100 (0.30, against 0.51) is not twice it; none seen is never."""
    from awe_tf.data.overlap import mostly_trained_on

    assert mostly_trained_on((40, 79), (0, 202)) and not mostly_trained_on((30, 79), (0, 202))
    assert not mostly_trained_on((40, 79), (30, 100)) and mostly_trained_on((79, 79), (30, 100))
    assert not mostly_trained_on((0, 0), (0, 0))
