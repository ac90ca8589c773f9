"""Transistor figures of merit from self-consistent bias points (conventions: ``invdesign.scf``).

Sweeps warm-start every point from the previous one. Derivatives (transconductance gm = dI/dV_gs,
output conductance g_d = dI/dV_ds, swing) come from autodiff through the converged potential
(implicit adjoint), not from finite differences of the sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.scf.device import BiasPoint, FETDevice, bias_point


@dataclass
class Sweep:
    """A sweep: ``voltages`` (V) of the swept terminal, ``currents`` (A), loop ``iterations`` per point."""

    voltages: np.ndarray
    currents: np.ndarray
    iterations: list[int]
    points: list[BiasPoint] = field(default_factory=list)


def id_vg(fet: FETDevice, vg_values, vd: float, *, n_energies: int = 400, keep: bool = False) -> Sweep:
    """Drain current (A) vs gate voltage (V) at fixed ``vd`` (V), warm-started point to point."""
    return _sweep(fet, vg_values, lambda v: (float(v), float(vd)), n_energies, keep)


def id_vd(fet: FETDevice, vg: float, vd_values, *, n_energies: int = 400, keep: bool = False) -> Sweep:
    """Drain current (A) vs drain voltage (V) at fixed gate voltage ``vg`` (V), warm-started."""
    return _sweep(fet, vd_values, lambda v: (float(vg), float(v)), n_energies, keep)


def _sweep(fet: FETDevice, values, bias_of, n_energies: int, keep: bool) -> Sweep:
    currents, iterations, points, warm = [], [], [], None
    for v in values:
        bp = bias_point(fet, *bias_of(v), warm=warm)
        with torch.no_grad():
            currents.append(float(bp.current(n_energies)))
        iterations.append(bp.result.iterations)
        if keep:
            points.append(bp)
        warm = bp
    return Sweep(np.asarray(values, dtype=float), np.asarray(currents), iterations, points)


def transconductance(fet: FETDevice, vg: float, vd: float, *, warm: BiasPoint | None = None,
                     n_energies: int = 400) -> tuple[float, float]:
    """``(I, gm)``: current (A) and ``gm = dI/dV_gs`` (S) by autodiff through the converged potential."""
    v = torch.tensor(float(vg), dtype=torch.float64, requires_grad=True)
    current = bias_point(fet, v, float(vd), warm=warm).current(n_energies)
    (gm,) = torch.autograd.grad(current, v)
    return float(current.detach()), float(gm)


def output_conductance(fet: FETDevice, vg: float, vd: float, *, warm: BiasPoint | None = None,
                       n_energies: int = 400) -> tuple[float, float]:
    """``(I, g_d)``: current (A) and ``g_d = dI/dV_ds`` (S) by autodiff (Fermi levels, contacts, potential)."""
    v = torch.tensor(float(vd), dtype=torch.float64, requires_grad=True)
    current = bias_point(fet, float(vg), v, warm=warm).current(n_energies)
    (gd,) = torch.autograd.grad(current, v)
    return float(current.detach()), float(gd)


def swing_from_gm(current: float, gm: float) -> float:
    """Subthreshold swing ``S = ln(10) I / gm`` in mV/dec (from :func:`transconductance`)."""
    if gm <= 0 or current <= 0:
        raise NEGFInputError(f"the swing needs I > 0 and gm > 0; got I = {current:g} A, gm = {gm:g} S")
    return 1e3 * math.log(10.0) * current / gm


def swing_between(vg, currents) -> np.ndarray:
    """Swing (mV/dec) between consecutive points of an Id-Vg curve: ``dVg / d log10 I``."""
    vg, i = np.asarray(vg, float), np.asarray(currents, float)
    if np.any(i <= 0):
        raise NEGFInputError("the swing needs positive currents")
    return 1e3 * np.diff(vg) / np.diff(np.log10(i))


def threshold_voltage(vg, currents, i_threshold: float) -> float:
    """Gate voltage (V) where the current crosses ``i_threshold`` (A), interpolated in log10 I."""
    vg, log_i = np.asarray(vg, float), np.log10(np.asarray(currents, float))
    target = math.log10(i_threshold)
    for k in range(len(vg) - 1):
        if (log_i[k] - target) * (log_i[k + 1] - target) <= 0 and log_i[k] != log_i[k + 1]:
            return float(vg[k] + (target - log_i[k]) * (vg[k + 1] - vg[k]) / (log_i[k + 1] - log_i[k]))
    raise NEGFInputError(f"the current never crosses {i_threshold:g} A in [{vg[0]}, {vg[-1]}] V")


def on_off(vg, currents, v_off: float, v_dd: float) -> tuple[float, float]:
    """``(I_on, I_off)``: currents (A) at ``v_off`` and ``v_off + v_dd`` (log-interpolated)."""
    vg, log_i = np.asarray(vg, float), np.log10(np.asarray(currents, float))
    if not (vg[0] - 1e-12 <= v_off and v_off + v_dd <= vg[-1] + 1e-12):
        raise NEGFInputError(f"[v_off, v_off + v_dd] = [{v_off}, {v_off + v_dd}] V is outside the sweep")
    return float(10 ** np.interp(v_off + v_dd, vg, log_i)), float(10 ** np.interp(v_off, vg, log_i))


def dibl(fet: FETDevice, vg_values, vd_low: float, vd_high: float, i_threshold: float,
         *, n_energies: int = 400) -> tuple[float, Sweep, Sweep]:
    """Drain-induced barrier lowering ``-(V_T(high) - V_T(low)) / (vd_high - vd_low)`` in mV/V.

    ``V_T`` by the constant-current method at ``i_threshold`` (A), from two Id-Vg sweeps.
    """
    low = id_vg(fet, vg_values, vd_low, n_energies=n_energies)
    high = id_vg(fet, vg_values, vd_high, n_energies=n_energies)
    vt_low = threshold_voltage(low.voltages, low.currents, i_threshold)
    vt_high = threshold_voltage(high.voltages, high.currents, i_threshold)
    return -1e3 * (vt_high - vt_low) / (vd_high - vd_low), low, high
