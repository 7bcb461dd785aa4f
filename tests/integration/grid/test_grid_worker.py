"""The grid service as a real worker (one per module) on a real broker and PostgreSQL:
the whole loop over Kafka, overdue supervision, duplicates, DLQ, replay, HTTP commands,
queries, the Open311 view and metrics."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest

from schemas.envelope import CloudEvent
from services.grid.app.api import CaseSummary
from services.grid.app.handler import load_calendar
from services.grid.app.metrics import covers_next_year
from tests.support.kafka import produce, read_all, send
from tests.support.procs import http

from .support import GRID, NEAR, TOKEN, cmd, events_of, grid_worker, new_id, report, send_as_senders, sender_jwt

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("grid") / "worker.log"
    w = grid_worker(module_kafka, module_database_url, log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        code = w.stop()
        assert code == 0, log.read_text()[-4000:]


def envelope(c: dict, subject: str) -> CloudEvent:
    """The command as app-7 would put it on the intake (the same source as its HTTP commands)."""
    return CloudEvent.model_validate({"specversion": "1.0", "source": "/users/app-7", "subject": subject,
                                      "time": datetime.now(timezone.utc).isoformat(), **c})


SENDER = object()


async def post(worker, body, token=SENDER):
    """POST /v1/commands, by default with the token of the person the command names (the policy's role)."""
    return await http("POST", worker.url + "/v1/commands", json=body,
                      token=sender_jwt(body) if token is SENDER else token)


async def get(worker, path, token=TOKEN):
    return await http("GET", worker.url + path, token=token)


async def test_a_resident_need_goes_round_the_whole_loop_over_kafka(worker, module_kafka):
    cid = new_id("loop")
    steps = [
        report(cid, category="resident_need", reporter="res-42"),
        cmd("case.register", case_id=cid, department="110105001.zhzf", registrar_id="clerk-1"),
        cmd("case.dispatch", case_id=cid, department="110105001.zhzf", assignee_id="staff-7"),
        cmd("case.handle", case_id=cid, result="已上门维修", handled_by="staff-7"),
        cmd("case.verify", case_id=cid, passed=False, comment="仍漏水", verifier_id="gw-9"),
        cmd("case.handle", case_id=cid, result="更换水管", handled_by="staff-7"),
        cmd("case.verify", case_id=cid, passed=True, verifier_id="gw-9"),
        cmd("case.feedback", case_id=cid, satisfaction="basically_satisfied", reporter_id="res-42"),
    ]
    await send_as_senders(module_kafka, *(envelope(s, cid) for s in steps))
    got = await events_of(module_kafka, cid, min_count=9)
    assert [e["type"] for e in got] == [
        "grid.case.reported.v1", "grid.case.registered.v1", "grid.case.dispatched.v1", "grid.case.handled.v1",
        "grid.case.verified.v1", "grid.case.handled.v1", "grid.case.verified.v1", "grid.case.closed.v1",
        "grid.case.feedback.v1"]
    registered = got[1]["data"]
    assert registered["grid_id"] == GRID and registered["community_id"] == GRID[:12]
    assert registered["description"] == "楼道堆物" and registered["reporter"] == {"kind": "resident", "id": "res-42"}
    assert registered["category"] == "resident_need" and registered["department"] == "110105001.zhzf"
    assert got[4]["data"]["passed"] is False and got[4]["data"]["rework_count"] == 1
    assert got[7]["data"]["on_time"] is True and got[7]["data"]["rework_count"] == 1
    assert got[8]["data"]["satisfaction"] == "basically_satisfied" and got[8]["data"]["department"] == "110105001.zhzf"
    assert all(e["causationid"] == s["id"] for e, s in zip(got[:7], steps))

    status, case = await get(worker, f"/v1/cases/{cid}")
    assert status == 200 and case["status"] == "closed" and case["rework_count"] == 1
    assert case["satisfaction"] == "basically_satisfied" and case["assignee_id"] == "staff-7"
    assert [h["type"] for h in case["history"]] == [e["type"] for e in got]


async def test_a_missed_deadline_is_reported_overdue_once_and_supervised_not_escalated(worker, module_kafka):
    cid = new_id("late")
    await send(module_kafka, "grid.intake.v1", envelope(report(cid, category="other"), cid))  # register within 2 s
    got = await events_of(module_kafka, cid, min_count=3, timeout=30)
    assert [e["type"] for e in got] == ["grid.case.reported.v1", "grid.case.overdue.v1", "grid.case.supervised.v1"]
    assert got[1]["data"]["level"] == "community" and got[1]["data"]["stage"] == "register"
    assert (got[2]["data"]["supervision"], got[2]["data"]["stage"]) == ("yellow_card", "register")
    await asyncio.sleep(2.0)  # several more timer rounds: nothing more
    assert len(await events_of(module_kafka, cid, min_count=3)) == 3
    status, case = await get(worker, f"/v1/cases/{cid}")
    assert case["overdue"] is True and case["level"] == "community" and case["overdue_count"] == 1
    assert case["supervision_count"] == 1 and case["last_card"] == "yellow_card"
    status, page = await get(worker, f"/v1/cases?overdue=true&grid_id={GRID}")
    assert cid in [c["case_id"] for c in page["items"]]
    # a shortened rework deadline: register, dispatch, handle, fail verification with 1 s to redo
    for c in (cmd("case.register", case_id=cid, department="110105.cgw"),
              cmd("case.dispatch", case_id=cid, department="110105.cgw", assignee_id="s-1"),
              cmd("case.handle", case_id=cid, result="done", handled_by="staff-1")):
        assert (await post(worker, c))[0] == 200
    due = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    assert (await post(worker, cmd("case.verify", case_id=cid, passed=False, rework_due_at=due,
                                   verifier_id="gw-1")))[0] == 200
    got = await events_of(module_kafka, cid, min_count=9, timeout=30)
    tail = [(e["type"], e["data"].get("stage"), e["data"].get("supervision")) for e in got[7:]]
    assert tail == [("grid.case.overdue.v1", "handle", None), ("grid.case.supervised.v1", "handle", "red_card")]


async def test_a_report_near_an_open_case_of_the_same_category_is_dismissed_as_its_duplicate(worker, module_kafka):
    first, second = new_id("orig"), new_id("dup")
    assert (await post(worker, report(first, category="public_facility", reporter="r-a")))[0] == 200
    status, body = await post(worker, report(second, category="public_facility", where=NEAR, reporter="r-b"))
    assert status == 200
    assert [e["type"] for e in body["events"]] == [
        "grid.case.reported.v1", "grid.case.dismissed.v1", "grid.case.duplicate_linked.v1"]
    assert body["events"][1]["data"]["duplicate_of"] == first and body["events"][2]["subject"] == first
    _, orig = await get(worker, f"/v1/cases/{first}")
    assert [r["id"] for r in orig["reporters"]] == ["r-a", "r-b"] and orig["duplicates"] == [second]
    linked = await events_of(module_kafka, first, min_count=2)
    assert linked[-1]["type"] == "grid.case.duplicate_linked.v1" and linked[-1]["data"]["reporter"]["id"] == "r-b"


async def test_malformed_records_go_to_the_dead_letter_topic_and_the_consumer_goes_on(worker, module_kafka):
    bad_grid = report(new_id("bad"), grid="12345")
    await produce(module_kafka, "grid.intake.v1", [("k1", b"{not json"),
                                                   ("k2", orjson.dumps(envelope(bad_grid, "k2").model_dump(mode="json")))])
    after = new_id("after")
    await send(module_kafka, "grid.intake.v1", envelope(report(after, category="dispute.labour"), after))
    dead = await read_all(module_kafka, "grid.dlq.v1", min_count=2, timeout=30)
    assert any(d["key"] == "k1" for d in dead) and any(d["key"] == "k2" for d in dead)
    assert len(await events_of(module_kafka, after)) == 1


async def test_a_command_that_faults_is_dead_lettered_and_the_rest_of_its_batch_is_handled(
        worker, module_kafka, module_database_url):
    broken, before, after = new_id("broken"), new_id("before"), new_id("after")
    where = {"lat": 39.86, "lon": 116.22, "address": "b"}
    assert (await post(worker, report(broken, category="environment", where=where)))[0] == 200
    conn = await asyncpg.connect(module_database_url)
    try:  # a stored state this code cannot read: handling a command on the case fails
        await conn.execute("UPDATE grid.case_state SET state = state - 'status' WHERE case_id = $1", broken)
    finally:
        await conn.close()
    register = cmd("case.register", case_id=broken, department="110105.cgw")
    batch = [report(before, category="environment", where={"lat": 39.88, "lon": 116.20, "address": "a"}), register,
             report(after, category="environment", where={"lat": 39.84, "lon": 116.24, "address": "c"})]
    await send(module_kafka, "grid.intake.v1", *(envelope(c, broken) for c in batch))  # one key: one partition
    dead = await read_all(module_kafka, "grid.dlq.v1", min_count=1, timeout=30, predicate=lambda r: r["key"] == broken)
    assert [(d["value"]["id"], d["headers"]["dlq.error.reason"]) for d in dead] == [(register["id"], "handler_error")]
    for cid in (before, after, broken):
        assert [e["type"] for e in await events_of(module_kafka, cid)] == ["grid.case.reported.v1"], cid
    _, case = await get(worker, f"/v1/cases/{broken}")
    assert case["status"] == "reported" and len(case["history"]) == 1


async def test_a_replayed_command_has_no_second_effect(worker, module_kafka):
    cid = new_id("replay")
    rep = envelope(report(cid, category="hazard.fire", grade="general", where={"lat": 39.95, "lon": 116.5,
                                                                             "address": "x"}), cid)
    await send(module_kafka, "grid.intake.v1", rep)
    await send(module_kafka, "grid.intake.v1", rep)
    assert len(await events_of(module_kafka, cid)) == 1
    reg = cmd("case.register", case_id=cid, department="110105.xfjy", registrar_id="app-7")  # app-7: the envelopes' source
    status, first = await post(worker, reg)
    status2, again = await post(worker, reg)
    assert status == status2 == 200 and again["replayed"] is True
    assert [e["id"] for e in again["events"]] == [e["id"] for e in first["events"]]
    await send(module_kafka, "grid.intake.v1", envelope(reg, cid))  # the same command over Kafka too
    await asyncio.sleep(1.5)
    got = await events_of(module_kafka, cid, min_count=2)
    assert [e["type"] for e in got] == ["grid.case.reported.v1", "grid.case.registered.v1"]
    rejections = await read_all(module_kafka, "grid.rejections.v1", timeout=3,
                                predicate=lambda r: r["value"]["data"]["command_id"] in (rep.id, reg["id"]))
    assert rejections == []


async def test_http_commands_need_a_token_valid_input_and_a_legal_transition(worker):
    cid = new_id("http")
    assert (await post(worker, report(cid), token=None))[0] == 401
    assert (await post(worker, report(cid), token="wrong"))[0] == 401
    status, body = await post(worker, report(cid, grid="1101050010020"))
    assert status == 422 and body["field"] == "data.grid_id"
    status, body = await post(worker, report(cid, category="hazard.fire"))  # a hazard needs a grade
    assert status == 422 and body["field"] == "data.grade"
    status, body = await post(worker, report(cid, grid="110105009009009"))
    assert status == 409 and body["error"] == "unknown_grid"
    assert (await post(worker, report(cid, where={"lat": 39.96, "lon": 116.3, "address": "y"})))[0] == 200
    status, body = await post(worker, cmd("case.dispatch", case_id=cid, department="110105.cgw", assignee_id="s-1"))
    assert status == 409 and body["error"] == "illegal_transition"  # not registered yet
    status, body = await post(worker, cmd("case.register", case_id="no-such-case", department="x"))
    assert status == 409
    status, body = await post(worker, cmd("case.escalate", case_id=cid, reason="复杂", joint_mediation=True))
    assert status == 409 and body["error"] == "joint_mediation_for_disputes_only"


async def test_a_complex_dispute_is_escalated_on_request_to_joint_mediation(worker):
    cid = new_id("dispute")
    where = {"lat": 39.93, "lon": 116.35, "address": "吉祥里"}
    assert (await post(worker, report(cid, category="dispute.property", where=where)))[0] == 200
    status, body = await post(worker, cmd("case.escalate", case_id=cid, reason="涉及多个部门", joint_mediation=True,
                                          requested_by="cadre-3"))
    assert status == 200 and body["events"][0]["data"]["to_level"] == "street"
    _, case = await get(worker, f"/v1/cases/{cid}")
    assert case["joint_mediation"] is True and case["level"] == "street"


async def test_queries_filter_paginate_count_and_refuse_bad_filters(worker):
    grid = "110105002003004"
    ids = [new_id("q") for _ in range(3)]
    for i, cid in enumerate(ids):
        where = {"lat": 39.90 + i * 0.01, "lon": 116.45, "address": f"朝外{i}号"}
        assert (await post(worker, report(cid, category="environment", grid=grid, where=where)))[0] == 200
    assert (await post(worker, cmd("case.register", case_id=ids[0], department="110105.cgw")))[0] == 200

    status, page = await get(worker, f"/v1/cases?grid_id={grid}&limit=2")
    assert status == 200 and page["total"] == 3 and len(page["items"]) == 2
    _, page2 = await get(worker, f"/v1/cases?grid_id={grid}&limit=2&offset=2")
    assert len(page2["items"]) == 1 and page2["items"][0]["case_id"] not in {c["case_id"] for c in page["items"]}
    _, reg = await get(worker, f"/v1/cases?community_id={grid[:12]}&status=registered&category=environment")
    assert [c["case_id"] for c in reg["items"]] == [ids[0]]
    _, street = await get(worker, f"/v1/cases?street_id={grid[:9]}&overdue=false")
    assert street["total"] == 3
    # view=basic: the same cases, pages and totals, each only where it stands (no text, place, reporter)
    _, full = await get(worker, f"/v1/cases?grid_id={grid}&limit=2&view=full")
    assert full == page
    _, basic = await get(worker, f"/v1/cases?grid_id={grid}&limit=2&view=basic")
    assert {k: v for k, v in basic.items() if k != "items"} == {k: v for k, v in page.items() if k != "items"}
    assert [set(c) for c in basic["items"]] == [set(CaseSummary.model_fields)] * 2
    assert basic["items"] == [{k: c[k] for k in CaseSummary.model_fields} for c in page["items"]]
    assert not {"description", "address", "lat", "reporters", "media"} & set(basic["items"][0])
    _, basic2 = await get(worker, f"/v1/cases?grid_id={grid}&limit=2&view=basic&cursor={basic['next_cursor']}")
    assert [c["case_id"] for c in basic2["items"]] == [c["case_id"] for c in page2["items"]]
    for bad, field in (("view=summary", "view"),
                       ("status=bogus", "status"), ("category=weather", "category"), ("grid_id=123", "grid_id"),
                       ("community_id=12", "community_id"), ("street_id=x", "street_id"), ("overdue=maybe", "overdue"),
                       ("limit=0", "limit"), ("offset=-1", "offset")):
        status, body = await get(worker, f"/v1/cases?{bad}")
        assert status == 422 and body["field"] == field, bad
    assert (await get(worker, "/v1/cases", token=None))[0] == 401

    status, counts = await get(worker, f"/v1/grids/{grid}/counts")
    assert status == 200 and counts["counts"]["reported"] == 2 and counts["counts"]["registered"] == 1
    assert counts["total"] == 3 and counts["counts"]["closed"] == 0
    assert (await get(worker, "/v1/grids/123/counts"))[0] == 422
    assert (await get(worker, "/v1/grids/110105009009009/counts"))[0] == 404
    assert (await get(worker, "/v1/cases/no-such-case"))[0] == 404


async def test_patrols_are_logged_once_and_listed_by_grid_and_worker(worker):
    pid = new_id("patrol")
    now = datetime.now(timezone.utc)
    log = cmd("patrol.log", patrol_id=pid, grid_id=GRID, grid_worker_id="gw-77",
              started_at=(now - timedelta(hours=1)).isoformat(), ended_at=(now - timedelta(minutes=1)).isoformat())
    status, body = await post(worker, log)
    assert status == 200 and body["events"][0]["type"] == "grid.patrol.logged.v1"
    status, body = await post(worker, {**log, "id": str(uuid.uuid4())})
    assert status == 409 and body["error"] == "patrol_exists"
    status, page = await get(worker, "/v1/patrols?grid_worker_id=gw-77")
    assert status == 200 and [p["patrol_id"] for p in page["items"]] == [pid]
    _, by_grid = await get(worker, f"/v1/patrols?grid_id={GRID}")
    assert pid in [p["patrol_id"] for p in by_grid["items"]]
    assert (await get(worker, "/v1/patrols?grid_id=abc"))[0] == 422


PRIVATE = ("dispute.neighbour", "dispute.property", "dispute.labour", "resident_need")


async def test_the_open311_view_lists_public_services_and_requests_without_a_token(worker):
    status, services = await http("GET", worker.url + "/open311/v2/services.json")
    assert status == 200 and len(services) == 6
    assert {s["service_code"] for s in services} >= {"hazard.fire", "environment", "other"}
    assert not {s["service_code"] for s in services} & set(PRIVATE)
    assert all(s["metadata"] is False and s["type"] == "realtime" for s in services)

    cid = new_id("o311.case")  # dots are allowed in case ids: the {id}.json route must cope
    where = {"lat": 39.971234, "lon": 116.408765, "address": "光华路1号"}
    assert (await post(worker, report(cid, category="public_facility", where=where, reporter="res-o311",
                                      media=["https://media.example/o311.jpg"])))[0] == 200
    status, [one] = await http("GET", worker.url + f"/open311/v2/requests/{cid}.json")
    assert status == 200 and one["service_request_id"] == cid and one["status"] == "open"
    assert one["service_code"] == "public_facility" and one["lat"] == 39.971 and one["long"] == 116.409
    assert one["description"] == ""  # reported, not yet registered (moderated)
    assert one["address"] == "" and one["media_url"] == "" and "reporter" not in one
    assert "光华路" not in str(one) and "media.example" not in str(one) and "res-o311" not in str(one)
    assert one["requested_datetime"] and one["updated_datetime"] and "agency_responsible" in one
    assert (await post(worker, cmd("case.register", case_id=cid, department="110105.cgw", registrar_id="clerk-1")))[0] == 200
    _, [one] = await http("GET", worker.url + f"/open311/v2/requests/{cid}.json")
    assert one["description"] == "楼道堆物" and one["agency_responsible"] == "110105.cgw" and one["address"] == ""
    status, body = await http("GET", worker.url + "/open311/v2/requests/nothing-here.json")
    assert status == 404 and body[0]["code"] == 404

    status, reqs = await http("GET", worker.url + "/open311/v2/requests.json?service_code=public_facility&status=open")
    assert status == 200 and cid in [r["service_request_id"] for r in reqs]
    assert all(r["service_code"] == "public_facility" and r["status"] == "open" for r in reqs)
    _, closed = await http("GET", worker.url + "/open311/v2/requests.json?status=closed")
    assert cid not in [r["service_request_id"] for r in closed]
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _, none = await http("GET", worker.url + f"/open311/v2/requests.json?start_date={future}")
    assert none == []
    status, err = await http("GET", worker.url + "/open311/v2/requests.json?service_code=weather")
    assert status == 400 and err[0]["code"] == 400
    assert (await http("GET", worker.url + "/open311/v2/requests.json?start_date=yesterday"))[0] == 400


async def test_private_categories_never_appear_in_the_open311_view(worker):
    dispute, need = new_id("o311-dispute"), new_id("o311-need")
    for c in (report(dispute, category="dispute.neighbour", where={"lat": 39.96, "lon": 116.42, "address": "x"}),
              report(need, category="resident_need", where={"lat": 39.965, "lon": 116.425, "address": "y"}),
              cmd("case.register", case_id=dispute, department="110105001.sfs", registrar_id="clerk-1")):
        assert (await post(worker, c))[0] == 200
    assert (await get(worker, f"/v1/cases/{dispute}"))[0] == 200  # the token-protected API still has them
    for cid in (dispute, need):
        status, body = await http("GET", worker.url + f"/open311/v2/requests/{cid}.json")
        assert status == 404 and body[0]["code"] == 404, body  # as if unknown
    status, everything = await http("GET", worker.url + "/open311/v2/requests.json?status=open,closed")
    assert status == 200 and everything
    assert not {dispute, need} & {r["service_request_id"] for r in everything}
    assert not set(PRIVATE) & {r["service_code"] for r in everything}
    for code in PRIVATE:
        status, err = await http("GET", worker.url + f"/open311/v2/requests.json?service_code={code}")
        assert status == 400 and err[0]["code"] == 400, code  # as for an unknown code
    status, err = await http("GET", worker.url + "/open311/v2/requests.json?service_code=environment,dispute.labour")
    assert status == 400


async def test_a_dismissed_request_shows_a_reason_code_never_free_text(worker):
    original, dup, other = new_id("o311-orig"), new_id("o311-dup"), new_id("o311-dismissed")
    spot = {"lat": 39.90, "lon": 116.30, "address": "z"}
    assert (await post(worker, report(original, where=spot)))[0] == 200
    assert (await post(worker, report(dup, where=spot)))[0] == 200  # within 250 m: dismissed as a duplicate
    assert (await post(worker, report(other, category="other", where={"lat": 39.80, "lon": 116.20, "address": "w"})))[0] == 200
    assert (await post(worker, cmd("case.dismiss", case_id=other, reason="李四说是王五家的私事",
                                   registrar_id="clerk-1")))[0] == 200
    _, [d] = await http("GET", worker.url + f"/open311/v2/requests/{dup}.json")
    assert d["status"] == "closed" and d["status_notes"] == f"dismissed: duplicate of {original}" and d["description"] == ""
    _, [o] = await http("GET", worker.url + f"/open311/v2/requests/{other}.json")
    assert o["status"] == "closed" and o["status_notes"] == "dismissed" and o["description"] == ""
    assert "李四" not in str(o)


async def test_domain_metrics_come_from_the_projection(worker):
    expected = {'grid_cases{category="resident_need",status="closed"}': 1, "grid_reports_received_total": 5,
                'grid_reports_dismissed_total{reason="duplicate"}': 1, "grid_cases_reworked_total": 2,
                "grid_patrols_logged_total": 1, "grid_case_handling_seconds_count": 1}
    for _ in range(75):  # the tests above handled, and a metrics refresh after them (later on a busy machine)
        status, text = await http("GET", worker.url + "/metrics")
        assert status == 200
        lines = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                 if ln.startswith("grid_") and " " in ln}
        if all(lines.get(k, 0) >= n for k, n in expected.items()):
            break
        await asyncio.sleep(0.2)
    assert {k: lines.get(k, 0) for k in expected} == {k: max(lines.get(k, 0), n) for k, n in expected.items()}
    assert "grid_cases_overdue_open" in lines
    # the shipped calendar lists next year while it is current (the worker runs on the real clock)
    assert lines["grid_calendar_covers_next_year"] == float(covers_next_year(load_calendar(), datetime.now(timezone.utc)))
