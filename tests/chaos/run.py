"""``make chaos`` (``python -m tests.chaos.run``): the district under faults, then checked.

Seeded (``SEED``), bounded (``CHAOS_MINUTES``, default 20: the faults stop being injected when
the budget is spent and a fault left out is a failed check), stops by itself and cleans up.

1. The launcher starts the district in ``CHAOS_VAR_DIR`` (default ``var/chaos``, recreated) on
   free ports: embedded broker and PostgreSQL, ``WORKERS=2`` workers per service, Prometheus
   with the campaign's copy of the alert rules (``tests/chaos/rules.py``), and the simulator
   at ``CHAOS_RATE`` commands/s (20).
2. Beside the simulator: redeliveries of the intake and events topics' records (duplicates and
   late, out-of-order copies), poison records and fuzzed HTTP commands (``tests/chaos/inject.py``).
3. The faults of the plan (``CHAOS_PLAN``: ``full``, or ``short`` for the test in ``make
   test``), in a seeded order, one after the other at random moments (2-8 s apart): each is
   injected, lifted, and the district must recover (every worker ready and the consumer lag 0)
   within ``CHAOS_RECOVERY_SECONDS`` (90). Meanwhile Prometheus's ``/api/v1/alerts`` is read
   every second, and at the end its ``ALERTS`` series (an alert that fired for one evaluation
   may fall between two reads): each fault's alert must fire (see :data:`EXPECTED`).
4. The load stops; once the lag is 0, the invariants are checked from the topics and the
   APIs (``tests/chaos/check.py``); the fault alerts must clear.
5. The launcher stops the workers (``SIGUSR1``) and each service's projection is compared row
   for row with its rebuild from its input topics, in a copy of the database
   (``tests/chaos/rebuilt.py``).
6. The launcher stops everything. One JSON line is printed (and written to
   ``<var>/result.json``); the exit status is 1 if any check failed.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from schemas.registry import SERVICES
from services.kit.infra import free_port
from services.launcher.launcher import port_free
from services.launcher.summary import parse_metrics, total

from . import check, rebuilt, rules
from .faults import Fault, Faults
from .inject import Counts, HttpFuzzer, Poisoner, Redeliverer, paced
from .lag import BrokerLag

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2
SESSION_TIMEOUT_MS = 6000
SCRAPE_SECONDS = 1  # Prometheus scrapes and evaluates every second here
# fault kind -> the alerts of which one must fire while it is on (or soon after, within the
# alert's `for:` window and a few scrapes). A worker's alert must name that worker.
# GrassrootsTimerFailing is for a timer's code errors: no fault of the campaign makes one (an
# outage is a timer's `retry`, which GrassrootsTimerNotCompleting sees).
EXPECTED = {
    "kill_worker": ("GrassrootsWorkerDown",),
    "stop_worker": ("GrassrootsWorkerDown",),
    "pause_broker": ("GrassrootsWorkerNotReady", "GrassrootsOutboxRelayFailing", "GrassrootsConsumerLagRising",
                     "GrassrootsOutboxNotPublishing"),
    "stop_postgres": ("GrassrootsWorkerNotReady", "GrassrootsOutboxRelayFailing", "GrassrootsTimerNotCompleting"),
    "read_only": ("GrassrootsConsumerStalled", "GrassrootsWorkerNotReady", "GrassrootsOutboxRelayFailing",
                  "GrassrootsTimerNotCompleting"),
    "kill_relay": (),  # the worker restarts its relay within a second: nothing for an alert to see
}
# the relay counts a failure each this many seconds a round waits on the paused broker (10 s in
# production, against rules whose windows are 30 times shorter here)
RELAY_STALL_SECONDS = 2
PER_WORKER = {"kill_worker", "stop_worker"}
# alerts about the simulated district itself, not about a fault: they may stay on
DOMAIN_ALERTS = {"GrassrootsSimulatedClock", "GrassrootsOverdueCasesHigh", "GrassrootsPartyMeetingOverdue",
                 "GrassrootsPartyCoverageGap", "GrassrootsWorkCalendarEnding", "KafkaExporterDown"}


def plan(kind: str, rng: random.Random) -> list[Fault]:
    workers = {s: [s, f"{s}-2"] for s in SERVICES}
    faults: list[Fault] = []
    if kind == "short":
        svc = rng.choice(sorted(SERVICES))
        faults += [Fault("kill_worker", rng.choice(workers[svc])),
                   Fault("kill_relay", rng.choice(workers[rng.choice(sorted(SERVICES))])),
                   Fault("stop_postgres", hold=10), Fault("pause_broker", hold=10)]
    else:
        for s in SERVICES:  # three kills of each service's workers, both workers at least once
            picks = [workers[s][0], workers[s][1], rng.choice(workers[s])]
            faults += [Fault("kill_worker", w) for w in picks]
        faults += [Fault("kill_relay", rng.choice(workers[rng.choice(sorted(SERVICES))])) for _ in range(3)]
        faults += [Fault("stop_worker", rng.choice(workers[rng.choice(sorted(SERVICES))])) for _ in range(2)]
        faults += [Fault("pause_broker", hold=20), Fault("stop_postgres", hold=20), Fault("stop_postgres", hold=20),
                   Fault("read_only", hold=20)]
    rng.shuffle(faults)
    return faults


def pick_base_ports(step: int) -> dict[str, int]:
    """Base ports for the services such that every worker's port (base + i*step) is free."""
    r = random.SystemRandom()
    for _ in range(200):
        base = r.randrange(20000, 32000, 100)  # below the ephemeral ports free_port() hands out
        ports = {s: base + i for i, s in enumerate(SERVICES)}
        if all(port_free("127.0.0.1", p + k * step) for p in ports.values() for k in range(WORKERS)):
            return ports
    raise SystemExit("no free ports for the workers")


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


