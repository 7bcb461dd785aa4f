"""组织建设 from party facts, hand-computed: each formula's counters from the party service's
events (and orders' registrations), the standing counts derived at a period's end, and the
default scheme's organisation pillar they make."""
from __future__ import annotations

import pytest

from schemas.orders import MemberRegistered
from schemas.party import (
    AgreementSigned, CommitmentFulfilled, CommitmentMade, CoverageGap, MeetingHeld, MeetingOverdue,
    MemberReportOverdue, OrgEstablished, OrgLifeHeld, OrgLifeOverdue, ProjectClaimed, ProjectCompleted,
    ProjectPosted, ResolutionCompleted, ResolutionOverdue, UnitReported,
)
from services.assessment.domain import default_scheme, evaluate
from services.assessment.domain.facts.standing import standing_facts
from services.assessment.domain.indicators import CATALOGUE
from services.assessment.domain.publication import publication_for

from assessment_builders import COMMUNITY, GRID, GRID_B, STREET, UNIT, Story, at

COMMUNITY_B = "110105001003"
GRID_C, GRID_D = "110105001002005", "110105001002006"
UNIT_B, UNIT_C = "unit-018", "unit-019"


def rate(s: Story, name: str, entity_type: str, entity_id: str, period: str) -> float | None:
    return evaluate(CATALOGUE[name], s.facts(entity_type, entity_id, period)).value


def standing_rate(s: Story, name: str, entity_type: str, entity_id: str, period: str) -> float | None:
    return evaluate(CATALOGUE[name], standing_facts(period, s.lookup).get((entity_type, entity_id), {})).value


def org(s: Story, org_id: str, kind: str, area: str, day: int = 1, month: int = 11):
    s.feed(OrgEstablished(org_id=org_id, kind=kind, parent_id=None, area_id=area, name=org_id), at(day, month=month))


def people(n: int, prefix: str = "p") -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(n))


# -- 组织覆盖率 ---------------------------------------------------------------------------------


def coverage_story() -> Story:
    """A: a branch on 3 Nov; B: a gap on 5 Nov; C: a gap on 10 Oct, a branch on 20 Nov; D: a gap in December."""
    s = Story()
    org(s, "b-a", "grid_branch", GRID, 3)
    s.feed(CoverageGap(grid_id=GRID_B, members=4), at(5))
    s.feed(CoverageGap(grid_id=GRID_C, members=3), at(10, month=10))
    org(s, "b-c", "grid_branch", GRID_C, 20)
    s.feed(CoverageGap(grid_id=GRID_D, members=5), at(2, month=12))
    return s


def test_coverage_is_grids_with_a_branch_over_grids_with_a_branch_or_a_gap_at_the_periods_end():
    s = coverage_story()
    # October: C has a gap, no branch yet → 0/1; November: A, C covered of A, B, C → 2/3
    assert standing_rate(s, "org_coverage_rate", "community", COMMUNITY, "2026-10") == 0.0
    assert standing_rate(s, "org_coverage_rate", "community", COMMUNITY, "2026-11") == pytest.approx(2 / 3)
    assert standing_rate(s, "org_coverage_rate", "street", STREET, "2026-11") == pytest.approx(2 / 3)
    # the quarter ends with D's gap too: 2/4; before any grid there is no value
    assert standing_rate(s, "org_coverage_rate", "community", COMMUNITY, "2026-Q4") == 0.5
    assert standing_rate(s, "org_coverage_rate", "community", COMMUNITY, "2026-09") is None
    assert ("grid", GRID) not in standing_facts("2026-11", s.lookup)  # grids get no Party counters


def test_a_repeated_gap_report_or_branch_changes_nothing():
    s = coverage_story()
    before = standing_facts("2026-Q4", s.lookup)
    s.feed(CoverageGap(grid_id=GRID_B, members=6), at(25))
    org(s, "b-a2", "grid_branch", GRID, 26)
    assert standing_facts("2026-Q4", s.lookup) == before


