"""Checkpoint guards that tell the truth, on real Kafka and Spark: a recreated topic, records
gone to retention, damaged and foreign checkpoint files, a second job on a checkpoint in use,
and a clock behind the checkpoint (rewritten offset log, and a real clock step under
libfaketime)."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.conditions import wait_for
from tests.support.events import encoded, login
from tests.support.jobs import JobRun, RunningJob, run_job, start_producer
from tests.support.kafka import create_topic, free_port, produce_raw, read_topic
from tests.support.reliability import record_reliability
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JANUARY = datetime(2024, 1, 10, 12, tzinfo=timezone.utc)


def events(first: int, count: int, moment: datetime = JANUARY) -> list[dict]:
    return [
        login(f"g{n}", moment + timedelta(days=n % 60), f"u{n % 7}", n % 4 != 0)
        for n in range(first, first + count)
    ]


def send(broker, topic: str, batch: list[dict], partition: int | None = None) -> list[dict]:
    produce_raw(broker.bootstrap_servers, topic, encoded(batch), partition)
    return batch


def topic_truth(broker, topic: str, expected: int) -> dict:
    """The months of every record now on the topic, read back with kafka-python."""
    records = read_topic(broker.bootstrap_servers, topic, expected + 1, timeout_s=5)
    assert len(records) == expected, (len(records), expected)
    return expected_monthly(json.loads(r.value) for r in records)


def errors_of(run: JobRun) -> list[str]:
    return [line for line in run.output.splitlines() if line.startswith("error:")]


def kafka_topic_id(broker, topic: str) -> str:
    """The topic's id as Kafka's Java tools print it (URL-safe base64), via kafka-python."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    raw = uuid.UUID(str(described["topic_id"])).bytes  # kafka-python: the UUID's usual form
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def admin_call(broker, action) -> object:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        return action(admin)
    finally:
        admin.close()


def delete_records_before(broker, topic: str, partition: int, offset: int) -> None:
    """What retention does to old records: the partition now starts at ``offset``."""
    from kafka import TopicPartition

    admin_call(broker, lambda a: a.delete_records({TopicPartition(topic, partition): offset}))


