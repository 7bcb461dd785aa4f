"""Kafka security settings -> the kwargs of every aiokafka client and faust's broker_credentials."""
from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from services.kit import kafkasec
from services.kit.kafkasec import MECHANISMS, PROTOCOLS, KafkaSecurity, client_kwargs, faust_credentials
from services.kit.settings import ServiceSettings

PASSWORD = "pa55-w0rd-that-must-not-show"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, str]:
    """A CA and a client certificate signed by it (PEM files)."""
    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.timezone.utc)

    def cert(subject: str, key, issuer: str, issuer_key, ca: bool):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("test ca", ca_key, "test ca", ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    client = cert("grid-service", key, "test ca", ca_key, False)
    files = {"cafile": d / "ca.pem", "certfile": d / "client.pem", "keyfile": d / "client.key"}
    files["cafile"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["certfile"].write_bytes(client.public_bytes(serialization.Encoding.PEM))
    files["keyfile"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    return {k: str(v) for k, v in files.items()}


def security(protocol: str, mechanism: str = "SCRAM-SHA-512", pki: dict | None = None) -> KafkaSecurity:
    sasl = protocol.startswith("SASL")
    return KafkaSecurity(protocol=protocol, mechanism=mechanism, username="grid-service" if sasl else None,
                         password=SecretStr(PASSWORD) if sasl else None,
                         **(pki if pki and protocol in ("SSL", "SASL_SSL") else {}))


def test_plaintext_is_the_default_and_adds_nothing_but_the_protocol():
    assert client_kwargs(None) == {"security_protocol": "PLAINTEXT"}
    assert client_kwargs(ServiceSettings().kafka_security()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(None) is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_every_protocol_and_mechanism(protocol, mechanism, pki):
    kw = client_kwargs(security(protocol, mechanism, pki))
    assert kw["security_protocol"] == protocol
    if protocol in ("SSL", "SASL_SSL"):
        ctx = kw["ssl_context"]
        assert isinstance(ctx, ssl.SSLContext)
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert any(c["subject"] == ((("commonName", "test ca"),),) for c in ctx.get_ca_certs())
    else:
        assert "ssl_context" not in kw
    if protocol.startswith("SASL"):
        assert kw["sasl_mechanism"] == mechanism
        assert kw["sasl_plain_username"] == "grid-service" and kw["sasl_plain_password"] == PASSWORD
    else:
        assert not [k for k in kw if k.startswith("sasl")]
    # the kwargs are accepted by the clients themselves
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

    AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **kw)
    AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **kw)
    AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9", **kw)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_faust_gets_the_same_security(protocol, mechanism, pki):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    s = security(protocol, mechanism, pki)
    got = credentials_to_aiokafka_auth(faust_credentials(s))
    want = client_kwargs(s)
    assert got["security_protocol"] == want["security_protocol"]
    for k in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert got.get(k) == want.get(k)
    assert (got.get("ssl_context") is None) == (want.get("ssl_context") is None)


def test_the_runtime_gives_faust_the_credentials(monkeypatch):
    from services.kit.runtime import ServiceRuntime  # noqa: F401 (import check)

    s = security("SASL_PLAINTEXT", "SCRAM-SHA-256")
    creds = faust_credentials(s)
    assert type(creds).__name__ == "SASLCredentials" and creds.mechanism.value == "SCRAM-SHA-256"
    assert PASSWORD not in repr(creds)


def test_settings_read_the_environment_and_a_password_file(monkeypatch, tmp_path):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "orders-service")
    f = tmp_path / "password"
    f.write_text(PASSWORD + "\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(f))
    s = ServiceSettings()
    assert s.kafka_sasl_password.get_secret_value() == PASSWORD  # one trailing newline dropped
    kw = client_kwargs(s.kafka_security())
    assert kw == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                  "sasl_plain_username": "orders-service", "sasl_plain_password": PASSWORD}
    # the variable wins over the file
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-the-variable")
    assert ServiceSettings().kafka_security().password.get_secret_value() == "from-the-variable"
    # the tools without settings of their own read the same variables
    assert client_kwargs(kafkasec.from_env())["sasl_plain_password"] == "from-the-variable"


def test_a_missing_password_file_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD_FILE"):
        ServiceSettings()


@pytest.mark.parametrize("kw, message", [
    ({"protocol": "SASL_PLAINTEXT"}, "needs KAFKA_SASL_USERNAME"),
    ({"protocol": "SASL_SSL", "username": "u"}, "needs KAFKA_SASL_PASSWORD"),
    ({"protocol": "SASL_SSL", "username": "u", "password": ""}, "needs KAFKA_SASL_PASSWORD"),
    ({"protocol": "SSL", "cafile": "/no/such/ca.pem"}, "KAFKA_SSL_CAFILE: no such file"),
    ({"protocol": "PLAINTEXT", "cafile": __file__}, "does not use TLS"),
    ({"protocol": "SASL_PLAINTEXT", "username": "u", "password": "p", "certfile": __file__}, "does not use TLS"),
    ({"protocol": "SSL", "keyfile": __file__}, "KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE"),
    ({"protocol": "SASL_SSL", "mechanism": "GSSAPI", "username": "u", "password": "p"}, "mechanism"),
    ({"protocol": "TLS"}, "protocol"),
])
def test_wrong_combinations_are_refused(kw, message):
    with pytest.raises(ValidationError, match=message):
        KafkaSecurity(**kw)


def test_settings_refuse_a_wrong_combination_at_start(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        ServiceSettings()


def test_the_password_never_shows(monkeypatch, caplog, pki):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "points-service")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_SSL_CAFILE", pki["cafile"])
    s = ServiceSettings()
    sec = s.kafka_security()
    for text in (repr(s), str(s), repr(sec), str(sec), str(sec.model_dump()), s.model_dump_json(), sec.model_dump_json()):
        assert PASSWORD not in text
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings %s %r", s, sec)
    assert PASSWORD not in caplog.text
    # an error about another field does not echo the password either
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", "/no/such/cert.pem")
    with pytest.raises(ValidationError) as e:
        ServiceSettings()
    assert PASSWORD not in str(e.value)


def test_the_relay_process_config_round_trips(pki):
    s = security("SASL_SSL", "SCRAM-SHA-512", pki)
    back = KafkaSecurity.from_config(s.to_config())
    assert back == s
    assert client_kwargs(back)["sasl_plain_password"] == PASSWORD
    assert KafkaSecurity.from_config(None) == KafkaSecurity()


async def test_every_client_the_kit_makes_takes_the_security(monkeypatch):
    """producer_for, the batch consumer, provisioning, the relay process and the simulator pass
    the security kwargs to aiokafka."""
    from services.kit import outbox, relay

    s = security("SASL_PLAINTEXT", "SCRAM-SHA-512")
    p = outbox.producer_for("127.0.0.1:9", "t", s)
    assert p.client._security_protocol == "SASL_PLAINTEXT" and p.client._sasl_plain_password == PASSWORD
    rp = relay.RelayProcess(service="grid", dsn="postgresql://x", bootstrap="127.0.0.1:9", batch=1,
                            poll_seconds=1.0, security=s)
    assert KafkaSecurity.from_config(rp._config["kafka_security"]) == s

    from services.simulator.client import CommandClient

    assert CommandClient("127.0.0.1:9", security=s).security == s
    src = (Path(__file__).resolve().parents[3] / "services").rglob("*.py")
    for path in src:
        text = path.read_text()
        for cls in ("AIOKafkaProducer(", "AIOKafkaConsumer(", "AIOKafkaAdminClient("):
            for chunk in text.split(cls)[1:]:  # each construction: the kwargs are in its first lines
                assert "client_kwargs(" in chunk[:800], f"{path}: an {cls[:-1]} without the Kafka security kwargs"


def test_the_relay_process_maps_its_security_without_pydantic(pki):
    """The relay child takes the parent's checked configuration and imports no pydantic (its
    memory counts in every worker's); the mapping is the one every other client gets."""
    import subprocess
    import sys

    from services.kit.kafkaclient import kwargs_from_config

    code = "import sys, services.kit.relay; sys.exit('pydantic' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[3]).returncode == 0
    s = security("SASL_SSL", "SCRAM-SHA-256", pki)
    mapped, direct = kwargs_from_config(s.to_config()), client_kwargs(s)
    assert {k: v for k, v in mapped.items() if k != "ssl_context"} == {k: v for k, v in direct.items() if k != "ssl_context"}
    assert mapped["sasl_plain_password"] == PASSWORD and mapped["ssl_context"] is not None
