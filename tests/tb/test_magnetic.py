"""Magnetic field by Peierls phases (Landau gauge A = (-B y, 0, 0)): Hermiticity, flux per plaquette,
periodicity along x, Onsager symmetry, quantum-Hall plateaus of a square-lattice strip."""

import math

import numpy as np
import pytest
import torch

from invdesign.negf import solve
from invdesign.tb import builders, tables, transport
from invdesign.tb.hamiltonian import coupling_blocks
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.structure import Structure

FLUX_QUANTUM_T_NM2 = 6.62607015e-34 / 1.602176634e-19 * 1e18  # h / e = 4135.667696 T nm^2 (exact SI)
A_NM = 1.0


def square_model(a=A_NM, t=-1.0):
    return TBModel({"X": Species(("s",), {"s": 0.0})}, {("X", "X"): (Shell(a, {"ss_sigma": t}),)})


def field_for_flux(phi, area=A_NM**2):
    """B (T) giving ``phi`` flux quanta through ``area`` (nm^2)."""
    return phi * FLUX_QUANTUM_T_NM2 / area


def full_matrix(system):
    """The device H of a TransportSystem reassembled from its slices (device slice order)."""
    d = system.device
    sizes = d.slice_sizes
    n = sum(sizes)
    H = torch.zeros(n, n, dtype=torch.complex128)
    o = np.concatenate([[0], np.cumsum(sizes)])
    for i, b in enumerate(d.blocks):
        H[o[i]:o[i + 1], o[i]:o[i + 1]] = b
    for i, c in enumerate(d.couplings):
        H[o[i]:o[i + 1], o[i + 1]:o[i + 2]] = c
        H[o[i + 1]:o[i + 2], o[i]:o[i + 1]] = c.mH
    return H


@pytest.mark.parametrize("case", ["square", "graphene_overlap", "sp3s_SO"])
def test_peierls_hermitian_complex_and_zero_field(case):
    if case == "square":
        model, cell = square_model(), builders.square_strip(4, A_NM)
        B = field_for_flux(0.13)
    elif case == "graphene_overlap":
        model, cell = tables.graphene_pz("TNN_Reich2002"), builders.armchair_ribbon(4)
        B = 300.0
    else:
        model = tables.vogl_sp3s("GaAs", spin_orbit=True)
        a = tables.lattice_constant_nm(model.name)
        zb = builders.zincblende(a, "GaAs_a", "GaAs_c")
        cell = zb.repeated(2, 1).repeated(2, 1)  # a finite cross-section, still periodic along a1
        cell = Structure(cell.positions, cell.species, zb.lattice[:1])
        B = 500.0
    rng = np.random.default_rng(1)
    c = cell.repeated(2) if cell.lattice is not None else cell
    c = Structure(c.positions + torch.tensor(rng.uniform(-1e-3, 1e-3, c.positions.shape)), c.species)
    H, S = coupling_blocks(model, c, c, onsite=True, magnetic_field_t=B)
    H0, S0 = coupling_blocks(model, c, c, onsite=True)
    assert H.dtype == torch.complex128
    torch.testing.assert_close(H, H.mH, rtol=0, atol=1e-13)
    assert H.imag.abs().max() > 1e-3  # phases are there
    torch.testing.assert_close(H.abs(), H0.abs(), rtol=0, atol=1e-13)  # only phases
    if S is not None:
        torch.testing.assert_close(S, S.mH, rtol=0, atol=1e-13)
        torch.testing.assert_close(S.abs(), S0.abs(), rtol=0, atol=1e-13)
        assert S.imag.abs().max() > 1e-5
    # B = 0 is exactly the field-free build
    Hz, Sz = coupling_blocks(model, c, c, onsite=True, magnetic_field_t=0.0)
    torch.testing.assert_close(Hz.to(H0.dtype), H0, rtol=0, atol=0)
    # the whole two-terminal system
    if cell.lattice is not None and case != "sp3s_SO":
        dev, left, right = transport.wire(cell, 3)
        sysB = transport.two_terminal(model, dev, left, right, magnetic_field_t=B)
        sys0 = transport.two_terminal(model, dev, left, right)
        HB = full_matrix(sysB)
        torch.testing.assert_close(HB, HB.mH, rtol=0, atol=1e-13)
        assert HB.imag.abs().max() > 1e-3
        for lead in sysB.leads:
            assert lead.h01.is_complex() and lead.coupling.is_complex()
        e = torch.tensor([0.3, 1.1], dtype=torch.float64)
        torch.testing.assert_close(solve(transport.two_terminal(model, dev, left, right, magnetic_field_t=0.0).device,
                                         e).transmission(), solve(sys0.device, e).transmission())


