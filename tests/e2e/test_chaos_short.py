"""The short chaos campaign (``make chaos`` with ``CHAOS_PLAN=short``): the district with two
workers per service and Prometheus, the simulator's load with duplicates, late redeliveries,
poison records and fuzzed HTTP commands, and four faults (a worker killed, a relay killed,
PostgreSQL stopped ``-m immediate``, the broker paused); then every invariant of
``tests/chaos/check.py`` and every fault's alert. About three minutes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.procs import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(720)]


def test_the_district_survives_a_short_fault_campaign(tmp_path):
    env = {**os.environ, "CHAOS_PLAN": "short", "CHAOS_MINUTES": "6", "SEED": os.environ.get("CHAOS_SEED", "18"),
           "CHAOS_VAR_DIR": str(tmp_path / "chaos"), "CHAOS_RATE": "15"}
    env.pop("KAFKA_SESSION_TIMEOUT_MS", None)  # the campaign sets its own (a stopped worker must lose its partitions)
    proc = subprocess.Popen([sys.executable, "-m", "tests.chaos.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=570)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the campaign stops its district on the way out
        out, err = proc.communicate(timeout=120)
    lines = [x for x in out.decode(errors="replace").splitlines() if x.startswith("{")]
    assert lines, f"no result line (exit {proc.returncode}); stderr:\n{err.decode(errors='replace')[-4000:]}"
    result = json.loads(lines[-1])
    assert result["ok"] and proc.returncode == 0, json.dumps(result, ensure_ascii=False, indent=1)[:6000]
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["stuck"] == 0 and result["ledger_sum"] == 0
    assert result["faults"] == {"kill_worker": 1, "kill_relay": 1, "stop_postgres": 1, "pause_broker": 1}
    assert result["commands"] > 0 and result["injected"]["poison"] > 0 and result["injected"]["duplicates"] > 0
