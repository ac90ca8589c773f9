"""A point outside the problem's box is refused as a failed evaluation naming the coordinate (was: a value
returned with no flag), while points on the box (and within rounding of it) are evaluated."""

import torch

from invdesign.testing.toy_problems import TOY_PROBLEMS


def test_evaluate_one_outside_the_box_is_a_failed_evaluation():
    p = TOY_PROBLEMS["bounded_quadratic"]()  # box [0, 1]^3
    ev = p.evaluate_one(torch.tensor([1.5, 0.2, 0.3], dtype=torch.float64))
    assert ev.failed and not ev.feasible and ev.reason.startswith("OutOfBounds")
    assert "z[0] = 1.5 not in [0.0, 1.0]" in ev.reason
    nan = p.evaluate_one(torch.tensor([float("nan"), 0.2, 0.3], dtype=torch.float64))
    assert nan.failed and "OutOfBounds" in nan.reason
    for z in ([1.0, 0.0, 0.5], [1.0 + 1e-12, -1e-12, 0.5]):
        ev = p.evaluate_one(torch.tensor(z, dtype=torch.float64), need_grad=True)
        assert not ev.failed and ev.grad is not None


def test_unbounded_coordinates_are_never_out_of_bounds():
    from tests.optimizers.test_opt_line_search import _FreeRosenbrock

    p = _FreeRosenbrock()
    assert not p.evaluate_one(torch.tensor([1e6, -1e6], dtype=torch.float64)).failed
