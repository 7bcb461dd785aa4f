"""The rebuild's unit of work (pure): each message is handled at the time the worker handled it
live, and its events get the ids they were published under; a batch's tokens are verified on
the rebuild's own thread."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import orjson
import pytest

from schemas.envelope import Message, envelope_for
from schemas.grid import LogPatrol, PatrolLogged
from services.kit.consumer import Item
from services.kit.identity import TokenVerifier, Unauthenticated
from services.kit.rebuild import _ReplayUnitOfWork, _verified_tokens
from tests.support.identity import TestIdentity

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


async def test_a_batchs_tokens_are_verified_once_each_on_the_rebuilds_own_thread(tmp_path):
    """Each distinct token of the batch's commands verified once, off the event loop's thread:
    a good one to its holder, a forged or expired one to why not; other topics' records and
    records without a token are not looked at."""
    idp = TestIdentity(tmp_path / "idp")
    verifier = TokenVerifier(idp.jwks_path, issuer=idp.issuer, audience=idp.audience)
    threads: list[str] = []
    verified = verifier.verified

    def spy(token):
        threads.append(threading.current_thread().name)
        return verified(token)

    verifier.verified = spy  # type: ignore[method-assign]
    good, expired = idp.token("gw-1", ("grid_worker",)).encode(), idp.token("gw-2", lifetime=-60).encode()
    forged = good[:-4] + (b"AAAA" if not good.endswith(b"AAAA") else b"BBBB")

    def item(i: int, token: bytes | None, topic: str = "grid.intake.v1") -> Item:
        return Item(topic, 0, i, None, b"{}", token=token)

    items = [item(0, good), item(1, good), item(2, forged), item(3, expired), item(4, None),
             item(5, b"other", "grid.events.v1")]
    tokens = await _verified_tokens(SimpleNamespace(verifier=verifier, _intake="grid.intake.v1"), items)
    assert set(tokens) == {good, forged, expired} and len(threads) == 3
    assert all(t.startswith("rebuild-tokens") for t in threads)
    holder = verifier.valid_at(tokens[good], time.time())
    assert (holder.sub, holder.roles) == ("gw-1", frozenset({"grid_worker"}))
    assert isinstance(tokens[forged], Unauthenticated)
    with pytest.raises(Unauthenticated):  # verified, but not valid now: its record's time decides
        verifier.valid_at(tokens[expired], time.time())
    assert await _verified_tokens(SimpleNamespace(verifier=None, _intake="grid.intake.v1"), items) == {}
