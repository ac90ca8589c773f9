"""Figures of ``invdesign.tb.plot``: what is drawn (atoms, bonds, highlights, bands, lines), not how it looks."""

import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (only to check that the library leaves pyplot alone)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from invdesign.negf import open_channels, solve  # noqa: E402
from invdesign.tb import bands, builders, tables  # noqa: E402
from invdesign.tb.model import Shell, Species, TBModel  # noqa: E402
from invdesign.tb.structure import Structure  # noqa: E402
from invdesign.tb.plot import (  # noqa: E402
    plot_bands,
    plot_bands_and_transmission,
    plot_structure,
    plot_transmission_dos,
)
from invdesign.tb.transport import two_terminal, wire  # noqa: E402

ACC = builders.ACC_NM


def artists(ax, prefix):
    return [c for c in ax.collections if (c.get_gid() or "").startswith(prefix)]


def atom_xy(ax, prefix="atoms:"):
    offs = [c.get_offsets() for c in artists(ax, prefix)]
    return np.concatenate(offs) if offs else np.zeros((0, 2))


def n_polys(ax, gid):
    return sum(len(c.get_paths()) for c in ax.collections if c.get_gid() == gid)


def same_points(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], atol=1e-12)


@pytest.fixture(scope="module")
def agnr3():
    """Two cells of a 3-AGNR: 12 atoms. By hand: per cell three dimers + two bonds between dimer lines
    (5), plus two bonds across the cell boundary -> 12 bonds."""
    return builders.armchair_ribbon(3).repeated(2)


def chain_model(a=0.1, t=-1.0):
    return TBModel({"X": Species(("s",), {"s": 0.0})}, {("X", "X"): (Shell(a, {"ss_sigma": t}),)})


# ---- structure --------------------------------------------------------------------------------------

def test_structure_atoms_and_bonds_counted_by_hand(agnr3):
    ax = plot_structure(agnr3)
    assert isinstance(ax, Axes)
    assert same_points(atom_xy(ax), agnr3.positions[:, :2].numpy())
    assert n_polys(ax, "bonds") == 12
    assert not artists(ax, "highlight") and not artists(ax, "lead-")
    assert ax.get_xlabel() == "x (nm)" and ax.get_ylabel() == "y (nm)"
    assert ax.get_aspect() == 1.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["C"]
    ax.figure.savefig(io.BytesIO(), format="png")  # renders headless


def test_bonds_follow_the_models_first_shell_or_a_cutoff(agnr3):
    # three shells in the model, but only first neighbours are drawn as bonds
    assert n_polys(plot_structure(agnr3, tables.graphene_pz("TNN_Reich2002")), "bonds") == 12
    # an explicit cutoff overrides the model: a 4-atom chain with second neighbours has 3 + 2 bonds
    line = builders.chain(0.1).repeated(4)
    assert n_polys(plot_structure(line, chain_model(), bond_cutoff_nm=0.205), "bonds") == 5
    assert n_polys(plot_structure(line, chain_model()), "bonds") == 3
    assert n_polys(plot_structure(line, bond_cutoff_nm=0.05), "bonds") == 0


def test_pairs_the_model_does_not_couple_have_no_bond(agnr3):
    # site 0 (x = 0, edge row) has a single neighbour inside this finite piece
    doped = agnr3.with_species([0], "Q")
    model = tables.graphene_pz()
    ax = plot_structure(doped, model)
    assert n_polys(ax, "bonds") == 11
    assert len(artists(ax, "atoms:Q")[0].get_offsets()) == 1
    shells = model.bonds[("C", "C")]
    coupled = model.with_species("Q", Species(("pz",), {"p": 1.0}), {("C", "Q"): shells})
    assert n_polys(plot_structure(doped, coupled), "bonds") == 12


def test_highlight_marks_exactly_the_given_sites(agnr3):
    pos = agnr3.positions[:, :2].numpy()
    ax = plot_structure(agnr3, highlight=[4, 1, -1, 4], highlight_label="dopants")
    (ring,) = artists(ax, "highlight")
    assert same_points(ring.get_offsets(), pos[[1, 4, 11]])
    assert "dopants" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert same_points(atom_xy(ax), pos)  # highlighted atoms are still drawn as atoms
    with pytest.raises(IndexError):
        plot_structure(agnr3, highlight=[12])
    assert not artists(plot_structure(agnr3, highlight=[]), "highlight")


