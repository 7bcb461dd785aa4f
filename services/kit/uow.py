"""Unit of work: one PostgreSQL transaction in which a batch's state changes, its inbox rows
and its outbox records are written together.

A handler gets the unit of work with the message it handles (:attr:`UnitOfWork.message`).
Each message is handled inside :meth:`UnitOfWork.savepoint`, so a refusal or a fault raised
after some writes undoes exactly that message: its database writes, the events it emitted,
its after-commit effects and its changes to the batch's participants (aggregate sets and
other buffers that are written once per batch, at :meth:`UnitOfWork.flush`).
"""
from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any, Callable, Hashable, Iterable, Protocol, TypeVar

import asyncpg

from schemas.common import Event
from schemas.envelope import Emitted, Message, build
from schemas.rejections import REJECTION_BY_SERVICE
from schemas.topics import BY_SERVICE, Topic

from . import clock
from . import metrics as m
from .errors import Rejected
from .identity import Principal
from .outbox import OutboxRecord

log = logging.getLogger("kit.uow")


def service_source(service: str) -> str:
    """The CloudEvents ``source`` of everything a service publishes."""
    return f"/services/{service}"


_TOPIC_OF: dict[tuple[type, str], Topic] = {}  # (event class, service) -> the topic it goes to


class Participant(Protocol):
    """Something a unit of work carries through a batch and writes once, at the end (an
    aggregate set, a buffer of projection rows). It can return to an earlier mark when the
    message that changed it is undone."""

    def mark(self) -> Any:
        """A token for the participant's present content."""

    def rollback(self, mark: Any) -> None:
        """Forget every change made since ``mark``."""

    async def flush(self, uow: "UnitOfWork") -> None:
        """Write what changed, in the unit of work's transaction."""


P = TypeVar("P", bound=Participant)

# The connection methods that talk to the server: inside a savepoint, the first of them opens it.
_QUERIES = ("execute", "executemany", "fetch", "fetchrow", "fetchval", "fetchmany", "copy_records_to_table",
            "copy_to_table", "copy_from_table", "copy_from_query", "prepare", "cursor")


class _SavepointConnection:
    """The connection as a handler sees it inside :meth:`UnitOfWork.savepoint`: the SAVEPOINT
    is sent just before the handler's first statement, so a message that never touches the
    database costs no round trip."""

    def __init__(self, conn: Any):
        self._conn = conn
        self._tx: Any = None

    async def _begin(self) -> None:
        if self._tx is None:
            tx = self._conn.transaction()
            await tx.start()
            self._tx = tx

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._conn, name)
        if name not in _QUERIES:
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._begin()
            return await target(*args, **kwargs)

        return call

    def transaction(self, **kwargs: Any) -> "_NestedTransaction":
        return _NestedTransaction(self, kwargs)

    async def rollback(self) -> None:
        if self._tx is not None:
            await self._tx.rollback()


class _NestedTransaction:
    """``conn.transaction()`` inside a savepoint: opens the savepoint first, then its own."""

    def __init__(self, outer: _SavepointConnection, kwargs: dict[str, Any]):
        self._outer = outer
        self._kwargs = kwargs
        self._tx: Any = None

    async def start(self) -> None:
        await self._outer._begin()
        self._tx = self._outer._conn.transaction(**self._kwargs)
        await self._tx.start()

    async def commit(self) -> None:
        await self._tx.commit()

    async def rollback(self) -> None:
        await self._tx.rollback()

    async def __aenter__(self) -> "_NestedTransaction":
        await self.start()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            await self.commit()
        else:
            await self.rollback()


class _Savepoint:
    """:meth:`UnitOfWork.savepoint` (a class rather than a generator: it runs once per message)."""

    __slots__ = ("uow", "marks", "participants", "outer", "guard")

    def __init__(self, uow: "UnitOfWork"):
        self.uow = uow

    async def __aenter__(self) -> None:
        uow = self.uow
        self.marks = (len(uow.records), len(uow.emitted), len(uow.rejected), len(uow._after_commit))
        self.participants = {k: p.mark() for k, p in uow._participants.items()} if uow._participants else {}
        self.outer = uow.conn
        self.guard = uow.conn = _SavepointConnection(self.outer)

    async def __aexit__(self, exc_type, exc, tb) -> None:
        uow = self.uow
        uow.conn = self.outer
        if exc_type is None:
            if self.guard._tx is not None:
                await self.guard._tx.commit()
            return
        with contextlib.suppress(Exception):  # a broken connection fails the whole transaction anyway
            await self.guard.rollback()
        records, emitted, rejected, effects = self.marks
        del uow.records[records:], uow.emitted[emitted:], uow.rejected[rejected:], uow._after_commit[effects:]
        for k in [k for k in uow._participants if k not in self.participants]:
            del uow._participants[k]
        for k, mark in self.participants.items():
            uow._participants[k].rollback(mark)


