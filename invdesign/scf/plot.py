"""Figures of self-consistent results: band-edge / potential / charge profiles and Id-Vg curves.

Profiles are averaged per slice of the channel (mean x of its orbitals; potential energy averaged,
charge summed). Matplotlib with the Agg backend; every function writes one PNG and returns its path.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np


def slice_profile(fet, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x_nm, mean, total)`` of a per-orbital quantity over each slice of ``fet.channel``."""
    vals = np.asarray(values, dtype=float).reshape(-1)
    sizes = fet.channel.slice_sizes
    edges = np.concatenate([[0], np.cumsum(sizes)])
    x = np.array([fet.positions_nm[a:b, 0].mean() for a, b in zip(edges[:-1], edges[1:])])
    mean = np.array([vals[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    total = np.array([vals[a:b].sum() for a, b in zip(edges[:-1], edges[1:])])
    return x, mean, total


def plot_profiles(points: Sequence, path, band_gap_ev: float | None = None,
                  band_edge_ev: float | None = None) -> pathlib.Path:
    """Potential energy (or band edges) and net charge along the channel for several bias points.

    ``band_gap_ev``: draw ``U +- Eg/2`` (midgap reference, e.g. pz carbon); ``band_edge_ev``: draw
    ``U + E_c`` (effective mass); otherwise ``U`` itself. Fermi levels of source and drain dashed.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_u, ax_q) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True)
    for bp in points:
        fet = bp.fet
        x, u, _ = slice_profile(fet, bp.potential.detach().numpy())
        label = f"Vg={_fmt(bp.vg)} V, Vd={float(bp.vd):.2f} V"
        if band_gap_ev is not None:
            line, = ax_u.plot(x, u + band_gap_ev / 2, label=label)
            ax_u.plot(x, u - band_gap_ev / 2, color=line.get_color())
        else:
            ax_u.plot(x, u + (band_edge_ev or 0.0), label=label)
        ax_u.axhline(fet.mu_ev, ls="--", lw=0.8, color="k")
        ax_u.axhline(fet.mu_ev - float(bp.vd), ls=":", lw=0.8, color="k")
        _, _, q = slice_profile(fet, bp.net_charge.numpy())
        ax_q.plot(x, q, label=label)
    ax_u.set_ylabel("band edges (eV)" if band_gap_ev or band_edge_ev else "potential energy U (eV)")
    ax_u.legend(fontsize=8)
    ax_q.set_ylabel("net charge per slice (e)")
    ax_q.set_xlabel("x (nm)")
    fig.tight_layout()
    out = pathlib.Path(path)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def plot_id_vg(sweep, path, title: str = "") -> pathlib.Path:
    """Id-Vg on a log scale (left axis) and a linear scale (right axis, uA)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.semilogy(sweep.voltages, sweep.currents, "o-", color="C0")
    ax.set_xlabel("V_gs (V)")
    ax.set_ylabel("I_d (A)", color="C0")
    twin = ax.twinx()
    twin.plot(sweep.voltages, np.asarray(sweep.currents) * 1e6, "s--", color="C1", ms=3)
    twin.set_ylabel("I_d (uA)", color="C1")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out = pathlib.Path(path)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out


def _fmt(vg) -> str:
    if isinstance(vg, dict):
        return ",".join(f"{float(v):.2f}" for v in vg.values())
    return f"{float(vg):.2f}"
