"""Flow generation: the story mix, the commands each story sends, reproducibility, bad input."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas.envelope import CloudEvent, decode
from schemas.registry import types_of
from services.points.domain import Deed, submitter_of
from services.simulator.client import Outcome
from services.simulator.district import generate
from services.simulator.flows import MIX, Pace, Stories, pick_kind
from services.simulator.runner import months_between, periods_ending

# What a service answers to each command in the fake: the event(s) it leads to.
ANSWERS = {
    "grid.case.report.v1": ["grid.case.reported.v1"],
    "orders.order.place.v1": ["orders.order.placed.v1", "orders.order.dispatched.v1"],
    "orders.order.decline.v1": ["orders.order.declined.v1", "orders.order.dispatched.v1"],
    "orders.order.dispatch.v1": ["orders.order.dispatched.v1"],
}


class FakeClient:
    """Accepts every command (or refuses those the test says), records what was sent."""

    def __init__(self, refuse: set[str] = frozenset()):
        self.sent: list = []
        self.senders: list = []  # the Actor who sent each command of ``sent``
        self.raw: list[tuple[str, bytes]] = []
        self.codes: list[tuple[str, int]] = []  # (resident, amount) of each consent code given
        self.refuse = refuse

    async def send_and_follow(self, payload, *, sender=None, timeout: float = 0) -> Outcome:
        self.sent.append(payload)
        self.senders.append(sender)
        cid = f"cmd-{len(self.sent)}"
        if payload.TYPE in self.refuse:
            rej = CloudEvent(id="r", source="/services/x", type="x.command.rejected.v1", causationid=cid,
                             data={"command_id": cid, "reason": "illegal_transition"})
            return Outcome(cid, [], rej)
        data = {"order_id": getattr(payload, "order_id", None), "assignee_id": "pm-x"}
        events = [CloudEvent(id=f"e-{t}", source="/services/x", type=t, causationid=cid, data=data)
                  for t in ANSWERS.get(payload.TYPE, [payload.TYPE.replace(".v1", "d.v1")])]
        return Outcome(cid, events)

    async def send_raw(self, topic: str, value: bytes, *, key=None) -> None:
        self.raw.append((topic, value))

    async def redemption_code(self, resident, amount: int) -> dict:
        self.codes.append((resident.sub, amount))
        return {"code": f"code-{len(self.codes)}", "account_id": f"resident:{resident.sub}", "amount": amount}

    def expect(self, predicate):
        return asyncio.get_running_loop().create_future()

    async def wait_for(self, predicate, timeout: float = 0):
        return None

    def seen(self, subject, type_):
        return None


class Stepping:
    """A calendar that steps a month on every reading: a department's late step goes on at once."""

    def __init__(self, start: datetime = datetime(2026, 5, 1, tzinfo=timezone.utc)):
        self.at = start

    def __call__(self) -> datetime:
        self.at += timedelta(days=31)
        return self.at


def stories(client=None, seed=7, **kw) -> Stories:
    kw = {"now": Stepping(), "settle": 0.0, "late_wait": 1.0, **kw}
    return Stories(generate(seed), client or FakeClient(), seed=seed, follow_timeout=0.01, expire_wait=0.01, **kw)


def test_the_mix_picks_every_kind_in_roughly_its_share():
    rng = random.Random(1)
    got = Counter(pick_kind(rng) for _ in range(20_000))
    total = sum(MIX.values())
    for kind, weight in MIX.items():
        assert abs(got[kind] / 20_000 - weight / total) < 0.015, kind


def test_bad_input_is_a_small_fraction():
    assert 0 < MIX["bad_input"] / sum(MIX.values()) <= 0.06


async def test_the_same_seed_sends_the_same_commands():
    a, b = FakeClient(), FakeClient()
    for s in (stories(a), stories(b)):
        for _ in range(40):
            await s.run_one()
    assert [c.model_dump(mode="json") for c in a.sent if c.TYPE != "grid.patrol.log.v1"] == \
           [c.model_dump(mode="json") for c in b.sent if c.TYPE != "grid.patrol.log.v1"]


