"""Readers: every format, and a clear error (file and line) for every kind of bad input."""

import re
from pathlib import Path

import numpy as np
import pytest

from awe_tf.data import DataFormatError, read_files, read_interactions, read_movielens, read_mulan, read_xmlrepo
from awe_tf.data.text import data_name

XML = """<?xml version="1.0" encoding="utf-8"?>
<labels xmlns="http://mulan.sourceforge.net/labels">
<label name="sky"></label>
<label name="sea"></label>
</labels>
"""

DENSE = """@relation toy
@attribute f1 numeric
@attribute 'f two' numeric
@attribute sky {0,1}
@attribute sea {0,1}
@data
1.5,2,1,0
-1,0,0,1
% a comment
0.5,4,1,1
"""

SPARSE = """@relation toy
@attribute w1 {0,1}
@attribute w2 {0,1}
@attribute w3 {0,1}
@attribute sky {0,1}
@attribute sea {0,1}
@data
{0 1,2 1,3 1}
{1 1,4 1}
{}
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mulan_dense(tmp_path):
    data = read_mulan(write(tmp_path, "d.arff", DENSE), write(tmp_path, "l.xml", XML))
    assert data.feature_names == ["f1", "f two"]
    assert data.label_names == ["sky", "sea"]
    np.testing.assert_allclose(data.X.toarray(), [[1.5, 2], [-1, 0], [0.5, 4]])
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [0, 1], [1, 1]])
    assert data.numeric_features.tolist() == [True, True]


def test_quoted_arff_names_and_values_lose_their_escapes(tmp_path):
    """Inside quotes Weka's escapes are read as Weka writes them: the label 'rock\\'n\\'roll' is
    rock'n'roll, as its XML list names it; a backslash before any other character stays ('C:\\dir');
    a quoted nominal value is read as its text."""
    arff = DENSE.replace("@attribute sky {0,1}", "@attribute 'rock\\'n\\'roll' {'0','1'}").replace(
        "@attribute 'f two'", "@attribute \"say \\\"hi\\\"\"").replace("@attribute f1", "@attribute 'C:\\dir'")
    xml = XML.replace('name="sky"', 'name="rock&apos;n&apos;roll"')
    arff = arff.replace("1.5,2,1,0", "1.5,2,'1',0")
    data = read_mulan(write(tmp_path, "q.arff", arff), write(tmp_path, "l.xml", xml))
    assert data.label_names == ["rock'n'roll", "sea"] and data.feature_names == ["C:\\dir", 'say "hi"']
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [0, 1], [1, 1]])


def test_mulan_sparse(tmp_path):
    data = read_mulan(write(tmp_path, "s.arff", SPARSE), write(tmp_path, "l.xml", XML))
    np.testing.assert_array_equal(data.X.toarray(), [[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [0, 1], [0, 0]])
    assert data.numeric_features.tolist() == [False, False, False]


def test_mulan_labels_are_binarised_as_the_protocol_says(tmp_path):
    """Any non-zero label value is a positive (docs/protocols.md), declared numeric or nominal;
    a negative one (a file coding absent labels as -1) is refused, not read as a positive."""
    header = DENSE.split("@data")[0].replace("@attribute sky {0,1}", "@attribute sky numeric") \
        .replace("@attribute sea {0,1}", "@attribute sea {0,1,2}")
    data = read_mulan(write(tmp_path, "counts.arff", header + "@data\n1,2,3,0\n0,1,0.5,2\n2,2,0,1\n"),
                      write(tmp_path, "l.xml", XML))
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [1, 1], [0, 1]])
    assert data.Y.dtype == np.float32
    # said, so that a numeric attribute listed as a label (read as present wherever it is not 0) shows
    assert data.notes == ("label 'sky' holds values other than 0 and 1 (0.5 to 3, in 2 rows), each read as 1 "
                          "(present): labels are binarised",
                          "label 'sea' holds values other than 0 and 1 (1 to 2, in 1 row), each read as 1 "
                          "(present): labels are binarised")
    tempo = DENSE.split("@data")[0].replace("@attribute sky {0,1}", "@attribute sky numeric")
    data = read_mulan(write(tmp_path, "tempo.arff", tempo + "@data\n1,2,120,0\n0,1,95,1\n"),
                      write(tmp_path, "l.xml", XML))
    assert data.notes[0].endswith("it is present in every row: a feature that l.xml lists as a label?")
    assert read_mulan(write(tmp_path, "d.arff", DENSE), write(tmp_path, "l.xml", XML)).notes == ()
    with pytest.raises(DataFormatError, match="'sky' is -2; a label is 0 .absent. or positive") as err:
        read_mulan(write(tmp_path, "signed.arff", header + "@data\n1,2,1,0\n0,1,-2,1\n"), write(tmp_path, "l.xml", XML))
    assert "signed.arff:8" in str(err.value)
    words = DENSE.replace("@attribute sky {0,1}", "@attribute sky {0,1,maybe}")  # declared, even if unused
    with pytest.raises(DataFormatError, match="'sky' has values .* expected numbers such as"):
        read_mulan(write(tmp_path, "words.arff", words), write(tmp_path, "l.xml", XML))


@pytest.mark.parametrize(
    "body, line, message",
    [
        ("1.5,2,1\n", 7, "3 values but there are 4"),
        ("1.5,nan,1,0\n", 7, "NaN"),
        ("1.5,inf,1,0\n", 7, "NaN and infinite"),
        ("1.5,-1e-50,1,0\n", 7, "is -1e-50, below float32's smallest normal number, 1.18e-38 .* or reads 0"),
        ("1.5,abc,1,0\n", 7, "not a number"),
        ("1,2,1,0\n1.5,2,2,0\n", 8, "not one of"),
        ("1,?,1,0\n", 7, "missing value"),
    ],
)
def test_mulan_dense_errors_name_file_and_line(tmp_path, body, line, message):
    text = DENSE.split("@data\n")[0] + "@data\n" + body
    path = write(tmp_path, "bad.arff", text)
    with pytest.raises(DataFormatError, match=message) as err:
        read_mulan(path, write(tmp_path, "l.xml", XML))
    assert f"bad.arff:{line}" in str(err.value)


@pytest.mark.parametrize(
    "row, message",
    [("{0 1,9 1}", "out of range"), ("{0 1,0 1}", "given twice"), ("{0 1", "does not end"), ("{0}", "index value")],
)
def test_mulan_sparse_errors(tmp_path, row, message):
    text = SPARSE.split("@data\n")[0] + "@data\n" + row + "\n"
    with pytest.raises(DataFormatError, match=message) as err:
        read_mulan(write(tmp_path, "bad.arff", text), write(tmp_path, "l.xml", XML))
    assert "bad.arff:8" in str(err.value)


def test_mulan_label_list_must_match(tmp_path):
    xml = XML.replace('"sea"', '"ocean"')
    with pytest.raises(DataFormatError, match="not among the attributes"):
        read_mulan(write(tmp_path, "d.arff", DENSE), write(tmp_path, "l.xml", xml))


def test_empty_files(tmp_path):
    with pytest.raises(DataFormatError, match="no @data"):
        read_mulan(write(tmp_path, "e.arff", ""), write(tmp_path, "l.xml", XML))
    with pytest.raises(DataFormatError, match="no rows"):
        read_mulan(write(tmp_path, "e2.arff", DENSE.split("@data")[0] + "@data\n"), write(tmp_path, "l.xml", XML))
    with pytest.raises(DataFormatError, match="empty"):
        read_interactions(write(tmp_path, "e.tsv", ""))
    with pytest.raises(DataFormatError, match="empty file"):
        read_xmlrepo(write(tmp_path, "e.txt", ""))
    (tmp_path / "ml").mkdir()
    with pytest.raises(DataFormatError, match=r"ratings.csv: no ratings after the header line"):
        read_movielens(write(tmp_path / "ml", "ratings.csv", "userId,movieId,rating,timestamp\n"))
    with pytest.raises(DataFormatError, match=r"clicks.csv:2: expected 2 to 3 fields separated by ',', got 4 \(user, "
                                              r"item, weight, timestamp\? keep the first three columns: cut -d, "
                                              r"-f1-3 clicks.csv > clicks-3cols.csv; --format movielens reads such "
                                              "rows, a single file, where user and item ids are whole numbers"):
        read_interactions(write(tmp_path, "clicks.csv", "userId,movieId,rating,timestamp\n1,2,4.0,9\n"))
    with pytest.raises(DataFormatError, match="label"):
        read_mulan(write(tmp_path, "d.arff", DENSE), write(tmp_path, "bad.xml", "<labels></labels>"))
    with pytest.raises(DataFormatError, match=r"twice.xml: label name listed twice: 'c\+\+'$"):  # which one
        read_mulan(write(tmp_path, "d.arff", DENSE), write(tmp_path, "twice.xml", '<labels><label name="c++"/>'
                                                           '<label name="sea"/><label name="c++"/></labels>'))


def test_movielens_formats_agree(tmp_path):
    rows = [(1, 10, 5, 100), (1, 20, 3, 101), (2, 10, 4, 102), (3, 30, 1, 103)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    write(tmp_path / "a", "u.data", "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    write(tmp_path / "b", "ratings.dat", "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows))
    write(tmp_path / "c", "ratings.csv", "userId,movieId,rating,timestamp\n" +
          "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in rows))
    write(tmp_path / "a", "u.item", "10|Toy Story (1995)|x\n20|Heat|x\n30|Fargo|x\n")
    datasets = [read_movielens(tmp_path / d) for d in "abc"]
    for data in datasets:
        assert data.task == "recommendation"
        np.testing.assert_array_equal(data.Y.toarray(), [[1, 1, 0], [1, 0, 0], [0, 0, 1]])
        assert list(data.row_ids) == [1, 2, 3]
    assert datasets[0].label_names == ["Toy Story (1995)", "Heat", "Fargo"]
    assert datasets[2].header == ("userId", "movieId", "rating", "timestamp") and datasets[0].header is None
    write(tmp_path / "c", "movies.csv", 'movieId,title,genres\n10,Toy Story (1995),x\n20,"American President, The '
          '(1995)",y\n30,Fargo,z\n')  # MovieLens quotes the titles holding a comma
    assert read_movielens(tmp_path / "c").label_names == ["Toy Story (1995)", "American President, The (1995)", "Fargo"]


def test_a_ratings_csv_is_movielens_only_with_its_four_columns(tmp_path):
    """A user's own weighted rows in a file named ratings.csv, numeric ids and all, keep their
    weights (read as interactions, told from the columns); MovieLens' own ratings.csv, with its
    four, is read as MovieLens (every rating a 1)."""
    from awe_tf.cli.train import _format_note

    (tmp_path / "own").mkdir()
    (tmp_path / "ml").mkdir()
    own = write(tmp_path / "own", "ratings.csv", "user,item,weight\n1,10,5\n1,20,2\n2,10,3\n")
    movielens = write(tmp_path / "ml", "ratings.csv", "userId,movieId,rating,timestamp\n1,10,5,100\n2,10,3,101\n")
    data = read_files(own)[0]
    np.testing.assert_array_equal(data.X.toarray(), [[5, 2], [3, 0]])  # the weights, not ones
    assert "(--format interactions), told from the name ratings.csv and its first line's 3 columns (MovieLens' " \
           "has 4: user, movie, rating, timestamp)" in _format_note(own)
    np.testing.assert_array_equal(read_files(movielens)[0].X.toarray(), [[1], [1]])
    assert "(--format movielens), told from the name ratings.csv and its first line's 4 columns" \
        in _format_note(movielens)
    (tmp_path / "pairs").mkdir()
    pairs = write(tmp_path / "pairs", "ratings.csv", '"a, b",x\nc,y\n')  # two columns, one quoted with a comma
    assert read_files(pairs)[0].n_examples == 2
    with pytest.raises(DataFormatError, match=r"ratings.csv:2: expected 4 fields .* got 3 \(user, item, weight\? "
                                              r"--format interactions reads such rows, their weights kept\)"):
        read_files(tmp_path / "own")  # a folder is MovieLens': its ratings.csv of 3 columns is refused, not misread
    with pytest.raises(DataFormatError, match=r"got 3 \(user, item, weight\? --format interactions reads such rows, "
                                              r"their weights kept, once their '::' are tabs: sed 's/::/\\t/g' "
                                              r"ratings.dat > ratings.tsv with GNU sed\)"):  # tabs or commas only
        read_movielens(write(tmp_path / "own", "ratings.dat", "1::2::5\n"))


def test_movielens_bad_row(tmp_path):
    with pytest.raises(DataFormatError, match=r"u.data:2: .*integers"):
        read_movielens(write(tmp_path, "u.data", "1\t2\t3\t4\nx\t2\t3\t4\n"))


@pytest.mark.parametrize("rating", ["0", "-1", "0.0"])
def test_a_movielens_rating_of_0_or_below_is_refused_not_read_as_an_interaction(tmp_path, rating):
    """Every MovieLens rating is read as an interaction; MovieLens rates from 0.5 or 1 up, so a row
    of 0 or below (an impression, an item not seen) is refused at its line, as the interactions
    reader refuses a weight of 0."""
    said = rf"u.data:2: rating '{re.escape(rating)}' is no interaction \(MovieLens rates from 0.5 up"
    with pytest.raises(DataFormatError, match=said):
        read_movielens(write(tmp_path, "u.data", f"1\t2\t3\t4\n1\t3\t{rating}\t4\n"))
    assert read_movielens(write(tmp_path, "u.data", "1\t2\t0.5\t4\n")).Y.nnz == 1


def test_interactions_with_weights_and_header(tmp_path):
    path = write(tmp_path, "i.csv", "user,item,weight\nbob,apple,2\nann,pear,1\nbob,apple,1\n")
    with pytest.raises(DataFormatError, match=r"i.csv:4: the interaction \(user bob, item apple\) is given twice "
                                              r"\(first on line 2\)"):
        read_interactions(path)
    data = read_interactions(path, duplicates="sum")
    assert list(data.row_ids) == ["ann", "bob"]
    assert data.label_names == ["apple", "pear"]
    np.testing.assert_array_equal(data.X.toarray(), [[0, 1], [3, 0]])  # repeats summed
    np.testing.assert_array_equal(data.Y.toarray(), [[0, 1], [1, 0]])
    with pytest.raises(DataFormatError, match=r"i2.tsv:1: weight -1.0 must be positive"):
        read_interactions(write(tmp_path, "i2.tsv", "a\tb\t-1\n"))
    with pytest.raises(DataFormatError, match=r"i3.csv:4: no weight, where line 2 has one: give every row a weight"):
        read_interactions(write(tmp_path, "i3.csv", "user,item,weight\nbob,apple,2\nann,pear,1\nann,fig\n"))
    with pytest.raises(DataFormatError, match=r"i4.tsv:1: no weight, where line 2 has one"):  # either way round
        read_interactions(write(tmp_path, "i4.tsv", "a\tb\nc\td\t3\n"))
    with pytest.raises(DataFormatError, match=r"i5.csv:3: no weight, where line 1 has one"):  # the first bad line
        read_interactions(write(tmp_path, "i5.csv", "a,b,1\nc,d,2\ne,f\ng\n"))
    with pytest.raises(DataFormatError, match=r"i6.csv:2: expected 2 to 3 fields"):  # before a later weight's
        read_interactions(write(tmp_path, "i6.csv", "a,b,1\nc\ne,f,x\n"))
    with pytest.raises(DataFormatError, match=r"i7.tsv:3: weight 'x' is not a number"):  # its weight is what is wrong
        read_interactions(write(tmp_path, "i7.tsv", "a\tb\nc\td\ne\tf\tx\n"), header=False)


def test_ids_of_one_number_written_with_other_zeros_are_other_ids_and_said_to_be(tmp_path):
    """Ids are text: '007' and '7' are two users, read apart as before, and a note names them,
    within one file and where a test file writes the training file's ids otherwise (a
    spreadsheet's zeros); ids that merely look alike are not named."""
    from awe_tf.data.interactions import same_number_ids
    from awe_tf.data.protocols import protocol_split

    data = read_interactions(write(tmp_path, "one.csv", "7,a\n007,b\n7,c\n8,a\n08,c\nx7,a\n"))
    assert list(data.row_ids) == ["007", "08", "7", "8", "x7"]  # five users, as before
    assert data.notes == ("user ids written with other leading or decimal zeros than its other ids (2: '7' for "
                          "'007', '8' for '08'): ids are compared as text, so they are read as other users; write "
                          "them alike where they are one user",)
    assert read_interactions(write(tmp_path, "plain.csv", "7,a\n70,b\n0,a\n00x,b\n7.5,a\n")).notes == ()
    decimal = read_interactions(write(tmp_path, "decimal.csv", "7,a\n7.0,b\n8,a\n")).notes  # a spreadsheet's 7.0
    assert decimal and "(1: '7.0' for '7')" in decimal[0]
    train = read_interactions(write(tmp_path, "train.csv", "".join(f"{u},{i}\n" for u in range(1, 9) for i in
                                                                     range(1, 12) if (u + i) % 3)))
    test = read_interactions(write(tmp_path, "test.csv", "001,3\n2,04\n2,10\n09,5\n"))
    split = protocol_split(train, test)
    assert split.train.notes == (
        "user ids of the test file written with other leading or decimal zeros than training ids (1: '001' for "
        "'1'): ids are compared as text, so they are read as other users; write them alike where they are one user",
        "item ids of the test file written with other leading or decimal zeros than training ids (1: '04' for "
        "'4'): ids are compared as text, so they are read as other items; write them alike where they are one item")
    assert "001" in list(split.test.row_ids)  # still another user: tested with no training items
    twice = protocol_split(train, read_interactions(write(tmp_path, "t2.csv", "2,3\n02,4\n")))
    assert twice.train.notes[0].startswith("the test file: user ids written with other leading or decimal zeros than "
                                           "its other ids (1: '2' for '02')")
    from awe_tf.data.interactions import rows_of_items

    hint = ("items the model does not have: '04' ('04' for '4': the model's items written with other leading or "
            "decimal zeros?")
    with pytest.raises(ValueError, match=re.escape(hint)):
        rows_of_items(["3", "4"], [["3", "04"]])
    many = same_number_ids([f"{n:03d}" for n in range(6)], known=[str(n) for n in range(6)])
    assert list(many.items())[:2] == [("000", "0"), ("001", "1")] and len(many) == 6


