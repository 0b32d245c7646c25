"""The chunked scan of a linear memory in Triton, forward and backward (docs/ops.md, chunked).

For the linear memory ``W`` ``[D_v, D_k]`` with an identity mirror map (retention ``none`` or
``l2``), a chunk of ``n`` tokens starting at ``A_s = W_s`` (and momentum ``S_s``) computes

    pred_i = W_s (Gamma_i * k_i)  (grad_at: decayed)   or   W_s k_i  (previous)
    E_i    = lr_i * error(pred_i, v_i, gates)           (lr already implicit- and fold-adjusted)
    o_t    = W_s (Gamma_t * q_t) + S_s (P_t * q_t) - sum_{i<=t} s[t, i] E_i,
    s[t, i] = sum_d q_t[d] C[t, i, d] k_i[d]
    A_e    = Gamma_L * A_s + P_L * S_s - sum_i C[L, i] * (E_i k_i^T)
    S_e    = M_L * S_s - sum_i Dmu[L, i] * (E_i k_i^T)

(``L`` the chunk's last token; coefficients act on the input dimension ``D_k``), exactly as
:func:`miras.ops.chunked.scan` does for this memory. The coefficients
(:class:`miras.ops.chunked.Coefficients`) are computed in torch and passed in, so autograd
back-propagates through their products; the kernels return gradients with respect to them.

Kernels: one program per ``(batch * head, value block)`` holds its ``BV`` columns of the
transposed state ``X = W^T`` (and ``Y = S^T``) ``[D_k, BV]`` in fp32 and loops over the chunks.
Every column of the state evolves on its own for an error signal computed coordinate by
coordinate; the row-norm biases (Huber ``norm``/``token``, robust) need whole rows, so they take
one block ``BV >= D_v`` (:func:`value_block`). The forward stores every chunk's start state; the
backward runs the chunks in reverse, carrying ``dX``, ``dY``, and writes the gradients that sum
over the value columns (``dq``, ``dk``, the coefficients') once per value block, summed in torch.
A chunk is one block of ``BT`` rows, ``D_k`` one block (padded to a power of two, masked).
Everything is computed in fp32 (``tl.dot`` with ``input_precision="ieee"``) and cast back to the
input dtype. Kernels run on a GPU, or on the CPU when ``TRITON_INTERPRET=1`` was set before this
module was imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from ...space.algorithms import GD, ImplicitGD, Momentum
from ...space.biases import L1, L2, AttentionalBias, DotProduct, Huber, Lp, Robust
from ...space.memories import LinearMemory
from ..chunked import ChunkPlan, coefficients, plan
from ..common import ScanProblem, State, final, implicit_lr, initial
from .tiles import INTERPRETED, block, load_tile, store_tile

MAX_WIDTH = 128
"""Widest ``D_k`` and ``D_v`` (one block each)."""
MAX_CHUNK = 128
"""Longest chunk (one block of rows; ``[n, n]`` scores per program)."""
VALUE_BLOCK = 32
"""Widest block of value columns a program holds for a coordinate-wise error signal."""
STATE_FREE_CHUNK = 16
"""Default chunk of a state-free scan (where the chunk size changes nothing but speed): 64-token
chunks spill registers on sm_90 (ptxas), 16-token ones hardly do."""

# error signals (``BIAS``) and sign surrogates (``SMOOTH``) the kernels know
DOT, SQUARED, ABSOLUTE, POWER, HUBER_COORDINATE, HUBER_NORM, HUBER_TOKEN, ROBUST = range(8)
SMOOTHING = {"none": 0, "tanh": 1, "sqrt": 2}
HUBER_MODES = {"coordinate": HUBER_COORDINATE, "norm": HUBER_NORM, "token": HUBER_TOKEN}


# ----------------------------------------------------------------------------- error signals


@triton.jit
def _tanh(x):
    """``tanh`` from ``exp`` (saturates to +-1 without overflow trouble)."""
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def _power(x, y):
    """``x ** y`` for ``x >= 0`` (0 where ``x == 0``)."""
    return tl.where(x > 0, tl.exp2(y * tl.log2(tl.maximum(x, 1e-30))), 0.0)


@triton.jit
def _sign(x, SMOOTH: tl.constexpr, sharp, eps):
    """``sign(x)`` or its surrogate (``tanh(a x)``, ``x / sqrt(x^2 + eps)``)."""
    if SMOOTH == 1:
        out = _tanh(sharp * x)
    elif SMOOTH == 2:
        out = x / tl.sqrt(x * x + eps)
    else:
        out = tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0))
    return out


@triton.jit
def _sign_slope(x, SMOOTH: tl.constexpr, sharp, eps):
    """Derivative of :func:`_sign` (0 for the exact sign)."""
    if SMOOTH == 1:
        t = _tanh(sharp * x)
        out = sharp * (1.0 - t * t)
    elif SMOOTH == 2:
        s = x * x + eps
        out = eps / (s * tl.sqrt(s))
    else:
        out = x * 0.0
    return out


@triton.jit
def _error(pred, v, delta, BIAS: tl.constexpr, SMOOTH: tl.constexpr, power, sharp, eps, radius, tscale):
    """Error signal ``u = dl/dpred`` ``[BT, BV]`` (docs/semantics.md, attentional biases).

    ``delta`` ``[BT, BV]`` is the Huber threshold (constant along a row for ``norm``/``token``,
    which compare ``||e||_2`` with ``delta * tscale``); padded columns hold ``pred = v = 0`` and
    get ``u = 0``."""
    e = pred - v
    if BIAS == 0:
        u = -v
    elif BIAS == 1:
        u = e
    elif BIAS == 2:
        u = _sign(e, SMOOTH, sharp, eps)
    elif BIAS == 3:
        if SMOOTH == 2:
            u = power * e * _power(e * e + eps, power / 2.0 - 1.0)
        else:
            u = power * _sign(e, 0, sharp, eps) * _power(tl.abs(e), power - 1.0)
    elif BIAS == 4:
        u = tl.maximum(tl.minimum(e, delta), -delta)
    elif BIAS == 5:
        norm = tl.sqrt(tl.sum(e * e, axis=1))[:, None]
        tau = delta * tscale
        u = tl.where(norm <= tau, e, tau * e / tl.maximum(norm, 1e-37))
    elif BIAS == 6:
        norm = tl.sqrt(tl.sum(e * e, axis=1))[:, None]
        u = tl.where(norm <= delta * tscale, e, delta * _sign(e, SMOOTH, sharp, eps))
    else:
        norm = tl.sqrt(tl.sum(e * e, axis=1) + eps)[:, None]
        u = e + radius * e / norm
    return u


@triton.jit
def _error_vjp(pred, v, delta, du, rest, BIAS: tl.constexpr, SMOOTH: tl.constexpr, power, sharp, eps, radius, tscale):
    """Pull ``du`` ``[BT, BV]`` back through :func:`_error`: ``(dpred, dv, ddelta)``.

    ``rest`` ``[1, BV]`` marks the columns after the first: a per-head threshold's gradient goes
    to column 0 only (the caller expanded ``delta`` over the columns, and autograd sums them)."""
    e = pred - v
    ddelta = du * 0.0
    if BIAS == 0:
        de = du * 0.0
        dv = -du
    else:
        if BIAS == 1:
            de = du
        elif BIAS == 2:
            de = du * _sign_slope(e, SMOOTH, sharp, eps)
        elif BIAS == 3:
            if SMOOTH == 2:
                s = e * e + eps
                de = du * power * _power(s, power / 2.0 - 2.0) * (s + (power - 2.0) * e * e)
            else:
                de = du * power * (power - 1.0) * _power(tl.abs(e), power - 2.0)
        elif BIAS == 4:
            inside = tl.abs(e) <= delta
            de = tl.where(inside, du, 0.0)
            ddelta = tl.where(inside, 0.0, du * _sign(e, 0, sharp, eps))
        elif BIAS == 5:
            norm = tl.sqrt(tl.sum(e * e, axis=1))[:, None]
            tau = delta * tscale
            inside = norm <= tau
            safe = tl.maximum(norm, 1e-37)
            along = tl.sum(e * du, axis=1)[:, None] / safe
            de = tl.where(inside, du, tau / safe * (du - e * along / safe))
            ddelta = tl.where(inside | rest, 0.0, along * tscale)
        elif BIAS == 6:
            norm = tl.sqrt(tl.sum(e * e, axis=1))[:, None]
            inside = norm <= delta * tscale
            de = tl.where(inside, du, delta * _sign_slope(e, SMOOTH, sharp, eps) * du)
            along = tl.sum(_sign(e, SMOOTH, sharp, eps) * du, axis=1)[:, None]
            ddelta = tl.where(inside | rest, 0.0, along)
        else:
            norm = tl.sqrt(tl.sum(e * e, axis=1) + eps)[:, None]
            along = tl.sum(e * du, axis=1)[:, None]
            de = du + radius * (du / norm - e * along / (norm * norm * norm))
        dv = -de
    return de, dv, ddelta


# ----------------------------------------------------------------------------- shared pieces


@triton.jit
def _row(ptr, cols, n_cols):
    """A row ``ptr[cols]`` as fp32, zero outside ``n_cols``."""
    return tl.load(ptr + cols, mask=cols < n_cols, other=0.0).to(tl.float32)


@triton.jit
def _put_row(ptr, value, cols, n_cols):
    """Store a row ``value`` at ``ptr[cols]`` inside ``n_cols``."""
    tl.store(ptr + cols, value, mask=cols < n_cols)


@triton.jit
def _dot(a, b):
    return tl.dot(a, b, input_precision="ieee")


@triton.jit
def _last_mix(mix, last, rows, ck, n, CHUNK, DK: tl.constexpr, G: tl.constexpr, BK: tl.constexpr):
    """Row ``last`` of a mix ``[CHUNK, CHUNK, G]`` as ``[BT, BK]`` (``[i, d]``, broadcast over ``d`` for ``G = 1``)."""
    if G == 1:
        c = _row(mix + last * CHUNK, rows, n)[:, None] + tl.zeros([1, BK], tl.float32)
    else:
        c = load_tile(mix + last * CHUNK * DK, rows, ck, n, DK, DK)
    return c


@triton.jit
def _scores(q, k, k_ptr, mix, rows, ck, n, CHUNK, DK: tl.constexpr, G: tl.constexpr, BT: tl.constexpr):
    """``s[t, i] = sum_d q_t[d] C[t, i, d] k_i[d]``, ``[BT, BT]``, causal; ``q``, ``k`` ``[BT, BK]``
    in registers, ``k_ptr`` the chunk's keys (rows for ``G > 1``), ``mix`` its ``C`` ``[CHUNK, CHUNK, G]``."""
    causal = (rows[:, None] >= rows[None, :]) & (rows[:, None] < n)
    if G == 1:
        s = _dot(q, tl.trans(k)) * load_tile(mix, rows, rows, n, n, CHUNK)
    else:
        s = tl.zeros([BT, BT], tl.float32)
        column = rows[:, None] * CHUNK * DK + ck[None, :]  # C[:, i, :] at mix + i * DK + column
        inside = (rows[:, None] < n) & (ck[None, :] < DK)
        for i in range(0, n):
            c_i = tl.load(mix + i * DK + column, mask=inside, other=0.0).to(tl.float32)
            k_i = tl.load(k_ptr + i * DK + ck, mask=ck < DK, other=0.0).to(tl.float32)
            s_i = tl.sum(q * c_i * k_i[None, :], axis=1)
            s = tl.where(rows[None, :] == i, s_i[:, None], s)
    return tl.where(causal, s, 0.0)


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _forward_kernel(
    q_ptr, k_ptr, v_ptr, lr_ptr, delta_ptr, gamma_ptr, mix_ptr, carry_ptr, mom_decay_ptr, mom_mix_ptr,
    x0_ptr, y0_ptr, o_ptr, xs_ptr, ys_ptr, x_end_ptr, y_end_ptr,
    T, NT, CHUNK, power, sharp, eps, radius, tscale,
    DK: tl.constexpr, DV: tl.constexpr, G: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    BIAS: tl.constexpr, SMOOTH: tl.constexpr, DECAYED: tl.constexpr, MOMENTUM: tl.constexpr,
):  # fmt: skip
    """One program per ``(batch * head, value block)``: every chunk in order; its columns of the
    outputs, start states and final state."""
    bh = tl.program_id(0).to(tl.int64)
    rows, ck, cv = tl.arange(0, BT), tl.arange(0, BK), tl.program_id(1) * BV + tl.arange(0, BV)
    x = load_tile(x0_ptr + bh * DK * DV, ck, cv, DK, DV, DV)
    y = tl.zeros([BK, BV], tl.float32)
    if MOMENTUM:
        y = load_tile(y0_ptr + bh * DK * DV, ck, cv, DK, DV, DV)
    for m in range(0, NT):
        start = m * CHUNK
        n = tl.minimum(CHUNK, T - start)
        last = n - 1
        tok_k, tok_v = (bh * T + start) * DK, (bh * T + start) * DV
        vec, mat = (bh * NT + m) * CHUNK * DK, (bh * NT + m) * CHUNK * CHUNK * G
        here = (bh * NT + m) * DK * DV
        store_tile(xs_ptr + here, x, ck, cv, DK, DV, DV)
        q = load_tile(q_ptr + tok_k, rows, ck, n, DK, DK)
        k = load_tile(k_ptr + tok_k, rows, ck, n, DK, DK)
        v = load_tile(v_ptr + tok_v, rows, cv, n, DV, DV)
        gamma = load_tile(gamma_ptr + vec, rows, ck, n, DK, DK)
        pred = tl.zeros([BT, BV], tl.float32)
        if BIAS != 0:
            pred = _dot(k * gamma if DECAYED else k, x)
        delta = load_tile(delta_ptr + tok_v, rows, cv, n, DV, DV)
        lr = load_tile(lr_ptr + tok_v, rows, cv, n, DV, DV)
        e = lr * _error(pred, v, delta, BIAS, SMOOTH, power, sharp, eps, radius, tscale)
        s = _scores(q, k, k_ptr + tok_k, mix_ptr + mat, rows, ck, n, CHUNK, DK, G, BT)
        o = _dot(q * gamma, x) - _dot(s, e)
        gamma_last = _row(gamma_ptr + vec + last * DK, ck, DK)
        written = _dot(tl.trans(k * _last_mix(mix_ptr + mat, last, rows, ck, n, CHUNK, DK, G, BK)), e)
        if MOMENTUM:
            store_tile(ys_ptr + here, y, ck, cv, DK, DV, DV)
            o += _dot(q * load_tile(carry_ptr + vec, rows, ck, n, DK, DK), y)
            carry_last = _row(carry_ptr + vec + last * DK, ck, DK)
            mom_written = _dot(tl.trans(k * _last_mix(mom_mix_ptr + mat, last, rows, ck, n, CHUNK, DK, G, BK)), e)
            x = gamma_last[:, None] * x + carry_last[:, None] * y - written
            y = _row(mom_decay_ptr + vec + last * DK, ck, DK)[:, None] * y - mom_written
        else:
            x = gamma_last[:, None] * x - written
        store_tile(o_ptr + tok_v, o, rows, cv, n, DV, DV)
    store_tile(x_end_ptr + bh * DK * DV, x, ck, cv, DK, DV, DV)
    if MOMENTUM:
        store_tile(y_end_ptr + bh * DK * DV, y, ck, cv, DK, DV, DV)


