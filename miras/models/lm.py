"""Llama-style causal language models: Miras, attention baselines and hybrids.

Every block is pre-RMSNorm: ``x + mixer(norm(x))`` then ``x + SwiGLU(norm(x))`` (or, with
``model.mlp: false``, the mixer alone, as zoology's MQAR models); embeddings are tied to the
output head. A hybrid alternates Miras and sliding-window-attention blocks
(Samba-style: each Miras layer is followed by SWA).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config.schema import ModelConfig
from ..space.architecture import Architecture
from .attention import Attention
from .layers import RMSNorm, SwiGLU
from .mixer import MirasMixer


class Block(nn.Module):
    """Pre-norm residual block: ``x + mixer(norm(x))``, then ``x + mlp(norm(x))`` unless ``mlp`` is off."""

    def __init__(self, d_model: int, mixer: nn.Module, mlp: bool = True) -> None:
        super().__init__()
        self.mixer_norm, self.mixer = RMSNorm(d_model), mixer
        self.mlp_norm, self.mlp = (RMSNorm(d_model), SwiGLU(d_model)) if mlp else (None, None)

    def _mlp(self, x: Tensor) -> Tensor:
        return x if self.mlp is None else x + self.mlp(self.mlp_norm(x))

    def forward(self, x: Tensor) -> Tensor:
        return self._mlp(x + self.mixer(self.mixer_norm(x)))

    def step(self, x: Tensor, cache: object) -> tuple[Tensor, object]:
        y, cache = self.mixer.step(self.mixer_norm(x), cache)
        return self._mlp(x + y), cache


class LanguageModel(nn.Module):
    """Causal LM: ``ids`` ``[B, T]`` -> logits ``[B, T, vocab]``; ``step`` decodes one token.

    ``config``: the size and options of :class:`miras.config.schema.ModelConfig` at one width.
    """

    def __init__(self, arch: Architecture, vocab_size: int, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config.d_model, int):
            raise ValueError(f"a model has one width; got the ladder d_model={config.d_model} (use config.at(width))")
        d_model, n_heads = config.d_model, config.n_heads
        self.arch, self.vocab_size, self.model_config = arch, vocab_size, config
        self.embed = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.embed_scale = d_model**0.5 if config.embed_scale == "sqrt_d" else 1.0
        blocks = []
        for kind in arch.layer_kinds(config.n_layers):
            if kind == "miras":
                assert arch.spec is not None
                mixer: nn.Module = MirasMixer(
                    d_model,
                    n_heads,
                    arch.spec,
                    arch.gate_kinds,
                    gate_rank=config.gate_rank,
                    conv_size=config.conv_size,
                    impl=config.impl,
                    value_norm=config.value_norm,
                    qk_norm=config.qk_norm,
                )
            else:
                mixer = Attention(d_model, config.heads_of_attention, arch.window)
            blocks.append(Block(d_model, mixer, config.mlp))
        self.blocks = nn.ModuleList(blocks)
        self.norm = RMSNorm(d_model)

    def _embed(self, ids: Tensor) -> Tensor:
        """``ids`` ``[...]`` -> the residual stream's start ``[..., d_model]`` (``model.embed_scale``)."""
        return self.embed_scale * self.embed(ids)

    def forward(self, ids: Tensor) -> Tensor:
        x = self._embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.embed.weight.t()

    @torch.no_grad()
    def health(self, ids: Tensor) -> dict[str, float]:
        """Diagnostics of every Miras layer on ``ids`` ``[B, T]`` (:meth:`MirasMixer.health`),
        keyed ``layer<i>/<name>``; empty for attention-only models."""
        inputs: dict[int, Tensor] = {}
        hooks = [
            block.mixer.register_forward_pre_hook(lambda _, args, i=i: inputs.__setitem__(i, args[0]))
            for i, block in enumerate(self.blocks)
            if isinstance(block.mixer, MirasMixer)
        ]
        try:
            self(ids)
        finally:
            for hook in hooks:
                hook.remove()
        out = {}
        for i, x in inputs.items():
            out |= {f"layer{i}/{name}": value for name, value in self.blocks[i].mixer.health(x).items()}
        return out

    def empty_cache(self, batch: int) -> list[object]:
        like = self.embed.weight
        return [block.mixer.empty_cache(batch, like) for block in self.blocks]

    @torch.no_grad()
    def step(self, ids: Tensor, cache: list[object]) -> tuple[Tensor, list[object]]:
        """One token per sequence: ``ids`` ``[B]`` -> logits ``[B, vocab]`` and the new cache."""
        x = self._embed(ids)
        new_cache = []
        for block, layer_cache in zip(self.blocks, cache, strict=True):
            x, layer_cache = block.step(x, layer_cache)
            new_cache.append(layer_cache)
        return self.norm(x) @ self.embed.weight.t(), new_cache

    def num_params(self, non_embedding: bool = False) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total - self.embed.weight.numel() if non_embedding else total

    def state_size(self, seq_len: int) -> int:
        """Scalars carried per sequence when decoding, after ``seq_len`` tokens: every Miras
        memory's weights and momenta, plus every attention layer's KV cache. Convolution windows
        (3 x (kernel-1) x d_model per Miras layer) are not counted."""
        total = 0
        for block in self.blocks:
            mixer = block.mixer
            total += mixer.state_size(seq_len) if isinstance(mixer, Attention) else mixer.state_size()
        return total

    def flops_per_token(self, seq_len: int) -> int:
        """Forward FLOPs per token (estimate): 2 per weight of every matmul (the tied output head
        included, the embedding lookup excluded), plus attention scores at the mean causal context,
        plus the memory's updates and reads (:meth:`MirasMixer.memory_flops_per_token`)."""
        matmul = sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and not n.startswith("embed"))
        total = 2 * (matmul + self.embed.weight.numel())
        for block in self.blocks:
            mixer = block.mixer
            total += mixer.flops_per_token(seq_len) if isinstance(mixer, Attention) else mixer.memory_flops_per_token()
        return total
