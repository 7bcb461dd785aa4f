"""A projection compared with its rebuild, row for row: what the rebuild tests of every service
and the fault campaign's check (``tests/chaos/rebuilt.py``) share.

:func:`snapshot` reads every table of a service's schema as a multiset of rows, less what a
rebuild cannot give back by design, each with its reason below: the columns that hold
wall-clock times (:data:`WALL_CLOCK`), the aggregate store's save counts (:data:`SAVE_COUNTS`),
the tables no topic holds (:data:`NOT_REBUILT`); a ``bigserial`` is compared as a rank within
its aggregate (:data:`ORDINALS`), and some tables through a query (:data:`VIEWS`).
:func:`differences` says, table by table, which rows are on one side only, pairing those with
the same primary key to name the columns that differ.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import asyncpg

from tests.support.kafka import send
from tests.support.procs import ROOT

# Columns that hold the wall-clock time at which a row was written (``DEFAULT now()``, or
# ``now()`` in the statement), not a time of the history: a rebuild writes them again at its
# own time. Every other column must come out equal. The kit's tables, in every schema:
KIT_WALL_CLOCK: dict[str, set[str]] = {
    "inbox": {"processed_at"},              # when the message was first handled
    "schema_migrations": {"applied_at"},    # when the migration ran
    "aggregates": {"updated_at", "version"},  # when the snapshot was last written; its saves (SAVE_COUNTS)
    "command_outcomes": {"recorded_at"},
    # erased_at: when; origin: which service's announcement came first, when several services
    # announce one person's erasure at the same moment on different partitions (the lanes handle
    # them concurrently, a replay in one order): the person, the pseudonym and what was
    # replaced are compared
    "erasures": {"erased_at", "origin"},
    "outbox": {"created_at", "seq"},        # empty on both sides once the relay has drained it
}
# and each service's own (schema -> table -> columns):
WALL_CLOCK: dict[str, dict[str, set[str]]] = {
    "grid": {                               # the aggregate store's now() at each save
        "case_state": {"updated_at"}, "whistles": {"updated_at"},
    },
    "orders": {                             # the aggregate store's now() at each save
        "orders": {"updated_at"}, "members": {"updated_at"}, "posts": {"updated_at"},
        "order_history": {"recorded_at"},   # DEFAULT now() (each entry's event has its time)
    },
    "party": {                              # the aggregate store's now() at each save
        "orgs": {"updated_at"}, "councils": {"updated_at"}, "units": {"updated_at"}, "projects": {"updated_at"},
        "org_life": {"updated_at"}, "commitments": {"updated_at"}, "member_follow_ups": {"updated_at"},
        "org_history": {"recorded_at"},     # DEFAULT now() (each entry's event has its time)
    },
    "assessment": {
        "event_log": {"recorded_at"},       # DEFAULT now(): when the fact was recorded (its retention's clock)
        "schemes": {"recorded_at"},         # DEFAULT now()
        "fold_mark": {"token"},             # a random token each fold leaves (a cache's validity)
    },
    "points": {
        "accounts": {"updated_at"},         # now() of the ledger's trigger at each posting
        "postings": {"recorded_at"},        # DEFAULT now() (posted_at is the history's time)
        "deeds": {"updated_at"},            # the aggregate store's now() at each save
        "grid_reports": {"updated_at"},     # now() at each change
    },
}

KEPT_ANSWERS = ("answer", "summary")
"""The columns of a row's kept answers (the kit's ``kit_keep_answers_on``, a case's two views): their
JSON holds the row's fields, and is compared without those of the columns left out of the row (an
order's updated_at)."""


