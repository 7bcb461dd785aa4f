"""Erasure of a person: the kit's half of every service's ``<svc>.person.erase.v1``.

A service's handler calls :func:`erase` with the person's id and its own ``scrub`` step, on the
command (sent by a data protection officer) and on the other services' ``person.erased.v1``.
:func:`erase`

1. records the erasure in ``erasures`` (a digest of the id and the pseudonym; a person already
   erased here is left alone, and nothing is published, so that the services' reactions to each
   other's events end);
2. flushes what the unit of work holds, so that the batch's own writes are erased too;
3. runs the service's ``scrub(conn, person_id, pseudonym)``: removes the free text, addresses,
   locations and media the person gave, and replaces the ids that need care (a primary key that
   others reference, an append-only table);
4. replaces the id, and the points account ids that embed it (``resident:<id>``), by the
   pseudonym in every other text and jsonb column of the service's schema
   (:func:`replace_everywhere`: equal text values; jsonb string values equal to the id);
5. publishes ``<svc>.person.erased.v1`` with the pseudonym as key.

The pseudonym (``erased-<16 hex digits>``, from a digest of the command's id: a rebuild that
replays the command gives the same one) is the commanded service's; a service reacting to
another's event takes the one in the event, so that a person's counts still agree across the
services. Amounts, times, categories and areas stay: statistics are unchanged.

What is not reached: records already on Kafka topics (they expire with the topics' retention; the
dead-letter topics have ``DLQ_RETENTION_DAYS``), and outbox rows written before the erasure and not
yet published.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Awaitable, Callable, Iterable

import asyncpg

from schemas.common import ERASED_PREFIX, PersonErasedEvent
from schemas.registry import model_for

from .uow import UnitOfWork

log = logging.getLogger("kit.erasure")

Scrub = Callable[[asyncpg.Connection, str, str], Awaitable[None]]

KIT_SKIPPED = frozenset({"schema_migrations", "erasures", "outbox", "inbox"})
"""Tables :func:`replace_everywhere` never touches: bookkeeping without person ids (the outbox
holds bytes, published and deleted by the relay)."""


def digest(person_id: str) -> str:
    return hashlib.sha256(f"person:{person_id}".encode()).hexdigest()


def new_pseudonym(uow: UnitOfWork | None = None) -> str:
    """The pseudonym of a person erased by the message ``uow`` handles: derived from the
    service and the message's source and id, so that a rebuild replaying the command gives the
    person the pseudonym the other services took from the event (random without a message).
    The message's id says nothing about the person."""
    msg = uow.message if uow is not None else None
    if msg is None:
        return ERASED_PREFIX + secrets.token_hex(8)
    seed = f"pseudonym|{uow.service}|{msg.source}|{msg.id}".encode()
    return ERASED_PREFIX + hashlib.sha256(seed).hexdigest()[:16]


async def record(conn: asyncpg.Connection, person_id: str, pseudonym: str, origin: str) -> bool:
    """Record the erasure; False when the person was erased here already."""
    row = await conn.fetchval(
        "INSERT INTO erasures (digest, pseudonym, origin) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING "
        "RETURNING pseudonym", digest(person_id), pseudonym, origin)
    return row is not None


async def pseudonym_of(conn: asyncpg.Connection, person_id: str) -> str | None:
    return await conn.fetchval("SELECT pseudonym FROM erasures WHERE digest = $1", digest(person_id))


async def replace_everywhere(conn: asyncpg.Connection, pairs: Iterable[tuple[str, str]], *,
                             skip: Iterable[str] = ()) -> dict[str, int]:
    """Replace each ``old`` by its ``new`` in every text and jsonb column of the current schema's
    tables (but ``skip`` and :data:`KIT_SKIPPED`): a text value equal to ``old``; in jsonb, every
    string value equal to ``old`` (keys and longer strings are left). ``table.column`` -> rows changed."""
    skipped = KIT_SKIPPED | set(skip)
    cols = await conn.fetch(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
        "AND c.data_type IN ('text', 'jsonb', 'character varying') ORDER BY c.table_name, c.ordinal_position")
    changed: dict[str, int] = {}
    pairs = list(pairs)
    for r in cols:
        table, column = r["table_name"], r["column_name"]
        if table in skipped:
            continue
        t, c = _ident(table), _ident(column)
        for old, new in pairs:
            if r["data_type"] == "jsonb":
                sql = (f"UPDATE {t} SET {c} = replace({c}::text, to_jsonb($1::text)::text, to_jsonb($2::text)::text)::jsonb "
                       f"WHERE strpos({c}::text, to_jsonb($1::text)::text) > 0")
            else:
                sql = f"UPDATE {t} SET {c} = $2 WHERE {c} = $1"
            n = int((await conn.execute(sql, old, new)).split()[-1])
            if n:
                changed[f"{table}.{column}"] = changed.get(f"{table}.{column}", 0) + n
    return changed


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def account_pairs(person_id: str, pseudonym: str) -> list[tuple[str, str]]:
    """The points account ids that embed the person's id (``resident:<id>``, ``merchant:<id>``),
    with their pseudonymous counterparts: every service that keeps points events holds them."""
    from schemas.points import derived_account_id

    return [(derived_account_id(k, person_id), derived_account_id(k, pseudonym)) for k in ("resident", "merchant")]


async def erase(uow: UnitOfWork, person_id: str, scrub: Scrub, *, pseudonym: str | None = None,
                origin: str = "command", extra_pairs: Callable[[str, str], Iterable[tuple[str, str]]] | None = None,
                skip: Iterable[str] = ()) -> str | None:
    """Erase ``person_id`` in the unit of work's service (see the module doc); the pseudonym, or
    None when the person had been erased here already (nothing is done or published then)."""
    new = pseudonym or new_pseudonym(uow)
    if not await record(uow.conn, person_id, new, origin):
        log.info("erasure: already erased here (%s)", origin)
        return None
    await uow.flush()  # the batch's pending rows are written, so that they are erased too
    await scrub(uow.conn, person_id, new)
    pairs = [*account_pairs(person_id, new), *(extra_pairs(person_id, new) if extra_pairs else ()), (person_id, new)]
    changed = await replace_everywhere(uow.conn, pairs, skip=skip)
    log.info("erasure: person erased as %s (%s); replaced in %s", new, origin, changed)
    model = model_for(f"{uow.service}.person.erased.v1")
    assert model is not None and issubclass(model, PersonErasedEvent)
    uow.emit(model(pseudonym=new, person_id=person_id, occurred_at=uow.now), key=new)
    return new


def other_services_erased(service: str) -> tuple[type[PersonErasedEvent], ...]:
    """The ``person.erased.v1`` classes of every service but ``service``: what it reacts to."""
    from schemas.registry import SERVICES

    out = []
    for svc in SERVICES:
        if svc != service:
            model = model_for(f"{svc}.person.erased.v1")
            assert model is not None
            out.append(model)
    return tuple(out)
