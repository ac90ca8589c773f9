"""Geometry -> Device: mode counting against the Bloch bands, DOS of a perfect wire, junction geometry,
lead supercells, input errors and the orbital order of TransportSystem."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from invdesign.negf import open_channels, solve
from invdesign.tb import bands, builders, ribbons, tables, transport
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.structure import Structure, concatenate

F64 = torch.float64
ACC = builders.ACC_NM


def right_movers(model, cell, energies, nk=2001):
    """Number of right-moving Bloch states at each energy: upward crossings of E by the bands over the
    Brillouin zone (periodic k grid), and the distance of each E from the nearest band extremum."""
    a = float(cell.lattice[0].norm())
    k = torch.linspace(-math.pi / a, math.pi / a, nk, dtype=F64)[:-1]
    kk = k[:, None] * (cell.lattice[0] / a)[None, :]  # along the lattice vector
    with torch.no_grad():
        e = bands.bloch_hamiltonian(model, cell).energies(kk).numpy()  # (K, n)
    nxt = np.roll(e, -1, axis=0)
    counts, margins = [], []
    # band extrema: where the slope changes sign
    d = nxt - e
    ext = e[(d * np.roll(d, 1, axis=0)) <= 0]
    for E in energies:
        counts.append(int(((e < E) & (nxt >= E)).sum()))
        margins.append(np.abs(ext - E).min() if ext.size else np.inf)
    return np.array(counts), np.array(margins)


def pristine_T(model, cell, energies, cells=3):
    dev, left, right = transport.wire(cell, cells)
    system = transport.two_terminal(model, dev, left, right)
    sol = solve(system.device, torch.as_tensor(energies, dtype=F64))
    return system, sol


CASES = {
    "AGNR7_NN": (lambda: tables.graphene_pz("NN_generic"), lambda: builders.armchair_ribbon(7)),
    "AGNR5_NN": (lambda: tables.graphene_pz("NN_pybinding"), lambda: builders.armchair_ribbon(5)),
    "ZGNR4_NN": (lambda: tables.graphene_pz("NN_generic"), lambda: builders.zigzag_ribbon(4)),
    "AGNR7_TNN_overlap": (lambda: tables.graphene_pz("TNN_Reich2002"), lambda: builders.armchair_ribbon(7)),
    "ZGNR3_TNN_overlap": (lambda: tables.graphene_pz("TNN_Reich2002"), lambda: builders.zigzag_ribbon(3)),
    # a chain at a_cc: its third shell (2 a_cc) reaches two cells, so the lead becomes a 2-cell supercell
    "chain_TNN_supercell": (lambda: tables.graphene_pz("TNN_Reich2002"), lambda: builders.chain(ACC, "C")),
    # multi-orbital Slater-Koster with spin-orbit: a 1D chain of zincblende cells along (1, 1, 0) a/2
    "zb_chain_vogl_SO": (lambda: tables.vogl_sp3s("GaAs", spin_orbit=True),
                         lambda: _zb_chain(tables.vogl_sp3s("GaAs", spin_orbit=True))),
    "square_strip3": (lambda: TBModel({"X": Species(("s",), {"s": 0.0})},
                                      {("X", "X"): (Shell(0.1, {"ss_sigma": -1.0}),)}),
                      lambda: builders.square_strip(3, 0.1)),
}
ENERGIES = np.linspace(-3.7, 3.7, 23) + 0.0123


def _zb_chain(model):
    a = tables.lattice_constant_nm(model.name)
    zb = builders.zincblende(a, "GaAs_a", "GaAs_c")
    return Structure(zb.positions, zb.species, zb.lattice[2:3])


@pytest.mark.parametrize("case", list(CASES))
def test_pristine_wire_transmission_counts_bloch_modes(case):
    model, cell = CASES[case][0](), CASES[case][1]()
    energies = ENERGIES if case != "zb_chain_vogl_SO" else np.linspace(-12.5, 9.5, 23) + 0.0123
    counts, margins = right_movers(model, cell, energies)
    ok = margins > 2e-3  # stay clear of band edges (van Hove singularities)
    assert ok.sum() >= 15
    system, sol = pristine_T(model, cell, energies[ok])
    T = sol.transmission().numpy()
    np.testing.assert_allclose(T, counts[ok], atol=1e-6)
    assert counts[ok].min() <= 1 and (counts[ok].max() >= 2 or case.startswith("chain"))  # several plateaus
    # the leads' own mode count agrees too
    np.testing.assert_allclose(np.asarray(open_channels(system.device.right, torch.as_tensor(energies[ok]))), counts[ok])
    if case == "chain_TNN_supercell":
        assert len(system.left_cell) == 2 and len(system.right_cell) == 2
        torch.testing.assert_close(system.right_cell.lattice, torch.tensor([[2 * ACC, 0.0, 0.0]], dtype=F64))
        torch.testing.assert_close(system.left_cell.lattice, torch.tensor([[-2 * ACC, 0.0, 0.0]], dtype=F64))


def test_agnr7_matches_the_plain_ribbon_builder():
    """The Slater-Koster path (isotropic pz, NN) and the direct nearest-neighbour builder agree."""
    e = torch.tensor([0.2, 0.7, 1.2, -1.5, 2.2], dtype=F64)
    _, sol = pristine_T(tables.graphene_pz("NN_generic"), builders.armchair_ribbon(7), e, cells=2)
    ref = solve(ribbons.armchair_ribbon_cell(7).device(2), e).transmission()
    torch.testing.assert_close(sol.transmission(), ref, rtol=0, atol=1e-9)


def test_pristine_wire_dos_equals_bulk_dos():
    """DOS of ``cells`` cells of a perfect wire = cells x (a / 2 pi) sum over crossings 1 / |dE/dk|."""
    model, cell = tables.graphene_pz("NN_generic"), builders.armchair_ribbon(7)
    a = float(cell.lattice[0, 0])
    energies = np.array([0.9, 1.35, -2.05, 2.9])
    bloch = bands.bloch_hamiltonian(model, cell)
    nk = 4001
    k = torch.linspace(-math.pi / a, math.pi / a, nk, dtype=F64)[:-1]
    kk = torch.zeros(len(k), 3, dtype=F64)
    kk[:, 0] = k
    with torch.no_grad():
        e = bloch.energies(kk).numpy()
    ref = []
    for E in energies:
        total = 0.0
        for n in range(e.shape[1]):
            en, nx = e[:, n], np.roll(e[:, n], -1)
            for i in np.nonzero((en - E) * (nx - E) < 0)[0]:
                # refine the crossing by Newton on the band (derivative by central differences)
                kc = float(k[i]) + (E - en[i]) / (nx[i] - en[i]) * (2 * math.pi / a / (nk - 1))
                for _ in range(4):
                    kt = torch.tensor([[kc - 1e-5, 0, 0], [kc, 0, 0], [kc + 1e-5, 0, 0]], dtype=F64)
                    with torch.no_grad():
                        ev = bloch.energies(kt)[:, n].numpy()
                    slope = (ev[2] - ev[0]) / 2e-5
                    kc -= (ev[1] - E) / slope
                total += a / (2 * math.pi) / abs(slope)
        ref.append(total)
    cells = 3
    _, sol = pristine_T(model, cell, energies, cells=cells)
    np.testing.assert_allclose(sol.dos().numpy(), cells * np.array(ref), rtol=1e-5)


# ---- graphene junctions -------------------------------------------------------------------------------------

def _all_atoms(dev, left, right, cells=2):
    parts = [dev]
    for lead in (left, right):
        for n in range(cells):
            parts.append(lead.translated(n * lead.lattice[0]))
    return concatenate(*parts)


def _check_junction_geometry(dev, left, right):
    assert left.lattice[0, 0] < 0 < right.lattice[0, 0]  # lattice vectors point away from the device
    assert abs(float(left.lattice[0, 1])) < 1e-12 and abs(float(right.lattice[0, 1])) < 1e-12
    every = _all_atoms(dev, left, right)
    pos = every.positions.numpy()
    tree = cKDTree(pos)
    dists, _ = tree.query(pos, k=2)
    assert dists[:, 1].min() == pytest.approx(ACC, abs=1e-9)  # nobody closer than a_cc
    pairs = tree.query_pairs(ACC * 1.01, output_type="ndarray")
    d = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
    np.testing.assert_allclose(d, ACC, atol=1e-9)  # every bond exactly a_cc
    nbrs = np.bincount(pairs.ravel(), minlength=len(pos))
    n_dev = len(dev)
    # no dangling (singly bonded) or isolated atoms in the device, lead atoms next to it included
    assert set(nbrs[:n_dev].tolist()) <= {2, 3}, f"device atoms with < 2 bonds: {np.nonzero(nbrs[:n_dev] < 2)[0]}"
    assert (nbrs[:n_dev] == 3).sum() >= n_dev // 4


JUNCTIONS = [((7, 4), {}), ((5, 2), {}), ((7, 3), {}), ((9, 5), {}), ((7, 4), {"row_offset": 1}),
             ((5, 2), {"row_offset": 1}), ((7, 7), {})]


@pytest.mark.parametrize("widths,kw", JUNCTIONS)
def test_junction_geometry(widths, kw):
    dev, left, right = builders.ribbon_junction(*widths, 2, 3, **kw)
    _check_junction_geometry(dev, left, right)
    if not kw.get("row_offset", 0) % 2:
        assert len(dev) == 2 * (widths[0] * 2 + widths[1] * 3)  # whole cells of both ribbons
    if widths[0] == widths[1]:  # a pristine ribbon
        ref, _, _ = transport.wire(builders.armchair_ribbon(widths[0]), 5)
        torch.testing.assert_close(dev.positions, ref.positions)


@pytest.mark.parametrize("widths", [(4, 7), (2, 5), (6, 4), (8, 4)])
def test_junction_geometry_narrow_left(widths):
    _check_junction_geometry(*builders.ribbon_junction(*widths, 2, 3))


def test_junction_mirror_symmetry():
    """x -> -x maps the 7-4 junction onto a 4-7 junction with the same T(E) (reciprocity).

    (``ribbon_junction(4, 7)`` itself is a different interface: mirroring an armchair ribbon shifts its
    lattice by half a period relative to the builder's cell phase, so it is not compared here.)"""
    model = tables.graphene_pz("NN_generic")
    e = torch.tensor([-2.39, -1.7, 1.3, 2.2], dtype=F64)
    dev, left, right = builders.ribbon_junction(7, 4, 2, 2)
    T74 = solve(transport.two_terminal(model, dev, left, right).device, e).transmission()
    M = torch.tensor([-1.0, 1.0, 1.0], dtype=F64)

    def mirror(s):
        return Structure(s.positions * M, s.species, None if s.lattice is None else s.lattice * M)

    # the hand-mirrored junction goes through the builder machinery and reproduces T exactly
    T_mirror = solve(transport.two_terminal(model, mirror(dev), mirror(right), mirror(left)).device, e).transmission()
    torch.testing.assert_close(T_mirror, T74, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("widths", [(7, 4), (5, 2)])
def test_junction_transmission_bounded_by_lead_modes(widths):
    model = tables.graphene_pz("NN_generic")
    dev, left, right = builders.ribbon_junction(*widths, 2, 2)
    system = transport.two_terminal(model, dev, left, right)
    energies = np.linspace(-2.4, 2.4, 17) + 0.0071
    sol = solve(system.device, torch.as_tensor(energies, dtype=F64))
    T = sol.transmission().numpy()
    mL, _ = right_movers(model, builders.armchair_ribbon(widths[0]), energies)
    mR, _ = right_movers(model, builders.armchair_ribbon(widths[1]), energies)
    assert (T <= np.minimum(mL, mR) + 1e-8).all()
    assert (T >= -1e-10).all()
    np.testing.assert_allclose(sol.transmission_right_to_left().numpy(), T, rtol=1e-8, atol=1e-10)
    # a junction scatters: somewhere T is well below the narrow lead's mode count
    assert (np.minimum(mL, mR) - T).max() > 0.05
    assert T.max() > 0.5
    # leads as built by the engine have the pristine ribbons' channels
    np.testing.assert_allclose(np.asarray(open_channels(system.device.left, torch.as_tensor(energies))), mL)
    np.testing.assert_allclose(np.asarray(open_channels(system.device.right, torch.as_tensor(energies))), mR)


def test_junction_with_overlap_reciprocity():
    model = tables.graphene_pz("TNN_Reich2002")
    dev, left, right = builders.ribbon_junction(7, 4, 2, 2)
    system = transport.two_terminal(model, dev, left, right)
    sol = solve(system.device, torch.tensor([-2.3, -1.9, 1.6, 2.4], dtype=F64))  # outside the 4-AGNR gap
    T = sol.transmission()
    torch.testing.assert_close(sol.transmission_right_to_left(), T, rtol=1e-8, atol=1e-10)
    assert (T > 1e-3).any() and (T < 2 + 1e-8).all()


# ---- errors -------------------------------------------------------------------------------------------------

def test_builder_errors():
    model = tables.graphene_pz("NN_generic")
    cell = builders.armchair_ribbon(5)
    dev, left, right = transport.wire(cell, 3)
    a = cell.lattice[0]
    # right lead's lattice vector pointing into the device: its cell 1 overlaps the device
    wrong = Structure(right.positions, right.species, -a[None])
    with pytest.raises(ValueError, match="cell 1"):
        transport.two_terminal(model, dev, left, wrong)
    # a lead cell sitting on device atoms (long cell: its cell 1 is out of reach)
    long_cell = Structure([[2 * ACC, 0, 0], [3 * ACC, 0, 0]], "C", [[2 * ACC, 0, 0]])
    with pytest.raises(ValueError, match="sits on a device atom"):
        transport.two_terminal(model, Structure([[0.0, 0, 0], [ACC, 0, 0], [2 * ACC, 0, 0]], "C"),
                               Structure([[-ACC, 0, 0]], "C", [[-ACC, 0, 0]]), long_cell)
    # no lattice vector
    with pytest.raises(ValueError, match="lattice vector"):
        transport.two_terminal(model, dev, left, Structure(right.positions, right.species))
    with pytest.raises(ValueError, match="lattice vector"):
        transport.wire(Structure([[0.0, 0, 0]], "C"), 2)
    # a lead that does not couple
    far = right.translated([0.0, 5.0, 0.0])
    with pytest.raises(ValueError, match="does not couple"):
        transport.two_terminal(model, dev, left, far)
    # unknown species in a lead
    with pytest.raises(ValueError, match="B"):
        transport.two_terminal(model, dev, left, Structure(right.positions, "B", right.lattice))


# ---- orbital order ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["graphene", "sp3s_SO"])
def test_orbital_positions_follow_slice_order(which):
    if which == "graphene":
        model = tables.graphene_pz("TNN_Reich2002")
        cell = builders.armchair_ribbon(4)
        n_orb = 1
    else:
        model = tables.vogl_sp3s("GaAs", spin_orbit=True)
        a = tables.lattice_constant_nm(model.name)
        zb = builders.zincblende(a, "GaAs_a", "GaAs_c")
        cell = Structure(zb.positions, zb.species, zb.lattice[2:3])  # a 1D chain of zincblende cells
        n_orb = 10  # 5 orbitals x 2 spins
    dev, left, right = transport.wire(cell, 3)
    dev = Structure(dev.positions.flip(0), tuple(reversed(dev.species)))  # scramble the atom order
    U = torch.arange(len(dev), dtype=F64) * 0.01
    system = transport.two_terminal(model, dev, left, right, potential_ev=U)
    base = transport.two_terminal(model, dev, left, right)
    n = system.device.num_orbitals
    assert n == n_orb * len(dev) and system.orbital_positions_nm.shape == (n, 3) and len(system.orbital_atoms) == n
    order = system.device.orbital_order
    assert order is not None and sorted(order.tolist()) == list(range(n))
    assert not np.array_equal(order, np.arange(n))  # the slicing did reorder (the test can fail)
    # the potential of atom i appears on the diagonal of the slice blocks exactly where orbital_atoms says
    diag = torch.cat([torch.diagonal(b) for b in system.device.blocks]) - torch.cat(
        [torch.diagonal(b) for b in base.device.blocks])
    if model.has_overlap:
        diag = diag / torch.cat([torch.diagonal(s) for s in base.device.overlap[0]])
    torch.testing.assert_close(diag.real, U[torch.as_tensor(system.orbital_atoms)], rtol=0, atol=1e-12)
    torch.testing.assert_close(system.orbital_positions_nm, dev.positions[torch.as_tensor(system.orbital_atoms)])
    # left-edge slice sits next to the left lead, right-edge slice next to the right lead
    x = system.orbital_positions_nm[:, 0]
    first, last = system.device.slice_sizes[0], system.device.slice_sizes[-1]
    assert x[:first].max() < x[-last:].min()
    # per-orbital outputs map back to the structure's order
    back = system.device.to_original_order(torch.as_tensor(system.orbital_atoms, dtype=F64))
    torch.testing.assert_close(back, torch.as_tensor(np.repeat(np.arange(len(dev)), n_orb), dtype=F64))


def test_batched_potential_matches_single_builds():
    """A batch of potentials (..., n_atoms) gives a batch of devices whose T equals one-by-one builds."""
    model = tables.graphene_pz("TNN_Reich2002")
    dev, left, right = transport.wire(builders.armchair_ribbon(4), 2)
    U = torch.tensor(np.random.default_rng(4).uniform(-0.4, 0.4, (2, len(dev))))
    e = torch.tensor([-2.2, 1.9, 2.6], dtype=F64)
    T = solve(transport.two_terminal(model, dev, left, right, potential_ev=U).device, e).transmission()
    assert T.shape == (2, 3)
    for i in range(2):
        Ti = solve(transport.two_terminal(model, dev, left, right, potential_ev=U[i]).device, e).transmission()
        torch.testing.assert_close(T[i], Ti, rtol=1e-10, atol=1e-12)
    assert (T[0] - T[1]).abs().max() > 1e-3


def test_leads_interacting_directly_are_rejected():
    """A one-cell chain device with third neighbours: the two leads are 2 a_cc apart and would couple
    directly, which a two-terminal Device cannot hold (silently dropping it gave T = 0.990)."""
    model = tables.graphene_pz("TNN_Reich2002")
    dev, left, right = transport.wire(builders.chain(ACC, "C"), 1)
    with pytest.raises(ValueError, match="leads interact directly"):
        transport.two_terminal(model, dev, left, right)


def test_short_device_without_lead_lead_coupling_is_exact():
    """Two device cells separate the leads of the same chain: T = 1 exactly (only the one-cell device is
    rejected)."""
    model = tables.graphene_pz("TNN_Reich2002")
    dev, left, right = transport.wire(builders.chain(ACC, "C"), 2)
    e = torch.tensor([-1.5, 0.3, 1.2, 2.5], dtype=F64)
    T = solve(transport.two_terminal(model, dev, left, right).device, e).transmission()
    torch.testing.assert_close(T, torch.ones(4, dtype=F64), rtol=0, atol=1e-8)
