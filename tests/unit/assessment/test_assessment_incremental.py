"""Incremental accumulation gives exactly the scorecards of a full replay, at small scale.

The history: the scripted October (grid cases with reworks, dismissals, overdues, feedback;
patrols; a member's orders) plus events that change what an earlier one counted — a case
sent to a department, contacted, then its exclusion approved later (its counts taken back); a
member who registers (placing the orders' community) after their order events occurred; a
points account and a deed; organisational life held and missed. Hypothesis picks a subset,
shuffles it, duplicates some events and cuts it into batches: whatever the arrival, the
accumulated counters, refs and scorecards equal those of one replay in replay order.
"""
from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.envelope import decode_payload
from schemas.grid import CaseContacted, CaseDispatched, CaseExclusionReviewed, CaseFeedback, PatrolLogged
from schemas.orders import MemberRegistered
from schemas.party import OrgEstablished, OrgLifeHeld, OrgLifeOverdue
from schemas.points import AccountOpened, DeedApproved
from services.assessment.domain import default_scheme
from services.assessment.domain.history import StoredEvent, fold, replay_order
from services.assessment.domain.incremental import Acc, accumulate, advance, apply, exact, table_of, unapply
from services.assessment.domain.facts.refs import MemoryLookup
from services.assessment.domain.publication import publication_for
from tests.integration.assessment.scenario import COMMUNITY, GRID_A, grid_events, order_events, t

CGJ = "110105.cgj"
PERIODS = ("2026-10", "2026-Q4", "2026")


def _stored(env, topic: str) -> StoredEvent:
    return StoredEvent(env.source, env.id, topic, decode_payload(env), env.time)


def history() -> list[StoredEvent]:
    out = [_stored(e, "grid.events.v1") for e in grid_events()] + [_stored(e, "orders.events.v1") for e in order_events()]
    extra = [
        # a department's part of a case, taken back by an exclusion approved later
        (CaseDispatched(case_id="D1", department=CGJ, assignee_id="x", due_at=t(16), grid_id=GRID_A,
                        occurred_at=t(12)), t(12), "grid"),
        (CaseContacted(case_id="D1", department=CGJ, channel="phone", contacted_by="s", on_time=True,
                       occurred_at=t(12, 15)), t(12, 15), "grid"),
        (CaseFeedback(case_id="D1", satisfaction="satisfied", resolved=True, department=CGJ, grid_id=GRID_A,
                      occurred_at=t(14)), t(14), "grid"),
        (CaseExclusionReviewed(case_id="D1", department=CGJ, approved=True, occurred_at=t(20)), t(20), "grid"),
        # a patrol of fractional length (its seconds summed exactly)
        (PatrolLogged(patrol_id="p-x", grid_id=GRID_A, grid_worker_id="gw-1", started_at=t(21, 14),
                      ended_at=t(21, 15).replace(microsecond=250_001), occurred_at=t(21, 15)), t(21, 15), "grid"),
        # a member whose registration places their later orders; an account and a deed
        (MemberRegistered(member_id="m-2", community_id=COMMUNITY, unit_id="u-2", at=t(5)), t(5), "orders"),
        (AccountOpened(account_id="resident:m-2", holder_id="m-2", kind="resident", opened_at=t(5, 10)), t(5, 10),
         "points"),
        (DeedApproved(deed_id="d-1", account_id="resident:m-2", category="civility", points=5, reviewed_at=t(7)),
         t(7), "points"),
        # organisational life: held in one month, missed in another
        (OrgEstablished(org_id="org-1", kind="community_committee", parent_id=None, area_id=COMMUNITY, name="一社区党委",
                        occurred_at=t(1)), t(1), "party"),
        (OrgLifeHeld(org_id="org-1", meeting_id="mt-1", kind="committee_meeting", held_at=t(9), attendees=("a", "b"),
                     absentees=("c",), area_id=COMMUNITY, occurred_at=t(9)), t(9), "party"),
        (OrgLifeOverdue(org_id="org-1", kind="branch_meeting", period="2026-Q3", area_id=COMMUNITY,
                        occurred_at=t(1, 1)), t(1, 1), "party"),
    ]
    for n, (payload, at, svc) in enumerate(extra):
        out.append(StoredEvent(f"/services/{svc}", f"x-{n:03d}", f"{svc}.events.v1", payload, at))
    return out


