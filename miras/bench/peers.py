"""Published implementations benchmarked beside ours, each aligned with one of our presets.

- ``titans_pytorch``: titans-pytorch ``NeuralMemory`` aligned with the ``titans`` preset
  (docs/oracles.md: heads 1 on ``B*H`` sequences, ``chunk_size=1``, ``batch_size`` = our b, the
  LayerNorm gain frozen at 0), CPU or GPU; its timings include its q/k/v/gate projections.
- ``fla_gated_delta``: fla's Triton kernel ``chunk_gated_delta_rule`` aligned with the
  ``gated_deltanet`` preset (``g = log(decay)``, ``beta = lr``, ``scale = 1``, state ``S = W^T``);
  CUDA only.

Both packages are imported lazily (the ``oracles`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..ops import miras_scan
from ..space import PRESETS
from .inputs import Leaves, Results, gates_of, make_inputs, scan_outputs, state_of, weighted_sum, with_gradients

Workload = tuple[Callable[[], Tensor], list[Tensor]]
"""``(forward, params)``: ``forward()`` returns the scalar to differentiate w.r.t. ``params``."""


def rel_rms(x: Tensor, ref: Tensor) -> float:
    """``||x - ref|| / ||ref||`` (root mean squares), in fp64; 0 when equal."""
    diff = (x.double() - ref.double()).pow(2).mean().sqrt()
    return 0.0 if diff == 0 else (diff / ref.double().pow(2).mean().sqrt()).item()


@dataclass(frozen=True)
class Peer:
    """A published implementation aligned with ``preset``."""

    name: str
    preset: str
    cuda_only: bool
    check: Callable[[str], float]
    """``check(device)``: max rel-RMS against our reference at a small shape."""
    workload: Callable[[int, int, int, int, torch.dtype, str], Workload]
    """``workload(batch, length, heads, dim, dtype, device)``."""
    tolerance: float


# ---------------------------------------------------------------------------------------------
# titans-pytorch


def neural_memory(dim: int, batch_size: int) -> torch.nn.Module:
    """titans-pytorch ``NeuralMemory`` at the configuration aligned with the ``titans`` preset."""
    from titans_pytorch import NeuralMemory
    from titans_pytorch.memory_models import MemoryMLP, ResidualNorm

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ResidualNorm(dim, MemoryMLP(dim, depth=2, expansion_factor=4.0))
        del model.norm.gamma  # our memory has no learned LayerNorm gain: freeze it at 0
        model.norm.gamma = torch.zeros(dim)
        return NeuralMemory(
            dim, chunk_size=1, batch_size=batch_size, heads=1, model=model, mem_model_norm_add_residual=False
        )


def titans_weights(weights) -> dict[str, Tensor]:
    """titans-pytorch's ``x @ P`` weights ``[B, in, out]`` as our ``W1, W2`` ``[B, 1, out, in]``."""
    names = {"model.weights.0": "W1", "model.weights.1": "W2"}
    return {names[n]: w.transpose(-1, -2).unsqueeze(1) for n, w in weights.items()}


def titans_batch_size() -> int:
    return PRESETS["titans"].spec.canonical()["algorithm"]["params"]["batch_size"]


