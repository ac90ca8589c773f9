"""Every registered problem declares its settings: the spec and the factory reject a bad one up front,
naming it and listing the valid ones (names, defaults, ranges); ``invdesign list --settings`` shows them."""

import pytest

import problems
from invdesign.campaign import CampaignSpec, SpecError
from invdesign.cli import main
from invdesign.settings import declared
from problems.agnr_doping import agnr_doping


def spec_errors(settings: dict, name: str = "paper/agnr_doping") -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        CampaignSpec.from_dict({"seeds": [0], "budget": {"max_evals": 2},
                                "problems": [{"name": name, "settings": settings}], "optimizers": ["random"]})
    return dict(info.value.errors)


@pytest.mark.parametrize("name", sorted(problems.PROBLEMS))
def test_every_registered_problem_declares_its_settings(name):
    valid, var_kw = declared(problems.PROBLEMS[name])
    assert not var_kw, f"{name}: the factory takes **kwargs, so a misspelt setting passes validation"
    assert all(not s.required for s in valid.values()), "every setting has a default"


def test_spec_rejects_unknown_ill_typed_and_out_of_range_settings():
    errors = spec_errors({"widht": 7, "cells": "5", "n_energies": 0, "model_set": "TNN", "overlap_box": 2.0})
    assert "has no setting 'widht'" in errors["problems[0].settings.widht"]
    assert "width=7 (>= 1)" in errors["problems[0].settings.widht"]  # the valid ones listed, with ranges
    assert "must be an integer" in errors["problems[0].settings.cells"]
    assert "must be >= 1; got 0" in errors["problems[0].settings.n_energies"]
    assert "one of 'NN_generic'" in errors["problems[0].settings.model_set"]
    assert "in [0.0, 0.5]" in errors["problems[0].settings.overlap_box"]
    errors = spec_errors({"risk": "max", "cvar_alpha": 1.0}, "robust/agnr_doping")
    assert "one of 'mean'" in errors["problems[0].settings.risk"]
    assert "in [0.0, 1.0)" in errors["problems[0].settings.cvar_alpha"]
    errors = spec_errors({"fit_shells": 4}, "tb/graphene_fit")
    assert "in [1, 3]" in errors["problems[0].settings.fit_shells"]
    spec = CampaignSpec.from_dict({"seeds": [0], "budget": {"max_evals": 2}, "optimizers": ["random"],
                                   "problems": [{"name": "paper/agnr_doping", "settings": {"width": 9, "line": 4}}]})
    assert spec.units()[0].problem_settings == {"width": 9, "line": 4}


def test_factory_called_from_python_checks_the_same_way():
    with pytest.raises(ValueError, match=r"widht: unknown setting.*Valid settings: width=7"):
        agnr_doping(widht=7)
    with pytest.raises(ValueError, match=r"width: must be >= 1; got 0"):
        agnr_doping(width=0)
    with pytest.raises(ValueError, match=r"line must be a dimer line of the 7-AGNR, 0..6; got 7"):
        agnr_doping(line=7)  # was: IndexError 'site 14 out of range' from deep inside
    with pytest.raises(ValueError, match="e_min must be below e_max"):
        agnr_doping(e_min=1.0, e_max=-1.0)


def test_agnr_doping_with_a_nearest_neighbour_model():
    p = agnr_doping(model_set="NN_generic", cells=2, n_energies=5)  # was: KeyError 'overlap/C-C/0/pp_pi'
    assert p.space.dim == 3  # on-site, D-D and C-D hopping: the shells and overlaps the model lacks are frozen
    ev = p.evaluate_one(p.initial_point())
    assert not ev.failed and 0.0 < ev.value < 2.0


def test_list_settings_shows_problem_settings(capsys):
    assert main(["list", "--settings"]) == 0
    out = capsys.readouterr().out
    assert "width=7 (>= 1), cells=5 (>= 1)" in out
    assert "fit_shells=1 (in [1, 3])" in out
    assert "dim=5, condition=10.0" in out  # toy problems as before
