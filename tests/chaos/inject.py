"""The campaign's injected streams, beside the simulator's load (all seeded):

- :class:`Redeliverer` reads the intake and events topics as they are written and produces a
  share of their records again, unchanged (same key, value, headers and timestamp): at once
  (duplicates) or 5-30 s later, behind newer records of the same key (out-of-order
  redeliveries). Its copies carry a ``chaos-copy`` header so that it never copies a copy.
- :class:`Poisoner` produces records no service can use, each carrying a marker
  (``chaos-poison-<seed>-<n>``): bytes that are not JSON, JSON that is not an envelope, an
  envelope cut short, and a key holding a NUL byte. Every one must end in a DLQ.
- :class:`HttpFuzzer` posts commands generated from the services' OpenAPI documents
  (``schemas/openapi/<svc>.json``), valid in shape or broken on purpose (a field missing, a
  wrong type, a NUL byte, a body over the size limit), each with a token of some role. Any
  5xx but a 503 is a finding; a 503 counts only while a fault is on.
"""
from __future__ import annotations

import asyncio
import json
import random
import string
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.topics import BY_SERVICE

ROOT = Path(__file__).resolve().parents[2]
COPY_HEADER = "chaos-copy"


def intake_topics() -> list[str]:
    return [t.intake.name for t in BY_SERVICE.values()]


def events_topics() -> list[str]:
    return [t.events.name for t in BY_SERVICE.values()]


@dataclass
class Counts:
    seen: int = 0
    duplicates: int = 0
    late: int = 0
    poison: list[str] = field(default_factory=list)  # markers
    poison_nul_key: int = 0
    http: int = 0
    http_status: dict[int, int] = field(default_factory=dict)
    http_5xx: list[str] = field(default_factory=list)  # outside faults


class Redeliverer:
    def __init__(self, bootstrap: str, rng: random.Random, counts: Counts, *, dup_share: float = 0.07,
                 late_share: float = 0.03):
        self.bootstrap, self.rng, self.counts = bootstrap, rng, counts
        self.dup_share, self.late_share = dup_share, late_share
        self.stopping = asyncio.Event()

    async def run(self, producer: AIOKafkaProducer) -> None:
        c = AIOKafkaConsumer(*intake_topics(), *events_topics(), bootstrap_servers=self.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="latest", fetch_max_wait_ms=100)
        await c.start()
        pending: list[asyncio.Task] = []
        try:
            while not self.stopping.is_set():
                try:
                    batches = await c.getmany(timeout_ms=300, max_records=500)
                except Exception:  # the broker paused or restarting: try again
                    await asyncio.sleep(1)
                    continue
                for recs in batches.values():
                    for r in recs:
                        if any(k == COPY_HEADER for k, _ in r.headers or ()):
                            continue
                        self.counts.seen += 1
                        x = self.rng.random()
                        if x < self.dup_share:
                            self.counts.duplicates += 1
                            pending.append(asyncio.create_task(self._again(producer, r, 0)))
                        elif x < self.dup_share + self.late_share:
                            self.counts.late += 1
                            pending.append(asyncio.create_task(self._again(producer, r, self.rng.uniform(5, 30))))
                pending = [t for t in pending if not t.done()]
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await c.stop()

    async def _again(self, producer: AIOKafkaProducer, r, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        headers = [*(r.headers or ()), (COPY_HEADER, b"1")]
        for _ in range(60):  # through a broker pause
            try:
                await (await producer.send(r.topic, r.value, key=r.key, headers=headers, timestamp_ms=r.timestamp))
                return
            except Exception:
                await asyncio.sleep(1)


class Poisoner:
    KINDS = ("not_json", "not_envelope", "cut_envelope", "nul_key")

    def __init__(self, bootstrap: str, rng: random.Random, seed: int, counts: Counts):
        self.bootstrap, self.rng, self.seed, self.counts = bootstrap, rng, seed, counts
        self.n = 0

    def record(self) -> tuple[str, bytes, bytes]:
        self.n += 1
        marker = f"chaos-poison-{self.seed}-{self.n}"
        kind = self.KINDS[self.n % len(self.KINDS)]
        key = f"chaos-{self.n}".encode()
        if kind == "not_json":
            value = b"\xff\xfe" + marker.encode() + bytes(self.rng.getrandbits(8) for _ in range(24))
        elif kind == "not_envelope":
            value = json.dumps({"chaos": marker, "n": self.n}).encode()
        elif kind == "cut_envelope":
            value = json.dumps({"specversion": "1.0", "id": marker, "source": "/chaos", "type": "x.y.z.v1",
                                "data": {"marker": marker}}).encode()[:-7]
        else:
            key = b"chaos\x00" + str(self.n).encode()
            value = json.dumps({"chaos": marker}).encode() + b"\x00"
            self.counts.poison_nul_key += 1
        topic = self.rng.choice(intake_topics())
        return topic, key, value, marker

    async def one(self, producer: AIOKafkaProducer) -> None:
        topic, key, value, marker = self.record()
        for _ in range(60):
            try:
                await (await producer.send(topic, value, key=key, headers=[("content-type", b"application/cloudevents+json")]))
                self.counts.poison.append(marker)
                return
            except Exception:
                await asyncio.sleep(1)


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def generate(doc: dict, schema: dict, rng: random.Random, depth: int = 0):
    """A value of ``schema`` (roughly: enough to reach the handler or its validation)."""
    schema = _resolve(doc, schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return generate(doc, rng.choice(schema[key]), rng, depth + 1)
    if "allOf" in schema:
        out = {}
        for s in schema["allOf"]:
            v = generate(doc, s, rng, depth + 1)
            if isinstance(v, dict):
                out.update(v)
        return out
    t = schema.get("type")
    if isinstance(t, list):
        t = rng.choice(t)
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        req = set(schema.get("required", ()))
        return {k: generate(doc, s, rng, depth + 1) for k, s in props.items()
                if k in req or (depth < 4 and rng.random() < 0.4)}
    if t == "array":
        return [generate(doc, schema.get("items", {}), rng, depth + 1) for _ in range(rng.randint(0, 2))] if depth < 5 else []
    if t == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 1000)))
    if t == "number":
        return rng.uniform(float(schema.get("minimum", 0)), float(schema.get("maximum", 1000)))
    if t == "boolean":
        return rng.random() < 0.5
    if t == "null":
        return None
    if schema.get("format") == "date-time":
        return "2026-11-0%dT10:00:00+08:00" % rng.randint(1, 9)
    n = rng.randint(max(1, int(schema.get("minLength", 1))), max(1, min(int(schema.get("maxLength", 24)), 24)))
    return "".join(rng.choice(string.ascii_lowercase + string.digits + "-") for _ in range(n))


