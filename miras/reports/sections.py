"""What a sweep report says, section by section: each function turns a loaded sweep into blocks, saving
its tables (CSV) and figures (PNG) through :class:`Assets`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..analysis import (
    SCALING_AXES,
    Sweep,
    ablations,
    axis_effects,
    combination_summary,
    context_points,
    failures,
    health_table,
    importance,
    interaction,
    interaction_pairs,
    objective_columns,
    paper_view,
    pareto_cells,
    pareto_trials,
    ranking,
    scaling_fits,
    scaling_points,
    tuned_lr,
    varies,
)
from . import figures
from .document import Block, Bullets, Heading, Image, Table, Text
from .style import Style, combination_styles, metric_label

DPI = 110


class Assets:
    """Saves a report's tables and figures under its folder and remembers the figures it skipped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.skipped: list[str] = []
        for folder in ("figures", "tables"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    def csv(self, frame: pd.DataFrame, name: str) -> str:
        """Save ``frame`` as ``tables/<name>.csv``; returns that relative path."""
        path = f"tables/{name}.csv"
        frame.to_csv(self.root / path, index=False)
        return path

    def table(self, frame: pd.DataFrame, name: str) -> Table:
        """Save ``frame`` as CSV and show it in the report."""
        return Table(frame, self.csv(frame, name))

    def figure(self, name: str, caption: str, make: Callable[[], Figure]) -> list[Block]:
        try:
            figure = make()
        except figures.SkipFigure as reason:
            self.skipped.append(f"{caption}: {reason}.")
            return [Text(f"Not drawn: {reason}.")]
        path = f"figures/{name}.png"
        figure.savefig(self.root / path, dpi=DPI)
        return [Image(path, caption)]


def _fields(section: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``{a: 1, b: true}`` -> ``a 1, b true`` (a config section as written, YAML-style scalars)."""
    return ", ".join(
        f"{key} {str(value).lower() if isinstance(value, bool) else value}"
        for key, value in section.items()
        if key not in skip
    )


def setting_lines(config: dict[str, Any]) -> list[str]:
    """The model, training and search sections as the sweep's config gives them (unlisted fields default)."""
    return [f"{name}: {_fields(config[name])}" for name in ("model", "training", "search") if config.get(name)]


def overview(sweep: Sweep) -> list[Block]:
    trials = sweep.trials
    statuses = trials["status"].value_counts()
    per_cell = int(trials.groupby([*sweep.cell, "seed"], dropna=False).size().max()) if len(trials) else 0
    if sweep.searched:
        search = f"best of up to {per_cell} trials per cell and seed, searching {', '.join(sweep.searched_columns)}"
    elif tuned_lr(sweep):
        lrs = trials.groupby([*sweep.cell, "seed"], dropna=False)["lr"].nunique().max()
        search = f"best of up to {lrs} learning rates per cell and seed"
    else:
        search = "one learning rate"
    tasks = ", ".join(sorted(trials["task"].dropna().astype(str).unique())) if "task" in trials else "unknown"
    task = sweep.config.get("task")
    if isinstance(task, dict) and len(task) > 1:
        tasks += f" ({_fields(task, skip=('name',))})"
    return [
        Bullets(
            [
                f"parent run `{sweep.parent_run_id}` in experiment `{sweep.experiment_id}` of `{sweep.tracking_uri}`",
                f"task: {tasks}; objective: `{sweep.objective}` ({sweep.mode}imised)",
                *setting_lines(sweep.config),
                "fields not listed are at their defaults (docs/config.md)",
                f"{len(trials)} trials: " + ", ".join(f"{n} {status}" for status, n in statuses.items()),
                f"{trials['combination'].nunique()} combinations, seeds "
                f"{', '.join(str(s) for s in sorted(trials['seed'].dropna().unique()))}; {search}",
                "cells (combination" + "".join(f", {s}" for s in sweep.settings) + ")",
            ]
        )
    ]


def interval_caveat(summary: pd.DataFrame, objective: str) -> list[Block]:
    """A sentence when a t-interval of a fraction (an accuracy, bounded by 0 and 1) leaves that range:
    the seeds are too few, or too spread, for the interval to say more than the range does."""
    if "accuracy" not in objective or summary.empty:
        return []
    outside = summary[(summary["ci_low"] < 0) | (summary["ci_high"] > 1)]
    if outside.empty:
        return []
    names = ", ".join(f"`{name}`" for name in outside["combination"])
    return [
        Text(
            f"The 95% t-intervals of {names} leave [0, 1], the range of an accuracy: a t-interval does not "
            "know the bound, so read the part outside as cut at it. A wide interval means the cell is not "
            f"resolved at n = {int(outside['n'].min())}; more seeds narrow it."
        )
    ]


def ranking_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    summary = combination_summary(sweep)
    return [
        Heading("Ranking"),
        Text(f"Cells ordered by their mean `{sweep.objective}` over seeds (best-of-LR first), best first."),
        assets.table(ranking(sweep), "ranking"),
        *assets.figure(
            "summary", "Mean over seeds with 95% CI per cell", lambda: figures.summary_figure(summary, sweep, styles)
        ),
        Heading("Combinations: mean ± 95% CI over seeds"),
        Text(
            "`n` seeds with a result; `ci_low`/`ci_high` bound a 95% t-interval (empty with one seed); costs are "
            "means over those seeds; `not_finished` counts every trial of the cell that diverged, ran out of "
            "memory or failed (listed under Failures)."
        ),
        assets.table(summary, "summary"),
        *interval_caveat(summary, sweep.objective),
    ]


def effects_section(sweep: Sweep, assets: Assets) -> list[Block]:
    effects = axis_effects(sweep)
    blocks: list[Block] = [
        Heading("Per-axis effects"),
        Text(
            "For each axis option, the mean paired difference against the reference option over pairs of "
            "trials that share every other axis, the settings and the seed, with a 95% t-interval; `wins` counts "
            "pairs where the option is better. Attention baselines and presets that share all four axes with "
            "another combination are not paired."
        ),
    ]
    if effects.empty:
        assets.skipped.append("Per-axis effects: no axis takes two options that can be paired.")
        return [*blocks, Text("No axis takes two options that can be paired (a grid over the axes is needed).")]
    return [
        *blocks,
        assets.table(effects, "effects"),
        *assets.figure("effects", "Paired effect of each option", lambda: figures.effects_figure(effects, sweep)),
    ]


def ablations_section(sweep: Sweep, assets: Assets) -> list[Block]:
    """The ablation variants of ``space.ablations`` against their base (nothing when the sweep has none)."""
    table = ablations(sweep)
    if table.empty:
        return []
    return [
        Heading("Ablations"),
        Text(
            f"Each variant changes one thing of its base (`-<axis>=<option>` or `-gate.<name>=<kind>`). `effect` is "
            f"the mean over seeds of variant − base in {metric_label(sweep.objective)} (best-of-LR, paired by seed "
            "and setting), with a 95% t-interval; `wins` counts pairs where the variant is better."
        ),
        assets.table(table, "ablations"),
    ]


def search_section(sweep: Sweep, assets: Assets) -> list[Block]:
    """Importance of the searched settings per combination (nothing when fewer than two vary anywhere)."""
    table = importance(sweep)
    if table.empty:
        return []
    return [
        Heading("Searched settings"),
        Text(
            f"How much of the spread of {metric_label(sweep.objective)} among a combination's trials each searched "
            "setting explains (Optuna's fANOVA importance, summing to 1 per combination, over the trials of every "
            "seed). With few trials these are rough: read them beside the trials' values in `trials.csv`."
        ),
        assets.table(table, "importance"),
    ]


def pareto_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    """The Pareto front of a multi-objective search (nothing with one objective)."""
    if len(sweep.objectives) < 2:
        return []
    columns = objective_columns(sweep)
    trials, cells = pareto_trials(sweep), pareto_cells(sweep)
    shown = ", ".join(f"`{column}` ({mode})" for column, mode in columns)
    return [
        Heading("Pareto front"),
        Text(
            f"The search optimised {shown} at once. A trial is on the front when no other finished trial is at "
            "least as good in every objective and better in one; the cells' table takes each cell's best trial "
            "by the first objective, averages it over seeds, and marks the cells no other cell beats."
        ),
        assets.table(trials[trials["pareto"]].drop(columns="pareto"), "pareto_trials"),
        assets.table(cells, "pareto_cells"),
        *assets.figure(
            "pareto_objectives",
            "the first two objectives",
            lambda: figures.objectives_figure(trials, cells, sweep, styles),
        ),
    ]


def interactions_section(sweep: Sweep, assets: Assets) -> list[Block]:
    pairs = interaction_pairs(sweep)
    blocks: list[Block] = [Heading("Interactions")]
    if not pairs:
        assets.skipped.append("Interaction heatmaps: fewer than two axes vary.")
        return [*blocks, Text("Fewer than two axes vary, so there is no interaction to show.")]
    blocks.append(Text(f"Mean `{sweep.objective}` per pair of options, over the other axes, settings and seeds."))
    for rows, columns in pairs:
        pivot = interaction(sweep, rows, columns)
        name = f"interaction_{rows}_{columns}"
        blocks += [
            Heading(f"{rows} × {columns}", 3),
            assets.table(pivot.reset_index(), name),
            *assets.figure(
                name,
                f"{rows} × {columns}",
                lambda p=pivot, r=rows, c=columns: figures.interaction_figure(p, r, c, sweep),
            ),
        ]
    return blocks


def scaling_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    blocks: list[Block] = [
        Heading("Scaling"),
        Text(
            f"Mean `{sweep.objective}` per cell (95% CI bars) against size, compute, data and context, with a "
            "least-squares fit of y = a·x^b on log-log axes per line (exponent b and R² on the log scale)."
        ),
    ]
    for axis in ("d_model", "params", "flops", "tokens"):
        points = scaling_points(sweep, axis)
        caption = f"{metric_label(sweep.objective)} vs {SCALING_AXES[axis].label}"
        blocks += assets.figure(
            f"scaling_{axis}", caption, lambda p=points, a=axis: figures.scaling_figure(p, a, sweep, styles)
        )
        if varies(points):
            blocks.append(assets.table(scaling_fits(points), f"scaling_{axis}"))
    context = context_points(sweep)
    caption = f"{metric_label(sweep.metric)} vs context length"
    return blocks + assets.figure("scaling_context", caption, lambda: figures.context_figure(context, sweep, styles))


def frontier_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    quality = "recall" if "accuracy" in sweep.metric else "quality"
    return [
        Heading(f"{quality.capitalize()} vs state size"),
        Text("As zoology plots it: each cell's mean against its recurrent state size (log x); dashed: Pareto front."),
        *assets.figure(
            "frontier_state_size",
            f"{quality} vs recurrent state size",
            lambda: figures.frontier_figure(sweep, "state_size", "min", styles),
        ),
        Heading(f"{quality.capitalize()} vs throughput"),
        Text("Each cell's mean against its training throughput; dashed: Pareto front (faster and better)."),
        *assets.figure(
            "pareto_throughput",
            f"{quality} vs training throughput",
            lambda: figures.frontier_figure(sweep, "tokens_per_second", "max", styles),
        ),
    ]


def curves_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    return [
        Heading("Training curves"),
        Text("The best-of-LR trial of every cell and seed; lines are means over seeds."),
        *assets.figure("curves", "training curves", lambda: figures.curves_figure(sweep, styles)),
    ]


def paper_section(sweep: Sweep, assets: Assets) -> list[Block]:
    view = paper_view(sweep)
    blocks: list[Block] = [Heading("The paper"), *(Text(note) for note in view.notes)]
    for title, frame in view.tables.items():
        slug = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")
        blocks += [Heading(title, 3), assets.table(frame, f"paper_{slug}")]
    return blocks


def health_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    table = health_table(sweep)
    flagged = table[table["flags"] != ""]
    blocks: list[Block] = [
        Heading("Health"),
        Text(
            "Each trial's last training loss against chance (`loss_vs_chance` = loss / ln V), its gradient norm "
            "before clipping (at the first evaluation and the largest between evaluations), the Huber l2-branch "
            "share, and what is wrong with it (docs/health.md): loss still near ln V, an exploding gradient, "
            "non-finite memory outputs, saturated gates, or a Huber bias on one branch."
        ),
    ]
    csv = assets.csv(table, "health")
    if flagged.empty:
        blocks.append(Text(f"No trial is flagged ({len(table)} checked; every row: `{csv}`)."))
    else:
        blocks += [
            Text(f"{len(flagged)} of {len(table)} trials are flagged (every row: `{csv}`):"),
            assets.table(flagged.drop(columns=["run_id"]), "health_flagged"),
        ]
    return blocks + assets.figure(
        "gradient_norms", "gradient norm before clipping", lambda: figures.gradient_figure(sweep, styles)
    )


def failures_section(sweep: Sweep, assets: Assets) -> list[Block]:
    failed = failures(sweep)
    blocks: list[Block] = [Heading("Failures")]
    if failed.empty:
        return [*blocks, Text("Every trial finished and logged the objective.")]
    return [
        *blocks,
        Text(
            f"{len(failed)} trials did not finish or did not log `{sweep.objective}`. They are left out of the "
            "means above (a cell's `n` counts the seeds that remain) but never dropped silently:"
        ),
        assets.table(failed, "failures"),
    ]


METHOD = [
    "Best-of-LR: where a cell and seed has trials at several learning rates, the one with the best objective is "
    "kept (ties: the smaller learning rate), as zoology and MAD-lab report.",
    "Mean ± 95% CI: Student-t interval over seeds, mean ± t(0.975, n−1)·s/√n; none with one seed.",
    "Ablations: differences variant − base between trials at the same seed and setting; their mean and "
    "t-interval, as the paired effects.",
    "Paired effects: differences option − reference between trials equal in every other axis, setting and seed; "
    "their mean and t-interval. Exact data give a zero-width interval.",
    "Interactions: plain means per cell of two axes; with missing cells (failures) they mix the other axes "
    "unevenly, so read them beside the paired effects.",
    "Pareto fronts: a point is on the front when no other is at least as good in every objective and better "
    "in one (ties share the front).",
    "Power laws: least squares of log y on log x; R² on that scale.",
]


def build(sweep: Sweep, assets: Assets) -> list[Block]:
    """Every section of the report, in order."""
    styles = combination_styles(sweep.trials["combination"])
    blocks = [
        *overview(sweep),
        *ranking_section(sweep, assets, styles),
        *effects_section(sweep, assets),
        *ablations_section(sweep, assets),
        *search_section(sweep, assets),
        *pareto_section(sweep, assets, styles),
        *interactions_section(sweep, assets),
        *scaling_section(sweep, assets, styles),
        *frontier_section(sweep, assets, styles),
        *curves_section(sweep, assets, styles),
        *paper_section(sweep, assets),
        *health_section(sweep, assets, styles),
        *failures_section(sweep, assets),
        Text(f"Every trial, one row each with all its parameters and metrics: `{assets.csv(sweep.trials, 'trials')}`."),
    ]
    if assets.skipped:
        blocks += [Heading("Figures not drawn"), Bullets(assets.skipped)]
    return [*blocks, Heading("Method"), Bullets(METHOD)]