def test_interactions_in_memory_are_the_data_set_their_file_reads_as(tmp_path):
    """Dataset.from_interactions builds what read_interactions reads from a file of the same rows
    (the same content and fingerprint, users in ascending id order, ids kept as text, whole-number
    ids as their text), and refuses what the reader refuses, naming the interaction's position: a
    pair given twice (or adds its weights up), a weight not above 0 or missing; and what only memory
    can hold: a missing id (None, NaN), a float id, an empty one, lengths that differ, a frame."""
    from awe_tf.data import Dataset

    path = write(tmp_path, "clicks.csv", "user,item,weight\nbob,apple,2\nann,pear,1\nbob,fig,1\n12,apple,3\n")
    users, items, weights = ["bob", "ann", "bob", 12], np.array(["apple", "pear", "fig", "apple"]), [2, 1, 1, 3]
    data = Dataset.from_interactions(users, items, np.asarray(weights, np.int64), name="clicks")
    from_file = read_interactions(path)
    assert data.same_content(from_file) and data.fingerprint() == from_file.fingerprint()
    assert list(data.row_ids) == list(from_file.row_ids) == ["12", "ann", "bob"]
    assert data.task == "recommendation" and data.label_names == ["apple", "fig", "pear"]
    np.testing.assert_array_equal(data.X.toarray(), [[3, 0, 0], [0, 0, 1], [2, 1, 0]])
    np.testing.assert_array_equal(data.rows_of(["bob", 12]), [2, 0])
    for one in ("bob", 12):
        with pytest.raises(TypeError, match=r"rows_of takes a list of ids: rows_of\(\[" + repr(one) + r"\]\)"):
            data.rows_of(one)  # "bob": not the rows of users 'b', 'o' and 'b'
    numbered = Dataset.from_interactions(np.array([3, 10, 2]), np.array([5, 5, 6]))
    from awe_tf.data.interactions import rows_of_items

    assert rows_of_items(numbered.label_names, [[6, "5"]]).toarray().tolist() == [[1, 1]]  # ids as their text
    assert list(numbered.row_ids) == ["2", "3", "10"] and numbered.label_names == ["5", "6"]  # numeric order
    assert numbered.X.toarray().tolist() == [[0, 1], [1, 0], [1, 0]]  # weight 1 each
    with pytest.raises(DataFormatError, match=r"^interactions, position 2: the interaction \(user a, item x\) is "
                                              r"given twice \(first at position 0\); use duplicates='sum' to add"):
        Dataset.from_interactions(["a", "b", "a"], ["x", "x", "x"])
    summed = Dataset.from_interactions(["a", "b", "a"], ["x", "x", "x"], [1, 2, 3], duplicates="sum")
    assert summed.X.toarray().tolist() == [[4], [2]]
    refused = [
        ((["a", None], ["x", "y"]), r"^user ids, position 1: no id \(None\): drop the interactions without one"),
        ((["a", "b"], np.array([1.0, np.nan])), r"^item ids, position 1: no id \(nan\)"),
        ((np.array([1.0, 2.0]), ["x", "y"]), r"^user ids, position 0: 1.0 \(float\): ids are text or whole numbers; "
                                             r"astype\(int\)"),
        ((["a", " "], ["x", "y"]), r"^user ids, position 1: an empty id"),  # spaces dropped, as a file's are
        ((["a", ""], ["x", "y"]), r"^user ids, position 1: an empty id"),
        ((["a", "b"], ["x", "y"], [1, 0]), r"^weights, position 1: weight 0.0 must be positive"),
        ((["a", "b"], ["x", "y"], [float("nan"), 1]), r"^weights, position 0: weight is nan"),
        ((["a", "b"], ["x", "y"], [1, 1e39]), r"^weights, position 1: weight is 1e\+39, beyond float32's range"),
        ((["a", "b"], ["x", "y"], [1]), r"weights must be one number per interaction: 2 interactions"),
        ((["a", "b"], ["x"]), r"users and items must be one per interaction: 2 users, 1 items"),
        ((["a", "b"], ["x", "y"], [1, "many"]), r"^weights, position 1: weight 'many' is not a number"),
        (([], []), r"^interactions: no interactions given"),
    ]
    for args, message in refused:
        with pytest.raises(ValueError, match=message):
            Dataset.from_interactions(*args)

    class Frame:  # what the builder looks at of a pandas DataFrame
        columns, index = ["user", "item"], [0, 1]

    with pytest.raises(ValueError, match=r"user ids are a DataFrame: give its columns"):
        Dataset.from_interactions(Frame(), ["x", "y"])
    with pytest.raises(ValueError, match=r"as Dataset.from_interactions\(df\['user'\], .* \(the columns of the "
                                         r"DataFrame, not the frame\)"):
        Dataset.from_interactions(Frame())

    class Column(np.ndarray):  # a pandas column of rows filtered before: its index labels are not its positions
        index = [4, 7, 9]

    users = np.array(["a", "b", "a"]).view(Column)
    with pytest.raises(DataFormatError, match=r"^interactions, position 2, index 9: the interaction \(user a, item x\) "
                                              r"is given twice \(first at position 0, index 4\)"):
        Dataset.from_interactions(users, ["x", "x", "x"])

    class Sorted(np.ndarray):  # another column of the same frame, sorted apart: its rows in another order
        index = [9, 7, 4]

    with pytest.raises(ValueError, match=r"users and items are pandas columns with other row labels"):
        Dataset.from_interactions(users, np.array(["x", "y", "z"]).view(Sorted))
    aligned = np.array(["x", "y", "z"]).view(Column)
    assert Dataset.from_interactions(users, aligned, duplicates="sum").X.nnz == 3


