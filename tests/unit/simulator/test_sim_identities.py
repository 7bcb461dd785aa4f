"""The simulator's commands carry the token of the role that sends them."""
from __future__ import annotations

from datetime import datetime, timezone

from schemas.grid import LogPatrol
from services.simulator.client import CommandClient


class Producer:
    def __init__(self):
        self.sent = []

    async def send_and_wait(self, topic, value, *, key=None, headers=()):
        self.sent.append((topic, dict(headers)))


def patrol() -> LogPatrol:
    t = datetime(2026, 11, 22, tzinfo=timezone.utc)
    return LogPatrol(patrol_id="p-1", grid_id="110105001002003", grid_worker_id="gw-9", started_at=t, ended_at=t)


async def test_a_command_goes_with_its_sender_roles_token():
    client = CommandClient("127.0.0.1:1", tokens={"grid_worker": "gw.jwt", "resident": "r.jwt"})
    client._producer = Producer()
    await client.send(patrol())
    topic, headers = client._producer.sent[0]
    assert topic == "grid.intake.v1" and headers["authorization"] == b"Bearer gw.jwt"
    assert client.token_for("grid.case.feedback.v1") == "r.jwt"
    assert client.token_for("points.adjust.v1") is None  # no points operator given: sent without


async def test_without_tokens_nothing_is_added():
    client = CommandClient("127.0.0.1:1")
    client._producer = Producer()
    await client.send(patrol())
    assert "authorization" not in client._producer.sent[0][1]
