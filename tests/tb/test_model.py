"""TBModel and Hamiltonian assembly: Hermiticity, overlap, parameters by name, distance scaling, shells,
dopants, potentials and input errors."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from invdesign.tb import builders, tables
from invdesign.tb.bands import bloch_hamiltonian
from invdesign.tb.hamiltonian import add_potential, coupling_blocks, orbital_offsets
from invdesign.tb.model import Shell, Species, TBModel
from invdesign.tb.slater_koster import sk_block
from invdesign.tb.structure import Structure


def cluster(crystal: Structure, reps: int, jitter: float = 0.0, seed: int = 0) -> Structure:
    """A finite piece of a periodic structure (``reps`` cells along every lattice vector), positions
    jittered by up to ``jitter`` nm (generic bond directions, still inside the shell tolerance)."""
    s = crystal
    while s.lattice is not None:
        s = s.repeated(reps, 0)
    if jitter:
        rng = np.random.default_rng(seed)
        s = Structure(s.positions + torch.tensor(rng.uniform(-jitter, jitter, size=s.positions.shape)), s.species)
    return s


def zb(model, material):
    a = tables.lattice_constant_nm(model.name)
    return builders.zincblende(a, f"{material}_a", f"{material}_c")


MODELS = {
    "NN_Saito_with_overlap": lambda: (tables.graphene_pz("NN_Saito_with_overlap"), builders.graphene_sheet()),
    "TNN_Reich2002": lambda: (tables.graphene_pz("TNN_Reich2002"), builders.graphene_sheet()),
    "TNN_Reich2002_power": lambda: (tables.graphene_pz("TNN_Reich2002", scaling=("power", 3.84)),
                                    builders.graphene_sheet()),
    "vogl_GaAs_SO": lambda: (tables.vogl_sp3s("GaAs", spin_orbit=True),
                             zb(tables.vogl_sp3s("GaAs", spin_orbit=True), "GaAs")),
    "klimeck_InAs": lambda: (tables.klimeck_sp3s("InAs"), zb(tables.klimeck_sp3s("InAs"), "InAs")),
    "boykin_Si": lambda: (tables.boykin_sp3d5s_si(),
                          builders.diamond(tables.lattice_constant_nm("boykin2004/Si"), "Si")),
    "jancu_GaAs": lambda: (tables.jancu_sp3d5s("GaAs"), zb(tables.jancu_sp3d5s("GaAs"), "GaAs")),
}


def assert_hermitian(M, atol=1e-13):
    assert (M - M.mH).abs().max().item() <= atol * max(1.0, M.abs().max().item())


@pytest.mark.parametrize("name", list(MODELS))
def test_cluster_hermitian_and_overlap_positive(name):
    model, crystal = MODELS[name]()
    reps = 3 if crystal.lattice.shape[0] == 2 else 2
    c = cluster(crystal, reps, jitter=0.002, seed=1)
    H, S = coupling_blocks(model, c, c, onsite=True)
    n = orbital_offsets(model, c.species)[-1]
    assert H.shape == (n, n)
    assert H.dtype == (torch.complex128 if model.spinful else torch.float64)
    assert_hermitian(H)
    assert H.abs().sum() > 0 and (H - torch.diag(torch.diagonal(H))).abs().max() > 0.01  # bonds were found
    assert (S is not None) == model.has_overlap
    if S is not None:
        assert_hermitian(S)
        torch.testing.assert_close(torch.diagonal(S).real, torch.ones(n, dtype=torch.float64))
        assert torch.linalg.eigvalsh(S).min() > 0.1
    # the coupling of two different structures, seen from either side
    a = Structure(c.positions[: len(c) // 2], c.species[: len(c) // 2])
    b = Structure(c.positions[len(c) // 2:], c.species[len(c) // 2:])
    Hab, Sab = coupling_blocks(model, a, b)
    Hba, Sba = coupling_blocks(model, b, a)
    torch.testing.assert_close(Hab, Hba.mH, rtol=0, atol=1e-13)
    assert Hab.abs().max() > 0.01
    if S is not None:
        torch.testing.assert_close(Sab, Sba.mH, rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", list(MODELS))
def test_bloch_matrices_hermitian(name):
    model, crystal = MODELS[name]()
    bloch = bloch_hamiltonian(model, crystal)
    rng = np.random.default_rng(5)
    k = torch.tensor(rng.normal(scale=10.0, size=(4, 3)))
    if crystal.lattice.shape[0] == 2:
        k[:, 2] = 0
    H, S = bloch.matrices(k)
    for i in range(len(k)):
        assert_hermitian(H[i], 1e-12)
        if S is not None:
            assert_hermitian(S[i], 1e-12)
            assert torch.linalg.eigvalsh(0.5 * (S[i] + S[i].mH)).min() > 0
    # H(-k) = H(k)^* (real-space blocks are real for spinless models)
    if not model.spinful:
        H2, _ = bloch.matrices(-k)
        torch.testing.assert_close(H2, H.conj(), rtol=0, atol=1e-12)


def test_bloch_translations_are_closed_under_inversion():
    """h[-R] = h[R]^dagger for every translation R found (what makes H(k) Hermitian)."""
    model = tables.graphene_pz("TNN_Reich2002")
    b = bloch_hamiltonian(model, builders.armchair_ribbon(5))
    T = b.translations
    for r in range(len(T)):
        match = torch.nonzero((T + T[r]).abs().amax(1) < 1e-12).flatten()
        assert len(match) == 1
        torch.testing.assert_close(b.h[match[0]], b.h[r].mT, rtol=0, atol=0)
        torch.testing.assert_close(b.s[match[0]], b.s[r].mT, rtol=0, atol=0)


def test_graphene_dispersion_with_overlap():
    """NN + overlap: E(k) = (e2p +- gamma0 |f|) / (1 +- s0 |f|) (Saito) at a generic k and at K."""
    model = tables.graphene_pz("NN_Saito_with_overlap")
    sheet = builders.graphene_sheet()
    bloch = bloch_hamiltonian(model, sheet)
    acc = 0.142
    # bond vectors from A (origin) to its three B neighbours; the builder's B sits at (a1 + a2)/3
    b_pos = sheet.positions[1, :2].numpy()
    nb = np.array([b_pos, b_pos - sheet.lattice[0, :2].numpy(), b_pos - sheet.lattice[1, :2].numpy()])
    assert np.allclose(sorted(np.linalg.norm(nb, axis=1)), [acc] * 3)
    for k in (np.array([3.1, -4.7]), np.array([4 * math.pi / (3 * math.sqrt(3) * acc), 0.0])):
        f = abs(np.exp(1j * nb @ k).sum())
        g0, s0 = -3.033, 0.129
        ref = sorted([(g0 * f) / (1 + s0 * f), (-g0 * f) / (1 - s0 * f)])
        e = bloch.energies(torch.tensor([[k[0], k[1], 0.0]]))[0].numpy()
        np.testing.assert_allclose(e, ref, atol=1e-12)


# ---- parameters by name --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["TNN_Reich2002", "vogl_GaAs_SO", "jancu_GaAs"])
def test_named_parameters_round_trip(name):
    model, crystal = MODELS[name]()
    c = cluster(crystal, 2, jitter=0.001)
    params = model.named_parameters()
    assert all(k.split("/")[0] in ("onsite", "bond", "overlap", "spin_orbit") for k in params)
    H0, S0 = coupling_blocks(model, c, c, onsite=True)
    for values in (params, {k: torch.tensor(float(v), dtype=torch.float64) for k, v in params.items()}):
        same = model.replace(values)
        assert same.named_parameters().keys() == params.keys()
        H1, S1 = coupling_blocks(same, c, c, onsite=True)
        # float64 tensors and Python floats must give the same H (see test_spin_orbit_float_precision)
        torch.testing.assert_close(H1, H0, rtol=0, atol=1e-15 if not model.spinful or values is params else 1e-7)
        if S0 is not None:
            torch.testing.assert_close(S1, S0, rtol=0, atol=0)
    # every parameter matters: replacing any one changes H or S
    for key in list(params)[:: max(1, len(params) // 8)]:
        changed = model.replace({key: float(params[key]) + 0.05})
        assert changed.named_parameters()[key] == pytest.approx(float(params[key]) + 0.05)
        H2, S2 = coupling_blocks(changed, c, c, onsite=True)
        diff = (H2 - H0).abs().max() + (0 if S0 is None else (S2 - S0).abs().max())
        assert diff > 1e-3, key
    with pytest.raises(KeyError, match="unknown model parameters"):
        model.replace({"bond/X-Y/0/ss_sigma": 1.0})


def test_spin_orbit_float_and_float64_tensor_agree():
    model = tables.vogl_sp3s("GaAs", spin_orbit=True)
    s = Structure([[0, 0, 0]], ("GaAs_a",))
    H0, _ = coupling_blocks(model, s, s, onsite=True)
    t = model.replace({"spin_orbit/GaAs_a": torch.tensor(0.421 / 3, dtype=torch.float64)})
    H1, _ = coupling_blocks(t, s, s, onsite=True)
    torch.testing.assert_close(H0, H1, rtol=0, atol=1e-15)


def test_named_parameter_names():
    m = tables.graphene_pz("TNN_Reich2002")
    p = m.named_parameters()
    assert p["onsite/C/p"] == -0.28
    assert p["bond/C-C/0/pp_pi"] == -2.97 and p["bond/C-C/2/pp_pi"] == -0.33
    assert p["overlap/C-C/1/pp_pi"] == 0.018
    so = tables.vogl_sp3s("GaAs", spin_orbit=True).named_parameters()
    assert so["spin_orbit/GaAs_a"] == pytest.approx(0.421 / 3)
    assert tables.vogl_sp3s("GaAs").named_parameters()["spin_orbit/GaAs_a"] == 0.0  # present, so replace() can switch it on


# ---- distance dependence and shells ----------------------------------------------------------------------

def _dimer_model(scaling, tol=0.05):
    sp = Species(("s", "px", "py", "pz"), {"s": -1.0, "p": 2.0})
    shells = (Shell(0.2, {"ss_sigma": -1.5, "sp_sigma": 1.2, "pp_sigma": 2.1, "pp_pi": -0.7}, {"ss_sigma": 0.1}),
              Shell(0.35, {"ss_sigma": -0.2}, {"ss_sigma": 0.02}))
    return TBModel({"A": sp}, {("A", "A"): shells}, scaling=scaling, shell_tolerance=tol)


@pytest.mark.parametrize("scaling", [None, ("power", 2.7), ("exp", 3.3)])
@pytest.mark.parametrize("shell,ratio", [(0, 1.0), (0, 1.03), (0, 0.96), (1, 1.0), (1, 1.045)])
def test_distance_scaling(scaling, shell, ratio):
    model = _dimer_model(scaling)
    d0 = (0.2, 0.35)[shell]
    d = d0 * ratio
    u = np.array([0.48, -0.6, 0.64])
    s = Structure([[0.1, 0.2, 0.3], (np.array([0.1, 0.2, 0.3]) + d * u).tolist()], ("A", "A"))
    H, S = coupling_blocks(model, s, s, onsite=True)
    if scaling is None:
        f = 1.0
    elif scaling[0] == "power":
        f = (d0 / d) ** scaling[1]
    else:
        f = math.exp(-scaling[1] * (d / d0 - 1))
    sh = model.bonds[("A", "A")][shell]
    ref = sk_block(("s", "px", "py", "pz"), ("s", "px", "py", "pz"), torch.tensor(u * d)[None],
                   {k: v * f for k, v in sh.integrals.items()})[0]
    torch.testing.assert_close(H[:4, 4:], ref, rtol=1e-12, atol=1e-14)
    assert S[0, 4].item() == pytest.approx(sh.overlap["ss_sigma"] * f, rel=1e-12)
    assert H[0, 4].item() == pytest.approx(sh.integrals["ss_sigma"] * f, rel=1e-12)
    if ratio == 1.0:  # at the table distance the table value, whatever the scaling law
        assert H[0, 4].item() == pytest.approx(sh.integrals["ss_sigma"], rel=1e-14)


@pytest.mark.parametrize("tol", [0.05, 0.07])
@pytest.mark.parametrize("d", [0.1, 0.104, 0.0962, 0.106, 0.0935, 0.15, 0.2, 0.191, 0.2095, 0.22, 0.3])
def test_shell_assignment(d, tol):
    """A bond takes the shell whose window |d - d0| <= tol d0 contains it; bonds in no window are ignored."""
    t = (-1.0, -0.3)
    sp = Species(("s",), {"s": 0.0})
    model = TBModel({"X": sp}, {("X", "X"): (Shell(0.1, {"ss_sigma": t[0]}), Shell(0.2, {"ss_sigma": t[1]}))},
                    shell_tolerance=tol)
    assert model.cutoff_nm == pytest.approx(0.2 * (1 + tol))
    s = Structure([[0.0, 0.0, 0.0], [d * 0.6, d * 0.8, 0.0]], "X")
    H, _ = coupling_blocks(model, s, s, onsite=True)
    expected = 0.0
    for d0, v in zip((0.1, 0.2), t):
        if abs(d - d0) <= tol * d0:
            expected = v
    assert H[0, 1].item() == expected and H[1, 0].item() == expected
    assert (expected != 0) == (d in (0.1, 0.104, 0.0962, 0.2, 0.191, 0.2095) or (tol == 0.07 and d in (0.106, 0.0935)))


def test_shell_tolerance_errors():
    sp = {"X": Species(("s",), {"s": 0.0})}
    with pytest.raises(ValueError, match="overlap"):
        TBModel(sp, {("X", "X"): (Shell(0.1, {}), Shell(0.109, {}))})
    TBModel(sp, {("X", "X"): (Shell(0.1, {}), Shell(0.111, {}))})  # 0.1 * 1.05 < 0.111 * 0.95
    with pytest.raises(ValueError, match="overlap"):
        TBModel(sp, {("X", "X"): (Shell(0.1, {}), Shell(0.111, {}))}, shell_tolerance=0.1)
    with pytest.raises(ValueError, match="distance_nm"):
        Shell(0.0, {})
    with pytest.raises(ValueError, match="unknown Slater-Koster integral"):
        Shell(0.1, {"pp_delta": 1.0})
    with pytest.raises(ValueError, match="unknown Slater-Koster integral"):
        Shell(0.1, {}, {"ss_pi": 1.0})
    sp2 = {"X": Species(("s",), {"s": 0.0}), "Y": Species(("s",), {"s": 0.0})}
    with pytest.raises(ValueError, match="same shell distances"):
        TBModel(sp2, {("X", "Y"): (Shell(0.1, {}),), ("Y", "X"): (Shell(0.12, {}),)})
    with pytest.raises(ValueError, match="scaling"):
        TBModel(sp, {}, scaling=("linear", 1.0))


def test_species_errors():
    with pytest.raises(ValueError, match="unknown orbitals"):
        Species(("s", "p"), {"s": 0.0, "p": 0.0})
    with pytest.raises(ValueError, match="no energy"):
        Species(("s", "px"), {"s": 0.0})
    with pytest.raises(ValueError, match="match none"):
        Species(("s",), {"s": 0.0, "d": 1.0})
    with pytest.raises(ValueError, match="full p shell"):
        Species(("s", "pz"), {"s": 0.0, "p": 0.0}, spin_orbit=0.1)
    sp = {"X": Species(("s",), {"s": 0.0})}
    with pytest.raises(ValueError, match="unknown species"):
        TBModel(sp, {("X", "Y"): (Shell(0.1, {}),)})
    with pytest.raises(ValueError, match="isotropic"):
        TBModel(sp, {}, isotropic=True)
    with pytest.raises(ValueError, match="isotropic"):
        TBModel({"C": Species(("pz",), {"p": 0.0})}, {("C", "C"): (Shell(0.1, {"pp_sigma": 1.0}),)},
                isotropic=True)
    model = TBModel(sp, {("X", "X"): (Shell(0.1, {"ss_sigma": -1.0}),)})
    s = Structure([[0, 0, 0], [0.1, 0, 0]], ("X", "Q"))
    with pytest.raises(ValueError, match="Q"):
        coupling_blocks(model, s, s, onsite=True)
    with pytest.raises(ValueError, match="already exists"):
        model.with_species("X", Species(("s",), {"s": 1.0}), {})
    # two different species on one site
    a = Structure([[0, 0, 0]], ("X",))
    m2 = model.with_species("Y", Species(("s",), {"s": 1.0}), {})
    with pytest.raises(ValueError, match="different species"):
        coupling_blocks(m2, a, Structure([[0, 0, 0]], ("Y",)), onsite=True)
    with pytest.raises(IndexError):
        s.with_species([5], "X")


def test_orbital_override_onsite():
    sp = Species(("s", "dxy", "dz2", "s*"), {"s": -1.0, "d": 2.0, "dz2": 2.5, "s*": 4.0})
    m = TBModel({"A": sp}, {})
    H, _ = coupling_blocks(m, Structure([[0, 0, 0]], "A"), Structure([[0, 0, 0]], "A"), onsite=True)
    torch.testing.assert_close(torch.diagonal(H), torch.tensor([-1.0, 2.0, 2.5, 4.0], dtype=torch.float64))


def test_spin_layout_and_spin_orbit_onsite():
    """Spin-major per atom: spin up (all orbitals), then spin down; SO only on the p shell."""
    m = tables.vogl_sp3s("GaAs", spin_orbit=True)
    s = Structure([[0, 0, 0]], ("GaAs_a",))
    H, _ = coupling_blocks(m, s, s, onsite=True)
    assert H.shape == (10, 10)
    p = m.species["GaAs_a"]
    e = torch.linalg.eigvalsh(H).numpy()
    lam = 0.421 / 3
    ref = sorted([p.onsite["s"]] * 2 + [p.onsite["s*"]] * 2 + [p.onsite["p"] + lam] * 4
                 + [p.onsite["p"] - 2 * lam] * 2)
    np.testing.assert_allclose(e, ref, atol=1e-12)
    assert H[0, 5].item() == 0 and H[1, 2].item() == pytest.approx(-1j * lam)  # <px up|H|py up> = -i lam
    # the hopping blocks are spin-diagonal and equal for both spins
    c = cluster(zb(m, "GaAs"), 1)
    Hc, _ = coupling_blocks(m, c, c)
    torch.testing.assert_close(Hc[:5, 10:15], Hc[5:10, 15:20], rtol=0, atol=0)
    assert Hc[:5, 15:20].abs().max() == 0 and Hc[:5, 10:15].abs().max() > 0.1


# ---- heteropolar pairs given in both orders -------------------------------------------------------------

def _hetero_model(ab_keys, ba_keys):
    sp = ("s", "px", "py", "pz")
    A, B = Species(sp, {"s": 0.0, "p": 1.0}), Species(sp, {"s": 0.5, "p": 2.0})
    same = {"ss_sigma": -1.0, "pp_sigma": 2.0, "pp_pi": -0.5}
    return TBModel({"A": A, "B": B}, {("A", "B"): (Shell(0.2, {**same, **ab_keys}),),
                                      ("B", "A"): (Shell(0.2, {**same, **ba_keys}),)})


def test_heteropolar_pair_both_orders_hermitian():
    """(A, B) and (B, A) each give their own 'sp_sigma' (s on the first atom): H is Hermitian and the
    (A, B) block reads (A, B)'s sp and (B, A)'s sp with parity."""
    model = _hetero_model({"sp_sigma": 1.1}, {"sp_sigma": 0.7})
    s = Structure([[0, 0, 0], [0.1, 0.12, 0.11], [0.21, 0.0, -0.02]], ("A", "B", "A"))
    H, _ = coupling_blocks(model, s, s, onsite=True)
    assert_hermitian(H)
    u = (s.positions[1] - s.positions[0]) / torch.linalg.vector_norm(s.positions[1] - s.positions[0])
    assert H[0, 5].item() == pytest.approx(1.1 * u[0].item())  # s_A, px_B
    assert H[1, 4].item() == pytest.approx(-0.7 * u[0].item())  # px_A, s_B = -l V_sp(B, A)
    # the same physics from a single (A, B) entry with both mixed keys
    single = TBModel(model.species, {("A", "B"): (Shell(0.2, {"ss_sigma": -1.0, "pp_sigma": 2.0, "pp_pi": -0.5,
                                                             "sp_sigma": 1.1, "ps_sigma": 0.7}),)})
    H1, _ = coupling_blocks(single, s, s, onsite=True)
    torch.testing.assert_close(H1, H, rtol=0, atol=1e-14)


def test_heteropolar_mixed_integrals_all_in_reversed_entry():
    """(A, B) with same-type integrals only, (B, A) with both mixed ones (no conflict anywhere): accepted,
    and the same Hamiltonian as one (A, B) entry holding their mirror images (sp of (B, A) = ps of (A, B))."""
    model = _hetero_model({}, {"sp_sigma": 0.7, "ps_sigma": 1.1})
    s = Structure([[0, 0, 0], [0.1, 0.12, 0.11]], ("A", "B"))
    H, _ = coupling_blocks(model, s, s, onsite=True)
    assert_hermitian(H)
    single = TBModel(model.species, {("A", "B"): (Shell(0.2, {"ss_sigma": -1.0, "pp_sigma": 2.0, "pp_pi": -0.5,
                                                             "sp_sigma": 1.1, "ps_sigma": 0.7}),)})
    H1, _ = coupling_blocks(single, s, s, onsite=True)
    torch.testing.assert_close(H, H1, rtol=0, atol=1e-14)
    u = (s.positions[1] / torch.linalg.vector_norm(s.positions[1]))
    assert H[0, 5].item() == pytest.approx(1.1 * u[0].item())


def test_heteropolar_conflicting_entries_rejected():
    """(A, B) and (B, A) giving one integral two values is an error naming both entries and keys."""
    sp = ("s", "px", "py", "pz")
    spec = {"A": Species(sp, {"s": 0.0, "p": 1.0}), "B": Species(sp, {"s": 0.5, "p": 2.0})}
    with pytest.raises(ValueError, match=r"^bonds \('A', 'B'\) shell 0 integrals 'pp_sigma' = 2.0 and \('B', 'A'\) "
                                         r"'pp_sigma' = 3.0 are the same integral with different values$"):
        TBModel(spec, {("A", "B"): (Shell(0.2, {"pp_sigma": 2.0}),), ("B", "A"): (Shell(0.2, {"pp_sigma": 3.0}),)})


# ---- dopants ------------------------------------------------------------------------------------------------

def test_dopant_substitution_graphene():
    model = tables.graphene_pz("NN_generic")
    doped_model = model.with_species("N", Species(("pz",), {"p": -1.1}), {("C", "N"): (Shell(0.142, {"pp_pi": -2.2}),)})
    ribbon = cluster(builders.armchair_ribbon(5), 3)
    site = ribbon.nearest_sites([[0.6, 0.25]])[0]
    doped = ribbon.with_species([site], "N")
    assert doped.species[site] == "N" and doped.species.count("N") == 1 and ribbon.species.count("N") == 0
    H0, _ = coupling_blocks(doped_model, ribbon, ribbon, onsite=True)
    H1, _ = coupling_blocks(doped_model, doped, doped, onsite=True)
    diff = (H1 - H0).abs() > 0
    rows, cols = torch.nonzero(diff, as_tuple=True)
    assert set(rows.tolist()) | set(cols.tolist()) >= {site}
    assert all(r == site or c == site for r, c in zip(rows.tolist(), cols.tolist()))
    assert H1[site, site].item() == -1.1
    nbrs = torch.nonzero(H0[site] != 0).flatten().tolist()
    assert len(nbrs) == 3
    for j in nbrs:
        assert H1[site, j].item() == -2.2 and H1[j, site].item() == -2.2
    assert diff.sum().item() == 1 + 2 * 3


def test_dopant_substitution_sp3s_star():
    """A P dopant on a cation site of Vogl Si: exactly its on-site block and its bonds change."""
    base = tables.vogl_sp3s("Si")
    a = tables.lattice_constant_nm(base.name)
    si_c = base.species["Si_c"]
    p_onsite = {"s": si_c.onsite["s"] - 0.8, "p": si_c.onsite["p"] - 0.3, "s*": si_c.onsite["s*"]}
    sh = base.bonds[("Si_a", "Si_c")][0]
    ints = {k: v * 1.1 for k, v in sh.integrals.items()}
    model = base.with_species("P", Species(si_c.orbitals, p_onsite), {("Si_a", "P"): (Shell(sh.distance_nm, ints),)})
    crystal = builders.zincblende(a, "Si_a", "Si_c")
    c = cluster(crystal, 2, jitter=0.002)
    site = 5
    assert c.species[site] == "Si_c"
    doped = c.with_species([site], "P")
    H0, _ = coupling_blocks(model, c, c, onsite=True)
    H1, _ = coupling_blocks(model, doped, doped, onsite=True)
    block = slice(5 * site, 5 * site + 5)
    mask = torch.zeros_like(H0, dtype=torch.bool)
    mask[block, :] = True
    mask[:, block] = True
    assert (H1 - H0)[~mask].abs().max() == 0
    torch.testing.assert_close(torch.diagonal(H1)[block],
                               torch.tensor([p_onsite["s"]] + [p_onsite["p"]] * 3 + [p_onsite["s*"]], dtype=torch.float64))
    pos = doped.positions
    for j in range(len(c)):
        d = (pos[j] - pos[site]).norm().item()
        if j == site or abs(d - sh.distance_nm) > 0.05 * sh.distance_nm:
            continue
        assert c.species[j] == "Si_a"
        # <P|H|Si_a> with the (Si_a, P) integrals seen from P: parity-reversed keys
        ref = sk_block(si_c.orbitals, si_c.orbitals, (pos[j] - pos[site])[None], {
            "ss_sigma": ints["ss_sigma"], "pp_sigma": ints["pp_sigma"], "pp_pi": ints["pp_pi"],
            "sp_sigma": ints["ps_sigma"], "ps_sigma": ints["sp_sigma"],
            "Sp_sigma": ints["pS_sigma"], "pS_sigma": ints["Sp_sigma"]})[0]
        torch.testing.assert_close(H1[block, 5 * j: 5 * j + 5], ref, rtol=1e-13, atol=1e-13)
        assert (H1[block, 5 * j: 5 * j + 5] - H0[block, 5 * j: 5 * j + 5]).abs().max() > 0.1


# ---- potentials ---------------------------------------------------------------------------------------------

def test_add_potential_constant_shift_with_overlap():
    model = tables.graphene_pz("TNN_Reich2002")
    c = cluster(builders.armchair_ribbon(4), 3, jitter=0.002)
    H, S = coupling_blocks(model, c, c, onsite=True)
    U = 0.37
    H2 = add_potential(H, S, torch.full((len(c),), U, dtype=torch.float64), model, c.species)
    e0 = scipy.linalg.eigh(H.numpy(), S.numpy(), eigvals_only=True)
    e1 = scipy.linalg.eigh(H2.numpy(), S.numpy(), eigvals_only=True)
    np.testing.assert_allclose(e1 - e0, U, atol=1e-11)
    # a naive diagonal shift would not do it (the test can fail)
    e_naive = scipy.linalg.eigh((H + U * torch.eye(len(H), dtype=H.dtype)).numpy(), S.numpy(), eigvals_only=True)
    assert np.abs(e_naive - e0 - U).max() > 1e-2
    # a site-resolved potential: H_ij += (U_i + U_j)/2 S_ij
    u = torch.linspace(-0.2, 0.3, len(c), dtype=torch.float64)
    H3 = add_potential(H, S, u, model, c.species)
    i, j = torch.nonzero(S.abs() > 0.01, as_tuple=True)
    k = int(torch.nonzero(i != j)[0])
    i, j = int(i[k]), int(j[k])
    assert (H3 - H)[i, j].item() == pytest.approx(0.5 * (u[i] + u[j]).item() * S[i, j].item(), rel=1e-14)
    assert_hermitian(H3)


def test_add_potential_orthogonal_multi_orbital():
    model = tables.vogl_sp3s("GaAs", spin_orbit=True)
    c = cluster(zb(model, "GaAs"), 1)
    H, S = coupling_blocks(model, c, c, onsite=True)
    u = torch.tensor([0.1, -0.2], dtype=torch.float64)
    H2 = add_potential(H, S, u, model, c.species)
    torch.testing.assert_close(torch.diagonal(H2 - H).real, torch.tensor([0.1] * 10 + [-0.2] * 10, dtype=torch.float64))
    with pytest.raises(ValueError, match="number of atoms"):
        add_potential(H, S, torch.zeros(3), model, c.species)


def test_table_lookup_errors():
    with pytest.raises(KeyError, match="unknown graphene set"):
        tables.graphene_pz("NN_nonexistent")
    with pytest.raises(KeyError, match="unknown Vogl material"):
        tables.vogl_sp3s("Unobtainium")
    with pytest.raises(KeyError, match="spin-orbit"):
        tables.vogl_sp3s("C", spin_orbit=True)
    with pytest.raises(KeyError, match="unknown Klimeck material"):
        tables.klimeck_sp3s("Si")
    with pytest.raises(KeyError, match="unknown Jancu material"):
        tables.jancu_sp3d5s("Unobtainium")
    with pytest.raises(KeyError):
        tables.lattice_constant_nm("nobody/Si")
    # the species names the factories promise
    assert set(tables.vogl_sp3s("Si").species) == {"Si_a", "Si_c"}
    assert set(tables.jancu_sp3d5s("Si").species) == {"Si"}
    assert set(tables.jancu_sp3d5s("GaAs").species) == {"GaAs_a", "GaAs_c"}
    assert tables.boykin_sp3d5s_si().spinful and not tables.boykin_sp3d5s_si(spin_orbit=False).spinful
