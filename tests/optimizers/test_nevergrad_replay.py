"""The nevergrad adapter's state holds no pickle: loading replays the recorded ask/tell rounds from a fresh
optimizer with the same seed, and the continued run asks exactly the points the uninterrupted one asks.
(Before: ``state_dict`` embedded a base64 pickle of nevergrad's optimizer, so ``invdesign resume`` on a
campaign directory from someone else unpickled, i.e. could run, their data.)"""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from tests.optimizers.optimizer_cases import Flaky

from invdesign.optimizers import make_optimizer
from invdesign.optimizers.base import UntrustedState
from invdesign.testing.toy_problems import TOY_PROBLEMS

# beyond test_opt_state's CMA, TwoPointsDE, PSO (q=4) and OnePlusOne: other families and a budgeted selector
METHODS = [("DiagonalCMA", 1, {}), ("DE", 3, {}), ("NGOpt", 1, {"budget": 40}), ("CMA", 3, {}),
           ("TBPSA", 2, {})]


def _problem() -> Flaky:
    # failures deterministic in the point: told as imputed losses, so they are part of the replay too
    return Flaky(TOY_PROBLEMS["constrained"](), lambda _, x: int(abs(x[0]) * 1e6) % 7 == 0)


def _run(problem, optimizer, rounds: int) -> list[torch.Tensor]:
    asked = []
    for _ in range(rounds):
        points = optimizer.ask()
        optimizer.tell(problem.evaluate(points))
        asked.append(points)
    return asked


@pytest.mark.parametrize("method,q,extra", METHODS)
def test_replayed_state_continues_with_the_same_candidates(method, q, extra, monkeypatch):
    problem = _problem()
    make = lambda: make_optimizer("nevergrad", problem, 5, optimizer=method, batch_size=q, **extra)  # noqa: E731
    reference = _run(problem, make(), 30)
    first = make()
    asked = _run(problem, first, 12)
    pending = first.ask()  # interrupted between ask and tell, as a campaign checkpoint is
    text = json.dumps(first.state_dict(), allow_nan=False)
    assert "pickle" not in text

    def refuse(*args, **kwargs):
        raise AssertionError("loading a state unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    second = make()
    second.load_state_dict(json.loads(text))
    assert torch.equal(second.ask(), pending)
    asked += _run(problem, second, 18)
    assert all(torch.equal(a, b) for a, b in zip(asked, reference, strict=True))


def test_multi_objective_subclass_replays_too():
    from invdesign.testing.toy_multiobjective import TOY_MULTIOBJECTIVE

    problem = TOY_MULTIOBJECTIVE["two_quadratics_constrained"]()
    make = lambda: make_optimizer("nevergrad_mo", problem, 2, batch_size=2)  # noqa: E731
    reference = _run(problem, make(), 20)
    first = make()
    asked = _run(problem, first, 9)
    second = make()
    second.load_state_dict(json.loads(json.dumps(first.state_dict(), allow_nan=False)))
    asked += _run(problem, second, 11)
    assert all(torch.equal(a, b) for a, b in zip(asked, reference, strict=True))


def test_a_pickled_state_is_refused_and_an_altered_one_detected():
    problem = _problem()
    opt = make_optimizer("nevergrad", problem, 0)
    _run(problem, opt, 20)  # a few CMA generations: the altered value changes the later ones
    state = json.loads(json.dumps(opt.state_dict()))
    old = {**state, "state": {"pickle": "gASVAAAAAAAAAAA=", "worst": 1.0}}  # the format written before
    with pytest.raises(UntrustedState, match="unpickling can run code"):
        make_optimizer("nevergrad", problem, 0).load_state_dict(old)
    altered = json.loads(json.dumps(state))
    told = altered["state"]["told"]
    told[next(i for i, r in enumerate(told) if not r[0][1])][0][0] = -123.0  # a value the run never saw
    with pytest.raises(ValueError, match="asked other points than the run did"):
        make_optimizer("nevergrad", problem, 0).load_state_dict(altered)
