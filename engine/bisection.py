"""Bisection for a monotone search over a fixed number of halvings."""

from __future__ import annotations

from typing import Callable


def bisect(too_low: Callable[[float], bool], lo: float, hi: float, steps: int) -> float:
    """The midpoint of [lo, hi] after ``steps`` halvings, keeping the half where
    ``too_low`` turns false (it is true below the sought value, false above). A
    value outside [lo, hi] ends (hi - lo) / 2**(steps+1) inside the nearer end."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if too_low(mid):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
