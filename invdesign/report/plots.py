"""PNG figures of a campaign (matplotlib, Agg backend; nothing is shown)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from invdesign.report import analysis  # noqa: E402
from invdesign.report.load import CampaignData  # noqa: E402

GAP_FLOOR = 1e-16
DPI = 120


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _transform(data: CampaignData, problem: str):
    """y-values to plot and the axis label: the gap to a known optimum on a log axis, else the value."""
    info = data.problem_info(problem)
    optimum = info.get("optimum_value")
    if optimum is not None:
        return (lambda y: np.maximum(y - optimum, GAP_FLOOR)), f"best value - optimum ({optimum:.6g})", True
    finals = [r.final_best for r in data.group(problem) if r.n and not math.isnan(r.final_best)]
    starts = [float(np.nanmax(r.best)) for r in data.group(problem) if r.n and np.isfinite(r.best).any()]
    log = bool(finals) and min(finals) > 0 and max(starts, default=1.0) / min(finals) > 100
    return (lambda y: y), "best feasible value so far", log


VIOLATION_FLOOR = 1e-12  # where a feasible run's least violation (0) is drawn on the log axis


def _median_band(ax, b: analysis.Band, f, color, label: str) -> None:
    with np.errstate(invalid="ignore"):
        med, lo, hi = f(b.median), f(b.q25), f(b.q75)
    ok = np.isfinite(med)
    ax.plot(b.grid[ok], med[ok], color=color, label=label, lw=1.6, drawstyle="steps-post")
    band_ok = np.isfinite(lo) & np.isfinite(hi)
    ax.fill_between(b.grid, np.where(band_ok, lo, np.nan), np.where(band_ok, hi, np.nan), color=color,
                    alpha=0.2, step="post", lw=0)


def convergence(data: CampaignData, problem: str, out: Path) -> Path:
    """Best so far vs forward-equivalent cost and vs wall time: median and IQR band over seeds; for a
    problem with constraints a third panel, the least constraint violation so far vs cost, where runs that
    never became feasible (absent from the first two) show how close they came. Legend: runs (feasible)."""
    constrained = bool(data.problem_info(problem).get("constraints"))
    fig, axes = plt.subplots(1, 3 if constrained else 2, figsize=(16 if constrained else 11, 4.2))
    f, ylabel, log = _transform(data, problem)
    for axis, ax, xlabel in (("cost", axes[0], "forward-equivalent evaluations"),
                             ("time", axes[1], "wall time of the run [s]")):
        for color, optimizer in zip(_colors(len(data.optimizers)), data.optimizers):
            runs = [r for r in data.group(problem, optimizer) if r.n]
            if runs:
                feasible = sum(1 for r in runs if np.isfinite(r.best).any())
                _median_band(ax, analysis.band(runs, axis), f, color, f"{optimizer} (n={len(runs)}, {feasible} feasible)")
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    if constrained:
        ax = axes[2]
        for color, optimizer in zip(_colors(len(data.optimizers)), data.optimizers):
            runs = [r for r in data.group(problem, optimizer) if r.n]
            if runs:
                _median_band(ax, analysis.band(runs, "cost", quantity="violation"),
                             lambda y: np.maximum(y, VIOLATION_FLOOR), color, optimizer)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("forward-equivalent evaluations")
        ax.set_ylabel(f"least constraint violation so far (feasible: {VIOLATION_FLOOR:g})")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{problem}: median and interquartile range over seeds")
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def ecdf(data: CampaignData, out: Path) -> Path:
    """Fixed-target ECDF (many targets per problem) and data profile (the success target), vs cost."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    costs = [float(r.cost[-1]) for r in data.runs if r.n]
    hi = max(costs, default=1.0)
    grid = np.geomspace(1.0, max(hi, 1.0 + 1e-9), 300)
    for ax, multi, title in ((axes[0], True, "fixed-target ECDF (all targets)"),
                             (axes[1], False, "data profile (success target)")):
        for color, optimizer in zip(_colors(len(data.optimizers)), data.optimizers):
            y = analysis.ecdf(analysis.hitting_costs(data, optimizer, multi), grid)
            ax.plot(grid, y, color=color, label=optimizer, drawstyle="steps-post", lw=1.6)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("forward-equivalent evaluations")
        ax.set_ylabel("fraction reached")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def win_rate(data: CampaignData, matrix: np.ndarray, out: Path) -> Path:
    k = len(data.optimizers)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.0 * k + 1.8))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="RdYlGn")
    ax.set_xticks(range(k), data.optimizers, rotation=45, ha="right")
    ax.set_yticks(range(k), data.optimizers)
    for a in range(k):
        for b in range(k):
            if np.isfinite(matrix[a, b]):
                ax.text(b, a, f"{matrix[a, b]:.2f}", ha="center", va="center", fontsize=9)
    ax.set_xlabel("against")
    ax.set_ylabel("optimizer")
    ax.set_title("win rate (row beats column)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
