"""Poisson grids and the orbital-space operator against closed forms (conventions: ``invdesign.scf``)."""

import math

import numpy as np
import pytest
import torch

from invdesign.negf import NEGFInputError
from invdesign.scf import Box, electrostatics, screened_1d, tensor_grid
from invdesign.scf.grid import E_OVER_EPS0_V_NM


def _points_x(x):
    return np.column_stack([x, np.zeros_like(x), np.zeros_like(x)])


def test_e_over_eps0_constant():
    assert E_OVER_EPS0_V_NM == pytest.approx(1.602176634e-19 / 8.8541878128e-12 * 1e9, rel=1e-15)
    assert E_OVER_EPS0_V_NM == pytest.approx(18.0951, rel=1e-5)


def test_1d_linear_potential_between_contacts():
    """No charge: phi(x) = V0 + (V1 - V0) x / L exactly, for a non-uniform grid."""
    x = np.sort(np.concatenate([[0.0, 10.0], np.random.default_rng(0).uniform(0, 10, 30)]))
    grid = tensor_grid([x], eps=3.9, depth=2.0,
                       electrodes={"source": [Box([0.0], [0.0])], "drain": [Box([10.0], [10.0])]})
    pts = np.linspace(0.3, 9.7, 17)
    es = electrostatics(grid, _points_x(pts))
    phi = es.potential(torch.tensor([0.2, 1.2], dtype=torch.float64), torch.zeros(len(pts), dtype=torch.float64))
    assert torch.allclose(phi, torch.as_tensor(0.2 + pts / 10), atol=1e-13)
    # U = -phi (eV): the potential energy of an electron
    u = es.potential_energy(torch.tensor([0.2, 1.2], dtype=torch.float64), torch.zeros(len(pts), dtype=torch.float64))
    assert torch.equal(u, -phi)


def test_1d_parabola_from_uniform_charge():
    """Uniform charge density rho (e/nm^3) between grounded plates: phi = (e/eps0) rho x (L - x) / (2 eps_r)."""
    length, eps_r, area, rho_vol = 8.0, 11.7, 3.0, 0.01
    x = np.linspace(0.0, length, 41)
    grid = tensor_grid([x], eps=eps_r, depth=area,
                       electrodes={"source": [Box([0.0], [0.0])], "drain": [Box([length], [length])]})
    free = x[1:-1]
    es = electrostatics(grid, _points_x(free))
    q = torch.full((len(free),), rho_vol * area * (x[1] - x[0]), dtype=torch.float64)  # e per node
    phi = es.potential(torch.zeros(2, dtype=torch.float64), q)
    exact = E_OVER_EPS0_V_NM * rho_vol * free * (length - free) / (2 * eps_r)
    assert np.abs(phi.numpy() - exact).max() < 1e-12 * exact.max()
    # positive charge raises phi everywhere (K >= 0), i.e. lowers the electron potential energy
    assert (es.kernel >= -1e-15).all()


def _capacitor_potential(z, d1, d2, eps1, eps2, v):
    """Two dielectric layers between plates at z = 0 (0 V) and z = d1 + d2 (v volts)."""
    e1 = v / (d1 + d2 * eps1 / eps2)  # field in layer 1; D continuous: eps1 E1 = eps2 E2
    e2 = e1 * eps1 / eps2
    return np.where(z <= d1, e1 * z, e1 * d1 + e2 * (z - d1))


@pytest.mark.parametrize("dims", [2, 3])
def test_layered_capacitor(dims):
    """Plates (Dirichlet) across z, zero-field sides: piecewise-linear phi with eps1 E1 = eps2 E2."""
    d1, d2, eps1, eps2, v = 1.5, 2.5, 3.9, 25.0, 0.7
    xs = np.linspace(0.0, 3.0, 7)
    zs = np.linspace(0.0, d1 + d2, 17)  # node at the interface (z = 1.5 = 6 * 0.25)
    big = 100.0
    if dims == 2:
        axes, lo, hi = [xs, zs], [-big, -big], [big, big]
        bottom = Box([-big, 0.0], [big, 0.0])
        top = Box([-big, d1 + d2], [big, d1 + d2])
        layer2 = Box([-big, d1], [big, big])
    else:
        ys = np.linspace(-1.0, 1.0, 5)
        axes = [xs, ys, zs]
        bottom = Box([-big, -big, 0.0], [big, big, 0.0])
        top = Box([-big, -big, d1 + d2], [big, big, d1 + d2])
        layer2 = Box([-big, -big, d1], [big, big, big])
    grid = tensor_grid(axes, eps=eps1, dielectrics=[(layer2, eps2)], depth=1.0,
                       electrodes={"bottom": [bottom], "top": [top]})
    z = np.array([0.1, 0.6, 1.2, 1.5, 1.9, 2.6, 3.3, 3.9])
    pts = np.column_stack([np.full(len(z), 1.3), np.zeros(len(z)), z])
    es = electrostatics(grid, pts)
    phi = es.potential(torch.tensor([0.0, v], dtype=torch.float64), torch.zeros(len(z), dtype=torch.float64))
    assert np.abs(phi.numpy() - _capacitor_potential(z, d1, d2, eps1, eps2, v)).max() < 1e-12


