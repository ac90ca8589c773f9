"""invdesign.fitting against closed forms: weighted linear least squares, bounds, unidentifiable
parameters, and the report tables."""

from __future__ import annotations

import math

import pytest
import torch

from invdesign.fitting import (
    gauss_newton_curvature,
    jacobian,
    levenberg_marquardt,
    markdown_table,
    parameter_table,
    residual_statistics,
    residual_table,
    value_with_uncertainty,
    weighted_residual_vector,
)

D = torch.float64


@pytest.fixture
def linear_problem():
    """Weighted linear model y = X beta + noise with unequal weights (n = 40 observations, p = 3)."""
    gen = torch.Generator().manual_seed(7)
    n, p = 40, 3
    x_design = torch.randn(n, p, generator=gen, dtype=D)
    beta = torch.tensor([1.5, -0.3, 2.0], dtype=D)
    w = 0.5 + 4 * torch.rand(n, generator=gen, dtype=D)
    y = x_design @ beta + 0.1 * torch.randn(n, generator=gen, dtype=D) / w.sqrt()

    def residuals(b: torch.Tensor) -> torch.Tensor:
        return weighted_residual_vector({"obs": x_design @ b - y}, {"obs": w})

    xtwx = x_design.T @ (w[:, None] * x_design)
    beta_hat = torch.linalg.solve(xtwx, x_design.T @ (w * y))
    r = x_design @ beta_hat - y
    s2 = float((w * r**2).sum()) / (n - p)
    return residuals, beta_hat, xtwx, s2


def test_gauss_newton_covariance_is_the_closed_form_of_weighted_linear_least_squares(linear_problem):
    residuals, beta_hat, xtwx, s2 = linear_problem
    curv = gauss_newton_curvature(residuals, beta_hat, ["a", "b", "c"])
    torch.testing.assert_close(curv.jacobian.T @ curv.jacobian, xtwx, rtol=1e-12, atol=0)
    assert curv.dof == 37
    assert curv.residual_variance == pytest.approx(s2, rel=1e-12)
    torch.testing.assert_close(curv.covariance, s2 * torch.linalg.inv(xtwx), rtol=1e-10, atol=0)
    torch.testing.assert_close(curv.sigma, (s2 * torch.linalg.inv(xtwx)).diagonal().sqrt(), rtol=1e-10, atol=0)
    assert curv.parameters() == dict(zip("abc", beta_hat.tolist()))
    assert torch.allclose(curv.correlation.diagonal(), torch.ones(3, dtype=D))
    unscaled = gauss_newton_curvature(residuals, beta_hat, scale_by_residual_variance=False)
    torch.testing.assert_close(unscaled.covariance, torch.linalg.inv(xtwx), rtol=1e-10, atol=0)
    assert unscaled.names == ("x[0]", "x[1]", "x[2]")


def test_levenberg_marquardt_reaches_the_normal_equations_solution(linear_problem):
    residuals, beta_hat, _, s2 = linear_problem
    res = levenberg_marquardt(residuals, torch.zeros(3, dtype=D))
    assert res.converged
    torch.testing.assert_close(res.x, beta_hat, rtol=1e-10, atol=1e-12)
    assert res.loss == pytest.approx(s2 * 37, rel=1e-10)


def test_levenberg_marquardt_on_rosenbrock_residuals():
    """r = (10 (y - x^2), 1 - x): a curved valley, zero residual at (1, 1)."""
    def residuals(v):
        return torch.stack([10 * (v[1] - v[0] ** 2), 1 - v[0]])

    res = levenberg_marquardt(residuals, torch.tensor([-1.2, 1.0], dtype=D))
    assert res.converged and res.loss < 1e-24
    torch.testing.assert_close(res.x, torch.ones(2, dtype=D), rtol=0, atol=1e-11)


