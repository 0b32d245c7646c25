"""``miras bench``: latency, throughput and peak memory of every scan implementation and its peers.

A number is reported only after that implementation matched the reference at a small shape
(:mod:`miras.bench.checks`). Modules: :mod:`~miras.bench.inputs` (leaves and the scalar that is
differentiated), :mod:`~miras.bench.peers` (fla and titans-pytorch, aligned with our presets),
:mod:`~miras.bench.timing`, :mod:`~miras.bench.grid` (what runs) and :mod:`~miras.bench.report`
(JSON and Markdown).
"""

from .grid import BenchConfig, Cell, run_grid

__all__ = ["BenchConfig", "Cell", "run_grid"]
