"""Reads, closes and ledger checks on a generated history, against the same on an empty one:
``python -m tests.history.bench`` (``make bench-history``, after ``make history``).

The history is database ``history`` of the embedded PostgreSQL under ``var/history`` (what
``make history`` leaves), else ``DATABASE_URL``. An empty database with the same migrations is
created beside it (``history_empty``, replaced each run). The grid, points, assessment, orders
and party workers start on each database at once, each database's on an embedded broker of its
own (as the launcher starts them, with signed development tokens of the test identity), and:

- each read endpoint is loaded on the history, then on the empty database, so that the two
  figures a ratio compares are taken seconds apart, in the same spell of the machine (measured
  a database at a time, minutes apart, the same code's ratios ranged from 1.66 to 4.10 for one
  list); while one database's workers are loaded, the other's workers and broker are stopped
  (``SIGSTOP``, for the seconds of one load: idle, they take about a quarter of a core);
- each read endpoint is loaded over 32 concurrent connections: with ``wrk`` (one thread,
  ``BENCH_SECONDS`` seconds each, default 5, after a second of warm-up; ``tests/history/wrk.lua``
  turns over the sampled paths) when it is installed, else ``BENCH_REQUESTS`` requests (default
  640) from aiohttp in this process: p50 and p99 in ms, the requests and their statuses
  (``load_tool`` says which), and the CPU each request cost the worker and PostgreSQL
  (``worker_cpu_us``, ``db_cpu_us``; the database's when it is the embedded one). wrk is a C
  load tool that costs the two cores little; aiohttp's client takes a good part of them from
  the workers it measures;
- a provisional scorecard (the open month of a grid) is read 20 times, one after the other;
- closing the last closed month and quarter again (``assessment.period.close.v1`` over
  ``POST /v1/commands``, which answers once the close is written): seconds, and the answer
  (``no_change``, a 409, when the scores are those published at the last close);
- the incremental ledger check (``GET /v1/ledger/check``, in the endpoint figures) and the full
  one (``POST /v1/ledger/check/full``, once): seconds.

Then, when the history was made with its events topics (``make history TOPICS=1``: the dump
``var/history/topics.tsv.gz``), the rebuild of each service whose input topics those hold
(grid: its commands; orders: its commands and the grid's registered cases; party: its commands
and the orders' events; points: its commands, the grid's and the orders' events; assessment: the grid's, the
orders', the points' and the party's events), the commands' tokens verified against the
provider that signed them (kept beside the dump; a dump made before a service's commands were
kept skips that service): the dump is loaded into an
embedded broker under ``var/history/kafka`` (its seconds reported), and ``python -m
services.<svc>.app rebuild`` runs for each service into a database of its own
(``history_rebuild_<svc>``, replaced each run), never into the history: records, seconds,
records/s, its transactions (``batches``) and its own CPU time. With
``KAFKA_BOOTSTRAP_SERVERS`` the topics are read there instead (the broker the history was
written to) and nothing is loaded.

Prints one JSON line: the figures of both runs, the size of the history and the ratios
history/empty of each p99 and time (``ratio``) and of each endpoint's CPU per request
(``worker_cpu_ratio``: the cost that grows with history, steadier than a latency on a shared
machine), and the rebuilds.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

from services.kit.infra import EmbeddedKafka
from services.kit.provision import provision
from tests.history.generate import (
    HISTORY_DB, HISTORY_DIR, HISTORY_TOPICS, create_database, embedded_history, identity_of, migrate_all,
)
from tests.history.topics import produce, read_dump
from tests.support.identity import TestIdentity, command_token, test_identity, token
from tests.support.procs import Worker, cpu_seconds, postmaster_of, server_cpu_seconds, stopped
from tests.support.rebuild import run_rebuild

REBUILT = ("grid", "orders", "party", "points", "assessment")
"""The services whose input topics a history's topics hold."""
FROM_INTAKE = ("grid", "orders", "party", "points")
"""The services of :data:`REBUILT` whose rebuild replays the commands of their intake topic."""
CONCURRENCY = 32
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "640"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WRK = shutil.which("wrk")
WRK_SCRIPT = Path(__file__).with_name("wrk.lua")
PROVISIONAL_READS = 20
AUDITOR = token("bench-auditor", ["auditor"])
ASSESSOR = token("bench-assessor", ["assessor"])
OPERATOR = token("bench-operator", ["points_operator"])


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 1)


