"""``miras export SWEEP RUN --out DIR``: a trained trial as a Hugging Face folder (:mod:`miras.hf`).

Only argparse at import time (not in :mod:`miras.hf`, whose import loads transformers): torch,
mlflow and transformers load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .extras import HF_EXTRA, missing_extras
from .reports.command import add_sweep_arguments


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``miras export``; exit code 2 when the store, the sweep or the trial is not found, or the
    ``hf`` extra is missing."""
    from mlflow.exceptions import MlflowException

    from .analysis.store import default_tracking_uri
    from .reports.command import existing_sweeps

    if missing_extras("transformers"):
        print(f"error: {HF_EXTRA}", file=sys.stderr)
        return 2
    from .hf.export import export_run

    uri = args.tracking_uri or default_tracking_uri(args.sweep)
    if uri is None:
        found = existing_sweeps()
        print(f"error: no MLflow store found for {args.sweep!r}; pass --tracking-uri. {found}", file=sys.stderr)
        return 2
    try:
        out, origin = export_run(uri, args.sweep, args.run, args.out, args.cache_dir)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except MlflowException as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {origin.trial} (run {origin.run_id}) of {origin.sweep} to {out}")
    print("  load it: import miras.hf; transformers.AutoModelForCausalLM.from_pretrained(" + repr(str(out)) + ")")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``export`` command to the ``miras`` CLI's subparsers."""
    parser = subparsers.add_parser(
        "export",
        help="write a trained trial as a Hugging Face folder (model, config, tokenizer of a text task)",
        description="Write the final model of one trial of a sweep as a Hugging Face folder: config.json "
        "(the whole architecture), model.safetensors and, for a text task, the tokenizer. "
        "AutoModelForCausalLM.from_pretrained(DIR) loads it after `import miras.hf`. Needs the miras[hf] "
        "extra. Exit code 2 when the store, the sweep or the trial is not found.",
    )
    add_sweep_arguments(parser)
    parser.add_argument(
        "run", help="the trial: its run name (e.g. transformer-s1), run key, MLflow run id, or a one-seed label"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write (created)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="where a text task's tokenizer is cached (trained again there if absent); default: the trial's",
    )
    parser.set_defaults(func=cmd_export)
