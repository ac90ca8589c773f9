"""The one Landauer integral (``negf.current.landauer_integral``) and the currents built on it.

``current`` (a bias), ``landauer_current`` (two chemical potentials; the SCF's drain current) and the
problems' currents on their own grids all end in ``landauer_integral``; these tests pin it against
closed forms (a step in T(E), different contact temperatures) and pin the callers to it.
"""

import math

import pytest
import torch

from invdesign.negf import G0_S, KB_EV, Device, Lead, NEGFInputError, current, solve
from invdesign.negf.current import gauss_legendre_grid, landauer_current, landauer_grid, landauer_integral

D = torch.float64
T_HOP = -1.0  # eV: a perfect chain, T(E) = 1 for |E| < 2 |t|
LEAD = Lead(torch.tensor([[0.0]], dtype=D), torch.tensor([[T_HOP]], dtype=D))


def chain(eps: float = 0.0) -> Device:
    return Device([torch.tensor([[eps]], dtype=D)], [], LEAD, LEAD)


def supply(e0: float, mu: float, temperature_k: float) -> float:
    """``Int_{e0}^inf f(E - mu) dE`` (eV) at temperature_k: ``kT ln(1 + exp(-(e0 - mu) / kT))``."""
    kt = KB_EV * temperature_k
    return kt * math.log1p(math.exp(-(e0 - mu) / kt))


@pytest.mark.parametrize("temperatures", [(300.0, 300.0), (450.0, 150.0), (0.0, 300.0)])
def test_integral_of_a_step_matches_the_closed_form(temperatures):
    """T(E) = 1 above e0, 0 below: I = G0 [S_L - S_R], S = kT ln(1 + e^{-(e0 - mu)/kT}) per contact
    (one or two temperatures, one of them 0 K: a step Fermi function, S = max(mu - e0, 0))."""
    e0, mu_l, mu_r = 0.05, 0.1, -0.05
    t_max = max(temperatures)
    e, w = gauss_legendre_grid(e0, mu_l + 40 * KB_EV * t_max, 800, breakpoints=[mu_l, mu_r])
    i = landauer_integral(torch.ones_like(e), e, w, mu_l, mu_r, temperatures)
    s = [max(m - e0, 0.0) if t == 0 else supply(e0, m, t) for m, t in zip((mu_l, mu_r), temperatures)]
    assert float(i) == pytest.approx(G0_S * (s[0] - s[1]), rel=1e-12)


def test_a_hotter_contact_drives_a_thermoelectric_current_at_zero_bias():
    """Same mu, T_L > T_R, T(E) = 1 above mu only: electrons flow from the hot side (I > 0); reversed
    temperatures reverse it exactly; equal temperatures give exactly 0."""
    e, w = gauss_legendre_grid(0.0, 40 * KB_EV * 400.0, 400)
    t = torch.ones_like(e)
    hot_left = landauer_integral(t, e, w, 0.0, 0.0, (400.0, 200.0))
    hot_right = landauer_integral(t, e, w, 0.0, 0.0, (200.0, 400.0))
    assert float(hot_left) > 0 and float(hot_left + hot_right) == 0.0
    assert float(landauer_integral(t, e, w, 0.0, 0.0, 300.0)) == 0.0
    assert float(hot_left) == pytest.approx(G0_S * (supply(0.0, 0.0, 400.0) - supply(0.0, 0.0, 200.0)), rel=1e-12)


def test_zero_kelvin_uses_the_oriented_interval():
    """At 0 K the grid runs from mu_R to mu_L (negative weights for mu_L < mu_R): I = G0 (mu_L - mu_R) T."""
    for mu_l, mu_r in ((0.1, -0.2), (-0.2, 0.1)):
        e, w = landauer_grid(mu_l, mu_r, 0.0, 16)
        assert float(w.sum()) == pytest.approx(mu_l - mu_r, rel=1e-14)
        i = landauer_integral(torch.full_like(e, 0.5), e, w, mu_l, mu_r, 0.0)
        assert float(i) == pytest.approx(G0_S * 0.5 * (mu_l - mu_r), rel=1e-14)


def test_current_is_landauer_current_at_mu_plus_minus_half_the_bias():
    """``current`` is ``landauer_current`` at mu_L = mu + V/2, mu_R = mu - V/2, to the last bit (mu = 0),
    and ``landauer_current`` is ``landauer_integral`` of ``solve`` on ``landauer_grid``."""
    dev = chain(0.4)
    v = torch.tensor(0.3, dtype=D, requires_grad=True)
    i = current(dev, v, 300.0, n_energies=64)
    i2 = landauer_current(dev, v / 2, -v / 2, 300.0, 64)
    assert torch.equal(i, i2)
    (g,), (g2,) = torch.autograd.grad(i, v, retain_graph=True), torch.autograd.grad(i2, v)
    assert torch.equal(g, g2)
    e, w = landauer_grid(0.15, -0.15, 300.0, 64)
    direct = landauer_integral(solve(dev, e).transmission(), e, w, 0.15, -0.15, 300.0)
    assert float(direct) == pytest.approx(float(i.detach()), rel=1e-14)


def test_landauer_current_window_follows_both_chemical_potentials():
    """The window is [min mu - w kT, max mu + w kT]: dI/dmu_L by autodiff = finite differences of the same rule."""
    dev = chain(0.2)
    mu_l = torch.tensor(0.25, dtype=D, requires_grad=True)
    (g,) = torch.autograd.grad(landauer_current(dev, mu_l, -0.1, 300.0, 48), mu_l)
    h = 1e-6
    fd = (landauer_current(dev, 0.25 + h, -0.1, 300.0, 48) - landauer_current(dev, 0.25 - h, -0.1, 300.0, 48)) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=1e-7)
    assert float(g) == pytest.approx(G0_S * float(solve(dev, torch.tensor([0.25], dtype=D)).transmission()), rel=2e-2)


def test_fermi_edge_panels_are_optional():
    """Coarse grids at low temperature get panels at the Fermi edges unless told not to (the SCF's current)."""
    dev = chain()
    e_plain, _ = landauer_grid(0.05, -0.05, 30.0, 16, fermi_edge_panels=False)
    e_edges, _ = landauer_grid(0.05, -0.05, 30.0, 16)
    assert len(e_edges) > len(e_plain)
    exact = G0_S * 0.1  # T = 1 in the window, tails 40 kT out
    with_edges = landauer_current(dev, 0.05, -0.05, 30.0, 16)
    without = landauer_current(dev, 0.05, -0.05, 30.0, 16, fermi_edge_panels=False)
    assert abs(float(with_edges) / exact - 1) < 1e-12  # measured 2.7e-14
    assert abs(float(without) / exact - 1) > 1e-2  # measured 2.1e-2: the edges fall between nodes


def test_inputs_are_named_in_errors():
    e, w = gauss_legendre_grid(-1.0, 1.0, 8)
    with pytest.raises(NEGFInputError, match=r"temperature_k must be one temperature or \(T_left, T_right\)"):
        landauer_integral(torch.ones_like(e), e, w, 0.0, 0.0, (300.0, 300.0, 300.0))
    with pytest.raises(NEGFInputError, match=r"temperature_k\[1\] must be >= 0 K"):
        landauer_integral(torch.ones_like(e), e, w, 0.0, 0.0, (300.0, -1.0))
    with pytest.raises(NEGFInputError, match="mu_right must be a finite number"):
        landauer_current(chain(), 0.0, math.nan, 300.0)
    with pytest.raises(NEGFInputError, match="n_energies must be a positive integer"):
        landauer_current(chain(), 0.0, 0.1, 300.0, 0)
