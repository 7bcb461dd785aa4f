"""Named reasons for which the grid domain refuses a command.

Each is a :class:`services.kit.errors.Rejected` with a stable ``reason`` code (and the
command ``field`` at fault, when there is one). A command that does not apply in the case's
current status raises :class:`IllegalTransition` (reason ``illegal_transition``; ``command``
and ``state`` say which); one addressed to a case that does not exist raises
:class:`CaseNotFound` (reason ``unknown_case``).
"""
from __future__ import annotations

from services.kit.errors import IllegalTransition, NotFound, Rejected

__all__ = [
    "Rejected", "IllegalTransition", "CaseNotFound", "CaseExists", "UnknownGrid", "DueInPast",
    "ReworkDueWithoutRework", "DuplicateOfSelf", "DuplicateTargetNotOpen", "FeedbackAlreadyGiven",
    "NotAReporter", "NoHigherLevel", "JointMediationForDisputesOnly", "PatrolEndsBeforeStart", "PatrolInFuture",
    "PatrolExists", "SelfVerification",
    "UnknownDepartment", "SameDepartment", "AlreadyAccepted", "ReturnPending", "NoPendingReturn", "AlreadyContacted",
    "NotASevereHazard", "AlreadyControlled", "NotControlled", "ExtensionPending", "NoPendingExtension",
    "ExtensionNotLater", "DeadlinePassed", "ExclusionAlreadyRequested", "NoPendingExclusion",
    "WhistleNotFound", "WhistleExists", "NotSummoned", "AlreadyAnswered", "NotYetAnswered", "AlreadyRated",
    "MissingActor",
]


class CaseNotFound(NotFound):
    """No case with this id (reason ``unknown_case``)."""

    def __init__(self, case_id: str):
        super().__init__("case", case_id, field="case_id")


class CaseExists(Rejected):
    """A report for a case id that is already taken."""

    def __init__(self, case_id: str):
        super().__init__("case_exists", f"case {case_id!r} already exists", "case_id")


class UnknownGrid(Rejected):
    """The grid id is well formed but not in the grid register (网格信息数据库)."""

    def __init__(self, grid_id: str):
        super().__init__("unknown_grid", f"grid {grid_id!r} is not in the grid register", "grid_id")


class DueInPast(Rejected):
    """An explicit due time that is not in the future."""

    def __init__(self, field: str, due_at: object):
        super().__init__("due_in_past", f"{field} {due_at} is not after now", field)


class ReworkDueWithoutRework(Rejected):
    """``rework_due_at`` on a verification that passed."""

    def __init__(self) -> None:
        super().__init__("rework_due_without_rework", "a passed verification has no rework deadline", "rework_due_at")


class DuplicateOfSelf(Rejected):
    def __init__(self) -> None:
        super().__init__("duplicate_of_self", "a case cannot duplicate itself", "duplicate_of")


class DuplicateTargetNotOpen(Rejected):
    """``duplicate_of`` names a case that is not open (or unknown)."""

    def __init__(self, case_id: str):
        super().__init__("duplicate_target_not_open", f"case {case_id!r} is not an open case", "duplicate_of")


class FeedbackAlreadyGiven(Rejected):
    def __init__(self, case_id: str):
        super().__init__("feedback_already_given", f"case {case_id!r} already has feedback")


class NotAReporter(Rejected):
    def __init__(self, reporter_id: str):
        super().__init__("not_a_reporter", f"{reporter_id!r} did not report this case", "reporter_id")


class SelfVerification(Rejected):
    """The verifier handled the case: 核查 checks the handling, so it is someone else's duty."""

    def __init__(self, verifier_id: str):
        super().__init__("self_verification", f"{verifier_id!r} handled this case and cannot verify it", "verifier_id")


class NoHigherLevel(Rejected):
    """Escalation to a level that is not above the case's current level."""

    def __init__(self, current: str, wanted: str | None):
        detail = f"the case is at {current}; " + (f"{wanted} is not higher" if wanted else "there is no higher level")
        super().__init__("no_higher_level", detail, "to_level")


class JointMediationForDisputesOnly(Rejected):
    def __init__(self, category: str):
        super().__init__(
            "joint_mediation_for_disputes_only", f"joint mediation is for disputes, not {category}", "joint_mediation"
        )


class PatrolEndsBeforeStart(Rejected):
    def __init__(self) -> None:
        super().__init__("patrol_ends_before_start", "ended_at must be after started_at", "ended_at")


class PatrolInFuture(Rejected):
    def __init__(self) -> None:
        super().__init__("patrol_in_future", "a patrol cannot end in the future", "ended_at")


class PatrolExists(Rejected):
    """A patrol with this id was already logged (by another command)."""

    def __init__(self, patrol_id: str):
        super().__init__("patrol_exists", f"patrol {patrol_id!r} is already logged", "patrol_id")


