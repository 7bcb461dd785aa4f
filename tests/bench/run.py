"""``make bench``: throughput, latency and memory of the kit, measured in one run.

(a) raw       — a plain aiokafka consumer decoding + validating N envelopes (the ceiling);
(b) pipeline  — the kit's full path in a worker process: consume → token check → policy →
                inbox → state upsert → outbox → relay publish, N records from a prefilled topic,
                each carrying its grid worker's JWT (``authorization: Bearer``; BENCH_SENDERS
                distinct tokens, 300 by default);
(c) faust     — the same full path as a plain faust agent with ``take_events`` (peer baseline);
(d) e2e       — at a fixed rate (1,000/s), command sent → resulting event seen on the events topic;
(e) memory    — peak RSS of the pipeline worker, its outbox relay process included.

Everything runs on the embedded broker and database started here. Prints one JSON line at the
end and exits 1 when a target is missed. (b) and (c) run in rounds of one each, alternating
their order (pipeline, faust, faust, pipeline for the default two rounds), and each figure is
the mean of its runs: these machines' speed drifts over minutes, and in this order a steady
drift weighs the same on both. BENCH_N, BENCH_RATE, BENCH_E2E_SECONDS and BENCH_ROUNDS
(default 2; 1: one run of each) tune it.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.envelope import CONTENT_TYPE, decode, encode, envelope_for
from schemas.grid import LogPatrol
from schemas.topics import GRID
from services.kit.infra import EmbeddedKafka, EmbeddedPostgres, free_port
from services.kit.provision import provision
from tests.support.identity import test_identity
from tests.support.procs import child_pids

ROOT = Path(__file__).resolve().parents[2]
N = int(os.environ.get("BENCH_N", "200000"))
SENDERS = int(os.environ.get("BENCH_SENDERS", "300"))  # distinct grid workers, each with a token of their own
RATE = int(os.environ.get("BENCH_RATE", "1000"))
E2E_SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "15"))
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "12"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "2")))  # pipeline/faust rounds: P F, F P, P F...
TARGETS = {"pipeline_eps": 15000, "vs_faust": 4.0, "ratio": 0.15, "e2e_p99_ms": 250, "worker_rss_mb": 200}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sender_headers(n: int = SENDERS) -> list[list[tuple[str, bytes]]]:
    """Record headers for ``n`` grid workers: each one's own token (ES256, signed by the test
    identity provider, a scope of the bench's street), as a Kafka-only client sends it."""
    ident = test_identity()
    scope = {"streets": ["110105001"]}
    return [[("content-type", CONTENT_TYPE.encode()),
             ("authorization", f"Bearer {ident.token(f'gw-{w}', ['grid_worker'], scope=scope)}".encode())]
            for w in range(n)]


def patrol_envelopes(n: int, *, start: int = 0) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """``(key, value, headers)`` of ``n`` patrols, each sent by its grid worker with their token."""
    t = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
    senders = sender_headers()
    out = []
    for i in range(start, start + n):
        grid = f"110105001{(i % 6) + 1:03d}{(i % 40) + 1:03d}"
        w = (i * 7919) % SENDERS  # workers spread over grids and partitions
        cmd = LogPatrol(patrol_id=f"p-{i}", grid_id=grid, grid_worker_id=f"gw-{w}", started_at=t, ended_at=t)
        env = envelope_for(cmd, source="/bench/app-1", id=str(uuid.uuid4()), time=t)
        out.append((grid.encode(), encode(env), senders[w]))
    return out


