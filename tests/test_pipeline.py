"""Training batches: every positive pair exactly once per epoch, static shapes, leave-one-out."""

import re

import numpy as np
import pytest
import scipy.sparse as sp

from awe_tf.data import Dataset
from awe_tf.data.pipeline import TrainingBatches


def toy(task="annotation", n=50, n_items=30, seed=0):
    """Random data with structure: annotation labels are the top scores of a hidden linear map."""
    rng = np.random.default_rng(seed)
    if task == "recommendation":
        Y = (rng.random((n, n_items)) < rng.random((n, 1)) * 0.5).astype(float)
        X = Y.copy()
    else:
        X = rng.random((n, 7))
        hidden = X @ rng.normal(size=(7, n_items))
        Y = (hidden > np.quantile(hidden, 0.8, axis=1, keepdims=True)).astype(float)
    return Dataset(X=sp.csr_matrix(X), Y=sp.csr_matrix(Y), feature_names=[str(i) for i in range(X.shape[1])],
                   label_names=[str(i) for i in range(n_items)], task=task)


def pairs_of(batches, n_labels):
    seen = []
    for b in batches:
        for _row_ids, labels in zip(b["feature_ids"], b["label_ids"], strict=False):
            seen.extend(int(label) for label in labels if label < n_labels)
    return seen


