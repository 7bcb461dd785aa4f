"""Resident units (驻区单位): their 单位报到, their co-building agreements (共建协议), and the
community's 项目清单 projects they claim (双向认领).

The unit aggregate (keyed by ``unit_id``)::

    ReportUnit    → UnitReported     a unit reports to the community where it sits, once; the same
                                     report again is a no-op; the same community with other data is
                                     refused; a report to another community moves the unit
                                     (``moved_from`` names the community it left)
    SignAgreement → AgreementSigned  valid_until after valid_from; the unit reported to that
                                     community; the same agreement id again is a renewal
                                     (``renewal=true``) when its validity starts at or after the
                                     current one's start and the unit and community are the same
                                     (the same terms again: a no-op)

The project aggregate (keyed by ``project_id``)::

    PostProject     → ProjectPosted     (no project yet; the same project again is a no-op)
    ClaimProject    → ProjectClaimed    posted, by a unit reported to the project's community
                                        (``ctx.unit``); once: the same unit again is a no-op
    CompleteProject → ProjectCompleted  claimed, by the claiming unit
    RateProject     → ProjectRated      completed, 1-5, once (the same rating again is a no-op)

A move keeps the unit's agreements on record, but renewing one with the community it left is
refused (``unit_not_reported``): the unit no longer sits there. Projects the unit claimed stay
its own.

Refusals: ``unit_already_reported``, ``unit_not_reported``, ``invalid_validity``,
``agreement_mismatch``, ``renewal_backdated``, ``project_exists``, ``unknown_project``,
``already_claimed``, ``not_claimant``, ``already_rated``, ``illegal_transition``.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.codes import street_id_of
from schemas.common import Command, Event
from schemas.party import (
    AgreementSigned, ClaimProject, CompleteProject, PostProject, ProjectClaimed, ProjectCompleted, ProjectPosted,
    ProjectRated, RateProject, ReportUnit, SignAgreement, UnitReported,
)

from .life_errors import (
    AgreementMismatch, AlreadyClaimed, AlreadyRated, IllegalTransition, InvalidValidity, NotClaimant, NotFound,
    ProjectExists, RenewalBackdated, UnitAlreadyReported, UnitNotReported,
)


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Agreement(_State):
    """A co-building agreement (共建协议) as it stands: its latest validity and commitments."""

    agreement_id: str
    community_id: str
    commitments: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    renewals: int = 0
    signed_at: datetime | None = None


class UnitState(_State):
    """A resident unit that reported (单位报到) to the community where it sits, and its agreements.

    ``previous_communities`` lists the communities it reported to before (oldest first)."""

    unit_id: str
    name: str
    community_id: str
    street_id: str | None = None
    org_id: str | None = None
    resources: tuple[str, ...] = ()
    reported_at: datetime | None = None
    previous_communities: tuple[str, ...] = ()
    agreements: tuple[Agreement, ...] = ()

    def agreement(self, agreement_id: str) -> Agreement | None:
        return next((a for a in self.agreements if a.agreement_id == agreement_id), None)

    def reported_to(self, community_id: str) -> bool:
        """True when the unit sits in ``community_id`` now (its latest report)."""
        return self.community_id == community_id


class ProjectStatus(str, Enum):
    """Where a project of the 项目清单 stands."""

    POSTED = "posted"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    RATED = "rated"


class ProjectState(_State):
    """A project of a community's 项目清单: posted → claimed → completed → rated."""

    project_id: str
    community_id: str
    title: str
    need: str = ""
    status: ProjectStatus = ProjectStatus.POSTED
    unit_id: str | None = None
    result: str = ""
    rating: int | None = None
    comment: str = ""
    posted_at: datetime | None = None
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    rated_at: datetime | None = None


class UnitContext(BaseModel):
    """What a unit or project decision needs besides its own state.

    - ``now``: the decision time (the events' ``occurred_at``);
    - ``unit``: the claiming unit's state, for ``ClaimProject`` (None: it never reported);
    - ``agreement_held_by``: for ``SignAgreement``, the unit that already holds the agreement id
      when the app found it under another unit (agreements are kept per unit).
    """

    model_config = ConfigDict(frozen=True)

    now: AwareDatetime
    unit: UnitState | None = None
    agreement_held_by: str | None = None


