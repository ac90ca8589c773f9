"""A Wannier model -> principal layers along a transport direction -> ``Device`` and ``Lead``s.

Transport runs along lattice vector ``a_d`` (``direction = d``). For a transverse Bloch vector ``k``
(lattice coordinates, ``k[d] = 0``) the crystal is a 1D chain of cells with layer Hamiltonians
``H_j(k) = sum_{R: R_d = j} exp(2 pi i k.R) h(R)`` (cell gauge, as in ``WannierModel``). If hoppings reach
``m`` cells (``|j| <= m``), a principal layer is ``m`` cells, so lead cells couple to the next only
(the same enlargement ``invdesign.tb.transport`` makes for atoms). The device is ``cells`` cells
``0..cells-1``; the left lead's cell 0 is cells ``-m..-1``, the right lead's cells ``cells..cells+m-1``
(lead conventions: ``invdesign.negf``). Each transverse k is one batch member of one solve; the
k-averaged transmission is per transverse cell (``transmission``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from invdesign.negf import Device, Lead, solve
from invdesign.tb.wannier90 import WannierModel


@dataclasses.dataclass(frozen=True)
class WannierTransport:
    """A two-terminal device built from a Wannier model.

    ``device`` (batched over transverse k when ``k_transverse`` was given: leading dim K) is ready for
    ``invdesign.negf.solve``. ``weights`` (K,) sum to 1. Per-orbital arrays follow the device's slice
    order: ``orbital_cell`` (cell index 0..cells-1), ``orbital_wannier`` (Wannier function index) and
    ``orbital_positions_nm`` (n_orb, 3; centre + cell * a_d, None without centres or lattice).
    """

    device: Device
    model: WannierModel
    direction: int
    cells: int
    layer_cells: int
    k_transverse: torch.Tensor | None
    weights: torch.Tensor | None
    orbital_cell: np.ndarray
    orbital_wannier: np.ndarray
    orbital_positions_nm: torch.Tensor | None

    def transmission(self, energies: torch.Tensor) -> torch.Tensor:
        """T(E) (nE,), averaged over the transverse k with ``weights`` (per transverse cell)."""
        return k_average(solve(self.device, torch.as_tensor(energies, dtype=torch.float64)).transmission(),
                         self.weights)


def k_average(x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``sum_k w_k x[k]`` over the leading (k) dim of ``x`` (K, ...); ``x`` itself when unbatched."""
    if weights is None:
        return x
    return torch.einsum("k,k...->...", weights.to(x.dtype), x)


def k_grid(counts: Sequence[int], direction: int) -> torch.Tensor:
    """Monkhorst-Pack-free uniform grid ``j / n`` (Gamma included) over the two transverse lattice
    directions: ``counts`` (n1, n2) for the directions other than ``direction`` in order; (K, 3)."""
    others = [i for i in range(3) if i != direction]
    if len(counts) != 2 or min(counts) < 1:
        raise ValueError(f"k_grid needs two positive counts (for lattice directions {others}); got {counts}")
    axes = [torch.arange(n, dtype=torch.float64) / n for n in counts]
    g = torch.cartesian_prod(*axes).reshape(-1, 2)
    k = torch.zeros(g.shape[0], 3, dtype=torch.float64)
    k[:, others] = g
    return k


def layer_hamiltonians(model: WannierModel, direction: int, k_transverse: torch.Tensor | None = None
                       ) -> dict[int, torch.Tensor]:
    """``{j: H_j}`` with ``H_j = <cell 0|H|cell j>`` along ``a_direction`` (n, n), or (K, n, n) per k.

    Translations with transverse components are summed with phases ``exp(2 pi i k.R)`` (all of them
    at k = 0 when ``k_transverse`` is None).
    """
    if direction not in (0, 1, 2):
        raise ValueError(f"direction must be 0, 1 or 2 (a lattice vector); got {direction}")
    R = torch.as_tensor(model.R, dtype=torch.float64)
    if k_transverse is None:
        phase = torch.ones(1, len(R), dtype=torch.complex128)
    else:
        k = torch.as_tensor(k_transverse, dtype=torch.float64).reshape(-1, 3)
        if float(k[:, direction].abs().max()) > 0:
            raise ValueError(f"k_transverse[:, {direction}] must be 0: it is the transport direction")
        phase = torch.exp(2j * torch.pi * (k @ R.T))  # (K, nR)
    out: dict[int, torch.Tensor] = {}
    for j in sorted(set(model.R[:, direction].tolist())):
        rows = torch.as_tensor(np.nonzero(model.R[:, direction] == j)[0])
        block = torch.einsum("kr,rmn->kmn", phase[:, rows], model.h[rows])
        out[j] = block[0] if k_transverse is None else block
    return out


