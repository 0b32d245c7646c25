"""Built-in memory learning algorithms.

An algorithm says how the per-token gradients ``g_t`` of the attentional bias become updates
of the dual accumulator ``A`` (see :mod:`miras.space.retention`):

- ``gd``:          ``A_t = alpha_t A_{t-1} - eta_t g_t`` (``steps`` > 1: that many GD steps per token);
- ``momentum``:    ``S_t = mu_t S_{t-1} - eta_t g_t``, ``A_t = alpha_t A_{t-1} + S_t`` (Titans);
- ``implicit_gd``: the gradient at the *new* weights (Longhorn), which for a linear memory and the
  l2 bias is GD with ``eta_t / (1 + eta_t ||k_t||^2)``.

Shared conventions (parameters of every algorithm, documented in docs/semantics.md):
``batch_size`` b: every token of a mini-batch is differentiated at the mini-batch's start state
(b = 1 is exact online learning); ``grad_at``: differentiate at the start state ``W`` or at its
decayed value ``alpha W``; ``read``: a token reads the memory after (paper) or before its own
write; ``lag_token``: the first token of every b-chunk forms a mini-batch of its own (Memora).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .gates import MOMENTUM, GateSpec
from .registry import REGISTRIES, Params, register_algorithm


class AlgorithmParams(Params):
    batch_size: int = Field(1, ge=1, description="mini-batch size b (1 = exact online learning)")
    grad_at: Literal["previous", "decayed"] = Field(
        "previous",
        description="differentiate at the mini-batch start state W or at its decayed value alpha*W",
    )
    read: Literal["after_write", "before_write"] = Field(
        "after_write", description="a token reads the memory after (paper) or before its own write"
    )
    lag_token: bool = Field(False, description="the first token of every b-chunk is a mini-batch of its own (Memora)")


class Algorithm:
    """Base class: declarative flags read by :mod:`miras.ops`."""

    momentum: ClassVar[bool] = False
    implicit: ClassVar[bool] = False
    gates: ClassVar[tuple[GateSpec, ...]] = ()
    """The :class:`~miras.space.gates.GateSpec` of every per-token gate it reads, besides ``lr``."""

    def __init__(self, params: AlgorithmParams) -> None:
        self.params = params

    @property
    def steps(self) -> int:
        return 1


class GDParams(AlgorithmParams):
    steps: int = Field(1, ge=1, description="GD steps per token on the same (k, v) (needs b = 1)")


REGISTRIES["algorithm"].bind(Algorithm)


@register_algorithm("gd", params=GDParams, description="online gradient descent", shorthand="gd")
class GD(Algorithm):
    params: GDParams

    @property
    def steps(self) -> int:
        return self.params.steps


@register_algorithm(
    "momentum",
    params=AlgorithmParams,
    description="GD with momentum gate mu_t (Titans)",
    shorthand="mom",
)
class Momentum(Algorithm):
    momentum = True
    gates = (MOMENTUM,)


@register_algorithm(
    "implicit_gd",
    params=AlgorithmParams,
    description="implicit online GD, gradient at the new weights (Longhorn)",
    shorthand="igd",
)
class ImplicitGD(Algorithm):
    implicit = True


__all__ = ["Algorithm", "AlgorithmParams"]
