"""``miras eval MODEL --tasks T1,T2 [--limit N]``: lm-evaluation-harness on an exported model
(:mod:`miras.evaluation`), its metrics printed and logged to the trial's MLflow run.

Only argparse at import time: torch, transformers, lm-eval and mlflow load when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .extras import install_command, missing_extras
from .record import RUN_ID


def cmd_eval(args: argparse.Namespace) -> int:
    """Run ``miras eval``; exit code 2 for a missing extra, model or run, or a task that cannot load."""
    missing = missing_extras("transformers", "lm_eval", "accelerate")
    if missing:
        print(f"error: miras eval needs {', '.join(missing)}: {install_command(missing)}", file=sys.stderr)
        return 2
    tasks = [task for task in args.tasks.split(",") if task]
    if not tasks:
        print("error: --tasks: give at least one task, e.g. --tasks miras_shakespeare_cloze", file=sys.stderr)
        return 2
    from .evaluation.harness import LOCAL_TASKS

    if set(tasks) <= set(LOCAL_TASKS):  # before anything imports huggingface_hub or datasets, which read them once
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        located = _locate(args, Path(tmp))
        if isinstance(located, str):
            print(f"error: {located}", file=sys.stderr)
            return 2
        folder, run = located
        from .evaluation.harness import TaskUnavailableError, evaluate, log_evaluation

        try:
            evaluation = evaluate(folder, tasks, limit=args.limit, batch_size=args.batch_size)
        except TaskUnavailableError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"{'task':<28} {'metric':<24} value")
    for task, metrics in evaluation.metrics.items():
        for name, value in metrics.items():
            print(f"{task:<28} {name:<24} {value:.4f}")
    if run is not None and not args.no_log:
        from mlflow.exceptions import MlflowException

        try:
            log_evaluation(*run, evaluation)
        except MlflowException as error:
            print(f"error: the metrics could not be logged to run {run[1]} in {run[0]}: {error}", file=sys.stderr)
            return 2
        print(f"logged to MLflow run {run[1]} ({run[0]}) as eval/<task>/<metric>")
    return 0


def _stores(given: str | None) -> list[str]:
    """Where to look for a run id: ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, every sweep's
    store under ``runs/`` and ``./mlflow.db`` (existing sqlite files only: none is created)."""
    if given:
        return [given]
    uris = [os.environ["MLFLOW_TRACKING_URI"]] if os.environ.get("MLFLOW_TRACKING_URI") else []
    files = [*sorted(Path("runs").glob("*/mlflow.db")), Path("mlflow.db")]
    return uris + [f"sqlite:///{path.resolve()}" for path in files if path.is_file()]


def _locate(args: argparse.Namespace, tmp: Path) -> tuple[Path, tuple[str, str] | None] | str:
    """The exported folder to evaluate and the ``(tracking URI, run id)`` to log to, or what is wrong."""
    from .hf.export import read_origin

    given = Path(args.model)
    if given.is_dir():
        if not (given / "config.json").is_file():
            return f"{given} is not an exported model (no config.json): write one with `miras export`"
        if not (given / "tokenizer.json").is_file():
            return f"{given} has no tokenizer (a model of a synthetic task, e.g. mqar): lm-eval tasks are text"
        origin = read_origin(given)
        uri = args.tracking_uri or (origin.tracking_uri if origin else None)
        run_id = args.run_id or (origin.run_id if origin else None)
        return given, (uri, run_id) if uri and run_id else None
    if not RUN_ID.match(args.model):
        return f"{args.model!r} is neither a folder nor an MLflow run id"
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from .record import HF_MODEL, HF_MODEL_ARTIFACTS

    stores = _stores(args.tracking_uri)
    for uri in stores:
        client = MlflowClient(uri)
        try:
            run = client.get_run(args.model)
        except MlflowException:
            continue
        if run.data.tags.get(HF_MODEL) != HF_MODEL_ARTIFACTS:
            why = run.data.tags.get(HF_MODEL, "the sweep did not log it")
            return f"run {args.model} has no logged model ({why}); `miras export` the trial and evaluate the folder"
        return Path(client.download_artifacts(args.model, HF_MODEL_ARTIFACTS, str(tmp))), (uri, args.model)
    looked = ", ".join(stores) or "none found"
    return f"run {args.model} is in none of the stores looked at ({looked}): pass --tracking-uri"


def register(subparsers: Any) -> None:
    """Add the ``eval`` command to the ``miras`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "eval",
        help="run lm-evaluation-harness tasks on an exported model and log the metrics to its MLflow run",
        description="Evaluate an exported model (a `miras export` folder, or the id of a trial run whose sweep "
        "logged its model) with lm-evaluation-harness through its Hugging Face model type. "
        "miras_shakespeare_cloze is shipped and needs no download (with only that task, the Hugging Face Hub "
        "is not contacted); other lm-eval tasks fetch their data from the Hub. Metrics are printed and logged "
        "to the trial's run as eval/<task>/<metric>. Needs the miras[hf] and miras[eval] extras. Exit code 2 "
        "for a user error.",
    )
    parser.add_argument("model", help="an exported folder, or a trial's MLflow run id")
    parser.add_argument("--tasks", required=True, help="comma-separated task names, e.g. miras_shakespeare_cloze")
    parser.add_argument("--limit", type=int, help="evaluate only the first N items of each task")
    parser.add_argument("--batch-size", type=int, default=8, help="requests per forward pass (default: 8)")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store of the run; default: the one the folder was exported from, or for a run id "
        "$MLFLOW_TRACKING_URI, every runs/*/mlflow.db and ./mlflow.db",
    )
    parser.add_argument("--run-id", help="log to this run instead of the one the folder was exported from")
    parser.add_argument("--no-log", action="store_true", help="print the metrics only")
    parser.set_defaults(func=cmd_eval)