def test_kernel_symmetric_positive_definite_3d():
    xs, ys, zs = np.linspace(0, 4, 9), np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)
    grid = tensor_grid([xs, ys, zs], eps=3.9,
                       electrodes={"gate": [Box([-9, -9, 1.0], [9, 9, 1.0])], "back": [Box([-9, -9, -1.0], [9, 9, -1.0])]})
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(0, 4, 12), rng.uniform(-0.9, 0.9, 12), rng.uniform(-0.9, 0.9, 12)])
    es = electrostatics(grid, pts)
    k = es.kernel
    assert torch.allclose(k, k.T, atol=1e-14 * float(k.abs().max()))
    assert float(torch.linalg.eigvalsh(k).min()) > 0
    # with every electrode at 1 V and no charge the potential is 1 V everywhere
    phi = es.potential(torch.ones(2, dtype=torch.float64), torch.zeros(12, dtype=torch.float64))
    assert torch.allclose(phi, torch.ones(12, dtype=torch.float64), atol=1e-12)


def test_interpolation_conserves_charge():
    grid = tensor_grid([np.linspace(0, 2, 5), np.linspace(0, 1, 4)], eps=1.0,
                       electrodes={"a": [Box([0, 0], [0, 1])]})
    pts = np.array([[0.3, 0.0, 0.2], [1.99, 0.0, 0.7], [2.0, 0.0, 1.0]])
    weights = grid.interpolation(pts).toarray()
    assert np.allclose(weights.sum(1), 1.0, atol=1e-15)
    assert (weights >= 0).all()


def test_screened_1d_gate_control_and_screening_length():
    """Under a long gate without charge, phi -> V_g and relaxes towards a contact over lambda."""
    lam, h = 2.0, 0.05
    x = np.arange(0.0, 60.0 + h / 2, h)
    grid = screened_1d(x, [("gate", 0.0, 60.0, 8.0)], lambda_nm=lam)
    pts = np.array([10.0, 12.0, 30.0])
    es = electrostatics(grid, _points_x(pts))
    v = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)  # source, drain grounded; gate 1 V
    phi = es.potential(v, torch.zeros(3, dtype=torch.float64)).numpy()
    assert phi[2] == pytest.approx(1.0, abs=1e-6)
    # 1 - phi decays as exp(-x / lambda) (discrete: cosh(h / lam_d) = 1 + h^2 / (2 lam^2))
    lam_discrete = h / math.acosh(1 + h**2 / (2 * lam**2))
    assert (1 - phi[1]) / (1 - phi[0]) == pytest.approx(math.exp(-2.0 / lam_discrete), rel=1e-6)


def test_screened_1d_line_charge_under_gate():
    """Far from contacts, a uniform line charge rho_l under the gate shifts phi by (e/eps0) rho_l / c_g."""
    h, c_g = 0.1, 5.0
    x = np.arange(0.0, 80.0 + h / 2, h)
    grid = screened_1d(x, [("gate", 0.0, 80.0, c_g)], lambda_nm=1.5)
    es = electrostatics(grid, _points_x(x[1:-1]))
    rho_line = 0.02  # e per nm
    q = torch.full((len(x) - 2,), rho_line * h, dtype=torch.float64)
    phi = es.potential(torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64), q).numpy()
    middle = phi[len(phi) // 2]
    assert middle == pytest.approx(0.3 + E_OVER_EPS0_V_NM * rho_line / c_g, rel=1e-9)


def test_grid_errors_name_the_input():
    grid = tensor_grid([np.linspace(0, 1, 3)], electrodes={"source": [Box([0], [0])]})
    with pytest.raises(NEGFInputError, match="outside the Poisson grid"):
        grid.interpolation(np.array([[2.0, 0, 0]]))
    with pytest.raises(NEGFInputError, match="no electrode"):
        tensor_grid([np.linspace(0, 1, 3)]).system()
    with pytest.raises(NEGFInputError, match="electrode 'gate' contains no grid node"):
        tensor_grid([np.linspace(0, 1, 3)], electrodes={"gate": [Box([5], [6])]})
    with pytest.raises(NEGFInputError, match="increasing"):
        tensor_grid([[0.0, 0.0, 1.0]])


def test_node_charges_match_orbital_charges_and_differentiate():
    """Fixed charges on grid nodes (doping per grid cell) act like the same charges on orbitals there."""
    x = np.linspace(0.0, 6.0, 13)
    grid = tensor_grid([x], eps=4.0, depth=2.0,
                       electrodes={"source": [Box([0.0], [0.0])], "drain": [Box([6.0], [6.0])]})
    es = electrostatics(grid, _points_x(x[1:-1]))
    q_nodes = torch.zeros(13, dtype=torch.float64)
    q_nodes[3], q_nodes[7] = 0.2, -0.05
    phi_nodes = es.node_charge_potential(q_nodes)
    phi_orbitals = es.potential(torch.zeros(2, dtype=torch.float64), q_nodes[1:-1])
    assert torch.allclose(phi_nodes, phi_orbitals, atol=1e-13)
    q = q_nodes.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: es.node_charge_potential(t), (q,))
