"""Gradient factors of the built-in memories in closed form, with a hand-written backward.

For the linear memory and the k-layer MLP (GELU or SiLU, optional LayerNorm without affine and
residual), :func:`closed_form_factors` computes what :func:`miras.ops.chunked.gradient_factors`
gets from ``torch.func.vjp`` of the memory: for ``n`` tokens differentiated at weights ``W_l``
``[B, H, out_l, in_l]``,

- forward: ``z_l = (s * h_{l-1}) W_l^T`` (``h_0 = k``; ``s`` the ``grad_at: decayed`` scale, or
  1), ``h_l = act(z_l)`` below the top, ``pred = k + LN(z_L)`` (or without the residual or the
  LayerNorm);
- error: ``u = fold * lr * bias.error(pred, v, gates)``;
- backprop: ``left_L = J_LN(z_L) u``, ``left_l = s * (left_{l+1} W_{l+1}) * act'(z_l)``, and
  ``right_l = h_{l-1}``.

The training loss differentiates the factors once more (their dependence on ``k``, ``v``, the
gates and the weights). Autograd would do that by differentiating the vjp's graph a second time;
:class:`ClosedFormFactors` writes that backward out (the activations' second derivatives and
LayerNorm's in closed form, :func:`layer_norm_hessian`), and runs autograd only on the bias's
closed-form error (elementwise on ``[B, H, n, D_v]``). docs/ops.md §1 gives the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..space import Components
from ..space.biases import AttentionalBias
from ..space.memories import LinearMemory, MLPMemory

Gates = dict[str, Tensor]


@dataclass(frozen=True)
class Structure:
    """What the closed form needs of a memory: its weight names (bottom to top) and layers."""

    names: tuple[str, ...]
    activation: str | None
    """``gelu`` or ``silu`` between layers (``None`` for one layer)."""
    layernorm: bool
    ln_eps: float
    residual: bool


def structure(c: Components) -> Structure | None:
    """The built-in memory's :class:`Structure`, or ``None`` for a plugin (or a subclass of a
    built-in, which may change ``apply``): those keep the autograd path."""
    memory = c.memory
    if type(memory) is LinearMemory:
        return Structure(("W",), None, False, 0.0, False)
    if type(memory) is MLPMemory:
        p = memory.params
        names = tuple(f"W{i + 1}" for i in range(p.depth))
        return Structure(names, p.activation if p.depth > 1 else None, p.layernorm, p.ln_eps, p.residual)
    return None


def _activation(kind: str, z: Tensor) -> tuple[Tensor, Tensor]:
    """``act(z)`` and ``act'(z)`` (exact GELU, as ``F.gelu``; SiLU)."""
    if kind == "gelu":
        cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
        return z * cdf, cdf + z * _normal_pdf(z)
    s = torch.sigmoid(z)
    return z * s, s * (1 + z * (1 - s))


def _curvature(kind: str, z: Tensor) -> Tensor:
    """``act''(z)``: ``pdf(z) (2 - z^2)`` for GELU, ``s (1 - s) (2 + z (1 - 2 s))`` for SiLU."""
    if kind == "gelu":
        return _normal_pdf(z) * (2 - z * z)
    s = torch.sigmoid(z)
    return s * (1 - s) * (2 + z * (1 - 2 * s))


def _normal_pdf(z: Tensor) -> Tensor:
    return torch.exp(-0.5 * z * z) * (1 / math.sqrt(2 * math.pi))


