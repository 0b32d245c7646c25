"""Power-law fits recover planted exponents; Pareto fronts; context-length slices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sweep_store import D_MODELS, EXPONENT, SCALE

from miras.analysis import (
    Sweep,
    context_points,
    fit_power_law,
    frontier_points,
    pareto_mask,
    scaling_fits,
    scaling_points,
    varies,
)


def test_power_law_recovers_a_planted_exponent() -> None:
    x = np.geomspace(1e4, 1e8, 9)
    fit = fit_power_law(x, 3.5 * x**-0.076)
    assert fit.exponent == pytest.approx(-0.076, rel=1e-9)
    assert fit.coefficient == pytest.approx(3.5, rel=1e-9)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 9
    noisy = 3.5 * x**-0.076 * np.exp(np.random.default_rng(0).normal(0, 0.01, x.size))
    fit = fit_power_law(x, noisy)
    assert fit.exponent == pytest.approx(-0.076, abs=0.005) and 0.9 < fit.r2 < 1.0
    np.testing.assert_allclose(fit(x), fit.coefficient * x**fit.exponent)


def test_power_law_needs_two_positive_x() -> None:
    with pytest.raises(ValueError, match="two distinct positive x"):
        fit_power_law([1.0, 1.0, -2.0], [1.0, 2.0, 3.0])


def test_scaling_fits_recover_the_sweeps_exponent(scaling: Sweep) -> None:
    assert scaling.mode == "min" and scaling.cell == ["combination", "model.d_model"]
    points = scaling_points(scaling, "params")
    assert varies(points) and len(points) == len(SCALE) * len(D_MODELS)
    fits = scaling_fits(points).set_index("combination")
    for preset, scale in SCALE.items():
        assert fits.loc[preset, "exponent"] == pytest.approx(EXPONENT, rel=1e-9)
        assert fits.loc[preset, "coefficient"] == pytest.approx(scale, rel=1e-9)
    # n_params = 12 d^2, so against d_model the exponent doubles
    assert scaling_fits(scaling_points(scaling, "d_model"))["exponent"].tolist() == pytest.approx([2 * EXPONENT] * 2)
    assert not varies(scaling_points(scaling, "tokens"))


def test_ablation_lacks_scaling_variation(ablation: Sweep) -> None:
    for axis in ("d_model", "params", "flops", "tokens"):
        assert not varies(scaling_points(ablation, axis))


def test_pareto_mask() -> None:
    x = np.array([1.0, 2.0, 3.0, 3.0, np.nan])
    y = np.array([0.5, 0.4, 0.9, 0.8, 1.0])
    points = np.column_stack([x, y])
    assert pareto_mask(points, ["max", "max"]).tolist() == [False, False, True, False, False]
    assert pareto_mask(points, ["min", "max"]).tolist() == [True, False, True, False, False]


def test_pareto_mask_in_three_objectives_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 4, size=(40, 3)).astype(float)  # ties included
    better = ["max", "min", "max"]
    signed = points * np.array([1, -1, 1])
    brute = [
        not any((signed[j] >= signed[i]).all() and (signed[j] > signed[i]).any() for j in range(len(points)))
        for i in range(len(points))
    ]
    assert pareto_mask(points, better).tolist() == brute


def test_state_size_frontier(scaling: Sweep) -> None:
    points = frontier_points(scaling, "state_size", "min").set_index(["combination", "model.d_model"])
    # lower loss is better; deltanet at 64 has moneta at 32's state size and a higher loss
    assert not points.loc[("deltanet", 64), "pareto"]
    assert points.loc[("deltanet", 32), "pareto"] and points.loc[("moneta", 128), "pareto"]


def test_context_points_from_sliced_metrics() -> None:
    trials = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "combination": ["moneta", "moneta"],
            "status": ["finished", "finished"],
            "seed": [0, 1],
            "lr": [1e-3, 1e-3],
            "best_test_accuracy": [0.5, 0.7],
            "test_accuracy_passkey_256": [0.9, 1.0],
            "test_accuracy_passkey_512": [0.4, 0.6],
        }
    )
    sweep = Sweep("needle", "p", "0", "", "test_accuracy", "max", trials, pd.DataFrame())
    points = context_points(sweep).set_index("x")
    assert set(points["kind"]) == {"passkey"}
    assert points.loc[256.0, "mean"] == pytest.approx(0.95) and points.loc[512.0, "n"] == 2
