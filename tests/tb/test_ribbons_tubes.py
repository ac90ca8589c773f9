"""Ribbons, nanotubes and graphene from the builders against closed forms (shared/reference/analytic.json).

Model: nearest-neighbour pz, t = -2.7 eV, a_cc = 0.142 nm, no edge relaxation, no hydrogen.
Numbers copied from analytic.json (analytic.py, numpy only): armchair gaps from the closed form
``min_p |t| |1 + 2 cos(p pi / (N + 1))|`` x 2; conductance steps as (energy just above a step, T).
"""

from __future__ import annotations

import math

import pytest
import torch

from invdesign.negf import open_channels, solve
from invdesign.tb import tables
from invdesign.tb.bands import band_extremum, bloch_hamiltonian
from invdesign.tb.builders import armchair_ribbon, graphene_sheet, nanotube, zigzag_ribbon
from invdesign.tb.transport import two_terminal, wire

ARMCHAIR = [  # N, analytic gap (eV), [(E just above a step, T)]
    (4, 2.062616460750569, [(0.02, 0), (1.0323, 1)]),
    (5, 0.0, [(0.02, 1)]),
    (6, 1.3336898600743217, [(0.02, 0), (0.6678, 1), (1.4994, 2)]),
    (7, 1.267018930457031, [(0.02, 0), (0.6345, 1), (1.1194, 2)]),
    (8, 0.0, [(0.02, 1), (1.4376, 2)]),
    (9, 0.9480807247587087, [(0.02, 0), (0.475, 1), (1.0323, 2)]),
    (10, 0.9135178595796277, [(0.02, 0), (0.4578, 1), (0.8373, 2)]),
    (11, 0.0, [(0.02, 1), (1.1194, 2), (1.3034, 3)]),
    (12, 0.7350992646964816, [(0.02, 0), (0.3686, 1), (0.7861, 2), (1.343, 3)]),
    (13, 0.7140556175303729, [(0.02, 0), (0.358, 1), (0.6678, 2), (1.4994, 3)]),
]
ZIGZAG = [(2, [(0.02, 1)]), (4, [(0.02, 1)]), (7, [(0.02, 1), (1.4738, 3)]), (10, [(0.02, 1), (1.0997, 3)])]
TUBES = [  # n, m, metallic, gap (eV, fine k grid in the reference), cell length (nm), steps
    (5, 5, True, 0.0, 0.24595121467478057, [(0.02, 2)]),
    (9, 0, True, 0.0, 0.426, [(0.02, 2), (1.4376, 4)]),
    (10, 0, False, 0.9480856777493368, 0.426, [(0.02, 0), (0.475, 2), (1.0323, 4)]),
    (13, 0, False, 0.7351054383933121, 0.426, [(0.02, 0), (0.3686, 2), (0.7861, 4), (1.343, 6)]),
    (8, 4, False, 0.9077574156216669, 1.1270900585135155, [(0.02, 0), (0.4549, 2), (0.9386, 4)]),
]
MODEL = tables.graphene_pz("NN_generic")


def _transmission(cell, energies, cells=2):
    system = two_terminal(MODEL, *wire(cell, cells))
    return solve(system.device, torch.tensor(energies, dtype=torch.float64)).transmission()


@pytest.mark.parametrize("n, gap, steps", ARMCHAIR)
def test_armchair_gap_and_conductance_steps(n, gap, steps):
    cell = armchair_ribbon(n)
    assert len(cell) == 2 * n
    e = bloch_hamiltonian(MODEL, cell).energies(torch.zeros(1, 3))[0]  # AGNR gaps are direct at Gamma
    got = float(e[e > 1e-9].min() - e[e < -1e-9].max()) if gap > 0 else float(e.abs().min())
    assert abs(got - gap) < 1e-9
    t = _transmission(cell, [s[0] for s in steps])
    assert torch.allclose(t, torch.tensor([float(s[1]) for s in steps], dtype=torch.float64), atol=1e-8)


@pytest.mark.parametrize("n, steps", ZIGZAG)
def test_zigzag_conductance_steps(n, steps):
    t = _transmission(zigzag_ribbon(n), [s[0] for s in steps])
    assert torch.allclose(t, torch.tensor([float(s[1]) for s in steps], dtype=torch.float64), atol=1e-8)


