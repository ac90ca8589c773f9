"""Implicit gradients of the self-consistent state vs finite differences and unrolled autograd."""

import dataclasses

import numpy as np
import pytest
import torch

from invdesign.negf.potential import add_potential
from invdesign.scf import DensityEvaluator, DensitySettings, FETDevice, SCFOptions, bias_point, screened_1d
from invdesign.scf.device import _voltages
from invdesign.scf.examples import chain_fet
from invdesign.scf.loop import plain_iterations
from invdesign.scf.modespace import effective_mass_chain

TIGHT = SCFOptions(tol_v=1e-12, max_iter=80)


@pytest.fixture(scope="module")
def fet():
    return chain_fet(source=10, channel=14, drain=10, options=TIGHT)


def _current(fet, doping, vg, vd):
    return bias_point(dataclasses.replace(fet, doping=doping), vg, vd).current(n_energies=600)


def _relative(a, b):
    return abs(a - b) / max(abs(a), abs(b))


def test_gradient_wrt_doping_gate_and_drain_vs_finite_differences(fet):
    doping = fet.doping.clone().requires_grad_(True)
    vg = torch.tensor(0.35, dtype=torch.float64, requires_grad=True)
    vd = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    current = _current(fet, doping, vg, vd)
    g_doping, g_vg, g_vd = torch.autograd.grad(current, [doping, vg, vd])
    base = fet.doping.clone()
    with torch.no_grad():
        for k in (2, 9, 12, 17, 30):  # source, source edge, channel, channel middle, drain
            h = 1e-6
            plus, minus = base.clone(), base.clone()
            plus[k] += h
            minus[k] -= h
            fd = (_current(fet, plus, 0.35, 0.05) - _current(fet, minus, 0.35, 0.05)) / (2 * h)
            assert _relative(float(g_doping[k]), float(fd)) < 1e-5, k
        h = 1e-5
        fd_vg = (_current(fet, base, 0.35 + h, 0.05) - _current(fet, base, 0.35 - h, 0.05)) / (2 * h)
        fd_vd = (_current(fet, base, 0.35, 0.05 + h) - _current(fet, base, 0.35, 0.05 - h)) / (2 * h)
    assert _relative(float(g_vg), float(fd_vg)) < 1e-5
    assert _relative(float(g_vd), float(fd_vd)) < 1e-5


def test_gradient_wrt_a_channel_hopping(fet):
    """A tight-binding parameter of the channel (one hopping, a tensor in the Device) gets its gradient."""
    def with_hopping(t):
        couplings = list(fet.channel.couplings)
        couplings[16] = t.reshape(1, 1)
        return dataclasses.replace(fet, channel=dataclasses.replace(fet.channel, couplings=couplings))

    t0 = float(fet.channel.couplings[16])
    t = torch.tensor(t0 * 0.9, dtype=torch.float64, requires_grad=True)
    potential = bias_point(with_hopping(t), 0.3, 0.05).potential
    weights = torch.linspace(-1.0, 1.0, len(potential), dtype=torch.float64)
    (grad,) = torch.autograd.grad((potential * weights).sum(), t)
    h = 1e-5
    with torch.no_grad():
        f = [float((bias_point(with_hopping(torch.tensor(t0 * 0.9 + s, dtype=torch.float64)), 0.3, 0.05).potential
                    * weights).sum()) for s in (h, -h)]
    assert _relative(float(grad), (f[0] - f[1]) / (2 * h)) < 1e-5


def _tiny_fet() -> FETDevice:
    """Six sites under one gate (no floating region), so plain iterations contract."""
    device, pos = effective_mass_chain(6, 0.25, 0.19)
    x = pos[:, 0]
    grid = screened_1d(np.concatenate([[x[0] - 0.25], x, [x[-1] + 0.25]]), [("gate", x[0], x[-1], 30.0)], 0.5)
    doping = torch.tensor([1e-2, 5e-3, 0.0, 0.0, 5e-3, 1e-2], dtype=torch.float64)
    return FETDevice(device, pos, grid, doping, 300.0, gates={"gate": 0.05}, reference=0.0,
                     contact_doping=(1e-2, 1e-2), options=SCFOptions(tol_v=1e-13),
                     density=DensitySettings(panel_nodes=8))


def test_implicit_gradient_matches_unrolled_iterations():
    fet = _tiny_fet()
    doping = fet.doping.clone().requires_grad_(True)
    vg = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    vd = torch.tensor(0.03, dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.7, 1.1], dtype=torch.float64)
    fet_d = dataclasses.replace(fet, doping=doping)
    bp = bias_point(fet_d, vg, vd)
    implicit = torch.autograd.grad((bp.potential * weights).sum(), [doping, vg, vd])

    # the same fixed point, differentiated by unrolling damped plain iterations U <- U + a (u0 + K dn(U) - U)
    voltages, _ = _voltages(fet_d, vg, vd)
    u0 = fet_d.electrostatics.potential_energy(voltages, doping)
    u_s, u_d = fet_d.contact_shifts
    mu_r = fet.mu_ev - vd
    evaluator = DensityEvaluator(fet.mu_ev, mu_r, fet.temperature_k, fet.density, fet.spectral_bound)

    def charge(v):  # electrons per site (reference 0); the leads' graph is built once and shared
        device = add_potential(fet.channel, v, u_s, u_d - vd)
        return evaluator(device, cache="graph", lead_shifts=(u_s, u_d - vd)) + 1.0

    kernel = fet_d.kernel
    response = bp.result.response
    mixing = 1.0 / (1.0 + float((kernel * response.abs()).sum(1).max()))
    u = plain_iterations(charge, kernel, u0, 40, mixing, initial=bp.potential.detach())
    assert float((u - bp.potential).detach().abs().max()) < 1e-11  # started at the fixed point, stays there
    unrolled = torch.autograd.grad((u * weights).sum(), [doping, vg, vd])
    for a, b in zip(implicit, unrolled):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9 * float(b.abs().max()))


def test_adjoint_memory_does_not_grow_with_iterations(fet):
    """The backward keeps one charge graph: loose and tight tolerances give the same saved tensors."""
    loose = dataclasses.replace(fet, options=SCFOptions(tol_v=1e-4))
    doping = fet.doping.clone().requires_grad_(True)
    counts = []
    for f in (loose, fet):
        bp = bias_point(dataclasses.replace(f, doping=doping), 0.3, 0.05)
        saved = bp.potential.grad_fn.saved_tensors
        counts.append((len(saved), sum(t.numel() for t in saved)))
        assert bp.result.iterations >= 2
    assert counts[0] == counts[1]


def test_gradient_wrt_grid_doping(fet):
    """Doping given per Poisson-grid node (e per node): implicit gradient vs finite differences."""
    nodes = fet.grid.num_nodes
    base = torch.zeros(nodes, dtype=torch.float64)
    base[5:9] = 0.01
    q = base.clone().requires_grad_(True)
    current = bias_point(dataclasses.replace(fet, grid_doping=q), 0.3, 0.05).current(n_energies=600)
    (grad,) = torch.autograd.grad(current, q)
    h = 1e-6
    with torch.no_grad():
        for k in (6, 20):
            vals = []
            for sign in (1, -1):
                p = base.clone()
                p[k] += sign * h
                vals.append(float(bias_point(dataclasses.replace(fet, grid_doping=p), 0.3, 0.05).current(n_energies=600)))
            assert _relative(float(grad[k]), (vals[0] - vals[1]) / (2 * h)) < 1e-5
