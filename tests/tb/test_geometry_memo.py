"""Neighbour shells and bond masks are remembered by geometry value: equal geometries reuse, any
change of positions, species or shells is a new entry (never stale)."""

import dataclasses

import torch

from invdesign.tb import builders, hamiltonian, tables


def blocks(model, cell):
    return hamiltonian.coupling_blocks(model, cell, cell, onsite=True)[0], hamiltonian.bond_mask(model, cell, cell, onsite=True)


def test_memo_reuses_equal_geometry_and_never_returns_a_stale_one():
    model = tables.graphene_pz("TNN_Reich2002")
    cell = builders.armchair_ribbon(7)
    hamiltonian._shell_group_memo.clear()
    h1, m1 = blocks(model, cell)
    entries = len(hamiltonian._shell_group_memo)
    h2, m2 = blocks(model, dataclasses.replace(cell, positions=cell.positions.clone()))
    assert len(hamiltonian._shell_group_memo) == entries  # equal values: reused
    assert torch.equal(h1, h2) and torch.equal(m1, m2)
    m2[:] = False  # the caller's copy, not the memo's
    assert torch.equal(blocks(model, cell)[1], m1)
    # move one atom by 0.03 nm (20 % of a bond): its bonds leave their shell windows
    moved = cell.positions.clone()
    moved[0, 1] += 0.03
    stretched = dataclasses.replace(cell, positions=moved)
    h3, m3 = blocks(model, stretched)
    hamiltonian._shell_group_memo.clear()
    h3_fresh, m3_fresh = blocks(model, stretched)
    assert torch.equal(h3, h3_fresh) and torch.equal(m3, m3_fresh)
    assert not torch.equal(m3, m1)
    # another species at one site is another key
    doped = cell.with_species([3], "C")  # same name: same geometry key, same answer
    assert torch.equal(blocks(model, doped)[0], h1)
