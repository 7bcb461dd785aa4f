"""make run starts every registered service, party included, and the summary shows party's numbers."""
from __future__ import annotations

from pathlib import Path

from schemas.registry import SERVICES
from services.launcher import launcher, summary

PARTY_METRICS = """\
# HELP party_orgs Party organisations by kind
# TYPE party_orgs gauge
party_orgs{service="party",kind="community_committee"} 2.0
party_orgs{service="party",kind="grid_branch"} 5.0
# HELP party_coverage_gaps Grids with 3 or more members and no branch
# TYPE party_coverage_gaps gauge
party_coverage_gaps{service="party"} 3.0
# HELP party_meetings_held Joint meetings held
# TYPE party_meetings_held counter
party_meetings_held_total{service="party",quorum="true"} 4.0
party_meetings_held_total{service="party",quorum="false"} 1.0
# HELP party_meetings_overdue Quarters without a joint meeting
# TYPE party_meetings_overdue counter
party_meetings_overdue_total{service="party"} 2.0
# HELP party_org_life_held Organisational life held
# TYPE party_org_life_held counter
party_org_life_held_total{service="party",kind="theme_day"} 7.0
party_org_life_held_total{service="party",kind="party_lecture"} 2.0
# HELP party_org_life_overdue Organisational life missed
# TYPE party_org_life_overdue counter
party_org_life_overdue_total{service="party",kind="branch_meeting"} 1.0
"""


def test_the_launcher_runs_every_registered_service_on_its_own_port(monkeypatch):
    for s in SERVICES:
        monkeypatch.delenv(f"{s.upper()}_HTTP_PORT", raising=False)
    cfg = launcher.Config.from_env()
    assert "party" in SERVICES and set(cfg.ports) == set(SERVICES)
    assert cfg.ports["party"] == 8005 and len(set(cfg.ports.values())) == len(SERVICES)


def test_a_service_without_its_worker_module_is_reported_not_started(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: False if p.parts[-4:] == ("services", "party", "app", "main.py")
                        else real_exists(p))
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    assert "party" not in la.workers and set(la.workers) == set(SERVICES) - {"party"}
    assert any("party" in n and "not started" in n for n in la.notes)


def test_the_summary_shows_the_party_services_numbers():
    mets = {"party": summary.parse_metrics(PARTY_METRICS)}
    snap = summary.snapshot(mets, {"party": True}, None)
    assert snap["party"] == {"orgs": {"community_committee": 2, "grid_branch": 5}, "coverage_gaps": 3,
                             "meetings_held": 5, "meetings_no_quorum": 1, "meetings_overdue": 2,
                             "org_life_held": 9, "org_life_overdue": 1}
    workers = {"party": {"alive": True, "restarts": 0}}
    screen = summary.render(snap, workers, 10, 1.0, [])
    assert "coverage gaps=3" in screen and "overdue=2" in screen and "grid_branch=5" in screen
    assert "party[orgs=7 gaps=3 meetings=5 meetings_overdue=2 org_life=9 org_life_overdue=1]" in \
        summary.line(snap, workers, 10, 1.0)


def test_without_a_party_worker_the_summary_has_no_party_numbers():
    snap = summary.snapshot({"grid": {}}, {"grid": True}, None)
    assert snap["party"] is None
    assert "party " not in summary.render(snap, {"grid": {"alive": True, "restarts": 0}}, 1, 0.0, [])
