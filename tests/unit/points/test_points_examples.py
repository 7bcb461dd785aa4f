"""Every points command and event has an example payload, and each one validates."""
import json
from pathlib import Path

import pytest

from schemas import points
from schemas.registry import model_for

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
TYPES = sorted(m.TYPE for m in (*points.COMMANDS, *points.EVENTS))


@pytest.mark.parametrize("message_type", TYPES)
def test_every_points_type_has_an_example(message_type):
    assert (EXAMPLES / f"{message_type}.json").is_file()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("points.*.json")), ids=lambda p: p.name)
def test_each_points_example_validates_and_round_trips(path):
    message_type = path.name.removesuffix(".json")
    model = model_for(message_type)
    assert model is not None, f"no model for {message_type}"
    payload = model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    assert model.model_validate(payload.model_dump(mode="json")) == payload
    assert payload.aggregate_id not in ("", "None")


def test_transfer_posted_kind_and_reason_always_agree():
    data = json.loads((EXAMPLES / "points.transfer.posted.v1.json").read_text(encoding="utf-8"))
    del data["kind"]
    assert points.TransferPosted.model_validate(data).kind == "award"
    with pytest.raises(ValueError):
        points.TransferPosted.model_validate({**data, "kind": "expiry"})


def test_transfer_events_are_keyed_by_an_account():
    refused = points.TransferRefused(transfer_id="t", reason="cap_reached", debit_account="issuer:1",
                                     credit_account="resident:r", account_id="resident:r")
    assert refused.aggregate_id == "resident:r"
    assert points.TransferRefused(transfer_id="t", reason="x").aggregate_id == "t"
