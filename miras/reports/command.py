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


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``miras report``; returns the exit code (0, or 2 when the store or the sweep is not found)."""
    from mlflow.exceptions import MlflowException

    from ..analysis.store import RUN_ID, SweepNotFoundError, default_tracking_uri
    from .report import write_report

    uri = args.tracking_uri or default_tracking_uri(args.sweep)
    if uri is None:
        found = local_sweeps()
        print(
            f"error: no MLflow store found for {args.sweep!r} (looked for runs/{args.sweep}/mlflow.db, "
            "$MLFLOW_TRACKING_URI and ./mlflow.db); pass --tracking-uri. "
            + (f"Sweeps in runs/: {', '.join(found)}" if found else "There is no sweep in runs/."),
            file=sys.stderr,
        )
        return 2
    out = args.out or default_out_dir(args.sweep if not RUN_ID.match(args.sweep) else f"run-{args.sweep}")
    try:
        report = write_report(args.sweep, uri, out, log=not args.no_log)
    except (SweepNotFoundError, MlflowException) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {report.markdown} and {report.html} ({len(report.figures)} figures, {len(report.tables)} tables)")
    for note in report.skipped:
        print(f"  not drawn: {note}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``report`` command to the ``miras`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "report",
        help="write a sweep's report (Markdown, HTML, figures, CSV tables) and log it to its MLflow parent run",
        description="Read a sweep from MLflow and write report.md, a self-contained report.html, figures/*.png "
        "and tables/*.csv; the files are also logged as the report/ artifacts of the sweep's parent run. "
        "Exit code 2 when the store or the sweep is not found.",
    )
    parser.add_argument("sweep", help="sweep name, or the id of its parent run")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI; default: sqlite:///<abs>/runs/SWEEP/mlflow.db if it exists, "
        "else $MLFLOW_TRACKING_URI, else ./mlflow.db",
    )
    parser.add_argument("--out", type=Path, help="output folder; default: runs/SWEEP/report or reports/SWEEP")
    parser.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
    parser.set_defaults(func=cmd_report)
