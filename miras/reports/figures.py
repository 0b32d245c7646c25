"""The report's figures. Each function returns a matplotlib Figure, or raises :class:`SkipFigure` with the
reason when the sweep lacks the variation the figure needs."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..analysis import (
    EXPLODING,
    SCALING_AXES,
    Sweep,
    best_of_lr,
    fit_power_law,
    frontier_points,
    objective_columns,
    varies,
)
from .style import COST_LABELS, Style, metric_label

WIDTH = 7.0
"""Figure width in inches (height depends on the figure)."""


class SkipFigure(Exception):
    """The sweep does not have what this figure needs; the message says what is missing."""


def _figure(height: float = 4.0, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(WIDTH if ncols == 1 else 4.2 * ncols, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, list(axes)


def _compact(value: float, _position: int | None = None) -> str:
    """Tick labels such as 20k, 1.5M, 0.6."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _log(ax: Axes, which: str = "x", base: float = 10) -> None:
    """Log scale with compact labels; minor ticks are labelled only on axes spanning under 1.5 decades
    (more densely on y, where labels do not collide)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    axis.set_major_formatter(FuncFormatter(_compact))
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    if base != 10 or np.log10(high / low) >= 1.5:
        axis.set_minor_formatter(NullFormatter())
        return
    axis.set_minor_locator(LogLocator(subs=(2.0, 5.0) if which == "x" else tuple(range(2, 10))))
    axis.set_minor_formatter(FuncFormatter(_compact))


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def _errors(points: pd.DataFrame) -> np.ndarray | None:
    low = (points["mean"] - points["ci_low"]).to_numpy(dtype=float)
    high = (points["ci_high"] - points["mean"]).to_numpy(dtype=float)
    errors = np.nan_to_num(np.vstack([low, high]))
    return errors if errors.any() else None


def _worse(a: float, b: float, better: str) -> float:
    return min(a, b) if better == "max" else max(a, b)


def front_path(
    xs: np.ndarray, ys: np.ndarray, x_better: str, y_better: str, x_edge: float, y_edge: float
) -> list[tuple[float, float]]:
    """The boundary of what the front's points dominate, as a staircase: through every point, a corner between
    neighbours at their worse x and worse y, and out to the axes' edges (``x_edge``, ``y_edge``: the worse end
    of each axis) from the two extreme points, so that even a one-point front is a visible line."""
    points = sorted(zip(xs.tolist(), ys.tolist(), strict=True))
    path: list[tuple[float, float]] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        path += [(x0, y0), (_worse(x0, x1, x_better), _worse(y0, y1, y_better))]
    path.append(points[-1])
    first, last = points[0], points[-1]
    if x_better == "max":  # the last point is the fastest, the first the best in y
        return [(x_edge, first[1]), *path, (last[0], y_edge)]
    return [(first[0], y_edge), *path, (x_edge, last[1])]


def pareto_front(ax: Axes, xs: np.ndarray, ys: np.ndarray, x_better: str, y_better: str) -> None:
    """Draw the Pareto front (black, dashed, its points ringed) as the staircase of :func:`front_path`, on the
    axes' current limits, which it leaves as they are; its legend entry shows the same line and ring."""
    keep = np.isfinite(xs) & np.isfinite(ys)
    if not keep.any():
        return
    xs, ys = xs[keep], ys[keep]
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    x_edge = xlim[0] if x_better == "max" else xlim[1]
    y_edge = ylim[0] if y_better == "max" else ylim[1]
    path = front_path(xs, ys, x_better, y_better, x_edge, y_edge)
    on_front = {(float(x), float(y)) for x, y in zip(xs, ys, strict=True)}
    rings = [i for i, point in enumerate(path) if point in on_front and 0 < i < len(path) - 1]
    px, py = zip(*path, strict=True)
    ax.plot(
        px,
        py,
        color="black",
        linestyle="--",
        linewidth=1,
        marker="o",
        markersize=11,
        markerfacecolor="none",
        markeredgewidth=1,
        markevery=rings,
        label="Pareto front",
        zorder=1,
    )
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def summary_figure(summary: pd.DataFrame, sweep: Sweep, styles: dict[str, Style]) -> Figure:
    """Each cell's mean over seeds with its 95% CI, best first."""
    done = summary.dropna(subset=["mean"]).sort_values("mean", ascending=sweep.mode == "max")
    if done.empty:
        raise SkipFigure("no cell has a finished trial")
    labels = [" · ".join(str(row[c]) for c in sweep.cell) for _, row in done.iterrows()]
    figure, (ax,) = _figure(height=1.2 + 0.3 * len(done))
    colors = [styles[c].color for c in done["combination"]]
    ax.barh(labels, done["mean"], xerr=_errors(done), color=colors, capsize=3)
    ax.set_xlabel(f"{metric_label(sweep.objective)}, mean ± 95% CI over seeds")
    ax.set_ylabel("combination")
    return figure


