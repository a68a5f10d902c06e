#!/bin/bash
# Run one Kafka main class on the jars in ../libs, as Kafka's kafka-run-class.sh does:
# KAFKA_HEAP_OPTS and KAFKA_OPTS from the environment, logging to stderr (slf4j-simple).
set -euo pipefail
main_class="$1"
shift
heap="${KAFKA_HEAP_OPTS:--Xmx256m}"
if [[ "$main_class" == kafka.Kafka ]]; then
  heap="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
fi
# shellcheck disable=SC2086 # the options are space-separated lists, as in Kafka's scripts
exec java $heap ${KAFKA_OPTS:-} -Djava.awt.headless=true \
  -Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn \
  -cp "$(dirname "$0")/../libs/*" "$main_class" "$@"
