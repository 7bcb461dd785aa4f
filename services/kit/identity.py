"""Who is calling: a JWT (RFC 7519) from the district's identity provider, verified.

Every caller, person or app, carries a token signed by the identity provider. A service
checks it against the provider's public keys (a JWKS: a file, or an https URL such as
Keycloak's ``/realms/<realm>/protocol/openid-connect/certs``) and gets a :class:`Principal`::

    verifier = TokenVerifier.from_settings(settings)
    principal = verifier.verify(token)               # or Unauthenticated
    principal.has("grid_worker") and principal.scope.covers(case.grid_id)

    verifier.verify(token, at=record_time)           # exp/nbf/iat checked at that instant

What is checked, by PyJWT (signatures are its job, none is computed here): the signature
against the JWKS key named by the token's ``kid``, with an algorithm from the configured list
(public-key algorithms only, and the one the key is for: ``alg: none`` and an HMAC signature
made with the public key are refused); ``iss`` and ``aud``; that ``exp``, ``iat``, ``iss``,
``aud`` and ``sub`` are present. Then the claims by a pydantic model: ``roles`` a list of known
role names, ``scope`` an object of well-formed codes (:mod:`schemas.codes`); and the times
``exp`` / ``nbf`` / ``iat`` against now or ``at`` with ``leeway`` seconds of clock skew.

A JWKS file is loaded once and re-read when it changes (a rotation puts the new key beside the
old one, then removes the old one); a URL goes through PyJWT's :class:`jwt.PyJWKClient` with
its key-set cache, which fetches again for an unknown ``kid``. Verified tokens are kept in a small
LRU cache for a short while; a cached principal is still refused once its token has expired
(the times are checked at every use), and is dropped when the JWKS file changes (noticed within
a second: the file is looked at once per second at most, and at once for a ``kid`` it did not have).

The URL fetch blocks (urllib): call :meth:`TokenVerifier.verify` from a thread where a fetch may
happen on an event loop, or :meth:`TokenVerifier.prefetch` at start-up.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, get_args
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from schemas.codes import (COMMUNITY_ID_PATTERN, GRID_ID_PATTERN, STREET_ID_PATTERN, CodeKind,
                           kind_of)

from .settings import ASYMMETRIC_ALGORITHMS, ServiceSettings

log = logging.getLogger("kit.identity")

__all__ = ["ROLES", "Role", "Scope", "Principal", "Unauthenticated", "TokenVerifier", "Claims", "REQUIRED_CLAIMS"]

Role = Literal[
    "resident", "grid_worker", "community_officer", "street_officer", "department_officer", "party_member",
    "party_secretary", "merchant", "points_operator", "assessor", "auditor", "data_protection_officer",
]
ROLES: tuple[str, ...] = get_args(Role)
"""Every role a token may carry."""

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
MAX_TOKEN_BYTES = 16 * 1024
"""A longer token is refused before any parsing."""
MAX_SCOPE_IDS = 10_000
"""Ids per kind in a scope."""


class Unauthenticated(Exception):
    """A token that does not prove who is calling; ``reason`` is a short code
    (``malformed``, ``algorithm``, ``unknown_key``, ``bad_signature``, ``wrong_issuer``,
    ``wrong_audience``, ``missing_claim``, ``bad_claims``, ``expired``, ``not_yet_valid``,
    ``jwks_unavailable``) and the message says more."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- the area a principal acts for ------------------------------------------------------------------

_COMMUNITY_LENGTH = CodeKind.COMMUNITY.length
_STREET_LENGTH = CodeKind.STREET.length

