"""Multi-start local gradient search: K L-BFGS (or Adam) members advanced together, one batched ask per step.

What it exploits: exact gradients, and a problem that evaluates K points in one batched call
(``simulate_batch``, ``invdesign.batch_eval``): each ``ask()`` returns one point per member, shape
``(K, dim)``, so every step costs K gradient evaluations but, on such a problem, about the wall time of one
or two. Each member is an ordinary optimizer of this package (``lbfgs``: projected L-BFGS, its own two-loop
recursion and strong-Wolfe line search; or ``adam``) built on a view of the problem that starts it at its
start point, so bounds are handled by the members' projection and response constraints by their augmented
Lagrangian; everything here is about where members start and when they stop.

Starts. Member 0 starts at ``problem.initial_point()`` (``include_initial``: in a campaign, the seed's
random start every optimizer shares); the others, and every restart, at the next point of a scrambled Sobol
sequence (seeded) of the unit cube, skipping points within ``cull_radius`` of a basin already found or of a
running member (at most ``start_tries`` draws per start).

Culling and restarts (after every step, in this order, a restarted member taking the next start):
- ``converged``: the member is done by its own criterion; its best point is recorded as a basin.
- ``stalled``: its best value has not improved by more than ``stall_rtol * max(1, |best|)`` over its last
  ``patience`` evaluations (not recorded: the basin's minimum may lie further on, and a later member
  descending there must not be culled by a point short of it).
- ``duplicate``: two members' best points are within ``cull_radius`` of each other: the worse one goes
  (they are descending into the same basin; one is enough).
- ``known_basin``: a member's best point is within ``cull_radius`` of a recorded basin that is better.
Distances are RMS per-coordinate distances in the unit cube (``problem.to_unit``), so the radius does not
depend on the dimension or the parameters' units.

Cheap constraints (``on="params"``) never cost a simulation: a point a member asks that violates one is
told back to it at once as a failed evaluation of cost 0 (``cheap_constraints.rejection``), so its line
search backs off towards its feasible iterate as from a failed simulation, and the member is asked again
(``max_rejections`` times at most, then it restarts); start points are drawn feasible (rejection, then
``cheap_constraints.repair``). A member reaching the boundary of a cheap constraint therefore stops there
(a barrier, not a projection along the boundary).

``max_starts`` bounds the number of starts (None: restart for ever, the budget ends the run); once spent,
finished members are not replaced, ``batch_size`` shrinks, and the run is done when none is left.

State: the members' own state dicts, their starts and counters, the basins, the number of Sobol points
drawn (the engine is fast-forwarded on load), so a loaded optimizer continues exactly.
"""

from __future__ import annotations

import math
from typing import Any, final

import torch

from invdesign.optimizers.base import Optimizer, StartingAt, as_tensor, violation
from invdesign.optimizers.cheap_constraints import feasible, rejection, repair, violated

LOCALS = ("lbfgs", "adam")
PATIENCE = {"lbfgs": 20, "adam": 100}  # default patience per local method (see __init__)
REASONS = ("converged", "stalled", "duplicate", "known_basin", "rejected")


class _Member:
    """One local search: its optimizer, start, and progress counters (``key``: its best's rank value)."""

    def __init__(self, number: int, start: torch.Tensor, optimizer: Optimizer) -> None:
        self.number = number
        self.start = start
        self.optimizer = optimizer
        self.key: list[float] | None = None  # [0, value] feasible, [1, violation] infeasible; None: nothing yet
        self.since = 0  # evaluations since the key last improved by more than the stall tolerance


