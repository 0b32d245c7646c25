"""Built-in retention gates, in the dual-accumulator form of the FTRL / Learning-Retaining view.

Every retention keeps a dual accumulator ``A`` with the memory's weight shapes, updated
linearly (``A_t = alpha_t * A_{t-1} + U_t``; the decay gate ``alpha`` is read only when
:attr:`Retention.uses_decay`), and reads the memory's weights through a mirror map
``W = psi(A)`` applied to each weight matrix ``[B, H, out, in]`` separately.

``psi`` is the identity for ``none`` and ``l2``; for the others it is applied at mini-batch
boundaries only (docs/semantics.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from .registry import REGISTRIES, NoParams, Params, register_retention

if TYPE_CHECKING:
    from torch import Tensor


class Retention:
    """Base class of retention gates."""

    uses_decay: ClassVar[bool] = True
    identity: ClassVar[bool] = False
    lr_range: ClassVar[float] = 1.0
    """The memory learning rate ``eta`` a model's lr gate can take: ``(0, lr_range)``."""
    free_weights: ClassVar[bool] = True
    """Whether the weights can take any sign and scale (so a fan-in initialised MLP memory, built for
    unit-RMS inputs, is what the memory is); False for maps onto a simplex or a box."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def project(self, accumulator: Tensor) -> Tensor:
        """Mirror map ``psi``: one weight's accumulator ``[B, H, out, in]`` -> its weights."""
        return accumulator

    def initial_accumulator(self, weights: Tensor) -> Tensor:
        """The accumulator a deep memory starts from, given weights ``[..., out, in]`` drawn from the
        usual ``N(0, 1/in)``: where the mirror map can reach them, the accumulator whose weights they
        are (``psi(A) = weights``), so the memory starts at that scale whatever the retention
        (docs/semantics.md, "Scales and starting values")."""
        return weights


REGISTRIES["retention"].bind(Retention)


@register_retention("none", description="no retention: the memory keeps everything", shorthand="none")
class NoRetention(Retention):
    params: NoParams
    uses_decay = False
    identity = True


@register_retention(
    "l2",
    description="l2 retention: decay alpha_t (per head or per key channel), W = A",
    shorthand="l2",
)
class L2Decay(Retention):
    params: NoParams
    identity = True


class ElasticNetParams(Params):
    threshold: float = Field(1e-3, ge=0, description="gamma of the soft threshold S_gamma")
    smooth: bool = Field(False, description="use the surrogate |z| atan(z/gamma) / (pi/2)")


@register_retention(
    "elastic_net",
    params=ElasticNetParams,
    description="elastic net (FTRL form): decay alpha_t, W = soft_threshold(A, gamma)",
    shorthand="en",
)
class ElasticNet(Retention):
    params: ElasticNetParams

    def initial_accumulator(self, weights: Tensor) -> Tensor:
        """``W + gamma sign(W)`` (exact for the hard threshold; the surrogate to first order in
        ``gamma``, which shifts ``|z| >> gamma`` by ``2 gamma / pi``)."""
        shift = self.params.threshold * (2 / math.pi if self.params.smooth else 1.0)
        return weights + shift * weights.sign()

    def project(self, accumulator: Tensor) -> Tensor:
        gamma = self.params.threshold
        if self.params.smooth:
            if gamma == 0:
                return accumulator
            return accumulator.abs() * (accumulator / gamma).atan() / (math.pi / 2)
        return accumulator.sign() * (accumulator.abs() - gamma).relu()


class LqParams(Params):
    q: float = Field(4.0, gt=1, description="norm exponent q > 1 (Moneta: 4)")
    link: Literal["printed", "pnorm"] = Field(
        "printed",
        description="printed: W = A/||A||_q^(q-2) as the paper prints it; "
        "pnorm: W = sign(A)|A|^(q-1)/||A||_q^(q-2), the textbook p-norm link",
    )
    eps: float = Field(1e-6, gt=0, description="floor of ||A||_q")


