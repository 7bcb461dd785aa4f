"""Settings from the environment (pydantic-settings).

Infrastructure addresses are shared by every service and read without a prefix
(``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``TOPIC_PARTITIONS``...); everything else is read
with the service's prefix (``GRID_HTTP_PORT``, ``ORDERS_ACCEPT_WINDOW_SECONDS``...). Secrets are
``SecretStr`` and there are no default passwords.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


DEFAULT_JWT_ISSUER = "http://127.0.0.1:8080/realms/grassroots"
"""The issuer tokens are checked against unless ``JWT_ISSUER`` says otherwise: a Keycloak realm
``grassroots`` on the local machine (deploy/keycloak/), and the issuer of the tokens that
``python -m services.kit.devidentity`` mints."""
DEFAULT_JWT_AUDIENCE = "grassroots-platform"
"""The audience every service expects in a token (the realm's client id)."""
DEFAULT_JWT_ALGORITHMS = "RS256,ES256"
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})
"""The signature algorithms a verifier may be told to accept: public-key ones only (an HMAC
algorithm would let anyone holding the JWKS, which is public, sign tokens)."""


def _shared(name: str, default, **kw):
    return Field(default, validation_alias=AliasChoices(name), **kw)


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``env_prefix`` (``GRID_``...) and add their own."""

    model_config = SettingsConfigDict(env_prefix="SVC_", extra="ignore", populate_by_name=True)

    # -- shared, unprefixed -------------------------------------------------------------
    kafka_bootstrap_servers: str = _shared("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092",
                                           description="Kafka bootstrap servers, comma separated")
    kafka_session_timeout_ms: int = _shared(
        "KAFKA_SESSION_TIMEOUT_MS", 10_000, ge=3_000, le=300_000,
        description="consumer group session timeout of every consumer (the kit's and faust's): a worker that sends no "
                    "heartbeat for this long loses its partitions to the others. A group forms in half of it on the "
                    "embedded broker, so it also bounds how fast a worker starts")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _shared(
        "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", description="how every Kafka client connects: PLAINTEXT, SSL (TLS), "
        "SASL_PLAINTEXT or SASL_SSL (SASL authentication, over TLS for SASL_SSL)")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = _shared(
        "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", description="SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_sasl_username: str | None = _shared("KAFKA_SASL_USERNAME", None,
                                              description="the SASL principal (needed by SASL_PLAINTEXT and SASL_SSL)")
    kafka_sasl_password: SecretStr | None = _shared("KAFKA_SASL_PASSWORD", None, description="the SASL password")
    kafka_sasl_password_file: str | None = _shared(
        "KAFKA_SASL_PASSWORD_FILE", None, description="a file holding the SASL password (a Kubernetes or compose "
        "secret); read when KAFKA_SASL_PASSWORD is not set, one trailing newline dropped")
    kafka_ssl_cafile: str | None = _shared("KAFKA_SSL_CAFILE", None,
                                           description="CA bundle the brokers' certificates are verified against "
                                           "(default: the system's)")
    kafka_ssl_certfile: str | None = _shared("KAFKA_SSL_CERTFILE", None, description="client certificate (PEM), for mutual TLS")
    kafka_ssl_keyfile: str | None = _shared("KAFKA_SSL_KEYFILE", None, description="the client certificate's private key (PEM)")
    database_url: SecretStr | None = _shared("DATABASE_URL", None, description="PostgreSQL URL (postgresql://user:pw@host:port/db) "
                                             "the service works as: its runtime role (<svc>_app, data-only grants)")
    migration_database_url: SecretStr | None = _shared(
        "MIGRATION_DATABASE_URL", None, description="PostgreSQL URL the migrations run as: the service's owner role "
        "(<svc>_owner, see services/kit/dbroles.py); unset: DATABASE_URL's")
    kafka_max_record_bytes: int = _shared(
        "KAFKA_MAX_RECORD_BYTES", 1_000_000, ge=100_000, le=100 * 1024 * 1024,
        description="the largest record (key + value + headers) a service produces or accepts: an event over it is "
                    "refused where it is made (its command dead-lettered `record_too_large`, or 413 over HTTP), a "
                    "consumed record over it is dead-lettered `record_too_large` with its first 64 KiB. Keep it under "
                    "the broker's message.max.bytes (1048588 by default on Kafka)")
    topic_partitions: int = _shared("TOPIC_PARTITIONS", 12, ge=1, le=1000, description="partitions of each topic when provisioned")
    topic_replication_factor: int = _shared("TOPIC_REPLICATION_FACTOR", 1, ge=1, le=10, description="replication factor when provisioned")
    log_level: str = _shared("LOG_LEVEL", "info", description="debug | info | warning | error")
    log_format: str = _shared("LOG_FORMAT", "json", description="json (structured) | text")
    sim_clock_start: datetime | None = _shared(
        "SIM_CLOCK_START", None, description="simulation only: first instant of the first simulated month; "
        "set (by make run) to put every worker on one stepped calendar (services/kit/clock.py)")
    sim_clock_real_start: float | None = _shared("SIM_CLOCK_REAL_START", None,
                                                 description="simulation only: Unix time at which SIM_CLOCK_START's month began")
    sim_month_seconds: float = _shared("SIM_MONTH_SECONDS", 120.0, ge=0, le=7 * 86400,
                                       description="simulation only: real seconds per simulated month")

    inbox_retention_days: float = _shared(
        "INBOX_RETENTION_DAYS", 30.0, ge=0, le=3650,
        description="days the inbox (ids of consumed messages) and the HTTP command outcomes are kept; a duplicate "
        "older than this is no longer recognised, so keep it beyond the topics' retention (0: for ever)")
    outbox_retention_days: float = _shared(
        "OUTBOX_RETENTION_DAYS", 14.0, ge=0, le=3650,
        description="days an outbox row the relay never got acknowledged is kept before it is deleted (0: for ever)")
    dlq_retention_days: float = _shared(
        "DLQ_RETENTION_DAYS", 14.0, ge=0, le=3650,
        description="retention.ms of the <service>.dlq.v1 topics when provisioned: dead letters hold raw records, "
        "personal data included (0: the broker's default)")
    retention_interval_seconds: float = _shared(
        "RETENTION_INTERVAL_SECONDS", 300.0, gt=0, le=86400, description="how often the retention timer runs")
    retention_batch: int = _shared("RETENTION_BATCH", 5000, ge=1, le=1_000_000,
                                   description="rows of each table the retention timer deletes at most per round")

    jwks: str | None = _shared(
        "JWKS", None, description="the identity provider's public keys (JWKS): a file path (re-read when it changes) "
        "or an https URL (e.g. Keycloak's /realms/<realm>/protocol/openid-connect/certs)")
    jwt_issuer: str = _shared("JWT_ISSUER", DEFAULT_JWT_ISSUER, min_length=1, description="the `iss` every token must carry")
    jwt_audience: str = _shared("JWT_AUDIENCE", DEFAULT_JWT_AUDIENCE, min_length=1,
                                description="the `aud` every token must name")
    jwt_leeway_seconds: float = _shared("JWT_LEEWAY_SECONDS", 30.0, ge=0, le=300,
                                        description="clock skew allowed when checking exp, nbf and iat")
    jwt_algorithms: str = _shared("JWT_ALGORITHMS", DEFAULT_JWT_ALGORITHMS,
                                  description="signature algorithms accepted, comma separated (public-key ones only)")
    intake_max_record_age_seconds: float = _shared(
        "INTAKE_MAX_RECORD_AGE_SECONDS", 3600.0, ge=0, le=30 * 86400,
        description="a command record whose timestamp was set by its producer (CreateTime) is refused "
        "(unauthenticated, record_too_old) when older than this on arrival: the token is checked as of that "
        "timestamp, so this is how long after its exp a token stays good on the intake topic. 0: no bound "
        "(only with a broker that stamps intake records itself, LogAppendTime)")
    event_time_max_skew_seconds: float = _shared(
        "EVENT_TIME_MAX_SKEW_SECONDS", 300.0, ge=0, le=86400,
        description="an event from another service whose event time (the envelope's time, or the payload's "
        "occurrence time where the consumer dates by it) is further than this from its record's timestamp is "
        "dead-lettered (implausible_time): caps and periods are dated by that time. 0: no bound")
    jwt_scope_claim: str = _shared("JWT_SCOPE_CLAIM", "scope", pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$",
                                   description="the claim holding the caller's area scope object")

    # -- per service, prefixed ----------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="address the HTTP server binds")
    http_port: int = Field(8000, ge=1, le=65535, description="HTTP port (/healthz, /readyz, /metrics, API)")
    http_max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                     description="largest request body accepted; a larger one is answered 413")
    consumer_group: str | None = Field(None, description="Kafka consumer group (default: <service>-service)")
    batch_max_records: int = Field(1000, ge=1, le=100_000, description="records fetched and committed per batch")
    consumer_lanes: int = Field(4, ge=1, le=16, description="concurrent transaction streams, each owning a share of the partitions")
    consumer_stall_seconds: float = Field(
        60.0, gt=0, le=86_400, description="/readyz fails (503) while a consumer's oldest batch has been retrying longer than this")
    fetch_max_wait_ms: int = Field(50, ge=5, le=10_000, description="broker wait for a fetch to fill")
    fetch_max_bytes: int = Field(
        2 * 1024 * 1024, ge=64 * 1024, le=64 * 1024 * 1024,
        description="most bytes a fetch brings (the records waiting in a worker's memory: a few batches' worth)")
    outbox_batch: int = Field(2000, ge=1, le=100_000, description="outbox rows the relay publishes per round")
    outbox_poll_seconds: float = Field(0.5, gt=0, description="relay poll when not woken by a commit")
    outbox_relay: Literal["process", "inline"] = Field(
        "process", description="where the outbox relay runs: a child process of the worker (another core) or the worker's own event loop")
    outbox_relay_stall_seconds: float = Field(
        10.0, gt=0, le=300, description="a relay round still waiting on the broker's acknowledgement (or the database) "
        "after this long counts as a relay failure, and again each time this passes (kit_outbox_relay_errors_total): "
        "the producer itself gives a send up only after 30 s")
    outbox_relay_nice: int = Field(
        10, ge=0, le=19, description="niceness the relay process adds to its own: while both are busy it yields the CPU to the batch consumer (0: the same priority)")
    provision_topics: bool = Field(True, description="create the contract topics at start-up")
    gc_gen0_threshold: int = Field(50_000, ge=0, le=10_000_000,
                                   description="CPython GC generation-0 threshold (0 keeps Python's default); start-up objects are frozen")
    db_pool_max: int = Field(10, ge=2, le=200, description="PostgreSQL pool size")

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"debug", "info", "warning", "error"}:
            raise ValueError("log level must be debug, info, warning or error")
        return v

    @field_validator("jwt_algorithms")
    @classmethod
    def _algorithms(cls, v: str) -> str:
        names = [a.strip() for a in v.split(",") if a.strip()]
        if not names:
            raise ValueError("name at least one signature algorithm")
        wrong = [a for a in names if a not in ASYMMETRIC_ALGORITHMS]
        if wrong:
            raise ValueError(f"not a public-key signature algorithm: {', '.join(wrong)} "
                             f"(one of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))})")
        return ",".join(names)

    @model_validator(mode="after")
    def _kafka(self) -> "ServiceSettings":
        if self.kafka_sasl_password is None and self.kafka_sasl_password_file:
            try:
                text = Path(self.kafka_sasl_password_file).read_text()
            except OSError as e:
                raise ValueError(f"KAFKA_SASL_PASSWORD_FILE: {e.strerror}: {self.kafka_sasl_password_file}") from None
            self.kafka_sasl_password = SecretStr(text[:-1] if text.endswith("\n") else text)
        self.kafka_security()  # the combination is checked now, not at the first connection
        return self

    def kafka_security(self):
        """The Kafka security settings as one checked object (:mod:`services.kit.kafkasec`)."""
        from .kafkasec import KafkaSecurity

        return KafkaSecurity(protocol=self.kafka_security_protocol, mechanism=self.kafka_sasl_mechanism,
                             username=self.kafka_sasl_username, password=self.kafka_sasl_password,
                             cafile=self.kafka_ssl_cafile, certfile=self.kafka_ssl_certfile,
                             keyfile=self.kafka_ssl_keyfile)

    def jwt_algorithm_list(self) -> tuple[str, ...]:
        return tuple(self.jwt_algorithms.split(","))

    def clock(self):
        """The clock these settings describe: the system clock unless ``SIM_CLOCK_START`` is set."""
        from . import clock

        return clock.from_settings(self.sim_clock_start, self.sim_clock_real_start, self.sim_month_seconds)

    def dsn(self) -> str:
        if self.database_url is None:
            raise RuntimeError("DATABASE_URL is not set (make run / the test fixtures set it for the embedded server)")
        return self.database_url.get_secret_value()

    def migration_dsn(self) -> str:
        """Where migrations run: ``MIGRATION_DATABASE_URL``, else ``DATABASE_URL``."""
        if self.migration_database_url is not None:
            return self.migration_database_url.get_secret_value()
        return self.dsn()
