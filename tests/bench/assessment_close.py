"""How long a month close and a provisional scorecard take as history grows: the assessment
projection filled by COPY with synthetic counters and refs for 1 and for 5 years, then the
service's own close (:meth:`AssessmentHandler.close`, rolled back) and provisional scoring
(:func:`compute_period`) timed on the last month. Prints one JSON line per history.

    python -m tests.bench.assessment_close [--years 1 5] [--grids 100] [--members 1000] [--cases-per-year 20000]

The scale: ``--grids`` grids (10 per community, 10 communities per street), one grid worker
each, ``--members`` members, a unit per 10 members, 20 departments; every one of them has a
counter of each fact of its kind in every month, quarter and year; ``--cases-per-year`` case
refs a year (the refs a history leaves behind, which no score reads). A fresh embedded
PostgreSQL unless ``TEST_DATABASE_URL`` is set.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from decimal import Decimal
import os

from services.assessment.app.handler import AssessmentHandler
from services.assessment.app.scoring import compute_period
from services.assessment.domain import default_scheme
from services.assessment.domain.facts.refs import GridRef, MemberRef, UnitRef, WorkerRef
from services.assessment.domain.indicators import Fact
from services.assessment.domain.periods import Period
from services.assessment.projection import MIGRATIONS
from services.kit.infra import EmbeddedPostgres
from services.kit.uow import UnitOfWork
from tests.support.db import migrated_pool

CST = timezone(timedelta(hours=8))
GRID_FACTS = [f.value for f in Fact][:15] + ["cases_reported_on_time", "verifications_done", "verifications_on_time"]
MEMBER_FACTS = ["orders_dispatched", "orders_accepted", "orders_declined", "orders_completed", "service_minutes",
                "orders_evaluated", "orders_passed", "rating_sum", "points_earned", "deeds_approved"]
DEPT_FACTS = ["dept_cases_received", "dept_cases_in_rates", "cases_accepted_on_time", "cases_contacted_on_time",
              "cases_resolved", "dept_cases_closed", "dept_cases_closed_on_time", "feedback_received",
              "feedback_satisfied"]
PARTY_FACTS = ["org_life_held", "org_life_required", "org_life_attendees", "org_life_expected"]


def periods(years: int, last_year: int = 2026) -> list[str]:
    out = []
    for y in range(last_year - years + 1, last_year + 1):
        out += [f"{y}-{m:02d}" for m in range(1, 13)] + [f"{y}-Q{q}" for q in range(1, 5)] + [str(y)]
    return out


def entities(grids: int, members: int) -> dict[str, list[str]]:
    g = [f"110105{1 + i // 100:03d}{1 + (i // 10) % 10:03d}{1 + i % 10:03d}" for i in range(grids)]
    return {"grid": g, "community": sorted({x[:12] for x in g}), "street": sorted({x[:9] for x in g}),
            "grid_worker": [f"gw-{i:05d}" for i in range(grids)], "member": [f"m-{i:06d}" for i in range(members)],
            "unit": [f"u-{i:05d}" for i in range(max(1, members // 10))],
            "department": [f"110105.d{i:02d}" for i in range(20)]}


def fact_rows(years: int, ents: dict[str, list[str]], rng: random.Random):
    kinds = {"grid": GRID_FACTS, "community": GRID_FACTS + MEMBER_FACTS + PARTY_FACTS, "street": GRID_FACTS,
             "grid_worker": GRID_FACTS, "member": MEMBER_FACTS, "unit": MEMBER_FACTS, "department": DEPT_FACTS}
    for p in periods(years):
        for et, ids in ents.items():
            for eid in ids:
                for f in kinds[et]:
                    yield (p, et, eid, f, Decimal(rng.randint(1, 40)), 1)


def ref_rows(years: int, ents: dict[str, list[str]], cases_per_year: int, rng: random.Random):
    t0 = datetime(2026 - years + 1, 1, 5, 9, tzinfo=CST)
    for i, (w, g) in enumerate(zip(ents["grid_worker"], ents["grid"])):
        weeks = tuple((g, (t0 + timedelta(weeks=k)).date().isoformat()) for k in range(0, 52 * years, 2))
        yield ("worker", w, WorkerRef(worker_id=w, grid_id=g, grids=((g, t0),), patrolled=weeks).model_dump(mode="json"))
        yield ("grid", g, GridRef(grid_id=g, community_id=g[:12], street_id=g[:9], branch_at=t0).model_dump(mode="json"))
    for i, m in enumerate(ents["member"]):
        yield ("member", m, MemberRef(member_id=m, community_id=ents["community"][i % len(ents["community"])],
                                      unit_id=ents["unit"][i % len(ents["unit"])]).model_dump(mode="json"))
    for i, u in enumerate(ents["unit"]):
        c = ents["community"][i % len(ents["community"])]
        yield ("unit", u, UnitRef(unit_id=u, community_id=c, street_id=c[:9], known_at=t0,
                                  reported_at=t0 if i % 3 else None).model_dump(mode="json"))
    for i in range(cases_per_year * years):
        yield ("case", f"case-{i:08d}", {"case_id": f"case-{i:08d}", "grid_id": rng.choice(ents["grid"]),
                                         "registered": True, "closed": True})


async def fill(pool, years: int, grids: int, members: int, cases_per_year: int) -> dict:
    rng = random.Random(years)
    ents = entities(grids, members)
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE facts, refs, scorecards, alerts, period_closes", timeout=600)
        started = time.perf_counter()
        await conn.copy_records_to_table("facts", records=list(fact_rows(years, ents, rng)),
                                         columns=["period", "entity_type", "entity_id", "fact", "value", "n"], timeout=3600)
        await conn.copy_records_to_table("refs", records=list(ref_rows(years, ents, cases_per_year, rng)),
                                         columns=["kind", "ref_id", "data"], timeout=3600)
        await conn.execute("ANALYZE facts; ANALYZE refs", timeout=600)
        return {"fact_rows": await conn.fetchval("SELECT count(*) FROM facts"),
                "ref_rows": await conn.fetchval("SELECT count(*) FROM refs"),
                "fill_seconds": round(time.perf_counter() - started, 1)}


async def timed(fn, runs: int = 3) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return round(statistics.median(out) * 1000, 1)


async def measure(pool, month: str) -> dict:
    handler = AssessmentHandler(default_scheme())
    scheme = handler.default
    cards = 0

    async def close():
        nonlocal cards
        async with pool.acquire() as conn:
            tr = conn.transaction()
            await tr.start()
            try:
                uow = UnitOfWork(conn, "assessment", Period.parse(month).end + timedelta(hours=1))
                cards = len((await handler.close(uow, month, scheme, trigger="command")).scorecards)
            finally:
                await tr.rollback()

    def provisional(entity: tuple[str, str]):
        async def run():
            async with pool.acquire() as conn:
                pub = await compute_period(conn, month, scheme, of=entity)
                assert any((c.entity_type.value, c.entity_id) == entity for c in pub.scorecards)
        return run

    return {"month_close_ms": await timed(close),
            "provisional_member_ms": await timed(provisional(("member", "m-000000"))),
            "provisional_grid_ms": await timed(provisional(("grid", entities(1, 1)["grid"][0]))),
            "scorecards_in_month": cards}


async def main(args) -> None:
    base = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not base:
        server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="assessment-bench-pg-")) / "data").start()
        base = server.url
    name = "bench_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    try:
        async with migrated_pool(url, "assessment", MIGRATIONS) as pool:
            for years in args.years:
                filled = await fill(pool, years, args.grids, args.members, args.cases_per_year)
                print(json.dumps({"years": years, "grids": args.grids, "members": args.members,
                                  "cases_per_year": args.cases_per_year, **filled, **await measure(pool, "2026-12")}),
                      flush=True)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if server is not None:
            server.destroy()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--years", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--grids", type=int, default=100)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--cases-per-year", type=int, default=20000)
    asyncio.run(main(ap.parse_args()))
