"""Facts of the department's part of a case, of 吹哨报到 and of the grid worker's own duties,
hand-computed; and the department scorecard they give."""
from __future__ import annotations

import pytest

from schemas.grid import (
    CaseAccepted,
    CaseClosed,
    CaseContacted,
    CaseDispatched,
    CaseExclusionReviewed,
    CaseExtensionGranted,
    CaseFeedback,
    CaseHandled,
    CaseRegistered,
    CaseReported,
    CaseReturnReviewed,
    CaseSupervised,
    CaseVerified,
    Location,
    PatrolLogged,
    Reporter,
    WhistleAnswered,
    WhistleBlown,
    WhistleMissed,
    WhistleRated,
)
from services.assessment.domain import EntityType, default_scheme, parent_of
from services.assessment.domain.facts.coverage import coverage_facts
from services.assessment.domain.periods import mondays_in
from services.assessment.domain.publication import publication_for

from assessment_builders import GRID, GRID_B, STREET, WORKER, Story, at

M = "2026-11"
CGJ, ZHZF, SCJG = "110105.cgj", "110105001.zhzf", "110105.scjg"
WHERE = Location(lat=39.9, lon=116.4, address="金台里3号楼")


def reported(s: Story, case: str, day: int = 2, register_due_day: int | None = None, grid: str = GRID):
    due = at(register_due_day, 12) if register_due_day else None
    s.feed(CaseReported(case_id=case, grid_id=grid, category="environment", description="垃圾堆放", location=WHERE,
                        reporter=Reporter(kind="grid_worker", id=WORKER), register_due_at=due), at(day))


def dispatched(s: Story, case: str, dept: str, day: int = 2, hour: int = 10, redispatch: bool = False):
    s.feed(CaseDispatched(case_id=case, department=dept, assignee_id="staff-1", due_at=at(day + 5),
                          accept_due_at=at(day, hour + 2), contact_due_at=at(day, hour + 4), redispatch=redispatch,
                          grid_id=GRID), at(day, hour))


def dept_event(cls, case: str, dept: str, **kw):
    return cls(case_id=case, department=dept, grid_id=GRID, **kw)


def fact(s: Story, dept: str, name: str, period: str = M) -> float:
    return s.fact("department", dept, period, name)


# -- attribution ---------------------------------------------------------------------------


def test_a_dispatch_makes_the_case_received_by_its_department_in_the_period_of_the_dispatch():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    for p in (M, "2026-Q4", "2026"):
        assert fact(s, CGJ, "dept_cases_received", p) == 1
        assert fact(s, CGJ, "dept_cases_in_rates", p) == 1


def test_a_free_text_department_of_an_older_event_counts_for_no_department():
    s = Story()
    reported(s, "c1")
    eff = s.feed(CaseDispatched(case_id="c1", department="城管", assignee_id="a", due_at=at(5)), at(2, 10))
    assert not any(d.entity_type == "department" for d in eff.facts)


def test_accepted_and_contacted_on_time_count_once_per_case_and_department():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    s.feed(dept_event(CaseAccepted, "c1", CGJ, accepted_by="x", on_time=True), at(2, 11))
    s.feed(dept_event(CaseAccepted, "c1", CGJ, accepted_by="x", on_time=True), at(2, 11))
    s.feed(dept_event(CaseContacted, "c1", CGJ, channel="phone", contacted_by="x", on_time=True), at(2, 12))
    reported(s, "c2")
    dispatched(s, "c2", CGJ)
    s.feed(dept_event(CaseAccepted, "c2", CGJ, accepted_by="x", on_time=False), at(3))
    s.feed(dept_event(CaseContacted, "c2", CGJ, channel="phone", contacted_by="x", on_time=False), at(3))
    assert fact(s, CGJ, "dept_cases_received") == 2
    assert fact(s, CGJ, "cases_accepted_on_time") == 1
    assert fact(s, CGJ, "cases_contacted_on_time") == 1


