"""The orders service's PostgreSQL tables: aggregate rows (state jsonb + query columns),
order history, and the read queries. All SQL of the service lives in this package.

- ``store``   — the aggregate stores (orders, members, posts), the order log, and the reads the
                handler and the timers make inside a unit of work;
- ``queries`` — the read side for the HTTP queries and the metrics gauge.
"""
from . import queries, store

__all__ = ["queries", "store"]