def mutate(body, rng: random.Random):
    """Break a generated command on purpose (or not: about a third go as generated)."""
    x = rng.random()
    if not isinstance(body, dict) or x < 0.3:
        return body, "as_generated"
    if x < 0.45 and body:
        body.pop(rng.choice(list(body)))
        return body, "field_missing"
    if x < 0.6:
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        if data:
            k = rng.choice(list(data))
            data[k] = rng.choice([12345, [], {"x": 1}, True, None])
        return body, "wrong_type"
    if x < 0.8:
        data = body.get("data") if isinstance(body.get("data"), dict) and body["data"] else body
        k = rng.choice(list(data)) if data else "id"
        target = body if rng.random() < 0.5 else data
        key = "id" if target is body else k
        target[key] = f"chaos\x00{rng.randint(0, 10**6)}"
        return body, "nul_byte"
    if x < 0.85:
        return {"huge": "x" * (2 * 1024 * 1024)}, "too_large"
    body["type"] = "chaos.unknown.v1"
    return body, "unknown_type"


class HttpFuzzer:
    def __init__(self, urls: dict[str, list[str]], tokens: dict[str, str], rng: random.Random, counts: Counts,
                 fault_on):
        self.urls, self.tokens, self.rng, self.counts, self.fault_on = urls, tokens, rng, counts, fault_on
        self.docs = {s: json.loads((ROOT / "schemas" / "openapi" / f"{s}.json").read_text()) for s in urls}

    def body(self, svc: str):
        doc = self.docs[svc]
        op = doc["paths"]["/v1/commands"]["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = generate(doc, schema, self.rng)
        if isinstance(body, dict):
            body["id"] = f"chaos-http-{uuid.UUID(int=self.rng.getrandbits(128))}"
            body.setdefault("source", "/chaos")
        return mutate(body, self.rng)

    async def one(self, session: aiohttp.ClientSession) -> None:
        svc = self.rng.choice(sorted(self.urls))
        url = self.rng.choice(self.urls[svc]) + "/v1/commands"
        body, how = self.body(svc)
        token = self.tokens[self.rng.choice(sorted(self.tokens))]
        raw = json.dumps(body, ensure_ascii=False).encode()
        during = self.fault_on()
        try:
            async with session.post(url, data=raw, headers={"Authorization": f"Bearer {token}",
                                                            "Content-Type": "application/json"},
                                    timeout=aiohttp.ClientTimeout(total=10)) as r:
                status = r.status
                text = (await r.text())[:200]
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return  # a worker being killed or restarted: no answer is no finding
        self.counts.http += 1
        self.counts.http_status[status] = self.counts.http_status.get(status, 0) + 1
        if status >= 500 and not (status == 503 and (during or self.fault_on())):
            self.counts.http_5xx.append(f"{svc} {how} {status} {text}")


async def paced(interval_s: float, fn, stopping: asyncio.Event, rng: random.Random) -> None:
    """Call ``fn()`` about every ``interval_s`` seconds (jittered) until ``stopping``."""
    while not stopping.is_set():
        try:
            await fn()
        except Exception:
            pass
        await asyncio.sleep(rng.uniform(0.5, 1.5) * interval_s)


def now() -> float:
    return time.monotonic()
