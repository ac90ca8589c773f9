"""Reuse of lead surface Green's functions across evaluations, keyed by the values of the inputs.

An inverse-design run solves the same pristine leads on the same energy grid at every evaluation
(every doping problem, most tight-binding designs). A surface Green's function depends only on the
values of the lead matrices, the energies, the solver and the dtype, so it is memoised on exactly
those values: a key matches only when every tensor is equal element by element (``torch.equal``
after a fingerprint), so an entry can never be stale. Only the *values* are cached; gradients still
come from the implicit backward of ``invdesign.negf.leads`` at the cached fixed point, so a lead that
depends on a parameter stays differentiable (and is simply re-solved when its values change).

The memo is bounded (least recently used entries go first; ``configure(max_bytes=0)`` turns it off)
and private to the process. ``info()`` reports hits and misses, ``clear()`` empties it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Sequence

import torch

DEFAULT_MAX_BYTES = 512 * 2**20

_entries: OrderedDict[tuple, tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], int]] = OrderedDict()
_state = {"max_bytes": DEFAULT_MAX_BYTES, "bytes": 0, "hits": 0, "misses": 0}


def _fingerprint(t: torch.Tensor) -> tuple:
    t = t.detach()
    head = (tuple(t.shape), str(t.dtype), str(t.device))
    if t.device.type == "cpu":
        raw = t.resolve_conj().resolve_neg().contiguous().reshape(-1).view(torch.uint8)
        return head + (hashlib.blake2b(raw.numpy().tobytes(), digest_size=16).hexdigest(),)
    # On an accelerator: two weighted sums (two scalars cross to the host); torch.equal decides.
    x = torch.view_as_real(t) if t.is_complex() else t
    x = x.to(torch.float64).reshape(-1)
    w = torch.arange(1, x.numel() + 1, dtype=torch.float64, device=x.device).remainder_(9973.0)
    return head + (float(x.sum()), float((x * w).sum()))


def _key(tag: tuple, tensors: Sequence[torch.Tensor | None]) -> tuple:
    return tag + tuple(None if t is None else _fingerprint(t) for t in tensors)


def _same(a: Sequence[torch.Tensor | None], b: Sequence[torch.Tensor | None]) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y.detach()))
               for x, y in zip(a, b))


def lookup(tag: tuple, tensors: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, ...] | None:
    """The stored values for ``tag`` and these input values, or None (counted as a miss)."""
    if _state["max_bytes"] <= 0:
        return None
    key = _key(tag, tensors)
    entry = _entries.get(key)
    if entry is not None and _same(entry[0], tensors):
        _entries.move_to_end(key)
        _state["hits"] += 1
        return entry[1]
    _state["misses"] += 1
    return None


def store(tag: tuple, tensors: Sequence[torch.Tensor | None], values: Sequence[torch.Tensor]) -> None:
    """Remember ``values`` (detached copies) for ``tag`` and these input values."""
    if _state["max_bytes"] <= 0:
        return
    keys = tuple(None if t is None else t.detach().clone() for t in tensors)
    vals = tuple(v.detach().clone() for v in values)
    nbytes = sum(t.element_size() * t.numel() for t in keys + vals if t is not None)
    if nbytes > _state["max_bytes"]:
        return
    key = _key(tag, tensors)
    if key in _entries:
        _state["bytes"] -= _entries.pop(key)[2]
    _entries[key] = (keys, vals, nbytes)
    _state["bytes"] += nbytes
    while _state["bytes"] > _state["max_bytes"]:
        _state["bytes"] -= _entries.popitem(last=False)[1][2]


def clear() -> None:
    """Forget every entry and reset the counters."""
    _entries.clear()
    _state.update(bytes=0, hits=0, misses=0)


def configure(max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Bound the memo to ``max_bytes`` (0 disables it); entries beyond the bound are dropped now."""
    _state["max_bytes"] = int(max_bytes)
    while _entries and _state["bytes"] > _state["max_bytes"]:
        _state["bytes"] -= _entries.popitem(last=False)[1][2]


def info() -> dict:
    """``{"hits", "misses", "entries", "bytes", "max_bytes"}`` since the last :func:`clear`."""
    return {"hits": _state["hits"], "misses": _state["misses"], "entries": len(_entries),
            "bytes": _state["bytes"], "max_bytes": _state["max_bytes"]}
