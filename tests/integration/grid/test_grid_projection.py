"""The grid projection and handler on a real PostgreSQL (no broker): SQL of upserts and queries,
duplicate lookup, the overdue timer's once-only rule, metrics snapshot. Batches run as the kit
runs them: dispatch, flush, outbox, commit."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from schemas.envelope import Message, envelope_for
from schemas.grid import (
    AnswerWhistle,
    BlowWhistle,
    CaseFeedback,
    Category,
    DismissCase,
    DispatchCase,
    HandleCase,
    LogPatrol,
    RegisterCase,
    ReportCase,
    VerifyCase,
)
from services.grid import projection as db
from services.grid.app.api import CaseSummary
from services.grid.app.handler import GridHandler, load_calendar, load_policy
from services.grid.app.metrics import HANDLING_BUCKETS
from services.grid.projection import whistles as whistle_db
from services.grid.domain import DEFAULT_POLICY, DEFAULT_POLICY_MAPPING, CaseStatus, DeadlinePolicy
from services.grid.registry import GridRegister
from services.kit.db import create_pool
from services.kit.handlers import dispatch, handles
from services.kit.identity import Principal, Scope
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.kit.outbox import write as write_outbox
from services.kit.sql import Paged
from services.kit.uow import UnitOfWork
from tests.integration.grid.support import sender
from tests.support.db import as_json, typed

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "grid" / "migrations"
GRID = "110105001002003"
OTHER_GRID = "110105002001004"
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
HERE = {"lat": 39.9219, "lon": 116.4436, "address": "金台里3号楼"}
NEAR = {"lat": 39.9225, "lon": 116.4440, "address": "金台里5号楼"}  # ~75 m away
FAR = {"lat": 39.9400, "lon": 116.4436, "address": "far away"}  # ~2 km away


async def list_cases(conn, *args, **kwargs) -> Paged:
    """A page of :func:`db.list_cases` with its items as a client reads them (the full view's
    are kept answers, JSON already)."""
    paged = await db.list_cases(conn, *args, **kwargs)
    paged.items = as_json(paged.items)
    return paged


@pytest.fixture
async def pool(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, "grid", [("kit", KIT_MIGRATIONS), ("grid", MIGRATIONS)])
    finally:
        await conn.close()
    p = await create_pool(database_url, "grid", service="grid", max_size=4)
    yield p
    await p.close()


@pytest.fixture
def handler() -> GridHandler:
    return GridHandler(DEFAULT_POLICY, GridRegister.load())


def msg(payload) -> Message:
    return Message(envelope=envelope_for(payload, source="/tests"), payload=payload, principal=sender(payload))


async def run(pool, handler: GridHandler, *payloads, now: datetime = T0, refused: bool = False) -> UnitOfWork:
    """Handle the commands as one batch, committed as the kit's consumer does."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid", now)
        assert await dispatch(handler, uow, [msg(p) for p in payloads]) == []
        assert not refused or uow.rejected, "expected a refusal"
        assert refused or not uow.rejected, [(m.type, e.reason, e.detail) for m, e in uow.rejected]
        await uow.flush()
        await write_outbox(conn, uow.records)
    uow.committed()
    return uow