@pytest.mark.parametrize("phi", [0.05, 0.2, -0.3])
def test_flux_per_plaquette(phi):
    """The product of hoppings around a unit square (counter-clockwise) is t^4 exp(-2 pi i Phi / Phi_0)
    (electron charge -e, as documented in invdesign.tb.hamiltonian), at any position of the plaquette."""
    model = square_model(t=-1.0)
    B = field_for_flux(phi)
    for x0, y0 in [(0.0, 0.0), (3.0, 5.0), (-2.0, 11.0)]:
        corners = [(x0, y0), (x0 + 1, y0), (x0 + 1, y0 + 1), (x0, y0 + 1)]
        s = Structure([[x, y, 0.0] for x, y in corners], "X")
        H, _ = coupling_blocks(model, s, s, onsite=True, magnetic_field_t=B)
        loop = H[1, 0] * H[2, 1] * H[3, 2] * H[0, 3]  # hop 0 -> 1 -> 2 -> 3 -> 0
        ref = np.exp(-2j * math.pi * phi)
        assert abs(loop.item() - ref) < 1e-8, (x0, y0, loop.item(), ref)  # e/hbar: CODATA hbar, 1e-9 rel.


def test_landau_gauge_periodic_along_x():
    """h(cell n, cell n+1) is the same for every n (the lead's h01 is well defined) and the lead blocks
    are those of the principal layer."""
    model = tables.graphene_pz("TNN_Reich2002")
    cell = builders.zigzag_ribbon(3)
    a = cell.lattice[0]
    B = 700.0
    ref, sref = coupling_blocks(model, cell, cell.translated(a), magnetic_field_t=B)
    for n in (1, 4, -3):
        h, s = coupling_blocks(model, cell.translated(n * a), cell.translated((n + 1) * a), magnetic_field_t=B)
        torch.testing.assert_close(h, ref, rtol=0, atol=1e-13)
        torch.testing.assert_close(s, sref, rtol=0, atol=1e-13)
    assert ref.imag.abs().max() > 1e-3
    _, blocks = transport.lead_principal_layer(model, cell, magnetic_field_t=B)
    torch.testing.assert_close(blocks["h01"], ref, rtol=0, atol=1e-13)
    # a y-translation is not a symmetry of the Landau gauge: the block changes by a phase
    hy, _ = coupling_blocks(model, cell.translated([0, 1.0, 0]), cell.translated(a + torch.tensor([0, 1.0, 0], dtype=a.dtype)),
                            magnetic_field_t=B)
    assert (hy - ref).abs().max() > 1e-3


