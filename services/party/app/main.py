"""The party service worker: intake + the coverage, council, organisational life and member timers +
queries on the kit runtime.

Run: ``python -m services.party.app worker``.
"""
from __future__ import annotations

from schemas.party import (
    CouncilEffective, CoverageGap, MeetingOverdue, MemberFeedback, MemberReportOverdue, OrgLifeOverdue,
    ResolutionOverdue,
)
from schemas.topics import ASSESSMENT, GRID, ORDERS, PARTY, POINTS
from services.kit.routes import Request, found
from services.kit.runtime import ServiceRuntime
from services.kit.uow import UnitOfWork
from services.party.projection import councils as council_db
from services.party.projection import life as life_db
from services.party.projection import queries

from . import access, api, councils, life
from . import metrics as mx
from .handler import PartyHandler
from .settings import MIGRATIONS, PartySettings

settings = PartySettings()
handler = PartyHandler(settings)

rt = ServiceRuntime("party", settings, migrations=MIGRATIONS)
rt.consume("intake", [PARTY.intake], handler)
# person.erased.v1 of every other service; of orders' events also the members' registrations and
# moves, and the completed and evaluated orders (the member half of 双报到 and its quarterly feedback)
rt.consume("erasures", [GRID.events, ORDERS.events, POINTS.events, ASSESSMENT.events], handler)
rt.command_api(handler)


# -- timers ---------------------------------------------------------------------------------


@rt.timer(settings.coverage_interval_seconds, name="coverage", exclusive=True, replays=(CoverageGap,),
          replay=handler.gaps_again)
async def coverage(uow: UnitOfWork) -> None:
    """Coverage gaps, once per grid (one worker at a time), and the gauges."""
    await handler.report_coverage_gaps(uow)
    for kind, n in (await queries.org_counts(uow.conn)).items():
        mx.ORGS.labels(kind).set(n)
    mx.COVERAGE_GAPS.set(await queries.open_gaps(uow.conn))


@rt.timer(settings.org_life_interval_seconds, name="org_life", exclusive=True, replays=(OrgLifeOverdue,),
          replay=handler.life_again)
async def org_life(uow: UnitOfWork) -> None:
    """Closed periods without a meeting of a kind an organisation must hold → party.org_life.overdue.v1,
    once each (one worker at a time)."""
    await handler.check_org_life(uow)


@rt.timer(settings.member_interval_seconds, name="member_reports", exclusive=True, replays=(MemberReportOverdue,),
          replay=handler.reports_again)
async def member_reports(uow: UnitOfWork) -> None:
    """Members whose unit has not reported within the window → party.member.report_overdue.v1, once each."""
    await handler.check_member_reports(uow, settings.member_batch)


@rt.timer(settings.member_interval_seconds, name="member_feedback", exclusive=True, replays=(MemberFeedback,),
          replay=handler.feedback_again)
async def member_feedback(uow: UnitOfWork) -> None:
    """双重管理: the last quarter's party.member.feedback.v1, once per member and quarter."""
    await handler.quarterly_feedback(uow, settings.member_batch)


life_metrics = life.register_metrics()


@rt.timer(settings.metrics_interval_seconds, name="life_metrics")
async def refresh_life_metrics(uow: UnitOfWork) -> None:
    life_metrics.update(await life_db.snapshot(uow.conn))


# -- queries --------------------------------------------------------------------------------
# Who reads what (services.party.app.access): an auditor everything; a party secretary and a
# community or street officer the organisations and grids of the areas in their scope. Anything
# else is a 404 (a single object) or left out (a list), so that existence does not leak.


def _readable(org: dict | None, principal) -> dict | None:
    """``org`` (a row with its area codes) when ``principal`` may read it, else None."""
    return org if org is not None and access.may_read(principal, org["grid_id"] or org["community_id"]
                                                      or org["street_id"]) else None


async def _org_for(conn, org_id: str, principal):
    return _readable(await queries.get_org(conn, org_id), principal)


rt.lookup("/v1/orgs/{org_id}", path=api.OrgRef, out=api.OrgOut, fetch=_org_for, scoped=True,
          roles=access.READERS, one_statement=True,
          summary="A Party organisation (党组织) with its members (组织关系, 党员中心户), children and history.")


