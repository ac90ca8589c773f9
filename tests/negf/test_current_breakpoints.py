"""Current quadrature with panel breaks at the leads' band edges (``current(..., breakpoints="leads")``).

T(E) of a clean ribbon is a staircase with steps at the lead band edges; a step inside a Gauss-Legendre
panel limits the quadrature to algebraic convergence. With the edges as panel boundaries the
integrand is smooth on every panel and the rule converges exponentially. The band edges themselves
are tested with ``negf.lead_bands`` (``test_lead_bands.py``).
"""

import pytest
import torch

from invdesign.negf.current import current, gauss_legendre_grid
from invdesign.tb import armchair_ribbon, tables, two_terminal, wire


def ribbon():
    dev, left, right = wire(armchair_ribbon(7), 3)
    return two_terminal(tables.graphene_pz("NN_generic"), dev, left, right).device


def test_breakpoints_make_the_current_converge_exponentially():
    d = ribbon()
    ref = current(d, 0.4, 300.0, mu=0.6, n_energies=4000, breakpoints="leads")
    dense_plain = current(d, 0.4, 300.0, mu=0.6, n_energies=20000)
    assert abs(float(dense_plain / ref) - 1) < 1e-4  # the same integral
    for n, plain_error in ((96, 5e-4), (400, 3e-4)):
        plain = abs(float(current(d, 0.4, 300.0, mu=0.6, n_energies=n) / ref) - 1)
        broken = abs(float(current(d, 0.4, 300.0, mu=0.6, n_energies=n, breakpoints="leads") / ref) - 1)
        assert plain > plain_error  # a step inside a panel: slow convergence
        assert broken < (1e-4 if n == 96 else 1e-12)


@pytest.mark.parametrize("lo,hi", [(-1.0, 2.0), (2.0, -1.0)])
def test_grid_with_breakpoints_integrates_polynomials_exactly_and_keeps_the_sign(lo, hi):
    e, w = gauss_legendre_grid(lo, hi, 40, breakpoints=[0.0, 0.5, 7.0])
    assert torch.allclose((w * e**5).sum(), torch.tensor((hi**6 - lo**6) / 6, dtype=torch.float64), atol=1e-12)
    assert torch.isclose(w.sum(), torch.tensor(hi - lo, dtype=torch.float64))
    inside = ((e > 0) & (e < 0.5)).sum()
    assert inside > 0 and not torch.isclose(e, torch.zeros_like(e)).any()


def test_bias_derivative_with_breakpoints_equals_finite_differences():
    """Breakpoints are fixed numbers: I(V) stays one smooth quadrature away from a change of panel count."""
    d = ribbon()
    v = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    i = current(d, v, 300.0, mu=0.6, n_energies=200, breakpoints="leads")
    (g,) = torch.autograd.grad(i, v)
    h = 1e-6
    fd = (current(d, 0.3 + h, 300.0, mu=0.6, n_energies=200, breakpoints="leads")
          - current(d, 0.3 - h, 300.0, mu=0.6, n_energies=200, breakpoints="leads")) / (2 * h)
    assert abs(float(g / fd) - 1) < 1e-7


def test_unknown_breakpoint_mode_is_an_error():
    from invdesign.negf.errors import NEGFInputError

    with pytest.raises(NEGFInputError, match="breakpoints"):
        current(ribbon(), 0.1, 300.0, breakpoints="lead")
