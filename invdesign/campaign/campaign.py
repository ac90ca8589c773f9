"""Run and resume whole campaigns: create the directory, hand units to an executor, summarise.

    from invdesign.campaign import load_spec, run_campaign, resume_campaign
    result = run_campaign(load_spec("problems/default.toml"), "results/default", workers=2)
    result = resume_campaign("results/default")          # after a crash: same directory, same spec

``run_campaign`` on an existing directory continues it if it holds the same spec, *extends* it when
the new spec keeps every stored run unchanged and only adds runs (more seeds, optimizers or
problems: the finished runs are reused, the new ones run), and refuses anything else. Units already completed are skipped; partial ones resume from their checkpoint;
a unit leased by a live worker elsewhere (another campaign process on the same directory) is watched:
done when its completion marker appears, resubmitted when its lease frees (expired or dead holder),
and retried every ``busy_retry_s`` anyway.

A lease held on another host cannot be checked from here (``lease.py``). ``foreign_leases`` says what to
do with one: "fail" (default) waits for it only while it expires within ``FOREIGN_WAIT_TTLS`` lease TTLs
(a live holder renews every TTL/4; a killed Dask worker's lease frees within one TTL) and otherwise
leaves the unit unfinished at once, saying so on stderr (host, pid, expiry); "wait" waits however long
it takes; "steal" takes such leases over. Every wait for another worker's lease is announced on
stderr, also without a progress display: a campaign never waits silently.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from invdesign.campaign.executors import make_executor
from invdesign.campaign.lease import DEFAULT_TTL_S, holder_is_dead
from invdesign.campaign.progress import Progress, format_duration
from invdesign.campaign.runner import run_unit
from invdesign.campaign.spec import CampaignSpec, SpecError, Unit, load_spec
from invdesign.campaign.storage import (
    CAMPAIGN_FILE,
    FORMAT,
    GRAD_COSTS_DIR,
    LEASE_FILE,
    LOG_FILE,
    RUNS_DIR,
    SPEC_COPY,
    StorageError,
    atomic_write_json,
    atomic_write_text,
    load_campaign,
    read_completed,
    read_json,
    run_dir,
    sanitize,
)
from invdesign.campaign.summary import write_summary

BUSY_RETRY_S = 5.0
FOREIGN_WAIT_TTLS = 2.0  # wait unasked for another host's lease only when it expires within this many TTLs
FOREIGN_LEASES = ("fail", "wait", "steal")
WAITING_CHECK_S = 0.25
POLL_S = 0.05


def _lease_dead(directory: Path, unit: Unit) -> bool:
    try:
        lease = read_json(run_dir(directory, unit.run_id) / LEASE_FILE)
    except StorageError:
        return True
    return lease is None or holder_is_dead(lease)


@dataclasses.dataclass
class CampaignResult:
    directory: Path
    spec: CampaignSpec
    rows: list[dict[str, Any]]
    wall_time_s: float

    @property
    def complete(self) -> bool:
        """Every run finished (completed or error)."""
        return all(r["status"] in ("completed", "error") for r in self.rows)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "error"]

    held: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Units left unfinished because another host holds their lease: ``{"run_id", "host", "pid", "expires"}``."""


def held_message(run_id: str, holder: dict[str, Any], now: float | None = None) -> str:
    """``run R is leased by host H (pid P) until <local time> (in h:mm:ss)``."""
    now = time.time() if now is None else now
    until = datetime.datetime.fromtimestamp(holder["expires"]).isoformat(sep=" ", timespec="seconds")
    return (f"run {run_id} is leased by host {holder['host']} (pid {holder['pid']}) until {until} "
            f"(in {format_duration(max(0.0, holder['expires'] - now))})")


def _as_spec(spec: CampaignSpec | dict | str | os.PathLike) -> tuple[CampaignSpec, Path | None]:
    if isinstance(spec, CampaignSpec):
        return spec, None
    if isinstance(spec, dict):
        return CampaignSpec.from_dict(spec), None
    return load_spec(spec), Path(spec)


