"""Self-consistent Poisson-NEGF device simulation, differentiable through the fixed point.

Conventions (stated once, here; every module of ``invdesign.scf`` points to this docstring; the
engine's own conventions are in ``invdesign.negf``)
=================================================================================================

Units
    Lengths nm, energies eV, potentials and voltages V, temperatures K, currents A, conductances S.
    Charges are counted in elementary charges e: per orbital (NEGF side) or per grid node (Poisson
    side). Doping is given per orbital (donors per atom for one-orbital-per-atom models);
    ``modespace.doping_per_site`` converts from cm^-3.

Potentials
    ``phi`` (V) is the electrostatic potential; ``U = -q phi`` is the electron's potential energy,
    numerically ``U [eV] = -phi [V]``. ``U`` is what enters the Hamiltonian,
    ``H_ij + (U_i + U_j)/2 S_ij`` (``invdesign.negf.potential.add_potential``). Raising a gate voltage
    lowers ``U`` under the gate.

Charge and doping
    ``dn_i = n_i - n0_i``: electrons per orbital (both spins) relative to the neutral reference ``n0``
    (``FETDevice.reference``): 1 for pz carbon and any model whose neutral state is half filling
    (bipartite lattices, midgap at E = 0), 0 for conduction-band-only effective-mass channels.
    ``dn > 0`` are extra electrons, ``dn < 0`` holes. Doping ``N_i = N_D - N_A`` (e per orbital):
    ionised donors are positive charge. The net charge is ``rho_i = N_i - dn_i`` (e), and
    ``-div(eps0 eps_r grad phi) = e rho``, so ``phi = G_ext V + K rho`` (``poisson.py``), i.e.
    ``U = -G_ext V - K N + K dn``: electrons raise U, donors lower it.

Terminals and bias
    The source is the device's left lead, the drain its right lead; voltages are relative to the
    grounded source. Fermi levels: ``mu_S = mu0``, ``mu_D = mu0 - V_ds`` (eV), so ``V_ds > 0`` drives
    electrons from source to drain and the drain current ``I_d > 0`` (the engine's ``I > 0``).
    Contacts are ideal ohmic: the leads carry the rigid potential ``U_c = u_c - V_c``, where ``u_c``
    makes the bulk lead (with the contact doping) neutral at ``mu0``, and the Poisson grid holds the
    source/drain electrodes at ``phi_c = V_c - u_c``. A gate with voltage ``V_g`` and work-function
    offset ``dW = W_gate - W_channel`` (eV) is held at ``phi = V_g - dW``.

Self-consistency and gradients
    The loop solves ``F(U) = U - u0 - K dn(U) = 0`` to ``max|F| < tol`` volts (``loop.py``); the
    converged potential is differentiated implicitly (``adjoint.py``): memory does not grow with the
    number of iterations. Gradients reach the doping, the gate and drain voltages, and any tensor of
    the channel ``Device`` that requires grad.
"""

from invdesign.scf.adjoint import implicit_fixed_point
from invdesign.scf.charge import DensityEvaluator, DensitySettings, electron_density, ozaki_poles
from invdesign.scf.device import BiasPoint, FETDevice, bias_point, landauer_current, neutral_shift
from invdesign.scf.grid import (
    Box,
    PoissonGrid,
    coaxial_capacitance,
    double_gate_lambda,
    planar_capacitance,
    screened_1d,
    tensor_grid,
)
from invdesign.scf.loop import SCFOptions, solve_fixed_point
from invdesign.scf.modespace import effective_mass_chain, mode_energies, mode_space_channel
from invdesign.scf.poisson import Electrostatics, electrostatics
from invdesign.scf.sweeps import (
    Sweep,
    dibl,
    id_vd,
    id_vg,
    on_off,
    output_conductance,
    swing_between,
    swing_from_gm,
    threshold_voltage,
    transconductance,
)

__all__ = [
    "BiasPoint", "Box", "DensityEvaluator", "DensitySettings", "Electrostatics", "FETDevice", "PoissonGrid",
    "SCFOptions", "Sweep", "bias_point", "coaxial_capacitance", "dibl", "double_gate_lambda",
    "effective_mass_chain", "electron_density", "electrostatics", "id_vd", "id_vg", "implicit_fixed_point",
    "landauer_current", "mode_energies", "mode_space_channel", "neutral_shift", "on_off",
    "output_conductance", "ozaki_poles", "planar_capacitance", "screened_1d", "solve_fixed_point",
    "swing_between", "swing_from_gm", "tensor_grid", "threshold_voltage", "transconductance",
]