def _literal_texts(values: Iterable[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


# The version of a state kept by the kit's aggregate store (``services/kit/aggregates.py``)
# counts its saves, one per batch that changed it, not its events. A replay groups messages
# into batches by size, not as the worker's batches were (so a state changed by several of the
# worker's batches may be saved once). Its content must come out equal.
SAVE_COUNTS: dict[str, dict[str, set[str]]] = {
    "grid": {"case_state": {"version"}, "whistles": {"version"}},
    "orders": {"orders": {"version"}, "members": {"version"}, "posts": {"version"}},
    "party": {t: {"version"} for t in ("orgs", "councils", "units", "projects", "org_life", "commitments",
                                        "member_follow_ups")},
    "points": {"deeds": {"version"}},
}

# Tables whose rows no input topic holds: a rebuild leaves them empty, by design. The kit's,
# in every schema:
KIT_NOT_REBUILT: dict[str, str] = {
    # what each command sent over HTTP (POST /v1/commands) produced, to answer it again
    "command_outcomes": "made over HTTP",
}
# and each service's own (schema -> table -> why):
NOT_REBUILT: dict[str, dict[str, str]] = {
    "points": {
        # residents' consent codes, made over HTTP (POST /v1/redemption-codes) and valid for
        # minutes: a replayed redemption that was posted live is not asked for its code again
        "redemption_codes": "made over HTTP",
    },
}


@dataclass(frozen=True)
class Ordinal:
    """A ``bigserial`` column that numbers rows in the order they were written. The worker's
    lanes handle partitions concurrently, so across two aggregates that order is the order in
    which transactions happened to write, which no replay repeats; within one aggregate (one
    partition key) it is the order of its history, and must come out equal. Compared as each
    row's rank within each group of ``within`` (none: not compared); ``key`` identifies a row
    instead."""
    column: str
    within: tuple[tuple[str, ...], ...]
    key: tuple[str, ...]
    order_by: tuple[str, ...] = ()  # what the rank follows (default: the column itself)


ORDINALS: dict[str, dict[str, Ordinal]] = {
    "orders": {"order_history": Ordinal("seq", (("order_id",),), ("event_id",))},
    "party": {"org_history": Ordinal("seq", (("org_id",),), ("event_id",))},
    # A case's history in the order its events happened. Two messages of different partitions
    # that change one case in the same instant (a department accepts it while a report on
    # another case links it as a duplicate) are decided in concurrent lanes; the one whose
    # commit lost the version race is decided again after the other and takes the next version,
    # keeping its time, which a replay in time order numbers the other way round.
    "grid": {"case_history": Ordinal("seq", (("case_id",),), ("event_id",), ("occurred_at", "seq"))},
    # Not even within an account: an account takes postings from messages of every partition
    # (an issuer pays every award of its community), which the lanes handle concurrently.
    "points": {"postings": Ordinal("seq", (), ("transfer_id",))},
}

_P = 2305843009213693951  # the ledger's modulus (services/points/migrations/007_ledger_totals.sql)
# Tables compared through a query instead of as they are (schema -> table -> query, or None to
# leave the table out because the query of another stands for it).
VIEWS: dict[str, dict[str, str | None]] = {
    "points": {
        # The running totals plus the deltas the fold timer has not folded yet: how the work is
        # split between the two tables depends on when the timer ran; their sum does not (the
        # times of the fold and of the last full check are the timer's and a caller's). The count
        # of accounts is left to the accounts table, compared row for row: an account opened over
        # HTTP is on no topic, and the comparison leaves its row out but could not take it out
        # of a total.
        "ledger_totals": "SELECT " + ", ".join(
            f"((t.{c} + d.{c}) % {_P} + {_P}) % {_P} AS {c}" if c in ("digests", "moves", "balances", "states")
            else f"t.{c} + d.{c} AS {c}"
            for c in ("postings", "amount", "digests", "moves", "balance_total", "balances", "states"))
        + " FROM {schema}.ledger_totals t, (SELECT "
        + ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in ("postings", "amount", "digests", "moves", "accounts",
                                                             "balance_total", "balances", "states"))
        + " FROM {schema}.ledger_deltas) d",
        "ledger_deltas": None,
    },
}


@dataclass
class TableDiff:
    table: str
    only_live: list[tuple] = field(default_factory=list)      # rows the live projection has and the rebuild not
    only_rebuilt: list[tuple] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # same key, columns that differ
    columns: list[str] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)  # positions of the primary key in ``columns``

    @property
    def count(self) -> int:
        return len(self.only_live) + len(self.only_rebuilt)

    def sample(self, n: int = 3) -> dict[str, Any]:
        """A few differing rows: the changed ones column by column, the others as they are."""
        out: dict[str, Any] = {"table": self.table, "only_live": len(self.only_live),
                               "only_rebuilt": len(self.only_rebuilt)}
        if self.changed:
            out["changed"] = self.changed[:n]
        paired = {c["key"] for c in self.changed}
        lone_live = [dict(zip(self.columns, r)) for r in self.only_live if self.key(r) not in paired][:n]
        lone_rebuilt = [dict(zip(self.columns, r)) for r in self.only_rebuilt if self.key(r) not in paired][:n]
        if lone_live:
            out["live_only_rows"] = lone_live
        if lone_rebuilt:
            out["rebuilt_only_rows"] = lone_rebuilt
        return out

    def key(self, row: tuple) -> tuple:
        return tuple(row[i] for i in self.keys) if self.keys else row


