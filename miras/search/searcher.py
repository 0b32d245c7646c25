"""Best-of-N learning rates per cell: one Optuna TPE study per cell, driven through Ray Tune's OptunaSearch.

Each cell (combination x width x seed) gets ``search.trials`` trials whose learning rate its own
study samples from ``search.lr``; :class:`CellSearch` hands out their suggestions in turn so all
cells progress together. Studies live in a sqlite file under the sweep's output folder and are
loaded again on resume: rates that were tried but have no finished MLflow run are tried first
(same rate, same run key, so the trial resumes from its checkpoint), then TPE samples the rest.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from .messages import OBJECTIVE, Mode
from .plan import Cell, Plan


@dataclass
class _Queue:
    """The trials a cell still has to run."""

    cell: Cell
    remaining: int
    searcher: OptunaSearch


def tried(storage: optuna.storages.BaseStorage, study: str) -> list[FrozenTrial]:
    """The trials a cell's study already holds (none for a new study)."""
    if study not in optuna.study.get_all_study_names(storage):
        return []
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def retry_rates(
    storage: optuna.storages.BaseStorage, trials: list[FrozenTrial], plan: Plan, cell: Cell, done: set[str]
) -> list[float]:
    """Rates among ``trials`` (the cell's study) whose trial has no finished run, in the order tried.

    Trials the study still holds as running or waiting (their driver was killed) are marked
    failed, so that TPE does not wait for them.
    """
    rates: list[float] = []
    for trial in trials:
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        lr = trial.params.get("lr")
        if lr is not None and lr not in rates and plan.trial(cell, lr).key not in done:
            rates.append(lr)
    return rates


class CellSearch(Searcher):
    """Suggests ``{"trial": ...}`` configs, taking turns among the cells that still have trials to run."""

    def __init__(self, plan: Plan, remaining: dict[Cell, int], storage_url: str, done: set[str], mode: Mode) -> None:
        super().__init__(metric=OBJECTIVE, mode=mode)
        if plan.lr_range is None:
            raise ValueError("CellSearch samples a learning-rate range; this sweep has fixed rates")
        self.plan = plan
        storage = optuna.storages.RDBStorage(storage_url)
        space = {"lr": FloatDistribution(plan.lr_range.low, plan.lr_range.high, log=plan.lr_range.log)}
        self.queues: list[_Queue] = []
        for cell, count in remaining.items():
            if count <= 0:
                continue
            study = plan.cell_name(cell)
            previous = tried(storage, study)
            retry = retry_rates(storage, previous, plan, cell, done)[:count]
            # Seeded by the cell and the trials so far: reproducible, and a resumed study does
            # not replay the rates its first session drew (same rate = same run key).
            seed = zlib.crc32(study.encode()) + len(previous)
            searcher = OptunaSearch(
                space=space,
                metric=OBJECTIVE,
                mode=mode,
                sampler=optuna.samplers.TPESampler(seed=seed),
                study_name=study,
                storage=storage,
                points_to_evaluate=[{"lr": lr} for lr in retry] or None,
            )
            self.queues.append(_Queue(cell, count, searcher))
        self.owner: dict[str, _Queue] = {}
        self.turn = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        waiting = [queue for queue in self.queues if queue.remaining > 0]
        if not waiting:
            return Searcher.FINISHED
        queue = waiting[self.turn % len(waiting)]
        self.turn += 1
        params = queue.searcher.suggest(trial_id)
        if params is None:
            return None
        queue.remaining -= 1
        self.owner[trial_id] = queue
        return {"trial": self.plan.trial(queue.cell, params["lr"]).to_config()}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.owner:
            self.owner[trial_id].searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        queue = self.owner.pop(trial_id, None)
        if queue is not None:
            queue.searcher.on_trial_complete(trial_id, result, error)


__all__ = ["CellSearch", "retry_rates", "tried"]
