"""Declared settings of problem factories and optimizers: names, types, defaults and allowed ranges.

One home for what a setting is. A setting is a keyword argument with a default; its type is the
default's (``7`` an integer, ``1.0`` a number, ``"CMA"`` a string, a tuple an array ...). An allowed
range or a set of choices is declared next to it with ``typing.Annotated``::

    from typing import Annotated
    from invdesign.settings import OneOf, Range, checked_settings

    class Ribbon(Problem):
        @checked_settings
        def __init__(self, width: Annotated[int, Range(2, 40)] = 7,
                     model_set: Annotated[str, OneOf("NN", "TNN")] = "TNN"): ...

    @settings_like(Ribbon)          # a factory taking **settings shows (and checks) Ribbon's
    def ribbon(**settings) -> Ribbon:
        return Ribbon(**settings)

``declared(factory)`` reads them (the campaign spec validator and ``invdesign list --settings`` do);
``checked_settings`` checks every argument given at call time, so a Python caller gets the same error
as a spec: the setting, the reason and the valid settings listed.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import numbers
import typing
from collections.abc import Callable
from typing import Any

REQUIRED = inspect.Parameter.empty


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            tuple: "array", dict: "table"}.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def check_setting_type(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot replace ``default`` (judged by the default's type), or None if it can."""
    if default is REQUIRED or default is None:
        return None
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "a boolean"
    elif isinstance(default, int):
        ok, want = _is_int(value), "an integer"
    elif isinstance(default, float):
        ok, want = _is_number(value), "a number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "a string"
    elif isinstance(default, (list, tuple)):
        ok, want = isinstance(value, (list, tuple)), "an array"
    elif isinstance(default, dict):
        ok, want = isinstance(value, dict), "a table"
    else:
        return None
    return None if ok else f"must be {want} (default {default!r}); got {_type_name(value)} {value!r}"


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed interval of a number (``None``: unbounded on that side); ends included unless ``open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"

    def reason(self, value: Any) -> str | None:
        """Why ``value`` is outside the range (or not a finite number), else None."""
        if not _is_number(value):
            return f"must be a finite number {self}; got {_type_name(value)} {value!r}"
        v = float(value)
        below = self.low is not None and (v <= self.low if self.low_open else v < self.low)
        above = self.high is not None and (v >= self.high if self.high_open else v > self.high)
        return f"must be {self}; got {value!r}" if below or above else None


@dataclasses.dataclass(frozen=True)
class OneOf:
    """Allowed values of a setting (compared with ``==``)."""

    choices: tuple

    def __init__(self, *choices: Any):
        object.__setattr__(self, "choices", tuple(choices))

    def __str__(self) -> str:
        return "one of " + ", ".join(map(repr, self.choices))

    def reason(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be {self}; got {value!r}"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One declared setting: its name, default (``REQUIRED`` when it has none) and rules."""

    name: str
    default: Any
    rules: tuple = ()
    nullable: bool = False  # the annotation admits None (``float | None``)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def reason(self, value: Any) -> str | None:
        """Why ``value`` is not a valid value of this setting, else None."""
        if value is None and (self.nullable or self.default is None):
            return None
        why = check_setting_type(value, self.default)
        if why:
            return why
        for rule in self.rules:
            why = rule.reason(value)
            if why:
                return why
        return None

    def __str__(self) -> str:
        text = f"{self.name}={'<required>' if self.required else repr(self.default)}"
        return text + "".join(f" ({rule})" for rule in self.rules)


def _admits_none(hint: Any) -> bool:
    if hint is None:
        return False
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return type(None) in typing.get_args(hint)


def _signature_source(factory: Callable[..., Any]) -> tuple[Callable[..., Any], bool]:
    """The function whose signature declares ``factory``'s settings, and whether to drop ``self``."""
    source = getattr(factory, "__settings_of__", factory)
    if inspect.isclass(source):
        return source.__init__, True
    return source, False


def declared(factory: Callable[..., Any]) -> tuple[dict[str, Setting], bool]:
    """The settings ``factory`` declares (a class, a function, or a ``settings_like`` factory), and
    whether it also takes ``**kwargs`` (then any further name is accepted)."""
    target, drop_self = _signature_source(factory)
    target = inspect.unwrap(target)
    params = list(inspect.signature(target).parameters.values())
    if params and (drop_self or params[0].name == "self"):
        params = params[1:]
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: no rules, names and defaults still hold
        hints = {}
    out, var_kw = {}, False
    for p in params:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            hint = hints.get(p.name)
            rules = tuple(m for m in getattr(hint, "__metadata__", ()) if hasattr(m, "reason"))
            out[p.name] = Setting(p.name, p.default, rules, _admits_none(hint))
    return out, var_kw


def listing(settings: dict[str, Setting]) -> str:
    """``name=default (rule), ...`` for error messages and ``invdesign list --settings``."""
    return ", ".join(map(str, settings.values())) or "(none)"


def problems_with(settings: dict[str, Any], valid: dict[str, Setting], var_kw: bool) -> dict[str, str]:
    """``{name: reason}`` for each unknown, ill-typed, out-of-range or missing setting."""
    out = {}
    for name, value in settings.items():
        if name not in valid:
            if not var_kw:
                out[name] = "unknown setting"
            continue
        why = valid[name].reason(value)
        if why:
            out[name] = why
    for name, s in valid.items():
        if s.required and name not in settings:
            out[name] = "missing: required"
    return out


def check(factory: Callable[..., Any], settings: dict[str, Any], what: str) -> None:
    """Raise ValueError naming every bad setting of ``settings`` for ``factory`` and the valid ones."""
    valid, var_kw = declared(factory)
    bad = problems_with(settings, valid, var_kw)
    if bad:
        reasons = "; ".join(f"{k}: {v}" for k, v in bad.items())
        raise ValueError(f"{what}: bad setting(s): {reasons}. Valid settings: {listing(valid)}")


def checked_settings(init: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an ``__init__`` (or a factory) to check the arguments given against the declaration."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        what = init.__qualname__.removesuffix(".__init__")
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # unknown names get the listing; anything else Python's own message
            valid, var_kw = declared(init)
            if not var_kw and set(kwargs) - set(valid):
                check(init, kwargs, what)
            return init(*args, **kwargs)
        given = dict(bound.arguments)
        given.pop("self", None)
        for p in signature.parameters.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                given.update(given.pop(p.name, {}))
        check(init, given, what)
        return init(*args, **kwargs)

    return wrapper


def settings_like(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a factory ``f(**settings) -> cls(...)`` so that it declares ``cls``'s settings."""

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        factory.__settings_of__ = cls  # type: ignore[attr-defined]
        factory.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]
        return factory

    return decorate
