"""Inputs of the engine: semi-infinite ``Lead`` and block-tridiagonal ``Device``.

Index conventions (who is ``h01``, which way ``coupling`` points): see ``invdesign.negf``.
Matrices may carry leading batch dimensions (a batch of parameter sets), shape ``(..., n, n)``;
they are kept as given (torch tensors keep their autograd graph) and cast to the complex working
dtype only when a computation runs.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from invdesign.negf.energies import precision_error
from invdesign.negf.errors import NEGFInputError

HERMITIAN_ATOL = 1e-8  # absolute tolerance (eV) on |H - H^dagger|, relative to max(1, max|H|)
OVERLAP_K_POINTS = 16  # k points (whole zone) at which a lead's S(k) must be positive definite


def as_matrix(x, name: str) -> torch.Tensor:
    """Convert a matrix input to a tensor (keeping autograd), checking it is at least 2-D and finite."""
    if x is None:
        raise NEGFInputError(f"{name} is missing")
    if hasattr(x, "toarray") and not isinstance(x, torch.Tensor):  # scipy.sparse
        x = x.toarray()
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except ValueError as err:  # ragged nested lists
            raise NEGFInputError(f"{name} could not be read as a matrix: {err}") from None
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise NEGFInputError(f"{name} could not be read as a numeric matrix (got dtype {arr.dtype})")
        x = torch.as_tensor(arr)
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(torch.float64)
    if x.ndim < 2:
        raise NEGFInputError(f"{name} must be a matrix (..., rows, cols); got shape {tuple(x.shape)}")
    if not torch.isfinite(x.detach()).all():
        raise NEGFInputError(f"{name} contains NaN or infinite entries")
    return x


def check_square(x: torch.Tensor, name: str, size: int | None = None) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise NEGFInputError(f"{name} must be square; got shape {tuple(x.shape)}")
    if size is not None and x.shape[-1] != size:
        raise NEGFInputError(f"{name} must be {size} x {size}; got shape {tuple(x.shape)}")


def check_hermitian(x: torch.Tensor, name: str, atol: float = HERMITIAN_ATOL) -> None:
    xd = x.detach()
    scale = max(1.0, float(xd.abs().max())) if xd.numel() else 1.0
    diff = (xd - xd.mH).abs() if xd.numel() else None
    err = float(diff.max()) if diff is not None else 0.0
    if err > atol * scale:
        flat = int(diff.reshape(-1, *diff.shape[-2:]).amax(0).argmax())
        row, col = divmod(flat, diff.shape[-1])
        raise NEGFInputError(
            f"{name} is not Hermitian: max |M - M^dagger| = {err:.3e} (at entry ({row}, {col})) exceeds "
            f"{atol:.1e} x {scale:.3g}"
        )


def check_positive_definite(s: torch.Tensor, name: str) -> None:
    """An overlap matrix (or a batch of them) must be positive definite: a basis has no null vectors."""
    s = s.detach().to(torch.complex128)
    if s.numel() == 0:
        return
    s = 0.5 * (s + s.mH)
    if bool((torch.linalg.cholesky_ex(s).info == 0).all()):
        return
    low = float(torch.linalg.eigvalsh(s).min())
    raise NEGFInputError(f"{name} is not positive definite: smallest eigenvalue {low:.3e} (an overlap "
                         "matrix must be; check its diagonal (1 for orthonormal orbitals) and that the "
                         "overlaps are small enough)")


def check_lead_overlap(s00: torch.Tensor, s01: torch.Tensor, name: str) -> None:
    """``S(k) = s00 + s01 e^{ik} + s01^dagger e^{-ik}`` positive definite on ``OVERLAP_K_POINTS`` k points."""
    k = 2 * torch.pi * torch.arange(OVERLAP_K_POINTS, dtype=torch.float64) / OVERLAP_K_POINTS
    phase = torch.exp(1j * k).reshape(-1, *([1] * s00.ndim))
    a, b = s00.detach().to(torch.complex128), s01.detach().to(torch.complex128)
    check_positive_definite(a + b * phase + b.mH * phase.conj(), f"{name} overlap S(k) = s00 + s01 e^ik + h.c.")


def check_batch_shapes(named: list[tuple[str, torch.Tensor]]) -> None:
    """All leading (batch) dimensions must broadcast together; name two inputs that do not."""
    shape: tuple[int, ...] = ()
    seen: set = set()  # a device's blocks mostly share one batch shape: broadcast each distinct one once
    for i, (name, m) in enumerate(named):
        if m.shape[:-2] in seen:
            continue
        seen.add(m.shape[:-2])
        try:
            shape = torch.broadcast_shapes(shape, m.shape[:-2])
        except RuntimeError:
            other = next((f"{o} has {tuple(x.shape[:-2])}" for o, x in named[:i]
                          if not _broadcasts(x.shape[:-2], m.shape[:-2])), f"the inputs before it give {shape}")
            raise NEGFInputError(f"batch dimensions do not match: {name} has batch shape {tuple(m.shape[:-2])} "
                                 f"but {other} (leading dimensions must be equal or 1)") from None


def _broadcasts(a: torch.Size, b: torch.Size) -> bool:
    try:
        torch.broadcast_shapes(a, b)
        return True
    except RuntimeError:
        return False


def repartitioned(device: "Device", **changes) -> "Device":
    """``device`` with ``changes`` to its fields, without re-running the checks of ``Device``: only for the
    same matrix on other slices (thin or merged slices, ``invdesign.negf.thin``/``regroup``), whose
    blocks are pieces of blocks that were checked when ``device`` was made (a thin-slice device has
    hundreds of blocks; checking them again cost more than the sweep on small devices)."""
    new = object.__new__(Device)
    for f in dataclasses.fields(Device):
        object.__setattr__(new, f.name, changes.pop(f.name) if f.name in changes else getattr(device, f.name))
    if changes:
        raise TypeError(f"repartitioned: Device has no field(s) {sorted(changes)}")
    return new


def dagger(x: torch.Tensor) -> torch.Tensor:
    return x.mH if x.is_complex() else x.mT


@dataclasses.dataclass(frozen=True, eq=False)
class Lead:
    """A semi-infinite periodic lead (see ``invdesign.negf`` for the orientation of ``h01``).

    Args:
        h00: on-site cell Hamiltonian ``<n|H|n>``, shape ``(..., n, n)``, Hermitian (eV).
        h01: hopping ``<n|H|n+1>`` to the next cell *away from the device*, shape ``(..., n, n)`` (eV).
        coupling: ``<lead cell 0|H|device edge slice>``, shape ``(..., n, m)`` (eV). Defaults to
            ``h01^dagger`` when the device edge slice has the lead's size.
        s00, s01: overlaps of a non-orthogonal basis, same shapes as ``h00``, ``h01``.
        s_coupling: overlap between lead cell 0 and the edge slice, shape ``(..., n, m)``. Defaults to
            ``s01^dagger`` when ``coupling`` defaults; required when an overlapping lead gets an explicit
            ``coupling`` (a silent zero would be a guess).
    """

    h00: torch.Tensor
    h01: torch.Tensor
    coupling: torch.Tensor | None = None
    s00: torch.Tensor | None = None
    s01: torch.Tensor | None = None
    s_coupling: torch.Tensor | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        h00 = as_matrix(self.h00, "Lead.h00")
        check_square(h00, "Lead.h00")
        n = h00.shape[-1]
        check_hermitian(h00, "Lead.h00")
        h01 = as_matrix(self.h01, "Lead.h01")
        check_square(h01, "Lead.h01", n)
        set_("h00", h00)
        set_("h01", h01)
        if (self.s00 is None) != (self.s01 is None):
            raise NEGFInputError("Lead overlap needs both s00 and s01 (or neither)")
        if self.s00 is not None:
            s00 = as_matrix(self.s00, "Lead.s00")
            check_square(s00, "Lead.s00", n)
            check_hermitian(s00, "Lead.s00")
            s01 = as_matrix(self.s01, "Lead.s01")
            check_square(s01, "Lead.s01", n)
            check_batch_shapes([("Lead.s00", s00), ("Lead.s01", s01)])
            check_lead_overlap(s00, s01, "Lead")
            set_("s00", s00)
            set_("s01", s01)
        if self.coupling is not None:
            c = as_matrix(self.coupling, "Lead.coupling")
            if c.shape[-2] != n:
                raise NEGFInputError(
                    f"Lead.coupling must have {n} rows (one per lead orbital); got shape {tuple(c.shape)}"
                )
            set_("coupling", c)
            if self.s00 is not None and self.s_coupling is None:
                raise NEGFInputError(
                    "Lead has an overlap (s00, s01) and an explicit coupling: give s_coupling too"
                )
        if self.s_coupling is not None:
            if self.coupling is None:
                raise NEGFInputError("Lead.s_coupling given without Lead.coupling")
            sc = as_matrix(self.s_coupling, "Lead.s_coupling")
            if sc.shape[-2:] != self.coupling.shape[-2:]:
                raise NEGFInputError(
                    f"Lead.s_coupling has shape {tuple(sc.shape)}, coupling {tuple(self.coupling.shape)}"
                )
            set_("s_coupling", sc)

    @property
    def size(self) -> int:
        """Orbitals per lead cell."""
        return self.h00.shape[-1]

    @property
    def has_overlap(self) -> bool:
        return self.s00 is not None

    def coupling_to(self, edge_size: int, name: str = "lead") -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(coupling, s_coupling)`` onto a device edge slice of ``edge_size`` orbitals."""
        if self.coupling is None:
            if edge_size != self.size:
                raise NEGFInputError(
                    f"{name}: the device edge slice has {edge_size} orbitals but the lead cell has "
                    f"{self.size}; give Lead(coupling=...) of shape ({self.size}, {edge_size})"
                )
            return dagger(self.h01), (dagger(self.s01) if self.has_overlap else None)
        if self.coupling.shape[-1] != edge_size:
            raise NEGFInputError(
                f"{name}: coupling has shape {tuple(self.coupling.shape)} but the device edge slice has "
                f"{edge_size} orbitals (expected ({self.size}, {edge_size}))"
            )
        return self.coupling, self.s_coupling


