"""The rebuild's unit of work (pure): each message is handled at the time the worker handled it
live, and its events get the ids they were published under."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson

from schemas.envelope import Message, envelope_for
from schemas.grid import LogPatrol, PatrolLogged
from services.kit.rebuild import _ReplayUnitOfWork

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def message(i: int) -> Message:
    cmd = LogPatrol(patrol_id=f"p-{i}", grid_id="110105001002003", grid_worker_id="gw-1", started_at=T0, ended_at=T0)
    env = envelope_for(cmd, source="/users/gw-1", id=f"cmd-{i}", time=T0)
    return Message(envelope=env, payload=cmd)


def logged(i: int) -> PatrolLogged:
    return PatrolLogged(patrol_id=f"p-{i}", grid_id="110105001002003", grid_worker_id="gw-1",
                        started_at=T0, ended_at=T0)


def test_each_message_is_handled_at_its_live_time_and_between_messages_at_the_batchs():
    live = {"cmd-1": T0 + timedelta(minutes=1), "cmd-2": T0 + timedelta(minutes=2)}
    uow = _ReplayUnitOfWork(None, "grid", live, {}, T0 + timedelta(hours=1))
    assert uow.now == T0 + timedelta(hours=1)  # a batch step, before any message
    for i in (1, 2, 3):
        uow.message = message(i)
        uow.emit(logged(i))
    uow.message = None
    assert uow.now == T0 + timedelta(hours=1)
    times = [orjson.loads(r.value)["time"] for r in uow.records]
    assert times[:2] == ["2026-11-22T08:01:00Z", "2026-11-22T08:02:00Z"]
    assert times[2] == "2026-11-22T09:00:00Z"  # no live time known: the batch's


def test_events_get_the_ids_they_were_published_under_in_order_per_type():
    ids = {("cmd-1", PatrolLogged.TYPE): ["ev-a", "ev-b"]}
    uow = _ReplayUnitOfWork(None, "grid", {}, ids, T0)
    uow.message = message(1)
    first, second, third = (uow.emit(logged(1)) for _ in range(3))
    assert (first.id, second.id) == ("ev-a", "ev-b")
    assert third.id not in ("ev-a", "ev-b")  # more than the worker published: a new id
    uow.message = message(2)
    assert uow.emit(logged(2)).id not in ("ev-a", "ev-b")


async def test_an_event_too_large_for_the_outbox_fails_in_the_replay_as_it_failed_live():
    """The worker could not write such an event to its outbox: the message was dead-lettered and
    its effects undone. The replay writes no outbox, and must still fail the same way."""
    import pytest

    from schemas.topics import GRID
    from services.kit import outbox
    from services.kit.handlers import Handler
    from services.kit.outbox import OutboxRecord, RecordTooLarge
    from services.kit.rebuild import Outcome, _ReplayConsumer

    class Nothing(Handler):
        service = "grid"

    rc = _ReplayConsumer(outcome=Outcome("grid"), service="grid", name="rebuild-intake", topics=[GRID.intake],
                         group_id="-", bootstrap="unused:9092", pool=None, handler=Nothing())
    fits = OutboxRecord(topic="grid.events.v1", key=b"k", value=b"x" * 100, message_type="t")
    await rc._write_outbox(None, [fits])
    with pytest.raises(RecordTooLarge):
        await rc._write_outbox(None, [OutboxRecord(topic="grid.events.v1", key=b"k",
                                                   value=b"x" * (outbox.MAX_RECORD_BYTES + 1), message_type="t")])
    assert rc.outcome.suppressed == {"grid.events.v1": 1}  # only what the worker could publish