def test_a_community_with_standing_counts_only_gets_a_scorecard_with_its_coverage():
    s = coverage_story()
    pub = publication_for("2026-11", s.table, s.lookup, default_scheme())
    [card] = [c for c in pub.scorecards if (c.entity_type.value, c.entity_id) == ("community", COMMUNITY)]
    assert card.indicators["org_coverage_rate"] == pytest.approx(0.6667)
    assert card.details["org_coverage_rate"].pillar == "organisation"
    assert card.pillars["organisation"] == pytest.approx(66.67)


# -- 三会一课按期召开率 and 党员参学率 ------------------------------------------------------------


def org_life_story() -> Story:
    s = Story()
    org(s, "b1", "grid_branch", GRID, 1)
    life = dict(org_id="b1")
    s.feed(OrgLifeHeld(**life, meeting_id="m1", kind="committee_meeting", held_at=at(5), attendees=people(4),
                       absentees=people(1, "a")), at(5))
    s.feed(OrgLifeHeld(**life, meeting_id="m2", kind="committee_meeting", held_at=at(20), attendees=people(5),
                       absentees=()), at(20))  # a second 支委会 in the month: required once
    s.feed(OrgLifeHeld(**life, meeting_id="m3", kind="branch_meeting", held_at=at(10), period="2026-Q4", attendees=people(3),
                       absentees=people(2, "a")), at(10))  # quarterly
    s.feed(OrgLifeOverdue(**life, kind="theme_day", period="2026-11"), at(1, 1, month=12))
    s.feed(OrgLifeOverdue(**life, kind="group_meeting", period="2026-11"), at(1, 1, month=12))
    return s


def test_org_life_on_time_is_required_periods_held_over_required_periods():
    s = org_life_story()
    # November: 支委会 held; 主题党日 and 党小组会 missed → 1/3 (the quarterly 党员大会 counts in no month)
    assert s.facts("community", COMMUNITY, "2026-11")["org_life_required"] == 3
    assert rate(s, "org_life_on_time_rate", "community", COMMUNITY, "2026-11") == pytest.approx(1 / 3)
    # the quarter: + 支部党员大会@2026-Q4 held → 2/4
    assert rate(s, "org_life_on_time_rate", "community", COMMUNITY, "2026-Q4") == 0.5
    assert rate(s, "org_life_on_time_rate", "street", STREET, "2026") == 0.5
    assert s.facts("grid", GRID, "2026-11") == {}


def test_the_required_period_is_the_one_the_party_service_names_else_the_meetings_month():
    s = Story()
    org(s, "b1", "grid_branch", GRID)
    s.feed(OrgLifeHeld(org_id="b1", meeting_id="q", kind="theme_day", held_at=at(5), period="2026-Q4",
                       attendees=people(1), absentees=()), at(5))  # the party's policy made it quarterly
    s.feed(OrgLifeHeld(org_id="b1", meeting_id="m", kind="branch_meeting", held_at=at(6), attendees=people(1),
                       absentees=()), at(6))  # an event from before the field: its month
    assert s.facts("community", COMMUNITY, "2026-11")["org_life_required"] == 1
    assert s.facts("community", COMMUNITY, "2026-Q4")["org_life_required"] == 2


def test_attendance_is_attendees_over_attendees_and_absentees_of_every_meeting():
    s = org_life_story()
    # (4 + 5 + 3) / (5 + 5 + 5)
    assert rate(s, "org_life_attendance_rate", "community", COMMUNITY, "2026-11") == pytest.approx(12 / 15)


def test_a_meeting_recorded_after_its_period_was_reported_missed_is_held_not_required_twice():
    s = org_life_story()
    s.feed(OrgLifeHeld(org_id="b1", meeting_id="m4", kind="theme_day", held_at=at(28), attendees=people(2),
                       absentees=()), at(2, month=12))
    f = s.facts("community", COMMUNITY, "2026-11")
    assert (f["org_life_held"], f["org_life_required"]) == (2, 3)


def test_a_redelivered_meeting_or_overdue_changes_nothing():
    s = org_life_story()
    before = dict(s.table)
    s.feed(OrgLifeHeld(org_id="b1", meeting_id="m1", kind="committee_meeting", held_at=at(5), attendees=people(4),
                       absentees=people(1, "a")), at(5))
    s.feed(OrgLifeOverdue(org_id="b1", kind="theme_day", period="2026-11"), at(1, 2, month=12))
    assert s.table == before


