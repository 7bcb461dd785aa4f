"""The order state machine: every transition and every refusal."""
from __future__ import annotations

from datetime import timedelta

import pytest

from orders_builders import (
    COMMUNITY, GRID, OPERATOR, ORDER, OTHER_COMMUNITY, T0, accepted, ctx, dispatched, place_cmd, placed, post, run,
)
from schemas.orders import (
    AUTO, AcceptOrder, CancelOrder, CompleteOrder, DeclineOrder, DispatchOrder, EvaluateOrder, OrderAccepted,
    OrderCancelled, OrderCompleted, OrderDeclined, OrderDispatched, OrderEvaluated, OrderPlaced, OrderRated, RateOrder,
)
from services.orders.domain import OrderState, OrderStatus, Rejected, decide, evolve_all


def refusal(state, command, c=None) -> Rejected:
    with pytest.raises(Rejected) as info:
        decide(state, command, c or ctx())
    return info.value


# --- 点单 place --------------------------------------------------------------------------


def test_placing_an_order_derives_community_and_street_from_the_grid():
    state, events = run(None, place_cmd(source_case_id="case-9"))
    (e,) = events
    assert isinstance(e, OrderPlaced)
    assert (e.community_id, e.street_id, e.grid_id) == (COMMUNITY, "110105001", GRID)
    assert e.source_case_id == "case-9" and e.at == T0
    assert state.status is OrderStatus.PLACED and state.awaiting_dispatch and state.is_open


def test_placing_the_same_order_twice_places_it_once():
    state = placed()
    assert decide(state, place_cmd(), ctx(1)) == []


def test_placing_a_different_order_under_a_taken_id_is_refused():
    assert refusal(placed(), place_cmd(category="repair")).reason == "order_exists"


def test_a_community_id_that_does_not_contain_the_grid_is_refused():
    r = refusal(None, place_cmd(community_id=OTHER_COMMUNITY))
    assert (r.reason, r.field) == ("community_mismatch", "community_id")


def test_a_matching_community_id_is_accepted():
    assert decide(None, place_cmd(community_id=COMMUNITY), ctx())


def test_commands_on_an_order_that_does_not_exist_are_refused_as_unknown_order():
    r = refusal(None, AcceptOrder(order_id=ORDER, assignee_id="m1"))
    assert (r.reason, r.field) == ("unknown_order", "order_id")


# --- 派单 dispatch -----------------------------------------------------------------------


def test_manual_dispatch_gives_the_order_to_the_named_member_with_a_deadline():
    state, (e,) = run(placed(), DispatchOrder(order_id=ORDER, assignee_id="m1", dispatched_by=OPERATOR),
                      ctx(2, candidates=(post("m1"), post("m2")), accept_window=timedelta(hours=4)))
    assert isinstance(e, OrderDispatched)
    assert (e.assignee_id, e.dispatched_by, e.post_id, e.attempt) == ("m1", OPERATOR, "post-m1", 1)
    assert e.accept_by == T0 + timedelta(minutes=2, hours=4)
    assert state.status is OrderStatus.DISPATCHED and state.holder == "m1"


def test_a_dispatch_may_set_its_own_accept_by():
    deadline = T0 + timedelta(hours=2)
    _, (e,) = run(placed(), DispatchOrder(order_id=ORDER, assignee_id="m1", dispatched_by=OPERATOR, accept_by=deadline),
                  ctx(candidates=(post("m1"),)))
    assert e.accept_by == deadline


def test_a_dispatch_whose_accept_by_has_passed_is_refused():
    cmd = DispatchOrder(order_id=ORDER, assignee_id="m1", dispatched_by=OPERATOR, accept_by=T0)
    r = refusal(placed(), cmd, ctx(candidates=(post("m1"),)))
    assert (r.reason, r.field) == ("accept_by_in_past", "accept_by")


def test_automatic_dispatch_is_marked_auto():
    _, (e,) = run(placed(), DispatchOrder(order_id=ORDER), ctx(candidates=(post("m1"),)))
    assert (e.assignee_id, e.dispatched_by) == ("m1", AUTO)


