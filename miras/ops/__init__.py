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

from torch import Tensor

from ..space import Components, MirasSpec
from .chunked import chunked_scan, plan
from .common import ScanProblem, State, prepare, resolve
from .compiled import compiled_scan
from .delta import delta_scan, delta_unsupported
from .reference import reference_scan

IMPLS = ("reference", "chunked", "delta", "compiled", "triton")

Scan = Callable[..., tuple[Tensor, State | None]]


def _triton_scan(problem: ScanProblem, chunk_size: int | None) -> tuple[Scan | None, str]:
    """The Triton scan of ``problem`` and what it runs, or ``None`` and why no kernel applies."""
    try:
        from .kernels import dual, linear
    except ImportError as missing:
        return None, f"triton is not importable ({missing})"
    why_not_linear = linear.linear_unsupported(problem, plan(problem, chunk_size))
    if why_not_linear is None:
        return linear.linear_scan, "one kernel for the whole scan of the linear memory"
    why_not_dual = dual.dual_unsupported(problem, chunk_size)
    if why_not_dual is None:
        return dual.mlp_scan, f"chunked with the Triton dual-form read (not the linear kernel: {why_not_linear})"
    return None, f"the linear kernel: {why_not_linear}; the dual-form read: {why_not_dual}"


def _pick(impl: str, problem: ScanProblem, chunk_size: int | None) -> tuple[Scan | None, str]:
    """The scan function of ``impl`` for ``problem``, or ``None`` and why it does not apply;
    ``ValueError`` for an unknown ``impl``."""
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; choose 'auto' or one of {', '.join(IMPLS)}")
    if impl == "delta":
        reason = delta_unsupported(problem)
        return (delta_scan, "") if reason is None else (None, reason)
    if impl == "triton":
        return _triton_scan(problem, chunk_size)
    return {"reference": reference_scan, "chunked": chunked_scan, "compiled": compiled_scan}[impl], ""


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
    scan, reason = _pick(impl, prepare(q, k, v, resolve(spec), gates), chunk_size)
    return reason if scan is None else None


def _select(problem: ScanProblem) -> tuple[str, str]:
    """:func:`select_impl` of a prepared problem.

    On CUDA the linear-attention family keeps the Triton kernel it ran before ``delta`` covered it
    (the two have not been timed against each other on a GPU); the delta-rule family runs ``delta``.
    """
    why_not_delta = delta_unsupported(problem)
    delta_reason = "delta-rule or linear-attention family: exact chunk-parallel WY/UT transform"
    hebbian = problem.components.bias.state_independent
    if why_not_delta is None and not (problem.k.is_cuda and hebbian):
        return "delta", delta_reason
    why_not_triton = "not on CUDA"
    if problem.k.is_cuda:
        scan, why_not_triton = _triton_scan(problem, None)
        if scan is not None:
            return "triton", why_not_triton
    if why_not_delta is None:
        return "delta", delta_reason
    return "chunked", f"{plan(problem).reason} (not delta: {why_not_delta}; not triton: {why_not_triton})"


def select_impl(
    q: Tensor, k: Tensor, v: Tensor, spec: MirasSpec | Components, gates: dict[str, Tensor]
) -> tuple[str, str]:
    """The implementation ``impl="auto"`` runs, and a one-line reason.

    ``"delta"`` when it applies (the delta-rule family at b = 1, linear attention); else on CUDA
    ``"triton"`` where its kernels apply; else ``"chunked"``. On CUDA, linear attention prefers
    ``"triton"`` to ``"delta"``. Arguments as :func:`miras_scan`; raises ``ValueError``
    on bad shapes or gates.
    """
    return _select(prepare(q, k, v, resolve(spec), gates))


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
    components = resolve(spec)
    problem = prepare(q, k, v, components, gates)
    if impl == "auto":
        impl, _ = _select(problem)
    scan, reason = _pick(impl, problem, chunk_size)
    if scan is None:
        raise ValueError(f"impl {impl!r} does not apply to this spec: {reason}")
    options = {} if scan is reference_scan else {"chunk_size": chunk_size}
    state = {"initial_state": initial_state, "output_final_state": output_final_state}
    return scan(q, k, v, components, gates, **state, **options)


__all__ = ["IMPLS", "chunked_scan", "compiled_scan", "miras_scan", "reference_scan", "select_impl", "why_not"]
