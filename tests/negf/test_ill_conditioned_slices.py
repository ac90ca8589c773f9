"""Slices whose Schur complement is (near-)singular while the whole matrix is not (``negf.regroup``).

An armchair ribbon sliced 3, 3, 2, 2 atoms per cell has atoms with no bond inside their slice and none
to the left; at E equal to their on-site energy the slice-by-slice elimination meets a zero pivot (T
came out 4.04 and T_RL -1e11 for an exact 1.0). Reference: the dense inverse of the same matrix.
"""

import dataclasses

import numpy as np
import pytest
import torch

from invdesign.negf import solve
from invdesign.negf.regroup import merged
from invdesign.tb import armchair_ribbon, tables, two_terminal, wire


def _ribbon(offset: float):
    model = tables.graphene_pz("NN_generic")
    device, left, right = wire(armchair_ribbon(5), 4)
    dev = two_terminal(model, device, left, right).device
    sign = [(-1.0) ** i for i in range(dev.num_orbitals)]
    eps = torch.split(offset * torch.tensor(sign, dtype=torch.float64), dev.slice_sizes)
    return dataclasses.replace(dev, blocks=[b + torch.diag(e) for b, e in zip(dev.blocks, eps)])


def _dense(sol):
    sizes = [m.shape[-1] for m in sol.diag]
    off = np.concatenate([[0], np.cumsum(sizes)])
    m = torch.zeros(*sol.diag[0].shape[:-2], off[-1], off[-1], dtype=torch.complex128)
    for i, d in enumerate(sol.diag):
        m[..., off[i]:off[i + 1], off[i]:off[i + 1]] = d
    for i, (u, d) in enumerate(zip(sol.up, sol.down)):
        m[..., off[i]:off[i + 1], off[i + 1]:off[i + 2]] = u
        m[..., off[i + 1]:off[i + 2], off[i]:off[i + 1]] = d
    g = torch.linalg.inv(m)
    x = g[..., off[-2]:, : off[1]]
    t = torch.einsum("...ab,...bc,...cd,...ad->...", sol.gamma_right, x, sol.gamma_left, x.conj()).real
    return t, (-torch.diagonal(g, dim1=-2, dim2=-1).imag / np.pi)


@pytest.mark.parametrize("method", ["modes", "qz"])
def test_zero_pivot_inside_a_slice_is_exact(method):
    dev = _ribbon(0.1)
    e = torch.tensor([0.1, -0.1, 0.1 + 1e-7, 0.37], dtype=torch.float64)  # E = +-offset: zero pivots
    sol = solve(dev, e, method=method)
    t_ref, ldos_ref = _dense(sol)
    ldos_ref = dev.to_original_order(ldos_ref)
    torch.testing.assert_close(sol.transmission(), t_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(sol.transmission_right_to_left(), t_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(sol.ldos(), ldos_ref, atol=1e-10, rtol=0)
    a_l, a_r = sol.spectral_functions()
    torch.testing.assert_close(a_l + a_r, ldos_ref, atol=1e-10, rtol=0)


def test_merged_device_is_the_same_system():
    dev = _ribbon(0.13)
    e = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    base = solve(dev, e)
    for factor in (2, 3, 16):
        m = merged(dev, factor)
        assert m.num_orbitals == dev.num_orbitals and len(m.blocks) == -(-len(dev.blocks) // factor)
        sol = solve(m, e)
        torch.testing.assert_close(sol.transmission(), base.transmission(), atol=1e-13, rtol=0)
        torch.testing.assert_close(sol.ldos(), base.ldos(), atol=1e-12, rtol=0)


def test_gradient_through_the_merged_fallback_matches_finite_differences():
    dev = _ribbon(0.1)
    e = torch.tensor([0.1], dtype=torch.float64)
    theta = torch.tensor(0.02, dtype=torch.float64, requires_grad=True)
    def t_of(th):
        blocks = [b + th * torch.eye(b.shape[-1], dtype=torch.float64) * (i == 5) for i, b in enumerate(dev.blocks)]
        return solve(dataclasses.replace(dev, blocks=blocks), e).transmission().sum()
    (g,) = torch.autograd.grad(t_of(theta), theta)
    h = 1e-6
    fd = (t_of(theta.detach() + h) - t_of(theta.detach() - h)) / (2 * h)
    assert abs(float(g) - float(fd)) < 1e-6 * max(1.0, abs(float(fd)))
