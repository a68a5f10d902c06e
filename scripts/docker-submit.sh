#!/usr/bin/env bash
# `make submit`: consumer/submit.sh inside the spark-master container, through the image's
# entrypoint (Bitnami's gives the container's uid a passwd entry, which Ivy and Hadoop need;
# apache/spark's passes the command on).
#
#   DC="docker compose -f ... -f ..." SPARK_ENTRYPOINT=/path/in/image scripts/docker-submit.sh [JOB FLAGS...]
#
# With a terminal, Ctrl-C travels through the container's terminal to the job, which stops
# its query cleanly. Without one (CI, a pipe, a service manager), `docker compose exec`
# does not pass signals on, so this script does: on SIGINT or SIGTERM it sends SIGTERM to
# submit.sh inside the container, which has the driver stop the query.
set -uo pipefail

read -r -a dc <<<"${DC:?DC must hold the docker compose command}"
job=("${SPARK_ENTRYPOINT:?SPARK_ENTRYPOINT must hold the path of the Spark image entrypoint}" /opt/pipeline/consumer/submit.sh "$@")

if [[ -t 0 && -t 1 ]]; then
  exec "${dc[@]}" exec spark-master "${job[@]}"
fi

# Its own process group (job control on), so a Ctrl-C aimed at this group does not end the
# Compose client (a Go program re-enables the SIGINT a shell ignores for background jobs)
# before the job in the container has stopped and printed where.
set -m
"${dc[@]}" exec -T spark-master "${job[@]}" &
child=$!
set +m
stop() {
  "${dc[@]}" exec -T spark-master pkill -TERM -f /opt/pipeline/consumer/submit.sh >/dev/null 2>&1 || true
}
trap stop INT TERM
while true; do
  status=0
  wait "$child" || status=$?
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
