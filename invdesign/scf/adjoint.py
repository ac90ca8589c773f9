"""Implicit differentiation of the converged self-consistent potential (conventions: ``invdesign.scf``).

The converged ``U*`` solves ``F(U, u0, theta) = U - u0 - K dn(U, theta) = 0``. For an upstream
gradient ``Ubar`` the backward pass solves the adjoint equation

    (dF/dU)^T lambda = (I - D^T K) lambda = Ubar,          D = d dn / d U,

by right-preconditioned GMRES, where each product ``D^T w`` is one vector-Jacobian product through a
single NEGF charge evaluation at ``U*`` (its graph is built once and kept for the solve), and the
preconditioner is ``(I - D0 K)^-1`` with the loop's diagonal charge response ``D0``. Then
``u0bar = lambda`` and ``thetabar = (d dn / d theta)^T K lambda`` (one more VJP). Memory is one
charge graph, whatever the number of loop iterations; nothing is unrolled.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import torch

from invdesign.negf.errors import ConvergenceError
from invdesign.scf.loop import FixedPointResult, SCFOptions, solve_fixed_point


class SelfConsistentProblem(Protocol):
    """What :func:`implicit_fixed_point` needs from a problem (``invdesign.scf.device`` has one).

    ``charge(U, params, cache)`` returns ``dn`` (n,), differentiable w.r.t. ``U`` and ``params``
    (``cache``: may the lead self-energies be reused without their graph); ``leads_need_grad(needs)``
    says whether gradients must reach the leads for the given ``needs_input_grad`` of ``params``;
    ``kernel`` is ``K`` (n, n); ``options`` the :class:`SCFOptions`; ``kt`` the thermal energy (eV).
    """

    kernel: torch.Tensor
    options: SCFOptions
    kt: float

    def charge(self, potential: torch.Tensor, params: Sequence[torch.Tensor], cache: bool) -> torch.Tensor: ...

    def leads_need_grad(self, needs: Sequence[bool]) -> bool: ...


def gmres(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
          precond: Callable[[torch.Tensor], torch.Tensor], tol: float, max_iter: int,
          restart: int = 50) -> tuple[torch.Tensor, list[float]]:
    """Right-preconditioned restarted GMRES for ``A x = b``; returns ``(x, relative residuals)``."""
    x = torch.zeros_like(b)
    b_norm = float(b.norm())
    history: list[float] = []
    if b_norm == 0.0:
        return x, [0.0]
    used = 0
    while used < max_iter:
        r = b - matvec(x) if used else b.clone()
        beta = float(r.norm())
        if beta / b_norm < tol:
            history.append(beta / b_norm)
            return x, history
        basis = [r / beta]
        hess = torch.zeros(restart + 1, restart, dtype=b.dtype)
        y = None
        for j in range(min(restart, max_iter - used)):
            w = matvec(precond(basis[j]))
            used += 1
            for i in range(j + 1):  # modified Gram-Schmidt; vdot conjugates basis[i] (complex systems)
                hess[i, j] = torch.vdot(basis[i], w)
                w = w - hess[i, j] * basis[i]
            hess[j + 1, j] = w.norm()
            rhs = torch.zeros(j + 2, dtype=b.dtype)
            rhs[0] = beta
            # gelsd: the default CPU driver (gelsy) is not bitwise reproducible from call to call
            y = torch.linalg.lstsq(hess[: j + 2, : j + 1], rhs.unsqueeze(-1), driver="gelsd").solution.squeeze(-1)
            res = float((hess[: j + 2, : j + 1] @ y - rhs).norm()) / b_norm
            history.append(res)
            if res < tol or float(hess[j + 1, j].real) < 1e-300:  # a norm: real, >= 0
                break
            basis.append(w / hess[j + 1, j])
        x = x + precond(torch.stack(basis[: len(y)], dim=-1) @ y)
        if history[-1] < tol:
            return x, history
    raise ConvergenceError(f"adjoint GMRES did not reach relative residual {tol:g} in {max_iter} iterations",
                           history)


class _ImplicitFixedPoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem, holder: dict, u0: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        detached = [p.detach() for p in params]
        result = solve_fixed_point(lambda u: problem.charge(u, detached, True), problem.kernel, u0.detach(),
                                   holder.get("predictor"), initial=holder.get("initial"), kt=problem.kt,
                                   options=problem.options)
        holder["result"] = result
        ctx.problem, ctx.response = problem, result.response
        ctx.save_for_backward(result.potential, *params)
        return result.potential.clone()

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        problem = ctx.problem
        potential, *params = ctx.saved_tensors
        needs = ctx.needs_input_grad[3:]
        kernel = problem.kernel
        with torch.enable_grad():
            u_leaf = potential.detach().requires_grad_(True)
            leaves = [p.detach().requires_grad_(bool(nd)) for p, nd in zip(params, needs)]
            # the lead self-energies may be reused unless gradients must reach them
            dn = problem.charge(u_leaf, leaves, not problem.leads_need_grad(needs))
        n = potential.shape[-1]
        eye = torch.eye(n, dtype=kernel.dtype)
        lu = torch.linalg.lu_factor(eye - ctx.response.unsqueeze(-1) * kernel)  # I - D0 K

        def matvec(v):
            (vjp,) = torch.autograd.grad(dn, u_leaf, kernel @ v, retain_graph=True)
            return v - vjp

        def precond(v):
            return torch.linalg.lu_solve(*lu, v.unsqueeze(-1)).squeeze(-1)

        opts = problem.options
        lam, history = gmres(matvec, grad_u.detach(), precond, opts.adjoint_tol, opts.adjoint_max_iter)
        problem.last_adjoint_history = history
        want = [leaf for leaf, nd in zip(leaves, needs) if nd]
        grads = iter(torch.autograd.grad(dn, want, kernel @ lam, allow_unused=True) if want else ())
        out = []
        for leaf, nd in zip(leaves, needs):
            g = next(grads) if nd else None
            out.append(torch.zeros_like(leaf) if (nd and g is None) else g)
        return (None, None, lam if ctx.needs_input_grad[2] else None, *out)


def implicit_fixed_point(problem, u0: torch.Tensor, params: Sequence[torch.Tensor], *,
                         initial: torch.Tensor | None = None,
                         predictor=None) -> tuple[torch.Tensor, FixedPointResult]:
    """Converged ``U*`` (eV) of ``U = u0 + K dn(U, params)``, differentiable w.r.t. ``u0`` and ``params``.

    Returns ``(U, result)``: ``U`` carries the implicit backward; ``result`` has the detached charge,
    the residual history and the response ``D0`` (the adjoint's preconditioner). ``predictor``: see
    :func:`invdesign.scf.loop.solve_fixed_point`; ``initial``: warm start.
    """
    holder = {"initial": initial, "predictor": predictor}
    u = _ImplicitFixedPoint.apply(problem, holder, u0, *params)
    return u, holder["result"]
