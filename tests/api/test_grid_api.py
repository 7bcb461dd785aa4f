"""The grid service's HTTP API keeps its OpenAPI document (schemathesis on a live worker)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.grid.support import FAST_POLICY, GRID, cmd, new_id, report, sender_jwt
from tests.support.procs import http

from . import support

pytestmark = pytest.mark.integration

schema = support.load("grid")
CASE, PATROL = new_id("fuzz"), new_id("patrol")


@pytest.fixture(scope="module")
async def worker(module_kafka, module_database_url, tmp_path_factory):
    w = support.start("grid", module_kafka, module_database_url, tmp_path_factory.mktemp("grid-api"),
                      GRID_POLICY_PATH=str(FAST_POLICY))
    try:
        await w.wait_ready()
        now = datetime.now(timezone.utc)
        for c in (report(CASE, category="public_facility"), report(new_id("fuzz"), category="dispute.neighbour"),
                  report(new_id("fuzz"), category="environment"),
                  cmd("case.register", case_id=CASE, department="110105001.zhzf", registrar_id="clerk-1"),
                  cmd("patrol.log", patrol_id=PATROL, grid_id=GRID, grid_worker_id="gw-1",
                      started_at=(now - timedelta(hours=1)).isoformat(), ended_at=now.isoformat())):
            status, body = await http("POST", w.url + "/v1/commands", json=c, token=sender_jwt(c))
            assert status == 200, (c["type"], status, body)
        yield w
    finally:
        support.stop(w)


async def test_the_served_document_is_the_committed_one(worker):
    assert await support.served_document(worker) == support.committed_document("grid")


def test_the_seeded_records_are_answered_as_documented(worker):
    for template, path in (("/v1/cases/{case_id}", f"/v1/cases/{CASE}"), ("/v1/cases", f"/v1/cases?grid_id={GRID}"),
                           ("/v1/grids/{grid_id}/counts", f"/v1/grids/{GRID}/counts"),
                           ("/v1/patrols", "/v1/patrols?grid_worker_id=gw-1"),
                           ("/open311/v2/requests.json", "/open311/v2/requests.json"),
                           ("/open311/v2/requests/{request_id}.json", f"/open311/v2/requests/{CASE}.json"),
                           ("/open311/v2/services.json", "/open311/v2/services.json")):
        assert support.validate(schema, worker, "GET", template, path).status_code == 200, path


@schema.parametrize()
@support.hypothesis_settings()
def test_every_answer_is_one_the_document_declares(case, worker):
    support.call(case, worker)
