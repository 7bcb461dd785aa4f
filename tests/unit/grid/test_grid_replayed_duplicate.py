"""A report replayed by a rebuild is the duplicate of the case the worker linked it to, and of
none when the worker linked it to none: live, two reports near each other on different
partitions are handled by two lanes at once and neither sees the other's case, which a replay,
handling them one after the other, would. Live, the candidates are as found."""
from __future__ import annotations

from datetime import datetime, timezone

from grid_builders import report

from schemas.envelope import Message, envelope_for
from schemas.grid import CaseDuplicateLinked, CaseReported, Category
from services.grid.app.handler import GridHandler, _linked_live, load_calendar, load_policy
from services.grid.app.settings import GridSettings
from services.grid.registry import GridRegister
from services.grid.domain import OpenCase
from services.kit.rebuild import _ReplayUnitOfWork
from services.kit.uow import UnitOfWork

NOW = datetime(2026, 8, 31, 16, tzinfo=timezone.utc)
LINKED, REPORTED = CaseDuplicateLinked.TYPE, CaseReported.TYPE


def found() -> dict[str, OpenCase]:
    return {cid: OpenCase(case_id=cid, category=Category.ENVIRONMENT, lat=39.92, lon=116.44) for cid in ("a", "b")}


def replaying(live: dict[tuple[str, str], list[dict]], types=(REPORTED,)) -> UnitOfWork:
    uow = _ReplayUnitOfWork(None, "grid", {}, {("c-1", t): [f"e-{t}"] for t in types}, NOW, live)
    uow.message = Message(envelope_for(report("case-new"), source="/tests", id="c-1"), report("case-new"))
    return uow


def test_the_grid_handler_asks_a_rebuild_for_the_links_the_worker_published():
    assert LINKED in GridHandler.replayed


def only(chosen: set[str] | None, candidates: dict[str, OpenCase]) -> dict[str, OpenCase]:
    return candidates if chosen is None else {cid: c for cid, c in candidates.items() if cid in chosen}


def test_replayed_a_report_the_worker_linked_is_decided_against_that_original_only():
    uow = replaying({("c-1", LINKED): [{"case_id": "b", "duplicate_case_id": "case-new"}]},
                    types=(REPORTED, LINKED, "grid.case.dismissed.v1"))
    assert _linked_live(uow, "case-new") == {"b"}
    assert list(only(_linked_live(uow, "case-new"), found())) == ["b"]


def test_replayed_a_report_the_worker_linked_to_nothing_has_no_original():
    assert _linked_live(replaying({}), "case-new") == set()


def test_live_or_without_knowledge_of_the_message_the_candidates_are_as_found():
    live = UnitOfWork(None, "grid", NOW)
    live.message = replaying({}).message
    assert _linked_live(live, "case-new") is None
    unknown = replaying({}, types=())  # the rebuild found nothing the message caused
    assert _linked_live(unknown, "case-new") is None


async def test_replayed_a_report_the_worker_linked_to_nothing_looks_through_no_cases():
    """Nothing near it is read (the unit of work has no connection: a lookup would fail) and the
    batch's cases are not looked through: the report is decided against no open case."""
    settings = GridSettings()
    handler = GridHandler(load_policy(settings.policy_path, load_calendar(settings.calendar_path)),
                          GridRegister.load(settings.register_path))
    uow = replaying({})
    cmd = report("case-new")
    events = await handler._against_open_cases(uow, cmd, handler._context(uow, grid_known=True))
    assert [type(e) for e in events] == [CaseReported]
