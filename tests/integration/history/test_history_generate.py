"""The history generator at a tiny scale: what it builds passes each service's own checks, its
events topics hold what its tables say and rebuild the services that consume them, and the
history bench measures it (a smoke run: few requests, the history only)."""
from __future__ import annotations

import importlib
from collections import Counter
from datetime import datetime
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.assessment.app.scoring import compute_period
from services.assessment.app.settings import AssessmentSettings
from services.assessment.domain import Scheme
from services.assessment.domain.history import fold
from services.assessment.domain.periods import Period
from services.assessment.domain.publication import publication_for, scheme_in_force
from services.assessment.projection import store
from schemas.envelope import decode
from schemas.party import OrgKind
from schemas.registry import model_for
from services.assessment.domain.facts.core import occurred_at
from services.assessment.domain.history import CONSUMED
from services.grid.domain import CaseState
from services.kit.db import create_pool
from services.kit.infra import EmbeddedKafka
from services.kit.provision import provision
from services.kit.settings import ServiceSettings
from services.party.domain.org import ORG_EVENTS
from services.orders.domain import OrderState, evolve, order_id_for_case
from services.orders.projection.store import OPEN_ORDERS_OF
from services.points.domain import EarningRules
from services.points.domain.rules import SourceKind
from services.points.projection.queries import ledger_check, ledger_check_full
from tests.history.bench import _endpoints, measure, rebuild, sample_of
from tests.history.generate import ROOT, SH, Plan, _database_size, generate
from tests.integration.party.support import TIMER_OF
from tests.support.kafka import read_topic
from tests.support.procs import postmaster_of
from tests.support.rebuild import differences, report, snapshot

# 200 cases over three years: points earned in the first year expire (by the expiry timer) in the third
PLAN = Plan(years=3, scale=0.00004, end=datetime(2026, 11, 20, 9, tzinfo=SH))
SKEW = ServiceSettings.model_fields["event_time_max_skew_seconds"].default
TOPICS = ("grid.events.v1", "orders.events.v1", "points.events.v1", "assessment.events.v1", "party.events.v1",
          "grid.intake.v1", "orders.intake.v1", "points.intake.v1", "party.intake.v1")


@pytest.fixture(scope="module")
async def topics_broker():
    """A broker of the history's own (the bench's workers use ``module_kafka``: they must not
    consume the history)."""
    broker = EmbeddedKafka().start()
    try:
        await provision(broker.bootstrap, partitions=4)
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    """Where the history's topics go (and, beside them, the identity provider of its commands)."""
    return tmp_path_factory.mktemp("history") / "topics.tsv.gz"


@pytest.fixture(scope="module")
async def history(module_database_url, topics_broker, dump):
    out = await generate(module_database_url, PLAN, topics=dump, bootstrap=topics_broker)
    return module_database_url, out


@pytest.fixture(scope="module")
async def records(history, topics_broker):
    """Each events topic's records, decoded."""
    return {t: [(r, decode(r.value)) for r in await read_topic(topics_broker, t)] for t in TOPICS}


async def test_the_disk_check_counts_what_the_replaced_history_frees(history):
    """The database a run replaces is measured on its server (what it frees counts as free space),
    and the spills are reported."""
    url, out = history
    name = url.rsplit("/", 1)[1]
    size = await _database_size(url, name)
    assert isinstance(size, int) and size > 10**6
    assert await _database_size(url, "no_such_history") == 0
    assert out["spill_mb"] > 0


async def test_counts_follow_the_plan(history):
    _, out = history
    assert out["cases"] == PLAN.cases
    assert out["postings"] > 0 and out["accounts"] > 0 and out["scorecards"] > 0
    assert out["closed_periods"] == 36 + 12 + 3  # the months, quarters and years that ended
    assert out["orders"] > 0 and out["members"] > 0
    assert out["orgs"] > 0 and out["org_life"] > 0 and out["councils"] > 0 and out["projects"] > 0
    assert sum(out["topics"]["records"].values()) > out["case_history"]


