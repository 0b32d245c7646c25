"""What a sweep still has to run, given the trials that already have a finished MLflow run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mlflow.entities import Run

from ..record import COMBINATION, RUN_KEY
from .plan import Cell, Plan, Trial


@dataclass
class Work:
    """The trials left: fixed-rate trials by run key, or the remaining budget of each searched cell."""

    done: set[str]
    """Run keys of the finished trials."""
    trials: list[Trial] = field(default_factory=list)
    """Fixed trials (cells without a range) without a finished run."""
    budget: dict[Cell, int] = field(default_factory=dict)
    """Searched cells: trials still to sample."""

    @property
    def count(self) -> int:
        return len(self.trials) + sum(self.budget.values())

    @classmethod
    def left(cls, plan: Plan, finished: Sequence[Run]) -> Work:
        done = {run.data.tags.get(RUN_KEY, "") for run in finished}
        trials = [trial for trial in plan.fixed_trials() if trial.key not in done]
        searched = plan.searched_cells
        cells = {(cell.combination, cell.d_model, cell.seed): cell for cell in searched}
        used = Counter(cells.get(_identity(run)) for run in finished)
        return cls(done, trials, budget={cell: max(plan.budget - used[cell], 0) for cell in searched})


def _identity(run: Run) -> tuple[str | None, int, int]:
    """The cell of a trial's run: its combination tag, ``model.d_model`` and ``seed`` params."""
    params = run.data.params
    return run.data.tags.get(COMBINATION), int(params.get("model.d_model", -1)), int(params.get("seed", -1))


__all__ = ["Work"]
