"""The batched torch lead solver (``lead_fast``) against the exact QZ mode path, its fallback, and the
O(r^3) Stein solve of the implicit backward against the Kronecker form."""

import numpy as np
import pytest
import torch

from invdesign.negf import Device, Lead, solve, surface_green_function
from invdesign.negf import lead_fast, leads
from invdesign.negf.lead_modes import surface_gf_modes
from invdesign.tb import builders, tables, transport
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.ribbons import armchair_ribbon_cell, zigzag_ribbon_cell

FLUX_QUANTUM_T_NM2 = 6.62607015e-34 / 1.602176634e-19 * 1e18


def random_lead(n, seed, singular=False, overlap=False):
    rng = np.random.default_rng(seed)
    h00 = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    h01 = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    if singular:
        h01[:, 0] = 0
        h01[1, :] = 0
    kw = {}
    if overlap:  # S(k) = s00 + s01 e^ik + h.c. positive definite: a small s01
        s01 = 0.05 * (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
        if singular:
            s01[:, 0] = 0
            s01[1, :] = 0
        kw = {"s00": np.eye(n), "s01": s01}
    return Lead((h00 + h00.conj().T) / 2, h01, **kw)


def tb_lead(kind):
    if kind == "agnr7_tnn_overlap":
        model, cell = tables.graphene_pz("TNN_Reich2002"), builders.armchair_ribbon(7)
        blocks = transport.lead_principal_layer(model, cell)[1]
    elif kind == "cnt_10_0":
        model, cell = tables.graphene_pz("NN_generic"), builders.nanotube(10, 0)
        blocks = transport.lead_principal_layer(model, cell)[1]
    elif kind == "square_strip_field":
        model = TBModel({"X": Species(("s",), {"s": 0.0})}, {("X", "X"): (Shell(1.0, {"ss_sigma": -1.0}),)})
        blocks = transport.lead_principal_layer(model, builders.square_strip(6, 1.0), magnetic_field_t=0.11 * FLUX_QUANTUM_T_NM2)[1]
    elif kind == "gaas_sp3s_so":
        model = tables.vogl_sp3s("GaAs", spin_orbit=True)
        a = tables.lattice_constant_nm(model.name)
        zb = builders.zincblende(a, "GaAs_a", "GaAs_c")
        cell = zb.repeated(2, 1)
        from invdesign.tb.structure import Structure

        blocks = transport.lead_principal_layer(model, Structure(cell.positions, cell.species, zb.lattice[:1]))[1]
    else:
        raise KeyError(kind)
    return Lead(blocks["h00"], blocks["h01"], s00=blocks["s00"], s01=blocks["s01"])


def compare(lead, energies):
    """Fast path vs exact path on the flat batch; returns (ok mask, max relative difference where ok)."""
    z = torch.as_tensor(energies).to(torch.complex128)
    n = lead.size
    blocks = [x.reshape(-1, n, n).contiguous() for x in leads.lead_blocks(lead, z, torch.complex128)]
    u, v = lead_fast.hopping_bases(lead.h01, lead.s01)
    g, ok = lead_fast.surface_gf_fast(*blocks, u, v)
    exact = torch.as_tensor(surface_gf_modes(*(b.numpy() for b in blocks)))
    both = ok & torch.isfinite(exact).flatten(1).all(-1)
    assert torch.equal(both, ok), "the fast path accepted an energy where the exact path finds a pole"
    rel = ((g - exact).abs().amax((-2, -1)) / exact.abs().amax((-2, -1)).clamp(min=1.0))[ok]
    return ok, float(rel.max()) if len(rel) else 0.0


GRID = np.linspace(-4.0, 4.0, 161) + 0.00123


@pytest.mark.parametrize("singular", [False, True])
@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_path_equals_exact_on_random_complex_leads(seed, singular, overlap):
    lead = random_lead(4, seed, singular, overlap)
    ok, err = compare(lead, GRID)
    assert ok.float().mean() > 0.9  # a few energies next to band edges go to the exact path
    assert err < 1e-11
    ok_c, err_c = compare(lead, GRID + 0.03j)  # complex energies (contour integrals)
    assert ok_c.float().mean() > 0.95 and err_c < 1e-12


@pytest.mark.parametrize("kind", ["agnr7_tnn_overlap", "cnt_10_0", "square_strip_field", "gaas_sp3s_so"])
def test_fast_path_equals_exact_on_tight_binding_leads(kind):
    """Overlap (3rd neighbours), degenerate nanotube bands, a magnetic field, spin-orbit sp3s*."""
    lead = tb_lead(kind)
    energies = np.linspace(-3.0, 3.0, 121) + 0.00123
    ok, err = compare(lead, energies)
    assert ok.float().mean() > 0.9
    assert err < 1e-11


def test_reduction_keeps_only_the_coupled_orbitals():
    lead = armchair_ribbon_cell(7).leads()[1]  # 14 atoms per cell, 3 bonds to the next cell
    u, v = lead_fast.hopping_bases(lead.h01, None)
    assert lead.size == 14 and u.shape == (14, 3) and v.shape == (14, 3)
    h01 = lead.h01.to(torch.complex128)
    torch.testing.assert_close(u @ u.mH @ h01 @ v @ v.mH, h01, atol=1e-14, rtol=0)


def test_band_edges_and_poles_go_to_the_exact_path():
    """Where eig's basis cannot be trusted (band edges, the E = 0 band touching of zigzag ribbons, a pole
    of g) the fast path declines and the exact path decides; the accepted energies agree to 1e-11."""
    chain = Lead([[0.0]], [[-1.0]])
    ok, err = compare(chain, np.array([-2.0, 2.0, -2.0 + 1e-9, 2.0 - 1e-12, 0.3]))
    assert ok.tolist()[:2] == [False, False] and ok[-1] and err < 1e-11  # at the edge itself: exact path
    zz = zigzag_ribbon_cell(4).leads()[1]
    ok, err = compare(zz, np.array([0.0, 1e-12, 1e-9, 0.5]))
    assert not ok[:3].any() and ok[3] and err < 1e-12


def test_a_surface_state_pole_is_never_accepted_however_large_m_grows():
    """At E = 0 the (13,0) tube lead (a zigzag termination) has a surface-state pole. On some CPUs eig
    gave a finite g of 4e18 with |g M - 1| = 5e19, which met |g| |M|-relative bounds because
    M = A00 - A01 g A10 grows with g; the exact path's rule (residual <= 1e-9 |g|) rejects it, and
    the device then sees no transmission inside the 0.735 eV gap."""
    from invdesign.scf.examples import nanotube_channel

    device, _ = nanotube_channel(13, 0, 2)
    z = torch.tensor([0.0, 1e-3, 0.3], dtype=torch.complex128)
    a00, a01, a10 = (x.expand(3, 52, 52) for x in leads.lead_blocks(device.left, z, torch.complex128))
    g, ok = lead_fast.surface_gf_fast(a00, a01, a10, *lead_fast.hopping_bases(device.left.h01, None), refine=False)
    assert not ok[0] and ok[1:].all()
    eye = torch.eye(52, dtype=g.dtype)
    for i in (1, 2):  # accepted members are inverses of their own M
        m = a00[i] - a01[i] @ g[i] @ a10[i]
        assert float((g[i] @ m - eye).abs().max()) <= 1e-9 * max(1.0, float(g[i].abs().max()))
    t = solve(device, torch.tensor([0.0, 0.3], dtype=torch.float64)).transmission()
    assert float(t.abs().max()) < 1e-12


def test_solve_default_equals_qz_path_transmission_and_gradient():
    """T(E) and dT/d(onsite) through the default solver equal those through the QZ-only path."""
    cell = armchair_ribbon_cell(7)
    e = torch.linspace(-2.5, 2.5, 41, dtype=torch.float64) + 0.0031
    out = {}
    for method in ("modes", "qz"):
        eps = torch.zeros(3 * 14, dtype=torch.float64, requires_grad=True)
        dev = cell.device(3)
        blocks = [b + torch.diag(eps[14 * i:14 * (i + 1)]) for i, b in enumerate(dev.blocks)]
        dev = Device(blocks, dev.couplings, dev.left, dev.right)
        t = solve(dev, e, method=method).transmission()
        out[method] = (t.detach(), torch.autograd.grad(t.sum(), eps)[0])
    torch.testing.assert_close(out["modes"][0], out["qz"][0], atol=1e-12, rtol=0)
    torch.testing.assert_close(out["modes"][1], out["qz"][1], atol=1e-10, rtol=0)


def test_lead_gradients_through_fast_path_match_finite_differences():
    """dT/d(lead on-site) with the lead itself a parameter (the implicit backward at the fast fixed point)."""
    h00 = torch.tensor([[0.2, -1.0], [-1.0, -0.1]], dtype=torch.float64)
    h01 = torch.tensor([[-0.9, 0.0], [0.3, -1.1]], dtype=torch.float64)
    e = torch.tensor([-1.3, 0.4, 1.7], dtype=torch.float64)

    def t_of(shift):
        lead = Lead(h00 + shift * torch.eye(2, dtype=torch.float64), h01)
        dev = Device([h00 + torch.diag(torch.tensor([0.5, -0.2], dtype=torch.float64))], [], lead, Lead(h00, h01))
        return solve(dev, e).transmission()

    x = torch.tensor(0.07, dtype=torch.float64, requires_grad=True)
    grad = torch.autograd.functional.jacobian(t_of, x)
    h = 1e-6
    fd = (t_of(torch.tensor(0.07 + h, dtype=torch.float64)) - t_of(torch.tensor(0.07 - h, dtype=torch.float64))) / (2 * h)
    torch.testing.assert_close(grad, fd, atol=1e-8, rtol=1e-7)


def test_surface_gf_gradcheck_through_fast_path():
    h01 = torch.tensor([[-1.0, 0.2], [0.0, -0.7]], dtype=torch.complex128)
    e = torch.tensor([0.31, -0.87], dtype=torch.float64)

    def g_of(h00):
        h00 = (h00 + h00.mH) / 2
        return surface_green_function(Lead(h00, h01), e)

    h00 = torch.tensor([[0.1, 0.3 + 0.1j], [0.3 - 0.1j, -0.2]], dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(g_of, (h00,), atol=1e-7)


@pytest.mark.parametrize("r1, r2", [(1, 1), (3, 3), (4, 2)])
def test_eigenbasis_stein_solve_equals_kronecker(r1, r2):
    rng = np.random.default_rng(r1 + 10 * r2)

    def rand(*s):
        return torch.as_tensor(rng.normal(size=s) + 1j * rng.normal(size=s))

    p, q, c = 0.4 * rand(7, r1, r1), 0.4 * rand(7, r2, r2), rand(7, r1, r2)
    with torch.no_grad():
        x, ok = leads._solve_stein_eig(p, q, c)
        ref = leads._solve_stein_kronecker(p, q, c)
        assert ok.all()
        torch.testing.assert_close(x, ref, atol=1e-12, rtol=0)
        torch.testing.assert_close(x - p @ x @ q, c, atol=1e-12, rtol=0)
        # a defective P (a Jordan block, as at a band edge): the eigenbasis fails its check, Kronecker decides
        pj = torch.zeros(1, 2, 2, dtype=torch.complex128)
        pj[0, 0, 0] = pj[0, 1, 1] = 0.9
        pj[0, 0, 1] = 1.0
        qj, cj = 0.5 * torch.eye(2, dtype=torch.complex128)[None], rand(1, 2, 2)
        xj = leads._solve_stein(pj, qj, cj)
        torch.testing.assert_close(xj - pj @ xj @ qj, cj, atol=1e-12, rtol=0)
