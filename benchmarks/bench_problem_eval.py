#!/usr/bin/env python
"""One evaluation of a registered problem, value alone and value + gradient (wall and CPU seconds).

Run from the repository root with the virtual environment active:

    python benchmarks/bench_problem_eval.py                           # fet/doping_profile, 5 repeats
    python benchmarks/bench_problem_eval.py --problem paper/agnr_doping --repeats 9 --threads 1

What is timed: ``problem.evaluate_one(z, need_grad=...)`` at the problem's initial point moved by a
small different offset in every round (so no result is reused; the leads, which do not depend on the
parameters, are reused as in a campaign), after one warm-up evaluation of each kind. Value and
value + gradient alternate. Medians [min, max]; the hardware and the torch threads are printed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from invdesign.registry import lookup
from timing import fmt_stats, hardware_info, print_hardware, time_stats


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problem", default="fet/doping_profile")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = hardware_info()
    print_hardware(info)
    problem = lookup(args.problem)()
    z0 = problem.initial_point()

    def point(k: int) -> torch.Tensor:
        return z0 + 1e-3 * k  # optimizer coordinates: any point maps inside the parameter bounds

    for need_grad in (False, True):  # warm-up: geometry, leads, Poisson kernel
        problem.evaluate_one(point(0), need_grad=need_grad)
    times = {"value": [], "value_and_gradient": []}
    for r in range(args.repeats):
        for key, need_grad in (("value", False), ("value_and_gradient", True)):
            times[key].append(_timed(lambda: problem.evaluate_one(point(r + 1), need_grad=need_grad)))
    summary = {"problem": args.problem, "threads": torch.get_num_threads(), "repeats": args.repeats,
               "hardware": info}
    for key, runs in times.items():
        wall, cpu = time_stats([w for w, _ in runs]), time_stats([c for _, c in runs])
        summary[key] = {"wall": wall, "cpu": cpu}
        print(f"{key:20s} wall {fmt_stats(wall)}\n{'':20s} CPU  {fmt_stats(cpu)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
