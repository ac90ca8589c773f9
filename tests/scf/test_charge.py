"""NEGF electron density: Ozaki pole expansion and bias window vs dense real-axis integrals.

Reference numbers copied from ``shared/reference/analytic.json`` (block ``chain.density``).
Conventions: ``invdesign.scf`` (densities per orbital, both spins, relative to half filling).
"""

import numpy as np
import pytest
import torch

from invdesign.negf import KB_EV, Device, Lead, solve
from invdesign.negf.potential import add_potential, bulk_device
from invdesign.scf import DensityEvaluator, DensitySettings, electron_density, neutral_shift, ozaki_poles
from invdesign.tb.ribbons import armchair_ribbon_cell

T_HOP = -1.0

# analytic.json, chain.density: (mu, T_K, n_per_site), t = -1 eV chain, both spins
CHAIN_DENSITY = [(0.0, 300.0, 0.9999999999999999), (-1.0, 300.0, 0.6665314874831446)]


def _chain(potential, s01: float = 0.0) -> Device:
    n = len(potential)
    if s01:
        lead = Lead([[0.0]], [[T_HOP]], s00=[[1.0]], s01=[[s01]])
        dev = Device([np.zeros((1, 1))] * n, [np.array([[T_HOP]])] * (n - 1), lead, lead,
                     overlap=([np.eye(1)] * n, [np.array([[s01]])] * (n - 1)))
    else:
        lead = Lead([[0.0]], [[T_HOP]])
        dev = Device([np.zeros((1, 1))] * n, [np.array([[T_HOP]])] * (n - 1), lead, lead)
    return add_potential(dev, torch.as_tensor(potential, dtype=torch.float64))


def _band_integral(lo, hi, panels=60, order=32):
    """``2 Int LDOS_i(E) w(E) dE`` over the band [lo, hi] with E = c - r cos(theta) (no edge singularity)."""
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, np.pi, panels + 1)
    th = np.concatenate([0.5 * (b - a) * x + 0.5 * (a + b) for a, b in zip(edges[:-1], edges[1:])])
    wt = np.concatenate([0.5 * (b - a) * w for a, b in zip(edges[:-1], edges[1:])])
    c, r = (lo + hi) / 2, (hi - lo) / 2
    e = torch.as_tensor(c - r * np.cos(th))
    jac = torch.as_tensor(r * np.sin(th) * wt)
    return e, jac


@pytest.mark.parametrize("n_poles", [20, 40, 80])
def test_ozaki_fermi_expansion(n_poles):
    z, r = ozaki_poles(n_poles)
    x = np.linspace(-n_poles**2 / 4, n_poles**2 / 4, 20001)
    approx = 0.5 - np.sum(r[:, None] * 2 * x[None] / (x[None] ** 2 + z[:, None] ** 2), axis=0)
    assert np.abs(approx - 0.5 * (1 - np.tanh(x / 2))).max() < 1e-13
    assert (z > 0).all() and (r > 0).all()


