"""Wall-clock latency and peak memory of a forward (and backward) pass, within a time budget."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import torch
from torch.profiler import ProfilerActivity, profile

from .peers import Workload


class BudgetExceeded(Exception):
    """A measurement ran past its budget."""


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


PROFILER_NOTICE = re.compile(r"^[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \w+\.cpp:\d+\] ")
"""A line of the C++ profiler's own log (``USDT:... SyncActivityProfilerHandler.cpp:52] profiler_start``)."""


@contextlib.contextmanager
def profiler_notices_dropped() -> Iterator[None]:
    """Run the block with the C++ profiler's log lines, which it writes to file descriptor 2 on every
    start and stop, left out of stderr; every other line written to stderr in the block is kept."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not PROFILER_NOTICE.match(line)))
            sys.stderr.flush()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def forward_only(work: Workload) -> Callable[[], None]:
    forward, _ = work
    return lambda: forward().detach()


def forward_backward(work: Workload) -> Callable[[], None]:
    forward, params = work
    return lambda: torch.autograd.grad(forward(), params, allow_unused=True)


def median_seconds(step: Callable[[], None], device: str, repeats: int, seconds: float) -> tuple[float, int] | None:
    """Median wall clock of up to ``repeats`` runs of ``step`` that fit in ``seconds``, and how
    many ran; ``None`` if not even one did."""
    times: list[float] = []
    with contextlib.suppress(BudgetExceeded), budget(seconds):
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times.append(time.perf_counter() - start)
    return (statistics.median(times), len(times)) if times else None


def peak_memory_mib(step: Callable[[], None], device: str) -> float:
    """Peak extra memory of ``step`` in MiB.

    CUDA: ``torch.cuda.max_memory_allocated()`` during ``step`` minus the memory allocated before.
    CPU: the peak of (bytes allocated - bytes freed) by PyTorch's CPU allocator during ``step``,
    from ``torch.profiler``'s memory records.
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    with profiler_notices_dropped(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    records = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    current = peak = 0
    for record in records:
        current += record.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def bounded_peak_mib(step: Callable[[], None], device: str, seconds: float) -> float | None:
    """:func:`peak_memory_mib` within ``seconds``; ``None`` if it ran past them."""
    with contextlib.suppress(BudgetExceeded), budget(seconds):
        return peak_memory_mib(step, device)
    return None


__all__ = [
    "BudgetExceeded",
    "bounded_peak_mib",
    "forward_backward",
    "forward_only",
    "median_seconds",
    "profiler_notices_dropped",
]