async def test_points_ledger_checks_pass(history):
    url, _ = history
    pool = await create_pool(url, "points", service="points", max_size=1)
    try:
        async with pool.acquire() as conn:
            inc = await ledger_check(conn)
            full = await ledger_check_full(conn)
            kinds = {r["kind"] for r in await conn.fetch("SELECT DISTINCT kind FROM postings")}
            deeds = {r[0] for r in await conn.fetch("SELECT DISTINCT status FROM deeds")}
            derived = await conn.fetchval(
                """SELECT count(*) FROM accounts a WHERE a.balance <> (a.state->>'balance')::bigint""")
    finally:
        await pool.close()
    assert inc["consistent"], inc
    assert full["consistent"], full
    assert inc["postings"] == full["postings"] and inc["sum"] == 0
    assert {"award", "redemption", "expiry"} <= kinds
    assert derived == 0
    assert "credited" in deeds, deeds


async def test_grid_rows_are_the_case_states(history):
    url, _ = history
    pool = await create_pool(url, "grid", service="grid", max_size=1)
    try:
        async with pool.acquire() as conn:
            states = {r["case_id"]: CaseState.model_validate(r["state"])
                      for r in await conn.fetch("SELECT case_id, state FROM case_state")}
            rows = {r["case_id"]: r for r in await conn.fetch("SELECT case_id, status, version FROM cases")}
            last = dict(await conn.fetch("SELECT case_id, max(seq) FROM case_history GROUP BY case_id"))
            gaps = await conn.fetchval(
                "SELECT count(*) FROM (SELECT case_id, count(*) n, max(seq) m FROM case_history GROUP BY case_id) x "
                "WHERE n <> m")
    finally:
        await pool.close()
    assert states.keys() == rows.keys()
    for case_id, s in states.items():
        assert rows[case_id]["status"] == s.status.value
        assert rows[case_id]["version"] == s.version == last[case_id]
    assert gaps == 0
    by_status = {s.status.value for s in states.values()}
    assert {"closed", "dismissed"} <= by_status


async def test_each_step_names_who_sent_it_as_the_workers_policy_would(history):
    """The actor fields the worker fills from the sender's token are in the history: an officer of
    the case's community registers, dismisses and dispatches; the assignee accepts, contacts,
    controls and handles; a grid worker of the case's grid verifies."""
    url, _ = history
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT h.type, h.data, c.community_id, c.grid_id, c.assignee_id FROM grid.case_history h "
            "JOIN grid.cases c USING (case_id)")
    finally:
        await conn.close()
    actors = {"grid.case.registered.v1": "registrar_id", "grid.case.dismissed.v1": "registrar_id",
              "grid.case.dispatched.v1": "dispatcher_id", "grid.case.accepted.v1": "accepted_by",
              "grid.case.contacted.v1": "contacted_by", "grid.case.controlled.v1": "controlled_by",
              "grid.case.handled.v1": "handled_by", "grid.case.verified.v1": "verifier_id"}
    seen = set()
    for r in rows:
        field = actors.get(r["type"])
        if field is None:
            continue
        seen.add(r["type"])
        who = orjson.loads(r["data"])[field]
        if field in ("registrar_id", "dispatcher_id"):
            assert who == f"co-{r['community_id']}", dict(r)
        elif field == "verifier_id":
            assert who.startswith(f"gw-{r['grid_id'][-6:]}-") and who != r["assignee_id"], dict(r)
        else:
            assert who == r["assignee_id"], dict(r)
    assert seen >= set(actors) - {"grid.case.controlled.v1"}


