"""Render docs/RELIABILITY.md from the figures the reliability tests record.

    make reliability      # runs the tests, then this script

Each test in tests/integration/test_reliability.py (and the SCRAM test) writes one JSON file
to output/reliability/; this script turns them into the table in docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "output" / "reliability"
DOC = ROOT / "docs" / "RELIABILITY.md"
ORDER = ["bad_input", "consumer_crash", "broker_restart", "producer_sigterm", "wrong_password"]

HEADER = """# Reliability: nothing lost, nothing double-counted

Every row is an integration test on the real local Kafka broker and real Spark (no mocks),
run by `make test`. Each compares the final result with the truth computed independently
from the records on the topic (Python's `zoneinfo`, not Spark), or with what Kafka
acknowledged. Regenerate this page with `make reliability`.

Last run: {when} on {machine}.

| Fault | How it was injected | Times | Events | Lost | Double-counted | Notes |
|---|---|---|---|---|---|---|
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
- **Bad input** never fails the job: each record gets a reason (`empty_value`,
  `invalid_utf8`, `oversized`, `not_json_object`, `wrong_type`, `missing_*`,
  `invalid_timestamp`, `future_timestamp`, `unsupported_schema_version`), is excluded from
  the counts, counted per reason, and written to the quarantine with its topic, partition,
  offset and raw value (base64).
- **Repeated `event_id`** (policy): counted once when the repeat is processed within
  `--dedupe-window` (default 24 hours) of the first. The window is measured in processing
  time, so a backfill of old events is never dropped as "late"; the batch time is part of
  the checkpoint, so a replay drops the same records. The per-batch line reports how many
  repeats were dropped. `--dedupe-window 0` counts every record. A repeat arriving later
  than the window is counted again: that bounds the state the job keeps.
- **The job refuses** instead of printing an empty table: unreachable broker or wrong
  credentials (exit 3), missing topic (exit 3), a checkpoint from another topic, time zone,
  deduplication setting or another query (exit 4).

## Security

- The local broker can run a SASL/SCRAM listener (`LocalKafka(sasl_port=..., scram_users=...)`);
  producer and job take `--security-protocol`, `--sasl-mechanism`, `--sasl-username`, the
  password from `KAFKA_SASL_PASSWORD` or `--sasl-password-file` (never a flag), and
  `--ssl-cafile` (PEM). The job passes them to Spark's Kafka source as `kafka.`-prefixed
  options. A wrong password is refused in seconds with exit status 3.
- Compose publishes every port on 127.0.0.1 only, commits no secrets, and runs no container
  as root except the one-shot step that makes the Spark volumes writable for Bitnami's
  non-root user; the producer image runs as uid 10001 with a read-only root filesystem.
- `make audit` runs pip-audit (strict) over the pinned environment. On the CI machine of
  this project it cannot complete: PyPI's per-release JSON API, where pip-audit reads
  advisories, answers 404 there (the package index itself works), and OSV is unreachable.
  So no audit result is claimed here; run `make audit` where PyPI is fully reachable.
"""


def main() -> int:
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    missing = [name for name in ORDER if name not in rows]
    if missing:
        print(
            f"error: no results for {', '.join(missing)} in {RESULTS}; run `make reliability`",
            file=sys.stderr,
        )
        return 1
    when = datetime.fromtimestamp(
        max(p.stat().st_mtime for p in RESULTS.glob("*.json")), timezone.utc
    ).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    lines = [HEADER.format(when=when, machine=machine)]
    for name in ORDER:
        r = rows[name]
        lines.append(
            f"| {r['fault']} | {r['injection']} | {r['times']} | {r['events']:,} | "
            f"{r['lost']} | {r['double_counted']} | {r['note']} |\n"
        )
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("".join(lines) + FOOTER)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