def test_each_pair_once_per_epoch_and_labels_sorted():
    data = toy()
    batches = TrainingBatches(data, pairs_per_batch=64)
    epoch = list(batches.batches(0))
    assert len(epoch) == batches.steps_per_epoch()
    got = sorted(pairs_of(epoch, data.n_labels))
    assert got == sorted(data.Y.indices.tolist())
    for b in epoch:
        assert np.all(np.diff(b["label_ids"], axis=1) >= 0)  # sorted, padding |Y| last
        assert b["feature_ids"].shape[0] == b["label_ids"].shape[0]
    for b in epoch:  # each batch padded only to its own longest example (multiple of 8)
        longest = int((b["label_ids"] < data.n_labels).sum(axis=1).max())
        assert b["label_ids"].shape[1] == max(8, -(-longest // 8) * 8)
        assert b["label_ids"].shape[0] * b["label_ids"].shape[1] <= 64 or b["label_ids"].shape[0] == 1
    other = list(batches.batches(1))
    assert not all(np.array_equal(a["label_ids"], b["label_ids"]) for a, b in zip(epoch, other, strict=False))


@pytest.mark.parametrize("bucketing", [True, False])
def test_a_small_training_set_is_cut_into_the_fewest_steps_an_epoch_takes(bucketing):
    """50 examples of 6 labels each (8 slots): 400 slots, 7 steps of 64 (8 examples a step); at
    least 20 steps an epoch cuts them into steps of at most 20 slots (2 examples), 25 into 16,
    60 into 8, room for one example, each a step of its own (50 steps, the most the data allows);
    4 leaves them as they were."""
    data = toy()
    assert set(np.diff(data.Y.indptr)) == {6}
    plain = TrainingBatches(data, pairs_per_batch=64, bucketing=bucketing)
    assert plain.steps_per_epoch() == 7 and plain.batch_pairs == 64
    for min_steps, batch_pairs, steps in ((4, 64, 7), (20, 20, 25), (25, 16, 25), (60, 8, 50)):
        batches = TrainingBatches(data, pairs_per_batch=64, bucketing=bucketing, min_steps_per_epoch=min_steps)
        assert (batches.batch_pairs, batches.steps_per_epoch()) == (batch_pairs, steps), min_steps
        epoch = list(batches.batches(0))
        assert len(epoch) == steps and sorted(pairs_of(epoch, data.n_labels)) == sorted(data.Y.indices.tolist())
    two = TrainingBatches(data, pairs_per_batch=64, bucketing=bucketing, min_steps_per_epoch=60, replicas=2)
    assert two.batch_pairs == 16  # room for an example on each replica
    large = TrainingBatches(toy(n=500), pairs_per_batch=64, bucketing=bucketing, min_steps_per_epoch=32)
    assert large.batch_pairs == 64  # 4,000 slots: 63 steps of 64 already


def test_without_bucketing_one_shape():
    data = toy()
    batches = TrainingBatches(data, pairs_per_batch=64, bucketing=False)
    epoch = list(batches.batches(0))
    assert len({(b["feature_ids"].shape, b["label_ids"].shape) for b in epoch}) == 1
    assert sorted(pairs_of(epoch, data.n_labels)) == sorted(data.Y.indices.tolist())
    spec = batches.dataset().element_spec["label_ids"]
    assert spec.shape.is_fully_defined()


def test_leave_one_out_points_at_own_item():
    data = toy("recommendation")
    batches = TrainingBatches(data, pairs_per_batch=128)
    for b in batches.batches(0):
        real = b["label_ids"] < data.n_labels
        assert np.all(b["self_position"][real] >= 0)
        own = np.take_along_axis(b["feature_ids"], np.maximum(b["self_position"], 0), axis=1)
        np.testing.assert_array_equal(own[real], b["label_ids"][real])
        assert np.all(b["self_position"][~real] == -1)


def test_tensor_only_pipeline_gives_every_pair_once_per_epoch_in_one_shape():
    import tensorflow as tf

    for task in ("annotation", "recommendation"):
        data = toy(task, n=53)
        batches = TrainingBatches(data, pairs_per_batch=64, bucketing=False,
                                  context=sp.random(53, data.n_labels, density=0.2, random_state=0, format="csr"))
        steps = batches.steps_per_epoch()
        epochs = [list(batches.tensor_dataset(epochs=2).take(2 * steps))[e * steps:(e + 1) * steps] for e in (0,)]
        epochs.append(list(batches.tensor_dataset(start_epoch=1).take(steps)))
        reference = list(batches.batches(0))
        for epoch in epochs:
            epoch = [{k: v.numpy() for k, v in b.items()} for b in epoch]
            assert sorted(pairs_of(epoch, data.n_labels)) == sorted(data.Y.indices.tolist())
            assert {tuple(b[k].shape) for b in epoch for k in ("label_ids",)} == {reference[0]["label_ids"].shape}
            # the same examples as the generator's batches: features, self positions and context per row
            def examples(batch_list, n_labels=data.n_labels):
                return sorted((tuple(w.round(6)), tuple(lab), tuple(f), tuple(s), tuple(c), tuple(cw.round(6)))
                              for b in batch_list for f, w, lab, s, c, cw in
                        zip(b["feature_ids"], b["feature_weights"], b["label_ids"], b["self_position"],
                            b["context_ids"], b["context_weights"], strict=True) if lab[0] < n_labels)

            rows, want = examples(epoch), examples(reference)
            assert rows == want
        orders = [[tuple(b["feature_ids"].numpy()[0]) for b in batches.tensor_dataset(epochs=1)] for _ in range(2)]
        assert orders[0] == orders[1]  # seeded: the same order every run
        assert tf.is_tensor(epochs[0][0]["label_ids"])


def test_padding_and_own_item_positions_match_a_row_by_row_reading():
    """pad_rows and self_positions (vectorised) against a plain reading of each row, on inputs
    that miss some of their labels' items, rows without any, and masked filler rows."""
    from awe_tf.data.pipeline import pad_rows, self_positions

    rng = np.random.default_rng(3)
    n_items = 40
    dense = (rng.random((30, n_items)) < 0.2).astype(np.float32)
    dense[29] = np.arange(n_items) < 24  # the longest row ...
    Y = sp.csr_matrix(dense)
    keep = rng.random(Y.shape) < 0.7  # some labels' items are not inputs
    keep[29] = dense[29] > 0
    keep[29, 23] = False  # ... fills the widest feature list, and its last label lies past its end
    keep[4] = False  # and one row has no inputs
    X = sp.csr_matrix(Y.multiply(keep))
    X.eliminate_zeros()
    rows = np.array([5, 4, 0, 29, 7, 7])
    real = np.array([True, True, True, True, False, True])
    full = int(np.diff(X.indptr)[rows].max())  # at this width some row fills its whole feature list
    for width in (40, full):
        ids, weights = pad_rows(X, rows, width, 0)
        labels, _ = pad_rows(Y, rows, 32, n_items, with_values=False)
        for out, row in enumerate(rows):
            items = X.indices[X.indptr[row]:X.indptr[row + 1]]
            np.testing.assert_array_equal(ids[out, :len(items)], items)
            np.testing.assert_array_equal(weights[out, :len(items)], X.data[X.indptr[row]:X.indptr[row + 1]])
            assert np.all(ids[out, len(items):] == 0) and np.all(weights[out, len(items):] == 0)
        weights[~real] = 0.0
        got = self_positions(ids, weights, labels, n_items, real)
        for out in range(len(rows)):
            used = list(ids[out, :np.count_nonzero(weights[out])])
            want = [used.index(y) if real[out] and y < n_items and y in used else -1 for y in labels[out]]
            np.testing.assert_array_equal(got[out], want)
        assert (got >= 0).any() and ((got == -1) & (labels < n_items)).any()  # both cases exercised
    filled = np.flatnonzero(np.diff(X.indptr)[rows] == full)
    assert any(labels[o, labels[o] < n_items].max() > ids[o].max() for o in filled)  # a label past a full row's end
    with pytest.raises(ValueError, match="more than the width 2"):
        pad_rows(X, rows, 2, 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_raw_rows_sums_repeats_and_drops_zeros_without_changing_the_callers_matrix(dtype):
    from awe_tf.data.pipeline import raw_rows

    # row 0 stores a 0 and lists its ids out of order with a repeat; row 1 is clean
    X = sp.csr_matrix((np.array([0, 5, 2, 3, 7], dtype), np.array([0, 9, 4, 4, 1]), np.array([0, 4, 5])), shape=(2, 10))
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    out = raw_rows(X, 10)
    assert out.dtype == np.float32 and out.has_canonical_format and out.data.all()
    np.testing.assert_array_equal(out.toarray(), X.toarray())
    from awe_tf.layers.transform import InputTransform

    InputTransform(10, "l2").apply(X)  # the model's transform reads raw rows the same way
    for now, then in zip((X.data, X.indices, X.indptr), before, strict=True):
        np.testing.assert_array_equal(now, then)


class Frame:
    """What the readers use of a pandas DataFrame (pandas is not among the requirements):
    named columns, an index, its values, and columns picked by name."""

    def __init__(self, values, columns, index=None):
        self.values, self.columns = np.asarray(values), list(columns)
        self.index = list(index) if index is not None else list(range(len(self.values)))

    def __getitem__(self, columns):
        if isinstance(columns, str):  # one column, as a pandas Series gives its values
            return self.values[:, self.columns.index(columns)]
        return Frame(self.values[:, [self.columns.index(c) for c in columns]], columns, self.index)

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


def test_dataframes_are_read_by_their_names_or_refused():
    """A DataFrame given to Dataset names its columns and rows (names given beside it must be its
    columns, in order); given to a model it is read by name where the model knows its inputs'
    names (a recommendation model's items, in any column order), and refused where it would be read
    by position under other names."""
    from awe_tf.data import Dataset
    from awe_tf.models import AWEModel

    items = ["m1", "m2", "m3", "m4"]
    clicks = Frame([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]], items, ["u1", "u2", "u3", "u4"])
    data = Dataset(clicks, clicks, task="recommendation")
    assert data.feature_names == items and data.label_names == items and list(data.row_ids) == ["u1", "u2", "u3", "u4"]
    with pytest.raises(ValueError, match="label_names differ from the columns of the DataFrame given as Y .column 1 "
                                         "is 'm2' in the frame, 'x' in label_names"):
        Dataset(clicks, clicks, task="recommendation", label_names=["m1", "x", "m3", "m4"])
    with pytest.raises(ValueError, match="the DataFrames given as X and Y index other rows .row 0 is 'u2' in Y's"):
        Dataset(clicks, Frame(clicks.values, items, ["u2", "u1", "u3", "u4"]), task="recommendation")
    words = Frame(np.array([[1, "a"], [0, "b"]], dtype=object), ["f", "g"])
    with pytest.raises(ValueError, match="data: X is a DataFrame with values that are not numbers .column 'g'"):
        Dataset(words, np.eye(2))
    model = AWEModel(4, 4, dimension=3, data_task="recommendation", label_names=items)
    model.adapt(data)
    shuffled = clicks[["m3", "m1", "m4", "m2"]]
    np.testing.assert_array_equal(model.score(shuffled), model.score(clicks.values))
    some = clicks[["m3", "m1"]]  # a subset of the items (a pivot of rows that name only some): the rest are 0
    np.testing.assert_array_equal(model.score(some), model.score(clicks.values * [1, 0, 1, 0]))
    with pytest.raises(ValueError, match="named columns .'x': not among the model's items., which the model reads"):
        model.score(Frame(clicks.values, ["m1", "x", "m3", "m4"]))
    with pytest.raises(ValueError, match="named columns .'m1': a column twice., which the model reads"):
        model.score(Frame(clicks.values, ["m1", "m1", "m3", "m4"]))
    titles = AWEModel(4, 4, dimension=3, data_task="recommendation", label_names=["a", "b", "b", "c"])
    with pytest.raises(ValueError, match="a column named 'b', the name of 2 of the model's items"):
        titles.score(Frame(clicks.values[:, :2], ["a", "b"]))
    annotation = AWEModel(4, 4, dimension=3)
    with pytest.raises(ValueError, match="a DataFrame with named columns, which the model reads by position"):
        annotation.score(clicks)
    assert annotation.score(Frame(clicks.values, range(4))).shape == (4, 4)  # numbered 0, 1, ... in order


def test_real_pandas_frames_and_columns_read_as_the_same_rows_as_arrays(tmp_path):
    """pandas itself (the test above fakes the little the readers use): boolean and nullable
    integer label columns, a filtered frame's index, string and categorical id columns, a pivot
    scored by item name in any column order by the model and by its export, and what is refused
    (a categorical feature, named with the way to code it; a missing value)."""
    pd = pytest.importorskip("pandas")  # in requirements.txt: this runs in CI
    from awe_tf import serving
    from awe_tf.data import Dataset, protocol_split
    from awe_tf.models import AWEModel

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 80, 40), "income": rng.normal(50, 10, 40),
                          "lab1": rng.random(40) > 0.5, "lab2": pd.array(rng.integers(0, 2, 40), dtype="Int64")})
    kept = frame[frame.age > 30]
    data = Dataset(kept[["age", "income"]], kept[["lab1", "lab2"]])
    assert data.feature_names == ["age", "income"] and data.label_names == ["lab1", "lab2"]
    assert list(data.row_ids) == list(kept.index)
    np.testing.assert_array_equal(data.Y.toarray(), kept[["lab1", "lab2"]].to_numpy(dtype=float))
    with pytest.raises(ValueError, match=re.escape("(column 'city'): could not convert string to float: 'x'; "
                                                   "categories as one 0/1 column per value: pd.get_dummies(df, "
                                                   "columns=['city'], dtype=float)")):
        Dataset(frame[["age"]].assign(city=pd.Categorical(["x", "y"] * 20)), frame[["lab1"]])
    with pytest.raises(ValueError, match=r"X holds NaN .* fill them with 0: fillna\(0\)"):  # pandas' NA too
        Dataset(frame[["age"]].astype("Float64").mask(frame.age > 70), frame[["lab1"]])
    log = pd.DataFrame({"user": rng.integers(0, 30, 400), "item": [f"sku-{i}" for i in rng.integers(0, 20, 400)]})
    log = log.drop_duplicates(["user", "item"])
    plain = Dataset.from_interactions(log["user"], log["item"])
    for users, items in ((log["user"].astype("string"), log["item"].astype("category")),
                         (log["user"].to_numpy(), log["item"].tolist())):
        same = Dataset.from_interactions(users, items)
        assert same.fingerprint() == plain.fingerprint() and list(same.row_ids) == list(plain.row_ids)
    split = protocol_split(plain)
    model = AWEModel(20, 20, dimension=4, data_task="recommendation", label_names=plain.label_names, seed=1)
    model.adapt(split.train)
    pivot = log.assign(n=1).pivot_table(index="user", columns="item", values="n", fill_value=0)
    shuffled = pivot[list(reversed(pivot.columns))]
    as_array = plain.X.toarray()[[list(plain.row_ids).index(str(u)) for u in pivot.index]]
    np.testing.assert_array_equal(model.score(shuffled), model.score(as_array))
    served = serving.load(serving.export(model, tmp_path, "m", flavour="portable", log=None))
    np.testing.assert_array_equal(served(shuffled.iloc[:3], k=5)["label_ids"], served(as_array[:3], k=5)["label_ids"])


