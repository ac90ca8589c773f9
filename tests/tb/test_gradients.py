"""Gradients of band energies and of T(E) w.r.t. Slater-Koster parameters and atomic positions, checked
against central finite differences (fourth order) and ``torch.autograd.gradcheck``."""

import math

import numpy as np
import pytest
import torch

from invdesign.negf import solve
from invdesign.tb import bands, builders, tables, transport
from invdesign.tb.model import Shell, Species
from invdesign.tb.structure import Structure

F64 = torch.float64


def fd_gradient(f, x0: np.ndarray, h: float) -> np.ndarray:
    """Fourth-order central differences of a function of a vector (no autograd): shape ``(*f's shape, len(x0))``."""
    columns = []
    for i in range(len(x0)):
        vals = []
        for s in (-2, -1, 1, 2):
            x = x0.copy()
            x[i] += s * h
            with torch.no_grad():
                vals.append(np.asarray(f(torch.tensor(x, dtype=F64)), dtype=float))
        columns.append((vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h))
    return np.stack(columns, axis=-1)


def ad_gradient(f, x0: np.ndarray) -> tuple[float, np.ndarray]:
    x = torch.tensor(x0, dtype=F64, requires_grad=True)
    y = f(x)
    (g,) = torch.autograd.grad(y, x)
    return float(y.detach()), g.numpy()


def assert_grad_close(ad, fd, rtol=1e-6, atol_scale=1e-7):
    scale = max(np.abs(fd).max(), 1e-3)
    np.testing.assert_allclose(ad, fd, rtol=rtol, atol=atol_scale * scale)


# ---- (a) band energies w.r.t. Slater-Koster parameters ----------------------------------------------------

GAAS = tables.vogl_sp3s("GaAs")
A_GAAS = tables.lattice_constant_nm(GAAS.name)
GAAS_CELL = builders.zincblende(A_GAAS, "GaAs_a", "GaAs_c")
GAAS_KEYS = ["onsite/GaAs_a/p", "onsite/GaAs_c/s", "onsite/GaAs_c/s*", "bond/GaAs_a-GaAs_c/0/ss_sigma",
             "bond/GaAs_a-GaAs_c/0/sp_sigma", "bond/GaAs_a-GaAs_c/0/ps_sigma", "bond/GaAs_a-GaAs_c/0/pp_pi",
             "bond/GaAs_a-GaAs_c/0/pp_sigma", "bond/GaAs_a-GaAs_c/0/Sp_sigma"]
G = bands.fcc_point("G", A_GAAS)
X = bands.fcc_point("X", A_GAAS)
L = bands.fcc_point("L", A_GAAS)
K_GENERIC = torch.tensor([1.3, -2.1, 4.4], dtype=F64)


def gaas_bloch(x, keys=GAAS_KEYS, model=GAAS, cell=GAAS_CELL):
    return bands.bloch_hamiltonian(model.replace(dict(zip(keys, x))), cell)


BAND_LOSSES = {
    # sums over complete degenerate sets are smooth everywhere (Gamma: 1 + 3 valence bands)
    "sum_valence": lambda b: b.energies(torch.stack([G, L, K_GENERIC]))[:, :4].sum(),
    "sum_all_generic": lambda b: (b.energies(K_GENERIC[None]) ** 2).sum(),
    # the direct gap: conduction band minus the triply degenerate valence top (a symmetric loss)
    "gap_Gamma": lambda b: b.energies(G[None])[0, 4] - b.energies(G[None])[0, 3],
    "gap_X": lambda b: b.energies(X[None])[0, 4] - b.energies(G[None])[0, 3],
    "mass_auto": lambda b: bands.effective_mass(b, G, [1.0, 0.0, 0.0], 4, "auto"),
    "mass_stencil": lambda b: bands.effective_mass(b, G, [1.0, 1.0, 0.0], 4, "stencil", step=0.05),
    "mass_stencil3_L": lambda b: bands.effective_mass(b, L, [1.0, 1.0, 1.0], 4, "stencil3", step=0.05),
    # a band degenerate at k0 (heavy/light holes at Gamma): the mean of the degenerate set
    "mass_auto_degenerate": lambda b: bands.effective_mass(b, G, [1.0, 0.0, 0.0], 3, "auto"),
}


