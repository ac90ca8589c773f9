"""RGF sweeps against the dense inverse of the block-tridiagonal matrix (``invdesign.negf.rgf``)."""

import numpy as np
import pytest
import torch

from invdesign.negf import rgf


def blocks(sizes, n_energies, sparse, seed, batch=(), grad=False):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.complex(torch.randn(*shape, generator=gen, dtype=torch.float64),
                             torch.randn(*shape, generator=gen, dtype=torch.float64))

    diag = [rand(*batch, n_energies, b, b) + 3 * torch.eye(b) for b in sizes]
    up, down = [], []
    for i in range(len(sizes) - 1):
        u, d = rand(*batch, n_energies, sizes[i], sizes[i + 1]), rand(*batch, n_energies, sizes[i + 1], sizes[i])
        if sparse == "diagonal" and sizes[i] == sizes[i + 1]:  # site to site, as in square lattices
            mask = torch.eye(sizes[i], dtype=torch.float64)
            u, d = u * mask, d * mask
        elif sparse:  # a few edge orbitals couple, as in graphene ribbons
            mask = torch.zeros(sizes[i], sizes[i + 1], dtype=torch.float64)
            mask[:2, -2:] = 1
            mask[-1, 0] = 1
            u, d = u * mask, d * mask.T
        up.append(u.requires_grad_(grad))
        down.append(d)
    return diag, up, down


def dense_inverse(diag, up, down):
    """``(G, offsets)``: the inverse of the assembled block-tridiagonal matrix and the slice offsets."""
    off = np.concatenate([[0], np.cumsum([d.shape[-1] for d in diag])])
    m = torch.zeros(*diag[0].shape[:-2], off[-1], off[-1], dtype=torch.complex128)
    for i, d in enumerate(diag):
        m[..., off[i]:off[i + 1], off[i]:off[i + 1]] = d
    for i, (u, d) in enumerate(zip(up, down)):
        m[..., off[i]:off[i + 1], off[i + 1]:off[i + 2]] = u
        m[..., off[i + 1]:off[i + 2], off[i]:off[i + 1]] = d
    return torch.linalg.inv(m), off


def dense_last_first(diag, up, down):
    g, off = dense_inverse(diag, up, down)
    return g[..., off[-2]:off[-1], : off[1]]


@pytest.mark.parametrize("sizes", [[4], [4, 5], [4, 6, 5, 7], [6] * 8, [5, 2, 5], [5, 5, 3, 3, 3]])
@pytest.mark.parametrize("sparse", [False, True, "diagonal"])
@pytest.mark.parametrize("grad", [False, True])
def test_last_first_block_equals_dense_inverse(sizes, sparse, grad):
    # 6 energies and 6-orbital slices: a right-hand side shaped like a batch of vectors must stay a matrix
    diag, up, down = blocks(sizes, 6, sparse, seed=len(sizes), batch=(2,), grad=grad)
    ref = dense_last_first(diag, up, down)
    torch.testing.assert_close(rgf.last_first_block(diag, up, down).detach(), ref.detach(),
                               atol=1e-13 * float(ref.detach().abs().max()), rtol=0)


def test_coupled_orbitals_are_found_and_grad_keeps_all():
    diag, up, down = blocks([4, 5], 3, True, seed=0)
    p, q, diagonal = rgf._coupled(up[0], down[0])
    assert p.tolist() == [0, 1, 3] and q.tolist() == [0, 3, 4] and not diagonal
    assert rgf._coupled(up[0].requires_grad_(True), down[0]) == (None, None, False)
    _, up_d, down_d = blocks([3, 3], 2, "diagonal", seed=1)
    assert rgf._coupled(up_d[0], down_d[0]) == (None, None, True)


def test_last_first_block_gradient_matches_dense():
    diag, up, down = blocks([3, 4, 3], 2, True, seed=5)
    d0 = diag[1].clone().requires_grad_(True)
    w = torch.randn(3, 3, dtype=torch.complex128)
    g_fast = torch.autograd.grad((rgf.last_first_block([diag[0], d0, diag[2]], up, down) * w).real.sum(), d0)[0]
    g_ref = torch.autograd.grad((dense_last_first([diag[0], d0, diag[2]], up, down) * w).real.sum(), d0)[0]
    torch.testing.assert_close(g_fast, g_ref, atol=1e-12, rtol=0)


