"""The command line's flags: one argparse parser with a subparser per command."""

from __future__ import annotations

import argparse

from awe_tf.cli.commands import (
    cmd_affinities,
    cmd_cluster_task,
    cmd_datasets,
    cmd_diagnose,
    cmd_evaluate,
    cmd_export,
    cmd_inspect,
    cmd_reproduce,
    cmd_tune,
)
from awe_tf.cli.common import at_least, whole_number
from awe_tf.cli.data_flags import add_data_args
from awe_tf.cli.predict import cmd_predict
from awe_tf.cli.train import cmd_train
from awe_tf.data.interactions import UNKNOWN_ITEMS


class _Help(argparse.HelpFormatter):
    """Help that ends each option with its default, where it has one (a switch is off unless given)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, argparse.SUPPRESS) or action.nargs == 0 or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``awe-tf train: error: ... (see awe-tf train --help)``) and
    every option's default in its help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    refused: dict = {}  # a flag the command does not take -> why (tune's searched settings), said when given

    def parse_args(self, args=None, namespace=None):
        """argparse's, with an unknown option refused by the subcommand it was given to, so that
        the error points to that command's ``--help``, not to ``awe-tf --help``; a flag the command
        leaves out on purpose (:attr:`refused`) is refused with the reason. (Such flags are not
        options of the command: they would make a short form of another one ambiguous.)"""
        known, extras = self.parse_known_args(args, namespace)
        if extras:
            commands = next((action.choices for action in self._actions
                             if isinstance(action, argparse._SubParsersAction)), {})
            command = commands.get(getattr(known, "command", None), self)
            for extra in extras:
                flag = extra.split("=", 1)[0]
                if flag in command.refused:
                    command.error(f"{flag}: {command.refused[flag]}")
                if command is not self and flag == "--import":  # awe-tf's own option, given after the command
                    command.error(f"--import goes before the command: awe-tf --import MODULE {known.command} ...")
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        return known


_positive = at_least(1)
_non_negative = at_least(0)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _above_zero(text: str) -> float:
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 0")
    return value


def _rest(text: str) -> float | str:
    """Top-k's ``rest``: ``learn`` or a number in [0, 1]."""
    if text == "learn":
        return text
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1] nor 'learn'")
    return value


THREADS_HELP = "threads of the native engine (0: every core; with 1 runs are repeatable)"  # train, tune, reproduce


def add_setting_args(model, fitting, leave_out=()) -> dict[str, tuple[str, ...]]:
    """The flags of the model's and training's settings that train and tune both take, named as
    the fields of ``ModelConfig`` and ``TrainConfig`` they set (their destinations, among
    :data:`~awe_tf.cli.common.SETTING_FIELDS`): model ones in the group ``model``, training ones in
    ``fitting``, but those in ``leave_out`` (tune's searched settings, its own --epochs, the
    optimiser), whose flags it returns by destination (for the command to say why it does not
    take them: ``_Parser.refused``). :func:`~awe_tf.cli.common.configs_of` makes the configs."""
    from awe_tf.config import NATIVE_TRAINS, ModelConfig, TrainConfig

    model_defaults, train_defaults = ModelConfig(), TrainConfig()
    left = {}

    def flag(group, dest, *names, **settings):
        if dest in leave_out:
            left[dest] = names
        else:
            group.add_argument(*names, dest=dest, **settings)

    flag(model, "dimension", "--dimension", "-d", type=_positive, default=model_defaults.dimension,
         help="embedding dimension d")
    flag(model, "margin", "--margin", type=_number, default=model_defaults.margin, help="the WARP margin")
    flag(model, "num_negatives", "--negatives", metavar="K", type=_positive, default=model_defaults.num_negatives,
         help="labels sampled per example per step (WARP's K)")
    flag(model, "loss", "--loss", choices=["warp", "warp-all"], default=model_defaults.loss,
         help="warp: the first violating label per pair; warp-all: every violating label")
    flag(model, "normalisation", "--normalisation", choices=["l2", "l1", "none"], default=model_defaults.normalisation,
         help="how each input row is scaled (after numeric features are standardised)")
    flag(model, "max_norm", "--max-norm", type=_number, default=model_defaults.max_norm,
         help="the radius rows of U and V are kept in")
    flag(model, "init_scale", "--init-scale", type=_number, default=model_defaults.init_scale,
         help="about the norm of a row of U and V as training starts")
    flag(model, "input_bias", "--no-bias", action="store_false",
         help="no always-on input feature (no learnt per-label bias)")
    # at least 1 (0 epochs, a model kept as it starts, is for models started from a trained one, in Python)
    flag(fitting, "epochs", "--epochs", type=_positive, default=train_defaults.epochs,
         help="the most epochs (each step's, for iterative affinities)")
    flag(fitting, "learning_rate", "--learning-rate", "--lr", type=_number, default=train_defaults.learning_rate,
         help="the optimiser's step size (the default is Adagrad's)")
    flag(fitting, "optimizer", "--optimizer", choices=["adagrad", "sgd"], default=train_defaults.optimizer,
         help="adagrad, or the paper's plain SGD (give it a --learning-rate of its own: the default is Adagrad's, "
              "far too large for SGD)")
    flag(fitting, "pairs_per_batch", "--pairs-per-batch", type=_positive, default=train_defaults.pairs_per_batch,
         help="the most (x, y) pair slots a step holds: each example's labels, padded to the longest example in "
              "the step, rounded up to a multiple of 8 (an example longer than that is a step of its own)")
    flag(fitting, "min_steps_per_epoch", "--min-steps-per-epoch", type=_positive,
         default=train_defaults.min_steps_per_epoch,
         help="the fewest steps an epoch of the graph engine takes, data allowing: a small training set is cut "
              "into this many smaller steps (1: steps of --pairs-per-batch whatever the data's size)")
    flag(fitting, "patience", "--patience", type=_non_negative, default=train_defaults.patience,
         help="stop after this many epochs without a better validation score (0: never)")
    flag(fitting, "engine", "--engine", choices=["graph", "native"], default=train_defaults.engine,
         help="graph: the TensorFlow step (every model, strategy and device); native: WARP in C on this machine's "
              f"cores, several times faster, for {NATIVE_TRAINS}")
    flag(fitting, "threads", "--threads", type=_non_negative, default=train_defaults.threads,
         help=THREADS_HELP)
    return left


