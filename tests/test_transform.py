"""The input transform kept inside the model: numeric columns standardised with the training
statistics, rows scaled to unit norm, the same output however a row is padded or ordered."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf.layers.transform import InputTransform
from awe_tf.models import AWEModel


def toy(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * [1.0, 10.0, 0.0, 1.0] + [0.0, 5.0, 2.0, 0.0]
    X[:, 3] = rng.random(n) > 0.5  # a binary column
    return sp.csr_matrix(X)


def test_numeric_columns_are_standardised_with_the_fitting_rows_statistics_and_binary_kept():
    train, test = toy(12, 0), toy(5, 1)
    transform = InputTransform(4, "none").adapt(train, [True, True, True, False])
    raw = train.toarray()
    mean, std = raw[:, :3].mean(axis=0), raw[:, :3].std(axis=0)
    std[2] = 1.0  # a constant column: std 0 counts as 1
    want = np.hstack([(test.toarray()[:, :3] - mean) / std, test.toarray()[:, 3:]])
    np.testing.assert_allclose(transform.apply(test).toarray(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(transform.mean, mean)


def test_an_absent_numeric_feature_is_a_raw_zero():
    transform = InputTransform(2, "none", numeric=[0], mean=[4.0], std=[2.0])
    out = transform.apply(sp.csr_matrix([[0.0, 1.0]])).toarray()
    np.testing.assert_allclose(out, [[-2.0, 1.0]])  # (0 - 4) / 2


def test_rows_are_scaled_to_unit_norm_even_with_huge_values():
    X = sp.csr_matrix([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [1e30, 0.0, 1e30]])
    np.testing.assert_allclose(InputTransform(3, "l2").apply(X).toarray(),
                               [[0.6, 0.8, 0], [0, 0, 0], [0.5 ** 0.5, 0, 0.5 ** 0.5]], rtol=1e-6)
    np.testing.assert_allclose(InputTransform(3, "l1").apply(X).toarray(), [[3 / 7, 4 / 7, 0], [0, 0, 0],
                                                                            [0.5, 0, 0.5]], rtol=1e-6)


def test_a_value_beyond_float32_once_standardised_is_normalised_or_refused(tmp_path):
    """A raw value finite in float32 whose standardised value is not (std < 1) is standardised
    in float64: a normalised row is that feature's alone, in memory and in the served graph;
    without normalisation it is refused by name."""
    from awe_tf import serving

    transform = InputTransform(3, "l2", numeric=[0, 1], mean=[0.0, 1.0], std=[0.1, 2.0])
    huge = sp.csr_matrix([[1e38, 3.0, 1.0]])
    np.testing.assert_allclose(transform.apply(huge).toarray(), [[1.0, 0.0, 0.0]], atol=1e-30)
    model = AWEModel(3, 5, dimension=4, seed=0)
    model.transform.adapt(toy(12, 0)[:, :3], [True, True, False], statistics=([0.0, 1.0], [0.1, 2.0]))
    ids, scores = model.top_k(huge, 3)
    alone_ids, alone_scores = model.top_k(sp.csr_matrix([[1e30, 0.0, 0.0]]), 3)
    assert np.isfinite(scores).all() and (ids == alone_ids).all()
    np.testing.assert_allclose(scores, alone_scores, rtol=1e-6)
    served = serving.load(serving.export(model, tmp_path, "m", flavour="portable", log=None))
    assert (served(X=huge, k=3)["label_ids"] == ids).all()
    plain = InputTransform(3, "none", numeric=[0, 1], mean=[0.0, 1.0], std=[0.1, 2.0])
    with pytest.raises(ValueError, match="too large: after the model's input transform"):
        plain.apply(huge)
    with pytest.raises(tf.errors.InvalidArgumentError, match="beyond float32's range"):
        plain(tf.constant([[0, 1, 2]]), tf.constant([[1e38, 3.0, 1.0]]))


def test_many_batches_give_what_one_batch_gives(monkeypatch):
    """Rows transformed a few at a time (as a million rows are) are written into one CSR: the
    same matrix, row by row, as one batch gives and as the graph gives for the padded rows, an
    empty row included."""
    import awe_tf.layers.transform as transform_module
    from awe_tf.data.pipeline import feature_batch

    rng = np.random.default_rng(3)
    X = sp.random(40, 30, density=0.2, format="lil", random_state=4, dtype=np.float32)
    X[5] = 0.0  # an empty row
    X = X.tocsr()
    transform = InputTransform(30, "l2").adapt(X, rng.random(30) < 0.2)  # numeric columns: dense block
    whole = transform.apply(X)
    monkeypatch.setattr(transform_module, "BATCH_ENTRIES", 32)  # a few rows a batch
    pieces = transform.apply(X)
    assert pieces.indices.dtype == pieces.indptr.dtype == np.int32  # as the input's: no copy to int64
    batch = feature_batch(X)
    ids, weights = (t.numpy() for t in transform(batch["feature_ids"], batch["feature_weights"]))
    dense = np.zeros(X.shape, np.float32)
    np.add.at(dense, (np.arange(X.shape[0])[:, None].repeat(ids.shape[1], 1), ids), weights)
    np.testing.assert_allclose(pieces.toarray(), dense, rtol=1e-6)
    np.testing.assert_array_equal(pieces.indptr, whole.indptr)
    np.testing.assert_array_equal(pieces.indices, whole.indices)
    np.testing.assert_allclose(pieces.data, whole.data, rtol=1e-6)
    np.testing.assert_allclose(InputTransform(30, "l2").apply(X[:6]).toarray()[5], 0.0)


def test_the_same_row_gives_the_same_tensors_however_it_is_padded_or_ordered():
    transform = InputTransform(6, "l2", numeric=[1, 4], mean=[0.5, -1.0], std=[2.0, 3.0])
    ids, weights = transform(tf.constant([[5, 1, 2]]), tf.constant([[0.25, 3.0, 1.0]]))
    shuffled = transform(tf.constant([[2, 0, 5, 0, 1, 0]]), tf.constant([[1.0, 0.0, 0.25, 0.0, 3.0, 0.0]]))
    width = int(tf.reduce_sum(tf.cast(weights != 0, tf.int32)))
    assert width == 4 and ids.numpy()[0, :width].tolist() == [1, 2, 4, 5]  # ascending ids, then padding
    for a, b in ((ids, shuffled[0]), (weights, shuffled[1])):
        np.testing.assert_array_equal(a.numpy()[:, :width], b.numpy()[:, :width])
        assert not b.numpy()[:, width:].any()


def test_a_model_keeps_its_transform_through_save_and_load(tmp_path):
    from awe_tf.data import Dataset

    X = toy(20)
    data = Dataset(X=X, Y=sp.csr_matrix(np.eye(20)[:, :5]), feature_names=list("abcd"), label_names=list("vwxyz"),
                   numeric_features=np.array([True, True, True, False]))
    model = AWEModel(4, 5, dimension=3)
    assert not model.transform.adapted
    model.adapt(data)
    assert model.transform.adapted and model.transform.numeric.tolist() == [0, 1, 2]
    model.save_model(tmp_path / "m")
    again = AWEModel.load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.score(X), model.score(X))
    np.testing.assert_allclose(again.transform.std, model.transform.std)


def test_ratings_read_as_interactions_stay_interactions_of_one_in_the_saved_model(tmp_path):
    """MovieLens ratings are read as 1s; the model keeps that rule, so a row of ratings scores as
    the row of 1s it was trained on. An interactions file's weights stay weights."""
    from awe_tf.data.interactions import read_interactions, read_movielens

    lines = [(user, item, 1 + (user * 7 + item) % 5) for user in range(1, 9) for item in range(1, 7)
             if (user + item) % 3]
    (tmp_path / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t0\n" for u, i, r in lines))
    (tmp_path / "weights.tsv").write_text("".join(f"{u}\t{i}\t{r}\n" for u, i, r in lines))
    ratings = sp.csr_matrix(read_interactions(tmp_path / "weights.tsv").X)
    assert ratings.max() == 5
    for data, binary in ((read_movielens(tmp_path / "u.data"), True),
                         (read_interactions(tmp_path / "weights.tsv"), False)):
        model = AWEModel(data.n_features, data.n_labels, dimension=4, data_task=data.task)
        model.adapt(data)
        again = AWEModel.load_model(model.save_model(tmp_path / f"m{binary}"))
        assert again.transform.values_as_ones is binary
        ones = ratings.copy()
        ones.data[:] = 1.0
        same = np.array_equal(again.score(ratings), again.score(ones))
        assert same is binary
        np.testing.assert_array_equal(again.score(ratings), model.score(ratings))
    built = AWEModel(3, 3, dimension=2, input_transform={"values_as_ones": True})  # by hand, nothing fitted
    assert AWEModel.load_model(built.save_model(tmp_path / "built")).transform.values_as_ones


def test_a_model_saved_without_its_transform_is_refused(tmp_path):
    import json

    path = AWEModel(4, 5, dimension=3).save_model(tmp_path / "m")
    config = json.loads((path / "awe_model.json").read_text())
    config.pop("format")
    (path / "awe_model.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="train it again"):
        AWEModel.load_model(path)


def test_a_model_trained_on_the_validation_carve_out_standardises_with_the_training_parts_statistics(data_dir):
    """As the protocol scales features once, on the whole training part: the carve-out's model
    (which chooses the epochs) sees the same scaled values as the final model."""
    from awe_tf.data import load_dataset, validation_split
    from awe_tf.training import ModelConfig, build_model

    split = load_dataset("emotions")
    carve = validation_split(split.train)
    full = split.train.X.toarray().astype(np.float64)
    model = build_model(carve.train, ModelConfig(dimension=4))
    np.testing.assert_allclose(model.transform.mean, full.mean(axis=0))
    np.testing.assert_allclose(model.transform.std, full.std(axis=0))
    assert not np.allclose(model.transform.mean, carve.train.X.toarray().mean(axis=0))


def test_features_no_training_row_trains_are_left_out_of_every_row_scored(data_dir, tmp_path):
    """A numeric column constant in training (standardised to 0 in every training row) and a
    binary one no training row holds never get a gradient: the model leaves them out of the rows
    it scores, in memory and exported, so a row with any value there ranks as without it. Kept
    in, their random rows of U would move the ranking, and a large value take it over."""
    import dataclasses

    from awe_tf import serving
    from awe_tf.data import load_dataset, validation_split
    from awe_tf.data.protocols import column_statistics, coverage, untrained_features, validation_rows
    from awe_tf.training import ModelConfig, TrainConfig, build_model, fit

    split = load_dataset("emotions")

    def widened(data, *columns):
        extra = sp.csr_matrix(np.column_stack(columns))
        names = [f"extra {i}" for i in range(len(columns))]
        numeric = np.append(data.numeric_features, [True] + [False] * (len(columns) - 1))
        return dataclasses.replace(data, X=sp.hstack([data.X, extra]).tocsr(), feature_names=[*data.feature_names,
                                   *names], numeric_features=numeric, numeric_scale=None)

    n, m = split.train.n_examples, split.test.n_examples
    train, test = widened(split.train, np.full(n, 5.0), np.zeros(n)), widened(split.test, np.full(m, 6.0), np.ones(m))
    mask = untrained_features(train.X, train.numeric_features)
    assert mask.sum() == 2 and mask[-2:].all()
    # every test row differs from training in both: the constant column's 6 and the word's 1
    assert coverage(dataclasses.replace(split, train=train, test=test)).test_values_of_untrained_features == 2 * m
    assert coverage(dataclasses.replace(split, train=train, test=widened(split.test, np.full(m, 5.0), np.ones(m)))
                    ).test_values_of_untrained_features == m  # a test value equal to the training constant: as trained
    model = fit(train, ModelConfig(dimension=8), TrainConfig(epochs=1, verbose=0)).model
    assert model.transform.ignored.tolist() == [72, 73]
    assert AWEModel.from_config(model.get_config()).transform.ignored.tolist() == [72, 73]
    served = serving.load(serving.export(model, tmp_path, "m", flavour="portable", log=None))
    rows = test.X.toarray()[:50]
    for constant, word in ((5.0, 0.0), (6.0, 1.0), (1e6, 3.0)):
        moved = rows.copy()
        moved[:, -2:] = constant, word
        np.testing.assert_array_equal(model.top_k(moved, k=3)[0], model.top_k(rows, k=3)[0])
        np.testing.assert_array_equal(served(sp.csr_matrix(moved), k=3)["label_ids"], model.top_k(rows, k=3)[0])

    # The carve-out's model standardises with the whole training part's statistics: a column at 5 in
    # its rows and 7 in the validation rows is centred elsewhere than 5, so it trains there (a
    # constant non-zero input), and is not left out; the column at 5 everywhere still is.
    at_validation = np.zeros(n, bool)
    at_validation[validation_rows(n)] = True
    part = widened(split.train, np.full(n, 5.0), np.zeros(n), np.where(at_validation, 7.0, 5.0))
    part = dataclasses.replace(part, numeric_features=np.append(split.train.numeric_features, [True, False, True]))
    part = dataclasses.replace(part, numeric_scale=column_statistics(part.X, part.numeric_features))
    carve = validation_split(part)
    assert build_model(carve.train, ModelConfig(dimension=4)).transform.ignored.tolist() == [72, 73]


def sparse_weights(n=40, seed=0):
    """Rows of tf-idf-like weights: column 0 in every row, 1 in 3 rows of 4, 2 in half, 3 in a
    quarter, 4 in none (a word no row holds)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 5)) + 0.5
    for column, share in ((1, 0.75), (2, 0.5), (3, 0.25), (4, 0.0)):
        X[np.arange(n) >= share * n, column] = 0.0
    return sp.csr_matrix(X)


def test_a_numeric_column_zero_in_half_the_rows_or_more_keeps_its_values_and_rows_stay_sparse():
    """Columns 2-4 are 0 in at least half the rows: statistics (0, 1), left out of the dense
    block, so a row keeps only its own entries; columns 0 and 1 are standardised (column 1 has a
    value in every row then, its zeros too)."""
    from awe_tf.data.protocols import column_statistics, standardised_columns

    X = sparse_weights()
    mean, std = column_statistics(X, np.ones(5, bool))
    dense = X.toarray()[:, :2]
    np.testing.assert_array_equal(mean, [*dense.mean(axis=0), 0, 0, 0])
    np.testing.assert_array_equal(std, [*dense.std(axis=0), 1, 1, 1])
    assert standardised_columns(np.ones(5, bool), mean, std).tolist() == [True, True, False, False, False]
    transform = InputTransform(5, "none").adapt(X, np.ones(5, bool))
    assert transform.numeric.tolist() == [0, 1] and transform.ignored.tolist() == [4]
    row = sp.csr_matrix([[0.0, 0.0, 0.0, 2.5, 7.0]])  # column 4 was in no training row: left out
    np.testing.assert_allclose(transform.apply(row).toarray(),
                               [[-mean[0] / std[0], -mean[1] / std[1], 0.0, 2.5, 0.0]], rtol=1e-6)


def test_column_statistics_a_block_of_columns_at_a_time_are_those_of_the_whole(monkeypatch):
    from awe_tf.data import protocols

    X = sp.csr_matrix(np.random.default_rng(3).normal(size=(30, 7)) + 2.0)
    whole = protocols.column_statistics(X, np.ones(7, bool))
    monkeypatch.setattr(protocols, "STATISTICS_BLOCK", 60)  # 2 columns of 30 rows a block
    blocks = protocols.column_statistics(X, np.ones(7, bool))
    for a, b in zip(whole, blocks, strict=True):  # NumPy sums a lone column in another order: not bit for bit
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_split_of_sparse_weights_says_which_columns_it_keeps_and_a_model_trains_on_them_sparse():
    from awe_tf.data import Dataset
    from awe_tf.data.protocols import annotation_split, coverage
    from awe_tf.training import ModelConfig, build_model

    X = sparse_weights(50)
    Y = sp.csr_matrix((np.arange(50)[:, None] % 3 == np.arange(3)).astype(np.float32))
    data = Dataset(X=X, Y=Y, feature_names=list("abcde"), label_names=list("xyz"), numeric_features=np.ones(5, bool))
    split = annotation_split(data)
    counts = coverage(split)
    assert counts.numeric_kept == 2 and counts.untrained_features == 1  # columns 2 and 3 kept, 4 in no row
    model = build_model(split.train, ModelConfig(dimension=4))
    assert model.transform.numeric.tolist() == [0, 1]
    prepared = model.prepare(split.test.X)
    assert prepared.nnz == sp.csr_matrix(split.test.X)[:, :4].nnz + 2 * split.test.n_examples - \
        sp.csr_matrix(split.test.X)[:, :2].nnz  # columns 0 and 1 in every row, 2 and 3 where the row has them


def test_a_transform_listing_its_kept_columns_as_mean_0_std_1_scores_as_one_that_leaves_them_out():
    """A model saved before columns could be kept lists every numeric column, the kept ones with
    mean 0 and std 1: it transforms rows exactly as the transform that leaves them out."""
    X = sparse_weights()
    new = InputTransform(5, "l2").adapt(X, np.ones(5, bool))
    full_mean, full_std = np.zeros(5), np.ones(5)
    full_mean[new.numeric], full_std[new.numeric] = new.mean, new.std
    old = InputTransform(5, "l2", numeric=np.arange(5), mean=full_mean, std=full_std, ignored=new.ignored)
    rows = sparse_weights(7, seed=4)
    np.testing.assert_array_equal(old.apply(rows).toarray(), new.apply(rows).toarray())


def test_an_annotation_dataset_made_in_memory_standardises_its_non_binary_columns_by_default():
    """Columns holding values other than 0 and 1, given in memory, are standardised by default,
    as the protocols standardise numeric columns; binary columns are kept, and so is a
    recommendation data set's every item; a mask given is used as it is."""
    from awe_tf.data import Dataset
    from awe_tf.training import ModelConfig, build_model

    X = toy(40, 2).toarray()  # two numeric columns of other scales, a constant one, a binary one
    Y = (np.arange(40)[:, None] % 3 == np.arange(3)).astype(np.float32)
    default = Dataset(X, Y, list("abcd"), list("xyz"))
    assert default.numeric_features.tolist() == [True, True, True, False]
    given = Dataset(X, Y, list("abcd"), list("xyz"), numeric_features=np.array([True, True, True, False]))
    rows = build_model(default, ModelConfig(dimension=4)).prepare(X[:5])
    np.testing.assert_array_equal(rows.toarray(), build_model(given, ModelConfig(dimension=4)).prepare(X[:5]).toarray())
    raw = Dataset(X, Y, list("abcd"), list("xyz"), numeric_features=np.zeros(4, bool))
    assert not np.allclose(build_model(raw, ModelConfig(dimension=4)).prepare(X[:5]).toarray(), rows.toarray())
    weights = sp.csr_matrix(np.array([[2.0, 0.0], [1.0, 3.0]]))
    assert not Dataset(weights, weights, list("ab"), list("ab"), task="recommendation").numeric_features.any()


CATEGORY_ARFF = """@relation c
@attribute genre {rock,pop,jazz}
@attribute tempo numeric
@attribute live {NO,YES}
@attribute studio {abbey}
@attribute a {0,1}
@attribute b {0,1}
@data
""" + "".join(f"{('rock', 'pop', 'jazz')[i % 3]},{90 + 7 * i},{('NO', 'YES')[i % 2]},abbey,{i % 2},{(i // 2) % 2}\n"
              for i in range(12))


def test_a_category_coded_otherwise_than_its_reader_does_is_refused_by_every_scorer(tmp_path):
    """An ARFF nominal attribute is one 0/1 column per value but its first (genre=pop,
    genre=jazz): the model records which columns form a category, and the model, a saved and
    loaded one, the export's checked call and its raw signature refuse a row giving a value's
    place as a weight, or two values of one attribute, naming the row; the rows the reader gives
    score as before, in memory and served."""
    from awe_tf import serving
    from awe_tf.data import Dataset
    from awe_tf.data.mulan import read_mulan

    (tmp_path / "c.arff").write_text(CATEGORY_ARFF)
    (tmp_path / "c.xml").write_text('<labels xmlns="http://mulan.sourceforge.net/labels">'
                                    '<label name="a"/><label name="b"/></labels>')
    data = read_mulan(tmp_path / "c.arff", tmp_path / "c.xml")
    assert data.feature_names == ["genre=pop", "genre=jazz", "tempo", "live=YES"]
    assert data.categories == ((0, 1), (3,))
    model = AWEModel(4, 2, dimension=3, seed=0)
    model.adapt(data)
    loaded = AWEModel.load_model(model.save_model(tmp_path / "m"))
    assert loaded.transform.categories == ((0, 1), (3,))
    served = serving.load(serving.export(model, tmp_path / "e", "m", flavour="portable", log=None,
                                         feature_names=data.feature_names))
    place = sp.csr_matrix([[2.0, 0.0, 100.0, 0.0]])  # jazz as its place in {rock,pop,jazz}
    both = sp.csr_matrix([[1.0, 1.0, 100.0, 1.0]])
    for scorer in (model, loaded):
        with pytest.raises(ValueError, match=r"^inputs: row 0 has 2 on column 0, a column of a category: "):
            scorer.score(place)
        with pytest.raises(ValueError, match=r"row 0 has two values of one category \(column 0, column 1\)"):
            scorer.top_k(both, 1)
    with pytest.raises(ValueError, match=r"row 1 has 2 on 'genre=pop', a column of a category: .* holds 1 on"):
        served(X=sp.vstack([data.X[:1], place]).tocsr(), k=1)
    with pytest.raises(ValueError, match=r"two values of one category \('genre=pop', 'genre=jazz'\)"):
        served(feature_ids=[[0, 1, -1]], feature_weights=[[1.0, 1.0, 5.0]], k=1)
    for ids, weights, words in (([[0, 2]], [[2.0, 90.0]], "a value other than 1 on a column of a category"),
                                ([[1, 0]], [[1.0, 1.0]], "two values of one category")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=words):
            served.signature(feature_ids=tf.constant(ids, tf.int32), feature_weights=tf.constant(weights, tf.float32),
                             k=tf.constant(1))
    expected = model.top_k(data.X, 2)[0]
    np.testing.assert_array_equal(served(X=data.X, k=2)["label_ids"], expected)
    np.testing.assert_array_equal(loaded.top_k(data.X, 2)[0], expected)
    changed = data.X.copy()
    changed.data[changed.indices == 3] = 0.5  # live=YES weighed by hand
    refused = AWEModel(4, 2, dimension=3)
    with pytest.raises(ValueError, match="the training data's row 1 has 0.5 on column 3, a column of a category"):
        refused.adapt(Dataset(X=changed, Y=data.Y, categories=data.categories))
    assert not refused.transform.adapted and not refused.transform.categories  # nothing fitted from it
    with pytest.raises(ValueError, match="data: categories are lists of column ids"):
        Dataset(X=data.X, Y=data.Y, categories=[(0, 1), (1, 3)])
    by_hand = AWEModel(4, 2, dimension=3, input_transform={"categories": [[0, 1]]})
    assert AWEModel.from_config(by_hand.get_config()).transform.categories == ((0, 1),)


def test_a_checkpoint_written_before_categories_were_recorded_resumes_with_them():
    """Settings recorded before the input transform kept its categories (or the features no
    training row trains) compare equal to today's (the data's digest, compared as well, says they
    are the same)."""
    from awe_tf.training.callbacks import as_recorded_now, changes

    now = {"model": {"dimension": 3, "input_transform": {"numeric": [2], "categories": [[0, 1], [3]]}}, "data": "d"}
    before = {"model": {"dimension": 3, "input_transform": {"numeric": [2]}}, "data": "d"}
    assert changes(as_recorded_now(before, now), now) == []
    other = {"model": {"dimension": 3, "input_transform": {"numeric": [2], "categories": [[0, 1]]}}, "data": "d"}
    assert changes(as_recorded_now(other, now), now) != []  # recorded otherwise: a change
    untrained = {"model": {"input_transform": {"numeric": [], "ignored": [4, 7]}}, "data": "d"}  # recorded since too
    older = {"model": {"input_transform": {"numeric": []}}, "data": "d"}
    assert changes(as_recorded_now(older, untrained), untrained) == []
    weighted = {"model": {"input_transform": {"numeric": [], "weighted": True}}, "data": "d"}  # and weighted items
    assert changes(as_recorded_now(older, weighted), weighted) == []


def test_a_recommendation_model_records_whether_its_users_items_were_weighted(tmp_path):
    """adapt records weighted items (ratings, an interactions file's weights) for recommendation
    data only: not for implicit data, nor ratings read as ones, nor annotation's feature values;
    the config holds it only where set, and a save and load keep it."""
    from awe_tf.data import Dataset
    from awe_tf.training import ModelConfig, build_model

    users, items = ["a", "a", "b", "b", "c"], ["x", "y", "x", "z", "y"]
    rated = Dataset.from_interactions(users, items, [5, 1, 2, 2, 4])
    for data, weighted in ((rated, True), (Dataset.from_interactions(users, items), False),
                           (dataclasses.replace(rated, X=rated.Y.copy(), values_as_ones=True), False),
                           (Dataset(np.array([[0.5, 2.0], [1.0, 0.0]]), np.eye(2)), False)):
        model = build_model(data, ModelConfig(dimension=2))
        model.adapt(data)
        assert model.transform.weighted is weighted
        assert ("weighted" in model.get_config()["input_transform"]) is weighted
    model.save_model(tmp_path / "plain")
    assert not AWEModel.load_model(tmp_path / "plain").transform.weighted
    model = build_model(rated, ModelConfig(dimension=2))
    model.adapt(rated)
    model.save_model(tmp_path / "rated")
    assert AWEModel.load_model(tmp_path / "rated").transform.weighted
    by_hand = AWEModel(3, 3, dimension=2, data_task="recommendation", input_transform={"weighted": True})
    by_hand.save_model(tmp_path / "by-hand")  # nothing adapted, the record kept
    assert AWEModel.load_model(tmp_path / "by-hand").transform.weighted
    from awe_tf.layers.transform import weighs_items

    even = sp.csr_matrix([[2.0, 2.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0]])  # one weight a row: a row of 1s
    assert not weighs_items(even, "l2") and not weighs_items(even, "l1") and weighs_items(even, "none")
    assert weighs_items(sp.csr_matrix([[2.0, 1.0, 0.0]]), "l2") and not weighs_items(sp.csr_matrix((2, 3)), "l2")