@dataclass
class Snapshot:
    """Every compared table of a schema: its columns, the positions of its primary key in them,
    and its rows (as text) counted."""
    schema: str
    columns: dict[str, list[str]] = field(default_factory=dict)
    keys: dict[str, list[int]] = field(default_factory=dict)
    rows: dict[str, Counter] = field(default_factory=dict)


async def snapshot(dsn: str, schema: str, *, skip_columns: Mapping[str, Iterable[str]] | None = None,
                   skip_tables: Iterable[str] = (), views: Mapping[str, str] | None = None) -> Snapshot:
    """Every base table of ``schema`` at ``dsn`` but ``skip_tables``, without the
    :data:`WALL_CLOCK` columns and ``skip_columns`` (table -> columns). ``views``: table -> a
    query that stands for the table (its columns are the query's), e.g. running totals with the
    deltas not yet folded into them added."""
    skip = {t: set(c) for t, c in KIT_WALL_CLOCK.items()}
    for t, cols in [*WALL_CLOCK.get(schema, {}).items(), *SAVE_COUNTS.get(schema, {}).items()]:
        skip.setdefault(t, set()).update(cols)
    for t, cols in (skip_columns or {}).items():
        skip.setdefault(t, set()).update(cols)
    views = {**VIEWS.get(schema, {}), **(views or {})}
    skip_tables = {*skip_tables, *KIT_NOT_REBUILT, *NOT_REBUILT.get(schema, {})}
    conn = await asyncpg.connect(dsn)
    try:
        snap = Snapshot(schema)
        tables = [r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' "
            "ORDER BY 1", schema)]
        skipped = set(skip_tables)
        for t in tables:
            if t in skipped:
                continue
            if t in views:
                if views[t] is None:
                    continue
                stmt = await conn.prepare(views[t].format(schema=_ident(schema)))
                cols = [a.name for a in stmt.get_attributes()]
                rows = await stmt.fetch()
                key_names: list[str] = []
            else:
                cols = [r[0] for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
                    "ORDER BY ordinal_position", schema, t) if r[0] not in skip.get(t, ())]
                key_names = [r[0] for r in await conn.fetch(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass AND i.indisprimary",
                    f"{_ident(schema)}.{_ident(t)}")]
                if not cols:
                    continue
                exprs = [_ident(c) for c in cols]
                for kept in (c for c in KEPT_ANSWERS if c in cols and skip.get(t)):  # without the skipped fields
                    exprs[cols.index(kept)] = f"({_ident(kept)}::jsonb - {_literal_texts(sorted(skip[t]))})::text"
                ordinal = ORDINALS.get(schema, {}).get(t)
                if ordinal is not None and ordinal.column in cols:
                    i = cols.index(ordinal.column)
                    del cols[i], exprs[i]
                    for group in ordinal.within:
                        cols.append(f"{ordinal.column} within {', '.join(group)}")
                        exprs.append(f"row_number() OVER (PARTITION BY {', '.join(_ident(g) for g in group)} "
                                     f"ORDER BY {', '.join(_ident(c) for c in ordinal.order_by or (ordinal.column,))})")
                    key_names = list(ordinal.key)
                rows = await conn.fetch(f"SELECT {', '.join(exprs)} FROM {_ident(schema)}.{_ident(t)}")
            snap.columns[t] = cols
            snap.keys[t] = [cols.index(k) for k in key_names if k in cols]
            snap.rows[t] = Counter(tuple(None if v is None else str(v) for v in r.values()) for r in rows)
        return snap
    finally:
        await conn.close()


