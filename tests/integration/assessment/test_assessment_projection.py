"""The assessment projection in real PostgreSQL: the event log, the counters folded as events
arrive (in any order, in batches, duplicated: the same as one in-memory replay; folded again
from the log), period closes (idempotent publication, corrections), the period-close timer."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from schemas.envelope import decode_payload
from schemas.grid import CaseFeedback
from services.assessment.app.event_log import RefCache, fold_unfolded, record_and_fold
from services.assessment.app.handler import CLOSE_MARK, AssessmentHandler, LiveClose
from services.assessment.domain import default_scheme
from services.assessment.domain.history import StoredEvent, fold, replay_order
from services.assessment.domain.publication import publication_for
from services.assessment.projection import MIGRATIONS, store
from services.kit.db import CONFLICT_ERRORS
from services.kit.identity import Scope
from services.kit.uow import UnitOfWork
from tests.support.db import as_json, migrated_pool, typed

from .scenario import GRID_A, GRID_A_SCORE, GRID_B_SCORE, PERIOD, grid_events, order_events, t

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
async def pool(database_url):
    async with migrated_pool(database_url, "assessment", MIGRATIONS) as p:
        yield p


def stored(envs) -> list[StoredEvent]:
    return [StoredEvent(e.source, e.id, "t", decode_payload(e), e.time) for e in envs]


async def record(pool, events) -> int:
    """Record and fold ``events`` in one transaction, as one batch of the worker does."""
    async with pool.acquire() as conn, conn.transaction():
        return len(await record_and_fold(conn, events))


async def close(pool, handler, period=PERIOD, now=NOW):
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "assessment", now)
        pub = await handler.close(uow, period, handler.default, trigger="command")
        return pub, uow.emitted


async def test_event_log_keeps_each_event_once_and_replays_in_event_time_order(pool):
    events = stored(grid_events() + order_events())
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert await record(pool, shuffled[:20]) == 20
    assert await record(pool, shuffled) == len(events) - 20  # the first 20 again are skipped
    async with pool.acquire() as conn:
        history = await store.load_history(conn)
        assert await store.count_events(conn) == len(events)
    assert [(e.source, e.id) for e in history] == [(e.source, e.id) for e in replay_order(events)]
    assert [e.occurred_at for e in history] == sorted(e.occurred_at for e in events)


async def test_an_event_logged_meanwhile_stops_the_write_of_the_log_with_a_conflict_to_retry(pool):
    """The log's rows are written by COPY, found unrecorded under the fold's lock; one another
    transaction wrote all the same is a unique violation, which the worker retries as a conflict,
    and nothing of the write stays."""
    first, second = stored(grid_events())[:2]
    assert await record(pool, [first]) == 1
    with pytest.raises(asyncpg.exceptions.UniqueViolationError) as raised:
        async with pool.acquire() as conn, conn.transaction():
            await store.record_folded(conn, [second, first], {(e.source, e.id): () for e in (first, second)})
    assert isinstance(raised.value, CONFLICT_ERRORS)
    async with pool.acquire() as conn:
        assert await store.count_events(conn) == 1


async def test_facts_replayed_from_postgresql_equal_the_in_memory_replay(pool):
    events = stored(grid_events() + order_events())
    random.Random(3).shuffle(events)
    await record(pool, events)
    handler = AssessmentHandler(default_scheme())
    async with pool.acquire() as conn:
        from_db = await handler.compute(conn, PERIOD, handler.default)
    table, lookup = fold(replay_order(reversed(events)))
    in_memory = publication_for(PERIOD, table, lookup, handler.default)
    assert from_db == in_memory
    grids = {c.entity_id: c.score for c in from_db.scorecards if c.entity_type.value == "grid"}
    assert grids == {GRID_A: GRID_A_SCORE, "110105001002004": GRID_B_SCORE}


async def counters(pool) -> tuple[list, list]:
    async with pool.acquire() as conn:
        facts = await conn.fetch("SELECT period, entity_type, entity_id, fact, value, n FROM facts "
                                 "ORDER BY period, entity_type, entity_id, fact")
        refs = await conn.fetch("SELECT kind, ref_id, data FROM refs ORDER BY kind, ref_id")
    return [tuple(r) for r in facts], [tuple(r) for r in refs]


@pytest.mark.parametrize("seed", [1, 2])
async def test_counters_folded_batch_by_batch_in_any_order_with_duplicates_equal_one_replay(pool, seed, monkeypatch):
    monkeypatch.setattr(store, "TAIL_PAGE", 3)  # the tails a late batch unwinds are read in pages
    tails: list[int] = []
    folded_after = store.folded_after

    async def noting(conn, key):
        tail = await folded_after(conn, key)
        tails.append(len(tail))
        return tail

    monkeypatch.setattr(store, "folded_after", noting)
    events = stored(grid_events() + order_events())
    rng = random.Random(seed)
    arrival = events + rng.sample(events, 8)  # redeliveries
    rng.shuffle(arrival)
    cuts = sorted(rng.sample(range(1, len(arrival)), 9))
    for a, b in zip([0, *cuts], [*cuts, len(arrival)]):
        await record(pool, arrival[a:b])
    table, lookup = fold(replay_order(events))
    async with pool.acquire() as conn:
        for p in ("2026-10", "2026-Q4", "2026"):
            assert await store.period_facts(conn, p) == {k: v for k, v in table.items() if k[2] == p}
        stored_refs = {(r["kind"], r["ref_id"]): r["data"] for r in await conn.fetch("SELECT * FROM refs")}
        assert await conn.fetchval("SELECT count(*) FROM event_log WHERE undo IS NULL") == 0
    assert stored_refs == {k: r.model_dump(mode="json") for k, r in lookup.refs.items()}
    # emptied and folded again from the log (a rebuild; rows recorded before the counters were kept)
    before = await counters(pool)
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE facts, refs; UPDATE event_log SET undo = NULL")
    assert await fold_unfolded(pool, chunk=7) == len(events)
    assert await counters(pool) == before
    assert max(tails) > 3 * 2  # some tail took more than two pages


async def test_a_log_folded_again_chunk_by_chunk_reads_on_from_each_chunk_and_misses_no_row(pool, monkeypatch):
    """The emptied log is folded chunk after chunk, each read on from the key of the one before
    (not from the start, past every row folded so far); a row recorded unfolded meanwhile before
    that key is folded by the last read from the start, with the tail after it unwound."""
    events = stored(grid_events() + order_events())
    await record(pool, events)
    before = await counters(pool)
    order = replay_order(events)
    early = order[3]  # recorded again (unfolded) once the fold has gone past it
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE facts, refs; UPDATE event_log SET undo = NULL")
        await conn.execute("DELETE FROM event_log WHERE (source, id) = ($1, $2)", early.source, early.id)
    reads: list[tuple] = []
    unfolded = store.unfolded

    async def noting(conn, limit, after=None):
        reads.append(after)
        if len(reads) == 3:
            await store.record_events(conn, [early])
        return await unfolded(conn, limit, after)

    monkeypatch.setattr(store, "unfolded", noting)
    assert await fold_unfolded(pool, chunk=7) == len(events)
    assert await counters(pool) == before
    chunks = -(-(len(events) - 1) // 7)
    assert reads[0] is None and all(k is not None for k in reads[1:chunks + 1])  # read on, chunk after chunk
    # then from the start: the early row; on from it: nothing; from the start again: nothing
    assert reads[chunks + 1] is None and reads[chunks + 2] is not None and reads[chunks + 3:] == [None]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM event_log WHERE undo IS NULL") == 0


async def test_two_workers_folding_in_turn_each_with_its_cache_of_refs_equal_one_replay(pool):
    """Each worker keeps the refs its last fold left in memory; a fold by the other worker, or a
    change to the refs outside a fold, makes it read them from the table again."""
    events = stored(grid_events() + order_events())
    rng = random.Random(5)
    arrival = events + rng.sample(events, 6)
    rng.shuffle(arrival)
    a, b = RefCache(), RefCache()
    cuts = sorted(rng.sample(range(1, len(arrival)), 7))
    for n, (i, j) in enumerate(zip([0, *cuts], [*cuts, len(arrival)])):
        cache = a if n % 3 else b  # a folds twice in a row now and then: its cache is used
        async with pool.acquire() as conn, conn.transaction():
            await record_and_fold(conn, arrival[i:j], cache)
            assert cache.token == await store.fold_token(conn) and (cache.refs or not cache.known)
    table, lookup = fold(replay_order(events))
    async with pool.acquire() as conn:
        assert await store.period_facts(conn, "2026-10") == {k: v for k, v in table.items() if k[2] == "2026-10"}
        stored_refs = {(r["kind"], r["ref_id"]): r["data"] for r in await conn.fetch("SELECT * FROM refs")}
    assert stored_refs == {k: r.model_dump(mode="json") for k, r in lookup.refs.items()}

    # a change to the refs outside a fold (an erasure rewrites them): the cache is not used again
    async with pool.acquire() as conn:
        await conn.execute("UPDATE refs SET data = data WHERE kind = 'case'")
        assert await store.fold_token(conn) != a.token
        async with conn.transaction():
            await a.begin(conn)
            assert a.refs == {} and not a.complete
    # nor after a transaction that folded with it rolled back
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await a.begin(conn)
        await a.saved(conn, {}, set(), [], [])
        token = a.token
        await tx.rollback()
        assert await store.fold_token(conn) != token
        async with conn.transaction():
            await a.begin(conn)
            assert a.known == set()


async def test_a_cache_past_its_limit_drops_its_older_refs_and_still_folds_as_one_replay(pool):
    """A cache of three refs drops the older half again and again without starting over: it stays
    complete (a ref it never had does not exist), and the dropped ones are read from the table
    when a fold needs them."""
    events = stored(grid_events() + order_events())
    rng = random.Random(11)
    arrival = events + rng.sample(events, 4)
    rng.shuffle(arrival)
    cache = RefCache(limit=3)
    cuts = sorted(rng.sample(range(1, len(arrival)), 10))
    for i, j in zip([0, *cuts], [*cuts, len(arrival)]):
        async with pool.acquire() as conn, conn.transaction():
            await record_and_fold(conn, arrival[i:j], cache)
    assert cache.complete and cache.evicted
    table, lookup = fold(replay_order(events))
    async with pool.acquire() as conn:
        for p in ("2026-10", "2026-Q4", "2026"):
            assert await store.period_facts(conn, p) == {k: v for k, v in table.items() if k[2] == p}
        stored_refs = {(r["kind"], r["ref_id"]): r["data"] for r in await conn.fetch("SELECT * FROM refs")}
    assert stored_refs == {k: r.model_dump(mode="json") for k, r in lookup.refs.items()}


@pytest.mark.parametrize("named", [True, False])
async def test_a_fold_loads_the_dropped_refs_its_events_name_before_it_runs(pool, monkeypatch, named):
    """Each dropped ref a fold reads made it run twice (read, then fold again): a rebuild of
    years of history ran half of its batches twice. The refs the events name by their
    ``<kind>_id`` fields are now loaded first, and a late case event folds in one run. Without
    that (``named`` False) the same fold runs twice: the test sees the difference."""
    import services.assessment.app.event_log as event_log

    if not named:
        monkeypatch.setattr(RefCache, "named", lambda self, payloads: set())
    events = stored(grid_events())
    feedback = [e for e in events if isinstance(e.payload, CaseFeedback)]
    before = [e for e in events if e not in feedback]
    cache = RefCache(limit=2)
    for e in before:  # one event a fold: the cache drops refs again and again
        async with pool.acquire() as conn, conn.transaction():
            await record_and_fold(conn, [e], cache)
    late = feedback[0]
    assert ("case", late.payload.case_id) in cache.evicted
    runs = []
    real = event_log.advance
    monkeypatch.setattr(event_log, "advance", lambda *a: runs.append(1) or real(*a))
    async with pool.acquire() as conn, conn.transaction():
        await record_and_fold(conn, [late], cache)
    assert len(runs) == (1 if named else 2)
    table, _ = fold(replay_order(before + [late]))
    async with pool.acquire() as conn:
        assert await store.period_facts(conn, PERIOD) == {k: v for k, v in table.items() if k[2] == PERIOD}


async def test_closing_twice_publishes_nothing_new_and_a_late_event_republishes_only_what_changed(pool):
    await record(pool, stored(grid_events() + order_events()))
    handler = AssessmentHandler(default_scheme())
    pub, emitted = await close(pool, handler)
    cards = [e for e in emitted if e.type == "assessment.scorecard.published.v1"]
    alerts = [e for e in emitted if e.type == "assessment.alert.raised.v1"]
    assert len(cards) == len(pub.scorecards) == 8 and len(alerts) == len(pub.alerts) == 11

    again, emitted_again = await close(pool, handler, now=NOW + timedelta(hours=1))
    assert again == pub and emitted_again == []

    # a late event: feedback on A4 (the open case in grid A) arrives after the first close
    late = CaseFeedback(case_id="A4", satisfaction="satisfied", grid_id=GRID_A, occurred_at=t(30))
    await record(pool, [StoredEvent("/services/grid", "late-1", "t", late, t(30))])
    corrected, emitted3 = await close(pool, handler, now=NOW + timedelta(hours=2))
    changed = {(e.data["entity_type"], e.data["entity_id"]) for e in emitted3
               if e.type == "assessment.scorecard.published.v1"}
    assert changed == {("grid", GRID_A), ("community", "110105001002"),  # a grid worker is not scored on feedback
                       ("street", "110105001")}
    old_ids = {e.data["entity_id"]: (e.data["scorecard_id"], e.id) for e in cards}
    for e in emitted3:
        if e.type == "assessment.scorecard.published.v1" and e.data["entity_id"] == GRID_A:
            assert e.data["scorecard_id"] == old_ids[GRID_A][0]  # same scorecard, corrected
            assert e.id != old_ids[GRID_A][1]  # a new envelope: consumers do not drop the correction
            assert e.data["indicators"]["satisfaction_rate"] == round((2 + 0.9) / 3, 4)
    async with pool.acquire() as conn:
        row = await store.scorecard(conn, "grid", GRID_A, PERIOD, handler.default.scheme_id)
        assert row["revision"] == 2
        assert row["card"]["indicators"]["satisfaction_rate"] == 0.9667
        unchanged = await store.scorecard(conn, "grid", "110105001002004", PERIOD, handler.default.scheme_id)
        assert unchanged["revision"] == 1


async def test_an_alert_that_no_longer_holds_is_withdrawn_from_the_view(pool):
    await record(pool, stored(grid_events()))
    handler = AssessmentHandler(default_scheme())
    await close(pool, handler)
    async with pool.acquire() as conn:
        page = await store.alerts(conn, period=PERIOD, entity_type="grid", indicator="satisfaction_rate",
                                  limit=10, offset=0)
        [alert] = as_json(page.items)  # its kept answer: its columns, in the list's order
        columns = dict(await conn.fetchrow(f"SELECT {', '.join(store.ALERT_FIELDS)} FROM alerts WHERE alert_id = $1",
                                           alert["alert_id"]))
    assert page.total == 1  # grid B: 0 satisfied of 1
    assert list(alert) == list(store.ALERT_FIELDS) and typed(alert) == typed(as_json(columns))
    more = [CaseFeedback(case_id=f"X{i}", satisfaction="satisfied", grid_id="110105001002004", occurred_at=t(28))
            for i in range(9)]
    await record(pool, [StoredEvent("/services/grid", f"fb-{i}", "t", f, t(28)) for i, f in enumerate(more)])
    await close(pool, handler, now=NOW + timedelta(hours=1))
    async with pool.acquire() as conn:
        total = (await store.alerts(conn, period=PERIOD, entity_type="grid", indicator="satisfaction_rate",
                                    limit=10, offset=0)).total
    assert total == 0  # 9 of 10 satisfied: 0.9 ≥ 0.8


async def test_a_replayed_close_withdraws_the_alerts_its_live_close_withdrew_whatever_the_counters_say(pool):
    """A rebuild replays a close with what it published live (``live``): the alerts it keeps and
    withdraws are those of the live close's cards (the published ones, the others as stored),
    not those of the counters the replay finds, which batches on other lanes were changing while
    the live close read them."""
    handler = AssessmentHandler(default_scheme())
    await record(pool, stored(grid_events()))
    await close(pool, handler)

    async def grid_alerts(conn) -> int:
        return (await store.alerts(conn, period=PERIOD, entity_type="grid", indicator="satisfaction_rate",
                                   limit=10, offset=0)).total

    def feedback(tag: str, satisfaction: str, n: int) -> list[StoredEvent]:
        return [StoredEvent("/services/grid", f"{tag}-{i}", "t", CaseFeedback(
            case_id=f"{tag}{i}", satisfaction=satisfaction, grid_id="110105001002004", occurred_at=t(28)), t(28))
            for i in range(n)]

    async def replayed(live) -> tuple[int, int]:
        """The replayed close (rolled back): grid B's satisfaction alerts, and the scorecards its
        close record counts."""
        async with pool.acquire() as conn:
            tr = conn.transaction()
            await tr.start()
            try:
                uow = UnitOfWork(conn, "assessment", NOW + timedelta(hours=2))
                await handler.close(uow, PERIOD, handler.default, trigger="timer", live=live)
                return await grid_alerts(conn), (await store.last_close(conn, PERIOD))["scorecards"]
            finally:
                await tr.rollback()

    # the live re-close saw nine satisfied feedbacks more: it published grid B's card again (and
    # those of the areas above it) and withdrew its alert
    await record(pool, feedback("ok", "satisfied", 9))
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        uow = UnitOfWork(conn, "assessment", NOW + timedelta(hours=1))
        pub = await handler.close(uow, PERIOD, handler.default, trigger="timer")
        withdrawn = await grid_alerts(conn)
        await tr.rollback()
    published = [decode_payload(e) for e in uow.emitted]
    cards = [p for p in published if p.TYPE == "assessment.scorecard.published.v1"]
    [closed] = [p for p in published if p.TYPE == "assessment.period.closed.v1"]
    assert withdrawn == 0 and "110105001002004" in {c.entity_id for c in cards}  # with its community's, street's
    assert (closed.scorecards, closed.published) == (len(pub.scorecards), len(cards))
    # the replay finds thirty unsatisfied ones more, which it handles before the close (their
    # batch committed after the live close had read the counters): the counters hold the alert
    await record(pool, feedback("bad", "unsatisfied", 30))
    assert await replayed(None) == (1, len(pub.scorecards))  # from its counters: kept
    assert await replayed(LiveClose(cards, [], closed)) == (0, len(pub.scorecards))  # as the live close: withdrawn
    assert await replayed(LiveClose([], [], None)) == (1, len(pub.scorecards))  # a live close that changed nothing


async def test_the_alerts_total_of_a_district_reader_is_the_kept_count_and_follows_every_close(pool):
    """``alert_counts`` is kept by the kit's triggers on ``alerts``: after a close and a re-close
    that withdraws an alert it equals counting the alerts, and a list read by a reader of the
    whole district takes its total from it (made wrong on purpose, it shows through), while an
    officer's list counts the alerts of their scope."""
    async def counted(conn) -> tuple[dict, dict]:
        kept = {tuple(r.values())[:-1]: r["n"] for r in await conn.fetch("SELECT * FROM alert_counts")}
        real = {tuple(r.values())[:-1]: r["n"] for r in await conn.fetch(
            "SELECT period, scheme_id, entity_type, indicator, count(*) AS n FROM alerts GROUP BY 1, 2, 3, 4")}
        return kept, real

    await record(pool, stored(grid_events()))
    handler = AssessmentHandler(default_scheme())
    await close(pool, handler)
    district = Scope(streets={GRID_A[:9]})
    filters = ({"period": PERIOD}, {"period": PERIOD, "entity_type": "grid"}, {"period": None},
               {"period": PERIOD, "entity_type": "grid", "indicator": "satisfaction_rate"})
    async with pool.acquire() as conn:
        kept, real = await counted(conn)
        assert kept == real and sum(kept.values()) > 0
        for f in filters:
            mine = await store.alerts(conn, **{"entity_type": None, "indicator": None, **f}, limit=1, offset=0)
            theirs = await store.alerts(conn, **{"entity_type": None, "indicator": None, **f}, limit=1, offset=0,
                                        scope=district)
            assert mine.total_exact and mine.total == theirs.total > 0, f
        await conn.execute("UPDATE alert_counts SET n = n + 40 WHERE entity_type = 'grid'")
        shown = await store.alerts(conn, period=PERIOD, entity_type="grid", indicator=None, limit=1, offset=0)
        counted_anyway = await store.alerts(conn, period=PERIOD, entity_type="grid", indicator=None, limit=1,
                                            offset=0, scope=district)
        assert shown.total == counted_anyway.total + 40 * len([k for k in kept if k[2] == "grid"])
        await conn.execute("UPDATE alert_counts SET n = n - 40 WHERE entity_type = 'grid'")
    more = [CaseFeedback(case_id=f"X{i}", satisfaction="satisfied", grid_id="110105001002004", occurred_at=t(28))
            for i in range(9)]
    await record(pool, [StoredEvent("/services/grid", f"fb-{i}", "t", f, t(28)) for i, f in enumerate(more)])
    await close(pool, handler, now=NOW + timedelta(hours=1))  # grid B's satisfaction alert is withdrawn
    async with pool.acquire() as conn:
        kept, real = await counted(conn)
        assert kept == real
        for f in filters:
            mine = await store.alerts(conn, **{"entity_type": None, "indicator": None, **f}, limit=1, offset=0)
            theirs = await store.alerts(conn, **{"entity_type": None, "indicator": None, **f}, limit=1, offset=0,
                                        scope=district)
            assert mine.total == theirs.total, f


