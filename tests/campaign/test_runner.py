"""The per-run loop: exact resume after a crash at every write, failures, runs that raise, budgets."""

import json
import math
import os

import pytest

from invdesign.campaign import CampaignSpec, read_history, run_campaign, run_unit
from invdesign.campaign import runner as runner_mod
from invdesign.campaign.storage import HISTORY_FILE, HistoryWriter, read_json, run_dir
from invdesign.optimizers import make_optimizer, minimize
from invdesign.problem import Evaluation
from invdesign.testing import TOY_PROBLEMS
from tests.campaign.helpers import TIMES, comparable_summary, histories, small_spec


class Crash(BaseException):
    """Stands for SIGKILL: not an Exception, so the runner does not record it as an error."""


def unit_of(problem, optimizer, settings=None, budget=None, seed=0, problem_settings=None, start="problem"):
    spec = CampaignSpec.from_dict({"seeds": [seed], "budget": budget or {"max_cost": 30},
                                   "problems": [{"name": problem, "settings": problem_settings or {},
                                                 "start": start}],
                                   "optimizers": [{"name": optimizer, "settings": settings or {}}]})
    return spec.units()[0]


def run_state_without_times(directory, unit):
    rdir = run_dir(directory, unit.run_id)
    records, _ = read_history(rdir / HISTORY_FILE)
    done = read_json(rdir / "completed")
    return ([{k: v for k, v in r.items() if k not in TIMES} for r in records],
            {k: v for k, v in done.items() if k != "wall_time_s"})


