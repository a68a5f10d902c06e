"""The job's checks and outputs that need no Spark: the checkpoint guard, the console table,
the CSV files and the tables' reader, with exact expected text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.errors import EXIT_CHECKPOINT, EXIT_FAILED, EXIT_KAFKA, JobError
from consumer.guards import (
    check_checkpoint,
    check_topic_id,
    checkpoint_identity,
    checkpoint_marker,
    explain_failure,
    explain_kafka_failure,
    failure_kind,
    lock_checkpoint,
    missing_topic,
    record_checkpoint_identity,
    retention_note,
)
from consumer.options import parse_options
from consumer.sinks import format_report, render_table, write_csv_atomically
from consumer.transform import Tables, tables_from_outcomes
from contract.tables import PERIODS, TableError, header, read_counts
from tests.support.jobs import read_rejected


def options_for(checkpoint, *argv: str):
    return parse_options(["--checkpoint-dir", str(checkpoint), *argv], {})


# --- First contact with Kafka ------------------------------------------------------------------
# The texts are the Java exceptions' as py4j printed them in real runs, shortened; one refusal
# per exit code also runs end to end (tests/integration/test_job_lifecycle.py).

KAFKA_TEXTS = {
    "dns": "An error occurred while calling z:org.apache.kafka.clients.admin.Admin.create.\n"
    ": org.apache.kafka.common.KafkaException: Failed to create new KafkaAdminClient\n"
    "Caused by: org.apache.kafka.common.config.ConfigException: No resolvable bootstrap urls "
    "given in bootstrap.servers",
    "timeout": "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
    "TimeoutException: Timed out waiting for a node assignment. Call: listTopics",
    "sasl": "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors."
    "SaslAuthenticationException: Authentication failed during authentication due to invalid "
    "credentials with SASL mechanism SCRAM-SHA-512",
}


def test_an_unresolvable_broker_name_is_said_as_dns():
    options = parse_options(["--bootstrap-servers", "no-such-host.invalid:9092"], {})
    error = explain_kafka_failure(KAFKA_TEXTS["dns"], options)
    assert error is not None and error.exit_code == EXIT_KAFKA
    assert str(error) == (
        "no address of Kafka at no-such-host.invalid:9092 resolves (DNS). Is the broker running "
        "(`make local-up`, or `make up` with Docker), and is --bootstrap-servers / "
        "KAFKA_BOOTSTRAP_SERVERS right?"
    )


def test_a_silent_broker_is_said_with_the_timeout():
    options = parse_options(["--bootstrap-servers", "h:1", "--connect-timeout", "7"], {})
    error = explain_kafka_failure(KAFKA_TEXTS["timeout"], options)
    assert error is not None and error.exit_code == EXIT_KAFKA
    assert str(error).startswith("Kafka at h:1 did not answer within 7s. Is the broker running")


def test_rejected_credentials_name_the_user_and_mechanism():
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "KAFKA_SASL_USERNAME": "job", "KAFKA_SASL_PASSWORD": "pw"}  # fmt: skip
    error = explain_kafka_failure(KAFKA_TEXTS["sasl"], parse_options([], env))
    assert error is not None and error.exit_code == EXIT_KAFKA
    assert "rejected the credentials of 'job' (SCRAM-SHA-512)" in str(error)


def test_an_unknown_failure_is_left_to_the_caller():
    assert explain_kafka_failure("java.lang.OutOfMemoryError", parse_options([], {})) is None


def test_a_missing_topic_names_the_topics_there_without_internal_ones():
    options = parse_options(["--topic", "logins", "--bootstrap-servers", "h:1"], {})
    error = missing_topic(options, ["b", "__consumer_offsets", "a"])
    assert error.exit_code == EXIT_KAFKA
    assert str(error) == (
        "topic 'logins' does not exist on h:1 (topics there: a, b). Create it by running the "
        "producer (it creates the topic), or pass the right --topic / LOGINS_TOPIC."
    )
    assert "(topics there: none)" in str(missing_topic(options, ["__consumer_offsets"]))


# --- The checkpoint guard ---------------------------------------------------------------------


def test_the_identity_names_topic_zone_deduplication_and_period(tmp_path):
    options = options_for(tmp_path, "--topic", "t", "--timezone", "Asia/Tokyo", "--period", "day")
    assert checkpoint_identity(options) == {
        "job": "monthly_logins",
        "topic": "t",
        "timezone": "Asia/Tokyo",
        "deduplication": True,
        "period": "day",
    }
    assert (
        checkpoint_identity(options_for(tmp_path, "--dedupe-window", "0"))["deduplication"] is False
    )
    assert checkpoint_marker(options) == tmp_path / "pipeline.json"


def test_a_new_checkpoint_is_accepted_and_marked_once(tmp_path):
    checkpoint = tmp_path / "new" / "checkpoint"
    options = options_for(checkpoint, "--timezone", "Europe/Berlin")
    check_checkpoint(options)  # does not exist yet
    record_checkpoint_identity(options)
    assert (checkpoint / "pipeline.json").read_text() == (
        "{\n"
        '  "job": "monthly_logins",\n'
        '  "topic": "logins",\n'
        '  "timezone": "Europe/Berlin",\n'
        '  "deduplication": true,\n'
        '  "period": "month"\n'
        "}\n"
    )
    check_checkpoint(options)  # the same query resumes
    # A second run does not rewrite the marker, whatever it was started with.
    record_checkpoint_identity(options_for(checkpoint, "--timezone", "UTC"))
    assert json.loads((checkpoint / "pipeline.json").read_text())["timezone"] == "Europe/Berlin"


def refusal(options) -> JobError:
    with pytest.raises(JobError) as refused:
        check_checkpoint(options)
    assert refused.value.exit_code == EXIT_CHECKPOINT == 4
    return refused.value


@pytest.mark.parametrize(
    ("argv", "detail"),
    [
        (["--timezone", "Europe/Berlin"], "timezone 'UTC' (now 'Europe/Berlin')"),
        (["--topic", "other"], "topic 'logins' (now 'other')"),
        (["--dedupe-window", "off"], "deduplication True (now False)"),
        (["--period", "week"], "period 'month' (now 'week')"),
        (
            ["--topic", "other", "--timezone", "Asia/Tokyo"],
            "topic 'logins' (now 'other'), timezone 'UTC' (now 'Asia/Tokyo')",
        ),
    ],
)
def test_a_checkpoint_of_another_query_is_refused(tmp_path, argv, detail):
    record_checkpoint_identity(options_for(tmp_path))
    error = refusal(options_for(tmp_path, *argv))
    assert str(error) == (
        f"the checkpoint {tmp_path} belongs to another query: it was started with {detail}. "
        "Use a new --checkpoint-dir, or delete this one to recount from the start of the topic."
    )


def test_a_marker_from_before_periods_existed_was_written_for_months(tmp_path):
    old = {"job": "monthly_logins", "topic": "logins", "timezone": "UTC", "deduplication": True}
    (tmp_path / "pipeline.json").write_text(json.dumps(old))
    check_checkpoint(options_for(tmp_path))
    error = refusal(options_for(tmp_path, "--period", "day"))
    assert "started with period 'month' (now 'day')." in str(error)


def test_an_unreadable_marker_is_refused(tmp_path):
    (tmp_path / "pipeline.json").write_text("{not json")
    error = refusal(options_for(tmp_path))
    assert str(error).startswith(f"cannot read {tmp_path / 'pipeline.json'}: ")


def test_a_folder_with_other_files_is_not_taken_over(tmp_path):
    (tmp_path / "offsets").mkdir()
    error = refusal(options_for(tmp_path))
    assert str(error) == (
        f"{tmp_path} is not empty and was not written by this job. Use a new --checkpoint-dir."
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    check_checkpoint(options_for(empty))


# --- Console table and CSV --------------------------------------------------------------------


def test_the_console_table_pads_text_left_and_numbers_right():
    table = render_table(("month", "logins"), [("2024-01", 5), ("total", 12_345), (None, None)])
    assert table == (
        "+-------+------+\n"
        "|month  |logins|\n"
        "+-------+------+\n"
        "|2024-01|     5|\n"
        "|total  | 12345|\n"
        "|       |      |\n"
        "+-------+------+"
    )


def test_a_batch_report_has_totals_and_the_rejections():
    counts = [("2024-01", 10, 7, 3), ("2024-02", 5, 5, 0)]
    rejected = [("empty_value", 2), ("wrong_type", 1)]
    assert format_report(3, "Europe/Berlin", counts, rejected) == (
        "Batch 3: logins per calendar month (Europe/Berlin)\n"
        "+-------+------+----------+------+\n"
        "|month  |logins|successful|failed|\n"
        "+-------+------+----------+------+\n"
        "|2024-01|    10|         7|     3|\n"
        "|2024-02|     5|         5|     0|\n"
        "|total  |    15|        12|     3|\n"
        "+-------+------+----------+------+\n"
        "Rejected records: 3 (empty_value 2, wrong_type 1)"
    )


def test_a_batch_report_of_weeks_and_of_nothing():
    weeks = format_report(0, "UTC", [("2026-W48", 1, 1, 0)], [], PERIODS["week"])
    assert weeks.splitlines()[0] == "Batch 0: logins per ISO week (UTC)"
    assert weeks.splitlines()[2] == "|week    |logins|successful|failed|"
    assert weeks.splitlines()[-1] == "Rejected records: 0"
    assert format_report(7, "UTC", [], [("oversized", 4)]) == (
        "Batch 7: logins per calendar month (UTC)\n"
        "(no valid events yet)\n"
        "Rejected records: 4 (oversized 4)"
    )


def test_the_csv_is_replaced_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "monthly_logins.csv"
    write_csv_atomically(target, ("month", "logins"), [("2024-01", 3)])
    write_csv_atomically(target, ("month", "logins"), [("2024-01", 4), ("2024-02", 1)])
    assert target.read_bytes() == b"month,logins\r\n2024-01,4\r\n2024-02,1\r\n"
    assert [p.name for p in target.parent.iterdir()] == ["monthly_logins.csv"]


def test_outcomes_become_sorted_tables_and_failed_is_logins_minus_successful():
    def outcome(bucket, reason, records, successful):
        return {
            "bucket": bucket,
            "rejected_reason": reason,
            "records": records,
            "successful": successful,
        }

    rows = [
        outcome("2024-03", None, 10, 7),
        outcome(None, "wrong_type", 2, 0),
        outcome("2023-12", None, 5, 5),
        outcome(None, "empty_value", 1, 0),
        outcome(None, "wrong_type", 3, 0),  # one reason in two rows: added up
    ]
    assert tables_from_outcomes(rows) == Tables(
        counts=[("2023-12", 5, 5, 0), ("2024-03", 10, 7, 3)],
        rejected=[("empty_value", 1), ("wrong_type", 5)],
    )


# --- The tables' reader (contract/tables.py) --------------------------------------------------


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        (
            "month",
            ["2024-01", "2024-09", "2024-10", "2024-12"],
            ["2024-00", "2024-13", "2024-1", "24-01", "2024/01"],
        ),
        (
            "week",
            ["2026-W01", "2026-W09", "2026-W10", "2026-W49", "2026-W53"],
            ["2026-W00", "2026-W54", "2026-48", "2026-W5"],
        ),
        (
            "day",
            ["2024-02-29", "2024-12-31", "2024-01-09", "2024-01-10", "2024-01-20"],
            ["2024-02-00", "2024-01-32", "2024-13-01", "2024-1-01"],
        ),
    ],
)
def test_what_a_bucket_of_each_period_looks_like(key, good, bad):
    period = PERIODS[key]
    assert [b for b in good if not period.matches(b)] == []
    assert [b for b in bad if period.matches(b)] == []


def test_each_period_has_its_column_title_and_file():
    assert [(p.key, p.title, p.csv_name) for p in PERIODS.values()] == [
        ("month", "calendar month", "monthly_logins.csv"),
        ("week", "ISO week", "weekly_logins.csv"),
        ("day", "day", "daily_logins.csv"),
    ]
    assert header(PERIODS["week"]) == ("week", "logins", "successful", "failed")


def test_the_reader_returns_the_period_and_the_counts(tmp_path):
    table = tmp_path / "daily_logins.csv"
    table.write_text("day,logins,successful,failed\n2024-02-29,3,2,1\n2024-03-01,1,1,0\n")
    assert read_counts(table) == (
        PERIODS["day"],
        {"2024-02-29": (3, 2, 1), "2024-03-01": (1, 1, 0)},
    )
    rejected = tmp_path / "rejected_reasons.csv"
    rejected.write_text("reason,records\noversized,2\nwrong_type,5\n")
    assert read_rejected(rejected) == {"oversized": 2, "wrong_type": 5}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "{path} does not exist"),
        ("", "{path} is empty"),
        (
            "date,count\n",
            "{path} has the header 'date,count', not month,logins,successful,failed or "
            "week,logins,successful,failed or day,logins,successful,failed",
        ),
        (
            "month,logins,successful,failed\n2024-01,x,1,1\n",
            "{path}, line 2: '2024-01,x,1,1' is not a row",
        ),
        (
            "month,logins,successful,failed\n2024-01,2,1,1\n2024-13,1,1,0\n",
            "{path}, line 3: '2024-13' is not a month",
        ),
    ],
)
def test_the_reader_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TableError) as refused:
        read_counts(path)
    assert str(refused.value) == message.format(path=path)


def test_headers_are_left_aligned_over_right_aligned_numbers():
    assert render_table(("month", "n"), [("2024-01", 12_345)]) == (
        "+-------+-----+\n|month  |n    |\n+-------+-----+\n|2024-01|12345|\n+-------+-----+"
    )


def test_the_csv_is_written_beside_its_target_and_renamed_over_it(tmp_path, monkeypatch):
    """Beside it, so the rename is atomic (same file system); hidden and ``.tmp`` while
    written, so a reader globbing ``*.csv`` never picks up half a table."""
    from consumer import sinks

    renames = []
    real_replace = sinks.os.replace

    def replace(source, target):
        renames.append((Path(source), Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(sinks.os, "replace", replace)
    target = tmp_path / "two" / "levels" / "monthly_logins.csv"  # missing parents are made
    write_csv_atomically(target, ("month", "logins"), [("2024-01", 3)])
    ((source, renamed),) = renames
    assert renamed == target
    assert source.parent == target.parent
    assert source.name.startswith(".monthly_logins.csv.") and source.name.endswith(".tmp")
    assert target.read_bytes() == b"month,logins\r\n2024-01,3\r\n"


# --- The topic's id, the lock, records gone to retention --------------------------------------


def test_the_topic_id_is_recorded_added_to_an_old_marker_and_a_recreated_topic_is_refused(
    tmp_path,
):
    options = options_for(tmp_path)
    record_checkpoint_identity(options, "id-1")
    assert json.loads((tmp_path / "pipeline.json").read_text())["topic_id"] == "id-1"
    check_topic_id(options, "id-1")
    record_checkpoint_identity(options, "id-2")  # an existing id is never overwritten
    with pytest.raises(JobError) as refused:
        check_topic_id(options, "id-2")
    assert refused.value.exit_code == EXIT_CHECKPOINT
    assert str(refused.value) == (
        f"the checkpoint {tmp_path} was started on another topic named 'logins': it was "
        "deleted and created again since (topic id id-1, now id-2), so the checkpoint's "
        "offsets point at other records. To count the topic as it is now, use a new "
        "--checkpoint-dir."
    )
    old = tmp_path / "old"
    old.mkdir()
    marker = {"job": "monthly_logins", "topic": "logins", "timezone": "UTC", "deduplication": True}
    (old / "pipeline.json").write_text(json.dumps(marker))
    check_topic_id(options_for(old), "id-9")  # written before ids: accepted ...
    record_checkpoint_identity(options_for(old), "id-9")  # ... and the id added
    assert json.loads((old / "pipeline.json").read_text()) == {**marker, "topic_id": "id-9"}
    check_checkpoint(options_for(old))
    assert sorted(p.name for p in old.iterdir()) == ["pipeline.json"]


def test_a_second_job_on_a_checkpoint_in_use_is_refused_until_the_first_ends(tmp_path):
    import subprocess
    import sys

    checkpoint = tmp_path / "checkpoint"
    options = options_for(checkpoint)
    hold = (
        "import sys, time\n"
        "from consumer.guards import lock_checkpoint\n"
        "from consumer.options import parse_options\n"
        "lock = lock_checkpoint(parse_options(['--checkpoint-dir', sys.argv[1]], {}))\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(checkpoint)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(JobError) as refused:
            lock_checkpoint(options)
        assert refused.value.exit_code == EXIT_CHECKPOINT
        message = str(refused.value)
        assert message.startswith(
            f"the checkpoint {checkpoint} is in use by another job (pid {holder.pid} on "
        )
        assert message.endswith("Stop that job first, or give this one its own --checkpoint-dir.")
    finally:
        holder.kill()  # SIGKILL: the lock goes with the process
        holder.wait()
    lock = lock_checkpoint(options)
    lock.close()
    # The lock file alone does not make a new folder look foreign.
    check_checkpoint(options)


def test_records_gone_to_retention_are_said_with_how_many():
    assert retention_note("t", {0: 0, 1: 0}, new_checkpoint=True) is None
    assert retention_note("t", {}, new_checkpoint=False) is None
    assert retention_note("t", {2: 734, 0: 1200, 1: 0}, new_checkpoint=True) == (
        "Note: the first 1,934 records of 't' are no longer in Kafka (retention, or deleted): "
        "partition 0 starts at offset 1,200, partition 2 starts at offset 734; this new "
        "checkpoint counts what is left, so its tables (and the database, whose rows it "
        "replaces) leave them out."
    )
    assert retention_note("t", {1: 5}, new_checkpoint=False).endswith(
        "partition 1 starts at offset 5; this checkpoint counted those it had read before "
        "they went."
    )


# --- A failed query in one line ---------------------------------------------------------------

# Texts Spark 4.0 really wrote (from runs on damaged and foreign checkpoints, and a broker
# gone for longer than --kafka-retry-timeout), shortened.
STREAM_FAILED = "[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: "
SPARK_TEXTS = {
    "missing_state": STREAM_FAILED + "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred "
    "in the user provided function in foreach batch sink.\n"
    "org.apache.spark.SparkException: [CANNOT_LOAD_STATE_STORE.CANNOT_READ_STREAMING_STATE_FILE] "
    "An error occurred during loading state. Error reading streaming state file of "
    "file:/cp/monthly/state/0/0/2.changelog does not exist. If the stream job is restarted "
    "with a new or updated state operation, please create a new checkpoint location or clear "
    "the existing checkpoint location. SQLSTATE: 58030",
    "corrupt_state": STREAM_FAILED + "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred.\n"
    "org.apache.spark.SparkException: [CANNOT_LOAD_STATE_STORE.UNCATEGORIZED] An error "
    "occurred during loading state.  SQLSTATE: 58030\n\tat org.apache.spark.Foo(Foo.scala:1)\n"
    "Caused by: java.io.IOException: Stream is corrupted\n"
    "Caused by: py4j.Py4JException: An exception was raised by the Python Proxy.",
    "corrupt_commit": STREAM_FAILED + "Failed to read log file file:/cp/monthly/commits/1. "
    "[MALFORMED_LOG_FILE] Log file was malformed: failed to read correct log version from "
    "garbage. SQLSTATE: KD002 SQLSTATE: XXKST",
    "offset_gap": STREAM_FAILED + "[CONCURRENT_STREAM_LOG_UPDATE] Concurrent update to the log. "
    "Multiple streaming jobs detected for 0.",
    "schema": STREAM_FAILED + "[STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE] Provided key schema does "
    "not match existing state key schema. Please check number and type of fields. However, "
    "please note that running the query with incompatible schema could cause "
    "non-deterministic behavior. SQLSTATE: XXKST",
    "operator": STREAM_FAILED + "[STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA] "
    "Streaming stateful operator name does not match with the operator in state metadata.",
    "future_spark": STREAM_FAILED + "[CANNOT_LOAD_STATE_STORE.INVALID_CHANGE_LOG_READER_VERSION] "
    "The change log reader version cannot be 9.",
    "kafka": STREAM_FAILED + "[FOREACH_BATCH_USER_FUNCTION_ERROR] An error occurred in the user "
    "provided function in foreach batch sink. Reason: An exception was raised by the Python "
    "Proxy. Return Message: Traceback (most recent call last):\n"
    "org.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage 6.0 "
    "failed 3 times: org.apache.kafka.common.errors.TimeoutException: Timeout of 6666ms "
    "expired before the position for partition live-1 could be determined\n",
    "kafka_driver": STREAM_FAILED + "org.apache.kafka.common.errors.TimeoutException: Timed out "
    "waiting for a node assignment. Call: listNodes SQLSTATE: XXKST\n",
    "data_loss": STREAM_FAILED + "Partition t-0's offset was changed from 30 to 2, some data "
    "may have been missed. Some data may have been lost because they are not available in "
    "Kafka any more; ... If you don't want your streaming query to fail on such cases, set "
    'the source option "failOnDataLoss" to "false".',
    "memory": STREAM_FAILED + "[CANNOT_LOAD_STATE_STORE.ROCKSDB_STORE_PROVIDER_OUT_OF_MEMORY] "
    "Could not load RocksDB state store.",
}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("missing_state", "damaged"),
        ("corrupt_state", "damaged"),
        ("corrupt_commit", "damaged"),
        ("offset_gap", "damaged"),
        ("schema", "incompatible"),
        ("operator", "incompatible"),
        ("future_spark", "incompatible"),
        ("kafka", "kafka"),
        ("kafka_driver", "kafka"),
        ("data_loss", "data_loss"),
        ("memory", "other"),
    ],
)
def test_each_failure_is_told_by_what_spark_wrote(name, kind):
    assert failure_kind(SPARK_TEXTS[name]) == kind


@pytest.mark.parametrize(
    ("name", "exit_code", "start"),
    [
        (
            "missing_state",
            EXIT_FAILED,
            "the checkpoint {cp} is damaged: /cp/monthly/state/0/0/2.changelog is missing. "
            "Keep the checkpoint (it holds what was counted so far) and restore that file",
        ),
        (
            "corrupt_state",
            EXIT_FAILED,
            "the checkpoint {cp} is damaged: {cp}/monthly/state cannot be read (Stream is "
            "corrupted). Keep the checkpoint",
        ),
        (
            "corrupt_commit",
            EXIT_FAILED,
            "the checkpoint {cp} is damaged: /cp/monthly/commits/1 cannot be read. Keep",
        ),
        (
            "offset_gap",
            EXIT_FAILED,
            "the checkpoint {cp} is damaged: {cp}/monthly/offsets has a gap in its offset log.",
        ),
        (
            "schema",
            EXIT_CHECKPOINT,
            "the checkpoint {cp} was written by another version of this query or of Spark "
            "([STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE] Provided key schema",
        ),
        (
            "kafka",
            EXIT_KAFKA,
            "Kafka at localhost:9092 stopped answering while the job ran and was still "
            "unreachable after --kafka-retry-timeout 60 s (Timeout of 6666ms expired before "
            "the position for partition live-1 could be determined). Nothing is lost: once "
            "Kafka is back, rerun the same command to resume. (Spark's details: "
            "{cp}/last-failure.txt)",
        ),
        (
            "kafka_driver",
            EXIT_KAFKA,
            "Kafka at localhost:9092 stopped answering while the job ran and was still "
            "unreachable after --kafka-retry-timeout 60 s (Timed out waiting for a node "
            "assignment. Call: listNodes). Nothing is lost",
        ),
        ("memory", EXIT_FAILED, "the streaming query failed: [CANNOT_LOAD_STATE_STORE.ROCKSDB"),
    ],
)
def test_a_failed_query_is_one_line_and_its_details_a_file(tmp_path, name, exit_code, start):
    error = explain_failure(Exception(SPARK_TEXTS[name]), options_for(tmp_path))
    message = str(error)
    assert error.exit_code == exit_code
    assert message.startswith(start.format(cp=tmp_path)), message
    assert "\n" not in message
    assert message.endswith(f"(Spark's details: {tmp_path / 'last-failure.txt'})")
    assert SPARK_TEXTS[name] in (tmp_path / "last-failure.txt").read_text()
    if error.exit_code != EXIT_CHECKPOINT:
        assert "new --checkpoint-dir" not in message