async def _load(session: aiohttp.ClientSession, urls: list[str], tok: str) -> dict[str, Any]:
    """Every url of ``urls`` once, 32 at a time: p50 and p99 of the latencies, and the statuses."""
    times: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(urls)

    async def one() -> None:
        while queue:
            url = queue.pop()
            t = time.perf_counter()
            async with session.get(url, headers={"Authorization": f"Bearer {tok}"}) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            times.append(time.perf_counter() - t)

    await asyncio.gather(*(one() for _ in range(CONCURRENCY)))
    return {"p50_ms": _pct(times, 0.5), "p99_ms": _pct(times, 0.99), "status": statuses}


async def _wrk(base: str, paths: list[str], tok: str, seconds: int) -> dict[str, Any]:
    """``paths`` of ``base`` in turn for ``seconds`` over 32 connections from wrk (one thread):
    its JSON line (:file:`wrk.lua`)."""
    assert WRK is not None
    with tempfile.NamedTemporaryFile("w", suffix=".paths") as f:
        f.write("\n".join(paths) + "\n")
        f.flush()
        proc = await asyncio.to_thread(
            subprocess.run, [WRK, "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
                             base], env={**os.environ, "WRK_PATHS": f.name, "WRK_TOKEN": tok},
            capture_output=True, text=True, timeout=seconds + 60)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}")
    out = json.loads(lines[-1])
    out["status"] = {int(k): v for k, v in out["status"].items()}
    return out


async def load(session: aiohttp.ClientSession, base: str, paths: list[str], tok: str,
               seconds: int = SECONDS, pid: int | None = None, db: psutil.Process | None = None) -> dict[str, Any]:
    """One endpoint's figures, from wrk when it is installed (``seconds`` of load), else from
    aiohttp (``paths``, each once); a warm-up first. With the worker's ``pid``, also the CPU
    each request cost it (``worker_cpu_us``, microseconds, the warm-up left out), which a busy
    machine's other work lengthens less than the latencies; with the database server's
    postmaster ``db``, the server's too (``db_cpu_us``)."""
    if WRK is not None:
        await _wrk(base, paths, tok, 1)
    else:
        await _load(session, [base + p for p in paths[:CONCURRENCY]], tok)
    worker0 = cpu_seconds(pid) if pid else 0.0
    db0 = server_cpu_seconds(db) if db else 0.0
    out = await (_wrk(base, paths, tok, seconds) if WRK is not None else _load(session, [base + p for p in paths], tok))
    n = out.get("requests") or sum(out["status"].values())
    if pid:
        out["worker_cpu_us"] = round((cpu_seconds(pid) - worker0) / n * 1e6)
    if db:
        out["db_cpu_us"] = round((server_cpu_seconds(db) - db0) / n * 1e6)
    return out