def test_rows_without_a_header_or_counted_from_one_and_wide_tables_are_told_apart(tmp_path):
    """What users commonly hold instead of the formats read: LibSVM's multi-label rows (no 'N F L'
    header: the one they need is computed; indices from 1: the index one past the end is named as
    such, and a file using neither feature 0 nor label 0 is noted), and a wide CSV of features and
    label columns (named as a table, not read as interactions, whether or not a test file is given)."""
    rows = "1,2 1:0.5 3:2\n0 0:1\n"
    with pytest.raises(DataFormatError, match=r"/r.txt:1: the first line must be the header 'N F L', got '1,2 1:0.5 "
                                              r"3:2': N the rows.*LibSVM's multi-label layout.: put '2 4 3' first"):
        read_xmlrepo(write(tmp_path, "r.txt", rows))
    with pytest.raises(DataFormatError, match=re.escape("no row has feature 0 or label 0, so its indices count from 1, "
                                                        "as LibSVM's do: take 1 from each, then put '2 3 2' first")):
        read_xmlrepo(write(tmp_path, "one.txt", "1,2 1:0.5 3:2\n1 2:1\n"))  # labels 1-2, features 1-3
    with pytest.raises(DataFormatError, match=re.escape("put '2 4 3' first (F and L as its rows use them: give the "
                                                        "data's own where it has more features or labels)")):
        read_xmlrepo(write(tmp_path, "r.txt", rows))  # the counts computed are a floor: a vocabulary may be larger
    with pytest.raises(DataFormatError, match=re.escape("put '2 9 5' first (train.txt's F and L)")):
        read_xmlrepo(write(tmp_path, "r.txt", rows), counts_of=(Path("train.txt"), 9, 5))  # a test file's: those
    assert read_xmlrepo(write(tmp_path, "h.txt", "2 4 3\n" + rows)).notes == ()
    with pytest.raises(DataFormatError, match=r"o.txt:2: feature index 4 out of range \(0..3: indices count from 0; "
                                              r"are this file's counted from 1"):
        read_xmlrepo(write(tmp_path, "o.txt", "1 4 3\n1 4:1\n"))
    with pytest.raises(DataFormatError, match=r"label index 3 out of range \(0..2: indices count from 0"):
        read_xmlrepo(write(tmp_path, "p.txt", "1 4 3\n3 1:1\n"))
    shifted = read_xmlrepo(write(tmp_path, "s.txt", "2 4 3\n1,2 1:0.5 3:2\n1 2:1\n"))
    assert shifted.notes == ("no row of s.txt has feature 0 or label 0: indices count from 0 here; if the file's "
                             "count from 1, as LibSVM's do, take 1 from each",)
    with pytest.raises(DataFormatError, match=r"/n.txt:1: the first line must be the header 'N F L', got '100 20': N "
                                              r"the rows, F the features and L the labels \(indices count from 0: F "
                                              r"and L are one more than the largest\)$"):  # no LibSVM advice there
        read_xmlrepo(write(tmp_path, "n.txt", "100 20\n" + rows))
    wide = "f1,f2,f3,l1,l2\n0.5,1,2,0,1\n0.1,0,3,1,1\n"
    for test in (None, write(tmp_path, "wide-test.csv", wide)):
        with pytest.raises(DataFormatError, match=r"wide.csv: its first row has 5 fields, where an interactions file "
                                                  r".* a table of features and label columns is read from Mulan ARFF"):
            read_files(write(tmp_path, "wide.csv", wide), test)
    with pytest.raises(DataFormatError, match=r"its first row has 6 fields"):
        read_interactions(write(tmp_path, "wide.tsv", "a\tb\tc\td\te\tf\n1\t2\t3\t4\t5\t6\n"))
    log = write(tmp_path, "log.csv", "user,item,rating,timestamp,title\nu1,i1,5,9,Heat\n")  # interactions, more columns
    with pytest.raises(DataFormatError, match=r"log.csv:2: expected 2 to 3 fields separated by ',', got 5 \(keep the "
                                              r"first three columns, user, item and weight: cut -d, -f1-3 log.csv"):
        read_files(log)


