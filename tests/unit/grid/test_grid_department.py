"""The department's part of a case: 签收, 退单 and its review, 先行联系, 管控 of a severe hazard,
延期 and its review, 不合理诉求 and its review, 挂牌督办 and 销号; every refusal by name."""
from __future__ import annotations

from datetime import timedelta

import pytest
from grid_builders import (
    CASE, CGW, DEPARTMENTS, T0, ZHZF, World, dispatch, feedback, handle, register, report, types, verify, world_at,
)

from schemas.grid import (
    AcceptCase, CaseAccepted, CaseContacted, CaseDispatched, CaseExtensionGranted, CaseReturnReviewed,
    CaseSupervised, ContactReporter, ControlHazard, RequestExclusion, RequestExtension, ReturnCase, ReviewExclusion,
    ReviewExtension, ReviewReturn, Stage, Supervision,
)
from services.grid.domain import CaseStatus, Rejected, check_overdue, next_check_at

SEVERE = dict(category="hazard.fire", grade="severe", description="仓库堆放易燃物")
XFJY = "110105.xfjy"


def accept(**kw) -> AcceptCase:
    return AcceptCase(case_id=CASE, **kw)


def give_back(**kw) -> ReturnCase:
    return ReturnCase(case_id=CASE, reason=kw.pop("reason", "不属于本部门职责"), **kw)


def review_return(approved: bool = True, **kw) -> ReviewReturn:
    if approved:
        kw.setdefault("department", ZHZF)
        kw.setdefault("assignee_id", "zhzf-7")
    return ReviewReturn(case_id=CASE, approved=approved, **kw)


def contact(**kw) -> ContactReporter:
    return ContactReporter(case_id=CASE, channel=kw.pop("channel", "phone"), **kw)


def control(**kw) -> ControlHazard:
    return ControlHazard(case_id=CASE, measures=kw.pop("measures", "已清除易燃物, 设置警戒"), **kw)


def extend(until, **kw) -> RequestExtension:
    return RequestExtension(case_id=CASE, until=until, reason=kw.pop("reason", "需协调产权单位"), **kw)


def review_extension(granted: bool = True, **kw) -> ReviewExtension:
    return ReviewExtension(case_id=CASE, granted=granted, **kw)


def exclude(**kw) -> RequestExclusion:
    return RequestExclusion(case_id=CASE, reason=kw.pop("reason", "诉求超出政策范围"), **kw)


def review_exclusion(approved: bool = True, **kw) -> ReviewExclusion:
    return ReviewExclusion(case_id=CASE, approved=approved, **kw)


def refused(w: World, command, reason: str, **ctx) -> Rejected:
    with pytest.raises(Rejected) as e:
        w.run(command, **ctx)
    assert e.value.reason == reason
    return e.value


def severe_dispatched() -> World:
    w = World()
    for cmd in (report(**SEVERE), register(department=None), dispatch(department=XFJY)):
        w.run(cmd)
        w.tick(minutes=1)
    return w


# -- the register and registration -------------------------------------------------------------


def test_registration_proposes_the_responsible_department_and_takes_it_when_none_is_named():
    w = World()
    w.run(report(**SEVERE))
    [ev] = w.run(register(department=None))
    assert (ev.proposed_department, ev.department) == (XFJY, XFJY)  # hazard.fire → 区消防救援支队
    assert w.state().department == XFJY


def test_registration_may_name_another_registered_department_and_still_records_the_proposal():
    w = World()
    w.run(report())
    [ev] = w.run(register(department=ZHZF))
    assert (ev.proposed_department, ev.department) == (CGW, ZHZF)


def test_registration_refuses_a_department_not_in_the_register():
    w = World()
    w.run(report())
    e = refused(w, register(department="城管办"), "unknown_department")
    assert e.field == "department"


def test_registration_without_a_department_is_refused_when_the_register_names_none():
    w = World()
    w.run(report())
    refused(w, register(department=None), "unknown_department", proposed_department=None, department_known=False)


def test_dispatch_to_a_department_not_in_the_register_is_refused():
    w = world_at("registered")
    refused(w, dispatch(department="110105.nosuch"), "unknown_department")
    assert "110105.nosuch" not in DEPARTMENTS


# -- 签收 ------------------------------------------------------------------------------------


def test_accept_on_time_meets_the_accept_deadline():
    w = world_at("dispatched")
    [ev] = w.run(accept(accepted_by="cgw-1"))
    assert isinstance(ev, CaseAccepted) and ev.on_time and (ev.department, ev.accepted_by) == (CGW, "cgw-1")
    assert ev.street_id == "110105001" and ev.category.value == "environment"
    s = w.state()
    assert s.accepted_at == w.now and s.unmet(Stage.ACCEPT) is None


