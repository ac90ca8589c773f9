"""``tb.bands.k_path``: the one k-path builder (plots, and the graphene fit's Gamma-K-M-Gamma loop)."""

import math

import pytest
import torch

from invdesign.tb.bands import k_path


def test_steps_per_segment_and_exact_corners():
    pts = [[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]]
    k, dist, corners = k_path(pts, steps=[4, 8])
    assert k.shape == (13, 3) and corners == [0, 4, 12]
    for i, p in zip(corners, pts):
        assert torch.equal(k[i, :2], torch.tensor(p, dtype=torch.float64))  # corners exact, z = 0 added
    assert float(dist[-1]) == pytest.approx(3.0, abs=1e-15)
    assert torch.allclose(k.diff(dim=0).norm(dim=1)[:4], torch.full((4,), 0.25, dtype=torch.float64), atol=1e-15)


def test_n_k_shares_points_by_length_and_closed_loops_do_not_repeat_the_start():
    """A closed triangle 3-4-5 with 24 points: 6, 8, 10 intervals, the closing corner left out."""
    pts = [[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]
    k, dist, corners = k_path(pts, n_k=24, closed=True)
    assert k.shape == (24, 3) and corners == [0, 6, 14]
    assert torch.allclose(k.diff(dim=0).norm(dim=1), torch.full((23,), 0.5, dtype=torch.float64), atol=1e-14)
    assert float(dist[-1]) == pytest.approx(11.5, abs=1e-14)  # one step short of the full 12
    k_open, _, corners_open = k_path(pts, n_k=25)
    assert k_open.shape == (25, 3) and corners_open == [0, 6, 14, 24]
    assert torch.equal(k_open[:24], k)


def test_bad_paths_are_named():
    with pytest.raises(ValueError, match="at least two points"):
        k_path([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"steps must be one number or one per segment \(2\); got 3"):
        k_path([[0, 0, 0], [1, 0, 0], [2, 0, 0]], steps=[1, 2, 3])
    with pytest.raises(ValueError, match="every segment needs at least one interval"):
        k_path([[0, 0, 0], [1, 0, 0]], steps=0)
    with pytest.raises(ValueError, match="n_k must be an integer >= 3"):
        k_path([[0, 0, 0], [1, 0, 0], [1, math.pi, 0]], n_k=2)
    with pytest.raises(ValueError, match="every segment needs at least one interval"):
        k_path([[0, 0, 0], [100, 0, 0], [100, 1, 0]], n_k=5)  # the short segment rounds to 0
