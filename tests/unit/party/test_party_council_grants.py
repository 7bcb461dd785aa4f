"""Who may send the council, unit and project commands (services.party.app.policy) and act on
an existing council or project (services.party.app.councils.may_act)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.party import (
    ClaimProject, CompleteProject, CompleteResolution, CouncilLevel, CouncilSeat, HoldMeeting, PostProject,
    ProposeCouncil, RateProject, ReportUnit, SignAgreement,
)
from services.kit.identity import Principal, Scope
from services.kit.policy import Refused
from services.party.app.councils import may_act
from services.party.app.policy import POLICY

STREET, COMMUNITY, OTHER = "110105001", "110105001002", "110105001003"
T = datetime(2030, 1, 6, 2, 0, tzinfo=timezone.utc)
ACTORS = {"party_secretary", "community_officer", "street_officer"}


def who(sub: str, *roles: str, communities=(), streets=()) -> Principal:
    return Principal(sub, frozenset(roles), Scope.of(communities=communities, streets=streets))


def propose(level: CouncilLevel, area: str) -> ProposeCouncil:
    return ProposeCouncil(council_id="rc-1", level=level, area_id=area,
                          seats=(CouncilSeat(person_id="p0", role="secretary"),))


@pytest.mark.parametrize("cls", [ProposeCouncil, HoldMeeting, CompleteResolution, ReportUnit, SignAgreement,
                                 PostProject, ClaimProject, CompleteProject, RateProject])
def test_a_secretary_and_the_officers_send_them_and_nobody_else(cls):
    assert POLICY.roles_for(cls) == ACTORS


def test_a_proposal_is_for_a_council_of_the_senders_area_and_names_the_sender():
    street_council = propose(CouncilLevel.STREET, STREET)
    assert POLICY.admit(street_council, who("so", "street_officer", streets=[STREET])).proposed_by == "so"
    with pytest.raises(Refused):  # a community's secretary does not act for the street
        POLICY.admit(street_council, who("sec", "party_secretary", communities=[COMMUNITY]))
    community_council = propose(CouncilLevel.COMMUNITY, COMMUNITY)
    assert POLICY.admit(community_council, who("sec", "party_secretary", communities=[COMMUNITY])).proposed_by == "sec"
    with pytest.raises(Refused):
        POLICY.admit(community_council, who("sec", "party_secretary", communities=[OTHER]))
    with pytest.raises(Refused):
        POLICY.admit(community_council, who("aud", "auditor"))


def test_a_meeting_is_recorded_by_the_sender():
    cmd = HoldMeeting(council_id="rc-1", meeting_id="m-1", held_at=T, attendees=("p0",))
    assert POLICY.admit(cmd, who("co", "community_officer", communities=[COMMUNITY])).recorded_by == "co"


def test_a_project_and_an_agreement_are_of_a_community_of_the_senders_scope():
    post = PostProject(project_id="pj-1", community_id=COMMUNITY, title="照明")
    sign = SignAgreement(agreement_id="ag-1", unit_id="u-1", community_id=COMMUNITY, commitments=("义诊",),
                         valid_from=T, valid_until=T + timedelta(days=365))
    for cmd in (post, sign):
        assert POLICY.admit(cmd, who("so", "street_officer", streets=[STREET])) == cmd
        with pytest.raises(Refused):
            POLICY.admit(cmd, who("co", "community_officer", communities=[OTHER]))


def test_acting_on_an_existing_council_or_project_needs_its_area_in_scope():
    assert may_act(who("sec", "party_secretary", communities=[COMMUNITY]), COMMUNITY)
    assert may_act(who("so", "street_officer", streets=[STREET]), COMMUNITY)
    assert not may_act(who("sec", "party_secretary", communities=[COMMUNITY]), STREET)
    assert not may_act(who("co", "community_officer", communities=[OTHER]), COMMUNITY)
    assert not may_act(who("aud", "auditor"), COMMUNITY)
    assert not may_act(who("res", "resident", communities=[COMMUNITY]), COMMUNITY)
    assert not may_act(None, COMMUNITY)
