"""Gradients of the NEGF engine: autograd (implicit lead backward included) against finite differences,
torch.autograd.gradcheck / gradgradcheck, and Lopez-Sancho unrolled through its iterations.

Tiny systems are used for gradcheck (every input entry is perturbed); larger ones (7-AGNR) for
directional finite differences. Energies are chosen inside the leads' bands, away from band edges,
where T(E) is smooth; each test asserts that channels are open there so the check is not vacuous.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from invdesign.negf import (
    G0_S,
    KB_EV,
    Device,
    Lead,
    current,
    differential_conductance,
    open_channels,
    seebeck,
    self_energy,
    solve,
    surface_green_function,
    surface_green_function_sancho_unrolled,
)
from invdesign.tb.ribbons import armchair_ribbon_cell

C128 = torch.complex128
F64 = torch.float64


@pytest.fixture(autouse=True)
def _quiet_scalar_conversion_warning():
    # current() calls float() on a tensor that requires grad (a harmless UserWarning)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
        yield


def herm(rng, n, scale=1.0):
    a = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return torch.as_tensor(scale * (a + a.conj().T) / 2)


def cplx(rng, n, m, scale=1.0):
    return torch.as_tensor(scale * (rng.normal(size=(n, m)) + 1j * rng.normal(size=(n, m))))


class TinySystem:
    """Two different 2-orbital leads with complex hoppings and explicit couplings, slices of 2, 1, 2
    orbitals: every ingredient of T can be swapped for a tensor that requires grad."""

    sizes = (2, 1, 2)

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        n = 2
        # broad bands (|h01| ~ 1.4) so that both leads conduct at the test energies
        self.h00 = [herm(rng, n, 0.3), herm(rng, n, 0.3)]
        self.h01 = [1.4 * torch.eye(n, dtype=C128) + cplx(rng, n, n, 0.2) for _ in range(2)]
        self.coupling = [cplx(rng, n, self.sizes[0], 0.7), cplx(rng, n, self.sizes[-1], 0.7)]
        self.blocks = [herm(rng, s) for s in self.sizes]
        self.couplings = [cplx(rng, self.sizes[i], self.sizes[i + 1]) for i in range(len(self.sizes) - 1)]
        self.energies = torch.tensor([-0.7, 0.3, 1.1], dtype=F64)

    def device(self, onsite=None, couplings=None, h00=None, h01=None, coupling=None):
        blocks = list(self.blocks)
        if onsite is not None:
            offsets = np.cumsum([0, *self.sizes])
            blocks = [b + torch.diag(onsite[o:o + s]) for b, o, s in zip(blocks, offsets, self.sizes)]
        h00 = h00 or self.h00
        h01 = h01 or self.h01
        coupling = coupling or self.coupling
        left = Lead(h00[0], h01[0], coupling=coupling[0])
        right = Lead(h00[1], h01[1], coupling=coupling[1])
        return Device(blocks, couplings or self.couplings, left, right)

    def transmission(self, energies=None, **kw):
        return solve(self.device(**kw), self.energies if energies is None else energies).transmission()


@pytest.fixture(scope="module")
def tiny():
    system = TinySystem()
    dev = system.device()
    assert (open_channels(dev.left, system.energies) > 0).all()
    assert (open_channels(dev.right, system.energies) > 0).all()
    return system


def uniform_wire(onsite, h01=None, h00_extra=None, n_cells=4):
    """A 2-orbital uniform wire (both leads mirror images: the engine's one-QZ lead path) with an
    on-site potential ``onsite`` (2 * n_cells,) in the device."""
    h00 = torch.tensor([[0.3, 0.2 + 0.1j], [0.2 - 0.1j, -0.3]], dtype=C128)
    if h00_extra is not None:
        h00 = h00 + h00_extra + h00_extra.mH
    if h01 is None:
        h01 = torch.tensor([[1.5, 0.2j], [0.1, 1.4]], dtype=C128)
    blocks = [h00 + torch.diag(onsite[2 * i:2 * i + 2]).to(C128) for i in range(n_cells)]
    return Device(blocks, [h01] * (n_cells - 1), Lead(h00, h01.mH), Lead(h00, h01))


WIRE_ENERGIES = torch.linspace(-2.0, 2.0, 9, dtype=F64)


def wire_onsite(seed=5, n_cells=4):
    return torch.as_tensor(np.random.default_rng(seed).uniform(-0.5, 0.5, 2 * n_cells))


def rel_err(a, b):
    a, b = np.asarray(a, dtype=complex), np.asarray(b, dtype=complex)
    return float(np.abs(a - b).max() / max(1e-300, np.abs(b).max()))


# ============================================================================ gradcheck, tiny systems
def test_gradcheck_device_onsite_energies(tiny):
    x = torch.zeros(sum(tiny.sizes), dtype=F64, requires_grad=True)
    f = lambda x: tiny.transmission(onsite=x)  # noqa: E731
    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,), fast_mode=True)


def test_gradcheck_device_couplings(tiny):
    c0 = tiny.couplings[0].clone().requires_grad_(True)
    c1 = tiny.couplings[1].clone().requires_grad_(True)
    f = lambda a, b: tiny.transmission(couplings=[a, b])  # noqa: E731
    assert gradcheck(f, (c0, c1))
    assert gradgradcheck(f, (c0, c1), fast_mode=True)


def test_gradcheck_lead_cell_hamiltonians(tiny):
    """Both leads' h00 (kept Hermitian: h00 + X + X^dagger) and h01 entries, complex."""
    xs = [torch.zeros(2, 2, dtype=C128, requires_grad=True) for _ in range(2)]
    h01s = [h.clone().requires_grad_(True) for h in tiny.h01]

    def f(x_left, x_right, h01_left, h01_right):
        h00 = [tiny.h00[0] + x_left + x_left.mH, tiny.h00[1] + x_right + x_right.mH]
        return tiny.transmission(h00=h00, h01=[h01_left, h01_right])

    assert gradcheck(f, (*xs, *h01s))
    assert gradgradcheck(f, (*xs, *h01s), fast_mode=True)


def test_gradcheck_lead_couplings(tiny):
    cs = [c.clone().requires_grad_(True) for c in tiny.coupling]
    f = lambda a, b: tiny.transmission(coupling=[a, b])  # noqa: E731
    assert gradcheck(f, tuple(cs))
    assert gradgradcheck(f, tuple(cs), fast_mode=True)


def test_gradcheck_energy(tiny):
    e = tiny.energies.clone().requires_grad_(True)
    f = lambda e: tiny.transmission(energies=e)  # noqa: E731
    assert gradcheck(f, (e,))
    assert gradgradcheck(f, (e,), fast_mode=True)


def test_gradcheck_with_broadening_and_sancho(tiny):
    """eta > 0 with the Lopez-Sancho forward: the implicit backward still applies at the fixed point."""
    e = tiny.energies.clone().requires_grad_(True)
    h01 = tiny.h01[1].clone().requires_grad_(True)
    x = torch.zeros(sum(tiny.sizes), dtype=F64, requires_grad=True)

    def f(e, h01, x):
        dev = tiny.device(onsite=x, h01=[tiny.h01[0], h01])
        return solve(dev, e, eta=0.05, method="sancho").transmission()

    assert gradcheck(f, (e, h01, x))
    assert gradgradcheck(f, (e, h01, x), fast_mode=True)


def test_gradcheck_ldos(tiny):
    x = torch.zeros(sum(tiny.sizes), dtype=F64, requires_grad=True)
    w = torch.as_tensor(np.random.default_rng(3).normal(size=(3, sum(tiny.sizes))))
    f = lambda x: (solve(tiny.device(onsite=x), tiny.energies).ldos() * w).sum()  # noqa: E731
    assert gradcheck(f, (x,))


def test_gradcheck_uniform_wire_mirror_leads():
    """Both leads built from the same parameters (the one-QZ mirror path): gradients reach both."""
    on = wire_onsite().requires_grad_(True)
    h01 = torch.tensor([[1.5, 0.2j], [0.1, 1.4]], dtype=C128, requires_grad=True)
    x = torch.zeros(2, 2, dtype=C128, requires_grad=True)
    e = torch.tensor([-1.1, 0.2, 0.9], dtype=F64)
    assert (open_channels(uniform_wire(on.detach()).right, e) > 0).all()
    f = lambda on, h01, x: solve(uniform_wire(on, h01, x), e).transmission()  # noqa: E731
    assert gradcheck(f, (on, h01, x))
    assert gradgradcheck(f, (on, h01, x), fast_mode=True)
    ee = e.clone().requires_grad_(True)
    g = lambda ee: solve(uniform_wire(on.detach()), ee).transmission()  # noqa: E731
    assert gradcheck(g, (ee,))
    assert gradgradcheck(g, (ee,), fast_mode=True)


def test_gradcheck_overlap_entries():
    """Non-orthogonal basis: d T / d (device overlap, lead s01, lead s00)."""
    rng = np.random.default_rng(11)
    n = 2
    h00 = herm(rng, n, 0.3)
    h01 = 1.4 * torch.eye(n, dtype=C128) + cplx(rng, n, n, 0.2)
    s00 = torch.eye(n, dtype=C128) + 0.05 * herm(rng, n)
    s01 = cplx(rng, n, n, 0.05)
    blocks = [h00 + torch.diag(torch.as_tensor(rng.uniform(-0.4, 0.4, n))) for _ in range(2)]
    e = torch.tensor([-0.8, 0.4], dtype=F64)

    def f(s_dev, s01_right, x00_right):
        s00_right = s00 + x00_right + x00_right.mH
        left = Lead(h00, h01.mH, s00=s00, s01=s01.mH)
        right = Lead(h00, h01, s00=s00_right, s01=s01_right)
        dev = Device(blocks, [h01], left, right, overlap=([s00, s00], [s_dev]))
        return solve(dev, e).transmission()

    inputs = (s01.clone().requires_grad_(True), s01.clone().requires_grad_(True),
              torch.zeros(n, n, dtype=C128, requires_grad=True))
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs, fast_mode=True)


