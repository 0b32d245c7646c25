"""Forward + backward throughput and peak memory of the scan implementations (not a test).

For every preset, length and implementation (``reference``, ``chunked``, ``delta`` where it
applies, and titans-pytorch's ``NeuralMemory`` as a peer for ``titans``) it times a forward and a
backward pass at ``B x T x H x D`` and prints a Markdown table. A speed number is printed only
after that implementation matched the reference at a small shape (fp64: outputs, final state and
the gradients of every input). A cell that does not finish within ``--max-seconds`` is reported
as "skipped (budget)"; longer lengths of that preset and implementation are then skipped too.
Nothing is extrapolated.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated()`` during forward + backward minus the
memory allocated before it. On CPU, the peak of (bytes allocated - bytes freed) by PyTorch's CPU
allocator during forward + backward, from the memory records of ``torch.profiler``
(``profile_memory=True``), in a separate untimed run with its own budget. (Counting the tensors
saved for backward with ``torch.autograd.graph.saved_tensors_hooks`` is not possible:
``torch.func``, which the reference uses for its per-token gradients, refuses saved-tensor hooks.)

    python benchmarks/bench_ops.py --lengths 256 1024 4096 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from miras.ops import miras_scan, select_impl
from miras.space import PRESETS

DEFAULT_PRESETS = ("gated_deltanet", "titans", "moneta", "yaad", "memora")
DEFAULT_LENGTHS = (256, 1024, 4096)
SCAN_IMPLS = ("reference", "chunked", "delta")
PEER = "titans_pytorch"
PEER_PRESET = "titans"
CHECK_TOLERANCE = 1e-8
"""rel-RMS of every checked tensor against the reference at the small fp64 shape."""


class BudgetExceeded(Exception):
    """A cell ran past ``--max-seconds``."""


@dataclass
class Cell:
    preset: str
    impl: str
    length: int
    status: str
    ms: float | None = None
    tokens_per_s: float | None = None
    peak_mib: float | None = None
    repeats: int = 0


# ---------------------------------------------------------------------------------------------
# inputs


def make_inputs(
    preset: str, batch: int, length: int, heads: int, dim: int, dtype: torch.dtype, device: str, seed: int = 0
) -> dict[str, Tensor]:
    """Leaves ``q, k, v`` ``[B, T, H, D]`` (unit-norm q, k), the preset's gates and the initial
    memory weights, all requiring grad.

    Gates follow the preset's parameterisation: per head ``[B, T, H]``, or channel-wise
    ``[B, T, H, D]`` (``channel``); values in the ranges a trained mixer produces. The initial
    weights ``[B, H, out, in]`` are random with scale ``in^-1/2`` (a learned initial state, as in
    Titans): at zero an MLP memory's gradients vanish and it would never move.
    """
    gen = torch.Generator().manual_seed(seed)
    preset_ = PRESETS[preset]

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    q, k, v = (randn(batch, length, heads, dim) for _ in range(3))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    deep = preset_.spec.memory.name != "linear"
    leaves = {"q": q, "k": k, "v": v}
    for name in preset_.spec.resolve().required_gates():
        width = (dim,) if preset_.gates.get(name) == "channel" else ()
        raw = randn(batch, length, heads, *width)
        leaves[f"gate.{name}"] = gate_values(name, raw, deep, dim)
    for name, (rows, cols) in preset_.spec.resolve().memory.shapes(dim, dim).items():
        leaves[f"state.{name}"] = randn(batch, heads, rows, cols) / cols**0.5
    return {n: x.to(device=device, dtype=dtype).requires_grad_() for n, x in leaves.items()}


def gate_values(name: str, raw: Tensor, deep: bool, dim: int) -> Tensor:
    """Map standard normal ``raw`` into the gate's range.

    The Huber threshold is spread around ``||v - M(k)|| ~ sqrt(D)`` so that tokens fall on both sides.
    """
    if name == "lr":
        return (0.05 if deep else 1.0) * torch.sigmoid(raw)
    if name == "decay":
        return torch.sigmoid(raw + 4)
    if name == "momentum":
        return 0.5 * torch.sigmoid(raw)
    return 2 * dim**0.5 * torch.sigmoid(raw)  # huber threshold delta


def scan_loss(preset: str, impl: str, leaves: dict[str, Tensor], *, final_state: bool) -> Tensor:
    """A scalar of the outputs (and final state) of ``miras_scan(impl=...)`` that weighs every entry."""
    gates = {n[5:]: x for n, x in leaves.items() if n.startswith("gate.")}
    start = {n[6:]: x for n, x in leaves.items() if n.startswith("state.")}
    spec = PRESETS[preset].spec
    out, state = miras_scan(
        leaves["q"],
        leaves["k"],
        leaves["v"],
        spec,
        gates,
        impl=impl,
        initial_state=start,
        output_final_state=final_state,
    )
    loss = (out * ramp(out)).sum()
    for s in (state or {}).values():
        loss = loss + (s * ramp(s)).sum()
    return loss


def ramp(x: Tensor) -> Tensor:
    """Fixed weights ``linspace(-1, 1)`` shaped like ``x``."""
    return torch.linspace(-1, 1, x.numel(), dtype=x.dtype, device=x.device).view_as(x)


# ---------------------------------------------------------------------------------------------
# correctness checks


def rel_rms(x: Tensor, ref: Tensor) -> float:
    diff = (x - ref).double().pow(2).mean().sqrt()
    return 0.0 if diff == 0 else (diff / ref.double().pow(2).mean().sqrt()).item()


def check_scan(preset: str, impl: str) -> float:
    """Largest rel-RMS of ``impl`` against the reference at a small fp64 shape (outputs, state, grads)."""
    batch_size = PRESETS[preset].spec.canonical()["algorithm"]["params"]["batch_size"]
    length = 2 * max(batch_size, 8) + 5
    results = {}
    for name in ("reference", impl):
        leaves = make_inputs(preset, 1, length, 2, 16, torch.float64, "cpu", seed=1)
        loss = scan_loss(preset, name, leaves, final_state=True)
        results[name] = [loss.detach(), *torch.autograd.grad(loss, list(leaves.values()))]
    return max(rel_rms(got, ref) for got, ref in zip(results[impl], results["reference"], strict=True))


def check_peer() -> float:
    """rel-RMS of titans-pytorch's retrieved outputs and final weights against our reference (fp64).

    Aligned as in tests/ops/test_oracles.py (docs/oracles.md): heads 1, ``chunk_size=1``,
    ``batch_size`` = the preset's b, LN gain frozen, ``lr = 2 lr_theirs / D``, its own gates.
    """
    spec = PRESETS[PEER_PRESET].spec
    b = spec.canonical()["algorithm"]["params"]["batch_size"]
    dim, batch, length = 16, 2, 2 * b + 5
    memory = neural_memory(dim, b).double()
    seq = torch.randn(batch, length, dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    retrieved, state, (_, lr) = memory(seq, return_surprises=True)
    with torch.no_grad():
        stored = memory.store_norm(seq)
        q = memory.to_queries(memory.retrieve_norm(seq)).unsqueeze(2)
        k, v = memory.to_keys(stored).unsqueeze(2), memory.to_values(stored).unsqueeze(2)
        gates = {
            "lr": 2 * lr.transpose(1, 2) / dim,
            "decay": 1 - memory.to_decay_factor(stored).sigmoid().view(batch, length, 1),
            "momentum": memory.to_momentum(stored).sigmoid()[0].view(batch, length, 1),
        }
        start = peer_weights(memory.init_weights(batch))
        out, final = miras_scan(q, k, v, spec, gates, impl="reference", initial_state=start, output_final_state=True)
    errors = [rel_rms(out[:, :, 0], retrieved)]
    errors += [rel_rms(final[n], w) for n, w in peer_weights(state.states[0]).items()]
    return max(errors)


def neural_memory(dim: int, batch_size: int) -> torch.nn.Module:
    """titans-pytorch ``NeuralMemory`` at the configuration aligned with the ``titans`` preset."""
    from titans_pytorch import NeuralMemory
    from titans_pytorch.memory_models import MemoryMLP, ResidualNorm

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ResidualNorm(dim, MemoryMLP(dim, depth=2, expansion_factor=4.0))
        del model.norm.gamma  # our memory has no learned LayerNorm gain: freeze it at 0
        model.norm.gamma = torch.zeros(dim)
        return NeuralMemory(
            dim, chunk_size=1, batch_size=batch_size, heads=1, model=model, mem_model_norm_add_residual=False
        )


def peer_weights(weights) -> dict[str, Tensor]:
    """titans-pytorch's ``x @ P`` weights ``[B, in, out]`` as our ``W1, W2`` ``[B, 1, out, in]``."""
    names = {"model.weights.0": "W1", "model.weights.1": "W2"}
    return {names[n]: w.transpose(-1, -2).unsqueeze(1) for n, w in weights.items()}