def closes(uow: UnitOfWork) -> list[tuple]:
    """The ``PeriodClosed`` events a unit of work emitted: (period, scorecards, published, alerts,
    trigger), and that each is keyed by its period."""
    out = []
    for env in uow.emitted:
        if env.type == "assessment.period.closed.v1":
            c = decode_payload(env)
            assert env.subject == c.period
            out.append((c.period, c.scorecards, c.published, c.alerts, c.trigger.value))
    return out


async def mark(pool) -> datetime | None:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT at FROM timer_marks WHERE name = $1", CLOSE_MARK)


async def test_the_timer_closes_each_ended_period_once_from_its_mark(pool):
    await record(pool, stored(grid_events()))
    since = datetime(2026, 10, 15, tzinfo=timezone.utc)
    handler = AssessmentHandler(default_scheme(), timer_since=since, close_delay=timedelta(minutes=10))
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "assessment", NOW)
        ended = await handler.close_due_periods(uow)
    assert ended == ["2026-10"]
    async with pool.acquire() as conn:
        last = await store.last_close(conn, "2026-10")
        assert last["trigger"] == "timer" and last["scorecards"] == 6
    assert closes(uow) == [("2026-10", 6, 6, last["alerts"], "timer")]
    assert await mark(pool) == NOW - timedelta(minutes=10)  # where the round looked, less the delay
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "assessment", NOW + timedelta(minutes=5))
        assert await handler.close_due_periods(uow) == [] and uow.emitted == []
    assert await mark(pool) == NOW - timedelta(minutes=10)  # a round that closes nothing leaves the mark
    async with pool.acquire() as conn, conn.transaction():
        # at the end of the year: December, Q4 and 2026 end together (November too)
        uow = UnitOfWork(conn, "assessment", datetime(2026, 12, 31, 16, 10, 1, tzinfo=timezone.utc))
        assert await handler.close_due_periods(uow) == ["2026-11", "2026-12", "2026-Q4", "2026"]
    # periods with nothing to score are closed and published too: their close is on the topic
    assert closes(uow) == [("2026-11", 0, 0, 0, "timer"), ("2026-12", 0, 0, 0, "timer"),
                           ("2026-Q4", 6, 6, last["alerts"], "timer"), ("2026", 6, 6, last["alerts"], "timer")]
    async with pool.acquire() as conn:
        assert (await store.last_close(conn, "2026-12"))["scorecards"] == 0


