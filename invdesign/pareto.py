"""Dominance, hypervolume, reference points and knees of objective vectors, on BoTorch's utilities.

Every function takes objective vectors in the **minimised** convention (``Evaluation.objectives``; a
"max" objective enters as ``-f``), shape ``(n, m)``, as a numpy array, a tensor or nested lists. BoTorch
maximises, so the vectors are negated on the way in; dominance is ``botorch.utils.multi_objective.pareto
.is_non_dominated`` and the hypervolume ``botorch.utils.multi_objective.hypervolume.Hypervolume``. Rows
with NaN or inf (failed or infeasible points, as the caller marks them) are never on a front.

Only the rows that strictly dominate the reference point contribute to a hypervolume (those are the
ones BoTorch's algorithm assumes). BoTorch is imported inside the functions, so importing this module is
cheap (the report imports it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _matrix(Y: Any) -> np.ndarray:
    y = np.asarray(Y, dtype=float)
    if y.ndim == 1 and y.size == 0:
        return y.reshape(0, 0)
    if y.ndim != 2:
        raise ValueError(f"objective vectors must have shape (n, m); got {y.shape}")
    return y


def non_dominated(Y: Any) -> np.ndarray:
    """Boolean mask ``(n,)`` of the rows of ``Y`` (n, m) that no other finite row dominates; duplicates
    count once (the first). Non-finite rows are False."""
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    y = _matrix(Y)
    finite = np.isfinite(y).all(axis=1) if y.size else np.zeros(len(y), bool)
    out = np.zeros(len(y), dtype=bool)
    if finite.any():
        mask = is_non_dominated(-torch.as_tensor(y[finite], dtype=torch.float64), deduplicate=True)
        out[np.nonzero(finite)[0]] = mask.numpy()
    return out


def hypervolume(Y: Any, ref: Sequence[float]) -> float:
    """Hypervolume of the rows of ``Y`` (n, m) dominated region, bounded by ``ref`` (m,); 0 when no row
    strictly dominates ``ref``."""
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    y = _matrix(Y)
    r = np.asarray(ref, dtype=float)
    if not len(y):
        return 0.0
    if r.shape != (y.shape[1],) or not np.isfinite(r).all():
        raise ValueError(f"reference point must be finite with shape ({y.shape[1]},); got {r.tolist()}")
    inside = np.isfinite(y).all(axis=1) & (y < r).all(axis=1)
    if not inside.any():
        return 0.0
    front = y[inside][non_dominated(y[inside])]
    hv = Hypervolume(ref_point=-torch.as_tensor(r, dtype=torch.float64))
    return float(hv.compute(-torch.as_tensor(front, dtype=torch.float64)))


def hypervolume_trace(Y: Any, ref: Sequence[float]) -> np.ndarray:
    """Hypervolume of the first ``k + 1`` rows of ``Y`` (n, m), for each ``k``: shape ``(n,)``.

    Recomputed only where a row enters the front (is not dominated by the current front, and dominates
    ``ref``), so a long run costs about as many hypervolume calls as its front has changes.
    """
    y = _matrix(Y)
    r = np.asarray(ref, dtype=float)
    out = np.zeros(len(y))
    front = np.zeros((0, y.shape[1] if y.ndim == 2 else 0))
    current = 0.0
    for k, row in enumerate(y):
        if np.isfinite(row).all() and (row < r).all():
            dominated = front.size and bool(((front <= row).all(axis=1)).any())
            if not dominated:
                front = np.vstack([front[~(row <= front).all(axis=1)], row])
                # adding a point never lowers the exact hypervolume; a new front's box decomposition can
                # round 1 ulp lower than the old one's, which must not show as a loss
                current = max(current, hypervolume(front, r))
        out[k] = current
    return out


def reference_point(Y: Any, scale: float = 0.1) -> list[float] | None:
    """A reference point inferred from the front of ``Y`` (n, m): its nadir moved out by ``scale`` of its
    range (``botorch.utils.multi_objective.infer_reference_point``); None without any finite row."""
    import torch
    from botorch.utils.multi_objective import infer_reference_point

    y = _matrix(Y)
    mask = non_dominated(y) if len(y) else np.zeros(0, bool)
    if not mask.any():
        return None
    front = -torch.as_tensor(y[mask], dtype=torch.float64)
    return (-infer_reference_point(front, scale=scale)).tolist()


def knee_index(front: Any) -> int | None:
    """Index of the knee of a front ``(k, m)``: the point closest (Euclidean) to the ideal point after
    scaling every objective to [0, 1] over the front (ideal 0, nadir 1). None for an empty front."""
    f = _matrix(front)
    if not len(f):
        return None
    lo, hi = f.min(axis=0), f.max(axis=0)
    scaled = (f - lo) / np.where(hi > lo, hi - lo, 1.0)
    return int(np.argmin(np.sqrt((scaled**2).sum(axis=1))))


def extreme_indices(front: Any) -> list[int]:
    """For each objective, the index of the front point best in it (ties: the better in the others' sum)."""
    f = _matrix(front)
    if not len(f):
        return []
    out = []
    for j in range(f.shape[1]):
        others = f.sum(axis=1) - f[:, j]
        out.append(int(np.lexsort((others, f[:, j]))[0]))
    return out


def evaluation_matrix(evaluations: Sequence[Any], m: int) -> np.ndarray:
    """Objective vectors ``(n, m)`` of Evaluations (or their dicts): NaN rows for failed, infeasible or
    non-multi-objective ones, so that only feasible points can reach a front."""
    rows = []
    for e in evaluations:
        get = e.get if isinstance(e, dict) else lambda k, e=e: getattr(e, k, None)
        vec = get("objectives")
        ok = bool(get("feasible")) and not get("failed") and vec is not None and len(vec) == m
        rows.append([float(v) for v in vec] if ok else [math.nan] * m)
    return np.array(rows, dtype=float).reshape(len(rows), m)


def pareto_set(evaluations: Sequence[Any], m: int) -> list[Any]:
    """The feasible, non-dominated evaluations among ``evaluations`` (duplicates once), in their order."""
    mask = non_dominated(evaluation_matrix(evaluations, m))
    return [e for e, keep in zip(evaluations, mask) if keep]