# ---------------------------------------------------------------------------------------
# The unit
# ---------------------------------------------------------------------------------------


def decide_unit(state: UnitState | None, command: Command, ctx: UnitContext) -> list[Event]:
    """The events a unit command leads to, or a ``Rejected``."""
    if isinstance(command, ReportUnit):
        return _report(state, command, ctx)
    if isinstance(command, SignAgreement):
        return _sign(state, command, ctx)
    raise TypeError(f"not a unit command: {type(command).__name__}")


def _street_of(community_id: str) -> str | None:
    try:
        return street_id_of(community_id)
    except ValueError:
        return None


def _report(state: UnitState | None, cmd: ReportUnit, ctx: UnitContext) -> list[Event]:
    moved_from = None
    if state is not None:
        if state.community_id == cmd.community_id:
            same = (state.name, state.org_id, set(state.resources)) == (cmd.name, cmd.org_id, set(cmd.resources))
            if same:
                return []
            raise UnitAlreadyReported(cmd.unit_id, cmd.community_id)
        moved_from = state.community_id
    return [
        UnitReported(
            unit_id=cmd.unit_id, name=cmd.name, community_id=cmd.community_id, street_id=_street_of(cmd.community_id),
            org_id=cmd.org_id, resources=tuple(dict.fromkeys(cmd.resources)), moved_from=moved_from,
            occurred_at=ctx.now,
        )
    ]


def _sign(state: UnitState | None, cmd: SignAgreement, ctx: UnitContext) -> list[Event]:
    if cmd.valid_until <= cmd.valid_from:
        raise InvalidValidity(cmd.valid_from.isoformat(), cmd.valid_until.isoformat())
    if ctx.agreement_held_by is not None and ctx.agreement_held_by != cmd.unit_id:
        raise AgreementMismatch(cmd.agreement_id, f"it is unit {ctx.agreement_held_by!r}'s, not {cmd.unit_id!r}'s")
    if state is None or not state.reported_to(cmd.community_id):
        raise UnitNotReported(cmd.unit_id, cmd.community_id)
    current = state.agreement(cmd.agreement_id)
    renewal = False
    if current is not None:
        if current.community_id != cmd.community_id:
            raise AgreementMismatch(cmd.agreement_id, f"it is with community {current.community_id}")
        same = (current.valid_from, current.valid_until, current.commitments) == (
            cmd.valid_from, cmd.valid_until, tuple(cmd.commitments))
        if same:
            return []
        if cmd.valid_from < current.valid_from:
            raise RenewalBackdated(cmd.agreement_id, cmd.valid_from.isoformat(), current.valid_from.isoformat())
        renewal = True
    return [
        AgreementSigned(
            agreement_id=cmd.agreement_id, unit_id=cmd.unit_id, community_id=cmd.community_id,
            commitments=tuple(cmd.commitments), valid_from=cmd.valid_from, valid_until=cmd.valid_until,
            renewal=renewal, occurred_at=ctx.now,
        )
    ]


def evolve_unit(state: UnitState | None, event: Event) -> UnitState:
    """The unit after ``event``."""
    if isinstance(event, UnitReported):
        previous: tuple[str, ...] = ()
        agreements: tuple[Agreement, ...] = ()
        if state is not None:
            if state.community_id == event.community_id:
                return state
            previous = (*state.previous_communities, state.community_id)
            agreements = state.agreements
        return UnitState(
            unit_id=event.unit_id, name=event.name, community_id=event.community_id, street_id=event.street_id,
            org_id=event.org_id, resources=tuple(event.resources), reported_at=event.occurred_at,
            previous_communities=previous, agreements=agreements,
        )
    if isinstance(event, AgreementSigned):
        if state is None:
            raise ValueError(f"{event.TYPE} for unit {event.unit_id!r} that never reported")
        current = state.agreement(event.agreement_id)
        signed = Agreement(
            agreement_id=event.agreement_id, community_id=event.community_id, commitments=tuple(event.commitments),
            valid_from=event.valid_from, valid_until=event.valid_until,
            renewals=(current.renewals + 1) if current is not None else 0, signed_at=event.occurred_at,
        )
        others = tuple(a for a in state.agreements if a.agreement_id != event.agreement_id)
        return state.model_copy(update=dict(agreements=(*others, signed)))
    raise TypeError(f"not a unit event: {type(event).__name__}")


