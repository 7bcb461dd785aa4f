"""Test support: real broker and database fixtures, Kafka helpers, service processes."""
