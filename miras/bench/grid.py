"""What ``miras bench`` runs: presets x implementations x lengths, each checked before it is timed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..ops import IMPLS, why_not
from ..space import PRESETS
from .inputs import gates_of, make_inputs, scan_outputs, weighted_sum, with_gradients
from .peers import PEERS, Workload, rel_rms
from .timing import bounded_peak_mib, forward_backward, forward_only, median_seconds

DEFAULT_PRESETS = ("gated_deltanet", "titans", "moneta", "yaad", "memora")
IMPL_CHOICES = (*IMPLS, *PEERS)
CHECK = {"triton": (torch.float32, 1e-4)}
"""Check dtype and tolerance (max rel-RMS against the fp64 reference) per implementation; the
torch implementations are checked in fp64 to 1e-8. Triton's fp32 kernels get fp32 round-off."""
DEFAULT_CHECK = (torch.float64, 1e-8)


@dataclass
class BenchConfig:
    """One benchmark run. :meth:`for_device` gives the default shapes: fla's GPU shape
    (B4 T1024-4096 H16 D128 bf16) on CUDA, B4 T256-1024 H4 D64 fp32 on CPU."""

    device: str = "cpu"
    presets: list[str] = field(default_factory=lambda: list(DEFAULT_PRESETS))
    impls: list[str] = field(default_factory=lambda: list(IMPL_CHOICES))
    lengths: list[int] = field(default_factory=lambda: [256, 1024])
    batch: int = 4
    heads: int = 4
    dim: int = 64
    dtype: torch.dtype = torch.float32
    repeats: int = 3
    max_seconds: float = 60.0

    @classmethod
    def for_device(cls, device: str, **overrides) -> BenchConfig:
        if device.startswith("cuda"):
            base = {"lengths": [1024, 2048, 4096], "heads": 16, "dim": 128, "dtype": torch.bfloat16}
        else:
            base = {}
        return cls(device=device, **(base | {k: v for k, v in overrides.items() if v is not None}))


@dataclass
class Cell:
    """One measured (or skipped) combination; times in ms, ``tokens_per_s`` of forward + backward."""

    preset: str
    impl: str
    length: int
    status: str
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    tokens_per_s: float | None = None
    peak_mib: float | None = None
    repeats: int = 0


def applicability(preset: str, impl: str, device: str) -> str | None:
    """``None`` when ``impl`` runs ``preset`` on ``device``, else why not."""
    if impl in PEERS:
        peer = PEERS[impl]
        if peer.preset != preset:
            return f"the peer is aligned with the {peer.preset} preset only"
        if peer.cuda_only and not device.startswith("cuda"):
            return "needs CUDA"
        return None
    leaves = make_inputs(preset, 1, 2, 1, 4, torch.float32, device)
    return why_not(impl, leaves["q"], leaves["k"], leaves["v"], PRESETS[preset].spec, gates_of(leaves))


def check_scan(preset: str, impl: str, device: str) -> tuple[float, float]:
    """``(error, tolerance)``: max rel-RMS of ``impl`` (outputs, final state, gradients of every
    leaf) against the fp64 reference on the same leaves, at B=1, H=2, D=16 and a length covering
    two mini-batches and a partial one."""
    dtype, tolerance = CHECK.get(impl, DEFAULT_CHECK)
    batch_size = PRESETS[preset].spec.canonical()["algorithm"]["params"]["batch_size"]
    length = 2 * max(batch_size, 8) + 5
    results = {}
    for name, run_dtype in (("reference", torch.float64), (impl, dtype)):
        leaves = make_inputs(preset, 1, length, 2, 16, run_dtype, device, seed=1)
        results[name] = with_gradients(scan_outputs(preset, name, leaves, final_state=True), leaves)
    want = results["reference"]
    return max(rel_rms(got, want[name]) for name, got in results[impl].items()), tolerance


def vet(preset: str, impl: str, device: str) -> tuple[bool, str | None]:
    """Whether to time ``impl`` on ``preset``, and a note for the report.

    Every implementation first runs at a small shape outside any budget: the check against the
    reference, or for the reference itself a warm-up. (The budget timer interrupts Python wherever
    it is; a first call interrupted inside one of torch's lazy imports would break later calls.)
    """
    reason = applicability(preset, impl, device)
    if reason is not None:
        return False, f"{preset} / {impl}: not applicable ({reason})"
    if impl == "reference":
        leaves = make_inputs(preset, 1, 8, 1, 8, torch.float32, device)
        with_gradients(scan_outputs(preset, impl, leaves, final_state=True), leaves)
        return True, None
    try:
        if impl in PEERS:
            error, tolerance = PEERS[impl].check(device), PEERS[impl].tolerance
        else:
            error, tolerance = check_scan(preset, impl, device)
    except ImportError as missing:
        return False, f"{preset} / {impl}: not run ({missing})"
    if not error <= tolerance:
        return False, f"{preset} / {impl}: check FAILED (rel-RMS {error:.1e} > {tolerance:.0e}); no speed reported"
    return True, f"{preset} / {impl}: matches the reference (max rel-RMS {error:.1e} <= {tolerance:.0e})"


def workload(preset: str, impl: str, config: BenchConfig, length: int) -> Workload:
    shape = (config.batch, length, config.heads, config.dim, config.dtype, config.device)
    if impl in PEERS:
        return PEERS[impl].workload(*shape)
    leaves = make_inputs(preset, *shape)
    return (lambda: weighted_sum(scan_outputs(preset, impl, leaves, final_state=False).values())), list(leaves.values())


def measure(work: Workload, config: BenchConfig, cell: Cell) -> Cell:
    """An untimed forward + backward at this shape (compilation, autotuning, allocator warm-up),
    then forward and forward + backward timings (median of up to ``repeats`` within the budget
    each), then the peak memory of forward + backward in another untimed run."""
    train = forward_backward(work)
    warm = median_seconds(train, config.device, 1, config.max_seconds)
    fwd = median_seconds(forward_only(work), config.device, config.repeats, config.max_seconds) if warm else None
    both = median_seconds(train, config.device, config.repeats, config.max_seconds) if fwd else None
    if fwd is None or both is None:
        cell.status = "skipped (budget)"
        return cell
    tokens = config.batch * cell.length
    cell.fwd_ms, cell.fwd_bwd_ms, cell.repeats = 1000 * fwd[0], 1000 * both[0], both[1]
    cell.tokens_per_s = tokens / both[0]
    cell.peak_mib = bounded_peak_mib(train, config.device, config.max_seconds)
    return cell


def run_grid(config: BenchConfig, on_cell: Callable[[Cell], None] = lambda cell: None) -> tuple[list[Cell], list[str]]:
    """Every cell of presets x impls x lengths (``on_cell`` sees each as soon as it is measured),
    and the notes of every check. After a cell runs past the budget, the longer lengths of that
    preset and implementation are skipped; nothing is extrapolated."""
    cells: list[Cell] = []
    notes: list[str] = []
    for preset in config.presets:
        for impl in config.impls:
            run, note = vet(preset, impl, config.device)
            notes += [note] if note else []
            over_budget = False
            for length in sorted(config.lengths) if run else ():
                cell = Cell(preset, impl, length, "skipped (budget)")
                if not over_budget:
                    cell.status = "ok"
                    measure(workload(preset, impl, config, length), config, cell)
                    over_budget = cell.status != "ok"
                cells.append(cell)
                on_cell(cell)
    return cells, notes


__all__ = ["DEFAULT_PRESETS", "IMPL_CHOICES", "BenchConfig", "Cell", "applicability", "run_grid", "vet"]