X0_GAAS = np.array([float(GAAS.named_parameters()[k]) for k in GAAS_KEYS])


@pytest.fixture(scope="module")
def band_fd_jacobian():
    """d(loss)/d(parameters) for every loss of BAND_LOSSES by fourth-order differences, sharing the
    Bloch Hamiltonians of the displaced parameter sets."""
    names = list(BAND_LOSSES)

    def f(x):
        b = gaas_bloch(x)
        return torch.stack([BAND_LOSSES[n](b) for n in names])

    return dict(zip(names, fd_gradient(f, X0_GAAS, 1e-3)))


@pytest.mark.parametrize("loss", list(BAND_LOSSES))
def test_band_losses_vs_finite_differences(loss, band_fd_jacobian):
    def f(x):
        return BAND_LOSSES[loss](gaas_bloch(x))

    _, ad = ad_gradient(f, X0_GAAS)
    assert np.isfinite(ad).all()
    fd = band_fd_jacobian[loss]
    assert np.abs(fd).max() > 1e-3  # the loss does depend on the parameters
    assert_grad_close(ad, fd)
    # not vacuous: a 1e-5 relative error in the largest component would be caught
    wrong = ad.copy()
    i = int(np.argmax(np.abs(fd)))
    wrong[i] *= 1 + 2e-5
    with pytest.raises(AssertionError):
        assert_grad_close(wrong, fd)


def test_band_gradients_with_spin_orbit():
    """Kramers-degenerate bands (Vogl GaAs + SO): sums over pairs, the SO splitting and a pair's mass."""
    model = tables.vogl_sp3s("GaAs", spin_orbit=True)
    keys = ["spin_orbit/GaAs_a", "spin_orbit/GaAs_c", "onsite/GaAs_a/p", "bond/GaAs_a-GaAs_c/0/pp_pi"]
    x0 = np.array([float(model.named_parameters()[k]) for k in keys])

    def f(x):
        b = gaas_bloch(x, keys, model)
        e_g = b.energies(G[None])[0]
        split = e_g[4:8].mean() - e_g[2:4].mean()  # Delta_SO at Gamma
        return split + b.energies(L[None])[0, :8].sum() + 0.1 * bands.effective_mass(b, G, [1.0, 0.0, 0.0], 8, "auto")

    _, ad = ad_gradient(f, x0)
    fd = fd_gradient(f, x0, 1e-4)
    assert_grad_close(ad, fd)
    assert abs(ad[0]) > 0.5  # the split-off energy moves with the anion's lambda


def test_band_energy_gradcheck_with_overlap():
    """gradcheck of E_n(k) (generalised eigenproblem, NN + overlap) w.r.t. gamma0, s0, e2p and k."""
    model = tables.graphene_pz("NN_Saito_with_overlap")
    keys = ["bond/C-C/0/pp_pi", "overlap/C-C/0/pp_pi", "onsite/C/p"]
    sheet = builders.graphene_sheet()

    def f(x, k):
        b = bands.bloch_hamiltonian(model.replace(dict(zip(keys, x))), sheet)
        return b.energies(k)

    x = torch.tensor([-3.033, 0.129, 0.1], dtype=F64, requires_grad=True)
    k = torch.tensor([[3.1, -4.7, 0.0], [10.0, 2.0, 0.0]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x, k))


def test_band_gradient_wrt_positions():
    """Strain: band energies of a distance-scaled graphene ribbon w.r.t. its atomic positions."""
    model = tables.graphene_pz("TNN_Reich2002", scaling=("power", 3.84))
    cell = builders.armchair_ribbon(4)
    k = torch.tensor([[0.0, 0, 0], [3.0, 0, 0]], dtype=F64)

    def f(p):
        c = Structure(p.reshape(-1, 3), cell.species, cell.lattice)
        e = bands.bloch_hamiltonian(model, c).energies(k)
        return e[:, 3:5].sum() + e[1, 0]

    x0 = cell.positions.reshape(-1).numpy().copy()
    x0 += np.random.default_rng(0).uniform(-2e-3, 2e-3, size=x0.shape)
    _, ad = ad_gradient(f, x0)
    fd = fd_gradient(f, x0, 1e-5)
    assert np.abs(ad).max() > 1.0
    assert_grad_close(ad, fd, rtol=1e-5)


