"""``--steps drain``: the job draining a backlog next to the minimal tutorial job."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.figures import Figure, Sizes
from bench.probes import kafka_tool
from bench.spark_runs import (
    MINIMAL_STAGES,
    OUR_STAGES,
    SPARK_DEFAULT_PARTITIONS,
    SparkRun,
    connector_jars,
    console_total,
    job_partitions,
    minimal_job,
    our_job,
    stage_profile,
)
from bench.topics import ensure_topic, run_producer
from contract.tables import DEFAULT_PERIOD, PERIODS, read_counts
from services.kafka import LocalKafka
from services.spark_submit import prepare_submit


def bench_drain(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    """The job and the minimal tutorial job, alternated on one topic; medians of the rounds.

    The reference runs at the job's own shuffle partitions (equal settings); its run with
    Spark's default 200 is context. Alternating spreads the machine's noise over all of
    them. Every run's count is checked: each must count every event sent.
    """
    topic = ensure_topic(broker, "bench-drain", sizes.drain, work)
    # The connector resolved and Spark's classes recorded (both once, on a first start)
    # before any clock runs, as a second start finds them.
    connector_jars()
    prepare_submit()
    start_topic = "bench-start"  # start-up without the class archive: a small topic will do
    run_producer(broker, start_topic, 1_000, "kafka-python", work)
    partitions = job_partitions()
    runs: dict[str, list[SparkRun]] = {
        name: [] for name in ("minimal", "ours", "no-dedupe", "minimal-200", "no-db", "no-archive")
    }

    def run(name: str, round_: int) -> SparkRun:
        # The last round's event logs give the profile; logging costs both jobs alike.
        log = work / f"events-{name}" if round_ == sizes.rounds - 1 else None
        if name == "minimal":
            return minimal_job(broker, topic, work / f"minimal-{round_}", partitions, log)
        if name == "minimal-200":
            return minimal_job(broker, topic, work / f"minimal200-{round_}",
                               SPARK_DEFAULT_PARTITIONS)  # fmt: skip
        if name == "ours":
            return our_job(broker, topic, work / f"drain-{round_}", event_log=log)
        if name == "no-dedupe":
            return our_job(broker, topic, work / f"nodedupe-{round_}", "--dedupe-window", "0")
        if name == "no-db":
            return our_job(broker, topic, work / f"nodb-{round_}", "--db-url", "off")
        return our_job(broker, start_topic, work / f"noarchive-{round_}",
                       env={"CONSUMER_CLASS_ARCHIVE": "off"})  # fmt: skip

    for round_ in range(sizes.rounds):
        # Every other round in reverse, so that no job always runs right after the same one
        # (the JVM that just exited, what the broker's page cache holds).
        for name in runs if round_ % 2 == 0 else reversed(runs):
            runs[name].append(run(name, round_))
        for name in ("drain", "nodedupe", "nodb"):
            _, counts = read_counts(
                work / f"{name}-{round_}-out" / PERIODS[DEFAULT_PERIOD].csv_name
            )
            counted = sum(logins for logins, _, _ in counts.values())
            assert counted == sizes.drain, f"{name}: the job counted {counted:,} of {sizes.drain:,}"
        for name in ("minimal", "minimal-200"):
            counted = console_total(runs[name][-1].stdout)
            assert counted == sizes.drain, f"{name}: counted {counted:,} of {sizes.drain:,}"
    output = kafka_tool("org.apache.kafka.tools.ConsumerPerformance",
                        "--bootstrap-server", broker.bootstrap_servers, "--topic", topic,
                        "--messages", str(sizes.drain), "--timeout", "60000")  # fmt: skip
    header, values = [line for line in output.splitlines() if line.strip()][-2:]
    columns = dict(zip([h.strip() for h in header.split(",")],
                       [v.strip() for v in values.split(",")], strict=False))  # fmt: skip
    ceiling = float(columns["nMsg.sec"])

    def rate(name: str) -> float:
        return sizes.drain / statistics.median(r.query_s for r in runs[name])

    def ratios(name: str, reference: str) -> str:
        each = [b.query_s / a.query_s for a, b in zip(runs[name], runs[reference], strict=True)]
        return ", ".join(f"{r:.2f}" for r in each)

    def start(name: str) -> float:
        return statistics.median(r.start_s for r in runs[name])

    median = f"median of {sizes.rounds} alternated runs"
    checked = f"counts checked ({sizes.drain:,}) in every run of both"
    equal = (f"minimal tutorial Spark job (bench/minimal_job.py), same topic, at the job's "
             f"{partitions} shuffle partitions")  # fmt: skip
    our_cpu, our_stages = stage_profile(work / "events-ours", OUR_STAGES)
    minimal_cpu, minimal_stages = stage_profile(work / "events-minimal", MINIMAL_STAGES)
    command = f"consumer/submit.sh --topic {topic} --trigger available-now"
    return [Figure(
        "Spark job drain vs the minimal job at equal settings (deduplication on)", rate("ours"),
        "events/s", equal, rate("minimal"), ">= 1.0 x reference (floor 0.8)",
        rate("ours") >= rate("minimal"), command,
        f"{sizes.drain:,} events, session start excluded; {median} (ratio per round: "
        f"{ratios('ours', 'minimal')}); {checked}",
    ), Figure(
        "Spark job drain vs the minimal job at equal settings (--dedupe-window 0)",
        rate("no-dedupe"), "events/s", equal, rate("minimal"),
        ">= 1.2 x reference (floor 1.0)", rate("no-dedupe") >= 1.2 * rate("minimal"),
        command + " --dedupe-window 0",
        f"{median} (ratio per round: {ratios('no-dedupe', 'minimal')}); {checked}",
    ), Figure(
        "Spark job drain (available-now, deduplication on), session start excluded",
        rate("ours"), "events/s",
        f"(context) the same minimal job with Spark's default {SPARK_DEFAULT_PARTITIONS} "
        "shuffle partitions, which the tutorial job runs with", rate("minimal-200"),
        "(context)", None, command,
        f"{median} (ratio per round: {ratios('ours', 'minimal-200')}); {checked}; the "
        f"{SPARK_DEFAULT_PARTITIONS} partitions' state-store tasks are what this "
        "reference loses its time to",
    ), Figure(
        "Spark job drain vs Kafka's tool (raw-read ceiling)", rate("ours"), "events/s",
        "kafka-consumer-perf-test on the same topic", ceiling, "(context)", None, command,
        f"the minimal Spark job at equal settings reaches {rate('minimal') / ceiling:.2f} of it",
    ), Figure(
        "Spark job drain: task CPU time (profile from Spark's event log)", our_cpu, "s",
        f"the minimal tutorial Spark job's task CPU time ({partitions} partitions)",
        minimal_cpu, "(context)", None, command,
        f"ours: {our_stages}. Minimal job: {minimal_stages}",
        higher_is_better=False,
    ), Figure(
        "Spark job drain with the database (default SQLite) vs without", rate("ours"),
        "events/s", "the same job with --db-url off", rate("no-db"), ">= 0.95 x reference",
        rate("ours") >= 0.95 * rate("no-db"), command + " --db-url off", median,
    ), Figure(
        "Start-up: spark-submit to the first batch", start("ours"), "s",
        "minimal tutorial Spark job given its jars (--jars)", start("minimal"),
        "<= reference + 0.5 s", start("ours") <= start("minimal") + 0.5, command,
        f"{median}; the connector's jars from the list Ivy resolved once; Spark's classes "
        "from the class archive recorded once",
        higher_is_better=False,
    ), Figure(
        "Start-up without the class archive (CONSUMER_CLASS_ARCHIVE=off)", start("no-archive"),
        "s", "minimal tutorial Spark job given its jars (--jars)", start("minimal"),
        "(context)", None, f"CONSUMER_CLASS_ARCHIVE=off {command}",
        f"{median} (on a 1,000-event topic: start-up ends when the first batch is planned)",
        higher_is_better=False,
    )]  # fmt: skip
