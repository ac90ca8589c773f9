"""Reuse of lead surface Green's functions (``invdesign.negf.lead_cache``): hits on equal values only,
never stale, gradients unchanged, bounded."""

import pytest
import torch

from invdesign.negf import Device, Lead, lead_cache, solve
from invdesign.tb.ribbons import armchair_ribbon_cell

E = torch.linspace(-2.0, 2.0, 21, dtype=torch.float64) + 0.0123


@pytest.fixture(autouse=True)
def fresh_cache():
    lead_cache.clear()
    lead_cache.configure()
    yield
    lead_cache.clear()
    lead_cache.configure()


def chain_device(lead_onsite, eps=0.3):
    h00 = torch.as_tensor(lead_onsite, dtype=torch.float64).reshape(1, 1)
    lead = Lead(h00, [[-1.0]])
    return Device([torch.tensor([[eps]], dtype=torch.float64)], [], lead, Lead([[0.0]], [[-1.0]]))


def test_repeated_solve_reuses_the_leads_and_gives_identical_results():
    dev = armchair_ribbon_cell(7).device(3)
    t1 = solve(dev, E).transmission()
    misses = lead_cache.info()["misses"]
    t2 = solve(armchair_ribbon_cell(7).device(3), E).transmission()  # new objects, equal values
    info = lead_cache.info()
    assert info["hits"] >= 1 and info["misses"] == misses
    assert torch.equal(t1, t2)


def test_changed_or_mutated_lead_values_are_solved_again():
    h00 = torch.tensor([[0.0]], dtype=torch.float64)
    lead = Lead(h00, [[-1.0]])
    dev = Device([torch.tensor([[0.3]], dtype=torch.float64)], [], lead, lead)
    t_before = solve(dev, E).transmission()
    h00 += 0.2  # in place: the same tensor object now holds other values
    t_after = solve(dev, E).transmission()
    lead_cache.configure(0)
    t_ref = solve(dev, E).transmission()
    assert torch.equal(t_after, t_ref)
    assert (t_after - t_before).abs().max() > 1e-3
    # other energies are another key too
    lead_cache.configure()
    t_shifted = solve(dev, E + 1e-3).transmission()
    lead_cache.configure(0)
    assert torch.equal(t_shifted, solve(dev, E + 1e-3).transmission())


def test_gradients_reach_a_lead_parameter_through_a_cache_hit():
    def grad(cached):
        lead_cache.configure(lead_cache.DEFAULT_MAX_BYTES if cached else 0)
        x = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
        t = solve(chain_device(x.reshape(1, 1)), E).transmission()
        return torch.autograd.grad(t.sum(), x)[0]

    g_off = grad(False)
    grad(True)  # fills the cache
    hits = lead_cache.info()["hits"]
    g_hit = grad(True)
    assert lead_cache.info()["hits"] > hits
    torch.testing.assert_close(g_hit, g_off, atol=1e-14, rtol=0)
    assert g_off.abs() > 1e-3


def test_cache_is_bounded_and_can_be_disabled():
    lead_cache.configure(max_bytes=10_000)
    for k in range(6):
        solve(chain_device(0.05 * k), E).transmission()
    info = lead_cache.info()
    assert info["bytes"] <= 10_000 and info["entries"] >= 1
    lead_cache.configure(0)
    assert lead_cache.info()["entries"] == 0
    solve(chain_device(0.0), E).transmission()
    assert lead_cache.info()["entries"] == 0
