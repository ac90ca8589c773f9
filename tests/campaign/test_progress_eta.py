"""The progress ETA converges on steady progress and says it cannot estimate when progress stalls or the
estimate keeps receding (was: an ETA growing by the minute while BoTorch runs were in flight)."""

import math

from invdesign.campaign import CampaignSpec
from invdesign.campaign import progress as progress_mod
from invdesign.campaign.progress import Progress
from tests.campaign.helpers import small_spec


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _progress(tmp_path, monkeypatch, fraction):
    clock = Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", clock)
    units = CampaignSpec.from_dict(small_spec()).units()
    p = Progress(tmp_path, units, stream=None)
    monkeypatch.setattr(p, "fraction", lambda: fraction(clock.t))
    p._t0, p._f0, p._last_change = 0.0, 0.0, (0.0, 0.0)
    return p, clock


def _at(p, clock, t):
    clock.t = t
    return p.eta_text()


def test_steady_progress_gives_a_converging_eta(tmp_path, monkeypatch):
    p, clock = _progress(tmp_path, monkeypatch, lambda t: min(1.0, t / 1000))
    texts = [_at(p, clock, t) for t in (100, 200, 300, 400)]
    assert texts == ["ETA 15:00", "ETA 13:20", "ETA 11:40", "ETA 10:00"]


def test_stalled_progress_cannot_be_estimated(tmp_path, monkeypatch):
    p, clock = _progress(tmp_path, monkeypatch, lambda t: min(t, 100) / 1000)
    assert _at(p, clock, 100).startswith("ETA 15:00")
    assert _at(p, clock, 150).startswith("ETA ")
    assert _at(p, clock, 400) == "ETA unknown (no progress for 05:00)"


def test_receding_estimate_is_not_shown_as_an_eta(tmp_path, monkeypatch):
    p, clock = _progress(tmp_path, monkeypatch, lambda t: 0.01 * math.sqrt(t))  # runs slowing down
    _at(p, clock, 100)
    assert _at(p, clock, 160).startswith("ETA ")  # too early to tell
    assert _at(p, clock, 220).startswith("ETA unknown (estimate receding")
