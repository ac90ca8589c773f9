"""Finite-volume Poisson grids (1D, 2D, 3D) with dielectric regions and electrodes (``invdesign.scf``).

A grid is a tensor product of node coordinates (nm) along ``x`` (transport) and optionally ``y``
and ``z``. The relative permittivity is constant in each cell (the box between neighbouring nodes).
Box integration of ``-div(eps_r grad phi) = (e / eps0) rho`` over each node's control volume gives

    sum_j C_ij (phi_i - phi_j) + sum_k c_ik (phi_i - V_k) = (e / eps0) q_i         (V nm)

with ``C_ij = eps_r x (dual face area) / (edge length) x depth`` in nm, ``q_i`` the charge (units of
e) in the control volume of node i and ``e/eps0 = 18.0951 V nm``. ``depth`` is the cross-section
area (nm^2) of a 1D grid and the out-of-plane width (nm) of a 2D grid (1 for 3D). Nodes inside an
electrode box are Dirichlet nodes held at the electrode's voltage; other boundaries are zero-field
(Neumann). The 1D screened model adds ``c_ik``: a gate line capacitance per node (see
:func:`screened_1d`). Eliminating the Dirichlet nodes leaves ``A phi_free = B V + (e/eps0) q_free``
with ``A`` symmetric positive definite (scipy.sparse).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from invdesign.negf.constants import E_CHARGE_C
from invdesign.negf.errors import NEGFInputError

EPS0_F_PER_M = 8.8541878128e-12
E_OVER_EPS0_V_NM = E_CHARGE_C / EPS0_F_PER_M * 1e9  # 18.0951 V nm: potential scale of one e


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``lo <= r <= hi`` (nm); give as many coordinates as the grid has axes."""

    lo: Sequence[float]
    hi: Sequence[float]

    def contains(self, points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        lo, hi = np.asarray(self.lo, float), np.asarray(self.hi, float)
        return np.all((points >= lo - tol) & (points <= hi + tol), axis=-1)


@dataclass(frozen=True, eq=False)
class PoissonGrid:
    """Poisson problem on a tensor-product grid; build with :func:`tensor_grid` or :func:`screened_1d`.

    Attributes:
        axes: node coordinates per axis (nm), 1 to 3 increasing arrays.
        coords: which components of a 3-D position each axis reads (x=0, y=1, z=2).
        eps_cells: relative permittivity per cell, shape ``[len(a) - 1 for a in axes]``.
        depth: cross-section (1D, nm^2) or width (2D, nm) multiplying the conductances; 1 in 3D.
        electrode_names: names, e.g. ``("source", "drain", "gate")``.
        node_electrode: per node, the index of its electrode or -1 (free), C (x-major) order.
        line_coupling: ``(node, electrode, conductance nm)`` triples of the screened 1D model.
    """

    axes: tuple[np.ndarray, ...]
    coords: tuple[int, ...]
    eps_cells: np.ndarray
    depth: float
    electrode_names: tuple[str, ...]
    node_electrode: np.ndarray
    line_coupling: tuple[tuple[int, int, float], ...] = ()
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def num_nodes(self) -> int:
        return int(np.prod(self.shape))

    @property
    def free(self) -> np.ndarray:
        return self.node_electrode < 0

    def node_positions(self) -> np.ndarray:
        """Node coordinates along the grid axes, shape ``(num_nodes, ndim)`` (nm)."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.reshape(-1) for m in mesh], axis=-1)

    def control_volumes(self) -> np.ndarray:
        """Control volume of each node (nm^3; depth included), shape ``(num_nodes,)``."""
        halves = []
        for a in self.axes:
            h = np.diff(a)
            halves.append(np.concatenate([[0.0], h / 2]) + np.concatenate([h / 2, [0.0]]))
        vol = halves[0]
        for h in halves[1:]:
            vol = np.multiply.outer(vol, h)
        return vol.reshape(-1) * self.depth

    def laplacian(self) -> sp.csr_matrix:
        """Full finite-volume matrix ``C`` (all nodes, nm), without electrode terms."""
        if "laplacian" in self._cache:
            return self._cache["laplacian"]
        shape, dims = self.shape, len(self.axes)
        index = np.arange(self.num_nodes).reshape(shape)
        h = [np.diff(a) for a in self.axes]
        rows, cols, vals = [], [], []
        cell_idx = np.meshgrid(*[np.arange(s - 1) for s in shape], indexing="ij")
        for d in range(dims):
            others = [o for o in range(dims) if o != d]
            # dual-face area of the part of an edge along d inside one cell, times eps of that cell
            face = np.ones(self.eps_cells.shape)
            for o in others:
                face = face * (h[o][cell_idx[o]] / 2)
            g = self.eps_cells * face / h[d][cell_idx[d]] * self.depth
            for corner in itertools.product((0, 1), repeat=dims - 1):
                off = [0] * dims
                for o, c in zip(others, corner):
                    off[o] = c
                a = tuple(ci + oi for ci, oi in zip(cell_idx, off))
                b = tuple(ai + (1 if k == d else 0) for k, ai in enumerate(a))
                i, j = index[a].reshape(-1), index[b].reshape(-1)
                rows += [i, j, i, j]
                cols += [i, j, j, i]
                gv = g.reshape(-1)
                vals += [gv, gv, -gv, -gv]
        n = self.num_nodes
        mat = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        self._cache["laplacian"] = mat.tocsr()
        return self._cache["laplacian"]

    def system(self) -> tuple[sp.csc_matrix, np.ndarray]:
        """``(A, B)``: ``A`` (free x free, nm) and ``B`` (free x electrodes, nm) of ``A phi = B V + (e/eps0) q``."""
        if "system" in self._cache:
            return self._cache["system"]
        c = self.laplacian()
        free = np.nonzero(self.free)[0]
        n_e = len(self.electrode_names)
        a = c[free][:, free].tolil()
        b = np.zeros((len(free), n_e))
        for k in range(n_e):
            nodes = np.nonzero(self.node_electrode == k)[0]
            if len(nodes):
                b[:, k] = -np.asarray(c[free][:, nodes].sum(axis=1)).reshape(-1)
        where = -np.ones(self.num_nodes, dtype=int)
        where[free] = np.arange(len(free))
        for node, k, g in self.line_coupling:
            if where[node] >= 0:
                a[where[node], where[node]] += g
                b[where[node], k] += g
        if not np.any(b):
            raise NEGFInputError("the Poisson grid has no electrode (no Dirichlet node or gate coupling): "
                                 "the potential is undefined")
        self._cache["system"] = (a.tocsc(), b)
        return self._cache["system"]

    def interpolation(self, positions_nm: np.ndarray) -> sp.csr_matrix:
        """Multilinear weights from all nodes to ``positions_nm`` ``(n_points, 3)``: ``(n_points, num_nodes)``.

        The transpose deposits point charges onto the nodes (cloud in cell), so charge is conserved.
        """
        pos = np.asarray(positions_nm, dtype=float)
        if pos.ndim != 2 or pos.shape[1] < max(self.coords) + 1:
            raise NEGFInputError(f"positions_nm must have shape (n, 3); got {pos.shape}")
        pts = pos[:, list(self.coords)]
        idx, frac = [], []
        for d, a in enumerate(self.axes):
            p = pts[:, d]
            if np.any(p < a[0] - 1e-9) or np.any(p > a[-1] + 1e-9):
                bad = p[(p < a[0] - 1e-9) | (p > a[-1] + 1e-9)][:3]
                raise NEGFInputError(f"positions outside the Poisson grid along axis {d} "
                                     f"([{a[0]:.4g}, {a[-1]:.4g}] nm): {bad}")
            if len(a) == 1:
                idx.append(np.zeros(len(p), int))
                frac.append(np.zeros(len(p)))
                continue
            i = np.clip(np.searchsorted(a, p, side="right") - 1, 0, len(a) - 2)
            idx.append(i)
            frac.append(np.clip((p - a[i]) / (a[i + 1] - a[i]), 0.0, 1.0))
        shape = self.shape
        rows, cols, vals = [], [], []
        for corner in itertools.product((0, 1), repeat=len(self.axes)):
            w = np.ones(len(pts))
            flat = np.zeros(len(pts), dtype=int)
            for d, c in enumerate(corner):
                w = w * (frac[d] if c else 1 - frac[d])
                flat = flat * shape[d] + np.minimum(idx[d] + c, shape[d] - 1)
            rows.append(np.arange(len(pts)))
            cols.append(flat)
            vals.append(w)
        m = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(pts), self.num_nodes))
        return m.tocsr()


def tensor_grid(axes: Sequence[Sequence[float]], *, eps: float = 1.0,
                dielectrics: Sequence[tuple[Box, float]] = (), electrodes: dict[str, Sequence[Box]] | None = None,
                depth: float = 1.0, coords: Sequence[int] | None = None) -> PoissonGrid:
    """A 1D, 2D or 3D finite-volume grid.

    Args:
        axes: node coordinates (nm) per axis, increasing (x first).
        eps: background relative permittivity.
        dielectrics: ``(Box, eps_r)`` regions; a cell takes the last region containing its centre.
        electrodes: name -> boxes; nodes inside are held at the electrode voltage (Dirichlet).
        depth: 1D cross-section (nm^2) or 2D out-of-plane width (nm); 1 for 3D.
        coords: components of a 3-D position read by each axis (default x; x,z; x,y,z).
    """
    ax = tuple(np.asarray(a, dtype=float) for a in axes)
    if not 1 <= len(ax) <= 3:
        raise NEGFInputError(f"a Poisson grid has 1 to 3 axes; got {len(ax)}")
    for d, a in enumerate(ax):
        if a.ndim != 1 or len(a) < 2 or np.any(np.diff(a) <= 0):
            raise NEGFInputError(f"grid axis {d} must be an increasing 1-D array of >= 2 nodes (nm)")
    if coords is None:
        coords = {1: (0,), 2: (0, 2), 3: (0, 1, 2)}[len(ax)]
    if len(coords) != len(ax):
        raise NEGFInputError(f"coords {tuple(coords)} must name one position component per axis")
    if eps <= 0 or depth <= 0:
        raise NEGFInputError(f"eps and depth must be positive; got eps={eps}, depth={depth}")
    centres = np.meshgrid(*[(a[1:] + a[:-1]) / 2 for a in ax], indexing="ij")
    centres = np.stack([c.reshape(-1) for c in centres], axis=-1)
    eps_cells = np.full(len(centres), float(eps))
    for box, value in dielectrics:
        if value <= 0:
            raise NEGFInputError(f"relative permittivity must be positive; got {value}")
        eps_cells[box.contains(centres)] = value
    names = tuple((electrodes or {}).keys())
    node_electrode = -np.ones(int(np.prod([len(a) for a in ax])), dtype=int)
    nodes = np.stack([m.reshape(-1) for m in np.meshgrid(*ax, indexing="ij")], axis=-1)
    for k, name in enumerate(names):
        hit = np.zeros(len(nodes), bool)
        for box in electrodes[name]:
            hit |= box.contains(nodes)
        if not hit.any():
            raise NEGFInputError(f"electrode {name!r} contains no grid node")
        node_electrode[hit] = k
    return PoissonGrid(ax, tuple(coords), eps_cells.reshape([len(a) - 1 for a in ax]), float(depth), names,
                       node_electrode)


def screened_1d(x_nm: Sequence[float], gates: Sequence[tuple[str, float, float, float]], lambda_nm: float,
                contacts: tuple[str, str] = ("source", "drain")) -> PoissonGrid:
    """1D Poisson along x with gate screening length ``lambda_nm`` (the fast default model).

    Solves ``-kappa phi'' + c_g(x) (phi - V_gate) = (e/eps0) rho_line`` with ``kappa = c_max lambda^2``
    (nm^2), so ``phi - lambda^2 phi'' = V_gate`` under a gate without charge. ``gates`` are
    ``(name, x_start, x_end, c_g)`` with ``c_g = C'/eps0`` the gate line capacitance per length in
    units of eps0 (dimensionless; see :func:`coaxial_capacitance`). The first and last nodes are the
    contacts (Dirichlet). A node inside several gates couples to each.
    """
    x = np.asarray(x_nm, dtype=float)
    if lambda_nm <= 0:
        raise NEGFInputError(f"lambda_nm must be positive; got {lambda_nm}")
    if not gates:
        raise NEGFInputError("screened_1d needs at least one gate")
    c_max = max(g[3] for g in gates)
    if c_max <= 0:
        raise NEGFInputError("gate line capacitances must be positive")
    names = tuple(contacts) + tuple(g[0] for g in gates)
    if len(set(names)) != len(names):
        raise NEGFInputError(f"electrode names must be distinct; got {names}")
    grid = tensor_grid([x], eps=1.0, depth=c_max * lambda_nm**2,
                       electrodes={contacts[0]: [Box([x[0]], [x[0]])], contacts[1]: [Box([x[-1]], [x[-1]])]})
    grid = PoissonGrid(grid.axes, grid.coords, grid.eps_cells, grid.depth, names, grid.node_electrode)
    length = grid.control_volumes() / grid.depth
    coupling = []
    for k, (name, x0, x1, c_g) in enumerate(gates):
        if c_g <= 0 or x1 < x0:
            raise NEGFInputError(f"gate {name!r}: need x_start <= x_end and c_g > 0")
        for node in np.nonzero((x >= x0 - 1e-9) & (x <= x1 + 1e-9))[0]:
            coupling.append((int(node), 2 + k, float(c_g * length[node])))
    return PoissonGrid(grid.axes, grid.coords, grid.eps_cells, grid.depth, names, grid.node_electrode,
                       tuple(coupling))


def coaxial_capacitance(radius_nm: float, t_ox_nm: float, eps_ox: float) -> float:
    """Gate-all-around line capacitance ``C'/eps0 = 2 pi eps_ox / ln(1 + t_ox / r)`` (dimensionless)."""
    return 2 * math.pi * eps_ox / math.log1p(t_ox_nm / radius_nm)


def planar_capacitance(width_nm: float, t_ox_nm: float, eps_ox: float, gates: int = 2) -> float:
    """Planar (single or double) gate line capacitance ``gates * eps_ox * W / t_ox`` (in units of eps0)."""
    return gates * eps_ox * width_nm / t_ox_nm


def double_gate_lambda(t_ch_nm: float, eps_ch: float, t_ox_nm: float, eps_ox: float) -> float:
    """Natural length of a double-gate body, ``sqrt(eps_ch t_ch t_ox / (2 eps_ox))`` (nm)."""
    return math.sqrt(eps_ch * t_ch_nm * t_ox_nm / (2 * eps_ox))
