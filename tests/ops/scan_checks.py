"""What the scan tests share: random leaves for a spec, a run that returns the outputs, the final
state and every gradient, and the comparison by relative RMS error (:func:`miras.bench.peers.rel_rms`).

Leaves are named ``q``, ``k``, ``v`` ``[B, T, H, D]``, ``gate.<name>`` ``[B, T, H(, D)]`` and
``state.<name>`` ``[B, H, out, in]``; results ``out``, ``final.<name>`` and ``d.<leaf>``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from miras.bench.inputs import gates_of, state_of
from miras.bench.peers import rel_rms
from miras.ops.common import prepare, resolve
from miras.space import Components, MirasSpec

Tensors = dict[str, torch.Tensor]


def random_leaves(
    spec: MirasSpec,
    shape: tuple[int, int, int, int, int],
    gate: Callable[[str, torch.Tensor], torch.Tensor],
    *,
    width: Callable[[str], int | None] = lambda name: None,
    state_scale: float | None = 1.0,
    seed: int = 0,
) -> Tensors:
    """fp64 leaves for ``spec`` at ``shape = (B, T, H, D_k, D_v)``, drawn from one generator in
    this order: ``q``, ``k`` (both unit norm), ``v``, each required gate (``gate(name, raw)`` maps a
    standard normal ``raw`` of ``[B, T, H]``, or ``[B, T, H, width(name)]`` when that is not
    ``None``, into the gate's range), then, unless ``state_scale`` is ``None``, each memory weight
    (standard normal times ``state_scale``) and its momentum (times 0.1)."""
    batch, length, heads, d_k, d_v = shape
    gen = torch.Generator().manual_seed(seed)

    def randn(*size: int) -> torch.Tensor:
        return torch.randn(*size, generator=gen, dtype=torch.float64)

    c = spec.resolve()
    leaves = {
        "q": F.normalize(randn(batch, length, heads, d_k), dim=-1),
        "k": F.normalize(randn(batch, length, heads, d_k), dim=-1),
        "v": randn(batch, length, heads, d_v),
    }
    for name in c.required_gates():
        channels = width(name)
        raw = randn(batch, length, heads) if channels is None else randn(batch, length, heads, channels)
        leaves[f"gate.{name}"] = gate(name, raw)
    if state_scale is not None:
        for name, (rows, cols) in c.memory.shapes(d_k, d_v).items():
            leaves[f"state.{name}"] = state_scale * randn(batch, heads, rows, cols)
            if c.algorithm.momentum:
                leaves[f"state.momentum.{name}"] = 0.1 * randn(batch, heads, rows, cols)
    return leaves


def scan_args(leaves: Tensors) -> tuple[Tensors, Tensors | None]:
    """The gates and the initial state (``None`` when absent) among ``leaves``."""
    return gates_of(leaves), state_of(leaves) or None


def run(scan: Callable, spec: MirasSpec, leaves: Tensors, **kwargs: object) -> Tensors:
    """``out``, ``final.<name>`` and the gradient ``d.<leaf>`` of every leaf (taken as a fresh copy,
    in its own dtype) for a fixed random cotangent; ``kwargs`` go to ``scan``."""
    leaves = {n: x.detach().clone().requires_grad_() for n, x in leaves.items()}
    gates, state = scan_args(leaves)
    out, final = scan(
        leaves["q"], leaves["k"], leaves["v"], spec, gates, initial_state=state, output_final_state=True, **kwargs
    )
    results = {"out": out} | {f"final.{n}": s for n, s in final.items()}
    gen = torch.Generator().manual_seed(7)
    cotangents = [torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.dtype) for x in results.values()]
    loss = sum((x * w).sum() for x, w in zip(results.values(), cotangents, strict=True))
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return results | {f"d.{n}": g for n, g in zip(leaves, grads, strict=True)}


def errors_above(got: Tensors, want: Tensors, tol: dict[str, float]) -> dict[str, str]:
    """``"error > bound"`` for every result of ``got`` whose relative RMS error against ``want``
    exceeds its bound in ``tol``; ``got`` and ``want`` name the same results."""
    assert got.keys() == want.keys()
    errors = {name: rel_rms(got[name], want[name]) for name in want}
    return {name: f"{e:.1e} > {tol[name]:.1e}" for name, e in errors.items() if not e <= tol[name]}


def assert_close(got: Tensors, want: Tensors, tol: float) -> None:
    """Every result of ``got`` within relative RMS error ``tol`` of ``want``'s."""
    bad = errors_above(got, want, dict.fromkeys(want, tol))
    assert not bad, f"relative RMS errors: {bad}"


def kernel_scan(scan: Callable, unsupported: Callable) -> Callable:
    """One kernel's prepared-problem ``scan`` with :func:`miras.ops.miras_scan`'s arguments, refusing
    with ``ValueError("... does not apply: <reason>")`` what ``unsupported(problem, chunk_size)`` refuses."""

    def run_kernel(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        spec: MirasSpec | Components,
        gates: Tensors,
        *,
        initial_state: Tensors | None = None,
        output_final_state: bool = False,
        chunk_size: int | None = None,
    ) -> tuple[torch.Tensor, Tensors | None]:
        problem = prepare(q, k, v, resolve(spec), gates)
        reason = unsupported(problem, chunk_size)
        if reason is not None:
            raise ValueError(f"the kernel does not apply: {reason}")
        return scan(problem, initial_state=initial_state, output_final_state=output_final_state, chunk_size=chunk_size)

    return run_kernel
