"""The real-axis rule of the SCF charge (``invdesign.negf.energies.edge_panel_grid``)."""

import math

import pytest
import torch

from invdesign.negf.energies import edge_panel_grid
from invdesign.negf.errors import NEGFInputError


def test_van_hove_singularities_at_breakpoints_are_integrated_to_rounding():
    # Int_{-1}^{2} [1/sqrt(E - 0.3) for E > 0.3] * exp(-E) dE + Int sqrt(|E + 0.4|) cos(E) dE: closed forms
    # by mpmath-free series are awkward, so compare a coarse grid with a very fine one of the same rule and
    # with the exact value of the pure singular part
    e, w = edge_panel_grid(-1.0, 2.0, [0.3, -0.4], nodes=12, max_panel_ev=0.5)
    singular = torch.where(e > 0.3, 1 / torch.sqrt((e - 0.3).clamp(min=1e-300)), torch.zeros_like(e))
    assert float((w * singular).sum()) == pytest.approx(2 * math.sqrt(1.7), rel=1e-13)
    f = singular * torch.exp(-e) + torch.sqrt((e + 0.4).abs()) * torch.cos(e)
    e2, w2 = edge_panel_grid(-1.0, 2.0, [0.3, -0.4], nodes=24, max_panel_ev=0.1)
    f2 = torch.where(e2 > 0.3, 1 / torch.sqrt((e2 - 0.3).clamp(min=1e-300)), torch.zeros_like(e2)) * torch.exp(-e2) \
        + torch.sqrt((e2 + 0.4).abs()) * torch.cos(e2)
    assert float((w * f).sum()) == pytest.approx(float((w2 * f2).sum()), rel=1e-12)
    assert float(w.sum()) == pytest.approx(3.0, rel=1e-14)
    assert bool((e > -1.0).all() and (e < 2.0).all())


def test_breakpoints_outside_are_ignored_and_panels_follow_the_length():
    e, _ = edge_panel_grid(0.0, 1.0, [-0.5, 1.5, 0.0, 1.0], nodes=4, max_panel_ev=0.3)
    assert len(e) == 4 * 4  # one segment, ceil(1 / 0.3) = 4 panels
    e, _ = edge_panel_grid(0.0, 1.0, [0.5], nodes=4, max_panel_ev=10.0)
    assert len(e) == 2 * 2 * 4  # two segments, at least two panels each


def test_nodes_move_with_the_breakpoint_and_the_window_differentiably():
    edge = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    lo = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    # Int_lo^2 1/sqrt(E - edge) [E > edge] dE = 2 sqrt(2 - edge): d/d edge = -1/sqrt(2 - edge), d/d lo = 0
    e, w = edge_panel_grid(lo, 2.0, [edge], nodes=10, max_panel_ev=0.5)
    val = (w * torch.where(e > edge, 1 / torch.sqrt((e - edge).clamp(min=1e-300)), torch.zeros_like(e))).sum()
    d_edge, d_lo = torch.autograd.grad(val, [edge, lo])
    assert float(d_edge) == pytest.approx(-1 / math.sqrt(1.7), rel=1e-10)
    assert abs(float(d_lo)) < 1e-12


@pytest.mark.parametrize("args", [(1.0, 0.0, [], 4, 0.1), (0.0, 1.0, [], 0, 0.1), (0.0, 1.0, [], 4, 0.0)])
def test_bad_arguments_are_refused(args):
    with pytest.raises(NEGFInputError):
        edge_panel_grid(*args)
