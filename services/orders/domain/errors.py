"""Named refusals of the orders domain. Each ``reason`` is a stable snake_case code.

State-machine refusals use the kit's :class:`IllegalTransition` (``illegal_transition``,
with the command and the current status in ``detail``); a command on an order, member or
post that does not exist raises :class:`NotFound` (``unknown_order``, ``unknown_member``,
``unknown_post``). The other rules have their own codes below.
"""
from __future__ import annotations

from services.kit.errors import IllegalTransition, NotFound, Rejected

__all__ = [
    "AcceptByInPast", "AcceptWindowClosed", "AlreadyExists", "AlreadyRated", "AssigneeNotEligible",
    "CommunityMismatch", "IllegalTransition", "NoEligibleAssignee", "NotAssignee", "NotFound", "NotPostHolder",
    "PostOutsideMemberCommunity", "RatingRequired", "Rejected", "ReportByInPast", "SelfEvaluation",
]


class AlreadyExists(Rejected):
    """``<what>_exists``: the id is taken by a different order / member / post (ids are never reused)."""

    def __init__(self, what: str, id: str, field: str | None = None):
        super().__init__(f"{what}_exists", f"{what} {id!r} already exists with other data", field)


class NotAssignee(Rejected):
    """``not_assignee``: only the member the order is dispatched to may accept, decline or complete it."""

    def __init__(self, order_id: str, given: str, current: str | None):
        super().__init__("not_assignee", f"order {order_id!r} is held by {current!r}, not {given!r}", "assignee_id")


class AcceptWindowClosed(Rejected):
    """``accept_window_closed``: the dispatch was not accepted by ``accept_by``; it is about to expire."""

    def __init__(self, order_id: str, accept_by: str):
        super().__init__("accept_window_closed", f"order {order_id!r} had to be accepted by {accept_by}")


class AcceptByInPast(Rejected):
    """``accept_by_in_past``: a dispatch must leave the assignee some time to accept."""

    def __init__(self, accept_by: str):
        super().__init__("accept_by_in_past", f"accept_by {accept_by} is not in the future", "accept_by")


class ReportByInPast(Rejected):
    """``report_by_in_past``: a member who moved must be left some time to report to the new community."""

    def __init__(self, report_by: str):
        super().__init__("report_by_in_past", f"report_by {report_by} is not in the future", "report_by")


class NoEligibleAssignee(Rejected):
    """``no_eligible_assignee``: automatic dispatch found nobody; the order keeps waiting.

    Nobody in the order's community has an active post of the order's category with room
    (below capacity) who has not already declined or let this order expire.
    """

    def __init__(self, order_id: str, community_id: str, category: str):
        super().__init__(
            "no_eligible_assignee",
            f"no member with a free {category} post in community {community_id} for order {order_id!r}; it waits",
        )


class AssigneeNotEligible(Rejected):
    """``assignee_not_eligible``: a manual dispatch names a member without an active matching post in the community."""

    def __init__(self, assignee_id: str, community_id: str, category: str):
        super().__init__(
            "assignee_not_eligible",
            f"member {assignee_id!r} has no active {category} post in community {community_id}",
            "assignee_id",
        )


class SelfEvaluation(Rejected):
    """``self_evaluation``: the member who served an order cannot be its evaluator (考单 is by the organisation)."""

    def __init__(self, evaluator_id: str):
        super().__init__("self_evaluation", f"{evaluator_id!r} served this order and cannot evaluate it", "evaluator_id")


class AlreadyRated(Rejected):
    """``already_rated``: the resident rated this order already, differently (a rating is given once)."""

    def __init__(self, order_id: str, rating: int):
        super().__init__("already_rated", f"order {order_id!r} was already rated {rating}", "rating")


class RatingRequired(Rejected):
    """``rating_required``: a 考单 without a rating, on an order the resident has not rated."""

    def __init__(self, order_id: str):
        super().__init__("rating_required",
                         f"order {order_id!r} has no rating from its resident: the 考单 must give one", "rating")


class CommunityMismatch(Rejected):
    """``community_mismatch``: the community given does not contain the grid (its 12-digit prefix)."""

    def __init__(self, community_id: str, grid_id: str):
        super().__init__("community_mismatch", f"grid {grid_id} is not in community {community_id}", "community_id")


class NotPostHolder(Rejected):
    """``not_post_holder``: only the member who claimed a post may release it."""

    def __init__(self, post_id: str, member_id: str):
        super().__init__("not_post_holder", f"post {post_id!r} is not held by {member_id!r}", "member_id")


class PostOutsideMemberCommunity(Rejected):
    """``post_outside_member_community``: members claim posts in the community they reported to (双报到)."""

    def __init__(self, community_id: str, member_community_id: str):
        super().__init__(
            "post_outside_member_community",
            f"the member reported to community {member_community_id}, not {community_id}",
            "community_id",
        )
