"""Thin slices (``invdesign.negf.thin``): an exact repartition, so every observable equals the solve on the
slices as given; and the split never drops a zero entry that carries a gradient."""

import dataclasses

import numpy as np
import pytest
import torch

from invdesign.negf import Device, Lead, solve
from invdesign.negf.solution import Solution
from invdesign.negf.thin import _grouped, thin_layers, thinned
from invdesign.tb.builders import nanotube
from invdesign.tb.ribbons import armchair_ribbon_cell, periodic_cell

C128 = torch.complex128


def _cnt(cells=3, seed=0):
    cell = periodic_cell(nanotube(10, 0))
    gen = torch.Generator().manual_seed(seed)
    onsite = 0.6 * (torch.rand(cells, cell.h00.shape[0], generator=gen, dtype=torch.float64) - 0.5)
    return cell, onsite


def _both(device, energies, **kw):
    z = torch.as_tensor(energies).to(C128)
    return (Solution(device, z, False, "modes", C128, **kw), Solution(device, z, False, "modes", C128, thin=False))


def _close(a, b, rtol=1e-11):
    scale = max(1.0, float(b.detach().abs().max()))
    assert float((a - b).detach().abs().max()) <= rtol * scale


def test_a_nanotube_cell_splits_into_its_rings_and_every_observable_is_unchanged():
    cell, onsite = _cnt()
    dev = cell.device(3, onsite=onsite)
    layers = thin_layers(dev, members=400)
    assert [len(p) for p in layers[1]] == [10, 10, 10, 10]  # four rings of 10 atoms
    e = torch.linspace(-2.9, 2.9, 23, dtype=torch.float64) + 1e-3
    thin, given = _both(dev, e)
    assert len(thin.device.blocks) == 12 and len(given.device.blocks) == 3
    _close(thin.transmission(), given.transmission())
    _close(thin.transmission_right_to_left(), given.transmission())
    _close(thin.ldos(), given.ldos())  # per-orbital outputs in the device's own orbital order
    for side in ("left", "right"):
        _close(thin.spectral_function(side), given.spectral_function(side))
    poles = e.to(C128) + 0.05j
    thin, given = _both(dev, poles)
    _close(thin.hermitian_green_population(), given.hermitian_green_population())


def test_thin_slices_keep_the_orbital_order_of_from_matrix_devices_and_overlaps():
    cell = armchair_ribbon_cell(7)
    h00, h01 = cell.h00, cell.h01
    bonds00, bonds01 = (h00 != 0).to(torch.float64), (h01 != 0).to(torch.float64)
    s00, s01 = torch.eye(14, dtype=torch.float64) + 0.05 * bonds00, 0.05 * bonds01
    lead_l = Lead(h00, h01.mT, s00=s00, s01=s01.mT)
    lead_r = Lead(h00, h01, s00=s00, s01=s01)
    gen = torch.Generator().manual_seed(3)
    blocks = [h00 + torch.diag(0.4 * torch.rand(14, generator=gen, dtype=torch.float64)) for _ in range(3)]
    dev = Device(blocks, [h01] * 2, lead_l, lead_r, overlap=([s00] * 3, [s01] * 2),
                 orbital_order=np.random.default_rng(1).permutation(42))
    assert thin_layers(dev, members=400) is not None
    e = torch.linspace(-2.5, 2.5, 17, dtype=torch.float64) + 1e-3
    thin, given = _both(dev, e)
    _close(thin.transmission(), given.transmission())
    _close(thin.ldos(), given.ldos())
    _close(thin.spectral_function("left"), given.spectral_function("left"))
    thin, given = _both(dev, e.to(C128) + 0.1j)
    _close(thin.hermitian_green_population(), given.hermitian_green_population())


def test_gradients_on_thin_slices_equal_those_on_the_given_slices():
    cell, onsite = _cnt(cells=2, seed=4)
    theta = onsite.clone().requires_grad_(True)
    dev = cell.device(2, onsite=theta)
    assert dev.structural_zeros and thinned(dev, 4000) is not None
    e = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64) + 1e-3
    thin, given = _both(dev, e)
    (g_thin,) = torch.autograd.grad(thin.transmission().sum(), theta)
    (g_given,) = torch.autograd.grad(given.transmission().sum(), theta)
    _close(g_thin, g_given, rtol=1e-10)
    assert float(g_given.abs().max()) > 1e-3


