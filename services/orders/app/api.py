"""What the orders service's HTTP routes take and answer (path, query and response models)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.common import CommunityId
from schemas.orders import OrderCategory
from services.kit.routes import Id, Page, PageOut, ref
from services.orders.domain import OrderStatus

# -- path and query ----------------------------------------------------------------------------


OrderRef = ref("OrderRef", "order_id")


MemberRef = ref("MemberRef", "member_id")


CommunityRef = ref("CommunityRef", "community_id", CommunityId, "12 digits")


class OrderQuery(Page):
    community_id: CommunityId | None = Field(None, description="orders of this community (12 digits)")
    status: OrderStatus | None = None
    category: OrderCategory | None = None
    assignee_id: Id | None = Field(None, description="orders dispatched to this member")


class NeedsQuery(BaseModel):
    per_category: int = Field(50, ge=0, le=500, description="open orders listed per category (all are counted)")


class ResourcesQuery(BaseModel):
    per_category: int = Field(50, ge=1, le=500, description="posts listed per category (all are counted)")
    category: OrderCategory | None = Field(None, description="this category only")
    after: Id | None = Field(None, description="list the posts after this post id: a category's `next_after`, "
                                                "with that `category`")


# -- answers -----------------------------------------------------------------------------------


class OrderRow(BaseModel):
    """A service order (服务订单) as the projection holds it."""

    order_id: str
    status: OrderStatus
    category: OrderCategory
    category_label: str
    awaiting_dispatch: bool = Field(description="placed, declined or expired: waiting for a (new) dispatch")
    community_id: str
    grid_id: str
    resident_id: str
    description: str
    source_case_id: str | None = Field(description="the grid case the order came from, if any")
    attempt: int = Field(description="dispatches so far")
    assignee_id: str | None
    post_id: str | None
    dispatched_by: str | None
    accept_by: datetime | None
    placed_at: datetime | None
    first_dispatched_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    completed_at: datetime | None
    rated_at: datetime | None = Field(description="when the resident rated the service")
    evaluated_at: datetime | None
    cancelled_at: datetime | None
    service_minutes: int | None
    resident_rating: int | None = Field(description="the resident's own rating (1-5) of the completed service")
    resident_comment: str | None = Field(description="the resident's comment with their rating")
    rating: int | None = Field(description="the 考单's rating (1-5): the officer's, or else the resident's")
    passed: bool | None = Field(description="the 考单's verdict (organisation evaluation)")
    dispatch_misses: int
    last_miss_at: datetime | None
    updated_at: datetime


class OrderEvent(BaseModel):
    event_id: str
    type: str = Field(description="the event type (orders.order.*.v1)")
    at: datetime | None
    data: dict[str, Any] = Field(description="the event's data")


class OrderOut(OrderRow):
    """An order with its history."""

    history: list[OrderEvent] = Field(description="every event of the order, in order")


class OrderPage(PageOut[OrderRow]):
    """One page of orders, newest first."""


class Post(BaseModel):
    """A claimed (or released) post (岗位认领): the categories a member serves and how many a week."""

    post_id: str
    community_id: str
    categories: list[str]
    capacity: int
    status: str
    title: str | None
    claimed_at: datetime | None
    released_at: datetime | None


class MemberOut(BaseModel):
    """A member's registration (双报到), posts and open orders."""

    member_id: str
    community_id: str
    unit_id: str
    name: str | None
    unit_name: str | None
    registered_at: datetime | None
    posts: list[Post] = Field(description="claimed posts")
    released_posts: list[Post]
    capacity: int = Field(description="the claimed posts' weekly capacity, added up")
    open_order_count: int
    open_orders: list[OrderRow] = Field(description="dispatched or accepted orders")


class NeedCategory(BaseModel):
    category: str
    label: str
    open: int
    by_status: dict[str, int]
    orders: list[OrderRow] = Field(description="the first `per_category` open orders")


class Needs(BaseModel):
    """需求清单: a community's open orders by category."""

    community_id: str
    open: int
    awaiting_dispatch: int
    categories: list[NeedCategory]


class ResourcePost(BaseModel):
    post_id: str
    member_id: str
    categories: list[str]
    capacity: int
    title: str | None
    claimed_at: datetime | None
    member_name: str | None
    unit_id: str | None
    unit_name: str | None
    open_orders: int


class ResourceCategory(BaseModel):
    category: str
    label: str
    claimed: int = Field(description="the category's claimed posts, all counted")
    posts: list[ResourcePost] = Field(description="up to `per_category` of them, by post id")
    members: int
    capacity: int
    next_after: str | None = Field(description="the `after` of the next page of this category's posts "
                                               "(null: none left)")


class Resources(BaseModel):
    """资源清单: a community's claimed posts by category (``posts`` and ``members``: the whole
    community's, whatever the category asked for)."""

    community_id: str
    posts: int
    members: int
    categories: list[ResourceCategory]