async def sample_of(dsn: str) -> dict[str, Any]:
    """Ids the requests name, taken from the history (the same ones are asked of the empty run)."""
    conn = await asyncpg.connect(dsn)
    try:
        cases = [r[0] for r in await conn.fetch("SELECT case_id FROM grid.cases ORDER BY random() LIMIT 200")]
        grids = [r[0] for r in await conn.fetch("SELECT DISTINCT grid_id FROM grid.cases")]
        residents = [r[0] for r in await conn.fetch(
            "SELECT account_id FROM points.accounts WHERE kind = 'resident' ORDER BY random() LIMIT 200")]
        merchants = [r[0] for r in await conn.fetch(
            "SELECT account_id FROM points.accounts WHERE kind = 'merchant' ORDER BY random() LIMIT 50")]
        months = [r[0] for r in await conn.fetch(
            "SELECT period FROM assessment.period_closes WHERE period ~ '^[0-9]{4}-[0-9]{2}$' ORDER BY period DESC")]
        quarters = [r[0] for r in await conn.fetch(
            "SELECT period FROM assessment.period_closes WHERE period ~ 'Q' ORDER BY period DESC")]
        open_month = await conn.fetchval(
            """SELECT max(period) FROM assessment.facts WHERE period ~ '^[0-9]{4}-[0-9]{2}$'
               AND period NOT IN (SELECT period FROM assessment.period_closes)""")
        orders = [r[0] for r in await conn.fetch("SELECT order_id FROM orders.orders ORDER BY random() LIMIT 200")]
        communities = [r[0] for r in await conn.fetch("SELECT DISTINCT community_id FROM orders.orders")]
        members = [r[0] for r in await conn.fetch(
            "SELECT member_id FROM orders.members ORDER BY random() LIMIT 200")]
        orgs = [r[0] for r in await conn.fetch(
            "SELECT org_id FROM party.orgs WHERE kind <> 'street_working_committee' ORDER BY random() LIMIT 200")]
        councils = [r[0] for r in await conn.fetch("SELECT council_id FROM party.councils ORDER BY council_id")]
        streets = [r[0] for r in await conn.fetch(
            "SELECT area_id FROM party.orgs WHERE kind = 'street_working_committee' ORDER BY area_id")]
        scored = [r[0] for r in await conn.fetch(
            "SELECT entity_id FROM assessment.scorecards WHERE entity_type = 'grid' AND period = $1", months[0])
                  ] if months else []
        open_grids = [r[0] for r in await conn.fetch(
            "SELECT DISTINCT entity_id FROM assessment.facts WHERE entity_type = 'grid' AND period = $1",
            open_month)] if open_month else []
        size = {"cases": await conn.fetchval("SELECT count(*) FROM grid.cases"),
                "case_history": await conn.fetchval("SELECT count(*) FROM grid.case_history"),
                "orders": await conn.fetchval("SELECT count(*) FROM orders.orders"),
                "postings": await conn.fetchval("SELECT count(*) FROM points.postings"),
                "accounts": await conn.fetchval("SELECT count(*) FROM points.accounts"),
                "event_log": await conn.fetchval("SELECT count(*) FROM assessment.event_log"),
                "facts": await conn.fetchval("SELECT count(*) FROM assessment.facts"),
                "scorecards": await conn.fetchval("SELECT count(*) FROM assessment.scorecards"),
                "closed_months": len(months),
                "orgs": await conn.fetchval("SELECT count(*) FROM party.orgs"),
                "org_life": await conn.fetchval("SELECT count(*) FROM party.org_life_log")}
    finally:
        await conn.close()
    if not (cases and residents and months and quarters and orders and members):
        raise SystemExit("the history is empty: run make history first")
    return {"cases": cases, "grids": grids, "residents": residents, "merchants": merchants or residents,
            "orders": orders, "communities": communities, "members": members,
            "orgs": orgs, "councils": councils, "streets": streets,
            "scored_grids": scored or grids, "open_grids": open_grids or grids, "month": months[0], "quarter": quarters[0], "open_month": open_month or months[0], "size": size}