def test_a_zero_hopping_that_carries_a_gradient_is_never_dropped():
    """A hopping fitted from 0 inside a cell: without ``structural_zeros`` the block stays whole, so its
    gradient (not zero) is the one of the dense problem; with it the user has said zeros stay zero."""
    cell, onsite = _cnt(cells=1)
    h00 = (cell.h00 + torch.diag(onsite[0])).clone()
    i, j = 0, 35  # ring 0 and ring 3: not bonded, not in neighbouring layers
    assert h00[i, j] == 0
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    bump = torch.zeros(40, 40, dtype=torch.float64)
    bump[i, j] = bump[j, i] = 1.0
    dev = Device([h00 + w * bump], [], *cell.leads())
    assert thin_layers(dev, 4000) is None
    e = torch.tensor([0.37, 1.21], dtype=torch.float64)
    t = solve(dev, e).transmission().sum()
    (g,) = torch.autograd.grad(t, w)
    h = 1e-6
    t_fd = [solve(Device([h00 + s * bump], [], *cell.leads()), e).transmission().sum() for s in (h, -h)]
    assert float(g) == pytest.approx(float(t_fd[0] - t_fd[1]) / (2 * h), rel=1e-6, abs=1e-9)
    assert abs(float(g)) > 1e-4
    assert thin_layers(dataclasses.replace(dev, structural_zeros=True), 4000) is not None


def test_slices_are_grouped_where_per_slice_overhead_outweighs_the_flops():
    ones = [np.array([k]) for k in range(4)]
    assert len(_grouped(ones, 300)) == 1  # four 1-orbital layers: one 4 x 4 slice is cheaper
    six = [np.arange(6 * k, 6 * k + 6) for k in range(4)]
    assert [len(g) for g in _grouped(six, 400)] == [6, 6, 6, 6]
    assert [len(g) for g in _grouped(six, 1)] == [24]
    groups = _grouped(six, 30)
    assert np.array_equal(np.concatenate(groups), np.arange(24)) and 1 < len(groups) < 4


def test_failed_energies_are_solved_again_alone():
    """The merged-slice fallback re-solves only the energies where a sweep failed (it used to solve
    the whole grid again, often twice over a cascade of merges). Slice 0 holds orbital a (bonded to
    the lead) and b (bonded only to slice 1, on-site 0.3 eV): at E = 0.3 its Schur complement has a
    zero row while the whole matrix is regular."""
    chain = Lead([[0.0]], [[-1.0]])
    left = Lead([[0.0]], [[-1.0]], coupling=torch.tensor([[-1.0, 0.0]], dtype=torch.float64))
    blocks = [torch.diag(torch.tensor([0.0, 0.3], dtype=torch.float64)), torch.tensor([[0.1]], dtype=torch.float64)]
    dev = Device(blocks, [torch.tensor([[-1.0], [-0.5]], dtype=torch.float64)], left, chain)
    seen = []
    original = Solution.__init__

    def spy(self, device, z, *args, **kw):
        seen.append(len(z))
        original(self, device, z, *args, **kw)

    e = torch.cat([torch.tensor([0.3], dtype=torch.float64), torch.linspace(-1.5, 1.5, 20, dtype=torch.float64)])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Solution, "__init__", spy)
        t = solve(dev, e).transmission()
    assert seen == [21, 1]
    h = torch.zeros(3, 3, dtype=torch.complex128)
    h[:2, :2], h[2, 2], h[:2, 2] = blocks[0], blocks[1][0, 0], dev.couplings[0][:, 0]
    h[2, :2] = h[:2, 2]
    sol = solve(dev, e)
    for k, energy in enumerate(e.tolist()):  # the dense inverse of the whole matrix
        sig = torch.zeros(3, 3, dtype=torch.complex128)
        sig[0, 0], sig[2, 2] = sol.sigma_left[k, 0, 0], sol.sigma_right[k, 0, 0]
        g = torch.linalg.inv(energy * torch.eye(3, dtype=torch.complex128) - h - sig)
        t_ref = (sol.gamma_right[k, 0, 0] * g[2, 0] * sol.gamma_left[k, 0, 0] * g[2, 0].conj()).real
        assert abs(float(t[k]) - float(t_ref)) < 1e-12
    theta = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)  # through the fallback, with autograd
    shifted = dataclasses.replace(dev, blocks=[blocks[0], blocks[1] + theta])
    (g_auto,) = torch.autograd.grad(solve(shifted, e).transmission().sum(), theta)
    fd = [solve(dataclasses.replace(dev, blocks=[blocks[0], blocks[1] + s]), e).transmission().sum() for s in (1e-6, -1e-6)]
    assert float(g_auto) == pytest.approx(float(fd[0] - fd[1]) / 2e-6, rel=1e-6)
