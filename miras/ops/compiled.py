"""The chunked scan with every chunk's step compiled by ``torch.compile`` (inductor).

Same computation as :func:`miras.ops.chunked.chunked_scan`; only :func:`~miras.ops.chunked.run_chunk`
runs compiled (``dynamic=False``: one graph per chunk shape, so a sequence compiles its full
chunks once and its short last chunk once). The first call of each new shape, spec or dtype
compiles (seconds to tens of seconds); later calls reuse the graphs. ``impl="auto"`` does not pick
it: docs/benchmarks.md measures where it helps (CPU: the MLP memories).
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor

from ..space import Components, MirasSpec
from .chunked import ChunkStep, chunked_scan, run_chunk
from .common import State

RECOMPILE_LIMIT = 64
"""Graphs kept per process for the compiled step (torch's default of 8 is shared by every spec,
shape and dtype that runs it; past the limit dynamo would silently fall back to eager)."""


@cache
def compiled_step() -> ChunkStep:
    """``torch.compile(run_chunk)``, built once per process."""
    return torch.compile(run_chunk, dynamic=False)


def compiled_scan(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    spec: MirasSpec | Components,
    gates: dict[str, Tensor],
    *,
    initial_state: State | None = None,
    output_final_state: bool = False,
    chunk_size: int | None = None,
) -> tuple[Tensor, State | None]:
    """:func:`~miras.ops.chunked.chunked_scan` with a compiled chunk step; arguments as
    :func:`miras.ops.miras_scan`."""
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
        return chunked_scan(
            q,
            k,
            v,
            spec,
            gates,
            initial_state=initial_state,
            output_final_state=output_final_state,
            chunk_size=chunk_size,
            step=compiled_step(),
        )


__all__ = ["compiled_scan"]
