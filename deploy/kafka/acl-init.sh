#!/bin/sh
# Kafka principals and ACLs of the district: generated from schemas/topics.py by
#   python -m services.kit.kafkaacl > deploy/kafka/acl-init.sh
# Do not edit by hand (tests/deploy/test_kafka_acls.py checks it is up to date).
#
# Run by the kafka-init container (docker-compose.yml) as the super user `admin`, against a
# broker with StandardAuthorizer and allow.everyone.if.no.acl.found=false. Idempotent.
# Passwords come from the environment (KAFKA_PASSWORD_<PRINCIPAL>, from .env), never from this file.
set -eu
BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
BIN=/opt/kafka/bin
CONFIG=$(mktemp)
trap 'rm -f "$CONFIG"' EXIT
umask 077
cat > "$CONFIG" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${KAFKA_ADMIN_PASSWORD:?KAFKA_ADMIN_PASSWORD is not set}";
EOF

# user NAME PASSWORD_VARIABLE: create or update NAME's SCRAM-SHA-512 credential
user() {
  pw=$(printenv "$2") || { echo "$2 is not set (the password of $1)" >&2; exit 1; }
  [ -n "$pw" ] || { echo "$2 is empty (the password of $1)" >&2; exit 1; }
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --alter \
    --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[iterations=8192,password=$pw]" >/dev/null
  echo "principal $1"
}

# acl PRINCIPAL OPERATION topic|group|cluster literal|prefixed NAME: allow it (adding an ACL twice is a no-op)
acl() {
  case "$3" in
    topic) res="--topic $5" ;;
    group) res="--group $5" ;;
    cluster) res="--cluster" ;;
  esac
  # shellcheck disable=SC2086
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CONFIG" --add --force \
    --allow-principal "User:$1" --operation "$2" $res --resource-pattern-type "$4" >/dev/null
  echo "acl $1 $2 $3 $4 $5"
}

# -- principals (SCRAM-SHA-512)
user grid-service KAFKA_PASSWORD_GRID_SERVICE
user orders-service KAFKA_PASSWORD_ORDERS_SERVICE
user points-service KAFKA_PASSWORD_POINTS_SERVICE
user assessment-service KAFKA_PASSWORD_ASSESSMENT_SERVICE
user party-service KAFKA_PASSWORD_PARTY_SERVICE
user grid-app KAFKA_PASSWORD_GRID_APP
user other-system KAFKA_PASSWORD_OTHER_SYSTEM
user resident-app KAFKA_PASSWORD_RESIDENT_APP
user community-console KAFKA_PASSWORD_COMMUNITY_CONSOLE
user merchant KAFKA_PASSWORD_MERCHANT
user street-console KAFKA_PASSWORD_STREET_CONSOLE
user party-console KAFKA_PASSWORD_PARTY_CONSOLE
user provisioner KAFKA_PASSWORD_PROVISIONER
user monitor KAFKA_PASSWORD_MONITOR

