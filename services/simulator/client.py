"""An example client of the platform: publish a command, follow its outcome.

This is how another city system (a grid app, a community console, a merchant's till) talks to
the services: it writes a CloudEvent to the service's intake topic and reads what the command
caused — events on ``<svc>.events.v1`` and refusals on ``<svc>.rejections.v1`` carry the
command's ``id`` as their ``causationid``. Nothing else is needed: no database, no shared code
beyond the contract (``schemas``).

    async with CommandClient("127.0.0.1:9092", source="/grid-apps/app-7") as client:
        cmd = await client.send(ReportCase(case_id="c-1", grid_id="110105001001001", ...))
        outcome = await client.follow(cmd.id, timeout=10)
        if outcome.rejected:
            print("refused:", outcome.reason, outcome.detail)
        else:
            print([e.type for e in outcome.events])

``send_and_follow(payload)`` does both. Every command record carries its sender's JWT in an
``authorization`` header (``Bearer <JWT>``), as an HTTP call carries it, and the service admits
it only if that token may send it (role, actor fields, scope). Give the sender with
``sender=`` (a :class:`~services.simulator.identities.Actor`) and a ``minter``
(:class:`~services.simulator.identities.TokenMinter`) to sign a token per person; without
them a command goes with the demo token of the role that sends its type (``tokens``: role ->
JWT, :func:`services.simulator.identities.tokens_by_role`, roles from
:data:`~services.simulator.identities.ROLE_OF`). With ``points_url``,
:meth:`CommandClient.redemption_code` asks the points HTTP API for a resident's consent code
(``POST /v1/redemption-codes``) that a merchant's redemption presents. The client reads the events and rejections topics of
every service from the moment it starts (``from_beginning=True`` to read history, e.g. to
follow a command sent earlier). Outcomes of a command are complete once its service has
committed; a command causes all its direct events in one transaction, so they arrive together.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Awaitable, Callable, Iterable, Mapping

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.common import Command, Payload
from services.kit.kafkasec import KafkaSecurity, client_kwargs
from schemas.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, CloudEvent, encode, envelope_for
from schemas.topics import BY_SERVICE, Topic

from .identities import Actor, TokenMinter, role_for

log = logging.getLogger("simulator.client")

Listener = Callable[[CloudEvent], Awaitable[None] | None]


@dataclass
class Outcome:
    """What a command caused: its events, or the rejection (``reason``, ``detail``)."""

    command_id: str
    events: list[CloudEvent] = field(default_factory=list)
    rejection: CloudEvent | None = None
    timed_out: bool = False

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    @property
    def unchanged(self) -> bool:
        """Answered ``no_change``: valid, and the state already was what it asked."""
        return self.reason == "no_change"

    @property
    def reason(self) -> str | None:
        return self.rejection.data.get("reason") if self.rejection else None

    @property
    def detail(self) -> str | None:
        return self.rejection.data.get("detail") if self.rejection else None

    def of_type(self, type_: str) -> list[CloudEvent]:
        return [e for e in self.events if e.type == type_]

    def as_dict(self) -> dict:
        return {"command_id": self.command_id, "timed_out": self.timed_out,
                "rejection": self.rejection.model_dump(mode="json", exclude_none=True) if self.rejection else None,
                "events": [e.model_dump(mode="json", exclude_none=True) for e in self.events]}


def outcome_topics(services: Iterable[str] | None = None) -> list[Topic]:
    """The topics where outcomes of commands appear: events and rejections of each service."""
    names = list(services) if services else list(BY_SERVICE)
    return [t for s in names for t in (BY_SERVICE[s].events, BY_SERVICE[s].rejections)]


class CommandClient:
    """Publishes commands to intake topics and follows outcomes by ``causationid``."""

    def __init__(self, bootstrap: str, *, source: str = "/simulator", services: Iterable[str] | None = None,
                 from_beginning: bool = False, keep: int = 200_000, now: Callable[[], datetime] | None = None,
                 tokens: Mapping[str, str] | None = None, minter: TokenMinter | None = None,
                 points_url: str | None = None, security: KafkaSecurity | None = None):
        self.bootstrap = bootstrap
        self.security = security  # the app's Kafka principal (None: PLAINTEXT)
        self.tokens = dict(tokens or {})  # role -> JWT (the demo identities), when there is no sender/minter
        self.minter = minter  # a token per sender (Actor)
        self.points_url = points_url.rstrip("/") if points_url else None
        self._http: aiohttp.ClientSession | None = None
        self.now = now or (lambda: datetime.now(timezone.utc))  # the envelope time of commands
        self.source = source
        self.services = list(services) if services else list(BY_SERVICE)
        self.from_beginning = from_beginning
        self.keep = keep
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._by_cause: dict[str, list[CloudEvent]] = defaultdict(list)
        self._by_subject: dict[str, list[CloudEvent]] = defaultdict(list)
        self._waiters: dict[str, list[asyncio.Event]] = defaultdict(list)
        self._listeners: list[Listener] = []
        self.received = 0
        self.sent = 0
        self._ready = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> "CommandClient":
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all",
                                          enable_idempotence=False, client_id=f"client{self.source}",
                                          **client_kwargs(self.security))
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *[t.name for t in outcome_topics(self.services)], bootstrap_servers=self.bootstrap,
            group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50,
            auto_offset_reset="earliest" if self.from_beginning else "latest", **client_kwargs(self.security))
        await self._consumer.start()
        # Pin the starting positions now, so nothing produced after start() is missed.
        for _ in range(100):
            if self._consumer.assignment():
                break
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        self._task = asyncio.ensure_future(self._read())
        return self

    async def stop(self) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._consumer:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        if self._producer:
            with contextlib.suppress(Exception):
                await self._producer.stop()

    async def __aenter__(self) -> "CommandClient":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def on_event(self, fn: Listener) -> None:
        """Call ``fn(envelope)`` for every event and rejection read (for dashboards, reactions)."""
        self._listeners.append(fn)

    # -- sending ----------------------------------------------------------------------------
    def envelope(self, payload: Command, *, id: str | None = None, correlationid: str | None = None,
                 causationid: str | None = None) -> CloudEvent:
        return envelope_for(payload, source=self.source, id=id or str(uuid.uuid4()),
                            time=self.now(), correlationid=correlationid, causationid=causationid)

    async def send(self, payload: Command, *, sender: Actor | None = None, id: str | None = None,
                   correlationid: str | None = None, causationid: str | None = None) -> CloudEvent:
        """Publish ``payload`` on its service's intake topic (key = its aggregate id), with the
        token of ``sender`` (see :meth:`token_for`)."""
        env = self.envelope(payload, id=id, correlationid=correlationid, causationid=causationid)
        await self.send_envelope(env, sender=sender)
        return env

    def token_for(self, command_type: str, sender: Actor | None = None) -> str | None:
        """The token a command of ``command_type`` is sent with: the sender's own (minted), else
        the demo token of the sender's role (or of the role that sends the type)."""
        if sender is not None and self.minter is not None:
            return self.minter.token(sender)
        role = role_for(command_type)
        if sender is not None and (role is None or role not in sender.roles):
            role = sender.role
        return self.tokens.get(role) if role else None

    async def send_envelope(self, env: CloudEvent, *, sender: Actor | None = None) -> None:
        topic = BY_SERVICE[env.type.split(".", 1)[0]].intake
        await self.send_raw(topic.name, encode(env), key=env.subject, token=self.token_for(env.type, sender))

    async def redemption_code(self, resident: Actor, amount: int, *, timeout: float = 10.0) -> dict | None:
        """A consent code of ``resident`` for a redemption of ``amount`` points: ``POST
        /v1/redemption-codes`` on the points HTTP API as that resident; the answer
        (``{"code", "account_id", "amount", "expires_at"}``), or None when refused (logged)."""
        if self.points_url is None:
            raise RuntimeError("the client has no points_url: it cannot ask for redemption codes")
        if self._http is None:
            self._http = aiohttp.ClientSession()
        token = self.minter.token(resident) if self.minter is not None else self.tokens.get("resident")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._http.post(self.points_url + "/v1/redemption-codes", json={"amount": amount},
                                       headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                body = await r.json(content_type=None)
                if r.status == 201 and isinstance(body, dict) and body.get("code"):
                    return body
                log.info("redemption code for %s refused: %s %s", resident.sub, r.status, body)
                return None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            log.warning("redemption code for %s: %r", resident.sub, e)
            return None

    async def send_raw(self, topic: str, value: bytes, *, key: str | None = None, token: str | None = None) -> None:
        """Publish raw bytes (also used to show what happens to a malformed record: the DLQ)."""
        assert self._producer is not None, "start() the client first"
        headers = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]
        if token:
            headers.append(("authorization", f"Bearer {token}".encode()))
        await self._producer.send_and_wait(topic, value, key=key.encode() if key else None, headers=headers)
        self.sent += 1

    # -- following --------------------------------------------------------------------------
    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=2000)
            for recs in batch.values():
                for r in recs:
                    try:
                        env = CloudEvent.model_validate(orjson.loads(r.value))
                    except Exception:
                        continue
                    self.received += 1
                    if env.subject:
                        self._by_subject[env.subject].append(env)
                    if env.causationid:
                        self._by_cause[env.causationid].append(env)
                        for w in self._waiters.pop(env.causationid, []):
                            w.set()
                    for fn in self._listeners:
                        try:
                            res = fn(env)
                            if asyncio.iscoroutine(res):
                                await res
                        except Exception:
                            log.exception("listener failed")
            for index in (self._by_cause, self._by_subject):
                if len(index) > self.keep:  # forget the oldest
                    for k in list(index)[: len(index) - self.keep]:
                        index.pop(k, None)

    def seen(self, subject: str, type_: str) -> CloudEvent | None:
        """The latest event of ``type_`` about ``subject`` (an aggregate id) read so far."""
        return next((e for e in reversed(self._by_subject.get(subject, ())) if e.type == type_), None)

    def caused_by(self, command_id: str) -> list[CloudEvent]:
        return list(self._by_cause.get(command_id, ()))

    async def follow(self, command_id: str, timeout: float = 15.0, settle: float = 0.2) -> Outcome:
        """Wait for what ``command_id`` caused; ``timed_out`` when nothing came within ``timeout``."""
        if not self._by_cause.get(command_id):
            ev = asyncio.Event()
            self._waiters[command_id].append(ev)
            try:
                await asyncio.wait_for(ev.wait(), timeout)
            except asyncio.TimeoutError:
                return Outcome(command_id, timed_out=True)
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters[command_id].remove(ev)
                if not self._waiters.get(command_id):
                    self._waiters.pop(command_id, None)
        await asyncio.sleep(settle)  # the rest of the same transaction's events
        got = self.caused_by(command_id)
        rejection = next((e for e in got if e.type.endswith(".command.rejected.v1")), None)
        return Outcome(command_id, [e for e in got if e is not rejection], rejection)

    async def send_and_follow(self, payload: Command, *, sender: Actor | None = None, timeout: float = 15.0,
                              **kw) -> Outcome:
        env = await self.send(payload, sender=sender, **kw)
        return await self.follow(env.id, timeout)

    def expect(self, predicate: Callable[[CloudEvent], bool]) -> asyncio.Future:
        """A future for the first event read from NOW on that matches ``predicate``.

        Create it before sending the command that leads to the event, so it cannot be missed.
        """
        fut: asyncio.Future = asyncio.get_running_loop().create_future()

        def check(env: CloudEvent) -> None:
            if not fut.done() and predicate(env):
                fut.set_result(env)

        self._listeners.append(check)
        fut.add_done_callback(lambda _: self._listeners.remove(check) if check in self._listeners else None)
        return fut

    async def wait_for(self, predicate: Callable[[CloudEvent], bool] | asyncio.Future,
                       timeout: float = 15.0) -> CloudEvent | None:
        """The first matching event (a predicate from now on, or a future from :meth:`expect`)."""
        fut = predicate if isinstance(predicate, asyncio.Future) else self.expect(predicate)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return None


def command_from(type_: str, data: dict) -> Payload:
    """Build a typed command from its type string and data (validates against the contract)."""
    from schemas.registry import model_for

    model = model_for(type_)
    if model is None or model.KIND != "command":
        raise ValueError(f"{type_!r} is not a command type of the contract")
    return model.model_validate(data)
