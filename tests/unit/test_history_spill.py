"""The generator's spill: events that come nearly in time order, written in exact time order."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from schemas.grid import CaseAccepted
from tests.history.topics import Pub, Spill, in_time_order, merged

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _pub(at: datetime, seq: int, service: str = "grid") -> Pub:
    event = CaseAccepted(case_id=f"case-{seq}", department="dept-1", accepted_by="do-1", on_time=True)
    return Pub(at, seq, service, f"e-{seq}", event, "c", "c")


def _cases(rng: random.Random, n: int) -> list[tuple[datetime, list[Pub]]]:
    """``n`` cases in the order of their reports, each with events at or after its report (some
    at the same instant as a later case's report), numbered in the order they are made."""
    seq, out, at = 0, [], T0
    for _ in range(n):
        at += timedelta(minutes=rng.choice((0, 0, 1, 7)))
        events = []
        for _ in range(rng.randrange(1, 6)):
            events.append(_pub(at + timedelta(minutes=rng.choice((0, 0, 3, 60, 60 * 24 * 9))), seq))
            seq += 1
        out.append((at, events))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_a_spill_gives_back_the_events_in_time_order_as_often_as_asked(seed):
    cases = _cases(random.Random(seed), 300)
    spill = Spill()
    try:
        for reported, events in cases:
            for p in events:
                spill.add(p)
            spill.release(reported)
            assert len(spill._held) < sum(len(e) for _, e in cases)  # noqa: SLF001 - written as it goes
        everything = [p for _, events in cases for p in events]
        want = [(p.at, p.seq, p.id) for p in in_time_order(everything)]
        assert [(p.at, p.seq, p.id) for p in spill] == want
        assert [(p.at, p.seq, p.id) for p in spill] == want  # read again
        assert len(spill) == len(everything)
        assert next(iter(spill)).payload == in_time_order(everything)[0].payload
    finally:
        spill.remove()
    assert not spill.path.exists()


def test_merged_interleaves_the_spill_with_the_other_services_events():
    spill = Spill()
    try:
        grid = [_pub(T0 + timedelta(minutes=m), s) for s, m in enumerate((0, 5, 5, 9))]
        for p in grid:
            spill.add(p)
        others = [_pub(T0 + timedelta(minutes=5), 10, "points"), _pub(T0 + timedelta(minutes=1), 11, "orders"),
                  _pub(T0 + timedelta(minutes=5), 12, "orders")]
        got = [(p.service, p.seq) for p in merged(spill, in_time_order(others))]
        assert got == [(p.service, p.seq) for p in in_time_order(grid + others)]
        # at one instant the grid's event comes before the order and the award it leads to
        assert got == [("grid", 0), ("orders", 11), ("grid", 1), ("grid", 2), ("orders", 12), ("points", 10),
                       ("grid", 3)]
    finally:
        spill.remove()


def test_release_keeps_what_is_not_before_and_an_event_earlier_than_a_release_is_refused():
    spill = Spill()
    try:
        spill.add(_pub(T0 + timedelta(minutes=2), 0))
        spill.release(T0 + timedelta(minutes=2))  # not before: kept back, for a later event of the same instant
        spill.add(_pub(T0 + timedelta(minutes=2), 1))
        spill.add(_pub(T0 + timedelta(minutes=3), 2))
        spill.release(T0 + timedelta(minutes=3))
        assert spill.count == 2  # the two at 2 minutes written, the one at 3 still held
        with pytest.raises(ValueError, match="comes after events up to"):
            spill.add(_pub(T0 + timedelta(minutes=2, seconds=59), 3))  # could not come before what was written
        spill.add(_pub(T0 + timedelta(minutes=3), 4))
        assert [p.seq for p in spill] == [0, 1, 2, 4]
    finally:
        spill.remove()


def test_a_spill_orders_by_its_own_key_whose_first_element_is_the_time_it_releases_by():
    """The ledger's postings are spilled by (posted_at, transfer_id), the earnings by (time, seq)."""
    spill = Spill(key=lambda x: (x[0], x[1]))
    try:
        for item in [(T0 + timedelta(minutes=5), "b"), (T0 + timedelta(minutes=5), "a"), (T0, "z")]:
            spill.add(item)
        spill.release(T0 + timedelta(minutes=5))  # what is at 5 minutes stays held
        assert spill.count == 1
        with pytest.raises(ValueError, match=r"\('y'|'y'"):
            spill.add((T0 + timedelta(minutes=4), "y"))
        spill.add((T0 + timedelta(minutes=5), "0"))
        assert [x[1] for x in spill] == ["z", "0", "a", "b"]
        assert len(spill) == 4
    finally:
        spill.remove()


def test_a_spill_released_past_everything_it_holds_closes_and_reads_back():
    """Closing with nothing held keeps the time zone of what was released (no naive instant)."""
    spill = Spill()
    try:
        spill.add(_pub(T0, 0))
        spill.release(T0 + timedelta(days=1))
        assert spill.count == 1 and not spill._held  # noqa: SLF001
        assert [p.seq for p in spill] == [0] and len(spill) == 1
    finally:
        spill.remove()
    empty = Spill()
    try:
        assert list(empty) == [] and len(empty) == 0
    finally:
        empty.remove()
