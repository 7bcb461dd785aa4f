"""The service kit: what every service uses once (settings, database, migrations, inbox,
outbox relay, batch consumer, dead letters, HTTP, metrics, logging, embedded infrastructure)."""
