"""Health of a training run: what a trial logs at every evaluation to explain itself (docs/health.md).

:class:`HealthMonitor` watches the whole-model and per-layer gradient norms of every step (before
clipping) and, at an evaluation, adds the model's own diagnostics on a few training sequences
(:meth:`miras.models.LanguageModel.health`: value and output scales, the memory's error, Huber
branch shares, gate percentiles, non-finite outputs). Every metric is named ``health/<name>``.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor, nn

PREFIX = "health/"
HEALTH_SEQUENCES = 4
"""Training sequences the model's diagnostics are computed on at each evaluation."""


def parameter_group(name: str) -> str:
    """The group a parameter's gradient norm is reported under: ``layer<i>`` for block ``i``, else
    its top module (``embed``, ``norm``)."""
    found = re.match(r"blocks\.(\d+)\.", name)
    return f"layer{found.group(1)}" if found else name.split(".", 1)[0]


def gradient_norms(model: nn.Module) -> dict[str, float]:
    """``grad_norm`` (whole model) and ``grad_norm/<group>`` of the current gradients (l2)."""
    squares: dict[str, Tensor] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            group = parameter_group(name)
            squares[group] = squares.get(group, 0) + p.grad.detach().float().pow(2).sum()
    if not squares:
        return {}
    total = torch.stack(list(squares.values())).sum()
    return {"grad_norm": total.sqrt().item()} | {f"grad_norm/{g}": s.sqrt().item() for g, s in squares.items()}


class HealthMonitor:
    """Collects gradient norms step by step and reports them, with the model's diagnostics, at evaluations."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.peak = 0.0
        """Largest whole-model gradient norm since the previous evaluation (``inf`` if one was not finite)."""

    def after_backward(self, model: nn.Module) -> float:
        """Record this step's gradient norms (call before clipping); returns the whole-model norm."""
        self.last = gradient_norms(model)
        norm = self.last.get("grad_norm", 0.0)
        self.peak = max(self.peak, norm) if math.isfinite(norm) else math.inf
        return norm

    def metrics(self, model: nn.Module, inputs: Tensor) -> dict[str, float]:
        """``health/...`` metrics now: the last step's gradient norms, the peak since the previous
        evaluation (``grad_norm_max``), and ``model.health`` on the first sequences of ``inputs``."""
        out = dict(self.last)
        if self.last:
            out["grad_norm_max"] = self.peak
        self.peak = 0.0
        diagnose = getattr(model, "health", None)
        if diagnose is not None:
            was_training = model.training
            model.eval()
            out |= diagnose(inputs[:HEALTH_SEQUENCES])
            model.train(was_training)
        return {PREFIX + name: value for name, value in out.items()}


__all__ = ["HEALTH_SEQUENCES", "PREFIX", "HealthMonitor", "gradient_norms", "parameter_group"]
