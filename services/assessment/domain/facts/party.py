"""Party facts (组织建设): organisational life (三会一课, 主题党日), regional councils' joint
meetings and resolutions (联席会议, 议定事项), the 项目清单, members' 双报到 follow-up and
commitments (承诺践诺), and the refs the standing counts are derived from (grid branches and
coverage gaps, units known and reported: :mod:`.standing`).

An organisation counts where its area is: the community and street of a street, community,
grid or building (``<grid id>:<building>``) area, or the unit of a unit's Party organisation
(its area is the unit's id). A council counts for the community and street of its area (a
street's 大工委 for the street). Grids get no Party counters (the tree is scored from the
community up). Each fact is counted once per object (flags in the refs), so a re-delivered
event changes nothing. Cohorts are listed on :class:`..indicators.Fact`.
"""
from __future__ import annotations

from datetime import datetime
from functools import partial

from schemas import party
from schemas.assessment import EntityType
from schemas.codes import community_id_of, is_community_id, is_grid_id, is_street_id, street_id_of

from ..indicators import Fact
from ..periods import enclosing_periods, periods_of
from .core import EventEffect, FactDelta, builds, increments, increments_in
from .refs import CouncilRef, DutyRef, Entity, GridRef, Lookup, OrgRef, ProjectRef, Ref, UnitRef, area_entities

_party_event = partial(builds, occurred="occurred_at")
"""Register a builder of party events, which carry their instant in ``occurred_at``."""

def place_of(area_id: str | None) -> dict[str, str]:
    """Where an area id puts an organisation or a council: its grid, community and street (a
    building ``<grid id>:<building>`` is in its grid), or a unit (any other id)."""
    if not area_id:
        return {}
    head = area_id.split(":", 1)[0]
    if is_grid_id(head):
        return {"grid_id": head, "community_id": community_id_of(head), "street_id": street_id_of(community_id_of(head))}
    if is_community_id(area_id):
        return {"community_id": area_id, "street_id": street_id_of(area_id)}
    if is_street_id(area_id):
        return {"street_id": area_id}
    return {"unit_id": area_id}


def _where(ref: OrgRef | CouncilRef) -> list[Entity]:
    """The community and street (no grid) of an org or council, and the unit of a unit's org."""
    out = area_entities(None, ref.community_id, ref.street_id)
    if isinstance(ref, OrgRef) and ref.unit_id:
        out.append((EntityType.UNIT.value, ref.unit_id))
    return out


def _unit(unit_id: str | None) -> list[Entity]:
    return [(EntityType.UNIT.value, unit_id)] if unit_id else []


# -- the organisation tree and 组织覆盖率 --------------------------------------------------------


def _org(org_id: str, area_id: str | None, lookup: Lookup) -> OrgRef:
    """The stored ref of an org (or a new one placed by ``area_id``)."""
    ref = lookup.org(org_id)
    if ref is not None and (ref.community_id or ref.street_id or ref.unit_id):
        return ref
    return (ref or OrgRef(org_id=org_id)).model_copy(update=place_of(area_id))


@_party_event(party.OrgEstablished)
def org_established(e: party.OrgEstablished, at: datetime, lookup: Lookup) -> EventEffect:
    """An organisation: placed by its area. A grid branch (网格党支部) covers its grid from now."""
    ref = _org(e.org_id, e.area_id, lookup).model_copy(update={"kind": e.kind.value})
    refs: list[Ref] = [ref]
    if e.kind is party.OrgKind.GRID_BRANCH and ref.grid_id:
        g = lookup.grid(ref.grid_id) or GridRef(grid_id=ref.grid_id).model_copy(update=place_of(ref.grid_id))
        if g.branch_at is None or at < g.branch_at:
            refs.append(g.model_copy(update={"branch_at": at}))
    return EventEffect([], refs)


@_party_event(party.CoverageGap)
def coverage_gap(e: party.CoverageGap, at: datetime, lookup: Lookup) -> EventEffect:
    """A grid with ≥ 3 members and no branch needs one from now (the first report counts)."""
    g = (lookup.grid(e.grid_id) or GridRef(grid_id=e.grid_id).model_copy(update=place_of(e.grid_id))).placed_by(e)
    if g.gap_at is not None and g.gap_at <= at:
        return EventEffect()
    return EventEffect([], [g.model_copy(update={"gap_at": at})])


# -- organisational life (三会一课, 主题党日) --------------------------------------------------


def required_period(e: party.OrgLifeHeld) -> str:
    """The required period a meeting fulfils, as the party service says from its policy of how
    often each kind is due (``period``: its month, or its quarter for the quarterly kinds); a
    meeting whose event predates the field fulfils its month."""
    return e.period or periods_of(e.held_at)[0]


