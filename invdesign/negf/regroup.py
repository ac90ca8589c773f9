"""The same device with consecutive slices merged into larger ones (an exact repartition of one matrix).

Why: recursive Green's functions eliminate slice by slice without pivoting across slices. A slice can
have a (near-)singular Schur complement although the whole matrix ``E S - H - Sigma`` is well
conditioned: an atom with no bond inside its slice and none to the left, at E equal to its on-site
energy (seen in armchair ribbons sliced 3, 3, 2, 2 atoms per cell: T = 4.04 for an exact 1.0). Merged
slices pivot inside the larger block, so ``invdesign.negf.solution`` re-solves such energies on a
merged device (``rgf`` marks them), exactly, before it falls back to shifting the energy.
"""

from __future__ import annotations

import dataclasses

import torch

from invdesign.negf.system import Device, dagger, repartitioned


def _assemble(blocks: list[torch.Tensor], couplings: list[torch.Tensor], idx: list[int]) -> torch.Tensor:
    """The dense block of slices ``idx`` (consecutive), ``(..., sum b, sum b)``."""
    sizes = [blocks[i].shape[-1] for i in idx]
    parts = [blocks[i] for i in idx] + [couplings[i] for i in idx[:-1]]
    batch = torch.broadcast_shapes(*(p.shape[:-2] for p in parts))
    dtype = parts[0].dtype
    for p in parts[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    off = [0]
    for s in sizes:
        off.append(off[-1] + s)
    m = torch.zeros(*batch, off[-1], off[-1], dtype=dtype, device=parts[0].device)
    for j, i in enumerate(idx):
        m[..., off[j]:off[j + 1], off[j]:off[j + 1]] = blocks[i]
        if j + 1 < len(idx):
            m[..., off[j]:off[j + 1], off[j + 1]:off[j + 2]] = couplings[i]
            m[..., off[j + 1]:off[j + 2], off[j]:off[j + 1]] = dagger(couplings[i])
    return m


def _link(blocks, couplings, a: list[int], b: list[int]) -> torch.Tensor:
    """Coupling from merged slice ``a`` to ``b``: only their facing original slices touch."""
    c = couplings[a[-1]]
    rows, cols = sum(blocks[i].shape[-1] for i in a), sum(blocks[i].shape[-1] for i in b)
    m = torch.zeros(*c.shape[:-2], rows, cols, dtype=c.dtype, device=c.device)
    m[..., rows - c.shape[-2]:, : c.shape[-1]] = c
    return m


def _pad(c: torch.Tensor | None, size: int, at_start: bool) -> torch.Tensor | None:
    """A lead coupling onto an edge slice that grew to ``size`` orbitals (the old edge at its start/end)."""
    if c is None:
        return None
    zeros = c.new_zeros(*c.shape[:-1], size - c.shape[-1])
    return torch.cat([c, zeros] if at_start else [zeros, c], dim=-1)


def pad_self_energy(s: torch.Tensor, size: int, at_start: bool) -> torch.Tensor:
    """A self-energy ``(..., b, b)`` on an edge slice that grew to ``size`` orbitals (the old edge at its
    start/end, as in :func:`merged`); zero elsewhere."""
    b = s.shape[-1]
    if b == size:
        return s
    out = s.new_zeros(*s.shape[:-2], size, size)
    if at_start:
        out[..., :b, :b] = s
    else:
        out[..., size - b:, size - b:] = s
    return out


def merged(device: Device, factor: int) -> Device:
    """``device`` with every ``factor`` consecutive slices merged into one (the last group may be shorter).

    The matrix, the leads and the orbital order are unchanged, so every observable is the same (per-orbital
    outputs come in the same order); only the partition into slices differs.
    """
    n = len(device.blocks)
    groups = [list(range(i, min(i + factor, n))) for i in range(0, n, factor)]
    blocks = [_assemble(device.blocks, device.couplings, g) for g in groups]
    couplings = [_link(device.blocks, device.couplings, a, b) for a, b in zip(groups[:-1], groups[1:])]
    overlap = None
    if device.overlap is not None:
        sb, sc = (list(x) for x in device.overlap)
        overlap = ([_assemble(sb, sc, g) for g in groups], [_link(sb, sc, a, b) for a, b in zip(groups[:-1], groups[1:])])
    first, last = blocks[0].shape[-1], blocks[-1].shape[-1]
    leads = []
    for lead, edge, size, at_start in ((device.left, device.slice_sizes[0], first, True),
                                       (device.right, device.slice_sizes[-1], last, False)):
        c, sc_lead = lead.coupling_to(edge)
        leads.append(dataclasses.replace(lead, coupling=_pad(c, size, at_start), s_coupling=_pad(sc_lead, size, at_start)))
    return repartitioned(device, blocks=blocks, couplings=couplings, left=leads[0], right=leads[1], overlap=overlap)
