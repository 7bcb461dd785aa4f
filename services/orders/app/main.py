"""The orders service worker: intake + grid reactions + timers + queries on the kit runtime.

Run: ``python -m services.orders.app worker``.
"""
from __future__ import annotations

from schemas.topics import GRID, ORDERS
from services.kit.routes import Request
from services.kit.runtime import ServiceRuntime
from services.kit.uow import UnitOfWork
from services.orders.projection import queries

from . import api
from . import metrics as mx
from .handler import OrdersHandler
from .settings import MIGRATIONS, OrdersSettings

settings = OrdersSettings()
handler = OrdersHandler(settings)

rt = ServiceRuntime("orders", settings, migrations=MIGRATIONS)
rt.consume("intake", [ORDERS.intake], handler)
rt.consume("grid", [GRID.events], handler)
rt.command_api(handler)


# -- timers ---------------------------------------------------------------------------------


@rt.timer(settings.expiry_interval_seconds, name="expire_dispatches")
async def expire(uow: UnitOfWork) -> None:
    """Dispatches past accept_by: every worker may run it, each takes the due orders no other holds."""
    await handler.expire_dispatches(uow)


@rt.timer(settings.metrics_interval_seconds, name="status_gauge")
async def status_gauge(uow: UnitOfWork) -> None:
    for status, n in (await queries.status_counts(uow.conn)).items():
        mx.ORDERS.labels(status).set(n)


# -- queries --------------------------------------------------------------------------------


rt.lookup("/v1/orders/{order_id}", path=api.OrderRef, out=api.OrderOut, fetch=queries.get_order,
          summary="An order (服务订单) with its history.")


@rt.get("/v1/orders", query=api.OrderQuery, responses={200: api.OrderPage})
async def list_orders(req: Request[None, api.OrderQuery, None]):
    """Orders by community / status / category / assignee, newest first, paginated."""
    q = req.query
    async with rt.connection() as conn:
        return await queries.list_orders(conn, community_id=q.community_id, status=q.status and q.status.value,
                                         category=q.category and q.category.value, assignee_id=q.assignee_id,
                                         limit=q.limit, offset=q.offset)


rt.lookup("/v1/members/{member_id}", path=api.MemberRef, out=api.MemberOut, fetch=queries.get_member,
          summary="A member's registration (双报到), claimed posts (岗位认领) and open orders.")


@rt.get("/v1/communities/{community_id}/needs", path=api.CommunityRef, query=api.NeedsQuery,
        responses={200: api.Needs})
async def community_needs(req: Request[api.CommunityRef, api.NeedsQuery, None]):
    """需求清单: the community's open orders by category."""
    async with rt.connection() as conn:
        return await queries.community_needs(conn, req.path.community_id, per_category=req.query.per_category)


@rt.get("/v1/communities/{community_id}/resources", path=api.CommunityRef, responses={200: api.Resources})
async def community_resources(req: Request[api.CommunityRef, None, None]):
    """资源清单: the community's claimed posts by category."""
    async with rt.connection() as conn:
        return await queries.community_resources(conn, req.path.community_id)


app = rt.app
