"""Render docs/RELIABILITY.md from the figures the reliability tests record.

    make reliability      # runs the tests, then this script

Each test in tests/integration/test_reliability.py, test_live_faults.py,
test_checkpoint_guards.py and test_security.py writes one JSON file per row (some write
several) to output/reliability/ with the figures it observed; this script turns them into
the table in docs/RELIABILITY.md. Each row shows when its file was written, so a
row left over from an earlier run (after rerunning only some of the tests) says so.

The cluster drills (tests/integration/test_docker_cluster.py, `make test-cluster`) write
``cluster_*.json`` there too, rendered as a section of their own. They need a Docker engine,
so `make reliability` does not run them: a drill without a file keeps its row from the
page as it is (with its date), and `--cluster` rewrites that section alone.

    python scripts/reliability_report.py            # the whole page (make reliability)
    python scripts/reliability_report.py --cluster  # the cluster drills' section only
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file: the project's packages are beside it
from contract.events import REJECTION_REASONS  # noqa: E402

RESULTS = ROOT / "output" / "reliability"
DOC = ROOT / "docs" / "RELIABILITY.md"
ORDER = [
    # tests/integration/test_reliability.py
    "bad_input",
    "consumer_crash",
    "broker_restart",
    "producer_sigterm",
    # tests/integration/test_live_faults.py
    "live_broker_paused",
    "live_broker_killed",
    "live_broker_gone",
    "live_postgres_stopped",
    "live_sqlite_locked",
    "live_sqlite_read_only",
    "live_sqlite_locked_too_long",
    # tests/integration/test_checkpoint_guards.py
    "records_gone_to_retention",
    "topic_recreated",
    "checkpoint_damaged",
    "checkpoint_in_use",
    "clock_behind_checkpoint",
    "clock_stepped_back",
    # tests/integration/test_security.py
    "scram",
    "sasl_plain",
    "tls",
    "sasl_ssl",
    "tls_untrusted",
    "tls_expired",
]

# The cluster drills, in the order the test runs them, and each row's first cell: fixed
# here, so a row can be kept from the page when its drill was not rerun.
DRILLS = {
    "cluster_leader_kill": "Leader of a partition killed (kill -9), then restarted",
    "cluster_rolling_restart": "Rolling restart of the three Kafka nodes",
    "cluster_worker_kill": "A Spark worker killed (kill -9), then restarted",
    "cluster_postgres_restart": "PostgreSQL stopped and started again",
}
CLUSTER_START = (
    "<!-- cluster-drills: written by scripts/reliability_report.py from "
    "tests/integration/test_docker_cluster.py; do not edit by hand -->"
)
CLUSTER_END = "<!-- /cluster-drills -->"
CLUSTER_HEADER = """## Cluster drills (`make test-cluster`)

Three Kafka nodes (replication factor 3, `min.insync.replicas=2`, unclean leader election
off) and two Spark workers on a real Docker engine (`make up TOPOLOGY=cluster`; the local
stand-ins of the {family} images), with one `make submit ARGS="--trigger 2s"` running
through all four drills. During each, a producer on this machine sends live events
(`acks=all`, idempotent) through the three nodes' published ports until the pipeline has
recovered, then stops and reports what Kafka acknowledged. The test then waits until the
job has counted everything on the topic and reads the new records back with a plain
consumer. *Counted* is what the job's table in PostgreSQL grew by; *lost* is acknowledged
minus counted; *double-counted* is counted minus the distinct event ids the drill added to
the topic; *not acknowledged* is counted minus acknowledged. Every row is what the test
observed, recorded before its assertions, whatever the outcome.

"""
CLUSTER_COLUMNS = (
    "Drill", "How it was injected", "Sent", "Acknowledged", "On the topic", "Counted",
    "Lost", "Double-counted", "Not acknowledged", "Recovery", "Job", "Checks",
    "Measured (UTC)",
)  # fmt: skip
CLUSTER_HEADER += "| " + " | ".join(CLUSTER_COLUMNS) + " |\n"
CLUSTER_HEADER += "|" + "---|" * len(CLUSTER_COLUMNS) + "\n"

HEADER = """# Reliability: nothing lost, nothing double-counted

