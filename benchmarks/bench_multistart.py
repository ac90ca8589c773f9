#!/usr/bin/env python
"""Batched multi-start gradients on ``paper/agnr_doping``: a reduced comparison at equal forward-equivalent
budget and at equal wall time, and the speed-up of batched over point-by-point evaluation.

Run from the repository root with the virtual environment active:

    python benchmarks/bench_multistart.py                         # 3 seeds, budget 120: ~15-30 min on 2 cores
    python benchmarks/bench_multistart.py --methods multistart,lbfgs,random --seeds 0,1
    python benchmarks/bench_multistart.py --speedup-only          # batched vs looped evaluation only
    python benchmarks/bench_multistart.py --json out.json         # every run's trace, for plots

Every run starts from the campaign's seeded random start (``seeded_start``, what ``start = "random"`` gives
each optimizer of a seed), on one torch thread, one run at a time, in this process. Cost is counted in
forward-equivalents with a fixed ``grad_cost_factor`` (``--grad-cost``, default the ``1.0`` the committed
``paper_agnr_doping`` campaign measured), so every method gets the same number of simulations. A run's
trace is the best feasible value after each step against the cost and the wall time spent so far; the
tables give the best value at the full budget (median, success = within 1e-3 of the best value any run
found) and at fixed wall times (the best a run had reached by then; a run that ended earlier keeps its
final best). The full campaign is ``problems/paper_agnr_doping.toml`` (see its header).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from invdesign.optimizers import make_optimizer, minimize  # noqa: E402
from invdesign.optimizers.base import StartingAt, seeded_start  # noqa: E402

# the campaign's settings (problems/paper_agnr_doping.toml) for the methods it shares
METHODS = {
    "multistart": ("multistart", {}),
    "lbfgs": ("lbfgs", {}),
    "sobol_lbfgs": ("chain", {}),
    "random": ("random", {}),
    "botorch": ("botorch", {}),
    "turbo": ("turbo", {}),
}
SUCCESS = 1e-3  # a run succeeds when its best is within this of the best value any run found
WALL_TIMES = (2.0, 5.0, 10.0, 30.0, 60.0)  # seconds, for the fixed-wall-time table


def run(problem, label: str, seed: int, budget: float) -> dict:
    """One (method, seed) run: its best and its trace [(cost, wall s, best feasible value)] after each step."""
    name, settings = METHODS[label]
    optimizer = make_optimizer(name, StartingAt(problem, seeded_start(problem, seed)), seed, **settings)
    trace: list[tuple[float, float, float]] = []
    spent = [0.0]
    start = time.perf_counter()

    def record(opt, evaluations) -> None:
        spent[0] += sum(e.cost for e in evaluations)
        best = opt.best
        trace.append((spent[0], time.perf_counter() - start,
                      best.value if best is not None and best.feasible else float("nan")))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = minimize(problem, optimizer, max_cost=budget, callback=record)
    extra = {"counts": optimizer.counts, "starts": optimizer.n_starts} if hasattr(optimizer, "counts") else {}
    return {"method": label, "seed": seed, "best": result.best.value, "evaluations": result.n_evals,
            "cost": result.total_cost, "wall_s": result.wall_time_s, "stop": result.stop_reason,
            "trace": trace, **extra}


def best_by(trace: list, wall_s: float) -> float:
    """The best value a run had reached by ``wall_s`` seconds (nan before its first feasible point)."""
    reached = [v for _, t, v in trace if t <= wall_s and v == v]
    return min(reached) if reached else float("nan")


def table(runs: list[dict], target: float, success: float = SUCCESS) -> str:
    """Markdown tables: at the full budget, and at fixed wall times (median over seeds, successes)."""
    methods = list(dict.fromkeys(r["method"] for r in runs))
    lines = ["| method | median best | successes | median evaluations | median wall s | per seed |",
             "|---|---|---|---|---|---|"]
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        bests = [r["best"] for r in rs]
        lines.append(f"| {m} | {statistics.median(bests):.5f} | {sum(b <= target + success for b in bests)}/{len(rs)} | "
                     f"{statistics.median(r['evaluations'] for r in rs):.0f} | {statistics.median(r['wall_s'] for r in rs):.1f} | "
                     + ", ".join(f"{b:.4f}" for b in bests) + " |")
    lines += ["", "| method | " + " | ".join(f"best by {t:g} s" for t in WALL_TIMES) + " |",
              "|---|" + "---|" * len(WALL_TIMES)]
    for m in methods:
        rs = [r for r in runs if r["method"] == m]
        cells = []
        for t in WALL_TIMES:
            values = [best_by(r["trace"], t) for r in rs]
            done = [v for v in values if v == v]
            med = statistics.median(done) if len(done) == len(values) else float("nan")
            cells.append(f"{med:.4f} ({sum(v <= target + success for v in done)}/{len(rs)})")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def speedup(problem, sizes: tuple[int, ...], repeats: int) -> list[dict]:
    """Wall time of ``problem.evaluate`` on K points with gradients, batched vs one ``evaluate_one`` each
    (medians of ``repeats`` interleaved rounds after a warm-up)."""
    out = []
    for k in sizes:
        z = problem.random_points(k, 123)
        problem.evaluate(z, need_grad=True)  # warm-up: leads and geometry memoised
        batched, looped = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            problem.evaluate(z, need_grad=True)
            batched.append(time.perf_counter() - t)
            t = time.perf_counter()
            for zi in z:
                problem.evaluate_one(zi, need_grad=True)
            looped.append(time.perf_counter() - t)
        b, lo = statistics.median(batched), statistics.median(looped)
        out.append({"points": k, "batched_s": b, "looped_s": lo, "speedup": lo / b})
        print(f"K = {k:2d}: batched {b:.3f} s, one by one {lo:.3f} s, speed-up {lo / b:.2f}x", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="multistart,lbfgs,random,botorch")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget", type=float, default=120.0, help="forward-equivalents per run")
    parser.add_argument("--grad-cost", type=float, default=1.0, help="forward-equivalents of a value + gradient")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--speedup-sizes", default="4,8,16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--speedup-only", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=JSON",
                        help='an extra multistart method, e.g. ms_h2=\'{"halving": 2}\' (then name it in --methods)')
    parser.add_argument("--success", type=float, default=SUCCESS,
                        help="a run succeeds within this of the best value any run found")
    args = parser.parse_args()
    for variant in args.variant:
        label, _, settings = variant.partition("=")
        METHODS[label] = ("multistart", json.loads(settings))
    torch.set_num_threads(args.threads)
    from problems.agnr_doping import agnr_doping

    problem = agnr_doping()  # paper/agnr_doping with its defaults
    problem.grad_cost_factor = args.grad_cost
    print(f"paper/agnr_doping, dim {problem.dim}, grad_cost_factor {args.grad_cost}, torch threads {args.threads}")
    summary = {"speedup": speedup(problem, tuple(int(k) for k in args.speedup_sizes.split(",")), args.repeats)}
    if not args.speedup_only:
        runs = []
        for label in args.methods.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                runs.append(run(problem, label, seed, args.budget))
                r = runs[-1]
                print(f"{label:12s} seed {seed}: best {r['best']:.6f}, {r['evaluations']} evaluations, "
                      f"{r['wall_s']:.1f} s, {r['stop']}" + (f", restarts {r['counts']}" if "counts" in r else ""),
                      flush=True)
        target = min(r["best"] for r in runs)
        print(f"\nbest value found by any run: {target:.6f}; success = within {args.success:g} of it\n")
        print(table(runs, target, args.success))
        summary["runs"] = runs
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
