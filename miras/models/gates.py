"""Data-dependent gates of the Miras mixer: low-rank projections with a stable initialisation.

Each gate is built from the :class:`~miras.space.gates.GateSpec` its option declares (activation,
start, scale; the built-ins' table is in :mod:`miras.space.gates`). The second projection starts
at zero, so every token starts at the spec's start value.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..space.gates import GateKind, GateSpec


class Gate(nn.Module):
    """One gate: ``x`` ``[B, T, d_model]`` -> ``[B, T, H]`` (per head) or ``[B, T, H, width]``.

    ``kind``: ``data`` (data-dependent per head), ``channel`` (data-dependent per channel),
    ``constant`` (a learned value per head), ``one`` (fixed to 1; learning rate only).
    ``deep``: start at the spec's ``deep_start`` (a deep memory).
    """

    def __init__(
        self, spec: GateSpec, kind: GateKind, d_model: int, n_heads: int, width: int, rank: int, deep: bool
    ) -> None:
        super().__init__()
        self.spec, self.kind, self.n_heads = spec, kind, n_heads
        self.width = width if kind == "channel" else 1
        if kind == "one":
            if spec.name != "lr":
                raise ValueError(f"only the lr gate can be fixed to one, not {spec.name!r}")
            return
        bias = torch.full((n_heads * self.width,), spec.preactivation(spec.initial(deep)))
        if kind == "constant":
            self.bias = nn.Parameter(bias)
            return
        self.down = nn.Linear(d_model, rank, bias=False)
        self.up = nn.Linear(rank, n_heads * self.width)
        nn.init.zeros_(self.up.weight)
        with torch.no_grad():
            self.up.bias.copy_(bias)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        if self.kind == "one":
            return x.new_ones(batch, length, self.n_heads)
        z = self.bias.expand(batch, length, -1) if self.kind == "constant" else self.up(self.down(x))
        value = self.spec.activate(z)
        return value if self.kind != "channel" else value.view(batch, length, self.n_heads, self.width)