Every row is an integration test on the real local Kafka broker and real Spark (no mocks),
run by `make test`. Each compares the final result with the truth computed independently
from the records on the topic (Python's `zoneinfo`, not Spark), or with what Kafka
acknowledged; every figure below is what the test observed in its run, recorded before the
test's assertions, whatever the outcome. The "while the job runs" rows inject the fault into
a live job (2 s trigger) while the producer sends, and state the bound: how long the
outage is ridden out before the job stops with one line. The checkpoint and clock rows
damage, reuse or rewrite a real checkpoint. The security rows run the producer and the job
through each listener: with the right settings the job's table must equal the truth read
back through the PLAINTEXT listener; with a wrong password, an unknown CA or an expired
certificate both must stop with exit status 3 and a one-line message naming the cause,
leaving the events already on the topic as they were.
Regenerate this page with `make reliability`.

Measured {when} on {machine}.

| Fault | How it was injected | Times | Events | Lost | Double-counted | Notes | Measured (UTC) |
|---|---|---|---|---|---|---|---|
"""

FOOTER = """
## How the pipeline makes this true

- **Producer**: `acks=all` with idempotence (kafka-python 3), so retries after a broker
  restart neither lose nor duplicate a record; every send is counted from the broker's
  acknowledgement, and a run that could not deliver everything exits with status 1. On
  SIGINT/SIGTERM it stops generating, flushes and reports.
- **Spark job**: one stateful aggregation in complete output mode, with offsets and state in
  the checkpoint. After a crash Spark replays the unfinished batch from the same offsets and
  the same state version; the batch's output is the whole table, written atomically
  (temporary file + rename), so the replay rewrites the same file. When a batch rejected
  records, exactly its offset range (from Spark's offset log) is read again and its rejected
  records are written to one folder per batch id, overwritten on replay.
- **Bad input** never fails the job: each record gets a reason ({reasons}), is excluded
  from the counts, counted per reason, and written to the quarantine with its topic,
  partition, offset and raw value (base64).
- **Repeated `event_id`** (policy): counted once when the repeat is processed within
  `--dedupe-window` (default 24 hours) of the first. The window is measured in processing
  time, so a backfill of old events is never dropped as "late"; the batch time is part of
  the checkpoint, so a replay drops the same records. The per-batch line reports how many
  repeats were dropped. `--dedupe-window 0` counts every record. A repeat arriving later
  than the window is counted again: that bounds the state the job keeps (in RocksDB, on
  local disk, with the checkpoint holding its changelogs; see "State" in docs/USAGE.md).
- **Faults while the job runs** are ridden out for a bound, then end the job with one
  `error:` line (Spark's whole text goes to `CHECKPOINT/last-failure.txt`) and exit 3; a
  rerun resumes exactly. Kafka (`--kafka-retry-timeout`, 60 s): no loop of ours, only the
  clients' own waits, each a third of the bound: the driver asks for offsets 3 times
  (`fetchOffset.numRetries`, each waiting `default.api.timeout.ms`), a task waits
  `kafkaConsumer.pollTimeoutMs` for records and is attempted 3 times (`local[*,3]`; a
  cluster has 4), so an outage shorter than the bound is survived and a longer one ends
  the job within about twice the bound. The database (`--db-retry-timeout`, 60 s): the
  batch's transaction, keyed by batch id, is retried with pauses doubling from 0.5 s to
  5 s while the error is one waiting may cure (a lock, a read-only or full disk, a server
  stopped or restarting); others stop the job at once. Within a batch the CSV tables are
  written to temporary files, then the database commits, then the files are renamed: when
  the job ends, the CSV and the database hold the same batch.
- **The job refuses** instead of printing an empty table or counting wrong: unreachable
  broker or wrong credentials (exit 3), missing topic (exit 3); with exit 4 a checkpoint
  from another topic (also one deleted and recreated: Kafka's topic id is in the
  checkpoint's `pipeline.json`), time zone, period, deduplication setting, query or Spark
  version, a checkpoint another running job holds (an `flock` that a `kill -9` releases),
  and a clock behind the checkpoint. A damaged checkpoint file (a missing state file, an
  unreadable offset log) is named with exit 1 and the advice to restore it, never to
  discard the checkpoint. Every start says how many records retention has removed.
- **The clock**: deduplication keys on processing time, and Spark drops a batch's rows as
  late when the batch's time is at or before the watermark of the batch before it (the
  newest batch time minus `--dedupe-window`). The job checks this from the offset log
  before Spark starts (a clock behind the last watermark: exit 4) and in every batch before
  it reads anything (a clock stepped back while running: exit 4, nothing written); the
  next start with a right clock plans the refused batch again.

## Security

- The tests' broker (`SecureKafka` in `tests/support/secure_kafka.py`: the local broker
  with more listeners) runs a SASL_PLAINTEXT listener with SCRAM-SHA-256/512 and PLAIN
  users (`SecureKafka(sasl_port=..., scram_users=..., plain_users=...)`) and a TLS listener
  (`SecureKafka(ssl_port=..., ssl_certfile=..., ssl_keyfile=...)`, served from a PEM
  keystore). Producer and job take `--security-protocol`, `--sasl-mechanism`,
  `--sasl-username`, the password from `KAFKA_SASL_PASSWORD` or `--sasl-password-file`
  (never a flag), and `--ssl-cafile` (PEM). The job passes them to Spark's Kafka source as
  `kafka.`-prefixed options.
- Producer and job tell refusals apart, in seconds and with exit status 3: a wrong password
  ("refused to authenticate user ..."), a broker certificate not signed by the
  `--ssl-cafile` CA ("presented a TLS certificate that is not trusted ... Pass the CA
  certificate ... with --ssl-cafile") and an expired one ("... that has expired ... must
  renew it"), checked end to end by the rows above; a certificate issued for another host
  name gets its own message too (checked on the clients' error texts only). Not yet told
  apart: a client whose `--security-protocol` does not match the listener (TLS against a
  plain listener, or the reverse) is reported as a broker that did not answer, except
  that the producer names a failed TLS handshake.
- PLAIN sends the password as it is: outside a test, use it only over TLS (`SASL_SSL`, a
  row above).
- No password on a command line: producer and job read it from a file or the environment,
  the test broker's SCRAM users are created through a Java argument file readable by its
  owner only; the `sasl_ssl` row reads `/proc/<pid>/cmdline` of every process of the run
  and the Spark UI's environment and SQL pages. A local job binds Spark (UI, driver,
  block manager) to 127.0.0.1 (`SPARK_LOCAL_IP`), checked with `ss -ltnp` in that row.
- Compose publishes every port on 127.0.0.1 only, commits no secrets, and runs no container
  as root except the one-shot step that makes the Spark volumes writable for Bitnami's
  non-root user; the producer image runs as uid 10001 with a read-only root filesystem.
- `make audit` runs pip-audit (strict) over the pinned environment. On the CI machine of
  this project it cannot complete: PyPI's per-release JSON API, where pip-audit reads
  advisories, answers 404 there (the package index itself works), and OSV is unreachable.
  So no audit result is claimed here; run `make audit` where PyPI is fully reachable.
"""


def measured(path: Path) -> datetime:
    """When the test wrote ``path``: its figures are from that run."""
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def drill_row(path: Path, title: str) -> str:
    """One cluster drill's row, from the figures its test recorded."""
    r = json.loads(path.read_text())
    if r.get("job_stopped"):
        job = f"stopped: `{r.get('job_error', '')}`; rerun of the same command exact"
    elif r["job_running"]:
        job = "kept running"
    else:
        job = "**not running**"
    same = {True: "equal", False: "**differ**"}
    checks = (
        f"the table in PostgreSQL and the counts from the topic {same[r['database_equals_topic']]} "
        f"({r['database_total']:,} logins in all), and so the job's last printed table "
        f"{'does' if r['printed_equals_topic'] else '**does not**'}; longest without a "
        f"batch {r['longest_without_a_batch_s']} s; drill {r['duration_s']} s"
    )
    if r.get("problems"):
        checks += "; **" + "; ".join(r["problems"]) + "**"
    return (
        f"| {title} | {r['injection']} | {r['sent']:,} | {r['acknowledged']:,} | "
        f"{r['on_topic']:,} | {r['counted']:,} | {r['lost']:,} | {r['double_counted']:,} | "
        f"{r['counted_not_acknowledged']:,} | {r.get('recovery', 'not reached')} | {job} | "
        f"{checks} | {measured(path):%Y-%m-%d %H:%M} |\n"
    )


def cluster_section(page: str) -> str:
    """The cluster drills' section: rows from their files; a drill without one keeps its row
    from ``page`` (an earlier run's, with its date)."""
    old_rows = {}
    if CLUSTER_START in page and CLUSTER_END in page:
        old = page.split(CLUSTER_START, 1)[1].split(CLUSTER_END, 1)[0]
        for line in old.splitlines():
            for name, title in DRILLS.items():
                if line.startswith(f"| {title} |"):
                    old_rows[name] = line + "\n"
    rows, families = [], set()
    for name, title in DRILLS.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            rows.append(drill_row(path, title))
            families.add(json.loads(path.read_text()).get("family", "bitnami"))
        elif name in old_rows:
            print(f"note: kept the row of {name} from {DOC.relative_to(ROOT)}", file=sys.stderr)
            rows.append(old_rows[name])
        else:
            print(f"note: no results for {name}; run `make test-cluster`", file=sys.stderr)
    names = {"bitnami": "Bitnami", "apache": "official Apache"}
    family = " and ".join(names.get(f, f) for f in sorted(families)) or "Bitnami"
    return (
        CLUSTER_START
        + "\n"
        + CLUSTER_HEADER.replace("{family}", family)
        + "".join(rows)
        + CLUSTER_END
    )


def replace_cluster_section(page: str) -> str:
    section = cluster_section(page)
    if CLUSTER_START in page and CLUSTER_END in page:
        before, rest = page.split(CLUSTER_START, 1)
        return before + section + rest.split(CLUSTER_END, 1)[1]
    marker = "\n## How the pipeline makes this true"
    before, after = page.split(marker, 1)
    return before.rstrip("\n") + "\n\n" + section + "\n" + marker + after


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--cluster"]:
        DOC.write_text(replace_cluster_section(DOC.read_text()))
        print(f"wrote the cluster drills' section of {DOC.relative_to(ROOT)}")
        return 0
    if argv:
        print("usage: reliability_report.py [--cluster]", file=sys.stderr)
        return 2
    files = {p.stem: p for p in sorted(RESULTS.glob("*.json")) if p.stem not in DRILLS}
    missing = [name for name in ORDER if name not in files]
    if missing:
        print(
            f"error: no results for {', '.join(missing)} in {RESULTS}; run `make reliability`",
            file=sys.stderr,
        )
        return 1
    for name in sorted(files.keys() - set(ORDER)):
        # A row a test no longer writes (renamed or removed) must not reappear in the page.
        print(f"note: ignoring {files[name].relative_to(ROOT)}: no such row", file=sys.stderr)
    times = {name: measured(files[name]) for name in ORDER}
    first, last = min(times.values()), max(times.values())
    when = last.strftime("%Y-%m-%d %H:%M UTC")
    if last - first > timedelta(hours=1):
        # Only some tests were rerun; say so rather than date old rows with the new run.
        when = f"between {first:%Y-%m-%d %H:%M} and {last:%Y-%m-%d %H:%M} UTC (see each row)"
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    lines = [HEADER.format(when=when, machine=machine)]
    for name in ORDER:
        r = json.loads(files[name].read_text())
        lines.append(
            f"| {r['fault']} | {r['injection']} | {r['times']} | {r['events']:,} | "
            f"{r['lost']:,} | {r['double_counted']:,} | {r['note']} | "
            f"{times[name]:%Y-%m-%d %H:%M} |\n"
        )
    DOC.parent.mkdir(exist_ok=True)
    reasons = ", ".join(f"`{reason}`" for reason in REJECTION_REASONS)
    page = DOC.read_text() if DOC.exists() else ""
    section = cluster_section(page)
    DOC.write_text("".join(lines) + "\n" + section + "\n" + FOOTER.replace("{reasons}", reasons))
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
