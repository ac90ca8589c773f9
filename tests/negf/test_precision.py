"""No silent precision loss: single-precision energies or matrices are refused for a complex128 solve
(the error names the input and both fixes), accepted when dtype=torch.complex64 was asked for; the ribbon
helpers validate their inputs like Device does (shape, complex values, NaN) instead of casting."""

import numpy as np
import pytest
import torch

from invdesign.negf import Device, Lead, solve
from invdesign.negf.errors import NEGFInputError
from invdesign.tb.ribbons import armchair_ribbon_cell

LEAD = Lead([[0.0]], [[-1.0]])


def chain(dtype=torch.float64) -> Device:
    return Device([torch.tensor([[0.5]], dtype=dtype)], [], LEAD, LEAD)


def test_float32_energies_refused_naming_the_fix():
    with pytest.raises(NEGFInputError, match=r"energies is torch.float32.*dtype=torch.float64.*dtype=torch.complex64"):
        solve(chain(), torch.tensor([1.05]))
    with pytest.raises(NEGFInputError, match="energies is torch.float32"):
        solve(chain(), np.array([1.05], dtype=np.float32))
    with pytest.raises(NEGFInputError, match="energies is torch.complex64"):
        solve(chain(), torch.tensor([1.05 + 0j], dtype=torch.complex64))


@pytest.mark.parametrize("where", ["block", "lead", "overlap"])
def test_float32_matrices_refused_naming_the_input(where):
    f32 = torch.tensor([[0.5]], dtype=torch.float32)
    if where == "block":
        dev, name = chain(torch.float32), r"Device.blocks\[0\]"
    elif where == "lead":
        lead = Lead(torch.zeros(1, 1, dtype=torch.float32), [[-1.0]])
        dev, name = Device([[[0.5]]], [], LEAD, lead), "the right Lead.h00"
    else:
        dev, name = Device([[[0.5]]], [], LEAD, LEAD, overlap=([f32 * 0 + 1], [])), r"Device.overlap blocks\[0\]"
    with pytest.raises(NEGFInputError, match=name + r" is torch.float32.*dtype=torch.complex64"):
        solve(dev, [0.3])


def test_single_precision_when_asked_for():
    e64 = torch.tensor([1.05], dtype=torch.float64)
    exact = solve(chain(), e64).transmission()
    single = solve(chain(torch.float32), torch.tensor([1.05]), dtype=torch.complex64).transmission()
    assert single.dtype == torch.float32 and abs(float(single) - float(exact)) < 1e-5
    assert exact.dtype == torch.float64  # python floats / float64 tensors are the default path
    assert torch.equal(solve(chain(), [1.05]).transmission(), exact)


def test_ribbon_onsite_validated_like_device():
    cell = armchair_ribbon_cell(7)
    with pytest.raises(NEGFInputError, match=r"onsite is complex with \|Im\| up to 0.1 eV.*Hermitian"):
        cell.device(3, torch.full((3, 14), 0.1j, dtype=torch.complex128))  # was: Im dropped with a UserWarning
    with pytest.raises(NEGFInputError, match=r"onsite must have shape \(\.\.\., cells, orbitals per cell\) = \(\.\.\., 3, 14\)"):
        cell.device(3, torch.zeros(2, 14, dtype=torch.float64))  # was: a torch indexing/broadcast error
    with pytest.raises(NEGFInputError, match="onsite is torch.float32"):
        cell.device(3, torch.zeros(3, 14))
    with pytest.raises(NEGFInputError, match="NaN"):
        cell.device(3, np.full((3, 14), np.nan))
    with pytest.raises(NEGFInputError, match="cells must be a positive integer"):
        cell.device(0)
    u = np.linspace(0, 0.2, 42).reshape(3, 14)
    assert torch.allclose(cell.device(3, u + 0j).blocks[1], cell.device(3, u).blocks[1])  # Im = 0 is fine
    with pytest.raises(NEGFInputError, match="t must be a real number"):
        armchair_ribbon_cell(7, t=-2.7 + 0.1j)
    with pytest.raises(NEGFInputError, match="acc must be a finite positive number"):
        armchair_ribbon_cell(7, acc=0.0)
