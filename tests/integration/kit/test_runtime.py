"""The kit's worker runtime as a real faust worker process: HTTP commands, health, metrics."""
from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import pytest

from services.kit.infra import EmbeddedPostgres
from tests.support.kafka import of_type, read_all
from services.kit import devidentity
from tests.support.identity import test_identity, token
from tests.support.procs import Worker, http

pytestmark = pytest.mark.integration

TOKEN = token(sub="app-7")


def patrol_command(**over) -> dict:
    data = {"patrol_id": str(uuid.uuid4()), "grid_id": "110105001002003", "grid_worker_id": "gw-9",
            "started_at": "2026-11-22T08:00:00+08:00", "ended_at": "2026-11-22T08:40:00+08:00"}
    data.update(over)
    return {"id": str(uuid.uuid4()), "type": "grid.patrol.log.v1", "data": data}


def echo_worker(kafka: str, database_url: str, tmp_path: Path, **env: str) -> Worker:
    return Worker("tests.integration.kit.echo_app", {
        "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": database_url,
        "TOPIC_PARTITIONS": "4", **env}, prefix="GRID_", log=tmp_path / "worker.log")


async def test_commands_over_http_are_authenticated_validated_idempotent_and_published(kafka, database_url, tmp_path):
    w = echo_worker(kafka, database_url, tmp_path, GRID_HTTP_MAX_BODY_BYTES="262144").start()
    try:
        await w.wait_ready()
        cmd = patrol_command()
        assert (await http("POST", w.url + "/v1/commands", json=cmd))[0] == 401
        assert (await http("POST", w.url + "/v1/commands", json=cmd, token="wrong"))[0] == 401

        status, body = await http("POST", w.url + "/v1/commands", json=patrol_command(grid_id="12345"), token=TOKEN)
        assert status == 422 and body["field"] == "data.grid_id"
        status, body = await http("POST", w.url + "/v1/commands", json={**cmd, "type": "grid.case.nonsense.v1"}, token=TOKEN)
        assert status == 422 and body["field"] == "type"
        status, body = await http("POST", w.url + "/v1/commands", data=b"{oops", token=TOKEN)
        assert status == 400 and body["field"] == "body"
        big = {**cmd, "data": {**cmd["data"], "notes": "x" * 300_000}}
        status, body = await http("POST", w.url + "/v1/commands", json=big, token=TOKEN)
        assert status == 413 and body["error"] == "payload_too_large" and body["field"] == "body"
        for bad, field in ((patrol_command(grid_worker_id="gw\x00"), "data.grid_worker_id"),
                           ({**patrol_command(), "id": "cmd-\x00"}, "id"), ({**patrol_command(), "id": "x" * 100_000}, "id")):
            status, body = await http("POST", w.url + "/v1/commands", json=bad, token=TOKEN)
            assert status == 422 and body["field"] == field, body  # not a 500 from PostgreSQL

        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=TOKEN)
        assert status == 200, body
        assert body["replayed"] is False
        [event] = body["events"]
        assert event["type"] == "grid.patrol.logged.v1" and event["causationid"] == cmd["id"]
        assert event["source"] == "/services/grid"

        status, again = await http("POST", w.url + "/v1/commands", json=cmd, token=TOKEN)
        assert status == 200 and again["replayed"] is True
        assert [e["id"] for e in again["events"]] == [event["id"]]

        refused = patrol_command(ended_at="2026-11-22T07:00:00+08:00")
        status, body = await http("POST", w.url + "/v1/commands", json=refused, token=TOKEN)
        assert status == 409 and body["error"] == "ended_before_started" and body["field"] == "ended_at"

        assert (await http("GET", w.url + "/v1/patrol-counts", token=TOKEN)) == (200, {"110105001002003": 1})

        published = of_type(await read_all(kafka, "grid.events.v1", min_count=1), "grid.patrol.logged.v1")
        assert [e["id"] for e in published] == [event["id"]]
        rejections = await read_all(kafka, "grid.rejections.v1", min_count=1)
        assert rejections[0]["value"]["data"]["command_id"] == refused["id"]

        status, text = await http("GET", w.url + "/metrics")
        assert status == 200
        assert 'kit_commands_rejected_total{reason="ended_before_started",service="grid",type="grid.patrol.log.v1"} 1.0' in text
        assert "kit_outbox_backlog" in text and "kit_ready" in text
        assert (await http("GET", w.url + "/healthz"))[0] == 200
        status, doc = await http("GET", w.url + "/openapi.json")
        assert status == 200 and doc["openapi"] == "3.1.0" and "/v1/patrol-counts" in doc["paths"]
        assert (await http("DELETE", w.url + "/v1/patrol-counts", token=TOKEN))[0] == 405
        for internal in ("/table/", "/router/", "/graph/", "/stats/"):  # faust's own pages are off
            assert (await http("GET", w.url + internal))[0] == 404, internal
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]


