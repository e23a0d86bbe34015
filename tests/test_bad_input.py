"""Every bad input stops with one line naming the file, line, field, flag or request field, exit
code 2, no traceback, and nothing written. One table of command lines, one of serving requests:
a new case is one line."""

import shutil

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from awe_tf import cli, serving
from awe_tf.models import AWEModel

ARFF = """@relation t
@attribute f1 numeric
@attribute f2 numeric
@attribute a {0,1}
@attribute b {0,1}
@data
"""
LABELS = '<labels xmlns="http://mulan.sourceforge.net/labels"><label name="a"/><label name="b"/></labels>'
SIGNED = ARFF.replace("@attribute a {0,1}", "@attribute a numeric") + "".join(
    f"{i}.5,{i % 3},{1 if i % 2 else -1},{i % 2}\n" for i in range(12))
SPARSE_TWICE = """@relation t
@attribute w1 {0,1}
@attribute w2 {0,1}
@attribute a {0,1}
@attribute b {0,1}
@data
{0 1,2 1}
{0 1,1 1,0 1,3 1}
"""

FILES = {  # name -> content (bytes or text) written under tmp_path
    "signed.arff": SIGNED,
    "labels.xml": LABELS,
    "twice.arff": SPARSE_TWICE,
    "clicks.tsv": "u1\ti1\t1\nu2\ti2\t1\nu1\ti1\t2\n",
    "huge.tsv": "u1\ti1\t1e39\nu2\ti2\t1\n",
    "stamped.csv": "user,item,ts\nu1,i1,881250949\nu2,i2,891717742\n",  # a log's time, not a weight
    "stamped.tsv": "u1\ti1\t881250949\nu2\ti2\t891717742\n",  # the same without a header
    "twice.txt": "2 3 2\n0 0:1 0:2\n1 1:1\n",
    "nolabels.txt": "1 3 0\n0:1\n",
    "ratings.csv": "u1,a,5,881250949\nu2,b,3,891717742\n",  # MovieLens' columns, the user's own text ids
    "blank.txt": "3 3 2\n0 0:1\n\n1 1:1\n",
    "emptylabel.txt": "2 3 2\n0,,1 0:1\n1 1:1\n",
    "binary.tsv": b"\x00\x01\x02PK\x03\x04",
    "latin1.tsv": "u1\ti1\t1\nJos\xe9\ti2\t1\n".encode("latin-1"),
    "utf16.tsv": "u1\ti1\t1\n".encode("utf-16"),
    "a_file": "not a directory",
    "few.tsv": "".join(f"u{u}\ti{i}\n" for u in range(30) for i in range(8)),  # 8 items a user: no validation items
    "five.tsv": "".join(f"u{u}\ti{(u + i) % 9}\n" for u in range(30) for i in range(5)),  # all 5 held out: no training
    "labelled.arff": ARFF + "".join(f"{i}.5,{i % 3},{i % 2},{(i + 1) % 2}\n" for i in range(12)),
    "unlabelled.arff": ARFF + "".join(f"{i}.5,{i % 3},0,0\n" for i in range(12)),  # no positive label
    "labelled_copy.arff": ARFF + "".join(f"{i}.5,{i % 3},{i % 2},{(i + 1) % 2}\n" for i in range(12)),
    "sparse.tsv": "".join(f"u{u}\ti{(u + i) % 20}\n" for u in range(30) for i in range(7)),  # 2 a user train
    "short.tsv": "".join(f"u{u}\ti{(u + i) % 9}\n" for u in range(30) for i in range(4)),  # 4 a user: none tested
    "one_label.txt": "3 2 1\n0 0:1\n0 1:1\n0 0:1 1:1\n",
    "clicks.txt": "u1\ti1\nu2\ti2\n",  # the user's own pairs, named like Extreme Classification text
    "words.arff": ARFF.replace("@attribute a {0,1}", "@attribute a {NO,YES}") + "1.5,2,YES,0\n",
    "twice_named.arff": ARFF.replace("@attribute f2 numeric", "@attribute b numeric") + "1.5,2,1,0\n",
    "meka.arff": "@relation 'meka: -C 2'\n" + ARFF.split("\n", 1)[1] + "1.5,2,1,0\n",
    "missing.arff": ARFF + "1.5,?,1,0\n",
    "swapped.arff": ARFF.replace("f1", "fx") + "1.5,2,1,0\n",
}

ON_FILES = ["--epochs", "1", "--no-validate", "--no-baselines", "--dimension", "4", "--negatives", "2"]
SMALL = ["--epochs", "2", "--dimension", "8", "--negatives", "5", "--no-baselines", "--verbose", "0"]