def build_parser() -> argparse.ArgumentParser:
    from awe_tf.config import ModelConfig, TrainConfig
    from awe_tf.tuning.spaces import COMMON, describe

    model_defaults, train_defaults = ModelConfig(), TrainConfig()
    parser = _Parser(prog="awe-tf", description="Affinity Weighted Embedding on TensorFlow")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import this Python module first (repeatable; a module name, found from the current "
                             "folder too, or a .py file's path): a module that registers an affinity of your own, so "
                             "--affinity and saved models can use it")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        """A subcommand, its one-line summary in both ``awe-tf --help`` and its own ``--help``."""
        return sub.add_parser(name, help=text, description=text)

    command("datasets", "list the named data sets").set_defaults(func=cmd_datasets)
    command("affinities", "list the affinities G (--affinity specs), their settings and what tuning "
                                      "searches").set_defaults(func=cmd_affinities)

    train = command("train", "train a model, evaluate it and the baselines")
    add_data_args(train)
    train.add_argument("--output", "-o", default="runs/latest",
                       help="output directory; running the same command again resumes an interrupted run from its "
                            "last checkpoint (and refuses other data or settings)")
    train.add_argument("--restart", action="store_true",
                       help="discard what earlier runs left in the output directory (checkpoints, model, metrics) "
                            "and train from scratch (a model/, metrics.json, ... holding files no run wrote is "
                            "refused, not deleted)")
    model = train.add_argument_group("model")
    fitting = train.add_argument_group("training")
    add_setting_args(model, fitting)
    model.add_argument("--affinity", help="the affinity G as a spec, e.g. knn:k=20, linear-sigmoid:alpha=1,beta=0.25 "
                       "or a sum such as constant:1+knn:k=20 (`awe-tf affinities` lists them; none: constant, i.e. "
                       "WSABIE); auto: chosen on the validation carve-out among WSABIE and a few candidates, "
                       "within 5x WSABIE's time (interrupted, the same command goes on from the stages it "
                       "finished, OUTPUT/auto)")
    model.add_argument("--auto-budget", type=_above_zero, metavar="X",
                       help="--affinity auto's time budget: X times the CPU time of WSABIE's run (none: 5); the "
                            "candidates that would take it past that are not run")
    model.add_argument("--iterations", type=_positive,
                       help="times G is rebuilt from the model, for affinities built from the training set "
                            "(knn, rbf, latent-rbf, hybrid-rbf, cluster; none: 3)")
    model.add_argument("--init-from", metavar="RUN",
                       help="start U and V from an earlier run's trained model (its output directory; typically a "
                            "WSABIE), each stage from that run's model of the same stage: AWE learnt jointly from "
                            "the linear model, or fine-tuning on later data (rows by item or label name; new ones "
                            "start fresh) (none: random U and V)")
    fitting.add_argument("--monitor", help="validation metric for early stopping, precision@K or recall@K (none: "
                                           "precision@10 for recommendation, precision@1 otherwise)")
    fitting.add_argument("--no-validate", dest="validate", action="store_false",
                         help="skip choosing the epoch count on the validation split")
    fitting.add_argument("--no-baselines", action="store_true",
                         help="do not score the baselines (a rerun of the same finished model keeps those it scored)")
    fitting.add_argument("--seed", type=_non_negative, default=train_defaults.seed,
                         help="seed of initialisation, sampling and batch order")
    fitting.add_argument("--verbose", type=whole_number, default=train_defaults.verbose, choices=[0, 1, 2],
                         help="each epoch's progress: 0 none, 1 a progress bar, 2 one line per epoch (the "
                              "stage lines and results tables print at every level; resume, epoch-0 and shard lines "
                              "at 1 or 2)")
    scale = train.add_argument_group("distribution")
    scale.add_argument("--strategy", choices=["default", "auto", "mirrored", "multiworker", "parameter-server", "tpu"],
                       default="default", help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    scale.add_argument("--tpu", help="TPU address (grpc://HOST:PORT) or Cloud TPU name for --strategy tpu or "
                                     "auto (auto then needs that TPU; none: the environment's, or on a TPU VM its "
                                     "own, which local names)")
    scale.add_argument("--cpu-replicas", type=_positive,
                       help="split the CPU into this many devices (with --strategy mirrored, for trying it out; "
                            "none: one device)")
    scale.add_argument("--shard-bytes", type=_positive,
                       help="parameter-server: the smallest shard the tables U and V are cut into, in bytes "
                            "(default 262144; at most one shard per parameter server; training prints the cut)")
    scale.add_argument("--steps-per-execution", type=_positive, default=train_defaults.steps_per_execution,
                       help="graph engine steps run per call into the compiled graph (raise it on TPUs, where each "
                            "call costs more; 1: progress and callbacks after every step)")
    scale.add_argument("--jit-compile", action="store_true",
                       help="compile the training step with XLA (one static batch shape, as on TPU)")
    scale.add_argument("--tpu-embedding", action="store_true",
                       help="keep U and V in tfrs TPUEmbedding layers off a TPU (the same training as without); "
                            "refused under a TPUStrategy, where U and V are replicated variables")
    train.set_defaults(func=cmd_train, parser=train)

    evaluate = command("evaluate", "score a saved model, or an export, on a data set's test part")
    evaluate.add_argument("model", nargs="?", help="the model written by `awe-tf train` (OUTPUT/model, or OUTPUT); "
                                                   "may be left out with --served")
    evaluate.add_argument("--served", metavar="EXPORT",
                          help="an export (a version directory, or BASE/NAME for its newest version): send it the "
                               "test part's raw rows and score its answers")
    add_data_args(evaluate, without="the data the model's run was trained on (its metrics.json), or, for --served "
                                    "alone, the data the export records; else corel5k")
    evaluate.add_argument("--unknown-items", choices=UNKNOWN_ITEMS, default="refuse",
                          help="recommendation: data holding items the model does not have (a later period's, new "
                               "since it was trained) is refused, or scored without them: their test interactions "
                               "and their place in users' inputs left out")
    evaluate.add_argument("--output", help="write the metrics as JSON to this file (none: print them only)")
    evaluate.set_defaults(func=cmd_evaluate, parser=evaluate)

    predict = command("predict", "a trained model's top labels for users of its data, a new user's items, or the "
                                 "rows of a data file")
    predict.add_argument("model", help="the model written by `awe-tf train` (OUTPUT/model, or OUTPUT)")
    asked = predict.add_argument_group("what to rank for (one of)")
    asked.add_argument("--user", nargs="+", metavar="ID",
                       help="recommendation: users of the model's data, by id as its file gives them: their items in "
                            "its training part in, and left out of the ranking (the protocol's held-out items may be "
                            "recommended, as evaluate ranks them; --all-items for every item the file gives them)")
    asked.add_argument("--items", nargs="+", metavar="ID",
                       help="recommendation: the items of one user the model has not seen, by id as the file gives "
                            "them (MovieLens: titles)")
    asked.add_argument("--rows", metavar="FILE",
                       help="annotation: a file of rows in the format of the model's data (an ARFF file is read "
                            "with its label list; the labels the rows hold are not used, and may all be left out); "
                            "recommendation: new "
                            "users' interactions (user, item[, weight], items by id; a repeated pair's weights "
                            "added up)")
    predict.add_argument("--all-items", action="store_true",
                         help="with --user: every item the data file gives each user in, and left out of the ranking "
                              "(a deployed model's question; without it, its training part's items, as evaluate ranks)")
    predict.add_argument("--unknown-items", choices=UNKNOWN_ITEMS, default="refuse",
                         help="recommendation, --items and --rows: an item the model does not have (new since it "
                              "was trained) is refused, or skipped (a row is then ranked for the rest of its items)")
    predict.add_argument("-k", type=_positive, default=10, help="labels per row")
    add_data_args(predict, without="the data the model's run was trained on (its metrics.json)")
    predict.add_argument("--output", help="write the answers to this file, one JSON object per row (the first 5 "
                                          "rows are printed too)")
    predict.set_defaults(func=cmd_predict, parser=predict)

    diagnose = command("diagnose", "what a trained AWE model's G does on the test part (why it wins "
                                               "or loses against WSABIE)")
    diagnose.add_argument("run", help="the output directory of `awe-tf train` (holding model/ and metrics.json)")
    add_data_args(diagnose, without="the data the run was trained on (its metrics.json)")
    diagnose.add_argument("--seed", type=_non_negative, default=0, help="seed of the random labels G is compared on")
    diagnose.add_argument("--output", help="write the report as JSON to this file (none: print it only)")
    diagnose.add_argument("--plot", metavar="FILE", help="also draw the report to this .png, .pdf or .svg file: "
                                                         "G on the test positives against random labels, and each "
                                                         "step's k-NN P@1")
    diagnose.set_defaults(func=cmd_diagnose, parser=diagnose)

    export = command("export", "export a saved model for TF Serving (BASE/NAME/VERSION/)")
    export.add_argument("model", help="the model written by `awe-tf train` (OUTPUT/model, or OUTPUT)")
    export.add_argument("base", metavar="BASE", help="the base directory TF Serving serves models from")
    export.add_argument("--name", default="awe", help="model name")
    export.add_argument("--flavour", choices=["scann", "portable", "both"], default="both",
                        help="scann: ScaNN retrieval (needs ScaNN's ops); portable: stock ops only; both: NAME is "
                             "scann, NAME-portable portable")
    export.add_argument("--version", type=_positive, help="version number (none: newest + 1)")
    export.add_argument("--keep", type=_positive, help="keep only this many newest versions (none: all)")
    export.add_argument("--new-ids", action="store_true",
                        help="export under NAME a model whose inputs, labels, label names or feature names (or "
                             "their order) differ from its newest version's (refused without it: the name's clients "
                             "would send ids that mean other things)")
    export.add_argument("--candidates", type=_positive, default=100,
                        help="labels ScaNN fetches before exact re-ranking; for the scann flavour also the largest k "
                             "where ScaNN searches V (an affinity not built from the training set; else every label)")
    export.add_argument("--recall-queries", type=_positive, default=500,
                        help="test rows of the data set used to measure recall@10, the first 5 also as warmup "
                             "requests (without --dataset or --train: the run's own data; for a model outside a "
                             "run, as many random probe rows)")
    add_data_args(export, without="the run's own data, as evaluate; for a model outside a run, random probe rows "
                               "measure recall")
    export.set_defaults(func=cmd_export, parser=export)

    tune = command("tune", "search hyper-parameters with KerasTuner on the validation carve-out")
    add_data_args(tune)
    tune.add_argument("--affinity", default="constant",
                      help="affinity whose knobs are searched with the usual ones (`awe-tf affinities` lists them); "
                           "settings given (linear-sigmoid:alpha=1) are held fixed")
    tune.add_argument("--oracle", choices=["random", "bayesian", "hyperband"], default="random",
                      help="KerasTuner's search algorithm")
    tune.add_argument("--trials", type=_positive, help="trials (random, bayesian; none: 10)")
    tune.add_argument("--epochs", type=_positive, default=10, help="epochs per trial (hyperband: the most)")
    tune.add_argument("--iterations", type=_positive,
                      help="G rebuilds per trial, for affinities built from the training set (none: 1)")
    tune.add_argument("--monitor", help="validation metric to maximise (none: precision@10 for recommendation, "
                                        "precision@1 otherwise)")
    tune.add_argument("--seed", type=_non_negative, default=0, help="seed of the search and of each trial")
    tune.add_argument("--output", "-o", default="runs/tuning",
                      help="search directory; running the same command again resumes the search")
    tune.add_argument("--restart", action="store_true",
                      help="discard the search the output directory holds for this data, affinity and oracle (its "
                           "trials, best command and best trials' runs), and search afresh")
    # every trial's fixed settings: train's flags, but for the searched ones, the epochs above and the optimiser,
    # whose flags tune refuses saying why
    why = {name: f"tune searches this setting ({describe(spec)}), so it cannot hold it fixed; the best trial's "
                 "command gives the value the search chose" for name, spec in COMMON.items()}
    why["optimizer"] = ("tune's trials train with Adagrad, whose learning rates it searches (train takes --optimizer "
                        "sgd)")
    left = add_setting_args(tune.add_argument_group("model (every trial)"),
                            tune.add_argument_group("training (every trial)"), leave_out=(*why, "epochs"))
    tune.refused = {name: why[dest] for dest in why for name in left[dest]}
    tune.set_defaults(func=cmd_tune, parser=tune)

    reproduce = command("reproduce", "the paper's tables: annotation (Tables 1, 2) or recommendation "
                               "(Table 3)")
    reproduce.add_argument("table", choices=["annotation", "recommendation"], help="which of the paper's tables")
    reproduce.add_argument("--output", "-o", help="output directory (none: runs/reproduce-TABLE); each data set "
                           "and seed finished is kept there, so running the same command again goes on from them")
    reproduce.add_argument("--datasets", nargs="+", help="annotation data sets (none: cal500 corel5k emotions scene)")
    reproduce.add_argument("--dimension", "-d", type=_positive, help="none: 100 (annotation), 64 (recommendation)")
    reproduce.add_argument("--epochs", type=_positive, default=30, help="the most epochs per model (early stopping)")
    reproduce.add_argument("--iterations", type=_positive, help="annotation's AWE k-NN: times G is rebuilt (none: 3)")
    reproduce.add_argument("--betas", nargs="+", type=_number,
                           help="linear sigmoid betas (none: -1 -0.5 0 0.25 0.5)")
    reproduce.add_argument("--ks", nargs="+", type=_positive, help="top-k affinity k values (none: 1 5 7 11)")
    reproduce.add_argument("--rests", nargs="+", type=_rest,
                           help="top-k's G of the terms outside the k: numbers in [0, 1] or 'learn' (none: 0 learn; "
                                "0 is the paper's eq. 7, learn starts at 1, WSABIE's ranking)")
    reproduce.add_argument("--from-scratch", dest="from_wsabie", action="store_false",
                           help="recommendation: learn each AWE model from random U and V, instead of starting, as "
                                "the paper did, from the trained WSABIE's")
    reproduce.add_argument("--engine", choices=["graph", "native"], default="graph",
                           help="native: WSABIE, linear sigmoid, AWE k-NN (every step) and top-k train with the "
                                "native engine (top-k with its rest learnt with the graph step)")
    reproduce.add_argument("--threads", type=_non_negative, default=0,
                           help=THREADS_HELP)
    reproduce.add_argument("--init-scale", type=_number, default=model_defaults.init_scale,
                           help="about the norm of a row of U and V as training starts (the README's reproduce "
                                "annotation tables were measured at 1, its recommendation table at 0.1)")
    reproduce.add_argument("--seed", type=_non_negative, default=0, help="the seed, when --seeds is not given")
    reproduce.add_argument("--seeds", nargs="+", type=_non_negative,
                           help="run every model once per seed and report means ± standard deviations")
    reproduce.set_defaults(func=cmd_reproduce, parser=reproduce)

    task = command("cluster-task", "run as a worker or parameter server for --strategy parameter-server "
                          "(reads TF_CONFIG; blocks)")
    task.set_defaults(func=cmd_cluster_task, parser=task)

    inspect = command("inspect", "list the ops an exported SavedModel needs, stock or custom")
    inspect.add_argument("path", help="a SavedModel (version) directory, or BASE/NAME for its newest version")
    inspect.add_argument("--require-stock", action="store_true", help="exit 1 if any op is not stock TensorFlow")
    inspect.set_defaults(func=cmd_inspect, parser=inspect)
    return parser


def flag_of(parser, field: str) -> str:
    """The command-line flag of a setting (its argparse destination), else the setting's name."""
    for action in getattr(parser, "_actions", []):
        if action.dest == field and action.option_strings:
            return max(action.option_strings, key=len)
    return field
