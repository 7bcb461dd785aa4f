"""Rebuild a service's projection from its input topics: ``python -m services.<svc>.app rebuild``.

Used after a projection migration that cannot be written as a data migration, after a damaged
database, or to prove that the projection is a function of the log. Steps:

1. **Exclusive.** The rebuild holds the service's migration lock for its whole run (a worker
   starting meanwhile waits at its migrations) and refuses to start while any worker of the
   service is connected to the database (a connection named ``<svc>-service``) or while the
   outbox still holds unpublished records (they would be lost: let a worker's relay drain it).
2. **Handling times.** It reads the service's own events and rejections topics and notes, for
   every message that caused something, the time the live worker handled it (the latest
   ``time`` of the records it caused, found by ``causationid``: a record is dated earlier when
   what it reports happened before the message came, as a council's 公示 that ended before a
   command on the council made it effective). Replayed, the message is handled at
   that time again, so dates the handler takes from its clock (registration, deadlines,
   windows) come out as they were. A message that caused nothing is handled when the inbox
   (read before it is dropped) says the worker handled it, else at its record's timestamp
   (on the service's calendar). A decision that rests on state no topic holds asks the unit
   of work what the worker's handling caused (:meth:`UnitOfWork.caused_live`, and the data
   of the event types the handler names in ``replayed``: :meth:`UnitOfWork.live_events`).
   The events no message caused, of the types a timer declares it ``replays``
   (``rt.timer(..., replays=...)``), give the times that timer's live rounds ran.
3. **Drop and migrate.** Every object in the service's schema is dropped (the kit's tables
   too: inbox, outbox, remembered HTTP outcomes, aggregates, erasures) and the migrations run
   again.
4. **Replay.** Its input topics (every topic its consumers read) are read from the earliest
   offset to the end they had when the rebuild started, merged across partitions in the order
   the worker handled them (handling time, else record timestamp; a partition's own order is
   kept), and fed in batches through the worker's own path
   (:class:`~services.kit.consumer.BatchConsumer`: decoding, provenance checks, the inbox, the
   handler, one transaction per batch). A batch holds up to ``--batch`` records of one
   handler, however many of the worker's batches and consumers they came in (the worker's
   consumers of one handler replay as one, across their topics): each message is handled at its
   own time, so how messages are grouped changes nothing they do (the handlers give the same
   result for a batch as for its messages one by one, which the worker relies on when it redoes
   a batch message by message). A command's token is verified as of its record's timestamp, as
   if the record had been handled when it was written. The next batches are
   decoded (their tokens verified in a process of their own, ahead of the merge:
   :class:`_TokenChecks`), and
   their messages claimed in the inbox, on a second connection while a batch is handled (see
   :func:`_replay`). Each live round of a replayed timer is merged among the
   records at its time, as a message of the batch it falls in (never decoded, claimed in the
   inbox or counted as a record): handled in its savepoint at that time, it calls the timer's
   ``replay`` on the aggregates the round's events named, through the unit of work as a
   handler reads them. What it changed (an expired dispatch given to someone else, a case
   supervised) is rebuilt, its events get the ids they were published under (by type and
   subject), and later messages are decided on the state it left, as the worker decided them.
5. **Nothing is published again.** The events, rejections and dead letters the replay causes
   were published when the messages were first handled: the topics hold them, and consumers
   of other services have acted on them. So the rebuild writes none of them to the outbox (it
   counts them); publishing them again would hand every consumer a second copy under a new
   event id, which no inbox would recognise as a duplicate.

With ``--handled-only`` the replay leaves out the messages no worker had handled (neither an
event names them as its cause nor the inbox holds them), and counts them: the rebuild is then of
exactly the part of the log the stopped workers had built the projection from.

What the input topics cannot give back, a rebuild does not have:

- commands sent over HTTP (``POST /v1/commands``) are handled without passing through the
  intake topic: their effects are not rebuilt;
- the effects of timers that declare no ``replays``, and what a round did without publishing
  (a mark of how far a timer had looked), are not input: the timers of the next worker derive
  them again from the rebuilt state and the clock (and publish what they find). A replayed
  timer's round that published nothing is not run again either, which is right for a timer
  whose rounds change nothing unless they publish. A replayed round acts
  on what its live events named, so what the live round skipped (a case a batch held locked)
  is left to the later round that found it, as it was; but a round and a batch on the same
  aggregate within the same moment are ordered by their times, which may not be the order the
  live ones saw each other in;
- two messages on different partitions whose handling touches one row (a redemption crediting
  a merchant while an adjustment debits it) are handled by two lanes at once; which of the two
  saw the other's change is the order their transactions committed in, which no topic records.
  The replay takes the order of their handling times, the same whenever one committed before
  the other began, and can decide differently only for such a pair handled within the same
  moment;
- the topics must hold the whole history (no retention shorter than the projection's life),
  and the JWKS must still hold the keys that signed the commands' tokens.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import heapq
import logging
import multiprocessing
import os
import sys
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Sequence

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import CloudEvent, Message

from . import clock
from .consumer import BatchConsumer, Item, bearer, claim
from .identity import TokenVerifier, Unauthenticated
from .db import _init_connection
from .kafkaread import ReadTimedOut, read_to_end
from .kafkasec import client_kwargs
from .locks import try_session_lock
from .migrations import migrate
from .outbox import OutboxRecord, check_sizes
from .sql import bulk
from .uow import UnitOfWork

if TYPE_CHECKING:
    from .runtime import ServiceRuntime

log = logging.getLogger("kit.rebuild")

FETCH_RECORDS = 20000  # records per fetch (the worker's batch is smaller: it also has to be quick)
BATCH_RECORDS = 10000  # records per transaction
LOOKAHEAD = 2  # batches decoded ahead of the one being handled
DECODE_STEP = 250  # records decoded (or merged) before the handling task may go on
# causes whose latest time is remembered while the service's own topics are read (a row is
# written for each later time seen, the latest taken at the end); REBUILD_SEEN_KEPT lets a test
# forget them at once
SEEN_KEPT = int(os.environ.get("REBUILD_SEEN_KEPT", "200000"))


class RebuildRefused(RuntimeError):
    """A rebuild may not start now (a worker is live, the outbox is not empty...)."""


@dataclass
class Outcome:
    service: str
    records: int = 0
    seconds: float = 0.0
    suppressed: Counter = field(default_factory=Counter)  # topic -> records not published again
    handled_times: int = 0  # messages whose live handling time was found
    rejected: Counter = field(default_factory=Counter)  # reason -> commands refused again
    fetch_seconds: float = 0.0  # waiting for the broker
    handle_seconds: float = 0.0  # in the worker's path (handler, inbox, transaction)
    decode_seconds: float = 0.0  # decoding the records and verifying their tokens
    cpu_seconds: float = 0.0  # this process's CPU time while replaying (the rest: waiting)
    batches: int = 0
    not_handled_live: int = 0  # messages left out by ``handled_only``: no worker had handled them
    timer_rounds: int = 0  # live timer rounds run again (``rt.timer(..., replays=...)``)
    not_reacted_to: int = 0  # of the records, those of types the handler does not react to (skipped)

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "records": self.records, "seconds": round(self.seconds, 3),
                "records_per_second": round(self.per_second), "batches": self.batches,
                "fetch_seconds": round(self.fetch_seconds, 3), "handle_seconds": round(self.handle_seconds, 3),
                "decode_seconds": round(self.decode_seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "handled_times_found": self.handled_times, "not_handled_live": self.not_handled_live,
                "timer_rounds": self.timer_rounds, "not_reacted_to": self.not_reacted_to,
                "not_published_again": dict(self.suppressed), "rejected": dict(self.rejected)}


class _OneConnection:
    """A pool of the one connection the rebuild holds (the consumer's path acquires from a pool)."""

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn

    def acquire(self):
        conn = self.conn

        class _Ctx:
            async def __aenter__(self):
                return conn

            async def __aexit__(self, *exc):
                return False

        return _Ctx()


class _ReplayUnitOfWork(UnitOfWork):
    """A unit of work whose ``now`` is, while a message is handled, the time that message was
    handled live (else its record's time); between messages the batch's last such time. A
    replayed timer's round is a message of its own kind (:class:`_RoundItem`), whose events
    have no cause."""

    def __init__(self, conn, service: str, times: dict[str, datetime], ids: dict[tuple[str, ...], list[str]],
                 batch_now: datetime, data: dict[tuple[str, str], list[dict]] | None = None,
                 known: set[str] | frozenset[str] = frozenset()):
        self._times = times
        self._ids = ids
        self._data = data or {}
        # message id -> types of the events it caused live; a message the worker is known to have
        # handled (its events, or the inbox) with no events is known to have caused none
        self._types: dict[str, set[str]] = {i: set() for i in known}
        for k in ids:  # (cause, type), or a round's (round, type, subject)
            self._types.setdefault(k[0], set()).add(k[1])
        super().__init__(conn, service, batch_now)

    def caused_live(self, event_type: str) -> bool | None:
        msg = self.message
        return msg is not None and event_type in self._types.get(msg.id, ())

    def live_events(self, event_type: str) -> list[dict[str, Any]] | None:
        msg = self.message
        if msg is None or msg.id not in self._types:
            return None
        return list(self._data.get((msg.id, event_type), ()))

    def emit(self, payload, *, cause=None, id=None, time=None, key=None):
        """An event gets the id the worker gave it when it first published it (the n-th event of
        its type caused by the same message), so that rows which name an event name the one on
        the topic."""
        msg = self.message
        if cause is None and msg is not None and isinstance(msg.payload, _RoundPayload):
            # a timer's round: its events have no cause, and are told apart by their subject
            # too (a round's order over its aggregates is not the live one's)
            if id is None and (known := self._ids.get((msg.id, payload.TYPE, key or payload.aggregate_id))):
                id = known.pop(0)
            at = time or self.now
            self.message = None
            try:
                return super().emit(payload, id=id, time=at, key=key)
            finally:
                self.message = msg
        if id is None:
            c = cause if cause is not None else msg
            if c is not None:
                known = self._ids.get((c.id, payload.TYPE))
                if known:
                    id = known.pop(0)
        return super().emit(payload, cause=cause, id=id, time=time, key=key)

    @property  # type: ignore[override]
    def now(self) -> datetime:
        msg = self.message
        if msg is not None:
            t = self._times.get(msg.id)
            if t is not None:
                return t
        return self._batch_now

    @now.setter
    def now(self, value: datetime) -> None:
        self._batch_now = value


class _ReplayConsumer(BatchConsumer):
    """The worker's batch path, with the rebuild's time and without the outbox."""

    def __init__(self, *, outcome: Outcome, rounds: bool = False, **kw):
        super().__init__(**kw)
        if rounds:  # the replayed timers' rounds come among its messages
            self.handler = _WithRounds(self.handler)
        self.outcome = outcome
        self.times: dict[str, datetime] = {}
        self.ids: dict[tuple[str, ...], list[str]] = {}
        self.data: dict[tuple[str, str], list[dict]] = {}  # (cause, type) -> the live events' data
        self.known: set[str] = set()  # the messages the worker is known to have handled
        self.claimed: set[tuple[str, str]] | None = None  # the batch's new inbox keys, claimed ahead

    async def _claim(self, conn, keys):
        # Claimed ahead on the other connection, in merge order, while the batch before was
        # handled: a rebuild that stops half-way is run again from an empty schema anyway, so
        # the inbox need not commit with the batch. A retried batch gets the same answer.
        if self.claimed is None:
            return await super()._claim(conn, keys)
        return self.claimed

    def _unit_of_work(self, conn, fresh: list[Item]) -> UnitOfWork:
        batch_now = max((self.times[it.message.id] for it in fresh if it.message is not None
                         and it.message.id in self.times), default=None) or clock.now()
        # a batch retried (conflict, outage) starts again from the same ids
        ids = {k: list(v) for k, v in self.ids.items()}
        return _ReplayUnitOfWork(conn, self.service, self.times, ids, batch_now, self.data, self.known)

    async def _write_outbox(self, conn, records: list[OutboxRecord]) -> None:
        _not_published(self.outcome, records)

    def _sender(self, it: Item, now: float | None = None, tokens: dict | None = None):
        # as of the record's timestamp: a history's tokens have long expired by now
        at = it.timestamp / 1000 if it.timestamp is not None and it.timestamp >= 0 else None
        return super()._sender(it, at, tokens)


# The rebuild's token checks run in a process of their own (:func:`_token_process`), else (a
# replay without one) on this thread: a signature's check releases the interpreter, but PyJWT's
# reading of a token around it (its segments' alphabet, checked character by character in Python)
# does not, and a history's commands come with a token each.
_VERIFYING = ThreadPoolExecutor(1, thread_name_prefix="rebuild-tokens")
_CHILD_VERIFIER: TokenVerifier | None = None  # in the process that checks the tokens


@contextlib.contextmanager
def _token_process(verifier: TokenVerifier | None):
    """The process that checks a rebuild's tokens (None without a verifier), with a verifier
    equal to ``verifier`` (spawned: it starts clean, and reads the same keys from the same
    place), beside the handling and the database on the other core; shut down after."""
    if verifier is None:
        yield None
        return
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_child_verifier, initargs=(verifier.recipe(),))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_child_verifier(recipe: dict[str, Any]) -> None:
    global _CHILD_VERIFIER
    _CHILD_VERIFIER = TokenVerifier(**recipe)


