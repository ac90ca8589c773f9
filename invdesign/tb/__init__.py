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
- ``transport``: geometry -> principal layers -> ``Device`` and ``Lead``s (``wire``, ``two_terminal``).
- ``bands``: Bloch bands E_n(k), k paths, band extrema, effective masses.
- ``plot``: structure, band-structure and T(E)/DOS figures.
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

__all__ = [
    "BlochHamiltonian", "Shell", "Species", "Structure", "TBModel", "TransportSystem",
    "armchair_ribbon", "band_extremum", "bloch_hamiltonian", "chain", "diamond", "effective_mass",
    "fcc_point", "graphene_sheet", "k_path", "nanotube", "ribbon_junction", "square_strip", "two_terminal",
    "wire", "zigzag_ribbon", "zincblende",
]
