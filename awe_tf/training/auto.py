"""``--affinity auto``: the affinity chosen on the protocol's validation carve-out, with WSABIE
among the candidates, within a time budget; one recipe for every data set.

The budget counts the process's CPU time (every thread's), not the wall clock: other work on the
machine stretches the wall clock of whatever runs while it lasts, so a wall-clock budget could
run a candidate on a quiet machine and skip it on a busy one; CPU time moves much less with it,
so a seed chooses the same either way unless a candidate's expected time falls near the budget's
edge (CPU time too varies from run to run: a budget with room for every candidate repeats). The
trials report both. NumPy's and SciPy's BLAS run on one thread meanwhile: a BLAS thread that
waits for a busy core spins, and that wait would count as CPU time.

1. WSABIE is trained the protocol's way (epochs chosen on the carve-out, then refitted): it is
   the fallback, the starting point of every trained candidate (4) and the unit of the budget.
2. The neighbour vote (:class:`~awe_tf.affinities.vote.NeighbourVote`: WSABIE's score plus w
   times cosine k-NN's in WSABIE's own space) is built on WSABIE's carve-out model as it is,
   nothing trained, at each weight of :data:`VOTE_WEIGHTS` (times the WARP margin, which sets
   the linear score's scale); w = 0 is WSABIE and a large w is k-NN in WSABIE's space, so w is a
   knob between the two baselines a user compares with. It is chosen like one: the weight with
   the best carve-out score (below), the smaller on a tie.
3. Two linear models made in closed form (G = 1, U and V their factors:
   :mod:`awe_tf.training.closed_form`) are made on the carve-out, nothing trained, and scored:
   the log-odds SVD baseline at each rank of :func:`~awe_tf.baselines.svd_ranks` (d, d/2, d/4,
   d/8), and for annotation reduced-rank ridge regression at each penalty of
   :data:`RIDGE_PENALTIES`; of each, the one with the best carve-out score (below; the larger
   rank, the smaller penalty on a tie) is its candidate. They are there for data where a closed
   form ranks better than WARP learns to (the SVD on the bag-of-words text of
   ``benchmarks/topic_text.py``). Ridge
   is left out for recommendation, where inputs and labels are the same items and a regression
   gives each item back from itself, which ranking leaves out. Neither is trained on with WARP:
   where that ends level with WSABIE it is a second WSABIE of another start, which the carve-out
   would pick by chance now and then. A winner's making from the whole training part is budgeted
   at its carve-out time.
4. Each trained candidate affinity (:data:`CANDIDATES`, in order) is trained on the carve-out
   starting from WSABIE's carve-out model, with early stopping, as long as the budget allows it
   and the refit it would need: joint learning from WSABIE's U and V (the start counts as epoch
   0), or, for G built from the training set (k-NN), the paper's iterative scheme with WSABIE as
   step 0 and :data:`ITERATIONS` rebuilds of G.
5. Each validation row is scored on the monitored metric and on the protocol's other reported
   one (:func:`check_metric`: P@3 beside P@1; with 2 labels P@1 alone), and a candidate's score
   is the mean of the two. The rows are also scored on the rest of the protocol's reported
   metrics (:func:`guard_metrics`: for annotation P@5 with more than 5 labels and P@10 with more
   than 10), on which no candidate may lose clearly, by :data:`GUARD_ERRORS` standard errors or
   more: a closed form cut to rank d can rank the first labels better than WSABIE and the tenth
   worse. (Two, not one: each guard metric is one more chance for noise to refuse a candidate;
   one differing row is exactly one standard error, and two standard errors are about four rows
   lost with the rest level.)
   A trained or closed-form candidate qualifies only if it beats WSABIE on that mean by more than
   one standard error of the paired difference over the rows, and is less than one standard
   error below WSABIE on either metric (a loss of one standard error, what a single differing row
   gives, is real): small validation sets, where a gain could be noise, keep WSABIE.
   The vote at its chosen weight qualifies when it beats WSABIE on the mean at all and is less
   than one standard error below it on either: it is WSABIE's own model moved by one knob, chosen
   as knobs are, by the best validation score. That is a weaker guard than the trained
   candidates': the best of the weights on the rows that chose it is above WSABIE by chance
   more often than not when the vote changes little, so on a small carve-out the vote can win
   on noise (what a wrong weight costs: ``benchmarks/vote_weights.py``).
   The best qualifying candidate on the mean wins (on a tie, the earlier in the table).
   A trained candidate's gain includes the epochs it trains on from WSABIE's model: where
   WSABIE's own epochs were capped below where its validation score stops rising (a small
   ``TrainConfig.epochs``), G = 1 trained on the same way gains too, and so would a candidate.
6. The winner is refitted on the whole training part, from WSABIE's refitted model (the vote:
   built on it, as on the carve-out; a closed form: made from the whole part).
7. With an ``output_dir`` nothing finished is lost to an interruption: the trained stages keep
   their checkpoints there (WSABIE's two stages, each trained candidate's, the winner's refit),
   and ``auto.json`` records each finished stage's row and seconds, and each decision not to run
   one. The same call again goes on from them: a finished stage or a decision is taken from the
   record (its seconds counted as spent), a stage cut short resumes from its last finished epoch
   (the seconds its checkpoints kept counted as spent). Called again with another budget, it
   keeps the stages run and decides again those the earlier budget left out; under a smaller
   budget the stages a larger one ran are kept and named (``AutoResult.kept_larger``, a line of
   the table). The budget then
   reads about what an uninterrupted run's did, but not exactly: a stage resumed in a new process pays its set-up
   (TensorFlow's, the step's tracing) again, which on a small data set, where WSABIE takes seconds,
   can let in or leave out another candidate than an uninterrupted run would. Other data or
   settings are refused, and so is a record whose WSABIE its checkpoints no longer give.

Because G = 1 is WSABIE, the recipe cannot do worse than WSABIE on the carve-out by more than
the noise it lets through (one standard error, two on a guard metric; for the vote, its choice
among the weights; for ridge, its choice among the penalties on the rows that then compare it); the
test part is scored once, afterwards, by the caller.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from awe_tf.baselines import svd_ranks
from awe_tf.config import ModelConfig, TrainConfig, engine_for
from awe_tf.data.dataset import ANNOTATION, Dataset
from awe_tf.metrics import ROUNDING, check_metric, protocol_ks, ranked, row_values  # noqa: F401 (re-exported)
from awe_tf.models.saving import tables_digest
from awe_tf.runs import LEDGER, STAGED, folder_name
from awe_tf.training.closed_form import ridge_starts, svd_starts
from awe_tf.training.fit import FitResult, check_arguments, progress_log
from awe_tf.training.iterative import on_linear_model
from awe_tf.training.selection import (
    DETAIL,
    FEW_ROWS,
    WITHOUT_VALIDATION,
    checked_validation,
    choose_epochs,
    is_iterative,
    refit,
    validate_then_refit,
)

SVD = "log-odds SVD"  # the SVD as a candidate, by name, its rank added once chosen (module docstring, 3)
RIDGE = "reduced-rank ridge"  # ridge as a candidate, by name, its lambda added once chosen (module docstring, 3)
RIDGE_PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)  # lambda of reduced-rank ridge (module docstring, 3)
CANDIDATES = ("knn:k=20", "constant:0.3+knn:k=20", "linear-sigmoid:alpha=1,beta=0")
VOTE_WEIGHTS = (1.0, 3.0, 10.0)  # w of the neighbour vote, in units of the WARP margin
VOTE_K = 20  # the vote's neighbours: those of the k-NN baseline in WSABIE's space
OVER_BUDGET = "not run: over the"  # a trial's note where the budget left it out
AT_THE_CAP = "a best epoch is the last allowed"  # a trial's note where it may have gone on rising
BUDGET = 5.0  # the most CPU time, in units of the WSABIE run's (validation and refit) it makes first
GUARD_ERRORS = 2.0  # a loss on a guard metric this many standard errors or more refuses a candidate
ITERATIONS = 3  # G rebuilds of an iterative candidate after WSABIE, its step 0 (the paper's T)


@dataclasses.dataclass
class Trial:
    """One candidate on the carve-out: its validation score on the monitored metric (``score``) and
    on the mean of that and the check metric (``both``), means over the validation rows; the
    differences from WSABIE's of each metric and of their mean, with standard errors, and of each
    guard metric (``guard``: name -> (change, standard error)); the epochs it chose, its
    wall-clock and CPU seconds (the budget's), and why it was or was not run."""

    affinity: str | None
    score: float = float("nan")
    gain: float = 0.0
    standard_error: float = 0.0
    check_gain: float = 0.0
    check_error: float = 0.0
    both: float = float("nan")
    both_gain: float = 0.0
    both_error: float = 0.0
    epochs: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    note: str = ""
    vote: bool = False  # the neighbour vote on WSABIE's model, nothing trained (module docstring, 2)
    made: str | None = None  # the name of a model made in closed form, nothing trained (module docstring, 3)
    guard: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict) -> Trial:
        """A trial as ``dataclasses.asdict`` gave it, read back from JSON (its guard's pairs as tuples)."""
        return cls(**{**record, "guard": {metric: tuple(change) for metric, change in record["guard"].items()}})

    @property
    def name(self) -> str:
        return self.made or self.affinity or "constant (WSABIE)"

    @property
    def candidate(self) -> bool:
        """Whether this is a candidate against WSABIE, not WSABIE's own row."""
        return self.affinity is not None or self.made is not None

    @property
    def ran(self) -> bool:
        return bool(np.isfinite(self.score))

    @property
    def beats_wsabie(self) -> bool:
        """A real gain on the mean of the two metrics (more than one standard error; the vote: any
        gain) and no real loss on either (less than one standard error below WSABIE) nor a clear
        one on a guard metric (:data:`GUARD_ERRORS`), compared up to :data:`ROUNDING`. A gain or
        loss of one standard error, what one differing row gives, is no real gain and a real
        loss: in doubt, WSABIE stays."""
        return self.candidate and self.ran and not self.shortfall() and not self.guard_losses

    def shortfall(self, monitor: str = "the monitored metric", check: str = "the check metric") -> str:
        """Why a candidate that ran falls short of :attr:`beats_wsabie` on the mean of both metrics
        or on either of them, in words; empty where it does not (the guard metrics' losses are
        said apart: :attr:`guard_losses`)."""
        if not np.isfinite(self.both_error):  # 2 rows at least
            return "one validation row, no standard error to tell a gain by"
        reasons = []
        if not self.both_gain > (0.0 if self.vote else self.both_error) + ROUNDING:
            reasons.append("no gain on the mean of both" if self.vote or self.both_gain <= ROUNDING else
                           "a gain on the mean of both of at most one standard error")
        losses = [(monitor, self.gain, self.standard_error)] + ([(check, self.check_gain, self.check_error)]
                                                                 if check != monitor else [])
        reasons += [f"a loss of one standard error or more on {metric}" for metric, gain, error in losses
                    if _real_loss(gain, error)]
        return "; ".join(reasons)

    @property
    def guard_losses(self) -> list[str]:
        """The guard metrics this candidate clearly loses on (:data:`GUARD_ERRORS`), with the
        change: ``precision@10 -0.0250 ± 0.0010``."""
        return [f"{metric} {_change(gain, error)}" for metric, (gain, error) in self.guard.items()
                if _real_loss(gain, error, GUARD_ERRORS)]