async def overdue_round(pool, handler: GridHandler, now: datetime) -> tuple[int, UnitOfWork]:
    """One round of the overdue timer (cases checked, its unit of work), committed as the kit does."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid", now)
        checked = await handler.check_overdue(uow)
        await uow.flush()
        await write_outbox(conn, uow.records)
    return checked, uow


def report(case_id: str, *, where=HERE, category="environment", grid=GRID, **kw) -> ReportCase:
    return ReportCase.model_validate(dict(case_id=case_id, grid_id=grid, category=category, description="垃圾桶满溢",
                                          location=where, reporter={"kind": "resident", "id": f"r-{case_id}"}, **kw))


async def test_a_case_row_follows_the_loop_and_its_history_lists_every_event(pool, handler):
    await run(pool, handler, report("c1"))
    await run(pool, handler, RegisterCase(case_id="c1", department="110105.cgw"), now=T0 + timedelta(minutes=5))
    await run(pool, handler, DispatchCase(case_id="c1", department="110105.cgw", assignee_id="staff-1"),
              now=T0 + timedelta(minutes=10))
    await run(pool, handler, HandleCase(case_id="c1", result="已清运"), now=T0 + timedelta(hours=2))
    await run(pool, handler, VerifyCase(case_id="c1", passed=False, comment="未清理干净"), now=T0 + timedelta(hours=2, minutes=30))
    async with pool.acquire() as conn:
        case = await db.get_case(conn, "c1")
    assert case["status"] == "dispatched" and case["rework_count"] == 1 and case["due_stage"] == "handle"
    assert case["department"] == "110105.cgw" and case["assignee_id"] == "staff-1"
    assert case["community_id"] == "110105001002" and case["street_id"] == "110105001"
    assert case["reporters"] == [{"kind": "resident", "id": "r-c1"}]
    assert [h["type"] for h in case["history"]] == [
        "grid.case.reported.v1", "grid.case.registered.v1", "grid.case.dispatched.v1", "grid.case.handled.v1",
        "grid.case.verified.v1"]
    assert [h["seq"] for h in case["history"]] == [1, 2, 3, 4, 5]
    await run(pool, handler, HandleCase(case_id="c1", result="已彻底清理"), now=T0 + timedelta(hours=3))
    await run(pool, handler, VerifyCase(case_id="c1", passed=True), now=T0 + timedelta(hours=3, minutes=20))
    await run(pool, handler, CaseFeedback(case_id="c1", satisfaction="satisfied", reporter_id="r-c1"), now=T0 + timedelta(hours=4))
    async with pool.acquire() as conn:
        case = await db.get_case(conn, "c1")
    assert case["status"] == "closed" and case["on_time"] is True and case["satisfaction"] == "satisfied"
    assert case["handling_seconds"] == 3 * 3600 + 20 * 60 and case["due_at"] is None and case["overdue"] is False
    assert case["history"][-1]["type"] == "grid.case.feedback.v1" and len(case["history"]) == 9


async def test_an_older_version_never_overwrites_a_newer_case_row(pool, handler):
    await run(pool, handler, report("c2"))
    await run(pool, handler, RegisterCase(case_id="c2", department="110105.cgw"), now=T0 + timedelta(minutes=1))
    async with pool.acquire() as conn:
        [(_, state)] = (await db.CASES.read(conn, ["c2"], lock=False)).values()
        old = state.model_copy(update={"version": 1, "status": CaseStatus.REPORTED})
        await db.upsert_cases(conn, [(old, T0)])
        assert (await db.get_case(conn, "c2"))["status"] == "registered"


async def test_open_cases_near_a_point_are_those_open_of_the_category_in_the_box(pool, handler):
    await run(pool, handler, report("n1"), report("n2", where=FAR), report("n3", category="public_facility"))
    await run(pool, handler, report("n4", where=NEAR, category="other"))
    async with pool.acquire() as conn:
        near, nowhere = await db.open_cases_near_each(
            conn, [(Category.ENVIRONMENT, NEAR["lat"], NEAR["lon"]), (Category.ENVIRONMENT, 0.0, 0.0)], 250)
        assert [c.case_id for c in near] == ["n1"]
        assert nowhere == []


async def test_a_report_near_an_open_case_is_dismissed_and_its_reporter_recorded_on_the_original(pool, handler):
    await run(pool, handler, report("d1"))
    uow = await run(pool, handler, report("d2", where=NEAR), now=T0 + timedelta(minutes=1))
    assert [e.type for e in uow.emitted] == [
        "grid.case.reported.v1", "grid.case.dismissed.v1", "grid.case.duplicate_linked.v1"]
    async with pool.acquire() as conn:
        dup, orig = await db.get_case(conn, "d2"), await db.get_case(conn, "d1")
    assert dup["status"] == "dismissed" and dup["duplicate_of"] == "d1" and dup["dismissal_reason"] == "duplicate"
    assert orig["status"] == "reported" and orig["duplicates"] == ["d2"]
    assert orig["reporters"] == [{"kind": "resident", "id": "r-d1"}, {"kind": "resident", "id": "r-d2"}]


async def test_two_reports_of_one_problem_in_one_batch_are_linked_too(pool, handler):
    uow = await run(pool, handler, report("b1"), report("b2", where=NEAR))
    assert [e.subject for e in uow.emitted if e.type == "grid.case.duplicate_linked.v1"] == ["b1"]
    async with pool.acquire() as conn:
        assert (await db.get_case(conn, "b2"))["duplicate_of"] == "b1"


async def test_a_batchs_reports_look_up_the_open_cases_near_them_in_one_query(pool, handler, monkeypatch):
    """The batch step finds what is near each new report at once: no report runs a statement of
    its own (nor, so, a savepoint); the batch's own reports are laid over what it found."""
    from services.grid.projection import rows

    await run(pool, handler, report("q1"))
    lookups = []

    async def each(conn, points, radius_m, limit=200):
        lookups.append(len(points))
        return await db.open_cases_near_each(conn, points, radius_m, limit)

    monkeypatch.setattr(rows, "open_cases_near_each", each)
    uow = await run(pool, handler, report("q2", where=NEAR), report("q3", where=FAR), report("q4", where=FAR),
                    report("q5", where=NEAR, category="other"), now=T0 + timedelta(minutes=1))
    assert lookups == [4]
    assert [e.subject for e in uow.emitted if e.type == "grid.case.duplicate_linked.v1"] == ["q1", "q3"]
    async with pool.acquire() as conn:
        assert [(await db.get_case(conn, c))["duplicate_of"] for c in ("q2", "q3", "q4", "q5")] == [
            "q1", None, "q3", None]


