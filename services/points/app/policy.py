"""Who may send the points service's commands (:mod:`services.kit.policy`).

- 开户 ``points.account.open.v1``: a community or street officer opens resident and merchant
  accounts of a community of their scope (``community_id``); a points operator opens any
  kind, issuer accounts included (the handler refuses an issuer to the others). The account id
  is always ``<kind>:<holder_id>`` (the contract derives it).
- 调整 ``points.adjust.v1`` and its second approval ``points.adjust.approve.v1``: points
  operators, as themselves; the handler refuses crediting an account the operator holds and
  an approval by the operator who asked (``self_approval``).
- 申报 ``points.deed.submit.v1``: a resident, for their own account ``resident:<sub>``.
- 评审 ``points.deed.review.v1``: a community or street officer, as themselves; the deed's
  community must be in their scope (the handler: else ``unknown_deed``); nobody reviews their own deed.
- 兑换 ``points.redeem.v1``: a merchant, into their own ``merchant:<sub>``, with the resident's
  consent code (the handler).
"""
from __future__ import annotations

from schemas.points import Adjust, ApproveAdjustment, ErasePerson, OpenAccount, Redeem, ReviewDeed, SubmitDeed
from services.kit.policy import SUB, Policy, allow

NO_COMMUNITY = "(no community_id)"
"""The area of an opening that names no community: covered by no scope, so an officer must name one."""


def _opening_area(cmd: OpenAccount) -> str:
    return cmd.community_id or NO_COMMUNITY


POLICY = Policy("points", {
    OpenAccount: (
        allow("points_operator", note="any kind, issuer accounts included"),
        allow("community_officer", "street_officer", area=_opening_area,
              note="resident and merchant accounts of a community in scope (`community_id`)"),
    ),
    Adjust: allow("points_operator", actor={"operator_id": SUB},
                  note="never crediting an account the operator holds; over 100 points waits for a second operator"),
    ApproveAdjustment: allow("points_operator", actor={"approver_id": SUB},
                             note="not the operator who requested the adjustment"),
    SubmitDeed: allow("resident", actor={"account_id": "resident:" + SUB}),
    ReviewDeed: allow("community_officer", "street_officer", actor={"reviewer_id": SUB},
                      note="the deed's community in scope; not one's own deed"),
    Redeem: allow("merchant", actor={"credit_account": "merchant:" + SUB},
                  note="with the resident's consent code"),
    ErasePerson: allow("data_protection_officer", actor={"requested_by": SUB}, note="any person, with a reason"),
})