def test_lead_cells_drawn_faded_with_their_bonds_to_the_device():
    cell = builders.armchair_ribbon(3)
    device, left, right = wire(cell, 2)
    ax = plot_structure(device, leads=(left, right))
    assert same_points(atom_xy(ax), device.positions[:, :2].numpy())
    lead_xy = np.concatenate([left.positions[:, :2].numpy(), right.positions[:, :2].numpy()])
    assert same_points(atom_xy(ax, "lead-atoms"), lead_xy)
    # 5 bonds inside each lead cell + 2 from each lead cell to the device; device bonds unchanged
    assert n_polys(ax, "lead-bonds") == 14 and n_polys(ax, "bonds") == 12
    assert "lead cells" in [t.get_text() for t in ax.get_legend().get_texts()]
    # lead atoms are lighter than device atoms of the same species
    lead_face = artists(ax, "lead-atoms")[0].get_facecolors()[0]
    dev_face = artists(ax, "atoms:C")[0].get_facecolors()[0]
    assert lead_face[:3].sum() > dev_face[:3].sum()
    # a TransportSystem brings its lead cells along
    system = two_terminal(tables.graphene_pz(), device, left, right)
    ax2 = plot_structure(system)
    assert n_polys(ax2, "lead-bonds") == 14 and len(atom_xy(ax2, "lead-atoms")) == 12
    with pytest.raises(ValueError, match="pair"):
        plot_structure(device, leads=(left,))


def test_projections_of_a_tube_and_depth_cue():
    tube = builders.nanotube(5, 0)
    pos = tube.positions.numpy()
    for name, (i, j) in {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}.items():
        ax = plot_structure(tube, tables.graphene_pz(), projection=name)
        assert same_points(atom_xy(ax), pos[:, [i, j]])
        assert ax.get_xlabel() == f"{name[0]} (nm)" and ax.get_ylabel() == f"{name[1]} (nm)"
        assert n_polys(ax, "bonds") > 0
    # xy: the viewer is at +z; the far half (small z) is drawn first and lighter than the near half
    ax = plot_structure(tube, projection="xy")
    back = [c for c in artists(ax, "atoms:") if c.get_zorder() < 2]
    front = [c for c in artists(ax, "atoms:") if c.get_zorder() > 2]
    t = (pos[:, 2] - pos[:, 2].min()) / np.ptp(pos[:, 2])
    assert same_points(np.concatenate([c.get_offsets() for c in back]), pos[t < 0.5, :2])
    lightness = [np.concatenate([c.get_facecolors() for c in cs])[:, :3].sum(1) for cs in (back, front)]
    assert lightness[0].min() > lightness[1].max()
    # a planar structure has a single layer at full colour
    flat = plot_structure(builders.armchair_ribbon(3))
    assert all(c.get_zorder() > 2 for c in artists(flat, "atoms:"))
    for bad in ("zx", "XY", "3d"):
        with pytest.raises(ValueError, match="projection"):
            plot_structure(tube, projection=bad)


def test_draws_into_a_given_axes_and_leaves_pyplot_alone(agnr3):
    before = plt.get_fignums()
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_structure(agnr3, ax=ax, legend=False) is ax
    assert ax.get_legend() is None
    plot_bands(np.zeros((3, 1)), None, [0.0, 0.5, 1.0], [0, 2], ["G", "X"])
    plot_transmission_dos([0.0, 1.0], [0.0, 1.0])
    assert plt.get_fignums() == before
    empty = plot_structure(Structure(torch.zeros(0, 3), ()))
    assert not empty.collections and empty.get_legend() is None


# ---- bands ------------------------------------------------------------------------------------------

