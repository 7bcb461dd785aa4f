"""UnitOfWork.emit: the checks and the envelope bytes stay right on its fast path (per-class
topic cache, one time string per batch)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas.grid import LogPatrol, PatrolLogged
from services.kit.uow import UnitOfWork

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def logged(i: int = 0) -> PatrolLogged:
    return PatrolLogged(patrol_id=f"p-{i}", grid_id="110105001002003", grid_worker_id="gw-1",
                        started_at=T0, ended_at=T0)


def test_a_service_may_not_emit_another_services_event_even_after_emitting_it_itself():
    UnitOfWork(None, "grid", now=T0).emit(logged())  # the grid service may
    for _ in range(2):  # and the verdict for orders is not taken from a cache filled by grid
        with pytest.raises(ValueError):
            UnitOfWork(None, "orders", now=T0).emit(logged())


def test_a_command_is_not_an_event_to_emit():
    cmd = LogPatrol(patrol_id="p-1", grid_id="110105001002003", grid_worker_id="gw-1", started_at=T0, ended_at=T0)
    with pytest.raises(ValueError):
        UnitOfWork(None, "grid", now=T0).emit(cmd)  # type: ignore[arg-type]


def test_each_event_carries_its_own_time_when_times_alternate():
    uow = UnitOfWork(None, "grid", now=T0)
    cst = timezone(timedelta(hours=8))
    times = [T0, T0 + timedelta(seconds=1), T0, datetime(2026, 11, 22, 16, 0, tzinfo=cst), T0]
    for i, t in enumerate(times):
        uow.emit(logged(i), time=t)
    written = [orjson.loads(r.value)["time"] for r in uow.records]
    assert written == ["2026-11-22T08:00:00Z", "2026-11-22T08:00:01Z", "2026-11-22T08:00:00Z",
                       "2026-11-22T16:00:00+08:00", "2026-11-22T08:00:00Z"]
    assert all(r.topic == "grid.events.v1" for r in uow.records)


def test_equal_times_that_are_not_one_object_are_written_alike_and_a_naive_one_apart():
    uow = UnitOfWork(None, "grid", now=T0)
    times = [T0, datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc), datetime(2026, 11, 22, 8, 0),
             datetime(2026, 11, 22, 8, 0, 0, 1, tzinfo=timezone.utc)]
    assert times[1] is not T0
    for i, t in enumerate(times):
        uow.emit(logged(i), time=t)
    written = [orjson.loads(r.value)["time"] for r in uow.records]
    assert written == ["2026-11-22T08:00:00Z", "2026-11-22T08:00:00Z", "2026-11-22T08:00:00",
                       "2026-11-22T08:00:00.000001Z"]