# ---- (b), (c) T(E) of a doped armchair ribbon through the NEGF engine ---------------------------------------

ENERGIES = torch.tensor([-0.7, 0.3, 0.9], dtype=F64)
ACC = builders.ACC_NM
DISTS = (ACC, 3**0.5 * ACC, 2 * ACC)


def doped_system(model, x, overlap: bool, width: int = 5, cells: int = 3, site_xy=(0.6, 0.12)):
    """Dopant 'N' on one site of a ``width``-AGNR device of ``cells`` cells: x = (onsite, hoppings per
    shell..., overlaps per shell...) for as many shells as the model has."""
    n_sh = len(model.bonds[("C", "C")])
    hops, ovs = x[1:1 + n_sh], x[1 + n_sh:1 + 2 * n_sh]
    shells = tuple(Shell(DISTS[i], {"pp_pi": hops[i]}, {"pp_pi": ovs[i]} if overlap else None) for i in range(n_sh))
    m = model.with_species("N", Species(("pz",), {"p": x[0]}), {("C", "N"): shells})
    dev, left, right = transport.wire(builders.armchair_ribbon(width), cells)
    site = dev.nearest_sites([site_xy])[0]
    return transport.two_terminal(m, dev.with_species([site], "N"), left, right)


def test_transmission_vs_dopant_parameters_orthogonal():
    model = tables.graphene_pz("NN_generic")

    def f(x):
        T = solve(doped_system(model, x, False).device, ENERGIES).transmission()
        return (T * torch.tensor([1.0, 2.0, 3.0], dtype=F64)).sum()

    x0 = np.array([-1.0, -2.4])
    y, ad = ad_gradient(f, x0)
    fd = fd_gradient(f, x0, 1e-4)
    assert np.abs(fd).min() > 1e-3
    assert_grad_close(ad, fd)


def test_transmission_vs_dopant_parameters_with_overlap():
    """13-parameter style (on-site, hopping and overlap of three shells) on TNN_Reich2002 with overlap."""
    model = tables.graphene_pz("TNN_Reich2002")

    def f(x):
        return solve(doped_system(model, x, True).device, ENERGIES).transmission().sum()

    x0 = np.array([-1.0, -2.6, -0.09, -0.28, 0.08, 0.02, 0.03])
    _, ad = ad_gradient(f, x0)
    fd = fd_gradient(f, x0, 1e-4)
    assert np.abs(fd).max() > 1e-2
    assert_grad_close(ad, fd)


@pytest.mark.parametrize("set_name", ["NN_generic", "TNN_Reich2002"])
def test_transmission_vs_positions(set_name):
    """A distance-scaled model: dT/d(positions of the dopant and its neighbours), device H and the
    device-lead couplings both depend on them."""
    model = tables.graphene_pz(set_name, scaling=("power", 3.84))
    dev, left, right = transport.wire(builders.armchair_ribbon(5), 3)
    site = dev.nearest_sites([[0.6, 0.12]])[0]
    # the dopant, one neighbour, and an atom next to the right lead (its coupling to the lead moves)
    moved = [site, dev.nearest_sites([[0.6, 0.12]], count=2)[1], len(dev) - 1]
    species = dev.with_species([site], "C").species
    base = dev.positions.clone()

    def f(x):
        pos = base.clone()
        pos[moved] = pos[moved] + x.reshape(len(moved), 3)
        s = Structure(pos, species)
        system = transport.two_terminal(model, s, left, right)
        return solve(system.device, ENERGIES).transmission().sum()

    x0 = np.random.default_rng(2).uniform(-3e-3, 3e-3, size=3 * len(moved))
    x0[2::3] = 0.0  # in plane: z enters at second order only
    _, ad = ad_gradient(f, x0)
    fd = fd_gradient(f, x0, 1e-5)
    assert np.abs(fd).max() > 0.1
    assert_grad_close(ad, fd, rtol=1e-5)


