#!/usr/bin/env bash
# Submit consumer/count_logins.py with the Kafka connector that matches the Spark running it.
#
#   consumer/submit.sh [JOB FLAGS...]      e.g. consumer/submit.sh --trigger available-now
#   consumer/submit.sh --prepare           only resolve the connector and record Spark's
#                                          classes (both happen once, on the first start)
#
# The same script runs on the host (pyspark from pip) and inside the Bitnami Spark
# container (`make submit`). Environment:
#   CONSUMER_SPARK_MASTER  where to run: local[*] (default) or spark://host:7077. (Not
#                        SPARK_MASTER: Spark's own daemon scripts read that name as an rsync source.)
#   SPARK_HOME           Spark to use; default: the pyspark importable by python3
#   SPARK_IVY_DIR        Ivy home: its cache holds the connector's jars (default: Spark's, ~/.ivy2.5.2)
#   SPARK_DRIVER_MEMORY  driver memory (default 1g)
#   SPARK_EXECUTOR_MEMORY  executor memory on a cluster (default: Spark's, 1g)
#   SPARK_SUBMIT_EXTRA   extra spark-submit options, split on spaces
#   CONSUMER_CLASS_ARCHIVE  off: no class data sharing archive (see below; default on)
#   CONSUMER_PYTHONPATH  folders put first on the Python driver's PYTHONPATH (the Docker stack
#                        mounts SQLAlchemy and pg8000 there: the Spark image has neither)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

python="${PYSPARK_PYTHON:-python3}"
# pyspark is found without importing it (the import alone costs a part of a second).
if [[ -z "${SPARK_HOME:-}" ]]; then
  if ! SPARK_HOME="$("$python" -c 'import importlib.util as u; print(u.find_spec("pyspark").submodule_search_locations[0])' 2>/dev/null)"; then
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

# Resolving the connector (Ivy, what --packages does) costs seconds on every start, even
# with every jar cached. So it is resolved once, with the Ivy that Spark ships, into a list
# kept next to Ivy's cache; later starts hand Spark those jars with --jars. Jars Spark
# already has (same file name in $SPARK_HOME/jars) are left out. The list is per
# connector coordinate, so another Spark or Scala version resolves its own. If Ivy cannot
# resolve (no network and a cold cache, or a private mirror only Spark is configured
# for), --packages does it as before, with Spark's own error message.
ivy_home="${SPARK_IVY_DIR:-${HOME:+$HOME/.ivy2.5.2}}"
jar_list="${ivy_home:+$ivy_home/connector-jars/${connector//:/_}.txt}"

cached_jars() { # the remembered jars, comma-separated, if every one is still there
  local jar jars=()
  [[ -n "$jar_list" && -s "$jar_list" ]] || return 1
  while IFS= read -r jar || [[ -n "$jar" ]]; do
    [[ -f "$jar" ]] || return 1
    jars+=("$jar")
  done <"$jar_list"
  (IFS=,; echo "${jars[*]}")
}

resolve_connector() { # Ivy's classpath of the connector, minus what Spark has, into $jar_list
  local ivy java classpath jar
  local -a coordinate
  ivy="$(find "$SPARK_HOME/jars" -maxdepth 1 -name 'ivy-*.jar' -print -quit 2>/dev/null || true)"
  java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  [[ -n "$jar_list" && -n "$ivy" ]] && command -v "$java" >/dev/null || return 1
  mkdir -p "$(dirname "$jar_list")" || return 1
  classpath="$(mktemp "$jar_list.XXXXXX")"
  echo "spark-submit: resolving $connector once (Ivy cache $ivy_home/cache)..." >&2
  IFS=: read -r -a coordinate <<<"$connector"
  if ! "$java" -jar "$ivy" -dependency "${coordinate[@]}" -confs default \
    -cache "$ivy_home/cache" -cachepath "$classpath" >"$classpath.log" 2>&1; then
    rm -f "$classpath" "$classpath.log"
    return 1
  fi
  tr ":" "\n" <"$classpath" | while IFS= read -r jar || [[ -n "$jar" ]]; do
    [[ -n "$jar" && ! -e "$SPARK_HOME/jars/$(basename "$jar")" ]] && echo "$jar"
  done >"$classpath.list"
  rm -f "$classpath" "$classpath.log"
  mv "$classpath.list" "$jar_list"
}

if jars="$(cached_jars)" || { resolve_connector && jars="$(cached_jars)"; }; then
  connector_args=(--jars "$jars")
else
  connector_args=(--packages "$connector")
fi

# A local run listens on loopback only: Spark binds its UI (no authentication), the
# driver's RPC and the block manager to SPARK_LOCAL_IP, or else to every interface. On a
# cluster (spark://...) executors on other hosts must reach the driver, so that is left to
# the cluster's settings.
master="${CONSUMER_SPARK_MASTER:-local[*]}"
if [[ "$master" == local* ]]; then
  export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
fi
# A local master tries a failed task once; a cluster four times (spark.task.maxFailures).
# Three attempts let a task that reads Kafka wait for a broker that went away for as long as
# --kafka-retry-timeout (each attempt waits a third of it: consumer/options.py,
# kafka_retry_options). A master that names its own attempts (local[2,5]) is kept.
if [[ "$master" =~ ^local(\[([0-9]+|\*)\])?$ ]]; then
  master="local[${BASH_REMATCH[2]:-1},3]"
fi