async def test_a_fresh_timer_keeps_where_it_started_until_a_round_closes_a_period(pool):
    """Without a start (``timer_since``), the first round's time is the mark, kept while rounds
    find nothing ended: a worker stopped before the month's end and started after it closes the
    month."""
    handler = AssessmentHandler(default_scheme())
    async with pool.acquire() as conn, conn.transaction():
        assert await handler.close_due_periods(UnitOfWork(conn, "assessment", NOW)) == []
    assert await mark(pool) == NOW
    async with pool.acquire() as conn, conn.transaction():
        later = datetime(2026, 12, 3, tzinfo=timezone.utc)  # the workers were stopped from 22 November
        assert await handler.close_due_periods(UnitOfWork(conn, "assessment", later)) == ["2026-11"]
    assert await mark(pool) == later


async def test_a_close_that_changes_nothing_leaves_the_record_of_the_close_that_did(pool):
    """A command closes the month, and the timer's round, waiting on the same period, closes it
    again with every card as published: no event, and the record still says the command's
    close (a rebuild, which replays only what has events, comes to the same record)."""
    await record(pool, stored(grid_events()))
    handler = AssessmentHandler(default_scheme(), timer_since=datetime(2026, 10, 15, tzinfo=timezone.utc))
    async with pool.acquire() as conn, conn.transaction():
        await handler.close(UnitOfWork(conn, "assessment", NOW), "2026-10", default_scheme(), trigger="command")
    async with pool.acquire() as conn:
        first = dict(await store.last_close(conn, "2026-10"))
    assert first["trigger"] == "command" and first["published"] == first["scorecards"] == 6
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "assessment", NOW + timedelta(seconds=1))
        assert await handler.close_due_periods(uow) == ["2026-10"] and uow.emitted == []
    async with pool.acquire() as conn:
        assert dict(await store.last_close(conn, "2026-10")) == first
    # the command's close was published with its record
    _, emitted = await close(pool, handler, period="2026-11", now=datetime(2026, 12, 2, tzinfo=timezone.utc))
    assert [e.type for e in emitted] == ["assessment.period.closed.v1"]  # a month with nothing to score