async def test_a_hazard_goes_round_the_whole_loop():
    c = FakeClient()
    await stories(c).run_one("hazard")
    types = [x.TYPE for x in c.sent]
    for t in ("grid.case.report.v1", "grid.case.register.v1", "grid.case.dispatch.v1", "grid.case.handle.v1",
              "grid.case.verify.v1"):
        assert t in types
    report = c.sent[0]
    assert report.category.is_hazard and report.grade is not None


async def test_an_order_goes_through_the_four_steps_and_is_evaluated_by_the_community():
    c = FakeClient()
    await stories(c).run_one("order")
    types = [x.TYPE for x in c.sent]
    assert types[0] == "orders.order.place.v1"
    for t in ("orders.order.accept.v1", "orders.order.complete.v1", "orders.order.evaluate.v1"):  # 派单 by the service
        assert t in types
    ev = c.sent[-1]
    assert ev.evaluator_id.startswith("cw-") and ev.evaluator_id != "pm-x"


async def test_the_resident_rates_most_orders_before_the_community_evaluates_them():
    c = FakeClient()
    s = stories(c)
    for _ in range(40):
        await s.run_one("order")
    place = {x.order_id: x for x in c.sent if x.TYPE == "orders.order.place.v1"}
    rates = {x.order_id: (x, who) for x, who in zip(c.sent, c.senders) if x.TYPE == "orders.order.rate.v1"}
    evaluations = [(i, x, who) for i, (x, who) in enumerate(zip(c.sent, c.senders))
                   if x.TYPE == "orders.order.evaluate.v1"]
    assert evaluations and 0.6 < len(rates) / len(evaluations) < 1
    for i, ev, who in evaluations:
        assert who.roles == ("community_officer",) and ev.evaluator_id == who.sub
        rated = rates.get(ev.order_id)
        if rated is None:
            assert ev.rating is not None  # the office gives a rating of its own
            continue
        rate, resident = rated
        assert c.sent.index(rate) < i and ev.rating is None  # the 考单 carries the resident's rating
        assert rate.resident_id == resident.sub == place[ev.order_id].resident_id and "resident" in resident.roles
        assert ev.passed == (rate.rating >= 3)


async def test_an_order_made_from_a_grid_case_is_not_rated_in_a_residents_name():
    c = FakeClient()
    s = stories(c)
    for _ in range(20):
        await s._order_cycle(random.Random(3), "o-case", "110105001002", "gw-1", by_resident=False)
    assert not [x for x in c.sent if x.TYPE == "orders.order.rate.v1"]
    assert all(x.rating is not None for x in c.sent if x.TYPE == "orders.order.evaluate.v1")


async def test_no_case_is_verified_by_its_handler_and_no_deed_reviewed_by_its_submitter():
    c = FakeClient()
    s = stories(c)
    for kind in ("hazard", "dispute", "environment", "deed") * 15:
        await s.run_one(kind)
    handler: dict[str, str | None] = {}
    verified = reviewed = 0
    for cmd in c.sent:
        if cmd.TYPE == "grid.case.handle.v1":
            handler[cmd.case_id] = cmd.handled_by
        elif cmd.TYPE == "grid.case.verify.v1":
            assert cmd.verifier_id and cmd.verifier_id != handler.get(cmd.case_id), cmd
            verified += 1
        elif cmd.TYPE == "points.deed.review.v1":
            deed = Deed(deed_id=cmd.deed_id, account_id=cmd.account_id, category="x", community_id="")
            assert submitter_of(deed) is not None and cmd.reviewer_id != submitter_of(deed), cmd
            reviewed += 1
    assert verified and reviewed


async def test_some_orders_are_declined_and_some_left_unanswered_to_expire():
    c = FakeClient()
    s = stories(c)
    for _ in range(80):
        await s.run_one("order")
    types = Counter(x.TYPE for x in c.sent)
    assert types["orders.order.decline.v1"] > 0
    assert s.stats.stories["order_left_to_expire"] > 0
    # the service dispatched on placement and after each decline: the console never had to
    assert types["orders.order.dispatch.v1"] == 0
    assert types["orders.order.accept.v1"] < types["orders.order.place.v1"]


