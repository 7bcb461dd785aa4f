"""The points service worker: intake commands, reactions to orders and grid, the expiry timer,
queries. Run: ``python -m services.points.app worker``."""
from __future__ import annotations

import math
from datetime import timedelta

from schemas.points import AccountOpened, TransferKind, TransferPosted, TransferRefused
from schemas.topics import ASSESSMENT, GRID, ORDERS, PARTY, POINTS
from services.kit import clock
from services.kit.clock import wall_clock
from services.kit.http import HttpError
from services.kit.identity import ROLES
from services.kit.routes import Page, Request, found
from services.kit.runtime import ServiceRuntime
from services.points.domain import code_hash, new_code
from services.points.domain.clock import month_of

from . import api, metrics
from .handler import PointsHandler
from .rules import RulesFile
from .settings import PointsSettings
from ..projection import MIGRATIONS, approvals, queries

settings = PointsSettings()
rules = RulesFile(settings.rules_path)
handler = PointsHandler(rules)
rt = ServiceRuntime("points", settings, migrations=MIGRATIONS)
rt.consume("intake", [POINTS.intake], handler)
rt.consume("reactions", [ORDERS.events, GRID.events], handler)
rt.consume("erasures", [ASSESSMENT.events, PARTY.events], handler)  # person.erased.v1 only
rt.command_api(handler)


# -- consent -------------------------------------------------------------------------------
@rt.post("/v1/redemption-codes", body=api.RedemptionCodeIn, roles=("resident",),
         responses={201: api.RedemptionCode})
async def create_redemption_code(req: Request[None, None, api.RedemptionCodeIn]):
    """A resident's consent to one redemption from their own account (兑换授权码).

    The code is random, valid for a few minutes (``POINTS_REDEMPTION_CODE_SECONDS``), good for
    one redemption of at most ``amount`` points from ``resident:<sub>``; the merchant sends it
    as ``consent_code`` of ``points.redeem.v1``. Only its hash is kept."""
    assert req.principal is not None
    account_id = f"resident:{req.principal.sub}"
    now = wall_clock()  # real minutes, also under make run's stepped calendar
    expires_at = now + timedelta(seconds=settings.redemption_code_seconds)
    code = new_code()
    async with rt.connection() as conn:
        await approvals.create_code(conn, code_hash(code), account_id, req.body.amount, at=now, expires_at=expires_at)
    return 201, {"code": code, "account_id": account_id, "amount": req.body.amount,
                 "expires_at": expires_at.isoformat()}


# -- queries -------------------------------------------------------------------------------
ACCOUNT_READERS = ("resident", "merchant", "community_officer", "street_officer", "points_operator", "auditor")
"""Who reads accounts, statements, deeds and redemptions: each only what is theirs or in their scope
(:func:`queries.may_read`); another's is a 404."""

rt.lookup("/v1/accounts/{account_id}", path=api.AccountRef, out=api.AccountOut, fetch=queries.account,
          summary="An account: balance and earning lots (积分批次).", roles=ACCOUNT_READERS, scoped=True,
          one_statement=True)


@rt.get("/v1/accounts/{account_id}/statement", path=api.AccountRef, query=Page, roles=ACCOUNT_READERS,
        responses={200: api.Statement, 404: "no such account the caller may read"})
async def get_statement(req: Request[api.AccountRef, Page, None]):
    """An account's postings, newest first (a resident their own, a merchant their own, an
    officer the accounts of their communities)."""
    account_id, q = req.path.account_id, req.query
    async with rt.read() as conn:
        page = await queries.statement(conn, account_id, req.principal, q.limit, q.offset, q.cursor)
    return found(page, "account", account_id, "account_id")


rt.lookup("/v1/deeds/{deed_id}", path=api.DeedRef, out=api.DeedOut, fetch=queries.deed,
          summary="A deed (道德日记) and how far it got.", roles=ACCOUNT_READERS, scoped=True, one_statement=True)


