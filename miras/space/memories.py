"""Built-in memory architectures.

A memory is a function ``M(W; x)`` of per-head weights ``W`` (a dict of matrices, each
``[B, H, out, in]``) applied to inputs ``x`` ``[B, H, N, D_k] -> [B, H, N, D_v]``.

A memory is written once, in :meth:`Memory.apply`, in terms of a callable ``linear(name, h)``
that applies weight matrix ``name`` to ``h`` (``[B, H, N, in] -> [B, H, N, out]``). The
reference loop passes plain matmuls; the chunked implementation passes the dual form, in
which every token sees its own (implicit) weights. This is why every weight must be used as
a linear map: the gradient of a linear map is an outer product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from .registry import REGISTRIES, NoParams, Params, register_memory

if TYPE_CHECKING:
    from torch import Tensor

Linear = Callable[[str, "Tensor"], "Tensor"]


class Memory:
    """Base class of memory architectures."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def shapes(self, d_k: int, d_v: int) -> dict[str, tuple[int, int]]:
        """Name -> ``(out, in)`` of each weight matrix, per head."""
        raise NotImplementedError(f"{type(self).__name__} must define shapes()")

    def apply(self, linear: Linear, x: Tensor) -> Tensor:
        """Forward pass: ``x`` ``[B, H, N, D_k]`` -> ``[B, H, N, D_v]``."""
        raise NotImplementedError(f"{type(self).__name__} must define apply()")

    def check_dims(self, d_k: int, d_v: int) -> None:
        """Raise ``ValueError`` if the memory cannot map ``d_k`` to ``d_v``."""

    def forward(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        """``M(W; x)`` with ``weights[name]`` ``[B, H, out, in]``, ``x`` ``[B, H, N, D_k]``."""
        return self.apply(lambda name, h: h @ weights[name].transpose(-1, -2), x)

    def state_size(self, d_k: int, d_v: int) -> int:
        """Number of scalars in one head's memory state (the weights)."""
        return sum(o * i for o, i in self.shapes(d_k, d_v).values())

    @property
    def normalized_output(self) -> bool:
        """Whether the output is normalised (RMS about 1 per channel whatever the weights)."""
        return False


REGISTRIES["memory"].bind(Memory)


@register_memory("linear", description="matrix-valued memory M(x) = W x", shorthand="lin")
class LinearMemory(Memory):
    params: NoParams

    def shapes(self, d_k: int, d_v: int) -> dict[str, tuple[int, int]]:
        return {"W": (d_v, d_k)}

    def apply(self, linear: Linear, x: Tensor) -> Tensor:
        return linear("W", x)


class MLPParams(Params):
    depth: int = Field(2, ge=1, description="number of weight matrices")
    expansion: int = Field(4, ge=1, description="hidden width = expansion * D_k")
    activation: Literal["gelu", "silu"] = Field("gelu", description="hidden nonlinearity")
    residual: bool = Field(True, description="M(x) = x + LN(MLP(x)) as in the paper (needs D_k = D_v)")
    layernorm: bool = Field(True, description="LayerNorm (no affine) on the MLP output")
    ln_eps: float = Field(1e-5, gt=0, description="LayerNorm epsilon")


@register_memory(
    "mlp",
    params=MLPParams,
    description="k-layer MLP memory x + LN(W_k s(... s(W_1 x))) (TTT, Titans, Miras)",
    shorthand="mlp",
)
class MLPMemory(Memory):
    params: MLPParams

    def check_dims(self, d_k: int, d_v: int) -> None:
        if self.params.residual and d_k != d_v:
            raise ValueError(f"the residual mlp memory needs D_k == D_v, got D_k={d_k}, D_v={d_v}")

    def shapes(self, d_k: int, d_v: int) -> dict[str, tuple[int, int]]:
        depth, hidden = self.params.depth, self.params.expansion * d_k
        widths = [d_k] + [hidden] * (depth - 1) + [d_v]
        return {f"W{i + 1}": (widths[i + 1], widths[i]) for i in range(depth)}

    def apply(self, linear: Linear, x: Tensor) -> Tensor:
        import torch.nn.functional as F

        act = F.gelu if self.params.activation == "gelu" else F.silu
        h = x
        for i in range(1, self.params.depth + 1):
            h = linear(f"W{i}", h)
            if i < self.params.depth:
                h = act(h)
        if self.params.layernorm:
            h = F.layer_norm(h, h.shape[-1:], eps=self.params.ln_eps)
        return x + h if self.params.residual else h

    @property
    def normalized_output(self) -> bool:
        return self.params.layernorm


__all__ = ["Linear", "LinearMemory", "MLPMemory", "Memory"]
