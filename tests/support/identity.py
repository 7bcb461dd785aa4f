"""A test identity provider: a signing key of its own, its JWKS in a temporary file, tokens on demand.

One per test process (:func:`test_identity`); :class:`~tests.support.procs.Worker` points every
worker it starts at its JWKS, issuer and audience, and tests mint tokens for their HTTP calls::

    from tests.support.identity import token
    await http("GET", worker.url + "/v1/cases", token=token())
    token(sub="resident-0001", roles=["resident"], lifetime=-120)   # an expired one
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from services.kit import devidentity

ISSUER = "https://identity.test.invalid/realms/grassroots-test"
AUDIENCE = "grassroots-test"
DEFAULT_SUB = "test-operator"
DEFAULT_ROLES = ("community_officer", "points_operator", "assessor", "auditor")


class TestIdentity:
    """A key pair; the public half as ``jwks.json`` in ``directory``."""

    __test__ = False  # not a test class

    def __init__(self, directory: Path, *, issuer: str = ISSUER, audience: str = AUDIENCE):
        self.directory = directory
        self.issuer = issuer
        self.audience = audience
        self.key = devidentity.generate_key()
        self.jwks_path = directory / "jwks.json"
        devidentity.write_jwks(self.jwks_path, [devidentity.public_jwk(self.key)])

    @property
    def kid(self) -> str:
        return devidentity.public_jwk(self.key)["kid"]

    def env(self) -> dict[str, str]:
        """The settings a worker needs to verify this provider's tokens."""
        return {"JWKS": str(self.jwks_path), "JWT_ISSUER": self.issuer, "JWT_AUDIENCE": self.audience}

    def claims(self, sub: str = DEFAULT_SUB, roles: Iterable[str] = DEFAULT_ROLES,
               scope: Mapping[str, list[str]] | None = None, *, lifetime: float = 3600,
               now: float | None = None, **extra: Any) -> dict[str, Any]:
        out = devidentity.claims_for(sub, list(roles), dict(scope or {}), issuer=self.issuer, audience=self.audience,
                                     lifetime=lifetime, now=now)
        out.update(extra)
        return out

    def token(self, sub: str = DEFAULT_SUB, roles: Iterable[str] = DEFAULT_ROLES,
              scope: Mapping[str, list[str]] | None = None, *, lifetime: float = 3600, now: float | None = None,
              key=None, kid: str | None = None, **extra: Any) -> str:
        """A token for ``sub`` signed by this provider's key (or by ``key``, its header naming
        ``kid`` or that key's own). A negative ``lifetime`` gives one that has already expired."""
        if lifetime < 0:  # claims_for counts from now; an expired token was issued in the past
            now = (time.time() if now is None else now) + lifetime * 2
            lifetime = -lifetime
        return devidentity.mint(self.claims(sub, roles, scope, lifetime=lifetime, now=now, **extra), key or self.key,
                                kid=kid)


_current: TestIdentity | None = None


def test_identity() -> TestIdentity:
    """This process's test identity provider (created on first use, removed at exit)."""
    global _current
    if _current is None:
        directory = Path(tempfile.mkdtemp(prefix="grassroots-test-identity-"))
        atexit.register(shutil.rmtree, directory, True)
        _current = TestIdentity(directory)
    return _current


test_identity.__test__ = False  # type: ignore[attr-defined]


def token(sub: str = DEFAULT_SUB, roles: Iterable[str] = DEFAULT_ROLES, **kw: Any) -> str:
    """A valid token of this process's test identity provider."""
    return test_identity().token(sub, roles, **kw)
