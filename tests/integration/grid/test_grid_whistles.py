"""吹哨报到 on a live grid worker with a real broker and PostgreSQL: a whistle answered on time,
late, missed by the timer once (also across a restart), rated; the refusals; who reads which
whistles."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.procs import Worker, http
from tests.support.identity import token

from .support import FAST_POLICY, GRID, events_of, new_id, report, sender_jwt

pytestmark = pytest.mark.integration

STREET, OTHER_STREET = GRID[:9], "110105002"  # GRID lies in STREET
CGJ, SCJG, YJJ, ZHZF = "110105.cgw", "110105.scjgj", "110105.yjglj", "110105001.zhzf"
STREET_1 = token("street-1", ["street_officer"], scope={"streets": [STREET]})
STREET_2 = token("street-2", ["street_officer"], scope={"streets": [OTHER_STREET]})
COMMUNITY_1 = token("community-1", ["community_officer"], scope={"communities": [GRID[:12]]})
COMMUNITY_2 = token("community-2", ["community_officer"], scope={"communities": ["110105002003002"[:12]]})
AUDITOR = token("auditor-1", ["auditor"], scope={})


def dept(department: str) -> str:
    """A department officer of one department."""
    return token(f"officer-{department}", ["department_officer"], scope={"departments": [department]})


MISSED = ("grid.whistle.missed.v1",)


def whistle_worker(kafka: str, database_url: str, log: Path) -> Worker:
    return Worker("services.grid.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url, "TOPIC_PARTITIONS": "4",
        "GRID_POLICY_PATH": str(FAST_POLICY), "GRID_OVERDUE_INTERVAL_SECONDS": "0.5",
        "GRID_WHISTLE_INTERVAL_SECONDS": "0.5", "GRID_METRICS_INTERVAL_SECONDS": "0.5"}, prefix="GRID_", log=log)


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("grid-whistles") / "worker.log"
    w = whistle_worker(module_kafka, module_database_url, log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        code = w.stop()
        assert code == 0, log.read_text()[-4000:]


def body(type_: str, **data) -> dict:
    return {"id": new_id("cmd"), "type": f"grid.whistle.{type_}.v1", "data": data}


def blow(whistle_id: str, *, seconds: float = 4.0, departments=(CGJ, SCJG, ZHZF), **kw) -> dict:
    report_by = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()
    data = dict(whistle_id=whistle_id, street_id=STREET, departments=list(departments), report_by=report_by,
                matter="底商违规外摆、油烟扰民，请相关部门到场")
    data.update(kw)
    return body("blow", **data)


def answer(whistle_id: str, department: str, **kw) -> dict:
    return body("answer", whistle_id=whistle_id, department=department, **kw)


def rate(whistle_id: str, department: str, rating: int) -> dict:
    return body("rate", whistle_id=whistle_id, department=department, rating=rating)


async def post(w, b: dict, tok: str):
    return await http("POST", w.url + "/v1/commands", json=b, token=tok)


async def ok(w, b: dict, tok: str) -> list[dict]:
    status, answer_ = await post(w, b, tok)
    assert status == 200, (b["type"], status, answer_)
    return answer_["events"]


async def refused(w, b: dict, tok: str, reason: str) -> dict:
    status, answer_ = await post(w, b, tok)
    assert (status, answer_.get("error")) == (409, reason), (b["type"], status, answer_)
    return answer_


async def get(w, path: str, tok: str):
    return await http("GET", w.url + path, token=tok)


async def test_a_whistle_is_answered_on_time_late_and_missed_once_then_rated(worker, module_kafka):
    cid = new_id("case")
    r = report(cid, category="environment", where={"lat": 39.80, "lon": 116.30, "address": "外摆"})
    assert (await http("POST", worker.url + "/v1/commands", json=r, token=sender_jwt(r)))[0] == 200
    wid = new_id("w")
    [blown] = await ok(worker, blow(wid, case_id=cid), STREET_1)
    assert blown["type"] == "grid.whistle.blown.v1" and blown["subject"] == wid
    assert blown["data"]["blown_by"] == "street-1" and blown["data"]["case_id"] == cid
    [answered] = await ok(worker, answer(wid, CGJ, note="已到场"), dept(CGJ))
    assert answered["data"]["on_time"] is True and answered["data"]["answered_by"] == f"officer-{CGJ}"
    _, open_ = await get(worker, f"/v1/whistles?street_id={STREET}&open=true", STREET_1)
    assert wid in [x["whistle_id"] for x in open_["items"]]

    # report_by passes: the timer records the two others missing, once each
    missed = await events_of(module_kafka, wid, min_count=2, types=MISSED, timeout=30)
    assert sorted(e["data"]["department"] for e in missed) == [SCJG, ZHZF]
    [late] = await ok(worker, answer(wid, SCJG), dept(SCJG))  # a department recorded missing turns up late
    assert late["data"]["on_time"] is False
    await asyncio.sleep(2.0)  # several more timer rounds
    assert len(await events_of(module_kafka, wid, min_count=2, types=MISSED)) == 2

    for department, rating in ((CGJ, 5), (SCJG, 2), (ZHZF, 1)):
        [rated] = await ok(worker, rate(wid, department, rating), STREET_1)
        assert rated["data"]["rating"] == rating and rated["data"]["rated_by"] == "street-1"
    await refused(worker, rate(wid, CGJ, 4), STREET_1, "already_rated")
    await refused(worker, answer(wid, CGJ), dept(CGJ), "already_answered")

    status, whistle = await get(worker, f"/v1/whistles/{wid}", STREET_1)
    assert status == 200 and whistle["is_open"] is False and whistle["case_id"] == cid
    assert {s["department"]: (s["status"], s["rating"]) for s in whistle["summons"]} == {
        CGJ: ("reported", 5), SCJG: ("reported_late", 2), ZHZF: ("missed", 1)}
    got = [e["type"] for e in await events_of(module_kafka, wid, min_count=8)]
    assert got.count("grid.whistle.missed.v1") == 2 and got.count("grid.whistle.rated.v1") == 3
    _, closed = await get(worker, f"/v1/whistles?department={ZHZF}&open=false", AUDITOR)
    assert wid in [x["whistle_id"] for x in closed["items"]]


async def test_refusals(worker):
    wid = new_id("w")
    await refused(worker, blow(wid, departments=(CGJ, "110105.nosuch")), STREET_1, "unknown_department")
    await refused(worker, blow(wid, departments=("110105002.zhzf",)), STREET_1, "unknown_department")  # another street's own
    await refused(worker, blow(wid, seconds=-60), STREET_1, "due_in_past")
    other_case = new_id("case")
    r = report(other_case, grid="110105002003002", where={"lat": 39.70, "lon": 116.10, "address": "x"})
    assert (await http("POST", worker.url + "/v1/commands", json=r, token=sender_jwt(r)))[0] == 200
    await refused(worker, blow(wid, case_id=other_case), STREET_1, "unknown_case")  # a case of another street
    await refused(worker, blow(wid, case_id=new_id("nocase")), STREET_1, "unknown_case")
    status, b = await post(worker, blow(wid), STREET_2)  # a street officer of another street
    assert status == 403 and b["error"] == "forbidden"
    status, b = await post(worker, blow(wid), dept(CGJ))  # not a street officer
    assert status == 403 and b["error"] == "forbidden"

    await ok(worker, blow(wid, seconds=600, departments=(CGJ, SCJG)), STREET_1)
    await refused(worker, blow(wid, seconds=600), STREET_1, "whistle_exists")
    await refused(worker, answer(wid, YJJ), dept(YJJ), "not_summoned")
    await refused(worker, answer(wid, SCJG), dept(CGJ), "unknown_whistle")  # not the caller's department
    await refused(worker, answer(new_id("nowhistle"), CGJ), dept(CGJ), "unknown_whistle")
    await refused(worker, rate(wid, CGJ, 3), STREET_1, "not_yet_answered")
    await ok(worker, answer(wid, CGJ), dept(CGJ))
    await refused(worker, rate(wid, CGJ, 3), STREET_2, "unknown_whistle")  # another street's whistle
    status, b = await post(worker, rate(wid, CGJ, 6), STREET_1)
    assert status == 422, b
    await ok(worker, rate(wid, CGJ, 3), STREET_1)


async def test_who_reads_which_whistles(worker):
    wid = new_id("w")
    await ok(worker, blow(wid, seconds=600, departments=(CGJ,)), STREET_1)
    for tok in (STREET_1, COMMUNITY_1, dept(CGJ), AUDITOR):
        status, w = await get(worker, f"/v1/whistles/{wid}", tok)
        assert status == 200 and w["summons"][0]["status"] == "summoned", tok
        _, listed = await get(worker, "/v1/whistles?limit=500", tok)
        assert wid in [x["whistle_id"] for x in listed["items"]]
    for tok in (STREET_2, COMMUNITY_2, dept(SCJG)):
        status, _ = await get(worker, f"/v1/whistles/{wid}", tok)
        assert status == 404
        _, listed = await get(worker, "/v1/whistles?limit=500", tok)
        assert wid not in [x["whistle_id"] for x in listed["items"]]
    status, _ = await get(worker, f"/v1/whistles/{wid}", token("gw-1", ["grid_worker"], scope={"streets": [STREET]}))
    assert status == 403
    _, by_dept = await get(worker, f"/v1/whistles?department={SCJG}", AUDITOR)
    assert wid not in [x["whistle_id"] for x in by_dept["items"]]


async def test_metrics_count_whistles_answers_and_missed(worker, module_kafka):
    wid = new_id("w")
    await ok(worker, blow(wid, seconds=2, departments=(CGJ, YJJ)), STREET_1)
    await ok(worker, answer(wid, CGJ), dept(CGJ))
    await events_of(module_kafka, wid, min_count=1, types=MISSED, timeout=30)
    await asyncio.sleep(1.5)  # a metrics round
    status, text = await http("GET", worker.url + "/metrics")
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("grid_whistle"))
    assert float(lines["grid_whistles_blown_total"]) >= 1
    assert float(lines['grid_whistle_answers_total{on_time="true"}']) >= 1
    assert float(lines["grid_whistle_departments_missed_total"]) >= 1


async def test_a_department_is_recorded_missing_once_across_a_worker_restart(kafka, database_url, tmp_path):
    log = tmp_path / "worker.log"
    wid = new_id("w")
    w = whistle_worker(kafka, database_url, log).start()
    try:
        await w.wait_ready()
        await ok(w, blow(wid, seconds=2, departments=(CGJ, SCJG)), STREET_1)
        await ok(w, answer(wid, CGJ), dept(CGJ))
    finally:
        assert w.stop() == 0, log.read_text()[-3000:]
    await asyncio.sleep(3.0)  # report_by passes while no worker runs
    w = whistle_worker(kafka, database_url, log).start()
    try:
        await w.wait_ready()
        missed = await events_of(kafka, wid, min_count=1, types=MISSED, timeout=30)
        assert [e["data"]["department"] for e in missed] == [SCJG]
    finally:
        assert w.stop() == 0, log.read_text()[-3000:]
    w = whistle_worker(kafka, database_url, log).start()  # and once more: nothing new
    try:
        await w.wait_ready()
        await asyncio.sleep(2.0)
        assert len(await events_of(kafka, wid, min_count=1, types=MISSED)) == 1
        status, whistle = await http("GET", w.url + f"/v1/whistles/{wid}", token=AUDITOR)
        assert status == 200 and [s["status"] for s in whistle["summons"]] == ["reported", "missed"]
    finally:
        assert w.stop() == 0, log.read_text()[-3000:]
