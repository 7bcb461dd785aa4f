"""Orders (四单式) commands and events: 居民点单、社区派单、干部接单、组织考单.

Commands arrive on ``orders.intake.v1`` (resident apps, community consoles); events are
published on ``orders.events.v1`` by the orders service only. Type strings and required
fields are fixed by the contract (docs/contract.md); every other field here is optional. A command's data is
the data of the event it leads to, minus what the service derives (the community from the
grid id, the acceptance deadline from the configured window, the current assignee...).

Aggregates and record keys (= CloudEvents ``subject``):

- an order (服务订单) is keyed by ``order_id``;
- a member (在职党员, 双报到) and the posts they claim (岗位认领) are keyed by ``member_id``,
  so one member's registration, claims and releases stay in order on one partition. A post
  has its own state, identified by ``post_id`` (see ``services.orders.domain.state_key``).

Order lifecycle (``status`` of the order state)::

    placed ──dispatch──▶ dispatched ──accept──▶ accepted ──complete──▶ completed ──evaluate──▶ evaluated
      ▲                    │  │                                          (rate)
      │                 decline expire (accept_by passed)
      │                    ▼  ▼
      └──── declined / dispatch_expired ──dispatch again──▶ dispatched ...
    cancel: from any state before completed.

After completion the resident who placed the order rates it (``rate``: 1-5, once; the status
does not change) and the organisation reviews it (考单, ``evaluate``: a community or street
officer; passed or not, which is what earns the member points).

Order ``category`` (服务类别, docs/contract.md "Codes"): see :class:`OrderCategory`.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .common import Command, CommunityId, Event, GridId, NonEmptyStr, StreetId, Text, Timestamp, pii, ErasePersonCommand, PersonErasedEvent


class OrderCategory(str, Enum):
    """The service an order asks for (服务类别), the 12 categories of docs/contract.md."""

    DAILY_CARE = "daily_care"  # 生活照料
    CLEANING = "cleaning"  # 家庭保洁
    LEGAL_AID = "legal_aid"  # 法律援助
    CULTURE_SPORTS = "culture_sports"  # 文体娱乐
    RELIEF = "relief"  # 生活救助
    MEDIATION = "mediation"  # 矛盾调处
    REPAIR = "repair"  # 技术维修
    POLICY = "policy"  # 政策宣传
    MEDICAL = "medical"  # 医疗保障
    ENVIRONMENT = "environment"  # 环境整治
    HYGIENE = "hygiene"  # 卫生监督
    PROXY = "proxy"  # 全程代办


CATEGORY_LABELS: dict[OrderCategory, str] = {
    OrderCategory.DAILY_CARE: "生活照料",
    OrderCategory.CLEANING: "家庭保洁",
    OrderCategory.LEGAL_AID: "法律援助",
    OrderCategory.CULTURE_SPORTS: "文体娱乐",
    OrderCategory.RELIEF: "生活救助",
    OrderCategory.MEDIATION: "矛盾调处",
    OrderCategory.REPAIR: "技术维修",
    OrderCategory.POLICY: "政策宣传",
    OrderCategory.MEDICAL: "医疗保障",
    OrderCategory.ENVIRONMENT: "环境整治",
    OrderCategory.HYGIENE: "卫生监督",
    OrderCategory.PROXY: "全程代办",
}

AUTO = "auto"
"""``dispatched_by`` of an automatic dispatch (the service chose the assignee)."""

DEFAULT_WEEKLY_CAPACITY = 3
"""Weekly capacity of a post claim that does not state one (orders per week)."""

MAX_SERVICE_MINUTES = 7 * 24 * 60
"""The longest service one order may record (a week of minutes)."""

Rating = Annotated[int, Field(ge=1, le=5)]
"""The resident's rating of a completed service, 1 (poor) to 5 (excellent)."""

ServiceMinutes = Annotated[int, Field(ge=1, le=MAX_SERVICE_MINUTES)]
"""Minutes of service actually given (drives points awards)."""

Capacity = Annotated[int, Field(ge=1, le=100)]
"""How many orders a week a member offers to take through one post."""

MOVE_REPORT_DAYS = 30
"""Days a member who moved has to report to their new community, unless the move names a deadline."""

Categories = Annotated[list[OrderCategory], Field(min_length=1, max_length=len(OrderCategory))]


# ---------------------------------------------------------------------------------------
# Events (orders.events.v1)
# ---------------------------------------------------------------------------------------


