"""Per-token gates, declared by the options that read them.

An option that reads a gate lists its :class:`GateSpec` (a bias or an algorithm in ``gates``; a
retention with a decay reads :data:`DECAY`; every spec reads :data:`LR`). The mixer builds one
low-rank projection per spec (:mod:`miras.models.gates`), the scans check each gate's width
against the side it acts on, and the benchmarks and tests draw gate values around each spec's
start: nothing outside the option knows a gate by name.

The paper (spec §5, §8) produces channel-wise ``eta_t``, ``alpha_t``, ``delta_t`` from low-rank
projections and leaves activations and initialisation open (spec §10.4). The built-in choices:

| gate | activation | starts at | acts on |
|---|---|---|---|
| lr (eta)        | ``sigmoid``, times the retention's ``lr_range`` r | 0.5 r (linear), 0.1 r (deep memory) | values |
| decay (alpha)   | ``decay``: ``exp(logsigmoid(z) / 16)`` (GLA's normaliser) | 0.99 | inputs |
| momentum (mu)   | ``sigmoid`` | 0.9 | inputs |
| delta (Huber)   | ``softplus`` | sqrt(3) | values |

The Huber threshold compares with the error's RMS (``huber.scale: rms``); an untrained memory's
prediction ``x + LN(.)`` has RMS sqrt(2) against independent unit-RMS values, so its error RMS is
about sqrt(3): starting there puts about half the tokens on each branch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from torch import Tensor

GateKind = Literal["data", "channel", "constant", "one"]
"""How the mixer produces a gate: data-dependent per head, data-dependent per channel,
a learned constant per head, or fixed to 1 (the lr gate only)."""

Activation = Literal["sigmoid", "decay", "softplus"]
"""``sigmoid`` (0, 1), ``decay`` ``exp(logsigmoid(z) / 16)`` in (0, 1) with a slow start,
``softplus`` (0, inf)."""

ACTIVATIONS: tuple[str, ...] = get_args(Activation)
DECAY_TEMPERATURE = 16.0


@dataclass(frozen=True)
class GateSpec:
    """A per-token gate an option reads: ``scale * activation(z)``, ``z`` a low-rank projection of
    the mixer's input that starts at the value giving ``start`` (``deep_start`` for a deep memory).

    ``acts_on``: ``values`` (the error signal's side: a channel-wise gate is ``D_v`` wide) or
    ``inputs`` (the input side of every memory weight: a channel-wise gate is that width).
    """

    name: str
    activation: Activation
    start: float
    deep_start: float | None = None
    acts_on: Literal["values", "inputs"] = "values"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"gate name {self.name!r} must be an identifier")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"gate {self.name!r}: activation must be one of {', '.join(ACTIVATIONS)}")
        if self.acts_on not in ("values", "inputs"):
            raise ValueError(f"gate {self.name!r}: acts_on must be 'values' or 'inputs', not {self.acts_on!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"gate {self.name!r}: scale must be a positive number, not {self.scale!r}")
        bounded = self.activation != "softplus"
        for start in (self.start, self.deep_start):
            if start is not None and not (0 < start < (1 if bounded else math.inf)):
                limit = "(0, 1)" if bounded else "(0, inf)"
                raise ValueError(f"gate {self.name!r}: a {self.activation} gate starts in {limit}, not {start!r}")

    @property
    def upper(self) -> float | None:
        """The largest value the gate can take (``scale`` for a bounded activation), or ``None``."""
        return None if self.activation == "softplus" else self.scale

    def initial(self, deep: bool) -> float:
        """The activation's value at initialisation (before ``scale``)."""
        return self.deep_start if deep and self.deep_start is not None else self.start

    def activate(self, z: Tensor) -> Tensor:
        """The gate's value ``scale * activation(z)`` from its pre-activation ``z`` (any shape)."""
        import torch.nn.functional as F

        if self.activation == "decay":
            value = (F.logsigmoid(z) / DECAY_TEMPERATURE).exp()
        elif self.activation == "softplus":
            value = F.softplus(z)
        else:
            value = z.sigmoid()
        return self.scale * value

    def preactivation(self, value: float) -> float:
        """The ``z`` at which the activation equals ``value`` (the inverse of :meth:`activate` before ``scale``)."""
        if self.activation == "sigmoid":
            return math.log(value / (1 - value))
        if self.activation == "decay":  # exp(logsigmoid(z) / tau) = value  <=>  sigmoid(z) = value**tau
            s = value**DECAY_TEMPERATURE
            return math.log(s / (1 - s))
        return math.log(math.expm1(value))


LR = GateSpec("lr", "sigmoid", 0.5, deep_start=0.1)
"""The memory's learning rate ``eta_t``; every spec reads it, scaled by the retention's ``lr_range``."""
DECAY = GateSpec("decay", "decay", 0.99, acts_on="inputs")
"""The retention's forget gate ``alpha_t`` (retentions with ``uses_decay``)."""
MOMENTUM = GateSpec("momentum", "sigmoid", 0.9, acts_on="inputs")
"""The momentum coefficient ``mu_t`` of the momentum algorithms."""
DELTA = GateSpec("delta", "softplus", math.sqrt(3))
"""The Huber threshold ``delta_t``."""