async def test_each_close_equals_a_replay_of_the_events_handled_before_it(history):
    """Each period was closed when it ended, on the counters folded incrementally by then: its
    stored cards are those of a full replay, in memory, of the log's events handled by that
    moment; and the counters of the whole history equal the replay of the whole log."""
    url, _ = history
    pool = await create_pool(url, "assessment", service="assessment", max_size=1)
    try:
        async with pool.acquire() as conn:
            default = Scheme.load(AssessmentSettings().scheme_file)
            schemes = await store.load_schemes(conn)
            log = await store.load_history(conn)
            closes = {r["period"]: r["closed_at"] for r in await conn.fetch("SELECT * FROM period_closes")}
            mark = await conn.fetchval("SELECT at FROM timer_marks")
            for period in ("2026-01", "2026-06", "2026-Q3", "2025"):
                assert closes[period] == Period.parse(period).end, period  # the timer, at the period's end
                table, lookup = fold([e for e in log if e.time <= closes[period]])
                pub = publication_for(period, table, lookup, scheme_in_force(schemes, period, default))
                stored = {r["scorecard_id"]: (r["score"], r["rank"], r["grade"]) for r in await conn.fetch(
                    "SELECT scorecard_id, score, rank, grade FROM scorecards WHERE period = $1", period)}
                again = {c.scorecard_id: (c.score, c.rank, c.grade.value if c.grade else None) for c in pub.scorecards}
                assert stored and stored == again, period
            replayed, _ = fold(log)
            for period in ("2026-01", "2026-Q3", "2025"):
                facts = await store.period_facts(conn, period)
                assert facts == pytest.approx({k: v for k, v in replayed.items() if k[2] == period}), period
    finally:
        await pool.close()
    assert mark == max(closes.values()) < PLAN.end  # where the last round looked


async def test_every_registered_resident_need_case_is_one_order(history):
    url, _ = history
    pool = await create_pool(url, "orders", service="orders", max_size=1)
    try:
        async with pool.acquire() as conn:
            needs = [r[0] for r in await conn.fetch(
                """SELECT c.case_id FROM grid.cases c WHERE c.category = 'resident_need' AND EXISTS (
                     SELECT 1 FROM grid.case_history h WHERE h.case_id = c.case_id
                        AND h.type = 'grid.case.registered.v1')""")]
            made = dict(await conn.fetch("SELECT source_case_id, order_id FROM orders WHERE source_case_id IS NOT NULL"))
            direct = await conn.fetchval("SELECT count(*) FROM orders WHERE source_case_id IS NULL")
    finally:
        await pool.close()
    assert needs and direct > 0
    assert sorted(made) == sorted(needs)
    assert all(made[c] == order_id_for_case(c) for c in needs)


async def test_order_rows_are_their_histories_replayed(history):
    """Each order's state is its history's events evolved in order, its query columns agree with
    the state, and each member's open orders (the dispatch load) are the orders they hold."""
    url, _ = history
    pool = await create_pool(url, "orders", service="orders", max_size=1)
    try:
        async with pool.acquire() as conn:
            rows = {r["order_id"]: r for r in await conn.fetch("SELECT * FROM orders")}
            events: dict[str, list] = {}
            for r in await conn.fetch("SELECT order_id, type, data FROM order_history ORDER BY seq"):
                data = r["data"] if isinstance(r["data"], dict) else orjson.loads(r["data"])
                events.setdefault(r["order_id"], []).append(model_for(r["type"]).model_validate(data))
            load = dict(await conn.fetch(f"SELECT p.member_id, l.open_orders FROM (SELECT member_id FROM members) p "
                                         f"{OPEN_ORDERS_OF} WHERE l.open_orders > 0"))
            facts = {r["order_id"]: (r["category"], r["community_id"], r["service_minutes"])
                     for r in await conn.fetch("SELECT * FROM points.order_facts")}
            members = {r[0] for r in await conn.fetch("SELECT member_id FROM members")}
    finally:
        await pool.close()
    assert rows.keys() == events.keys()
    held: Counter = Counter()
    for order_id, row in rows.items():
        state = None
        for e in events[order_id]:
            state = evolve(state, e)
        stored = OrderState.model_validate(row["state"])
        assert stored == state, order_id
        assert (row["status"], row["assignee_id"], row["attempt"], row["passed"], row["service_minutes"]) == (
            state.status.value, state.assignee_id, state.attempt, state.passed, state.service_minutes)
        assert 1 <= row["version"] <= len(events[order_id])
        assert facts[order_id] == (state.category.value, state.community_id, state.service_minutes)
        if state.holder is not None:
            held[state.holder] += 1
        assert state.assignee_id is None or state.assignee_id in members
    assert load == dict(held)
    statuses = {r["status"] for r in rows.values()}
    assert {"evaluated", "cancelled"} <= statuses, statuses


