"""The assessment projection in PostgreSQL: the event log, the counters and refs folded from it
as events arrive, schemes, published scorecards and alerts, period closes. asyncpg functions only; every query of the service lives here.

All functions take the connection of the caller's transaction (``uow.conn``) or a pooled one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import asyncpg

from schemas.assessment import AlertRaised, ScorecardPublished
from services.assessment.domain import Scheme
from services.assessment.domain.facts.core import FactTable
from services.assessment.domain.facts.refs import Ref, ref_from_json
from services.assessment.domain.history import StoredEvent, log_data, stored_event
from services.assessment.domain.incremental import Deltas, Undo
from services.kit.identity import Scope
from services.kit.sql import Keyset, Paged, Where, answered, bulk, kept_answer

# -- event log ------------------------------------------------------------------------------


def _logged(e: StoredEvent) -> dict[str, Any]:
    """What the log keeps of an event's data (:func:`~services.assessment.domain.history.log_data`)."""
    return log_data(type(e.payload), e.raw if e.raw is not None else e.payload.model_dump(mode="json"))


async def record_events(conn: asyncpg.Connection, events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """Append events to the log (each ``data`` as received, else its payload's JSON, without
    its personal free text, places, media and names, and the identifiers no rule reads:
    :func:`~services.assessment.domain.history.log_data`); return
    those that were new (a repeated (source, id) is skipped)."""
    if not events:
        return []
    rows = await conn.fetch(
        """INSERT INTO event_log (source, id, topic, type, data, time, occurred_at, type_rank)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
                                $6::timestamptz[], $7::timestamptz[], $8::int[])
           ON CONFLICT (source, id) DO NOTHING RETURNING source, id""",
        [e.source for e in events], [e.id for e in events], [e.topic for e in events], [e.type for e in events],
        [_logged(e) for e in events],
        [e.time for e in events], [e.occurred_at for e in events], [e.rank for e in events])
    new = {(r["source"], r["id"]) for r in rows}
    return [e for e in events if (e.source, e.id) in new]


async def unrecorded(conn: asyncpg.Connection, events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """Those of ``events`` the log does not hold yet (each (source, id) once, the first)."""
    first: dict[tuple[str, str], StoredEvent] = {}
    for e in events:
        first.setdefault((e.source, e.id), e)
    if not first:
        return []
    rows = await conn.fetch(
        "SELECT l.source, l.id FROM event_log l JOIN jsonb_array_elements($1::text::jsonb) AS k(key) "
        "ON (l.source, l.id) = (k.key->>0, k.key->>1)", bulk(list(first)))
    for r in rows:
        first.pop((r["source"], r["id"]), None)
    return list(first.values())


_LOG_COLUMNS = ("source", "id", "topic", "type", "data", "time", "occurred_at", "type_rank", "undo")


async def record_folded(conn: asyncpg.Connection, events: Sequence[StoredEvent],
                        undos: Mapping[tuple[str, str], Undo]) -> None:
    """Append events not in the log yet (:func:`unrecorded`, under the fold's lock) with the undo
    their fold gave them: each row written once. Their data as :func:`record_events` keeps it."""
    if not events:
        return
    # COPY, not INSERT ... ON CONFLICT: the rows are new (the fold's lock is held since they were
    # found unrecorded), and PostgreSQL writes a COPY's rows and index entries in bulk, at about a
    # third of the cost of an insert of the same rows from one JSON parameter (a rebuild of
    # assessment writes every event it reads here). A row recorded meanwhile all the same stops
    # the COPY with a unique violation: a conflict, on which the consumer retries the batch.
    await conn.copy_records_to_table(
        "event_log", columns=_LOG_COLUMNS,
        records=[(e.source, e.id, e.topic, e.type, _logged(e), e.time, e.occurred_at, e.rank,
                  _undo_json(undos[(e.source, e.id)])) for e in events])


async def load_history(conn: asyncpg.Connection) -> list[StoredEvent]:
    """The whole log in replay order (event time, lifecycle rank, source, id), each row decoded
    into its payload class."""
    rows = await conn.fetch(
        "SELECT source, id, topic, type, data, time FROM event_log ORDER BY occurred_at, type_rank, source, id")
    return [stored_event(r["source"], r["id"], r["topic"], r["type"], r["data"], r["time"]) for r in rows]


# -- the incremental fold: counters, refs, undo ---------------------------------------------


def _undo_json(undo: Undo) -> list:
    return [[k, i, None if r is None else r.model_dump(mode="json")] for (k, i), r in undo]


def _undo_of(data: list | None) -> Undo:
    return tuple(((k, i), None if d is None else ref_from_json(k, d)) for k, i, d in (data or ()))


def _event_of(r: asyncpg.Record) -> StoredEvent:
    return stored_event(r["source"], r["id"], r["topic"], r["type"], r["data"], r["time"])


TAIL_PAGE = 2000
"""Rows of the tail read per query (:func:`folded_after`)."""


async def folded_after(conn: asyncpg.Connection, key: tuple) -> list[tuple[StoredEvent, Undo]]:
    """The folded events after ``key`` (occurred_at, type_rank, source, id) in replay order, with
    their undo: the tail a late event unwinds."""
    # Read in pages: with a LIMIT the planner walks the folded rows' index from the key, which
    # finds the (usually empty) tail at once. Without one, statistics taken while a log is being
    # folded (the earlier rows folded, the later not) make it guess a large tail, and it scans
    # and sorts the whole log instead.
    out: list[tuple[StoredEvent, Undo]] = []
    while True:
        rows = await conn.fetch(
            "SELECT source, id, topic, type, data, time, undo, occurred_at, type_rank FROM event_log "
            "WHERE (occurred_at, type_rank, source, id) > ($1, $2, $3, $4) AND undo IS NOT NULL "
            "ORDER BY occurred_at, type_rank, source, id LIMIT $5", *key, TAIL_PAGE)
        out += [(_event_of(r), _undo_of(r["undo"])) for r in rows]
        if len(rows) < TAIL_PAGE:
            return out
        last = rows[-1]
        key = (last["occurred_at"], last["type_rank"], last["source"], last["id"])


async def unfolded(conn: asyncpg.Connection, limit: int,
                   after: tuple | None = None) -> tuple[list[StoredEvent], tuple | None]:
    """The oldest ``limit`` rows of the log not folded yet (recorded before the counters were
    kept, or emptied to be folded again), and the replay key (occurred_at, type_rank, source,
    id) of the last of them (None: there are none); ``after`` such a key: only those after it.
    A fold that goes on from the last key it folded starts its index scan there: from the start,
    the scan would step over the entries of every row folded so far (each row folded leaves its
    unfolded version behind until a vacuum)."""
    if after is None:
        rows = await conn.fetch(
            "SELECT source, id, topic, type, data, time, occurred_at, type_rank FROM event_log WHERE undo IS NULL "
            "ORDER BY occurred_at, type_rank, source, id LIMIT $1", limit)
    else:
        rows = await conn.fetch(
            "SELECT source, id, topic, type, data, time, occurred_at, type_rank FROM event_log WHERE undo IS NULL "
            "AND (occurred_at, type_rank, source, id) > ($2, $3, $4, $5) "
            "ORDER BY occurred_at, type_rank, source, id LIMIT $1", limit, *after)
    last = (rows[-1]["occurred_at"], rows[-1]["type_rank"], rows[-1]["source"], rows[-1]["id"]) if rows else None
    return [_event_of(r) for r in rows], last


async def load_refs(conn: asyncpg.Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Ref]:
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch("SELECT r.kind, r.ref_id, r.data FROM refs r JOIN unnest($1::text[], $2::text[]) "
                            "AS k(kind, ref_id) USING (kind, ref_id)", [k for k, _ in keys], [i for _, i in keys])
    return {(r["kind"], r["ref_id"]): ref_from_json(r["kind"], r["data"]) for r in rows}


async def fold_token(conn: asyncpg.Connection) -> str:
    """The token in the fold's mark."""
    return await conn.fetchval("SELECT token FROM fold_mark")


async def leave_fold_token(conn: asyncpg.Connection, token: str, found: str) -> bool:
    """Put ``token`` in the fold's mark if nothing but this transaction has changed the refs since
    the mark held ``found``; whether it did."""
    return await conn.fetchval(
        "UPDATE fold_mark SET token = $1 WHERE token = $2 OR token = 'tx:' || txid_current()::text "
        "RETURNING true", token, found) is not None


async def any_refs(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM refs)")


async def save_fold(conn: asyncpg.Connection, deltas: Deltas, put: Sequence[Ref], removed: Sequence[tuple[str, str]],
                    applied: Sequence[tuple[StoredEvent, Undo]]) -> None:
    """Write what a fold step did: add the deltas to the counters (dropping keys no delta builds
    any more), upsert and delete refs, and record each (re)folded event's undo."""
    if deltas:
        keys = list(deltas)
        # each value as the text of its decimal, exactly
        await conn.execute(
            """INSERT INTO facts AS f (period, entity_type, entity_id, fact, value, n)
               SELECT r->>2, r->>0, r->>1, r->>3, (r->>4)::numeric, (r->>5)::int
               FROM jsonb_array_elements($1::text::jsonb) AS t(r)
               ON CONFLICT (period, entity_type, entity_id, fact)
               DO UPDATE SET value = f.value + EXCLUDED.value, n = f.n + EXCLUDED.n""",
            bulk([(*k, str(deltas[k].value), deltas[k].n) for k in keys]))
        if any(deltas[k].n < 0 for k in keys):
            await conn.execute(
                """DELETE FROM facts f USING unnest($1::text[], $2::text[], $3::text[], $4::text[])
                   AS k(period, entity_type, entity_id, fact)
                   WHERE f.n = 0 AND (f.period, f.entity_type, f.entity_id, f.fact) = (k.period, k.entity_type, k.entity_id, k.fact)""",
                [k[2] for k in keys], [k[0] for k in keys], [k[1] for k in keys], [k[3] for k in keys])
    if put:
        await conn.execute(
            """INSERT INTO refs (kind, ref_id, data) SELECT r->>0, r->>1, r->2 FROM jsonb_array_elements($1::text::jsonb) AS t(r)
               ON CONFLICT (kind, ref_id) DO UPDATE SET data = EXCLUDED.data""",
            bulk([(r.KIND, r.ref_id, r.model_dump(mode="json")) for r in put]))
    if removed:
        await conn.execute("DELETE FROM refs r USING unnest($1::text[], $2::text[]) AS k(kind, ref_id) "
                           "WHERE (r.kind, r.ref_id) = (k.kind, k.ref_id)",
                           [k for k, _ in removed], [i for _, i in removed])
    if applied:
        await conn.execute(
            "UPDATE event_log l SET undo = u.undo FROM jsonb_to_recordset($1::text::jsonb) "
            "AS u(source text, id text, undo jsonb) WHERE (l.source, l.id) = (u.source, u.id)",
            bulk([{"source": e.source, "id": e.id, "undo": _undo_json(u)} for e, u in applied]))


async def period_facts(conn: asyncpg.Connection, period: str, entity_type: str | None = None) -> FactTable:
    """The counters of one period (what a close scores), or of one entity type in it (a provisional scorecard)."""
    rows = await conn.fetch("SELECT entity_type, entity_id, fact, value FROM facts WHERE period = $1 AND n > 0 "
                            "AND ($2::text IS NULL OR entity_type = $2)", period, entity_type)
    return {(r["entity_type"], r["entity_id"], period, r["fact"]): float(r["value"]) for r in rows}


async def scoring_refs(conn: asyncpg.Connection, workers: Sequence[str], members: Sequence[str]) -> list[Ref]:
    """The refs scoring a period reads: every grid and unit (standing counts, units' parents) and
    the scored workers (patrol coverage, parent) and members (parent)."""
    # one index range per kind (an OR over kinds would scan every ref, cases included: the history)
    rows = await conn.fetch(
        "SELECT kind, data FROM refs WHERE kind = 'grid' UNION ALL SELECT kind, data FROM refs WHERE kind = 'unit' "
        "UNION ALL SELECT kind, data FROM refs WHERE kind = 'worker' AND ref_id = ANY($1::text[]) "
        "UNION ALL SELECT kind, data FROM refs WHERE kind = 'member' AND ref_id = ANY($2::text[])",
        list(workers), list(members))
    return [ref_from_json(r["kind"], r["data"]) for r in rows]


async def newest_event_time(conn: asyncpg.Connection) -> datetime | None:
    """The time of the newest upstream event among the last ones recorded: the lag gauge's value
    when a worker starts, until the next event arrives. The newest over every row read the whole
    log, years of it, at each start; the last recorded come from the index on ``recorded_at``."""
    return await conn.fetchval(
        "SELECT max(time) FROM (SELECT time FROM event_log WHERE source <> '/services/assessment' "
        "ORDER BY recorded_at DESC LIMIT 1000) AS last")


async def count_events(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM event_log")


# -- schemes --------------------------------------------------------------------------------


async def load_schemes(conn: asyncpg.Connection) -> list[Scheme]:
    """Schemes introduced by scheme changes, oldest first."""
    rows = await conn.fetch("SELECT definition FROM schemes ORDER BY effective_from, scheme_id")
    return [Scheme.model_validate(r["definition"]) for r in rows]


async def load_scheme(conn: asyncpg.Connection, scheme_id: str) -> Scheme | None:
    d = await conn.fetchval("SELECT definition FROM schemes WHERE scheme_id = $1", scheme_id)
    return None if d is None else Scheme.model_validate(d)


async def save_scheme(conn: asyncpg.Connection, scheme: Scheme, base_scheme_id: str | None) -> None:
    await conn.execute(
        "INSERT INTO schemes (scheme_id, effective_from, base_scheme_id, definition) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (scheme_id) DO NOTHING",
        scheme.scheme_id, scheme.effective_from, base_scheme_id, scheme.to_mapping())


# -- scorecards and alerts ------------------------------------------------------------------


async def published_hashes(conn: asyncpg.Connection, scorecard_ids: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch("SELECT scorecard_id, content_hash FROM scorecards WHERE scorecard_id = ANY($1::text[])",
                            list(scorecard_ids))
    return {r["scorecard_id"]: r["content_hash"] for r in rows}


async def upsert_scorecards(conn: asyncpg.Connection, cards: Sequence[tuple[ScorecardPublished, str, str]],
                            at: datetime) -> None:
    """Store (card, content hash, envelope id) triples; a changed card gets revision + 1."""
    if not cards:
        return
    await conn.execute(
        """INSERT INTO scorecards (scorecard_id, entity_type, entity_id, period, scheme_id, parent_id, score, rank,
                                   grade, card, content_hash, envelope_id, published_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::float8[], $8::int[], $9::text[], $10::jsonb[], $11::text[], $12::text[]),
                  (SELECT $13::timestamptz)
           ON CONFLICT (scorecard_id) DO UPDATE SET
               parent_id = EXCLUDED.parent_id, score = EXCLUDED.score, rank = EXCLUDED.rank, grade = EXCLUDED.grade,
               card = EXCLUDED.card, content_hash = EXCLUDED.content_hash, envelope_id = EXCLUDED.envelope_id,
               published_at = EXCLUDED.published_at, revision = scorecards.revision + 1
           WHERE scorecards.content_hash <> EXCLUDED.content_hash""",
        [c.scorecard_id for c, _, _ in cards], [c.entity_type.value for c, _, _ in cards],
        [c.entity_id for c, _, _ in cards], [c.period for c, _, _ in cards], [c.scheme_id for c, _, _ in cards],
        [c.parent_id for c, _, _ in cards], [c.score for c, _, _ in cards], [c.rank for c, _, _ in cards],
        [c.grade.value if c.grade else None for c, _, _ in cards],
        [c.model_dump(mode="json") for c, _, _ in cards], [h for _, h, _ in cards], [e for _, _, e in cards], at)


async def period_scorecards(conn: asyncpg.Connection, period: str, scheme_id: str) -> list[ScorecardPublished]:
    """The scorecards of ``period`` under ``scheme_id`` as last published."""
    return [ScorecardPublished.model_validate(r["card"]) for r in await conn.fetch(
        "SELECT card FROM scorecards WHERE period = $1 AND scheme_id = $2 ORDER BY scorecard_id", period, scheme_id)]


async def alert_hashes(conn: asyncpg.Connection, period: str, scheme_id: str) -> dict[str, str]:
    rows = await conn.fetch("SELECT alert_id, content_hash FROM alerts WHERE period = $1 AND scheme_id = $2",
                            period, scheme_id)
    return {r["alert_id"]: r["content_hash"] for r in rows}


async def replace_alerts(conn: asyncpg.Connection, period: str, scheme_id: str,
                         alerts: Sequence[tuple[AlertRaised, str, str]], at: datetime) -> int:
    """Make the standing alerts of (period, scheme) exactly ``alerts``; return how many were withdrawn."""
    keep = [a.alert_id for a, _, _ in alerts]
    withdrawn = await conn.fetch(
        "DELETE FROM alerts WHERE period = $1 AND scheme_id = $2 AND NOT (alert_id = ANY($3::text[])) RETURNING alert_id",
        period, scheme_id, keep)
    if alerts:
        await conn.execute(
            """INSERT INTO alerts (alert_id, scorecard_id, entity_type, entity_id, period, scheme_id, indicator, value,
                                   threshold, direction, alert, content_hash, envelope_id, raised_at)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                    $8::float8[], $9::float8[], $10::text[], $11::jsonb[], $12::text[], $13::text[]),
                      (SELECT $14::timestamptz)
               ON CONFLICT (alert_id) DO UPDATE SET value = EXCLUDED.value, threshold = EXCLUDED.threshold,
                   direction = EXCLUDED.direction, alert = EXCLUDED.alert, content_hash = EXCLUDED.content_hash,
                   envelope_id = EXCLUDED.envelope_id, raised_at = EXCLUDED.raised_at
               WHERE alerts.content_hash <> EXCLUDED.content_hash""",
            [a.alert_id for a, _, _ in alerts], [a.scorecard_id for a, _, _ in alerts],
            [a.entity_type.value for a, _, _ in alerts], [a.entity_id for a, _, _ in alerts],
            [a.period for a, _, _ in alerts], [a.scheme_id for a, _, _ in alerts], [a.indicator for a, _, _ in alerts],
            [a.value for a, _, _ in alerts], [a.threshold for a, _, _ in alerts], [a.direction for a, _, _ in alerts],
            [a.model_dump(mode="json") for a, _, _ in alerts], [h for _, h, _ in alerts], [e for _, _, e in alerts], at)
    return len(withdrawn)


async def record_close(conn: asyncpg.Connection, period: str, scheme_id: str, at: datetime, *, scorecards: int,
                       alerts: int, published: int, trigger: str) -> None:
    await conn.execute(
        """INSERT INTO period_closes (period, scheme_id, closed_at, scorecards, alerts, published, trigger)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (period, scheme_id) DO UPDATE SET closed_at = EXCLUDED.closed_at,
               scorecards = EXCLUDED.scorecards, alerts = EXCLUDED.alerts, published = EXCLUDED.published,
               trigger = EXCLUDED.trigger""",
        period, scheme_id, at, scorecards, alerts, published, trigger)


async def close_recorded(conn: asyncpg.Connection, period: str, scheme_id: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM period_closes WHERE period = $1 AND scheme_id = $2)",
                               period, scheme_id)


async def last_close(conn: asyncpg.Connection, period: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT period, scheme_id, closed_at, scorecards, alerts, published, trigger FROM period_closes "
        "WHERE period = $1 ORDER BY closed_at DESC, scheme_id LIMIT 1", period)


# -- queries --------------------------------------------------------------------------------


async def scorecard(conn: asyncpg.Connection, entity_type: str, entity_id: str, period: str,
                    scheme_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT card, published_at, revision, envelope_id FROM scorecards "
        "WHERE entity_type = $1 AND entity_id = $2 AND period = $3 AND scheme_id = $4",
        entity_type, entity_id, period, scheme_id)


def in_scope(scope: Scope | None, args: list[Any], t: str = "") -> str:
    """A condition on a scorecards row (alias ``t``) that its area (the entity's own code for a
    grid, community or street, else its ``parent_id``) lies in ``scope`` (as
    :meth:`Scope.covers`), appending its parameters to ``args``; true for None (the district)."""
    if scope is None:
        return "TRUE"
    p = f"{t}." if t else ""
    area = f"(CASE WHEN {p}entity_type IN ('grid', 'community', 'street') THEN {p}entity_id ELSE {p}parent_id END)"
    args += [sorted(scope.grids), sorted(scope.communities), sorted(scope.streets)]
    g, c, s = len(args) - 2, len(args) - 1, len(args)
    return (f"({area} ~ '^[0-9]{{9}}([0-9]{{3}}){{0,2}}$' AND (({area} = ANY(${g}::text[]) AND length({area}) = 15)"
            f" OR (length({area}) >= 12 AND left({area}, 12) = ANY(${c}::text[]))"
            f" OR left({area}, 9) = ANY(${s}::text[])))")


RANKING_ORDER = Keyset(("parent_key", "rank_key", "entity_id"), (str, int, str),
                       exprs=("coalesce(parent_id, '')", "coalesce(rank, 2147483647)", "entity_id"))
"""A ranking by parent (none first), rank (unranked last), entity id: the index ``scorecards_ranking_keyset``."""

ALERT_FIELDS = ("entity_type", "entity_id", "indicator", "value", "threshold", "alert_id", "period", "scheme_id",
                "scorecard_id", "direction", "raised_at")
"""What a page of alerts shows of each: the event's fields, and when it was raised (the kept answer's fields)."""
ALERT_ORDER = Keyset(("period", "entity_type", "entity_id", "indicator", "alert_id"), (str, str, str, str, str),
                     exprs=("a.period", "a.entity_type", "a.entity_id", "a.indicator", "a.alert_id"))


async def ranking(conn: asyncpg.Connection, *, period: str, scheme_id: str, entity_type: str,
                  parent_id: str | None, limit: int, offset: int, cursor: str | None = None,
                  scope: Scope | None = None) -> Paged:
    """One page of a ranking after ``cursor``; only entities in ``scope`` (None: all), their
    ranks unchanged."""
    where = Where()
    where.equal(period=period, scheme_id=scheme_id, entity_type=entity_type)
    where.add("coalesce(parent_id, '') = $?", parent_id)
    if scope is not None:
        where.add(in_scope(scope, where.args))
    return await where.counted_page(
        conn, "scorecards",
        "SELECT entity_id, parent_id, score, rank, grade, card->'rank_of' AS rank_of, scorecard_id, "
        "coalesce(parent_id, '') AS parent_key, coalesce(rank, 2147483647) AS rank_key FROM scorecards",
        RANKING_ORDER, limit, offset, cursor)


async def alerts(conn: asyncpg.Connection, *, period: str | None, entity_type: str | None, indicator: str | None,
                 limit: int, offset: int, cursor: str | None = None, scope: Scope | None = None) -> Paged:
    """Standing alerts, filtered; by default only those of each period's latest close; only those
    of entities in ``scope`` (None: all; where an entity lies is its scorecard's business)."""
    conds: list[str] = []
    kept: list[str] = []  # the same filters on the counts kept beside the alerts
    args: list[Any] = []
    for col, v in (("period", period), ("entity_type", entity_type), ("indicator", indicator)):
        if v is not None:
            args.append(v)
            conds.append(f"a.{col} = ${len(args)}")
            kept.append(f"k.{col} = ${len(args)}")
    if scope is not None:
        # an alert's scorecard is of its period: said, it lets the scorecards be read by period
        # (an index) rather than all of them, every period of the history, for a hash join
        conds.append(f"EXISTS (SELECT 1 FROM scorecards s WHERE s.scorecard_id = a.scorecard_id AND "
                     f"s.period = a.period AND {in_scope(scope, args, 's')})")
    # the latest close's scheme: looked up once when the period is given (its parameter, the
    # first: then the subquery does not depend on the row), else once per row's period
    for t, cs in (("a", conds), ("k", kept)):
        of = "$1" if period is not None else f"{t}.period"
        cs.append(f"""{t}.scheme_id = (SELECT c.scheme_id FROM period_closes c WHERE c.period = {of}
                                       ORDER BY c.closed_at DESC, c.scheme_id LIMIT 1)""")
    where = Where()
    where.conditions, where.args = conds, args
    # a reader of the whole district reads every alert the filters select: their count is kept
    # (alert_counts: a row per period, scheme, entity type and indicator), else they are counted
    total = f"SELECT coalesce(sum(k.n), 0)::bigint FROM alert_counts k WHERE {' AND '.join(kept)}" \
        if scope is None else None
    # each alert as published (its columns, written from the same event as its ``alert`` document),
    # as kept by the trigger of migration 009 (its fields: ALERT_FIELDS)
    paged = await where.counted_page(conn, "alerts a",
                                     f"SELECT {kept_answer(of='a')}, {', '.join(ALERT_ORDER.exprs)} FROM alerts a",
                                     ALERT_ORDER, limit, offset, cursor, total=total)
    paged.items = [answered(r["answer"]) for r in paged.items]
    return paged


async def get_mark(conn: asyncpg.Connection, name: str) -> datetime | None:
    """The mark of a timer, row-locked until the end of the transaction."""
    return await conn.fetchval("SELECT at FROM timer_marks WHERE name = $1 FOR UPDATE", name)


async def set_mark(conn: asyncpg.Connection, name: str, at: datetime) -> None:
    await conn.execute("INSERT INTO timer_marks (name, at) VALUES ($1, $2) "
                       "ON CONFLICT (name) DO UPDATE SET at = EXCLUDED.at", name, at)
