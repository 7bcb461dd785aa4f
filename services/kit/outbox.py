"""Outbox: records written in the state-change transaction; a relay publishes and deletes them.

The relay is the only publisher of a service's topics. One relay per service is active at a
time (a PostgreSQL advisory lock elects it), so records reach Kafka in commit order per key:
a key's rows are written under the aggregate's row lock, so their ``seq`` order is their
commit order, and the relay publishes in ``seq`` order with ``acks=all``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Coroutine, Protocol, Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from aiokafka.partitioner import DefaultPartitioner

from schemas.wire import CONTENT_TYPE, CONTENT_TYPE_HEADER

from .kafkaclient import client_kwargs
from .kafkaread import ReadTimedOut, read_to_end

if TYPE_CHECKING:  # the relay process does not import pydantic (services/kit/kafkaclient.py)
    from .kafkasec import KafkaSecurity
from .db import UNAVAILABLE_ERRORS, FairPool
from .locks import try_session_lock

log = logging.getLogger("kit.outbox")

_DEFAULT_HEADERS = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]


@dataclass(slots=True)
class OutboxRecord:
    topic: str
    key: bytes | None  # the Kafka key as it is sent (a ``str`` given here is written as its UTF-8)
    value: bytes
    message_type: str = ""
    headers: list[tuple[str, str]] | None = None  # None: the CloudEvents content-type header


_COLUMNS = ("topic", "key", "value", "message_type", "headers")

# The largest record (key + value + headers) the kit produces or accepts: under Apache Kafka's
# default message.max.bytes (1,048,588 bytes for a whole batch), so a record alone in its batch
# always fits. KAFKA_MAX_RECORD_BYTES sets it (services/kit/settings.py) for every process.
MAX_RECORD_BYTES = 1_000_000


def set_max_record_bytes(n: int) -> None:
    """The process's record size limit (from ``KAFKA_MAX_RECORD_BYTES``; the worker and its relay set it)."""
    global MAX_RECORD_BYTES
    MAX_RECORD_BYTES = int(n)


class RecordTooLarge(ValueError):
    """A record over :data:`MAX_RECORD_BYTES`: no broker past the default would take it."""

    def __init__(self, topic: str, size: int, limit: int):
        super().__init__(f"a record of {size} bytes for {topic} is over the {limit} bytes a record may hold "
                         "(KAFKA_MAX_RECORD_BYTES)")
        self.topic, self.size, self.limit = topic, size, limit


DEAD_LETTER_KEPT_BYTES = 64 * 1024  # of an oversized record's value (and key), what its dead letter keeps


def fit_dead_letter(key: bytes | None, value: bytes, headers_size: int = 16 * 1024
                    ) -> tuple[bytes | None, bytes, list[tuple[str, str]]]:
    """(key, value, headers to add) of a dead letter that always fits :data:`MAX_RECORD_BYTES`:
    the record's own bytes when they fit beside ``headers_size`` bytes of headers, else the first
    :data:`DEAD_LETTER_KEPT_BYTES` of each, with ``dlq.value.bytes`` / ``dlq.key.bytes`` giving
    their whole length and ``dlq.truncated`` saying so."""
    if len(value) + len(key or b"") + headers_size <= MAX_RECORD_BYTES:
        return key, value, []
    keep = DEAD_LETTER_KEPT_BYTES
    return ((key[:keep] if key is not None else None), value[:keep],
            [("dlq.truncated", f"the first {keep} bytes of the key and value are kept"),
             ("dlq.value.bytes", str(len(value))), ("dlq.key.bytes", str(len(key or b"")))])


def record_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, Any]] | None) -> int:
    """A record's bytes as the limit counts them: key, value, and each header's name and value."""
    n = len(key or b"") + len(value or b"")
    for name, v in headers or ():
        n += len(name) + len(v.encode() if isinstance(v, str) else v or b"")
    return n


