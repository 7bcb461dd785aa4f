"""Erasure of a resident across the four services, on real PostgreSQL (no broker: the events one
service publishes are encoded, decoded and handed to the others' handlers as their consumers would).

A resident reports two cases (one a resident need, which becomes an order); points awards them,
assessment logs the facts. A data protection officer erases the resident in grid; grid's
``grid.person.erased.v1`` makes the others erase their copies, each publishing its own event
once, which the others take as already done. Afterwards the resident's id is in no table of the
four schemas, the events published since name only the pseudonym, the balances are where they
were and the ledger still sums to zero."""
from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from schemas.envelope import Message, decode, encode
from schemas.grid import DispatchCase, ErasePerson, RegisterCase, ReportCase
from schemas.points import ErasePerson as ErasePointsPerson, OpenAccount
from services.assessment.app.handler import AssessmentHandler
from services.assessment.domain import Scheme
from services.assessment.projection import MIGRATIONS as ASSESSMENT_MIGRATIONS
from services.grid.app.handler import GridHandler
from services.grid.domain import DEFAULT_POLICY
from services.grid.registry import GridRegister
from services.kit.handlers import dispatch
from services.kit.identity import Principal, Scope
from services.kit.outbox import write as write_outbox
from services.kit.uow import UnitOfWork
from services.orders.app.handler import OrdersHandler
from services.orders.app.settings import OrdersSettings
from services.points import DEFAULT_RULES_PATH
from services.points.app.handler import PointsHandler
from services.points.app.rules import RulesFile
from services.points.projection import MIGRATIONS as POINTS_MIGRATIONS
from tests.integration.grid.support import sender as grid_sender
from tests.integration.points.senders import sender as points_sender
from tests.support.db import migrated_pool, tables_containing
from tests.support.identity import all_streets

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GRID_MIGRATIONS = ROOT / "services" / "grid" / "migrations"
ORDERS_MIGRATIONS = ROOT / "services" / "orders" / "migrations"
SERVICES = ("grid", "orders", "points", "assessment")
RESIDENT = "res-erase-0042"
GRID = "110105001002003"
COMMUNITY = "110105001002"
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
DPO = Principal("dpo-0001", frozenset({"data_protection_officer"}), Scope.of(streets=all_streets()))
WORDS = "楼道里堆满了杂物，我家3号楼2单元501门口"
ADDRESS = "金台里3号楼2单元"


@pytest.fixture
async def pools(database_url):
    async with contextlib.AsyncExitStack() as stack:
        out = {}
        for svc, migrations in (("grid", GRID_MIGRATIONS), ("orders", ORDERS_MIGRATIONS),
                                ("points", POINTS_MIGRATIONS), ("assessment", ASSESSMENT_MIGRATIONS)):
            out[svc] = await stack.enter_async_context(migrated_pool(database_url, svc, migrations, max_size=2))
        yield out


@pytest.fixture
def handlers():
    return {"grid": GridHandler(DEFAULT_POLICY, GridRegister.load()), "orders": OrdersHandler(OrdersSettings()),
            "points": PointsHandler(RulesFile(DEFAULT_RULES_PATH)), "assessment": AssessmentHandler(Scheme.load())}


async def run(pool, svc: str, handler, messages: list[Message], now: datetime, *,
              answered: tuple[str, ...] = ()) -> UnitOfWork:
    """One batch, committed as the kit's consumer does; no rejection but for the reasons ``answered``."""
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, svc, now)
        assert await dispatch(handler, uow, messages) == []
        assert all(e.reason in answered for _, e in uow.rejected), [(m.type, e.reason, e.detail) for m, e in uow.rejected]
        await uow.flush()
        await write_outbox(conn, uow.records)
    uow.committed()
    return uow


def command(payload, principal) -> Message:
    from tests.support.kafka import command as envelope

    return Message(envelope=envelope(payload, source="/tests", time=T0), payload=payload, principal=principal)


def wire(uow: UnitOfWork) -> list[Message]:
    """What a service published, as its subscribers decode it."""
    return [decode(encode(e.cloudevent())) for e in uow.emitted]


async def spread(pools, handlers, published: list[Message], now: datetime) -> list[Message]:
    """Hand the events to every other service until nothing new is published; every event published."""
    everything = list(published)
    while published:
        new: list[Message] = []
        for svc in SERVICES:
            theirs = [m for m in published if m.type.split(".", 1)[0] != svc and type(m.payload) in handlers[svc]._handlers]
            if theirs:
                new += wire(await run(pools[svc], svc, handlers[svc], theirs, now))
        everything += new
        published = new
    return everything


def report(case_id: str, category: str) -> ReportCase:
    return ReportCase.model_validate(dict(
        case_id=case_id, grid_id=GRID, category=category, description=WORDS,
        location={"lat": 39.9219, "lon": 116.4436, "address": ADDRESS}, media=["https://media.example/p/42.jpg"],
        reporter={"kind": "resident", "id": RESIDENT}))


async def ledger(pool) -> tuple[int, dict[str, int], int]:
    async with pool.acquire() as conn:
        total = await conn.fetchval("SELECT coalesce(sum(balance), 0) FROM accounts")
        rows = await conn.fetch("SELECT account_id, balance FROM accounts WHERE kind = 'resident'")
        posted = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM postings")
    return total, {r["account_id"]: r["balance"] for r in rows}, posted