async def test_the_console_dispatches_by_hand_when_the_service_did_not():
    c = FakeClient()
    s = stories(c)
    await s._order_cycle(random.Random(3), "order-1", "110105001001", "res-1", None)
    assert [x.TYPE for x in c.sent][0] == "orders.order.dispatch.v1"
    assert c.sent[0].assignee_id is None  # automatic: the service chooses


async def test_disputes_sometimes_escalate_to_joint_mediation_and_reports_sometimes_repeat():
    c = FakeClient()
    s = stories(c)
    for _ in range(30):
        await s.run_one("dispute")
        await s.run_one("environment")
    esc = [x for x in c.sent if x.TYPE == "grid.case.escalate.v1"]
    assert esc and all(x.joint_mediation for x in esc)
    reports = [x for x in c.sent if x.TYPE == "grid.case.report.v1"]
    near_pairs = [(a, b) for a, b in zip(reports, reports[1:]) if a.grid_id == b.grid_id and a.category == b.category
                  and abs(a.location.lat - b.location.lat) < 0.001 and a.location.lon == b.location.lon]
    assert near_pairs  # the duplicate, 20 m away


async def test_unrelated_reports_are_never_within_the_duplicate_radius():
    s = stories()
    locs = [s.location("110105001001001") for _ in range(300)]
    assert len({(l.lat, l.lon) for l in locs}) == 300
    # lattice spacing >= 0.0035 deg lat (~390 m) / 0.0045 deg lon (~380 m at 40N) > 250 m


async def test_a_refused_step_ends_the_story():
    c = FakeClient(refuse={"grid.case.register.v1"})
    await stories(c).run_one("hazard")
    assert [x.TYPE for x in c.sent][-1] == "grid.case.register.v1"
    assert "grid.case.dispatch.v1" not in [x.TYPE for x in c.sent]


async def test_bad_input_covers_malformed_json_unknown_grids_and_illegal_transitions():
    c = FakeClient()
    s = stories(c)
    for _ in range(40):
        await s.run_one("bad_input")
    assert set(s.stats.bad_input) == {"malformed_json", "unknown_grid", "illegal_transition", "skipped_step"}
    for topic, value in c.raw:
        assert topic.endswith(".intake.v1")
        with pytest.raises(Exception):
            decode(value)
    unknown = [x for x in c.sent if x.TYPE == "grid.case.report.v1" and x.grid_id == s.d.unknown_grid_id()]
    assert unknown


async def test_every_command_sent_is_a_valid_contract_command_of_its_service():
    c = FakeClient()
    s = stories(c)
    await s.setup()
    for _ in range(150):
        await s.run_one()
    for cmd in c.sent:
        svc = cmd.TYPE.split(".")[0]
        assert cmd.TYPE in types_of(svc, "command")
        type(cmd).model_validate(orjson.loads(orjson.dumps(cmd.model_dump(mode="json"))))


async def test_setup_opens_every_account_and_registers_members_before_claiming_posts():
    c = FakeClient()
    s = stories(c)
    await s.setup()
    d = s.d
    opened = [x for x in c.sent if x.TYPE == "points.account.open.v1"]
    assert len(opened) == len(d.communities) + len(d.merchants) + len(d.residents) + len(d.members)
    types = [x.TYPE for x in c.sent]
    assert max(i for i, t in enumerate(types) if t == "orders.member.register.v1") < types.index("orders.post.claim.v1")


async def test_month_end_reviews_every_unit_both_ways():
    c = FakeClient()
    s = stories(c)
    assert await s.month_end_reviews("2026-05") == 4 * len(s.d.units)
    reviews = [x for x in c.sent if x.TYPE == "assessment.review.record.v1"]
    assert len(reviews) == len(c.sent) == 4 * len(s.d.units)
    assert {r.subject_type.value for r in reviews} == {"unit", "street", "community"}
    assert {r.period for r in reviews} == {"2026-05"}
    recorders = {(r.reviewer_type.value, r.subject_type.value): by.role for r, by in zip(c.sent, c.senders)}
    assert recorders == {("community", "unit"): "community_officer", ("street", "unit"): "street_officer",
                         ("unit", "community"): "street_officer", ("unit", "street"): "assessor"}


