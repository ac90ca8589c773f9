"""Application 6 (robust dopant design, ``problems/robust_doping.py``) on reduced instances.

The contract (shapes, gradients vs finite differences, determinism, failures) plus: the zero-variability
limit is problem 3 exactly, the sample set is a function of its seed, the batched assembly equals the
library's per-device path, the risk measures are the textbook ones, and a short optimisation lowers the
expected objective in and out of sample.
"""

from __future__ import annotations

import pytest
import torch

from invdesign.optimizers import make_optimizer, minimize
from invdesign.testing import ProblemContract
from problems import PROBLEMS
from problems.agnr_doping import AGNRDoping, dopant_sites
from problems.robust_doping import RobustAGNRDoping, SampleRisk, draw_samples

SMALL = dict(cells=3, n_energies=10)  # 42 atoms, 10 energies: milliseconds per batched solve


class TestRobustAGNRDoping(ProblemContract):
    n_points = 2

    def make_problem(self):
        return RobustAGNRDoping(n_samples=3, **SMALL)


class TestRobustAGNRDopingStdRiskSites(ProblemContract):
    n_points = 1

    def make_problem(self):
        return RobustAGNRDoping(n_samples=4, positions="sites", risk="mean+k*std", risk_k=2.0, sample_seed=3, **SMALL)


def test_registered():
    assert isinstance(PROBLEMS["robust/agnr_doping"](n_samples=2, **SMALL), RobustAGNRDoping)


def test_zero_variability_is_the_nominal_problem():
    """Nominal positions, no noise: every sample is problem 3's device; value and gradient agree to 1e-12."""
    robust = RobustAGNRDoping(n_samples=2, positions="fixed", noise=0.0, **SMALL)
    nominal = AGNRDoping(**SMALL)
    z = torch.cat([robust.initial_point()[None], robust.random_points(2, torch.Generator().manual_seed(5))])
    for r, n in zip(robust.evaluate(z, need_grad=True), nominal.evaluate(z, need_grad=True)):
        assert not (r.failed or n.failed)
        assert abs(r.value - n.value) <= 1e-12
        assert max(abs(a - b) for a, b in zip(r.grad, n.grad)) <= 1e-12
        assert r.metrics["sample_std"] == 0.0


def test_samples_are_a_function_of_the_seed():
    draw = dict(width=7, cells=4, lines=(1, 2, 3, 4, 5), nominal_line=3, noise=0.1)
    for positions in ("lines", "sites"):
        a, b = (draw_samples(6, 11, positions=positions, **draw) for _ in range(2))
        c = draw_samples(6, 12, positions=positions, **draw)
        assert torch.equal(a.dopant, b.dopant) and torch.equal(a.scale, b.scale)
        assert not torch.equal(a.scale, c.scale)
        assert (a.dopant.sum(1) == 2 * 4).all()  # the dopant count is fixed
        interior = set(s for ln in draw["lines"] for s in dopant_sites(7, 4, ln))
        assert all(set(a.sites(k)) <= interior for k in range(6))  # never on the edge lines 0 and 6
        assert ((a.scale >= 0.9) & (a.scale <= 1.1)).all() and a.scale.std() > 0.03
    lines = draw_samples(50, 0, positions="lines", **draw)
    for k in range(50):  # one dimer pair per cell
        sites = lines.sites(k)
        assert [s // 14 for s in sites] == [0, 0, 1, 1, 2, 2, 3, 3] and all(s % 2 == 0 for s in sites[::2])
    assert len({tuple(lines.sites(k)) for k in range(50)}) > 10  # positions really vary
    # the problem holds its samples fixed: same seed, same devices; another seed, other devices
    p, q, other = (RobustAGNRDoping(n_samples=5, sample_seed=s, **SMALL) for s in (4, 4, 5))
    assert torch.equal(p.samples.dopant, q.samples.dopant) and torch.equal(p.samples.scale, q.samples.scale)
    assert not torch.equal(p.samples.dopant, other.samples.dopant)
    z = p.initial_point()
    assert p.evaluate_one(z).value == q.evaluate_one(z).value != other.evaluate_one(z).value
    with pytest.raises(ValueError, match="holdout_seed"):
        RobustAGNRDoping(sample_seed=7, holdout_seed=7, **SMALL)


@pytest.mark.parametrize("positions", ["lines", "sites"])
def test_batched_objective_is_the_average_of_separately_built_devices(positions):
    """One batched solve == each sample through doped_model + two_terminal + its own solve."""
    p = RobustAGNRDoping(n_samples=5, positions=positions, noise=0.15, **SMALL)
    params = p.to_params(p.random_points(1, torch.Generator().manual_seed(2))[0])
    batched = p.simulate(params)["transmission"]
    separate = p.simulate_one_by_one(params)
    assert batched.shape == separate.shape == (5, SMALL["n_energies"])
    torch.testing.assert_close(batched, separate, rtol=0, atol=1e-10)
    per_device = torch.stack([AGNRDoping(**SMALL).objective({"transmission": t}, params) for t in separate])
    assert per_device.std() > 1e-3  # the samples are different devices, so the average means something
    assert abs(p.evaluate_one(p.from_params(params)).value - float(per_device.mean())) <= 1e-12


def test_risk_measures():
    f = torch.tensor([0.1, 0.4, 0.2, 0.3], dtype=torch.float64)
    response = {"transmission": f[:, None].expand(4, 3)}  # a flat T(E) per sample: f_k = its value
    value = lambda **kw: float(SampleRisk(**kw)(response, {}))  # noqa: E731
    assert value(risk="mean") == pytest.approx(0.25, abs=1e-15)
    assert value(risk="mean+k*std", k=2.0) == pytest.approx(0.25 + 2 * float(f.std()), abs=1e-15)
    assert value(risk="cvar", alpha=0.0) == pytest.approx(0.25, abs=1e-15)  # the whole distribution
    assert value(risk="cvar", alpha=0.75) == pytest.approx(0.4, abs=1e-15)  # the worst quarter
    assert value(risk="cvar", alpha=0.5) == pytest.approx(0.35, abs=1e-15)
    assert value(risk="cvar", alpha=0.6) == pytest.approx((0.4 + 0.6 * 0.3) / 1.6, abs=1e-15)  # fractional sample
    with pytest.raises(ValueError):
        SampleRisk(risk="median")


def test_short_optimisation_lowers_the_expected_transmission_in_and_out_of_sample():
    p = RobustAGNRDoping(n_samples=4, holdout_samples=24, **SMALL)
    start = p.evaluate_one(p.initial_point())
    result = minimize(p, make_optimizer("lbfgs", p, seed=0), max_cost=25)
    assert result.best.value < start.value - 0.05, (start.value, result.best.value)
    held = p.holdout_samples()
    with torch.no_grad():
        out = [float(p.transmission(p.to_params(torch.tensor(z))["dopant"], held).mean())
               for z in (start.x, result.best.x)]
    assert out[1] < out[0] - 0.03, out  # the improvement is not an artefact of the 4 training devices