def test_zigzag_flat_band_at_zero_energy_is_one_channel():
    t = _transmission(zigzag_ribbon(6), [0.0, 1e-9, -1e-9])
    assert torch.allclose(t, torch.ones(3, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("n, m, metallic, gap, length, steps", TUBES)
def test_nanotube_geometry_gap_and_steps(n, m, metallic, gap, length, steps):
    tube = nanotube(n, m)
    a = math.sqrt(3) * 0.142
    diameter = a * math.sqrt(n * n + n * m + m * m) / math.pi
    radii = torch.linalg.vector_norm(tube.positions[:, 1:], dim=1)
    assert torch.allclose(radii, torch.full_like(radii, diameter / 2), atol=1e-12)
    assert abs(float(tube.lattice[0, 0]) - length) < 1e-9
    bloch = bloch_hamiltonian(MODEL, tube)
    k_end = torch.tensor([math.pi / length, 0.0, 0.0], dtype=torch.float64)
    nbands = bloch.h.shape[-1]
    _, e_c = band_extremum(bloch, nbands // 2, -k_end, k_end)  # lowest conduction band
    _, e_v = band_extremum(bloch, nbands // 2 - 1, -k_end, k_end, minimum=False)
    if metallic:
        assert float(e_c - e_v) < 1e-9
    else:
        assert abs(float(e_c - e_v) - gap) < 1e-4  # reference gap from a k grid
    t = _transmission(tube, [s[0] for s in steps])
    assert torch.allclose(t, torch.tensor([float(s[1]) for s in steps], dtype=torch.float64), atol=1e-8)


def test_13_0_tube_gap_is_the_zone_folding_closed_form():
    """(13, 0): Eg = 2 |t| |1 + 2 cos(pi q / 13)| minimised over q = the armchair-12 closed form, 0.735099 eV."""
    tube = nanotube(13, 0)
    e = bloch_hamiltonian(MODEL, tube).energies(torch.zeros(1, 3))[0]
    assert abs(float(e[e > 0].min() - e[e < 0].max()) - 0.7350992646964816) < 1e-9


GRAPHENE = {  # set -> (E_Gamma, E_M, E_K) from analytic.json graphene_bands_overlap
    "NN_generic": ([-8.100000000000001, 8.099999999999998], [-2.7, 2.7], [0.0, 0.0]),
    "NN_Saito_with_overlap": ([-6.560201874549386, 14.84339314845024], [-2.686448184233835, 3.482204362801377], [0.0, 0.0]),
    "TNN_Reich2002": ([-7.557295373665476, 11.321824907521577], [-2.2043795620437954, 1.9050567595459225],
                      [-0.0644820295983098, -0.06448202959830765]),
}


@pytest.mark.parametrize("name", sorted(GRAPHENE))
def test_graphene_bands_with_overlap(name):
    sheet = graphene_sheet()
    bloch = bloch_hamiltonian(tables.graphene_pz(name), sheet)
    b = 2 * math.pi * torch.linalg.pinv(sheet.lattice[:, :2]).T  # reciprocal vectors (2, 2), 1/nm
    gamma = torch.zeros(2, dtype=torch.float64)
    m_point = b[0] / 2
    k_point = (2 * b[0] + b[1]) / 3
    k = torch.stack([gamma, m_point, k_point])
    k = torch.cat([k, torch.zeros(3, 1, dtype=torch.float64)], dim=1)
    e = bloch.energies(k)
    for row, target in zip(e, GRAPHENE[name]):
        assert torch.allclose(row, torch.tensor(target, dtype=torch.float64), atol=1e-9), (name, row)


def test_7agnr_transmission_and_dos_consistent_with_band_structure():
    """T(E) of a pristine 7-AGNR equals its right-moving mode count from the bands at every energy."""
    cell = armchair_ribbon(7)
    system = two_terminal(MODEL, *wire(cell, 4))
    energies = torch.linspace(-3.2, 3.2, 257, dtype=torch.float64) + 1.234e-4  # off band edges
    sol = solve(system.device, energies)
    t, dos = sol.transmission(), sol.dos()
    bloch = bloch_hamiltonian(MODEL, cell)
    period = float(cell.lattice[0, 0])
    k = torch.linspace(-math.pi / period, math.pi / period, 4001, dtype=torch.float64)
    bands = bloch.energies(torch.stack([k, 0 * k, 0 * k], dim=1))  # (K, n)
    # right movers at E: crossings of E by a band with positive slope
    above = bands[None, :, :] > energies[:, None, None]
    crossings = (~above[:, :-1, :] & above[:, 1:, :]).sum(dim=(1, 2))
    assert torch.equal(t.round().to(torch.int64), crossings)
    assert torch.allclose(t, crossings.to(t.dtype), atol=1e-8)
    assert torch.equal(torch.as_tensor(open_channels(system.device.right, energies)), crossings)
    # LDOS summed over a device cell = bulk DOS per cell = (L / pi) sum_right-movers 1 / (dE/dk)
    dk = float(k[1] - k[0])
    slope = bands.diff(dim=0) / dk  # (K-1, n)
    crossing = ~above[:, :-1, :] & above[:, 1:, :]  # (nE, K-1, n)
    inv_v = (crossing / slope[None].clamp(min=1e-300)).sum(dim=(1, 2))
    expected = period / math.pi * inv_v
    cell_atoms = torch.arange(len(cell), 2 * len(cell))  # second device cell (original atom order)
    ldos_cell = sol.ldos()[:, cell_atoms].sum(-1)
    edges = torch.cat([bands.amin(0), bands.amax(0)])  # stay away from van Hove singularities
    far = (energies[:, None] - edges[None, :]).abs().amin(1) > 0.05
    assert far.sum() > 150
    assert torch.allclose(ldos_cell[far], expected[far], rtol=2e-3)
    assert torch.allclose(dos, sol.ldos().sum(-1))
