"""Energies where E S - H - Sigma is exactly singular (a state decoupled from the leads sits at E).

The observables are finite and continuous there; the solve re-evaluates those energies at E +- delta.
"""

import torch

from invdesign.negf import Device, Lead, solve
from invdesign.tb import ribbon_junction, tables, two_terminal

LEAD = Lead(h00=[[0.0]], h01=[[-1.0]])


def _chain_with_dangling_site(eps: float, dangling: float):
    """One chain site plus a site with no hopping at all (exactly decoupled) in the same slice."""
    h = torch.tensor([[eps, 0.0], [0.0, dangling]], dtype=torch.float64)
    coupling = torch.tensor([[-1.0, 0.0]], dtype=torch.float64)
    lead = Lead(LEAD.h00, LEAD.h01, coupling)
    return Device([h], [], lead, lead)


def test_decoupled_state_at_the_requested_energy():
    device = _chain_with_dangling_site(0.0, 0.3)
    e = torch.tensor([0.3, 0.2999, 0.5], dtype=torch.float64)
    sol = solve(device, e)
    t = sol.transmission()
    assert torch.isfinite(t).all()
    assert torch.allclose(t, torch.ones(3, dtype=torch.float64), atol=1e-10)  # perfect chain
    assert torch.allclose(sol.transmission_right_to_left(), t, atol=1e-10)
    a_l, a_r = sol.spectral_functions()
    assert torch.isfinite(a_l).all() and torch.isfinite(a_r).all()


def test_gradient_is_finite_next_to_a_decoupled_state():
    eps = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    h = torch.stack([torch.stack([eps, torch.tensor(0.0, dtype=torch.float64)]),
                     torch.tensor([0.0, 0.3], dtype=torch.float64)])
    lead = Lead(LEAD.h00, LEAD.h01, torch.tensor([[-1.0, 0.0]], dtype=torch.float64))
    t = solve(Device([h], [], lead, lead), torch.tensor([0.3, 0.7], dtype=torch.float64)).transmission()
    (g,) = torch.autograd.grad(t.sum(), eps)
    assert torch.isfinite(g)
    # single impurity in a t = -1 chain: Sigma = (E - i sqrt(4 - E^2)) / 2 per lead, T = (4 - E^2) / (eps^2 + 4 - E^2)
    def closed(e, x):
        return (4 - e * e) / (x * x + 4 - e * e)
    h_ = 1e-6
    fd = sum((closed(e, 0.2 + h_) - closed(e, 0.2 - h_)) / (2 * h_) for e in (0.3, 0.7))
    assert abs(float(g) - float(fd)) < 1e-6


def test_graphene_junction_at_zero_energy():
    """A 7-4 junction has states decoupled from the leads at E = 0; T(0) is the limit from both sides."""
    system = two_terminal(tables.graphene_pz("NN_generic"), *ribbon_junction(7, 4, 2, 2))
    t = solve(system.device, torch.tensor([0.0, 1e-7, -1e-7, 2.5], dtype=torch.float64)).transmission()
    assert torch.isfinite(t).all()
    assert abs(float(t[0]) - float(t[1])) < 1e-8 and abs(float(t[0]) - float(t[2])) < 1e-8
