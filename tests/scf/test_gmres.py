"""``invdesign.scf.adjoint.gmres`` on its own: small dense systems against ``torch.linalg.solve``, real and
complex, well and ill conditioned; its residual history, its ConvergenceError, right preconditioning and
restarts (the cyclic shift, on which restarted GMRES provably stagnates and full GMRES ends at step n)."""

from __future__ import annotations

import pytest
import torch

from invdesign.negf.errors import ConvergenceError
from invdesign.scf.adjoint import gmres

DTYPES = (torch.float64, torch.complex128)
N = 12


def _identity(v: torch.Tensor) -> torch.Tensor:
    return v


def _random(n: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    return torch.randn(n, n, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _with_singular_values(singular: torch.Tensor, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """``U diag(s) V^H`` with random unitary ``U``, ``V``: condition number ``max(s) / min(s)``."""
    u, _ = torch.linalg.qr(_random(len(singular), dtype, seed))
    v, _ = torch.linalg.qr(_random(len(singular), dtype, seed + 1))
    return u @ torch.diag(singular.to(dtype)) @ v.mH


def _rhs(n: int, dtype: torch.dtype, seed: int = 7) -> torch.Tensor:
    return torch.randn(n, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _relative_residual(a: torch.Tensor, x: torch.Tensor, b: torch.Tensor) -> float:
    return float((b - a @ x).norm() / b.norm())


@pytest.mark.parametrize("dtype", DTYPES)
def test_well_conditioned_matches_solve(dtype):
    a = _random(N, dtype, 0) + 6.0 * torch.eye(N, dtype=dtype)  # eigenvalues clustered around 6
    b = _rhs(N, dtype)
    x, history = gmres(lambda v: a @ v, b, _identity, 1e-13, 100)
    exact = torch.linalg.solve(a, b)
    assert float((x - exact).norm() / exact.norm()) < 1e-12
    assert _relative_residual(a, x, b) < 1e-12
    assert history[-1] < 1e-13 and len(history) <= N
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in zip(history, history[1:]))  # minimal residual


@pytest.mark.parametrize("dtype", DTYPES)
def test_ill_conditioned_reaches_the_accuracy_of_solve(dtype):
    # condition 1e6: a backward-stable GMRES reaches a relative residual of ~ eps * cond, here ~1e-11
    condition = 1e6
    a = _with_singular_values(torch.logspace(0, -6, N, dtype=torch.float64), dtype, 3)
    b = _rhs(N, dtype)
    x, history = gmres(lambda v: a @ v, b, _identity, 1e-10, 100)
    exact = torch.linalg.solve(a, b)
    assert history[-1] < 1e-10 and len(history) <= N + 1  # n steps span the whole space
    assert _relative_residual(a, x, b) < 1e-9  # the true residual, not only the Arnoldi estimate
    # forward error bounded by the condition number times the residual (solve's own error is ~ cond * eps)
    assert float((x - exact).norm() / exact.norm()) < condition * 1e-9


@pytest.mark.parametrize("dtype", DTYPES)
def test_right_preconditioner(dtype):
    # columns scaled over 4 decades: plain GMRES needs all n steps; Jacobi on the right undoes the scaling
    # (A M = I + 0.05 G, eigenvalues near 1) and the exact inverse leaves nothing to do after one step
    n = 40
    scale = torch.logspace(0, 4, n, dtype=torch.float64).to(dtype)
    a = (torch.eye(n, dtype=dtype) + 0.05 * _random(n, dtype, 5)) @ torch.diag(scale)
    b = _rhs(n, dtype)
    exact = torch.linalg.solve(a, b)
    inverse = torch.linalg.inv(a)
    x, history = gmres(lambda v: a @ v, b, lambda v: inverse @ v, 1e-12, 50)
    assert len(history) == 1 and float((x - exact).norm() / exact.norm()) < 1e-12
    jacobi = torch.diagonal(a)
    x_j, history_j = gmres(lambda v: a @ v, b, lambda v: v / jacobi, 1e-12, 200, restart=n)
    x_p, history_plain = gmres(lambda v: a @ v, b, _identity, 1e-12, 200, restart=n)
    for x in (x_j, x_p):
        assert float((x - exact).norm() / exact.norm()) < 1e-11
    assert len(history_j) < 30 < n <= len(history_plain)


def _cyclic_shift(n: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.roll(torch.eye(n, dtype=dtype), 1, dims=0)  # e_i -> e_{i+1 mod n}


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_gmres_ends_at_step_n_on_the_cyclic_shift(dtype):
    # for b = e_1 the Krylov space after k < n steps is span(e_1..e_k), and A of it is orthogonal to e_1:
    # the minimal residual stays exactly 1 until step n, where it drops to 0
    a, b = _cyclic_shift(N, dtype), torch.zeros(N, dtype=dtype)
    b[0] = 1.0
    x, history = gmres(lambda v: a @ v, b, _identity, 1e-12, 100, restart=N)
    assert len(history) == N
    assert history[:-1] == pytest.approx([1.0] * (N - 1), abs=1e-14) and history[-1] < 1e-14
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=0, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_restarted_gmres_stagnates_on_the_cyclic_shift_and_says_so(dtype):
    a, b = _cyclic_shift(N, dtype), torch.zeros(N, dtype=dtype)
    b[0] = 1.0
    calls = []

    def matvec(v):
        calls.append(1)
        return a @ v

    with pytest.raises(ConvergenceError, match=r"relative residual 1e-12 in 40 iterations") as info:
        gmres(matvec, b, _identity, 1e-12, 40, restart=N - 1)
    # every restart begins again from e_1's residual: no progress at all, one history entry per product
    assert info.value.history == pytest.approx([1.0] * 40, abs=1e-14)
    restarts = -(-40 // (N - 1)) - 1
    assert len(calls) == 40 + restarts  # the Krylov products plus one true residual per restart


@pytest.mark.parametrize("dtype", DTYPES)
def test_restarts_converge_and_keep_the_true_residual(dtype):
    # positive definite Hermitian part (2 I plus a skew-Hermitian part): GMRES(m) converges for every m
    g = _random(N, dtype, 11)
    a = 2.0 * torch.eye(N, dtype=dtype) + 0.1 * (g - g.mH)
    b = _rhs(N, dtype)
    x, history = gmres(lambda v: a @ v, b, _identity, 1e-12, 200, restart=3)
    assert len(history) > 6  # it did restart, more than once
    assert _relative_residual(a, x, b) < 1e-11
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-10, atol=0)


def test_too_few_iterations_raise_with_the_history():
    a = _with_singular_values(torch.logspace(0, -6, N, dtype=torch.float64), torch.float64, 13)
    b = _rhs(N, torch.float64)
    with pytest.raises(ConvergenceError) as info:
        gmres(lambda v: a @ v, b, _identity, 1e-12, 4)
    assert len(info.value.history) == 4 and info.value.history[-1] > 1e-12


def test_zero_right_hand_side_and_lucky_breakdown():
    a = 2.0 * torch.eye(N, dtype=torch.float64)
    x, history = gmres(lambda v: a @ v, torch.zeros(N, dtype=torch.float64), _identity, 1e-12, 10)
    assert torch.equal(x, torch.zeros(N, dtype=torch.float64)) and history == [0.0]
    b = _rhs(N, torch.float64)  # A = 2 I: the Krylov space is exhausted after one step (h_21 = 0)
    x, history = gmres(lambda v: a @ v, b, _identity, 1e-12, 10)
    assert len(history) == 1
    torch.testing.assert_close(x, b / 2, rtol=0, atol=1e-15)