class OrderPlaced(Event):
    """点单: a resident (or a grid case of kind resident need) ordered a service.

    ``community_id`` is derived from ``grid_id``; ``source_case_id`` is the grid case the
    order came from (null when a resident placed it directly).
    """

    TYPE: ClassVar[str] = "orders.order.placed.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    resident_id: Annotated[NonEmptyStr, pii("identifier")]
    community_id: CommunityId
    grid_id: GridId
    category: OrderCategory
    description: Annotated[Text, pii("free_text")]
    source_case_id: NonEmptyStr | None
    street_id: StreetId | None = Field(default=None, description="9-digit street prefix of the grid id")
    at: Timestamp | None = Field(default=None, description="when the order was placed")


class OrderDispatched(Event):
    """派单: the order was given to a member who must accept it by ``accept_by``.

    ``dispatched_by`` is the community operator's id, or ``"auto"`` when the service chose
    the assignee. ``post_id`` is the claimed post that qualified the assignee; ``attempt``
    counts dispatches of this order (1 for the first).
    """

    TYPE: ClassVar[str] = "orders.order.dispatched.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    dispatched_by: Annotated[NonEmptyStr, pii("identifier")]
    accept_by: Timestamp
    post_id: NonEmptyStr | None = None
    attempt: int | None = Field(default=None, ge=1)
    at: Timestamp | None = None


class OrderAccepted(Event):
    """接单: the assignee took the order on."""

    TYPE: ClassVar[str] = "orders.order.accepted.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    attempt: int | None = Field(default=None, ge=1)
    at: Timestamp | None = None


class OrderDeclined(Event):
    """The assignee declined the order (拒单); it waits to be dispatched to someone else."""

    TYPE: ClassVar[str] = "orders.order.declined.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    reason: Annotated[NonEmptyStr, pii("free_text")]
    attempt: int | None = Field(default=None, ge=1)
    at: Timestamp | None = None


class OrderDispatchExpired(Event):
    """The assignee did not accept by ``accept_by`` (超时未接单); the order waits for another dispatch."""

    TYPE: ClassVar[str] = "orders.order.dispatch_expired.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    accept_by: Timestamp | None = None
    attempt: int | None = Field(default=None, ge=1)
    at: Timestamp | None = None


class OrderCompleted(Event):
    """The assignee finished the service (服务完成), after ``service_minutes`` of work."""

    TYPE: ClassVar[str] = "orders.order.completed.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    service_minutes: ServiceMinutes
    note: Annotated[Text | None, pii("free_text")] = None
    at: Timestamp | None = None


class OrderRated(Event):
    """评价: the resident who placed the order rated the completed service (1-5), once.

    A rating earns nobody anything: only the organisation's 考单 (:class:`OrderEvaluated`)
    passes an order. A 考单 that states no rating carries this one.
    """

    TYPE: ClassVar[str] = "orders.order.rated.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    resident_id: Annotated[NonEmptyStr, pii("identifier")]
    rating: Rating
    comment: Annotated[Text | None, pii("free_text")] = None
    occurred_at: Timestamp | None = Field(default=None, description="when the resident rated")


class OrderEvaluated(Event):
    """考单: the organisation's review (``passed``) of a completed order, by a community or
    street officer (``evaluator_id``), with a rating 1-5: the officer's, or else the resident's
    (:class:`OrderRated`).

    Passed orders feed volunteer points (by ``category`` and ``service_minutes``) and the
    assessment of the assignee and ``community_id``; those extras are copied from the order.
    """

    TYPE: ClassVar[str] = "orders.order.evaluated.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr, pii("identifier")]
    rating: Rating
    passed: bool
    evaluator_id: Annotated[NonEmptyStr, pii("identifier")]
    community_id: CommunityId | None = None
    grid_id: GridId | None = None
    category: OrderCategory | None = None
    service_minutes: ServiceMinutes | None = None
    resident_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    comment: Annotated[Text | None, pii("free_text")] = None
    at: Timestamp | None = None


class OrderCancelled(Event):
    """The order was withdrawn before completion (撤单). ``assignee_id``: who held it, if anyone."""

    TYPE: ClassVar[str] = "orders.order.cancelled.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    reason: Annotated[NonEmptyStr, pii("free_text")]
    cancelled_by: Annotated[NonEmptyStr | None, pii("identifier")] = None
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    at: Timestamp | None = None


class MemberRegistered(Event):
    """双报到: an in-service Party member reported to the community where they live, with their work unit."""

    TYPE: ClassVar[str] = "orders.member.registered.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    community_id: CommunityId
    unit_id: NonEmptyStr
    name: Annotated[NonEmptyStr | None, pii("name")] = None
    unit_name: NonEmptyStr | None = None
    at: Timestamp | None = None


