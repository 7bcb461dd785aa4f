"""The outbox relay in a process of its own, beside the worker that writes the outbox.

A worker's event loop is one core's worth of Python: the batch consumer (decode, handlers,
SQL) and the relay (read the outbox, publish, delete) take turns on it, and while records
arrive faster than one core handles them the relay is starved and the outbox grows. Run in
its own process, the relay uses another core and keeps pace (``make bench`` measures both:
``<SVC>_OUTBOX_RELAY=process`` is the default, ``inline`` keeps it in the worker's loop).

The worker (:class:`RelayProcess`) starts ``python -m services.kit.relay`` and talks to it over
two pipes:

- the child's stdin: one byte after each commit that wrote outbox rows (a wake-up; the child
  also polls every ``OUTBOX_POLL_SECONDS``). End of file means the worker is stopping or gone:
  the child finishes the round in progress and exits, so it never outlives its worker;
- the child's stdout: JSON lines reporting what it published, failed rounds and the outbox
  statistics, which the worker adds to the metrics it serves on ``/metrics``.

The child lowers its own priority (``<SVC>_OUTBOX_RELAY_NICE``, 10 by default): while the
consumer and the relay are both busy, the consumer, which is the one that holds back the
partitions' lag, gets the CPU first and the relay catches up after it; when the CPU is not
contended (at the usual rates) the niceness changes nothing.

The child logs to the worker's stderr in the worker's log format. If it dies, the worker
restarts it (``kit_outbox_relay_restarts_total``) with a growing delay; nothing is lost, since
unpublished rows stay in the outbox. Leadership is unchanged: the relay still takes the
service's advisory lock, so with several workers one relay publishes at a time.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from . import jsonlog
from .db import connect_with_retry
from .outbox import MetricsObserver, OutboxRelay, RelayObserver, producer_for, reader_for, set_max_record_bytes

if TYPE_CHECKING:  # the child process does not import pydantic (services/kit/kafkaclient.py)
    from .kafkasec import KafkaSecurity

log = logging.getLogger("kit.relay")

CONFIG_ENV = "KIT_RELAY_CONFIG"  # the child's settings (JSON; in the environment, not argv: the DSN and the
# Kafka SASL password are secrets)
ROOT = Path(__file__).resolve().parents[2]  # holds the ``services`` package
SIGNAL_GRACE_SECONDS = 10.0  # a signalled child waits this long for its worker to close the pipe


class RelayProcess:
    """Runs the relay as a child process, wakes it, forwards its reports, restarts it."""

    def __init__(self, *, service: str, dsn: str, bootstrap: str, batch: int, poll_seconds: float,
                 nice: int = 0, log_level: str = "info", log_format: str = "json",
                 observer: RelayObserver | None = None, max_restart_delay: float = 30.0,
                 security: KafkaSecurity | None = None, max_record_bytes: int | None = None,
                 stall_seconds: float = 10.0):
        self.service = service
        self._config = {"service": service, "dsn": dsn, "bootstrap": bootstrap, "batch": batch,
                        "poll_seconds": poll_seconds, "nice": nice, "log_level": log_level, "log_format": log_format,
                        "kafka_security": security.to_config() if security is not None else None,
                        "max_record_bytes": max_record_bytes, "stall_seconds": stall_seconds}
        self.observer = observer or MetricsObserver(service)
        self.max_restart_delay = max_restart_delay
        self.proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._task: asyncio.Future | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def describe(self) -> str:
        return "running" if self.running else "restarting"

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.ensure_future(self._supervise())

    def notify(self) -> None:
        """Wake the relay now (called after a commit that wrote outbox rows). Never blocks: a
        wake-up still in the pipe's buffer already covers this commit."""
        proc = self.proc
        if proc is None or proc.returncode is not None or proc.stdin is None or proc.stdin.is_closing():
            return
        if proc.stdin.transport.get_write_buffer_size() == 0:
            try:
                proc.stdin.write(b"\n")
            except (BrokenPipeError, ConnectionResetError, RuntimeError):
                pass  # the child is gone: the supervisor restarts it, and it starts with a round

    async def stop(self, timeout: float = 15.0) -> None:
        """Close the child's stdin: it finishes its round, reports and exits. Bounded."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                log.warning("outbox relay process %d did not stop in %.0fs; killing it", proc.pid, timeout)
                proc.kill()
                await proc.wait()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            except Exception:
                log.exception("outbox relay supervisor failed")

    async def _spawn(self) -> None:
        env = dict(os.environ)
        env[CONFIG_ENV] = orjson.dumps(self._config).decode()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.kit.relay", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT), limit=1 << 20)
        log.info("outbox relay process started (pid %d)", self.proc.pid)

    async def _supervise(self) -> None:
        delay = 1.0
        while True:
            proc = self.proc
            started = time.monotonic()
            if proc is not None:
                await self._read_reports(proc)
                code = await proc.wait()
                if self._stopping:
                    return
                from . import metrics  # the worker's side only: the relay process does without prometheus_client

                metrics.RELAY_RESTARTS.labels(self.service).inc()
                if time.monotonic() - started > 60:
                    delay = 1.0  # it had been running fine: a fresh failure
                log.error("outbox relay process %d exited with code %s; restarting it in %.0fs (unpublished "
                          "rows stay in the outbox)", proc.pid, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_restart_delay)
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception as e:  # e.g. out of processes: try again later
                log.error("could not start the outbox relay process: %r", e)
                self.proc = None

    async def _read_reports(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):  # a line beyond the limit: not ours
                continue
            if not line:
                return
            try:
                apply_report(orjson.loads(line), self.observer)
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
                log.warning("unreadable report from the outbox relay process: %r", line[:200])


def apply_report(report: dict[str, Any], observer: RelayObserver) -> None:
    """Apply one report line of the child to the worker's metrics."""
    if report.get("produced"):
        observer.published(Counter({(t, typ): int(n) for t, typ, n in report["produced"]}))
    for _ in range(int(report.get("errors", 0))):
        observer.failed()
    if report.get("read_back"):
        observer.read_back(int(report["read_back"]))
    if report.get("stats") is not None:
        backlog, age = report["stats"]
        observer.stats(int(backlog), float(age))