@_party_event(party.OrgLifeHeld)
def org_life_held(e: party.OrgLifeHeld, at: datetime, lookup: Lookup) -> EventEffect:
    """Held: the required period (organisation, kind, period) counts required and held once
    (required already, when it was reported missed first); attendance once per meeting, at the
    meeting."""
    ref = _org(e.org_id, e.area_id, lookup)
    ents = _where(ref)
    facts: list[FactDelta] = []
    key = f"{e.kind.value}@{required_period(e)}"
    periods = enclosing_periods(key.split("@", 1)[1])
    if key not in ref.required:
        facts += increments_in(ents, periods, Fact.ORG_LIFE_REQUIRED, 1)
        ref = ref.model_copy(update={"required": (*ref.required, key)})
    if key not in ref.held:
        facts += increments_in(ents, periods, Fact.ORG_LIFE_HELD, 1)
        ref = ref.model_copy(update={"held": (*ref.held, key)})
    if e.meeting_id not in ref.meetings:
        facts += increments(ents, e.held_at, Fact.ORG_LIFE_ATTENDEES, len(e.attendees))
        facts += increments(ents, e.held_at, Fact.ORG_LIFE_EXPECTED, len(e.attendees) + len(e.absentees))
        ref = ref.model_copy(update={"meetings": (*ref.meetings, e.meeting_id)})
    return EventEffect(facts, [ref])


@_party_event(party.OrgLifeOverdue)
def org_life_overdue(e: party.OrgLifeOverdue, at: datetime, lookup: Lookup) -> EventEffect:
    """Missed: the required period counts required (not held) once."""
    ref = _org(e.org_id, e.area_id, lookup)
    key = f"{e.kind.value}@{e.period}"
    if key in ref.required:
        return EventEffect()
    facts = increments_in(_where(ref), enclosing_periods(e.period), Fact.ORG_LIFE_REQUIRED, 1)
    return EventEffect(facts, [ref.model_copy(update={"required": (*ref.required, key)})])


# -- the regional council (联席会议, 议定事项) -------------------------------------------------


def _council(council_id: str, area_id: str | None, lookup: Lookup) -> CouncilRef:
    ref = lookup.council(council_id)
    if ref is not None and (ref.community_id or ref.street_id):
        return ref
    place = {k: v for k, v in place_of(area_id).items() if k != "unit_id"}
    return (ref or CouncilRef(council_id=council_id)).model_copy(update=place)


@_party_event(party.CouncilEffective)
def council_placed(e: party.CouncilEffective, at: datetime, lookup: Lookup) -> EventEffect:
    """No counter: places the council by its area (the proposal, with its members, is not read)."""
    ref = _council(e.council_id, e.area_id, lookup)
    return EventEffect([], [ref] if ref != lookup.council(e.council_id) else [])


@_party_event(party.MeetingHeld)
def meeting_held(e: party.MeetingHeld, at: datetime, lookup: Lookup) -> EventEffect:
    """联席会议: its quarter is due once, and held once, by its first quorate meeting (a meeting
    without a quorum adopts nothing); attendance once per meeting, at the meeting."""
    ref = _council(e.council_id, e.area_id, lookup)
    ents = _where(ref)
    facts: list[FactDelta] = []
    quarter = periods_of(e.held_at)[1]
    periods = enclosing_periods(quarter)
    if quarter not in ref.quarters_due:
        facts += increments_in(ents, periods, Fact.COUNCIL_QUARTERS_DUE, 1)
        ref = ref.model_copy(update={"quarters_due": (*ref.quarters_due, quarter)})
    if e.quorum and quarter not in ref.quarters_held:
        facts += increments_in(ents, periods, Fact.COUNCIL_QUARTERS_HELD, 1)
        ref = ref.model_copy(update={"quarters_held": (*ref.quarters_held, quarter)})
    if e.meeting_id not in ref.meetings:
        facts += increments(ents, e.held_at, Fact.COUNCIL_ATTENDEES, len(e.attendees))
        facts += increments(ents, e.held_at, Fact.COUNCIL_EXPECTED, len(e.attendees) + len(e.absentees))
        ref = ref.model_copy(update={"meetings": (*ref.meetings, e.meeting_id)})
    return EventEffect(facts, [ref])


