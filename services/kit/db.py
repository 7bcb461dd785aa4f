"""PostgreSQL access: one asyncpg pool per service, confined to the service's own schema."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import asyncpg
import orjson

log = logging.getLogger("kit.db")

# The database is away: retry the same work for as long as it takes (never ack meanwhile).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    # The database refuses writes for now (a read-only replica after a failover, an operator's
    # default_transaction_read_only, a full disk or no memory): the same work succeeds later.
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.InsufficientResourcesError,
    # The connection broke in the middle of the protocol (e.g. while the server shuts down).
    asyncpg.exceptions.InternalClientError,
)
# A conflict with a concurrent transaction: retry a few times; if it persists it is a fault.
CONFLICT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.UniqueViolationError,
    asyncpg.exceptions.LockNotAvailableError,
)
TRANSIENT_DB_ERRORS = UNAVAILABLE_ERRORS + CONFLICT_ERRORS


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE_ERRORS)


def _jsonb_encode(v) -> bytes:
    return b"\x01" + orjson.dumps(v)  # jsonb's binary format: version 1, then the JSON text


def _jsonb_decode(b: bytes):
    return orjson.loads(b[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary format, so that json/jsonb columns also work in binary COPY (the outbox's write).
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary")
    await conn.set_type_codec("json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog", format="binary")


async def create_pool(dsn: str, schema: str, *, service: str, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` only (never ``public``), with jsonb <-> Python via orjson."""
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, init=_init_connection, command_timeout=60,
        server_settings={"search_path": schema, "application_name": f"{service}-service"},
    )


async def connect_with_retry(dsn: str, schema: str, *, service: str, max_size: int, stop: asyncio.Event | None = None,
                             on_retry: Callable[[], None] | None = None) -> asyncpg.Pool:
    """A pool, once the database answers (``on_retry`` is called after each failed try)."""
    delay = 0.2
    while True:
        try:
            return await create_pool(dsn, schema, service=service, max_size=max_size)
        except UNAVAILABLE_ERRORS as e:
            if stop is not None and stop.is_set():
                raise
            if on_retry is not None:
                on_retry()
            log.warning("database not reachable yet (%s); retrying in %.1fs", e.__class__.__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
