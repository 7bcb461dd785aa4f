"""WORKERS=N: N workers per service in one consumer group, each on its own port; the launcher's
Prometheus scrapes every one of them; the summary adds up their counters."""
from __future__ import annotations

import os

import pytest

from schemas.registry import SERVICES
from services.launcher import launcher, summary
from tests.chaos.rebuilt import worker_env


@pytest.fixture
def cfg(monkeypatch, tmp_path):
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    for s in SERVICES:
        monkeypatch.delenv(f"{s.upper()}_HTTP_PORT", raising=False)
    for k in ("WORKERS", "WORKER_PORT_STEP", "PROMETHEUS", "PROMETHEUS_PORT", "PROMETHEUS_SCRAPE_SECONDS",
              "PROMETHEUS_RULES", "RESTART_DELAY_SECONDS"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_one_worker_per_service_by_default_named_after_it(cfg):
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    assert set(la.workers) == set(SERVICES)
    assert {n: w.port for n, w in la.workers.items()} == launcher.DEFAULT_PORTS


def test_workers_n_gives_each_service_n_workers_on_ports_ten_apart(cfg):
    cfg.setenv("WORKERS", "3")
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    assert len(la.workers) == 3 * len(SERVICES)
    grid = {n: w for n, w in la.workers.items() if w.service == "grid"}
    assert sorted(grid) == ["grid", "grid-2", "grid-3"]
    assert [grid[n].port for n in ("grid", "grid-2", "grid-3")] == [8001, 8011, 8021]
    assert la.workers["party-2"].port == 8015
    assert len({w.port for w in la.workers.values()}) == len(la.workers), "every worker has its own port"
    w = la.workers["grid-2"]
    assert w.argv[w.argv.index("--web-port") + 1] == "8011" and w.env["GRID_HTTP_PORT"] == "8011"
    assert w.log_path.name == "grid-2.log" and w.pid_path.name == "grid-2.pid"
    # one consumer group per service: no worker is given a group of its own
    assert not any(k.endswith("_CONSUMER_GROUP") for k in w.env if k not in la.workers["grid"].env)
    assert la.service_urls()["grid"] == ["http://127.0.0.1:8001", "http://127.0.0.1:8011", "http://127.0.0.1:8021"]


def test_worker_port_step_moves_the_other_workers(cfg):
    cfg.setenv("WORKERS", "2")
    cfg.setenv("WORKER_PORT_STEP", "100")
    c = launcher.Config.from_env()
    assert c.worker_port("orders", 2) == 8102 and c.worker_names("orders") == ["orders", "orders-2"]


def test_prometheus_scrapes_every_worker_with_the_projects_rules(cfg):
    cfg.setenv("WORKERS", "2")
    cfg.setenv("PROMETHEUS", "1")
    cfg.setenv("PROMETHEUS_SCRAPE_SECONDS", "2")
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    conf = la.prometheus_config()
    services = next(j for j in conf["scrape_configs"] if j["job_name"] == "grassroots-services")
    targets = {t["targets"][0]: t["labels"] for t in services["static_configs"]}
    assert targets["127.0.0.1:8011"] == {"service": "grid", "worker": "grid-2"}
    assert len(targets) == 2 * len(SERVICES) and services["honor_labels"] is True
    assert {p.rsplit("/", 1)[-1] for p in conf["rule_files"]} == {"alerts.yml", "recording.yml"}
    assert conf["global"]["scrape_interval"] == "2s"
    assert la.prometheus_url == "http://127.0.0.1:9090"


def test_prometheus_0_turns_it_off(cfg, tmp_path):
    cfg.setenv("PROMETHEUS", "0")
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    la.start_prometheus()
    assert la.prometheus is None and not (tmp_path / "prometheus").exists()


def test_the_summary_adds_up_the_workers_counters_and_keeps_one_copy_of_a_projection_gauge():
    a = summary.parse_metrics('kit_consumer_lag{service="grid",topic="t",partition="0"} 5.0\n'
                              'kit_records_consumed_total{service="grid"} 10.0\n'
                              'grid_cases{service="grid",status="open"} 7.0\n')
    b = summary.parse_metrics('kit_consumer_lag{service="grid",topic="t",partition="1"} 2.0\n'
                              'kit_records_consumed_total{service="grid"} 4.0\n'
                              'grid_cases{service="grid",status="open"} 7.0\n')
    m = summary.merge_workers([a, None, b])
    snap = summary.snapshot({"grid": m}, {"grid": True}, None)
    assert snap["consumed"] == 14 and snap["lag"]["grid"] == 7 and snap["cases"] == {"open": 7}
    assert summary.merge_workers([None, None]) is None


def test_the_summary_lists_every_worker_and_links_prometheus():
    snap = summary.snapshot({"grid": {}}, {"grid": True}, None)
    snap["prometheus"] = "http://127.0.0.1:9090"
    snap["workers_ready"] = {"grid": True, "grid-2": False}
    workers = {"grid": {"alive": True, "restarts": 0, "port": 8001},
               "grid-2": {"alive": True, "restarts": 1, "port": 8011}}
    screen = summary.render(snap, workers, 1, 0.0, [])
    assert "grid:8001:ready" in screen and "grid-2:8011:up restarts=1" in screen
    assert "prometheus  http://127.0.0.1:9090" in screen
    assert "grid-2:8011:up/r1" in summary.line(snap, workers, 1, 0.0) and "prometheus=http" in summary.line(snap, workers, 1, 0.0)


def test_leftover_workers_of_every_name_are_stopped(cfg, tmp_path):
    la = launcher.Launcher(launcher.Config.from_env())
    run = tmp_path / "run"
    run.mkdir()
    for name in ("grid-2", "party", "prometheus", "simulator"):
        (run / f"{name}.pid").write_text("999999999")  # no such process: only the pid file goes
    la.stop_leftovers()
    assert not list(run.glob("*.pid"))


def test_each_services_worker_environment_is_written_for_its_other_commands(cfg, tmp_path):
    """run/<svc>.env: what a rebuild of the service needs to run as its workers do (mode 600:
    it holds the service's database passwords), and nothing of the environment the launcher
    inherited."""
    cfg.setenv("WORKERS", "2")
    cfg.setenv("SOMEONES_CLOUD_TOKEN", "secret")
    la = launcher.Launcher(launcher.Config.from_env())
    la.db_urls["grid"] = {"DATABASE_URL": "postgresql://grid_app:pw@127.0.0.1:5433/postgres",
                          "MIGRATION_DATABASE_URL": "postgresql://grid_owner:pw@127.0.0.1:5433/postgres"}
    la.make_workers()
    path = tmp_path / "run" / "grid.env"
    env = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert env["MIGRATION_DATABASE_URL"].startswith("postgresql://grid_owner:") and env["GRID_HTTP_PORT"] == "8001"
    assert env["ORDERS_ACCEPT_WINDOW_SECONDS"] == launcher.DEMO_DEFAULTS["ORDERS_ACCEPT_WINDOW_SECONDS"]
    assert "SOMEONES_CLOUD_TOKEN" not in env and "PATH" not in env
    # what the launcher inherited and passed on as it was (a calendar's month length) is in the
    # environment it was started in: the workers' environment is both
    cfg.setenv("SIM_MONTH_SECONDS", "60")
    la.make_workers()
    launched = {**os.environ}
    assert "SIM_MONTH_SECONDS" not in dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert worker_env(tmp_path, "grid", launched) == la.workers["grid"].env
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "run").glob("*.env")) == sorted(f"{s}.env" for s in SERVICES)


