"""An issuer's holder is a community id in digits 0-9: other scripts' digits are refused."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas.points import AccountKind, OpenAccount
from services.kit.errors import Rejected
from services.points.domain.accounts import decide_open_account

AT = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)


def open_issuer(holder_id: str) -> OpenAccount:
    return OpenAccount(account_id=f"issuer:{holder_id}", holder_id=holder_id, kind=AccountKind.issuer)


def test_an_issuer_of_a_community_id_opens():
    [e] = decide_open_account(None, open_issuer("110105001002"), at=AT)
    assert (e.holder_id, e.community_id) == ("110105001002", "110105001002")


@pytest.mark.parametrize("holder_id", ["١١٠١٠٥٠٠١٠٠٢", "１１０１０５００１００２", "11010500100٢", "110105001", "11010500100a"])
def test_an_issuer_of_anything_but_a_community_id_is_refused(holder_id: str):
    with pytest.raises(Rejected) as e:
        decide_open_account(None, open_issuer(holder_id), at=AT)
    assert (e.value.reason, e.value.field) == ("invalid_issuer", "holder_id")