# ---------------------------------------------------------------------------------------------
# timing


@contextlib.contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Raise :class:`BudgetExceeded` in the block once ``seconds`` of wall clock have passed."""

    def expire(signum, frame):
        raise BudgetExceeded

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_memory_mib(step: Callable[[], None], device: str) -> float:
    """Peak extra memory of ``step`` (MiB); see the module docstring for the definition."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    records = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    current = peak = 0
    for record in records:
        current += record.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def timed(step: Callable[[], None], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(step: Callable[[], None], args: argparse.Namespace, cell: Cell, tokens: int) -> Cell:
    """Up to ``repeats`` timed runs within the cell's budget, then peak memory within another one.

    The small-shape correctness check has already run the same code (the warm-up).
    """
    times: list[float] = []
    with contextlib.suppress(BudgetExceeded), budget(args.max_seconds):
        for _ in range(args.repeats):
            times.append(timed(step, args.device))
    if not times:
        cell.status = "skipped (budget)"
        return cell
    cell.repeats = len(times)
    cell.ms = 1000 * statistics.median(times)
    cell.tokens_per_s = tokens / statistics.median(times)
    with contextlib.suppress(BudgetExceeded), budget(args.max_seconds):
        cell.peak_mib = peak_memory_mib(step, args.device)
    return cell


def scan_step(preset: str, impl: str, args: argparse.Namespace, length: int) -> Callable[[], None]:
    leaves = make_inputs(preset, args.batch, length, args.heads, args.dim, args.dtype, args.device)

    def step() -> None:
        loss = scan_loss(preset, impl, leaves, final_state=False)
        torch.autograd.grad(loss, list(leaves.values()))

    return step


def peer_step(args: argparse.Namespace, length: int) -> Callable[[], None]:
    """``NeuralMemory`` on ``B * H`` sequences of width ``D`` (heads 1): the same memories as ours."""
    b = PRESETS[PEER_PRESET].spec.canonical()["algorithm"]["params"]["batch_size"]
    memory = neural_memory(args.dim, b).to(device=args.device, dtype=args.dtype)
    gen = torch.Generator().manual_seed(0)
    seq = torch.randn(args.batch * args.heads, length, args.dim, generator=gen)
    seq = seq.to(device=args.device, dtype=args.dtype).requires_grad_()
    params = [seq, *memory.parameters()]

    def step() -> None:
        retrieved, _ = memory(seq)
        torch.autograd.grad((retrieved * ramp(retrieved)).sum(), params, allow_unused=True)

    return step


# ---------------------------------------------------------------------------------------------
# the grid


def applicable(preset: str, impl: str) -> str | None:
    """``None`` when ``impl`` runs ``preset``, else why not."""
    if impl == PEER:
        return None if preset == PEER_PRESET else f"the peer is aligned with the {PEER_PRESET} preset only"
    if impl != "delta":
        return None
    leaves = make_inputs(preset, 1, 2, 1, 4, torch.float32, "cpu")
    gates = {n[5:]: x for n, x in leaves.items() if n.startswith("gate.")}
    chosen, reason = select_impl(leaves["q"], leaves["k"], leaves["v"], PRESETS[preset].spec, gates)
    return None if chosen == "delta" else reason.split("(not delta: ")[-1].rstrip(")")


def vet(preset: str, impl: str) -> tuple[bool, str | None]:
    """Whether to time ``impl`` on ``preset``, and a note for the report.

    Every implementation first runs at a small shape outside any budget: the check against the
    reference, or for the reference itself a warm-up. (The budget timer interrupts Python wherever
    it is; a first call interrupted inside one of torch's lazy imports would break later calls.)
    """
    why_not = applicable(preset, impl)
    if why_not is not None:
        return False, f"{preset} / {impl}: not applicable ({why_not})"
    if impl == "reference":
        leaves = make_inputs(preset, 1, 8, 1, 8, torch.float32, "cpu")
        torch.autograd.grad(scan_loss(preset, impl, leaves, final_state=True), list(leaves.values()))
        return True, None
    try:
        error = check_peer() if impl == PEER else check_scan(preset, impl)
    except ImportError as missing:
        return False, f"{preset} / {impl}: not run ({missing})"
    if not error <= CHECK_TOLERANCE:
        return False, f"{preset} / {impl}: check FAILED (rel-RMS {error:.1e}); no speed reported"
    return True, f"{preset} / {impl}: matches the reference (max rel-RMS {error:.1e})"


def run_grid(args: argparse.Namespace) -> tuple[list[Cell], list[str]]:
    """Every cell of presets x impls x lengths; prints each row as soon as it is measured."""
    cells: list[Cell] = []
    notes: list[str] = []
    for preset in args.presets:
        for impl in args.impls:
            run, note = vet(preset, impl)
            notes += [note] if note else []
            over_budget = not run
            for length in args.lengths if run else ():
                cell = Cell(preset, impl, length, "skipped (budget)")
                if not over_budget:
                    cell.status = "ok"
                    step = peer_step(args, length) if impl == PEER else scan_step(preset, impl, args, length)
                    measure(step, args, cell, args.batch * length)
                    over_budget = cell.status != "ok"
                cells.append(cell)
                print(row(cell), flush=True)
    return cells, notes


# ---------------------------------------------------------------------------------------------
# report


def environment(args: argparse.Namespace) -> list[str]:
    return [
        f"- device: {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""),
        f"- CPU: {cpu_model()}, torch threads: {torch.get_num_threads()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}",
        f"- git commit: {git_commit()}",
        f"- shape: B={args.batch}, H={args.heads}, D={args.dim}, {str(args.dtype).removeprefix('torch.')}; "
        f"repeats {args.repeats} (median), budget {args.max_seconds:g} s per cell",
    ]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root, check=False).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


