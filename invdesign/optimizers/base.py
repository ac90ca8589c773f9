"""The ask/tell interface every optimizer implements, and the small helpers they share.

Coordinates. Gradient methods work in the problem's *optimizer coordinates* ``z`` (shape
``(dim,)``, box ``problem.bounds`` of shape ``(2, dim)``, entries may be +-inf); gradient-free
methods work on the unit cube ``u`` and map with ``problem.from_unit`` / ``problem.to_unit``.

Protocol. ``ask()`` returns a float64 tensor of shape ``(q, dim)``; the caller evaluates exactly
those rows, in that order, and calls ``tell()`` with the ``q`` evaluations. Calling ``ask()`` again
before ``tell()`` returns the same batch, so a checkpoint taken between the two resumes cleanly.
``tell()`` copes with failed evaluations (``failed=True``, ``value=nan``): each optimizer treats
them as bad points (shrinks its step, or penalises them), never raises.

Constraints follow the problem's convention (``invdesign/constraints.py``): inequality feasible
when ``g(z) <= tol``, equality when ``|h(z)| <= tol`` (``tol`` from the ConstraintSpec).
``best`` is the best feasible evaluation seen, else the least infeasible one (see ``is_better``).

State. ``state_dict()`` is JSON-serialisable (``json.dumps`` works; every random stream is included)
and ``fresh.load_state_dict(json.loads(json.dumps(opt.state_dict())))`` continues exactly as ``opt``.
No state holds a pickle: loading a checkpoint from someone else's campaign directory must not run code
(third-party optimizers are rebuilt by replay, see ``nevergrad_opt``); ``UntrustedState`` is raised
for a state this code will not load.
"""

from __future__ import annotations

import abc
import base64
import json
import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from invdesign import ranking
# encode_float/decode_float are re-exported: the optimizers' states use them from here
from invdesign.jsonfloat import decode_float, encode_float  # noqa: F401

if TYPE_CHECKING:
    from invdesign.problem import ConstraintSpec, Evaluation

CONSTRAINT_HANDLING = ("native", "penalty", "augmented_lagrangian", "none", "per_stage")


class UntrustedState(ValueError):
    """A saved state that is not loaded because loading it could run code (e.g. an old pickled one).

    The campaign runner then replays the run from its history instead (the same result, exactly)."""


class StartingAt:
    """A view of ``problem`` whose ``initial_point()`` is ``start`` (shape ``(dim,)``); everything else
    is the problem's. Optimizers only read the space, so building one on this view starts it there."""

    def __init__(self, problem: Any, start: torch.Tensor) -> None:
        self._problem = problem
        self._start = torch.as_tensor(start, dtype=torch.float64)

    def initial_point(self) -> torch.Tensor:
        return self._start.clone()

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._problem, attribute)


def seeded_start(problem: Any, seed: int) -> torch.Tensor:
    """A random starting point drawn from ``seed`` (a stream separate from the optimizers' own)."""
    generator = torch.Generator().manual_seed(1_000_003 * int(seed) + 7)
    return problem.random_points(1, generator)[0].to(torch.float64)


class BatchOfSamples:
    """Mixin for optimizers whose settings hold ``batch_size`` (points per ask) and ``max_evals``
    (done after this many evaluations; None: never). Put it before ``Optimizer`` in the bases."""

    @property
    def batch_size(self) -> int:
        return int(self.settings["batch_size"])

    @property
    def done(self) -> bool:
        limit = self.settings["max_evals"]
        return limit is not None and self.n_told >= limit

    @property
    def done_reason(self) -> str | None:
        return "evaluation_limit" if self.done else None


