"""Facts of other services read as earnings."""
from datetime import datetime, timedelta, timezone

from services.points.domain import SourceKind, earning_from_order, earning_from_report

SH = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 22, 10, tzinfo=SH)
PLACED = {"order_id": "o-1", "resident_id": "r-1", "community_id": "110105001002", "grid_id": "110105001002003",
          "category": "daily_care", "description": "陪同就医", "source_case_id": None}
EVALUATED = {"order_id": "o-1", "assignee_id": "m-7", "rating": 5, "passed": True, "evaluator_id": "cw-1"}


def test_passed_order_earns_for_the_assignee_with_category_community_and_minutes():
    earning = earning_from_order(EVALUATED, placed=PLACED, completed={"service_minutes": 95}, source="/orders",
                                 event_id="ev-9", occurred_at=AT)
    assert earning.kind is SourceKind.order
    assert (earning.holder_id, earning.category, earning.community_id, earning.service_minutes) == (
        "m-7", "daily_care", "110105001002", 95)
    assert (earning.source, earning.source_event_id, earning.occurred_at) == ("/orders", "ev-9", AT)


def test_failed_order_earns_nothing():
    assert earning_from_order({**EVALUATED, "passed": False}, placed=PLACED, source="/o", event_id="e",
                              occurred_at=AT) is None


def test_order_without_known_category_or_community_earns_nothing():
    assert earning_from_order(EVALUATED, placed=None, source="/o", event_id="e", occurred_at=AT) is None


def test_fields_on_the_evaluation_itself_win_over_the_projection():
    earning = earning_from_order({**EVALUATED, "category": "repair", "service_minutes": 30}, placed=PLACED,
                                 completed={"service_minutes": 95}, source="/o", event_id="e", occurred_at=AT)
    assert (earning.category, earning.service_minutes) == ("repair", 30)


REPORTED = {"case_id": "c-1", "grid_id": "110105001002003", "category": "hazard.fire", "description": "楼道堆物",
            "reporter": {"kind": "resident", "id": "r-1"}}


def test_registered_report_by_a_resident_earns_in_the_community_of_its_grid():
    earning = earning_from_report(REPORTED, source="/grid", event_id="reg-1", occurred_at=AT)
    assert (earning.kind, earning.holder_id, earning.category, earning.community_id) == (
        SourceKind.report, "r-1", "hazard.fire", "110105001002")


def test_reports_by_grid_workers_earn_nothing():
    rep = {**REPORTED, "reporter": {"kind": "grid_worker", "id": "gw-1"}}
    assert earning_from_report(rep, source="/grid", event_id="reg-1", occurred_at=AT) is None
