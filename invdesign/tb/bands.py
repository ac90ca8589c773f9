"""Bloch band structures E_n(k) of periodic structures, differentiable w.r.t. model parameters.

``H(k) = sum_R H(0, R) exp(i k.R)`` over lattice translations R (cell gauge), likewise ``S(k)``;
``E_n(k)`` are the eigenvalues of ``H(k) c = E S(k) c`` in ascending order. k is Cartesian in 1/nm.
Gradients go through ``torch.linalg.eigvalsh``, whose backward uses eigenvectors only, so losses that
are symmetric within degenerate sets (sums over bands, sorted energies, gaps between non-degenerate
levels, finite-difference masses of isolated bands) have well-defined gradients at degeneracies.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Sequence

import numpy as np
import torch

from invdesign.tb.hamiltonian import coupling_blocks, find_pairs
from invdesign.tb.model import TBModel
from invdesign.tb.structure import Structure

HBAR2_OVER_M0_EV_NM2 = 2 * 0.0380998211615486  # hbar^2 / m0 in eV nm^2 (CODATA 2018)

# High-symmetry points in units of 2 pi / a (fcc: diamond, zincblende).
FCC_POINTS = {
    "G": (0.0, 0.0, 0.0), "X": (1.0, 0.0, 0.0), "L": (0.5, 0.5, 0.5),
    "K": (0.75, 0.75, 0.0), "W": (1.0, 0.5, 0.0), "U": (1.0, 0.25, 0.25),
}


@dataclasses.dataclass(frozen=True)
class BlochHamiltonian:
    """Real-space blocks ``h[r] = <cell 0|H|cell R_r>`` (and ``s[r]``) for translations ``translations[r]``."""

    lattice: torch.Tensor  # (p, 3) nm
    translations: torch.Tensor  # (R, 3) nm, Cartesian
    h: torch.Tensor  # (R, n, n)
    s: torch.Tensor | None  # (R, n, n)

    def matrices(self, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``H(k), S(k)``: shapes (K, n, n) for k of shape (K, 3), 1/nm."""
        k = torch.as_tensor(k, dtype=torch.float64).reshape(-1, 3)
        phase = torch.exp(1j * (k @ self.translations.T))  # (K, R)
        H = torch.einsum("kr,rij->kij", phase, self.h.to(torch.complex128))
        S = None if self.s is None else torch.einsum("kr,rij->kij", phase, self.s.to(torch.complex128))
        return H, S

    def energies(self, k: torch.Tensor) -> torch.Tensor:
        """Band energies (K, n), eV, ascending at each k."""
        H, S = self.matrices(k)
        H = 0.5 * (H + H.mH)  # exact Hermiticity for eigvalsh
        if S is None:
            return torch.linalg.eigvalsh(H)
        L = torch.linalg.cholesky(0.5 * (S + S.mH))
        A = torch.linalg.solve_triangular(L, H, upper=False)
        A = torch.linalg.solve_triangular(L, A.mH, upper=False).mH
        return torch.linalg.eigvalsh(0.5 * (A + A.mH))


def bloch_hamiltonian(model: TBModel, crystal: Structure) -> BlochHamiltonian:
    """All ``H(0, R)`` of a periodic structure within the model's cutoff."""
    if crystal.lattice is None:
        raise ValueError("bloch_hamiltonian needs a periodic Structure (with lattice vectors)")
    lat = crystal.lattice
    lat_np = lat.detach().cpu().numpy()
    pos = crystal.positions.detach().cpu().numpy()
    # translations up to the cutoff plus the cell's extent, in every periodic direction
    extent = np.ptp(pos, axis=0).max() if len(pos) > 1 else 0.0
    reach = model.cutoff_nm + extent
    if lat_np.shape[0] == 1:
        ranges = [range(-math.ceil(reach / np.linalg.norm(lat_np[0])) - 1, math.ceil(reach / np.linalg.norm(lat_np[0])) + 2)]
    else:
        recip = np.linalg.pinv(lat_np)  # columns: dual vectors
        ranges = [range(-math.ceil(reach * np.linalg.norm(recip[:, i])) - 1, math.ceil(reach * np.linalg.norm(recip[:, i])) + 2)
                  for i in range(lat_np.shape[0])]
    trans, hs, ss = [], [], []
    for n in itertools.product(*ranges):
        shift = torch.as_tensor(n, dtype=lat.dtype) @ lat
        if not any(n):
            h, s = coupling_blocks(model, crystal, crystal, onsite=True)
        else:
            rows, _ = find_pairs(pos, pos + shift.detach().cpu().numpy(), model.cutoff_nm)
            if len(rows) == 0:
                continue
            h, s = coupling_blocks(model, crystal, crystal, shift=shift)
        trans.append(shift)
        hs.append(h)
        ss.append(s)
    s = None if ss[0] is None else torch.stack(ss)
    return BlochHamiltonian(lat, torch.stack(trans), torch.stack(hs), s)