def _reach(layers: dict[int, torch.Tensor]) -> int:
    """Largest |j| with a (structurally) non-zero layer block."""
    present = [abs(j) for j, b in layers.items() if j and bool(b.detach().abs().amax() > 0)]
    return max(present, default=1)


def _toeplitz(layers: dict[int, torch.Tensor], rows: Sequence[int], cols: Sequence[int], like: torch.Tensor
              ) -> torch.Tensor:
    """Block matrix ``[<cell r|H|cell c>]_{r in rows, c in cols} = [H_{c - r}]`` (zero beyond the reach)."""
    zero = torch.zeros_like(like)
    return torch.cat([torch.cat([layers.get(c - r, zero) for c in cols], dim=-1) for r in rows], dim=-2)


def wannier_two_terminal(
    model: WannierModel,
    cells: int,
    direction: int = 0,
    k_transverse: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    potential_ev: torch.Tensor | None = None,
    device_model: WannierModel | None = None,
) -> WannierTransport:
    """Device of ``cells`` cells along lattice vector ``direction`` between semi-infinite leads of ``model``.

    Args:
        model: the lead crystal (and the device's, unless ``device_model`` is given).
        cells: device length in cells (>= the principal-layer length m).
        k_transverse: optional (K, 3) transverse Bloch vectors (lattice coordinates, 0 along
            ``direction``), e.g. ``k_grid``; each is a batch member. ``weights`` (K,) default uniform.
        potential_ev: optional potential energy per device orbital, shape (cells * n,), eV, in *natural*
            order (cell-major: orbital ``p * n + m`` is Wannier function m of cell p); the same for every k.
        device_model: optional model for the hoppings inside the device (same orbitals and translations
            set; e.g. strained or gated hoppings that require grad). Lead-device couplings use ``model``.
    """
    n = model.num_wann
    if device_model is not None and device_model.num_wann != n:
        raise ValueError(f"device_model has {device_model.num_wann} Wannier functions, the lead model {n}")
    layers = layer_hamiltonians(model, direction, k_transverse)
    dev_layers = layers if device_model is None else layer_hamiltonians(device_model, direction, k_transverse)
    m = max(_reach(layers), _reach(dev_layers))
    if cells < m:
        raise ValueError(f"the device needs at least {m} cells: hoppings reach {m} cells along lattice vector "
                         f"{direction}, and shorter devices would let the leads couple directly")
    like = layers[0]
    # structural pattern: every listed translation's block counts, whatever its current value
    pattern_layers = {j: torch.ones(n, n, dtype=torch.float64) for j in set(layers) | set(dev_layers) if abs(j) <= m}
    dev = list(range(cells))
    H = _toeplitz(dev_layers, dev, dev, like)
    pattern = _toeplitz(pattern_layers, dev, dev, pattern_layers[0]) > 0
    if potential_ev is not None:
        u = torch.as_tensor(potential_ev)
        if u.shape[-1:] != (cells * n,):
            raise ValueError(f"potential_ev must have shape ({cells * n},) (one per device orbital); got {tuple(u.shape)}")
        H = H + torch.diag_embed(u.to(H.dtype))
    lead_cell = list(range(m))
    h00 = _toeplitz(layers, lead_cell, lead_cell, like)
    h01 = _toeplitz(layers, lead_cell, [m + c for c in lead_cell], like)
    near_left = [p for p in dev if p < m]
    near_right = [p for p in dev if p >= cells - m]
    left_cells, right_cells = [c - m for c in lead_cell], [cells + c for c in lead_cell]
    left = Lead(h00, h01.mH, _toeplitz(layers, left_cells, near_left, like))
    right = Lead(h00, h01, _toeplitz(layers, right_cells, near_right, like))
    orb = lambda ps: [p * n + o for p in ps for o in range(n)]  # noqa: E731
    device = Device.from_matrix(H, left, right, orb(near_left), orb(near_right), pattern=pattern)
    order = device.orbital_order if device.orbital_order is not None else np.arange(cells * n)
    cell_of, wannier_of = order // n, order % n
    positions = None
    if model.centres_nm is not None and model.lattice_nm is not None:
        positions = model.centres_nm[wannier_of] + torch.as_tensor(cell_of, dtype=torch.float64)[:, None] \
            * model.lattice_nm[direction]
    w = None
    if k_transverse is not None:
        K = layers[0].shape[0]
        w = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (K,) or abs(float(w.sum()) - 1) > 1e-12:
            raise ValueError(f"weights must have shape ({K},) and sum to 1; got {w.tolist()}")
    return WannierTransport(device, model, direction, cells, m, k_transverse, w, cell_of, wannier_of, positions)