def test_automatic_dispatch_with_nobody_eligible_is_refused_and_the_order_waits():
    r = refusal(placed(), DispatchOrder(order_id=ORDER), ctx(candidates=(post("m1", "repair"),)))
    assert r.reason == "no_eligible_assignee"


def test_manual_dispatch_to_a_member_without_a_matching_post_is_refused():
    for candidates in [(), (post("m1", "repair"),), (post("m1", community=OTHER_COMMUNITY),)]:
        cmd = DispatchOrder(order_id=ORDER, assignee_id="m1", dispatched_by=OPERATOR)
        r = refusal(placed(), cmd, ctx(candidates=candidates))
        assert (r.reason, r.field) == ("assignee_not_eligible", "assignee_id")


def test_a_manual_dispatch_is_by_a_person_whom_the_token_names_when_the_body_does_not():
    assert DispatchOrder(order_id=ORDER, assignee_id="m1").dispatched_by is None  # filled by the policy
    with pytest.raises(ValueError):
        DispatchOrder(order_id=ORDER, assignee_id="m1", dispatched_by="auto")


def test_an_operator_may_dispatch_again_to_a_member_who_declined():
    state, _ = run(dispatched("m1"), DeclineOrder(order_id=ORDER, assignee_id="m1", reason="busy"))
    state, (e,) = run(state, DispatchOrder(order_id=ORDER, assignee_id="m1", dispatched_by=OPERATOR),
                      ctx(candidates=(post("m1"),)))
    assert e.assignee_id == "m1" and e.attempt == 2


def test_an_order_already_dispatched_cannot_be_dispatched_again_until_declined_or_expired():
    r = refusal(dispatched(), DispatchOrder(order_id=ORDER), ctx(candidates=(post("m2"),)))
    assert r.reason == "illegal_transition" and "dispatch" in r.detail and "dispatched" in r.detail


# --- 接单 accept / decline --------------------------------------------------------------


def test_the_assignee_accepts_the_order():
    state, (e,) = run(dispatched("m1"), AcceptOrder(order_id=ORDER, assignee_id="m1"), ctx(10))
    assert isinstance(e, OrderAccepted) and e.attempt == 1
    assert state.status is OrderStatus.ACCEPTED and state.accepted_at == T0 + timedelta(minutes=10)


def test_only_the_assignee_can_accept():
    r = refusal(dispatched("m1"), AcceptOrder(order_id=ORDER, assignee_id="m2"))
    assert (r.reason, r.field) == ("not_assignee", "assignee_id")


def test_accepting_after_accept_by_is_refused():
    state = dispatched("m1")
    late = ctx((state.accept_by - T0).total_seconds() / 60 + 1)
    assert refusal(state, AcceptOrder(order_id=ORDER, assignee_id="m1"), late).reason == "accept_window_closed"


def test_accepting_exactly_at_accept_by_is_allowed():
    state = dispatched("m1")
    at_deadline = ctx((state.accept_by - T0).total_seconds() / 60)
    assert decide(state, AcceptOrder(order_id=ORDER, assignee_id="m1"), at_deadline)


def test_the_assignee_declines_and_the_order_waits_for_someone_else():
    state, (e,) = run(dispatched("m1"), DeclineOrder(order_id=ORDER, assignee_id="m1", reason="出差"))
    assert isinstance(e, OrderDeclined) and e.reason == "出差"
    assert state.status is OrderStatus.DECLINED and state.awaiting_dispatch
    assert state.declined_by == ("m1",) and state.assignee_id is None and state.holder is None


def test_only_the_assignee_can_decline():
    assert refusal(dispatched("m1"), DeclineOrder(order_id=ORDER, assignee_id="m2", reason="x")).reason == "not_assignee"


