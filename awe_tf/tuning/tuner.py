"""KerasTuner searches over AWE models.

KerasTuner 1.4.8 builds Keras 3 models and rejects the tf_keras models TFRS needs, so these
tuners never call ``build()``: each overrides ``run_trial`` (a documented KerasTuner use) to
train the trial's model with :func:`~awe_tf.training.selection.train_model` (iteratively for
k-NN-type affinities) on the protocol's validation carve-out of the *training* part, and returns
the best validation precision@k it reached. The test part is never seen. Oracles: random search,
Bayesian optimisation, Hyperband (whose ``tuner/epochs`` sets the epochs of a trial). The
oracle's state lives in ``<directory>/<project>``: a search run again with the same directory
resumes where it stopped, with the same data and settings (``search.json`` records them), a trial
cut short from its last finished epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import shlex
import shutil
from collections.abc import Collection
from pathlib import Path

from awe_tf.affinities import term_settings
from awe_tf.config import check_engine, check_monitor, check_whole
from awe_tf.data.dataset import Dataset
from awe_tf.data.protocols import default_monitor
from awe_tf.runs import folder_name
from awe_tf.training import ModelConfig, TrainConfig
from awe_tf.training.selection import best_score, checked_validation, is_iterative, train_model
from awe_tf.tuning.spaces import affinity_spec, setting_flags, space, train_flags

ORACLES = ("random", "bayesian", "hyperband")

# Settings left out of the best trial's command: how much a run prints and how it calls the graph
# (not what it learns), and those with rules of their own (the affinity is searched; the seeds and
# the monitored metric).
UNFLAGGED = ("affinity", "seed", "monitor", "verbose", "steps_per_execution")
BEST_FILE = "best.json"
SEARCH_FILE = "search.json"  # the settings a search began with: resumed only with the same
TRIAL_TRAINING = "training"  # in a trial's folder, its checkpoints while it trains (run_trial)


def _fields(config) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(config))


def _keras_tuner():
    from awe_tf.optional import require

    keras_tuner = require("keras_tuner", "hyper-parameter search")
    _no_notebook_outside_ipython()
    return keras_tuner


def _no_notebook_outside_ipython() -> None:
    """KerasTuner 1.4.8 takes a process where IPython is installed but no IPython shell runs
    (``get_ipython()`` is None) for a notebook, and "clears the cell" after each trial by writing
    terminal escape codes into the output, a log file's too. There, set its ``IS_NOTEBOOK`` to
    False."""
    from keras_tuner.src import utils

    if utils.IS_NOTEBOOK:
        from IPython import get_ipython

        if get_ipython() is None:
            utils.IS_NOTEBOOK = False


def hyperparameters(search_space: dict):
    """A KerasTuner search space (``HyperParameters``) declared from a space given as data
    (:mod:`.spaces`)."""
    hp = _keras_tuner().HyperParameters()
    for name, (kind, *args) in search_space.items():
        if kind == "float":
            hp.Float(name, args[0], args[1], sampling="log" if args[2:] == ["log"] else "linear")
        elif kind == "int":
            hp.Int(name, args[0], args[1])
        elif kind == "choice":
            hp.Choice(name, list(args[0]))
        else:
            raise ValueError(f"unknown kind {kind!r} for {name!r}")
    return hp


def check_searchable(affinity: str, model_config: ModelConfig, train_config: TrainConfig) -> None:
    """Refuse, before any work, a search of the family ``affinity`` whose trials could not train
    with these fixed settings: an engine that cannot train the family (``engine="native"`` with
    ``topk``; a :class:`~awe_tf.config.SettingError` naming ``engine``)."""
    check_engine(dataclasses.replace(model_config, affinity=affinity_spec(affinity, {})), train_config)


class _TrialRunner:
    """Mixin for a KerasTuner tuner: trials train AWE models (module docstring)."""

    def __init__(self, train: Dataset, affinity: str = "constant", model_config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None, iterations: int = 1, search_space: dict | None = None,
                 **kwargs):
        self.train_data = train
        self.affinity = affinity
        self.search_space = search_space if search_space is not None else space(affinity)
        unknown = [key for key in self.search_space if not key.startswith("affinity.")
                   and key not in _fields(ModelConfig) + _fields(TrainConfig) or key == "affinity"]
        if unknown:  # a trial could not take it, and the best one's command would name it all the same
            raise ValueError(f"the search space names {', '.join(map(repr, unknown))}: search fields of ModelConfig "
                             "or TrainConfig by name, or an affinity's settings as 'affinity.NAME'")
        fixed = term_settings(affinity)[1]
        both = [key for key in self.search_space if key.startswith("affinity.") and key.split(".", 1)[1] in fixed]
        if both:  # the searched value would win over the one given, without a word
            raise ValueError(f"the search space searches {', '.join(map(repr, both))}, which affinity={affinity!r} "
                             "holds fixed: leave it out of one of them")
        self.base_model = model_config or ModelConfig()
        self.base_train = train_config or TrainConfig()
        held = [f"{kind}.{key}={getattr(config, key)!r}" for kind, config in (("model_config", self.base_model),
                                                                              ("train_config", self.base_train))
                for key in self.search_space if key in _fields(config) and key != "seed"  # make_tuner's seed= too
                and getattr(config, key) != getattr(type(config)(), key)]
        if held:  # the trials would train with the searched values instead, without a word
            raise ValueError(f"{', '.join(held)}: the search space searches {'it' if len(held) == 1 else 'them'}, so "
                             "no trial would train with that value: leave it at its default there, or search a space "
                             "without it (search_space=)")
        check_searchable(affinity, self.base_model, self.base_train)
        self._check_space()  # before any trial, which could not be built with such a value
        # G's rebuilds count only where G is built from the training set: elsewhere they change nothing
        self.iterations = iterations if is_iterative(dataclasses.replace(self.base_model, affinity=affinity)) else 1
        self.monitor = self.base_train.monitor
        check_monitor(self.monitor, train.n_labels)  # before the search's directory is made
        self.validation = checked_validation(train, "settings", "train with --no-validate (awe-tf train) instead "
                                                                "of searching, or give more data")
        project = Path(kwargs.get("directory") or ".") / (kwargs.get("project_name") or "untitled_project")
        if not kwargs.get("overwrite"):  # overwrite: KerasTuner starts the search afresh
            self._check_resumed(project)  # before KerasTuner reloads anything
        kwargs.setdefault("objective", _keras_tuner().Objective("val_" + self.monitor, direction="max"))
        kwargs.setdefault("overwrite", False)  # a search run again resumes
        super().__init__(hypermodel=None, hyperparameters=hyperparameters(self.search_space),
                         tune_new_entries=False, **kwargs)
        if isinstance(self.oracle, _keras_tuner().oracles.BayesianOptimizationOracle):
            self.oracle.__class__ = _repeatable_bayesian()  # its state reloaded as KerasTuner's: the same fields
        if kwargs["overwrite"] or not (project / SEARCH_FILE).exists():
            if self.oracle.trials and not kwargs["overwrite"]:  # trials trained with what, unknown
                raise ValueError(f"{self.project_dir} holds trials but no {SEARCH_FILE} (a search begun by an "
                                 "earlier awe-tf): search into another directory (--output; in Python, directory= or "
                                 "project_name=), or discard it (--restart; overwrite=True)")
            project.mkdir(parents=True, exist_ok=True)
            (project / SEARCH_FILE).write_text(json.dumps(self._settings(), indent=1))

    def _check_space(self) -> None:
        """Refuse a search space with a value the trials cannot be built with: each range's ends
        and a value between them (a fraction, for ``float``), each choice, through the configs'
        and the affinity's own checks (ValueError naming the setting and the value)."""
        from awe_tf.affinities import get

        for key, (kind, *args) in self.search_space.items():
            values = list(args[0]) if kind == "choice" else [args[0], args[1]]
            if kind == "float":
                values.append(args[0] + 0.37 * (args[1] - args[0]))
            for value in values:
                try:
                    model_config, _ = self.settings({key: value})
                    get(model_config.affinity or "constant")
                except (ValueError, TypeError) as error:
                    raise ValueError(f"the search space's {key} ({kind} {args}) holds {value!r}, which a trial "
                                     f"cannot take: {error}") from None

    def _settings(self) -> dict:
        """What the search's trials are trained with: data, fixed settings, search space, G rebuilds."""
        from awe_tf.training.callbacks import FREE_ON_RESUME, plain

        train = {key: value for key, value in self.base_train.to_dict().items() if key not in FREE_ON_RESUME}
        held = {"affinity": affinity_spec(self.affinity, {})} if ":" in self.affinity else {}  # what every trial keeps
        return plain({"data": self.train_data.fingerprint(), "model": self.base_model.to_dict(), "train": train,
                      "iterations": self.iterations, "space": self.search_space, **held})

    def _check_resumed(self, project: Path) -> None:
        """For a search resumed from its directory, refuse other settings than the ones it recorded
        (:meth:`_settings`): trials trained differently would be ranked together as if alike. The
        number of trials may grow."""
        from awe_tf.training.callbacks import as_recorded_now, other_settings

        path = project / SEARCH_FILE
        if path.exists():
            settings = self._settings()
            recorded = as_recorded_now(json.loads(path.read_text()), settings)
            refused = other_settings(f"{project} holds a search", recorded, settings)
            if refused:
                raise ValueError(f"{refused}: resume it with the same ones, search into another directory "
                                 "(--output; in Python, directory= or project_name=), or discard it and start afresh "
                                 "(--restart; overwrite=True)")

    def settings(self, values: dict) -> tuple[ModelConfig, TrainConfig]:
        """The model and training settings of chosen hyperparameter values: each a field of
        :class:`ModelConfig` or :class:`TrainConfig` by name, or an affinity setting."""
        model = {key: values[key] for key in _fields(ModelConfig) if key in values}
        model_config = dataclasses.replace(self.base_model, affinity=affinity_spec(self.affinity, values), **model)
        train = {key: values[key] for key in _fields(TrainConfig) if key in values}
        if "tuner/epochs" in values:
            train["epochs"] = int(values["tuner/epochs"])
        return model_config, dataclasses.replace(self.base_train, verbose=0, **train)

    def run_trial(self, trial, *args, **kwargs):
        """Train the trial's model on the carve-out and return its best validation score. It keeps
        epoch checkpoints in its trial folder while it trains (:data:`TRIAL_TRAINING`), so a
        search interrupted mid-trial goes on from the trial's last finished epoch when it is run
        again (KerasTuner gives an unfinished trial to the next search of the folder); they are
        removed once the trial has its score, which is all a search keeps of it, or has failed."""
        model_config, train_config = self.settings(trial.hyperparameters.values)
        training = Path(self.get_trial_dir(trial.trial_id)) / TRIAL_TRAINING
        if any(training.glob("**/checkpoints/state.json")):
            print(f"trial {trial.trial_id}: going on from the checkpoints it left in {training} when the search "
                  "was interrupted", flush=True)
        try:
            result, _ = train_model(self.validation.train, model_config, train_config, self.iterations,
                                    self.validation, output_dir=training, log=lambda line: None)
            score = best_score(result, self.monitor)
        except Exception:  # a failed trial is not run again (an interruption is: KeyboardInterrupt keeps them)
            shutil.rmtree(training, ignore_errors=True)
            raise
        shutil.rmtree(training, ignore_errors=True)
        return {"val_" + self.monitor: score}

    def searched_flags(self, affinity: str | None, searched: Collection[str] = ()) -> tuple[list[str], list[str]]:
        """``(flags, missing)``: ``awe-tf train`` flags for what every trial was trained with where
        train's defaults differ (the fixed settings not among the ``searched`` ones, such as the
        most epochs, the monitored metric and the seed, and G's rebuilds for an ``affinity`` built
        from the training set: train's own default rebuilds G 3 times), and the settings no flag
        of train can give."""
        flags, missing = [], []
        for config in (self.base_model, self.base_train):
            default = type(config)()
            for field in dataclasses.fields(config):
                name, value = field.name, getattr(config, field.name)
                if name in searched or name in UNFLAGGED or value == getattr(default, name):
                    continue
                given = setting_flags(name, value)
                if given is None and not (name == "bucketing" and self.base_train.jit_compile):  # XLA's shape
                    missing.append(f"{name}={value!r}")
                flags += given or []
        if self.monitor != default_monitor(self.train_data):
            flags += ["--monitor", self.monitor]
        if "seed" in searched:  # the trial's own, among the searched flags
            pass
        elif self.base_model.seed != self.base_train.seed:
            missing.append(f"the model's seed {self.base_model.seed} and training's {self.base_train.seed} "
                           "(train's --seed is both)")
        elif self.base_train.seed != TrainConfig.seed:
            flags += ["--seed", str(self.base_train.seed)]
        if is_iterative(dataclasses.replace(self.base_model, affinity=affinity)):
            flags += ["--iterations", str(self.iterations)]
        return flags, missing

    def trained_directory(self, trial) -> Path:
        """Where :meth:`best`'s command trains a trial: a folder of its own in the search's, so
        that the best trials of two searches never train into one run directory (train's default,
        ``runs/latest``, would hold whichever ran first and refuse the other). A search started
        afresh (``overwrite=True``) deletes it with the rest of the search's folder. An absolute
        path, as the command names the data's files, so that it runs from any directory."""
        return Path(os.path.abspath(self.project_dir)) / f"best-{trial.trial_id}"

    def best(self, data_flags: list[str] | None = None, imports: list[str] | None = None) -> dict:
        """The best trial: its score, settings and ``awe-tf train`` flags, the searched ones and what
        every trial was trained with (:meth:`searched_flags`), and with ``data_flags`` (the flags
        naming the data searched; empty: the bundled default) the whole ``command``, which trains
        into :meth:`trained_directory` and imports ``imports`` first (``--import``; None: the
        modules outside awe-tf that register the affinity, by name); also written to
        ``best.json`` in the project directory."""
        trial = self._best_trial()
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        model_config, train_config = self.settings(trial.hyperparameters.values)
        fixed, missing = self.searched_flags(model_config.affinity, values)
        defaults = {**ModelConfig().to_dict(), **TrainConfig().to_dict()}  # what train gives without a flag
        missing += [f"{key}={value!r}" for key, value in values.items()  # searched, but no flag of train gives it
                    if not key.startswith("affinity.") and setting_flags(key, value) is None
                    and value != defaults.get(key)]
        flags = train_flags(self.affinity, values) + fixed
        path = Path(self.project_dir) / BEST_FILE
        recorded = json.loads(path.read_text()) if path.exists() else {}
        if missing:
            command = None
        elif data_flags is not None:
            from awe_tf.affinities import modules_of

            if imports is None:  # the modules that register the affinity, by name
                spec = model_config.affinity if isinstance(model_config.affinity, str) else ""
                imports = modules_of(spec)
            command = shlex.join(["awe-tf", *(f for module in imports for f in ("--import", module)), "train",
                                  *data_flags, *flags, "--output", str(self.trained_directory(trial))])
        else:  # the data's flags as the command line that searched gave them, for the same best trial
            command = recorded.get("command") if recorded.get("flags") == flags else None
        found = {"score": trial.score, "objective": "val_" + self.monitor, "values": values,
                 "affinity": model_config.affinity, "flags": flags, "command": command,
                 "not_in_command": missing, "trials": len(self.oracle.trials), "trial_id": trial.trial_id}
        path.write_text(json.dumps(found, indent=1))
        return found

    def best_configs(self) -> tuple[ModelConfig, TrainConfig]:
        """The best trial's ``(ModelConfig, TrainConfig)``, as the trial trained with them but for
        how much training prints (the configs' given ``verbose``): what trains with its settings in
        Python as :meth:`best`'s command does, ``validate_then_refit(train, *tuner.best_configs(),
        iterations=tuner.iterations)`` (:mod:`awe_tf.training.selection`), where the data searched
        is in memory and the command has no files to name."""
        model_config, train_config = self.settings(self._best_trial().hyperparameters.values)
        return model_config, dataclasses.replace(train_config, verbose=self.base_train.verbose)

    def _best_trial(self):
        """The finished trial of the best score (a RuntimeError where none has finished)."""
        finished = [t for t in self.oracle.get_best_trials(len(self.oracle.trials) or 1)
                    if t.score is not None and math.isfinite(t.score)]
        if not finished:
            raise RuntimeError(f"no trial in {self.project_dir} has finished with a score (see the errors above)")
        return finished[0]

    def get_best_models(self, num_models: int = 1):
        """Not kept: KerasTuner's models are Keras 3 ones, and these trials train tf_keras models
        in ``run_trial`` without keeping them. Train the best trial with :meth:`best`'s flags."""
        raise NotImplementedError("this tuner keeps no trained models (its trials train tf_keras models in "
                                  "run_trial): train the best trial again with best()['flags'] (awe-tf train ...), "
                                  "or read get_best_hyperparameters()")


