"""The states of the orders aggregates: an order, a member, a post.

Frozen pydantic models; each round-trips through ``model_dump(mode="json")`` /
``model_validate`` because the application layer stores it as jsonb. ``None`` stands for
an aggregate that does not exist yet.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict

from schemas.orders import OrderCategory


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderStatus(str, Enum):
    """Where an order stands in 点单 → 派单 → 接单 → 考单."""

    PLACED = "placed"  # 已点单, waiting for its first dispatch
    DISPATCHED = "dispatched"  # 已派单, waiting for the assignee to accept by accept_by
    ACCEPTED = "accepted"  # 已接单, being served
    DECLINED = "declined"  # the last assignee declined; waiting for another dispatch
    DISPATCH_EXPIRED = "dispatch_expired"  # the last assignee let accept_by pass; waiting for another dispatch
    COMPLETED = "completed"  # 已完成, waiting for 考单 (the resident may rate it)
    EVALUATED = "evaluated"  # 已考单 (final)
    CANCELLED = "cancelled"  # 已撤单 (final)


AWAITING_DISPATCH = frozenset({OrderStatus.PLACED, OrderStatus.DECLINED, OrderStatus.DISPATCH_EXPIRED})
"""Statuses in which an order may be dispatched (again)."""

HELD = frozenset({OrderStatus.DISPATCHED, OrderStatus.ACCEPTED})
"""Statuses in which an order counts towards its assignee's load (open orders)."""

CANCELLABLE = AWAITING_DISPATCH | HELD
"""Statuses before completion: an order can be cancelled in any of them."""

RATABLE = frozenset({OrderStatus.COMPLETED, OrderStatus.EVALUATED})
"""Statuses after completion: the resident who placed the order may rate it (once)."""


class OrderState(_State):
    """A service order (服务订单) and what happened to it so far.

    ``attempt`` counts dispatches (0 before the first). ``declined_by`` and ``expired_for``
    list the members who declined this order or let a dispatch of it expire: automatic
    dispatch skips them. ``assignee_id`` is the member currently holding the order (set
    while dispatched / accepted and kept afterwards as the one who served it).
    ``resident_rating`` is the resident's own rating (评价); ``rating`` and ``passed`` are the
    考单's (whose rating is the resident's when the officer gave none).
    """

    order_id: str
    status: OrderStatus
    resident_id: str
    community_id: str
    grid_id: str
    category: OrderCategory
    description: str = ""
    source_case_id: str | None = None
    placed_at: datetime | None = None

    attempt: int = 0
    assignee_id: str | None = None
    post_id: str | None = None
    dispatched_by: str | None = None
    accept_by: datetime | None = None
    first_dispatched_at: datetime | None = None
    dispatched_at: datetime | None = None
    accepted_at: datetime | None = None
    declined_by: tuple[str, ...] = ()
    expired_for: tuple[str, ...] = ()

    service_minutes: int | None = None
    completed_at: datetime | None = None

    resident_rating: int | None = None
    resident_comment: str | None = None
    rated_at: datetime | None = None

    rating: int | None = None
    passed: bool | None = None
    evaluator_id: str | None = None
    evaluated_at: datetime | None = None

    cancel_reason: str | None = None
    cancelled_at: datetime | None = None

    @property
    def awaiting_dispatch(self) -> bool:
        """True when the order waits for a (new) assignee."""
        return self.status in AWAITING_DISPATCH

    @property
    def is_open(self) -> bool:
        """True until the order is completed or cancelled (it appears on the 需求清单 needs list)."""
        return self.status in CANCELLABLE

    @property
    def holder(self) -> str | None:
        """The member whose load this order counts towards (dispatched or accepted), else None."""
        return self.assignee_id if self.status in HELD else None

    @property
    def skipped_members(self) -> frozenset[str]:
        """Members automatic dispatch must not choose again for this order."""
        return frozenset(self.declined_by) | frozenset(self.expired_for)


class MemberState(_State):
    """An in-service Party member registered with their residential community (双报到)."""

    member_id: str
    community_id: str
    unit_id: str
    name: str | None = None
    unit_name: str | None = None
    registered_at: datetime | None = None
    moved_at: datetime | None = None
    previous_communities: tuple[str, ...] = ()


class PostStatus(str, Enum):
    """Whether a claimed post is still held."""

    CLAIMED = "claimed"
    RELEASED = "released"


class PostState(_State):
    """A service post claimed by a member (岗位认领): community, categories served, weekly capacity."""

    post_id: str
    member_id: str
    community_id: str
    categories: tuple[OrderCategory, ...]
    capacity: int
    status: PostStatus = PostStatus.CLAIMED
    title: str | None = None
    claimed_at: datetime | None = None
    released_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status is PostStatus.CLAIMED

    def serves(self, community_id: str, category: OrderCategory | str) -> bool:
        """True when this post is active, in ``community_id`` and covers ``category``."""
        return self.active and self.community_id == community_id and OrderCategory(category) in self.categories
