"""Figures for tight-binding work: structures, band structures, transmission and DOS (matplotlib).

| function | draws |
|---|---|
| ``plot_structure`` | atoms coloured by species, bonds, highlighted sites (dopants), faded lead cells |
| ``plot_bands`` | E_n(k) along a path from ``bands.k_path``, labelled corners (``"G"`` is drawn as Γ) |
| ``plot_transmission_dos`` | T(E), optional open-channel count, optional DOS (twin axis or a given panel) |
| ``plot_bands_and_transmission`` | bands and T(E) (and DOS) side by side on one energy axis |

Every function draws into the ``ax`` it is given, or into a new figure, and returns the Axes (the
Figure for the multi-panel one). New figures are plain ``matplotlib.figure.Figure`` objects: no pyplot,
no global figure registry, no rcParams changes, any backend (headless included). Save with
``ax.figure.savefig(path)``; to show a window, pass axes from ``plt.subplots()``; in Jupyter,
``ax.figure`` as the last expression of a cell displays it.

Units: positions nm, energies eV, k 1/nm, DOS states/eV/spin (as ``invdesign.negf``). Tensors (also
ones that require grad) and arrays are accepted wherever numbers are.

Artists carry ``gid``s so that figures can be inspected programmatically: ``"atoms:<species>"`` (one
circle collection per species and depth layer), ``"bonds"``, ``"lead-atoms"``, ``"lead-bonds"`` (bonds
inside lead cells and between lead and device), ``"highlight"``, ``"band"`` (one line per band),
``"corner"`` (one vertical line per path corner), ``"transmission"``, ``"modes"``, ``"dos"``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from invdesign.tb.plot_structure import (  # noqa: F401  (plot_structure is part of this module's API)
    PROJECTIONS,
    SPECIES_COLORS,
    _legend_above,
    _new_axes,
    _np,
    _point_label,
    plot_structure,
)

def _band_energies(bloch, k) -> np.ndarray:
    if hasattr(bloch, "energies") and callable(bloch.energies):
        with torch.no_grad():
            return _np(bloch.energies(torch.as_tensor(_np(k, "k"))), "band energies")
    e = _np(bloch, "band energies")
    if e.ndim != 2:
        raise ValueError(f"precomputed band energies must have shape (K, n_bands); got {e.shape}")
    return e


def plot_bands(
    bloch,
    k,
    distances,
    corners: Sequence[int],
    labels: Sequence[str],
    ax: Axes | None = None,
    energy_window: tuple[float, float] | None = None,
    reference_energy: float = 0.0,
    *,
    color="C0",
    linewidth: float = 1.3,
    energy_label: str | None = None,
) -> Axes:
    """Band structure E_n(k) along a path (``k, distances, corners = bands.k_path(points)``).

    Args:
        bloch: a ``bands.BlochHamiltonian`` (evaluated at ``k``), or precomputed energies (K, n_bands).
        k: (K, 3) wave vectors, 1/nm (unused when energies are given).
        distances: (K,) cumulative path length, 1/nm (the horizontal axis).
        corners: indices of the path's corner points; labels: one name per corner ("G" is drawn Γ).
        energy_window: (E_min, E_max) in eV relative to ``reference_energy``: the vertical limits;
            bands entirely outside are not drawn.
        reference_energy: subtracted from every energy (e.g. the valence-band maximum), eV.
        energy_label: vertical-axis label (default "E (eV)", or "E − E_ref (eV)" with a reference).

    Returns:
        The Axes (one ``"band"`` line per drawn band, one ``"corner"`` line per corner).
    """
    e = _band_energies(bloch, k) - float(reference_energy)
    x = _np(distances, "distances").ravel()
    if e.shape[0] != len(x):
        raise ValueError(f"{e.shape[0]} k points of energies but {len(x)} distances")
    corners = [int(c) for c in corners]
    labels = [str(s) for s in labels]
    if len(corners) != len(labels):
        raise ValueError(f"{len(corners)} corners but {len(labels)} labels")
    if any(not 0 <= c < len(x) for c in corners):
        raise ValueError(f"corner indices {corners} out of range for {len(x)} k points")
    if energy_window is not None:
        lo, hi = (float(v) for v in energy_window)
        if not lo < hi:
            raise ValueError(f"energy_window must be (E_min, E_max) with E_min < E_max; got {energy_window}")
    if ax is None:
        ax = _new_axes((5.0, 4.5))

    for band in e.T:
        if energy_window is not None and (band.max() < lo or band.min() > hi):
            continue
        ax.plot(x, band, color=color, lw=linewidth, gid="band")
    for c in corners:
        ax.axvline(x[c], color="0.55", lw=0.8, zorder=0.5, gid="corner")
    ax.axhline(0.0, color="0.6", lw=0.8, ls=":", zorder=0.5, gid="reference")
    ax.set_xticks(x[corners], [_point_label(s) for s in labels])
    ax.set_xlim(x[0], x[-1])
    if energy_window is not None:
        ax.set_ylim(lo, hi)
    ax.set_xlabel("wave vector k")
    if energy_label is None:
        energy_label = "E (eV)" if reference_energy == 0 else r"$E - E_\mathrm{ref}$ (eV)"
    ax.set_ylabel(energy_label)
    return ax


# ---- transport ------------------------------------------------------------------------------------

def _stair_edges(e: np.ndarray) -> np.ndarray:
    """Bin edges around the energies (midpoints, ends extended by half a step)."""
    if len(e) == 1:
        return np.array([e[0] - 0.5, e[0] + 0.5])
    mid = 0.5 * (e[1:] + e[:-1])
    return np.concatenate([[e[0] - (mid[0] - e[0])], mid, [e[-1] + (e[-1] - mid[-1])]])


def plot_transmission_dos(
    energies,
    transmission,
    dos=None,
    ax: Axes | None = None,
    modes=None,
    *,
    dos_ax: Axes | None = None,
    orientation: str = "horizontal",
    reference_energy: float = 0.0,
    energy_window: tuple[float, float] | None = None,
    label: str = "T(E)",
    energy_label: str | None = None,
) -> Axes:
    """Transmission T(E), optionally with the open-channel count and the device DOS.

    Args:
        energies: (nE,) eV, ascending. transmission: (nE,). dos: (nE,) states/eV/spin (optional).
        modes: (nE,) open channels of a lead (``negf.open_channels``), drawn as a dashed staircase.
        dos_ax: axes for the DOS (a second panel); default: a twin axis of ``ax``.
        orientation: ``"horizontal"`` (energy along x) or ``"vertical"`` (energy along y, as beside a
            band structure).
        reference_energy: subtracted from the energies (eV). energy_window: energy-axis limits.

    Returns:
        The transmission Axes (lines ``"transmission"``, ``"modes"``; ``"dos"`` on the DOS axes).
    """
    if orientation not in ("horizontal", "vertical"):
        raise ValueError(f"orientation must be 'horizontal' or 'vertical'; got {orientation!r}")
    e = _np(energies, "energies").ravel() - float(reference_energy)
    tr = _np(transmission, "transmission")
    if tr.shape != e.shape:
        raise ValueError(f"transmission must have the shape of energies {e.shape}; got {tr.shape}")
    if dos is not None:
        dos = _np(dos, "dos")
        if dos.shape != e.shape:
            raise ValueError(f"dos must have the shape of energies {e.shape}; got {dos.shape}")
    if modes is not None:
        modes = _np(modes, "modes")
        if modes.shape != e.shape:
            raise ValueError(f"modes must have the shape of energies {e.shape}; got {modes.shape}")
    vertical = orientation == "vertical"
    if ax is None:
        ax = _new_axes((4.0, 5.0) if vertical else (6.5, 4.0))

    def xyplot(target, values, **kw):
        return target.plot(values, e, **kw) if vertical else target.plot(e, values, **kw)

    handles = []
    if modes is not None:
        st = ax.stairs(modes, _stair_edges(e), orientation="horizontal" if vertical else "vertical",
                       baseline=None, color="k", ls="--", lw=0.9, label="open channels", zorder=2)
        st.set_gid("modes")
        handles.append(st)
    (line,) = xyplot(ax, tr, color="C0", lw=1.5, label=label, gid="transmission", zorder=3)
    handles.insert(0, line)
    top = max(float(tr.max(initial=0.0)), float(modes.max(initial=0.0)) if modes is not None else 0.0)
    t_lim = (0.0, 1.08 * top if top > 0 else 1.0)
    t_label = "transmission T(E)"
    if energy_label is None:
        energy_label = "E (eV)" if reference_energy == 0 else r"$E - E_\mathrm{ref}$ (eV)"
    e_lim = tuple(float(v) for v in energy_window) if energy_window is not None else (float(e[0]), float(e[-1]))
    if vertical:
        ax.set_xlim(*t_lim), ax.set_ylim(*e_lim), ax.set_xlabel(t_label), ax.set_ylabel(energy_label)
    else:
        ax.set_ylim(*t_lim), ax.set_xlim(*e_lim), ax.set_ylabel(t_label), ax.set_xlabel(energy_label)

    if dos is not None:
        dax = dos_ax if dos_ax is not None else (ax.twiny() if vertical else ax.twinx())
        (dl,) = xyplot(dax, dos, color="C3", lw=1.0, label="DOS", gid="dos", zorder=2)
        if vertical:
            dax.fill_betweenx(e, 0.0, dos, color="C3", alpha=0.15, lw=0)
            dax.set_xlim(left=0.0)
            dax.set_xlabel("DOS (states/eV/spin)")
            if dos_ax is not None:
                dax.set_ylim(*e_lim)
        else:
            dax.fill_between(e, 0.0, dos, color="C3", alpha=0.15, lw=0)
            dax.set_ylim(bottom=0.0)
            dax.set_ylabel("DOS (states/eV/spin)")
            if dos_ax is not None:
                dax.set_xlim(*e_lim)
        if dos_ax is None:
            handles.append(dl)
            ax.set_zorder(dax.get_zorder() + 1)  # T and its legend above the DOS fill
            ax.patch.set_visible(False)
    if len(handles) > 1:
        _legend_above(ax, handles)
    return ax


def plot_bands_and_transmission(
    bloch,
    k,
    distances,
    corners: Sequence[int],
    labels: Sequence[str],
    energies,
    transmission,
    dos=None,
    modes=None,
    *,
    axes: Sequence[Axes] | None = None,
    energy_window: tuple[float, float] | None = None,
    reference_energy: float = 0.0,
    title: str | None = None,
) -> Figure:
    """Band structure (left) beside T(E) (and the DOS in a third panel) on one energy axis.

    The classic ribbon figure: steps of T(E) line up with the band edges. Arguments as in
    ``plot_bands`` and ``plot_transmission_dos``; ``energy_window`` defaults to the span of
    ``energies``. ``axes``: 2 (or 3 with ``dos``) axes to draw into, else a new figure.

    Returns:
        The Figure.
    """
    n = 3 if dos is not None else 2
    if axes is None:
        fig = Figure(figsize=(4.2 + 2.8 * (n - 1), 4.8), layout="constrained")
        axes = fig.subplots(1, n, sharey=True, gridspec_kw={"width_ratios": [1.35, 1.0, 1.0][:n]})
    else:
        axes = list(axes)
        if len(axes) != n:
            raise ValueError(f"axes must hold {n} Axes (bands, transmission{', DOS' if n == 3 else ''}); "
                             f"got {len(axes)}")
        fig = axes[0].figure
    e = _np(energies, "energies").ravel() - float(reference_energy)
    window = tuple(float(v) for v in energy_window) if energy_window is not None else (float(e.min()), float(e.max()))
    plot_bands(bloch, k, distances, corners, labels, ax=axes[0], energy_window=window,
               reference_energy=reference_energy)
    plot_transmission_dos(energies, transmission, dos, ax=axes[1], modes=modes,
                          dos_ax=axes[2] if n == 3 else None, orientation="vertical",
                          reference_energy=reference_energy, energy_window=window)
    for a in axes[1:]:
        a.set_ylabel("")
        a.set_ylim(*window)
        a.tick_params(labelleft=False)
    if title:
        fig.suptitle(title)
    return fig


__all__ = [
    "PROJECTIONS",
    "SPECIES_COLORS",
    "plot_bands",
    "plot_bands_and_transmission",
    "plot_structure",
    "plot_transmission_dos",
]