async def test_every_passed_order_is_awarded_once(history, records):
    """A passed 考单 earns its assignee one award posting (the rule's amount for its minutes),
    unless the cap refused it: then the points topic holds the refusal."""
    url, _ = history
    rules = EarningRules.from_yaml((ROOT / "services/points/rules/earning.yaml").read_text(encoding="utf-8"))
    pool = await create_pool(url, "points", service="points", max_size=1)
    try:
        async with pool.acquire() as conn:
            passed = {r["event_id"]: r["data"] for r in await conn.fetch(
                """SELECT event_id, data FROM orders.order_history
                    WHERE type = 'orders.order.evaluated.v1' AND (data->>'passed')::boolean""")}
            awards = await conn.fetch(
                "SELECT source_event_id, amount, account_id FROM postings WHERE source = '/services/orders'")
    finally:
        await pool.close()
    refused = {m.payload.source_event_id for _, m in records["points.events.v1"]
               if m.type == "points.transfer.refused.v1" and m.payload.source == "/services/orders"}
    counted = Counter(r["source_event_id"] for r in awards)
    assert passed and set(counted) | refused == set(passed) and not set(counted) & refused
    assert set(counted.values()) == {1}
    for r in awards:
        e = passed[r["source_event_id"]]
        rule = rules.rule_for(SourceKind.order, e["category"])
        assert r["amount"] == rule.amount_for(e["service_minutes"])
        assert r["account_id"] == f"resident:{e['assignee_id']}"


