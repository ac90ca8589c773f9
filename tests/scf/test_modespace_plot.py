"""Effective-mass channels (1D chain, 2D in mode space) and the figures.

Numbers copied from ``shared/reference/analytic.json``, block ``effective_mass``.
"""

import numpy as np
import pytest
import torch

from invdesign.negf import solve
from invdesign.negf.potential import add_potential
from invdesign.scf import effective_mass_chain, id_vg, mode_energies, mode_space_channel
from invdesign.scf.examples import chain_fet
from invdesign.scf.modespace import HBAR2_OVER_2M0_EV_NM2, hopping_energy
from invdesign.scf.plot import plot_id_vg, plot_profiles

# analytic.json, effective_mass.model and single_barrier (V0 = 0.3 eV on 10 sites, a = 0.25 nm, m* = 0.067)
T0_EV = 9.09846475499668
SINGLE_BARRIER = [(0.01, 0.015316396820337589), (0.1, 0.17006657582239534), (0.35, 0.6277561769606903)]


def test_hopping_energy_and_single_barrier():
    assert hopping_energy(0.25, 0.067) == pytest.approx(T0_EV, rel=1e-12)
    assert HBAR2_OVER_2M0_EV_NM2 == pytest.approx(0.0380998211615486, rel=1e-12)
    device, pos = effective_mass_chain(10, 0.25, 0.067)
    barrier = add_potential(device, torch.full((10,), 0.3, dtype=torch.float64))
    e = torch.tensor([row[0] for row in SINGLE_BARRIER], dtype=torch.float64)
    t = solve(barrier, e).transmission()
    assert torch.allclose(t, torch.tensor([row[1] for row in SINGLE_BARRIER], dtype=torch.float64), rtol=1e-9)
    assert np.allclose(np.diff(pos[:, 0]), 0.25)


def test_mode_space_channel_counts_modes():
    width, mstar = 4.0, 0.19
    e_modes = mode_energies(width, mstar, 3)
    assert e_modes[1] == pytest.approx(4 * e_modes[0])
    device, pos = mode_space_channel(5, 0.25, mstar, e_modes)
    assert device.slice_sizes == [3] * 5 and pos.shape == (15, 3)
    probe = torch.tensor([e_modes[0] - 0.01, e_modes[0] + 0.01, e_modes[1] + 0.01, e_modes[2] + 0.01],
                         dtype=torch.float64)
    assert torch.allclose(solve(device, probe).transmission(), torch.tensor([0.0, 1.0, 2.0, 3.0],
                                                                            dtype=torch.float64), atol=1e-8)


def test_figures_are_written(tmp_path):
    fet = chain_fet(source=10, channel=10, drain=10)
    sweep = id_vg(fet, [0.2, 0.3], 0.05, keep=True, n_energies=200)
    a = plot_id_vg(sweep, tmp_path / "idvg.png", title="chain")
    b = plot_profiles(sweep.points, tmp_path / "profiles.png", band_edge_ev=0.0)
    for path in (a, b):
        assert path.exists() and path.stat().st_size > 10_000
