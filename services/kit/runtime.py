"""The service runtime: a faust worker carrying the kit.

faust-streaming gives the App and worker lifecycle, the web server, timers and the CLI
(``python -m services.<svc>.app worker``). The hot consume path is the kit's aiokafka
:class:`~services.kit.consumer.BatchConsumer` running inside the worker as a mode Service,
because faust's per-message agents cap a worker near 4,000 records/s.

A service's ``app`` module does::

    rt = ServiceRuntime("grid", GridSettings(), migrations=Path(__file__).parent.parent / "migrations")
    rt.consume("intake", [GRID.intake], GridHandler(...))
    rt.command_api(handler)                 # POST /v1/commands, same handler as the intake
    @rt.route("/v1/cases/{case_id}")         # queries
    async def get_case(req): ...
    @rt.timer(10.0)                          # periodic work in one transaction
    async def overdue(uow): ...
    app = rt.app
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import asyncpg
import faust
import mode
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from schemas.envelope import CloudEvent, DecodeError, Message, decode_payload
from schemas.topics import BY_SERVICE, Topic

from . import clock, jsonlog
from . import metrics as m
from .consumer import BatchConsumer, BatchHandler, claim
from .db import CONFLICT_ERRORS, UNAVAILABLE_ERRORS, connect_with_retry
from .http import HttpError, Query, authenticate, dumps, from_validation_error
from .migrations import KIT_MIGRATIONS, migrate, pending
from .outbox import OutboxRelay, producer_for, refresh_stats
from .outbox import write as write_outbox
from .provision import provision
from .relay import RelayProcess
from .settings import ServiceSettings
from .uow import UnitOfWork

log = logging.getLogger("kit.runtime")


class QuietWorker(faust.Worker):
    """faust's worker without its progress spinner, whose terminal escape codes would break the
    JSON log (one object per line) for log shippers; ``main`` below silences the rest."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spinner = None

RouteFn = Callable[..., Awaitable[Any]]


class Request:
    """What a route function gets: path params, query, JSON body, the authenticated app."""

    def __init__(self, raw, params: dict[str, str], app_name: str | None):
        self.raw = raw
        self.params = params
        self.query = Query(raw.query)
        self.app_name = app_name
        self.headers = raw.headers

    async def json(self) -> Any:
        body = await self.raw.read()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise HttpError(400, "malformed_json", str(e), "body") from None


