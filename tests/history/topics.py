"""The events topics of a generated history: what each service would have published, in time order.

A :class:`Pub` is one event as its service publishes it: the envelope's ``source``, ``id``,
``time``, ``causationid`` and ``correlationid``, and the payload. :func:`write_dump` encodes
them as the kit encodes what a worker emits (:func:`schemas.envelope.build`: CloudEvents,
structured JSON, ``subject`` = the payload's aggregate id, which is also the record key) in
time order into a gzip file of one line per record (topic, key, timestamp in ms, token, value,
tab-separated; the token empty but for a command). A :class:`Pub` with a :class:`Sender` is a
command instead, as an app sends it on the service's intake topic: ``source`` ``/users/<sub>``,
and its sender's token, which the dump carries in a column of its own (:class:`Tokens`, the
history's identity provider, signs it). :func:`produce` sends a dump to a broker as the outbox
relay (or an app) sends records: the partition by murmur2 of the key (Kafka's default
partitioner), the ``content-type`` header (and a command's ``authorization: Bearer``), the
event's time as the record's timestamp, each key's records in order.

The dump is what keeps the topics: the embedded broker holds everything in memory, so a
history's topics outlive the run that made them only as this file (``make bench-history``
loads it into a broker of its own before it measures the rebuilds).
"""
from __future__ import annotations

import asyncio
import gzip
import heapq
import math
import os
import pickle
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from schemas.envelope import build
from schemas.topics import BY_SERVICE
from schemas.wire import CONTENT_TYPE, CONTENT_TYPE_HEADER
from services.kit.runtime import user_source

if TYPE_CHECKING:
    from services.kit.identity import Principal
    from tests.support.identity import TestIdentity

RANK = {"grid": 0, "orders": 1, "points": 2, "assessment": 3, "party": 4}
"""At the same instant a cause comes before what it causes: a grid case before the order and
the award it leads to, an order's evaluation before its award, everything before a close."""

_HEADERS = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]
TOKEN_HOURS = 1
"""A sender's token is issued at the start of each hour they send in and lives two (an app
renews its token before it expires): a replay verifies each command's token as of its record's
timestamp, within that hour."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a command, as their token says: ``scope`` as ``(kind, ids)`` pairs, sorted."""

    sub: str
    roles: tuple[str, ...]
    scope: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, p: "Principal") -> "Sender":
        s = p.scope
        kinds = (("streets", s.streets), ("communities", s.communities), ("grids", s.grids),
                 ("departments", s.departments))
        return cls(p.sub, tuple(sorted(p.roles)), tuple((k, tuple(sorted(v))) for k, v in kinds if v))

    @property
    def source(self) -> str:
        return user_source(self)  # type: ignore[arg-type]  (it reads ``sub``)


def community_officer(community_id: str) -> Sender:
    """The officer ``officer-<community>`` of a community, as the orders' and the points' policies
    want for their steps (with the community in scope)."""
    return Sender(f"officer-{community_id}", ("community_officer",), (("communities", (community_id,)),))


def next_round(at: datetime, interval: float) -> datetime:
    """When a timer that runs at every multiple of ``interval`` seconds (since the epoch, as a
    history's timers run) first runs after ``at``."""
    return datetime.fromtimestamp((math.floor(at.timestamp() / interval) + 1) * interval, timezone.utc)


