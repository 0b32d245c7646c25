"""The sweep's MLflow records: one parent run per sweep, one child run per trial (docs/sweeps.md).

Everything is written by the driver through :class:`mlflow.MlflowClient`, so trials need no
access to the tracking server and every run ends in a terminal state the driver chooses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag, ViewType

from ..record import (
    COMBINATION,
    FAILED,
    INTERRUPTED,
    PARENT_RUN_ID,
    REASON,
    ROLE,
    RUN_KEY,
    RUNNING,
    STATUS,
    SWEEP,
    SWEEP_ROLE,
    TRIAL_ROLE,
    parent_filter,
)

_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call


class SweepStore:
    """The MLflow records of one sweep in one experiment."""

    def __init__(self, uri: str, experiment: str, sweep: str, artifact_location: str | None = None) -> None:
        self.uri, self.sweep = uri, sweep
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location)
        else:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            self.experiment_id = found.experiment_id

    # -- the sweep's parent run ------------------------------------------------------------------

    def find_parent(self) -> Run | None:
        """The sweep's latest parent run in the experiment, if any."""
        runs = self.client.search_runs(
            [self.experiment_id], parent_filter(self.sweep), order_by=["attributes.start_time DESC"]
        )
        return runs[0] if runs else None

    def open_parent(self) -> str:
        """Reopen the sweep's parent run, or create it; returns its run id."""
        parent = self.find_parent()
        if parent is None:
            tags = {ROLE: SWEEP_ROLE, SWEEP: self.sweep}
            return self.client.create_run(self.experiment_id, tags=tags, run_name=self.sweep).info.run_id
        self.client.update_run(parent.info.run_id, status="RUNNING")
        return parent.info.run_id

    def log_sweep(self, parent_id: str, config_text: str, trials: list[dict[str, Any]]) -> None:
        """Attach the config (``config.yaml``: the file, or the file with the command line's
        overrides applied) and the resolved trial list (``trials.json``)."""
        self.client.log_text(parent_id, config_text, "config.yaml")
        self.client.log_text(parent_id, json.dumps(trials, indent=1), "trials.json")

    def close_parent(self, parent_id: str, status: str) -> None:
        """End the parent run: ``FINISHED``, ``FAILED`` or ``KILLED``."""
        self.client.set_terminated(parent_id, status)

    def delete_sweep(self) -> int:
        """Soft-delete every parent run of the sweep and its children (``--fresh``); returns how many runs."""
        deleted = 0
        while (parent := self.find_parent()) is not None:
            for run in self.children(parent.info.run_id):
                self.client.delete_run(run.info.run_id)
                deleted += 1
            self.client.delete_run(parent.info.run_id)
            deleted += 1
        return deleted

    # -- trial runs ------------------------------------------------------------------------------

    def children(self, parent_id: str) -> list[Run]:
        """Every live child run of ``parent_id``."""
        return list(self._search(f"tags.`{PARENT_RUN_ID}` = '{parent_id}'"))

    def _search(self, query: str) -> Iterator[Run]:
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], query, ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def start_trial(self, parent_id: str, name: str, key: str, combination: str, params: dict[str, str]) -> str:
        """Create a trial's child run with its tags and params; returns its run id."""
        tags = {PARENT_RUN_ID: parent_id, ROLE: TRIAL_ROLE, SWEEP: self.sweep, RUN_KEY: key}
        tags |= {COMBINATION: combination, STATUS: RUNNING}
        run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, params=items[start : start + _BATCH])
        return run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def end_trial(self, run_id: str, status: str, reason: str | None = None) -> None:
        """Tag the trial's ``miras.status`` (and ``miras.reason``) and end its run.

        The run ends FINISHED for a trial with a result (finished, diverged, oom, stopped),
        FAILED for a failed one and KILLED for an interrupted one; only FINISHED runs count as
        done when the sweep is resumed.
        """
        tags = [RunTag(STATUS, status)] + ([RunTag(REASON, reason[:5000])] if reason else [])
        self.client.log_batch(run_id, tags=tags)
        state = {FAILED: RunStatus.FAILED, INTERRUPTED: RunStatus.KILLED}.get(status, RunStatus.FINISHED)
        self.client.set_terminated(run_id, RunStatus.to_string(state))

    def discard(self, runs: Sequence[Run]) -> None:
        """Soft-delete runs (unfinished trials about to run again)."""
        for run in runs:
            self.client.delete_run(run.info.run_id)


def is_done(run: Run) -> bool:
    """Whether a trial's run holds a result that a resumed sweep keeps."""
    return run.info.status == "FINISHED"


__all__ = ["SweepStore", "is_done"]
