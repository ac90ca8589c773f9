"""Progress of a running campaign: a one-line bar (runs done, evaluations, best so far, ETA) and a log.

The monitor reads what the workers write (the tail of each run's ``history.jsonl``, new bytes only,
and the ``completed`` markers), so it works the same for every executor. A run's fraction done is the
largest of cost / max_cost, evaluations / max_evals and time / max_time_s (1 once completed; a run
that converges early jumps to 1); the ETA extrapolates the rate of this session, and says it cannot
estimate (instead of growing without bound) while no run makes progress for ``STALL_S`` or while the
estimate keeps receding (runs slowing down, e.g. BoTorch's model fits growing with its data).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from invdesign.campaign.records import is_feasible, num
from invdesign.campaign.spec import Unit
from invdesign.campaign.storage import HISTORY_FILE, read_completed, run_dir

LOG_EVERY_S = 30.0
PRINT_EVERY_S = 10.0  # when the stream is not a terminal
STALL_S = 120.0  # no progress for this long: the rate says nothing about the rest
RECEDE_WINDOW_S = 120.0  # the predicted finish moved later over this window: not converging


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class _RunTail:
    def __init__(self, unit: Unit, path: Path):
        self.unit = unit
        self.path = path
        self.offset = 0
        self.evals = 0
        self.cost = 0.0
        self.elapsed = 0.0
        self.best = math.nan
        self.done = False

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1
        if not end:
            return
        self.offset += end
        for line in chunk[:end].split(b"\n")[:-1]:
            try:
                rec = json.loads(line)
            except ValueError:  # JSONDecodeError, or UnicodeDecodeError for non-UTF-8 bytes
                continue
            if not isinstance(rec, dict):
                continue
            self.evals += 1
            self.cost += num(rec.get("cost", 1.0))
            self.elapsed = num(rec.get("elapsed_s", self.elapsed))
            if is_feasible(rec):
                v = num(rec["value"])
                if math.isnan(self.best) or v < self.best:
                    self.best = v

    def fraction(self) -> float:
        if self.done:
            return 1.0
        b = self.unit.budget
        parts = [0.0]
        if b.get("max_cost"):
            parts.append(self.cost / b["max_cost"])
        if b.get("max_evals"):
            parts.append(self.evals / b["max_evals"])
        if b.get("max_time_s"):
            parts.append(self.elapsed / b["max_time_s"])
        return min(1.0, max(parts))


class Progress:
    """Polls the run directories in a background thread and renders a progress line."""

    def __init__(self, campaign_dir: str | Path, units: list[Unit], logger: logging.Logger | None = None,
                 stream: TextIO | None = sys.stderr, interval: float = 0.5):
        self.units = units
        self.logger = logger
        self.stream = stream
        self.interval = interval
        self.tails = {u.run_id: _RunTail(u, run_dir(campaign_dir, u.run_id) / HISTORY_FILE) for u in units}
        self.statuses: dict[str, str] = {}
        self.errors = 0
        for rid, tail in self.tails.items():
            done = read_completed(tail.path.parent)
            if done is not None:
                tail.done = True
                self.statuses[rid] = str(done.get("status"))
            tail.poll()
        self._tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._f0 = self.fraction()
        self._last_print = self._last_log = -math.inf
        self._width = 0
        self._last_change = (self._t0, self._f0)  # (time, fraction) of the last progress seen
        self._finishes: list[tuple[float, float]] = []  # (time, predicted finish time), recent

    # ------------------------------------------------------------------ numbers

    def fraction(self) -> float:
        return sum(t.fraction() for t in self.tails.values()) / max(1, len(self.tails))

    def eta(self) -> float:
        """Seconds left at this session's rate (inf when there is no rate yet)."""
        f = self.fraction()
        rate = (f - self._f0) / max(time.monotonic() - self._t0, 1e-9)
        return (1.0 - f) / rate if rate > 0 else math.inf

    def eta_text(self, now: float | None = None) -> str:
        """``"ETA 12:34"``, or why there is no estimate (stalled, receding, no progress yet)."""
        now = time.monotonic() if now is None else now
        f = self.fraction()
        if f > self._last_change[1]:
            self._last_change = (now, f)
        if f >= 1.0:
            return "ETA 00:00"
        eta = self.eta()
        if not math.isfinite(eta):
            return "ETA unknown (no progress yet)"
        if now - self._last_change[0] > STALL_S:
            return f"ETA unknown (no progress for {format_duration(now - self._last_change[0])})"
        finish = now + eta
        self._finishes = [(t, p) for t, p in self._finishes if now - t <= RECEDE_WINDOW_S] + [(now, finish)]
        oldest_t, oldest_finish = self._finishes[0]
        if now - oldest_t >= RECEDE_WINDOW_S / 2 and finish > oldest_finish + 0.5 * (now - oldest_t):
            return f"ETA unknown (estimate receding: >= {format_duration(eta)})"
        return f"ETA {format_duration(eta)}"

    def best_by_problem(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.tails.values():
            if not math.isnan(t.best):
                p = t.unit.problem
                out[p] = min(out.get(p, math.inf), t.best)
        return out

    def line(self) -> str:
        done = sum(1 for t in self.tails.values() if t.done)
        evals = sum(t.evals for t in self.tails.values())
        f = self.fraction()
        bar = "#" * int(20 * f) + "-" * (20 - int(20 * f))
        best = " ".join(f"{p} {v:.4g}" for p, v in self.best_by_problem().items())
        errors = f" ({self.errors} error)" if self.errors else ""
        return (f"[{bar}] {done}/{len(self.tails)} runs{errors} | {evals} evals | best: {best or '-'} | "
                f"{self.eta_text()}")

    # ------------------------------------------------------------------ events

    def run_finished(self, result: dict[str, Any]) -> None:
        rid = result.get("run_id")
        with self._lock:
            tail = self.tails.get(rid)
            if tail is not None:
                tail.poll()
                tail.done = True
            status = str(result.get("status"))
            self.statuses[rid] = status
            if status == "error":
                self.errors += 1
        if self.logger is not None and not result.get("skipped"):
            self.logger.info("run %s: %s (%s), best %s (feasible: %s), %s evaluations, %.2f s", rid, status,
                             result.get("stop_reason"), result.get("best_value"), result.get("best_feasible"),
                             result.get("evaluations"), float(result.get("wall_time_s") or 0.0))

    def update(self, force: bool = False) -> None:
        with self._lock:
            for t in self.tails.values():
                if not t.done:
                    t.poll()
            text = self.line()
        now = time.monotonic()
        if self.stream is not None:
            if self._tty:
                pad = max(0, self._width - len(text))
                self.stream.write("\r" + text + " " * pad)
                self.stream.flush()
                self._width = len(text)
            elif force or now - self._last_print >= PRINT_EVERY_S:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._last_print = now
        if self.logger is not None and (force or now - self._last_log >= LOG_EVERY_S):
            self.logger.info("progress %s", text)
            self._last_log = now

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.update()
            except Exception:  # never let the display kill a campaign
                pass

    def start(self) -> Progress:
        self._thread = threading.Thread(target=self._loop, name="campaign-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.update(force=True)
        if self.stream is not None and self._tty:
            self.stream.write("\n")
            self.stream.flush()
