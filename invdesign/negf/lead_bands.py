"""Bloch bands of a lead's crystal and their extrema (conventions: ``invdesign.negf``).

A lead repeated without end is a 1D crystal: ``H(k) = h00 + h01 e^{ik} + h01^dagger e^{-ik}`` (and
``S(k)`` alike), k in radians per cell. The current's panel breakpoints (band edges, where T(E) steps)
and the SCF's bulk densities and contact neutrality all read the bands from here.
"""

from __future__ import annotations

import numpy as np
import torch

from invdesign.negf.system import Lead


def zone_grid(n_k: int) -> np.ndarray:
    """``n_k`` k points (rad per cell) at ``2 pi j / n_k``: the whole zone, k = 0 and (even n_k) k = pi included."""
    return 2 * np.pi * np.arange(n_k) / n_k


def zone_midpoints(n_k: int) -> np.ndarray:
    """``n_k`` k points (rad per cell) at the midpoints of equal intervals of ``[-pi, pi)``: a zone average
    by the midpoint rule, which converges exponentially for the smooth periodic integrands of band sums."""
    return (np.arange(n_k) + 0.5) * 2 * np.pi / n_k - np.pi


def lead_bands(lead: Lead, k: np.ndarray) -> np.ndarray:
    """Band energies (eV) of the lead's crystal at ``k`` (rad per cell), shape ``(len(k), n_orbitals)``, ascending.

    No symmetry is assumed (a magnetic field makes E(k) != E(-k)). Only the first member of a batched
    lead is used. No gradient flows through the result (numpy).
    """
    def first(m: torch.Tensor) -> np.ndarray:
        m = m.detach().cpu().to(torch.complex128)
        return m.reshape(-1, *m.shape[-2:])[0].numpy()

    phase = np.exp(1j * np.asarray(k, dtype=float))[:, None, None]
    h00, h01 = first(lead.h00), first(lead.h01)
    hk = h00 + h01 * phase + h01.conj().T * phase.conj()
    if not lead.has_overlap:
        return np.linalg.eigvalsh(hk)
    s00, s01 = first(lead.s00), first(lead.s01)
    sk = s00 + s01 * phase + s01.conj().T * phase.conj()
    inv = np.linalg.inv(np.linalg.cholesky(sk))  # H c = E S c -> (L^-1 H L^-dagger) y = E y
    return np.linalg.eigvalsh(inv @ hk @ inv.conj().transpose(0, 2, 1))


def lead_band_edges(lead: Lead, n_k: int = 1024) -> np.ndarray:
    """Band extrema of a lead (eV, sorted): where T(E) of a device between such leads has its steps.

    The bands are sampled on :func:`zone_grid` (``n_k`` points of the whole zone); each local extremum
    of a sorted band is refined by a parabola through its neighbours (error ~ (dk)^3 times the third
    derivative; a crossing of two bands also shows up, which costs a panel, not accuracy).
    """
    e = lead_bands(lead, zone_grid(n_k))
    prev, nxt = np.roll(e, 1, axis=0), np.roll(e, -1, axis=0)  # periodic zone
    extremum = ((e <= prev) & (e <= nxt)) | ((e >= prev) & (e >= nxt))
    ik, ib = np.nonzero(extremum)
    y0, y1, y2 = prev[ik, ib], e[ik, ib], nxt[ik, ib]
    curvature = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(curvature) > 1e-300, 0.5 * (y0 - y2) / curvature, 0.0)
    edges = y1 - 0.25 * (y0 - y2) * shift  # the parabola's vertex
    return np.unique(np.round(edges, 12))