def dense_first_column(diag, up, down):
    g, off = dense_inverse(diag, up, down)
    return [g[..., off[i]:off[i + 1], : off[1]] for i in range(len(diag))]


@pytest.mark.parametrize("sizes", [[4], [4, 5], [4, 6, 5, 7], [5, 2, 5]])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("grad", [False, True])
def test_first_column_times_equals_dense_inverse(sizes, sparse, grad):
    diag, up, down = blocks(sizes, 6, sparse, seed=7 + len(sizes), batch=(2,), grad=grad)
    y = torch.randn(sizes[0], 2, dtype=torch.complex128)
    for col, ref in zip(rgf.first_column_times(diag, up, down, y), dense_first_column(diag, up, down)):
        ref = ref @ y
        torch.testing.assert_close(col.detach(), ref.detach(), atol=1e-13 * float(ref.detach().abs().max()), rtol=0)


@pytest.mark.parametrize("sizes", [[4], [4, 5], [4, 6, 5, 7], [5, 2, 5]])
@pytest.mark.parametrize("sparse", [False, True])
def test_diagonal_blocks_and_full_diagonal_equal_dense_inverse(sizes, sparse):
    """Both kernels for G_ii (one inverse per slice, and three) and the off-diagonal blocks."""
    diag, up, down = blocks(sizes, 5, sparse, seed=11 + len(sizes), batch=(2,))
    g, off = dense_inverse(diag, up, down)
    tol = 1e-13 * float(g.abs().max())
    gl, gr = rgf.left_connected(diag, up, down), rgf.right_connected(diag, up, down)
    gd, g_up, g_down = rgf.diagonal_blocks(diag, up, down, gr, off_diagonal=True)
    full = rgf.full_diagonal(diag, up, down, gl, gr)
    upper, lower = rgf.off_diagonal(up, down, gl, full)
    for i in range(len(sizes)):
        ref = g[..., off[i]:off[i + 1], off[i]:off[i + 1]]
        torch.testing.assert_close(gd[i], ref, atol=tol, rtol=0)
        torch.testing.assert_close(full[i], ref, atol=tol, rtol=0)
    for i in range(len(sizes) - 1):
        for ours in (g_up[i], upper[i]):
            torch.testing.assert_close(ours, g[..., off[i]:off[i + 1], off[i + 1]:off[i + 2]], atol=tol, rtol=0)
        for ours in (g_down[i], lower[i]):
            torch.testing.assert_close(ours, g[..., off[i + 1]:off[i + 2], off[i]:off[i + 1]], atol=tol, rtol=0)
    assert rgf.diagonal_blocks(diag, up, down, gr)[1:] == ([], [])


def test_coupling_patterns_match_the_blocks_and_follow_edits():
    h = torch.zeros(4, 5, dtype=torch.float64)
    h[0, 0], h[3, 4] = 1.0, -2.0
    (pattern,) = rgf.coupling_patterns([h])
    up = -h.to(torch.complex128).expand(3, 4, 5)
    expected = rgf._coupled(up, up.mH)
    assert [None if x is None else x.tolist() for x in pattern[:2]] == [x.tolist() for x in expected[:2]]
    assert pattern[2] == expected[2]
    h[1, 2] = 0.5  # an in-place edit bumps the version: the memo must not serve the old pattern
    (edited,) = rgf.coupling_patterns([h])
    assert edited[0].tolist() == [0, 1, 3]
    s = torch.zeros(4, 5, dtype=torch.float64)
    s[2, 1] = 0.1  # an overlap entry where h is zero couples too (up = z s - h)
    (with_s,) = rgf.coupling_patterns([h], [s])
    assert with_s[0] is None and with_s[1].tolist() == [0, 1, 2, 4]  # None: every row couples
    assert rgf.coupling_patterns([h.clone().requires_grad_(True)]) == [(None, None, False)]
    p, q, d = rgf.mirrored([with_s])[0]
    assert p.tolist() == [0, 1, 2, 4] and q is None and not d
