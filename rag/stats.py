"""The one percentile every report uses (bench, eval, the load script): linear between the two
nearest ranks, as numpy's default, with q on a 0..100 scale."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """NaN for no values: no number is better than a made-up one."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
