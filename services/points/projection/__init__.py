"""PostgreSQL projection of the points service (schema ``points``): the ledger (accounts,
append-only postings, earnings), deeds, upstream facts, and the queries."""
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