def test_transmission_gradcheck_tiny():
    """gradcheck on a 3-AGNR, one device cell: dopant on-site, hopping, overlap; and energies."""
    model = tables.graphene_pz("NN_Saito_with_overlap")

    def f(x, e):
        system = doped_system(model, x, True, width=3, cells=1, site_xy=(0.0, 0.0))
        return solve(system.device, e).transmission()

    x = torch.tensor([-0.5, -2.8, 0.11], dtype=F64, requires_grad=True)
    e = torch.tensor([-1.5, 1.8], dtype=F64, requires_grad=True)  # inside the first band (0.4 is in the gap)
    T = f(x, e)
    assert ((T > 0.5) & (T < 1)).all()
    (g,) = torch.autograd.grad(T.sum(), x)
    assert g.abs().min() > 1e-2
    assert torch.autograd.gradcheck(f, (x, e), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("x0", [(0.0, 0.0), (1e-3, 1e-4)])
def test_transmission_gradient_at_and_near_zero_valued_integrals(x0):
    """Third-neighbour integrals exactly 0 keep their place in the slicing, so their gradient is right
    (it was lost when the slicing came from the values); the same a hair away from 0."""
    model = tables.graphene_pz("TNN_Reich2002")
    dev, left, right = transport.wire(builders.armchair_ribbon(5), 3)
    U = torch.tensor(np.random.default_rng(0).uniform(-0.5, 0.5, len(dev)))

    def f(x):
        m = model.replace({"bond/C-C/2/pp_pi": x[0], "overlap/C-C/2/pp_pi": x[1]})
        system = transport.two_terminal(m, dev, left, right, potential_ev=U)
        return solve(system.device, torch.tensor([0.3, 0.9], dtype=F64)).transmission().sum()

    _, ad = ad_gradient(f, np.array(x0))
    fd = fd_gradient(f, np.array(x0), 1e-4)
    assert_grad_close(ad, fd, rtol=1e-5)


@pytest.mark.parametrize("method,step,rtol", [("auto", 1e-3, 1e-8), ("stencil", 0.05, 1e-8), ("stencil3", 1e-3, 1e-6)])
def test_effective_mass_of_a_chain_analytic(method, step, rtol):
    """E(k) = e0 + 2 t cos(k a): m* = hbar^2 / (2 |t| a^2) at the band bottom, dm*/dt = -m*/t, and the
    mass at a generic k is hbar^2 / (-2 t a^2 cos(k a))."""
    from invdesign.tb.model import TBModel

    a = 0.25
    hbar2_over_m0 = 2 * 0.0380998211615486  # eV nm^2
    t = torch.tensor(-1.3, dtype=F64, requires_grad=True)
    model = TBModel({"X": Species(("s",), {"s": 0.4})}, {("X", "X"): (Shell(a, {"ss_sigma": t}),)})
    bloch = bands.bloch_hamiltonian(model, builders.chain(a, "X"))
    m0 = bands.effective_mass(bloch, torch.zeros(3, dtype=F64), [1.0, 0.0, 0.0], 0, method, step)
    ref = hbar2_over_m0 / (2 * 1.3 * a**2)
    assert float(m0.detach()) == pytest.approx(ref, rel=rtol)
    (g,) = torch.autograd.grad(m0, t)
    assert float(g) == pytest.approx(ref / 1.3, rel=max(rtol, 1e-7))
    k = 2.1
    m1 = bands.effective_mass(bloch.__class__(bloch.lattice, bloch.translations, bloch.h.detach(), None),
                              torch.tensor([k, 0.0, 0.0], dtype=F64), [1.0, 0.0, 0.0], 0, method, step)
    assert float(m1) == pytest.approx(hbar2_over_m0 / (2 * 1.3 * a**2 * math.cos(k * a)), rel=rtol)
