"""Who sent a command on the intake topic: the JWT of its ``authorization`` header, verified as
of the record's timestamp, then the service's policy. On a real broker and PostgreSQL, through
the kit's consumer (tests/integration/kit/support.py)."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.envelope import CONTENT_TYPE, encode, envelope_for
from schemas.grid import LogPatrol, RegisterCase
from schemas.topics import GRID
from services.kit import devidentity
from services.kit.handlers import handles
from services.kit.identity import TokenVerifier
from services.kit.policy import SUB, Policy, allow
from tests.support.identity import AUDIENCE, ISSUER, test_identity
from tests.support.kafka import read_all

from .patrols import SENDERS, PatrolCounter
from .support import Pipeline

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone(timedelta(hours=8)))
GRID_A = "110105001002001"
GRID_B = "110105002001001"


class Guarded(PatrolCounter):
    """The patrol counter with a policy: a grid worker logs their own patrols in their grids;
    a community officer registers cases as themselves."""

    policy = Policy("grid", {
        LogPatrol: allow("grid_worker", actor={"grid_worker_id": SUB}, area=lambda c: c.grid_id),
        RegisterCase: allow("community_officer", actor={"registrar_id": SUB}),
    })

    def __init__(self):
        self.registered: dict[str, tuple[str | None, str | None]] = {}

    @handles(RegisterCase)
    async def register(self, uow, cmd: RegisterCase) -> None:
        self.registered[uow.message.id] = (cmd.registrar_id, uow.principal.sub if uow.principal else None)


def verifier(**kw) -> TokenVerifier:
    return TokenVerifier(test_identity().jwks_path, issuer=ISSUER, audience=AUDIENCE, **kw)


def worker_token(sub: str = "gw-1", roles=("grid_worker",), grids=(GRID_A,), **kw) -> str:
    return test_identity().token(sub, roles, scope={"grids": list(grids)}, **kw)


def patrol(worker: str = "gw-1", grid: str = GRID_A) -> tuple[str, bytes]:
    cmd = LogPatrol(patrol_id=str(uuid.uuid4()), grid_id=grid, grid_worker_id=worker, started_at=T0,
                    ended_at=T0 + timedelta(minutes=30))
    env = envelope_for(cmd, source="/apps/test", id=str(uuid.uuid4()))
    return env.id, encode(env)


def headers(token: str | None) -> list[tuple[str, bytes]]:
    out = [("content-type", CONTENT_TYPE.encode())]
    return out + [("authorization", f"Bearer {token}".encode())] if token is not None else out


async def produce(bootstrap: str, records: list[tuple[bytes, str | None, int | None]]) -> None:
    """``(value, token, timestamp_ms)`` records, in order on partition 0 of the grid intake."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await p.start()
    try:
        futs = [await p.send(GRID.intake.name, value, key=GRID_A.encode(), partition=0, headers=headers(token),
                             timestamp_ms=ts) for value, token, ts in records]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def rejections(bootstrap: str, n: int) -> dict[str, dict]:
    got = await read_all(bootstrap, GRID.rejections.name, min_count=n)
    return {r["value"]["data"]["command_id"]: r["value"]["data"] for r in got}


