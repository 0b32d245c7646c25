"""The sweep's MLflow records: one parent run per sweep, one child run per trial (docs/sweeps.md).

Everything is written by the driver through :class:`mlflow.MlflowClient`, so trials need no
access to the tracking server and every run ends in a terminal state the driver chooses.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag, ViewType

from ..provenance import DEVICE
from ..record import (
    CHECKPOINT_ARTIFACTS,
    CHECKPOINT_PATH,
    COMBINATION,
    FAILED,
    FINISHED,
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
    Mode,
    every_run,
    parent_filter,
)

_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call

EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
"""The experiment tag MLflow's UI reads for an experiment's kind, and the value of its "Machine
learning" kind (runs, not GenAI traces): set on the experiments a sweep creates or finds without it."""
CHECKPOINT_LIMIT = 50 * 2**20
"""A trial's ``checkpoint.pt`` up to this size (50 MiB) is copied into its run's artifacts."""
BEST_TRIAL = "miras.best_trial"
DIVERGED = "diverged"
"""``miras.status`` of a trial whose loss or gradient norm went non-finite (run_trial's status)."""
SUMMARY = "summary.json"
"""The parent run's artifact with the sweep's summary (:meth:`SweepStore.summarize`)."""


class SweepStore:
    """The MLflow records of one sweep in one experiment."""

    def __init__(self, uri: str, experiment: str, sweep: str, artifact_location: str | None = None) -> None:
        self.uri, self.sweep = uri, sweep
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=artifact_location, tags={EXPERIMENT_KIND: MODEL_TRAINING}
            )
        else:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            self.experiment_id = found.experiment_id
            if EXPERIMENT_KIND not in found.tags:  # made by an older miras or by hand; a kind chosen is kept
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)

    # -- the sweep's parent run ------------------------------------------------------------------

    def find_parent(self) -> Run | None:
        """The sweep's latest parent run in the experiment, if any."""
        runs = self.client.search_runs(
            [self.experiment_id], parent_filter(self.sweep), order_by=["attributes.start_time DESC"]
        )
        return runs[0] if runs else None

    def open_parent(self, provenance: dict[str, str] | None = None) -> str:
        """Reopen the sweep's parent run, or create it, tagged with the driver's ``provenance``
        (:func:`miras.provenance.provenance_tags`; a resumed sweep's are its latest driver's);
        returns its run id."""
        parent = self.find_parent()
        if parent is None:
            tags = {ROLE: SWEEP_ROLE, SWEEP: self.sweep, **(provenance or {})}
            return self.client.create_run(self.experiment_id, tags=tags, run_name=self.sweep).info.run_id
        self.client.update_run(parent.info.run_id, status="RUNNING")
        self.set_tags(parent.info.run_id, provenance or {})
        return parent.info.run_id

    def log_sweep(self, parent_id: str, config_text: str, trials: list[dict[str, Any]]) -> None:
        """Attach the config (``config.yaml``: the file, or the file with the command line's
        overrides applied) and the resolved trial list (``trials.json``)."""
        self.client.log_text(parent_id, config_text, "config.yaml")
        self.client.log_text(parent_id, json.dumps(trials, indent=1), "trials.json")

    def summarize(self, parent_id: str, objectives: Sequence[tuple[str, Mode]], planned: int) -> dict[str, Any]:
        """Log the sweep's summary on its parent run, from its live child runs, and return it:

        - metrics ``trials_planned``, ``trials_<status>`` for every ``miras.status`` among the trials
          (``trials_finished``, ``trials_diverged``, ``trials_failed`` always, 0 if none);
        - per objective metric, ``best_<metric>`` over the finished trials and
          ``best_<metric>/<combination>`` per combination (the label with characters MLflow does not
          allow in a metric name as ``_``), each a trial's ``best_<metric>`` (or final ``<metric>``);
        - tags ``miras.best_trial`` (the best trial's run name, first objective) and ``miras.device``
          (the trials' devices, comma-separated);
        - artifact ``summary.json``: the same, with the exact combination labels and the run of each best.

        Metrics are logged again at every call (a resumed sweep's parent shows the latest values).
        """
        runs = self.children(parent_id)
        counts = Counter(dict.fromkeys((FINISHED, DIVERGED, FAILED), 0))
        counts.update(run.data.tags.get(STATUS, RUNNING) for run in runs)
        metrics = {"trials_planned": float(planned)} | {f"trials_{status}": float(n) for status, n in counts.items()}
        finished = [run for run in runs if run.data.tags.get(STATUS) == FINISHED]
        best: dict[str, Any] = {}
        tags: dict[str, str] = {}
        for index, (metric, mode) in enumerate(objectives):
            entry = _best_of(finished, metric, mode)
            best[metric] = entry
            if entry["value"] is not None:
                metrics[f"best_{metric}"] = entry["value"]
                if index == 0:
                    tags[BEST_TRIAL] = entry["trial"]
            for label, found in entry["by_combination"].items():
                metrics[_metric_name(f"best_{metric}/{label}")] = found["value"]
        devices = sorted({run.data.tags[DEVICE] for run in runs if run.data.tags.get(DEVICE)})
        if devices:
            tags[DEVICE] = ", ".join(devices)
        self.log_metrics(parent_id, metrics)
        self.set_tags(parent_id, tags)
        summary = {"planned": planned, "counts": dict(sorted(counts.items())), "best": best}
        self.client.log_text(parent_id, json.dumps(summary, indent=1), SUMMARY)
        return summary

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
        return every_run(self.client, [self.experiment_id], query, run_view_type=ViewType.ACTIVE_ONLY)

    def start_trial(
        self,
        parent_id: str,
        name: str,
        key: str,
        combination: str,
        params: dict[str, str],
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create a trial's child run with its tags (and ``tags``) and params; returns its run id."""
        tags = {**(tags or {}), PARENT_RUN_ID: parent_id, ROLE: TRIAL_ROLE, SWEEP: self.sweep, RUN_KEY: key}
        tags |= {COMBINATION: combination, STATUS: RUNNING}
        run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, params=items[start : start + _BATCH])
        return run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for start in range(0, len(items), _BATCH * 10):  # at most 1000 metrics per call
            self.client.log_batch(run_id, metrics=items[start : start + _BATCH * 10])

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, tags=items[start : start + _BATCH])

    def log_checkpoint(self, run_id: str, folder: Path, limit: int = CHECKPOINT_LIMIT) -> bool:
        """Make a trial's checkpoint reachable from its run: tag ``miras.checkpoint_path`` (the file
        ``<folder>/checkpoint.pt`` as the trial wrote it) and, where the driver sees the files, log
        ``trial.json`` (the resolved config) and, up to ``limit`` bytes, ``checkpoint.pt`` as artifacts
        under ``checkpoint/`` (:func:`miras.runners.trial.load_trained` rebuilds the model from that
        folder). Returns whether ``checkpoint.pt`` was logged."""
        from ..runners.trainer import CHECKPOINT
        from ..runners.trial import RECORD

        checkpoint, record = folder / CHECKPOINT, folder / RECORD
        if record.is_file():
            self.client.log_artifact(run_id, str(record), CHECKPOINT_ARTIFACTS)
        if not checkpoint.is_file():
            return False
        self.set_tags(run_id, {CHECKPOINT_PATH: str(checkpoint)})
        if checkpoint.stat().st_size > limit:
            return False
        self.client.log_artifact(run_id, str(checkpoint), CHECKPOINT_ARTIFACTS)
        return True

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


