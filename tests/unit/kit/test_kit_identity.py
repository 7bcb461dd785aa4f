"""Verified identities: JWTs from the district's identity provider become principals."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.kit import devidentity, identity
from services.kit.devidentity import claims_for, generate_key, mint, public_jwk, write_jwks
from services.kit.identity import ROLES, Principal, Scope, TokenVerifier, Unauthenticated
from services.kit.settings import DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER, ServiceSettings

STREET = "110105001"
COMMUNITY = "110105001001"
GRID = "110105001001001"
OTHER_STREET_GRID = "110105002001001"


@pytest.fixture(scope="module")
def key():
    return generate_key()


@pytest.fixture
def jwks_file(tmp_path, key) -> Path:
    path = tmp_path / "jwks.json"
    write_jwks(path, [public_jwk(key)])
    return path


@pytest.fixture
def verifier(jwks_file) -> TokenVerifier:
    return TokenVerifier(jwks_file, issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)


def claims(**over):
    base = claims_for("grid-worker-0001", ["grid_worker"], {"grids": [GRID], "communities": [COMMUNITY]},
                      lifetime=3600)
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def refused(verifier: TokenVerifier, token, reason: str, **kw) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as e:
        verifier.verify(token, **kw)
    assert e.value.reason == reason, e.value
    return e.value


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# -- valid tokens -------------------------------------------------------------------------------------

def test_a_valid_token_is_a_principal(verifier, key):
    p = verifier.verify(mint(claims(), key))
    assert p == Principal("grid-worker-0001", frozenset({"grid_worker"}), Scope.of(grids=[GRID], communities=[COMMUNITY]))
    assert p.has("grid_worker") and not p.has("auditor")
    assert p.scope.covers(GRID) and not p.scope.covers(OTHER_STREET_GRID)


def test_from_settings_reads_the_shared_settings(jwks_file, key, monkeypatch):
    monkeypatch.setenv("JWKS", str(jwks_file))
    monkeypatch.setenv("JWT_LEEWAY_SECONDS", "5")
    s = ServiceSettings()
    v = TokenVerifier.from_settings(s)
    assert (v.issuer, v.audience, v.leeway, v.algorithms) == (DEFAULT_JWT_ISSUER, DEFAULT_JWT_AUDIENCE, 5.0,
                                                              ("RS256", "ES256"))
    assert v.verify(mint(claims(), key)).sub == "grid-worker-0001"


def test_settings_refuse_symmetric_algorithms(monkeypatch):
    monkeypatch.setenv("JWT_ALGORITHMS", "ES256,HS256")
    with pytest.raises(ValueError, match="HS256"):
        ServiceSettings()


def test_an_rs256_token_is_accepted(tmp_path):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "r1", "alg": "RS256"}
    write_jwks(tmp_path / "jwks.json", [jwk])
    v = TokenVerifier(tmp_path / "jwks.json", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    assert v.verify(mint(claims(), rsa_key, kid="r1", algorithm="RS256")).has("grid_worker")


def test_a_token_for_several_audiences_names_ours(verifier, key):
    assert verifier.verify(mint(claims(aud=["account", DEFAULT_JWT_AUDIENCE]), key)).sub


# -- refused tokens -----------------------------------------------------------------------------------

def test_wrong_signature(verifier, key):
    other = generate_key()
    refused(verifier, mint(claims(), other, kid=public_jwk(key)["kid"]), "bad_signature")
    token = mint(claims(), key)
    head, body, sig = token.split(".")
    refused(verifier, ".".join([head, b64(claims(sub="someone-else")), sig]), "bad_signature")


def test_unknown_key(verifier):
    refused(verifier, mint(claims(), generate_key()), "unknown_key")


def test_wrong_issuer_and_audience(verifier, key):
    refused(verifier, mint(claims(iss="https://elsewhere.example/realms/x"), key), "wrong_issuer")
    refused(verifier, mint(claims(aud="another-platform"), key), "wrong_audience")


def test_required_claims(verifier, key):
    for name in ("exp", "iat", "iss", "aud", "sub"):
        c = claims()
        del c[name]
        refused(verifier, mint(c, key), "missing_claim")


def test_expired_beyond_the_leeway(verifier, key):
    now = time.time()
    assert verifier.verify(mint(claims(iat=now - 100, nbf=None, exp=now - 10), key)).sub  # within 30 s
    refused(verifier, mint(claims(iat=now - 100, nbf=None, exp=now - 31), key), "expired")


def test_not_yet_valid(verifier, key):
    now = time.time()
    refused(verifier, mint(claims(nbf=now + 120, iat=now, exp=now + 3600), key), "not_yet_valid")
    refused(verifier, mint(claims(nbf=None, iat=now + 120, exp=now + 3600), key), "not_yet_valid")
    assert verifier.verify(mint(claims(nbf=now + 20, iat=now + 20, exp=now + 3600), key)).sub


def test_unknown_role(verifier, key):
    e = refused(verifier, mint(claims(roles=["grid_worker", "superuser"]), key), "bad_claims")
    assert "roles" in e.detail
    refused(verifier, mint(claims(roles="grid_worker"), key), "bad_claims")


@pytest.mark.parametrize("scope", [
    {"grids": ["11010500100100"]},                 # 14 digits
    {"communities": [GRID]},                       # a grid among the communities
    {"streets": ["１１０１０５００１"]},              # full-width digits
    {"streets": STREET},                           # not a list
    {"districts": ["110105"]},                     # no such key
    {"departments": ["civil affairs"]},            # whitespace in a department id
    "openid profile",                              # an OAuth scope string
])
def test_malformed_scope(verifier, key, scope):
    refused(verifier, mint(claims(scope=scope), key), "bad_claims")


def test_alg_none_is_refused(verifier, key):
    good = mint(claims(), key)
    kid = public_jwk(key)["kid"]
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": kid})
    refused(verifier, unsigned, "algorithm")
    refused(verifier, f"{b64({'alg': 'none', 'kid': kid})}.{good.split('.')[1]}.", "algorithm")
    refused(verifier, f"{b64({'alg': 'ES256', 'kid': kid})}.{good.split('.')[1]}.", "bad_signature")


def test_hs256_signed_with_the_public_key_is_refused(tmp_path, key):
    """The classic confusion: an HMAC "signature" keyed with the (public) JWKS key."""
    jwk = public_jwk(key)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]})
    body = b64(claims())
    for secret in (pem, json.dumps(jwk).encode()):
        sig = base64.urlsafe_b64encode(hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest())
        forged = f"{header}.{body}.{sig.rstrip(b'=').decode()}"
        v = TokenVerifier(_jwks(tmp_path, [jwk]), issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
        refused(v, forged, "algorithm")
    with pytest.raises(ValueError):
        TokenVerifier(_jwks(tmp_path, [jwk]), issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE,
                      algorithms=["ES256", "HS256"])


def test_a_token_whose_alg_is_not_its_keys_is_refused(tmp_path, key):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # the kid names the EC key; the token claims RS256
    token = mint(claims(), rsa_key, kid=public_jwk(key)["kid"], algorithm="RS256")
    v = TokenVerifier(_jwks(tmp_path, [public_jwk(key)]), issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    refused(v, token, "algorithm")


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 20_000, b"\xff.\xfe.\xfd", None,
                                   base64.urlsafe_b64encode(b"[" * 3000) + b".e30.c2ln",  # nested too deep
                                   base64.urlsafe_b64encode(b'"ES256"') + b".e30.c2ln"])  # not an object
def test_garbage_is_malformed(verifier, token):
    refused(verifier, token, "malformed")


def test_a_header_read_leniently_to_pick_the_key_is_still_checked_strictly(verifier, key):
    """The verifier reads a token's header itself to choose the key; a character outside the
    base64url alphabet, which that reading skips, still refuses the token."""
    head, rest = mint(claims(), key).split(".", 1)
    refused(verifier, f"{head[:5]}!{head[5:]}.{rest}", "malformed")


def _jwks(tmp_path: Path, keys) -> Path:
    path = tmp_path / "jwks-extra.json"
    write_jwks(path, keys)
    return path


# -- at= and the cache ----------------------------------------------------------------------------------

def test_at_checks_the_times_at_that_instant(verifier, key):
    now = time.time()
    token = mint(claims(iat=now - 7200, nbf=None, exp=now - 3600), key)
    refused(verifier, token, "expired")
    assert verifier.verify(token, at=now - 5000).sub == "grid-worker-0001"
    assert verifier.verify(token, at=datetime.fromtimestamp(now - 5000, timezone.utc)).sub
    refused(verifier, token, "not_yet_valid", at=now - 8000)
    fresh = mint(claims(), key)
    refused(verifier, fresh, "expired", at=now + 7200)


def test_the_cache_returns_the_same_principal_and_refuses_after_exp(verifier, key, monkeypatch):
    now = time.time()
    token = mint(claims(iat=now, exp=now + 60), key)
    first = verifier.verify(token)
    calls = []
    real = identity._JWT_READER.decode
    monkeypatch.setattr(identity._JWT_READER, "decode", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    assert verifier.verify(token) is first
    assert calls == []
    refused(verifier, token, "expired", at=now + 91)  # from the cache: exp checked all the same
    monkeypatch.setattr(time, "time", lambda: now + 91)
    refused(verifier, token, "expired")


def test_an_expired_token_asked_about_a_past_instant_comes_from_the_cache(verifier, key, monkeypatch):
    """A backlog redelivered after its tokens expired: verified as of each record's timestamp,
    decoded once per token, not once per record."""
    now = time.time()
    token = mint(claims(iat=now - 7200, nbf=None, exp=now - 3600), key)
    calls = []
    real = identity._JWT_READER.decode
    monkeypatch.setattr(identity._JWT_READER, "decode", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    for i in range(50):
        assert verifier.verify(token, at=now - 5000 + i).sub == "grid-worker-0001"
    refused(verifier, token, "expired")  # now: from the cache, refused all the same
    assert calls == [1]


def test_the_cache_is_bounded(jwks_file, key):
    v = TokenVerifier(jwks_file, issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE, cache_size=3)
    tokens = [mint(claims(sub=f"resident-{i}"), key) for i in range(5)]
    for t in tokens:
        v.verify(t)
    assert list(v._cache) == tokens[2:]


# -- reading a token's segments ---------------------------------------------------------------------------

def _library_reads(segment: bytes):
    try:
        return jwt.PyJWS._decode_base64url_segment(segment, "crypto")
    except jwt.DecodeError as e:
        return ("refused", str(e))


def _fast_reads(segment: bytes):
    try:
        return identity._JWS._decode_base64url_segment(segment, "crypto")
    except jwt.DecodeError as e:
        return ("refused", str(e))


def test_segments_are_read_as_pyjwt_reads_them():
    """The fast reading of a segment gives PyJWT's bytes, or PyJWT's refusal, for every kind of
    segment: well formed, padded, of an impossible length, with a character outside the
    alphabet (anywhere), of standard base64's alphabet, with non-zero unused bits."""
    rng = random.Random(7)
    segments = [b"", b"A", b"AA", b"AAA", b"AAAA", b"AB", b"AC", b"AQ", b"AR", b"AAB", b"AAE", b"AA==", b"AAA=",
                b"AAAA=", b"A===", b"====", b"!!!!", b"ab+/", b"ab-_", b"ab cd", b"abcd\n", b"ab=c", b"\xff\xfe"]
    for n in range(40):
        raw = bytes(rng.randrange(256) for _ in range(n))
        enc = base64.urlsafe_b64encode(raw)
        segments += [enc, enc.rstrip(b"="), enc.rstrip(b"=") + b"!!!!", b"!" + enc.rstrip(b"=")]
        if enc.rstrip(b"="):
            flipped = enc.rstrip(b"=")[:-1] + bytes([enc.rstrip(b"=")[-1] ^ 1])
            segments.append(flipped)  # often a non-canonical last character
            at = rng.randrange(len(enc.rstrip(b"=")))
            segments.append(enc[:at] + b"*" + enc[at + 1:])
    read = refused = 0
    for seg in segments:
        library = _library_reads(seg)
        assert _fast_reads(seg) == library, seg
        read += isinstance(library, bytes)
        refused += isinstance(library, tuple)
    assert read > 60 and refused > 60  # both kinds well represented


