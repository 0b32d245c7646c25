"""Driver-side Tune callbacks: one MLflow child run per trial, and a one-line-per-trial progress display."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ray.tune import Callback
from ray.tune.experiment import Trial as TuneTrial

from ..config import SweepConfig
from ..provenance import DEVICE, UNKNOWN
from ..record import FAILED, FINISHED, INTERRUPTED, STOPPED
from .params import trial_params
from .plan import Trial
from .tracking import SweepStore
from .trainable import Evaluation, Outcome, read_eval, read_outcome, read_provenance


def _trial(tune_trial: TuneTrial) -> Trial:
    return Trial.from_config(tune_trial.config["trial"])


def _error(tune_trial: TuneTrial) -> str:
    error = tune_trial.get_error()
    return str(error).strip().splitlines()[-1] if error else "the trial's worker failed"


@dataclass
class _Open:
    """A child run being written."""

    run_id: str
    name: str
    key: str
    started: float
    logged: set[int] = field(default_factory=set)
    """Steps whose evaluation is logged (a trial restarted by Tune reports some again)."""
    provenance: dict[str, str] = field(default_factory=dict)
    """The provenance tags last written (the trial's worker reports them with every result)."""


class TrackingCallback(Callback):
    """Logs each trial to its MLflow child run: params at the start, metrics at every evaluation,
    the provenance tags its worker reports, the outcome (status, reason, final measurements) and
    its checkpoint (:meth:`SweepStore.log_checkpoint`, from ``<trials_dir>/<run key>``) at the end.

    ``provenance`` (the driver's, without a device) tags a run whose worker never reported its own
    (a worker that crashed), with ``miras.device=unknown``."""

    def __init__(
        self,
        store: SweepStore,
        parent_id: str,
        config: SweepConfig,
        trials_dir: Path | None = None,
        provenance: dict[str, str] | None = None,
    ) -> None:
        self.store, self.parent_id, self.config = store, parent_id, config
        self.trials_dir = trials_dir
        self.provenance = {k: v for k, v in (provenance or {}).items() if k != DEVICE} | {DEVICE: UNKNOWN}
        self.open: dict[str, _Open] = {}
        self.ended: dict[str, str] = {}
        """Run name -> status of every trial ended by this driver."""
        self.trial_seconds = 0.0
        """Time from start to end of the trials ended by this driver, summed."""
        self.training_seconds = 0.0
        """Their training loops' time, summed (``wall_seconds``)."""

    def on_trial_start(self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, **info: Any) -> None:
        if trial.trial_id in self.open:
            return  # restarted by Tune after a worker failure: keep writing the same run
        spec = _trial(trial)
        params = trial_params(self.config, spec)
        run_id = self.store.start_trial(self.parent_id, spec.name, spec.key, spec.cell.combination, params)
        self.open[trial.trial_id] = _Open(run_id, spec.name, spec.key, time.monotonic())

    def on_trial_result(
        self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, result: dict[str, Any], **info: Any
    ) -> None:
        run = self.open.get(trial.trial_id)
        if run is None:
            return
        provenance = read_provenance(result)
        if provenance and provenance != run.provenance:
            self.store.set_tags(run.run_id, provenance)
            run.provenance = provenance
        evaluation = read_eval(result)
        if evaluation is not None and evaluation.step not in run.logged:
            self.store.log_metrics(run.run_id, evaluation.metrics, evaluation.step)
            run.logged.add(evaluation.step)
        outcome = read_outcome(result)
        if outcome is not None:
            self._end(trial, outcome)

    def on_trial_complete(self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, **info: Any) -> None:
        if trial.trial_id in self.open:  # no outcome: the scheduler stopped it
            self._end(trial, Outcome(STOPPED, "stopped early by the scheduler (ASHA)"))

    def on_trial_error(self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, **info: Any) -> None:
        if trial.trial_id in self.open:
            self._end(trial, Outcome(FAILED, _error(trial)))

    def _end(self, trial: TuneTrial, outcome: Outcome) -> None:
        run = self.open.pop(trial.trial_id)
        for evaluation in outcome.history:
            metrics = evaluation.metrics
            if evaluation.step in run.logged:
                metrics = {k: v for k, v in metrics.items() if k == "train_loss"}
            if metrics:
                self.store.log_metrics(run.run_id, metrics, evaluation.step)
        if outcome.summary:
            self.store.log_metrics(run.run_id, outcome.summary)
        self.trial_seconds += time.monotonic() - run.started
        self.training_seconds += outcome.summary.get("wall_seconds", 0.0)
        if not run.provenance:
            self.store.set_tags(run.run_id, self.provenance)
        if self.trials_dir is not None:
            try:
                self.store.log_checkpoint(run.run_id, self.trials_dir / run.key)
            except Exception as error:  # an artifact store that refuses must not stop the sweep
                self.store.set_tags(run.run_id, {"miras.checkpoint_error": f"{type(error).__name__}: {error}"[:5000]})
        reason = None if outcome.status == FINISHED else outcome.reason
        self.store.end_trial(run.run_id, outcome.status, reason)
        self.ended[run.name] = outcome.status

    def interrupt(self) -> list[str]:
        """End the runs of trials still open (the sweep was interrupted); returns their names."""
        runs = list(self.open.values())
        self.open.clear()
        for run in runs:
            self.store.end_trial(run.run_id, INTERRUPTED, "the sweep was interrupted; rerun it to resume")
        return [run.name for run in runs]


class ProgressCallback(Callback):
    """Prints one line when a trial starts, one at each of its evaluations (step, objective, time so
    far) and one when it ends (status, objective, time, and the sweep's estimated time left: its
    elapsed time per ended trial times the trials left)."""

    def __init__(self, total: int, metric: str, stream: TextIO) -> None:
        self.total, self.metric, self.stream = total, metric, stream
        self.done = 0
        self.started: dict[str, float] = {}
        self.first_start: float | None = None

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def on_trial_start(self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, **info: Any) -> None:
        now = time.monotonic()
        self.started.setdefault(trial.trial_id, now)
        self.first_start = self.first_start if self.first_start is not None else now
        spec = _trial(trial)
        self._print(f"  start     {spec.name}  (lr {spec.lr:.3g}, run key {spec.key})")

    def on_trial_result(
        self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, result: dict[str, Any], **info: Any
    ) -> None:
        evaluation = read_eval(result)
        if evaluation is not None and trial.trial_id in self.started:
            self._print(f"  eval      {_trial(trial).name}  {self._evaluated(trial, evaluation)}")
        outcome = read_outcome(result)
        if outcome is not None:
            best = outcome.summary.get(f"best_{self.metric}")
            detail = f"best {self.metric} {best:.4g}" if best is not None else (outcome.reason or "").strip()
            self._end(trial, outcome.status, detail.splitlines()[0] if detail else "")

    def _evaluated(self, trial: TuneTrial, evaluation: Evaluation) -> str:
        """``step 250: test_accuracy 0.8125 (41 s in)``: the step, the objective's metric when
        evaluated, and the trial's time so far."""
        value = evaluation.metrics.get(self.metric)
        shown = f": {self.metric} {value:.4g}" if value is not None else ""
        return f"step {evaluation.step}{shown} ({time.monotonic() - self.started[trial.trial_id]:.0f} s in)"

    def on_trial_complete(self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, **info: Any) -> None:
        if trial.trial_id in self.started:
            self._end(trial, STOPPED, "stopped early by the scheduler")

    def on_trial_error(self, iteration: int, trials: list[TuneTrial], trial: TuneTrial, **info: Any) -> None:
        if trial.trial_id in self.started:
            self._end(trial, FAILED, _error(trial))

    def _end(self, trial: TuneTrial, status: str, detail: str) -> None:
        now = time.monotonic()
        seconds = now - self.started.pop(trial.trial_id)
        self.done += 1
        width = len(str(self.total))
        left = self.total - self.done
        eta = ""
        if left > 0 and self.first_start is not None:
            eta = f"; about {_duration((now - self.first_start) / self.done * left)} left"
        self._print(
            f"  [{self.done:>{width}}/{self.total}] {status:<9} {_trial(trial).name}  {detail}  ({seconds:.1f} s{eta})"
        )


def _duration(seconds: float) -> str:
    """``42`` -> ``42 s``, ``150`` -> ``2.5 min``, ``7300`` -> ``2.0 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


__all__ = ["ProgressCallback", "TrackingCallback"]
