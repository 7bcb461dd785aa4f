"""Provenance, in the kit's consumer: a record on another service's events topic is handled
only if its ``source`` is that service's (``/services/<svc>``) and its time is within
``max_event_skew`` of its record's timestamp; any other is dead-lettered (``untrusted_source``,
``implausible_time``), whatever its type, and the partition moves on."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import CONTENT_TYPE, encode, envelope_for
from schemas.orders import OrderEvaluated
from schemas.topics import GRID, ORDERS
from services.kit.handlers import Handler, handles
from services.kit.uow import UnitOfWork
from tests.support.kafka import produce

from .support import Pipeline

pytestmark = pytest.mark.integration

SEEN: list[str] = []


class Reactions(Handler):
    """grid reacting to orders' evaluations (as a test: grid reads no events)."""

    service = "grid"

    @handles(OrderEvaluated)
    async def evaluated(self, uow: UnitOfWork, e: OrderEvaluated) -> None:
        SEEN.append(uow.message.id)  # type: ignore[union-attr]


def evaluated() -> OrderEvaluated:
    return OrderEvaluated(order_id=str(uuid.uuid4()), assignee_id="member-1", rating=5, passed=True,
                          evaluator_id="operator-3", community_id="110105001002", grid_id="110105001002003",
                          category="daily_care", service_minutes=60)


def raw(type_: str, source: str, id: str) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": id, "source": source, "type": type_, "subject": "o-1",
                         "time": datetime.now(timezone.utc).isoformat(), "data": {}})


async def dead_letters(kafka: str, n: int) -> dict[str, dict[str, str]]:
    c = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False, group_id=None)
    await c.start()
    try:
        tps = [TopicPartition(GRID.dlq.name, p) for p in sorted(c.partitions_for_topic(GRID.dlq.name) or {0})]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: dict[str, dict[str, str]] = {}
        for _ in range(100):
            for recs in (await c.getmany(timeout_ms=200)).values():
                for r in recs:
                    out[orjson.loads(r.value)["id"]] = {k: v.decode() for k, v in r.headers}
            if len(out) >= n:
                break
        return out
    finally:
        await c.stop()


async def test_only_the_owner_s_events_are_handled_and_the_rest_dead_lettered(kafka, pool):
    SEEN.clear()
    payload = evaluated()
    good = envelope_for(payload, source="/services/orders", id="good")
    forged = [envelope_for(payload, source=s, id=f"forged-{n}") for n, s in enumerate(
        ("/users/x", "/services/points", "/services/orders/", "/services/ORDERS", "/services/grid", "/tests"))]
    now = datetime.now(timezone.utc)
    backdated = envelope_for(payload, source="/services/orders", id="backdated", time=now - timedelta(days=31))
    ahead = envelope_for(payload, source="/services/orders", id="ahead", time=now + timedelta(minutes=10))
    within = envelope_for(payload, source="/services/orders", id="within", time=now - timedelta(seconds=200))
    stamped = envelope_for(payload, source="/services/orders", id="stamped", time=now - timedelta(days=31))
    records = [(e.subject, encode(e)) for e in (*forged, backdated, ahead, within, good)]
    # a type grid does not react to: skipped when its owner's, dead-lettered when forged
    records += [("o-1", raw("orders.order.placed.v1", "/services/orders", "ignored")),
                ("o-1", raw("orders.order.placed.v1", "/users/x", "forged-ignored")),
                (stamped.subject, encode(stamped), [("content-type", CONTENT_TYPE.encode())],
                 round(stamped.time.timestamp() * 1000))]  # dated as its record is: a relay's backlog
    await produce(kafka, ORDERS.events.name, records)
    async with Pipeline(kafka, pool, handler=Reactions(), topics=[ORDERS.events], max_event_skew=300) as p:
        await p.wait_processed(len(records))
        dlq = await dead_letters(kafka, len(forged) + 3)
    assert sorted(SEEN) == ["good", "stamped", "within"]
    expected = {e.id: "untrusted_source" for e in forged} | {
        "forged-ignored": "untrusted_source", "backdated": "implausible_time", "ahead": "implausible_time"}
    assert {i: h["dlq.error.reason"] for i, h in dlq.items()} == expected
    assert "'/users/x' is not '/services/orders'" in dlq["forged-0"]["dlq.error.message"]
    assert all(h["dlq.origin.topic"] == ORDERS.events.name for h in dlq.values())
    inbox = {r[0] for r in await pool.fetch("SELECT id FROM inbox")}
    assert inbox.isdisjoint(expected)  # a refused record leaves nothing behind


async def test_a_zero_skew_leaves_the_time_unchecked(kafka, pool):
    SEEN.clear()
    old = envelope_for(evaluated(), source="/services/orders", id="old",
                       time=datetime.now(timezone.utc) - timedelta(days=400))
    await produce(kafka, ORDERS.events.name, [(old.subject, encode(old))])
    async with Pipeline(kafka, pool, handler=Reactions(), topics=[ORDERS.events], max_event_skew=0) as p:
        await p.wait_processed(1)
    assert SEEN == ["old"]