async def write(conn: asyncpg.Connection, records: Sequence[OutboxRecord]) -> None:
    """Insert records in order (call inside the state-change transaction).

    One binary COPY: rows take their ``seq`` in the order given. It costs the worker far less
    than an ``INSERT ... unnest`` of the same rows (no five parameter arrays to build and
    encode), and is no slower for a single row.

    The key column is ``bytea``: any key bytes are stored (and later sent) exactly as given.
    A record over :data:`MAX_RECORD_BYTES` raises :class:`RecordTooLarge` (the transaction is
    the caller's to undo): it would stop the relay at the broker, so it never enters the outbox."""
    if not records:
        return
    check_sizes(records)
    await conn.copy_records_to_table(
        "outbox", columns=_COLUMNS,
        records=[(r.topic, r.key if r.key is None or r.key.__class__ is bytes else _key_bytes(r.key), r.value,
                  r.message_type, r.headers) for r in records])


def check_sizes(records: Sequence[OutboxRecord]) -> None:
    """:class:`RecordTooLarge` for the first record over :data:`MAX_RECORD_BYTES`."""
    limit = MAX_RECORD_BYTES
    for r in records:
        key = r.key
        size = len(r.value) + (0 if key is None else len(key))
        if r.headers is not None or size > limit // 2:  # a str key's characters: its bytes counted here
            size = record_size(key if key is None or key.__class__ is bytes else _key_bytes(key), r.value, r.headers)
        if size > limit:
            raise RecordTooLarge(r.topic, size, limit)


def _key_bytes(key: str | bytes | bytearray | memoryview) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


async def read_stats(conn: asyncpg.Connection) -> tuple[int, float]:
    """(rows not yet published, age in seconds of the oldest of them; 0 when none)."""
    stats = await conn.fetchrow("SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at)) AS age FROM outbox")
    return int(stats["n"]), float(stats["age"] or 0.0)


async def refresh_stats(conn: asyncpg.Connection, service: str) -> None:
    """Set the outbox backlog and oldest-unpublished-age gauges from the table."""
    MetricsObserver(service).stats(*await read_stats(conn))


class RelayObserver(Protocol):
    """What a relay reports: the Prometheus metrics of its own process by default, or (in the
    relay process) a report to the worker that exposes the metrics."""

    def published(self, counts: Counter) -> None:
        """Records acknowledged by the broker, by (topic, message type)."""

    def failed(self) -> None:
        """A round failed (broker or database away); its rows stay and are retried."""

    def stats(self, backlog: int, oldest_age: float) -> None:
        """The outbox backlog and the age of its oldest row."""

    def read_back(self, n: int) -> None:
        """Rows found on their topic already by a read-back, and deleted rather than sent again."""


class MetricsObserver:
    """The metrics of this process. (prometheus_client is imported here, not at the top: the
    relay process reports to its worker instead and stays smaller without it.)"""

    def __init__(self, service: str):
        from . import metrics as m

        self.service = service
        self._m = m

    def published(self, counts: Counter) -> None:
        for (topic, typ), n in counts.items():
            self._m.RECORDS_PRODUCED.labels(self.service, topic, typ).inc(n)

    def failed(self) -> None:
        self._m.RELAY_ERRORS.labels(self.service).inc()

    def read_back(self, n: int) -> None:
        self._m.RELAY_READ_BACK.labels(self.service).inc(n)

    def stats(self, backlog: int, oldest_age: float) -> None:
        self._m.OUTBOX_BACKLOG.labels(self.service).set(backlog)
        self._m.OUTBOX_OLDEST_AGE.labels(self.service).set(oldest_age)


def producer_for(bootstrap: str, client_id: str, security: KafkaSecurity | dict[str, Any] | None = None, *,
                 request_timeout_ms: int = 30000) -> AIOKafkaProducer:
    """A producer for the outbox; ``security``: a ``KafkaSecurity``, its configuration or None (PLAINTEXT)."""
    # Idempotent producer is off on purpose: Tansu does not support it. A round that did not
    # finish is read back before it is sent again (OutboxRelay._already_published); what is
    # left of at-least-once is absorbed by idempotent consumers (inbox), which production needs anyway.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id=client_id, acks="all", enable_idempotence=False,
        linger_ms=5, max_batch_size=256 * 1024, max_request_size=4 * 1024 * 1024,
        request_timeout_ms=request_timeout_ms, retry_backoff_ms=200, **client_kwargs(security),
    )


