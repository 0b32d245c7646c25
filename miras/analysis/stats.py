"""Confidence intervals: Student-t intervals of a mean, used for seeds and for paired differences, and the
rule by which the report shows them.

The rule (docs/analysis.md, "Statistics", and the report's Method notes):

- fewer than :data:`MIN_N` values: no interval (``too few seeds (n = 2)``). With two values the 95%
  t-interval is the mean ± 9 times their distance apart, and it rests on a normality two values cannot
  check, so it says nothing the two values do not;
- every value equal: no interval (``all seeds equal``). The sample shows no spread, which is not
  certainty: the t-interval would have zero width whatever the true spread is;
- a metric whose range the harness knows (:func:`metric_range`: accuracies are fractions correct in
  [0, 1], losses and bits per byte are at least 0, perplexities at least 1) has its interval cut at the
  range (``high clipped at 1``). The true mean lies in the range, so the cut interval covers it exactly
  as often as the t-interval does; the part outside was never possible.

Every :class:`Interval` says in ``note`` which of these applied (empty for a plain t-interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95

MIN_N = 3
"""Fewest values an interval is given for (see the module's docstring)."""

METRIC_RANGES: tuple[tuple[str, tuple[float, float]], ...] = (
    ("accuracy", (0.0, 1.0)),
    ("perplexity", (1.0, math.inf)),
    ("bits_per_byte", (0.0, math.inf)),
    ("loss", (0.0, math.inf)),
)
"""What the tasks log (``miras/runners/tasks``): ``*accuracy*`` is hits / total, a fraction in [0, 1];
``*loss`` a mean negative log-likelihood in nats, at least 0; ``*perplexity`` its exponential, at least 1;
``*bits_per_byte`` nats / (ln 2 · bytes), at least 0. The first name a metric contains decides."""

EQUAL = 1e-9
"""Values whose spread is below this fraction of their size (or of 1) count as all equal."""


def metric_range(metric: str | None) -> tuple[float, float] | None:
    """The range of a metric the harness logs, by its name (``best_test_accuracy`` -> ``(0, 1)``); ``None``
    for a metric of unknown range (a final measurement, a custom metric)."""
    if not metric:
        return None
    return next((bounds for word, bounds in METRIC_RANGES if word in metric), None)


def difference_range(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """The range of a difference of two values in ``bounds``: ``(0, 1)`` -> ``(-1, 1)``."""
    if bounds is None:
        return None
    low, high = bounds
    return (low - high, high - low)


def _bound(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Interval:
    """A sample mean with its two-sided interval as the report shows it (see the module's docstring).

    ``low``/``high`` are ``nan`` with fewer than :data:`MIN_N` values or when all are equal, and cut at
    the metric's range; ``t_low``/``t_high`` keep the plain t-interval (``nan`` below two values).
    ``note`` says why the bounds differ from the plain t-interval (empty when they do not).
    """

    mean: float
    low: float
    high: float
    std: float
    n: int
    note: str = ""
    t_low: float = math.nan
    t_high: float = math.nan

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def t_interval(
    values: np.ndarray | list[float],
    confidence: float = CONFIDENCE,
    *,
    bounds: tuple[float, float] | None = None,
    unit: str = "values",
    min_n: int = MIN_N,
) -> Interval:
    """Mean ± t_{(1+c)/2, n-1} · s / √n over the finite values (missing values are ignored), under the
    report's rule: none below ``min_n`` values or when all are equal, cut at ``bounds`` (the metric's range,
    :func:`metric_range`). ``unit`` names the values in the note (``seeds``, ``pairs``)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0, "no result")
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1, f"too few {unit} (n = 1)")
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    t_low, t_high = mean - half, mean + half
    if n < min_n:
        return Interval(mean, math.nan, math.nan, std, n, f"too few {unit} (n = {n})", t_low, t_high)
    if float(np.ptp(x)) <= EQUAL * max(1.0, abs(mean)):
        return Interval(mean, math.nan, math.nan, std, n, f"all {unit} equal", t_low, t_high)
    low, high, cut = t_low, t_high, []
    if bounds is not None:
        if low < bounds[0]:
            low = bounds[0]
            cut.append(f"low clipped at {_bound(bounds[0])}")
        if high > bounds[1]:
            high = bounds[1]
            cut.append(f"high clipped at {_bound(bounds[1])}")
    return Interval(mean, low, high, std, n, ", ".join(cut), t_low, t_high)
