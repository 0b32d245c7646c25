"""The specification: a plain loop over tokens, mini-batch by mini-batch.

Per-token gradients come from autograd of the bias's *loss* (never its closed-form error
signal), so this loop also checks every closed form used by the fast paths. Keep it short.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..space import AttentionalBias, Components, MirasSpec
from .common import State, final, implicit_lr, initial, minibatches, prepare, weight_gate


def token_gradient(c: Components, weights: State, k: Tensor, v: Tensor, gates: dict[str, Tensor]) -> State:
    """``eta * dl/dW`` of one token at ``weights`` (``[B, H, out, in]``); ``k``, ``v`` ``[B, H, 1, D]``.

    The learning rate scales the output-space error signal (so a channel-wise ``eta`` acts per
    value channel); the gradient is the vector-Jacobian product of the memory at ``weights``.
    """
    pred, pullback = torch.func.vjp(lambda w: c.memory.forward(w, k), weights)
    signal = AttentionalBias.error(c.bias, pred, v, gates)
    (grad,) = pullback(gates["lr"] * signal)
    return grad


def reference_scan(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    spec: MirasSpec | Components,
    gates: dict[str, Tensor],
    *,
    initial_state: State | None = None,
    output_final_state: bool = False,
) -> tuple[Tensor, State | None]:
    """Run the memory over the sequence token by token. Arguments as :func:`miras.ops.miras_scan`."""
    p = prepare(q, k, v, spec, gates)
    c, alg = p.components, p.components.algorithm
    acc, mom = initial(p, initial_state)
    ones = p.k.new_ones((*p.k.shape[:2], 1))
    gate_at = {name: (lambda t, g=g: g[:, :, t]) for name, g in p.gates.items()}
    outputs = []
    for start, end in minibatches(p.length, alg.params.batch_size, alg.params.lag_token):
        start_weights = {n: c.retention.project(a) for n, a in acc.items()}
        start_acc = dict(acc)
        cum_decay = ones
        read = start_weights
        for t in range(start, end):
            step_gates = {name: at(t).unsqueeze(2) for name, at in gate_at.items()}
            decay = step_gates["decay"] if c.retention.uses_decay else ones.unsqueeze(2)
            cum_decay = cum_decay * decay.squeeze(2)
            k_t, v_t = p.k[:, :, t : t + 1], p.v[:, :, t : t + 1]
            if alg.implicit:
                step_gates["lr"] = implicit_lr(step_gates["lr"], k_t)
            at = start_weights
            if alg.params.grad_at == "decayed":
                at = {n: weight_gate(cum_decay) * w for n, w in start_weights.items()}
            acc = {n: weight_gate(decay.squeeze(2)) * a for n, a in acc.items()}
            for step in range(alg.steps):
                if step > 0:
                    at = {n: c.retention.project(a) for n, a in acc.items()}
                grad = token_gradient(c, at, k_t, v_t, step_gates)
                if alg.momentum:
                    mu = weight_gate(step_gates["momentum"].squeeze(2))
                    mom = {n: mu * mom[n] - grad[n] for n in mom}
                    acc = {n: acc[n] + mom[n] for n in acc}
                else:
                    acc = {n: acc[n] - grad[n] for n in acc}
            previous = read
            if t == end - 1:
                read = {n: c.retention.project(a) for n, a in acc.items()}
            elif c.retention.identity:
                read = acc
            else:  # inside a mini-batch the weights move linearly from the start weights
                scale = weight_gate(cum_decay)
                read = {n: scale * start_weights[n] + acc[n] - scale * start_acc[n] for n in acc}
            use = read if alg.params.read == "after_write" else previous
            outputs.append(c.memory.forward(use, p.q[:, :, t : t + 1]))
    out = torch.cat(outputs, dim=2).transpose(1, 2)
    return out, (final(acc, mom) if output_final_state else None)


__all__ = ["reference_scan", "token_gradient"]
