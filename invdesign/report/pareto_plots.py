"""Figures of multi-objective campaigns: Pareto fronts per optimizer, hypervolume against cost and time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from invdesign.report import pareto_analysis as pa
from invdesign.report.plots import DPI, _colors, plt


def fronts(problem: str, run_fronts: dict[str, list[pa.RunFront]], specs: list[dict], out: Path) -> Path:
    """Per optimizer: every seed's front (thin, markers) and, for two objectives, the median attainment
    surface over seeds (thick); natural units, the first two objectives."""
    sign = pa.signs(specs)[:2]
    fig, ax = plt.subplots(figsize=(6.8, 5.0))
    for color, (optimizer, fs) in zip(_colors(len(run_fronts)), run_fronts.items()):
        for f in fs:
            v = f.values[np.argsort(f.values[:, 0])][:, :2] * sign
            ax.plot(v[:, 0], v[:, 1], ".", color=color, ms=4, alpha=0.45)
            ax.plot(v[:, 0], v[:, 1], color=color, lw=0.6, alpha=0.35, drawstyle="steps-post")
        if len(specs) == 2 and fs:
            surface = pa.median_attainment([f.values for f in fs]) * sign
            ax.plot(surface[:, 0], surface[:, 1], color=color, lw=2.2, drawstyle="steps-post",
                    label=f"{optimizer}: median attainment ({len(fs)} seeds)")
        elif fs:
            ax.plot([], [], ".", color=color, label=f"{optimizer}: fronts of {len(fs)} seeds")
    ax.set_xlabel(pa.axis_label(specs[0]))
    ax.set_ylabel(pa.axis_label(specs[1]))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    title = "median attainment surfaces (thick) and per-seed fronts" if len(specs) == 2 else \
        "per-seed fronts, first two objectives"
    ax.set_title(f"{problem}: {title}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def hypervolume(problem: str, run_fronts: dict[str, list[pa.RunFront]], out: Path) -> Path:
    """Hypervolume so far against forward-equivalent cost (left) and run wall time (right): median, IQR."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, ax, xlabel in (("cost", axes[0], "forward-equivalent evaluations"),
                             ("time", axes[1], "wall time of the run [s]")):
        for color, (optimizer, fs) in zip(_colors(len(run_fronts)), run_fronts.items()):
            band = pa.hypervolume_band(fs, axis)
            if band is None:
                continue
            ax.plot(band.grid, band.median, color=color, lw=1.6, drawstyle="steps-post",
                    label=f"{optimizer} (n={len(fs)})")
            ax.fill_between(band.grid, band.q25, band.q75, color=color, alpha=0.2, step="post", lw=0)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("hypervolume")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{problem}: hypervolume, median and interquartile range over seeds")
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
