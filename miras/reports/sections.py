"""What a sweep report says, section by section: each function turns a loaded sweep into blocks, saving
its tables (CSV) and figures (PNG) through :class:`Assets`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ..analysis import (
    MIN_N,
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
    metric_range,
    objective_columns,
    paper_view,
    pareto_cells,
    pareto_trials,
    ranking,
    scaling_fits,
    scaling_points,
    varies,
)
from . import figures
from .document import Block, Bullets, Heading, Image, Table, Text, to_latex
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

    def latex(self, frame: pd.DataFrame, name: str, together: tuple[str, ...] = ()) -> str:
        """Save ``frame`` as a booktabs table, ``tables/<name>.tex``; returns that relative path."""
        path = f"tables/{name}.tex"
        (self.root / path).write_text(to_latex(frame, f"tables/{name}.csv", together))
        return path

    def table(self, frame: pd.DataFrame, name: str, together: tuple[str, ...] = ()) -> Table:
        """Save ``frame`` as CSV and as LaTeX, and show it in the report (``together``: columns of one
        quantity, formatted as one)."""
        return Table(frame, self.csv(frame, name), self.latex(frame, name, together), together)

    def figure(self, name: str, caption: str, make: Callable[[], Figure]) -> list[Block]:
        try:
            figure = make()
        except figures.SkipFigure as reason:
            self.skipped.append(f"{caption}: {reason}.")
            return [Text(f"Not drawn: {reason}.")]
        path = f"figures/{name}.png"
        figure.savefig(self.root / path, dpi=DPI)
        return [Image(path, caption)]


def number(value: object) -> str:
    """A setting's value as a reader writes it: ``3e-4`` (not ``0.0003``), ``0.5``, ``64``; a string as the
    config wrote it (YAML reads ``1e-2`` as the string ``1e-2``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if abs(value) < 1e-2 or abs(value) >= 1e5:
        return scientific(value)
    return f"{value:.4g}"


def scientific(value: float) -> str:
    """``0.0003`` -> ``3e-4``, ``0.012`` -> ``1.2e-2``: to 4 significant digits, no trailing zeros."""
    mantissa, exponent = f"{value:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers(values: list[object]) -> list[str]:
    """Values of one setting written alike: all as :func:`number` gives them, or all in its scientific form
    when one of them needs it (``1e-4, 1e-2``, not ``1e-4, 0.01``)."""
    if not any(_real(v) and 0 < abs(v) < 1e-2 for v in values):
        return [number(v) for v in values]
    return [scientific(float(v)) if _real(v) and v else number(v) for v in values]


def _value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return number(value)


def _fields(section: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``{a: 1, b: true}`` -> ``a 1, b true`` (a config section as written, YAML-style scalars)."""
    return ", ".join(f"{key} {_value(value)}" for key, value in section.items() if key not in skip)


def _ran(trials: pd.DataFrame, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings under ``prefix`` (``training.``) that every trial ran with one value, from its params."""
    columns = [c for c in trials.columns if c.startswith(prefix) and c.removeprefix(prefix) not in skip]
    return {
        c.removeprefix(prefix): trials[c].dropna().iloc[0]
        for c in columns
        if trials[c].notna().any() and trials[c].astype(str).nunique() == 1
    }


def setting_lines(config: dict[str, Any], trials: pd.DataFrame | None = None) -> list[str]:
    """The model and training sections as the sweep's config gives them (unlisted fields default); a section
    the config lacks is given as the trials ran it (their params)."""
    lines = []
    for name in ("model", "training"):
        if config.get(name):
            lines.append(f"{name}: {_fields(config[name])}")
        elif trials is not None and (ran := _ran(trials, f"{name}.", skip=("lr",))):
            lines.append(f"{name} (as the trials ran): {_fields(ran)}")
    return lines


def size_line(sweep: Sweep) -> str | None:
    """The model's size: parameters, and recurrent state, per cell (mean over its seeds), smallest to largest."""
    summary = combination_summary(sweep)

    def name(row: pd.Series) -> str:
        return ", ".join([str(row["combination"]), *(f"{c.split('.')[-1]} {number(row[c])}" for c in sweep.settings)])

    parts = []
    for column, unit in (("n_params", "parameters"), ("state_size", "scalars of recurrent state per sequence")):
        if column not in summary or summary[column].isna().all():
            continue
        rows = summary.dropna(subset=[column])
        low, high = rows.loc[rows[column].idxmin()], rows.loc[rows[column].idxmax()]
        if low[column] == high[column]:
            parts.append(f"{low[column]:,.0f} {unit}")
        else:
            parts.append(f"{low[column]:,.0f} ({name(low)}) to {high[column]:,.0f} ({name(high)}) {unit}")
    return f"size: {'; '.join(parts)}" if parts else None


def lrs(values: list[object]) -> list[str]:
    """Learning rates as they are written: ``1e-2``, ``3e-4``, ``1.5e-3`` (a value that is not a number as given)."""
    written = []
    for value in values:
        try:
            written.append(scientific(float(value)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            written.append(str(value))
    return written


def _space(spec: Any, write: Callable[[list[object]], list[str]] = numbers) -> str:
    """A searched setting's space: ``3e-4, 1e-3, 3e-3`` (each tried), ``log-uniform over [1e-4, 1e-2]``."""
    if isinstance(spec, list):
        return ", ".join(write(spec))
    spec = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec)
    low, high = write([spec.get("low"), spec.get("high")])
    if spec.get("int"):
        return f"integers {low} to {high}"
    return f"{'log-uniform' if spec.get('log') else 'uniform'} over [{low}, {high}]"


def searched_space(config: dict[str, Any]) -> dict[str, Any]:
    """Every searched setting by path (``training.lr`` first), as the search ran it: ``search.lr`` (its default
    range when not given) when it is searched, then ``search.params``; empty without a ``search`` section."""
    from ..config.schema import SearchConfig

    search = config.get("search")
    if not search:
        return {}
    try:
        return SearchConfig.model_validate(search).searched
    except ValueError:  # a config of an older schema: take it as written
        params = dict(search.get("params") or {})
        lr = {"training.lr": search["lr"]} if "lr" in search else {}
        return lr | {k: v for k, v in params.items() if k != "training.lr"}


def search_lines(sweep: Sweep) -> list[str]:
    """The learning rates searched (or the one used) and the other searched settings, with what was tried."""
    trials = sweep.trials
    space = searched_space(sweep.config)
    search = sweep.config.get("search") or {}
    tried = sorted(float(v) for v in trials["lr"].dropna().unique()) if "lr" in trials else []
    ranged = any(not isinstance(spec, list) for spec in space.values())
    per_cell = f"{search.get('trials_per_combination') or 4} trials per cell and seed (Optuna TPE)"
    lines = []
    if "training.lr" in space:
        spec = space["training.lr"]
        line = f"learning rates searched (`search.lr`): {_space(spec, lrs)}"
        if isinstance(spec, list):
            line += ", each tried for every cell and seed"
        elif tried:
            low, high = lrs([tried[0], tried[-1]])
            line += f"; tried {len(tried)} values, {low} to {high}"
        lines.append(line + "; the best is kept per cell and seed (best-of-LR)")
    elif len(tried) > 1:
        lines.append(f"learning rates: {', '.join(lrs(tried))}; the best is kept per cell and seed")
    elif tried:
        lines.append(f"learning rate: {lrs(tried)[0]} (`training.lr`), not searched")
    others = {path: spec for path, spec in space.items() if path != "training.lr"}
    if others:
        shown = "; ".join(f"{path} {_space(spec)}" for path, spec in others.items())
        lines.append(f"also searched (`search.params`): {shown}")
    if ranged:
        asha = "; ASHA stops poor trials early" if search.get("scheduler") == "asha" else ""
        lines.append(f"search: {per_cell}{asha}")
    return lines


def overview(sweep: Sweep) -> list[Block]:
    trials = sweep.trials
    statuses = trials["status"].value_counts()
    per_cell = int(trials.groupby([*sweep.cell, "seed"], dropna=False).size().max()) if len(trials) else 0
    tasks = ", ".join(sorted(trials["task"].dropna().astype(str).unique())) if "task" in trials else "unknown"
    task = sweep.config.get("task")
    if isinstance(task, dict) and len(task) > 1:
        tasks += f" ({_fields(task, skip=('name',))})"
    elif ran := _ran(trials, "task."):
        tasks += f" (as the trials ran: {_fields(ran)})"
    combinations = list(dict.fromkeys(trials["combination"].dropna())) if len(trials) else []
    named = f" ({', '.join(combinations)})" if 0 < len(combinations) <= 12 else ""
    seeds = ", ".join(number(s) for s in sorted(trials["seed"].dropna().unique())) if "seed" in trials else ""
    tried = f"; up to {per_cell} trials per cell and seed" if per_cell > 1 else ""
    size = size_line(sweep)
    return [
        Bullets(
            [
                f"parent run `{sweep.parent_run_id}` in experiment `{sweep.experiment_id}` of `{sweep.tracking_uri}`",
                f"task: {tasks}; objective: `{sweep.objective}` ({sweep.mode}imised)",
                *setting_lines(sweep.config, trials),
                *([size] if size else []),
                *search_lines(sweep),
                "fields not listed are at their defaults (docs/config.md)",
                f"{len(trials)} trials: " + ", ".join(f"{n} {status}" for status, n in statuses.items()),
                f"{len(combinations)} combinations{named}, seeds {seeds}{tried}",
                "cells (combination" + "".join(f", {s}" for s in sweep.settings) + ")",
            ]
        )
    ]


def _names(labels: list[str]) -> str:
    return ", ".join(f"`{label}`" for label in labels)


def interval_notes(table: pd.DataFrame, labels: pd.Series, metric: str, unit: str) -> list[Block]:
    """What the interval rule (:mod:`miras.analysis.stats`) did to a table's intervals, in words: the rows
    with none because their ``unit`` (seeds, pairs) are too few or all equal, and those cut at the metric's
    range. Nothing when every interval is a plain t-interval."""
    if table.empty or "ci_note" not in table:
        return []
    notes = table["ci_note"].fillna("").astype(str)
    said = []
    few = labels[notes.str.startswith("too few")].tolist()
    if few:
        said.append(
            f"No interval for {_names(few)}: fewer than {MIN_N} {unit} (`ci_note` gives n). From two values a "
            "95% t-interval is the mean ± 6.4 times their difference and rests on a normality two values "
            "cannot show, so it would say nothing they do not."
        )
    equal = labels[notes.str.startswith("all ")].tolist()
    if equal:
        said.append(
            f"No interval for {_names(equal)}: all {unit} gave the same value, so no spread was measured. That "
            "is not certainty (a t-interval would have zero width whatever the spread); more "
            f"{unit} would show it."
        )
    clipped = notes.str.contains("clipped")
    if clipped.any():
        bounds = metric_range(metric)
        where = f"[{number(bounds[0])}, {number(bounds[1])}]" if bounds else "its range"
        counts = sorted({int(n) for n in table.loc[clipped, "n" if "n" in table else "n_pairs"]})
        n = f"n = {counts[0]}" if len(counts) == 1 else f"n = {counts[0]}–{counts[-1]}"
        said.append(
            f"The intervals of {_names(labels[clipped].tolist())} are cut at the range of {metric_label(metric)}, "
            f"{where} (`ci_note` says which bound): the t-interval does not know the range, the true value lies "
            "inside it, so the cut interval covers it as often. A cut interval is still as wide as the spread "
            f"of the {unit} makes it: where it is wide, the value is not resolved with {n} {unit}, and more "
            f"{unit} would narrow it."
        )
    return [Text(" ".join(said))] if said else []


def _cell_labels(table: pd.DataFrame, sweep: Sweep) -> pd.Series:
    return table[sweep.cell].astype(str).agg(" · ".join, axis=1)


def ranking_section(sweep: Sweep, assets: Assets, styles: dict[str, Style]) -> list[Block]:
    summary = combination_summary(sweep)
    return [
        Heading("Ranking"),
        Text(f"Cells ordered by their mean `{sweep.objective}` over seeds (best-of-LR first), best first."),
        assets.table(ranking(sweep), "ranking"),
        *assets.figure(
            "summary",
            f"Mean over seeds with 95% CI per cell (no bar below {MIN_N} seeds or where all seeds are equal; bars cut "
            "at the metric's range)",
            lambda: figures.summary_figure(summary, sweep, styles),
        ),
        Heading("Combinations: mean ± 95% CI over seeds"),
        Text(
            f"`n` seeds with a result; `ci_low`/`ci_high` bound a 95% t-interval, empty below {MIN_N} seeds or "
            "when all seeds are equal, cut at the metric's range (`ci_note` says which applied; Method); costs "
            "are means over those seeds; `not_finished` counts every trial of the cell that diverged, ran out of "
            "memory or failed (listed under Failures)."
        ),
        assets.table(summary, "summary"),
        *interval_notes(summary, _cell_labels(summary, sweep), sweep.objective, "seeds"),
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
    labels = effects["axis"] + " " + effects["option"].astype(str)
    return [
        *blocks,
        assets.table(effects, "effects"),
        *interval_notes(effects, labels, sweep.objective, "pairs"),
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
        *interval_notes(table, table["variant"].astype(str), sweep.objective, "pairs"),
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


def interaction_table(pivot: pd.DataFrame, rows: str, columns: str) -> pd.DataFrame:
    """An interaction pivot as a flat table that keeps both axes' names: the first column is named by the
    rows' axis, each other column ``<columns' axis>=<option>``."""
    table = pivot.copy()
    table.columns = [f"{columns}={option}" for option in table.columns]
    table.index = table.index.rename(rows)
    return table.reset_index()


def interactions_section(sweep: Sweep, assets: Assets) -> list[Block]:
    pairs = interaction_pairs(sweep)
    blocks: list[Block] = [Heading("Interactions")]
    if not pairs:
        assets.skipped.append("Interaction heatmaps: fewer than two axes vary.")
        return [*blocks, Text("Fewer than two axes vary, so there is no interaction to show.")]
    blocks.append(
        Text(
            f"Mean `{sweep.objective}` per pair of options, over the other axes, settings and seeds: a row per "
            "option of the first axis, a column `<second axis>=<option>` per option of the second."
        )
    )
    for rows, columns in pairs:
        pivot = interaction(sweep, rows, columns)
        name = f"interaction_{rows}_{columns}"
        blocks += [
            Heading(f"{rows} × {columns}", 3),
            assets.table(table := interaction_table(pivot, rows, columns), name, tuple(table.columns[1:])),
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
        blocks.append(Text(f"No trial is flagged ({len(table)} checked; every row: [{csv}]({csv}))."))
    else:
        blocks += [
            Text(f"{len(flagged)} of {len(table)} trials are flagged (every row: [{csv}]({csv})):"),
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
    "Mean ± 95% CI: Student-t interval over seeds, mean ± t(0.975, n−1)·s/√n.",
    f"Which intervals are shown (`ci_note`): none below {MIN_N} seeds or pairs (`too few seeds (n = 2)`: from "
    "two values the interval is the mean ± 6.4 times their difference, on a normality two values cannot show); "
    "none when all values are equal (`all pairs equal`: no spread was measured, which is not certainty); for a "
    "metric whose range the harness knows (accuracies are fractions correct in [0, 1], losses and bits per "
    "byte at least 0, perplexities at least 1; differences of two accuracies in [−1, 1]) the interval is cut at "
    "the range (`high clipped at 1`): the true value lies in the range, so the cut interval covers it as often "
    "as the t-interval. Metrics of unknown range are not cut.",
    "Ablations: differences variant − base between trials at the same seed and setting; their mean and "
    "t-interval, as the paired effects.",
    "Paired effects: differences option − reference between trials equal in every other axis, setting and seed; "
    "their mean and t-interval.",
    "Interactions: plain means per cell of two axes; with missing cells (failures) they mix the other axes "
    "unevenly, so read them beside the paired effects.",
    "Pareto fronts: a point is on the front when no other is at least as good in every objective and better "
    "in one (ties share the front).",
    "Power laws: least squares of log y on log x; R² on that scale.",
]


def build(sweep: Sweep, assets: Assets) -> list[Block]:
    """Every section of the report, in order."""
    styles = combination_styles(sweep.trials["combination"])
    trials_csv = assets.csv(sweep.trials, "trials")
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
        Text(f"Every trial, one row each with all its parameters and metrics: [{trials_csv}]({trials_csv})."),
    ]
    if assets.skipped:
        blocks += [Heading("Figures not drawn"), Bullets(assets.skipped)]
    return [*blocks, Heading("Method"), Bullets(METHOD)]
