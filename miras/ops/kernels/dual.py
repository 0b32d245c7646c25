"""The chunked scan's dual-form read in Triton, forward and backward (docs/ops.md, chunked §3).

For ``x`` ``[B, H, r, in]`` (rows ``t < r`` of a chunk of ``n`` tokens) one linear map reads

    y_t = W_s (Gamma_t * x_t) + S_s (P_t * x_t) - sum_i left_i s[t, i],
    s[t, i] = sum_d C[t, i, d] right_i[d] x_t[d]

with the start weights ``W_s`` and momentum ``S_s`` ``[B, H, out, in]``, gradient factors ``left``
``[B, H, n, out]`` and ``right`` ``[B, H, n, in]``, and coefficients ``Gamma`` = decay, ``P`` =
carry ``[B, H, r, G]`` and ``C`` = mix ``[B, H, r, n, G]`` (``G`` 1 or ``in``; ``C`` is zero for
``i > t``, so the sum over all ``n`` tokens is the causal one, as in
:func:`miras.ops.chunked.dual_linear`). :func:`dual_linear_triton` has that function's contract;
:func:`scan` is the chunked scan reading through it.

Kernels (one program per ``(batch * head)`` and, where given, per block of output or input
channels, int64 offsets; the in/out widths are tiled with masks, ``r`` and ``n`` are one block each):

- forward: :func:`_scores_kernel` ``s`` ``[r, n]``, then :func:`_read_kernel` ``y`` per block of
  outputs;
- backward: :func:`_score_grad_kernel` ``ds = -dy left^T`` (and ``dC`` for ``G = 1``),
  :func:`_input_grad_kernel` ``dx``, ``dright``, the gates' and (``G = in``) ``dC`` per block of
  inputs, :func:`_weight_grad_kernel` ``dW``, ``dS``, ``dleft`` per block of outputs.

Everything is computed in fp32 (``tl.dot`` with ``input_precision="ieee"``) and cast back to the
input dtype. Kernels run on a GPU, or on the CPU when ``TRITON_INTERPRET=1`` was set before this
module was imported.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ...space.memories import Linear
from .. import chunked
from ..chunked import Coefficients, Factors, plan
from ..common import ScanProblem, State
from .tiles import INTERPRETED, block, load_tile, store_tile

MAX_TOKENS = 128
"""Longest chunk the kernels take: ``r`` and ``n`` are one block each (``[r, n]`` scores per program)."""
CHANNEL_BLOCK = 32
"""Tile of the in and out widths (64 spills registers on sm_90 in the backward kernels;
``benchmarks/compile_kernels.py`` reports registers and spills)."""


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _gate(ptr, rows, cols, n_rows, n_cols, CHANNEL: tl.constexpr):
    """A gate ``[r, G]`` at ``rows`` and input channels ``cols``: ``[BR, BD]`` (``G = in``) or ``[BR, 1]``."""
    # one return: after `if CHANNEL: return ...` the compiler still emits and type-checks the fall-through one
    if CHANNEL:
        gate = load_tile(ptr, rows, cols, n_rows, n_cols, n_cols)
    else:
        gate = tl.load(ptr + rows, mask=rows < n_rows, other=0.0).to(tl.float32)[:, None]
    return gate


@triton.jit
def _scores_kernel(
    x_ptr, right_ptr, mix_ptr, s_ptr, R, N, IN,
    CHANNEL: tl.constexpr, BR: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    """``s[t, i] = sum_d C[t, i, d] right[i, d] x[t, d]`` ``[R, N]``; grid ``(B * H,)``."""
    bh = tl.program_id(0).to(tl.int64)
    rows, toks, span = tl.arange(0, BR), tl.arange(0, BN), tl.arange(0, BD)
    x_ptr += bh * R * IN
    right_ptr += bh * N * IN
    s_ptr += bh * R * N
    if CHANNEL:
        mix_ptr += bh * R * N * IN
        for i in range(N):
            acc = tl.zeros([BR], dtype=tl.float32)
            for d0 in range(0, IN, BD):
                cols = d0 + span
                x = load_tile(x_ptr, rows, cols, R, IN, IN)
                c = load_tile(mix_ptr + i * IN, rows, cols, R, IN, N * IN)
                r = tl.load(right_ptr + i * IN + cols, mask=cols < IN, other=0.0).to(tl.float32)
                acc += tl.sum(c * x * r[None, :], axis=1)
            tl.store(s_ptr + rows * N + i, acc, mask=rows < R)
    else:
        acc = tl.zeros([BR, BN], dtype=tl.float32)
        for d0 in range(0, IN, BD):
            cols = d0 + span
            x = load_tile(x_ptr, rows, cols, R, IN, IN)
            r = load_tile(right_ptr, toks, cols, N, IN, IN)
            acc += tl.dot(x, tl.trans(r), input_precision="ieee")
        c = load_tile(mix_ptr + bh * R * N, rows, toks, R, N, N)
        store_tile(s_ptr, acc * c, rows, toks, R, N, N)


@triton.jit
def _read_kernel(
    x_ptr, w_ptr, mom_ptr, decay_ptr, carry_ptr, left_ptr, s_ptr, y_ptr, R, N, IN, OUT,
    CHANNEL: tl.constexpr, HAS_MOM: tl.constexpr,
    BR: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BO: tl.constexpr,
):  # fmt: skip
    """``y = (x * Gamma) W^T + (x * P) S^T - s left`` for one block of outputs; grid ``(B * H, out blocks)``."""
    bh, ob = tl.program_id(0).to(tl.int64), tl.program_id(1)
    rows, toks, span = tl.arange(0, BR), tl.arange(0, BN), tl.arange(0, BD)
    outs = ob * BO + tl.arange(0, BO)
    g_width = IN if CHANNEL else 1
    x_ptr += bh * R * IN
    decay_ptr += bh * R * g_width
    carry_ptr += bh * R * g_width
    w_ptr += bh * OUT * IN
    mom_ptr += bh * OUT * IN
    acc = tl.zeros([BR, BO], dtype=tl.float32)
    for d0 in range(0, IN, BD):
        cols = d0 + span
        x = load_tile(x_ptr, rows, cols, R, IN, IN)
        w = load_tile(w_ptr, outs, cols, OUT, IN, IN)
        acc += tl.dot(x * _gate(decay_ptr, rows, cols, R, IN, CHANNEL), tl.trans(w), input_precision="ieee")
        if HAS_MOM:
            m = load_tile(mom_ptr, outs, cols, OUT, IN, IN)
            acc += tl.dot(x * _gate(carry_ptr, rows, cols, R, IN, CHANNEL), tl.trans(m), input_precision="ieee")
    s = load_tile(s_ptr + bh * R * N, rows, toks, R, N, N)
    left = load_tile(left_ptr + bh * N * OUT, toks, outs, N, OUT, OUT)
    acc -= tl.dot(s, left, input_precision="ieee")
    store_tile(y_ptr + bh * R * OUT, acc, rows, outs, R, OUT, OUT)


@triton.jit
def _score_grad_kernel(
    dy_ptr, left_ptr, x_ptr, right_ptr, mix_ptr, ds_ptr, dmix_ptr, R, N, IN, OUT,
    CHANNEL: tl.constexpr, BR: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BO: tl.constexpr,
):  # fmt: skip
    """``ds = -dy left^T`` ``[R, N]``; for ``G = 1`` stores ``ds * C`` and ``dC = ds * (x right^T)``
    instead (``G = in``: ``ds`` alone, ``dC`` is per channel). Grid ``(B * H,)``."""
    bh = tl.program_id(0).to(tl.int64)
    rows, toks, span, outspan = tl.arange(0, BR), tl.arange(0, BN), tl.arange(0, BD), tl.arange(0, BO)
    ds = tl.zeros([BR, BN], dtype=tl.float32)
    for o0 in range(0, OUT, BO):
        outs = o0 + outspan
        dy = load_tile(dy_ptr + bh * R * OUT, rows, outs, R, OUT, OUT)
        left = load_tile(left_ptr + bh * N * OUT, toks, outs, N, OUT, OUT)
        ds -= tl.dot(dy, tl.trans(left), input_precision="ieee")
    if CHANNEL:
        store_tile(ds_ptr + bh * R * N, ds, rows, toks, R, N, N)
    else:
        xr = tl.zeros([BR, BN], dtype=tl.float32)
        for d0 in range(0, IN, BD):
            cols = d0 + span
            x = load_tile(x_ptr + bh * R * IN, rows, cols, R, IN, IN)
            r = load_tile(right_ptr + bh * N * IN, toks, cols, N, IN, IN)
            xr += tl.dot(x, tl.trans(r), input_precision="ieee")
        c = load_tile(mix_ptr + bh * R * N, rows, toks, R, N, N)
        store_tile(ds_ptr + bh * R * N, ds * c, rows, toks, R, N, N)
        store_tile(dmix_ptr + bh * R * N, ds * xr, rows, toks, R, N, N)


@triton.jit
def _input_grad_kernel(
    dy_ptr, x_ptr, w_ptr, mom_ptr, decay_ptr, carry_ptr, right_ptr, mix_ptr, ds_ptr,
    dx_ptr, ddecay_ptr, dcarry_ptr, dright_ptr, dmix_ptr, R, N, IN, OUT,
    CHANNEL: tl.constexpr, HAS_MOM: tl.constexpr,
    BR: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BO: tl.constexpr,
):  # fmt: skip
    """For one block of input channels: ``dx``, ``dright``, ``du * x`` and ``dv * x`` ``[R, IN]``
    (``du = dy W``, ``dv = dy S``: the gates' gradients before the sum over channels for ``G = 1``)
    and for ``G = in`` ``dC``. ``ds_ptr`` holds :func:`_score_grad_kernel`'s output.
    Grid ``(B * H, in blocks)``."""
    bh, ib = tl.program_id(0).to(tl.int64), tl.program_id(1)
    rows, toks, outspan = tl.arange(0, BR), tl.arange(0, BN), tl.arange(0, BO)
    cols = ib * BD + tl.arange(0, BD)
    g_width = IN if CHANNEL else 1
    dy_ptr += bh * R * OUT
    du = tl.zeros([BR, BD], dtype=tl.float32)
    dv = tl.zeros([BR, BD], dtype=tl.float32)
    for o0 in range(0, OUT, BO):
        outs = o0 + outspan
        dy = load_tile(dy_ptr, rows, outs, R, OUT, OUT)
        du += tl.dot(dy, load_tile(w_ptr + bh * OUT * IN, outs, cols, OUT, IN, IN), input_precision="ieee")
        if HAS_MOM:
            dv += tl.dot(dy, load_tile(mom_ptr + bh * OUT * IN, outs, cols, OUT, IN, IN), input_precision="ieee")
    x = load_tile(x_ptr + bh * R * IN, rows, cols, R, IN, IN)
    dx = du * _gate(decay_ptr + bh * R * g_width, rows, cols, R, IN, CHANNEL)
    store_tile(ddecay_ptr + bh * R * IN, du * x, rows, cols, R, IN, IN)
    if HAS_MOM:
        dx += dv * _gate(carry_ptr + bh * R * g_width, rows, cols, R, IN, CHANNEL)
        store_tile(dcarry_ptr + bh * R * IN, dv * x, rows, cols, R, IN, IN)
    right_ptr += bh * N * IN
    dright_ptr += bh * N * IN
    if CHANNEL:
        mix_ptr += bh * R * N * IN
        dmix_ptr += bh * R * N * IN
        for i in range(N):
            ds = tl.load(ds_ptr + bh * R * N + rows * N + i, mask=rows < R, other=0.0)
            r = tl.load(right_ptr + i * IN + cols, mask=cols < IN, other=0.0).to(tl.float32)
            weighted = ds[:, None] * load_tile(mix_ptr + i * IN, rows, cols, R, IN, N * IN)
            dx += weighted * r[None, :]
            tl.store(dright_ptr + i * IN + cols, tl.sum(weighted * x, axis=0), mask=cols < IN)
            store_tile(dmix_ptr + i * IN, ds[:, None] * r[None, :] * x, rows, cols, R, IN, N * IN)
    else:
        dsc = load_tile(ds_ptr + bh * R * N, rows, toks, R, N, N)
        dx += tl.dot(dsc, load_tile(right_ptr, toks, cols, N, IN, IN), input_precision="ieee")
        store_tile(dright_ptr, tl.dot(tl.trans(dsc), x, input_precision="ieee"), toks, cols, N, IN, IN)
    store_tile(dx_ptr + bh * R * IN, dx, rows, cols, R, IN, IN)


@triton.jit
def _weight_grad_kernel(
    dy_ptr, x_ptr, decay_ptr, carry_ptr, s_ptr, dw_ptr, dmom_ptr, dleft_ptr, R, N, IN, OUT,
    CHANNEL: tl.constexpr, HAS_MOM: tl.constexpr,
    BR: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BO: tl.constexpr,
):  # fmt: skip
    """For one block of outputs: ``dleft = -s^T dy``, ``dW = dy^T (x * Gamma)``, ``dS = dy^T (x * P)``.
    Grid ``(B * H, out blocks)``."""
    bh, ob = tl.program_id(0).to(tl.int64), tl.program_id(1)
    rows, toks, span = tl.arange(0, BR), tl.arange(0, BN), tl.arange(0, BD)
    outs = ob * BO + tl.arange(0, BO)
    g_width = IN if CHANNEL else 1
    dy = load_tile(dy_ptr + bh * R * OUT, rows, outs, R, OUT, OUT)
    dyt = tl.trans(dy)
    s = load_tile(s_ptr + bh * R * N, rows, toks, R, N, N)
    dleft = -tl.dot(tl.trans(s), dy, input_precision="ieee")
    store_tile(dleft_ptr + bh * N * OUT, dleft, toks, outs, N, OUT, OUT)
    for d0 in range(0, IN, BD):
        cols = d0 + span
        x = load_tile(x_ptr + bh * R * IN, rows, cols, R, IN, IN)
        decayed = x * _gate(decay_ptr + bh * R * g_width, rows, cols, R, IN, CHANNEL)
        store_tile(dw_ptr + bh * OUT * IN, tl.dot(dyt, decayed, input_precision="ieee"), outs, cols, OUT, IN, IN)
        if HAS_MOM:
            carried = x * _gate(carry_ptr + bh * R * g_width, rows, cols, R, IN, CHANNEL)
            store_tile(dmom_ptr + bh * OUT * IN, tl.dot(dyt, carried, input_precision="ieee"), outs, cols, OUT, IN, IN)


# ----------------------------------------------------------------------------- autograd


def _num_warps(rows_block: int, tokens_block: int) -> int:
    """Warps per program: 4 for blocks of 16 rows and tokens, 8 for larger ones (with 4, the
    backward kernels spill registers on sm_90 from 32 rows or tokens on)."""
    return 4 if max(rows_block, tokens_block) <= 16 else 8


def _input_block(meta: dict[str, int | bool]) -> int:
    """:func:`_input_grad_kernel`'s tile of input channels: ``BD``, halved (to at least 16) once the
    block reaches 64 rows or tokens, where it holds ``[r, n]`` scores beside its ``[r, BD]``
    gradients (with 32 it spills registers on sm_90)."""
    wide = max(meta["BR"], meta["BN"]) >= 64
    return max(16, meta["BD"] // 2) if wide else meta["BD"]


def _flat(t: Tensor | None, like: Tensor) -> Tensor:
    """``t`` ``[B, H, ...]`` contiguous with ``[B * H, ...]`` leading dims (``like`` when ``t`` is None:
    a placeholder pointer the kernels never read)."""
    return like if t is None else t.contiguous().flatten(0, 1)


class _DualRead(torch.autograd.Function):
    """The dual-form read of one linear map; inputs as :func:`dual_linear_triton` documents."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        start: Tensor,
        mom: Tensor | None,
        left: Tensor,
        right: Tensor,
        decay: Tensor,
        mix: Tensor,
        carry: Tensor | None,
    ) -> Tensor:
        batch, heads, rows, width_in = x.shape
        n, width_out = left.shape[2:]
        inputs = (x, start, mom, left, right, decay, mix, carry)
        flat = [_flat(t, x) for t in inputs]
        fx, fstart, fmom, fleft, fright, fdecay, fmix, fcarry = flat
        scores = x.new_empty(batch * heads, rows, n, dtype=torch.float32)
        y = x.new_empty(batch * heads, rows, width_out, dtype=torch.float32)
        meta = {
            "CHANNEL": decay.shape[-1] != 1,
            "BR": block(rows),
            "BN": block(n),
            "BD": block(width_in, CHANNEL_BLOCK),
        }
        meta["num_warps"] = _num_warps(meta["BR"], meta["BN"])
        sizes = (rows, n, width_in)
        _scores_kernel[(batch * heads,)](fx, fright, fmix, scores, *sizes, **meta)
        meta |= {"HAS_MOM": carry is not None, "BO": block(width_out, CHANNEL_BLOCK)}
        grid = (batch * heads, triton.cdiv(width_out, meta["BO"]))
        _read_kernel[grid](fx, fstart, fmom, fdecay, fcarry, fleft, scores, y, *sizes, width_out, **meta)
        ctx.save_for_backward(*flat, scores)
        ctx.meta, ctx.sizes = meta, (*sizes, width_out)
        ctx.shapes = [None if t is None else t.shape for t in inputs]
        ctx.dtypes = [None if t is None else t.dtype for t in inputs]
        return y.view(batch, heads, rows, width_out).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:
        fx, fstart, fmom, fleft, fright, fdecay, fmix, fcarry, scores = ctx.saved_tensors
        meta, sizes = ctx.meta, ctx.sizes
        rows, n, width_in, width_out = sizes
        bh = fx.shape[0]
        fdy = dy.contiguous().flatten(0, 1)

        def buffer(*shape: int) -> Tensor:
            return fx.new_empty(bh, *shape, dtype=torch.float32)

        ds, dmix, dright, dleft = buffer(rows, n), buffer(*fmix.shape[1:]), buffer(n, width_in), buffer(n, width_out)
        dx, ddecay, dcarry = buffer(rows, width_in), buffer(rows, width_in), buffer(rows, width_in)
        dstart, dmom = buffer(width_out, width_in), buffer(width_out, width_in)
        score_meta = {k: v for k, v in meta.items() if k != "HAS_MOM"}
        _score_grad_kernel[(bh,)](fdy, fleft, fx, fright, fmix, ds, dmix, *sizes, **score_meta)
        in_meta = meta | {"BD": _input_block(meta)}
        grid = (bh, triton.cdiv(width_in, in_meta["BD"]))
        _input_grad_kernel[grid](
            fdy, fx, fstart, fmom, fdecay, fcarry, fright, fmix, ds, dx, ddecay, dcarry, dright, dmix, *sizes, **in_meta
        )
        grid = (bh, triton.cdiv(width_out, meta["BO"]))
        _weight_grad_kernel[grid](fdy, fx, fdecay, fcarry, scores, dstart, dmom, dleft, *sizes, **meta)
        if not meta["CHANNEL"]:
            ddecay, dcarry = ddecay.sum(-1, keepdim=True), dcarry.sum(-1, keepdim=True)
        grads = (dx, dstart, dmom, dleft, dright, ddecay, dmix, dcarry)
        return tuple(
            None if shape is None else g.view(shape).to(dtype)
            for g, shape, dtype in zip(grads, ctx.shapes, ctx.dtypes, strict=True)
        )


