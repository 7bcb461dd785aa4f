#!/bin/sh
# The broker's healthcheck (docker-compose.yml): an API-versions round trip as the super user,
# over the SASL listener every client uses.
set -eu
CONFIG=/tmp/healthcheck.properties
umask 077
cat > "$CONFIG" <<END
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${BROKER_ADMIN_PASSWORD:?}";
END
exec /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 --command-config "$CONFIG" >/dev/null 2>&1