def test_an_interactions_test_file_is_read_as_its_training_file_is(tmp_path):
    """The two files of an own split read their first lines alike (both as the columns' names, or
    both as data) or are refused, unless header= says how to read both."""
    log = write(tmp_path, "log.csv", "user,item\nu1,a\nu2,b\n")
    later = write(tmp_path, "later.csv", "u1,b\nu2,a\n")
    with pytest.raises(DataFormatError, match=r"later.csv: .*log.csv's first line is read as the columns' names and "
                                              r".*later.csv's as data: give both files the same layout, a header "
                                              r"line in both or in neither"):
        read_files(log, later)
    train, test = read_files(log, write(tmp_path, "later2.csv", "user,item\nu1,b\n"))
    assert train.header == test.header == ("user", "item")
    train, test = read_files(log, later, header=False)  # both as data: the header line is an interaction
    assert "user" in list(train.row_ids) and test.n_examples == 2
    from awe_tf.data import load_split

    forced = load_split(log, write(tmp_path, "numbers.csv", "7,3\nu1,b\nu2,a\n"), header=True).train.notes
    assert any(note.startswith("the test file's first line, 7, 3, read as the columns' names: numbers only")
               for note in forced), forced  # header=True skips a line in each file: one that was data is said
    alike = load_split(log, write(tmp_path, "later3.csv", "user,item\nu1,b\nu2,a\n"), header=True).train.notes
    assert not any("first line" in note for note in alike), alike


def test_xmlrepo(tmp_path):
    path = write(tmp_path, "x.txt", "3 4 3\n0,2 0:1.5 3:2\n 1:1\n1 2:0.5\n")
    data = read_xmlrepo(path)
    np.testing.assert_allclose(data.X.toarray(), [[1.5, 0, 0, 2], [0, 1, 0, 0], [0, 0, 0.5, 0]])
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    with pytest.raises(DataFormatError, match=r"y.txt:2: label index 5 out of range"):
        read_xmlrepo(write(tmp_path, "y.txt", "1 4 3\n5 0:1\n"))
    with pytest.raises(DataFormatError, match=r"z.txt:2: feature index 7 out of range"):
        read_xmlrepo(write(tmp_path, "z.txt", "1 4 3\n0 7:1\n"))
    with pytest.raises(DataFormatError, match="w.txt:1: header says 2 examples"):
        read_xmlrepo(write(tmp_path, "w.txt", "2 4 3\n0 1:1\n"))
    with pytest.raises(DataFormatError, match="NaN"):
        read_xmlrepo(write(tmp_path, "v.txt", "1 4 3\n0 1:nan\n"))
    with pytest.raises(DataFormatError, match="s.txt:2: feature 1 is 1e-50, below float32's smallest normal"):
        read_xmlrepo(write(tmp_path, "s.txt", "1 4 3\n0 1:1e-50\n"))  # float32 would read it 0
    assert read_xmlrepo(write(tmp_path, "n.txt", "1 4 3\n0 1:2e-38\n")).X.nnz == 1  # a normal number is one
    tabs = read_xmlrepo(write(tmp_path, "t.txt", "3 4 3\n0,2\t0:1.5  3:2\n\t1:1\n1\t2:0.5\n"))  # any whitespace
    np.testing.assert_array_equal(tabs.X.toarray(), data.X.toarray())
    np.testing.assert_array_equal(tabs.Y.toarray(), data.Y.toarray())
    with pytest.raises(DataFormatError, match=r"u.txt:2: feature '2' is not 'index:value' \(a row's labels come first"):
        read_xmlrepo(write(tmp_path, "u.txt", "1 4 3\n0 2 1:1\n"))
    with pytest.raises(DataFormatError, match=r"u2.txt:2: empty label in the list '0,' \(a row's labels are one "
                                              "comma-separated list without spaces"):
        read_xmlrepo(write(tmp_path, "u2.txt", "1 4 3\n0, 2 1:1\n"))
    zeros = read_xmlrepo(write(tmp_path, "s.txt", "3 4 3\n0,2 0:1.5 1:0 3:2\n 1:1\n1 2:0.5\n"))
    assert zeros.X.nnz == data.X.nnz == 4  # a stored 0 is no input
    assert data.name == "x"
    (tmp_path / "bibtex").mkdir()  # a file named only as a part is named by its folder
    assert read_xmlrepo(write(tmp_path / "bibtex", "train.txt", "1 4 3\n0 1:1\n")).name == "bibtex"
    # a part's name after the data's (Mulan's bibtex-train.arff) is left out of the data set's name
    named = ("bibx-train.arff", "rcv1_test.txt", "a.trn.txt", "foo-bar.csv", "-train.csv", "movie_data.csv",
             "user_interactions.csv")
    assert [data_name(f) for f in named] == ["bibx", "rcv1", "a", "foo-bar", "-train", "movie_data",
                                             "user_interactions"]
    with pytest.raises(DataFormatError, match=r"e.txt:2: empty label in the list '3,6,'"):
        read_xmlrepo(write(tmp_path, "e.txt", "1 4 7\n3,6, 1:1\n"))


def test_read_files_guesses_and_checks(tmp_path):
    with pytest.raises(ValueError, match="label list"):
        read_files(write(tmp_path, "d.arff", DENSE))
    other_rows = DENSE.replace("0.5,4", "0.5,3")
    train, test = read_files(write(tmp_path, "d.arff", DENSE), write(tmp_path, "t.arff", other_rows),
                             write(tmp_path, "l.xml", XML))
    assert train.n_examples == test.n_examples == 3
    for test_file, words in ((tmp_path / "d.arff", "is the training file"),
                             (write(tmp_path, "copy.arff", DENSE), "holds the same rows as")):  # scored on its training
        with pytest.raises(DataFormatError, match=f"{test_file.name}: the test file {words}"):
            read_files(tmp_path / "d.arff", test_file, tmp_path / "l.xml")
    with pytest.raises(DataFormatError, match="the test file holds the same rows"):
        read_files(write(tmp_path, "a.txt", "1 4 3\n0 1:1\n"), write(tmp_path, "a2.txt", "1 4 3\n0 1:1\n"))
    with pytest.raises(ValueError, match=r"cannot tell the format from the name: give --format .*one of mulan .*"
                                         r"xmlrepo .*interactions .*movielens"):
        read_files(write(tmp_path, "data.bin", "x"))
    with pytest.raises(DataFormatError, match=r"header's 5 features and 3 labels differ from .*a.txt's 4 and 3"):
        read_files(write(tmp_path, "a.txt", "1 4 3\n0 1:1\n"), write(tmp_path, "b.txt", "1 5 3\n0 1:1\n"),
                   format="xmlrepo")
    with pytest.raises(DataFormatError, match=r"n.txt:1: its header's 3 features and 2 labels differ from .*a.txt"):
        read_files(tmp_path / "a.txt", write(tmp_path, "n.txt", "1 3 2\n2 1:1\n"), format="xmlrepo")  # narrower:
        # its row's label 2 is in the training file's range, not in its own header's