@dataclass(frozen=True, slots=True)
class Scope:
    """The streets, communities, grids and departments a principal acts for."""

    streets: frozenset[str] = frozenset()
    communities: frozenset[str] = frozenset()
    grids: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    _covered: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    """Answers of :meth:`covers` so far: a verified token's principal (and its scope) is cached,
    and its commands name the same few areas again and again."""

    def __post_init__(self) -> None:
        for name, kind in (("streets", CodeKind.STREET), ("communities", CodeKind.COMMUNITY), ("grids", CodeKind.GRID)):
            ids = frozenset(getattr(self, name))
            bad = sorted(i for i in ids if kind_of(i) is not kind)
            if bad:
                raise ValueError(f"scope {name}: not a {kind.length}-digit {kind.value} id: {bad[0]!r}")
            object.__setattr__(self, name, ids)
        object.__setattr__(self, "departments", frozenset(self.departments))

    @classmethod
    def of(cls, *, streets: Iterable[str] = (), communities: Iterable[str] = (), grids: Iterable[str] = (),
           departments: Iterable[str] = ()) -> "Scope":
        return cls(frozenset(streets), frozenset(communities), frozenset(grids), frozenset(departments))

    def covers(self, code: object) -> bool:
        """Whether ``code`` (a street, community or grid id) is one of this scope's areas or lies
        inside one of them; False for a malformed code and for a division."""
        try:
            return self._covered[code]
        except (KeyError, TypeError):  # not asked yet, or not hashable (not a code)
            pass
        answer = self._covers(code)
        if isinstance(code, str):
            if len(self._covered) >= 1024:
                self._covered.clear()
            self._covered[code] = answer
        return answer

    def _covers(self, code: object) -> bool:
        kind = kind_of(code)  # well-formed: its prefixes are its street and community ids
        if kind is None or kind is CodeKind.DIVISION:
            return False
        if kind is CodeKind.GRID and code in self.grids:
            return True
        if kind is not CodeKind.STREET and code[:_COMMUNITY_LENGTH] in self.communities:  # type: ignore[index]
            return True
        return code[:_STREET_LENGTH] in self.streets  # type: ignore[index]

    def covers_department(self, department_id: object) -> bool:
        return isinstance(department_id, str) and department_id in self.departments

    def is_empty(self) -> bool:
        return not (self.streets or self.communities or self.grids or self.departments)

    def as_claim(self) -> dict[str, list[str]]:
        """The ``scope`` claim's JSON shape (sorted lists)."""
        return {k: sorted(getattr(self, k)) for k in ("streets", "communities", "grids", "departments")}


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: ``sub`` (a person's or an app's id), its roles and its scope."""

    sub: str
    roles: frozenset[str] = frozenset()
    scope: Scope = field(default_factory=Scope)

    def has(self, role: str) -> bool:
        return role in self.roles


# -- the claims, validated ------------------------------------------------------------------------------

_Street = Annotated[str, StringConstraints(pattern=STREET_ID_PATTERN)]
_Community = Annotated[str, StringConstraints(pattern=COMMUNITY_ID_PATTERN)]
_Grid = Annotated[str, StringConstraints(pattern=GRID_ID_PATTERN)]
_Department = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
_Time = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]


class ScopeClaim(BaseModel):
    """``{"streets": [...], "communities": [...], "grids": [...], "departments": [...]}``; each optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    streets: list[_Street] = Field(default_factory=list, max_length=MAX_SCOPE_IDS)
    communities: list[_Community] = Field(default_factory=list, max_length=MAX_SCOPE_IDS)
    grids: list[_Grid] = Field(default_factory=list, max_length=MAX_SCOPE_IDS)
    departments: list[_Department] = Field(default_factory=list, max_length=MAX_SCOPE_IDS)

    def scope(self) -> Scope:
        return Scope.of(streets=self.streets, communities=self.communities, grids=self.grids,
                        departments=self.departments)