@dataclasses.dataclass
class AutoResult:
    """The chosen affinity (None: G = 1, WSABIE, or where ``made`` names one a closed-form model's U
    and V), the refitted model's result, every trial, the wall-clock seconds."""

    affinity: str | None
    final: FitResult
    trials: list[Trial]
    seconds: float
    epochs: list
    monitor: str = "precision@1"
    check: str = "precision@3"
    rows: int = 0  # validation rows every candidate was scored on
    made: str | None = None  # the closed-form model that won, by name
    cpu_seconds: float = float("nan")  # the CPU time of the whole choice, refit included
    budget: tuple[float, float] | None = None  # (the budget in units of WSABIE's run, that run's CPU seconds)
    kept_larger: dict = dataclasses.field(default_factory=dict)  # stages kept that ran under a larger budget

    @property
    def name(self) -> str:
        """What was chosen, as the table names it."""
        return chosen_name(self.affinity, self.made)

    def table(self, monitor: str | None = None) -> str:
        """The validation table, one line per candidate, the winner marked, its notes set in on the
        line below; seconds on the wall clock and of CPU time (what the budget counts)."""
        monitor = monitor or self.monitor
        votes = [trial for trial in self.trials if trial.vote and trial.ran]
        chosen_vote = _chosen_vote(self.trials)
        lines = [f"{'candidate':<34}{'validation ' + monitor:>24}{monitor + ' vs WSABIE':>26}"
                 f"{self.check + ' vs WSABIE':>26}{'mean of both vs WSABIE':>26}{'epochs':>10}{'seconds':>9}"
                 f"{'CPU s':>8}"]
        for trial in self.trials:
            mark = "*" if (trial.affinity, trial.made) == (self.affinity, self.made) else " "
            score = f"{trial.score:.4f}" if trial.ran else "-"
            compared = trial.candidate and trial.ran
            gain = _change(trial.gain, trial.standard_error) if compared else ""
            check = _change(trial.check_gain, trial.check_error) if compared else ""
            both = _change(trial.both_gain, trial.both_error) if compared else ""
            epochs = "+".join(map(str, trial.epochs)) if trial.epochs else "-"
            notes = [trial.note] if trial.note else []
            if not trial.candidate and trial.ran and self.check != self.monitor:  # what the changes are against
                notes.append(f"{self.check} {2 * trial.both - trial.score:.4f}, mean of both {trial.both:.4f}")
            if trial is chosen_vote and len(votes) > 1:
                notes.append("the vote's weight: the best of its weights on the mean of both (the smaller on a tie)")
            if compared and trial.guard_losses:
                notes.append(f"below WSABIE on {', '.join(trial.guard_losses)}")
            if compared and not trial.beats_wsabie and (not trial.vote or trial is chosen_vote):
                shortfall = trial.shortfall(self.monitor, self.check)
                if shortfall:
                    notes.append(f"not chosen: {shortfall}")
            elif compared and mark != "*" and (not trial.vote or trial is chosen_vote):  # it qualifies, as the choice
                notes.append("not chosen: it beats WSABIE, but the choice scores higher on the mean of both (or level, "
                             "and comes earlier)")
            lines.append(f"{mark} {trial.name:<32}{score:>24}{gain:>26}{check:>26}{both:>26}{epochs:>10}"
                         f"{trial.seconds:>9.1f}{trial.cpu_seconds:>8.1f}")
            if notes:  # on a line of their own, under the row: the row keeps the columns' width
                lines.append(f"{'':4}{'; '.join(notes)}")
        lines.append("* the choice; the changes are against WSABIE's row, ± one standard error of the paired "
                     "difference over the validation rows")
        if any(trial.vote and trial.ran for trial in self.trials):
            lines.append("a trained or closed-form candidate wins only with a gain of more than one standard error on "
                         "the mean of both; the vote, a knob on WSABIE's own model chosen as knobs are, with any gain")
        if self.budget is not None and np.isfinite(self.cpu_seconds):
            times, unit = self.budget
            lines.append(f"CPU time {self.cpu_seconds:.1f} s in all, refit included, against a budget of "
                         f"{times * unit:.1f} s ({times:g}x WSABIE's {unit:.1f} s): a candidate starts only where what "
                         "it is expected to take fits, so the time can end past the budget")
        if self.kept_larger and self.budget is not None:
            larger = max(self.kept_larger.values())
            lines.append(f"kept from an earlier choice under a larger budget (up to {larger:g}x): "
                         f"{', '.join(self.kept_larger)}; a choice within {self.budget[0]:g}x from the start "
                         "could have left them out (choose into another directory for that)")
        if any(AT_THE_CAP in trial.note for trial in self.trials):
            lines.append(f"rows noted '{AT_THE_CAP}' may score higher with more epochs (--epochs; "
                         "TrainConfig.epochs in Python)")
        if any(trial.note.startswith(OVER_BUDGET) for trial in self.trials):
            lines.append("candidates marked 'not run' would have taken the choice past its budget: a larger one "
                         "(--auto-budget; budget= in Python) runs them (CPU time moves from run to run, so near the "
                         "budget's edge a rerun can decide otherwise)")
        if self.rows:
            few = ": too few to tell the candidates apart, WSABIE is kept unless a gain is beyond doubt"
            lines.append(f"scored on {self.rows} validation rows" + (few if self.rows < FEW_ROWS else ""))
        return "\n".join(lines)


