"""The campaign's pure parts: its fault plan, its copy of the alert rules, its generated HTTP
commands (no district needed; the campaign itself runs in tests/e2e/test_chaos_short.py)."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections import Counter

import pytest
import yaml

from schemas.registry import SERVICES
from tests.chaos import rules
from tests.chaos.inject import ROOT, generate, mutate
from tests.chaos.run import EXPECTED, plan


def test_the_full_plan_kills_each_services_workers_three_times_and_has_every_fault():
    faults = plan("full", random.Random(3))
    kinds = Counter(f.kind for f in faults)
    assert kinds == {"kill_worker": 3 * len(SERVICES), "kill_relay": 3, "stop_worker": 2, "pause_broker": 1,
                     "stop_postgres": 2, "read_only": 1}
    for s in SERVICES:
        killed = [f.target for f in faults if f.kind == "kill_worker" and f.target in (s, f"{s}-2")]
        assert len(killed) == 3 and set(killed) == {s, f"{s}-2"}, s
    assert set(kinds) <= set(EXPECTED)


def test_the_plan_is_seeded():
    names = lambda seed: [f.name for f in plan("full", random.Random(seed))]  # noqa: E731
    assert names(5) == names(5) and names(5) != names(6)
    assert Counter(f.kind for f in plan("short", random.Random(1))) == {
        "kill_worker": 1, "kill_relay": 1, "stop_postgres": 1, "pause_broker": 1}


def test_the_campaign_rules_compress_time_and_leave_the_production_rules_alone(tmp_path):
    before = (rules.RULES / "alerts.yml").read_text()
    windows = rules.write_campaign_rules(tmp_path)
    assert (rules.RULES / "alerts.yml").read_text() == before
    prod = rules.for_seconds(yaml.safe_load(before))
    assert prod["GrassrootsWorkerDown"] == 60 and windows["GrassrootsWorkerDown"] == 2
    assert windows["GrassrootsConsumerLagRising"] == 20 and set(windows) == set(prod)
    doc = yaml.safe_load((tmp_path / "alerts.yml").read_text())
    exprs = {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}
    assert "[20s]" in exprs["GrassrootsRecordsDeadLettered"] and "10m" not in exprs["GrassrootsRecordsDeadLettered"]
    assert "> 20" in exprs["GrassrootsConsumerLagRising"] and "> 3" in exprs["GrassrootsConsumerStalled"]
    # the relay's failures come each RELAY_STALL_SECONDS (2) while the broker is paused: the window holds two
    assert "[4s])) > 0" in exprs["GrassrootsOutboxRelayFailing"] and windows["GrassrootsOutboxRelayFailing"] == 6
    if shutil.which("promtool"):
        out = subprocess.run(["promtool", "check", "rules", str(tmp_path / "alerts.yml")], capture_output=True)
        assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("svc", sorted(SERVICES))
def test_http_commands_are_generated_from_the_openapi_documents(svc):
    doc = json.loads((ROOT / "schemas" / "openapi" / f"{svc}.json").read_text())
    schema = doc["paths"]["/v1/commands"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    rng = random.Random(1)
    types = {generate(doc, schema, rng)["type"] for _ in range(60)}
    assert types <= set(schema["discriminator"]["mapping"]) and len(types) > 1
    hows = Counter(mutate(generate(doc, schema, rng), rng)[1] for _ in range(200))
    assert {"as_generated", "field_missing", "wrong_type", "nul_byte", "too_large", "unknown_type"} <= set(hows)


def test_an_event_on_its_topic_twice_fails_the_campaign_as_does_one_id_on_two_events():
    from tests.chaos.check import event_id_failures

    distinct = {"a": {"type": "t.a"}, "b": {"type": "t.b"}, "c": {"type": "t.c"}}
    where = {"a": ["0@1"], "b": ["0@2", "0@3"], "c": ["1@4", "1@9"]}
    clean = {"x.events.v1": Counter({"a": 1})}
    assert event_id_failures(clean, {"a": {b"A"}}, distinct, where) == ({}, [])

    copied = {"x.events.v1": Counter({"a": 1, "b": 2})}  # b sent again, byte for byte
    republished, failed = event_id_failures(copied, {"a": {b"A"}, "b": {b"B"}}, distinct, where)
    assert republished == {"x.events.v1": 1}
    assert len(failed) == 1 and "twice" in failed[0] and "t.b" in failed[0]

    clash = {"x.events.v1": Counter({"c": 2})}  # one id, two different events
    republished, failed = event_id_failures(clash, {"c": {b"C1", b"C2"}}, distinct, where)
    assert republished == {} and len(failed) == 1 and "two different events" in failed[0]
