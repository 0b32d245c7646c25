"""Data-dependent gates of the Miras mixer: low-rank projections with a stable initialisation.

The paper (spec §5, §8) produces channel-wise ``eta_t``, ``alpha_t``, ``delta_t`` from low-rank
projections ``d -> r -> d`` (r = 32 or 64) and leaves activations and initialisation open
(spec §10.4). Our choices, each starting every gate at a fixed value because the second
projection starts at zero:

| gate | activation | starts at |
|---|---|---|
| lr (eta)        | ``r * sigmoid`` (in (0, r); r: the retention's ``lr_range``) | 0.5 r (linear), 0.1 r (deep memory) |
| decay (alpha)   | ``exp(logsigmoid(z) / 16)`` (GLA's normaliser) | 0.99 |
| momentum (mu)   | ``sigmoid``                                  | 0.9 |
| delta (Huber)   | ``softplus``                                 | sqrt(3) |

The Huber threshold compares with the error's RMS (``huber.scale: rms``); an untrained memory's
prediction ``x + LN(.)`` has RMS sqrt(2) against independent unit-RMS values, so its error RMS is
about sqrt(3): starting there puts about half the tokens on each branch.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GateKind = Literal["data", "channel", "constant", "one"]
DECAY_TEMPERATURE = 16.0


def _inverse(name: str, value: float) -> float:
    """Pre-activation that makes gate ``name`` equal ``value``."""
    if name in ("lr", "momentum"):
        return math.log(value / (1 - value))
    if name == "decay":  # exp(logsigmoid(z)/tau) = value  <=>  sigmoid(z) = value**tau
        s = value**DECAY_TEMPERATURE
        return math.log(s / (1 - s))
    if name == "delta":
        return math.log(math.expm1(value))
    raise ValueError(f"unknown gate {name!r}")


def activate(name: str, z: Tensor) -> Tensor:
    """Gate value from its pre-activation ``z`` (any shape)."""
    if name == "decay":
        return torch.exp(F.logsigmoid(z) / DECAY_TEMPERATURE)
    if name == "delta":
        return F.softplus(z)
    return torch.sigmoid(z)


class Gate(nn.Module):
    """One gate: ``x`` ``[B, T, d_model]`` -> ``[B, T, H]`` (per head) or ``[B, T, H, width]``.

    ``kind``: ``data`` (data-dependent per head), ``channel`` (data-dependent per channel),
    ``constant`` (a learned value per head), ``one`` (fixed to 1; learning rate only).
    ``scale``: the gate is ``scale`` times its activation (the lr gate's range ``(0, scale)``).
    """

    def __init__(
        self,
        name: str,
        kind: GateKind,
        d_model: int,
        n_heads: int,
        width: int,
        rank: int,
        start: float,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.name, self.kind, self.n_heads, self.scale = name, kind, n_heads, scale
        self.width = width if kind == "channel" else 1
        if kind == "one":
            if name != "lr":
                raise ValueError(f"only the lr gate can be fixed to one, not {name!r}")
            return
        bias = torch.full((n_heads * self.width,), _inverse(name, start / scale))
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
        value = self.scale * activate(self.name, z)
        return value if self.kind != "channel" else value.view(batch, length, self.n_heads, self.width)