def test_a_decline_is_followed_by_an_automatic_dispatch_when_the_app_asks_for_it():
    c = ctx(candidates=(post("m1"), post("m2")), auto_dispatch=True)
    state, events = run(dispatched("m1"), DeclineOrder(order_id=ORDER, assignee_id="m1", reason="x"), c)
    assert [type(e) for e in events] == [OrderDeclined, OrderDispatched]
    assert events[1].assignee_id == "m2" and events[1].dispatched_by == AUTO and events[1].attempt == 2
    assert state.status is OrderStatus.DISPATCHED and state.assignee_id == "m2"


def test_placing_with_auto_dispatch_dispatches_at_once():
    state, events = run(None, place_cmd(), ctx(candidates=(post("m1"),), auto_dispatch=True))
    assert [type(e) for e in events] == [OrderPlaced, OrderDispatched]
    assert state.status is OrderStatus.DISPATCHED


def test_placing_with_auto_dispatch_and_nobody_eligible_just_places():
    state, events = run(None, place_cmd(), ctx(candidates=(), auto_dispatch=True))
    assert [type(e) for e in events] == [OrderPlaced] and state.status is OrderStatus.PLACED


@pytest.mark.parametrize("command", [
    AcceptOrder(order_id=ORDER, assignee_id="m1"),
    DeclineOrder(order_id=ORDER, assignee_id="m1", reason="x"),
])
def test_accept_and_decline_need_a_dispatched_order(command):
    for state in (placed(), accepted("m1")):
        assert refusal(state, command).reason == "illegal_transition"


# --- complete -----------------------------------------------------------------------------


def test_the_assignee_completes_an_accepted_order_with_service_minutes():
    state, (e,) = run(accepted("m1"), CompleteOrder(order_id=ORDER, assignee_id="m1", service_minutes=90), ctx(60))
    assert isinstance(e, OrderCompleted) and e.service_minutes == 90
    assert state.status is OrderStatus.COMPLETED and state.service_minutes == 90 and not state.is_open


def test_an_order_not_yet_accepted_cannot_be_completed():
    r = refusal(dispatched("m1"), CompleteOrder(order_id=ORDER, assignee_id="m1", service_minutes=30))
    assert r.reason == "illegal_transition"


def test_only_the_assignee_can_complete():
    r = refusal(accepted("m1"), CompleteOrder(order_id=ORDER, assignee_id="m2", service_minutes=30))
    assert r.reason == "not_assignee"


def test_service_minutes_must_be_positive():
    with pytest.raises(ValueError):
        CompleteOrder(order_id=ORDER, assignee_id="m1", service_minutes=0)


# --- 考单 evaluate ------------------------------------------------------------------------


def completed() -> OrderState:
    return run(accepted("m1"), CompleteOrder(order_id=ORDER, assignee_id="m1", service_minutes=90))[0]


def test_evaluation_records_rating_and_pass_and_carries_what_points_and_assessment_need():
    state, (e,) = run(completed(), EvaluateOrder(order_id=ORDER, rating=4, passed=True, evaluator_id=OPERATOR))
    assert isinstance(e, OrderEvaluated)
    assert (e.assignee_id, e.rating, e.passed, e.evaluator_id) == ("m1", 4, True, OPERATOR)
    assert (e.community_id, e.category.value, e.service_minutes) == (COMMUNITY, "daily_care", 90)
    assert state.status is OrderStatus.EVALUATED and state.passed is True and state.rating == 4


def test_an_order_not_completed_cannot_be_evaluated():
    r = refusal(accepted("m1"), EvaluateOrder(order_id=ORDER, rating=5, passed=True, evaluator_id=OPERATOR))
    assert r.reason == "illegal_transition"


def test_an_order_is_evaluated_only_once():
    state = run(completed(), EvaluateOrder(order_id=ORDER, rating=4, passed=True, evaluator_id=OPERATOR))[0]
    r = refusal(state, EvaluateOrder(order_id=ORDER, rating=1, passed=False, evaluator_id=OPERATOR))
    assert r.reason == "illegal_transition"