async def test_a_manual_dismissal_as_duplicate_links_to_an_open_case_only(pool, handler):
    await run(pool, handler, report("m-a"), report("m-b", where=FAR), report("m-c", where={"lat": 39.8, "lon": 116.3,
                                                                                           "address": "c"}))
    uow = await run(pool, handler, DismissCase(case_id="m-b", reason="同一问题", duplicate_of="m-a"),
                    now=T0 + timedelta(minutes=1))
    assert [e.type for e in uow.emitted] == ["grid.case.dismissed.v1", "grid.case.duplicate_linked.v1"]
    uow = await run(pool, handler, DismissCase(case_id="m-c", reason="同一问题", duplicate_of="m-b"),
                    now=T0 + timedelta(minutes=2), refused=True)
    assert [e.reason for _, e in uow.rejected] == ["duplicate_target_not_open"]
    async with pool.acquire() as conn:
        assert (await db.get_case(conn, "m-a"))["duplicates"] == ["m-b"]
        assert (await db.get_case(conn, "m-c"))["status"] == "reported"


async def test_a_report_near_a_closed_case_is_not_a_duplicate(pool, handler):
    await run(pool, handler, report("x1"))
    await run(pool, handler, RegisterCase(case_id="x1", department="110105.cgw"),
              DispatchCase(case_id="x1", department="110105.cgw", assignee_id="s"), HandleCase(case_id="x1", result="ok"),
              VerifyCase(case_id="x1", passed=True), now=T0 + timedelta(minutes=3))
    uow = await run(pool, handler, report("x2", where=NEAR), now=T0 + timedelta(minutes=4))
    assert [e.type for e in uow.emitted] == ["grid.case.reported.v1"]


async def test_refused_commands_change_nothing_and_become_rejections(pool, handler):
    uow = await run(pool, handler, report("r1", grid="110105009009009"), HandleCase(case_id="nope", result="x"),
                    refused=True)
    assert [e.reason for _, e in uow.rejected] == ["unknown_grid", "unknown_case"]
    assert [e.type for e in uow.emitted] == ["grid.command.rejected.v1"] * 2
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM cases") == 0
        assert await conn.fetchval("SELECT count(*) FROM case_state") == 0


async def test_the_overdue_timer_reports_each_missed_deadline_once_and_supervises_it(pool, handler):
    await run(pool, handler, report("o1"))  # register due in one working hour (Monday 09:00 in Shanghai)
    assert (await overdue_round(pool, handler, T0 + timedelta(minutes=50)))[0] == 0
    checked, uow = await overdue_round(pool, handler, T0 + timedelta(minutes=61))
    assert checked == 1
    assert [e.type for e in uow.emitted] == ["grid.case.overdue.v1", "grid.case.supervised.v1"]
    assert uow.emitted[1].data["supervision"] == "yellow_card" and uow.emitted[1].data["stage"] == "register"
    checked, again = await overdue_round(pool, handler, T0 + timedelta(minutes=90))
    assert checked == 0 and again.emitted == []
    async with pool.acquire() as conn:
        case = await db.get_case(conn, "o1")
        supervised = (await list_cases(conn, db.CaseFilter(supervised=True), 10, 0)).items
    assert case["overdue"] is True and case["overdue_count"] == 1 and case["level"] == "community"
    assert (case["supervision_count"], case["last_card"]) == (1, "yellow_card")
    assert [h["type"] for h in case["history"]][-2:] == ["grid.case.overdue.v1", "grid.case.supervised.v1"]
    assert [c["case_id"] for c in supervised] == ["o1"]


class FaultAfterApplying(GridHandler):
    """Registers, then fails when the registrar is ``boom``: a fault after the case changed."""

    @handles(RegisterCase)
    async def register_case(self, uow: UnitOfWork, cmd: RegisterCase) -> None:
        await super().register_case(uow, cmd)
        if cmd.registrar_id == "boom":
            raise RuntimeError("a fault after the case was registered")


async def test_a_command_that_faults_after_changing_its_case_leaves_no_trace_and_the_batch_goes_on(pool):
    handler = FaultAfterApplying(DEFAULT_POLICY, GridRegister.load())
    await run(pool, handler, report("f1"), report("f2", where=FAR))
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid", T0 + timedelta(minutes=1))
        boom, ok = msg(RegisterCase(case_id="f1", department="110105.cgw", registrar_id="boom")), msg(RegisterCase(case_id="f2", department="110105.cgw"))
        faults = await dispatch(handler, uow, [boom, ok])
        await uow.flush()
        await write_outbox(conn, uow.records)
    assert [(m.id, type(e)) for m, e in faults] == [(boom.id, RuntimeError)]
    assert [(e.type, e.subject) for e in uow.emitted] == [("grid.case.registered.v1", "f2")]
    async with pool.acquire() as conn:
        f1, f2 = await db.get_case(conn, "f1"), await db.get_case(conn, "f2")
        [(_, state)] = (await db.CASES.read(conn, ["f1"], lock=False)).values()
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 1 + 2  # the two reports and f2's registration
    assert f1["status"] == "reported" and [h["type"] for h in f1["history"]] == ["grid.case.reported.v1"]
    assert state.status is CaseStatus.REPORTED and state.version == 1
    assert f2["status"] == "registered" and [h["seq"] for h in f2["history"]] == [1, 2]


