"""One run: ask -> evaluate -> append to the history -> tell, checkpointing every round; resumable.

The order of writes in round ``k`` (``step`` counts rounds told)::

    ask()                      -> batch P_k (the optimizer keeps it pending until tell)
    checkpoint(step=k, pending=P_k, counters)        atomic
    for each row j of P_k: evaluate, append history line {step: k, slot: j, n, ...}   fsync'ed
    tell(all rows)

and at the end ``checkpoint(step=K, no pending)``, then the ``completed`` marker. Resuming (after a kill
at any point) loads the checkpoint (or starts fresh), re-asks (the checkpointed pending batch comes back
as is), and *replays* every history line not yet told: its point must equal the asked row (checked
exactly), its evaluation is reused, never recomputed. Only rows without a line are evaluated. So no
finished evaluation is lost or done twice, and a deterministic optimizer on a deterministic problem
ends exactly where an uninterrupted run ends. The history can replay any number of rounds beyond the
checkpoint (a missing checkpoint replays the whole run from a fresh optimizer).

Budgets (per run, the rule of ``invdesign.optimizers.driver.Budget``, which ``minimize`` follows too): a
round starts only if its whole batch fits in ``max_evals`` and ``max_cost``; ``max_time_s`` is checked
between rounds against the run's accumulated active time (time before a kill since the last record is
not counted). Recorded but untold evaluations are always told, even past the time budget.

``grad_cost_factor`` (the forward-equivalent cost of a value + gradient) comes from, in this order: the
spec's ``budget.grad_cost`` (source "spec"), the problem's own declared factor (a class attribute or a
setting: "problem"), else a measurement ("measured"). A measurement is made once per problem of the
campaign (the first run to need it writes ``grad_costs/<problem>.json``; the others read it); with a
spec value it is still made, and recorded beside the value used. A measured factor is a CPU-time ratio
and moves with the machine's load (1.000 in a Python session, 1.074 in a campaign, same problem), so
the same ``max_cost`` buys a different number of gradient evaluations: fix it in the spec (and pass the
same ``grad_cost`` to ``driver.minimize``) where runs must be reproducible. Factor, source and
measurement are recorded in ``settings.json`` (``problem_info``) on a run's first start, reused on
resume, and shown in ``summary.csv``: every optimizer of a problem is charged alike, and cost
accounting never changes halfway.

High-dimensional problems get compact history lines (``storage`` docstring: no gradients, the point
as a digest). Replaying such a line to a gradient method re-evaluates its point (at most one round
of work, checked against the recorded value); a gradient-free method gets the recorded line as is.

Points are evaluated one at a time (``problem.evaluate_one``) and each is on disk before the next
starts, so a kill loses at most the evaluation in progress, even inside a large batch. A problem that
simulates a batch in one call (``simulate_batch``, ``invdesign.batch_eval``) gets the round's points in one
``problem.evaluate`` call instead: the same records, written together, so there a kill loses at most the
round in progress. A round a kill left partly on disk is simulated whole again on resume and its missing
records taken from that call: a batch of another size, or one point alone, may differ in the last bits,
and a resumed run must equal the uninterrupted one exactly. Every record's ``elapsed_s`` is then the time
after the batched call (the wall-time axis sees what batching saves).
"""

from __future__ import annotations

import inspect
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

from invdesign.campaign import registry
from invdesign.campaign.lease import DEFAULT_TTL_S, Lease, LeaseLost, foreign_holder
from invdesign.campaign.records import best_index, num, rank_key
from invdesign.ranking import FAILED_KEY
from invdesign.campaign.spec import GRAD_COST_KEY, Unit
from invdesign.optimizers.base import UntrustedState
from invdesign.designs import try_space_dict
from invdesign.multiobjective import objectives_info
from invdesign.campaign.storage import (
    CHECKPOINT_FILE,
    COMPACT_X_EVERY,
    COMPLETED_FILE,
    ERROR_FILE,
    FORMAT,
    FULL_HISTORY_MAX_DIM,
    GRAD_COSTS_DIR,
    HISTORY_FILE,
    LEASE_FILE,
    SETTINGS_FILE,
    HistoryWriter,
    StorageError,
    atomic_write_json,
    atomic_write_text,
    compact_record,
    create_json,
    point_digest,
    read_completed,
    read_history,
    read_json,
    remove_temporaries,
    run_dir,
    sanitize,
)