def effects_figure(effects: pd.DataFrame, sweep: Sweep) -> Figure:
    """Paired effects of each axis option against its reference, with 95% CIs."""
    if effects.empty:
        raise SkipFigure("no axis takes two options that can be paired (a grid over the axes is needed)")
    labels = [f"{r.axis}: {r.option} − {r.reference}" for r in effects.itertuples()]
    figure, (ax,) = _figure(height=1.2 + 0.35 * len(effects))
    y = np.arange(len(effects))
    ax.errorbar(effects["effect"], y, xerr=_errors(effects.rename(columns={"effect": "mean"})), fmt="o", capsize=3)
    ax.axvline(0.0, color="0.5", linewidth=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"paired difference in {metric_label(sweep.objective)} (95% CI)")
    return figure


def interaction_figure(pivot: pd.DataFrame, rows: str, columns: str, sweep: Sweep) -> Figure:
    """Heatmap of the mean metric per pair of options of two axes."""
    figure, (ax,) = _figure(height=2.0 + 0.5 * len(pivot))
    cmap = "viridis" if sweep.mode == "max" else "viridis_r"
    sns.heatmap(pivot, annot=True, fmt=".3g", cmap=cmap, ax=ax)
    ax.set_title(f"mean {metric_label(sweep.objective)}", fontsize="medium")
    ax.set_ylabel(f"{rows} option")
    ax.set_xlabel(f"{columns} option")
    return figure


def _plot_fit(ax: Axes, group: pd.DataFrame, style: Style, label: str) -> None:
    group = group.sort_values("x")
    ax.errorbar(group["x"], group["mean"], yerr=_errors(group), fmt=style.marker, color=style.color, capsize=3)
    if group["x"].nunique() >= 2 and (group["mean"] > 0).all():
        fit = fit_power_law(group["x"], group["mean"])
        xs = np.geomspace(group["x"].min(), group["x"].max(), 50)
        label = f"{label}: exponent {fit.exponent:.3g}, R² {fit.r2:.3f}"
        ax.plot(xs, fit(xs), color=style.color, linestyle="--")
    ax.plot([], [], marker=style.marker, color=style.color, linestyle="--", label=label)


def scaling_figure(points: pd.DataFrame, axis: str, sweep: Sweep, styles: dict[str, Style]) -> Figure:
    """The metric against one scaling axis (log-log), a power-law fit per line."""
    if not varies(points):
        raise SkipFigure(f"no combination was run at two or more values of {SCALING_AXES[axis].label}")
    figure, (ax,) = _figure()
    for line, group in points.groupby("line", sort=True):
        _plot_fit(ax, group, styles[group["combination"].iloc[0]], str(line))
    _log(ax, "x")
    _log(ax, "y")
    ax.set_xlabel(f"{SCALING_AXES[axis].label}, log scale")
    ax.set_ylabel(f"{metric_label(sweep.objective)}, log scale")
    _legend(ax)
    return figure


def context_figure(points: pd.DataFrame, sweep: Sweep, styles: dict[str, Style]) -> Figure:
    """The metric against context length, one panel per needle kind, a power-law fit per line."""
    if points.empty or not points.groupby(["kind", "line"])["x"].nunique().gt(1).any():
        raise SkipFigure("no combination was evaluated at two or more context lengths")
    kinds = sorted(points["kind"].unique())
    figure, axes = _figure(ncols=len(kinds))
    for ax, kind in zip(axes, kinds, strict=True):
        for line, group in points[points["kind"] == kind].groupby("line", sort=True):
            _plot_fit(ax, group, styles[group["combination"].iloc[0]], str(line))
        _log(ax, "x", base=2)
        ax.set_title(kind if kind != "all" else "")
        ax.set_xlabel("context length (tokens), log scale")
        ax.set_ylabel(metric_label(sweep.metric))
    _legend(axes[-1])
    return figure