def end_offsets(broker, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def logins(table: dict) -> int:
    return sum(row[0] for row in table.values())


def test_records_gone_to_retention_are_said_and_a_recreated_topic_is_refused(
    kafka_broker, topic, tmp_path
):
    sent = send(kafka_broker, topic, events(0, 30))
    # Each run's table is read as it left it: the runs share one output folder.
    first = run_job(kafka_broker, topic, tmp_path).monthly
    marker = json.loads((tmp_path / "checkpoint" / "pipeline.json").read_text())
    first_id = kafka_topic_id(kafka_broker, topic)

    # 1. Retention removes records this checkpoint has counted: said, and nothing changes.
    gone = end_offsets(kafka_broker, topic)[0]
    delete_records_before(kafka_broker, topic, 0, gone)
    sent += send(kafka_broker, topic, events(30, 12))
    again = run_job(kafka_broker, topic, tmp_path)
    again_table = again.monthly
    # 2. A new checkpoint on that topic says what it can no longer count.
    fresh = run_job(kafka_broker, topic, tmp_path / "fresh")
    left = topic_truth(kafka_broker, topic, len(sent) - gone)
    # 3. Records gone before this checkpoint read them: refused, not skipped (exit 1).
    more = send(kafka_broker, topic, events(42, 9), partition=0)  # the partition cut below
    delete_records_before(kafka_broker, topic, 0, end_offsets(kafka_broker, topic)[0])
    unread = run_job(kafka_broker, topic, tmp_path, check=False)
    unread_table = unread.monthly
    counted = expected_monthly(sent)
    sent += more
    # 4. The topic deleted and created again, with more records than before: refused (exit 4).
    admin_call(kafka_broker, lambda a: a.delete_topics([topic]))
    wait_for(
        lambda: topic not in admin_call(kafka_broker, lambda a: a.list_topics()),
        30,
        "the topic's deletion",
    )
    create_topic(kafka_broker.bootstrap_servers, topic)
    recreated = send(kafka_broker, topic, events(100, 80))
    new_id = kafka_topic_id(kafka_broker, topic)
    started = time.monotonic()
    refused = run_job(kafka_broker, topic, tmp_path, check=False)
    refused_s = time.monotonic() - started

    said = f"Note: the first {gone:,} records of {topic!r} are no longer in Kafka"
    record_reliability(
        "records_gone_to_retention",
        fault="Records deleted from the topic (as retention does) after and before the job "
        "counted them",
        injection=f"deleteRecords below offset {gone} of partition 0 once counted, a new "
        "checkpoint on the topic, then records deleted before the checkpoint read them",
        times=2,
        events=len(sent) - len(more),
        lost=max(logins(counted) - logins(again_table), 0)
        + max(logins(left) - logins(fresh.monthly), 0),
        double_counted=max(logins(again_table) - logins(counted), 0)
        + max(logins(fresh.monthly) - logins(left), 0),
        note=f"the resumed and the new checkpoint's starts said how many records are gone: "
        f"{'yes' if said in again.output else 'NO'}, {'yes' if said in fresh.output else 'NO'}; "
        f"the new checkpoint counted {logins(fresh.monthly)} of the "
        f"{logins(left)} left; unread records gone: exit {unread.result.returncode}, not "
        "skipped",
    )
    record_reliability(
        "topic_recreated",
        fault="Topic deleted and recreated (with more records than before) under a checkpoint",
        injection=f"{logins(counted)} events counted, the topic deleted and created again with "
        f"{len(recreated)} new events, the job rerun on the old checkpoint",
        times=1,
        events=logins(counted),
        lost=max(logins(counted) - logins(refused.monthly), 0),
        double_counted=max(logins(refused.monthly) - logins(counted), 0),
        note=f"exit {refused.result.returncode} in {refused_s:.0f} s naming the topic ids "
        f"({marker.get('topic_id')} then {new_id}); the table "
        f"{'kept' if refused.monthly == counted else 'CHANGED'}",
    )
    assert first == expected_monthly(sent[:30])
    assert marker["topic_id"] == first_id
    assert (
        f"{said} (retention, or deleted): partition 0 starts at offset {gone:,}; this "
        "checkpoint counted those it had read before they went." in again.output
    )
    assert again_table == counted
    assert f"partition 0 starts at offset {gone:,}; this new checkpoint counts" in fresh.output
    assert fresh.monthly == left
    assert unread.result.returncode == 1, unread.output[-3000:]
    (error,) = errors_of(unread)
    assert f"are gone from {topic!r} (retention or a deletion removed them first)" in error
    assert unread_table == counted  # the table as it was
    assert refused.result.returncode == 4, refused.output[-3000:]
    (error,) = errors_of(refused)
    assert f"was started on another topic named {topic!r}" in error
    assert f"(topic id {first_id}, now {new_id})" in error
    assert refused.monthly == counted


def test_damaged_checkpoint_files_are_named_and_the_checkpoint_kept(kafka_broker, topic, tmp_path):
    sent = send(kafka_broker, topic, events(0, 40))
    base = tmp_path / "base"
    # Batches 0 and 1, in RocksDB with its changelog (a drain this small would keep its ids
    # in memory): the state file deleted below is one of its changelogs.
    run_job(
        kafka_broker, topic, base, "--max-offsets-per-trigger", "20", "--state-store", "rocksdb"
    )
    sent += send(kafka_broker, topic, events(40, 10))  # so that the next run has a batch
    query = Path("checkpoint") / "monthly"

    def variant(name: str) -> Path:
        work = tmp_path / name
        shutil.copytree(base, work)
        return work

    # A state file missing: Spark's own message would say to clear the checkpoint.
    work = variant("state")
    changelog = work / query / "state" / "0" / "0" / "2.changelog"
    assert changelog.exists()
    changelog.unlink()
    (changelog.parent / ".2.changelog.crc").unlink()
    missing = run_job(kafka_broker, topic, work, check=False)
    # An offset-log entry that cannot be read: named before Spark starts.
    work = variant("offsets")
    (work / query / "offsets" / "1").write_text('v1\n{"batchWatermarkMs":0,garbage')
    started = time.monotonic()
    corrupt = run_job(kafka_broker, topic, work, check=False)
    corrupt_s = time.monotonic() - started
    # The same checkpoint undamaged counts exactly: it was worth keeping.
    kept = run_job(kafka_broker, topic, variant("intact"))
    truth = expected_monthly(sent)
    record_reliability(
        "checkpoint_damaged",
        fault="Checkpoint files damaged: a state file deleted, an offset-log entry corrupted",
        injection="on copies of a 2-batch checkpoint: state/0/0/2.changelog deleted; "
        "offsets/1 overwritten with broken JSON; then the intact copy rerun",
        times=2,
        events=len(sent),
        lost=max(logins(truth) - logins(kept.monthly), 0),
        double_counted=max(logins(kept.monthly) - logins(truth), 0),
        note=f"exit {missing.result.returncode} and {corrupt.result.returncode} (the second in "
        f"{corrupt_s:.0f} s, before Spark), each one line naming the file and saying to keep "
        "the checkpoint; the intact copy counted every event",
    )
    for run, exit_code, file in (
        (missing, 1, f"{changelog} is missing"),
        (corrupt, 1, f"{work / query / 'offsets' / '1'} cannot be read"),
    ):
        assert run.result.returncode == exit_code, run.output[-3000:]
        (error,) = errors_of(run)
        assert error.startswith(f"error: the checkpoint {run.output_dir.parent / 'checkpoint'} ")
        assert f"is damaged: {file}" in error, error
        assert "Keep the checkpoint" in error and "new --checkpoint-dir" not in error
        assert "Traceback" not in run.output and "\tat " not in run.output
        assert run.monthly == expected_monthly(sent[:40])  # the table of the last good batch
    assert corrupt_s < 30  # refused before Spark's session, not after a batch
    assert kept.monthly == expected_monthly(sent)


def test_a_real_incompatibility_is_exit_4(kafka_broker, topic, tmp_path):
    """A checkpoint whose state Spark cannot use with this query: the guard's marker is made
    to lie (deduplication off -> on), so Spark meets the mismatch itself."""
    send(kafka_broker, topic, events(0, 10))
    run_job(kafka_broker, topic, tmp_path, "--dedupe-window", "0")
    marker = tmp_path / "checkpoint" / "pipeline.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "deduplication": True}))
    send(kafka_broker, topic, events(10, 5))
    run = run_job(kafka_broker, topic, tmp_path, check=False)
    assert run.result.returncode == 4, run.output[-3000:]
    (error,) = errors_of(run)
    assert "was written by another version of this query or of Spark" in error
    assert "Use a new --checkpoint-dir" in error
    assert "Traceback" not in run.output and "\tat " not in run.output


def test_a_second_job_on_a_checkpoint_in_use_is_refused_and_kill_9_leaves_no_lock(
    kafka_broker, topic, tmp_path
):
    sent = send(kafka_broker, topic, events(0, 20))
    first = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "2s")
    try:
        wait_for(lambda: "batch 0:" in first.stdout or not first.alive(), 240, "the first batch")
        started = time.monotonic()
        second = run_job(kafka_broker, topic, tmp_path, check=False)
        second_s = time.monotonic() - started
        assert first.alive()
    finally:
        first.kill_hard()  # kill -9 of the whole job: its lock goes with it
    sent += send(kafka_broker, topic, events(20, 5))
    after = run_job(kafka_broker, topic, tmp_path, check=False)
    counted = after.monthly if after.result.returncode == 0 else {}
    record_reliability(
        "checkpoint_in_use",
        fault="A second job started on a checkpoint in use; the first then killed with kill -9",
        injection="job 2 on job 1's --checkpoint-dir while job 1 runs (2 s trigger); kill -9 "
        "of job 1; job 3 on the same checkpoint",
        times=1,
        events=len(sent),
        lost=max(len(sent) - logins(counted), 0),
        double_counted=max(logins(counted) - len(sent), 0),
        note=f"job 2 refused with exit {second.result.returncode} in {second_s:.0f} s; no "
        f"stale lock after kill -9: job 3 exit {after.result.returncode}, counted "
        f"{logins(counted)} of {len(sent)}",
    )
    assert second.result.returncode == 4, second.output[-3000:]
    (error,) = errors_of(second)
    assert f"the checkpoint {tmp_path / 'checkpoint'} is in use by another job (pid " in error
    assert second_s < 60
    assert after.result.returncode == 0, after.output[-3000:]
    assert counted == expected_monthly(sent)