async def test_the_overdue_timer_leaves_a_case_that_a_batch_holds_for_a_later_round(pool, handler):
    await run(pool, handler, report("o2"))
    async with pool.acquire() as batch, batch.transaction():
        await db.CASES.read(batch, ["o2"])  # a batch of commands has it locked
        checked, uow = await overdue_round(pool, handler, T0 + timedelta(minutes=61))
        assert checked == 0 and uow.emitted == []
    checked, uow = await overdue_round(pool, handler, T0 + timedelta(minutes=61))
    assert checked == 1 and [e.type for e in uow.emitted] == ["grid.case.overdue.v1", "grid.case.supervised.v1"]


async def test_case_lists_filter_and_paginate_and_grid_counts_cover_every_status(pool, handler):
    await run(pool, handler, report("l1"), report("l2", where=FAR), report("l3", grid=OTHER_GRID, category="other"))
    await run(pool, handler, RegisterCase(case_id="l2", department="110105.cgw"), now=T0 + timedelta(minutes=1))
    async with pool.acquire() as conn:
        first = await list_cases(conn, db.CaseFilter(grid_id=GRID), 1, 0)
        assert (first.total, first.total_exact, len(first.items)) == (2, True, 1) and first.next_cursor
        second = await list_cases(conn, db.CaseFilter(grid_id=GRID), 1, 0, cursor=first.next_cursor)
        assert len(second.items) == 1 and second.next_cursor is None
        assert {first.items[0]["case_id"], second.items[0]["case_id"]} == {"l1", "l2"}
        by_offset = await list_cases(conn, db.CaseFilter(grid_id=GRID), 10, 1)
        assert by_offset.total == 2 and by_offset.items[0]["case_id"] == second.items[0]["case_id"]
        items = (await list_cases(conn, db.CaseFilter(status="registered"), 10, 0)).items
        assert [i["case_id"] for i in items] == ["l2"]
        items = (await list_cases(conn, db.CaseFilter(street_id="110105002", category="other"), 10, 0)).items
        assert [i["case_id"] for i in items] == ["l3"]
        assert (await list_cases(conn, db.CaseFilter(community_id="110105001002", overdue=True), 10, 0)).total == 0
        counts = await db.grid_counts(conn, GRID)
    assert counts == {"reported": 1, "registered": 1, "dismissed": 0, "dispatched": 0, "handled": 0, "closed": 0}


async def test_a_cases_kept_answer_is_its_lookup_without_the_history_field_for_field_whatever_writes_the_row(
        pool, handler):
    whole = {"lat": 40.0, "lon": 116.0, "address": "整数坐标"}
    await run(pool, handler, report("k1"), report("k2", where=whole, grid=OTHER_GRID))
    await run(pool, handler, RegisterCase(case_id="k1", department="110105.cgw"),
              now=T0 + timedelta(minutes=5, microseconds=120))  # a time with microseconds, one without
    await run(pool, handler, DispatchCase(case_id="k1", department="110105.cgw", assignee_id="staff-1"),
              now=T0 + timedelta(minutes=10, microseconds=7))
    async with pool.acquire() as conn:
        # a write that is not the handler's (an erasure's): the kept answer follows it too
        await conn.execute("UPDATE cases SET description = '', lat = 0, lon = 0 WHERE case_id = 'k2'")
        page = await db.list_cases(conn, db.CaseFilter(), 10, 0)
        answers = as_json(page.items)
        looked_up = [await db.get_case(conn, a["case_id"]) for a in answers]
    assert [a["case_id"] for a in answers] == ["k2", "k1"]  # reported together: the greater id first
    for answer, case in zip(answers, looked_up):
        del case["history"]
        assert list(answer) == list(case)  # the lookup's fields, in its order
        assert typed(answer) == typed(as_json(case))
    k1 = next(a for a in answers if a["case_id"] == "k1")
    assert k1["registered_at"] == "2026-11-23T01:05:00.000120+00:00"
    assert k1["reported_at"] == "2026-11-23T01:00:00+00:00"
    k2 = next(a for a in answers if a["case_id"] == "k2")
    assert (k2["lat"], k2["lon"], k2["description"]) == (0.0, 0.0, "") and isinstance(k2["lat"], float)


