"""A field-effect transistor description and its self-consistent bias points (``invdesign.scf``).

``FETDevice`` = channel ``Device`` (source = left lead, drain = right lead, no electrostatic
potential in it) + orbital positions + Poisson grid with electrodes ``source``, ``drain`` and the
gates + doping per orbital + temperature. :func:`bias_point` solves one (V_gs, V_ds) point and returns
a :class:`BiasPoint` whose potential is differentiable (implicitly) w.r.t. the doping, the voltages,
and any tensor of the channel that requires grad.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np
import torch

from invdesign.negf.constants import KB_EV
from invdesign.negf.current import landauer_current
from invdesign.negf.errors import NEGFInputError
from invdesign.negf.potential import add_potential
from invdesign.negf.system import Device, Lead
from invdesign.scf.adjoint import implicit_fixed_point
from invdesign.scf.charge import DensityEvaluator, DensitySettings, spectral_bound
from invdesign.scf.grid import PoissonGrid
from invdesign.scf.loop import FixedPointResult, SCFOptions
from invdesign.scf.poisson import Electrostatics, electrostatics
from invdesign.scf.predictor import BulkDensity, BulkPredictor, neutral_shift, thomas_fermi_start

_LEAD_FIELDS = ("h00", "h01", "coupling", "s00", "s01", "s_coupling")


def flatten_device(device: Device) -> tuple[list, list[bool]]:
    """All matrices of ``device`` in a fixed order (``None`` kept) and whether each belongs to a lead."""
    items = list(device.blocks) + list(device.couplings)
    if device.overlap is not None:
        items += list(device.overlap[0]) + list(device.overlap[1])
    is_lead = [False] * len(items)
    for lead in (device.left, device.right):
        items += [getattr(lead, f) for f in _LEAD_FIELDS]
        is_lead += [True] * len(_LEAD_FIELDS)
    return items, is_lead


def unflatten_device(device: Device, items: Sequence) -> Device:
    """Inverse of :func:`flatten_device`: ``device`` with its matrices replaced by ``items``."""
    nb, nc = len(device.blocks), len(device.couplings)
    it = iter(items)
    blocks = [next(it) for _ in range(nb)]
    couplings = [next(it) for _ in range(nc)]
    overlap = None
    if device.overlap is not None:
        overlap = ([next(it) for _ in range(nb)], [next(it) for _ in range(nc)])
    leads = []
    for lead in (device.left, device.right):
        leads.append(Lead(**{f: next(it) for f in _LEAD_FIELDS}))
    return dataclasses.replace(device, blocks=blocks, couplings=couplings, overlap=overlap,
                               left=leads[0], right=leads[1])


@dataclass(eq=False)
class FETDevice:
    """A gated two-terminal device for the self-consistent Poisson-NEGF loop (units: ``invdesign.scf``).

    Attributes:
        channel: the ``Device`` (eV) with source = left lead, drain = right lead, no potential applied.
        positions_nm: ``(n_orbitals, 3)`` orbital positions (nm), in the channel's slice order.
        grid: Poisson grid whose electrodes include ``"source"``, ``"drain"`` and every gate.
        doping: ``(n_orbitals,)`` net doping N_D - N_A in e per orbital (donors > 0); may require grad.
        temperature_k: K.
        gates: gate name -> work-function offset ``W_gate - W_channel`` (eV); the gate's Dirichlet
            value is ``V_g - offset``.
        mu_ev: Fermi level of the source (eV), also the equilibrium one.
        reference: neutral electrons per orbital (both spins): 1 for pz carbon and other midgap models
            (half filling), 0 for conduction-band-only effective-mass models; a number or ``(n,)``.
        contact_doping: (source, drain) doping per lead orbital (e); default: the mean doping of the
            device's first/last slice.
        grid_doping: optional fixed charge per grid node (e, ``(grid.num_nodes,)``; donors and positive
            oxide charge > 0), e.g. doping given per grid cell (``N [cm^-3] 1e-21 control volume``);
            may require grad.
        density, options: numerical settings of the charge and of the loop.
    """

    channel: Device
    positions_nm: np.ndarray
    grid: PoissonGrid
    doping: torch.Tensor
    temperature_k: float = 300.0
    gates: Mapping[str, float] = field(default_factory=dict)
    mu_ev: float = 0.0
    reference: float | np.ndarray = 1.0
    contact_doping: tuple[float, float] | None = None
    grid_doping: torch.Tensor | None = None
    density: DensitySettings = DensitySettings()
    options: SCFOptions = SCFOptions()

    def __post_init__(self):
        n = self.channel.num_orbitals
        pos = np.asarray(self.positions_nm, dtype=float)
        if pos.shape != (n, 3):
            raise NEGFInputError(f"positions_nm must have shape ({n}, 3) (channel orbitals, slice order); "
                                 f"got {pos.shape}")
        self.positions_nm = pos
        self.doping = torch.as_tensor(self.doping, dtype=torch.float64)
        if self.doping.shape != (n,):
            raise NEGFInputError(f"doping must have shape ({n},) (e per orbital); got {tuple(self.doping.shape)}")
        if not torch.isfinite(self.doping.detach()).all():
            bad = torch.nonzero(~torch.isfinite(self.doping.detach())).reshape(-1)[:5].tolist()
            raise NEGFInputError(f"doping contains NaN or infinite values (orbitals {bad}...); give finite e per orbital")
        if self.grid_doping is not None and not torch.isfinite(torch.as_tensor(self.grid_doping).detach()).all():
            raise NEGFInputError("grid_doping contains NaN or infinite values")
        for name, value in (("mu_ev", self.mu_ev), *((f"gates[{k!r}]", v) for k, v in self.gates.items()),
                            *((f"contact_doping[{i}]", v) for i, v in enumerate(self.contact_doping or ()))):
            v = value.detach() if isinstance(value, torch.Tensor) else value
            if not bool(np.isfinite(np.asarray(v, dtype=float)).all()):
                raise NEGFInputError(f"{name} must be a finite number; got {value}")
        names = self.grid.electrode_names
        for needed in ("source", "drain", *self.gates):
            if needed not in names:
                raise NEGFInputError(f"the Poisson grid has no electrode {needed!r}; it has {names}")
        unknown = [e for e in names if e not in ("source", "drain") and e not in self.gates]
        if unknown:
            raise NEGFInputError(f"electrodes {unknown} of the grid are not in FETDevice.gates "
                                 "(give their work-function offsets, 0.0 for none)")
        if not (math.isfinite(float(self.temperature_k)) and self.temperature_k > 0):
            raise NEGFInputError(f"temperature_k must be a finite number > 0 (K); got {self.temperature_k}")
        ref = np.broadcast_to(np.asarray(self.reference, dtype=float), (n,))
        self._reference = torch.as_tensor(ref.copy())
        self._evaluators: dict = {}
        self.last_adjoint_history: list[float] = []

    # ---- static precomputations ----
    @property
    def electrostatics(self) -> Electrostatics:
        """Orbital-space Poisson kernel of the grid (one sparse LU), kept by the grid for these positions."""
        key = ("electrostatics", self.positions_nm.tobytes())
        if key not in self.grid._cache:
            self.grid._cache[key] = electrostatics(self.grid, self.positions_nm)
        return self.grid._cache[key]

    @property
    def kernel(self) -> torch.Tensor:
        return self.electrostatics.kernel

    @cached_property
    def spectral_bound(self) -> float:
        """Bound on |E| (eV) for the Ozaki poles: the channel's spectrum plus 3 eV of potential."""
        return spectral_bound(self.channel) + 3.0

    def _edge(self, side: int) -> slice:
        sizes = self.channel.slice_sizes
        return slice(0, sizes[0]) if side == 0 else slice(sum(sizes) - sizes[-1], sum(sizes))

    @property
    def contact_shifts(self) -> tuple[float, float]:
        """Potential energies ``(u_S, u_D)`` (eV) that make the bulk source/drain leads neutral at ``mu_ev``.

        The contact doping is ``contact_doping``, or else the current mean doping of the edge slices
        (not differentiated: the leads are outside the device).
        """
        out = []
        for side, lead in enumerate((self.channel.left, self.channel.right)):
            sl = self._edge(side)
            doping = (float(self.doping[sl].detach().mean()) if self.contact_doping is None
                      else float(self.contact_doping[side]))
            reference = float(self._reference[sl].mean())
            key = ("neutral", doping, reference, self.mu_ev, self.temperature_k)
            cache = _lead_cache(lead)
            if key not in cache:
                cache[key] = neutral_shift(lead, doping, reference, self.mu_ev, self.temperature_k)
            out.append(cache[key])
        return out[0], out[1]

    @property
    def bulk_densities(self) -> tuple[BulkDensity, BulkDensity]:
        """Tabulated bulk densities of the source and drain leads (the loop's charge predictor)."""
        out = []
        for lead in (self.channel.left, self.channel.right):
            cache = _lead_cache(lead)
            key = ("bulk", self.temperature_k)
            if key not in cache:
                cache[key] = BulkDensity(lead, self.temperature_k)
            out.append(cache[key])
        return out[0], out[1]

    @cached_property
    def drain_side(self) -> torch.Tensor:
        """``(n,)`` bool: orbitals in the drain half (x beyond the middle), which use the drain's bands."""
        x = self.positions_nm[:, 0]
        return torch.as_tensor(x > (x.min() + x.max()) / 2)

    # ---- the charge model seen by the loop ----
    def channel_params(self) -> tuple[list[torch.Tensor], list[int], list[bool]]:
        """Tensors of the channel that require grad, their positions in :func:`flatten_device`, lead flags."""
        items, is_lead = flatten_device(self.channel)
        idx = [i for i, t in enumerate(items) if isinstance(t, torch.Tensor) and t.requires_grad]
        return [items[i] for i in idx], idx, [is_lead[i] for i in idx]

    def _charge_model(self, idx: list[int], lead_flags: list[bool]) -> "_ChargeModel":
        return _ChargeModel(self, idx, lead_flags)


