"""Every transition of the grid case loop (GB/T 30428) and every refusal."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from grid_builders import (
    CASE, CGW, GRID, T0, ZHZF, World, dismiss, dispatch, escalate, feedback, handle, patrol, register, report, types, verify,
    world_at,
)

from schemas.grid import (
    CaseClosed,
    Stage,
    CaseDispatched,
    CaseEscalated,
    CaseFeedback,
    CaseHandled,
    CaseRegistered,
    CaseReported,
    CaseVerified,
    EscalationLevel,
    PatrolLogged,
)
from services.grid.domain import CaseState, CaseStatus, Context, IllegalTransition, Rejected, decide, evolve
from services.kit.errors import NotFound


def reason_of(w: World, command, **ctx) -> str:
    with pytest.raises(Rejected) as e:
        w.decide(command, **ctx)
    return e.value.reason


# --------------------------------------------------------------------------- report


def test_report_opens_a_case_with_street_and_community_derived_from_the_grid_id():
    w = World()
    [ev] = w.run(report())
    assert isinstance(ev, CaseReported)
    assert (ev.community_id, ev.street_id) == ("110105001002", "110105001")
    assert ev.occurred_at == T0
    s = w.state()
    assert s.status is CaseStatus.REPORTED
    assert s.level is EscalationLevel.COMMUNITY
    assert s.reported_at == T0 and s.version == 1


def test_report_sets_the_registration_deadline_from_the_policy():
    [ev] = World().run(report())
    assert ev.register_due_at == T0 + timedelta(hours=1)  # one working hour (Monday 09:00)
    assert ev.urgent is False


def test_an_urgent_report_must_be_registered_within_five_minutes():
    [ev] = World().run(report(urgent=True))
    assert ev.urgent is True
    assert ev.register_due_at == T0 + timedelta(minutes=5)


def test_a_severe_hazard_is_urgent_by_policy():
    [ev] = World().run(report(category="hazard.fire", grade="severe"))
    assert ev.urgent is True and ev.grade.value == "severe"


def test_report_of_an_existing_case_is_refused():
    w = world_at("reported")
    assert reason_of(w, report()) == "case_exists"


def test_report_in_a_grid_missing_from_the_register_is_refused():
    w = World()
    with pytest.raises(Rejected) as e:
        w.decide(report(), grid_known=False)
    assert (e.value.reason, e.value.field) == ("unknown_grid", "grid_id")


# --------------------------------------------------------------------------- register / dismiss


def test_register_accepts_the_case_with_a_dispatch_deadline():
    w = world_at("reported")
    [ev] = w.run(register(department=CGW))
    assert isinstance(ev, CaseRegistered)
    assert ev.due_at == w.now + timedelta(hours=1)  # one working hour
    s = w.state()
    assert s.status is CaseStatus.REGISTERED and s.department == CGW and s.registered_at == w.now


def test_registered_resident_need_carries_what_the_orders_service_needs():
    w = World()
    w.run(report(category="resident_need", description="独居老人需要送餐", reporter={"kind": "resident", "id": "r-42"}))
    [ev] = w.run(register())
    assert ev.category.value == "resident_need"
    assert (ev.grid_id, ev.community_id, ev.street_id) == (GRID, "110105001002", "110105001")
    assert ev.description == "独居老人需要送餐"
    assert ev.reporter.id == "r-42" and ev.reporter.kind.value == "resident"


def test_dismiss_closes_a_reported_case_without_registering_it():
    w = world_at("reported")
    [ev] = w.run(dismiss(reason="不属于网格事项"))
    assert ev.duplicate_of is None and ev.reason == "不属于网格事项"
    s = w.state()
    assert s.status is CaseStatus.DISMISSED and not s.is_open
    assert s.deadlines[0].met_at == w.now


# --------------------------------------------------------------------------- dispatch / handle


def test_dispatch_sends_the_case_to_a_department_with_the_policy_handling_deadline():
    w = world_at("registered")
    [ev] = w.run(dispatch(department=ZHZF, assignee_id="staff-7"))
    assert isinstance(ev, CaseDispatched)
    assert ev.due_at == w.now + timedelta(days=2)  # environment: 2 working days (from a Monday)
    # 2 and 4 working hours from 09:02 on a Monday (12:00-13:30 is no working time); control: severe hazards only
    assert (ev.accept_due_at, ev.contact_due_at, ev.control_due_at) == (
        w.now + timedelta(hours=2), w.now.replace(hour=14, minute=32), None)
    s = w.state()
    assert (s.status, s.department, s.assignee_id) == (CaseStatus.DISPATCHED, ZHZF, "staff-7")
    assert s.open_deadline.stage is Stage.HANDLE
    assert {d.stage for d in s.deadlines if d.met_at is None} == {Stage.HANDLE, Stage.ACCEPT, Stage.CONTACT}


def test_dispatch_may_set_the_handling_deadline_explicitly():
    w = world_at("registered")
    due = w.now + timedelta(hours=6)
    [ev] = w.run(dispatch(due_at=due))
    assert ev.due_at == due
    assert w.state().open_deadline.due_at == due


def test_dispatch_with_a_due_time_in_the_past_is_refused():
    w = world_at("registered")
    with pytest.raises(Rejected) as e:
        w.decide(dispatch(due_at=w.now - timedelta(minutes=1)))
    assert (e.value.reason, e.value.field) == ("due_in_past", "due_at")


def test_handle_records_the_result_and_starts_the_four_working_hour_verification_deadline():
    w = world_at("dispatched")
    [ev] = w.run(handle(result="已清运", media=["https://m/1.jpg"]))
    # 09:03 + 4 working hours: 2 h 57 min to 12:00, the lunch break, 1 h 03 min from 13:30
    assert isinstance(ev, CaseHandled) and ev.verify_due_at == w.now + timedelta(hours=5, minutes=30)
    s = w.state()
    assert s.status is CaseStatus.HANDLED and s.result == "已清运"


# --------------------------------------------------------------------------- verify / close / rework


def test_passed_verification_closes_the_case_on_time_with_handling_seconds():
    w = world_at("handled")
    evs = w.run(verify(passed=True))
    assert types(evs) == ["grid.case.verified.v1", "grid.case.closed.v1"]
    closed = evs[1]
    assert isinstance(closed, CaseClosed)
    assert closed.on_time is True
    assert closed.handling_seconds == int((w.now - T0).total_seconds())
    assert (closed.department, closed.assignee_id, closed.grid_id) == (CGW, "staff-1", GRID)
    s = w.state()
    assert s.status is CaseStatus.CLOSED and s.on_time is True and s.closed_at == w.now


def test_a_case_closed_after_a_missed_deadline_is_not_on_time():
    w = world_at("dispatched")
    w.tick(days=3)  # handling limit for environment is 2 days
    w.run(handle())
    w.tick(minutes=5)
    closed = w.run(verify(passed=True))[1]
    assert closed.on_time is False


def test_a_late_verification_makes_the_close_late():
    w = world_at("handled")
    w.tick(hours=6)  # verification was due at 14:33
    assert w.run(verify(passed=True))[1].on_time is False


def test_rework_sends_case_back_to_department():
    w = world_at("handled")
    [ev] = w.run(verify(passed=False, comment="仍有垃圾"))
    assert isinstance(ev, CaseVerified) and ev.passed is False
    assert ev.rework_count == 1
    assert ev.rework_due_at == w.now + timedelta(days=2)
    s = w.state()
    assert s.status is CaseStatus.DISPATCHED and s.rework_count == 1 and s.department == CGW
    assert s.open_deadline.stage.value == "handle" and s.open_deadline.due_at == ev.rework_due_at


def test_rework_may_set_the_new_due_time_explicitly():
    w = world_at("handled")
    due = w.now + timedelta(hours=4)
    [ev] = w.run(verify(passed=False, rework_due_at=due))
    assert ev.rework_due_at == due


def test_rework_due_time_in_the_past_is_refused():
    w = world_at("handled")
    assert reason_of(w, verify(passed=False, rework_due_at=w.now)) == "due_in_past"


def test_a_passed_verification_with_a_rework_due_time_is_refused():
    w = world_at("handled")
    assert reason_of(w, verify(passed=True, rework_due_at=w.now + timedelta(days=1))) == "rework_due_without_rework"


def test_a_reworked_case_is_handled_again_and_closes_with_its_rework_count():
    w = world_at("handled")
    w.run(verify(passed=False))
    w.tick(hours=3)
    w.run(handle(result="已彻底清理"))
    w.tick(minutes=20)
    w.run(verify(passed=False))
    w.tick(hours=1)
    w.run(handle())
    w.tick(minutes=10)
    closed = w.run(verify(passed=True))[1]
    assert closed.rework_count == 2 and closed.on_time is True
    assert w.state().rework_count == 2


# --------------------------------------------------------------------------- feedback


def test_feedback_after_closing_records_satisfaction():
    w = world_at("closed")
    [ev] = w.run(feedback(satisfaction="basically_satisfied", reporter_id="gw-1"))
    assert isinstance(ev, CaseFeedback)
    assert (ev.grid_id, ev.department) == (GRID, CGW)
    assert w.state().satisfaction.value == "basically_satisfied"


def test_feedback_is_given_once():
    w = world_at("closed")
    w.run(feedback())
    assert reason_of(w, feedback(satisfaction="unsatisfied")) == "feedback_already_given"


def test_feedback_from_someone_who_did_not_report_the_case_is_refused():
    w = world_at("closed")
    assert reason_of(w, feedback(reporter_id="someone-else")) == "not_a_reporter"


# --------------------------------------------------------------------------- escalate on request


def test_escalation_on_request_moves_the_case_one_level_up():
    w = world_at("dispatched")
    [ev] = w.run(escalate(requested_by="cw-3"))
    assert isinstance(ev, CaseEscalated)
    assert (ev.from_level, ev.to_level) == (EscalationLevel.COMMUNITY, EscalationLevel.STREET)
    assert w.state().level is EscalationLevel.STREET


def test_a_complex_dispute_can_be_sent_to_joint_mediation():
    w = World()
    w.run(report(category="dispute.property", description="业主与物业纠纷"))
    w.run(register())
    [ev] = w.run(escalate(joint_mediation=True, reason="涉及多部门，申请联合调解"))
    assert ev.joint_mediation is True
    assert w.state().joint_mediation is True and w.state().level is EscalationLevel.STREET


def test_joint_mediation_is_refused_for_a_case_that_is_not_a_dispute():
    w = world_at("registered")
    assert reason_of(w, escalate(joint_mediation=True)) == "joint_mediation_for_disputes_only"


def test_escalation_may_skip_straight_to_the_district():
    w = world_at("registered")
    [ev] = w.run(escalate(to_level="district"))
    assert ev.to_level is EscalationLevel.DISTRICT


def test_escalation_beyond_the_district_is_refused():
    w = world_at("registered")
    w.run(escalate(to_level="district"))
    assert reason_of(w, escalate()) == "no_higher_level"


def test_escalation_to_a_level_that_is_not_higher_is_refused():
    w = world_at("registered")
    w.run(escalate())
    assert reason_of(w, escalate(to_level="street")) == "no_higher_level"


# --------------------------------------------------------------------------- patrols


def test_patrol_log_records_a_patrol_of_the_grid():
    w = World()
    [ev] = w.run(patrol(notes="巡查1-6号楼"))
    assert isinstance(ev, PatrolLogged)
    assert (ev.grid_id, ev.community_id, ev.street_id, ev.grid_worker_id) == (GRID, "110105001002", "110105001", "gw-1")
    assert evolve(None, ev) is None  # a patrol is a fact about a grid, not a case


def test_patrol_in_a_grid_missing_from_the_register_is_refused():
    w = World()
    with pytest.raises(Rejected) as e:
        w.decide(patrol(), grid_known=False)
    assert e.value.reason == "unknown_grid"


def test_patrol_that_ends_before_it_starts_is_refused():
    w = World()
    assert reason_of(w, patrol(started_at=T0 - timedelta(hours=1), ended_at=T0 - timedelta(hours=2))) == "patrol_ends_before_start"


def test_patrol_that_ends_in_the_future_is_refused():
    w = World()
    assert reason_of(w, patrol(ended_at=T0 + timedelta(hours=1))) == "patrol_in_future"


def test_patrol_whose_id_is_logged_already_is_refused():
    w = World()
    assert reason_of(w, patrol(), patrol_logged=True) == "patrol_exists"


# --------------------------------------------------------------------------- wrong state, no case


COMMANDS = {
    "register": register, "dismiss": dismiss, "dispatch": dispatch, "handle": handle,
    "verify": verify, "feedback": feedback, "escalate": escalate,
}
ALLOWED = {
    "register": {"reported"}, "dismiss": {"reported"}, "dispatch": {"registered"}, "handle": {"dispatched"},
    "verify": {"handled"}, "feedback": {"closed"}, "escalate": {"reported", "registered", "dispatched", "handled"},
}
STATUSES = ["reported", "registered", "dismissed", "dispatched", "handled", "closed"]


@pytest.mark.parametrize(
    "status,verb",
    [(s, v) for v in COMMANDS for s in STATUSES if s not in ALLOWED[v]],
)
def test_a_command_in_the_wrong_state_is_refused_as_an_illegal_transition(status, verb):
    w = world_at(status)
    with pytest.raises(IllegalTransition) as e:
        w.decide(COMMANDS[verb]())
    assert e.value.reason == "illegal_transition"
    assert (e.value.command, e.value.state) == (verb, status)


@pytest.mark.parametrize("status,verb", [(s, v) for v in COMMANDS for s in sorted(ALLOWED[v])])
def test_a_command_in_the_right_state_is_accepted(status, verb):
    # the complement of the test above: the table of allowed transitions is exact
    assert world_at(status).decide(COMMANDS[verb]())


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_a_command_for_a_case_that_does_not_exist_is_refused(verb):
    with pytest.raises(NotFound) as e:
        World().decide(COMMANDS[verb]())
    assert (e.value.reason, e.value.field) == ("unknown_case", "case_id")


def test_context_refuses_a_naive_time():
    with pytest.raises(ValueError):
        Context(now=datetime(2026, 11, 23, 9, 0))


# --------------------------------------------------------------------------- state storage


def test_state_round_trips_through_json_at_every_step_of_the_loop():
    w = World()
    for cmd in [report(), register(), dispatch(), handle(), verify(passed=False), handle(), verify(), feedback()]:
        w.run(cmd)
        w.tick(minutes=7)
        s = w.state()
        assert CaseState.model_validate(s.model_dump(mode="json")) == s
    assert w.state().version == len(w.log) == 9
