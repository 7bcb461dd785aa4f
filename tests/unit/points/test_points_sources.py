"""Facts of other services read as earnings."""
from datetime import datetime, timedelta, timezone

from schemas.grid import CaseRegistered, CaseReported
from schemas.orders import OrderEvaluated
from services.points.domain import OrderFacts, SourceKind, earning_from_order, earning_from_report

SH = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 22, 10, tzinfo=SH)
FACTS = OrderFacts(category="daily_care", community_id="110105001002", service_minutes=95)  # placed + completed
EVALUATED = OrderEvaluated(order_id="o-1", assignee_id="m-7", rating=5, passed=True, evaluator_id="cw-1")


def test_passed_order_earns_for_the_assignee_with_category_community_and_minutes():
    earning = earning_from_order(EVALUATED, facts=FACTS, source="/orders", event_id="ev-9", occurred_at=AT)
    assert earning.kind is SourceKind.order
    assert (earning.holder_id, earning.category, earning.community_id, earning.service_minutes) == (
        "m-7", "daily_care", "110105001002", 95)
    assert (earning.source, earning.source_event_id, earning.occurred_at) == ("/orders", "ev-9", AT)


def test_failed_order_earns_nothing():
    failed = EVALUATED.model_copy(update={"passed": False})
    assert earning_from_order(failed, facts=FACTS, source="/o", event_id="e", occurred_at=AT) is None


def test_order_without_known_category_or_community_earns_nothing():
    assert earning_from_order(EVALUATED, facts=None, source="/o", event_id="e", occurred_at=AT) is None


def test_fields_on_the_evaluation_itself_win_over_the_projection():
    evaluated = OrderEvaluated(order_id="o-1", assignee_id="m-7", rating=5, passed=True, evaluator_id="cw-1",
                               category="repair", service_minutes=30)
    earning = earning_from_order(evaluated, facts=FACTS, source="/o", event_id="e", occurred_at=AT)
    assert (earning.category, earning.service_minutes) == ("repair", 30)


REPORTED = CaseReported(case_id="c-1", grid_id="110105001002003", category="hazard.fire", description="楼道堆物",
                        location={"lat": 39.92, "lon": 116.44, "address": "金台里3号楼"},
                        reporter={"kind": "resident", "id": "r-1"}, grade="general")
REGISTERED = CaseRegistered(case_id="c-1", due_at=AT + timedelta(hours=1), department="城市管理办公室")


def test_registered_report_by_a_resident_earns_in_the_community_of_its_grid():
    earning = earning_from_report(REGISTERED, REPORTED, source="/grid", event_id="reg-1", occurred_at=AT)
    assert (earning.kind, earning.holder_id, earning.category, earning.community_id) == (
        SourceKind.report, "r-1", "hazard.fire", "110105001002")


def test_reports_by_grid_workers_earn_nothing():
    rep = CaseReported.model_validate({**REPORTED.model_dump(), "reporter": {"kind": "grid_worker", "id": "gw-1"}})
    assert earning_from_report(REGISTERED, rep, source="/grid", event_id="reg-1", occurred_at=AT) is None


def test_what_the_registration_carries_wins_over_the_report():
    registered = CaseRegistered.model_validate({**REGISTERED.model_dump(), "category": "dispute.neighbour",
                                                "grid_id": "110105002001004"})
    earning = earning_from_report(registered, REPORTED, source="/grid", event_id="reg-1", occurred_at=AT)
    assert (earning.holder_id, earning.category, earning.community_id) == ("r-1", "dispute.neighbour", "110105002001")
    # without the report, a registration that does not name the reporter earns nothing
    assert earning_from_report(registered, None, source="/grid", event_id="reg-1", occurred_at=AT) is None