# ============================================================================ implicit vs unrolled
def _lead_loss(g, w):
    return (g * w).real.sum() + (g.abs() ** 2).sum()


@pytest.mark.parametrize("method", ["modes", "sancho"])
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_implicit_lead_backward_matches_unrolled_sancho(seed, overlap, method):
    """At E + 0.05 i the implicit-function backward equals autograd through the decimation."""
    rng = np.random.default_rng(seed)
    n = 3
    params = {
        "h00": herm(rng, n, 0.5),
        "h01": cplx(rng, n, n),
        "e": torch.as_tensor(rng.uniform(-3, 3, 4)),
    }
    if overlap:
        params["s00"] = torch.eye(n, dtype=C128) + 0.1 * herm(rng, n)
        params["s01"] = cplx(rng, n, n, 0.05)
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    w = cplx(rng, n, n)
    names = list(params)

    def build():
        kw = {k: params[k] for k in ("s00", "s01") if k in params}
        return Lead(params["h00"], params["h01"], **kw)

    g_impl = surface_green_function(build(), params["e"], eta=0.05, method=method)
    g_unrl = surface_green_function_sancho_unrolled(build(), params["e"], eta=0.05)
    np.testing.assert_allclose(g_impl.detach().numpy(), g_unrl.detach().numpy(), rtol=0,
                               atol=1e-9 * max(1.0, float(g_unrl.abs().max())))
    grads_impl = torch.autograd.grad(_lead_loss(g_impl, w), [params[k] for k in names])
    grads_unrl = torch.autograd.grad(_lead_loss(g_unrl, w), [params[k] for k in names])
    for name, a, b in zip(names, grads_impl, grads_unrl):
        err = float((a - b).abs().max()) / max(1.0, float(b.abs().max()))
        assert err < 1e-9, (name, err)