def test_the_verifier_reads_segments_the_fast_way(verifier, key, monkeypatch):
    """PyJWT still calls the method this reader replaces (a later PyJWT that no longer did would
    leave the fast reading unused, and this test failing)."""
    assert "_decode_base64url_segment" in vars(jwt.PyJWS)
    seen = []
    real = identity._JWS._decode_base64url_segment
    monkeypatch.setattr(identity._JWS, "_decode_base64url_segment",
                        staticmethod(lambda seg, name: seen.append(name) or real(seg, name)))
    assert verifier.verify(mint(claims(), key)).sub == "grid-worker-0001"
    assert sorted(seen) == ["crypto", "header", "payload"]


def test_a_token_with_junk_in_a_segment_is_refused(verifier, key):
    token = mint(claims(), key)
    head, payload, sig = token.split(".")
    for bad in (f"{head}.{payload}.{sig}!!!!", f"{head}.{payload}!.{sig}", f"{head}.{payload}.{sig[:-1]}*",
                f"{head}.+{payload[1:]}.{sig}"):
        refused(verifier, bad, "malformed")


# -- key rotation ---------------------------------------------------------------------------------------

def test_key_rotation_with_the_jwks_file(jwks_file, key):
    # the file looked at on every use (by default at most once a second while tokens come from the cache)
    verifier = TokenVerifier(jwks_file, issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE, jwks_check_seconds=0)
    old_token = mint(claims(sub="old"), key)
    assert verifier.verify(old_token).sub == "old"
    new = generate_key()
    new_token = mint(claims(sub="new"), new)
    refused(verifier, new_token, "unknown_key")

    write_jwks(jwks_file, [public_jwk(new), public_jwk(key)])  # during the rotation: both
    assert verifier.verify(new_token).sub == "new"
    assert verifier.verify(old_token).sub == "old"

    write_jwks(jwks_file, [public_jwk(new)])  # the old key retired
    refused(verifier, old_token, "unknown_key")  # not even from the cache
    assert verifier.verify(new_token).sub == "new"


