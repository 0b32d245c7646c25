"""The interval rule (``miras.analysis.stats``): no interval from too few values or from equal ones, and an
interval cut at the range of a metric whose range the harness knows."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sweep_store import D_MODELS

from miras.analysis import (
    MIN_N,
    Sweep,
    axis_effects,
    combination_summary,
    difference_range,
    metric_range,
    scaling_points,
    t_interval,
)


def test_metric_ranges_come_from_the_metric_names_the_tasks_log() -> None:
    assert metric_range("best_test_accuracy") == (0.0, 1.0)
    assert metric_range("test_accuracy_passkey_256") == (0.0, 1.0)
    assert metric_range("best_val_loss") == (0.0, math.inf)
    assert metric_range("val_perplexity") == (1.0, math.inf)
    assert metric_range("val_bits_per_byte") == (0.0, math.inf)
    assert metric_range("tokens_per_second") is None and metric_range(None) is None
    assert difference_range((0.0, 1.0)) == (-1.0, 1.0)
    assert difference_range(None) is None


def test_two_values_are_too_few_for_an_interval() -> None:
    assert MIN_N == 3
    interval = t_interval([0.2, 0.9], bounds=(0.0, 1.0), unit="seeds")
    assert interval.mean == pytest.approx(0.55) and interval.n == 2
    assert math.isnan(interval.low) and math.isnan(interval.high)
    assert interval.note == "too few seeds (n = 2)"
    # the plain t-interval is kept beside it: mean ± 12.7 · s / √2, far outside [0, 1]
    assert interval.t_low < -3 and interval.t_high > 4
    assert t_interval([0.5], unit="pairs").note == "too few pairs (n = 1)"
    assert t_interval([]).note == "no result"


def test_equal_values_give_no_interval_rather_than_a_certain_one() -> None:
    interval = t_interval([0.1, 0.1, 0.1 + 1e-15], unit="pairs")
    assert interval.mean == pytest.approx(0.1)
    assert math.isnan(interval.low) and math.isnan(interval.high)
    assert interval.note == "all pairs equal"


def test_an_interval_is_cut_at_the_metrics_range_and_says_so() -> None:
    values = [0.2, 0.95, 0.9]  # a t-interval of about [-0.3, 1.7]
    plain = t_interval(values)
    assert plain.low < 0 and plain.high > 1 and plain.note == ""
    cut = t_interval(values, bounds=(0.0, 1.0))
    assert (cut.low, cut.high) == (0.0, 1.0)
    assert cut.note == "low clipped at 0, high clipped at 1"
    assert (cut.t_low, cut.t_high) == (plain.low, plain.high)
    inside = t_interval([0.5, 0.51, 0.52], bounds=(0.0, 1.0))
    assert inside.note == "" and 0 < inside.low < inside.high < 1


def _accuracy_sweep(values: dict[str, list[float]]) -> Sweep:
    """One trial per combination and seed with the given ``best_test_accuracy``, at one learning rate."""
    rows = [
        {"combination": name, "seed": seed, "lr": 1e-3, "status": "finished", "best_test_accuracy": value}
        for name, seeds in values.items()
        for seed, value in enumerate(seeds)
    ]
    trials = pd.DataFrame(rows).assign(run_id=[f"r{i}" for i in range(len(rows))])
    empty = pd.DataFrame(columns=["run_id", "combination", "seed", "lr", "metric", "step", "value"])
    return Sweep("s", "p", "0", "sqlite://", "test_accuracy", "max", trials, empty, {})


def test_no_accuracy_interval_leaves_zero_to_one() -> None:
    # the quickstart's lin-l2-none-gd: 0.6854 [0.1814, 1.189] before the rule
    sweep = _accuracy_sweep({"lin": [0.4, 0.8, 0.856], "solved": [1.0, 1.0, 1.0], "two": [0.3, 0.9]})
    summary = combination_summary(sweep).set_index("combination")
    assert summary.loc["lin", "ci_high"] == 1.0 and summary.loc["lin", "ci_note"] == "high clipped at 1"
    assert 0 < summary.loc["lin", "ci_low"] < summary.loc["lin", "mean"]
    assert summary.loc["solved", "ci_note"] == "all seeds equal" and math.isnan(summary.loc["solved", "ci_high"])
    assert summary.loc["two", "ci_note"] == "too few seeds (n = 2)"
    bounds = summary[["ci_low", "ci_high"]].stack().dropna()
    assert len(bounds) == 2 and ((bounds >= 0) & (bounds <= 1)).all()


def test_effects_and_scaling_follow_the_rule(ablation: Sweep, scaling: Sweep) -> None:
    effects = axis_effects(ablation)
    assert (effects["ci_low"].dropna() >= -1).all() and (effects["ci_high"].dropna() <= 1).all()
    assert set(effects["ci_note"]) <= {"", "all pairs equal"}
    # the scaling sweep has two seeds per cell: every point says so instead of drawing a bar
    points = scaling_points(scaling, "d_model")
    assert len(points) == 2 * len(D_MODELS) and points["ci_low"].isna().all()
    assert (combination_summary(scaling)["ci_note"] == "too few seeds (n = 2)").all()