class UnitOfWork:
    """What a handler gets: the transaction's connection, the time, the message being handled,
    and ways to emit.

    Everything emitted is written to the outbox in the same transaction, when the kit commits.
    """

    def __init__(self, conn: asyncpg.Connection, service: str, now: datetime | None = None,
                 principal: Principal | None = None):
        self.conn: Any = conn
        self.service = service
        self.topics = BY_SERVICE[service]
        self.source = service_source(service)
        self.now = now or clock.now()
        self.message: Message | None = None  # set by the kit while a handler runs
        self.batch: tuple[Message, ...] = ()  # the batch's messages, set by the kit for its batch steps
        self._principal = principal
        self.records: list[OutboxRecord] = []
        self.emitted: list[Emitted] = []
        self.rejected: list[tuple[Message, Rejected]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._participants: dict[Hashable, Participant] = {}

    @property
    def principal(self) -> Principal | None:
        """Who sent the message being handled, verified: the caller of an HTTP command or the
        holder of an intake record's token (``message.principal``); None for another service's
        event and for a timer, and for an intake record whose token did not verify (its
        ``message.principal`` says why; a service's policy refuses such a command before any
        handler runs)."""
        msg = self.message
        if msg is not None and msg.principal is not None:
            return msg.principal if isinstance(msg.principal, Principal) else None
        return self._principal

    # -- participants ----------------------------------------------------------------------
    def attach(self, key: Hashable, factory: Callable[[], P]) -> P:
        """The participant registered under ``key``, created by ``factory`` on first use.
        Participants are flushed in the order they were attached."""
        found = self._participants.get(key)
        if found is None:
            found = self._participants[key] = factory()
        return found  # type: ignore[return-value]

    async def flush(self) -> None:
        """Write what the participants hold (called by the kit once per batch, before the outbox)."""
        for p in list(self._participants.values()):
            await p.flush(self)

    def close(self) -> None:
        """Let go of the participants once the transaction is over. Each holds the unit of work,
        which holds them: a cycle that only the cyclic garbage collector would free, with the
        batch's whole state in it (its messages, the states read and written). Let go of here,
        it is freed at once."""
        self._participants.clear()

    # -- savepoints ------------------------------------------------------------------------
    def savepoint(self) -> "_Savepoint":
        """``async with uow.savepoint():`` undoes everything done inside the block when it
        raises: the database writes (a SAVEPOINT opened before its first statement), the records
        emitted, the after-commit effects, and the participants' changes. The exception
        propagates."""
        return _Savepoint(self)

    # -- effects ---------------------------------------------------------------------------
    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction has committed (never if it rolls back, is retried,
        or the message that asked for it is undone).

        The place for metric counters and other in-memory effects of a handled message.
        """
        self._after_commit.append(fn)

    def committed(self) -> None:
        """Called by the kit after the commit."""
        for fn in self._after_commit:
            try:
                fn()
            except Exception:  # an observer must not undo a durable commit
                log.exception("after-commit callback failed")
        self._after_commit.clear()

    def emit(self, payload: Event, *, cause: Message | None = None, id: str | None = None,
             time: datetime | None = None, key: str | None = None) -> Emitted:
        """Publish an event of this service (via the outbox), caused by ``cause``: by default
        the message being handled (none in a timer: the start of a story)."""
        if cause is None:
            cause = self.message
        topic = _TOPIC_OF.get((type(payload), self.service))
        if topic is None:  # first event of this class: check it once (isinstance on a model is slow)
            if not isinstance(payload, Event) or payload.service() != self.service:
                raise ValueError(f"{self.service} may only publish its own events, not {payload.TYPE}")
            topic = _TOPIC_OF[(type(payload), self.service)] = (
                self.topics.rejections if payload.TYPE.endswith(".command.rejected.v1") else self.topics.events)
        env, value = build(
            payload, source=self.source, id=id, time=time or self.now, subject=key,
            correlationid=cause.correlation_id if cause else None,  # None: the start of a story
            causationid=cause.id if cause else None,
        )
        self.records.append(OutboxRecord(topic=topic.name, key=env.subject.encode(), value=value,
                                         message_type=payload.TYPE))
        self.emitted.append(env)
        return env

    def emit_all(self, payloads: Iterable[Event], *, cause: Message | None = None) -> list[Emitted]:
        """:meth:`emit` each payload in order."""
        return [self.emit(p, cause=cause) for p in payloads]

    def reject(self, cause: Message, error: Rejected) -> Emitted:
        """Publish ``<svc>.command.rejected.v1`` for a refused command."""
        model = REJECTION_BY_SERVICE[self.service]
        payload = model(command_id=cause.id, command_type=cause.type, reason=error.reason,
                        detail=error.detail, field=error.field)
        self.rejected.append((cause, error))
        self.after_commit(m.COMMANDS_REJECTED.labels(self.service, cause.type, error.reason).inc)
        return self.emit(payload, cause=cause, key=cause.envelope.subject or cause.payload.aggregate_id)

    def caused_live(self, event_type: str) -> bool | None:
        """In a rebuild (``services/kit/rebuild.py``): whether the worker, when it first handled
        the message being handled, published an event of ``event_type`` for it (its events and
        rejections topics say so). None when the message is being handled live.

        For a decision that rests on state no input topic holds (a consent code created over
        HTTP and checked on the wall clock): replayed, the handler takes the outcome the topics
        record instead of deciding it again without that state. In a replayed timer round (see
        :meth:`~services.kit.runtime.ServiceRuntime.timer`): whether the live round published one."""
        return None

    def live_events(self, event_type: str) -> list[dict[str, Any]] | None:
        """In a rebuild: the data of the events of ``event_type`` (one of the handler's
        ``replayed`` types) the worker published for the message being handled, in order
        (empty: none of that type). None when the message is handled live, or when the rebuild
        knows nothing it caused.

        For a decision that rests on the state of other aggregates, which the service's timers
        changed (and a replay does not): replayed, the handler takes the worker's choice. In a
        replayed timer round: the data of those the live round published (all its subjects'),
        for what the round found in state that batches of other lanes were changing."""
        return None

    def caused_by(self, message_id: str) -> list[Emitted]:
        return [e for e in self.emitted if e.causationid == message_id]
