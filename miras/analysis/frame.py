"""MLflow trial runs -> one tidy DataFrame (a row per trial) and a long history frame."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run

from ..record import COMBINATION, FAILED, REASON, RUN_KEY, STATUS
from ..space import AXES

FINAL_METRICS = (
    "vocab_size",
    "n_params",
    "state_size",
    "flops_per_token",
    "tokens_per_second",
    "peak_memory_mb",
    "wall_seconds",
)
"""Metrics a trial logs once, at its end (not training curves)."""

SETTING_PREFIXES = ("task.", "model.", "training.")
"""Parameter families that describe a trial's setting (as opposed to its architecture)."""

HISTORY_COLUMNS = ["run_id", "combination", "seed", "lr", "metric", "step", "value"]


NULLS = ("null", "None")
"""How a missing parameter value is written: JSON's null (the sweep runner), Python's None."""


def _coerce(column: pd.Series) -> pd.Series:
    """Parameters arrive as strings: nulls become missing, and a column of numbers becomes numeric."""
    column = column.where(~column.isin(NULLS), None)
    present = column.dropna()
    if present.empty:
        return column.astype(float)
    if pd.to_numeric(present, errors="coerce").isna().any():
        return column
    return pd.to_numeric(column)


def option_label(name: str, params: dict[str, object]) -> str:
    """``huber(mode=token)``: an axis option with its parameters, sorted by name; ``name`` alone without."""
    if not params:
        return name
    shown = ", ".join(f"{key}={_short(value)}" for key, value in sorted(params.items()))
    return f"{name}({shown})"


def _short(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _run_row(run: Run) -> dict[str, object]:
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "start_time": pd.Timestamp(run.info.start_time, unit="ms"),
        "combination": tags.get(COMBINATION, run.info.run_name),
        "status": tags.get(STATUS, FAILED if run.info.status == "FAILED" else "unknown"),
        "reason": tags.get(REASON),
        "run_key": tags.get(RUN_KEY),
        **run.data.params,
        **run.data.metrics,
    }


def _axis_options(frame: pd.DataFrame, searched: Collection[str]) -> pd.DataFrame:
    """Add ``<axis>_option`` columns: the option's name with the parameters that vary among the trials
    using that option (``lp(p=2)`` vs ``lp(p=3)``; just ``gd`` when every gd trial has the same ones),
    except ``searched`` ones (``bias.p`` searched: every trial of a cell is ``lp``)."""
    for axis in AXES:
        if axis not in frame:
            continue
        param_columns = [c for c in frame.columns if c.startswith(f"{axis}.") and c not in searched]
        labels = pd.Series(None, index=frame.index, dtype=object)
        for name, rows in frame.groupby(axis, sort=False):
            varying = [c for c in param_columns if rows[c].astype(str).nunique() > 1]
            labels[rows.index] = [
                option_label(str(name), {c.split(".", 1)[1]: row[c] for c in varying if pd.notna(row[c])})
                for _, row in rows.iterrows()
            ]
        frame[f"{axis}_option"] = labels
    return frame


def _training_tokens(frame: pd.DataFrame) -> pd.Series:
    """Training tokens: steps x batch size x sequence length, where all three are known."""
    needed = ["training.steps", "training.batch_size", "task.seq_len"]
    if not all(c in frame and pd.api.types.is_numeric_dtype(frame[c]) for c in needed):
        return pd.Series(np.nan, index=frame.index)
    return frame[needed[0]] * frame[needed[1]] * frame[needed[2]]


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    first = ["run_id", "run_name", "start_time", "combination", "status", "reason", "run_key", "model"]
    first += [c for axis in AXES for c in (axis, f"{axis}_option")]
    first += ["seed", "lr", "task"]
    first = [c for c in first if c in frame]
    params = sorted(c for c in frame.columns if "." in c and c not in first)
    rest = sorted(c for c in frame.columns if c not in first and c not in params)
    return frame[first + params + rest]


def trials_frame(runs: Iterable[Run], searched: Collection[str] = ()) -> pd.DataFrame:
    """One row per trial run: identity, status, axes, parameters (typed), final metrics and ``tokens``;
    ``searched``: the paths of ``search.params``, which do not label axis options."""
    frame = pd.DataFrame([_run_row(run) for run in runs])
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "combination", "status", "reason", "seed", "lr"])
    identity = {"run_id", "run_name", "start_time", "combination", "status", "reason", "run_key"}
    for column in frame.columns:
        if column not in identity and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = _coerce(frame[column])
    frame = _axis_options(frame, searched)
    frame["tokens"] = _training_tokens(frame)
    return _order(frame).reset_index(drop=True)


def varying_settings(trials: pd.DataFrame, searched: Collection[str] = ()) -> list[str]:
    """Setting columns (``task``, ``task.*``, ``model.*``, ``training.*``, except ``training.lr`` and the
    other ``searched`` ones) that take more than one value: with the combination, they identify a cell
    of the sweep."""
    columns = [c for c in trials.columns if c == "task" or c.startswith(SETTING_PREFIXES)]
    skip = {"training.lr", *searched}
    return [c for c in columns if c not in skip and trials[c].astype(str).nunique() > 1]


def history_frame(client: MlflowClient, runs: Iterable[Run], trials: pd.DataFrame) -> pd.DataFrame:
    """Long format: one row per trial x metric x evaluation step (final-only metrics left out)."""
    by_run = trials.set_index("run_id")
    rows: list[tuple[object, ...]] = []
    for run in runs:
        run_id = run.info.run_id
        info = by_run.loc[run_id]
        for key in sorted(run.data.metrics):
            if key in FINAL_METRICS or key.startswith("best_"):
                continue
            for point in client.get_metric_history(run_id, key):
                rows.append(
                    (run_id, info["combination"], info.get("seed"), info.get("lr"), key, point.step, point.value)
                )
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return history.sort_values(["run_id", "metric", "step"], kind="stable").reset_index(drop=True)
