"""Floats in strict JSON, written once (history records, checkpoints, optimizer states).

Strict JSON has no NaN or infinity: those travel as the strings ``"nan"``, ``"inf"``, ``"-inf"``, which
``float()`` reads back exactly; finite floats stay numbers (JSON keeps Python floats exact).
"""

from __future__ import annotations

import math


def encode_float(value: float) -> float | str:
    """``value`` itself when finite, else ``"nan"``, ``"inf"`` or ``"-inf"``."""
    return value if math.isfinite(value) else str(value)


def decode_float(value: float | str) -> float:
    """Inverse of ``encode_float``."""
    return float(value)
