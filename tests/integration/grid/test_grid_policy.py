"""Who may do what in the grid service, on a live worker with a real broker and PostgreSQL:
every role × every command, the Kafka intake's refusals, actor fields from the token, scopes
(404 outside, lists filtered), a resident's own records, and the attack "any token reads any case
with its reporters, patrol routes"."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from schemas.envelope import CONTENT_TYPE, CloudEvent, encode
from services.grid.app.policy import POLICY
from services.kit.identity import ROLES
from tests.support.identity import all_streets, token
from tests.support.kafka import produce, read_all, send
from tests.support.procs import http

from .support import DEPARTMENTS, cmd, events_of, grid_worker, new_id

pytestmark = pytest.mark.integration

# community A (光华里) and community B (芳草地, another street)
GRID_A, GRID_A2, GRID_B = "110105001003001", "110105001003002", "110105002003002"
COMMUNITY_A, COMMUNITY_B = GRID_A[:12], GRID_B[:12]
DEPT, OTHER_DEPT = "110105.cgw", "110105.zjw"
_spot = itertools.count()


def where() -> dict:
    """A place of its own (over a kilometre from the others): no report is another's duplicate."""
    i = next(_spot)
    return {"lat": 39.50 + (i // 40) * 0.02, "lon": 116.00 + (i % 40) * 0.02, "address": f"测试路{i}号"}


def tok(role: str, sub: str | None = None, scope: dict | None = None, lifetime: float = 3600, **areas) -> str:
    """A token of one role with ``scope`` (or the ``areas`` given); by default a scope over the
    whole test district and the test departments."""
    if scope is None:
        scope = areas or {"streets": all_streets(), "departments": list(DEPARTMENTS)}
    return token(sub or f"pol-{role}", [role], scope=scope, lifetime=lifetime)


AUDITOR = tok("auditor", scope={})
OFFICER = tok("community_officer", "officer-all")
STREET = tok("street_officer", "street-all")
WORKER = tok("grid_worker", "gw-all")
DEPT_OFFICER = tok("department_officer", "dept-all")
OFFICER_A = tok("community_officer", "officer-a", communities=[COMMUNITY_A])
OFFICER_B = tok("community_officer", "officer-b", communities=[COMMUNITY_B])
WORKER_A = tok("grid_worker", "gw-a", grids=[GRID_A])
DEPT_A = tok("department_officer", "dept-a", departments=[DEPT])
RES_1, RES_2 = tok("resident", "res-1", scope={}), tok("resident", "res-2", scope={})


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    log = tmp_path_factory.mktemp("grid-policy") / "worker.log"
    w = grid_worker(module_kafka, module_database_url, log).start()
    try:
        await w.wait_ready()
        yield w
    finally:
        code = w.stop()
        assert code == 0, log.read_text()[-4000:]


async def post(worker, body: dict, token: str | None):
    return await http("POST", worker.url + "/v1/commands", json=body, token=token)


async def get(worker, path: str, token: str | None):
    return await http("GET", worker.url + path, token=token)


async def ok(worker, body: dict, token: str) -> dict:
    status, answer = await post(worker, body, token)
    assert status == 200, (body["type"], status, answer)
    return answer


def reporting(case_id: str, grid: str = GRID_A, category: str = "environment", **kw) -> dict:
    return cmd("case.report", case_id=case_id, grid_id=grid, category=category, description="楼道堆物",
               location=where(), **kw)


async def case_at(worker, stage: str, *, grid: str = GRID_A, reporter: str = RES_1, department: str = DEPT,
                  category: str = "environment") -> str:
    """A new case brought to ``stage`` (reported, registered, dispatched, handled, closed) by the
    people who may do each step."""
    cid = new_id(f"pol-{stage}")
    await ok(worker, reporting(cid, grid, category), reporter)
    steps = [("registered", cmd("case.register", case_id=cid, department=department), OFFICER),
             ("dispatched", cmd("case.dispatch", case_id=cid, department=department, assignee_id="staff-1"), OFFICER),
             ("handled", cmd("case.handle", case_id=cid, result="已处理"), DEPT_OFFICER),
             ("closed", cmd("case.verify", case_id=cid, passed=True), WORKER)]
    for reached, body, sender in steps:
        if stage == "reported":
            break
        await ok(worker, body, sender)
        if stage == reached:
            break
    return cid


# -- 1. every role × every command -----------------------------------------------------------------

STAGE_BEFORE = {"grid.case.register.v1": "reported", "grid.case.dismiss.v1": "reported",
                "grid.case.escalate.v1": "reported", "grid.case.dispatch.v1": "registered",
                "grid.case.handle.v1": "dispatched", "grid.case.verify.v1": "handled",
                "grid.case.feedback.v1": "closed",
                # the department's part
                "grid.case.accept.v1": "dispatched", "grid.case.return.v1": "dispatched",
                "grid.case.contact.v1": "dispatched", "grid.case.extension.request.v1": "dispatched",
                "grid.case.exclusion.request.v1": "dispatched", "grid.case.control.v1": "severe",
                "grid.case.return.review.v1": "returned", "grid.case.extension.review.v1": "extension",
                "grid.case.exclusion.review.v1": "exclusion"}
WHISTLES = {"grid.whistle.blow.v1", "grid.whistle.answer.v1", "grid.whistle.rate.v1"}  # tested with 吹哨报到


async def case_before(worker, stage: str) -> str:
    """A case at ``stage``: one of :func:`case_at`'s, a dispatched severe hazard, or a dispatched
    case whose department returned it or asked for an extension or an exclusion."""
    if stage == "severe":
        cid = new_id("pol-severe")
        await ok(worker, reporting(cid, category="hazard.fire", grade="severe"), RES_1)
        await ok(worker, cmd("case.register", case_id=cid), OFFICER)
        await ok(worker, cmd("case.dispatch", case_id=cid, department=DEPT, assignee_id="staff-1"), OFFICER)
        return cid
    asks = {"returned": lambda c: cmd("case.return", case_id=c, reason="不属本部门"),
            "extension": lambda c: cmd("case.extension.request", case_id=c, reason="需协调",
                                       until=(datetime.now(timezone.utc) + timedelta(days=30)).isoformat()),
            "exclusion": lambda c: cmd("case.exclusion.request", case_id=c, reason="不合理诉求")}
    if stage not in asks:
        return await case_at(worker, stage)
    cid = await case_at(worker, "dispatched")
    await ok(worker, asks[stage](cid), DEPT_OFFICER)
    return cid


def body_for(type_: str, case_id: str) -> dict:
    """A command of ``type_`` on ``case_id`` with its actor fields left for the token to fill."""
    now = datetime.now(timezone.utc)
    return {
        "grid.case.report.v1": lambda: reporting(new_id("pol-new")),
        "grid.patrol.log.v1": lambda: cmd("patrol.log", patrol_id=new_id("pol-patrol"), grid_id=GRID_A,
                                          started_at=(now - timedelta(hours=1)).isoformat(),
                                          ended_at=(now - timedelta(minutes=1)).isoformat()),
        "grid.case.register.v1": lambda: cmd("case.register", case_id=case_id, department=DEPT),
        "grid.case.dismiss.v1": lambda: cmd("case.dismiss", case_id=case_id, reason="不属实"),
        "grid.case.escalate.v1": lambda: cmd("case.escalate", case_id=case_id, reason="需街道协调"),
        "grid.case.dispatch.v1": lambda: cmd("case.dispatch", case_id=case_id, department=DEPT, assignee_id="s-2"),
        "grid.case.handle.v1": lambda: cmd("case.handle", case_id=case_id, result="已处理"),
        "grid.case.verify.v1": lambda: cmd("case.verify", case_id=case_id, passed=True),
        "grid.case.feedback.v1": lambda: cmd("case.feedback", case_id=case_id, satisfaction="satisfied"),
        "grid.person.erase.v1": lambda: cmd("person.erase", person_id=new_id("pol-erased"), reason="DP-2026-1"),
        "grid.case.accept.v1": lambda: cmd("case.accept", case_id=case_id),
        "grid.case.return.v1": lambda: cmd("case.return", case_id=case_id, reason="不属本部门"),
        "grid.case.contact.v1": lambda: cmd("case.contact", case_id=case_id, channel="phone"),
        "grid.case.control.v1": lambda: cmd("case.control", case_id=case_id, measures="设警戒"),
        "grid.case.extension.request.v1": lambda: cmd("case.extension.request", case_id=case_id, reason="需协调",
                                                      until=(now + timedelta(days=30)).isoformat()),
        "grid.case.exclusion.request.v1": lambda: cmd("case.exclusion.request", case_id=case_id, reason="不合理"),
        "grid.case.return.review.v1": lambda: cmd("case.return.review", case_id=case_id, approved=True,
                                                  department=OTHER_DEPT, assignee_id="s-3"),
        "grid.case.extension.review.v1": lambda: cmd("case.extension.review", case_id=case_id, granted=True),
        "grid.case.exclusion.review.v1": lambda: cmd("case.exclusion.review", case_id=case_id, approved=False),
    }[type_]()


async def test_every_role_may_send_exactly_the_commands_the_policy_grants_it(worker):
    types = [cls.TYPE for cls in POLICY.commands if cls.TYPE not in WHISTLES]
    assert len(types) == 19
    for role, type_ in itertools.product(ROLES, types):
        allowed = role in POLICY.roles_for(next(c for c in POLICY.commands if c.TYPE == type_))
        sub = "res-1" if role == "resident" else None
        if not allowed:
            status, body = await post(worker, body_for(type_, "any-case"), tok(role, sub))
            assert status == 403 and body["error"] == "forbidden", (role, type_, status, body)
            continue
        stage = STAGE_BEFORE.get(type_)
        case_id = await case_before(worker, stage) if stage else "unused"
        status, body = await post(worker, body_for(type_, case_id), tok(role, sub))
        assert status == 200, (role, type_, status, body)
    # the auditor reads everything and sends nothing
    assert not any("auditor" in POLICY.roles_for(c) for c in POLICY.commands)


async def test_no_token_is_401_and_a_token_without_a_role_is_403(worker):
    body = reporting(new_id("pol-anon"))
    assert (await post(worker, body, None))[0] == 401
    assert (await post(worker, body, "not-a-jwt"))[0] == 401
    assert (await post(worker, body, tok("resident", "exp", lifetime=-120)))[0] == 401
    status, answer = await post(worker, body, token("nobody", [], scope={}))
    assert status == 403 and answer["error"] == "forbidden"


# -- 2. over Kafka ----------------------------------------------------------------------------------


def envelope(c: dict, sub: str) -> CloudEvent:
    return CloudEvent.model_validate({"specversion": "1.0", "source": f"/users/{sub}", "subject": c["data"]["case_id"],
                                      "time": datetime.now(timezone.utc).isoformat(), **c})


async def rejection_of(kafka: str, command_id: str) -> dict:
    got = await read_all(kafka, "grid.rejections.v1", min_count=1, timeout=30,
                         predicate=lambda r: r["value"]["data"]["command_id"] == command_id)
    assert got, f"no rejection of {command_id}"
    return got[0]["value"]["data"]


async def test_over_kafka_a_command_without_a_token_or_by_a_role_without_the_grant_is_rejected(worker, module_kafka):
    anon = reporting(new_id("pol-kafka-anon"))
    env = envelope(anon, "res-1")
    await produce(module_kafka, "grid.intake.v1", [(env.subject, encode(env), [("content-type", CONTENT_TYPE.encode())])])
    assert (await rejection_of(module_kafka, anon["id"]))["reason"] == "unauthenticated"

    cid = await case_at(worker, "reported")
    by_resident = cmd("case.register", case_id=cid, department=DEPT)
    await send(module_kafka, "grid.intake.v1", envelope(by_resident, "res-1"), token=RES_1)
    assert (await rejection_of(module_kafka, by_resident["id"]))["reason"] == "forbidden"

    naming_another = cmd("case.register", case_id=cid, department=DEPT, registrar_id="someone-else")
    await send(module_kafka, "grid.intake.v1", envelope(naming_another, "officer-all"), token=OFFICER)
    rejected = await rejection_of(module_kafka, naming_another["id"])
    assert rejected["reason"] == "forbidden" and rejected["field"] == "registrar_id"

    out_of_scope = cmd("case.register", case_id=cid, department=DEPT)
    await send(module_kafka, "grid.intake.v1", envelope(out_of_scope, "officer-b"), token=OFFICER_B)
    assert (await rejection_of(module_kafka, out_of_scope["id"]))["reason"] == "unknown_case"

    fine = cmd("case.register", case_id=cid, department=DEPT)
    await send(module_kafka, "grid.intake.v1", envelope(fine, "officer-a"), token=OFFICER_A)
    got = await events_of(module_kafka, cid, min_count=2)
    assert got[-1]["type"] == "grid.case.registered.v1" and got[-1]["data"]["registrar_id"] == "officer-a"


# -- 3. actor fields --------------------------------------------------------------------------------


async def test_actor_fields_are_filled_from_the_token_and_naming_someone_else_is_403(worker):
    cid = new_id("pol-actor")
    status, body = await post(worker, reporting(cid, reporter={"kind": "resident", "id": "res-2"}), RES_1)
    assert status == 403 and body["error"] == "forbidden" and body["field"] == "reporter.id"
    status, body = await post(worker, reporting(cid, reporter={"kind": "grid_worker", "id": "res-1"}), RES_1)
    assert status == 403 and body["field"] == "reporter.kind"  # a resident does not report as a grid worker
    answer = await ok(worker, reporting(cid), RES_1)
    assert answer["events"][0]["data"]["reporter"] == {"kind": "resident", "id": "res-1"}
    answer = await ok(worker, reporting(new_id("pol-actor"), grid=GRID_A), WORKER_A)
    assert answer["events"][0]["data"]["reporter"] == {"kind": "grid_worker", "id": "gw-a"}

    status, body = await post(worker, cmd("case.register", case_id=cid, department=DEPT, registrar_id="officer-b"),
                              OFFICER_A)
    assert status == 403 and body["field"] == "registrar_id"
    answer = await ok(worker, cmd("case.register", case_id=cid, department=DEPT), OFFICER_A)
    assert answer["events"][0]["data"]["registrar_id"] == "officer-a"
    answer = await ok(worker, cmd("case.dispatch", case_id=cid, department=DEPT, assignee_id="s-1"), OFFICER_A)
    assert answer["events"][0]["data"]["dispatcher_id"] == "officer-a"
    status, body = await post(worker, cmd("case.handle", case_id=cid, result="ok", handled_by="gw-a"), DEPT_A)
    assert status == 403 and body["field"] == "handled_by"
    answer = await ok(worker, cmd("case.handle", case_id=cid, result="ok"), DEPT_A)
    assert answer["events"][0]["data"]["handled_by"] == "dept-a"
    # forging a grid worker's verification: named in the body, refused
    status, body = await post(worker, cmd("case.verify", case_id=cid, passed=True, verifier_id="gw-a"), WORKER)
    assert status == 403 and body["field"] == "verifier_id"
    # the handler does not verify their own handling (a grid worker token of the same person)
    status, body = await post(worker, cmd("case.verify", case_id=cid, passed=True),
                              token("dept-a", ["grid_worker"], scope={"grids": [GRID_A]}))
    assert status == 409 and body["error"] == "self_verification"
    answer = await ok(worker, cmd("case.verify", case_id=cid, passed=True), WORKER_A)
    assert answer["events"][0]["data"]["verifier_id"] == "gw-a"
    status, body = await post(worker, cmd("case.feedback", case_id=cid, satisfaction="satisfied",
                                          reporter_id="res-2"), RES_1)
    assert status == 403 and body["field"] == "reporter_id"
    answer = await ok(worker, cmd("case.feedback", case_id=cid, satisfaction="satisfied"), RES_1)
    assert answer["events"][0]["data"]["reporter_id"] == "res-1"

    now = datetime.now(timezone.utc)
    patrol = dict(patrol_id=new_id("pol-patrol"), grid_id=GRID_A, started_at=(now - timedelta(hours=1)).isoformat(),
                  ended_at=(now - timedelta(minutes=1)).isoformat())
    status, body = await post(worker, cmd("patrol.log", **patrol, grid_worker_id="gw-b"), WORKER_A)
    assert status == 403 and body["field"] == "grid_worker_id"
    answer = await ok(worker, cmd("patrol.log", **patrol), WORKER_A)
    assert answer["events"][0]["data"]["grid_worker_id"] == "gw-a"
    status, _ = await get(worker, f"/v1/cases/{cid}", AUDITOR)
    assert status == 200


# -- 4. scope -----------------------------------------------------------------------------------------


async def test_a_command_on_a_case_outside_the_callers_scope_is_refused_as_an_unknown_case(worker):
    b = await case_at(worker, "reported", grid=GRID_B)
    unknown_status, unknown = await post(worker, cmd("case.register", case_id="no-such-case", department=DEPT),
                                         OFFICER_A)
    status, body = await post(worker, cmd("case.register", case_id=b, department=DEPT), OFFICER_A)
    assert (status, body["error"]) == (unknown_status, unknown["error"]) == (409, "unknown_case")
    assert body["detail"] == unknown["detail"].replace("no-such-case", b)
    for c in (cmd("case.dismiss", case_id=b, reason="x"),
              cmd("case.dispatch", case_id=b, department=DEPT, assignee_id="s")):
        status, body = await post(worker, c, OFFICER_A)
        assert (status, body["error"]) == (409, "unknown_case"), c["type"]
    status, body = await post(worker, cmd("case.escalate", case_id=b, reason="x"),
                              tok("street_officer", "street-a", streets=[GRID_A[:9]]))
    assert (status, body["error"]) == (409, "unknown_case")
    # a dismissal as the duplicate of a case out of scope: as if that case were unknown
    a = await case_at(worker, "reported")
    status, body = await post(worker, cmd("case.dismiss", case_id=a, reason="重复", duplicate_of=b), OFFICER_A)
    assert (status, body["error"]) == (409, "duplicate_target_not_open")

    # a grid worker: reports and patrols only in their grids (403), verifies only their grids' cases
    status, body = await post(worker, reporting(new_id("pol-gw"), grid=GRID_A2), WORKER_A)
    assert status == 403 and body["error"] == "forbidden"
    handled_b = await case_at(worker, "handled", grid=GRID_B)
    status, body = await post(worker, cmd("case.verify", case_id=handled_b, passed=True), WORKER_A)
    assert (status, body["error"]) == (409, "unknown_case")

    # a department officer: only cases of their departments
    other = await case_at(worker, "dispatched", department=OTHER_DEPT)
    status, body = await post(worker, cmd("case.handle", case_id=other, result="x"), DEPT_A)
    assert (status, body["error"]) == (409, "unknown_case")

    # a resident: feedback only on a case they reported
    closed = await case_at(worker, "closed", reporter=RES_1)
    status, body = await post(worker, cmd("case.feedback", case_id=closed, satisfaction="unsatisfied"), RES_2)
    assert (status, body["error"]) == (409, "unknown_case")


async def test_an_officer_of_community_a_reads_neither_case_nor_list_entry_nor_counts_of_community_b(worker):
    a, b = await case_at(worker, "reported"), await case_at(worker, "reported", grid=GRID_B)
    assert (await get(worker, f"/v1/cases/{a}", OFFICER_A))[0] == 200
    status, body = await get(worker, f"/v1/cases/{b}", OFFICER_A)
    assert status == 404 and body["error"] == "not_found"
    assert (await get(worker, f"/v1/cases/{b}", OFFICER_B))[0] == 200
    assert (await get(worker, f"/v1/cases/{b}", AUDITOR))[0] == 200
    _, mine = await get(worker, "/v1/cases?limit=500", OFFICER_A)
    ids = {c["case_id"] for c in mine["items"]}
    assert a in ids and b not in ids and all(c["community_id"] == COMMUNITY_A for c in mine["items"])
    assert mine["total"] == len(mine["items"])
    _, asked = await get(worker, f"/v1/cases?grid_id={GRID_B}", OFFICER_A)
    assert asked == {"total": 0, "total_exact": True, "limit": 50, "offset": 0, "next_cursor": None, "items": []}
    _, everything = await get(worker, "/v1/cases?limit=500", AUDITOR)
    assert {a, b} <= {c["case_id"] for c in everything["items"]}

    assert (await get(worker, f"/v1/grids/{GRID_A}/counts", OFFICER_A))[0] == 200
    assert (await get(worker, f"/v1/grids/{GRID_B}/counts", OFFICER_A))[0] == 404
    assert (await get(worker, f"/v1/grids/{GRID_B}/counts", tok("assessor", scope={})))[0] == 200
    assert (await get(worker, f"/v1/grids/{GRID_A}/counts", WORKER_A))[0] == 403
    assert (await get(worker, f"/v1/grids/{GRID_A}/counts", RES_1))[0] == 403


async def test_a_grid_worker_reads_their_grids_and_a_department_officer_the_cases_dispatched_to_them(worker):
    a, a2 = await case_at(worker, "reported"), await case_at(worker, "reported", grid=GRID_A2)
    assert (await get(worker, f"/v1/cases/{a}", WORKER_A))[0] == 200
    assert (await get(worker, f"/v1/cases/{a2}", WORKER_A))[0] == 404
    _, page = await get(worker, "/v1/cases?limit=500", WORKER_A)
    assert page["items"] and {c["grid_id"] for c in page["items"]} == {GRID_A}

    mine, theirs = await case_at(worker, "dispatched"), await case_at(worker, "dispatched", department=OTHER_DEPT)
    registered = await case_at(worker, "registered")  # names the department, not yet dispatched to it
    assert (await get(worker, f"/v1/cases/{mine}", DEPT_A))[0] == 200
    for cid in (theirs, registered, a):
        assert (await get(worker, f"/v1/cases/{cid}", DEPT_A))[0] == 404, cid
    _, page = await get(worker, "/v1/cases?limit=500", DEPT_A)
    ids = {c["case_id"] for c in page["items"]}
    assert mine in ids and not ids & {theirs, registered, a}
    assert all(c["department"] == DEPT for c in page["items"])


async def test_a_resident_reads_only_the_cases_they_reported_and_no_other_reporter(worker):
    own = await case_at(worker, "reported", reporter=RES_1, category="public_facility")
    other = await case_at(worker, "reported", reporter=RES_2)
    # res-2 reports the same problem: a duplicate, linked to res-1's case as a co-reporter
    dup = new_id("pol-dup")
    _, case = await get(worker, f"/v1/cases/{own}", AUDITOR)
    spot = {"lat": case["lat"], "lon": case["lon"], "address": "同一处"}
    answer = await ok(worker, cmd("case.report", case_id=dup, grid_id=GRID_A, category="public_facility",
                                  description="同一问题", location=spot), RES_2)
    assert answer["events"][-1]["type"] == "grid.case.duplicate_linked.v1"

    status, case = await get(worker, f"/v1/cases/{own}", RES_1)
    assert status == 200 and case["reporters"] == [{"kind": "resident", "id": "res-1"}]
    assert "res-2" not in str(case)  # nor in the history (the duplicate_linked event's reporter)
    _, staff = await get(worker, f"/v1/cases/{own}", OFFICER_A)
    assert [r["id"] for r in staff["reporters"]] == ["res-1", "res-2"]
    # res-2 reads the original too, as a co-reporter, without res-1
    status, case = await get(worker, f"/v1/cases/{own}", RES_2)
    assert status == 200 and case["reporters"] == [{"kind": "resident", "id": "res-2"}] and "res-1" not in str(case)

    assert (await get(worker, f"/v1/cases/{other}", RES_1))[0] == 404
    _, page = await get(worker, "/v1/cases?limit=500", RES_1)
    ids = {c["case_id"] for c in page["items"]}
    assert own in ids and other not in ids and dup not in ids
    assert all(c["reporters"] == [{"kind": "resident", "id": "res-1"}] for c in page["items"])
    assert (await get(worker, "/v1/patrols", RES_1))[0] == 403


# -- 5. the attack: any token reads any case with its reporters, patrol routes -------------------------


async def test_any_token_no_longer_reads_any_case_with_its_reporters_nor_patrol_routes(worker):
    secret = await case_at(worker, "reported", grid=GRID_B, reporter=RES_2)
    now = datetime.now(timezone.utc)
    route = [{"lat": 39.91, "lon": 116.46, "address": "芳草地西街"}]
    await ok(worker, cmd("patrol.log", patrol_id=new_id("pol-route"), grid_id=GRID_B, route=route,
                         started_at=(now - timedelta(hours=1)).isoformat(),
                         ended_at=(now - timedelta(minutes=1)).isoformat()),
             tok("grid_worker", "gw-b", grids=[GRID_B]))
    for role in ROLES:
        t = tok(role, "res-1" if role == "resident" else f"attacker-{role}",
                grids=[GRID_A], departments=[DEPT])
        status, case = await get(worker, f"/v1/cases/{secret}", t)
        if role == "auditor":
            assert status == 200 and case["reporters"] == [{"kind": "resident", "id": "res-2"}]
            continue
        assert status in (403, 404), (role, status)
        status, page = await get(worker, "/v1/cases?limit=500", t)
        assert status in (200, 403), (role, status)
        if status == 200:  # only what the token's scope or sub reaches: nothing of grid B, nothing of res-2
            ids = {c["case_id"] for c in page["items"]}
            assert secret not in ids, (role, secret)
            if role == "resident":  # their own reports, wherever they are, without anyone else
                assert all(c["reporters"] == [{"kind": "resident", "id": "res-1"}] for c in page["items"])
                assert "res-2" not in str(page)
            else:
                assert all(c["grid_id"] == GRID_A or c["department"] == DEPT for c in page["items"]), role
        status, page = await get(worker, "/v1/patrols?limit=500", t)
        assert status in (200, 403), (role, status)
        if status == 200:
            assert "芳草地西街" not in str(page) and all(p["grid_id"] == GRID_A for p in page["items"]), role
    status, page = await get(worker, f"/v1/patrols?grid_id={GRID_B}", AUDITOR)
    assert status == 200 and "芳草地西街" in str(page)
    # the public Open311 view stays without a token, and without reporters or routes
    status, public = await http("GET", worker.url + "/open311/v2/requests.json?status=open,closed")
    assert status == 200 and "res-2" not in str(public) and "reporter" not in str(public)


async def test_every_authenticated_route_declares_its_roles(worker):
    status, doc = await http("GET", worker.url + "/openapi.json")
    assert status == 200
    authenticated = [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items() if op.get("security")]
    assert {p for _, p, _ in authenticated} == {"/v1/cases", "/v1/cases/{case_id}", "/v1/commands",
                                                "/v1/departments", "/v1/grids/{grid_id}/counts", "/v1/patrols",
                                                "/v1/whistles", "/v1/whistles/{whistle_id}"}
    for method, path, op in authenticated:
        assert op.get("x-roles"), (method, path)
    assert "x-roles" not in doc["paths"]["/open311/v2/requests.json"]["get"]  # the public view needs no token
