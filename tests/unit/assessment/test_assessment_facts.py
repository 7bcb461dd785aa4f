"""facts_from_event: every consumed payload class → counter increments, attributed and reproducible."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.assessment import ReviewRecorded
from schemas.common import Event
from schemas.grid import (
    CaseClosed,
    CaseDismissed,
    CaseDispatched,
    CaseEscalated,
    CaseFeedback,
    CaseHandled,
    CaseOverdue,
    CaseRegistered,
    CaseReported,
    CaseVerified,
    Location,
    PatrolLogged,
    Reporter,
)
from schemas.orders import (
    MemberRegistered,
    OrderAccepted,
    OrderCancelled,
    OrderCompleted,
    OrderDeclined,
    OrderDispatched,
    OrderDispatchExpired,
    OrderEvaluated,
    OrderPlaced,
    PostClaimed,
    PostReleased,
)
from schemas.points import AccountOpened, DeedApproved, DeedRejected, DeedSubmitted, TransferPosted, TransferRefused
from services.assessment.domain import (
    CONSUMED_TYPES,
    MemoryLookup,
    facts_by_entity,
    facts_from_event,
    parent_of,
    ref_from_json,
    replay,
)

from assessment_builders import COMMUNITY, CST, DISTRICT, GRID, MEMBER, STREET, UNIT, WORKER, Story, at

M, Q, Y = "2026-11", "2026-Q4", "2026"
CASE = "case-1"
ORDER = "order-1"
WHERE = Location(lat=39.9, lon=116.4, address="金台里3号楼")


def case_reported(case=CASE, grid=GRID, kind="grid_worker", reporter=WORKER, **extra) -> CaseReported:
    return CaseReported(case_id=case, grid_id=grid, category="environment", description="垃圾堆放", location=WHERE,
                        reporter=Reporter(kind=kind, id=reporter), **extra)


def report(story: Story, case=CASE, day=2, kind="grid_worker", reporter=WORKER, grid=GRID):
    return story.feed(case_reported(case, grid, kind, reporter), at(day))


def register(story: Story, case=CASE, day=2):
    return story.feed(CaseRegistered(case_id=case, due_at=at(day, 10), department="城管"), at(day, 9))


def dispatch(story: Story, case=CASE, day=2, due_day=5, due_month=11):
    return story.feed(CaseDispatched(case_id=case, department="城管", assignee_id="staff-1",
                                     due_at=at(due_day, 9, due_month)), at(day, 10))


def close(story: Story, case=CASE, day=4, on_time=True, seconds=7200):
    return story.feed(CaseClosed(case_id=case, on_time=on_time, handling_seconds=seconds), at(day))


def opened_case(story: Story, **kw) -> Story:
    report(story, **kw)
    register(story)
    dispatch(story)
    return story


# -- grid ---------------------------------------------------------------------------------


def test_a_report_counts_as_received_for_grid_community_street_and_reporting_grid_worker_in_three_periods():
    s = Story()
    deltas = report(s).facts
    assert {(d.entity_type, d.entity_id) for d in deltas} == {
        ("grid", GRID), ("community", COMMUNITY), ("street", STREET), ("grid_worker", WORKER),
    }
    assert {d.period for d in deltas} == {M, Q, Y}
    assert len(deltas) == 12 and all(d.fact == "cases_received" and d.delta == 1 for d in deltas)


def test_a_residents_report_counts_for_the_area_only():
    s = Story()
    deltas = report(s, kind="resident", reporter="resident-42").facts
    assert {d.entity_type for d in deltas} == {"grid", "community", "street"}


def test_registration_counts_in_the_period_of_the_report():
    s = Story()
    report(s, day=30)
    s.feed(CaseRegistered(case_id=CASE, due_at=datetime(2026, 12, 1, 0, 30, tzinfo=CST), department="城管"),
           datetime(2026, 12, 1, 0, 5, tzinfo=at(1).tzinfo))
    assert s.fact("grid", GRID, "2026-11", "cases_registered") == 1
    assert s.fact("grid", GRID, "2026-12", "cases_registered") == 0


def test_a_registration_does_not_make_a_case_due_its_due_at_is_the_dispatch_deadline():
    s = Story()
    report(s)
    register(s)
    assert s.fact("grid", GRID, M, "cases_due") == 0


def test_a_case_registered_without_a_seen_report_counts_as_received_too():
    s = Story()
    s.feed(CaseRegistered(case_id=CASE, due_at=at(2, 10), department="城管", grid_id=GRID), at(2))
    assert s.fact("grid", GRID, M, "cases_received") == 1
    assert s.fact("grid", GRID, M, "cases_registered") == 1


def test_a_dismissed_case_stays_received_and_unregistered():
    s = Story()
    report(s)
    eff = s.feed(CaseDismissed(case_id=CASE, reason="duplicate", duplicate_of="case-0"), at(2, 10))
    assert eff.facts == []
    assert s.fact("grid", GRID, M, "cases_received") == 1
    assert s.fact("grid", GRID, M, "cases_registered") == 0


def test_the_first_dispatch_counts_dispatched_and_makes_the_case_due_in_the_period_of_its_handling_deadline():
    s = Story()
    report(s, day=28)
    register(s, day=28)
    dispatch(s, day=28, due_day=2, due_month=12)
    assert s.fact("grid", GRID, "2026-11", "cases_dispatched") == 1
    assert s.fact("grid", GRID, "2026-12", "cases_due") == 1
    assert s.fact("grid", GRID, "2026-11", "cases_due") == 0


def test_a_later_dispatch_with_a_later_deadline_is_an_extension_counted_once():
    s = opened_case(Story())
    dispatch(s, day=3, due_day=8)
    dispatch(s, day=4, due_day=9)
    assert s.fact("grid", GRID, M, "cases_dispatched") == 1
    assert s.fact("grid", GRID, M, "cases_due") == 1
    assert s.fact("grid", GRID, M, "cases_late") == 1


def test_a_handled_or_escalated_case_changes_no_counter():
    s = opened_case(Story())
    assert s.feed(CaseHandled(case_id=CASE, result="已清理"), at(3)).facts == []
    assert s.feed(CaseEscalated(case_id=CASE, from_level="community", to_level="street", reason="overdue"),
                  at(3)).facts == []


def test_a_failed_verification_is_rework_counted_once_per_case_in_the_deadline_cohort():
    s = opened_case(Story())
    s.feed(CaseVerified(case_id=CASE, passed=False), at(3))
    s.feed(CaseVerified(case_id=CASE, passed=False), at(4))
    s.feed(CaseVerified(case_id=CASE, passed=True), at(4, 12))
    assert s.fact("grid", GRID, M, "cases_reworked") == 1
    assert s.fact("grid_worker", WORKER, M, "cases_reworked") == 1


def test_a_dispatch_after_rework_is_not_an_extension():
    s = opened_case(Story())
    s.feed(CaseVerified(case_id=CASE, passed=False), at(3))
    dispatch(s, day=3, due_day=7)
    assert s.fact("grid", GRID, M, "cases_late") == 0


def test_closing_counts_closed_on_time_and_handling_seconds_in_the_deadline_cohort():
    s = opened_case(Story())
    close(s, day=4, on_time=True, seconds=7200)
    f = s.facts("grid", GRID, M)
    assert (f["cases_closed"], f["cases_closed_on_time"], f["handling_seconds"]) == (1, 1, 7200)
    close(s, day=5)  # a second close of the same case changes nothing
    assert s.facts("grid", GRID, M) == f


def test_a_late_close_is_closed_but_not_on_time():
    s = opened_case(Story())
    close(s, day=6, on_time=False, seconds=400000)
    assert s.fact("grid", GRID, M, "cases_closed") == 1
    assert s.fact("grid", GRID, M, "cases_closed_on_time") == 0


def test_a_case_closed_without_a_handling_deadline_is_due_when_closed_so_closed_never_exceeds_due():
    s = Story()
    report(s)
    register(s)
    close(s, day=3)
    assert s.fact("grid", GRID, M, "cases_due") == 1
    assert s.fact("grid", GRID, M, "cases_closed") == 1


def test_an_overdue_handling_or_verification_deadline_is_late_once():
    s = opened_case(Story())
    s.feed(CaseOverdue(case_id=CASE, due_at=at(5), level="community", stage="handle"), at(5, 10))
    s.feed(CaseOverdue(case_id=CASE, due_at=at(5), level="street", stage="verify"), at(6, 10))
    assert s.fact("grid", GRID, M, "cases_late") == 1


@pytest.mark.parametrize("stage", ["register", "dispatch"])
def test_a_missed_intake_deadline_is_not_an_extension(stage):
    s = Story()
    report(s)
    eff = s.feed(CaseOverdue(case_id=CASE, due_at=at(2, 10), level="community", stage=stage), at(2, 11))
    assert eff.facts == []


def test_an_overdue_without_a_stage_counts_as_late():
    s = opened_case(Story())
    s.feed(CaseOverdue(case_id=CASE, due_at=at(5), level="community"), at(5, 10))
    assert s.fact("grid", GRID, M, "cases_late") == 1


@pytest.mark.parametrize("satisfaction", ["satisfied", "basically_satisfied", "unsatisfied"])
def test_the_first_feedback_of_a_case_counts_by_its_satisfaction(satisfaction):
    s = opened_case(Story())
    s.feed(CaseFeedback(case_id=CASE, satisfaction=satisfaction), at(6))
    s.feed(CaseFeedback(case_id=CASE, satisfaction="satisfied"), at(7))
    assert s.fact("grid", GRID, M, "feedback_received") == 1
    assert s.fact("grid", GRID, M, f"feedback_{satisfaction}") == 1


def test_a_patrol_counts_for_the_grid_worker_and_the_area_at_its_start():
    s = Story()
    s.feed(PatrolLogged(patrol_id="p1", grid_id=GRID, grid_worker_id=WORKER, started_at=datetime(2026, 11, 30, 23, tzinfo=CST),
                        ended_at=datetime(2026, 12, 1, 0, 30, tzinfo=CST)),
           at(1, 1, month=12))
    assert s.fact("grid_worker", WORKER, "2026-11", "patrols_logged") == 1
    assert s.fact("street", STREET, "2026-11", "patrols_logged") == 1
    assert s.fact("grid", GRID, "2026-11", "patrol_seconds") == 5400
    assert s.fact("grid", GRID, "2026-12", "patrols_logged") == 0


def test_extras_on_a_later_event_place_a_case_never_seen_reported():
    s = Story()
    s.feed(CaseFeedback(case_id="c9", satisfaction="satisfied", grid_id=GRID), at(3))
    assert s.fact("community", COMMUNITY, M, "feedback_satisfied") == 1


def test_an_event_about_an_unknown_place_counts_for_nobody():
    s = Story()
    assert s.feed(CaseFeedback(case_id="c9", satisfaction="satisfied"), at(3)).facts == []


def test_a_report_missing_optional_fields_is_tolerated():
    s = Story()
    deltas = s.feed(case_reported(kind="system", reporter="sensor-7"), at(2)).facts
    assert {d.entity_type for d in deltas} == {"grid", "community", "street"}


def test_the_occurrence_time_in_data_wins_over_the_envelope_time():
    s = Story()
    s.feed(PatrolLogged(patrol_id="p1", grid_id=GRID, grid_worker_id=WORKER, started_at=at(2), ended_at=at(2, 10)), at(2))
    s.feed(case_reported(occurred_at=datetime(2026, 10, 31, 23, tzinfo=CST)), at(1))
    assert s.fact("grid", GRID, "2026-10", "cases_received") == 1
    assert s.fact("grid", GRID, M, "patrols_logged") == 1


# -- orders -------------------------------------------------------------------------------


def member_story() -> Story:
    s = Story()
    s.feed(MemberRegistered(member_id=MEMBER, community_id=COMMUNITY, unit_id=UNIT), at(1))
    s.feed(OrderPlaced(order_id=ORDER, resident_id="r-1", community_id=COMMUNITY, grid_id=GRID, category="daily_care",
                       description="送餐", source_case_id=None), at(2))
    return s


def dispatch_order(s: Story, day=2, hour=10, assignee=MEMBER):
    return s.feed(OrderDispatched(order_id=ORDER, assignee_id=assignee, dispatched_by="auto",
                                  accept_by=at(day, hour) + timedelta(days=1)), at(day, hour))


def test_member_registration_counts_for_community_street_and_unit_and_places_the_unit():
    s = member_story()
    assert s.fact("unit", UNIT, M, "members_reported") == 1
    assert s.fact("community", COMMUNITY, M, "members_reported") == 1
    assert parent_of("member", MEMBER, s.lookup) == COMMUNITY
    assert parent_of("unit", UNIT, s.lookup) == STREET
    again = s.feed(MemberRegistered(member_id=MEMBER, community_id=COMMUNITY, unit_id=UNIT), at(1))
    assert again.facts == []


def test_a_placed_order_counts_for_its_community_and_street():
    s = member_story()
    assert s.fact("community", COMMUNITY, M, "orders_placed") == 1
    assert s.fact("street", STREET, M, "orders_placed") == 1


def test_each_dispatch_counts_for_the_member_their_unit_and_the_community():
    s = member_story()
    deltas = dispatch_order(s).facts
    assert {(d.entity_type, d.entity_id) for d in deltas} == {
        ("member", MEMBER), ("unit", UNIT), ("community", COMMUNITY), ("street", STREET),
    }


def test_acceptance_counts_in_the_period_of_the_dispatch():
    s = member_story()
    dispatch_order(s, day=30, hour=22)
    s.feed(OrderAccepted(order_id=ORDER, assignee_id=MEMBER), at(1, 8, month=12))
    assert s.fact("member", MEMBER, "2026-11", "orders_accepted") == 1
    assert s.fact("member", MEMBER, "2026-11", "orders_dispatched") == 1


def test_a_declined_or_expired_dispatch_stays_counted_as_dispatched_without_acceptance():
    s = member_story()
    dispatch_order(s)
    s.feed(OrderDeclined(order_id=ORDER, assignee_id=MEMBER, reason="busy"), at(2, 11))
    dispatch_order(s, hour=12)
    s.feed(OrderDispatchExpired(order_id=ORDER, assignee_id=MEMBER), at(3, 12))
    f = s.facts("member", MEMBER, M)
    assert (f["orders_dispatched"], f.get("orders_accepted", 0), f["orders_declined"], f["orders_dispatch_expired"]) == (2, 0, 1, 1)


def test_completion_counts_in_the_period_of_the_acceptance_with_service_minutes():
    s = member_story()
    dispatch_order(s, day=29)
    s.feed(OrderAccepted(order_id=ORDER, assignee_id=MEMBER), at(30))
    s.feed(OrderCompleted(order_id=ORDER, assignee_id=MEMBER, service_minutes=90), at(2, month=12))
    s.feed(OrderCompleted(order_id=ORDER, assignee_id=MEMBER, service_minutes=90), at(2, month=12))
    assert s.fact("member", MEMBER, "2026-11", "orders_completed") == 1
    assert s.fact("unit", UNIT, "2026-11", "service_minutes") == 90


def test_an_evaluation_counts_rating_and_pass_for_the_assignee_once():
    s = member_story()
    for _ in range(2):
        s.feed(OrderEvaluated(order_id=ORDER, assignee_id=MEMBER, rating=4, passed=True, evaluator_id="op-1"), at(5))
    f = s.facts("member", MEMBER, M)
    assert (f["orders_evaluated"], f["rating_sum"], f["orders_passed"]) == (1, 4, 1)
    assert s.fact("community", COMMUNITY, M, "rating_sum") == 4


def test_a_failed_evaluation_is_evaluated_but_not_passed():
    s = member_story()
    s.feed(OrderEvaluated(order_id=ORDER, assignee_id=MEMBER, rating=2, passed=False, evaluator_id="op-1"), at(5))
    assert s.fact("member", MEMBER, M, "orders_evaluated") == 1
    assert s.fact("member", MEMBER, M, "orders_passed") == 0


def test_an_order_assigned_to_a_unit_counts_for_the_unit():
    s = member_story()
    deltas = dispatch_order(s, assignee=UNIT).facts
    assert ("unit", UNIT) in {(d.entity_type, d.entity_id) for d in deltas}
    assert "member" not in {d.entity_type for d in deltas}


def test_an_unknown_assignee_counts_only_for_the_community():
    s = member_story()
    assert {d.entity_type for d in dispatch_order(s, assignee="volunteer-9").facts} == {"community", "street"}


def test_an_evaluation_of_an_order_never_seen_placed_uses_its_community_extra():
    s = Story()
    s.feed(MemberRegistered(member_id=MEMBER, community_id=COMMUNITY, unit_id=UNIT), at(1))
    s.feed(OrderEvaluated(order_id="o-9", assignee_id=MEMBER, rating=5, passed=True, evaluator_id="op",
                          community_id=COMMUNITY), at(5))
    assert s.fact("community", COMMUNITY, M, "orders_evaluated") == 1
    assert s.fact("member", MEMBER, M, "orders_evaluated") == 1


def test_a_claimed_post_counts_for_the_member_and_community():
    s = member_story()
    s.feed(PostClaimed(member_id=MEMBER, post_id="post-1", community_id=COMMUNITY, categories=["daily_care"]), at(3))
    assert s.fact("member", MEMBER, M, "posts_claimed") == 1
    assert s.fact("community", COMMUNITY, M, "posts_claimed") == 1


@pytest.mark.parametrize("event", [
    OrderCancelled(order_id=ORDER, reason="no longer needed"),
    PostReleased(member_id=MEMBER, post_id="post-1"),
], ids=lambda e: e.TYPE)
def test_cancellations_and_released_posts_change_no_counter(event):
    assert member_story().feed(event, at(4)).facts == []


# -- points -------------------------------------------------------------------------------


def points_story() -> Story:
    s = member_story()
    s.feed(AccountOpened(account_id="resident:m7", holder_id=MEMBER, kind="resident"), at(1))
    s.feed(AccountOpened(account_id="resident:r2", holder_id="r2", kind="resident", community_id=COMMUNITY), at(1))
    s.feed(AccountOpened(account_id="issuer:c", holder_id=COMMUNITY, kind="issuer"), at(1))
    s.feed(AccountOpened(account_id="merchant:m", holder_id="shop", kind="merchant"), at(1))
    return s


def transfer(s: Story, kind: str, debit: str, credit: str, amount: int, day=5):
    return s.feed(TransferPosted(transfer_id=f"t-{kind}-{day}-{amount}", debit_account=debit, credit_account=credit,
                                 amount=amount, reason=kind, source_event_id=None), at(day))


def test_awarded_points_count_for_the_member_their_unit_and_community():
    s = points_story()
    transfer(s, "award", "issuer:c", "resident:m7", 10)
    assert s.fact("member", MEMBER, M, "points_earned") == 10
    assert s.fact("unit", UNIT, M, "points_earned") == 10
    assert s.fact("community", COMMUNITY, M, "points_earned") == 10


def test_a_resident_who_is_not_a_member_counts_in_the_community_of_the_account():
    s = points_story()
    deltas = transfer(s, "award", "issuer:c", "resident:r2", 5).facts
    assert "member" not in {d.entity_type for d in deltas}
    assert s.fact("community", COMMUNITY, M, "points_earned") == 5


def test_an_account_awarded_twice_in_a_month_is_one_active_volunteer():
    s = points_story()
    transfer(s, "award", "issuer:c", "resident:m7", 10, day=5)
    transfer(s, "award", "issuer:c", "resident:m7", 5, day=6)
    transfer(s, "award", "issuer:c", "resident:r2", 5, day=7)
    assert s.fact("community", COMMUNITY, M, "active_volunteers") == 2
    assert s.fact("unit", UNIT, M, "active_volunteers") == 1
    transfer(s, "award", "issuer:c", "resident:m7", 5, day=2)
    s.feed(TransferPosted(transfer_id="dec", debit_account="issuer:c", credit_account="resident:m7", amount=3,
                          reason="award", source_event_id=None), at(3, month=12))
    assert s.fact("community", COMMUNITY, "2026-12", "active_volunteers") == 1
    assert s.fact("community", COMMUNITY, Q, "active_volunteers") == 2


def test_an_adjustment_corrects_points_earned_in_both_directions():
    s = points_story()
    transfer(s, "award", "issuer:c", "resident:m7", 10)
    transfer(s, "adjustment", "resident:m7", "issuer:c", 4)
    assert s.fact("member", MEMBER, M, "points_earned") == 6
    transfer(s, "adjustment", "issuer:c", "resident:m7", 1, day=6)
    assert s.fact("member", MEMBER, M, "points_earned") == 7
    assert s.fact("community", COMMUNITY, M, "active_volunteers") == 1


@pytest.mark.parametrize("kind, debit, credit", [
    ("redemption", "resident:m7", "merchant:m"), ("expiry", "resident:m7", "issuer:c"),
])
def test_spending_or_expiring_points_does_not_reduce_points_earned(kind, debit, credit):
    s = points_story()
    assert transfer(s, kind, debit, credit, 5).facts == []


def test_a_transfer_that_names_only_its_kind_counts_by_it():
    s = points_story()
    s.feed(TransferPosted(transfer_id="t", debit_account="issuer:c", credit_account="resident:m7", amount=8,
                          kind="award", source_event_id=None), at(5))
    assert s.fact("member", MEMBER, M, "points_earned") == 8


def test_an_approved_deed_counts_for_the_member():
    s = points_story()
    s.feed(DeedApproved(deed_id="d1", account_id="resident:m7", category="lost_property", points=8), at(5))
    assert s.fact("member", MEMBER, M, "deeds_approved") == 1


@pytest.mark.parametrize("event", [
    DeedSubmitted(deed_id="d1", account_id="resident:m7", category="civility"),
    DeedRejected(deed_id="d1", account_id="resident:m7", category="civility", reason="not witnessed"),
    TransferRefused(transfer_id="t", reason="cap reached"),
], ids=lambda e: e.TYPE)
def test_submitted_rejected_deeds_and_refused_transfers_change_no_counter(event):
    assert points_story().feed(event, at(5)).facts == []


# -- reviews --------------------------------------------------------------------------------


def test_a_review_counts_for_its_subject_in_its_period_and_the_enclosing_ones():
    s = Story()
    s.feed(ReviewRecorded(review_id="r1", reviewer_id=COMMUNITY, subject_type="unit", subject_id=UNIT, period="2026-Q4",
                          score=80), at(5))
    assert s.fact("unit", UNIT, Q, "review_score_sum") == 80
    assert s.fact("unit", UNIT, Y, "reviews_received") == 1
    assert s.fact("unit", UNIT, M, "reviews_received") == 0


def test_a_replacing_review_changes_the_sum_not_the_count():
    s = Story()
    s.feed(ReviewRecorded(review_id="r1", reviewer_id=UNIT, subject_type="community", subject_id=COMMUNITY, period=M,
                          score=70), at(5))
    s.feed(ReviewRecorded(review_id="r2", reviewer_id=UNIT, subject_type="community", subject_id=COMMUNITY, period=M,
                          score=90, replaces_review_id="r1", replaced_score=70), at(6))
    assert s.fact("community", COMMUNITY, M, "reviews_received") == 1
    assert s.fact("community", COMMUNITY, M, "review_score_sum") == 90


# -- whole-history properties -----------------------------------------------------------


def month_of_history() -> list[tuple[Event, datetime]]:
    s: list[tuple[Event, datetime]] = []
    s.append((MemberRegistered(member_id=MEMBER, community_id=COMMUNITY, unit_id=UNIT), at(1)))
    for i in range(4):
        c = f"c{i}"
        s.append((case_reported(c), at(2 + i)))
        s.append((CaseRegistered(case_id=c, due_at=at(2 + i, 10), department="城管"), at(2 + i, 9)))
        s.append((CaseDispatched(case_id=c, department="城管", assignee_id="x", due_at=at(5 + i)), at(2 + i, 10)))
        s.append((CaseClosed(case_id=c, on_time=i != 3, handling_seconds=3600), at(4 + i)))
        s.append((CaseFeedback(case_id=c, satisfaction="satisfied"), at(5 + i)))
    s.append((OrderDispatched(order_id=ORDER, assignee_id=MEMBER, dispatched_by="auto", accept_by=at(3)), at(2)))
    s.append((OrderAccepted(order_id=ORDER, assignee_id=MEMBER), at(2, 11)))
    return s


def test_replaying_the_same_history_reproduces_every_counter():
    first, lookup = replay(month_of_history())
    second, _ = replay(month_of_history())
    assert first == second
    assert first[("grid", GRID, M, "cases_closed_on_time")] == 3
    assert first[("grid", GRID, M, "cases_due")] == 4


def test_events_delivered_twice_change_no_counter():
    history = month_of_history()
    once, _ = replay(history)
    # every event twice in a row — except order dispatches, which are attempts (each counts;
    # the inbox drops a re-delivered one by its envelope id)
    doubled = [e for e in history for _ in range(1 if isinstance(e[0], OrderDispatched) else 2)]
    twice, _ = replay(doubled)
    assert twice == once


def test_facts_by_entity_groups_one_periods_counters():
    table, _ = replay(month_of_history())
    by = facts_by_entity(table, M)
    assert by[("grid_worker", WORKER)]["cases_received"] == 4
    assert by[("member", MEMBER)] == {"orders_dispatched": 1, "orders_accepted": 1}
    assert ("grid", GRID) not in facts_by_entity(table, "2026-10")


def test_parents_are_derived_from_codes_and_refs():
    patrol = PatrolLogged(patrol_id="p", grid_id=GRID, grid_worker_id=WORKER, started_at=at(9), ended_at=at(9, 10))
    _, lookup = replay(month_of_history() + [(patrol, at(9))])
    assert parent_of("grid", GRID, lookup) == COMMUNITY
    assert parent_of("community", COMMUNITY, lookup) == STREET
    assert parent_of("street", STREET, lookup) == DISTRICT
    assert parent_of("grid_worker", WORKER, lookup) == COMMUNITY
    assert parent_of("member", MEMBER, lookup) == COMMUNITY
    assert parent_of("unit", UNIT, lookup) == STREET
    assert parent_of("member", "stranger", lookup) is None


def test_refs_round_trip_through_json():
    _, lookup = replay(month_of_history())
    for (kind, _), ref in lookup.refs.items():
        assert ref_from_json(kind, ref.model_dump(mode="json")) == ref


def test_unknown_event_types_change_nothing_and_every_upstream_type_is_handled():
    assert facts_from_event(CaseHandled(case_id="x", result="已清理"), at(1), MemoryLookup()) == []
    for t in ["grid.case.reported.v1", "grid.case.closed.v1", "grid.patrol.logged.v1", "orders.order.evaluated.v1",
              "points.transfer.posted.v1", "assessment.review.recorded.v1"]:
        assert t in CONSUMED_TYPES


def test_a_naive_event_time_is_refused():
    with pytest.raises(ValueError):
        facts_from_event(case_reported("x"), datetime(2026, 11, 1), MemoryLookup())


def test_utc_event_times_are_counted_in_shanghai_periods():
    deltas = facts_from_event(case_reported("x"), datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc), MemoryLookup())
    assert {d.period for d in deltas} == {"2026-12", "2026-Q4", "2026"}
