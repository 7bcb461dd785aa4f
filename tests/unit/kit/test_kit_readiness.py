"""/readyz fails while a consumer is stalled; a command holding U+0000 is a 422 naming the field.

The runtime is built as a worker builds it, with its database, broker and consumers replaced by
stand-ins (the real ones are exercised in tests/integration/kit/)."""
from __future__ import annotations

import contextlib

import pytest

from services.kit.identity import Principal
from services.kit import metrics
from services.kit import runtime as runtime_module
from services.kit.http import HttpError
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings

PATROL = "grid.patrol.log.v1"


class Conn:
    async def fetchval(self, sql):
        return 1


class Pool:
    @contextlib.asynccontextmanager
    async def acquire(self):
        yield Conn()


class Client:
    async def fetch_all_metadata(self):
        return object()


class Producer:
    client = Client()


class Consumer:
    def __init__(self, name: str, stalled: float):
        self.name, self.stalled = name, stalled

    def stalled_seconds(self) -> float:
        return self.stalled


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))

    async def nothing_pending(conn, schema, components):
        return []

    monkeypatch.setattr(runtime_module, "pending", nothing_pending)
    r = ServiceRuntime("grid", ServiceSettings(consumer_stall_seconds=60))
    r.pool, r.producer, r.ready = Pool(), Producer(), True
    return r


async def test_readyz_is_200_while_consumers_advance_or_retry_briefly(rt):
    rt.consumers = [Consumer("intake", 0.0), Consumer("reactions", 12.4)]
    status, body = await rt._readyz(None)
    assert status == 200, body
    assert body["checks"]["consumer:intake"] == "ok"
    assert body["checks"]["consumer:reactions"] == "retrying 12s"
    assert metrics.READY.labels("grid")._value.get() == 1


async def test_readyz_is_503_naming_the_consumer_stalled_beyond_the_setting(rt):
    rt.consumers = [Consumer("intake", 0.0), Consumer("reactions", 75.2)]
    status, body = await rt._readyz(None)
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["consumer:reactions"] == "stalled 75s"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert metrics.READY.labels("grid")._value.get() == 0


def test_the_stall_limit_is_a_setting(monkeypatch):
    monkeypatch.setenv("GRID_CONSUMER_STALL_SECONDS", "15")
    from pydantic_settings import SettingsConfigDict

    class Grid(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="GRID_", extra="ignore", populate_by_name=True)

    assert Grid().consumer_stall_seconds == 15
    assert ServiceSettings.model_fields["consumer_stall_seconds"].default == 60


@pytest.mark.parametrize("body,field", [
    ({"id": "cmd-\x00", "type": PATROL, "data": {}}, "id"),
    ({"id": "cmd-1", "type": PATROL, "data": {"grid_worker_id": "gw\x00"}}, "data.grid_worker_id"),
    ({"id": "cmd-1", "type": PATROL, "subject": "p-\x00", "specversion": "1.0", "data": {}}, "subject"),
    ({"id": "cmd-1", "type": PATROL, "data": {"route": [{"label": "\x00"}]}}, "data.route.0.label"),
])
def test_a_command_holding_a_nul_character_is_a_422_naming_the_field(rt, body, field):
    with pytest.raises(HttpError) as e:
        rt.command_from_json(body, Principal("app-7"), frozenset({PATROL}))
    assert e.value.status == 422
    assert e.value.body()["field"] == field
    assert "U+0000" in e.value.detail


def test_a_command_with_an_oversized_id_is_a_422_naming_the_field(rt):
    with pytest.raises(HttpError) as e:
        rt.command_from_json({"id": "x" * 100_000, "type": PATROL, "data": {}}, Principal("app-7"), frozenset({PATROL}))
    assert e.value.status == 422 and e.value.body()["field"] == "id"


def test_a_command_without_an_envelope_is_sourced_from_the_caller(rt):
    body = {"id": "cmd-1", "type": PATROL, "data": {
        "patrol_id": "p-1", "grid_id": "110105001002003", "grid_worker_id": "gw-9",
        "started_at": "2026-11-22T08:00:00+08:00", "ended_at": "2026-11-22T08:40:00+08:00"}}
    assert rt.command_from_json(dict(body), Principal("gw-0042"), frozenset({PATROL})).source == "/users/gw-0042"
    odd = rt.command_from_json(dict(body), Principal("a b/c"), frozenset({PATROL}))
    assert odd.source == "/users/a%20b%2Fc"
    spoofed = {**body, "source": "/users/someone-else"}  # no envelope: the caller is the source
    assert rt.command_from_json(spoofed, Principal("gw-0042"), frozenset({PATROL})).source == "/users/gw-0042"
    # a whole CloudEvent too: its (source, id) keys the inbox and the remembered outcome, so a
    # source of its own would pass for another caller and read back that caller's events
    given = {**body, "specversion": "1.0", "source": "/users/someone-else"}
    assert rt.command_from_json(given, Principal("gw-0042"), frozenset({PATROL})).source == "/users/gw-0042"
