"""三会一课 / 主题党日: the frequency table, recording meetings, the overdue timer; 承诺、践诺、评诺."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from party_life_builders import CST, T0, at, fold, policy, refused
from schemas.party import (
    CommitmentFulfilled, CommitmentMade, CommitmentRated, FulfilCommitment, MakeCommitment, OrgKind, OrgLifeHeld,
    OrgLifeKind, OrgLifeOverdue, RateCommitment, RecordOrgLife,
)
from services.party.domain.life import (
    CommitmentsState, Every, LifeContext, OrgLifePolicy, OrgLifeState, OrgRef, closed_periods,
    decide_commitment, decide_org_life, evolve_commitment, evolve_org_life, org_life_overdue, period_of,
)

BRANCH = OrgRef(org_id="br-1", kind=OrgKind.GRID_BRANCH, established_at=datetime(2026, 1, 1, tzinfo=CST),
                area_id="110105001002003")
GROUP = OrgRef(org_id="gp-1", kind=OrgKind.BUILDING_GROUP, established_at=datetime(2026, 3, 15, 10, tzinfo=CST))


def ctx(days: float = 0, org: OrgRef | None = BRANCH, **kw) -> LifeContext:
    return LifeContext(now=at(days), org=org, policy=policy(), **kw)


def record(kind: str = "theme_day", held_at: datetime = T0, meeting_id: str = "mt-1", org_id: str = "br-1",
           attendees=("m1", "m2"), absentees=("m3",)) -> RecordOrgLife:
    return RecordOrgLife(org_id=org_id, meeting_id=meeting_id, kind=kind, held_at=held_at,
                         attendees=list(attendees), absentees=list(absentees), topic="学习")


# --- the table -------------------------------------------------------------------------


def test_the_table_gives_each_kind_its_frequency():
    p = policy()
    every = {k.value: f.every.value for k, f in p.frequencies.items()}
    assert every == {"branch_meeting": "quarter", "committee_meeting": "month", "group_meeting": "month",
                     "party_lecture": "quarter", "theme_day": "month"}
    assert p.kinds_for(OrgKind.BUILDING_GROUP) == (OrgLifeKind.GROUP_MEETING,)
    assert OrgLifeKind.GROUP_MEETING not in p.kinds_for(OrgKind.GRID_BRANCH)
    assert p.kinds_for(OrgKind.REGIONAL_COUNCIL) == ()


def test_a_table_without_every_kind_or_with_an_unknown_frequency_is_refused():
    with pytest.raises(ValueError):
        OrgLifePolicy.from_mapping({"frequencies": {"theme_day": {"every": "month", "applies_to": ["grid_branch"]}}})
    data = {"frequencies": {k.value: {"every": "month", "applies_to": ["grid_branch"]} for k in OrgLifeKind}}
    data["frequencies"]["theme_day"]["every"] = "fortnight"
    with pytest.raises(ValueError):
        OrgLifePolicy.from_mapping(data)


# --- recording a meeting ---------------------------------------------------------------


def test_a_meeting_says_which_required_period_it_fulfils_by_the_tables_frequency_of_its_kind():
    (monthly,) = decide_org_life(None, record(), ctx())
    (quarterly,) = decide_org_life(None, record(kind="branch_meeting", meeting_id="mt-2"), ctx())
    assert monthly.period == period_of(T0, Every.MONTH) and quarterly.period == period_of(T0, Every.QUARTER)
    table = policy().model_dump()
    table["frequencies"][OrgLifeKind.THEME_DAY]["every"] = Every.QUARTER  # the table changed: the events follow it
    (e,) = decide_org_life(None, record(), ctx().model_copy(update={"policy": OrgLifePolicy.model_validate(table)}))
    assert e.period == period_of(T0, Every.QUARTER)


def test_an_org_records_a_meeting_of_a_kind_it_holds():
    (e,) = decide_org_life(None, record(), ctx())
    assert isinstance(e, OrgLifeHeld) and e.aggregate_id == "br-1"
    assert (e.kind, e.held_at, e.attendees, e.absentees, e.area_id) == (
        OrgLifeKind.THEME_DAY, T0, ("m1", "m2"), ("m3",), BRANCH.area_id)
    state = evolve_org_life(None, e)
    assert OrgLifeState.model_validate(state.model_dump(mode="json")) == state


def test_a_kind_the_org_does_not_hold_is_refused():
    r = refused(decide_org_life, None, record("group_meeting"), ctx())
    assert (r.reason, r.field) == ("org_life_not_applicable", "kind")
    r = refused(decide_org_life, None, record("theme_day", org_id="gp-1"), ctx(org=GROUP))
    assert r.reason == "org_life_not_applicable"


def test_a_meeting_is_not_recorded_ahead():
    r = refused(decide_org_life, None, record(held_at=at(1)), ctx())
    assert (r.reason, r.field) == ("held_in_future", "held_at")
    assert decide_org_life(None, record(held_at=T0), ctx())  # held now: fine


def test_no_meeting_before_the_org_was_established():
    r = refused(decide_org_life, None, record(held_at=datetime(2025, 12, 31, tzinfo=CST)), ctx())
    assert (r.reason, r.field) == ("held_before_establishment", "held_at")


def test_an_unknown_org_is_refused():
    r = refused(decide_org_life, None, record(org_id="br-9"), ctx())
    assert (r.reason, r.field) == ("unknown_org", "org_id")
    assert refused(decide_org_life, None, record(), ctx(org=None)).reason == "unknown_org"


def test_each_meeting_is_recorded_once():
    state = fold(evolve_org_life, None, decide_org_life(None, record(), ctx()))
    assert decide_org_life(state, record(), ctx(1)) == []
    r = refused(decide_org_life, state, record(held_at=at(-1)), ctx(1))
    assert (r.reason, r.field) == ("meeting_exists", "meeting_id")


# --- the overdue timer -----------------------------------------------------------------


def test_periods_are_shanghai_months_and_quarters():
    late_utc = datetime(2026, 3, 31, 16, 30, tzinfo=timezone.utc)  # 2026-04-01 00:30 in Shanghai
    assert (period_of(late_utc, Every.MONTH), period_of(late_utc, Every.QUARTER)) == ("2026-04", "2026-Q2")


def test_counting_starts_with_the_first_period_after_establishment():
    since = GROUP.established_at  # 15 March
    assert closed_periods(since, datetime(2026, 7, 1, tzinfo=CST), Every.MONTH) == ["2026-04", "2026-05", "2026-06"]
    assert closed_periods(since, datetime(2026, 7, 1, tzinfo=CST), Every.QUARTER) == ["2026-Q2"]
    assert closed_periods(since, datetime(2026, 6, 30, 23, 59, tzinfo=CST), Every.QUARTER) == []
    # established on the first instant of a period: that period counts
    assert closed_periods(datetime(2026, 4, 1, tzinfo=CST), datetime(2026, 5, 1, tzinfo=CST), Every.MONTH) == ["2026-04"]


def test_each_closed_period_without_a_meeting_is_overdue_once():
    p = policy()
    state = None
    for kind, month in (("theme_day", 1), ("theme_day", 2), ("committee_meeting", 1), ("branch_meeting", 2)):
        cmd = record(kind, datetime(2026, month, 10, tzinfo=CST), meeting_id=f"{kind}-{month}")
        state = fold(evolve_org_life, state, decide_org_life(state, cmd, ctx()))
    now = datetime(2026, 4, 1, 0, 0, tzinfo=CST)
    events = org_life_overdue(BRANCH, state, p, now)
    assert all(isinstance(e, OrgLifeOverdue) and e.occurred_at == now and e.area_id == BRANCH.area_id for e in events)
    assert sorted((e.kind.value, e.period) for e in events) == [
        ("committee_meeting", "2026-02"), ("committee_meeting", "2026-03"),
        ("party_lecture", "2026-Q1"), ("theme_day", "2026-03"),
    ]
    state = fold(evolve_org_life, state, events)
    assert org_life_overdue(BRANCH, state, p, now) == []
    assert org_life_overdue(BRANCH, state, p, now + timedelta(days=20)) == []
    assert OrgLifeState.model_validate(state.model_dump(mode="json")) == state


def test_an_open_period_is_not_overdue_and_a_late_record_keeps_the_flag():
    p = policy()
    events = org_life_overdue(GROUP, None, p, datetime(2026, 4, 30, 23, 59, tzinfo=CST))
    assert events == []
    events = org_life_overdue(GROUP, None, p, datetime(2026, 5, 1, tzinfo=CST))
    assert [(e.kind.value, e.period) for e in events] == [("group_meeting", "2026-04")]
    state = fold(evolve_org_life, None, events)
    late = record("group_meeting", datetime(2026, 4, 20, tzinfo=CST), org_id="gp-1")
    state = fold(evolve_org_life, state, decide_org_life(state, late, ctx(org=GROUP)))
    assert state.overdue == ("group_meeting/2026-04",)
    assert org_life_overdue(GROUP, state, p, datetime(2026, 5, 2, tzinfo=CST)) == []


@settings(max_examples=60, deadline=None)
@given(
    held=st.lists(st.tuples(st.sampled_from(["committee_meeting", "theme_day", "branch_meeting", "party_lecture"]),
                            st.integers(0, 400)), max_size=25),
    ticks=st.lists(st.integers(0, 500), min_size=1, max_size=12),
)
def test_the_timer_run_any_number_of_times_flags_each_missed_period_exactly_once(held, ticks):
    """However often and whenever the timer runs, each (kind, period) closed without a meeting is
    flagged once, and nothing else is."""
    p = policy()
    start = BRANCH.established_at
    state = None
    for i, (kind, day) in enumerate(held):
        cmd = record(kind, start + timedelta(days=day), meeting_id=f"m{i}")
        state = fold(evolve_org_life, state, decide_org_life(state, cmd, ctx(500, org=BRANCH)))
    flagged = []
    last = start
    for day in sorted(ticks):
        now = start + timedelta(days=day)
        last = max(last, now)
        events = org_life_overdue(BRANCH, state, p, now)
        flagged += [(e.kind.value, e.period) for e in events]
        state = fold(evolve_org_life, state, events)
    assert len(flagged) == len(set(flagged))
    expected = set()
    for kind in p.kinds_for(BRANCH.kind):
        every = p.frequencies[kind].every
        had = {period_of(start + timedelta(days=d), every) for k, d in held if k == kind.value}
        expected |= {(kind.value, per) for per in closed_periods(start, last, every) if per not in had}
    assert set(flagged) == expected


# --- commitments -----------------------------------------------------------------------


def make(cid: str = "c-1", year: int = 2026, text: str = "每月走访困难户") -> MakeCommitment:
    return MakeCommitment(member_id="m1", commitment_id=cid, year=year, text=text)


def run(state, command, c):
    events = decide_commitment(state, command, c)
    return fold(evolve_commitment, state, events), events


def made() -> CommitmentsState:
    return run(None, make(), ctx(org=None, member_org_id="br-1"))[0]


YEAR_END = (datetime(2027, 1, 1, tzinfo=CST) - T0).total_seconds() / 86400  # days from T0 to 2027-01-01


def test_a_member_makes_fulfils_and_has_a_commitment_rated():
    state, (e,) = run(None, make(), ctx(member_org_id="br-1"))
    assert isinstance(e, CommitmentMade) and (e.year, e.org_id, e.aggregate_id) == (2026, "br-1", "m1")
    state, (e,) = run(state, FulfilCommitment(member_id="m1", commitment_id="c-1", note="走访12次"), ctx(5))
    assert isinstance(e, CommitmentFulfilled) and e.year == 2026
    state, (e,) = run(state, RateCommitment(member_id="m1", commitment_id="c-1", rating=5), ctx(6))
    assert isinstance(e, CommitmentRated) and e.rating == 5
    c = state.get("c-1")
    assert (c.fulfilled, c.note, c.rating, c.rated_at) == (True, "走访12次", 5, at(6))
    assert CommitmentsState.model_validate(state.model_dump(mode="json")) == state


def test_a_commitment_is_made_once_per_id():
    # the same commitment again (a retry under a new command id) is answered, never silent
    r = refused(decide_commitment, made(), make(), ctx(1))
    assert (r.reason, r.field) == ("commitment_exists", "commitment_id") and "already made" in r.detail
    r = refused(decide_commitment, made(), make(text="另一项"), ctx(1))
    assert (r.reason, r.field) == ("commitment_exists", "commitment_id")


def test_a_commitment_is_for_the_current_year_or_the_next():
    assert decide_commitment(None, make(year=2027), ctx())
    for year in (2025, 2028):
        r = refused(decide_commitment, None, make(year=year), ctx())
        assert (r.reason, r.field) == ("commitment_year_invalid", "year")


def test_only_a_made_commitment_is_fulfilled_or_rated():
    for cmd in (FulfilCommitment(member_id="m1", commitment_id="c-9"),
                RateCommitment(member_id="m1", commitment_id="c-9", rating=3)):
        r = refused(decide_commitment, made(), cmd, ctx())
        assert (r.reason, r.field) == ("unknown_commitment", "commitment_id")
        assert refused(decide_commitment, None, cmd, ctx()).reason == "unknown_commitment"


def test_a_commitment_is_fulfilled_once_within_its_year():
    state, _ = run(made(), FulfilCommitment(member_id="m1", commitment_id="c-1"), ctx(1))
    r = refused(decide_commitment, state, FulfilCommitment(member_id="m1", commitment_id="c-1"), ctx(2))
    assert (r.reason, r.field) == ("already_fulfilled", "commitment_id")
    r = refused(decide_commitment, made(), FulfilCommitment(member_id="m1", commitment_id="c-1"), ctx(YEAR_END))
    assert r.reason == "commitment_year_over"


def test_rating_comes_after_fulfilment_or_at_the_years_end():
    rate = RateCommitment(member_id="m1", commitment_id="c-1", rating=2)
    r = refused(decide_commitment, made(), rate, ctx(1))
    assert (r.reason, r.field) == ("commitment_not_due", "commitment_id")
    (e,) = decide_commitment(made(), rate, ctx(YEAR_END))  # not kept: rated at the year's end
    assert e.rating == 2


def test_a_commitment_is_rated_once():
    state, _ = run(made(), RateCommitment(member_id="m1", commitment_id="c-1", rating=2), ctx(YEAR_END))
    assert decide_commitment(state, RateCommitment(member_id="m1", commitment_id="c-1", rating=2), ctx(YEAR_END)) == []
    r = refused(decide_commitment, state, RateCommitment(member_id="m1", commitment_id="c-1", rating=4), ctx(YEAR_END))
    assert (r.reason, r.field) == ("already_rated", "rating")
