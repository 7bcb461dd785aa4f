"""The orders service worker: intake + grid reactions + timers + queries on the kit runtime.

Run: ``python -m services.orders.app worker``.
"""
from __future__ import annotations

import re

from schemas.orders import OrderCategory
from schemas.topics import GRID, ORDERS
from services.kit.http import HttpError
from services.kit.runtime import Request, ServiceRuntime
from services.kit.uow import UnitOfWork
from services.orders.domain import OrderStatus
from services.orders.projection import queries

from . import metrics as mx
from .handler import GridCases, OrderCommands, Orders, expire_dispatches
from .settings import MIGRATIONS, OrdersSettings

COMMUNITY_RE = re.compile(r"^[0-9]{12}$")
STATUSES = frozenset(s.value for s in OrderStatus)
CATEGORIES = frozenset(c.value for c in OrderCategory)

settings = OrdersSettings()
orders = Orders(settings)
commands = OrderCommands(orders)
grid_cases = GridCases(orders)

rt = ServiceRuntime("orders", settings, migrations=MIGRATIONS)
rt.consume("intake", [ORDERS.intake], commands)
rt.consume("grid", [GRID.events], grid_cases)
rt.command_api(commands)


# -- timers ---------------------------------------------------------------------------------


@rt.timer(settings.expiry_interval_seconds, name="expire_dispatches")
async def expire(uow: UnitOfWork) -> None:
    await expire_dispatches(uow, orders)


@rt.timer(settings.metrics_interval_seconds, name="status_gauge")
async def status_gauge(uow: UnitOfWork) -> None:
    for status, n in (await queries.status_counts(uow.conn)).items():
        mx.ORDERS.labels(status).set(n)


# -- queries --------------------------------------------------------------------------------


def _community(value: str | None, field: str) -> str | None:
    if value is not None and not COMMUNITY_RE.match(value):
        raise HttpError(422, "invalid_query", "community_id must be 12 digits", field)
    return value


@rt.route("/v1/orders/{order_id}")
async def get_order(req: Request):
    """An order (服务订单) with its history."""
    async with rt.pool.acquire() as conn:
        found = await queries.get_order(conn, req.params["order_id"])
    if found is None:
        raise HttpError(404, "not_found", f"no order {req.params['order_id']!r}", "order_id")
    return found


@rt.route("/v1/orders")
async def list_orders(req: Request):
    """Orders by community / status / category / assignee, newest first, paginated."""
    q = req.query
    community_id = _community(q.str("community_id"), "community_id")
    status = q.choice("status", STATUSES)
    category = q.choice("category", CATEGORIES)
    assignee_id = q.str("assignee_id")
    limit, offset = q.page()
    async with rt.pool.acquire() as conn:
        return await queries.list_orders(conn, community_id=community_id, status=status, category=category,
                                         assignee_id=assignee_id, limit=limit, offset=offset)


@rt.route("/v1/members/{member_id}")
async def get_member(req: Request):
    """A member's registration (双报到), claimed posts (岗位认领) and open orders."""
    async with rt.pool.acquire() as conn:
        found = await queries.get_member(conn, req.params["member_id"])
    if found is None:
        raise HttpError(404, "not_found", f"no member {req.params['member_id']!r}", "member_id")
    return found


@rt.route("/v1/communities/{community_id}/needs")
async def community_needs(req: Request):
    """需求清单: the community's open orders by category."""
    community_id = _community(req.params["community_id"], "community_id")
    per_category = req.query.int("per_category", 50, lo=0, hi=500)
    async with rt.pool.acquire() as conn:
        return await queries.community_needs(conn, community_id, per_category=per_category)  # type: ignore[arg-type]


@rt.route("/v1/communities/{community_id}/resources")
async def community_resources(req: Request):
    """资源清单: the community's claimed posts by category."""
    community_id = _community(req.params["community_id"], "community_id")
    async with rt.pool.acquire() as conn:
        return await queries.community_resources(conn, community_id)  # type: ignore[arg-type]


app = rt.app
