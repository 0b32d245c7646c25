"""Load a sweep from any MLflow tracking URI: its trials, their histories and its objective."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ..config.schema import LmTask, MqarTask, NeedleTask
from ..record import SWEEP, Mode
from .frame import HISTORY_COLUMNS, history_frame, trials_frame, varying_settings
from .store import child_runs, find_parent_run

PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"

LOWER_IS_BETTER = ("loss", "perplexity", "bits_per_byte", "error")
"""A metric whose name contains one of these is minimised; any other (accuracies) is maximised."""


def default_mode(metric: str) -> Mode:
    """``min`` for losses, perplexities and bits per byte; ``max`` otherwise."""
    return "min" if any(word in metric for word in LOWER_IS_BETTER) else "max"


@dataclass
class Sweep:
    """A sweep read back from MLflow."""

    name: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    metric: str
    """The objective metric (e.g. ``test_accuracy``)."""
    mode: Mode
    """Whether the objective is maximised or minimised."""
    trials: pd.DataFrame
    """One row per trial (see docs/analysis.md for the columns)."""
    history: pd.DataFrame
    """Long format: ``run_id, combination, seed, lr, metric, step, value``."""
    config: dict[str, Any] = field(default_factory=dict)
    """The sweep's ``config.yaml`` artifact, parsed (empty when the parent run has none)."""

    @property
    def objective(self) -> str:
        """The column tables rank by: ``best_<metric>`` where the runner logged it, else the final ``metric``."""
        best = f"best_{self.metric}"
        return best if best in self.trials else self.metric

    def mode_of(self, metric: str | None) -> Mode:
        """Whether ``metric`` is maximised: the sweep's mode for its objective, else by the metric's name."""
        return self.mode if metric in (None, self.objective, self.metric) else default_mode(metric)

    @property
    def objectives(self) -> list[tuple[str, Mode]]:
        """Every ``(metric, mode)`` the sweep optimised: the config's ``search.objectives``, else the
        one objective (the first of them is ``metric``, ``mode``)."""
        listed = (self.config.get("search") or {}).get("objectives") or []
        return [(o["metric"], o["mode"]) for o in listed] or [(self.metric, self.mode)]

    @property
    def searched_columns(self) -> list[str]:
        """The trial columns of the searched settings that take more than one value (``lr`` and the
        ``search.params`` paths)."""
        trials = self.trials
        return [c for c in ["lr", *self.searched] if c in trials and trials[c].astype(str).nunique() > 1]

    @property
    def searched(self) -> list[str]:
        """The paths of the config's ``search.params`` (searched settings beside the learning rate)."""
        return searched_paths(self.config)

    @property
    def matched(self) -> bool:
        """Whether ``model.match`` sized every combination to one budget (its width then varies with it)."""
        return bool((self.config.get("model") or {}).get("match"))

    @cached_property
    def settings(self) -> list[str]:
        """Setting columns that vary across trials, searched ones aside, and the width when it was matched
        to a budget (with ``combination`` they name a cell)."""
        return varying_settings(self.trials, [*self.searched, *(["model.d_model"] if self.matched else [])])

    @property
    def cell(self) -> list[str]:
        """The columns that identify one cell of the sweep: the combination and the varying settings."""
        return ["combination", *self.settings]


@contextlib.contextmanager
def _quiet_downloads() -> Iterator[None]:
    """Turn MLflow's artifact progress bar off for one download."""
    previous = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ[PROGRESS_BAR]
        else:
            os.environ[PROGRESS_BAR] = previous


def searched_paths(config: dict[str, Any]) -> list[str]:
    """The paths of ``search.params`` in a parsed sweep config."""
    return list((config.get("search") or {}).get("params") or {})


def _config(client: MlflowClient, run_id: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _quiet_downloads():
        try:
            path = client.download_artifacts(run_id, "config.yaml", tmp)
        except (MlflowException, OSError):
            return {}
        return yaml.safe_load(Path(path).read_text()) or {}


PRIMARY_METRICS: dict[str, tuple[str, Mode]] = {
    task.model_fields["name"].default: task.primary_metric for task in (MqarTask, NeedleTask, LmTask)
}
"""Task name -> the metric a sweep optimises when its config names none."""


def _objective(trials: pd.DataFrame, config: dict[str, Any]) -> tuple[str, Mode]:
    """The searched metric and mode: the config's ``search.metric``/``mode``, else the metric of the
    (shortest-named) ``best_*`` column, else the primary metric of the config's task."""
    search = config.get("search") or {}
    if search.get("objectives"):
        first = search["objectives"][0]
        return first["metric"], first["mode"]
    if search.get("metric"):
        return search["metric"], search.get("mode") or default_mode(search["metric"])
    best = [c.removeprefix("best_") for c in trials.columns if c.startswith("best_")]
    if best:
        metric = min(best, key=len)
        return metric, default_mode(metric)
    task = (config.get("task") or {}).get("name")
    if task in PRIMARY_METRICS:
        return PRIMARY_METRICS[task]
    raise ValueError("cannot tell the sweep's objective: no best_* metric, no config.yaml; pass objective=")


def load_sweep(
    sweep: str,
    tracking_uri: str,
    *,
    history: bool = True,
    objective: tuple[str, Mode] | None = None,
) -> Sweep:
    """Read a sweep (its name, or its parent run id) from ``tracking_uri``.

    ``history=False`` skips the per-step metric histories (one query per trial and metric).
    ``objective`` overrides the ``(metric, mode)`` read from the sweep.
    """
    client = MlflowClient(tracking_uri)
    parent = find_parent_run(client, sweep)
    runs = child_runs(client, parent)
    config = _config(client, parent.info.run_id)
    trials = trials_frame(runs, searched_paths(config))
    metric, mode = objective or _objective(trials, config)
    if metric not in trials and f"best_{metric}" not in trials:  # e.g. every trial failed: no result to show
        trials[metric] = float("nan")
    return Sweep(
        name=parent.data.tags.get(SWEEP, parent.info.run_name),
        parent_run_id=parent.info.run_id,
        experiment_id=parent.info.experiment_id,
        tracking_uri=tracking_uri,
        metric=metric,
        mode=mode,
        trials=trials,
        history=history_frame(client, runs, trials) if history else pd.DataFrame(columns=HISTORY_COLUMNS),
        config=config,
    )