HISTORY = history()


def replayed(events):
    table, lookup = fold(replay_order(events))
    return table, lookup


def scorecards(table, lookup):
    scheme = default_scheme()
    return {p: publication_for(p, table, lookup, scheme) for p in PERIODS}


def test_the_history_has_something_in_every_period_and_for_departments_members_and_the_party():
    table, _ = replayed(HISTORY)
    kinds = {k[0] for k in table}
    assert {"grid", "community", "street", "grid_worker", "member", "department"} <= kinds
    assert all(any(k[2] == p for k in table) for p in PERIODS)


def test_apply_then_unapply_gives_back_the_lookup_and_the_deltas():
    lookup = MemoryLookup()
    for e in replay_order(HISTORY)[:-1]:
        apply(lookup, e)
    before = dict(lookup.refs)
    last = replay_order(HISTORY)[-1]
    facts, undo = apply(lookup, last)
    assert unapply(lookup, last, undo) == facts
    assert lookup.refs == before


def test_an_exclusion_approved_later_takes_back_what_arrived_before_it_even_when_it_arrives_first():
    d1 = [e for e in HISTORY if getattr(e.payload, "case_id", None) == "D1"]
    exclusion = d1[-1]
    acc, _ = accumulate([[exclusion], d1[:-1]])  # the exclusion first, the rest after
    assert table_of(acc) == replayed(d1)[0]
    assert table_of(acc)[("department", CGJ, "2026-10", "cases_contacted_on_time")] == 0.0


def test_a_redelivered_event_changes_nothing():
    events = replay_order(HISTORY)
    once, _ = accumulate([events])
    twice, _ = accumulate([events, events[3:9], [events[0]]])
    assert once == twice


def test_exact_sums_leave_nothing_behind():
    assert exact(0.1) + exact(0.2) - exact(0.1) == exact(0.2)
    assert Acc(Decimal("1.5"), 2) + Acc(Decimal("-1.5"), -2) == Acc()


@st.composite
def arrivals(draw):
    """A subset of the history, shuffled, some events repeated, cut into batches."""
    chosen = draw(st.lists(st.sampled_from(range(len(HISTORY))), min_size=1, max_size=len(HISTORY), unique=True))
    dupes = draw(st.lists(st.sampled_from(chosen), max_size=8))
    order = draw(st.permutations(chosen + dupes))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=10)))
    bounds = [0, *cuts, len(order)]
    return chosen, [[HISTORY[i] for i in order[a:b]] for a, b in zip(bounds, bounds[1:]) if a < b]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrivals())
def test_any_arrival_accumulates_exactly_the_counters_refs_and_scorecards_of_one_replay(case):
    chosen, batches = case
    acc, lookup = accumulate(batches)
    table, replay_lookup = replayed([HISTORY[i] for i in chosen])
    assert table_of(acc) == table
    assert lookup.refs == replay_lookup.refs
    assert scorecards(table_of(acc), lookup) == scorecards(table, replay_lookup)


def test_advance_with_nothing_new_does_nothing():
    lookup = MemoryLookup()
    e = HISTORY[0]
    step = advance(lookup, [], [e])
    assert step.new == [e]
    again = advance(lookup, step.applied, [e])
    assert again.applied == [] and again.deltas == {}


def test_the_scorecards_of_one_rank_group_are_those_of_the_whole_period():
    table, lookup = replayed(HISTORY)
    whole = publication_for("2026-10", table, lookup, default_scheme())
    for c in whole.scorecards:
        group = publication_for("2026-10", table, lookup, default_scheme(), of=(c.entity_type.value, c.entity_id))
        assert c in group.scorecards
        assert all((g.entity_type, g.parent_id) == (c.entity_type, c.parent_id) for g in group.scorecards)