def test_a_units_party_org_counts_for_the_unit_and_an_unknown_org_by_the_area_its_event_names():
    s = Story()
    org(s, "u-org", "unit_org", UNIT)
    s.feed(OrgLifeHeld(org_id="u-org", meeting_id="x", kind="theme_day", held_at=at(3), attendees=people(3),
                       absentees=people(1, "a")), at(3))
    assert rate(s, "org_life_on_time_rate", "unit", UNIT, "2026-11") == 1.0
    assert s.facts("community", COMMUNITY, "2026-11") == {}
    s.feed(OrgLifeHeld(org_id="never-seen", meeting_id="y", kind="theme_day", held_at=at(3), attendees=people(1),
                       absentees=people(1, "a"), area_id=f"{GRID_B}:3号楼"), at(3))
    assert rate(s, "org_life_attendance_rate", "community", COMMUNITY, "2026-11") == 0.5


# -- 联席会议按期召开率, 联席会议出勤率 and 议定事项办结率 --------------------------------------------


def council_story() -> Story:
    s = Story()
    c = dict(council_id="c1", area_id=COMMUNITY)
    s.feed(MeetingOverdue(**c, quarter="2026-Q3"), at(1, 1, month=10))
    s.feed(MeetingHeld(**c, meeting_id="m1", held_at=at(10), attendees=people(3), absentees=people(5, "a"),
                       quorum=False), at(10))
    s.feed(MeetingHeld(**c, meeting_id="m2", held_at=at(1, month=12), attendees=people(6), absentees=people(2, "a"),
                       quorum=True), at(1, month=12))
    s.feed(MeetingHeld(council_id="s1", area_id=STREET, meeting_id="s-m1", held_at=at(12), attendees=people(9),
                       absentees=people(1, "a"), quorum=True), at(12))
    return s


def test_council_meetings_on_time_are_quarters_with_a_quorate_meeting_over_quarters_due():
    s = council_story()
    # c1: Q3 missed, Q4 held (m1 had no quorum, m2 had) → the year 1/2; Q4 1/1; no month has it
    assert rate(s, "council_meeting_on_time_rate", "community", COMMUNITY, "2026") == 0.5
    assert rate(s, "council_meeting_on_time_rate", "community", COMMUNITY, "2026-Q4") == 1.0
    assert rate(s, "council_meeting_on_time_rate", "community", COMMUNITY, "2026-11") is None
    # the street: its own 大工委 s1 (Q4 held) and its community's 大党委 → 2/3 in the year
    assert rate(s, "council_meeting_on_time_rate", "street", STREET, "2026") == pytest.approx(2 / 3)
    assert s.facts("community", COMMUNITY, "2026-Q4")["council_quarters_due"] == 1


def test_a_quarter_with_only_a_meeting_without_quorum_is_due_and_not_held():
    s = Story()
    s.feed(MeetingHeld(council_id="c1", area_id=COMMUNITY, meeting_id="m1", held_at=at(10), attendees=people(3),
                       absentees=people(5, "a"), quorum=False), at(10))
    assert rate(s, "council_meeting_on_time_rate", "community", COMMUNITY, "2026-Q4") == 0.0


def test_council_attendance_is_attendees_over_attendees_and_absentees():
    s = council_story()
    assert rate(s, "council_attendance_rate", "community", COMMUNITY, "2026-11") == pytest.approx(3 / 8)
    assert rate(s, "council_attendance_rate", "community", COMMUNITY, "2026-Q4") == pytest.approx(9 / 16)
    assert rate(s, "council_attendance_rate", "street", STREET, "2026-Q4") == pytest.approx(18 / 26)


def resolutions_story() -> Story:
    s = council_story()
    c = dict(council_id="c1")
    s.feed(ResolutionCompleted(**c, resolution_id="r1", owner_unit_id=UNIT, on_time=True), at(5))
    s.feed(ResolutionOverdue(**c, resolution_id="r2", owner_unit_id=UNIT_B, due_at=at(10)), at(10))
    s.feed(ResolutionOverdue(**c, resolution_id="r3", owner_unit_id=UNIT, due_at=at(12)), at(12))
    s.feed(ResolutionCompleted(**c, resolution_id="r3", owner_unit_id=UNIT, on_time=False), at(3, month=12))
    return s


