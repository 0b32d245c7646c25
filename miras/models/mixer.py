"""The Miras mixer: the paper's block around one associative memory (spec §8).

q, k, v projections, each followed by a causal depthwise convolution (kernel 4) and SiLU;
l2-normalised q and k; data-dependent gates from low-rank projections; a multi-head memory
computed by :func:`miras.ops.miras_scan`; per-head output RMSNorm, a SiLU-gated linear output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import miras_scan
from ..ops.reference import StepState, reference_step, start_state
from ..space import Components, MirasSpec
from .gates import Gate, GateKind
from .layers import CausalConv, RMSNorm

DEFAULT_GATE_KINDS: dict[str, GateKind] = {"lr": "data", "decay": "data", "momentum": "data", "delta": "data"}


def gate_start(name: str, deep: bool) -> float:
    """Initial value of a gate (see :mod:`miras.models.gates`)."""
    return {"lr": 0.1 if deep else 0.5, "decay": 0.99, "momentum": 0.9, "delta": 1.0}[name]


@dataclass
class MixerCache:
    """Decoding state of one mixer: the conv windows and the memory's step state."""

    convs: tuple[Tensor, Tensor, Tensor]
    memory: StepState


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
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.impl = impl
        self.components: Components = spec.resolve()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.proj = nn.ModuleDict({n: nn.Linear(d_model, d_model, bias=False) for n in "qkv"})
        self.conv = nn.ModuleDict({n: CausalConv(d_model, conv_size) for n in "qkv"})
        shapes = self.components.memory.shapes(self.head_dim, self.head_dim)
        deep = len(shapes) > 1
        kinds = DEFAULT_GATE_KINDS | (gate_kinds or {})
        self.gates = nn.ModuleDict(
            {
                name: Gate(
                    name, kinds[name], d_model, n_heads, self.head_dim, min(gate_rank, d_model), gate_start(name, deep)
                )
                for name in self.components.required_gates()
            }
        )
        self.initial = nn.ParameterDict(
            {name: nn.Parameter(self._init_weight(n_heads, rows, cols, deep)) for name, (rows, cols) in shapes.items()}
        )
        self.out_norm = RMSNorm(self.head_dim)
        self.out_gate = nn.Linear(d_model, d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    @staticmethod
    def _init_weight(heads: int, rows: int, cols: int, deep: bool) -> Tensor:
        """Learned initial memory: zeros for a linear memory; a deep memory needs nonzero
        weights (zero is a fixed point of its updates)."""
        return torch.randn(heads, rows, cols) / cols**0.5 if deep else torch.zeros(heads, rows, cols)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, length, _ = x.shape
        heads = [self.conv[n](self.proj[n](x)).view(batch, length, self.n_heads, self.head_dim) for n in "qkv"]
        q, k, v = heads
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), v

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
        q, k, v = F.normalize(heads[0], dim=-1), F.normalize(heads[1], dim=-1), heads[2]
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