def prepare_directory(spec: CampaignSpec, out: str | os.PathLike, spec_path: Path | None = None) -> Path:
    """Create (or check) the campaign directory for ``spec``; a different stored spec is an error."""
    out = Path(out)
    stored = {"format": FORMAT, "spec": spec.to_dict(), "units": [u.to_dict() for u in spec.units()]}
    existing = out / CAMPAIGN_FILE
    if existing.exists():
        old = load_campaign(out)
        if old.get("spec") != stored["spec"]:
            _check_extension(old, stored, out)
            if spec_path is not None:
                atomic_write_text(out / SPEC_COPY, Path(spec_path).read_text(encoding="utf-8"))
            atomic_write_json(existing, stored)
        return out
    # what another process starting the same campaign at this moment may already have written
    starting = (RUNS_DIR, GRAD_COSTS_DIR, SPEC_COPY)
    if out.exists() and any(p.name not in starting and not p.name.startswith((f".{CAMPAIGN_FILE}.tmp.",
                                                                               f".{SPEC_COPY}.tmp."))
                            for p in out.iterdir()):
        raise SpecError([("", f"{out} exists, is not empty and is not a campaign directory; choose another --out")])
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(existing, stored)  # two processes starting the same campaign write the same file
    if spec_path is not None:
        atomic_write_text(out / SPEC_COPY, Path(spec_path).read_text(encoding="utf-8"))
    (out / RUNS_DIR).mkdir(exist_ok=True)
    return out


def _check_extension(old: dict[str, Any], new: dict[str, Any], out: Path) -> None:
    """Raise unless ``new`` keeps every run of ``old`` exactly (it may add runs)."""
    units = {u.run_id: u.to_dict() for u in map(Unit.from_dict, new["units"])}
    problems = []
    for unit in map(Unit.from_dict, old.get("units", [])):
        if unit.run_id not in units:
            problems.append(f"drops run {unit.run_id}")
        elif units[unit.run_id] != unit.to_dict():
            changed = sorted(k for k, v in unit.to_dict().items() if units[unit.run_id].get(k) != v)
            problems.append(f"changes run {unit.run_id} ({', '.join(changed)})")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise SpecError([("", f"{out} already holds campaign {old.get('spec', {}).get('name')!r} and this spec "
                              f"{shown}. A campaign can only be extended (new seeds, optimizers or problems, the "
                              f"stored runs unchanged): choose another --out, or continue it with "
                              f"`invdesign resume {out}`")])


