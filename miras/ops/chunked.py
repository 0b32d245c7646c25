"""The chunked scan: parallel inside each mini-batch, sequential over mini-batches.

Same semantics as :func:`miras.ops.reference.scan` (docs/semantics.md); how it is
computed is in docs/ops.md. In short, for a mini-batch ``[s, e)`` of ``n`` tokens:

1. every token's gradient is taken at the mini-batch's start weights ``W_s = psi(A_s)`` (or
   ``Gamma_t * W_s``), so all ``n`` gradients come from one forward and one backward of the
   memory; the gradient of a weight used as a linear map is an outer product
   ``left_i right_i^T`` (:data:`Factors`);
2. the accumulator moves linearly inside the mini-batch,
   ``A_t = Gamma_t A_s + P_t S_s - sum_i C[t, i] left_i right_i^T``, with coefficient products
   of the decay and momentum gates (:class:`Coefficients`) computed for all mini-batches at once;
3. reads use the dual form: each linear map ``W_t x`` of the memory becomes
   ``W_s (Gamma_t x) + S_s (P_t x) - sum_i left_i (C[t, i] right_i . x)``, causally masked, so an
   MLP memory reads every token at its own weights without materialising them.

Layouts: internal tensors are ``[B, H, T, D]`` (see :func:`miras.ops.common.prepare`); gates are
``[B, H, T, G]`` with ``G`` 1 (per head) or the channel width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..space import Components
from ..space.memories import Linear, LinearMemory
from . import probe
from .common import (
    ScanProblem,
    State,
    closes_minibatch,
    final,
    implicit_lr,
    initial,
    minibatches,
    weight_gate,
)
from .factors import closed_form_factors, structure

DEFAULT_CHUNK_SIZE = 64

Factors = dict[str, tuple[Tensor, Tensor]]
"""Gradient factors of a mini-batch, weight name -> ``(left, right)``: token ``i``'s lr-scaled
gradient of that weight is ``left_i right_i^T``, with ``left`` ``[B, H, n, out]`` (d loss /
d output of the linear map) and ``right`` ``[B, H, n, in]`` (its input)."""


@dataclass(frozen=True)
class ChunkPlan:
    """How :func:`scan` cuts a sequence into chunks processed one after the other."""

    bounds: list[tuple[int, int]]
    """``[start, end)`` of every chunk."""
    project_last: list[bool]
    """Per chunk: its last token reads ``psi(A_e)`` with a plain forward (not the dual form)."""
    steps: int
    """GD steps taken one after the other per chunk (``gd.steps`` at ``b = 1``)."""
    fold: int
    """GD steps folded into one update (state-independent gradients: every step is the same)."""
    reason: str


def state_free(c: Components) -> bool:
    """True when no gradient depends on the state and ``psi`` is the identity, so mini-batch
    boundaries change nothing: a state-independent bias on the linear memory (for an MLP the
    back-propagated gradient depends on the weights even when the error signal does not)."""
    return c.bias.state_independent and c.retention.identity and type(c.memory) is LinearMemory


def plan(problem: ScanProblem, chunk_size: int | None = None) -> ChunkPlan:
    """The chunks of ``problem``: ``chunk_size`` tokens (default 64) when :func:`state_free`,
    else the spec's mini-batches (``chunk_size`` is then ignored)."""
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of tokens, got {chunk_size}")
    c, length = problem.components, problem.length
    alg = c.algorithm.params
    if state_free(c):
        size = chunk_size or DEFAULT_CHUNK_SIZE
        bounds = [(s, min(s + size, length)) for s in range(0, length, size)]
        reason = (
            f"state-independent bias on a linear memory with identity retention: {len(bounds)} chunk(s) "
            f"of {size} tokens, parallel inside each"
        )
        return ChunkPlan(bounds, [False] * len(bounds), 1, c.algorithm.steps, reason)
    bounds = minibatches(length, alg.batch_size, alg.lag_token)
    nonlinear = not c.retention.identity or c.algorithm.steps > 1
    last = [nonlinear and closes_minibatch(e - 1, alg.batch_size, alg.lag_token) for _, e in bounds]
    if alg.batch_size == 1:
        reason = "b = 1: every token is a mini-batch of its own, one sequential step per token (batched over B and H)"
    else:
        reason = f"{len(bounds)} mini-batches of up to {alg.batch_size} tokens: parallel inside each, sequential across"
    return ChunkPlan(bounds, last, c.algorithm.steps, 1, reason)