def _verify_all(verifier: TokenVerifier | None, tokens: list[bytes]) -> dict[bytes, object]:
    """What each token verifies to: its entry (principal and times, checked against each
    record's time later), or why it does not."""
    verifier = verifier or _CHILD_VERIFIER
    assert verifier is not None
    out: dict[bytes, object] = {}
    for token in tokens:
        try:
            out[token] = verifier.verified(token)
        except Unauthenticated as e:
            out[token] = e
    return out


class _TokenChecks:
    """The commands' tokens, verified ahead of the merge: each fetch's tokens are queued by
    their records' merge keys, and the verifying process is kept busy with the earliest of them,
    a few hundred at a time (a chunk in hand, the next one queued behind it), however far the
    fetch has run ahead. A batch takes what its tokens verified to when it is decoded, sending
    at once any not sent yet. (Sent as they were merged, a batch waited for the last of its own;
    sent a partition's whole fetch at a time, the first batch waited for every partition's.)"""

    CHUNK = 250
    IN_FLIGHT = 2

    def __init__(self, verifier: TokenVerifier | None, process: ProcessPoolExecutor | None = None):
        self.verifier = verifier
        # the process's own verifier (equal to ``verifier``) checks there; on the thread, ``verifier``
        self.executor, self.mine = (process, None) if process is not None else (_VERIFYING, verifier)
        self.heap: list[tuple[float, int, bytes]] = []  # (merge key, n, token)
        self.n = 0
        self.queued: set[bytes] = set()  # the heap's tokens not sent yet (an entry whose token was sent is skipped)
        self.sent: dict[bytes, asyncio.Future] = {}  # token -> the check of the chunk it went in
        self.in_flight = 0

    def queue(self, keyed: Iterable[tuple[float, bytes | None]]) -> None:
        if self.verifier is None:
            return
        for key, token in keyed:
            if token is not None and token not in self.queued and token not in self.sent:
                self.n += 1
                heapq.heappush(self.heap, (key, self.n, token))
                self.queued.add(token)
        self._pump()

    def _pump(self) -> None:
        while self.in_flight < self.IN_FLIGHT and self.heap:
            chunk: list[bytes] = []
            while self.heap and len(chunk) < self.CHUNK:
                token = heapq.heappop(self.heap)[2]
                if token in self.queued:
                    self.queued.discard(token)
                    chunk.append(token)
            if chunk:
                self._send(chunk).add_done_callback(self._done)
                self.in_flight += 1

    def _done(self, _check: asyncio.Future) -> None:
        self.in_flight -= 1
        self._pump()

    def _send(self, tokens: list[bytes]) -> asyncio.Future:
        check = asyncio.get_running_loop().run_in_executor(self.executor, _verify_all, self.mine, tokens)
        for t in tokens:
            self.sent[t] = check
        return check

    async def of(self, rc: BatchConsumer, records: Sequence[Item]) -> dict[bytes, object]:
        """What each distinct token of a batch's commands verifies to (or why not)."""
        intake = rc._intake  # noqa: SLF001
        distinct = list(dict.fromkeys(it.token for it in records if it.topic == intake and it.token is not None))
        if rc.verifier is None or not distinct:
            return {}
        unsent = [t for t in distinct if t not in self.sent]
        if unsent:
            self.queued.difference_update(unsent)
            self._send(unsent)
        out: dict[bytes, object] = {}
        for check in {id(f): f for f in (self.sent[t] for t in distinct)}.values():
            out.update(await check)
        for t in distinct:
            self.sent.pop(t, None)  # a later command with the same token is sent again
        return {t: out[t] for t in distinct}


