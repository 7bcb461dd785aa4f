"""Who the simulator speaks as: the demo identities of ``python -m services.kit.devidentity``.

Every command goes out with the token of a person in the role that really sends it (a grid
worker reports and patrols, a community officer registers and dispatches, a resident gives
feedback and places orders...): :data:`ROLE_OF` maps each intake command type to that role, and
:func:`tokens_by_role` reads one token per role from ``identities.json``. Roles are not
enforced by the services yet; the tokens travel with every command all the same
(:class:`~services.simulator.client.CommandClient`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

ROLE_OF: Mapping[str, str] = {
    # grid: the grid worker on the street, the community office, the handling department
    "grid.case.report.v1": "grid_worker",
    "grid.patrol.log.v1": "grid_worker",
    "grid.case.verify.v1": "grid_worker",
    "grid.case.register.v1": "community_officer",
    "grid.case.dispatch.v1": "community_officer",
    "grid.case.dismiss.v1": "community_officer",
    "grid.case.escalate.v1": "community_officer",
    "grid.case.handle.v1": "department_officer",
    "grid.case.feedback.v1": "resident",
    # orders: residents ask, party members serve, the community office dispatches
    "orders.order.place.v1": "resident",
    "orders.order.cancel.v1": "resident",
    "orders.order.evaluate.v1": "resident",
    "orders.order.accept.v1": "party_member",
    "orders.order.decline.v1": "party_member",
    "orders.order.complete.v1": "party_member",
    "orders.post.claim.v1": "party_member",
    "orders.post.release.v1": "party_member",
    "orders.order.dispatch.v1": "community_officer",
    "orders.member.register.v1": "community_officer",
    # points: the points office, residents' deeds reviewed by the community, redeemed at a merchant
    "points.account.open.v1": "points_operator",
    "points.adjust.v1": "points_operator",
    "points.deed.submit.v1": "resident",
    "points.deed.review.v1": "community_officer",
    "points.redeem.v1": "merchant",
    # assessment: the assessment office
    "assessment.period.close.v1": "assessor",
    "assessment.review.record.v1": "assessor",
    "assessment.scheme.change.v1": "assessor",
}


def role_for(command_type: str) -> str | None:
    return ROLE_OF.get(command_type)


def default_path() -> Path:
    """``$IDENTITIES_FILE``, else ``$VAR_DIR/run/identities.json`` (``var/run/`` by default)."""
    given = os.environ.get("IDENTITIES_FILE")
    if given:
        return Path(given)
    return Path(os.environ.get("VAR_DIR") or "var") / "run" / "identities.json"


def tokens_by_role(path: Path) -> dict[str, str]:
    """role -> the token of the first identity in ``path`` holding that role."""
    out: dict[str, str] = {}
    for person in json.loads(Path(path).read_text()):
        for role in person["roles"]:
            out.setdefault(role, person["token"])
    return out