@dataclass(frozen=True)
class Coefficients:
    """Products of the decay ``alpha`` and momentum ``mu`` gates inside mini-batches.

    With ``U_i = -left_i right_i^T`` and ``t``, ``i`` positions inside a mini-batch:
    ``A_t = Gamma_t A_s + P_t S_s + sum_{i<=t} C[t, i] U_i`` and
    ``S_t = M_t S_s + sum_{i<=t} Dmu[t, i] U_i``, every coefficient acting on the input
    dimension of a weight. Leading dims are ``[B, H, M]`` (all ``M`` mini-batches, padded to
    ``n`` tokens) or ``[B, H]`` after :meth:`at`; ``G`` is 1 or the channel width.
    """

    decay: Tensor
    """``Gamma_t = alpha_s ... alpha_t``, ``[..., n, G]``."""
    mix: Tensor
    """``C[t, i]``, ``[..., n, n, G]``, zero for ``i > t``."""
    carry: Tensor | None
    """``P_t`` (momentum only), ``[..., n, G]``."""
    mom_decay: Tensor | None
    """``M_t = mu_s ... mu_t`` (momentum only), ``[..., n, G]``."""
    mom_mix: Tensor | None
    """``Dmu[t, i] = mu_{i+1} ... mu_t`` (momentum only), ``[..., n, n, G]``."""

    def chunks(self, sizes: list[int]) -> list[Coefficients]:
        """Every mini-batch's coefficients, leading dims ``[B, H]``, mini-batch ``m`` cut to its
        ``sizes[m]`` tokens. One ``unbind`` per tensor: its backward stacks the chunks' gradients once
        (indexing chunk by chunk would back-propagate a zero-filled full-size tensor per chunk)."""

        def cut(x: Tensor | None) -> list[Tensor | None]:
            if x is None:
                return [None] * len(sizes)
            return [c[:, :, :n, :n] if c.dim() == 5 else c[:, :, :n] for c, n in zip(x.unbind(2), sizes, strict=True)]

        parts = [cut(x) for x in (self.decay, self.mix, self.carry, self.mom_decay, self.mom_mix)]
        return [Coefficients(*chunk) for chunk in zip(*parts, strict=True)]


def coefficients(problem: ScanProblem, bounds: list[tuple[int, int]]) -> Coefficients:
    """:class:`Coefficients` of every chunk in ``bounds``, by running products over the
    positions of a chunk (vectorised across chunks): exact at any decay, unlike exp-cumsum-log."""
    c = problem.components
    n = max(e - s for s, e in bounds)
    device = problem.k.device
    starts = torch.tensor([s for s, _ in bounds], device=device)
    index = (starts[:, None] + torch.arange(n, device=device)).clamp(max=problem.length - 1)  # [M, n]
    batch, heads = problem.k.shape[:2]
    ones = problem.k.new_ones(batch, heads, len(bounds), n, 1)
    mu = problem.gates["momentum"][:, :, index] if c.algorithm.momentum else None
    if not c.retention.uses_decay and mu is None:  # every product is 1: the causal mask
        causal = torch.ones(n, n, dtype=ones.dtype, device=device).tril().unsqueeze(-1)
        return Coefficients(ones, causal.expand(batch, heads, len(bounds), n, n, 1), None, None, None)
    alpha = problem.gates["decay"][:, :, index] if c.retention.uses_decay else ones
    return _products(alpha, mu)