async def test_closing_a_period_is_one_command_and_is_counted_when_accepted():
    c = FakeClient(refuse={"assessment.period.close.v1"})
    s = stories(c)
    assert (await s.close_period("2026-05")).rejected and s.stats.periods_closed == []
    c.refuse = set()
    out = await s.close_period("2026-05")
    assert not out.rejected and s.stats.periods_closed == ["2026-05"]
    assert [x.TYPE for x in c.sent] == ["assessment.period.close.v1"] * 2 and c.sent[-1].period == "2026-05"


def test_a_month_end_closes_the_month_and_the_quarter_and_year_it_ends():
    assert periods_ending("2026-05") == ["2026-05"]
    assert periods_ending("2026-06") == ["2026-06", "2026-Q2"]
    assert periods_ending("2026-12") == ["2026-12", "2026-Q4", "2026"]
    assert months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01"]
    assert months_between("2026-11", "2026-11") == []


CASE_KINDS = ("hazard", "dispute", "environment", "resident_need")


async def test_cases_go_to_the_registers_department_which_does_its_part():
    c = FakeClient()
    s = stories(c)
    for _ in range(120):
        await s.run_one(CASE_KINDS[_ % 4])
    sent = list(zip(c.sent, c.senders))
    types = Counter(x.TYPE for x in c.sent)
    registers = [x for x in c.sent if x.TYPE == "grid.case.register.v1"]
    # most registrations leave the department to the register's 权责清单; the rest name that same one
    assert 0.7 < sum(x.department is None for x in registers) / len(registers) < 0.97
    reports = {x.case_id: x for x in c.sent if x.TYPE == "grid.case.report.v1"}
    for x in registers:
        r = reports[x.case_id]
        named = s.d.responsible(r.category, r.grade, s.d.grid(r.grid_id).street_id)
        assert x.department in (None, named)
        dispatch = next(y for y in c.sent if y.TYPE == "grid.case.dispatch.v1" and y.case_id == x.case_id)
        assert dispatch.department == named and dispatch.assignee_id == f"do-{named}"
    for t in ("grid.case.accept.v1", "grid.case.contact.v1", "grid.case.return.v1", "grid.case.return.review.v1",
              "grid.case.extension.request.v1", "grid.case.extension.review.v1", "grid.case.feedback.v1"):
        assert types[t], t
    assert types["grid.case.accept.v1"] >= types["grid.case.dispatch.v1"]  # the first department, or the next
    assert types["grid.case.contact.v1"] < types["grid.case.accept.v1"]  # some never contact the reporter
    assert 0.02 < types["grid.case.return.v1"] / types["grid.case.dispatch.v1"] < 0.2
    reviews = [x for x in c.sent if x.TYPE == "grid.case.return.review.v1"]
    for x in reviews:  # an approved return re-dispatches to another department of the register
        if x.approved:
            returned = next(y for y in c.sent if y.TYPE == "grid.case.dispatch.v1" and y.case_id == x.case_id)
            assert x.department != returned.department and x.department in {d.department_id for d in s.d.departments}
    for x, who in sent:  # each step by its sender: the department's officer, the community, the street
        if x.TYPE in ("grid.case.accept.v1", "grid.case.contact.v1", "grid.case.return.v1", "grid.case.control.v1",
                      "grid.case.extension.request.v1", "grid.case.exclusion.request.v1", "grid.case.handle.v1"):
            assert who.roles == ("department_officer",) and who.sub.startswith("do-")
        if x.TYPE in ("grid.case.return.review.v1", "grid.case.extension.review.v1"):
            assert who.roles == ("community_officer",)
        if x.TYPE == "grid.case.exclusion.review.v1":
            assert who.roles == ("street_officer",)
    feedback = [x for x in c.sent if x.TYPE == "grid.case.feedback.v1"]
    assert {x.resolved for x in feedback} == {True, False}
    assert s.stats.stories["department_late_accept"] and s.stats.stories["department_late_handling"]
    assert s.stats.stories["department_contact_never"] and s.stats.stories["department_contact_late"]