# -- the department's part of a case ----------------------------------------------------------


class UnknownDepartment(Rejected):
    """The department is not in the department register, or none was named and the register's
    权责清单 names none for the case."""

    def __init__(self, department: str | None, field: str = "department"):
        detail = (f"department {department!r} is not in the department register" if department
                  else "no department named, and the department register names none for this case")
        super().__init__("unknown_department", detail, field)


class SameDepartment(Rejected):
    """An approved return re-dispatched to the department that returned the case."""

    def __init__(self, department: str):
        super().__init__("same_department", f"the case was returned by {department!r}: re-dispatch it elsewhere",
                         "department")


class AlreadyAccepted(Rejected):
    def __init__(self, case_id: str):
        super().__init__("already_accepted", f"case {case_id!r} is accepted already")


class ReturnPending(Rejected):
    """The department returned the case (退单) and the return awaits review."""

    def __init__(self, case_id: str):
        super().__init__("return_pending", f"case {case_id!r} was returned and the return awaits review")


class NoPendingReturn(Rejected):
    def __init__(self, case_id: str):
        super().__init__("no_pending_return", f"case {case_id!r} has no return awaiting review")


class AlreadyContacted(Rejected):
    """The reporter was contacted already (the first contact is what counts)."""

    def __init__(self, case_id: str):
        super().__init__("already_contacted", f"the reporter of case {case_id!r} was contacted already")


class NotASevereHazard(Rejected):
    """管控 is the first stage of a severe hazard (重大隐患) only."""

    def __init__(self, case_id: str):
        super().__init__("not_a_severe_hazard", f"case {case_id!r} is not a severe hazard")


class AlreadyControlled(Rejected):
    def __init__(self, case_id: str):
        super().__init__("already_controlled", f"the hazard of case {case_id!r} is under control already")


class NotControlled(Rejected):
    """A severe hazard is rectified (handled) only after it is brought under control (管控)."""

    def __init__(self, case_id: str):
        super().__init__("not_controlled", f"the severe hazard of case {case_id!r} is not under control yet")


class ExtensionPending(Rejected):
    def __init__(self, case_id: str):
        super().__init__("extension_pending", f"case {case_id!r} has an extension request awaiting review")


class NoPendingExtension(Rejected):
    def __init__(self, case_id: str):
        super().__init__("no_pending_extension", f"case {case_id!r} has no extension request awaiting review")


class ExtensionNotLater(Rejected):
    """An extension that does not move the deadline later."""

    def __init__(self, until: object, due_at: object):
        super().__init__("extension_not_later", f"until {until} is not after the deadline {due_at}", "until")


class DeadlinePassed(Rejected):
    """An extension asked for once the handling deadline has passed (超期 is not 延期)."""

    def __init__(self, due_at: object):
        super().__init__("deadline_passed", f"the handling deadline {due_at} has passed")


class ExclusionAlreadyRequested(Rejected):
    """A case may be put forward as a 不合理诉求 once."""

    def __init__(self, case_id: str):
        super().__init__("exclusion_already_requested", f"an exclusion of case {case_id!r} was requested already")


class NoPendingExclusion(Rejected):
    def __init__(self, case_id: str):
        super().__init__("no_pending_exclusion", f"case {case_id!r} has no exclusion request awaiting review")


# -- 吹哨报到 (whistles) ---------------------------------------------------------------------


class WhistleNotFound(NotFound):
    """No whistle with this id, or one the sender may not act on (reason ``unknown_whistle``)."""

    def __init__(self, whistle_id: str):
        super().__init__("whistle", whistle_id, field="whistle_id")


class WhistleExists(Rejected):
    """A whistle id that is already taken."""

    def __init__(self, whistle_id: str):
        super().__init__("whistle_exists", f"whistle {whistle_id!r} was already blown", "whistle_id")


class NotSummoned(Rejected):
    """A department the whistle did not summon."""

    def __init__(self, department: str):
        super().__init__("not_summoned", f"the whistle did not summon {department!r}", "department")


class AlreadyAnswered(Rejected):
    """A department reports to a whistle once."""

    def __init__(self, department: str):
        super().__init__("already_answered", f"{department!r} has already reported to this whistle", "department")


class NotYetAnswered(Rejected):
    """Rating a department that has neither reported nor been recorded missing."""

    def __init__(self, department: str):
        super().__init__("not_yet_answered", f"{department!r} has neither reported nor been recorded missing",
                         "department")


class AlreadyRated(Rejected):
    """The street rates a department's response to a whistle once."""

    def __init__(self, department: str):
        super().__init__("already_rated", f"{department!r} is already rated for this whistle", "department")


class MissingActor(Rejected):
    """A whistle command without the person who sends it (the policy fills it from the token)."""

    def __init__(self, field: str):
        super().__init__("missing_actor", f"{field} is required", field)
