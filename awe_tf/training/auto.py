"""``--affinity auto``: the affinity chosen on the protocol's validation carve-out, with WSABIE
among the candidates, within a time budget; one recipe for every data set.

1. WSABIE is trained the protocol's way (epochs chosen on the carve-out, then refitted): it is
   the fallback, the starting point of every candidate and the unit of the budget.
2. Each candidate affinity (:data:`CANDIDATES`, in order) is trained on the carve-out starting
   from WSABIE's carve-out model, with early stopping, as long as the budget allows it and the
   refit it would need: joint learning from WSABIE's U and V (the start counts as epoch 0), or,
   for G built from the training set (k-NN), the paper's iterative scheme with WSABIE as step 0
   and :data:`ITERATIONS` rebuilds of G.
3. Each validation row is scored on the monitored metric and on the protocol's other reported
   one (:func:`check_metric`: P@3 beside P@1). A candidate replaces WSABIE only if it beats
   WSABIE on the mean of the two by more than one standard error of the paired difference over
   the rows, and is below WSABIE on neither by more than one standard error. Small validation
   sets, where a gain could be noise, keep WSABIE. The best such candidate on that mean wins.
   A candidate's gain includes the epochs it trains on from WSABIE's model: where WSABIE's
   own epochs were capped below where its validation score stops rising (a small
   ``TrainConfig.epochs``), G = 1 trained on the same way gains too, and so would a candidate.
4. The winner is refitted on the whole training part, from WSABIE's refitted model.

Because G = 1 is WSABIE, the recipe cannot do worse than WSABIE on the carve-out by more than
the noise it guards against; the test part is scored once, afterwards, by the caller.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from awe_tf.config import ModelConfig, TrainConfig, engine_for
from awe_tf.data.dataset import Dataset
from awe_tf.metrics import ranked, row_values
from awe_tf.training.fit import FitResult
from awe_tf.training.selection import checked_validation, choose_epochs, is_iterative, refit, validate_then_refit

CANDIDATES = ("knn:k=20", "constant:0.3+knn:k=20", "linear-sigmoid:alpha=1,beta=0")
BUDGET = 5.0  # the most time, in units of the WSABIE run (validation and refit) it makes first
ITERATIONS = 3  # G rebuilds of an iterative candidate after WSABIE, its step 0 (the paper's T)


@dataclasses.dataclass
class Trial:
    """One candidate on the carve-out: its validation score on the monitored metric (``score``) and
    on the mean of that and the check metric (``both``), means over the validation rows; the
    differences from WSABIE's of each metric and of their mean, with standard errors; the epochs
    it chose, its time, and why it was or was not run."""

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
    note: str = ""

    @property
    def name(self) -> str:
        return self.affinity or "constant (WSABIE)"

    @property
    def ran(self) -> bool:
        return bool(np.isfinite(self.score))

    @property
    def beats_wsabie(self) -> bool:
        """A real gain on the mean of the two metrics (more than one standard error) and no real
        loss on either (not more than one standard error below WSABIE)."""
        return (self.affinity is not None and self.ran and self.both_gain > 0 and self.both_gain > self.both_error
                and self.gain >= -self.standard_error and self.check_gain >= -self.check_error)


@dataclasses.dataclass
class AutoResult:
    """The chosen affinity (None: WSABIE), the refitted model's result, every trial, the time."""

    affinity: str | None
    final: FitResult
    trials: list[Trial]
    seconds: float
    epochs: list
    monitor: str = "precision@1"
    check: str = "precision@3"

    def table(self, monitor: str | None = None) -> str:
        """The validation table, one line per candidate, the winner marked."""
        monitor = monitor or self.monitor
        lines = [f"{'candidate':<34}{'validation ' + monitor:>24}{'vs WSABIE':>18}"
                 f"{self.check + ' vs WSABIE':>26}{'mean of both vs WSABIE':>26}{'epochs':>10}{'seconds':>9}"]
        for trial in self.trials:
            mark = "*" if trial.affinity == self.affinity else " "
            score = f"{trial.score:.4f}" if trial.ran else "-"
            compared = trial.affinity is not None and trial.ran
            gain = f"{trial.gain:+.4f} ± {trial.standard_error:.4f}" if compared else ""
            check = f"{trial.check_gain:+.4f} ± {trial.check_error:.4f}" if compared else ""
            both = f"{trial.both_gain:+.4f} ± {trial.both_error:.4f}" if compared else ""
            epochs = "+".join(map(str, trial.epochs)) if trial.epochs else "-"
            lines.append(f"{mark} {trial.name:<32}{score:>24}{gain:>18}{check:>26}{both:>26}{epochs:>10}"
                         f"{trial.seconds:>9.1f}" + (f"   {trial.note}" if trial.note else ""))
        return "\n".join(lines)


