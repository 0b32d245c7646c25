"""``miras bench``: the command-line front of :mod:`miras.bench`.

Only argparse at import time: torch, the scans and the presets load when the command runs, so that
building the ``miras`` parser (and ``miras bench --help``) stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .grid import BenchConfig, Cell

DTYPES = ("float32", "bfloat16", "float16", "float64")
IMPL_CHOICES = ("reference", "chunked", "delta", "compiled", "triton", "titans_pytorch", "fla_gated_delta")
""":data:`miras.bench.grid.IMPL_CHOICES` (the scans of :data:`miras.ops.IMPLS`, then the peers), spelled
out so that the parser is built without importing torch; a test checks that the two agree."""


def preset_name(value: str) -> str:
    """``--presets`` values: checked against :data:`miras.space.PRESETS` when one is given (not when
    the parser is built), with argparse's own ``invalid choice`` message."""
    from ..space import PRESETS

    if value not in PRESETS:
        choices = ", ".join(map(repr, sorted(PRESETS)))
        raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {choices})")
    return value


class BenchUsageError(Exception):
    """A choice that cannot run here (exit code 2)."""


def config_from(args: argparse.Namespace) -> BenchConfig:
    import torch

    from .grid import BenchConfig

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchUsageError(f"--device {args.device}: CUDA is not available on this machine")
    for name in ("lengths", "batch", "heads", "dim", "repeats"):
        values = getattr(args, name)
        if values is not None and min(values if isinstance(values, list) else [values]) < 1:
            raise BenchUsageError(f"--{name}: must be positive, got {values}")
    return BenchConfig.for_device(
        args.device,
        presets=args.presets,
        impls=args.impls,
        lengths=args.lengths,
        batch=args.batch,
        heads=args.heads,
        dim=args.dim,
        dtype=getattr(torch, args.dtype) if args.dtype else None,
        repeats=args.repeats,
        max_seconds=args.max_seconds,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from .grid import run_grid
    from .report import HEADER, environment, row, speedup, to_json, to_markdown, write_section

    try:
        config = config_from(args)
    except BenchUsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(config)  # the commit measured, whatever changes during the run
    print(HEADER.format(baseline=args.baseline), flush=True)
    measured: list[Cell] = []
    printed: list[float | None] = []

    def show(cell: Cell) -> None:
        measured.append(cell)
        printed.append(speedup(cell, measured, args.baseline))
        print(row(cell, printed[-1]), flush=True)

    cells, notes = run_grid(config, on_cell=show)
    record = to_json(env, cells, notes, args.baseline)
    # the table again only if a ratio became known after its row was printed (baseline measured later)
    late = any(
        shown is None and cell[f"speedup_vs_{args.baseline}"] is not None
        for shown, cell in zip(printed, record["cells"], strict=True)
    )
    print("\n" + to_markdown(record, args.baseline, table=late))
    markdown = to_markdown(record, args.baseline)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    if args.markdown:
        write_section(args.markdown, args.section or config.device.split(":")[0], markdown)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="time forward and forward+backward of every scan implementation and the peers (fla, titans-pytorch)",
        description="Benchmark the scan implementations (reference, chunked, delta, compiled, triton) and the "
        "peers fla_gated_delta (fla's chunk_gated_delta_rule, CUDA) and titans_pytorch (NeuralMemory) on presets: "
        "forward and forward+backward latency, tokens/s and peak memory. Each implementation is first checked "
        "against the reference at a small shape; a number is printed only after its check passes. Rows are "
        "printed as they are measured. Defaults: on CUDA B4 H16 D128 bfloat16, T 1024 2048 4096; on CPU B4 H4 "
        "D64 float32, T 256 1024.",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument(
        "--presets",
        nargs="+",
        type=preset_name,
        metavar="PRESET",
        help="default: gated_deltanet titans moneta yaad memora",
    )
    parser.add_argument(
        "--impls",
        nargs="+",
        choices=IMPL_CHOICES,
        metavar="IMPL",
        help=f"any of {', '.join(IMPL_CHOICES)} (default: all)",
    )
    parser.add_argument("--lengths", nargs="+", type=int, metavar="T", help="sequence lengths")
    parser.add_argument("--batch", type=int, help="B (default 4)")
    parser.add_argument("--heads", type=int, help="H (default: 16 on CUDA, 4 on CPU)")
    parser.add_argument("--dim", type=int, help="D = D_k = D_v (default: 128 on CUDA, 64 on CPU)")
    parser.add_argument("--dtype", choices=DTYPES, help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement, median (default 3)")
    parser.add_argument("--max-seconds", type=float, help="wall-clock budget per measurement (default 60)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--baseline",
        default="reference",
        choices=IMPL_CHOICES,
        help="the × column: tokens/s over this implementation's (default: reference)",
    )
    parser.add_argument("--json", type=Path, help="write the record (environment, cells, checks) as JSON here")
    parser.add_argument(
        "--markdown",
        type=Path,
        help="write the Markdown section into this file (e.g. "
        "docs/benchmarks.md), replacing the section of the same name and keeping the rest",
    )
    parser.add_argument("--section", help="section name for --markdown (default: the device type, cpu or cuda)")
    parser.set_defaults(func=cmd_bench)


__all__ = ["register"]