async def test_a_fresh_timer_without_a_start_mark_closes_nothing_old(pool):
    await record(pool, stored(grid_events()))
    handler = AssessmentHandler(default_scheme())
    async with pool.acquire() as conn, conn.transaction():
        assert await handler.close_due_periods(UnitOfWork(conn, "assessment", NOW)) == []
    async with pool.acquire() as conn:
        assert await store.last_close(conn, "2026-10") is None


# ---------------------------------------------------------------------------------------
# Personal data: the log keeps facts (ids, times, outcomes), not people's words or places
# ---------------------------------------------------------------------------------------

SECRETS = {"description": "PII-DESC-7f3a", "address": "PII-ADDR-7f3a", "media": "PII-MEDIA-7f3a",
           "comment": "PII-COMMENT-7f3a", "notes": "PII-NOTES-7f3a", "name": "PII-NAME-7f3a",
           "reason": "PII-REASON-7f3a", "note": "PII-NOTE-7f3a", "unknown": "PII-PHONE-7f3a"}


def personal_events() -> list[StoredEvent]:
    from schemas.grid import CaseDismissed, CaseRegistered, CaseReported, Location, PatrolLogged, Reporter
    from schemas.orders import MemberRegistered, OrderCompleted, OrderEvaluated, OrderPlaced

    where = Location(lat=39.9, lon=116.4, address=SECRETS["address"])
    who = Reporter(kind="resident", id="resident-pii-1")
    s = SECRETS
    payloads = [
        CaseReported(case_id="P1", grid_id=GRID_A, category="environment", description=s["description"],
                     location=where, reporter=who, media=(f"https://media.example/{s['media']}.jpg",), occurred_at=t(2)),
        CaseRegistered(case_id="P1", due_at=t(3), department="城管", grid_id=GRID_A, category="environment",
                       description=s["description"], location=where, reporter=who, occurred_at=t(2, 10)),
        CaseDismissed(case_id="P2", reason=s["reason"], duplicate_of=None, grid_id=GRID_A, occurred_at=t(2)),
        CaseFeedback(case_id="P1", satisfaction="satisfied", comment=s["comment"], grid_id=GRID_A, occurred_at=t(5)),
        PatrolLogged(patrol_id="pp-1", grid_id=GRID_A, grid_worker_id="gw-1", started_at=t(4), ended_at=t(4, 11),
                     notes=s["notes"], route=(where,), occurred_at=t(4, 11)),
        MemberRegistered(member_id="m-pii", community_id="110105001002", unit_id="u-1", name=s["name"], at=t(1)),
        OrderPlaced(order_id="op-1", resident_id="resident-pii-1", community_id="110105001002", grid_id=GRID_A,
                    category="daily_care", description=s["description"], source_case_id=None, at=t(6)),
        OrderCompleted(order_id="op-1", assignee_id="m-pii", service_minutes=30, note=s["note"], at=t(7)),
        OrderEvaluated(order_id="op-1", assignee_id="m-pii", rating=5, passed=True, evaluator_id="co-1",
                       comment=s["comment"], at=t(8)),
    ]
    out = []
    for n, p in enumerate(payloads):
        raw = {**p.model_dump(mode="json"), "phone": s["unknown"]}  # as received, with a field no revision has
        out.append(StoredEvent(f"/services/{p.service()}", f"pii-{n}", "t", p, t(9), raw=raw))
    return out


async def test_the_event_log_keeps_no_free_text_location_media_or_name_of_upstream_events(pool):
    from tests.support.db import tables_containing

    events = personal_events()
    assert await record(pool, events) == len(events)
    async with pool.acquire() as conn:
        for what, needle in SECRETS.items():
            assert await tables_containing(conn, "assessment", needle) == [], what
        assert await tables_containing(conn, "assessment", "39.9") == []  # no coordinates either
        # the facts are kept: ids, and each row reads back as its payload class
        assert await tables_containing(conn, "assessment", "resident-pii-1") == ["event_log"]
        history = await store.load_history(conn)
    assert sorted(e.id for e in history) == sorted(e.id for e in events)
    assert fold(history) == fold(replay_order(events))  # the same counters as the full events
