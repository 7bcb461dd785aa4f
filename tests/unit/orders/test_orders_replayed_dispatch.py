"""A dispatch replayed by a rebuild goes to the post the worker gave the order to (and nowhere
when it gave it to nobody): the worker weighed loads the expiry timer had changed, which a
replay does not see. Live, the candidates are as found."""
from __future__ import annotations

from datetime import datetime, timezone

from orders_builders import ORDER, place_cmd, post
from schemas.envelope import Message, envelope_for
from services.kit.rebuild import _ReplayUnitOfWork
from services.kit.uow import UnitOfWork
from services.orders.app.handler import _as_the_worker_chose

NOW = datetime(2026, 11, 22, 8, tzinfo=timezone.utc)
DISPATCHED = "orders.order.dispatched.v1"


def replaying(live: dict[tuple[str, str], list[dict]], types=(DISPATCHED, "orders.order.placed.v1")) -> UnitOfWork:
    cmd = place_cmd()
    uow = _ReplayUnitOfWork(None, "orders", {}, {("c-1", t): [f"e-{t}"] for t in types}, NOW, live)
    uow.message = Message(envelope_for(cmd, source="/tests", id="c-1"), cmd)
    return uow


def test_replayed_the_order_goes_to_the_post_the_worker_chose_as_if_it_had_room():
    found = (post("a", open_orders=0), post("b", open_orders=3, capacity=3))  # the replay's loads: a is freer
    uow = replaying({("c-1", DISPATCHED): [{"order_id": ORDER, "post_id": "post-b", "assignee_id": "b"},
                                           {"order_id": "another", "post_id": "post-a", "assignee_id": "a"}]})
    assert _as_the_worker_chose(uow, ORDER, found) == (post("b", open_orders=0, capacity=3),)


def test_replayed_an_order_the_worker_gave_nobody_goes_to_nobody():
    uow = replaying({}, types=("orders.order.placed.v1",))  # placed, not dispatched
    assert _as_the_worker_chose(uow, ORDER, (post("a"),)) == ()


def test_live_or_without_knowledge_of_the_message_the_candidates_are_as_found():
    found = (post("a"), post("b"))
    live = UnitOfWork(None, "orders", NOW)
    live.message = replaying({}).message
    assert _as_the_worker_chose(live, ORDER, found) == found
    unknown = replaying({}, types=())  # the rebuild found nothing the message caused
    assert _as_the_worker_chose(unknown, ORDER, found) == found