_LEAD_CACHE: "weakref.WeakKeyDictionary[Lead, dict]" = weakref.WeakKeyDictionary()


def _lead_cache(lead: Lead) -> dict:
    """Per-lead store of band-structure data (neutral shifts, bulk densities), freed with the lead."""
    if lead not in _LEAD_CACHE:
        _LEAD_CACHE[lead] = {}
    return _LEAD_CACHE[lead]


@dataclass(eq=False)
class _ChargeModel:
    """``dn(U, params)`` for the implicit function; params = (mu_L, mu_R, u_L, u_R, *channel tensors)."""

    fet: FETDevice
    index: list[int]
    lead_flags: list[bool]

    @property
    def kernel(self) -> torch.Tensor:
        return self.fet.kernel

    @property
    def options(self) -> SCFOptions:
        return self.fet.options

    @property
    def kt(self) -> float:
        return KB_EV * self.fet.temperature_k

    def leads_need_grad(self, needs: Sequence[bool]) -> bool:
        return any(needs[:4]) or any(nd and lf for nd, lf in zip(needs[4:], self.lead_flags))

    def _channel(self, tensors) -> Device:
        if not tensors:
            return self.fet.channel
        items, _ = flatten_device(self.fet.channel)
        for i, t in zip(self.index, tensors):
            items[i] = t
        return unflatten_device(self.fet.channel, items)

    def charge(self, potential: torch.Tensor, params: Sequence[torch.Tensor], cache: bool) -> torch.Tensor:
        mu_l, mu_r, u_l, u_r, *tensors = params
        device = add_potential(self._channel(tensors), potential, u_l, u_r)
        fet = self.fet
        if cache:
            key = tuple(round(float(x), 12) for x in (mu_l, mu_r, u_l, u_r))
            ev = fet._evaluators.get(key)
            if ev is None:
                if len(fet._evaluators) > 8:
                    fet._evaluators.clear()
                ev = fet._evaluators[key] = DensityEvaluator(float(mu_l), float(mu_r), fet.temperature_k,
                                                             fet.density, fet.spectral_bound)
        else:
            ev = DensityEvaluator(mu_l, mu_r, fet.temperature_k, fet.density, fet.spectral_bound)
        return ev(device, cache=cache, lead_shifts=(u_l, u_r)) + (1.0 - fet._reference)

    @property
    def last_adjoint_history(self):
        return self.fet.last_adjoint_history

    @last_adjoint_history.setter
    def last_adjoint_history(self, value):
        self.fet.last_adjoint_history = value