# (case id, command line with {dir} for the test's folder, words the one-line message must contain)
CASES = [
    ("xmlrepo header count of 0", ["train", "--train", "{dir}/nolabels.txt", *ON_FILES],
     ["nolabels.txt:1", "must be at least 1"]),
    ("xmlrepo blank line", ["train", "--train", "{dir}/blank.txt", *ON_FILES],
     ["blank.txt:1", "header says 3 examples but the file has 2", "blank lines, which are no row: 3"]),
    ("xmlrepo empty label", ["train", "--train", "{dir}/emptylabel.txt", *ON_FILES],
     ["emptylabel.txt:2", "empty label in the list '0,,1'"]),
    ("--header for xmlrepo", ["train", "--train", "{dir}/twice.txt", "--header", "no", *ON_FILES],
     ["--header) is for interactions files"]),
    ("--header without files", ["train", "--header", "yes", *ON_FILES], ["--header go with --train"]),
    ("--labels for xmlrepo", ["train", "--train", "{dir}/twice.txt", "--labels", "{dir}/labels.xml", *ON_FILES],
     ["a label list (--labels) is for Mulan data", "xmlrepo files number their labels themselves (l0, l1",
      "!--format mulan"]),
    ("--format xmlrepo for an ARFF file", ["train", "--train", "{dir}/labelled.arff", "--labels", "{dir}/labels.xml",
                                           "--format", "xmlrepo", *ON_FILES],
     ["labelled.arff: a label list (--labels) is for Mulan data",
      "its .arff name says Mulan ARFF: give --format mulan"]),
    ("evaluate another model's export", ["evaluate", "{dir}/model", "--served", "{dir}/exports/other"],
     ["was exported from another model than", "their U and V differ"]),
    ("evaluate another data's export", ["evaluate", "{dir}/model", "--served", "{dir}/exports/named"],
     ["was exported from another model than", "!other labels"]),  # the export named, not the data
    ("own ratings named like MovieLens'", ["train", "--train", "{dir}/ratings.csv", *ON_FILES],
     ["ratings.csv:1", "user and movie ids must be integers", "read as MovieLens by its name",
      "--format interactions"]),
    ("own pairs named like xmlrepo text", ["train", "--train", "{dir}/clicks.txt", *ON_FILES],
     ["clicks.txt:1", "the first line must be the header 'N F L'",
      "read as Extreme Classification text by its .txt name", "--format interactions"]),
    ("one label", ["train", "--train", "{dir}/one_label.txt", "--affinity", "auto", *SMALL],
     ["one_label.txt: 1 label: there is nothing to rank", "at least 2 labels"]),
    ("one label to tune on", ["tune", "--train", "{dir}/one_label.txt", "--trials", "1", "-o", "{dir}/tunings"],
     ["one_label.txt: 1 label: there is nothing to rank"]),
    ("a label of words", ["train", "--train", "{dir}/words.arff", "--labels", "{dir}/labels.xml", *ON_FILES],
     ["words.arff", "label 'a' has values {NO,YES}", "expected numbers such as {0,1}"]),
    ("an attribute declared twice", ["train", "--train", "{dir}/twice_named.arff", "--labels", "{dir}/labels.xml",
                                     *ON_FILES], ["twice_named.arff:5", "'b' is declared twice"]),
    ("a MEKA file without a label list", ["train", "--train", "{dir}/meka.arff", *ON_FILES],
     ["meka.arff", "needs its label list", "MEKA's, -C 2: the first 2 attributes are labels", "--labels"]),
    ("a missing value", ["train", "--train", "{dir}/missing.arff", "--labels", "{dir}/labels.xml", *ON_FILES],
     ["missing.arff:7", "missing value '?' for attribute 'f2'", "fill it in"]),
    ("a test file's other features", ["train", "--train", "{dir}/labelled.arff", "--test", "{dir}/swapped.arff",
                                      "--labels", "{dir}/labels.xml", *ON_FILES],
     ["swapped.arff: its features differ", "feature 0 is 'fx' there, 'f1' in training"]),
    ("labels coded -1/+1", ["train", "--train", "{dir}/signed.arff", "--labels", "{dir}/labels.xml", *ON_FILES],
     ["signed.arff:7", "label 'a' is -1", "never negative"]),
    ("duplicate interaction", ["train", "--train", "{dir}/clicks.tsv", *ON_FILES],
     ["clicks.tsv:3", "(user u1, item i1) is given twice", "first on line 1", "--duplicates sum"]),
    ("duplicate sparse ARFF entry", ["train", "--train", "{dir}/twice.arff", "--labels", "{dir}/labels.xml",
                                     *ON_FILES], ["twice.arff:8", "'w1'", "given twice"]),
    ("duplicate xmlrepo feature", ["train", "--train", "{dir}/twice.txt", *ON_FILES],
     ["twice.txt:2", "feature 0 is given twice"]),
    ("weight beyond float32", ["train", "--train", "{dir}/huge.tsv", *ON_FILES],
     ["huge.tsv:1", "weight", "beyond float32"]),
    ("a time column", ["train", "--train", "{dir}/stamped.csv", *ON_FILES],
     ["stamped.csv: its third column is 'ts'", "a time is no weight", "cut -d, -f1-2 stamped.csv > stamped-2cols.csv"]),
    ("times as weights", ["train", "--train", "{dir}/stamped.tsv", *ON_FILES],
     ["stamped.tsv: every weight is a whole number of 100,000,000 or more (line 1: 881250949)",
      "cut -f1-2 stamped.tsv > stamped-2cols.tsv"]),
    ("binary file", ["train", "--train", "{dir}/binary.tsv", *ON_FILES], ["binary.tsv", "binary file"]),
    ("latin-1 file", ["train", "--train", "{dir}/latin1.tsv", *ON_FILES], ["latin1.tsv:2", "not UTF-8", "0xe9"]),
    ("utf-16 file", ["train", "--train", "{dir}/utf16.tsv", *ON_FILES], ["utf16.tsv", "UTF-16"]),
    ("missing file", ["train", "--train", "{dir}/nowhere.tsv", *ON_FILES], ["nowhere.tsv", "cannot open"]),
    ("unknown data set", ["train", "--dataset", "nosuch", *SMALL], ["unknown data set 'nosuch'"]),
    ("a file as --data (--dataset)", ["train", "--data", "{dir}/clicks.tsv", *SMALL],
     ["unknown data set", "clicks.tsv", "a data file is read with --train FILE"]),
    ("--iterations 0", ["train", "--affinity", "knn:k=5", "--iterations", "0", *SMALL], ["--iterations", "at least 1"]),
    ("--iterations without G", ["train", "--iterations", "2", *SMALL], ["--iterations is for"]),
    ("negative --lr", ["train", "--lr", "-1", *SMALL], ["--learning-rate", "above 0", "-1"]),
    ("--lr nan", ["train", "--lr", "nan", *SMALL], ["--learning-rate", "nan"]),
    ("negative --margin", ["train", "--margin", "-0.5", *SMALL], ["--margin", "above 0"]),
    ("negative --epochs", ["train", "--no-validate", *SMALL, "--epochs", "-1"], ["--epochs", "at least 1"]),
    ("--epochs 0", ["train", *SMALL, "--epochs", "0"], ["--epochs", "at least 1"]),
    ("--pairs-per-batch 0", ["train", "--pairs-per-batch", "0", *SMALL], ["--pairs-per-batch", "at least 1"]),
    ("--min-steps-per-epoch 0", ["train", "--min-steps-per-epoch", "0", *SMALL],
     ["--min-steps-per-epoch", "at least 1"]),
    ("--dimension 0", ["train", *SMALL, "--dimension", "0"], ["--dimension", "at least 1"]),
    ("--negatives 0", ["train", *SMALL, "--negatives", "0"], ["--negatives", "at least 1"]),
    ("--epochs not a number", ["train", "--epochs", "ten"], ["--epochs", "'ten' is not a whole number"]),
    ("an unknown option", ["train", "--batch-size", "-1"], ["awe-tf train: error: unrecognized arguments: "
                                                            "--batch-size -1", "(see awe-tf train --help)"]),
    ("diagnose --test without --train", ["diagnose", "{dir}/model", "--test", "x.arff"], ["--test", "with --train"]),
    ("evaluate --format without --train", ["evaluate", "{dir}/model", "--format", "interactions"],
     ["--format", "with --train"]),
    ("export --test without --train", ["export", "{dir}/model", "{dir}/base", "--test", "x.arff"],
     ["--test", "with --train"]),
    ("--init-from nowhere", ["train", *SMALL, "--init-from", "{dir}/nowhere"], ["--init-from", "nowhere",
                                                                                "does not exist"]),
    ("--init-from another shape", ["train", *SMALL, "--init-from", "{dir}/model"],  # its shape before its stages
     ["--init-from", "dimension 4", "this run has 499 features, 374 labels, dimension 8 and a bias feature"]),
    ("diagnose into a directory", ["diagnose", "{dir}/model", "--output", "{dir}"], ["--output", "is a directory"]),
    ("tune on too little data", ["tune", "--train", "{dir}/sparse.tsv", "--trials", "1", "-o", "{dir}/tunings"],
     ["validation carve-out", "--no-validate"]),
    ("tune a spec with a setting it lacks", ["tune", "--affinity", "knn:gamma=5", "--trials", "1", "-o",
                                             "{dir}/tunings"],
     ["--affinity 'knn:gamma=5'", "knn has no setting gamma"]),
    ("tune --trials 0", ["tune", "--trials", "0"], ["--trials", "at least 1, got 0"]),  # KerasTuner: no limit
    ("tune --trials -2", ["tune", "--trials", "-2"], ["--trials", "at least 1, got -2"]),
    ("negative --seed", ["train", *SMALL, "--seed", "-1"], ["--seed", "at least 0"]),
    ("negative --threads", ["reproduce", "annotation", "--threads", "-1"], ["--threads", "at least 0"]),
    ("export --keep 0", ["export", "{dir}/model", "{dir}/base", "--keep", "0"], ["--keep", "at least 1"]),
    ("bad monitor", ["train", "--monitor", "accuracy", *SMALL], ["--monitor", "precision@k"]),
    ("monitor beyond the labels", ["train", "--monitor", "precision@375", *SMALL],
     ["--monitor", "precision@375 needs at least 375 labels", "has 374"]),
    ("knn:k=abc", ["train", "--affinity", "knn:k=abc", *SMALL], ["--affinity", "setting k of knn", "'abc'"]),
    ("beta=abc", ["train", "--affinity", "linear-sigmoid:beta=abc", *SMALL], ["setting beta of linear-sigmoid"]),
    ("unknown affinity", ["train", "--affinity", "nosuch", *SMALL], ["unknown affinity 'nosuch'", "knn", "or auto"]),
    ("auto in a sum", ["train", "--affinity", "knn + auto", *SMALL], ["auto chooses the whole affinity", "not as a "
                                                                      "term of a sum: give --affinity auto alone"]),
    ("auto with settings", ["train", "--affinity", "auto:x=1", *SMALL], ["auto chooses the whole affinity",
                                                                         "with no settings of its own"]),
    ("WSABIE named as an affinity", ["train", "--affinity", "wsabie", *SMALL], ["unknown affinity 'wsabie'",
                                                                              "WSABIE is G = 1: constant", "or auto"]),
    ("WSABIE named as the affinity searched", ["tune", "--affinity", "WSABIE", "--trials", "1"],
     ["--affinity 'WSABIE'", "no search space for affinity 'WSABIE'", "WSABIE is G = 1: constant"]),
    ("output is a file", ["train", *SMALL, "-o", "{dir}/a_file"], ["--output", "a_file is a file"]),
    ("output under a file", ["train", *SMALL, "-o", "{dir}/a_file/run"], ["--output", "a_file is a file"]),
    ("output unwritable", ["train", *SMALL, "-o", "/proc/awe-tf-test"], ["--output /proc/awe-tf-test",
                                                                         "cannot write there"]),
    ("diverged run", ["train", "--lr", "1e38", *SMALL], ["training diverged", "lower the learning rate"]),
    ("evaluate without a model", ["evaluate"], ["give the model directory"]),
    ("evaluate a missing model", ["evaluate", "{dir}/nomodel"], ["nomodel", "does not exist"]),
    ("evaluate a missing export", ["evaluate", "--served", "{dir}/noexport"], ["--served", "noexport does not exist"]),
    ("evaluate a folder without a model", ["evaluate", "{dir}/model/weights"], ["holds no saved AWE model",
                                                                                "awe_model.json"]),
    ("--split-column 0", ["train", *SMALL, "--split-column", "0"], ["--split-column", "at least 1, got 0"]),
    ("--split-column of a file without split lists", ["train", "--train", "{dir}/blank.txt", "--split-column", "2",
                                                      *ON_FILES],
     ["blank.txt: split_column (--split-column) 2 chooses a column of the split lists", "this data has none"]),
    ("--split-column of ARFF data", ["train", "--train", "{dir}/labelled.arff", "--labels", "{dir}/labels.xml",
                                     "--split-column", "2", *ON_FILES],
     ["labelled.arff: split_column (--split-column) 2 chooses a column of the split lists"]),
    ("--split-column of a named data set", ["train", *SMALL, "--dataset", "corel5k", "--split-column", "2"],
     ["--split-column goes with --train"]),
    ("--split-column without its data", ["evaluate", "{dir}/model", "--split-column", "2"],
     ["--split-column goes with --train"]),
    ("evaluate the exports' folder as the model", ["evaluate", "{dir}/exports"],
     ["exports holds exports (SavedModels for TF Serving), not a trained model"]),
    ("evaluate an export as the model", ["evaluate", "{dir}/exports/other"],
     ["exports/other is an export", "not a trained model", "give the run's folder", "--served EXPORT"]),
    ("export an export", ["export", "{dir}/exports/other/1", "{dir}/base"], ["other/1 is an export"]),
    ("evaluate the model as its export", ["evaluate", "{dir}/model", "--served", "{dir}/model"],
     ["--served", "is a trained model", "not an export", "awe-tf export {dir}/model BASE --name NAME"]),
    ("evaluate the exports' folder as an export", ["evaluate", "{dir}/model", "--served", "{dir}/exports"],
     ["--served", "holds the exports 'named' and 'other', not one export: give one of them"]),
    ("inspect a model", ["inspect", "{dir}/model"], ["is a trained model", "not an export"]),
    ("evaluate a model of a damaged config", ["evaluate", "{dir}/damaged-config"],
     ["damaged-config/awe_model.json: not a model's config", "Expecting property name", "is damaged"]),
    ("evaluate a model of a config without its settings", ["evaluate", "{dir}/bare-config"],
     ["bare-config/awe_model.json: the model it describes cannot be built (TypeError", "is damaged"]),
    ("evaluate a model without its weights", ["evaluate", "{dir}/no-weights"],
     ["no-weights/weights: the model's weights cannot be read (NotFoundError", "damaged or incomplete"]),
    ("evaluate a model of weights cut short", ["evaluate", "{dir}/cut-weights"],
     ["cut-weights/weights: the model's weights cannot be read", "damaged or incomplete"]),
    ("evaluate a run without its record", ["evaluate", "{dir}/unrecorded"],
     ["unrecorded holds a run's model but no metrics.json", "give that data with --dataset or --train"]),
    ("evaluate a run that has not finished", ["evaluate", "{dir}/unfinished"], ["has not finished",
                                                                              "run its command again"]),
    ("evaluate an iterative run that has not finished", ["evaluate", "{dir}/unfinished-knn"], ["has not finished"]),
    ("evaluate an auto run that has not finished", ["evaluate", "{dir}/unfinished-auto"], ["has not finished"]),
    ("--test without --train", ["evaluate", "{dir}/nomodel", "--test", "x.arff"], ["--test", "go with --train"]),
    ("export into a file", ["export", "{dir}/model", "{dir}/a_file"], ["BASE", "a_file is a file"]),
    ("export --candidates 0", ["export", "{dir}/model", "{dir}/base", "--candidates", "0"], ["--candidates"]),
    ("export --recall-queries 0", ["export", "{dir}/model", "{dir}/base", "--recall-queries", "0"],
     ["--recall-queries"]),
    ("evaluate into a directory", ["evaluate", "{dir}/model", "--output", "{dir}"], ["--output", "is a directory"]),
    ("no training example", ["train", "--train", "{dir}/five.tsv", *ON_FILES], ["five.tsv: its training part has "
                                                                                "no example", "exactly 5 items"]),
    ("the training file as the test file", ["train", "--train", "{dir}/labelled.arff", "--test",
                                            "{dir}/labelled.arff", "--labels", "{dir}/labels.xml", *ON_FILES],
     ["labelled.arff: the test file is the training file", "scores the model on the rows it learnt from",
      "leave the test file out (--test"]),
    ("a copy of the training file as the test file", ["evaluate", "{dir}/model", "--train", "{dir}/labelled.arff",
                                                      "--test", "{dir}/labelled_copy.arff", "--labels",
                                                      "{dir}/labels.xml"],
     ["labelled_copy.arff: the test file holds the same rows as", "labelled.arff"]),
    ("a test file without labels", ["train", "--train", "{dir}/labelled.arff", "--test", "{dir}/unlabelled.arff",
                                    "--labels", "{dir}/labels.xml", *ON_FILES],
     ["unlabelled.arff: its test part has no example", "!/labelled.arff"]),
    ("a test file of MovieLens ratings", ["train", "--train", "{dir}/few.tsv", "--test", "{dir}/short.tsv",
                                          "--format", "movielens", *ON_FILES],
     ["movielens data is split by the protocol, 5 items of each user held out", "give only the training file",
      "for a split of your own, give both files as interactions"]),
    ("a file of no format known", ["train", "--train", "{dir}/a_file", *ON_FILES],
     ["cannot tell the format from the name: give --format", "interactions (user, item[, weight] rows"]),
    ("predict with nothing asked", ["predict", "{dir}/model"], ["give one of --user", "--items", "--rows FILE"]),
    ("predict a user of annotation data", ["predict", "{dir}/model", "--user", "u1"],
     ["--user is for recommendation models; corel5k is annotation data: give --rows FILE"]),
    ("predict -k 0", ["predict", "{dir}/model", "--rows", "x.arff", "-k", "0"],
     ["argument -k: must be a whole number of at least 1, got 0"]),
    ("evaluate with nothing to score", ["evaluate", "{dir}/model", "--train", "{dir}/short.tsv"],
     ["short.tsv: its test part has no example"]),
    ("no user to test", ["train", "--train", "{dir}/short.tsv", *ON_FILES], ["short.tsv: its test part has no "
                                                                             "example", "no user has the 5 items"]),
    ("a default monitor the data cannot report", ["tune", "--train", "{dir}/few.tsv", "--trials", "1", "-o",
                                                  "{dir}/never"], ["the default --monitor, precision@10", "has 8",
                                                                   "precision@K with K at most 8"]),
    ("too little data to validate", ["train", "--train", "{dir}/few.tsv", *SMALL], ["validation carve-out",
                                                                                     "5 training items or more",
                                                                                     "--no-validate"]),
    ("native engine, other affinity", ["train", "--engine", "native", "--affinity", "sigmoid", *SMALL],
     ["--engine native trains WSABIE", "'sigmoid'"]),
    ("trailing + in an affinity", ["train", "--affinity", "constant:1+", *SMALL], ["empty term"]),
    ("unknown affinity setting", ["train", "--affinity", "knn:kk=5", *SMALL], ["knn has no setting kk",
                                                                              "it takes k, prior, search",
                                                                              "!or auto"]),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    for name, content in FILES.items():
        path = root / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    AWEModel(499, 374, dimension=4).save_model(root / "model")
    for damaged in ("damaged-config", "bare-config", "no-weights", "cut-weights", "unrecorded/model"):  # copied, cut
        shutil.copytree(root / "model", root / damaged)
    (root / "unrecorded" / "features.json").write_text("{}")  # a run's folder, its metrics.json lost
    (root / "damaged-config" / "awe_model.json").write_text("{")
    (root / "bare-config" / "awe_model.json").write_text('{"format": 2}')
    shutil.rmtree(root / "no-weights" / "weights")
    data = next((root / "cut-weights" / "weights").glob("*.data-*"))
    data.write_bytes(data.read_bytes()[:10])
    (root / "unfinished" / "validation" / "checkpoints").mkdir(parents=True)  # a run killed before it published
    (root / "unfinished-knn" / "validation" / "step-0" / "checkpoints").mkdir(parents=True)  # an iterative one
    (root / "unfinished-auto" / "auto" / "WSABIE" / "validation" / "checkpoints").mkdir(parents=True)  # auto's
    serving.export(AWEModel(499, 374, dimension=4, seed=7), root / "exports", "other", flavour="portable", log=None)
    serving.export(AWEModel(499, 374, dimension=4, seed=7, label_names=[f"x{i}" for i in range(374)]), root / "exports",
                   "named", flavour="portable", log=None)
    return root


@pytest.mark.parametrize("argv, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_command_lines_stop_with_one_line(argv, words, folder, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [a.replace("{dir}", str(folder)) for a in argv]
    if argv[0] == "train" and "-o" not in argv:
        argv += ["-o", str(out)]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(error) == 1 and "Traceback" not in error[0], error
    words = [word.replace("{dir}", str(folder)) for word in words]
    for word in words:  # "!word": a word the line must not hold
        assert (word[1:] not in error[0]) if word.startswith("!") else (word in error[0]), (word, error[0])
    # nothing written: no output directory, or (a run that got going) no model and no metrics
    assert not (out / "model").exists() and not (out / "metrics.json").exists()
    assert not out.exists() or "diverged" in error[0]
    if out.exists():
        assert not list(out.glob("**/checkpoints/last/*")), "a diverged epoch was checkpointed"


@pytest.mark.parametrize("argv, flag", [(["evaluate", "{dir}/model", "--served", "{dir}/noexport"], "--served"),
                                        (["tune", "--affinity", "nosuch", "-o", "{dir}/never"], "--affinity")],
                         ids=["served", "tune"])
def test_a_bad_flag_is_refused_before_the_data_is_read(argv, flag, folder, capsys):
    """An export that is not there, or an affinity no search space holds, stops the command before
    it reads the data (which prints the data's line), with the flag named."""
    code = cli.main([a.replace("{dir}", str(folder)) for a in argv])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.startswith(f"error: {flag} "), captured


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    model = AWEModel(30, 30, dimension=4, data_task="recommendation", seed=1)
    return {flavour: serving.load(serving.export(model, base, flavour, flavour=flavour, candidates=10, log=None))
            for flavour in serving.FLAVOURS}


# (case id, request keyword arguments, error type, words): through ServedModel, which checks a
# request in Python first (one-line ValueErrors), or straight into the signature, as a TF Serving
# client's request reaches the graph ("signature": keyword tensors).
GRAPH = tf.errors.InvalidArgumentError
REQUESTS = [
    ("fractional ids", {"feature_ids": [[3.5, 2]]}, ValueError, ["feature_ids", "whole numbers"]),
    ("ids beyond int32", {"feature_ids": np.array([[2 ** 32 + 5]], np.int64)}, ValueError, ["feature_ids", "int32"]),
    ("text ids", {"feature_ids": [["a"]]}, ValueError, ["feature_ids", "integer ids"]),
    ("one-dimensional ids", {"feature_ids": [3, 4]}, ValueError, ["feature_ids", "2 dimensions"]),
    ("fractional exclusions", {"feature_ids": [[3]], "exclude": [1.5]}, ValueError, ["exclude_ids", "whole"]),
    ("exclusion out of range", {"feature_ids": [[3]], "exclude": [30]}, ValueError, ["exclude_ids", "0 to 29"]),
    ("exclusion rows", {"feature_ids": [[3], [4], [5]], "exclude": [[1], [2]]}, ValueError, ["2 lists for 3 rows"]),
    ("one exclusion alone", {"feature_ids": [[3]], "exclude": 12}, ValueError, ["a list of label ids (exclude=[12])"]),
    ("k too large", {"feature_ids": [[3]], "k": 31}, ValueError, ["k must be a whole number from 1 to"]),
    ("fractional k", {"feature_ids": [[3]], "k": 2.5}, ValueError, ["k must be a whole number"]),
    ("k as text", {"feature_ids": [[3]], "k": "3"}, ValueError, ["k must be a whole number", "got '3'"]),
    ("k as an array of one value", {"feature_ids": [[3]], "k": np.array([2])}, ValueError,
     ["k must be a whole number"]),
    ("k as a time span", {"feature_ids": [[3]], "k": np.timedelta64(3)}, ValueError, ["k must be a whole number"]),
    ("rows of ids of other lengths", {"feature_ids": [[1, 2], [3]], "feature_weights": [[5, 4], [3]]}, ValueError,
     ["feature_ids must be rows of one length", "pad shorter rows with -1"]),
    ("rows of weights of other lengths", {"feature_ids": [[1, 2], [3, -1]], "feature_weights": [[5, 4], [3]]},
     ValueError, ["feature_weights must be rows of one length"]),
    ("weights as text", {"feature_ids": [[3, 4]], "feature_weights": np.array([["5", "4"]])}, ValueError,
     ["feature_weights holds text, '5' (row 0, column 0): give numbers"]),
    ("a weight below float32's normal numbers", {"feature_ids": [[3, 4]], "feature_weights": [[1e-40, 1.0]]},
     ValueError, ["feature_weights holds 1e-40 (row 0, column 0), below float32's smallest normal number"]),
    ("raw rows with a value below float32's normal numbers", {"X": np.array([[0, 1e-40] + [0] * 28])}, ValueError,
     ["an input row holds 1e-40 (row 0, column 1), below float32's smallest normal number"]),
    ("raw rows of other lengths", {"X": [[0, 1], [1]]}, ValueError, ["inputs are rows", "rows are of other lengths"]),
    ("raw rows with NaN", {"X": sp.csr_matrix(([np.nan], ([0], [1])), shape=(1, 30))}, ValueError, ["NaN"]),
    ("id out of range", {"feature_ids": [[30]]}, ValueError, ["feature ids from 0 to 29 (or -1, padding), got [30]"]),
    ("negative id", {"feature_ids": [[3, -2]]}, ValueError, ["feature_ids", "got [-2]"]),
    ("repeated id", {"feature_ids": [[1, -1, -1], [3, 5, 3]]}, ValueError, ["feature 3 appears twice in row 1"]),
    ("NaN value", {"feature_ids": [[3]], "feature_weights": [[np.nan]]}, ValueError,
     ["feature_weights must be finite numbers"]),
    ("negative weight", {"feature_ids": [[3, 4]], "feature_weights": [[1.0, -2.0]]}, ValueError,
     ["item weights must not be negative", "got [-2.0]"]),
    ("raw rows with a negative weight", {"X": sp.csr_matrix(([2.0, -1.0], ([0, 0], [1, 4])), shape=(1, 30))},
     ValueError, ["item weights must not be negative", "got [-1.0]"]),
    ("weights of another shape", {"feature_ids": [[3, 4]], "feature_weights": [[1.0]]}, ValueError,
     ["feature_weights has shape (1, 1) but feature_ids (1, 2)"]),
    ("graph: id out of range", {"signature": {"feature_ids": [[30]]}}, GRAPH, ["feature_ids must be < 30"]),
    ("graph: repeated id", {"signature": {"feature_ids": [[3, 3]]}}, GRAPH, ["appears twice", "pads with -1, not 0"]),
    ("graph: k too large", {"signature": {"feature_ids": [[3]], "k": 31}}, GRAPH, ["k must be at most"]),
    ("graph: NaN value", {"signature": {"feature_ids": [[3]], "feature_weights": [[np.nan]]}}, GRAPH,
     ["feature_weights must be finite"]),
    ("graph: weights of another shape", {"signature": {"feature_ids": [[3, 4]], "feature_weights": [[1.0, 2.0, 3.0]]}},
     GRAPH, ["feature_ids and feature_weights must have the same shape"]),
    ("graph: negative weight", {"signature": {"feature_ids": [[3, 4]], "feature_weights": [[1.0, -2.0]]}}, GRAPH,
     ["feature_weights: item weights must not be negative"]),
    ("graph: exclusion out of range", {"signature": {"feature_ids": [[3]], "exclude_ids": [[30]]}}, GRAPH,
     ["exclude_ids must be < 30"]),
    ("graph: exclusion rows", {"signature": {"feature_ids": [[3], [4], [5]], "exclude_ids": [[1], [2]]}}, GRAPH,
     ["exclude_ids must have one row"]),
]


def _signature_call(served, request):
    request = {"k": 5, "feature_weights": np.ones(np.shape(request["feature_ids"])), **request}
    dtypes = {"feature_ids": tf.int32, "exclude_ids": tf.int32, "k": tf.int32, "feature_weights": tf.float32,
              "exclude_inputs": tf.bool}
    return served.signature(**{key: tf.constant(value, dtypes[key]) for key, value in request.items()})


@pytest.mark.parametrize("flavour", ["scann", "portable"])
@pytest.mark.parametrize("request_, error, words", [case[1:] for case in REQUESTS], ids=[c[0] for c in REQUESTS])
def test_bad_requests_name_the_field(request_, error, words, flavour, exports):
    with pytest.raises(error) as raised:
        if "signature" in request_:
            _signature_call(exports[flavour], request_["signature"])
        else:
            exports[flavour](**{"k": 5, **request_})
    for word in words:
        assert word in str(raised.value), (word, str(raised.value)[:300])
    if error is ValueError:
        assert "\n" not in str(raised.value)


def test_evaluate_served_refuses_a_k_its_export_cannot_answer(exports):
    from awe_tf.data.dataset import Dataset, Split
    from awe_tf.evaluation import evaluate_served

    rows = sp.csr_matrix(np.eye(4, 30, 1))
    split = Split(Dataset(rows, rows, task="recommendation"), Dataset(rows, rows, task="recommendation"))
    with pytest.raises(ValueError, match=r"evaluate_served: the export answers at most k = 10, below the ks given, "
                                         r"\[1, 20\]"):
        evaluate_served(exports["scann"], split, ks=(1, 20))
    with pytest.raises(ValueError, match=r"evaluate_served: precision@31 needs at least 31 labels"):
        evaluate_served(exports["portable"], split, ks=[31])
    wider = sp.csr_matrix(np.eye(4, 31, 1))  # data of another size than the export's model
    other = Split(Dataset(wider, wider, task="recommendation"), Dataset(wider, wider, task="recommendation"))
    with pytest.raises(ValueError, match=r"evaluate_served: the model has 30 features / 30 labels but the data 31 / "
                                         r"31; score the export on the data its model was trained on"):
        evaluate_served(exports["scann"], other)
    assert {f"precision@{k}" for k in (1, 3, 5, 10)} <= set(evaluate_served(exports["scann"], split)["metrics"])


def test_a_request_takes_k_and_weights_as_any_kind_of_number(exports):
    """k held by a NumPy scalar, a 0-dimensional array or tensor, or a Decimal, and weights given as
    Python objects (Decimal) answer as the plain numbers do."""
    import decimal

    served = exports["portable"]
    expected = served(feature_ids=[[3, 4]], feature_weights=[[1.0, 2.0]], k=3)
    for k in (np.int64(3), np.array(3), tf.constant(3), decimal.Decimal(3), 3.0):
        answer = served(feature_ids=[[3, 4]], feature_weights=np.array([[decimal.Decimal(1), decimal.Decimal(2)]]), k=k)
        for key in expected:
            np.testing.assert_array_equal(answer[key], expected[key], err_msg=repr(k))


def test_exclusions_may_differ_in_length_from_row_to_row(exports):
    served = exports["portable"]
    first = served(feature_ids=[[3], [4], [5]], k=3)["label_ids"]
    mine = served(feature_ids=[[3], [4], [5]], k=3, exclude=[[int(first[0, 0])], [], [int(first[2, 0]),
                                                                                   int(first[2, 1])]])["label_ids"]
    assert mine[0, 0] == first[0, 1] and (mine[1] == first[1]).all() and mine[2, 0] == first[2, 2]


@pytest.mark.parametrize("flavour", ["scann", "portable"])
def test_an_empty_exclusion_list_in_the_signature_leaves_nothing_out(exports, flavour, tmp_path):
    """A REST request's ``"exclude_ids": [[]]`` (width 0, one row or one per row) is no exclusion,
    for an annotation model and for a recommendation model, whose own items are left out beside
    them."""
    annotation = serving.load(serving.export(AWEModel(30, 30, dimension=4, seed=1), tmp_path, "m", flavour=flavour,
                                             candidates=10, log=None))
    for served in (annotation, exports[flavour]):
        rows = {"feature_ids": [[3], [4]], "exclude_inputs": False}
        expected = _signature_call(served, rows)["label_ids"].numpy()
        for empty in (np.zeros((1, 0)), np.zeros((2, 0))):
            answer = _signature_call(served, {**rows, "exclude_ids": empty})["label_ids"].numpy()
            np.testing.assert_array_equal(answer, expected)


def test_an_annotation_model_refuses_to_leave_out_its_inputs(tmp_path):
    served = serving.load(serving.export(AWEModel(6, 4, dimension=3), tmp_path, "m", flavour="portable", log=None))
    with pytest.raises(ValueError, match="exclude_inputs is for recommendation models"):
        served(feature_ids=[[1]], k=2, exclude_inputs=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exclude_inputs is for recommendation models"):
        _signature_call(served, {"feature_ids": [[1]], "k": 2, "exclude_inputs": True})
    with pytest.raises(ValueError, match="exclude_inputs is for recommendation models"):
        AWEModel(6, 4, dimension=3).top_k(np.eye(6)[:1], 2, exclude_inputs=True)
    from awe_tf.data import load_dataset
    from awe_tf.evaluation import evaluate_model

    for scorer in (served, served.__call__):  # an export answers top labels: said, not unpacked as scores
        with pytest.raises(TypeError, match=r"rank the test part with awe_tf.evaluation.evaluate_served"):
            evaluate_model(scorer, load_dataset("corel5k"))


def test_only_a_recommendation_model_refuses_negative_input_values(exports, tmp_path):
    """Items are weighted as an interactions file weighs them, never below 0: the model, an
    export and its signature refuse a negative one. Padding's values are ignored, and an
    annotation model's features (standardised numbers) may be negative."""
    negative = sp.csr_matrix(([1.0, -0.5], ([0, 0], [2, 7])), shape=(1, 30))
    with pytest.raises(ValueError, match="item weights must not be negative"):
        AWEModel(30, 30, dimension=4, data_task="recommendation", seed=1).top_k(negative, 3)
    for value in (-9.0, np.nan):  # padding's values are ignored, whatever they are
        padded = _signature_call(exports["portable"], {"feature_ids": [[3, -1]], "feature_weights": [[1.0, value]]})
        assert (padded["label_ids"].numpy() == exports["portable"](feature_ids=[[3]], k=5)["label_ids"]).all()
    annotation = AWEModel(30, 6, dimension=4, seed=1)
    served = serving.load(serving.export(annotation, tmp_path, "m", flavour="portable", log=None))
    answered = served(X=negative, k=3)
    assert (answered["label_ids"] == annotation.top_k(negative, 3)[0]).all()


# Python: (case id, a call, error type, words its message must hold)
def _dataset(Y, task="annotation", X=None):
    from awe_tf.data.dataset import Dataset

    X = sp.csr_matrix(np.eye(4, 3) + 0.5) if X is None else X
    return Dataset(X, Y, list("abc"), [f"l{i}" for i in range(np.shape(Y)[1])], task=task)


def _split():
    from awe_tf.data.dataset import Split

    return Split(_dataset(np.eye(4)), _dataset(np.eye(4)))


PYTHON = [
    ("labels coded -1/+1", lambda: _dataset(2 * np.eye(4, 3) - 1), ValueError, ["got [-1.0", "-1/+1 encoding"]),
    ("negative recommendation input", lambda: _dataset(np.eye(4, 3), "recommendation", -sp.eye(4, 3, format="csr")),
     ValueError, ["items with weights above 0", "got [-1.0"]),
    ("constant 0", lambda: AWEModel(3, 4, affinity="constant:0"), ValueError, ["G = 0 everywhere"]),
    ("a number with an underscore", lambda: AWEModel(3, 4, affinity="knn:k=1_0"), ValueError,
     ["must be a whole number, got '1_0'"]),
    ("constants adding to 0", lambda: AWEModel(3, 4, affinity="constant:0+constant:0"), ValueError,
     ["G = 0 everywhere", "no gradient"]),
    ("matrix starting at 0", lambda: AWEModel(3, 4, affinity="matrix:c=0"), ValueError, ["G = 0 everywhere"]),
    ("low rank below 0", lambda: AWEModel(3, 4, affinity="lowrank:c=-1"), ValueError, ["c must be 0 or above"]),
    ("constant below 0", lambda: AWEModel(3, 4, affinity="constant:-1+knn"), ValueError, ["c must be 0 or above"]),
    ("matrix starting below 0", lambda: AWEModel(3, 4, affinity="matrix:c=-1"), ValueError,
     ["c must be 0 or above"]),
    ("a switch as text", lambda: __import__("awe_tf").training.TrainConfig(jit_compile="no"), ValueError,
     ["jit_compile must be one of True, False"]),
    ("negative gate rank", lambda: AWEModel(3, 4, affinity="sigmoid:rank=-1"), ValueError,
     ["rank must be 0", "got -1"]),
    ("max norm 0", lambda: AWEModel(3, 4, max_norm=0.0), ValueError, ["max_norm must be a finite number above 0"]),
    ("negative margin", lambda: AWEModel(3, 4, margin=-5.0), ValueError, ["margin must be"]),
    ("bias as text", lambda: AWEModel(3, 4, input_bias="no"), ValueError, ["input_bias must be one of True, False"]),
    ("affinity of another type", lambda: __import__("awe_tf").training.ModelConfig(affinity=3), ValueError,
     ["affinity must be a spec", "got int"]),
    ("model called on raw rows", lambda: AWEModel(3, 4)(tf.ones([2, 3])), TypeError,
     ["model_inputs", "model.score(X)"]),
    ("predict on raw rows", lambda: AWEModel(3, 4).predict(np.ones((2, 3))), TypeError,
     ["got ndarray", "model.score(X)"]),
    ("NaN in X", lambda: _dataset(np.eye(4, 3), X=np.where(np.eye(4, 3) > 0, np.nan, 0.5)), ValueError,
     ["X holds NaN or infinite values", "first in row 0"]),
    ("X below float32's normal numbers", lambda: _dataset(np.eye(4, 3), X=sp.csr_matrix(np.eye(4, 3) * 1e-50)),
     ValueError, ["X holds 1e-50 (row 0, column 0), below float32's smallest normal number", "or reads 0"]),
    ("X below float32's normal numbers, as lists",
     lambda: _dataset(np.eye(4, 3), X=[[1.0, 0.0, 0.0]] * 3 + [[0.0, 1.0, 1e-50]]), ValueError,
     ["X holds 1e-50 (row 3, column 2), below float32's smallest normal number"]),
    ("X below float32's normal numbers, as a DOK matrix", lambda: _dataset(np.eye(4, 3), X=sp.dok_matrix(
        np.eye(4, 3) * 1e-50)), ValueError, ["X holds 1e-50 (row 0, column 0), below float32's smallest normal"]),
    ("X as text", lambda: _dataset(np.eye(4, 3), X=np.eye(4, 3).astype(str)), ValueError,
     ["X holds text, '1.0' (row 0, column 0): give numbers"]),
    ("X masked", lambda: _dataset(np.eye(4, 3), X=np.ma.masked_array(np.eye(4, 3), mask=np.eye(4, 3) > 0)), ValueError,
     ["X is a masked array with masked entries: fill them first"]),
    ("X of three dimensions", lambda: _dataset(np.eye(4, 3), X=np.zeros((4, 3, 1))), ValueError,
     ["X must be a matrix of rows x columns", "got 3"]),
    ("X below float32's normal numbers, as a DataFrame's column", lambda: _dataset(np.eye(4, 3), X=__import__("pandas")
     .DataFrame({"a": [1.0, 0, 0, 0], "b": [0, 1.0, 1e-50, 0], "c": [0, 0, 1.0, 1.0]})), ValueError,
     ["X holds 1e-50 (row 2, column 1), below"]),
    ("X beyond float32", lambda: _dataset(np.eye(4, 3), X=np.diag([1.0, 1.0, 1e300])[[0, 1, 2, 2]]), ValueError,
     ["beyond float32's range", "first in row 2"]),
    ("labels as lists of ids", lambda: __import__("awe_tf").Dataset(np.ones((2, 3)), [[3, 8], [1]]), ValueError,
     ["Y must be a matrix of rows x columns", "got a list", "lists of label ids? make a 0/1 matrix"]),
    ("labels as even lists of ids", lambda: __import__("awe_tf").Dataset(np.ones((2, 3)), [[3, 8], [1, 2]]),
     ValueError, ["Y, given as lists, holds values other than 0 and 1 (first 3)", "lists of label ids?"]),
    ("labels as one class per row", lambda: __import__("awe_tf").Dataset(np.ones((3, 2)), np.array([0, 2, 1])),
     ValueError, ["Y is one value per row (3 values)", "np.eye(n_classes)[y]"]),
    ("labels as a list of classes", lambda: __import__("awe_tf").Dataset(np.ones((3, 2)), [0, 2, 1]), ValueError,
     ["Y is one value per row (3 values)"]),
    ("a weight below float32's", lambda: __import__("awe_tf").data.interactions.from_interactions(
        ["u1", "u2"], ["a", "b"], [1e-50, 1.0]), ValueError,
     ["weight 1e-50 is below float32's smallest normal number"]),
    ("a Keras 3 callback", lambda: __import__("awe_tf").training.fit(_dataset(np.eye(4, 3)), callbacks=[
        __import__("keras").callbacks.EarlyStopping()]), TypeError,
     ["callbacks are tf.keras callbacks", "Keras 3's (import keras); use tf.keras.callbacks.EarlyStopping"]),
    ("a strategy of another type", lambda: __import__("awe_tf").training.fit(_dataset(np.eye(4, 3)), strategy=2),
     TypeError, ["strategy must be a tf.distribute strategy or its name", "got a int"]),
    ("an affinity spelt with an underscore", lambda: AWEModel(3, 4, affinity="linear_sigmoid"), ValueError,
     ["unknown affinity 'linear_sigmoid'", "(did you mean 'linear-sigmoid'?)"]),
    ("a setting by Keras' name", lambda: __import__("awe_tf").training.TrainConfig(batch_size=256), TypeError,
     ["TrainConfig has no setting 'batch_size' (did you mean 'pairs_per_batch'?)"]),
    ("a setting misspelt", lambda: __import__("awe_tf").training.ModelConfig(dimensoin=8), TypeError,
     ["ModelConfig has no setting 'dimensoin' (did you mean 'dimension'?); its settings: dimension, margin"]),
    ("a training setting given to the model's", lambda: __import__("awe_tf").training.ModelConfig(epochs=5),
     TypeError, ["ModelConfig has no setting 'epochs' ('epochs' is a TrainConfig setting)"]),
    ("no Y", lambda: __import__("awe_tf").Dataset(np.ones((2, 3)), None), ValueError, ["Y is None"]),
    ("a label name twice", lambda: __import__("awe_tf").Dataset(np.ones((2, 3)), np.eye(2), list("abc"), ["p", "p"]),
     ValueError, ["two labels are named 'p': a model names its labels by these names (its answers)", "rename one"]),
    ("a feature column twice", lambda: __import__("awe_tf").Dataset(__import__("pandas").DataFrame(
        np.ones((2, 3)), columns=list("aab")), np.eye(2)), ValueError, ["two features are named 'a'"]),
    ("numeric_features too short", lambda: __import__("awe_tf").Dataset(
        np.ones((4, 3)), np.eye(4, 3), list("abc"), list("xyz"), numeric_features=np.ones(2, bool)), ValueError,
     ["boolean mask over X's 3 columns", "shape (2,)"]),
    ("numeric_features as indices", lambda: __import__("awe_tf").Dataset(
        np.ones((4, 3)), np.eye(4, 3), list("abc"), list("xyz"), numeric_features=np.arange(3)), ValueError,
     ["boolean mask", "int64"]),
    ("init_from a path", lambda: __import__("awe_tf").training.fit(_dataset(np.eye(4, 3)), init_from="runs/x"),
     TypeError, ["init_from takes a trained AWEModel, got str", "AWEModel.load_model"]),
    ("continue_from a path", lambda: __import__("awe_tf").training.fit(_dataset(np.eye(4, 3)), continue_from="m"),
     TypeError, ["continue_from takes a trained AWEModel, got str"]),
    ("a model's fit result", lambda: __import__("awe_tf").training.fit(_dataset(np.eye(4, 3)), model=__import__(
        "awe_tf").training.FitResult.as_given(AWEModel(3, 3))), TypeError, ["model takes an AWEModel, got FitResult "
                                                                              "(its .model)"]),
    ("on_linear_model's arguments in another order", lambda: __import__("awe_tf").training.iterative.on_linear_model(
        AWEModel(3, 3), _dataset(np.eye(4, 3)), "vote:weight=3,k=2"), TypeError,
     ["on_linear_model: train must be a Dataset", "got a AWEModel"]),
    ("fit_iterative from a fit result", lambda: __import__("awe_tf").training.fit_iterative(
        _dataset(np.eye(4, 3)), __import__("awe_tf").training.ModelConfig(affinity="knn:k=2"),
        init_from=__import__("awe_tf").training.FitResult.as_given(AWEModel(3, 3))), TypeError,
     ["init_from takes a trained AWEModel, got FitResult (its .model)"]),
    ("fit given k-NN", lambda: __import__("awe_tf").training.fit(_dataset(np.eye(4, 3)), __import__(
        "awe_tf").training.ModelConfig(affinity="constant:0.3+knn:k=2")), __import__("awe_tf").config.SettingError,
     ["model_config.affinity", "is built from an earlier model's U", "fit_iterative(train, model_config"]),
    ("fit_iterative given linear sigmoid", lambda: __import__("awe_tf").training.fit_iterative(
        _dataset(np.eye(4, 3)), __import__("awe_tf").training.ModelConfig(affinity="linear-sigmoid")),
     __import__("awe_tf").config.SettingError,
     ["model_config.affinity 'linear-sigmoid' has no part built from the training set", "knn",
      "train it with awe_tf.training.fit(train, model_config, train_config)"]),
    ("score with batch_size 0", lambda: AWEModel(3, 4).score(np.ones((2, 3)), batch_size=0), ValueError,
     ["batch_size", "at least 1, got 0"]),
    ("score rows of 3 dimensions", lambda: AWEModel(3, 4).score(np.ones((2, 2, 3))), ValueError,
     ["2-D matrix", "3 dimensions"]),
    ("items by name as rows", lambda: AWEModel(3, 3, label_names=["i1", "i2", "i3"], data_task="recommendation")
     .top_k([["i1", "i2"]]), TypeError, ["rows of numbers, a column per feature, got text ('i1')", "model.rows_of"]),
    ("a row of text among numbers", lambda: AWEModel(3, 4).score([[1, "x", 0]]), TypeError, ["got text ('x')"]),
    ("rows of other lengths", lambda: AWEModel(3, 4).top_k([[1, 0, 2], [1]]), ValueError,
     ["inputs are rows", "rows are of other lengths"]),
    ("a value below float32's normal numbers", lambda: AWEModel(3, 4).score(np.array([[1e-300, 0, 1]])), ValueError,
     ["an input row holds 1e-300 (row 0, column 0), below float32's smallest normal number"]),
    ("no rows", lambda: AWEModel(3, 4).score(None), TypeError, ["inputs are rows (a matrix, a DataFrame), got None"]),
    ("ks past the labels", lambda: __import__("awe_tf").evaluate_model(AWEModel(3, 4), _split(), ks=(1, 10)),
     ValueError, ["evaluate_model: precision@10 needs at least 10 labels to rank; the data has 4"]),
    ("ks of 0", lambda: __import__("awe_tf").evaluate_model(AWEModel(3, 4), _split(), ks=(0, 1)), ValueError,
     ["ks must be integers of at least 1, got (0, 1)"]),
    ("ks of a fraction", lambda: __import__("awe_tf").evaluate_model(AWEModel(3, 4), _split(), ks=[2.5]),
     ValueError, ["ks must be integers of at least 1, got (2.5,)"]),
    ("ks as one number", lambda: __import__("awe_tf").evaluate_model(AWEModel(3, 4), _split(), ks=5), TypeError,
     ["ks is a list of ks, such as ks=(1, 5), got 5"]),
]


@pytest.mark.parametrize("call, error, words", [case[1:] for case in PYTHON], ids=[c[0] for c in PYTHON])
def test_bad_python_input_is_named(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value), (word, str(raised.value)[:300])


def test_rows_of_every_numeric_kind_score_alike():
    """Rows as float16, bfloat16 tensors, Python numbers (Decimal), booleans or a LIL matrix score as
    the same float32 rows do: the checks in the rows' own precision refuse none of them."""
    import decimal

    model = AWEModel(3, 4, seed=0)
    rows = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], np.float32)
    expected = model.score(rows)
    for given in (rows.astype(np.float16), tf.constant(rows, tf.bfloat16), rows.tolist(), sp.lil_matrix(rows),
                  np.array([[decimal.Decimal(str(v)) for v in row] for row in rows], dtype=object)):
        np.testing.assert_array_equal(model.score(given), expected, err_msg=type(given).__name__)
    np.testing.assert_array_equal(model.score(rows > 0), model.score((rows > 0).astype(np.float32)))


def test_fit_takes_a_strategy_by_name_and_callbacks_from_a_generator():
    from awe_tf.training import TrainConfig, fit

    epochs = []

    class Seen(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs.append(epoch)

    fit(_dataset(np.eye(4, 3)), train_config=TrainConfig(epochs=2, verbose=0), callbacks=(c for c in [Seen()]))
    assert epochs == [0, 1]
    result = fit(_dataset(np.eye(4, 3)), train_config=TrainConfig(epochs=1, verbose=0), strategy="default")
    assert result.epochs_run == 1


def test_fit_refuses_a_callback_restoring_weights_beside_its_own_best_epoch():
    """With validation, fit keeps the best epoch's weights itself; Keras' EarlyStopping restoring
    its own best afterwards would leave the model at another epoch than best_epoch."""
    from awe_tf.data import validation_split
    from awe_tf.training import TrainConfig, fit

    data = _dataset(sp.random(40, 6, density=0.4, format="csr", random_state=0), X=np.random.RandomState(0).rand(40, 3))
    carve = validation_split(data)
    config = TrainConfig(epochs=2, verbose=0)
    restoring = tf.keras.callbacks.EarlyStopping(monitor="loss", restore_best_weights=True)
    with pytest.raises(ValueError, match=r"fit: EarlyStopping\(restore_best_weights=True\) beside validation"):
        fit(carve.train, train_config=config, validation=carve, callbacks=[restoring])
    stopping = tf.keras.callbacks.EarlyStopping(monitor="loss", patience=5)  # stopping alone is the user's to ask
    assert fit(carve.train, train_config=config, validation=carve, callbacks=[stopping]).epochs_run == 2
    assert fit(carve.train, train_config=config, callbacks=[restoring]).best_epoch is None  # no validation: Keras'


def test_positive_label_values_read_as_ones_and_spaced_specs_parse():
    """Y's positive values are labels of 1 and stored zeros no label, as the readers read a
    file's; columns without names are named by number; spaces around an affinity's name are as
    spaces around its settings."""
    from awe_tf.affinities import parse

    Y = sp.csr_matrix((np.array([2.0, 0.0, 0.5]), ([0, 1, 2], [0, 1, 2])), shape=(4, 3))
    data = _dataset(Y)
    assert data.Y.nnz == 2 and (data.Y.data == 1).all() and Y.data.tolist() == [2.0, 0.0, 0.5]
    unnamed = __import__("awe_tf").Dataset(np.ones((2, 3)), np.eye(2))  # columns named by number where not given
    assert (unnamed.feature_names, unnamed.label_names) == (["0", "1", "2"], ["0", "1"])
    assert parse(" knn : k = 3 ").get_config()["k"] == 3
    assert parse("constant:0+knn:k=3").components[0].c == 0  # the pure k-NN form of a sum
    assert parse("constant:1+matrix:c=0").components[1].c == 0  # a matrix learnt from 0 beside WSABIE
    import json

    from awe_tf.training import ModelConfig, TrainConfig

    numbers = TrainConfig(learning_rate=np.float32(0.05), pairs_per_batch=np.int64(512)).to_dict()
    assert json.loads(json.dumps(numbers))["pairs_per_batch"] == 512  # NumPy numbers stored as Python's
    assert type(ModelConfig(dimension=np.int64(8)).dimension) is int


def test_top_k_past_the_labels_gives_every_label_and_a_slot_none_fills_is_said():
    with pytest.warns(UserWarning, match=r"top_k: k = 6 is above the model's 4 labels: every label is ranked"):
        ids, scores = AWEModel(3, 4, dimension=2).top_k(np.eye(3), 6)
    recommender = AWEModel(4, 4, dimension=2, data_task="recommendation")
    with pytest.warns(UserWarning, match=r"top_k: 1 of 2 rows have fewer than 4 labels left to rank \(as few as "
                                         r"2\)"):
        short, _ = recommender.top_k(np.array([[1.0, 1.0, 0, 0], [0, 0, 0, 0]]), 4)  # a user's own items left out
    assert (short[0, 2:] == -1).all() and (short[1] >= 0).all()
    assert ids.shape == scores.shape == (3, 4) and (np.sort(ids, axis=1) == np.arange(4)).all()


def test_a_validation_stage_model_cut_short_is_named(tmp_path):
    """--init-from reads a run's validation-stage model (best.npz): one cut short is refused with
    one line naming it and the way round."""
    from awe_tf import runs

    best = tmp_path / "validation" / "checkpoints" / "best.npz"
    best.parent.mkdir(parents=True)
    np.savez(best, w0=np.ones((3, 2)))
    assert len(runs.validation_weights(tmp_path)) == 1
    best.write_bytes(best.read_bytes()[:40])
    with pytest.raises(runs.RunError, match=r"best.npz: its validation stage's model cannot be read \(BadZipFile.*"
                                            r"add --no-validate"):
        runs.validation_weights(tmp_path)
