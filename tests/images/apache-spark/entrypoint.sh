#!/bin/bash
# Test stand-in for apache/spark's /opt/entrypoint.sh, written after reading it
# (apache/spark-docker, <version>/scala2.13-java17-ubuntu/entrypoint.sh): `driver` and
# `executor` start Spark on Kubernetes (not implemented here: the compose files do not use
# them); any other command runs as given ("pass-through mode"), without the fake passwd
# entry those two set up. The image's user, spark, has a passwd entry of its own.
set -eo pipefail

case "${1:-}" in
  driver | executor)
    echo "stand-in: Spark on Kubernetes ($1) is not implemented" >&2
    exit 1
    ;;
  *)
    exec "$@"
    ;;
esac