async def test_topics_hold_what_the_tables_say(history, records, topics_broker):
    """Every event a table names is on its topic under the same id, keyed and partitioned as the
    services key and partition them, each partition in time order; the assessment log is
    exactly the consumed events of the topics. A command is on its intake topic as its sender's
    app sent it (source ``/users/<sub>``, the sender's token), and every event a command caused
    names one of them."""
    url, _ = history
    parts = DefaultPartitioner()
    for topic, recs in records.items():
        by_partition: dict[int, list[int]] = {}
        intake = topic.endswith(".intake.v1")
        for r, m in recs:
            assert r.key.decode() == m.envelope.subject == m.payload.aggregate_id
            assert r.partition == parts(r.key, list(range(4)), list(range(4)))
            assert r.timestamp == int(m.envelope.time.timestamp() * 1000)
            by_partition.setdefault(r.partition, []).append(r.timestamp)
            if intake:
                assert m.envelope.source.startswith("/users/") and dict(r.headers)["authorization"].startswith(
                    b"Bearer ey")
                continue
            assert m.envelope.source == "/services/" + topic.split(".")[0]
            # what a consumer dates it by is near enough the record's time (else: implausible_time)
            off = (m.envelope.time - occurred_at(m.payload, m.envelope.time)).total_seconds()
            assert 0 <= off <= SKEW, (m.type, m.envelope)
        assert all(ts == sorted(ts) for ts in by_partition.values()), topic
    ids = {t: Counter(m.id for _, m in recs) for t, recs in records.items()}
    assert all(set(c.values()) == {1} for c in ids.values())
    for svc in ("grid", "orders", "points", "party"):
        causes = {m.envelope.causationid for _, m in records[f"{svc}.events.v1"]}
        commands = set(ids[f"{svc}.intake.v1"])
        assert commands and causes & commands and causes - {None} <= commands | {
            m.id for t in TOPICS if t.endswith(".events.v1") for _, m in records[t]}

    def of(topic: str, prefix: str) -> set[str]:
        return {m.id for _, m in records[topic] if m.type.startswith(prefix)}

    conn = await asyncpg.connect(url)
    try:
        assert of("grid.events.v1", "grid.") == {r[0] for r in await conn.fetch(
            "SELECT event_id FROM grid.case_history")}
        assert of("orders.events.v1", "orders.order.") == {r[0] for r in await conn.fetch(
            "SELECT event_id FROM orders.order_history")}
        on_topic = Counter(m.type for _, m in records["orders.events.v1"])
        assert on_topic["orders.member.registered.v1"] == await conn.fetchval("SELECT count(*) FROM orders.members")
        assert on_topic["orders.post.claimed.v1"] == await conn.fetchval("SELECT count(*) FROM orders.posts")
        assert on_topic["orders.post.released.v1"] == await conn.fetchval(
            "SELECT count(*) FROM orders.posts WHERE status = 'released'")
        posted = [m.payload for _, m in records["points.events.v1"] if m.type == "points.transfer.posted.v1"]
        assert sorted(p.transfer_id for p in posted) == sorted(r[0] for r in await conn.fetch(
            "SELECT transfer_id FROM points.postings"))
        opened = [m.payload for _, m in records["points.events.v1"] if m.type == "points.account.opened.v1"]
        assert sorted(p.account_id for p in opened) == sorted(r[0] for r in await conn.fetch(
            "SELECT account_id FROM points.accounts"))
        assert of("assessment.events.v1", "assessment.scorecard.") == {r[0] for r in await conn.fetch(
            "SELECT envelope_id FROM assessment.scorecards")}
        assert of("assessment.events.v1", "assessment.alert.") == {r[0] for r in await conn.fetch(
            "SELECT envelope_id FROM assessment.alerts")}
        closed = [m for _, m in records["assessment.events.v1"] if m.type == "assessment.period.closed.v1"]
        assert sorted((m.envelope.time, m.payload.period, m.payload.scorecards, m.payload.alerts) for m in closed) == \
            sorted(tuple(r) for r in await conn.fetch(
                "SELECT closed_at, period, scorecards, alerts FROM assessment.period_closes"))
        party = {m.id: m for _, m in records["party.events.v1"]}
        org_events = {i for i, m in party.items() if type(m.payload) in ORG_EVENTS}
        assert org_events and org_events <= {r[0] for r in await conn.fetch(
            "SELECT event_id FROM party.org_history")} <= set(party)
        assert of("party.events.v1", "party.org_life.") == {r[0] for r in await conn.fetch(
            "SELECT event_id FROM party.org_life_log")}
        logged = {(r[0], r[1]) for r in await conn.fetch("SELECT source, id FROM assessment.event_log")}
    finally:
        await conn.close()
    consumed = {(m.source, m.id) for t, recs in records.items() if t.endswith(".events.v1") for _, m in recs
                if type(m.payload) in CONSUMED}
    assert logged == consumed


async def test_assessment_rebuilds_from_the_topics(history, topics_broker, records):
    """Assessment, which consumes every other service's events, rebuilt from them alone (into a
    database of its own), its close timer's rounds run again: the log, counters and refs, the
    cards, alerts and closes as generated. (Points, which consumes the
    grid's and the orders' events besides its commands, is rebuilt with the services rebuilt
    from their commands, below.)"""
    url, _ = history
    a = await rebuild("assessment", url, topics_broker)
    assert a["records"] == _consumed("assessment", records) > 0 and a["records_per_second"] > 0, a
    assert a["not_reacted_to"] == _not_reacted_to("assessment", records) > 0, a
    # nothing refused or dead-lettered; what the close timer published, published again by its rounds
    assert a["not_published_again"] == {"assessment.events.v1": len(records["assessment.events.v1"])}, a
    assert a["timer_rounds"] == len({m.envelope.time for _, m in records["assessment.events.v1"]})

    async def rows(dsn: str, sql: str) -> list[tuple]:
        conn = await asyncpg.connect(dsn)
        try:
            return sorted(tuple(r) for r in await conn.fetch(sql))
        finally:
            await conn.close()

    for sql in ("SELECT source, id, type, time, occurred_at FROM assessment.event_log",
                "SELECT period, entity_type, entity_id, fact, value, n FROM assessment.facts",
                "SELECT kind, ref_id, data::text FROM assessment.refs"):
        generated, rebuilt = await rows(url, sql), await rows(a["database"], sql)
        assert generated and rebuilt == generated, sql
    # the close timer's rounds run again: the cards, alerts and closes as generated, and the rest
    skip = ["inbox"]  # no inbox in the history
    generated, rebuilt = await snapshot(url, "assessment", skip_tables=skip), await snapshot(
        a["database"], "assessment", skip_tables=skip)
    assert generated.rows["scorecards"] and differences(generated, rebuilt) == [], report(
        differences(generated, rebuilt))


