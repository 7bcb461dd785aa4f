"""PostgreSQL roles for least privilege: per service an owner role (migrations) and a runtime role.

For each service ``<svc>`` (its tables, the kit's included, live in schema ``<svc>``):

- ``<svc>_owner`` owns schema ``<svc>`` and everything in it. The worker runs its migrations
  (DDL) as this role (``MIGRATION_DATABASE_URL``). It has no rights on any other schema and
  cannot create schemas.
- ``<svc>_app`` is what the worker serves as (``DATABASE_URL``): USAGE on its schema,
  SELECT/INSERT/UPDATE/DELETE on its tables, USAGE/SELECT on its sequences, no ownership, so it
  cannot ALTER or DROP a table or a trigger. Tables that later migrations create are granted
  automatically (``ALTER DEFAULT PRIVILEGES FOR ROLE <svc>_owner``). The exceptions
  (:data:`RESTRICTED`) get less: the points ledger's ``postings`` only INSERT and SELECT,
  ``schema_migrations`` only SELECT.
- Both roles have ``search_path = <svc>`` (set per database), and nobody but their owner may
  create anything in ``public`` (``REVOKE CREATE ON SCHEMA public FROM PUBLIC``).

:func:`bootstrap` creates or updates all of this and is idempotent; it needs an administrator
connection (a superuser, or a role with CREATEROLE that may create schemas in the database).
Run it as ``python -m services.kit.dbroles`` with ``ADMIN_DATABASE_URL`` (falls back to
``DATABASE_URL``) and the passwords in ``<SVC>_DB_OWNER_PASSWORD`` / ``<SVC>_DB_APP_PASSWORD``
(``GRID_DB_OWNER_PASSWORD``...). A password not given leaves the role's password as it is
(a new role then has none, and can log in only where the server trusts it).

:func:`restrict` applies the exceptions again; the migration runner calls it after applying
migrations, so that a table created with the default grants loses what it must not have.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from schemas.registry import SERVICES  # every registered service has its schema and its two roles

log = logging.getLogger("kit.dbroles")

DATA_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")

RESTRICTED: dict[str | None, dict[str, tuple[str, ...]]] = {
    None: {"schema_migrations": ("SELECT",)},          # every service: the runner's record
    "points": {"postings": ("SELECT", "INSERT")},       # the ledger is append-only
}
"""Tables whose runtime role gets less than :data:`DATA_PRIVILEGES`: ``{service or None (all):
{table: privileges}}``. Everybody else (bar the owner) loses every other table privilege."""

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def owner_role(service: str) -> str:
    return f"{service}_owner"


def app_role(service: str) -> str:
    return f"{service}_app"


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"bad identifier {name!r}")
    return name


def restrictions(schema: str) -> dict[str, tuple[str, ...]]:
    return {**RESTRICTED[None], **RESTRICTED.get(schema, {})}


async def restrict(conn: asyncpg.Connection, schema: str) -> None:
    """Cut the privileges of every role but the owner on the restricted tables of ``schema``
    down to what :data:`RESTRICTED` allows. Run as the tables' owner or a superuser."""
    _ident(schema)
    for table, allowed in restrictions(schema).items():
        rows = await conn.fetch(
            """SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END AS grantee,
                      a.privilege_type
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                      LATERAL aclexplode(c.relacl) a
                WHERE n.nspname = $1 AND c.relname = $2 AND a.grantee <> c.relowner""",
            schema, table)
        extra: dict[str, set[str]] = {}
        for r in rows:
            if r["privilege_type"] not in allowed:
                extra.setdefault(r["grantee"], set()).add(r["privilege_type"])
        for grantee, privs in extra.items():
            who = "PUBLIC" if grantee == "public" else f'"{grantee}"'
            await conn.execute(f"REVOKE {', '.join(sorted(privs))} ON {schema}.{table} FROM {who}")


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    if not exists:
        try:
            await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT")
        except asyncpg.exceptions.DuplicateObjectError:  # another bootstrap got there first
            pass
    await conn.execute(f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS")
    if password:
        await conn.execute(f"ALTER ROLE {role} PASSWORD {_literal(password)}")


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


async def _take_ownership(conn: asyncpg.Connection, schema: str, owner: str) -> None:
    """Objects an earlier set-up created as another role (e.g. the superuser) pass to ``owner``."""
    rows = await conn.fetch(
        """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND pg_get_userbyid(c.relowner) <> $2
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
                                 AND d.classid = 'pg_class'::regclass)""",
        schema, owner)
    for r in rows:
        kind = "SEQUENCE" if r["relkind"] == "S" else "TABLE"
        if r["relkind"] in ("v", "m"):
            kind = "MATERIALIZED VIEW" if r["relkind"] == "m" else "VIEW"
        await conn.execute(f'ALTER {kind} {schema}."{r["relname"]}" OWNER TO {owner}')
    funcs = await conn.fetch(
        """SELECT p.oid::regprocedure::text AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = $1 AND pg_get_userbyid(p.proowner) <> $2""", schema, owner)
    for f in funcs:
        await conn.execute(f"ALTER ROUTINE {f['sig']} OWNER TO {owner}")


async def bootstrap(conn: asyncpg.Connection, services=SERVICES, passwords: dict[str, str | None] | None = None) -> None:
    """Create or bring up to date the roles, schemas and grants of ``services`` in the database
    ``conn`` is connected to (an administrator's connection). Idempotent."""
    passwords = passwords or {}
    database = await conn.fetchval("SELECT current_database()")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('grassroots:dbroles'))")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for svc in services:
            schema, owner, app = _ident(svc), owner_role(svc), app_role(svc)
            await _ensure_role(conn, owner, passwords.get(owner))
            await _ensure_role(conn, app, passwords.get(app))
            # the administrator must be able to act for the owner (PostgreSQL 16+: CREATEROLE
            # does not make it a member); a superuser already can
            if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
                await conn.execute(f"GRANT {owner} TO current_user")
            if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
                await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {owner}")
            else:
                await conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}")
            await _take_ownership(conn, schema, owner)
            await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {app}")
            for role in (owner, app):
                await conn.execute(f'ALTER ROLE {role} IN DATABASE "{database}" SET search_path = {schema}')
            privs = ", ".join(DATA_PRIVILEGES)
            await conn.execute(f"GRANT {privs} ON ALL TABLES IN SCHEMA {schema} TO {app}")
            await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}")
            await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT {privs} ON TABLES TO {app}")
            await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
                               f"GRANT USAGE, SELECT ON SEQUENCES TO {app}")
            await restrict(conn, schema)
    log.info("database roles ready in %s: %s", database,
             ", ".join(f"{owner_role(s)}/{app_role(s)}" for s in services))


