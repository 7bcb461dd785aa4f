"""Each service's projection against its rebuild from its input topics, once a fault campaign
has stopped (``tests/chaos/run.py``): the campaign's last check.

When the load has stopped, the lag is 0 and the other invariants are checked, the campaign has
the launcher stop every worker (``SIGUSR1``: the broker and the database stay up). Then:

1. the database is copied (``CREATE DATABASE ... TEMPLATE``: nothing else is connected to it
   now), every service's schema with it;
2. each service is rebuilt in the copy, ``python -m services.<svc>.app rebuild --handled-only``
   with the environment its workers ran with (the launcher's own, and what it gave them:
   ``run/<svc>.env``) pointed at the copy, two at a time: only the messages its workers had
   handled when they stopped, since an upstream timer can publish between the campaign's settle
   check and the workers' stop, which the rebuild would read and the stopped consumers had not;
3. each service's tables in the live database are compared row for row with the copy's, as the
   rebuild tests of every service compare them (``tests/support/rebuild.py``: the columns that
   hold wall-clock times, the aggregate store's save counts and the tables no topic holds are
   left out there).

What a rebuild cannot give back by design is left out too (``services/kit/rebuild.py``): the
effects of the services' timers and of the commands sent over HTTP. Both are events of the
service that no message on its input topics caused (a timer's have no ``causationid``, an HTTP
command's name a command that is on no topic). The rebuild runs the rounds of the timers that
declare their events again (:data:`REPLAYED_TIMERS`: every service's), so of those timers'
events only the ones still in the outbox when the workers stopped are left out (on no topic,
their rounds are not run again). In the tables a service's timers write (:data:`TIMER_TABLES`),
the rows that name what one of its timers' events is about there (its subject: a case, an order;
a closed period; a posting and the balances of its accounts: :data:`ABOUT`), and in every table
the rows that name what an HTTP command's event is about, are not compared, on either side, and
are counted (``excluded``), as are the inbox rows of the HTTP commands (ids on no input topic).
The tables only timers write are left out whole (:data:`TIMER_ONLY`); counts and tallies kept
beside a table timers write are compared as their disagreement with computing them from it
(:data:`KEPT_COUNTS`: none on either side). A difference anywhere else is a failed check, with a
sample of the differing rows.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from schemas.registry import SERVICES
from services.kit.kafkaacl import CONSUMES
from tests.support.procs import ROOT
from tests.support.rebuild import Snapshot, differences, run_rebuild, snapshot

COPY = "rebuilt"

# The tables each service's timers write (the ``rt.timer`` functions of services/<svc>/app/main.py).
# In them, the rows that name what one of its timers' events is about are left out.
TIMER_TABLES: dict[str, tuple[str, ...]] = {
    "grid": ("case_state", "cases", "case_history",  # cases overdue (督办)
             "whistles"),                              # departments recorded missing from a whistle
    "orders": ("orders", "order_history"),             # dispatches expired, and dispatched again
    "points": ("accounts", "postings", "earnings",     # lots expired
               "deeds"),                               # deeds credited again on a later day
    "assessment": ("scorecards", "alerts", "period_closes"),  # periods closed when they end
    "party": ("org_life", "org_life_log",              # periods without their meetings
              "member_follow_ups",                     # members overdue; quarterly feedback
              "councils",                              # councils effective, meetings and resolutions overdue
              "coverage_gaps"),                        # grids with members and no branch
}
# The services whose timers' rounds the rebuild runs again (``rt.timer(..., replays=...)`` in
# services/<svc>/app/main.py): of their timers' events, only those no topic holds are left out.
REPLAYED_TIMERS = frozenset({"grid", "orders", "points", "party", "assessment"})
# Tables only timers write: left out whole.
TIMER_ONLY: dict[str, dict[str, str]] = {
    "assessment": {"timer_marks": "how far the close timer has looked"},
}


def _agreeing(kept: str, counted: str) -> str:
    """A query standing for a table kept beside another (``kept``: its rows; ``counted``: the
    same rows computed from the other table): the rows where the two disagree, either way;
    none, on either side, when its trigger kept it."""
    return (f"SELECT 'kept' AS side, * FROM ({kept} EXCEPT {counted}) AS k "
            f"UNION ALL SELECT 'counted', * FROM ({counted} EXCEPT {kept}) AS c")


def _counts(counts: str, table: str, keys: str) -> str:
    """:func:`_agreeing` for counts of ``table``'s rows by ``keys``."""
    return _agreeing(f"SELECT {keys}, n FROM {{schema}}.{counts}",
                     f"SELECT {keys}, count(*) AS n FROM {{schema}}.{table} GROUP BY {keys}")