def rewrite_entry(path: Path, **metadata: int) -> dict:
    """Change fields of an offset-log entry's metadata (and drop its checksum file)."""
    lines = path.read_text().splitlines()
    old = json.loads(lines[1])
    lines[1] = json.dumps({**old, **metadata})
    path.write_text("\n".join(lines))
    (path.parent / f".{path.name}.crc").unlink(missing_ok=True)
    return old


def test_a_clock_behind_the_checkpoint_is_refused_and_a_batch_planned_with_it_is_replanned(
    kafka_broker, topic, tmp_path
):
    hour = 3_600_000
    sent = send(kafka_broker, topic, events(0, 30))
    run_job(kafka_broker, topic, tmp_path)
    offsets = tmp_path / "checkpoint" / "monthly" / "offsets"
    now = int(time.time() * 1000)
    # The last batch ran while the clock was 26 h ahead: its watermark is 2 h from now.
    rewrite_entry(offsets / "0", batchWatermarkMs=now + 2 * hour, batchTimestampMs=now + 26 * hour)
    sent += send(kafka_broker, topic, events(30, 20))
    started = time.monotonic()
    behind = run_job(kafka_broker, topic, tmp_path, check=False)
    behind_s = time.monotonic() - started
    behind_table = behind.monthly  # the runs share one output folder
    # The clock right again, and a batch 1 that was planned while it was 2 h behind and
    # never ran (as the job leaves it after refusing it): the start plans it again.
    rewrite_entry(offsets / "0", batchWatermarkMs=now - hour, batchTimestampMs=now)
    stale = (offsets / "0").read_text().splitlines()
    stale[1] = json.dumps({**json.loads(stale[1]), "batchWatermarkMs": now - hour,
                           "batchTimestampMs": now - 2 * hour})  # fmt: skip
    (offsets / "1").write_text("\n".join(stale))
    replanned = run_job(kafka_broker, topic, tmp_path, check=False)
    counted = replanned.monthly if replanned.result.returncode == 0 else {}
    truth = topic_truth(kafka_broker, topic, len(sent))
    record_reliability(
        "clock_behind_checkpoint",
        fault="Clock behind the checkpoint (a resume on a host whose clock is behind, a step "
        "back of more than --dedupe-window)",
        injection="the last offset-log entry rewritten as if the clock had been 26 h ahead; "
        "then an uncommitted entry planned 2 h behind the previous watermark",
        times=2,
        events=len(sent),
        lost=sum(v[0] for v in truth.values()) - sum(v[0] for v in counted.values()),
        double_counted=0,
        note=f"refused with exit {behind.result.returncode} in {behind_s:.0f} s naming the "
        f"clock, nothing written; the stale batch planned again (exit "
        f"{replanned.result.returncode}) and {logins(counted)} of {len(sent)} events counted",
    )
    assert behind.result.returncode == 4, behind.output[-3000:]
    (error,) = errors_of(behind)
    assert "error: this machine's clock is behind the checkpoint" in error
    assert "Set the clock right (NTP)" in error
    assert behind_table == expected_monthly(sent[:30])
    assert behind_s < 30  # before Spark's session
    assert replanned.result.returncode == 0, replanned.output[-3000:]
    assert "Batch 1 had been planned with a clock that was behind" in replanned.output
    assert counted == truth == expected_monthly(sent)