def over_budget(budget: float, expected: float, spent: float, limit: float) -> str:
    """A trial's note where the budget left it out: what it and a winner's making were expected to
    take beside what was spent (CPU seconds), which the budget's line alone does not show."""
    return (f"{OVER_BUDGET} {budget:g}x budget (expected {expected:.1f} s with a winner's making after it, "
            f"{spent:.1f} s spent of {limit:.1f} s)")


def chosen_name(affinity: str | None, made: str | None = None) -> str:
    """A choice of auto by name: the closed-form model's (``made``), else the affinity's spec, or
    ``WSABIE`` (None or ``constant``)."""
    return made or ("WSABIE" if affinity in (None, "constant") else affinity)


def svd_name(rank: int) -> str:
    """The log-odds SVD at ``rank`` as a candidate, by name."""
    return f"{SVD} (rank {rank})"


def ridge_name(penalty: float) -> str:
    """Reduced-rank ridge at ``penalty`` as a candidate, by name."""
    return f"{RIDGE} (lambda {penalty:g})"


def made_chosen(report: dict | None) -> str | None:
    """The closed-form model a run's report (``metrics.json``; None: no report) records as auto's
    choice, by name, or None (reports written before ridge record the SVD as ``"svd": true``)."""
    auto = ((report or {}).get("validation") or {}).get("auto") or {}
    return auto.get("made") or (SVD if auto.get("svd") else None)


