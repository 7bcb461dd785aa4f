"""Unit of work: one PostgreSQL transaction in which a batch's state changes, its inbox rows
and its outbox records are written together; and the per-message handler base class."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Awaitable, Callable, Iterable, Sequence

import asyncpg

from schemas.common import Event
from schemas.envelope import Emitted, Message, build
from schemas.rejections import REJECTION_BY_SERVICE
from schemas.topics import BY_SERVICE, Topic

from . import clock, jsonlog
from . import metrics as m
from .errors import Rejected
from .outbox import OutboxRecord

log = logging.getLogger("kit.uow")


def service_source(service: str) -> str:
    """The CloudEvents ``source`` of everything a service publishes."""
    return f"/services/{service}"


_TOPIC_OF: dict[tuple[type, str], Topic] = {}  # (event class, service) -> the topic it goes to


class UnitOfWork:
    """What a handler gets: the transaction's connection, the time, and ways to emit.

    Everything emitted is written to the outbox in the same transaction, when the kit commits.
    """

    def __init__(self, conn: asyncpg.Connection, service: str, now: datetime | None = None):
        self.conn = conn
        self.service = service
        self.topics = BY_SERVICE[service]
        self.source = service_source(service)
        self.now = now or clock.now()
        self.records: list[OutboxRecord] = []
        self.emitted: list[Emitted] = []
        self.rejected: list[tuple[Message, Rejected]] = []
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction has committed (never if it rolls back or is retried).

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
        """Publish an event of this service (via the outbox), caused by ``cause`` if given."""
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
        self.records.append(OutboxRecord(topic=topic.name, key=env.subject, value=value, message_type=payload.TYPE))
        self.emitted.append(env)
        return env

    def emit_all(self, payloads: Iterable[Event], *, cause: Message | None = None) -> list[Emitted]:
        return [self.emit(p, cause=cause) for p in payloads]

    def reject(self, cause: Message, error: Rejected) -> Emitted:
        """Publish ``<svc>.command.rejected.v1`` for a refused command."""
        model = REJECTION_BY_SERVICE[self.service]
        payload = model(command_id=cause.id, command_type=cause.type, reason=error.reason,
                        detail=error.detail, field=error.field)
        self.rejected.append((cause, error))
        self.after_commit(m.COMMANDS_REJECTED.labels(self.service, cause.type, error.reason).inc)
        return self.emit(payload, cause=cause, key=cause.envelope.subject or cause.payload.aggregate_id)

    def caused_by(self, message_id: str) -> list[Emitted]:
        return [e for e in self.emitted if e.causationid == message_id]


HandlerFn = Callable[[UnitOfWork, Message], Awaitable[None]]


class Handler:
    """Routes each message to the method registered for its type.

    Subclasses register methods with :func:`on`. A :class:`Rejected` raised for one of the
    service's own commands becomes a rejection event; for another service's event (a
    reaction) it is logged and counted, since a fact cannot be refused. Any other exception
    is a fault: the kit rolls the batch back and dead-letters the failing record.
    Decide before writing: raise ``Rejected`` before the first database write of a message.
    """

    service: str = ""
    _routes: dict[str, str]

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        routes: dict[str, str] = {}
        for base in reversed(cls.__mro__):
            for name, fn in vars(base).items():
                for t in getattr(fn, "_handles", ()):
                    routes[t] = name
        cls._routes = routes

    @property
    def types(self) -> frozenset[str]:
        """The message types this handler reacts to; others on its topics are ignored."""
        return frozenset(self._routes)

    async def handle_batch(self, uow: UnitOfWork, messages: Sequence[Message]) -> None:
        for msg in messages:
            await self.handle(uow, msg)

    async def handle(self, uow: UnitOfWork, msg: Message) -> None:
        name = self._routes.get(msg.type)
        if name is None:
            return
        token = jsonlog.correlation_id.set(msg.correlation_id)
        cause_token = jsonlog.causation_id.set(msg.id)
        try:
            await getattr(self, name)(uow, msg)
        except Rejected as e:
            if msg.payload.service() == uow.service:
                uow.reject(msg, e)
            else:
                log.warning("reaction to %s %s refused: %s", msg.type, msg.id, e)
                uow.after_commit(m.COMMANDS_REJECTED.labels(uow.service, msg.type, e.reason).inc)
        finally:
            jsonlog.causation_id.reset(cause_token)
            jsonlog.correlation_id.reset(token)


def on(*types: str):
    """Register a :class:`Handler` method for message types."""

    def deco(fn):
        fn._handles = (*getattr(fn, "_handles", ()), *types)
        return fn

    return deco
