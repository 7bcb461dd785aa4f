"""``stopped``: processes stopped for a block and continued after it, however it ends (the history
bench stops one database's workers and broker while it loads the other's; the fault campaign a
worker or the broker; the relay tests the broker). With ``groups``, a process group's leader
stops with its group."""
from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from tests.support.procs import stopped


def _becomes(pid: int, is_stopped: bool) -> bool:
    """Whether ``pid`` is (or within seconds becomes) stopped, or not stopped (a signal is
    delivered a moment after it is sent)."""
    deadline = time.monotonic() + 5
    while (psutil.Process(pid).status() == psutil.STATUS_STOPPED) != is_stopped:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def processes():
    # a group leader with a child of its own (a worker started in its own session), and a process
    # in this test's group (a broker started without one)
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    lone = subprocess.Popen(["sleep", "60"])
    deadline = time.monotonic() + 5
    while not psutil.Process(leader.pid).children() and time.monotonic() < deadline:
        time.sleep(0.01)
    child = psutil.Process(leader.pid).children()[0].pid
    yield leader.pid, child, lone.pid
    for p in (leader, lone):
        p.kill()
        p.wait()
    psutil.Process(child).kill()


def test_the_processes_and_a_leaders_group_stop_for_the_block_and_go_on_after_it(processes):
    with stopped(*processes, groups=True):
        assert all(_becomes(pid, is_stopped=True) for pid in processes)
    assert all(_becomes(pid, is_stopped=False) for pid in processes)


def test_they_go_on_when_the_block_fails_and_a_process_gone_is_passed_over(processes):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(RuntimeError), stopped(*processes, gone.pid, groups=True):
        assert all(_becomes(pid, is_stopped=True) for pid in processes)
        raise RuntimeError("the load failed")
    assert all(_becomes(pid, is_stopped=False) for pid in processes)


def test_without_groups_only_the_process_itself_stops(processes):
    leader, child, _ = processes
    with stopped(leader):
        assert _becomes(leader, is_stopped=True)
        assert psutil.Process(child).status() != psutil.STATUS_STOPPED
    assert _becomes(leader, is_stopped=False)
