"""Benchmark inputs: leaves shaped like a trained mixer's, and the scalar that is differentiated."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops import miras_scan
from ..space import PRESETS, GateSpec

Leaves = dict[str, Tensor]
"""``q, k, v`` ``[B, T, H, D]``, ``gate.<name>`` ``[B, T, H(, D)]``, ``state.<name>`` ``[B, H, out, in]``."""


def make_inputs(
    preset: str, batch: int, length: int, heads: int, dim: int, dtype: torch.dtype, device: str, seed: int = 0
) -> Leaves:
    """Leaves ``q, k, v`` ``[B, T, H, D]`` (unit-norm q, k), the preset's gates and the initial
    memory weights, all requiring grad; drawn in fp64 on the CPU, then cast and moved.

    Gates follow the preset's parameterisation: per head ``[B, T, H]``, or channel-wise
    ``[B, T, H, D]`` (``channel``); values in the ranges a trained mixer produces. The initial
    weights ``[B, H, out, in]`` are random with scale ``in^-1/2`` (a learned initial state, as in
    Titans): at zero an MLP memory's gradients vanish and it would never move.
    """
    gen = torch.Generator().manual_seed(seed)
    preset_ = PRESETS[preset]

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    q, k, v = (randn(batch, length, heads, dim) for _ in range(3))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    components = preset_.spec.resolve()
    deep = preset_.spec.memory.name != "linear"
    leaves = {"q": q, "k": k, "v": v}
    for spec in components.gate_specs():
        width = (dim,) if preset_.gates.get(spec.name) == "channel" else ()
        leaves[f"gate.{spec.name}"] = gate_values(spec, randn(batch, length, heads, *width), deep)
    for name, (rows, cols) in components.memory.shapes(dim, dim).items():
        leaves[f"state.{name}"] = randn(batch, heads, rows, cols) / cols**0.5
    return {n: x.to(device=device, dtype=dtype).requires_grad_() for n, x in leaves.items()}


def gate_values(spec: GateSpec, raw: Tensor, deep: bool) -> Tensor:
    """Gate values spread around the spec's start, as a trained mixer's: its activation of standard
    normal ``raw`` (any shape) shifted to the start's pre-activation, times its scale."""
    return spec.activate(raw + spec.preactivation(spec.initial(deep)))


def gates_of(leaves: Leaves) -> dict[str, Tensor]:
    return {n.removeprefix("gate."): x for n, x in leaves.items() if n.startswith("gate.")}


def state_of(leaves: Leaves) -> dict[str, Tensor]:
    return {n.removeprefix("state."): x for n, x in leaves.items() if n.startswith("state.")}


Results = dict[str, Tensor]
"""Named results of a run: ``o`` (outputs ``[B, T, H, D]``), ``state <name>`` (final state) and,
after :func:`with_gradients`, ``d<leaf>`` (the gradient of every leaf)."""


def scan_outputs(preset: str, impl: str, leaves: Leaves, *, final_state: bool) -> Results:
    """Outputs ``o`` of ``miras_scan(impl=...)`` and, with ``final_state``, ``state <name>``."""
    out, state = miras_scan(
        leaves["q"],
        leaves["k"],
        leaves["v"],
        PRESETS[preset].spec,
        gates_of(leaves),
        impl=impl,
        initial_state=state_of(leaves),
        output_final_state=final_state,
    )
    return {"o": out} | {f"state {name}": value for name, value in (state or {}).items()}


def with_gradients(outputs: Results, leaves: Leaves) -> Results:
    """``outputs`` and the gradient ``d<leaf>`` of their :func:`weighted_sum` w.r.t. every leaf."""
    grads = torch.autograd.grad(weighted_sum(outputs.values()), list(leaves.values()))
    return outputs | {f"d{name}": grad for name, grad in zip(leaves, grads, strict=True)}


def weighted_sum(tensors: Iterable[Tensor]) -> Tensor:
    """A scalar that weighs every entry of ``tensors`` (fixed weights ``linspace(-1, 1)`` each)."""
    return sum((x * ramp(x)).sum() for x in tensors)


def ramp(x: Tensor) -> Tensor:
    """Fixed weights ``linspace(-1, 1)`` shaped like ``x``."""
    return torch.linspace(-1, 1, x.numel(), dtype=x.dtype, device=x.device).view_as(x)


__all__ = ["Leaves", "Results", "make_inputs", "scan_outputs", "weighted_sum", "with_gradients"]