def test_an_approved_return_counts_for_the_old_department_and_the_redispatch_makes_the_case_the_new_ones():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    s.feed(dept_event(CaseContacted, "c1", CGJ, channel="phone", contacted_by="x", on_time=True), at(2, 11))
    s.feed(dept_event(CaseReturnReviewed, "c1", CGJ, approved=True), at(3))
    dispatched(s, "c1", ZHZF, day=3, redispatch=True)
    s.feed(dept_event(CaseAccepted, "c1", ZHZF, accepted_by="y", on_time=True), at(3, 11))
    s.feed(CaseClosed(case_id="c1", on_time=True, handling_seconds=3600, department=ZHZF), at(6))
    s.feed(CaseFeedback(case_id="c1", satisfaction="satisfied", resolved=True), at(7))
    # the old department: received, returned, out of its 响应率/解决率
    assert fact(s, CGJ, "dept_cases_received") == 1
    assert fact(s, CGJ, "returns_approved") == 1
    assert fact(s, CGJ, "dept_cases_in_rates") == 0
    assert fact(s, CGJ, "cases_contacted_on_time") == 0
    assert fact(s, CGJ, "cases_resolved") == 0
    # the new one: everything after the re-dispatch
    assert fact(s, ZHZF, "dept_cases_received") == 1
    assert fact(s, ZHZF, "cases_accepted_on_time") == 1
    assert fact(s, ZHZF, "dept_cases_closed_on_time") == 1
    assert fact(s, ZHZF, "cases_resolved") == 1
    assert fact(s, ZHZF, "feedback_satisfied") == 1
    # the re-dispatch's later deadline is not an extension of the area
    assert s.fact("grid", GRID, M, "cases_late") == 0


def test_a_refused_return_changes_nothing():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    eff = s.feed(dept_event(CaseReturnReviewed, "c1", CGJ, approved=False), at(3))
    assert eff.facts == []


def test_an_approved_exclusion_takes_the_case_out_of_response_resolution_and_satisfaction_only():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    s.feed(dept_event(CaseContacted, "c1", CGJ, channel="phone", contacted_by="x", on_time=True), at(2, 11))
    s.feed(dept_event(CaseAccepted, "c1", CGJ, accepted_by="x", on_time=True), at(2, 11))
    s.feed(CaseClosed(case_id="c1", on_time=True, handling_seconds=3600, department=CGJ), at(4))
    s.feed(CaseFeedback(case_id="c1", satisfaction="unsatisfied", resolved=False), at(5))
    s.feed(dept_event(CaseExclusionReviewed, "c1", CGJ, approved=True), at(6))
    s.feed(dept_event(CaseExclusionReviewed, "c1", CGJ, approved=True), at(6))  # once
    for name in ("dept_cases_in_rates", "cases_contacted_on_time", "feedback_received", "feedback_unsatisfied"):
        assert fact(s, CGJ, name) == 0, name
    assert fact(s, CGJ, "dept_cases_received") == 1
    assert fact(s, CGJ, "cases_accepted_on_time") == 1
    assert fact(s, CGJ, "dept_cases_closed_on_time") == 1
    # the area's 满意率 keeps the feedback
    assert s.fact("grid", GRID, M, "feedback_unsatisfied") == 1


def test_feedback_after_an_exclusion_does_not_count_for_the_department():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    s.feed(dept_event(CaseExclusionReviewed, "c1", CGJ, approved=True), at(3))
    s.feed(dept_event(CaseContacted, "c1", CGJ, channel="phone", contacted_by="x", on_time=True), at(3, 11))
    s.feed(CaseFeedback(case_id="c1", satisfaction="satisfied", resolved=True), at(5))
    assert fact(s, CGJ, "dept_cases_in_rates") == 0
    assert fact(s, CGJ, "cases_contacted_on_time") == 0
    assert fact(s, CGJ, "cases_resolved") == 0
    assert fact(s, CGJ, "feedback_received") == 0


def test_an_exclusion_refused_or_of_another_department_changes_nothing():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    assert s.feed(dept_event(CaseExclusionReviewed, "c1", CGJ, approved=False), at(3)).facts == []
    assert s.feed(dept_event(CaseExclusionReviewed, "c1", ZHZF, approved=True), at(3)).facts == []


def test_extensions_and_supervision_count_once_per_case_yellow_and_red_cards_only():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    granted = dict(stage="handle", previous_due_at=at(7), due_at=at(10))
    s.feed(dept_event(CaseExtensionGranted, "c1", CGJ, **granted), at(5))
    s.feed(dept_event(CaseExtensionGranted, "c1", CGJ, **{**granted, "due_at": at(12)}), at(9))
    s.feed(CaseSupervised(case_id="c1", supervision="listed", level="street", department=CGJ), at(2, 11))
    assert fact(s, CGJ, "cases_supervised") == 0
    s.feed(CaseSupervised(case_id="c1", supervision="yellow_card", level="community", stage="accept",
                          due_at=at(2, 12), department=CGJ), at(2, 13))
    s.feed(CaseSupervised(case_id="c1", supervision="red_card", level="community", stage="contact",
                          due_at=at(2, 14), department=CGJ), at(2, 15))
    assert fact(s, CGJ, "extensions_granted") == 1
    assert fact(s, CGJ, "cases_supervised") == 1
    assert s.fact("grid", GRID, M, "cases_late") == 1  # a granted extension makes the area's case late


