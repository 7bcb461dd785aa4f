"""Named refusals of units' 双报到, the three lists, organisational life and commitments.

Each ``reason`` is a stable snake_case code. A command on a project or commitment that does not
exist raises the kit's :class:`NotFound` (``unknown_project``, ``unknown_commitment``,
``unknown_org``); a step out of order raises :class:`IllegalTransition` (``illegal_transition``,
with the command and the current status). The other rules have their own codes below.
"""
from __future__ import annotations

from services.kit.errors import IllegalTransition, NotFound, Rejected

__all__ = [
    "AgreementMismatch", "AlreadyClaimed", "AlreadyFulfilled", "AlreadyRated", "CommitmentExists",
    "CommitmentNotDue", "CommitmentYearInvalid", "CommitmentYearOver", "HeldBeforeEstablishment", "HeldInFuture",
    "IllegalTransition", "InvalidValidity", "MeetingExists", "NotClaimant", "NotFound", "OrgLifeNotApplicable",
    "ProjectExists", "Rejected", "RenewalBackdated", "UnitAlreadyReported", "UnitNotReported",
]


class UnitAlreadyReported(Rejected):
    """``unit_already_reported``: the unit reported to this community already, with other data
    (a unit reports once where it sits; the same report again is a no-op, a report to another
    community moves it)."""

    def __init__(self, unit_id: str, community_id: str):
        super().__init__("unit_already_reported", f"unit {unit_id!r} already reported to community {community_id}",
                         "unit_id")


class UnitNotReported(Rejected):
    """``unit_not_reported``: the unit has not reported to that community (单位报到 comes first:
    no agreement with, and no project claimed in, a community the unit did not report to)."""

    def __init__(self, unit_id: str, community_id: str, field: str = "community_id"):
        super().__init__("unit_not_reported", f"unit {unit_id!r} has not reported to community {community_id}", field)


class InvalidValidity(Rejected):
    """``invalid_validity``: an agreement's ``valid_until`` must come after its ``valid_from``."""

    def __init__(self, valid_from: str, valid_until: str):
        super().__init__("invalid_validity", f"valid_until {valid_until} is not after valid_from {valid_from}",
                         "valid_until")


class AgreementMismatch(Rejected):
    """``agreement_mismatch``: the agreement id belongs to another unit or community (a renewal keeps both)."""

    def __init__(self, agreement_id: str, detail: str):
        super().__init__("agreement_mismatch", f"agreement {agreement_id!r}: {detail}", "agreement_id")


class RenewalBackdated(Rejected):
    """``renewal_backdated``: a renewal's validity must start at or after the agreement's current start."""

    def __init__(self, agreement_id: str, valid_from: str, current_from: str):
        super().__init__("renewal_backdated",
                         f"agreement {agreement_id!r} runs from {current_from}; a renewal cannot start at {valid_from}",
                         "valid_from")


class ProjectExists(Rejected):
    """``project_exists``: the project id is taken by a different project (ids are never reused)."""

    def __init__(self, project_id: str):
        super().__init__("project_exists", f"project {project_id!r} already exists with other data", "project_id")


class AlreadyClaimed(Rejected):
    """``already_claimed``: another unit claimed the project first (a project is claimed once)."""

    def __init__(self, project_id: str, unit_id: str):
        super().__init__("already_claimed", f"project {project_id!r} is claimed by unit {unit_id!r}", "unit_id")


class NotClaimant(Rejected):
    """``not_claimant``: only the unit that claimed a project completes it."""

    def __init__(self, project_id: str, given: str, claimant: str | None):
        super().__init__("not_claimant", f"project {project_id!r} is claimed by {claimant!r}, not {given!r}", "unit_id")


class AlreadyRated(Rejected):
    """``already_rated``: a project or commitment is rated once (the same rating again is a no-op)."""

    def __init__(self, what: str, id: str, rating: int):
        super().__init__("already_rated", f"{what} {id!r} was already rated {rating}", "rating")


class OrgLifeNotApplicable(Rejected):
    """``org_life_not_applicable``: this kind of organisational life is not one the org's kind holds
    (the frequency table says which kinds apply to which orgs)."""

    def __init__(self, kind: str, org_kind: str):
        super().__init__("org_life_not_applicable", f"a {org_kind} does not hold {kind}", "kind")


class HeldInFuture(Rejected):
    """``held_in_future``: a meeting is recorded once held, never ahead."""

    def __init__(self, held_at: str, now: str):
        super().__init__("held_in_future", f"held_at {held_at} is after now ({now})", "held_at")


class HeldBeforeEstablishment(Rejected):
    """``held_before_establishment``: an organisation holds no meeting before it is established."""

    def __init__(self, held_at: str, established_at: str):
        super().__init__("held_before_establishment",
                         f"held_at {held_at} is before the org was established ({established_at})", "held_at")


class MeetingExists(Rejected):
    """``meeting_exists``: the meeting id is recorded already with other data (each meeting once)."""

    def __init__(self, meeting_id: str):
        super().__init__("meeting_exists", f"meeting {meeting_id!r} is recorded already with other data", "meeting_id")


class CommitmentExists(Rejected):
    """``commitment_exists``: the commitment id is taken, by this very commitment (a retry under a
    new command id) or by a different one of the member."""

    def __init__(self, commitment_id: str, same: bool = False):
        detail = "is already made" if same else "already exists with other data"
        super().__init__("commitment_exists", f"commitment {commitment_id!r} {detail}", "commitment_id")


class CommitmentYearInvalid(Rejected):
    """``commitment_year_invalid``: a commitment is made for the current year or the next one."""

    def __init__(self, year: int, current: int):
        super().__init__("commitment_year_invalid",
                         f"a commitment made in {current} is for {current} or {current + 1}, not {year}", "year")


class CommitmentYearOver(Rejected):
    """``commitment_year_over``: the commitment's year has ended; it can no longer be fulfilled."""

    def __init__(self, commitment_id: str, year: int):
        super().__init__("commitment_year_over", f"commitment {commitment_id!r} was for {year}, which has ended",
                         "commitment_id")


class AlreadyFulfilled(Rejected):
    """``already_fulfilled``: a commitment is fulfilled once."""

    def __init__(self, commitment_id: str):
        super().__init__("already_fulfilled", f"commitment {commitment_id!r} is fulfilled already", "commitment_id")


class CommitmentNotDue(Rejected):
    """``commitment_not_due``: 评诺 comes after 践诺, or once the commitment's year has ended."""

    def __init__(self, commitment_id: str, year: int):
        super().__init__("commitment_not_due",
                         f"commitment {commitment_id!r} is neither fulfilled nor past its year {year}",
                         "commitment_id")
