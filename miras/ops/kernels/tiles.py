"""What both kernel modules share: whether Triton interprets, block sizes, masked tile loads and stores."""

from __future__ import annotations

import triton
import triton.language as tl

INTERPRETED = bool(triton.knobs.runtime.interpret)
"""Whether the kernels run in Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import)."""


def block(size: int, cap: int | None = None) -> int:
    """A power-of-two block covering ``size`` (at least 16, ``tl.dot``'s minimum), at most ``cap``."""
    covering = max(16, triton.next_power_of_2(size))
    return covering if cap is None else min(covering, cap)


@triton.jit
def load_tile(ptr, rows, cols, n_rows, n_cols, stride):
    """``ptr[rows, cols]`` of a row-major ``[*, stride]`` matrix as fp32, zero outside ``[n_rows, n_cols]``."""
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    return tl.load(ptr + rows[:, None] * stride + cols[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def store_tile(ptr, value, rows, cols, n_rows, n_cols, stride):
    """``ptr[rows, cols] = value`` of a row-major ``[*, stride]`` matrix, inside ``[n_rows, n_cols]`` only."""
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    tl.store(ptr + rows[:, None] * stride + cols[None, :], value, mask=mask)