def test_resolution_completion_is_completed_over_completed_and_overdue_open():
    s = resolutions_story()
    # November: r1 completed; r2 overdue and open; r3's overdue taken back when completed → 1/2
    assert rate(s, "resolution_completion_rate", "community", COMMUNITY, "2026-11") == 0.5
    assert rate(s, "resolution_completion_rate", "community", COMMUNITY, "2026-12") == 1.0
    assert rate(s, "resolution_completion_rate", "street", STREET, "2026-Q4") == pytest.approx(2 / 3)
    # the owner units: UNIT owns r1 and r3 (both done), UNIT_B r2 (overdue)
    assert rate(s, "resolution_completion_rate", "unit", UNIT, "2026-Q4") == 1.0
    assert rate(s, "resolution_completion_rate", "unit", UNIT_B, "2026-Q4") == 0.0


def test_a_redelivered_completion_or_overdue_changes_nothing():
    s = resolutions_story()
    before = dict(s.table)
    s.feed(ResolutionCompleted(council_id="c1", resolution_id="r3", owner_unit_id=UNIT, on_time=False),
           at(3, month=12))
    s.feed(ResolutionOverdue(council_id="c1", resolution_id="r1", owner_unit_id=UNIT, due_at=at(4)), at(6))
    assert s.table == before


# -- 项目认领率 and 项目完成率 --------------------------------------------------------------------


def projects_story() -> Story:
    s = Story()
    post = dict(community_id=COMMUNITY, title="楼道照明")
    s.feed(ProjectPosted(project_id="p1", **post), at(20, month=10))
    s.feed(ProjectClaimed(project_id="p1", community_id=COMMUNITY, unit_id=UNIT), at(2))
    s.feed(ProjectCompleted(project_id="p1", community_id=COMMUNITY, unit_id=UNIT), at(20))
    s.feed(ProjectPosted(project_id="p2", **post), at(1))
    s.feed(ProjectClaimed(project_id="p2", community_id=COMMUNITY, unit_id=UNIT), at(3))
    s.feed(ProjectPosted(project_id="p3", **post), at(5))
    return s


def test_projects_claimed_over_posted_and_completed_over_claimed_by_the_period_of_the_posting():
    s = projects_story()
    assert rate(s, "project_claim_rate", "community", COMMUNITY, "2026-10") == 1.0
    assert rate(s, "project_completion_rate", "community", COMMUNITY, "2026-10") == 1.0
    assert rate(s, "project_claim_rate", "community", COMMUNITY, "2026-11") == 0.5
    assert rate(s, "project_completion_rate", "community", COMMUNITY, "2026-11") == 0.0
    assert rate(s, "project_claim_rate", "street", STREET, "2026-Q4") == pytest.approx(2 / 3)
    assert rate(s, "project_completion_rate", "unit", UNIT, "2026-Q4") == 0.5
    assert rate(s, "project_claim_rate", "unit", UNIT, "2026-Q4") is None  # not a unit's indicator
    assert "project_claim_rate" not in {i.name for i in __import__(
        "services.assessment.domain.indicators", fromlist=["x"]).indicators_for("unit")}


def test_a_second_claim_or_completion_is_not_counted_and_a_completion_without_a_claim_is_not_either():
    s = projects_story()
    before = dict(s.table)
    s.feed(ProjectClaimed(project_id="p1", community_id=COMMUNITY, unit_id=UNIT_B), at(4))
    s.feed(ProjectCompleted(project_id="p1", community_id=COMMUNITY, unit_id=UNIT), at(21))
    s.feed(ProjectCompleted(project_id="p3", community_id=COMMUNITY, unit_id=UNIT), at(22))
    assert s.table == before


# -- 党员报到率 ----------------------------------------------------------------------------------


def registered(s: Story, member: str, day: int, month: int = 11, community: str = COMMUNITY):
    s.feed(MemberRegistered(member_id=member, community_id=community, unit_id=UNIT), at(day, month=month))