@dataclasses.dataclass(frozen=True, eq=False)
class Device:
    """A block-tridiagonal device between two leads (conventions: ``invdesign.negf``).

    Args:
        blocks: ``[H_00, H_11, ...]``, each ``(..., b_i, b_i)`` Hermitian (eV). One block is valid.
        couplings: ``[H_01, H_12, ...]``, each ``(..., b_i, b_{i+1})`` (eV); one fewer than blocks.
        left, right: the leads attached to the first and the last slice.
        overlap: optional ``(s_blocks, s_couplings)`` of the same shapes for a non-orthogonal basis.
        hermitian_atol: tolerance of the Hermiticity checks (relative to max(1, max|H|)).
        structural_zeros: the zero entries of the blocks stay zero under every parameter the blocks
            depend on (parameters touch only the diagonal or existing bonds). Then ``solve`` may split
            slices along them (``invdesign.negf.thin``) even where the blocks carry gradients; without
            it only blocks that carry no gradient are split, since a zero entry that a parameter can
            make nonzero has a gradient the split would drop. Builders that know this set it.
    """

    blocks: Sequence[torch.Tensor]
    couplings: Sequence[torch.Tensor]
    left: Lead
    right: Lead
    overlap: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]] | None = None
    hermitian_atol: float = HERMITIAN_ATOL
    orbital_order: np.ndarray | None = None  # original index of each device orbital (from_matrix)
    structural_zeros: bool = False

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if isinstance(self.blocks, (torch.Tensor, np.ndarray)) and np.ndim(self.blocks) == 2:
            raise NEGFInputError("Device.blocks must be a list of matrices; wrap a single block as [H]")
        blocks = [as_matrix(b, f"Device.blocks[{i}]") for i, b in enumerate(self.blocks)]
        if not blocks:
            raise NEGFInputError("Device needs at least one block")
        couplings = [as_matrix(c, f"Device.couplings[{i}]") for i, c in enumerate(self.couplings)]
        if len(couplings) != len(blocks) - 1:
            raise NEGFInputError(
                f"Device has {len(blocks)} blocks, so it needs {len(blocks) - 1} couplings; got {len(couplings)}"
            )
        for i, b in enumerate(blocks):
            check_square(b, f"Device.blocks[{i}]")
            check_hermitian(b, f"Device.blocks[{i}]", self.hermitian_atol)
        sizes = [b.shape[-1] for b in blocks]
        for i, c in enumerate(couplings):
            if tuple(c.shape[-2:]) != (sizes[i], sizes[i + 1]):
                raise NEGFInputError(
                    f"Device.couplings[{i}] has shape {tuple(c.shape[-2:])} but blocks {i} and {i + 1} "
                    f"need ({sizes[i]}, {sizes[i + 1]}): the slices do not chain"
                )
        set_("blocks", blocks)
        set_("couplings", couplings)
        if not isinstance(self.left, Lead) or not isinstance(self.right, Lead):
            raise NEGFInputError("Device.left and Device.right must be invdesign.negf.Lead objects")
        if self.overlap is not None:
            if len(self.overlap) != 2:
                raise NEGFInputError("Device.overlap must be a pair (s_blocks, s_couplings)")
            sb = [as_matrix(s, f"Device.overlap blocks[{i}]") for i, s in enumerate(self.overlap[0])]
            sc = [as_matrix(s, f"Device.overlap couplings[{i}]") for i, s in enumerate(self.overlap[1])]
            if len(sb) != len(blocks) or len(sc) != len(couplings):
                raise NEGFInputError("Device.overlap must have as many blocks and couplings as the Hamiltonian")
            for i, (s, b) in enumerate(zip(sb, blocks)):
                check_square(s, f"Device.overlap blocks[{i}]", b.shape[-1])
                check_hermitian(s, f"Device.overlap blocks[{i}]", self.hermitian_atol)
                check_positive_definite(s, f"Device.overlap blocks[{i}]")
            for i, (s, c) in enumerate(zip(sc, couplings)):
                if s.shape[-2:] != c.shape[-2:]:
                    raise NEGFInputError(f"Device.overlap couplings[{i}] must have shape {tuple(c.shape[-2:])}")
            set_("overlap", (sb, sc))
        if (self.left.has_overlap or self.right.has_overlap) and self.overlap is None:
            raise NEGFInputError("the leads have overlap matrices but the Device has none (give overlap=...)")
        named = [(f"Device.blocks[{i}]", b) for i, b in enumerate(blocks)]
        named += [(f"Device.couplings[{i}]", c) for i, c in enumerate(couplings)]
        if self.overlap is not None:
            named += [(f"Device.overlap blocks[{i}]", s) for i, s in enumerate(self.overlap[0])]
            named += [(f"Device.overlap couplings[{i}]", s) for i, s in enumerate(self.overlap[1])]
        for side, lead in (("left", self.left), ("right", self.right)):
            named += [(f"Device.{side}.{k}", getattr(lead, k)) for k in ("h00", "h01", "coupling", "s00", "s01",
                                                                           "s_coupling") if getattr(lead, k) is not None]
        check_batch_shapes(named)
        # Fail now, not at the first energy, if a lead does not fit its edge slice.
        self.left.coupling_to(sizes[0], "left lead")
        self.right.coupling_to(sizes[-1], "right lead")

    @property
    def slice_sizes(self) -> list[int]:
        return [b.shape[-1] for b in self.blocks]

    @property
    def num_orbitals(self) -> int:
        return sum(self.slice_sizes)

    def to_original_order(self, x: torch.Tensor) -> torch.Tensor:
        """Reorder a per-orbital quantity (last dim) from device (slice) order to the input order."""
        if self.orbital_order is None:
            return x
        inverse = np.empty_like(self.orbital_order)
        inverse[self.orbital_order] = np.arange(len(self.orbital_order))
        return x[..., torch.as_tensor(inverse, device=x.device)]

    @classmethod
    def from_matrix(
        cls,
        h,
        left: Lead,
        right: Lead,
        left_orbitals: Sequence[int],
        right_orbitals: Sequence[int],
        overlap=None,
        hermitian_atol: float = HERMITIAN_ATOL,
        pattern=None,
    ) -> "Device":
        """Build a Device from a full (dense or scipy.sparse) Hamiltonian, finding the slicing itself.

        ``left_orbitals`` / ``right_orbitals`` are the device orbitals each lead touches; an explicit
        lead ``coupling`` then has one column per listed orbital, in the listed order. Slices are
        breadth-first layers of the coupling graph from the left orbitals; layers from the first one
        holding a right orbital onwards are merged, so the right lead touches only the last slice.
        Per-orbital outputs (``ldos``) come back in the input order via ``orbital_order``.
        ``pattern`` (optional bool (n, n)) marks entries that are structurally coupled even where H
        and S are currently zero (e.g. a hopping being fitted from 0), so they stay inside the slicing.
        """
        H = as_matrix(h, "Device.from_matrix h")
        check_square(H, "Device.from_matrix h")
        check_hermitian(H, "Device.from_matrix h", hermitian_atol)  # couplings between slices too
        n = H.shape[-1]
        S = None if overlap is None else as_matrix(overlap, "Device.from_matrix overlap")
        if S is not None:
            check_square(S, "Device.from_matrix overlap", n)
            check_hermitian(S, "Device.from_matrix overlap", hermitian_atol)
        lo, ro = _orbital_list(left_orbitals, n, "left_orbitals"), _orbital_list(right_orbitals, n, "right_orbitals")
        pattern_ = H.detach().abs().reshape(-1, n, n).amax(0) > 0
        if S is not None:
            pattern_ |= S.detach().abs().reshape(-1, n, n).amax(0) > 0
        if pattern is not None:
            extra = torch.as_tensor(np.asarray(pattern), dtype=torch.bool, device=pattern_.device)
            if extra.shape != (n, n):
                raise NEGFInputError(f"Device.from_matrix pattern must have shape ({n}, {n}); got {tuple(extra.shape)}")
            pattern_ |= extra | extra.T
        slices = _bfs_slices(pattern_.cpu().numpy(), lo, ro)
        # Leads touch listed orbitals; scatter their coupling columns into the edge-slice positions.
        left = _expand_lead(left, slices[0], lo, "left lead")
        right = _expand_lead(right, slices[-1], ro, "right lead")

        def cut(M, i, j):
            return M[..., slices[i], :][..., :, slices[j]]

        order = np.concatenate(slices)
        blocks = [cut(H, i, i) for i in range(len(slices))]
        couplings = [cut(H, i, i + 1) for i in range(len(slices) - 1)]
        ov = None
        if S is not None:
            ov = ([cut(S, i, i) for i in range(len(slices))], [cut(S, i, i + 1) for i in range(len(slices) - 1)])
        return cls(blocks, couplings, left, right, ov, hermitian_atol, order)


