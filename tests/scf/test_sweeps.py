"""Transistor figures of merit: thermionic swing, ballistic current bound, gm and g_d by autodiff.

Numbers copied from ``shared/reference/analytic.json``, block ``limits``.
"""

import math

import numpy as np
import pytest

from invdesign.negf import G0_S, KB_EV
from invdesign.scf import (
    SCFOptions,
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
from invdesign.scf.examples import chain_fet

# analytic.json, limits
SS_300K_MV_PER_DEC = 59.52642933132886  # (kT/q) ln 10 at 300 K
G0_US = 77.48091729863648  # 2 e^2 / h

N_ENERGIES = 3000  # resolves the sharp onset of T(E) over a long flat barrier (the swing is a derivative)


@pytest.fixture(scope="module")
def long_channel():
    """20 nm channel (m* = 0.19), lambda = 1 nm: the barrier follows the gate one to one."""
    return chain_fet(source=20, channel=80, drain=20, lambda_nm=1.0, gate_offset_ev=0.5)


def test_constants_match_reference():
    assert G0_S * 1e6 == pytest.approx(G0_US, rel=1e-12)
    assert 1e3 * KB_EV * 300.0 * math.log(10) == pytest.approx(SS_300K_MV_PER_DEC, rel=1e-9)


def test_long_channel_swing_at_the_thermionic_limit(long_channel):
    sweep = id_vg(long_channel, [0.0, 0.05, 0.1], 0.1, n_energies=N_ENERGIES, keep=True)
    swings = swing_between(sweep.voltages, sweep.currents)
    assert (swings > SS_300K_MV_PER_DEC).all()
    assert (swings < 1.02 * SS_300K_MV_PER_DEC).all()
    # the same swing from the autodiff transconductance at the middle point
    current, gm = transconductance(long_channel, 0.05, 0.1, warm=sweep.points[1], n_energies=N_ENERGIES)
    assert current == pytest.approx(sweep.currents[1], rel=1e-6)
    ss_ad = swing_from_gm(current, gm)
    assert SS_300K_MV_PER_DEC < ss_ad < 1.02 * SS_300K_MV_PER_DEC
    assert ss_ad == pytest.approx(float(np.mean(swings)), rel=5e-3)
    # warm starts along the sweep: later points need fewer iterations than a cold start
    assert max(sweep.iterations[1:]) <= sweep.iterations[0]


def test_on_current_bounded_by_modes_times_g0_times_vds(long_channel):
    vds, temperature = 0.1, long_channel.temperature_k
    sweep = id_vg(long_channel, [0.6, 0.8], vds)
    one_mode = G0_S * vds  # one spin-degenerate mode with T <= 1 over the whole window
    assert (sweep.currents <= one_mode).all()
    # sharper: T <= 1 only above the source band bottom E_c = u_S (analytic.json, landauer_current form)
    kt = KB_EV * temperature
    e_c = long_channel.contact_shifts[0]
    mu_s, mu_d = long_channel.mu_ev, long_channel.mu_ev - vds
    bound = G0_S * kt * (math.log1p(math.exp((mu_s - e_c) / kt)) - math.log1p(math.exp((mu_d - e_c) / kt)))
    assert (sweep.currents <= bound * (1 + 1e-3)).all()
    assert sweep.currents[-1] > 0.5 * bound  # the barrier is gone: near-ballistic
    i_on, i_off = on_off([0.0, 0.8], [1e-12, sweep.currents[-1]], 0.0, 0.8)
    assert i_on == pytest.approx(sweep.currents[-1]) and i_off == pytest.approx(1e-12)


def test_output_conductance_by_autodiff_matches_sweep():
    fet = chain_fet(source=12, channel=20, drain=12, gate_offset_ev=0.2, options=SCFOptions(tol_v=1e-11))
    current, gd = output_conductance(fet, 0.15, 0.05, n_energies=800)
    h = 1e-5  # small: a quadrature node sits 4e-5 eV from the source band edge (a sqrt kink of T(E))
    sweep = id_vd(fet, 0.15, [0.05 - h, 0.05 + h], n_energies=800)
    assert gd == pytest.approx((sweep.currents[1] - sweep.currents[0]) / (2 * h), rel=1e-4)
    assert gd > 0 and current > 0


def test_dibl_short_vs_long_channel():
    """Drain-induced barrier lowering grows when the channel is short compared to lambda."""
    values = []
    for channel in (12, 40):
        fet = chain_fet(source=12, channel=channel, drain=12, lambda_nm=1.5, gate_offset_ev=0.4)
        value, low, high = dibl(fet, [-0.1, 0.05, 0.2], 0.05, 0.3, i_threshold=1e-10, n_energies=600)
        assert value == pytest.approx(-1e3 * (threshold_voltage(high.voltages, high.currents, 1e-10)
                                              - threshold_voltage(low.voltages, low.currents, 1e-10)) / 0.25)
        values.append(value)
    assert values[0] > 3 * values[1] > 0
