"""The Miras mixer: the paper's block around one associative memory (spec §8).

q, k, v projections, each followed by a causal depthwise convolution (kernel 4) and SiLU;
l2-normalised q and k (to unit norm, or to unit RMS: ``qk_norm``); values RMS-normalised per head
(``value_norm``); data-dependent gates from low-rank projections; a multi-head memory computed by
:func:`miras.ops.miras_scan`; per-head output RMSNorm, a SiLU-gated linear output.

Scales (docs/semantics.md, "Scales"): a memory with a normalised output (the residual LayerNorm
MLP) is built for inputs and targets of unit RMS, a linear memory for unit-norm keys; ``auto``
gives each memory its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import miras_scan
from ..ops.probe import observe_errors
from ..ops.reference import StepState, reference_step, start_state
from ..space import Components, MirasSpec
from ..space.gates import GateKind
from .gates import Gate
from .layers import CausalConv, RMSNorm

ValueNorm = Literal["auto", "none", "rms"]
"""How values are scaled before the memory learns them: ``rms`` (RMSNorm per head, so values
have the scale of a normalised memory output), ``none`` (the projection's own scale), ``auto``
(``rms`` exactly when the memory's output is normalised: the residual LayerNorm MLP)."""
QKNorm = Literal["auto", "l2", "rms"]
"""How q and k are normalised: ``l2`` (unit l2 norm, the paper's wording), ``rms`` (unit RMS, i.e.
norm sqrt(D): the scale a fan-in initialised MLP expects), ``auto`` (``rms`` exactly when the
memory's output is normalised and its weights are free, :attr:`Retention.free_weights`)."""


@dataclass
class MixerCache:
    """Decoding state of one mixer: the conv windows and the memory's step state."""

    convs: tuple[Tensor, Tensor, Tensor]
    memory: StepState


def _rms(x: Tensor) -> Tensor:
    """Root mean square over the last dimension, averaged over the finite rest."""
    rms = x.float().pow(2).mean(-1).sqrt()
    return rms[torch.isfinite(rms)].mean()


class MirasMixer(nn.Module):
    """``x`` ``[B, T, d_model]`` -> ``[B, T, d_model]`` through a Miras memory of ``n_heads`` heads."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        spec: MirasSpec,
        gate_kinds: dict[str, GateKind] | None = None,
        gate_rank: int = 32,
        conv_size: int = 4,
        impl: str = "auto",
        value_norm: ValueNorm = "auto",
        qk_norm: QKNorm = "auto",
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.impl = impl
        self.components: Components = spec.resolve()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.proj = nn.ModuleDict({n: nn.Linear(d_model, d_model, bias=False) for n in "qkv"})
        self.conv = nn.ModuleDict({n: CausalConv(d_model, conv_size) for n in "qkv"})
        normalized = self.components.memory.normalized_output
        if value_norm == "auto":
            value_norm = "rms" if normalized else "none"
        self.value_norm = RMSNorm(self.head_dim) if value_norm == "rms" else None
        if qk_norm == "auto":
            qk_norm = "rms" if normalized and self.components.retention.free_weights else "l2"
        self.qk_scale = self.head_dim**0.5 if qk_norm == "rms" else 1.0
        shapes = self.components.memory.shapes(self.head_dim, self.head_dim)
        deep = len(shapes) > 1
        kinds = gate_kinds or {}
        rank = min(gate_rank, d_model)
        self.gates = nn.ModuleDict(
            {
                spec.name: Gate(spec, kinds.get(spec.name, "data"), d_model, n_heads, self.head_dim, rank, deep)
                for spec in self.components.gate_specs()
            }
        )
        self.initial = nn.ParameterDict(
            {name: nn.Parameter(self._init_state(n_heads, rows, cols, deep)) for name, (rows, cols) in shapes.items()}
        )
        self.out_norm = RMSNorm(self.head_dim)
        self.out_gate = nn.Linear(d_model, d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def _init_state(self, heads: int, rows: int, cols: int, deep: bool) -> Tensor:
        """Learned initial accumulator ``[H, rows, cols]``: zeros for a linear memory; for a deep
        memory (zero is a fixed point of its updates) the accumulator whose weights, through the
        retention's mirror map, are ``N(0, 1/cols)``."""
        if not deep:
            return torch.zeros(heads, rows, cols)
        return self.components.retention.initial_accumulator(torch.randn(heads, rows, cols) / cols**0.5)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x`` ``[B, T, d_model]`` -> ``q``, ``k``, ``v`` ``[B, T, H, D]``."""
        batch, length, _ = x.shape
        heads = [self.conv[n](self.proj[n](x)).view(batch, length, self.n_heads, self.head_dim) for n in "qkv"]
        return self._normalize(*heads)

    def _normalize(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``qk_norm`` on ``q`` and ``k``, ``value_norm`` on ``v`` (heads ``[..., D]``)."""
        q, k = (self.qk_scale * F.normalize(h, dim=-1) for h in (q, k))
        return q, k, v if self.value_norm is None else self.value_norm(v)

    def _initial_state(self, batch: int) -> dict[str, Tensor]:
        return {name: w.expand(batch, *w.shape) for name, w in self.initial.items()}

    def _output(self, o: Tensor, x: Tensor) -> Tensor:
        """``o`` ``[B, T, H, D]``, ``x`` ``[B, T, d_model]`` -> ``[B, T, d_model]``."""
        o = self.out_norm(o).flatten(-2)
        return self.out_proj(o * F.silu(self.out_gate(x)))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._qkv(x)
        gates = {name: gate(x).to(q.dtype) for name, gate in self.gates.items()}
        initial = {n: w.to(q.dtype) for n, w in self._initial_state(x.shape[0]).items()}
        o, _ = miras_scan(q, k, v, self.components, gates, initial_state=initial, impl=self.impl)
        return self._output(o.to(x.dtype), x)

    @torch.no_grad()
    def health(self, x: Tensor) -> dict[str, float]:
        """Diagnostics of this layer on ``x`` ``[B, T, d_model]`` (docs/health.md).

        ``value_rms`` and ``output_rms`` (the memory's read), ``error_rms`` (``M(W*; k) - v`` at
        the weights each token is differentiated at), ``nonfinite`` (outputs that are not finite),
        ``gate/<name>/{mean,p05,p95}`` and, for a bounded gate, ``gate/<name>/upper`` (its range's
        top, :attr:`GateSpec.upper`; gates fixed to 1 left out), and the bias's own diagnostics
        (Huber: ``l2_share``), each averaged over the mini-batches. The scan runs ``chunked``,
        which reports its errors.
        """
        q, k, v = self._qkv(x)
        gates = {name: gate(x).to(q.dtype) for name, gate in self.gates.items()}
        initial = {n: w.to(q.dtype) for n, w in self._initial_state(x.shape[0]).items()}
        seen: list[dict[str, Tensor]] = []
        bias = self.components.bias

        def watch(pred: Tensor, target: Tensor, chunk_gates: dict[str, Tensor]) -> None:
            found = {"error_rms": _rms(pred - target)} | bias.diagnostics(pred, target, chunk_gates)
            seen.append(found)

        with observe_errors(watch):
            o, _ = miras_scan(q, k, v, self.components, gates, initial_state=initial, impl="chunked")
        stats = {"value_rms": _rms(v), "output_rms": _rms(o), "nonfinite": (~torch.isfinite(o)).sum().float()}
        for name in seen[0] if seen else ():
            stats[name] = torch.stack([entry[name] for entry in seen]).mean()
        for name, gate in gates.items():
            if self.gates[name].kind == "one":
                continue  # fixed to 1 by construction
            values = gate.flatten().float()
            low, high = torch.quantile(values[: 2**24], values.new_tensor([0.05, 0.95]))
            stats |= {f"gate/{name}/mean": values.mean(), f"gate/{name}/p05": low, f"gate/{name}/p95": high}
            upper = self.gates[name].spec.upper
            if upper is not None:
                stats[f"gate/{name}/upper"] = torch.tensor(upper)
        return {name: float(value) for name, value in stats.items()}

    def empty_cache(self, batch: int, like: Tensor) -> MixerCache:
        convs = tuple(self.conv[n].empty_cache(batch, like) for n in "qkv")
        accumulators = {n: w.to(like.dtype) for n, w in self._initial_state(batch).items()}
        momenta = (
            {n: torch.zeros_like(a) for n, a in accumulators.items()} if self.components.algorithm.momentum else {}
        )
        return MixerCache(convs, start_state(self.components, accumulators, momenta))  # type: ignore[arg-type]

    def step(self, x: Tensor, cache: MixerCache) -> tuple[Tensor, MixerCache]:
        """One token ``x`` ``[B, d_model]`` -> ``[B, d_model]`` (the reference step: exact)."""
        batch = x.shape[0]
        heads, convs = [], []
        for name, conv_cache in zip("qkv", cache.convs, strict=True):
            h, conv_cache = self.conv[name].step(self.proj[name](x), conv_cache)
            heads.append(h.view(batch, self.n_heads, 1, self.head_dim))
            convs.append(conv_cache)
        q, k, v = self._normalize(*heads)
        gates = {}
        for name, gate in self.gates.items():
            g = gate(x.unsqueeze(1))[:, 0]  # [B, H] or [B, H, D]
            gates[name] = (g if g.dim() == 3 else g.unsqueeze(-1)).unsqueeze(2)  # [B, H, 1, 1|D]
        y, memory = reference_step(self.components, cache.memory, q, k, v, gates)
        out = self._output(y.transpose(1, 2), x.unsqueeze(1))[:, 0]
        return out, MixerCache(tuple(convs), memory)  # type: ignore[arg-type]

    def state_size(self) -> int:
        """Scalars of the recurrent memory state per sequence: weights (and momenta) of every head."""
        per_head = self.components.memory.state_size(self.head_dim, self.head_dim)
        return per_head * self.n_heads * (2 if self.components.algorithm.momentum else 1)

    def memory_flops_per_token(self) -> int:
        """FLOPs of the memory per token: about 3 passes over the weights (predict, back-propagate
        the error, read) plus the update, 2 FLOPs per multiply-add."""
        per_head = self.components.memory.state_size(self.head_dim, self.head_dim)
        return 8 * per_head * self.n_heads
