"""Render docs/RELIABILITY.md from the figures the reliability tests record.

    make reliability      # runs the tests, then this script

Each test in tests/integration/test_reliability.py and tests/integration/test_security.py
writes one JSON file to output/reliability/ with the figures it observed; this script turns
them into the table in docs/RELIABILITY.md. Each row shows when its file was written, so a
row left over from an earlier run (after rerunning only some of the tests) says so.
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
    # tests/integration/test_security.py
    "scram",
    "sasl_plain",
    "tls",
    "tls_untrusted",
    "tls_expired",
]

HEADER = """# Reliability: nothing lost, nothing double-counted

Every row is an integration test on the real local Kafka broker and real Spark (no mocks),
run by `make test`. Each compares the final result with the truth computed independently
from the records on the topic (Python's `zoneinfo`, not Spark), or with what Kafka
acknowledged; every figure below is what the test observed in its run. The security rows
run the producer and the job through each listener: with the right settings the job's table
must equal the truth read back through the PLAINTEXT listener; with a wrong password, an
unknown CA or an expired certificate both must stop with exit status 3 and a one-line
message naming the cause, leaving the events already on the topic as they were.
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
  local disk, with the checkpoint holding its changelogs; see the README's "State").
- **The job refuses** instead of printing an empty table: unreachable broker or wrong
  credentials (exit 3), missing topic (exit 3), a checkpoint from another topic, time zone,
  deduplication setting or another query (exit 4).

## Security

- The local broker can run a SASL_PLAINTEXT listener with SCRAM-SHA-256/512 and PLAIN users
  (`LocalKafka(sasl_port=..., scram_users=..., plain_users=...)`) and a TLS listener
  (`LocalKafka(ssl_port=..., ssl_certfile=..., ssl_keyfile=...)`, served from a PEM
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
- PLAIN sends the password as it is: outside a test, use it only over TLS (`SASL_SSL`).
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


def main() -> int:
    files = {p.stem: p for p in sorted(RESULTS.glob("*.json"))}
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
    DOC.write_text("".join(lines) + FOOTER.replace("{reasons}", reasons))
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
