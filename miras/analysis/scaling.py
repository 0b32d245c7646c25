"""Scaling: power-law fits of a metric against size, compute, data and context; Pareto fronts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..record import FINISHED
from .load import Sweep
from .stats import metric_range, t_interval
from .tables import best_of_lr, combination_summary


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient · x ** exponent``, fitted by least squares on log y vs log x; ``r2`` is on that scale."""

    coefficient: float
    exponent: float
    r2: float
    n: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.coefficient * np.power(np.asarray(x, dtype=float), self.exponent)


def fit_power_law(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> PowerLaw:
    """Fit ``y = a x^b`` on the points with finite, positive x and y; needs two distinct x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[keep]), np.log(y[keep])
    if np.unique(lx).size < 2:
        raise ValueError("a power-law fit needs at least two distinct positive x values")
    exponent, intercept = np.polyfit(lx, ly, 1)
    residual = float(np.sum((ly - (intercept + exponent * lx)) ** 2))
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return PowerLaw(float(np.exp(intercept)), float(exponent), r2, int(keep.sum()))


@dataclass(frozen=True)
class ScalingAxis:
    """A quantity to plot a metric against: its column, its axis label (with units) and the settings that drive it."""

    column: str
    label: str
    drivers: tuple[str, ...]


SCALING_AXES: dict[str, ScalingAxis] = {
    "d_model": ScalingAxis("model.d_model", "model width d_model (dimensions)", ("model.d_model",)),
    "params": ScalingAxis("n_params", "parameters (count)", ("model.",)),
    "flops": ScalingAxis("flops_per_token", "FLOPs per token", ("model.", "task.seq_len")),
    "tokens": ScalingAxis(
        "tokens", "training tokens", ("training.steps", "training.batch_size", "task.seq_len", "task.token_budget")
    ),
    "context": ScalingAxis("task.seq_len", "context length (tokens)", ("task.seq_len",)),
}


def line_columns(sweep: Sweep, drivers: tuple[str, ...] = ()) -> list[str]:
    """Columns naming one line of a plot: the combination and the varying settings not driven by x."""
    return ["combination", *[s for s in sweep.settings if not s.startswith(drivers)]]


def scaling_points(sweep: Sweep, axis: str, metric: str | None = None) -> pd.DataFrame:
    """Per cell: x (mean over its seeds), the metric's mean ± 95% CI, and the line it belongs to."""
    spec = SCALING_AXES[axis]
    best = best_of_lr(sweep, metric)
    metric = metric or sweep.objective
    if spec.column not in best:
        return pd.DataFrame(columns=["line", "combination", "x", "mean", "ci_low", "ci_high", "ci_note", "n"])
    best = best.dropna(subset=[spec.column])
    lines = line_columns(sweep, spec.drivers)
    rows = []
    for key, group in best.groupby([*lines, spec.column], dropna=False, sort=True):
        interval = t_interval(group[metric], bounds=metric_range(metric), unit="seeds")
        values = dict(zip([*lines, spec.column], key, strict=True))
        rows.append(
            {
                "line": _line_label(values, lines),
                "combination": values["combination"],
                "x": float(values[spec.column]),
                "mean": interval.mean,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "ci_note": interval.note,
                "n": interval.n,
            }
        )
    return pd.DataFrame(rows)


def _line_label(values: dict[str, object], lines: list[str]) -> str:
    extra = ", ".join(f"{c.split('.')[-1]}={values[c]}" for c in lines[1:])
    return f"{values['combination']} ({extra})" if extra else str(values["combination"])


def varies(points: pd.DataFrame) -> bool:
    """Whether some line has at least two distinct x values (a fit needs them)."""
    return bool(len(points)) and bool((points.groupby("line")["x"].nunique() > 1).any())


def scaling_fits(points: pd.DataFrame) -> pd.DataFrame:
    """A power-law fit per line with at least two distinct x values."""
    rows = []
    for line, group in points.groupby("line", sort=False):
        if group["x"].nunique() < 2 or (group["mean"] <= 0).all():
            continue
        fit = fit_power_law(group["x"], group["mean"])
        rows.append(
            {
                "line": line,
                "combination": group["combination"].iloc[0],
                "exponent": fit.exponent,
                "coefficient": fit.coefficient,
                "r2": fit.r2,
                "n_points": fit.n,
            }
        )
    return pd.DataFrame(rows, columns=["line", "combination", "exponent", "coefficient", "r2", "n_points"])


def sliced_context_columns(sweep: Sweep) -> dict[str, tuple[str, int]]:
    """Metrics sliced by context length inside one trial (``test_accuracy_passkey_256``, ``test_accuracy_512``):
    column -> (kind, length); kind is ``all`` where the name has none."""
    pattern = re.compile(rf"^{re.escape(sweep.metric)}_(?:([a-z]+)_)?(\d+)$")
    found = {}
    for column in sweep.trials.columns:
        match = pattern.match(column)
        if match:
            found[column] = (match.group(1) or "all", int(match.group(2)))
    return found


def context_points(sweep: Sweep) -> pd.DataFrame:
    """The metric against context length, per line and kind.

    From metrics sliced by length inside each trial (needle tasks) where there are some, else
    from trials trained at several ``task.seq_len``.
    """
    sliced = sliced_context_columns(sweep)
    if not sliced:
        points = scaling_points(sweep, "context")
        return points.assign(kind="all")
    best = best_of_lr(sweep)
    lines = line_columns(sweep, ("task.context_lengths",))
    rows = []
    for key, group in best.groupby(lines, dropna=False, sort=True):
        values = dict(zip(lines, key if isinstance(key, tuple) else (key,), strict=True))
        for column, (kind, length) in sliced.items():
            interval = t_interval(group[column], bounds=metric_range(column), unit="seeds")
            rows.append(
                {
                    "line": _line_label(values, lines),
                    "combination": values["combination"],
                    "kind": kind,
                    "x": float(length),
                    "mean": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "ci_note": interval.note,
                    "n": interval.n,
                }
            )
    return pd.DataFrame(rows)


def pareto_mask(points: np.ndarray, better: Sequence[str]) -> np.ndarray:
    """Rows of ``points`` ``[n, k]`` that no other row beats: at least as good on all ``k`` columns and
    better on one (``better[j]``, ``max`` or ``min``, says which way column ``j`` is better). Rows with a
    non-finite value are never on the front."""
    signs = np.array([1.0 if way == "max" else -1.0 for way in better])
    scores = np.asarray(points, dtype=float).reshape(len(points), len(signs)) * signs
    keep = np.isfinite(scores).all(axis=1)
    mask = np.zeros(len(scores), dtype=bool)
    for i in np.flatnonzero(keep):
        at_least = (scores[keep] >= scores[i]).all(axis=1)
        strictly = (scores[keep] > scores[i]).any(axis=1)
        mask[i] = not (at_least & strictly).any()
    return mask


def objective_columns(sweep: Sweep) -> list[tuple[str, str]]:
    """``(column, mode)`` of every objective: ``best_<metric>`` where logged, else the metric itself."""
    return [(f"best_{m}" if f"best_{m}" in sweep.trials else m, mode) for m, mode in sweep.objectives]


def pareto_trials(sweep: Sweep) -> pd.DataFrame:
    """Every finished trial with its objectives and ``pareto`` (no other finished trial beats it on all)."""
    columns = objective_columns(sweep)
    names = [c for c, _ in columns]
    trials = sweep.trials[sweep.trials["status"] == FINISHED]
    trials = trials.dropna(subset=[c for c in names if c in trials])
    keep = ["run_id", "run_name", *sweep.cell, "seed", *sweep.searched_columns]
    frame = trials[[c for c in dict.fromkeys(keep + names) if c in trials]].copy()
    frame["pareto"] = pareto_mask(frame[names].to_numpy(), [m for _, m in columns]) if len(frame) else []
    return frame.reset_index(drop=True)


def pareto_cells(sweep: Sweep) -> pd.DataFrame:
    """Per cell: the mean over seeds of each objective of its best trial (best-of-search by the first
    objective), and ``pareto`` among cells."""
    columns = objective_columns(sweep)
    names = [c for c, _ in columns]
    best = best_of_lr(sweep).dropna(subset=names)
    means = best.groupby(sweep.cell, dropna=False, sort=False)[names].mean().reset_index()
    means["pareto"] = pareto_mask(means[names].to_numpy(), [m for _, m in columns]) if len(means) else []
    return means


def frontier_points(sweep: Sweep, x: str, x_better: str, metric: str | None = None) -> pd.DataFrame:
    """Per cell: the cost column ``x`` and the metric's mean, with ``pareto`` marking the front."""
    summary = combination_summary(sweep, metric).dropna(subset=["mean"])
    if x not in summary:
        return summary.assign(pareto=False)
    summary = summary.dropna(subset=[x])
    points = summary[[x, "mean"]].to_numpy()
    mask = pareto_mask(points, [x_better, sweep.mode_of(metric)])
    return summary.assign(pareto=mask)
