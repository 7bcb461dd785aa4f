"""The assessment worker: ``python -m services.assessment.app worker``.

Consumes grid, orders, points and party events (into the event log and its counters) and its own intake (reviews,
scheme changes, period closes; also ``POST /v1/commands``); a timer closes periods when they
end. Queries (bearer token):

- ``GET /v1/scorecards/{entity_type}/{entity_id}?period=&scheme_id=`` — the published
  scorecard with each indicator's numerator, denominator, value, points, pillar and weight;
  before the period is closed, a provisional one computed from the period's counters (``status``);
- ``GET /v1/rankings?entity_type=&period=&parent_id=&scheme_id=&limit=&offset=`` — ranks
  within the parent from the published scorecards of the period's latest close;
- ``GET /v1/alerts?period=&entity_type=&indicator=&limit=&offset=`` — standing alerts;
- ``GET /v1/schemes/current?at=`` — the scheme in force (flat weights and full definition).

Who reads what (:mod:`services.assessment.app.access`): the assessor and the auditor everything;
community and street officers the scorecards, rankings and alerts of their scope (a scorecard
outside it is 404); a grid worker or party member their own scorecard. Who sends what:
:mod:`services.assessment.app.policy`.
"""
from __future__ import annotations

from datetime import timedelta

from schemas.assessment import AlertRaised, PeriodClosed, ScorecardPublished
from schemas.topics import ASSESSMENT, GRID, ORDERS, PARTY, POINTS
from services.assessment.domain import Scheme
from services.assessment.domain.periods import Period
from services.assessment.projection import MIGRATIONS, store
from services.kit import clock
from services.kit.http import HttpError
from services.kit.routes import ErrorOut, Request, page
from services.kit.runtime import ServiceRuntime
from services.kit.uow import UnitOfWork

from . import access, api
from . import metrics as m
from .event_log import REF_CACHE, fold_unfolded
from .handler import AssessmentHandler
from .scoring import compute_period
from .settings import AssessmentSettings

settings = AssessmentSettings()
handler = AssessmentHandler(Scheme.load(settings.scheme_file),
                            close_delay=timedelta(seconds=settings.close_delay_seconds),
                            timer_since=settings.close_timer_since)
rt = ServiceRuntime("assessment", settings, migrations=MIGRATIONS)
REF_CACHE.limit = settings.ref_cache_entries
rt.consume("upstream", [GRID.events, ORDERS.events, POINTS.events, PARTY.events], handler)
rt.consume("intake", [ASSESSMENT.intake], handler)
rt.command_api(handler)
rt.retain("event_log", "recorded_at", settings.fact_retention_days)


@rt.on_startup
async def _lag_from_log() -> None:
    async with rt.pool.acquire() as conn:
        m.applied(await store.newest_event_time(conn))


@rt.on_startup
async def _fold_the_rest_of_the_log() -> None:
    """Fold the log rows not folded yet: those recorded before the counters were kept, or all
    of them after the counters were emptied to be rebuilt (see migration 003)."""
    await fold_unfolded(rt.pool)


if settings.close_timer:
    @rt.timer(settings.close_check_seconds, name="close_periods", exclusive=True,
              replays=(PeriodClosed, ScorecardPublished, AlertRaised), replay=handler.closed_again)
    async def close_periods(uow: UnitOfWork) -> None:
        await handler.close_due_periods(uow)


# -- routes ---------------------------------------------------------------------------------


async def _scheme_of(conn, period: str, requested: str | None) -> tuple[str | None, bool]:
    """(scheme id to show, whether the period was closed under it)."""
    if requested:
        return requested, True
    last = await store.last_close(conn, period)
    return (last["scheme_id"], True) if last else (None, False)


@rt.get("/v1/scorecards/{entity_type}/{entity_id}", path=api.ScorecardRef, query=api.ScorecardQuery,
        roles=access.CARD_READERS,
        responses={200: api.ScorecardOut, 404: "no scorecard of this entity in this period (or not the caller's to read)"})
