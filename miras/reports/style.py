"""One look for every figure: a colour-blind-safe palette, a stable colour per combination, and axis labels
with units."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import seaborn as sns

from ..space import BASELINES, PRESETS

PALETTE = [tuple(c) for c in sns.color_palette("colorblind", 10)]
"""Seaborn's colour-blind-safe palette (10 colours)."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
"""Beyond 10 combinations colours repeat, each time with the next marker."""

CANONICAL_ORDER = [*PRESETS, *BASELINES]
"""Presets and baselines first, in their registry order, so they keep their colour across sweeps
with the same members; grid combinations follow, sorted by name."""


@dataclass(frozen=True)
class Style:
    """How one combination is drawn."""

    color: tuple[float, float, float]
    marker: str


def _rank(name: str) -> tuple[int, int | str]:
    if name in CANONICAL_ORDER:
        return (0, CANONICAL_ORDER.index(name))
    return (1, name)


def combination_styles(combinations: Iterable[str]) -> dict[str, Style]:
    """A colour (and marker) per combination, a function of the set of combinations only, so every
    figure of a report draws a combination the same way."""
    ordered = sorted(set(combinations), key=_rank)
    return {
        name: Style(PALETTE[i % len(PALETTE)], MARKERS[(i // len(PALETTE)) % len(MARKERS)])
        for i, name in enumerate(ordered)
    }


UNITS = (
    ("bits_per_byte", "bits per byte"),
    ("perplexity", "per token"),
    ("loss", "nats per token"),
    ("accuracy", "fraction correct"),
)


def metric_label(metric: str) -> str:
    """``best_test_accuracy`` -> ``best test accuracy (fraction correct)``."""
    unit = next((u for key, u in UNITS if key in metric), None)
    words = metric.replace("_", " ")
    return f"{words} ({unit})" if unit else words


COST_LABELS = {
    "state_size": "recurrent state size (scalars per sequence)",
    "tokens_per_second": "training throughput (tokens per second)",
    "n_params": "parameters (count)",
    "flops_per_token": "FLOPs per token",
}
