"""The kit's erasure helpers: the pseudonym's form (the same for a command handled again), a
digest that does not hold the id, the account ids replaced with the id, and which services react
to whose person.erased.v1."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from schemas.common import ERASED_PREFIX
from schemas.envelope import Message, envelope_for
from schemas.grid import ErasePerson
from services.kit import erasure
from services.kit.uow import UnitOfWork


def test_a_pseudonym_is_random_and_marked_as_erased():
    a, b = erasure.new_pseudonym(), erasure.new_pseudonym()
    assert a != b and re.fullmatch(ERASED_PREFIX + "[0-9a-f]{16}", a)


def _erasing(service: str, command_id: str, person_id: str = "res-0042") -> UnitOfWork:
    uow = UnitOfWork(None, service, datetime(2026, 11, 23, tzinfo=timezone.utc))
    payload = ErasePerson(person_id=person_id, reason="本人申请")
    uow.message = Message(envelope_for(payload, source="/users/dpo-1", id=command_id), payload)
    return uow


def test_the_pseudonym_of_a_command_comes_again_when_the_command_is_handled_again():
    """A rebuild replays the erasure command: the person gets the pseudonym the other services
    took from the event, not a new one."""
    a = erasure.new_pseudonym(_erasing("grid", "cmd-1"))
    assert a == erasure.new_pseudonym(_erasing("grid", "cmd-1")) and re.fullmatch(ERASED_PREFIX + "[0-9a-f]{16}", a)
    assert a != erasure.new_pseudonym(_erasing("grid", "cmd-2")) != erasure.new_pseudonym(_erasing("orders", "cmd-1"))
    assert "res-0042" not in a
    assert a == erasure.new_pseudonym(_erasing("grid", "cmd-1", "res-0043"))  # the id decides nothing


def test_the_digest_recognises_a_person_without_holding_the_id():
    d = erasure.digest("res-0042")
    assert d == erasure.digest("res-0042") != erasure.digest("res-0043")
    assert "res-0042" not in d and len(d) == 64


def test_the_account_ids_that_embed_the_id_are_replaced_too():
    assert erasure.account_pairs("res-1", "erased-x") == [("resident:res-1", "resident:erased-x"),
                                                          ("merchant:res-1", "merchant:erased-x")]


def test_every_service_reacts_to_the_four_others():
    services = ("grid", "orders", "points", "assessment", "party")
    for svc in services:
        types = {c.TYPE for c in erasure.other_services_erased(svc)}
        assert types == {f"{o}.person.erased.v1" for o in services if o != svc}