def test_accept_late_is_recorded_late_and_the_missed_deadline_is_reported():
    w = world_at("dispatched")
    w.tick(hours=3)
    [ev] = w.run(accept())
    assert ev.on_time is False and ev.accepted_by == "staff-1"  # no sender given: the assignee
    assert [e.stage for e in check_overdue(w.state(), w.now, w.policy) if e.TYPE.endswith("overdue.v1")] == [Stage.ACCEPT]


def test_accept_only_once():
    w = world_at("dispatched")
    w.run(accept())
    refused(w, accept(), "already_accepted")


def test_accept_only_while_dispatched():
    refused(world_at("registered"), accept(), "illegal_transition")
    refused(world_at("handled"), accept(), "illegal_transition")


def test_handling_takes_the_case_so_it_meets_an_unmet_accept_deadline():
    w = world_at("dispatched")
    w.run(handle())
    assert w.state().unmet(Stage.ACCEPT) is None


# -- 退单 ------------------------------------------------------------------------------------


def test_a_return_awaits_review_and_blocks_accept_and_handle():
    w = world_at("dispatched")
    [ev] = w.run(give_back(returned_by="cgw-1"))
    assert ev.TYPE == "grid.case.returned.v1" and ev.department == CGW and ev.reason == "不属于本部门职责"
    assert w.state().return_pending
    refused(w, accept(), "return_pending")
    refused(w, handle(), "return_pending")
    refused(w, give_back(), "return_pending")  # not twice pending


def test_a_return_only_before_handling():
    refused(world_at("handled"), give_back(), "illegal_transition")
    refused(world_at("registered"), give_back(), "illegal_transition")


def test_an_approved_return_redispatches_to_another_department_with_fresh_deadlines():
    w = world_at("dispatched")
    w.run(accept())
    w.run(give_back())
    w.tick(hours=1)
    reviewed, dispatched = w.run(review_return(reviewer_id="co-1"))
    assert isinstance(reviewed, CaseReturnReviewed) and reviewed.approved and reviewed.department == CGW
    assert isinstance(dispatched, CaseDispatched) and dispatched.redispatch
    assert (dispatched.department, dispatched.assignee_id) == (ZHZF, "zhzf-7")
    # fresh deadlines from the re-dispatch: 2 working days to handle, 2 working hours to accept
    # (10:03 on a Monday: 12:00-13:30 is no working time, so 2 working hours end at 13:33)
    assert dispatched.due_at == w.now + timedelta(days=2)
    assert dispatched.accept_due_at == w.now.replace(hour=13, minute=33)
    s = w.state()
    assert (s.status, s.department, s.return_pending, s.accepted_at, s.return_count) == (
        CaseStatus.DISPATCHED, ZHZF, False, None, 1)
    # the previous department's part ended; the new one's runs from now
    unmet = {d.stage: d for d in s.deadlines if d.met_at is None}
    assert set(unmet) == {Stage.HANDLE, Stage.ACCEPT, Stage.CONTACT}
    assert all(d.started_at == w.now for d in unmet.values())
    [ev] = w.run(accept())  # the new department accepts
    assert ev.department == ZHZF and ev.on_time


def test_an_approved_return_must_go_to_a_different_registered_department():
    w = world_at("dispatched")
    w.run(give_back())
    refused(w, review_return(department=CGW), "same_department")
    refused(w, review_return(department="110105.nosuch"), "unknown_department")
    assert w.state().return_pending


def test_a_refused_return_leaves_the_case_with_its_department():
    w = world_at("dispatched")
    w.run(give_back())
    [ev] = w.run(review_return(approved=False, comment="属于本部门职责"))
    assert ev.approved is False
    s = w.state()
    assert (s.department, s.return_pending) == (CGW, False)
    w.run(accept())
    w.run(handle())


def test_a_review_needs_a_pending_return():
    refused(world_at("dispatched"), review_return(), "no_pending_return")


def test_an_approved_review_names_where_the_case_goes():
    with pytest.raises(ValueError):
        ReviewReturn(case_id=CASE, approved=True)
    with pytest.raises(ValueError):
        ReviewReturn(case_id=CASE, approved=False, department=ZHZF, assignee_id="x")


# -- 先行联系 --------------------------------------------------------------------------------


def test_the_first_contact_counts_and_only_once():
    w = world_at("dispatched")
    w.tick(hours=1)
    [ev] = w.run(contact(channel="visit", contacted_by="cgw-1"))
    assert isinstance(ev, CaseContacted) and ev.on_time and ev.channel.value == "visit"
    assert w.state().contacted_at == w.now and w.state().unmet(Stage.CONTACT) is None
    refused(w, contact(), "already_contacted")