def dual_linear_triton(start: State, mom: State, factors: Factors, coef: Coefficients, rows: int) -> Linear:
    """:func:`miras.ops.chunked.dual_linear` in Triton: ``linear(name, x)`` applying token ``t``'s
    weights (``t < rows``) to ``x`` ``[B, H, rows, in]``, differentiable wrt every input (once)."""
    decay, mix = coef.decay[:, :, :rows], coef.mix[:, :, :rows]
    carry = None if coef.carry is None else coef.carry[:, :, :rows]

    def linear(name: str, x: Tensor) -> Tensor:
        left, right = factors[name]
        momentum = None if carry is None else mom[name]
        return _DualRead.apply(x, start[name], momentum, left, right, decay, mix, carry)

    return linear


# ----------------------------------------------------------------------------- scan


def dual_unsupported(problem: ScanProblem, chunk_size: int | None = None) -> str | None:
    """Why :func:`scan` cannot run ``problem``, or ``None``. It runs whatever the chunked scan
    does (any memory whose weights are all read through ``linear``) on a GPU, or on the CPU under
    ``TRITON_INTERPRET=1``, in fp32 arithmetic, with chunks of at most :data:`MAX_TOKENS` tokens."""
    k = problem.k
    if k.dtype == torch.float64:
        return "the Triton dual read computes in fp32; fp64 inputs would lose precision (use impl 'chunked')"
    if k.device.type != "cuda" and not INTERPRETED:
        return f"tensors are on {k.device.type}: the Triton kernels need a GPU (or TRITON_INTERPRET=1 at import)"
    longest = max(e - s for s, e in plan(problem, chunk_size).bounds)
    if longest > MAX_TOKENS:
        return f"chunks of {longest} tokens: the Triton dual read takes at most {MAX_TOKENS}"
    return None


def scan(
    p: ScanProblem, *, initial_state: State | None, output_final_state: bool, chunk_size: int | None
) -> tuple[Tensor, State | None]:
    """:func:`miras.ops.chunked.scan` reading through :func:`dual_linear_triton` (the MLP memories'
    hot path: every token read at its own weights), on a prepared problem that
    :func:`dual_unsupported` accepts. Same arguments and outputs."""
    return chunked.scan(
        p,
        initial_state=initial_state,
        output_final_state=output_final_state,
        chunk_size=chunk_size,
        dual=dual_linear_triton,
    )


__all__ = ["MAX_TOKENS", "dual_linear_triton", "dual_unsupported", "scan"]
