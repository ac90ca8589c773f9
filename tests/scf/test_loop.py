"""The self-consistent loop on small devices: zero bias, neutrality, conventions, failures, warm starts.

Conventions under test: ``invdesign.scf`` (U = -phi in eV; dn > 0 electrons; donors positive).
"""

import dataclasses

import numpy as np
import pytest
import torch

from invdesign.negf import ConvergenceError, NEGFInputError
from invdesign.scf import SCFOptions, bias_point, solve_fixed_point
from invdesign.scf.examples import chain_fet, ribbon_fet


@pytest.fixture(scope="module")
def chain():
    return chain_fet(source=16, channel=16, drain=16)


def test_zero_bias_no_current_neutral_contacts_flat_edges():
    chain = chain_fet(source=30, channel=16, drain=30)  # contacts long enough to be neutral at their ends
    bp = bias_point(chain, 0.2, 0.0)
    current = bp.current()
    assert float(current) == 0.0  # f_L = f_R at every energy: exactly zero, not just small
    u = bp.potential.detach()
    u_s, u_d = chain.contact_shifts
    # potential continuous with the (flat) leads and flat near both ends
    assert abs(float(u[0]) - u_s) < 1e-3 and abs(float(u[-1]) - u_d) < 1e-3
    assert float((u[:6] - u_s).abs().max()) < 1e-3 and float((u[-6:] - u_d).abs().max()) < 1e-3
    # the source and drain ends are charge neutral (electrons = donors)
    dn, doping = bp.delta_n, chain.doping
    assert torch.allclose(dn[:6], doping[:6], rtol=3e-2)
    assert torch.allclose(dn[-6:], doping[-6:], rtol=3e-2)


def test_ribbon_fet_zero_bias_symmetric_and_neutral():
    """A graphene-ribbon FET (pz, midgap reference, 1 electron per site neutral) at zero bias."""
    cells = 18
    fet, _ = ribbon_fet(width=7, cells=cells, contact_cells=7, doping=1e-2, gate_offset_ev=0.0)
    bp = bias_point(fet, 0.1, 0.0)
    assert float(bp.current()) == 0.0
    u = bp.potential.detach().reshape(cells, -1).mean(1)
    assert torch.allclose(u, u.flip(0), atol=2e-2)  # nearly mirror-symmetric (the cell is not)
    dn = bp.delta_n.reshape(cells, -1).sum(1)
    per_cell = fet.doping.reshape(cells, -1).sum(1)
    assert float(dn[:2].mean()) == pytest.approx(float(per_cell[0]), rel=0.1)
    u_s, _ = fet.contact_shifts
    assert u_s < 0  # n-type contacts: bands pulled below the Fermi level


def test_sign_conventions(chain):
    """Raising the gate lowers U under it; more donors lower U; positive V_ds lowers the drain side."""
    base = bias_point(chain, 0.0, 0.0).potential.detach()
    mid = slice(20, 28)
    gated = bias_point(chain, 0.1, 0.0).potential.detach()
    assert (gated[mid] < base[mid]).all()
    drained = bias_point(chain, 0.0, 0.1)
    assert float(drained.lead_shifts[1]) == pytest.approx(chain.contact_shifts[1] - 0.1, abs=1e-15)
    assert float(drained.potential[-1]) < float(base[-1]) - 0.05
    richer = dataclasses.replace(chain, doping=chain.doping * 1.5)
    doped = bias_point(richer, 0.0, 0.0).potential.detach()
    assert float(doped[24]) < float(base[24])


def test_convergence_error_carries_history(chain):
    short = dataclasses.replace(chain, options=SCFOptions(max_iter=2))
    with pytest.raises(ConvergenceError) as info:
        bias_point(short, 0.2, 0.05)
    history = info.value.history
    assert 1 <= len(history) <= 2 and all(h > 1e-6 for h in history)
    assert "did not reach" in str(info.value)


def test_warm_start_saves_iterations(chain):
    first = bias_point(chain, 0.1, 0.05)
    cold = bias_point(chain, 0.12, 0.05)
    warm = bias_point(chain, 0.12, 0.05, warm=first)
    assert warm.result.iterations < cold.result.iterations
    assert torch.allclose(warm.potential, cold.potential, atol=1e-5)


