"""Consent to a redemption (兑换授权): a resident's short-lived, single-use code.

A resident creates a code for their own account and at most ``amount`` points
(``POST /v1/redemption-codes``) and shows it at the till; the merchant's ``points.redeem.v1``
carries it. Only a hash of the code is stored (:func:`code_hash`); the code itself is never
published, logged or named in a refusal. A code is consumed by the redemption it allowed, in
the same transaction, so it allows one redemption however often it is presented.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from schemas.points import Redeem
from services.kit.errors import Rejected

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed at a till
CODE_LENGTH = 10  # 50 random bits


def new_code() -> str:
    """A fresh random code (``secrets``)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalized(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def code_hash(code: str) -> str:
    """What is stored of a code: its SHA-256, hex."""
    return hashlib.sha256(normalized(code).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Consent:
    """A stored code: the account it allows a redemption from, the most it allows, until when,
    and the transfer that used it (None: unused)."""

    account_id: str
    amount: int
    expires_at: datetime
    used_by: str | None = None


class ConsentRequired(Rejected):
    def __init__(self) -> None:
        super().__init__("consent_required", "a redemption needs the resident's consent code", "consent_code")


class InvalidConsent(Rejected):
    def __init__(self, why: str) -> None:
        super().__init__("invalid_consent", why, "consent_code")


def check_consent(consent: Consent | None, cmd: Redeem, at: datetime) -> bool:
    """Whether ``consent`` allows ``cmd``: True when the code is to be consumed now, False when
    this very transfer consumed it already (a repeated command). Raises
    :class:`ConsentRequired` without a code and :class:`InvalidConsent` for an unknown, expired
    or used code, one of another account, or one for less than the amount (one detail for the
    first ones, so that a guess learns nothing)."""
    if cmd.consent_code is None:
        raise ConsentRequired()
    if consent is None or consent.account_id != cmd.debit_account:
        raise InvalidConsent("no valid consent code for this account")
    if consent.used_by is not None:
        if consent.used_by == cmd.transfer_id:
            return False
        raise InvalidConsent("no valid consent code for this account")
    if consent.expires_at <= at:
        raise InvalidConsent("no valid consent code for this account")
    if cmd.amount > consent.amount:
        raise InvalidConsent(f"the code allows at most {consent.amount} points, not {cmd.amount}")
    return True
