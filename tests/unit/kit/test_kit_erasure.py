"""The kit's erasure helpers: the pseudonym's form, a digest that does not hold the id, the
account ids replaced with the id, and which services react to whose person.erased.v1."""
from __future__ import annotations

import re

from schemas.common import ERASED_PREFIX
from services.kit import erasure


def test_a_pseudonym_is_random_and_marked_as_erased():
    a, b = erasure.new_pseudonym(), erasure.new_pseudonym()
    assert a != b and re.fullmatch(ERASED_PREFIX + "[0-9a-f]{16}", a)


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
