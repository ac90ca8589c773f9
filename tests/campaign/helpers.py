"""Shared pieces of the campaign tests: small specs, comparisons, and test-only problems.

The problems here are referenced from specs as ``"tests.campaign.helpers:<factory>"`` (the campaign
accepts ``module:factory`` names besides the registry), so worker processes can import them too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from invdesign.campaign.storage import HISTORY_FILE, read_history
from invdesign.campaign.summary import COMPARED, read_summary
from invdesign.problem import Problem
from invdesign.testing.toy_problems import Quadratic

REPO = Path(__file__).resolve().parents[2]
TIMES = ("wall_time_s", "elapsed_s")


REFERENCE_SPEC = """
name = "small"
seeds = [0, 1]
[budget]
max_cost = 40
[[problems]]
name = "toy/quadratic"
label = "quad"
[[problems]]
name = "toy/constrained"
label = "disk"
[[optimizers]]
name = "lbfgs"
[[optimizers]]
name = "nevergrad"
label = "cma"
settings = { optimizer = "CMA", batch_size = 5 }
[[optimizers]]
name = "random"
settings = { batch_size = 3 }
"""


# A reduced paper/agnr_doping campaign (5-AGNR, 2 cells, 8 energies: ~0.1 s per evaluation), the physics
# counterpart of REFERENCE_SPEC for the fault tests; grad_cost fixed so that every process charges alike.
AGNR_SPEC = """
name = "agnr_faults"
seeds = [0, 1, 2]
[budget]
max_cost = 16
grad_cost = 2.0
[[problems]]
name = "paper/agnr_doping"
label = "agnr"
settings = { width = 5, line = 2, cells = 2, n_energies = 8 }
start = "random"
[[optimizers]]
name = "lbfgs"
[[optimizers]]
name = "nevergrad"
label = "cma"
settings = { optimizer = "CMA", batch_size = 4 }
[[optimizers]]
name = "random"
settings = { batch_size = 2 }
"""


def small_spec(**overrides) -> dict:
    """2 problems x 3 optimizers x 2 seeds; a few seconds in one process."""
    spec = {
        "name": "small",
        "seeds": [0, 1],
        "budget": {"max_cost": 40},
        "problems": [{"name": "toy/quadratic", "label": "quad"}, {"name": "toy/constrained", "label": "disk"}],
        "optimizers": [
            "lbfgs",
            {"name": "nevergrad", "label": "cma", "settings": {"optimizer": "CMA"}},
            {"name": "random", "settings": {"batch_size": 3}},
        ],
    }
    spec.update(overrides)
    return spec


def comparable_summary(directory) -> list[dict]:
    """summary.csv rows without the wall time (not reproducible)."""
    return [{k: row[k] for k in COMPARED} for row in read_summary(Path(directory) / "summary.csv")]


def histories(directory) -> dict[str, list[dict]]:
    """Every run's history records without their timings."""
    out = {}
    for rdir in sorted((Path(directory) / "runs").iterdir()):
        records, _ = read_history(rdir / HISTORY_FILE)
        out[rdir.name] = [{k: v for k, v in r.items() if k not in TIMES} for r in records]
    return out


