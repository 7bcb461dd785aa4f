"""The sample district: same seed, same district; every code valid and known to the grid register."""
from __future__ import annotations

import dataclasses

from schemas.codes import GridCode
from schemas.codes import community_id_of as community_of, street_id_of as street_of
from services.simulator.district import BUILTIN_REGISTER, DEFAULT_REGISTER, generate, load_register


def _plain(d):
    return {k: v for k, v in dataclasses.asdict(d).items() if k != "_by_grid"}


def test_the_same_seed_gives_the_same_district():
    assert _plain(generate(11)) == _plain(generate(11))


def test_another_seed_gives_other_people_on_the_same_grids():
    a, b = generate(1), generate(2)
    assert [g.grid_id for g in a.grids] == [g.grid_id for g in b.grids]
    assert [m.name for m in a.members] != [m.name for m in b.members]


def test_every_grid_id_is_fifteen_ascii_digits_encoding_its_community_and_street():
    d = generate(3)
    assert d.division == "110105"
    for g in d.grids:
        code = GridCode.parse(g.grid_id)
        assert g.grid_id.isascii() and len(g.grid_id) == 15
        assert code.community_id == g.community_id == community_of(g.grid_id)
        assert code.street_id == g.street_id == street_of(g.grid_id)


def test_every_grid_is_in_the_grid_services_register_and_the_unknown_one_is_not():
    from services.grid.registry import GridRegister

    register = GridRegister.model_validate(load_register(DEFAULT_REGISTER))
    d = generate(5)
    assert {g.grid_id for g in d.grids} == set(register.grid_ids)
    assert d.unknown_grid_id() not in register


def test_the_builtin_layout_matches_the_grid_services_register():
    if DEFAULT_REGISTER.exists():
        assert load_register(DEFAULT_REGISTER) == BUILTIN_REGISTER | {"name": BUILTIN_REGISTER["name"]}
    assert len(generate(1, BUILTIN_REGISTER).grids) == 24


def test_people_live_in_the_district_and_every_order_category_has_a_post_in_every_community():
    d = generate(9)
    grid_ids = {g.grid_id for g in d.grids}
    assert {w.grid_id for w in d.grid_workers} == grid_ids  # one grid worker per grid
    assert all(r.grid_id in grid_ids and r.community_id == community_of(r.grid_id) for r in d.residents)
    unit_ids = {u.unit_id for u in d.units}
    all_categories = {"daily_care", "cleaning", "legal_aid", "culture_sports", "relief", "mediation", "repair",
                      "policy", "medical", "environment", "hygiene", "proxy"}
    for c in d.communities:
        members = d.members_of(c.community_id)
        assert members and all(m.unit_id in unit_ids for m in members)
        assert {cat for m in members for p in m.posts for cat in p.categories} == all_categories
        assert d.merchants_of(c.community_id)


def test_ids_are_unique():
    d = generate(4)
    ids = [p.person_id for p in (*d.residents, *d.grid_workers)] + [m.member_id for m in d.members] \
        + [m.merchant_id for m in d.merchants] + [u.unit_id for u in d.units] \
        + [p.post_id for m in d.members for p in m.posts]
    assert len(ids) == len(set(ids))


def test_accounts_follow_the_points_services_id_convention():
    from services.points.domain.accounts import account_id_for

    d = generate(4)
    m = d.merchants[0]
    assert m.account_id == account_id_for("merchant", m.merchant_id)
