"""``make bench-realtime``: what Spark's real-time mode gives the detector's stateless
pre-filter, against the same query with a 1 s micro-batch trigger, measured in one run.

    python -m bench.realtime             # full sizes (about 4 minutes); writes its section
                                         # of docs/PERFORMANCE.md
    python -m bench.realtime --smoke     # seconds-sized version, to a file of your choice

Real-time mode (``trigger(realTime=...)``) is in Spark 4.2 and later, the official images'
Spark, so this runs bench/realtime_query.py with .venv-newest's spark-submit (`make
venv-newest`) on a local broker. Both modes run the same query on the same master and
broker, with the producer at the same rate into a topic of their own (3 partitions). The
latency of a failed login is its event time (the producer's clock when it made it) to the
Kafka timestamp of its record on the output topic, the same measure as the detector's
alert latency in `make bench`; the first seconds of each run are left out (start-up and
the JVM compiling the query). Every failed login the producer sent in the measured part
must come out (counted from the input topic, not from the output).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.figures import Figure, quantile
from bench.topics import create_topic, read_records
from contract.alerts import parse_utc
from services.jars import IVY_HOME
from services.kafka import LocalKafka, free_port
from services.settings import NEWEST_FAMILY, PROJECT_ROOT, load_settings
from services.spark_submit import NEWEST_VENV, installed_pyspark

START = "<!-- realtime-bench: written by python -m bench.realtime; do not edit by hand -->"
END = "<!-- /realtime-bench -->"
QUERY = PROJECT_ROOT / "bench" / "realtime_query.py"
# Real-time mode runs one long-lived task per Kafka partition at once, so the master needs
# at least as many task slots as the topic's 3 partitions; the micro-batch run gets the same.
MASTER = "local[4]"


@dataclass
class Sizes:
    rate: int  # events/s from the producer
    warmup_s: int  # left out of the latencies
    measure_s: int


FULL = Sizes(rate=2_000, warmup_s=20, measure_s=60)
SMOKE = Sizes(rate=200, warmup_s=8, measure_s=10)


class BenchError(RuntimeError):
    """A run that could not be measured (said in one sentence)."""


def newest_spark() -> tuple[Path, str]:
    """.venv-newest's spark-submit and its Spark, the official images' (4.2 or later), or a
    BenchError that says what is missing."""
    version = load_settings().family(NEWEST_FAMILY).spark_version
    if tuple(int(part) for part in version.split(".")[:2]) < (4, 2):
        raise BenchError(f"the official images run Spark {version}; real-time mode needs 4.2")
    installed = installed_pyspark(NEWEST_VENV / "bin" / "python")
    if installed != version:
        raise BenchError(
            f"{NEWEST_VENV.name} has pyspark {installed or 'missing'}, not {version}: "
            "run `make venv-newest`"
        )
    return NEWEST_VENV / "bin" / "spark-submit", version


def failed_login_ids(records: list, since_ms: int) -> set[str]:
    """The event ids of the failed logins (with an address) made at or after ``since_ms``,
    read from the input records themselves: what the pre-filter must let through."""
    ids = set()
    for record in records:
        event = json.loads(record.value)
        made_ms = parse_utc(event["timestamp"]).timestamp() * 1000
        if event["success"] is False and event.get("ip_address") and made_ms >= since_ms:
            ids.add(event["event_id"])
    return ids


def run_mode(broker: LocalKafka, submit: list[str], mode: str, sizes: Sizes, work: Path) -> dict:
    """One run of the pre-filter in ``mode`` with ``submit`` (spark-submit and its options):
    its latencies past the warm-up, and how many of the failed logins sent in that time came
    out."""
    topic, out_topic = f"realtime-in-{mode}", f"realtime-out-{mode}"
    create_topic(broker, topic)
    create_topic(broker, out_topic)
    log = work / f"{mode}.log"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT),
           "PYSPARK_PYTHON": str(NEWEST_VENV / "bin" / "python")}  # fmt: skip
    seconds = sizes.warmup_s + sizes.measure_s
    with log.open("w") as out:
        query = subprocess.Popen(
            [*submit, str(QUERY), "--bootstrap-servers", broker.bootstrap_servers, "--topic", topic,
             "--output-topic", out_topic, "--checkpoint", str(work / f"{mode}-ck"),
             "--mode", mode, "--seconds", str(seconds + 180)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while "started" not in log.read_text():
            if query.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the {mode} query did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)  # poll interval, bounded by the deadline
        steady_ms = int((time.time() + sizes.warmup_s) * 1000)
        subprocess.run(
            [sys.executable, "-m", "producer", "--bootstrap-servers", broker.bootstrap_servers,
             "--topic", topic, "--rate", str(sizes.rate), "--duration", f"{seconds}s",
             "--progress", "none", "--seed", "7"],
            check=True, capture_output=True, timeout=seconds + 120,
        )  # fmt: skip
        expected = failed_login_ids(read_records(broker, topic), steady_ms)
        deadline = time.monotonic() + 60
        while True:
            out_records = read_records(broker, out_topic)
            seen = {json.loads(r.value)["event_id"]: r for r in out_records}
            if expected <= seen.keys():
                break
            if query.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"the {mode} query let {len(expected & seen.keys()):,} of "
                    f"{len(expected):,} failed logins through:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)  # poll interval, bounded by the deadline
    finally:
        query.terminate()
        try:
            query.wait(timeout=60)
        except subprocess.TimeoutExpired:
            query.kill()
    latencies = [
        (seen[event_id].timestamp - json.loads(seen[event_id].value)["event_ms"]) / 1000
        for event_id in expected
    ]
    return {"latencies": latencies, "expected": len(expected),
            "out": len(expected & seen.keys())}  # fmt: skip


def bench_realtime(sizes: Sizes, work: Path) -> list[Figure]:
    spark_submit, version = newest_spark()
    connector = load_settings().connector_for(version)
    submit = [str(spark_submit), "--master", MASTER, "--packages", connector,
              "--conf", f"spark.jars.ivy={IVY_HOME}"]  # fmt: skip
    broker = LocalKafka(home=work / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    try:
        realtime = run_mode(broker, submit, "realtime", sizes, work)
        micro = run_mode(broker, submit, "microbatch", sizes, work)
    finally:
        broker.stop()
    command = (f"producer --rate {sizes.rate} with bench/realtime_query.py on Spark "
               f"{version}, {MASTER}")  # fmt: skip

    def describe(run: dict) -> str:
        values = run["latencies"]
        return (f"p50 {quantile(values, 50):.3f} s, p95 {quantile(values, 95):.3f} s, p99 "
                f"{quantile(values, 99):.3f} s over {run['out']:,} of {run['expected']:,} "
                "failed logins")  # fmt: skip

    figures = []
    for q in (50, 95):
        figures.append(Figure(
            f"Pre-filter latency p{q}, real-time mode (live, {sizes.rate:,} events/s)",
            quantile(realtime["latencies"], q), "s", "the same query, 1 s micro-batch trigger",
            quantile(micro["latencies"], q), "(context)", None, command,
            f"real-time mode: {describe(realtime)}; micro-batch: {describe(micro)}; the "
            f"first {sizes.warmup_s} s of each run left out",
            higher_is_better=False,
        ))  # fmt: skip
    return figures


NOTES = """What the figures can and cannot say: the pre-filter is the part of the detector that
real-time mode can run (a filter and a projection, Kafka to Kafka). The detector's windows
of failed logins per address are an aggregation with state, and its ledger is a
`foreachBatch` sink; Spark 4.2's real-time mode takes neither, so the alerts themselves
still come from micro-batches (`make bench`, the alert latency). A pipeline that wants
the lower latency would run this pre-filter in real-time mode into a topic of failed
logins and the windows on that topic; the job does not, and its defaults do not depend on
real-time mode. Real-time mode holds one task slot per Kafka partition for as long as the
query runs (here 3 of the master's 4, on 2 cores)."""


def render(figures: list[Figure], sizes: Sizes, smoke: bool) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## Real-time mode for the detector's pre-filter (`make bench-realtime`)",
        "",
        f"Run: {when}{' (smoke sizes: not representative)' if smoke else ''}; "
        f"{os.cpu_count()} cores. Reproduce: `make bench-realtime`.",
        "",
        "| Figure | Value | Reference | Reference value | Ratio | Details |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.name} | {f.value:.3f} {f.unit} | {f.reference} | {f.reference_value:.3f} | "
            f"{f.ratio:.2f} | {f.detail} |"
        )
    lines += ["", NOTES, "", f"Sizes: {asdict(sizes)}. Command: `{figures[0].command}`.", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.realtime",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    from scripts.docker_report import write_section

    sizes = SMOKE if args.smoke else FULL
    work = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    try:
        figures = bench_realtime(sizes, work)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section = render(figures, sizes, args.smoke)
    write_section(args.output, section, START, END)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