async def test_every_api_call_needs_a_token_of_the_identity_provider(kafka, database_url, tmp_path):
    w = echo_worker(kafka, database_url, tmp_path).start()
    idp = test_identity()
    other = devidentity.generate_key()
    try:
        await w.wait_ready()
        cmd = patrol_command()
        status, body = await http("POST", w.url + "/v1/commands", json=cmd)
        assert status == 401 and body["error"] == "unauthorized" and body["detail"].startswith("missing_token"), body
        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token="not.a.jwt")
        assert status == 401 and body["detail"].startswith("malformed"), body
        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=idp.token(key=other))
        assert status == 401 and body["detail"].startswith("unknown_key"), body
        forged = idp.token(key=other, kid=idp.kid)  # another key, claiming to be the provider's
        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=forged)
        assert status == 401 and body["detail"].startswith("bad_signature"), body
        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=idp.token(lifetime=-300))
        assert status == 401 and body == {"error": "unauthorized", "detail": "expired: the token has expired"}, body
        status, body = await http("GET", w.url + "/v1/whoami", token=idp.token(aud="another-platform"))
        assert status == 401 and body["detail"].startswith("wrong_audience"), body
        status, body = await http("GET", w.url + "/v1/whoami", token=idp.token(iss="https://elsewhere.invalid"))
        assert status == 401 and body["detail"].startswith("wrong_issuer"), body
        for public in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert (await http("GET", w.url + public))[0] == 200, public

        status, body = await http("GET", w.url + "/v1/whoami", token=token(sub="gw-0042", roles=["grid_worker"],
                                                                         scope={"grids": ["110105001002003"]}))
        assert status == 200 and body["sub"] == "gw-0042" and body["roles"] == ["grid_worker"], body
        assert body["scope"]["grids"] == ["110105001002003"]

        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=token(sub="gw-0042"))
        assert status == 200 and body["replayed"] is False, body
        status, senders = await http("GET", w.url + "/v1/command-senders", token=TOKEN)
        assert status == 200 and senders[cmd["id"]] == {"source": "/users/gw-0042", "principal": "gw-0042"}, senders
        # the same command id from another person is another command
        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=token(sub="gw-0043"))
        assert status == 200 and body["replayed"] is False, body
        status, body = await http("POST", w.url + "/v1/commands", json=cmd, token=token(sub="gw-0042"))
        assert status == 200 and body["replayed"] is True, body
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]


async def test_a_worker_without_jwks_does_not_start(kafka, database_url, tmp_path):
    w = echo_worker(kafka, database_url, tmp_path, JWKS="").start()
    try:
        assert w.proc.wait(60) != 0
    finally:
        w.stop()
    assert "JWKS is not set" in (tmp_path / "worker.log").read_text()


async def test_readyz_is_503_while_postgresql_is_down_and_200_after(kafka, tmp_path):
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="readyz-pg-")) / "data").start()
    w = echo_worker(kafka, pg.url, tmp_path).start()
    try:
        await w.wait_ready()
        assert (await http("GET", w.url + "/readyz"))[0] == 200
        pg.stop()
        status, body = await http("GET", w.url + "/readyz")
        assert status == 503 and body["checks"]["database"].startswith("unavailable")
        assert (await http("GET", w.url + "/healthz"))[0] == 200  # liveness has no external checks
        status, body = await http("GET", w.url + "/v1/patrol-counts", token=TOKEN)
        assert status == 503 and body["error"] == "unavailable", body  # a query, not a 500
        pg.start()
        await w.wait_ready(timeout=30)
        status, body = await http("GET", w.url + "/readyz")
        assert status == 200 and body["checks"] == {"worker": "started", "database": "ok", "migrations": "ok", "broker": "ok",
                                                     "relay": "running", "consumer:intake": "ok"}
    finally:
        w.stop()
        pg.destroy()


async def test_a_worker_starting_without_its_database_answers_503_with_retry_after_on_every_route(kafka, tmp_path):
    import aiohttp

    from services.kit.infra import free_port

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens: the kit waits for it
    w = echo_worker(kafka, nowhere, tmp_path).start()
    try:
        answers: dict[str, tuple[int, str | None]] = {}
        async with aiohttp.ClientSession() as s:
            for _ in range(600):  # the web server comes up before the kit's start finishes
                try:
                    for method, path, body in (("GET", "/v1/patrol-counts", None), ("POST", "/v1/commands", patrol_command())):
                        async with s.request(method, w.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                                             timeout=aiohttp.ClientTimeout(total=5)) as r:
                            answers[path] = (r.status, r.headers.get("Retry-After"))
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        assert answers == {"/v1/patrol-counts": (503, "2"), "/v1/commands": (503, "2")}
        assert (await http("GET", w.url + "/readyz"))[0] == 503
    finally:
        w.stop()