class Optimizer(abc.ABC):
    """Abstract ask/tell optimizer. Subclasses are final and implement ``_ask``/``_tell``.

    Subclasses define the class attributes and take their settings as keyword-only arguments of
    ``__init__(self, problem, seed, *, ...)``; ``make_optimizer`` validates settings against that
    signature. ``__init__`` reads the problem's space (``dim``, ``bounds``, ``initial_point``,
    ``random_points``, ``constraint_specs``) but never evaluates it.
    """

    name: ClassVar[str]
    uses_gradient: ClassVar[bool]
    constraint_handling: ClassVar[str]  # one of CONSTRAINT_HANDLING
    description: ClassVar[str]

    def __init__(self, problem: Any, seed: int, settings: dict[str, Any]) -> None:
        self.problem = problem
        self.seed = int(seed)
        self.settings = dict(settings)
        self.dim = int(problem.dim)
        self.specs: list[ConstraintSpec] = list(problem.constraint_specs)
        self.n_told = 0
        self._best: Evaluation | None = None
        self._pending: torch.Tensor | None = None

    # ----- the interface -------------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Number of points ``q`` returned by each ``ask()``."""
        return 1

    @property
    def wants_gradient(self) -> bool:
        """Whether the points of the next ``ask()`` must be evaluated with gradients.

        Equals ``uses_gradient`` except for composite optimizers (``chain``), whose current stage
        decides; the driver passes it as ``need_grad``.
        """
        return self.uses_gradient

    @property
    @abc.abstractmethod
    def done(self) -> bool:
        """True once the optimizer has converged or stopped by its own criterion."""

    @property
    def done_reason(self) -> str | None:
        """Why ``done``: "converged" unless a subclass knows better ("step_limit", "evaluation_limit",
        "too_many_failures"); None while not done. The run's ``stop_reason`` reports it."""
        return "converged" if self.done else None

    @property
    def best(self) -> Evaluation | None:
        """Best feasible evaluation told so far, else the least infeasible; None if all failed."""
        return self._best

    def ask(self) -> torch.Tensor:
        """Next batch of points to evaluate, float64 tensor of shape ``(q, dim)``."""
        if self._pending is None:
            points = self._ask().to(torch.float64)
            if points.ndim != 2 or points.shape[1] != self.dim:
                raise RuntimeError(f"{self.name}: _ask returned shape {tuple(points.shape)}")
            self._pending = points
        return self._pending.clone()

    def tell(self, evaluations: list[Evaluation]) -> None:
        """Report the evaluations of the pending batch, in the order of ``ask()``'s rows."""
        if self._pending is None:
            raise RuntimeError(f"{self.name}: tell() called without a pending ask()")
        if len(evaluations) != self._pending.shape[0]:
            raise ValueError(
                f"{self.name}: tell() got {len(evaluations)} evaluations for a batch of "
                f"{self._pending.shape[0]} points"
            )
        points, self._pending = self._pending, None
        for evaluation in evaluations:
            if self._best is None or is_better(evaluation, self._best, self.specs):
                if not evaluation.failed:
                    self._best = evaluation
        self.n_told += len(evaluations)
        self._tell(points, list(evaluations))

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot of everything needed to continue identically."""
        return {
            "optimizer": self.name,
            "seed": self.seed,
            "settings": _json_normalise(self.settings),
            "n_told": self.n_told,
            "best": None if self._best is None else self._best.to_dict(),
            "pending": None if self._pending is None else self._pending.tolist(),
            "state": self._state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot made by ``state_dict()`` of an optimizer built with the same
        name, seed and settings (checked)."""
        if state["optimizer"] != self.name:
            raise ValueError(f"state is for optimizer {state['optimizer']!r}, not {self.name!r}")
        if state["seed"] != self.seed or state["settings"] != _json_normalise(self.settings):
            raise ValueError(
                f"{self.name}: state was made with seed {state['seed']} and settings "
                f"{state['settings']}, this optimizer has seed {self.seed} and settings "
                f"{_json_normalise(self.settings)}"
            )
        self.n_told = int(state["n_told"])
        self._best = None if state["best"] is None else evaluation_from_dict(state["best"])
        self._pending = None if state["pending"] is None else as_tensor(state["pending"])
        self._load_state_dict(state["state"])

    # ----- what subclasses implement -------------------------------------------------------------

    @abc.abstractmethod
    def _ask(self) -> torch.Tensor:
        """New batch, shape ``(q, dim)``; only called when no batch is pending."""

    @abc.abstractmethod
    def _tell(self, points: torch.Tensor, evaluations: list[Evaluation]) -> None:
        """Digest the evaluations of ``points`` (shape ``(q, dim)``, the asked batch)."""

    @abc.abstractmethod
    def _state_dict(self) -> dict[str, Any]:
        """Optimizer-specific JSON-serialisable state."""

    @abc.abstractmethod
    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of ``_state_dict``."""


# ----- constraints and ranking -------------------------------------------------------------------


def _specs(specs: list[ConstraintSpec]) -> list[tuple[str, float]]:
    return [(spec.kind, spec.tol) for spec in specs]


def violation(evaluation: Evaluation, specs: list[ConstraintSpec]) -> float:
    """Total constraint violation (>= 0): ``sum max(g - tol, 0)`` plus ``sum max(|h| - tol, 0)``.

    Failed evaluations are infinitely violating; a problem without constraints gives 0 (``invdesign.ranking``).
    """
    return ranking.violation(evaluation.constraints, _specs(specs), evaluation.failed)


def rank_key(evaluation: Evaluation, specs: list[ConstraintSpec]) -> tuple[int, float]:
    """``invdesign.ranking.rank_key`` of an evaluation: smaller is better."""
    return ranking.rank_key(evaluation.failed, evaluation.feasible, evaluation.value, evaluation.constraints,
                            _specs(specs))


def is_better(a: Evaluation, b: Evaluation, specs: list[ConstraintSpec]) -> bool:
    """Whether ``a`` ranks strictly above ``b`` (``invdesign.ranking``): feasible beats infeasible, feasible
    points by value, infeasible ones by total violation, failed evaluations last."""
    return rank_key(a, specs) < rank_key(b, specs)


def usable(evaluation: Evaluation) -> bool:
    """A non-failed evaluation with a finite value (what optimizers can learn from)."""
    return not evaluation.failed and math.isfinite(evaluation.value)


def gradient_record(evaluation: Evaluation) -> dict[str, Any] | None:
    """What gradient methods keep of an evaluation (JSON-ready: value, grad, constraints,
    constraint_grads), or None when it cannot be used: failed, no gradient, or non-finite."""
    if not usable(evaluation) or evaluation.grad is None:
        return None
    if not all(math.isfinite(v) for v in [*evaluation.grad, *evaluation.constraints]):
        return None
    return {"value": float(evaluation.value), "grad": list(evaluation.grad),
            "constraints": list(evaluation.constraints),
            "constraint_grads": evaluation.constraint_grads}


# ----- serialisation helpers ---------------------------------------------------------------------


def as_tensor(values: Any) -> torch.Tensor:
    """Float64 tensor from a (nested) list; JSON keeps Python floats exact, so this is lossless."""
    return torch.as_tensor(values, dtype=torch.float64)


def generator_state(generator: torch.Generator) -> str:
    """Base64 text of a torch.Generator's state."""
    return base64.b64encode(generator.get_state().numpy().tobytes()).decode("ascii")


def set_generator_state(generator: torch.Generator, text: str) -> None:
    """Inverse of ``generator_state``."""
    raw = bytearray(base64.b64decode(text))
    generator.set_state(torch.frombuffer(raw, dtype=torch.uint8).clone())


def make_generator(seed: int) -> torch.Generator:
    """CPU torch.Generator seeded with ``seed``."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def evaluation_from_dict(data: dict[str, Any]) -> Evaluation:
    """Rebuild an Evaluation (imported here so the optimizers import without the core API)."""
    from invdesign.problem import Evaluation

    return Evaluation.from_dict(data)


def _json_normalise(value: Any) -> Any:
    # tuples become lists through JSON; compare settings in the form they come back in
    return json.loads(json.dumps(value))
