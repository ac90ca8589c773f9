"""The on-disk format of a campaign: plain files, written so that a kill at any moment loses nothing.

Campaign directory::

    <campaign>/
      campaign.json       the normalised spec (the truth for ``resume``), written once
      spec.toml           a copy of the spec file it came from (if any)
      campaign.log        log file (runs started/finished, progress lines)
      summary.csv         one row per run (``summary.py``)
      report.md, figures/ the report (``invdesign.report``)
      runs/<run_id>/      one directory per unit (problem, optimizer, seed)
      grad_costs/<problem>.json   {"grad_cost_factor", "measured_by"}: measured once per problem by the
                          first run that needs it, so every run of a problem counts cost alike

Run directory::

    settings.json    {"format", "unit": Unit.to_dict(), "problem_info": {...}, "optimizer_info": {...}}
    history.jsonl    one evaluation per line: Evaluation.to_dict() plus "step" (0-based ask/tell round),
                     "slot" (row in that round's batch), "n" (0-based evaluation index in the run) and
                     "elapsed_s" (run time when it was recorded); append-only, fsync'ed per line.
                     Problems with more than ``FULL_HISTORY_MAX_DIM`` coordinates get *compact* lines
                     (a 10^4-dimensional point and gradient are ~400 KB of JSON per line): no "grad"
                     nor "constraint_grads", and "x" only on every ``COMPACT_X_EVERY``-th line and on
                     each line that is the run's new best (so ``best_x`` and a sparse trajectory are
                     kept); every line carries "x_sha256" (``point_digest``)
    checkpoint.json  {"step": rounds told, "n_evals", "cost", "elapsed_s", "optimizer": state_dict()},
                     atomically replaced after every round (with the next round's pending batch)
    completed        JSON: status ("completed" or "error"), stop_reason, best_value, best_feasible,
                     best_x, evaluations, cost, wall_time_s; written last, atomically
    error.txt        traceback, when the run raised
    lease.json       who is running it now (``lease.py``)

Atomic writes: temporary file in the same directory, flush + fsync, ``os.replace``, fsync of the
directory. JSON is strict (no NaN/inf: ``Evaluation.to_dict`` encodes them as strings). A history
line is one ``os.write`` of the whole line on an ``O_APPEND`` descriptor followed by ``fsync``; a kill
in the middle of the write leaves a last line without its newline, which ``read_history`` drops (and
``HistoryWriter`` truncates before appending).

This module imports only the standard library: the report reads campaigns through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import re
import secrets
from pathlib import Path
from typing import Any

FORMAT = 1
RUNS_DIR = "runs"
GRAD_COSTS_DIR = "grad_costs"
CAMPAIGN_FILE = "campaign.json"
SPEC_COPY = "spec.toml"
LOG_FILE = "campaign.log"
SUMMARY_FILE = "summary.csv"
SETTINGS_FILE = "settings.json"
HISTORY_FILE = "history.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
COMPLETED_FILE = "completed"
ERROR_FILE = "error.txt"
LEASE_FILE = "lease.json"
FULL_HISTORY_MAX_DIM = 1000
COMPACT_X_EVERY = 100

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StorageError(RuntimeError):
    """A campaign or run directory is not in the expected state (corrupt file, foreign run...)."""


def point_digest(x: list[float]) -> str:
    """SHA-256 (hex) of a point's float64 values: identifies a point on compact history lines."""
    return hashlib.sha256(struct.pack(f"<{len(x)}d", *x)).hexdigest()


def compact_record(rec: dict[str, Any], keep_x: bool) -> dict[str, Any]:
    """The compact history line of ``rec`` (module docstring): digest instead of ``x``, no gradients."""
    out = {k: v for k, v in rec.items() if k not in ("grad", "constraint_grads", "objective_grads", "x")}
    out["x_sha256"] = point_digest([float(v) for v in rec["x"]])
    if keep_x:
        out["x"] = rec["x"]
    return out


def sanitize(name: str) -> str:
    """A file-name-safe version of a label: runs of other characters than ``A-Za-z0-9._-`` become ``-``."""
    out = _UNSAFE.sub("-", str(name)).strip("-.")
    return out or "x"


