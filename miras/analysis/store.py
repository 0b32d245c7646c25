"""Where a sweep's MLflow store is, and how its parent run is found in it."""

from __future__ import annotations

import os
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

from ..record import COMBINATION, PARENT_RUN_ID, ROLE, RUN_ID, RUN_KEY, SWEEP, SWEEP_ROLE, every_run, parent_filter


class SweepNotFoundError(LookupError):
    """No parent run in the store matches the sweep name or run id."""


def default_tracking_uri(sweep: str, root: Path | None = None) -> str | None:
    """The store a sweep was most likely written to, or ``None`` when none is found.

    In order: ``<root>/runs/<sweep>/mlflow.db`` (the sweep runner's default), the
    ``MLFLOW_TRACKING_URI`` environment variable, ``<root>/mlflow.db``. ``root`` defaults to
    the working directory.
    """
    root = (root or Path.cwd()).resolve()
    per_sweep = root / "runs" / sweep / "mlflow.db"
    if per_sweep.is_file():
        return f"sqlite:///{per_sweep}"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    shared = root / "mlflow.db"
    return f"sqlite:///{shared}" if shared.is_file() else None


def find_parent_run(client: MlflowClient, sweep: str) -> Run:
    """The sweep's parent run, by run id or by sweep name (the newest one if a name repeats)."""
    if RUN_ID.match(sweep):
        run = client.get_run(sweep)
        if run.data.tags.get(ROLE) != SWEEP_ROLE:
            raise SweepNotFoundError(f"run {sweep} is not a sweep's parent run (tag {ROLE} != {SWEEP_ROLE!r})")
        return run
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(
        experiments,
        filter_string=parent_filter(sweep),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not found:
        raise SweepNotFoundError(f"no sweep named {sweep!r} in {client.tracking_uri}")
    return found[0]


def child_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """Every live trial run of a sweep (all pages), oldest first; runs a resumed or ``--fresh`` sweep
    deleted are left out."""
    query = f"tags.`{PARENT_RUN_ID}` = '{parent.info.run_id}'"
    return list(
        every_run(
            client,
            [parent.info.experiment_id],
            query,
            run_view_type=ViewType.ACTIVE_ONLY,
            order_by=["attributes.start_time ASC"],
        )
    )


class TrialNotFoundError(LookupError):
    """No trial of the sweep matches, or several do (the message lists them)."""


def find_trial_run(client: MlflowClient, parent: Run, wanted: str) -> Run:
    """The sweep's trial run that ``wanted`` names: its MLflow run id, its run key (``miras.run_key``),
    its run name (``transformer-s1``) or its combination label when only one trial has it."""
    runs = child_runs(client, parent)
    for field in (
        lambda run: run.info.run_id,
        lambda run: run.data.tags.get(RUN_KEY),
        lambda run: run.info.run_name,
        lambda run: run.data.tags.get(COMBINATION),
    ):
        matches = [run for run in runs if field(run) == wanted]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = ", ".join(run.info.run_name for run in matches)
            raise TrialNotFoundError(f"{wanted!r} names {len(matches)} trials ({names}): give one of those names")
    names = ", ".join(run.info.run_name for run in runs) or "none"
    raise TrialNotFoundError(f"no trial {wanted!r} in sweep {parent.data.tags.get(SWEEP)!r}; its trials: {names}")
