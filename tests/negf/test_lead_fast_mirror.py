"""A mirror pair of leads from one eigendecomposition (``lead_fast.surface_gf_fast(mirror=True)``)."""

import numpy as np
import pytest
import torch

from invdesign.negf import lead_fast, leads
from invdesign.negf.lead_modes import surface_gf_modes
from tests.negf.test_lead_fast import GRID, random_lead, tb_lead


def _mirror_vs_separate(lead, energies):
    z = torch.as_tensor(energies).to(torch.complex128)
    n = lead.size
    a00, a01, a10 = (x.reshape(-1, n, n).contiguous() for x in leads.lead_blocks(lead, z, torch.complex128))
    u, v = lead_fast.hopping_bases(lead.h01, lead.s01)
    g, ok, g_m, ok_m = lead_fast.surface_gf_fast(a00, a01, a10, u, v, mirror=True)
    g_sep, ok_sep = lead_fast.surface_gf_fast(a00, a10, a01, v, u)
    assert torch.equal(ok, lead_fast.surface_gf_fast(a00, a01, a10, u, v)[1])
    exact = torch.as_tensor(surface_gf_modes(a00.numpy(), a10.numpy(), a01.numpy()))
    scale = exact.abs().amax((-2, -1)).clamp(min=1.0)
    both = ok_m & ok_sep
    assert both.float().mean() > 0.85
    assert float(((g_m - g_sep).abs().amax((-2, -1)) / scale)[both].max()) < 1e-11
    assert float(((g_m - exact).abs().amax((-2, -1)) / scale)[ok_m].max()) < 1e-11
    return ok_m


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("overlap", [False, True])
def test_mirror_lead_from_the_same_modes_equals_its_own_solve(seed, overlap):
    _mirror_vs_separate(random_lead(4, seed, singular=seed == 1, overlap=overlap), GRID)
    _mirror_vs_separate(random_lead(4, seed, overlap=overlap), GRID + 0.03j)


@pytest.mark.parametrize("kind", ["cnt_10_0", "agnr7_tnn_overlap", "square_strip_field"])
def test_mirror_lead_of_tight_binding_leads(kind):
    """Degenerate nanotube bands, third-neighbour overlap, a magnetic field (no E -> -k symmetry)."""
    _mirror_vs_separate(tb_lead(kind), np.linspace(-3.0, 3.0, 121) + 0.00123)
