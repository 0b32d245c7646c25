"""Equal budgets: the width at which a model has a given number of parameters or of state scalars.

Fair comparisons hold a budget fixed (MAD-lab's iso-state protocol; zoology plots recall against
state size). The knob turned is ``d_model``, in steps of ``width_step`` (so the heads divide it and
keep their count); both counts grow with the width, so a bisection over the multiples finds the
closest. Models are built on the meta device: nothing is allocated or initialised.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch

from ..config.schema import ModelConfig
from .lm import Architecture, LanguageModel

Budget = Literal["params", "state_size"]
MAX_WIDTH = 1 << 16
"""Widest model tried."""
MIN_WIDTH = 8
"""Narrowest model (ModelConfig's bound)."""


@dataclass(frozen=True)
class Sized:
    """The width chosen for a budget, and what the model has there."""

    d_model: int
    value: int
    """The model's count of the budget's quantity at ``d_model``."""
    target: int

    @property
    def error(self) -> float:
        """Relative distance from the target (``value / target - 1``)."""
        return self.value / self.target - 1


def measure(arch: Architecture, vocab_size: int, config: ModelConfig, seq_len: int, budget: Budget) -> int:
    """``n_params`` (every parameter, the tied embedding once) or ``state_size`` after ``seq_len`` tokens
    of the model ``arch`` at ``config`` (one width)."""
    with torch.device("meta"):
        model = LanguageModel(arch, vocab_size, config)
    return model.num_params() if budget == "params" else model.state_size(seq_len)


def match_width(
    arch: Architecture, vocab_size: int, config: ModelConfig, seq_len: int, budget: Budget, target: int
) -> Sized:
    """The multiple of ``config.width_step`` (every head count divides it; at least 8, at most
    65536) whose ``budget`` is closest to ``target`` (ties: the narrower)."""
    heads = config.width_step

    @functools.cache
    def at(k: int) -> int:
        return measure(arch, vocab_size, config.model_copy(update={"d_model": k * heads}), seq_len, budget)

    low, high = -(-MIN_WIDTH // heads), MAX_WIDTH // heads
    if at(high) < target:
        return Sized(high * heads, at(high), target)
    while low < high:  # the smallest k with at(k) >= target
        middle = (low + high) // 2
        low, high = (middle + 1, high) if at(middle) < target else (low, middle)
    candidates = [k for k in (low - 1, low) if k * heads >= MIN_WIDTH]
    best = min(candidates, key=lambda k: (abs(at(k) - target), k))
    return Sized(best * heads, at(best), target)


__all__ = ["Budget", "Sized", "match_width", "measure"]
