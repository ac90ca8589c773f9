"""Parameter blocks, transforms, smooth bases and the maps of ParameterSpace."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from invdesign.params import (
    TRANSFORMS,
    Block,
    BSplineBasis,
    GaussianBumps,
    ParameterError,
    ParameterSpace,
    Transform,
)

D = torch.float64
finite = st.floats(-1e3, 1e3, allow_nan=False)
unit = st.floats(0.0, 1.0)


def t(x):
    return torch.as_tensor(x, dtype=D)


# ----------------------------------------------------------------------------- transforms


@settings(max_examples=60, deadline=None)
@given(lo=finite, width=st.floats(1e-3, 1e3), frac=st.floats(0.01, 0.99))
def test_identity_and_sigmoid_round_trip_inside_the_box(lo, width, frac):
    lower, upper = t([lo]), t([lo + width])
    x = lower + frac * (upper - lower)
    for name in ("identity", "sigmoid"):
        tr = TRANSFORMS[name]
        z = tr.inverse(x, lower, upper)
        torch.testing.assert_close(tr.forward(z, lower, upper), x, rtol=1e-9, atol=1e-9 * width)


@settings(max_examples=60, deadline=None)
@given(log_lo=st.floats(-20, 20), decades=st.floats(0.01, 10), frac=unit)
def test_log10_round_trip_and_bounds(log_lo, decades, frac):
    lower, upper = t([10**log_lo]), t([10 ** (log_lo + decades)])
    tr = TRANSFORMS["log10"]
    zlo, zhi = tr.z_bounds(lower, upper)
    torch.testing.assert_close(zlo, t([log_lo]))
    torch.testing.assert_close(zhi, t([log_lo + decades]))
    z = zlo + frac * (zhi - zlo)
    x = tr.forward(z, lower, upper)
    torch.testing.assert_close(tr.inverse(x, lower, upper), z, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(z=st.floats(-700, 700))
def test_sigmoid_maps_every_coordinate_into_the_box(z):
    x = TRANSFORMS["sigmoid"].forward(t([z]), t([-2.0]), t([3.0]))
    assert -2.0 <= float(x) <= 3.0


def test_space_bounds_per_transform():
    space = ParameterSpace([
        Block("a", (2,), lower=-1.0, upper=[1.0, 2.0]),
        Block("c", (), lower=1e15, upper=1e20, transform="log10"),
        Block("s", (), lower=0.0, upper=1.0, transform="sigmoid"),
        Block("h", (), lower=0.5),
        Block("free", ()),
        Block("pos", (), transform="log10"),  # lower=None means 0 under log10
    ])
    expected = [[-1, -1, 15, -math.inf, 0.5, -math.inf, -math.inf], [1, 2, 20, math.inf, math.inf, math.inf, math.inf]]
    torch.testing.assert_close(space.bounds, t(expected))
    assert space.names() == ["a[0]", "a[1]", "c", "s", "h", "free", "pos"]
    # default init: midpoint in z (geometric mean for log10), bound + 1 when half open, 0 when open
    torch.testing.assert_close(space.initial_point(), t([0.0, 0.5, 17.5, 0.0, 1.5, 0.0, 0.0]))
    params = space.to_params(space.initial_point())
    torch.testing.assert_close(params["c"], t(10**17.5))
    torch.testing.assert_close(params["s"], t(0.5))
    torch.testing.assert_close(params["pos"], t(1.0))


@settings(max_examples=40, deadline=None)
@given(u=st.lists(st.floats(0.01, 0.99), min_size=5, max_size=5))
def test_unit_cube_round_trip_for_every_kind_of_bound(u):
    space = ParameterSpace([Block("box", (), lower=-3.0, upper=4.0), Block("lo", (), lower=1.0),
                            Block("hi", (), upper=-2.0), Block("free", ()),
                            Block("sig", (), lower=5.0, upper=6.0, transform="sigmoid")])
    u = t(u)
    z = space.from_unit(u)
    b = space.bounds
    assert ((b[0] <= z) & (z <= b[1])).all()
    torch.testing.assert_close(space.to_unit(z), u, rtol=1e-10, atol=1e-12)
    # the sigmoid block's cube coordinate is its relative position in the physical box
    torch.testing.assert_close(space.to_params(z)["sig"], 5.0 + u[4])


def test_unit_cube_is_clipped_to_finite_coordinates():
    space = ParameterSpace([Block("box", (), lower=-3.0, upper=4.0), Block("lo", (), lower=1.0),
                            Block("hi", (), upper=-2.0), Block("free", ())])
    z = space.from_unit(t([[0.0] * 4, [1.0] * 4, [-0.5] * 4, [1.5] * 4]))
    assert torch.isfinite(z).all()
    torch.testing.assert_close(z[0, 0], t(-3.0))
    torch.testing.assert_close(z[1, 0], t(4.0))
    torch.testing.assert_close(z[2], z[0])
    torch.testing.assert_close(z[3], z[1])


def test_random_points_are_seeded_uniform_in_the_physical_box():
    space = ParameterSpace([Block("x", (3,), lower=0.0, upper=2.0, transform="sigmoid"),
                            Block("y", (2,), lower=-1.0, upper=1.0)])
    a = space.random_points(2000, torch.Generator().manual_seed(7))
    b = space.random_points(2000, 7)
    assert torch.equal(a, b) and a.shape == (2000, 5)
    assert not torch.equal(a, space.random_points(2000, 8))
    x = space.to_params(a)["x"]
    assert abs(float(x.mean()) - 1.0) < 0.05 and ((x > 0) & (x < 2)).all()


def test_frozen_entries_stay_at_init_and_are_not_coordinates():
    block = Block("x", (2, 2), lower=-1.0, upper=1.0, init=[[0.1, 0.2], [0.3, 0.4]],
                  frozen=[[True, False], [False, True]])
    space = ParameterSpace([block, Block("d", (), lower=1.0, upper=100.0, transform="log10", init=3.0, frozen=True)])
    assert space.dim == 2 and space.names() == ["x[0,1]", "x[1,0]"]
    params = space.to_params(t([[0.5, -0.5], [0.9, 0.8]]))
    torch.testing.assert_close(params["x"][0], t([[0.1, 0.5], [-0.5, 0.4]]))
    assert float(params["d"][1]) == 3.0  # exactly init, no 10**log10 round-off
    assert space.from_params(params).shape == (2, 2)


def test_to_params_is_differentiable():
    space = ParameterSpace([Block("p", (12,), lower=0.0, upper=1.0, transform="sigmoid", basis=BSplineBasis(5, 12)),
                            Block("d", (), lower=1e-2, upper=1e2, transform="log10"),
                            Block("x", (3,), lower=-1.0, upper=1.0, frozen=[False, True, False])])
    z = space.random_points(2, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: tuple(space.to_params(z).values()), (z,))


def test_custom_transform_instance():
    class Cube(Transform):
        name = "cube"

        def forward(self, z, lower, upper):
            return z**3

        def inverse(self, x, lower, upper):
            return torch.sign(x) * x.abs() ** (1 / 3)

        def z_bounds(self, lower, upper):
            return self.inverse(lower, None, None), self.inverse(upper, None, None)

    space = ParameterSpace([Block("x", (2,), lower=-8.0, upper=27.0, transform=Cube())])
    torch.testing.assert_close(space.bounds, t([[-2.0, -2.0], [3.0, 3.0]]))
    torch.testing.assert_close(space.to_params(t([1.0, -2.0]))["x"], t([1.0, -8.0]))


# ----------------------------------------------------------------------------- bases


@pytest.mark.parametrize("basis", [BSplineBasis(6, 40), BSplineBasis(4, 10, degree=1), GaussianBumps(5, 40, 0.15)])
def test_bases_are_partitions_of_unity(basis):
    m = basis.matrix
    assert m.shape == (basis.n_points, basis.n_coeffs) and m.dtype == D
    assert (m >= 0).all()
    torch.testing.assert_close(m.sum(1), torch.ones(basis.n_points, dtype=D))
    coeffs = torch.randn(3, basis.n_coeffs, dtype=D, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(basis.project(basis(coeffs)), coeffs, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(coeffs=st.lists(st.floats(-0.5, 2.0), min_size=7, max_size=7), which=st.sampled_from(["bspline", "gauss"]))
def test_bounded_coefficients_give_a_bounded_profile(coeffs, which):
    basis = BSplineBasis(7, 50) if which == "bspline" else GaussianBumps(7, 50, 0.1)
    profile = basis(t(coeffs))
    assert (profile >= -0.5 - 1e-12).all() and (profile <= 2.0 + 1e-12).all()


def test_bounded_block_with_basis_stays_bounded_under_any_coordinates():
    basis = GaussianBumps(6, 64, 0.1)
    space = ParameterSpace([Block("p", (64,), lower=0.2, upper=0.9, transform="sigmoid", basis=basis)])
    p = space.to_params(50.0 * torch.randn(100, space.dim, dtype=D, generator=torch.Generator().manual_seed(1)))["p"]
    assert (p >= 0.2).all() and (p <= 0.9).all()


def test_profiles_are_smooth():
    # a bounded second derivative: max |second difference| / h^2 converges as the grid is refined
    coeffs = torch.rand(8, dtype=D, generator=torch.Generator().manual_seed(2))
    for make in (lambda n: BSplineBasis(8, n), lambda n: GaussianBumps(8, n, 0.08)):
        curvature = [float(torch.diff(make(n)(coeffs), n=2).abs().max()) * (n - 1) ** 2 for n in (201, 401, 801)]
        assert abs(curvature[2] - curvature[1]) < 0.05 * curvature[1], curvature


def test_basis_first_and_last_points_follow_the_end_coefficients():
    basis = BSplineBasis(5, 9)
    profile = basis(t([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert float(profile[0]) == pytest.approx(1.0) and float(profile[-1]) == pytest.approx(5.0)


# ----------------------------------------------------------------------------- errors name the block


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="x", shape=(2, 0)), "block 'x': shape must be positive"),
    (dict(name="x", shape=(3,), lower=[0.0, 1.0, 2.0], upper=1.0), r"block 'x': lower must be < upper.*entry \(1,\)"),
    (dict(name="x", shape=(2,), lower=0.0, upper=1.0, init=[0.5, 1.5]),
     r"block 'x': init 1.5 at entry \(1,\) is outside"),
    (dict(name="c", shape=(), lower=-1.0, upper=10.0, transform="log10"),
     "block 'c': transform 'log10' needs positive"),
    (dict(name="c", shape=(), lower=0.0, upper=10.0, transform="log10", init=0.0), "block 'c': init 0.*no finite"),
    (dict(name="s", shape=(2,), lower=0.0, transform="sigmoid"), "block 's': transform 'sigmoid' needs finite"),
    (dict(name="x", shape=(2,), transform="log2"), "block 'x': unknown transform 'log2'"),
    (dict(name="x", shape=(2,), lower=[0.0, 1.0, 2.0]), r"block 'x': lower cannot be read .*\(2,\)"),
    (dict(name="x", shape=(2,), frozen=[True, False, True]), "block 'x': frozen has shape"),
    (dict(name="x", shape=(2,), frozen=[1, 0]), "block 'x': frozen must be a boolean mask"),
    (dict(name="p", shape=(10,), basis=BSplineBasis(4, 12)), "block 'p': shape .* n_points = 12"),
    (dict(name="x", shape=(2,), lower=math.nan), "block 'x': bounds contain NaN"),
    (dict(name="", shape=(2,)), "non-empty"),
])
def test_block_errors_name_the_block(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Block(**kwargs)


def test_space_and_mapping_errors():
    with pytest.raises(ParameterError, match=r"duplicate block names \['x'\]"):
        ParameterSpace([Block("x", ()), Block("x", (2,))])
    space = ParameterSpace([Block("x", (2,), lower=0.0, upper=1.0), Block("y", ())])
    with pytest.raises(ParameterError, match=r"z must have shape \(3,\) or \(n, 3\); got \(2,\)"):
        space.to_params(t([0.1, 0.2]))
    with pytest.raises(ParameterError, match="block 'y' is missing"):
        space.from_params({"x": t([0.1, 0.2])})
    with pytest.raises(ParameterError, match=r"unknown blocks \['z'\]"):
        space.from_params({"x": t([0.1, 0.2]), "y": t(0.0), "z": t(1.0)})
    with pytest.raises(ParameterError, match=r"block 'x': value has shape \(3,\)"):
        space.from_params({"x": t([0.1, 0.2, 0.3]), "y": t(0.0)})
    with pytest.raises(ParameterError, match=r"block 'x': value 1.5 .* outside the bounds \[0, 1\]"):
        space.from_params({"x": t([0.1, 1.5]), "y": t(0.0)})
    with pytest.raises(ParameterError, match="BSplineBasis needs"):
        BSplineBasis(3, 10, degree=3)
    with pytest.raises(ParameterError, match="GaussianBumps needs"):
        GaussianBumps(4, 10, width=0.0)
    with pytest.raises(KeyError, match="no block 'q'"):
        space.block("q")


def test_from_params_accepts_round_off_outside_the_bounds():
    space = ParameterSpace([Block("x", (2,), lower=0.0, upper=1.0)])
    z = space.from_params({"x": t([1.0 + 1e-12, -1e-13])})
    assert np.array_equal(z.numpy(), [1.0, 0.0])
