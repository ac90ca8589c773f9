"""Wannier90 models: files written from our own models read back to the same bands and T(E) as our
builders (graphene pz sheet / nanotube, a 2-band chain reaching two cells, Si sp3s*, GaAs sp3s* + SO),
k-sampled transport, hoppings as design parameters, and the exact messages for bad files."""

import math

import numpy as np
import pytest
import torch

from invdesign.negf import solve
from invdesign.tb import bands, builders, tables, transport
from invdesign.tb import wannier90 as w90
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.structure import Structure
from invdesign.tb.wannier_transport import k_grid, layer_hamiltonians, wannier_two_terminal

F64 = torch.float64


def two_band_chain():
    """A-B chain (period 0.2 nm) whose longest A-B bond (0.49 nm) reaches two cells."""
    cell = Structure([[0.0, 0.0, 0.0], [0.09, 0.0, 0.0]], ("A", "B"), [[0.2, 0.0, 0.0]])
    model = TBModel({"A": Species(("s",), {"s": 0.3}), "B": Species(("s",), {"s": -0.4})},
                    {("A", "B"): (Shell(0.09, {"ss_sigma": -1.0}), Shell(0.11, {"ss_sigma": -0.6}),
                                  Shell(0.49, {"ss_sigma": -0.1})),
                     ("A", "A"): (Shell(0.2, {"ss_sigma": -0.2}),), ("B", "B"): (Shell(0.2, {"ss_sigma": -0.15}),)},
                    shell_tolerance=0.02, name="two-band chain")
    return model, cell


def si_wire():
    """Diamond Si cells repeated along a1 = a/2 (0, 1, 1) only: a 1D crystal, sp3s*, 10 orbitals per cell."""
    model = tables.vogl_sp3s("Si")
    crystal = builders.zincblende(tables.lattice_constant_nm(model.name), *model_species(model))
    return model, Structure(crystal.positions, crystal.species, crystal.lattice[:1])


def model_species(model):
    return sorted(model.species)


def si_bulk():
    model = tables.vogl_sp3s("Si")
    return model, builders.zincblende(tables.lattice_constant_nm(model.name), *model_species(model))


def gaas_so_bulk():
    model = tables.klimeck_sp3s("GaAs")
    return model, builders.zincblende(tables.lattice_constant_nm(model.name), *model_species(model))


CASES = {
    "graphene_sheet": lambda: (tables.graphene_pz("NN_generic"), builders.graphene_sheet()),
    "two_band_chain": two_band_chain,
    "si_sp3s_bulk": si_bulk,
    "gaas_sp3s_so_bulk": gaas_so_bulk,
}


