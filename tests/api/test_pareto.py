"""``invdesign.pareto`` (BoTorch's dominance and hypervolume) and the multi-objective core API."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from invdesign import pareto
from invdesign.multiobjective import MultiObjective, ObjectiveSpec, objective_specs, objectives_info
from invdesign.problem import Evaluation
from invdesign.testing.toy_multiobjective import TOY_MULTIOBJECTIVE
from invdesign.testing.toy_problems import TOY_PROBLEMS


def _brute_non_dominated(y: np.ndarray) -> np.ndarray:
    out = np.zeros(len(y), bool)
    for i, row in enumerate(y):
        if not np.isfinite(row).all():
            continue
        dominated = any(np.isfinite(o).all() and (o <= row).all() and (o < row).any() for o in y)
        duplicate = any((y[j] == row).all() for j in range(i))
        out[i] = not dominated and not duplicate
    return out


def _hv_2d(y: np.ndarray, ref) -> float:
    pts = sorted(tuple(r) for r in y if np.isfinite(r).all() and (r < ref).all())
    area, best2 = 0.0, ref[1]
    for k, (f1, f2) in enumerate(pts):
        nxt = pts[k + 1][0] if k + 1 < len(pts) else ref[0]
        best2 = min(best2, f2)
        area += (nxt - f1) * (ref[1] - best2)
    return area


def test_non_dominated_and_hypervolume_against_references():
    rng = np.random.default_rng(3)
    y = np.round(rng.random((60, 2)), 2)  # ties and duplicates
    y[[4, 9]] = np.nan
    assert (pareto.non_dominated(y) == _brute_non_dominated(y)).all()
    for ref in ([1.0, 1.0], [0.6, 1.2]):
        assert pareto.hypervolume(y, ref) == pytest.approx(_hv_2d(y, np.array(ref)), rel=1e-12, abs=1e-14)
    trace = pareto.hypervolume_trace(y, [1.0, 1.0])
    assert all(trace[k] == pytest.approx(pareto.hypervolume(y[: k + 1], [1.0, 1.0]), abs=1e-14) for k in range(60))
    assert pareto.hypervolume(y, [-1.0, -1.0]) == 0.0 and pareto.hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0
    with pytest.raises(ValueError, match="reference point"):
        pareto.hypervolume(y, [1.0])


def test_reference_point_knee_and_extremes():
    t = np.linspace(0, 1, 11)
    front = np.c_[t, 1 - t]
    ref = pareto.reference_point(front)
    assert ref == pytest.approx([1.1, 1.1])
    assert pareto.extreme_indices(front) == [0, 10]
    assert pareto.knee_index(front) == 5
    assert pareto.reference_point(np.full((3, 2), np.nan)) is None and pareto.knee_index(np.zeros((0, 2))) is None


def test_true_fronts_of_the_toys_reach_their_declared_hypervolume():
    for name, factory in TOY_MULTIOBJECTIVE.items():
        problem = factory()
        t = np.linspace(0.0, 1.0, 4001)[:, None]
        if name.startswith("two_quadratics"):
            top = 0.75 if "constrained" in name else 1.0
            z = problem.a.numpy() + top * t * (problem.b - problem.a).numpy()
        else:
            z = np.c_[np.maximum(t, 1e-6), np.zeros((len(t), 3))]
        evaluations = problem.evaluate(np.asarray(z))
        assert all(e.feasible for e in evaluations)
        hv = pareto.hypervolume(pareto.evaluation_matrix(evaluations, 2), problem.objective.ref_point)
        assert hv == pytest.approx(problem.hypervolume_optimum, rel=2e-4), name
        assert hv <= problem.hypervolume_optimum


def test_evaluations_record_objective_vectors_and_round_trip():
    problem = TOY_MULTIOBJECTIVE["zdt1"]()
    assert problem.n_objectives == 2 and problem.objective.ref_point == [1.1, 0.1]
    e = problem.evaluate_one(problem.initial_point(), need_grad=True)
    f1, one_minus_f2 = e.metrics["f1"], e.metrics["one_minus_f2"]
    assert e.objectives == [f1, -one_minus_f2] and e.value == f1  # minimised convention; primary = first
    assert len(e.objective_grads) == 2 and e.objective_grads[0] == e.grad
    d = json.loads(json.dumps(e.to_dict(), allow_nan=False))
    assert Evaluation.from_dict(d) == e
    plain = problem.evaluate_one(problem.initial_point()).to_dict()
    assert plain["objectives"] == e.to_dict()["objectives"] and "objective_grads" not in plain
    single = TOY_PROBLEMS["quadratic"]().evaluate_one(TOY_PROBLEMS["quadratic"]().initial_point(), need_grad=True)
    assert single.objectives is None and "objectives" not in single.to_dict()  # single-objective records unchanged
    assert objectives_info(TOY_PROBLEMS["quadratic"]()) == [{"name": "response_value", "sense": "min", "ref": None}]
    assert [s.name for s in objective_specs(problem)] == ["f1", "one_minus_f2"]


def test_failed_multi_objective_evaluations_have_nan_vectors():
    problem = TOY_MULTIOBJECTIVE["two_quadratics"]()

    def broken(params):
        raise RuntimeError("no")

    problem.simulate = broken
    e = problem.evaluate_one(problem.initial_point(), need_grad=True)
    assert e.failed and len(e.objectives) == 2 and all(math.isnan(v) for v in e.objectives)
    assert e.objective_grads is None


def test_multi_objective_specs_are_checked():
    with pytest.raises(ValueError, match="at least two"):
        MultiObjective([("a", "a")])
    with pytest.raises(ValueError, match="duplicate"):
        MultiObjective([("a", "a"), ("a", "b")])
    with pytest.raises(ValueError, match="every objective or for none"):
        MultiObjective([(ObjectiveSpec("a", ref=1.0), "a"), ("b", "b")])
    with pytest.raises(ValueError, match="sense"):
        ObjectiveSpec("a", "maximise")
    spec = ObjectiveSpec("t", "max", 0.5)
    assert ObjectiveSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec and spec.sign == -1.0
