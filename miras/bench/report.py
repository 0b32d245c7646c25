"""The benchmark's record: environment, cells and check notes, as JSON and as Markdown."""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path
from typing import Any

import torch

from ..provenance import cpu_model, git_commit, memory_allocator, package_version
from .grid import BenchConfig, Cell

PACKAGES = ("torch", "triton", "fla-core", "titans-pytorch")


def environment(config: BenchConfig) -> dict[str, Any]:
    """Device, versions, commit and shape of a run."""
    device = config.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "device": device,
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "allocator": memory_allocator(),
        "python": platform.python_version(),
        "versions": {name: package_version(name) for name in PACKAGES},
        "commit": git_commit(),
        "shape": {
            "batch": config.batch,
            "heads": config.heads,
            "dim": config.dim,
            "dtype": str(config.dtype).removeprefix("torch."),
        },
        "repeats": config.repeats,
        "max_seconds": config.max_seconds,
    }


def speedup(cell: Cell, cells: list[Cell], baseline: str) -> float | None:
    """``cell``'s forward + backward tokens/s over the ``baseline`` implementation's at the same
    length: the same preset's cell if measured, else the only other preset's (a peer aligned with
    one preset, e.g. fla's gated delta rule)."""
    if cell.tokens_per_s is None:
        return None
    same_length = [c for c in cells if c.impl == baseline and c.length == cell.length and c.tokens_per_s]
    same_preset = [c for c in same_length if c.preset == cell.preset]
    chosen = same_preset or (same_length if len(same_length) == 1 else [])
    return cell.tokens_per_s / chosen[0].tokens_per_s if chosen else None


def to_json(env: dict[str, Any], cells: list[Cell], notes: list[str], baseline: str) -> dict[str, Any]:
    """The record of a run: ``env`` (:func:`environment`, taken before it), cells with their
    speed-up over ``baseline``, and the check notes."""
    rows = [dataclasses.asdict(c) | {f"speedup_vs_{baseline}": speedup(c, cells, baseline)} for c in cells]
    return {"environment": env, "cells": rows, "checks": notes}


HEADER = (
    "| preset | impl | T | fwd ms | fwd+bwd ms | tokens/s | × {baseline} | peak MiB | runs |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def row(cell: Cell, ratio: float | None = None) -> str:
    """One Markdown table row; ``ratio`` is the speed-up over the baseline, when known."""
    head = f"| {cell.preset} | {cell.impl} | {cell.length} |"
    if cell.status != "ok":
        return f"{head} {cell.status} | | | | | |"
    peak = "skipped (budget)" if cell.peak_mib is None else f"{cell.peak_mib:,.1f}"
    times = f"{cell.fwd_ms:,.1f} | {cell.fwd_bwd_ms:,.1f} | {cell.tokens_per_s:,.0f}"
    return f"{head} {times} | {'' if ratio is None else f'{ratio:.2f}'} | {peak} | {cell.repeats} |"


def to_markdown(record: dict[str, Any], baseline: str, table: bool = True) -> str:
    """The Markdown section of a :func:`to_json` record (without its table: ``table=False``)."""
    env = record["environment"]
    shape = env["shape"]
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    memory = (
        "torch.cuda.max_memory_allocated() during forward + backward, minus the memory before it"
        if env["device"].startswith("cuda")
        else "peak of (allocated - freed) bytes of the CPU allocator during forward + backward (torch.profiler)"
    )
    lines = [
        f"- device: {env['device']}; CPU: {env['cpu']}; torch threads: {env['torch_threads']}; "
        f"malloc: {env['allocator']}",
        f"- versions: Python {env['python']}, {versions}; miras commit {env['commit']}",
        f"- shape: B={shape['batch']}, H={shape['heads']}, D={shape['dim']}, {shape['dtype']}; "
        f"median of up to {env['repeats']} runs within {env['max_seconds']:g} s per measurement",
        f"- tokens/s: B·T over the forward + backward time; × {baseline}: that over {baseline}'s at the same T",
        f"- peak MiB: {memory}",
    ]
    if table:
        lines += ["", HEADER.format(baseline=baseline)]
        fields = {f.name for f in dataclasses.fields(Cell)}
        for cell in record["cells"]:
            lines.append(row(Cell(**{k: v for k, v in cell.items() if k in fields}), cell[f"speedup_vs_{baseline}"]))
    lines += ["", "Checks (every timed implementation first matched the reference):", ""]
    lines += [f"- {note}" for note in record["checks"]]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, text: str) -> None:
    """Put ``text`` between ``<!-- miras bench: SECTION -->`` markers in ``path``: replacing that
    section if present, else appended (the file is created if missing). The rest is kept."""
    begin, end = f"<!-- miras bench: {section} -->", f"<!-- /miras bench: {section} -->"
    block = f"{begin}\n{text}{end}\n"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        before, rest = old.split(begin, 1)
        new = before + block + rest.split(end, 1)[1].removeprefix("\n")
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + block
    path.write_text(new)


__all__ = [
    "cpu_model",
    "environment",
    "git_commit",
    "package_version",
    "row",
    "speedup",
    "to_json",
    "to_markdown",
    "write_section",
]
