"""Win rates compare finished runs only: an unfinished run (no final value) is neither a tie nor a loss,
and the report says how many were left out."""

import dataclasses
import math

import numpy as np

from invdesign.campaign import run_campaign
from invdesign.report import load, win_rates
from invdesign.report.analysis import unfinished_runs
from tests.campaign.helpers import small_spec


def _pending(run):
    empty = np.zeros(0)
    return dataclasses.replace(run, status="pending", records=[], cost=empty, elapsed=empty, value=empty,
                               feasible=empty.astype(bool), failed=empty.astype(bool), best=empty, completed=None)


def test_unfinished_runs_are_left_out_of_the_win_rates(tmp_path):
    spec = small_spec(problems=[{"name": "toy/quadratic", "label": "quad"}], optimizers=["random", "sobol"],
                      seeds=[0, 1], budget={"max_evals": 4})
    run_campaign(spec, tmp_path / "c", progress=False)
    data = load(tmp_path / "c")
    by_id = {r.run_id: r for r in data.runs}
    a, b = by_id["quad__random__s0"], by_id["quad__sobol__s0"]
    runs = [r if r.seed == 0 else _pending(r) for r in data.runs]
    data = dataclasses.replace(data, runs=runs)
    assert unfinished_runs(data) == 2
    w = win_rates(data)
    i, j = data.optimizers.index("random"), data.optimizers.index("sobol")
    expected = 0.5 if a.final_best == b.final_best else float(a.final_best < b.final_best)
    assert w[i, j] == expected  # was: pending pairs scored too (inf vs inf a tie, inf vs finite a loss)
    assert math.isclose(w[i, j] + w[j, i], 1.0)