@dataclass
class BiasPoint:
    """A converged bias point. ``potential`` (eV, slice order) is differentiable w.r.t. the inputs."""

    fet: FETDevice
    vg: dict
    vd: torch.Tensor
    voltages: torch.Tensor  # electrode Dirichlet values (V), grid order
    potential: torch.Tensor
    lead_shifts: tuple[torch.Tensor, torch.Tensor]
    result: FixedPointResult
    u0: torch.Tensor

    @property
    def delta_n(self) -> torch.Tensor:
        """Electrons per orbital relative to neutral at convergence (detached)."""
        return self.result.delta_n

    @property
    def net_charge(self) -> torch.Tensor:
        """``N - dn`` (e per orbital) at convergence (detached)."""
        return self.fet.doping.detach() - self.result.delta_n

    def device(self) -> Device:
        """The channel with the self-consistent potential (and shifted leads)."""
        return add_potential(self.fet.channel, self.potential, *self.lead_shifts)

    def current(self, n_energies: int = 400, window_kt: float = 40.0) -> torch.Tensor:
        """Drain current (A), ``I > 0`` for electrons flowing source -> drain; differentiable.

        :func:`invdesign.negf.current.landauer_current` between ``mu_S`` and ``mu_D``, without the extra
        Fermi-edge panels (the SCF's current has always been the plain window quadrature; its tests and
        the campaigns' recorded currents pin those numbers).
        """
        fet = self.fet
        return landauer_current(self.device(), fet.mu_ev, fet.mu_ev - self.vd, fet.temperature_k,
                                n_energies, window_kt, fermi_edge_panels=False)


