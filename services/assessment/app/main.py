"""The assessment worker: ``python -m services.assessment.app worker``.

Consumes grid, orders and points events (into the event log) and its own intake (reviews,
scheme changes, period closes; also ``POST /v1/commands``); a timer closes periods when they
end. Queries (bearer token):

- ``GET /v1/scorecards/{entity_type}/{entity_id}?period=&scheme_id=`` — the published
  scorecard with each indicator's numerator, denominator, value, points, pillar and weight;
  before the period is closed, a provisional one computed from the log (``status``);
- ``GET /v1/rankings?entity_type=&period=&parent_id=&scheme_id=&limit=&offset=`` — ranks
  within the parent from the published scorecards of the period's latest close;
- ``GET /v1/alerts?period=&entity_type=&indicator=&limit=&offset=`` — standing alerts;
- ``GET /v1/schemes/current?at=`` — the scheme in force (flat weights and full definition).
"""
from __future__ import annotations

from datetime import timedelta

from schemas.assessment import EntityType
from schemas.topics import ASSESSMENT, GRID, ORDERS, POINTS
from services.assessment.domain import CATALOGUE, Scheme
from services.assessment.domain.periods import InvalidPeriod, Period
from services.assessment.projection import MIGRATIONS, store
from services.kit import clock
from services.kit.http import HttpError, Query
from services.kit.runtime import Request, ServiceRuntime
from services.kit.uow import UnitOfWork

from . import metrics as m
from .handler import AssessmentHandler
from .settings import AssessmentSettings

settings = AssessmentSettings()
handler = AssessmentHandler(Scheme.load(settings.scheme_file),
                            close_delay=timedelta(seconds=settings.close_delay_seconds),
                            timer_since=settings.close_timer_since)
rt = ServiceRuntime("assessment", settings, migrations=MIGRATIONS)
rt.consume("upstream", [GRID.events, ORDERS.events, POINTS.events], handler)
rt.consume("intake", [ASSESSMENT.intake], handler)
rt.command_api(handler)


@rt.on_startup
async def _lag_from_log() -> None:
    async with rt.pool.acquire() as conn:
        m.applied(await store.newest_event_time(conn))


if settings.close_timer:
    @rt.timer(settings.close_check_seconds, name="close_periods")
    async def close_periods(uow: UnitOfWork) -> None:
        await handler.close_due_periods(uow)


# -- query helpers --------------------------------------------------------------------------


def _period(raw: str | None, *, required: bool = True) -> str | None:
    if raw in (None, ""):
        if required:
            raise HttpError(422, "invalid_query", "period is required (2026-11, 2026-Q4 or 2026)", "period")
        return None
    try:
        return str(Period.parse(raw))
    except InvalidPeriod as e:
        raise HttpError(422, "invalid_query", e.detail, "period") from None


def _entity_type(raw: str | None, field: str = "entity_type", *, required: bool = True) -> str | None:
    return Query({field: raw or ""}).choice(field, EntityType, required=required)


async def _scheme_of(conn, period: str, requested: str | None) -> tuple[str | None, bool]:
    """(scheme id to show, whether the period was closed under it)."""
    if requested:
        return requested, True
    last = await store.last_close(conn, period)
    return (last["scheme_id"], True) if last else (None, False)


# -- routes ---------------------------------------------------------------------------------


@rt.route("/v1/scorecards/{entity_type}/{entity_id}")
async def get_scorecard(req: Request):
    et = _entity_type(req.params["entity_type"])
    entity_id = req.params["entity_id"]
    period = _period(req.query.str("period"))
    async with rt.pool.acquire() as conn:
        scheme_id, closed = await _scheme_of(conn, period, req.query.str("scheme_id"))
        if closed:
            row = await store.scorecard(conn, et, entity_id, period, scheme_id)
            if row is None:
                raise HttpError(404, "not_found", f"no published {et} scorecard for {entity_id} in {period}")
            return {**row["card"], "status": "published", "published_at": row["published_at"].isoformat(),
                    "revision": row["revision"]}
        scheme = await handler.current_scheme(conn, Period.parse(period).end)
        pub = await handler.compute(conn, period, scheme)
    card = next((c for c in pub.scorecards if c.entity_type.value == et and c.entity_id == entity_id), None)
    if card is None:
        raise HttpError(404, "not_found", f"no facts for {et} {entity_id} in {period}")
    return {**card.model_dump(mode="json"), "status": "provisional"}


@rt.route("/v1/rankings")
async def get_rankings(req: Request):
    q = req.query
    et = _entity_type(q.str("entity_type"))
    period = _period(q.str("period"))
    parent_id = q.str("parent_id")
    limit, offset = q.page(default_limit=100)
    async with rt.pool.acquire() as conn:
        scheme_id, closed = await _scheme_of(conn, period, q.str("scheme_id"))
        if not closed:
            raise HttpError(404, "not_published", f"{period} has not been closed yet", "period")
        total, rows = await store.ranking(conn, period=period, scheme_id=scheme_id, entity_type=et,
                                          parent_id=parent_id, limit=limit, offset=offset)
    return {"period": period, "scheme_id": scheme_id, "entity_type": et, "parent_id": parent_id,
            "total": total, "limit": limit, "offset": offset,
            "items": [{"rank": r["rank"], "rank_of": r["rank_of"], "entity_id": r["entity_id"],
                       "parent_id": r["parent_id"], "score": r["score"], "grade": r["grade"],
                       "scorecard_id": r["scorecard_id"]} for r in rows]}


@rt.route("/v1/alerts")
async def get_alerts(req: Request):
    q = req.query
    period = _period(q.str("period"), required=False)
    et = _entity_type(q.str("entity_type"), required=False)
    indicator = q.str("indicator")
    if indicator is not None and indicator not in CATALOGUE:
        raise HttpError(422, "invalid_query", f"unknown indicator {indicator!r}", "indicator")
    limit, offset = q.page(default_limit=100)
    async with rt.pool.acquire() as conn:
        total, rows = await store.alerts(conn, period=period, entity_type=et, indicator=indicator,
                                         limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset,
            "items": [{**r["alert"], "raised_at": r["raised_at"].isoformat()} for r in rows]}


@rt.route("/v1/schemes/current")
async def get_current_scheme(req: Request):
    at = req.query.datetime("at") or clock.now()
    async with rt.pool.acquire() as conn:
        scheme = await handler.current_scheme(conn, at)
    return {"scheme_id": scheme.scheme_id, "name": scheme.name, "effective_from": scheme.effective_from.isoformat(),
            "at": at.isoformat(), "weights": scheme.flat_weights(), "definition": scheme.to_mapping()}


app = rt.app
