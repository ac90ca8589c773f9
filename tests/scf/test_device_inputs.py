"""FETDevice refuses non-finite doping, temperature and potentials up front (was: a failure inside scipy)."""

import dataclasses

import numpy as np
import pytest
import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.scf import FETDevice, screened_1d
from invdesign.scf.modespace import effective_mass_chain


def _fet(**changes) -> FETDevice:
    device, pos = effective_mass_chain(6, 0.25, 0.19)
    x = pos[:, 0]
    grid = screened_1d(np.concatenate([[x[0] - 0.25], x, [x[-1] + 0.25]]), [("gate", x[0], x[-1], 30.0)], 0.5)
    doping = torch.tensor([1e-2, 5e-3, 0.0, 0.0, 5e-3, 1e-2], dtype=torch.float64)
    fet = FETDevice(device, pos, grid, doping, 300.0, gates={"gate": 0.05}, reference=0.0, contact_doping=(1e-2, 1e-2))
    return dataclasses.replace(fet, **changes) if changes else fet


@pytest.mark.parametrize("changes, match", [
    ({"temperature_k": float("nan")}, "temperature_k must be a finite number > 0"),
    ({"temperature_k": -5.0}, "temperature_k must be a finite number > 0"),
    ({"doping": torch.tensor([1e-2, float("nan"), 0, 0, 0, 0], dtype=torch.float64)}, r"doping contains NaN.*\[1\]"),
    ({"gates": {"gate": float("inf")}}, r"gates\['gate'\] must be a finite number"),
    ({"mu_ev": float("nan")}, "mu_ev must be a finite number"),
    ({"contact_doping": (1e-2, float("nan"))}, r"contact_doping\[1\] must be a finite number"),
])
def test_non_finite_inputs_refused(changes, match):
    _fet()  # the good one builds
    with pytest.raises(NEGFInputError, match=match):
        _fet(**changes)