@final
class MultiStart(Optimizer):
    """K local gradient searches (L-BFGS or Adam) from a Sobol design, culled per basin, one ask of K points."""

    name = "multistart"
    uses_gradient = True
    constraint_handling = "augmented_lagrangian"
    description = "K L-BFGS (or Adam) members from a scrambled Sobol design, basin culling and restarts, one batched ask of K points"

    def __init__(self, problem: Any, seed: int, *, members: int = 4, local: str = "lbfgs",
                 local_settings: dict[str, Any] | None = None, include_initial: bool = True,
                 cull_radius: float = 0.05, patience: int | None = None, stall_rtol: float = 1e-5,
                 max_starts: int | None = None, max_rejections: int = 64, start_tries: int = 64) -> None:
        """
        members: K, local searches run at once (points per ask). local: "lbfgs" or "adam".
        local_settings: settings of every member (e.g. ``{"history": 5}``). include_initial: member 0
        starts at the problem's initial point. cull_radius: RMS unit-cube distance under which two
        points are one basin. patience, stall_rtol: a member whose best improved by at most
        ``stall_rtol * max(1, |best|)`` in its last ``patience`` evaluations restarts (None: 20 for
        L-BFGS; 100 for Adam, whose best moves in noisy steps and whose multipliers update only every
        ``al_every`` = 50 steps). max_starts: starts
        at most (None: no limit). max_rejections: cheap-constraint rejections per ask before a member
        restarts. start_tries: Sobol draws per start before one near a basin is accepted.
        """
        if local not in LOCALS:
            raise ValueError(f"multistart: local must be one of {LOCALS}, got {local!r}")
        if members < 1 or start_tries < 1 or (max_starts is not None and max_starts < 1):
            raise ValueError(f"multistart: need members, start_tries and max_starts (or None) >= 1; got "
                             f"{members}, {start_tries}, {max_starts}")
        super().__init__(problem, seed, {
            "members": members, "local": local, "local_settings": dict(local_settings or {}),
            "include_initial": include_initial, "cull_radius": cull_radius, "patience": patience,
            "stall_rtol": stall_rtol, "max_starts": max_starts, "max_rejections": max_rejections,
            "start_tries": start_tries})
        self._patience = int(patience if patience is not None else PATIENCE[local])
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = 0
        self._n_starts = 0
        self._basins: list[tuple[torch.Tensor, list[float]]] = []  # (unit-cube point, key) of finished members
        self._counts = dict.fromkeys(REASONS, 0)
        self._members: list[_Member] = []
        self._make_optimizer(0, torch.as_tensor(problem.initial_point(), dtype=torch.float64))  # fail now on bad settings
        for _ in range(min(members, self._starts_left())):
            self._members.append(self._new_member())

    # ----- the interface -------------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return max(len(self._members), 1)

    @property
    def done(self) -> bool:
        return not self._members

    @property
    def counts(self) -> dict[str, int]:
        """How often members were restarted, by reason (``REASONS``), and cheap-constraint rejections."""
        return dict(self._counts)

    @property
    def n_starts(self) -> int:
        """Local searches started so far."""
        return self._n_starts

    def _ask(self) -> torch.Tensor:
        return torch.stack([self._point_of(i) for i in range(len(self._members))])

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        for member, evaluation in zip(self._members, evaluations):
            member.optimizer.tell([evaluation])
            self._progress(member)
        self._cull()

    # ----- members -------------------------------------------------------------------------------

    def _point_of(self, index: int) -> torch.Tensor:
        """The point member ``index`` asks next, shape ``(dim,)``: cheap-constraint violations are told back
        to it unsimulated until it asks a feasible one; a member that cannot is restarted."""
        member = self._members[index]
        for _ in range(self.settings["max_rejections"]):
            point = member.optimizer.ask()[0]
            name = violated(self.problem, point)
            if name is None:
                return point
            member.optimizer.tell([rejection(point, name, len(self.specs))])
            self._counts["rejected"] += 1
        self._members[index] = self._new_member()  # its start is feasible (or as near as repair gets)
        return self._members[index].optimizer.ask()[0]

    def _progress(self, member: _Member) -> None:
        best = member.optimizer.best
        if best is None:
            member.since += 1
            return
        key = _key(best, self.specs)
        old = member.key
        tol = self.settings["stall_rtol"] * max(1.0, abs(key[1]))
        if old is None or key[0] < old[0] or (key[0] == old[0] and key[1] < old[1] - tol):
            member.since = 0
        else:
            member.since += 1
        member.key = key

    def _cull(self) -> None:
        """Restart members that converged, stalled, or share a basin (module docstring), in member order."""
        s = self.settings
        for i, member in enumerate(self._members):
            if member.optimizer.done:
                self._finish(i, "converged", basin=True)
            elif member.since >= self._patience:  # not a basin: the minimum may lie further on
                self._finish(i, "stalled", basin=False)
        for i in range(len(self._members)):
            for j in range(i + 1, len(self._members)):
                a, b = self._members[i], self._members[j]
                if a is None or b is None or a.key is None or b.key is None:
                    continue
                if self._distance(self._position(a), self._position(b)) < s["cull_radius"]:
                    self._finish(j if b.key >= a.key else i, "duplicate", basin=False)
        for i, member in enumerate(self._members):
            if member is None or member.key is None:
                continue
            u = self._position(member)
            if any(key < member.key and self._distance(u, v) < s["cull_radius"] for v, key in self._basins):
                self._finish(i, "known_basin", basin=False)
        self._members = [m if m is not None else self._new_member() for m in self._members
                         if m is not None or self._starts_left() > 0]

    def _finish(self, index: int, reason: str, basin: bool) -> None:
        member = self._members[index]
        if member is None:
            return
        if basin and member.key is not None:
            self._basins.append((self._position(member), member.key))
        self._counts[reason] += 1
        self._members[index] = None  # replaced (or dropped) at the end of _cull

    def _starts_left(self) -> int:
        limit = self.settings["max_starts"]
        return math.inf if limit is None else limit - self._n_starts

    def _new_member(self) -> _Member:
        number = self._n_starts
        start = self._start_point(number)
        self._n_starts += 1
        return _Member(number, start, self._make_optimizer(number, start))

    def _make_optimizer(self, number: int, start: torch.Tensor) -> Optimizer:
        from invdesign.optimizers import make_optimizer  # the registry imports this module

        return make_optimizer(self.settings["local"], StartingAt(self.problem, start),
                              1_000_003 * self.seed + number, **self.settings["local_settings"])

    def _start_point(self, number: int) -> torch.Tensor:
        """Optimizer coordinates of start ``number`` (module docstring: initial point, then Sobol points
        away from basins and running members, cheap-feasible)."""
        if number == 0 and self.settings["include_initial"]:
            z = torch.as_tensor(self.problem.initial_point(), dtype=torch.float64)
            if feasible(self.problem, z):
                return z
        taken = [v for v, _ in self._basins] + [self._position(m) for m in self._members
                                                if m is not None and m.key is not None]
        fallback = None
        for _ in range(self.settings["start_tries"]):
            u = self._sobol.draw(1, dtype=torch.float64)[0]
            self._n_sobol += 1
            z = self.problem.from_unit(u)
            if not feasible(self.problem, z):
                fallback = z if fallback is None else fallback
                continue
            if all(self._distance(u, v) >= self.settings["cull_radius"] for v in taken):
                return z
            fallback = z  # feasible but near a basin: better than an infeasible one
        return fallback if feasible(self.problem, fallback) else repair(self.problem, fallback)

    def _position(self, member: _Member) -> torch.Tensor:
        return self.problem.to_unit(as_tensor(member.optimizer.best.x))

    def _distance(self, u: torch.Tensor, v: torch.Tensor) -> float:
        return float((u - v).norm()) / math.sqrt(self.dim)

    # ----- state ---------------------------------------------------------------------------------

    def _state_dict(self) -> dict[str, Any]:
        return {
            "n_sobol": self._n_sobol, "n_starts": self._n_starts, "counts": dict(self._counts),
            "basins": [[u.tolist(), key] for u, key in self._basins],
            "members": [{"number": m.number, "start": m.start.tolist(), "key": m.key, "since": m.since,
                         "optimizer": m.optimizer.state_dict()} for m in self._members],
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = int(state["n_sobol"])
        if self._n_sobol:
            self._sobol.fast_forward(self._n_sobol)
        self._n_starts = int(state["n_starts"])
        self._counts = {k: int(state["counts"][k]) for k in REASONS}
        self._basins = [(as_tensor(u), [float(v) for v in key]) for u, key in state["basins"]]
        self._members = []
        for m in state["members"]:
            member = _Member(int(m["number"]), as_tensor(m["start"]),
                             self._make_optimizer(int(m["number"]), as_tensor(m["start"])))
            member.optimizer.load_state_dict(m["optimizer"])
            member.key = None if m["key"] is None else [float(v) for v in m["key"]]
            member.since = int(m["since"])
            self._members.append(member)


def _key(evaluation: Any, specs: list[Any]) -> list[float]:
    """Rank of an evaluation as a comparable pair: ``[0, value]`` when feasible, ``[1, violation]`` else."""
    if evaluation.feasible and math.isfinite(evaluation.value):
        return [0.0, float(evaluation.value)]
    return [1.0, float(violation(evaluation, specs))]
