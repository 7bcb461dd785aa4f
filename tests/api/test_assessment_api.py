"""The assessment service's HTTP API keeps its OpenAPI document (schemathesis on a live worker)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from tests.support.identity import command_token
from tests.support.procs import http

from . import support

pytestmark = pytest.mark.integration

schema = support.load("assessment")
COMMUNITY, UNIT = "110105001002", "unit-fuzz"


def _last_month() -> str:
    now = datetime.now(timezone.utc)
    return f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"


PERIOD = _last_month()


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    w = support.start("assessment", module_kafka, module_database_url, tmp_path_factory.mktemp("assessment-api"),
                      ASSESSMENT_CLOSE_TIMER="false")
    try:
        await w.wait_ready()
        review = {"id": str(uuid.uuid4()), "type": "assessment.review.record.v1",  # by a community officer
                  "data": {"review_id": "rv-fuzz", "reviewer_id": COMMUNITY, "subject_type": "unit",
                           "subject_id": UNIT, "period": PERIOD, "score": 88}}
        status, body = await http("POST", w.url + "/v1/commands", token=command_token(review), json=review)
        assert status == 200, body
        await support.command(w, "assessment.period.close.v1", period=PERIOD)
        yield w
    finally:
        support.stop(w)


async def test_the_served_document_is_the_committed_one(worker):
    assert await support.served_document(worker) == support.committed_document("assessment")


def test_the_seeded_records_are_answered_as_documented(worker):
    for template, path in (("/v1/scorecards/{entity_type}/{entity_id}", f"/v1/scorecards/unit/{UNIT}?period={PERIOD}"),
                           ("/v1/rankings", f"/v1/rankings?entity_type=unit&period={PERIOD}"),
                           ("/v1/alerts", f"/v1/alerts?period={PERIOD}"),
                           ("/v1/schemes/current", "/v1/schemes/current")):
        assert support.validate(schema, worker, "GET", template, path).status_code == 200, path


@schema.parametrize()
@support.hypothesis_settings()
def test_every_answer_is_one_the_document_declares(case, worker):
    support.call(case, worker)
