"""The grid service worker: intake consumer, ``POST /v1/commands``, queries, Open311 view, timers.

Run it with ``python -m services.grid.app worker``.
"""
from __future__ import annotations

import re
from pathlib import Path

from schemas.grid import Category
from schemas.topics import GRID
from services.grid import projection as db
from services.grid.domain import CaseStatus, GridCode, is_grid_id
from services.grid.registry import GridRegister
from services.kit.http import HttpError
from services.kit.runtime import Request, ServiceRuntime

from . import metrics
from .handler import GridHandler, load_policy
from .settings import GridSettings

settings = GridSettings()
policy = load_policy(settings.policy_path)
register = GridRegister.load(settings.register_path)
handler = GridHandler(policy, register, settings.duplicate_radius_m)

rt = ServiceRuntime("grid", settings, migrations=Path(__file__).resolve().parent.parent / "migrations")
rt.consume("intake", [GRID.intake], handler)
rt.command_api(handler)
grid_metrics = metrics.register()


# -- timers ---------------------------------------------------------------------------------


@rt.timer(settings.overdue_interval_seconds, name="overdue")
async def overdue(uow) -> None:
    """Missed deadlines → grid.case.overdue.v1 (+ grid.case.escalated.v1), once each."""
    await handler.check_overdue(uow, settings.overdue_batch)


@rt.timer(settings.metrics_interval_seconds, name="metrics")
async def refresh_metrics(uow) -> None:
    grid_metrics.update(await db.metrics_snapshot(uow.conn, metrics.HANDLING_BUCKETS))


# -- queries (bearer token) -----------------------------------------------------------------

_DIGITS = {"community_id": re.compile(r"[0-9]{12}"), "street_id": re.compile(r"[0-9]{9}")}


def _code(req: Request, name: str) -> str | None:
    v = req.query.str(name)
    if v is None:
        return None
    ok = is_grid_id(v) if name == "grid_id" else _DIGITS[name].fullmatch(v) is not None
    if not ok:
        digits = {"grid_id": 15, "community_id": 12, "street_id": 9}[name]
        raise HttpError(422, "invalid_query", f"{name} must be {digits} digits", name)
    return v


@rt.route("/v1/cases/{case_id}")
async def get_case(req: Request):
    async with rt.pool.acquire() as conn:
        case = await db.get_case(conn, req.params["case_id"])
    if case is None:
        raise HttpError(404, "not_found", f"no case {req.params['case_id']!r}", "case_id")
    return case


@rt.route("/v1/cases")
async def list_cases(req: Request):
    f = db.CaseFilter(
        grid_id=_code(req, "grid_id"), community_id=_code(req, "community_id"), street_id=_code(req, "street_id"),
        status=req.query.choice("status", CaseStatus),
        category=req.query.choice("category", Category),
        overdue=req.query.bool("overdue"))
    limit, offset = req.query.page()
    async with rt.pool.acquire() as conn:
        total, items = await db.list_cases(conn, f, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@rt.route("/v1/grids/{grid_id}/counts")
async def grid_counts(req: Request):
    grid_id = req.params["grid_id"]
    if not is_grid_id(grid_id):
        raise HttpError(422, "invalid_input", "grid_id must be 15 digits", "grid_id")
    if grid_id not in register:
        raise HttpError(404, "not_found", f"grid {grid_id!r} is not in the grid register", "grid_id")
    async with rt.pool.acquire() as conn:
        counts = await db.grid_counts(conn, grid_id)
    code = GridCode.parse(grid_id)
    return {"grid_id": grid_id, "community_id": code.community_id, "street_id": code.street_id,
            "counts": counts, "total": sum(counts.values())}


@rt.route("/v1/patrols")
async def list_patrols(req: Request):
    grid_id = _code(req, "grid_id")
    worker = req.query.str("grid_worker_id")
    limit, offset = req.query.page()
    async with rt.pool.acquire() as conn:
        total, items = await db.list_patrols(conn, grid_id, worker, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


# -- Open311 GeoReport v2 (public read view, no token) ----------------------------------------

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


def _open311_error(status: int, description: str):
    return status, [{"code": status, "description": description}]


def _request(row: dict) -> dict:
    name = SERVICE_NAMES[Category(row["category"])][0]
    notes = row["result"] or ""
    if row["status"] == CaseStatus.DISMISSED.value:
        notes = f"dismissed: {row['dismissal_reason']}" + (f" (duplicate of {row['duplicate_of']})"
                                                           if row["duplicate_of"] else "")
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
        "address": row["address"],
        "address_id": "",
        "zipcode": "",
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": (row["media"] or [""])[0],
    }


@rt.route("/open311/v2/services.json", auth=False)
async def open311_services(req: Request):
    return [{"service_code": c.value, "service_name": SERVICE_NAMES[c][0], "description": SERVICE_NAMES[c][2],
             "metadata": False, "type": "realtime", "keywords": c.value.replace(".", ","), "group": SERVICE_NAMES[c][1]}
            for c in Category]


@rt.route("/open311/v2/requests.json", auth=False)
async def open311_requests(req: Request):
    codes = [c.strip() for c in (req.query.str("service_code") or "").split(",") if c.strip()]
    known = {c.value for c in Category}
    bad = [c for c in codes if c not in known]
    if bad:
        return _open311_error(400, f"unknown service_code {bad[0]!r}")
    states = [s.strip() for s in (req.query.str("status") or "").split(",") if s.strip()]
    if any(s not in ("open", "closed") for s in states):
        return _open311_error(400, "status must be open or closed")
    try:
        start, end = req.query.datetime("start_date"), req.query.datetime("end_date")
        limit, offset = req.query.page(default_limit=1000, max_limit=1000)
    except HttpError as e:
        return _open311_error(400, e.detail)
    async with rt.pool.acquire() as conn:
        rows = await db.open311_requests(conn, service_codes=codes or None, open_closed=states or None,
                                         start=start, end=end, limit=limit, offset=offset)
    return [_request(r) for r in rows]


@rt.route("/open311/v2/requests/{request_id:[^/]+}.json", auth=False)
async def open311_request(req: Request):
    async with rt.pool.acquire() as conn:
        rows = await db.open311_requests(conn, case_id=req.params["request_id"], limit=1)
    if not rows:
        return _open311_error(404, f"no service request {req.params['request_id']!r}")
    return [_request(rows[0])]


app = rt.app
