"""Index-based shuffling: the examples of any training step, computed without replaying the ones before."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of ``range(n)`` used in ``epoch`` (read-only)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    order.flags.writeable = False
    return order


def shuffled_batch(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Example indices ``[batch_size]`` of batch ``step`` when epochs over ``n`` examples are
    concatenated, each epoch in its own seeded random order (a batch may straddle two epochs)."""
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    epochs = positions // n
    out = np.empty(batch_size, dtype=np.int64)
    for epoch in np.unique(epochs):
        where = epochs == epoch
        out[where] = _epoch_order(n, seed, int(epoch))[positions[where] % n]
    return out