@pytest.mark.parametrize("case", ["square", "graphene_overlap"])
def test_onsager_two_terminal(case):
    """T(E, B) = T(E, -B) for a two-terminal device without any spatial symmetry; T(E, B) != T(E, 0)."""
    rng = np.random.default_rng(3)
    if case == "square":
        model, cell = square_model(), builders.square_strip(5, A_NM)
        B = field_for_flux(0.11)
        energies = torch.tensor([-3.1, -2.2, -0.9, 0.4], dtype=torch.float64)
    else:
        model, cell = tables.graphene_pz("TNN_Reich2002"), builders.armchair_ribbon(5)
        B = 2000.0
        energies = torch.tensor([-1.1, 0.35, 0.9], dtype=torch.float64)
    dev, left, right = transport.wire(cell, 4)
    # an asymmetric device: drop one atom near an edge, random potential
    keep = [i for i in range(len(dev)) if i != 7]
    dev = Structure(dev.positions[keep], tuple(dev.species[i] for i in keep))
    U = torch.tensor(rng.uniform(-0.3, 0.3, len(dev)))
    T = {}
    for b in (B, -B, 0.0):
        system = transport.two_terminal(model, dev, left, right, potential_ev=U, magnetic_field_t=b)
        sol = solve(system.device, energies)
        T[b] = sol.transmission()
        torch.testing.assert_close(sol.transmission_right_to_left(), T[b], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(T[B], T[-B], rtol=1e-9, atol=1e-10)
    assert (T[B] - T[0.0]).abs().max() > 1e-3


# ---- quantum Hall: integer plateaus in the Landau gaps ------------------------------------------------------

PHI_QH = 0.05  # flux quanta per plaquette: hbar omega_c = 4 pi phi |t| = 0.63 eV, l_B = 1.8 a
W_QH = 20


@pytest.fixture(scope="module")
def hall_strip():
    model = square_model()
    dev, left, right = transport.wire(builders.square_strip(W_QH, A_NM), 4)
    return model, dev, left, right


# Landau levels at E_n ~ -4|t| + (n + 1/2) 4 pi phi |t| (-3.69, -3.06, -2.43 eV): plateaus in between
PLATEAUS = [(-3.55, 1), (-3.3, 1), (-3.15, 1), (-2.85, 2), (-2.6, 2)]


def test_quantum_hall_plateaus(hall_strip):
    model, dev, left, right = hall_strip
    B = field_for_flux(PHI_QH)
    energies = torch.tensor([e for e, _ in PLATEAUS], dtype=torch.float64)
    expected = torch.tensor([float(n) for _, n in PLATEAUS], dtype=torch.float64)
    T = solve(transport.two_terminal(model, dev, left, right, magnetic_field_t=B).device, energies).transmission()
    torch.testing.assert_close(T, expected, rtol=0, atol=1e-6)
    # without the field the strip has many more modes at these energies
    T0 = solve(transport.two_terminal(model, dev, left, right).device, energies).transmission()
    assert (T0 - expected).min() >= 1.0 - 1e-6
    # the lead's Bloch bands with the field: one right-moving state in the first gap (edge state)
    _, blocks = transport.lead_principal_layer(model, builders.square_strip(W_QH, A_NM), magnetic_field_t=B)
    k = torch.linspace(-math.pi, math.pi, 721, dtype=torch.float64)[:-1]
    Hk = (blocks["h00"][None] + blocks["h01"][None] * torch.exp(1j * k)[:, None, None]
          + blocks["h01"].mH[None] * torch.exp(-1j * k)[:, None, None])
    ek = torch.linalg.eigvalsh(Hk).numpy()
    for e, n in PLATEAUS[:3]:
        crossings = ((ek[:-1] - e) * (np.roll(ek, -1, 0)[:-1] - e) < 0).sum() + (
            (ek[-1] - e) * (ek[0] - e) < 0).sum()
        assert crossings == 2 * n  # n right-movers and n left-movers (on the two edges)


def test_quantum_hall_robust_to_weak_disorder(hall_strip):
    model, dev, left, right = hall_strip
    B = field_for_flux(PHI_QH)
    energies = torch.tensor([e for e, _ in PLATEAUS[1:4]], dtype=torch.float64)
    expected = torch.tensor([float(n) for _, n in PLATEAUS[1:4]], dtype=torch.float64)
    U = torch.tensor(np.random.default_rng(0).uniform(-0.15, 0.15, len(dev)))
    T = solve(transport.two_terminal(model, dev, left, right, potential_ev=U, magnetic_field_t=B).device,
              energies).transmission()
    torch.testing.assert_close(T, expected, rtol=0, atol=1e-3)
    # the same disorder without the field scatters visibly (the test could fail)
    T0 = solve(transport.two_terminal(model, dev, left, right, potential_ev=U).device, energies).transmission()
    assert (T0 - T0.round()).abs().max() > 1e-2


def test_lead_not_along_x_with_field_raises():
    model = square_model()
    col = Structure([[0.0, 0.0, 0.0], [A_NM, 0.0, 0.0]], "X", [[0.0, A_NM, 0.0]])  # periodic along y
    dev = col.repeated(3)
    left = Structure(col.positions - torch.tensor([0.0, A_NM, 0.0]), col.species, [[0.0, -A_NM, 0.0]])
    right = Structure(col.positions + torch.tensor([0.0, 3 * A_NM, 0.0]), col.species, [[0.0, A_NM, 0.0]])
    transport.two_terminal(model, dev, left, right)  # fine without a field
    with pytest.raises(ValueError, match="along x"):
        transport.two_terminal(model, dev, left, right, magnetic_field_t=10.0)
    with pytest.raises(ValueError, match="along x"):
        transport.lead_principal_layer(model, Structure([[0.0, 0, 0]], "X", [[A_NM, A_NM, 0.0]]), magnetic_field_t=1.0)


def test_gradient_through_peierls_phases():
    """With B != 0 the phases depend on the positions even for an unscaled model: dT/d(positions) and
    dT/d(on-site) by autograd agree with central differences."""
    model = square_model()
    dev, left, right = transport.wire(builders.square_strip(3, A_NM), 2)
    B = field_for_flux(0.17)
    e = torch.tensor([-2.1, -0.7, 1.3], dtype=torch.float64)
    base = dev.positions.clone()
    moved = [1, 4]

    def f(x):
        pos = base.clone()
        pos[moved, :2] = pos[moved, :2] + x[:4].reshape(2, 2)
        U = torch.zeros(len(dev), dtype=torch.float64)
        U = U.index_put((torch.tensor([4]),), x[4:5])
        system = transport.two_terminal(model, Structure(pos, dev.species), left, right, potential_ev=U,
                                        magnetic_field_t=B)
        return solve(system.device, e).transmission().sum()

    x0 = torch.tensor([0.004, -0.003, 0.002, 0.001, 0.2], dtype=torch.float64)
    x = x0.clone().requires_grad_()
    (ad,) = torch.autograd.grad(f(x), x)
    h = 1e-5
    fd = torch.zeros(5, dtype=torch.float64)
    with torch.no_grad():
        for i in range(5):
            dx = torch.zeros(5, dtype=torch.float64)
            dx[i] = h
            fd[i] = (-f(x0 + 2 * dx) + 8 * f(x0 + dx) - 8 * f(x0 - dx) + f(x0 - 2 * dx)) / (12 * h)
    assert fd[:4].abs().max() > 1e-2  # positions matter through the phases only
    torch.testing.assert_close(ad, fd, rtol=1e-6, atol=1e-8)
