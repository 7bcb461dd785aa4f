"""``authenticate``: a bearer JWT verified into a Principal, or a 401 naming the reason."""
from __future__ import annotations

import pytest

from services.kit import devidentity
from services.kit.http import HttpError, authenticate, authenticate_async
from services.kit.identity import Principal, TokenVerifier
from tests.support.identity import TestIdentity


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    return TestIdentity(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def verifier(idp):
    return TokenVerifier(idp.jwks_path, issuer=idp.issuer, audience=idp.audience)


def reason_of(verifier, headers) -> str:
    with pytest.raises(HttpError) as e:
        authenticate(headers, verifier)
    assert e.value.status == 401 and e.value.error == "unauthorized"
    assert set(e.value.body()) == {"error", "detail"}
    return e.value.detail.split(":", 1)[0]


def test_a_valid_bearer_token_gives_its_principal(idp, verifier):
    tok = idp.token("gw-1", ["grid_worker"], {"grids": ["110105001002003"]})
    for header in (f"Bearer {tok}", f"bearer {tok}", f"  Bearer   {tok} "):
        p = authenticate({"Authorization": header}, verifier)
        assert isinstance(p, Principal) and p.sub == "gw-1" and p.roles == {"grid_worker"}
        assert p.scope.covers("110105001002003")
    assert authenticate({"authorization": f"Bearer {tok}"}, verifier).sub == "gw-1"


def test_no_or_another_scheme_of_token_is_missing_token(verifier):
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer   "},
                    {"Authorization": "Basic dXNlcjpwdw=="}):
        assert reason_of(verifier, headers) == "missing_token", headers


def test_invalid_tokens_are_refused_naming_the_reason(idp, verifier):
    other = devidentity.generate_key()
    cases = {
        "malformed": "not-a-jwt",
        "unknown_key": idp.token(key=other),
        "bad_signature": idp.token(key=other, kid=idp.kid),
        "expired": idp.token(lifetime=-300),
        "wrong_issuer": idp.token(iss="https://elsewhere.invalid"),
        "wrong_audience": idp.token(aud="someone-else"),
        "bad_claims": idp.token(roles=["emperor"]),
    }
    for reason, tok in cases.items():
        assert reason_of(verifier, {"Authorization": f"Bearer {tok}"}) == reason, reason


def test_the_expired_answer_says_so(idp, verifier):
    with pytest.raises(HttpError) as e:
        authenticate({"Authorization": f"Bearer {idp.token(lifetime=-300)}"}, verifier)
    assert e.value.body() == {"error": "unauthorized", "detail": "expired: the token has expired"}


async def test_the_async_form_verifies_in_a_thread_or_inline(idp, verifier):
    tok = idp.token("officer-1", ["community_officer"])
    for in_thread in (True, False):
        assert (await authenticate_async({"Authorization": f"Bearer {tok}"}, verifier, in_thread=in_thread)).sub == "officer-1"
        with pytest.raises(HttpError) as e:
            await authenticate_async({}, verifier, in_thread=in_thread)
        assert e.value.status == 401