def members_story() -> Story:
    s = Story()
    registered(s, "m4", 5, month=10)
    registered(s, "m1", 2)
    s.feed(MemberReportOverdue(member_id="m2", unit_id=UNIT, community_id=COMMUNITY, due_at=at(5)), at(5))
    s.feed(MemberReportOverdue(member_id="m3", unit_id=UNIT, community_id=COMMUNITY, due_at=at(6)), at(6))
    s.feed(MemberReportOverdue(member_id="m4", moved=True), at(8))  # moved away: the member's community and unit
    registered(s, "m3", 1, month=12)
    return s


def test_member_report_rate_is_registered_over_registered_and_overdue_not_registered_since():
    s = members_story()
    # October: m4 registered → 1/1. November: m1 registered; m2 and m4 overdue; m3's overdue taken
    # back when m3 registered in December → 1/3. December: m3 → 1/1.
    assert rate(s, "member_report_rate", "community", COMMUNITY, "2026-10") == 1.0
    assert rate(s, "member_report_rate", "community", COMMUNITY, "2026-11") == pytest.approx(1 / 3)
    assert rate(s, "member_report_rate", "community", COMMUNITY, "2026-12") == 1.0
    assert rate(s, "member_report_rate", "unit", UNIT, "2026-Q4") == pytest.approx(3 / 5)
    assert rate(s, "member_report_rate", "street", STREET, "2026-Q4") == pytest.approx(3 / 5)


def test_an_overdue_member_is_counted_once_until_registered_and_not_as_a_registered_member():
    s = members_story()
    before = dict(s.table)
    s.feed(MemberReportOverdue(member_id="m2", unit_id=UNIT, community_id=COMMUNITY), at(20))
    assert s.table == before
    assert s.lookup.member("m2") is None  # no orders or points are attributed to an unregistered member


# -- 践诺率 ---------------------------------------------------------------------------------------


def test_commitments_fulfilled_over_made_in_the_commitments_year():
    s = Story()
    registered(s, "m1", 2)
    org(s, "b2", "grid_branch", f"{GRID_B}")
    org(s, "cc-b", "community_committee", COMMUNITY_B)
    for cid in ("k1", "k2"):
        s.feed(CommitmentMade(member_id="m1", commitment_id=cid, year=2026, text="每月服务"), at(3))
    s.feed(CommitmentFulfilled(member_id="m1", commitment_id="k1", year=2026), at(20))
    s.feed(CommitmentFulfilled(member_id="m1", commitment_id="k3", year=2026), at(21))  # its making not seen
    s.feed(CommitmentFulfilled(member_id="m1", commitment_id="k1", year=2026), at(22))  # again: nothing
    assert rate(s, "commitment_fulfilment_rate", "community", COMMUNITY, "2026") == pytest.approx(2 / 3)
    assert rate(s, "commitment_fulfilment_rate", "unit", UNIT, "2026") == pytest.approx(2 / 3)
    assert rate(s, "commitment_fulfilment_rate", "community", COMMUNITY, "2026-11") is None  # yearly only
    # a commitment made in an organisation counts where the organisation is
    s.feed(CommitmentMade(member_id="m1", commitment_id="k4", year=2026, text="x", org_id="cc-b"), at(4))
    assert s.facts("community", COMMUNITY_B, "2026")["commitments_made"] == 1


# -- 单位报到率 -----------------------------------------------------------------------------------


def units_story() -> Story:
    s = Story()
    registered(s, "m1", 5, month=10)  # UNIT known where its member registered
    s.feed(UnitReported(unit_id=UNIT_B, name="区医院", community_id=COMMUNITY_B), at(3))
    s.feed(AgreementSigned(agreement_id="a1", unit_id=UNIT_C, community_id=COMMUNITY, commitments=("共建",),
                           valid_from=at(10), valid_until=at(10, year=2027)), at(10))
    s.feed(UnitReported(unit_id=UNIT, name="区税务局", community_id=COMMUNITY), at(2, month=12))
    return s


