"""The best design of each run as files: ``designs/<run_id>.json`` (named physical values with units,
loadable by ``invdesign.designs.load_design``), and ``designs/<run_id>.xyz`` where the problem has atoms.

The structure file is written by a callback the caller passes (the CLI, which may import the physics):
the report itself only reads the campaign's storage format and the core parameter API.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

from invdesign.campaign.records import num
from invdesign.report.load import load
from invdesign.report.table import run_space

DESIGNS_DIR = "designs"


def export_designs(campaign_dir: str | os.PathLike, problems: Mapping[str, Any] | None = None,
                   write_structure: Callable[[Any, dict, Path], Path | None] | None = None) -> list[Path]:
    """Write each run's best design; returns the paths written.

    Args:
        problems: optional built problems by problem label; their ``space`` and ``parameter_units``
            are used (else those stored in each run's ``settings.json``).
        write_structure: ``(problem, params, path_without_suffix) -> path or None``, called for runs whose
            problem is given, to write the design's atoms (e.g. extended XYZ).
    """
    from invdesign.designs import design_dict, physical_values  # core parameter API (torch), no physics

    data = load(campaign_dir)
    out_dir = Path(campaign_dir) / DESIGNS_DIR
    written: list[Path] = []
    for run in data.runs:
        rec = run.best_record
        if rec is None or rec.get("x") is None:
            continue
        problem = (problems or {}).get(run.problem)
        space = problem.space if problem is not None else run_space(run)
        if space is None:
            continue
        units = (getattr(problem, "parameter_units", None) if problem is not None
                 else (run.problem_info or {}).get("parameter_units")) or {}
        x = [num(v) for v in rec["x"]]
        d = design_dict(space, x, units, problem=run.unit.get("problem_name", run.problem), run=run.run_id,
                        optimizer=run.optimizer, seed=run.seed, value=rec.get("value"),
                        feasible=bool(rec.get("feasible")) and not rec.get("failed"),
                        problem_settings=run.unit.get("problem_settings", {}))
        out_dir.mkdir(exist_ok=True)
        path = out_dir / f"{run.run_id}.json"
        path.write_text(json.dumps(d, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        written.append(path)
        if problem is not None and write_structure is not None:
            extra = write_structure(problem, physical_values(space, x), out_dir / run.run_id)
            if extra is not None:
                written.append(Path(extra))
    return written