def check_metric(monitor: str) -> str:
    """The second metric a candidate must not lose on: the protocols report P@1 with P@3 for
    annotation and P@1 with P@10 for recommendation, so k = 3 beside k = 1, else k = 1."""
    name, k = monitor.split("@")
    return f"{name}@{3 if int(k) == 1 else 1}"


def _row_scores(model, split, metrics) -> list[np.ndarray]:
    """Per validation row with a positive, each metric (``precision@k`` or ``recall@k``), ranked
    as the protocol ranks."""
    test = split.test
    k = max(int(metric.split("@")[1]) for metric in metrics)
    top = ranked(model.score, test.X, test.n_labels, k, split.exclude, split.candidates)
    return [row_values(top, test.Y, metric) for metric in metrics]


def _paired(rows: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """Mean difference and its standard error over the rows."""
    difference = rows - baseline
    error = float(difference.std(ddof=1) / np.sqrt(difference.size)) if difference.size > 1 else float("inf")
    return float(difference.mean()), error


def _leader(trials: list[Trial]) -> Trial | None:
    """The best candidate on the mean of both metrics among those that beat WSABIE, or None."""
    return max((trial for trial in trials if trial.beats_wsabie), key=lambda trial: trial.both, default=None)


def choose_affinity(train: Dataset, model_config: ModelConfig, train_config: TrainConfig,
                    candidates=CANDIDATES, budget: float = BUDGET, log=print) -> AutoResult:
    """The recipe of the module docstring; ``model_config.affinity`` is ignored."""
    began = time.perf_counter()
    monitor = train_config.monitor
    check = check_metric(monitor)
    carve = checked_validation(train)
    linear = dataclasses.replace(model_config, affinity=None)
    log(f"auto: WSABIE first (the fallback, the starting point and the unit of the {budget:g}x time budget)")
    wsabie = validate_then_refit(train, linear, train_config, 1, log=lambda line: None)
    epochs, wsabie_stage, wsabie_final = wsabie.epochs, wsabie.validation.model, wsabie.final
    unit = time.perf_counter() - began
    baseline = _row_scores(wsabie_stage, carve, (monitor, check))
    trials = [Trial(None, float(baseline[0].mean()), both=float((baseline[0] + baseline[1]).mean() / 2), epochs=epochs,
                    seconds=unit)]
    results = {}
    per_step = unit / 2  # a candidate's carve-out training per step, guessed from WSABIE's until one has run
    leader_steps = 0  # the steps of the best candidate so far: its refit must fit in the budget too
    for spec in candidates:
        config = dataclasses.replace(model_config, affinity=spec)
        iterations = ITERATIONS if is_iterative(config) else 1
        spent = time.perf_counter() - began
        # its training, and the refit of whichever would win: itself or the best so far
        if spent + per_step * (iterations + max(iterations, leader_steps)) > budget * unit:
            trials.append(Trial(spec, note=f"not run: over the {budget:g}x budget"))
            continue
        log(f"auto: {spec}, from WSABIE, on the validation carve-out")
        started = time.perf_counter()
        chosen, steps = choose_epochs(train, config, engine_for(config, train_config), iterations,
                                      init_from=wsabie_stage, log=lambda line: None)
        rows = _row_scores(steps[-1].model, carve, (monitor, check))
        gain, error = _paired(rows[0], baseline[0])
        check_gain, check_error = _paired(rows[1], baseline[1])
        both_gain, both_error = _paired((rows[0] + rows[1]) / 2, (baseline[0] + baseline[1]) / 2)
        seconds = time.perf_counter() - started
        per_step = max(per_step, seconds / iterations)
        shown = chosen[1:] if is_iterative(config) else chosen  # step 0 is WSABIE itself
        trials.append(Trial(spec, float(rows[0].mean()), gain, error, check_gain, check_error,
                            float((rows[0] + rows[1]).mean() / 2), both_gain, both_error, shown, seconds))
        results[spec] = (chosen, iterations)
        leader = _leader(trials)
        leader_steps = results[leader.affinity][1] if leader is not None else 0
    winner = _leader(trials)
    if winner is None:
        log(f"auto: no candidate beats WSABIE on the carve-out by more than its standard error on the mean of "
            f"{monitor} and {check} without losing by more than that on either: WSABIE")
        return AutoResult(None, wsabie_final, trials, time.perf_counter() - began, epochs, monitor, check)
    log(f"auto: {winner.affinity} wins; refitting it on the whole training part")
    chosen, iterations = results[winner.affinity]
    config = dataclasses.replace(model_config, affinity=winner.affinity)
    final = refit(train, config, engine_for(config, train_config), chosen, iterations, init_from=wsabie_final.model,
                  log=lambda line: None)
    if is_iterative(config):  # step 0 is WSABIE's refit, of WSABIE's epochs
        chosen = [epochs[0], *chosen[1:]]
    return AutoResult(winner.affinity, final, trials, time.perf_counter() - began, chosen, monitor, check)