def differences(live: Snapshot, rebuilt: Snapshot) -> list[TableDiff]:
    """The tables whose rows differ (a table missing on one side counts as empty there)."""
    out = []
    for t in sorted(set(live.rows) | set(rebuilt.rows)):
        a, b = live.rows.get(t, Counter()), rebuilt.rows.get(t, Counter())
        if a == b:
            continue
        d = TableDiff(t, sorted((a - b).elements(), key=_sortable), sorted((b - a).elements(), key=_sortable),
                      columns=live.columns.get(t) or rebuilt.columns.get(t) or [],
                      keys=live.keys.get(t) or rebuilt.keys.get(t) or [])
        if d.keys:
            theirs = {d.key(r): r for r in d.only_rebuilt}
            for r in d.only_live:
                k = d.key(r)
                other = theirs.get(k)
                if other is not None:
                    d.changed.append({"key": k, **{c: {"live": x, "rebuilt": y}
                                                   for c, x, y in zip(d.columns, r, other) if x != y}})
        out.append(d)
    return out


def describe(diffs: list[TableDiff], n: int = 3) -> list[dict[str, Any]]:
    return [d.sample(n) for d in diffs]


def _sortable(row: tuple) -> tuple:
    return tuple("" if v is None else v for v in row)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def live_and_rebuilt(dsn: str, service: str, env: Mapping[str, str]) -> tuple["Snapshot", "Snapshot"]:
    """The stopped worker's projection, then the same schema after a rebuild (which must succeed)."""
    live = await snapshot(dsn, service)
    done = await asyncio.to_thread(run_rebuild, service, env)
    assert done.returncode == 0, done.stderr[-4000:]
    return live, await snapshot(dsn, service)


def run_rebuild(service: str, env: Mapping[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m services.<service>.app rebuild --no-progress [args]`` with ``env`` (the worker's,
    without its HTTP settings)."""
    prefix = f"{service.upper()}_HTTP"
    env = {k: v for k, v in env.items() if not k.startswith(prefix)}
    return subprocess.run([sys.executable, "-m", f"services.{service}.app", "rebuild", "--no-progress", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


async def outbox_drained(dsn: str, schema: str, *, timeout: float = 30.0) -> None:
    """Wait until ``schema``'s outbox is empty (the relay published everything)."""
    conn = await asyncpg.connect(dsn)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await conn.fetchval(f"SELECT count(*) FROM {_ident(schema)}.outbox"):
            if loop.time() > deadline:
                raise AssertionError(f"{schema}: the outbox was not drained in {timeout:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


class Phases:
    """A worker fed phase by phase: ``await phase(topic, *envelopes)`` sends them and returns once
    the worker has handled everything sent so far (so that the next phase sees it);
    :meth:`handled` waits for undecodable records as well."""

    def __init__(self, bootstrap: str, dsn: str, schema: str):
        self.bootstrap, self.dsn, self.schema = bootstrap, dsn, schema
        self.sent: list[str] = []

    async def __call__(self, topic: str, *envelopes, token: str | None = None, positions: int = 0) -> None:
        await send(self.bootstrap, topic, *envelopes, token=token)
        self.sent.extend(e.id for e in envelopes)
        await self.handled(positions=positions)

    async def handled(self, *, positions: int = 0) -> None:
        await handled(self.dsn, self.schema, self.sent, positions=positions)


async def handled(dsn: str, schema: str, ids: Iterable[str], *, positions: int = 0, timeout: float = 60.0) -> None:
    """Wait until the worker of ``schema`` has handled every message of ``ids`` (they are in its
    inbox) and ``positions`` undecodable records (their inbox keys are their positions), then
    until its outbox is drained."""
    ids = sorted(set(ids))
    conn = await asyncpg.connect(dsn)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = await conn.fetchval(f"SELECT count(DISTINCT id) FROM {_ident(schema)}.inbox WHERE id = ANY($1::text[])",
                                       ids)
            odd = await conn.fetchval(f"SELECT count(*) FROM {_ident(schema)}.inbox WHERE source LIKE 'kafka:%'")
            if seen == len(ids) and odd >= positions:
                break
            if loop.time() > deadline:
                raise AssertionError(f"{schema}: {seen} of {len(ids)} messages and {odd} of {positions} "
                                     f"undecodable records handled after {timeout:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    await outbox_drained(dsn, schema, timeout=timeout)


def report(diffs: list[TableDiff], n: int = 3) -> str:
    """The differences as indented JSON text (for an assertion's message)."""
    return "rebuilt projection differs:\n" + json.dumps(describe(diffs, n), indent=1, ensure_ascii=False, default=str)
