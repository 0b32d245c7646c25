"""The MLflow record of a sweep, one home for its writer (:mod:`miras.search`) and its reader
(:mod:`miras.analysis`): tag names, roles, trial statuses and how a sweep's parent run is found.

A sweep is one parent run (tags ``miras.role=sweep``, ``miras.sweep=<name>``) and one child run per
trial (``mlflow.parentRunId``, ``miras.role=trial``, ``miras.run_key``, ``miras.combination``,
``miras.status``, ``miras.reason``); docs/sweeps.md has the params and metrics.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
"""An MLflow run id (32 lowercase hex digits); anything else names a sweep."""
PARENT_RUN_ID = "mlflow.parentRunId"
ROLE, SWEEP, RUN_KEY, COMBINATION, STATUS, REASON = (
    "miras.role",
    "miras.sweep",
    "miras.run_key",
    "miras.combination",
    "miras.status",
    "miras.reason",
)
SCAN_IMPL, SCAN_REASON = "miras.scan_impl", "miras.scan_reason"
"""What a trial's memory layers ran and why (``model.impl: auto`` may compile; miras.runners.scan_choice)."""
CHECKPOINT_PATH = "miras.checkpoint_path"
"""Tag of a trial run: its ``checkpoint.pt`` where the trial wrote it."""
CHECKPOINT_ARTIFACTS = "checkpoint"
"""The artifact folder of a trial's ``checkpoint.pt`` and ``trial.json``."""
HF_MODEL, HF_MODEL_ARTIFACTS = "miras.hf_model", "model"
"""Tag of a finished trial run: ``model`` when its Hugging Face folder is logged as the ``model/``
artifacts (:func:`miras.hf.export.log_models`), else why it is not."""
SWEEP_ROLE, TRIAL_ROLE = "sweep", "trial"
"""Values of ``miras.role``."""

# ``miras.status`` of a trial: run_trial's finished / diverged / oom / failed, and these.
FINISHED, FAILED = "finished", "failed"
STOPPED = "stopped"
"""Stopped early by the scheduler (ASHA)."""
RUNNING = "running"
"""Under way, or its driver was killed."""
INTERRUPTED = "interrupted"
"""Stopped by Ctrl-C; runs again when the sweep is resumed."""

Mode = Literal["max", "min"]
"""Which way an objective is better."""


def every_run(client: MlflowClient, experiment_ids: list[str], filter_string: str, **search: Any) -> Iterator[Run]:
    """Every run ``client.search_runs`` finds, page after page (1000 a page); ``search``: its other
    arguments (``run_view_type``, ``order_by``)."""
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token, **search)
        yield from page
        token = page.token
        if not token:
            return


def parent_filter(sweep: str) -> str:
    """The MLflow search filter that finds the parent runs of the sweep named ``sweep``."""
    quoted = sweep.replace("'", "\\'")
    return f"tags.`{ROLE}` = '{SWEEP_ROLE}' and tags.`{SWEEP}` = '{quoted}'"


__all__ = [
    "COMBINATION",
    "FAILED",
    "FINISHED",
    "INTERRUPTED",
    "PARENT_RUN_ID",
    "REASON",
    "ROLE",
    "RUNNING",
    "RUN_KEY",
    "SCAN_IMPL",
    "SCAN_REASON",
    "STATUS",
    "STOPPED",
    "SWEEP",
    "SWEEP_ROLE",
    "TRIAL_ROLE",
    "Mode",
    "every_run",
    "parent_filter",
]
