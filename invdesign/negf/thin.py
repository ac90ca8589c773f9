"""The same device on thinner slices: each slice split into the breadth-first layers of its own bonds.

Why: a recursive Green's function sweep factorises every slice at every energy. A unit cell handed
over as one slice is often several layers thick (a (10,0) nanotube cell: four rings of 10 atoms; an
armchair ribbon cell: four columns) and only its first and last layer touch the neighbouring cells.
Split into its layers, the same matrix needs four small factorisations per cell instead of one large
one; whether that pays against the per-slice overhead is the cost model below (measured, not b^3).

This is an exact repartition of one matrix, like ``invdesign.negf.regroup.merged`` (which undoes it
where a thin slice's Schur complement is ill conditioned): every observable is the same, per-orbital
outputs come back in the input order (``Device.orbital_order``). Slice i is split from the orbitals
that slice i-1 (or the left lead) couples to; layers are merged from the first one holding an orbital
that slice i+1 (or the right lead) couples to, so layer k couples only to layers k +- 1.

Bonds are read off the values (every batch member, overlap included): a zero entry is no bond. A block
that carries a gradient is split only when ``Device.structural_zeros`` says its zeros stay zero; a zero
that a parameter can make nonzero has a gradient, and the split would drop it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from invdesign.negf.rgf import _distinct
from invdesign.negf.system import Device, _bfs_slices, repartitioned


@dataclasses.dataclass(frozen=True)
class Thinning:
    """``device`` on thin slices, and where its edge slices sit in the original edge slices:
    ``first``/``last`` index the orbitals of the original first/last slice that form the new ones
    (a lead self-energy on an original edge slice restricts to them exactly: it is zero elsewhere)."""

    device: Device
    first: torch.Tensor
    last: torch.Tensor


def _bonds(m: torch.Tensor) -> np.ndarray:
    """Structurally nonzero entries of a matrix over all its batch members, bool ``(rows, cols)``."""
    nz = _distinct(m) != 0
    return nz.reshape(-1, *nz.shape[-2:]).any(0).cpu().numpy()


def _coupling_bonds(mats, structural_zeros: bool) -> np.ndarray:
    """Bonds of a coupling (with its overlap, if any); all entries when one carries a gradient whose
    zeros may become bonds."""
    mats = [m for m in mats if m is not None]
    if not all(_splittable(m, structural_zeros) for m in mats):
        return np.ones(mats[0].shape[-2:], dtype=bool)
    bond = _bonds(mats[0])
    for m in mats[1:]:
        bond = bond | _bonds(m)
    return bond


def _lead_columns(lead, edge: int, structural_zeros: bool) -> np.ndarray:
    return np.nonzero(_coupling_bonds(lead.coupling_to(edge), structural_zeros).any(0))[0]


def _splittable(m: torch.Tensor, structural_zeros: bool) -> bool:
    return structural_zeros or not m.requires_grad


# Cost model of one slice in a sweep, per batch member (energies x parameter sets): ``b^2`` units of
# ~0.03 us (batched small LAPACK calls scale so, not as b^3, below b ~ 40: inverses of 6, 14, 24, 40
# orbitals took 0.8, 5.0, 17, 42 us per matrix; 2-core Xeon, complex128), plus a per-slice overhead of
# torch operations (~80 us per sweep) shared by the members:
SLICE_OVERHEAD = 2.7e3
# ... larger while autograd records (a block carries a gradient): every operation becomes a graph node
# that a backward pass pays for again. Chosen on measurements: forward + gradient of a 7-AGNR (14-atom
# cells, 400 energies) is faster on whole cells, of a (10,0) tube (40-atom cells, 100 energies) on rings.
SLICE_OVERHEAD_GRAD = 4e4


def _grouped(parts: list[np.ndarray], members: int, extra: float | None = None) -> list[np.ndarray]:
    """Consecutive layers grouped into slices at the least estimated sweep cost
    ``sum_slices (b^2 + extra)``, ``extra = SLICE_OVERHEAD / members`` by default (one layer per slice is
    not always cheapest: four single-orbital layers cost more in per-slice overhead than one 4 x 4 slice)."""
    sizes = [len(p) for p in parts]
    extra = SLICE_OVERHEAD / max(members, 1) if extra is None else extra
    best = [0.0] + [float("inf")] * len(parts)  # best[k]: the first k layers
    cut = [0] * (len(parts) + 1)
    for k in range(1, len(parts) + 1):
        for j in range(k):
            cost = best[j] + sum(sizes[j:k]) ** 2 + extra
            if cost < best[k]:
                best[k], cut[k] = cost, j
    groups, k = [], len(parts)
    while k > 0:
        groups.append(np.concatenate(parts[cut[k]:k]))
        k = cut[k]
    return groups[::-1]


_SPLITS: dict = {}  # (bonds of a slice, orbitals touched on either side, extra) -> its thin slices
SPLIT_MEMO = 4096


def thin_layers(device: Device, members: int = 1) -> list[list[np.ndarray]] | None:
    """For each slice, the orbital indices (into that slice) of its thin slices; None if none splits.

    ``members``: batch members per sweep (energies x parameter sets), for the cost model of
    :func:`_grouped`."""
    blocks, couplings = list(device.blocks), list(device.couplings)
    s_blocks, s_couplings = (None, None) if device.overlap is None else (list(device.overlap[0]), list(device.overlap[1]))
    n = len(blocks)
    fixed = device.structural_zeros
    graph = torch.is_grad_enabled() and any(t.requires_grad for t in blocks + couplings)
    extra = (SLICE_OVERHEAD_GRAD if graph else SLICE_OVERHEAD) / max(members, 1)
    # two slices cost at least 2 extra + b^2 / 2: below that size no split can pay
    if not any(b.shape[-1] ** 2 * 0.5 > extra for b in blocks):
        return None
    memo: dict = {}  # bonds per coupling tensor (devices repeat one coupling along the chain)

    def coupling(i: int) -> np.ndarray:
        mats = [couplings[i], None if s_couplings is None else s_couplings[i]]
        key = tuple(id(m) for m in mats)
        if key not in memo:
            memo[key] = _coupling_bonds(mats, fixed)
        return memo[key]

    def touching(i: int) -> tuple[np.ndarray, np.ndarray]:
        """Orbitals of slice i coupled to slice i-1 (or the left lead) and to slice i+1 (or the right)."""
        into = (_lead_columns(device.left, blocks[0].shape[-1], fixed) if i == 0
                else np.nonzero(coupling(i - 1).any(0))[0])
        out = (_lead_columns(device.right, blocks[-1].shape[-1], fixed) if i == n - 1
               else np.nonzero(coupling(i).any(1))[0])
        return into, out

    layers, split = [], False
    for i, b in enumerate(blocks):
        size = b.shape[-1]
        whole = [np.arange(size)]
        if (size ** 2 * 0.5 <= extra or not _splittable(b, fixed)
                or (s_blocks is not None and not _splittable(s_blocks[i], fixed))):
            layers.append(whole)
            continue
        into, out = touching(i)
        if len(into) == 0 or len(out) == 0 or np.intersect1d(into, out).size:
            layers.append(whole)
            continue
        local = _bonds(b)
        if s_blocks is not None:
            local = local | _bonds(s_blocks[i])
        key = (local.shape, np.packbits(local).tobytes(), into.tobytes(), out.tobytes(), extra)
        parts = _SPLITS.get(key)
        if parts is None:  # devices repeat one cell: most slices have the bonds of one already split
            parts = _grouped(_bfs_slices(local | local.T, [int(k) for k in into], [int(k) for k in out]),
                             members, extra)
            if len(_SPLITS) >= SPLIT_MEMO:
                _SPLITS.clear()
            _SPLITS[key] = parts
        split |= len(parts) > 1
        layers.append(parts)
    return layers if split else None


def _cut(m: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    return m[..., torch.as_tensor(rows, device=m.device), :][..., :, torch.as_tensor(cols, device=m.device)]


def _chain(blocks, couplings, layers):
    """Blocks and couplings of the thin chain: layer blocks, links inside a slice, links across.

    A split slice is permuted into layer order once (one gather of rows and one of columns); its
    layer blocks and inner links are then views. Whole slices and the links between them stay the
    very tensors of the device (their coupling patterns stay memoised, ``rgf.coupling_patterns``)."""
    new_blocks, new_couplings = [], []
    whole = [len(parts) == 1 and np.array_equal(parts[0], np.arange(len(parts[0]))) for parts in layers]
    for i, parts in enumerate(layers):
        if whole[i]:
            new_blocks.append(blocks[i])
        else:
            order = np.concatenate(parts)
            b = _cut(blocks[i], order, order)
            ends = np.cumsum([0] + [len(p) for p in parts])
            for k in range(len(parts)):
                here = slice(int(ends[k]), int(ends[k + 1]))
                new_blocks.append(b[..., here, here])
                if k + 1 < len(parts):
                    new_couplings.append(b[..., here, int(ends[k + 1]):int(ends[k + 2])])
        if i + 1 < len(layers):
            c = couplings[i]
            new_couplings.append(c if whole[i] and whole[i + 1] else _cut(c, parts[-1], layers[i + 1][0]))
    return new_blocks, new_couplings


def thinned(device: Device, members: int = 1) -> Thinning | None:
    """``device`` on the thin slices of :func:`thin_layers`, or None when no slice splits."""
    layers = thin_layers(device, members)
    if layers is None:
        return None
    blocks, couplings = _chain(device.blocks, device.couplings, layers)
    overlap = None
    if device.overlap is not None:
        overlap = _chain(device.overlap[0], device.overlap[1], layers)
    first, last = layers[0][0], layers[-1][-1]
    leads = []
    for lead, edge, cols in ((device.left, device.slice_sizes[0], first), (device.right, device.slice_sizes[-1], last)):
        c, sc = lead.coupling_to(edge)
        idx = torch.as_tensor(cols, device=c.device)
        leads.append(dataclasses.replace(lead, coupling=c[..., idx], s_coupling=None if sc is None else sc[..., idx]))
    offsets = np.cumsum([0] + device.slice_sizes[:-1])
    perm = np.concatenate([offsets[i] + p for i, parts in enumerate(layers) for p in parts])
    order = perm if device.orbital_order is None else np.asarray(device.orbital_order)[perm]
    thin = repartitioned(device, blocks=blocks, couplings=couplings, left=leads[0], right=leads[1],
                               overlap=overlap, orbital_order=order)
    dev = device.blocks[0].device
    return Thinning(thin, torch.as_tensor(first, device=dev), torch.as_tensor(last, device=dev))
