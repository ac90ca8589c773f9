"""Slater-Koster blocks: rotation covariance, the textbook table, parity, spin-orbit, input errors.

The rotation matrices of the real orbitals are built here independently of ``invdesign.tb``: each
orbital is its angular polynomial on the unit sphere (s: 1; p: x, y, z; d: sqrt3 yz, sqrt3 zx, sqrt3 xy,
sqrt3/2 (x^2 - y^2), (3 z^2 - 1)/2) and ``D(R)`` is fitted by least squares from
``f_a(R u) = sum_c D_ac f_c(u)`` on sampled unit vectors. A two-centre H that is invariant under
rotations then obeys ``E(R d) = D_a(R) E(d) D_b(R)^T``.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from invdesign.tb.slater_koster import (
    ORBITALS,
    VALID_INTEGRALS,
    integral_names,
    sk_block,
    spin_orbit_p,
)

S3 = math.sqrt(3.0)

ANGULAR = {
    "s": lambda x, y, z: np.ones_like(x),
    "s*": lambda x, y, z: np.ones_like(x),
    "px": lambda x, y, z: x,
    "py": lambda x, y, z: y,
    "pz": lambda x, y, z: z,
    "dyz": lambda x, y, z: S3 * y * z,
    "dzx": lambda x, y, z: S3 * z * x,
    "dxy": lambda x, y, z: S3 * x * y,
    "dx2-y2": lambda x, y, z: S3 / 2 * (x**2 - y**2),
    "dz2": lambda x, y, z: (3 * z**2 - 1) / 2,
}

_RNG = np.random.default_rng(1234)
_SAMPLES = _RNG.normal(size=(200, 3))
_SAMPLES /= np.linalg.norm(_SAMPLES, axis=1, keepdims=True)


def orbital_rotation(orbitals, R: np.ndarray) -> np.ndarray:
    """D with f_a(R u) = sum_c D_ac f_c(u), fitted by least squares (independent of the package).

    s and s* share the angular function 1 but are different orbitals, so each shell (s, s*, p, d) is
    fitted on its own and D is block diagonal over shells.
    """
    u = _SAMPLES
    Ru = u @ R.T
    D = np.zeros((len(orbitals), len(orbitals)))
    shells = {}
    for i, o in enumerate(orbitals):
        shells.setdefault("s*" if o == "s*" else o[0], []).append(i)
    for idx in shells.values():
        F = np.stack([ANGULAR[orbitals[i]](*u.T) for i in idx], axis=1)  # (n_samples, n_shell)
        G = np.stack([ANGULAR[orbitals[i]](*Ru.T) for i in idx], axis=1)
        Dt = np.linalg.lstsq(F, G, rcond=None)[0]
        assert np.abs(F @ Dt - G).max() < 1e-10, f"orbitals {[orbitals[i] for i in idx]} not closed under rotations"
        D[np.ix_(idx, idx)] = Dt.T
    return D


def rotation_from_quaternion(q) -> np.ndarray:
    a, b, c, d = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
        [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
        [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
    ])


SETS = {
    "s": ("s",),
    "p": ("px", "py", "pz"),
    "d": ("dyz", "dzx", "dxy", "dx2-y2", "dz2"),
    "s*": ("s*",),
    "sp3s*": ("s", "px", "py", "pz", "s*"),
    "sp3d5s*": ORBITALS,
    "sd": ("s", "dyz", "dzx", "dxy", "dx2-y2", "dz2"),
}


_RANK = {"s": 0, "S": 1, "p": 2, "d": 3}


def _swap(name: str) -> str:
    types, bond = name.split("_")
    return f"{types[1]}{types[0]}_{bond}"


def random_integrals(rng, heteropolar: bool) -> tuple[dict, dict | None]:
    """Random values for every valid integral name.

    Homopolar: one dict (integrals_ba defaults to it) whose reversed-type keys repeat the canonical ones.
    Heteropolar: distinct numbers for both type orders (e.g. 'sp_sigma' != 'ps_sigma'), and the reversed
    pair's dict is the same integrals seen from B (keys with types swapped).
    """
    names = integral_names()
    ab = {n: float(rng.normal()) for n in names}
    if not heteropolar:
        for n in names:
            t = n.split("_")[0]
            if _RANK[t[0]] > _RANK[t[1]]:
                ab[n] = ab[_swap(n)]
        return ab, None
    return ab, {n: ab[_swap(n)] for n in names}


quaternions = st.tuples(*[st.floats(-1, 1, allow_nan=False) for _ in range(4)]).filter(
    lambda q: sum(x * x for x in q) > 0.05)
bonds = st.tuples(*[st.floats(-1, 1, allow_nan=False) for _ in range(3)]).filter(
    lambda d: sum(x * x for x in d) > 0.01)


@pytest.mark.parametrize("hetero", [False, True], ids=["homopolar", "heteropolar"])
@pytest.mark.parametrize("pair", [("s", "s"), ("p", "p"), ("d", "d"), ("s*", "p"), ("s", "d"), ("p", "d"),
                                  ("d", "p"), ("sp3s*", "sp3s*"), ("sp3d5s*", "sp3d5s*"), ("sd", "p"),
                                  ("p", "sp3d5s*")])
@settings(max_examples=25, deadline=None)
@given(q=quaternions, d=bonds, seed=st.integers(0, 2**31 - 1))
def test_rotation_covariance(pair, hetero, q, d, seed):
    rng = np.random.default_rng(seed)
    oa, ob = SETS[pair[0]], SETS[pair[1]]
    v_ab, v_ba = random_integrals(rng, hetero)
    R = rotation_from_quaternion(q)
    Da, Db = orbital_rotation(oa, R), orbital_rotation(ob, R)
    d = np.asarray(d)
    vecs = torch.tensor(np.stack([d, R @ d]), dtype=torch.float64)
    E = sk_block(oa, ob, vecs, v_ab, v_ba).numpy()
    np.testing.assert_allclose(E[1], Da @ E[0] @ Db.T, atol=1e-11, rtol=0)


def test_covariance_is_not_vacuous():
    """A wrong rotation (a d-orbital sign flip, or a different normalisation of dx2-y2) breaks it."""
    oa = SETS["sp3d5s*"]
    rng = np.random.default_rng(0)
    v_ab, v_ba = random_integrals(rng, True)
    R = rotation_from_quaternion([0.3, -0.5, 0.7, 0.2])
    D = orbital_rotation(oa, R)
    d = np.array([0.2, 0.4, -0.7])
    E = sk_block(oa, oa, torch.tensor(np.stack([d, R @ d])), v_ab, v_ba).numpy()
    wrong = D.copy()
    wrong[6] *= -1  # dxy
    assert np.abs(E[1] - wrong @ E[0] @ wrong.T).max() > 1e-3
    scaled = dict(ANGULAR)
    ANGULAR["dx2-y2"] = lambda x, y, z: (x**2 - y**2)  # textbook normalisation dropped
    try:
        D2 = orbital_rotation(oa, R)
    finally:
        ANGULAR.update(scaled)
    assert np.abs(E[1] - D2 @ E[0] @ D2.T).max() > 1e-3


def test_subsets_are_sub_blocks():
    """Any subset of orbitals (e.g. pz only, or 'p' without 'px') is the sub-block of the full block."""
    rng = np.random.default_rng(3)
    v_ab, v_ba = random_integrals(rng, True)
    d = torch.tensor([[0.1, -0.3, 0.25], [0.0, 0.0, 1.0], [-1.0, 0.2, 0.0]], dtype=torch.float64)
    full = sk_block(ORBITALS, ORBITALS, d, v_ab, v_ba)
    for oa, ob in [(("pz",), ("pz",)), (("s", "py", "dxy"), ("pz", "dz2", "s*")), (("dx2-y2",), ("s", "px")),
                   (("pz", "s", "dxy", "px", "s*", "py"), ("dz2", "py", "s"))]:  # any order on a site
        ia = [ORBITALS.index(o) for o in oa]
        ib = [ORBITALS.index(o) for o in ob]
        torch.testing.assert_close(sk_block(oa, ob, d, v_ab, v_ba), full[:, ia][:, :, ib], rtol=0, atol=1e-14)


# ---- the textbook table (Slater & Koster 1954, Table I) ------------------------------------------------

def textbook(l, m, n, V):
    """Selected E_{a,b}(l, m, n) entries of the Slater-Koster table."""
    ss, sp, sd = V["ss_sigma"], V["sp_sigma"], V["sd_sigma"]
    pps, ppp = V["pp_sigma"], V["pp_pi"]
    pds, pdp = V["pd_sigma"], V["pd_pi"]
    dds, ddp, ddd = V["dd_sigma"], V["dd_pi"], V["dd_delta"]
    return {
        ("s", "s"): ss,
        ("s", "px"): l * sp,
        ("px", "px"): l * l * pps + (1 - l * l) * ppp,
        ("px", "py"): l * m * (pps - ppp),
        ("px", "pz"): l * n * (pps - ppp),
        ("s", "dxy"): S3 * l * m * sd,
        ("s", "dx2-y2"): S3 / 2 * (l * l - m * m) * sd,
        ("s", "dz2"): (n * n - (l * l + m * m) / 2) * sd,
        ("px", "dxy"): S3 * l * l * m * pds + m * (1 - 2 * l * l) * pdp,
        ("px", "dyz"): S3 * l * m * n * pds - 2 * l * m * n * pdp,
        ("px", "dzx"): S3 * l * l * n * pds + n * (1 - 2 * l * l) * pdp,
        ("px", "dx2-y2"): S3 / 2 * l * (l * l - m * m) * pds + l * (1 - l * l + m * m) * pdp,
        ("py", "dx2-y2"): S3 / 2 * m * (l * l - m * m) * pds - m * (1 + l * l - m * m) * pdp,
        ("pz", "dx2-y2"): S3 / 2 * n * (l * l - m * m) * pds - n * (l * l - m * m) * pdp,
        ("px", "dz2"): l * (n * n - (l * l + m * m) / 2) * pds - S3 * l * n * n * pdp,
        ("pz", "dz2"): n * (n * n - (l * l + m * m) / 2) * pds + S3 * n * (l * l + m * m) * pdp,
        ("dxy", "dxy"): 3 * l * l * m * m * dds + (l * l + m * m - 4 * l * l * m * m) * ddp
        + (n * n + l * l * m * m) * ddd,
        ("dxy", "dyz"): 3 * l * m * m * n * dds + l * n * (1 - 4 * m * m) * ddp + l * n * (m * m - 1) * ddd,
        ("dxy", "dzx"): 3 * l * l * m * n * dds + m * n * (1 - 4 * l * l) * ddp + m * n * (l * l - 1) * ddd,
        ("dxy", "dx2-y2"): 1.5 * l * m * (l * l - m * m) * dds + 2 * l * m * (m * m - l * l) * ddp
        + 0.5 * l * m * (l * l - m * m) * ddd,
        ("dyz", "dx2-y2"): 1.5 * m * n * (l * l - m * m) * dds - m * n * (1 + 2 * (l * l - m * m)) * ddp
        + m * n * (1 + (l * l - m * m) / 2) * ddd,
        ("dxy", "dz2"): S3 * l * m * (n * n - (l * l + m * m) / 2) * dds - 2 * S3 * l * m * n * n * ddp
        + S3 / 2 * l * m * (1 + n * n) * ddd,
        ("dx2-y2", "dx2-y2"): 0.75 * (l * l - m * m) ** 2 * dds + (l * l + m * m - (l * l - m * m) ** 2) * ddp
        + (n * n + (l * l - m * m) ** 2 / 4) * ddd,
        ("dx2-y2", "dz2"): S3 / 2 * (l * l - m * m) * (n * n - (l * l + m * m) / 2) * dds
        + S3 * n * n * (m * m - l * l) * ddp + S3 / 4 * (1 + n * n) * (l * l - m * m) * ddd,
        ("dz2", "dz2"): (n * n - (l * l + m * m) / 2) ** 2 * dds + 3 * n * n * (l * l + m * m) * ddp
        + 0.75 * (l * l + m * m) ** 2 * ddd,
    }


@pytest.mark.parametrize("direction", [(0.3, -0.5, 0.8), (1.0, 0.0, 0.0), (-0.2, 0.9, -0.4), (0.0, 0.0, -1.0)])
def test_textbook_table(direction):
    V = {"ss_sigma": -1.1, "sp_sigma": 1.7, "sd_sigma": -0.9, "pp_sigma": 2.3, "pp_pi": -0.6,
         "pd_sigma": -1.3, "pd_pi": 0.8, "dd_sigma": -1.6, "dd_pi": 1.1, "dd_delta": -0.35,
         "sS_sigma": 0.0}
    d = torch.tensor([direction], dtype=torch.float64) * 0.37  # length does not matter
    l, m, n = (np.asarray(direction) / np.linalg.norm(direction)).tolist()
    E = sk_block(ORBITALS, ORBITALS, d, V)[0]
    table = textbook(l, m, n, V)
    for (a, b), ref in table.items():
        assert E[ORBITALS.index(a), ORBITALS.index(b)].item() == pytest.approx(ref, abs=1e-13), (a, b)
    # the reversed-type entries of a homopolar pair follow parity: E_{x,s} = -l V_sp
    assert E[ORBITALS.index("px"), 0].item() == pytest.approx(-l * V["sp_sigma"], abs=1e-13)
    assert E[ORBITALS.index("dxy"), 0].item() == pytest.approx(S3 * l * m * V["sd_sigma"], abs=1e-13)
    assert E[ORBITALS.index("dz2"), ORBITALS.index("pz")].item() == pytest.approx(
        -table[("pz", "dz2")], abs=1e-13)


def test_textbook_table_catches_a_wrong_entry():
    V = {k: 1.0 + 0.1 * i for i, k in enumerate(["ss_sigma", "sp_sigma", "sd_sigma", "pp_sigma", "pp_pi",
                                                  "pd_sigma", "pd_pi", "dd_sigma", "dd_pi", "dd_delta"])}
    l, m, n = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    E = sk_block(ORBITALS, ORBITALS, torch.tensor([[l, m, n]]), V)[0]
    wrong = textbook(l, m, n, {**V, "dd_delta": V["dd_delta"] + 0.01})
    i, j = ORBITALS.index("dxy"), ORBITALS.index("dz2")
    assert abs(E[i, j].item() - wrong[("dxy", "dz2")]) > 1e-4


def test_heteropolar_keys():
    """'ps_sigma' in the pair, or 'sp_sigma' of the reversed pair, gives <p_A|H|s_B> = -l V."""
    d = torch.tensor([[0.6, 0.0, 0.8]], dtype=torch.float64)
    o = ("s", "px", "py", "pz")
    E1 = sk_block(o, o, d, {"sp_sigma": 1.0, "ps_sigma": 2.0})[0]
    E2 = sk_block(o, o, d, {"sp_sigma": 1.0}, {"sp_sigma": 2.0})[0]
    for E in (E1, E2):
        assert E[0, 1].item() == pytest.approx(0.6 * 1.0)  # s on A, px on B: +l V_sp(A,B)
        assert E[1, 0].item() == pytest.approx(-0.6 * 2.0)  # px on A, s on B: -l V_ps
        assert E[3, 0].item() == pytest.approx(-0.8 * 2.0)
    # s* / s: both orders exist as distinct integrals
    E3 = sk_block(("s", "s*"), ("s", "s*"), d, {"sS_sigma": 0.5, "Ss_sigma": -0.7})[0]
    assert E3[0, 1].item() == pytest.approx(0.5) and E3[1, 0].item() == pytest.approx(-0.7)


@pytest.mark.parametrize("oa,ob", [(ORBITALS, ORBITALS), (SETS["sp3s*"], SETS["d"]), (("s",), SETS["p"])])
def test_bond_reversal(oa, ob):
    """<a_A|H|b_B>(d) = <b_B|H|a_A>(-d)^T, seen with the pair's integrals in the other order."""
    rng = np.random.default_rng(7)
    v_ab, v_ba = random_integrals(rng, True)
    d = torch.tensor(rng.normal(size=(5, 3)))
    fwd = sk_block(oa, ob, d, v_ab, v_ba)
    rev = sk_block(ob, oa, -d, v_ba, v_ab)
    torch.testing.assert_close(fwd, rev.transpose(1, 2), rtol=0, atol=1e-13)
    # homopolar: the block of a bond and its reverse are transposes, so H is symmetric
    v, _ = random_integrals(rng, False)
    torch.testing.assert_close(sk_block(oa, oa, d, v), sk_block(oa, oa, -d, v).transpose(1, 2), rtol=0, atol=1e-13)
    # parity: E(-d) = (-1)^(l_a + l_b) E(d)
    full = sk_block(ORBITALS, ORBITALS, d, v)
    par = torch.tensor([1, -1, -1, -1, 1, 1, 1, 1, 1, 1], dtype=torch.float64)
    torch.testing.assert_close(sk_block(ORBITALS, ORBITALS, -d, v), full * par[:, None] * par[None, :],
                               rtol=0, atol=1e-13)


