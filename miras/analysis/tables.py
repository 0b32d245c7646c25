"""Ablation tables: best-of-LR, per-cell mean ± CI, paired axis effects, ablation variants against their
base, interactions, ranking, failures.

A *cell* is a combination together with the settings that vary across the sweep (d_model,
seq_len, ...); every table is computed on one row per cell and seed (:func:`best_of_lr`).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..record import FINISHED
from ..space import AXES
from .load import Sweep
from .stats import difference_range, metric_range, t_interval

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

COST_COLUMNS = ("n_params", "state_size", "flops_per_token", "tokens_per_second", "peak_memory_mb", "tokens")
"""Per-trial cost columns summarised (mean over seeds) beside the metric."""


def _metric(sweep: Sweep, metric: str | None) -> str:
    metric = metric or sweep.objective
    if metric not in sweep.trials:
        raise KeyError(f"no metric {metric!r} in sweep {sweep.name}; columns: {', '.join(sweep.trials.columns)}")
    return metric


def completed(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """Finished trials that logged the metric (the objective by default)."""
    metric = _metric(sweep, metric)
    trials = sweep.trials
    return trials[(trials["status"] == FINISHED) & np.isfinite(trials[metric].astype(float))]


def tuned_lr(sweep: Sweep) -> bool:
    """Whether the sweep tried several learning rates for some cell and seed."""
    if "lr" not in sweep.trials:
        return False
    return bool((sweep.trials.groupby([*sweep.cell, "seed"], dropna=False)["lr"].nunique() > 1).any())


def best_of_lr(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """One row per cell x seed: the completed trial with the best objective (ties: the smaller lr).

    Where the sweep did not tune the learning rate, this is simply every completed trial.
    The choice is always made on the sweep's objective; ``metric`` only picks what must be present.
    """
    done = completed(sweep, metric)
    if "lr" in done:
        ordered = done.sort_values([sweep.objective, "lr"], ascending=[sweep.mode == "min", True], kind="stable")
    else:
        ordered = done.sort_values(sweep.objective, ascending=sweep.mode == "min", kind="stable")
    keys = [*sweep.cell, "seed"]
    return ordered.groupby(keys, dropna=False, sort=False).head(1).sort_values(keys, kind="stable")


def _costs(rows: pd.DataFrame, matched: bool = False) -> dict[str, float]:
    """Mean costs of ``rows``; ``d_model`` first when the sweep matched the width to a budget."""
    columns = (["model.d_model"] if matched else []) + list(COST_COLUMNS)
    costs = {c: float(rows[c].mean()) for c in columns if c in rows and rows[c].notna().any()}
    return {("d_model" if c == "model.d_model" else c): value for c, value in costs.items()}


def combination_summary(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """Per cell: mean ± 95% t-interval over seeds (best-of-LR first), costs, trial and failure counts.

    Every cell of the sweep has a row, including cells where no trial finished (``n = 0``).
    """
    metric = _metric(sweep, metric)
    best = best_of_lr(sweep, metric)
    rows = []
    for key, group in sweep.trials.groupby(sweep.cell, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        mask = pd.Series(True, index=best.index)
        for column, value in zip(sweep.cell, key, strict=True):
            mask &= best[column].isna() if pd.isna(value) else best[column] == value
        chosen = best[mask]
        interval = t_interval(chosen[metric], bounds=metric_range(metric), unit="seeds")
        rows.append(
            {
                **dict(zip(sweep.cell, key, strict=True)),
                "n": interval.n,
                "mean": interval.mean,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "ci_note": interval.note,
                "std": interval.std,
                **_costs(chosen if len(chosen) else group, sweep.matched),
                "trials": len(group),
                "not_finished": int((group["status"] != FINISHED).sum()),
            }
        )
    return pd.DataFrame(rows)


def ranking(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """Cells from best to worst by their mean over seeds (cells with no result last, unranked)."""
    summary = combination_summary(sweep, metric)
    ascending = sweep.mode_of(metric) == "min"
    ordered = summary.sort_values("mean", ascending=ascending, na_position="last", kind="stable")
    ordered.insert(0, "rank", ordered["mean"].rank(ascending=ascending, method="min").astype("Int64"))
    keep = ["rank", *sweep.cell, "mean", "ci_low", "ci_high", "ci_note", "n", "not_finished"]
    return ordered[keep].reset_index(drop=True)


def failures(sweep: Sweep) -> pd.DataFrame:
    """Every trial that did not finish (diverged, oom, failed), and finished trials without the objective."""
    trials = sweep.trials
    missing = (trials["status"] == FINISHED) & ~np.isfinite(trials[sweep.objective].astype(float))
    bad = trials[(trials["status"] != FINISHED) | missing].copy()
    bad.loc[missing[missing].index, "reason"] = f"no {sweep.objective} logged"
    columns = ["run_id", *sweep.cell, "seed", "lr", "status", "reason"]
    return bad[[c for c in columns if c in bad]].reset_index(drop=True)


# --- axes ------------------------------------------------------------------------------------


def _option_columns(frame: pd.DataFrame) -> list[str]:
    return [f"{axis}_option" for axis in AXES if f"{axis}_option" in frame]


def axis_frame(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """Best-of-LR rows of Miras models whose four axes identify them (attention baselines and
    combinations sharing all four axes with another, e.g. mamba2 and gla, are left out)."""
    best = best_of_lr(sweep, metric)
    options = _option_columns(best)
    if not options:
        return best.iloc[0:0]
    best = best[(best[options] != "-").all(axis=1)]
    same_point = best.groupby([*options, *sweep.settings], dropna=False)["combination"].transform("nunique")
    return best[same_point == 1]


def _paired(sweep: Sweep, frame: pd.DataFrame, axis: str, metric: str) -> pd.DataFrame:
    """``key, option, value`` of the rows that share their key (every other axis, the settings and the seed)
    with a row of another option of ``axis``."""
    if frame.empty:
        return pd.DataFrame(columns=["key", "option", "value"])
    column = f"{axis}_option"
    others = [c for c in _option_columns(frame) if c != column] + sweep.settings + ["seed"]
    key = frame[others].astype(str).agg("|".join, axis=1)
    values = pd.DataFrame({"key": key, "option": frame[column], "value": frame[metric]})
    return values[values.groupby("key")["option"].transform("nunique") > 1]


def varied_axes(sweep: Sweep, metric: str | None = None) -> list[str]:
    """Axes swapped with everything else fixed somewhere in the sweep (some pair of rows differs only there)."""
    metric = _metric(sweep, metric)
    frame = axis_frame(sweep, metric)
    return [a for a in AXES if f"{a}_option" in frame and not _paired(sweep, frame, a, metric).empty]


def _resolve(option: str, labels: list[str]) -> str:
    if option in labels:
        return option
    named = [label for label in labels if label.split("(")[0] == option]
    if len(named) == 1:
        return named[0]
    raise KeyError(f"reference option {option!r} is not one of: {', '.join(labels)}")


def default_reference(values: pd.Series, order: list[str]) -> str:
    """The most frequent of ``values`` (ties: the one first in ``order``)."""
    counts = values.value_counts()
    return max((o for o in order if o in counts), key=lambda option: counts[option])


def axis_effects(sweep: Sweep, reference: dict[str, str] | None = None, metric: str | None = None) -> pd.DataFrame:
    """Per axis option: the mean paired difference ``option - reference`` with its 95% t-interval.

    ``reference`` maps an axis to its reference option (a label such as ``lp(p=3)``, or a bare name when
    only one option has it); by default the option with the most pairs, ties going to the one the sweep
    ran first.

    A pair is two rows that differ only in this axis: the same options on the other axes, the
    same settings and the same seed. ``wins`` counts pairs where the option is better.
    """
    metric = _metric(sweep, metric)
    frame = axis_frame(sweep, metric)
    reference = reference or {}
    bounds = difference_range(metric_range(metric))
    rows = []
    for axis in varied_axes(sweep, metric):
        values = _paired(sweep, frame, axis, metric)
        present = set(values["option"])
        labels = [o for o in dict.fromkeys(sweep.trials[f"{axis}_option"].dropna()) if o in present]
        ref = _resolve(reference[axis], labels) if axis in reference else default_reference(values["option"], labels)
        base = values[values["option"] == ref].set_index("key")["value"]
        for option in labels:
            diff = (values[values["option"] == option].set_index("key")["value"] - base).dropna()
            if option == ref or diff.empty:
                continue
            interval = t_interval(diff.to_numpy(), bounds=bounds, unit="pairs")
            wins = (diff > 0) if sweep.mode_of(metric) == "max" else (diff < 0)
            rows.append(
                {
                    "axis": axis,
                    "option": option,
                    "reference": ref,
                    "n_pairs": interval.n,
                    "effect": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "ci_note": interval.note,
                    "wins": int(wins.sum()),
                }
            )
    columns = ["axis", "option", "reference", "n_pairs", "effect", "ci_low", "ci_high", "ci_note", "wins"]
    return pd.DataFrame(rows, columns=columns)


ABLATION_COLUMNS = [
    "base",
    "variant",
    "n_pairs",
    "base_mean",
    "variant_mean",
    "effect",
    "ci_low",
    "ci_high",
    "ci_note",
    "wins",
]


def ablations(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """Per ablation variant: ``variant - base`` paired by seed (and the varying settings), best-of-LR
    rows, mean with its 95% t-interval; ``wins`` counts pairs where the variant is better.

    Variants are the trials with an ``ablation.base`` parameter (``space.ablations``); a variant whose
    base has no finished trial at a seed has no pair there. Empty when the sweep has no ablations.
    """
    metric = _metric(sweep, metric)
    if "ablation.base" not in sweep.trials:
        return pd.DataFrame(columns=ABLATION_COLUMNS)
    best = best_of_lr(sweep, metric)
    keys = [*sweep.settings, "seed"]
    bounds = difference_range(metric_range(metric))
    rows = []
    variants = sweep.trials.dropna(subset=["ablation.base"])
    for (base, label), _ in variants.groupby(["ablation.base", "combination"], sort=False):
        base_values = best[best["combination"] == base].set_index(keys)[metric]
        values = best[best["combination"] == label].set_index(keys)[metric]
        diff = (values - base_values).dropna()
        interval = t_interval(diff.to_numpy(), bounds=bounds, unit="pairs")
        wins = (diff > 0) if sweep.mode_of(metric) == "max" else (diff < 0)
        paired = diff.index
        rows.append(
            {
                "base": base,
                "variant": label,
                "n_pairs": interval.n,
                "base_mean": float(base_values.loc[paired].mean()) if len(paired) else float("nan"),
                "variant_mean": float(values.loc[paired].mean()) if len(paired) else float("nan"),
                "effect": interval.mean,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "ci_note": interval.note,
                "wins": int(wins.sum()),
            }
        )
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)


IMPORTANCE_COLUMNS = ["combination", "param", "importance", "n_trials"]


def importance(sweep: Sweep, metric: str | None = None) -> pd.DataFrame:
    """Per combination (and varying setting): Optuna's fANOVA importance of each searched setting for
    the objective, over the completed trials of every seed; only for combinations where two or more
    searched settings vary (one alone has importance 1). Distributions span the values tried (log
    scale for a positive setting spanning more than a decade)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    metric = _metric(sweep, metric)
    done = completed(sweep, metric)
    rows = []
    direction = "maximize" if sweep.mode_of(metric) == "max" else "minimize"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per combination
    try:
        for key, group in done.groupby(sweep.cell, dropna=False, sort=False):
            varying = [c for c in sweep.searched_columns if group[c].astype(str).nunique() > 1]
            if len(varying) < 2 or len(group) < 3:
                continue
            study = optuna.create_study(direction=direction)
            distributions = {c: _distribution(group[c]) for c in varying}
            for _, trial in group.iterrows():
                params = {c: _param(trial[c]) for c in varying}
                study.add_trial(
                    optuna.trial.create_trial(params=params, distributions=distributions, value=trial[metric])
                )
            found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
            label = " ".join(str(part) for part in (key if isinstance(key, tuple) else (key,)))
            rows += [
                {"combination": label, "param": param, "importance": float(value), "n_trials": len(group)}
                for param, value in found.items()
            ]
    finally:
        optuna.logging.set_verbosity(verbosity)
    return pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)


def _param(value: object) -> object:
    return float(value) if isinstance(value, int | float | np.number) else str(value)


def _distribution(values: pd.Series) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        return CategoricalDistribution(sorted(values.astype(str).unique()))
    low, high = float(numbers.min()), float(numbers.max())
    return FloatDistribution(low, high, log=low > 0 and high / low > 10)


def interaction_pairs(sweep: Sweep) -> list[tuple[str, str]]:
    """Every pair of axes that are both swapped with everything else fixed."""
    return list(itertools.combinations(varied_axes(sweep), 2))


def interaction(sweep: Sweep, rows: str, columns: str, metric: str | None = None) -> pd.DataFrame:
    """Mean metric per (``rows`` option, ``columns`` option), averaged over the other axes, settings and seeds."""
    metric = _metric(sweep, metric)
    frame = axis_frame(sweep, metric)
    return frame.pivot_table(index=f"{rows}_option", columns=f"{columns}_option", values=metric, aggfunc="mean")
