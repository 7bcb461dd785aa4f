"""A scripted month (October 2026) of grid and order events, built from the contract models,
and the indicator values computed by hand from it.

Community 110105001002 (street 110105001) has two grids:

- grid A 110105001002003, grid worker gw-1, four cases and two patrols:
  A1 reported/registered/dispatched (due 10-06), verified, closed on time (48 h), 满意;
  A2 reported/registered/dispatched (due 10-13), failed verification (返工), verified, closed
  late (96 h), 基本满意; A3 reported and dismissed (不予立案); A4 reported/registered/dispatched
  (due 10-28) and overdue in handling (延期), still open.
- grid B 110105001002004, grid worker gw-2, one case: B1 closed on time (24 h), 不满意.

Member m-1 (unit u-1) reported to the community and got two orders: o-1 accepted, completed,
rated 5 and passed; o-2 declined.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.envelope import CloudEvent, envelope_for
from schemas.grid import (
    CaseClosed,
    CaseDismissed,
    CaseDispatched,
    CaseFeedback,
    CaseOverdue,
    CaseRegistered,
    CaseReported,
    CaseVerified,
    Location,
    PatrolLogged,
    Reporter,
)
from schemas.orders import (
    MemberRegistered,
    OrderAccepted,
    OrderCompleted,
    OrderDeclined,
    OrderDispatched,
    OrderEvaluated,
    OrderPlaced,
)

CST = timezone(timedelta(hours=8))
PERIOD = "2026-10"
GRID_A, GRID_B = "110105001002003", "110105001002004"
COMMUNITY, STREET = "110105001002", "110105001"
WHERE = Location(lat=39.9, lon=116.4, address="朝阳门内大街 1 号")


def t(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=CST)


def _env(payload, at: datetime, source: str, prefix: str, n: int) -> CloudEvent:
    return envelope_for(payload, source=source, id=f"{prefix}-{n:03d}", time=at)


def grid_events(prefix: str = "g") -> list[CloudEvent]:
    out: list[tuple] = []

    def case(case_id: str, grid: str, worker: str, day: int, *, dismiss=False, rework=False, overdue=False,
             on_time=True, hours=48, satisfaction=None):
        rep = Reporter(kind="grid_worker", id=worker)
        out.append((CaseReported(case_id=case_id, grid_id=grid, category="environment", description="垃圾堆放",
                                 location=WHERE, reporter=rep, occurred_at=t(day)), t(day)))
        if dismiss:
            out.append((CaseDismissed(case_id=case_id, reason="重复", duplicate_of=None, grid_id=grid,
                                      occurred_at=t(day, 10)), t(day, 10)))
            return
        out.append((CaseRegistered(case_id=case_id, due_at=t(day, 12), department="城管", grid_id=grid,
                                   reporter=rep, occurred_at=t(day, 10)), t(day, 10)))
        out.append((CaseDispatched(case_id=case_id, department="城管", assignee_id="dept-1", due_at=t(day + 3),
                                   grid_id=grid, occurred_at=t(day, 11)), t(day, 11)))
        if overdue:
            out.append((CaseOverdue(case_id=case_id, due_at=t(day + 3), level="community", stage="handle",
                                    occurred_at=t(day + 3, 10)), t(day + 3, 10)))
            return
        if rework:
            out.append((CaseVerified(case_id=case_id, passed=False, rework_due_at=t(day + 4), rework_count=1,
                                     occurred_at=t(day + 2)), t(day + 2)))
        close_day = day + (4 if rework else 2)
        out.append((CaseVerified(case_id=case_id, passed=True, rework_count=1 if rework else 0,
                                 occurred_at=t(close_day, 8)), t(close_day, 8)))
        out.append((CaseClosed(case_id=case_id, on_time=on_time, handling_seconds=hours * 3600, grid_id=grid,
                               occurred_at=t(close_day, 9)), t(close_day, 9)))
        if satisfaction:
            out.append((CaseFeedback(case_id=case_id, satisfaction=satisfaction, grid_id=grid,
                                     occurred_at=t(close_day + 1)), t(close_day + 1)))

    case("A1", GRID_A, "gw-1", 3, hours=48, satisfaction="satisfied")
    case("A2", GRID_A, "gw-1", 10, rework=True, on_time=False, hours=96, satisfaction="basically_satisfied")
    case("A3", GRID_A, "gw-1", 20, dismiss=True)
    case("A4", GRID_A, "gw-1", 25, overdue=True)
    case("B1", GRID_B, "gw-2", 5, hours=24, satisfaction="unsatisfied")
    for i, day in enumerate((8, 18)):
        out.append((PatrolLogged(patrol_id=f"p-{i}", grid_id=GRID_A, grid_worker_id="gw-1", started_at=t(day, 14),
                                 ended_at=t(day, 15), occurred_at=t(day, 15)), t(day, 15)))
    return [_env(p, at, "/services/grid", prefix, n) for n, (p, at) in enumerate(out)]


def order_events(prefix: str = "o") -> list[CloudEvent]:
    out = [
        (MemberRegistered(member_id="m-1", community_id=COMMUNITY, unit_id="u-1", at=t(1)), t(1)),
        (OrderPlaced(order_id="o-1", resident_id="r-1", community_id=COMMUNITY, grid_id=GRID_A, category="repair",
                     description="修水管", source_case_id=None, at=t(2)), t(2)),
        (OrderDispatched(order_id="o-1", assignee_id="m-1", dispatched_by="c-1", accept_by=t(3), at=t(2, 10)),
         t(2, 10)),
        (OrderAccepted(order_id="o-1", assignee_id="m-1", at=t(2, 11)), t(2, 11)),
        (OrderCompleted(order_id="o-1", assignee_id="m-1", service_minutes=60, at=t(3)), t(3)),
        (OrderEvaluated(order_id="o-1", assignee_id="m-1", rating=5, passed=True, evaluator_id="r-1", at=t(4)), t(4)),
        (OrderPlaced(order_id="o-2", resident_id="r-2", community_id=COMMUNITY, grid_id=GRID_B, category="cleaning",
                     description="保洁", source_case_id=None, at=t(9)), t(9)),
        (OrderDispatched(order_id="o-2", assignee_id="m-1", dispatched_by="c-1", accept_by=t(10), at=t(9, 10)),
         t(9, 10)),
        (OrderDeclined(order_id="o-2", assignee_id="m-1", reason="没空", at=t(9, 12)), t(9, 12)),
    ]
    return [_env(p, at, "/services/orders", prefix, n) for n, (p, at) in enumerate(out)]


# -- hand-computed ---------------------------------------------------------------------------

GRID_A_INDICATORS = {
    "registration_rate": 0.75,      # 3 registered / 4 received
    "dispatch_rate": 1.0,           # 3 / 3
    "closure_rate": 0.6667,         # 2 closed / 3 due
    "on_time_closure_rate": 0.3333,  # 1 / 3
    "rework_rate": 0.3333,          # A2 / 3
    "extension_rate": 0.3333,       # A4 / 3
    "avg_handling_hours": 72.0,     # (48 + 96) / 2
    "satisfaction_rate": 0.95,      # (1 + 0.9) / 2
    "patrols_logged": 2.0,
}
GRID_A_DETAILS = {"registration_rate": (3.0, 4.0), "closure_rate": (2.0, 3.0), "satisfaction_rate": (1.9, 2.0),
                  "avg_handling_hours": (144.0, 2.0)}
# organisation: (75 + 100 + 66.67 + 2×33.33 + 66.67 + 66.67 + 100) / 8 = 67.71
# member_role: patrols 2 / target 30 = 6.67; satisfaction 95
# score = 0.4 × 67.71 + 0.2 × 6.67 + 0.4 × 95 = 66.42 → 一般 (fair)
GRID_A_PILLARS = {"organisation": 67.71, "member_role": 6.67, "satisfaction": 95.0}
GRID_A_SCORE = 66.42
# grid B: organisation 100, patrols 0 → 0, satisfaction 0 → 0.4 × 100 = 40 → 较差 (poor)
GRID_B_SCORE = 40.0
GRID_ALERTS = {(GRID_A, "on_time_closure_rate"), (GRID_A, "rework_rate"), (GRID_A, "extension_rate"),
               (GRID_B, "satisfaction_rate")}
COMMUNITY_INDICATORS = {"registration_rate": 0.8, "closure_rate": 0.75, "acceptance_rate": 0.5}
MEMBER_INDICATORS = {"acceptance_rate": 0.5, "completion_rate": 1.0, "avg_order_rating": 5.0,
                     "evaluation_pass_rate": 1.0}
# the what-if scheme: grid pillars 20 / 20 / 60 instead of 40 / 20 / 40
WHATIF_GRID_A = 71.88  # 0.2 × 67.71 + 0.2 × 6.67 + 0.6 × 95 = 71.876
WHATIF_GRID_B = 20.0
