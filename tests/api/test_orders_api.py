"""The orders service's HTTP API keeps its OpenAPI document (schemathesis on a live worker)."""
from __future__ import annotations

import pytest

import uuid

from schemas.orders import AcceptOrder, ClaimPost, CompleteOrder, PlaceOrder, RateOrder, RegisterMember
from tests.integration.orders.support import COMMUNITY, uid
from tests.support.identity import command_token
from tests.support.procs import http

from . import support

pytestmark = pytest.mark.integration

schema = support.load("orders")
MEMBER, ORDER, RATED = uid("m"), uid("o"), uid("o")


async def seed(worker, *payloads) -> None:
    """POST commands, each with its sender's token (the policy's role, the actor it names)."""
    for p in payloads:
        body = {"id": str(uuid.uuid4()), "type": p.TYPE, "data": p.model_dump(mode="json", exclude_none=True)}
        status, answer = await http("POST", worker.url + "/v1/commands", token=command_token(body), json=body)
        assert status == 200, (p.TYPE, status, answer)


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    w = support.start("orders", module_kafka, module_database_url, tmp_path_factory.mktemp("orders-api"))
    try:
        await w.wait_ready()
        await seed(
            w, RegisterMember(member_id=MEMBER, community_id=COMMUNITY, unit_id="unit-9", name="张三"),
            ClaimPost(member_id=MEMBER, post_id=uid("post"), community_id=COMMUNITY, categories=["medical"], capacity=3),
            PlaceOrder(order_id=ORDER, resident_id="resident-5", grid_id=COMMUNITY + "002", category="medical",
                       description="陪同就医"),
            # a second order served and rated by its resident (the rating is in the documented answer)
            PlaceOrder(order_id=RATED, resident_id="resident-6", grid_id=COMMUNITY + "002", category="medical",
                       description="上门量血压"),
            AcceptOrder(order_id=RATED, assignee_id=MEMBER),
            CompleteOrder(order_id=RATED, assignee_id=MEMBER, service_minutes=30),
            RateOrder(order_id=RATED, resident_id="resident-6", rating=4, comment="耐心"))
        yield w
    finally:
        support.stop(w)


async def test_the_served_document_is_the_committed_one(worker):
    assert await support.served_document(worker) == support.committed_document("orders")


def test_the_seeded_records_are_answered_as_documented(worker):
    for template, path in (("/v1/orders/{order_id}", f"/v1/orders/{ORDER}"),
                           ("/v1/orders/{order_id}", f"/v1/orders/{RATED}"),
                           ("/v1/orders", f"/v1/orders?community_id={COMMUNITY}"),
                           ("/v1/members/{member_id}", f"/v1/members/{MEMBER}"),
                           ("/v1/communities/{community_id}/needs", f"/v1/communities/{COMMUNITY}/needs"),
                           ("/v1/communities/{community_id}/resources", f"/v1/communities/{COMMUNITY}/resources")):
        assert support.validate(schema, worker, "GET", template, path).status_code == 200, path


@schema.parametrize()
@support.hypothesis_settings()
def test_every_answer_is_one_the_document_declares(case, worker):
    support.call(case, worker)
