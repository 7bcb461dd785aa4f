"""``make run``: the whole district on one machine.

Steps: embedded broker and database (unless ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` are
given) → topics → a stand-in identity provider (``services.kit.devidentity``: a fresh signing key,
its JWKS and demo identities with tokens under ``run/``) → the five workers, each verifying tokens
against that JWKS as separate processes → wait for every ``/readyz`` →
the district simulator (unless ``SIMULATE=0``) → a live summary every second until Ctrl-C
(or ``RUN_SECONDS``). A worker that dies is reported and restarted ``RESTART_DELAY_SECONDS`` (1)
after it was found dead, as a supervisor's backoff (restarts are counted).
The simulator plays every person with a token of their own, signed with the identity provider's
key (``SIGNING_KEY_FILE``), and asks the points API (``POINTS_URL``) for residents' redemption
consent codes. A command refused for lack of a right (``forbidden`` / ``unauthenticated``) is a
failure of the run: the summary lists it (``policy_refusals``, ``failures``; see
:mod:`.summary`) and the launcher exits with 1.
Stopping: simulator, workers (SIGTERM, then wait, SIGKILL after a grace), Prometheus, broker, database.

Several workers per service (``WORKERS=N``, default 1): the N workers of a service share its
consumer groups (as the Kubernetes HPA runs them) and each has its own HTTP and metrics port:
worker ``i`` (1..N) of a service listens on ``<SVC>_HTTP_PORT + (i-1) * WORKER_PORT_STEP``
(step 10: grid 8001, 8011, 8021...; party 8005, 8015...). The first worker of a service is
named after it (``grid``), the others ``grid-2``, ``grid-3``...: their logs are
``log/grid-2.log``, their pid files ``run/grid-2.pid``. The simulator and ``run/api.env`` use
the first worker of each service; the summary lists every worker and adds up their counters.

Prometheus (``PROMETHEUS``, on by default when ``/usr/bin/prometheus`` exists, from Debian's
``prometheus`` package): the launcher starts it on 127.0.0.1:``PROMETHEUS_PORT`` (9090) with
the rule files of ``PROMETHEUS_RULES`` (``deploy/prometheus/rules``) and a scrape configuration
it writes to ``prometheus/prometheus.yml`` that scrapes every worker every
``PROMETHEUS_SCRAPE_SECONDS`` (5; the relay's counts are on its worker's ``/metrics``); its data
is under ``prometheus/data``, recreated at each start. ``PROMETHEUS=0`` turns it off; a port in
use is reported and Prometheus is left out.

Time: with the simulator, every worker and the simulator share a stepped calendar
(``services/kit/clock.py``) that starts ``SIM_MONTHS_BACK`` (6) months before the real month
and moves on a month every ``SIM_MONTH_SECONDS`` (120) real seconds; within a month time runs
at real speed. ``SIM_MONTH_SECONDS=0`` or ``SIMULATE=0`` keeps real time.

Database roles: on the embedded PostgreSQL (and on a given ``DATABASE_URL`` with ``DB_ROLES=1``)
the launcher bootstraps the roles of ``services.kit.dbroles`` as the administrator, each with a
fresh random password, and gives each worker its own URLs: ``MIGRATION_DATABASE_URL`` as
``<svc>_owner`` (migrations) and ``DATABASE_URL`` as ``<svc>_app`` (data only). With a given
``DATABASE_URL`` and no ``DB_ROLES=1`` every worker uses that URL for both, as before.

Embedded state: the Tansu broker keeps everything in memory, so every embedded run starts
from an empty log; to match it the embedded PostgreSQL data directory (``var/postgres``) is
recreated at each start (a database without its log would be inconsistent). With your own
``DATABASE_URL`` nothing is dropped unless ``RESET_DATABASE=1`` (drops the five service
schemas — do that when you give a database but let the broker be embedded).

Everything a run writes is under ``VAR_DIR`` (default ``var/``): ``log/<svc>.log``,
``log/simulator.log``, ``log/launcher.log``, ``run/<svc>.pid`` (leftovers of a crashed run are
stopped at the next start), ``run/jwks.json``, ``run/signing-key.pem`` and ``run/identities.json``
(the identity provider's keys and demo identities, the last two mode 600), ``run/api.env`` (the
service URLs and one token per role, mode 600) and ``run/summary.json`` (the latest summary,
rewritten every refresh).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from schemas.registry import SERVICES
from services.kit import clock, devidentity
from services.kit.clock import Clock, SystemClock
from services.kit.infra import EmbeddedKafka, EmbeddedPostgres, _kill_leftover, _pid_alive
from services.kit.provision import provision

from . import summary

log = logging.getLogger("launcher")

ROOT = Path(__file__).resolve().parents[2]
# every registered service (schemas/registry.py), in that order; a service whose worker module is
# not there is reported and not started (make_workers)
DEFAULT_PORTS = {"grid": 8001, "orders": 8002, "points": 8003, "assessment": 8004, "party": 8005}
assert set(DEFAULT_PORTS) == set(SERVICES), "every registered service needs a default port"
SERVICE_SCHEMAS = SERVICES

# Demo pacing of the services (only when not set in the environment): short acceptance window
# and fast timers so that expiries, metrics and closes show up within a minute.
DEMO_DEFAULTS = {
    "ORDERS_ACCEPT_WINDOW_SECONDS": "30",
    "ORDERS_EXPIRY_INTERVAL_SECONDS": "2",
    "ORDERS_METRICS_INTERVAL_SECONDS": "2",
    "GRID_METRICS_INTERVAL_SECONDS": "2",
    # deadlines left open at a month's end pass when the calendar steps: supervise them, and record
    # the departments missing from a whistle, within two seconds of the step
    "GRID_OVERDUE_INTERVAL_SECONDS": "2",
    "GRID_WHISTLE_INTERVAL_SECONDS": "2",
    "POINTS_METRICS_INTERVAL_SECONDS": "2",
    # the simulated calendar moves a month every SIM_MONTH_SECONDS: look for ended periods often,
    # and give the facts in flight at a month's end (the last relay round) two seconds to arrive
    "ASSESSMENT_CLOSE_CHECK_SECONDS": "1",
    "ASSESSMENT_CLOSE_DELAY_SECONDS": "2",
    # the party timers (hourly and every minute in production) would let whole simulated quarters
    # pass unseen: report missed organisational life and joint meetings, overdue members and the
    # councils' 公示 ending within two seconds of the step, before the period is scored
    "PARTY_ORG_LIFE_INTERVAL_SECONDS": "2",
    "PARTY_MEMBER_INTERVAL_SECONDS": "2",
    "PARTY_COUNCIL_INTERVAL_SECONDS": "2",
    "PARTY_COVERAGE_INTERVAL_SECONDS": "2",
    "PARTY_METRICS_INTERVAL_SECONDS": "2",
}
PROMETHEUS_BIN = "/usr/bin/prometheus"


def env_flag(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    return v.strip().lower() not in {"0", "false", "no", "off"}


@dataclass
class Config:
    """Everything the launcher reads from the environment (see the module doc and README)."""

    var_dir: Path
    host: str
    ports: dict[str, int]
    kafka: str | None
    database_url: str | None
    kafka_port: int
    pg_port: int
    simulate: bool
    rate: str
    run_seconds: float | None
    reset_database: bool
    ready_timeout: float
    refresh: float
    topic_partitions: str
    sim_month_seconds: float = 120.0
    sim_months_back: int = 6
    db_roles: bool = True
    workers: int = 1
    worker_port_step: int = 10
    prometheus: bool = False
    prometheus_port: int = 9090
    prometheus_rules: Path = ROOT / "deploy" / "prometheus" / "rules"
    prometheus_scrape_seconds: float = 5.0
    restart_delay: float = 1.0

    @classmethod
    def from_env(cls) -> "Config":
        e = os.environ
        return cls(
            var_dir=Path(e.get("VAR_DIR") or ROOT / "var").absolute(),
            host=e.get("HTTP_HOST") or "127.0.0.1",
            ports={s: int(e.get(f"{s.upper()}_HTTP_PORT") or DEFAULT_PORTS[s]) for s in SERVICES},
            kafka=e.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            database_url=e.get("DATABASE_URL") or None,
            kafka_port=int(e.get("KAFKA_PORT") or 9092),
            pg_port=int(e.get("PG_PORT") or 5433),
            simulate=env_flag("SIMULATE", True),
            rate=e.get("RATE") or "5",
            run_seconds=float(e["RUN_SECONDS"]) if e.get("RUN_SECONDS") else None,
            reset_database=env_flag("RESET_DATABASE", False),
            ready_timeout=float(e.get("READY_TIMEOUT") or 120),
            refresh=float(e.get("SUMMARY_SECONDS") or 1.0),
            topic_partitions=e.get("TOPIC_PARTITIONS") or "4",
            sim_month_seconds=float(e.get("SIM_MONTH_SECONDS") or 120),
            sim_months_back=int(e.get("SIM_MONTHS_BACK") or 6),
            db_roles=env_flag("DB_ROLES", not e.get("DATABASE_URL")),
            workers=max(1, int(e.get("WORKERS") or 1)),
            worker_port_step=int(e.get("WORKER_PORT_STEP") or 10),
            prometheus=env_flag("PROMETHEUS", Path(PROMETHEUS_BIN).exists()),
            prometheus_port=int(e.get("PROMETHEUS_PORT") or 9090),
            prometheus_rules=Path(e.get("PROMETHEUS_RULES") or ROOT / "deploy" / "prometheus" / "rules").absolute(),
            prometheus_scrape_seconds=float(e.get("PROMETHEUS_SCRAPE_SECONDS") or 5),
            restart_delay=float(e.get("RESTART_DELAY_SECONDS") or 1),
        )

    def worker_names(self, svc: str) -> list[str]:
        """The workers of ``svc``: the first named after the service, the others ``<svc>-<i>``."""
        return [svc if i == 1 else f"{svc}-{i}" for i in range(1, self.workers + 1)]

    def worker_port(self, svc: str, index: int) -> int:
        """The HTTP/metrics port of worker ``index`` (1..N) of ``svc``."""
        return self.ports[svc] + (index - 1) * self.worker_port_step


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    pid_path: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    exits: list[int] = field(default_factory=list)
    died_at: float | None = None  # time.monotonic() when it was found dead, until restarted
    service: str = ""  # the service a worker runs ("" for the simulator and Prometheus)
    port: int = 0  # a worker's HTTP/metrics port

    def start(self) -> None:
        _kill_leftover(self.pid_path, self.argv[2] if len(self.argv) > 2 else self.argv[-1])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            out.close()
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.write_text(str(self.proc.pid))
        self.started_at = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, grace: float = 20.0) -> None:
        self.signal(signal.SIGTERM)
        if not self.wait(grace):
            log.warning("%s did not stop in %.0fs; killing it", self.name, grace)
            self.signal(signal.SIGKILL)
            self.wait(5)
        self.pid_path.unlink(missing_ok=True)


def stop_leftover_postgres(datadir: Path, timeout: float = 20.0) -> None:
    """Stop a PostgreSQL server of ``datadir`` that an earlier (crashed) run left running.

    ``pg_ctl stop`` needs the data directory's pid file; this also finds a server by its
    command line (``-D <datadir>``), in case the pid file is gone.
    """
    pg = EmbeddedPostgres(datadir)
    if (datadir / "postmaster.pid").exists():
        pg._prepare()  # as root, pg_ctl must run as the server's system user
        pg.stop()
    mark = f"-D\0{datadir}\0"
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "postgres" in cmd and mark in cmd:
            log.warning("stopping leftover PostgreSQL (pid %s) of %s", d.name, datadir)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(d.name), signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(int(d.name)) and time.monotonic() < deadline:
                time.sleep(0.1)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def wait_port_free(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_free(host, port):
            return True
        time.sleep(0.2)
    return False


class Launcher:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.kafka: EmbeddedKafka | None = None
        self.pg: EmbeddedPostgres | None = None
        self.workers: dict[str, Proc] = {}
        self.simulator: Proc | None = None
        self.prometheus: Proc | None = None
        self.stopping = asyncio.Event()
        self.hold = asyncio.Event()  # SIGUSR1: stop the simulator and the workers, keep the rest
        self.workers_stopped = False
        self.notes: list[str] = []
        self.identity: dict[str, Path] = {}  # jwks, signing_key, identities (devidentity.generate)
        self.tokens: dict[str, str] = {}  # role -> the token of the first demo identity holding it
        self.bootstrap = ""
        self.dsn = ""
        self.db_urls: dict[str, dict[str, str]] = {}  # service -> DATABASE_URL, MIGRATION_DATABASE_URL
        self.clock_env: dict[str, str] = {}
        self.clock: Clock = SystemClock()

    @property
    def run_dir(self) -> Path:
        return self.cfg.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.cfg.var_dir / "log"

    def note(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.notes.append(f"{stamp} {text}")
        log.warning(text)

    # -- infrastructure -----------------------------------------------------------------------
    def start_infra(self) -> None:
        cfg = self.cfg
        if cfg.kafka:
            self.bootstrap = cfg.kafka
            log.info("using the broker at %s", self.bootstrap)
        else:
            kdir = cfg.var_dir / "kafka"
            kdir.mkdir(parents=True, exist_ok=True)
            _kill_leftover(kdir / "tansu.pid", "tansu")
            if not wait_port_free("127.0.0.1", cfg.kafka_port, 5):
                raise SystemExit(f"port {cfg.kafka_port} is in use by another program: stop it, or set KAFKA_PORT=<free port>, "
                                 f"or use that broker with KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{cfg.kafka_port}")
            self.kafka = EmbeddedKafka(cfg.kafka_port, kdir).start()
            self.bootstrap = self.kafka.bootstrap
            log.info("embedded broker (memory only) on %s", self.bootstrap)
        if cfg.database_url:
            self.dsn = cfg.database_url
            if cfg.reset_database:
                asyncio.run(self.drop_schemas())
        else:
            self.pg = EmbeddedPostgres(cfg.var_dir / "postgres", cfg.pg_port)
            stop_leftover_postgres(self.pg.datadir)
            self.pg.destroy()  # start from empty (see module doc)
            if not wait_port_free("127.0.0.1", cfg.pg_port, 5):
                raise SystemExit(f"port {cfg.pg_port} is in use by another program: stop it, set PG_PORT=<free port>, "
                                 "or give DATABASE_URL")
            self.pg.start()
            self.dsn = self.pg.url
            log.info("embedded PostgreSQL on %s (data in %s, recreated each run)", self.dsn, self.pg.datadir)
        if cfg.db_roles:
            asyncio.run(self.make_db_roles())
        created = asyncio.run(provision(self.bootstrap, partitions=int(self.cfg.topic_partitions),
                                        dlq_retention_days=float(os.environ.get("DLQ_RETENTION_DAYS") or 14)))
        log.info("topics created: %s", created or "(all existed)")

    async def make_db_roles(self) -> None:
        """Per service an owner role (migrations) and a runtime role (data only), with fresh
        passwords; each worker gets its own two URLs (services/kit/dbroles.py)."""
        import secrets

        import asyncpg

        from services.kit import dbroles

        passwords = {r: secrets.token_urlsafe(18) for s in SERVICES for r in (dbroles.owner_role(s), dbroles.app_role(s))}
        conn = await asyncpg.connect(self.dsn)
        try:
            await dbroles.bootstrap(conn, SERVICES, passwords)
        finally:
            await conn.close()
        for s in SERVICES:
            owner, app = dbroles.owner_role(s), dbroles.app_role(s)
            self.db_urls[s] = {"DATABASE_URL": dbroles.role_url(self.dsn, app, passwords[app]),
                               "MIGRATION_DATABASE_URL": dbroles.role_url(self.dsn, owner, passwords[owner])}
        log.info("database roles: %s", ", ".join(f"{dbroles.owner_role(s)}/{dbroles.app_role(s)}" for s in SERVICES))

    async def drop_schemas(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            for s in SERVICE_SCHEMAS:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        finally:
            await conn.close()
        log.info("RESET_DATABASE=1: dropped schemas %s", ", ".join(SERVICE_SCHEMAS))

    def stop_infra(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
        if self.pg is not None:
            self.pg.stop()

    # -- the calendar ---------------------------------------------------------------------------
    def set_clock(self) -> None:
        """With the simulator, every process runs on one stepped calendar (``services/kit/clock.py``):
        it starts ``SIM_MONTHS_BACK`` months before the real month, a month every
        ``SIM_MONTH_SECONDS``. ``SIM_MONTH_SECONDS=0`` (or ``SIMULATE=0``) keeps real time; a
        ``SIM_CLOCK_START`` given in the environment is used as it is."""
        if os.environ.get("SIM_CLOCK_START"):
            self.clock_env = {}
        elif self.cfg.simulate and self.cfg.sim_month_seconds > 0:
            self.clock_env = clock.stepped_env(self.cfg.sim_month_seconds, self.cfg.sim_months_back)
        self.clock = clock.from_env({**os.environ, **self.clock_env})
        log.info("time: %s", self.clock.describe())

    # -- processes ----------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.dsn,
               "TOPIC_PARTITIONS": self.cfg.topic_partitions, "PYTHONUNBUFFERED": "1"}
        for k, v in DEMO_DEFAULTS.items():
            env.setdefault(k, v)
        env.update(self.clock_env)
        env.update(self.identity_env())
        for s in SERVICES:
            env[f"{s.upper()}_HTTP_PORT"] = str(self.cfg.ports[s])
            env[f"{s.upper()}_HTTP_HOST"] = self.cfg.host
        return env

    def url(self, svc: str) -> str:
        """The first worker of ``svc`` (what the simulator and ``run/api.env`` use)."""
        return f"http://{self.cfg.host}:{self.cfg.ports[svc]}"

    def worker_url(self, w: Proc) -> str:
        return f"http://{self.cfg.host}:{w.port}"

    def service_urls(self) -> dict[str, list[str]]:
        """Every running service and the URLs of its workers, the first worker first."""
        out: dict[str, list[str]] = {}
        for w in self.workers.values():
            out.setdefault(w.service, []).append(self.worker_url(w))
        return out

    # -- Prometheus -----------------------------------------------------------------------------
    def prometheus_config(self) -> dict:
        """The scrape configuration of the launcher's Prometheus: every worker, labelled with its
        service and worker name, and the rule files of ``PROMETHEUS_RULES``."""
        every = f"{self.cfg.prometheus_scrape_seconds:g}s"
        rules = sorted(str(p) for p in self.cfg.prometheus_rules.glob("*.yml"))
        targets = [{"targets": [f"{self.cfg.host}:{w.port}"], "labels": {"service": w.service, "worker": w.name}}
                   for w in self.workers.values()]
        return {"global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every,
                           "external_labels": {"platform": "grassroots"}},
                "rule_files": rules,
                "scrape_configs": [{"job_name": "grassroots-services", "honor_labels": True, "metrics_path": "/metrics",
                                    "static_configs": targets},
                                   {"job_name": "prometheus", "static_configs": [
                                       {"targets": [f"127.0.0.1:{self.cfg.prometheus_port}"]}]}]}

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.prometheus_port}"

    def start_prometheus(self) -> None:
        """Prometheus on 127.0.0.1:PROMETHEUS_PORT scraping every worker (see the module doc)."""
        if not self.cfg.prometheus:
            return
        if not Path(PROMETHEUS_BIN).exists():
            self.note(f"PROMETHEUS=1 but {PROMETHEUS_BIN} is missing (apt-get install prometheus); not started")
            return
        import shutil

        import yaml

        pdir = self.cfg.var_dir / "prometheus"
        _kill_leftover(self.run_dir / "prometheus.pid", "prometheus")
        shutil.rmtree(pdir / "data", ignore_errors=True)
        pdir.mkdir(parents=True, exist_ok=True)
        if not wait_port_free("127.0.0.1", self.cfg.prometheus_port, 3):
            self.note(f"port {self.cfg.prometheus_port} is in use: Prometheus not started (set PROMETHEUS_PORT)")
            return
        conf = pdir / "prometheus.yml"
        conf.write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
        argv = [PROMETHEUS_BIN, f"--config.file={conf}", f"--storage.tsdb.path={pdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.cfg.prometheus_port}", "--storage.tsdb.retention.time=1d",
                "--log.level=warn"]
        self.prometheus = Proc("prometheus", argv, dict(os.environ), self.log_dir / "prometheus.log",
                               self.run_dir / "prometheus.pid")
        self.prometheus.start()
        log.info("Prometheus on %s (rules %s, config %s)", self.prometheus_url, self.cfg.prometheus_rules, conf)

    def identity_env(self) -> dict[str, str]:
        """Where the workers find the identity provider's keys, and what its tokens say (nothing
        before :meth:`make_identities`)."""
        if not self.identity:
            return {}
        return {"JWKS": str(self.identity["jwks"]), "JWT_ISSUER": self.issuer, "JWT_AUDIENCE": self.audience,
                "JWT_SCOPE_CLAIM": "scope"}

    @property
    def issuer(self) -> str:
        return os.environ.get("JWT_ISSUER") or devidentity.DEFAULT_JWT_ISSUER

    @property
    def audience(self) -> str:
        return os.environ.get("JWT_AUDIENCE") or devidentity.DEFAULT_JWT_AUDIENCE

    def make_identities(self) -> None:
        """A fresh key pair, its JWKS and the demo identities (tokens for 12 h) under ``run/``."""
        self.identity = devidentity.generate(self.run_dir, issuer=self.issuer, audience=self.audience)
        for person in json.loads(self.identity["identities"].read_text()):
            for role in person["roles"]:
                self.tokens.setdefault(role, person["token"])
        log.info("identity provider: JWKS %s, demo identities %s", self.identity["jwks"], self.identity["identities"])

    def write_api_env(self) -> None:
        """``run/api.env``: the service URLs and one token per role (``<ROLE>_TOKEN``), to source."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "tokens.env").unlink(missing_ok=True)  # what runs before identities wrote
        lines = [f"{s.upper()}_URL={self.url(s)}" for s in SERVICES]
        lines += [f"{role.upper()}_TOKEN={tok}" for role, tok in sorted(self.tokens.items())]
        lines += [f"IDENTITIES_FILE={self.identity['identities']}", f"KAFKA_BOOTSTRAP_SERVERS={self.bootstrap}",
                  f"DATABASE_URL={self.dsn}"]
        devidentity.write_file(self.run_dir / "api.env", ("\n".join(lines) + "\n").encode(), 0o600)

    def make_workers(self) -> None:
        env = self.base_env()
        for s in SERVICES:
            main = ROOT / "services" / s / "app" / "main.py"
            if not main.exists():
                self.note(f"{s}: services/{s}/app/main.py does not exist yet; not started")
                continue
            for i, name in enumerate(self.cfg.worker_names(s), 1):
                port = self.cfg.worker_port(s, i)
                argv = [sys.executable, "-m", f"services.{s}.app", "worker", "-l", "warn",
                        "--web-port", str(port), "--web-host", self.cfg.host]
                wenv = {**env, **self.db_urls.get(s, {}), f"{s.upper()}_HTTP_PORT": str(port)}
                self.workers[name] = Proc(name, argv, wenv, self.log_dir / f"{name}.log", self.run_dir / f"{name}.pid",
                                          service=s, port=port)
                if i == 1:
                    self.write_worker_env(s, wenv)

    def write_worker_env(self, service: str, env: dict[str, str]) -> None:
        """``run/<svc>.env``: what the launcher gives the service's workers beyond the
        environment it was started with, one ``KEY=value`` a line (mode 600: it holds the
        service's database passwords), to run another command of the service as its workers
        would (``python -m services.<svc>.app rebuild``) from the same environment. Nothing the
        launcher inherited is written (it may hold anyone's secrets)."""
        own = {k: v for k, v in env.items() if os.environ.get(k) != v}
        broken = sorted(k for k, v in own.items() if "\n" in v or "=" in k)
        if broken:
            raise SystemExit(f"run/{service}.env cannot hold {', '.join(broken)}: a line break in the value")
        lines = [f"{k}={v}" for k, v in sorted(own.items())]
        devidentity.write_file(self.run_dir / f"{service}.env", ("\n".join(lines) + "\n").encode(), 0o600)

    def stop_leftovers(self) -> None:
        """Workers and a simulator an earlier run left behind (kill -9 of the launcher): stop them."""
        for pid in sorted(self.run_dir.glob("*.pid")):
            name = pid.stem
            svc = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
            if name == "simulator":
                _kill_leftover(pid, "services.simulator")
            elif name == "prometheus":
                _kill_leftover(pid, "prometheus")
            elif svc in SERVICES:
                _kill_leftover(pid, f"services.{svc}.app")

    def start_workers(self) -> None:
        for w in self.workers.values():
            _kill_leftover(w.pid_path, w.argv[2])
            if not wait_port_free(self.cfg.host, w.port, 10):
                raise SystemExit(f"port {w.port} for {w.name} is in use: stop what uses it "
                                 f"or set {w.service.upper()}_HTTP_PORT (or WORKER_PORT_STEP)")
            w.start()
            log.info("%s worker started (pid %s, log %s)", w.name, w.proc.pid, w.log_path)

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + self.cfg.ready_timeout
        pending = set(self.workers)
        while pending:
            if self.stopping.is_set():
                return
            for s in list(pending):
                w = self.workers[s]
                if not w.alive:
                    raise SystemExit(f"{s} worker exited with {w.proc.returncode} while starting; see {w.log_path}")
                status, _ = await summary._get(session, self.worker_url(w) + "/readyz")
                if status == 200:
                    pending.discard(s)
                    log.info("%s ready on %s", s, self.worker_url(w))
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready after {self.cfg.ready_timeout:.0f}s: {sorted(pending)}; see {self.log_dir}")
            await asyncio.sleep(0.3)

    def start_simulator(self) -> None:
        # the simulator signs a token per simulated person with the identity provider's key
        env = {**self.base_env(), "RATE": self.cfg.rate, "IDENTITIES_FILE": str(self.identity["identities"]),
               "SIGNING_KEY_FILE": str(self.identity["signing_key"]), "POINTS_URL": self.url("points"),
               "LOG_FORMAT": "text"}
        argv = [sys.executable, "-m", "services.simulator", "run"]
        self.simulator = Proc("simulator", argv, env, self.log_dir / "simulator.log", self.run_dir / "simulator.pid")
        self.simulator.start()
        log.info("simulator started at RATE=%s (log %s)", self.cfg.rate, self.simulator.log_path)

    def supervise(self) -> None:
        """Restart a worker that died (and say so); report a simulator that ended."""
        if self.stopping.is_set() or self.hold.is_set():
            return
        now = time.monotonic()
        for w in self.workers.values():
            if w.alive:
                continue
            if w.died_at is None:  # found dead: said once, restarted after the delay (as a supervisor's backoff)
                w.died_at = now
                rc = w.proc.returncode if w.proc else None
                w.exits.append(rc)
                self.note(f"{w.name} worker died (exit {rc}); restarting it in {self.cfg.restart_delay:g}s "
                          f"(restart #{w.restarts + 1}), see {w.log_path}")
            if now - w.died_at >= self.cfg.restart_delay:
                w.died_at = None
                w.restarts += 1
                w.start()
        if self.prometheus is not None and not self.prometheus.alive:
            self.prometheus.exits.append(self.prometheus.proc.returncode)
            self.prometheus.restarts += 1
            self.note(f"Prometheus died (exit {self.prometheus.proc.returncode}); restarting it, see {self.prometheus.log_path}")
            self.prometheus.start()
        if self.simulator is not None and not self.simulator.alive and not self.simulator.exits:
            self.simulator.exits.append(self.simulator.proc.returncode)
            self.note(f"simulator ended (exit {self.simulator.proc.returncode}); see {self.simulator.log_path}")

    def stop_workers(self) -> None:
        """SIGUSR1: stop the simulator and every worker as at the end of a run, and restart none;
        the broker, the database and Prometheus stay up until SIGTERM (a fault campaign
        compares each projection with its rebuild while nothing writes)."""
        log.info("SIGUSR1: stopping the simulator and the workers; the broker and the database stay up")
        self._stop_simulator_and_workers()
        self.workers_stopped = True
        self.note("workers stopped (SIGUSR1); the broker and the database stay up until SIGTERM")

    def _stop_simulator_and_workers(self) -> None:
        if self.simulator is not None:
            self.simulator.stop(grace=15)
        for w in self.workers.values():
            w.signal(signal.SIGTERM)
        deadline = time.monotonic() + float(os.environ.get("STOP_GRACE_SECONDS") or 20)
        for w in self.workers.values():  # one shared grace period, then SIGKILL
            w.stop(grace=max(0.5, deadline - time.monotonic()))

    def stop_processes(self) -> None:
        self._stop_simulator_and_workers()
        if self.prometheus is not None:
            self.prometheus.stop(grace=10)

    # -- the live loop --------------------------------------------------------------------------
    def worker_info(self) -> dict[str, dict]:
        return {s: {"alive": w.alive, "restarts": w.restarts, "pid": w.proc.pid if w.proc else None,
                    "service": w.service, "port": w.port}
                for s, w in self.workers.items()}

    async def live(self, session: aiohttp.ClientSession) -> dict:
        tty = sys.stdout.isatty()
        started = time.monotonic()
        last_produced, last_t = None, None
        snap: dict = {}
        urls = self.service_urls()
        names = {self.worker_url(w): n for n, w in self.workers.items()}
        while not self.stopping.is_set():
            if self.hold.is_set() and not self.workers_stopped:
                await asyncio.to_thread(self.stop_workers)
            self.supervise()
            snap = await summary.collect(session, urls, self.tokens.get("points_operator"),
                                         assessor_token=self.tokens.get("assessor"),
                                         period=clock.month_label(clock.month_start(self.clock.now(), 1)))
            now = time.monotonic()
            rate = 0.0
            if last_produced is not None and now > last_t:
                rate = max(0.0, (snap["produced"] - last_produced) / (now - last_t))
            last_produced, last_t = snap["produced"], now
            elapsed = now - started
            snap["workers"] = self.worker_info()
            snap["workers_stopped"] = self.workers_stopped
            snap["workers_ready"] = {names[u]: ok for u, ok in (snap.pop("ready_by_url", None) or {}).items() if u in names}
            if self.prometheus is not None:
                snap["prometheus"] = self.prometheus_url
            snap["events_per_second"] = rate
            snap["elapsed"] = elapsed
            snap["notes"] = self.notes[-20:]
            if self.clock.simulated:
                snap["simulated_time"] = self.clock.now().astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
                snap["sim_month_seconds"] = self.clock.month_seconds
            tmp = self.run_dir / "summary.json.tmp"
            tmp.write_text(json.dumps(snap, ensure_ascii=False, default=str))
            tmp.replace(self.run_dir / "summary.json")
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J" + summary.render(snap, snap["workers"], elapsed, rate, self.notes) + "\n")
            else:
                sys.stdout.write(summary.line(snap, snap["workers"], elapsed, rate) + "\n")
            sys.stdout.flush()
            if self.cfg.run_seconds is not None and elapsed >= self.cfg.run_seconds:
                log.info("RUN_SECONDS=%s reached", self.cfg.run_seconds)
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.cfg.refresh)
        return snap

    async def run_async(self) -> dict:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, self.hold.set)
        async with aiohttp.ClientSession() as session:
            self.start_workers()
            await self.wait_ready(session)
            if self.stopping.is_set():
                return {}
            log.info("all workers ready: %s", ", ".join(f"{n} {self.worker_url(w)}" for n, w in self.workers.items()))
            if self.cfg.simulate:
                self.start_simulator()
            return await self.live(session)

    def run(self) -> int:
        self.cfg.var_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # SIGTERM/SIGINT during start-up (before the loop has its handlers) must still clean up.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        final: dict = {}
        try:
            self.stop_leftovers()
            self.start_infra()
            self.set_clock()
            self.make_identities()
            self.write_api_env()
            self.make_workers()
            self.start_prometheus()
            final = asyncio.run(self.run_async())
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            log.info("stopping: simulator, workers, Prometheus, broker, database")
            self.stop_processes()
            self.stop_infra()
            if final:
                final["stopped"] = True
                (self.run_dir / "summary.json").write_text(json.dumps(final, ensure_ascii=False, default=str))
            log.info("stopped cleanly")
        for failure in final.get("failures") or ():
            log.error("run failed: %s", failure)
        return 1 if final.get("failures") else 0
