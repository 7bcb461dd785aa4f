"""Every orders message type has an example payload, and each example validates against its model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.envelope import decode, encode, envelope_for
from schemas.registry import model_for, types_of

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
ORDERS_TYPES = sorted(types_of("orders", "command") | types_of("orders", "event"))


def test_the_contracts_orders_types_all_exist():
    assert set(ORDERS_TYPES) == {
        "orders.order.place.v1", "orders.order.dispatch.v1", "orders.order.accept.v1", "orders.order.decline.v1",
        "orders.order.complete.v1", "orders.order.rate.v1", "orders.order.evaluate.v1", "orders.order.cancel.v1",
        "orders.member.register.v1", "orders.member.move.v1",
        "orders.post.claim.v1", "orders.post.release.v1",
        "orders.order.placed.v1", "orders.order.dispatched.v1", "orders.order.accepted.v1", "orders.order.declined.v1",
        "orders.order.dispatch_expired.v1", "orders.order.completed.v1", "orders.order.rated.v1",
        "orders.order.evaluated.v1",
        "orders.order.cancelled.v1", "orders.member.registered.v1", "orders.member.moved.v1", "orders.post.claimed.v1",
        "orders.post.released.v1",
        "orders.person.erase.v1", "orders.person.erased.v1",
    }


@pytest.mark.parametrize("message_type", ORDERS_TYPES)
def test_each_orders_type_has_an_example(message_type):
    assert (EXAMPLES / f"{message_type}.json").exists()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("orders.*.json")), ids=lambda p: p.name)
def test_each_example_validates_against_its_model_and_survives_the_envelope(path):
    message_type = path.name.removesuffix(".json")
    model = model_for(message_type)
    assert model is not None, f"no model for {message_type}"
    payload = model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    message = decode(encode(envelope_for(payload, source="/tests")))
    assert message.payload == payload and message.envelope.subject == payload.aggregate_id


REQUIRED = {
    "orders.order.placed.v1": {"order_id", "resident_id", "community_id", "grid_id", "category", "description", "source_case_id"},
    "orders.order.dispatched.v1": {"order_id", "assignee_id", "dispatched_by", "accept_by"},
    "orders.order.accepted.v1": {"order_id", "assignee_id"},
    "orders.order.declined.v1": {"order_id", "assignee_id", "reason"},
    "orders.order.dispatch_expired.v1": {"order_id", "assignee_id"},
    "orders.order.completed.v1": {"order_id", "assignee_id", "service_minutes"},
    "orders.order.rated.v1": {"order_id", "resident_id", "rating"},
    "orders.order.evaluated.v1": {"order_id", "assignee_id", "rating", "passed", "evaluator_id"},
    "orders.order.cancelled.v1": {"order_id", "reason"},
    "orders.member.registered.v1": {"member_id", "community_id", "unit_id"},
    "orders.post.claimed.v1": {"member_id", "post_id", "community_id", "categories"},
    "orders.post.released.v1": {"member_id", "post_id"},
}


@pytest.mark.parametrize("message_type", sorted(REQUIRED))
def test_events_require_exactly_the_contracts_fields(message_type):
    model = model_for(message_type)
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    assert required == REQUIRED[message_type]


def test_readers_ignore_fields_they_do_not_know():
    model = model_for("orders.order.accepted.v1")
    assert model.model_validate({"order_id": "o", "assignee_id": "m", "brand_new": 1}).order_id == "o"