def test_converged_residual_below_tolerance(chain):
    tight = dataclasses.replace(chain, options=SCFOptions(tol_v=1e-10))
    bp = bias_point(tight, 0.15, 0.05)
    es = tight.electrostatics
    rho = tight.doping - bp.delta_n
    residual = bp.potential.detach() - es.potential_energy(bp.voltages.detach(), rho)
    assert float(residual.abs().max()) < 1e-10
    assert bp.result.history[-1] < 1e-10


def test_generic_fixed_point_with_exponential_predictor():
    """solve_fixed_point on a toy problem (no device): measured response + Boltzmann predictor."""
    n = 6
    kernel = 0.3 * torch.eye(n, dtype=torch.float64) + 0.05
    u0 = torch.linspace(-0.2, 0.2, n, dtype=torch.float64)
    kt = 0.025

    def charge(u):
        return 0.5 * torch.exp(-u / kt)  # Boltzmann electrons

    result = solve_fixed_point(charge, kernel, u0, kt=kt, options=SCFOptions(tol_v=1e-12))
    assert float((result.potential - u0 - kernel @ charge(result.potential)).abs().max()) < 1e-12


def test_bad_inputs_are_named(chain):
    with pytest.raises(NEGFInputError, match="doping must have shape"):
        dataclasses.replace(chain, doping=torch.zeros(3))
    with pytest.raises(NEGFInputError, match="positions_nm"):
        dataclasses.replace(chain, positions_nm=np.zeros((2, 3)))
    with pytest.raises(NEGFInputError, match="no voltage for gates"):
        bias_point(chain, {"other": 0.1}, 0.0)


class _TooWeakPredictor:
    """A local charge model whose slope (e/eV) is 100x weaker than the true one: the predictor phase then
    creeps (max|F| falls ~2 % per charge evaluation), as on a CNT-FET at V_gs = -0.3 V where the
    quasi-equilibrium predictor misjudged the hole charge (residual stuck at 0.208 V for 80 evaluations)."""

    slope = -0.01

    def predict(self, u, u_k, dn_k):
        return dn_k + self.slope * (u - u_k), torch.full_like(u, self.slope)

    def response(self, u, dn):
        return torch.full_like(u, self.slope)


def test_a_stalled_predictor_phase_hands_over_to_the_accelerated_steps():
    kernel = torch.tensor([[1.0]], dtype=torch.float64)
    u0 = torch.tensor([0.6], dtype=torch.float64)

    def charge(u):
        return -(u - 0.2)  # linear: the fixed point is U = 0.4, max|F| = 0.4 V at the start

    result = solve_fixed_point(charge, kernel, u0, predictor=_TooWeakPredictor(),
                               options=SCFOptions(tol_v=1e-10, max_iter=40))
    assert abs(float(result.potential[0]) - 0.4) < 1e-10
    assert result.iterations < 15  # creeping at 2 % per step it would need ~1000


def test_thomas_fermi_cold_start_solves_its_equation_and_converges_to_the_same_point():
    """The cold start solves U = u0 + K (n_bulk(U) - reference); the loop from it converges to the same
    potential as from the electrodes' potential, in no more charge evaluations (default FET: 9 -> 8)."""
    from invdesign.scf.predictor import BulkPredictor, thomas_fermi_start

    fet = chain_fet(source=16, channel=16, drain=16)
    vd = 0.05
    electrodes = dataclasses.replace(fet, options=SCFOptions(thomas_fermi_start=False))
    ref = bias_point(electrodes, 0.15, vd)
    tf = bias_point(fet, 0.15, vd)
    assert torch.allclose(tf.potential, ref.potential, atol=3e-6, rtol=0)
    assert tf.result.iterations <= ref.result.iterations
    assert tf.result.history[0] < 0.5 * ref.result.history[0]  # the first NEGF residual is smaller
    # the start itself
    es = fet.electrostatics
    u0 = tf.u0
    predictor = BulkPredictor(fet.bulk_densities, fet.drain_side, (fet.mu_ev, fet.mu_ev - vd))
    start = -(tf.voltages @ es.external.T)
    u = thomas_fermi_start(predictor, u0, fet.kernel, start, fet._reference, tol=1e-9)
    residual = u - u0 - fet.kernel @ (predictor.density(u)[0] - fet._reference)
    assert float(residual.abs().max()) < 1e-9
