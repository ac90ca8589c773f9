"""Campaign specs: TOML files or Python dicts, validated completely before anything runs.

A campaign is problems x optimizers x seeds; each combination is a ``Unit`` (one run directory)::

    name = "default"                  # optional (default: the file's stem)
    description = "..."               # optional
    seeds = [0, 1, 2]                 # required: non-negative integers

    [budget]                          # per run; at least one of the three
    max_cost = 200                    # forward-equivalent simulations (a gradient costs grad_cost_factor)
    max_evals = 1000                  # evaluations
    max_time_s = 600.0                # wall time, checked between ask/tell rounds
    fail_fast = 5                     # optional: stop a run (as an error) whose first 5 evaluations all
                                      #   fail for the same reason (0: never; default 5)
    grad_cost = 2.0                   # optional: a value + gradient costs this many forward-equivalents,
                                      #   fixed (default: the problem's declared factor, else measured once
                                      #   per campaign, which depends on the machine's load); the measured
                                      #   value is recorded beside it (settings.json, summary.csv)

    [[problems]]
    name = "toy/quadratic"            # registry name (invdesign.registry) or "package.module:factory"
    label = "quadratic"               # optional: the name in run directories and reports
    settings = { dim = 5 }            # optional: keyword arguments of the factory
    budget = { max_cost = 100 }       # optional: overrides keys of the campaign budget
    target = 1e-6                     # optional: value counted as success in the report
    start = "random"                  # optional: "problem" (default, its initial point for every seed)
                                      #   or "random" (a seeded random point per seed, for every optimizer)

    [[optimizers]]
    name = "nevergrad"                # registry name (invdesign.optimizers.OPTIMIZERS)
    label = "cma"
    settings = { optimizer = "CMA" }  # keyword settings of the optimizer

A problem or optimizer entry may also be a bare name: ``problems = ["toy/quadratic"]``.
The same from Python: ``CampaignSpec.from_dict({...})`` (same keys), ``load_spec(path)``.

Validation collects every error with its key path (``problems[1].settings.dimm``) and the reason
(unknown names list the valid ones) and raises one ``SpecError``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as the tomli package (a dependency there, see pyproject.toml)
    import tomli as tomllib
from pathlib import Path
from typing import Any

from invdesign.campaign import registry
from invdesign.campaign.storage import run_id
from invdesign.settings import Setting, check_setting_type, declared, listing, problems_with  # noqa: F401 (check_setting_type: re-exported)

BUDGET_KEYS = ("max_cost", "max_evals", "max_time_s")
FAIL_FAST_KEY = "fail_fast"  # allowed in a budget table, but no budget by itself
GRAD_COST_KEY = "grad_cost"  # the same: how cost is counted, not a limit
TOP_KEYS = ("name", "description", "seeds", "budget", "problems", "optimizers")
PROBLEM_KEYS = ("name", "label", "settings", "budget", "target", "start")
STARTS = ("problem", "random")
OPTIMIZER_KEYS = ("name", "label", "settings")


class SpecError(ValueError):
    """A campaign spec is invalid; ``errors`` lists ``(key path, reason)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]], source: str | None = None):
        self.errors = list(errors)
        self.source = source
        where = f" {source}" if source else ""
        lines = [f"campaign spec{where}: {len(self.errors)} error(s)"]
        lines += [f"  {key or '<top>'}: {reason}" for key, reason in self.errors]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class Unit:
    """One run: a problem with its settings, an optimizer with its settings, a seed and a budget."""

    problem: str               # label
    problem_name: str          # registry name
    problem_settings: dict[str, Any]
    optimizer: str             # label
    optimizer_name: str        # registry name
    optimizer_settings: dict[str, Any]
    seed: int
    budget: dict[str, Any]     # max_cost, max_evals, max_time_s (None where unset)
    target: float | None = None
    start: str | None = None   # "random": every optimizer starts at a point drawn from the seed

    @property
    def run_id(self) -> str:
        return run_id(self.problem, self.optimizer, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Unit:
        return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class ProblemEntry:
    name: str
    label: str
    settings: dict[str, Any]
    budget: dict[str, Any]
    target: float | None = None
    start: str = "problem"


@dataclasses.dataclass(frozen=True)
class OptimizerEntry:
    name: str
    label: str
    settings: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class CampaignSpec:
    name: str
    description: str
    seeds: tuple[int, ...]
    budget: dict[str, Any]
    problems: tuple[ProblemEntry, ...]
    optimizers: tuple[OptimizerEntry, ...]

    def units(self) -> list[Unit]:
        """Every run, problem-major then optimizer then seed (the summary's row order)."""
        out = []
        for p in self.problems:
            budget = {k: p.budget.get(k, self.budget.get(k)) for k in BUDGET_KEYS}
            for key in (FAIL_FAST_KEY, GRAD_COST_KEY):
                value = p.budget.get(key, self.budget.get(key))
                if value is not None:  # only when given: stored units of older campaigns stay equal
                    budget[key] = value
            for o in self.optimizers:
                for seed in self.seeds:
                    out.append(Unit(p.label, p.name, dict(p.settings), o.label, o.name, dict(o.settings),
                                    int(seed), budget, p.target, None if p.start == "problem" else p.start))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Normalised JSON-able form (what ``campaign.json`` stores); ``from_dict`` reads it back."""
        return json.loads(json.dumps({
            "name": self.name, "description": self.description, "seeds": list(self.seeds),
            "budget": {k: v for k, v in self.budget.items() if v is not None},
            "problems": [dataclasses.asdict(p) for p in self.problems],
            "optimizers": [dataclasses.asdict(o) for o in self.optimizers],
        }))

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None, default_name: str = "campaign") -> CampaignSpec:
        """Validate ``data`` (the TOML document's dict) and build the spec; SpecError lists every problem."""
        return _Validator(source).spec(data, default_name)


def load_spec(path: str | os.PathLike) -> CampaignSpec:
    """Read and validate a TOML spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([("", f"cannot read the spec file: {err.strerror or err}")], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError([("", f"TOML syntax error: {err}")], str(path)) from None
    return CampaignSpec.from_dict(data, source=str(path), default_name=path.stem)


# --------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


class _Validator:
    def __init__(self, source: str | None):
        self.source = source
        self.errors: list[tuple[str, str]] = []

    def err(self, key: str, reason: str) -> None:
        self.errors.append((key, reason))

    def spec(self, data: Any, default_name: str) -> CampaignSpec:
        if not isinstance(data, dict):
            raise SpecError([("", f"must be a table (dict); got {_type_name(data)}")], self.source)
        for key in data:
            if key not in TOP_KEYS:
                self.err(key, f"unknown key; valid keys: {', '.join(TOP_KEYS)}")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            self.err("name", f"must be a non-empty string; got {name!r}")
            name = "campaign"
        description = data.get("description", "")
        if not isinstance(description, str):
            self.err("description", f"must be a string; got {_type_name(description)}")
            description = ""
        seeds = self.seeds(data)
        budget = self.budget(data.get("budget"), "budget") if "budget" in data else {}
        problems = self.entries(data, "problems", self.problem)
        optimizers = self.entries(data, "optimizers", self.optimizer)
        self.unique_labels(problems, "problems")
        self.unique_labels(optimizers, "optimizers")
        for i, p in enumerate(problems):
            if p is None:
                continue
            merged = {k: p.budget.get(k, budget.get(k)) for k in BUDGET_KEYS}
            if all(v is None for v in merged.values()):
                where = "budget" if "budget" not in data else f"problems[{i}].budget"
                self.err(where, f"missing: problem '{p.label}' has no budget; give at least one of "
                                f"{', '.join(BUDGET_KEYS)} in [budget] (or in the problem's budget)")
        if self.errors:
            raise SpecError(self.errors, self.source)
        ids: dict[str, str] = {}
        for p in problems:
            for o in optimizers:
                rid = run_id(p.label, o.label, 0)
                if rid in ids:
                    self.err("problems", f"labels '{p.label}' x '{o.label}' and {ids[rid]} give the same run "
                                         f"directory name {rid!r}; change a label")
                ids[rid] = f"'{p.label}' x '{o.label}'"
        if self.errors:
            raise SpecError(self.errors, self.source)
        return CampaignSpec(name.strip(), description, tuple(seeds), budget, tuple(problems), tuple(optimizers))

    def seeds(self, data: dict) -> list[int]:
        if "seeds" not in data:
            self.err("seeds", "missing: give a list of non-negative integers, e.g. seeds = [0, 1, 2]")
            return []
        seeds = data["seeds"]
        if not isinstance(seeds, list) or not seeds:
            self.err("seeds", f"must be a non-empty array of non-negative integers; got {seeds!r}")
            return []
        out = []
        for i, s in enumerate(seeds):
            if not _is_int(s) or s < 0:
                self.err(f"seeds[{i}]", f"must be a non-negative integer; got {_type_name(s)} {s!r}")
            else:
                out.append(int(s))
        dup = sorted({s for s in out if out.count(s) > 1})
        if dup:
            self.err("seeds", f"duplicate seeds {dup}")
        return out

    def budget(self, budget: Any, key: str) -> dict[str, Any]:
        if not isinstance(budget, dict):
            self.err(key, f"must be a table with some of {', '.join(BUDGET_KEYS)}; got {_type_name(budget)}")
            return {}
        out = {}
        for k, v in budget.items():
            path = f"{key}.{k}"
            if k == FAIL_FAST_KEY:
                if _is_int(v) and v >= 0:
                    out[k] = v
                else:
                    self.err(path, f"must be a non-negative integer (evaluations; 0: never stop early); "
                                   f"got {_type_name(v)} {v!r}")
            elif k == GRAD_COST_KEY:
                if _is_number(v) and v >= 1:
                    out[k] = float(v)
                else:
                    self.err(path, f"must be a number >= 1 (forward-equivalent simulations per value + gradient); "
                                   f"got {_type_name(v)} {v!r}")
            elif k not in BUDGET_KEYS:
                self.err(path, f"unknown budget key; valid: {', '.join(BUDGET_KEYS + (FAIL_FAST_KEY, GRAD_COST_KEY))}")
            elif k == "max_evals" and not (_is_int(v) and v > 0):
                self.err(path, f"must be a positive integer; got {_type_name(v)} {v!r}")
            elif k != "max_evals" and not (_is_number(v) and v > 0):
                self.err(path, f"must be a positive number; got {_type_name(v)} {v!r}")
            else:
                out[k] = v
        if not set(out) - {FAIL_FAST_KEY, GRAD_COST_KEY} and not any(k.startswith(key + ".") for k, _ in self.errors):
            if key == "budget":
                self.err(key, f"is empty: give at least one of {', '.join(BUDGET_KEYS)}")
        return out

    def entries(self, data: dict, key: str, parse) -> list:
        if key not in data:
            self.err(key, f"missing: give at least one [[{key}]] table with a name")
            return []
        items = data[key]
        if not isinstance(items, list) or not items:
            self.err(key, f"must be a non-empty array of tables (or names); got {_type_name(items)}")
            return []
        return [parse(item, f"{key}[{i}]") for i, item in enumerate(items)]

    def common(self, item: Any, path: str, keys: tuple[str, ...]) -> dict | None:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            self.err(path, f"must be a table or a name; got {_type_name(item)}")
            return None
        for k in item:
            if k not in keys:
                self.err(f"{path}.{k}", f"unknown key; valid keys: {', '.join(keys)}")
        if "name" not in item:
            self.err(f"{path}.name", "missing")
            return None
        if not isinstance(item["name"], str) or not item["name"]:
            self.err(f"{path}.name", f"must be a non-empty string; got {item['name']!r}")
            return None
        label = item.get("label", item["name"])
        if not isinstance(label, str) or not label.strip():
            self.err(f"{path}.label", f"must be a non-empty string; got {label!r}")
            label = item["name"]
        settings = item.get("settings", {})
        if not isinstance(settings, dict):
            self.err(f"{path}.settings", f"must be a table; got {_type_name(settings)}")
            settings = None
        return {**item, "label": label, "settings": settings}

    def check_settings(self, settings: dict, valid: dict[str, Setting], var_kw: bool, path: str, what: str) -> None:
        for k, why in problems_with(settings, valid, var_kw).items():
            if k not in valid:
                why = f"{what} has no setting {k!r}; valid: {listing(valid)}"
            elif k not in settings:
                why = f"missing: {what} requires it; valid: {listing(valid)}"
            self.err(f"{path}.settings.{k}", why)

    def problem(self, item: Any, path: str) -> ProblemEntry | None:
        item = self.common(item, path, PROBLEM_KEYS)
        if item is None:
            return None
        name = item["name"]
        try:
            factory = registry.resolve_problem(name)
        except KeyError:
            valid = ", ".join(sorted(registry.problem_registry()))
            self.err(f"{path}.name", f"unknown problem {name!r}; registered: {valid} "
                                     "(or 'package.module:factory')")
            factory = None
        except TypeError as err:  # imported, but not something that builds a Problem
            self.err(f"{path}.name", f"not a problem factory: {err}")
            factory = None
        except Exception as err:
            self.err(f"{path}.name", f"cannot import problem factory {name!r}: {type(err).__name__}: {err}")
            factory = None
        if factory is not None and item["settings"] is not None:
            try:
                valid, var_kw = declared(factory)
            except (TypeError, ValueError):
                valid, var_kw = {}, True
            self.check_settings(item["settings"], valid, var_kw, path, f"problem {name!r}")
        budget = self.budget(item["budget"], f"{path}.budget") if "budget" in item else {}
        target = item.get("target")
        if target is not None and not _is_number(target):
            self.err(f"{path}.target", f"must be a number; got {_type_name(target)} {target!r}")
            target = None
        start = item.get("start", "problem")
        if start not in STARTS:
            self.err(f"{path}.start", f"must be one of {STARTS}; got {start!r}")
            start = "problem"
        return ProblemEntry(name, item["label"], dict(item["settings"] or {}), budget,
                            None if target is None else float(target), start)

    def optimizer(self, item: Any, path: str) -> OptimizerEntry | None:
        item = self.common(item, path, OPTIMIZER_KEYS)
        if item is None:
            return None
        name = item["name"]
        known = registry.optimizer_registry()
        if name not in known:
            self.err(f"{path}.name", f"unknown optimizer {name!r}; registered: {', '.join(sorted(known))}")
        elif item["settings"] is not None:
            valid = {k: Setting(k, v) for k, v in registry.optimizer_settings(name).items()}
            self.check_settings(item["settings"], valid, False, path,
                                f"optimizer {name!r}")
        return OptimizerEntry(name, item["label"], dict(item["settings"] or {}))

    def unique_labels(self, entries: list, key: str) -> None:
        seen: dict[str, int] = {}
        for i, e in enumerate(entries):
            if e is None:
                continue
            if e.label in seen:
                self.err(f"{key}[{i}].label", f"label {e.label!r} is already used by {key}[{seen[e.label]}]; "
                                              "give each entry a distinct label")
            seen.setdefault(e.label, i)