@functools.cache
def _repeatable_bayesian() -> type:
    """KerasTuner's Bayesian oracle, the starting points of its search for the best proposal drawn
    from the seed and the number of trials so far. KerasTuner's own draws them from one random
    state made from the seed, which its saved state leaves out: a search resumed in a new process
    would draw them afresh, and propose other trials than the same search run through."""
    import numpy as np

    class RepeatableBayesianOracle(_keras_tuner().oracles.BayesianOptimizationOracle):
        def populate_space(self, trial_id):
            self._random_state = np.random.RandomState([self.seed % 2**32, len(self.trials)])
            return super().populate_space(trial_id)

    return RepeatableBayesianOracle


@functools.cache
def tuner_class(oracle: str) -> type:
    """The tuner class of an oracle (``random``, ``bayesian``, ``hyperband``): KerasTuner's tuner
    with :class:`_TrialRunner`'s trials, made on first use (KerasTuner is imported then)."""
    kt = _keras_tuner()
    if oracle == "bayesian":
        from awe_tf.optional import require

        require("sklearn", "Bayesian optimisation")
    bases = {"random": kt.RandomSearch, "bayesian": kt.BayesianOptimization, "hyperband": kt.Hyperband}
    if oracle not in bases:
        raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")
    return type(f"AWE{bases[oracle].__name__}", (_TrialRunner, bases[oracle]), {"__doc__": f"{oracle} search over an "
                                                                                         "AWE search space."})