def _not_published(outcome: Outcome, records: list[OutboxRecord]) -> None:
    """Count what the replay would write to the outbox, which it does not (step 5 above). What
    the worker could not write to its outbox it did not handle (the message was dead-lettered,
    its effects undone): so the replay, which writes nothing, still checks."""
    check_sizes(records)
    for r in records:
        outcome.suppressed[r.topic] += 1
        if r.topic.endswith(".rejections.v1"):
            try:
                outcome.rejected[orjson.loads(r.value)["data"]["reason"]] += 1
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass


async def _connect(dsn: str, schema: str, service: str) -> asyncpg.Connection:
    # Commits do not wait for their WAL to reach the disk: a rebuild cut short by a crash is
    # run again from the start anyway. The last statement (ANALYZE) commits with the wait, which
    # makes everything before it durable too (the WAL is written in order).
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema,
                                                       "application_name": f"{service}-rebuild",
                                                       "synchronous_commit": "off"})
    await _init_connection(conn)
    return conn


async def _exclusive(conn: asyncpg.Connection, service: str) -> None:
    """Hold the service's migration lock (session-scoped, so a worker starting meanwhile waits
    at its migrations) and refuse while a worker is live or records wait in the outbox."""
    if not await try_session_lock(conn, f"migrations:{service}"):
        raise RebuildRefused(f"{service}: a worker is applying migrations, or another rebuild is running")
    live = await conn.fetch(
        "SELECT pid, client_addr::text AS addr, backend_start FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
        f"{service}-service")
    if live:
        who = ", ".join(f"pid {r['pid']} from {r['addr'] or 'local'}" for r in live[:5])
        raise RebuildRefused(f"{service}: {len(live)} connection(s) of a live {service} worker ({who}); "
                             "stop every worker of the service first")
    if await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL"):
        waiting = await conn.fetchval("SELECT count(*) FROM outbox")
        if waiting:
            raise RebuildRefused(f"{service}: {waiting} record(s) in the outbox are not published yet; "
                                 "run a worker (or its relay) until the outbox is empty, then stop it")