def role_url(admin_url: str, role: str, password: str | None) -> str:
    """``admin_url`` with ``role`` (and ``password``) as its user."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def passwords_from_env(services=SERVICES, env=os.environ) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for s in services:
        out[owner_role(s)] = env.get(f"{s.upper()}_DB_OWNER_PASSWORD") or None
        out[app_role(s)] = env.get(f"{s.upper()}_DB_APP_PASSWORD") or None
    return out


async def _main_async(url: str, services: tuple[str, ...]) -> None:
    delay = 0.5
    for attempt in range(30):
        try:
            conn = await asyncpg.connect(url)
            break
        except (OSError, asyncpg.exceptions.CannotConnectNowError) as e:
            if attempt == 29:
                raise
            log.warning("database not reachable yet (%s); retrying in %.1fs", e.__class__.__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    try:
        await bootstrap(conn, services, passwords_from_env(services))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.kit.dbroles", description=__doc__.split("\n")[0])
    p.add_argument("--services", default=",".join(SERVICES), help="comma separated (default: all five)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    url = os.environ.get("ADMIN_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        print("set ADMIN_DATABASE_URL (an administrator's connection)", file=sys.stderr)
        return 2
    services = tuple(s.strip() for s in args.services.split(",") if s.strip())
    asyncio.run(_main_async(url, services))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