class Claims(BaseModel):
    """The claims a service reads; others (``jti``, ``name``, ``azp``...) are ignored.
    ``iss`` and ``aud`` have been checked by PyJWT already."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: str = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
    exp: _Time
    iat: _Time
    nbf: _Time | None = None
    roles: list[Role] = Field(default_factory=list, max_length=len(ROLES))
    scope: ScopeClaim = Field(default_factory=ScopeClaim)


# -- keys -------------------------------------------------------------------------------------------------

class _FileKeys:
    """A JWKS file: parsed once, parsed again when its (mtime, size, inode) changes.

    The file is looked at (a stat) at most once per ``check_seconds`` for a key it had (a token
    not verified before, :meth:`key`) and for the cache's question "are the keys still those?"
    (:meth:`current`, asked on every cache hit, so on nearly every command of the intake
    topic): a key removed from the file stops answering that much later at most. A key it did
    not have makes a look at once."""

    def __init__(self, path: Path, check_seconds: float = 1.0):
        self.path = path
        self.check_seconds = check_seconds
        self._checked = float("-inf")  # monotonic time of the last look at the file
        self._stamp: tuple[int, int, int] | None = None
        self._signing: list[jwt.PyJWK] | None = None  # the file's keys for signatures, once loaded
        self.generation = 0  # bumped at every successful load

    def _refresh(self) -> None:
        self._checked = time.monotonic()
        try:
            st = os.stat(self.path)
        except OSError as e:
            if self._signing is None:
                raise Unauthenticated("jwks_unavailable", f"{self.path}: {e.strerror}") from None
            return  # keep the keys we have while the file is being replaced
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            new = jwt.PyJWKSet.from_json(self.path.read_text())
        except (OSError, ValueError, jwt.PyJWTError) as e:
            if self._signing is None:
                raise Unauthenticated("jwks_unavailable", f"{self.path}: {e}") from None
            log.warning("JWKS file %s unreadable, keeping the keys loaded before: %s", self.path, e)
            return
        self._signing = [k for k in new.keys if k.public_key_use in (None, "sig")]
        self.generation += 1
        log.info("JWKS loaded from %s: %d key(s) %s", self.path, len(new.keys), [k.key_id for k in new.keys])

    def current(self) -> int:
        """The generation of the keys as the file is now (a stat, at most once per
        ``check_seconds``; a parse when it changed)."""
        if time.monotonic() - self._checked >= self.check_seconds:
            self._refresh()
        return self.generation

    def key(self, kid: str | None) -> jwt.PyJWK:
        """The signing key ``kid`` names. Looked for among the keys as the file was at most
        ``check_seconds`` ago (as the cache's question is answered); one not found there makes
        a look at the file at once (a key just added by a rotation is found without waiting)."""
        for look in (False, True):
            if look or self._signing is None or time.monotonic() - self._checked >= self.check_seconds:
                self._refresh()
            keys = self._signing
            assert keys is not None
            if kid is None:
                if len(keys) == 1:
                    return keys[0]
            else:
                for k in keys:
                    if k.key_id == kid:
                        return k
        if kid is None:
            raise Unauthenticated("unknown_key", "the token names no key (kid) and the JWKS has several")
        raise Unauthenticated("unknown_key", f"no key {kid!r} in the JWKS")


class _UrlKeys:
    """A JWKS URL, through PyJWT's client and its key-set cache (``lifespan`` seconds; an unknown
    ``kid`` fetches again, at most once per cooldown). Its per-kid LRU (``cache_keys``) is left
    off: it would keep answering with a key the provider has since removed."""

    generation = 0

    def current(self) -> int:
        return 0  # PyJWKClient refreshes by itself; cached principals live cache_seconds at most

    def __init__(self, url: str, *, lifespan: float = 300.0, timeout: float = 10.0):
        self.url = url
        self._client = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=True, lifespan=lifespan, timeout=timeout)

    def key(self, kid: str | None) -> jwt.PyJWK:
        if kid is None:
            raise Unauthenticated("unknown_key", "the token names no key (kid)")
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as e:
            raise Unauthenticated("jwks_unavailable", str(e)) from None
        except jwt.PyJWKClientError as e:
            raise Unauthenticated("unknown_key", str(e)) from None


def _is_url(source: str) -> bool:
    return source.startswith(("https://", "http://"))


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return  # a provider on this machine (a local Keycloak)
    raise ValueError(f"JWKS URL must be https (plain http only for this machine): {url}")


# -- the verifier ---------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Cached:
    principal: Principal
    exp: float
    not_before: float  # max(iat, nbf)
    stored: float  # monotonic
    generation: int


# PyJWT's refusals and the reasons they are given as (any other: malformed)
_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidAlgorithmError, "algorithm"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
)


_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


class _JWS(jwt.PyJWS):
    """PyJWT's JWS reader, with one step done in C for what is well formed.

    PyJWT reads each segment of a token strictly: base64url's alphabet only, looked at one
    character at a time in Python, and the canonical encoding (what it decodes to encodes back
    to the same text). That pass was half the cost of checking a new token, about as much as
    the ES256 signature itself. Here a segment of the alphabet only, of a possible length and
    encoded canonically, is decoded by a regular expression and the C codec, giving the same
    bytes PyJWT would; any other segment goes to PyJWT's own reader, which refuses it with its
    own words (or takes its padding as it does)."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        if len(segment) % 4 != 1 and _BASE64URL.fullmatch(segment):
            decoded = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
            if base64.urlsafe_b64encode(decoded).rstrip(b"=") == segment:
                return decoded
        return jwt.PyJWS._decode_base64url_segment(segment, name)


