"""Every public builder of ``tb.builders`` and ``tb.ribbons`` checks its arguments before any work.

Errors are ``TBInputError`` (a ``ValueError`` and an engine ``NEGFInputError``) naming the argument and
the allowed range; before, a width of 0 gave an empty structure, a float width a ``range`` TypeError,
``acc_nm = 0`` a cell of atoms on top of each other, and an (m, n) tube with m > n a "no atoms" error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invdesign.negf.errors import NEGFInputError
from invdesign.tb import builders, ribbons, tables
from invdesign.tb.arguments import TBInputError
from invdesign.tb.structure import Structure
from invdesign.tb.transport import wire

CASES = [  # (builder, kwargs, message regex)
    (builders.chain, dict(a_nm=0.0), r"a_nm must be a finite positive number \(nm\); got 0.0"),
    (builders.chain, dict(species=""), r"species must be a non-empty species name"),
    (builders.square_strip, dict(width=0), r"width must be >= 1; got 0"),
    (builders.square_strip, dict(width=2.5), r"width must be an integer >= 1; got float 2.5"),
    (builders.square_strip, dict(width=3, a_nm=-0.1), r"a_nm must be a finite positive number"),
    (builders.armchair_ribbon, dict(width=0), r"width must be >= 1; got 0"),
    (builders.armchair_ribbon, dict(width=True), r"width must be an integer >= 1; got bool True"),
    (builders.armchair_ribbon, dict(width=7, acc_nm=math.nan), r"acc_nm must be a finite positive number"),
    (builders.zigzag_ribbon, dict(width=-1), r"width must be >= 1; got -1"),
    (builders.zigzag_ribbon, dict(width=4, species=3), r"species must be a non-empty species name \(str\); got int"),
    (builders.ribbon_junction, dict(width_left=0, width_right=4, cells_left=2, cells_right=2), r"width_left must be >= 1"),
    (builders.ribbon_junction, dict(width_left=7, width_right=4, cells_left=2, cells_right=0), r"cells_right must be >= 1"),
    (builders.ribbon_junction, dict(width_left=7, width_right=4, cells_left=2, cells_right=2, row_offset=4),
     r"row_offset must be in \[0, 3\] for widths 7-4; got 4"),
    (builders.ribbon_junction, dict(width_left=7, width_right=4, cells_left=2, cells_right=2, row_offset=-1),
     r"row_offset must be >= 0; got -1"),
    (builders.graphene_sheet, dict(acc_nm=0.0), r"acc_nm must be a finite positive number"),
    (builders.nanotube, dict(n=0, m=0), r"n must be >= 1; got 0"),
    (builders.nanotube, dict(n=5, m=-1), r"m must be >= 0; got -1"),
    (builders.nanotube, dict(n=4, m=6), r"chirality \(n, m\) must satisfy 0 <= m <= n .*got \(4, 6\)"),
    (builders.nanotube, dict(n=6.0, m=0), r"n must be an integer >= 1; got float 6.0"),
    (builders.nanotube, dict(n=6, m=0, acc_nm=-1.0), r"acc_nm must be a finite positive number"),
    (builders.fcc_lattice, dict(a_nm=0.0), r"a_nm must be a finite positive number"),
    (builders.zincblende, dict(a_nm=0.56, anion="", cation="Ga"), r"anion must be a non-empty species name"),
    (builders.zincblende, dict(a_nm=math.inf, anion="As", cation="Ga"), r"a_nm must be a finite positive number"),
    (builders.diamond, dict(a_nm="0.54"), r"a_nm must be a real number \(nm\); got str '0.54'"),
    (ribbons.armchair_ribbon_cell, dict(width=0), r"width must be >= 1; got 0"),
    (ribbons.armchair_ribbon_cell, dict(width=7, t=-2.7 + 0.1j), r"t must be a real number \(eV\)"),
    (ribbons.armchair_ribbon_cell, dict(width=7, acc=0.0), r"acc must be a finite positive number \(nm\)"),
    (ribbons.zigzag_ribbon_cell, dict(width=1.0), r"width must be an integer >= 1"),
    (ribbons.zigzag_ribbon_cell, dict(width=4, t=math.inf), r"t must be a finite number \(eV\); got inf"),
    (ribbons.pz_model, dict(t=torch.tensor([1.0, 2.0])), r"t must be a real number \(eV\)"),
    (ribbons.periodic_cell, dict(structure="7-AGNR"), r"structure must be an invdesign.tb Structure; got str"),
    (ribbons.periodic_cell, dict(structure=builders.graphene_sheet()), r"structure must be periodic along \+x only"),
    (ribbons.periodic_cell, dict(structure=Structure([[0.0, 0, 0]], ("C",), [[0.0, 0.142, 0.0]])),
     r"structure must be periodic along \+x only"),
    (wire, dict(cell=builders.chain(), cells=0), r"cells must be >= 1; got 0"),
]


@pytest.mark.parametrize("builder, kwargs, message", CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_bad_arguments_are_named(builder, kwargs, message):
    with pytest.raises(TBInputError, match=message):
        builder(**kwargs)


def test_the_error_is_a_value_error_and_an_engine_input_error():
    assert issubclass(TBInputError, ValueError) and issubclass(TBInputError, NEGFInputError)


def test_good_arguments_of_other_numeric_types_are_accepted():
    """numpy integers and one-element real tensors are numbers too (campaign settings arrive as such)."""
    assert len(builders.armchair_ribbon(np.int64(7), torch.tensor(0.142))) == 14
    assert len(builders.nanotube(np.int32(5), 5)) == 20


def test_ribbon_cells_are_the_builders_structures_with_the_tables_model():
    """``armchair_ribbon_cell(N)`` is ``builders.armchair_ribbon(N)`` (same atoms) with
    ``tables.graphene_pz("NN_generic")``; another hopping only rescales the blocks."""
    cell = ribbons.armchair_ribbon_cell(7)
    assert np.allclose(cell.positions, builders.armchair_ribbon(7).positions.numpy(), atol=0)
    table = tables.graphene_pz("NN_generic")
    assert ribbons.pz_model() == table and ribbons.T_EV == table.named_parameters()[ribbons.HOPPING]
    other = ribbons.armchair_ribbon_cell(7, t=-3.0)
    torch.testing.assert_close(other.h01, cell.h01 * (-3.0 / -2.7), rtol=1e-15, atol=0)
    assert ribbons.pz_model(-3.0).name == "graphene_pz/NN_generic t=-3.0"