def reciprocal_lattice(lattice: torch.Tensor) -> torch.Tensor:
    """Reciprocal vectors b_i (p, 3) with a_i . b_j = 2 pi delta_ij (within the lattice's span), 1/nm."""
    return 2 * math.pi * torch.linalg.pinv(torch.as_tensor(lattice, dtype=torch.float64)).T


def k_path(points: Sequence[Sequence[float]], steps: int | Sequence[int] = 50, *, n_k: int | None = None,
           closed: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Straight segments through ``points`` (Cartesian, 1/nm; 2D points get z = 0).

    Args:
        points: at least two corners.
        steps: intervals per segment, one number for all or one per segment.
        n_k: instead of ``steps``, this many points in all, shared out in proportion to the segments'
            lengths (~uniform spacing in |k|; rounded, at least one interval per segment).
        closed: the last corner equals the first (a loop such as Gamma-K-M-Gamma): it is not repeated.
    Segment points are ``p + (j / steps) (q - p)``, corners exact. Returns ``k (K, 3)``, the cumulative path
    length ``(K,)`` and the index of each corner (the closing one left out when ``closed``).
    """
    pts = torch.as_tensor(np.asarray(points, dtype=float))
    if pts.ndim != 2 or pts.shape[0] < 2 or not 1 <= pts.shape[1] <= 3:
        raise ValueError(f"k_path needs at least two points of 1 to 3 coordinates (1/nm); got shape {tuple(pts.shape)}")
    if pts.shape[1] < 3:
        pts = torch.cat([pts, torch.zeros(pts.shape[0], 3 - pts.shape[1], dtype=pts.dtype)], 1)
    counts = _segment_steps(pts, steps, n_k, closed)
    ks, corners = [], [0]
    for p, q, c in zip(pts[:-1], pts[1:], counts):
        ks.append(p + torch.arange(c, dtype=pts.dtype)[:, None] / c * (q - p))
        corners.append(corners[-1] + c)
    if closed:
        corners.pop()
    else:
        ks.append(pts[-1:])
    k = torch.cat(ks)
    dist = torch.cat([torch.zeros(1, dtype=k.dtype), torch.cumsum(torch.linalg.vector_norm(k.diff(dim=0), dim=1), 0)])
    return k, dist, corners


def _segment_steps(pts: torch.Tensor, steps, n_k: int | None, closed: bool) -> list[int]:
    """Intervals per segment of :func:`k_path` (validated)."""
    segments = pts.shape[0] - 1
    if n_k is not None:
        if isinstance(n_k, bool) or not isinstance(n_k, (int, np.integer)) or n_k < segments + (not closed):
            raise ValueError(f"n_k must be an integer >= {segments + (not closed)} (one point per segment at least) "
                             f"for {segments} segments; got {n_k!r}")
        lengths = [float(torch.linalg.vector_norm(q - p)) for p, q in zip(pts[:-1], pts[1:])]
        total = n_k if closed else n_k - 1  # intervals: the closing corner is not repeated
        counts = [round(total * length / sum(lengths)) for length in lengths[:-1]]
        counts.append(total - sum(counts))
    else:
        counts = [steps] * segments if isinstance(steps, (int, np.integer)) else list(steps)
        if len(counts) != segments:
            raise ValueError(f"steps must be one number or one per segment ({segments}); got {len(counts)}")
    if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in counts):
        raise ValueError(f"every segment needs at least one interval; got {counts} "
                         f"({'n_k=' + str(n_k) if n_k is not None else 'steps'} too small?)")
    return [int(c) for c in counts]


def fcc_point(label: str, a_nm: float) -> torch.Tensor:
    """A high-symmetry point of the fcc Brillouin zone (``FCC_POINTS``) in 1/nm."""
    if label not in FCC_POINTS:
        raise KeyError(f"unknown fcc point {label!r}; known: {sorted(FCC_POINTS)}")
    return 2 * math.pi / a_nm * torch.tensor(FCC_POINTS[label], dtype=torch.float64)


def curvature(bloch: BlochHamiltonian, k0: torch.Tensor, direction: torch.Tensor, band: int,
              method: str = "auto", step: float = 1e-3) -> torch.Tensor:
    """d^2 E_band / dk^2 along ``direction`` at ``k0`` (eV nm^2), differentiable w.r.t. the model.

    ``method="auto"``: sixth-order central stencils at steps 0.02 and 0.01 1/nm combined by Richardson
    extrapolation (relative error ~1e-9 for bands of eV widths). If the band is degenerate at k0 (e.g.
    a Kramers pair), the mean energy of its degenerate set is used, which is smooth where the set stays
    degenerate. Only eigenvalues enter, so gradients stay finite at any degeneracy (second derivatives
    of eigh by autodiff are not: they divide by eigenvalue differences of *all* pairs).
    ``method="stencil"``: one sixth-order stencil with ``step`` (1/nm).
    ``method="stencil3"``: the three-point stencil most papers quote (error O(step^2)).
    """
    u = torch.as_tensor(direction, dtype=torch.float64)
    u = u / torch.linalg.vector_norm(u)
    k0 = torch.as_tensor(k0, dtype=torch.float64)
    if method == "auto":
        with torch.no_grad():
            e0 = bloch.energies(k0[None])[0]
        members = torch.nonzero((e0 - e0[band]).abs() < 1e-8).flatten()
        coarse, fine = (_stencil(bloch, k0, u, members, h, 6) for h in (0.02, 0.01))
        return fine + (fine - coarse) / 63  # error ~ h^6: Richardson with 2^6 - 1
    if method == "stencil":
        return _stencil(bloch, k0, u, torch.tensor([band]), step, 6)
    if method == "stencil3":
        return _stencil(bloch, k0, u, torch.tensor([band]), step, 2)
    raise ValueError(f"method must be 'auto', 'stencil' or 'stencil3'; got {method!r}")


def _stencil(bloch, k0, u, bands, step, order):
    if order == 6:
        offsets = torch.tensor([-3, -2, -1, 0, 1, 2, 3], dtype=torch.float64)
        weights = torch.tensor([2, -27, 270, -490, 270, -27, 2], dtype=torch.float64) / 180
    else:
        offsets = torch.tensor([-1, 0, 1], dtype=torch.float64)
        weights = torch.tensor([1, -2, 1], dtype=torch.float64)
    k = k0[None, :] + step * offsets[:, None] * u[None, :]
    e = bloch.energies(k)[:, bands].mean(-1)
    return (weights * e).sum() / step**2


def effective_mass(bloch: BlochHamiltonian, k0: torch.Tensor, direction: torch.Tensor, band: int,
                   method: str = "auto", step: float = 1e-3) -> torch.Tensor:
    """Curvature mass ``hbar^2 / (d^2E/dk^2)`` in units of the electron mass m0 (see ``curvature``)."""
    return HBAR2_OVER_M0_EV_NM2 / curvature(bloch, k0, direction, band, method, step)


def band_extremum(bloch: BlochHamiltonian, band: int, k_start: torch.Tensor, k_end: torch.Tensor,
                  minimum: bool = True, tol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Position (1/nm) and energy (eV) of the extremum of ``band`` on the segment k_start -> k_end.

    A coarse scan brackets the extremum, golden-section search refines it to ``tol`` in the segment
    parameter. Both outputs are differentiable w.r.t. the model: an interior extremum's position moves
    with the parameters by the implicit function theorem (``dt/dp = -(d2E/dt dp) / (d2E/dt2)``), applied
    as one Newton correction with stencil derivatives whose value is ~0 at the optimum. An extremum at
    an end of the segment stays there.
    """
    a, b = torch.as_tensor(k_start, dtype=torch.float64), torch.as_tensor(k_end, dtype=torch.float64)
    sign = 1.0 if minimum else -1.0

    def f(t: float) -> float:
        with torch.no_grad():
            return sign * float(bloch.energies((a + t * (b - a))[None])[0, band])

    ts = np.linspace(0, 1, 101)
    with torch.no_grad():
        vals = sign * bloch.energies(a[None] + torch.as_tensor(ts)[:, None] * (b - a)[None])[:, band].numpy()
    i = int(np.argmin(vals))
    lo, hi = ts[max(i - 1, 0)], ts[min(i + 1, 100)]
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = f(x1), f(x2)
    while hi - lo > tol:
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = f(x2)
    t = 0.5 * (lo + hi)
    candidates = [(f(0.0), 0.0), (f(1.0), 1.0), (f(t), t)]
    t = min(candidates)[1]
    h = 1e-3  # in the segment parameter; fourth-order stencils

    def derivatives(t0):
        e = bloch.energies(a[None] + (t0 + h * torch.tensor([-2.0, -1, 0, 1, 2], dtype=torch.float64))[:, None]
                           * (b - a)[None])[:, band]
        return ((e[0] - 8 * e[1] + 8 * e[3] - e[4]) / (12 * h),
                (-e[0] + 16 * e[1] - 30 * e[2] + 16 * e[3] - e[4]) / (12 * h * h))

    if 0.0 < t < 1.0:
        # comparisons of E resolve t only to ~sqrt(eps); Newton on dE/dt = 0 reaches ~eps / E''
        with torch.no_grad():
            for _ in range(3):
                d1, d2 = derivatives(t)
                if sign * float(d2) <= 0:
                    break
                t_new = t - float(d1) / float(d2)
                if not lo - 1e-6 <= t_new <= hi + 1e-6 or f(t_new) > f(t):
                    break  # not a smooth extremum (e.g. a band crossing): keep the bracketed one
                t = t_new
    t_diff = torch.tensor(t, dtype=torch.float64)
    if 0.0 < t < 1.0 and torch.is_grad_enabled():
        d1, d2 = derivatives(t)
        t_diff = t_diff - (d1 - d1.detach()) / d2.detach()  # value t, derivative -dE'/dp / E''
    k = a + t_diff * (b - a)
    return k, bloch.energies(k[None])[0, band]
