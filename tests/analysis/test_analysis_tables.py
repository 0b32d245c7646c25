"""Loading a sweep from MLflow and the ablation tables recover the effects planted in the synthetic store."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sweep_store import (
    ABLATION,
    DIVERGED,
    HUBER_EFFECT,
    LRS,
    OOM,
    SEEDS,
    best_lr,
    planted_accuracy,
)

from miras.analysis import (
    Sweep,
    SweepNotFoundError,
    axis_effects,
    best_of_lr,
    combination_summary,
    failures,
    importance,
    interaction,
    interaction_pairs,
    load_sweep,
    ranking,
    tuned_lr,
)

EXACT = 1e-12
GRID = [f"{m}-{b}-{r}-gd" for m in ("lin", "mlp") for b in ("l2", "huber") for r in ("none", "l2")]


def test_trials_frame_has_a_typed_row_per_trial(ablation: Sweep) -> None:
    trials = ablation.trials
    assert len(trials) == len(GRID) * len(SEEDS) * len(LRS) + len(SEEDS) * len(LRS)
    assert trials["run_id"].is_unique  # the deleted run is not read
    assert "interrupted" not in set(trials["status"])
    assert trials["seed"].dtype.kind == "i" and trials["lr"].dtype.kind == "f"
    assert trials["model.d_model"].dtype.kind == "i"
    assert trials["model.swa_window"].isna().all()  # JSON null
    assert set(trials["algorithm.lag_token"].dropna()) == {"false"}
    for column in ("memory_option", "bias_option", "n_params", "state_size", "flops_per_token", "tokens_per_second"):
        assert column in trials
    assert set(trials["retention"]) == {"none", "l2", "-"}  # "none" is an option, not a missing value
    assert set(trials["memory_option"]) == {"linear", "mlp", "-"}  # equal params are not shown
    assert (trials["tokens"].dropna() == 100 * 8 * 64).all()
    assert ablation.metric == "test_accuracy" and ablation.mode == "max"
    assert ablation.objective == "best_test_accuracy"
    assert ablation.cell == ["combination"]
    assert ablation.config["search"]["lr"] == list(LRS)


def test_history_is_long_format(ablation: Sweep) -> None:
    history = ablation.history
    assert list(history.columns) == ["run_id", "combination", "seed", "lr", "metric", "step", "value"]
    run = ablation.trials[ablation.trials["status"] == "finished"]["run_id"].iloc[0]
    curve = history[(history["run_id"] == run) & (history["metric"] == "test_accuracy")]
    assert curve["step"].tolist() == [0, 50, 100]
    assert not history["metric"].isin(["n_params", "best_test_accuracy"]).any()


def test_load_by_parent_run_id_and_unknown_sweep(store: str, ablation: Sweep) -> None:
    again = load_sweep(ablation.parent_run_id, store, history=False)
    assert again.name == ABLATION and len(again.trials) == len(ablation.trials)
    assert again.history.empty
    with pytest.raises(SweepNotFoundError, match="no sweep named 'nope'"):
        load_sweep("nope", store)


def test_best_of_lr_picks_the_best_trial(ablation: Sweep) -> None:
    assert tuned_lr(ablation)
    best = best_of_lr(ablation)
    grid = best[best["combination"] != "transformer"]
    assert len(grid) == len(GRID) * len(SEEDS) - 1  # the diverged seed has no trial left
    for row in grid.itertuples():
        memory, bias, retention, _ = row.combination.split("-")
        assert row.lr == best_lr(memory)
        assert row.best_test_accuracy == pytest.approx(planted_accuracy(memory, bias, retention, row.seed))
    # the OOM trial was at its cell's worse lr, so the cell keeps all seeds
    oom_cell = best[(best["combination"] == OOM[0]) & (best["seed"] == OOM[1])]
    assert oom_cell["lr"].tolist() == [best_lr("lin")]


def test_summary_means_and_exact_cis(ablation: Sweep) -> None:
    summary = combination_summary(ablation).set_index("combination")
    assert set(summary.index) == {*GRID, "transformer"}
    cell = summary.loc["lin-huber-l2-gd"]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(planted_accuracy("lin", "huber", "l2", 1))
    # seeds add 0.00, 0.01, 0.02: s = 0.01, half-width = t(0.975, 2) * 0.01 / sqrt(3)
    assert cell["ci_high"] - cell["mean"] == pytest.approx(4.302652729911275 * 0.01 / math.sqrt(3))
    assert cell["ci_note"] == ""
    diverged = summary.loc[DIVERGED[0]]
    assert diverged["n"] == 2 and diverged["not_finished"] == 2
    # two seeds are too few for an interval: none is given, and the note says so
    assert math.isnan(diverged["ci_low"]) and diverged["ci_note"] == "too few seeds (n = 2)"
    assert summary.loc[OOM[0], "not_finished"] == 1 and summary.loc[OOM[0], "n"] == 3


def test_failures_are_listed(ablation: Sweep) -> None:
    failed = failures(ablation)
    assert sorted(failed["status"]) == ["diverged", "diverged", "oom"]
    oom = failed[failed["status"] == "oom"].iloc[0]
    assert (oom["combination"], oom["seed"], oom["lr"]) == OOM
    assert oom["reason"] == "CUDA out of memory"
    diverged = failed[failed["status"] == "diverged"]
    assert set(diverged["combination"]) == {DIVERGED[0]} and set(diverged["seed"]) == {DIVERGED[1]}


def test_ranking_order(ablation: Sweep) -> None:
    expected = [
        "transformer",
        "mlp-huber-l2-gd",
        "mlp-huber-none-gd",
        "lin-huber-l2-gd",
        "lin-huber-none-gd",
        "mlp-l2-l2-gd",
        "mlp-l2-none-gd",
        "lin-l2-l2-gd",
        "lin-l2-none-gd",
    ]
    table = ranking(ablation)
    assert table["combination"].tolist() == expected
    assert table["rank"].tolist() == list(range(1, 10))


def test_planted_bias_effect_is_exact(ablation: Sweep) -> None:
    effects = axis_effects(ablation).set_index("axis")
    bias = effects.loc["bias"]
    assert (bias["option"], bias["reference"]) == ("huber", "l2")  # default reference: tie, first run
    assert bias["effect"] == pytest.approx(HUBER_EFFECT, abs=EXACT)
    # every pair differs by exactly 0.10: no spread, so no interval, and the table says why
    assert math.isnan(bias["ci_low"]) and math.isnan(bias["ci_high"]) and bias["ci_note"] == "all pairs equal"
    assert bias["n_pairs"] == len(GRID) // 2 * len(SEEDS) - 1  # the diverged seed breaks one pair
    assert bias["wins"] == bias["n_pairs"]
    # retention l2 adds 0.02 (linear memory) or 0.04 (mlp): an effect between them with a real interval
    retention = effects.loc["retention"]
    assert retention["option"] == "l2" and retention["ci_low"] > 0.02 and retention["ci_high"] < 0.04


def test_reference_can_be_chosen(ablation: Sweep) -> None:
    effects = axis_effects(ablation, reference={"bias": "huber"}).set_index("axis")
    assert effects.loc["bias", "option"] == "l2"
    assert effects.loc["bias", "effect"] == pytest.approx(-HUBER_EFFECT, abs=EXACT)
    with pytest.raises(KeyError, match="reference option 'lp'"):
        axis_effects(ablation, reference={"bias": "lp"})


def test_interaction_pivot(ablation: Sweep) -> None:
    assert interaction_pairs(ablation) == [("memory", "bias"), ("memory", "retention"), ("bias", "retention")]
    pivot = interaction(ablation, "memory", "retention")
    assert pivot.shape == (2, 2)
    # the linear/none cell averages both biases over all three seeds: 0.5 + 0.05 (half huber) + 0.01
    assert pivot.loc["linear", "none"] == pytest.approx(0.56)
    assert pivot.loc["linear", "l2"] - pivot.loc["linear", "none"] == pytest.approx(0.02)


def _searched_sweep(values: pd.DataFrame) -> Sweep:
    """A sweep of one combination whose trials searched ``bias.p`` and ``training.weight_decay``."""
    trials = values.assign(combination="moneta", status="finished", run_id=[f"r{i}" for i in range(len(values))])
    config = {"search": {"params": {"bias.p": {"low": 1, "high": 4}, "training.weight_decay": {"low": 0, "high": 0.2}}}}
    empty = pd.DataFrame(columns=["run_id", "combination", "seed", "lr", "metric", "step", "value"])
    return Sweep("s", "p", "0", "sqlite://", "test_accuracy", "max", trials, empty, config)


def test_importance_finds_the_setting_that_drives_the_metric() -> None:
    rng = np.random.default_rng(0)
    p, decay = rng.uniform(1, 4, 40), rng.uniform(0, 0.2, 40)
    frame = pd.DataFrame({"seed": np.arange(40) % 2, "lr": 1e-3, "bias.p": p, "training.weight_decay": decay})
    sweep = _searched_sweep(frame.assign(best_test_accuracy=1 - (p - 3) ** 2 / 4 + 0.01 * rng.normal(size=40)))
    assert sweep.settings == [] and sweep.searched_columns == ["bias.p", "training.weight_decay"]
    table = importance(sweep).set_index("param")
    assert table.loc["bias.p", "importance"] > 0.8 > table.loc["training.weight_decay", "importance"]
    assert (table["n_trials"] == 40).all() and table["combination"].eq("moneta").all()
    best = best_of_lr(sweep)
    assert len(best) == 2  # one per seed: the searched settings do not split the cell


def test_a_matched_width_is_a_column_not_a_cell() -> None:
    frame = pd.DataFrame(
        {
            "seed": [0, 1, 0, 1],
            "lr": 1e-3,
            "model.d_model": [64, 64, 128, 128],
            "best_test_accuracy": [0.9, 0.8, 0.5, 0.7],
        }
    )
    trials = frame.assign(combination=["transformer"] * 2 + ["deltanet"] * 2, status="finished", run_id=list("abcd"))
    empty = pd.DataFrame(columns=["run_id", "combination", "seed", "lr", "metric", "step", "value"])
    config = {"model": {"match": {"state_size": 16384}}}
    sweep = Sweep("s", "p", "0", "sqlite://", "test_accuracy", "max", trials, empty, config)
    assert sweep.matched and sweep.cell == ["combination"]
    summary = combination_summary(sweep).set_index("combination")
    assert summary.loc["deltanet", "d_model"] == 128 and summary.loc["transformer", "mean"] == pytest.approx(0.85)
    unmatched = Sweep("s", "p", "0", "sqlite://", "test_accuracy", "max", trials, empty, {})
    assert unmatched.cell == ["combination", "model.d_model"]  # without match the width names a cell
