"""A timer's rounds: counted by outcome, and the rounds in a row that did not complete kept in a
gauge, whatever stopped them (the database away or a fault), so that an alert can see a timer
that never completes even when no round raised a code error."""
from __future__ import annotations

import uuid

from services.kit import metrics as m
from services.kit.runtime import timer_round


def failing(timer: str) -> float:
    return m.TIMER_FAILURES_IN_A_ROW.labels("grid", timer)._value.get()


def runs(timer: str, outcome: str) -> float:
    return m.TIMER_RUNS.labels("grid", timer, outcome)._value.get()


def test_retries_and_errors_in_a_row_add_up_and_a_completed_round_clears_them():
    t = f"t-{uuid.uuid4().hex[:8]}"
    for outcome, expected in (("retry", 1), ("retry", 2), ("error", 3), ("ok", 0), ("retry", 1), ("skipped", 0)):
        timer_round("grid", t, outcome)
        assert failing(t) == expected, outcome
    assert (runs(t, "retry"), runs(t, "error"), runs(t, "ok"), runs(t, "skipped")) == (3, 1, 1, 1)