def _logger(directory: Path) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"invdesign.campaign.{directory.resolve()}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(directory / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def execute(directory: Path, spec: CampaignSpec, workers: int = 1, scheduler: Any = None,
            lease_ttl_s: float = DEFAULT_TTL_S, retry_errors: bool = False, progress: bool | TextIO = True,
            busy_retry_s: float = BUSY_RETRY_S, foreign_leases: str = "fail") -> CampaignResult:
    """Run every unfinished unit of the campaign in ``directory`` and write ``summary.csv``.

    foreign_leases: "fail", "wait" or "steal" (module docstring).
    """
    if foreign_leases not in FOREIGN_LEASES:
        raise ValueError(f"foreign_leases must be one of {FOREIGN_LEASES}; got {foreign_leases!r}")
    start = time.perf_counter()
    units = spec.units()
    logger, handler = _logger(directory)
    options = {"lease_ttl_s": float(lease_ttl_s), "retry_errors": bool(retry_errors),
               "steal_leases": foreign_leases == "steal"}
    held: list[dict[str, Any]] = []
    announced: set[str] = set()

    def say(text: str) -> None:  # on stderr whatever the progress setting: waiting must never be silent
        logger.warning(text)
        print(f"invdesign: {text}", file=sys.stderr, flush=True)

    stream = sys.stderr if progress is True else (progress or None)
    monitor = Progress(directory, units, logger, stream=stream)
    executor = None
    try:
        executor = make_executor(workers, scheduler)
        logger.info("campaign %r: %d runs (%d problems x %d optimizers x %d seeds) on %s", spec.name, len(units),
                    len(spec.problems), len(spec.optimizers), len(spec.seeds), executor.describe())
        todo = deque(units)
        limit = 1 if executor.capacity <= 1 else 2 * executor.capacity  # inline: one at a time, results logged as they come
        inflight: dict[Any, Unit] = {}
        waiting: list[tuple[float, Unit]] = []
        monitor.start()
        last_check = 0.0
        while todo or inflight or waiting:
            now = time.monotonic()
            if waiting and now - last_check >= WAITING_CHECK_S:
                last_check = now
                for item in list(waiting):
                    done = read_completed(run_dir(directory, item[1].run_id))
                    if done is not None and not (retry_errors and done.get("status") == "error"):
                        waiting.remove(item)  # finished by the other worker
                        monitor.run_finished({"run_id": item[1].run_id, **done, "skipped": True})
                    elif item[0] <= now or _lease_dead(directory, item[1]):
                        waiting.remove(item)
                        todo.append(item[1])
            while todo and len(inflight) < limit:
                unit = todo.popleft()
                inflight[executor.submit(run_unit, str(directory), unit.to_dict(), options)] = unit
            finished = [f for f in inflight if f.done()]
            if not finished:
                time.sleep(POLL_S)
                continue
            for future in finished:
                unit = inflight.pop(future)
                try:
                    result = future.result()
                except Exception as err:  # infrastructure failure: the unit stays unfinished on disk
                    logger.error("run %s: worker failed: %s: %s", unit.run_id, type(err).__name__, err)
                    result = {"run_id": unit.run_id, "status": "worker-failed"}
                    monitor.run_finished(result)
                    continue
                if result.get("status") == "busy":
                    holder = result.get("holder")
                    if holder is not None and foreign_leases == "fail" \
                            and holder["expires"] - time.time() > FOREIGN_WAIT_TTLS * float(lease_ttl_s):
                        held.append({"run_id": unit.run_id, **holder})
                        say(f"{held_message(unit.run_id, holder)}; this host cannot tell whether it still runs "
                            "there. Not waiting for it: `--wait` waits, `--steal-leases` takes it over (only if "
                            "nothing runs it on that host)")
                        continue
                    if unit.run_id not in announced:
                        announced.add(unit.run_id)
                        who = held_message(unit.run_id, holder) if holder is not None else \
                            f"run {unit.run_id} is leased by a live process on this host"
                        say(f"{who}; waiting for it to finish or to free the lease")
                    logger.info("run %s: leased by another live worker; waiting for it (retry in %.0f s)", unit.run_id, busy_retry_s)
                    waiting.append((time.monotonic() + busy_retry_s, unit))
                else:
                    monitor.run_finished(result)
        rows = write_summary(directory, units)
    except BaseException:
        if executor is not None:
            executor.shutdown(cancel=True)
            executor = None
        monitor.stop()
        write_summary(directory, units)
        logger.removeHandler(handler)
        handler.close()
        raise
    finally:
        if executor is not None:
            executor.shutdown()
    monitor.stop()
    wall = time.perf_counter() - start
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("completed", "error", "partial", "pending")}
    logger.info("campaign %r finished in %s: %s", spec.name, format_duration(wall),
                ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    logger.removeHandler(handler)
    handler.close()
    return CampaignResult(directory, spec, rows, wall, held)


def run_campaign(spec: CampaignSpec | dict | str | os.PathLike, out: str | os.PathLike | None = None,
                 workers: int = 1, scheduler: Any = None, spec_file: str | os.PathLike | None = None,
                 **options: Any) -> CampaignResult:
    """Validate ``spec`` (a CampaignSpec, a dict, or a TOML path), prepare ``out`` and run everything.

    ``out`` defaults to ``results/<spec name>``. ``scheduler``: a Dask address or ``distributed.Client``
    (then ``workers`` is ignored). ``spec_file``: the TOML file a CampaignSpec was read from (copied into
    the campaign directory; automatic when ``spec`` is a path). Other options: see ``execute``.
    """
    spec, path = _as_spec(spec)
    path = Path(spec_file) if spec_file is not None else path
    directory = prepare_directory(spec, out if out is not None else default_directory(spec), path)
    return execute(directory, spec, workers=workers, scheduler=scheduler, **options)


def default_directory(spec: CampaignSpec) -> Path:
    """``results/<spec name>`` (name made file-safe), relative to the working directory."""
    return Path("results") / sanitize(spec.name)


def stored_spec(directory: str | os.PathLike) -> CampaignSpec:
    """The spec a campaign directory was created with."""
    data = load_campaign(directory)
    if "spec" not in data:
        raise StorageError(f"{directory}/{CAMPAIGN_FILE} has no spec")
    return CampaignSpec.from_dict(data["spec"], source=str(Path(directory) / CAMPAIGN_FILE))


def resume_campaign(directory: str | os.PathLike, workers: int = 1, scheduler: Any = None,
                    **options: Any) -> CampaignResult:
    """Continue the campaign stored in ``directory`` (completed runs are kept, partial ones resumed)."""
    directory = Path(directory)
    return execute(directory, stored_spec(directory), workers=workers, scheduler=scheduler, **options)
