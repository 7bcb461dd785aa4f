"""Retention settings: the DLQ topics' retention.ms when provisioned, the kit timer's rules."""
from __future__ import annotations

import pytest

from schemas.topics import ALL_TOPICS, topic
from services.kit import retention
from services.kit.provision import topic_configs
from services.kit.runtime import ServiceRuntime
from services.kit.settings import ServiceSettings


def test_dlq_topics_are_created_with_the_configured_retention():
    for t in ALL_TOPICS:
        configs = topic_configs(t, dlq_retention_days=14)
        if t.kind == "dlq":
            assert configs == {"retention.ms": str(14 * 86_400_000)}, t.name
        else:
            assert "retention.ms" not in configs, t.name


def test_a_dlq_retention_of_zero_leaves_the_broker_default():
    assert topic_configs(topic("grid.dlq.v1"), dlq_retention_days=0) == {}
    assert topic_configs(topic("grid.intake.v1"), dlq_retention_days=0) == {"message.timestamp.type": "LogAppendTime"}


def test_the_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("INBOX_RETENTION_DAYS", "7")
    monkeypatch.setenv("OUTBOX_RETENTION_DAYS", "3")
    monkeypatch.setenv("DLQ_RETENTION_DAYS", "2")
    s = ServiceSettings()
    assert (s.inbox_retention_days, s.outbox_retention_days, s.dlq_retention_days) == (7, 3, 2)


def test_every_service_runs_a_retention_timer_over_the_kit_tables():
    r = ServiceRuntime("grid", ServiceSettings(inbox_retention_days=9, outbox_retention_days=4))
    assert {(x.table, x.column, x.days) for x in r.retention_rules} == {
        ("inbox", "processed_at", 9), ("command_outcomes", "recorded_at", 9), ("outbox", "created_at", 4)}
    r.retain("event_log", "recorded_at", 30)
    assert r.retention_rules[-1] == retention.Rule("event_log", "recorded_at", 30)


def test_a_rule_names_plain_identifiers_only():
    with pytest.raises(ValueError):
        retention.Rule("inbox; drop table x", "processed_at", 1)
    with pytest.raises(ValueError):
        retention.Rule("inbox", "processed_at", -1)