# ---------------------------------------------------------------------------------------
# The project
# ---------------------------------------------------------------------------------------


def decide_project(state: ProjectState | None, command: Command, ctx: UnitContext) -> list[Event]:
    """The events a project command leads to, or a ``Rejected``."""
    if isinstance(command, PostProject):
        return _post(state, command, ctx)
    if not isinstance(command, (ClaimProject, CompleteProject, RateProject)):
        raise TypeError(f"not a project command: {type(command).__name__}")
    if state is None:
        raise NotFound("project", command.project_id, "project_id")
    if isinstance(command, ClaimProject):
        return _claim(state, command, ctx)
    if isinstance(command, CompleteProject):
        return _complete(state, command, ctx)
    return _rate(state, command, ctx)


def _post(state: ProjectState | None, cmd: PostProject, ctx: UnitContext) -> list[Event]:
    if state is not None:
        if (state.community_id, state.title, state.need) == (cmd.community_id, cmd.title, cmd.need):
            return []
        raise ProjectExists(cmd.project_id)
    return [ProjectPosted(project_id=cmd.project_id, community_id=cmd.community_id, title=cmd.title, need=cmd.need,
                          occurred_at=ctx.now)]


def _claim(state: ProjectState, cmd: ClaimProject, ctx: UnitContext) -> list[Event]:
    if state.status is not ProjectStatus.POSTED:
        if state.unit_id == cmd.unit_id and state.status is ProjectStatus.CLAIMED:
            return []
        if state.unit_id is not None and state.unit_id != cmd.unit_id:
            raise AlreadyClaimed(state.project_id, state.unit_id)
        raise IllegalTransition("claim", state.status.value)
    unit = ctx.unit
    if unit is None or unit.unit_id != cmd.unit_id or not unit.reported_to(state.community_id):
        raise UnitNotReported(cmd.unit_id, state.community_id, "unit_id")
    return [ProjectClaimed(project_id=state.project_id, community_id=state.community_id, unit_id=cmd.unit_id,
                           occurred_at=ctx.now)]


def _complete(state: ProjectState, cmd: CompleteProject, ctx: UnitContext) -> list[Event]:
    if state.status is not ProjectStatus.CLAIMED:
        raise IllegalTransition("complete", state.status.value)
    if cmd.unit_id != state.unit_id:
        raise NotClaimant(state.project_id, cmd.unit_id, state.unit_id)
    return [ProjectCompleted(project_id=state.project_id, community_id=state.community_id, unit_id=cmd.unit_id,
                             result=cmd.result, occurred_at=ctx.now)]


def _rate(state: ProjectState, cmd: RateProject, ctx: UnitContext) -> list[Event]:
    if state.status is ProjectStatus.RATED:
        if state.rating == cmd.rating:
            return []
        raise AlreadyRated("project", state.project_id, state.rating or 0)
    if state.status is not ProjectStatus.COMPLETED:
        raise IllegalTransition("rate", state.status.value)
    assert state.unit_id is not None
    return [ProjectRated(project_id=state.project_id, community_id=state.community_id, unit_id=state.unit_id,
                         rating=cmd.rating, comment=cmd.comment, occurred_at=ctx.now)]


def evolve_project(state: ProjectState | None, event: Event) -> ProjectState:
    """The project after ``event``."""
    if isinstance(event, ProjectPosted):
        if state is not None:
            return state
        return ProjectState(project_id=event.project_id, community_id=event.community_id, title=event.title,
                            need=event.need, posted_at=event.occurred_at)
    if state is None:
        raise ValueError(f"{event.TYPE} for project {getattr(event, 'project_id', '?')!r} that was never posted")
    if isinstance(event, ProjectClaimed):
        return state.model_copy(update=dict(status=ProjectStatus.CLAIMED, unit_id=event.unit_id,
                                            claimed_at=event.occurred_at))
    if isinstance(event, ProjectCompleted):
        return state.model_copy(update=dict(status=ProjectStatus.COMPLETED, result=event.result,
                                            completed_at=event.occurred_at))
    if isinstance(event, ProjectRated):
        return state.model_copy(update=dict(status=ProjectStatus.RATED, rating=event.rating, comment=event.comment,
                                            rated_at=event.occurred_at))
    raise TypeError(f"not a project event: {type(event).__name__}")
