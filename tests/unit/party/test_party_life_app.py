"""The party worker's organisational life pieces that need no broker nor database: the quarter
the feedback timer gives, the frequency table as the worker loads it, and the metrics it exports."""
from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest

from schemas.party import OrgKind, OrgLifeKind
from services.party.app.life import LifeMetrics, LifeQuery, load_life_policy, previous_quarter
from services.party.app.settings import PartySettings
from services.party.domain.life import SHANGHAI
from services.party.projection.life import LifeSnapshot


def test_the_feedback_timer_gives_the_last_quarter_ended_in_shanghai():
    assert previous_quarter(datetime(2026, 4, 1, tzinfo=SHANGHAI)) == "2026-Q1"
    assert previous_quarter(datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI)) == "2025-Q4"
    assert previous_quarter(datetime(2026, 12, 31, 16, 30, tzinfo=SHANGHAI)) == "2026-Q3"
    # 1 October 00:30 in Shanghai is still 30 September in UTC: Q3 has ended
    assert previous_quarter(datetime.fromisoformat("2026-09-30T16:30:00+00:00")) == "2026-Q3"


def test_the_worker_loads_the_frequency_table_its_setting_names():
    policy = load_life_policy(PartySettings().org_life_path)
    assert policy.kinds_for(OrgKind.BUILDING_GROUP) == (OrgLifeKind.GROUP_MEETING,)
    assert not policy.applies(OrgLifeKind.THEME_DAY, OrgKind.STREET_WORKING_COMMITTEE)


def test_a_period_is_a_month_or_a_quarter():
    assert LifeQuery(period="2026-11").period == "2026-11"
    assert LifeQuery(period="2026-Q4").period == "2026-Q4"
    for bad in ("2026-13", "2026-Q5", "２０２６-11"):
        try:
            LifeQuery(period=bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def test_the_metrics_count_from_the_snapshot_with_every_kind_labelled():
    metrics = LifeMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    metrics.update(LifeSnapshot(held={"theme_day": 3}, overdue={"committee_meeting": 1}))
    text = generate_latest(registry).decode()
    assert 'party_org_life_held_total{kind="theme_day"} 3.0' in text
    assert 'party_org_life_held_total{kind="branch_meeting"} 0.0' in text
    assert 'party_org_life_overdue_total{kind="committee_meeting"} 1.0' in text
    assert "party_meetings" not in text  # the council steps count the joint meetings (app/metrics.py)