@triton.jit
def _backward_kernel(
    q_ptr, k_ptr, v_ptr, lr_ptr, delta_ptr, gamma_ptr, mix_ptr, carry_ptr, mom_decay_ptr, mom_mix_ptr,
    xs_ptr, ys_ptr, do_ptr, dx_end_ptr, dy_end_ptr,
    dq_ptr, dk_ptr, dv_ptr, dlr_ptr, ddelta_ptr, dgamma_ptr, dmix_ptr, dcarry_ptr, dmom_decay_ptr, dmom_mix_ptr,
    dx0_ptr, dy0_ptr,
    T, NT, CHUNK, power, sharp, eps, radius, tscale,
    DK: tl.constexpr, DV: tl.constexpr, G: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    BIAS: tl.constexpr, SMOOTH: tl.constexpr, DECAYED: tl.constexpr, MOMENTUM: tl.constexpr,
):  # fmt: skip
    """One program per ``(batch * head, value block)``: the chunks in reverse, carrying its columns
    of ``dX``, ``dY``.

    Per chunk, with ``dX'``, ``dY'`` the gradients of its end state:
    ``dE = -s^T dO - (C_L * K) dX' - (Dmu_L * K) dY'``; ``dX = (Q Gamma)^T dO + Gamma_L dX' + Ks^T dpred``;
    ``dY = (Q P)^T dO + P_L dX' + M_L dY'``; ``ds = -dO E^T`` (causal) feeds ``dQ``, ``dK``, ``dC``.
    The gradients that sum over the value columns (``dq``, ``dk``, ``dgamma``, ``dmix``, ``dcarry``,
    ``dmom_decay``, ``dmom_mix``) are this block's share, at ``(value block * B * H + bh)``."""
    bh = tl.program_id(0).to(tl.int64)
    part = tl.program_id(1).to(tl.int64) * tl.num_programs(0) + bh  # this block's share of the sums
    rows, ck, cv = tl.arange(0, BT), tl.arange(0, BK), tl.program_id(1) * BV + tl.arange(0, BV)
    rest = (cv > 0)[None, :]
    causal = rows[:, None] >= rows[None, :]
    dx_next = load_tile(dx_end_ptr + bh * DK * DV, ck, cv, DK, DV, DV)
    dy_next = tl.zeros([BK, BV], tl.float32)
    if MOMENTUM:
        dy_next = load_tile(dy_end_ptr + bh * DK * DV, ck, cv, DK, DV, DV)
    for j in range(0, NT):
        m = NT - 1 - j
        start = m * CHUNK
        n = tl.minimum(CHUNK, T - start)
        last = n - 1
        at_last = rows[:, None] == last
        tok_k, tok_v = (bh * T + start) * DK, (bh * T + start) * DV
        vec, mat = (bh * NT + m) * CHUNK * DK, (bh * NT + m) * CHUNK * CHUNK * G
        tok_kp, vec_p, mat_p = (
            (part * T + start) * DK,
            (part * NT + m) * CHUNK * DK,
            (part * NT + m) * CHUNK * CHUNK * G,
        )
        here = (bh * NT + m) * DK * DV
        x = load_tile(xs_ptr + here, ck, cv, DK, DV, DV)
        q = load_tile(q_ptr + tok_k, rows, ck, n, DK, DK)
        k = load_tile(k_ptr + tok_k, rows, ck, n, DK, DK)
        v = load_tile(v_ptr + tok_v, rows, cv, n, DV, DV)
        lr = load_tile(lr_ptr + tok_v, rows, cv, n, DV, DV)
        delta = load_tile(delta_ptr + tok_v, rows, cv, n, DV, DV)
        gamma = load_tile(gamma_ptr + vec, rows, ck, n, DK, DK)
        do = load_tile(do_ptr + tok_v, rows, cv, n, DV, DV)
        ks = k * gamma if DECAYED else k
        pred = tl.zeros([BT, BV], tl.float32)
        if BIAS != 0:
            pred = _dot(ks, x)
        u = _error(pred, v, delta, BIAS, SMOOTH, power, sharp, eps, radius, tscale)
        e = lr * u
        s = _scores(q, k, k_ptr + tok_k, mix_ptr + mat, rows, ck, n, CHUNK, DK, G, BT)
        mix_last = _last_mix(mix_ptr + mat, last, rows, ck, n, CHUNK, DK, G, BK)
        gamma_last = _row(gamma_ptr + vec + last * DK, ck, DK)

        # the error signal's gradient, and through the bias the prediction's and the value's
        de = -_dot(tl.trans(s), do) - _dot(k * mix_last, dx_next)
        if MOMENTUM:
            mom_mix_last = _last_mix(mom_mix_ptr + mat, last, rows, ck, n, CHUNK, DK, G, BK)
            de -= _dot(k * mom_mix_last, dy_next)
        store_tile(dlr_ptr + tok_v, u * de, rows, cv, n, DV, DV)
        dpred, dv, ddelta = _error_vjp(pred, v, delta, lr * de, rest, BIAS, SMOOTH, power, sharp, eps, radius, tscale)
        store_tile(dv_ptr + tok_v, dv, rows, cv, n, DV, DV)
        if BIAS >= 4 and BIAS <= 6:
            store_tile(ddelta_ptr + tok_v, ddelta, rows, cv, n, DV, DV)

        # reads of the start state: o += (Q Gamma) X + (Q P) Y
        do_x = _dot(do, tl.trans(x))
        dq = do_x * gamma
        dgamma = q * do_x + tl.where(at_last, tl.sum(x * dx_next, axis=1)[None, :], 0.0)
        dx = _dot(tl.trans(q * gamma), do) + gamma_last[:, None] * dx_next

        # scores s[t, i] = sum_d q_t[d] C[t, i, d] k_i[d], and the write sum_i C[L, i] k_i E_i^T
        ds = tl.where(causal & (rows[:, None] < n), -_dot(do, tl.trans(e)), 0.0)
        z = _dot(e, tl.trans(dx_next))  # z[i, d] = E_i . dX'[d]
        dk = -mix_last * z
        if G == 1:
            weighted = ds * load_tile(mix_ptr + mat, rows, rows, n, n, CHUNK)
            dq += _dot(weighted, k)
            dk += _dot(tl.trans(weighted), q)
            dmix = ds * _dot(q, tl.trans(k)) - tl.where(at_last, tl.sum(k * z, axis=1)[None, :], 0.0)
            store_tile(dmix_ptr + mat_p, dmix, rows, rows, n, n, CHUNK)
        else:
            column = rows[:, None] * CHUNK * DK + ck[None, :]  # C[:, i, :] at mix + i * DK + column
            inside = (rows[:, None] < n) & (ck[None, :] < DK)
            for i in range(0, n):
                c_i = tl.load(mix_ptr + mat + i * DK + column, mask=inside, other=0.0).to(tl.float32)
                k_i = tl.load(k_ptr + tok_k + i * DK + ck, mask=ck < DK, other=0.0).to(tl.float32)
                ds_i = tl.sum(tl.where(rows[None, :] == i, ds, 0.0), axis=1)[:, None]
                z_i = tl.sum(tl.where(rows[:, None] == i, z, 0.0), axis=0)
                dq += ds_i * c_i * k_i[None, :]
                dk = tl.where(rows[:, None] == i, dk + tl.sum(ds_i * c_i * q, axis=0)[None, :], dk)
                dmix_i = ds_i * q * k_i[None, :] - tl.where(at_last, (k_i * z_i)[None, :], 0.0)
                tl.store(dmix_ptr + mat_p + i * DK + column, dmix_i, mask=inside)

        # the prediction pred = Ks X
        if BIAS != 0:
            dks = _dot(dpred, tl.trans(x))
            if DECAYED:
                dk += dks * gamma
                dgamma += dks * k
            else:
                dk += dks
            dx += _dot(tl.trans(ks), dpred)

        if MOMENTUM:
            y = load_tile(ys_ptr + here, ck, cv, DK, DV, DV)
            carry = load_tile(carry_ptr + vec, rows, ck, n, DK, DK)
            do_y = _dot(do, tl.trans(y))
            dq += do_y * carry
            dcarry = q * do_y + tl.where(at_last, tl.sum(y * dx_next, axis=1)[None, :], 0.0)
            store_tile(dcarry_ptr + vec_p, dcarry, rows, ck, n, DK, DK)
            z_mom = _dot(e, tl.trans(dy_next))
            dk -= mom_mix_last * z_mom
            if G == 1:
                _put_row(dmom_mix_ptr + mat_p + last * CHUNK, -tl.sum(k * z_mom, axis=1), rows, n)
            else:
                store_tile(dmom_mix_ptr + mat_p + last * CHUNK * DK, -k * z_mom, rows, ck, n, DK, DK)
            mom_decay_last = _row(mom_decay_ptr + vec + last * DK, ck, DK)
            _put_row(dmom_decay_ptr + vec_p + last * DK, tl.sum(y * dy_next, axis=1), ck, DK)
            carry_last = _row(carry_ptr + vec + last * DK, ck, DK)
            dy_next = _dot(tl.trans(q * carry), do) + carry_last[:, None] * dx_next + mom_decay_last[:, None] * dy_next
        store_tile(dq_ptr + tok_kp, dq, rows, ck, n, DK, DK)
        store_tile(dk_ptr + tok_kp, dk, rows, ck, n, DK, DK)
        store_tile(dgamma_ptr + vec_p, dgamma, rows, ck, n, DK, DK)
        dx_next = dx
    store_tile(dx0_ptr + bh * DK * DV, dx_next, ck, cv, DK, DV, DV)
    if MOMENTUM:
        store_tile(dy0_ptr + bh * DK * DV, dy_next, ck, cv, DK, DV, DV)


