"""The points service's HTTP API keeps its OpenAPI document (schemathesis on a live worker)."""
from __future__ import annotations

import uuid

import pytest

from tests.support.identity import command_token, token
from tests.support.procs import http

from . import support

pytestmark = pytest.mark.integration

schema = support.load("points")
PERSON, SHOP, DEED = f"p-{uuid.uuid4().hex[:8]}", f"shop-{uuid.uuid4().hex[:8]}", f"deed-{uuid.uuid4().hex[:8]}"
COMMUNITY = "110105001002"


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    w = support.start("points", module_kafka, module_database_url, tmp_path_factory.mktemp("points-api"))
    try:
        await w.wait_ready()
        resident = f"resident:{PERSON}"
        status, consent = await http("POST", w.url + "/v1/redemption-codes", json={"amount": 3},
                                     token=token(PERSON, ["resident"]))
        assert status == 201, consent
        for type_, data in (
                ("points.account.open.v1", {"account_id": resident, "holder_id": PERSON, "kind": "resident",
                                            "community_id": COMMUNITY}),
                ("points.account.open.v1", {"account_id": f"merchant:{SHOP}", "holder_id": SHOP, "kind": "merchant"}),
                ("points.deed.submit.v1", {"deed_id": DEED, "account_id": resident, "category": "lost_property"}),
                ("points.deed.review.v1", {"deed_id": DEED, "account_id": resident, "approved": True, "points": 8,
                                           "reviewer_id": "r"}),
                ("points.redeem.v1", {"transfer_id": f"till-{DEED}", "debit_account": resident,
                                      "credit_account": f"merchant:{SHOP}", "amount": 3,
                                      "consent_code": consent["code"]})):
            body = {"id": str(uuid.uuid4()), "type": type_, "data": data}  # each as the sender the policy names
            status, answer = await http("POST", w.url + "/v1/commands", json=body, token=command_token(body))
            assert status == 200, (type_, status, answer)
        yield w
    finally:
        support.stop(w)


async def test_the_served_document_is_the_committed_one(worker):
    assert await support.served_document(worker) == support.committed_document("points")


def test_the_seeded_records_are_answered_as_documented(worker):
    for template, path in (("/v1/accounts/{account_id}", f"/v1/accounts/resident:{PERSON}"),
                           ("/v1/accounts/{account_id}/statement", f"/v1/accounts/resident:{PERSON}/statement"),
                           ("/v1/deeds/{deed_id}", f"/v1/deeds/{DEED}"),
                           ("/v1/rankings", f"/v1/rankings?scope=community&community_id={COMMUNITY}"),
                           ("/v1/merchants/{account_id}/redemptions", f"/v1/merchants/merchant:{SHOP}/redemptions"),
                           ("/v1/ledger/check", "/v1/ledger/check")):
        assert support.validate(schema, worker, "GET", template, path).status_code == 200, path


@schema.parametrize()
@support.hypothesis_settings()
def test_every_answer_is_one_the_document_declares(case, worker):
    support.call(case, worker)
