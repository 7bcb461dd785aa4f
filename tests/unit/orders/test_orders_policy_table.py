"""The orders policy table and the object checks behind it (services.orders.app.policy / access)."""
from __future__ import annotations

import pytest

from schemas.orders import AcceptOrder, EvaluateOrder, PlaceOrder, RateOrder, RegisterMember
from schemas.topics import ORDERS
from services.kit.identity import Principal, Scope
from services.kit.policy import Refused
from services.orders.app import access
from services.orders.app.policy import POLICY
from services.orders.domain import OrderState, OrderStatus

A, B = "110105001002", "110105001003"


def who(sub: str, *roles: str, communities=(), streets=()) -> Principal:
    return Principal(sub, frozenset(roles), Scope.of(communities=communities, streets=streets))


def order(**kw) -> OrderState:
    base = dict(order_id="o-1", status=OrderStatus.DISPATCHED, resident_id="res-1", community_id=A, grid_id=A + "001",
                category="repair", description="x", assignee_id="pm-1", declined_by=("pm-0",))
    return OrderState(**{**base, **kw})


def test_every_intake_command_has_a_grant_and_the_auditor_none():
    assert {cls.TYPE for cls in POLICY.commands} == set(ORDERS.intake.message_types)
    assert not any("auditor" in POLICY.roles_for(cls) for cls in POLICY.commands)


def test_actor_fields_are_filled_from_the_token_and_may_not_name_another():
    cmd = PlaceOrder(order_id="o", grid_id=A + "001", category="repair", description="x")
    assert POLICY.admit(cmd, who("res-1", "resident")).resident_id == "res-1"
    with pytest.raises(Refused) as e:
        POLICY.admit(cmd.model_copy(update={"resident_id": "res-2"}), who("res-1", "resident"))
    assert (e.value.reason, e.value.field) == ("forbidden", "resident_id")
    assert POLICY.admit(AcceptOrder(order_id="o"), who("pm-1", "party_member")).assignee_id == "pm-1"
    with pytest.raises(Refused):
        POLICY.admit(RegisterMember(member_id="m", community_id=B, unit_id="u"), who("off", "community_officer",
                                                                                     communities=[A]))


def test_the_object_checks_count_only_the_roles_that_are_granted():
    o = order()
    assert access.may_close(who("res-1", "resident"), o) and not access.may_close(who("res-2", "resident"), o)
    assert access.may_close(who("off", "street_officer", streets=[A[:9]]), o)
    assert not access.may_close(who("off", "community_officer", communities=[B]), o)
    # an auditor reads every order, but being one does not let a resident close another's order
    assert not access.may_close(who("res-2", "resident", "auditor"), o)
    assert not access.may_manage(who("res-1", "resident", "assessor"), o)
    assert access.may_serve(who("pm-1", "party_member"), o) and access.may_serve(who("pm-0", "party_member"), o)
    assert not access.may_serve(who("pm-2", "party_member"), o) and not access.may_serve(who("pm-1", "resident"), o)
    row = o.model_dump()
    assert access.may_read_order(who("x", "auditor"), row) and access.may_read_order(who("pm-1", "party_member"), row)
    assert not access.may_read_order(who("pm-0", "party_member"), row)  # no longer theirs
    assert not access.may_read_order(who("res-1", "party_member"), row)  # resident only as a resident


def test_the_resident_rates_and_only_officers_evaluate():
    assert POLICY.roles_for(RateOrder) == {"resident"}
    assert POLICY.roles_for(EvaluateOrder) == {"community_officer", "street_officer"}
    assert POLICY.admit(RateOrder(order_id="o", rating=5), who("res-1", "resident")).resident_id == "res-1"
    with pytest.raises(Refused) as e:
        POLICY.admit(RateOrder(order_id="o", rating=5, resident_id="res-2"), who("res-1", "resident"))
    assert (e.value.reason, e.value.field) == ("forbidden", "resident_id")
    for cmd in (EvaluateOrder(order_id="o", rating=5, passed=True), EvaluateOrder(order_id="o", passed=True)):
        with pytest.raises(Refused) as e:
            POLICY.admit(cmd, who("res-1", "resident"))
        assert e.value.reason == "forbidden"
    assert POLICY.admit(EvaluateOrder(order_id="o", passed=True),
                        who("cw-1", "community_officer", communities=[A])).evaluator_id == "cw-1"


def test_only_the_resident_who_placed_an_order_rates_it_and_only_its_officers_evaluate_it():
    o = order(status=OrderStatus.COMPLETED)
    assert access.placed_by(who("res-1", "resident"), o)
    assert not access.placed_by(who("res-2", "resident"), o)
    assert not access.placed_by(who("res-1", "party_member"), o)  # the resident's id, but not as a resident
    assert not access.placed_by(who("off", "community_officer", communities=[A]), o)
    assert access.may_manage(who("off", "community_officer", communities=[A]), o)
    assert not access.may_manage(who("res-1", "resident"), o)
    assert not access.may_manage(who("off", "community_officer", communities=[B]), o)
