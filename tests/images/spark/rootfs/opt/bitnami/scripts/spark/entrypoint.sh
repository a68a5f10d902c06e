#!/bin/bash
# Test stand-in for Bitnami's Spark entrypoint. Like Bitnami's, it gives the container's
# uid (1001, no passwd entry) a user through nss_wrapper, for whatever command it runs:
# without one, Hadoop's login and Ivy's home directory fail.
set -euo pipefail

if ! getent passwd "$(id -u)" >/dev/null 2>&1; then
  NSS_WRAPPER_PASSWD="$(mktemp)"
  NSS_WRAPPER_GROUP="$(mktemp)"
  echo "spark:x:$(id -u):$(id -g):Spark:${SPARK_HOME}:/bin/false" >"$NSS_WRAPPER_PASSWD"
  echo "spark:x:$(id -g):" >"$NSS_WRAPPER_GROUP"
  LD_PRELOAD="$(ls /usr/lib/*/libnss_wrapper.so | head -n 1)"
  export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP LD_PRELOAD
fi

exec "$@"
