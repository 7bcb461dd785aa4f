"""The rebuild's unit of work (pure): each message is handled at the time the worker handled it
live, and its events get the ids they were published under; a batch's tokens are verified on
a process of the rebuild's own, in the order the merge will need them."""
from __future__ import annotations

import asyncio
import os
import pickle
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import orjson
import pytest

from schemas.envelope import Message, envelope_for
from schemas.grid import LogPatrol, PatrolLogged
from services.kit.consumer import Item
from services.kit.identity import TokenVerifier, Unauthenticated
from services.kit import rebuild as rebuild_module
from services.kit.rebuild import _ReplayUnitOfWork, _TokenChecks, _token_process
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


def _tokens(idp: TestIdentity) -> tuple[bytes, bytes, bytes]:
    good, expired = idp.token("gw-1", ("grid_worker",)).encode(), idp.token("gw-2", lifetime=-60).encode()
    forged = good[:-4] + (b"AAAA" if not good.endswith(b"AAAA") else b"BBBB")
    return good, forged, expired


def _item(i: int, token: bytes | None, topic: str = "grid.intake.v1") -> Item:
    return Item(topic, 0, i, None, b"{}", token=token)


def _consumer(verifier: TokenVerifier | None) -> SimpleNamespace:
    return SimpleNamespace(verifier=verifier, _intake="grid.intake.v1")


async def test_a_batchs_tokens_are_verified_once_each_off_the_event_loops_thread(tmp_path):
    """Without the rebuild's process (a unit of the kit on its own), each distinct token of the
    batch's commands is verified once, on the rebuild's thread: a good one to its holder, a
    forged or expired one to why not; other topics' records and records without a token are not
    looked at."""
    idp = TestIdentity(tmp_path / "idp")
    verifier = TokenVerifier(idp.jwks_path, issuer=idp.issuer, audience=idp.audience)
    threads: list[str] = []
    verified = verifier.verified

    def spy(token):
        threads.append(threading.current_thread().name)
        return verified(token)

    verifier.verified = spy  # type: ignore[method-assign]
    good, forged, expired = _tokens(idp)
    items = [_item(0, good), _item(1, good), _item(2, forged), _item(3, expired), _item(4, None),
             _item(5, b"other", "grid.events.v1")]
    tokens = await _TokenChecks(verifier).of(_consumer(verifier), items)
    assert set(tokens) == {good, forged, expired} and len(threads) == 3
    assert all(t.startswith("rebuild-tokens") for t in threads)
    holder = verifier.valid_at(tokens[good], time.time())
    assert (holder.sub, holder.roles) == ("gw-1", frozenset({"grid_worker"}))
    assert isinstance(tokens[forged], Unauthenticated)
    with pytest.raises(Unauthenticated):  # verified, but not valid now: its record's time decides
        verifier.valid_at(tokens[expired], time.time())
    assert await _TokenChecks(None).of(_consumer(None), items) == {}


async def test_while_a_rebuild_runs_its_tokens_are_verified_in_a_process_of_its_own(tmp_path):
    """The verifier there is made from the rebuild's (same keys, issuer and audience), and what
    it answers comes back whole: the holder and times of a good token, the reason of a refusal."""
    idp = TestIdentity(tmp_path / "idp")
    verifier = TokenVerifier(idp.jwks_path, issuer=idp.issuer, audience=idp.audience)
    verifier.verified = None  # type: ignore[assignment]  # the rebuild's own is not used
    good, forged, expired = _tokens(idp)
    wrong_audience = TestIdentity(tmp_path / "idp", audience="someone-else", key=idp.key).token("gw-3").encode()
    with _token_process(verifier) as pool:
        assert isinstance(pool, ProcessPoolExecutor)
        tokens = await _TokenChecks(verifier, pool).of(
            _consumer(verifier), [_item(i, t) for i, t in enumerate((good, forged, expired, wrong_audience))])
        assert {p.pid for p in pool._processes.values()} - {os.getpid()}  # noqa: SLF001
    assert pool._shutdown_thread  # noqa: SLF001
    assert rebuild_module._CHILD_VERIFIER is None
    with _token_process(None) as none:  # no verifier, no process
        assert none is None
    holder = verifier.valid_at(tokens[good], time.time())
    assert (holder.sub, holder.roles) == ("gw-1", frozenset({"grid_worker"}))
    assert (tokens[forged].reason, tokens[wrong_audience].reason) == ("bad_signature", "wrong_audience")
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.valid_at(tokens[expired], time.time())