def _voltages(fet: FETDevice, vg, vd: torch.Tensor) -> tuple[torch.Tensor, dict]:
    if not isinstance(vg, Mapping):
        if len(fet.gates) == 0:
            raise NEGFInputError("the device has no gate; pass vg={}")
        vg = {name: vg for name in fet.gates}  # one voltage for all gates (e.g. a double gate)
    missing = [g for g in fet.gates if g not in vg]
    if missing:
        raise NEGFInputError(f"no voltage for gates {missing}")
    u_s, u_d = fet.contact_shifts
    values = []
    for name in fet.grid.electrode_names:
        if name == "source":
            values.append(torch.tensor(-u_s, dtype=torch.float64))
        elif name == "drain":
            values.append(vd - u_d)
        else:
            values.append(torch.as_tensor(vg[name], dtype=torch.float64) - fet.gates[name])
    return torch.stack(values), dict(vg)


def bias_point(fet: FETDevice, vg, vd, *, warm: BiasPoint | None = None) -> BiasPoint:
    """Solve the self-consistent potential at gate voltage(s) ``vg`` and drain voltage ``vd`` (V).

    Args:
        fet: the device.
        vg: a voltage for all gates, or ``{gate name: voltage}``; numbers or 0-d tensors (may require grad).
        vd: drain-source voltage (V), number or 0-d tensor; the source is grounded.
        warm: a previous bias point of the same device: its potential plus the linear response to the
            change of boundary values starts this solve.
    """
    vd = torch.as_tensor(vd, dtype=torch.float64)
    voltages, vg = _voltages(fet, vg, vd)
    es = fet.electrostatics
    rho_fixed = fet.doping
    u0 = es.potential_energy(voltages, rho_fixed)
    if fet.grid_doping is not None:
        u0 = u0 - es.node_charge_potential(fet.grid_doping)
    u_s, u_d = fet.contact_shifts
    lead_shifts = (torch.tensor(u_s, dtype=torch.float64), u_d - vd)
    mu_l = torch.tensor(fet.mu_ev, dtype=torch.float64)
    mu_r = fet.mu_ev - vd
    tensors, index, lead_flags = fet.channel_params()
    model = fet._charge_model(index, lead_flags)
    with torch.no_grad():  # start: the electrodes' potential alone (no free charge, no doping)
        initial = -(voltages.detach() @ es.external.T)
    if warm is not None:  # previous potential plus its linear response to the new boundary values
        with torch.no_grad():
            jac = torch.eye(len(u0), dtype=torch.float64) - fet.kernel * warm.result.response.unsqueeze(-2)
            initial = warm.potential.detach() + torch.linalg.solve(jac, (u0 - warm.u0).detach())
    predictor = BulkPredictor(fet.bulk_densities, fet.drain_side, (fet.mu_ev, float(mu_r.detach())))
    if warm is None and fet.options.thomas_fermi_start:
        with torch.no_grad():
            initial = thomas_fermi_start(predictor, u0.detach(), fet.kernel, initial, fet._reference)
    params = [mu_l, mu_r, lead_shifts[0], lead_shifts[1], *tensors]
    potential, result = implicit_fixed_point(model, u0, params, initial=initial, predictor=predictor)
    return BiasPoint(fet, vg, vd, voltages, potential, lead_shifts, result, u0.detach())
