"""Concrete inverse-design problems, registered by name for campaigns and ``invdesign list``.

``PROBLEMS`` is the framework's registry (``invdesign.registry.PROBLEMS``, the same dict): it maps a
name to a factory, a callable taking keyword settings (every one with a module-level default, allowed
ranges declared with ``typing.Annotated`` and ``invdesign.settings``; a factory that forwards
``**settings`` to its class declares the class's with ``@settings_like``) and returning an
``invdesign.problem.Problem``. Building a problem must be cheap (no simulation); the factory's
docstring (first line) or the problem's ``description`` is what ``invdesign list`` prints.

The framework never imports this package by name: ``pyproject.toml`` declares it under the entry-point
group ``invdesign.problems``, which the registry loads when a name it does not know yet is looked up,
or when every problem is listed. The campaign specs (``*.toml``) beside these modules are found the
same way (``invdesign run default``).

Adding a problem: create ``problems/<name>.py`` with the factory and one line registering it::

    from invdesign.registry import register

    @register("ribbon/gap")
    def ribbon_gap(width: int = WIDTH, ...) -> Problem:
        \"\"\"Open a gap in a 7-AGNR by edge doping (one line for `invdesign list`).\"\"\"
        ...

(``from problems import PROBLEMS; PROBLEMS["ribbon/gap"] = ribbon_gap`` does the same.)

Every module of this package is imported below (sorted by name), so the file is all there is to it.
A problem may also define ``plot_design(params: dict, out_dir) -> list[paths]``: the report calls it
on the best design of each run group (``invdesign report``).
"""

from __future__ import annotations

import importlib
import pkgutil

import invdesign.testing.toy_problems  # noqa: F401  (registers toy/*: listed first, as before)
from invdesign.registry import PROBLEMS

__all__ = ["PROBLEMS"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
