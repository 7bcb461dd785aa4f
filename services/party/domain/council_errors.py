"""Named reasons for which the party domain refuses a regional council's command (区域化党建).

Each is a :class:`services.kit.errors.Rejected` with a stable snake_case ``reason`` (and the
command ``field`` at fault). A command on a council that was never proposed raises
:class:`CouncilNotFound` (``unknown_council``); one on a resolution the council never adopted,
:class:`ResolutionNotFound` (``unknown_resolution``).
"""
from __future__ import annotations

from datetime import datetime

from services.kit.errors import NotFound, Rejected

__all__ = [
    "CouncilNotFound", "CouncilSize", "DuplicateSeat", "SecretaryCount", "UnknownSeatRole", "PartTimeWithoutUnit",
    "PartTimeBelowThird", "CouncilMismatch", "CouncilNotEffective", "MeetingExists", "HeldInFuture",
    "NotACouncilMember", "MemberUnaccounted", "NoQuorum", "ResolutionExists", "DueBeforeMeeting",
    "ResolutionNotFound", "ResolutionAlreadyCompleted",
]


class CouncilNotFound(NotFound):
    """``unknown_council``: no council with this id was ever proposed."""

    def __init__(self, council_id: str):
        super().__init__("council", council_id, field="council_id")


class CouncilSize(Rejected):
    """``council_size``: a street council (大工委) has 9–15 members, a community council (大党委) 7–11."""

    def __init__(self, level: str, size: int, low: int, high: int):
        super().__init__("council_size", f"a {level} council has {low}-{high} members, not {size}", "seats")


class DuplicateSeat(Rejected):
    """``duplicate_member``: a person holds one seat of a council."""

    def __init__(self, person_id: str):
        super().__init__("duplicate_member", f"{person_id!r} is listed more than once", "seats")


class SecretaryCount(Rejected):
    """``secretary_count``: a council has exactly one secretary (书记)."""

    def __init__(self, count: int):
        super().__init__("secretary_count", f"a council has exactly one secretary, this one has {count}", "seats")


class UnknownSeatRole(Rejected):
    """``unknown_role``: a seat's role is ``secretary`` (书记), ``deputy`` (副书记) or ``member`` (委员)."""

    def __init__(self, role: str):
        super().__init__("unknown_role", f"{role!r} is not secretary, deputy or member", "seats")


class PartTimeWithoutUnit(Rejected):
    """``part_time_without_unit``: a part-time member (兼职委员) comes from a resident unit, which the seat names."""

    def __init__(self, person_id: str):
        super().__init__("part_time_without_unit", f"part-time member {person_id!r} has no unit_id", "seats")


class PartTimeBelowThird(Rejected):
    """``part_time_below_third``: part-time members from resident units are at least a third of the members
    (兼职委员不少于委员总数的1/3)."""

    def __init__(self, part_time: int, size: int):
        super().__init__("part_time_below_third",
                         f"{part_time} part-time members of {size}: at least a third ({-(-size // 3)}) are needed",
                         "seats")


class CouncilMismatch(Rejected):
    """``council_mismatch``: a new composition (换届) keeps the council's level and area."""

    def __init__(self, field: str, council: str, given: str):
        super().__init__("council_mismatch", f"the council's {field} is {council!r}, not {given!r}", field)


class CouncilNotEffective(Rejected):
    """``council_not_effective``: no composition of the council was in force when the meeting was held (its
    first 公示 had not ended)."""

    def __init__(self, council_id: str, held_at: datetime):
        super().__init__("council_not_effective", f"council {council_id!r} was not in force at {held_at.isoformat()}",
                         "held_at")


class MeetingExists(Rejected):
    """``meeting_exists``: the meeting id is recorded already (a meeting is recorded once)."""

    def __init__(self, meeting_id: str):
        super().__init__("meeting_exists", f"meeting {meeting_id!r} is recorded already", "meeting_id")


class HeldInFuture(Rejected):
    """``held_in_future``: a meeting is recorded once it was held."""

    def __init__(self, held_at: datetime):
        super().__init__("held_in_future", f"held_at {held_at.isoformat()} is in the future", "held_at")


class NotACouncilMember(Rejected):
    """``not_a_member``: attendance lists only the members of the composition in force at the meeting."""

    def __init__(self, person_id: str, field: str):
        super().__init__("not_a_member", f"{person_id!r} is not a member of the council", field)


class MemberUnaccounted(Rejected):
    """``member_unaccounted``: each member is listed as present or absent."""

    def __init__(self, person_id: str):
        super().__init__("member_unaccounted", f"member {person_id!r} is listed neither present nor absent",
                         "absentees")


class NoQuorum(Rejected):
    """``no_quorum``: a meeting that half the members or fewer attended adopts no resolution."""

    def __init__(self, attended: int, members: int):
        super().__init__("no_quorum", f"{attended} of {members} members attended: more than half are needed to "
                         "adopt resolutions", "resolutions")


class ResolutionExists(Rejected):
    """``resolution_exists``: a resolution id is used once in a council."""

    def __init__(self, resolution_id: str):
        super().__init__("resolution_exists", f"resolution {resolution_id!r} exists already", "resolutions")


class DueBeforeMeeting(Rejected):
    """``due_before_meeting``: a resolution's deadline comes after the meeting that adopts it."""

    def __init__(self, resolution_id: str, due_at: datetime):
        super().__init__("due_before_meeting",
                         f"resolution {resolution_id!r} is due at {due_at.isoformat()}, not after its meeting",
                         "resolutions")


class ResolutionNotFound(NotFound):
    """``unknown_resolution``: the council adopted no resolution with this id."""

    def __init__(self, resolution_id: str):
        super().__init__("resolution", resolution_id, field="resolution_id")


class ResolutionAlreadyCompleted(Rejected):
    """``resolution_completed``: a resolution is completed (办结) once."""

    def __init__(self, resolution_id: str):
        super().__init__("resolution_completed", f"resolution {resolution_id!r} is completed already",
                         "resolution_id")