def test_feedback_resolved_counts_for_the_department_unresolved_and_unknown_do_not():
    s = Story()
    for case, resolved in (("c1", True), ("c2", False), ("c3", None)):
        reported(s, case)
        dispatched(s, case, CGJ)
        s.feed(CaseFeedback(case_id=case, satisfaction="basically_satisfied", resolved=resolved), at(5))
    assert fact(s, CGJ, "cases_resolved") == 1
    assert fact(s, CGJ, "feedback_received") == 3
    assert fact(s, CGJ, "feedback_basically_satisfied") == 3


# -- 吹哨报到 -------------------------------------------------------------------------------------


def whistle(s: Story, wid: str = "w1", departments=(CGJ, SCJG, ZHZF)):
    s.feed(WhistleBlown(whistle_id=wid, street_id=STREET, departments=departments, report_by=at(2, 12),
                        matter="多部门职责", blown_by="street-officer-02"), at(2, 9))


def test_a_whistle_summons_each_department_once_and_on_time_answers_and_ratings_count_once():
    s = Story()
    whistle(s)
    whistle(s)  # again: nothing new
    s.feed(WhistleAnswered(whistle_id="w1", street_id=STREET, department=CGJ, answered_by="a", on_time=True), at(2, 10))
    s.feed(WhistleAnswered(whistle_id="w1", street_id=STREET, department=CGJ, answered_by="a", on_time=True), at(2, 10))
    s.feed(WhistleAnswered(whistle_id="w1", street_id=STREET, department=SCJG, answered_by="b", on_time=False),
           at(2, 13))
    assert s.feed(WhistleMissed(whistle_id="w1", street_id=STREET, department=ZHZF, report_by=at(2, 12)),
                  at(2, 12)).facts == []
    s.feed(WhistleRated(whistle_id="w1", street_id=STREET, department=CGJ, rating=5), at(3))
    s.feed(WhistleRated(whistle_id="w1", street_id=STREET, department=CGJ, rating=1), at(3))  # once
    s.feed(WhistleRated(whistle_id="w1", street_id=STREET, department=SCJG, rating=2), at(3))
    assert [fact(s, d, "whistles_summoned") for d in (CGJ, SCJG, ZHZF)] == [1, 1, 1]
    assert [fact(s, d, "whistles_answered_on_time") for d in (CGJ, SCJG, ZHZF)] == [1, 0, 0]
    assert fact(s, CGJ, "whistle_rating_sum") == 5 and fact(s, CGJ, "whistles_rated") == 1
    assert fact(s, SCJG, "whistle_rating_sum") == 2


# -- the grid worker's own duties ---------------------------------------------------------------


def test_report_timeliness_counts_cases_registered_by_their_registration_deadline_in_the_report_period():
    s = Story()
    reported(s, "c1", day=2, register_due_day=2)
    s.feed(CaseRegistered(case_id="c1", due_at=at(3), department=CGJ), at(2, 11))  # on time
    reported(s, "c2", day=2, register_due_day=2)
    s.feed(CaseRegistered(case_id="c2", due_at=at(3), department=CGJ), at(2, 13))  # after 12:00
    reported(s, "c3", day=2)  # never registered
    assert s.fact("grid_worker", WORKER, M, "cases_received") == 3
    assert s.fact("grid_worker", WORKER, M, "cases_reported_on_time") == 1
    assert s.fact("grid", GRID, M, "cases_reported_on_time") == 0  # the worker's own duty


def test_verify_timeliness_counts_each_verification_of_a_handling_against_its_deadline_for_the_verifier():
    s = Story()
    reported(s, "c1")
    dispatched(s, "c1", CGJ)
    s.feed(CaseHandled(case_id="c1", result="清理", verify_due_at=at(4, 12)), at(4, 9))
    s.feed(CaseVerified(case_id="c1", passed=False, verifier_id="gw-02", rework_due_at=at(6)), at(4, 11))  # on time
    s.feed(CaseHandled(case_id="c1", result="再清理", verify_due_at=at(6, 12)), at(6, 9))
    s.feed(CaseVerified(case_id="c1", passed=True, verifier_id="gw-02"), at(6, 15))  # late
    s.feed(CaseVerified(case_id="c1", passed=True, verifier_id="gw-02"), at(6, 16))  # no handling to verify
    assert s.fact("grid_worker", "gw-02", M, "verifications_done") == 2
    assert s.fact("grid_worker", "gw-02", M, "verifications_on_time") == 1
    assert s.fact("grid", GRID, M, "cases_reworked") == 1  # the area's 返工率 as before


def patrol(s: Story, day: int, grid: str = GRID, month: int = 11):
    s.feed(PatrolLogged(patrol_id=f"p-{grid}-{month}-{day}", grid_worker_id=WORKER, grid_id=grid,
                        started_at=at(day, 9, month), ended_at=at(day, 10, month)), at(day, 10, month))