class Campaign:
    def __init__(self) -> None:
        e = os.environ
        self.seed = int(e.get("SEED") or random.SystemRandom().randrange(1, 10**6))
        self.minutes = float(e.get("CHAOS_MINUTES") or 20)
        self.rate = float(e.get("CHAOS_RATE") or 20)
        self.plan_kind = e.get("CHAOS_PLAN") or "full"
        self.recovery_bound = float(e.get("CHAOS_RECOVERY_SECONDS") or 90)
        self.var = Path(e.get("CHAOS_VAR_DIR") or ROOT / "var" / "chaos").absolute()
        self.rng = random.Random(self.seed)
        self.counts = Counts()
        self.failed: list[str] = []
        self.faults = plan(self.plan_kind, random.Random(self.seed))
        self.current: Fault | None = None
        self.alerts: dict[tuple, list[float]] = {}  # (alertname, service, worker) -> times seen firing
        self.firing_now: set[tuple] = set()
        self.lag = -1.0
        self.ready: dict[str, bool] = {}
        self.t0 = time.monotonic()
        self.kit_lag_at_end = None
        self.lag_ok = 50.0
        self.sampled_at = 0.0
        self.blag, self.blag_at, self.group_lag = -1.0, 0.0, {}

    def log(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} +{time.monotonic() - self.t0:5.0f}s {msg}"
        print(line, file=sys.stderr, flush=True)

    # -- the district -------------------------------------------------------------------------
    def start_district(self) -> None:
        shutil.rmtree(self.var, ignore_errors=True)
        self.var.mkdir(parents=True)
        self.for_s = rules.write_campaign_rules(self.var / "rules")
        step = 10
        self.ports = pick_base_ports(step)
        self.kafka_port, self.pg_port, self.prom_port = free_port(), free_port(), free_port()
        self.urls = {s: [f"http://127.0.0.1:{p + k * step}" for k in range(WORKERS)] for s, p in self.ports.items()}
        self.worker_url = {(s if k == 0 else f"{s}-{k + 1}"): f"http://127.0.0.1:{p + k * step}"
                           for s, p in self.ports.items() for k in range(WORKERS)}
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        env.update({
            "VAR_DIR": str(self.var), "KAFKA_PORT": str(self.kafka_port), "PG_PORT": str(self.pg_port),
            **{f"{s.upper()}_HTTP_PORT": str(p) for s, p in self.ports.items()}, "WORKER_PORT_STEP": str(step),
            "WORKERS": str(WORKERS), "PROMETHEUS": "1", "PROMETHEUS_PORT": str(self.prom_port),
            "PROMETHEUS_RULES": str(self.var / "rules"), "PROMETHEUS_SCRAPE_SECONDS": str(SCRAPE_SECONDS),
            "SIMULATE": "1", "RATE": f"{self.rate:g}", "SEED": str(self.seed),
            "SIM_MONTH_SECONDS": os.environ.get("SIM_MONTH_SECONDS") or "60",
            "KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS), "RUN_SECONDS": str(self.minutes * 60 + 900),
            "STOP_GRACE_SECONDS": "15", "READY_TIMEOUT": "240",
            # a killed worker stays down past its alert's window and two scrapes: a restart quicker
            # than the window is, by the rule, no outage, and would fire nothing
            "RESTART_DELAY_SECONDS": str(self.for_s["GrassrootsWorkerDown"] + 2 * SCRAPE_SECONDS),
            **{f"{s.upper()}_DB_POOL_MAX": "4" for s in SERVICES},
            **{f"{s.upper()}_CONSUMER_STALL_SECONDS": "5" for s in SERVICES},
            **{f"{s.upper()}_OUTBOX_RELAY_STALL_SECONDS": str(RELAY_STALL_SECONDS) for s in SERVICES},
        })
        self.launcher_env = env  # a rebuild runs in it too, with what the launcher gave the workers
        self.launcher_out = open(self.var / "launcher.out", "wb")
        self.launcher = subprocess.Popen([sys.executable, "-m", "services.launcher"], cwd=ROOT, env=env,
                                         stdout=self.launcher_out, stderr=subprocess.STDOUT, start_new_session=True)
        self.log(f"district starting: seed {self.seed}, plan {self.plan_kind} ({len(self.faults)} faults), "
                 f"{self.rate:g} commands/s, var {self.var}")

    def stop_district(self) -> None:
        if self.launcher.poll() is None:
            os.killpg(self.launcher.pid, signal.SIGTERM)
            try:
                self.launcher.wait(120)
            except subprocess.TimeoutExpired:
                self.failed.append("the launcher did not stop within 120 s")
                os.killpg(self.launcher.pid, signal.SIGKILL)
                self.launcher.wait(10)
        self.launcher_out.close()

    def summary(self) -> dict:
        try:
            return json.loads((self.var / "run" / "summary.json").read_text())
        except (OSError, ValueError):
            return {}

    async def wait_started(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.launcher.poll() is not None:
                raise SystemExit(f"the launcher exited ({self.launcher.returncode}): see {self.var / 'launcher.out'}")
            s = self.summary()
            if s.get("workers_ready") and all(s["workers_ready"].get(w) for w in self.worker_url):
                self.tokens = env_file(self.var / "run" / "api.env")
                self.bootstrap = self.tokens["KAFKA_BOOTSTRAP_SERVERS"]
                return
            await asyncio.sleep(1)
        raise SystemExit("the district was not ready within 300 s")

    # -- watching -------------------------------------------------------------------------------
    async def watch(self, session: aiohttp.ClientSession, stopping: asyncio.Event) -> None:
        """Every second: each worker's readiness (which also refreshes its ``kit_ready``), the
        consumer lag of all workers, and the alerts Prometheus has firing."""
        async def one(name: str, url: str):
            ready, lag = False, None
            try:
                async with session.get(url + "/readyz", timeout=aiohttp.ClientTimeout(total=4)) as r:
                    ready = r.status == 200
                async with session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(total=4)) as r:
                    if r.status == 200:
                        lag = total(parse_metrics(await r.text()), "kit_consumer_lag")
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                pass
            return name, ready, lag

        while not stopping.is_set():
            began = time.monotonic()
            got = await asyncio.gather(*(one(n, u) for n, u in self.worker_url.items()), self.read_alerts(session))
            self.ready = {n: ok for n, ok, _ in got[:-1]}
            lags = [lag for _, _, lag in got[:-1]]
            self.lag = -1.0 if any(x is None for x in lags) else sum(lags)
            self.sampled_at = began  # what the round saw is no older than this
            await asyncio.sleep(1)

    async def watch_broker(self, stopping: asyncio.Event) -> None:
        """Every two seconds: the consumer groups' lag as the broker sees it (``tests/chaos/lag.py``)."""
        lag = BrokerLag(self.bootstrap, int(os.environ.get("TOPIC_PARTITIONS") or 4))
        while not stopping.is_set():
            began = time.monotonic()
            try:
                if lag.reader is None:
                    await lag.start()
                by_group = await asyncio.wait_for(lag.lag(), 15)
                self.group_lag = by_group
                self.blag = float(sum(by_group.values()))
            except Exception:
                self.blag = -1.0
            self.blag_at = began
            await asyncio.sleep(2)
        await lag.stop()

    async def read_alerts(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(f"http://127.0.0.1:{self.prom_port}/api/v1/alerts",
                                   timeout=aiohttp.ClientTimeout(total=3)) as r:
                body = await r.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return
        now = time.monotonic()
        firing = set()
        for a in body.get("data", {}).get("alerts", []):
            if a.get("state") != "firing":
                continue
            lb = a["labels"]
            key = (lb["alertname"], lb.get("service", ""), lb.get("worker", ""))
            firing.add(key)
            self.alerts.setdefault(key, []).append(now)
        for key in firing - self.firing_now:
            self.log(f"alert firing: {key}")
        self.firing_now = firing

    def healthy(self, lag_ok: float = 0, since: float = 0) -> bool:
        """Every worker ready and the consumer groups' lag (the broker's view) at most ``lag_ok``,
        both seen by rounds that began after ``since``."""
        return (self.sampled_at >= since and self.blag_at >= since and bool(self.ready) and all(self.ready.values())
                and 0 <= self.blag <= lag_ok)

    async def wait_healthy(self, bound: float, lag_ok: float = 0) -> float | None:
        """When every worker was ready and the lag at most ``lag_ok``, in a round of the watcher
        that began after this call (None: not within ``bound`` seconds)."""
        start = time.monotonic()
        while time.monotonic() - start < bound:
            if self.healthy(lag_ok, since=start):
                return time.monotonic()
            await asyncio.sleep(0.5)
        return None

    async def steady_lag(self, seconds: float = 15) -> float:
        """The lag the district runs with under the load (records fetched and not yet committed):
        while the load goes on, "recovered" means back to it (three times its median, at least
        50); once the load stops, the lag must be 0."""
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.blag >= 0:
                samples.append(self.blag)
            await asyncio.sleep(1)
        return max(50.0, 3 * statistics.median(samples)) if samples else 50.0

    def fault_on(self) -> bool:
        return self.current is not None

    # -- the campaign -----------------------------------------------------------------------------
    async def campaign(self) -> dict:
        self.start_district()
        result: dict = {}
        try:
            await self.wait_started()
            self.log(f"district ready ({len(self.worker_url)} workers); Prometheus on http://127.0.0.1:{self.prom_port}")
            result = await self.drive()
        finally:
            self.stop_district()
        return result

    async def drive(self) -> dict:
        stopping, load_stop = asyncio.Event(), asyncio.Event()
        admin = self.tokens["DATABASE_URL"]
        faults = Faults(self.var, self.pg_port, admin, SESSION_TIMEOUT_MS / 1000)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False, linger_ms=5,
                                    request_timeout_ms=10000, max_request_size=8 << 20)
        await producer.start()
        tokens = {k: v for k, v in self.tokens.items() if k.endswith("_TOKEN")}
        async with aiohttp.ClientSession() as session:
            watcher = asyncio.create_task(self.watch(session, stopping))
            broker_watcher = asyncio.create_task(self.watch_broker(stopping))
            redeliver = Redeliverer(self.bootstrap, random.Random(self.seed + 1), self.counts)
            poisoner = Poisoner(self.bootstrap, random.Random(self.seed + 2), self.seed, self.counts)
            fuzzer = HttpFuzzer(self.urls, tokens, random.Random(self.seed + 3), self.counts, self.fault_on)
            jitter = random.Random(self.seed + 4)
            load = [asyncio.create_task(redeliver.run(producer)),
                    asyncio.create_task(paced(1 / (self.rate * 0.02), lambda: poisoner.one(producer), load_stop, jitter)),
                    asyncio.create_task(paced(0.5, lambda: fuzzer.one(session), load_stop, jitter))]
            budget_end = self.t0 + self.minutes * 60 - 120  # leave two minutes to settle and check
            self.lag_ok = await self.steady_lag()
            self.log(f"steady lag under load: recovered means every worker ready and lag <= {self.lag_ok:.0f}")
            done: list[Fault] = []
            for f in self.faults:
                await asyncio.sleep(self.rng.uniform(2, 8))
                if time.monotonic() > budget_end:
                    self.failed.append(f"time budget spent: {len(self.faults) - len(done)} fault(s) not injected")
                    break
                self.current = f
                f.started, f.wall = time.monotonic(), time.time()
                self.log(f"fault {len(done) + 1}/{len(self.faults)}: {f.name}")
                try:
                    await faults.run(f)
                except Exception as e:  # a fault that could not be injected is a failed check
                    self.failed.append(f"{f.name}: could not inject: {e!r}")
                f.ended = time.monotonic()
                await asyncio.sleep(2)  # let the fault be seen (a killed worker's port closes)
                f.recovered = await self.wait_healthy(self.recovery_bound, self.lag_ok)
                self.current = None
                rec = None if f.recovered is None else f.recovered - f.ended
                self.log(f"  {f.name}: {'recovered in %.1fs' % rec if rec is not None else 'NOT recovered'}"
                         f"{' (' + f.note + ')' if f.note else ''}")
                done.append(f)
            self.log("load stops: simulator, redeliveries, poison, fuzzing")
            self.stop_simulator()
            load_stop.set()
            redeliver.stopping.set()
            await asyncio.gather(*load, return_exceptions=True)
            last = max((f.ended for f in done), default=time.monotonic())
            settled = await self.wait_healthy(180)
            stuck = [n for n, ok in self.ready.items() if not ok] if settled is None else []
            if settled is None:
                stuck = stuck or [g for g, n in self.group_lag.items() if n]
                self.failed.append(f"stuck: group lag {self.group_lag} / not ready {stuck} 180 s after the load stopped")
            cleared = await self.wait_alerts_cleared(90)
            if cleared:
                self.failed.append(f"fault alerts still firing after the campaign: {sorted(cleared)}")
            self.log("checking the invariants")
            try:
                figures, failed = await check.check(self.bootstrap, self.urls["points"][0], self.tokens,
                                                    self.counts.poison, session, self.seed)
            except Exception as e:  # a checker that breaks is a failed run, with the figures so far
                figures, failed = {}, [f"the invariants checker failed: {e!r}"]
            self.failed += failed
            self.kit_lag_at_end = self.lag
            stopping.set()
            await watcher
            await broker_watcher
        await producer.stop()
        await self.read_alert_history()
        if settled is not None:
            figures["rebuild"] = await self.check_rebuilds(admin)
        else:
            figures["rebuild"] = {"skipped": "the district did not settle: its projections are not final"}
        return self.result(done, figures, settled, last, stuck)

    async def read_alert_history(self) -> None:
        """Add to what the polls saw every second at which Prometheus's own ``ALERTS`` series
        says an alert was firing: one that fired for a single evaluation (a worker restarted
        just past its rule's window) can fall between two polls of ``/api/v1/alerts``."""
        offset = time.time() - time.monotonic()
        params = {"query": 'max_over_time(ALERTS{alertstate="firing"}[2s])', "step": "1",
                  "start": f"{self.t0 + offset:.3f}", "end": f"{time.time():.3f}"}
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{self.prom_port}/api/v1/query_range", params=params,
                                       timeout=aiohttp.ClientTimeout(total=60)) as r:
                    body = await r.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            self.log(f"alert history not read ({e!r}): the polls' record stands")
            return
        for series in body.get("data", {}).get("result", []):
            lb = series["metric"]
            key = (lb.get("alertname", ""), lb.get("service", ""), lb.get("worker", ""))
            self.alerts.setdefault(key, []).extend(float(t) - offset for t, _ in series.get("values", []))

    async def check_rebuilds(self, admin: str) -> dict:
        """Stop the workers (the launcher keeps the broker and the database) and compare each
        service's projection with its rebuild from its input topics (``tests/chaos/rebuilt.py``)."""
        self.log("stopping the workers: each projection against its rebuild from its input topics")
        os.kill(self.launcher.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 90
        while not self.summary().get("workers_stopped"):
            if time.monotonic() > deadline or self.launcher.poll() is not None:
                self.failed.append("rebuild check: the launcher did not stop the workers within 90 s")
                return {}
            await asyncio.sleep(0.5)
        try:
            figures, failed = await rebuilt.check(self.var, admin, self.bootstrap, launched=self.launcher_env)
        except Exception as e:  # a checker that breaks is a failed run
            figures, failed = {}, [f"the rebuild check failed: {e!r}"]
        self.failed += failed
        self.log(f"rebuild check: {len(failed)} failed, {figures.get('seconds')} s")
        return figures

    def stop_simulator(self) -> None:
        pid = self.var / "run" / "simulator.pid"
        try:
            os.kill(int(pid.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            self.failed.append("the simulator was not running when the load was to stop")

    async def wait_alerts_cleared(self, bound: float) -> set:
        deadline = time.monotonic() + bound
        while True:
            left = {k for k in self.firing_now if k[0] not in DOMAIN_ALERTS}
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(1)

    def fired_for(self, f: Fault) -> list[str]:
        names = EXPECTED[f.kind]
        until = (f.recovered or f.ended + self.recovery_bound) + 20
        seen = []
        for (name, svc, worker), times in self.alerts.items():
            if name not in names:
                continue
            if f.kind in PER_WORKER and worker != f.target:
                continue
            if any(f.started <= t <= until + self.for_s.get(name, 0) for t in times):
                seen.append(name)
        return sorted(set(seen))

    def result(self, done: list[Fault], figures: dict, settled: float | None, last: float, stuck: list) -> dict:
        recoveries = [f.recovered - f.ended for f in done if f.recovered is not None]
        not_recovered = [f.name for f in done if f.recovered is None]
        if not_recovered:
            self.failed.append(f"not recovered within {self.recovery_bound:.0f} s: {not_recovered}")
        alerts_by_fault = {}
        for f in done:
            f.alerts = self.fired_for(f)
            alerts_by_fault.setdefault(f.kind, Counter()).update(f.alerts or ["-"])
            if EXPECTED[f.kind] and not f.alerts:
                self.failed.append(f"{f.name}: none of its alerts {list(EXPECTED[f.kind])} fired")
        if self.counts.poison and not any(k[0] == "GrassrootsRecordsDeadLettered" for k in self.alerts):
            self.failed.append("poison records: GrassrootsRecordsDeadLettered never fired")
        c = self.counts
        commands = figures.get("commands") or 0
        if commands and c.duplicates < 0.05 * commands:
            self.failed.append(f"too few duplicates injected: {c.duplicates} for {commands} commands")
        if commands and len(c.poison) < 0.01 * commands:
            self.failed.append(f"too few poison records: {len(c.poison)} for {commands} commands")
        if c.http_5xx:
            self.failed.append(f"HTTP 5xx outside faults: {len(c.http_5xx)}, e.g. {c.http_5xx[:3]}")
        counts = Counter(f.kind for f in done)
        return {
            "seed": self.seed, "plan": self.plan_kind, "minutes": round((time.monotonic() - self.t0) / 60, 1),
            "rate": self.rate, "workers_per_service": WORKERS,
            "commands": commands, "faults": dict(counts), "lost": figures.get("lost"),
            "duplicated": figures.get("duplicated"), "stuck": len(stuck) if settled is None else 0,
            "ledger_sum": figures.get("ledger_sum"),
            "recovery_p50_s": round(statistics.median(recoveries), 1) if recoveries else None,
            "recovery_max_s": round(max(recoveries), 1) if recoveries else None,
            "lag_zero_after_last_fault_s": round(settled - last, 1) if settled else None,
            "steady_lag_bound": self.lag_ok,
            "kit_consumer_lag_at_end": self.kit_lag_at_end,
            "alerts_fired": sorted({k[0] for k in self.alerts}),
            "alerts_by_fault": {k: dict(v) for k, v in alerts_by_fault.items()},
            "injected": {"redelivered_seen": c.seen, "duplicates": c.duplicates, "out_of_order": c.late,
                         "poison": len(c.poison), "poison_nul_key": c.poison_nul_key, "http": c.http,
                         "http_status": {str(k): v for k, v in sorted(c.http_status.items())}},
            "fault_log": [f"{time.strftime('%H:%M:%S', time.localtime(f.wall))} {f.name} held {f.ended - f.started:.0f}s "
                          f"recovered {'%.1fs' % (f.recovered - f.ended) if f.recovered else 'never'} "
                          f"alerts {','.join(f.alerts) or '-'}" for f in done],
            "checks": figures, "failed": self.failed, "ok": not self.failed,
        }


def main() -> int:
    # SIGTERM (a timeout, a test runner) stops like Ctrl-C: the district is stopped on the way out
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    camp = Campaign()
    result = asyncio.run(camp.campaign())
    if not result:
        result = {"seed": camp.seed, "failed": camp.failed or ["the campaign did not run"], "ok": False}
    line = json.dumps(result, ensure_ascii=False, default=str)
    (camp.var / "result.json").write_text(line + "\n")
    print(line, flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
