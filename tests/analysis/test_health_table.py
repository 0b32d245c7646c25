"""The report's health table: each flag on a trial planted to deserve it, none on a healthy one."""

from __future__ import annotations

import math

import pandas as pd

from miras.analysis import Sweep, health_table
from miras.analysis.frame import HISTORY_COLUMNS

V = 4096
HEALTHY = {
    "train_loss": 5.0,
    "health/layer0/gate/lr/p05": 0.05,
    "health/layer0/gate/lr/p95": 0.2,
    "health/layer0/gate/decay/p05": 0.9,
    "health/layer0/gate/decay/p95": 0.99,
    "health/layer0/nonfinite": 0.0,
}
TRIALS = {
    "healthy": {},
    "stuck": {"train_loss": 0.95 * math.log(V)},
    "exploding": {},
    "nan": {"health/layer0/nonfinite": 3.0},
    "lr_off": {"health/layer0/gate/lr/p95": 1e-4},
    "no_decay": {"health/layer0/gate/decay/p05": 0.9999},
    "plugin_top": {
        "health/layer0/gate/temperature/p05": 0.4996,
        "health/layer0/gate/temperature/p95": 0.5,
        "health/layer0/gate/temperature/upper": 0.5,
    },
    "narrow_lr_top": {"health/layer0/gate/lr/p05": 0.09995, "health/layer0/gate/lr/upper": 0.1},
    "unbounded": {"health/layer0/gate/delta/p05": 1e6, "health/layer0/gate/delta/p95": 1e7},
    "one_branch": {"health/layer0/l2_share": 0.0, "health/layer1/l2_share": 0.004},
    "two_branches": {"health/layer0/l2_share": 0.0, "health/layer1/l2_share": 0.6},
}
GRADIENTS = {"exploding": [3.0, 2.0e10]}


def sweep() -> Sweep:
    rows, history = [], []
    for i, (name, planted) in enumerate(TRIALS.items()):
        run_id = f"run{i}"
        rows.append(
            {"run_id": run_id, "combination": name, "seed": 0, "lr": 1e-3, "status": "finished", "vocab_size": V}
            | HEALTHY
            | planted
        )
        for step, value in zip((100, 200), GRADIENTS.get(name, [3.0, 2.0]), strict=True):
            history.append((run_id, name, 0, 1e-3, "health/grad_norm_max", step, value))
            history.append((run_id, name, 0, 1e-3, "health/grad_norm", step, value / 2))
    return Sweep(
        name="planted",
        parent_run_id="parent",
        experiment_id="0",
        tracking_uri="sqlite://",
        metric="val_loss",
        mode="min",
        trials=pd.DataFrame(rows),
        history=pd.DataFrame(history, columns=HISTORY_COLUMNS),
    )


def test_each_planted_problem_is_flagged_and_only_it() -> None:
    table = health_table(sweep()).set_index("combination")
    flags = table["flags"]
    assert flags["healthy"] == "" and flags["two_branches"] == ""
    assert flags["stuck"].startswith("not learning: train loss 7.9 is 95% of ln V")
    assert flags["exploding"] == "exploding gradient: norm 2e+10 before clipping"
    assert flags["nan"] == "non-finite memory outputs (3)"
    assert flags["lr_off"] == "gate lr of layer 0 saturated at 0 (p95 0.0001)"
    assert flags["no_decay"] == "gate decay of layer 0 saturated at its top 1 (p05 0.9999)"
    assert flags["plugin_top"] == "gate temperature of layer 0 saturated at its top 0.5 (p05 0.4996)"
    assert flags["narrow_lr_top"] == "gate lr of layer 0 saturated at its top 0.1 (p05 0.09995)"
    assert flags["unbounded"] == ""
    assert flags["one_branch"] == "huber uses one branch: l2 share 0.002"
    assert table.loc["exploding", "grad_norm_max"] == 2.0e10
    assert table.loc["exploding", "grad_norm_first"] == 1.5
    assert math.isclose(table.loc["stuck", "loss_vs_chance"], 0.95)


def test_a_sweep_without_health_metrics_is_not_flagged() -> None:
    """Sweeps recorded before health metrics existed: nothing to flag, nothing invented."""
    old = sweep()
    old.trials = old.trials[["run_id", "combination", "seed", "lr", "status"]]
    old.history = old.history.iloc[0:0]
    table = health_table(old)
    assert (table["flags"] == "").all() and table["grad_norm_max"].isna().all()