def test_bond_reversal_mixed_keys_given_on_reversed_pair():
    """The reversed pair may carry the mixed integral under its own key order ('ps_sigma' of (B, A) is
    s on A, p on B); both directions of the bond must read the same number."""
    d = torch.tensor([[0.3, -0.5, 0.7]], dtype=torch.float64)
    o = ("s", "px", "py", "pz")
    fwd = sk_block(o, o, d, {}, {"ps_sigma": 1.3})
    rev = sk_block(o, o, -d, {"ps_sigma": 1.3}, {})
    torch.testing.assert_close(fwd, rev.transpose(1, 2))


def test_tensor_integrals_per_bond_and_dtype():
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    E = sk_block(("s",), ("px", "py"), d, {"sp_sigma": torch.tensor([1.0, 3.0], dtype=torch.float64)})
    torch.testing.assert_close(E, torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]]], dtype=torch.float64))
    E32 = sk_block(("s",), ("px",), d.float(), {"sp_sigma": 1.0})
    assert E32.dtype == torch.float32


def test_block_gradcheck():
    """Smooth in the bond vector (no branch on the direction) and in the integrals."""
    d = torch.tensor([[0.2, -0.1, 0.3], [0.0, 0.0, 0.5]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.7, -1.1, 0.4, 0.9, -0.3], dtype=torch.float64, requires_grad=True)
    keys = ["pp_sigma", "pp_pi", "pd_sigma", "pd_pi", "dd_delta"]
    o = ("px", "py", "pz", "dxy", "dz2")

    def f(d, v):
        return sk_block(o, o, d, dict(zip(keys, v)))

    assert torch.autograd.gradcheck(f, (d, v))