def test_a_dataset_refuses_its_inputs_as_annotation_labels_and_says_what_nan_means():
    """X and Y holding the same entries as annotation (a user-item matrix without
    task="recommendation") would teach a model to give a row's inputs back: refused, naming the
    task; names are kept as text whatever they were given as; a NaN (a pivot's empty cell) is
    named as such in X and in Y."""
    from awe_tf.data import Dataset

    M = np.eye(4) + np.eye(4)[::-1]
    with pytest.raises(ValueError, match="X and Y hold the same entries.*task='recommendation'"):
        Dataset(M, M)
    assert Dataset(M, np.eye(4)).label_names == ["0", "1", "2", "3"]  # other labels: annotation as given
    labels = Frame(np.eye(4)[:, :2], ["happy", "sad"])
    with pytest.raises(ValueError, match=r"X holds the label columns 'happy', 'sad' \(a feature named as a label, "
                                         r"present in the same rows\): .*\(df.drop\(columns=label_columns\)\)"):
        Dataset(Frame(np.hstack([M, np.eye(4)[:, :2]]), ["f0", "f1", "f2", "f3", "happy", "sad"]), labels)
    named = Dataset(Frame(np.hstack([M, np.eye(4)[:, 1:3]]), ["f0", "f1", "f2", "f3", "happy", "sad"]), labels)
    assert named.feature_names[-1] == "sad"  # named as labels, other rows: not the labels themselves
    named = Dataset(M, M, task="recommendation", feature_names=[5, 6, 7, 8], label_names=[5, 6, 7, 8])
    assert named.label_names == ["5", "6", "7", "8"] and named.feature_names == ["5", "6", "7", "8"]
    gaps = M.copy()
    gaps[0, 0] = np.nan
    with pytest.raises(ValueError, match="X holds NaN.*a pivot's empty cells. fill them with 0"):
        Dataset(gaps, np.eye(4))
    with pytest.raises(ValueError, match="Y holds NaN: give 0 where a label does not apply"):
        Dataset(M, gaps)