class ServiceRuntime:
    def __init__(self, service: str, settings: ServiceSettings, *, migrations: Path | None = None):
        self.service = service
        self.settings = settings
        self.topics = BY_SERVICE[service]
        self.components = [("kit", KIT_MIGRATIONS)] + ([(service, migrations)] if migrations else [])
        self.pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | RelayProcess | None = None
        self._relay_task: asyncio.Future | None = None
        self.producer = None
        self.consumers: list[BatchConsumer] = []
        self._consumer_specs: list[tuple[str, Sequence[Topic], BatchHandler, str | None]] = []
        self._startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self.ready = False
        self._tokens = settings.tokens()
        clock.use(settings.clock())
        self._routes: dict[str, dict[str, tuple[RouteFn, bool, str]]] = {}
        self.app = self._make_app()
        self._install_service()
        self.route("/healthz", auth=False)(self._healthz)
        self.route("/readyz", auth=False)(self._readyz)
        self._add_metrics_page()

    def main(self) -> None:
        """faust's command line (``worker -l info``...), quiet unless ``--no-quiet`` is given: the
        banner and the "OK" marks would otherwise be mixed into the JSON log on stdout."""
        if not any(a in ("-q", "--quiet", "--no-quiet") for a in sys.argv[1:]):
            sys.argv.insert(1, "--quiet")
        self.app.main()

    # -- faust app ------------------------------------------------------------------------
    def _make_app(self) -> faust.App:
        datadir = Path(os.environ.get("VAR_DIR", "var")) / "faust" / f"{self.service}-service"
        datadir.mkdir(parents=True, exist_ok=True)
        brokers = ";".join(f"kafka://{b.strip()}" for b in self.settings.kafka_bootstrap_servers.split(","))
        return faust.App(
            f"{self.service}-service",
            broker=brokers,
            web_host=self.settings.http_host,
            web_port=self.settings.http_port,
            web_enabled=True,
            web_in_thread=False,
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
            broker_session_timeout=10,
            broker_heartbeat_interval=1,
            topic_partitions=1,
            topic_replication_factor=self.settings.topic_replication_factor,
            consumer_auto_offset_reset="earliest",
            Worker=QuietWorker,
        )

    def _install_service(self) -> None:
        rt = self

        class KitService(mode.Service):
            """Database, migrations, topics, producer, outbox relay and batch consumers."""

            async def on_start(self) -> None:
                await rt._start()

            async def on_stop(self) -> None:
                await rt._stop()

        self.app.service(KitService)

    async def _start(self) -> None:
        s = self.settings
        jsonlog.configure(self.service, s.log_level, s.log_format)
        if s.gc_gen0_threshold:
            # A high allocation rate makes CPython's cyclic GC run often over long-lived objects;
            # freezing what start-up made and raising the threshold cut ~15% CPU per record.
            gc.freeze()
            gc.set_threshold(s.gc_gen0_threshold, 50, 100)
        m.READY.labels(self.service).set(0)
        if clock.current().simulated:
            log.warning("simulated time: %s (domain times are not real; never in production)", clock.current().describe())
        m.CLOCK_OFFSET.labels(self.service).set_function(lambda: clock.now().timestamp() - time.time())
        self._stop_event = asyncio.Event()
        self.pool = await connect_with_retry(s.dsn(), self.service, service=self.service, max_size=s.db_pool_max)
        async with self.pool.acquire() as conn:
            applied = await migrate(conn, self.service, self.components)
        if applied:
            log.info("migrations applied: %s", applied)
        if s.provision_topics:
            await provision(s.kafka_bootstrap_servers, partitions=s.topic_partitions,
                            replication_factor=s.topic_replication_factor)
        relay_apart = s.outbox_relay == "process"  # in a child process
        # the worker's producer: the relay's when it runs inline, else only for /readyz's broker check
        self.producer = producer_for(s.kafka_bootstrap_servers, f"{self.service}-{'worker' if relay_apart else 'relay'}")
        await self.producer.start()
        if relay_apart:
            self.relay = RelayProcess(service=self.service, dsn=s.dsn(), bootstrap=s.kafka_bootstrap_servers,
                                      batch=s.outbox_batch, poll_seconds=s.outbox_poll_seconds,
                                      nice=s.outbox_relay_nice, log_level=s.log_level, log_format=s.log_format)
            await self.relay.start()
        else:
            self.relay = OutboxRelay(self.pool, self.producer, service=self.service, batch=s.outbox_batch,
                                     poll_seconds=s.outbox_poll_seconds)
            self._relay_task = asyncio.ensure_future(self.relay.run())
        self._tasks = [asyncio.ensure_future(self._outbox_stats())]
        for hook in self._startup_hooks:
            await hook()
        for name, topics, handler, group in self._consumer_specs:
            c = BatchConsumer(
                service=self.service, name=name, topics=topics,
                group_id=group or s.consumer_group or f"{self.service}-service-{name}",
                bootstrap=s.kafka_bootstrap_servers, pool=self.pool, handler=handler,
                on_commit=self.relay.notify, max_records=s.batch_max_records,
                fetch_max_wait_ms=s.fetch_max_wait_ms, lanes=s.consumer_lanes)
            await c.start()
            self.consumers.append(c)
            self._tasks.append(asyncio.ensure_future(self._supervise(c)))
        self.ready = True
        m.READY.labels(self.service).set(1)
        log.info("%s service started", self.service)

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
        self.ready = False
        m.READY.labels(self.service).set(0)
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
    def consume(self, name: str, topics: Sequence[Topic], handler: BatchHandler, group_id: str | None = None) -> None:
        """Run a batch consumer over ``topics`` feeding ``handler``."""
        self._consumer_specs.append((name, topics, handler, group_id))

    def on_startup(self, fn: Callable[[], Awaitable[None]]):
        """Run after migrations, before consumers start (e.g. to load reference data)."""
        self._startup_hooks.append(fn)
        return fn

    @contextlib.asynccontextmanager
    async def transaction(self, now: datetime | None = None):
        """A unit of work outside the consumer (timers, tools); its outbox is written on exit."""
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, self.service, now)
            yield uow
            await write_outbox(conn, uow.records)
        uow.committed()
        if uow.records and self.relay is not None:
            self.relay.notify()

    def timer(self, seconds: float, *, name: str | None = None, on_leader: bool = False):
        """Run ``fn(uow)`` every ``seconds`` in its own transaction, once the worker is ready."""

        def deco(fn: Callable[[UnitOfWork], Awaitable[None]]):
            tname = name or fn.__name__

            async def tick() -> None:
                if not self.ready:
                    return
                try:
                    async with self.transaction() as uow:
                        await fn(uow)
                    m.TIMER_RUNS.labels(self.service, tname, "ok").inc()
                except (*UNAVAILABLE_ERRORS, *CONFLICT_ERRORS) as e:
                    m.TIMER_RUNS.labels(self.service, tname, "retry").inc()
                    log.warning("timer %s: database unavailable or conflict (%r); next round retries", tname, e)
                except Exception:
                    m.TIMER_RUNS.labels(self.service, tname, "error").inc()
                    log.exception("timer %s failed", tname)

            tick.__name__ = f"timer_{tname}"
            self.app.timer(seconds, on_leader=on_leader, name=f"{self.service}.{tname}")(tick)
            return fn

        return deco

    def route(self, path: str, *, method: str = "GET", auth: bool = True, name: str | None = None):
        """Register ``fn(request) -> body | (status, body)`` at ``path`` (faust/aiohttp syntax)."""

        def deco(fn: RouteFn) -> RouteFn:
            first = path not in self._routes
            self._routes.setdefault(path, {})[method.lower()] = (fn, auth, name or path)
            if first:
                self._add_view(path)
            return fn

        return deco

    def _add_view(self, path: str) -> None:
        rt = self
        methods = self._routes[path]

        async def _serve(view: faust.web.View, request, **params):
            meth = request.method.lower()
            fn, auth, label = methods[meth]
            started = time.perf_counter()
            status = 500
            try:
                app_name = authenticate(request.headers, rt._tokens) if auth else None
                result = await fn(Request(request, params, app_name))
                status, body = result if isinstance(result, tuple) else (200, result)
                if isinstance(body, (bytes, str)):
                    return view.bytes(body.encode() if isinstance(body, str) else body,
                                      content_type="text/plain; charset=utf-8", status=status)
                return view.bytes(dumps(body), content_type="application/json", status=status)
            except HttpError as e:
                status = e.status
                return view.bytes(dumps(e.body()), content_type="application/json", status=e.status)
            except ValidationError as e:
                err = from_validation_error(e)
                status = err.status
                return view.bytes(dumps(err.body()), content_type="application/json", status=err.status)
            except (*UNAVAILABLE_ERRORS,) as e:
                status = 503
                return view.bytes(dumps({"error": "unavailable", "detail": type(e).__name__}),
                                  content_type="application/json", status=503)
            except Exception as e:
                log.exception("HTTP %s %s failed", request.method, request.path)
                return view.bytes(dumps({"error": "internal_error", "detail": type(e).__name__}),
                                  content_type="application/json", status=500)
            finally:
                m.HTTP_REQUESTS.labels(rt.service, label, request.method, str(status)).inc()
                m.HTTP_DURATION.labels(rt.service, label).observe(time.perf_counter() - started)

        class RouteView(faust.web.View):
            pass

        for meth in ("get", "post", "put", "delete"):
            async def handler(self, request, **kw):
                if request.method.lower() not in methods:
                    return self.bytes(dumps({"error": "method_not_allowed", "detail": request.method}),
                                      content_type="application/json", status=405)
                return await _serve(self, request, **kw)
            setattr(RouteView, meth, handler)
        RouteView.__name__ = "view_" + "".join(c if c.isalnum() else "_" for c in path)
        self.app.page(path, name=RouteView.__name__)(RouteView)

    def _add_metrics_page(self) -> None:
        class MetricsView(faust.web.View):
            async def get(self, request):
                return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0], status=200)

        self.app.page("/metrics", name="metrics")(MetricsView)

    # -- health ---------------------------------------------------------------------------
    async def _healthz(self, req: Request):
        """Liveness: the worker's event loop answers. No external checks."""
        return {"status": "ok", "service": self.service}

    async def _readyz(self, req: Request):
        """Readiness: database reachable, migrations applied, broker reachable, worker started."""
        checks: dict[str, str] = {}
        ok = self.ready
        checks["worker"] = "started" if self.ready else "starting"
        if self.pool is None:
            checks["database"] = "not connected"
            ok = False
        else:
            try:
                async with asyncio.timeout(2):
                    async with self.pool.acquire() as conn:
                        await conn.fetchval("SELECT 1")
                        missing = await pending(conn, self.service, self.components)
                checks["database"] = "ok"
                checks["migrations"] = "ok" if not missing else f"pending: {', '.join(missing)}"
                ok = ok and not missing
            except Exception as e:
                checks["database"] = f"unavailable: {type(e).__name__}"
                ok = False
        if self.producer is None:
            checks["broker"] = "not connected"
            ok = False
        else:
            try:
                async with asyncio.timeout(3):
                    fine = await self.producer.client.fetch_all_metadata()
                checks["broker"] = "ok" if fine is not None else "unavailable"
            except Exception as e:
                checks["broker"] = f"unavailable: {type(e).__name__}"
                ok = False
        if isinstance(self.relay, RelayProcess):  # informational: commits are kept in the outbox meanwhile
            checks["relay"] = self.relay.describe()
        m.READY.labels(self.service).set(1 if ok else 0)
        return (200 if ok else 503), {"status": "ready" if ok else "not_ready", "checks": checks}

    # -- commands over HTTP ---------------------------------------------------------------
    def command_api(self, handler: BatchHandler, path: str = "/v1/commands") -> None:
        """``POST /v1/commands``: the same handler as the intake topic, answered synchronously.

        Body: a CloudEvent (structured JSON) or ``{"id", "type", "data"}``. 200 with the
        resulting events; 200 with the original events when the command id was seen before;
        409 when refused by the rules; 422 naming the invalid field; 401 without a valid token.
        """
        allowed = self.topics.intake.message_types

        @self.route(path, method="POST", name="/v1/commands")
        async def post_command(req: Request):
            obj = await req.json()
            msg = self.command_from_json(obj, req.app_name or "anonymous", allowed)
            events, replay = await self.execute(msg, handler)
            rejection = next((e for e in events if e.type.endswith(".command.rejected.v1")), None)
            body = {"command_id": msg.id, "replayed": replay,
                    "events": [e.model_dump(mode="json", exclude_none=True) for e in events]}
            if rejection is not None:
                d = rejection.data
                return 409, {"error": d["reason"], "detail": d.get("detail", ""), "field": d.get("field"), **body}
            return 200, body

    def command_from_json(self, obj: Any, app_name: str, allowed: frozenset[str]) -> Message:
        if not isinstance(obj, dict):
            raise HttpError(422, "invalid_input", "the body must be a JSON object", "body")
        if "specversion" not in obj:
            obj = {"specversion": "1.0", "source": f"/apps/{app_name}", "time": clock.now().isoformat(),
                   **obj}
        for f in ("id", "type"):
            if not obj.get(f):
                raise HttpError(422, "invalid_input", f"{f} is required", f)
        if "data" not in obj:
            raise HttpError(422, "invalid_input", "data is required", "data")
        try:
            env = CloudEvent.model_validate(obj)
        except ValidationError as e:
            raise from_validation_error(e) from None
        if env.type not in allowed:
            raise HttpError(422, "invalid_input", f"{env.type!r} is not a command of the {self.service} service", "type")
        try:
            payload = decode_payload(env, allowed)
        except DecodeError as e:
            raise HttpError(422, "invalid_input", e.detail, e.field) from None
        if env.subject is None:
            env = env.model_copy(update={"subject": payload.aggregate_id})
        return Message(envelope=env, payload=payload)

    async def execute(self, msg: Message, handler: BatchHandler) -> tuple[list[CloudEvent], bool]:
        """Handle one message now, idempotently: (events it caused, whether it was a replay)."""
        assert self.pool is not None
        for attempt in range(5):
            try:
                async with self.pool.acquire() as conn:
                    async with conn.transaction():
                        new = await claim(conn, [(msg.source, msg.id)])
                        if not new:  # answered before (or handled from the intake topic: no events kept)
                            events = await conn.fetchval(
                                "SELECT events FROM command_outcomes WHERE source = $1 AND id = $2", msg.source, msg.id)
                            return [CloudEvent.model_validate(e) for e in events or []], True
                        uow = UnitOfWork(conn, self.service)
                        token = jsonlog.correlation_id.set(msg.correlation_id)
                        try:
                            await handler.handle_batch(uow, [msg])
                        finally:
                            jsonlog.correlation_id.reset(token)
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
