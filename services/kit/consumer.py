"""The batch consumer: the hot path of every service.

fetch many records → decode → drop duplicates (inbox) → handler → one PostgreSQL transaction
(state + inbox + outbox) → commit Kafka offsets. Auto-commit is off: an offset is committed
only after the records before it are durably handled, so a crash anywhere redelivers, and the
inbox turns the redelivery into a no-op.

Bad input never stops the consumer: an undecodable record, or one whose handler raises, is
written to ``<svc>.dlq.v1`` (through the outbox, in the same transaction, so it is never lost)
with its origin and the error in headers. When the database is away the batch is retried,
not acknowledged. Records of one partition are handled in order, so per-key order holds.
While a lane waits for PostgreSQL, the others decode and handle their batches and the next
fetch proceeds.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from pydantic import ValidationError

from schemas.envelope import (NUL_ESCAPE, DecodeError, Message, decode_envelope, decode_payload, skim_envelope,
                              source_fits, typed_adapter)
from schemas.topics import BY_NAME, Topic

from . import clock
from .kafkasec import KafkaSecurity, client_kwargs
from . import metrics as m
from .db import CONFLICT_ERRORS, UNAVAILABLE_ERRORS, FairPool
from . import outbox as _outbox
from .outbox import OutboxRecord, fit_dead_letter
from .outbox import write as write_outbox
from .sql import bulk
from .handlers import Handler, dispatch
from .identity import Principal, TokenVerifier, Unauthenticated
from .uow import UnitOfWork, service_source

log = logging.getLogger("kit.consumer")


class _Fault(Exception):
    """A handler raised on some message of a batch: redo the batch isolating each message."""


@dataclass(slots=True)
class Item:
    """One consumed record, decoded or not."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None  # the record's timestamp, milliseconds since 1970
    timestamp_type: int = 0  # 0: CreateTime (its producer's word), 1: LogAppendTime (the broker's)
    token: bytes | None = None  # the bearer token of its ``authorization`` header (own intake only)
    message: Message | None = None
    error: DecodeError | None = None
    ignored: bool = False


def dlq_record(service_dlq: str, item: Item, reason: str, error: BaseException) -> OutboxRecord:
    """A dead-letter record: the original bytes and key, origin and error in headers.

    Whatever the record holds, writing this one cannot fail: the key and value are stored as
    bytes (exactly as received), and every header value is text that PostgreSQL's jsonb and
    Kafka's UTF-8 headers accept (see :func:`header_text`). A record too large to be published
    again keeps its first bytes (:func:`~services.kit.outbox.fit_dead_letter`)."""
    key, value, truncated = fit_dead_letter(item.key, item.value or b"")
    return OutboxRecord(
        topic=service_dlq,
        key=key,
        value=value,
        message_type="dead_letter",
        headers=[
            ("dlq.origin.topic", header_text(item.topic)),
            ("dlq.origin.partition", str(item.partition)),
            ("dlq.origin.offset", str(item.offset)),
            ("dlq.error.reason", header_text(reason)),
            ("dlq.error.class", header_text(type(error).__name__)),
            ("dlq.error.message", header_text(error, DLQ_MESSAGE_MAX)),
            ("dlq.failed_at", datetime.now(timezone.utc).isoformat()),
            *_sender_header(item),
            *truncated,
        ],
    )


def fault_reason(e: BaseException) -> str:
    """The ``dlq.error.reason`` of a message its handling failed on."""
    if isinstance(e, CONFLICT_ERRORS):
        return "conflict"
    if isinstance(e, _outbox.RecordTooLarge):
        return "record_too_large"
    if isinstance(e, asyncpg.DataError):  # a value PostgreSQL refuses: the message's content
        return "invalid_data"
    return "handler_error"


def _sender_header(item: Item) -> list[tuple[str, str]]:
    """``dlq.origin.sub``: the verified sender of a dead-lettered command (its token is not kept)."""
    p = item.message.principal if item.message is not None else None
    return [("dlq.origin.sub", header_text(p.sub, 255))] if isinstance(p, Principal) else []


def bearer(headers: Sequence[tuple[str, bytes]] | None) -> bytes | None:
    """The token of a record's ``authorization: Bearer <JWT>`` header (the last one), else None.

    This is how a Kafka-only client says who it is, as an HTTP client does: the same JWT, in a
    record header. The consumer verifies it; a dead letter never copies it (headers are not
    carried over), so the DLQ holds no usable token."""
    token = None
    for name, value in headers or ():
        if name.lower() == "authorization" and value:
            scheme, _, rest = bytes(value).partition(b" ")
            token = rest.strip() if scheme.lower() == b"bearer" and rest.strip() else b""
    return token


DLQ_MESSAGE_MAX = 2000  # characters of the error message kept in the dlq.error.message header


