"""Counter-based random numbers: every draw is a pure function of (example seed, stream, slot).

An example generated from seed ``s`` is then the same whichever other examples are generated
with it, so a split is defined by its seed range alone, and whole splits are generated in a few
vectorised numpy operations. The mixer is SplitMix64's finaliser (Steele et al., 2014).
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniforms(seeds: np.ndarray, stream: int, n: int) -> np.ndarray:
    """Uniform draws in the open interval (0, 1).

    Args:
        seeds: ``[N]`` non-negative integer example seeds.
        stream: which independent stream of draws (one per use inside an example).
        n: draws per example.
    Returns:
        float64 ``[N, n]``; row ``i`` depends only on ``(seeds[i], stream)``.
    """
    stream_key = _mix(np.asarray([stream], dtype=np.uint64) * _GOLDEN + _GOLDEN)
    per_example = _mix((np.asarray(seeds, dtype=np.uint64) + _GOLDEN) ^ stream_key)
    counters = (np.arange(n, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
    bits = _mix(per_example[:, None] + counters[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
