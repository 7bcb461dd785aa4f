"""The outbox relay as a child process of the worker (``<SVC>_OUTBOX_RELAY=process``, the default)
and in the worker's loop (``inline``), over a real broker and PostgreSQL: what is committed while
the relay is dead is published once it is back; the worker restarts it and counts the restart;
the relay never outlives its worker; its counts are served on the worker's ``/metrics``."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import pytest

from tests.support.kafka import read_all
from tests.support.procs import child_pids, http

from .test_runtime import TOKEN, echo_worker, patrol_command

pytestmark = pytest.mark.integration


def relay_children(pid: int) -> list[int]:
    found = []
    for child in child_pids(pid):
        try:
            if b"services.kit.relay" in open(f"/proc/{child}/cmdline", "rb").read():
                found.append(child)
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def niceness(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def wait_for_metrics(w, predicate, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        _, text = await http("GET", w.url + "/metrics")
        if predicate(text):
            return text
        assert time.monotonic() < deadline, text[-3000:]
        await asyncio.sleep(0.2)


async def published(kafka: str, command_id: str) -> list[dict]:
    return await read_all(kafka, "grid.events.v1", min_count=1, timeout=30,
                          predicate=lambda r: r["value"].get("causationid") == command_id)


async def test_a_dead_relay_process_is_restarted_and_publishes_what_was_committed_meanwhile(kafka, database_url, tmp_path):
    w = echo_worker(kafka, database_url, tmp_path).start()
    try:
        await w.wait_ready()
        [first] = await wait_for(lambda: relay_children(w.proc.pid), what="the relay process")
        # the default <SVC>_OUTBOX_RELAY_NICE: the relay yields the CPU to its worker's consumer
        await wait_for(lambda: niceness(first) == min(19, niceness(w.proc.pid) + 10), what="the relay's niceness")
        cmd = patrol_command()
        assert (await http("POST", w.url + "/v1/commands", json=cmd, token=TOKEN))[0] == 200
        assert len(await published(kafka, cmd["id"])) == 1

        os.kill(first, signal.SIGKILL)
        await wait_for(lambda: not alive(first), what="the relay to die")
        assert (await http("GET", w.url + "/readyz"))[0] == 200  # the worker still takes commands
        while_dead = patrol_command()
        status, body = await http("POST", w.url + "/v1/commands", json=while_dead, token=TOKEN)
        assert status == 200, body  # committed to the outbox; published once the relay is back

        [second] = await wait_for(lambda: relay_children(w.proc.pid), what="a new relay process")
        assert second != first
        await wait_for(lambda: niceness(second) == min(19, niceness(w.proc.pid) + 10),
                       what="the restarted relay's niceness")  # it yields the CPU as well
        [event] = await published(kafka, while_dead["id"])
        assert event["value"]["id"] == body["events"][0]["id"]
        assert (await http("GET", w.url + "/readyz"))[1]["checks"]["relay"] == "running"

        # counted in the children, served by the worker: both events (one by each child)
        text = await wait_for_metrics(w, lambda t: metric(t, "kit_records_produced_total", service="grid",
                                                           topic="grid.events.v1", type="grid.patrol.logged.v1") == 2.0)
        assert metric(text, "kit_outbox_relay_restarts_total", service="grid") == 1.0
        await wait_for_metrics(w, lambda t: re.search(r'^kit_outbox_backlog\{service="grid"\} 0\.0$', t, re.M))
    finally:
        code = w.stop()
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert not relay_children(w.proc.pid) and not alive(second), "the relay outlived a stopped worker"
    assert "outbox relay process" in (tmp_path / "worker.log").read_text()


async def test_the_relay_process_never_outlives_its_worker(kafka, database_url, tmp_path):
    w = echo_worker(kafka, database_url, tmp_path, GRID_OUTBOX_RELAY_NICE="0").start()
    try:
        await w.wait_ready()
        [relay] = await wait_for(lambda: relay_children(w.proc.pid), what="the relay process")
        assert niceness(relay) == niceness(w.proc.pid)  # 0: the worker's own priority
        os.kill(w.proc.pid, signal.SIGKILL)  # the worker only, not its process group
        w.proc.wait(10)
        await wait_for(lambda: not alive(relay), timeout=15, what="the orphaned relay to exit")
    finally:
        w.stop(signal.SIGKILL)


async def test_the_inline_relay_publishes_from_the_workers_own_loop(kafka, database_url, tmp_path):
    w = echo_worker(kafka, database_url, tmp_path, GRID_OUTBOX_RELAY="inline").start()
    try:
        await w.wait_ready()
        assert relay_children(w.proc.pid) == []
        status, body = await http("GET", w.url + "/readyz")
        assert status == 200 and "relay" not in body["checks"]
        cmd = patrol_command()
        assert (await http("POST", w.url + "/v1/commands", json=cmd, token=TOKEN))[0] == 200
        assert len(await published(kafka, cmd["id"])) == 1
        _, text = await http("GET", w.url + "/metrics")
        assert metric(text, "kit_records_produced_total", service="grid", topic="grid.events.v1",
                      type="grid.patrol.logged.v1") == 1.0
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]
