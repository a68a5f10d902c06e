#!/usr/bin/env bash
# Submit consumer/monthly_logins.py with the Kafka connector that matches the Spark running it.
#
#   consumer/submit.sh [JOB FLAGS...]      e.g. consumer/submit.sh --trigger available-now
#
# The same script runs on the host (pyspark from pip) and inside the Bitnami Spark
# container (`make submit`). Environment:
#   SPARK_MASTER         where to run: local[*] (default) or spark://host:7077
#   SPARK_HOME           Spark to use; default: the pyspark importable by python3
#   SPARK_IVY_DIR        Ivy home for --packages (default: Spark's, ~/.ivy2.5.2)
#   SPARK_DRIVER_MEMORY  driver memory (default 1g)
#   SPARK_EXECUTOR_MEMORY  executor memory on a cluster (default: Spark's, 1g)
#   SPARK_SUBMIT_EXTRA   extra spark-submit options, split on spaces
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -z "${SPARK_HOME:-}" ]]; then
  python="${PYSPARK_PYTHON:-python3}"
  if ! SPARK_HOME="$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)"; then
    echo "error: no Spark found. Set SPARK_HOME, or install pyspark (make venv) and put its python3 on PATH." >&2
    exit 2
  fi
fi
spark_submit="$SPARK_HOME/bin/spark-submit"
if [[ ! -x "$spark_submit" ]]; then
  echo "error: $spark_submit not found or not executable (SPARK_HOME=$SPARK_HOME)." >&2
  exit 2
fi

# The connector must match Spark's own version and Scala binary version exactly, or the
# job dies with NoClassDefFoundError. Read both from the spark-core jar Spark runs on.
core_jar="$(find "$SPARK_HOME/jars" -maxdepth 1 -name 'spark-core_*.jar' -print -quit 2>/dev/null || true)"
if [[ ! "$(basename "${core_jar:-none}")" =~ ^spark-core_([0-9.]+)-([0-9][0-9A-Za-z.-]*)\.jar$ ]]; then
  echo "error: cannot tell the Spark version: no spark-core_<scala>-<version>.jar in $SPARK_HOME/jars." >&2
  exit 2
fi
scala_version="${BASH_REMATCH[1]}"
spark_version="${BASH_REMATCH[2]}"
connector="org.apache.spark:spark-sql-kafka-0-10_${scala_version}:${spark_version}"

args=(
  --master "${SPARK_MASTER:-local[*]}"
  --name monthly_logins
  --packages "$connector"
  --driver-memory "${SPARK_DRIVER_MEMORY:-1g}"
  --conf "spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:$here/log4j2.properties"
)
if [[ -n "${SPARK_EXECUTOR_MEMORY:-}" ]]; then
  args+=(--executor-memory "$SPARK_EXECUTOR_MEMORY")
fi
if [[ -n "${SPARK_IVY_DIR:-}" ]]; then
  args+=(--conf "spark.jars.ivy=$SPARK_IVY_DIR")
fi
if [[ -n "${SPARK_SUBMIT_EXTRA:-}" ]]; then
  read -r -a extra <<<"$SPARK_SUBMIT_EXTRA"
  args+=("${extra[@]}")
fi

echo "spark-submit: Spark $spark_version (Scala $scala_version) at ${SPARK_MASTER:-local[*]}, connector $connector" >&2
exec "$spark_submit" "${args[@]}" "$here/monthly_logins.py" "$@"
