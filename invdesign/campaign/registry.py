"""Where the campaign finds problems and optimizers by name.

Problems: the plain dict ``problems.PROBLEMS`` (the top-level ``problems`` package of this repository,
imported lazily: it sits above the campaign layer), or ``"package.module:factory"`` for a factory
outside the registry (it must be importable on every worker). Optimizers: ``invdesign.optimizers.OPTIMIZERS``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any


def problem_registry() -> dict[str, Callable[..., Any]]:
    import problems

    return problems.PROBLEMS


def resolve_problem(name: str) -> Callable[..., Any]:
    """The factory registered as ``name`` (or imported from ``"module:attr"``); KeyError/ImportError otherwise."""
    if ":" in name:
        module, _, attr = name.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{name} is not callable")
        return obj
    registry = problem_registry()
    if name not in registry:
        raise KeyError(name)
    return registry[name]


def make_problem(name: str, settings: dict[str, Any]) -> Any:
    return resolve_problem(name)(**settings)


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
