"""Lead solvers: exact modes vs decimation, poles of the surface Green's function, mirror-lead path."""

import numpy as np
import pytest
import torch

from invdesign.negf import ConvergenceError, Device, Lead, open_channels, solve, surface_green_function
from invdesign.negf.leads import _is_mirror
from invdesign.tb.ribbons import armchair_ribbon_cell


def random_lead(n=3, seed=0, singular=False):
    rng = np.random.default_rng(seed)
    h00 = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    h01 = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    if singular:
        h01[:, 0] = 0
    return (h00 + h00.conj().T) / 2, h01


@pytest.mark.parametrize("singular", [False, True])
def test_modes_equal_sancho_at_complex_energy(singular):
    h00, h01 = random_lead(singular=singular)
    lead = Lead(h00, h01)
    e = np.linspace(-3, 3, 13)
    g_modes = surface_green_function(lead, e, eta=0.01).numpy()
    g_sancho = surface_green_function(lead, e, eta=0.01, method="sancho").numpy()
    np.testing.assert_allclose(g_modes, g_sancho, atol=1e-11)


def test_sancho_reports_non_convergence_inside_a_band():
    lead = Lead([[0.0]], [[-1.0]])
    with pytest.raises(ConvergenceError, match="eta > 0") as info:
        surface_green_function(lead, [0.3], method="sancho")
    assert len(info.value.history) > 10


def test_modes_real_energy_is_the_limit_of_small_broadening():
    h00, h01 = random_lead(n=2, seed=4, singular=True)
    lead = Lead(h00, h01)
    e = np.linspace(-3.5, 3.5, 29)
    g0 = surface_green_function(lead, e).numpy()
    g1 = surface_green_function(lead, e, eta=1e-7).numpy()
    g2 = surface_green_function(lead, e, eta=2e-7).numpy()
    np.testing.assert_allclose(g0, 2 * g1 - g2, atol=1e-6 * max(1.0, np.abs(g0).max()))


def test_lead_surface_pole_is_stepped_around():
    """The 3-AGNR cell's own termination has a bound state at E = 0: g is NaN there, but the device
    Green's function is analytic, so T and DOS at E = 0 equal their limits from both sides."""
    cell = armchair_ribbon_cell(3)
    left, right = cell.leads()
    assert torch.isnan(surface_green_function(right, [0.0])).all()
    sol = solve(cell.device(3), torch.tensor([-1e-4, 0.0, 1e-4], dtype=torch.float64))
    t, dos = sol.transmission(), sol.dos()
    assert torch.isfinite(t).all() and torch.isfinite(dos).all()
    np.testing.assert_allclose(dos[1].item(), 0.5 * (dos[0] + dos[2]).item(), rtol=1e-6)
    np.testing.assert_allclose(t.numpy(), 0.0, atol=1e-12)


def test_mirror_leads_share_one_solve_and_keep_both_gradients():
    h00, h01 = random_lead(n=2, seed=9)
    e = torch.linspace(-2, 2, 7, dtype=torch.float64)

    def transmission(h00_left, h00_right, separate):
        left = Lead(h00_left, torch.as_tensor(h01).mH)
        right = Lead(h00_right, torch.as_tensor(h01))
        assert _is_mirror(left, right)
        dev = Device([torch.as_tensor(h00) + torch.diag(torch.tensor([0.4, -0.3]))], [], left, right)
        if separate:  # force the two independent lead solves
            import invdesign.negf.leads as leads

            saved = leads._is_mirror
            leads._is_mirror = lambda a, b: False
            try:
                return solve(dev, e).transmission()
            finally:
                leads._is_mirror = saved
        return solve(dev, e).transmission()

    grads = []
    for separate in (False, True):
        hl = torch.as_tensor(h00).clone().requires_grad_(True)
        hr = torch.as_tensor(h00).clone().requires_grad_(True)
        t = transmission(hl, hr, separate)
        gl, gr = torch.autograd.grad(t.sum(), (hl, hr))
        grads.append((t.detach(), gl, gr))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)
    assert grads[0][1].abs().max() > 1e-6  # the left lead's parameters do receive a gradient


def test_flat_band_energy_is_stepped_around():
    """At E = |t| the armchair cell has a flat band: its mode pencil is singular. Both orientations of
    the lead report the same channel count, and a perfect ribbon transmits it."""
    cell = armchair_ribbon_cell(7)
    left, right = cell.leads()
    e = [2.7, -2.7]
    np.testing.assert_array_equal(open_channels(left, e), open_channels(right, e))
    t = solve(cell.device(3), e).transmission().numpy()
    np.testing.assert_allclose(t, open_channels(right, e), atol=1e-9)
