"""The party service's PostgreSQL tables: organisation rows (state jsonb + query columns), their
history, members' current organisation, coverage gaps, and the read queries. All SQL of the
service lives in this package.

- ``store``   — the organisation store, the org log, and the reads the handler and the timers
                make inside a unit of work;
- ``queries`` — the read side for the HTTP queries and the metrics gauges.
"""
from . import queries, store

__all__ = ["queries", "store"]