async def empty_schema(conn: asyncpg.Connection, schema: str) -> list[str]:
    """Drop every object in ``schema`` (the schema itself stays: its owner may not create one)."""
    dropped: list[str] = []
    rels = await conn.fetch(
        "SELECT c.relname, c.relkind::text AS relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)", schema)
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}
    for r in sorted(rels, key=lambda r: r["relkind"] not in "vm"):  # views first
        await conn.execute(f'DROP {kinds[r["relkind"]]} IF EXISTS {schema}."{r["relname"]}" CASCADE')
        dropped.append(r["relname"])
    for r in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind = 'S'", schema):
        await conn.execute(f'DROP SEQUENCE IF EXISTS {schema}."{r["relname"]}" CASCADE')
    for r in await conn.fetch(
            "SELECT p.oid::regprocedure::text AS sig, p.prokind::text AS prokind FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1", schema):
        kind = {"p": "PROCEDURE", "a": "AGGREGATE"}.get(r["prokind"], "FUNCTION")
        await conn.execute(f"DROP {kind} IF EXISTS {r['sig']} CASCADE")
    for r in await conn.fetch(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'r', 'c', 'm') "
            "AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')", schema):
        await conn.execute(f'DROP TYPE IF EXISTS {schema}."{r["typname"]}" CASCADE')
    return dropped


def _consumer(rt: "ServiceRuntime", **kw) -> AIOKafkaConsumer:
    s = rt.settings
    return AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False,
        client_id=f"{rt.service}-rebuild", auto_offset_reset="earliest", fetch_max_wait_ms=100,
        max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
        isolation_level="read_uncommitted", **client_kwargs(s.kafka_security()), **kw)


