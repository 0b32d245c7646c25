"""How a memory computes over a sequence: one semantics (docs/semantics.md), several implementations.

- ``reference``: the specification, a loop over tokens (:mod:`miras.ops.reference`);
- ``chunked``: parallel inside each mini-batch, any spec (:mod:`miras.ops.chunked`, docs/ops.md);
- ``delta``: the exact chunk-parallel WY/UT transform of the delta-rule family at b = 1 and of
  linear attention (the dot bias) with an optional per-head decay (:mod:`miras.ops.delta`);
- ``compiled``: ``chunked`` with its chunk step compiled by ``torch.compile`` (:mod:`miras.ops.compiled`);
- ``triton``: GPU kernels (:mod:`miras.ops.kernels`, triton imported only when used): the whole
  scan of a linear memory with identity retention in one kernel, else ``chunked`` with a Triton
  dual-form read.

:func:`miras_scan` runs one of them (``impl="auto"`` picks with :func:`select_impl`);
:func:`why_not` says why one does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import Tensor

from ..space import Components, MirasSpec
from . import chunked, compiled, delta, reference
from .chunked import plan
from .common import ScanProblem, State, prepare, resolve
from .delta import delta_unsupported

PreparedScan = Callable[..., tuple[Tensor, State | None]]
"""``scan(problem, *, initial_state, output_final_state, chunk_size) -> (o, final_state)`` on a
:class:`~miras.ops.common.ScanProblem` (arguments and returns as :func:`miras_scan`)."""


@dataclass(frozen=True)
class Implementation:
    """One way to compute a scan: ``choose(problem, chunk_size)`` gives the prepared-problem scan
    that runs it and what it runs (one line), or ``None`` and why it does not apply."""

    name: str
    choose: Callable[[ScanProblem, int | None], tuple[PreparedScan | None, str]]
    auto_needs_cuda: bool = False
    """``auto`` picks it only for CUDA tensors (on the CPU the Triton interpreter is for tests)."""


def _always(scan: PreparedScan, what: str) -> Callable[[ScanProblem, int | None], tuple[PreparedScan, str]]:
    return lambda problem, chunk_size: (scan, what)


def _delta(problem: ScanProblem, chunk_size: int | None) -> tuple[PreparedScan | None, str]:
    reason = delta_unsupported(problem)
    if reason is not None:
        return None, reason
    return delta.scan, "delta-rule or linear-attention family: exact chunk-parallel WY/UT transform"


def _chunked(problem: ScanProblem, chunk_size: int | None) -> tuple[PreparedScan, str]:
    return chunked.scan, plan(problem, chunk_size).reason


def _triton(problem: ScanProblem, chunk_size: int | None) -> tuple[PreparedScan | None, str]:
    """The whole-scan kernel of the linear memory where it applies, else the chunked scan with the
    Triton dual-form read (triton imported only here)."""
    try:
        from .kernels import dual, linear
    except ImportError as missing:
        return None, f"triton is not importable ({missing})"
    why_not_linear = linear.linear_unsupported(problem, chunk_size)
    if why_not_linear is None:
        return linear.scan, "one kernel for the whole scan of the linear memory"
    why_not_dual = dual.dual_unsupported(problem, chunk_size)
    if why_not_dual is None:
        return dual.scan, f"chunked with the Triton dual-form read (not the linear kernel: {why_not_linear})"
    return None, f"the linear kernel: {why_not_linear}; the dual-form read: {why_not_dual}"


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in (
        Implementation("reference", _always(reference.scan, "the token loop (the specification)")),
        Implementation("chunked", _chunked),
        Implementation("delta", _delta),
        Implementation("compiled", _always(compiled.scan, "chunked with the chunk step under torch.compile")),
        Implementation("triton", _triton, auto_needs_cuda=True),
    )
}
"""Every implementation by name; ``impl`` names one of these or ``auto``."""
IMPLS = tuple(IMPLEMENTATIONS)


def _preference(problem: ScanProblem) -> tuple[str, ...]:
    """The order ``auto`` tries: ``delta``, ``triton``, then ``chunked`` (which always applies); on
    CUDA, linear attention keeps the Triton kernel it ran before ``delta`` covered it (the two have
    not been timed against each other on a GPU)."""
    if problem.k.is_cuda and problem.components.bias.state_independent:
        return ("triton", "delta", "chunked")
    return ("delta", "triton", "chunked")


def _choose(impl: str, problem: ScanProblem, chunk_size: int | None) -> tuple[str, PreparedScan, str]:
    """The implementation ``impl`` (or ``auto``'s choice) runs for ``problem``: its name, scan and a
    one-line reason; ``ValueError`` for an unknown ``impl`` or one that does not apply."""
    if impl == "auto":
        skipped = []
        for name in _preference(problem):
            if IMPLEMENTATIONS[name].auto_needs_cuda and not problem.k.is_cuda:
                skipped.append(f"{name}: not on CUDA")
                continue
            scan, what = IMPLEMENTATIONS[name].choose(problem, chunk_size)
            if scan is not None:
                return name, scan, what + (f" (not {'; not '.join(skipped)})" if skipped else "")
            skipped.append(f"{name}: {what}")
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown impl {impl!r}; choose 'auto' or one of {', '.join(IMPLS)}")
    scan, what = IMPLEMENTATIONS[impl].choose(problem, chunk_size)
    if scan is None:
        raise ValueError(f"impl {impl!r} does not apply to this spec: {what}")
    return impl, scan, what


def miras_scan(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    spec: MirasSpec | Components,
    gates: dict[str, Tensor],
    *,
    initial_state: State | None = None,
    output_final_state: bool = False,
    impl: str = "auto",
    chunk_size: int | None = None,
) -> tuple[Tensor, State | None]:
    """Run a Miras memory over a sequence: write every token, read it with its query.

    Args:
        q: queries ``[B, T, H, D_k]``.
        k: keys ``[B, T, H, D_k]``.
        v: values ``[B, T, H, D_v]``.
        spec: the point of the design space (a :class:`MirasSpec` or its resolved :class:`Components`).
        gates: per-token gates, name -> ``[B, T, H]`` (per head) or ``[B, T, H, D]`` (channel-wise);
            exactly the names of ``spec.resolve().required_gates()``: ``lr`` (always), ``decay``
            (retentions with a decay), ``momentum`` (momentum), ``delta`` (huber). ``lr`` and
            ``delta`` act on the error signal (``D = D_v``); ``decay`` and ``momentum`` act on the
            input dimension of every weight (``D`` = that width, e.g. ``D_k`` for the linear memory).
        initial_state: the state before token 0, name -> ``[B, H, out, in]``: the dual accumulator
            ``A`` of each weight (the memory reads ``psi(A)``, psi the retention's mirror map) and,
            for momentum algorithms, ``"momentum.<name>"``. Missing entries are zeros; shapes per
            head are ``spec.resolve().memory.shapes(D_k, D_v)``.
        output_final_state: also return the state after the last token (same layout).
        impl: ``"auto"`` (see :func:`select_impl`) or one of :data:`IMPLS`; naming one that does
            not apply raises ``ValueError`` with the reason (:func:`why_not`).
        chunk_size: tokens per chunk for ``delta``, and for the chunked implementations when
            mini-batch boundaries change nothing (see :func:`miras.ops.chunked.state_free`);
            default 64; ignored otherwise and by ``reference``.

    Returns:
        ``(o, final_state)``: outputs ``[B, T, H, D_v]``, and the final state or ``None``.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of tokens, got {chunk_size}")
    problem = prepare(q, k, v, resolve(spec), gates)
    _, scan, _ = _choose(impl, problem, chunk_size)
    return scan(problem, initial_state=initial_state, output_final_state=output_final_state, chunk_size=chunk_size)


def why_not(
    impl: str,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    spec: MirasSpec | Components,
    gates: dict[str, Tensor],
    chunk_size: int | None = None,
) -> str | None:
    """Why ``impl`` cannot run these arguments (one sentence), or ``None`` when it can.

    ``reference``, ``chunked`` and ``compiled`` run every valid spec; ``delta`` the delta-rule
    family at b = 1 and linear attention with a per-head (or no) decay; ``triton`` needs triton,
    a CUDA tensor (or ``TRITON_INTERPRET=1``) and a spec its kernels cover. Arguments as
    :func:`miras_scan`; ``ValueError`` on bad shapes, gates or impl.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown impl {impl!r}; choose 'auto' or one of {', '.join(IMPLS)}")
    scan, reason = IMPLEMENTATIONS[impl].choose(prepare(q, k, v, resolve(spec), gates), chunk_size)
    return reason if scan is None else None


def select_impl(
    q: Tensor, k: Tensor, v: Tensor, spec: MirasSpec | Components, gates: dict[str, Tensor]
) -> tuple[str, str]:
    """The implementation ``impl="auto"`` runs, and a one-line reason.

    ``"delta"`` when it applies (the delta-rule family at b = 1, linear attention); else on CUDA
    ``"triton"`` where its kernels apply; else ``"chunked"``. On CUDA, linear attention prefers
    ``"triton"`` to ``"delta"``. Arguments as :func:`miras_scan`; raises ``ValueError``
    on bad shapes or gates.
    """
    name, _, reason = _choose("auto", prepare(q, k, v, resolve(spec), gates), None)
    return name, reason


reference_scan = partial(miras_scan, impl="reference")
""":func:`miras_scan` with ``impl="reference"``: the token loop."""
chunked_scan = partial(miras_scan, impl="chunked")
""":func:`miras_scan` with ``impl="chunked"``."""
delta_scan = partial(miras_scan, impl="delta")
""":func:`miras_scan` with ``impl="delta"`` (``ValueError`` where it does not apply)."""
compiled_scan = partial(miras_scan, impl="compiled")
""":func:`miras_scan` with ``impl="compiled"``."""


__all__ = [
    "IMPLEMENTATIONS",
    "IMPLS",
    "Implementation",
    "chunked_scan",
    "compiled_scan",
    "delta_scan",
    "miras_scan",
    "reference_scan",
    "select_impl",
    "why_not",
]
