"""Every evaluation of a campaign as one pandas DataFrame, and its export as CSV or Parquet.

    from invdesign.report import load_table
    df = load_table("results/default")        # one row per evaluation of every run

Columns: ``campaign, problem, optimizer, seed, run, n`` (0-based evaluation index in the run), ``step``,
``cost`` (forward-equivalent cost of this evaluation) and ``cumulative_cost``, ``wall_time_s`` (this
evaluation) and ``elapsed_s`` (run time when recorded), ``value``, ``feasible``, ``failed``,
``reason``, ``constraint:<name>`` per constraint, ``metric:<name>`` per metric, and the physical
parameter values by name: ``<block>`` for a scalar block, ``<block>[i]`` / ``<block>[i,j]`` per entry
(blocks with more than ``max_entries`` entries are left out; compact history lines of large problems
carry no point, so their parameter columns are NaN). The physical values come from the parameter
space stored in each run's ``settings.json`` (or ``spaces`` given by the caller); runs without one get
optimizer coordinates ``x:<label>`` instead. ``df.attrs["units"]`` maps parameter columns to units.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
from pathlib import Path
from typing import Any, Mapping

from typing import TYPE_CHECKING

import numpy as np

from invdesign.campaign.records import num
from invdesign.report.load import RunData, load

if TYPE_CHECKING:  # the report imports neither torch nor pandas until a table or a point is asked for
    import pandas as pd

    from invdesign.params import ParameterSpace

MAX_ENTRIES = 256


class ExportError(RuntimeError):
    """The export cannot be written (e.g. Parquet without pyarrow)."""


def run_space(run: RunData, spaces: Mapping[str, ParameterSpace] | None = None) -> ParameterSpace | None:
    """The run's parameter space: from ``spaces`` (by problem label), else the one stored with the run."""
    if spaces and run.problem in spaces:
        return spaces[run.problem]
    stored = (run.problem_info or {}).get("space")
    if not stored:
        return None
    from invdesign.designs import space_from_dict  # core parameter API (torch), no physics

    return space_from_dict(stored)


def entry_labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """``name`` for a scalar, else ``name[i]``, ``name[i,j]``... in C order."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in itertools.product(*(range(s) for s in shape))]


def physical_columns(space: ParameterSpace, x: list[float] | None, max_entries: int = MAX_ENTRIES) -> dict[str, float]:
    """``{column: value}`` of the physical parameters at optimizer coordinates ``x`` (NaN when x is None)."""
    from invdesign.designs import physical_values

    out: dict[str, float] = {}
    values = physical_values(space, [num(v) for v in x]) if x is not None else None
    for b in space.blocks:
        if math.prod(b.shape) > max_entries:
            continue
        flat = values[b.name].reshape(-1).tolist() if values is not None else [math.nan] * math.prod(b.shape)
        out.update(zip(entry_labels(b.name, b.shape), flat))
    return out


def point_columns(run: RunData, rec: Mapping[str, Any], space: ParameterSpace | None,
                  max_entries: int = MAX_ENTRIES) -> dict[str, float]:
    """Physical columns of one history record, or ``x:<label>`` coordinates where the space is unknown."""
    x = rec.get("x")
    if space is not None:
        return physical_columns(space, x, max_entries)
    names = (run.problem_info or {}).get("parameter_names") or []
    if x is None or len(x) > max_entries:
        return {}
    return {f"x:{names[i] if i < len(names) else i}": num(v) for i, v in enumerate(x)}


def load_table(campaign_dir: str | os.PathLike, spaces: Mapping[str, ParameterSpace] | None = None,
               max_entries: int = MAX_ENTRIES) -> pd.DataFrame:
    """One row per evaluation of every run of the campaign in ``campaign_dir`` (columns: module docstring)."""
    import pandas as pd

    data = load(campaign_dir)
    rows: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    for run in data.runs:
        space = run_space(run, spaces)
        specs = (run.problem_info or {}).get("constraints", [])
        run_units = (run.problem_info or {}).get("parameter_units") or {}
        if space is not None:
            for b in space.blocks:
                for label in entry_labels(b.name, b.shape):
                    units[label] = run_units.get(b.name, "")
        for i, rec in enumerate(run.records):
            row = {"campaign": data.name, "problem": run.problem, "optimizer": run.optimizer, "seed": run.seed,
                   "run": run.run_id, "n": int(rec.get("n", i)), "step": rec.get("step"),
                   "cost": num(rec.get("cost", 1.0)), "cumulative_cost": float(run.cost[i]),
                   "wall_time_s": num(rec.get("wall_time_s", 0.0)), "elapsed_s": num(rec.get("elapsed_s", 0.0)),
                   "value": num(rec.get("value")), "feasible": bool(run.feasible[i]), "failed": bool(rec.get("failed")),
                   "reason": rec.get("reason")}
            for spec, g in zip(specs, rec.get("constraints", [])):
                row[f"constraint:{spec['name']}"] = num(g)
            for k, v in (rec.get("metrics") or {}).items():
                row[f"metric:{k}"] = num(v)
            row.update(point_columns(run, rec, space, max_entries))
            rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["units"] = units
    return df


def export_table(campaign_dir: str | os.PathLike, fmt: str = "csv", out: str | os.PathLike | None = None,
                 spaces: Mapping[str, ParameterSpace] | None = None) -> Path:
    """Write ``load_table`` as ``evaluations.csv`` / ``evaluations.parquet`` in the campaign directory
    (or at ``out``). Parquet needs pyarrow (``pip install 'invdesign[parquet]'``)."""
    if fmt not in ("csv", "parquet"):
        raise ExportError(f"unknown export format {fmt!r}: choose csv or parquet")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ExportError("parquet export needs pyarrow, which is not installed: pip install 'invdesign[parquet]' "
                          "(or use --format csv)")
    df = load_table(campaign_dir, spaces)
    path = Path(out) if out is not None else Path(campaign_dir) / f"evaluations.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False, float_format="%.17g")
    else:
        df.attrs = {}  # pyarrow stores attrs as JSON metadata; units are in the design files
        df.to_parquet(path, index=False)
    return path


def best_point_label(run: RunData, rec: Mapping[str, Any] | None, shown: int = 8) -> str:
    """``name=value, ...`` (physical values by parameter name) of a record, the report's point column."""
    if rec is None or rec.get("x") is None:
        return "-"
    try:
        space = run_space(run)
    except Exception:  # a stored space that no longer builds: fall back to the coordinates
        space = None
    if space is None:
        x = [num(v) for v in rec["x"]]
        return "[" + ", ".join(f"{v:.4g}" for v in x[:shown]) + (", ..." if len(x) > shown else "") + "]"
    cols = physical_columns(space, rec["x"], max_entries=np.iinfo(np.int64).max)
    units = (run.problem_info or {}).get("parameter_units") or {}
    items = list(cols.items())
    text = []
    for label, v in items[:shown]:
        unit = units.get(label.split("[")[0], "")
        text.append(f"{label}={v:.4g}" + (f" {unit}" if unit else ""))
    return ", ".join(text) + (", ..." if len(items) > shown else "")