def reader_for(bootstrap: str, client_id: str,
               security: KafkaSecurity | dict[str, Any] | None = None) -> Callable[[], AIOKafkaConsumer]:
    """What the relay reads its own topics back with (:meth:`OutboxRelay._already_published`): a
    consumer of no group, made for each check and closed after it."""
    def make() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                request_timeout_ms=30000, isolation_level="read_uncommitted",
                                **client_kwargs(security))
    return make


READ_BACK_MARGIN = 500
"""Records read back before a partition's reported end beyond twice the rows about to go there
(:meth:`OutboxRelay._already_published`)."""

READ_BACK_SECONDS = 60
"""A read-back whose broker has neither sent records nor answered at a partition's position for
this long sends what it did not find there."""


class OutboxRelay:
    """Publishes unpublished outbox rows in ``seq`` order, then marks them published.

    Without an idempotent producer (the embedded broker speaks only ``InitProducerId`` v0), a
    send that failed or was cut off is ambiguous: the broker may have written some of its
    records. A relay that leads again (after a failed round, a database that went away, or
    another worker's relay killed mid-round) therefore reads back, before its first send, the
    partitions its rows go to and deletes the rows whose records are already there
    (:meth:`_already_published`), instead of publishing them a second time. It goes on
    checking, round after round, until a round's rows are none of them on the topic.

    What it counts as a failure (:meth:`RelayObserver.failed`, ``kit_outbox_relay_errors_total``),
    so that a relay that cannot publish shows whatever the cause: a round that raised (the
    broker refused or timed out, the database failed), a try at the leadership that failed
    because the database is away (retried every second), and each ``stall_seconds`` that a round
    has been waiting (a broker that does not answer: the producer itself gives a send up only
    after its 30 s request timeout, and a paused broker answers nothing). A round still waiting
    is not abandoned: it goes on until it completes or fails."""

    def __init__(self, pool: FairPool, producer: AIOKafkaProducer, *, service: str, batch: int = 2000,
                 poll_seconds: float = 0.5, observer: RelayObserver | None = None, stall_seconds: float = 10.0,
                 reader: Callable[[], AIOKafkaConsumer] | None = None):
        self.pool = pool
        # None: no read-back (a relay that may publish a record twice after an ambiguous send)
        self.reader = reader
        self._unsure = True  # rows about to be sent may be on their topic already
        self.read_back = 0  # rows found on their topic by a read-back, and not sent again
        self.stall_seconds = stall_seconds
        self.observer = observer or MetricsObserver(service)
        self.producer = producer
        self.service = service
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.wakeup = asyncio.Event()
        self._stopping = False
        self._lock_conn: asyncpg.Connection | None = None
        self._leading = False  # _lock_conn holds the service's relay lock
        self.published = 0
        self._partitioner = DefaultPartitioner()
        self._last_stats = 0.0
        self._in_round = False
        # seqs the broker has acknowledged whose DELETE has not gone through yet (the database
        # refused it: read-only, restarting, connection lost). The next round deletes them
        # before it reads anything, instead of publishing them again every round while the
        # database stays unwritable.
        self._acked: list[int] = []

    def notify(self) -> None:
        """Wake the relay now (called after a commit that wrote outbox rows)."""
        self.wakeup.set()

    async def _acquire_leadership(self) -> None:
        away = False
        while not self._stopping:
            try:
                if self._lock_conn is None or self._lock_conn.is_closed():
                    self._lock_conn = await self.pool.acquire()
                if await try_session_lock(self._lock_conn, f"outbox-relay:{self.service}"):
                    self._leading = True
                    self._unsure = True  # a relay before it may have sent some of the rows
                    return
                away = False  # another worker's relay leads: nothing wrong
            except UNAVAILABLE_ERRORS as e:
                self.observer.failed()
                if not away:
                    log.warning("outbox relay: database unavailable (%r); trying again every second", e)
                away = True
                await self._release_lock_conn()
            await asyncio.sleep(1.0)

    async def _release_lock_conn(self) -> None:
        self._leading = False  # the pool's reset of the connection lets the lock go
        if self._lock_conn is not None:
            try:
                await self.pool.release(self._lock_conn)
            except Exception:  # the connection is already broken
                pass
            self._lock_conn = None

    async def run(self) -> None:
        while not self._stopping:
            await self._acquire_leadership()
            try:
                while not self._stopping:
                    self._in_round = True
                    try:
                        n = await self._watched(self.publish_once())
                    finally:
                        self._in_round = False
                    if n < self.batch:
                        self.wakeup.clear()
                        try:
                            await asyncio.wait_for(self.wakeup.wait(), self.poll_seconds)
                        except asyncio.TimeoutError:
                            pass
            except asyncio.CancelledError:
                raise
            except Exception as e:  # broker or database away: keep the rows, try again
                self._unsure = True  # the round may have sent some of its rows
                self.observer.failed()
                log.warning("outbox relay round failed: %r; retrying", e)
                await self._release_lock_conn()
                await asyncio.sleep(1.0)

    async def _watched(self, publishing: Coroutine[Any, Any, int]) -> int:
        """Run a round, counting a failure for each ``stall_seconds`` it has been waiting."""
        task = asyncio.ensure_future(publishing)
        waited = 0.0
        try:
            while True:
                done, _ = await asyncio.wait((task,), timeout=self.stall_seconds)
                if done:
                    return task.result()
                waited += self.stall_seconds
                self.observer.failed()
                log.warning("outbox relay round waiting for %.1fs on the broker or the database; still waiting", waited)
        finally:
            if not task.done():  # the relay is being cancelled: so is its round, which gives its connection back
                task.cancel()
                await asyncio.wait((task,), timeout=5.0)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop after the round in progress (a round cut between the broker's ack and the
        DELETE leaves the next leader to read its records back: avoidable work), then publish
        what is left (:meth:`_drain`), all within ``timeout``."""
        self._stopping = True
        self.wakeup.set()
        deadline = time.monotonic() + timeout
        while self._in_round and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self._in_round:
            await self._drain(deadline)
        await self._release_lock_conn()

    async def _drain(self, deadline: float) -> None:
        """The worker stops its relay once its consumers and timers have stopped: what they
        committed after the relay's last round (a period closed a moment before) is published
        now rather than by the next worker to start, when this relay leads or can take the lead
        now (another worker's relay that still leads publishes it). Whatever is left at the
        deadline, or on a broker or database away, stays for the next worker."""
        try:
            if not self._leading:
                if self._lock_conn is None or self._lock_conn.is_closed():
                    self._lock_conn = await asyncio.wait_for(self.pool.acquire(), max(0.0, deadline - time.monotonic()))
                if not await try_session_lock(self._lock_conn, f"outbox-relay:{self.service}"):
                    return
                self._leading = True
                self._unsure = True
            while (left := deadline - time.monotonic()) > 0:
                if await asyncio.wait_for(self.publish_once(), left) < self.batch:
                    return
        except Exception as e:  # incl. the deadline: nothing is lost, the rows stay in the outbox
            log.warning("outbox relay stopping with rows left for the next worker (%r)", e)

    @contextlib.asynccontextmanager
    async def _round_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A leading relay's rounds run on the session that holds its lock, so that a round runs
        only while the lock is held. The server may end that session (a restart, an operator's
        ``pg_terminate_backend``, a dropped connection): the lock is gone and another worker's
        relay takes the lead, while a round on a fresh connection from the pool would go on
        publishing the same rows as well. On the lock's session, the round fails instead, and
        the relay tries for the lead again."""
        if self._leading and self._lock_conn is not None:
            yield self._lock_conn
        else:  # a round outside run(): a test's, or one before the relay leads
            async with self.pool.acquire() as conn:
                yield conn

    async def publish_once(self) -> int:
        async with self._round_connection() as conn:
            if self._acked:  # published already: only their DELETE is owed
                await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", self._acked)
                self._acked = []
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers, message_type, "
                "(extract(epoch FROM created_at) * 1000)::bigint FROM outbox ORDER BY seq LIMIT $1", self.batch)
            taken = len(rows)  # off the outbox this round: a full batch reads on at once
            wire = await self._wire(rows)
            if wire and self._unsure and self.reader is not None:
                there = await self._already_published(wire)
                self._unsure = bool(there)  # until a round whose rows are none of them there
                if there:
                    await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", sorted(there))
                    self.read_back += len(there)
                    self.observer.read_back(len(there))
                    log.info("outbox relay: %d of %d rows are on their topics already (sent by a round "
                             "that did not finish): deleted, not sent again", len(there), taken)
                    wire = [w for w in wire if w[0] not in there]
            if wire:
                counts = await self._send(wire)
                self._acked = [w[0] for w in wire]
                self.observer.published(counts)
                self.published += len(wire)
                await conn.execute("DELETE FROM outbox WHERE seq = ANY($1::bigint[])", self._acked)
                self._acked = []
            if time.monotonic() - self._last_stats < 1.0 and taken == self.batch:
                return taken
            self._last_stats = time.monotonic()
            self.observer.stats(*await read_stats(conn))
        return taken

    def _too_large(self, seq: int, topic: str, key: bytes | None, value: bytes, headers) -> tuple:
        """An outbox row over the record limit (written before the limit was lowered, or by hand):
        the broker would refuse it on every round and hold back every row after it. It goes to
        the service's DLQ instead, as a dead letter that fits (its first bytes, its size, why)."""
        size = record_size(key, value, headers)
        log.error("outbox record %d for %s is %d bytes, over the %d bytes a record may hold "
                  "(KAFKA_MAX_RECORD_BYTES): dead-lettered, not published", seq, topic, size, MAX_RECORD_BYTES)
        key, value, extra = fit_dead_letter(key, value)
        dead = [("dlq.origin.topic", topic), ("dlq.origin.outbox_seq", str(seq)),
                ("dlq.error.reason", "record_too_large"), ("dlq.error.class", "RecordTooLarge"),
                ("dlq.error.message", str(RecordTooLarge(topic, size, MAX_RECORD_BYTES))), *extra]
        return f"{self.service}.dlq.v1", key, value, dead, "dead_letter"

    async def _send(self, wire: list[tuple]) -> Counter:
        """Publish rows as :meth:`_wire` gives them, in order, and wait for acks=all; return
        counts by (topic, type).

        Records go out in per-partition batches (the partition chosen as Kafka's default
        partitioner does: murmur2 of the key), which keeps each key's order and costs a
        fraction of one send() per record. A record's timestamp (CreateTime) is when its row was
        written, in the transaction that made the event, not when the relay got to it: a consumer
        compares it with the event's time (``EVENT_TIME_MAX_SKEW_SECONDS``), which a relay that
        was away for a while must not push out of reach."""
        open_batches: dict[tuple[str, int], object] = {}
        counts: Counter = Counter()
        futures = []
        for seq, topic, part, key, value, hdrs, message_type, stamp in wire:
            counts[(topic, message_type)] += 1
            batch = open_batches.get((topic, part))
            if batch is None:
                batch = open_batches[(topic, part)] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=stamp, headers=hdrs) is None:
                futures.append(await self.producer.send_batch(batch, topic, partition=part))
                batch = open_batches[(topic, part)] = self.producer.create_batch()
                if batch.append(key=key, value=value, timestamp=stamp, headers=hdrs) is None:
                    raise ValueError(f"outbox record {seq} is larger than the producer's batch size")
        for (topic, part), batch in open_batches.items():
            if batch.record_count():
                futures.append(await self.producer.send_batch(batch, topic, partition=part))
        # every batch settles before the round ends, failed or not: none of this round's records
        # may still be on its way to the broker when the next round reads back what is there
        results = await asyncio.gather(*futures, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return counts

    async def _wire(self, rows) -> list[tuple]:
        """Each row as it is sent: ``(seq, topic, partition, key, value, headers, type, timestamp)``.

        The partition is chosen as Kafka's default partitioner does (murmur2 of the key; a row
        without a key by its ``seq``), so the same row goes to the same partition whichever
        relay sends it. A row over the record limit becomes its dead letter (:meth:`_too_large`)."""
        partitions: dict[str, list[int]] = {}
        part_of: dict[tuple[str, bytes], int] = {}
        limit = MAX_RECORD_BYTES
        out = []
        for seq, topic, key, value, headers, message_type, stamp in rows:
            if len(value) + len(key or b"") > limit // 2 and record_size(key, value, headers) > limit:
                topic, key, value, headers, message_type = self._too_large(seq, topic, key, value, headers)
            parts = partitions.get(topic)
            if parts is None:
                parts = partitions[topic] = sorted(await self.producer.partitions_for(topic))
            if key is None:
                part = parts[seq % len(parts)]
            else:  # bytea: the key's bytes, sent as they were written
                part = part_of.get((topic, key))
                if part is None:
                    part = part_of[(topic, key)] = self._partitioner(key, parts, parts)
            hdrs = _DEFAULT_HEADERS if headers is None else [(k, v.encode()) for k, v in headers]
            out.append((seq, topic, part, key, value, hdrs, message_type, stamp))
        return out

    async def _already_published(self, wire: list[tuple]) -> set[int]:
        """The seqs of the rows (as :meth:`_wire` gives them) whose records are on their
        partitions already.

        A round that failed or was cut off (a relay killed, a broker that went away, a database
        lost between the broker's ack and the DELETE) may have had any part of its records
        written, and they are the last ones on their partitions: no other relay publishes while
        this one leads. So the check reads, for each partition the rows go to, from
        ``2 n + READ_BACK_MARGIN`` records before the partition's reported end (``n``: the rows
        that go there; twice for a batch the producer itself sent again) on, until the broker
        answers with nothing more (:func:`read_to_end`), which also reads past an end the broker
        reports short of what is readable. A row is published when a record with the same key and
        value is there: the value holds the event's id, and the relay sends a row's bytes
        unchanged. Each record there answers for one row, so a row written twice is published
        twice.

        A broker that refuses the service's principal the right to read its own topics
        (missing ACLs) is logged, and the rows are sent as before: at least once."""
        want: dict[TopicPartition, list[tuple[int, bytes | None, bytes]]] = {}
        for seq, topic, part, key, value, *_ in wire:
            want.setdefault(TopicPartition(topic, part), []).append((seq, key, value))
        assert self.reader is not None
        consumer = self.reader()
        try:
            await consumer.start()
            tps = list(want)
            consumer.assign(tps)
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(begin[tp], end[tp] - 2 * len(want[tp]) - READ_BACK_MARGIN))
            there: dict[TopicPartition, Counter] = {tp: Counter() for tp in tps}

            def count(tp: TopicPartition, records: list) -> None:
                for r in records:
                    there[tp][(r.key, r.value)] += 1

            try:  # to where the broker answers with nothing (past an end reported short)
                await read_to_end(consumer, tps, on_records=count, give_up=READ_BACK_SECONDS)
            except ReadTimedOut:
                log.warning("outbox relay: the broker did not answer the read-back of its partitions for %ds; "
                            "sending what it did not find there", READ_BACK_SECONDS)
        except (TopicAuthorizationFailedError, GroupAuthorizationFailedError) as e:
            log.error("outbox relay cannot read its own topics back (%r): rows of a round that did not "
                      "finish are sent again; grant the service's principal Read on its topics", e)
            self.reader = None
            return set()
        finally:
            await consumer.stop()
        published: set[int] = set()
        for tp, pending in want.items():
            seen = there[tp]
            for seq, key, value in pending:
                if seen[(key, value)] > 0:
                    seen[(key, value)] -= 1
                    published.add(seq)
        return published