# Tables kept beside a table that timers write: the timers' rows are left out of the table, but
# not out of what is kept of them. So such a table is compared as its disagreement with
# computing it from its table, on each side (the table itself is compared row for row, but for
# what timers did).
KEPT_COUNTS: dict[str, dict[str, str | None]] = {
    "grid": {"case_tallies": _agreeing("SELECT * FROM {schema}.case_tallies",
                                       "SELECT * FROM {schema}.case_tallies_counted"),
             "whistle_tallies": _agreeing("SELECT * FROM {schema}.whistle_tallies",
                                          "SELECT * FROM {schema}.whistle_tallies_counted")},
    "orders": {"order_counts": _counts("order_counts", "orders", "community_id, status, grid_id")},
    "points": {"account_counts": _agreeing("SELECT kind, community_id, n FROM {schema}.account_counts",
                                           "SELECT kind, coalesce(community_id, ''), count(*) FROM {schema}.accounts "
                                           "GROUP BY 1, 2")},
    "assessment": {"alert_counts": _counts("alert_counts", "alerts", "period, scheme_id, entity_type, indicator")},
    "party": {"org_life_counts": _counts("org_life_counts", "org_life_log", "org_id, kind, held")},
}

# What an event is about, table by table: its subject (``"subject"``) and fields of its data.
# By default (``"*"``) its subject: a case, an order, an organisation. A period's close is about
# every card of the period. A posting is about its own row (``transfer_id``: its subject is an
# account, whose other postings the rebuild does give back) and about the balances of both its
# accounts (an expiry credits the issuer, whose every award names it too).
ABOUT: dict[str, dict[str, tuple[str, ...]]] = {
    "assessment": {"*": ("subject", "period")},
    "points": {"*": ("subject",), "postings": ("transfer_id",), "earnings": ("transfer_id",),
               "accounts": ("debit_account", "credit_account", "subject")},
}