def _products(alpha: Tensor, mu: Tensor | None) -> Coefficients:
    """Coefficients from per-position gates ``alpha``, ``mu`` ``[B, H, M, n, G]``."""
    n = alpha.shape[3]
    eye = torch.eye(n, dtype=alpha.dtype, device=alpha.device).unsqueeze(-1)  # row j: one-hot [n, 1]
    zeros = alpha.new_zeros(*alpha.shape[:3], n, 1)
    gamma, mix = alpha.new_ones(*alpha.shape[:3], 1), zeros
    mom_decay, mom_mix, carry = gamma, zeros, torch.zeros_like(gamma)
    rows: dict[str, list[Tensor]] = {"decay": [], "mix": [], "carry": [], "mom_decay": [], "mom_mix": []}
    for j in range(n):
        a = alpha[:, :, :, j]
        gamma = a * gamma
        if mu is None:
            mix = a.unsqueeze(-2) * mix + eye[j]
        else:
            m = mu[:, :, :, j]
            mom_decay = m * mom_decay
            mom_mix = m.unsqueeze(-2) * mom_mix + eye[j]
            carry = a * carry + mom_decay
            mix = a.unsqueeze(-2) * mix + mom_mix
            rows["carry"].append(carry)
            rows["mom_decay"].append(mom_decay)
            rows["mom_mix"].append(mom_mix)
        rows["decay"].append(gamma)
        rows["mix"].append(mix)
    stacked = {name: torch.stack(r, dim=3) if r else None for name, r in rows.items()}
    return Coefficients(**stacked)


def gradient_factors(
    c: Components,
    weights: State,
    scale: Tensor | None,
    k: Tensor,
    v: Tensor,
    gates: dict[str, Tensor],
    fold: int,
    graph: bool,
) -> Factors:
    """:data:`Factors` of ``n`` tokens, each differentiated at ``weights`` (``[B, H, out, in]``),
    scaled on their input dimension by ``scale`` ``[B, H, n, G]`` when given (``grad_at:
    decayed``). ``k`` ``[B, H, n, D_k]``, ``v`` ``[B, H, n, D_v]``, gates ``[B, H, n, G]``.
    ``graph``: keep them differentiable for the outer training loop.

    The built-in memories take the closed form of :mod:`miras.ops.factors`, whose backward is
    written out; any other memory :func:`autograd_factors`.
    """
    built_in = structure(c)
    if built_in is None:
        factors, pred = autograd_factors(c, weights, scale, k, v, gates, fold, graph)
    else:
        factors, pred = closed_form_factors(c, built_in, weights, scale, k, v, gates, fold, graph)
    probe.report(pred, v, gates)
    return factors


def autograd_factors(
    c: Components,
    weights: State,
    scale: Tensor | None,
    k: Tensor,
    v: Tensor,
    gates: dict[str, Tensor],
    fold: int,
    graph: bool,
) -> tuple[Factors, Tensor]:
    """:func:`gradient_factors` of any memory written with ``apply``, and the predictions
    ``[B, H, n, D_v]``: the memory runs once with every linear map's output shifted by a zero
    perturbation; the pullback (``torch.func.vjp``) of the error signal w.r.t. the perturbations
    gives ``left`` for every weight (``torch.compile`` traces this without a graph break)."""

    def run(shifts: State) -> tuple[Tensor, State]:
        inputs: State = {}

        def linear(name: str, h: Tensor) -> Tensor:
            if name in inputs:
                raise ValueError(f"the chunked scan needs every weight applied once per forward; {name!r} is reused")
            inputs[name] = h
            return (h if scale is None else h * scale) @ weights[name].mT + shifts[name]

        return c.memory.apply(linear, k), inputs

    batch, heads, n = k.shape[:3]
    zeros = {name: k.new_zeros(batch, heads, n, w.shape[-2]) for name, w in weights.items()}
    pred, pullback, inputs = torch.func.vjp(run, zeros, has_aux=True)
    (lefts,) = pullback(fold * gates["lr"] * c.bias.error(pred, v, gates))
    if graph:
        return {name: (lefts[name], inputs[name]) for name in weights}, pred
    return {name: (lefts[name].detach(), inputs[name].detach()) for name in weights}, pred


