"""deploy/prometheus checked and unit-tested with promtool (Debian package `prometheus`).

Skipped only outside CI when promtool is missing; in CI (CI=true) a missing promtool fails.
"""
from __future__ import annotations

import subprocess

import yaml

from .support import PORTS, PROMETHEUS, load_yaml, promtool, rule_exprs

ALERTS = PROMETHEUS / "rules" / "alerts.yml"
RECORDING = PROMETHEUS / "rules" / "recording.yml"
UNIT_TESTS = PROMETHEUS / "tests" / "alerts_test.yml"
REQUIRED_ALERTS = {
    "GrassrootsConsumerLagRising", "GrassrootsRecordsDeadLettered", "GrassrootsOutboxNotPublishing",
    "GrassrootsWorkerDown", "GrassrootsOverdueCasesHigh", "GrassrootsWorkerNotReady", "GrassrootsConsumerStalled",
    "GrassrootsPartyMeetingOverdue", "GrassrootsPartyCoverageGap",
}


def run(*args: str) -> str:
    p = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_promtool_accepts_the_prometheus_config_and_its_rule_files():
    out = run("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "2 rule files found" in out


def test_promtool_accepts_the_recording_and_alert_rules():
    run("check", "rules", str(RECORDING), str(ALERTS))


def test_promtool_unit_tests_of_the_alerts_pass():
    out = run("test", "rules", str(UNIT_TESTS))
    assert "SUCCESS" in out


def test_promtool_unit_tests_fail_when_an_alert_threshold_is_broken(tmp_path):
    """The unit tests can fail: loosen the overdue threshold and they must catch it."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / "recording.yml").write_text(RECORDING.read_text())
    (tmp_path / "rules" / "alerts.yml").write_text(ALERTS.read_text().replace("max(grid_cases_overdue_open) > 20",
                                                                              "max(grid_cases_overdue_open) > 10"))
    (tmp_path / "tests" / "alerts_test.yml").write_text(UNIT_TESTS.read_text())
    p = subprocess.run([promtool(), "test", "rules", str(tmp_path / "tests" / "alerts_test.yml")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "GrassrootsOverdueCasesHigh" in p.stdout + p.stderr


def test_every_required_alert_exists_and_has_a_firing_and_a_silent_unit_test():
    alerts = {name for name, _ in rule_exprs(ALERTS)}
    assert REQUIRED_ALERTS <= alerts
    fires: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(UNIT_TESTS)["tests"]:
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else silent).add(t["alertname"])
    assert alerts <= fires, f"no firing test for {alerts - fires}"
    assert alerts <= silent, f"no silent test for {alerts - silent}"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section_in_the_operator_guide():
    readme = (PROMETHEUS.parent / "README.md").read_text(encoding="utf-8").lower()
    doc = yaml.safe_load(ALERTS.read_text())
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"]
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert f"### {rule['alert'].lower()}" in readme, f"deploy/README.md has no section for {rule['alert']}"


def test_the_rule_files_loaded_by_prometheus_are_the_ones_tested():
    cfg = load_yaml(PROMETHEUS / "prometheus.yml")
    assert sorted(cfg["rule_files"]) == ["rules/alerts.yml", "rules/recording.yml"]
    assert sorted(load_yaml(UNIT_TESTS)["rule_files"]) == ["../rules/alerts.yml", "../rules/recording.yml"]
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    targets = {t for sc in jobs["grassroots-services"]["static_configs"] for t in sc["targets"]}
    assert targets == {f"{svc}:{port}" for svc, port in PORTS.items()}
    assert jobs["grassroots-services"]["honor_labels"] is True
