"""Differentiable NEGF transport engine (pure tensor code; knows nothing about optimizers or files).

Conventions (stated once, here; every other module points to this docstring)
=============================================================================

Units
    Energies in eV, temperatures in K, biases in V, currents in A, conductances in S.
    DOS and LDOS are per spin, in states/eV. Currents and conductances include the spin factor 2.

Device
    A block-tridiagonal Hamiltonian: ``blocks[i] = H_ii`` (slice i), ``couplings[i] = H_{i,i+1}``.
    The lower blocks are implied: ``H_{i+1,i} = couplings[i]^dagger``. Slice 0 touches the left lead,
    the last slice touches the right lead (they are the same slice for a one-block device).
    With a non-orthogonal basis (``overlap=(s_blocks, s_couplings)``) every ``E - H`` reads ``E S - H``.

Leads
    A lead is semi-infinite and periodic. Its cells are numbered 0, 1, 2, ... *moving away from the
    device*, for the left and for the right lead alike:
        ``h00 = <n|H|n>``,   ``h01 = <n|H|n+1>``  (hopping from a cell to the next one further out),
        ``coupling = <lead cell 0|H|device edge slice>``  (shape: lead orbitals x edge-slice orbitals).
    If the device edge slice is simply one more lead cell (cell -1), then ``coupling = h01^dagger``; that
    is the default when ``coupling`` is not given. Overlaps ``s00``, ``s01``, ``s_coupling`` follow the
    same rules.

Green's functions and self-energies (retarded, E -> E + i0+)
    ``A(E) = E S - H``.  Lead surface Green's function ``g`` of cell 0 solves the Dyson fixed point
        ``g = [A00 - A01 g A10]^-1``,  ``A01 = E s01 - h01``,  ``A10 = E s01^dagger - h01^dagger``
    with the retarded (outgoing) solution: modes that decay away from the device or propagate away
    from it (positive group velocity). Self-energy and broadening on the device edge slice:
        ``Sigma = (E s_coupling^dagger - coupling^dagger) g (E s_coupling - coupling)``, i.e.
        ``Sigma = coupling^dagger g coupling`` for an orthogonal basis,
        ``Gamma = i (Sigma - Sigma^dagger)``  (positive semi-definite).
    Device Green's function ``G = [E S - H - Sigma_L - Sigma_R]^-1``.

Observables
    Transmission from left to right (Caroli):  ``T(E) = Tr[Gamma_R G Gamma_L G^dagger]``, which equals
    ``Tr[Gamma_L G Gamma_R G^dagger]`` (checked in the tests, magnetic fields included).
    Spectral function ``A = i (G - G^dagger) = G Gamma_L G^dagger + G Gamma_R G^dagger``;
    ``DOS = Tr[A S] / 2 pi``,  ``LDOS_o = Re[(A S)_oo] / 2 pi``  (= -Im G_oo / pi when S = 1).
    Landauer current ``I = (2 e / h) Int T(E) [f_L(E) - f_R(E)] dE`` with ``mu_L = mu + V/2``,
    ``mu_R = mu - V/2``: a positive bias drives electrons from left to right, and ``I > 0`` counts
    e times that electron flux (the conventional current then flows from right to left).
    Seebeck coefficient ``S = -(pi^2 kB^2 T / 3 e) d ln T / dE`` in V/K (Mott formula).
"""

from invdesign.negf.constants import G0_S, KB_EV, E_CHARGE_C, H_PLANCK_JS
from invdesign.negf.system import Device, Lead
from invdesign.negf.leads import (
    open_channels,
    self_energy,
    surface_green_function,
    surface_green_function_sancho_unrolled,
)
from invdesign.negf.solution import Solution, solve
from invdesign.negf.observables import (
    dos,
    ldos,
    spectral_functions,
    transmission,
)
from invdesign.negf.current import (
    current,
    differential_conductance,
    fermi,
    seebeck,
)
from invdesign.negf.errors import ConvergenceError, NEGFInputError
from invdesign.negf import lead_cache

__all__ = [
    "ConvergenceError",
    "Device",
    "E_CHARGE_C",
    "G0_S",
    "H_PLANCK_JS",
    "KB_EV",
    "Lead",
    "NEGFInputError",
    "Solution",
    "current",
    "differential_conductance",
    "lead_cache",
    "dos",
    "fermi",
    "ldos",
    "open_channels",
    "seebeck",
    "self_energy",
    "solve",
    "spectral_functions",
    "surface_green_function",
    "surface_green_function_sancho_unrolled",
    "transmission",
]
