"""Every command of a service's own gets an outcome: a handler that decides neither events nor a
refusal is answered ``no_change`` by the kit; another service's event that changes nothing is not.
Pure: the handlers never touch the database, so the unit of work needs no connection."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import orjson

from schemas.envelope import Message, envelope_for
from schemas.grid import LogPatrol, PatrolLogged
from schemas.orders import OrderEvaluated
from services.kit import metrics as m
from services.kit.errors import Rejected
from services.kit.handlers import Handler, dispatch, handles
from services.kit.uow import UnitOfWork

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


class Cued(Handler):
    """A patrol does what its worker id says; an evaluation (another service's event) does nothing."""

    service = "grid"

    @handles(LogPatrol)
    async def log(self, uow: UnitOfWork, cmd: LogPatrol) -> None:
        match cmd.grid_worker_id:
            case "emit":
                uow.emit(PatrolLogged(**cmd.model_dump(exclude={"notes", "route"})))
            case "refuse":
                raise Rejected("refused", "no", "grid_worker_id")
            case "reject-in-place":  # as points does for a refused transfer: rejects without raising
                uow.reject(uow.message, Rejected("insufficient_balance", "short"))
            case "boom":
                raise RuntimeError("a fault")
            case _:  # "same": the state already is what the command asks
                pass

    @handles(OrderEvaluated)
    async def evaluated(self, uow: UnitOfWork, e: OrderEvaluated) -> None:
        pass


def patrol(worker: str) -> Message:
    cmd = LogPatrol(patrol_id=str(uuid.uuid4()), grid_id="110105001002003", grid_worker_id=worker,
                    started_at=T0, ended_at=T0)
    return Message(envelope=envelope_for(cmd, source="/apps/test", id=str(uuid.uuid4()), time=T0), payload=cmd)


def evaluation() -> Message:
    e = OrderEvaluated(order_id=str(uuid.uuid4()), assignee_id="m-1", rating=5, passed=True, evaluator_id="op",
                       community_id="110105001002", grid_id="110105001002003", category="daily_care",
                       service_minutes=60)
    return Message(envelope=envelope_for(e, source="/services/orders", id=str(uuid.uuid4()), time=T0), payload=e)


async def run(*messages: Message) -> tuple[UnitOfWork, list]:
    uow = UnitOfWork(None, "grid", now=T0)
    faults = await dispatch(Cued(), uow, list(messages))
    return uow, faults


def rejections(uow: UnitOfWork) -> list[dict]:
    return [orjson.loads(r.value)["data"] for r in uow.records if r.topic == "grid.rejections.v1"]


async def test_a_command_that_changes_nothing_is_answered_no_change_naming_its_type():
    same = patrol("same")
    uow, faults = await run(same)
    assert faults == []
    [r] = rejections(uow)
    assert (r["command_id"], r["command_type"], r["reason"]) == (same.id, "grid.patrol.log.v1", "no_change")
    assert r["detail"] == "grid.patrol.log.v1 changes nothing: the state already is what it asks"
    assert r.get("field") is None
    [env] = uow.caused_by(same.id)  # caused by the command, keyed like it
    assert env.type == "grid.command.rejected.v1" and uow.records[0].key == same.envelope.subject.encode()


async def test_each_command_of_a_batch_is_judged_by_what_it_caused_itself():
    first, second, third = patrol("emit"), patrol("same"), patrol("emit")
    uow, _ = await run(first, second, third)
    assert [(e.type, e.causationid) for e in uow.emitted] == [
        ("grid.patrol.logged.v1", first.id), ("grid.command.rejected.v1", second.id),
        ("grid.patrol.logged.v1", third.id)]


async def test_a_refusal_or_a_rejection_in_place_is_the_one_outcome():
    refused, in_place = patrol("refuse"), patrol("reject-in-place")
    uow, _ = await run(refused, in_place)
    assert [(r["command_id"], r["reason"]) for r in rejections(uow)] == [
        (refused.id, "refused"), (in_place.id, "insufficient_balance")]


async def test_a_fault_is_dead_lettered_not_answered():
    boom = patrol("boom")
    uow, faults = await run(boom)
    assert [msg.id for msg, _ in faults] == [boom.id] and uow.records == []


async def test_another_services_event_that_changes_nothing_has_no_outcome():
    uow, faults = await run(evaluation(), evaluation())
    assert faults == [] and uow.records == [] and uow.rejected == []


async def test_the_answer_is_counted_as_a_rejection_once_committed():
    counter = m.COMMANDS_REJECTED.labels("grid", "grid.patrol.log.v1", "no_change")
    before = counter._value.get()
    uow, _ = await run(patrol("same"))
    assert counter._value.get() == before
    uow.committed()
    assert counter._value.get() == before + 1