def frontier_figure(sweep: Sweep, x: str, x_better: str, styles: dict[str, Style]) -> Figure:
    """The metric against a cost (state size, throughput): every cell, each combination's cells joined,
    and the Pareto front (black, dashed)."""
    points = frontier_points(sweep, x, x_better)
    if x not in points or points[x].nunique() < 2:
        raise SkipFigure(f"the cells of this sweep do not differ in {x}")
    figure, (ax,) = _figure()
    for combination, group in points.groupby("combination", sort=True):
        style = styles[combination]
        group = group.sort_values(x)
        line = "-" if len(group) > 1 else "none"  # a lone cell is a point, in the legend too
        ax.plot(group[x], group["mean"], marker=style.marker, color=style.color, linestyle=line, label=combination)
    _log(ax, "x")
    front = points[points["pareto"]]
    pareto_front(ax, front[x].to_numpy(dtype=float), front["mean"].to_numpy(dtype=float), x_better, sweep.mode)
    ax.set_xlabel(f"{COST_LABELS.get(x, x)}, log scale")
    ax.set_ylabel(metric_label(sweep.objective))
    ax.set_title("mean over seeds per cell", fontsize="medium")
    _legend(ax)
    return figure


def objectives_figure(trials: pd.DataFrame, cells: pd.DataFrame, sweep: Sweep, styles: dict[str, Style]) -> Figure:
    """The first two objectives of a multi-objective search: every finished trial (small), each cell's
    mean of its best (large, open), and the trials' Pareto front (black, dashed)."""
    (x, x_mode), (y, y_mode) = objective_columns(sweep)[:2]
    if trials.empty:
        raise SkipFigure("no trial finished")
    figure, (ax,) = _figure()
    for combination, group in trials.groupby("combination", sort=True):
        style = styles[combination]
        ax.scatter(group[x], group[y], marker=style.marker, color=style.color, s=18, alpha=0.6, label=combination)
    for _, cell in cells.iterrows():
        style = styles[cell["combination"]]
        ax.scatter(cell[x], cell[y], marker=style.marker, s=90, facecolors="none", edgecolors=style.color)
    front = trials[trials["pareto"]]
    pareto_front(ax, front[x].to_numpy(dtype=float), front[y].to_numpy(dtype=float), x_mode, y_mode)
    ax.set_xlabel(f"{COST_LABELS.get(x, metric_label(x))} ({x_mode} is better)")
    ax.set_ylabel(f"{COST_LABELS.get(y, metric_label(y))} ({y_mode} is better)")
    ax.set_title("trials (small), cells' best: mean over seeds (open)", fontsize="medium")
    _legend(ax)
    return figure


def curves_figure(sweep: Sweep, styles: dict[str, Style]) -> Figure:
    """Training curves of the best-of-LR trials: the objective's metric and the training loss against
    the step, mean over seeds per cell."""
    chosen = best_of_lr(sweep)
    history = sweep.history[sweep.history["run_id"].isin(chosen["run_id"])]
    metrics = [m for m in (sweep.metric, "train_loss") if (history["metric"] == m).any()]
    if history.empty or history["step"].nunique() < 2 or not metrics:
        raise SkipFigure("no metric was logged at two or more training steps")
    cells = chosen.set_index("run_id")[sweep.cell].astype(str).agg(" · ".join, axis=1)
    history = history.assign(cell=history["run_id"].map(cells))
    figure, axes = _figure(ncols=len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        rows = history[history["metric"] == metric]
        for (cell, combination), group in rows.groupby(["cell", "combination"], sort=True):
            mean = group.groupby("step")["value"].mean()
            ax.plot(mean.index, mean.to_numpy(), color=styles[combination].color, label=cell)
        ax.set_xlabel("training step")
        ax.set_ylabel(metric_label(metric))
        ax.set_title("mean over seeds", fontsize="medium")
    _legend(axes[-1])
    return figure


def gradient_figure(sweep: Sweep, styles: dict[str, Style]) -> Figure:
    """The largest whole-model gradient norm (before clipping) between evaluations, per trial, against
    the step (log y), with the explosion threshold of the health flags."""
    rows = sweep.history[sweep.history["metric"] == "health/grad_norm_max"]
    rows = rows[np.isfinite(rows["value"].astype(float)) & (rows["value"] > 0)]
    if rows.empty or rows["step"].nunique() < 2:
        raise SkipFigure("no gradient norm was logged at two or more evaluations")
    figure, (ax,) = _figure()
    labelled: set[str] = set()
    for (combination, _), group in rows.groupby(["combination", "run_id"], sort=True):
        group = group.sort_values("step")
        label = None if combination in labelled else combination
        labelled.add(combination)
        ax.plot(group["step"], group["value"], color=styles[combination].color, label=label, alpha=0.8)
    ax.axhline(EXPLODING, color="0.4", linestyle="--", linewidth=1, label=f"explosion ({EXPLODING:g})")
    _log(ax, "y")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm before clipping (max since last eval)")
    _legend(ax)
    return figure
