"""Closed-form surface Green's function of a lead whose hopping is a multiple of the identity.

Square and cubic lattices, discretised effective-mass wires and their spinful copies have
``h01 = alpha 1`` (no overlap). With ``h00 = W diag(d) W^H`` (one ``eigh`` per lead, not per energy)
the lead is ``n`` decoupled chains, chain k with on-site ``d_k`` and hopping ``alpha``, so
    g(z) = W diag(g_k) W^H,   g_k = 2 / (zeta_k + sqrt(zeta_k - 2|alpha|) sqrt(zeta_k + 2|alpha|)),
    zeta_k = z - d_k,
the root of ``|alpha|^2 g^2 - zeta g + 1 = 0`` (the Dyson equation ``g = [zeta - alpha g conj(alpha)]^-1``
of one chain) with ``|alpha g| <= 1``. The principal square roots put the branch cut on the band
``[-2|alpha|, 2|alpha|]``: off it, the product is the analytic continuation of ``zeta`` from infinity
(the decaying solution in the upper half plane); on it, at ``zeta + i0``, it is ``i sqrt(4|alpha|^2 -
zeta^2)``, so ``Im g_k < 0`` (retarded). ``|zeta + sqrt(..)| >= 2|alpha|``: no cancellation. At a band
edge itself (``zeta_k = +-2|alpha|``) ``g_k = 1 / (+-|alpha|)``, the limit from either side.

The mirror lead ``(h00, h01^H)`` has the same ``g`` (it depends on ``|alpha|`` only). Conventions
(``A = z S - H``, orientation of ``h01``): ``invdesign.negf``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ChainLead:
    """``h00 = W diag(d) W^H`` and ``|alpha|`` of a lead with ``h01 = alpha 1``.

    ``vectors``: ``(..., n, n)`` complex128; ``values``: ``(..., n)`` float64 (eV); ``hop``: ``|alpha|``
    (eV, > 0). All on the lead's device.
    """

    vectors: torch.Tensor
    values: torch.Tensor
    hop: float


def chain_lead(h00: torch.Tensor, h01: torch.Tensor, has_overlap: bool) -> ChainLead | None:
    """The decoupled-chain form of the lead ``(h00, h01)``, or None when ``h01`` is not ``alpha 1``
    (``alpha != 0``, one ``alpha`` for the whole batch: ``h01`` 2-D) or the basis overlaps."""
    if has_overlap or h01.ndim != 2 or h01.shape[0] != h01.shape[1] or h01.shape[0] == 0:
        return None
    h01 = h01.detach()
    alpha = h01[0, 0]
    if alpha == 0 or not torch.equal(h01, alpha * torch.eye(h01.shape[0], dtype=h01.dtype, device=h01.device)):
        return None
    h = h00.detach().to(torch.complex128)
    values, vectors = torch.linalg.eigh((h + h.mH) / 2)  # Hermitian (checked by Lead); eigh reads one triangle
    return ChainLead(vectors, values, float(abs(alpha)))


def chain_surface_gf(chain: ChainLead, z: torch.Tensor) -> torch.Tensor:
    """Surface Green's function ``(..., nE, n, n)`` (1/eV) at energies ``z`` (nE,) with ``Im z >= 0``."""
    z = z.to(dtype=torch.complex128, device=chain.values.device)
    z = torch.complex(z.real, z.imag + 0.0)  # -0.0 -> +0.0: a real energy is z + i0, above the cut
    zeta = z[:, None] - chain.values[..., None, :].to(torch.complex128)  # (..., nE, n)
    two_t = 2.0 * chain.hop
    g_k = 2.0 / (zeta + torch.sqrt(zeta - two_t) * torch.sqrt(zeta + two_t))
    w = chain.vectors.unsqueeze(-3)  # (..., 1, n, n)
    return (w * g_k[..., None, :]) @ w.mH
