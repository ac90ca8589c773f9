"""Bloch bands of a lead's crystal (``negf.lead_bands``): the current's breakpoints and the SCF's bulk densities."""

import numpy as np
import pytest
import torch

from invdesign.negf import Lead
from invdesign.negf.lead_bands import lead_band_edges, lead_bands, zone_grid, zone_midpoints
from invdesign.scf.predictor import BulkDensity, neutral_shift
from invdesign.tb import armchair_ribbon, tables, two_terminal, wire

GAP_7AGNR_EV = 1.267018930457031  # closed form, nearest-neighbour pz, t = -2.7 eV (shared/reference/analytic.json)
SECOND_EDGE_7AGNR_EV = 1.1184  # second conduction step (4 digits in the reference)
D = torch.float64


def ribbon_lead() -> Lead:
    dev, left, right = wire(armchair_ribbon(7), 3)
    return two_terminal(tables.graphene_pz("NN_generic"), dev, left, right).device.left


def test_zone_grids():
    assert np.allclose(zone_grid(4), [0, np.pi / 2, np.pi, 3 * np.pi / 2], atol=0, rtol=1e-15)
    k = zone_midpoints(4)
    assert np.allclose(k, [-3 * np.pi / 4, -np.pi / 4, np.pi / 4, 3 * np.pi / 4], atol=1e-15)


def test_chain_bands_are_the_cosine():
    eps, t = 0.3, -1.0
    lead = Lead(torch.tensor([[eps]], dtype=D), torch.tensor([[t]], dtype=D))
    k = np.linspace(-np.pi, np.pi, 17)
    assert np.allclose(lead_bands(lead, k)[:, 0], eps + 2 * t * np.cos(k), atol=1e-14)


def test_batched_lead_uses_its_first_member():
    h00 = torch.tensor([[[0.0]], [[5.0]]], dtype=D)
    lead = Lead(h00, torch.full((2, 1, 1), -1.0, dtype=D))
    assert np.allclose(lead_bands(lead, np.array([0.0]))[:, 0], [-2.0], atol=1e-14)


def test_lead_band_edges_of_a_7agnr_and_a_chain():
    edges = lead_band_edges(ribbon_lead())
    positive = edges[(edges > 0) & (edges < 1.5)]
    assert abs(positive[0] - GAP_7AGNR_EV / 2) < 1e-9
    assert abs(positive[1] - SECOND_EDGE_7AGNR_EV) < 1e-4
    chain = Lead(torch.tensor([[0.3]], dtype=D), torch.tensor([[-1.0]], dtype=D))
    assert np.allclose(lead_band_edges(chain), [0.3 - 2.0, 0.3 + 2.0], atol=1e-12)


def test_lead_band_edges_with_overlap_and_a_field_phase():
    """Non-orthogonal basis: generalized eigenvalues; complex hopping: the minimum moves off k = 0."""
    t, s, phi = -1.0, 0.1, 0.7
    lead = Lead(torch.tensor([[0.0]], dtype=torch.complex128), torch.tensor([[t * np.exp(1j * phi)]]),
                s00=torch.tensor([[1.0]], dtype=torch.complex128), s01=torch.tensor([[s * np.exp(1j * phi)]]))
    # E(k) = 2 t cos(k + phi) / (1 + 2 s cos(k + phi)): extremes at cos = +-1
    assert np.allclose(lead_band_edges(lead), sorted([2 * t / (1 + 2 * s), -2 * t / (1 - 2 * s)]), atol=1e-9)


def test_scf_bulk_charge_reads_the_same_bands():
    """The SCF's contact neutrality and bulk density are band sums over ``lead_bands`` on zone midpoints."""
    lead = ribbon_lead()
    bands = lead_bands(lead, zone_midpoints(4096))
    assert bands.min() == pytest.approx(lead_band_edges(lead)[0], abs=1e-6)  # the same crystal
    kt = 8.617333262e-5 * 300.0
    u = neutral_shift(lead, 5e-3, 1.0, 0.0, 300.0)
    occupation = 0.5 * (1 - np.tanh((bands + u) / (2 * kt)))
    assert 2 * occupation.sum(-1).mean() / bands.shape[-1] - 1.0 == pytest.approx(5e-3, abs=1e-12)
    n, _ = BulkDensity(lead, 300.0)(torch.tensor([-u], dtype=D))
    assert float(n) == pytest.approx(1.0 + 5e-3, abs=2e-4)  # tabulated at kT / 8, linear interpolation