async def test_a_lists_basic_view_is_the_summary_columns_of_the_same_rows_and_a_resident_still_sees_only_their_own(
        pool, handler):
    await run(pool, handler, report("b1"), report("b2", where=FAR), report("b3"))
    await run(pool, handler, RegisterCase(case_id="b2", department="110105.cgw"), now=T0 + timedelta(minutes=1))
    summary = list(CaseSummary.model_fields)
    assert summary == [c.strip() for c in db.queries._CASE_SUMMARY_FIELDS.split(",")]  # migration 012's fields
    async with pool.acquire() as conn:
        full = await list_cases(conn, db.CaseFilter(grid_id=GRID), 2, 0)
        basic = await list_cases(conn, db.CaseFilter(grid_id=GRID), 2, 0, basic=True)
        assert (basic.total, basic.next_cursor) == (full.total, full.next_cursor) and basic.total == 3
        assert [list(r) for r in basic.items] == [summary] * 2  # the summary's columns, in its order
        # each row's kept summary (migration 012) is its full answer's fields of the summary, type for type
        assert typed(basic.items) == typed([{k: r[k] for k in summary} for r in full.items])
        rest = await list_cases(conn, db.CaseFilter(grid_id=GRID), 2, 0, cursor=basic.next_cursor, basic=True)
        assert [r["case_id"] for r in rest.items] == ["b1"]
        reporter = (await db.get_case(conn, "b1"))["reporters"][0]
        resident = db.Reader.of(Principal(reporter["id"], frozenset({"resident"}), Scope()))
        mine = await list_cases(conn, db.CaseFilter(), 10, 0, reader=resident, basic=True)
        assert [list(r) for r in mine.items] == [summary] and mine.items[0]["case_id"] == "b1"


async def test_a_grids_list_takes_its_total_from_the_kept_counts_only_when_they_count_what_the_reader_sees(
        pool, handler):
    """A list of a grid's cases (of one status or all) whose reader sees the whole grid gives the
    total of ``grid_status_counts``, exact without counting the cases; with another filter, or a
    reader who sees only some of the grid's cases (a department's), the matching rows are counted."""
    await run(pool, handler, report("t1"), report("t2", where=FAR), report("t3", grid=OTHER_GRID))
    await run(pool, handler, RegisterCase(case_id="t2", department="110105.cgw"), now=T0 + timedelta(minutes=1))
    area = db.Reader.of(Principal("c1", frozenset({"community_officer"}), Scope(communities={GRID[:12]})))
    department = db.Reader.of(Principal("d1", frozenset({"department_officer"}), Scope(departments={"110105.cgw"})))
    async with pool.acquire() as conn:
        for f, reader, total in ((db.CaseFilter(grid_id=GRID), None, 2),
                                 (db.CaseFilter(grid_id=GRID, status="registered"), area, 1),
                                 (db.CaseFilter(grid_id=GRID, status="closed"), None, 0),
                                 (db.CaseFilter(grid_id=OTHER_GRID), area, 0)):
            page = await list_cases(conn, f, 10, 0, reader=reader)
            assert (page.total, page.total_exact, len(page.items)) == (total, True, total), f
        # the kept counts are what those lists read: made wrong on purpose, they show through
        await conn.execute("UPDATE grid_status_counts SET n = n + 40 WHERE grid_id = $1", GRID)
        assert (await list_cases(conn, db.CaseFilter(grid_id=GRID), 10, 0)).total == 82
        assert (await list_cases(conn, db.CaseFilter(grid_id=GRID, status="reported"), 10, 0, reader=area)).total == 41
        # ... and not the lists they do not count: another filter, a reader of part of the grid
        assert (await list_cases(conn, db.CaseFilter(grid_id=GRID, category="environment"), 10, 0)).total == 2
        assert (await list_cases(conn, db.CaseFilter(grid_id=GRID), 10, 0, reader=department)).total == 0
        await conn.execute("UPDATE grid_status_counts SET n = n - 40 WHERE grid_id = $1", GRID)


async def test_the_counts_kept_beside_the_cases_follow_every_insert_change_and_delete(pool, handler):
    """``grid_status_counts`` (what a grid's counts read) is kept by triggers on ``cases``; after
    cases reported, registered, dismissed, an older version not written, a row changed and one
    deleted, it equals counting the cases."""
    async def counted(conn) -> tuple[dict, dict]:
        kept = {(r["grid_id"], r["status"]): r["n"] for r in await conn.fetch("SELECT * FROM grid_status_counts")}
        real = {(r["grid_id"], r["status"]): r["n"] for r in await conn.fetch(
            "SELECT grid_id, status, count(*) AS n FROM cases GROUP BY grid_id, status")}
        return kept, real  # no row of a count at 0

    await run(pool, handler, report("k1"), report("k2", where=FAR), report("k3", grid=OTHER_GRID, category="other"),
              report("k4", where={"lat": 39.9500, "lon": 116.4436, "address": "far too"}))
    await run(pool, handler, RegisterCase(case_id="k2", department="110105.cgw"), DismissCase(case_id="k4", reason="重复"),
              now=T0 + timedelta(minutes=1))
    async with pool.acquire() as conn:
        kept, real = await counted(conn)
        assert kept == real and real[(GRID, "registered")] == 1 and real[(GRID, "dismissed")] == 1
        [(_, state)] = (await db.CASES.read(conn, ["k2"], lock=False)).values()
        await db.upsert_cases(conn, [(state.model_copy(update={"version": 1, "status": CaseStatus.REPORTED}), T0)])
        await conn.execute("UPDATE cases SET status = 'closed' WHERE case_id = 'k1'")
        await conn.execute("DELETE FROM cases WHERE case_id = 'k3'")
        kept, real = await counted(conn)
        assert kept == real and real[(GRID, "closed")] == 1 and (OTHER_GRID, "reported") not in kept
        assert await db.grid_counts(conn, GRID) == {
            "reported": 0, "registered": 1, "dismissed": 1, "dispatched": 0, "handled": 0, "closed": 1}


