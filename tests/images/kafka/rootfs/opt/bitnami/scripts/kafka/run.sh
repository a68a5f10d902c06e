#!/bin/bash
# Test stand-in for Bitnami's Kafka 4.0 setup + run scripts (written after reading them):
#  - server.properties is written once, from KAFKA_CFG_<NAME> -> <name> (lowercase, "_" -> ".")
#    with log.dirs=/bitnami/kafka/data unless given;
#  - KRaft storage is formatted on every start with --ignore-formatted, the cluster id from
#    KAFKA_CLUSTER_ID / KAFKA_KRAFT_CLUSTER_ID, the existing meta.properties, or a new one;
#    a controller gets kraft.version=1 and --no-initial-controllers (static voters), as 4.0 does;
#  - then kafka-server-start.sh runs in the foreground with KAFKA_HEAP_OPTS.
set -euo pipefail

conf_dir=/opt/bitnami/kafka/config
conf_file="$conf_dir/server.properties"
data_dir=/bitnami/kafka/data

if [[ ! -f "$conf_file" ]]; then
  [[ -n "${KAFKA_CFG_PROCESS_ROLES:-}" && -n "${KAFKA_CFG_NODE_ID:-}" ]] || {
    echo "error: KAFKA_CFG_PROCESS_ROLES and KAFKA_CFG_NODE_ID are required" >&2
    exit 1
  }
  if [[ "$KAFKA_CFG_PROCESS_ROLES" == *controller* && -z "${KAFKA_CFG_CONTROLLER_QUORUM_VOTERS:-}" ]]; then
    echo "error: a controller needs KAFKA_CFG_CONTROLLER_QUORUM_VOTERS" >&2
    exit 1
  fi
  {
    [[ -n "${KAFKA_CFG_LOG_DIRS:-}" ]] || echo "log.dirs=$data_dir"
    for var in "${!KAFKA_CFG_@}"; do
      key="${var#KAFKA_CFG_}"
      key="${key,,}"
      echo "${key//_/.}=${!var}"
    done
  } >"$conf_file"
fi

cluster_id="${KAFKA_CLUSTER_ID:-${KAFKA_KRAFT_CLUSTER_ID:-}}"
if [[ -z "$cluster_id" && -f "$data_dir/meta.properties" ]]; then
  cluster_id="$(sed -n 's/^cluster.id=//p' "$data_dir/meta.properties")"
fi
if [[ -z "$cluster_id" ]]; then
  cluster_id="$(kafka-storage.sh random-uuid)"
fi
format=(--config "$conf_file" --ignore-formatted "--cluster-id=$cluster_id")
if [[ "$KAFKA_CFG_PROCESS_ROLES" == *controller* ]]; then
  format+=("--feature=kraft.version=1" --no-initial-controllers)
fi
kafka-storage.sh format "${format[@]}"

exec kafka-server-start.sh "$conf_file"