def header_text(value: object, limit: int = DLQ_MESSAGE_MAX) -> str:
    """``str(value)``, at most ``limit`` characters, as text a jsonb value can hold: U+0000
    (which jsonb refuses) becomes U+FFFD, and an unpaired surrogate (not encodable as UTF-8)
    a backslash escape. An object whose ``str()`` raises is named by its class instead."""
    try:
        s = str(value)[:limit]
    except Exception:
        s = f"<{type(value).__name__} that cannot be shown>"
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def _position_key(it: Item) -> tuple[str, str]:
    """The inbox key of an undecodable record: its position and content (a redelivery is a no-op)."""
    return f"kafka:{it.topic}:{it.partition}", f"{it.offset}:{zlib.crc32(it.value or b'')}"


_TYPE_ATTRIBUTE = b'"type":"'


def _type_hint(value: bytes) -> bytes | None:
    """The ``type`` a record's value names first, as the kit writes an envelope (its attributes
    before its data), or None. Only a hint: a record whose hint is not among the types a topic
    decodes skips the typed fast path (which could only fail) for the precise one, which reads
    the envelope itself; a wrong hint costs time, never a wrong decision."""
    i = value.find(_TYPE_ATTRIBUTE)
    if i < 0:
        return None
    i += len(_TYPE_ATTRIBUTE)
    j = value.find(b'"', i)
    return value[i:j] if j > 0 else None


