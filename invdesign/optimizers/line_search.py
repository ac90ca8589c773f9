"""Strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5 and 3.6) written for ask/tell.

Not an optimizer: a pure function of the trials seen so far. ``strong_wolfe`` re-runs the
bracketing/zoom algorithm from the start over the recorded trials ``(alpha, phi, dphi)`` and stops
at the first step length it has no record for: that is the next trial. The line search's whole
state is therefore the list of trials, which serialises trivially and replays identically.

A failed evaluation is recorded as ``phi = +inf`` (``dphi = nan``): it violates the sufficient-
decrease condition, so the search brackets it and bisects back towards the last good step.
"""

from __future__ import annotations

import math
from collections.abc import Callable


class _NeedTrial(Exception):
    """Raised by the replay probe at the first step length without a recorded trial."""

    def __init__(self, alpha: float) -> None:
        super().__init__(alpha)
        self.alpha = alpha


def strong_wolfe(phi0: float, dphi0: float, alpha1: float, alpha_max: float,
                 trials: list[tuple[float, float, float]], *, c1: float = 1e-4, c2: float = 0.9,
                 alpha_tol: float = 1e-14, max_trials: int = 25) -> tuple[str, float]:
    """Next action of the line search on ``phi(alpha)``, given ``phi(0) = phi0``,
    ``phi'(0) = dphi0 < 0`` and the trials so far.

    Returns ``("try", alpha)`` for the next trial, ``("accept", i)`` with ``i`` the index of the
    accepted trial (strong Wolfe conditions; or, once ``max_trials`` are spent or the bracket is
    narrower than ``alpha_tol``, the lowest trial with sufficient decrease), or ``("fail", -1)``.
    """
    position = 0

    def probe(alpha: float) -> tuple[int, float, float]:
        nonlocal position
        if position == len(trials):
            raise _NeedTrial(alpha)
        recorded, phi, dphi = trials[position]
        if recorded != alpha:  # the replay is deterministic; a mismatch is a bug, not bad luck
            raise RuntimeError(f"line search replay diverged: {recorded!r} != {alpha!r}")
        position += 1
        return position - 1, phi, dphi

    try:
        index = _search(probe, phi0, dphi0, alpha1, alpha_max, c1, c2, alpha_tol)
    except _NeedTrial as need:
        if len(trials) < max_trials:
            return "try", need.alpha
        index = None
    if index is None:
        index = _best_sufficient_decrease(phi0, dphi0, trials, c1)
    return ("fail", -1) if index is None else ("accept", index)


def _best_sufficient_decrease(phi0: float, dphi0: float, trials: list[tuple[float, float, float]],
                              c1: float) -> int | None:
    best = None
    for i, (alpha, phi, _) in enumerate(trials):
        if phi <= phi0 + c1 * alpha * dphi0 and phi < phi0:
            if best is None or phi < trials[best][1]:
                best = i
    return best


def _search(probe: Callable[[float], tuple[int, float, float]], phi0: float, dphi0: float,
            alpha1: float, alpha_max: float, c1: float, c2: float, alpha_tol: float) -> int | None:
    """Algorithm 3.5 (bracketing): returns the accepted trial's index, None if none found."""

    def armijo(alpha: float, phi: float) -> bool:
        return phi <= phi0 + c1 * alpha * dphi0  # False for nan and +inf (failed trials)

    prev = (0.0, phi0, dphi0, None)
    alpha = alpha1
    first = True
    while True:
        i, phi, dphi = probe(alpha)
        if not armijo(alpha, phi) or (not first and phi >= prev[1]):
            return _zoom(probe, prev, (alpha, phi, dphi, i), phi0, dphi0, c1, c2, alpha_tol)
        if abs(dphi) <= -c2 * dphi0:
            return i
        if dphi >= 0.0:
            return _zoom(probe, (alpha, phi, dphi, i), prev, phi0, dphi0, c1, c2, alpha_tol)
        if alpha >= alpha_max:
            return i  # sufficient decrease at the end of the feasible path: take it
        prev = (alpha, phi, dphi, i)
        alpha = min(4.0 * alpha, alpha_max)
        first = False


def _zoom(probe: Callable[[float], tuple[int, float, float]], lo: tuple, hi: tuple, phi0: float,
          dphi0: float, c1: float, c2: float, alpha_tol: float) -> int | None:
    """Algorithm 3.6: ``lo`` has sufficient decrease and the lowest phi; the minimiser of the
    bracket lies between ``lo`` and ``hi``. Tuples are ``(alpha, phi, dphi, trial index)``."""
    while abs(hi[0] - lo[0]) > alpha_tol:
        alpha = _interpolate(lo, hi)
        i, phi, dphi = probe(alpha)
        if phi > phi0 + c1 * alpha * dphi0 or not phi < lo[1]:
            hi = (alpha, phi, dphi, i)
        else:
            if abs(dphi) <= -c2 * dphi0:
                return i
            if dphi * (hi[0] - lo[0]) >= 0.0:
                hi = lo
            lo = (alpha, phi, dphi, i)
    return lo[3]


def _interpolate(lo: tuple, hi: tuple) -> float:
    """Minimiser of the cubic through both ends (as torch.optim.lbfgs), kept 10% away from the
    ends; bisection when the cubic is undefined (a failed end, no real minimiser)."""
    (x1, f1, g1, _), (x2, f2, g2, _) = lo, hi
    left, right = min(x1, x2), max(x1, x2)
    margin = 0.1 * (right - left)
    if all(math.isfinite(v) for v in (f1, g1, f2, g2)) and x1 != x2:
        d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2)
        square = d1 * d1 - g1 * g2
        if square >= 0.0:
            d2 = math.sqrt(square)
            if x1 <= x2:
                num, den, alpha = g2 + d2 - d1, g2 - g1 + 2.0 * d2, x2
                step = (x2 - x1)
            else:
                num, den, alpha = g1 + d2 - d1, g1 - g2 + 2.0 * d2, x1
                step = (x1 - x2)
            if den != 0.0:
                candidate = alpha - step * (num / den)
                if math.isfinite(candidate) and left + margin <= candidate <= right - margin:
                    return candidate
    return 0.5 * (left + right)
