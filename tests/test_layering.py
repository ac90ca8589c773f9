"""The layering rule of ``invdesign/__init__.py``: each layer, imported in a fresh interpreter, loads
none of the packages above it (nor the concrete problems, nor the heavy optional back-ends)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PHYSICS = ("invdesign.negf", "invdesign.scf", "invdesign.tb")
FRAMEWORK = ("invdesign.optimizers", "invdesign.campaign", "invdesign.report", "invdesign.cli")
BACKENDS = ("botorch", "nevergrad")
PROBLEMS = ("problems",)

# what each layer must not load: (code run in the fresh interpreter, forbidden packages)
RULES = {
    "negf": ("import invdesign.negf", (*FRAMEWORK, *PROBLEMS, *BACKENDS, "invdesign.tb", "invdesign.scf")),
    "tb": ("import invdesign.tb", (*FRAMEWORK, *PROBLEMS, *BACKENDS, "invdesign.scf")),
    "scf": ("import invdesign.scf", (*FRAMEWORK, *PROBLEMS, *BACKENDS)),
    # importing invdesign.problem also imports params, objectives and constraints: one check covers them
    "core": ("import invdesign.problem, invdesign.settings, invdesign.registry, invdesign.multiobjective",
             (*PHYSICS, *PROBLEMS, *FRAMEWORK, *BACKENDS)),
    "optimizers": ("import invdesign.optimizers",
                   (*PHYSICS, *PROBLEMS, *BACKENDS, "invdesign.campaign", "invdesign.report", "invdesign.cli")),
    "campaign": ("import invdesign.campaign, invdesign.campaign.campaign, invdesign.campaign.spec",
                 (*PHYSICS, *PROBLEMS, *BACKENDS, "invdesign.report", "invdesign.cli")),
    "report": ("import invdesign.report, invdesign.report.plots, invdesign.report.markdown",
               (*PHYSICS, *PROBLEMS, *BACKENDS, "invdesign.optimizers", "invdesign.cli")),
    "cli": ("import invdesign.cli", (*PHYSICS, *PROBLEMS, *BACKENDS)),
    # a campaign on toy problems: the registry finds them without the entry points, specs validate, and
    # bare spec names are found beside the problems without importing them
    "toy campaign": ("from invdesign.campaign import CampaignSpec, registry; from invdesign.cli import _spec_path\n"
                     "registry.make_problem('toy/quadratic', {})\n"
                     "CampaignSpec.from_dict({'name': 's', 'seeds': [0], 'budget': {'max_cost': 4}, 'problems': ['toy/quadratic'],"
                     " 'optimizers': ['lbfgs', 'random']})\n"
                     "assert _spec_path('default').is_file(), _spec_path('default')",
                     (*PHYSICS, *PROBLEMS, *BACKENDS)),
}


def loaded_packages(code: str) -> set[str]:
    """Every module in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def offenders(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_loads_nothing_above_it(layer):
    code, forbidden = RULES[layer]
    assert offenders(loaded_packages(code), forbidden) == [], f"{layer}: `{code}` loads what its layer must not"


def test_registry_module_is_standard_library_only():
    modules = loaded_packages("import invdesign.registry")
    assert offenders(modules, ("torch", "numpy", "scipy", "invdesign.problem", *PHYSICS, *PROBLEMS)) == []


def test_listing_finds_the_problems_through_the_entry_point():
    # the other direction: listing every problem does import problems/ (through the entry point only)
    modules = loaded_packages("from invdesign.campaign import registry; "
                              "assert 'paper/agnr_doping' in registry.problem_registry()")
    assert "problems" in modules and "problems.agnr_doping" in modules
