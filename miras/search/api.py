"""``miras.sweep(...)``: run (or resume) a sweep from Python and get its trials back as a DataFrame."""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import yaml

from ..config import apply_overrides, load_config, resolved_text, validate_config
from .layout import Layout, SweepOptions
from .plan import Plan
from .runner import EXIT_INTERRUPTED, run_sweep


class SweepInterrupted(RuntimeError):
    """The sweep was stopped before its trials ended (Ctrl-C); the same call resumes it."""


def sweep(
    config: str | Path | dict[str, Any],
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    tracking_uri: str | None = None,
    address: str | None = None,
    cache_dir: str | Path | None = None,
    fresh: bool = False,
    report: bool = True,
    stream: TextIO | None = None,
) -> pd.DataFrame:
    """Run the sweep ``config`` (a YAML path, or its data as a dict) as ``miras sweep`` does, and return
    the tidy frame of its trials: one row per trial, with its combination, status, axes, every param
    and final metric (:func:`miras.analysis.load_sweep`'s ``trials``; docs/analysis.md).

    ``overrides`` are ``key=value`` strings as on the command line; the keyword options are the
    command's (``--out``, ``--tracking-uri``, ``--address``, ``--cache-dir``, ``--fresh``,
    ``--no-report``); progress goes to ``stream`` (default: stdout). A finished sweep returns at once
    with its trials. Raises :class:`miras.config.ConfigError` for an invalid config (nothing runs),
    :class:`miras.search.runner.SweepError` when it cannot start, :class:`SweepInterrupted` when stopped.
    Trials that failed are rows with their ``status`` and ``reason``: the sweep does not raise for them.
    """
    from ..analysis import load_sweep
    from .command import quiet

    if isinstance(config, dict):
        data = copy.deepcopy(config)
        problems = apply_overrides(data, overrides)
        loaded = validate_config(data, base_dir=Path.cwd(), problems=problems)
        text = yaml.safe_dump(data, sort_keys=False)
    else:
        loaded, text = load_config(config, overrides), resolved_text(config, overrides)
    plan = Plan(loaded)
    options = SweepOptions(
        out=Path(out) if out is not None else None,
        tracking_uri=tracking_uri,
        address=address,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        fresh=fresh,
        report=report,
    )
    quiet()
    code = run_sweep(plan, text, options, stream or sys.stdout)
    if code == EXIT_INTERRUPTED:
        raise SweepInterrupted(f"sweep {loaded.name} was interrupted; call again to resume")
    return load_sweep(loaded.name, Layout(loaded, options).uri, history=False).trials


__all__ = ["SweepInterrupted", "sweep"]