def test_an_extreme_classification_file_is_split_by_the_split_files_beside_it(tmp_path):
    """Bibtex_data.txt with bibtex_trSplit.txt and bibtex_tstSplit.txt (1-based rows, a column per
    split): the first column's rows are the parts, in the file's order; the data line says so.
    Without them, or with a test file given, the files are read as before; lists of no data file
    beside them are refused (the file renamed?)."""
    from awe_tf.cli.train import _test_notes
    from awe_tf.data import load_split
    from awe_tf.data.protocols import coverage

    rows = "6 3 2\n0 0:1\n1 1:1\n0 2:1\n1 0:2\n0,1 1:2\n1 2:2\n"
    (tmp_path / "bibtex").mkdir()
    data = write(tmp_path / "bibtex", "Bibtex_data.txt", rows)
    write(tmp_path / "bibtex", "bibtex_trSplit.txt", "5 1\n1 2\n3 3\n6 4\n")
    write(tmp_path / "bibtex", "bibtex_tstSplit.txt", "4 5\n2 6\n")
    given = write(tmp_path, "test.txt", "1 3 2\n1 0:1\n")
    train, test = read_files(data)
    assert train.name == test.name == "Bibtex"  # as the repository names it, without the file's "_data"
    np.testing.assert_array_equal(train.row_ids, [0, 2, 4, 5])
    np.testing.assert_array_equal(test.row_ids, [1, 3])
    np.testing.assert_allclose(test.X.toarray(), [[0, 1, 0], [2, 0, 0]])
    split = load_split(data)
    assert split.test_every == 0 and split.test.n_examples == 2
    assert split.test_rows_file.name == "bibtex_tstSplit.txt"
    assert "the rows bibtex_tstSplit.txt lists in its first column: the data set's own split" in _test_notes(
        coverage(split))
    # another split: the lists' second column (trSplit 1 2 3 4, tstSplit 5 6), asked for by its number
    train, test = read_files(data, split_column=2)
    np.testing.assert_array_equal(train.row_ids, [0, 1, 2, 3])
    np.testing.assert_array_equal(test.row_ids, [4, 5])
    second = load_split(data, split_column=np.int64(2))
    assert second.test_rows_column == 2 and second.test.n_examples == 2
    assert "the rows bibtex_tstSplit.txt lists in its column 2: the data set's own split" in _test_notes(
        coverage(second))
    with pytest.raises(DataFormatError, match=r"bibtex_trSplit.txt:1: this line has 2 columns, so no column 3 \(the "
                                              r"split asked for\): the lists hold a column per split"):
        read_files(data, split_column=3)
    for wrong in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"split_column \(--split-column\) must be a whole number from 1"):
            read_files(data, split_column=wrong)
    with pytest.raises(ValueError, match=r"Bibtex_data.txt: its split files beside it \(bibtex_trSplit.txt, "
                                         r"bibtex_tstSplit.txt\) say it holds its test rows too: drop --test"):
        read_files(data, given)  # training on the whole file would train on the test rows
    alone = write(tmp_path, "Other_data.txt", rows)
    assert read_files(alone)[1] is None and load_split(alone).test_every == 5
    with pytest.raises(ValueError, match=r"Other_data.txt: split_column \(--split-column\) 2 chooses a column of the "
                                         r"split lists beside an Extreme Classification file .*this data has none"):
        read_files(alone, split_column=2)  # no lists: another column would be read as the protocol's split, unsaid
    renamed = write(tmp_path / "bibtex", "bibtex_all.txt", rows)  # lists beside it, of a file no longer there
    data.rename(tmp_path / "Bibtex_data.txt")
    with pytest.raises(DataFormatError, match=r"bibtex_all.txt: it has no split files of its own, but "
                                              r"bibtex_trSplit.txt, bibtex_tstSplit.txt beside it list the rows of a "
                                              r"data file that is not there: if they are this file's, name it "
                                              r"bibtex_data.txt and they split it; to split it by the protocol"):
        read_files(renamed)
    assert read_files(renamed, given)[1].n_examples == 1  # a test file given: the lists are not this split's
    (tmp_path / "Bibtex_data.txt").rename(data)
    assert read_files(renamed)[1] is None and load_split(renamed).test_every == 5  # the lists are Bibtex_data.txt's
    for name, text, message in (
        ("bibtex_tstSplit.txt", "4\n0\n", r"bibtex_tstSplit.txt:2: row number 0 is outside the data file's rows 1..6"),
        ("bibtex_tstSplit.txt", "4\n4\n", r"bibtex_tstSplit.txt:2: row 4 is listed twice in column 1"),
        ("bibtex_tstSplit.txt", "4\n5\n", r"bibtex_tstSplit.txt: row 5 is listed as a test row and, in "
                                           r"bibtex_trSplit.txt, as a training row \(1 in both\)"),
        ("bibtex_tstSplit.txt", "4\nx\n", r"bibtex_tstSplit.txt:2: row number 'x' is not an integer"),
        ("bibtex_tstSplit.txt", "\n", r"bibtex_tstSplit.txt: lists no rows"),
        ("bibtex_tstSplit.txt", "4\n", r"bibtex_tstSplit.txt: row 2 of the data file's 6 is in neither this list nor "
                                       r"bibtex_trSplit.txt \(1 row in neither\): a split's lists cover every row"),
    ):
        write(tmp_path / "bibtex", name, text)
        with pytest.raises(DataFormatError, match=message):
            read_files(data)
    write(tmp_path / "bibtex", "BIBTEX_TRSPLIT.txt", "1\n")
    with pytest.raises(DataFormatError, match=r"bibtex_trSplit.txt: BIBTEX_TRSPLIT.txt beside it lists the training "
                                              r"rows of Bibtex_data.txt too: keep one of the two"):
        read_files(data)
    (tmp_path / "bibtex" / "BIBTEX_TRSPLIT.txt").unlink()
    (tmp_path / "bibtex" / "bibtex_tstSplit.txt").unlink()
    (tmp_path / "bibtex" / "bibtex_tstSplit.txt").mkdir()  # a folder of that name is no list
    with pytest.raises(DataFormatError, match=r"bibtex_trSplit.txt: this lists the training rows of Bibtex_data.txt, "
                                              r"but the file listing its test rows, Bibtex_tstSplit.txt \(in any "
                                              r"letter case\), is not beside it"):
        read_files(data)


def test_a_header_row_naming_the_columns_is_not_an_interaction(tmp_path):
    for header in ("uid\tiid", "user\titem\tweight", "customer\tproduct"):
        data = read_interactions(write(tmp_path, "h.tsv", f"{header}\n10\t2\n9\t11\n10\t11\n"))
        assert list(data.row_ids) == ["9", "10"], header  # integer ids, sorted as numbers (not as text)
        assert data.label_names == ["2", "11"], header
        assert data.X.nnz == 3
        assert data.header == tuple(header.split("\t"))  # kept, for train's data line to show


def test_a_header_naming_the_columns_in_another_order_is_refused_not_read_swapped(tmp_path):
    swapped = write(tmp_path, "swapped.csv", "item,user,rating\n19,1,1\n28,1,1\n19,2,1\n")
    with pytest.raises(DataFormatError, match=r"swapped.csv: its first line names the columns item, user, rating, "
                                              r"but they are read by position, the user's id first, then the item's, "
                                              r"then the weight; put them in that order: awk -F, -v OFS=, "):
        read_interactions(swapped)
    with pytest.raises(DataFormatError, match=r"the user's id first, then the item's; put them in that order: awk "
                                              r"-F'\\t' -v OFS='\\t' '\{t = \$1; \$1 = \$2; \$2 = t; print\}' s.tsv > "
                                              r"s-user-first.tsv"):
        read_interactions(write(tmp_path, "s.tsv", "movieId\tuserId\n19\t1\n"))
    with pytest.raises(DataFormatError, match=r"names the columns user, weight, item, .* put them in that order$"):
        read_interactions(write(tmp_path, "w.csv", "user,weight,item\n1,2,19\n"))
    assert read_interactions(write(tmp_path, "ok.csv", "userId,movieId,rating\n1,19,1\n")).label_names == ["19"]
    with pytest.raises(DataFormatError, match=r"names the columns item, but they are read by position"):
        read_interactions(write(tmp_path, "one.csv", "item\n1,2\n"), header=True)


def test_a_first_line_whose_user_and_item_are_in_no_other_line_is_noted(tmp_path):
    rows = "".join(f"u{u},i{i}\n" for u in range(4) for i in range(3))  # 12 interactions
    misspelt = read_interactions(write(tmp_path, "m.csv", "usr,itme\n" + rows))
    assert "usr" in list(misspelt.row_ids)  # text ids below: a header of other words cannot be told
    assert misspelt.notes == ("the first line, usr, itme, read as an interaction, of a user and an item in no other "
                              "line: if it names the columns, --header yes (header=True) skips it",)
    assert read_interactions(write(tmp_path, "m.csv", "usr,itme\n" + rows), header=False).notes == ()  # as told
    assert read_interactions(write(tmp_path, "p.csv", rows)).notes == ()
    few = "".join(rows.splitlines(keepends=True)[:5])
    assert read_interactions(write(tmp_path, "s.csv", "usr,itme\n" + few)).notes == ()  # a few lines: said not
    numbers = "".join(f"{u},{i}\n" for u in range(4) for i in range(3))
    assert read_interactions(write(tmp_path, "n.csv", "100,200\n" + numbers)).notes == ()  # no header looks so


def test_a_file_of_another_separator_or_trailing_ones_says_what_to_do_and_a_sep_line_is_read_as_one(tmp_path):
    cases = {"t.csv": ("user\titem\nu1\ti1\n", "(the line holds tabs: a tab-separated file? name it .tsv"),
             "s.csv": ("u1,i1\nu2;i2\n", "s.csv:2: expected 2 to 3 fields separated by ',', got 1 (the line holds "
                                         "semicolons: awe-tf reads a .csv's fields at commas and other files' at tabs: "
                                         "tr ';,' ',.' < s.csv > s-commas.csv)"),
             "d.csv": ("u1;i1;4,5\nu2;i2;3,5\n", "d.csv: its first line's first field, 'u1;i1;4', holds semicolons, "
                                               "as do the next lines', but a .csv's fields are read at its commas: a "
                                               "file separated by semicolons (with decimal commas?) becomes one of "
                                               "commas with tr ';,' ',.' < d.csv > d-commas.csv"),
             "c.tsv": ("u1,i1\nu2,i2\n", "(the line holds commas: awe-tf reads a .csv's fields at commas and other "
                                         "files' at tabs: name it .csv: mv c.tsv c.csv)"),
             "e.csv": ("u1,i1,\nu2,i2,\n", "e.csv:1: empty weight (does every line end with ','? user and item "
                                          "alone take none after them)"),
             "f.csv": ("u1,i1,2,\nu2,i2,1,\n", "f.csv:1: expected 2 to 3 fields separated by ',', got 4 (the last "
                                               "empty: does every line end with ','? keep the first three columns: "
                                               "cut -d, -f1-3 f.csv > f-3cols.csv)"),
             "w.csv": ("u1,i1,1\nu2,i2,1e-50\n",
                       "w.csv:2: weight 1e-50 is below float32's smallest normal number, 1.18e-38")}
    for name, (text, words) in cases.items():
        with pytest.raises(DataFormatError) as raised:
            read_interactions(write(tmp_path, name, text))
        assert words in str(raised.value), str(raised.value)
    assert read_interactions(write(tmp_path, "a.csv", "a;b,i1\nu2,i2\n")).row_ids.tolist() == ["a;b", "u2"]  # an id
    excel = read_interactions(write(tmp_path, "x.csv", "sep=,\nuser,item\nu1,i1\nu2,i2\n"))
    assert excel.label_names == ["i1", "i2"] and excel.header == ("user", "item")


