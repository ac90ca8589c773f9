"""Linear Poisson operator in orbital space, and the nonlinear Poisson residual (``invdesign.scf``).

For charges ``rho`` (units of e) sitting on the orbitals and electrode voltages ``V`` (V), the grid of
:mod:`invdesign.scf.grid` gives the electrostatic potential at the orbitals as

    phi = G_ext V + K rho,            K = (e/eps0) P A^-1 P^T   (V per e, symmetric positive definite)
                                      G_ext = P A^-1 B + P_D    (dimensionless)

with ``P`` the multilinear interpolation from the free nodes to the orbitals (its transpose deposits
the charges: cloud in cell) and ``P_D`` the weights an orbital takes directly from Dirichlet nodes.
Both matrices are computed once per geometry with one sparse LU (scipy) and kept dense (torch), so
a Poisson solve in the loop is a matrix product and is trivially differentiable w.r.t. ``V`` and
``rho``. Dense ``K`` suits up to a few thousand orbitals. The potential energy is ``U = -phi`` (eV).

The nonlinear Poisson problem of the self-consistent loop, ``F(U) = U - u0 - K dn(U) = 0`` with
``u0 = -G_ext V - K N`` (N: doping, dn: electrons), is solved in :mod:`invdesign.scf.predictor`
(with a model charge) and :mod:`invdesign.scf.loop` (with the NEGF charge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.scf.grid import E_OVER_EPS0_V_NM, PoissonGrid

_RHS_CHUNK = 256


@dataclass(frozen=True, eq=False)
class Electrostatics:
    """Orbital-space Poisson operator of a grid and a set of orbital positions.

    Attributes:
        grid: the Poisson grid.
        positions_nm: ``(n, 3)`` orbital positions (nm), the device's slice order.
        kernel: ``K`` ``(n, n)`` float64 tensor, V per elementary charge.
        external: ``G_ext`` ``(n, n_electrodes)`` float64 tensor, V per V.
    """

    grid: PoissonGrid
    positions_nm: np.ndarray
    kernel: torch.Tensor
    external: torch.Tensor

    @property
    def electrode_names(self) -> tuple[str, ...]:
        return self.grid.electrode_names

    def potential(self, voltages: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Electrostatic potential at the orbitals ``phi = G_ext V + K rho`` (V), shape ``(..., n)``."""
        return voltages @ self.external.T + rho @ self.kernel

    def potential_energy(self, voltages: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Electron potential energy ``U = -phi`` (eV) at the orbitals, shape ``(..., n)``."""
        return -self.potential(voltages, rho)

    def node_charge_potential(self, charge: torch.Tensor) -> torch.Tensor:
        """Potential (V) at the orbitals from fixed charges on the grid nodes, ``(num_nodes,)`` in e.

        ``phi = (e/eps0) P A^-1 q_free`` (charges on Dirichlet nodes are absorbed by the electrode).
        Differentiable w.r.t. ``charge`` (one sparse solve forward, one backward; ``A`` is symmetric).
        """
        charge = torch.as_tensor(charge, dtype=torch.float64)
        if charge.shape != (self.grid.num_nodes,):
            raise NEGFInputError(f"grid charge must have shape ({self.grid.num_nodes},) (one value per node); "
                                 f"got {tuple(charge.shape)}")
        return _NodeChargePotential.apply(charge, self)

    def _lu(self):
        if "lu" not in self.grid._cache:
            self.grid._cache["lu"] = spla.splu(self.grid.system()[0])
        return self.grid._cache["lu"]

    def _p_free(self):
        return self.grid.interpolation(self.positions_nm)[:, self.grid.free].tocsr()

    def grid_potential(self, voltages, rho) -> np.ndarray:
        """Potential on every grid node (V), Dirichlet nodes included, shape ``grid.shape`` (for plots)."""
        a, b = self.grid.system()
        v = np.asarray(torch.as_tensor(voltages).detach().cpu(), dtype=float)
        q = np.asarray(torch.as_tensor(rho).detach().cpu(), dtype=float)
        interp = self.grid.interpolation(self.positions_nm)
        free = self.grid.free
        phi_free = spla.spsolve(a, b @ v + E_OVER_EPS0_V_NM * (interp[:, free].T @ q))
        phi = np.empty(self.grid.num_nodes)
        phi[free] = phi_free
        fixed = ~free
        phi[fixed] = v[self.grid.node_electrode[fixed]]
        return phi.reshape(self.grid.shape)


class _NodeChargePotential(torch.autograd.Function):
    @staticmethod
    def forward(ctx, charge, es):
        ctx.es = es
        q = charge.detach().cpu().numpy()[es.grid.free]
        return torch.as_tensor(E_OVER_EPS0_V_NM * (es._p_free() @ es._lu().solve(q)))

    @staticmethod
    def backward(ctx, grad_phi):
        es = ctx.es
        y = E_OVER_EPS0_V_NM * es._lu().solve(es._p_free().T @ grad_phi.detach().cpu().numpy())
        out = np.zeros(es.grid.num_nodes)
        out[es.grid.free] = y
        return torch.as_tensor(out), None


def electrostatics(grid: PoissonGrid, positions_nm: np.ndarray) -> Electrostatics:
    """Build ``K`` and ``G_ext`` for orbitals at ``positions_nm`` ``(n, 3)`` (nm) on ``grid``."""
    pos = np.asarray(positions_nm, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise NEGFInputError(f"positions_nm must have shape (n_orbitals, 3); got {pos.shape}")
    a, b = grid.system()
    interp = grid.interpolation(pos)
    free = grid.free
    p_free = interp[:, free].tocsr()
    lu = spla.splu(a)
    n = len(pos)
    kernel = np.zeros((n, n))
    pt = p_free.T.tocsc()
    for lo in range(0, n, _RHS_CHUNK):
        rhs = pt[:, lo:lo + _RHS_CHUNK].toarray()
        kernel[:, lo:lo + _RHS_CHUNK] = p_free @ lu.solve(rhs)
    kernel = E_OVER_EPS0_V_NM * (kernel + kernel.T) / 2  # symmetric up to round-off
    fixed = np.nonzero(~free)[0]
    direct = np.zeros((n, len(grid.electrode_names)))
    if len(fixed):
        p_fixed = interp[:, fixed]
        owner = sp.csr_matrix((np.ones(len(fixed)), (np.arange(len(fixed)), grid.node_electrode[fixed])),
                              shape=(len(fixed), len(grid.electrode_names)))
        direct = (p_fixed @ owner).toarray()
    external = p_free @ lu.solve(b) + direct
    return Electrostatics(grid, pos, torch.as_tensor(kernel), torch.as_tensor(external))