def about(service: str, events: Iterable[dict[str, str]], table: str) -> set[str]:
    """The ids that ``events`` (what :func:`not_from_input` gives) are about in ``table``."""
    fields = ABOUT.get(service, {}).get(table) or ABOUT.get(service, {}).get("*") or ("subject",)
    return {v for e in events for f in fields if (v := e.get(f))}


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def worker_env(var: Path, service: str, launched: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``service``'s workers ran with: the one the launcher was started in
    (``launched``, else this process's) and what the launcher gave them (``run/<svc>.env``)."""
    return {**(os.environ if launched is None else launched), **env_file(var / "run" / f"{service}.env")}


async def copy_database(admin: str, name: str = COPY, timeout: float = 60.0) -> str:
    """A copy of ``admin``'s database as ``name`` (dropped first if it exists); its URL. The
    source must have no other session: the workers' last ones may take a moment to end."""
    source = urlsplit(admin).path.lstrip("/") or "postgres"
    conn = await asyncpg.connect(with_database(admin, "template1"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        deadline = time.monotonic() + timeout
        while True:
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
                return with_database(admin, name)
            except asyncpg.ObjectInUseError:
                if time.monotonic() > deadline:
                    who = await conn.fetch("SELECT application_name, state FROM pg_stat_activity WHERE datname = $1",
                                           source)
                    raise RuntimeError(f"{source} still has sessions after {timeout:.0f} s: "
                                       f"{[tuple(r) for r in who]}") from None
                await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def drop_database(admin: str, name: str = COPY) -> None:
    conn = await asyncpg.connect(with_database(admin, "template1"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def rebuild(service: str, env: dict[str, str], copy: str, timeout: float = 600) -> dict:
    """Rebuild ``service`` in database ``copy`` (the URLs of ``env``, the workers' own settings,
    naming it instead); its outcome line, or ``{"error": ...}``."""
    env = {k: with_database(v, copy) if k in ("DATABASE_URL", "MIGRATION_DATABASE_URL") and v else v
           for k, v in env.items()}
    started = time.monotonic()
    try:
        proc = await asyncio.to_thread(run_rebuild, service, env, "--handled-only", timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no outcome within {timeout:.0f} s"}
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-1500:]}"}
    outcome = json.loads(lines[-1])
    outcome["wall_seconds"] = round(time.monotonic() - started, 1)
    return outcome


def input_ids(service: str, raw: dict[str, list]) -> set[str]:
    """The ids of the messages on ``service``'s input topics."""
    from .check import envelope

    ids: set[str] = set()
    for topic in CONSUMES[service]:
        for r in raw.get(topic.name, ()):
            e = envelope(r.value)
            if e is not None:
                ids.add(e["id"])
    return ids


def not_from_input(service: str, raw: dict[str, list]) -> tuple[list[dict[str, str]], list[dict[str, str]], Counter]:
    """``service``'s events that no message on its input topics caused: its timers' (no
    ``causationid``) and those of the commands sent to it over HTTP (a command on no topic), each
    as what it names (its subject, and its data's string fields: :func:`about` says which name
    rows of a table); and how many such events of each kind there were."""
    from .check import envelope

    inputs = input_ids(service, raw)
    timers: list[dict[str, str]] = []
    http: list[dict[str, str]] = []
    kinds: Counter = Counter()
    for r in raw.get(f"{service}.events.v1", ()):
        e = envelope(r.value)
        if e is None:
            continue
        cause = e.get("causationid")
        if cause is not None and cause in inputs:
            continue
        kinds["timer" if cause is None else "http"] += 1
        subject = e.get("subject") if isinstance(e.get("subject"), str) else (r.key or b"").decode(errors="replace")
        data = e.get("data") if isinstance(e.get("data"), dict) else {}
        names = {k: v for k, v in data.items() if isinstance(v, str) and v}
        if subject:
            names["subject"] = subject
        (timers if cause is None else http).append(names)
    return timers, http, kinds


def leave_out_events(service: str, snap: Snapshot, events: list[dict[str, str]],
                     tables: Iterable[str] | None = None) -> Counter:
    """:func:`leave_out`, in each table (of ``tables``, else every table), the rows that
    ``events`` are about there (:func:`about`)."""
    dropped: Counter = Counter()
    for table in (list(snap.rows) if tables is None else tables):
        dropped += leave_out(snap, about(service, events, table), (table,))
    return dropped


def http_commands(snap: Snapshot, inputs: set[str]) -> set[str]:
    """The ids in the inbox of ``snap`` that are on no input topic: commands sent over HTTP (an
    undecodable record's inbox key, ``kafka:<topic>:<partition>``, is on the topic)."""
    columns = snap.columns.get("inbox", [])
    if "source" not in columns or "id" not in columns:
        return set()
    source, id_ = columns.index("source"), columns.index("id")
    return {row[id_] for row in snap.rows["inbox"] if not row[source].startswith("kafka:")} - inputs


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def leave_out(snap: Snapshot, ids: set[str], tables: Iterable[str] | None = None) -> Counter:
    """Drop from ``snap`` (from ``tables``, else from every table) each row that names one of
    ``ids``: a column equal to it, or a string equal to it in a column's JSON; how many were
    dropped, by table."""
    dropped: Counter = Counter()
    if not ids:
        return dropped
    for table in (snap.rows if tables is None else [t for t in tables if t in snap.rows]):
        keep = Counter()
        for row, n in snap.rows[table].items():
            if any(v is not None and (v in ids or (v[:1] in "[{" and not ids.isdisjoint(_QUOTED.findall(v))))
                   for v in row):
                dropped[table] += n
            else:
                keep[row] = n
        snap.rows[table] = keep
    return +dropped


async def empty_outboxes(copy: str, services: Sequence[str]) -> dict[str, list[SimpleNamespace]]:
    """Empty the copy's outboxes (a rebuild refuses to drop records not yet published) and give
    the records of its events topic each held, as records of that topic: events the workers'
    relays had not published when they stopped (a timer's close a moment before), which no
    other service has seen (the next worker would publish them)."""
    conn = await asyncpg.connect(copy)
    try:
        left = {}
        for s in services:
            rows = await conn.fetch(f'DELETE FROM "{s}".outbox RETURNING topic, key, value')
            if rows:
                left[s] = [SimpleNamespace(key=r["key"], value=bytes(r["value"]))  # the key: bytea, as sent
                           for r in rows if r["topic"] == f"{s}.events.v1"]
        return left
    finally:
        await conn.close()


async def compare(var: Path, admin: str, raw: dict[str, list], services: Sequence[str] = SERVICES,
                  parallel: int = 2, launched: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Copy, rebuild and compare (the module's doc): the figures and the failed checks.
    ``launched``: the environment the launcher was started with (else this process's), to which
    ``run/<svc>.env`` adds what the launcher gave the workers."""
    started = time.monotonic()
    failed: list[str] = []
    envs = {s: worker_env(var, s, launched) for s in services}
    per: dict[str, Any] = {}
    copy = await copy_database(admin)
    figures: dict[str, Any] = {"copy_seconds": round(time.monotonic() - started, 1)}
    try:
        unpublished = await empty_outboxes(copy, services)
        figures["unpublished"] = {s: len(v) for s, v in unpublished.items()}
        gate = asyncio.Semaphore(parallel)

        async def one(s: str) -> dict:
            async with gate:
                return await rebuild(s, envs[s], COPY)

        outcomes = dict(zip(services, await asyncio.gather(*(one(s) for s in services))))
        figures["rebuild_seconds"] = round(time.monotonic() - started - figures["copy_seconds"], 1)
        compared = time.monotonic()
        for s in services:
            o = outcomes[s]
            if "error" in o:
                failed.append(f"rebuild of {s} failed: {o['error']}")
                per[s] = {"error": o["error"][:200]}
                continue
            only = TIMER_ONLY.get(s, {})
            kept = KEPT_COUNTS.get(s)
            live, rebuilt = (await snapshot(admin, s, skip_tables=only, views=kept),
                             await snapshot(copy, s, skip_tables=only, views=kept))
            events = f"{s}.events.v1"  # with what the relay had not published: the topic as it would be
            timers, http, kinds = not_from_input(s, {**raw, events: [*raw.get(events, ()), *unpublished.get(s, ())]})
            if s in REPLAYED_TIMERS:  # the rounds on the topic are rebuilt: only the unpublished ones are not
                timers = not_from_input(s, {events: list(unpublished.get(s, ()))})[0]
            commands = http_commands(live, input_ids(s, raw))
            kinds["http_commands"] = len(commands)
            excluded = (leave_out_events(s, live, timers, TIMER_TABLES.get(s, ())) + leave_out_events(s, live, http)
                        + leave_out(live, commands, ("inbox",)))
            if live.rows.get("outbox"):  # those records, emptied from the copy before its rebuild
                excluded["outbox"] = sum(live.rows["outbox"].values())
                live.rows["outbox"] = Counter()
            leave_out_events(s, rebuilt, timers, TIMER_TABLES.get(s, ()))
            leave_out_events(s, rebuilt, http)
            diffs = differences(live, rebuilt)
            per[s] = {"records": o.get("records"), "seconds": o.get("wall_seconds"),
                      "rows_compared": sum(sum(c.values()) for c in live.rows.values()),
                      "not_from_input": dict(kinds), "excluded": dict(excluded),
                      "differing": {d.table: d.count for d in diffs},
                      # what the replay refused and did not publish again (dead letters included)
                      "rejected": o.get("rejected") or {}, "not_published_again": o.get("not_published_again") or {}}
            if diffs:
                failed.append(f"{s}: the projection differs from its rebuild in {len(diffs)} table(s): "
                              + json.dumps([d.sample(2) for d in diffs[:4]], ensure_ascii=False, default=str)[:3000])
                per[s]["evidence"] = str(keep_evidence(var, s, raw, diffs))
        figures["services"] = per
        figures["compare_seconds"] = round(time.monotonic() - compared, 1)
    finally:
        if any(per.get(s, {}).get("evidence") for s in services):
            figures["rebuilt_database_kept"] = COPY  # to look into (the next campaign drops it)
        else:
            await drop_database(admin)
    return figures, failed


def keep_evidence(var: Path, service: str, raw: dict[str, list], diffs) -> Path:
    """What a difference is looked into with, once the broker (memory only) is gone: every
    record of ``service``'s input topics and events topic as read for the check, one JSON line
    each, and every differing row; the rebuilt copy of the database is kept beside the live one."""
    out = var / "rebuild-evidence" / f"{service}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for d in diffs:
            f.write(json.dumps({"table": d.table, "only_live": d.only_live, "only_rebuilt": d.only_rebuilt},
                               ensure_ascii=False, default=str) + "\n")
        for topic in [*(t.name for t in CONSUMES[service]), f"{service}.events.v1"]:
            for r in raw.get(topic, ()):
                f.write(json.dumps({"topic": topic, "partition": r.partition, "offset": r.offset,
                                    "timestamp": r.timestamp, "key": (r.key or b"").decode("utf-8", "replace"),
                                    "value": (r.value or b"").decode("utf-8", "replace")}, ensure_ascii=False) + "\n")
    return out


async def check(var: Path, admin: str, bootstrap: str,
                launched: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read the input and events topics (now that no worker writes), then :func:`compare`."""
    from tests.support.kafka import read_topic

    started = time.monotonic()
    names = sorted({t.name for ts in CONSUMES.values() for t in ts} | {f"{s}.events.v1" for s in SERVICES})
    raw = dict(zip(names, await asyncio.gather(*(read_topic(bootstrap, t) for t in names))))
    read = time.monotonic() - started
    figures, failed = await compare(var, admin, raw, launched=launched)
    figures["read_seconds"] = round(read, 1)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures, failed


async def _main(var: Path) -> int:
    """``python -m tests.chaos.rebuilt <var dir>``: the comparison on a district whose workers
    are stopped and whose broker and database run (as the campaign leaves them)."""
    api = env_file(var / "run" / "api.env")
    figures, failed = await check(var, api["DATABASE_URL"], api["KAFKA_BOOTSTRAP_SERVERS"])
    print(json.dumps({"figures": figures, "failed": failed}, ensure_ascii=False, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "chaos")))
