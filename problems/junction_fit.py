"""AD-NEGF application 2: fit every Hamiltonian element of a 5-2 junction to the T(E) of a 7-4 junction.

Setup (arXiv 2202.05098, section 4): graphene nano-junctions, nearest-neighbour pz (t = -2.7 eV). The
*target* is T(E) of a 7-4 armchair junction on ``N_ENERGIES`` energies in ``(-5, 5)`` eV. The *model*
is a 5-2 junction whose Hamiltonian is free: every element of every device block (one block per unit
cell, symmetric), of every inter-cell coupling, and of both leads (``h00`` symmetric, ``h01``, and the
lead-device coupling), started from the physical 5-2 values, each within +-``BOX_EV`` of it (a box
the gradient method never reaches, there so that sampling baselines have a space to sample). About
``10^4`` real parameters with the default lengths. Loss: mean squared error of T on a minibatch of ``BATCH`` energies (minibatch Adam in
the paper: batches of 64, learning rate 1e-3).

The minibatch is drawn from a generator seeded by a hash of the evaluated point, so the problem keeps
no state: the same point always sees the same energies, and a resumed campaign replays exactly.

Building it: the target T(E) (the 7-4 junction on all energies) and the physical 5-2 matrices depend on
the settings only, so each is computed once per process and settings (``_target_transmission``,
``_physical_matrices``) and shared read-only by every problem built after: a campaign worker builds the
problem for each of its runs, ``invdesign report --design-figures`` and ``full_loss_curves`` build it again.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Annotated, final

import torch

from invdesign.negf import Device, Lead, solve
from invdesign.objectives import Objective
from invdesign.params import DTYPE, Block, ParameterSpace
from invdesign.problem import Problem
from invdesign.settings import Range, checked_settings, settings_like
from invdesign.tb import ribbon_junction, tables, two_terminal
from invdesign.tb.hamiltonian import coupling_blocks
from invdesign.tb.structure import Structure
from invdesign.tb.transport import lead_principal_layer
from problems import PROBLEMS

N_ENERGIES = 2000
E_MIN_EV, E_MAX_EV = -5.0, 5.0
BATCH = 64
TARGET = (7, 4)
MODEL = (5, 2)
CELLS = (60, 30)  # unit cells of the wide and of the narrow ribbon: ~10^4 parameters for 5-2
ETA_EV = 0.0
BOX_EV = 1.0  # every element within +-1 eV of its physical 5-2 value: the box random search samples


def junction_transmission(widths: tuple[int, int], cells: tuple[int, int], energies: torch.Tensor) -> torch.Tensor:
    """T(E) of an armchair junction, nearest-neighbour pz, t = -2.7 eV."""
    model = tables.graphene_pz("NN_generic")
    system = two_terminal(model, *ribbon_junction(widths[0], widths[1], cells[0], cells[1]))
    return solve(system.device, energies).transmission()


class _Layout:
    """The free matrices of a cell-sliced junction and their offsets in one flat parameter vector."""

    def __init__(self, shapes: list[tuple[str, tuple[int, int], bool]]):
        self.entries = []  # (name, shape, symmetric, start, count)
        start = 0
        for name, shape, symmetric in shapes:
            count = shape[0] * (shape[0] + 1) // 2 if symmetric else shape[0] * shape[1]
            self.entries.append((name, shape, symmetric, start, count))
            start += count
        self.size = start

    def pack(self, mats: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for name, shape, symmetric, _, _ in self.entries:
            m = mats[name]
            parts.append(m[tuple(torch.triu_indices(*shape))] if symmetric else m.reshape(-1))
        return torch.cat(parts)

    def unpack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, shape, symmetric, start, count in self.entries:
            v = x[start:start + count]
            if symmetric:
                iu = torch.triu_indices(*shape)
                upper = torch.zeros(shape, dtype=x.dtype).index_put((iu[0], iu[1]), v)
                out[name] = upper + upper.T - torch.diag(upper.diagonal())
            else:
                out[name] = v.reshape(shape)
        return out


def _cell_slices(widths: tuple[int, int], cells: tuple[int, int]) -> list[slice]:
    sizes = [2 * widths[0]] * cells[0] + [2 * widths[1]] * cells[1]
    bounds = torch.cumsum(torch.tensor([0] + sizes), 0).tolist()
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def physical_matrices(widths: tuple[int, int], cells: tuple[int, int]) -> tuple[dict[str, torch.Tensor], list]:
    """Blocks, couplings and lead matrices of the physical junction, one slice per unit cell."""
    model = tables.graphene_pz("NN_generic")
    device, left, right = ribbon_junction(widths[0], widths[1], cells[0], cells[1])
    H, _ = coupling_blocks(model, device, device, onsite=True)
    sl = _cell_slices(widths, cells)
    mats, shapes = {}, []
    for i, s in enumerate(sl):
        mats[f"block{i}"] = H[s, s]
        shapes.append((f"block{i}", tuple(H[s, s].shape), True))
        if i + 1 < len(sl):
            mats[f"coupling{i}"] = H[s, sl[i + 1]]
            shapes.append((f"coupling{i}", tuple(H[s, sl[i + 1]].shape), False))
    for side, cell, edge in (("left", left, sl[0]), ("right", right, sl[-1])):
        lead_cell, blocks = lead_principal_layer(model, cell)
        edge_atoms = Structure(device.positions[edge], device.species[edge])
        c, _ = coupling_blocks(model, lead_cell, edge_atoms)
        for key, m, sym in (("h00", blocks["h00"], True), ("h01", blocks["h01"], False), ("coupling", c, False)):
            mats[f"{side}_{key}"] = m
            shapes.append((f"{side}_{key}", tuple(m.shape), sym))
    return mats, shapes


def _energies(e_min: float, e_max: float, n_energies: int) -> torch.Tensor:
    """``n_energies`` energies strictly inside ``(e_min, e_max)``, off the grid's ends."""
    return torch.linspace(e_min, e_max, n_energies + 2, dtype=DTYPE)[1:-1]


