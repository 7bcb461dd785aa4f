"""The points service worker: intake commands, reactions to orders and grid, the expiry timer,
queries. Run: ``python -m services.points.app worker``."""
from __future__ import annotations

import re

from schemas.topics import GRID, ORDERS, POINTS
from services.kit import clock
from services.kit.http import HttpError
from services.kit.runtime import Request, ServiceRuntime
from services.points.domain.clock import month_of

from . import metrics
from .handler import PointsHandler
from .rules import RulesFile
from .settings import PointsSettings
from ..projection import MIGRATIONS, queries


_PERIOD = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")
_COMMUNITY = re.compile(r"^[0-9]{12}$")

settings = PointsSettings()
rules = RulesFile(settings.rules_path)
handler = PointsHandler(rules)
rt = ServiceRuntime("points", settings, migrations=MIGRATIONS)
rt.consume("intake", [POINTS.intake], handler)
rt.consume("reactions", [ORDERS.events, GRID.events], handler)
rt.command_api(handler)


def _pool():
    assert rt.pool is not None
    return rt.pool


# -- queries -------------------------------------------------------------------------------
@rt.route("/v1/accounts/{account_id}")
async def get_account(req: Request):
    async with _pool().acquire() as conn:
        found = await queries.account(conn, req.params["account_id"])
    if found is None:
        raise HttpError(404, "not_found", f"no account {req.params['account_id']!r}", "account_id")
    return found


@rt.route("/v1/accounts/{account_id}/statement")
async def get_statement(req: Request):
    limit, offset = req.query.page()
    account_id = req.params["account_id"]
    async with _pool().acquire() as conn:
        if await queries.account(conn, account_id) is None:
            raise HttpError(404, "not_found", f"no account {account_id!r}", "account_id")
        return await queries.statement(conn, account_id, limit, offset)


@rt.route("/v1/deeds/{deed_id}")
async def get_deed(req: Request):
    async with _pool().acquire() as conn:
        found = await queries.deed(conn, req.params["deed_id"])
    if found is None:
        raise HttpError(404, "not_found", f"no deed {req.params['deed_id']!r}", "deed_id")
    return found


@rt.route("/v1/rankings")
async def get_rankings(req: Request):
    """好人榜: ?scope=community|district&community_id=&period=YYYY-MM|YYYY (default: this month)."""
    scope = req.query.str("scope", "district")
    if scope not in ("community", "district"):
        raise HttpError(422, "invalid_query", "scope must be community or district", "scope")
    community = req.query.str("community_id")
    if scope == "community":
        if community is None:
            raise HttpError(422, "invalid_query", "community_id is required for scope=community", "community_id")
        if not _COMMUNITY.match(community):
            raise HttpError(422, "invalid_query", "community_id must be 12 digits", "community_id")
    elif community is not None:
        raise HttpError(422, "invalid_query", "community_id only goes with scope=community", "community_id")
    period = req.query.str("period") or month_of(clock.now())
    if not _PERIOD.match(period):
        raise HttpError(422, "invalid_query", "period must be YYYY-MM or YYYY", "period")
    limit, offset = req.query.page(default_limit=20, max_limit=500)
    async with _pool().acquire() as conn:
        return await queries.rankings(conn, period=period, community_id=community,
                                      candidates=settings.moral_model_candidates, limit=limit, offset=offset)


@rt.route("/v1/merchants/{account_id}/redemptions")
async def get_redemptions(req: Request):
    limit, offset = req.query.page()
    account_id = req.params["account_id"]
    async with _pool().acquire() as conn:
        found = await queries.account(conn, account_id)
        if found is None or found["kind"] != "merchant":
            raise HttpError(404, "not_found", f"no merchant account {account_id!r}", "account_id")
        return await queries.redemptions(conn, account_id, limit, offset)


@rt.route("/v1/ledger/check")
async def get_ledger_check(req: Request):
    async with _pool().acquire() as conn:
        return await queries.ledger_check(conn)


# -- timers --------------------------------------------------------------------------------
@rt.timer(settings.expiry_interval_seconds)
async def expire_points(uow):
    await handler.expire(uow, limit=settings.expiry_batch)


@rt.timer(settings.deed_credit_interval_seconds)
async def credit_deeds(uow):
    await handler.credit_refused_deeds(uow)


@rt.timer(settings.metrics_interval_seconds)
async def refresh_metrics(uow):
    metrics.set_accounts(await queries.accounts_by_kind(uow.conn))


app = rt.app
