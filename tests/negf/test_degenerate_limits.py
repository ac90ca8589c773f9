"""Degenerate limits: dI/dV at zero bias and zero temperature (G0 T(mu), not 0), and second derivatives
with respect to lead hoppings whose value is zero (the structurally-nonzero pattern must not drop them)."""

import torch

from invdesign.negf import G0_S, Device, Lead, differential_conductance, surface_green_function


def test_zero_bias_zero_temperature_conductance_is_g0_times_t():
    """dI/dV at V = 0, T = 0 is G0 T(mu), not 0 (the signed window keeps I smooth in V)."""
    lead = Lead([[0.0]], [[-1.0]])
    dev = Device([[[0.5]]], [], lead, lead)
    t_mu = 4 / (4 + 0.25)  # impurity eps_d = 0.5 at E = 0 (analytic.json chain.impurity formula)
    assert abs(float(differential_conductance(dev, 0.0, 0.0)) - G0_S * t_mu) < 1e-12 * G0_S
    assert abs(float(differential_conductance(dev, 1e-7, 0.0)) - G0_S * t_mu) < 1e-9 * G0_S


def test_second_derivatives_reach_lead_hoppings_that_are_zero():
    h01 = torch.tensor([[-1.0, 0.2], [0.0, 0.0]], dtype=torch.complex128, requires_grad=True)
    h00 = torch.tensor([[0.1, 0.3], [0.3, -0.2]], dtype=torch.complex128)
    e = torch.tensor([0.3], dtype=torch.float64)

    def g(h):
        return surface_green_function(Lead(h00, h), e, eta=0.05).real

    assert torch.autograd.gradgradcheck(g, (h01,))