class MemberMoved(Event):
    """A registered member moved to another residential community (搬迁): from ``at`` on they report
    to ``community_id`` (the 双报到 of the member's half starts again there) by ``report_by``.
    Their work unit is unchanged; ``from_community_id`` is the community they left."""

    TYPE: ClassVar[str] = "orders.member.moved.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    community_id: CommunityId
    from_community_id: CommunityId
    unit_id: NonEmptyStr
    report_by: Timestamp = Field(description="the fresh deadline for reporting to the new community")
    occurred_at: Timestamp = Field(description="when the move was recorded")


class PostClaimed(Event):
    """岗位认领: a member claimed a service post in a community, for some categories, up to ``capacity`` orders a week."""

    TYPE: ClassVar[str] = "orders.post.claimed.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    post_id: NonEmptyStr
    community_id: CommunityId
    categories: Categories
    capacity: Capacity = DEFAULT_WEEKLY_CAPACITY
    title: NonEmptyStr | None = None
    at: Timestamp | None = None


class PostReleased(Event):
    """A member gave a claimed post up (释放岗位); orders they already hold stay with them."""

    TYPE: ClassVar[str] = "orders.post.released.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    post_id: NonEmptyStr
    community_id: CommunityId | None = None
    reason: Annotated[NonEmptyStr | None, pii("free_text")] = None
    at: Timestamp | None = None


# ---------------------------------------------------------------------------------------
# Commands (orders.intake.v1)
# ---------------------------------------------------------------------------------------


class PlaceOrder(Command):
    """点单: order a service for a resident. Leads to :class:`OrderPlaced`.

    The community is derived from ``grid_id``; a ``community_id`` sent along must agree.
    """

    TYPE: ClassVar[str] = "orders.order.place.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    resident_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the resident: the sender (filled from the token when absent)")
    grid_id: GridId
    category: OrderCategory
    description: Annotated[Text, pii("free_text")]
    source_case_id: NonEmptyStr | None = Field(
        default=None, description="the grid case the order is made from: set by the service for a resident-need "
                                  "case, refused on a command")
    community_id: CommunityId | None = None


class DispatchOrder(Command):
    """派单: give the order to a member. Leads to :class:`OrderDispatched`.

    Without ``assignee_id`` the service chooses (automatic dispatch, ``dispatched_by`` =
    ``"auto"``). A manual dispatch records its sender, the community or street officer, in
    ``dispatched_by`` (filled from the token). ``accept_by`` overrides the service's acceptance window.
    """

    TYPE: ClassVar[str] = "orders.order.dispatch.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = None
    dispatched_by: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the officer: the sender (filled from the token when absent)")
    accept_by: Timestamp | None = None

    @model_validator(mode="after")
    def _manual_dispatch_names_operator(self) -> "DispatchOrder":
        if self.assignee_id is not None and self.dispatched_by == AUTO:
            raise ValueError(f"a manual dispatch (with assignee_id) is by a person, not {AUTO!r}")
        return self

    @property
    def automatic(self) -> bool:
        return self.assignee_id is None


class AcceptOrder(Command):
    """接单: the assignee accepts the order. Leads to :class:`OrderAccepted`."""

    TYPE: ClassVar[str] = "orders.order.accept.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the assignee: the sender (filled from the token when absent)")


class DeclineOrder(Command):
    """The assignee declines the order. Leads to :class:`OrderDeclined`."""

    TYPE: ClassVar[str] = "orders.order.decline.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the assignee: the sender (filled from the token when absent)")
    reason: Annotated[NonEmptyStr, pii("free_text")]


class CompleteOrder(Command):
    """The assignee reports the service done. Leads to :class:`OrderCompleted`."""

    TYPE: ClassVar[str] = "orders.order.complete.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    assignee_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the assignee: the sender (filled from the token when absent)")
    service_minutes: ServiceMinutes
    note: Annotated[Text | None, pii("free_text")] = None


class RateOrder(Command):
    """评价: the resident who placed a completed order rates the service. Leads to :class:`OrderRated`.

    Once per order: the same rating again is a no-op, a different one is refused (``already_rated``).
    """

    TYPE: ClassVar[str] = "orders.order.rate.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    resident_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the resident who placed the order: the sender (filled from the token when absent)")
    rating: Rating
    comment: Annotated[Text | None, pii("free_text")] = None