def test_a_worker_is_not_restarted_once_the_workers_were_stopped_on_purpose(cfg):
    started: list[str] = []
    cfg.setattr(launcher.Proc, "start", lambda self: started.append(self.name))
    cfg.setenv("RESTART_DELAY_SECONDS", "0")
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    la.supervise()  # none of them runs: each is (re)started
    assert sorted(started) == sorted(la.workers)
    started.clear()
    la.hold.set()  # SIGUSR1
    la.supervise()
    assert started == []


def test_a_dead_worker_is_said_dead_once_and_restarted_after_the_delay(cfg):
    """As a supervisor's backoff: found dead, it is noted at once and started again
    ``RESTART_DELAY_SECONDS`` later (a fault campaign keeps a killed worker down past its alert's
    window), and its exit and restart are counted once."""
    started: list[str] = []
    now = [100.0]
    cfg.setattr(launcher.Proc, "start", lambda self: started.append(self.name))
    cfg.setattr(launcher.time, "monotonic", lambda: now[0])
    cfg.setenv("RESTART_DELAY_SECONDS", "4")
    la = launcher.Launcher(launcher.Config.from_env())
    la.make_workers()
    notes: list[str] = []
    la.note = notes.append
    grid = la.workers["grid"]
    for t in (100.0, 101.0, 103.9):
        now[0] = t
        la.supervise()
        assert started == []
    assert len([n for n in notes if n.startswith("grid worker died")]) == 1 and "in 4s" in notes[0]
    now[0] = 104.0
    la.supervise()
    assert sorted(started) == sorted(la.workers)
    assert grid.restarts == 1 and grid.exits == [None] and grid.died_at is None