def test_a_first_line_is_a_header_by_its_words_or_ids_unless_told(tmp_path):
    """Told from the line: an id that is not an integer (``-17`` is one) above one that is makes
    a header, whichever column it is in; that cannot tell a first user whose id alone is text
    from a header, so ``header=`` says which, and the header read is kept (train shows it)."""
    cases = {("account\tarticle", "9f3a\t10"): ["8", "10"], ("session\tsku", "-17\t10"): ["8", "10"],
             ("anon\ta", "1\tb"): ["8", "b"]}  # integer items in numeric order, as if the header were not there
    for (first, second), items in cases.items():
        text = f"{first}\n{second}\n2\t8\n"
        told = read_interactions(write(tmp_path, "d.tsv", text))
        assert told.header == tuple(first.split("\t")) and told.X.nnz == 2, first
        assert told.label_names == items, first
        data = read_interactions(write(tmp_path, "d.tsv", text), header=False)
        assert data.header is None and first.split("\t")[0] in list(data.row_ids) and data.X.nnz == 3, first
    skipped = read_interactions(write(tmp_path, "e.tsv", "1\t2\n3\t4\n3\t5\n"), header=True)
    assert skipped.header == ("1", "2") and list(skipped.row_ids) == ["3"]


def test_tab_separated_ids_keep_their_quotes(tmp_path):
    """Tab-separated files are split at the tabs as they are: a quote is part of an id there."""
    data = read_interactions(write(tmp_path, "q.tsv", 'u1\t"Weird" Al\nu1\t"abc\nu2\tabc\n'))
    assert data.label_names == ['"Weird" Al', '"abc', "abc"]


def test_csv_fields_may_be_quoted(tmp_path):
    """Quotes are CSV's: dropped from the id (``"u1"`` and ``u1`` are one user), and a quoted
    field may hold the separator."""
    data = read_interactions(write(tmp_path, "q.csv", '"u1","a",1\nu1,c,1\nu2,"Lord of the Rings, The",2\n'))
    assert sorted(data.row_ids) == ["u1", "u2"]
    assert data.label_names == ["Lord of the Rings, The", "a", "c"]
    np.testing.assert_array_equal(data.X.toarray(), [[0, 1, 1], [2, 0, 0]])
    with pytest.raises(DataFormatError, match=r"bad.csv:2: malformed quoting"):
        read_interactions(write(tmp_path, "bad.csv", 'u1,a\nu2,"b\n'))
    spaced = read_interactions(write(tmp_path, "s.csv", 'u1,"Heat, The" ,2\nu2,"a"  ,1\n'), header=False)  # as unquoted
    assert spaced.label_names == ["Heat, The", "a"] and spaced.X.toarray().tolist() == [[2, 0], [0, 1]]
    with pytest.raises(DataFormatError, match=r"bad2.csv:1: malformed quoting"):  # text after a closing quote
        read_interactions(write(tmp_path, "bad2.csv", 'u1,"a"b\n'))


def test_ids_equal_as_integers_have_one_order_whatever_the_set_gives():
    """``50`` and ``050`` are two ids; ordered by value alone they came out in the order a set
    iterated them, which changes with the process's hash seed (a model's label ids then named
    other items in the next process)."""
    from awe_tf.data.interactions import _sort_key

    assert _sort_key(["50", "050", "7"]) == _sort_key(["050", "7", "50"]) == ["7", "050", "50"]


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.arff"
    path.write_bytes(b"\xef\xbb\xbf" + DENSE.encode("utf-8"))
    data = read_mulan(path, write(tmp_path, "l.xml", XML))
    assert data.n_examples == 3 and data.feature_names == ["f1", "f two"]
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbfu1\ti1\nu2\ti2\n")
    assert list(read_interactions(path).row_ids) == ["u1", "u2"]


def test_one_duplicate_policy_for_every_reader(tmp_path):
    """An entry given twice is an error naming both lines in every format; duplicates="sum"
    adds the values up (a label, an implicit positive, or a MovieLens input, stays one)."""
    cases = {
        "mulan": (write(tmp_path, "d.arff", SPARSE.replace("{1 1,4 1}", "{1 1,4 1,1 1}")), "l.xml"),
        "xmlrepo": (write(tmp_path, "d.txt", "2 3 2\n0 0:1 0:2\n1,1 1:1\n"), None),
        "interactions": (write(tmp_path, "d.tsv", "u1\ti1\t1\nu2\ti2\t1\nu1\ti1\t2\n"), None),
        "movielens": (write(tmp_path, "u.data", "1\t1\t5\t0\n2\t2\t3\t0\n1\t1\t4\t9\n"), None),
    }
    write(tmp_path, "l.xml", XML)
    for fmt, (path, labels) in cases.items():
        labels = tmp_path / labels if labels else None
        with pytest.raises(DataFormatError, match="given twice"):
            read_files(path, labels=labels, format=fmt)
        data, _ = read_files(path, labels=labels, format=fmt, duplicates="sum")
        # a rating given twice is one interaction: MovieLens' inputs are 1s, whatever the file's values
        assert (data.X.max() == 1 if fmt == "movielens" else data.X.max() >= 2) and data.Y.max() == 1, fmt
    # the error says what --duplicates sum would do with the entry: a label or a rating counts once
    arff_label = SPARSE.replace("{1 1,4 1}", "{1 1,4 1,4 1}")  # the label sea twice
    for path, fmt, what in ((write(tmp_path, "l.txt", "1 3 2\n0,1,0 0:1\n"), "xmlrepo", "read a repeated label once"),
                            (write(tmp_path, "l.arff", arff_label), "mulan", "read a repeated label once"),
                            (cases["mulan"][0], "mulan", "add repeated entries up"),
                            (cases["movielens"][0], "movielens", "read a repeated rating as one interaction"),
                            (cases["interactions"][0], "interactions", "add repeated entries up")):
        with pytest.raises(DataFormatError, match=f"--duplicates sum\\) to {what}$"):
            read_files(path, format=fmt, labels=tmp_path / "l.xml" if fmt == "mulan" else None)
    with pytest.raises(ValueError, match="duplicates must be one of"):
        read_files(cases["xmlrepo"][0], format="xmlrepo", duplicates="keep")


def test_nominal_features_of_words_or_categories_become_one_column_per_value_but_the_first(tmp_path):
    """genbase's shape: an identifier and motifs declared {NO,YES}, and a category of numbers
    ({0,1,2}): one 0/1 column per value but the first (named attribute=value), from the header,
    so the test file reads into the same columns; {0,1} and numeric features are read as before."""
    header = """@relation g
@attribute protein {P1,P2,P3}
@attribute m1 {NO,YES}
@attribute m2 {YES,NO}
@attribute size {0,1,2}
@attribute w {0,1}
@attribute x numeric
@attribute sky {0,1}
@attribute sea {0,1}
@data
"""
    train = write(tmp_path, "train.arff", header + "P1,NO,YES,2,1,0.5,1,0\nP2,YES,NO,0,0,1.5,0,1\n")
    test = write(tmp_path, "test.arff", header + "P3,YES,YES,1,1,2,1,1\n")
    first, second = read_files(train, test, write(tmp_path, "l.xml", XML))
    assert first.feature_names == second.feature_names == [
        "protein=P2", "protein=P3", "m1=YES", "m2=NO", "size=1", "size=2", "w", "x"]
    np.testing.assert_array_equal(first.X.toarray(), [[0, 0, 0, 0, 0, 1, 1, 0.5], [1, 0, 1, 1, 0, 0, 0, 1.5]])
    np.testing.assert_array_equal(second.X.toarray(), [[0, 1, 1, 0, 1, 0, 1, 2]])
    assert first.numeric_features.tolist() == [False] * 7 + [True]


def test_a_sparse_row_leaves_out_a_nominal_attributes_first_value_as_weka_writes_it(tmp_path):
    """Weka's sparse rows omit each attribute's first value: for {1,0} that is 1, so a label
    declared {1,0} is positive where a row leaves it out, and 0 where the row says 0."""
    text = SPARSE.replace("@attribute sea {0,1}", "@attribute sea {1,0}").split("@data")[0] + \
        "@data\n{0 1,2 1,3 1,4 0}\n{1 1}\n{}\n"
    data = read_mulan(write(tmp_path, "weka.arff", text), write(tmp_path, "l.xml", XML))
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [0, 1], [0, 1]])


def test_comments_after_values_and_a_nominal_type_without_a_space_are_read(tmp_path):
    text = DENSE.replace("@attribute sky {0,1}", "@attribute sky{0,1} % the sky") \
        .replace("1.5,2,1,0", "1.5,2,1,0 % first row").replace("@attribute f1 numeric", "@attribute '%f' numeric")
    data = read_mulan(write(tmp_path, "c.arff", text), write(tmp_path, "l.xml", XML))
    assert data.feature_names == ["%f", "f two"]
    np.testing.assert_array_equal(data.Y.toarray(), [[1, 0], [0, 1], [1, 1]])


