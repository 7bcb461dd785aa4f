"""The campaign's comparison of a projection with its rebuild (``tests/chaos/rebuilt.py``) on a
real PostgreSQL: a copy of the database compares equal, a row altered in the copy is a
difference that names its table, key and column, a wall-clock column is not compared, and the
rows a timer's or an HTTP command's event is about are left out (the campaign itself runs in
tests/e2e/test_chaos_short.py)."""
from __future__ import annotations

import json
import uuid
from collections import namedtuple
from pathlib import Path

import asyncpg
import orjson
import pytest

from schemas.registry import SERVICES
from tests.chaos.rebuilt import (REPLAYED_TIMERS, empty_outboxes, about, copy_database,
                                 drop_database, http_commands, leave_out, not_from_input)
from tests.support.procs import ROOT
from tests.support.rebuild import differences, report, snapshot

pytestmark = pytest.mark.integration

Record = namedtuple("Record", "key value")


@pytest.fixture
async def live(database_url):
    """An ``orders`` schema with two orders, their history and an inbox row."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("""
            CREATE SCHEMA orders;
            CREATE TABLE orders.orders (order_id text PRIMARY KEY, status text, state jsonb, version bigint,
                                        updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE orders.order_history (seq bigserial PRIMARY KEY, order_id text, event_id text, data jsonb);
            CREATE TABLE orders.inbox (source text, id text, processed_at timestamptz DEFAULT now(),
                                       PRIMARY KEY (source, id));
            INSERT INTO orders.orders (order_id, status, state, version) VALUES
                ('o-1', 'accepted', '{"assignee_id": "m-1"}', 3), ('o-2', 'dispatched', '{"assignee_id": "m-2"}', 1);
            INSERT INTO orders.order_history (order_id, event_id, data) VALUES
                ('o-1', 'e-1', '{"order_id": "o-1"}'), ('o-2', 'e-2', '{"order_id": "o-2", "note": "x"}'),
                ('o-1', 'e-3', '{"order_id": "o-1"}');
            INSERT INTO orders.inbox (source, id) VALUES ('/tests', 'c-1');""")
    finally:
        await conn.close()
    return database_url


async def test_a_copy_compares_equal_and_a_row_altered_in_it_is_named(live):
    name = "t_copy_" + uuid.uuid4().hex[:8]
    copy = await copy_database(live, name)
    try:
        assert differences(await snapshot(live, "orders"), await snapshot(copy, "orders")) == []
        conn = await asyncpg.connect(copy)
        try:
            # written again at another time, and saved once more: neither is compared
            await conn.execute("UPDATE orders.orders SET updated_at = now() + interval '1 hour', version = 9")
            await conn.execute("UPDATE orders.inbox SET processed_at = now() + interval '1 hour'")
            assert differences(await snapshot(live, "orders"), await snapshot(copy, "orders")) == []
            await conn.execute("UPDATE orders.orders SET status = 'expired' WHERE order_id = 'o-2'")
        finally:
            await conn.close()
        diffs = differences(await snapshot(live, "orders"), await snapshot(copy, "orders"))
        assert [(d.table, len(d.only_live), len(d.only_rebuilt)) for d in diffs] == [("orders", 1, 1)]
        assert diffs[0].changed == [{"key": ("o-2",), "status": {"live": "dispatched", "rebuilt": "expired"}}]
        assert "expired" in report(diffs)
    finally:
        await drop_database(live, name)
    conn = await asyncpg.connect(live)
    try:
        assert not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name)
    finally:
        await conn.close()


async def test_the_rows_an_event_no_input_caused_is_about_and_the_http_commands_are_left_out(live):
    snap = await snapshot(live, "orders")
    # the order a timer expired: its row and its history's, by a column or a string in a JSON column
    dropped = leave_out(snap, {"o-2"}, ("orders", "order_history"))
    assert dropped == {"orders": 1, "order_history": 1}
    assert sorted(r[0] for r in snap.rows["orders"].elements()) == ["o-1"]
    assert sum(snap.rows["order_history"].values()) == 2
    assert leave_out(snap, {"o-1"}, ("inbox",)) == {}  # only the tables named
    assert leave_out(snap, set()) == {}
    # a command sent over HTTP is in the inbox and on no topic; an undecodable record's key is on its topic
    conn = await asyncpg.connect(live)
    try:
        await conn.execute("INSERT INTO orders.inbox (source, id) VALUES ('/users/officer-1', 'http-7'), "
                           "('kafka:orders.intake.v1:2', '17:99')")
    finally:
        await conn.close()
    snap = await snapshot(live, "orders")
    assert http_commands(snap, inputs={"c-1"}) == {"http-7"}
    assert leave_out(snap, {"http-7"}, ("inbox",)) == {"inbox": 1}


def test_what_a_timers_and_an_http_commands_events_are_about_are_told_apart_from_the_inputs_effects():
    def rec(topic_key: str, **env) -> Record:
        return Record(topic_key.encode(), orjson.dumps({"specversion": "1.0", "source": "/x", "data": {}, **env}))

    raw = {
        "orders.intake.v1": [rec("o-1", id="c-1", type="orders.order.accept.v1")],
        "grid.events.v1": [rec("case-9", id="g-1", type="grid.case.registered.v1")],
        "orders.events.v1": [
            rec("o-1", id="e-1", type="orders.order.accepted.v1", subject="o-1", causationid="c-1"),
            rec("o-9", id="e-2", type="orders.order.placed.v1", subject="o-9", causationid="g-1"),
            rec("o-2", id="e-3", type="orders.order.dispatch_expired.v1", subject="o-2"),  # the timer
            rec("o-3", id="e-4", type="orders.order.cancelled.v1", subject="o-3", causationid="http-1"),
        ],
    }
    timers, http, kinds = not_from_input("orders", raw)
    assert dict(kinds) == {"timer": 1, "http": 1}
    assert about("orders", timers, "orders") == {"o-2"} and about("orders", http, "order_history") == {"o-3"}
    # a period's close by the timer is about every card of the period
    raw["assessment.events.v1"] = [rec("g-1", id="s-1", type="assessment.scorecard.published.v1", subject="g-1",
                                       data={"period": "2026-06"})]
    assert about("assessment", not_from_input("assessment", raw)[0], "scorecards") == {"g-1", "2026-06"}
    # a lot's expiry is about its own posting and both accounts' balances, not about every
    # posting that names the resident or the issuer
    raw["points.events.v1"] = [rec("resident:r-1", id="x-1", type="points.transfer.posted.v1", subject="resident:r-1",
                                   data={"transfer_id": "exp-1", "kind": "expiry", "lot_id": "award-1",
                                         "debit_account": "resident:r-1", "credit_account": "issuer:c-1"})]
    expiry = not_from_input("points", raw)[0]
    assert about("points", expiry, "postings") == about("points", expiry, "earnings") == {"exp-1"}
    assert about("points", expiry, "accounts") == {"resident:r-1", "issuer:c-1"}
    assert about("points", expiry, "deeds") == {"resident:r-1"}


async def test_what_the_relay_had_not_published_is_read_as_the_topic_would_hold_it(live):
    """A timer's events committed just before the workers stopped, still in the outbox: emptied
    from the copy before its rebuild, and read as records of the events topic, so that what they
    are about is left out like any timer's."""
    conn = await asyncpg.connect(live)
    try:
        # the kit's outbox as its migrations leave it (services/kit/migrations): the key is bytea
        await conn.execute("CREATE TABLE orders.outbox (seq bigserial PRIMARY KEY, topic text NOT NULL, key bytea, "
                           "value bytea NOT NULL)")
        expired = orjson.dumps({"specversion": "1.0", "id": "e-9", "source": "/services/orders",
                                "type": "orders.order.dispatch_expired.v1", "subject": "o-2", "data": {}})
        await conn.execute("INSERT INTO orders.outbox (topic, key, value) VALUES ('orders.events.v1', 'o-2', $1), "
                           "('orders.rejections.v1', 'c-9', '{}')", expired)
    finally:
        await conn.close()
    left = await empty_outboxes(live, ["orders"])
    assert [(r.key, r.value) for r in left["orders"]] == [(b"o-2", expired)]  # the events topic's only
    timers, http, kinds = not_from_input("orders", {"orders.events.v1": left["orders"]})
    assert about("orders", timers, "orders") == {"o-2"} and not http and kinds == {"timer": 1}
    conn = await asyncpg.connect(live)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders.outbox") == 0
    finally:
        await conn.close()


def test_a_difference_leaves_its_evidence_the_records_of_the_services_topics_and_the_rows(tmp_path):
    from types import SimpleNamespace

    from tests.chaos.rebuilt import keep_evidence

    rec = SimpleNamespace(partition=1, offset=7, timestamp=1000, key=b"case-1", value=b'{"id": "e1"}')
    other = SimpleNamespace(partition=0, offset=0, timestamp=1, key=None, value=b"{}")
    diff = SimpleNamespace(table="case_state", only_live=[("case-1", 2)], only_rebuilt=[])
    path = keep_evidence(tmp_path, "grid", {"grid.intake.v1": [rec], "points.intake.v1": [other]}, [diff])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"table": "case_state", "only_live": [["case-1", 2]], "only_rebuilt": []}
    assert lines[1:] == [{"topic": "grid.intake.v1", "partition": 1, "offset": 7, "timestamp": 1000,
                          "key": "case-1", "value": '{"id": "e1"}'}]  # not another service's intake


def test_the_services_whose_timer_rounds_a_rebuild_runs_again_are_those_that_declare_them():
    """The check leaves out only the unpublished rounds of the services whose timers declare
    their events (``rt.timer(..., replays=...)``); a service that declares one without being
    listed would have its rebuilt rounds left out for nothing, one listed without declaring any
    would fail on every timer it has."""
    declared = {s for s in SERVICES if "replays=" in (Path(ROOT) / "services" / s / "app" / "main.py").read_text()}
    assert declared == REPLAYED_TIMERS