def check_titans(device: str) -> float:
    """rel-RMS of titans-pytorch's retrieved outputs and final weights against our reference (fp64).

    Aligned as in tests/ops/test_oracles.py: ``lr = 2 lr_theirs / D``, its own gates.
    """
    b = titans_batch_size()
    dim, batch, length = 16, 2, 2 * b + 5
    memory = neural_memory(dim, b).to(device=device, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    seq = torch.randn(batch, length, dim, generator=gen, dtype=torch.float64).to(device)
    retrieved, state, (_, lr) = memory(seq, return_surprises=True)
    with torch.no_grad():
        stored = memory.store_norm(seq)
        q = memory.to_queries(memory.retrieve_norm(seq)).unsqueeze(2)
        k, v = memory.to_keys(stored).unsqueeze(2), memory.to_values(stored).unsqueeze(2)
        gates = {
            "lr": 2 * lr.transpose(1, 2) / dim,
            "decay": 1 - memory.to_decay_factor(stored).sigmoid().view(batch, length, 1),
            "momentum": memory.to_momentum(stored).sigmoid()[0].view(batch, length, 1),
        }
        start = titans_weights(memory.init_weights(batch))
        spec = PRESETS["titans"].spec
        out, final = miras_scan(q, k, v, spec, gates, impl="reference", initial_state=start, output_final_state=True)
    errors = [rel_rms(out[:, :, 0], retrieved)]
    errors += [rel_rms(final[n], w) for n, w in titans_weights(state.states[0]).items()]
    return max(errors)


def titans_workload(batch: int, length: int, heads: int, dim: int, dtype: torch.dtype, device: str) -> Workload:
    """``NeuralMemory`` on ``B * H`` sequences of width ``D`` (heads 1): the same memories as ours."""
    memory = neural_memory(dim, titans_batch_size()).to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    seq = torch.randn(batch * heads, length, dim, generator=gen).to(device=device, dtype=dtype).requires_grad_()

    def forward() -> Tensor:
        retrieved, _ = memory(seq)
        return weighted_sum([retrieved])

    return forward, [seq, *memory.parameters()]


# ---------------------------------------------------------------------------------------------
# fla


def fla_chunk_kernel() -> Callable[..., tuple[Tensor, Tensor]]:
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

    return chunk_gated_delta_rule


def fla_gated_delta_outputs(leaves: Leaves, kernel: Callable[..., tuple[Tensor, Tensor]]) -> Results:
    """Outputs ``o`` ``[B, T, H, D]`` and final ``state W`` ``[B, H, D_v, D_k]`` of fla's gated delta
    rule ``kernel`` (``chunk_gated_delta_rule`` or a naive twin with the same keywords) on our leaves,
    named as :func:`~miras.bench.inputs.scan_outputs` names ours."""
    gates, start = gates_of(leaves), state_of(leaves)
    out, final = kernel(
        q=leaves["q"],
        k=leaves["k"],
        v=leaves["v"],
        g=gates["decay"].log(),
        beta=gates["lr"],
        scale=1.0,
        initial_state=start["W"].mT.contiguous(),
        output_final_state=True,
    )
    return {"o": out, "state W": final.mT}


def check_fla_gated_delta(device: str, kernel: Callable[..., tuple[Tensor, Tensor]] | None = None) -> float:
    """Max rel-RMS of fla's outputs, final state and gradients (fp32 on ``device``) against our
    reference (fp64) on the same leaves, at B=2, T=100, H=2, D=32."""
    kernel = kernel or fla_chunk_kernel()
    results = {}
    for dtype, run in ((torch.float64, None), (torch.float32, kernel)):
        leaves = make_inputs("gated_deltanet", 2, 100, 2, 32, dtype, device, seed=1)
        if run is None:
            outputs = scan_outputs("gated_deltanet", "reference", leaves, final_state=True)
        else:
            outputs = fla_gated_delta_outputs(leaves, run)
        results[dtype] = with_gradients(outputs, leaves)
    want = results[torch.float64]
    return max(rel_rms(got, want[name]) for name, got in results[torch.float32].items())


def fla_workload(batch: int, length: int, heads: int, dim: int, dtype: torch.dtype, device: str) -> Workload:
    """fla's chunk kernel on the ``gated_deltanet`` leaves at the benchmark shape."""
    leaves = make_inputs("gated_deltanet", batch, length, heads, dim, dtype, device)
    kernel = fla_chunk_kernel()
    return (lambda: weighted_sum([fla_gated_delta_outputs(leaves, kernel)["o"]])), list(leaves.values())


PEERS = {
    peer.name: peer
    for peer in (
        Peer("titans_pytorch", "titans", False, check_titans, titans_workload, 1e-10),
        Peer("fla_gated_delta", "gated_deltanet", True, check_fla_gated_delta, fla_workload, 5e-3),
    )
}
"""Tolerances: titans-pytorch runs in fp64 here; fla's kernel in fp32 (fla's tests allow 5e-3
relative error for its kernels)."""

__all__ = ["PEERS", "Peer", "Workload", "check_fla_gated_delta", "fla_gated_delta_outputs", "rel_rms"]
