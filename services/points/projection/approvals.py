"""Redemption codes (consent) and adjustment requests in PostgreSQL, row-locked when read for a decision."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from schemas.points import AdjustmentRequested
from services.points.domain import Consent


async def create_code(conn: asyncpg.Connection, code_hash: str, account_id: str, amount: int, *,
                      at: datetime, expires_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO redemption_codes (code_hash, account_id, amount, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5)""", code_hash, account_id, amount, at, expires_at)


async def lock_code(conn: asyncpg.Connection, code_hash: str) -> Consent | None:
    """The code stored under ``code_hash``, row-locked (a concurrent redemption with the same
    code waits, then finds it used)."""
    row = await conn.fetchrow(
        "SELECT account_id, amount, expires_at, used_by FROM redemption_codes WHERE code_hash = $1 FOR UPDATE",
        code_hash)
    return Consent(row["account_id"], row["amount"], row["expires_at"], row["used_by"]) if row else None


async def consume_code(conn: asyncpg.Connection, code_hash: str, transfer_id: str, at: datetime) -> None:
    done = await conn.execute(
        "UPDATE redemption_codes SET used_by = $2, used_at = $3 WHERE code_hash = $1 AND used_by IS NULL",
        code_hash, transfer_id, at)
    if done != "UPDATE 1":
        raise RuntimeError("a consent code was consumed twice")  # the row lock makes this impossible


async def forget_expired_codes(conn: asyncpg.Connection, before: datetime) -> int:
    done = await conn.execute("DELETE FROM redemption_codes WHERE expires_at < $1", before)
    return int(done.split()[-1])


async def lock_request(conn: asyncpg.Connection, transfer_id: str) -> AdjustmentRequested | None:
    row = await conn.fetchrow("SELECT request FROM adjustment_requests WHERE transfer_id = $1 FOR UPDATE", transfer_id)
    return AdjustmentRequested.model_validate(row["request"]) if row else None


async def save_request(conn: asyncpg.Connection, request: AdjustmentRequested) -> None:
    await conn.execute(
        """INSERT INTO adjustment_requests (transfer_id, operator_id, request, requested_at)
           VALUES ($1, $2, $3::jsonb, $4)""",
        request.transfer_id, request.operator_id, request.model_dump(mode="json", exclude_none=True),
        request.occurred_at)


async def mark_approved(conn: asyncpg.Connection, transfer_id: str, approver_id: str, at: datetime) -> None:
    await conn.execute("UPDATE adjustment_requests SET approver_id = $2, approved_at = $3 WHERE transfer_id = $1",
                       transfer_id, approver_id, at)