@_party_event(party.MeetingOverdue)
def meeting_overdue(e: party.MeetingOverdue, at: datetime, lookup: Lookup) -> EventEffect:
    """A missed quarter: due (not held) once."""
    ref = _council(e.council_id, e.area_id, lookup)
    if e.quarter in ref.quarters_due:
        return EventEffect()
    facts = increments_in(_where(ref), enclosing_periods(e.quarter), Fact.COUNCIL_QUARTERS_DUE, 1)
    return EventEffect(facts, [ref.model_copy(update={"quarters_due": (*ref.quarters_due, e.quarter)})])


@_party_event(party.ResolutionCompleted)
def resolution_completed(e: party.ResolutionCompleted, at: datetime, lookup: Lookup) -> EventEffect:
    """办结: completed and due, for the council's area and the owner unit; a resolution counted
    overdue before leaves the overdue count where it was counted."""
    ref = _council(e.council_id, None, lookup)
    if e.resolution_id in ref.completed:
        return EventEffect()
    ents = _where(ref) + _unit(e.owner_unit_id)
    facts = increments(ents, at, Fact.RESOLUTIONS_COMPLETED) + increments(ents, at, Fact.RESOLUTIONS_DUE)
    overdue = tuple(o for o in ref.overdue if o[0] != e.resolution_id)
    for _, when in set(ref.overdue) - set(overdue):
        facts += increments(ents, when, Fact.RESOLUTIONS_DUE, -1)
    return EventEffect(facts, [ref.model_copy(update={"completed": (*ref.completed, e.resolution_id),
                                                      "overdue": overdue})])


@_party_event(party.ResolutionOverdue)
def resolution_overdue(e: party.ResolutionOverdue, at: datetime, lookup: Lookup) -> EventEffect:
    """督办: due (open) once, for the council's area and the owner unit."""
    ref = _council(e.council_id, None, lookup)
    if e.resolution_id in ref.completed or any(r == e.resolution_id for r, _ in ref.overdue):
        return EventEffect()
    facts = increments(_where(ref) + _unit(e.owner_unit_id), at, Fact.RESOLUTIONS_DUE)
    return EventEffect(facts, [ref.model_copy(update={"overdue": (*ref.overdue, (e.resolution_id, at))})])


# -- units (单位报到, 共建协议) and the 项目清单 -------------------------------------------------


def _known(unit_id: str, at: datetime, lookup: Lookup) -> UnitRef:
    """The unit's ref, known from ``at`` at the latest."""
    u = lookup.unit(unit_id) or UnitRef(unit_id=unit_id)
    return u if u.known_at is not None and u.known_at <= at else u.model_copy(update={"known_at": at})


@_party_event(party.UnitReported)
def unit_reported(e: party.UnitReported, at: datetime, lookup: Lookup) -> EventEffect:
    """单位报到: the unit sits in the community it reported to (first report counts)."""
    u = _known(e.unit_id, at, lookup)
    if u.reported_at is not None and u.reported_at <= at:
        return EventEffect()
    street = e.street_id or street_id_of(e.community_id)
    return EventEffect([], [u.model_copy(update={"community_id": e.community_id, "street_id": street,
                                                 "reported_at": at})])


@_party_event(party.AgreementSigned)
def agreement_signed(e: party.AgreementSigned, at: datetime, lookup: Lookup) -> EventEffect:
    """共建协议: the unit is known; a unit that has not reported is placed in the community of
    its first agreement (rather than where its first member registered)."""
    u = _known(e.unit_id, at, lookup)
    if not u.signed:
        if u.reported_at is None:
            u = u.model_copy(update={"community_id": e.community_id, "street_id": street_id_of(e.community_id)})
        u = u.model_copy(update={"signed": True})
    return EventEffect([], [u] if u != lookup.unit(e.unit_id) else [])


def _project(e, lookup: Lookup) -> ProjectRef:
    return (lookup.project(e.project_id) or ProjectRef(project_id=e.project_id)).placed_by(e)


@_party_event(party.ProjectPosted)
def project_posted(e: party.ProjectPosted, at: datetime, lookup: Lookup) -> EventEffect:
    """Posted, for the community and street."""
    ref = _project(e, lookup)
    if ref.posted_at is not None:
        return EventEffect()
    return EventEffect(increments(area_entities(None, ref.community_id), at, Fact.PROJECTS_POSTED),
                       [ref.model_copy(update={"posted_at": at})])


@_party_event(party.ProjectClaimed)
def project_claimed(e: party.ProjectClaimed, at: datetime, lookup: Lookup) -> EventEffect:
    """双向认领: claimed once, in the period of the posting, for the area and the claiming unit."""
    ref = _project(e, lookup)
    if ref.claimed_at is not None:
        return EventEffect()
    when = ref.posted_at or at
    facts = increments(area_entities(None, ref.community_id) + _unit(e.unit_id), when, Fact.PROJECTS_CLAIMED)
    if ref.posted_at is None:  # a posting not seen: posted with its claim
        facts += increments(area_entities(None, ref.community_id), when, Fact.PROJECTS_POSTED)
    return EventEffect(facts, [ref.model_copy(update={"posted_at": when, "claimed_at": at, "unit_id": e.unit_id})])