def check_precision(device: Device, dtype: torch.dtype) -> None:
    """Refuse single-precision matrices of ``device`` (and its leads) for a complex128 computation."""
    named = [(f"Device.blocks[{i}]", b) for i, b in enumerate(device.blocks)]
    named += [(f"Device.couplings[{i}]", c) for i, c in enumerate(device.couplings)]
    if device.overlap is not None:
        named += [(f"Device.overlap blocks[{i}]", s) for i, s in enumerate(device.overlap[0])]
        named += [(f"Device.overlap couplings[{i}]", s) for i, s in enumerate(device.overlap[1])]
    for side, lead in (("left", device.left), ("right", device.right)):
        for key in ("h00", "h01", "coupling", "s00", "s01", "s_coupling"):
            m = getattr(lead, key)
            if m is not None:
                named.append((f"the {side} Lead.{key}", m))
    for name, m in named:
        why = precision_error(name, m.dtype, dtype)
        if why:
            raise NEGFInputError(why)


def _orbital_list(orbitals, n: int, name: str) -> list[int]:
    idx = [int(i) for i in np.atleast_1d(np.asarray(orbitals))]
    if not idx:
        raise NEGFInputError(f"{name} is empty")
    if len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= n:
        raise NEGFInputError(f"{name} must be distinct indices in [0, {n}); got {idx}")
    return idx


