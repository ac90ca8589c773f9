"""The ProblemContract mixin catches what it promises to catch."""

import pytest
import torch

from invdesign.objectives import ResponseValue
from invdesign.params import Block, ParameterSpace
from invdesign.problem import Problem
from invdesign.testing import ProblemContract

D = torch.float64


class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x**2).sum()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x  # should be 2 x


class WrongGradient(Problem):
    name = "wrong_gradient"
    space = ParameterSpace([Block("x", (3,), lower=-1.0, upper=1.0)])
    objective = ResponseValue()
    grad_cost_factor = 2.0

    def simulate(self, params):
        return _WrongBackward.apply(params["x"])


class Noisy(Problem):
    name = "noisy"
    space = ParameterSpace([Block("x", (3,), lower=-1.0, upper=1.0)])
    objective = ResponseValue()
    grad_cost_factor = 2.0

    def simulate(self, params):
        return (params["x"] ** 2).sum() + 1e-3 * torch.rand((), dtype=D)  # unseeded global stream


class TestWrongGradient(ProblemContract):
    def make_problem(self):
        return WrongGradient()

    def test_gradient_matches_finite_differences(self):
        with pytest.raises(AssertionError, match="objective: autograd"):
            super().test_gradient_matches_finite_differences()


class TestNoisy(ProblemContract):
    def make_problem(self):
        return Noisy()

    def test_deterministic_under_a_seed(self):
        with pytest.raises(AssertionError):
            super().test_deterministic_under_a_seed()

    def test_gradient_matches_finite_differences(self):
        pass  # noise breaks finite differences by design
