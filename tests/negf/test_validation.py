"""Malformed inputs raise invdesign.negf.NEGFInputError with a message naming the input and the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invdesign.negf import (
    Device,
    Lead,
    NEGFInputError,
    current,
    open_channels,
    self_energy,
    solve,
    surface_green_function,
    surface_green_function_sancho_unrolled,
    transmission,
)

I2 = np.eye(2)
HOP2 = np.array([[1.0, 0.3j], [0.2, 0.9]])


def lead2(**kw):
    return Lead(np.diag([0.1, -0.1]), HOP2, **kw)


def chain_lead():
    return Lead([[0.0]], [[1.0]])


def good_device():
    return Device([np.diag([0.2, -0.3]), np.diag([0.0, 0.1])], [0.5 * I2], lead2(), lead2())


def raises(fragments, fn):
    """``fn()`` raises NEGFInputError whose message contains every fragment (case-insensitive)."""
    with pytest.raises(NEGFInputError) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    return message


# ----------------------------------------------------------------------------- Device structure
def test_non_square_block():
    raises(["blocks[1]", "square", "(2, 3)"],
           lambda: Device([I2, np.zeros((2, 3))], [np.zeros((2, 2))], lead2(), lead2()))


def test_non_square_first_block():
    raises(["blocks[0]", "square"], lambda: Device([np.zeros((3, 2))], [], lead2(), lead2()))


def test_couplings_that_do_not_chain():
    msg = raises(["couplings[1]", "chain"],
                 lambda: Device([I2, np.eye(3), I2], [np.ones((2, 3)), np.ones((2, 2))], lead2(), lead2()))
    assert "(3, 2)" in msg  # what blocks 1 and 2 need


def test_coupling_transposed():
    raises(["couplings[0]", "(2, 3)"], lambda: Device([I2, np.eye(3)], [np.ones((3, 2))], lead2(), Lead(np.eye(3), np.eye(3))))


@pytest.mark.parametrize("n_couplings", [0, 2, 3])
def test_wrong_number_of_couplings(n_couplings):
    raises(["2 blocks", "1 coupling", f"got {n_couplings}"],
           lambda: Device([I2, I2], [0.5 * I2] * n_couplings, lead2(), lead2()))


def test_no_blocks():
    raises(["at least one block"], lambda: Device([], [], lead2(), lead2()))


def test_non_hermitian_block_beyond_tolerance():
    bad = np.array([[0.0, 1.0], [1.0 + 1e-6, 0.0]])
    raises(["blocks[1]", "not Hermitian"], lambda: Device([I2, bad], [0.5 * I2], lead2(), lead2()))


def test_non_hermitian_complex_block():
    bad = np.array([[0.0, 1j], [1j, 0.0]])  # symmetric, not Hermitian
    raises(["blocks[0]", "not Hermitian"], lambda: Device([bad], [], lead2(), lead2()))


def test_hermiticity_tolerance_is_relative_and_adjustable():
    nearly = np.array([[0.0, 1.0], [1.0 + 1e-10, 0.0]])
    Device([nearly], [], lead2(), lead2())  # within the default tolerance: accepted
    big = 1e4 * np.array([[0.0, 1.0], [1.0 + 1e-11, 0.0]])  # 1e-7 absolute, 1e-11 relative: accepted
    Device([big], [], lead2(), lead2())
    raises(["blocks[0]", "not Hermitian"], lambda: Device([nearly], [], lead2(), lead2(), hermitian_atol=1e-12))


def test_single_2d_array_instead_of_list_of_blocks():
    for blocks in (np.eye(2), torch.eye(2, dtype=torch.float64)):
        raises(["Device.blocks", "list"], lambda: Device(blocks, [], lead2(), lead2()))


def test_blocks_as_plain_nested_list_names_the_block():
    raises(["blocks[0]", "matrix"], lambda: Device([[0.0, 1.0], [1.0, 0.0]], [], lead2(), lead2()))


def test_scalar_and_missing_blocks():
    raises(["blocks[0]", "matrix"], lambda: Device([1.0], [], chain_lead(), chain_lead()))
    raises(["blocks[0]", "missing"], lambda: Device([None], [], chain_lead(), chain_lead()))


def test_leads_must_be_lead_objects():
    raises(["Device.left", "Lead"], lambda: Device([I2], [], "left", lead2()))


# ----------------------------------------------------------------------------- NaN / inf in matrices
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_device_block(bad):
    m = np.diag([0.0, bad])
    raises(["blocks[1]", "NaN or infinite"], lambda: Device([I2, m], [0.5 * I2], lead2(), lead2()))


def test_nan_in_a_device_coupling():
    c = np.array([[0.5, np.nan], [0.0, 0.5]])
    raises(["couplings[0]", "NaN"], lambda: Device([I2, I2], [c], lead2(), lead2()))


@pytest.mark.parametrize("field", ["h00", "h01", "coupling"])
def test_nan_in_a_lead_matrix(field):
    kw = {"h00": np.diag([0.1, -0.1]), "h01": HOP2}
    kw[field] = np.array([[np.nan, 0.0], [0.0, 1.0]])
    raises([f"Lead.{field}", "NaN"], lambda: Lead(**kw))


def test_nan_in_a_torch_tensor_that_requires_grad():
    m = torch.tensor([[0.0, float("nan")], [float("nan"), 0.0]], requires_grad=True)
    raises(["blocks[0]", "NaN"], lambda: Device([m], [], lead2(), lead2()))


def test_nan_in_an_overlap_block():
    raises(["overlap blocks[0]", "NaN"],
           lambda: Device([I2], [], lead2(), lead2(), overlap=([np.full((2, 2), np.nan)], [])))


def test_nan_in_the_full_matrix_of_from_matrix():
    h = np.zeros((3, 3))
    h[1, 2] = h[2, 1] = np.nan
    raises(["from_matrix h", "NaN"], lambda: Device.from_matrix(h, chain_lead(), chain_lead(), [0], [2]))


def test_matrix_of_strings():
    raises(["Lead.h00"], lambda: Lead([["a", "b"], ["c", "d"]], HOP2))


def test_ragged_nested_list():
    raises(["Lead.h00"], lambda: Lead([[0.0, 1.0], [1.0]], HOP2))


# ----------------------------------------------------------------------------- leads
def test_lead_h00_not_square():
    raises(["Lead.h00", "square"], lambda: Lead(np.zeros((2, 3)), HOP2))


def test_lead_h01_size_differs_from_h00():
    raises(["Lead.h01", "2 x 2", "(3, 3)"], lambda: Lead(np.diag([0.1, -0.1]), np.eye(3)))


def test_lead_h00_not_hermitian():
    raises(["Lead.h00", "not Hermitian"], lambda: Lead(np.array([[0.0, 1.0], [0.5, 0.0]]), HOP2))


def test_lead_coupling_with_wrong_number_of_rows():
    raises(["Lead.coupling", "2 rows", "(3, 2)"], lambda: lead2(coupling=np.ones((3, 2))))


def test_lead_coupling_columns_do_not_match_the_edge_slice():
    left = lead2(coupling=np.ones((2, 3)))  # 3 columns, but the first slice has 2 orbitals
    msg = raises(["left lead", "coupling", "(2, 3)", "2 orbitals"], lambda: Device([I2], [], left, lead2()))
    assert "(2, 2)" in msg  # the expected shape


def test_right_lead_coupling_does_not_match_the_last_slice():
    right = lead2(coupling=np.ones((2, 2)))
    raises(["right lead", "coupling", "3 orbitals"],
           lambda: Device([I2, np.eye(3)], [np.ones((2, 3))], lead2(), right))


def test_lead_of_different_size_than_edge_slice_without_coupling():
    msg = raises(["right lead", "3 orbitals", "2"],
                 lambda: Device([I2, np.eye(3)], [np.ones((2, 3))], lead2(), lead2()))
    assert "coupling" in msg and "(2, 3)" in msg  # tells what to give
    raises(["left lead", "1 orbitals"], lambda: Device([[[0.0]]], [], lead2(), chain_lead()))


def test_overlap_lead_with_explicit_coupling_needs_s_coupling():
    raises(["s_coupling"], lambda: lead2(coupling=np.ones((2, 2)), s00=I2, s01=0.1 * I2))


def test_overlap_lead_needs_both_s00_and_s01():
    raises(["s00", "s01"], lambda: lead2(s00=I2))
    raises(["s00", "s01"], lambda: lead2(s01=0.1 * I2))


def test_s_coupling_without_coupling():
    raises(["s_coupling", "without", "coupling"], lambda: lead2(s_coupling=np.ones((2, 2))))


def test_s_coupling_shape_differs_from_coupling():
    raises(["s_coupling", "(2, 2)", "(2, 3)"],
           lambda: lead2(coupling=np.ones((2, 3)), s00=I2, s01=0.1 * I2, s_coupling=np.ones((2, 2))))


def test_overlap_leads_need_an_overlap_device():
    raises(["overlap"], lambda: Device([I2], [], lead2(s00=I2, s01=0.1 * I2), lead2()))


def test_device_overlap_structure():
    raises(["overlap", "pair"], lambda: Device([I2], [], lead2(), lead2(), overlap=([I2], [], [])))
    raises(["overlap", "as many"], lambda: Device([I2, I2], [0.5 * I2], lead2(), lead2(), overlap=([I2], [])))
    raises(["overlap blocks[0]", "2 x 2"], lambda: Device([I2], [], lead2(), lead2(), overlap=([np.eye(3)], [])))
    raises(["overlap blocks[0]", "not Hermitian"],
           lambda: Device([I2], [], lead2(), lead2(), overlap=([np.array([[1.0, 0.5], [0.0, 1.0]])], [])))
    raises(["overlap couplings[0]", "(2, 2)"],
           lambda: Device([I2, I2], [0.5 * I2], lead2(), lead2(), overlap=([I2, I2], [np.ones((2, 3))])))


# ----------------------------------------------------------------------------- energies
@pytest.mark.parametrize("call", ["solve", "surface_green_function", "self_energy", "transmission"])
@pytest.mark.parametrize(
    "energies, fragments",
    [
        (np.zeros((2, 3)), ["energies", "1-D", "(2, 3)"]),
        (torch.zeros(2, 3, dtype=torch.float64), ["energies", "1-D", "(2, 3)"]),
        ([0.1, float("nan")], ["energies", "NaN"]),
        (torch.tensor([float("inf")], dtype=torch.float64), ["energies", "infinite"]),
        ([0.1 + 0.01j, 0.2 - 1e-6j], ["Im(E) >= 0"]),
        (torch.tensor([0.3 - 0.1j]), ["Im(E) >= 0"]),
        ("0.5", ["energies", "numbers"]),
        (["0.1", "0.2"], ["energies", "numbers"]),
        (None, ["energies", "numbers"]),
        ([], ["energies", "empty"]),
    ],
    ids=["2d-numpy", "2d-torch", "nan", "inf", "negative-imag", "negative-imag-torch", "string",
         "list-of-strings", "none", "empty"],
)
def test_bad_energies(call, energies, fragments):
    dev, lead = good_device(), lead2()
    fn = {
        "solve": lambda: solve(dev, energies),
        "surface_green_function": lambda: surface_green_function(lead, energies),
        "self_energy": lambda: self_energy(lead, energies),
        "transmission": lambda: transmission(dev, energies),
    }[call]
    raises(fragments, fn)


def test_open_channels_needs_real_energies():
    raises(["real energies"], lambda: open_channels(lead2(), [0.1 + 0.01j]))
    raises(["Im(E) >= 0"], lambda: open_channels(lead2(), [0.1 - 0.01j]))


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize("method", ["foo", "Modes", "decimation", ""])
def test_unknown_method_name(method):
    dev, lead = good_device(), lead2()
    for fn in (
        lambda: solve(dev, 0.1, method=method),
        lambda: transmission(dev, 0.1, method=method),
        lambda: surface_green_function(lead, 0.1, method=method),
        lambda: self_energy(lead, 0.1, method=method),
    ):
        msg = raises(["method", repr(method)], fn)
        assert "modes" in msg and "sancho" in msg  # lists the valid choices


@pytest.mark.parametrize("eta", [-1e-3, -1.0])
def test_negative_eta(eta):
    dev, lead = good_device(), lead2()
    for fn in (
        lambda: solve(dev, 0.1, eta=eta),
        lambda: surface_green_function(lead, 0.1, eta=eta),
        lambda: self_energy(lead, 0.1, eta=eta),
        lambda: surface_green_function_sancho_unrolled(lead, 0.1, eta=eta),
    ):
        raises(["eta", ">= 0", str(eta)], fn)


@pytest.mark.parametrize("eta", [float("nan"), float("inf")])
def test_non_finite_eta(eta):
    dev, lead = good_device(), lead2()
    raises(["eta"], lambda: solve(dev, 0.1, eta=eta))
    raises(["eta"], lambda: surface_green_function(lead, 0.1, eta=eta))


def test_bad_dtype():
    raises(["dtype", "complex128"], lambda: solve(good_device(), 0.1, dtype=torch.float64))


def test_solve_needs_a_device():
    raises(["Device", "str"], lambda: solve("device", 0.1))


def test_current_input_checks():
    dev = Device([[[0.0]]], [], chain_lead(), chain_lead())
    raises(["bias", "single"], lambda: current(dev, [0.1, 0.2], 300.0))
    raises(["temperature", "-1"], lambda: current(dev, 0.1, -1.0))


# ----------------------------------------------------------------------------- Device.from_matrix
def test_from_matrix_orbital_lists():
    h = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    lead = chain_lead()
    raises(["left_orbitals", "[0, 3)", "[5]"], lambda: Device.from_matrix(h, lead, lead, [5], [2]))
    raises(["right_orbitals", "distinct"], lambda: Device.from_matrix(h, lead, lead, [0], [2, 2]))
    raises(["left_orbitals", "empty"], lambda: Device.from_matrix(h, lead, lead, [], [2]))
    raises(["from_matrix h", "square"], lambda: Device.from_matrix(np.zeros((3, 2)), lead, lead, [0], [1]))


def test_from_matrix_non_hermitian_inside_a_slice():
    h = np.array([[0.0, 1.0, 0.0], [1.0, 1j, 1.0], [0.0, 1.0, 0.0]], dtype=complex)  # slices {0}, {1}, {2}
    raises(["from_matrix h", "not Hermitian", "at entry"], lambda: Device.from_matrix(h, chain_lead(), chain_lead(), [0], [2]))


def test_from_matrix_non_hermitian_between_slices():
    """H = [[0, 1], [2, 0]] is not Hermitian; its non-Hermitian part lies between the two slices."""
    h = np.array([[0.0, 1.0], [2.0, 0.0]])
    raises(["not Hermitian"], lambda: Device.from_matrix(h, chain_lead(), chain_lead(), [0], [1]))
