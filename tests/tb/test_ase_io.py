"""ASE Atoms <-> Structure round trips (Angstrom <-> nm, species, dopant tags, periodic cell) and the
extended-XYZ writer read back by ASE. Skipped cleanly where ASE is not installed."""

import numpy as np
import pytest
import torch

from invdesign.tb import builders
from invdesign.tb.ase_io import species_tags, write_extxyz
from invdesign.tb.structure import Structure

ase = pytest.importorskip("ase", reason="ASE is an optional extra (pip install 'invdesign[ase]')")
import ase.io  # noqa: E402

from invdesign.tb.ase_io import from_ase, to_ase  # noqa: E402


def doped_ribbon():
    return builders.armchair_ribbon(5).repeated(3).with_species([3, 11], "dopant")


def same(a: Structure, b: Structure):
    assert a.species == b.species
    assert torch.allclose(a.positions, b.positions, rtol=0, atol=1e-12)
    assert (a.lattice is None) == (b.lattice is None)
    if a.lattice is not None:
        assert torch.allclose(a.lattice, b.lattice, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: builders.diamond(0.5431, "Si"), lambda: builders.armchair_ribbon(7),
                                  lambda: builders.graphene_sheet(), doped_ribbon,
                                  lambda: builders.zincblende(0.565, "Ga_c", "As_a")])
def test_structure_atoms_structure_round_trip(make):
    s = make()
    atoms = to_ase(s)
    np.testing.assert_allclose(atoms.positions, s.positions.numpy() * 10, rtol=0, atol=1e-12)  # Angstrom
    assert list(atoms.pbc) == [i < s.periodic_dims for i in range(3)]
    same(from_ase(atoms), s)


def test_symbols_tags_and_dopants():
    s = doped_ribbon()
    atoms = to_ase(s, symbols={"dopant": "B"})
    assert atoms.get_chemical_symbols()[3] == "B" and atoms.get_chemical_symbols()[0] == "C"
    assert atoms.get_tags()[3] == 1 and atoms.get_tags()[0] == 0
    assert to_ase(builders.zincblende(0.565, "Ga_c", "As_a")).get_chemical_symbols() == ["Ga", "As"]
    assert to_ase(s).get_chemical_symbols()[3] == "X"  # not an element: ASE's dummy atom
    # an Atoms made in ASE with a tag marking dopants
    plain = ase.Atoms("C4", positions=np.arange(12.0).reshape(4, 3), tags=[0, 2, 0, 2], cell=[5, 0, 0], pbc=[True, False, False])
    got = from_ase(plain, species={2: "dopant"})
    assert got.species == ("C", "dopant", "C", "dopant")
    assert torch.allclose(got.lattice, torch.tensor([[0.5, 0.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(got.positions, torch.arange(12.0, dtype=torch.float64).reshape(4, 3) / 10)


def test_transport_axis_reorders_the_lattice():
    atoms = ase.Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=np.diag([3.0, 4.0, 5.0]), pbc=[True, False, True])
    s = from_ase(atoms, transport_axis=2)
    assert torch.allclose(s.lattice, torch.tensor([[0, 0, 0.5], [0.3, 0, 0]], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^transport_axis 1 is not a periodic direction of the Atoms "
                                         r"\(pbc = \[True, False, True\]\)$"):
        from_ase(atoms, transport_axis=1)


@pytest.mark.parametrize("make", [doped_ribbon, lambda: builders.diamond(0.5431, "Si")])
def test_extxyz_written_without_ase_reads_back_in_ase(make, tmp_path):
    s = make()
    path = write_extxyz(tmp_path / "design.xyz", s, comment="best design")
    atoms = ase.io.read(path)
    same(from_ase(atoms), s)
    names, tags = species_tags(s.species)
    assert list(atoms.get_tags()) == tags.tolist()