def reported_name(report: dict) -> str:
    """What a run's report (``metrics.json``) trained, named as :func:`chosen_name` names it."""
    return chosen_name(report.get("affinity"), made_chosen(report))


def _change(gain: float, error: float) -> str:
    """``+0.0123 ± 0.0045``; a change that rounds to zero is +0.0000, whatever its sign."""
    return f"{round(gain, 4) + 0.0:+.4f} ± {error:.4f}"


class _Stopwatch:
    """Wall-clock and CPU seconds (the process's, every thread's) since it was started."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


class RecordRefused(ValueError):
    """A choice's record (``auto.json``) is of other data or settings, or of a WSABIE its
    checkpoints no longer give."""


class _Ledger:
    """What a choice with an ``output_dir`` has done (module docstring, 7): each finished stage's
    record by name, written as the stage ends, which a rerun of the same settings takes instead
    of running the stage again; and the wall-clock and CPU seconds that earlier processes spent
    (``earlier``): on the stages taken from the record, and on the epochs of a stage cut short
    that its checkpoints kept. The budget's clock counts them as spent."""

    def __init__(self, directory, make_settings):
        self.directory = None if directory is None else Path(directory)
        self.settings = make_settings() if self.directory is not None else None  # made only where kept
        self.stages: dict = {}
        self.earlier = [0.0, 0.0]
        self.budget = None if self.settings is None else self.settings["budget"]
        self.kept_larger: dict = {}  # stages taken from the record that ran under a larger budget: name -> budget
        path = self.path
        if path is not None and path.exists():
            from awe_tf.training.callbacks import as_recorded_now, other_settings

            kept = json.loads(path.read_text())
            recorded = as_recorded_now(kept.get("settings") or {}, self.settings)
            refused = other_settings(f"{path} records a choice", {**recorded, "budget": None},
                                     {**self.settings, "budget": None})
            if refused:
                raise RecordRefused(f"{refused}: choose with those, or into another directory (or remove "
                                    f"{self.directory})")
            self.stages = kept["stages"]
            for record in self.stages.values():  # a record of a stage that does not say its budget: the file's
                record.setdefault("budget", recorded.get("budget", self.budget))  # (kept when the file is next written)
            if recorded.get("budget") != self.settings.get("budget"):  # the stages run stand; what the
                self.stages = {name: record for name, record in self.stages.items()  # budget left out: again
                               if not (record.get("trial") or {}).get("note", "").startswith(OVER_BUDGET)}

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / LEDGER

    def take(self, name: str) -> dict | None:
        """The record of the finished stage ``name``, its seconds counted as spent; None if it has none."""
        record = self.stages.get(name)
        if record is not None:
            self.earlier[0] += record["seconds"]
            self.earlier[1] += record["cpu_seconds"]
            ran_under = record.get("budget")
            if record["seconds"] > 0 and name != WSABIE_STAGE and ran_under is not None and ran_under > self.budget:
                self.kept_larger[name] = ran_under
        return record

    def resumed(self, results) -> tuple[float, float]:
        """The seconds earlier processes spent on the epochs the checkpoints of a stage's fits
        (:class:`~awe_tf.training.fit.FitResult`) kept, counted as spent: ``(wall clock, CPU)``."""
        if self.directory is None:  # no checkpoints: nothing resumed
            return 0.0, 0.0
        wall = sum(result.resumed_seconds for result in results)
        cpu = sum(result.resumed_cpu_seconds for result in results)
        self.earlier[0] += wall
        self.earlier[1] += cpu
        return wall, cpu

    def put(self, name: str, record: dict) -> None:
        """Record the finished stage ``name`` (with its ``seconds`` and ``cpu_seconds``). Under a
        multi-worker strategy, every worker reads the chief's record and the others write their
        own copies beside it, as the stages' checkpoints do (:func:`~awe_tf.training.callbacks.worker_directory`)."""
        if self.path is None:
            return
        from awe_tf.training.callbacks import worker_directory

        self.stages[name] = {**record, "budget": self.budget}  # the budget it ran (or was left out) under
        path = self.directory / (worker_directory() or "") / LEDGER
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(STAGED)
        staged.write_text(json.dumps({"settings": self.settings, "stages": self.stages}, indent=1))
        staged.replace(path)  # whole or not at all

    def place(self, name: str) -> Path | None:
        """Where the stage ``name`` keeps its checkpoints (None without a directory)."""
        return None if self.directory is None else stage_directory(self.directory, name)