# ----------------------------------------------------------------------------- autograd


@dataclass(frozen=True)
class Setup:
    """Compile-time choices and scalar parameters of one scan."""

    bias: int
    """Which error signal (``DOT`` ... ``ROBUST``)."""
    smooth: int
    """Sign surrogate (:data:`SMOOTHING`)."""
    power: float
    sharp: float
    eps: float
    radius: float
    tscale: float
    """Huber norm/token modes: ``||e||_2`` is compared with ``delta * tscale``."""
    decayed: bool
    """``grad_at: decayed``: predictions at ``Gamma_i * W_s``."""


def value_block(bias: int, d_v: int) -> int:
    """Value columns per program: all of them for a row-norm bias, else at most :data:`VALUE_BLOCK`."""
    whole = block(d_v)
    return whole if bias in (HUBER_NORM, HUBER_TOKEN, ROBUST) else min(whole, VALUE_BLOCK)


def _launch_options(setup: Setup, q: Tensor, v: Tensor, mix: Tensor, momentum: bool) -> dict:
    """Scalars, constexprs and launch options shared by both kernels: 8 warps, 16 for
    ``BT * BK`` of 4096 or more (2048 with momentum), to spread the ``[BT, BK]`` tiles and the
    fp32 dots' operands thin; one stage, as the chunk loop is sequential and prefetching its next
    chunk's inputs costs registers and shared memory (fewest ``ptxas`` spills on sm_90)."""
    length, d_k, d_v = q.shape[2], q.shape[3], v.shape[3]
    chunks, chunk = mix.shape[2], mix.shape[3]
    tile = block(chunk) * block(d_k) * (2 if momentum else 1)
    return {
        "T": length, "NT": chunks, "CHUNK": chunk,
        "power": setup.power, "sharp": setup.sharp, "eps": setup.eps, "radius": setup.radius, "tscale": setup.tscale,
        "DK": d_k, "DV": d_v, "G": mix.shape[-1],
        "BT": block(chunk), "BK": block(d_k), "BV": value_block(setup.bias, d_v),
        "BIAS": setup.bias, "SMOOTH": setup.smooth, "DECAYED": setup.decayed, "MOMENTUM": momentum,
        "num_warps": 16 if tile >= 4096 else 8, "num_stages": 1,
    }  # fmt: skip