class EvaluateOrder(Command):
    """考单: the organisation's pass/fail of a completed order. Leads to :class:`OrderEvaluated`.

    ``rating`` may be omitted once the resident has rated (:class:`RateOrder`): the 考单 then
    carries the resident's rating; with neither it is refused (``rating_required``).
    """

    TYPE: ClassVar[str] = "orders.order.evaluate.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    rating: Rating | None = Field(
        default=None, description="1-5; when absent, the resident's rating (refused if the resident has not rated)")
    passed: bool
    evaluator_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="a community or street officer of the order's community: the sender (filled from "
                                  "the token when absent)")
    comment: Annotated[Text | None, pii("free_text")] = None


class CancelOrder(Command):
    """撤单: withdraw an order before it is completed. Leads to :class:`OrderCancelled`."""

    TYPE: ClassVar[str] = "orders.order.cancel.v1"
    SUBJECT: ClassVar[str] = "order_id"

    order_id: NonEmptyStr
    reason: Annotated[NonEmptyStr, pii("free_text")]
    cancelled_by: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the resident who placed the order or an officer of its community: the sender "
                                  "(filled from the token when absent)")


class RegisterMember(Command):
    """双报到: register an in-service Party member with their residential community. Leads to :class:`MemberRegistered`."""

    TYPE: ClassVar[str] = "orders.member.register.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    community_id: CommunityId
    unit_id: NonEmptyStr
    name: Annotated[NonEmptyStr | None, pii("name")] = None
    unit_name: NonEmptyStr | None = None


class MoveMember(Command):
    """A registered member moved to another residential community: the new community's office
    records it. Leads to :class:`MemberMoved` (the member's work unit stays; the same community
    again changes nothing)."""

    TYPE: ClassVar[str] = "orders.member.move.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr, pii("identifier")]
    community_id: CommunityId = Field(description="the community the member lives in now")
    report_by: Timestamp | None = Field(
        default=None, description=f"the deadline for reporting to the new community; default "
                                  f"{MOVE_REPORT_DAYS} days after the move")


class ClaimPost(Command):
    """岗位认领: a registered member claims a service post. Leads to :class:`PostClaimed`."""

    TYPE: ClassVar[str] = "orders.post.claim.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the member: the sender (filled from the token when absent)")
    post_id: NonEmptyStr
    community_id: CommunityId
    categories: Categories
    capacity: Capacity = DEFAULT_WEEKLY_CAPACITY
    title: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _categories_once_each(self) -> "ClaimPost":
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must not repeat")
        return self


class ReleasePost(Command):
    """Give a claimed post up. Leads to :class:`PostReleased`."""

    TYPE: ClassVar[str] = "orders.post.release.v1"
    SUBJECT: ClassVar[str] = "member_id"

    member_id: Annotated[NonEmptyStr | None, pii("identifier")] = Field(
        default=None, description="the member: the sender (filled from the token when absent)")
    post_id: NonEmptyStr
    reason: Annotated[NonEmptyStr | None, pii("free_text")] = None


ORDER_EVENTS: tuple[type[Event], ...] = (
    OrderPlaced, OrderDispatched, OrderAccepted, OrderDeclined, OrderDispatchExpired,
    OrderCompleted, OrderRated, OrderEvaluated, OrderCancelled,
)
MEMBER_EVENTS: tuple[type[Event], ...] = (MemberRegistered, MemberMoved)
POST_EVENTS: tuple[type[Event], ...] = (PostClaimed, PostReleased)

ORDER_COMMANDS: tuple[type[Command], ...] = (
    PlaceOrder, DispatchOrder, AcceptOrder, DeclineOrder, CompleteOrder, RateOrder, EvaluateOrder, CancelOrder,
)
MEMBER_COMMANDS: tuple[type[Command], ...] = (RegisterMember, MoveMember)
POST_COMMANDS: tuple[type[Command], ...] = (ClaimPost, ReleasePost)


# ---------------------------------------------------------------------------------------
# Erasure (shapes in schemas.common)
# ---------------------------------------------------------------------------------------


class ErasePerson(ErasePersonCommand):
    """擦除 Erase a person's personal data in the orders service (see :class:`~schemas.common.ErasePersonCommand`)."""

    TYPE: ClassVar[str] = "orders.person.erase.v1"


class PersonErased(PersonErasedEvent):
    """A person's data was erased in the orders service (see :class:`~schemas.common.PersonErasedEvent`)."""

    TYPE: ClassVar[str] = "orders.person.erased.v1"
