"""Percentiles, once: the linear quantile (``numpy.quantile``'s default) and nearest-rank percentiles.

:func:`quantile` interpolates between neighbours (the seed's ``np.quantile(lengths, 0.9)`` for
the GRPO prompt-length rule, eval's token percentiles); :func:`percentiles` reports observed
values only (``numpy.percentile(..., method="inverted_cdf")``), for data summaries. Pure Python,
no numpy. Not handled: weighted data, NaN values.

>>> quantile([1, 2, 3, 4], 0.5)
2.5
>>> percentiles([5, 1, 3])
{'p50': 3, 'p90': 5, 'p99': 5, 'max': 5}
"""

from __future__ import annotations

PERCENTILES = (50, 90, 99)


def quantile(values, q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation, or None for no values."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def nearest_rank(values, p: int):
    """The smallest observed value with at least ``p`` percent of the values at or below it."""
    xs = sorted(values)
    rank = max(1, -(-len(xs) * p // 100))  # ceil(n * p / 100), in integers
    return xs[rank - 1]


def percentiles(values) -> dict | None:
    """p50/p90/p99/max as observed values (nearest rank), or None for no values."""
    values = list(values)
    if not values:
        return None
    out = {f"p{p}": int(nearest_rank(values, p)) for p in PERCENTILES}
    out["max"] = int(max(values))
    return out


def round_loss(value):
    """A loss as reported to people: 4 significant digits (None stays None)."""
    return None if value is None else float(f"{value:.4g}")