def test_levenberg_marquardt_stops_on_an_active_bound():
    """Minimum of |x - c|^2 with c outside the box: the bound coordinate stays put, the other converges."""
    c = torch.tensor([3.0, 0.25], dtype=D)
    res = levenberg_marquardt(lambda v: v - c, torch.zeros(2, dtype=D), lower=torch.tensor([-1.0, -1.0], dtype=D),
                              upper=torch.tensor([1.0, 1.0], dtype=D))
    assert res.converged and res.iterations < 20
    assert res.x[0] == 1.0  # held exactly on the bound
    # the free coordinate to what the loss can resolve: its misfit squared is below eps * loss = 4.4e-16
    assert abs(float(res.x[1]) - 0.25) < 3e-8
    assert res.loss == pytest.approx(4.0)


def test_unidentifiable_combination_shows_as_a_zero_singular_value():
    """Only a + b enters: the pseudo-inverse keeps the covariance finite, the Jacobian says why."""
    t = torch.linspace(0, 1, 10, dtype=D)
    curv = gauss_newton_curvature(lambda v: (v[0] + v[1]) * t - t + 0.01 * t**2, torch.tensor([0.4, 0.6], dtype=D))
    sv = curv.singular_values
    assert sv[-1] < 1e-12 * sv[0]
    assert torch.isfinite(curv.covariance).all()


def test_curvature_works_under_no_grad_and_inference_mode(linear_problem):
    residuals, beta_hat, xtwx, _ = linear_problem
    with torch.no_grad():
        j1 = jacobian(residuals, beta_hat)
    with torch.inference_mode():
        curv = gauss_newton_curvature(residuals, beta_hat)
    torch.testing.assert_close(j1.T @ j1, xtwx, rtol=1e-12, atol=0)
    assert torch.isfinite(curv.sigma).all()


def test_weighted_residual_vector_order_weights_and_errors():
    r = {"b": torch.tensor([1.0, 2.0], dtype=D), "a": torch.tensor(3.0, dtype=D)}
    v = weighted_residual_vector(r, {"a": 4.0, "b": torch.tensor([1.0, 9.0], dtype=D)})
    torch.testing.assert_close(v, torch.tensor([6.0, 1.0, 6.0], dtype=D))  # order of the weights
    with pytest.raises(KeyError, match="no weight"):
        weighted_residual_vector(r, {"a": 1.0})
    with pytest.raises(KeyError, match="no residuals"):
        weighted_residual_vector(r, {"a": 1.0, "b": 1.0, "c": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        weighted_residual_vector(r, {"a": -1.0, "b": 1.0})


def test_residual_statistics_and_tables():
    stats = residual_statistics({"g": torch.tensor([0.003, -0.004], dtype=D), "empty": torch.zeros(0)}, scale=1000)
    assert stats["g"]["n"] == 2
    assert stats["g"]["rms"] == pytest.approx(math.sqrt(12.5))
    assert stats["g"]["max_abs"] == pytest.approx(4.0)
    assert stats["g"]["mean"] == pytest.approx(-0.5)
    assert stats["empty"]["n"] == 0 and math.isnan(stats["empty"]["rms"])
    table = residual_table({"g": stats["g"]}, "meV")
    assert table.splitlines()[0] == "| group | n | RMS (meV) | max abs (meV) | mean (meV) |"
    assert table.splitlines()[2] == "| g | 2 | 3.536 | 4 | -0.5 |"
    assert value_with_uncertainty(-2.971234, 0.003456) == "-2.9712 ± 0.0035"
    assert value_with_uncertainty(12.3, 0.0) == "12.3 ± 0"
    ptab = parameter_table({"gamma0": -2.5, "s0": 0.0}, {"gamma0": 0.02, "s0": 0.001}, {"gamma0": "eV"},
                           {"published": {"gamma0": -3.033}})
    rows = ptab.splitlines()
    assert rows[0] == "| parameter | unit | value ± 1σ | relative σ | published |"
    assert rows[2] == "| gamma0 | eV | -2.500 ± 0.020 | 0.008 | -3.033 |"
    assert rows[3] == "| s0 |  | 0.0000 ± 0.0010 | - | - |"
    assert markdown_table(["|x|"], [["a|b"]]).splitlines()[2] == "| a\\|b |"  # a pipe would split the cell
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [[1]])
