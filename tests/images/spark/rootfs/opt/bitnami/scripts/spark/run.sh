#!/bin/bash
# Test stand-in for Bitnami's Spark run script: SPARK_MODE=master|worker, in the
# foreground through Spark's own sbin/spark-daemon.sh, as Bitnami's start-*.sh calls do.
set -euo pipefail

for flag in SPARK_RPC_AUTHENTICATION_ENABLED SPARK_RPC_ENCRYPTION_ENABLED \
  SPARK_LOCAL_STORAGE_ENCRYPTION_ENABLED SPARK_SSL_ENABLED; do
  if [[ "${!flag:-no}" == "yes" ]]; then
    echo "error: $flag=yes is not supported by this test image" >&2
    exit 1
  fi
done

export SPARK_NO_DAEMONIZE=true
daemon="$SPARK_HOME/sbin/spark-daemon.sh"
case "${SPARK_MODE:-master}" in
  master)
    exec "$daemon" start org.apache.spark.deploy.master.Master 1 \
      --host "$(hostname)" --port "${SPARK_MASTER_PORT:-7077}" \
      --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}"
    ;;
  worker)
    if [[ -z "${SPARK_MASTER_URL:-}" ]]; then
      echo "error: SPARK_MODE=worker needs SPARK_MASTER_URL" >&2
      exit 1
    fi
    exec "$daemon" start org.apache.spark.deploy.worker.Worker 1 \
      --webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}" "$SPARK_MASTER_URL"
    ;;
  *)
    echo "error: SPARK_MODE must be master or worker, not ${SPARK_MODE}" >&2
    exit 1
    ;;
esac