async def test_a_command_record_is_admitted_only_by_a_valid_token_that_may_send_it(kafka, pool):
    stranger = devidentity.generate_key()
    forged = devidentity.mint(test_identity().claims("gw-1", ["grid_worker"], {"grids": [GRID_A]}), stranger,
                              kid=test_identity().kid)  # the right kid, another key: a bad signature
    no_token, bad_sig, resident, someone_else, outside, good = (patrol() for _ in range(6))
    outside = patrol(grid=GRID_B)
    someone_else = patrol(worker="gw-2")
    reg = envelope_for(RegisterCase(case_id="C-1", department="dept-water"), source="/apps/test",
                       id=str(uuid.uuid4()))
    records = [
        (no_token[1], None, None),
        (bad_sig[1], forged, None),
        (resident[1], test_identity().token("gw-1", ["resident"]), None),
        (someone_else[1], worker_token(), None),
        (outside[1], worker_token(), None),
        (good[1], worker_token(), None),
        (encode(reg), test_identity().token("officer-1", ["community_officer"]), None),
    ]
    handler = Guarded()
    async with Pipeline(kafka, pool, group="identity", handler=handler, verifier=verifier()) as p:
        await produce(kafka, records)
        await p.wait_processed(len(records))
        refused = await rejections(kafka, 6)

    assert (refused[no_token[0]]["reason"], refused[bad_sig[0]]["reason"]) == ("unauthenticated", "unauthenticated")
    assert "missing_token" in refused[no_token[0]]["detail"] and "bad_signature" in refused[bad_sig[0]]["detail"]
    assert refused[resident[0]]["reason"] == "forbidden" and "grid_worker" in refused[resident[0]]["detail"]
    assert (refused[someone_else[0]]["reason"], refused[someone_else[0]]["field"]) == ("forbidden", "grid_worker_id")
    assert refused[outside[0]]["reason"] == "forbidden" and GRID_B in refused[outside[0]]["detail"]
    assert good[0] not in refused and len(refused) == 6
    assert refused[reg.id]["reason"] == "no_change"  # admitted: its handler ran (and, a test's, changed nothing)
    assert SENDERS[good[0]] == "gw-1"  # the handler saw the token's holder as uow.principal
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = $1", GRID_A) == 1
    assert handler.registered[reg.id] == ("officer-1", "officer-1")  # the actor field filled from the token


async def test_a_record_sent_while_its_token_was_valid_is_handled_after_the_token_expired(kafka, pool):
    """Redelivery after a crash, or a backlog: the token is checked as of the record's timestamp."""
    now = time.time()
    short = worker_token(lifetime=2)  # expires two seconds from now
    before = patrol()
    await produce(kafka, [(before[1], short, None)])  # sent (and stamped) while valid
    await asyncio.sleep(3.5)
    v = verifier(leeway=0)
    with pytest.raises(Exception, match="expired"):
        v.verify(short)  # expired now
    after = patrol()
    handler = Guarded()
    async with Pipeline(kafka, pool, group="late", handler=handler, verifier=v) as p:
        await produce(kafka, [(after[1], short, None)])  # sent after it expired
        await p.wait_processed(2)
        refused = await rejections(kafka, 1)
    assert before[0] not in refused and SENDERS[before[0]] == "gw-1"
    assert refused[after[0]]["reason"] == "unauthenticated" and "expired" in refused[after[0]]["detail"]
    assert time.time() - now > 3


async def test_a_producers_timestamp_is_believed_only_within_the_record_age_bound(kafka, pool):
    """A producer sets a record's CreateTime: a holder of an expired token could backdate a record
    into the token's lifetime. Within INTAKE_MAX_RECORD_AGE_SECONDS it can (the bound is how long
    an expired token stays good on the intake topic); beyond it, or ahead of the clock, it cannot."""
    now = time.time()
    ms = lambda t: int(t * 1000)  # noqa: E731
    long_ago = worker_token(now=now - 7200, lifetime=600)  # valid two hours ago for ten minutes
    recently = worker_token(now=now - 50, lifetime=20)  # expired half a minute ago
    still_valid = worker_token(now=now - 7200, lifetime=4 * 3600)  # issued two hours ago, good for two more
    old, within, future, backlog = patrol(), patrol(), patrol(), patrol()
    await produce(kafka, [(old[1], long_ago, ms(now - 7000)),  # backdated into its lifetime, 2 h ago
                          (within[1], recently, ms(now - 40)),  # backdated 40 s: within the 60 s bound
                          (future[1], worker_token(), ms(now + 600)),
                          (backlog[1], still_valid, ms(now - 7000))])  # an old record whose token still holds
    async with Pipeline(kafka, pool, group="backdated", handler=Guarded(), verifier=verifier(leeway=0),
                        max_record_age=60) as p:
        await p.wait_processed(4)
        refused = await rejections(kafka, 2)
    assert refused[old[0]]["reason"] == "unauthenticated" and "record_too_old" in refused[old[0]]["detail"]
    assert "INTAKE_MAX_RECORD_AGE_SECONDS" in refused[old[0]]["detail"]
    assert refused[future[0]]["reason"] == "unauthenticated" and "record_from_the_future" in refused[future[0]]["detail"]
    assert within[0] not in refused and SENDERS[within[0]] == "gw-1"  # what the bound leaves open
    assert backlog[0] not in refused and SENDERS[backlog[0]] == "gw-1"  # backdating gains a valid token nothing