@rt.get("/v1/orgs", query=api.OrgQuery, responses={200: api.OrgPage}, roles=access.READERS)
async def list_orgs(req: Request[None, api.OrgQuery, None]):
    """Organisations by kind / area / parent, in id order, paginated.

    Only the organisations of the areas in the caller's scope (an auditor: every one)."""
    q = req.query
    async with rt.read() as conn:
        return await queries.list_orgs(conn, kind=q.kind and q.kind.value, area_id=q.area_id,
                                       parent_id=q.parent_id, limit=q.limit, offset=q.offset, cursor=q.cursor,
                                       restrict=lambda where: access.org_filter(where, req.principal))


@rt.get("/v1/coverage", query=api.CoverageQuery, responses={200: api.Coverage}, roles=access.READERS)
async def coverage_of_street(req: Request[None, api.CoverageQuery, None]):
    """组织覆盖: the street's grids with members or a grid branch, and its gaps (a grid with at
    least 3 members and no branch). Only the grids in the caller's scope."""
    async with rt.snapshot() as conn:
        return await queries.coverage(conn, req.query.street_id,
                                      restrict=lambda where: access.org_filter(where, req.principal, "g."))


@rt.get("/v1/orgs/{org_id}/life", path=api.OrgRef, query=life.LifeQuery, responses={200: life.LifeOut},
        roles=access.READERS)
async def org_life_of(req: Request[api.OrgRef, life.LifeQuery, None]):
    """组织生活: an organisation's meetings held and periods missed, of one period or all, newest
    first, a page at a time (``next_cursor``), with the counts of all of them. An organisation
    outside the caller's scope is a 404, like an unknown one."""
    org_id, q = req.path.org_id, req.query
    async with rt.read() as conn:  # the organisation, its counts and the page: one statement
        org, entries, next_cursor = await life_db.life_page(conn, org_id, q.period, q.limit, q.offset, q.cursor)
    org = found(_readable(org, req.principal), "org", org_id, "org_id")
    return {"org_id": org_id, "period": q.period, "held": org["held"], "missed": org["missed"],
            "total": org["held"] + org["missed"], "total_exact": True, "limit": q.limit, "offset": q.offset,
            "next_cursor": next_cursor, "entries": entries}

# -- 区域化党建 and 双报到 of units: the council timer and queries ----------------------------------
# Who reads: an auditor everything; a party secretary and a community or street officer the
# councils, units and projects of the areas in their scope. Another council is a 404; the units
# and projects of another community an empty page.


@rt.timer(settings.council_interval_seconds, name="councils", exclusive=True,
          replays=(CouncilEffective, MeetingOverdue, ResolutionOverdue), replay=handler.councils_again)
async def councils_timer(uow: UnitOfWork) -> None:
    """公示 ended → party.council.effective.v1; a quarter without a joint meeting →
    party.meeting.overdue.v1; a resolution past its deadline → party.resolution.overdue.v1; each
    once (one worker at a time)."""
    await handler.check_councils(uow, settings.council_batch)


async def _council_for(conn, council_id: str, principal):
    found = await council_db.get_council(conn, council_id)
    return found[1] if found is not None and access.may_read(principal, found[0]) else None


rt.lookup("/v1/councils/{council_id}", path=councils.CouncilRef, out=councils.CouncilOut, fetch=_council_for,
          scoped=True, roles=access.READERS, one_statement=True,
          summary="A regional council (大工委 / 大党委): its compositions, meetings and resolutions.")


def _empty(q) -> dict:
    return {"items": [], "total": 0, "total_exact": True, "limit": q.limit, "offset": q.offset, "next_cursor": None}


@rt.get("/v1/units", query=councils.UnitQuery, responses={200: councils.UnitPage}, roles=access.READERS)
async def list_units(req: Request[None, councils.UnitQuery, None]):
    """The units that reported (单位报到) to a community, with their agreements (共建协议), in unit id
    order. Only a community in the caller's scope (another: an empty page)."""
    q = req.query
    if not access.may_read(req.principal, q.community_id):
        return _empty(q)
    async with rt.read() as conn:
        return await council_db.list_units(conn, q.community_id, limit=q.limit, offset=q.offset, cursor=q.cursor)


@rt.get("/v1/projects", query=councils.ProjectQuery, responses={200: councils.ProjectPage}, roles=access.READERS)
async def list_projects(req: Request[None, councils.ProjectQuery, None]):
    """A community's projects (项目清单) by status, latest posted first. Only a community in the
    caller's scope (another: an empty page)."""
    q = req.query
    if not access.may_read(req.principal, q.community_id):
        return _empty(q)
    async with rt.read() as conn:
        return await council_db.list_projects(conn, q.community_id, status=q.status and q.status.value,
                                              limit=q.limit, offset=q.offset, cursor=q.cursor)


app = rt.app
