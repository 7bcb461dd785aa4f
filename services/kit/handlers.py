"""The command path: a service's handlers, declared by payload class, run by the kit.

A service writes one :class:`Handler` subclass with a typed method per command or event
class it reacts to::

    class GridHandler(Handler):
        service = "grid"

        @prepares(ReportCase, RegisterCase, ...)   # once per batch, before the handlers
        async def load_cases(self, uow, commands: Sequence[GridCommand]) -> None: ...

        @handles(RegisterCase)
        async def register(self, uow, cmd: RegisterCase) -> None: ...

The kit (:func:`dispatch`) runs a batch: each ``prepares`` step once with the payloads of its
classes in batch order (to load and lock at once what the batch names), then each message's
handler with its typed payload, inside :meth:`UnitOfWork.savepoint`, with
:attr:`UnitOfWork.message` set to the message. What a handler raises decides what happens:

- :class:`~services.kit.errors.Rejected` for one of the service's own commands: the message's
  writes are undone and ``<svc>.command.rejected.v1`` is published (HTTP 409);
  for another service's event (a fact cannot be refused): logged and counted;
- nothing, for one of the service's own commands, and the handler emitted neither an event nor a
  rejection: the kit publishes the rejection ``no_change`` (:class:`~services.kit.errors.NoChange`;
  HTTP 409), so that every command has an outcome; the handler's writes stay. Another service's
  event that changes nothing has no outcome (nobody waits for one);
- a database outage or a conflict with a concurrent transaction: the whole batch is retried;
- anything else is a fault: the message's writes are undone and the kit dead-letters it.

Batching, the inbox, the outbox, dead letters and offsets stay the kit's business; a service
never overrides the batch loop.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Awaitable, Callable, ClassVar, Sequence

from schemas.common import Command, Payload
from schemas.envelope import Message

from . import jsonlog
from . import metrics as m
from .db import CONFLICT_ERRORS, UNAVAILABLE_ERRORS
from .errors import NoChange, Rejected
from .policy import Policy, Refused
from .uow import UnitOfWork

log = logging.getLogger("kit.handlers")

HandlerFn = Callable[[Any, UnitOfWork, Any], Awaitable[None]]


def handles(*classes: type[Payload]):
    """Declare a :class:`Handler` method as the handler of messages whose payload is one of
    ``classes`` (a class is handled by one method)."""

    def deco(fn):
        fn.__kit_handles__ = (*getattr(fn, "__kit_handles__", ()), *classes)
        return fn

    return deco


def prepares(*classes: type[Payload]):
    """Declare a :class:`Handler` method as a batch step: called once per batch, before any
    handler runs, with the payloads of ``classes`` (exactly those classes) in the batch, in order
    (the messages themselves, envelopes and all, are ``uow.batch``). A batch step only loads
    and locks; what it raises fails the batch, which the kit then redoes one message at a time."""

    def deco(fn):
        fn.__kit_prepares__ = (*getattr(fn, "__kit_prepares__", ()), *classes)
        return fn

    return deco


class Handler:
    """A service's handlers, found by the payload's class (see the module docstring)."""

    service: ClassVar[str] = ""
    policy: ClassVar[Policy | None] = None
    """Who may send the service's commands (:mod:`services.kit.policy`); checked by the kit
    before the handler of each own command, over HTTP and Kafka alike. None: no checks (the
    kit's own tests only; every service declares one)."""
    event_time: ClassVar[Callable[[Any, Any], Any] | None] = None
    """``event_time(payload, envelope_time)``: the time this service's rules date another
    service's event by, where that is not the envelope's ``time`` (None: it is). The consumer
    refuses an event whose time is implausibly far from its record's timestamp
    (``implausible_time``, ``EVENT_TIME_MAX_SKEW_SECONDS``)."""
    replayed: ClassVar[tuple[str, ...]] = ()
    """Types of this service's events whose data a rebuild keeps from the events topic, so that
    a handler replaying a message can take a decision the worker took from what it published
    (:meth:`~services.kit.uow.UnitOfWork.live_events`)."""
    _handlers: ClassVar[dict[type, str]]
    _steps: ClassVar[tuple[tuple[str, frozenset[type]], ...]]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        handlers: dict[type, str] = {}
        steps: dict[str, tuple[type, ...]] = {}
        for base in reversed(cls.__mro__):  # a subclass's method takes over its base's classes
            own: dict[type, str] = {}
            for name, fn in vars(base).items():
                for c in getattr(fn, "__kit_handles__", ()):
                    if c in own:
                        raise TypeError(f"{base.__name__}: {c.__name__} is handled by {own[c]} and {name}")
                    own[c] = name
                if getattr(fn, "__kit_prepares__", None):
                    steps[name] = frozenset(fn.__kit_prepares__)
            handlers.update(own)
        cls._handlers = handlers
        cls._steps = tuple(steps.items())

    @property
    def types(self) -> frozenset[str]:
        """The message types this handler reacts to; others on its topics are ignored."""
        return frozenset(c.TYPE for c in self._handlers)

    def handler_for(self, payload: Payload) -> Callable[[UnitOfWork, Any], Awaitable[None]] | None:
        """The bound handler of the payload's class (by its exact class), or None."""
        bound = self.__dict__.get("_bound")
        if bound is None:
            bound = self.__dict__["_bound"] = {c: getattr(self, name) for c, name in self._handlers.items()}
        return bound.get(type(payload))


async def dispatch(handler: Handler, uow: UnitOfWork, messages: Sequence[Message], *,
                   conflicts_are_faults: bool = False) -> list[tuple[Message, Exception]]:
    """Handle a batch in ``uow``: the batch steps, then each message in its savepoint.

    Returns the faults: the messages whose handler raised something other than a refusal (their
    writes undone), for the caller to dead-letter. Outages propagate, and so do conflicts unless
    ``conflicts_are_faults`` (a message that has kept conflicting through the kit's retries)."""
    routed = []
    for msg in messages:
        fn = handler.handler_for(msg.payload)
        if fn is None:
            continue
        if handler.policy is not None and isinstance(msg.payload, Command) and msg.payload.service() == uow.service:
            try:
                msg = admit(handler.policy, msg)
            except Refused as e:
                uow.reject(msg, e)
                continue
        routed.append((msg, fn))
    uow.batch = tuple(msg for msg, _ in routed)
    for name, classes in handler._steps:
        payloads = [msg.payload for msg, _ in routed if type(msg.payload) in classes]
        if payloads:
            await getattr(handler, name)(uow, payloads)
    faults: list[tuple[Message, Exception]] = []
    for msg, fn in routed:
        fault = await _handle_one(uow, msg, fn, conflicts_are_faults)
        if fault is not None:
            faults.append((msg, fault))
    return faults


def admit(policy: Policy, msg: Message) -> Message:
    """``msg`` as its sender may send it (actor fields filled from the token), or :class:`Refused`."""
    payload = policy.admit(msg.payload, msg.principal)
    return msg if payload is msg.payload else dataclasses.replace(msg, payload=payload)


async def _handle_one(uow: UnitOfWork, msg: Message, fn: Callable[[UnitOfWork, Any], Awaitable[None]],
                      conflicts_are_faults: bool) -> Exception | None:
    uow.message = msg
    token = jsonlog.correlation_id.set(msg.correlation_id)
    cause_token = jsonlog.causation_id.set(msg.id)
    own_command = isinstance(msg.payload, Command) and msg.payload.service() == uow.service
    before = (len(uow.emitted), len(uow.rejected))
    try:
        async with uow.savepoint():
            await fn(uow, msg.payload)
            if own_command and (len(uow.emitted), len(uow.rejected)) == before:
                uow.reject(msg, NoChange(msg.type))  # an answer, not an undo: the handler's writes stay
    except Rejected as e:
        for fn in e.effects:
            uow.after_commit(fn)
        if msg.payload.service() == uow.service:
            uow.reject(msg, e)
        else:
            log.warning("reaction to %s %s refused: %s", msg.type, msg.id, e)
            uow.after_commit(m.COMMANDS_REJECTED.labels(uow.service, msg.type, e.reason).inc)
    except UNAVAILABLE_ERRORS:
        raise
    except CONFLICT_ERRORS as e:
        if not conflicts_are_faults:
            raise
        log.error("%s %s kept conflicting with concurrent transactions: %r", msg.type, msg.id, e)
        return e
    except Exception as e:
        log.error("handler failed on %s %s: %r", msg.type, msg.id, e)
        return e
    finally:
        uow.message = None
        jsonlog.causation_id.reset(cause_token)
        jsonlog.correlation_id.reset(token)
    return None
