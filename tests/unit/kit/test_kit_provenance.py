"""The consumer's provenance checks on decoded records, without a broker: the source of an
events topic's record, and its time against the record's timestamp on the real clock and on a
simulated calendar (whose month steps within the skew are no reason to refuse)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import encode, envelope_for
from schemas.orders import OrderEvaluated
from schemas.topics import ORDERS, POINTS
from services.kit import clock
from services.kit.consumer import BatchConsumer, Item
from services.kit.handlers import Handler, handles
from services.kit.uow import UnitOfWork


class Reacts(Handler):
    service = "points"

    @handles(OrderEvaluated)
    async def evaluated(self, uow: UnitOfWork, e: OrderEvaluated) -> None: ...


class DatesByPayload(Reacts):
    event_time = staticmethod(lambda payload, time: datetime(2020, 1, 1, tzinfo=timezone.utc))


def consumer(handler=None, skew: float = 300) -> BatchConsumer:
    return BatchConsumer(service="points", name="reactions", topics=[ORDERS.events, POINTS.intake], group_id="g",
                         bootstrap="-", pool=None, handler=handler or Reacts(), max_event_skew=skew)  # type: ignore[arg-type]


def payload() -> OrderEvaluated:
    return OrderEvaluated(order_id=str(uuid.uuid4()), assignee_id="m-1", rating=5, passed=True, evaluator_id="op",
                          community_id="110105001002", grid_id="110105001002003", category="daily_care",
                          service_minutes=60)


def item(source: str, at: datetime, stamp: datetime | None, topic: str = ORDERS.events.name) -> Item:
    env = envelope_for(payload(), source=source, time=at)
    return Item(topic, 0, 0, b"k", encode(env), round(stamp.timestamp() * 1000) if stamp else None)


def outcome(c: BatchConsumer, it: Item) -> str:
    c._decode([it])
    return it.error.reason if it.error is not None else ("ok" if it.message is not None else "ignored")


NOW = datetime.now(timezone.utc)


@pytest.mark.parametrize("source,expected", [
    ("/services/orders", "ok"), ("/users/x", "untrusted_source"), ("/services/points", "untrusted_source"),
    ("/services/orders/x", "untrusted_source"), ("/", "untrusted_source"), ("/Services/orders", "untrusted_source"),
])
def test_an_events_topic_takes_only_its_owner_s_source(source, expected):
    assert outcome(consumer(), item(source, NOW, NOW)) == expected


@pytest.mark.parametrize("offset,expected", [
    (0, "ok"), (-299, "ok"), (299, "ok"), (-301, "implausible_time"), (301, "implausible_time"),
    (-86400 * 40, "implausible_time"),
])
def test_the_event_time_is_within_the_skew_of_the_record_timestamp(offset, expected):
    assert outcome(consumer(), item("/services/orders", NOW + timedelta(seconds=offset), NOW)) == expected


def test_no_timestamp_or_a_zero_skew_leaves_the_time_unchecked():
    assert outcome(consumer(), item("/services/orders", NOW - timedelta(days=9), None)) == "ok"
    assert outcome(consumer(skew=0), item("/services/orders", NOW - timedelta(days=9), NOW)) == "ok"
    assert outcome(consumer(skew=0), item("/users/x", NOW, NOW)) == "untrusted_source"  # the source always


def test_the_handler_s_event_time_is_the_one_checked():
    assert outcome(consumer(DatesByPayload()), item("/services/orders", NOW, NOW)) == "implausible_time"


def test_a_simulated_calendar_reads_the_record_timestamp_as_its_own_time():
    real_start = NOW.timestamp() - 3600
    cal = clock.SteppedCalendar(datetime(2026, 5, 1, tzinfo=clock.SHANGHAI), real_start, 1000.0)
    before = clock.current()
    clock.use(cal)
    try:
        stamp = NOW
        sim = cal.at(stamp.timestamp())
        c = consumer()
        assert outcome(c, item("/services/orders", sim, stamp)) == "ok"
        assert outcome(c, item("/services/orders", sim - timedelta(seconds=100), stamp)) == "ok"
        assert outcome(c, item("/services/orders", NOW, stamp)) == "implausible_time"  # real time is not its time
        # a month's step within the skew: the event dated just before it, the record just after
        step = real_start + 4 * 1000.0
        last = cal.at(step - 0.5)
        assert outcome(c, item("/services/orders", last, datetime.fromtimestamp(step + 1, timezone.utc))) == "ok"
    finally:
        clock.use(before)


def test_intake_records_are_not_checked_for_provenance():
    c = consumer()
    it = item("/users/x", NOW - timedelta(days=9), NOW, topic=POINTS.intake.name)
    c._decode([it])
    assert it.error is None or it.error.reason not in ("untrusted_source", "implausible_time")


class BrokenEventTime(Reacts):
    event_time = staticmethod(lambda payload, time: 1 / 0)


def test_a_handler_s_event_time_that_raises_dead_letters_the_record_and_the_batch_goes_on():
    c = consumer(BrokenEventTime())
    items = [item("/services/orders", NOW, NOW), item("/services/orders", NOW, NOW)]
    c._decode(items)
    assert [it.error.reason for it in items] == ["undecodable", "undecodable"]
