"""Helpers for the grid worker tests: start the worker, build commands, wait for events."""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from schemas.common import Payload
from services.grid.app.policy import POLICY
from services.kit.identity import Principal, Scope
from schemas.envelope import CloudEvent, encode
from tests.support.identity import command_headers
from tests.support.kafka import produce, read_all
from tests.support.identity import _fits, _sub_from, all_streets, command_token, token
from tests.support.procs import Worker

TOKEN = token(sub="app-7")
FAST_POLICY = Path(__file__).parent / "fast_policy.yaml"
GRID = "110105001002003"
HERE = {"lat": 39.9219, "lon": 116.4436, "address": "金台里3号楼"}
NEAR = {"lat": 39.9225, "lon": 116.4440, "address": "金台里5号楼"}  # ~75 m from HERE


DEPARTMENTS = ("110105.cgw", "110105001.zhzf", "110105001.sfs", "110105.zjw", "110105.yjglj", "110105.xfjy")
"""The departments (of the department register) the tests dispatch cases to: a department officer of
the tests holds them all."""


def sender(payload: Payload, role: str | None = None, sub: str | None = None) -> Principal:
    """The principal who would send ``payload`` (as :func:`tests.support.identity.sender_token`
    mints its token): the first role of its grant (or ``role``), ``sub`` from its actor fields
    (else ``test-<role>``, so that the handler and the verifier of a case differ), every street of
    the district and the test departments in scope."""
    grant = next(g for g in POLICY.commands[type(payload)] if (role is None or role in g.roles) and _fits(payload, g))
    role = role or sorted(grant.roles)[0]
    sub = sub or _sub_from(payload, grant) or f"test-{role}"
    return Principal(sub, frozenset({role}), Scope.of(streets=all_streets(), departments=DEPARTMENTS))


def sender_jwt(body: dict, **kw) -> str:
    """The token for a ``POST /v1/commands`` body (its sender, department officers with the test departments)."""
    return command_token(body, departments=DEPARTMENTS, **kw)


async def send_as_senders(kafka: str, *envelopes: CloudEvent, topic: str = "grid.intake.v1") -> None:
    """Produce commands to the intake, each with the token of its sender (:func:`sender_jwt`)."""
    await produce(kafka, topic, [(e.subject, encode(e), command_headers(e, departments=DEPARTMENTS))
                                 for e in envelopes])


def grid_worker(kafka: str, database_url: str, log: Path) -> Worker:
    return Worker("services.grid.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url, "TOPIC_PARTITIONS": "4",
        "GRID_POLICY_PATH": str(FAST_POLICY),
        "GRID_OVERDUE_INTERVAL_SECONDS": "0.5", "GRID_WHISTLE_INTERVAL_SECONDS": "0.5",
        "GRID_METRICS_INTERVAL_SECONDS": "0.5"}, prefix="GRID_", log=log)


def cmd(type_: str, **data) -> dict:
    """A command as POST /v1/commands takes it."""
    return {"id": str(uuid.uuid4()), "type": f"grid.{type_}.v1", "data": data}


def report(case_id: str, *, category: str = "environment", where=HERE, grid=GRID, reporter="r-1", **kw) -> dict:
    return cmd("case.report", case_id=case_id, grid_id=grid, category=category, description="楼道堆物",
               location=where, reporter={"kind": "resident", "id": reporter}, **kw)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def events_of(kafka: str, case_id: str, *, min_count: int = 1, timeout: float = 30.0, types=None) -> list[dict]:
    """The events of a case on grid.events.v1 (values), waiting until at least ``min_count`` (of ``types``)."""
    def pred(r):
        v = r["value"]
        return isinstance(v, dict) and v.get("subject") == case_id and (types is None or v.get("type") in types)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = [r["value"] for r in await read_all(kafka, "grid.events.v1", min_count=min_count, predicate=pred,
                                                  timeout=max(1.0, deadline - loop.time()))]
        if len(got) >= min_count or loop.time() >= deadline:
            return got
        await asyncio.sleep(0.3)
