"""How a memory computes over a sequence: one semantics (docs/semantics.md), several implementations.

- ``reference``: the specification, a loop over tokens (:mod:`miras.ops.reference`);
- ``chunked``: parallel inside each mini-batch, any spec (:mod:`miras.ops.chunked`, docs/ops.md);
- ``delta``: the exact chunk-parallel WY/UT transform of the delta-rule family at b = 1
  (:mod:`miras.ops.delta`).

:func:`miras_scan` runs one of them (``impl="auto"`` picks with :func:`select_impl`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ..space import Components, MirasSpec
from .chunked import chunked_scan, plan
from .common import State, prepare, resolve
from .delta import delta_scan, delta_unsupported
from .reference import reference_scan

IMPLS = ("reference", "chunked", "delta")

Scan = Callable[..., tuple[Tensor, State | None]]


def select_impl(
    q: Tensor, k: Tensor, v: Tensor, spec: MirasSpec | Components, gates: dict[str, Tensor]
) -> tuple[str, str]:
    """The implementation ``impl="auto"`` runs, and a one-line reason.

    ``"delta"`` when it applies (the delta-rule family at b = 1), else ``"chunked"``. Arguments as
    :func:`miras_scan`; raises ``ValueError`` on bad shapes or gates.
    """
    problem = prepare(q, k, v, resolve(spec), gates)
    why_not_delta = delta_unsupported(problem)
    if why_not_delta is None:
        return "delta", "delta-rule family at b = 1: exact chunk-parallel WY/UT transform"
    return "chunked", f"{plan(problem).reason} (not delta: {why_not_delta})"


def _scan(impl: str, q: Tensor, k: Tensor, v: Tensor, spec: Components, gates: dict[str, Tensor]) -> Scan:
    """The scan function of ``impl``; ``ValueError`` if unknown or not applicable."""
    if impl == "reference":
        return reference_scan
    if impl == "chunked":
        return chunked_scan
    if impl == "delta":
        why_not = delta_unsupported(prepare(q, k, v, spec, gates))
        if why_not is not None:
            raise ValueError(f"impl 'delta' does not apply to this spec: {why_not}")
        return delta_scan
    raise ValueError(f"unknown impl {impl!r}; choose 'auto' or one of {', '.join(IMPLS)}")


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
        impl: ``"auto"`` (see :func:`select_impl`), ``"reference"``, ``"chunked"`` or ``"delta"``;
            naming one that does not apply raises ``ValueError`` with the reason.
        chunk_size: tokens per chunk for ``delta``, and for ``chunked`` when mini-batch boundaries
            change nothing (see :func:`miras.ops.chunked.state_free`); default 64; ignored otherwise
            and by ``reference``.

    Returns:
        ``(o, final_state)``: outputs ``[B, T, H, D_v]``, and the final state or ``None``.
    """
    components = resolve(spec)
    if impl == "auto":
        impl, _ = select_impl(q, k, v, components, gates)
    scan = _scan(impl, q, k, v, components, gates)
    options = {} if scan is reference_scan else {"chunk_size": chunk_size}
    state = {"initial_state": initial_state, "output_final_state": output_final_state}
    return scan(q, k, v, components, gates, **state, **options)


__all__ = ["IMPLS", "chunked_scan", "miras_scan", "reference_scan", "select_impl"]
