"""Multi-start local gradient search: K L-BFGS (or Adam) members advanced together, one batched ask per step.

What it exploits: exact gradients, and a problem that evaluates K points in one batched call
(``simulate_batch``, ``invdesign.batch_eval``): each ``ask()`` returns one point per member, shape
``(K, dim)``, so every step costs K gradient evaluations but, on such a problem, about the wall time of one
or two. Each member is an ordinary optimizer of this package (``lbfgs``: projected L-BFGS, its own two-loop
recursion and strong-Wolfe line search; or ``adam``) built on a view of the problem that starts it at its
start point, so bounds are handled by the members' projection and response constraints by their augmented
Lagrangian; everything here is about where members start and when they stop.

Starts. The first start is ``problem.initial_point()`` (``include_initial``: in a campaign, the seed's
random start every optimizer shares); the others, and every restart, the next point of a scrambled Sobol
sequence (seeded) of the unit cube, skipping points within ``cull_radius`` of a basin already found or of a
running member (at most ``start_tries`` draws per start).

Screening (``screen`` > 0, default): the first ask is one batch of ``screen`` such start points (the
initial point first), evaluated with gradients; the members then start at the best of them (feasible first,
by value), each at least ``cull_radius`` from the others, and restarts take the next best unused one before
drawing new Sobol points (``screen=0``: the members start at the first K start points themselves). A member starting at a screened point is told that point's evaluation instead of
asking for it again, so screening costs ``screen`` evaluations once, in one batched call.

Defaults (``members=8``, ``screen=32``) chosen on ``paper/agnr_doping`` at the campaign's budget (120
forward-equivalents), seeds 100-123 (not the campaign's 0-9): within 1e-3 of the best value known (0.16000)
on 24/24 seeds; 8 members from Sobol starts without screening 19/24; 4 members after a 32-point screen
22/24; 8 members after 24 points 23/24. There L-BFGS needs 50-110 evaluations per local solve, so few
members converge within the budget and the screen, which puts the members in the best basins seen, is
what decides. Successive halving (``halving=2``, below) then takes the best member all the way down: with
the grad_cost of a campaign (1.27), seeds 100-115, 15/16 runs end within 1.7e-4 of the best value found
(median 0.160000), 11/16 without halving (median 0.16006); ``halving=1`` also 15/16; 4 members after a
16-point screen with halving 10/16 (``benchmarks/bench_multistart.py --variant``). On a problem with
response constraints halving is off by default: the members' augmented-Lagrangian iterates are mostly
infeasible for their first steps, ranked by violation alone, which says little about where they head
(the equality-constrained toy problem ends infeasible with it, at 1e-4, feasible without).

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

Cheap constraints (``on="params"``) never cost a simulation. With ``cheap="project"`` (default) a point
``y`` a member asks that violates one is replaced in the batch by its projection ``x = project(y)``
(``cheap_constraints.project``: Newton steps on the violation, no simulation), and the member is told
the evaluation at ``x`` as if at ``y``, its gradients pulled back through the projection (``J^T g``): it
minimises ``f(project(y))``, a projected path along which its line search slides on the constraint's
boundary, and whose stationary points are the constrained ones (exactly so for a linear constraint, whose
projection Jacobian is the orthogonal projector). Where the projection fails, and with
``cheap="reject"``, the point is told back unsimulated as a failed evaluation of cost 0
(``cheap_constraints.rejection``): the line search backs off towards the feasible iterate as from a failed
simulation (``max_rejections`` times at most, then the member restarts), so such a member stops at the
boundary (a barrier). Start points are drawn feasible (rejection, then ``repair``).

Successive halving (``halving`` = h > 0; Jamieson and Talwalkar 2016): after h steps the worse half of the
members (by their best, feasible first) stop and are not replaced; the remaining half runs 2h steps, then
halves again, until one member is left, which runs until it converges or stalls; then a new bracket of
``members`` starts (from the screen's queue, then Sobol points). A rung of K / 2^r members for h 2^r
steps costs K h evaluations, so the budget moves to the most promising basins instead of being shared by
K members that all stop short of their minima. Members that converge, stall or duplicate inside a rung
are replaced as usual.

``max_starts`` bounds the number of starts (None: restart for ever, the budget ends the run); once spent,
finished members are not replaced, ``batch_size`` shrinks, and the run is done when none is left.

State: the members' own state dicts, their starts and counters, the basins, the number of Sobol points
drawn (the engine is fast-forwarded on load), so a loaded optimizer continues exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, final

import torch

from invdesign.optimizers.base import (
    Optimizer,
    StartingAt,
    as_tensor,
    evaluation_from_dict,
    gradient_record,
    violation,
)
from invdesign.optimizers.cheap_constraints import feasible, pull_back, rejection, repair, violated

LOCALS = ("lbfgs", "adam")
CHEAP = ("project", "reject")
PATIENCE = {"lbfgs": 20, "adam": 100}  # default patience per local method (see __init__)
DEFAULT_HALVING = 2  # first rung's steps where a problem has no response constraints (module docstring)
REASONS = ("converged", "stalled", "duplicate", "known_basin", "halved", "rejected")


class _Member:
    """One local search: its optimizer, start, and progress counters (``key``: its best's rank value)."""

    def __init__(self, number: int, start: torch.Tensor, optimizer: Optimizer, cached: Any = None) -> None:
        self.number = number
        self.start = start
        self.optimizer = optimizer
        self.cached = cached  # the screening's Evaluation of ``start``, told to it in place of simulating again
        self.asked: torch.Tensor | None = None  # the member's own point when the batch holds its projection
        self.key: list[float] | None = None  # [0, value] feasible, [1, violation] infeasible; None: nothing yet
        self.since = 0  # evaluations since the key last improved by more than the stall tolerance


@final
class MultiStart(Optimizer):
    """K local gradient searches (L-BFGS or Adam) from a Sobol design, culled per basin, one ask of K points."""

    name = "multistart"
    uses_gradient = True
    constraint_handling = "augmented_lagrangian"
    description = "K L-BFGS (or Adam) members from a scrambled Sobol design, basin culling and restarts, one batched ask of K points"

    def __init__(self, problem: Any, seed: int, *, members: int = 8, local: str = "lbfgs",
                 local_settings: dict[str, Any] | None = None, include_initial: bool = True,
                 cull_radius: float = 0.05, patience: int | None = None, stall_rtol: float = 1e-5,
                 max_starts: int | None = None, max_rejections: int = 64, start_tries: int = 64,
                 screen: int = 32, cheap: str = "project", halving: int | None = None) -> None:
        """
        members: K, local searches run at once (points per ask). local: "lbfgs" or "adam".
        local_settings: settings of every member (e.g. ``{"history": 5}``). include_initial: member 0
        starts at the problem's initial point. cull_radius: RMS unit-cube distance under which two
        points are one basin. patience, stall_rtol: a member whose best improved by at most
        ``stall_rtol * max(1, |best|)`` in its last ``patience`` evaluations restarts (None: 20 for
        L-BFGS; 100 for Adam, whose best moves in noisy steps and whose multipliers update only every
        ``al_every`` = 50 steps). max_starts: starts
        at most (None: no limit). max_rejections: cheap-constraint rejections per ask before a member
        restarts. start_tries: Sobol draws per start before one near a basin is accepted. screen: points
        of a first, space-filling batch (0: none) whose best points start the members (module docstring).
        cheap: how a point violating a cheap constraint is handled, "project" or "reject" (module docstring).
        halving: steps of the first rung of successive halving (0: off; None: 2, or 0 on a problem with
        response constraints; module docstring).
        """
        if cheap not in CHEAP:
            raise ValueError(f"multistart: cheap must be one of {CHEAP}, got {cheap!r}")
        if local not in LOCALS:
            raise ValueError(f"multistart: local must be one of {LOCALS}, got {local!r}")
        if halving is None:
            halving = 0 if any(spec.on != "params" for spec in problem.constraint_specs) else DEFAULT_HALVING
        if members < 1 or start_tries < 1 or screen < 0 or halving < 0 or (max_starts is not None and max_starts < 1):
            raise ValueError(f"multistart: need members, start_tries and max_starts (or None) >= 1, screen >= 0 and "
                             f"halving >= 0; got {members}, {start_tries}, {max_starts}, {screen}, {halving}")
        super().__init__(problem, seed, {
            "members": members, "local": local, "local_settings": dict(local_settings or {}),
            "include_initial": include_initial, "cull_radius": cull_radius, "patience": patience,
            "stall_rtol": stall_rtol, "max_starts": max_starts, "max_rejections": max_rejections,
            "start_tries": start_tries, "screen": screen, "cheap": cheap, "halving": halving})
        self._patience = int(patience if patience is not None else PATIENCE[local])
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = 0
        self._n_starts = 0
        self._basins: list[tuple[torch.Tensor, list[float]]] = []  # (unit-cube point, key) of finished members
        self._counts = dict.fromkeys(REASONS, 0)
        self._members: list[_Member] = []
        self._queue: list[Any] = []  # screened evaluations not yet used as starts, best first
        self._screening = screen > 0  # the first ask is the screening batch; members come after its tell
        self._halving = halving  # 0 on a checkpoint from before successive halving (_load_state_dict)
        self._slots, self._rung_steps, self._rung_length = members, 0, halving
        self._make_optimizer(0, torch.as_tensor(problem.initial_point(), dtype=torch.float64))  # fail now on bad settings
        if not self._screening:
            self._start_members()

    # ----- the interface -------------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return self.settings["screen"] if self._screening else max(len(self._members), 1)

    @property
    def done(self) -> bool:
        return not self._screening and not self._members

    @property
    def counts(self) -> dict[str, int]:
        """How often members were restarted, by reason (``REASONS``), and cheap-constraint rejections."""
        return dict(self._counts)

    @property
    def n_starts(self) -> int:
        """Local searches started so far."""
        return self._n_starts

    def _ask(self) -> torch.Tensor:
        if self._screening:
            return torch.stack([self._start_point(i) for i in range(self.settings["screen"])])
        return torch.stack([self._point_of(i) for i in range(len(self._members))])

    def _tell(self, points: torch.Tensor, evaluations: list[Any]) -> None:
        if self._screening:
            usable = [e for e in evaluations if gradient_record(e) is not None]
            self._queue = sorted(usable, key=lambda e: _key(e, self.specs))  # stable: ties keep the design order
            self._screening = False
            self._start_members()
            return
        for member, evaluation in zip(self._members, evaluations):
            member.optimizer.tell([self._as_asked(member, evaluation)])
            self._progress(member)
        self._halve()
        self._cull()

    def _halve(self) -> None:
        """End of a rung of successive halving: the worse half of the members stop, not replaced; the next
        rung, twice as long, runs half as many (module docstring)."""
        if not self._rung_length or self._slots <= 1:
            return
        self._rung_steps += 1
        if self._rung_steps < self._rung_length:
            return
        self._slots = max(1, self._slots // 2)
        self._rung_steps, self._rung_length = 0, 2 * self._rung_length
        order = sorted(range(len(self._members)),  # stable: among equals the earlier member stays
                       key=lambda i: (self._members[i].key is None, self._members[i].key or [0.0, 0.0]))
        keep = sorted(order[:self._slots])
        for i in sorted(set(range(len(self._members))) - set(keep)):
            member = self._members[i]
            if member.optimizer.done and member.key is not None:  # a minimum all the same: remembered
                self._basins.append((self._position(member), member.key))
        self._counts["halved"] += len(self._members) - len(keep)
        self._members = [self._members[i] for i in keep]

    def _as_asked(self, member: _Member, evaluation: Any) -> Any:
        """The evaluation of a projected point as the member sees it: at its own point ``y``, gradients
        pulled back through the projection (``J^T g``): it descends ``f(project(y))``."""
        if member.asked is None:
            return evaluation
        y, member.asked = member.asked, None
        if evaluation.grad is None or evaluation.failed:
            return dataclasses.replace(evaluation, x=y.tolist())
        grads = pull_back(self.problem, y, [evaluation.grad, *(evaluation.constraint_grads or [])])
        return dataclasses.replace(evaluation, x=y.tolist(), grad=grads[0],
                                   constraint_grads=grads[1:] if evaluation.constraint_grads is not None else None)

    def _start_members(self) -> None:
        for _ in range(min(self.settings["members"], self._starts_left())):
            self._members.append(self._new_member())

    # ----- members -------------------------------------------------------------------------------

    def _point_of(self, index: int) -> torch.Tensor:
        """The point member ``index`` asks next, shape ``(dim,)``, cheap-feasible: a violating point is
        projected, or told back to it unsimulated until it asks a feasible one (module docstring); a member
        that cannot is restarted. A member's screened start is told its evaluation here, not asked again."""
        member = self._members[index]
        for _ in range(self.settings["max_rejections"]):
            point = member.optimizer.ask()[0]
            cached, member.cached = member.cached, None
            if cached is not None and point.tolist() == cached.x:  # its start, screened already: no new simulation
                member.optimizer.tell([cached])
                self._progress(member)
                continue
            name = violated(self.problem, point)
            member.asked = None
            if name is None:
                return point
            if self.settings["cheap"] == "project":
                projected = repair(self.problem, point)
                if feasible(self.problem, projected):
                    member.asked = point
                    return projected
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
        if self._halving and self._slots == 1 and self._members == [None]:  # bracket over: a new one
            self._slots, self._rung_steps, self._rung_length = self.settings["members"], 0, self._halving
        self._members = [m if m is not None else self._new_member() for m in self._members
                         if m is not None or self._starts_left() > 0]
        while len(self._members) < self._slots and self._starts_left() > 0 and self._halving:
            self._members.append(self._new_member())

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
        self._n_starts += 1
        cached = self._from_queue()
        start = as_tensor(cached.x) if cached is not None else self._start_point(number)
        return _Member(number, start, self._make_optimizer(number, start), cached)

    def _from_queue(self) -> Any:
        """The best screened evaluation not within ``cull_radius`` of a basin or a running member (those
        passed over are dropped: their basin is taken), or None when the queue has none."""
        taken = self._taken()
        while self._queue:
            evaluation = self._queue.pop(0)
            u = self.problem.to_unit(as_tensor(evaluation.x))
            if all(self._distance(u, v) >= self.settings["cull_radius"] for v in taken):
                return evaluation
        return None

    def _taken(self) -> list[torch.Tensor]:
        """Unit-cube points new starts keep away from: basins, and every running member (its best, or its
        start before it has one)."""
        members = [m for m in self._members if m is not None]
        return [v for v, _ in self._basins] + [self._position(m) if m.key is not None else self.problem.to_unit(m.start)
                                               for m in members]

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
        taken = self._taken()
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
                         "cached": None if m.cached is None else m.cached.to_dict(),
                         "asked": None if m.asked is None else m.asked.tolist(),
                         "optimizer": m.optimizer.state_dict()} for m in self._members],
            "screening": self._screening, "queue": [e.to_dict() for e in self._queue],
            "halving": [self._slots, self._rung_steps, self._rung_length],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """As ``Optimizer.load_state_dict``; a checkpoint written before successive halving (no ``halving``
        setting) continues without it, as it started."""
        if "halving" not in state.get("settings", {}):  # its inner state has no "halving" either: see below
            state = {**state, "settings": {**state["settings"], "halving": self.settings["halving"]}}
        super().load_state_dict(state)

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=self.seed)
        self._n_sobol = int(state["n_sobol"])
        if self._n_sobol:
            self._sobol.fast_forward(self._n_sobol)
        self._n_starts = int(state["n_starts"])
        self._counts = {k: int(state["counts"].get(k, 0)) for k in REASONS}
        self._basins = [(as_tensor(u), [float(v) for v in key]) for u, key in state["basins"]]
        self._members = []
        for m in state["members"]:
            cached = None if m["cached"] is None else evaluation_from_dict(m["cached"])
            member = _Member(int(m["number"]), as_tensor(m["start"]),
                             self._make_optimizer(int(m["number"]), as_tensor(m["start"])), cached)
            member.optimizer.load_state_dict(m["optimizer"])
            member.key = None if m["key"] is None else [float(v) for v in m["key"]]
            member.since = int(m["since"])
            member.asked = None if m["asked"] is None else as_tensor(m["asked"])
            self._members.append(member)
        self._screening = bool(state["screening"])
        self._queue = [evaluation_from_dict(e) for e in state["queue"]]
        # a checkpoint from before successive halving continues without it, as it started
        self._halving = int(self.settings["halving"]) if "halving" in state else 0
        saved = state.get("halving", [self.settings["members"], 0, 0])
        self._slots, self._rung_steps, self._rung_length = (int(v) for v in saved)


def _key(evaluation: Any, specs: list[Any]) -> list[float]:
    """Rank of an evaluation as a comparable pair: ``[0, value]`` when feasible, ``[1, violation]`` else."""
    if evaluation.feasible and math.isfinite(evaluation.value):
        return [0.0, float(evaluation.value)]
    return [1.0, float(violation(evaluation, specs))]