def test_quoted_category_values_may_hold_commas_and_spaces_in_any_row_form(tmp_path):
    """A category's quoted values keep their commas and spaces in the header's list, in dense
    rows and in sparse ones (Weka writes '{0 'San Francisco'}'), with CRLF line ends."""
    header = ("@relation q\r\n@attribute city {'New York','San Francisco','x,y'}\r\n@attribute sky {0,1}\r\n"
              "@attribute sea {0,1}\r\n@data\r\n")
    dense = read_mulan(write(tmp_path, "d.arff", header + "'x,y',1,0\r\n'New York',0,1\r\n"),
                       write(tmp_path, "l.xml", XML))
    sparse = read_mulan(write(tmp_path, "s.arff", header + "{0 'x,y',1 1}\r\n{2 1}\r\n{0 'San Francisco'}\r\n"),
                        write(tmp_path, "l.xml", XML))
    assert dense.feature_names == sparse.feature_names == ["city=San Francisco", "city=x,y"]
    np.testing.assert_array_equal(dense.X.toarray(), [[0, 1], [0, 0]])
    np.testing.assert_array_equal(sparse.X.toarray(), [[0, 1], [0, 0], [1, 0]])
    old_mac = read_mulan(write(tmp_path, "cr.arff", (header + "'x,y',1,0\r\n'New York',0,1\r\n").replace("\r\n", "\r")),
                         write(tmp_path, "l.xml", XML))  # lines ended by CR alone: read as CRLF's are
    assert old_mac.feature_names == dense.feature_names
    np.testing.assert_array_equal(old_mac.X.toarray(), dense.X.toarray())
    np.testing.assert_array_equal(old_mac.Y.toarray(), dense.Y.toarray())
    with pytest.raises(DataFormatError, match=r"row has 4 values but there are 3 attributes \(the last, \{2\}, is "
                                              "a Weka instance weight, which is not read"):
        read_mulan(write(tmp_path, "w.arff", header + "'x,y',1,0,{2}\r\n"), write(tmp_path, "l.xml", XML))


def test_names_that_print_alike_are_said_to_differ_in_form_or_case(tmp_path):
    """A label the XML spells as an ARFF attribute in another Unicode form (an accent composed or
    combining) or letter case: the refusal says what differs, where both print alike."""
    import unicodedata

    composed, combining = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    for listed, spelt, said in ((composed, combining, "in another Unicode form"),
                                ("sky", "Sky", "differ in letter case only")):
        with pytest.raises(DataFormatError, match=f"the ARFF has '{spelt}' for '{listed}'; the two .*{said}"):
            read_mulan(write(tmp_path, "a.arff", DENSE.replace("sky", spelt)),
                       write(tmp_path, "l.xml", XML.replace('"sky"', f'"{listed}"')))


def test_an_attribute_named_as_a_categorys_column_is_refused(tmp_path):
    """A category's columns are named attribute=value: an attribute of one of those names would
    make two features of one name, which a check or a request by name cannot tell apart."""
    text = ("@relation c\n@attribute genre {rock,pop}\n@attribute 'genre=pop' numeric\n@attribute sky {0,1}\n"
            "@attribute sea {0,1}\n@data\npop,1.5,1,0\nrock,2,0,1\n")
    with pytest.raises(DataFormatError, match="two features named 'genre=pop': a category's column"):
        read_mulan(write(tmp_path, "c.arff", text), write(tmp_path, "l.xml", XML))


def test_a_category_given_twice_in_a_sparse_row_is_refused_even_when_entries_add_up(tmp_path):
    text = ("@relation c\n@attribute m {NO,YES}\n@attribute w {0,1}\n@attribute sky {0,1}\n@attribute sea {0,1}\n"
            "@data\n{0 YES,1 1,1 1,2 1}\n{0 YES,0 YES,3 1}\n")
    with pytest.raises(DataFormatError, match="'m' .index 0. is given twice in this row: a category's values") as err:
        read_mulan(write(tmp_path, "c.arff", text), write(tmp_path, "l.xml", XML), duplicates="sum")
    assert "c.arff:8" in str(err.value)  # the word given twice on line 7 adds up


def test_a_category_value_only_the_test_file_holds_is_a_feature_no_training_row_trains(tmp_path):
    from awe_tf.data.protocols import annotation_split, coverage

    header = ("@relation g\n@attribute m {A,B,C}\n@attribute x numeric\n@attribute sky {0,1}\n"
              "@attribute sea {0,1}\n@data\n")
    train = write(tmp_path, "train.arff", header + "".join(f"{'AB'[i % 2]},{i},{i % 2},{(i + 1) % 2}\n"
                                                          for i in range(10)))
    test = write(tmp_path, "test.arff", header + "C,1,1,0\nB,2,0,1\nC,3,1,1\n")
    counts = coverage(annotation_split(*read_files(train, test, write(tmp_path, "l.xml", XML))))
    assert counts.untrained_features == 1 and counts.test_values_of_untrained_features == 2  # m=C, in 2 test rows


def test_rows_without_the_label_attributes_read_as_unlabelled_rows(tmp_path):
    """Rows to rank may leave out every label attribute (``unlabelled=True``): the same features
    as the labelled file's, no label; leaving out only some is still refused."""
    labelled = read_mulan(write(tmp_path, "toy.arff", DENSE), write(tmp_path, "l.xml", XML))
    bare = DENSE.replace("@attribute sky {0,1}\n@attribute sea {0,1}\n", "").replace(",1,0\n", "\n") \
        .replace(",0,1\n", "\n").replace(",1,1\n", "\n")
    rows = read_mulan(write(tmp_path, "bare.arff", bare), tmp_path / "l.xml", unlabelled=True)
    assert rows.feature_names == labelled.feature_names and rows.label_names == labelled.label_names
    assert (rows.X != labelled.X).nnz == 0 and rows.Y.shape == (3, 2) and rows.Y.nnz == 0
    with pytest.raises(DataFormatError, match="not among the attributes"):
        read_mulan(write(tmp_path, "bare.arff", bare), tmp_path / "l.xml")
    half = DENSE.replace("@attribute sea {0,1}\n", "").replace(",1,0\n", ",1\n").replace(",0,1\n", ",0\n") \
        .replace(",1,1\n", ",1\n")
    with pytest.raises(DataFormatError, match="1 label"):
        read_mulan(write(tmp_path, "half.arff", half), tmp_path / "l.xml", unlabelled=True)
    unknown = DENSE.replace(",1,0\n", ",?,?\n")  # labels unknown, as Weka writes them: absent, in rows to rank
    rows = read_mulan(write(tmp_path, "unknown.arff", unknown), tmp_path / "l.xml", unlabelled=True)
    assert (rows.X != labelled.X).nnz == 0 and rows.Y[0].nnz == 0 and (rows.Y[1:] != labelled.Y[1:]).nnz == 0
    with pytest.raises(DataFormatError, match="missing value '.' for attribute 'sky'.*a measurement: the column's "
                                              "training mean"):
        read_mulan(write(tmp_path, "unknown.arff", unknown), tmp_path / "l.xml")  # training data: every value


def test_a_label_left_out_of_the_label_list_is_noted(tmp_path):
    """An attribute of 0 and 1 right after the listed labels, where features that are not 0 and 1
    come first (the last label left out of the list), or between two listed labels, is read as a
    feature, and the data set says so; with the full list, with labels first (a MEKA layout), or
    on bag-of-words data whose every feature is 0 and 1, nothing is said."""
    header = ("@relation t\n@attribute f1 numeric\n@attribute f2 numeric\n@attribute sky {0,1}\n"
              "@attribute sea {0,1}\n@attribute sand {0,1}\n@data\n1.5,2,1,0,1\n-1,0,0,1,0\n")
    path = write(tmp_path, "t.arff", header)
    data = read_mulan(path, write(tmp_path, "l.xml", XML))
    assert data.notes == ("'sand': {0,1}, placed with the listed labels (between or right after them) but not in "
                          "l.xml, read as a feature: a label left out of the list?",) and "sand" in data.feature_names
    full = XML.replace("</labels>", '<label name="sand"></label>\n</labels>')
    assert read_mulan(path, write(tmp_path, "full.xml", full)).notes == ()
    ends = write(tmp_path, "ends.xml", XML.replace('"sea"', '"sand"'))  # sky and sand: sea between them
    assert read_mulan(path, ends).notes[0].startswith("'sea': {0,1}, placed with")
    words = header.replace("f1 numeric", "f1 {0,1}").replace("f2 numeric", "f2 {0,1}").replace("1.5,2,", "1,1,") \
        .replace("-1,0,", "0,0,")
    assert read_mulan(write(tmp_path, "w.arff", words), tmp_path / "l.xml").notes == ()
    first = ("@relation t\n@attribute sky {0,1}\n@attribute sea {0,1}\n@attribute w1 {0,1}\n@attribute w2 numeric\n"
             "@data\n1,0,1,2\n0,1,0,3\n")
    assert read_mulan(write(tmp_path, "first.arff", first), tmp_path / "l.xml").notes == ()


