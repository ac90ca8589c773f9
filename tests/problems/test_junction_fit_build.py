"""Building ``paper/junction_fit`` twice in one process computes its target T(E) and physical matrices once
(they depend on the settings only; the full problem took 2.7 s to build again under load, now 0.01 s),
and the shared pieces are read-only: evaluating one problem does not change another's target."""

from __future__ import annotations

import torch

import problems.junction_fit as jf

SMALL = {"cells": (2, 2), "n_energies": 30, "batch": 30}


def test_second_build_reuses_the_target_and_matrices(monkeypatch):
    calls = []
    real = jf.junction_transmission
    monkeypatch.setattr(jf, "junction_transmission", lambda *a: calls.append(a) or real(*a))
    jf._target_transmission.cache_clear()
    jf._physical_matrices.cache_clear()
    first = jf.junction_fit(**SMALL)
    second = jf.junction_fit(**SMALL)
    assert len(calls) == 1 and jf._physical_matrices.cache_info().hits == 1
    assert torch.equal(first.target, second.target) and torch.equal(first.initial_point(), second.initial_point())
    other = jf.junction_fit(**{**SMALL, "n_energies": 20})  # other settings: computed for them
    assert len(calls) == 2 and other.target.shape == (20,)
    expected = real((7, 4), (2, 2), first.energies)
    assert torch.equal(first.target, expected)  # the memo is the computation, not an approximation of it


def test_evaluations_leave_the_shared_target_alone():
    p = jf.junction_fit(**SMALL)
    before = p.target.clone()
    ev = p.evaluate_one(p.initial_point(), need_grad=True)
    assert not ev.failed
    assert torch.equal(jf.junction_fit(**SMALL).target, before)
