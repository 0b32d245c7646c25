"""``miras report SWEEP [--tracking-uri URI] [--out DIR]``: write a sweep's report and log it to MLflow.

Only argparse at import time: mlflow and matplotlib load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def default_out_dir(sweep: str, root: Path | None = None) -> Path:
    """``runs/<sweep>/report`` when the sweep's run folder exists, else ``reports/<sweep>``."""
    root = (root or Path.cwd()).resolve()
    runs = root / "runs" / sweep
    return runs / "report" if runs.is_dir() else root / "reports" / sweep


def local_sweeps(root: Path | None = None) -> list[str]:
    """Names of the sweeps with a store under ``runs/`` (``runs/<name>/mlflow.db``), sorted."""
    runs = (root or Path.cwd()) / "runs"
    return sorted(p.parent.name for p in runs.glob("*/mlflow.db"))


def stored_sweeps(tracking_uri: str) -> list[str]:
    """Names of the sweeps whose parent run (``miras.role=sweep``) is in the store, sorted; raises
    ``MlflowException`` when the store cannot be read."""
    from mlflow import MlflowClient

    from ..record import ROLE, SWEEP, SWEEP_ROLE, every_run

    client = MlflowClient(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    parents = every_run(client, experiments, f"tags.`{ROLE}` = '{SWEEP_ROLE}'")
    return sorted({run.data.tags[SWEEP] for run in parents if SWEEP in run.data.tags})


def existing_sweeps(tracking_uri: str | None = None) -> str:
    """What ``miras report`` could be given instead: the sweeps in the store at ``tracking_uri`` (when
    one was opened), then those with a store under ``runs/``."""
    from mlflow.exceptions import MlflowException

    local = local_sweeps()
    said = [f"Sweeps in runs/: {', '.join(local)}" if local else "There is no sweep in runs/."]
    if tracking_uri is not None:
        try:
            stored = stored_sweeps(tracking_uri)
        except MlflowException as error:
            said.insert(0, f"That store could not be listed ({str(error).splitlines()[0]}).")
        else:
            said.insert(0, f"Sweeps in that store: {', '.join(stored)}." if stored else "That store holds no sweep.")
    return " ".join(said)


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``miras report``; returns the exit code (0, or 2 when the store or the sweep is not found,
    saying which sweeps exist)."""
    from mlflow.exceptions import MlflowException

    from ..analysis.store import RUN_ID, SweepNotFoundError, default_tracking_uri
    from .report import write_report

    uri = args.tracking_uri or default_tracking_uri(args.sweep)
    if uri is None:
        print(
            f"error: no MLflow store found for {args.sweep!r} (looked for runs/{args.sweep}/mlflow.db, "
            "$MLFLOW_TRACKING_URI and ./mlflow.db); pass --tracking-uri. " + existing_sweeps(),
            file=sys.stderr,
        )
        return 2
    out = args.out or default_out_dir(args.sweep if not RUN_ID.match(args.sweep) else f"run-{args.sweep}")
    try:
        report = write_report(args.sweep, uri, out, log=not args.no_log)
    except SweepNotFoundError as error:
        print(f"error: {error}. {existing_sweeps(uri)}", file=sys.stderr)
        return 2
    except MlflowException as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {report.markdown} and {report.html} ({len(report.figures)} figures, {len(report.tables)} tables)")
    for note in report.skipped:
        print(f"  not drawn: {note}")
    return 0


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``sweep`` argument and ``--tracking-uri`` option of a command that reads a sweep's store
    (:func:`miras.analysis.store.default_tracking_uri` finds it when no URI is given)."""
    parser.add_argument("sweep", help="sweep name, or the id of its parent run")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI; default: sqlite:///<abs>/runs/SWEEP/mlflow.db if it exists, "
        "else $MLFLOW_TRACKING_URI, else ./mlflow.db",
    )


def register(subparsers: Any) -> None:
    """Add the ``report`` command to the ``miras`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "report",
        help="write a sweep's report (Markdown, HTML, figures, CSV tables) and log it to its MLflow parent run",
        description="Read a sweep from MLflow and write report.md, a self-contained report.html, figures/*.png "
        "and tables/*.csv; the files are also logged as the report/ artifacts of the sweep's parent run. "
        "Exit code 2 when the store or the sweep is not found (the sweeps that exist are listed).",
    )
    add_sweep_arguments(parser)
    parser.add_argument("--out", type=Path, help="output folder; default: runs/SWEEP/report or reports/SWEEP")
    parser.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
    parser.set_defaults(func=cmd_report)
