"""The grid service worker: intake consumer, ``POST /v1/commands``, queries, Open311 view, timers.

Run it with ``python -m services.grid.app worker``.
"""
from __future__ import annotations

from pathlib import Path

from schemas.codes import GridCode
from schemas.grid import CaseOverdue, CaseSupervised, Category, WhistleMissed
from schemas.topics import ASSESSMENT, GRID, ORDERS, PARTY, POINTS
from services.grid import projection as db
from services.grid.domain import PUBLIC_CATEGORIES, CaseStatus
from services.grid.projection import whistles as whistle_db
from services.grid.registry import DepartmentRegister, GridRegister
from services.kit.http import HttpError
from services.kit.routes import Request, found, page
from services.kit.runtime import ServiceRuntime

from . import api, metrics, whistles
from .handler import GridHandler, load_calendar, load_policy
from .settings import GridSettings

settings = GridSettings()
calendar = load_calendar(settings.calendar_path)
deadlines = load_policy(settings.policy_path, calendar)
register = GridRegister.load(settings.register_path)
departments = DepartmentRegister.load(settings.departments_path, grids=register)
handler = GridHandler(deadlines, register, settings.duplicate_radius_m, departments)

rt = ServiceRuntime("grid", settings, migrations=Path(__file__).resolve().parent.parent / "migrations")
rt.consume("intake", [GRID.intake], handler)
rt.consume("erasures", [ORDERS.events, POINTS.events, ASSESSMENT.events, PARTY.events], handler)  # person.erased.v1 only
rt.command_api(handler)
grid_metrics = metrics.register()


# -- timers ---------------------------------------------------------------------------------


@rt.timer(settings.overdue_interval_seconds, name="overdue", exclusive=True,
          replays=(CaseOverdue, CaseSupervised), replay=handler.overdue_of)
async def overdue(uow) -> None:
    """Missed deadlines → grid.case.overdue.v1 (+ grid.case.supervised.v1 while the case is open),
    once each, by one worker of the service at a time."""
    await handler.check_overdue(uow, settings.overdue_batch)


@rt.timer(settings.metrics_interval_seconds, name="metrics")
async def refresh_metrics(uow) -> None:
    grid_metrics.update(await db.metrics_snapshot(uow.conn, metrics.HANDLING_BUCKETS))
    grid_metrics.check_calendar(calendar, uow.now)


# -- queries (bearer token, roles) -----------------------------------------------------------------


# Who reads what (db.Reader): auditor everything; grid workers and officers the cases and
# patrols of their scope; department officers the cases dispatched to their departments; a resident
# the cases they reported. A case outside is a 404, a list holds only what the caller may read.
CASE_READERS = ("grid_worker", "community_officer", "street_officer", "department_officer", "resident", "auditor")
PATROL_READERS = ("grid_worker", "community_officer", "street_officer", "auditor")
COUNT_READERS = ("community_officer", "street_officer", "assessor", "auditor")
DEPARTMENT_READERS = ("community_officer", "street_officer", "department_officer", "assessor", "auditor")


async def _case(conn, case_id: str, principal):
    return await db.get_case(conn, case_id, db.Reader.of(principal))


rt.lookup("/v1/cases/{case_id}", path=api.CaseRef, out=api.CaseOut, fetch=_case, roles=CASE_READERS, scoped=True,
          summary="A case with its full history (a case the caller may read: see the list).", one_statement=True)


@rt.get("/v1/cases", query=api.CaseQuery, responses={200: api.CasePage}, roles=CASE_READERS)
async def list_cases(req: Request[None, api.CaseQuery, None]):
    """Cases by grid, community, street, status, category, overdue, department, listed (挂牌督办) and
    supervised (超期督办), newest report first.

    Only the cases the caller may read: an auditor every case; a grid worker or an officer the cases
    of the grids, communities and streets of their scope; a department officer the cases dispatched
    to their departments; a resident the cases they reported (without the other reporters).

    `view=basic` answers where each case stands (a third of the columns: no description, place,
    reporters or media), for a list screen; the case's lookup has the rest."""
    q = req.query
    f = db.CaseFilter(grid_id=q.grid_id, community_id=q.community_id, street_id=q.street_id,
                      status=q.status.value if q.status else None, category=q.category.value if q.category else None,
                      overdue=q.overdue, department=q.department, listed=q.listed, supervised=q.supervised)
    async with rt.read() as conn:
        paged = await db.list_cases(conn, f, q.limit, q.offset, db.Reader.of(req.principal), q.cursor,
                                    basic=q.view is api.CaseView.basic)
    return page(q, paged)


