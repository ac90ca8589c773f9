"""Holes from the scripted audit (issue 15): each input that used to give a silent wrong answer or an error
from deep inside is now either right or a clear error that names the input."""

import math

import numpy as np
import pytest
import torch

from invdesign.negf import Device, Lead, current, differential_conductance, seebeck, solve
from invdesign.negf.constants import G0_S
from invdesign.negf.errors import NEGFInputError
from invdesign.tb.ribbons import zigzag_ribbon_cell

LEAD = Lead([[0.0]], [[-1.0]])
CHAIN = Device([torch.zeros(1, 1, dtype=torch.float64)], [], LEAD, LEAD)  # perfect chain: T = 1 in |E| < 2


@pytest.mark.parametrize("call, match", [
    (lambda: seebeck(CHAIN, [0.1], -300.0), "temperature_k must be >= 0 K"),  # was: sign-flipped S
    (lambda: seebeck(CHAIN, [0.1], float("nan")), "temperature_k must be a finite number"),
    (lambda: current(CHAIN, 0.1, 300.0, window_kt=-40.0), "window_kt must be > 0"),  # was: -I
    (lambda: current(CHAIN, 0.1, 300.0, window_kt=0.0), "window_kt must be > 0"),
    (lambda: current(CHAIN, 0.1, 300.0, n_energies=0), "n_energies must be a positive integer"),  # was: 41x low
    (lambda: current(CHAIN, 0.1, 300.0, n_energies=-5), "n_energies must be a positive integer"),
    (lambda: current(CHAIN, float("nan"), 300.0), "bias must be a finite voltage"),  # was: 'cannot convert NaN'
    (lambda: current(CHAIN, 0.1, float("nan")), "temperature_k must be a finite number"),
    (lambda: current(CHAIN, 0.1, -1.0), "temperature_k must be >= 0 K"),
    (lambda: current(CHAIN, 0.1, 300.0, mu=float("inf")), "mu must be a finite number"),
])
def test_bad_transport_arguments_are_refused(call, match):
    with pytest.raises(NEGFInputError, match=match):
        call()


def test_non_positive_definite_overlaps_are_refused():
    with pytest.raises(NEGFInputError, match=r"Device.overlap blocks\[0\] is not positive definite"):
        Device([[[0.0]]], [], LEAD, LEAD, overlap=([[[0.0]]], []))  # S = 0
    with pytest.raises(NEGFInputError, match=r"Lead overlap S\(k\).*not positive definite: smallest eigenvalue -2"):
        Lead([[0.0]], [[-1.0]], s00=[[1.0]], s01=[[0.6]])  # S(k = pi) = 1 - 1.2 < 0
    Lead([[0.0]], [[-1.0]], s00=[[1.0]], s01=[[0.1]])  # a proper overlap passes


def test_mismatched_batch_shapes_name_the_inputs():
    b2, b3 = torch.zeros(2, 1, 1, dtype=torch.float64), torch.zeros(3, 1, 1, dtype=torch.float64)
    with pytest.raises(NEGFInputError, match=r"Device.blocks\[1\] has batch shape \(3,\) but Device.blocks\[0\] has \(2,\)"):
        Device([b2, b3], [[[-1.0]]], LEAD, LEAD)
    with pytest.raises(NEGFInputError, match=r"Device.left.h00 has batch shape \(3,\)"):
        Device([b2], [], Lead(b3, [[-1.0]]), LEAD)
    assert solve(Device([b2], [], Lead(torch.zeros(1, 1, 1, dtype=torch.float64), [[-1.0]]), LEAD),
                 [0.1]).transmission().shape == (2, 1)  # size-1 batch dimensions broadcast


@pytest.mark.parametrize("temperature_k", [0.0, 0.01, 0.1, 1.0, 10.0, 300.0])
def test_perfect_chain_current_at_any_temperature(temperature_k):
    """I = G0 V exactly (band wider than the window); was 7e-4 off at 0.01 K (Fermi edges between nodes)."""
    i = current(CHAIN, 0.1, temperature_k)
    assert abs(float(i) / (G0_S * 0.1) - 1) < 1e-12
    g = differential_conductance(CHAIN, 0.1, temperature_k)
    assert abs(float(g.detach()) / G0_S - 1) < 1e-10


def test_low_temperature_current_of_a_resonance_converges():
    dev = Device([torch.full((1, 1), 0.3, dtype=torch.float64)], [], LEAD, LEAD)
    coarse, fine = (float(current(dev, 0.2, 0.05, n_energies=n)) for n in (200, 4000))
    assert abs(coarse / fine - 1) < 1e-12


def test_zigzag_ribbon_derivatives_finite_at_the_lead_pole():
    """E = 0 is a pole of the zigzag lead's surface Green's function (solved at E +- 1e-6 eV and averaged):
    T was right but dT/dE and S were NaN, and so was every gradient of a grid holding E = 0."""
    cell = zigzag_ribbon_cell(4)
    e = torch.tensor([0.0, 0.05], dtype=torch.float64, requires_grad=True)
    t = solve(cell.device(3), e).transmission()  # pristine: T = 1 on the plateau around 0
    (dt_de,) = torch.autograd.grad(t.sum(), e)
    assert torch.allclose(t.detach(), torch.ones(2, dtype=torch.float64), atol=1e-8)
    assert torch.isfinite(dt_de).all() and float(dt_de.abs().max()) < 1e-6
    s = seebeck(cell.device(3), [0.0, 0.05], 300.0)
    assert torch.isfinite(s).all() and float(s.detach().abs().max()) < 1e-12
    # a disordered device: the gradient of T(0) w.r.t. the potential is finite and matches finite differences
    u0 = torch.tensor(np.random.default_rng(0).uniform(-0.3, 0.3, (3, 8)), dtype=torch.float64)
    u = u0.clone().requires_grad_(True)
    e0 = torch.tensor([0.0, 0.1], dtype=torch.float64, requires_grad=True)
    t = solve(cell.device(3, u), e0).transmission()
    dt_du, dt_de = torch.autograd.grad(t[0], (u, e0))
    assert torch.isfinite(dt_du).all() and torch.isfinite(dt_de).all()
    h, du = 1e-6, torch.zeros_like(u0)
    du[1, 2] = h
    with torch.no_grad():
        tp, tm = (float(solve(cell.device(3, u0 + s * du), [0.0]).transmission()) for s in (1, -1))
    assert abs(float(dt_du[1, 2]) - (tp - tm) / (2 * h)) < 1e-5 * max(1.0, abs(float(dt_du[1, 2])))
