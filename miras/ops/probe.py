"""Watch the memory's errors as the chunked scan computes them (health diagnostics).

Inside ``with observe_errors(fn):`` every mini-batch of :func:`miras.ops.chunked.scan`
calls ``fn(pred, target, gates)`` with the predictions at the weights its tokens are
differentiated at (``[B, H, n, D_v]``), the values and the chunk's gates (``[B, H, n, G]``). The
other implementations do not report: a caller that observes runs ``impl="chunked"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch import Tensor

Observer = Callable[[Tensor, Tensor, dict[str, Tensor]], None]

_observers: list[Observer] = []


@contextmanager
def observe_errors(observer: Observer) -> Iterator[None]:
    """Call ``observer`` with every mini-batch's predictions, values and gates while inside."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


def report(pred: Tensor, target: Tensor, gates: dict[str, Tensor]) -> None:
    """Pass one mini-batch to every active observer (a no-op when none is)."""
    for observer in _observers:
        observer(pred, target, gates)


__all__ = ["Observer", "observe_errors", "report"]