@register_retention(
    "lq",
    params=LqParams,
    description="lq memory stability (Moneta): decay alpha_t, W = A / ||A||_q^(q-2)",
    shorthand="lq",
)
class Lq(Retention):
    """The norm is taken over each weight matrix of each head (spec §10.1, our choice)."""

    params: LqParams

    def _norm(self, x: Tensor, q: float) -> Tensor:
        """``||x||_q`` of each matrix, floored at ``eps`` (``[..., 1, 1]``)."""
        # floor before the root: d(s^(1/q))/ds is infinite at s = 0 (NaN gradients for A = 0)
        return x.abs().pow(q).sum((-2, -1), keepdim=True).clamp_min(self.params.eps**q).pow(1 / q)

    def project(self, accumulator: Tensor) -> Tensor:
        q = self.params.q
        scale = self._norm(accumulator, q).pow(q - 2)
        if self.params.link == "pnorm":
            return accumulator.sign() * accumulator.abs().pow(q - 1) / scale
        return accumulator / scale

    def initial_accumulator(self, weights: Tensor) -> Tensor:
        """printed: ``psi`` is homogeneous of degree ``3 - q``, so ``A = ||W||_q^((q-2)/(3-q)) W``
        (for ``q = 3`` every ``psi(A)`` has unit norm: ``A = W`` reaches ``W / ||W||_3``);
        pnorm: the link of the dual exponent ``p = q / (q - 1)``, its inverse."""
        q = self.params.q
        if self.params.link == "pnorm":
            p = q / (q - 1)
            return weights.sign() * weights.abs().pow(p - 1) / self._norm(weights, p).pow(p - 2)
        if q == 3:
            return weights
        return weights * self._norm(weights, q).pow((q - 2) / (3 - q))


class KLParams(Params):
    axis: Literal["in", "out", "all"] = Field(
        "in",
        description="softmax slice: over each row's inputs, each column's outputs, or the whole matrix",
    )
    scale: float = Field(1.0, gt=0, description="c: the simplex sum (per slice)")
    init_spread: float = Field(
        4.0,
        gt=0,
        description="std of a deep memory's initial log-weights: peaked rows (near-uniform ones make the "
        "MLP's output nearly constant and its LayerNorm eps-dominated)",
    )


@register_retention(
    "kl",
    params=KLParams,
    description="KL retention (Memora): A = log-weights with decay alpha_t, W = c softmax(A)",
    shorthand="kl",
)
class KL(Retention):
    """``W_t = c softmax(alpha_t log W_{t-1} - eta_t g_t)`` equals ``c softmax(A_t)`` (shift-invariance).

    A step moves log-weights, so it changes weights relatively; ``eta`` lies in ``(0, 0.1)``
    (:attr:`lr_range`): at the identity retentions' ``(0, 1)`` the outer gradient explodes.
    """

    params: KLParams
    lr_range = 0.1
    free_weights = False

    def initial_accumulator(self, weights: Tensor) -> Tensor:
        """Log-weights of std ``init_spread``: ``weights * sqrt(in) * init_spread`` (softmax weights
        are positive, so no accumulator maps to ``N(0, 1/in)`` weights)."""
        return weights * weights.shape[-1] ** 0.5 * self.params.init_spread

    def project(self, accumulator: Tensor) -> Tensor:
        axis = self.params.axis
        if axis == "all":
            flat = accumulator.flatten(-2).softmax(-1)
            return self.params.scale * flat.view_as(accumulator)
        return self.params.scale * accumulator.softmax(-1 if axis == "in" else -2)


@register_retention(
    "bregman_sigmoid",
    description="Bregman divergence with logit mirror map: decay alpha_t, W = sigmoid(A) in (0, 1)",
    shorthand="bsig",
)
class BregmanSigmoid(Retention):
    params: NoParams
    free_weights = False

    def project(self, accumulator: Tensor) -> Tensor:
        return accumulator.sigmoid()


__all__ = ["Retention"]