def _grid(setup: Setup, q: Tensor, v: Tensor) -> tuple[int, int]:
    """``(B * H, value blocks)``."""
    batch, heads, d_v = q.shape[0], q.shape[1], v.shape[3]
    return batch * heads, triton.cdiv(d_v, value_block(setup.bias, d_v))


class LinearScan(torch.autograd.Function):
    """The kernels as one differentiable op on the kernel layout (see :func:`scan`).

    Inputs: ``q``, ``k`` ``[B, H, T, D_k]``; ``v``, ``lr``, ``delta`` ``[B, H, T, D_v]``; ``gamma``,
    ``carry``, ``mom_decay`` ``[B, H, M, n, D_k]``; ``mix``, ``mom_mix`` ``[B, H, M, n, n, G]``;
    ``x0``, ``y0`` ``[B, H, D_k, D_v]`` (transposed weights and momentum). The momentum tensors are
    ``None`` without momentum, ``delta`` without a Huber bias. Outputs: ``o`` ``[B, H, T, D_v]`` and
    the final ``x``, ``y`` (``y`` is ``None`` without momentum).
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        setup: Setup,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        lr: Tensor,
        delta: Tensor | None,
        gamma: Tensor,
        mix: Tensor,
        carry: Tensor | None,
        mom_decay: Tensor | None,
        mom_mix: Tensor | None,
        x0: Tensor,
        y0: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        momentum = y0 is not None
        q, k, v, lr, delta, gamma, mix, carry, mom_decay, mom_mix, x0, y0 = (
            None if t is None else t.contiguous()
            for t in (q, k, v, lr, delta, gamma, mix, carry, mom_decay, mom_mix, x0, y0)
        )
        batch, heads, length, d_k = q.shape
        d_v, chunks = v.shape[3], mix.shape[2]
        f32 = {"dtype": torch.float32, "device": q.device}
        o = torch.empty(batch, heads, length, d_v, **f32)
        xs = torch.empty(batch, heads, chunks, d_k, d_v, **f32)
        ys = torch.empty_like(xs) if momentum else xs
        x_end = torch.empty(batch, heads, d_k, d_v, **f32)
        y_end = torch.empty_like(x_end) if momentum else x_end
        _forward_kernel[_grid(setup, q, v)](
            q, k, v, lr, v if delta is None else delta, gamma, mix,
            *(gamma if t is None else t for t in (carry, mom_decay)), mix if mom_mix is None else mom_mix,
            x0, x0 if y0 is None else y0, o, xs, ys, x_end, y_end,
            **_launch_options(setup, q, v, mix, momentum),
        )  # fmt: skip
        ctx.setup = setup
        ctx.save_for_backward(q, k, v, lr, delta, gamma, mix, carry, mom_decay, mom_mix, xs, ys if momentum else None)
        ctx.dtypes = (q.dtype, x0.dtype)
        dtype, state_dtype = ctx.dtypes
        return o.to(dtype), x_end.to(state_dtype), y_end.to(state_dtype) if momentum else None

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, do: Tensor, dx_end: Tensor | None, dy_end: Tensor | None) -> tuple:
        q, k, v, lr, delta, gamma, mix, carry, mom_decay, mom_mix, xs, ys = ctx.saved_tensors
        momentum = ys is not None
        batch, heads, _, d_k = q.shape
        d_v = v.shape[3]
        f32 = {"dtype": torch.float32, "device": q.device}

        def cotangent(grad: Tensor | None) -> Tensor:
            zeros = torch.zeros(batch, heads, d_k, d_v, **f32)
            return zeros if grad is None else grad.to(torch.float32).contiguous()

        do = do.to(torch.float32).contiguous()
        dx_end, dy_end = cotangent(dx_end), cotangent(dy_end)
        grid = _grid(ctx.setup, q, v)

        def shares(like: Tensor) -> Tensor:
            """Zeros ``[value blocks, *like.shape]``: each block's share of a gradient summed over the columns."""
            return torch.zeros(grid[1], *like.shape, **f32)

        dv, dlr, ddelta = (torch.zeros(v.shape, **f32) for _ in range(3))
        dq, dk, dgamma, dmix = (shares(t) for t in (q, k, gamma, mix))
        dcarry, dmom_decay, dmom_mix = (shares(t) for t in (gamma, gamma, mix)) if momentum else (dgamma, dgamma, dmix)
        dx0, dy0 = torch.empty_like(dx_end), torch.empty_like(dx_end)
        _backward_kernel[grid](
            q, k, v, lr, v if delta is None else delta, gamma, mix,
            *(gamma if t is None else t for t in (carry, mom_decay)), mix if mom_mix is None else mom_mix,
            xs, xs if ys is None else ys, do, dx_end, dy_end,
            dq, dk, dv, dlr, ddelta, dgamma, dmix, dcarry, dmom_decay, dmom_mix, dx0, dy0,
            **_launch_options(ctx.setup, q, v, mix, momentum),
        )  # fmt: skip
        state_dtype = ctx.dtypes[1]

        def cast(grad: Tensor, like: Tensor | None) -> Tensor | None:
            return None if like is None else grad.to(like.dtype)

        dq, dk, dgamma, dmix, dcarry, dmom_decay, dmom_mix = (
            t.sum(0) for t in (dq, dk, dgamma, dmix, dcarry, dmom_decay, dmom_mix)
        )
        moms = (cast(dcarry, carry), cast(dmom_decay, mom_decay), cast(dmom_mix, mom_mix))
        state = (dx0.to(state_dtype), dy0.to(state_dtype) if momentum else None)
        grads = (dq, dk, dv, dlr, ddelta, dgamma, dmix)
        inputs = (q, k, v, lr, delta, gamma, mix)
        return (None, *(cast(g, x) for g, x in zip(grads, inputs, strict=True)), *moms, *state)


