"""Paper view: the paper's numbers beside ours, only where a sweep reproduces one of its settings.

A setting is matched by task and size: language modelling at 340M / 760M / 1.3B parameters
(within ×0.75–×1.33), S-NIAH at the paper's context lengths (the paper does not state that
model's size), and the Yaad ablation only inside a matched LM setting (its own setting is not
stated). Anything else gets a sentence saying that no paper setting is reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .load import Sweep
from .paper import LM_SIZES, NIAH_CELLS, PRESET_OF_ROW, YAAD_ABLATION, lm_table, niah_table
from .scaling import sliced_context_columns
from .tables import axis_effects, combination_summary

SIZE_TOLERANCE = (0.75, 1.33)
"""Our parameter count over the paper's must fall in this range for a size to match."""

PERPLEXITY_METRICS = ("val_perplexity", "test_perplexity", "perplexity")
YAAD_REFERENCE = {"memory": "mlp", "bias": "huber", "retention": "l2"}
"""Yaad's own option on each axis its ablation swaps."""

ROW_OF_PRESET = {preset: row for row, preset in PRESET_OF_ROW.items()}


@dataclass
class PaperView:
    """Side-by-side tables (title -> frame) and the sentences that qualify them."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _tasks(sweep: Sweep) -> set[str]:
    return set(sweep.trials["task"].dropna().astype(str)) if "task" in sweep.trials else set()


def _scale(sweep: Sweep) -> str:
    params = sweep.trials["n_params"].dropna() if "n_params" in sweep.trials else pd.Series(dtype=float)
    size = f"{params.min():,.0f}–{params.max():,.0f} parameters" if len(params) else "unknown size"
    return f"task {', '.join(sorted(_tasks(sweep))) or 'unknown'}, {size}"


def _lm(sweep: Sweep, view: PaperView) -> None:
    summary = combination_summary(sweep)
    if "n_params" not in summary:
        return
    summary = summary.dropna(subset=["n_params"])
    perplexity = next((m for m in PERPLEXITY_METRICS if m in sweep.trials), None)
    ours = combination_summary(sweep, perplexity) if perplexity else summary
    for size, (n_params, tokens) in LM_SIZES.items():
        ratio = summary["n_params"] / n_params
        matched = summary[(ratio >= SIZE_TOLERANCE[0]) & (ratio <= SIZE_TOLERANCE[1])]
        if matched.empty:
            continue
        paper = lm_table(size).set_index("preset")
        rows = []
        for _, cell in matched.iterrows():
            row = paper.loc[cell["combination"]] if cell["combination"] in paper.index else None
            mine = ours.loc[ours["combination"] == cell["combination"], "mean"]
            rows.append(
                {
                    "combination": cell["combination"],
                    "paper_model": ROW_OF_PRESET.get(cell["combination"]),
                    "our_params": cell["n_params"],
                    f"our_{perplexity or sweep.objective}": mine.iloc[0] if len(mine) else float("nan"),
                    "paper_wiki_ppl": None if row is None else row["wiki_ppl"],
                    "paper_lmb_ppl": None if row is None else row["lmb_ppl"],
                    "paper_avg8": None if row is None else row["avg8"],
                }
            )
        view.tables[f"Language modelling at {size}"] = pd.DataFrame(rows)
        view.notes.append(
            f"Language modelling at the paper's {size} scale: the paper trained on FineWeb-Edu for {tokens:.0e} "
            "tokens and reports WikiText/LAMBADA perplexity; our perplexity is on our own validation text, so "
            "only the ordering of models is comparable, not the values."
        )
    if view.tables:
        _yaad(sweep, view)


def _yaad(sweep: Sweep, view: PaperView) -> None:
    try:
        effects = axis_effects(sweep, reference=dict(YAAD_REFERENCE))
    except KeyError:
        return
    base = YAAD_ABLATION["Yaad"][0]
    rows = []
    for variant, (value, swap) in YAAD_ABLATION.items():
        if swap is None:
            continue
        axis, option = swap
        hit = effects[(effects["axis"] == axis) & (effects["option"].str.split("(").str[0] == option)]
        if hit.empty:
            continue
        rows.append(
            {
                "variant": variant,
                "paper_avg_lm": value,
                "paper_change": value - base,
                "our_effect": hit["effect"].iloc[0],
                "our_ci_low": hit["ci_low"].iloc[0],
                "our_ci_high": hit["ci_high"].iloc[0],
                "our_ci_note": hit["ci_note"].iloc[0],
            }
        )
    if rows:
        view.tables["Yaad ablation"] = pd.DataFrame(rows)
        view.notes.append(
            "Yaad ablation: the paper's metric (Avg. LM accuracy) and setting are not stated; compare the sign "
            f"of each change, not its size (our effect is on {sweep.objective})."
        )


def _niah(sweep: Sweep, view: PaperView) -> None:
    sliced = sliced_context_columns(sweep)
    ours = {(kind, length): column for column, (kind, length) in sliced.items()}
    cells = {
        name: ours.get((kind, length)) or ours.get((kind, length // 1024 * 1000))
        for name, (kind, length) in NIAH_CELLS.items()
    }
    cells = {name: column for name, column in cells.items() if column}
    if not cells:
        return
    paper = niah_table().set_index("preset")
    summaries = {name: combination_summary(sweep, column) for name, column in cells.items()}
    rows = []
    for combination in summaries[next(iter(cells))]["combination"].unique():
        row = {"combination": combination, "paper_model": ROW_OF_PRESET.get(combination)}
        for name, summary in summaries.items():
            mine = summary.loc[summary["combination"] == combination, "mean"]
            row[f"our {name}"] = 100 * mine.mean() if len(mine) else float("nan")
            row[f"paper {name}"] = paper.loc[combination, name] if combination in paper.index else None
        rows.append(row)
    view.tables["S-NIAH (accuracy %)"] = pd.DataFrame(rows)
    view.notes.append(
        "S-NIAH: matched on needle kind and context length only; the paper does not state its model size "
        f"(ours: {_scale(sweep)}), and its haystacks are RULER's, ours are our own text."
    )


def paper_view(sweep: Sweep) -> PaperView:
    """The paper's numbers beside ours for every paper setting the sweep reproduces."""
    view = PaperView()
    tasks = _tasks(sweep)
    if "lm" in tasks and "n_params" in sweep.trials:
        _lm(sweep, view)
    if "needle" in tasks:
        _niah(sweep, view)
    if not view.tables:
        view.notes.append(
            f"No paper setting is reproduced by this sweep ({_scale(sweep)}). The paper reports language modelling "
            "at 340M/760M/1.3B parameters (15B–100B tokens), S-NIAH at 1K–8K context and a Yaad ablation at an "
            "unstated scale; its numbers are not shown beside ours because they would not be a comparison."
        )
    return view
