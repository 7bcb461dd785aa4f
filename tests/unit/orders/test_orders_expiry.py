"""Dispatches not accepted by accept_by expire exactly once and can be re-dispatched."""
from __future__ import annotations

from datetime import timedelta

import pytest

from orders_builders import ORDER, T0, accepted, ctx, dispatched, placed, post, run
from schemas.orders import AUTO, AcceptOrder, DeclineOrder, DispatchOrder, OrderDispatchExpired, OrderDispatched
from services.orders.domain import OrderStatus, Rejected, check_expiry, decide, evolve_all, evolve_order


def test_a_dispatch_past_accept_by_expires():
    state = dispatched("m1")
    (e,) = check_expiry(state, state.accept_by + timedelta(seconds=1))
    assert isinstance(e, OrderDispatchExpired)
    assert (e.assignee_id, e.accept_by, e.attempt) == ("m1", state.accept_by, 1)
    after = evolve_order(state, e)
    assert after.status is OrderStatus.DISPATCH_EXPIRED and after.awaiting_dispatch and after.expired_for == ("m1",)


def test_nothing_expires_before_or_at_accept_by():
    state = dispatched("m1")
    assert check_expiry(state, T0) == []
    assert check_expiry(state, state.accept_by) == []


def test_the_expiry_is_yielded_once():
    state = dispatched("m1")
    late = state.accept_by + timedelta(hours=1)
    after = evolve_all(state, check_expiry(state, late))
    assert check_expiry(after, late) == []
    assert check_expiry(after, late + timedelta(days=3)) == []


def test_the_same_expiry_applied_twice_changes_nothing_the_second_time():
    state = dispatched("m1")
    events = check_expiry(state, state.accept_by + timedelta(minutes=1))
    once = evolve_all(state, events)
    assert evolve_all(once, events) == once


def test_an_expiry_of_an_earlier_dispatch_does_not_touch_the_current_one():
    first = dispatched("m1")
    (stale,) = check_expiry(first, first.accept_by + timedelta(minutes=1))
    state = evolve_order(first, stale)
    state = evolve_all(state, decide(state, DispatchOrder(order_id=ORDER), ctx(candidates=(post("m1"), post("m2")))))
    assert state.assignee_id == "m2" and state.attempt == 2
    assert evolve_order(state, stale) == state


def test_accepted_and_waiting_orders_never_expire():
    for state in (accepted("m1"), placed(), None):
        assert check_expiry(state, T0 + timedelta(days=30)) == []


def test_an_accept_arriving_after_the_expiry_is_refused():
    state = dispatched("m1")
    late = state.accept_by + timedelta(minutes=1)
    state = evolve_all(state, check_expiry(state, late))
    with pytest.raises(Rejected) as info:
        decide(state, AcceptOrder(order_id=ORDER, assignee_id="m1"), ctx(candidates=()))
    assert info.value.reason == "illegal_transition"


def test_an_expiry_is_followed_by_an_automatic_re_dispatch_when_the_app_asks_for_it():
    state = dispatched("m1")
    late = state.accept_by + timedelta(minutes=1)
    c = ctx(candidates=(post("m1"), post("m2", open_orders=2)), auto_dispatch=True).model_copy(update={"now": late})
    events = check_expiry(state, late, c)
    assert [type(e) for e in events] == [OrderDispatchExpired, OrderDispatched]
    assert (events[1].assignee_id, events[1].dispatched_by, events[1].attempt) == ("m2", AUTO, 2)
    assert events[1].accept_by == late + c.accept_window
    after = evolve_all(state, events)
    assert after.status is OrderStatus.DISPATCHED and after.expired_for == ("m1",)
    assert check_expiry(after, late) == []


def test_an_expiry_with_nobody_else_eligible_leaves_the_order_waiting():
    state = dispatched("m1")
    late = state.accept_by + timedelta(minutes=1)
    events = check_expiry(state, late, ctx(candidates=(post("m1"),), auto_dispatch=True))
    assert [type(e) for e in events] == [OrderDispatchExpired]
    assert evolve_all(state, events).status is OrderStatus.DISPATCH_EXPIRED


def test_a_decline_and_an_expiry_lead_to_a_third_member():
    candidates = (post("a"), post("b", open_orders=1), post("c", open_orders=2))
    state, _ = run(placed(), DispatchOrder(order_id=ORDER), ctx(candidates=candidates))
    assert state.assignee_id == "a"
    state, _ = run(state, DeclineOrder(order_id=ORDER, assignee_id="a", reason="x"), ctx(1, candidates=candidates, auto_dispatch=True))
    assert state.assignee_id == "b"
    late = state.accept_by + timedelta(seconds=1)
    state = evolve_all(state, check_expiry(state, late, ctx(candidates=candidates, auto_dispatch=True)))
    assert state.assignee_id == "c" and state.attempt == 3 and state.status is OrderStatus.DISPATCHED
    assert state.skipped_members == {"a", "b"}
