"""``python -m services.<svc>.app rebuild`` against a real worker: the rebuilt projection equals
the live one row for row, nothing is published again, and a live worker makes it refuse."""
from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import orjson
import pytest

from schemas.envelope import CloudEvent, encode
from services.kit import clock
from services.kit.rebuild import _read_inbox_times
from tests.integration.grid.support import (DEPARTMENTS, GRID, HERE, NEAR, cmd, events_of, grid_worker, new_id,
                                            report, send_as_senders, sender_jwt)
from tests.support.identity import command_headers
from tests.support.kafka import produce, read_all
from tests.support.procs import http
from tests.support.rebuild import differences, snapshot
from tests.support.rebuild import report as diff_report
from tests.support.rebuild import run_rebuild as rebuild_of

pytestmark = pytest.mark.integration

def envelope(c: dict, subject: str) -> CloudEvent:
    return CloudEvent.model_validate({"specversion": "1.0", "source": "/users/app-7", "subject": subject,
                                      "time": datetime.now(timezone.utc).isoformat(), **c})


def run_rebuild(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return rebuild_of("grid", env, *args, timeout=120)


async def handled_and_published(kafka: str, database_url: str, commands: int, *, dead_letter: bool = False) -> None:
    """Wait until ``commands`` commands have their outcome on the grid's events or rejections
    topic (and, with ``dead_letter``, the DLQ has a record), then until the outbox is empty."""
    for _ in range(120):
        out = await read_all(kafka, "grid.events.v1", timeout=2) + await read_all(kafka, "grid.rejections.v1", timeout=2)
        dlq = await read_all(kafka, "grid.dlq.v1", timeout=1) if dead_letter else [None]
        # the commands' causes (a timer's events have none)
        causes = {r["value"].get("causationid") for r in out if isinstance(r["value"], dict)} - {None}
        if len(causes) >= commands and dlq:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the worker did not handle every command")
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(100):
            if not await conn.fetchval("SELECT count(*) FROM grid.outbox"):
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def rebuilt_as_live(env: dict[str, str], database_url: str, live) -> tuple[dict, object]:
    """Rebuild the grid of the stopped worker (``env``) and check it equals ``live`` row for row:
    the rebuild's outcome and the rebuilt snapshot."""
    done = await asyncio.to_thread(run_rebuild, env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    rebuilt = await snapshot(database_url, "grid")
    diffs = differences(live, rebuilt)
    assert not diffs, f"{outcome}\n{diff_report(diffs)}"
    return outcome, rebuilt


async def test_a_rebuilt_grid_projection_equals_the_live_one_row_for_row(kafka, database_url, tmp_path):
    w = grid_worker(kafka, database_url, tmp_path / "worker.log").start()
    env = w.env  # run_rebuild leaves out its HTTP settings
    cases = [new_id("rb") for _ in range(12)]
    try:
        await w.wait_ready()
        refused = await asyncio.to_thread(run_rebuild, env)
        assert refused.returncode == 2 and "live grid worker" in refused.stderr, refused.stderr
        steps = []
        for i, cid in enumerate(cases):
            dept = DEPARTMENTS[i % 3]
            # each case ~1 km from the next: none is a duplicate of another (a replayed duplicate is
            # the test after the next one's)
            where = {"lat": 39.9219 + 0.01 * i, "lon": 116.4436, "address": f"金台里{i}号楼"}
            steps.append((report(cid, reporter=f"res-{i}", where=where), cid))
            if i % 4 == 3:
                steps.append((cmd("case.dismiss", case_id=cid, reason="不属于受理范围", registrar_id="clerk-1"), cid))
                continue
            steps += [(cmd("case.register", case_id=cid, department=dept, registrar_id="clerk-1"), cid),
                      (cmd("case.dispatch", case_id=cid, department=dept, assignee_id="staff-7"), cid)]
            if i % 2 == 0:
                steps += [(cmd("case.handle", case_id=cid, result="已处理", handled_by="staff-7"), cid),
                          (cmd("case.verify", case_id=cid, passed=True, verifier_id="gw-9"), cid)]
            # refused by the rules (a case registered twice): a rejection, not a state change
            steps.append((cmd("case.register", case_id=cid, department=dept, registrar_id="clerk-1"), cid))
        await send_as_senders(kafka, *(envelope(c, s) for c, s in steps))
        await produce(kafka, "grid.intake.v1", [("poison", b'{"specversion": "1.0", "id": "broken')])
        total = len(steps)
        # every command has its outcome on the events or rejections topic, and the poison its dead letter
        await handled_and_published(kafka, database_url, total, dead_letter=True)
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    published = {t: len(await read_all(kafka, t, timeout=2)) for t in ("grid.events.v1", "grid.rejections.v1", "grid.dlq.v1")}
    live = await snapshot(database_url, "grid")
    assert sum(live.rows["cases"].values()) == len(cases)

    outcome, rebuilt = await rebuilt_as_live(env, database_url, live)
    assert outcome["records"] == total + 1
    assert outcome["handled_times_found"] == total
    # the rebuild caused what the worker had published, and published none of it again
    assert outcome["not_published_again"] == {t: n for t, n in published.items() if n}
    assert {t: len(await read_all(kafka, t, timeout=2)) for t in published} == published
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM grid.outbox") == 0
    finally:
        await conn.close()

    # Commands sent after the worker stopped: a rebuild of what it had handled leaves them out
    # (and says how many), one of the whole topic handles them, as the next worker would.
    later = [new_id("rb") for _ in range(2)]
    await send_as_senders(kafka, *(envelope(report(cid, reporter="res-late"), cid) for cid in later))
    done = await asyncio.to_thread(run_rebuild, env, "--handled-only")
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    diffs = differences(live, await snapshot(database_url, "grid"))
    assert not diffs, f"{outcome}\n{diff_report(diffs)}"
    assert (outcome["records"], outcome["not_handled_live"]) == (total + 1, len(later))
    done = await asyncio.to_thread(run_rebuild, env)
    assert done.returncode == 0, done.stderr[-4000:]
    assert orjson.loads(done.stdout.strip().splitlines()[-1])["not_handled_live"] == 0
    assert sum((await snapshot(database_url, "grid")).rows["cases"].values()) == len(cases) + len(later)


async def test_a_message_that_caused_nothing_is_replayed_when_the_inbox_says_the_worker_handled_it(database_url):
    """Its record's timestamp may be far earlier (published late, after an outage of the relay):
    the inbox's time of handling, on the service's calendar, is when it came. A message whose
    events give its time keeps that time; an undecodable record's position key is no message."""
    t0 = datetime(2026, 12, 4, 5, 0, tzinfo=timezone.utc)
    conn = await asyncpg.connect(database_url)
    before = clock.current()
    try:
        await conn.execute("CREATE TABLE inbox (source text, id text, processed_at timestamptz, PRIMARY KEY (source, id))")
        await conn.execute("CREATE TEMPORARY TABLE rebuild_handled (id text PRIMARY KEY, at timestamptz NOT NULL)")
        await conn.execute("INSERT INTO rebuild_handled VALUES ('caused-events', $1)", t0)
        await conn.executemany("INSERT INTO inbox VALUES ($1, $2, $3)", [
            ("/services/grid", "fact", t0 + timedelta(seconds=20)),
            ("/services/orders", "fact", t0 + timedelta(seconds=10)),  # the same id from another source: the first
            ("/services/grid", "caused-events", t0 + timedelta(seconds=30)),
            ("kafka:grid.intake.v1:0", "5:123", t0)])
        # a stepped calendar: a month every 60 real seconds from t0
        clock.use(clock.SteppedCalendar(datetime(2026, 5, 1, tzinfo=clock.SHANGHAI), t0.timestamp(), 60.0))
        assert await _read_inbox_times(conn) == 1
        got = dict(await conn.fetch("SELECT id, at FROM rebuild_handled"))
        assert got == {"caused-events": t0, "fact": datetime(2026, 5, 1, tzinfo=clock.SHANGHAI) + timedelta(seconds=10)}
        # on the real clock, the inbox's own times
        await conn.execute("INSERT INTO inbox VALUES ('/services/party', 'late-fact', $1)", t0 + timedelta(hours=2))
        clock.use(clock.SystemClock())
        assert await _read_inbox_times(conn) == 1
        assert await conn.fetchval("SELECT at FROM rebuild_handled WHERE id = 'late-fact'") == t0 + timedelta(hours=2)
        await conn.execute("DROP TABLE inbox")
        assert await _read_inbox_times(conn) == 0  # no inbox (a damaged database): the records' timestamps
    finally:
        clock.use(before)


async def test_a_message_twice_on_the_topic_is_handled_once_when_its_copies_fall_in_different_batches(
        kafka, database_url, tmp_path):
    """The replay claims each batch's messages in the inbox before the batch's turn: a copy that
    comes batches after the first (here: batches of two, a topic never handled live) is a
    duplicate there, as in the worker's inbox."""
    env = grid_worker(kafka, database_url, tmp_path / "w.log").env
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    patrols = [envelope(cmd("patrol.log", patrol_id=new_id("rb-patrol"), grid_id=GRID, grid_worker_id="gw-1",
                            started_at=start.isoformat(), ended_at=(start + timedelta(minutes=30)).isoformat()),
                        "rb-patrols") for _ in range(5)]
    await send_as_senders(kafka, *patrols, patrols[0], patrols[1])  # one key: one partition, in this order
    done = await asyncio.to_thread(run_rebuild, env, "--batch", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert (outcome["records"], outcome["batches"]) == (7, 4)
    assert outcome["not_published_again"] == {"grid.events.v1": 5}  # each patrol logged once
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM grid.patrols") == 5
        assert await conn.fetchval("SELECT count(*) FROM grid.inbox") == 5
    finally:
        await conn.close()


async def test_the_consumers_of_one_handler_replay_as_one_in_batches_that_span_their_topics(
        kafka, database_url, tmp_path):
    """The worker's consumers of one handler (grid's intake, and the other services' events it
    follows for their erasures) interleave in time. The replay merges them into one consumer, so
    that a batch spans their topics: kept apart, every switch between them cut a batch, and a
    history of years replayed in batches of a few records (points: 18,125 transactions for
    226,614 records)."""
    env = grid_worker(kafka, database_url, tmp_path / "w.log").env
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    patrols = [envelope(cmd("patrol.log", patrol_id=new_id("rb-span"), grid_id=GRID, grid_worker_id="gw-1",
                            started_at=start.isoformat(), ended_at=(start + timedelta(minutes=30)).isoformat()),
                        "rb-span") for _ in range(6)]
    # an orders event the grid does not react to between each two patrols (skipped, but counted)
    placed = [CloudEvent.model_validate({"specversion": "1.0", "source": "/services/orders", "id": new_id("ev"),
                                         "type": "orders.order.placed.v1", "subject": f"o-{i}",
                                         "time": start.isoformat(), "data": {"order_id": f"o-{i}"}})
              for i in range(6)]
    headers = [command_headers(p, departments=DEPARTMENTS) for p in patrols]
    ms = int(datetime.now(timezone.utc).timestamp() * 1000)  # not before the tokens were issued
    await produce(kafka, "grid.intake.v1", [(p.subject, encode(p), h, ms + 2 * i)
                                            for i, (p, h) in enumerate(zip(patrols, headers))])
    await produce(kafka, "orders.events.v1", [(e.subject, encode(e), None, ms + 2 * i + 1)
                                              for i, e in enumerate(placed)])
    done = await asyncio.to_thread(run_rebuild, env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert (outcome["records"], outcome["batches"]) == (12, 1)
    assert outcome["not_published_again"] == {"grid.events.v1": 6}
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM grid.patrols") == 6
    finally:
        await conn.close()


async def test_a_copy_of_an_event_on_the_services_own_topic_changes_nothing_in_the_rebuild(
        kafka, database_url, tmp_path):
    """A record of the events topic sent again unchanged (a redelivery, as the fault campaign
    injects): the rebuild reads that topic for handling times and event ids, and the copy is the
    same event, not a second one the command caused."""
    w = grid_worker(kafka, database_url, tmp_path / "worker.log").start()
    env = w.env
    cases = [new_id("rb-copy") for _ in range(3)]
    try:
        await w.wait_ready()
        steps = []
        for i, cid in enumerate(cases):
            where = {"lat": 39.9219 + 0.01 * i, "lon": 116.4436, "address": f"金台里{i}号楼"}
            steps += [(report(cid, reporter=f"res-{i}", where=where), cid),
                      (cmd("case.register", case_id=cid, department=DEPARTMENTS[0], registrar_id="clerk-1"), cid)]
        await send_as_senders(kafka, *(envelope(c, s) for c, s in steps))
        await handled_and_published(kafka, database_url, len(steps))
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    live = await snapshot(database_url, "grid")
    first = [r for r in await read_all(kafka, "grid.events.v1", timeout=2)
             if isinstance(r["value"], dict) and r["value"].get("subject") == cases[0]]
    assert first
    await produce(kafka, "grid.events.v1", [(r["key"], orjson.dumps(r["value"]),
                                             [(k, v.encode()) for k, v in r["headers"].items()]) for r in first])
    # the rebuild forgets each cause it has seen at once (as it forgets them past 200,000 in a
    # long history): a cause met again, the copies here, is still one handling time
    done = await asyncio.to_thread(run_rebuild, {**env, "REBUILD_SEEN_KEPT": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    rebuilt = await snapshot(database_url, "grid")
    diffs = differences(live, rebuilt)
    assert not diffs, diff_report(diffs)


async def test_a_replayed_report_is_the_duplicate_of_the_case_the_worker_linked_it_to_and_of_no_other(
        kafka, database_url, tmp_path):
    """Whether a report is a duplicate rests on which cases near it were open when the worker
    handled it, which no input topic need hold: two reports on different partitions are handled
    by two lanes at once and neither sees the other's case (live, both stay cases; replayed one
    after the other, the second would see the first). Here the state the topics lack is a
    dismissal sent over HTTP: live, the next report near it is a case of its own, and the replay,
    where the first case is still open, must not make it that case's duplicate. A later report
    that the worker did link is linked again."""
    w = grid_worker(kafka, database_url, tmp_path / "worker.log").start()
    env = w.env
    first, second, third = (new_id("rb-dup") for _ in range(3))
    try:
        await w.wait_ready()
        await send_as_senders(kafka, envelope(report(first, where=HERE, reporter="res-1"), first))
        await events_of(kafka, first)
        dismissal = cmd("case.dismiss", case_id=first, reason="不属于受理范围", registrar_id="clerk-1")
        status, out = await http("POST", w.url + "/v1/commands", json=dismissal, token=sender_jwt(dismissal))
        assert status == 200, out
        await send_as_senders(kafka, envelope(report(second, where=NEAR, reporter="res-2"), second))
        assert [e["type"] for e in await events_of(kafka, second)] == ["grid.case.reported.v1"]
        await send_as_senders(kafka, envelope(report(third, where=NEAR, reporter="res-3"), third))
        await handled_and_published(kafka, database_url, 3)
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]

    async def rows(dsn: str) -> tuple[dict, list]:
        conn = await asyncpg.connect(dsn)
        try:
            cases = {r["case_id"]: (r["status"], r["duplicate_of"], r["duplicates"]) for r in await conn.fetch(
                "SELECT case_id, status, duplicate_of, duplicates::text FROM grid.cases WHERE case_id = ANY($1)",
                [first, second, third])}
            history = [tuple(r) for r in await conn.fetch(
                "SELECT case_id, seq, type, event_id, data::text FROM grid.case_history WHERE case_id = ANY($1) "
                "ORDER BY case_id, seq", [second, third])]
            return cases, history
        finally:
            await conn.close()

    live_cases, live_history = await rows(database_url)
    assert live_cases[first][0] == "dismissed" and live_cases[second][0] == "reported"
    assert live_cases[third][:2] == ("dismissed", second)
    done = await asyncio.to_thread(run_rebuild, env)
    assert done.returncode == 0, done.stderr[-4000:]
    rebuilt_cases, rebuilt_history = await rows(database_url)
    assert rebuilt_cases[first][0] == "reported"  # the HTTP dismissal is not input: open, and near the second
    assert {c: rebuilt_cases[c] for c in (second, third)} == {c: live_cases[c] for c in (second, third)}
    assert rebuilt_history == live_history


async def test_the_overdue_timers_rounds_are_run_again_when_the_live_worker_ran_them(kafka, database_url, tmp_path):
    """Cases of a category whose registration is due within 2 seconds: the overdue timer reports
    the missed deadline and supervises each case (a yellow card; no message caused either), then
    one case is registered late and dispatched. The rebuild runs the timer again at each time
    the live one published, between the messages handled before and after it: the cases, their
    deadlines and their history come back as the worker left them, row for row, nothing left
    out, and the round's events are not published again."""
    w = grid_worker(kafka, database_url, tmp_path / "worker.log").start()
    late, left = new_id("od"), new_id("od")
    FAR = {"lat": 39.9419, "lon": 116.4436, "address": "团结湖5号楼"}  # ~2 km away: not a duplicate
    try:
        await w.wait_ready()
        await send_as_senders(kafka, envelope(report(late, category="other", reporter="res-1"), late),
                              envelope(report(left, category="other", reporter="res-2", where=FAR), left))
        supervised = await read_all(kafka, "grid.events.v1", min_count=2, timeout=30, predicate=lambda r: (
            r["value"]["type"] == "grid.case.supervised.v1"))
        assert {r["value"]["subject"] for r in supervised} == {late, left}
        await send_as_senders(kafka, envelope(cmd("case.register", case_id=late, department=DEPARTMENTS[0],
                                                  registrar_id="clerk-1"), late),
                              envelope(cmd("case.dispatch", case_id=late, department=DEPARTMENTS[0],
                                           assignee_id="staff-7"), late))
        await read_all(kafka, "grid.events.v1", min_count=1, timeout=30,
                       predicate=lambda r: r["value"]["type"] == "grid.case.dispatched.v1")
        await handled_and_published(kafka, database_url, 4)
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    events = [r["value"] for r in await read_all(kafka, "grid.events.v1", timeout=2)]
    from_timer = [e for e in events if e.get("causationid") is None]
    assert {e["type"] for e in from_timer} == {"grid.case.overdue.v1", "grid.case.supervised.v1"}
    live = await snapshot(database_url, "grid")

    outcome, rebuilt = await rebuilt_as_live(w.env, database_url, live)
    assert outcome["timer_rounds"] == len({e["time"] for e in from_timer})
    assert outcome["not_published_again"]["grid.events.v1"] == len(events)
    history = [r for r in rebuilt.rows["case_history"] if late in r or left in r]
    assert sum(1 for r in history if "grid.case.supervised.v1" in r) == 2


async def test_the_whistle_timers_rounds_are_run_again_too(kafka, database_url, tmp_path):
    """吹哨报到 over the intake: a street summons two departments with 3 seconds to report; one
    answers in time; the whistle timer records the other missing (no message caused it), which
    then answers late, and the street rates both. Rebuilt, the whistle equals the live one, the
    department recorded missing included."""
    w = grid_worker(kafka, database_url, tmp_path / "worker.log").start()
    wid, on_time, late = new_id("w"), DEPARTMENTS[0], DEPARTMENTS[1]

    def whistle(type_: str, **data) -> CloudEvent:
        return envelope({"id": str(uuid.uuid4()), "type": f"grid.whistle.{type_}.v1",
                         "data": {"whistle_id": wid, **data}}, wid)

    try:
        await w.wait_ready()
        report_by = (datetime.now(timezone.utc) + timedelta(seconds=3)).isoformat()
        await send_as_senders(kafka, whistle("blow", street_id=GRID[:9], departments=[on_time, late],
                                             report_by=report_by, matter="占道经营，请相关部门到场"),
                              whistle("answer", department=on_time, note="已到场"))
        await read_all(kafka, "grid.events.v1", min_count=1, timeout=30,
                       predicate=lambda r: r["value"]["type"] == "grid.whistle.missed.v1")
        await send_as_senders(kafka, whistle("answer", department=late),
                              whistle("rate", department=on_time, rating=5), whistle("rate", department=late, rating=2))
        await handled_and_published(kafka, database_url, 5)
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    events = [r["value"] for r in await read_all(kafka, "grid.events.v1", timeout=2)]
    assert [e["data"]["department"] for e in events if e.get("causationid") is None] == [late]
    live = await snapshot(database_url, "grid")

    outcome, rebuilt = await rebuilt_as_live(w.env, database_url, live)
    assert outcome["timer_rounds"] == 1 and outcome["not_published_again"]["grid.events.v1"] == len(events)
    assert outcome["rejected"] == {}