async def _bounds(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[TopicPartition, tuple[int, int]]:
    parts = []
    for t in topics:
        ps = consumer.partitions_for_topic(t)
        if ps is None:
            await consumer._client.force_metadata_update()  # noqa: SLF001 (aiokafka has no public way)
            ps = consumer.partitions_for_topic(t) or set()
        parts += [TopicPartition(t, p) for p in sorted(ps)]
    if not parts:
        return {}
    consumer.assign(parts)
    begin = await consumer.beginning_offsets(parts)
    end = dict(await consumer.end_offsets(parts))
    # A broker may report an end short of what is readable (the embedded one does, by far):
    # read on from the reported end until whole fetch answers bring nothing more.
    for tp in parts:
        consumer.seek(tp, max(begin[tp], end[tp]))
    end = await read_to_end(consumer, parts, max_records=FETCH_RECORDS)
    return {tp: (begin[tp], end[tp]) for tp in parts if end[tp] > begin[tp]}


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


@dataclass(frozen=True, slots=True)
class _Round:
    """A live round of a replayed timer: when it ran (the time of the events it published), and
    the key its events are noted under in ``rebuild_emitted`` in place of a cause."""
    at: datetime
    timer: str

    @property
    def key(self) -> str:
        return f"timer {self.timer} {self.at.isoformat()}"  # no message id has a space


class _RoundPayload:
    """What a replayed timer round's message carries: the timer's replay function and what the
    live round's events were about (their subjects)."""

    __slots__ = ("replay", "subjects")
    TYPE = "kit.timer.round"

    def __init__(self, replay: Callable[[UnitOfWork, list[str]], Awaitable[None]]):
        self.replay = replay
        self.subjects: list[str] = []  # filled when its batch looks up what the live round published

    @staticmethod
    def service() -> str:
        return "kit"


class _RoundItem(Item):
    """A replayed timer round, merged among the records at the time it ran: handled in its
    batch as a message is (its own savepoint, at its own time), never decoded, claimed in the
    inbox or counted as a record."""

    __slots__ = ()

    @classmethod
    def of(cls, r: _Round, topic: str, replay) -> "_RoundItem":
        env = CloudEvent(id=r.key, source="/kit/rebuild", type=_RoundPayload.TYPE, time=r.at)
        return cls(topic, -1, -1, None, None, message=Message(env, _RoundPayload(replay)))  # type: ignore[arg-type]


async def _run_round(uow: UnitOfWork, payload: _RoundPayload) -> None:
    await payload.replay(uow, payload.subjects)


class _WithRounds:
    """A consumer's handler that also handles the replayed timers' rounds (the rest is the
    service's handler's)."""

    def __init__(self, handler) -> None:
        self._handler = handler

    def __getattr__(self, name: str):
        return getattr(self._handler, name)

    def handler_for(self, payload):
        return _run_round if isinstance(payload, _RoundPayload) else self._handler.handler_for(payload)


def _timer_of(timers_of: dict[str, list[tuple[str, Any]]], typ: Any, doc: dict) -> str | None:
    """The replayed timer that published an event with no cause (``doc``), or None: the one
    timer of its type, or the one whose pick says it is its."""
    timers = timers_of.get(typ) if isinstance(typ, str) else None
    if not timers:
        return None
    data = doc.get("data")
    for name, pick in timers:
        if pick is None or (isinstance(data, dict) and pick(data)):
            return name
    return None


async def _read_handling_times(rt: "ServiceRuntime", conn: asyncpg.Connection, progress) -> list[_Round]:
    """Fill the temporary table ``rebuild_handled`` (message id -> time it was handled live)
    from the service's own events and rejections topics; the live rounds of the replayed timers
    (``rt.replayed_timers``), in time order: each distinct time at which an event a timer
    replays (by its type, and its pick where two timers share the type: :func:`_timer_of`) was
    published with no cause (its events noted under the round's key)."""
    await conn.execute("CREATE TEMPORARY TABLE rebuild_handled (id text PRIMARY KEY, at timestamptz NOT NULL)")
    # each cause's times as read, the latest of each taken at the end
    await conn.execute("CREATE TEMPORARY TABLE rebuild_caused (id text NOT NULL, at timestamptz NOT NULL)")
    await conn.execute("CREATE TEMPORARY TABLE rebuild_emitted (cause text NOT NULL, type text NOT NULL, "
                       "seq bigint NOT NULL, id text NOT NULL, data text, subject text)")
    replayed = {t for _, _, handler, _ in rt._consumer_specs for t in handler.replayed}  # noqa: SLF001
    timers_of: dict[str, list[tuple[str, Any]]] = {}  # type -> the timers publishing it, with their picks
    for name, (_, types) in rt.replayed_timers.items():
        for t, pick in types.items():
            timers_of.setdefault(t, []).append((name, pick))
    rounds: set[_Round] = set()
    consumer = _consumer(rt)
    await consumer.start()
    try:
        bounds = await _bounds(consumer, [rt.topics.events.name, rt.topics.rejections.name])
        total = sum(e - b for b, e in bounds.values())
        task = progress.add_task(f"{rt.service}: handling times", total=total, rate="")
        for tp, (b, _) in bounds.items():
            consumer.seek(tp, b)
        left = {tp: e for tp, (_, e) in bounds.items()}
        seen: dict[str, tuple[str, datetime]] = {}  # cause -> its latest time seen (as text, parsed)
        n_emitted = 0
        while left:
            got = await consumer.getmany(*left, timeout_ms=1000, max_records=FETCH_RECORDS)
            rows = []
            emitted = []
            for tp, records in got.items():
                end = left.get(tp)
                if end is None:
                    continue
                for r in records:
                    if r.offset >= end:
                        break
                    try:
                        doc = orjson.loads(r.value)
                        cause, at = doc.get("causationid"), doc.get("time")
                        typ, eid = doc.get("type"), doc.get("id")
                    except (orjson.JSONDecodeError, AttributeError, TypeError):
                        continue
                    noted, subject = cause, None  # what the event is noted under: its cause, else its timer's round
                    timer = _timer_of(timers_of, typ, doc) if cause is None and isinstance(at, str) else None
                    if timer is not None:
                        try:  # a timer's round: its events are dated when it ran
                            round_ = _Round(datetime.fromisoformat(at), timer)
                        except ValueError:
                            continue
                        rounds.add(round_)
                        noted, subject = round_.key, doc.get("subject")
                    if isinstance(noted, str) and isinstance(typ, str) and isinstance(eid, str):
                        data = orjson.dumps(doc.get("data")).decode() if typ in replayed else None
                        emitted.append((noted, typ, len(emitted) + n_emitted, eid, data, subject))
                    if isinstance(cause, str) and isinstance(at, str) and (
                            (known := seen.get(cause)) is None or at != known[0]):
                        try:
                            t = datetime.fromisoformat(at)
                        except ValueError:
                            continue
                        if known is not None and t <= known[1]:
                            continue
                        if len(seen) >= SEEN_KEPT:  # the dict only saves rows: the latest of each is taken below
                            seen.clear()
                        seen[cause] = (at, t)
                        rows.append((cause, t))
                progress.advance(task, len(records))
                if records and records[-1].offset + 1 >= end:
                    del left[tp]
            if rows:
                await conn.copy_records_to_table("rebuild_caused", records=rows, columns=("id", "at"))
            if emitted:
                await conn.copy_records_to_table("rebuild_emitted", records=emitted,
                                                 columns=("cause", "type", "seq", "id", "data", "subject"))
                n_emitted += len(emitted)
        await conn.execute("INSERT INTO rebuild_handled (id, at) SELECT id, max(at) FROM rebuild_caused GROUP BY id")
        await conn.execute("DROP TABLE rebuild_caused")
        await conn.execute("CREATE INDEX ON rebuild_emitted (cause, seq)")
        return sorted(rounds, key=lambda r: (r.at, r.timer))
    finally:
        await consumer.stop()


async def _read_inbox_times(conn: asyncpg.Connection) -> int:
    """Add to ``rebuild_handled`` the messages that caused nothing, at the time the inbox says
    the worker handled them (its transaction's start, on the service's calendar), before the
    inbox is dropped with the rest. Such a message (an upstream fact assessment only counts, a
    registration orders only keeps) would else be replayed at its record's timestamp, which a
    record published late (a relay or broker down for a while) dates before messages the worker
    handled before it: a period closed live without a late fact would be closed with it. A
    message the inbox no longer holds (its retention) keeps its record's timestamp."""
    if not await conn.fetchval("SELECT to_regclass('inbox') IS NOT NULL"):
        return 0
    cal = clock.current()
    query = ("SELECT i.id, min(i.processed_at) FROM inbox i WHERE i.source NOT LIKE 'kafka:%' "
             "AND NOT EXISTS (SELECT 1 FROM rebuild_handled h WHERE h.id = i.id) GROUP BY i.id")
    if not cal.simulated:  # the real clock: the inbox's times as they are
        return int((await conn.execute(f"INSERT INTO rebuild_handled (id, at) {query}")).split()[-1])
    known = 0
    async with conn.transaction():  # a cursor lives in a transaction
        cur = conn.cursor(query, prefetch=FETCH_RECORDS)
        rows: list[tuple[str, datetime]] = []
        async for r in cur:
            rows.append((r[0], cal.at(r[1].timestamp())))
            if len(rows) >= FETCH_RECORDS:
                await conn.copy_records_to_table("rebuild_handled", records=rows, columns=("id", "at"))
                known += len(rows)
                rows = []
        if rows:
            await conn.copy_records_to_table("rebuild_handled", records=rows, columns=("id", "at"))
            known += len(rows)
    return known


async def _replay(rt: "ServiceRuntime", conn: asyncpg.Connection, lookup: asyncpg.Connection, progress,
                  outcome: Outcome, batch_records: int, handled_only: bool = False,
                  rounds: Sequence[_Round] = (), token_process: ProcessPoolExecutor | None = None) -> None:
    """Merge the input topics and feed the batches through the worker's path on ``conn``; the
    replayed timers' ``rounds`` (in time order) are merged among the records at their times,
    each a message of the batch it falls in.

    Two tasks share the process: this one fetches, merges, decodes each batch, looks up its
    handling times and claims its messages in the inbox (on ``lookup``, the connection that
    holds the times), and hands the batch over; the other handles the batches one after the
    other, each in its transaction on ``conn``. So while PostgreSQL writes one batch the next is
    being decoded, and while the handlers run PostgreSQL claims the next batch's messages; a
    batch is still handled only after the one before it has committed."""
    s = rt.settings
    pool = _OneConnection(conn)
    # the consumers that feed one handler replay as one: a batch is of one consumer, and the
    # worker's consumers of one handler (its intake, the events it reacts to, the erasures it
    # follows) interleave in time, so kept apart they would cut the replay into batches of a few
    # records each. Every check a consumer makes is by topic, and a handler gives the same result
    # however its messages are grouped, so the merged consumer decides exactly what they would.
    by_handler: dict[int, tuple[Any, list[str], list]] = {}
    for name, topics, handler, _group in rt._consumer_specs:  # noqa: SLF001 (the kit's own)
        _, names, merged_topics = by_handler.setdefault(id(handler), (handler, [], []))
        names.append(name)
        merged_topics.extend(t for t in topics if t not in merged_topics)
    by_topic: dict[str, _ReplayConsumer] = {}
    for handler, names, topics in by_handler.values():
        rc = _ReplayConsumer(
            outcome=outcome, rounds=bool(rounds), service=rt.service, name="rebuild-" + "+".join(names), topics=topics, group_id="-",
            bootstrap=s.kafka_bootstrap_servers, pool=pool, handler=handler, verifier=rt.verifier,
            max_record_age=s.intake_max_record_age_seconds, security=s.kafka_security(),
            max_event_skew=s.event_time_max_skew_seconds)
        for t in topics:
            by_topic[t.name] = rc
    consumer = _consumer(rt)
    await consumer.start()
    ready: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=LOOKAHEAD)
    handling: asyncio.Future | None = None
    try:
        bounds = await _bounds(consumer, list(by_topic))
        total = sum(e - b for b, e in bounds.values())
        task = progress.add_task(f"{rt.service}: replay", total=total, rate="")
        for tp, (b, _) in bounds.items():
            consumer.seek(tp, b)
        buffers: dict[TopicPartition, list] = {tp: [] for tp in bounds}  # (key, Item), reversed
        ends = {tp: e for tp, (_, e) in bounds.items()}
        fetched = {tp: b for tp, (b, _) in bounds.items()}  # next offset not yet fetched
        # the merge: each partition's next record as (the time the worker handled it, topic,
        # partition, offset, partition): by that time, then (the records of one batch were all
        # handled at one time) in the order its fetch gave them, partition by partition
        heap: list[tuple[float, str, int, int, TopicPartition]] = []
        have_times = bool(await lookup.fetchval("SELECT EXISTS (SELECT 1 FROM rebuild_handled)"))
        live: dict[str, datetime] = {}  # message id -> its live handling time, from the merge to its batch
        started = time.perf_counter()
        cpu_started = time.process_time()
        pending: list[Item] = []
        pending_consumer: _ReplayConsumer | None = None
        checks = _TokenChecks(rt.verifier, token_process)

        async def handle() -> None:
            """Handle the batches handed over, in order, each after the one before has committed."""
            while (batch := await ready.get()) is not None:
                t0 = time.perf_counter()
                c = batch.consumer
                c.times, c.ids, c.data, c.known = batch.times, batch.ids, batch.data, batch.known
                batch.consumer.claimed = batch.claimed
                await batch.consumer._process_until_done(batch.items)  # noqa: SLF001
                outcome.handle_seconds += time.perf_counter() - t0
                outcome.batches += 1
                outcome.records += len(batch.items) - batch.rounds
                outcome.timer_rounds += batch.rounds
                progress.update(task, advance=len(batch.items) - batch.rounds,
                                rate=f"{outcome.records / max(1e-9, time.perf_counter() - started):,.0f} records/s")

        handling = asyncio.ensure_future(handle())

        async def hand_over(batch: _Batch | None) -> None:
            """Queue a batch for :func:`handle` (waiting while it is ``LOOKAHEAD`` batches behind);
            if handling failed, raise why."""
            put = asyncio.ensure_future(ready.put(batch))
            await asyncio.wait((put, handling), return_when=asyncio.FIRST_COMPLETED)
            if handling.done() and not put.done():
                put.cancel()
            if handling.done() and (handling.cancelled() or handling.exception() is not None):
                handling.result()

        async def flush() -> None:
            nonlocal pending, pending_rounds
            if not pending:
                return
            rc = pending_consumer
            assert rc is not None
            t0 = time.perf_counter()
            records = [it for it in pending if not isinstance(it, _RoundItem)] if pending_rounds else pending
            tokens = await checks.of(rc, records)
            for i in range(0, len(records), DECODE_STEP):  # in steps: the handling task goes on between them
                rc._decode(records[i:i + DECODE_STEP], tokens)  # noqa: SLF001
                await asyncio.sleep(0)
            outcome.decode_seconds += time.perf_counter() - t0
            # the live handling times the merge looked up (a second copy of a message finds none:
            # the inbox has it already, so it is not handled)
            found = {}
            for it in pending:
                if it.message is not None and (t := live.pop(it.message.id, None)) is not None:
                    found[it.message.id] = t
            outcome.handled_times += len(found)
            if handled_only:  # what no worker had handled when it stopped is left for the next one
                kept = [it for it in pending if it.message is None or it.message.id in found
                        or isinstance(it, _RoundItem)]
                outcome.not_handled_live += len(pending) - len(kept)
                progress.update(task, advance=len(pending) - len(kept))
                pending = kept
                if not pending:
                    return
            cal = clock.current()
            times = {}
            last_ts, last_at = None, None  # records written in the same millisecond share one time
            for it in pending:
                if it.message is None:
                    continue
                t = found.get(it.message.id)
                if t is None and it.timestamp is not None and it.timestamp >= 0:
                    if it.timestamp != last_ts:
                        last_ts, last_at = it.timestamp, cal.at(it.timestamp / 1000)
                    t = last_at
                if t is not None:
                    times[it.message.id] = t
            # what the messages caused live, and what the rounds published: a round's events by
            # (round, type, subject), its subjects in the order it published them
            rounds = {it.message.id: it.message for it in pending_rounds}  # type: ignore[union-attr]
            emitted: dict[tuple[str, ...], list[str]] = {}
            data: dict[tuple[str, str], list[dict]] = {}
            if found or rounds:
                # each event once: the relay publishes at least once, so a topic may hold one twice
                for r in await lookup.fetch("SELECT cause, type, id, data, subject FROM (SELECT DISTINCT ON (id) * "
                                            "FROM rebuild_emitted WHERE cause IN "
                                            "(SELECT jsonb_array_elements_text($1::text::jsonb)) ORDER BY id, seq) e "
                                            "ORDER BY seq", bulk([*found, *rounds])):
                    if (m := rounds.get(r[0])) is not None:
                        emitted.setdefault((r[0], r[1], r[4]), []).append(r[2])
                        if r[4] not in m.payload.subjects:
                            m.payload.subjects.append(r[4])
                    else:
                        emitted.setdefault((r[0], r[1]), []).append(r[2])
                    if r[3] is not None:
                        data.setdefault((r[0], r[1]), []).append(orjson.loads(r[3]))
            times.update((i, m.envelope.time) for i, m in rounds.items())
            keys, _, _ = rc._dedup(pending)  # noqa: SLF001
            round_keys = {k for k in keys if k[1] in rounds}
            claimed = await claim(lookup, [k for k in keys if k not in round_keys]) | round_keys
            await hand_over(_Batch(rc, pending, times, emitted, claimed, data, set(found) | set(rounds), len(rounds)))
            pending, pending_rounds = [], []

        due = deque(rounds)
        first = next(iter(by_topic.values()), None)
        pending_rounds: list[_RoundItem] = []  # of ``pending``, the rounds

        async def rounds_until(key: float | None) -> None:
            """Merge the timer rounds that ran before ``key`` (a record's merge key; None: all
            that are left) into the batch being gathered, each as a message of its own."""
            nonlocal pending_consumer
            while due and (key is None or due[0].at.timestamp() < key):
                r = due.popleft()
                if pending and len(pending) >= batch_records:
                    await flush()
                if pending_consumer is None:
                    pending_consumer = first
                assert pending_consumer is not None
                item = _RoundItem.of(r, pending_consumer.topics[0].name, rt.replayed_timers[r.timer][0])
                pending.append(item)
                pending_rounds.append(item)

        async def refill(want: list[TopicPartition]) -> None:
            """Fetch until every partition in ``want`` has buffered records or is at its end."""
            want = [tp for tp in want if fetched[tp] < ends[tp]]
            while want:
                t0 = time.perf_counter()
                got = await consumer.getmany(*want, timeout_ms=1000, max_records=FETCH_RECORDS)
                outcome.fetch_seconds += time.perf_counter() - t0
                for tp, records in got.items():
                    records = [r for r in records if r.offset < ends[tp]]
                    if not records:
                        continue
                    fetched[tp] = records[-1].offset + 1
                    rc = by_topic[tp.topic]
                    items = [Item(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp, r.timestamp_type,
                                  rc._interned(bearer(r.headers)) if tp.topic == rc._intake  # noqa: SLF001
                                  else None) for r in records]
                    # a record of a type the handler does not react to changes nothing wherever it
                    # is handled: read and skipped here, it takes no place in the merge or a batch
                    if rc.tolerant(tp.topic):
                        read = len(items)
                        items = [it for it in items if not rc.skipped(it)]
                        outcome.records += read - len(items)
                        outcome.not_reacted_to += read - len(items)
                        progress.update(task, advance=read - len(items))
                        if not items:
                            continue
                    keys = await _order_keys(lookup, items, have_times, live)
                    checks.queue(zip(keys, (it.token for it in items)))
                    buffers[tp] = list(zip(keys, items))[::-1] + buffers[tp]
                want = [tp for tp in want if not buffers[tp] and fetched[tp] < ends[tp]]

        await refill(list(bounds))
        for tp, buffered in buffers.items():
            if buffered:
                k, head = buffered[-1]
                heapq.heappush(heap, (k, tp.topic, tp.partition, head.offset, tp))
        merged = 0
        while heap:
            key, _, _, _, tp = heapq.heappop(heap)
            if due:
                await rounds_until(key)
            _, it = buffers[tp].pop()
            rc = by_topic[tp.topic]
            if pending and (rc is not pending_consumer or len(pending) >= batch_records):
                await flush()
            pending_consumer = rc
            pending.append(it)
            if not buffers[tp] and fetched[tp] < ends[tp]:
                await refill([tp])  # its next record is needed to know what comes next
            if buffers[tp]:
                k, head = buffers[tp][-1]
                heapq.heappush(heap, (k, tp.topic, tp.partition, head.offset, tp))
            merged += 1
            if merged % DECODE_STEP == 0:
                await asyncio.sleep(0)  # let the handling task go on
        await rounds_until(None)
        await flush()
        await hand_over(None)
        await handling
        outcome.seconds = time.perf_counter() - started
        outcome.cpu_seconds = time.process_time() - cpu_started
    finally:
        if handling is not None and not handling.done():
            handling.cancel()
            await asyncio.gather(handling, return_exceptions=True)
        await consumer.stop()


