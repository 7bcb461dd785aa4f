"""The service runtime: a faust worker carrying the kit.

faust-streaming gives the App and worker lifecycle, the web server, timers and the CLI
(``python -m services.<svc>.app worker``). The hot consume path is the kit's aiokafka
:class:`~services.kit.consumer.BatchConsumer` running inside the worker as a mode Service,
because faust's per-message agents handle one record at a time and cap a worker far below what
batches reach.

A service's ``app`` module does::

    rt = ServiceRuntime("grid", GridSettings(), migrations=Path(__file__).parent.parent / "migrations")
    rt.consume("intake", [GRID.intake], GridHandler(...))
    rt.command_api(handler)                 # POST /v1/commands, same handler as the intake
    @rt.get("/v1/cases/{case_id}", path=CaseRef, responses={200: CaseOut})  # queries (services.kit.routes)
    async def get_case(req: Request[CaseRef, None, None]): ...
    @rt.timer(10.0)                          # periodic work in one transaction
    async def overdue(uow): ...
    app = rt.app

``GET /openapi.json`` is built from the declared routes (:mod:`services.kit.openapi`).

Every route but ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json`` (and those declared
``auth=False``) needs ``Authorization: Bearer <JWT>``, verified by one
:class:`~services.kit.identity.TokenVerifier` built from the settings (``JWKS``, ``JWT_ISSUER``,
``JWT_AUDIENCE``...); the route gets the caller as ``req.principal``.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import inspect
import os
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote

import faust
import mode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from schemas.envelope import SOURCE_MAX_BYTES, CloudEvent, DecodeError, Message, decode_payload, refuse_nul, source_fits
from schemas.topics import BY_SERVICE, Topic

from . import clock, jsonlog
from . import metrics as m
from .consumer import BatchConsumer, claim
from .handlers import Handler, admit, dispatch
from .db import CONFLICT_ERRORS, UNAVAILABLE_ERRORS, FairPool, connect_with_retry
from .http import HttpError, authenticate_async, dumps, from_validation_error
from .identity import Principal, TokenVerifier, Unauthenticated
from .policy import Refused
from .migrations import KIT_MIGRATIONS, migrate, pending
from .kafkasec import faust_credentials
from .outbox import OutboxRelay, RecordTooLarge, producer_for, reader_for, refresh_stats, set_max_record_bytes
from .outbox import write as write_outbox
from .provision import provision
from .relay import RelayProcess
from .routes import (CommandOut, CommandRefused, Documented, ErrorShape, Health, Readiness, Request, Route,
                     RouteFn, command_body, found)
from .settings import ServiceSettings
from .locks import try_advisory_lock
from . import retention
from .uow import UnitOfWork

log = logging.getLogger("kit.runtime")

EventPick = Callable[[Mapping[str, Any]], bool]
"""Whether a published event (its ``data``) is a given timer's, of a type two timers publish."""


class NotReady(ConnectionError):
    """The worker has no database pool yet (it is starting or stopping): answered 503 with
    ``Retry-After`` over HTTP, retried by a timer (one of :data:`~services.kit.db.UNAVAILABLE_ERRORS`)."""


RETRY_AFTER_SECONDS = 2  # the Retry-After of every 503: a starting worker is ready in seconds


def response_headers(status: int) -> dict[str, str] | None:
    """Headers an answer carries besides its content type: every 503 (starting, database away,
    busy) says when to come back."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None


class KitApp(faust.App):
    """faust's App that begins the kit's start-up (:meth:`ServiceRuntime._start`) as soon as the
    App starts, instead of after faust's own consumer has joined its group: the two group joins
    (faust's and the kit's, each a session-timeout-bound wait on a restart) overlap."""

    kit: "ServiceRuntime | None" = None

    async def on_start(self) -> None:
        await super().on_start()
        if self.kit is not None:
            self.kit._begin_start()

    async def on_stop(self) -> None:
        if self.kit is not None:  # stopped before faust started the kit's service: stop what began
            await self.kit._stop()
        await super().on_stop()


class QuietWorker(faust.Worker):
    """faust's worker without its progress spinner, whose terminal escape codes would break the
    JSON log (one object per line) for log shippers; ``main`` below silences the rest."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spinner = None


