"""What the application layer hands to ``decide``: time, policy and the data of other aggregates.

The domain never reads a clock or a database; the app builds one :class:`Context` per
command (or per timer tick) and passes it in.
"""
from __future__ import annotations

from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.orders import OrderCategory

from .state import MemberState

DEFAULT_ACCEPT_WINDOW = timedelta(hours=24)
"""How long an assignee has to accept a dispatch unless configured otherwise."""


class Candidate(BaseModel):
    """One active post of a member, as seen by dispatch (资源清单 resource list entry).

    ``open_orders`` is the member's number of orders currently dispatched to them or
    accepted (the same number on each of the member's posts). Build these from post states
    with :func:`services.orders.domain.dispatch.candidates_from_posts`.
    """

    model_config = ConfigDict(frozen=True)

    member_id: str
    post_id: str
    community_id: str
    categories: tuple[OrderCategory, ...]
    capacity: int = Field(ge=1)
    open_orders: int = Field(default=0, ge=0)


class Context(BaseModel):
    """Inputs of a decision that do not belong to the aggregate itself.

    - ``now``: the decision time (``accept_by`` = ``now`` + ``accept_window``; events' ``at``);
    - ``accept_window``: how long an assignee has to accept a dispatch (configurable);
    - ``candidates``: active posts in the order's community (needed by dispatch; manual
      dispatch checks the named assignee against them);
    - ``auto_dispatch``: when True, placing an order, a decline and (in ``check_expiry``)
      an expiry are followed at once by an automatic dispatch, if someone is eligible;
    - ``allow_over_capacity``: let automatic dispatch choose members already at capacity;
    - ``member``: the claiming member's state, needed by ``ClaimPost``.
    """

    model_config = ConfigDict(frozen=True)

    now: AwareDatetime
    accept_window: timedelta = DEFAULT_ACCEPT_WINDOW
    candidates: tuple[Candidate, ...] = ()
    auto_dispatch: bool = False
    allow_over_capacity: bool = False
    member: MemberState | None = None

    @field_validator("accept_window")
    @classmethod
    def _window_is_positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("accept_window must be positive")
        return v