@dataclass(slots=True)
class _Batch:
    """A batch decoded and ready to be handled: its consumer, records, each message's handling
    time and the ids its events were published under, and its inbox keys that were new."""
    consumer: _ReplayConsumer
    items: list[Item]
    times: dict[str, datetime]
    ids: dict[tuple[str, ...], list[str]]  # (cause, type), or a round's (round, type, subject) -> ids
    claimed: set[tuple[str, str]]
    data: dict[tuple[str, str], list[dict]]  # (cause, type) -> the live events' data the handler asks for
    known: set[str]  # the messages whose live handling is known (their events or the inbox)
    rounds: int = 0  # of its items, the replayed timer rounds


async def _order_keys(conn: asyncpg.Connection, items: list[Item], have_times: bool = True,
                      live: dict[str, datetime] | None = None) -> list[float]:
    """The order the worker handled each record in: its live handling time, else its timestamp.
    The live times found are added to ``live`` (message id -> time)."""
    ids: list[str | None] = []
    for it in items if have_times else ():
        try:
            doc = orjson.loads(it.value) if it.value else None
            ids.append(doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None)
        except orjson.JSONDecodeError:
            ids.append(None)
    found = dict(await conn.fetch(
        "SELECT id, at FROM rebuild_handled WHERE id IN (SELECT jsonb_array_elements_text($1::text::jsonb))",
        bulk([i for i in ids if i is not None]))) if have_times else {}
    if live is not None:
        live.update(found)
    cal = clock.current()
    keys = []
    for it, i in zip(items, ids if have_times else [None] * len(items)):
        t = found.get(i) if i is not None else None
        if t is None:
            ts = (it.timestamp or 0) / 1000
            keys.append(cal.at(ts).timestamp() if cal.simulated else ts)
        else:
            keys.append(t.timestamp())
    return keys


