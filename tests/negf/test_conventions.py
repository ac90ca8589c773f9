"""The sign and orientation conventions of ``invdesign.negf`` (module docstring), each pinned by a test."""

import numpy as np
import torch

from invdesign.negf import (
    Device,
    Lead,
    current,
    open_channels,
    seebeck,
    self_energy,
    solve,
    surface_green_function,
)


def two_orbital_cell(seed=3):
    """A lead cell whose complex hoppings are not removable by a gauge (orientation matters)."""
    rng = np.random.default_rng(seed)
    h00 = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    h00 = (h00 + h00.conj().T) / 2
    h01 = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
    return h00, h01


def test_sigma_is_coupling_dagger_g_coupling():
    h00, h01 = two_orbital_cell()
    c = np.array([[0.3, -0.2j, 0.1], [0.05, 0.4, -0.7]])  # lead orbitals x edge orbitals
    lead = Lead(h00, h01, coupling=c)
    e = np.array([-0.4, 0.2, 1.3])
    g = surface_green_function(lead, e).numpy()
    sigma = self_energy(lead, e, edge_size=3).numpy()
    expected = np.einsum("ji,kjl,lm->kim", c.conj(), g, c)  # c^dagger g c per energy
    np.testing.assert_allclose(sigma, expected, atol=1e-13)


def test_default_coupling_is_h01_dagger():
    h00, h01 = two_orbital_cell()
    e = np.linspace(-2, 2, 7)
    sigma_default = self_energy(Lead(h00, h01), e).numpy()
    sigma_explicit = self_energy(Lead(h00, h01, coupling=h01.conj().T), e, edge_size=2).numpy()
    np.testing.assert_allclose(sigma_default, sigma_explicit, atol=1e-13)


def test_gamma_is_positive_semidefinite():
    h00, h01 = two_orbital_cell()
    sol = solve(Device([h00], [], Lead(h00, h01.conj().T), Lead(h00, h01)), np.linspace(-3, 3, 25))
    for gamma in (sol.gamma_left, sol.gamma_right):
        np.testing.assert_allclose(gamma.numpy(), gamma.mH.resolve_conj().numpy(), atol=1e-12)
        assert torch.linalg.eigvalsh(gamma).min() > -1e-12


def test_leads_are_numbered_away_from_the_device():
    """A perfect device transmits exactly the open channels only with the documented orientation."""
    h00, h01 = two_orbital_cell()
    e = np.linspace(-2.5, 2.5, 41)
    right = Lead(h00, h01)  # right lead: next cell further right is <n|H|n+1> = h01
    left = Lead(h00, h01.conj().T)  # left lead: cells count leftwards, so its h01 is H_{x,x-1}
    t = solve(Device([h00, h00], [h01], left, right), e).transmission().numpy()
    np.testing.assert_allclose(t, open_channels(right, e), atol=1e-10)
    wrong = solve(Device([h00, h00], [h01], Lead(h00, h01), right), e).transmission().numpy()
    assert np.abs(wrong - open_channels(right, e)).max() > 1e-3


def test_positive_bias_drives_positive_current():
    lead = Lead([[0.0]], [[-1.0]])
    dev = Device([[[0.2]]], [], lead, lead)
    assert float(current(dev, 0.1, 300.0)) > 0
    assert float(current(dev, -0.1, 300.0)) < 0
    assert float(current(dev, 0.0, 300.0)) == 0.0


def test_seebeck_sign_electron_like_above_a_band_bottom():
    """T rises with E just above the chain's band bottom behind a barrier: S < 0 (Mott formula)."""
    lead = Lead([[0.0]], [[-1.0]])
    dev = Device([[[1.0]]], [], lead, lead)
    s = seebeck(dev, torch.tensor([-1.5, -1.0], dtype=torch.float64), 300.0)
    assert (s < 0).all()


def test_transmission_left_to_right_equals_right_to_left():
    """Holds for the exact (eta = 0) problem only: a broadening eta > 0 absorbs current."""
    h00, h01 = two_orbital_cell(7)
    rng = np.random.default_rng(0)
    blocks = [h00 + np.diag(rng.normal(size=2)) for _ in range(3)]
    sol = solve(Device(blocks, [h01, 0.5 * h01], Lead(h00, h01.conj().T), Lead(h00, h01)),
                np.linspace(-2, 2, 17))
    np.testing.assert_allclose(sol.transmission().numpy(), sol.transmission_right_to_left().numpy(), atol=1e-10)
