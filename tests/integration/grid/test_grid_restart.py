"""Overdue detection survives a restart of the worker: each missed deadline is reported once,
also one that passed while no worker ran."""
from __future__ import annotations

import asyncio

import pytest

from tests.support.procs import http

from .support import TOKEN, events_of, grid_worker, new_id, report, sender_jwt

pytestmark = pytest.mark.integration

OVERDUE = ("grid.case.overdue.v1", "grid.case.supervised.v1")


async def test_overdue_is_detected_once_across_a_worker_restart(kafka, database_url, tmp_path):
    log = tmp_path / "worker.log"
    before, during = new_id("before"), new_id("during")
    w = grid_worker(kafka, database_url, log).start()
    try:
        await w.wait_ready()
        r = report(before, category="other")
        status, body = await http("POST", w.url + "/v1/commands", json=r, token=sender_jwt(r))
        assert status == 200, body
        got = await events_of(kafka, before, min_count=2, types=OVERDUE, timeout=30)
        assert [e["type"] for e in got] == list(OVERDUE)
        # due in 2 s; the worker stops at once, so the deadline passes while none runs
        r = report(during, category="other", where={"lat": 39.99, "lon": 116.2, "address": "z"})
        assert (await http("POST", w.url + "/v1/commands", json=r, token=sender_jwt(r)))[0] == 200
    finally:
        assert w.stop() == 0, log.read_text()[-3000:]
    await asyncio.sleep(3.0)
    w = grid_worker(kafka, database_url, log).start()
    try:
        await w.wait_ready()
        got = await events_of(kafka, during, min_count=2, types=OVERDUE, timeout=30)
        await asyncio.sleep(2.0)  # several timer rounds after the restart
        for cid in (before, during):
            got = await events_of(kafka, cid, min_count=2, types=OVERDUE)
            assert [e["type"] for e in got] == list(OVERDUE), cid
            assert got[1]["data"]["supervision"] == "yellow_card"
        status, case = await http("GET", w.url + f"/v1/cases/{during}", token=TOKEN)
        assert status == 200 and case["overdue_count"] == 1 and case["level"] == "community"
        assert case["supervision_count"] == 1 and case["last_card"] == "yellow_card"
    finally:
        assert w.stop() == 0, log.read_text()[-3000:]