def test_bands_of_a_chain_match_the_cosine_band():
    a = 0.1
    bloch = bands.bloch_hamiltonian(chain_model(a, -1.0), builders.chain(a))
    k, dist, corners = bands.k_path([[-math.pi / a, 0, 0], [0, 0, 0], [math.pi / a, 0, 0]], steps=20)
    ax = plot_bands(bloch, k, dist, corners, ["X", "G", "X"])
    lines = [l for l in ax.lines if l.get_gid() == "band"]
    assert len(lines) == 1
    np.testing.assert_allclose(lines[0].get_xdata(), dist.numpy())
    np.testing.assert_allclose(lines[0].get_ydata(), -2 * np.cos(k[:, 0].numpy() * a), atol=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["X", "Γ", "X"]
    np.testing.assert_allclose(ax.get_xticks(), dist[corners].numpy())
    assert len([l for l in ax.lines if l.get_gid() == "corner"]) == 3
    assert ax.get_ylabel() == "E (eV)"
    ax = plot_bands(bloch, k, dist, corners, ["X", "Gamma", "X"], reference_energy=-2.0)
    (line,) = [l for l in ax.lines if l.get_gid() == "band"]
    np.testing.assert_allclose(line.get_ydata(), -2 * np.cos(k[:, 0].numpy() * a) + 2.0, atol=1e-12)
    assert "ref" in ax.get_ylabel() and "(eV)" in ax.get_ylabel()
    assert ax.get_xticklabels()[1].get_text() == "Γ"
    with pytest.raises(ValueError, match="labels"):
        plot_bands(bloch, k, dist, corners, ["X", "G"])
    with pytest.raises(ValueError, match="energy_window"):
        plot_bands(bloch, k, dist, corners, ["X", "G", "X"], energy_window=(1.0, -1.0))


def test_energy_window_limits_axis_and_drops_bands_outside():
    cell = builders.armchair_ribbon(3)
    bloch = bands.bloch_hamiltonian(tables.graphene_pz(), cell)
    a = float(cell.lattice[0, 0])
    k, dist, corners = bands.k_path([[0, 0, 0], [math.pi / a, 0, 0]], steps=30)
    e = bloch.energies(k).detach().numpy()
    assert len([l for l in plot_bands(bloch, k, dist, corners, ["G", "X"]).lines if l.get_gid() == "band"]) == 6
    ax = plot_bands(e, None, dist, corners, ["G", "X"], energy_window=(-2.0, 2.0))  # precomputed energies
    inside = ((e.max(axis=0) >= -2.0) & (e.min(axis=0) <= 2.0)).sum()
    assert 0 < inside < 6
    assert len([l for l in ax.lines if l.get_gid() == "band"]) == inside
    assert ax.get_ylim() == (-2.0, 2.0)


# ---- transport --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def agnr_transport():
    model = tables.graphene_pz()
    cell = builders.armchair_ribbon(7)
    device, left, right = wire(cell, 2)
    system = two_terminal(model, device, left, right)
    energies = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    sol = solve(system.device, energies)
    return dict(model=model, cell=cell, energies=energies, t=sol.transmission(), dos=sol.dos(),
                modes=open_channels(system.leads[1], energies))


def test_transmission_dos_lines_labels_and_twin(agnr_transport):
    d = agnr_transport
    energies = d["energies"].clone().requires_grad_(True)  # tensors that require grad are fine
    ax = plot_transmission_dos(energies, d["t"], d["dos"], modes=d["modes"])
    assert isinstance(ax, Axes)
    (t_line,) = [l for l in ax.lines if l.get_gid() == "transmission"]
    np.testing.assert_allclose(t_line.get_xdata(), d["energies"].numpy())
    np.testing.assert_allclose(t_line.get_ydata(), d["t"].numpy())
    (stairs,) = [p for p in ax.patches if p.get_gid() == "modes"]
    np.testing.assert_array_equal(stairs.get_data().values, d["modes"])
    twin = [a for a in ax.figure.axes if a is not ax]
    assert len(twin) == 1 and [l.get_gid() for l in twin[0].lines] == ["dos"]
    assert "states/eV" in twin[0].get_ylabel()
    assert ax.get_xlabel() == "E (eV)" and "T(E)" in ax.get_ylabel()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"T(E)", "open channels", "DOS"}
    # vertical: energy on y; no DOS -> no twin, no legend needed
    ax = plot_transmission_dos(d["energies"], d["t"], orientation="vertical")
    assert len(ax.figure.axes) == 1 and ax.get_ylabel() == "E (eV)"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), d["energies"].numpy())
    with pytest.raises(ValueError, match="orientation"):
        plot_transmission_dos(d["energies"], d["t"], orientation="diagonal")
    with pytest.raises(ValueError, match="shape"):
        plot_transmission_dos(d["energies"], d["t"][:-1])


def test_bands_and_transmission_figure(agnr_transport):
    d = agnr_transport
    a = float(d["cell"].lattice[0, 0])
    bloch = bands.bloch_hamiltonian(d["model"], d["cell"])
    k, dist, corners = bands.k_path([[0, 0, 0], [math.pi / a, 0, 0]], steps=40)
    fig = plot_bands_and_transmission(bloch, k, dist, corners, ["G", "X"], d["energies"], d["t"], d["dos"],
                                      d["modes"], title="7-AGNR")
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    bands_ax, t_ax, dos_ax = fig.axes
    assert len([l for l in bands_ax.lines if l.get_gid() == "band"]) > 0
    assert [l.get_gid() for l in t_ax.lines] == ["transmission"]
    assert [l.get_gid() for l in dos_ax.lines] == ["dos"]
    assert bands_ax.get_ylim() == t_ax.get_ylim() == dos_ax.get_ylim() == (-3.0, 3.0)
    assert bands_ax.get_ylabel() == "E (eV)" and t_ax.get_ylabel() == ""
    assert "T(E)" in t_ax.get_xlabel() and "states/eV" in dos_ax.get_xlabel()
    assert "7-AGNR" in [t.get_text() for t in fig.texts]  # the suptitle
    fig.savefig(io.BytesIO(), format="png")
    fig2 = plot_bands_and_transmission(bloch, k, dist, corners, ["G", "X"], d["energies"], d["t"],
                                       energy_window=(-1.5, 1.5), reference_energy=0.1)
    assert len(fig2.axes) == 2 and fig2.axes[0].get_ylim() == fig2.axes[1].get_ylim() == (-1.5, 1.5)
    with pytest.raises(ValueError, match="axes"):
        plot_bands_and_transmission(bloch, k, dist, corners, ["G", "X"], d["energies"], d["t"], d["dos"],
                                    axes=Figure().subplots(1, 2))


def test_examples_write_their_figures(tmp_path):
    from invdesign.tb import examples

    paths = examples.main(tmp_path)
    assert len(paths) == 4
    for p in paths:
        assert p.parent == tmp_path and p.suffix == ".png" and p.stat().st_size > 10_000