# ----------------------------------------------------------------------------- public API


def _bias_setup(bias: AttentionalBias, d_v: int) -> tuple[int, int, float, float, float, float, float] | None:
    """``(BIAS, SMOOTH, power, sharpness, eps, radius, tscale)`` of a built-in bias at value width
    ``d_v``, ``None`` for any other."""
    kind = type(bias)
    if kind is DotProduct:
        return DOT, 0, 0.0, 0.0, 0.0, 0.0, 1.0
    if kind is L2:
        return SQUARED, 0, 0.0, 0.0, 0.0, 0.0, 1.0
    if kind is L1:
        p = bias.params
        return ABSOLUTE, SMOOTHING[p.smooth], 0.0, p.sharpness, p.eps, 0.0, 1.0
    if kind is Lp:
        p = bias.params
        return POWER, SMOOTHING[p.smooth], p.p, 0.0, p.eps, 0.0, 1.0
    if kind is Huber:
        p = bias.params
        tscale = math.sqrt(d_v) if p.scale == "rms" else 1.0
        return HUBER_MODES[p.mode], SMOOTHING[p.smooth], 0.0, p.sharpness, p.eps, 0.0, tscale
    if kind is Robust:
        return ROBUST, 0, 0.0, 0.0, bias.params.eps, bias.params.radius, 1.0
    return None


