"""Softmax attention with RoPE (Transformer++) and its sliding-window variant, with a KV cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import rotary


@dataclass
class KVCache:
    """Keys and values seen so far ``[B, H, S, D]`` (the last ``window`` for SWA) and the position."""

    keys: Tensor
    values: Tensor
    position: int


class Attention(nn.Module):
    """Causal multi-head softmax attention with RoPE; ``window`` limits it to the last tokens.

    ``forward``: ``x`` ``[B, T, d_model]`` -> ``[B, T, d_model]``.
    """

    def __init__(self, d_model: int, n_heads: int, window: int | None = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads, self.head_dim, self.window = n_heads, d_model // n_heads, window
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, length, _ = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def forward(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        q, k, v = self._heads(x)
        positions = torch.arange(length, device=x.device)
        q, k = rotary(q, positions), rotary(k, positions)
        if self.window is None or self.window >= length:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            distance = positions[:, None] - positions[None, :]
            mask = (distance >= 0) & (distance < self.window)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(o.transpose(1, 2).reshape(batch, length, -1))

    def empty_cache(self, batch: int, like: Tensor) -> KVCache:
        empty = like.new_zeros(batch, self.n_heads, 0, self.head_dim)
        return KVCache(empty, empty, 0)

    def step(self, x: Tensor, cache: KVCache) -> tuple[Tensor, KVCache]:
        """One token ``x`` ``[B, d_model]`` -> ``[B, d_model]``."""
        q, k, v = self._heads(x.unsqueeze(1))
        position = torch.tensor([cache.position], device=x.device)
        q, k = rotary(q, position), rotary(k, position)
        keys, values = torch.cat([cache.keys, k], 2), torch.cat([cache.values, v], 2)
        if self.window is not None:
            keys, values = keys[:, :, -self.window :], values[:, :, -self.window :]
        o = F.scaled_dot_product_attention(q, keys, values)
        return self.out(o.reshape(x.shape[0], -1)), KVCache(keys, values, cache.position + 1)

    def state_size(self, seq_len: int) -> int:
        """Scalars of the KV cache after ``seq_len`` tokens (per sequence)."""
        kept = seq_len if self.window is None else min(self.window, seq_len)
        return 2 * kept * self.n_heads * self.head_dim

    def flops_per_token(self, seq_len: int) -> int:
        """Score and weighted-sum FLOPs per token at the mean causal context (projections excluded)."""
        context = (seq_len + 1) / 2 if self.window is None else min(self.window, (seq_len + 1) / 2)
        return int(4 * context * self.n_heads * self.head_dim)