WSABIE_STAGE = "WSABIE"  # WSABIE's stage, by name, in a choice's record and its output_dir


def refit_stage(affinity: str) -> str:
    """The winner's refit's stage, by name (its affinity's spec)."""
    return f"{affinity} refit"


def stage_directory(output_dir, name: str) -> Path:
    """Where the stage ``name`` (``WSABIE``, a candidate's spec, ``SPEC refit``) of a choice into
    ``output_dir`` keeps its checkpoints: the name with what a file name should not hold as ``_``."""
    return Path(output_dir) / folder_name(name)


def compared_on(monitor: str, check: str) -> str:
    """What candidates are compared on, in words: the mean of the two metrics, or the one where
    they are the same (fewer than 3 labels, :func:`check_metric`)."""
    return monitor if check == monitor else f"the mean of {monitor} and {check}"


def guard_metrics(monitor: str, check: str, n_labels: int, task: str = ANNOTATION) -> tuple[str, ...]:
    """The protocol's reported metrics besides the two compared (by k, whatever their names), on
    none of which a candidate may lose clearly: precision@k at each k the protocol reports
    (annotation: 1, 3, 5 and, with at least 10 labels, 10; recommendation: 1 and 10), below |Y|
    (at k = |Y| every ranking scores the same)."""
    ks = protocol_ks(n_labels) if task == ANNOTATION else (1, 10)
    compared = {int(metric.split("@")[1]) for metric in (monitor, check)}
    return tuple(f"precision@{k}" for k in ks if k < n_labels and k not in compared)


def _real_loss(gain: float, error: float, errors: float = 1.0) -> bool:
    """A loss of at least ``errors`` standard errors (up to :data:`ROUNDING`)."""
    return gain < 0 and gain <= -errors * error + ROUNDING


def _row_scores(model, split, metrics) -> list[np.ndarray]:
    """Per validation row with a positive, each metric (``precision@k`` or ``recall@k``), ranked
    as the protocol ranks."""
    test = split.test
    k = max(int(metric.split("@")[1]) for metric in metrics)
    top = ranked(model.score, test.X, test.n_labels, k, split.exclude, split.candidates)
    return [row_values(top, test.Y, metric) for metric in metrics]


