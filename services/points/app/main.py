"""The points service worker: intake commands, reactions to orders and grid, the expiry timer,
queries. Run: ``python -m services.points.app worker``."""
from __future__ import annotations

from schemas.topics import GRID, ORDERS, POINTS
from services.kit import clock
from services.kit.http import HttpError
from services.kit.routes import Page, Request, found
from services.kit.runtime import ServiceRuntime
from services.points.domain.clock import month_of

from . import api, metrics
from .handler import PointsHandler
from .rules import RulesFile
from .settings import PointsSettings
from ..projection import MIGRATIONS, queries

settings = PointsSettings()
rules = RulesFile(settings.rules_path)
handler = PointsHandler(rules)
rt = ServiceRuntime("points", settings, migrations=MIGRATIONS)
rt.consume("intake", [POINTS.intake], handler)
rt.consume("reactions", [ORDERS.events, GRID.events], handler)
rt.command_api(handler)


# -- queries -------------------------------------------------------------------------------
rt.lookup("/v1/accounts/{account_id}", path=api.AccountRef, out=api.AccountOut, fetch=queries.account,
          summary="An account: balance and earning lots (积分批次).")


@rt.get("/v1/accounts/{account_id}/statement", path=api.AccountRef, query=Page,
        responses={200: api.Statement, 404: "no such account"})
async def get_statement(req: Request[api.AccountRef, Page, None]):
    """An account's postings, newest first."""
    account_id, q = req.path.account_id, req.query
    async with rt.connection() as conn:
        found(await queries.account(conn, account_id), "account", account_id, "account_id")
        return await queries.statement(conn, account_id, q.limit, q.offset)


rt.lookup("/v1/deeds/{deed_id}", path=api.DeedRef, out=api.DeedOut, fetch=queries.deed,
          summary="A deed (道德日记) and how far it got.")


@rt.get("/v1/rankings", query=api.RankingQuery, responses={200: api.Rankings})
async def get_rankings(req: Request[None, api.RankingQuery, None]):
    """好人榜: residents by points earned in a month or year, in a community or the district."""
    q = req.query
    if q.scope == "community" and q.community_id is None:
        raise HttpError(422, "invalid_query", "community_id is required for scope=community", "community_id")
    if q.scope == "district" and q.community_id is not None:
        raise HttpError(422, "invalid_query", "community_id only goes with scope=community", "community_id")
    async with rt.connection() as conn:
        return await queries.rankings(conn, period=q.period or month_of(clock.now()), community_id=q.community_id,
                                      candidates=settings.moral_model_candidates, limit=q.limit, offset=q.offset)


@rt.get("/v1/merchants/{account_id}/redemptions", path=api.AccountRef, query=Page,
        responses={200: api.Redemptions, 404: "no such merchant account"})
async def get_redemptions(req: Request[api.AccountRef, Page, None]):
    """The redemptions at a merchant, newest first."""
    account_id, q = req.path.account_id, req.query
    async with rt.connection() as conn:
        account = await queries.account(conn, account_id)
        found(account if account and account["kind"] == "merchant" else None, "merchant account", account_id,
              "account_id")
        return await queries.redemptions(conn, account_id, q.limit, q.offset)


@rt.get("/v1/ledger/check", responses={200: api.LedgerCheck})
async def get_ledger_check(req: Request[None, None, None]):
    """The ledger check: balances sum to 0, each balance equals its postings."""
    async with rt.connection() as conn:
        return await queries.ledger_check(conn)


# -- timers --------------------------------------------------------------------------------
@rt.timer(settings.expiry_interval_seconds, exclusive=True)
async def expire_points(uow):
    await handler.expire(uow, limit=settings.expiry_batch)


@rt.timer(settings.deed_credit_interval_seconds, exclusive=True)
async def credit_deeds(uow):
    await handler.credit_refused_deeds(uow)


@rt.timer(settings.metrics_interval_seconds)
async def refresh_metrics(uow):
    metrics.set_accounts(await queries.accounts_by_kind(uow.conn))


app = rt.app
