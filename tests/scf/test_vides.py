"""The NanoTCAD ViDES (13,0) CNT-FET recipe, coarse version (the full run: ``python -m invdesign.scf.examples``).

Reference numbers copied from ``shared/reference/analytic.json``, block ``nanotubes`` (13,0):
zone-folded nearest-neighbour graphene, t = -2.7 eV, a_cc = 0.142 nm.
"""

import dataclasses

import numpy as np
import pytest
import torch

from invdesign.negf import solve
from invdesign.scf import DensitySettings, bias_point
from invdesign.scf.examples import ViDESRecipe, nanotube_channel, vides_fet

# analytic.json, nanotubes, (13,0)
GAP_EV = 0.7351054383933121
FIRST_STEP_EV = 0.3676  # T: 0 -> 2 (two degenerate subbands, spin counted in G0)
SECOND_STEP_EV = 0.7851  # T: 2 -> 4
DIAMETER_NM = 1.017753140948628


def test_13_0_tube_gap_and_conductance_steps():
    device, pos = nanotube_channel(13, 0, 2)
    assert device.slice_sizes == [13] * 8  # one ring per slice
    radius = np.hypot(pos[:, 1], pos[:, 2])
    assert np.allclose(radius, DIAMETER_NM / 2, atol=1e-3)
    e = torch.tensor([0.0, FIRST_STEP_EV - 0.002, FIRST_STEP_EV + 0.002, SECOND_STEP_EV - 0.002,
                      SECOND_STEP_EV + 0.002], dtype=torch.float64)
    t = solve(device, e).transmission()
    assert torch.allclose(t, torch.tensor([0.0, 0.0, 2.0, 2.0, 4.0], dtype=torch.float64), atol=1e-6)
    assert 2 * FIRST_STEP_EV == pytest.approx(GAP_EV, abs=2e-4)


@pytest.mark.slow
def test_vides_recipe_coarse():
    """2/2/2 nm tube, 0.4 nm grid: converges, zero current at zero bias, gate turns the current on."""
    recipe = ViDESRecipe(source_nm=2.0, channel_nm=2.0, drain_nm=2.0, grid_step_nm=0.4)
    fet = dataclasses.replace(vides_fet(nanotube_channel(13, 0, 14), recipe),
                              density=DensitySettings(panel_nodes=8))
    assert fet.channel.num_orbitals == 14 * 52
    assert float(fet.doping.max()) == recipe.doping_per_atom
    u_s, u_d = fet.contact_shifts
    assert u_s == pytest.approx(u_d) and u_s < -GAP_EV / 2  # degenerate n+ contacts
    low = bias_point(fet, 0.0, recipe.vds)
    high = bias_point(fet, 0.4, recipe.vds, warm=low)
    i_low, i_high = float(low.current(200)), float(high.current(200))
    assert 0 < i_low < i_high
    assert high.result.iterations <= low.result.iterations + 2
    # a higher gate voltage pulls the channel's bands down (weakly: a 2 nm channel between n+ contacts)
    mid = slice(6 * 52, 8 * 52)
    assert float(high.potential[mid].mean()) < float(low.potential[mid].mean()) - 0.03