def test_a_refusal_crosses_processes_with_its_reason_and_a_verifier_its_recipe(tmp_path):
    e = pickle.loads(pickle.dumps(Unauthenticated("expired", "the token has expired")))
    assert (e.reason, e.detail, str(e)) == ("expired", "the token has expired", "expired: the token has expired")
    idp = TestIdentity(tmp_path / "idp")
    verifier = TokenVerifier(idp.jwks_path, issuer=idp.issuer, audience=idp.audience, leeway=5,
                             algorithms=("ES256",))
    twin = TokenVerifier(**pickle.loads(pickle.dumps(verifier.recipe())))
    assert (twin.issuer, twin.audience, twin.algorithms, twin.leeway) == (idp.issuer, idp.audience, ("ES256",), 5.0)
    token = idp.token("gw-1", ("grid_worker",))
    assert twin.verify(token) == verifier.verify(token)


async def test_tokens_are_sent_to_be_verified_in_the_order_the_merge_will_need_them(tmp_path, monkeypatch):
    """Queued as their records are fetched, by merge key, and sent a chunk at a time with at most
    two chunks in flight: the earliest first, whatever order the fetches came in; a batch that
    needs a token not yet sent sends it at once."""
    idp = TestIdentity(tmp_path / "idp")
    verifier = TokenVerifier(idp.jwks_path, issuer=idp.issuer, audience=idp.audience)
    order: list[str] = []
    gate = threading.Event()
    verified = verifier.verified

    def spy(token):
        gate.wait(5)  # the first chunk waits while everything is queued
        entry = verified(token)
        order.append(entry.principal.sub)
        return entry

    verifier.verified = spy  # type: ignore[method-assign]
    monkeypatch.setattr(_TokenChecks, "CHUNK", 2)
    tok = {k: idp.token(f"u-{k}").encode() for k in range(10)}
    checks = _TokenChecks(verifier)
    checks.queue([(5.0, tok[5]), (1.0, tok[1]), (9.0, tok[9]), (3.0, tok[3]), (7.0, tok[7])])  # one partition's fetch
    checks.queue([(2.0, tok[2]), (0.0, tok[0]), (8.0, tok[8]), (6.0, tok[6]), (4.0, tok[4]),
                  (0.5, tok[1])])  # another's; a token queued twice is verified once
    gate.set()
    for _ in range(500):
        if len(order) == 10:
            break
        await asyncio.sleep(0.01)
    # the first two chunks left before the second fetch was queued; then the earliest keys
    assert order == ["u-1", "u-3", "u-5", "u-7", "u-0", "u-2", "u-4", "u-6", "u-8", "u-9"]
    late = idp.token("u-late").encode()  # never queued: sent when its batch needs it
    got = await checks.of(_consumer(verifier), [_item(k, tok[k]) for k in range(10)] + [_item(10, late)])
    assert set(got) == {*tok.values(), late} and verifier.valid_at(got[tok[4]], time.time()).sub == "u-4"
    assert len(order) == 11 and not checks.sent and not checks.queued  # each once; nothing kept once taken


@pytest.mark.parametrize("error, code, said", [
    (rebuild_module.RebuildRefused("a live grid worker holds the lock"), 2, "rebuild refused: a live grid worker"),
    (rebuild_module.ReadTimedOut("no answer from the broker at the position of ['grid.intake.v1-0'] for 60 s",
                                 {}, {}), 3, "rebuild failed: no answer from the broker")])
def test_a_rebuild_that_cannot_go_on_says_why_and_exits_with_its_code(monkeypatch, capsys, error, code, said):
    """A refusal (exit 2), and a broker that stopped answering (exit 3, with what to do): one line
    on stderr, no traceback, nothing on stdout (where the outcome's JSON goes)."""
    async def failing(rt, **kw):
        raise error

    monkeypatch.setattr(rebuild_module, "rebuild", failing)
    rt = SimpleNamespace(service="grid", settings=SimpleNamespace(log_format="text"))
    with pytest.raises(SystemExit) as e:
        rebuild_module.main(rt, ["--no-progress"])
    out = capsys.readouterr()
    assert e.value.code == code and out.out == ""
    assert out.err.startswith(said) and "Traceback" not in out.err
    if code == 3:
        assert "run the rebuild again" in out.err
