"""Where the campaign finds problems and optimizers by name.

Problems: ``invdesign.registry`` (a dict the framework owns and the problems fill: the library's toy
problems, the modules of the ``invdesign.problems`` entry points, loaded only when needed), or
``"package.module:factory"`` for a factory outside the registry (it must be importable on every
worker). Optimizers: ``invdesign.optimizers.OPTIMIZERS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from invdesign import registry as _problems


def problem_registry() -> dict[str, Callable[..., Any]]:
    """Every registered problem, name -> factory (imports every problem module: for listings)."""
    return _problems.problems()


def resolve_problem(name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` (or imported from ``"module:factory"``, checked to be a function
    or Problem subclass, not called); KeyError/ImportError/TypeError otherwise."""
    return _problems.lookup(name)


def make_problem(name: str, settings: dict[str, Any]) -> Any:
    """The built problem, checked to be an ``invdesign.problem.Problem``."""
    return _problems.build(name, settings)


def optimizer_registry() -> dict[str, type]:
    from invdesign.optimizers import OPTIMIZERS

    return OPTIMIZERS


def optimizer_settings(name: str) -> dict[str, Any]:
    """Valid settings of a registered optimizer and their defaults."""
    from invdesign.optimizers import OPTIMIZERS, settings_of

    return settings_of(OPTIMIZERS[name])


def problem_settings_line(factory: Callable[..., Any]) -> str:
    """``name=default (range), ...`` of a problem factory's declared settings, for ``invdesign list``."""
    from invdesign.settings import declared, listing

    valid, var_kw = declared(factory)
    return listing(valid) + (" (and any other keyword: the factory takes **kwargs)" if var_kw else "")


def describe(obj: Any) -> str:
    """One line: a ``description`` attribute, else the first docstring line."""
    text = getattr(obj, "description", None)
    if not isinstance(text, str) or not text:
        text = (inspect.getdoc(obj) or "").strip().split("\n")[0]
    return text


def describe_problem(name: str, factory: Callable[..., Any]) -> str:
    """One-line description of a registered problem: the factory's own, else the built problem's
    ``description`` (problems are cheap to build: a factory does not simulate)."""
    text = describe(factory) if (getattr(factory, "description", None) or factory.__doc__) else ""
    if not text:
        try:
            text = describe(factory())
        except Exception as err:  # listing must not die on one problem
            text = f"(could not build with defaults: {type(err).__name__}: {err})"
    return text