def _endpoints(s: dict[str, Any], n: int) -> dict[str, tuple[str, str, list[str]]]:
    """name -> (service, token, paths), ``n`` paths each (cycling over the sample); the party's
    only when the history has its organisations (a history made before it had none)."""
    def cyc(fmt: str, xs: list[str]) -> list[str]:
        return [fmt.format(xs[i % len(xs)]) for i in range(n)]
    m = s["month"]
    return {
        "grid.case": ("grid", AUDITOR, cyc("/v1/cases/{}", s["cases"])),
        "grid.cases": ("grid", AUDITOR, cyc("/v1/cases?limit=50&grid_id={}", s["grids"])),
        "grid.cases_open": ("grid", AUDITOR, cyc("/v1/cases?limit=50&status=dispatched&grid_id={}", s["grids"])),
        "grid.cases_basic": ("grid", AUDITOR, cyc("/v1/cases?limit=50&view=basic&grid_id={}", s["grids"])),
        "grid.counts": ("grid", AUDITOR, cyc("/v1/grids/{}/counts", s["grids"])),
        "points.account": ("points", AUDITOR, cyc("/v1/accounts/{}", s["residents"])),
        "points.statement": ("points", AUDITOR, cyc("/v1/accounts/{}/statement?limit=50", s["residents"])),
        "points.redemptions": ("points", AUDITOR, cyc("/v1/merchants/{}/redemptions?limit=50", s["merchants"])),
        "points.rankings": ("points", AUDITOR, cyc("/v1/rankings?period={}", [m])),
        "points.ledger_check": ("points", OPERATOR, cyc("/v1/ledger/check", [""])),
        "assessment.scorecard": ("assessment", ASSESSOR, cyc("/v1/scorecards/grid/{}?period=" + m, s["scored_grids"])),
        "assessment.rankings": ("assessment", ASSESSOR, cyc("/v1/rankings?entity_type=grid&period={}", [m])),
        "assessment.alerts": ("assessment", ASSESSOR, cyc("/v1/alerts?period={}", [m])),
        "orders.order": ("orders", AUDITOR, cyc("/v1/orders/{}", s["orders"])),
        "orders.orders": ("orders", AUDITOR, cyc("/v1/orders?limit=50&community_id={}", s["communities"])),
        "orders.member": ("orders", AUDITOR, cyc("/v1/members/{}", s["members"])),
        "orders.needs": ("orders", AUDITOR, cyc("/v1/communities/{}/needs", s["communities"])),
        "orders.resources": ("orders", AUDITOR, cyc("/v1/communities/{}/resources", s["communities"])),
    } | ({
        "party.org": ("party", AUDITOR, cyc("/v1/orgs/{}", s["orgs"])),
        "party.orgs": ("party", AUDITOR, cyc("/v1/orgs?limit=50&area_id={}", s["communities"])),
        "party.life": ("party", AUDITOR, cyc("/v1/orgs/{}/life", s["orgs"])),
        "party.coverage": ("party", AUDITOR, cyc("/v1/coverage?street_id={}", s["streets"])),
        "party.council": ("party", AUDITOR, cyc("/v1/councils/{}", s["councils"])),
        "party.units": ("party", AUDITOR, cyc("/v1/units?limit=50&community_id={}", s["communities"])),
        "party.projects": ("party", AUDITOR, cyc("/v1/projects?limit=50&community_id={}", s["communities"])),
    } if s.get("orgs") and s.get("councils") else {})


def _start(service: str, bootstrap: str, dsn: str, logdir: Path) -> Worker:
    prefix = f"{service.upper()}_"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": dsn, "TOPIC_PARTITIONS": "4",
           "POINTS_LEDGER_FULL_CHECK_INTERVAL_SECONDS": "0"}
    return Worker(f"services.{service}.app", env, prefix=prefix, log=logdir / f"{service}.log").start()


async def _post(session: aiohttp.ClientSession, url: str, body: dict | None, tok: str) -> tuple[int, float, Any]:
    t = time.perf_counter()
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {tok}"},
                            timeout=aiohttp.ClientTimeout(total=600)) as r:
        raw = await r.read()
        secs = time.perf_counter() - t
        try:
            return r.status, secs, json.loads(raw)
        except ValueError:
            return r.status, secs, None


def close_answer(status: int, body: Any) -> str:
    """What a close answered: ``published <n>`` (200), or the error code (``no_change`` when
    nothing changed since the period was last closed)."""
    if status == 200 and isinstance(body, dict):
        return f"published {len(body.get('events') or [])}"
    return body.get("error", str(status)) if isinstance(body, dict) else str(status)


async def measure(dsn: str, bootstrap: str, sample: dict[str, Any], logdir: Path,
                  requests: int = REQUESTS, seconds: int = SECONDS, db: psutil.Process | None = None) -> dict[str, Any]:
    """The figures of the workers started on ``dsn`` (see the module docstring): each endpoint
    loaded for ``seconds`` by wrk, else ``requests`` times by aiohttp; with the postmaster of
    ``dsn``'s server (``db``), the server's CPU per request too."""
    return (await measure_sides({"one": (dsn, bootstrap)}, sample, logdir, requests, seconds, db))["one"]


