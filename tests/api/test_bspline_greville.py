"""Greville abscissae of ``BSplineBasis`` (the one home of its knots; the FET problem places its baseline by them)."""

import numpy as np
import pytest
import torch

from invdesign.params import BSplineBasis


@pytest.mark.parametrize("n_coeffs, degree", [(6, 3), (14, 3), (5, 2), (4, 1)])
def test_linear_profiles_are_reproduced_from_their_values_at_the_abscissae(n_coeffs, degree):
    basis = BSplineBasis(n_coeffs, 40, degree)
    g = basis.greville
    assert g.shape == (n_coeffs,) and g[0] == 0.0 and g[-1] == 1.0 and np.all(np.diff(g) > 0)
    x = torch.linspace(0.0, 1.0, 40, dtype=torch.float64)
    profile = basis(torch.as_tensor(0.3 - 2.0 * g))
    torch.testing.assert_close(profile, 0.3 - 2.0 * x, rtol=0, atol=1e-14)


def test_knots_are_clamped_and_uniform_and_degree_zero_uses_midpoints():
    basis = BSplineBasis(6, 20)
    assert np.array_equal(basis.knots, [0, 0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1, 1])
    assert np.allclose(basis.greville, [0, 1 / 9, 1 / 3, 2 / 3, 8 / 9, 1], atol=1e-15)
    assert np.allclose(BSplineBasis(4, 8, degree=0).greville, [0.125, 0.375, 0.625, 0.875], atol=1e-15)
