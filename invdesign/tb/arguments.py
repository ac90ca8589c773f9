"""Argument checks of the structure and cell builders: one error type, messages that name the argument.

Builders check before any work, so a wrong width or chirality is reported as such, not as an empty
structure or an index error deep inside the neighbour search.
"""

from __future__ import annotations

import math
import numbers

import torch

from invdesign.negf.errors import NEGFInputError


class TBInputError(NEGFInputError):
    """An argument of a ``invdesign.tb`` builder is malformed; the message names it and the allowed range.

    A ``ValueError`` (and an engine ``NEGFInputError``: the builders make the engine's inputs).
    """


def count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or TBInputError unless it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TBInputError(f"{name} must be an integer >= {minimum}; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise TBInputError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def real(name: str, value, unit: str, positive: bool = False) -> float:
    """``value`` as a float, or TBInputError unless it is a finite real number (``> 0`` if ``positive``).

    A one-element real tensor is accepted (its value is used: builders place atoms, they do not differentiate).
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = float(value.detach())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TBInputError(f"{name} must be a real number ({unit}); got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        raise TBInputError(f"{name} must be a finite{' positive' if positive else ''} number ({unit}); got {value}")
    return float(value)


def species_label(name: str, value) -> str:
    """``value`` unless it is not a non-empty string (a species name of the model)."""
    if not isinstance(value, str) or not value:
        raise TBInputError(f"{name} must be a non-empty species name (str); got {type(value).__name__} {value!r}")
    return value
