"""Write the notebooks (outputs stripped) from the cells below: `python notebooks/build.py`.

Every notebook starts with its title, a guarded install cell (it installs awe-tf where it is
missing, as in a fresh Colab runtime) and a cell tagged ``parameters`` that tests override with a small "smoke" setting
(tests/test_notebooks.py runs each one top to bottom with nbclient).
"""

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCE = 'AWE_TF_SOURCE = "git+https://github.com/awe-tf/awe-tf"  # or your clone, as a URL: "file:///content/awe-tf"'
PIP = '[sys.executable, "-m", "pip", "install", "-q"'


def _pins(*names: str) -> str:
    """requirements.txt's lines for ``names``, as Python string literals (the pins the TPU install
    gives without their dependencies, so they follow the project's)."""
    lines = (HERE.parent / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines if line.split("=")[0].split(">")[0].split("~")[0] in names]
    assert len(pins) == len(names), (names, pins)
    return ", ".join(repr(pin) for pin in pins)


INSTALL = f"""\
# Colab: install awe-tf (skipped when it is already installed, e.g. locally)
import importlib.util
import subprocess
import sys

{SOURCE}
if importlib.util.find_spec("awe_tf") is None:
    subprocess.run({PIP},
                    f"awe-tf[serving,tuning,plots] @ {{AWE_TF_SOURCE}}"], check=True)"""

TPU_INSTALL = f"""\
# Colab: install awe-tf (skipped when it is already installed, e.g. locally). On a runtime whose
# TensorFlow is the TPU build (tensorflow-tpu), awe-tf and the Keras 2 packages go in without
# their dependencies: theirs name plain tensorflow, which pip would install over the TPU build.
import importlib.metadata
import importlib.util
import subprocess
import sys

{SOURCE}
try:
    TPU_BUILD = importlib.metadata.version("tensorflow-tpu")
except importlib.metadata.PackageNotFoundError:
    TPU_BUILD = None
if importlib.util.find_spec("awe_tf") is None:
    if TPU_BUILD is None:
        subprocess.run({PIP},
                        f"awe-tf[serving,tuning,plots] @ {{AWE_TF_SOURCE}}"], check=True)
    elif not TPU_BUILD.startswith("2.20."):
        raise RuntimeError(f"this runtime's tensorflow-tpu is {{TPU_BUILD}}; awe-tf needs 2.20: "
                           "pip install 'tensorflow-tpu~=2.20.0' (with its libtpu) first")
    else:
        subprocess.run({PIP}, "--no-deps", f"awe-tf @ {{AWE_TF_SOURCE}}",
                        {_pins("tf-keras", "tensorflow-recommenders", "threadpoolctl")}], check=True)"""

