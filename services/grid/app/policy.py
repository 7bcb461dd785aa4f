"""Who may send each grid command (the platform's role table), checked by the kit on every path.

What the table cannot say, because it needs the case, the handler checks
(:mod:`services.grid.app.access`): a case step is for a case in the sender's area (a department
officer: a case of one of their departments; a resident's feedback: a case they reported); any
other case is refused exactly as an unknown one (``unknown_case``), so that existence does not leak.
"""
from __future__ import annotations

from schemas.grid import (
    AcceptCase, AnswerWhistle, BlowWhistle, CaseFeedback, ContactReporter, ControlHazard, DismissCase, DispatchCase,
    ErasePerson, EscalateCase, HandleCase, LogPatrol, RateWhistle, RegisterCase, ReportCase, RequestExclusion,
    RequestExtension, ReturnCase, ReviewExclusion, ReviewExtension, ReviewReturn, VerifyCase,
)
from services.kit.policy import SUB, Policy, allow

OFFICERS = ("community_officer", "street_officer")
DEPARTMENT_CASE = "a case dispatched to one of the caller's departments"

POLICY = Policy("grid", {
    ReportCase: (
        allow("grid_worker", actor={"reporter.kind": "grid_worker", "reporter.id": SUB}, area=lambda c: c.grid_id,
              note="a grid of the caller's scope"),
        allow("resident", actor={"reporter.kind": "resident", "reporter.id": SUB},
              note="any grid of the district"),
    ),
    LogPatrol: allow("grid_worker", actor={"grid_worker_id": SUB}, area=lambda c: c.grid_id),
    VerifyCase: allow("grid_worker", actor={"verifier_id": SUB},
                      note="a case of the caller's grids, not handled by the caller"),
    RegisterCase: allow(*OFFICERS, actor={"registrar_id": SUB}, note="a case in the caller's scope"),
    DismissCase: allow(*OFFICERS, actor={"registrar_id": SUB}, note="a case in the caller's scope"),
    DispatchCase: allow(*OFFICERS, actor={"dispatcher_id": SUB}, note="a case in the caller's scope"),
    EscalateCase: allow("street_officer", actor={"requested_by": SUB}, note="a case in the caller's scope"),
    HandleCase: allow("department_officer", actor={"handled_by": SUB},
                      note="a case of one of the caller's departments"),
    CaseFeedback: allow("resident", actor={"reporter_id": SUB}, note="a case the caller reported"),
    # the department's part of a case (a case dispatched to one of the caller's departments)
    AcceptCase: allow("department_officer", actor={"accepted_by": SUB}, note=DEPARTMENT_CASE),
    ReturnCase: allow("department_officer", actor={"returned_by": SUB}, note=DEPARTMENT_CASE),
    ContactReporter: allow("department_officer", actor={"contacted_by": SUB}, note=DEPARTMENT_CASE),
    ControlHazard: allow("department_officer", actor={"controlled_by": SUB}, note=DEPARTMENT_CASE),
    RequestExtension: allow("department_officer", actor={"requested_by": SUB}, note=DEPARTMENT_CASE),
    RequestExclusion: allow("department_officer", actor={"requested_by": SUB}, note=DEPARTMENT_CASE),
    # the dispatcher's level reviews what a department asks; the street decides what leaves the rates
    ReviewReturn: allow(*OFFICERS, actor={"reviewer_id": SUB}, note="a case in the caller's scope"),
    ReviewExtension: allow(*OFFICERS, actor={"reviewer_id": SUB}, note="a case in the caller's scope"),
    ReviewExclusion: allow("street_officer", actor={"reviewer_id": SUB}, note="a case in the caller's scope"),
    # 吹哨报到
    BlowWhistle: allow("street_officer", actor={"blown_by": SUB}, area=lambda c: c.street_id),
    AnswerWhistle: allow("department_officer", actor={"answered_by": SUB},
                         note="a whistle that summoned one of the caller's departments, as that department"),
    RateWhistle: allow("street_officer", actor={"rated_by": SUB}, note="a whistle of the caller's streets"),
    ErasePerson: allow("data_protection_officer", actor={"requested_by": SUB}, note="any person, with a reason"),
})
