"""Graphene pz + overlap band fit (problems/graphene_band_fit.py): contract, the library behind the fast
bands, identifiability of the reference's own parameters, and a fit that beats Saito's start."""

from __future__ import annotations

import math

import pytest
import torch

from invdesign.fitting import gauss_newton_curvature, jacobian, levenberg_marquardt
from invdesign.testing import ProblemContract
from invdesign.tb import bloch_hamiltonian, graphene_sheet, tables
from problems.graphene_band_fit import (
    ACC_NM,
    BOX,
    REFERENCE_SET,
    SAITO,
    GrapheneBandFit,
    hbar_vf,
    high_symmetry_points,
    loop_k_points,
    reich_parameters,
)

D = torch.float64


class TestGrapheneBandFit(ProblemContract):
    n_points = 3

    def make_problem(self):
        return GrapheneBandFit()


class TestGrapheneBandFit3Shells(ProblemContract):
    n_points = 2

    def make_problem(self):
        return GrapheneBandFit(fit_shells=3, n_k=60)


def fitted(problem: GrapheneBandFit, x0: torch.Tensor):
    lo, hi = problem.bounds
    return levenberg_marquardt(problem.weighted_residuals, x0, lower=lo, upper=hi,
                               jacobian_fn=problem.weighted_jacobian)


def test_fast_bands_are_the_library_bands():
    """The linear-in-parameters Bloch matrices reproduce bloch_hamiltonian of the same TBModel, and the
    reference is the tables' Reich set itself."""
    p = GrapheneBandFit(fit_shells=3, n_k=60)
    sheet = graphene_sheet(ACC_NM)
    lib = bloch_hamiltonian(tables.graphene_pz(REFERENCE_SET), sheet).energies(p.ref.k)
    torch.testing.assert_close(p.ref.energies, lib, rtol=0, atol=1e-12)
    gen = torch.Generator().manual_seed(3)
    for fit_shells in (1, 2, 3):
        q = GrapheneBandFit(fit_shells=fit_shells, n_k=60)
        x = q.space.to_params(q.random_points(1, gen)[0])["tb"]
        fast = q.simulate({"tb": x})["energies"]
        slow = bloch_hamiltonian(q.model(x), sheet).energies(q.ref.k)
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fit_shells", [1, 3])
def test_analytic_jacobian_is_autograds(fit_shells):
    """Hellmann-Feynman derivatives (used by the fits and the report) against reverse-mode autograd,
    at the start and at random points of the box; the K point (degenerate bands) is among the targets."""
    p = GrapheneBandFit(fit_shells=fit_shells, n_k=20)  # few targets: autograd's Jacobian is one backward each
    assert p.ref.corners["K"] == 8
    for z in [p.initial_point(), *p.random_points(1, torch.Generator().manual_seed(5))]:
        x = p.space.to_params(z)["tb"]
        auto = jacobian(p.weighted_residuals, x)
        torch.testing.assert_close(p.weighted_jacobian(x), auto, rtol=0, atol=1e-12 * float(auto.abs().max()))


def test_k_loop_corners_and_the_dirac_point():
    k, corners = loop_k_points(120)
    p = high_symmetry_points()
    assert k.shape == (120, 3)
    for name in "GKM":
        torch.testing.assert_close(k[corners[name]], p[name], rtol=0, atol=1e-12)
    assert torch.linalg.vector_norm(p["K"]) == pytest.approx(4 * math.pi / (3 * math.sqrt(3) * ACC_NM))
    steps = torch.linalg.vector_norm(torch.cat([k, k[:1]]).diff(dim=0), dim=1)
    assert float(steps.max() / steps.min()) < 1.05  # uniform in |k| within rounding of the segment counts
    ref = GrapheneBandFit().ref
    e_k = ref.energies[corners["K"]]
    assert float(e_k[1] - e_k[0]) < 1e-12
    r = reich_parameters()  # f1 = f3 = 0 and g2 = -3 at K: E_D = (e2p - 3 gamma1) / (1 - 3 s1)
    assert ref.dirac_point_ev == pytest.approx((r["e2p"] - 3 * r["gamma1"]) / (1 - 3 * r["s1"]), abs=1e-12)
    assert ref.tier.tolist().count([0, 0]) > 0 and int((ref.tier == 0).sum()) == 24


