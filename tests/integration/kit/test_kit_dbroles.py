"""PostgreSQL least privilege (services/kit/dbroles.py) on the embedded server: the bootstrap is
idempotent; the points runtime role can append to the ledger but not change or erase it, nor
drop its append-only trigger, nor create in ``public``, nor read another service's schema; a
points worker given separate migration and runtime URLs migrates as the owner and serves as the
runtime role."""
from __future__ import annotations

import uuid

import asyncpg
import pytest

from services.kit.dbroles import SERVICES, app_role, bootstrap, owner_role, role_url
from services.kit.migrations import KIT_MIGRATIONS, migrate
from services.points.projection import MIGRATIONS as POINTS_MIGRATIONS
from tests.support.kafka import command, send
from tests.support.procs import Worker, http
from tests.support.identity import token

pytestmark = pytest.mark.integration


async def _bootstrap(url: str) -> None:
    admin = await asyncpg.connect(url)
    try:
        await bootstrap(admin)
    finally:
        await admin.close()


async def _grants(url: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT n.nspname, c.relname, a.grantee::regrole::text AS grantee, a.privilege_type
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL aclexplode(c.relacl) a
                WHERE n.nspname = ANY($1::text[]) ORDER BY 1, 2, 3, 4""", list(SERVICES))
        owners = await conn.fetch("SELECT nspname, nspowner::regrole::text AS owner FROM pg_namespace "
                                  "WHERE nspname = ANY($1::text[]) ORDER BY 1", list(SERVICES))
        public_create = await conn.fetchval("SELECT has_schema_privilege('public', 'public', 'CREATE')")
        return [tuple(r) for r in rows] + [tuple(r) for r in owners] + [("public-create", public_create)]
    finally:
        await conn.close()


async def _migrate_points_as_owner(url: str) -> None:
    conn = await asyncpg.connect(role_url(url, owner_role("points"), None))
    try:
        await migrate(conn, "points", [("kit", KIT_MIGRATIONS), ("points", POINTS_MIGRATIONS)])
    finally:
        await conn.close()


async def test_the_bootstrap_is_idempotent(database_url):
    await _bootstrap(database_url)
    await _migrate_points_as_owner(database_url)
    before = await _grants(database_url)
    await _bootstrap(database_url)  # again, after the migrations: the ledger stays restricted
    await _bootstrap(database_url)
    assert await _grants(database_url) == before
    assert ("points", "postings", "points_app", "UPDATE") not in before
    assert ("points", "postings", "points_app", "INSERT") in before
    assert ("points", "points_owner") in before
    assert ("public-create", False) in before


@pytest.fixture
async def points_app(database_url):
    """The points schema migrated by its owner; a connection as the points runtime role."""
    await _bootstrap(database_url)
    await _migrate_points_as_owner(database_url)
    conn = await asyncpg.connect(role_url(database_url, app_role("points"), None))
    try:
        yield conn
    finally:
        await conn.close()


async def _post(conn: asyncpg.Connection, transfer: str) -> None:
    await conn.execute(
        """INSERT INTO accounts (account_id, kind, holder_id, balance, state) VALUES
             ('issuer:t', 'issuer', 't', 0, '{}'::jsonb), ('resident:t', 'resident', 't', 0, '{}'::jsonb)
           ON CONFLICT DO NOTHING""")
    await conn.execute(
        """INSERT INTO postings (transfer_id, debit_account, credit_account, amount, kind, posted_at, event)
           VALUES ($1, 'issuer:t', 'resident:t', 5, 'award', now(), '{}'::jsonb)""", transfer)


async def test_the_points_runtime_role_may_append_to_the_ledger_and_nothing_more(points_app):
    conn = points_app
    assert await conn.fetchval("SHOW search_path") == "points"
    await _post(conn, "t-1")
    assert await conn.fetchval("SELECT count(*) FROM postings") == 1
    assert await conn.fetchval("SELECT balance FROM accounts WHERE account_id = 'resident:t'") == 5  # the trigger ran
    refused = [
        "UPDATE postings SET amount = 500 WHERE transfer_id = 't-1'",
        "DELETE FROM postings WHERE transfer_id = 't-1'",
        "TRUNCATE postings",
        "DROP TRIGGER postings_no_update ON postings",
        "ALTER TABLE postings DISABLE TRIGGER postings_no_update",
        "DROP TABLE postings",
        "DROP FUNCTION postings_are_immutable() CASCADE",
        "CREATE TABLE points.extra (x int)",
        "CREATE TABLE public.extra (x int)",
        "UPDATE schema_migrations SET checksum = 'x'",
    ]
    for sql in refused:
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await conn.execute(sql)
    assert await conn.fetchval("SELECT amount FROM postings WHERE transfer_id = 't-1'") == 5
    assert await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = 'postings_no_update' AND tgenabled = 'O'") == 1
    # the other tables of its own schema: ordinary data rights
    await conn.execute("UPDATE accounts SET community_id = 'c' WHERE account_id = 'resident:t'")


async def test_no_runtime_role_reads_another_services_schema(database_url):
    await _bootstrap(database_url)
    await _migrate_points_as_owner(database_url)
    for svc in ("grid", "orders", "assessment"):
        conn = await asyncpg.connect(role_url(database_url, app_role(svc), None))
        try:
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.fetch("SELECT * FROM points.postings")
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.extra (x int)")
        finally:
            await conn.close()
    owner = await asyncpg.connect(role_url(database_url, owner_role("grid"), None))
    try:
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await owner.fetch("SELECT * FROM points.accounts")
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await owner.execute("CREATE SCHEMA other")
    finally:
        await owner.close()


async def test_a_points_worker_migrates_as_the_owner_and_serves_as_the_runtime_role(kafka, database_url, tmp_path):
    from services.points.projection import MIGRATIONS  # noqa: F401  (the worker applies them)
    from tests.integration.points.test_points_worker import ORDERS_SOURCE, balance_is, evaluated

    await _bootstrap(database_url)
    w = Worker("services.points.app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "TOPIC_PARTITIONS": "4",
        "DATABASE_URL": role_url(database_url, app_role("points"), None),
        "MIGRATION_DATABASE_URL": role_url(database_url, owner_role("points"), None),
    }, prefix="POINTS_", log=tmp_path / "worker.log").start()
    try:
        await w.wait_ready()
        assignee = f"member-{uuid.uuid4().hex[:8]}"
        await send(kafka, "orders.events.v1", command(evaluated(assignee, minutes=60), source=ORDERS_SOURCE))
        await balance_is(w, f"resident:{assignee}", 7)
        status, _ = await http("GET", w.url + f"/v1/accounts/resident:{assignee}/statement", token=token(sub="console"))
        assert status == 200
    finally:
        code = w.stop()
        assert code == 0, (tmp_path / "worker.log").read_text()[-4000:]
    conn = await asyncpg.connect(database_url)
    try:
        owners = {r["tableowner"] for r in await conn.fetch("SELECT tableowner FROM pg_tables WHERE schemaname = 'points'")}
        assert owners == {"points_owner"}
        sessions = await conn.fetchval("SELECT count(*) FROM points.postings")
        assert sessions >= 1
    finally:
        await conn.close()


async def test_make_run_gives_each_worker_its_own_owner_and_runtime_urls(database_url, monkeypatch, tmp_path):
    from services.launcher.launcher import SERVICES as LAUNCHED, Config, Launcher

    for k in ("JWKS", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SCOPE_CLAIM", "SIMULATE", "DB_ROLES", "MIGRATION_DATABASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert Config.from_env().db_roles is False  # a given database: as before unless DB_ROLES=1
    monkeypatch.setenv("DB_ROLES", "1")
    la = Launcher(Config.from_env())
    la.bootstrap, la.dsn = "127.0.0.1:1", database_url
    la.set_clock()
    await la.make_db_roles()
    la.make_workers()
    for s in LAUNCHED:
        env = la.workers[s].env
        for key, role in (("DATABASE_URL", app_role(s)), ("MIGRATION_DATABASE_URL", owner_role(s))):
            assert f"//{role}:" in env[key]
            conn = await asyncpg.connect(env[key])
            try:
                assert await conn.fetchval("SELECT current_user") == role
                assert await conn.fetchval("SHOW search_path") == s
            finally:
                await conn.close()
