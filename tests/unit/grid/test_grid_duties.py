"""Separation of duties on a case: whoever handled it (处置) does not verify it (核查)."""
from __future__ import annotations

import pytest
from grid_builders import World, dispatch, handle, register, report, verify, world_at

from schemas.grid import CaseVerified
from services.grid.domain import CaseState, CaseStatus, Rejected, errors


def handled_by(person: str | None) -> World:
    w = World()
    for cmd in (report(), register(), dispatch(assignee_id="staff-1"), handle(handled_by=person)):
        w.run(cmd)
        w.tick(minutes=1)
    return w


def refusal(w: World, command) -> Rejected:
    with pytest.raises(Rejected) as e:
        w.decide(command)
    return e.value


def test_the_state_keeps_who_handled_the_case_and_it_survives_storage():
    s = handled_by("staff-1").state()
    assert s.handled_by == "staff-1"
    assert CaseState.model_validate(s.model_dump(mode="json")).handled_by == "staff-1"


@pytest.mark.parametrize("passed", [True, False])
def test_the_handler_cannot_verify_their_own_handling(passed):
    w = handled_by("staff-1")
    r = refusal(w, verify(passed=passed, verifier_id="staff-1"))
    assert isinstance(r, errors.SelfVerification)
    assert (r.reason, r.field) == ("self_verification", "verifier_id")
    assert w.state().status is CaseStatus.HANDLED


def test_someone_else_verifies_the_case():
    w = handled_by("staff-1")
    verified = w.run(verify(passed=True, verifier_id="gw-1"))[0]
    assert isinstance(verified, CaseVerified) and verified.verifier_id == "gw-1"
    assert w.state().status is CaseStatus.CLOSED


@pytest.mark.parametrize("handler, verifier", [(None, "staff-1"), ("staff-1", None), (None, None)])
def test_without_both_ids_the_rule_cannot_apply(handler, verifier):
    w = handled_by(handler)
    w.run(verify(passed=True, verifier_id=verifier))
    assert w.state().status is CaseStatus.CLOSED


def test_a_state_stored_before_handlers_were_kept_is_verified_as_before():
    stored = world_at("handled").state().model_dump(mode="json")
    stored.pop("handled_by", None)
    w = World()
    w.states["case-1"] = CaseState.model_validate(stored)
    w.tick(minutes=5)
    w.run(verify(passed=True, verifier_id="staff-1"))
    assert w.state().status is CaseStatus.CLOSED


def test_after_rework_the_one_who_handled_it_again_cannot_verify_it():
    w = handled_by("staff-1")
    w.run(verify(passed=False, verifier_id="gw-1"))
    assert w.state().handled_by is None  # back with the department: nobody's handling is awaiting 核查
    w.tick(minutes=5)
    w.run(handle(handled_by="staff-2", result="返工后已整改"))
    assert w.state().handled_by == "staff-2"
    assert refusal(w, verify(passed=True, verifier_id="staff-2")).reason == "self_verification"
    w.run(verify(passed=True, verifier_id="gw-1"))
    assert w.state().status is CaseStatus.CLOSED
