"""ribbon/filter_pareto: the problem contract, batched T(E) equal to one-by-one, physical bounds, a short
multi-objective run and the design plot; a few seconds in all."""

import json

import torch

import problems
from invdesign import pareto
from invdesign.optimizers import make_optimizer, minimize
from invdesign.testing import ProblemContract


def _problem():
    return problems.PROBLEMS["ribbon/filter_pareto"]()


class TestRibbonFilterContract(ProblemContract):
    def make_problem(self):
        return _problem()


def test_batched_transmission_equals_one_by_one():
    p = _problem()
    z = p.from_unit(torch.rand(6, p.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    onsite = p.to_params(z)["onsite"]                                    # (6, cells, width)
    batched = p.transmission(onsite)                                     # one solve
    single = torch.stack([p.transmission(o) for o in onsite])
    assert batched.shape == (6, len(p.energies))
    assert float((batched - single).abs().max()) <= 1e-12
    assert float(batched.max()) <= 1 + 1e-12 and float(batched.min()) >= -1e-12  # one open channel


def test_batched_evaluation_equals_point_by_point():
    """``Problem.evaluate`` of a batch (one ``simulate_batch`` solve where the framework batches) gives the
    records of point-by-point evaluation: values, objective vectors and every gradient to 1e-12."""
    p = _problem()
    z = p.from_unit(torch.rand(5, p.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    batch = p.evaluate(z, need_grad=True)
    for zi, b in zip(z, batch):
        a = p.evaluate_one(zi, need_grad=True)
        assert abs(a.value - b.value) <= 1e-12
        for u, v in ((a.objectives, b.objectives), (a.grad, b.grad), *zip(a.objective_grads, b.objective_grads)):
            assert max(abs(x - y) for x, y in zip(u, v)) <= 1e-12


def test_pristine_ribbon_sits_on_the_reference_point():
    p = _problem()
    e = p.evaluate_one(torch.zeros(p.dim, dtype=torch.float64))
    assert abs(e.metrics["mean_T_pass"] - 1) < 1e-12
    assert abs(e.metrics["max_T_stop"] - 1) < 1e-12
    assert pareto.hypervolume([e.objectives], p.objective.ref_point) == 0.0


def test_a_short_sweep_opens_a_front_and_plots_its_knee(tmp_path):
    p = _problem()
    result = minimize(p, make_optimizer("scalarization_sweep", p, 0, n_weights=4, steps=6, lr=0.1), max_cost=40)
    Y = pareto.evaluation_matrix(result.history, 2)
    assert pareto.hypervolume(Y, p.objective.ref_point) > 0.05
    front = [e for e in pareto.pareto_set(result.history, 2)]
    knee = front[pareto.knee_index(pareto.evaluation_matrix(front, 2))]
    paths = p.plot_design({k: v.detach() for k, v in p.to_params(torch.tensor(knee.x)).items()}, tmp_path)
    assert all(path.exists() for path in paths)
    assert "mean T pass" in (tmp_path / "design.txt").read_text()
    json.dumps(result.history[-1].to_dict(), allow_nan=False)