def test_a_batch_judged_against_a_watermark_after_its_own_time_is_refused_while_running(
    kafka_broker, topic, tmp_path
):
    """The check inside every batch, on a live job: the offset log is rewritten as if the
    batches so far had been planned by a clock an hour (and the dedupe window) ahead, so the
    next batch's own time is behind the watermark it is judged against, which is what a
    clock stepped back while the job runs does. (libfaketime, which could step the JVM's
    clock for real, breaks Spark 4's start-up here: the block manager fails to register.)"""
    summary = tmp_path / "producer.json"
    producer = start_producer(
        kafka_broker.bootstrap_servers, topic, "--rate", "100", "--duration", "900s",
        "--summary-json", str(summary),
    )  # fmt: skip
    job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "2s")
    offsets = tmp_path / "checkpoint" / "monthly" / "offsets"
    originals: dict[Path, str] = {}
    try:
        wait_for(lambda: "batch 1:" in job.stdout or not job.alive(), 240, "two batches")
        ahead = int(time.time() * 1000) + 3_600_000
        for entry in sorted(p for p in offsets.iterdir() if p.name.isdigit()):
            originals[entry] = entry.read_text()
            staged = entry.with_name(f".{entry.name}.rewrite")
            staged.write_text(originals[entry])
            rewrite_entry(staged, batchWatermarkMs=ahead)
            staged.replace(entry)
            (offsets / f".{entry.name}.crc").unlink(missing_ok=True)
        rewritten = time.monotonic()
        wait_for(lambda: not job.alive(), 120, "the job to refuse the batch")
        refused_s = time.monotonic() - rewritten
    finally:
        if job.alive():
            job.kill_hard()
        producer.send_signal(signal.SIGTERM)
        producer.communicate(timeout=120)
    output = job.stdout + job.stderr_path.read_text()
    table_at_exit = job.monthly() or {}
    for entry, text in originals.items():  # the clock (and the log) right again
        entry.write_text(text)
    acknowledged = json.loads(summary.read_text())["acknowledged"]
    rerun = run_job(kafka_broker, topic, tmp_path, check=False)
    counted = rerun.monthly if rerun.result.returncode == 0 else {}
    truth = topic_truth(kafka_broker, topic, acknowledged)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    refused_batch = next(
        (int(e.split("batch ")[1].split()[0]) for e in errors if "stepped back" in e), None
    )
    record_reliability(
        "clock_stepped_back",
        fault="Driver clock stepped back by more than --dedupe-window while the job runs",
        injection="live job (2 s trigger, producer at 100 events/s); the offset log rewritten "
        "under it as if its batches had been planned by a clock 1 h + the window ahead; then "
        "the log restored and the job rerun",
        times=1,
        events=acknowledged,
        lost=max(logins(truth) - logins(counted), 0),
        double_counted=max(logins(counted) - logins(truth), 0),
        note=f"batch {refused_batch} refused {refused_s:.0f} s after the rewrite with exit "
        f"{job.process.returncode}, {len(errors)} error line, before reading (table at exit: "
        f"{logins(table_at_exit):,} logins); the rerun (exit {rerun.result.returncode}) "
        f"counted {logins(counted):,} of {acknowledged:,}",
    )
    assert job.process.returncode == 4, output[-3000:]
    assert len(errors) == 1 and "the clock of this machine stepped back" in errors[0], errors
    assert "Traceback" not in output and "\tat " not in output
    assert rerun.result.returncode == 0, rerun.output[-3000:]
    assert counted == truth


def test_the_spark_ui_of_a_local_run_listens_on_loopback_only(kafka_broker, topic, tmp_path):
    """What ``ss -ltnp`` shows for every process of a local job: nothing beyond 127.0.0.1."""
    from tests.support.faults import listening_sockets, process_group, spark_ui_port

    send(kafka_broker, topic, events(0, 5))
    asked = free_port()
    env = {"SPARK_SUBMIT_EXTRA": f"--conf spark.ui.port={asked}"}
    job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "2s", env=env)
    try:
        wait_for(lambda: "batch 0:" in job.stdout or not job.alive(), 240, "the first batch")
        sockets = listening_sockets(set(process_group(job.process.pid)))
        ui = spark_ui_port(sockets, asked)
        answers = ui is not None and _answers_as_spark_ui(ui)
    finally:
        job.stop()
    assert answers, sockets  # the UI is on (bound to loopback), so someone can look
    assert sockets and all(address == "127.0.0.1" for address, _, _ in sockets), sockets


def _answers_as_spark_ui(port: int) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/applications", timeout=60) as r:
        return r.status == 200 and "monthly_logins" in r.read().decode()