def run_id(problem: str, optimizer: str, seed: int) -> str:
    """``<problem>__<optimizer>__s<seed>`` with sanitised labels."""
    return f"{sanitize(problem)}__{sanitize(optimizer)}__s{int(seed)}"


def run_dir(campaign_dir: str | os.PathLike, rid: str) -> Path:
    return Path(campaign_dir) / RUNS_DIR / rid


# --------------------------------------------------------------------------- atomic files


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so that a rename/creation inside it is durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str, sync_dir: bool = True) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, never a mix.

    ``sync_dir=False`` skips the fsync of the directory after the rename: the new content is then
    durable against a killed process but, after a power loss, the old file may come back (used for
    checkpoints, which the history can always replay beyond)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, data: Any, compact: bool = False, sync_dir: bool = True) -> None:
    text = json.dumps(data, allow_nan=False, separators=(",", ":")) if compact \
        else json.dumps(data, allow_nan=False, indent=1)
    atomic_write_text(path, text + "\n", sync_dir=sync_dir)


def create_json(path: str | os.PathLike, data: Any) -> bool:
    """Write ``data`` to ``path`` only if no file is there (atomic: readers never see a partial file).

    Returns False, leaving the existing file, when another writer got there first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}.{secrets.token_hex(4)}")
    atomic_write_text(tmp, json.dumps(data, allow_nan=False), sync_dir=False)
    try:
        os.link(tmp, path)  # fails if path exists, unlike os.replace
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON in ``path``, ``default`` if it does not exist; StorageError if it is not valid JSON."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return default
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError for non-UTF-8 bytes
        raise StorageError(f"{path}: not valid JSON ({type(err).__name__}: {err})") from None


def remove_temporaries(directory: str | os.PathLike) -> None:
    """Delete leftovers of interrupted atomic writes (``.<name>.tmp.*``)."""
    for p in Path(directory).glob(".*.tmp.*"):
        try:
            p.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- history


def read_history(path: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """Records of a history file and the byte length of its valid part.

    A last line without its newline (a write cut by a kill) is dropped, and so is a last line that is
    not a JSON object (garbage or non-UTF-8 bytes left by a crash: its evaluation is redone); any other
    such line raises StorageError naming the line.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    end = raw.rfind(b"\n") + 1  # everything after the last newline is an incomplete write
    lines = raw[:end].split(b"\n")[:-1]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            rec = json.loads(line)
            why = None if isinstance(rec, dict) else "is not a JSON object"
        except ValueError as err:  # JSONDecodeError, or UnicodeDecodeError for non-UTF-8 bytes
            why = f"is not valid JSON ({type(err).__name__}: {err})"
        if why is not None:
            if number == len(lines):
                return records, end - len(line) - 1
            raise StorageError(f"{path}: line {number} {why}")
        records.append(rec)
    return records, end


class HistoryWriter:
    """Append-only writer of ``history.jsonl``: one fsync'ed ``os.write`` per record."""

    def __init__(self, path: str | os.PathLike, valid_length: int | None = None):
        self.path = Path(path)
        if valid_length is None:
            _, valid_length = read_history(self.path)
        if self.path.exists() and self.path.stat().st_size > valid_length:
            os.truncate(self.path, valid_length)  # drop a torn last line
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if valid_length == 0:
            fsync_dir(self.path.parent)

    def append(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):  # regular files write fully; this is belt and braces
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- run state


def read_completed(rdir: str | os.PathLike) -> dict[str, Any] | None:
    return read_json(Path(rdir) / COMPLETED_FILE)


def run_state(rdir: str | os.PathLike) -> str:
    """``completed``, ``error`` (from the completion marker), ``partial`` (started) or ``pending``."""
    rdir = Path(rdir)
    done = read_completed(rdir)
    if done is not None:
        return str(done.get("status", "completed"))
    if (rdir / HISTORY_FILE).exists() or (rdir / CHECKPOINT_FILE).exists() or (rdir / SETTINGS_FILE).exists():
        return "partial"
    return "pending"


def load_campaign(campaign_dir: str | os.PathLike) -> dict[str, Any]:
    """The normalised spec dict stored in ``campaign.json``."""
    path = Path(campaign_dir) / CAMPAIGN_FILE
    data = read_json(path)
    if data is None:
        raise StorageError(f"{campaign_dir}: not a campaign directory (no {CAMPAIGN_FILE})")
    return data