@pytest.mark.parametrize("mu,temperature,expected", CHAIN_DENSITY)
def test_perfect_chain_density_matches_analytic(mu, temperature, expected):
    dn = electron_density(_chain(np.zeros(5)), mu, mu, temperature)
    assert torch.allclose(1 + dn, torch.full((5,), expected, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("s01", [0.0, 0.12])
def test_equilibrium_poles_match_real_axis(s01):
    """Pole expansion vs 2 Int LDOS f dE on the band (repulsive potential: no occupied bound state).

    With an overlap the engine's LDOS is the device-only Mulliken population, so the comparison holds
    for the interior orbitals; the edges (which also count their bonds to the leads) are checked by
    :func:`test_perfect_overlap_chain_is_uniform`.
    """
    rng = np.random.default_rng(3)
    device = _chain(rng.uniform(0.0, 0.4, 7), s01)
    mu, temperature = -0.35, 300.0
    dn = electron_density(device, mu, mu, temperature)
    # band of the (generalised) chain: E(k) = 2 t cos k / (1 + 2 s cos k)
    lo, hi = 2 * T_HOP / (1 + 2 * s01), -2 * T_HOP / (1 - 2 * s01)
    e, jac = _band_integral(lo, hi)
    f = torch.sigmoid((mu - e) / (KB_EV * temperature))
    ldos = solve(device, e).ldos()
    reference = 2 * (ldos * (f * jac)[:, None]).sum(0) - 1
    inner = slice(1, -1) if s01 else slice(None)
    assert (dn - reference)[inner].abs().max() < 1e-8


def test_perfect_overlap_chain_is_uniform():
    """Non-orthogonal perfect chain: every orbital, edges included, holds the bulk Mulliken population."""
    s01, mu, temperature = 0.12, -0.4, 300.0
    dn = electron_density(_chain(np.zeros(4), s01), mu, mu, temperature)
    k = (np.arange(20000) + 0.5) * 2 * np.pi / 20000
    e = 2 * T_HOP * np.cos(k) / (1 + 2 * s01 * np.cos(k))
    bulk = 2 * np.mean(1 / (1 + np.exp((e - mu) / (KB_EV * temperature)))) - 1  # Mulliken = 1 state per site
    assert torch.allclose(dn, torch.full((4,), bulk, dtype=torch.float64), atol=1e-10)


def test_nonequilibrium_density_matches_real_axis():
    """Bias: 2 Int (A_L f_L + A_R f_R) dE vs the evaluator (poles at mu_R + window on the real axis)."""
    rng = np.random.default_rng(4)
    device = _chain(rng.uniform(0.0, 0.3, 6))
    mu_l, mu_r, temperature = 0.1, -0.25, 300.0
    dn = DensityEvaluator(mu_l, mu_r, temperature)(device, cache=False)
    e, jac = _band_integral(2 * T_HOP, -2 * T_HOP)
    a_l, a_r = solve(device, e).spectral_functions()
    kt = KB_EV * temperature
    f_l, f_r = torch.sigmoid((mu_l - e) / kt), torch.sigmoid((mu_r - e) / kt)
    reference = 2 * ((a_l * f_l[:, None] + a_r * f_r[:, None]) * jac[:, None]).sum(0) - 1
    assert (dn - reference).abs().max() < 1e-8
    # the window part vanishes at zero bias: the evaluator returns the equilibrium density
    eq = electron_density(device, mu_r, mu_r, temperature)
    assert not torch.allclose(eq, dn)


def test_cached_self_energies_change_nothing():
    cell = armchair_ribbon_cell(5)
    device = cell.device(4)
    u = torch.linspace(-0.2, 0.3, device.num_orbitals, dtype=torch.float64)
    ev = DensityEvaluator(0.1, -0.1, 300.0)
    first = ev(add_potential(device, u))  # fills the cache
    second = ev(add_potential(device, 0.5 * u))
    fresh = ev(add_potential(device, 0.5 * u), cache=False)
    assert first.shape == (device.num_orbitals,)
    assert torch.allclose(second, fresh, atol=1e-13)


def test_neutral_contact_shift_matches_negf_bulk_density():
    """Band-structure neutrality of a doped 7-AGNR lead agrees with the NEGF density of the bulk crystal."""
    lead = armchair_ribbon_cell(7).leads()[1]
    doping, temperature = 4e-3, 300.0
    u = neutral_shift(lead, doping, 1.0, 0.0, temperature)
    bulk = bulk_device(lead)
    n = bulk.num_orbitals
    shifted = add_potential(bulk, torch.full((n,), u, dtype=torch.float64), u, u)
    dn = electron_density(shifted, 0.0, 0.0, temperature)
    assert float(dn.mean()) == pytest.approx(doping, abs=1e-9)
    assert u < 0  # donors: the bands move down to hold the extra electrons


def test_window_integral_converged_with_band_edges_in_the_window():
    """Lead band edges (van Hove singularities of A_L) inside the bias window: the default rule agrees
    with a far finer one of the same kind to 2e-11 electrons per orbital (the former uniform grid: 3.6e-10)."""
    cell = armchair_ribbon_cell(5)
    device = cell.device(4)
    u = torch.linspace(-0.3, 0.2, device.num_orbitals, dtype=torch.float64)
    shifted = add_potential(device, u, -0.3, 0.2)  # band edges of both leads move into the window
    kt = KB_EV * 300.0
    mu_l, mu_r = torch.tensor(0.15, dtype=torch.float64), torch.tensor(-0.15, dtype=torch.float64)
    ev = DensityEvaluator(0.15, -0.15, 300.0)
    edges = ev.band_edges(shifted)
    lo, hi = -0.15 - 20 * kt, 0.15 + 20 * kt
    assert sum(lo < e < hi for e in edges) >= 2
    coarse = ev.nonequilibrium(shifted, kt, mu_l, mu_r, cache=False)
    fine = DensityEvaluator(0.15, -0.15, 300.0, DensitySettings(panel_nodes=24, panel_kt=1.0)).nonequilibrium(
        shifted, kt, mu_l, mu_r, cache=False)
    assert float(fine.abs().max()) > 1e-3
    assert float((coarse - fine).abs().max()) < 2e-11  # the former uniform 336-node grid: 3.6e-10


@pytest.mark.parametrize("kwargs", [dict(panel_nodes=0), dict(panel_kt=0.0), dict(window_kt=-1.0), dict(n_poles=0)])
def test_bad_density_settings_are_refused(kwargs):
    with pytest.raises(Exception, match="DensitySettings"):
        DensitySettings(**kwargs)