def test_a_late_contact_is_not_on_time():
    w = world_at("dispatched")
    w.tick(hours=7)  # 4 working hours from a Monday morning's dispatch end in the afternoon
    [ev] = w.run(contact())
    assert ev.on_time is False


def test_contact_after_handling_is_still_allowed_but_not_before_dispatch():
    w = world_at("handled")
    [ev] = w.run(contact())
    assert ev.TYPE == "grid.case.contacted.v1"
    refused(world_at("registered"), contact(), "illegal_transition")


# -- 管控, 挂牌督办 and 销号 --------------------------------------------------------------------------


def test_a_severe_hazard_is_listed_at_dispatch_with_a_control_deadline():
    w = World()
    w.run(report(**SEVERE))
    w.run(register(department=None))
    dispatched, listed = w.run(dispatch(department=XFJY))
    assert dispatched.control_due_at == w.now + timedelta(hours=4)
    assert isinstance(listed, CaseSupervised) and listed.supervision is Supervision.LISTED and listed.stage is None
    assert w.state().listed and w.state().unmet(Stage.CONTROL) is not None


def test_a_severe_hazard_is_handled_only_after_control_and_controlled_once():
    w = severe_dispatched()
    refused(w, handle(), "not_controlled")
    [ev] = w.run(control(controlled_by="xf-1"))
    assert ev.TYPE == "grid.case.controlled.v1" and ev.on_time and ev.department == XFJY
    refused(w, control(), "already_controlled")
    w.run(handle())
    refused(w, control(), "illegal_transition")  # before handling only


def test_control_is_for_severe_hazards_only():
    refused(world_at("dispatched"), control(), "not_a_severe_hazard")


def test_a_passed_verification_of_a_listed_case_delists_it_after_closing():
    w = severe_dispatched()
    w.run(control())
    w.run(handle(handled_by="xf-1"))
    evs = w.run(verify(passed=True, verifier_id="gw-1"))
    assert types(evs) == ["grid.case.verified.v1", "grid.case.closed.v1", "grid.case.delisted.v1"]
    assert evs[2].department == XFJY
    assert w.state().delisted_at == w.now


def test_a_case_that_is_not_listed_closes_without_delisting():
    w = world_at("handled")
    assert types(w.run(verify(passed=True))) == ["grid.case.verified.v1", "grid.case.closed.v1"]


def test_a_missed_control_deadline_is_supervised():
    w = severe_dispatched()
    w.tick(hours=5)
    events = check_overdue(w.state(), w.now, w.policy)
    stages = {e.stage for e in events if isinstance(e, CaseSupervised)}
    assert Stage.CONTROL in stages


# -- 延期 ------------------------------------------------------------------------------------


def test_a_granted_extension_moves_the_handling_deadline_and_is_not_a_miss():
    w = world_at("dispatched")
    due = w.state().unmet(Stage.HANDLE).due_at
    until = due + timedelta(days=3)
    [ev] = w.run(extend(until))
    assert (ev.stage, ev.due_at, ev.until) == (Stage.HANDLE, due, until)
    refused(w, extend(until + timedelta(days=1)), "extension_pending")  # one at a time
    [granted] = w.run(review_extension(reviewer_id="co-1"))
    assert isinstance(granted, CaseExtensionGranted)
    assert (granted.previous_due_at, granted.due_at) == (due, until)
    s = w.state()
    assert s.unmet(Stage.HANDLE).due_at == until and s.open_deadline.due_at == until and s.extension_count == 1
    w.now = due + timedelta(days=1)  # past the old deadline, before the new one
    w.apply(check_overdue(w.state(), w.now, w.policy))
    assert {e.stage for e in w.log if e.TYPE == "grid.case.overdue.v1"} == {Stage.ACCEPT, Stage.CONTACT}
    w.run(handle())
    w.tick(minutes=5)
    [_, closed] = w.run(verify(passed=True))
    assert closed.on_time is True  # late accept and contact do not decide 按期办结; the moved deadline was met


def test_a_granted_extension_closes_on_time():
    w = world_at("dispatched")
    due = w.state().unmet(Stage.HANDLE).due_at
    w.run(accept())
    w.run(contact())
    w.run(extend(due + timedelta(days=3)))
    w.run(review_extension(until=due + timedelta(days=1)))  # granted to another until
    assert w.state().unmet(Stage.HANDLE).due_at == due + timedelta(days=1)
    w.now = due + timedelta(hours=12)
    w.run(handle())
    w.tick(minutes=5)
    [_, closed] = w.run(verify(passed=True))
    assert closed.on_time is True


def test_an_extension_is_asked_for_a_later_due_in_the_future_before_the_deadline_passes():
    w = world_at("dispatched")
    due = w.state().unmet(Stage.HANDLE).due_at
    e = refused(w, extend(due), "extension_not_later")
    assert e.field == "until"
    refused(w, extend(due - timedelta(hours=1)), "extension_not_later")
    w.now = due + timedelta(minutes=1)
    refused(w, extend(due + timedelta(days=2)), "deadline_passed")


