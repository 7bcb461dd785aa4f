"""The orders service worker: intake + grid reactions + timers + queries on the kit runtime.

Run: ``python -m services.orders.app worker``.
"""
from __future__ import annotations

from schemas.orders import OrderDispatched, OrderDispatchExpired
from schemas.topics import ASSESSMENT, GRID, ORDERS, PARTY, POINTS
from services.kit.http import HttpError
from services.kit.routes import Request
from services.kit.runtime import ServiceRuntime
from services.kit.uow import UnitOfWork
from services.orders.projection import queries

from . import access, api
from . import metrics as mx
from .handler import OrdersHandler
from .settings import MIGRATIONS, OrdersSettings

settings = OrdersSettings()
handler = OrdersHandler(settings)

rt = ServiceRuntime("orders", settings, migrations=MIGRATIONS)
rt.consume("intake", [ORDERS.intake], handler)
rt.consume("grid", [GRID.events], handler)
rt.consume("erasures", [POINTS.events, ASSESSMENT.events, PARTY.events], handler)  # person.erased.v1 only
rt.command_api(handler)


# -- timers ---------------------------------------------------------------------------------


@rt.timer(settings.expiry_interval_seconds, name="expire_dispatches", replays=(OrderDispatchExpired, OrderDispatched),
          replay=handler.expire_orders)
async def expire(uow: UnitOfWork) -> None:
    """Dispatches past accept_by: every worker may run it, each takes the due orders no other holds."""
    await handler.expire_dispatches(uow)


@rt.timer(settings.metrics_interval_seconds, name="status_gauge")
async def status_gauge(uow: UnitOfWork) -> None:
    for status, n in (await queries.status_counts(uow.conn)).items():
        mx.ORDERS.labels(status).set(n)


# -- queries --------------------------------------------------------------------------------
# Who reads what (services.orders.app.access): an auditor everything; a community or street
# officer the orders, members and posts of the communities in their scope; a resident the orders
# they placed; a party member the orders dispatched to them and their own member record. Anything
# else is a 404 (a single object) or left out (a list), so that existence does not leak.


async def _order_for(conn, order_id: str, principal):
    order = await queries.get_order(conn, order_id)
    return order if order is not None and access.may_read_order(principal, order) else None


async def _member_for(conn, member_id: str, principal):
    member = await queries.get_member(conn, member_id)
    return member if member is not None and access.may_read_member(principal, member) else None


rt.lookup("/v1/orders/{order_id}", path=api.OrderRef, out=api.OrderOut, fetch=_order_for, scoped=True,
          roles=access.ORDER_READERS, summary="An order (服务订单) with its history.", one_statement=True)


@rt.get("/v1/orders", query=api.OrderQuery, responses={200: api.OrderPage}, roles=access.ORDER_READERS)
async def list_orders(req: Request[None, api.OrderQuery, None]):
    """Orders by community / status / category / assignee, newest first, paginated.

    Only the orders the caller may read: an officer's communities, a resident's own orders, a
    party member's orders dispatched to them (an auditor: every order)."""
    q, p = req.query, req.principal
    async with rt.read() as conn:
        return await queries.list_orders(conn, community_id=q.community_id, status=q.status and q.status.value,
                                         category=q.category and q.category.value, assignee_id=q.assignee_id,
                                         limit=q.limit, offset=q.offset, cursor=q.cursor,
                                         restrict=lambda where: access.order_filter(where, p),
                                         whole=access.reads_all(p) or access.officer_of(p, q.community_id))


rt.lookup("/v1/members/{member_id}", path=api.MemberRef, out=api.MemberOut, fetch=_member_for, scoped=True,
          roles=access.MEMBER_READERS, one_statement=True,
          summary="A member's registration (双报到), claimed posts (岗位认领) and open orders.")


def _community(req) -> str:
    """The community of the path, or a 404 when it is outside the caller's scope."""
    community_id = req.path.community_id
    if not access.may_read_community(req.principal, community_id):
        raise HttpError(404, "not_found", f"no community {community_id!r}", "community_id")
    return community_id


@rt.get("/v1/communities/{community_id}/needs", path=api.CommunityRef, query=api.NeedsQuery,
        responses={200: api.Needs, 404: "a community outside the caller's scope"}, roles=access.COMMUNITY_READERS)
async def community_needs(req: Request[api.CommunityRef, api.NeedsQuery, None]):
    """需求清单: the community's open orders by category."""
    community_id = _community(req)
    async with rt.read() as conn:  # one statement
        return await queries.community_needs(conn, community_id, per_category=req.query.per_category)


@rt.get("/v1/communities/{community_id}/resources", path=api.CommunityRef, query=api.ResourcesQuery,
        responses={200: api.Resources, 404: "a community outside the caller's scope"}, roles=access.COMMUNITY_READERS)
async def community_resources(req: Request[api.CommunityRef, api.ResourcesQuery, None]):
    """资源清单: the community's claimed posts by category (members' names and work units), each
    category's posts listed a page at a time."""
    community_id = _community(req)
    q = req.query
    if q.after is not None and q.category is None:
        raise HttpError(422, "invalid_input", "after pages one category's posts: give its category too", "after")
    async with rt.read() as conn:  # one statement
        return await queries.community_resources(conn, community_id, per_category=q.per_category,
                                                 category=q.category and q.category.value, after=q.after)


app = rt.app