def test_fermi_velocity_matches_the_nearest_neighbour_closed_form():
    """NN with overlap, E = (e2p + gamma0 w) / (1 + s0 w), |f| = (3 acc / 2) q near K:
    hbar v_F = (3 acc / 2) |gamma0 - e2p s0|."""
    p = GrapheneBandFit()
    values = {"e2p": 0.4, "gamma0": -2.8, "s0": 0.11}
    bloch = p.bands.bloch(values)
    expected = 1.5 * ACC_NM * abs(values["gamma0"] - values["e2p"] * values["s0"])
    assert float(hbar_vf(bloch)) == pytest.approx(expected, rel=1e-6)


def test_three_shell_fit_recovers_reichs_seven_parameters():
    """Identifiability: the 3-shell model contains the reference, so its least-squares fit from a
    perturbed start must return Reich's numbers, and the Jacobian there must have full rank."""
    p = GrapheneBandFit(fit_shells=3)
    assert p.names == ["e2p", "gamma0", "gamma1", "gamma2", "s0", "s1", "s2"]
    truth = torch.tensor([reich_parameters()[n] for n in p.names], dtype=D)
    width = torch.tensor([BOX[n][1] - BOX[n][0] for n in p.names], dtype=D)
    gen = torch.Generator().manual_seed(11)
    start = truth + 0.1 * width * (2 * torch.rand(7, generator=gen, dtype=D) - 1)  # +-10 % of the box
    assert p.evaluate_one(start).value > 1.0
    res = fitted(p, start)
    assert res.converged and res.loss < 1e-20
    torch.testing.assert_close(res.x, truth, rtol=0, atol=1e-6)
    sv = gauss_newton_curvature(p.weighted_residuals, truth, p.names, jacobian_fn=p.weighted_jacobian).singular_values
    assert float(sv[-1] / sv[0]) > 1e-4  # every one of the seven is pinned by the bands


def test_nearest_neighbour_fit_beats_saitos_start_and_reports():
    p = GrapheneBandFit()
    z0 = p.initial_point()
    assert p.space.to_params(z0)["tb"].tolist() == [SAITO["e2p"], SAITO["gamma0"], SAITO["s0"]]
    start = p.evaluate_one(z0)
    res = fitted(p, p.space.to_params(z0)["tb"])
    assert res.converged
    best = p.evaluate_one(p.space.from_params({"tb": res.x}), need_grad=True)
    assert best.value == pytest.approx(res.loss, rel=1e-12)  # objective = sum of squared weighted residuals
    assert best.value < 0.3 * start.value
    assert max(abs(g) for g in best.grad) < 1e-6 * start.value  # a stationary point, inside the box
    lo, hi = p.bounds
    assert bool(((res.x > lo + 1e-3 * (hi - lo)) & (res.x < hi - 1e-3 * (hi - lo))).all())
    assert best.metrics["rms_inner_meV"] < start.metrics["rms_inner_meV"] / 3

    rep = p.report(res.x)
    assert rep["loss"] == pytest.approx(res.loss, rel=1e-12) and rep["dof"] == 240 - 3
    assert set(rep["params"]) == set(rep["sigma"]) == {"e2p", "gamma0", "s0"}
    assert all(0 < s < 0.1 for s in rep["sigma"].values())
    groups = rep["residuals_meV"]
    assert groups["all"]["n"] == 240 and groups["valence band"]["n"] == groups["conduction band"]["n"] == 120
    assert sum(groups[g]["n"] for g in groups if "E_D" in g) == 240
    assert groups["K (Dirac point)"]["max_abs"] == pytest.approx(
        1000 * abs(rep["dirac_point_eV"]["fit"] - rep["dirac_point_eV"]["reference"]), rel=1e-9)
    # the window near K is fitted an order of magnitude better than the band bottom at Gamma
    assert groups["within 1 eV of E_D (near K)"]["rms"] < groups["Gamma"]["rms"] / 10


def test_plot_design_writes_bands_and_tables(tmp_path):
    p = GrapheneBandFit(n_k=60)
    params = p.space.to_params(p.initial_point())
    paths = p.plot_design(params, tmp_path)
    assert [x.name for x in paths] == ["bands.png", "fit.md", "fit.json"]
    assert all(x.stat().st_size > 0 for x in paths)
    text = (tmp_path / "fit.md").read_text()
    assert "gamma0" in text and "±" in text and "Gamma" in text and "-3.033" in text