def test_unit_report_rate_is_units_reported_over_units_known_where_they_sit_at_the_periods_end():
    s = units_story()
    assert standing_rate(s, "unit_report_rate", "community", COMMUNITY, "2026-10") == 0.0
    assert standing_rate(s, "unit_report_rate", "community", COMMUNITY, "2026-11") == 0.0  # UNIT, UNIT_C
    assert standing_rate(s, "unit_report_rate", "community", COMMUNITY_B, "2026-11") == 1.0
    assert standing_rate(s, "unit_report_rate", "street", STREET, "2026-11") == pytest.approx(1 / 3)
    assert standing_rate(s, "unit_report_rate", "community", COMMUNITY, "2026-12") == 0.5
    assert standing_rate(s, "unit_report_rate", "unit", UNIT, "2026-11") == 0.0
    assert standing_rate(s, "unit_report_rate", "unit", UNIT, "2026-12") == 1.0


def test_a_unit_that_reports_elsewhere_leaves_the_community_of_its_first_member():
    s = units_story()
    s.feed(UnitReported(unit_id=UNIT_C, name="供电所", community_id=COMMUNITY_B), at(20))
    assert standing_facts("2026-11", s.lookup)[("community", COMMUNITY_B)] == {"units_known": 2.0,
                                                                              "units_reported": 2.0}
    assert standing_facts("2026-11", s.lookup)[("community", COMMUNITY)] == {"units_known": 1.0}


# -- the default scheme ---------------------------------------------------------------------------


def test_the_default_community_scorecards_organisation_pillar_is_made_of_party_facts():
    s = Story()
    for story in (coverage_story, org_life_story, resolutions_story, projects_story, members_story):
        for k, v in story().table.items():
            s.table[k] = s.table.get(k, 0.0) + v
    s.lookup = coverage_story().lookup
    pub = publication_for("2026-11", s.table, s.lookup, default_scheme())
    [card] = [c for c in pub.scorecards if (c.entity_type.value, c.entity_id) == ("community", COMMUNITY)]
    org_inds = {n for n, d in card.details.items() if d.pillar == "organisation" and d.value is not None}
    assert org_inds == {"org_coverage_rate", "org_life_on_time_rate", "org_life_attendance_rate",
                        "council_attendance_rate", "resolution_completion_rate", "project_claim_rate",
                        "project_completion_rate", "member_report_rate"}
    assert not {n for n, d in card.details.items() if d.pillar == "organisation"} & {
        "on_time_closure_rate", "closure_rate", "rework_rate", "registration_rate"}
    # hand-computed: coverage 2/3, org life 1/3, attendance 12/15, council attendance 3/8,
    # resolutions 1/2, claims 1/2, completion 0/1, member report 1/3; weights 2, 2, 1, 1, 1, 1, 1, 1
    points = [(2, 200 / 3), (2, 100 / 3), (1, 80), (1, 37.5), (1, 50), (1, 50), (1, 0), (1, 100 / 3)]
    expected = sum(w * p for w, p in points) / sum(w for w, _ in points)
    assert card.pillars["organisation"] == pytest.approx(expected, abs=0.01)


# -- what the event log keeps ---------------------------------------------------------------------


def test_the_event_log_keeps_how_many_attended_not_who_and_the_replay_counts_the_same():
    from services.assessment.domain.history import log_data, stored_event

    e = OrgLifeHeld(org_id="b1", meeting_id="m1", kind="theme_day", held_at=at(5), attendees=("member-1", "member-2"),
                    absentees=("member-3",), topic="学习二十大精神")
    kept = log_data(OrgLifeHeld, e.model_dump(mode="json"))
    assert kept["attendees"] == ["-", "-"] and kept["absentees"] == ["-"]
    assert "topic" not in kept and "member-1" not in str(kept)
    back = stored_event("/services/party", "x", "party.events.v1", OrgLifeHeld.TYPE, kept, at(5)).payload
    s, t = Story(), Story()
    org(s, "b1", "grid_branch", GRID)
    org(t, "b1", "grid_branch", GRID)
    s.feed(e, at(5))
    t.feed(back, at(5))
    assert s.table == t.table
    est = OrgEstablished(org_id="b1", kind="grid_branch", parent_id=None, area_id=GRID, name="b", secretary_id="sec-1")
    assert "secretary_id" not in log_data(OrgEstablished, est.model_dump(mode="json"))
