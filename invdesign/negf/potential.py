"""An electrostatic potential energy added to a ``Device`` and its leads (conventions: ``invdesign.negf``).

A potential energy ``U`` (eV, one value per orbital) enters the Hamiltonian as
    ``H_ij -> H_ij + (U_i + U_j) / 2 * S_ij``,
which is ``H_ii + U_i`` for an orthogonal basis and keeps ``H`` Hermitian with an overlap. A lead gets
one rigid shift ``u`` (eV): ``h00 + u s00``, ``h01 + u s01``; its coupling to the device edge slice
gets ``(u + U_edge) / 2`` times the coupling overlap. Per-orbital vectors are in the device's *slice
order* (blocks concatenated), whatever ``Device.orbital_order`` says.
"""

from __future__ import annotations

import dataclasses

import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.negf.system import Device, Lead, dagger


def _as_shift(u, name: str, like: torch.Tensor) -> torch.Tensor:
    u = torch.as_tensor(u, dtype=torch.float64)
    if not torch.isfinite(u.detach()).all():
        raise NEGFInputError(f"{name} contains NaN or infinite values")
    return u.to(like.device)


def _eye_like(m: torch.Tensor) -> torch.Tensor:
    return torch.eye(m.shape[-1], dtype=torch.float64, device=m.device)


def shift_lead(lead: Lead, u, edge_potential: torch.Tensor | None = None) -> Lead:
    """The lead with its potential energy raised by ``u`` (eV, a number or 0-d tensor).

    ``edge_potential`` (shape ``(..., m)``, eV) is the potential on the device edge slice the lead
    touches; with an overlap it enters the coupling as ``(u + U_edge)/2 * s_coupling``. Without an
    overlap the coupling is unchanged.
    """
    u = _as_shift(u, "lead potential", lead.h00)
    if u.ndim != 0:
        raise NEGFInputError(f"a lead takes one potential shift; got shape {tuple(u.shape)}")
    if not lead.has_overlap:
        return dataclasses.replace(lead, h00=lead.h00 + u * _eye_like(lead.h00))
    h00 = lead.h00 + u * lead.s00
    h01 = lead.h01 + u * lead.s01
    if lead.coupling is None:  # default coupling h01^dagger: the edge slice is one more lead cell
        c, sc = dagger(lead.h01), dagger(lead.s01)
    else:
        c, sc = lead.coupling, lead.s_coupling
    edge = u if edge_potential is None else edge_potential
    edge = _as_shift(edge, "edge potential", lead.h00)
    weight = (u + edge) / 2  # (...) or (..., m): broadcast over the columns (edge orbitals)
    coupling = c + (weight.unsqueeze(-2) if weight.ndim else weight) * sc
    return dataclasses.replace(lead, h00=h00, h01=h01, coupling=coupling, s_coupling=sc)


def add_potential(device: Device, potential, left=None, right=None) -> Device:
    """``device`` with the potential energy ``potential`` (eV) on its orbitals and shifted leads.

    Args:
        device: the device (its ``orbital_order`` is kept; ``potential`` is in slice order).
        potential: ``(..., n_orbitals)`` tensor in slice order (eV); may require grad.
        left, right: rigid shifts of the leads (eV, numbers or 0-d tensors); ``None`` leaves a lead
            as it is (then, with an overlap, the coupling uses U_edge on both sides of the bond).
    Returns a new ``Device``; gradients flow to ``potential``, ``left``, ``right`` and the device.
    """
    sizes = device.slice_sizes
    u = _as_shift(potential, "potential", device.blocks[0])
    if u.shape[-1] != sum(sizes):
        raise NEGFInputError(
            f"potential has {u.shape[-1]} entries but the device has {sum(sizes)} orbitals (slice order)"
        )
    parts = list(torch.split(u, sizes, dim=-1))
    if device.overlap is None:
        blocks = [b + torch.diag_embed(p).to(b.dtype) for b, p in zip(device.blocks, parts)]
        couplings = list(device.couplings)
        overlap = None
    else:
        s_blocks, s_couplings = device.overlap
        blocks = [b + ((p.unsqueeze(-1) + p.unsqueeze(-2)) / 2).to(s.dtype) * s
                  for b, s, p in zip(device.blocks, s_blocks, parts)]
        couplings = [c + ((parts[i].unsqueeze(-1) + parts[i + 1].unsqueeze(-2)) / 2).to(s.dtype) * s
                     for i, (c, s) in enumerate(zip(device.couplings, s_couplings))]
        overlap = device.overlap
    new_left = device.left if left is None else shift_lead(device.left, left, parts[0])
    new_right = device.right if right is None else shift_lead(device.right, right, parts[-1])
    if device.overlap is not None:
        # keep the coupling overlap explicit so the lead-device bond sees (u + U_edge)/2
        if left is None:
            new_left = _edge_only(device.left, parts[0])
        if right is None:
            new_right = _edge_only(device.right, parts[-1])
    return dataclasses.replace(device, blocks=blocks, couplings=couplings, left=new_left,
                               right=new_right, overlap=overlap)


def _edge_only(lead: Lead, edge: torch.Tensor) -> Lead:
    """Overlapping lead left unshifted: its coupling still gets ``U_edge / 2 * s_coupling``."""
    if lead.coupling is None:
        c, sc = dagger(lead.h01), dagger(lead.s01)
    else:
        c, sc = lead.coupling, lead.s_coupling
    return dataclasses.replace(lead, coupling=c + (edge / 2).unsqueeze(-2).to(sc.dtype) * sc, s_coupling=sc)


def bulk_device(lead: Lead) -> Device:
    """One cell of the lead's crystal between the lead and its mirror image: an infinite perfect crystal.

    The device slice is a lead cell; the left lead is ``lead`` (default coupling, i.e. the slice is
    cell -1), the right lead is the mirror ``Lead(h00, h01^dagger)``. Per-orbital observables of this
    device are those of the bulk lead (used for contact neutrality).
    """
    near = dataclasses.replace(lead, coupling=None, s_coupling=None)
    if lead.has_overlap:
        far = Lead(lead.h00, dagger(lead.h01), s00=lead.s00, s01=dagger(lead.s01))
        overlap = ([lead.s00], [])
    else:
        far = Lead(lead.h00, dagger(lead.h01))
        overlap = None
    return Device([lead.h00], [], near, far, overlap)