def _layer_norm(z: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``x_hat = (z - mean) * rstd`` and ``rstd = 1 / sqrt(var + eps)`` (``[..., 1]``) over the last dim."""
    centred = z - z.mean(-1, keepdim=True)
    rstd = torch.rsqrt((centred * centred).mean(-1, keepdim=True) + eps)
    return centred * rstd, rstd


def layer_norm_jvp(x_hat: Tensor, rstd: Tensor, a: Tensor) -> Tensor:
    """``J a`` for LayerNorm's Jacobian ``J = rstd (I - 11^T/d - x_hat x_hat^T/d)`` (symmetric)."""
    return rstd * (a - a.mean(-1, keepdim=True) - x_hat * (x_hat * a).mean(-1, keepdim=True))


def layer_norm_hessian(x_hat: Tensor, rstd: Tensor, u: Tensor, ju: Tensor, a: Tensor, ja: Tensor) -> Tensor:
    """``d/dz <a, J(z) u>``: ``-(rstd/d) [x_hat <a, Ju> + Ja <x_hat, u> + Ju <x_hat, a>]``, given
    ``ju = J u`` and ``ja = J a`` (every tensor ``[..., d]``, ``rstd`` ``[..., 1]``)."""
    d = x_hat.shape[-1]
    return -(rstd / d) * (x_hat * _dot(a, ju) + ja * _dot(x_hat, u) + ju * _dot(x_hat, a))


def _dot(x: Tensor, y: Tensor) -> Tensor:
    """``<x, y>`` over the last dim, kept as ``[..., 1]``."""
    return (x * y).sum(-1, keepdim=True)


def _reduce(x: Tensor, like: Tensor) -> Tensor:
    """``x`` ``[..., D]`` summed to a gate's width (``like`` ``[..., 1]`` per head, or ``[..., D]``)."""
    return x if like.shape[-1] == x.shape[-1] else x.sum(-1, keepdim=True)


@dataclass
class _Forward:
    """Every intermediate of one closed-form pass (``[B, H, n, .]``)."""

    rights: list[Tensor]
    """``h_{l-1}``: each layer's input (its gradient's right factor)."""
    scaled: list[Tensor]
    """``s * h_{l-1}``: what the layer multiplies."""
    lefts: list[Tensor]
    zs: list[Tensor]
    slopes: list[Tensor]
    """``act'(z_l)`` below the top."""
    back: list[Tensor]
    """``m_l = left_{l+1} W_{l+1}`` below the top (before the scale and the slope)."""
    x_hat: Tensor | None
    rstd: Tensor | None
    pred: Tensor
    error: Tensor
    u: Tensor


def _forward(
    s: Structure,
    bias: AttentionalBias,
    weights: list[Tensor],
    scale: Tensor | None,
    k: Tensor,
    v: Tensor,
    lr: Tensor,
    gates: Gates,
    fold: int,
) -> _Forward:
    depth = len(weights)
    rights, scaled, zs, slopes = [], [], [], []
    h = k
    for layer, w in enumerate(weights):
        r = h if scale is None else h * scale
        z = r @ w.mT
        rights.append(h)
        scaled.append(r)
        zs.append(z)
        if layer < depth - 1:
            assert s.activation is not None
            h, slope = _activation(s.activation, z)
            slopes.append(slope)
    x_hat = rstd = None
    y = zs[-1]
    if s.layernorm:
        x_hat, rstd = _layer_norm(y, s.ln_eps)
        y = x_hat
    pred = k + y if s.residual else y
    error = bias.error(pred, v, gates)
    u = fold * lr * error
    left = u if x_hat is None else layer_norm_jvp(x_hat, rstd, u)
    lefts, back = [left], []
    for layer in range(depth - 2, -1, -1):
        m = left @ weights[layer + 1]
        g = m if scale is None else m * scale
        left = g * slopes[layer]
        back.insert(0, m)
        lefts.insert(0, left)
    return _Forward(rights, scaled, lefts, zs, slopes, back, x_hat, rstd, pred, error, u)


class ClosedFormFactors(torch.autograd.Function):
    """``(k, v, lr, scale, *gate values, *weights) -> (*lefts, *rights, pred)`` with the backward
    written out; ``pred`` (for :mod:`miras.ops.probe`) is not differentiable."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        s: Structure,
        bias: AttentionalBias,
        gate_names: tuple[str, ...],
        fold: int,
        k: Tensor,
        v: Tensor,
        lr: Tensor,
        scale: Tensor | None,
        *rest: Tensor,
    ) -> tuple[Tensor, ...]:
        gate_values, weights = list(rest[: len(gate_names)]), list(rest[len(gate_names) :])
        gates = dict(zip(gate_names, gate_values, strict=True))
        f = _forward(s, bias, weights, scale, k, v, lr, gates, fold)
        ctx.structure, ctx.bias, ctx.gate_names, ctx.fold = s, bias, gate_names, fold
        ctx.forward_pass = f
        ctx.save_for_backward(v, lr, scale, *gate_values, *weights)
        ctx.mark_non_differentiable(f.pred)
        return (*f.lefts, *f.rights, f.pred)

    @staticmethod
    @once_differentiable
    def backward(ctx: torch.autograd.function.FunctionCtx, *grads: Tensor) -> tuple[Tensor | None, ...]:
        s, f = ctx.structure, ctx.forward_pass
        saved = ctx.saved_tensors
        v, lr, scale = saved[:3]
        gate_values = list(saved[3 : 3 + len(ctx.gate_names)])
        weights = list(saved[3 + len(ctx.gate_names) :])
        depth = len(weights)
        d_lefts, d_rights = grads[:depth], grads[depth : 2 * depth]
        # each weight's gradient is one matmul over the stacked token factors of its two uses
        pairs: list[list[tuple[Tensor, Tensor]]] = [[] for _ in weights]
        d_z: list[Tensor | None] = [None] * depth
        d_scale: Tensor | None = None

        def plus(total: Tensor | None, term: Tensor) -> Tensor:
            return term if total is None else total + term

        # reverse of the backprop loop, bottom to top: left_l = (s * m_l) * act'(z_l), m_l = left_{l+1} W_{l+1}
        d_left = d_lefts[0]
        for layer in range(depth - 1):
            m = f.back[layer]
            g = m if scale is None else m * scale
            d_z[layer] = d_left * g * _curvature(s.activation, f.zs[layer])
            d_g = d_left * f.slopes[layer]
            d_m = d_g if scale is None else d_g * scale
            if scale is not None:
                d_scale = plus(d_scale, _reduce(d_g * m, scale))
            pairs[layer + 1].append((f.lefts[layer + 1], d_m))
            d_left = d_lefts[layer + 1] + d_m @ weights[layer + 1].mT

        # left_L = J(z_L) u, u = fold * lr * error(pred, v, gates)
        if f.x_hat is not None:
            d_u = layer_norm_jvp(f.x_hat, f.rstd, d_left)
            d_z[-1] = plus(d_z[-1], layer_norm_hessian(f.x_hat, f.rstd, f.u, f.lefts[-1], d_left, d_u))
        else:
            d_u = d_left
        d_lr = ctx.fold * _reduce(d_u * f.error, lr)
        d_pred, d_v, d_gates = _error_vjp(ctx.bias, f.pred, v, gate_values, ctx.gate_names, ctx.fold * lr * d_u)

        # pred = k + LN(z_L), then the forward chain back to k
        d_k = d_pred if s.residual else None
        d_z[-1] = plus(d_z[-1], d_pred if f.x_hat is None else layer_norm_jvp(f.x_hat, f.rstd, d_pred))
        for layer in range(depth - 1, -1, -1):
            d_r = d_z[layer] @ weights[layer]
            pairs[layer].append((d_z[layer], f.scaled[layer]))
            if scale is None:
                d_h = d_rights[layer] + d_r
            else:
                d_scale = plus(d_scale, _reduce(d_r * f.rights[layer], scale))
                d_h = d_rights[layer] + d_r * scale
            if layer == 0:
                d_k = plus(d_k, d_h)
            else:
                d_z[layer - 1] = plus(d_z[layer - 1], d_h * f.slopes[layer - 1])
        d_weights = [_stack(a for a, _ in p).mT @ _stack(b for _, b in p) for p in pairs]
        return (None, None, None, None, d_k, d_v, d_lr, d_scale, *d_gates, *d_weights)


def _stack(factors: Iterable[Tensor]) -> Tensor:
    """Token factors ``[B, H, n_i, d]`` stacked along the tokens (one matmul for their sum of products)."""
    parts = list(factors)
    return parts[0] if len(parts) == 1 else torch.cat(parts, -2)


def _error_vjp(
    bias: AttentionalBias, pred: Tensor, v: Tensor, gate_values: list[Tensor], names: tuple[str, ...], d_error: Tensor
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Cotangents of ``pred``, ``v`` and the bias's gates from the error's cotangent ``d_error``:
    the pullback of the bias's closed-form error (first order, elementwise on ``[B, H, n, D_v]``;
    ``torch.func.vjp``, which dynamo traces, where ``torch.autograd.grad`` would break the graph)."""

    def error(p: Tensor, t: Tensor, *g: Tensor) -> Tensor:
        return bias.error(p, t, dict(zip(names, g, strict=True)))

    _, pullback = torch.func.vjp(error, pred, v, *gate_values)
    grads = pullback(d_error)
    return grads[0], grads[1], list(grads[2:])


def closed_form_factors(
    c: Components,
    s: Structure,
    weights: dict[str, Tensor],
    scale: Tensor | None,
    k: Tensor,
    v: Tensor,
    gates: Gates,
    fold: int,
    graph: bool,
) -> tuple[dict[str, tuple[Tensor, Tensor]], Tensor]:
    """The factors ``name -> (left, right)`` and the predictions ``[B, H, n, D_v]`` of the built-in
    memory ``s``; arguments as :func:`miras.ops.chunked.gradient_factors`. With ``graph`` the
    factors carry :class:`ClosedFormFactors`'s backward; without it, no graph at all."""
    names = tuple(spec.name for spec in c.bias.gates)
    bias_gates = {name: gates[name] for name in names}
    ordered = [weights[name] for name in s.names]
    if not graph:
        with torch.no_grad():
            f = _forward(s, c.bias, ordered, scale, k, v, gates["lr"], bias_gates, fold)
        return dict(zip(s.names, zip(f.lefts, f.rights, strict=True), strict=True)), f.pred
    out = ClosedFormFactors.apply(s, c.bias, names, fold, k, v, gates["lr"], scale, *bias_gates.values(), *ordered)
    depth = len(ordered)
    lefts, rights, pred = out[:depth], out[depth : 2 * depth], out[-1]
    return dict(zip(s.names, zip(lefts, rights, strict=True), strict=True)), pred


__all__ = ["ClosedFormFactors", "Structure", "closed_form_factors", "layer_norm_hessian", "layer_norm_jvp", "structure"]