# Every service's timers declare their events: the rebuild runs each of their rounds again, and
# nothing is left out for them.
NOT_COMPARED = {s: ["inbox"] for s in ("grid", "orders", "points", "party")}  # the history writes no inbox


def _round_of(service: str, m) -> tuple:
    """The live timer round an uncaused event of ``service`` came from: its time and its timer
    (the party's timers run in the same minute of the day, the others' at times of their own)."""
    if service != "party":
        return (m.envelope.time,)
    return m.envelope.time, TIMER_OF[m.type]


def _consumed(service: str, records) -> int:
    """How many records the topics ``service``'s consumers read hold."""
    specs = importlib.import_module(f"services.{service}.app.main").rt._consumer_specs  # noqa: SLF001
    return sum(len(records.get(name, ())) for name in {t.name for _, topics, _, _ in specs for t in topics})


def _not_reacted_to(service: str, records) -> int:
    """Of those, the records of other services' events whose types no handler of ``service``
    reacts to: what a rebuild skips."""
    specs = importlib.import_module(f"services.{service}.app.main").rt._consumer_specs  # noqa: SLF001
    others = {t.name for _, topics, _, _ in specs for t in topics if t.kind == "events" and t.service != service}
    n = 0
    for name in others:
        types = set().union(*(h.types for _, topics, h, _ in specs if any(t.name == name for t in topics)))
        n += sum(m.type not in types for _, m in records.get(name, ()))
    return n


@pytest.mark.parametrize("service", ["grid", "orders", "points", "party"])
async def test_the_services_rebuild_from_their_commands_as_generated(history, topics_broker, records, dump,
                                                                    service):
    """The commands the history keeps on the intake topics, each with its sender's token, rebuild
    the grid, the orders (with the grid's registered cases), the points (with the grid's and the
    orders' events) and the party (with the orders events) into what the generator wrote, row for
    row (every timer's rounds run again, at their times); none is refused."""
    url, _ = history
    r = await rebuild(service, url, topics_broker, dump)
    intake = [m for _, m in records[f"{service}.intake.v1"]]
    assert intake and r["records"] == _consumed(service, records), r  # every record read, none twice
    assert r["not_reacted_to"] == _not_reacted_to(service, records) > 0, r  # of them, those it does not react to
    assert r["rejected"] == {}, r
    events = [m for _, m in records[f"{service}.events.v1"]]
    caused = sum(m.envelope.causationid is not None for m in events)
    again = r["not_published_again"]
    assert set(again) == {f"{service}.events.v1"}  # nothing refused or dead-lettered
    # and what its timers published: their rounds run again, at their times
    assert again[f"{service}.events.v1"] == len(events) > caused, r  # r: what the rebuild read and handled
    assert r["timer_rounds"] == len({_round_of(service, m) for m in events if m.envelope.causationid is None})
    generated = await snapshot(url, service, skip_tables=NOT_COMPARED[service])
    rebuilt = await snapshot(r["database"], service, skip_tables=NOT_COMPARED[service])
    compared = sum(sum(c.values()) for c in generated.rows.values())
    # (the orders' tables are the smallest: some 150 orders at this scale)
    assert compared > (250 if service == "orders" else 500)
    if service == "grid":  # every case compared, those the timer supervised too
        assert sum(generated.rows["cases"].values()) == sum(rebuilt.rows["cases"].values()) == len(
            {m.envelope.subject for m in events})
    assert differences(generated, rebuilt) == [], report(differences(generated, rebuilt))