NOTEBOOKS = {
    "01_quickstart.ipynb": [
        ("md", "# awe-tf quickstart\n\nTrain WSABIE (the linear embedding model) and AWE (with the paper's k-NN "
               "affinity: the 20 nearest training inputs in the embedding space, rebuilt over 3 iterative "
               "steps) on the bundled Corel5k image-annotation data, compare them with the k-NN baselines, "
               "and look at predictions."),
        ("code", INSTALL),
        ("params", "EPOCHS = 10\nDIMENSION = 64\nITERATIONS = 3"),
        ("code", """\
from awe_tf.data import load_dataset
from awe_tf.evaluation import baseline_scores, evaluate_model
from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative

split = load_dataset("corel5k")  # bundled: no download
print(split.train)"""),
        ("code", """\
config = TrainConfig(epochs=EPOCHS, verbose=0)
wsabie = fit(split.train, ModelConfig(dimension=DIMENSION), config).model
awe_config = ModelConfig(dimension=DIMENSION, affinity="knn:k=20")
awe, _ = fit_iterative(split.train, awe_config, config, iterations=ITERATIONS)
models = {"WSABIE": wsabie, "AWE k-NN": awe.model}
scores = {name: evaluate_model(model.score, split)["metrics"] for name, model in models.items()}
baselines = baseline_scores(split, wsabie)  # k-NN in input space and in WSABIE's space, k = 20
scores["k-NN (input)"], scores["k-NN (WSABIE space)"] = baselines["knn_input"], baselines["knn_embedding"]
{name: round(metrics["precision@1"], 3) for name, metrics in scores.items()}"""),
        ("md", "On a CPU, WSABIE also trains with the native engine: the paper's per-pair WARP loop in C "
               "(compiled on first use, which the first native run below includes: a few seconds), with the "
               "same model class, optimiser state and callbacks. It draws negatives pair by pair and updates V "
               "after each pair (U once per example), so its U and V, and its precision, differ a little from "
               "the TensorFlow step's, "
               "and on several threads from run to run (its lock-free updates; `threads=1` repeats: README, "
               "Training engines). It trains, on one machine, the models whose "
               "score is a function of the linear score alone (WSABIE, linear sigmoid on the whole score) and "
               "those whose G is one number per example and label, built from the training set (AWE k-NN as "
               "above, RBF, cluster, the neighbour vote), their sums with constants, and top-k with a fixed rest; "
               "the TensorFlow step "
               "(`engine=\"graph\"`, the default) trains every affinity under any `tf.distribute` strategy."),
        ("code", """\
import time

for engine in ("graph", "native"):
    began = time.perf_counter()
    result = fit(split.train, ModelConfig(dimension=DIMENSION), TrainConfig(epochs=EPOCHS, verbose=0, engine=engine))
    p1 = evaluate_model(result.model.score, split)["metrics"]["precision@1"]
    print(f"{engine:>6}: {time.perf_counter() - began:5.1f} s to train, test P@1 {p1:.3f}")"""),
        ("code", """\
import matplotlib.pyplot as plt

ks = [1, 3, 5, 10]
for name, metrics in scores.items():
    plt.plot(ks, [metrics[f"precision@{k}"] for k in ks], marker="o", label=name)
plt.xlabel("k")
plt.ylabel("precision@k")
plt.title("Corel5k test")
plt.legend()
plt.show()"""),
        ("code", """\
ids, _ = awe.model.top_k(split.test.X[:5], k=5)
names = split.train.label_names
for predicted, truth in zip(ids, split.test.Y[:5], strict=True):
    print("predicted:", [names[i] for i in predicted])
    print("   actual:", [names[i] for i in truth.indices])"""),
    ],
    "02_annotation_reproduction.ipynb": [
        ("md", "# The paper's annotation tables (Tables 1 and 2)\n\nk-NN, k-NN in WSABIE's embedding space, "
               "WSABIE and AWE with the k-NN affinity (k = 20, 3 iterative steps) on the Mulan data sets; "
               "P@1 and P@3 on the protocol's test parts. Corel5k is bundled; the other sets are read from "
               "`AWE_DATA_DIR`, a folder holding the Mulan downloads as published, a folder each, named "
               "as the data set in lower case: `mulan/cal500/` (`CAL500.arff` and `CAL500.xml`), "
               "`mulan/emotions/` (`emotions-train.arff`, `emotions-test.arff`, `emotions.xml`), "
               "`mulan/scene/` likewise (`awe-tf datasets` lists what it finds, and says why it passes over "
               "a folder). In Colab, where `AWE_DATA_DIR` is unset, only "
               "Corel5k runs: upload the Mulan "
               "files (from the Mulan project's data sets page) into such a folder and set "
               "`os.environ[\"AWE_DATA_DIR\"]` to it before the cells below. The README's table was measured "
               "at initial scale 1 (`INIT_SCALE` below); the "
               "library's default is 0.1. The four sets take two to three minutes on two CPU cores (the README's "
               "three seeds took five)."),
        ("code", INSTALL),
        ("params", "DATASETS = [\"cal500\", \"corel5k\", \"emotions\", \"scene\"]\nEPOCHS = 30\n"
                   "DIMENSION = 100\nITERATIONS = 3\nINIT_SCALE = 1.0"),
        ("code", """\
import os

from awe_tf import reproduction
from awe_tf.data import list_datasets

available = {d["name"] for d in list_datasets() if d["path"]}
datasets = [d for d in DATASETS if d in available]
print("running on", datasets, "(set AWE_DATA_DIR for the others)" if len(datasets) < len(DATASETS) else "")
settings = {"datasets": datasets, "dimension": DIMENSION, "epochs": EPOCHS, "iterations": ITERATIONS,
            "init_scale": INIT_SCALE}
rows = reproduction.annotation(**settings)
paths = reproduction.write_report("annotation", rows, "annotation", {**settings, "seeds": [0]})
print(open(os.path.join("annotation", "results.md")).read())"""),
        ("code", """\
from IPython.display import Image, display

display(Image(filename="annotation/annotation_precision_at_1.png"))
display(Image(filename="annotation/annotation_precision_at_3.png"))"""),
    ],
    "03_recommendation_reproduction.ipynb": [
        ("md", "# The paper's recommendation table (Table 3) on MovieLens 100K\n\nSVD, WSABIE, AWE linear "
               "sigmoid over beta (alpha = 1) and AWE top-k over k, each k twice: as eq. 7 (the terms outside "
               "the k count 0) and with that 0 learnt (`rest learnt`, starting at WSABIE's ranking); P@1 and "
               "P@10 as changes against WSABIE. Each AWE model starts from the trained WSABIE, as the paper's "
               "Table 3 did. About 15 minutes on two CPU cores at these settings. MovieLens is downloaded "
               "from GroupLens when `AWE_DATA_DIR` does not hold it."),
        ("code", INSTALL),
        ("params", "EPOCHS = 30\nDIMENSION = 64\nBETAS = [-1, -0.5, 0, 0.25, 0.5]\nKS = [1, 5, 7, 11]\n"
                   "RESTS = [0.0, \"learn\"]"),
        ("code", """\
import io
import os
import urllib.request
import zipfile
from pathlib import Path

here = Path("data").resolve()
given = os.environ.get("AWE_DATA_DIR")
if not (given and (Path(given) / "ml-100k" / "u.data").exists()):  # AWE_DATA_DIR does not hold it
    if not (here / "ml-100k" / "u.data").exists():  # nor ./data, downloaded before a restart
        with urllib.request.urlopen("https://files.grouplens.org/datasets/movielens/ml-100k.zip") as response:
            zipfile.ZipFile(io.BytesIO(response.read())).extractall(here)
    os.environ["AWE_DATA_DIR"] = str(here)"""),
        ("code", """\
from awe_tf import reproduction

settings = {"dimension": DIMENSION, "epochs": EPOCHS, "betas": BETAS, "top_ks": KS, "top_k_rests": RESTS}
rows = reproduction.recommendation(**settings)
reproduction.write_report("recommendation", rows, "recommendation", {**settings, "seeds": [0]})
print(open("recommendation/results.md").read())"""),
        ("code", """\
from pathlib import Path

from IPython.display import Image, display

for plot in ("recommendation_beta.png", "recommendation_k.png"):  # a sweep left empty (BETAS or KS = []) has none
    if (Path("recommendation") / plot).exists():
        display(Image(filename=f"recommendation/{plot}"))"""),
    ],
    "04_tuning.ipynb": [
        ("md", "# Tuning an affinity with KerasTuner\n\nSearch the linear-sigmoid affinity's alpha and beta with "
               "the learning rate, margin, dimension and number of negatives. Trials are scored on the protocol's "
               "validation carve-out of the "
               "training part; the test part is never used in the search. The search lives in `tuning/`: run "
               "again, it resumes there (a larger `TRIALS` adds trials); with other settings it is refused, so "
               "change `PROJECT` (or delete the folder) to start another. The Bayesian oracle draws half its "
               "trials at random before its Gaussian process proposes the rest."),
        ("code", INSTALL),
        ("params", "TRIALS = 10\nEPOCHS = 10\nORACLE = \"bayesian\"\nPROJECT = \"corel5k-linear-sigmoid\""),
        ("code", """\
from awe_tf.data import load_dataset
from awe_tf.tuning import make_tuner

split = load_dataset("corel5k")
tuner = make_tuner(ORACLE, split.train, "linear-sigmoid", directory="tuning", project_name=f"{PROJECT}-{ORACLE}",
                   max_trials=TRIALS, max_epochs=EPOCHS)
tuner.search()
best = tuner.best(data_flags=["--dataset", "corel5k"])
best"""),
        ("code", """\
import matplotlib.pyplot as plt

trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
points = plt.scatter([t.hyperparameters.get("affinity.beta") for t in trials], [t.score for t in trials],
                     c=[t.hyperparameters.get("affinity.alpha") for t in trials], cmap="viridis")
plt.colorbar(points, label="alpha")
plt.xlabel("beta")
plt.ylabel("validation precision@1")
plt.title("Linear sigmoid trials (each also searched d, learning rate, margin, negatives)")
plt.show()"""),
        ("code", "print(best[\"command\"])  # trains the best trial as it was trained"),
    ],
    "05_export_and_serving.ipynb": [
        ("md", "# Export for TF Serving\n\nExport a trained model in both flavours, audit the ops each needs, "
               "load the portable export in this process (the graph stock TF Serving runs; the ScaNN one "
               "loads the same way where ScaNN's ops are imported), and build the REST request TF Serving "
               "takes."),
        ("code", INSTALL),
        ("params", "EPOCHS = 10"),
        ("code", """\
import json

from awe_tf import serving
from awe_tf.data import load_dataset
from awe_tf.training import ModelConfig, TrainConfig, fit

split = load_dataset("corel5k")
model = fit(split.train, ModelConfig(dimension=32), TrainConfig(epochs=EPOCHS, verbose=0)).model
paths = {}
for flavour in serving.FLAVOURS:
    paths[flavour] = serving.export(model, "models", f"corel-{flavour}", flavour=flavour,
                                    queries=split.test.X[:200])"""),
        ("code", "print(serving.report(paths[\"portable\"]))\nprint(serving.custom_ops(paths[\"scann\"]))"),
        ("code", """\
served = serving.load("models/corel-portable")  # the newest version
served(split.test.X[:3], k=5)["labels"]"""),
        ("code", """\
# A REST request for TF Serving: stock TF Serving serves the portable flavour (the ScaNN one needs
# TF Serving built with ScaNN's ops: export/Dockerfile)
ids, weights = serving.request_arrays(split.test.X[:2])
inputs = {"feature_ids": ids.tolist(), "feature_weights": weights.tolist(), "k": 5}
with open("request.json", "w") as out:
    json.dump({"signature_name": "serving_default", "inputs": inputs}, out)
print('docker run -p 8501:8501 -v "$PWD/models/corel-portable:/models/corel-portable" '
      '-e MODEL_NAME=corel-portable tensorflow/serving:2.20.0')
print("curl -d @request.json http://localhost:8501/v1/models/corel-portable:predict")"""),
    ],
    "06_tpu_and_distributed.ipynb": [
        ("md", "# TPU and distributed training\n\nOn a Colab TPU runtime `make_strategy('auto')` connects to "
               "the TPU; elsewhere it falls back to the GPUs, then to the CPU. Under a TPUStrategy `fit` feeds "
               "the tensor-only input pipeline with one static batch shape (a multiple of the cores) and trains "
               "U and V as replicated variables.\n\n**What has run where:** this notebook's TPU path targets "
               "TensorFlow 2.20's TPU build (`tensorflow-tpu` with `libtpu`) on Colab TPU runtimes and Cloud TPU "
               "VMs, and has never run on a TPU: the project has none. Where the runtime's TensorFlow is "
               "the TPU build 2.20 (`tensorflow-tpu`), the install cell keeps it: awe-tf, `tf-keras` and "
               "`tensorflow-recommenders` go in without their dependencies, which name plain TensorFlow. Where "
               "it is another version, or plain TensorFlow, install `tensorflow-tpu~=2.20.0` (with `libtpu`) "
               "first. "
               "`make_strategy` prints why it found no TPU. Colab's TPU runtimes are TPU VMs (TPU chips "
               "attached to the machine the notebook runs on), where TensorFlow's own lookup asks for a TPU's "
               "name: on a machine that looks like one (`/dev/accel*` or VFIO devices) `make_strategy` asks for "
               "its own TPU, `tpu='local'`, first. Its choices are "
               "exercised on a CPU by "
               "`tests/test_tpu_path.py`. No GPU has run it either; `benchmarks/accelerator.py` is the "
               "prepared GPU check. On a CPU or GPU runtime the same cells run as they are."),
        ("code", TPU_INSTALL),
        ("params", "EPOCHS = 10"),
        ("code", """\
from awe_tf.distribute import is_default_strategy
from awe_tf.training.strategies import make_strategy

strategy = make_strategy("auto", log=print)  # says why, when it finds no TPU
chosen = "the default strategy (one device)" if is_default_strategy(strategy) else type(strategy).__name__
print(chosen + ",", strategy.num_replicas_in_sync, "replica(s)")"""),
        ("code", """\
from awe_tf.data import load_dataset
from awe_tf.distribute import is_tpu
from awe_tf.evaluation import evaluate_model
from awe_tf.training import ModelConfig, TrainConfig, fit

split = load_dataset("corel5k")
# Each call into the compiled step has a fixed cost, on a TPU most of all: run more steps per
# call there than the default. (fit gives a TPU the one static batch shape it needs by itself.)
config = TrainConfig(epochs=EPOCHS, verbose=2, **({"steps_per_execution": 32} if is_tpu(strategy) else {}))
result = fit(split.train, ModelConfig(dimension=100), config, strategy=strategy)
evaluate_model(result.model.score, split)["metrics"]"""),
        ("md", "`ModelConfig(tpu_embedding=True)` (TensorFlow's TPU embedding engine) is refused under a "
               "TPUStrategy: the engine takes ids only as direct inputs of the step, while WARP samples V's "
               "ids inside it, and its host copy of the tables is stale during training. Tables too large to "
               "replicate on every TPU core are a limit of the TPU path today (see the README)."),
    ],
}

def build(directory: Path = HERE) -> list[Path]:
    written = []
    for name, cells in NOTEBOOKS.items():
        book = nbformat.v4.new_notebook()
        book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        book.metadata["colab"] = {"provenance": []}
        for kind, source in cells:
            if kind == "md":
                book.cells.append(nbformat.v4.new_markdown_cell(source))
            else:
                cell = nbformat.v4.new_code_cell(source)
                if kind == "params":
                    cell.metadata["tags"] = ["parameters"]
                book.cells.append(cell)
        for number, cell in enumerate(book.cells):  # stable ids: rebuilding changes only what changed
            cell.id = f"cell-{number:02d}"
        path = directory / name
        nbformat.write(book, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build():
        print(path)
