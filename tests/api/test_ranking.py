"""One ranking (``invdesign.ranking``) seen two ways: the optimizers' ``is_better`` on Evaluations and the
campaign's ``rank_key`` on their history records (``Evaluation.to_dict``, NaN as strings) order alike."""

from __future__ import annotations

import itertools
import json
import math

from invdesign.campaign import records
from invdesign.constraints import ConstraintSpec
from invdesign.optimizers.base import is_better, violation
from invdesign.problem import Evaluation

SPECS = [ConstraintSpec("g", "ineq", 0.1), ConstraintSpec("h", "eq", 0.0)]
SPEC_DICTS = [{"name": s.name, "kind": s.kind, "tol": s.tol} for s in SPECS]


def _evaluations() -> list[Evaluation]:
    nan, inf = math.nan, math.inf
    rows = [  # (value, constraints, feasible, failed)
        (1.0, [0.0, 0.0], True, False), (0.5, [0.05, 0.0], True, False), (0.5, [0.0, 0.0], True, False),
        (-3.0, [0.6, 0.0], False, False), (-3.0, [0.0, -0.2], False, False), (2.0, [0.2, 0.1], False, False),
        (0.1, [nan, 0.0], False, False), (nan, [0.0, 0.0], True, False), (inf, [0.0, 0.0], True, False),
        (nan, [nan, nan], False, True), (0.0, [inf, 0.0], False, False),
    ]
    return [Evaluation(x=[float(i)], value=v, constraints=c, feasible=f, failed=d)
            for i, (v, c, f, d) in enumerate(rows)]


def test_is_better_and_record_rank_keys_agree_on_every_pair():
    evaluations = _evaluations()
    recs = [json.loads(json.dumps(e.to_dict(), allow_nan=False)) for e in evaluations]  # as stored on disk
    for (a, ra), (b, rb) in itertools.permutations(zip(evaluations, recs), 2):
        assert is_better(a, b, SPECS) == (records.rank_key(ra, SPEC_DICTS) < records.rank_key(rb, SPEC_DICTS))
    for e, rec in zip(evaluations, recs):
        assert violation(e, SPECS) == records.violation(rec, SPEC_DICTS)


def test_the_order():
    evaluations = _evaluations()
    recs = [e.to_dict() for e in evaluations]
    order = sorted(range(len(recs)), key=lambda i: records.rank_key(recs[i], SPEC_DICTS))
    # feasible by value (the first of equals first); infeasible by violation (a NaN or infinite value flagged
    # feasible counts as infeasible, violating nothing); failed last
    assert order == [1, 2, 0, 7, 8, 4, 5, 3, 6, 10, 9]
    assert records.best_index(recs, SPEC_DICTS) == 1
    assert violation(evaluations[5], SPECS) == 0.2  # (0.2 - 0.1) + |0.1|
