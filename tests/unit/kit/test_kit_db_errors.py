"""Which database errors mean "retry the same work later" and which blame the message.

A valid command must never be dead-lettered because the database refused writes for a while:
the fault campaign made a database read-only for 20 s and saw every service dead-letter valid
commands after three tries. Those errors are now "unavailable": retried, never acknowledged."""
from __future__ import annotations

import asyncpg
import pytest

from services.kit.consumer import fault_reason
from services.kit.db import CONFLICT_ERRORS, UNAVAILABLE_ERRORS, is_unavailable

WAIT = [
    asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    asyncpg.exceptions.DiskFullError("could not extend file"),
    asyncpg.exceptions.OutOfMemoryError("out of memory"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.InternalClientError("unexpected connection state"),
    ConnectionResetError(),
]
BLAME = [
    asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
    asyncpg.exceptions.DivisionByZeroError("division by zero"),
    asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
]


@pytest.mark.parametrize("e", WAIT, ids=lambda e: type(e).__name__)
def test_a_database_that_refuses_writes_for_now_is_waited_for(e):
    assert is_unavailable(e)
    assert isinstance(e, UNAVAILABLE_ERRORS) and not isinstance(e, CONFLICT_ERRORS)


@pytest.mark.parametrize("e", BLAME, ids=lambda e: type(e).__name__)
def test_a_value_the_database_refuses_is_the_message_fault(e):
    assert not is_unavailable(e)
    assert fault_reason(e) == "invalid_data"