async def test_patrols_are_upserted_by_id_listed_by_grid_and_worker_and_not_logged_twice(pool, handler):
    p = LogPatrol(patrol_id="p1", grid_id=GRID, grid_worker_id="gw-1", started_at=T0 - timedelta(hours=1),
                  ended_at=T0 - timedelta(minutes=5))
    uow = await run(pool, handler, p)
    assert [e.type for e in uow.emitted] == ["grid.patrol.logged.v1"]
    again = await run(pool, handler, p, refused=True)
    assert [e.reason for _, e in again.rejected] == ["patrol_exists"]
    async with pool.acquire() as conn:
        assert (await db.list_patrols(conn, GRID, None, 10, 0)).total == 1
        assert (await db.list_patrols(conn, None, "gw-1", 10, 0)).items[0]["community_id"] == "110105001002"
        assert (await db.list_patrols(conn, OTHER_GRID, None, 10, 0)).total == 0


async def test_open311_rows_filter_by_service_code_status_and_dates(pool, handler):
    await run(pool, handler, report("s1"), report("s2", where=FAR, category="public_facility"))
    await run(pool, handler, RegisterCase(case_id="s1", department="110105.cgw"),
              DispatchCase(case_id="s1", department="110105.cgw", assignee_id="s"), HandleCase(case_id="s1", result="ok"),
              VerifyCase(case_id="s1", passed=True), now=T0 + timedelta(minutes=3))
    async with pool.acquire() as conn:
        assert [r["case_id"] for r in await db.open311_requests(conn, open_closed=["closed"])] == ["s1"]
        assert [r["case_id"] for r in await db.open311_requests(conn, service_codes=["public_facility"])] == ["s2"]
        assert len(await db.open311_requests(conn, open_closed=["open", "closed"])) == 2
        assert await db.open311_requests(conn, start=T0 + timedelta(seconds=1)) == []
        assert len(await db.open311_requests(conn, end=T0)) == 2


async def test_the_metrics_snapshot_counts_cases_reports_dismissals_reworks_patrols_and_handling_times(pool, handler):
    await run(pool, handler, report("m1"), report("m2", where=NEAR))  # m2 is a duplicate
    await run(pool, handler, RegisterCase(case_id="m1", department="110105.cgw"),
              DispatchCase(case_id="m1", department="110105.cgw", assignee_id="s"), HandleCase(case_id="m1", result="ok"),
              VerifyCase(case_id="m1", passed=False), HandleCase(case_id="m1", result="ok2"),
              VerifyCase(case_id="m1", passed=True), now=T0 + timedelta(minutes=10))
    await run(pool, handler, LogPatrol(patrol_id="pp", grid_id=GRID, grid_worker_id="gw", started_at=T0 - timedelta(hours=1),
                                       ended_at=T0))
    async with pool.acquire() as conn:
        snap = await db.metrics_snapshot(conn, HANDLING_BUCKETS)
    assert snap.by_status_category == {("closed", "environment"): 1, ("dismissed", "environment"): 1}
    assert snap.reports == 2 and snap.dismissed_by_reason == {"duplicate": 1} and snap.reworks == 1
    assert snap.patrols == 1 and snap.overdue_open == 0
    assert snap.handling_count == 1 and snap.handling_sum == 600.0
    assert snap.handling_bucket_counts[:3] == [0, 0, 1]  # 600 s: above 60 and 300, within 900