async def rebuild(rt: "ServiceRuntime", *, progress_bar: bool = True, batch_records: int = BATCH_RECORDS,
                  handled_only: bool = False) -> Outcome:
    """Rebuild ``rt``'s projection (see the module docstring); the outcome says how fast.

    ``handled_only``: replay only the messages the stopped workers had handled (their events
    name them as their cause, or the inbox holds them), so that the rebuild is of exactly the
    part of the log the projection was built from, however far the topics have gone on since (a
    check that a projection equals its rebuild, run while an upstream service still published).
    Valid only while the inbox holds every message handled (its retention at least the topics')."""
    s = rt.settings
    clock.use(s.clock())
    if rt.verifier is not None:
        rt.verifier.prefetch()
    outcome = Outcome(rt.service)
    conn = await _connect(s.migration_dsn(), rt.service, rt.service)
    lookup = None  # a second connection: the handling times, looked up while ``conn`` writes
    try:
        await _exclusive(conn, rt.service)
        lookup = await _connect(s.migration_dsn(), rt.service, rt.service)
        with _progress(progress_bar) as progress:
            rounds = await _read_handling_times(rt, lookup, progress)
            await _read_inbox_times(lookup)
            # autovacuum never analyses a temporary table, and without statistics the planner
            # misjudges each batch's lookup of what its messages caused (a grid rebuild of 1.6
            # million records spent 16 s in it, 5 s once analysed)
            await lookup.execute("ANALYZE rebuild_handled, rebuild_emitted")
            if handled_only and not await lookup.fetchval("SELECT EXISTS (SELECT 1 FROM rebuild_handled)"):
                raise RebuildRefused(f"{rt.service}: --handled-only, but nothing says what the workers handled "
                                     "(no events name a cause, and the inbox is empty)")
            async with conn.transaction():
                await empty_schema(conn, rt.service)
            await migrate(conn, rt.service, rt.components)
            for hook in rt._startup_hooks:  # noqa: SLF001 (reference data the handlers load)
                await _run_hook(rt, hook, conn)
            with few_collections(), _token_process(rt.verifier) as token_process:
                await _replay(rt, conn, lookup, progress, outcome, batch_records, handled_only, rounds, token_process)
        await conn.execute("SET synchronous_commit = on")
        await conn.execute("ANALYZE")
    finally:
        if lookup is not None:
            await lookup.close()
        await conn.close()
    return outcome