async def prefill(bootstrap: str, records: list[tuple[bytes, bytes, list]], topic: str = GRID.intake.name) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=20,
                         max_batch_size=512 * 1024, acks="all")
    await p.start()
    try:
        parts = sorted(await p.partitions_for(topic))
        batches = {pt: p.create_batch() for pt in parts}
        futs = []
        for key, value, headers in records:
            pt = parts[hash(key) % len(parts)]
            if batches[pt].append(key=key, value=value, timestamp=None, headers=headers) is None:
                futs.append(await p.send_batch(batches[pt], topic, partition=pt))
                batches[pt] = p.create_batch()
                batches[pt].append(key=key, value=value, timestamp=None, headers=headers)
        for pt, b in batches.items():
            if b.record_count():
                futs.append(await p.send_batch(b, topic, partition=pt))
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def raw_throughput(bootstrap: str, n: int) -> float:
    """Plain aiokafka getmany + decode + validate of the prefilled topic."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                         fetch_max_wait_ms=50, max_partition_fetch_bytes=4 * 1024 * 1024)
    await c.start()
    try:
        tps = [TopicPartition(GRID.intake.name, p) for p in sorted(c.partitions_for_topic(GRID.intake.name))]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        seen = 0
        started = None
        while seen < n:
            batches = await c.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batches:
                started = time.perf_counter()
            for recs in batches.values():
                for r in recs:
                    decode(r.value)
                    seen += 1
        return n / (time.perf_counter() - started)
    finally:
        await c.stop()


async def new_database(server: EmbeddedPostgres, name: str) -> str:
    """A fresh database for one run, after a checkpoint: every run starts with the server's
    dirty buffers written out, not paying for the runs before it."""
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return server.url.rsplit("/", 1)[0] + "/" + name


async def drop_database(server: EmbeddedPostgres, name: str) -> None:
    """Drop a finished run's database, so that its autovacuum does not run beside later runs."""
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def wait_published(dsn: str, n: int, proc: subprocess.Popen, timeout: float = 600) -> float:
    """Records/s from the first inbox row to the moment all N (or more) are handled and published
    (the relay deletes what the broker acknowledged), both on the database's clock."""
    deadline = time.monotonic() + timeout
    conn = None
    while conn is None:
        assert proc.poll() is None, "worker died"
        try:
            conn = await asyncpg.connect(dsn, server_settings={"search_path": "grid"})
            await conn.fetchval("SELECT count(*) FROM outbox")
        except (asyncpg.UndefinedTableError, OSError):
            conn = None
            await asyncio.sleep(0.5)
    try:
        last = -1.0
        while True:
            assert proc.poll() is None, "worker died"
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM inbox) AS handled, (SELECT count(*) FROM outbox) AS unpublished, "
                "EXTRACT(EPOCH FROM clock_timestamp() - (SELECT min(processed_at) FROM inbox)) AS span")
            if row["handled"] >= n and row["unpublished"] == 0:
                return row["handled"] / float(row["span"])
            if time.monotonic() - last > 3:
                log(f"  handled {row['handled']}/{n}, unpublished {row['unpublished']}")
                last = time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {row['handled']} of {n} handled")
            # This poll scans the whole inbox, which grows to N rows: polled every 0.1 s all along,
            # it took a noticeable share of a core from the path being measured. Poll
            # every 0.1 s near the end (same resolution as before), sparsely while far from it.
            span, handled = float(row["span"] or 0), row["handled"]
            remaining = (n - handled) * span / handled if handled and span > 0 else 0.0
            await asyncio.sleep(min(2.0, max(0.1, remaining / 2)))
    finally:
        await conn.close()


async def check_admitted(dsn: str, n: int) -> None:
    """Every prefilled command passed its token and policy checks (a refused one would be a
    cheaper rejection, and the figure would not measure the command path)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "grid"})
    try:
        counted = await conn.fetchval("SELECT coalesce(sum(n), 0) FROM patrol_counts")
    finally:
        await conn.close()
    if counted < n:
        raise RuntimeError(f"only {counted} of {n} commands admitted: see the worker's log and grid.rejections.v1")


def start_worker(module: str, env: dict[str, str], logfile: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, "worker", "-l", "warn", "--web-port", str(env["PORT"]),
                             "--web-host", "127.0.0.1"], cwd=ROOT, env={**os.environ, **env},
                            stdout=open(logfile, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM")


class WorkerMemory:
    """Peak resident memory of a worker *with its child processes* (the outbox relay runs in one):
    the kernel keeps a peak per process only, so the sum is sampled every 0.1 s."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_total = 0.0
        self.peak_of: dict[int, float] = {}
        self._task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            self.snapshot()
            await asyncio.sleep(0.1)

    def snapshot(self) -> None:
        pids = [self.pid, *child_pids(self.pid)]
        self.peak_total = max(self.peak_total, sum(_status_mb(p, "VmRSS") for p in pids))
        for p in pids:
            self.peak_of[p] = max(self.peak_of.get(p, 0.0), peak_rss_mb(p))

    def stop(self) -> float:
        self._task.cancel()
        self.snapshot()
        # never below what the kernel saw of the worker process alone
        self.peak_total = max(self.peak_total, self.peak_of.get(self.pid, 0.0))
        return self.peak_total

    def describe(self) -> str:
        parts = [f"worker {self.peak_of.get(self.pid, 0.0):.0f} MB"]
        parts += [f"child {p} {mb:.0f} MB" for p, mb in self.peak_of.items() if p != self.pid]
        return ", ".join(parts) + " (peaks of each)"


