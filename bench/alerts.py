"""``--steps alerts``: the credential-stuffing detector against the producer's own record of
the bursts it made (``--bursts-file``): precision and recall on the drain's backfill and on a
live run, detection latency live, and what the detector costs the drain."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.figures import Figure, Sizes, quantile
from bench.live import LIVE_TRIGGER, live_job, wait_until_counted
from bench.spark_runs import connector_jars, our_job
from bench.topics import bursts_file, ensure_topic, read_records
from consumer.options import ALERTS_CHECKPOINT, QUERY_CHECKPOINT
from contract.alerts import AlertRule, Score, parse_utc, score_alerts
from contract.tables import DEFAULT_DB_NAME, DEFAULT_PERIOD, PERIODS, read_counts
from producer.events import DEFAULT_ATTACK_PROBABILITY
from services.demo import read_alerts
from services.kafka import LocalKafka
from services.spark_submit import prepare_submit

MIN_ATTEMPTS = 20  # the bursts recall is measured on (smaller ones may stay under the rule)


def read_bursts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def drained_s(checkpoint: Path) -> float:
    """First batch planned -> the later of both queries' last commits (the detector's run
    ends when both have drained)."""
    planned = (checkpoint / QUERY_CHECKPOINT / "offsets" / "0").stat().st_mtime
    commits = [
        p.stat().st_mtime
        for query in (QUERY_CHECKPOINT, ALERTS_CHECKPOINT)
        for p in (checkpoint / query / "commits").iterdir()
        if p.name.isdigit()
    ]
    return max(commits) - planned


def topic_alerts(records: list) -> list[dict]:
    """The alerts topic's records as score_alerts takes them, with Kafka's timestamp."""
    alerts = []
    for record in records:
        value = json.loads(record.value)
        alerts.append({
            "address": value["address"],
            "window_start": parse_utc(value["window_start"]),
            "window_end": parse_utc(value["window_end"]),
            "published_ms": record.timestamp,
        })  # fmt: skip
    return alerts


def detection_latencies(
    alerts: list[dict], bursts: list[dict], window_s: int
) -> tuple[list[tuple[datetime, float]], int]:
    """Per burst of at least MIN_ATTEMPTS: its first event's time, and from it to the first
    alert on the topic that covers it (Kafka's timestamp of that record), in seconds; and
    how many bursts were left out because the same address had a burst in the window
    before (an alert covering both may have been the earlier one's)."""
    spans = [(b, parse_utc(b["first_event_time"]), parse_utc(b["last_event_time"])) for b in bursts]
    latencies, crowded = [], 0
    for burst, first, last in spans:
        if burst["attempts"] < MIN_ATTEMPTS:
            continue
        if any(other is not burst and other["address"] == burst["address"]
               and first - timedelta(seconds=window_s) <= end and begin <= last
               for other, begin, end in spans):  # fmt: skip
            crowded += 1
            continue
        covering = [a["published_ms"] for a in alerts if a["address"] == burst["address"]
                    and a["window_start"] <= last and first < a["window_end"]]  # fmt: skip
        if covering:
            latencies.append((first, min(covering) / 1000 - first.timestamp()))
    return latencies, crowded


def wait_for_first_commit(query_dir: Path, timeout_s: float) -> None:
    """Until the query has committed a batch (bounded): the clock starts once it runs."""
    deadline = time.monotonic() + timeout_s
    while not any((query_dir / "commits").glob("[0-9]*")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{query_dir.name}: no batch committed in {timeout_s:.0f} s")
        time.sleep(0.2)  # poll interval, bounded by the deadline


def quality(name: str, score: Score, command: str, where: str) -> list[Figure]:
    missed = ", ".join(f"{b['address']} ({b['attempts']} attempts)" for b in score.missed[:5])
    return [Figure(
        f"Alerts recall, bursts of {MIN_ATTEMPTS}+ attempts ({name})", score.recall, "",
        "target", 0.99, ">= 0.99", score.recall >= 0.99, command,
        f"{score.found} of {score.bursts} bursts the producer recorded had an alert {where}"
        + (f"; missed: {missed}" if missed else ""),
    ), Figure(
        f"Alerts precision ({name})", score.precision, "", "target", 0.99, ">= 0.99",
        score.precision >= 0.99, command,
        f"{score.true_alerts} of {score.alerts} alert windows overlap a recorded burst of "
        "their address",
    )]  # fmt: skip


def bench_alerts(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    """The drain's topic with and without the detector, alternated; then a live run."""
    topic = ensure_topic(broker, "bench-drain", sizes.drain, work)
    truth = read_bursts(bursts_file(work, topic))
    connector_jars()
    prepare_submit()
    plain: list[float] = []
    detecting: list[float] = []
    scores: list[Score] = []
    for round_ in range(sizes.rounds):
        plain.append(our_job(broker, topic, work / f"alerts-off-{round_}").query_s)
        files = work / f"alerts-on-{round_}"
        our_job(broker, topic, files, "--alerts-topic", f"bench-alerts-{round_}")
        detecting.append(drained_s(Path(f"{files}-ck")))
        scores.append(score_alerts(read_alerts(Path(f"{files}-out") / DEFAULT_DB_NAME), truth))
        for name in ("alerts-off", "alerts-on"):
            path = work / f"{name}-{round_}-out" / PERIODS[DEFAULT_PERIOD].csv_name
            counted = sum(logins for logins, _, _ in read_counts(path)[1].values())
            assert counted == sizes.drain, f"{name}: counted {counted:,} of {sizes.drain:,}"
    same = {(s.found, s.alerts, s.true_alerts) for s in scores}
    assert len(same) == 1, f"the detector's rounds disagree: {same}"
    drain_command = f"consumer/submit.sh --topic {topic} --trigger available-now"
    rate = lambda times: sizes.drain / statistics.median(times)  # noqa: E731
    figures = quality(f"backfill of {sizes.drain:,} events", scores[0],
                      drain_command + " --alerts-topic login-alerts",
                      "(the same in every round)")  # fmt: skip
    figures.append(Figure(
        "Spark job drain with the detector vs without", rate(detecting), "events/s",
        "the same job without --alerts-topic", rate(plain), "(context)", None,
        drain_command + " --alerts-topic login-alerts",
        f"median of {sizes.rounds} alternated runs (ratio per round: "
        + ", ".join(f"{p / d:.2f}" for p, d in zip(plain, detecting, strict=True))
        + "); with the detector, until both queries committed their last batch; counts "
        "checked in every run",
    ))  # fmt: skip
    return figures + live_alerts(broker, sizes, work)


def live_alerts(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    """The producer at ``sizes.latency_rate`` for ``sizes.warmup_s`` + ``sizes.latency_s``
    into a live job. A long-running detector is past its start; the first
    ``sizes.warmup_s`` (the JVM compiling the queries' code while they run) are reported
    apart, so both are seen and neither hides the other."""
    topic, alerts_topic = "bench-alerts-live", "bench-alerts-live-out"
    truth_file = bursts_file(work, topic)
    seconds = sizes.warmup_s + sizes.latency_s
    # The producer's own rate of bursts, or enough for ten in a short (smoke) run.
    attack = max(DEFAULT_ATTACK_PROBABILITY, 10 / (sizes.latency_rate * seconds))
    files = work / "alerts-live"
    with live_job(broker, topic, files, "--alerts-topic", alerts_topic) as query_dir:
        wait_for_first_commit(query_dir.parent / ALERTS_CHECKPOINT, timeout_s=120)
        steady_from = datetime.now(timezone.utc) + timedelta(seconds=sizes.warmup_s)
        subprocess.run(
            [sys.executable, "-m", "producer", "--bootstrap-servers", broker.bootstrap_servers,
             "--topic", topic, "--rate", str(sizes.latency_rate), "--duration", f"{seconds}s",
             "--progress", "none", "--seed", "5", "--attack-probability", str(attack),
             "--bursts-file", str(truth_file)],
            check=True, capture_output=True, timeout=seconds + 120,
        )  # fmt: skip
        wait_until_counted(broker, topic, query_dir, timeout_s=60)
        wait_until_counted(broker, topic, query_dir.parent / ALERTS_CHECKPOINT, timeout_s=60)
    truth = read_bursts(truth_file) if truth_file.exists() else []
    alerts = topic_alerts(read_records(broker, alerts_topic))
    timed, crowded = detection_latencies(alerts, truth, AlertRule().window_s)
    steady = [latency for first, latency in timed if first >= steady_from]
    start = [latency for first, latency in timed if first < steady_from]
    command = (f"producer --rate {sizes.latency_rate} --bursts-file F with consumer/submit.sh "
               f"--trigger {LIVE_TRIGGER} --alerts-topic login-alerts")  # fmt: skip
    figures = quality(f"live, {sizes.latency_rate:,} events/s", score_alerts(alerts, truth),
                      command, f"on the topic within the {seconds} s run")  # fmt: skip
    p50, p95 = quantile(steady, 50), quantile(steady, 95)
    start_p50, start_p95 = quantile(start, 50), quantile(start, 95)
    figures.append(Figure(
        f"Alert latency p95 (live, {LIVE_TRIGGER} trigger, past the run's first "
        f"{sizes.warmup_s} s)", p95, "s", "trigger interval",
        1.0, "<= 5 s", p95 <= 5, command,
        f"a burst's first event to its first alert on the topic (Kafka's timestamp); p50 "
        f"{p50:.2f} s over {len(steady)} bursts of {MIN_ATTEMPTS}+ attempts after the run's "
        f"first {sizes.warmup_s} s; in those first seconds p50 {start_p50:.2f} s and p95 "
        f"{start_p95:.2f} s over {len(start)} bursts ({crowded} in all left out: their "
        "address had another burst within a window before); the producer started once both "
        "queries had committed a first batch",
        higher_is_better=False,
    ))  # fmt: skip
    return figures