ORACLE_SEED_STRIDE = 1_000_003  # oracle seeds of search seeds one apart: more apart than a search draws values


def oracle_seed(seed: int) -> int:
    """The KerasTuner oracle's seed of a search of seed ``seed``: ``seed * ORACLE_SEED_STRIDE``
    modulo 2^32 - 1, plus 1. KerasTuner reads a seed of 0 as none (a random one), hence the 1;
    its random draws take the seed, then the seed plus one, and so on, one per value drawn, so
    oracles seeded one apart would propose the same trials a few values later (seed 4's first
    trial seed 0's second, with four searched settings); and the Bayesian oracle gives the seed
    to NumPy, which takes seeds below 2^32."""
    return seed * ORACLE_SEED_STRIDE % (2**32 - 1) + 1


def make_tuner(oracle: str, train: Dataset, affinity: str = "constant", directory="runs/tuning",
               project_name: str | None = None, max_trials: int = 10, max_epochs: int | None = None,
               seed: int | None = None, model_config: ModelConfig | None = None,
               train_config: TrainConfig | None = None, **kwargs):
    """A tuner by oracle name: ``random``, ``bayesian`` or ``hyperband``.

    Args:
        oracle: ``random``, ``bayesian`` or ``hyperband``.
        train: the protocol's training part (trials train on its validation carve-out).
        affinity: the affinity family searched (``linear-sigmoid``, ``knn``, ...; ``constant``: WSABIE);
            a spec with settings (``knn:k=20``) holds those fixed in every trial and searches the rest.
        directory, project_name: the search lives in ``directory/project_name`` (default
            ``DATA-AFFINITY-ORACLE``); the same again resumes it.
        max_trials: the most trials in all (random, bayesian; a resumed search counts its earlier ones).
        max_epochs: the most epochs of a trial (it stops early on the carve-out; Hyperband's
            largest bracket). Given, it replaces ``train_config``'s epochs; default theirs (TrainConfig's
            default is 30; ``awe-tf tune --epochs``' 10).
        seed: the search's seed: the oracle's (the same proposes the same trials:
            :func:`oracle_seed`) and
            the trials' models' and training's. Given, it replaces the configs' seeds; default
            theirs (0).
        model_config, train_config: the trials' fixed settings; the searched ones replace theirs.
    """
    for name, value, least in (("max_trials", max_trials, 1), ("max_epochs", max_epochs, 1), ("seed", seed, 0)):
        if value is not None:
            check_whole(name, value, least)
    if model_config is not None and model_config.affinity not in (None, affinity):  # it would be replaced
        raise ValueError(f"make_tuner searches the affinity given as affinity={affinity!r}, not model_config's "
                         f"{model_config.affinity!r}: name that family as affinity, and leave it out of model_config")
    model_config, train_config = model_config or ModelConfig(), train_config or TrainConfig()
    if max_epochs is not None:
        train_config = dataclasses.replace(train_config, epochs=max_epochs)
    if seed is not None:
        model_config, train_config = (dataclasses.replace(c, seed=seed) for c in (model_config, train_config))
    project_name = project_name or search_name(train, affinity, oracle)
    common = {"directory": str(directory), "project_name": project_name, "seed": oracle_seed(train_config.seed),
              "model_config": model_config, "train_config": train_config, **kwargs}
    budget = {"max_epochs": train_config.epochs, "factor": 3} if oracle == "hyperband" else {"max_trials": max_trials}
    if oracle == "bayesian" and "num_initial_points" not in kwargs:
        searched = kwargs.get("search_space")
        budget["num_initial_points"] = bayesian_random_trials(max_trials, len(space(affinity) if searched is None
                                                                              else searched))
    return tuner_class(oracle)(train, affinity, **budget, **common)


def search_name(train: Dataset, affinity: str, oracle: str) -> str:
    """The folder a search lives in by default, ``DATA-AFFINITY-ORACLE`` (:func:`make_tuner`), the
    affinity as a spec gives it (``knn:20`` as ``knn_k=20``)."""
    written = (affinity_spec(affinity, {}) or "constant") if ":" in affinity else affinity.strip()
    return f"{train.name}-{folder_name(written)}-{oracle}"


def bayesian_random_trials(max_trials: int, dimensions: int) -> int:
    """How many of a Bayesian search's trials are random draws before its Gaussian process
    proposes the rest: KerasTuner's 3 per searched setting, but at most half the trials (at
    least 2), so that a search of 10 or 20 trials over 6 settings is guided for half of them
    rather than random throughout (KerasTuner's 18 random draws). KerasTuner keeps the number a
    search began with when it resumes."""
    return max(2, min(3 * dimensions, max_trials // 2))
