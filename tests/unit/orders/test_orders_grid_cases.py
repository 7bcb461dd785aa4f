"""A registered resident-need grid case becomes exactly one order."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from orders_builders import COMMUNITY, GRID, ctx
from services.orders.domain import (
    OrderCategory,
    UnusableGridCase,
    decide,
    evolve_all,
    order_from_grid_case,
    order_id_for_case,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"


def case(**over) -> dict:
    data = {
        "case_id": "110105001002003-20261122-0007", "due_at": "2026-11-22T08:30:00+08:00", "department": "社区居委会",
        "grid_id": GRID, "community_id": COMMUNITY, "category": "resident_need", "description": "老人行动不便，需代办医保报销",
        "reporter": {"kind": "resident", "id": "resident-42"},
    }
    return data | over


def test_a_resident_need_case_maps_to_a_proxy_order_for_the_reporting_resident():
    cmd = order_from_grid_case(case())
    assert cmd.category is OrderCategory.PROXY
    assert (cmd.resident_id, cmd.grid_id, cmd.community_id) == ("resident-42", GRID, COMMUNITY)
    assert cmd.source_case_id == "110105001002003-20261122-0007"
    assert cmd.description == "老人行动不便，需代办医保报销"


def test_the_order_id_is_a_uuid5_of_the_case_id():
    cmd = order_from_grid_case(case())
    assert cmd.order_id == order_id_for_case("110105001002003-20261122-0007")
    assert uuid.UUID(cmd.order_id).version == 5
    assert order_id_for_case("case-a") != order_id_for_case("case-b")


def test_the_same_case_always_maps_to_the_same_command():
    assert order_from_grid_case(case()) == order_from_grid_case(json.loads(json.dumps(case())))


def test_a_duplicated_grid_event_places_exactly_one_order():
    state, placed_events = None, []
    for delivery in range(3):
        events = decide(state, order_from_grid_case(case()), ctx(delivery))
        placed_events += events
        state = evolve_all(state, events)
    assert len(placed_events) == 1 and state.source_case_id == "110105001002003-20261122-0007"


@pytest.mark.parametrize("category", ["hazard.fire", "environment", "other", None])
def test_other_grid_cases_make_no_order(category):
    assert order_from_grid_case(case(category=category)) is None


def test_the_case_may_name_the_order_category():
    assert order_from_grid_case(case(order_category="medical")).category is OrderCategory.MEDICAL


def test_an_unknown_order_category_falls_back_to_proxy():
    assert order_from_grid_case(case(order_category="gardening")).category is OrderCategory.PROXY


def test_a_named_resident_wins_over_the_grid_worker_who_reported():
    data = case(reporter={"kind": "grid_worker", "id": "gw-1"})
    assert order_from_grid_case(data).resident_id == "gw-1"
    assert order_from_grid_case(data | {"resident_id": "resident-7"}).resident_id == "resident-7"


def test_community_is_derived_when_the_case_does_not_carry_it():
    data = case()
    del data["community_id"]
    state = evolve_all(None, decide(None, order_from_grid_case(data), ctx()))
    assert state.community_id == COMMUNITY


def test_a_missing_description_becomes_empty():
    assert order_from_grid_case(case(description=None)).description == ""


@pytest.mark.parametrize("broken", [dict(reporter=None), dict(grid_id="12345"), dict(case_id=None)])
def test_a_resident_need_case_that_cannot_become_an_order_is_reported_as_unusable(broken):
    with pytest.raises(UnusableGridCase):
        order_from_grid_case(case(**broken))


def test_the_grid_services_registered_example_maps_when_it_is_a_resident_need():
    path = EXAMPLES / "grid.case.registered.v1.json"
    data = json.loads(path.read_text()) | {"category": "resident_need"}
    cmd = order_from_grid_case(data)
    assert cmd.source_case_id == data["case_id"] and cmd.resident_id == data["reporter"]["id"]