async def test_the_dead_letter_of_a_command_record_holds_no_token(kafka, pool):
    token = worker_token(sub="boom")
    fault = patrol(worker="boom")  # verified, admitted, then the handler raises
    garbage = b"{not json"
    async with Pipeline(kafka, pool, group="dlq", handler=Guarded(), verifier=verifier()) as p:
        await produce(kafka, [(fault[1], token, None), (garbage, token, None)])
        await p.wait_processed(2)
        dead = await read_all(kafka, GRID.dlq.name, min_count=2)
    assert len(dead) == 2
    by_reason = {d["headers"]["dlq.error.reason"]: d for d in dead}
    assert set(by_reason) == {"handler_error", "malformed_json"}
    for d in dead:
        assert "authorization" not in {k.lower() for k in d["headers"]}
        assert token not in repr(d) and token.split(".")[2] not in repr(d)  # not even the signature
    assert by_reason["handler_error"]["headers"]["dlq.origin.sub"] == "boom"  # who sent it, verified
    assert "dlq.origin.sub" not in by_reason["malformed_json"]["headers"]  # never decoded: nobody verified


async def test_tokens_are_verified_once_each_not_once_per_record(kafka, pool):
    tokens = [worker_token(sub=f"gw-{i}") for i in range(5)]
    records = [(patrol(worker=f"gw-{i % 5}")[1], tokens[i % 5], None) for i in range(300)]
    v = verifier()
    decoded = []
    real = v._decode
    v._decode = lambda token: decoded.append(token) or real(token)
    async with Pipeline(kafka, pool, group="cache", handler=Guarded(), verifier=v, lanes=2) as p:
        await produce(kafka, records)
        await p.wait_processed(len(records))
    assert await pool.fetchval("SELECT n FROM patrol_counts WHERE grid_id = $1", GRID_A) == 300
    assert sorted(decoded) == sorted(tokens)  # each token decoded (signature checked) once


async def test_intake_topics_ask_for_the_brokers_time_and_what_tansu_does_with_it(kafka):
    """Provisioning creates intake topics with message.timestamp.type=LogAppendTime (Kafka then
    stamps each record itself). Tansu stores the setting but keeps the producer's timestamp: this
    test says so, and fails the day it changes (then see README, "Commands on the intake topics")."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, GRID.intake.name),
                                                  ConfigResource(ConfigResourceType.TOPIC, GRID.events.name)])
    finally:
        await admin.close()
    configs = {res[3]: {e[0]: e[1] for e in res[4]} for r in described for res in r.resources}
    assert configs[GRID.intake.name].get("message.timestamp.type") == "LogAppendTime"
    assert configs[GRID.events.name].get("message.timestamp.type") in (None, "CreateTime")

    backdated = int((time.time() - 3600) * 1000)
    value = patrol()[1]
    await produce(kafka, [(value, None, backdated)])
    c = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False, group_id=None)
    await c.start()
    try:
        tp = TopicPartition(GRID.intake.name, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        recs = (await c.getmany(tp, timeout_ms=5000)).get(tp, [])
    finally:
        await c.stop()
    assert len(recs) == 1
    assert (recs[0].timestamp_type, recs[0].timestamp) == (0, backdated), (
        "Tansu now stamps intake records with its own time (LogAppendTime): update README's identity section")