def round_trip(model, crystal, tmp_path, name="seed"):
    written = w90.from_tb(model, crystal)
    w90.write_wannier90(tmp_path / name, written, structure=crystal)
    return written, w90.read_wannier90(tmp_path / name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bands_after_round_trip_match_builder(case, tmp_path):
    model, crystal = CASES[case]()
    written, read = round_trip(model, crystal, tmp_path)
    assert np.array_equal(read.R, written.R)
    assert torch.allclose(read.h, written.h, rtol=0, atol=1e-12)
    assert torch.allclose(read.lattice_nm, written.lattice_nm, rtol=0, atol=1e-12)
    assert torch.allclose(read.centres_nm, written.centres_nm, rtol=0, atol=1e-12)
    k = (torch.rand(24, 3, generator=torch.Generator().manual_seed(3), dtype=F64) - 0.5) * 40  # 1/nm
    ours = bands.bloch_hamiltonian(model, crystal).energies(k)
    theirs = read.bloch().energies(k)
    assert float((ours - theirs).abs().max()) < 1e-10


def test_degeneracy_weights_divide_the_hoppings(tmp_path):
    model, crystal = two_band_chain()
    base = w90.from_tb(model, crystal)
    deg = np.where(np.abs(base.R).sum(1) > 0, 2, 1)  # the file then lists twice the hopping
    w90.write_wannier90(tmp_path / "d", w90.WannierModel(base.R, base.h, deg, base.lattice_nm))
    text = (tmp_path / "d_hr.dat").read_text().splitlines()
    assert text[3].split() == [str(d) for d in deg]
    read = w90.read_wannier90(tmp_path / "d")
    assert torch.allclose(read.h, base.h, rtol=0, atol=1e-15)
    row = next(ln.split() for ln in text[4:] if ln.split()[:5] == ["1", "0", "0", "1", "2"])
    assert float(row[5]) == pytest.approx(2 * float(base.h[base.index([1, 0, 0]), 0, 1].real), abs=1e-15)


def potential_along(n_cells, per_cell):
    return 0.4 * torch.sin(torch.arange(n_cells, dtype=F64) * 1.3)[:, None].expand(n_cells, per_cell).reshape(-1)


@pytest.mark.parametrize("case", ["two_band_chain", "si_sp3s_wire", "agnr7"])
def test_transmission_matches_two_terminal(case, tmp_path):
    model, cell = {"two_band_chain": two_band_chain, "si_sp3s_wire": si_wire,
                   "agnr7": lambda: (tables.graphene_pz("NN_generic"), builders.armchair_ribbon(7))}[case]()
    _, read = round_trip(model, cell, tmp_path)
    N = 4
    dev, left, right = transport.wire(cell, N)
    u_atoms = potential_along(N, len(cell))  # one value per cell, on every atom of it
    ours = transport.two_terminal(model, dev, left, right, potential_ev=u_atoms)
    per_atom = read.num_wann // len(cell)
    theirs = wannier_two_terminal(read, N, potential_ev=u_atoms.repeat_interleave(per_atom))
    E = torch.linspace(-3.0, 3.0, 61, dtype=F64) + 0.0123
    T_ours = solve(ours.device, E).transmission()
    T_theirs = theirs.transmission(E)
    assert float(T_ours.max()) > 0.5  # a non-trivial comparison
    assert float((T_ours - T_theirs).abs().max()) < 1e-10


def test_principal_layer_is_enlarged_to_the_reach(tmp_path):
    _, read = round_trip(*two_band_chain(), tmp_path)
    assert sorted(layer_hamiltonians(read, 0)) == [-2, -1, 0, 1, 2]
    system = wannier_two_terminal(read, 3)
    assert system.layer_cells == 2
    assert system.device.left.size == 2 * read.num_wann
    with pytest.raises(ValueError, match=r"^the device needs at least 2 cells: hoppings reach 2 cells along "
                                         r"lattice vector 0, and shorter devices would let the leads couple directly$"):
        wannier_two_terminal(read, 1)


def tube_and_sheet_cell(n):
    """(n, 0) nanotube cell and the flat graphene cell made of its atoms in one angular period 2 pi / n."""
    tube = builders.nanotube(n, 0)
    pos = tube.positions
    theta = torch.atan2(pos[:, 2], pos[:, 1]) % (2 * math.pi)
    radius = float(pos[0, 1:].norm())
    keep = theta < 2 * math.pi / n - 1e-9
    flat = torch.stack([pos[keep, 0], radius * theta[keep], torch.zeros(int(keep.sum()), dtype=F64)], dim=1)
    circumference_cell = 2 * math.pi * radius / n
    sheet = Structure(flat, ("C",) * len(flat), [[float(tube.lattice[0, 0]), 0.0, 0.0], [0.0, circumference_cell, 0.0]])
    return tube, sheet


def test_k_sampled_sheet_equals_zone_folded_nanotube(tmp_path):
    """(n, 0) tube = graphene with n transverse k: n * <T(E)>_k equals the tube's T(E) with an axial potential."""
    n, N = 5, 4
    model = tables.graphene_pz("NN_generic")
    tube, sheet = tube_and_sheet_cell(n)
    assert len(sheet) == 4 and len(tube) == 4 * n
    _, read = round_trip(model, sheet, tmp_path)
    dev, left, right = transport.wire(tube, N)
    ours = transport.two_terminal(model, dev, left, right, potential_ev=potential_along(N, len(tube)))
    k = k_grid([n, 1], direction=0)
    theirs = wannier_two_terminal(read, N, k_transverse=k, potential_ev=potential_along(N, len(sheet)))
    assert theirs.device.blocks[0].shape[0] == n  # one batch member per transverse k
    E = torch.linspace(-3.0, 3.0, 61, dtype=F64) + 0.0123
    T_tube = solve(ours.device, E).transmission()
    assert float(T_tube.max()) > 2.0
    assert float((n * theirs.transmission(E) - T_tube).abs().max()) < 1e-10


def test_hopping_as_design_parameter_gradient(tmp_path):
    _, read = round_trip(*two_band_chain(), tmp_path)
    t = torch.tensor(-0.8, dtype=F64, requires_grad=True)
    E = torch.linspace(-1.5, 1.5, 7, dtype=F64)

    def total(value):
        device_model = read.with_hopping([0, 0, 0], 0, 1, value)
        return wannier_two_terminal(read, 3, device_model=device_model).transmission(E).sum()

    (g,) = torch.autograd.grad(total(t), t)
    h = 1e-6
    fd = (total(torch.tensor(-0.8 + h, dtype=F64)) - total(torch.tensor(-0.8 - h, dtype=F64))) / (2 * h)
    assert abs(float(g)) > 1e-3
    assert float(g) == pytest.approx(float(fd), rel=1e-6)


# --------------------------------------------------------------------------- bad files

GOOD = """written by test
           2
           3
    1    1    1
""" + "".join(
    f"{R}    {m}    {n}   {v:.6f}    0.000000\n"
    for R, vals in (("   -1    0    0", {(1, 2): -1.0}), ("    0    0    0", {(1, 2): -0.5, (2, 1): -0.5}),
                    ("    1    0    0", {(2, 1): -1.0}))
    for n in (1, 2) for m in (1, 2) for v in [vals.get((m, n), 0.0)])


def write(tmp_path, text):
    path = tmp_path / "bad_hr.dat"
    path.write_text(text)
    return path


def test_good_file_reads(tmp_path):
    model = w90.read_hr(write(tmp_path, GOOD), lattice_nm=torch.eye(3, dtype=F64) * 0.3)
    assert model.num_wann == 2 and len(model.R) == 3
    e = model.bloch().energies(torch.zeros(1, 3, dtype=F64))  # SSH chain at k = 0: +-(0.5 + 1.0)
    assert torch.allclose(e, torch.tensor([[-1.5, 1.5]], dtype=F64), atol=1e-14)


def test_malformed_field_names_line_and_field(tmp_path):
    lines = GOOD.splitlines()
    lines[9] = lines[9].replace("-0.500000", "-0.5x0000")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(w90.Wannier90FormatError) as err:
        w90.read_hr(path)
    assert str(err.value) == f"{path}: line 10, field Re(H): expected a number, got '-0.5x0000'"


def test_missing_degeneracy_line(tmp_path):
    lines = GOOD.splitlines()
    path = write(tmp_path, "\n".join(lines[:3] + lines[4:]) + "\n")
    with pytest.raises(w90.Wannier90FormatError) as err:
        w90.read_hr(path)
    assert str(err.value) == (f"{path}: line 4: expected 3 degeneracy weights, found 7 fields "
                              "(a hopping line: the degeneracy line is missing)")


def test_non_hermitian_names_R_and_orbitals(tmp_path):
    path = write(tmp_path, GOOD.replace("    1    0    0    2    1   -1.000000", "    1    0    0    2    1   -0.900000"))
    with pytest.raises(w90.Wannier90FormatError) as err:
        w90.read_hr(path)
    assert str(err.value) == (f"{path}: H(R) and H(-R)^dagger differ by 1.000e-01 eV at R = (-1, 0, 0), m = 1, n = 2 "
                              "(1-based, as in the file): the Hamiltonian is not Hermitian (tolerance 1.0e-05 eV)")


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls[:6] + [ls[6] + " 7"] + ls[7:],
     "line 7: expected 7 fields (R1 R2 R3 m n Re(H) Im(H)), found 8"),
    (lambda ls: ls[:6] + [" ".join(ls[6].split()[:3] + ["3"] + ls[6].split()[4:])] + ls[7:],
     "line 7, field m: orbital 3 outside 1..2"),
    (lambda ls: ls[:-1], "expected nrpts x num_wann^2 = 3 x 2^2 = 12 hopping lines after line 4; found 11"),
    (lambda ls: ls[:1] + ["two"] + ls[2:], "line 2, field num_wann: expected an integer, got 'two'"),
    (lambda ls: ls[:3] + ["    1    0    1"] + ls[4:], "line 4, field ndegen(2): expected a positive integer, got 0"),
])
def test_other_format_errors(tmp_path, edit, message):
    path = write(tmp_path, "\n".join(edit(GOOD.splitlines())) + "\n")
    with pytest.raises(w90.Wannier90FormatError) as err:
        w90.read_hr(path)
    assert str(err.value) == f"{path}: {message}"