@rt.get("/v1/grids/{grid_id}/counts", path=api.GridRef, roles=COUNT_READERS,
        responses={200: api.GridCounts, 404: "the grid is not in the grid register, or not in the caller's scope"})
async def grid_counts(req: Request[api.GridRef, None, None]):
    """A grid's cases by status (officers: a grid of their scope; assessor and auditor: any grid)."""
    grid_id = req.path.grid_id
    if grid_id not in register or not db.Reader.of(req.principal, {"auditor", "assessor"}).covers(grid_id):
        raise HttpError(404, "not_found", f"grid {grid_id!r} is not in the grid register", "grid_id")
    async with rt.read() as conn:
        counts = await db.grid_counts(conn, grid_id)
    code = GridCode.parse(grid_id)
    return {"grid_id": grid_id, "community_id": code.community_id, "street_id": code.street_id,
            "counts": counts, "total": sum(counts.values())}


@rt.get("/v1/departments", responses={200: list[api.Department]}, roles=DEPARTMENT_READERS)
async def list_departments(req: Request[None, None, None]):
    """The department register (部门登记册): every department, district ones first, by id."""
    return sorted((d.model_dump() for d in departments), key=lambda d: (d["level"] != "district", d["department_id"]))


@rt.get("/v1/patrols", query=api.PatrolQuery, responses={200: api.PatrolPage}, roles=PATROL_READERS)
async def list_patrols(req: Request[None, api.PatrolQuery, None]):
    """Patrol logs (巡查) by grid and grid worker, latest first: those of the grids in the caller's
    scope (an auditor: every patrol)."""
    q = req.query
    async with rt.read() as conn:
        paged = await db.list_patrols(conn, q.grid_id, q.grid_worker_id, q.limit, q.offset,
                                      db.Reader.of(req.principal), q.cursor)
    return page(q, paged)


# -- 吹哨报到: the missed-department timer, queries and metrics --------------------------------
# Who reads which whistles (whistle_db.WhistleReader): auditor all; street and community officers
# those of their streets (a community's street); department officers those that summoned one of
# their departments. A whistle outside is a 404, a list holds only what the caller may read.

whistle_metrics = whistles.register_metrics()


@rt.timer(settings.whistle_interval_seconds, name="whistles", exclusive=True, replays=(WhistleMissed,),
          replay=handler.missed_of)
async def whistles_timer(uow) -> None:
    """Summoned departments without a report by report_by → grid.whistle.missed.v1, once each,
    by one worker of the service at a time."""
    await handler.check_whistles(uow, settings.whistle_batch)


@rt.timer(settings.metrics_interval_seconds, name="whistle_metrics")
async def refresh_whistle_metrics(uow) -> None:
    whistle_metrics.update(await whistle_db.whistle_snapshot(uow.conn))


async def _whistle(conn, whistle_id: str, principal):
    return await whistle_db.get_whistle(conn, whistle_id, whistle_db.WhistleReader.of(principal))


rt.lookup("/v1/whistles/{whistle_id}", path=whistles.WhistleRef, out=whistles.WhistleOut, fetch=_whistle,
          roles=whistles.WHISTLE_READERS, scoped=True, one_statement=True,
          summary="A whistle (吹哨) and each summoned department's report, missing record and rating.")


@rt.get("/v1/whistles", query=whistles.WhistleQuery, responses={200: whistles.WhistlePage},
        roles=whistles.WHISTLE_READERS)
async def list_whistles(req: Request[None, whistles.WhistleQuery, None]):
    """Whistles (吹哨报到) by street, summoned department and open, latest first.

    Only the whistles the caller may read: an auditor every whistle; a street or community officer
    those of their streets (a community officer: of their communities' streets); a department
    officer those that summoned one of their departments."""
    q = req.query
    async with rt.read() as conn:
        paged = await whistle_db.list_whistles(
            conn, street_id=q.street_id, department=q.department, open=q.open, limit=q.limit, offset=q.offset,
            reader=whistle_db.WhistleReader.of(req.principal), cursor=q.cursor)
    return page(q, paged)


# -- Open311 GeoReport v2 (public read view, no token) ----------------------------------------
# A public projection: which categories are private, and what of a case the public may see, is
# decided in services/grid/domain/publication.py and applied by the query (db.open311_requests).