def test_a_test_file_holding_training_rows_is_counted_on_the_data_line(tmp_path):
    """A test file some of whose labelled rows are training rows (inputs and labels alike), not in
    the same order nor all of them (an exact copy is refused): train's data line counts them, as
    evaluate notes them for a run; the protocol's own draw of one file is not checked."""
    from awe_tf.cli.train import _test_notes
    from awe_tf.data import load_split
    from awe_tf.data.protocols import coverage

    rows = [f"{i % 3} 0:{i}.5 1:{i % 4}" for i in range(20)]
    train = write(tmp_path, "train.txt", "20 2 3\n" + "\n".join(rows) + "\n")
    test = write(tmp_path, "test.txt", "5 2 3\n" + "\n".join([rows[7], rows[2], "0 0:99 1:1", rows[11], "1"]) + "\n")
    counts = coverage(load_split(train, test))
    assert counts.test_rows_trained_on == (3, 5)  # rows 7, 2 and 11; "1", labelled with no feature, is none
    assert "3 of its 5 labelled rows are training rows, inputs and labels alike: their scores measure what the " \
           "model remembers" in _test_notes(counts)
    assert coverage(load_split(train)).test_rows_trained_on == (0, 0)  # every fifth row: not a file's


def test_a_test_file_with_a_label_the_list_lacks_says_so(tmp_path):
    wider = DENSE.replace("@attribute sea {0,1}\n", "@attribute sea {0,1}\n@attribute land {0,1}\n")
    for row in ("1.5,2,1,0", "-1,0,0,1", "0.5,4,1,1"):
        wider = wider.replace(row + "\n", row + ",1\n")
    with pytest.raises(DataFormatError, match=r"the first not in training is 'land' \(feature 2\) \(if 'land' is a "
                                              r"label, it is not in l.xml, which lists the labels: add it there"):
        read_files(write(tmp_path, "d.arff", DENSE), write(tmp_path, "t.arff", wider),
                   labels=write(tmp_path, "l.xml", XML))


def _mulan_download(folder, *names):
    """A folder as a Mulan download lays one out: its ARFF file(s) and label list."""
    folder.mkdir(parents=True)
    for name in names:
        held_out = DENSE.replace("1.5,2,1,0", "2.5,1,0,1")  # a test file of rows of its own
        write(folder, name, XML if name.endswith(".xml") else held_out if "-test" in name else DENSE)
    return folder


@pytest.mark.parametrize("under", ["mulan/toyset", "toyset"])
def test_a_mulan_folder_in_the_data_dir_is_a_data_set_by_its_name(tmp_path, monkeypatch, capsys, under):
    """A Mulan download put into AWE_DATA_DIR (mulan/NAME/ or NAME/) is read by its folder's name,
    as its files are, and listed; the named sets keep their own entries."""
    from awe_tf import cli
    from awe_tf.data import list_datasets, load_dataset, load_split
    from awe_tf.data.registry import layout
    from awe_tf.runs import read_record

    folder = _mulan_download(tmp_path / under, "toyset-train.arff", "toyset-test.arff", "toyset.xml")
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path))
    assert layout("toyset") == (under, "toyset-train.arff", "toyset-test.arff", "toyset.xml", "mulan")
    by_name = load_dataset("toyset")
    by_files = load_split(folder / "toyset-train.arff", folder / "toyset-test.arff", folder / "toyset.xml")
    assert by_name.train.n_examples == by_files.train.n_examples == 3
    assert (by_name.train.X != by_files.train.X).nnz == 0 and (by_name.test.Y != by_files.test.Y).nnz == 0
    entry = next(e for e in list_datasets() if e["name"] == "toyset")
    assert entry["path"] == str(folder) and entry["split"] == "given train/test files"
    assert cli.main(["datasets"]) == 0 and str(folder) in capsys.readouterr().out
    assert read_record({"dataset": "toyset"}, tmp_path / "metrics.json").dataset == "toyset"  # a run of it re-reads it


def test_a_named_set_is_read_from_a_mulan_download_of_its_name_where_its_own_folder_is_not(tmp_path, monkeypatch):
    """emotions/ at the top of AWE_DATA_DIR (a Mulan zip unpacked there, not under mulan/) is the
    named set's folder; a Mac's ._ copies beside the files are not more files; hidden, unreadable
    and MovieLens folders are not listed."""
    from awe_tf.data import list_datasets
    from awe_tf.data.registry import KNOWN, layout, locate

    _mulan_download(tmp_path / "emotions", "emotions-train.arff", "emotions-test.arff", "emotions.xml",
                    "._emotions-train.arff", "._emotions.xml")
    _mulan_download(tmp_path / ".cache", "c.arff", "c.xml")
    _mulan_download(tmp_path / "locked", "l.arff", "l.xml")
    (tmp_path / "ml-1m").mkdir()
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path))
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert layout("emotions") == ("emotions", "emotions-train.arff", "emotions-test.arff", "emotions.xml", "mulan")
    listed = {entry["name"]: entry["path"] for entry in list_datasets()}
    assert listed["emotions"] == str(tmp_path / "emotions") and listed["scene"] is None
    assert not {".cache", "locked", "ml-1m"} & set(listed)
    with pytest.raises(ValueError, match="cannot be read"):
        layout("locked")
    with pytest.raises(ValueError, match="holds no .arff file, so it is no Mulan download: give a data file"):
        layout("ml-1m")
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path / "nowhere"))
    assert layout("emotions") == KNOWN["emotions"]  # where nothing of its name is, its own layout (locate says so)
    (tmp_path / "nowhere" / "mulan" / "scene").mkdir(parents=True)  # a download not unpacked yet
    assert layout("scene") == KNOWN["scene"] and len(list_datasets()) == len(KNOWN)
    with pytest.raises(FileNotFoundError, match="holds no mulan/scene/scene-train.arff"):
        locate("scene")


def test_a_single_arff_in_a_mulan_folder_is_split_by_the_protocol(tmp_path, monkeypatch):
    from awe_tf.data import list_datasets
    from awe_tf.data.registry import layout, read_dataset

    _mulan_download(tmp_path / "mulan" / "whole", "whole.arff", "whole.xml")
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path))
    assert layout("whole")[1:3] == ("whole.arff", None)
    train, test = read_dataset("whole")
    assert train.n_examples == 3 and test is None
    assert next(e for e in list_datasets() if e["name"] == "whole")["split"] == "protocol split"


@pytest.mark.parametrize("names, said", [
    (["a-train.arff", "a-test.arff"], "no .xml label list"),
    (["a-train.arff", "a-test.arff", "a.xml", "b.xml"], "a.xml, b.xml"),
    (["a-train.arff", "a-train-sparse.arff", "a-test.arff", "a.xml"], "neither one training and one test file"),
    (["a.arff", "b.arff", "a.xml"], "neither one training and one test file"),
])
def test_a_folder_that_is_no_mulan_data_set_is_refused_by_name(tmp_path, monkeypatch, names, said):
    """A folder of the name whose files do not say which is which is refused, naming what it holds
    and the flags that name the files; it is not listed, and a run recording the name cannot re-read it."""
    from awe_tf.data import list_datasets, load_dataset
    from awe_tf.runs import RunError, read_record

    _mulan_download(tmp_path / "mulan" / "odd", *names)
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=re.escape(said)) as refused:
        load_dataset("odd")
    assert "--train FILE.arff [--test FILE.arff] --labels FILE.xml" in str(refused.value)
    assert "odd" not in [e["name"] for e in list_datasets()]
    with pytest.raises(RunError, match="'odd', which is not found now .*: give its files with --train"):
        read_record({"dataset": "odd"}, tmp_path / "metrics.json")


def test_a_name_found_nowhere_says_where_data_sets_are_looked_for(tmp_path, monkeypatch):
    from awe_tf.data import load_dataset

    monkeypatch.delenv("AWE_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="set AWE_DATA_DIR to the folder"):
        load_dataset("bibtex")
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=r"unknown data set 'bibtex'; known: corel5k, .*found by its folder's name"):
        load_dataset("bibtex")
    with pytest.raises(ValueError, match="a data file is read with --train FILE"):
        load_dataset("../bibtex")


def test_mulan_folders_as_downloads_come_train_and_test_by_word_nested_and_named_otherwise(tmp_path, monkeypatch,
                                                                                           capsys):
    """train.arff / test.arff are a split as bibtex-train.arff is; an archive unpacked one folder too
    deep is named with where its files are; a named set's folder spelt otherwise (Mulan's CAL500/)
    is suggested by name; `datasets` says why a folder of ARFF files is no data set."""
    from awe_tf import cli
    from awe_tf.data.registry import layout, locate

    _mulan_download(tmp_path / "plain", "train.arff", "test.arff", "plain.xml")
    _mulan_download(tmp_path / "deep" / "deep", "deep-train.arff", "deep-test.arff", "deep.xml")
    _mulan_download(tmp_path / "CAL500", "CAL500.arff", "CAL500.xml")
    monkeypatch.setenv("AWE_DATA_DIR", str(tmp_path))
    assert layout("plain")[1:4] == ("train.arff", "test.arff", "plain.xml")
    with pytest.raises(ValueError, match=r"deep holds no .arff file, but a folder in it does \(deep-test.arff, "):
        layout("deep")
    with pytest.raises(FileNotFoundError, match=r"its folder CAL500/ is named otherwise: --dataset CAL500"):
        locate("cal500")
    assert layout("CAL500")[1:3] == ("CAL500.arff", None)
    assert cli.main(["datasets"]) == 0
    assert "not a data set: deep: " in capsys.readouterr().out