@rt.get("/v1/rankings", query=api.RankingQuery, responses={200: api.Rankings}, roles=ROLES)
async def get_rankings(req: Request[None, api.RankingQuery, None]):
    """好人榜: residents by points earned in a month or year, in a community or the district."""
    q = req.query
    if q.scope == "community" and q.community_id is None:
        raise HttpError(422, "invalid_query", "community_id is required for scope=community", "community_id")
    if q.scope == "district" and q.community_id is not None:
        raise HttpError(422, "invalid_query", "community_id only goes with scope=community", "community_id")
    async with rt.snapshot() as conn:
        return await queries.rankings(conn, period=q.period or month_of(clock.now()), community_id=q.community_id,
                                      candidates=settings.moral_model_candidates, limit=q.limit, offset=q.offset,
                                      cursor=q.cursor)


@rt.get("/v1/merchants/{account_id}/redemptions", path=api.AccountRef, query=Page, roles=ACCOUNT_READERS,
        responses={200: api.Redemptions, 404: "no such merchant account the caller may read"})
async def get_redemptions(req: Request[api.AccountRef, Page, None]):
    """The redemptions at a merchant, newest first (a merchant their own)."""
    account_id, q = req.path.account_id, req.query
    async with rt.read() as conn:
        page = await queries.redemptions(conn, account_id, req.principal, q.limit, q.offset, q.cursor)
    return found(page, "merchant account", account_id, "account_id")


LEDGER_CHECKERS = ("points_operator", "auditor")


@rt.get("/v1/ledger/check", responses={200: api.LedgerCheck}, roles=LEDGER_CHECKERS)
async def get_ledger_check(req: Request[None, None, None]):
    """The incremental ledger check: balances sum to 0, stored balances follow the postings.

    It reads the running totals every write keeps (in the same transaction as the postings), so
    it costs the same whatever the history; it does not name accounts (the full check does)."""
    async with rt.read() as conn:
        return await queries.ledger_check(conn)


@rt.post("/v1/ledger/check/full", roles=LEDGER_CHECKERS,
         responses={200: api.LedgerCheck, 429: "a full check ran less than POINTS_LEDGER_FULL_CHECK_INTERVAL_SECONDS "
                                              "ago; `Retry-After` says when the next may"})
async def post_ledger_check_full(req: Request[None, None, None]):
    """The full ledger check: every posting and account read again (rate-limited).

    It recomputes the running totals from all postings and accounts (a posting altered in place
    is caught here) and lists the accounts whose balance is not the sum of their postings. It
    scans all of history: one run per `POINTS_LEDGER_FULL_CHECK_INTERVAL_SECONDS`, district-wide."""
    async with rt.connection() as conn:
        wait = await queries.claim_full_check(conn, settings.ledger_full_check_interval_seconds)
        if wait is not None:
            e = HttpError(429, "too_many_requests", f"a full ledger check ran recently; retry in {math.ceil(wait)} s",
                          retry_after=math.ceil(wait))
            e.headers = {"Retry-After": str(math.ceil(wait))}
            raise e
        return await queries.ledger_check_full(conn)


# -- timers --------------------------------------------------------------------------------
def _of_reason(reason: TransferKind):
    """Whether a published ``TransferPosted`` (its data) is of ``reason``: an uncaused expiry is
    the expiry timer's, an uncaused award the deed credit's."""
    return lambda data: data.get("reason") == reason.value


@rt.timer(settings.expiry_interval_seconds, exclusive=True,
          replays=((TransferPosted, _of_reason(TransferKind.expiry)),), replay=handler.expire_of)
async def expire_points(uow):
    await handler.expire(uow, limit=settings.expiry_batch)
    await approvals.forget_expired_codes(uow.conn, wall_clock() - timedelta(days=1))


@rt.timer(settings.deed_credit_interval_seconds, exclusive=True, replay=handler.credit_deeds_of,
          replays=(AccountOpened, (TransferPosted, _of_reason(TransferKind.award)), TransferRefused))
async def credit_deeds(uow):
    await handler.credit_refused_deeds(uow)


@rt.timer(settings.ledger_fold_interval_seconds, exclusive=True)
async def fold_ledger(uow):
    await queries.fold_deltas(uow.conn)


@rt.timer(settings.metrics_interval_seconds)
async def refresh_metrics(uow):
    metrics.set_accounts(await queries.accounts_by_kind(uow.conn))


app = rt.app