def test_the_assignee_cannot_evaluate_their_own_service():
    r = refusal(completed(), EvaluateOrder(order_id=ORDER, rating=5, passed=True, evaluator_id="m1"))
    assert (r.reason, r.field) == ("self_evaluation", "evaluator_id")


@pytest.mark.parametrize("rating", [0, 6])
def test_a_rating_outside_one_to_five_is_malformed(rating):
    with pytest.raises(ValueError):
        EvaluateOrder(order_id=ORDER, rating=rating, passed=True, evaluator_id=OPERATOR)
    with pytest.raises(ValueError):
        RateOrder(order_id=ORDER, rating=rating, resident_id="resident-1")


def test_a_kaodan_without_rating_carries_the_residents():
    rated = run(completed(), RateOrder(order_id=ORDER, resident_id="resident-1", rating=3, comment="还行"))[0]
    state, (e,) = run(rated, EvaluateOrder(order_id=ORDER, passed=True, evaluator_id=OPERATOR))
    assert isinstance(e, OrderEvaluated) and (e.rating, e.passed, e.evaluator_id) == (3, True, OPERATOR)
    assert (state.rating, state.resident_rating, state.status) == (3, 3, OrderStatus.EVALUATED)


def test_a_kaodan_with_its_own_rating_keeps_it_beside_the_residents():
    rated = run(completed(), RateOrder(order_id=ORDER, resident_id="resident-1", rating=2))[0]
    state, (e,) = run(rated, EvaluateOrder(order_id=ORDER, rating=4, passed=False, evaluator_id=OPERATOR))
    assert (e.rating, state.rating, state.resident_rating) == (4, 4, 2)


def test_a_kaodan_without_any_rating_is_refused():
    r = refusal(completed(), EvaluateOrder(order_id=ORDER, passed=True, evaluator_id=OPERATOR))
    assert (r.reason, r.field) == ("rating_required", "rating")


# --- the resident's rating (评价) ----------------------------------------------------------


def test_the_resident_rates_a_completed_order_without_closing_it():
    state, (e,) = run(completed(), RateOrder(order_id=ORDER, resident_id="resident-1", rating=5, comment="很好"),
                      ctx(100))
    assert isinstance(e, OrderRated)
    assert (e.order_id, e.resident_id, e.rating, e.comment, e.occurred_at) == (
        ORDER, "resident-1", 5, "很好", T0 + timedelta(minutes=100))
    assert state.status is OrderStatus.COMPLETED and state.passed is None and state.rating is None
    assert (state.resident_rating, state.resident_comment, state.rated_at) == (5, "很好", e.occurred_at)


def test_a_rating_earns_nothing_only_the_kaodan_passes_an_order():
    _, events = run(completed(), RateOrder(order_id=ORDER, resident_id="resident-1", rating=5))
    assert not any(isinstance(e, OrderEvaluated) for e in events)


def test_the_resident_may_rate_after_the_kaodan_too():
    evaluated = run(completed(), EvaluateOrder(order_id=ORDER, rating=4, passed=True, evaluator_id=OPERATOR))[0]
    state, (e,) = run(evaluated, RateOrder(order_id=ORDER, resident_id="resident-1", rating=2))
    assert isinstance(e, OrderRated)
    assert (state.status, state.rating, state.passed, state.resident_rating) == (OrderStatus.EVALUATED, 4, True, 2)


def test_a_rating_is_given_once_the_same_again_is_a_no_op_and_another_refused():
    rate = RateOrder(order_id=ORDER, resident_id="resident-1", rating=4, comment="好")
    state = run(completed(), rate)[0]
    assert decide(state, rate, ctx(5)) == []
    r = refusal(state, rate.model_copy(update={"rating": 1}))
    assert (r.reason, r.field) == ("already_rated", "rating")
    assert refusal(state, rate.model_copy(update={"comment": "其实不好"})).reason == "already_rated"


@pytest.mark.parametrize("make", [placed, dispatched, accepted])
def test_an_order_not_completed_cannot_be_rated(make):
    r = refusal(make(), RateOrder(order_id=ORDER, resident_id="resident-1", rating=5))
    assert r.reason == "illegal_transition"


