"""Optimizers behind one ask/tell interface (``base.Optimizer``), one file per optimizer.

    from invdesign.optimizers import make_optimizer, minimize
    opt = make_optimizer("lbfgs", problem, seed=0, gtol=1e-8)
    result = minimize(problem, opt, max_cost=200)

``OPTIMIZERS`` maps registry names to classes; ``make_optimizer`` checks the settings against the
class's keyword-only ``__init__`` arguments and lists the valid ones on a mistake. Classes with
``multi_objective = True`` (``MULTI_OBJECTIVE``: botorch_mo, nevergrad_mo, scalarization_sweep) need a
problem with several objectives (``invdesign.multiobjective``) and work on its Pareto front.
"""

from __future__ import annotations

import inspect
from typing import Any

from invdesign.optimizers.adam import Adam
from invdesign.optimizers.base import Optimizer, is_better, violation
from invdesign.optimizers.botorch_mo import BoTorchMO
from invdesign.optimizers.botorch_opt import BoTorch
from invdesign.optimizers.chain import Chain
from invdesign.optimizers.driver import RunResult, minimize, step
from invdesign.optimizers.lbfgs import LBFGS
from invdesign.optimizers.multistart import MultiStart
from invdesign.optimizers.nevergrad_mo import NevergradMO
from invdesign.optimizers.nevergrad_opt import Nevergrad
from invdesign.optimizers.random_search import RandomSearch, SobolSearch
from invdesign.optimizers.scalarization_sweep import ScalarizationSweep
from invdesign.optimizers.scipy_lbfgsb import ScipyLBFGSB
from invdesign.optimizers.scipy_slsqp import ScipySLSQP
from invdesign.optimizers.turbo import TuRBO

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls
    for cls in (Adam, LBFGS, ScipyLBFGSB, ScipySLSQP, Nevergrad, BoTorch, RandomSearch,
                SobolSearch, Chain, MultiStart, TuRBO, BoTorchMO, NevergradMO, ScalarizationSweep)
}
MULTI_OBJECTIVE: frozenset[str] = frozenset(k for k, c in OPTIMIZERS.items() if getattr(c, "multi_objective", False))


def settings_of(cls: type[Optimizer]) -> dict[str, Any]:
    """Valid settings of an optimizer class and their defaults."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def make_optimizer(name: str, problem: Any, seed: int, **settings: Any) -> Optimizer:
    """Build the optimizer registered as ``name``; unknown names or settings raise ValueError."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; registered: {sorted(OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    valid = settings_of(cls)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in valid.items())
        raise ValueError(f"optimizer {name!r} has no setting(s) {unknown}; valid: {listed}")
    return cls(problem, seed, **settings)


__all__ = [
    "MULTI_OBJECTIVE", "OPTIMIZERS", "Optimizer", "RunResult", "is_better", "make_optimizer", "minimize",
    "settings_of", "step", "violation", *[cls.__name__ for cls in OPTIMIZERS.values()],
]