def test_rows_are_found_by_their_ids_as_text():
    """A user's row by the id the data gives it (compared as text, so 7 finds "7"), in the order
    asked; an unknown id is named."""
    from awe_tf.data import Dataset

    data = Dataset(np.eye(3), np.eye(3)[::-1], row_ids=np.array(["u7", "u3", "7"]))
    assert data.rows_of(["u3", 7, "u7"]).tolist() == [1, 2, 0]
    assert data.rows_of([" u3", "u7\t"]).tolist() == [1, 0]  # spaces around an id are no part of it, as read
    assert Dataset(np.eye(2), np.eye(2)[::-1], row_ids=np.array([" a", "b"])).rows_of(["a", " a "]).tolist() == [0, 0]
    spaced = Dataset.from_interactions([" u1", "u1", "u2 "], ["a", " b", "b"])  # as the file readers strip them
    assert list(spaced.row_ids) == ["u1", "u2"] and spaced.label_names == ["a", "b"]
    with pytest.raises(KeyError, match="no row of data has the id 'u9' .its 3 rows' ids are as its data gives"):
        data.rows_of(["u3", "u9"])
    with pytest.raises(KeyError, match=r"the id '007' .*; ids are compared as text, and '7' is the same number"):
        data.rows_of(["007"])  # a spreadsheet's zeros, added or dropped
    with pytest.raises(KeyError) as unlike:
        data.rows_of(["8"])
    assert "same number" not in str(unlike.value)
    # ids told apart only by spaces (rows made in Python): each as given is its own row, not the other's
    apart = Dataset(np.eye(3), np.eye(3)[::-1], row_ids=np.array([" a", "a", "b"]))
    assert apart.rows_of(["a", " a", "b "]).tolist() == [1, 0, 2]
    with pytest.raises(KeyError, match=r"'a ' is the id of 2 rows of data \(rows \[0, 1\]: ' a', 'a'; spaces"):
        apart.rows_of(["a "])  # either might be meant
    with pytest.raises(KeyError, match=r"'b' is the id of 2 rows of data \(rows \[0, 2\]: 'b', 'b'\): take such a row "
                                       r"by its number, data.X\[\[0\]\]"):
        Dataset(np.eye(3), np.eye(3)[::-1], row_ids=np.array(["b", "c", "b"])).rows_of(["c", "b"])  # repeated ids


