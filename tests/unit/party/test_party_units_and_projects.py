"""单位报到, 共建协议 and the 项目清单 projects (posted → claimed → completed → rated)."""
from __future__ import annotations


import pytest

from party_life_builders import COMMUNITY, OTHER_COMMUNITY, STREET, T0, at, fold, refused
from schemas.party import (
    AgreementSigned, ClaimProject, CompleteProject, PostProject, ProjectClaimed, ProjectCompleted, ProjectPosted,
    ProjectRated, RateProject, ReportUnit, SignAgreement, UnitReported,
)
from services.party.domain.units import (
    ProjectState, ProjectStatus, UnitContext, UnitState, decide_project, decide_unit, evolve_project, evolve_unit,
)


def ctx(days: float = 0, **kw) -> UnitContext:
    return UnitContext(now=at(days), **kw)


def report(community: str = COMMUNITY, unit: str = "unit-1", **kw) -> ReportUnit:
    data = dict(unit_id=unit, name="区教委", community_id=community, org_id="org-u1", resources=["会议室", "志愿者"])
    return ReportUnit(**{**data, **kw})


def unit(community: str = COMMUNITY, unit_id: str = "unit-1") -> UnitState:
    return fold(evolve_unit, None, decide_unit(None, report(community, unit_id), ctx()))


def sign(agreement_id: str = "ag-1", community: str = COMMUNITY, start: float = 0, end: float = 365,
         commitments=("共建文化活动",)) -> SignAgreement:
    return SignAgreement(agreement_id=agreement_id, unit_id="unit-1", community_id=community,
                         commitments=list(commitments), valid_from=at(start), valid_until=at(end))


def run_unit(state, command, c=None):
    events = decide_unit(state, command, c or ctx())
    return fold(evolve_unit, state, events), events


# --- 单位报到 --------------------------------------------------------------------------


def test_a_unit_reports_to_the_community_where_it_sits():
    (e,) = decide_unit(None, report(), ctx())
    assert isinstance(e, UnitReported) and e.aggregate_id == "unit-1"
    assert (e.community_id, e.street_id, e.org_id, e.resources, e.moved_from, e.occurred_at) == (
        COMMUNITY, STREET, "org-u1", ("会议室", "志愿者"), None, T0)
    state = evolve_unit(None, e)
    assert UnitState.model_validate(state.model_dump(mode="json")) == state


def test_the_same_report_again_is_a_no_op():
    assert decide_unit(unit(), report(resources=["志愿者", "会议室"]), ctx(1)) == []


def test_a_unit_reports_to_a_community_once():
    r = refused(decide_unit, unit(), report(name="区教委机关"), ctx(1))
    assert (r.reason, r.field) == ("unit_already_reported", "unit_id")


def test_a_report_to_another_community_moves_the_unit():
    state, (e,) = run_unit(unit(), report(OTHER_COMMUNITY), ctx(3))
    assert (e.community_id, e.moved_from) == (OTHER_COMMUNITY, COMMUNITY)
    assert (state.community_id, state.previous_communities, state.reported_at) == (OTHER_COMMUNITY, (COMMUNITY,), at(3))


# --- 共建协议 --------------------------------------------------------------------------


def test_a_reported_unit_signs_an_agreement_with_its_community():
    state, (e,) = run_unit(unit(), sign())
    assert isinstance(e, AgreementSigned) and not e.renewal and e.aggregate_id == "unit-1"
    assert state.agreement("ag-1").valid_until == at(365)
    assert UnitState.model_validate(state.model_dump(mode="json")) == state


def test_an_agreement_must_end_after_it_starts():
    for end in (0, -1):
        r = refused(decide_unit, unit(), sign(end=end), ctx())
        assert (r.reason, r.field) == ("invalid_validity", "valid_until")


def test_a_unit_that_never_reported_signs_nothing():
    r = refused(decide_unit, None, sign(), ctx())
    assert (r.reason, r.field) == ("unit_not_reported", "community_id")


def test_a_unit_signs_only_with_the_community_it_reported_to():
    r = refused(decide_unit, unit(), sign(community=OTHER_COMMUNITY), ctx())
    assert r.reason == "unit_not_reported"


def test_the_same_agreement_again_with_a_later_validity_is_a_renewal():
    state, _ = run_unit(unit(), sign())
    state, (e,) = run_unit(state, sign(start=365, end=730), ctx(360))
    assert e.renewal and (e.valid_from, e.valid_until) == (at(365), at(730))
    a = state.agreement("ag-1")
    assert (a.renewals, a.valid_from, len(state.agreements)) == (1, at(365), 1)


def test_a_renewal_may_start_with_the_old_validity_and_change_the_terms():
    state, _ = run_unit(unit(), sign())
    (e,) = decide_unit(state, sign(commitments=("共建文化活动", "结对帮扶")), ctx(1))
    assert e.renewal


def test_the_same_agreement_with_the_same_terms_is_a_no_op():
    state, _ = run_unit(unit(), sign())
    assert decide_unit(state, sign(), ctx(1)) == []


def test_a_renewal_cannot_start_before_the_current_validity():
    state, _ = run_unit(unit(), sign(start=10, end=100))
    r = refused(decide_unit, state, sign(start=5, end=400), ctx(20))
    assert (r.reason, r.field) == ("renewal_backdated", "valid_from")


def test_a_renewal_keeps_the_community():
    state, _ = run_unit(unit(), sign())
    state, _ = run_unit(state, report(OTHER_COMMUNITY), ctx(1))
    r = refused(decide_unit, state, sign(community=OTHER_COMMUNITY, start=365, end=730), ctx(2))
    assert (r.reason, r.field) == ("agreement_mismatch", "agreement_id")
    # and the community left: the unit no longer sits there
    assert refused(decide_unit, state, sign(start=365, end=730), ctx(2)).reason == "unit_not_reported"


