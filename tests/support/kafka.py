"""Helpers that talk to the real broker: produce envelopes or raw bytes, read a topic (to where
the broker answers with nothing more, not to the end it reports)."""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.common import Payload
from schemas.envelope import CONTENT_TYPE, CloudEvent, encode, envelope_for
from services.kit.kafkaread import ReadTimedOut, read_to_end


async def produce(bootstrap: str, topic: str, items: list[tuple], headers=None) -> None:
    """``items``: ``(key, value)``, or ``(key, value, headers)`` for a record's own headers, or
    ``(key, value, headers, timestamp_ms)`` for its own timestamp too (headers None: the default)."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await p.start()
    try:
        default = headers or [("content-type", CONTENT_TYPE.encode())]
        futs = [await p.send(topic, it[1], key=it[0].encode() if it[0] else None,
                             headers=it[2] if len(it) > 2 and it[2] is not None else default,
                             timestamp_ms=it[3] if len(it) > 3 else None)
                for it in items]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


def command(payload: Payload, *, source: str = "/tests", id: str | None = None, **kw) -> CloudEvent:
    return envelope_for(payload, source=source, id=id, **kw)


async def send(bootstrap: str, topic: str, *envelopes: CloudEvent, token: str | None = None) -> None:
    """Produce ``envelopes`` to ``topic``. On an intake topic each record carries its sender's
    token (``authorization: Bearer``): ``token``, else one minted for the person the command
    names (:func:`tests.support.identity.sender_token`)."""
    if topic.endswith(".events.v1"):
        await produce(bootstrap, topic, [(e.subject, encode(as_published(topic, e)), None, _stamp(e))
                                         for e in envelopes])
        return
    if not topic.endswith(".intake.v1"):
        await produce(bootstrap, topic, [(e.subject, encode(e)) for e in envelopes])
        return
    from .identity import command_headers

    given = [("content-type", CONTENT_TYPE.encode()), ("authorization", f"Bearer {token}".encode())]
    await produce(bootstrap, topic, [(e.subject, encode(e), command_headers(e) if token is None else given)
                                     for e in envelopes])


def as_published(topic: str, e: CloudEvent) -> CloudEvent:
    """``e`` as its service publishes it on its events topic ``topic``: a test's envelope (source
    ``/tests``) gets the owner's source, ``/services/<svc>``, the only one a consumer accepts
    there (another source is left as it is: a test of a forged event)."""
    if e.source != "/tests":
        return e
    return e.model_copy(update={"source": f"/services/{topic.split('.', 1)[0]}"})


def _stamp(e: CloudEvent) -> int | None:
    """A record timestamp at the event's time, as the relay stamps it (when its row was
    written): a test may date an event in the past, and the consumer bounds how far an event's
    time may be from its record's timestamp (``EVENT_TIME_MAX_SKEW_SECONDS``)."""
    return round(e.time.timestamp() * 1000) if e.time is not None else None


async def _reader(bootstrap: str, topic: str, **kw) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer with every partition of ``topic`` assigned from its start (waiting a
    few seconds for the topic's metadata)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                         group_id=None, **kw)
    await c.start()
    try:
        parts = c.partitions_for_topic(topic) or set()
        for _ in range(50):
            if parts:
                break
            await asyncio.sleep(0.1)
            await c._client.force_metadata_update()  # noqa: SLF001
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
    except BaseException:
        await c.stop()
        raise
    return c, tps


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` now (its consumer records, partition by partition, each in offset
    order), read to where whole fetch answers bring nothing more (:func:`read_to_end`: the
    embedded broker may report an end short of what is readable)."""
    c, tps = await _reader(bootstrap, topic, fetch_max_wait_ms=100, max_partition_fetch_bytes=8 << 20)
    try:
        by: dict[TopicPartition, list[Any]] = {tp: [] for tp in tps}
        await read_to_end(c, tps, on_records=lambda tp, records: by[tp].extend(records))
        return [r for tp in tps for r in by[tp]]
    finally:
        await c.stop()


async def read_all(bootstrap: str, topic: str, *, min_count: int = 0, timeout: float = 20.0,
                   predicate=None) -> list[dict[str, Any]]:
    """Every record on ``topic`` (all partitions, from the start) as dicts with value/key/headers.

    Read to the topic's end (:func:`read_to_end`), and on as records come until at least
    ``min_count`` of them (matching ``predicate``) are there, or the timeout.
    """
    c, tps = await _reader(bootstrap, topic, fetch_max_wait_ms=50)
    out: list[dict[str, Any]] = []

    def keep(tp: TopicPartition, records: list) -> None:
        for r in records:
            try:
                value = orjson.loads(r.value)
            except Exception:
                value = r.value
            out.append({"topic": tp.topic, "partition": tp.partition, "offset": r.offset,
                        "key": r.key.decode() if r.key else None, "value": value,
                        "headers": {k: v.decode() for k, v in (r.headers or [])}})

    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await read_to_end(c, tps, on_records=keep, poll_ms=200, give_up=max(0.5, deadline - loop.time()))
            except ReadTimedOut:
                pass
            matching = [o for o in out if predicate is None or predicate(o)]
            if len(matching) >= min_count or loop.time() > deadline:
                return matching
            await asyncio.sleep(0.1)
    finally:
        await c.stop()


def of_type(records: list[dict], type_: str) -> list[dict]:
    return [r["value"] for r in records if isinstance(r["value"], dict) and r["value"].get("type") == type_]