async def measure_sides(sides: dict[str, tuple[str, str]], sample: dict[str, Any], logdir: Path,
                        requests: int = REQUESTS, seconds: int = SECONDS, db: psutil.Process | None = None,
                        brokers: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`measure` of each side (name -> (database, broker)) at once: every side's workers run
    together, each on its database and broker, and each read endpoint is loaded on one side after
    the other, so that the figures a ratio compares are taken seconds apart, in the same spell of
    a shared machine; then each side's provisional scorecard, closes and full ledger check. While
    one side is measured the others' workers, and their brokers (``brokers``: side -> process
    id), are stopped for the seconds of that load (:func:`~tests.support.procs.stopped`, with the
    workers' process groups), under the consumers' session timeout: no group rebalances, and each
    worker logs once that its consumer thread's keepalive (faust's ``mode``) did not answer
    meanwhile. Idle, five workers and a broker take about a quarter of a core."""
    endpoints = _endpoints(sample, requests)
    services = {"grid", "points", "assessment", "orders"} | {svc for svc, _, _ in endpoints.values()}
    workers: dict[str, dict[str, Worker]] = {}
    out: dict[str, dict[str, Any]] = {side: {} for side in sides}
    try:
        for side, (dsn, bootstrap) in sides.items():
            (logdir / side).mkdir(parents=True, exist_ok=True)
            workers[side] = {svc: _start(svc, bootstrap, dsn, logdir / side) for svc in sorted(services)}
        await asyncio.gather(*(w.wait_ready(180) for ws in workers.values() for w in ws.values()))
        conn = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as session:
            pids = {side: [w.proc.pid for w in workers[side].values()] for side in sides}
            for side, pid in (brokers or {}).items():
                pids[side].append(pid)

            def others(side: str) -> list[int]:
                return [pid for o in sides if o != side for pid in pids[o]]

            for name, (svc, tok, paths) in endpoints.items():
                for side in sides:  # in turn: a side is never stopped for longer than one load
                    w = workers[side][svc]
                    with stopped(*others(side), groups=True):
                        out[side][name] = await load(session, w.url, paths, tok, seconds, w.proc.pid, db)
            for side in sides:
                with stopped(*others(side), groups=True):
                    out[side].update(await _writes(session, workers[side], sample))
    finally:
        for ws in workers.values():
            for w in ws.values():
                w.stop()
    return out


async def _writes(session: aiohttp.ClientSession, workers: dict[str, Worker], sample: dict[str, Any]) -> dict[str, Any]:
    """A provisional scorecard read one after the other, the last closed month and quarter
    closed again, and the full ledger check, on one side's workers."""
    out: dict[str, Any] = {}
    a = workers["assessment"].url
    times = []
    for i in range(PROVISIONAL_READS):
        grid = sample["open_grids"][i % len(sample["open_grids"])]
        t = time.perf_counter()
        async with session.get(f"{a}/v1/scorecards/grid/{grid}?period={sample['open_month']}",
                               headers={"Authorization": f"Bearer {ASSESSOR}"}) as r:
            await r.read()
            status = r.status
        times.append(time.perf_counter() - t)
    out["provisional_scorecard"] = {"p50_ms": _pct(times, 0.5), "max_ms": _pct(times, 1.0),
                                    "status": status, "period": sample["open_month"]}
    for label, period in (("close_month", sample["month"]), ("close_quarter", sample["quarter"])):
        body = {"id": str(uuid.uuid4()), "type": "assessment.period.close.v1", "data": {"period": period}}
        status, secs, answer = await _post(session, a + "/v1/commands", body, command_token(body))
        out[label] = {"seconds": round(secs, 3), "status": status, "answer": close_answer(status, answer),
                      "period": period}
    status, secs, _ = await _post(session, workers["points"].url + "/v1/ledger/check/full", None, OPERATOR)
    out["ledger_check_full"] = {"seconds": round(secs, 3), "status": status}
    return out