async def get_scorecard(req: Request[api.ScorecardRef, api.ScorecardQuery, None]):
    """An entity's scorecard: the published one, or before the period is closed a provisional one.

    Each indicator's numerator, denominator, value, points, pillar and weight are in `details`.
    Officers read the scorecards of their scope, grid workers and party members their own;
    any other is answered 404 like an unknown one."""
    et, entity_id = req.path.entity_type.value, req.path.entity_id
    period = str(Period.parse(req.query.period))
    async with rt.snapshot() as conn:
        scheme_id, closed = await _scheme_of(conn, period, req.query.scheme_id)
        if closed:
            row = await store.scorecard(conn, et, entity_id, period, scheme_id)
            if row is None or not access.may_read(req.principal, et, entity_id, row["card"].get("parent_id")):
                raise HttpError(404, "not_found", f"no published {et} scorecard for {entity_id} in {period}")
            return {**row["card"], "status": "published", "published_at": row["published_at"].isoformat(),
                    "revision": row["revision"]}
        scheme = await handler.current_scheme(conn, Period.parse(period).end)
        pub = await compute_period(conn, period, scheme, of=(et, entity_id))  # the entity's rank group only
    card = next((c for c in pub.scorecards if c.entity_type.value == et and c.entity_id == entity_id), None)
    if card is None or not access.may_read(req.principal, et, entity_id, card.parent_id):
        raise HttpError(404, "not_found", f"no facts for {et} {entity_id} in {period}")
    return {**card.model_dump(mode="json"), "status": "provisional"}


@rt.get("/v1/rankings", query=api.RankingQuery, roles=access.LIST_READERS,
        responses={200: api.Ranking, 404: ("the period has not been closed yet", ErrorOut)})
async def get_rankings(req: Request[None, api.RankingQuery, None]):
    """Ranks within the parent from the published scorecards of the period's latest close.

    An officer sees the entities of their scope only (with their ranks among all)."""
    q = req.query
    et, period = q.entity_type.value, str(Period.parse(q.period))
    async with rt.snapshot() as conn:
        scheme_id, closed = await _scheme_of(conn, period, q.scheme_id)
        if not closed:
            raise HttpError(404, "not_published", f"{period} has not been closed yet", "period")
        paged = await store.ranking(conn, period=period, scheme_id=scheme_id, entity_type=et,
                                    parent_id=q.parent_id, limit=q.limit, offset=q.offset, cursor=q.cursor,
                                    scope=access.list_scope(req.principal))
    return {"period": period, "scheme_id": scheme_id, "entity_type": et, "parent_id": q.parent_id,
            **page(q, paged, [{"rank": r["rank"], "rank_of": r["rank_of"], "entity_id": r["entity_id"],
                               "parent_id": r["parent_id"], "score": r["score"], "grade": r["grade"],
                               "scorecard_id": r["scorecard_id"]} for r in paged.items])}


@rt.get("/v1/alerts", query=api.AlertQuery, roles=access.LIST_READERS, responses={200: api.AlertPage})
async def get_alerts(req: Request[None, api.AlertQuery, None]):
    """Standing alerts (约谈 warnings) of each period's latest close (an officer: of their scope)."""
    q = req.query
    async with rt.read() as conn:
        paged = await store.alerts(conn, period=q.period and str(Period.parse(q.period)),
                                   entity_type=q.entity_type and q.entity_type.value, indicator=q.indicator,
                                   limit=q.limit, offset=q.offset, cursor=q.cursor,
                                   scope=access.list_scope(req.principal))
    return page(q, paged)


@rt.get("/v1/schemes/current", query=api.SchemeQuery, roles=access.CARD_READERS, responses={200: api.SchemeOut})
async def get_current_scheme(req: Request[None, api.SchemeQuery, None]):
    """The scheme in force (flat weights and full definition), now or at `at`."""
    at = req.query.at or clock.now()
    async with rt.snapshot() as conn:
        scheme = await handler.current_scheme(conn, at)
    return {"scheme_id": scheme.scheme_id, "name": scheme.name, "effective_from": scheme.effective_from.isoformat(),
            "at": at.isoformat(), "weights": scheme.flat_weights(), "definition": scheme.to_mapping()}


app = rt.app