def _paired(rows: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """Mean difference and its standard error over the rows; a mean within :data:`ROUNDING` of 0
    is 0 (rows of thirds that differ both ways sum to a last-bit remainder, not a change)."""
    difference = rows - baseline
    error = float(difference.std(ddof=1) / np.sqrt(difference.size)) if difference.size > 1 else float("inf")
    mean = float(difference.mean())
    return (0.0 if abs(mean) < ROUNDING else mean), error


def _leader(trials: list[Trial]) -> Trial | None:
    """The best candidate on the mean of both metrics among those that beat WSABIE (of the votes,
    only the one at the chosen weight), or None."""
    chosen_vote = _chosen_vote(trials)
    eligible = [trial for trial in trials if trial.beats_wsabie and (not trial.vote or trial is chosen_vote)]
    return _best(eligible, lambda trial: trial.both)


def _chosen_vote(trials: list[Trial]) -> Trial | None:
    """The vote at its chosen weight, the one that competes: the best of the weights run on the
    mean of both metrics (the first, smallest weight, on a tie), or None."""
    return _best((trial for trial in trials if trial.vote and trial.ran), lambda trial: trial.both)


def _best(items, score):
    """The first of ``items`` with the highest ``score`` (None if there are none). Scores within
    :data:`ROUNDING` of the highest tie with it: two means of the same row values, summed in
    another order, can differ in their last bits."""
    items = list(items)
    top = max((score(item) for item in items), default=None)
    return next((item for item in items if score(item) >= top - ROUNDING), None)


def _indented(log):
    """``log`` for a stage's own progress lines (its carve-out, refit and iterative steps), set
    in under the ``auto:`` lines."""
    return lambda line: log(f"{DETAIL}{line.strip()}")


def vote_spec(weight: float, margin: float = 1.0) -> str:
    """The spec of the neighbour vote of weight ``weight`` margins (with :data:`VOTE_K`
    neighbours)."""
    return f"vote:weight={weight * margin:g},k={VOTE_K}"


def _both(rows) -> np.ndarray:
    """Per validation row, the mean of the two metrics (``rows``: the monitored one's, the check's)."""
    return (rows[0] + rows[1]) / 2


def _at_the_cap(epochs, cap: int) -> str:
    """A trial's note where a best epoch is the last one allowed (``TrainConfig.epochs``): its score
    may have gone on rising, so a larger cap may change the choice."""
    return f"{AT_THE_CAP} ({cap}): the score may still be rising" if cap in epochs else ""


def _at_an_end(scores: list[float], best: int) -> str:
    """A closed form's note where the best of its settings tried (their ``scores``, in the order of
    the settings' values: ranks, penalties; ``best`` its place) is the first or last of more than
    two, and above its one neighbour: one beyond it may score higher."""
    if len(scores) <= 2 or best not in (0, len(scores) - 1):
        return ""
    neighbour = scores[1] if best == 0 else scores[-2]
    return ", the best at an end of those tried: one beyond might score higher" if scores[best] > neighbour else ""


def _compared(spec, rows, baseline, guards=(), **fields) -> Trial:
    """A candidate's trial from its validation rows and WSABIE's (paired differences): rows of the
    monitored metric, the check metric, then each of ``guards``."""
    gain, error = _paired(rows[0], baseline[0])
    check_gain, check_error = _paired(rows[1], baseline[1])
    both_gain, both_error = _paired(_both(rows), _both(baseline))
    guard = {metric: _paired(rows[i], baseline[i]) for i, metric in enumerate(guards, start=2)}
    return Trial(spec, float(rows[0].mean()), gain, error, check_gain, check_error,
                 float(_both(rows).mean()), both_gain, both_error, guard=guard, **fields)


def _one_blas_thread(function):
    """``function`` with NumPy's and SciPy's BLAS on one thread while it runs (module docstring)."""

    @functools.wraps(function)
    def limited(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited


@_one_blas_thread
def choose_affinity(train: Dataset, model_config: ModelConfig, train_config: TrainConfig,
                    candidates=CANDIDATES, budget: float = BUDGET, vote_weights=VOTE_WEIGHTS,
                    svd: bool = True, ridge_penalties=RIDGE_PENALTIES, output_dir=None, log=None) -> AutoResult:
    """The recipe of the module docstring.

    Args:
        train: the protocol's training part (its validation carve-out is made here).
        model_config: the model settings of every candidate; its ``affinity`` must be None (the
            choice is among the candidates).
        train_config: the training settings (``monitor`` is the metric compared).
        candidates: the trained candidates' specs, run in this order while the budget allows.
        budget: the most time, in units of WSABIE's run (validation and refit).
        vote_weights: the vote's weights in margins (empty: no vote).
        svd: whether the log-odds SVD is a candidate.
        ridge_penalties: the penalties reduced-rank ridge is made at (empty: no ridge).
        output_dir: where the stages keep their checkpoints and ``auto.json`` records each finished
            stage, so that the same call again after an interruption goes on from them (module
            docstring, 7); None: nothing kept.
        log: where progress lines go (default: printed, unless ``train_config.verbose`` is 0).

    Returns:
        An :class:`AutoResult`: the winner (None: WSABIE), refitted on all of ``train``.
    """
    check_arguments("choose_affinity", train, model_config, train_config)
    if model_config.affinity is not None:  # it would be dropped without a word
        raise ValueError(f"choose_affinity chooses the affinity among its candidates (WSABIE, the vote, the closed "
                         f"forms and candidates={tuple(candidates)}), so model_config's {model_config.affinity!r} "
                         "would be ignored: leave it None (candidates=(..., spec) runs a spec among them)")
    if not budget > 0:
        raise ValueError(f"choose_affinity: budget must be above 0, got {budget!r}")
    log = progress_log(log, train_config)
    from awe_tf.training.callbacks import FREE_ON_RESUME, plain

    ledger = _Ledger(output_dir, lambda: plain({
        "data": train.fingerprint(), "model": dataclasses.replace(model_config, affinity=None).to_dict(),
        "train": {k: v for k, v in train_config.to_dict().items() if k not in FREE_ON_RESUME}, "budget": budget,
        "candidates": list(candidates), "vote_weights": sorted(vote_weights), "svd": svd,
        "ridge_penalties": sorted(ridge_penalties)}))
    began = _Stopwatch()

    def clock() -> tuple[float, float]:
        """Wall-clock and CPU seconds spent on the choice: this call's and earlier processes' (_Ledger)."""
        wall, cpu = began.elapsed()
        return wall + ledger.earlier[0], cpu + ledger.earlier[1]

    def from_record(name: str) -> dict | None:
        record = ledger.take(name)
        if record is not None:
            larger = f"; it ran under a {ledger.kept_larger[name]:g}x budget" if name in ledger.kept_larger else ""
            log(f"auto: {name}: as an earlier run {'decided' if record['seconds'] == 0 else 'finished'} it "
                f"({ledger.path}{'; its models restored from their checkpoints' if name == WSABIE_STAGE else ''}"
                f"{larger})")
        return record

    def finished(name: str, trial: Trial, **more) -> Trial:
        ledger.put(name, {**more, "trial": dataclasses.asdict(trial), "seconds": trial.seconds,
                          "cpu_seconds": trial.cpu_seconds})
        return trial

    monitor = train_config.monitor
    check = check_metric(monitor, train.n_labels)
    guards = guard_metrics(monitor, check, train.n_labels, train.task)
    scored_on = (monitor, check, *guards)
    carve = checked_validation(train, "the affinity", "name one and " + WITHOUT_VALIDATION)
    linear = dataclasses.replace(model_config, affinity=None)
    stage = _indented(log)  # each stage's own progress, under the auto: line that names it
    log(f"auto: WSABIE first (the fallback, the start of the trained candidates and the unit of the {budget:g}x "
        "CPU-time budget)")
    recorded = from_record(WSABIE_STAGE)  # its checkpoints give back its models (quietly); its record, its time
    wsabie = validate_then_refit(train, linear, train_config if recorded is None else dataclasses.replace(
        train_config, verbose=0), 1, output_dir=ledger.place(WSABIE_STAGE), log=stage if recorded is None else
        (lambda line: None))
    epochs, wsabie_stage, wsabie_final = wsabie.epochs, wsabie.validation.model, wsabie.final
    digest = tables_digest(wsabie_final.model) if ledger.path is not None else None
    if recorded is None:
        ledger.resumed([wsabie.validation, wsabie.final])  # epochs an interrupted earlier process trained
        unit_wall, unit = clock()
        ledger.put(WSABIE_STAGE, {"seconds": unit_wall, "cpu_seconds": unit, "tables": digest})
    else:
        if recorded["tables"] != digest:  # its checkpoints gone or changed: trained again, otherwise
            raise RecordRefused(f"{ledger.path} records a choice whose WSABIE is not the one its checkpoints now "
                                f"give ({ledger.place(WSABIE_STAGE)} removed or changed): choose into another "
                                f"directory (or remove {ledger.directory})")
        began = _Stopwatch()  # restoring it is not counted: its record is
        unit_wall, unit = recorded["seconds"], recorded["cpu_seconds"]
    baseline = _row_scores(wsabie_stage, carve, scored_on)
    n_rows = int(baseline[0].size)
    trials = [Trial(None, float(baseline[0].mean()), both=float(_both(baseline).mean()), epochs=epochs,
                    seconds=unit_wall, cpu_seconds=unit, note=_at_the_cap(epochs, train_config.epochs))]
    results = {}

    def time_spent() -> dict:
        """What the result says of the time: all of it (CPU), and the budget it was chosen within."""
        return {"cpu_seconds": clock()[1], "budget": (budget, unit), "kept_larger": dict(ledger.kept_larger)}

    def left_out(expected: float) -> str | None:
        """A trial's note where what it is ``expected`` to take (CPU seconds, with a winner's making
        after it) would pass the budget; None where it fits."""
        spent = clock()[1]
        return over_budget(budget, expected, spent, budget * unit) if spent + expected > budget * unit else None

    def per_vote() -> float:
        """A vote's building and scoring: the longest so far, guessed until one has run."""
        return max((trial.cpu_seconds for trial in trials if trial.vote and trial.ran), default=unit / 10)

    for weight in sorted(vote_weights):  # ascending: the smaller weight wins a tie
        spec = vote_spec(weight, model_config.margin)
        record = from_record(spec)
        if record is not None:
            trials.append(Trial.from_record(record["trial"]))
            continue
        skipped = left_out(2 * per_vote())  # itself and the build a winner needs
        if skipped:
            trials.append(finished(spec, Trial(spec, note=skipped, vote=True)))
            continue
        log(f"auto: {spec}, built on WSABIE's model as it is, on the validation carve-out")
        started = _Stopwatch()
        vote = on_linear_model(carve.train, dataclasses.replace(model_config, affinity=spec), wsabie_stage)
        rows = _row_scores(vote.model, carve, scored_on)
        seconds, cpu = started.elapsed()
        trials.append(finished(spec, _compared(spec, rows, baseline, guards, vote=True, seconds=seconds,
                                               cpu_seconds=cpu, note="WSABIE's model, nothing trained")))
    closed_forms = {}  # each closed-form candidate: its row's note and its models (name, model) on a part
    if svd:
        ranks = svd_ranks(model_config.dimension)
        closed_forms[SVD] = (f"the best of rank {', '.join(map(str, ranks))} on the carve-out",
                             lambda part: ((svd_name(rank), model) for rank, model in svd_starts(part, linear, ranks)))
    penalties = sorted(ridge_penalties) if train.task == ANNOTATION else []
    if penalties:
        closed_forms[RIDGE] = (f"the best of lambda {', '.join(map('{:g}'.format, penalties))} on the carve-out",
                               lambda part: ((ridge_name(penalty), model)
                                             for penalty, model in ridge_starts(part, linear, penalties)))
    made_by = {}  # a closed-form candidate's family's models, by the candidate's name, for a winner's making
    for family, (note, models) in closed_forms.items():
        record = from_record(family)
        if record is not None:
            trials.append(Trial.from_record(record["trial"]))
            made_by[trials[-1].made] = models
            continue
        # its making and scoring, and a winner's making on the whole part: guessed as a vote's
        skipped = left_out(2 * per_vote())
        if skipped:
            trials.append(finished(family, Trial(None, note=skipped, made=family)))
            continue
        log(f"auto: the {family} (G = 1, U and V its factors), nothing trained, on the validation carve-out")
        started = _Stopwatch()
        scored = [(name, _row_scores(model, carve, scored_on)) for name, model in models(carve.train)]
        name, rows = _best(scored, lambda item: _both(item[1]).mean())  # the first on a tie
        seconds, cpu = started.elapsed()
        if len(scored) > 1:  # each one's score, in order, and whether the best is at an end of them
            means = [_both(each).mean() for _, each in scored]
            note += f" (mean of both {', '.join(f'{mean:.4f}' for mean in means)})"
            note += _at_an_end(means, [each for each, _ in scored].index(name))
        trials.append(finished(family, _compared(None, rows, baseline, guards, seconds=seconds, cpu_seconds=cpu,
                                                 made=name, note=f"{note}, nothing trained")))
        made_by[name] = models
    per_step = unit / 2  # a candidate's carve-out training per step, guessed from WSABIE's until one has run

    def refit_cost(trial: Trial | None) -> float:
        """The CPU seconds the refit of the best candidate so far is expected to take."""
        if trial is None or trial.vote:  # WSABIE's refit is made; a vote's build is counted with the votes
            return 0.0
        return trial.cpu_seconds if trial.made else per_step * results[trial.affinity][1]  # a closed form: as made

    for spec in candidates:
        config = dataclasses.replace(model_config, affinity=spec)
        iterations = ITERATIONS if is_iterative(config) else 1
        record = from_record(spec)
        if record is not None:
            trials.append(Trial.from_record(record["trial"]))
        else:
            own = per_step * iterations  # its training; then the refit of whichever would win: itself or the leader
            skipped = left_out(own + max(own, refit_cost(_leader(trials))))
            if skipped:
                trials.append(finished(spec, Trial(spec, note=skipped)))
                continue
            log(f"auto: {spec}, from WSABIE, on the validation carve-out")
            started = _Stopwatch()
            chosen, steps = choose_epochs(train, config, engine_for(config, train_config), iterations,
                                          output_dir=ledger.place(spec), init_from=wsabie_stage, log=stage)
            rows = _row_scores(steps[-1].model, carve, scored_on)
            seconds, cpu = (now + before for now, before in zip(started.elapsed(), ledger.resumed(steps), strict=True))
            shown = chosen[1:] if is_iterative(config) else chosen  # step 0 is WSABIE itself
            kept = "no epoch beat WSABIE's start, kept as it is" if not any(shown) else ""  # epoch 0: the start
            note = "; ".join(filter(None, (kept, _at_the_cap(shown, train_config.epochs))))
            trials.append(finished(spec, _compared(spec, rows, baseline, guards, epochs=shown, seconds=seconds,
                                                   cpu_seconds=cpu, note=note), chosen=chosen))
            record = {"chosen": chosen}
        if trials[-1].ran:
            per_step = max(per_step, trials[-1].cpu_seconds / iterations)
            results[spec] = (record["chosen"], iterations)
    winner = _leader(trials)
    if winner is None:
        log(f"auto: WSABIE kept: no candidate beats it on the carve-out by the rule (on "
            f"{compared_on(monitor, check)}: a trained or closed-form one by more than one standard error, the vote "
            f"at all; none losing one standard error on either metric, or {GUARD_ERRORS:g} on another reported one)")
        return AutoResult(None, wsabie_final, trials, clock()[0], epochs, monitor, check, n_rows, **time_spent())
    config = dataclasses.replace(model_config, affinity=winner.affinity)
    if winner.vote:  # built, not trained: nothing to refit
        log(f"auto: {winner.affinity} wins; building it on WSABIE's model refitted on the whole training part")
        final = on_linear_model(train, config, wsabie_final.model)
        return AutoResult(winner.affinity, final, trials, clock()[0], epochs, monitor, check, n_rows, **time_spent())
    if winner.made:  # made, not trained
        log(f"auto: the {winner.made} wins; making it from the whole training part")
        started = _Stopwatch()
        models = made_by[winner.made](train)  # up to the winner's: ridge's basis is found once, then each penalty's
        final = FitResult.as_given(next(model for name, model in models if name == winner.made))
        final.train_seconds = started.elapsed()[0]  # the making's
        return AutoResult(None, final, trials, clock()[0], [0], monitor, check, n_rows, made=winner.made,
                          **time_spent())
    log(f"auto: {winner.affinity} wins; refitting it on the whole training part")
    chosen, iterations = results[winner.affinity]
    final = refit(train, config, engine_for(config, train_config), chosen, iterations, init_from=wsabie_final.model,
                  output_dir=ledger.place(refit_stage(winner.affinity)), log=stage)
    ledger.resumed([final])  # the refit's epochs an earlier process trained (all of them, where it finished)
    if is_iterative(config):  # step 0 is WSABIE's refit, of WSABIE's epochs
        chosen = [epochs[0], *chosen[1:]]
    return AutoResult(winner.affinity, final, trials, clock()[0], chosen, monitor, check, n_rows, **time_spent())