def _best_of(runs: Sequence[Run], metric: str, mode: Mode) -> dict[str, Any]:
    """The best trial of ``runs`` by ``metric`` (its ``best_<metric>``, else final ``<metric>``),
    overall and per combination."""
    sign = 1 if mode == "max" else -1
    by_combination: dict[str, dict[str, Any]] = {}
    for run in runs:
        value = run.data.metrics.get(f"best_{metric}", run.data.metrics.get(metric))
        if value is None or not math.isfinite(value):
            continue
        entry = {"value": value, "trial": run.info.run_name, "run_id": run.info.run_id}
        label = run.data.tags.get(COMBINATION, run.info.run_name)
        known = by_combination.get(label)
        if known is None or sign * value > sign * known["value"]:
            by_combination[label] = entry
    overall = max(by_combination.values(), key=lambda e: sign * e["value"], default=None)
    return {"mode": mode, **(overall or {"value": None}), "by_combination": by_combination}


def _metric_name(name: str) -> str:
    """``name`` as a valid MLflow metric name: characters other than letters, digits, ``_ - . /`` and
    space become ``_``; no empty or ``..`` path parts; at most 250 characters."""
    name = re.sub(r"[^\w\-. /]", "_", name)
    parts = [part if part.strip(".") else part.replace(".", "_") or "_" for part in name.split("/")]
    return "/".join(parts)[:250]


def is_done(run: Run) -> bool:
    """Whether a trial's run holds a result that a resumed sweep keeps."""
    return run.info.status == "FINISHED"


__all__ = ["CHECKPOINT_LIMIT", "EXPERIMENT_KIND", "MODEL_TRAINING", "SweepStore", "is_done"]