def test_implicit_lead_second_derivative_matches_unrolled_sancho():
    """Hessian-vector product through the implicit backward (double backward) vs the unrolled one."""
    rng = np.random.default_rng(4)
    n = 2
    h00, h01 = herm(rng, n, 0.5).requires_grad_(True), cplx(rng, n, n).requires_grad_(True)
    e = torch.tensor([-0.5, 0.7], dtype=F64)
    w = cplx(rng, n, n)
    v = cplx(rng, n, n)
    out = []
    for sgf in (lambda lead: surface_green_function(lead, e, eta=0.05),
                lambda lead: surface_green_function_sancho_unrolled(lead, e, eta=0.05)):
        g = sgf(Lead(h00, h01))
        (d01,) = torch.autograd.grad(_lead_loss(g, w), h01, create_graph=True)
        out.append(torch.autograd.grad((d01 * v.conj()).real.sum(), (h00, h01)))
    for a, b in zip(*out):
        assert float((a - b).abs().max()) / max(1.0, float(b.abs().max())) < 1e-9


def test_implicit_backward_with_structurally_sparse_hopping():
    """Graphene lead (h01 with few nonzero rows/columns: the reduced Stein solve) with a coupling,
    self-energy gradients vs the unrolled decimation, including the structurally zero h01 entries."""
    cell = armchair_ribbon_cell(5)
    n = cell.h00.shape[0]
    rng = np.random.default_rng(0)
    on = torch.as_tensor(rng.uniform(-0.2, 0.2, n)).requires_grad_(True)
    h01 = cell.h01.to(C128).clone().requires_grad_(True)
    e = torch.tensor([-1.3, 0.4, 2.1], dtype=F64, requires_grad=True)
    w = cplx(rng, n, n)
    lead = lambda: Lead(cell.h00 + torch.diag(on), h01)  # noqa: E731
    g_impl = surface_green_function(lead(), e, eta=0.05)
    g_unrl = surface_green_function_sancho_unrolled(lead(), e, eta=0.05)
    np.testing.assert_allclose(g_impl.detach().numpy(), g_unrl.detach().numpy(), rtol=0, atol=1e-9)
    a = torch.autograd.grad(_lead_loss(g_impl, w), (on, h01, e))
    b = torch.autograd.grad(_lead_loss(g_unrl, w), (on, h01, e))
    for x, y in zip(a, b):
        assert float((x - y).abs().max()) / max(1.0, float(y.abs().max())) < 1e-9
    # and through the self-energy at real energies (vs finite differences of the onsite potential)
    e_real = torch.tensor([-1.3, 0.4, 2.1], dtype=F64)
    d = torch.as_tensor(rng.normal(size=n))

    def sig_loss(on_):
        s = self_energy(Lead(cell.h00 + torch.diag(on_), cell.h01), e_real)
        return _lead_loss(s, w)

    (grad,) = torch.autograd.grad(sig_loss(on), on)
    h = 1e-6
    with torch.no_grad():
        fd = (sig_loss(on.detach() + h * d) - sig_loss(on.detach() - h * d)) / (2 * h)
    assert abs(float((grad * d).sum()) - float(fd)) < 1e-6 * abs(float(fd))


