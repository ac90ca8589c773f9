"""Tight-binding Hamiltonians from atoms and empirical parameters (knows the engine's Device/Lead only).

- ``slater_koster``: two-centre blocks for s, p, d, s* orbitals (orbital order, integral names and the
  sign convention of heteropolar integrals are stated there, once).
- ``model``: ``Species``, ``Shell``, ``TBModel`` (neighbour shells, distance scaling, overlap,
  spin-orbit); every number may be a tensor with ``requires_grad``; ``named_parameters``/``replace``.
- ``tables``: published parameter sets (graphene pz incl. overlap and 3rd neighbours, Vogl 1983,
  Klimeck 2000, Jancu 1998, Boykin 2004) with their sources.
- ``structure`` / ``builders``: atoms (nm); chains, square strips, armchair/zigzag ribbons, ribbon
  junctions, (n, m) nanotubes, graphene, diamond/zincblende; dopant substitution.
- ``hamiltonian``: H and S blocks between sets of atoms (orbital layout, Peierls phases for a magnetic
  field along z are defined there).
- ``transport``: geometry -> principal layers -> ``Device`` and ``Lead``s (``wire``, ``two_terminal``,
  ``lead_principal_layer``).
- ``ribbons``: ``PeriodicCell`` (a cell with its nearest-neighbour pz blocks, leads and devices):
  ``armchair_ribbon_cell``, ``zigzag_ribbon_cell``, ``periodic_cell`` of any builder's structure.
- ``arguments``: the builders' argument checks (``TBInputError``, a ``ValueError`` naming the argument).
- ``bands``: Bloch bands E_n(k), k paths, band extrema, effective masses.
- ``plot``: structure, band-structure and T(E)/DOS figures.
- ``wannier90`` / ``wannier_transport``: Wannier90 ``_hr.dat`` models in and out, principal layers along a
  lattice direction, Device and Leads with transverse k as batch members.
- ``ase_io``: ASE ``Atoms`` <-> ``Structure`` (ASE optional), extended XYZ.
"""

from invdesign.tb.bands import (
    BlochHamiltonian,
    band_extremum,
    bloch_hamiltonian,
    effective_mass,
    fcc_point,
    k_path,
)
from invdesign.tb.builders import (
    armchair_ribbon,
    chain,
    diamond,
    graphene_sheet,
    nanotube,
    ribbon_junction,
    square_strip,
    zigzag_ribbon,
    zincblende,
)
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.structure import Structure
from invdesign.tb.transport import TransportSystem, two_terminal, wire
from invdesign.tb.wannier90 import Wannier90FormatError, WannierModel, read_wannier90, write_wannier90
from invdesign.tb.wannier_transport import WannierTransport, k_grid, wannier_two_terminal

__all__ = [
    "BlochHamiltonian", "Shell", "Species", "Structure", "TBModel", "TransportSystem",
    "armchair_ribbon", "band_extremum", "bloch_hamiltonian", "chain", "diamond", "effective_mass",
    "fcc_point", "graphene_sheet", "k_path", "nanotube", "ribbon_junction", "square_strip", "two_terminal",
    "wire", "zigzag_ribbon", "zincblende",
    "Wannier90FormatError", "WannierModel", "WannierTransport", "k_grid", "read_wannier90", "wannier_two_terminal",
    "write_wannier90",
]
