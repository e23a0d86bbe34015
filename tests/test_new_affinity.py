"""Adding an affinity is one file: this one defines two small affinities here and nowhere else
(one learnt with U and V, one built from the training set), and they train (from Python and the
command line), tune, save, load and export like the others."""

import json

import numpy as np
import pytest
import tensorflow as tf

from awe_tf import cli, serving
from awe_tf.affinities import REGISTRY, Affinity, ReferenceAffinity, pair_queries, register, stored_variable
from awe_tf.data import load_dataset
from awe_tf.evaluation import baseline_scores, evaluate_model
from awe_tf.models import AWEModel
from awe_tf.training import ModelConfig, TrainConfig, fit, fit_iterative
from awe_tf.tuning import make_tuner, space


@register("learnt-scale", space={"init": ("float", 0.25, 2.0)}, short="init")
class LearntScale(Affinity):
    """G_ij(x, y) = s, one scalar learnt jointly with U and V: WSABIE whose score scale (the
    inverse of its margin) is learnt. f(x, y) = s x^T U^T V y.

    Args:
        init: the starting value of s.
    """

    def __init__(self, init: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = float(init)

    def attach(self, n_inputs: int, n_labels: int, input_bias: bool = False) -> None:
        self.s = self.add_weight(name="s", shape=(), initializer=tf.keras.initializers.Constant(self.init))

    def pair_inputs(self, features, weights, self_position, context=None, feature_ids=None):
        return self.s * pair_queries(features, weights, self_position)

    def pair_scores(self, pair_inputs, labels, label_ids=None):
        return tf.linalg.matvec(labels, pair_inputs)

    def score_all(self, features, weights, labels, context=None, feature_ids=None):
        return tf.matmul(self.s * tf.reduce_sum(features * weights[..., None], axis=1), labels, transpose_b=True)

    def get_config(self):
        return {**super().get_config(), "init": self.init}


@register("label-cosine", space={"m": ("int", 1, 8)}, short="m")
class LabelCosine(ReferenceAffinity):
    """G(x, y) = max(0, cos(x^T U_prev, V_prev y)) for the m labels nearest x in the earlier model's
    space, 0 for the others: built from an earlier model, so learnt iteratively. What
    ``set_reference`` computes is kept in a variable made in ``__init__``, which a saved model has.

    Args:
        m: the labels each input gives a G weight.
    """

    def __init__(self, m: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.m = int(m)
        self.label_rows = stored_variable("label_rows", [0, 0])  # V_prev's rows at unit length

    def set_reference(self, latent_U, train_X, train_Y, input_bias, label_embeddings=None):
        super().set_reference(latent_U, train_X, train_Y, input_bias, label_embeddings)
        norms = np.maximum(np.linalg.norm(label_embeddings, axis=1, keepdims=True), 1e-12)
        self.label_rows.assign((label_embeddings / norms).astype(np.float32))

    def rows_of(self, raw, Z, exclude=None, neighbours=None):
        cosine = tf.matmul(tf.math.l2_normalize(Z, -1), self.label_rows, transpose_b=True)  # [b, |Y|]
        values, ids = tf.math.top_k(cosine, self.m)
        order = tf.argsort(ids, axis=1)  # ids in ascending order
        return tf.gather(ids, order, batch_dims=1), tf.maximum(tf.gather(values, order, batch_dims=1), 0.0)

    def get_config(self):
        return {**super().get_config(), "m": self.m}


@pytest.fixture(scope="module")
def corel():
    yield load_dataset("corel5k")
    for name in ("learnt-scale", "label-cosine"):  # the test modules that run after this one see only the built-in ones
        REGISTRY.pop(name, None)


def test_a_new_affinity_trains_saves_loads_and_exports(corel, tmp_path):
    result = fit(corel.train, ModelConfig(dimension=16, num_negatives=10, affinity="learnt-scale:0.5"),
                 TrainConfig(epochs=3, verbose=0))
    model = result.model
    assert isinstance(model.affinity, LearntScale) and float(model.affinity.s) != 0.5  # learnt with U and V
    metrics = evaluate_model(model.score, corel)["metrics"]
    assert metrics["precision@1"] > baseline_scores(corel)["popularity"]["precision@1"] + 0.03
    again = AWEModel.load_model(model.save_model(tmp_path / "model"))
    assert float(again.affinity.s) == float(model.affinity.s)
    np.testing.assert_array_equal(again.score(corel.test.X[:50]), model.score(corel.test.X[:50]))
    ids, _ = model.top_k(corel.test.X[:50], 10)
    for flavour in serving.FLAVOURS:
        served = serving.load(serving.export(again, tmp_path / "exports", flavour, flavour=flavour, log=None))
        np.testing.assert_array_equal(served(corel.test.X[:50], k=10)["label_ids"], ids)


def test_an_affinity_built_from_the_training_set_trains_iteratively_saves_loads_and_exports(corel, tmp_path):
    final, steps = fit_iterative(corel.train, ModelConfig(dimension=16, num_negatives=10, affinity="label-cosine:m=5"),
                                 TrainConfig(epochs=3, verbose=0), iterations=1)
    model = final.model
    assert len(steps) == 2 and model.affinity.label_rows.numpy().shape == model.V.table.shape  # G built from step 0's V
    metrics = evaluate_model(model.score, corel)["metrics"]
    assert metrics["precision@1"] > baseline_scores(corel)["popularity"]["precision@1"] + 0.03
    again = AWEModel.load_model(model.save_model(tmp_path / "model"))  # G's state with it, set_reference not called
    np.testing.assert_array_equal(again.score(corel.test.X[:50]), model.score(corel.test.X[:50]))
    ids, _ = model.top_k(corel.test.X[:50], 10)
    served = serving.load(serving.export(again, tmp_path / "exports", "portable", flavour="portable", log=None))
    np.testing.assert_array_equal(served(corel.test.X[:50], k=10)["label_ids"], ids)


def test_an_affinity_built_from_the_training_set_is_checked_before_training(corel, tmp_path):
    """The mistakes an affinity built from the training set can make, each named before the linear
    step trains: state kept outside variables (a saved model would load without it), G rows of
    another form, a Python branch on a tensor or a tensor's value read in rows_of (which scoring
    and the exports trace into a graph)."""

    class KeptOutside(LabelCosine):
        def set_reference(self, latent_U, train_X, train_Y, input_bias, label_embeddings=None):
            super().set_reference(latent_U, train_X, train_Y, input_bias, label_embeddings)
            self.table = self.label_rows.numpy()  # a plain attribute: not saved

    class KeptPrivately(LabelCosine):
        def set_reference(self, latent_U, train_X, train_Y, input_bias, label_embeddings=None):
            super().set_reference(latent_U, train_X, train_Y, input_bias, label_embeddings)
            self._rows = float(train_Y.shape[0])  # a private attribute is not saved either

    class Dense(LabelCosine):
        def rows_of(self, raw, Z, exclude=None, neighbours=None):
            return tf.matmul(Z, self.label_rows, transpose_b=True)  # [b, |Y|] alone

    class Branching(LabelCosine):
        def rows_of(self, raw, Z, exclude=None, neighbours=None):
            if tf.reduce_max(Z) > 0:
                return super().rows_of(raw, Z, exclude, neighbours)
            return super().rows_of(raw, -Z, exclude, neighbours)

    class ValueRead(LabelCosine):
        def rows_of(self, raw, Z, exclude=None, neighbours=None):
            return super().rows_of(raw, tf.constant(Z.numpy()), exclude, neighbours)

    refused = {KeptOutside: r"KeptOutside.set_reference sets table, which a saved model would not have: .*"
                            r"stored_variable",
               KeptPrivately: r"KeptPrivately.set_reference sets _rows, which a saved model would not have",
               Dense: r"Dense.rows_of returns \(ids \[b, T\] int, weights \[b, T\] float\).*; for 2 rows it "
                      r"returned one float32 \[2, 374\]",
               Branching: r"Branching: a Python if .* as scoring and the exports trace rows_of: branch with tf.cond",
               ValueRead: r"ValueRead: scoring two training rows failed \(G built from the untrained model on 1000 "
                          r"training rows, before training\), as the scoring graph traces rows_of \(a tensor has no "
                          r"value while a graph is traced"}
    for kind, said in refused.items():
        name = kind.__name__.lower()
        register(name)(kind)
        try:
            with pytest.raises(ValueError, match=said):
                fit_iterative(corel.train, ModelConfig(dimension=4, num_negatives=3, affinity=name),
                              TrainConfig(epochs=1, verbose=0), iterations=1, output_dir=tmp_path / name)
        finally:
            REGISTRY.pop(name, None)
        assert not (tmp_path / name / "step-0").exists()  # nothing trained


def test_a_new_affinity_is_tuned_and_named_on_the_command_line(corel, tmp_path, capsys):
    from awe_tf.tuning.spaces import unsearched_note

    assert space("learnt-scale")["affinity.init"] == ("float", 0.25, 2.0)
    assert unsearched_note(REGISTRY["learnt-scale"]) is None and unsearched_note(REGISTRY["knn"]) is None
    register("unsearched-scale")(type("UnsearchedScale", (LearntScale,), {}))
    try:  # registered without space=: tune says its settings stay at their defaults
        assert unsearched_note(REGISTRY["unsearched-scale"]).startswith(
            "note: unsearched-scale registers no search space for its settings (init): they stay at their defaults")
    finally:
        REGISTRY.pop("unsearched-scale", None)
    for name in ("my:scale", "my+scale", "", "my scale"):  # no spec could name it
        with pytest.raises(ValueError, match="an affinity's name is text without"):
            register(name)
    tuner = make_tuner("random", corel.train, "learnt-scale", directory=tmp_path / "tuning", max_trials=1,
                       model_config=ModelConfig(dimension=8, num_negatives=5), train_config=TrainConfig(epochs=1),
                       search_space=space("learnt-scale", include_common=False))  # the small model held fixed
    tuner.search()
    best = tuner.best()
    assert best["affinity"].startswith("learnt-scale:init=") and 0 < best["score"] <= 1
    assert cli.main(["affinities"]) == 0 and "learnt-scale" in capsys.readouterr().out
    out = tmp_path / "run"
    assert cli.main(["train", "--affinity", "learnt-scale:init=0.8", "--epochs", "1", "--no-validate",
                     "--no-baselines", "--dimension", "8", "--negatives", "5", "--verbose", "0", "-o", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["model_config"]["affinity"] == "learnt-scale:init=0.8"


def test_a_new_affinity_is_used_from_the_shell(tmp_path):
    """`awe-tf --import MODULE` makes an affinity of one's own known to the installed command."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent  # the module is tests.test_new_affinity, from here
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(root)}
    out = tmp_path / "run"
    run = [sys.executable, "-m", "awe_tf.cli"]
    train = subprocess.run([*run, "--import", "tests.test_new_affinity", "train", "--affinity", "learnt-scale",
                            "--epochs", "1", "--no-validate", "--no-baselines", "--dimension", "8", "--negatives", "5",
                            "--verbose", "0", "-o", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    known = subprocess.run([*run, "evaluate", str(out / "model")], capture_output=True, text=True, env=env,
                           timeout=600)  # the saved model names its affinity's module, which Keras imports
    assert known.returncode == 0 and "precision@1" in known.stdout, known.stderr[-2000:]
    elsewhere = {key: value for key, value in env.items() if key != "PYTHONPATH"}
    unknown = subprocess.run([*run, "evaluate", str(out / "model")], capture_output=True, text=True, env=elsewhere,
                             cwd=tmp_path, timeout=600)  # where that module cannot be imported: say what to do
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "import tests.test_new_affinity first (awe-tf --import tests.test_new_affinity" in unknown.stderr


def test_a_model_of_an_affinity_defined_in_main_says_how_to_load_it(tmp_path):
    """A model whose affinity class was defined in a script run as the main program (a notebook's
    cells too) names no module: loading it elsewhere says to define the class again, and loading
    it once the class is defined works."""
    import subprocess
    import sys
    from pathlib import Path

    source = Path(__file__).read_text().split("@register(")[1].split("\n\n\n")[0]
    source = source.replace('"learnt-scale"', '"main-scale"').replace("LearntScale", "MainScale")
    script = tmp_path / "script.py"
    script.write_text("import sys\nimport tensorflow as tf\nfrom awe_tf.affinities import Affinity, pair_queries, "
                      "register\nfrom awe_tf.models import AWEModel\n\n@register(" + source + "\n\n"
                      "AWEModel(5, 4, dimension=4, affinity='main-scale:init=0.5').save_model(sys.argv[1])\n")
    saved = subprocess.run([sys.executable, str(script), str(tmp_path / "model")], capture_output=True, text=True,
                           timeout=300)
    assert saved.returncode == 0, saved.stderr[-2000:]
    with pytest.raises(ValueError, match="MainScale: the model names no module.*__main__.*define the class again"):
        AWEModel.load_model(tmp_path / "model")
    namespace = {}
    exec(compile(script.read_text().rsplit("\n\n", 1)[0], str(script), "exec"), namespace)  # the class, defined
    try:
        assert AWEModel.load_model(tmp_path / "model").affinity.init == 0.5
    finally:
        REGISTRY.pop("main-scale", None)


def test_import_takes_a_module_in_the_current_folder_or_a_file_and_tune_names_it(tmp_path, corel):
    """`awe-tf --import mymodule` run where mymodule.py is (the README's way) finds it, as `python -m`
    would; a .py file's path works from anywhere; the command tune prints imports it too."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "mine").mkdir()
    source = Path(__file__).read_text().split("@register(")[1].split("\n\n\n")[0]
    (tmp_path / "mine" / "myaffinity.py").write_text(
        "import tensorflow as tf\nfrom awe_tf.affinities import Affinity, pair_queries, register\n\n"
        "@register(" + source.replace('"learnt-scale"', '"my-scale"').replace("LearntScale", "MyScale") + "\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(root)}  # this checkout's awe_tf, not mine/
    run = [str(Path(sys.executable).parent / "awe-tf")]  # the installed command (python -m would add the folder)
    if not Path(run[0]).exists():
        pytest.skip("no installed awe-tf command beside this Python")
    for where, module in ((tmp_path / "mine", "myaffinity"), (tmp_path, "mine/myaffinity.py")):
        listed = subprocess.run([*run, "--import", module, "affinities"], capture_output=True, text=True, env=env,
                                cwd=where, timeout=300)
        assert listed.returncode == 0 and "my-scale" in listed.stdout, (module, listed.stderr[-2000:])
    (tmp_path / "mine" / "json.py").write_text("")  # named as an installed module, which --import would find
    (tmp_path / "mine" / "unclosed.py").write_text("x = (\n")
    (tmp_path / "mine" / "raising.py").write_text("import os\n\nundefined_name + 1\n")
    (tmp_path / "mine" / "calling.py").write_text("import json\n\njson.loads('{bad')\n")  # raised in a library
    for command, said in ((["--import", "nosuch.py", "affinities"], "no such Python file"),
                          (["--import", "unclosed.py", "affinities"], "--import unclosed.py failed: SyntaxError: '(' "
                           f"was never closed ({tmp_path / 'mine' / 'unclosed.py'}, line 1)"),
                          (["--import", "raising", "affinities"], "--import raising failed: NameError: name "
                           f"'undefined_name' is not defined ({tmp_path / 'mine' / 'raising.py'}, line 3: "
                           "undefined_name + 1)"),
                          (["--import", "calling.py", "affinities"], "--import calling.py failed: JSONDecodeError: "
                           "Expecting property name enclosed in double quotes: line 1 column 2 (char 1) "
                           f"({tmp_path / 'mine' / 'calling.py'}, line 3: json.loads('{{bad'))"),
                          (["--import", ".myaffinity", "affinities"], "give a module name"),
                          (["affinities", "--import", "myaffinity"], "--import goes before the command"),
                          (["--import", "json", "affinities"], "an installed module of that name, not")):
        refused = subprocess.run([*run, *command], capture_output=True, text=True, env=env, cwd=tmp_path / "mine",
                                 timeout=300)
        assert refused.returncode == 2 and said in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    tuner = make_tuner("random", corel.train, "learnt-scale", directory=tmp_path / "tuning", max_trials=1,
                       model_config=ModelConfig(dimension=8, num_negatives=5), train_config=TrainConfig(epochs=1),
                       search_space=space("learnt-scale", include_common=False))  # the small model held fixed
    tuner.search()
    assert tuner.best(data_flags=[])["command"].startswith("awe-tf --import tests.test_new_affinity train ")


def test_tune_names_a_module_of_the_current_folder_by_its_path_so_its_command_runs_anywhere(tmp_path, monkeypatch):
    """`awe-tf --import mymodule tune ...` prints a train command whose --import is the file's
    absolute path (imported under the same name, which a saved model records); a path is made
    absolute; an installed or dotted module stays as given."""
    import importlib
    import os
    import sys

    from awe_tf.cli.common import import_anywhere

    (tmp_path / "anywhere_affinity.py").write_text("SEEN = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("anywhere_affinity")
        mine = str((tmp_path / "anywhere_affinity.py").resolve())
        assert import_anywhere("anywhere_affinity") == mine
        assert import_anywhere("./anywhere_affinity.py") == os.path.abspath("anywhere_affinity.py")
        assert import_anywhere("json") == "json"  # installed
        assert import_anywhere("tests.test_new_affinity") == "tests.test_new_affinity"  # dotted
    finally:
        sys.modules.pop("anywhere_affinity", None)


def test_a_python_branch_on_a_tensor_is_named_in_one_line(capsys, tmp_path):
    """The README warns that hooks branch with tf.cond or tf.where; a hook that uses a Python if on a
    tensor stops the command with that advice in one line, naming the if's file, line and hook:
    score_all (scoring, traced as Keras calls the model) and pair_scores (traced in the training
    step's tf.function, whose error holds the stack as text)."""
    import inspect

    @register("branching-scale")
    class BranchingScale(LearntScale):
        def score_all(self, features, weights, labels, context=None, feature_ids=None):
            if tf.reduce_sum(weights) > 0:
                return super().score_all(features, weights, labels, context, feature_ids)
            return tf.zeros([tf.shape(features)[0], tf.shape(labels)[0]])

    @register("branching-pairs")
    class BranchingPairs(LearntScale):
        def pair_scores(self, pair_inputs, labels, label_ids=None):
            if tf.reduce_all(tf.math.is_finite(pair_inputs)):  # so when checked eagerly before training
                return super().pair_scores(pair_inputs, labels, label_ids)
            return tf.zeros(tf.shape(labels)[:-1])

    try:
        for name, hook, condition in (("branching-scale", BranchingScale.score_all, "tf.reduce_sum(weights) > 0"),
                                      ("branching-pairs", BranchingPairs.pair_scores,
                                       "tf.reduce_all(tf.math.is_finite(pair_inputs))")):
            line = inspect.getsourcelines(hook)[1] + 1  # the if's
            code = cli.main(["train", "--affinity", name, "--epochs", "1", "--no-baselines", "--dimension", "4",
                             "--negatives", "3", "--verbose", "0", "-o", str(tmp_path / name)])
            error = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(error) == 1 and "tf.cond or tf.where" in error[0], error
            assert f"({__file__}, line {line}, in {hook.__name__}: if {condition}:" in error[0], error
    finally:
        REGISTRY.pop("branching-scale", None)
        REGISTRY.pop("branching-pairs", None)


def test_a_score_all_of_the_wrong_shape_is_named_before_training(corel):
    """A score_all returning [B, L, |Y|] (each feature's term, not their sum) is named, hook and
    shape, before training starts."""

    @register("per-term-scale")
    class PerTermScale(LearntScale):
        def score_all(self, features, weights, labels, context=None, feature_ids=None):
            return tf.einsum("bld,nd->bln", self.s * features * weights[..., None], labels)

    try:
        with pytest.raises(ValueError, match=r"PerTermScale: scoring two training rows failed before training, in "
                                             r"score_all \(which returns \[batch, \|Y\|\] scores\)"):
            fit(corel.train, ModelConfig(dimension=4, num_negatives=3, affinity="per-term-scale"),
                TrainConfig(epochs=1, verbose=0))
    finally:
        REGISTRY.pop("per-term-scale", None)
    fit(corel.train, ModelConfig(dimension=4, num_negatives=3, affinity="learnt-scale"),
        TrainConfig(epochs=1, verbose=0))  # a right one passes the check


def test_a_get_config_that_leaves_out_a_setting_is_refused_before_training(corel):
    """A config without one of __init__'s arguments would load another G from a saved model
    (the argument's default), scoring otherwise: fit names the argument before any training. The
    built-in affinities' configs hold every argument."""
    from awe_tf.affinities import parse
    from awe_tf.affinities.base import unsaved_settings

    @register("forgetful-scale")
    class ForgetfulScale(LearntScale):
        def get_config(self):
            return Affinity.get_config(self)  # init left out: a loaded model would start it at 1

    try:
        with pytest.raises(ValueError, match=r"ForgetfulScale.get_config\(\) leaves out init: a saved model would "
                                             "rebuild G with their defaults"):
            fit(corel.train, ModelConfig(dimension=4, num_negatives=3, affinity="forgetful-scale:init=0.5"),
                TrainConfig(epochs=1, verbose=0))
    finally:
        REGISTRY.pop("forgetful-scale", None)
    assert unsaved_settings(LearntScale(0.5)) == []

    class Recorded(Affinity):  # no get_config of its own: Keras records the arguments given
        def __init__(self, c: float = 1.0, k: int = 3, **kwargs):
            super().__init__(**kwargs)
            self.c, self.k = c, k

    class Plain(Affinity):  # no constructor of its own
        pass

    class Mapped(Recorded):  # its own from_config maps its config back
        def get_config(self):
            return {**Affinity.get_config(self), "scale": self.c}

        @classmethod
        def from_config(cls, config):
            return cls(c=config.pop("scale"), **config)

    assert unsaved_settings(Recorded(2.0)) == unsaved_settings(Plain()) == unsaved_settings(Mapped(2.0)) == []
    for name in [n for n in REGISTRY if n not in ("learnt-scale",)]:
        assert unsaved_settings(parse(name)) == [], name
    assert unsaved_settings(parse("constant:0.3+knn:k=20")) == []


def test_hooks_that_disagree_or_return_other_shapes_are_named_before_training(corel):
    """The training step scores pairs with pair_scores, ranking and the exports with score_all: a
    score_all of another shape ([B, 1], which scoring wrote into a part of each row, leaving the
    rest unset), a pair_scores of another shape, or the two scoring a row's labels otherwise, are
    named before training; a model built directly refuses score_all's shape when it scores."""

    class OneColumn(LearntScale):
        def score_all(self, features, weights, labels, context=None, feature_ids=None):
            return super().score_all(features, weights, labels, context, feature_ids)[:, :1]

    class OneRow(LearntScale):  # [1, |Y|]: its batch size is not known as the graph is traced
        def score_all(self, features, weights, labels, context=None, feature_ids=None):
            return super().score_all(features, weights, labels, context, feature_ids)[:1]

    class Negated(LearntScale):
        def score_all(self, features, weights, labels, context=None, feature_ids=None):
            return -super().score_all(features, weights, labels, context, feature_ids)

    class Flat(LearntScale):
        def pair_scores(self, pair_inputs, labels, label_ids=None):
            return super().pair_scores(pair_inputs, labels, label_ids)[..., :1]

    config = ModelConfig(dimension=4, num_negatives=3)
    for affinity, said in ((OneColumn(), r"score_all .which returns \[batch, \|Y\|\] scores.: ValueError: "
                                         r"OneColumn.score_all returned scores of shape \[None, 1\]"),
                           (Negated(), "pair_scores and score_all score the same row and label otherwise"),
                           (Flat(), r"pair_scores returns \[B, M, N\] scores .* got \[2, 1, 1\]")):
        model = AWEModel(corel.train.n_features, corel.train.n_labels, dimension=4, affinity=affinity)
        with pytest.raises(ValueError, match=said):
            fit(corel.train, config, TrainConfig(epochs=1, verbose=0), model=model)
    model = AWEModel(corel.train.n_features, corel.train.n_labels, dimension=4, affinity=OneRow())
    model.adapt(corel.train)
    with pytest.raises(ValueError, match=r"OneRow.score_all returned scores of shape \[1, 374\] for a batch of 3 rows"):
        model.score(corel.test.X[:3])


def test_a_model_refuses_an_affinity_a_saved_model_could_not_rebuild_as_it_is():
    """As it is built, not only in fit: a get_config that leaves out a setting (a subclass in any
    module, awe_tf's included), a constructor that cannot take its config back, a config that is not
    plain data; a class without get_config of its own records every setting, defaults included, and
    the same class defined again (a module reloaded) registers again under its name."""
    from awe_tf.affinities import get, serialize, spec_of

    class Forgetful(LearntScale):
        def get_config(self):
            return Affinity.get_config(self)

    class NoKeywords(LearntScale):
        def __init__(self, init: float = 1.0):
            super().__init__(init)

    class TensorInConfig(LearntScale):
        def get_config(self):
            return {**super().get_config(), "init": tf.constant(self.init)}

    Forgetful.__module__ = "awe_tf.affinities.mine"  # a file added to awe_tf/affinities/ is checked too
    for affinity, said in ((Forgetful(0.5), r"Forgetful.get_config\(\) leaves out init"),
                           (NoKeywords(), r"NoKeywords: its config does not rebuild it, as loading a saved model "
                                          r"would not: TypeError: .*unexpected keyword argument"),
                           (TensorInConfig(), r"TensorInConfig: its config does not rebuild it.*TypeError: float\(\)")):
        with pytest.raises(ValueError, match=said):
            AWEModel(5, 4, dimension=4, affinity=affinity)

    def define():
        @register("gentle-scale")
        class GentleScale(LearntScale):  # no get_config of its own: Keras records its arguments
            def __init__(self, init: float = 1.0, damping: float = 0.5, **kwargs):
                super().__init__(init, **kwargs)
                self.damping = damping

            get_config = Affinity.get_config

        return GentleScale

    @register("initialised-scale")
    class Initialised(LearntScale):  # a Keras object in its config: saved and rebuilt by Keras' serialisation
        def __init__(self, init: float = 1.0, start=None, **kwargs):
            super().__init__(init, **kwargs)
            self.start = tf.keras.initializers.get(start or {"class_name": "RandomNormal",
                                                              "config": {"stddev": 0.1}})

        def get_config(self):
            return {**super().get_config(), "start": tf.keras.initializers.serialize(self.start)}

    model = AWEModel(5, 4, dimension=4, affinity=Initialised())
    assert AWEModel.from_config(json.loads(json.dumps(model.get_config()))).affinity.start.stddev == 0.1
    REGISTRY.pop("initialised-scale")
    loaded = {**model.get_config(), "affinity": {**serialize(Forgetful(0.5)), "registered_name": None}}
    with pytest.raises(ValueError, match="cannot rebuild the affinity Forgetful"):  # not "leaves out init"
        AWEModel.from_config(loaded)  # a saved config is rebuilt, not checked: a model saved earlier still loads
    saved_sum = serialize(get("constant:0.3+learnt-scale"))
    saved_sum["config"]["components"][1].update(module="mymodule", registered_name="awe_tf>NotHere")
    with pytest.raises(ValueError, match="cannot rebuild the affinity LearntScale of module mymodule: import "
                                         "mymodule first"):
        get(saved_sum)  # a sum whose part's module is not imported: that part and its module are named

    try:
        first, again = define(), define()  # registered twice: a notebook cell run again
        assert first is not again and REGISTRY["gentle-scale"].factory is again
        assert serialize(again(init=2.0))["config"] == {"trainable": True, "dtype": "float32", "init": 2.0,
                                                        "damping": 0.5}  # the default recorded too
        assert spec_of(again(init=2.0)) == "gentle-scale:damping=0.5,init=2.0"
        saved = serialize(again(damping=0.25))
        assert get(saved).damping == 0.25
        saved["config"]["surprise"] = 1  # a config its class cannot take: the cause is named, not "import it"
        with pytest.raises(ValueError, match=r"cannot rebuild the affinity GentleScale from its saved config: "
                                             r"TypeError: .*surprise"):
            get(saved)
    finally:
        REGISTRY.pop("gentle-scale", None)


def test_a_setting_whose_default_is_none_reads_none_as_none():
    """A setting of one's own defaulting to None reads "none" (any letter case) as None, as the
    built-in settings do, numbers as numbers and other words as text (its class checks them)."""
    from awe_tf.affinities import parse

    @register("capped-scale")
    class CappedScale(LearntScale):
        def __init__(self, init: float = 1.0, cap=None, **kwargs):
            super().__init__(init, **kwargs)
            self.cap = cap

        def get_config(self):
            return {**super().get_config(), "cap": self.cap}

    try:
        assert [parse(f"capped-scale:cap={text}").cap for text in ("none", "None", "2", "0.5", "abc")] == \
            [None, None, 2, 0.5, "abc"]
        with pytest.raises(ValueError, match="'5' after a comma in 'capped-scale:cap=1,5' is no setting: .* a decimal "
                                             r"point \(1.5\)"):
            parse("capped-scale:cap=1,5")
    finally:
        REGISTRY.pop("capped-scale", None)