@contextlib.contextmanager
def few_collections():
    """Less of the cyclic garbage collector while a bulk job runs (a replay, a generated history).

    A replay allocates millions of short-lived objects, and with the collector's default
    thresholds it walked everything alive again and again (the modules and their models, and
    the records buffered for the merge): a quarter of the replay's CPU; the generated history's
    fold of the assessment log, with its refs held in memory, spent half its CPU so. What exists
    when the job starts is frozen (never walked again), and the young generations are collected
    less often. Most of what a record allocates is freed by reference counting anyway; the rest is
    collected at the higher thresholds."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(200_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def _run_hook(rt: "ServiceRuntime", hook, conn: asyncpg.Connection) -> None:
    """A start-up hook reads from ``rt.pool``: lend it the rebuild's connection meanwhile."""
    before = rt.pool
    rt.pool = _OneConnection(conn)  # type: ignore[assignment]
    try:
        await hook()
    finally:
        rt.pool = before


def main(rt: "ServiceRuntime", argv: Sequence[str]) -> None:
    """``python -m services.<svc>.app rebuild [--batch N] [--no-progress] [--handled-only]``: prints one
    JSON line."""
    from . import jsonlog

    p = argparse.ArgumentParser(prog=f"python -m services.{rt.service}.app rebuild",
                                description=f"Drop the {rt.service} projection and rebuild it from its input topics.")
    p.add_argument("--batch", type=int, default=BATCH_RECORDS, help="records per transaction")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in a log)")
    p.add_argument("--handled-only", action="store_true",
                   help="only the messages the stopped workers had handled (the inbox must hold them all)")
    args = p.parse_args(list(argv))
    jsonlog.configure(rt.service, "warning", rt.settings.log_format)
    try:
        out = asyncio.run(rebuild(rt, progress_bar=not args.no_progress and sys.stderr.isatty(),
                                  batch_records=args.batch, handled_only=args.handled_only))
    except RebuildRefused as e:
        print(f"rebuild refused: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except ReadTimedOut as e:  # before the drop (the handling times), nothing changed; after, run it again
        print(f"rebuild failed: {e}; if the projection was dropped already, it is incomplete: run the "
              "rebuild again once the broker answers", file=sys.stderr)
        raise SystemExit(3) from None
    print(orjson.dumps(out.as_dict()).decode())