async def test_party_is_what_its_handler_made(history, records):
    """The party's tree covers the district (a grid branch in every grid by the end), every
    organisation either held or was reported missing every meeting its kinds require in each
    period closed by the timer's last round, the councils took effect and met, and what the
    topic holds covers the life of a Party organisation (transfers, 党员中心户, 单位报到 and
    agreements, projects to their rating, commitments, members' follow-up)."""
    from services.party.app.life import load_life_policy
    from services.party.app.settings import PartySettings
    from services.party.domain.life import closed_periods

    url, _ = history
    policy = load_life_policy(PartySettings().org_life_path)
    conn = await asyncpg.connect(url)
    try:
        orgs = await conn.fetch("SELECT org_id, kind, grid_id, established_at FROM party.orgs")
        logged = {(r[0], r[1], r[2]) for r in await conn.fetch("SELECT org_id, kind, period FROM party.org_life_log")}
        grids = {r[0] for r in await conn.fetch("SELECT DISTINCT grid_id FROM grid.cases")}
        councils = await conn.fetch("SELECT council_id, state FROM party.councils")
    finally:
        await conn.close()
    assert {o["grid_id"] for o in orgs if o["kind"] == "grid_branch"} >= grids
    last_round = PLAN.end.astimezone(SH).replace(day=1, hour=0, minute=30, second=0, microsecond=0)
    due = {(o["org_id"], k.value, p) for o in orgs for k in policy.kinds_for(OrgKind(o["kind"]))
           for p in closed_periods(o["established_at"], last_round, policy.frequencies[k].every)}
    assert due and due <= logged
    assert len(councils) == len({o["org_id"] for o in orgs if o["kind"] == "community_committee"}) + len(
        {o["org_id"] for o in orgs if o["kind"] == "street_working_committee"})
    types = Counter(m.type for _, m in records["party.events.v1"])
    for t in ("party.council.effective.v1", "party.meeting.held.v1", "party.resolution.completed.v1",
              "party.resolution.overdue.v1", "party.member.detached.v1", "party.household.marked.v1",
              "party.unit.reported.v1", "party.agreement.signed.v1", "party.project.rated.v1",
              "party.commitment.rated.v1", "party.org_life.held.v1", "party.org_life.overdue.v1",
              "party.member.feedback.v1"):
        assert types[t] > 0, (t, types)
    assert not any(t.endswith(".command.rejected.v1") for t in types)


async def test_the_bench_measures_every_figure(history, module_kafka, tmp_path, pg_server):
    url, _ = history
    sample = await sample_of(url)
    db = None if isinstance(pg_server, str) else postmaster_of(pg_server.datadir)
    out = await measure(url, module_kafka, sample, tmp_path, requests=32, seconds=1, db=db)
    reads = {k: v for k, v in out.items() if "p99_ms" in v}
    assert set(reads) == set(_endpoints(sample, 1)) and {k.split(".")[0] for k in reads} == {
        "grid", "points", "assessment", "orders", "party"}
    for name, v in reads.items():
        assert 0 < v["p50_ms"] <= v["p99_ms"] and set(v["status"]) <= {200}, (name, v)
        assert v["worker_cpu_us"] > 0 and (db is None or v["db_cpu_us"] >= 0), (name, v)  # the worker answered them all
    assert out["provisional_scorecard"]["status"] == 200, out["provisional_scorecard"]
    for close in ("close_month", "close_quarter"):
        # closed by the timer when it ended: closed again, it stands, or publishes the corrections
        # of what came after its close
        assert (out[close]["status"], out[close]["answer"].split()[0]) in {(409, "no_change"), (200, "published")}, \
            out[close]
    assert out["ledger_check_full"]["status"] == 200, out
