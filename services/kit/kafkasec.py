"""How the kit's Kafka clients authenticate and encrypt: one description, every client.

:class:`KafkaSecurity` is read from the ``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*`` and
``KAFKA_SSL_*`` settings (:meth:`ServiceSettings.kafka_security`). :func:`client_kwargs` turns it
into the keyword arguments of every aiokafka producer, consumer and admin client the kit and the
services make; :func:`faust_credentials` into the faust app's ``broker_credentials``. The
outbox relay, a child process, gets it as :meth:`KafkaSecurity.to_config` (in its environment,
like the database URL).

The password is a ``SecretStr``: it shows as ``**********`` in a repr, a log line or an error,
and is revealed only in the dict handed to the client.
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from . import kafkaclient

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaSecurity(BaseModel):
    """The security settings of a Kafka client, checked as a whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _check(self) -> "KafkaSecurity":
        if self.sasl:
            if not self.username:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs KAFKA_SASL_USERNAME")
            if self.password is None or not self.password.get_secret_value():
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs KAFKA_SASL_PASSWORD "
                                 "(or KAFKA_SASL_PASSWORD_FILE)")
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
        for name, value in (("KAFKA_SSL_CAFILE", self.cafile), ("KAFKA_SSL_CERTFILE", self.certfile),
                            ("KAFKA_SSL_KEYFILE", self.keyfile)):
            if value is None:
                continue
            if not self.tls:
                raise ValueError(f"{name} is set but KAFKA_SECURITY_PROTOCOL={self.protocol} does not use TLS "
                                 "(SSL or SASL_SSL)")
            if not Path(value).is_file():
                raise ValueError(f"{name}: no such file: {value}")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (server verified against the CA file, or the system's CAs; a client
        certificate when one is given), or None for a protocol without TLS."""
        if not self.tls:
            return None
        from aiokafka.helpers import create_ssl_context

        return create_ssl_context(cafile=self.cafile, certfile=self.certfile, keyfile=self.keyfile)

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form, password revealed: for a child process's environment only."""
        d = self.model_dump()
        d["password"] = self.password.get_secret_value() if self.password is not None else None
        return d

    @classmethod
    def from_config(cls, d: dict[str, Any] | None) -> "KafkaSecurity":
        return cls(**(d or {}))


PLAINTEXT = KafkaSecurity()


def from_env() -> KafkaSecurity:
    """The security settings in the environment (``KAFKA_SECURITY_PROTOCOL``...): for the tools
    that have no service settings of their own (the simulator, the recompute command)."""
    from .settings import ServiceSettings

    return ServiceSettings().kafka_security()


def client_kwargs(security: KafkaSecurity | None) -> dict[str, Any]:
    """aiokafka keyword arguments (``security_protocol``, ``ssl_context``, ``sasl_*``) for a
    producer, consumer or admin client. ``None`` means PLAINTEXT (:mod:`.kafkaclient` maps it)."""
    return kafkaclient.client_kwargs(security)


def faust_credentials(security: KafkaSecurity | None):
    """The faust app's ``broker_credentials``: ``None`` (PLAINTEXT), ``SSLCredentials`` or
    ``SASLCredentials`` (over TLS when the protocol is SASL_SSL)."""
    security = security or PLAINTEXT
    if security.protocol == "PLAINTEXT":
        return None
    from faust.auth import SASLCredentials, SSLCredentials

    if security.protocol == "SSL":
        return SSLCredentials(security.ssl_context())
    assert security.password is not None
    return SASLCredentials(username=security.username, password=security.password.get_secret_value(),
                           ssl_context=security.ssl_context(), mechanism=security.mechanism)