async def test_the_tallies_behind_the_gauges_follow_every_write_and_give_what_counting_the_cases_gives(pool, handler):
    """``case_tallies`` and ``patrol_counts`` (what the gauges read) are kept by triggers; after
    cases reported, handled with a rework, closed, dismissed, made overdue, carded, listed and
    delisted, moved to another grid, a closed one's time changed and one deleted, the snapshot
    equals the same figures counted from every case, and the tallies equal tallying the cases
    (``case_tallies_counted``)."""
    async def check(conn) -> None:
        kept = {tuple(r.values()) for r in await conn.fetch("SELECT * FROM case_tallies")}
        assert kept == {tuple(r.values()) for r in await conn.fetch("SELECT * FROM case_tallies_counted")}
        snap = await db.metrics_snapshot(conn, HANDLING_BUCKETS)
        rows = await conn.fetch("SELECT status, category, count(*) AS n FROM cases GROUP BY 1, 2")
        assert snap.by_status_category == {(r["status"], r["category"]): r["n"] for r in rows}
        assert snap.reports == await conn.fetchval("SELECT count(*) FROM cases")
        assert snap.overdue_open == await conn.fetchval("SELECT count(*) FROM cases WHERE is_open AND overdue")
        assert snap.reworks == await conn.fetchval("SELECT coalesce(sum(rework_count), 0) FROM cases")
        assert snap.dismissed_by_reason == {r[0]: r[1] for r in await conn.fetch(
            "SELECT CASE WHEN duplicate_of IS NOT NULL THEN 'duplicate' ELSE 'other' END, count(*) FROM cases "
            "WHERE status = 'dismissed' GROUP BY 1")}
        closed = [r[0] for r in await conn.fetch(
            "SELECT handling_seconds FROM cases WHERE status = 'closed' AND handling_seconds IS NOT NULL")]
        assert (snap.handling_count, snap.handling_sum) == (len(closed), float(sum(closed)))
        assert snap.handling_bucket_counts == [sum(1 for x in closed if x <= b) for b in HANDLING_BUCKETS]
        cards = await conn.fetchrow("SELECT count(*) FILTER (WHERE supervision_count > 0) AS yellow_card, "
                                    "coalesce(sum(greatest(supervision_count - 1, 0)), 0) AS red_card, "
                                    "count(*) FILTER (WHERE listed OR delisted_at IS NOT NULL) AS listed FROM cases")
        assert snap.supervisions == dict(cards)
        assert snap.patrols == await conn.fetchval("SELECT count(*) FROM patrols")

    await run(pool, handler, report("y1"), report("y2", where=NEAR), report("y3", where=FAR),
              report("y4", grid=OTHER_GRID, category="other"))
    await run(pool, handler, RegisterCase(case_id="y1", department="110105.cgw"),
              DispatchCase(case_id="y1", department="110105.cgw", assignee_id="s"),
              HandleCase(case_id="y1", result="ok"), VerifyCase(case_id="y1", passed=False),
              HandleCase(case_id="y1", result="ok2"), VerifyCase(case_id="y1", passed=True),
              DismissCase(case_id="y3", reason="不属实"),
              now=T0 + timedelta(minutes=10))
    await run(pool, handler, LogPatrol(patrol_id="py", grid_id=GRID, grid_worker_id="gw",
                                       started_at=T0 - timedelta(hours=1), ended_at=T0))
    async with pool.acquire() as conn:
        await check(conn)
        await conn.execute("UPDATE cases SET overdue = true, supervision_count = 3 WHERE case_id = 'y4'")
        await conn.execute("UPDATE cases SET listed = true WHERE case_id = 'y4'")
        await conn.execute("UPDATE cases SET listed = false, delisted_at = now() WHERE case_id = 'y4'")
        await conn.execute("UPDATE cases SET handling_seconds = 90000, rework_count = 2 WHERE case_id = 'y1'")
        await check(conn)
        await conn.execute("UPDATE cases SET handling_seconds = 99999999 WHERE case_id = 'y1'")  # above every bound
        await conn.execute("UPDATE cases SET grid_id = $1 WHERE case_id = 'y3'", OTHER_GRID)
        await conn.execute("UPDATE patrols SET grid_id = $1", OTHER_GRID)
        await check(conn)
        await conn.execute("DELETE FROM cases WHERE case_id IN ('y2', 'y4')")
        await conn.execute("DELETE FROM patrols")
        await check(conn)
        assert await conn.fetchval("SELECT count(*) FROM case_tallies WHERE n = 0") == 0
        assert await conn.fetchval("SELECT count(*) FROM patrol_counts") == 0
        # the tallies keep each bound of the histogram, and only those
        probes = [0, *(int(b) + d for b in HANDLING_BUCKETS for d in (-1, 0, 1))]
        within = [r[0] for r in await conn.fetch(
            "SELECT grid_handled_within('closed', s) FROM unnest($1::int[]) WITH ORDINALITY AS p(s, i) ORDER BY i",
            probes)]
    assert within == [min((b for b in HANDLING_BUCKETS if b >= s), default=float("inf")) for s in probes]


