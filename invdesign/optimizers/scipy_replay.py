"""Turning callback-driven ``scipy.optimize.minimize`` into ask/tell by deterministic replay.

Not an optimizer: the abstract base of ``scipy_lbfgsb`` and ``scipy_slsqp``.

scipy calls ``fun(x)`` itself. Instead of running it in a thread or a generator (whose state
cannot be saved), the state here is just the list of evaluations told so far. On each step scipy
is re-run *from the start* with an oracle that answers from that list (looked up by the exact
bytes of ``x``) and raises ``_NeedPoint`` at the first ``x`` it has no answer for: that ``x`` is
the next ask. scipy is deterministic, so every replay retraces the same path; a finished replay
means scipy has terminated (``done``). Saving is trivial (the list), loading replays once.
The price is re-running scipy's own arithmetic on each step: about 0.08 ms per recorded evaluation
(measured, L-BFGS-B in 20-D), so the n-th ask costs ~0.08 n ms and a whole run ~0.04 n^2 ms:
0.4 s for 100 evaluations, 40 s for 1000. Negligible next to NEGF simulations (seconds each), not
next to microsecond toy functions; a thread-based adapter would avoid it but could not be saved.

Failed evaluations: the oracle answers ``f = worst + max(1, |worst|)`` (``worst``: highest merit
answered so far in this replay, so still deterministic) with a zero gradient, which makes scipy's
line search back off.

Restarts: when the starting point fails to evaluate, or scipy ends unsuccessfully (e.g. SLSQP's
"singular matrix" at a start where a constraint gradient vanishes), scipy is run again from a
random point, up to ``restarts`` times. Start ``k >= 1`` is ``problem.random_points(1, seed')``
with ``seed'`` derived from ``(seed, k)``, so the starts need no state either.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
import torch

from invdesign.optimizers.base import Optimizer, gradient_record, make_generator


class _NeedPoint(Exception):
    """Raised by the oracle at the first point without a recorded evaluation."""

    def __init__(self, x: np.ndarray) -> None:
        super().__init__("need an evaluation")
        self.x = np.array(x, dtype=np.float64, copy=True)


class Oracle:
    """Answers scipy's calls from the recorded evaluations; raises ``_NeedPoint`` otherwise.

    ``raw(x)`` is the recorded evaluation (dict with value, grad, constraints, constraint_grads)
    or None for a failed one.
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._table: dict[bytes, dict[str, Any] | None] = {}
        for record in records:
            self._table.setdefault(_key(record["x"]), record["raw"])
        self.worst = -math.inf

    def raw(self, x: np.ndarray) -> dict[str, Any] | None:
        key = _key(x)
        if key not in self._table:
            raise _NeedPoint(x)
        return self._table[key]

    def failed_value(self) -> float:
        """Stand-in objective for a failed point: clearly worse than anything seen."""
        worst = self.worst if math.isfinite(self.worst) else 0.0
        return worst + max(1.0, abs(worst))

    def saw(self, value: float) -> float:
        self.worst = max(self.worst, value)
        return value


def _key(x: Any) -> bytes:
    return np.ascontiguousarray(x, dtype=np.float64).tobytes()


class ScipyReplay(Optimizer):
    """Abstract: a scipy method run by replay. Subclasses implement ``_run(oracle, x0)``, which
    calls scipy with functions built on the oracle and returns when scipy terminates."""

    uses_gradient = True

    def __init__(self, problem: Any, seed: int, settings: dict[str, Any]) -> None:
        super().__init__(problem, seed, settings)
        bounds = torch.as_tensor(problem.bounds, dtype=torch.float64)
        self._lo, self._hi = bounds[0], bounds[1]
        # scipy takes None for an infinite bound
        self.scipy_bounds = [(lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None)
                             for lo, hi in zip(self._lo.tolist(), self._hi.tolist())]
        self._records: list[dict[str, Any]] = []
        self._next: torch.Tensor | None = None
        self._replay()

    @property
    def done(self) -> bool:
        return self._next is None

    @abc.abstractmethod
    def _run(self, oracle: Oracle, x0: np.ndarray) -> bool:
        """Run scipy to termination on the oracle's functions (may raise ``_NeedPoint``);
        return whether scipy reported success."""

    def start(self, k: int) -> np.ndarray:
        """Starting point of run ``k``: the problem's initial point, then seeded random points."""
        if k == 0:
            point = torch.as_tensor(self.problem.initial_point(), dtype=torch.float64)
        else:
            generator = make_generator(self.seed * 100_003 + k)
            point = self.problem.random_points(1, generator)[0].to(torch.float64)
        return torch.minimum(torch.maximum(point, self._lo), self._hi).numpy()

    def _replay(self) -> None:
        oracle = Oracle(self._records)
        try:
            for k in range(self.settings["restarts"] + 1):
                x0 = self.start(k)
                if oracle.raw(x0) is not None and self._run(oracle, x0):
                    break
        except _NeedPoint as need:
            self._next = torch.from_numpy(need.x)
        else:
            self._next = None

    def _ask(self) -> torch.Tensor:
        if self._next is None:  # finished: asking again just re-evaluates the start
            return torch.from_numpy(self.start(0))[None]
        return self._next[None]

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        self._records.append({"x": points[0].tolist(), "raw": gradient_record(evaluations[0])})
        self._replay()

    def _state_dict(self) -> dict[str, Any]:
        return {"records": self._records}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._records = list(state["records"])
        self._replay()

