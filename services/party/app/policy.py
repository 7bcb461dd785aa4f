"""Who may send each party command (the platform's role table), checked by the kit on every path.

A party secretary (``party_secretary``) acts for the Party organisations in its token's scope:
an organisation's area is a street, community or grid id (a building group's is its grid; a
unit's Party organisation and a regional council act for their parent's area). Community and
street officers establish organisations and take units' reports (单位报到) in their area too, and
act with the secretary for the regional council (区域化党建) of their street or community, its
units' agreements (共建协议) and its projects (项目清单).
What the table cannot say, because it needs the organisation, the handler checks
(:mod:`services.party.app.access`): a member is attached, and a central household marked, only
in an organisation of the caller's scope, and a unit's Party organisation is established only
under a parent in it; any other organisation is refused exactly as an unknown one
(``unknown_org`` / ``unknown_parent``), so that its existence does not leak; a council or a project
outside the caller's scope likewise (``unknown_council`` / ``unknown_project``,
:mod:`services.party.app.councils`). A transfer
(转接) into an organisation of the caller's scope may come from an organisation outside it.
Organisational life is recorded, and a member's commitments made, fulfilled and rated, by a
secretary of the organisation (the member's) in their scope; any other is refused as unknown
(``unknown_org`` / ``unknown_member``).
"""
from __future__ import annotations

from schemas.party import (
    AttachMember, ClaimProject, CompleteProject, CompleteResolution, ErasePerson, EstablishOrg, FulfilCommitment,
    HoldMeeting, MakeCommitment, MarkCentralHousehold, OrgKind, PostProject, ProposeCouncil, RateCommitment,
    RateProject, RecordOrgLife, ReportUnit, SignAgreement,
)
from services.kit.policy import SUB, Policy, allow
from services.party.domain import building_grid

SECRETARY = "party_secretary"
OFFICERS = ("community_officer", "street_officer")
"""Who acts for a community's and a street's organisation besides its secretary: its officers."""


def establish_area(cmd: EstablishOrg) -> str | None:
    """The code a sender's scope must cover to establish ``cmd``'s org (None for a unit's
    Party organisation: its parent's area, which the handler checks)."""
    if cmd.kind is OrgKind.BUILDING_GROUP:
        return building_grid(cmd.area_id) or cmd.area_id
    if cmd.kind is OrgKind.UNIT_ORG:
        return None
    return cmd.area_id


POLICY = Policy("party", {
    EstablishOrg: allow(SECRETARY, *OFFICERS, area=establish_area,
                        note="a unit's Party organisation under a parent in the caller's scope"),
    AttachMember: allow(SECRETARY, note="into an organisation in the caller's scope (from any)"),
    MarkCentralHousehold: allow(SECRETARY, note="in a building group in the caller's scope"),
    RecordOrgLife: allow(SECRETARY, note="for an organisation in the caller's scope"),
    MakeCommitment: allow(SECRETARY, note="for a member of an organisation in the caller's scope"),
    FulfilCommitment: allow(SECRETARY, note="for a member of an organisation in the caller's scope"),
    RateCommitment: allow(SECRETARY, note="for a member of an organisation in the caller's scope"),
    ReportUnit: allow(*OFFICERS, SECRETARY, area=lambda c: c.community_id),
    ProposeCouncil: allow(SECRETARY, *OFFICERS, actor={"proposed_by": SUB}, area=lambda c: c.area_id),
    HoldMeeting: allow(SECRETARY, *OFFICERS, actor={"recorded_by": SUB}, note="a council of the caller's scope"),
    CompleteResolution: allow(SECRETARY, *OFFICERS, note="a resolution of a council of the caller's scope"),
    SignAgreement: allow(SECRETARY, *OFFICERS, area=lambda c: c.community_id,
                         note="with a unit reported to the community"),
    PostProject: allow(SECRETARY, *OFFICERS, area=lambda c: c.community_id),
    ClaimProject: allow(SECRETARY, *OFFICERS,
                        note="a project of a community in the caller's scope, by a unit reported there"),
    CompleteProject: allow(SECRETARY, *OFFICERS, note="a project of a community in the caller's scope, "
                                                      "by the unit that claimed it"),
    RateProject: allow(SECRETARY, *OFFICERS, note="a completed project of a community in the caller's scope"),
    ErasePerson: allow("data_protection_officer", actor={"requested_by": SUB}, note="any person, with a reason"),
})