class Reporter:
    """The child's observer: writes what happened as JSON lines to stdout, at once after each
    round (so a killed child loses no count of what the broker acknowledged and the outbox
    forgot) and the outbox statistics at most every ``every`` seconds."""

    def __init__(self, out=None, every: float = 0.5):
        self.out = out if out is not None else sys.stdout.buffer
        self.every = every
        self._produced: Counter = Counter()
        self._errors = 0
        self._read_back = 0
        self._stats: tuple[int, float] | None = None

    def published(self, counts: Counter) -> None:
        self._produced.update(counts)
        self.flush()

    def failed(self) -> None:
        self._errors += 1
        self.flush()

    def stats(self, backlog: int, oldest_age: float) -> None:
        self._stats = (backlog, oldest_age)

    def read_back(self, n: int) -> None:
        self._read_back += n
        self.flush()

    def flush(self) -> None:
        if not (self._produced or self._errors or self._read_back or self._stats):
            return
        report: dict[str, Any] = {}
        if self._produced:
            report["produced"] = [[t, typ, n] for (t, typ), n in self._produced.items()]
        if self._errors:
            report["errors"] = self._errors
        if self._read_back:
            report["read_back"] = self._read_back
        if self._stats is not None:
            report["stats"] = list(self._stats)
        self._produced, self._errors, self._read_back, self._stats = Counter(), 0, 0, None
        try:
            self.out.write(orjson.dumps(report) + b"\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # the worker is gone; we are about to stop
            pass

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.flush()


async def _child(cfg: dict[str, Any]) -> int:
    service = cfg["service"]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    relay: OutboxRelay | None = None

    def on_stdin() -> None:
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker closed the pipe (stopping) or died
            loop.remove_reader(0)
            stop.set()
        elif relay is not None:
            relay.notify()

    def on_signal() -> None:
        # The worker's process group got the signal too: wait for the worker to close the pipe
        # after its consumers have stopped, so that their last commits are still published.
        loop.call_later(SIGNAL_GRACE_SECONDS, stop.set)

    os.set_blocking(0, False)
    loop.add_reader(0, on_stdin)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    pool = None
    producer = None
    reporter = Reporter()
    flusher = asyncio.ensure_future(reporter.run())
    try:
        try:
            pool = await connect_with_retry(cfg["dsn"], service, service=f"{service}-relay", max_size=3, stop=stop,
                                            on_retry=reporter.failed)
        except Exception:
            if stop.is_set():
                return 0
            raise
        delay = 0.5
        while not stop.is_set():
            # the parent checked the settings; the child maps them without pydantic (services/kit/kafkaclient.py)
            producer = producer_for(cfg["bootstrap"], f"{service}-relay", cfg.get("kafka_security") or {})
            try:
                await producer.start()
                break
            except Exception as e:
                reporter.failed()  # a relay that cannot start publishes nothing: a failure like any round's
                log.warning("broker not reachable yet (%r); retrying in %.1fs", e, delay)
                await producer.stop()
                producer = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if producer is None:
            return 0
        relay = OutboxRelay(pool, producer, service=service, batch=int(cfg["batch"]),
                            poll_seconds=float(cfg["poll_seconds"]), observer=reporter,
                            stall_seconds=float(cfg.get("stall_seconds") or 10.0),
                            reader=reader_for(cfg["bootstrap"], f"{service}-relay-check",
                                              cfg.get("kafka_security") or {}))
        task = asyncio.ensure_future(relay.run())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await relay.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        return 0
    finally:
        flusher.cancel()
        reporter.flush()
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception:
                pass
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:
                pass


def main() -> int:
    raw = os.environ.pop(CONFIG_ENV, None)
    if not raw:
        print(f"services.kit.relay is started by a service worker ({CONFIG_ENV} is not set)", file=sys.stderr)
        return 2
    cfg = orjson.loads(raw)
    if cfg.get("nice"):
        try:
            os.nice(int(cfg["nice"]))
        except OSError as e:  # e.g. a sandbox that forbids it: run at the worker's priority
            print(f"outbox relay: cannot lower its priority ({e})", file=sys.stderr)
    jsonlog.configure(cfg["service"], cfg.get("log_level", "info"), cfg.get("log_format", "json"))
    if cfg.get("max_record_bytes"):
        set_max_record_bytes(int(cfg["max_record_bytes"]))
    try:
        return asyncio.run(_child(cfg))
    except Exception:
        log.exception("outbox relay process failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
