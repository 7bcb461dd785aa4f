"""``python -m services.assessment.app rebuild`` against a real assessment worker: the upstream
events it consumes (a scripted month of grid cases and patrols and of orders, delivered twice
and re-wrapped; points' accounts, deeds and postings; party's organisational life and units;
an erasure of orders') and commands on ``assessment.intake.v1`` (two-way reviews, a scheme
change, period closes before and after a late event, an erasure, refusals, a poison record)
are handled live; the rebuilt projection equals the live one row for row. The close timer is
off there; in the second test a worker whose timer starts from August closes August, September
and the third quarter at once (nothing to score in them), and October when it ends while the
worker runs; the rebuild closes them again at the same moments of the log (the timer declares
its events: the rebuild's docstring), so the cards, alerts and closes it published are compared
too, and the timer's mark."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

import orjson

import pytest

from schemas.assessment import ChangeScheme, ClosePeriod, ErasePerson, RecordReview
from schemas.envelope import envelope_for
from schemas.grid import CaseReported, Reporter
from schemas.orders import PersonErased as OrdersPersonErased
from schemas.party import OrgLifeHeld, OrgLifeKind, UnitReported
from schemas.points import AccountOpened, DeedApproved, TransferPosted
from tests.support.identity import sender_token
from tests.support.kafka import command, produce, read_all
from tests.support.procs import Worker
from tests.support.rebuild import Phases, differences, live_and_rebuilt, report, run_rebuild, snapshot

from .scenario import COMMUNITY, GRID_A, PERIOD, WHERE, grid_events, order_events, t

pytestmark = pytest.mark.integration

# the worker's domain clock pinned to a simulated 2026-11-06 (as in test_assessment_worker.py), the
# scripted history dated in its past and sent now (no bound on the skew of an event's time)
CLOCK = {"SIM_CLOCK_START": "2026-11-01T00:00:00+08:00", "SIM_CLOCK_REAL_START": f"{time.time() - 5 * 86400:.3f}",
         "SIM_MONTH_SECONDS": str(7 * 86400), "EVENT_TIME_MAX_SKEW_SECONDS": "0"}


def assessment_worker(kafka: str, db: str, log, **env: str) -> Worker:
    return Worker("services.assessment.app", {"KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": db,
                                              "TOPIC_PARTITIONS": "4", **env}, prefix="ASSESSMENT_", log=log).start()


def at(payload, when: datetime, source: str, id: str):
    return envelope_for(payload, source=source, id=id, time=when)


@pytest.fixture(scope="module")
async def compared(module_kafka, module_database_url, tmp_path_factory):
    d = tmp_path_factory.mktemp("assessment-rebuild")
    kafka, db = module_kafka, module_database_url
    w = assessment_worker(kafka, db, d / "worker.log", ASSESSMENT_CLOSE_TIMER="false", **CLOCK)
    phase = Phases(kafka, db, "assessment")

    try:
        await w.wait_ready()
        grid, orders = grid_events(), order_events()
        await phase("grid.events.v1", *grid)
        await phase("orders.events.v1", *orders)
        # the same again, and the cases re-wrapped (new envelope ids, as after a producer retry)
        await phase("grid.events.v1", *grid, *(e.model_copy(update={"id": "re-" + e.id}) for e in grid
                                               if e.type != "grid.patrol.logged.v1"))
        points, party = "/services/points", "/services/party"
        await phase("points.events.v1",
                    at(AccountOpened(account_id="resident:m-1", holder_id="m-1", kind="resident",
                                     community_id=COMMUNITY, opened_at=t(2)), t(2), points, "p-1"),
                    at(DeedApproved(deed_id="d-1", account_id="resident:m-1", community_id=COMMUNITY,
                                    category="civility_persuasion", points=10, reviewer_id="rev-1", occurred_at=t(6)),
                       t(6), points, "p-2"),
                    at(TransferPosted(transfer_id="tr-1", debit_account=f"issuer:{COMMUNITY}",
                                      credit_account="resident:m-1", amount=10, reason="award", kind="award",
                                      community_id=COMMUNITY, account_id="resident:m-1", posted_at=t(6)),
                       t(6), points, "p-3"))
        await phase("party.events.v1",
                    at(OrgLifeHeld(org_id="o-c-1", meeting_id="mt-1", kind=OrgLifeKind.THEME_DAY, held_at=t(12),
                                   attendees=("m-1",), absentees=(), area_id=COMMUNITY, period=PERIOD,
                                   occurred_at=t(12)), t(12), party, "y-1"),
                    at(UnitReported(unit_id="u-1", name="区医院", community_id=COMMUNITY, occurred_at=t(1)),
                       t(1), party, "y-2"))
        # two-way reviews, a scheme change for November, a refusal, October closed
        await phase("assessment.intake.v1",
                    command(RecordReview(review_id="rv-1", reviewer_id=COMMUNITY, subject_type="unit",
                                         subject_id="u-1", period=PERIOD, score=80)),
                    command(ChangeScheme(scheme_id="w-2", weights={"grid.member_role": 0.5},
                                         effective_from=datetime.fromisoformat("2026-11-01T00:00:00+08:00"))),
                    command(ClosePeriod(period="2026-12")))  # refused: it has not ended
        await phase("assessment.intake.v1", command(ClosePeriod(period=PERIOD)))
        # a late report of October, a second review, and the period closed again (corrections)
        late = CaseReported(case_id="A9", grid_id=GRID_A, category="environment", description="垃圾堆放",
                            location=WHERE, reporter=Reporter(kind="grid_worker", id="gw-1"), occurred_at=t(27))
        await phase("grid.events.v1", at(late, t(27), "/services/grid", "g-late"))
        by_street = RecordReview(review_id="rv-2", reviewer_id="u-1", subject_type="community", subject_id=COMMUNITY,
                                 period=PERIOD, score=70)  # the unit's opinion, recorded by the street
        await phase("assessment.intake.v1", command(by_street), token=sender_token(by_street, role="street_officer"))
        await phase("assessment.intake.v1", command(ClosePeriod(period=PERIOD)))
        # erasures: a command, and orders' event
        await phase("assessment.intake.v1", command(ErasePerson(person_id="gw-2", reason="本人申请",
                                                                requested_by="dpo-1")))
        await phase("orders.events.v1", command(OrdersPersonErased(pseudonym="erased-" + "12" * 8, person_id="m-1",
                                                                   occurred_at=t(30)), source="/services/orders"))
        await produce(kafka, "assessment.intake.v1", [("poison", b'{"specversion": "1.0", "id": "broken')])
        await phase.handled(positions=1)
    finally:
        assert w.stop() == 0, (d / "worker.log").read_text()[-4000:]
    return await live_and_rebuilt(db, "assessment", w.env)


async def test_a_rebuilt_assessment_projection_equals_the_live_one_row_for_row(compared):
    live, rebuilt = compared
    assert live.rows["scorecards"] and live.rows["alerts"] and live.rows["event_log"] and live.rows["erasures"]
    diffs = differences(live, rebuilt)
    assert not diffs, report(diffs)


async def test_the_close_timers_rounds_are_run_again(kafka, database_url, tmp_path):
    # October (the scenario's month) ends 30 s after the worker is started, on its stepped
    # calendar; the timer looks from the middle of August
    clock = {"SIM_CLOCK_START": "2026-10-01T00:00:00+08:00", "SIM_CLOCK_REAL_START": f"{time.time():.3f}",
             "SIM_MONTH_SECONDS": "30", "EVENT_TIME_MAX_SKEW_SECONDS": "0"}
    w = assessment_worker(kafka, database_url, tmp_path / "worker.log", ASSESSMENT_CLOSE_CHECK_SECONDS="0.5",
                          ASSESSMENT_CLOSE_TIMER_SINCE="2026-08-15T00:00:00+08:00", **clock)
    phase = Phases(kafka, database_url, "assessment")
    try:
        await w.wait_ready()
        await phase("grid.events.v1", *grid_events())
        await phase("orders.events.v1", *order_events())

        def by_the_timer(r) -> bool:
            v = r["value"]
            return v["type"] == "assessment.scorecard.published.v1" and not v.get("causationid")
        closed = await read_all(kafka, "assessment.events.v1", min_count=1, timeout=60, predicate=by_the_timer)
        cards = [r["value"]["data"] for r in closed if by_the_timer(r)]
        assert cards and {c["period"] for c in cards} == {PERIOD}
        await phase.handled()  # its outbox drained
        closed = await read_all(kafka, "assessment.events.v1")
        closes = [(r["value"]["data"]["period"], r["value"]["data"]["scorecards"], r["value"]["data"]["published"])
                  for r in closed if r["value"]["type"] == "assessment.period.closed.v1"]
        # the first round's months and quarter had nothing to score: closed all the same, on the topic
        assert sorted(closes) == [("2026-08", 0, 0), ("2026-09", 0, 0), (PERIOD, len(cards), len(cards)),
                                  ("2026-Q3", 0, 0)], closes
    finally:
        assert w.stop() == 0, (tmp_path / "worker.log").read_text()[-4000:]
    # the relay publishes at least once: a card twice on the topic is one card to the rebuild
    twice = next(r for r in closed if by_the_timer(r))
    await produce(kafka, "assessment.events.v1", [(twice["key"], orjson.dumps(twice["value"]))])
    # the timer's mark is where the round that closed October looked: the rebuild moves it there
    live = await snapshot(database_url, "assessment")
    done = await asyncio.to_thread(run_rebuild, "assessment", w.env)
    assert done.returncode == 0, done.stderr[-4000:]
    outcome = orjson.loads(done.stdout.strip().splitlines()[-1])
    diffs = differences(live, await snapshot(database_url, "assessment"))
    assert not diffs, f"{outcome}\n{report(diffs)}"
    assert outcome["timer_rounds"] == 2 and live.rows["scorecards"] and len(live.rows["period_closes"]) == 4, outcome
    assert live.rows["timer_marks"], outcome
