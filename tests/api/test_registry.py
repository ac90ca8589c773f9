"""The problem registry (``invdesign.registry``): a dict the framework owns, filled by the problems."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from invdesign import registry
from invdesign.campaign import CampaignSpec, SpecError
from invdesign.campaign import registry as campaign_registry
from invdesign.testing.toy_problems import TOY_PROBLEMS, Quadratic

REPO = Path(__file__).resolve().parents[2]
GROUP = registry.ENTRY_POINT_GROUP


def quadratic_factory(dim: int = 2):
    """A test factory (a plain function returning a Problem)."""
    return Quadratic(dim=dim)


CALLS: list[int] = []


def not_a_problem(dim: int = 2):
    CALLS.append(dim)
    return {"dim": dim}


PLUGIN = {"test/plugin_quadratic": quadratic_factory}


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as if nothing had been loaded yet (restored afterwards)."""
    monkeypatch.setattr(registry, "PROBLEMS", {})
    monkeypatch.setattr(registry, "_loaded", {"builtin": False, "entry_points": False})
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ())
    return registry.PROBLEMS


def _points(monkeypatch, *values):
    points = [importlib.metadata.EntryPoint(name=f"p{i}", value=v, group=GROUP) for i, v in enumerate(values)]
    monkeypatch.setattr(registry, "_entry_points", lambda: points)


def test_toy_problems_are_registered_under_toy_prefix():
    for name, factory in TOY_PROBLEMS.items():
        assert registry.lookup(f"toy/{name}") is factory


def test_problems_package_fills_the_same_dict():
    import problems

    assert problems.PROBLEMS is registry.PROBLEMS
    assert "paper/agnr_doping" in registry.problems() and "toy/quadratic" in registry.problems()
    assert list(registry.problems())[0].startswith("toy/")  # listed first, as before


def test_register_refuses_a_second_factory_under_one_name(fresh_registry):
    registry.register("a")(quadratic_factory)
    registry.register("a")(quadratic_factory)  # the same one again (a module imported twice) is fine
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(not_a_problem)


def test_entry_points_load_only_when_a_name_is_unknown(fresh_registry, monkeypatch):
    _points(monkeypatch, "tests.api.test_registry:PLUGIN")
    registry.register("known")(quadratic_factory)
    assert registry.lookup("known") is quadratic_factory
    assert not registry._loaded["entry_points"]
    assert registry.lookup("test/plugin_quadratic") is quadratic_factory
    assert registry._loaded["entry_points"]
    with pytest.raises(KeyError):
        registry.lookup("test/nothing")


def test_an_entry_point_naming_a_module_registers_by_importing_it(fresh_registry, monkeypatch):
    _points(monkeypatch, "tests.api.registry_plugin")
    import sys

    sys.modules.pop("tests.api.registry_plugin", None)
    assert "test/module_plugin" in registry.problems()
    assert registry.build("test/module_plugin", {"dim": 3}).dim == 3


def test_broken_or_wrong_entry_points_say_which(fresh_registry, monkeypatch):
    _points(monkeypatch, "tests.api.no_such_module_here")
    with pytest.raises(ImportError, match="p0 = 'tests.api.no_such_module_here'"):
        registry.problems()
    _points(monkeypatch, "tests.api.test_registry:quadratic_factory")
    with pytest.raises(TypeError, match="must name a module"):
        registry.problems()


@pytest.mark.parametrize("name, why", [
    ("os:system", "builtin_function_or_method, not a problem factory"),
    ("subprocess:run", "standard-library function"),
    ("math:pi", "is a float"),
    ("invdesign.problem:Evaluation", "not a subclass of invdesign.problem.Problem"),
    ("tests.api.test_registry:PLUGIN", "is a dict"),
    ("tests.api.test_registry:", "package.module:factory"),
])
def test_module_factory_must_be_a_problem_factory(name, why):
    with pytest.raises(TypeError, match=why):
        registry.lookup(name)


def test_module_factory_is_checked_without_calling_it_then_built_and_checked():
    CALLS.clear()
    assert registry.lookup("tests.api.test_registry:not_a_problem") is not_a_problem  # a function: allowed
    CampaignSpec.from_dict({"name": "s", "seeds": [0], "budget": {"max_cost": 4},
                            "problems": ["tests.api.test_registry:not_a_problem"], "optimizers": ["random"]})
    assert CALLS == []  # neither the lookup nor the spec's validation called it
    with pytest.raises(TypeError, match="returned builtins.dict, not an invdesign.problem.Problem"):
        campaign_registry.make_problem("tests.api.test_registry:not_a_problem", {})
    assert registry.lookup("invdesign.testing.toy_problems:Quadratic") is Quadratic  # a Problem subclass
    assert campaign_registry.make_problem("tests.api.test_registry:quadratic_factory", {"dim": 4}).dim == 4


def test_spec_rejects_a_callable_that_is_not_a_problem_factory():
    spec = {"name": "s", "seeds": [0], "budget": {"max_cost": 4}, "problems": ["os:system"], "optimizers": ["random"]}
    with pytest.raises(SpecError, match=r"problems\[0\]\.name: not a problem factory: 'os:system'"):
        CampaignSpec.from_dict(spec)


def test_bare_spec_names_are_found_beside_the_registered_problems():
    assert registry.spec_directories() == [REPO / "problems"]
    assert registry.find_spec_file("default") == REPO / "problems" / "default.toml"
    assert registry.find_spec_file("no_such_spec") is None