def weighted_sum(factors: Factors, coeff: Tensor) -> State:
    """``sum_i left_i (coeff_i * right_i)^T`` per weight, ``coeff`` ``[B, H, n, G]`` -> ``[B, H, out, in]``."""
    return {name: left.mT @ (right * coeff) for name, (left, right) in factors.items()}


def advance(acc: State, mom: State, factors: Factors, coef: Coefficients) -> tuple[State, State]:
    """The accumulators (and momenta) after the last token of a mini-batch."""
    last = coef.decay[:, :, -1]
    grads = weighted_sum(factors, coef.mix[:, :, -1])
    new_acc = {name: weight_gate(last) * a - grads[name] for name, a in acc.items()}
    if coef.carry is None:
        return new_acc, mom
    carry = weight_gate(coef.carry[:, :, -1])
    new_acc = {name: a + carry * mom[name] for name, a in new_acc.items()}
    mom_grads = weighted_sum(factors, coef.mom_mix[:, :, -1])
    mom_decay = weight_gate(coef.mom_decay[:, :, -1])
    return new_acc, {name: mom_decay * s - mom_grads[name] for name, s in mom.items()}


def further_step(
    c: Components, acc: State, mom: State, k: Tensor, v: Tensor, gates: dict[str, Tensor], graph: bool
) -> tuple[State, State]:
    """One more GD step on a single token (``k``, ``v`` ``[B, H, 1, D]``) at ``psi(acc)``, no decay."""
    weights = {name: c.retention.project(a) for name, a in acc.items()}
    factors = gradient_factors(c, weights, None, k, v, gates, 1, graph)
    grads = {name: left.mT @ right for name, (left, right) in factors.items()}
    if c.algorithm.momentum:
        mom = {name: gates["momentum"] * s - grads[name] for name, s in mom.items()}
        return {name: a + mom[name] for name, a in acc.items()}, mom
    return {name: a - grads[name] for name, a in acc.items()}, mom


def dual_linear(start: State, mom: State, factors: Factors, coef: Coefficients, rows: int) -> Linear:
    """``linear(name, x)`` applying token ``t``'s weights ``W_t`` (``t < rows``) to ``x`` ``[B, H, rows, in]``:
    ``W_s (Gamma_t x) + S_s (P_t x) - sum_{i<=t} left_i (C[t, i] right_i . x)``."""
    decay, mix = coef.decay[:, :, :rows], coef.mix[:, :, :rows]
    carry = None if coef.carry is None else coef.carry[:, :, :rows]

    def linear(name: str, x: Tensor) -> Tensor:
        left, right = factors[name]
        out = (x * decay) @ start[name].mT
        if carry is not None:
            out = out + (x * carry) @ mom[name].mT
        if mix.shape[-1] == 1:
            scores = (x @ right.mT) * mix.squeeze(-1)
        else:
            scores = torch.einsum("bhtid,bhid,bhtd->bhti", mix, right, x)
        return out - scores @ left

    return linear


DualRead = Callable[[State, State, Factors, Coefficients, int], Linear]
"""Builds the dual-form read of a chunk, as :func:`dual_linear` (which another implementation may replace)."""


@dataclass(frozen=True)
class Chunk:
    """One chunk's inputs in the internal layout: ``q``, ``k`` ``[B, H, n, D_k]``, ``v``
    ``[B, H, n, D_v]``, gates ``[B, H, n, G]`` (lr already implicit-adjusted)."""

    q: Tensor
    k: Tensor
    v: Tensor
    gates: dict[str, Tensor]
    coef: Coefficients
    project_last: bool