class ServiceRuntime:
    def __init__(self, service: str, settings: ServiceSettings, *, migrations: Path | None = None):
        self.service = service
        self.settings = settings
        self.topics = BY_SERVICE[service]
        self.components = [("kit", KIT_MIGRATIONS)] + ([(service, migrations)] if migrations else [])
        self.pool: FairPool | None = None
        self.relay: OutboxRelay | RelayProcess | None = None
        self._relay_task: asyncio.Future | None = None
        self.producer = None
        self.consumers: list[BatchConsumer] = []
        self._consumer_specs: list[tuple[str, Sequence[Topic], Handler, str | None]] = []
        # timer name -> (what a round did to some aggregates, done again; the types of the events
        # it publishes, each with what tells its events from another timer's of the type, or
        # None): what a rebuild runs again where the live timer published
        # (``rt.timer(..., replays=..., replay=...)``)
        self.replayed_timers: dict[str, tuple[Callable[[UnitOfWork, list[str]], Awaitable[None]],
                                              dict[str, EventPick | None]]] = {}
        self._startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self.ready = False
        self.serving = False  # migrations applied and start-up hooks run: routes with db=True may run
        self._starting: asyncio.Future | None = None
        self._stopped = False
        # None when JWKS is not set: the worker refuses to start then (building a document does not need it)
        self.verifier: TokenVerifier | None = TokenVerifier.from_settings(settings) if settings.jwks else None
        self._verify_in_thread = bool(settings.jwks) and settings.jwks.startswith(("https://", "http://"))
        clock.use(settings.clock())
        self._routes: dict[str, dict[str, Route]] = {}  # path template -> method -> declaration
        self.app = self._make_app()
        self._install_service()
        self._openapi: dict[str, Any] | None = None
        self.get("/healthz", auth=False, db=False, responses={200: Health})(self._healthz)
        self.get("/readyz", auth=False, db=False,
                 responses={200: ("ready", Readiness), 503: ("not ready: `checks` says which check fails", Readiness)}
                 )(self._readyz)
        self.get("/openapi.json", auth=False, db=False, name="/openapi.json",
                 responses={200: ("this document (OpenAPI 3.1)", dict[str, Any])})(self._openapi_json)
        self._add_metrics_page()
        self.retention_rules: list[retention.Rule] = [
            retention.Rule("inbox", "processed_at", settings.inbox_retention_days),
            retention.Rule("command_outcomes", "recorded_at", settings.inbox_retention_days),
            retention.Rule("outbox", "created_at", settings.outbox_retention_days)]
        self.timer(settings.retention_interval_seconds, name="retention", exclusive=True)(self._retention)

    def main(self) -> None:
        """faust's command line (``worker -l info``...), quiet unless ``--no-quiet`` is given: the
        banner and the "OK" marks would otherwise be mixed into the JSON log on stdout."""
        if sys.argv[1:2] == ["rebuild"]:  # the kit's own command (services/kit/rebuild.py), not faust's
            from .rebuild import main as rebuild_main

            rebuild_main(self, sys.argv[2:])
            return
        if self.verifier is None and "worker" in sys.argv[1:]:
            raise SystemExit(f"{self.service}: JWKS is not set: no token could be verified (set JWKS to the "
                             "identity provider's JWKS file or URL)")
        if self.verifier is not None and not self._verify_in_thread and "worker" in sys.argv[1:]:
            try:  # a JWKS file must be readable from the start
                self.verifier.prefetch()
            except Unauthenticated as e:
                raise SystemExit(f"{self.service}: JWKS {self.settings.jwks}: {e}") from None
        if not any(a in ("-q", "--quiet", "--no-quiet") for a in sys.argv[1:]):
            sys.argv.insert(1, "--quiet")
        self.app.main()

    # -- faust app ------------------------------------------------------------------------
    def _make_app(self) -> faust.App:
        datadir = Path(os.environ.get("VAR_DIR", "var")) / "faust" / f"{self.service}-service"
        datadir.mkdir(parents=True, exist_ok=True)
        brokers = ";".join(f"kafka://{b.strip()}" for b in self.settings.kafka_bootstrap_servers.split(","))
        app = KitApp(
            f"{self.service}-service",
            broker=brokers,
            web_host=self.settings.http_host,
            web_port=self.settings.http_port,
            web_enabled=True,
            web_in_thread=False,
            # aiohttp refuses a larger body when a route reads it (answered 413 by the kit)
            web_application_options={"client_max_size": self.settings.http_max_body_bytes},
            # only the kit's routes: faust's own pages (router, tables, graph, stats) would expose
            # internals without authentication
            web_router_enabled=False,
            web_tables_enabled=False,
            web_graph_enabled=False,
            web_stats_enabled=False,
            web_metrics_enabled=False,
            store="memory://",
            autodiscover=False,
            # faust's own files (no tables are kept there) go under var/, never the working tree
            datadir=str(datadir),
            producer_acks=-1,
            broker_rebalance_timeout=3,
            broker_session_timeout=self.settings.kafka_session_timeout_ms / 1000,
            broker_heartbeat_interval=min(1.0, self.settings.kafka_session_timeout_ms / 3000),
            topic_partitions=1,
            topic_replication_factor=self.settings.topic_replication_factor,
            consumer_auto_offset_reset="earliest",
            Worker=QuietWorker,
            # the same principal and TLS as the kit's own clients (faust's producer and consumer)
            broker_credentials=faust_credentials(self.settings.kafka_security()),
        )
        app.kit = self
        return app

    def _install_service(self) -> None:
        rt = self

        class KitService(mode.Service):
            """Database, migrations, topics, producer, outbox relay and batch consumers."""

            async def on_start(self) -> None:
                rt._begin_start()  # begun already when the App started (KitApp)
                await rt._starting  # type: ignore[misc]

            async def on_stop(self) -> None:
                await rt._stop()

        self.app.service(KitService)

    def _begin_start(self) -> None:
        """Start the kit in the background, once (its errors surface where it is awaited)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        s = self.settings
        jsonlog.configure(self.service, s.log_level, s.log_format)
        if s.gc_gen0_threshold:
            # A high allocation rate makes CPython's cyclic GC run often over long-lived objects;
            # freezing what start-up made and raising the threshold makes collections rarer and keeps
            # them off those objects.
            gc.freeze()
            gc.set_threshold(s.gc_gen0_threshold, 50, 100)
        m.READY.labels(self.service).set(0)
        set_max_record_bytes(s.kafka_max_record_bytes)
        if clock.current().simulated:
            log.warning("simulated time: %s (domain times are not real; never in production)", clock.current().describe())
        m.CLOCK_OFFSET.labels(self.service).set_function(lambda: clock.now().timestamp() - time.time())
        self._stop_event = asyncio.Event()
        await self._load_keys()
        if s.migration_dsn() != s.dsn():
            # DDL as the owner role, then serve as the runtime role (services/kit/dbroles.py)
            owner = await connect_with_retry(s.migration_dsn(), self.service, service=f"{self.service}-migrations",
                                             max_size=1)
            try:
                async with owner.acquire() as conn:
                    applied = await migrate(conn, self.service, self.components)
            finally:
                await owner.close()
        self.pool = await connect_with_retry(s.dsn(), self.service, service=self.service, max_size=s.db_pool_max)
        self.pool.observe_wait = m.DB_POOL_WAIT.labels(self.service).observe
        if s.migration_dsn() == s.dsn():
            async with self.pool.acquire() as conn:
                applied = await migrate(conn, self.service, self.components)
        if applied:
            log.info("migrations applied: %s", applied)
        security = s.kafka_security()
        if s.provision_topics:
            await provision(s.kafka_bootstrap_servers, partitions=s.topic_partitions,
                            replication_factor=s.topic_replication_factor, security=security,
                            dlq_retention_days=s.dlq_retention_days)
        relay_apart = s.outbox_relay == "process"  # in a child process
        # the worker's producer: the relay's when it runs inline, else only for /readyz's broker check
        self.producer = producer_for(s.kafka_bootstrap_servers, f"{self.service}-{'worker' if relay_apart else 'relay'}",
                                     security)
        await self.producer.start()
        if relay_apart:
            self.relay = RelayProcess(service=self.service, dsn=s.dsn(), bootstrap=s.kafka_bootstrap_servers,
                                      batch=s.outbox_batch, poll_seconds=s.outbox_poll_seconds,
                                      nice=s.outbox_relay_nice, log_level=s.log_level, log_format=s.log_format,
                                      security=security, max_record_bytes=s.kafka_max_record_bytes,
                                      stall_seconds=s.outbox_relay_stall_seconds)
            await self.relay.start()
        else:
            self.relay = OutboxRelay(self.pool, self.producer, service=self.service, batch=s.outbox_batch,
                                     poll_seconds=s.outbox_poll_seconds, stall_seconds=s.outbox_relay_stall_seconds,
                                     reader=reader_for(s.kafka_bootstrap_servers, f"{self.service}-relay-check",
                                                       security))
            self._relay_task = asyncio.ensure_future(self.relay.run())
        self._tasks = [asyncio.ensure_future(self._outbox_stats())]
        for hook in self._startup_hooks:
            await hook()
        self.serving = True
        for name, topics, handler, group in self._consumer_specs:
            c = BatchConsumer(
                service=self.service, name=name, topics=topics,
                group_id=group or s.consumer_group or f"{self.service}-service-{name}",
                bootstrap=s.kafka_bootstrap_servers, pool=self.pool, handler=handler,
                on_commit=self.relay.notify, max_records=s.batch_max_records,
                fetch_max_wait_ms=s.fetch_max_wait_ms, fetch_max_bytes=s.fetch_max_bytes, lanes=s.consumer_lanes,
                verifier=self.verifier,
                max_record_age=s.intake_max_record_age_seconds, security=security,
                max_event_skew=s.event_time_max_skew_seconds, session_timeout_ms=s.kafka_session_timeout_ms)
            m.CONSUMER_STALLED.labels(self.service, name).set_function(c.stalled_seconds)
            self.consumers.append(c)
        # every group forms at once: joining one takes a while (half the session timeout on the
        # embedded broker), and a worker with three consumers must not wait for three in a row
        started = await asyncio.gather(*(c.start() for c in self.consumers), return_exceptions=True)
        failed = [e for e in started if isinstance(e, BaseException)]
        if failed:
            for c in self.consumers:
                await c.stop()
            raise failed[0]
        for c in self.consumers:
            self._tasks.append(asyncio.ensure_future(self._supervise(c)))
        self.ready = True
        m.READY.labels(self.service).set(1)
        log.info("%s service started", self.service)

    async def _load_keys(self) -> None:
        """The JWKS at start-up: a file must be readable now (a mistake in JWKS stops the worker);
        a URL is fetched in a thread, and a provider that is away only delays the first requests
        (the verifier fetches again when a token comes)."""
        if self.verifier is None:
            raise RuntimeError("JWKS is not set: no token could be verified (set JWKS to the identity "
                               "provider's JWKS file or URL)")
        if not self._verify_in_thread:
            self.verifier.prefetch()
            return
        try:
            await asyncio.to_thread(self.verifier.prefetch)
        except Unauthenticated as e:
            log.warning("JWKS %s not fetched at start-up (%s); fetched again on the first request",
                        self.settings.jwks, e.detail or e.reason)

    async def _outbox_stats(self, every: float = 5.0) -> None:
        """Every worker keeps the outbox gauges current, leader or not, broker up or down."""
        while True:
            await asyncio.sleep(every)
            try:
                async with self.pool.acquire() as conn:
                    await refresh_stats(conn, self.service)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database is away: /readyz says so; keep the last values
                log.debug("outbox stats not refreshed: %r", e)

    async def _supervise(self, c: BatchConsumer) -> None:
        """Keep a consumer loop running; an unexpected crash is logged and the loop restarted."""
        while True:
            try:
                await c.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer %s crashed; restarting its loop in 1s", c.name)
                await asyncio.sleep(1.0)

    async def _stop(self) -> None:
        """Stop consumers, let the relay finish its round, then close; bounded even when the
        broker or the database is gone."""
        if self._stopped:
            return
        self._stopped = True
        self.ready = self.serving = False
        m.READY.labels(self.service).set(0)
        if self._starting is not None and not self._starting.done():  # stopped while starting
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        for c in self.consumers:
            c._stopping = True
        others = getattr(self, "_tasks", [])
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for c in self.consumers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.stop(), 5)
        if self.relay is not None:  # after the consumers: their last commits are still published
            await self.relay.stop()
        if self._relay_task is not None:
            self._relay_task.cancel()
            await asyncio.gather(self._relay_task, return_exceptions=True)
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), 5)
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 5)

    # -- registration API -----------------------------------------------------------------
    def consume(self, name: str, topics: Sequence[Topic], handler: Handler, group_id: str | None = None) -> None:
        """Run a batch consumer over ``topics`` feeding ``handler``."""
        self._consumer_specs.append((name, topics, handler, group_id))

    def on_startup(self, fn: Callable[[], Awaitable[None]]):
        """Run after migrations, before consumers start (e.g. to load reference data)."""
        self._startup_hooks.append(fn)
        return fn

    @contextlib.asynccontextmanager
    async def transaction(self, now: datetime | None = None):
        """A unit of work outside the consumer (timers, tools); its outbox is written on exit.
        :class:`NotReady` while the worker has no database pool."""
        async with self.require_pool(serving=False).acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, self.service, now)
            yield uow
            await uow.flush()
            await write_outbox(conn, uow.records)
        uow.committed()
        if uow.records and self.relay is not None:
            self.relay.notify()

    def retain(self, table: str, column: str, days: float) -> None:
        """Add a table of the service's own to the retention timer (:mod:`services.kit.retention`)."""
        self.retention_rules.append(retention.Rule(table, column, days))

    async def _retention(self, uow: UnitOfWork) -> None:
        deleted = await retention.prune_all(uow.conn, self.retention_rules, self.settings.retention_batch)
        for table, n in deleted.items():
            if n:
                m.RETENTION_DELETED.labels(self.service, table).inc(n)
        if any(deleted.values()):
            log.info("retention: deleted %s", {t: n for t, n in deleted.items() if n})

    def timer(self, seconds: float, *, name: str | None = None, exclusive: bool = False,
              replays: Iterable[type | tuple[type, EventPick]] = (),
              replay: Callable[[UnitOfWork, list[str]], Awaitable[None]] | None = None):
        """Run ``fn(uow)`` every ``seconds`` in its own transaction, once the worker is ready.

        ``exclusive``: one worker of the service at a time runs it (a transaction-scoped
        advisory lock named after the timer; a worker that finds it taken skips its turn).

        ``replays``: the classes of every event the timer publishes, when what a round does to
        an aggregate is a function of its state and ``uow.now`` alone and each of its events is
        dated ``uow.now``; ``replay(uow, ids)`` does again what a round did to the aggregates
        its events were about (their subjects), reading them through the unit of work as a
        handler does. A rebuild (:mod:`services.kit.rebuild`) then takes each time the live
        timer published one of them (no message caused it) for a round, and calls ``replay`` at
        that time, among the messages handled before and after it, so that what the round
        changed is rebuilt too. A type two timers publish is given to each as ``(class, pick)``:
        ``pick(data)`` says from the event's ``data`` whether it is this timer's (the picks of a
        type never both say yes); any other type may belong to one such timer only."""
        types: dict[str, EventPick | None] = {}
        for t in replays:
            cls, pick = t if isinstance(t, tuple) else (t, None)
            types[cls.TYPE] = pick
        if bool(types) != (replay is not None):
            raise ValueError("a timer's replays and its replay go together")

        def deco(fn: Callable[[UnitOfWork], Awaitable[None]]):
            tname = name or fn.__name__
            lock_key = f"timer:{self.service}:{tname}"
            if types:
                taken = {t for other, (_, ts) in self.replayed_timers.items() if other != tname
                         for t, pick in ts.items() if t in types and (pick is None or types[t] is None)}
                if taken:
                    raise ValueError(f"timer {tname}: {sorted(taken)} already replayed by another timer "
                                     "(a type two timers publish needs a pick on both)")
                self.replayed_timers[tname] = (replay, types)  # type: ignore[assignment]

            async def tick() -> None:
                if not self.ready:
                    return
                outcome = "ok"
                try:
                    async with self.transaction() as uow:
                        if exclusive and not await try_advisory_lock(uow.conn, lock_key):
                            outcome = "skipped"
                        else:
                            await fn(uow)
                except (*UNAVAILABLE_ERRORS, *CONFLICT_ERRORS) as e:
                    outcome = "retry"
                    log.warning("timer %s: database unavailable or conflict (%r); next round retries", tname, e)
                except Exception:
                    outcome = "error"
                    log.exception("timer %s failed", tname)
                timer_round(self.service, tname, outcome)

            m.TIMER_FAILURES_IN_A_ROW.labels(self.service, tname).set(0)
            tick.__name__ = f"timer_{tname}"
            self.app.timer(seconds, name=f"{self.service}.{tname}")(tick)
            return fn

        return deco

    def route(self, template: str, /, *, method: str = "GET", auth: bool = True, name: str | None = None,
              path: type | None = None, query: type | None = None, body: Any = None,
              responses: dict[int, Any] | None = None, summary: str | None = None, description: str | None = None,
              errors: ErrorShape | None = None, db: bool = True, roles: Iterable[str] | None = None):
        """Declare ``fn(request) -> body | (status, body)`` at ``template`` (aiohttp syntax), with the
        models of its path parameters, query and body and the responses it gives
        (:mod:`services.kit.routes`); ``name`` is its label in the HTTP metrics. ``roles``: who may
        call it (403 ``forbidden`` for others; what each may see is the function's to limit, see
        :func:`services.kit.policy.read_scope`)."""

        def deco(fn: RouteFn) -> RouteFn:
            doc = inspect.cleandoc(fn.__doc__ or "").split("\n\n", 1)
            route = Route(template, method.upper(), fn, auth=auth, label=name or template, path=path, query=query,
                          body=body, responses=responses or {},
                          summary=summary or " ".join(doc[0].split()) or None,
                          description=description or (doc[1].strip() if len(doc) > 1 else None), errors=errors, db=db,
                          roles=frozenset(roles) if roles is not None else None)
            first = template not in self._routes
            self._routes.setdefault(template, {})[method.lower()] = route
            if first:
                self._add_view(template)
            return fn

        return deco

    def get(self, template: str, /, **kw):
        """``route(template, method="GET", ...)``."""
        return self.route(template, method="GET", **kw)

    def lookup(self, template: str, /, *, path: type, out: Any, fetch: Callable[..., Awaitable[Any]],
               summary: str, roles: Iterable[str] | None = None, scoped: bool = False,
               one_statement: bool = False) -> None:
        """``GET template``: the object ``fetch(conn, id)`` finds for the one path parameter
        (``<what>_id``), or a 404 naming it. ``scoped``: ``fetch(conn, id, principal)``, which
        returns None for an object outside what the caller may read (the same 404).
        ``one_statement``: ``fetch`` reads with one statement, so it runs without a snapshot's
        transaction (:meth:`read`)."""
        field = next(iter(path.model_fields))
        what = field.removesuffix("_id")
        lend = self.read if one_statement else self.snapshot

        async def get_one(req: Request):
            id = getattr(req.path, field)
            async with lend() as conn:
                value = await (fetch(conn, id, req.principal) if scoped else fetch(conn, id))
                return found(value, what, id, field)

        get_one.__name__ = f"get_{what}"
        self.get(template, path=path, responses={200: out, 404: f"no such {what}" + (" the caller may read" if scoped else "")},
                 summary=summary, roles=roles)(get_one)

    def post(self, template: str, /, **kw):
        """``route(template, method="POST", ...)``."""
        return self.route(template, method="POST", **kw)

    @contextlib.asynccontextmanager
    async def connection(self):
        """A pooled connection for a query; 503 (``Retry-After``) while the worker has no pool."""
        async with self.require_pool().acquire() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self):
        """A pooled connection for a read of one statement, which sees one snapshot by itself:
        no BEGIN and COMMIT around it (under a load of a grid's counts, those two round trips
        were a seventh of the worker's CPU), and, as after :meth:`snapshot`, no reset on its
        release. For reads only: the statement must leave nothing on the connection."""
        async with self.require_pool().acquire() as conn:
            yield conn
            conn.clean()

    @contextlib.asynccontextmanager
    async def snapshot(self):
        """A pooled connection in a read-only REPEATABLE READ transaction, for a query of several
        statements (a row and its history): each sees the same commits, so an answer never pairs
        a batch's members with the history from before it. 503 as :meth:`connection`. (A list's
        page and its count are one statement: :meth:`read`.)"""
        async with self.connection() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                yield conn
            conn.clean()  # the transaction ended as it began: the pool need not reset the connection

    def require_pool(self, *, serving: bool = True) -> FairPool:
        """The database pool, or :class:`NotReady` (503 with ``Retry-After`` on a route) while the
        worker starts or stops. ``serving=False``: the pool as soon as it exists (a start-up
        hook's transaction), migrations applied or not."""
        pool = self.pool
        if pool is None or (serving and not self.serving):
            raise NotReady("the worker is starting: its database is not ready yet")
        return pool

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of this service's routes (built once)."""
        if self._openapi is None:
            from .openapi import document

            self._openapi = document(self)
        return self._openapi

    def _add_view(self, template: str) -> None:
        rt = self
        methods = self._routes[template]

        def reply(view: faust.web.View, status: int, body: Any, headers: dict[str, str] | None):
            if isinstance(body, (bytes, str)):
                return view.bytes(body.encode() if isinstance(body, str) else body,
                                  content_type="text/plain; charset=utf-8", status=status, headers=headers)
            return view.bytes(dumps(body), content_type="application/json", status=status, headers=headers)

        async def _serve(view: faust.web.View, request, **params):
            status, body, headers = await rt.answer(methods[request.method.lower()], request, params)
            return reply(view, status, body, headers)

        class RouteView(faust.web.View):
            pass

        for meth in ("get", "post", "put", "delete"):
            async def handler(self, request, **kw):
                if request.method.lower() not in methods:
                    return self.bytes(dumps({"error": "method_not_allowed", "detail": request.method}),
                                      content_type="application/json", status=405)
                return await _serve(self, request, **kw)
            setattr(RouteView, meth, handler)
        RouteView.__name__ = "view_" + "".join(c if c.isalnum() else "_" for c in template)
        self.app.page(template, name=RouteView.__name__)(RouteView)

    async def answer(self, route: Route, request, params: dict[str, str]) -> tuple[int, Any, dict[str, str] | None]:
        """(status, body) of one request to a declared route: authenticated, permitted, validated,
        then the route's function. Never a 500 for what is not a bug: a worker that is starting
        (no database pool, migrations not applied yet) or whose database is away answers 503 (sent
        with ``Retry-After``) on every route declared ``db=True``."""
        started = time.perf_counter()
        status = 500
        try:
            try:
                principal = await self._authenticate(request) if route.auth else None
                route.permit(principal)
                req = await route.bind(request, params, principal)
                if route.db and not self.serving:  # every route that may touch the database
                    raise NotReady("the worker is starting: its database is not ready yet")
                result = await route.fn(req)
            except ValidationError as e:  # a model the function validated itself
                raise from_validation_error(e) from None
            except NotReady as e:
                raise HttpError(503, "unavailable", str(e)) from None
            except RecordTooLarge as e:  # the events a command makes would be over the record limit
                raise HttpError(413, "payload_too_large", str(e), "data") from None
            except UNAVAILABLE_ERRORS as e:
                raise HttpError(503, "unavailable", type(e).__name__) from None
            status, body = result if isinstance(result, tuple) else (200, result)
            return status, body, response_headers(status)
        except HttpError as e:
            status, body = route.errors(e) if route.errors else (e.status, e.body())
            # an error may say when to come back (e.g. the Retry-After of a rate-limited 429)
            return status, body, {**(response_headers(status) or {}), **(getattr(e, "headers", None) or {})} or None
        except Exception as e:
            status = 500
            log.exception("HTTP %s %s failed", request.method, request.path)
            return 500, {"error": "internal_error", "detail": type(e).__name__}, None
        finally:
            m.HTTP_REQUESTS.labels(self.service, route.label, request.method, str(status)).inc()
            m.HTTP_DURATION.labels(self.service, route.label).observe(time.perf_counter() - started)

    async def _authenticate(self, request) -> Principal:
        if self.verifier is None:
            raise HttpError(401, "unauthorized", "jwks_unavailable: JWKS is not set")
        return await authenticate_async(request.headers, self.verifier, in_thread=self._verify_in_thread)

    def _add_metrics_page(self) -> None:
        class MetricsView(faust.web.View):
            async def get(self, request):
                return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0], status=200)

        self.app.page("/metrics", name="metrics")(MetricsView)

    # -- health ---------------------------------------------------------------------------
    async def _openapi_json(self, req: Request):
        """The OpenAPI document of this service."""
        return self.openapi()

    async def _healthz(self, req: Request):
        """Liveness: the worker's event loop answers. No external checks."""
        return {"status": "ok", "service": self.service}

    async def _readyz(self, req: Request):
        """Readiness: database reachable, migrations applied, broker reachable, worker started,
        and no consumer stalled (its oldest batch retrying for over ``consumer_stall_seconds``)."""
        checks: dict[str, str] = {"worker": "started" if self.ready else "starting"}
        ok = self.ready
        for name, timeout, probe in (("database", 2, self._database_ready), ("broker", 3, self._broker_ready)):
            try:
                async with asyncio.timeout(timeout):
                    fine = await probe(checks)
            except Exception as e:
                checks[name], fine = f"unavailable: {type(e).__name__}", False
            ok = ok and fine
        if isinstance(self.relay, RelayProcess):  # informational: commits are kept in the outbox meanwhile
            checks["relay"] = self.relay.describe()
        for c in self.consumers:  # a lane whose batch keeps failing holds back its partitions
            stalled = c.stalled_seconds()
            if stalled > self.settings.consumer_stall_seconds:
                checks[f"consumer:{c.name}"] = f"stalled {stalled:.0f}s"
                ok = False
            else:
                checks[f"consumer:{c.name}"] = f"retrying {stalled:.0f}s" if stalled > 0 else "ok"
        m.READY.labels(self.service).set(1 if ok else 0)
        return (200 if ok else 503), {"status": "ready" if ok else "not_ready", "checks": checks}

    async def _database_ready(self, checks: dict[str, str]) -> bool:
        if self.pool is None:
            checks["database"] = "not connected"
            return False
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            missing = await pending(conn, self.service, self.components)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if not missing else f"pending: {', '.join(missing)}"
        return not missing

    async def _broker_ready(self, checks: dict[str, str]) -> bool:
        if self.producer is None:
            checks["broker"] = "not connected"
            return False
        fine = await self.producer.client.fetch_all_metadata() is not None
        checks["broker"] = "ok" if fine else "unavailable"
        return fine

    # -- commands over HTTP ---------------------------------------------------------------
    def command_api(self, handler: Handler, path: str = "/v1/commands") -> None:
        """``POST /v1/commands``: the same handler as the intake topic, answered synchronously.

        Body: a CloudEvent (structured JSON) or ``{"id", "type", "data"}``. 200 with the
        resulting events; 200 with the original events when the command id was seen before;
        409 when refused by the rules, or ``no_change`` when it caused nothing (the kit's
        answer, :class:`~services.kit.errors.NoChange`); 422 naming the invalid field; 401
        without a valid token. A replay of a refused command is answered as the first time.
        The source of a ``{"id", "type", "data"}`` body is the caller, ``/users/<sub>``; the
        handler finds the caller in ``uow.principal``.
        """
        allowed = self.topics.intake.message_types
        policy = handler.policy
        roles = {r for cls in policy.commands for r in policy.roles_for(cls)} if policy is not None else None

        @self.post(path, name="/v1/commands", body=Documented(command_body(allowed)), roles=roles, responses={
            200: ("the events the command caused; `replayed` when its id was seen before", CommandOut),
            409: ("refused by the rules, or `no_change` (the state already is what the command asks): `error` is "
                  "the reason, `field` the command field at fault", CommandRefused),
            503: "the database is unavailable or busy; retry"})
        async def post_command(req: Request):
            """Send a command, answered with the events it caused.

            The same handler as the intake topic, idempotent by (`source`, `id`)."""
            obj = await req.json()
            if policy is not None and isinstance(obj, dict) and isinstance(obj.get("type"), str) and obj["type"] in allowed:
                try:  # a role that may not send this type at all: 403 before its body is even read
                    policy.permits_type(obj["type"], req.principal)
                except Refused as e:
                    raise HttpError(e.status, e.reason, e.detail, e.field) from None
            msg = self.command_from_json(obj, req.principal, allowed)
            if policy is not None:  # refused before the database is touched; the handler's path checks again
                try:
                    msg = admit(policy, msg)
                except Refused as e:
                    raise HttpError(e.status, e.reason, e.detail, e.field) from None
            if msg.envelope.subject is None:  # the aggregate, once the token has filled the actor fields
                msg = dataclasses.replace(msg, envelope=msg.envelope.model_copy(
                    update={"subject": msg.payload.aggregate_id}))
            events, replay = await self.execute(msg, handler, principal=req.principal)
            rejection = next((e for e in events if e.type.endswith(".command.rejected.v1")), None)
            body = {"command_id": msg.id, "replayed": replay,
                    "events": [e.model_dump(mode="json", exclude_none=True) for e in events]}
            if rejection is not None:
                d = rejection.data
                return Refused.STATUS.get(d["reason"], 409), {"error": d["reason"], "detail": d.get("detail", ""), "field": d.get("field"), **body}
            return 200, body

    def command_from_json(self, obj: Any, principal: Principal | None, allowed: frozenset[str]) -> Message:
        if not isinstance(obj, dict):
            raise HttpError(422, "invalid_input", "the body must be a JSON object", "body")
        # The caller is the source, whatever the body says: a command's (source, id) is its inbox
        # key and the key of its remembered outcome, so a body naming another source could both
        # pass for that caller and read back the events of that caller's commands.
        obj = {"specversion": "1.0", "time": clock.now().isoformat(), **obj, "source": user_source(principal)}
        for f in ("id", "type"):
            if not obj.get(f):
                raise HttpError(422, "invalid_input", f"{f} is required", f)
        if "data" not in obj:
            raise HttpError(422, "invalid_input", "data is required", "data")
        try:  # U+0000 in any string: PostgreSQL cannot store it; refused as on the intake topic
            refuse_nul(obj)
        except DecodeError as e:
            raise HttpError(422, "invalid_input", e.detail, e.field) from None
        try:
            env = CloudEvent.model_validate(obj)
        except ValidationError as e:
            raise from_validation_error(e) from None
        if not source_fits(env):
            raise HttpError(422, "invalid_input", f"source: must be at most {SOURCE_MAX_BYTES} bytes of UTF-8", "source")
        if env.type not in allowed:
            raise HttpError(422, "invalid_input", f"{env.type!r} is not a command of the {self.service} service", "type")
        try:
            payload = decode_payload(env, allowed)
        except DecodeError as e:
            raise HttpError(422, "invalid_input", e.detail, e.field) from None
        return Message(envelope=env, payload=payload, principal=principal)

    async def execute(self, msg: Message, handler: Handler, *,
                      principal: Principal | None = None) -> tuple[list[CloudEvent], bool]:
        """Handle one message now, idempotently: (events it caused, whether it was a replay).
        ``principal``: who sent it (``uow.principal`` for the handler)."""
        pool = self.require_pool()
        for attempt in range(5):
            try:
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        new = await claim(conn, [(msg.source, msg.id)])
                        if not new:  # answered before (or handled from the intake topic: no events kept)
                            events = await conn.fetchval(
                                "SELECT events FROM command_outcomes WHERE source = $1 AND id = $2", msg.source, msg.id)
                            return [CloudEvent.model_validate(e) for e in events or []], True
                        uow = UnitOfWork(conn, self.service, principal=principal)
                        faults = await dispatch(handler, uow, [msg])
                        if faults:  # valid input the handler failed on: a bug, answered 500
                            raise faults[0][1]
                        await uow.flush()
                        await write_outbox(conn, uow.records)
                        await conn.execute(
                            "INSERT INTO command_outcomes (source, id, events) VALUES ($1, $2, $3)", msg.source, msg.id,
                            [e.model_dump(mode="json", exclude_none=True) for e in uow.caused_by(msg.id)])
                uow.committed()
                m.RECORDS_CONSUMED.labels(self.service, "http", msg.type).inc()
                if uow.records and self.relay is not None:
                    self.relay.notify()
                return uow.caused_by(msg.id), False
            except CONFLICT_ERRORS:
                await asyncio.sleep(0.05 * (attempt + 1))
        raise HttpError(503, "busy", "conflicting concurrent updates; retry")


def timer_round(service: str, timer: str, outcome: str) -> None:
    """Count a timer's round (``kit_timer_runs_total``) and keep ``kit_timer_consecutive_failures``:
    the rounds in a row that did not complete (``retry``: the database away or a conflict;
    ``error``: a fault), back to 0 after one that completed (``ok``) or that another worker had
    (``skipped``). A timer whose every round fails, whatever the cause, shows there
    (GrassrootsTimerNotCompleting); ``error`` alone is GrassrootsTimerFailing."""
    m.TIMER_RUNS.labels(service, timer, outcome).inc()
    failing = m.TIMER_FAILURES_IN_A_ROW.labels(service, timer)
    if outcome in ("retry", "error"):
        failing.inc()
    else:
        failing.set(0)


def user_source(principal: Principal | None) -> str:
    """The CloudEvent ``source`` of a command a person or an app sent: ``/users/<sub>`` (the
    ``sub`` percent-encoded where it is not URI-safe)."""
    if principal is None:
        return "/users/anonymous"
    return "/users/" + quote(principal.sub, safe="@:-._~!$&'()*+,;=")
