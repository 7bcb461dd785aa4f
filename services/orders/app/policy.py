"""Who may send each orders command (the platform's role table), checked by the kit on every path.

What the table cannot say, because it needs the order or the post, the handler checks
(:mod:`services.orders.app.access`):

- a resident cancels and rates only an order they placed (``resident_id`` = their ``sub``);
- an officer dispatches, cancels and evaluates (考单) only an order of a community in their scope;
- a party member accepts, declines and completes only an order dispatched to them, and releases
  only a post they hold;

any other order or post is refused exactly as an unknown one (``unknown_order`` /
``unknown_post``), so that its existence does not leak. The member who served an order never
evaluates it (``self_evaluation``, the domain's rule).

After completion the resident rates the service (``orders.order.rate.v1`` → ``rated``, once),
and the organisation reviews it (考单, ``orders.order.evaluate.v1`` → ``evaluated``): only an
officer of the order's community passes an order, which is what earns the member points, so a
resident and the member who served them cannot earn points between themselves. A 考单 without a
rating carries the resident's.
"""
from __future__ import annotations

from schemas.orders import (
    AcceptOrder, CancelOrder, ClaimPost, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, PlaceOrder,
    ErasePerson, MoveMember, RateOrder, RegisterMember, ReleasePost,
)
from services.kit.policy import SUB, Policy, allow

OFFICERS = ("community_officer", "street_officer")
"""Who acts for a community's orders and members: its officers and its street's."""

_IN_SCOPE = "an order of a community in the caller's scope"
_OWN = "an order the caller placed"
_THEIRS = "an order dispatched to the caller"

POLICY = Policy("orders", {
    PlaceOrder: allow("resident", actor={"resident_id": SUB}, note="not naming a grid case (`source_case_id`)"),
    # officers first: the grant a test's sender_token picks for a command naming nobody
    CancelOrder: (allow(*OFFICERS, actor={"cancelled_by": SUB}, note=_IN_SCOPE),
                  allow("resident", actor={"cancelled_by": SUB}, note=_OWN)),
    RateOrder: allow("resident", actor={"resident_id": SUB}, note=_OWN + ", completed; one rating per order"),
    EvaluateOrder: allow(*OFFICERS, actor={"evaluator_id": SUB},
                         note=_IN_SCOPE + " (考单); not the member who served it"),
    DispatchOrder: allow(*OFFICERS, actor={"dispatched_by": SUB}, note=_IN_SCOPE),
    AcceptOrder: allow("party_member", actor={"assignee_id": SUB}, note=_THEIRS),
    DeclineOrder: allow("party_member", actor={"assignee_id": SUB}, note=_THEIRS),
    CompleteOrder: allow("party_member", actor={"assignee_id": SUB}, note=_THEIRS),
    ClaimPost: allow("party_member", actor={"member_id": SUB}, note="in the community the caller registered with"),
    ReleasePost: allow("party_member", actor={"member_id": SUB}, note="a post the caller holds"),
    RegisterMember: allow(*OFFICERS, area=lambda c: c.community_id),
    MoveMember: allow(*OFFICERS, area=lambda c: c.community_id, note="the community the member moved to in the "
                      "caller's scope"),
    ErasePerson: allow("data_protection_officer", actor={"requested_by": SUB}, note="any person, with a reason"),
})
