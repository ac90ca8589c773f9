"""Published tight-binding parameter sets as ``TBModel`` factories (data: ``data/tb_params.json``).

| factory | model | source |
|---|---|---|
| ``graphene_pz(set_name)`` | graphene pz, 1st-3rd neighbours, optional overlap | see ``GRAPHENE_SETS`` |
| ``vogl_sp3s(material)`` | sp3s*, nearest neighbours, optional SO | Vogl, Hjalmarson, Dow, J. Phys. Chem. Solids 44, 365 (1983) |
| ``klimeck_sp3s(material)`` | sp3s* + SO (GaAs, InAs) | Klimeck et al., Superlattices Microstruct. 27, 519 (2000) |
| ``jancu_sp3d5s(material)`` | sp3d5s* + SO (C, Si, Ge, III-V) | Jancu et al., PRB 57, 6493 (1998) |
| ``boykin_sp3d5s_si()`` | sp3d5s* + SO, Si | Boykin, Klimeck, Oyafuso, PRB 69, 115201 (2004) |

Spin-orbit ``lam`` enters as ``lam L.sigma`` (atomic splitting ``Delta = 3 lam``); the Vogl and Klimeck
tables give ``Delta``, the Jancu and Boykin tables ``Delta / 3``. Lattice constants: ``lattice_constant_nm``.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib

from invdesign.tb.model import Shell, Species, TBModel, vogl_to_two_centre

DATA = pathlib.Path(__file__).with_name("data") / "tb_params.json"
SP3S = ("s", "px", "py", "pz", "s*")
SP3D5S = ("s", "px", "py", "pz", "dyz", "dzx", "dxy", "dx2-y2", "dz2", "s*")
GRAPHENE_SETS = ("NN_generic", "NN_pybinding", "NN_Saito_with_overlap", "TNN_Reich2002")


@functools.lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(DATA.read_text())


def _nn_distance(a_nm: float) -> float:
    return a_nm * math.sqrt(3) / 4


def graphene_pz(set_name: str = "NN_generic", acc_nm: float = 0.142, scaling=None) -> TBModel:
    """Carbon pz on the honeycomb lattice; neighbour shells at acc, sqrt3 acc, 2 acc.

    ``TNN_Reich2002``: on-site -0.28 eV, hoppings -2.97/-0.073/-0.33 eV, overlaps 0.073/0.018/0.026 (the
    AD-NEGF authors' set). ``NN_Saito_with_overlap``: gamma0 -3.033 eV, s0 0.129. The model is
    ``isotropic`` (pz along the local surface normal), so it serves nanotubes as well as ribbons.
    """
    sets = _data()["graphene_pz"]["sets"]
    if set_name not in sets:
        raise KeyError(f"unknown graphene set {set_name!r}; known: {sorted(sets)}")
    p = sets[set_name]
    carbon = Species(("pz",), {"p": p.get("e2p", 0.0)})
    dists = (acc_nm, math.sqrt(3) * acc_nm, 2 * acc_nm)
    if "t" in p:
        hops, ovs = [p["t"]], [None]
    elif set_name == "NN_Saito_with_overlap":
        hops, ovs = [p["gamma0"]], [p["s0"]]
    else:
        hops, ovs = [p["gamma0"], p["gamma1"], p["gamma2"]], [p["s0"], p["s1"], p["s2"]]
    shells = tuple(Shell(d, {"pp_pi": t}, None if s is None else {"pp_pi": s}) for d, t, s in zip(dists, hops, ovs))
    return TBModel({"C": carbon}, {("C", "C"): shells}, scaling=scaling, isotropic=True, name=f"graphene_pz/{set_name}",
                   source=p.get("source", p.get("note", "")))


def vogl_sp3s(material: str, spin_orbit: bool = False) -> TBModel:
    """Vogl 1983 sp3s* for a group-IV or zincblende material (species ``"<mat>_a"``, ``"<mat>_c"``).

    Anion and cation are distinct species even for Si (with identical numbers), so the heteropolar
    integrals stay unambiguous. Build the crystal with ``zincblende(a, "<mat>_a", "<mat>_c")``.
    """
    table = _data()["vogl1983_sp3s_star"]
    if material not in table["materials"]:
        raise KeyError(f"unknown Vogl material {material!r}; known: {sorted(table['materials'])}")
    p = table["materials"][material]["params"]
    so = table["spin_orbit_full_Delta_anion_cation"].get(material) if spin_orbit else None
    if spin_orbit and so is None:
        raise KeyError(f"Vogl spin-orbit splittings not tabulated for {material}; known: "
                       f"{sorted(table['spin_orbit_full_Delta_anion_cation'])}")
    return _vogl_model(p, table["materials"][material]["a_angstrom"] / 10, so, f"vogl1983/{material}",
                       table["reference"], material)


def klimeck_sp3s(material: str) -> TBModel:
    """Klimeck 2000 sp3s* with spin-orbit (GaAs, InAs), Vogl's parameter convention."""
    table = _data()["klimeck2000_sp3s_star_SO"]
    if material not in table["params"]:
        raise KeyError(f"unknown Klimeck material {material!r}; known: {sorted(table['params'])}")
    p = table["params"][material]
    return _vogl_model(p, p["a_nm"], (p["Delta_a"], p["Delta_c"]), f"klimeck2000/{material}",
                       table["reference"], material)


def _vogl_model(p: dict, a_nm: float, so, name: str, source: str, material: str) -> TBModel:
    an, ca = f"{material}_a", f"{material}_c"
    lam_a, lam_c = (0.0, 0.0) if so is None else (so[0] / 3, so[1] / 3)
    species = {
        an: Species(SP3S, {"s": p["Esa"], "p": p["Epa"], "s*": p["Es*a"]}, lam_a),
        ca: Species(SP3S, {"s": p["Esc"], "p": p["Epc"], "s*": p["Es*c"]}, lam_c),
    }
    shell = Shell(_nn_distance(a_nm), vogl_to_two_centre(p))
    return TBModel(species, {(an, ca): (shell,)}, name=name, source=source)


def jancu_sp3d5s(material: str, spin_orbit: bool = True) -> TBModel:
    """Jancu 1998 sp3d5s* (group IV: species ``material``; III-V: ``"<mat>_a"``, ``"<mat>_c"``)."""
    table = _data()["jancu1998_sp3d5s_star"]
    if material in table["group_IV"]:
        p = table["group_IV"][material]
        key = {"ss_sigma": "ss_sigma", "SS_sigma": "s*s*_sigma", "sS_sigma": "ss*_sigma", "sp_sigma": "sp_sigma",
               "Sp_sigma": "s*p_sigma", "sd_sigma": "sd_sigma", "Sd_sigma": "s*d_sigma", "pp_sigma": "pp_sigma",
               "pp_pi": "pp_pi", "pd_sigma": "pd_sigma", "pd_pi": "pd_pi", "dd_sigma": "dd_sigma",
               "dd_pi": "dd_pi", "dd_delta": "dd_delta"}
        ints = {k: p[v] for k, v in key.items()}
        lam = p["Delta/3"] if spin_orbit else 0.0
        sp = Species(SP3D5S, {"s": p["Es"], "p": p["Ep"], "d": p["Ed"], "s*": p["Es*"]}, lam)
        shell = Shell(_nn_distance(p["a"] / 10), ints)
        return TBModel({material: sp}, {(material, material): (shell,)}, name=f"jancu1998/{material}",
                       source=table["reference"])
    if material not in table["III_V"]:
        raise KeyError(f"unknown Jancu material {material!r}; known: {sorted(table['group_IV']) + sorted(table['III_V'])}")
    p = table["III_V"][material]
    an, ca = f"{material}_a", f"{material}_c"
    ints = {  # ordered pair (anion, cation): first type on the anion
        "ss_sigma": p["ss"], "SS_sigma": p["s*s*"], "Ss_sigma": p["s*a_sc"], "sS_sigma": p["sa_s*c"],
        "sp_sigma": p["sa_pc"], "ps_sigma": p["sc_pa"], "Sp_sigma": p["s*a_pc"], "pS_sigma": p["s*c_pa"],
        "sd_sigma": p["sa_dc"], "ds_sigma": p["sc_da"], "Sd_sigma": p["s*a_dc"], "dS_sigma": p["s*c_da"],
        "pp_sigma": p["pp_sigma"], "pp_pi": p["pp_pi"], "pd_sigma": p["pa_dc_sigma"], "dp_sigma": p["pc_da_sigma"],
        "pd_pi": p["pa_dc_pi"], "dp_pi": p["pc_da_pi"], "dd_sigma": p["dd_sigma"], "dd_pi": p["dd_pi"],
        "dd_delta": p["dd_delta"],
    }
    lam_a, lam_c = (p["Delta_a/3"], p["Delta_c/3"]) if spin_orbit else (0.0, 0.0)
    species = {
        an: Species(SP3D5S, {"s": p["Es_a"], "p": p["Ep_a"], "d": p["Ed"], "s*": p["Es*"]}, lam_a),
        ca: Species(SP3D5S, {"s": p["Es_c"], "p": p["Ep_c"], "d": p["Ed"], "s*": p["Es*"]}, lam_c),
    }
    return TBModel(species, {(an, ca): (Shell(_nn_distance(p["a"] / 10), ints),)}, name=f"jancu1998/{material}",
                   source=table["reference"])


def boykin_sp3d5s_si(spin_orbit: bool = True) -> TBModel:
    """Boykin, Klimeck, Oyafuso 2004 sp3d5s* Si (species ``"Si"``), a = 0.5431 nm."""
    table = _data()["boykin2004_sp3d5s_star_Si"]
    p = table["params"]
    key = {"ss_sigma": "ss", "SS_sigma": "s_s_", "sS_sigma": "ss_", "sp_sigma": "sp", "Sp_sigma": "s_p",
           "sd_sigma": "sd", "Sd_sigma": "s_d", "pp_sigma": "pps", "pp_pi": "ppp", "pd_sigma": "pds",
           "pd_pi": "pdp", "dd_sigma": "dds", "dd_pi": "ddp", "dd_delta": "ddd"}
    sp = Species(SP3D5S, {"s": p["Es"], "p": p["Ep"], "d": p["Ed"], "s*": p["Ess"]}, p["lam"] if spin_orbit else 0.0)
    shell = Shell(_nn_distance(table["a_nm"]), {k: p[v] for k, v in key.items()})
    return TBModel({"Si": sp}, {("Si", "Si"): (shell,)}, name="boykin2004/Si", source=table["reference"])


def lattice_constant_nm(model_name: str) -> float:
    """Lattice constant (nm) recorded with a table's material, e.g. ``"jancu1998/Si"``."""
    family, material = model_name.split("/")
    d = _data()
    if family == "vogl1983":
        return d["vogl1983_sp3s_star"]["materials"][material]["a_angstrom"] / 10
    if family == "klimeck2000":
        return d["klimeck2000_sp3s_star_SO"]["params"][material]["a_nm"]
    if family == "jancu1998":
        t = d["jancu1998_sp3d5s_star"]
        return (t["group_IV"].get(material) or t["III_V"][material])["a"] / 10
    if family == "boykin2004":
        return d["boykin2004_sp3d5s_star_Si"]["a_nm"]
    raise KeyError(f"no lattice constant for {model_name!r}")
