"""The specification: one token at a time.

:func:`reference_step` advances the memory by one token; :func:`scan` (``impl="reference"``)
loops it over a sequence, and token-by-token decoding calls it directly, so decoding and the specification are
the same code. Per-token gradients come from autograd of the bias's *loss* (never its
closed-form error signal), so this loop also checks every closed form used by the fast paths.
Keep it short: docs/semantics.md states the same rules in words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..space import AttentionalBias, Components
from .common import ScanProblem, State, closes_minibatch, final, implicit_lr, initial


@dataclass(frozen=True)
class StepState:
    """Everything token ``position`` needs: the state and the current mini-batch's start."""

    position: int
    accumulators: State
    momenta: State
    start_weights: State
    """``psi(A)`` at the start of the current mini-batch."""
    start_accumulators: State
    cum_decay: Tensor
    """Product of the decays since the mini-batch start, ``[B, H, 1, 1|D]``: per-token gates
    ``[B, H, 1, 1|D]`` broadcast over weights ``[B, H, out, in]`` on the input dimension."""
    read: State
    """The weights the previous token read (for ``read: before_write``)."""

    def memory_state(self) -> State:
        """The memory state in the layout of ``miras_scan``'s ``final_state``."""
        return final(self.accumulators, self.momenta)


def start_state(c: Components, accumulators: State, momenta: State) -> StepState:
    """The step state before the first token, from the dual accumulators (and momenta)."""
    weights = {n: c.retention.project(a) for n, a in accumulators.items()}
    some = next(iter(accumulators.values()))
    ones = some.new_ones((*some.shape[:2], 1, 1))
    return StepState(0, accumulators, momenta, weights, accumulators, ones, weights)


def token_gradient(c: Components, weights: State, k: Tensor, v: Tensor, gates: dict[str, Tensor]) -> State:
    """``eta * dl/dW`` of one token at ``weights`` (``[B, H, out, in]``); ``k``, ``v`` ``[B, H, 1, D]``.

    The learning rate scales the output-space error signal (so a channel-wise ``eta`` acts per
    value channel); the gradient is the vector-Jacobian product of the memory at ``weights``.
    """
    pred, pullback = torch.func.vjp(lambda w: c.memory.forward(w, k), weights)
    signal = AttentionalBias.error(c.bias, pred, v, gates)
    (grad,) = pullback(gates["lr"] * signal)
    return grad


def reference_step(
    c: Components, s: StepState, q: Tensor, k: Tensor, v: Tensor, gates: dict[str, Tensor]
) -> tuple[Tensor, StepState]:
    """One token: ``q``, ``k``, ``v`` ``[B, H, 1, D]``, gates ``[B, H, 1, 1|D]`` -> ``y`` ``[B, H, 1, D_v]``."""
    alg = c.algorithm.params
    position = s.position % alg.batch_size
    if position == 0 or (alg.lag_token and position == 1):  # a mini-batch starts here
        weights = {n: c.retention.project(a) for n, a in s.accumulators.items()}
        s = replace(s, start_weights=weights, start_accumulators=s.accumulators, cum_decay=torch.ones_like(s.cum_decay))
    decay = gates["decay"] if c.retention.uses_decay else torch.ones_like(s.cum_decay)
    cum_decay = s.cum_decay * decay
    if c.algorithm.implicit:
        gates = gates | {"lr": implicit_lr(gates["lr"], k)}
    at = s.start_weights
    if alg.grad_at == "decayed":
        at = {n: cum_decay * w for n, w in at.items()}
    acc = {n: decay * a for n, a in s.accumulators.items()}
    mom = s.momenta
    for step in range(c.algorithm.steps):
        if step > 0:
            at = {n: c.retention.project(a) for n, a in acc.items()}
        grad = token_gradient(c, at, k, v, gates)
        if c.algorithm.momentum:
            mom = {n: gates["momentum"] * mom[n] - grad[n] for n in mom}
            acc = {n: acc[n] + mom[n] for n in acc}
        else:
            acc = {n: acc[n] - grad[n] for n in acc}
    if closes_minibatch(s.position, alg.batch_size, alg.lag_token):
        read = {n: c.retention.project(a) for n, a in acc.items()}
    elif c.retention.identity:
        read = acc
    else:  # inside a mini-batch the weights move linearly from the start weights
        scale = cum_decay
        read = {n: scale * s.start_weights[n] + acc[n] - scale * s.start_accumulators[n] for n in acc}
    y = c.memory.forward(read if alg.read == "after_write" else s.read, q)
    return y, replace(s, position=s.position + 1, accumulators=acc, momenta=mom, cum_decay=cum_decay, read=read)


def scan(
    p: ScanProblem, *, initial_state: State | None, output_final_state: bool, chunk_size: int | None
) -> tuple[Tensor, State | None]:
    """Run the memory over the prepared sequence token by token (``chunk_size`` is not used).
    Arguments and returns as :func:`miras.ops.miras_scan`."""
    s = start_state(p.components, *initial(p, initial_state))
    outputs = []
    for t in range(p.length):
        at = slice(t, t + 1)
        y, s = reference_step(
            p.components, s, p.q[:, :, at], p.k[:, :, at], p.v[:, :, at], {n: g[:, :, at] for n, g in p.gates.items()}
        )
        outputs.append(y)
    out = torch.cat(outputs, dim=2).transpose(1, 2)
    return out, (s.memory_state() if output_final_state else None)


__all__ = ["StepState", "reference_step", "scan", "start_state", "token_gradient"]