async def e2e_latency(bootstrap: str, rate: int, seconds: float) -> tuple[float, float, int]:
    """Send commands at ``rate``/s; time until each one's event appears on grid.events.v1."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50)
    await c.start()
    tps = [TopicPartition(GRID.events.name, p) for p in sorted(c.partitions_for_topic(GRID.events.name))]
    c.assign(tps)
    await c.seek_to_end(*tps)
    for tp in tps:
        await c.position(tp)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    total = int(rate * seconds)
    records = patrol_envelopes(total, start=10_000_000)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0, acks="all")
    await p.start()

    async def sender() -> None:
        t0 = time.perf_counter()
        for i, (key, value, headers) in enumerate(records):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[orjson.loads(value)["id"]] = time.perf_counter()
            await p.send(GRID.intake.name, value, key=key, headers=headers)
        await p.flush()

    async def receiver() -> None:
        deadline = time.perf_counter() + seconds + 30
        while len(latencies) < total and time.perf_counter() < deadline:
            batches = await c.getmany(timeout_ms=200)
            now = time.perf_counter()
            for recs in batches.values():
                for r in recs:
                    cause = orjson.loads(r.value).get("causationid")
                    if cause in sent:
                        latencies.append((now - sent[cause]) * 1000)

    try:
        await asyncio.gather(sender(), receiver())
    finally:
        await p.stop()
        await c.stop()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49], q[98], len(latencies)


async def run_pipeline(pg: EmbeddedPostgres, broker: EmbeddedKafka, work: Path, run: int,
                       result: dict[str, float]) -> float:
    """The kit's full path from the start of the topic (a new consumer group and database).
    The last run then also measures the end-to-end latency and the worker's memory: last, so
    that the commands it sends come after the throughput runs (with two rounds, every one of
    them reads exactly the N prefilled records; a run that finds more counts all it handled)."""
    dsn = await new_database(pg, f"bench_pipeline_{run}")
    port = free_port()
    env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "DATABASE_URL": dsn, "PORT": str(port),
           "GRID_HTTP_PORT": str(port), "TOPIC_PARTITIONS": str(PARTITIONS), "LOG_FORMAT": "text",
           "GRID_BATCH_MAX_RECORDS": os.environ.get("BENCH_BATCH", "1000"), "BENCH_GROUP": f"bench-pipeline-{run}",
           **test_identity().env()}  # a worker verifies tokens on its HTTP API: it needs a JWKS to start
    worker = start_worker("tests.bench.pipeline_app", env, work / f"pipeline-{run}.log")
    memory = WorkerMemory(worker.pid)
    try:
        eps = await wait_published(dsn, N, worker)
        log(f"pipeline run {run}: {eps:.0f} records/s")
        await check_admitted(dsn, N)
        if run == ROUNDS:
            p50, p99, seen = await e2e_latency(broker.bootstrap, RATE, E2E_SECONDS)
            result["e2e_p50_ms"], result["e2e_p99_ms"] = p50, p99
            log(f"e2e at {RATE}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({seen} events)")
            result["worker_rss_mb"] = memory.stop()
            log(f"pipeline worker peak RSS with its relay process {result['worker_rss_mb']:.0f} MB; {memory.describe()}")
        return eps
    finally:
        memory.stop()
        stop_worker(worker)
        await drop_database(pg, f"bench_pipeline_{run}")


async def run_faust(pg: EmbeddedPostgres, broker: EmbeddedKafka, work: Path, run: int) -> float:
    """The same path as a plain faust agent, from the start of the topic (a new app id, so a new
    consumer group, and a new database)."""
    dsn = await new_database(pg, f"bench_faust_{run}")
    port = free_port()
    worker = start_worker("tests.bench.faust_app", {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "DATABASE_URL": dsn,
                                                    "PORT": str(port), "BENCH_WEB_PORT": str(port),
                                                    "BENCH_APP_ID": f"bench-faust-agent-{run}"},
                          work / f"faust-{run}.log")
    try:
        eps = await wait_published(dsn, N, worker)
        log(f"faust agent run {run}: {eps:.0f} records/s")
        return eps
    finally:
        stop_worker(worker)
        await drop_database(pg, f"bench_faust_{run}")


async def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    log(f"workdir {work}; N={N}, e2e at {RATE}/s for {E2E_SECONDS}s, {PARTITIONS} partitions, {ROUNDS} round(s)")
    broker = EmbeddedKafka(workdir=work / "kafka").start()
    pg = EmbeddedPostgres(work / "pg").start()
    result: dict[str, float] = {}
    try:
        await provision(broker.bootstrap, partitions=PARTITIONS)
        t = time.perf_counter()
        await prefill(broker.bootstrap, patrol_envelopes(N))
        log(f"prefilled {N} commands in {time.perf_counter() - t:.1f}s")

        result["raw_eps"] = await raw_throughput(broker.bootstrap, N)
        log(f"raw: {result['raw_eps']:.0f} records/s")

        # Rounds alternate their order, P F, F P, P F...: the machine's speed drifts over
        # minutes, and over each pair of rounds a steady drift weighs the same on both means.
        pipeline: list[float] = []
        faust_runs: list[float] = []
        for run in range(1, ROUNDS + 1):
            if run % 2:
                pipeline.append(await run_pipeline(pg, broker, work, run, result))
                faust_runs.append(await run_faust(pg, broker, work, run))
            else:
                faust_runs.append(await run_faust(pg, broker, work, run))
                pipeline.append(await run_pipeline(pg, broker, work, run, result))
        result["pipeline_eps"] = statistics.fmean(pipeline)
        result["faust_agent_eps"] = statistics.fmean(faust_runs)
        if ROUNDS > 1:
            log(f"pipeline {' / '.join(f'{x:.0f}' for x in pipeline)} records/s, faust agent "
                f"{' / '.join(f'{x:.0f}' for x in faust_runs)} records/s: means {result['pipeline_eps']:.0f} and "
                f"{result['faust_agent_eps']:.0f} ({result['pipeline_eps'] / result['faust_agent_eps']:.2f}x)")
    finally:
        pg.destroy()
        broker.stop()

    result["ratio"] = result["pipeline_eps"] / result["raw_eps"]
    out = {k: round(result[k], 3 if k == "ratio" else 1) for k in
           ("raw_eps", "pipeline_eps", "faust_agent_eps", "ratio", "e2e_p50_ms", "e2e_p99_ms", "worker_rss_mb")}
    checks = {
        f"pipeline_eps >= {TARGETS['pipeline_eps']}": out["pipeline_eps"] >= TARGETS["pipeline_eps"],
        f"pipeline_eps >= {TARGETS['vs_faust']} x faust_agent_eps": out["pipeline_eps"] >= TARGETS["vs_faust"] * out["faust_agent_eps"],
        f"ratio >= {TARGETS['ratio']}": out["ratio"] >= TARGETS["ratio"],
        f"e2e_p99_ms <= {TARGETS['e2e_p99_ms']}": out["e2e_p99_ms"] <= TARGETS["e2e_p99_ms"],
        f"worker_rss_mb <= {TARGETS['worker_rss_mb']}": out["worker_rss_mb"] <= TARGETS["worker_rss_mb"],
    }
    for name, ok in checks.items():
        log(f"{'PASS' if ok else 'MISS'}  {name}")
    print(json.dumps(out), flush=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
