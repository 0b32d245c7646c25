"""Best-of-N search per cell: one Optuna TPE study per searched cell, driven through Ray Tune's OptunaSearch.

Each searched cell (combination x width x seed with a range among its searched settings) gets
``search.trials_per_combination`` trials whose values its own study samples: ``lr`` (the study's
name for ``training.lr``) and every other setting of :meth:`Plan.dimensions` that applies to the
cell, ranges as float or int distributions and lists as categorical ones. :class:`CellSearch`
hands out their suggestions in turn so all cells progress together, after the sweep's fixed
trials (cells without a range). Studies live in a sqlite file under the sweep's output folder and
are loaded again on resume: values that were tried but have no finished MLflow run are tried
first (same values, same run key, so the trial resumes from its checkpoint), then TPE samples the rest.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from ..config.searched import Dimension
from ..record import Mode
from .plan import Cell, Plan, Trial
from .trainable import OBJECTIVE, objective_keys

LR = "lr"
"""The study's name of ``training.lr`` (the name studies have always used)."""


@dataclass
class _Queue:
    """The trials a cell still has to run."""

    cell: Cell
    remaining: int
    searcher: OptunaSearch


def study_param(path: str) -> str:
    """The name of a searched setting in a cell's study."""
    return LR if path == "training.lr" else path


def distribution(dimension: Dimension) -> BaseDistribution:
    """The Optuna distribution of a searched setting."""
    values = dimension.values
    if isinstance(values, list):
        return CategoricalDistribution(values)
    if getattr(values, "int", False):
        return IntDistribution(int(values.low), int(values.high), log=values.log)
    return FloatDistribution(values.low, values.high, log=values.log)


def trial_values(params: dict[str, Any]) -> dict[str, Any]:
    """A study's trial params -> the plan's values (path -> value)."""
    return {("training.lr" if name == LR else name): value for name, value in params.items()}


def tried(storage: optuna.storages.BaseStorage, study: str) -> list[FrozenTrial]:
    """The trials a cell's study already holds (none for a new study)."""
    if study not in optuna.study.get_all_study_names(storage):
        return []
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def retry_points(
    storage: optuna.storages.BaseStorage, trials: list[FrozenTrial], plan: Plan, cell: Cell, done: set[str]
) -> list[dict[str, Any]]:
    """Params among ``trials`` (the cell's study) whose trial has no finished run, in the order tried.

    Trials the study still holds as running or waiting (their driver was killed) are marked
    failed, so that TPE does not wait for them.
    """
    points: list[dict[str, Any]] = []
    for trial in trials:
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if trial.params and trial.params not in points and plan.trial(cell, trial_values(trial.params)).key not in done:
            points.append(dict(trial.params))
    return points


class CellSearch(Searcher):
    """Suggests ``{"trial": ...}`` configs: the ``fixed`` trials first, then taking turns among the
    searched cells that still have trials to run."""

    def __init__(
        self,
        plan: Plan,
        remaining: dict[Cell, int],
        storage_url: str,
        done: set[str],
        mode: Mode | list[Mode],
        fixed: list[Trial] | None = None,
    ) -> None:
        """``mode``: of the one objective, or a list, one per objective (multi-objective TPE over the
        result keys :func:`objective_keys`)."""
        modes = mode if isinstance(mode, list) else [mode]
        super().__init__(metric=OBJECTIVE, mode=modes[0])
        metric = objective_keys(len(modes)) if len(modes) > 1 else OBJECTIVE
        study_mode = modes if len(modes) > 1 else modes[0]
        self.plan = plan
        self.fixed = list(fixed or [])
        storage = optuna.storages.RDBStorage(storage_url)
        self.queues: list[_Queue] = []
        for cell, count in remaining.items():
            if count <= 0:
                continue
            if not plan.searched(cell):
                raise ValueError(f"cell {plan.cell_name(cell)} has no range to sample: it runs as fixed trials")
            space = {study_param(d.path): distribution(d) for d in plan.dimensions(cell)}
            study = plan.cell_name(cell)
            previous = tried(storage, study)
            retry = retry_points(storage, previous, plan, cell, done)[:count]
            # Seeded by the cell and the trials so far: reproducible, and a resumed study does
            # not replay the rates its first session drew (same rate = same run key).
            seed = zlib.crc32(study.encode()) + len(previous)
            searcher = OptunaSearch(
                space=space,
                metric=metric,
                mode=study_mode,
                sampler=optuna.samplers.TPESampler(seed=seed),
                study_name=study,
                storage=storage,
                points_to_evaluate=retry or None,
            )
            self.queues.append(_Queue(cell, count, searcher))
        self.owner: dict[str, _Queue] = {}
        self.turn = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.fixed:
            return {"trial": self.fixed.pop(0).to_config()}
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
        return {"trial": self.plan.trial(queue.cell, trial_values(params)).to_config()}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.owner:
            self.owner[trial_id].searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        queue = self.owner.pop(trial_id, None)
        if queue is not None:
            queue.searcher.on_trial_complete(trial_id, result, error)


__all__ = ["CellSearch", "distribution", "retry_points", "study_param", "trial_values", "tried"]