# ---- spin-orbit --------------------------------------------------------------------------------------------

def test_spin_orbit_p():
    lam = 0.11
    h = spin_orbit_p(lam)
    assert h.shape == (6, 6) and h.dtype == torch.complex128
    torch.testing.assert_close(h, h.mH, rtol=0, atol=1e-15)
    e = torch.linalg.eigvalsh(h).numpy()
    np.testing.assert_allclose(e, [-2 * lam] * 2 + [lam] * 4, atol=1e-13)
    assert e[-1] - e[0] == pytest.approx(3 * lam)  # Delta = 3 lam
    # spin-major layout: diagonal blocks are +-lam L_z, i.e. <px up|H|py up> = -i lam
    assert h[0, 1].item() == pytest.approx(-1j * lam)
    assert h[3, 4].item() == pytest.approx(1j * lam)
    assert abs(h[0, 0].item()) == 0 and abs(h[2, 2].item()) == 0
    # time-reversal symmetry: sigma_y H^* sigma_y = H
    sy = torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128)
    T = torch.kron(sy, torch.eye(3, dtype=torch.complex128))
    torch.testing.assert_close(T @ h.conj() @ T.mH, h, rtol=0, atol=1e-15)
    # differentiable in lam
    lam_t = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(torch.linalg.eigvalsh(spin_orbit_p(lam_t))[-1], lam_t)
    assert g.item() == pytest.approx(1.0)


