"""Property-based checks of the NEGF engine on random small systems (hypothesis).

Every system is drawn from a numpy seed that hypothesis picks, so a failure prints a seed that
reproduces it. Systems: 1-3 orbitals per lead cell with a complex Hermitian ``h00`` and a complex
``h01`` (multi-orbital complex hoppings), a device of 1-4 slices of 1-3 orbitals with random blocks,
explicit lead couplings of shape (lead orbitals x edge orbitals) or the default ``h01^dagger``;
optionally a random non-orthogonal basis small enough that the overlap of the whole (infinite)
system is positive definite; and square-lattice strips in a perpendicular magnetic field (Peierls
phases in the Landau gauge). Energies are drawn uniformly from the same seed, so they never sit
exactly on a band edge (where the channel count is ambiguous).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invdesign.negf import (
    Device,
    Lead,
    open_channels,
    self_energy,
    solve,
    surface_green_function,
)
from invdesign.tb.ribbons import armchair_ribbon_cell, zigzag_ribbon_cell

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)

# Off-diagonal overlap budget: with every diagonal overlap block within DIAG of the identity and
# every inter-cell / inter-slice / lead-device overlap block of spectral norm <= OFF, the overlap of
# the whole block-tridiagonal system is I + P with ||P|| <= DIAG + 2 OFF < 1: positive definite.
OVERLAP_DIAG, OVERLAP_OFF = 0.2, 0.15


# ----------------------------------------------------------------------------- random systems
def herm(rng, n, scale=1.0):
    a = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    return scale * (a + a.conj().T) / 2


def cplx(rng, n, m, scale=1.0):
    return scale * (rng.normal(size=(n, m)) + 1j * rng.normal(size=(n, m)))


def small(rng, n, m, norm, hermitian=False):
    """A random complex matrix of spectral norm ``norm``."""
    a = cplx(rng, n, m)
    if hermitian:
        a = (a + a.conj().T) / 2
    return norm * a / np.linalg.norm(a, 2)


def random_lead(rng, n, edge, overlap):
    """A random lead of n orbitals coupled to an edge slice of ``edge`` orbitals."""
    kw = {}
    if overlap:
        kw = dict(s00=np.eye(n) + small(rng, n, n, OVERLAP_DIAG, True), s01=small(rng, n, n, OVERLAP_OFF))
    if n == edge and rng.random() < 0.3:
        return Lead(herm(rng, n, 0.5), cplx(rng, n, n), **kw)  # default coupling h01^dagger
    if overlap:
        kw["s_coupling"] = small(rng, n, edge, OVERLAP_OFF)
    return Lead(herm(rng, n, 0.5), cplx(rng, n, n), coupling=cplx(rng, n, edge, 0.7), **kw)


def random_device(seed, overlap=False):
    """``(device, rng)``: random leads (1-3 orbitals), 1-4 slices of 1-3 orbitals."""
    rng = np.random.default_rng(seed)
    n_left, n_right = (int(x) for x in rng.integers(1, 4, size=2))
    sizes = [int(x) for x in rng.integers(1, 4, size=int(rng.integers(1, 5)))]
    left = random_lead(rng, n_left, sizes[0], overlap)
    right = random_lead(rng, n_right, sizes[-1], overlap)
    blocks = [herm(rng, b) for b in sizes]
    couplings = [cplx(rng, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
    ov = None
    if overlap:
        ov = (
            [np.eye(b) + small(rng, b, b, OVERLAP_DIAG, True) for b in sizes],
            [small(rng, sizes[i], sizes[i + 1], OVERLAP_OFF) for i in range(len(sizes) - 1)],
        )
    return Device(blocks, couplings, left, right, overlap=ov), rng


def magnetic_strip_cell(width, flux, t=1.0):
    """Square-lattice strip (transport along x, ``width`` sites across), flux ``flux`` per plaquette
    in units of h/e, Landau gauge A = (-B y, 0, 0): hoppings along x carry exp(2 pi i flux y)."""
    h00 = np.zeros((width, width), complex)
    for y in range(width - 1):
        h00[y, y + 1] = h00[y + 1, y] = -t
    h01 = np.diag(-t * np.exp(2j * np.pi * flux * np.arange(width)))
    return h00, h01


def magnetic_device(seed, flux_sign=1.0):
    """A disordered square-lattice strip in a field between clean leads of the same strip."""
    rng = np.random.default_rng(seed)
    width, length = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    flux = flux_sign * rng.uniform(0.05, 0.45)
    h00, h01 = magnetic_strip_cell(width, flux)
    blocks = [h00 + np.diag(rng.uniform(-1.0, 1.0, width)) for _ in range(length)]
    # the device hoppings along x keep the Peierls phases, with random (real) strengths
    couplings = [h01 * rng.uniform(0.6, 1.2, width) for _ in range(length - 1)]
    energies = rng.uniform(-4.2, 4.2, size=6)
    device = Device(blocks, couplings, Lead(h00, h01.conj().T), Lead(h00, h01))
    clean = Device([h00] * length, [h01] * (length - 1), Lead(h00, h01.conj().T), Lead(h00, h01))
    return device, clean, energies


def lead_blocks_np(lead, energies):
    """``(A00, A01, A10)`` of ``A = E S - H`` as numpy arrays (nE, n, n), real energies."""
    e = np.asarray(energies, dtype=float)[:, None, None]
    h00, h01 = lead.h00.numpy(), lead.h01.numpy()
    s00 = lead.s00.numpy() if lead.has_overlap else np.eye(lead.size)
    s01 = lead.s01.numpy() if lead.has_overlap else np.zeros((lead.size, lead.size))
    a01 = e * s01 - h01
    return e * s00 - h00, a01, e * s01.conj().T - h01.conj().T


def full_matrices(device):
    """Dense H (and S, or None) of a block-tridiagonal device, slices in order."""
    sizes = device.slice_sizes
    off = np.cumsum([0] + sizes)
    n = off[-1]

    def assemble(blocks, couplings):
        m = np.zeros((n, n), complex)
        for i, b in enumerate(blocks):
            m[off[i]:off[i + 1], off[i]:off[i + 1]] = b.numpy()
        for i, c in enumerate(couplings):
            m[off[i]:off[i + 1], off[i + 1]:off[i + 2]] = c.numpy()
            m[off[i + 1]:off[i + 2], off[i]:off[i + 1]] = c.numpy().conj().T
        return m

    h = assemble(device.blocks, device.couplings)
    s = None if device.overlap is None else assemble(*device.overlap)
    return h, s, off


def rotated_left_lead(h00, h01_right, rng, s00=None, s01_right=None):
    """The mirror image of ``Lead(h00, h01_right)`` written in a random unitary basis U of its cell.

    Physically the same left lead of a uniform wire, but not bit-identical to the mirror, so the
    engine cannot take its one-QZ mirror shortcut (the two leads are solved separately).
    """
    n = h00.shape[0]
    u, _ = np.linalg.qr(cplx(rng, n, n))
    kw = {}
    if s00 is not None:
        kw = dict(s00=u @ s00 @ u.conj().T, s01=u @ s01_right.conj().T @ u.conj().T, s_coupling=u @ s01_right)
    # <left cell 0|H|device slice 0> = U h01 (the device slice is the next cell to the right)
    return Lead(u @ h00 @ u.conj().T, u @ h01_right.conj().T @ u.conj().T, coupling=u @ h01_right, **kw)


def perfect_wire(seed, overlap, mirror):
    rng = np.random.default_rng(seed)
    n, length = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    h00, h01 = herm(rng, n), cplx(rng, n, n)
    s00 = s01 = None
    if overlap:
        s00, s01 = np.eye(n) + small(rng, n, n, OVERLAP_DIAG, True), small(rng, n, n, OVERLAP_OFF)
    right = Lead(h00, h01, s00=s00, s01=s01)
    if mirror:
        left = Lead(h00, h01.conj().T, s00=s00, s01=None if s01 is None else s01.conj().T)
    else:
        left = rotated_left_lead(h00, h01, rng, s00, s01)
    ov = ([s00] * length, [s01] * (length - 1)) if overlap else None
    device = Device([h00] * length, [h01] * (length - 1), left, right, overlap=ov)
    return device, rng.uniform(-5.0, 5.0, size=6)


# ----------------------------------------------------------------------------- transmission
@SETTINGS
@given(seed=SEEDS, overlap=st.booleans())
def test_transmission_between_zero_and_open_channels(seed, overlap):
    device, rng = random_device(seed, overlap)
    e = rng.uniform(-4.0, 4.0, size=5)
    t = solve(device, e).transmission().numpy()
    bound = np.minimum(open_channels(device.left, e), open_channels(device.right, e))
    assert t.shape == (5,)
    assert (t >= -1e-9).all(), t
    assert (t <= bound + 1e-9).all(), (t, bound)


@SETTINGS
@given(seed=SEEDS, overlap=st.booleans())
def test_transmission_left_to_right_equals_right_to_left(seed, overlap):
    device, rng = random_device(seed, overlap)
    sol = solve(device, rng.uniform(-4.0, 4.0, size=5))
    np.testing.assert_allclose(sol.transmission().numpy(), sol.transmission_right_to_left().numpy(),
                               rtol=0, atol=1e-9)


@SETTINGS
@given(seed=SEEDS)
def test_magnetic_strip_reciprocity_and_bounds(seed):
    """In a field: T_LR == T_RL, 0 <= T <= channels, T(B) == T(-B) (Onsager, two terminals), and
    the clean strip transmits exactly its open channels."""
    results = []
    for sign in (1.0, -1.0):
        device, clean, e = magnetic_device(seed, sign)
        sol = solve(device, e)
        t = sol.transmission().numpy()
        np.testing.assert_allclose(t, sol.transmission_right_to_left().numpy(), rtol=0, atol=1e-9)
        channels = open_channels(device.right, e)
        np.testing.assert_array_equal(channels, open_channels(device.left, e))
        assert (t >= -1e-9).all() and (t <= channels + 1e-9).all(), (t, channels)
        np.testing.assert_allclose(solve(clean, e).transmission().numpy(), channels, rtol=0, atol=1e-9)
        results.append(t)
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=1e-9)


@SETTINGS
@given(seed=SEEDS, overlap=st.booleans(), mirror=st.booleans())
def test_perfect_device_transmits_open_channels(seed, overlap, mirror):
    """Device slices = lead cells: T == number of open channels (both lead solvers: the one-QZ mirror
    pair, and a left lead in a rotated basis solved on its own)."""
    device, e = perfect_wire(seed, overlap, mirror)
    channels = open_channels(device.right, e)
    np.testing.assert_array_equal(open_channels(device.left, e), channels)
    sol = solve(device, e)
    np.testing.assert_allclose(sol.transmission().numpy(), channels, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sol.transmission_right_to_left().numpy(), channels, rtol=0, atol=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS, armchair=st.booleans())
def test_perfect_graphene_ribbon_transmits_open_channels(seed, armchair):
    rng = np.random.default_rng(seed)
    cell = (armchair_ribbon_cell if armchair else zigzag_ribbon_cell)(int(rng.integers(2, 7)))
    device = cell.device(int(rng.integers(1, 4)))
    e = rng.uniform(-8.5, 8.5, size=6)
    np.testing.assert_allclose(solve(device, e).transmission().numpy(), open_channels(device.right, e),
                               rtol=0, atol=1e-9)


@SETTINGS
@given(seed=SEEDS, overlap=st.booleans())
def test_modes_and_sancho_agree_at_complex_energy(seed, overlap):
    """With a broadening both lead solvers solve the same fixed point: same T and LDOS."""
    device, rng = random_device(seed, overlap)
    e = rng.uniform(-4.0, 4.0, size=4)
    a = solve(device, e, eta=0.05)
    b = solve(device, e, eta=0.05, method="sancho")
    np.testing.assert_allclose(a.transmission().numpy(), b.transmission().numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(a.ldos().numpy(), b.ldos().numpy(), rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- densities of states
@SETTINGS
@given(seed=SEEDS)
def test_ldos_nonnegative_in_an_orthogonal_basis(seed):
    """LDOS >= 0 up to rounding. Rounding in -Im G_ii grows like eps |G|^2: next to a bound state of a
    device whose leads are both in a gap (seed 23217: |G| = 504 at E = -3.09 eV) it reaches 1e-11 with
    either lead solver, so the bound is 1e-12 or 1e-15 |G|^2, whichever is larger."""
    device, rng = random_device(seed, overlap=False)
    sol = solve(device, rng.uniform(-4.0, 4.0, size=5))
    ldos = sol.ldos()
    assert ldos.shape == (5, device.num_orbitals)
    g_max = torch.stack([g.abs().amax((-2, -1)) for g in sol.g_diagonal]).amax(0)  # (nE,)
    assert bool((ldos.min(-1).values >= -torch.clamp(1e-15 * g_max**2, min=1e-12)).all())
    np.testing.assert_allclose(sol.dos().numpy(), ldos.sum(-1).numpy(), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(seed=SEEDS)
def test_dos_nonnegative_with_overlap(seed):
    """Mulliken LDOS may dip below zero in a non-orthogonal basis, but DOS = Tr[A S] / 2 pi >= 0."""
    device, rng = random_device(seed, overlap=True)
    dos = solve(device, rng.uniform(-4.0, 4.0, size=5)).dos()
    assert float(dos.min()) >= -1e-10 * max(1.0, float(dos.abs().max()))


@SETTINGS
@given(seed=SEEDS, overlap=st.booleans())
def test_spectral_sum_rule(seed, overlap):
    """A_L + A_R == LDOS per orbital (G Gamma_L G^+ + G Gamma_R G^+ = i (G - G^+))."""
    device, rng = random_device(seed, overlap)
    sol = solve(device, rng.uniform(-4.0, 4.0, size=5))
    a_left, a_right = sol.spectral_functions()
    ldos = sol.ldos()
    assert a_left.shape == a_right.shape == ldos.shape
    scale = max(1.0, float(ldos.abs().max()))
    np.testing.assert_allclose((a_left + a_right).numpy(), ldos.numpy(), rtol=0, atol=1e-9 * scale)
    if not overlap:  # each lead-resolved part is a PSD diagonal
        assert float(a_left.min()) >= -1e-12 * scale and float(a_right.min()) >= -1e-12 * scale


# ----------------------------------------------------------------------------- leads
@SETTINGS
@given(seed=SEEDS, overlap=st.booleans())
def test_surface_green_function_dyson_residual(seed, overlap):
    """g solves g = [A00 - A01 g A10]^-1 at real energies, and is retarded: i (g - g^+) >= 0."""
    device, rng = random_device(seed, overlap)
    e = rng.uniform(-4.0, 4.0, size=6)
    for lead in (device.left, device.right):
        g = surface_green_function(lead, e).numpy()
        a00, a01, a10 = lead_blocks_np(lead, e)
        residual = g @ (a00 - a01 @ g @ a10) - np.eye(lead.size)
        g_norm = np.linalg.norm(g, 2, axis=(-2, -1))
        res_norm = np.linalg.norm(residual, 2, axis=(-2, -1))
        assert (res_norm <= 1e-9 * np.maximum(1.0, g_norm)).all(), (res_norm, g_norm)
        spectral = 1j * (g - np.swapaxes(g.conj(), -1, -2))
        assert np.linalg.eigvalsh(spectral).min() >= -1e-9 * max(1.0, g_norm.max())


@SETTINGS
@given(seed=SEEDS, overlap=st.booleans())
def test_gamma_hermitian_positive_semidefinite(seed, overlap):
    device, rng = random_device(seed, overlap)
    e = rng.uniform(-4.0, 4.0, size=6)
    sol = solve(device, e)
    sizes = device.slice_sizes
    gammas = [sol.gamma_left, sol.gamma_right]
    for lead, m in ((device.left, sizes[0]), (device.right, sizes[-1])):
        sigma = self_energy(lead, e, edge_size=m)
        gammas.append(1j * (sigma - sigma.mH))
    for gamma in gammas:
        gamma = gamma.numpy()
        scale = max(1.0, np.abs(gamma).max())
        np.testing.assert_allclose(gamma, np.swapaxes(gamma.conj(), -1, -2), rtol=0, atol=1e-12 * scale)
        assert np.linalg.eigvalsh(gamma).min() >= -1e-9 * scale


# ----------------------------------------------------------------------------- batching, dtype, from_matrix
@SETTINGS
@given(seed=SEEDS, batched_lead=st.booleans())
def test_batch_of_three_equals_three_solves(seed, batched_lead):
    rng = np.random.default_rng(seed)
    b = 3
    n_left, n_right = (int(x) for x in rng.integers(1, 4, size=2))
    sizes = [int(x) for x in rng.integers(1, 4, size=int(rng.integers(1, 5)))]
    blocks = [np.stack([herm(rng, s) for _ in range(b)]) for s in sizes]
    couplings = [np.stack([cplx(rng, sizes[i], sizes[i + 1]) for _ in range(b)]) for i in range(len(sizes) - 1)]
    left = Lead(herm(rng, n_left, 0.5), cplx(rng, n_left, n_left), coupling=cplx(rng, n_left, sizes[0], 0.7))
    if batched_lead:
        rh00 = np.stack([herm(rng, n_right, 0.5) for _ in range(b)])
        rh01 = np.stack([cplx(rng, n_right, n_right) for _ in range(b)])
        rc = np.stack([cplx(rng, n_right, sizes[-1], 0.7) for _ in range(b)])
    else:
        rh00, rh01, rc = herm(rng, n_right, 0.5), cplx(rng, n_right, n_right), cplx(rng, n_right, sizes[-1], 0.7)
    e = rng.uniform(-4.0, 4.0, size=4)
    sol = solve(Device(blocks, couplings, left, Lead(rh00, rh01, coupling=rc)), e)
    t, ldos = sol.transmission(), sol.ldos()
    assert t.shape == (b, 4) and ldos.shape == (b, 4, sum(sizes))
    t_scalar = solve(Device(blocks, couplings, left, Lead(rh00, rh01, coupling=rc)), float(e[1])).transmission()
    assert t_scalar.shape == (b,)
    for k in range(b):
        right_k = Lead(rh00[k], rh01[k], coupling=rc[k]) if batched_lead else Lead(rh00, rh01, coupling=rc)
        single = solve(Device([x[k] for x in blocks], [x[k] for x in couplings], left, right_k), e)
        np.testing.assert_allclose(t[k].numpy(), single.transmission().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ldos[k].numpy(), single.ldos().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(float(t_scalar[k]), float(single.transmission()[1]), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(seed=SEEDS)
def test_complex64_agrees_with_complex128(seed):
    device, rng = random_device(seed)
    e = rng.uniform(-4.0, 4.0, size=5)
    sol32 = solve(device, e, dtype=torch.complex64)
    t32, t64 = sol32.transmission(), solve(device, e).transmission()
    assert t32.dtype == torch.float32 and sol32.ldos().dtype == torch.float32
    assert torch.isfinite(sol32.ldos()).all()
    t64 = t64.numpy()
    err = np.abs(t32.double().numpy() - t64)
    assert (err <= 1e-4 * np.maximum(1.0, t64)).all(), (err, t64)


@SETTINGS
@given(seed=SEEDS, overlap=st.booleans(), sparse=st.booleans())
def test_from_matrix_on_shuffled_orbitals(seed, overlap, sparse):
    """Device.from_matrix on a randomly permuted full matrix: same T, and LDOS / spectral functions
    in the input (permuted) orbital order."""
    device, rng = random_device(seed, overlap)
    h, s, off = full_matrices(device)
    n = h.shape[0]
    perm = rng.permutation(n)  # new orbital k is old orbital perm[k]
    inv = np.argsort(perm)
    h_shuffled = h[np.ix_(perm, perm)]
    s_shuffled = None if s is None else s[np.ix_(perm, perm)]
    if sparse:
        import scipy.sparse

        h_shuffled = scipy.sparse.csr_matrix(h_shuffled)
    left_orbitals = [int(inv[j]) for j in range(off[0], off[1])]  # listed in the edge slice's order
    right_orbitals = [int(inv[j]) for j in range(off[-2], off[-1])]
    rebuilt = Device.from_matrix(h_shuffled, device.left, device.right, left_orbitals, right_orbitals,
                                 overlap=s_shuffled)
    assert rebuilt.num_orbitals == n
    e = rng.uniform(-4.0, 4.0, size=4)
    ref, got = solve(device, e), solve(rebuilt, e)
    np.testing.assert_allclose(got.transmission().numpy(), ref.transmission().numpy(), rtol=0, atol=1e-10)
    ref_ldos = ref.ldos().numpy()
    scale = max(1.0, np.abs(ref_ldos).max())
    np.testing.assert_allclose(got.ldos().numpy(), ref_ldos[..., perm], rtol=0, atol=1e-10 * scale)
    for a, b in zip(got.spectral_functions(), ref.spectral_functions()):
        np.testing.assert_allclose(a.numpy(), b.numpy()[..., perm], rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("seed", [0, 1])
def test_mirror_shortcut_matches_separately_solved_leads(seed):
    """A uniform wire (one QZ for both leads) vs the same wire with its left lead in a rotated basis."""
    rng = np.random.default_rng(seed)
    n, length = 3, 3
    h00, h01 = herm(rng, n), cplx(rng, n, n)
    blocks = [h00 + np.diag(rng.uniform(-0.5, 0.5, n)) for _ in range(length)]
    right = Lead(h00, h01)
    mirror = Device(blocks, [h01] * (length - 1), Lead(h00, h01.conj().T), right)
    rotated = Device(blocks, [h01] * (length - 1), rotated_left_lead(h00, h01, rng), right)
    e = np.linspace(-4.0, 4.0, 23) + 0.0123
    a, b = solve(mirror, e), solve(rotated, e)
    np.testing.assert_allclose(a.transmission().numpy(), b.transmission().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.ldos().numpy(), b.ldos().numpy(), rtol=1e-9, atol=1e-10)