@pytest.mark.parametrize("bucketing", [True, False])
def test_the_tensorflow_pipeline_gives_the_generator_batches_in_order_across_chunks(monkeypatch, bucketing):
    """dataset() hands the batches over in chunks and cuts them again: each batch as batches()
    made it, in order, whether a chunk holds one batch, several or a whole epoch, context too,
    and on past an epoch's end when it runs forever."""
    import tensorflow as tf

    from awe_tf.data import pipeline

    data = toy("recommendation", n=61)
    context = sp.random(61, data.n_labels, density=0.2, random_state=1, format="csr")
    batches = TrainingBatches(data, pairs_per_batch=48, bucketing=bucketing, context=context)
    steps = batches.steps_per_epoch()
    want = [batch for epoch in (1, 2, 3) for batch in batches.batches(epoch)]
    shapes = {tuple(batch["feature_ids"].shape) for batch in want}
    assert steps > 3 and (len(shapes) > 1) == bucketing
    sizes = [sum(value.nbytes for value in batch.values()) for batch in want]
    for chunk_bytes in (1, 3 * max(sizes), 1 << 30):
        monkeypatch.setattr(pipeline, "CHUNK_BYTES", chunk_bytes)
        for got, epochs in ((list(batches.dataset(epochs=2, start_epoch=1)), 2),
                            (list(batches.dataset(start_epoch=1).take(3 * steps)), 3)):  # forever
            assert len(got) == epochs * steps
            for mine, theirs in zip(got, want[:epochs * steps], strict=True):
                assert set(mine) == set(theirs)
                for key, value in theirs.items():
                    assert mine[key].dtype.as_numpy_dtype == value.dtype
                    np.testing.assert_array_equal(mine[key].numpy(), value)
    for key, spec in batches.dataset().element_spec.items():
        width = {"feature_ids": "feature_width", "feature_weights": "feature_width", "label_ids": "label_width",
                 "self_position": "label_width", "context_ids": "context_width",
                 "context_weights": "context_width"}[key]
        want_shape = [None, None] if bucketing else [batches.batch_size, getattr(batches, width)]
        assert spec.shape.as_list() == want_shape, key
    # several workers each take every n-th batch, as of one batch per element, not whole chunks
    monkeypatch.setattr(pipeline, "CHUNK_BYTES", 1 << 30)
    dataset = batches.dataset(epochs=1)
    assert dataset.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    # tf.data's own rewrite, as a worker of several applies it (private: the one way to see it without workers)
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    first = [batch["label_ids"] for batch in batches.batches(0)]
    for worker in (0, 1):
        taken = [batch["label_ids"].numpy() for batch in _AutoShardDataset(dataset, 2, worker)]
        assert len(taken) == len(first[worker::2])
        for mine, theirs in zip(taken, first[worker::2], strict=True):
            np.testing.assert_array_equal(mine, theirs)