@_party_event(party.ProjectCompleted)
def project_completed(e: party.ProjectCompleted, at: datetime, lookup: Lookup) -> EventEffect:
    """Completed once, in the period of the posting, for the area and the claiming unit."""
    ref = _project(e, lookup)
    if ref.completed or ref.claimed_at is None:
        return EventEffect()  # a completion of a claim not seen has no denominator: not counted
    ents = area_entities(None, ref.community_id) + _unit(ref.unit_id or e.unit_id)
    return EventEffect(increments(ents, ref.posted_at, Fact.PROJECTS_COMPLETED),
                       [ref.model_copy(update={"completed": True})])


# -- members: 双报到 follow-up and 承诺践诺 ----------------------------------------------------


def _duty(member_id: str, lookup: Lookup) -> DutyRef:
    return lookup.duty(member_id) or DutyRef(duty_id=member_id)


def duty_entities(duty: DutyRef) -> list[Entity]:
    return area_entities(None, duty.community_id) + _unit(duty.unit_id)


@_party_event(party.MemberReportOverdue)
def member_report_overdue(e: party.MemberReportOverdue, at: datetime, lookup: Lookup) -> EventEffect:
    """Not reported to the residential community by the deadline, or moved away: due (not
    reported) once until the member registers, for the community, street and unit named (else
    the member's)."""
    d = _duty(e.member_id, lookup)
    if d.overdue_at is not None:
        return EventEffect()
    m = lookup.member(e.member_id)
    d = d.model_copy(update={"community_id": e.community_id or (m.community_id if m else None),
                             "unit_id": e.unit_id or (m.unit_id if m else None), "overdue_at": at})
    return EventEffect(increments(duty_entities(d), at, Fact.MEMBERS_REPORT_DUE), [d])


def registered_after_overdue(member_id: str, lookup: Lookup) -> tuple[list[FactDelta], list[Ref]]:
    """A member who registers (双报到) is no longer overdue: the due count of the overdue report
    is taken back where it was counted."""
    d = lookup.duty(member_id)
    if d is None or d.overdue_at is None:
        return [], []
    return (increments(duty_entities(d), d.overdue_at, Fact.MEMBERS_REPORT_DUE, -1),
            [d.model_copy(update={"overdue_at": None})])


def _commitment_entities(e: party.CommitmentMade | party.CommitmentFulfilled, lookup: Lookup) -> list[Entity]:
    """The community and street of the member's organisation (else of the member's registration),
    and the member's unit."""
    org = lookup.org(e.org_id) if e.org_id else None
    m = lookup.member(e.member_id)
    out = _where(org) if org is not None else []
    if not any(t in (EntityType.COMMUNITY.value, EntityType.STREET.value) for t, _ in out):
        out += area_entities(None, m.community_id if m else None)
    if m and m.unit_id:
        out += _unit(m.unit_id)
    return out


@_party_event(party.CommitmentMade)
def commitment_made(e: party.CommitmentMade, at: datetime, lookup: Lookup) -> EventEffect:
    """承诺: made once, in the commitment's year."""
    d = _duty(e.member_id, lookup)
    if e.commitment_id in d.made:
        return EventEffect()
    facts = increments_in(_commitment_entities(e, lookup), [str(e.year)], Fact.COMMITMENTS_MADE, 1)
    return EventEffect(facts, [d.model_copy(update={"made": (*d.made, e.commitment_id)})])


@_party_event(party.CommitmentFulfilled)
def commitment_fulfilled(e: party.CommitmentFulfilled, at: datetime, lookup: Lookup) -> EventEffect:
    """践诺: fulfilled once, in the commitment's year (made too, when its making was not seen)."""
    d = _duty(e.member_id, lookup)
    if e.commitment_id in d.fulfilled:
        return EventEffect()
    ents = _commitment_entities(e, lookup)
    facts = increments_in(ents, [str(e.year)], Fact.COMMITMENTS_FULFILLED, 1)
    made = d.made
    if e.commitment_id not in made:
        facts += increments_in(ents, [str(e.year)], Fact.COMMITMENTS_MADE, 1)
        made = (*made, e.commitment_id)
    return EventEffect(facts, [d.model_copy(update={"made": made, "fulfilled": (*d.fulfilled, e.commitment_id)})])