async def everywhere(pools, needle: str) -> dict[str, list[str]]:
    found = {}
    async with pools["grid"].acquire() as conn:
        for svc in SERVICES:
            tables = await tables_containing(conn, svc, needle)
            if tables:
                found[svc] = tables
    return found


async def build_up(pools, handlers) -> None:
    """The resident's account, two cases registered, the facts spread to every service."""
    opening = OpenAccount(account_id=f"resident:{RESIDENT}", holder_id=RESIDENT, kind="resident", community_id=COMMUNITY)
    await run(pools["points"], "points", handlers["points"], [command(opening, points_sender(opening))], T0)
    published = []
    for i, (case_id, category) in enumerate((("e-1", "resident_need"), ("e-2", "environment"))):
        r = report(case_id, category)
        uow = await run(pools["grid"], "grid", handlers["grid"], [command(r, grid_sender(r))], T0 + timedelta(minutes=i))
        published += wire(uow)
        reg = RegisterCase(case_id=case_id, department="110105.cgw")
        uow = await run(pools["grid"], "grid", handlers["grid"], [command(reg, grid_sender(reg))],
                        T0 + timedelta(minutes=5 + i))
        published += wire(uow)
    await spread(pools, handlers, published, T0 + timedelta(minutes=10))


async def test_an_erased_resident_is_in_no_table_and_no_new_event_and_the_ledger_still_sums_to_zero(pools, handlers):
    await build_up(pools, handlers)
    before = await everywhere(pools, RESIDENT)
    assert set(before) == set(SERVICES), before  # every service held the resident's id
    assert "grid" in await everywhere(pools, WORDS)
    total, balances, posted = await ledger(pools["points"])
    assert total == 0 and balances[f"resident:{RESIDENT}"] > 0, balances

    later = T0 + timedelta(hours=1)
    erase = ErasePerson(person_id=RESIDENT, reason="GDPR art. 17 request DP-2026-0117")
    uow = await run(pools["grid"], "grid", handlers["grid"], [command(erase, DPO)], later)
    [erased] = wire(uow)
    assert erased.type == "grid.person.erased.v1" and erased.payload.person_id == RESIDENT
    pseudonym = erased.payload.pseudonym
    assert pseudonym.startswith("erased-") and erased.envelope.subject == pseudonym
    everything = await spread(pools, handlers, [erased], later)
    # each service published its erasure once; the reactions to those changed nothing more
    assert sorted(m.type for m in everything) == sorted(f"{s}.person.erased.v1" for s in SERVICES)
    assert {m.payload.pseudonym for m in everything} == {pseudonym}

    assert await everywhere(pools, RESIDENT) == {}
    for text in (WORDS, ADDRESS, "media.example"):
        assert await everywhere(pools, text) == {}, text
    async with pools["grid"].acquire() as conn:
        for svc in SERVICES:  # one erasure row per service, under the same pseudonym
            assert await conn.fetchval(f"SELECT array_agg(pseudonym) FROM {svc}.erasures") == [pseudonym], svc

    # the amounts are intact: the same balance under the pseudonymous account, the ledger sums to 0
    total_after, balances_after, posted_after = await ledger(pools["points"])
    assert total_after == 0 and posted_after == posted
    assert balances_after[f"resident:{pseudonym}"] == balances[f"resident:{RESIDENT}"]
    assert f"resident:{RESIDENT}" not in balances_after

    # what the services publish from now on names the pseudonym, never the id
    step = DispatchCase(case_id="e-2", department="110105.cgw", assignee_id="staff-1")
    uow = await run(pools["grid"], "grid", handlers["grid"], [command(step, grid_sender(step))], later + timedelta(minutes=1))
    newer = wire(uow)
    assert newer and all(RESIDENT not in encode(m.envelope).decode() for m in newer)
    for m in await spread(pools, handlers, newer, later + timedelta(minutes=2)):
        assert RESIDENT not in encode(m.envelope).decode(), m.type
    assert await everywhere(pools, RESIDENT) == {}

    # erasing again changes nothing: answered no_change, and no second erasure is published
    again = ErasePointsPerson(person_id=RESIDENT, reason="repeated request")
    uow = await run(pools["points"], "points", handlers["points"], [command(again, DPO)], later + timedelta(hours=1),
                    answered=("no_change",))
    assert [(e.type, e.data["reason"]) for e in uow.emitted] == [("points.command.rejected.v1", "no_change")]


async def test_only_a_data_protection_officer_may_erase(pools, handlers):
    erase = ErasePerson(person_id=RESIDENT, reason="because")
    resident = Principal(RESIDENT, frozenset({"resident"}), Scope.of(streets=all_streets()))
    async with pools["grid"].acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, "grid", T0)
        await dispatch(handlers["grid"], uow, [command(erase, resident)])
        assert [e.reason for _, e in uow.rejected] == ["forbidden"]


async def test_the_ledger_refuses_any_other_change_to_a_posting(pools, handlers):
    await build_up(pools, handlers)
    async with pools["points"].acquire() as conn:
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute("UPDATE postings SET amount = amount + 1")
        async with conn.transaction():  # even with the erasure's flag set, an amount never changes
            await conn.execute("SELECT set_config('points.erasure', 'on', true)")
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await conn.execute("UPDATE postings SET amount = amount + 1")
        with pytest.raises(asyncpg.PostgresError, match="not a pseudonym"):
            await conn.execute("SELECT erase_account($1, 'resident:someone', $2, 'someone')",
                               f"resident:{RESIDENT}", RESIDENT)
