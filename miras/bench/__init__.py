"""``miras bench``: latency, throughput and peak memory of every scan implementation and its peers.

A number is reported only after that implementation matched the reference at a small shape
(:mod:`miras.bench.checks`). Modules: :mod:`~miras.bench.inputs` (leaves and the scalar that is
differentiated), :mod:`~miras.bench.peers` (fla and titans-pytorch, aligned with our presets),
:mod:`~miras.bench.timing`, :mod:`~miras.bench.grid` (what runs) and :mod:`~miras.bench.report`
(JSON and Markdown).

These names load on first use (they import torch), so that importing :mod:`miras.bench.command` to
build the ``miras`` command line stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .grid import BenchConfig, Cell, run_grid

__all__ = ["BenchConfig", "Cell", "run_grid"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import grid

        return getattr(grid, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