def test_new_tokens_look_at_the_jwks_file_at_most_once_a_second_for_a_known_key(jwks_file, key, monkeypatch):
    """A token not seen before, signed by a key the verifier has, is checked against the keys as
    they were at most a second ago; one whose key it does not have makes it look at once."""
    clock = [1000.0]
    monkeypatch.setattr(identity.time, "monotonic", lambda: clock[0])
    verifier = TokenVerifier(jwks_file, issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    assert verifier.verify(mint(claims(sub="first"), key)).sub == "first"
    stats = []
    real_stat = identity.os.stat
    monkeypatch.setattr(identity.os, "stat", lambda path, **kw: stats.append(path) or real_stat(path, **kw))
    for i in range(20):
        assert verifier.verify(mint(claims(sub=f"resident-{i}"), key)).sub == f"resident-{i}"
    assert stats == []
    new = generate_key()
    write_jwks(jwks_file, [public_jwk(new)])  # a rotation: the old key retired, a new one in
    stats.clear()
    assert verifier.verify(mint(claims(sub="new"), new)).sub == "new"  # an unknown kid: looked at once
    assert len(stats) == 1
    refused(verifier, mint(claims(sub="late"), key), "unknown_key")  # the file's keys as just read
    clock[0] += 1.0
    write_jwks(jwks_file, [public_jwk(key)])  # and back
    stats.clear()
    assert verifier.verify(mint(claims(sub="back"), key)).sub == "back"
    assert len(stats) == 1


def test_cached_tokens_look_at_the_jwks_file_at_most_once_a_second(jwks_file, key, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(identity.time, "monotonic", lambda: clock[0])
    verifier = TokenVerifier(jwks_file, issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    token = mint(claims(sub="old"), key)
    verifier.verify(token)
    stats = []
    real_stat = identity.os.stat
    monkeypatch.setattr(identity.os, "stat", lambda path, **kw: stats.append(path) or real_stat(path, **kw))
    for _ in range(1000):
        assert verifier.verify(token).sub == "old"
    assert stats == []  # no look at the file within the second
    write_jwks(jwks_file, [public_jwk(generate_key())])  # the key retired
    assert verifier.verify(token).sub == "old"  # still within the second
    clock[0] += 1.0
    refused(verifier, token, "unknown_key")  # noticed on the next look
    assert len(stats) >= 1


def test_an_unreadable_jwks_file_keeps_the_keys_loaded(jwks_file, verifier, key):
    token = mint(claims(), key)
    verifier.verify(token)
    jwks_file.write_text("{not json")
    assert verifier.verify(mint(claims(sub="another"), key)).sub == "another"


def test_a_missing_jwks_file_refuses(tmp_path, key):
    v = TokenVerifier(tmp_path / "absent.json", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    refused(v, mint(claims(), key), "jwks_unavailable")


def test_a_jwks_url_must_be_https():
    with pytest.raises(ValueError, match="https"):
        TokenVerifier("http://idp.example/certs", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    TokenVerifier("https://idp.example/realms/grassroots/protocol/openid-connect/certs",
                  issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)  # nothing fetched yet


def test_a_jwks_url_goes_through_pyjwks_client(key, monkeypatch):
    fetched = []

    def fetch(self):
        fetched.append(self.uri)
        return {"keys": [public_jwk(key)]}

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch)
    v = TokenVerifier("https://idp.example/certs", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    assert v.verify(mint(claims(sub="a"), key)).sub == "a"
    assert v.verify(mint(claims(sub="b"), key)).sub == "b"
    assert fetched == ["https://idp.example/certs"]  # the key set is cached


def test_another_scope_claim_name(jwks_file, key):
    v = TokenVerifier(jwks_file, issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE,
                      scope_claim="grassroots_scope")
    c = claims(scope="openid profile")
    c["grassroots_scope"] = {"streets": [STREET]}
    assert v.verify(mint(c, key)).scope == Scope.of(streets=[STREET])


# -- Scope ----------------------------------------------------------------------------------------------

def test_scope_covers_streets_communities_and_grids():
    street = Scope.of(streets=[STREET])
    assert street.covers(STREET) and street.covers(COMMUNITY) and street.covers(GRID)
    assert not street.covers("110105002") and not street.covers(OTHER_STREET_GRID)

    community = Scope.of(communities=[COMMUNITY])
    assert community.covers(COMMUNITY) and community.covers(GRID) and community.covers("110105001001004")
    assert not community.covers(STREET)  # a community does not cover its street
    assert not community.covers("110105001002001")

    grid = Scope.of(grids=[GRID])
    assert grid.covers(GRID)
    assert not grid.covers(COMMUNITY) and not grid.covers("110105001001002")


def test_scope_refuses_what_is_no_code():
    s = Scope.of(streets=[STREET], departments=["civil-affairs"])
    for code in ("110105", "11010500100", "１１０１０５００１", None, 110105001, "110105001x"):
        assert not s.covers(code)
    assert s.covers_department("civil-affairs") and not s.covers_department("finance")
    assert not s.covers_department(None)
    with pytest.raises(ValueError):
        Scope.of(streets=[COMMUNITY])
    assert Scope().is_empty() and not s.is_empty()


# -- devidentity --------------------------------------------------------------------------------------

def test_devidentity_writes_private_files_and_every_role(tmp_path):
    assert devidentity.main(["--out", str(tmp_path), "--lifetime", "600"]) == 0
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(tmp_path / "signing-key.pem") == 0o600
    assert mode(tmp_path / "identities.json") == 0o600
    identities = json.loads((tmp_path / "identities.json").read_text())
    assert {r for i in identities for r in i["roles"]} == set(ROLES)
    residents = [i for i in identities if "resident" in i["roles"] and len(i["roles"]) == 1]
    assert len(residents) >= 2
    assert len({c for i in identities for c in i["scope"]["communities"]}) >= 2

    v = TokenVerifier(tmp_path / "jwks.json", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    for ident in identities:
        p = v.verify(ident["token"])
        assert p.sub == ident["sub"] and p.roles == frozenset(ident["roles"])
        exp = jwt.decode(ident["token"], options={"verify_signature": False})["exp"]
        assert exp - time.time() <= 600
    for c in (i["scope"]["communities"] for i in identities):
        for code in c:
            assert v.verify(residents[0]["token"]).scope.covers(code) == (code in residents[0]["scope"]["communities"])


def test_devidentity_rotate_keeps_the_previous_key(tmp_path):
    devidentity.main(["--out", str(tmp_path)])
    first = json.loads((tmp_path / "identities.json").read_text())[0]["token"]
    devidentity.main(["--out", str(tmp_path), "--rotate"])
    assert len(json.loads((tmp_path / "jwks.json").read_text())["keys"]) == 2
    v = TokenVerifier(tmp_path / "jwks.json", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE)
    assert v.verify(first).sub and v.verify(json.loads((tmp_path / "identities.json").read_text())[0]["token"]).sub
