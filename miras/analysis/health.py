"""Which trials are unhealthy, and why: the report's health section (docs/health.md).

Reads the ``health/...`` metrics every trial logs at its evaluations (:mod:`miras.runners.health`)
and flags a trial whose training loss stayed near chance (``ln V``), whose gradient norm before
clipping exploded (a finite 1e10 is a failure too, not only NaN), whose memory produced
non-finite outputs, whose (0, 1) gates saturated, or whose Huber bias used one branch only.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..space.gates import DECAY, DELTA, LR, MOMENTUM
from .load import Sweep

NOT_LEARNING = 0.9
"""A trial is not learning when its last training loss is at least this fraction of ``ln V``."""
EXPLODING = 1e3
"""A whole-model gradient norm (before clipping) at or above this is an explosion."""
SATURATED = 1e-3
"""A bounded gate is saturated when 95 % of its values are within this share of its range of 0, or
of its top (``gate/<name>/upper``, which the mixer logs for every bounded gate)."""
ONE_BRANCH = 0.01
"""A Huber bias uses one branch when at most this share of tokens takes either."""
BUILTIN_UPPER = {gate.name: gate.upper for gate in (LR, DECAY, MOMENTUM, DELTA) if gate.upper is not None}
"""The range tops of the built-in bounded gates, for runs logged before ``upper`` was."""

GATE = re.compile(r"health/layer(\d+)/gate/(\w+)/(p05|p95)$")
COLUMNS = [
    "run_id",
    "combination",
    "seed",
    "lr",
    "status",
    "train_loss",
    "loss_vs_chance",
    "grad_norm_first",
    "grad_norm_max",
    "l2_share",
    "flags",
]


def _history(sweep: Sweep, run_id: str, metric: str) -> pd.Series:
    """Values of ``metric`` of one run, in step order."""
    h = sweep.history
    rows = h[(h["run_id"] == run_id) & (h["metric"] == metric)]
    return rows.sort_values("step")["value"].reset_index(drop=True)


def _last(row: pd.Series, column: str) -> float:
    value = row.get(column)
    return float(value) if value is not None and pd.notna(value) else math.nan


def _layer_values(row: pd.Series, name: str) -> list[float]:
    pattern = re.compile(rf"health/layer\d+/{re.escape(name)}$")
    return [float(row[c]) for c in row.index if pattern.match(c) and pd.notna(row[c])]


def _flags(row: pd.Series, loss_vs_chance: float, grad_max: float, nonfinite: float, shares: list[float]) -> list[str]:
    flags = []
    if loss_vs_chance >= NOT_LEARNING:
        flags.append(f"not learning: train loss {row['train_loss']:.3g} is {loss_vs_chance:.0%} of ln V")
    if grad_max >= EXPLODING:
        flags.append(f"exploding gradient: norm {grad_max:.3g} before clipping")
    if nonfinite > 0:
        flags.append(f"non-finite memory outputs ({nonfinite:.0f})")
    for column in row.index:
        found = GATE.match(column)
        if not found or pd.isna(row[column]):
            continue
        layer, gate, quantile = found.groups()
        upper = _last(row, f"health/layer{layer}/gate/{gate}/upper")
        upper = BUILTIN_UPPER.get(gate, math.nan) if math.isnan(upper) else upper
        if math.isnan(upper):
            continue  # an unbounded gate (softplus) cannot saturate
        value = float(row[column])
        if quantile == "p95" and value <= SATURATED * upper:
            flags.append(f"gate {gate} of layer {layer} saturated at 0 (p95 {value:.2g})")
        if quantile == "p05" and value >= (1 - SATURATED) * upper:
            flags.append(f"gate {gate} of layer {layer} saturated at its top {upper:g} (p05 {value:.6g})")
    if shares and (max(shares) <= ONE_BRANCH or min(shares) >= 1 - ONE_BRANCH):
        flags.append(f"huber uses one branch: l2 share {np.mean(shares):.2g}")
    return flags


def health_table(sweep: Sweep) -> pd.DataFrame:
    """One row per trial: the last training loss and its ratio to ``ln V``, the first and the largest
    gradient norm, the mean Huber l2 share, and ``flags`` (``; ``-joined, empty when healthy)."""
    rows = []
    for _, row in sweep.trials.iterrows():
        grads = _history(sweep, row["run_id"], "health/grad_norm")
        peaks = _history(sweep, row["run_id"], "health/grad_norm_max")
        vocab = _last(row, "vocab_size")
        loss = _last(row, "train_loss")
        loss_vs_chance = loss / math.log(vocab) if vocab > 1 else math.nan
        grad_max = float(peaks.max()) if len(peaks) else _last(row, "health/grad_norm_max")
        nonfinite = sum(_layer_values(row, "nonfinite"))
        shares = _layer_values(row, "l2_share")
        rows.append(
            {
                "run_id": row["run_id"],
                "combination": row["combination"],
                "seed": row.get("seed"),
                "lr": row.get("lr"),
                "status": row["status"],
                "train_loss": loss,
                "loss_vs_chance": loss_vs_chance,
                "grad_norm_first": float(grads.iloc[0]) if len(grads) else math.nan,
                "grad_norm_max": grad_max,
                "l2_share": float(np.mean(shares)) if shares else math.nan,
                "flags": "; ".join(_flags(row, loss_vs_chance, grad_max, nonfinite, shares)),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


__all__ = ["EXPLODING", "NOT_LEARNING", "ONE_BRANCH", "SATURATED", "health_table"]