def _bfs_slices(pattern: np.ndarray, left: list[int], right: list[int]) -> list[np.ndarray]:
    """Breadth-first layers of the bond graph ``pattern`` (bool ``(n, n)``) from the ``left`` orbitals;
    layers from the first one holding a ``right`` orbital onwards are merged (the right side touches
    only the last slice), orbitals not reached from the left are parked there too. The listed orbitals
    come first, in their listed order, in the edge slices. Layer k couples only to layers k +- 1."""
    n = pattern.shape[0]
    layer = np.full(n, -1)
    layer[left] = 0
    frontier = np.zeros(n, dtype=bool)
    frontier[left] = True
    is_right = np.zeros(n, dtype=bool)
    is_right[right] = True
    k = 0
    while frontier.any() and not (frontier & is_right).any():
        frontier = pattern[frontier].any(0) & (layer < 0)
        k += 1
        layer[frontier] = k
    first_right = k if (layer[right] >= 0).any() else max(k - 1, 0)
    layer[(layer < 0) | (layer > first_right)] = first_right
    slices = []
    for k in range(first_right + 1):
        members = np.nonzero(layer == k)[0]
        # keep the listed lead orbitals first, in their listed order, in the edge slices
        head = left if k == 0 else (right if k == first_right else [])
        head_set = set(head)
        rest = [m for m in members if m not in head_set]
        slices.append(np.array(list(head) + rest if k in (0, first_right) else rest, dtype=np.int64))
    if first_right == 0:  # one slice holding both leads' orbitals
        left_set = set(left)
        head = left + [r for r in right if r not in left_set]
        head_set = set(head)
        rest = [m for m in range(n) if m not in head_set]
        slices = [np.array(head + rest, dtype=np.int64)]
    return slices


def _expand_lead(lead: Lead, slice_idx: np.ndarray, touched: list[int], name: str) -> Lead:
    c, sc = lead.coupling_to(len(touched), name)
    pos = torch.as_tensor([int(np.nonzero(slice_idx == t)[0][0]) for t in touched])
    full = torch.zeros(*c.shape[:-1], len(slice_idx), dtype=c.dtype, device=c.device)
    full = full.index_copy(-1, pos.to(c.device), c)
    sfull = None
    if lead.has_overlap:
        sfull = torch.zeros(*sc.shape[:-1], len(slice_idx), dtype=sc.dtype, device=sc.device)
        sfull = sfull.index_copy(-1, pos.to(sc.device), sc)
    return dataclasses.replace(lead, coupling=full, s_coupling=sfull)
