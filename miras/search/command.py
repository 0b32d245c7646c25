"""``miras sweep CONFIG.yaml`` (also ``python run_sweep.py CONFIG.yaml``): run or resume a sweep.

Exit codes: 0 every trial ended (finished, diverged, oom or stopped), 1 some trial failed,
2 invalid config or a sweep that cannot start (nothing written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Validate the sweep config (exit 2 on any problem, nothing written), expand presets, grids and
ablations x widths x seeds x searched settings into trials, and run them with Ray Tune, logging one MLflow child
run per trial under one parent run per sweep. Running the same command again resumes: finished
trials are skipped, interrupted ones continue from their last checkpoint. See docs/sweeps.md."""


OVERRIDES_HELP = (
    "set a field without editing the file: a dotted path and a YAML value, e.g. training.steps=100 "
    "space.presets=[titans,yaad] seeds=[0,1]; validated with the file, recorded in the parent run"
)


def parse_with_overrides(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` letting ``KEY=VALUE`` overrides come after the options too (argparse alone
    gives a ``nargs="*"`` positional only the words before the first option)."""
    args, extra = parser.parse_known_args(argv)
    takes_overrides = hasattr(args, "overrides")
    stray = [a for a in extra if not takes_overrides or a.startswith("-") or "=" not in a]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def register(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand to the ``miras`` command line."""
    parser = subparsers.add_parser(
        "sweep", help="run or resume a sweep with Ray Tune, tracked in MLflow", description=DESCRIPTION
    )
    add_arguments(parser)
    parser.set_defaults(func=cmd_sweep)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="sweep YAML file")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<sweep name>)")
    parser.add_argument("--dry-run", action="store_true", help="list the trials and stop (nothing is written)")
    parser.add_argument(
        "--fresh", action="store_true", help="start over: delete the output folder's state and the sweep's runs"
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI, e.g. http://host:5000 (default: tracking.uri, else sqlite:///<out>/mlflow.db)",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="join this Ray cluster, e.g. 10.0.0.1:6379 (default: $RAY_ADDRESS, else a local Ray)",
    )
    parser.add_argument(
        "--storage",
        help="Ray Tune storage path for multi-node runs: a folder every node mounts (checkpoints go there too) "
        "or a URI such as s3://bucket/path (default: <out>/ray_results)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="data and tokenizer caches of the trials (default: ~/.cache/miras)"
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the report into <out>/report at the end")


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..config import ConfigError, format_problems, load_config, resolved_text
    from .layout import SweepOptions
    from .plan import Plan
    from .runner import EXIT_USAGE, SweepError, run_sweep

    try:
        plan = Plan(load_config(args.config, args.overrides))
    except ConfigError as error:
        print(f"{args.config}: invalid config\n{format_problems(error.problems)}", file=sys.stderr)
        return EXIT_USAGE
    options = SweepOptions(
        out=args.out,
        tracking_uri=args.tracking_uri,
        address=args.address,
        storage=args.storage,
        cache_dir=args.cache_dir,
        fresh=args.fresh,
        dry_run=args.dry_run,
        report=not args.no_report,
    )
    quiet()
    try:
        return run_sweep(plan, resolved_text(args.config, args.overrides), options)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


def quiet() -> None:
    """Keep the output to the sweep's own lines: no MLflow table-creation notices, no run URLs
    after each run, no Optuna study notices."""
    import optuna

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """``run_sweep.py``: the ``sweep`` subcommand on its own."""
    parser = argparse.ArgumentParser(prog="run_sweep.py", description=DESCRIPTION)
    add_arguments(parser)
    return cmd_sweep(parse_with_overrides(parser, argv))


__all__ = ["cmd_sweep", "main", "parse_with_overrides", "register"]