async def test_the_whistle_tallies_behind_the_gauges_follow_every_write_and_give_what_counting_the_whistles_gives(
        pool, handler):
    """``whistle_tallies`` (what the whistle gauges read) is kept by a trigger; after whistles blown
    in two streets, answered on time and late, departments recorded missing by the timer, a whistle
    moved to another street and whistles deleted, the snapshot equals the summons counted from
    every whistle, and the tallies equal tallying the whistles (``whistle_tallies_counted``)."""
    street, other = GRID[:9], OTHER_GRID[:9]
    cgw, zhzf, yjj = "110105.cgw", "110105001.zhzf", "110105.yjglj"

    async def check(conn) -> None:
        kept = {tuple(r.values()) for r in await conn.fetch("SELECT * FROM whistle_tallies")}
        assert kept == {tuple(r.values()) for r in await conn.fetch("SELECT * FROM whistle_tallies_counted")}
        snap = await whistle_db.whistle_snapshot(conn)
        counted = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM whistles) AS blown,
                      count(*) FILTER (WHERE s->>'answered_at' IS NOT NULL AND (s->>'on_time')::boolean) AS on_time,
                      count(*) FILTER (WHERE s->>'answered_at' IS NOT NULL AND NOT (s->>'on_time')::boolean) AS late,
                      count(*) FILTER (WHERE (s->>'missed')::boolean) AS missed
               FROM whistles, jsonb_array_elements(state->'summons') AS s""")
        assert (snap.blown, snap.answered_on_time, snap.answered_late, snap.missed) == tuple(counted.values())

    def blow(whistle_id: str, street_id: str, *departments: str) -> BlowWhistle:
        return BlowWhistle(whistle_id=whistle_id, street_id=street_id, departments=departments,
                           report_by=T0 + timedelta(hours=1), matter="占道经营")

    await run(pool, handler, blow("w1", street, cgw, zhzf), blow("w2", other, yjj), blow("w3", street, cgw))
    await run(pool, handler, AnswerWhistle(whistle_id="w1", department=cgw), now=T0 + timedelta(minutes=10))
    await run(pool, handler, AnswerWhistle(whistle_id="w3", department=cgw), now=T0 + timedelta(hours=2))
    async with pool.acquire() as conn, conn.transaction():  # the timer: zhzf of w1, yjj of w2, cgw of w3 (late)
        uow = UnitOfWork(conn, "grid", T0 + timedelta(hours=3))
        assert await handler.check_whistles(uow) == 3
        await uow.flush()
    async with pool.acquire() as conn:
        await check(conn)
        assert await whistle_db.whistle_snapshot(conn) == whistle_db.WhistleSnapshot(
            blown=3, answered_on_time=1, answered_late=1, missed=3)
        await conn.execute("UPDATE whistles SET street_id = $1 WHERE whistle_id = 'w3'", other)
        await check(conn)
        await conn.execute("DELETE FROM whistles WHERE whistle_id = 'w1'")
        await check(conn)
        await conn.execute("DELETE FROM whistles")
        await check(conn)
        assert await conn.fetchval("SELECT count(*) FROM whistle_tallies") == 0


def test_the_shipped_policy_file_parses_to_the_default_policy_on_the_shipped_calendar():
    shipped = load_policy(Path(__file__).resolve().parents[3] / "services/grid/policy/deadlines.yaml")
    assert shipped == DeadlinePolicy.from_mapping(DEFAULT_POLICY_MAPPING, calendar=load_calendar())
    assert shipped.limits_for(Category.OTHER) == DEFAULT_POLICY.limits_for(Category.OTHER)


def test_the_sample_grid_register_has_two_streets_of_three_communities_of_four_grids():
    reg = GridRegister.load()
    assert len(reg.grid_ids) == 24 and GRID in reg and "110105003001001" not in reg
    assert {g[:9] for g in reg.grid_ids} == {"110105001", "110105002"}


async def test_open311_rows_are_a_public_projection_without_private_categories_or_personal_data(pool, handler):
    spot = {"lat": 39.921949, "lon": 116.443651, "address": "金台里3号楼2单元501室"}
    far = {"lat": 39.95, "lon": 116.47, "address": "光华路1号"}
    elsewhere = {"lat": 39.98, "lon": 116.50, "address": "朝阳路9号"}
    await run(pool, handler, report("pub-reported", where=spot, media=["https://media.example/p1.jpg"]),
              report("pub-registered", where=far, category="public_facility"),
              report("pub-dismissed", where=elsewhere, category="other"),
              report("priv-dispute", where=spot, category="dispute.neighbour"),
              report("priv-need", where=far, category="resident_need"),
              report("priv-labour", where=elsewhere, category="dispute.labour"))
    await run(pool, handler, RegisterCase(case_id="pub-registered", department="110105.cgw"),
              RegisterCase(case_id="priv-dispute", department="110105001.sfs"),
              DismissCase(case_id="pub-dismissed", reason="张三家的私事，与楼下王五有关"),
              now=T0 + timedelta(minutes=1))
    private = {"priv-dispute", "priv-need", "priv-labour"}
    async with pool.acquire() as conn:
        rows = await db.open311_requests(conn, open_closed=["open", "closed"])
        assert {r["case_id"] for r in rows} == {"pub-reported", "pub-registered", "pub-dismissed"}
        for code in ("dispute.neighbour", "dispute.property", "dispute.labour", "resident_need"):
            assert await db.open311_requests(conn, service_codes=[code]) == []
        assert [r["case_id"] for r in await db.open311_requests(conn, service_codes=["dispute.neighbour",
                                                                                       "public_facility"])] \
            == ["pub-registered"]
        for cid in private:
            assert await db.open311_requests(conn, case_id=cid) == []
    by_id = {r["case_id"]: r for r in rows}
    for r in rows:
        assert not {"address", "media", "reporters", "reporter"} & set(r), r
        assert "金台里" not in repr(r) and "media.example" not in repr(r) and "r-pub" not in repr(r)
    assert (by_id["pub-reported"]["lat"], by_id["pub-reported"]["lon"]) == (39.922, 116.444)
    assert (by_id["pub-registered"]["lat"], by_id["pub-registered"]["lon"]) == (39.95, 116.47)
    assert by_id["pub-reported"]["description"] == ""  # reported, not registered yet: not moderated
    assert by_id["pub-registered"]["description"] == "垃圾桶满溢"
    assert by_id["pub-dismissed"]["description"] == "" and "张三" not in repr(by_id["pub-dismissed"])
