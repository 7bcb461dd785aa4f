"""Migration runner: numbered ``NNN_name.sql`` files per component, each service in its own schema.

The kit's own tables (inbox, outbox, aggregates) are component ``kit``; a service's files are
component ``<service>``. Applied files are recorded with a checksum in ``schema_migrations``;
an applied file that changed afterwards stops the start-up (fix forward with a new file).
A transaction-scoped advisory lock lets several workers start at once. Run as the service's
owner role where :mod:`.dbroles` set the roles up (``MIGRATION_DATABASE_URL``); afterwards the
runtime role's privileges on the restricted tables are cut back (:func:`.dbroles.restrict`).
"""
from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import asyncpg

from .dbroles import restrict
from .locks import advisory_lock

log = logging.getLogger("kit.migrations")

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^([0-9]{3,})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


def discover(directory: Path) -> list[tuple[int, str, str]]:
    out = []
    for p in sorted(directory.glob("*.sql")):
        m = _NAME.match(p.name)
        if not m:
            raise MigrationError(f"migration file name must be NNN_name.sql: {p}")
        out.append((int(m.group(1)), p.name, p.read_text()))
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return out


async def migrate(conn: asyncpg.Connection, schema: str, components: list[tuple[str, Path]]) -> list[str]:
    """Apply what is missing; return the names applied now."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise MigrationError(f"bad schema name {schema!r}")
    applied_now: list[str] = []
    async with conn.transaction():
        await advisory_lock(conn, f"migrations:{schema}")
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            # only when missing: the owner role (services.kit.dbroles) may not create schemas
            await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                 component text NOT NULL, version int NOT NULL, name text NOT NULL,
                 checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (component, version))"""
        )
        done = {(r["component"], r["version"]): r for r in await conn.fetch("SELECT * FROM schema_migrations")}
        for component, directory in components:
            for version, name, sql in discover(directory):
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                row = done.get((component, version))
                if row is not None:
                    if row["checksum"] != checksum:
                        raise MigrationError(f"{component}/{name} changed after it was applied; add a new migration instead")
                    continue
                log.info("applying migration %s/%s", component, name)
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                    component, version, name, checksum,
                )
                applied_now.append(f"{component}/{name}")
        # tables just created got the owner's default grants: cut the append-only ones back
        await restrict(conn, schema)
    return applied_now


async def pending(conn: asyncpg.Connection, schema: str, components: list[tuple[str, Path]]) -> list[str]:
    """Names of migrations not yet applied (for /readyz)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.schema_migrations")
    done = set()
    if exists:
        done = {(r[0], r[1]) for r in await conn.fetch(f"SELECT component, version FROM {schema}.schema_migrations")}
    return [f"{c}/{n}" for c, d in components for v, n, _ in discover(d) if (c, v) not in done]