def cli(*args, cwd=REPO, timeout=120, env_extra: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m invdesign.cli ARGS`` in a subprocess (one torch thread; ``env_extra`` added to its environment)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "invdesign.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def history_bytes(directory) -> int:
    """Bytes of every run's history.jsonl: grows while runs evaluate."""
    return sum(p.stat().st_size for p in Path(directory).glob("runs/*/history.jsonl"))


def start_cli(args, env_extra: dict | None = None, **popen) -> subprocess.Popen:
    """``python -m invdesign.cli ARGS`` started in its own session (one torch thread; ``env_extra`` added to
    its environment), stderr piped: the session is what a kill takes down, campaign process and pool
    workers together."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "invdesign.cli", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, **popen)


def history_lines(directory) -> int:
    """Evaluation lines (newlines) in every run's history.jsonl."""
    return sum(p.read_bytes().count(b"\n") for p in Path(directory).glob("runs/*/history.jsonl"))


def kill_at_random_moments(command: list, out: Path, rng, workers: list[int], after_kill=None,
                           max_delay_s: float = 0.3, start_timeout_s: float = 120.0,
                           max_new_lines: int | None = None) -> list:
    """Start ``invdesign COMMAND --workers W --quiet --no-report`` (then ``resume OUT``) once per entry of
    ``workers`` and SIGKILL its whole session ``rng.uniform(0, max_delay_s)`` after its runs start writing
    evaluations, or (``max_new_lines``) as soon as its runs wrote ``rng.randint(1, max_new_lines)`` new
    history lines, whichever comes first: on a fast machine a time delay alone lets a small campaign
    finish before it was killed often enough. ``after_kill(k)`` runs after the k-th kill (to damage the
    directory as a crash might). A start that finishes before it could be killed is retried (bounded).
    Returns the command that continues the campaign, ``["resume", out]``."""
    kills, attempts = 0, 0
    while kills < len(workers):
        attempts += 1
        assert attempts < 3 * len(workers), "the campaign finished before it could be killed enough times"
        size = history_bytes(out)
        proc = start_cli([*command, "--workers", workers[kills], "--quiet", "--no-report"])
        deadline = time.monotonic() + start_timeout_s
        while history_bytes(out) == size and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # until the runs are evaluating
        delay_s = rng.uniform(0.0, max_delay_s)
        if max_new_lines is None:
            time.sleep(delay_s)
        else:
            lines, end = history_lines(out) + rng.randint(1, max_new_lines), time.monotonic() + delay_s
            while time.monotonic() < end and history_lines(out) < lines and proc.poll() is None:
                time.sleep(0.002)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole session: campaign process and its workers
        proc.wait()
        proc.stderr.close()
        command = ["resume", out]
        assert (Path(out) / "campaign.json").exists()
        if killed:
            kills += 1
            if after_kill is not None:
                after_kill(kills)
    return command


def assert_same_campaign(out: Path, expected_dir: Path) -> None:
    """Summary (wall times aside) and every history equal the uninterrupted campaign's; no evaluation lost
    or recorded twice; every lease released and no temporary file left."""
    assert comparable_summary(out) == comparable_summary(expected_dir)
    expected, got = histories(expected_dir), histories(out)
    assert got.keys() == expected.keys()
    for rid in expected:
        assert [r["n"] for r in got[rid]] == list(range(len(got[rid]))), rid  # none lost, none twice
        assert got[rid] == expected[rid], rid
    assert not list(Path(out).glob("runs/*/lease.json"))  # every lease released, or taken over and released
    assert not list(Path(out).glob("runs/*/.*.tmp.*"))


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def dump(obj) -> str:
    return json.dumps(obj, sort_keys=True)


# --------------------------------------------------------------------------- test-only problems


class _Exploding(Quadratic):
    """A quadratic whose ``evaluate`` raises (outside the problem's failure handling) on call ``explode_at``:
    the whole run raises, like a bug in a problem or an optimizer would."""

    def __init__(self, explode_at: int = 5):
        super().__init__(dim=2)
        self.name = "exploding"
        self.explode_at = explode_at
        self.calls = 0

    def evaluate(self, z, need_grad=False):
        self.calls += 1
        if self.calls == self.explode_at:
            raise RuntimeError(f"simulated crash in evaluation call {self.calls}")
        return super().evaluate(z, need_grad)


def exploding(explode_at: int = 5):
    """Quadratic that raises on its explode_at-th evaluation call (a run that raises)."""
    return _Exploding(explode_at)


class _WithDesignPlot(Quadratic):
    """A quadratic with its own ``plot_design`` hook (writes a small PNG of the design)."""

    def __init__(self):
        super().__init__(dim=3)
        self.name = "with_design_plot"

    def plot_design(self, params, out_dir):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3, 2))
        ax.bar(range(3), params["x"].numpy())
        path = Path(out_dir) / "design.png"
        fig.savefig(path)
        plt.close(fig)
        return [path]


def with_design_plot():
    """Quadratic with a plot_design hook."""
    return _WithDesignPlot()


class _MeasuredQuadratic(Quadratic):
    """The toy quadratic without a declared grad_cost_factor: the campaign has to measure it."""

    @property
    def grad_cost_factor(self):
        return Problem.grad_cost_factor.fget(self)

    @grad_cost_factor.setter
    def grad_cost_factor(self, value):
        Problem.grad_cost_factor.fset(self, value)


def measured_quadratic():
    return _MeasuredQuadratic()


RENDEZVOUS_ENV = "INVDESIGN_TEST_RENDEZVOUS"  # a folder: processes evaluating a rendezvous problem meet there
RENDEZVOUS_TIMEOUT_S = 90.0
_met: list[bool] = []  # set once this process has met another


def _rendezvous() -> None:
    """With ``$INVDESIGN_TEST_RENDEZVOUS`` set: mark this process as evaluating, then wait until a second
    process has marked itself too (at most ``RENDEZVOUS_TIMEOUT_S``; only the first call of a process)."""
    folder = os.environ.get(RENDEZVOUS_ENV)
    if not folder or _met:
        return
    _met.append(True)
    Path(folder, f"evaluating.{os.getpid()}").touch()
    deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
    while len(list(Path(folder).glob("evaluating.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)


class _RendezvousQuadratic(Quadratic):
    """The toy quadratic (same values, same name); its first evaluation in a process holds that process until
    another one evaluates it too, so two campaign processes on one directory both run units."""

    def simulate(self, params):
        _rendezvous()
        return super().simulate(params)


def rendezvous_quadratic():
    """toy/quadratic that makes two campaign processes meet (see ``_rendezvous``)."""
    return _RendezvousQuadratic()
