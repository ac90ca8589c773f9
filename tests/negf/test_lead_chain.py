"""Closed-form leads with ``h01 = alpha 1`` (``lead_chain``) against the exact QZ mode path, the 1D
chain formula, finite differences through the implicit backward, and the cases it must not take."""

import math

import numpy as np
import pytest
import torch

from invdesign.negf import Device, Lead, lead_cache, leads, solve, surface_green_function
from invdesign.negf.lead_chain import chain_lead, chain_surface_gf


def hermitian(n, seed, complex_=True):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, n)) + (1j * rng.normal(size=(n, n)) if complex_ else 0)
    return torch.as_tensor((h + np.conj(h).T) / 2)


@pytest.fixture(autouse=True)
def _cold():
    lead_cache.clear()
    yield
    lead_cache.clear()


@pytest.mark.parametrize("n,alpha,seed", [(1, -1.0, 0), (6, -1.0, 1), (9, 0.7 - 0.4j, 2), (24, 2.5, 3)])
def test_equals_the_qz_mode_path_on_and_off_the_real_axis(n, alpha, seed):
    h00 = hermitian(n, seed, complex_=isinstance(alpha, complex) or seed % 2 == 0)
    h01 = alpha * torch.eye(n, dtype=torch.complex128)
    lead = Lead(h00.to(torch.complex128), h01)
    assert chain_lead(lead.h00, lead.h01, False) is not None
    energies = torch.linspace(-8.0, 8.0, 257, dtype=torch.float64)
    for eta in (0.0, 1e-3, 0.5):
        g = surface_green_function(lead, energies, eta=eta)
        ref = surface_green_function(lead, energies, eta=eta, method="qz")
        assert float((g - ref).abs().max()) <= 1e-12 * max(1.0, float(ref.abs().max()))


def test_one_chain_matches_the_textbook_formula_band_edges_included():
    t = -1.3
    lead = Lead(torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), t, dtype=torch.float64))
    e = torch.tensor([-2 * abs(t), -2.0, -0.4, 0.0, 1e-9, 1.7, 2 * abs(t), 2.9, -5.0, 40.0], dtype=torch.float64)
    g = surface_green_function(lead, e)[:, 0, 0]
    ref = []
    for x in e.tolist():
        if abs(x) <= 2 * abs(t):  # inside the band (edges included): Im g = -sqrt(4t^2 - E^2) / 2t^2 <= 0
            ref.append((x - 1j * math.sqrt(4 * t * t - x * x)) / (2 * t * t))
        else:
            ref.append((x - math.copysign(math.sqrt(x * x - 4 * t * t), x)) / (2 * t * t))
    ref = torch.tensor(ref, dtype=torch.complex128)
    assert float((g - ref).abs().max()) <= 1e-14
    assert float(g.imag.max()) <= 0.0


def test_a_negative_zero_imaginary_part_is_still_the_retarded_side():
    chain = chain_lead(torch.zeros(1, 1, dtype=torch.float64), -torch.eye(1, dtype=torch.float64), False)
    z = torch.complex(torch.tensor([0.5, -1.0]), torch.tensor([-0.0, -0.0])).to(torch.complex128)
    assert float(chain_surface_gf(chain, z).imag.max()) < 0.0


def test_band_edges_of_every_transverse_mode_equal_qz():
    """Energies exactly at ``d_k +- 2|t|`` of every transverse chain of a strip (the modes' band edges)."""
    width, t = 7, -1.0
    h00 = torch.diag(torch.full((width - 1,), t, dtype=torch.float64), 1)
    h00 = h00 + h00.T
    lead = Lead(h00, t * torch.eye(width, dtype=torch.float64))
    d = torch.linalg.eigvalsh(h00)
    edges = torch.cat([d - 2 * abs(t), d + 2 * abs(t)])
    g = surface_green_function(lead, edges)
    ref = surface_green_function(lead, edges, method="qz")
    # at a band edge g is finite but ill conditioned (dg/dE infinite): eigh's rounding of d_k enters as
    # sqrt(eps), as it does in the QZ path (1e-7 at E = +-2 of one chain, see README)
    assert float((g - ref).abs().max()) <= 1e-6
    assert torch.isfinite(g).all()


def test_batched_lead_and_mirror_pair(monkeypatch):
    def no_mode_solve(*args, **kwargs):
        raise AssertionError("a lead with h01 = alpha 1 went to the mode solver")

    monkeypatch.setitem(leads.SOLVERS, "modes", no_mode_solve)
    width, t = 5, -1.0
    h00 = torch.stack([hermitian(width, s, complex_=False) for s in range(3)])  # (3, n, n) parameter sets
    lead = Lead(h00, t * torch.eye(width, dtype=torch.float64))
    energies = torch.linspace(-3.0, 3.0, 31, dtype=torch.float64)
    g = surface_green_function(lead, energies)
    assert g.shape == (3, 31, width, width)
    ref = surface_green_function(lead, energies, method="qz")
    assert float((g - ref).abs().max()) <= 1e-12
    blocks = [h00 + 0.1 * k * torch.eye(width, dtype=torch.float64) for k in range(4)]
    dev = Device(blocks, [t * torch.eye(width, dtype=torch.float64)] * 3, lead, lead)
    T = solve(dev, energies).transmission()
    T_ref = solve(dev, energies, method="qz").transmission()
    assert float((T - T_ref).abs().max()) <= 1e-12


@pytest.mark.parametrize("h01,overlap", [
    (torch.diag(torch.tensor([-1.0, -1.0, -0.9])), False),  # not one alpha
    (-torch.eye(3) + 1e-3 * torch.diag(torch.ones(2), 1), False),  # not diagonal
    (torch.zeros(3, 3), False),  # decoupled cells
    (-torch.eye(3), True),  # overlapping basis
])
def test_other_leads_are_not_taken(h01, overlap):
    assert chain_lead(torch.zeros(3, 3), h01.to(torch.float64), overlap) is None


def test_a_batched_hopping_is_not_taken():
    assert chain_lead(torch.zeros(3, 3), -torch.eye(3).expand(2, 3, 3), False) is None


def test_gradient_through_a_chain_lead_matches_finite_differences():
    """d T / d (lead on-site energy): the implicit backward is unchanged, only the forward is closed form."""
    width, t = 4, -1.0
    base = torch.diag(torch.full((width - 1,), t, dtype=torch.float64), 1)
    base = base + base.T
    energies = torch.tensor([-2.3, -0.7, 0.4, 1.9], dtype=torch.float64)
    device_blocks = [base + torch.diag(torch.tensor([0.3, -0.2, 0.1, 0.0], dtype=torch.float64) * k)
                     for k in range(3)]

    def total_t(shift):
        lead_cache.clear()
        lead = Lead(base + shift * torch.eye(width, dtype=torch.float64), t * torch.eye(width, dtype=torch.float64))
        dev = Device(device_blocks, [t * torch.eye(width, dtype=torch.float64)] * 2, lead, lead)
        return solve(dev, energies).transmission().sum()

    shift = torch.tensor(0.13, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(total_t(shift), shift)
    h = 1e-5
    with torch.no_grad():
        fd = (total_t(shift + h) - total_t(shift - h)) / (2 * h)
    assert abs(float(grad) - float(fd)) <= 1e-7 * max(1.0, abs(float(fd)))