def test_november_2026_has_five_mondays():
    assert mondays_in(M) == ("2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30")


def test_patrol_coverage_is_weeks_patrolled_per_grid_over_weeks_due_since_the_worker_was_seen_there():
    s = Story()
    patrol(s, 3)  # week of 11-02
    patrol(s, 4)  # same week
    patrol(s, 12)  # week of 11-09
    patrol(s, 24, GRID_B)  # first seen in GRID_B in the week of 11-23
    w = s.lookup.worker(WORKER)
    # GRID: 5 weeks due, 2 patrolled; GRID_B: weeks of 11-23 and 11-30 due, 1 patrolled
    assert coverage_facts(w, M) == {"patrol_weeks_due": 7.0, "patrol_weeks_covered": 3.0}
    assert coverage_facts(w, "2026-10") == {"patrol_weeks_due": 0.0, "patrol_weeks_covered": 0.0}


def test_the_grid_workers_scorecard_has_its_coverage_and_no_handling_indicators():
    s = Story()
    patrol(s, 3)
    patrol(s, 10)
    pub = publication_for(M, s.table, s.lookup, default_scheme())
    card = next(c for c in pub.scorecards if c.entity_type is EntityType.GRID_WORKER)
    assert card.indicators["patrol_coverage"] == 0.4
    assert "on_time_closure_rate" not in card.indicators and "satisfaction_rate" not in card.indicators
    assert "patrol_coverage" in {a.indicator for a in pub.alerts if a.entity_id == WORKER}


# -- the department scorecard ------------------------------------------------------------------


def test_departments_are_ranked_within_their_district():
    assert parent_of("department", ZHZF, s := Story().lookup) == "110105"
    assert parent_of("department", CGJ, s) == "110105"


def test_a_department_scorecard_has_the_three_rates_and_their_composite_and_an_alert_below_threshold():
    s = Story()
    for i, (contacted, resolved, satisfaction) in enumerate(
            [(True, True, "satisfied"), (True, False, "basically_satisfied"), (False, False, "unsatisfied"),
             (True, True, "satisfied")]):
        case = f"c{i}"
        reported(s, case)
        dispatched(s, case, CGJ)
        s.feed(dept_event(CaseContacted, case, CGJ, channel="phone", contacted_by="x", on_time=contacted), at(2, 11))
        s.feed(CaseFeedback(case_id=case, satisfaction=satisfaction, resolved=resolved), at(6))
    pub = publication_for(M, s.table, s.lookup, default_scheme())
    card = next(c for c in pub.scorecards if c.entity_type is EntityType.DEPARTMENT)
    assert card.entity_id == CGJ and card.parent_id == "110105"
    assert card.indicators["response_rate"] == 0.75
    assert card.indicators["resolution_rate"] == 0.5
    assert card.indicators["satisfaction_rate"] == pytest.approx((2 + 0.9) / 4)
    expected = 0.30 * 0.75 + 0.35 * 0.5 + 0.35 * 0.725
    assert card.indicators["three_rates"] == pytest.approx(expected, abs=1e-4)  # 0.65375, published to 4 places
    assert card.details["three_rates"].pillar == "satisfaction"
    alerted = {a.indicator for a in pub.alerts if a.entity_id == CGJ}
    assert {"response_rate", "resolution_rate", "satisfaction_rate", "three_rates"} <= alerted


def test_a_departments_facts_count_in_the_period_it_received_the_case_so_no_rate_passes_one():
    """Dispatched on 30 November, contacted, supervised, rated and resolved in December: every
    fact of the case counts in November, beside the received count it is a rate of."""
    s = Story()
    reported(s, "c1", day=28)
    s.feed(CaseDispatched(case_id="c1", department=CGJ, assignee_id="staff-1", due_at=at(4, month=12),
                          grid_id=GRID), at(30, 10))
    december = at(2, 10, month=12)
    s.feed(dept_event(CaseContacted, "c1", CGJ, channel="phone", contacted_by="staff-1", on_time=True), december)
    s.feed(CaseSupervised(case_id="c1", supervision="yellow_card", level="community", stage="handle",
                          department=CGJ, grid_id=GRID), december)
    s.feed(CaseFeedback(case_id="c1", satisfaction="satisfied", resolved=True, department=CGJ, grid_id=GRID),
           december)
    for name in ("dept_cases_received", "cases_contacted_on_time", "cases_supervised", "cases_resolved",
                 "feedback_received"):
        assert fact(s, CGJ, name, "2026-11") == 1, name
        assert fact(s, CGJ, name, "2026-12") == 0, name
