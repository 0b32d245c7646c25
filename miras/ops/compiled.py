"""The chunked scan with every chunk's step compiled by ``torch.compile`` (inductor).

Same computation as :func:`miras.ops.chunked.scan`; only :func:`~miras.ops.chunked.run_chunk`
runs compiled (``dynamic=False``: one graph per chunk shape, so a sequence compiles its full
chunks once and its short last chunk once). The first call of each new shape, spec or dtype
compiles (seconds to tens of seconds); later calls reuse the graphs. ``impl="auto"`` does not pick
it: docs/benchmarks.md measures where it helps (CPU: the MLP memories).
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor

from . import chunked
from .chunked import ChunkStep, run_chunk
from .common import ScanProblem, State

RECOMPILE_LIMIT = 64
"""Graphs kept per process for the compiled step (torch's default of 8 is shared by every spec,
shape and dtype that runs it; past the limit dynamo would silently fall back to eager)."""


@cache
def compiled_step() -> ChunkStep:
    """``torch.compile(run_chunk)``, built once per process."""
    return torch.compile(run_chunk, dynamic=False)


def scan(
    p: ScanProblem, *, initial_state: State | None, output_final_state: bool, chunk_size: int | None
) -> tuple[Tensor, State | None]:
    """:func:`miras.ops.chunked.scan` with a compiled chunk step; arguments as :func:`miras.ops.miras_scan`."""
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
        return chunked.scan(
            p,
            initial_state=initial_state,
            output_final_state=output_final_state,
            chunk_size=chunk_size,
            step=compiled_step(),
        )


__all__ = ["compiled_step", "scan"]