class ResumeMismatch(StorageError):
    """The history does not fit the optimizer's replay (a non-deterministic optimizer, or a changed one)."""


def set_torch_threads(threads: int | None) -> None:
    if threads:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))


def declared_grad_cost_factor(problem: Any) -> float | None:
    """The factor a problem states itself (a number as class attribute, or one set on the instance, e.g.
    by a ``grad_cost_factor`` setting), None when reading it would measure it."""
    attr = inspect.getattr_static(problem, "grad_cost_factor", None)
    if attr is not None and not isinstance(attr, property):
        return float(attr)
    value = getattr(problem, "_grad_cost_factor", None)  # Problem's lazily measured cache, or a set value
    return None if value is None else float(value)


def _valid_factor(record: Any) -> bool:
    try:
        return float(record["grad_cost_factor"]) >= 1.0
    except (KeyError, TypeError, ValueError):
        return False


def run_unit(campaign_dir: str | os.PathLike, unit: dict[str, Any] | Unit,
             options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run, resume, or skip (already completed) one unit; returns its result dict.

    Result ``status``: "completed" or "error" (from the completion marker), or "busy" when another live
    worker holds the unit's lease. Anything the run itself raises is recorded (``error.txt``) and
    becomes status "error"; only infrastructure failures (the run directory unusable) propagate.

    options: ``lease_ttl_s`` (default 60), ``retry_errors`` (rerun units that ended in error, from their
    last checkpoint), ``threads`` (torch threads in this process), ``steal_leases`` (take over a lease
    held on another host: ``Lease.acquire(steal_foreign=True)``). A "busy" result carries ``holder``,
    the lease's host, pid and expiry when it is held on another host (None otherwise).
    """
    options = dict(options or {})
    unit = unit if isinstance(unit, Unit) else Unit.from_dict(unit)
    rdir = run_dir(campaign_dir, unit.run_id)
    retry = bool(options.get("retry_errors"))
    done = read_completed(rdir)
    if done is not None and not (retry and done.get("status") == "error"):
        _clear_dead_lease(rdir)
        return {"run_id": unit.run_id, **done, "skipped": True}
    lease = Lease.acquire(rdir, ttl=float(options.get("lease_ttl_s", DEFAULT_TTL_S)),
                          steal_foreign=bool(options.get("steal_leases")))
    if lease is None:
        try:
            holder = foreign_holder(read_json(rdir / LEASE_FILE))
        except StorageError:
            holder = None
        return {"run_id": unit.run_id, "status": "busy", "holder": holder}
    try:
        done = read_completed(rdir)  # someone may have finished it between our check and the lease
        if done is not None:
            if not (retry and done.get("status") == "error"):
                return {"run_id": unit.run_id, **done, "skipped": True}
            (rdir / COMPLETED_FILE).unlink()
            (rdir / ERROR_FILE).unlink(missing_ok=True)
        remove_temporaries(rdir)
        set_torch_threads(options.get("threads"))
        return {"run_id": unit.run_id, **Run(rdir, unit, lease).execute()}
    finally:
        lease.release()


def _clear_dead_lease(rdir: Path) -> None:
    """The lease a finished run's holder left when it was killed between writing ``completed`` and
    releasing it: taken over and released (a live or foreign holder's lease is left alone)."""
    if (rdir / LEASE_FILE).exists():
        try:
            stale = Lease.acquire(rdir, heartbeat=False)
        except (OSError, TimeoutError):  # only tidying: a read-only directory or a busy mutex keeps it
            return
        if stale is not None:
            stale.release()


class Run:
    """The loop of one run in its directory (the caller holds the lease)."""

    def __init__(self, rdir: Path, unit: Unit, lease: Lease | None = None):
        self.dir = Path(rdir)
        self.unit = unit
        self.lease = lease
        self.records: list[dict[str, Any]] = []
        self.specs: list[dict[str, Any]] = []
        self.step = 0
        self.n = 0
        self.cost = 0.0
        self._base_elapsed = 0.0
        self._t0 = time.perf_counter()

    # ------------------------------------------------------------------ helpers

    def elapsed(self) -> float:
        return self._base_elapsed + time.perf_counter() - self._t0

    def check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def _settings(self) -> dict[str, Any]:
        path = self.dir / SETTINGS_FILE
        settings = read_json(path)
        if settings is not None:
            if settings.get("unit") != self.unit.to_dict():
                raise StorageError(f"{self.dir}: settings.json belongs to a different unit "
                                   f"({settings.get('unit')}); this one is {self.unit.to_dict()}")
            return settings
        settings = {"format": FORMAT, "unit": self.unit.to_dict()}
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, settings)
        return settings

    def _save_checkpoint(self, optimizer: Any) -> None:
        self.check_lease()
        atomic_write_json(self.dir / CHECKPOINT_FILE, {
            "step": self.step, "n_evals": self.n, "cost": self.cost, "elapsed_s": self.elapsed(),
            "optimizer": optimizer.state_dict(),
        }, compact=True, sync_dir=False)  # a checkpoint lost to a power cut is replayed from the history

    # ------------------------------------------------------------------ the run

    def execute(self) -> dict[str, Any]:
        settings = self._settings()
        status, reason = "completed", None
        try:
            reason = self._loop(settings)
        except LeaseLost:
            raise
        except Exception:
            status, reason = "error", "error"
            self.check_lease()
            atomic_write_text(self.dir / ERROR_FILE, traceback.format_exc())
        if reason == "failing":  # every evaluation so far failed the same way: a mistake, not a result
            from invdesign.optimizers.driver import failing_message

            status = "error"
            self.check_lease()
            atomic_write_text(self.dir / ERROR_FILE, failing_message(self.records[0].get("reason"), self.fail_fast) + "\n")
        try:  # the file is the truth (the loop may have died anywhere)
            self.records = read_history(self.dir / HISTORY_FILE)[0]
        except StorageError:
            pass
        result = self.result(status, reason)
        self.check_lease()
        atomic_write_json(self.dir / COMPLETED_FILE, result)
        return result

    def result(self, status: str, stop_reason: str | None) -> dict[str, Any]:
        i = best_index(self.records, self.specs)
        best = self.records[i] if i is not None else None
        return {
            "status": status, "stop_reason": stop_reason,
            "best_value": best["value"] if best is not None else "nan",
            "best_feasible": bool(best is not None and best.get("feasible") and not best.get("failed")),
            "best_index": i, "best_x": best["x"] if best is not None else None,
            "evaluations": len(self.records),
            "failed_evaluations": sum(1 for r in self.records if r.get("failed")),
            "cost": sum(num(r.get("cost", 1.0)) for r in self.records),
            "wall_time_s": max(self.elapsed(), max((num(r.get("elapsed_s", 0)) for r in self.records), default=0.0)),
        }

    @property
    def fail_fast(self) -> int:
        from invdesign.optimizers.driver import FAIL_FAST_EVALS

        return int(self.unit.budget.get("fail_fast", FAIL_FAST_EVALS))

    def stop_reason(self, problem: Any, optimizer: Any) -> str | None:
        """``driver.Budget.stop_reason`` on the unit's budget, the run's counters and its active time."""
        from invdesign.optimizers.driver import Budget

        b = self.unit.budget
        budget = Budget(b.get("max_cost"), b.get("max_evals"), b.get("max_time_s"), self.fail_fast)
        reasons = [r.get("reason") or "failed" if r.get("failed") else None for r in self.records[:self.fail_fast]]
        return budget.stop_reason(problem, optimizer, self.n, self.cost, self.elapsed(), reasons)

    def _problem(self, settings: dict[str, Any]) -> Any:
        u = self.unit
        problem = registry.make_problem(u.problem_name, dict(u.problem_settings))
        info = settings.get("problem_info")
        if info is not None:
            problem.grad_cost_factor = info["grad_cost_factor"]  # as on the first start
        else:
            specs = problem.constraint_specs
            info = {
                "name": getattr(problem, "name", u.problem_name), "description": getattr(problem, "description", ""),
                "dim": int(problem.dim), **self._grad_cost(problem),
                "optimum_value": problem.optimum_value, "tolerance": problem.tolerance,
                "constraints": [{"name": s.name, "kind": s.kind, "tol": float(s.tol)} for s in specs],
                "parameter_names": list(problem.space.names()) if hasattr(problem, "space") else None,
                "objectives": objectives_info(problem),  # names, senses, reference point (multi-objective reports)
                # lets readers without the problem (report, export) map points to physical values
                "space": try_space_dict(problem), "parameter_units": dict(getattr(problem, "parameter_units", {}) or {}),
            }
            settings["problem_info"] = info
            self.check_lease()
            atomic_write_json(self.dir / SETTINGS_FILE, settings)
        self.specs = info["constraints"]
        return problem

    def _grad_cost(self, problem: Any) -> dict[str, Any]:
        """``grad_cost_factor`` (set on ``problem``), ``grad_cost_source`` and ``grad_cost_measured`` (module docstring)."""
        fixed = self.unit.budget.get(GRAD_COST_KEY)
        declared = declared_grad_cost_factor(problem)
        if fixed is None and declared is not None:
            return {"grad_cost_factor": declared, "grad_cost_source": "problem", "grad_cost_measured": None}
        measured = self._shared_measurement(problem)
        factor = float(fixed) if fixed is not None else measured
        problem.grad_cost_factor = factor
        return {"grad_cost_factor": factor, "grad_cost_source": "spec" if fixed is not None else "measured",
                "grad_cost_measured": measured}

    def _shared_measurement(self, problem: Any) -> float:
        """The campaign's measured factor for this problem: measured here if no other run has measured it yet."""
        path = self.dir.parent.parent / GRAD_COSTS_DIR / f"{sanitize(self.unit.problem)}.json"
        try:
            known = read_json(path)
            damaged = known is not None and not _valid_factor(known)
        except StorageError:  # truncated or garbage (written atomically: damaged from outside)
            known, damaged = None, True
        if known is None or damaged:
            factor = float(problem.measure_grad_cost_factor())
            self.check_lease()
            record = {"grad_cost_factor": factor, "measured_by": self.unit.run_id}
            if damaged:  # measured again; runs already started keep theirs (settings.json)
                atomic_write_json(path, {**record, "replaced": "an unreadable file"})
                return factor
            if create_json(path, record):
                return factor
            known = read_json(path)  # another run measured it meanwhile: theirs counts for all
        return float(known["grad_cost_factor"])

    def _loop(self, settings: dict[str, Any]) -> str:
        from invdesign.optimizers import make_optimizer

        u = self.unit
        problem = self._problem(settings)
        view = problem
        if u.start == "random":  # every optimizer of this seed starts from the same seeded point
            from invdesign.optimizers.base import StartingAt, seeded_start

            view = StartingAt(problem, seeded_start(problem, u.seed))
        optimizer = make_optimizer(u.optimizer_name, view, u.seed, **u.optimizer_settings)
        records, valid_length = read_history(self.dir / HISTORY_FILE)
        for i, rec in enumerate(records):
            if rec.get("n") != i:
                raise StorageError(f"{self.dir / HISTORY_FILE}: line {i + 1} has n={rec.get('n')}, expected {i}")
        try:
            checkpoint = read_json(self.dir / CHECKPOINT_FILE)
        except StorageError:  # cannot happen with atomic writes; if it does, the history has it all
            checkpoint = None
        pending_saved = False
        if checkpoint is not None:
            try:
                optimizer.load_state_dict(checkpoint["optimizer"])
            except UntrustedState:  # e.g. an old pickled nevergrad state: the history replays the run exactly
                optimizer = make_optimizer(u.optimizer_name, view, u.seed, **u.optimizer_settings)
                checkpoint = None
        if checkpoint is not None:
            self.step, self.n, self.cost = int(checkpoint["step"]), int(checkpoint["n_evals"]), float(checkpoint["cost"])
            if self.n > len(records):
                raise StorageError(f"{self.dir}: checkpoint counts {self.n} evaluations, history.jsonl holds "
                                   f"only {len(records)}")
            if self.n and records[self.n - 1].get("step") != self.step - 1:
                raise StorageError(f"{self.dir}: evaluation {self.n - 1} is from round {records[self.n - 1].get('step')}, "
                                   f"the checkpoint is after round {self.step - 1}")
            pending_saved = checkpoint["optimizer"].get("pending") is not None
        self._base_elapsed = max([float(checkpoint["elapsed_s"]) if checkpoint else 0.0]
                                 + [num(r.get("elapsed_s", 0.0)) for r in records[-1:]])
        self._t0 = time.perf_counter()
        self.records = records[:self.n]
        replay = records[self.n:]
        compact = int(problem.dim) > FULL_HISTORY_MAX_DIM
        best = best_index(records, self.specs)  # replayed lines included: they precede every new line
        best_key = rank_key(records[best], self.specs) if best is not None else FAILED_KEY
        writer = HistoryWriter(self.dir / HISTORY_FILE, valid_length)
        try:
            while True:
                reason = self.stop_reason(problem, optimizer)
                if reason is not None and not replay:
                    break
                points = optimizer.ask()
                need_grad = bool(optimizer.wants_gradient)
                if not pending_saved:
                    self._save_checkpoint(optimizer)
                evaluations = []
                # a problem with simulate_batch gets the whole round in one call (module docstring), also when a
                # kill left part of it on disk: a batch of another size need not agree to the last bit
                n_old = min(len(replay), len(points))
                batched = callable(getattr(problem, "simulate_batch", None)) and len(points) > 1 and n_old < len(points)
                fresh = iter(problem.evaluate(points, need_grad=need_grad)[n_old:] if batched else [])
                for slot, z in enumerate(points):
                    if replay:
                        rec = replay.pop(0)
                        evaluation = self._replayed(rec, slot, z, problem, need_grad)
                    else:
                        evaluation = next(fresh) if batched else problem.evaluate_one(z, need_grad=need_grad)
                        rec = {**evaluation.to_dict(), "step": self.step, "slot": slot, "n": self.n + slot,
                               "elapsed_s": self.elapsed()}
                        key = rank_key(rec, self.specs)
                        new_best = key != FAILED_KEY and key < best_key
                        best_key = key if new_best else best_key
                        if compact:
                            rec = compact_record(rec, keep_x=new_best or rec["n"] % COMPACT_X_EVERY == 0)
                        self.check_lease()
                        writer.append(rec)
                    evaluations.append(evaluation)
                    self.records.append(rec)
                optimizer.tell(evaluations)
                self.step += 1
                self.n += len(evaluations)
                self.cost += sum(float(e.cost) for e in evaluations)
                pending_saved = False
            self._save_checkpoint(optimizer)
        finally:
            writer.close()
        return reason

    def _replayed(self, rec: dict[str, Any], slot: int, z: Any, problem: Any, need_grad: bool) -> Any:
        """The evaluation a history line records (re-evaluated when a compact line lacks the gradient)."""
        from invdesign.problem import Evaluation

        self._check_replay(rec, slot, z)
        if "x_sha256" not in rec:
            return Evaluation.from_dict(rec)
        if not need_grad:
            return Evaluation.from_dict({**rec, "x": [float(v) for v in z.tolist()]})
        fresh = problem.evaluate_one(z, need_grad=True)
        recorded = num(rec.get("value"))
        both_nan = math.isnan(fresh.value) and math.isnan(recorded)  # a failed evaluation fails again
        if not (both_nan or abs(fresh.value - recorded) <= 1e-9 * max(1.0, abs(recorded))):
            raise ResumeMismatch(
                f"{self.dir}: resuming, evaluation n={rec.get('n')} was re-evaluated for its gradient (compact "
                f"history) and gave {fresh.value!r}, the history records {recorded!r}: the problem is not "
                "deterministic, or its code changed. The history is kept as it is.")
        return fresh

    def _check_replay(self, rec: dict[str, Any], slot: int, z: Any) -> None:
        asked = [float(v) for v in z.tolist()]
        if "x_sha256" in rec:  # compact line: the digest identifies the point exactly
            same = rec["x_sha256"] == point_digest(asked)
            recorded = [num(v) for v in rec["x"]] if "x" in rec else []
        else:
            recorded = [num(v) for v in rec.get("x", [])]
            same = recorded == asked
        if rec.get("step") != self.step or rec.get("slot") != slot or not same:
            gap = max((abs(a - b) for a, b in zip(asked, recorded)), default=math.inf) \
                if len(asked) == len(recorded) else math.inf
            raise ResumeMismatch(
                f"{self.dir}: resuming, evaluation n={rec.get('n')} (round {rec.get('step')}, slot {rec.get('slot')}) "
                f"in history.jsonl does not match what the optimizer asks now (round {self.step}, slot {slot}, "
                f"max |dx| = {gap:.3g}): the optimizer is not deterministic across checkpoint/restore, or the "
                "run's code changed. The history is kept as it is.")
