"""The committed Wannier90 example: the files equal what our tools write from Vogl 1983 Si sp3s*, and
the problem built on them evaluates with a gradient that matches finite differences."""

import torch

from invdesign.designs import load_design
from invdesign.tb import builders, read_wannier90, tables
from invdesign.tb.wannier90 import from_tb
from problems.wannier_si import MODEL_SEED, wannier_si_filter


def test_committed_model_is_vogl_1983_si():
    model = tables.vogl_sp3s("Si")
    ours = from_tb(model, builders.zincblende(tables.lattice_constant_nm(model.name), *sorted(model.species)))
    read = read_wannier90(MODEL_SEED)
    assert (read.R == ours.R).all()
    assert torch.allclose(read.h, ours.h, rtol=0, atol=1e-12)
    assert torch.allclose(read.lattice_nm, ours.lattice_nm, rtol=0, atol=1e-12)


def test_filter_problem_gradient_and_committed_design():
    problem = wannier_si_filter()
    problem.grad_cost_factor = 2.0  # skip the cost measurement (8 extra solves)
    z = torch.tensor([0.1, -0.2, 0.05, 0.2, -0.1, 0.0], dtype=torch.float64)
    ev = problem.evaluate_one(z, need_grad=True)
    h = 1e-5
    e = torch.zeros(6, dtype=torch.float64)
    e[1] = h
    fd = (problem.evaluate_one(z + e).value - problem.evaluate_one(z - e).value) / (2 * h)
    assert abs(ev.grad[1] - fd) < 1e-6 * max(1.0, abs(fd))
    design = MODEL_SEED.parents[1] / "campaign" / "designs" / "si_filter__lbfgs__s1.json"
    assert problem.evaluate_one(load_design(problem, design)).value < 0.5
