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