def run_chunk(
    c: Components, x: Chunk, acc: State, mom: State, how: ChunkPlan, graph: bool, dual: DualRead = dual_linear
) -> tuple[Tensor, State, State]:
    """Outputs ``[B, H, n, D_v]`` of one chunk and the state after it; ``dual`` builds its dual-form read."""
    start = {name: c.retention.project(a) for name, a in acc.items()}
    scale = x.coef.decay if c.algorithm.params.grad_at == "decayed" else None
    factors = gradient_factors(c, start, scale, x.k, x.v, x.gates, how.fold, graph)
    new_acc, new_mom = advance(acc, mom, factors, x.coef)
    for _ in range(1, how.steps):
        new_acc, new_mom = further_step(c, new_acc, new_mom, x.k, x.v, x.gates, graph)
    n = x.q.shape[2]
    if c.algorithm.params.read == "before_write":  # token t reads token t-1's weights; the first W_s
        parts = [c.memory.forward(start, x.q[:, :, :1])]
        if n > 1:
            parts.append(c.memory.apply(dual(start, mom, factors, x.coef, n - 1), x.q[:, :, 1:]))
        return torch.cat(parts, dim=2), new_acc, new_mom
    dual_rows = n - 1 if x.project_last else n
    parts = []
    if dual_rows > 0:
        parts.append(c.memory.apply(dual(start, mom, factors, x.coef, dual_rows), x.q[:, :, :dual_rows]))
    if x.project_last:
        weights = {name: c.retention.project(a) for name, a in new_acc.items()}
        parts.append(c.memory.forward(weights, x.q[:, :, n - 1 :]))
    return torch.cat(parts, dim=2), new_acc, new_mom


ChunkStep = Callable[[Components, Chunk, State, State, ChunkPlan, bool, DualRead], tuple[Tensor, State, State]]
"""Runs one chunk, as :func:`run_chunk` (``torch.compile`` of it in :mod:`miras.ops.compiled`)."""


def needs_graph(*tensors: Tensor) -> bool:
    """Whether the outer loop will differentiate through the scan."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def scan(
    p: ScanProblem,
    *,
    initial_state: State | None,
    output_final_state: bool,
    chunk_size: int | None,
    dual: DualRead = dual_linear,
    step: ChunkStep = run_chunk,
) -> tuple[Tensor, State | None]:
    """Parallel inside each mini-batch, sequential over mini-batches, on the prepared problem.
    Arguments and returns as :func:`miras.ops.miras_scan`; ``chunk_size`` (default 64) only matters
    when :func:`state_free`; ``dual`` builds every chunk's dual-form read (:func:`dual_linear`, or a
    kernel with its contract); ``step`` runs every chunk (:func:`run_chunk`, or a compiled twin)."""
    c = p.components
    how = plan(p, chunk_size)
    acc, mom = initial(p, initial_state)
    step_gates = dict(p.gates)
    if c.algorithm.implicit:
        step_gates["lr"] = implicit_lr(step_gates["lr"], p.k)
    sizes = [e - s for s, e in how.bounds]
    coefs = coefficients(p, how.bounds).chunks(sizes)
    graph = needs_graph(p.q, p.k, p.v, *p.gates.values(), *(initial_state or {}).values())

    def split(x: Tensor) -> tuple[Tensor, ...]:  # one backward (a cat) for all chunks, not one per chunk
        return x.split(sizes, dim=2)

    qs, ks, vs = split(p.q), split(p.k), split(p.v)
    gate_chunks = {name: split(g) for name, g in step_gates.items()}
    outputs = []
    for m in range(len(sizes)):
        gates = {name: chunks[m] for name, chunks in gate_chunks.items()}
        x = Chunk(qs[m], ks[m], vs[m], gates, coefs[m], how.project_last[m])
        y, acc, mom = step(c, x, acc, mom, how, graph, dual)
        outputs.append(y)
    out = torch.cat(outputs, dim=2).transpose(1, 2)
    return out, (final(acc, mom) if output_final_state else None)


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkPlan",
    "ChunkStep",
    "Coefficients",
    "DualRead",
    "Factors",
    "coefficients",
    "dual_linear",
    "plan",
    "run_chunk",
    "scan",
    "state_free",
]
