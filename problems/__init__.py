"""Concrete inverse-design problems, registered by name for campaigns and ``invdesign list``.

``PROBLEMS`` maps a name to a factory: a callable taking keyword settings (every one with a
module-level default, allowed ranges declared with ``typing.Annotated`` and ``invdesign.settings``;
a factory that forwards ``**settings`` to its class declares the class's with ``@settings_like``)
and returning a ``invdesign.problem.Problem``. Building a problem must be cheap
(no simulation); the factory's docstring (first line) or the problem's ``description`` is what
``invdesign list`` prints.

Adding a problem: create ``problems/<name>.py`` with the factory and one line registering it::

    from problems import PROBLEMS

    def ribbon_gap(width: int = WIDTH, ...) -> Problem:
        \"\"\"Open a gap in a 7-AGNR by edge doping (one line for `invdesign list`).\"\"\"
        ...

    PROBLEMS["ribbon/gap"] = ribbon_gap

Every module of this package is imported below (sorted by name), so the file is all there is to it.
A problem may also define ``plot_design(params: dict, out_dir) -> list[paths]``: the report calls it
on the best design of each run group (``invdesign report``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from invdesign.testing.toy_problems import TOY_PROBLEMS

PROBLEMS: dict[str, Callable[..., Any]] = {f"toy/{name}": factory for name, factory in TOY_PROBLEMS.items()}

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
