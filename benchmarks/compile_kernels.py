"""Compile every Triton kernel of miras for an H100 (sm_90) ahead of time, on a machine without a GPU.

    python benchmarks/compile_kernels.py [--quick] [--json PATH] [--jobs N] [--timeout S] [--module dual|linear]

What it proves: each kernel of :mod:`miras.ops.kernels.dual` and :mod:`miras.ops.kernels.linear`,
at every specialization the launchers produce for realistic workloads, lowers through Triton's
pipeline (TTIR, TTGIR, LLVM IR, PTX) and ``ptxas`` to an sm_90a cubin; the table gives each
one's registers per thread, spill stores and loads (bytes per thread, from ``ptxas -v``), static
shared memory and compile time, or the compile error. A spill-free cubin within 255 registers
and the H100's 227 KiB of shared memory per block will load and launch.

What it cannot: whether the kernels compute the right numbers on the GPU (the CPU interpreter
tests and ``benchmarks/gpu_check.sh`` do that), how fast they run, or occupancy effects that
only a profiler shows. Registers and spills are ``ptxas``'s static report, not measured traffic.

How the specializations are found: every workload runs the real dispatcher
(``miras_scan(impl="triton")``), forward and backward, on CPU tensors. Triton's driver is replaced
by a stand-in that reports an sm_90 device, and a ``jit_cache_hook`` records each launch's
specialization exactly as Triton's JIT computes it on a GPU (pointer dtypes, constexprs, the
integer arguments' divisibility, ``num_warps``, ``num_stages``) and skips the launch, so the
outputs are garbage and only the launch arguments matter. The kernels' device checks (CUDA
tensors or ``TRITON_INTERPRET=1``) are bypassed for the same reason. Each distinct
specialization is then compiled with ``triton.compile(..., target=GPUTarget("cuda", 90, 32))``
into an empty cache directory (cold compile times), each in a forked process, ``--jobs`` at a
time; one still compiling after ``--timeout`` seconds is killed and reported (on a GPU that
compile would stall the first call just as long). Run it in a process of its own (it replaces
the process's Triton driver) without ``TRITON_INTERPRET``.

Workloads: every base preset (the hybrids share their specs) at D = 64 and 128 (the MLP
memories' hidden width 4 D) in fp32, bf16 and fp16; in fp32 at both widths, the MLP presets at
mini-batches of 64 as well as their 16, an MLP with a channel-wise decay (``G = in``, expansion
1), and the linear memory with every attentional bias the linear kernel implements and with
momentum.
``--quick``: D = 64 in fp32 for Titans (every dual-read kernel, with momentum) and Gated
DeltaNet (both linear-memory kernels), the subset ``tests/ops/test_kernels_lower.py`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
import triton
from triton import knobs
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.runtime.driver import driver

from miras.bench.inputs import gate_values
from miras.ops import miras_scan
from miras.ops.kernels import dual, linear
from miras.space import PRESETS, MirasSpec
from miras.space.gates import GateKind

TARGET = GPUTarget("cuda", 90, 32)
"""An H100: compute capability 9.0, warps of 32 threads."""
MAX_REGISTERS = 255
"""Registers per thread sm_90 allows."""
MAX_SHARED = 227 * 1024
"""Shared memory one block may use on an H100 (bytes)."""
DIMS = (64, 128)
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
LENGTH = 128
"""Tokens per sequence: two or more chunks of every mini-batch size, each full (bar Memora's lag token), so
no chunk count or length is specialized to 1 and all are multiples of 16, as in training."""
LINEAR_BIASES = (
    {"name": "l1", "params": {"smooth": "tanh"}},
    {"name": "lp", "params": {"p": 3.0, "smooth": "sqrt"}},
    {"name": "huber", "params": {"mode": "coordinate"}},
    {"name": "huber", "params": {"mode": "norm"}},
    {"name": "huber", "params": {"mode": "token"}},
    "robust",
)
"""The linear kernel's error signals the presets do not cover (they use ``dot`` and ``l2``)."""


@dataclass(frozen=True)
class Workload:
    """One scan the dispatcher runs: a spec, how its gates are made, a width and a dtype."""

    name: str
    spec: MirasSpec
    gates: dict[str, GateKind]
    dim: int
    dtype: torch.dtype

    @property
    def label(self) -> str:
        return f"{self.name} D{self.dim} {str(self.dtype).removeprefix('torch.')}"


@dataclass
class Launch:
    """One specialization of one kernel, as Triton's JIT would compile it, and who launched it."""

    kernel: str
    fn: Any
    """The ``JITFunction``."""
    signature: dict[str, str]
    constants: dict[tuple[int, ...], Any]
    attrs: dict[tuple[int, ...], Any]
    options: dict[str, Any]
    """``num_warps``, ``num_ctas``, ``num_stages``, ``enable_fp_fusion`` as the JIT chose them."""
    users: list[str] = field(default_factory=list)

    def constexprs(self) -> str:
        """``NAME=value`` for every constexpr (and integer specialized to 1), booleans as 0/1."""
        names = self.fn.arg_names
        return " ".join(f"{names[path[0]]}={int(value)}" for path, value in sorted(self.constants.items()))

    def pointers(self) -> str:
        """The distinct pointee types of the pointer arguments, in order (``bf16/fp32``)."""
        kinds = [t[1:] for t in self.signature.values() if t.startswith("*")]
        return "/".join(dict.fromkeys(kinds))


@dataclass
class Result:
    """What compiling one :class:`Launch` gave."""

    kernel: str
    constexprs: str
    pointers: str
    num_warps: int
    num_stages: int
    users: list[str]
    seconds: float
    registers: int | None = None
    stack: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    shared: int | None = None
    tensor_cores: str | None = None
    """``wgmma`` or ``mma`` when the PTX uses tensor-core instructions, ``none`` when every dot runs on FMAs."""
    cubin_bytes: int = 0
    error: str | None = None
    timed_out: bool = False

    @classmethod
    def of(cls, launch: Launch, seconds: float, error: str | None = None, timed_out: bool = False) -> Result:
        """``launch``'s row, before (or without) its ``ptxas`` report."""
        warps, stages = launch.options["num_warps"], launch.options["num_stages"]
        names = (launch.kernel, launch.constexprs(), launch.pointers())
        return cls(*names, warps, stages, launch.users, seconds, error=error, timed_out=timed_out)

    @property
    def verdict(self) -> str:
        """``ok``, or what would go wrong on an H100."""
        if self.timed_out:
            return "timeout"
        if self.error is not None:
            return "ERROR"
        problems = []
        if self.spill_stores or self.spill_loads:
            problems.append("spills")
        if self.shared is not None and self.shared > MAX_SHARED:
            problems.append("smem > 227K")
        return ", ".join(problems) or "ok"


# ----------------------------------------------------------------------------- workloads


def vary(spec: MirasSpec, axis: str, name: str | None = None, **params: Any) -> MirasSpec:
    """``spec`` with one axis renamed and/or some of its parameters changed."""
    choice = getattr(spec, axis)
    updated = {"name": name or choice.name, "params": {} if name else dict(choice.params)}
    updated["params"] |= params
    return MirasSpec(**{**dict(spec), axis: updated})


def workloads(quick: bool) -> list[Workload]:
    """The scans whose kernel launches are compiled (see the module docstring)."""
    if quick:
        return [Workload(p, PRESETS[p].spec, PRESETS[p].gates, 64, torch.float32) for p in ("titans", "gated_deltanet")]
    presets = [(name, p.spec, p.gates) for name, p in PRESETS.items() if not p.hybrid]
    deep = [(name, spec, gates) for name, spec, gates in presets if spec.memory.name != "linear"]
    variants = [(f"{name} b64", vary(spec, "algorithm", batch_size=64), gates) for name, spec, gates in deep]
    titans = PRESETS["titans"]
    channel = {**titans.gates, "decay": "channel"}
    variants.append(("titans channel decay x1", vary(titans.spec, "memory", expansion=1), channel))
    gdn = PRESETS["gated_deltanet"]
    for bias in LINEAR_BIASES:
        label = bias if isinstance(bias, str) else f"{bias['name']} {'/'.join(map(str, bias['params'].values()))}"
        variants.append((f"linear {label}", MirasSpec(**{**dict(gdn.spec), "bias": bias}), gdn.gates))
    momentum = vary(gdn.spec, "algorithm", "momentum")
    variants.append(("linear momentum", momentum, {**gdn.gates, "momentum": "data"}))
    return [Workload(n, s, g, d, t) for n, s, g in presets for d in DIMS for t in DTYPES] + [
        Workload(n, s, g, d, torch.float32) for n, s, g in variants for d in DIMS
    ]


def run_scan(work: Workload) -> None:
    """``miras_scan(impl="triton")`` forward and backward on small CPU tensors (B 1, H 1)."""
    gen = torch.Generator().manual_seed(0)
    batch, heads, dim = 1, 1, work.dim

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    q, k = (F.normalize(randn(batch, LENGTH, heads, dim), dim=-1) for _ in range(2))
    leaves = {"q": q, "k": k, "v": randn(batch, LENGTH, heads, dim)}
    components = work.spec.resolve()
    deep = work.spec.memory.name != "linear"
    gates = {}
    for spec in components.gate_specs():
        width = (dim,) if work.gates.get(spec.name) == "channel" else ()
        gates[spec.name] = gate_values(spec, randn(batch, LENGTH, heads, *width), deep)
    state = {name: randn(batch, heads, r, c) / c**0.5 for name, (r, c) in components.memory.shapes(dim, dim).items()}

    def leaf(x: torch.Tensor) -> torch.Tensor:
        return x.to(work.dtype).requires_grad_()

    leaves = {n: leaf(x) for n, x in leaves.items()}
    out, final = miras_scan(
        leaves["q"],
        leaves["k"],
        leaves["v"],
        work.spec,
        {n: leaf(x) for n, x in gates.items()},
        impl="triton",
        initial_state={n: leaf(x) for n, x in state.items()},
        output_final_state=True,
    )
    sum(x.float().sum() for x in [out, *final.values()]).backward()


class _StandInDriver:
    """What Triton's JIT asks of the driver before it compiles: an sm_90 device 0, stream 0."""

    def get_current_target(self) -> GPUTarget:
        return TARGET

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0


@contextlib.contextmanager
def recording(on_launch: Callable[[Any, dict[str, Any]], None]) -> Iterator[None]:
    """Kernel launches call ``on_launch(JitFunctionInfo, compile_args)`` instead of compiling and
    running; the kernels' device checks pass for CPU tensors. The stand-in driver stays active
    afterwards (Triton cannot make a real one without a GPU): run this in a process of its own."""

    def hook(*, fn: Any, compile: dict[str, Any], **_: Any) -> bool:
        on_launch(fn, compile)
        return True  # skip compiling and launching

    previous = knobs.runtime.jit_cache_hook
    driver.set_active(_StandInDriver())
    knobs.runtime.jit_cache_hook = hook
    try:
        with mock.patch.object(dual, "INTERPRETED", True), mock.patch.object(linear, "INTERPRETED", True):
            yield
    finally:
        knobs.runtime.jit_cache_hook = previous


def collect(works: list[Workload]) -> tuple[list[Launch], list[str]]:
    """Every distinct specialization the workloads launch, in launch order, and the workloads
    no Triton kernel runs (with the reason)."""
    launches: dict[tuple[str, str], Launch] = {}
    skipped = []
    current = ""

    def on_launch(fn: Any, args: dict[str, Any]) -> None:
        key = (fn.name, str(args["key"]))
        if key not in launches:
            attrs = args["configs"][0]
            options = {k: args[k] for k in ("num_warps", "num_ctas", "num_stages", "enable_fp_fusion")}
            launches[key] = Launch(fn.name, fn.jit_function, args["signature"], args["constants"], attrs, options)
        if current not in launches[key].users:
            launches[key].users.append(current)

    with recording(on_launch):
        for work in works:
            current = work.label
            try:
                run_scan(work)
            except ValueError as refused:
                skipped.append(f"{work.label}: {refused}")
    return list(launches.values()), skipped


# ----------------------------------------------------------------------------- compiling

_PTXAS = {
    "registers": re.compile(r"Used (\d+) registers"),
    "stack": re.compile(r"(\d+) bytes stack frame"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
}


def _reason(failure: BaseException) -> str:
    """The innermost cause of a compile failure, on one line (a ``CompilationError`` wraps the
    helper's error, whose message ends with what went wrong)."""
    while failure.__cause__ is not None:
        failure = failure.__cause__
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    return f"{type(failure).__name__}: {lines[-1] if lines else ''}"[:300]


def compile_one(launch: Launch) -> Result:
    """Compile ``launch`` for :data:`TARGET` and read ``ptxas -v``'s report."""
    result = Result.of(launch, 0.0)
    source = ASTSource(launch.fn, launch.signature, launch.constants, launch.attrs)
    log = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(log):  # knobs.nvidia.dump_ptxas_log prints ptxas's report
            compiled = triton.compile(source, target=TARGET, options=launch.options)
    except Exception as failure:  # any stage may fail; the table reports it
        result.error = _reason(failure)
    else:
        report = log.getvalue()
        for name, pattern in _PTXAS.items():
            found = pattern.search(report)
            setattr(result, name, int(found.group(1)) if found else None)
        result.shared = compiled.metadata.shared
        result.cubin_bytes = len(compiled.asm["cubin"])
        ptx = compiled.asm["ptx"]
        result.tensor_cores = next((op for op in ("wgmma", "mma") if f"\t{op}." in ptx), "none")
    result.seconds = time.perf_counter() - start
    return result


_PENDING: list[Launch] = []
"""What :func:`compile_all`'s forked workers compile (inherited, not pickled: ``JITFunction``s do not pickle)."""


def _compile_pending(index: int, send: Connection) -> None:
    """Worker: compile ``_PENDING[index]`` in a process group of its own (``ptxas`` included)."""
    os.setpgid(0, 0)
    send.send(compile_one(_PENDING[index]))


def compile_all(launches: list[Launch], jobs: int, timeout: float) -> Iterator[Result]:
    """:func:`compile_one` of each launch, in order, each in a forked process, ``jobs`` at a time;
    one still compiling after ``timeout`` seconds is killed and reported as timed out."""
    _PENDING[:] = launches
    fork = multiprocessing.get_context("fork")
    running: dict[int, tuple[multiprocessing.process.BaseProcess, Connection, float]] = {}
    done: dict[int, Result] = {}
    started = emitted = 0
    while emitted < len(launches):
        while started < len(launches) and len(running) < jobs:
            receive, send = fork.Pipe(duplex=False)
            worker = fork.Process(target=_compile_pending, args=(started, send))
            worker.start()
            running[started] = (worker, receive, time.perf_counter())
            started += 1
        for index, (worker, receive, start) in list(running.items()):
            elapsed = time.perf_counter() - start
            if receive.poll():
                done[index] = receive.recv()
            elif elapsed > timeout or not worker.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                why = f"timed out after {timeout:.0f} s" if elapsed > timeout else f"worker died ({worker.exitcode})"
                done[index] = Result.of(launches[index], elapsed, why, timed_out=elapsed > timeout)
            else:
                continue
            worker.join()
            del running[index]
        while emitted in done:
            yield done.pop(emitted)
            emitted += 1
        time.sleep(0.05)


# ----------------------------------------------------------------------------- report


def table(results: list[Result]) -> str:
    """A Markdown table, one row per compiled specialization."""
    columns = ("kernel", "constexprs", "pointers", "warps/stages", "regs", "spill st/ld (B)", "smem (KiB)")
    head = "| " + " | ".join((*columns, "tensor cores", "compile (s)", "verdict", "used by")) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        spills = "-" if r.spill_stores is None else f"{r.spill_stores}/{r.spill_loads}"
        shared = "-" if r.shared is None else f"{r.shared / 1024:.0f}"
        users = r.users[0] + (f" (+{len(r.users) - 1})" if len(r.users) > 1 else "")
        verdict = r.verdict if r.error is None or r.timed_out else f"ERROR {r.error}"
        lines.append(
            f"| {r.kernel} | {r.constexprs} | {r.pointers} | {r.num_warps}/{r.num_stages} | {r.registers or '-'} "
            f"| {spills} | {shared} | {r.tensor_cores or '-'} | {r.seconds:.1f} | {verdict} | {users} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="D 128 fp32, Titans and Gated DeltaNet only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiles at a time (default: CPUs)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one compile may take (default 120)")
    parser.add_argument("--module", choices=("dual", "linear"), help="compile only this module's kernels")
    args = parser.parse_args(argv)
    if knobs.runtime.interpret:
        print("TRITON_INTERPRET is set: the kernels are interpreted, nothing to compile", file=sys.stderr)
        return 2
    knobs.cache.dir = tempfile.mkdtemp(prefix="miras-aot-")
    knobs.nvidia.dump_ptxas_log = True
    start = time.perf_counter()
    launches, skipped = collect(workloads(args.quick))
    traced = time.perf_counter() - start
    results = []
    if args.module is not None:
        launches = [launch for launch in launches if launch.fn.module.endswith(f".{args.module}")]
    for result in compile_all(launches, args.jobs, args.timeout):
        results.append(result)
        print(f"compiled {result.kernel} {result.constexprs} in {result.seconds:.1f} s", file=sys.stderr)
    total = time.perf_counter() - start
    print(f"target {TARGET}, triton {triton.__version__}, ptxas from the triton wheel")
    print(table(results))
    for reason in skipped:
        print(f"not run by a Triton kernel: {reason}")
    bad = [r for r in results if r.verdict != "ok"]
    compile_s = sum(r.seconds for r in results)
    print(
        f"{len(results)} specializations of {len({r.kernel for r in results})} kernels, {len(bad)} not ok; "
        f"tracing {traced:.1f} s, compiling {compile_s:.1f} s ({args.jobs} at a time), wall {total:.1f} s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) | {"verdict": r.verdict} for r in results], indent=1))
    return 1 if any(r.error and not r.timed_out for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
