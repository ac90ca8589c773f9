"""A campaign on a problem that simulates batches (a reduced ``paper/agnr_doping``): the runner hands each
round's points to one ``simulate_batch`` call, and a run interrupted inside such a call (as a kill would)
resumes to exactly the uninterrupted campaign, for multistart and for a batched gradient-free method."""

from __future__ import annotations

from pathlib import Path

import pytest

from invdesign.campaign import run_campaign
from problems.agnr_doping import AGNRDoping
from tests.campaign.helpers import assert_same_campaign

INTERRUPT_AT: list[int | None] = [None]  # the simulate_batch call (counted from 1) that raises, None: none
CALLS = [0]


class InterruptibleAGNR(AGNRDoping):
    """``paper/agnr_doping`` whose ``simulate_batch`` counts its calls and raises KeyboardInterrupt (not
    caught by the runner, like a kill) at call ``INTERRUPT_AT[0]``."""

    def simulate_batch(self, params):
        CALLS[0] += 1
        if CALLS[0] == INTERRUPT_AT[0]:
            raise KeyboardInterrupt("interrupted inside a batched solve")
        return super().simulate_batch(params)


def interruptible_agnr(**settings) -> InterruptibleAGNR:
    return InterruptibleAGNR(**settings)


SPEC = {
    "name": "batched_resume", "seeds": [0],
    "budget": {"max_cost": 40, "grad_cost": 2.0},
    "problems": [{"name": "tests.campaign.test_batched_resume:interruptible_agnr", "label": "agnr",
                  "settings": {"width": 5, "line": 2, "cells": 2, "n_energies": 8}, "start": "random"}],
    "optimizers": [{"name": "multistart", "settings": {"members": 3, "screen": 6}},
                   {"name": "random", "settings": {"batch_size": 3}}],
}


@pytest.fixture()
def reference(tmp_path) -> Path:
    INTERRUPT_AT[0], CALLS[0] = None, 0
    run_campaign(SPEC, tmp_path / "reference", progress=False)
    return tmp_path / "reference"


@pytest.mark.parametrize("interrupt_at", [1, 4, 9])
def test_interrupted_inside_a_batch_resumes_exactly(reference, tmp_path, interrupt_at):
    rounds = CALLS[0]
    assert rounds >= 10  # every multi-point round of both runs was one batched call
    out = tmp_path / "interrupted"
    INTERRUPT_AT[0], CALLS[0] = interrupt_at, 0
    with pytest.raises(KeyboardInterrupt):
        run_campaign(SPEC, out, progress=False)
    INTERRUPT_AT[0] = None
    run_campaign(SPEC, out, progress=False)
    assert_same_campaign(out, reference)


def _round_torn_after(reference: Path, run: str, size: int) -> int:
    """How many history lines the whole campaign wrote when ``run``'s first multi-point round of ``size``
    points had all but its last point on disk (runs are written one after another, in directory order)."""
    from tests.campaign.helpers import histories

    written = 0
    for rid, records in histories(reference).items():
        if rid != run:
            written += len(records)
            continue
        for rec in records:
            written += 1
            if rec["slot"] == size - 2 and rec["step"] > 0:
                return written
    raise AssertionError(f"{run}: no round of {size} points")


@pytest.mark.parametrize("run", ["agnr__multistart__s0", "agnr__random__s0"])
def test_killed_between_the_records_of_a_batch_resumes_exactly(reference, tmp_path, monkeypatch, run):
    """A kill after some of a batched round's records reached the disk: on resume the missing point must
    come from the round's batch, not a simulation of its own (one point alone agrees only to ~1e-15)."""
    from invdesign.campaign.storage import HistoryWriter

    tear_at = _round_torn_after(reference, run, size=3)
    appended, append = [0], HistoryWriter.append

    def append_then_die(self, record):
        append(self, record)
        appended[0] += 1
        if appended[0] == tear_at:
            raise KeyboardInterrupt("killed between the records of one round")

    out = tmp_path / "torn"
    INTERRUPT_AT[0] = None
    monkeypatch.setattr(HistoryWriter, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(SPEC, out, progress=False)
    monkeypatch.setattr(HistoryWriter, "append", append)
    run_campaign(SPEC, out, progress=False)
    assert_same_campaign(out, reference)