def test_spin_orbit_float_precision():
    lam = 0.421 / 3
    assert spin_orbit_p(lam)[0, 1].item() == -1j * lam


# ---- errors ------------------------------------------------------------------------------------------------

def test_errors():
    d = torch.tensor([[0.1, 0.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown orbitals"):
        sk_block(("dx2y2",), ("s",), d, {})
    with pytest.raises(ValueError, match="unknown orbitals"):
        sk_block(("s",), ("p",), d, {})
    with pytest.raises(ValueError, match="repeated"):
        sk_block(("s", "s"), ("s",), d, {})
    for bad in ("pp_delta", "sp_pi", "ss_pi", "xx_sigma", "pp"):
        assert bad not in VALID_INTEGRALS
        with pytest.raises(ValueError, match="unknown Slater-Koster integral"):
            sk_block(("s",), ("s",), d, {bad: 1.0})
        with pytest.raises(ValueError, match="unknown Slater-Koster integral"):
            sk_block(("s",), ("s",), d, {}, {bad: 1.0})
    with pytest.raises(ValueError, match="zero-length"):
        sk_block(("s",), ("s",), torch.tensor([[0.1, 0, 0], [0.0, 0, 0]], dtype=torch.float64), {"ss_sigma": 1.0})
    with pytest.raises(ValueError, match="bond_vectors"):
        sk_block(("s",), ("s",), torch.tensor([0.1, 0.0, 0.0]), {})
    with pytest.raises(ValueError, match="bond_vectors"):
        sk_block(("s",), ("s",), torch.tensor([[1, 0, 0]]), {})


def test_valid_integral_names():
    names = set(integral_names())
    assert {"ss_sigma", "sp_sigma", "ps_sigma", "pp_pi", "pd_pi", "dp_pi", "dd_delta", "sS_sigma", "Ss_sigma",
            "SS_sigma", "Sp_sigma", "pS_sigma", "Sd_sigma", "dS_sigma"} <= names
    # sigma for every pair, pi needs l >= 1 on both sides, delta l = 2 on both
    assert len(names) == 16 + 4 + 1  # sigma for all 16 type pairs, pi for pp/pd/dp/dd, delta for dd