def test_an_agreement_id_of_another_unit_is_refused():
    r = refused(decide_unit, unit(), sign(), ctx(agreement_held_by="unit-9"))
    assert (r.reason, r.field) == ("agreement_mismatch", "agreement_id")


# --- 项目清单 --------------------------------------------------------------------------


def post(community: str = COMMUNITY) -> PostProject:
    return PostProject(project_id="pj-1", community_id=community, title="老旧小区加装电梯协调", need="协调资金")


def run_project(state, command, c=None):
    events = decide_project(state, command, c or ctx())
    return fold(evolve_project, state, events), events


def posted() -> ProjectState:
    return run_project(None, post())[0]


def claimed() -> ProjectState:
    return run_project(posted(), ClaimProject(project_id="pj-1", unit_id="unit-1"), ctx(1, unit=unit()))[0]


def completed() -> ProjectState:
    return run_project(claimed(), CompleteProject(project_id="pj-1", unit_id="unit-1", result="已完成"), ctx(30))[0]


def test_a_project_goes_posted_claimed_completed_rated():
    state, (e,) = run_project(None, post())
    assert isinstance(e, ProjectPosted) and state.status is ProjectStatus.POSTED
    state, (e,) = run_project(state, ClaimProject(project_id="pj-1", unit_id="unit-1"), ctx(1, unit=unit()))
    assert isinstance(e, ProjectClaimed) and (e.unit_id, e.community_id) == ("unit-1", COMMUNITY)
    state, (e,) = run_project(state, CompleteProject(project_id="pj-1", unit_id="unit-1", result="已完成"), ctx(30))
    assert isinstance(e, ProjectCompleted) and state.status is ProjectStatus.COMPLETED
    state, (e,) = run_project(state, RateProject(project_id="pj-1", rating=5), ctx(31))
    assert isinstance(e, ProjectRated) and (e.rating, e.unit_id) == (5, "unit-1")
    assert (state.status, state.rating, state.rated_at) == (ProjectStatus.RATED, 5, at(31))
    assert ProjectState.model_validate(state.model_dump(mode="json")) == state


def test_posting_the_same_project_again_is_a_no_op_and_another_is_refused():
    assert decide_project(posted(), post(), ctx(1)) == []
    r = refused(decide_project, posted(), post(OTHER_COMMUNITY), ctx(1))
    assert (r.reason, r.field) == ("project_exists", "project_id")


@pytest.mark.parametrize("command", [
    ClaimProject(project_id="pj-9", unit_id="unit-1"),
    CompleteProject(project_id="pj-9", unit_id="unit-1"),
    RateProject(project_id="pj-9", rating=3),
])
def test_a_step_on_an_unknown_project_is_refused(command):
    r = refused(decide_project, None, command, ctx(unit=unit()))
    assert (r.reason, r.field) == ("unknown_project", "project_id")


def test_only_a_unit_reported_to_the_projects_community_claims_it():
    claim = ClaimProject(project_id="pj-1", unit_id="unit-1")
    assert refused(decide_project, posted(), claim, ctx()).reason == "unit_not_reported"
    r = refused(decide_project, posted(), claim, ctx(unit=unit(OTHER_COMMUNITY)))
    assert (r.reason, r.field) == ("unit_not_reported", "unit_id")
    # the context's unit must be the claiming one
    assert refused(decide_project, posted(), claim, ctx(unit=unit(unit_id="unit-2"))).reason == "unit_not_reported"


def test_a_project_is_claimed_once():
    other = ClaimProject(project_id="pj-1", unit_id="unit-2")
    r = refused(decide_project, claimed(), other, ctx(2, unit=unit(unit_id="unit-2")))
    assert (r.reason, r.field) == ("already_claimed", "unit_id")
    assert decide_project(claimed(), ClaimProject(project_id="pj-1", unit_id="unit-1"), ctx(2, unit=unit())) == []
    assert refused(decide_project, completed(), ClaimProject(project_id="pj-1", unit_id="unit-1"),
                   ctx(40, unit=unit())).reason == "illegal_transition"


def test_only_the_claiming_unit_completes():
    r = refused(decide_project, claimed(), CompleteProject(project_id="pj-1", unit_id="unit-2"), ctx(3))
    assert (r.reason, r.field) == ("not_claimant", "unit_id")


def test_a_project_is_completed_only_once_claimed():
    r = refused(decide_project, posted(), CompleteProject(project_id="pj-1", unit_id="unit-1"), ctx(3))
    assert r.reason == "illegal_transition"
    assert refused(decide_project, completed(), CompleteProject(project_id="pj-1", unit_id="unit-1"),
                   ctx(40)).reason == "illegal_transition"


def test_only_a_completed_project_is_rated():
    for state in (posted(), claimed()):
        assert refused(decide_project, state, RateProject(project_id="pj-1", rating=4), ctx(3)).reason == \
            "illegal_transition"


def test_a_project_is_rated_once():
    rated, _ = run_project(completed(), RateProject(project_id="pj-1", rating=4), ctx(31))
    assert decide_project(rated, RateProject(project_id="pj-1", rating=4), ctx(32)) == []
    r = refused(decide_project, rated, RateProject(project_id="pj-1", rating=2), ctx(32))
    assert (r.reason, r.field) == ("already_rated", "rating")


def test_a_rating_is_between_1_and_5():
    with pytest.raises(ValueError):
        RateProject(project_id="pj-1", rating=6)
    with pytest.raises(ValueError):
        RateProject(project_id="pj-1", rating=0)
