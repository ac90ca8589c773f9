"""The problem registry: a plain dict owned by the framework, filled where each problem is defined.

``PROBLEMS`` maps a name (``"toy/quadratic"``, ``"paper/agnr_doping"``) to a *factory*: a function or
``Problem`` subclass taking keyword settings and returning an ``invdesign.problem.Problem``. A module
that defines problems registers them itself, when it is imported::

    from invdesign.registry import register

    @register("ribbon/gap")
    def ribbon_gap(width: int = WIDTH) -> Problem: ...

(``PROBLEMS["ribbon/gap"] = ribbon_gap`` does the same; ``problems.PROBLEMS`` is this dict.)

Who gets imported, and when (nothing here imports a problem module at import time):

- the library's own toy problems (``BUILTIN_MODULES``), on the first lookup or listing;
- modules named by the entry-point group ``invdesign.problems`` (``[project.entry-points]`` of an
  installed distribution; this repository's ``pyproject.toml`` points it at the ``problems``
  package), only when a name is not found among the ones already registered, or when all are listed.
  An entry point names a module (importing it registers its problems) or a mapping name -> factory.
  The directory of an entry point's package is also where bare campaign-spec names are looked up
  (``invdesign run default`` -> ``<package dir>/default.toml``), found without importing the package;
- ``"package.module:factory"`` names, imported on lookup (they must be importable on every worker).

This module uses the standard library only, so looking up a toy problem loads no physics.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

ENTRY_POINT_GROUP = "invdesign.problems"
BUILTIN_MODULES = ("invdesign.testing.toy_problems",)

Factory = Callable[..., Any]
F = TypeVar("F", bound=Factory)

PROBLEMS: dict[str, Factory] = {}

_loaded = {"builtin": False, "entry_points": False}


def register(name: str) -> Callable[[F], F]:
    """Decorator: ``PROBLEMS[name] = factory`` (a second, different factory under one name is an error)."""

    def add(factory: F) -> F:
        known = PROBLEMS.get(name)
        if known is not None and _origin(known) != _origin(factory):
            raise ValueError(f"problem name {name!r} is registered twice: {_origin(known)} and {_origin(factory)}")
        PROBLEMS[name] = factory
        return factory

    return add


def problems() -> dict[str, Factory]:
    """Every registered problem: the built-in ones, then those of every entry point (all imported)."""
    _load_builtin()
    _load_entry_points()
    return PROBLEMS


def lookup(name: str) -> Factory:
    """The factory for ``name``: a registered name, or ``"package.module:factory"``.

    KeyError for an unknown name; ImportError/AttributeError when a ``module:factory`` does not
    import; TypeError when it names something that cannot be a problem factory (checked without
    calling it: see ``check_factory``).
    """
    if ":" in name:
        return _from_module(name)
    _load_builtin()
    if name not in PROBLEMS:
        _load_entry_points()
    if name not in PROBLEMS:
        raise KeyError(name)
    return PROBLEMS[name]


def build(name: str, settings: Mapping[str, Any]) -> Any:
    """``lookup(name)(**settings)``, checked to be an ``invdesign.problem.Problem``."""
    problem = lookup(name)(**settings)
    from invdesign.problem import Problem  # only here: building a problem needs the core API anyway

    if not isinstance(problem, Problem):
        raise TypeError(f"problem factory {name!r} returned {type(problem).__module__}.{type(problem).__qualname__}, "
                        "not an invdesign.problem.Problem")
    return problem


def check_factory(obj: Any, name: str) -> Factory:
    """``obj`` if it can be a problem factory: a ``Problem`` subclass, or a Python function defined in a
    module outside the standard library. It is never called here (its return type is checked by ``build``)."""
    if inspect.isclass(obj):
        from invdesign.problem import Problem

        if not issubclass(obj, Problem):
            raise TypeError(f"{name} is the class {obj.__module__}.{obj.__qualname__}, not a subclass of "
                            "invdesign.problem.Problem")
        return obj
    if not inspect.isfunction(obj):
        raise TypeError(f"{name} is a {type(obj).__name__}, not a problem factory (a function returning an "
                        "invdesign.problem.Problem, or a Problem subclass)")
    top = (getattr(obj, "__module__", None) or "").partition(".")[0]
    if not top or top in sys.stdlib_module_names:
        raise TypeError(f"{name} is {obj.__module__}.{obj.__qualname__}, a standard-library function, not a "
                        "problem factory")
    return obj


def spec_directories() -> list[Path]:
    """Where bare spec names are looked up: each entry point's package directory (not imported)."""
    out: list[Path] = []
    for point in _entry_points():
        module = point.value.partition(":")[0].strip()
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        if found is None:
            continue
        folders = list(found.submodule_search_locations or [])
        if not folders and found.origin:
            folders = [str(Path(found.origin).parent)]
        out.extend(Path(f) for f in folders if Path(f) not in out)
    return out


def find_spec_file(name: str) -> Path | None:
    """``<dir>/<name>.toml`` in the first of ``spec_directories()`` that has it, else None."""
    for folder in spec_directories():
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


# ----- loading ---------------------------------------------------------------------------------------


def _origin(factory: Any) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def _from_module(name: str) -> Factory:
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise TypeError(f"{name!r}: a problem outside the registry is named 'package.module:factory'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return check_factory(obj, repr(name))


def _load_builtin() -> None:
    if not _loaded["builtin"]:
        _loaded["builtin"] = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    # Every distribution's, not ``entry_points(group=...)``: that keeps the first distribution of a name on
    # sys.path, which from a source checkout is often a stale ``invdesign.egg-info`` left by an old build.
    found: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for dist in importlib.metadata.distributions():
        for point in dist.entry_points:
            if point.group == ENTRY_POINT_GROUP:
                found.setdefault((point.name, point.value), point)
    return sorted(found.values(), key=lambda p: (p.name, p.value))


def _load_entry_points() -> None:
    if _loaded["entry_points"]:
        return
    for point in _entry_points():
        try:
            obj = point.load()
        except Exception as err:
            raise ImportError(f"problem entry point {point.name} = {point.value!r} (group {ENTRY_POINT_GROUP}) "
                              f"failed to import: {type(err).__name__}: {err}") from err
        if isinstance(obj, Mapping):
            for key, factory in obj.items():
                register(str(key))(factory)
        elif not isinstance(obj, ModuleType):
            raise TypeError(f"problem entry point {point.name} = {point.value!r} names a {type(obj).__name__}; "
                            "it must name a module (that registers its problems) or a mapping name -> factory")
    _loaded["entry_points"] = True  # only once all loaded: a failed import is reported again next time
