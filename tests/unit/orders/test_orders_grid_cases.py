"""A registered resident-need grid case becomes exactly one order."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from orders_builders import COMMUNITY, GRID, ctx
from schemas.grid import CaseRegistered
from schemas.orders import OrderCategory
from services.orders.domain import UnusableGridCase, decide, evolve_all, order_from_grid_case, order_id_for_case

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"


def data(**over) -> dict:
    d = {
        "case_id": "110105001002003-20261122-0007", "due_at": "2026-11-22T08:30:00+08:00", "department": "社区居委会",
        "grid_id": GRID, "community_id": COMMUNITY, "category": "resident_need", "description": "老人行动不便，需代办医保报销",
        "reporter": {"kind": "resident", "id": "resident-42"},
    }
    return d | over


def case(**over) -> CaseRegistered:
    return CaseRegistered.model_validate(data(**over))


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
    assert order_from_grid_case(case()) == order_from_grid_case(CaseRegistered.model_validate_json(json.dumps(data())))


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


def test_a_resident_need_is_a_proxy_order_whatever_else_the_data_carries():
    # fields the contract does not declare are not read (readers ignore them)
    assert order_from_grid_case(case(order_category="medical")).category is OrderCategory.PROXY


def test_a_need_a_grid_worker_took_down_is_ordered_for_the_grid_worker():
    assert order_from_grid_case(case(reporter={"kind": "grid_worker", "id": "gw-1"})).resident_id == "gw-1"
    assert order_from_grid_case(case(resident_id="resident-7")).resident_id == "resident-42"


def test_community_is_derived_when_the_case_does_not_carry_it():
    state = evolve_all(None, decide(None, order_from_grid_case(case(community_id=None)), ctx()))
    assert state.community_id == COMMUNITY


def test_a_missing_description_becomes_empty():
    assert order_from_grid_case(case(description=None)).description == ""


@pytest.mark.parametrize("broken", [dict(reporter=None), dict(grid_id=None)])
def test_a_resident_need_case_that_cannot_become_an_order_is_reported_as_unusable(broken):
    with pytest.raises(UnusableGridCase):
        order_from_grid_case(case(**broken))


def test_the_grid_services_registered_example_maps_when_it_is_a_resident_need():
    path = EXAMPLES / "grid.case.registered.v1.json"
    example = json.loads(path.read_text()) | {"category": "resident_need"}
    cmd = order_from_grid_case(CaseRegistered.model_validate(example))
    assert cmd.source_case_id == example["case_id"] and cmd.resident_id == example["reporter"]["id"]