@functools.lru_cache(maxsize=4)
def _target_transmission(widths: tuple[int, int], cells: tuple[int, int], e_min: float, e_max: float,
                         n_energies: int) -> torch.Tensor:
    """The target T(E), once per process and settings (read-only: shared by every problem built with them)."""
    return junction_transmission(widths, cells, _energies(e_min, e_max, n_energies)).detach()


# the physical matrices, once per process and widths/cells (read-only, like the target)
_physical_matrices = functools.lru_cache(maxsize=4)(physical_matrices)


@final
class MinibatchMSE(Objective):
    """Mean squared error of T on the minibatch the response carries."""

    def __call__(self, response, params):
        return ((response["transmission"] - response["target"]) ** 2).mean()


@final
class JunctionFit(Problem):
    """Fit all Hamiltonian elements of a 5-2 junction to the 7-4 junction's T(E)."""

    name = "junction_fit"
    description = "AD-NEGF app. 2: ~1e4 Hamiltonian elements of a 5-2 junction fitted to a 7-4 junction's T(E)"

    @checked_settings
    def __init__(self, target: tuple[int, int] = TARGET, model: tuple[int, int] = MODEL,
                 cells: tuple[int, int] = CELLS, n_energies: Annotated[int, Range(1)] = N_ENERGIES,
                 batch: Annotated[int, Range(1)] = BATCH, e_min: float = E_MIN_EV, e_max: float = E_MAX_EV,
                 eta: Annotated[float, Range(0.0)] = ETA_EV, box_ev: Annotated[float, Range(0.0, low_open=True)] = BOX_EV):
        self.widths, self.cells, self.batch, self.eta = tuple(model), tuple(cells), int(batch), float(eta)
        self.energies = _energies(e_min, e_max, n_energies)
        self.target = _target_transmission(tuple(target), tuple(cells), float(e_min), float(e_max), int(n_energies))
        mats, shapes = _physical_matrices(self.widths, self.cells)
        self.layout = _Layout(shapes)
        init = self.layout.pack(mats)
        self.space = ParameterSpace([Block("h", (self.layout.size,), lower=init - box_ev, upper=init + box_ev,
                                           init=init)])
        self.objective = MinibatchMSE()

    def minibatch(self, x: torch.Tensor) -> torch.Tensor:
        """Indices of the energies seen at point ``x`` (seeded by a hash of x)."""
        digest = hashlib.sha256(x.detach().cpu().numpy().tobytes()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
        return torch.randperm(len(self.energies), generator=g)[: self.batch]

    def device(self, x: torch.Tensor) -> Device:
        m = self.layout.unpack(x)
        n = sum(self.cells)  # one slice per unit cell
        left = Lead(m["left_h00"], m["left_h01"], m["left_coupling"])
        right = Lead(m["right_h00"], m["right_h01"], m["right_coupling"])
        return Device([m[f"block{i}"] for i in range(n)], [m[f"coupling{i}"] for i in range(n - 1)], left, right)

    def simulate(self, params):
        x = params["h"]
        idx = self.minibatch(x) if self.batch < len(self.energies) else torch.arange(len(self.energies))
        t = solve(self.device(x), self.energies[idx] + 1j * self.eta if self.eta else self.energies[idx]).transmission()
        return {"transmission": t, "target": self.target[idx]}

    def full_loss(self, z: torch.Tensor) -> float:
        """MSE over all energies (for reports)."""
        with torch.no_grad():
            x = self.space.to_params(torch.as_tensor(z, dtype=DTYPE))["h"]
            t = solve(self.device(x), self.energies).transmission()
        return float(((t - self.target) ** 2).mean())


    def plot_design(self, params: dict, out_dir) -> list:
        """T(E): the 7-4 target, the 5-2 start and the fit, on the full energy grid."""
        import pathlib

        from matplotlib.figure import Figure

        out = pathlib.Path(out_dir)
        with torch.no_grad():
            start = solve(self.device(self.space.to_params(self.initial_point())["h"]), self.energies).transmission()
            fit = solve(self.device(params["h"]), self.energies).transmission()
        ax = Figure(figsize=(8, 4)).add_subplot()
        ax.plot(self.energies, self.target, color="0.5", lw=2, label="target: 7-4 junction")
        ax.plot(self.energies, start, "C1", lw=1, label="start: 5-2 junction")
        ax.plot(self.energies, fit, "C0", lw=1, label=f"fit ({self.dim} parameters)")
        ax.set_xlabel("E (eV)")
        ax.set_ylabel("transmission T(E)")
        mse = float(((fit - self.target) ** 2).mean())
        ax.set_title(f"junction fit: full-grid MSE {mse:.3f} (start {float(((start - self.target) ** 2).mean()):.3f})")
        ax.legend()
        ax.figure.savefig(out / "transmission.png", dpi=120, bbox_inches="tight")
        return [out / "transmission.png"]


def full_loss_curves(campaign_dir, levels: int = 10) -> list[dict]:
    """Full-grid MSE along every run of a junction-fit campaign (the report's values are minibatch MSEs).

    At ``levels`` evenly spaced fractions of each run's cost, and at its end, the design is evaluated
    on all energies: for a gradient method its latest iterate with a stored point (compact histories
    keep every ``COMPACT_X_EVERY``-th point), for a gradient-free one its best point so far (stored
    on every new best), carried to the run's end. Rows ``{run_id, optimizer, cost, evaluations, full_mse}``.
    """
    from invdesign.campaign.records import num
    from invdesign.campaign.spec import Unit
    from invdesign.campaign.storage import HISTORY_FILE, load_campaign, read_history, run_dir
    from invdesign.optimizers import OPTIMIZERS

    rows, problems = [], {}
    for unit in map(Unit.from_dict, load_campaign(campaign_dir)["units"]):
        key = repr(sorted(unit.problem_settings.items()))
        if key not in problems:
            problems[key] = junction_fit(**unit.problem_settings)
        problem = problems[key]
        records, _ = read_history(run_dir(campaign_dir, unit.run_id) / HISTORY_FILE)
        if not records:
            continue
        costs = torch.cumsum(torch.tensor([num(r.get("cost", 1.0)) for r in records]), 0)
        iterate = OPTIMIZERS[unit.optimizer_name].uses_gradient
        best, latest, marks = math.inf, None, []
        for i, rec in enumerate(records):  # design known after each line: (line index, x)
            value = num(rec["value"])
            if "x" in rec and (iterate or (not rec.get("failed") and value < best)):
                latest = (i, rec["x"])
            if not rec.get("failed") and value < best:
                best = value
            marks.append(latest)
        targets = [float(costs[-1]) * k / levels for k in range(levels + 1)]
        done = set()
        for target in targets:
            i = min(int(torch.searchsorted(costs, torch.tensor(target, dtype=costs.dtype))), len(records) - 1)
            if marks[i] is None or marks[i][0] in done:
                continue
            j, x = marks[i]
            done.add(j)
            rows.append({"run_id": unit.run_id, "optimizer": unit.optimizer, "cost": float(costs[j]),
                         "evaluations": j + 1, "full_mse": problem.full_loss(torch.tensor(x, dtype=DTYPE))})
        if not iterate and rows and rows[-1]["run_id"] == unit.run_id and rows[-1]["evaluations"] < len(records):
            # the design did not change after its last improvement: carry it to the run's end (its budget)
            rows.append({**rows[-1], "cost": float(costs[-1]), "evaluations": len(records)})
    return rows


def write_full_loss_curves(campaign_dir, levels: int = 10) -> list:
    """``full_loss.csv``, ``full_loss.md`` and ``figures/full_loss.png`` in the campaign directory."""
    import csv
    import pathlib

    from matplotlib.figure import Figure

    out = pathlib.Path(campaign_dir)
    rows = full_loss_curves(out, levels)
    if not rows:
        raise ValueError(f"{out}: no run of this campaign has evaluations with a stored point yet")
    with open(out / "full_loss.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ax = Figure(figsize=(7, 4)).add_subplot()
    runs = sorted({r["run_id"]: r["optimizer"] for r in rows}.items())
    lines = ["| optimizer | evaluations | cost | full-grid MSE at start | at the end |", "|---|---|---|---|---|"]
    for run_id, name in runs:
        mine = [r for r in rows if r["run_id"] == run_id]
        ax.plot([r["cost"] for r in mine], [r["full_mse"] for r in mine], "o-", ms=3, label=name)
        lines.append(f"| {name} | {mine[-1]['evaluations']} | {mine[-1]['cost']:.0f} | {mine[0]['full_mse']:.4f} | "
                     f"{mine[-1]['full_mse']:.4f} |")
    ax.set_xlabel("cost (forward-equivalent simulations)")
    ax.set_ylabel("MSE of T(E) on all energies")
    ax.set_title("junction fit: full-grid loss of each run's design")
    ax.legend()
    (out / "figures").mkdir(exist_ok=True)
    ax.figure.savefig(out / "figures" / "full_loss.png", dpi=120, bbox_inches="tight")
    (out / "full_loss.md").write_text("\n".join(lines) + "\n")
    return [out / "full_loss.csv", out / "full_loss.md", out / "figures" / "full_loss.png"]


@settings_like(JunctionFit)
def junction_fit(**settings) -> JunctionFit:
    """AD-NEGF app. 2: ~1e4 Hamiltonian elements of a 5-2 junction fitted to a 7-4 junction's T(E)."""
    return JunctionFit(**settings)


PROBLEMS["paper/junction_fit"] = junction_fit


if __name__ == "__main__":  # python -m problems.junction_fit results/paper_junction_fit
    import sys

    for path in write_full_loss_curves(sys.argv[1]):
        print(path)