async def rebuild(service: str, dsn: str, bootstrap: str, topics: Path = HISTORY_TOPICS) -> dict[str, Any]:
    """``python -m services.<service>.app rebuild`` from the topics of ``bootstrap`` (loaded from
    the dump ``topics``) into a new database beside ``dsn``'s (``history_rebuild_<service>``,
    replaced), verifying the commands' tokens against the provider that signed them; its JSON
    line, with the database's URL."""
    url = await create_database(dsn, f"history_rebuild_{service}", replace=True)
    signer = identity_of(topics)
    idp = TestIdentity.kept_in(signer) if (signer / "key.pem").exists() else test_identity()
    env = {**idp.env(), "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LOG_FORMAT": "text"}
    proc = await asyncio.to_thread(run_rebuild, service, env, timeout=24 * 3600)
    if proc.returncode != 0:
        raise RuntimeError(f"the {service} rebuild failed ({proc.returncode}): {proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["database"] = url
    return out


async def rebuilds(dsn: str) -> dict[str, Any]:
    """The rebuild of each service of :data:`REBUILT` from the history's topics (see the module
    docstring), or why there is none."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not given and not HISTORY_TOPICS.exists():
        return {"skipped": "the history has no topics: make history TOPICS=1"}
    broker = None
    out: dict[str, Any] = {}
    try:
        if given:
            bootstrap = given
        else:
            broker = EmbeddedKafka(workdir=HISTORY_TOPICS.parent / "kafka").start()
            bootstrap = broker.bootstrap
            await provision(bootstrap, partitions=int(os.environ.get("TOPIC_PARTITIONS", "12")))
            t = time.perf_counter()
            loaded = await produce(bootstrap, read_dump(HISTORY_TOPICS))
            out["loaded"] = {"records": dict(sorted(loaded.items())), "seconds": round(time.perf_counter() - t, 1)}
        for svc in REBUILT:
            intake = f"{svc}.intake.v1"
            if svc in FROM_INTAKE and broker is not None and not loaded.get(intake):
                out[svc] = {"skipped": f"the history's topics hold no {intake}: made before they were kept"}
                continue
            r = await rebuild(svc, dsn, bootstrap)
            out[svc] = {k: r[k] for k in ("records", "seconds", "records_per_second", "batches", "cpu_seconds",
                                          "handle_seconds", "fetch_seconds", "not_reacted_to", "not_published_again")}
    finally:
        if broker is not None:
            broker.stop()
    return out


def _ratios(h: dict[str, Any], e: dict[str, Any], key: str | None = None) -> dict[str, float | None]:
    """history / empty of each figure's p99 (else its seconds, else its p50); with ``key``, of
    that figure alone, where both runs have it."""
    out: dict[str, float | None] = {}
    for k, v in h.items():
        of = key or ("p99_ms" if "p99_ms" in v else "seconds" if "seconds" in v else "p50_ms")
        if of not in v:
            continue
        base = e.get(k, {}).get(of)
        out[k] = round(v[of] / base, 2) if base else None
    return out


async def run() -> dict[str, Any]:
    pg = None
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        if not (HISTORY_DIR / "PG_VERSION").exists():
            raise SystemExit("no history under var/history: run make history first")
        pg = embedded_history()
        dsn = pg.url.rsplit("/", 1)[0] + "/" + HISTORY_DB
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    # a broker for each side: the workers of both run at once, and neither reads what the
    # other's publish
    brokers = {side: EmbeddedKafka(workdir=work / f"kafka-{side}").start() for side in ("history", "empty")}
    try:
        for broker in brokers.values():
            await provision(broker.bootstrap, partitions=4)
        sample = await sample_of(dsn)
        empty = await create_database(dsn, "history_empty", replace=True)
        c = await asyncpg.connect(empty)
        try:
            await migrate_all(c)
        finally:
            await c.close()
        db = postmaster_of(HISTORY_DIR) if pg is not None else None  # an embedded server's only
        urls = {"history": dsn, "empty": empty}
        both = await measure_sides({side: (urls[side], b.bootstrap) for side, b in brokers.items()}, sample, work,
                                   db=db, brokers={side: b.proc.pid for side, b in brokers.items()})
        history, blank = both["history"], both["empty"]
        for broker in brokers.values():
            broker.stop()  # now: the rebuilds load the topics into a broker of their own
        return {"history": sample["size"], "concurrency": CONCURRENCY,
                "load_tool": {"wrk": {"seconds": SECONDS}} if WRK else {"aiohttp": {"requests": REQUESTS}},
                "at_history": history, "at_empty": blank, "ratio": _ratios(history, blank),
                "worker_cpu_ratio": _ratios(history, blank, "worker_cpu_us"),
                "rebuild": await rebuilds(dsn)}
    finally:
        for broker in brokers.values():
            broker.stop()
        if pg is not None:
            pg.stop()


def main() -> int:
    out = asyncio.run(run())
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