async def test_severe_hazards_are_controlled_before_they_are_handled():
    c = FakeClient()
    s = stories(c)
    for _ in range(150):
        await s.run_one("hazard")
    severe = {x.case_id for x in c.sent if x.TYPE == "grid.case.report.v1" and x.grade is not None
              and x.grade.value == "severe"}
    assert severe
    types = [(x.TYPE, getattr(x, "case_id", None)) for x in c.sent]
    for case in severe:
        if ("grid.case.handle.v1", case) in types:
            assert types.index(("grid.case.control.v1", case)) < types.index(("grid.case.handle.v1", case))
    assert {case for t, case in types if t == "grid.case.control.v1"} <= severe


async def test_a_department_late_with_a_step_waits_for_the_next_month():
    when = [datetime(2026, 5, 3, tzinfo=timezone.utc)]
    s = stories(now=lambda: when[0], late_wait=0.3)
    assert await s.next_month() is False  # the month did not step: the step is left undone
    waiting = asyncio.ensure_future(s.next_month())
    await asyncio.sleep(0.05)
    assert s.idle == 1
    when[0] = datetime(2026, 6, 1, tzinfo=timezone.utc)
    assert await waiting is True and s.idle == 0


def test_departments_come_from_the_register_with_a_diligence_of_the_seed():
    a, b, other = generate(7), generate(7), generate(8)
    assert [d.department_id for d in a.departments] == [d.department_id for d in a.register]
    assert a.departments == b.departments and a.departments != other.departments
    assert len({d.diligence for d in a.departments}) > 3 and all(0.6 <= d.diligence <= 0.98 for d in a.departments)
    street = a.streets[0].street_id
    assert all(d.street_id in (None, street) for d in a.departments_of(street))


async def test_a_whistle_summons_departments_that_report_on_time_late_or_never_and_are_rated():
    c = FakeClient()
    s = stories(c)
    for street in s.d.streets * 15:
        await s.story_whistle(random.Random(len(c.sent)), street.street_id)
    blows = [x for x in c.sent if x.TYPE == "grid.whistle.blow.v1"]
    assert len(blows) == 30
    for x, who in zip(c.sent, c.senders):
        if x.TYPE in ("grid.whistle.blow.v1", "grid.whistle.rate.v1"):
            assert who.roles == ("street_officer",)
        if x.TYPE == "grid.whistle.answer.v1":
            assert who.sub == f"do-{x.department}"
    summoned = {(b.whistle_id, d) for b in blows for d in b.departments}
    for b in blows:
        assert all(s.d.department(d).serves(b.street_id) for d in b.departments)
    answered = {(x.whistle_id, x.department) for x in c.sent if x.TYPE == "grid.whistle.answer.v1"}
    rated = {(x.whistle_id, x.department): x.rating for x in c.sent if x.TYPE == "grid.whistle.rate.v1"}
    assert answered < summoned and set(rated) == summoned  # some never reported; the street rates every one
    assert {r for k, r in rated.items() if k not in answered} == {1}
    assert s.stats.stories["whistle_on_time"] and s.stats.stories["whistle_late"] and s.stats.stories["whistle_never"]


def test_stories_stamp_the_services_clock():
    when = datetime(2026, 7, 1, 0, 0, 5, tzinfo=timezone.utc)
    s = Stories(generate(7), FakeClient(), now=lambda: when)
    assert s.now() == when


async def test_the_pace_holds_the_rate():
    pace = Pace(200.0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(300):
        await pace.take()
    assert loop.time() - t0 >= 0.45  # 300 at 200/s with a burst of 200 -> at least ~0.5 s
