"""Provenance of events, for every consumer of another service's events topic (points reads
grid and orders, orders reads grid, assessment reads grid, orders and points): a record on
``<svc>.events.v1`` is believed only if its ``source`` is ``/services/<svc>``. A forged one,
whatever ``source`` it names, is dead-lettered (``untrusted_source``) and changes nothing; the
same event from its owner is taken. An event dated further from its record's timestamp than
``EVENT_TIME_MAX_SKEW_SECONDS`` (the envelope ``time``, or the payload's occurrence time
where the consumer dates by it, as assessment does) is dead-lettered ``implausible_time``.

The three workers run as real processes on one broker and one database (each in its schema).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from schemas.envelope import encode, envelope_for
from schemas.grid import CaseRegistered, CaseReported, Location, Reporter
from schemas.orders import OrderEvaluated
from schemas.points import AccountOpened
from tests.support.kafka import produce, read_all
from tests.support.procs import Worker

pytestmark = pytest.mark.integration

SKEW = 300


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def evaluated(tag: str) -> OrderEvaluated:
    community = "110105001002"
    return OrderEvaluated(order_id=uid(f"order-{tag}"), assignee_id=f"member-{tag}", rating=5, passed=True,
                          evaluator_id="operator-3", community_id=community, grid_id=community + "003",
                          category="daily_care", service_minutes=60)


def reported(tag: str, at: datetime | None = None) -> CaseReported:
    return CaseReported(case_id=f"case-{tag}", grid_id="110105001002003", category="hazard.fire", grade="general",
                        description="楼道堆放纸箱", location=Location(lat=39.92, lon=116.44, address="金台里3号楼"),
                        reporter=Reporter(kind="resident", id=f"resident-{tag}"), occurred_at=at)


def registered(tag: str) -> CaseRegistered:
    grid = "110105001002003"
    now = datetime.now(timezone.utc)
    return CaseRegistered(case_id=f"case-{tag}", due_at=now + timedelta(hours=4), department="社区居委会",
                          grid_id=grid, community_id=grid[:12], category="resident_need", description="老人需要代办医保",
                          reporter=Reporter(kind="resident", id=f"resident-{tag}"), occurred_at=now)


def opened(tag: str) -> AccountOpened:
    return AccountOpened(account_id=f"resident:member-{tag}", holder_id=f"member-{tag}", kind="resident")


async def effect(conn: asyncpg.Connection, service: str, tag: str, event_id: str) -> bool:
    """Whether the consumer did anything with the event tagged ``tag`` (id ``event_id``)."""
    if service == "points":  # an award opens the person's account; a case is kept until awarded
        return bool(await conn.fetchval(
            "SELECT count(*) FROM points.accounts WHERE holder_id = ANY($1::text[])",
            [f"member-{tag}", f"resident-{tag}"])) or bool(await conn.fetchval(
                "SELECT count(*) FROM points.grid_reports WHERE case_id = $1", f"case-{tag}"))
    if service == "orders":
        return bool(await conn.fetchval("SELECT count(*) FROM orders.orders WHERE source_case_id = $1", f"case-{tag}"))
    return bool(await conn.fetchval("SELECT count(*) FROM assessment.event_log WHERE id = $1", event_id))


# (consumer, events topic it reads, an event it reacts to)
CASES = [
    ("points", "orders.events.v1", evaluated),
    ("points", "grid.events.v1", registered),
    ("orders", "grid.events.v1", registered),
    ("assessment", "grid.events.v1", reported),
    ("assessment", "orders.events.v1", evaluated),
    ("assessment", "points.events.v1", opened),
]
OTHER = {"grid": "/services/points", "orders": "/services/points", "points": "/services/orders"}


@pytest.fixture(scope="module")
async def workers(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("provenance")
    started: dict[str, Worker] = {}
    try:
        for svc in ("points", "orders", "assessment"):
            started[svc] = Worker(f"services.{svc}.app", {
                "KAFKA_BOOTSTRAP_SERVERS": module_kafka, "DATABASE_URL": module_database_url, "TOPIC_PARTITIONS": "2",
                "EVENT_TIME_MAX_SKEW_SECONDS": str(SKEW),
            }, prefix=f"{svc.upper()}_", log=d / f"{svc}.log").start()
        await asyncio.gather(*(w.wait_ready() for w in started.values()))
        yield started
    finally:
        for svc, w in started.items():
            assert w.stop() == 0, (d / f"{svc}.log").read_text()[-4000:]


async def dead_letters(kafka: str, service: str, ids: set[str]) -> dict[str, dict]:
    """The DLQ records of ``service`` whose original event id is in ``ids``, by that id."""
    records = await read_all(kafka, f"{service}.dlq.v1", min_count=len(ids), timeout=30,
                             predicate=lambda r: isinstance(r["value"], dict) and r["value"].get("id") in ids)
    return {r["value"]["id"]: r for r in records}


async def taken(conn: asyncpg.Connection, service: str, source: str, event_id: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await conn.fetchval(f"SELECT count(*) FROM {service}.inbox WHERE source = $1 AND id = $2", source, event_id):
            return True
        await asyncio.sleep(0.2)
    return False


def ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


@pytest.mark.parametrize("service,topic,make", CASES, ids=[f"{c[0]}<-{c[1]}" for c in CASES])
async def test_a_forged_event_is_dead_lettered_untrusted_source_and_changes_nothing(
        workers, module_kafka, module_database_url, service, topic, make):
    owner = topic.split(".")[0]
    tag = uid("forged")
    payload = make(tag)
    forged = [envelope_for(payload, source=s, id=str(uuid.uuid4())) for s in ("/users/x", OTHER[owner], "/services/")]
    await produce(module_kafka, topic, [(e.subject, encode(e)) for e in forged])
    dlq = await dead_letters(module_kafka, service, {e.id for e in forged})
    assert set(dlq) == {e.id for e in forged}
    for e in forged:
        h = dlq[e.id]["headers"]
        assert h["dlq.error.reason"] == "untrusted_source"
        assert h["dlq.origin.topic"] == topic
        assert f"/services/{owner}" in h["dlq.error.message"] and e.source in h["dlq.error.message"]
    conn = await asyncpg.connect(module_database_url)
    try:
        for e in forged:  # the dead letter is written in the transaction that handled the record
            assert not await conn.fetchval(f"SELECT count(*) FROM {service}.inbox WHERE id = $1", e.id)
            assert not await effect(conn, service, tag, e.id)
        # the very same event from its owner is taken, and does what it does
        real = envelope_for(payload, source=f"/services/{owner}", id=str(uuid.uuid4()))
        await produce(module_kafka, topic, [(real.subject, encode(real))])
        assert await taken(conn, service, real.source, real.id)
        assert await effect(conn, service, tag, real.id)
    finally:
        await conn.close()


@pytest.mark.parametrize("service,topic,make", CASES, ids=[f"{c[0]}<-{c[1]}" for c in CASES])
async def test_an_event_dated_beyond_the_skew_from_its_record_is_dead_lettered_implausible_time(
        workers, module_kafka, module_database_url, service, topic, make):
    owner = topic.split(".")[0]
    source = f"/services/{owner}"
    now = datetime.now(timezone.utc)
    tag = uid("dated")
    payload = make(tag)
    backdated = envelope_for(payload, source=source, id=str(uuid.uuid4()), time=now - timedelta(days=40))
    ahead = envelope_for(payload, source=source, id=str(uuid.uuid4()), time=now + timedelta(seconds=2 * SKEW))
    await produce(module_kafka, topic, [(e.subject, encode(e)) for e in (backdated, ahead)])  # stamped now
    dlq = await dead_letters(module_kafka, service, {backdated.id, ahead.id})
    assert {i: r["headers"]["dlq.error.reason"] for i, r in dlq.items()} == {
        backdated.id: "implausible_time", ahead.id: "implausible_time"}
    assert "EVENT_TIME_MAX_SKEW_SECONDS" in dlq[backdated.id]["headers"]["dlq.error.message"]
    conn = await asyncpg.connect(module_database_url)
    try:
        assert not await effect(conn, service, tag, backdated.id)
        # within the skew, or dated as its record is (a relay stamps a record when its row was
        # written, however late it publishes it), an event is taken
        old = now - timedelta(hours=3)
        late = envelope_for(payload, source=source, id=str(uuid.uuid4()), time=old)
        await produce(module_kafka, topic, [(late.subject, encode(late), None, ms(old) + 1000)])
        assert await taken(conn, service, source, late.id)
    finally:
        await conn.close()


async def test_assessment_bounds_the_occurrence_time_it_dates_facts_by(workers, module_kafka, module_database_url):
    """assessment places a grid event in a period by the payload's ``occurred_at``: a current
    envelope around a backdated ``occurred_at`` is refused too."""
    now = datetime.now(timezone.utc)
    tag = uid("occurred")
    env = envelope_for(reported(tag, at=now - timedelta(days=40)), source="/services/grid", id=str(uuid.uuid4()),
                       time=now)
    await produce(module_kafka, "grid.events.v1", [(env.subject, encode(env))])
    dlq = await dead_letters(module_kafka, "assessment", {env.id})
    assert dlq[env.id]["headers"]["dlq.error.reason"] == "implausible_time"
    conn = await asyncpg.connect(module_database_url)
    try:
        assert not await effect(conn, "assessment", tag, env.id)
    finally:
        await conn.close()
