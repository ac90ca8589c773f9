"""FET doping-profile problem (issue 7, app. 4): contract on a reduced device, physics of the model and baseline.

The reduced device (5/12/5 cells, 6 spline coefficients, 100 current nodes) keeps every check to seconds;
the thermionic-limit and ceiling checks run on the default device, where the results are reported.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from invdesign.negf import G0_S, solve
from invdesign.optimizers import make_optimizer, minimize
from invdesign.optimizers.base import StartingAt
from invdesign.scf import swing_between
from invdesign.scf.examples import nanotube_channel
from invdesign.testing import ProblemContract
from problems.fet_doping import INIT_GATE_WF_EV, MODES, SS_LIMIT_MV, FETDoping, band_gap_ev, mode_chain

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread for torch and numpy's BLAS: these solves are small and batched, and on a busy 2-core machine
    the default two threads made this file take 3.5 min instead of 30 s (spinning threads, see the README)."""
    before = torch.get_num_threads()
    with threadpool_limits(limits=1):
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(before)


SMALL = dict(source_cells=5, gate_cells=12, drain_cells=5, n_coeffs=6, n_energies=100, ioff_target=5e-8,
             grad_cost_factor=2.0)


def small(**extra) -> FETDoping:
    return FETDoping(**{**SMALL, **extra})


class TestFETDoping(ProblemContract):
    n_points = 1
    fd_step = 1e-5  # with the loop converged to 1e-11 V, log10 I is smooth to ~1e-10 at this step
    grad_rtol = 1e-4
    grad_atol = 1e-6

    def make_problem(self):
        return small(tol_v=1e-11)


def test_mode_chain_reproduces_the_real_space_13_0_tube():
    """Below the second subband pair (|E| < 0.785 eV) the tube's T(E) is MODES x the chain's; gap 0.735 eV."""
    energies = torch.tensor([-0.77, -0.6, -0.4, -0.2, 0.0, 0.3, 0.5, 0.7, 0.78], dtype=torch.float64)
    chain, _ = mode_chain(3)
    tube, _ = nanotube_channel(13, 0, 3)
    t_chain = solve(chain, energies).transmission()
    t_tube = solve(tube, energies).transmission()
    torch.testing.assert_close(MODES * t_chain, t_tube, atol=1e-8, rtol=0)
    assert band_gap_ev() == pytest.approx(0.735, abs=1e-3)
    assert torch.equal(t_chain.round(), (energies.abs() > band_gap_ev() / 2).double())


def test_dose_constraint_sign_and_value():
    p = small()
    params = p.to_params(p.initial_point())
    dose = p.constraints[0]
    assert float(dose(None, params)) == pytest.approx(0.0, abs=1e-12)  # the baseline sits on the limit
    assert p.constraint_specs[0].satisfied(float(dose(None, params)))
    more = {**params, "doping": params["doping"] * 1.1}
    less = {**params, "doping": params["doping"] * 0.9}
    assert float(dose(None, more)) == pytest.approx(0.1 * p.max_dose)  # g in donors, > 0: violated
    assert not p.constraint_specs[0].satisfied(float(dose(None, more)))
    assert float(dose(None, less)) < 0
    # the baseline: contacts at the lead doping, nothing in the middle of the gated channel
    prof = p.baseline_profile
    assert float(prof[0]) == pytest.approx(p.contact_per_nm) and float(prof[-1]) == pytest.approx(p.contact_per_nm)
    assert float(prof[p.cells // 2]) < 0.1 * p.contact_per_nm  # 6 coefficients: a smooth step
    assert ((prof >= 0) & (prof <= p.contact_per_nm + 1e-12)).all()


def test_baseline_respects_the_thermionic_limit_and_the_ballistic_ceilings():
    """Default device, conventional doping, its pinned work function: Ioff on target, SS >= 59.53 mV/dec,
    Ion below the source-limited ballistic ceiling, itself below modes x G0 x Vds."""
    p = FETDoping()
    lim = p.limits()
    assert lim["ss_limit_mV_per_dec"] == pytest.approx(59.526, abs=1e-3)
    assert lim["ballistic_ceiling_A"] == pytest.approx(MODES * G0_S * 0.5)
    assert lim["source_limited_ceiling_A"] < lim["ballistic_ceiling_A"]
    vgs = np.array([0.0, 0.1, 0.2, 0.3, 0.5])
    with torch.no_grad():
        current = np.array([float(i) for i in p.currents(p.baseline_profile, INIT_GATE_WF_EV, tuple(vgs))[0]])
    assert current[0] == pytest.approx(p.ioff_target, rel=0.02)  # INIT_GATE_WF_EV pins Ioff
    swing = swing_between(vgs, current)
    assert (swing >= SS_LIMIT_MV).all(), swing
    assert swing.min() < 150  # a working transistor, not a resistor
    assert np.all(np.diff(current) > 0) and current[-1] < lim["source_limited_ceiling_A"]
    assert current[-1] > 0.3 * lim["source_limited_ceiling_A"]


@pytest.fixture(scope="module")
def pinned():
    """The reduced problem and its conventional device with the work function pinning Ioff to the target."""
    p = small()
    z = p.initial_point()
    z[-1] = p.pin_workfunction(p.baseline_profile, start=0.0)
    return p, z


def test_workfunction_trades_ioff_against_ion_and_pinning_hits_the_target(pinned):
    p, z = pinned
    at = p.evaluate_one(z)
    assert abs(at.constraints[1]) < 1e-3 and at.constraints[0] == pytest.approx(0.0, abs=1e-12)
    higher = z.clone()
    higher[-1] += 0.1
    up = p.evaluate_one(higher)
    assert not (at.failed or up.failed)
    assert up.metrics["ioff_A"] < at.metrics["ioff_A"] and up.metrics["ion_A"] < at.metrics["ion_A"]
    assert up.constraints[1] < at.constraints[1] < 1e-3  # log10(Ioff / target): a higher W is more feasible


def test_short_constrained_optimisation_beats_the_baseline(pinned):
    """A few SLSQP iterations from the conventional device (Ioff pinned) raise Ion at Ioff <= target and
    dose <= baseline."""
    p, z = pinned
    start = p.evaluate_one(z)
    result = minimize(p, make_optimizer("scipy_slsqp", StartingAt(p, z), seed=0), max_cost=12 * p.grad_cost_factor)
    best = result.best
    assert best.feasible, best.constraints
    assert best.value < start.value - 0.05, (start.value, best.value)  # Ion up by > 12 %
    assert best.metrics["ioff_A"] <= p.ioff_target * (1 + 1e-9)
    assert best.metrics["ion_A"] < p.limits()["source_limited_ceiling_A"]
