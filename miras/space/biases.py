"""Built-in attentional biases: the inner objective l(pred, target) and its error signal.

Every bias is a per-token loss over the memory's prediction ``pred`` and the value ``target``
(both ``[..., D_v]``). The error signal ``u = dl/dpred`` (``[..., D_v]``) is what the memory
learning algorithm back-propagates into the memory's weights. Built-ins give ``u`` in closed
form; a plugin may define only :meth:`AttentionalBias.loss` and inherit the autograd ``error``.

Conventions (documented in docs/semantics.md): l2 is 1/2 ||e||^2 so its error signal is
``e = pred - target``; the dot-product bias is ``-<pred, target>`` so its signal is ``-target``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from .gates import DELTA, GateSpec
from .registry import REGISTRIES, NoParams, Params, register_bias

if TYPE_CHECKING:
    from torch import Tensor

Gates = dict[str, "Tensor"]


class AttentionalBias:
    """Base class. Subclasses set ``gates`` (the :class:`~miras.space.gates.GateSpec` of every
    per-token gate they read, besides ``lr``)."""

    gates: ClassVar[tuple[GateSpec, ...]] = ()
    state_independent: ClassVar[bool] = False
    """True when ``u`` does not depend on ``pred`` (the gradient needs no memory state)."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        """Per-token loss: ``pred``, ``target`` ``[..., D_v]`` -> ``[...]``."""
        raise NotImplementedError(f"{type(self).__name__} must define loss()")

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        """Error signal ``dl/dpred``, ``[..., D_v]``; autograd of :meth:`loss` by default.

        Differentiable with respect to ``pred``, ``target`` and the gates, so the outer
        training loop can back-propagate through the inner update.
        """

        import torch

        def total(p: Tensor) -> Tensor:
            return self.loss(p, target, gates).sum()

        return torch.func.grad(total)(pred)

    def diagnostics(self, pred: Tensor, target: Tensor, gates: Gates) -> dict[str, Tensor]:
        """How this bias treats these tokens, for health reports: name -> a 0-dim tensor (none by default)."""
        return {}


class SmoothSign(Params):
    """How sign(x) and |x| are evaluated (paper's stabilising surrogates, spec §2.2)."""

    smooth: Literal["none", "tanh", "sqrt"] = Field(
        "none",
        description="none: exact sign/|x|; tanh: sign(x)~tanh(a x); sqrt: |x|~sqrt(x^2+eps)",
    )
    sharpness: float = Field(10.0, gt=0, description="a in tanh(a x)")
    eps: float = Field(1e-6, gt=0, description="eps in sqrt(x^2+eps)")


def _abs_loss(x: Tensor, p: SmoothSign) -> Tensor:
    """Elementwise loss whose derivative is the chosen sign surrogate."""
    if p.smooth == "tanh":
        import torch.nn.functional as F

        a = p.sharpness
        # log(cosh(a x)) / a, written stably; softplus goes linear only where its gradient is 1 to
        # double precision (its default threshold 20 left the gradient 1 - tanh(a x) ~ 4e-9 off)
        return (F.softplus(2 * a * x, threshold=50) - a * x - math.log(2.0)) / a
    if p.smooth == "sqrt":
        return (x * x + p.eps).sqrt()
    return x.abs()


def _sign(x: Tensor, p: SmoothSign) -> Tensor:
    if p.smooth == "tanh":
        return (p.sharpness * x).tanh()
    if p.smooth == "sqrt":
        return x / (x * x + p.eps).sqrt()
    return x.sign()


def _tiny(x: Tensor) -> float:
    """The smallest positive normal number of ``x``'s dtype."""
    import torch

    return torch.finfo(x.dtype).tiny


REGISTRIES["bias"].bind(AttentionalBias)


@register_bias("dot", description="dot-product similarity -<M(k), v> (Hebbian)", shorthand="dot")
class DotProduct(AttentionalBias):
    state_independent = True

    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return -(pred * target).sum(-1)

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return -target.expand_as(pred)


@register_bias("l2", description="l2 regression 1/2||M(k) - v||^2 (delta rule)", shorthand="l2")
class L2(AttentionalBias):
    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return 0.5 * ((pred - target) ** 2).sum(-1)

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return pred - target


@register_bias("l1", params=SmoothSign, description="l1 regression ||M(k) - v||_1 (value-less memory)")
class L1(AttentionalBias):
    params: SmoothSign

    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return _abs_loss(pred - target, self.params).sum(-1)

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return _sign(pred - target, self.params)


class LpParams(Params):
    p: float = Field(3.0, ge=1, description="exponent p >= 1 of ||e||_p^p")
    smooth: Literal["none", "sqrt"] = Field("none", description="none: exact |e|; sqrt: |e|~sqrt(e^2+eps)")
    eps: float = Field(1e-6, gt=0, description="eps in sqrt(e^2+eps)")


@register_bias("lp", params=LpParams, description="lp regression ||M(k) - v||_p^p (Moneta)")
class Lp(AttentionalBias):
    params: LpParams

    def _magnitude(self, e: Tensor) -> Tensor:
        return (e * e + self.params.eps).sqrt() if self.params.smooth == "sqrt" else e.abs()

    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        return (self._magnitude(pred - target) ** self.params.p).sum(-1)

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        e = pred - target
        p = self.params.p
        if self.params.smooth == "sqrt":
            return p * e * (e * e + self.params.eps) ** (p / 2 - 1)
        return p * e.sign() * e.abs() ** (p - 1)


class HuberParams(SmoothSign):
    mode: Literal["coordinate", "norm", "token"] = Field(
        "coordinate",
        description="coordinate: clip each e_j; norm: Huber of ||e||_2; token: Yaad's per-token l2/l1 switch",
    )
    scale: Literal["rms", "l2"] = Field(
        "rms",
        description="norm and token modes: delta is compared with the error's RMS ||e||_2/sqrt(D_v) (both "
        "branches then have the same size at the switch) or with ||e||_2 itself",
    )


@register_bias(
    "huber",
    params=HuberParams,
    description="Huber loss with a per-token threshold gate delta (Yaad in 'token' mode)",
)
class Huber(AttentionalBias):
    """Reads the gate ``delta`` (``[..., 1]`` per head, or ``[..., D_v]`` for ``coordinate``).

    - coordinate: ``u_j = clip(e_j, -delta_j, delta_j)``;
    - norm: ``u = e`` if ``||e|| <= tau`` else ``tau e / ||e||``;
    - token (Yaad): ``u = e`` if ``||e|| <= tau`` else ``delta * sign(e)`` (the l1 branch
      uses the ``smooth`` surrogate).

    In ``norm`` and ``token`` modes delta must be per head, and the threshold on ``||e||_2`` is
    ``tau = delta * sqrt(D_v)`` (``scale: rms``: delta bounds the error's RMS, and at the switch
    both branches of the token mode have the norm ``tau``) or ``tau = delta`` (``scale: l2``).
    """

    params: HuberParams
    gates = (DELTA,)

    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        e, delta = pred - target, gates["delta"]
        mode = self.params.mode
        if mode == "coordinate":
            small = e.abs() <= delta
            return (0.5 * e * e).where(small, delta * (e.abs() - 0.5 * delta)).sum(-1)
        _check_per_head(delta, mode)
        norm = e.norm(dim=-1)
        delta = delta.squeeze(-1)
        tau = self._threshold(delta, e)
        if mode == "norm":
            return (0.5 * norm * norm).where(norm <= tau, tau * (norm - 0.5 * tau))
        l1 = _abs_loss(e, self.params).sum(-1)
        return (0.5 * norm * norm).where(norm <= tau, delta * l1)

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        e, delta = pred - target, gates["delta"]
        mode = self.params.mode
        if mode == "coordinate":
            return e.clamp(-delta, delta)
        _check_per_head(delta, mode)
        norm = e.norm(dim=-1, keepdim=True)
        tau = self._threshold(delta, e)
        small = norm <= tau
        if mode == "norm":
            return e.where(small, tau * e / norm.clamp_min(_tiny(e)))
        return e.where(small, delta * _sign(e, self.params))

    def diagnostics(self, pred: Tensor, target: Tensor, gates: Gates) -> dict[str, Tensor]:
        """``l2_share``: the share of tokens on the l2 branch (of coordinates not clipped, in
        coordinate mode); the rest take the l1 / normalised branch."""
        e, delta = pred - target, gates["delta"]
        if self.params.mode == "coordinate":
            small = e.abs() <= delta
        else:
            small = e.norm(dim=-1) <= self._threshold(delta.squeeze(-1), e)
        return {"l2_share": small.float().mean()}

    def _threshold(self, delta: Tensor, e: Tensor) -> Tensor:
        """``tau``: the bound on ``||e||_2`` that ``delta`` stands for."""
        return delta * math.sqrt(e.shape[-1]) if self.params.scale == "rms" else delta


def _check_per_head(delta: Tensor, mode: str) -> None:
    if delta.shape[-1] != 1:
        raise ValueError(
            f"huber mode {mode!r} compares ||e|| with delta, so the delta gate must be per head "
            f"([B, T, H]); got a channel-wise gate of width {delta.shape[-1]}"
        )


class RobustParams(Params):
    radius: float = Field(0.1, ge=0, description="Delta: the l2 radius of the worst-case value shift")
    eps: float = Field(1e-6, gt=0, description="eps in ||e|| ~ sqrt(||e||^2 + eps)")


@register_bias(
    "robust",
    params=RobustParams,
    description="robust to value shifts: max over ||dv||<=Delta of 1/2||M(k) - v - dv||^2",
)
class Robust(AttentionalBias):
    """Closed form ``1/2||e||^2 + Delta ||e|| + Delta^2/2``, signal ``e + Delta e/||e||``."""

    params: RobustParams

    def loss(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        e = pred - target
        sq = (e * e).sum(-1)
        radius = self.params.radius
        return 0.5 * sq + radius * (sq + self.params.eps).sqrt() + 0.5 * radius**2

    def error(self, pred: Tensor, target: Tensor, gates: Gates) -> Tensor:
        e = pred - target
        norm = ((e * e).sum(-1, keepdim=True) + self.params.eps).sqrt()
        return e + self.params.radius * e / norm


__all__ = ["AttentionalBias", "NoParams"]