HEADER = "| preset | impl | T | fwd+bwd ms | tokens/s | peak MiB | runs |\n|---|---|---:|---:|---:|---:|---:|"


def row(cell: Cell) -> str:
    if cell.status != "ok":
        return f"| {cell.preset} | {cell.impl} | {cell.length} | {cell.status} | | | |"
    peak = "skipped (budget)" if cell.peak_mib is None else f"{cell.peak_mib:.1f}"
    speed = f"{cell.ms:.1f} | {cell.tokens_per_s:,.0f}"
    return f"| {cell.preset} | {cell.impl} | {cell.length} | {speed} | {peak} | {cell.repeats} |"


def report(args: argparse.Namespace, cells: list[Cell], notes: list[str]) -> str:
    memory = (
        "peak MiB: torch.cuda.max_memory_allocated() during forward + backward, minus the memory before it"
        if args.device.startswith("cuda")
        else "peak MiB: peak of (allocated - freed) bytes of the CPU allocator during forward + backward "
        "(torch.profiler memory records, a separate untimed run after the timed ones)"
    )
    lines = [
        "# Scan benchmarks: forward + backward",
        "",
        *environment(args),
        f"- {memory}",
        f"- `{PEER}`: titans-pytorch `NeuralMemory` aligned with the titans preset (docs/oracles.md), run on "
        "B*H sequences with heads=1 (the same B*H memories), including its q/k/v/gate projections",
        "",
        HEADER,
        *(row(c) for c in cells),
        "",
        "Checks and notes:",
        "",
        *(f"- {n}" for n in notes),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS), choices=sorted(PRESETS))
    parser.add_argument("--lengths", nargs="+", type=int, default=list(DEFAULT_LENGTHS))
    parser.add_argument("--impls", nargs="+", default=[*SCAN_IMPLS, PEER], choices=[*SCAN_IMPLS, PEER])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="wall-clock budget per cell")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    args.dtype = getattr(torch, args.dtype)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print("\n".join(environment(args)) + "\n\n" + HEADER, flush=True)
    cells, notes = run_grid(args)
    text = report(args, cells, notes)
    print("\n" + text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