SERVICE_NAMES: dict[Category, tuple[str, str, str]] = {
    Category.HAZARD_FIRE: ("消防隐患 Fire hazard", "hazard", "Fire safety hazards (graded general/major/severe)"),
    Category.HAZARD_PRODUCTION: ("生产安全隐患 Production safety hazard", "hazard", "Work and production safety hazards"),
    Category.HAZARD_FOOD: ("食品安全隐患 Food safety hazard", "hazard", "Food safety hazards"),
    Category.DISPUTE_NEIGHBOUR: ("邻里纠纷 Neighbour dispute", "dispute", "Disputes between neighbours"),
    Category.DISPUTE_PROPERTY: ("物业纠纷 Property dispute", "dispute", "Disputes with property management"),
    Category.DISPUTE_LABOUR: ("劳动纠纷 Labour dispute", "dispute", "Labour and wage disputes"),
    Category.ENVIRONMENT: ("环境 Environment", "environment", "Litter, sanitation, pollution, greenery"),
    Category.PUBLIC_FACILITY: ("公共设施 Public facility", "facility", "Damaged or missing public facilities"),
    Category.RESIDENT_NEED: ("居民需求 Resident need", "need", "Needs of residents, answered by an order (四单式)"),
    Category.OTHER: ("其他 Other", "other", "Anything else found in a grid"),
}


def _open311_error(e: HttpError) -> tuple[int, list[dict]]:
    """Open311's error shape, ``[{"code", "description"}]``; an invalid parameter is a 400."""
    status = 400 if e.status == 422 else e.status
    return status, [{"code": status, "description": e.detail}]


_OPEN311_ERRORS = {400: ("an invalid parameter", list[api.Open311Error]),
                   503: ("the database is unavailable; retry", list[api.Open311Error])}


def _request(row: dict) -> dict:
    """A public row (db.open311_requests) as a service request: no address, no media, no reporter."""
    name = SERVICE_NAMES[Category(row["category"])][0]
    notes = row["result"] or ""
    if row["status"] == CaseStatus.DISMISSED.value:  # the query gives only a public reason code and original
        notes = "dismissed"
        if row["duplicate_of"]:
            notes += f": duplicate of {row['duplicate_of']}"
        elif row["dismissal_reason"]:
            notes += f": {row['dismissal_reason']}"
    return {
        "service_request_id": row["case_id"],
        "status": "open" if row["is_open"] else "closed",
        "status_notes": notes,
        "service_name": name,
        "service_code": row["category"],
        "description": row["description"],
        "agency_responsible": row["department"] or "",
        "service_notice": "",
        "requested_datetime": row["reported_at"],
        "updated_datetime": row["updated_at"],
        "expected_datetime": row["due_at"],
        "address": "",
        "address_id": "",
        "zipcode": "",
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": "",
    }


@rt.get("/open311/v2/services.json", auth=False, db=False, responses={200: list[api.Open311Service]})
async def open311_services(req: Request[None, None, None]):
    """Open311 GeoReport v2: the services (one per public case category; private ones are not offered)."""
    return [{"service_code": c.value, "service_name": SERVICE_NAMES[c][0], "description": SERVICE_NAMES[c][2],
             "metadata": False, "type": "realtime", "keywords": c.value.replace(".", ","), "group": SERVICE_NAMES[c][1]}
            for c in PUBLIC_CATEGORIES]


@rt.get("/open311/v2/requests.json", auth=False, query=api.Open311Query, errors=_open311_error,
        responses={200: list[api.Open311Request], **_OPEN311_ERRORS})
async def open311_requests(req: Request[None, api.Open311Query, None]):
    """Open311 GeoReport v2: service requests (the public cases), newest first.

    Cases of private categories are never listed; a private service code is refused as unknown.
    """
    q = req.query
    async with rt.read() as conn:
        rows = await db.open311_requests(conn, service_codes=q.split(q.service_code) or None,
                                         open_closed=q.split(q.status) or None, start=q.start_date, end=q.end_date,
                                         limit=q.limit, offset=q.offset)
    return [_request(r) for r in rows]


@rt.get("/open311/v2/requests/{request_id:[^/]+}.json", auth=False, path=api.Open311Ref, errors=_open311_error,
        responses={200: list[api.Open311Request], 404: ("no such service request", list[api.Open311Error]),
                   **_OPEN311_ERRORS})
async def open311_request(req: Request[api.Open311Ref, None, None]):
    """Open311 GeoReport v2: one service request (a list of one); a private case is not found."""
    async with rt.read() as conn:
        rows = await db.open311_requests(conn, case_id=req.path.request_id, limit=1)
    found(rows or None, "service request", req.path.request_id, "request_id")
    return [_request(rows[0])]


app = rt.app