# The job is a package (consumer/, and contract/ that it shares with the producer): zip
# both for --py-files, so the driver imports them wherever it runs.
work="$(mktemp -d "${TMPDIR:-/tmp}/count_logins.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" - "$here/.." "$work/job.zip" <<'PY'
import pathlib, sys, zipfile

root, target = pathlib.Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(target, "w") as archive:
    for package in ("consumer", "contract"):
        for path in sorted((root / package).glob("*.py")):
            archive.write(path, f"{package}/{path.name}")
PY

# Class data sharing (CDS): most of a start is the JVM loading Spark's classes one by one.
# Once per Spark install and Java, consumer/class_archive.py runs the job's query on a few
# events with -XX:ArchiveClassesAtExit, which records every class it loaded into an archive
# next to Ivy's cache; later starts map that archive (-XX:SharedArchiveFile) instead. The
# archive's name is keyed by the java binary and Spark's jars, so another Java or Spark
# records its own; the JVM also checks the archive itself and quietly ignores one that does
# not fit (-Xlog:cds=off). If recording fails, its log stays next to the archive and later
# starts go on without one. CONSUMER_CLASS_ARCHIVE=off turns all of this off.
java_options="-Dlog4j2.configurationFile=file:$here/log4j2.properties"
class_archive=""
if [[ "${CONSUMER_CLASS_ARCHIVE:-on}" != off && -n "$ivy_home" ]]; then
  java_bin="$(readlink -f "$(command -v "${JAVA_HOME:+$JAVA_HOME/bin/}java")" 2>/dev/null || true)"
  archive_key="$({ echo "$java_bin"; ls -l "$SPARK_HOME/jars"; } | cksum | cut -d" " -f1)"
  class_archive="$ivy_home/class-archives/spark-$spark_version-$archive_key.jsa"
fi

record_classes() { # run consumer/class_archive.py once, keeping the archive its JVM writes
  local recording="$class_archive.$$.tmp"
  mkdir -p "$(dirname "$class_archive")" || return 1
  echo "spark-submit: recording the classes Spark loads, once, so that later starts are faster (about half a minute)..." >&2
  if "$spark_submit" --master "local[*]" --py-files "$work/job.zip" \
    --conf "spark.driver.extraJavaOptions=$java_options -XX:ArchiveClassesAtExit=$recording" \
    "$here/class_archive.py" "$work/class-archive" >"$class_archive.log" 2>&1 && [[ -s "$recording" ]]; then
    mv "$recording" "$class_archive"
    rm -f "$class_archive.log"
  else
    rm -f "$recording"
    echo "spark-submit: could not record the classes (see $class_archive.log); starting without them." >&2
    return 1
  fi
}

wants_help=false # asking for the job's help should not wait half a minute for a recording
for arg in "$@"; do [[ "$arg" == -h || "$arg" == --help ]] && wants_help=true; done
if [[ -n "$class_archive" && ! -s "$class_archive" && ! -e "$class_archive.log" ]] && ! $wants_help; then
  record_classes || true
fi
if [[ -n "$class_archive" && -s "$class_archive" ]]; then
  java_options+=" -XX:SharedArchiveFile=$class_archive -Xlog:cds=off,cds+dynamic=off"
  classes="classes from $class_archive"
else
  classes="no class archive"
fi
if [[ "${1:-}" == --prepare ]]; then # resolve the connector and record the classes, no job
  exit 0
fi

args=(
  --master "$master"
  --name monthly_logins
  "${connector_args[@]}"
  --py-files "$work/job.zip"
  --driver-memory "${SPARK_DRIVER_MEMORY:-1g}"
  --conf "spark.driver.extraJavaOptions=$java_options"
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

echo "spark-submit: Spark $spark_version (Scala $scala_version) at $master, connector $connector (${connector_args[0]#--}), $classes" >&2
# Stopping: Ctrl-C (SIGINT to the whole foreground group) or SIGTERM to this script must end
# with the query stopped between batches, not with the JVM torn down under the Python
# driver (which prints Py4J tracebacks). So spark-submit runs in the background, where the
# shell leaves SIGINT ignored (the JVM then keeps running), and only the Python driver
# handles the signal: it stops the query and exits, and the JVM follows. A SIGTERM sent
# to this script alone is passed on to the driver. Before the driver has started there is
# nothing to stop cleanly, and the JVM is ended.
export CONSUMER_DRIVER_PID_FILE="$work/driver.pid"
# spark-submit hands PYTHONPATH on to the Python driver (after --py-files and pyspark).
if [[ -n "${CONSUMER_PYTHONPATH:-}" ]]; then
  export PYTHONPATH="$CONSUMER_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"
fi

"$spark_submit" "${args[@]}" "$here/count_logins.py" "$@" &
spark_pid=$!

stop() {
  local driver
  driver="$(cat "$CONSUMER_DRIVER_PID_FILE" 2>/dev/null || true)"
  if [[ -z "$driver" ]]; then
    kill -TERM "$spark_pid" 2>/dev/null || true
  elif [[ "$1" == TERM ]]; then
    kill -TERM "$driver" 2>/dev/null || true
  fi # SIGINT from a terminal reached the driver already: it is in this process group.
}
trap 'stop INT' INT
trap 'stop TERM' TERM

# `wait` returns early when a trapped signal arrives; wait again until spark-submit is done.
while true; do
  status=0
  wait "$spark_pid" || status=$?
  kill -0 "$spark_pid" 2>/dev/null || break
done
exit "$status"