# ============================================================================ finite differences
@pytest.mark.slow
def test_agnr_sum_transmission_gradient_vs_finite_differences():
    """7-AGNR, 6 cells, d(sum_E T(E)) / d(all 84 on-site energies), 20 energies: central differences
    along random directions agree to 1e-6 relative."""
    cell = armchair_ribbon_cell(7)
    e = torch.linspace(-2.6, 2.6, 20, dtype=F64)
    assert open_channels(cell.leads()[1], e).sum() > 0
    rng = np.random.default_rng(1)
    on0 = torch.as_tensor(rng.uniform(-0.3, 0.3, (6, 14)))
    f = lambda on: solve(cell.device(6, on), e).transmission().sum()  # noqa: E731
    on = on0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(on), on)
    h = 1e-5
    for _ in range(2):
        d = torch.as_tensor(rng.normal(size=(6, 14)))
        with torch.no_grad():
            fd = float((f(on0 + h * d) - f(on0 - h * d)) / (2 * h))
        ad = float((grad * d).sum())
        assert abs(ad - fd) <= 1e-6 * abs(fd), (ad, fd)


def _central(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


def test_dtde_real_energy_vs_finite_differences(tiny):
    """dT/dE at real energies (the leads' energy dependence through the implicit backward)."""
    for transmission, energies in (
        (lambda e: tiny.transmission(energies=e), tiny.energies),
        (lambda e: solve(uniform_wire(wire_onsite()), e).transmission(), WIRE_ENERGIES),
    ):
        e = energies.clone().requires_grad_(True)
        (dt,) = torch.autograd.grad(transmission(e).sum(), e)
        with torch.no_grad():
            fd = _central(transmission, energies, 1e-5)
        assert rel_err(dt.numpy(), fd.numpy()) < 1e-6


def test_seebeck_vs_finite_difference_of_log_transmission():
    dev = uniform_wire(wire_onsite())
    temperature = 300.0
    s = seebeck(dev, WIRE_ENERGIES, temperature)
    assert s.shape == WIRE_ENERGIES.shape
    log_t = lambda e: torch.log(solve(dev, e).transmission())  # noqa: E731
    fd = -(math.pi**2 / 3) * KB_EV**2 * temperature * _central(log_t, WIRE_ENERGIES, 1e-5)
    assert rel_err(s.detach().numpy(), fd.numpy()) < 1e-6
    s0 = seebeck(dev, 0.3, temperature)  # a single energy gives a 0-d result
    assert s0.shape == ()
    np.testing.assert_allclose(float(s0), float(seebeck(dev, [0.3], temperature)[0]), rtol=1e-12)


def test_seebeck_is_differentiable_wrt_device_parameters():
    on0 = wire_onsite()
    e = torch.tensor([-1.2, 0.4, 1.5], dtype=F64)
    f = lambda on: seebeck(uniform_wire(on), e, 300.0).sum()  # noqa: E731
    on = on0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(on), on)
    d = torch.as_tensor(np.random.default_rng(8).normal(size=on0.shape))
    fd = float(_central(lambda t: f(on0 + t * d), torch.tensor(0.0, dtype=F64), 1e-5))
    assert abs(float((grad * d).sum()) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("temperature", [100.0, 300.0])
@pytest.mark.parametrize("bias", [0.1, -0.25])
def test_differential_conductance_vs_finite_difference_of_current(temperature, bias):
    dev = uniform_wire(wire_onsite())
    kw = dict(n_energies=256)
    g = differential_conductance(dev, bias, temperature, **kw)
    h = 1e-4
    fd = (current(dev, bias + h, temperature, **kw) - current(dev, bias - h, temperature, **kw)) / (2 * h)
    assert abs(float(g) - float(fd)) <= 1e-7 * abs(float(fd)), (float(g), float(fd))


@pytest.mark.parametrize("bias", [0.1, -0.25])
def test_differential_conductance_at_zero_temperature(bias):
    """At 0 K, I = G0 Int_{mu_R}^{mu_L} T dE, so dI/dV = G0 [T(mu_L) + T(mu_R)] / 2."""
    dev = uniform_wire(wire_onsite())
    kw = dict(n_energies=256)
    g = differential_conductance(dev, bias, 0.0, **kw)
    h = 1e-5
    fd = (current(dev, bias + h, 0.0, **kw) - current(dev, bias - h, 0.0, **kw)) / (2 * h)
    t_edges = solve(dev, torch.tensor([bias / 2, -bias / 2], dtype=F64)).transmission()
    exact = G0_S * float(t_edges.sum()) / 2
    assert abs(float(g) - float(fd)) <= 1e-6 * abs(float(fd))
    assert abs(float(g) - exact) <= 1e-6 * abs(exact)


def _dtde(device_fn, param, energies, create_graph):
    e = energies.clone().requires_grad_(True)
    t = solve(device_fn(param), e).transmission()
    (d,) = torch.autograd.grad(t.sum(), e, create_graph=create_graph)
    return d


@pytest.mark.parametrize("which", ["device onsite (mirror leads)", "right lead h01"])
def test_second_derivative_d_dparam_of_dtde(tiny, which):
    """d/dtheta of dT/dE (double backward through the device and the implicit lead backward) vs
    central differences of the autograd first derivative."""
    rng = np.random.default_rng(6)
    if which == "right lead h01":
        energies = tiny.energies
        theta0 = tiny.h01[1].clone()
        device_fn = lambda p: tiny.device(h01=[tiny.h01[0], p])  # noqa: E731
        direction = cplx(rng, 2, 2)
    else:
        energies = WIRE_ENERGIES
        theta0 = wire_onsite()
        device_fn = uniform_wire
        direction = torch.as_tensor(rng.normal(size=theta0.shape))
    w = torch.as_tensor(rng.normal(size=energies.shape))
    theta = theta0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((_dtde(device_fn, theta, energies, True) * w).sum(), theta)
    ad = float((grad.conj() * direction).real.sum()) if grad.is_complex() else float((grad * direction).sum())
    h = 1e-5
    fd = float(((_dtde(device_fn, theta0 + h * direction, energies, False)
                 - _dtde(device_fn, theta0 - h * direction, energies, False)) * w).sum() / (2 * h))
    assert abs(ad - fd) <= 1e-6 * abs(fd), (ad, fd)