def test_a_cancelled_order_cannot_be_rated():
    cancelled = run(placed(), CancelOrder(order_id=ORDER, reason="x"))[0]
    assert refusal(cancelled, RateOrder(order_id=ORDER, resident_id="resident-1", rating=5)).reason == "illegal_transition"


@pytest.mark.parametrize("make", [placed, completed])
def test_only_the_resident_who_placed_the_order_rates_it_others_find_no_such_order(make):
    unknown = refusal(None, RateOrder(order_id=ORDER, resident_id="resident-2", rating=5))
    r = refusal(make(), RateOrder(order_id=ORDER, resident_id="resident-2", rating=5))
    assert (r.reason, r.field, r.detail) == (unknown.reason, unknown.field, unknown.detail) == (
        "unknown_order", "order_id", unknown.detail)


def test_the_member_who_served_cannot_rate_as_the_resident():
    assert refusal(completed(), RateOrder(order_id=ORDER, resident_id="m1", rating=5)).reason == "unknown_order"


def test_a_rating_applied_twice_keeps_the_first():
    e = OrderRated(order_id=ORDER, resident_id="resident-1", rating=5)
    state = evolve_all(completed(), [e, e.model_copy(update={"rating": 1})])
    assert state.resident_rating == 5


# --- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize("make, holder", [(placed, None), (dispatched, "m1"), (accepted, "m1")])
def test_an_order_can_be_cancelled_before_completion(make, holder):
    state, (e,) = run(make(), CancelOrder(order_id=ORDER, reason="家属已照料", cancelled_by="resident-1"))
    assert isinstance(e, OrderCancelled) and e.assignee_id == holder
    assert state.status is OrderStatus.CANCELLED and not state.is_open and state.holder is None


def test_a_completed_or_cancelled_order_cannot_be_cancelled():
    cancelled = run(placed(), CancelOrder(order_id=ORDER, reason="x"))[0]
    for state in (completed(), cancelled):
        assert refusal(state, CancelOrder(order_id=ORDER, reason="y")).reason == "illegal_transition"


def test_a_cancelled_order_refuses_every_further_step():
    state = run(dispatched("m1"), CancelOrder(order_id=ORDER, reason="x"))[0]
    for cmd in (AcceptOrder(order_id=ORDER, assignee_id="m1"), DispatchOrder(order_id=ORDER),
                CompleteOrder(order_id=ORDER, assignee_id="m1", service_minutes=5)):
        assert refusal(state, cmd, ctx(candidates=(post("m1"),))).reason == "illegal_transition"


# --- the whole story and storage --------------------------------------------------------


def test_the_full_story_round_trips_through_json_at_every_step():
    story = [
        (place_cmd(), ctx()),
        (DispatchOrder(order_id=ORDER), ctx(1, candidates=(post("m1"), post("m2", open_orders=1)))),
        (DeclineOrder(order_id=ORDER, assignee_id="m1", reason="busy"), ctx(2)),
        (DispatchOrder(order_id=ORDER), ctx(3, candidates=(post("m1"), post("m2", open_orders=1)))),
        (AcceptOrder(order_id=ORDER, assignee_id="m2"), ctx(4)),
        (CompleteOrder(order_id=ORDER, assignee_id="m2", service_minutes=45), ctx(50)),
        (RateOrder(order_id=ORDER, resident_id="resident-1", rating=5), ctx(55)),
        (EvaluateOrder(order_id=ORDER, passed=True, evaluator_id=OPERATOR), ctx(60)),
    ]
    state = None
    for command, c in story:
        state = evolve_all(state, decide(state, command, c))
        assert OrderState.model_validate(state.model_dump(mode="json")) == state
    assert state.status is OrderStatus.EVALUATED and state.assignee_id == "m2" and state.attempt == 2
    assert state.rating == state.resident_rating == 5
    assert state.first_dispatched_at == T0 + timedelta(minutes=1)