# -- ACLs
acl assessment-service All topic prefixed assessment-service-
acl assessment-service Read group prefixed assessment-service
acl assessment-service Read topic literal assessment.dlq.v1
acl assessment-service Read topic literal assessment.events.v1
acl assessment-service Read topic literal assessment.intake.v1
acl assessment-service Read topic literal assessment.rejections.v1
acl assessment-service Read topic literal grid.events.v1
acl assessment-service Read topic literal orders.events.v1
acl assessment-service Read topic literal party.events.v1
acl assessment-service Read topic literal points.events.v1
acl assessment-service Write topic literal assessment.dlq.v1
acl assessment-service Write topic literal assessment.events.v1
acl assessment-service Write topic literal assessment.rejections.v1
acl community-console Write topic literal assessment.intake.v1
acl community-console Write topic literal orders.intake.v1
acl community-console Write topic literal party.intake.v1
acl community-console Write topic literal points.intake.v1
acl grid-app Write topic literal grid.intake.v1
acl grid-service All topic prefixed grid-service-
acl grid-service Read group prefixed grid-service
acl grid-service Read topic literal assessment.events.v1
acl grid-service Read topic literal grid.dlq.v1
acl grid-service Read topic literal grid.events.v1
acl grid-service Read topic literal grid.intake.v1
acl grid-service Read topic literal grid.rejections.v1
acl grid-service Read topic literal orders.events.v1
acl grid-service Read topic literal party.events.v1
acl grid-service Read topic literal points.events.v1
acl grid-service Write topic literal grid.dlq.v1
acl grid-service Write topic literal grid.events.v1
acl grid-service Write topic literal grid.rejections.v1
acl merchant Write topic literal points.intake.v1
acl monitor Describe cluster literal kafka-cluster
acl monitor Describe group prefixed assessment-service
acl monitor Describe group prefixed grid-service
acl monitor Describe group prefixed orders-service
acl monitor Describe group prefixed party-service
acl monitor Describe group prefixed points-service
acl monitor Describe topic prefixed assessment.
acl monitor Describe topic prefixed grid.
acl monitor Describe topic prefixed orders.
acl monitor Describe topic prefixed party.
acl monitor Describe topic prefixed points.
acl orders-service All topic prefixed orders-service-
acl orders-service Read group prefixed orders-service
acl orders-service Read topic literal assessment.events.v1
acl orders-service Read topic literal grid.events.v1
acl orders-service Read topic literal orders.dlq.v1
acl orders-service Read topic literal orders.events.v1
acl orders-service Read topic literal orders.intake.v1
acl orders-service Read topic literal orders.rejections.v1
acl orders-service Read topic literal party.events.v1
acl orders-service Read topic literal points.events.v1
acl orders-service Write topic literal orders.dlq.v1
acl orders-service Write topic literal orders.events.v1
acl orders-service Write topic literal orders.rejections.v1
acl other-system Write topic literal grid.intake.v1
acl party-console Write topic literal party.intake.v1
acl party-service All topic prefixed party-service-
acl party-service Read group prefixed party-service
acl party-service Read topic literal assessment.events.v1
acl party-service Read topic literal grid.events.v1
acl party-service Read topic literal orders.events.v1
acl party-service Read topic literal party.dlq.v1
acl party-service Read topic literal party.events.v1
acl party-service Read topic literal party.intake.v1
acl party-service Read topic literal party.rejections.v1
acl party-service Read topic literal points.events.v1
acl party-service Write topic literal party.dlq.v1
acl party-service Write topic literal party.events.v1
acl party-service Write topic literal party.rejections.v1
acl points-service All topic prefixed points-service-
acl points-service Read group prefixed points-service
acl points-service Read topic literal assessment.events.v1
acl points-service Read topic literal grid.events.v1
acl points-service Read topic literal orders.events.v1
acl points-service Read topic literal party.events.v1
acl points-service Read topic literal points.dlq.v1
acl points-service Read topic literal points.events.v1
acl points-service Read topic literal points.intake.v1
acl points-service Read topic literal points.rejections.v1
acl points-service Write topic literal points.dlq.v1
acl points-service Write topic literal points.events.v1
acl points-service Write topic literal points.rejections.v1
acl provisioner Create topic literal assessment.dlq.v1
acl provisioner Create topic literal assessment.events.v1
acl provisioner Create topic literal assessment.intake.v1
acl provisioner Create topic literal assessment.rejections.v1
acl provisioner Create topic literal grid.dlq.v1
acl provisioner Create topic literal grid.events.v1
acl provisioner Create topic literal grid.intake.v1
acl provisioner Create topic literal grid.rejections.v1
acl provisioner Create topic literal orders.dlq.v1
acl provisioner Create topic literal orders.events.v1
acl provisioner Create topic literal orders.intake.v1
acl provisioner Create topic literal orders.rejections.v1
acl provisioner Create topic literal party.dlq.v1
acl provisioner Create topic literal party.events.v1
acl provisioner Create topic literal party.intake.v1
acl provisioner Create topic literal party.rejections.v1
acl provisioner Create topic literal points.dlq.v1
acl provisioner Create topic literal points.events.v1
acl provisioner Create topic literal points.intake.v1
acl provisioner Create topic literal points.rejections.v1
acl provisioner Describe topic literal assessment.dlq.v1
acl provisioner Describe topic literal assessment.events.v1
acl provisioner Describe topic literal assessment.intake.v1
acl provisioner Describe topic literal assessment.rejections.v1
acl provisioner Describe topic literal grid.dlq.v1
acl provisioner Describe topic literal grid.events.v1
acl provisioner Describe topic literal grid.intake.v1
acl provisioner Describe topic literal grid.rejections.v1
acl provisioner Describe topic literal orders.dlq.v1
acl provisioner Describe topic literal orders.events.v1
acl provisioner Describe topic literal orders.intake.v1
acl provisioner Describe topic literal orders.rejections.v1
acl provisioner Describe topic literal party.dlq.v1
acl provisioner Describe topic literal party.events.v1
acl provisioner Describe topic literal party.intake.v1
acl provisioner Describe topic literal party.rejections.v1
acl provisioner Describe topic literal points.dlq.v1
acl provisioner Describe topic literal points.events.v1
acl provisioner Describe topic literal points.intake.v1
acl provisioner Describe topic literal points.rejections.v1
acl resident-app Write topic literal orders.intake.v1
acl resident-app Write topic literal points.intake.v1
acl street-console Write topic literal assessment.intake.v1