class Tokens:
    """The tokens of a history's senders, signed by its identity provider (one token a sender
    and hour, :data:`TOKEN_HOURS`, kept while that hour's commands are encoded)."""

    def __init__(self, identity: "TestIdentity"):
        self.identity = identity
        self._kept: dict[tuple[Sender, int], bytes] = {}
        self._hour = -1

    def __call__(self, sender: Sender, at: datetime) -> bytes:
        hour = int(at.timestamp() // (3600 * TOKEN_HOURS))
        if hour != self._hour:  # the commands come in time order: the earlier hours' are done
            self._kept.clear()
            self._hour = hour
        found = self._kept.get((sender, hour))
        if found is None:
            found = self._kept[(sender, hour)] = self.identity.token(
                sender.sub, sender.roles, dict(sender.scope), lifetime=2 * 3600 * TOKEN_HOURS,
                now=hour * 3600 * TOKEN_HOURS).encode()
        return found


@dataclass(slots=True)
class Pub:
    """One published event: ``at`` is the envelope's time (when its service handled what
    caused it), ``cause`` the id of that message (None: a timer's), ``story`` the correlation
    id (None: the event starts a story: its own id). With a ``sender``, a command that person
    sent at ``at`` on the service's intake topic (``cause`` and ``story`` None)."""

    at: datetime
    seq: int
    service: str
    id: str
    payload: Any
    cause: str | None = None
    story: str | None = None
    sender: Sender | None = None

    @property
    def source(self) -> str:
        return self.sender.source if self.sender is not None else f"/services/{self.service}"

    @property
    def topic(self) -> str:
        t = BY_SERVICE[self.service]
        return (t.intake if self.sender is not None else t.events).name

    def sort_key(self) -> tuple[datetime, int, int]:
        return self.at, RANK[self.service], self.seq


def in_time_order(pubs: Iterable[Pub]) -> list[Pub]:
    return sorted(pubs, key=Pub.sort_key)


class Spill:
    """Events that come nearly in time order, kept on disk in exact time order with only a window
    of them in memory: the grid's events come case by case, each case's after its report, and the
    cases in the order of their reports; the other services' events (and the ledger's postings,
    and the earnings that lead to awards) as their worlds handle what is due in time order.
    :meth:`add` holds an event back until :meth:`release` says that nothing earlier can come any
    more, then writes it (pickled) to a file of its own; :meth:`__iter__` reads them back in
    order, as often as asked. A history's events held as objects take about 2 kB each, so five
    years of a large district would not fit in memory; pickled they take about 750 bytes, and
    compressed as a stream (gzip, level 1) about 110 in the file, for some 7 µs of CPU more an
    event written and read."""

    def __init__(self, key: Callable[[Any], tuple] = Pub.sort_key):
        """``key`` orders what it holds (unique for each item); its first element is the time
        that :meth:`release` compares (by default a :class:`Pub`'s ``sort_key``)."""
        fd, name = tempfile.mkstemp(prefix="history-spill-", suffix=".pickle")  # in TMPDIR
        self.path = Path(name)
        self.key = key
        os.close(fd)
        self._file = gzip.open(self.path, "wb", compresslevel=1)  # a seventh of the pickles' size
        self._held: list[tuple[tuple, Any]] = []
        self._released: datetime | None = None  # the latest ``before`` given to :meth:`release`
        self.count = 0

    def add(self, item: Any) -> None:
        k = self.key(item)
        if self._released is not None and k[0] < self._released:
            what = f"event {item.id}" if isinstance(item, Pub) else f"{item!r:.200}"
            raise ValueError(f"{what} at {k[0]} comes after events up to {self._released} were written")
        heapq.heappush(self._held, (k, item))

    def release(self, before: datetime) -> None:
        """Write every event held whose time is before ``before``: no event added later may be."""
        held = self._held
        if self._released is None or before > self._released:
            self._released = before
        while held and held[0][0][0] < before:
            pickle.dump(heapq.heappop(held)[1], self._file, pickle.HIGHEST_PROTOCOL)
            self.count += 1

    def close(self) -> None:
        """Write every event still held; nothing may be added after."""
        if not self._file.closed:
            if self._held:
                self.release(datetime.max.replace(tzinfo=self._held[0][0][0].tzinfo))
            self._file.close()

    def __iter__(self) -> Iterator[Any]:
        self.close()
        with gzip.open(self.path, "rb") as f:
            while True:
                try:
                    yield pickle.load(f)  # one pickler, one unpickler a record: no memo between them
                except EOFError:
                    return

    def __len__(self) -> int:
        """How many events it holds in all; it takes no more after (like iterating)."""
        self.close()
        return self.count

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def merged(*streams: Iterable[Pub]) -> Iterator[Pub]:
    """The events of ``streams`` (each a :class:`Spill` of events, or events already in time
    order: :func:`in_time_order`) together in time order."""
    return heapq.merge(*streams, key=Pub.sort_key)


Record = tuple[str, bytes, int, bytes, bytes]
"""(topic, key, timestamp in ms, token, value): ``token`` is a command's sender's, else empty."""


def encoded(p: Pub, tokens: Tokens | None = None) -> Record:
    """The record of a published event, or of a command (its token by ``tokens``)."""
    env, value = build(p.payload, source=p.source, time=p.at, id=p.id, correlationid=p.story, causationid=p.cause)
    if p.sender is None:
        token = b""
    elif tokens is None:
        raise ValueError(f"command {p.id} needs a token: no identity provider given")
    else:
        token = tokens(p.sender, p.at)
    return p.topic, env.subject.encode(), int(p.at.timestamp() * 1000), token, value


def write_dump(path: Path, pubs: Iterable[Pub], progress=None, task=None, tokens: Tokens | None = None) -> Counter:
    """Write ``pubs`` (already in time order) to ``path``, commands with tokens from
    ``tokens``; returns the records per topic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    tmp = path.with_suffix(path.suffix + ".part")
    with gzip.open(tmp, "wb", compresslevel=1) as f:
        lines = []
        for p in pubs:
            topic, key, ts, token, value = encoded(p, tokens)
            if b"\t" in key or b"\n" in key:
                raise ValueError(f"a record key holds a tab or a newline: {key!r}")
            lines.append(b"%s\t%s\t%d\t%s\t%s\n" % (topic.encode(), key, ts, token, value))
            counts[topic] += 1
            if len(lines) >= 10_000:
                f.write(b"".join(lines))
                if progress is not None:
                    progress.advance(task, len(lines))
                lines = []
        f.write(b"".join(lines))
        if progress is not None:
            progress.advance(task, len(lines))
    tmp.replace(path)
    return counts


def read_dump(path: Path) -> Iterator[Record]:
    """The records of a dump, in its order (a dump written before commands were kept has no
    token column: its records have none)."""
    with gzip.open(path, "rb") as f:
        for line in f:
            parts = line.rstrip(b"\n").split(b"\t", 4)  # a value (JSON) holds no raw tab
            if len(parts) == 4:
                parts.insert(3, b"")
            topic, key, ts, token, value = parts
            yield topic.decode(), key, int(ts), token, value


async def produce(bootstrap: str, records: Iterable[Record], progress=None, task=None) -> Counter:
    """Send records to ``bootstrap`` (their topics must exist), as the outbox relay (or, a
    command, its sender's app) sends them; returns the records per topic once the broker has
    acknowledged them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    partitioner = DefaultPartitioner()
    await producer.start()
    counts: Counter = Counter()
    try:
        parts: dict[str, list[int]] = {}
        part_of: dict[tuple[str, bytes], int] = {}
        batches: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future] = []
        sent = 0
        for topic, key, ts, token, value in records:
            ps = parts.get(topic)
            if ps is None:
                ps = parts[topic] = sorted(await producer.partitions_for(topic))
            part = part_of.get((topic, key))
            if part is None:
                part = part_of[(topic, key)] = partitioner(key, ps, ps)
            batch = batches.get((topic, part))
            if batch is None:
                batch = batches[(topic, part)] = producer.create_batch()
            headers = _HEADERS if not token else [*_HEADERS, ("authorization", b"Bearer " + token)]
            if batch.append(key=key, value=value, timestamp=ts, headers=headers) is None:
                futures.append(await producer.send_batch(batch, topic, partition=part))
                batch = batches[(topic, part)] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=ts, headers=headers) is None:
                    raise ValueError(f"a record of {topic} is larger than a batch")
            counts[topic] += 1
            sent += 1
            if len(futures) >= 64:  # keep what is in flight bounded
                await asyncio.gather(*futures)
                futures = []
            if progress is not None and sent % 10_000 == 0:
                progress.advance(task, 10_000)
        for (topic, part), batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*futures)
        if progress is not None:
            progress.advance(task, sent % 10_000)
    finally:
        await producer.stop()
    return counts