async def claim(conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Record distinct (source, id) pairs in the inbox; return those that were new.

    The keys are decoded envelopes' (``source``, ``id``), which the envelope keeps storable
    (no U+0000, bounded lengths: see :class:`schemas.envelope.CloudEvent`), or the position
    keys of undecodable records: nothing a producer sends can make this insert fail."""
    if not keys:
        return set()
    source = keys[0][0]
    if all(k[0] == source for k in keys):  # the usual batch: one source, so send it once
        rows = await conn.fetch(
            "INSERT INTO inbox (source, id) SELECT $1::text, id FROM jsonb_array_elements_text($2::text::jsonb) AS t(id) "
            "ON CONFLICT DO NOTHING RETURNING id", source, bulk([k[1] for k in keys]))
        if len(rows) == len(keys):  # all new (the keys are distinct)
            return set(keys)
        return {(source, r[0]) for r in rows}
    rows = await conn.fetch(
        "INSERT INTO inbox (source, id) SELECT k->>0, k->>1 FROM jsonb_array_elements($1::text::jsonb) AS t(k) "
        "ON CONFLICT DO NOTHING RETURNING source, id", bulk(keys))
    return {(r[0], r[1]) for r in rows}


class BatchConsumer:
    """Consumes ``topics`` as consumer group ``group_id`` and feeds ``handler`` in batches."""

    def __init__(self, *, service: str, name: str, topics: Sequence[Topic], group_id: str, bootstrap: str,
                 pool: FairPool, handler: Handler, on_commit=None, max_records: int = 1000,
                 fetch_max_wait_ms: int = 50, fetch_max_bytes: int = 2 * 1024 * 1024,
                 auto_offset_reset: str = "earliest", lanes: int = 1,
                 verifier: TokenVerifier | None = None, max_record_age: float = 3600.0,
                 security: KafkaSecurity | None = None, max_event_skew: float = 300.0,
                 session_timeout_ms: int = 10_000):
        self.service = service
        self.session_timeout_ms = session_timeout_ms
        self.security = security
        self.name = name
        self.topics = list(topics)
        self.group_id = group_id
        self.bootstrap = bootstrap
        self.pool = pool
        self.handler = handler
        self.on_commit = on_commit
        self.max_records = max_records
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_max_bytes = fetch_max_bytes
        self.auto_offset_reset = auto_offset_reset
        self.lanes = lanes
        self._lane_of: dict[tuple[str, int], int] = {}
        self.dlq_topic = f"{service}.dlq.v1"
        assert self.dlq_topic in BY_NAME
        self.consumer: AIOKafkaConsumer | None = None
        self.processed = 0
        self._stopping = False
        self.verifier = verifier
        self._tokens: dict[bytes, bytes] = {}
        self.max_record_age = max_record_age
        own_intake = [t.name for t in self.topics if t.kind == "intake" and t.service == service]
        self._intake = own_intake[0] if own_intake else None
        self._allowed = {t.name: (t.message_types, t.kind == "events" and t.service != service) for t in self.topics}
        # provenance: an events topic carries only its owner's events (source /services/<owner>)
        self._trusted = {t.name: service_source(t.service) if t.kind == "events" else None for t in self.topics}
        self.max_event_skew = max_event_skew
        self._event_time = getattr(handler, "event_time", None)
        interested = getattr(handler, "types", None)
        # the types decoded per topic: all its types, or, on another service's events topic,
        # only those the handler reacts to (the rest are skipped undecoded)
        self._types = {name: (allowed & interested if tolerant and interested is not None else allowed)
                       for name, (allowed, tolerant) in self._allowed.items()}
        self._type_bytes = {name: frozenset(t.encode() for t in types) for name, types in self._types.items()}
        self.assigned = asyncio.Event()
        self._done: dict[TopicPartition, int] = {}  # the next offset to handle, as last committed by us
        self._lag_reported: set[TopicPartition] = set()  # partitions whose lag this worker reports
        self._seen: dict[TopicPartition, int] = {}  # the offset after the highest record fetched
        self._first: dict[TopicPartition, int] = {}  # the first offset this worker fetched
        self._retrying: dict[int, float] = {}  # batches being retried: when their first try failed
        self._rewound_at: float | None = None  # when the loop first went back to the committed offsets

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            *[t.name for t in self.topics], bootstrap_servers=self.bootstrap, group_id=self.group_id,
            client_id=f"{self.service}-{self.name}", enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset, fetch_max_wait_ms=self.fetch_max_wait_ms,
            max_partition_fetch_bytes=min(1024 * 1024, self.fetch_max_bytes), fetch_max_bytes=self.fetch_max_bytes,
            session_timeout_ms=self.session_timeout_ms, heartbeat_interval_ms=min(1000, self.session_timeout_ms // 3),
            rebalance_timeout_ms=5000,
            max_poll_interval_ms=300000, isolation_level="read_uncommitted", **client_kwargs(self.security),
        )
        await self.consumer.start()

    async def stop(self) -> None:
        self._stopping = True
        if self.consumer is not None:
            await self.consumer.stop()

    # -- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        """Fetch, hand each partition's records to its lane, commit offsets behind the lanes.

        Lanes are long-lived workers, each with its own transaction stream; a partition always
        goes to the same lane (so a key's records are handled in order), while different lanes,
        the next fetch and the offset commits all proceed at once. The offsets of a batch are
        committed only after every lane has committed that batch, and in batch order.
        """
        assert self.consumer is not None
        failures = 0
        while not self._stopping:
            try:
                await self._pipeline()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # Not the input's fault (that is dead-lettered) nor an outage (retried): a bug.
                # Never skip a batch: go back to the last committed offsets and try again.
                failures += 1
                if self._rewound_at is None:  # held up until a batch commits again: a stalled lane
                    self._rewound_at = time.monotonic()
                m.BATCH_RETRIES.labels(self.service, self.name, "rewind").inc()
                log.exception("batch failed unexpectedly; rewinding to the committed offsets")
                await asyncio.sleep(min(0.5 * failures, 10.0))
                await self._rewind()

    async def _pipeline(self) -> None:
        assert self.consumer is not None
        n = max(1, self.lanes)
        queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(n)]
        backlog = [0] * n  # batches handed to each lane and not finished yet
        lane_free = asyncio.Event()  # a lane finished a batch
        workers = [asyncio.ensure_future(self._lane(q, i, backlog, lane_free)) for i, q in enumerate(queues)]
        batches: deque[tuple[dict[TopicPartition, int], list[asyncio.Future]]] = deque()
        dispatched = asyncio.Event()
        committer = asyncio.ensure_future(self._committer(batches, dispatched))
        try:
            while not self._stopping:
                # Fetch only the partitions whose lane has room: a busy lane holds back its own
                # partitions (their records stay in the fetcher's buffer), never the others'.
                assigned = self.consumer.assignment()
                if assigned:
                    self.assigned.set()
                full = [i for i in range(n) if backlog[i] >= self.LANE_DEPTH]
                if full:
                    wanted = [tp for tp in assigned if self._lane_of.get((tp.topic, tp.partition)) not in full]
                    lane_free.clear()
                    if not wanted:
                        await lane_free.wait()
                        continue
                    items = await self._fetch_or_wake(wanted, lane_free)
                else:
                    items = await self._fetch()
                if committer.done():
                    committer.result()  # raises why it stopped: never commit past a failed batch
                if items:
                    split: dict[int, list[Item]] = {}
                    offsets: dict[TopicPartition, int] = {}
                    for it in items:
                        key = (it.topic, it.partition)
                        lane = self._lane_of.get(key)
                        if lane is None:  # round-robin on first sight: balanced, and fixed per partition
                            lane = self._lane_of[key] = len(self._lane_of) % n
                        split.setdefault(lane, []).append(it)
                        tp = TopicPartition(*key)
                        if tp not in offsets:
                            self._first.setdefault(tp, it.offset)  # where this worker began reading it
                        offsets[tp] = it.offset + 1  # a partition's records come in order
                    for tp, end in offsets.items():
                        if end > self._seen.get(tp, -1):
                            self._seen[tp] = end
                    done = []
                    for lane, lane_items in split.items():
                        fut = asyncio.get_running_loop().create_future()
                        backlog[lane] += 1
                        queues[lane].put_nowait((lane_items, fut))
                        done.append(fut)
                    batches.append((offsets, done))
                    dispatched.set()
                self._update_lag()
            batches.append(({}, []))  # the end: the committer returns once all before it are committed
            dispatched.set()
            await committer
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if not committer.done():
                committer.cancel()
                await asyncio.gather(committer, return_exceptions=True)

    LANE_DEPTH = 2  # batches per lane: one being handled, one decoded and waiting

    async def _fetch_or_wake(self, partitions: list[TopicPartition], wake: asyncio.Event) -> list[Item]:
        """Fetch from ``partitions``, or give up (returning nothing) as soon as ``wake`` is set.

        Giving up is safe: records are taken from the fetcher's buffer and returned in one
        step, so a fetch cancelled while it waits has taken nothing."""
        fetch = asyncio.ensure_future(self._fetch(partitions))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait((fetch, woken), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            fetch.cancel()
            raise
        finally:
            woken.cancel()
        if fetch.done():
            return fetch.result()
        fetch.cancel()  # a lane has room again: fetch its partitions too
        await asyncio.gather(fetch, return_exceptions=True)
        return fetch.result() if not fetch.cancelled() else []

    async def _lane(self, queue: asyncio.Queue, index: int = 0, backlog: list[int] | None = None,
                    free: asyncio.Event | None = None) -> None:
        while True:
            items, fut = await queue.get()
            try:
                self._decode(items)
                await self._process_until_done(items)
            except asyncio.CancelledError:
                fut.cancel()
                raise
            except Exception as e:
                fut.set_exception(e)
            else:
                fut.set_result(None)
            if backlog is not None:
                backlog[index] -= 1
            if free is not None:
                free.set()

    async def _rewind(self) -> None:
        assert self.consumer is not None
        for tp in self.consumer.assignment():
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    async def _fetch(self, partitions: Sequence[TopicPartition] = ()) -> list[Item]:
        assert self.consumer is not None
        try:
            batches = await self.consumer.getmany(*partitions, timeout_ms=1000, max_records=self.max_records)
        except (KafkaError, IllegalStateError) as e:
            log.warning("fetch failed: %r", e)
            await asyncio.sleep(0.5)
            return []
        intake = self._intake
        return [Item(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp, r.timestamp_type,
                     self._interned(bearer(r.headers)) if tp.topic == intake else None)
                for tp, records in batches.items() for r in records]

    TOKENS_KEPT = 4096

    def _interned(self, token: bytes | None) -> bytes | None:
        """One bytes object per distinct token: a sender's records share it while they wait in a
        lane (a token is some 600 bytes, and a few hundred senders send thousands of records)."""
        if not token:
            return token
        pool = self._tokens
        kept = pool.get(token)
        if kept is None:
            if len(pool) >= self.TOKENS_KEPT:
                pool.clear()
            kept = pool[token] = token
        return kept

    def _decode(self, items: list[Item], tokens: dict[bytes, object] | None = None) -> None:
        """Decode a batch's records, just before it is handled: a lane's waiting batch stays in
        its compact raw form (a decoded record takes several times the memory of its bytes).

        A record of an events topic must come from the topic's owner and be dated near its
        record timestamp (:meth:`_untrusted`); any other is an error, dead-lettered. Each
        distinct token is verified once (``tokens``: what the batch's tokens verified to, when
        the batch is decoded in parts)."""
        adapter = None
        topic = None
        trusted = None
        now = time.time()
        if tokens is None:
            tokens = {}
        for it in items:
            if it.topic != topic:
                topic = it.topic
                allowed, tolerant = self._allowed[topic]
                types = self._types[topic]
                type_bytes = self._type_bytes[topic]
                adapter = typed_adapter(types)
                trusted = self._trusted[topic]
            value = it.value
            if value is not None and len(value) + len(it.key or b"") > _outbox.MAX_RECORD_BYTES:
                it.error = DecodeError("record_too_large", f"the record's key and value are "
                                       f"{len(value) + len(it.key or b'')} bytes, over the {_outbox.MAX_RECORD_BYTES} "
                                       "bytes a record may hold (KAFKA_MAX_RECORD_BYTES)")
                continue
            if tolerant and self.skipped(it):
                it.ignored = True
                continue
            if adapter is not None and value is not None and NUL_ESCAPE not in value and (
                    (hint := _type_hint(value)) is None or hint in type_bytes):
                try:  # the fast path: envelope and typed payload in one pass over the bytes
                    env = adapter.validate_json(value)
                    if source_fits(env):
                        if trusted is not None:
                            it.error = self._untrusted(it, env, env.data, trusted)
                            if it.error is not None:
                                continue
                        it.message = Message(envelope=env, payload=env.data, raw=value,
                                             principal=self._sender(it, now, tokens) if it.topic == self._intake else None)
                        continue
                except ValidationError:
                    pass
            try:  # the precise path: which reason, which field
                env = decode_envelope(value if value is not None else b"")
                if trusted is not None and env.source != trusted:
                    it.error = self._untrusted(it, env, None, trusted)
                elif tolerant and env.type not in types:
                    it.ignored = True  # a type we do not react to, perhaps newer than us
                else:
                    payload = decode_payload(env, allowed)
                    if trusted is not None:
                        it.error = self._untrusted(it, env, payload, trusted)
                        if it.error is not None:
                            continue
                    it.message = Message(envelope=env, payload=payload, raw=value,
                                         principal=self._sender(it, now, tokens) if it.topic == self._intake else None)
            except DecodeError as e:
                it.error = e
            except Exception as e:  # a reader's bug must not stop the partition either
                log.exception("decoding a record of %s failed unexpectedly", it.topic)
                it.error = DecodeError("undecodable", f"{type(e).__name__}: {e}")

    def tolerant(self, topic: str) -> bool:
        """Whether ``topic`` may carry types this consumer does not react to (another service's
        events), which it skips."""
        return self._allowed[topic][1]

    def skipped(self, it: Item) -> bool:
        """Whether a record is one this consumer skips, as :meth:`_decode` would find it ignored:
        on a topic where it tolerates types it does not react to, one of those (the type its text
        names first, then its envelope's), its envelope sound (:func:`skim_envelope`: the data
        neither validated nor kept) and from the topic's owner. Any other is decoded in full,
        which says why it is refused where it is."""
        value = it.value
        if value is None or not self.tolerant(it.topic) or (
                len(value) + len(it.key or b"") > _outbox.MAX_RECORD_BYTES):
            return False
        hint = _type_hint(value)
        if hint is None or hint in self._type_bytes[it.topic]:
            return False
        env = skim_envelope(value)
        trusted = self._trusted[it.topic]
        return env is not None and env.type not in self._types[it.topic] and (trusted is None or env.source == trusted)

    def _untrusted(self, it: Item, env, payload, trusted: str) -> DecodeError | None:
        """Why an events topic's record is not to be believed, or None.

        ``untrusted_source``: its ``source`` is not the topic owner's (``/services/<owner>``),
        so anyone able to produce to the topic could have written it. ``implausible_time``: the
        event time a rule would use (the envelope's ``time``, or the time the handler's
        ``event_time`` reads from the payload) is more than ``max_event_skew`` seconds
        (``EVENT_TIME_MAX_SKEW_SECONDS``) from the record's timestamp, read on this worker's
        clock (a simulated calendar maps it as it maps any real instant). Caps and periods
        are dated by that time, so a backdated or future-dated event is refused rather than
        counted in another period. ``payload`` None: only the source is checked."""
        if env.source != trusted:
            return DecodeError("untrusted_source", f"source {header_text(env.source, 200)!r} is not {trusted!r}, "
                               f"the only source {it.topic} accepts", "source")
        skew = self.max_event_skew
        ts = it.timestamp
        if payload is None or skew <= 0 or ts is None or ts < 0:
            return None
        at = env.time
        hook = self._event_time
        if hook is not None:
            try:
                at = hook(payload, at)
            except Exception as e:  # a reader's bug must not stop the partition
                log.exception("the event time of a record of %s could not be read", it.topic)
                return DecodeError("undecodable", f"event time: {type(e).__name__}: {e}")
        if at is None:
            return None
        real = ts / 1000
        clk = clock.current()
        if not clk.simulated:
            off = at.timestamp() - real
            if -skew <= off <= skew:
                return None
        else:
            lo, hi = clk.at(real - skew), clk.at(real + skew)  # a month's step within reach is fine
            if lo <= at <= hi:
                return None
            off = (at - clk.at(real)).total_seconds()
        return DecodeError("implausible_time", f"the event time {at.isoformat()} is {abs(off):.0f} s "
                           f"{'before' if off < 0 else 'after'} the record's timestamp, more than the "
                           f"{skew:.0f} s (EVENT_TIME_MAX_SKEW_SECONDS) an event time may be from it", "time")

    def _sender(self, it: Item, now: float | None = None,
                tokens: dict[bytes, object] | None = None) -> Principal | Unauthenticated:
        """Who sent a command record: the holder of its token, verified as of the record's
        timestamp (so a redelivery after the token expired is still the same sender), or the
        reason there is none (the policy turns it into an ``unauthenticated`` rejection).

        A CreateTime timestamp is the producer's own word, and a producer holding an expired
        token could backdate its record into the token's lifetime. Such a timestamp is believed
        only within ``max_record_age`` seconds before now (``INTAKE_MAX_RECORD_AGE_SECONDS``)
        and the verifier's leeway after it: an expired token is good for at most that long
        after its ``exp``. A LogAppendTime timestamp (a broker honouring the intake topic's
        ``message.timestamp.type``, as Kafka does) is the broker's and is believed as it is. An
        old record whose token is still valid now is not refused (backdating gains it nothing), so
        a backlog is refused only where its tokens have expired since."""
        if it.token is None:
            return Unauthenticated("missing_token", "the record has no authorization header (Bearer <JWT>)")
        if self.verifier is None:
            return Unauthenticated("jwks_unavailable", "this worker has no JWKS")
        at = it.timestamp / 1000 if it.timestamp is not None and it.timestamp >= 0 else None
        if at is not None and it.timestamp_type == 0 and self.max_record_age > 0:
            now = time.time() if now is None else now
            if at < now - self.max_record_age and not self._valid_now(it.token, now):
                return Unauthenticated(
                    "record_too_old", f"the record's timestamp (CreateTime, set by its producer) is {now - at:.0f} s "
                    f"old, more than the {self.max_record_age:.0f} s (INTAKE_MAX_RECORD_AGE_SECONDS) a producer's "
                    "timestamp is believed for; send the command again with a current token")
            if at > now + self.verifier.leeway:
                return Unauthenticated(
                    "record_from_the_future", f"the record's timestamp (CreateTime, set by its producer) is "
                    f"{at - now:.0f} s ahead of this worker's clock")
        try:
            if tokens is None:
                return self.verifier.verify(it.token, at=at)
            entry = tokens.get(it.token)
            if entry is None:  # ``tokens``: what each token of this batch verified to (or why not)
                try:
                    entry = self.verifier.verified(it.token)
                except Unauthenticated as e:
                    entry = e
                tokens[it.token] = entry
            if isinstance(entry, Unauthenticated):
                return entry
            return self.verifier.valid_at(entry, at)  # type: ignore[arg-type]
        except Unauthenticated as e:
            return e

    def _valid_now(self, token: bytes, now: float) -> bool:
        assert self.verifier is not None
        try:
            self.verifier.verify(token, at=now)
            return True
        except Unauthenticated:
            return False

    MAX_CONFLICTS = 3  # a batch's conflicts before it is redone one message at a time
    MAX_ISOLATED_CONFLICTS = 3  # ... and then before the message that keeps conflicting is a fault
    MAX_FAILURES = 3  # unexplained failures of a batch before its messages are dead-lettered

    async def _process_until_done(self, items: list[Item]) -> None:
        """Handle a batch durably.

        While the database is away the batch is retried for as long as it takes (never
        acknowledged meanwhile). Anything else is bounded: a batch that keeps conflicting with
        concurrent transactions is redone one message at a time, and then the message that
        still conflicts is dead-lettered; a batch that keeps failing for a reason no message
        can be blamed for ends in the DLQ as a whole. While a batch is being retried the lane
        counts as stalled (:meth:`stalled_seconds`, on /readyz and in a metric)."""
        delay = 0.2
        conflicts = failures = 0
        isolate = False
        last_failure: BaseException | None = None
        try:
            while True:
                started = time.perf_counter()
                try:
                    if failures >= self.MAX_FAILURES:
                        await self._dead_letter_all(items, "invalid_data" if isinstance(last_failure, asyncpg.DataError)
                                                    else "retries_exhausted", last_failure)
                    else:
                        await self._process(items, isolate=isolate or conflicts >= self.MAX_CONFLICTS,
                                            conflicts_are_faults=conflicts >= self.MAX_CONFLICTS + self.MAX_ISOLATED_CONFLICTS)
                    m.BATCH_DURATION.labels(self.service, self.name).observe(time.perf_counter() - started)
                    m.BATCH_SIZE.labels(self.service, self.name).observe(len(items))
                    return
                except _Fault as f:
                    log.warning("a batch step failed (%r); handling the batch one message at a time", f.__cause__)
                    isolate = True
                except UNAVAILABLE_ERRORS as e:
                    self._stalled(items)
                    m.BATCH_RETRIES.labels(self.service, self.name, "unavailable").inc()
                    log.warning("database unavailable (%r); batch of %d kept, retrying in %.1fs", e, len(items), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except CONFLICT_ERRORS as e:
                    self._stalled(items)
                    conflicts += 1
                    m.BATCH_RETRIES.labels(self.service, self.name, "conflict").inc()
                    log.info("conflict with a concurrent transaction (%r); retry %d", e, conflicts)
                    await asyncio.sleep(0.05 * conflicts)
                except asyncpg.DataError as e:
                    # PostgreSQL refused a value the records carried (class 22: a character it
                    # cannot store, a number out of range...): bad input, not an outage. Each
                    # message alone, then, if the kit's own batch writes still fail, the batch
                    # by its records' positions: never retried as if the database were away.
                    self._stalled(items)
                    last_failure = e
                    if isolate:
                        failures = self.MAX_FAILURES
                    isolate = True
                    m.BATCH_RETRIES.labels(self.service, self.name, "invalid_data").inc()
                    log.warning("PostgreSQL refused a value of a batch of %d (%r); %s", len(items), e,
                                "dead-lettering it" if failures >= self.MAX_FAILURES else "one message at a time")
                except Exception as e:  # not the handlers' (those are faults): the kit's own writes failed
                    self._stalled(items)
                    failures += 1
                    isolate = True
                    last_failure = e
                    m.BATCH_RETRIES.labels(self.service, self.name, "failure").inc()
                    log.exception("batch of %d failed (%d of %d tries)", len(items), failures, self.MAX_FAILURES)
                    await asyncio.sleep(0.2 * failures)
        finally:
            self._retrying.pop(id(items), None)

    def _stalled(self, items: list[Item]) -> None:
        """Note that a batch is being retried (its lane does not advance meanwhile)."""
        self._retrying.setdefault(id(items), time.monotonic())

    @property
    def stalled_since(self) -> float | None:
        """Monotonic time since which the oldest batch being retried has been held up, or since
        the loop went back to the committed offsets after an unexpected failure (until a batch
        commits again)."""
        oldest = min(self._retrying.values(), default=None)
        if self._rewound_at is not None and (oldest is None or self._rewound_at < oldest):
            return self._rewound_at
        return oldest

    def stalled_seconds(self) -> float:
        """How long the oldest batch being retried has been held up (0 when none is)."""
        since = self.stalled_since
        return 0.0 if since is None else time.monotonic() - since

    def _dedup(self, items: list[Item]) -> tuple[list[tuple[str, str]], dict[tuple[str, str], Item], list[Item]]:
        """Inbox keys in batch order, the item of each, and second copies of a message."""
        keys: list[tuple[str, str]] = []
        by_key: dict[tuple[str, str], Item] = {}
        extra_copies: list[Item] = []  # the same message twice in one batch
        for it in items:
            if it.ignored:
                continue
            if it.message is not None:
                env = it.message.envelope
                k = (env.source, env.id)
            else:
                k = _position_key(it)
            if k not in by_key:
                by_key[k] = it
                keys.append(k)
            else:
                extra_copies.append(it)
        return keys, by_key, extra_copies

    async def _process(self, items: list[Item], isolate: bool = False, conflicts_are_faults: bool = False) -> None:
        dead: list[OutboxRecord] = []
        dlq_reasons: list[tuple[str, str]] = []
        keys, by_key, extra_copies = self._dedup(items)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                new = await self._claim(conn, keys)
                fresh: list[Item] = []
                for k in keys:
                    if k not in new:
                        continue
                    it = by_key[k]
                    if it.message is None:
                        assert it.error is not None
                        dead.append(dlq_record(self.dlq_topic, it, it.error.reason, it.error))
                        dlq_reasons.append((it.topic, it.error.reason))
                    else:
                        fresh.append(it)
                uow = self._unit_of_work(conn, fresh)
                if fresh:
                    if isolate:
                        faults = await self._handle_isolated(uow, fresh, conflicts_are_faults)
                    else:
                        try:
                            faults = await dispatch(self.handler, uow, [it.message for it in fresh])
                            await uow.flush()
                        except (*UNAVAILABLE_ERRORS, *CONFLICT_ERRORS):
                            raise
                        except Exception as e:
                            raise _Fault() from e  # roll back; redone one message at a time
                        faults = [(by_key[(msg.source, msg.id)], e) for msg, e in faults]
                    for it, e in faults:
                        reason = fault_reason(e)
                        dead.append(dlq_record(self.dlq_topic, it, reason, e))
                        dlq_reasons.append((it.topic, reason))
                try:
                    await self._write_outbox(conn, uow.records + dead)
                except _outbox.RecordTooLarge as e:  # an event too large: blamed on the message that made it
                    raise _Fault() from e
        # committed: run the handlers' after-commit effects, count, wake the relay
        uow.committed()
        uow.close()
        dup = Counter(by_key[k].topic for k in keys if k not in new) if len(new) < len(keys) else Counter()
        dup.update(it.topic for it in extra_copies)
        for topic, n in dup.items():
            m.RECORDS_DUPLICATE.labels(self.service, topic).inc(n)
        if len(keys) + len(extra_copies) < len(items):
            for topic, n in Counter(it.topic for it in items if it.ignored).items():
                m.RECORDS_IGNORED.labels(self.service, topic).inc(n)
        consumed = Counter((it.topic, it.message.envelope.type) for it in fresh)  # type: ignore[union-attr]
        for it in extra_copies:  # a second copy of a message handled now counts as consumed too
            if it.message is not None and (it.message.source, it.message.id) in new:
                consumed[(it.topic, it.message.type)] += 1
        for (topic, typ), n in consumed.items():
            m.RECORDS_CONSUMED.labels(self.service, topic, typ).inc(n)
        for topic, reason in dlq_reasons:
            m.RECORDS_DEAD_LETTERED.labels(self.service, topic, reason).inc()
        self.processed += len(items)
        if self.on_commit is not None and (uow.records or dead):
            self.on_commit()

    async def _claim(self, conn: asyncpg.Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Record a batch's inbox keys in its transaction; those that were new (a rebuild has
        claimed them before the batch's turn)."""
        return await claim(conn, keys)

    def _unit_of_work(self, conn: asyncpg.Connection, fresh: list[Item]) -> UnitOfWork:
        """The unit of work of a batch (a rebuild gives each message the time it was handled live)."""
        return UnitOfWork(conn, self.service)

    async def _write_outbox(self, conn: asyncpg.Connection, records: list[OutboxRecord]) -> None:
        """Write a batch's records to the outbox (a rebuild suppresses them: they were published)."""
        await write_outbox(conn, records)

    async def _handle_isolated(self, uow: UnitOfWork, fresh: list[Item],
                               conflicts_are_faults: bool) -> list[tuple[Item, Exception]]:
        """Each message as a batch of its own, in its own savepoint, its events written to the
        outbox inside it: whatever fails (its batch step, its handler, its flush, its records)
        is undone and blamed on that message alone."""
        faults: list[tuple[Item, Exception]] = []
        for it in fresh:
            mark = len(uow.records)
            try:
                async with uow.savepoint():
                    found = await dispatch(self.handler, uow, [it.message], conflicts_are_faults=conflicts_are_faults)
                    if found:
                        faults.append((it, found[0][1]))
                    await uow.flush()
                    await self._write_outbox(uow.conn, uow.records[mark:])
            except UNAVAILABLE_ERRORS:
                raise
            except CONFLICT_ERRORS as e:
                if not conflicts_are_faults:
                    raise
                faults.append((it, e))
            except Exception as e:
                log.error("%s %s failed (topic %s partition %d offset %d): %r; dead-lettered",
                          it.message.type, it.message.id, it.topic, it.partition, it.offset, e)
                faults.append((it, e))
            else:
                del uow.records[mark:]  # written already
        return faults

    async def _dead_letter_all(self, items: list[Item], reason: str, error: BaseException | None) -> None:
        """The last resort for a batch that keeps failing: each of its records goes to the DLQ,
        claimed by its position (a key that cannot fail, whatever the record holds)."""
        by_key = {_position_key(it): it for it in items if not it.ignored}
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                new = await claim(conn, list(by_key))
                await self._write_outbox(conn, [dlq_record(self.dlq_topic, it, reason, error or RuntimeError(reason))
                                          for k, it in by_key.items() if k in new])
        for k, it in by_key.items():
            if k in new:
                m.RECORDS_DEAD_LETTERED.labels(self.service, it.topic, reason).inc()
        log.error("batch of %d dead-lettered after %d failed tries: %r", len(items), self.MAX_FAILURES, error)
        self.processed += len(items)
        if self.on_commit is not None:
            self.on_commit()

    async def _committer(self, batches: deque, dispatched: asyncio.Event) -> None:
        """Commit offsets in batch order, each only once its lanes and every earlier batch are
        durably handled; batches finished meanwhile are merged into one commit. A failed batch
        stops every later commit (the pipeline then rewinds to the committed offsets)."""
        while True:
            while not batches:
                dispatched.clear()
                await dispatched.wait()
            offsets, handled = batches[0]
            if not handled and not offsets:
                return  # the end marker
            await asyncio.gather(*handled)  # raises if the batch failed
            batches.popleft()
            merged = dict(offsets)
            while batches and batches[0][1] and all(f.done() and not f.cancelled() and f.exception() is None
                                                    for f in batches[0][1]):
                merged.update(batches.popleft()[0])
            await self._commit_offsets(merged)

    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit offsets of durably handled records (of partitions still assigned to us)."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return
        self._done.update(offsets)
        self._rewound_at = None  # handled again since the rewind
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as e:
            # A rebalance moved partitions away: the new owner re-reads from the last committed
            # offset and the inbox drops what we already handled.
            log.info("offset commit failed after a rebalance (%r); the inbox absorbs redelivery", e)

    def _update_lag(self) -> None:
        """``kit_consumer_lag`` per assigned partition: see :func:`partition_lag`."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        # A partition a rebalance moved away is no longer ours to report: its last value would
        # stay in the gauge for good, and the max over replicas would show lag that is not there.
        for tp in self._lag_reported - assigned:
            try:
                m.CONSUMER_LAG.remove(self.service, tp.topic, str(tp.partition))
            except KeyError:
                pass
        self._lag_reported &= assigned
        for tp in assigned:
            done = self._done.get(tp, self._first.get(tp))
            lag = partition_lag(self.consumer.highwater(tp), self._seen.get(tp), done)
            if lag is not None:
                m.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(lag)
                self._lag_reported.add(tp)


def partition_lag(highwater: int | None, seen_end: int | None, next_offset: int | None) -> int | None:
    """Records of a partition not yet handled: its end minus the next offset to handle.

    The end is the larger of the broker's reported high watermark and the offset after the
    highest record fetched: the embedded broker may report a high watermark short of what is
    readable, and a lag read from it alone would be low (0 while records are still coming).
    ``next_offset``: what this worker last committed, or, before its first commit, the first
    offset it fetched (so a lane stuck on its first batch shows its lag). None: nothing known."""
    ends = [e for e in (highwater, seen_end) if e is not None]
    if not ends or next_offset is None:
        return None
    return max(0, max(ends) - next_offset)