def chunk_plan(problem: ScanProblem, chunk_size: int | None) -> ChunkPlan:
    """How :func:`scan` cuts ``problem``: a state-free scan in chunks of ``chunk_size`` tokens (default
    :data:`STATE_FREE_CHUNK`), others in their mini-batches."""
    return plan(problem, chunk_size or STATE_FREE_CHUNK)


def linear_unsupported(problem: ScanProblem, chunk_size: int | None = None) -> str | None:
    """Why the Triton linear-memory kernel does not apply to ``problem`` cut by :func:`chunk_plan`
    (one sentence), or ``None`` when it does."""
    how = chunk_plan(problem, chunk_size)
    c = problem.components
    alg = c.algorithm.params
    d_k, d_v = problem.k.shape[-1], problem.v.shape[-1]
    chunk = max(e - s for s, e in how.bounds) if how.bounds else 0
    delta = problem.gates.get("delta")
    checks = [
        (type(c.memory) is not LinearMemory, f"the memory is {type(c.memory).__name__}, not the linear memory"),
        (not c.retention.identity, f"retention {type(c.retention).__name__} has a non-identity mirror map"),
        (type(c.algorithm) not in (GD, Momentum, ImplicitGD), f"algorithm {type(c.algorithm).__name__} is a plugin"),
        (how.steps != 1, f"{how.steps} GD steps per token are taken one after the other"),
        (alg.read != "after_write", "tokens read before their write"),
        (alg.lag_token, "lag-token mini-batches are not supported"),
        (_bias_setup(c.bias, d_v) is None, f"bias {type(c.bias).__name__} is not a built-in the kernel implements"),
        (
            type(c.bias) is Huber and c.bias.params.mode != "coordinate" and delta is not None and delta.shape[-1] > 1,
            "huber norm/token modes need a per-head delta gate",
        ),
        (max(d_k, d_v) > MAX_WIDTH, f"D_k = {d_k}, D_v = {d_v}: widths above {MAX_WIDTH} are not supported"),
        (chunk > MAX_CHUNK, f"chunks of {chunk} tokens: longer than {MAX_CHUNK} are not supported"),
        (problem.k.dtype == torch.float64, "fp64 inputs (the kernel computes in fp32)"),
        (
            problem.k.device.type != "cuda" and not INTERPRETED,
            f"tensors on {problem.k.device.type} need a GPU (or TRITON_INTERPRET=1 before importing the kernels)",
        ),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _kernel_inputs(p: ScanProblem, how: ChunkPlan) -> tuple[Tensor, Tensor | None]:
    """The effective learning rate ``[B, H, T, D_v]`` (implicit GD, folded steps) and the Huber
    threshold ``[B, H, T, D_v]`` (``None`` without a Huber bias), both expanded over channels."""
    c = p.components
    shape = p.v.shape
    lr = p.gates["lr"]
    if c.algorithm.implicit:
        lr = implicit_lr(lr, p.k)
    if how.fold != 1:
        lr = how.fold * lr
    delta = p.gates.get("delta")
    return lr.expand(shape), None if delta is None else delta.expand(shape)


def scan(
    p: ScanProblem, *, initial_state: State | None, output_final_state: bool, chunk_size: int | None
) -> tuple[Tensor, State | None]:
    """The chunked scan of a linear memory with the Triton kernels, on a prepared problem that
    :func:`linear_unsupported` accepts, cut by :func:`chunk_plan`. Arguments and returns as
    :func:`miras.ops.miras_scan`."""
    how = chunk_plan(p, chunk_size)
    c = p.components
    setup = Setup(*_bias_setup(c.bias, p.v.shape[3]), decayed=c.algorithm.params.grad_at == "decayed")
    acc, mom = initial(p, initial_state)
    coef = coefficients(p, how.bounds)
    d_k = p.k.shape[3]

    def channels(x: Tensor | None) -> Tensor | None:
        return None if x is None else x.expand(*x.shape[:-1], d_k)

    lr, delta = _kernel_inputs(p, how)
    momentum = c.algorithm.momentum
    o, x_end, y_end = LinearScan.apply(
        setup, p.q, p.k, p.v, lr, delta, channels(coef.decay), coef.mix,
        channels(coef.carry), channels(coef.mom_decay), coef.mom_mix,
        acc["W"].mT, mom["W"].mT if momentum else None,
    )  # fmt: skip
    if not output_final_state:
        return o.transpose(1, 2), None
    return o.transpose(1, 2), final({"W": x_end.mT}, {"W": y_end.mT} if momentum else {})


__all__ = ["LinearScan", "chunk_plan", "linear_unsupported", "scan"]