class WriteCrasher:
    """Patches the runner's writes; raises Crash at write number ``at`` (1-based), before it
    ("before"), after it ("after"), or in the middle of a history line ("torn")."""

    def __init__(self, monkeypatch, at=None, mode="before"):
        self.count, self.at, self.mode, self.kinds = 0, at, mode, []
        original_append, original_json = HistoryWriter.append, runner_mod.atomic_write_json

        def append(writer, record):
            self.count += 1
            self.kinds.append("append")
            if self.count == self.at and self.mode == "torn":
                data = json.dumps(record).encode()
                os.write(writer._fd, data[: len(data) // 2])
                raise Crash()
            self._maybe("before")
            original_append(writer, record)
            self._maybe("after")

        def write_json(*args, **kwargs):
            self.count += 1
            self.kinds.append("json")
            self._maybe("before")
            original_json(*args, **kwargs)
            self._maybe("after")

        monkeypatch.setattr(HistoryWriter, "append", append)
        monkeypatch.setattr(runner_mod, "atomic_write_json", write_json)

    def _maybe(self, when):
        if self.count == self.at and self.mode == when:
            raise Crash()


UNITS = [
    ("toy/quadratic", "lbfgs", {}, {"max_cost": 30}),
    ("toy/constrained", "random", {"batch_size": 3}, {"max_evals": 12}),
    ("toy/quadratic", "nevergrad", {"optimizer": "CMA", "batch_size": 2}, {"max_evals": 8}),
    ("toy/constrained", "adam", {"steps": 6}, {"max_cost": 100}),
]


@pytest.mark.parametrize("problem,optimizer,settings,budget", UNITS, ids=[u[1] for u in UNITS])
def test_crash_at_every_write_resumes_exactly(tmp_path, monkeypatch, problem, optimizer, settings, budget):
    """A kill leaves the files as they are after some number of writes (or in the middle of a history
    line): crash before each write in turn (the state after write k is the state before write k + 1),
    after the last one, and in the middle of each history line; resume; compare with a clean run."""
    crash_everywhere_and_resume(tmp_path, monkeypatch, unit_of(problem, optimizer, settings, budget))


COMPACT_UNITS = [
    ("toy/quadratic", "adam", {"steps": 7}, {"max_cost": 100}),
    ("toy/constrained", "lbfgs", {}, {"max_cost": 30}),
    ("toy/constrained", "random", {"batch_size": 3}, {"max_evals": 12}),
]


@pytest.mark.parametrize("problem,optimizer,settings,budget", COMPACT_UNITS, ids=[u[1] for u in COMPACT_UNITS])
def test_compact_history_resumes_exactly_and_keeps_the_best_point(tmp_path, monkeypatch, problem, optimizer,
                                                                  settings, budget):
    """High-dimensional problems write compact lines (digest, no gradient, x only on new bests and every
    k-th line): the run ends exactly as with full lines, resumes exactly after a crash anywhere (a
    gradient method re-evaluates the replayed point), and the completion marker has the best point."""
    unit = unit_of(problem, optimizer, settings, budget)
    run_unit(tmp_path / "full", unit)
    full, full_done = run_state_without_times(tmp_path / "full", unit)
    monkeypatch.setattr(runner_mod, "FULL_HISTORY_MAX_DIM", 1)
    monkeypatch.setattr(runner_mod, "COMPACT_X_EVERY", 3)
    compact, done = crash_everywhere_and_resume(tmp_path / "compact", monkeypatch, unit)
    assert done == full_done and done["best_x"] is not None
    assert len(compact) == len(full)
    specs = read_json(run_dir(tmp_path / "full", unit.run_id) / "settings.json")["problem_info"]["constraints"]
    best = None
    for f, c in zip(full, compact):
        assert "grad" not in c and "constraint_grads" not in c and len(c["x_sha256"]) == 64
        assert {k: v for k, v in c.items() if k not in ("x", "x_sha256")} == \
            {k: v for k, v in f.items() if k not in ("x", "grad", "constraint_grads")}
        improves = not f["failed"] and (best is None or runner_mod.rank_key(f, specs) < runner_mod.rank_key(best, specs))
        best = f if improves else best
        assert ("x" in c) == (improves or f["n"] % 3 == 0) and c.get("x", f["x"]) == f["x"]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_compact_replay_of_failed_evaluations(tmp_path, monkeypatch, optimizer):
    """A gradient method starting where the simulation fails: replayed compact lines of failed
    evaluations are re-evaluated, fail again, and the run resumes exactly."""
    monkeypatch.setattr(runner_mod, "FULL_HISTORY_MAX_DIM", 1)
    unit = unit_of("toy/failing", optimizer, {"steps": 6} if optimizer == "adam" else {}, {"max_cost": 24},
                   seed=1, start="random")  # seed 1's start has x0 > 0.5: the simulation raises there
    records, done = crash_everywhere_and_resume(tmp_path, monkeypatch, unit)
    assert records[0]["failed"] and done["status"] == "completed"


def test_compact_replay_of_a_changed_problem_is_an_error(tmp_path, monkeypatch):
    """A compact line replayed to a gradient method is re-evaluated: a different value is a mismatch."""
    monkeypatch.setattr(runner_mod, "FULL_HISTORY_MAX_DIM", 1)
    unit = unit_of("toy/quadratic", "adam", {"steps": 4}, {"max_cost": 100})
    with monkeypatch.context() as m:
        WriteCrasher(m, at=4, mode="after")  # settings, checkpoint, line 0, checkpoint, ... line 1 written
        with pytest.raises(Crash):
            run_unit(tmp_path, unit)
    rdir = run_dir(tmp_path, unit.run_id)
    records, _ = read_history(rdir / HISTORY_FILE)
    assert records and "grad" not in records[-1]
    lines = (rdir / HISTORY_FILE).read_text().splitlines()
    last = json.loads(lines[-1])
    last["value"] = last["value"] + 1.0  # as if the problem had changed since
    (rdir / HISTORY_FILE).write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    result = run_unit(tmp_path, unit)
    assert result["status"] == "error"
    assert "re-evaluated" in (rdir / "error.txt").read_text()


def crash_everywhere_and_resume(tmp_path, monkeypatch, unit):
    """Crash at every write of ``unit`` in turn, resume, compare with a clean run; returns its state."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # a killed process loses nothing fsync would keep
    with monkeypatch.context() as m:
        counter = WriteCrasher(m)
        run_unit(tmp_path / "clean", unit)
    expected = run_state_without_times(tmp_path / "clean", unit)
    assert expected[1]["status"] == "completed" and expected[0]
    total = counter.count
    cases = [(k, "before") for k in range(1, total + 1)] + [(total, "after")]
    cases += [(k, "torn") for k, kind in enumerate(counter.kinds, start=1) if kind == "append"]
    for k, mode in cases:
        directory = tmp_path / f"{mode}{k}"
        with monkeypatch.context() as m:
            WriteCrasher(m, at=k, mode=mode)
            with pytest.raises(Crash):
                run_unit(directory, unit)
        result = run_unit(directory, unit)  # resume, no crash
        assert result["status"] == "completed", (k, mode, result)
        assert run_state_without_times(directory, unit) == expected, (k, mode)
    return expected


def test_campaign_run_equals_driver_minimize(tmp_path):
    """A campaign run evaluates exactly what ``minimize`` evaluates with the same budget."""
    run_campaign(small_spec(problems=["toy/rosenbrock2"], seeds=[3]), tmp_path / "c", progress=False)
    for label, name, settings in (("lbfgs", "lbfgs", {}), ("cma", "nevergrad", {"optimizer": "CMA"}),
                                  ("random", "random", {"batch_size": 3})):
        problem = TOY_PROBLEMS["rosenbrock2"]()
        result = minimize(problem, make_optimizer(name, problem, 3, **settings), max_cost=40)
        records, _ = read_history(run_dir(tmp_path / "c", f"toy-rosenbrock2__{label}__s3") / HISTORY_FILE)
        assert [Evaluation.from_dict(r).x for r in records] == [e.x for e in result.history]
        assert [r["value"] for r in records] == [e.value for e in result.history]
        row = [r for r in comparable_summary(tmp_path / "c") if r["optimizer"] == label][0]
        assert float(row["best_value"]) == result.best.value
        assert float(row["cost"]) == result.total_cost and int(row["evaluations"]) == result.n_evals
        assert row["stop_reason"] == result.stop_reason


def test_failing_evaluations_are_kept(tmp_path):
    spec = small_spec(problems=["toy/failing"], optimizers=["random"], seeds=[0], budget={"max_evals": 40})
    result = run_campaign(spec, tmp_path / "c", progress=False)
    row = result.rows[0]
    assert row["status"] == "completed" and row["evaluations"] == 40
    records, _ = read_history(tmp_path / "c" / "runs" / "toy-failing__random__s0" / HISTORY_FILE)
    failed = [r for r in records if r["failed"]]
    assert len(records) == 40 and len(failed) == row["failed_evaluations"] > 0
    reasons = {r["reason"].split(":")[0] for r in failed}
    assert reasons == {"RuntimeError", "NonFiniteError"}  # the exception region and the NaN region
    assert all(r["value"] == "nan" and r["cost"] == 1.0 for r in failed)
    assert row["best_feasible"] and math.isfinite(row["best_value"])
    best = min(float(r["value"]) for r in records if not r["failed"])
    assert row["best_value"] == best


def test_a_run_that_raises_is_recorded_and_the_campaign_goes_on(tmp_path):
    spec = small_spec(problems=[{"name": "tests.campaign.helpers:exploding", "label": "boom",
                                 "settings": {"explode_at": 7}},
                                {"name": "toy/quadratic", "label": "zero", "settings": {"dim": 0}}],
                      optimizers=["lbfgs", {"name": "adam", "settings": {"schedule": "bogus"}}], seeds=[0])
    result = run_campaign(spec, tmp_path / "c", progress=False)
    status = {(r["problem"], r["optimizer"]): r for r in result.rows}
    assert all(r["status"] == "error" for r in result.rows) and result.complete
    boom = tmp_path / "c" / "runs" / "boom__lbfgs__s0"
    assert "simulated crash in evaluation call 7" in (boom / "error.txt").read_text()
    assert "Traceback" in (boom / "error.txt").read_text()
    assert status[("boom", "lbfgs")]["evaluations"] == 6  # the six evaluations before the crash are kept
    assert len(read_history(boom / HISTORY_FILE)[0]) == 6
    assert "block 'x': shape must be positive" in (tmp_path / "c/runs/zero__lbfgs__s0/error.txt").read_text()
    assert "schedule must be one of" in (tmp_path / "c/runs/boom__adam__s0/error.txt").read_text()
    # errors are final for resume, unless asked to retry: the rerun continues from the checkpoint
    again = run_campaign(spec, tmp_path / "c", progress=False)
    assert comparable_summary(tmp_path / "c") == [{**{k: str(v) for k, v in r.items()}} for r in
                                                  _strings(again.rows)]
    from invdesign.campaign import resume_campaign

    first = read_history(boom / HISTORY_FILE)[0]
    retried = resume_campaign(tmp_path / "c", retry_errors=True, progress=False)
    records = read_history(boom / HISTORY_FILE)[0]
    assert records[:6] == first  # replayed, not re-evaluated (a fresh problem counts calls from 0 again)
    assert [r["n"] for r in records] == list(range(len(records)))  # nothing duplicated
    row = [r for r in retried.rows if (r["problem"], r["optimizer"]) == ("boom", "lbfgs")][0]
    assert row["status"] == "completed" and row["evaluations"] == len(records) > 6  # L-BFGS converges this time


def _strings(rows):
    from invdesign.campaign.summary import COMPARED, _fmt

    return [{k: _fmt(r[k]) for k in COMPARED} for r in rows]


def test_replay_mismatch_is_an_error_and_keeps_the_history(tmp_path):
    unit = unit_of("toy/quadratic", "random", {"batch_size": 2}, {"max_evals": 6})
    rdir = run_dir(tmp_path, unit.run_id)
    run_unit(tmp_path, unit)
    lines = (rdir / HISTORY_FILE).read_text().splitlines()
    record = json.loads(lines[3])
    record["x"][0] += 1e-12
    (rdir / HISTORY_FILE).write_text("\n".join(lines[:3] + [json.dumps(record)]) + "\n")
    (rdir / "completed").unlink()
    (rdir / "checkpoint.json").unlink()  # force a replay of the whole history
    result = run_unit(tmp_path, unit)
    assert result["status"] == "error"
    assert "does not match what the optimizer asks now" in (rdir / "error.txt").read_text()
    assert len(read_history(rdir / HISTORY_FILE)[0]) == 4


def test_budgets(tmp_path):
    rows = run_campaign(small_spec(problems=["toy/quadratic"], optimizers=[
        {"name": "random", "settings": {"batch_size": 4}}, {"name": "adam", "label": "adam"}], seeds=[0],
        budget={"max_evals": 10, "max_cost": 15}), tmp_path / "a", progress=False).rows
    assert rows[0]["evaluations"] == 8 and rows[0]["stop_reason"] == "max_evals"  # a third batch of 4 does not fit
    assert rows[1]["cost"] == 14.0 and rows[1]["stop_reason"] == "max_cost"  # 7 gradient evaluations at 2 each
    rows = run_campaign(small_spec(problems=["toy/quadratic"], optimizers=["random"], seeds=[0],
                                   budget={"max_time_s": 0.3}), tmp_path / "b", progress=False).rows
    assert rows[0]["stop_reason"] == "max_time" and rows[0]["evaluations"] > 0


def test_rerun_of_a_finished_campaign_changes_nothing(tmp_path):
    spec = small_spec(optimizers=["lbfgs", "random"], seeds=[0])
    run_campaign(spec, tmp_path / "c", progress=False)
    before = (comparable_summary(tmp_path / "c"), histories(tmp_path / "c"))
    run_campaign(spec, tmp_path / "c", progress=False)
    assert (comparable_summary(tmp_path / "c"), histories(tmp_path / "c")) == before


def test_a_lost_or_corrupt_checkpoint_is_replayed_from_the_history(tmp_path, monkeypatch):
    unit = unit_of("toy/quadratic", "nevergrad", {"optimizer": "CMA", "batch_size": 2}, {"max_evals": 12})
    run_unit(tmp_path / "clean", unit)
    expected = run_state_without_times(tmp_path / "clean", unit)
    for damage in ("corrupt", "missing"):
        directory = tmp_path / damage
        with monkeypatch.context() as m:
            WriteCrasher(m, at=14, mode="before")  # partway: some rounds told, the history longer than that
            with pytest.raises(Crash):
                run_unit(directory, unit)
        checkpoint = run_dir(directory, unit.run_id) / "checkpoint.json"
        if damage == "corrupt":
            checkpoint.write_text('{"step": 3, "optim')
        else:
            checkpoint.unlink()
        assert run_unit(directory, unit)["status"] == "completed"
        assert run_state_without_times(directory, unit) == expected


def test_random_start_gives_each_seed_its_own_starting_point(tmp_path):
    """``start = "random"``: a deterministic optimizer starts at a seeded random point, the same for
    every optimizer of that seed and different between seeds; the default starts every seed alike."""
    from invdesign.optimizers.base import seeded_start

    problems = [{"name": "toy/rosenbrock2", "label": "rb", "start": "random"},
                {"name": "toy/rosenbrock2", "label": "rb_fixed"}]
    run_campaign(small_spec(problems=problems, optimizers=["lbfgs", "adam"], seeds=[0, 1], budget={"max_evals": 3}),
                 tmp_path / "c", progress=False)

    def first_x(label, opt, seed):
        records, _ = read_history(run_dir(tmp_path / "c", f"{label}__{opt}__s{seed}") / HISTORY_FILE)
        return records[0]["x"]

    problem = TOY_PROBLEMS["rosenbrock2"]()
    for seed in (0, 1):
        expected = seeded_start(problem, seed).tolist()
        assert first_x("rb", "lbfgs", seed) == expected == first_x("rb", "adam", seed)
    assert first_x("rb", "lbfgs", 0) != first_x("rb", "lbfgs", 1)
    assert first_x("rb_fixed", "lbfgs", 0) == first_x("rb_fixed", "lbfgs", 1) == problem.initial_point().tolist()


def test_bad_start_is_a_spec_error():
    from invdesign.campaign import CampaignSpec
    from invdesign.campaign.spec import SpecError

    with pytest.raises(SpecError, match=r"problems\[0\]\.start"):
        CampaignSpec.from_dict(small_spec(problems=[{"name": "toy/quadratic", "start": "middle"}]))


def test_every_run_of_a_problem_is_charged_the_same_measured_grad_cost(tmp_path):
    """The factor is measured once per problem (grad_costs/<problem>.json) and every run uses it; a
    factor already on file is what all runs use."""
    spec = CampaignSpec.from_dict({
        "seeds": [0, 1], "budget": {"max_cost": 12},
        "problems": [{"name": "tests.campaign.helpers:measured_quadratic", "label": "mq"}],
        "optimizers": ["lbfgs", {"name": "adam", "settings": {"steps": 3}}, "random"]})
    run_campaign(spec, tmp_path / "a", progress=False)
    factors = {json.loads((d / "settings.json").read_text())["problem_info"]["grad_cost_factor"]
               for d in (tmp_path / "a" / "runs").iterdir()}
    on_file = json.loads((tmp_path / "a" / "grad_costs" / "mq.json").read_text())
    assert factors == {on_file["grad_cost_factor"]} and on_file["grad_cost_factor"] >= 1.0

    (tmp_path / "b" / "grad_costs").mkdir(parents=True)
    (tmp_path / "b" / "grad_costs" / "mq.json").write_text(json.dumps({"grad_cost_factor": 7.0}))
    run_campaign(spec, tmp_path / "b", progress=False)
    for d in (tmp_path / "b" / "runs").iterdir():
        records, _ = read_history(d / HISTORY_FILE)
        assert all(r["cost"] == (7.0 if r["grad"] is not None else 1.0) for r in records)


def test_a_finished_runs_lease_left_by_a_killed_holder_is_cleared_on_resume(tmp_path):
    """A kill between a run's ``completed`` marker and its lease release leaves the lease behind; the next
    resume takes it over and releases it. A lease held on another host is left alone."""
    import socket
    import subprocess
    import sys
    import time

    spec = small_spec(optimizers=["random"], seeds=[0, 1])
    run_campaign(spec, tmp_path / "c", progress=False)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rdirs = sorted((tmp_path / "c" / "runs").iterdir())
    lease = {"host": socket.gethostname(), "pid": int(dead.stdout), "start": None, "token": "t",
             "acquired": time.time(), "renewed": time.time(), "expires": time.time() + 86400}
    (rdirs[0] / "lease.json").write_text(json.dumps(lease))
    (rdirs[1] / "lease.json").write_text(json.dumps({**lease, "host": "elsewhere", "pid": 1}))
    before = (comparable_summary(tmp_path / "c"), histories(tmp_path / "c"))
    run_campaign(spec, tmp_path / "c", progress=False)
    assert not (rdirs[0] / "lease.json").exists()
    assert read_json(rdirs[1] / "lease.json")["host"] == "elsewhere"
    assert (comparable_summary(tmp_path / "c"), histories(tmp_path / "c")) == before