class _JWT(jwt.PyJWT):
    """PyJWT's reader of JWTs over :class:`_JWS`; the claims are checked by PyJWT as they are."""

    def __init__(self) -> None:
        super().__init__()
        self._jws = _JWS(options=self._jws.options)


_JWT_READER = _JWT()


def _header(token: str | bytes) -> dict[str, Any]:
    """A token's JOSE header, read only to choose the key and check the algorithm: PyJWT then
    reads the whole token strictly as it verifies it (its segments' alphabet and padding, the
    header's fields). Read here rather than by PyJWT's ``get_unverified_header``, which checks
    every character of every segment in Python: a second such pass over each new token was a
    third of a replay's token checks."""
    raw = token.encode() if isinstance(token, str) else token
    head, dot, _ = raw.partition(b".")
    if not dot:
        raise Unauthenticated("malformed", "not enough segments")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + b"=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: JSON nested too deep
        raise Unauthenticated("malformed", "the header segment is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise Unauthenticated("malformed", "the header is not a JSON object")
    return header


class TokenVerifier:
    """Verifies tokens against one identity provider's keys; see the module's docstring."""

    def __init__(self, jwks: str | os.PathLike, *, issuer: str, audience: str,
                 algorithms: Iterable[str] = ("RS256", "ES256"), leeway: float = 30.0,
                 scope_claim: str = "scope", cache_size: int = 1024, cache_seconds: float = 60.0,
                 jwks_lifespan: float = 300.0, jwks_check_seconds: float = 1.0):
        algorithms = tuple(algorithms)
        wrong = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if not algorithms or wrong:
            raise ValueError(f"algorithms must be public-key signature algorithms, not {wrong or 'none'}")
        source = os.fspath(jwks)
        # what makes an equal verifier in another process (:meth:`recipe`)
        self._recipe = {"jwks": source, "issuer": issuer, "audience": audience, "algorithms": algorithms,
                        "leeway": leeway, "scope_claim": scope_claim, "cache_size": cache_size,
                        "cache_seconds": cache_seconds, "jwks_lifespan": jwks_lifespan,
                        "jwks_check_seconds": jwks_check_seconds}
        if _is_url(source):
            _check_url(source)
            self._keys: _FileKeys | _UrlKeys = _UrlKeys(source, lifespan=jwks_lifespan)
        else:
            self._keys = _FileKeys(Path(source), jwks_check_seconds)
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway = float(leeway)
        self.scope_claim = scope_claim
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings, **kw: Any) -> "TokenVerifier":
        if not settings.jwks:
            raise RuntimeError("JWKS is not set: no token can be verified")
        return cls(settings.jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                   algorithms=settings.jwt_algorithm_list(), leeway=settings.jwt_leeway_seconds,
                   scope_claim=settings.jwt_scope_claim, **kw)

    def recipe(self) -> dict[str, Any]:
        """The arguments that make an equal verifier (``TokenVerifier(**v.recipe())``), in another
        process: it reads the same keys from the same place."""
        return dict(self._recipe)

    def prefetch(self) -> None:
        """Load the keys now (a start-up check); raises :class:`Unauthenticated` when they cannot be."""
        if isinstance(self._keys, _FileKeys):
            self._keys._refresh()
        else:
            try:
                self._keys._client.get_jwk_set()
            except jwt.PyJWKClientError as e:
                raise Unauthenticated("jwks_unavailable", str(e)) from None

    def verify(self, token: str | bytes, *, at: datetime | float | None = None) -> Principal:
        """The principal a valid token names; :class:`Unauthenticated` otherwise.

        ``at`` (an aware datetime or Unix seconds): check ``exp``, ``nbf`` and ``iat`` at that
        instant rather than now, e.g. a Kafka record's broker timestamp.
        """
        return self.valid_at(self.verified(token), at)

    def verified(self, token: str | bytes) -> "_Cached":
        """A token whose signature and claims are good: its principal and the times it is valid
        between, not yet checked against any instant (:meth:`valid_at` does that).
        :class:`Unauthenticated` otherwise. A consumer verifies each distinct token of a batch
        once this way, then checks each record's time."""
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise Unauthenticated("malformed", "a token is ASCII") from None
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
            raise Unauthenticated("malformed", "no token, or an over-long one")
        hit = self._cached(token)
        if hit is not None:
            return hit
        claims = self._decode(token)
        principal = Principal(claims.sub, frozenset(claims.roles), claims.scope.scope())
        entry = _Cached(principal, claims.exp, _not_before(claims), time.monotonic(), self._keys.generation)
        self._store(token, entry)
        return entry

    def valid_at(self, entry: "_Cached", at: datetime | float | None = None) -> Principal:
        """The principal of a :meth:`verified` token if it is valid at ``at`` (see :meth:`verify`)."""
        self._check_times(entry.exp, entry.not_before, _instant(at))
        return entry.principal

    # -- internals -------------------------------------------------------------------------------------

    def _decode(self, token: str) -> Claims:
        header = _header(token)
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise Unauthenticated("algorithm", f"alg {alg!r} is not one of {', '.join(self.algorithms)}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("malformed", "kid must be a string")
        with self._lock:
            key = self._keys.key(kid)
        try:
            payload = _JWT_READER.decode(
                token, key, algorithms=list(self.algorithms), audience=self.audience, issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "strict_aud": False})
        except jwt.PyJWTError as e:
            reason = next((r for cls, r in _REFUSALS if isinstance(e, cls)), "malformed")
            raise Unauthenticated(reason, str(e)) from None
        if self.scope_claim != "scope":
            payload = dict(payload)
            payload["scope"] = payload.pop(self.scope_claim, None) or {}
        try:
            return Claims.model_validate(payload)
        except ValidationError as e:
            err = e.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            raise Unauthenticated("bad_claims", f"{where}: {err['msg']}") from None

    def _check_times(self, exp: float, not_before: float, when: float) -> None:
        if exp <= when - self.leeway:
            raise Unauthenticated("expired", "the token has expired")
        if not_before > when + self.leeway:
            raise Unauthenticated("not_yet_valid", "the token is not valid yet")

    def _cached(self, token: str) -> _Cached | None:
        with self._lock:
            hit = self._cache.get(token)
            if hit is None:
                return None
            # An expired token stays: its times are checked at each use, against the instant asked
            # about (a record's timestamp: a redelivered backlog is not decoded record by record).
            if time.monotonic() - hit.stored > self.cache_seconds or hit.generation != self._keys.current():
                del self._cache[token]
                return None
            self._cache.move_to_end(token)
            return hit

    def _store(self, token: str, entry: _Cached) -> None:
        if self.cache_size <= 0:
            return
        with self._lock:
            self._cache[token] = entry
            self._cache.move_to_end(token)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)


def _not_before(claims: Claims) -> float:
    return max(claims.iat, claims.nbf or 0.0)


def _instant(at: datetime | float | None) -> float:
    if at is None:
        return time.time()
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("at must be an aware datetime")
        return at.timestamp()
    return float(at)

