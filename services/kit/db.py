"""PostgreSQL access: one asyncpg pool per service, confined to the service's own schema."""
from __future__ import annotations

import asyncio
import logging
import time
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


class KitConnection(asyncpg.Connection):
    """The kit's pooled connection. On release asyncpg's pool resets a connection (advisory
    locks, cursors, LISTENs, session settings: one more round trip); a connection that was only
    lent for a read-only transaction, which ended, holds none of them, and goes back without it
    (:meth:`clean`). Half an id lookup's database time was that reset."""

    __slots__ = ("_kit_clean",)

    def clean(self) -> None:
        """Nothing this connection did since it was acquired outlives its transactions: skip the
        reset at its next release."""
        self._kit_clean = True

    def get_reset_query(self) -> str:
        clean, self._kit_clean = getattr(self, "_kit_clean", False), False
        return "" if clean else super().get_reset_query()


class FairPool:
    """An asyncpg pool whose connections go to those who asked, in the order they asked.

    asyncpg's pool keeps its free connections in an ``asyncio`` queue, and a released connection
    goes to whoever calls ``acquire()`` next, not to the longest waiter: the waiter woken for it
    finds it taken by a newcomer and queues again at the back. Under load (more requests at once
    than connections) some requests wait for several turns: at 32 concurrent reads on a pool of
    10, the p99 was three times the p50. Here each caller first takes a turn (a FIFO
    semaphore with as many turns as the pool has connections), so the pool itself never has a
    waiter; everything else is the pool's (``__getattr__``)."""

    def __init__(self, pool: asyncpg.Pool):
        self._pool = pool
        self._turns = asyncio.Semaphore(pool.get_max_size())
        self.observe_wait: Callable[[float], None] | None = None  # seconds each caller waited for its turn

    def acquire(self) -> "_Acquire":
        """``async with pool.acquire() as conn`` or ``conn = await pool.acquire()`` (then
        :meth:`release`), as with asyncpg's pool."""
        return _Acquire(self)

    async def release(self, conn: asyncpg.Connection, *, timeout: float | None = None) -> None:
        try:
            await self._pool.release(conn, timeout=timeout)
        finally:
            self._turns.release()

    async def _take(self) -> asyncpg.Connection:
        queued_at = time.perf_counter() if self._turns.locked() else None  # None: a turn is free
        await self._turns.acquire()
        if self.observe_wait is not None:
            self.observe_wait(0.0 if queued_at is None else time.perf_counter() - queued_at)
        try:
            return await self._pool.acquire()
        except BaseException:
            self._turns.release()
            raise

    def __getattr__(self, name: str):
        return getattr(self._pool, name)


class _Acquire:
    __slots__ = ("_fair", "_conn")

    def __init__(self, fair: FairPool):
        self._fair = fair
        self._conn: asyncpg.Connection | None = None

    def __await__(self):
        return self._fair._take().__await__()

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await self._fair._take()
        return self._conn

    async def __aexit__(self, *exc) -> None:
        conn, self._conn = self._conn, None
        await self._fair.release(conn)


async def create_pool(dsn: str, schema: str, *, service: str, max_size: int = 10) -> FairPool:
    """A pool whose connections see ``schema`` only (never ``public``), with jsonb <-> Python via
    orjson, handed out first come, first served (:class:`FairPool`)."""
    return FairPool(await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, init=_init_connection, command_timeout=60, connection_class=KitConnection,
        server_settings={"search_path": schema, "application_name": f"{service}-service"},
    ))


async def connect_with_retry(dsn: str, schema: str, *, service: str, max_size: int, stop: asyncio.Event | None = None,
                             on_retry: Callable[[], None] | None = None) -> FairPool:
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
