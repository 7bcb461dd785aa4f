"""The department's part of a case on a real worker, broker and PostgreSQL: the department
register, 签收, 退单 and re-dispatch, 先行联系, 管控 of a severe hazard with 挂牌督办 and 销号,
延期, 不合理诉求, 回访's resolved — over Kafka and HTTP, with refusals, and a department officer
of another department refused as for an unknown case."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import CloudEvent
from tests.support.identity import command_token
from tests.support.kafka import read_all
from tests.support.procs import http

from .support import TOKEN, cmd, events_of, grid_worker, new_id, report, send_as_senders, sender_jwt

pytestmark = pytest.mark.integration

CGW, ZHZF, ZJW, XFJY = "110105.cgw", "110105001.zhzf", "110105.zjw", "110105.xfjy"
FAR = [{"lat": 39.90 + i * 0.01, "lon": 116.30 + i * 0.01, "address": f"远处{i}号"} for i in range(20)]
_far = iter(FAR)


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("grid-dept") / "worker.log"
    w = grid_worker(module_kafka, module_database_url, log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        code = w.stop()
        assert code == 0, log.read_text()[-4000:]


async def post(worker, body, token=None):
    return await http("POST", worker.url + "/v1/commands", json=body, token=token or sender_jwt(body))


async def ok(worker, body) -> list[dict]:
    status, out = await post(worker, body)
    assert status == 200, (body["type"], out)
    return out["events"]


async def refused(worker, body, reason: str, token=None) -> None:
    status, out = await post(worker, body, token)
    assert (status, out.get("error")) == (409, reason), (body["type"], status, out)


async def get(worker, path, token=TOKEN):
    status, body = await http("GET", worker.url + path, token=token)
    assert status == 200, (path, body)
    return body


async def dispatched(worker, *, category="environment", department=CGW, **kw) -> str:
    cid = new_id("dept")
    await ok(worker, report(cid, category=category, where=next(_far), **kw))
    await ok(worker, cmd("case.register", case_id=cid, registrar_id="clerk-1"))  # the 权责清单's department
    await ok(worker, cmd("case.dispatch", case_id=cid, department=department, assignee_id="staff-1"))
    return cid


def envelope(c: dict, subject: str) -> CloudEvent:
    return CloudEvent.model_validate({"specversion": "1.0", "source": "/users/app-7", "subject": subject,
                                      "time": datetime.now(timezone.utc).isoformat(), **c})


async def test_the_department_register_is_listed_for_officers_departments_and_assessors(worker):
    token = command_token(cmd("case.accept", case_id="x", accepted_by="d-1"), departments=[CGW])
    listed = await get(worker, "/v1/departments", token=token)
    ids = [d["department_id"] for d in listed]
    assert CGW in ids and ZHZF in ids and "110105002.pcs" in ids
    assert {"department_id": CGW, "name": "区城管委", "level": "district", "street_id": None} in listed
    assert next(d for d in listed if d["department_id"] == ZHZF)["street_id"] == "110105001"
    status, _ = await http("GET", worker.url + "/v1/departments",
                           token=command_token(report("x"), role="resident"))
    assert status == 403


async def test_registration_proposes_the_responsible_department_and_refuses_an_unknown_one(worker):
    cid = new_id("reg")
    await ok(worker, report(cid, category="dispute.property", where=next(_far)))
    await refused(worker, cmd("case.register", case_id=cid, department="城管办"), "unknown_department")
    [ev] = await ok(worker, cmd("case.register", case_id=cid, registrar_id="clerk-1"))
    assert (ev["data"]["department"], ev["data"]["proposed_department"]) == (ZJW, ZJW)  # 物业纠纷 → 区住建委
    await refused(worker, cmd("case.dispatch", case_id=cid, department="110105.nosuch", assignee_id="s"),
                  "unknown_department")


async def test_the_departments_part_over_http_shows_in_the_case(worker):
    cid = await dispatched(worker)
    case = await get(worker, f"/v1/cases/{cid}")
    assert case["department"] == CGW and case["accept_due_at"] and case["contact_due_at"]
    assert case["control_due_at"] is None and case["listed"] is False
    [accepted] = await ok(worker, cmd("case.accept", case_id=cid, accepted_by="cgw-1"))
    assert accepted["type"] == "grid.case.accepted.v1" and accepted["data"]["on_time"] is True
    await refused(worker, cmd("case.accept", case_id=cid, accepted_by="cgw-1"), "already_accepted")
    [contacted] = await ok(worker, cmd("case.contact", case_id=cid, channel="phone", contacted_by="cgw-1"))
    assert contacted["data"]["on_time"] is True and contacted["data"]["department"] == CGW
    await refused(worker, cmd("case.contact", case_id=cid, channel="sms", contacted_by="cgw-1"), "already_contacted")
    await refused(worker, cmd("case.control", case_id=cid, measures="x", controlled_by="cgw-1"), "not_a_severe_hazard")

    # 延期: asked, then granted to another, later time: the handling deadline moves
    due = datetime.fromisoformat(case["due_at"])
    await refused(worker, cmd("case.extension.request", case_id=cid, until=due.isoformat(), reason="r",
                              requested_by="cgw-1"), "extension_not_later")
    [asked] = await ok(worker, cmd("case.extension.request", case_id=cid, until=(due + timedelta(days=3)).isoformat(),
                                   reason="需协调产权单位", requested_by="cgw-1"))
    assert asked["type"] == "grid.case.extension.requested.v1" and asked["data"]["stage"] == "handle"
    await refused(worker, cmd("case.extension.request", case_id=cid, until=(due + timedelta(days=4)).isoformat(),
                              reason="r", requested_by="cgw-1"), "extension_pending")
    assert (await get(worker, f"/v1/cases/{cid}"))["extension_until"] is not None
    [granted] = await ok(worker, cmd("case.extension.review", case_id=cid, granted=True,
                                     until=(due + timedelta(days=2)).isoformat(), reviewer_id="co-1"))
    assert granted["type"] == "grid.case.extension.granted.v1"
    case = await get(worker, f"/v1/cases/{cid}")
    assert datetime.fromisoformat(case["due_at"]) == due + timedelta(days=2) and case["due_stage"] == "handle"
    assert (case["extension_count"], case["extension_until"]) == (1, None)
    await refused(worker, cmd("case.extension.review", case_id=cid, granted=False, reviewer_id="co-1"),
                  "no_pending_extension")

    # 不合理诉求: asked once, approved by the street
    [asked] = await ok(worker, cmd("case.exclusion.request", case_id=cid, reason="诉求超出政策范围", requested_by="cgw-1"))
    assert asked["type"] == "grid.case.exclusion.requested.v1"
    await refused(worker, cmd("case.exclusion.request", case_id=cid, reason="again", requested_by="cgw-1"),
                  "exclusion_already_requested")
    [reviewed] = await ok(worker, cmd("case.exclusion.review", case_id=cid, approved=True, reviewer_id="so-1"))
    assert reviewed["type"] == "grid.case.exclusion.reviewed.v1" and reviewed["data"]["approved"] is True

    await ok(worker, cmd("case.handle", case_id=cid, result="已清理", handled_by="cgw-1"))
    closed = await ok(worker, cmd("case.verify", case_id=cid, passed=True, verifier_id="gw-1"))
    assert [e["type"] for e in closed] == ["grid.case.verified.v1", "grid.case.closed.v1"]
    assert closed[1]["data"]["on_time"] is True
    [fb] = await ok(worker, cmd("case.feedback", case_id=cid, satisfaction="satisfied", resolved=True,
                                reporter_id="r-1"))
    assert fb["data"]["resolved"] is True
    case = await get(worker, f"/v1/cases/{cid}")
    assert case["accepted_at"] and case["contacted_at"] and case["excluded"] is True and case["resolved"] is True
    assert case["accept_due_at"] is None and case["contact_due_at"] is None
    page = await get(worker, f"/v1/cases?department={CGW}&limit=200")
    assert cid in [c["case_id"] for c in page["items"]]
    page = await get(worker, f"/v1/cases?department={ZJW}&limit=200")
    assert cid not in [c["case_id"] for c in page["items"]]


async def test_a_department_officer_of_another_department_is_refused_as_for_an_unknown_case(worker):
    cid = await dispatched(worker)
    for body in (cmd("case.accept", case_id=cid, accepted_by="zjw-1"),
                 cmd("case.return", case_id=cid, reason="x", returned_by="zjw-1"),
                 cmd("case.contact", case_id=cid, channel="phone", contacted_by="zjw-1"),
                 cmd("case.extension.request", case_id=cid, until="2099-01-01T00:00:00+08:00", reason="x",
                     requested_by="zjw-1"),
                 cmd("case.exclusion.request", case_id=cid, reason="x", requested_by="zjw-1")):
        await refused(worker, body, "unknown_case", token=command_token(body, departments=[ZJW]))
    status, _ = await http("GET", worker.url + f"/v1/cases/{cid}",
                           token=command_token(cmd("case.accept", case_id=cid, accepted_by="zjw-1"), departments=[ZJW]))
    assert status == 404
    body = cmd("case.accept", case_id=cid, accepted_by="cgw-1")
    await ok(worker, body)  # the case's own department may


async def test_an_approved_return_is_redispatched_over_kafka_and_a_refused_one_stays(worker, module_kafka):
    cid = await dispatched(worker)
    steps = [
        cmd("case.return", case_id=cid, reason="属街道综合执法队职责", returned_by="cgw-1"),
        cmd("case.accept", case_id=cid, accepted_by="cgw-1"),  # refused: the return awaits review
        cmd("case.return.review", case_id=cid, approved=True, department=CGW, assignee_id="x", reviewer_id="co-1"),
        cmd("case.return.review", case_id=cid, approved=True, department=ZHZF, assignee_id="zhzf-7",
            reviewer_id="co-1"),
        cmd("case.accept", case_id=cid, accepted_by="zhzf-7"),
    ]
    await send_as_senders(module_kafka, *(envelope(s, cid) for s in steps))
    got = await events_of(module_kafka, cid, min_count=7, timeout=30)
    assert [e["type"] for e in got][3:] == ["grid.case.returned.v1", "grid.case.return.reviewed.v1",
                                           "grid.case.dispatched.v1", "grid.case.accepted.v1"]
    redispatch = got[5]["data"]
    assert redispatch["redispatch"] is True and redispatch["department"] == ZHZF and redispatch["accept_due_at"]
    assert got[6]["data"]["department"] == ZHZF
    rejections = await read_all(module_kafka, "grid.rejections.v1", min_count=2, timeout=15,
                                predicate=lambda r: r["value"]["data"]["command_id"] in (steps[1]["id"], steps[2]["id"]))
    assert sorted(r["value"]["data"]["reason"] for r in rejections) == ["return_pending", "same_department"]
    case = await get(worker, f"/v1/cases/{cid}")
    assert (case["department"], case["assignee_id"], case["return_pending"], case["return_count"]) == (
        ZHZF, "zhzf-7", False, 1)

    other = await dispatched(worker)
    await ok(worker, cmd("case.return", case_id=other, reason="不属本部门", returned_by="cgw-1"))
    assert (await get(worker, f"/v1/cases/{other}"))["return_pending"] is True
    await refused(worker, cmd("case.handle", case_id=other, result="x", handled_by="cgw-1"), "return_pending")
    [ev] = await ok(worker, cmd("case.return.review", case_id=other, approved=False, comment="属本部门职责",
                                reviewer_id="co-1"))
    assert ev["data"]["approved"] is False
    await ok(worker, cmd("case.handle", case_id=other, result="已处置", handled_by="cgw-1"))


async def test_a_severe_hazard_is_listed_controlled_before_rectification_and_delisted(worker, module_kafka):
    cid = new_id("severe")
    await ok(worker, report(cid, category="hazard.fire", grade="severe", where=next(_far)))
    [reg] = await ok(worker, cmd("case.register", case_id=cid, registrar_id="clerk-1"))
    assert reg["data"]["department"] == XFJY
    out = await ok(worker, cmd("case.dispatch", case_id=cid, department=XFJY, assignee_id="xf-1"))
    assert [e["type"] for e in out] == ["grid.case.dispatched.v1", "grid.case.supervised.v1"]
    assert out[0]["data"]["control_due_at"] and out[1]["data"]["supervision"] == "listed"
    page = await get(worker, "/v1/cases?listed=true&limit=200")
    assert cid in [c["case_id"] for c in page["items"]]
    await refused(worker, cmd("case.handle", case_id=cid, result="x", handled_by="xf-1"), "not_controlled")
    [ev] = await ok(worker, cmd("case.control", case_id=cid, measures="断电, 设警戒", controlled_by="xf-1"))
    assert ev["type"] == "grid.case.controlled.v1" and ev["data"]["on_time"] is True
    await refused(worker, cmd("case.control", case_id=cid, measures="again", controlled_by="xf-1"),
                  "already_controlled")
    await ok(worker, cmd("case.handle", case_id=cid, result="已整改", handled_by="xf-1"))
    out = await ok(worker, cmd("case.verify", case_id=cid, passed=True, verifier_id="gw-1"))
    assert [e["type"] for e in out] == ["grid.case.verified.v1", "grid.case.closed.v1", "grid.case.delisted.v1"]
    got = await events_of(module_kafka, cid, min_count=9, timeout=30)
    assert got[-1]["type"] == "grid.case.delisted.v1" and got[-1]["data"]["department"] == XFJY
    case = await get(worker, f"/v1/cases/{cid}")
    assert case["listed"] is False and case["delisted_at"] and case["controlled_at"]
    page = await get(worker, "/v1/cases?listed=true&limit=200")
    assert cid not in [c["case_id"] for c in page["items"]]


async def test_a_refused_extension_leaves_the_due_date_and_supervisions_are_counted(worker):
    cid = await dispatched(worker)
    due = (await get(worker, f"/v1/cases/{cid}"))["due_at"]
    until = (datetime.fromisoformat(due) + timedelta(days=1)).isoformat()
    await ok(worker, cmd("case.extension.request", case_id=cid, until=until, reason="r", requested_by="cgw-1"))
    [ev] = await ok(worker, cmd("case.extension.review", case_id=cid, granted=False, reviewer_id="co-1"))
    assert ev["type"] == "grid.case.extension.refused.v1"
    assert (await get(worker, f"/v1/cases/{cid}"))["due_at"] == due
    # a case that missed its 立案 deadline (category other: 2 s) is supervised, not escalated
    late = new_id("late")
    await ok(worker, report(late, category="other", where=next(_far)))
    for _ in range(60):  # the overdue timer (the events are checked in test_grid_worker)
        case = await get(worker, f"/v1/cases/{late}")
        if case["supervision_count"]:
            break
        await asyncio.sleep(0.5)
    assert (case["supervision_count"], case["last_card"], case["level"]) == (1, "yellow_card", "community")
    page = await get(worker, "/v1/cases?supervised=true&limit=200")
    assert late in [c["case_id"] for c in page["items"]] and cid not in [c["case_id"] for c in page["items"]]
    await asyncio.sleep(1.2)  # a metrics refresh
    status, text = await http("GET", worker.url + "/metrics")
    lines = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
             if ln.startswith("grid_supervisions") and " " in ln}
    assert lines['grid_supervisions_total{supervision="yellow_card"}'] >= 1
    assert 'grid_supervisions_total{supervision="red_card"}' in lines
    assert lines['grid_supervisions_total{supervision="listed"}'] >= 0