def test_an_extension_only_while_the_handling_deadline_is_open():
    refused(world_at("handled"), extend(T0 + timedelta(days=30)), "illegal_transition")
    refused(world_at("registered"), extend(T0 + timedelta(days=30)), "illegal_transition")


def test_a_refused_extension_leaves_the_deadline():
    w = world_at("dispatched")
    due = w.state().unmet(Stage.HANDLE).due_at
    w.run(extend(due + timedelta(days=3)))
    [ev] = w.run(review_extension(granted=False, comment="可按期完成"))
    assert ev.TYPE == "grid.case.extension.refused.v1" and ev.due_at == due
    assert w.state().unmet(Stage.HANDLE).due_at == due and w.state().extension_until is None


def test_a_grant_to_another_until_must_still_be_after_the_current_due():
    w = world_at("dispatched")
    due = w.state().unmet(Stage.HANDLE).due_at
    w.run(extend(due + timedelta(days=3)))
    refused(w, review_extension(until=due), "extension_not_later")


def test_a_review_needs_a_pending_extension():
    refused(world_at("dispatched"), review_extension(), "no_pending_extension")


def test_the_handling_deadline_is_not_reported_while_its_extension_awaits_review():
    w = world_at("dispatched")
    w.run(accept())
    w.run(contact())
    due = w.state().unmet(Stage.HANDLE).due_at
    w.run(extend(due + timedelta(days=3)))
    assert next_check_at(w.state()) is None
    assert check_overdue(w.state(), due + timedelta(hours=1), w.policy) == []
    w.now = due + timedelta(hours=1)
    w.run(review_extension(granted=False))  # refused: the deadline was missed after all
    assert [e.stage for e in check_overdue(w.state(), w.now, w.policy) if e.TYPE.endswith("overdue.v1")] == [Stage.HANDLE]


def test_handling_lets_a_pending_extension_lapse():
    w = world_at("dispatched")
    w.run(extend(w.state().unmet(Stage.HANDLE).due_at + timedelta(days=1)))
    w.run(handle())
    assert w.state().extension_until is None
    refused(w, review_extension(), "illegal_transition")


# -- 不合理诉求 ------------------------------------------------------------------------------


def test_an_exclusion_is_requested_once_and_an_approval_excludes_the_case():
    w = world_at("dispatched")
    [ev] = w.run(exclude(requested_by="cgw-1"))
    assert ev.TYPE == "grid.case.exclusion.requested.v1" and ev.department == CGW
    assert w.state().exclusion_pending
    [ev] = w.run(review_exclusion(reviewer_id="so-1"))
    assert ev.approved and w.state().excluded and not w.state().exclusion_pending
    refused(w, exclude(), "exclusion_already_requested")


def test_a_refused_exclusion_keeps_the_case_in_the_rates_and_is_not_asked_again():
    w = world_at("dispatched")
    w.run(exclude())
    w.run(review_exclusion(approved=False))
    assert not w.state().excluded
    refused(w, exclude(), "exclusion_already_requested")


def test_an_exclusion_may_be_asked_after_closing_but_not_before_dispatch():
    w = world_at("closed")
    w.run(exclude())
    w.run(review_exclusion())
    assert w.state().excluded
    refused(world_at("registered"), exclude(), "illegal_transition")


def test_an_exclusion_review_needs_a_pending_request():
    refused(world_at("dispatched"), review_exclusion(), "no_pending_exclusion")


# -- 回访 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolved", [True, False, None])
def test_feedback_records_whether_the_problem_is_resolved(resolved):
    w = world_at("closed")
    [ev] = w.run(feedback(resolved=resolved))
    assert ev.resolved is resolved and w.state().resolved is resolved


# -- supervision in the state -------------------------------------------------------------------


def test_a_closed_case_not_yet_due_for_contact_drops_that_deadline():
    w = world_at("closed")  # closed within minutes of dispatch, reporter not contacted
    assert w.state().unmet(Stage.CONTACT) is None
    assert check_overdue(w.state(), w.now + timedelta(days=30), w.policy) == []


def test_a_missed_contact_on_an_open_case_brings_a_card():
    w = world_at("dispatched")
    w.run(accept())
    w.tick(hours=7)  # past the 4 working hours (the lunch break does not count)
    events = check_overdue(w.state(), w.now, w.policy)
    assert types(events) == ["grid.case.overdue.v1", "grid.case.supervised.v1"]
    assert (events[1].stage, events[1].supervision, events[1].department) == (Stage.CONTACT, Supervision.YELLOW_CARD, CGW)
