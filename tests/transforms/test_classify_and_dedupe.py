"""The job's pure DataFrame functions on batch DataFrames: classification and month buckets."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pyspark.sql import Row

from consumer.transform import Tables, aggregate_outcomes, classify_records, tables_from_outcomes
from contract.events import REJECTION_REASONS

KAFKA_TIME = datetime(2024, 6, 1, tzinfo=timezone.utc)


def record(value: bytes | None, kafka_time: datetime = KAFKA_TIME, offset: int = 0) -> tuple:
    return (value, kafka_time, 0, offset)


def event(timestamp: str, success: bool = True, **extra: object) -> bytes:
    body = {
        "event_id": f"e-{timestamp}",
        "user_id": "ana",
        "timestamp": timestamp,
        "success": success,
        "schema_version": 1,
        **extra,
    }
    return json.dumps(body).encode()


def records_frame(spark, values):
    rows = [v if isinstance(v, tuple) else record(v, offset=i) for i, v in enumerate(values)]
    return spark.createDataFrame(
        rows, "value binary, kafka_timestamp timestamp, partition int, offset long"
    )


def monthly(spark, values, zone="UTC"):
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        return tables(classify_records(records_frame(spark, values))).counts
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


def tables(classified):
    return tables_from_outcomes(aggregate_outcomes(classified).collect())


def test_last_millisecond_of_a_month_and_first_instant_of_the_next(spark):
    values = [event("2024-01-31T23:59:59.999Z"), event("2024-02-01T00:00:00.000Z")]
    assert monthly(spark, values) == [("2024-01", 1, 1, 0), ("2024-02", 1, 1, 0)]


def test_leap_day_belongs_to_february(spark):
    values = [
        event("2024-02-29T12:00:00.000Z"),
        event("2024-02-29T23:59:59.999Z", False),
        event("2024-03-01T00:00:00.000Z"),
    ]
    assert monthly(spark, values) == [("2024-02", 2, 1, 1), ("2024-03", 1, 1, 0)]


def test_new_year(spark):
    values = [event("2023-12-31T23:59:59.999Z"), event("2024-01-01T00:00:00.000Z")]
    assert monthly(spark, values) == [("2023-12", 1, 1, 0), ("2024-01", 1, 1, 0)]


def test_offsets_are_converted_to_utc(spark):
    # 00:30 on 1 March in Berlin is still 29 February in UTC.
    assert monthly(spark, [event("2024-03-01T00:30:00+01:00")]) == [("2024-02", 1, 1, 0)]


def test_timezone_option_moves_events_across_month_boundaries(spark):
    values = [event("2024-03-01T03:00:00.000Z"), event("2024-01-31T23:30:00.000Z")]
    assert monthly(spark, values, zone="UTC") == [("2024-01", 1, 1, 0), ("2024-03", 1, 1, 0)]
    # New York is UTC-5 in winter: 03:00Z on 1 March is still 29 February there.
    assert monthly(spark, values, zone="America/New_York") == [
        ("2024-01", 1, 1, 0),
        ("2024-02", 1, 1, 0),
    ]
    # Tokyo is UTC+9: 23:30Z on 31 January is already February there.
    assert monthly(spark, values, zone="Asia/Tokyo") == [("2024-02", 1, 1, 0), ("2024-03", 1, 1, 0)]


def test_successful_and_failed_are_split(spark):
    values = [event("2024-05-05T05:05:05.005Z", s) for s in (True, True, False)]
    assert monthly(spark, values) == [("2024-05", 3, 2, 1)]


def test_legacy_events_without_schema_version_or_milliseconds_count(spark):
    legacy = json.dumps(
        {
            "event_id": "x",
            "user_id": "user42",
            "timestamp": "2022-03-04T05:06:07Z",
            "browser_info": "chrome",
            "success": True,
        }
    ).encode()
    assert monthly(spark, [legacy]) == [("2022-03", 1, 1, 0)]


BAD_RECORDS = {
    "empty_value": [b"", None],
    "invalid_utf8": [b'\xff\xfe{"event_id": "x"}'],
    "oversized": [event("2024-01-01T00:00:00Z", note="x" * 20_000)],
    "not_json_object": [
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"42",
        b'[{"event_id":"a","user_id":"b","timestamp":"2024-01-01T00:00:00Z","success":true}]',
    ],
    "wrong_type": [
        event("2024-01-01T00:00:00Z", success="yes"),
        event("2024-01-01T00:00:00Z", schema_version="1"),
        # A repeated key of the wrong type: from_json keeps the first value, and still says.
        event("2024-01-01T00:00:00Z")[:-1] + b', "success": "yes"}',
    ],
    "missing_event_id": [
        json.dumps({"user_id": "a", "timestamp": "2024-01-01T00:00:00Z", "success": True}).encode(),
        b"{}",
    ],
    "missing_user_id": [
        json.dumps({"event_id": "a", "timestamp": "2024-01-01T00:00:00Z", "success": True}).encode()
    ],
    "missing_timestamp": [json.dumps({"event_id": "a", "user_id": "b", "success": True}).encode()],
    "missing_success": [
        json.dumps({"event_id": "a", "user_id": "b", "timestamp": "2024-01-01T00:00:00Z"}).encode()
    ],
    "invalid_timestamp": [
        event("2024-02-30T00:00:00Z"),
        event("yesterday"),
        event("2024-01-01 00:00:00"),
        event("2024-01-01T00:00:00"),
        event("12345"),
    ],
    "future_timestamp": [event("2024-06-02T00:00:01Z")],  # a day and a second after Kafka's time
    "unsupported_schema_version": [event("2024-01-01T00:00:00Z", schema_version=2)],
}


def test_every_kind_of_bad_record_is_rejected_with_its_reason_and_never_counted(spark):
    values = [v for vs in BAD_RECORDS.values() for v in vs]
    good = [event("2024-05-31T23:59:59.999Z"), event("2024-06-02T00:00:00Z")]  # exactly 1 day ahead
    classified = classify_records(records_frame(spark, values + good))
    result = tables(classified)
    assert dict(result.rejected) == {reason: len(vs) for reason, vs in BAD_RECORDS.items()}
    # Every reason the contract names is produced here, and no other.
    assert sorted(BAD_RECORDS) == sorted(REJECTION_REASONS)
    assert result.counts == [("2024-05", 1, 1, 0), ("2024-06", 1, 1, 0)]


def test_classification_keeps_the_kafka_coordinates(spark):
    frame = records_frame(spark, [record(b"nope", offset=41)])
    row = classify_records(frame).collect()[0]
    assert (row.partition, row.offset, row.rejected_reason) == (0, 41, "not_json_object")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_generated_events_bucket_like_python(spark, zone):
    from producer.events import LoginEventGenerator
    from tests.support.truth import expected_monthly, to_epoch_ms

    start = to_epoch_ms(datetime(2023, 12, 25, tzinfo=timezone.utc))
    end = to_epoch_ms(datetime(2024, 3, 5, tzinfo=timezone.utc))
    records = list(LoginEventGenerator(seed=9, users=50).backfill(start, end, 3_000))
    kafka_time = datetime(2024, 6, 1, tzinfo=timezone.utc)
    rows = monthly(spark, [record(r.value, kafka_time, i) for i, r in enumerate(records)], zone)
    expected = expected_monthly((json.loads(r.value) for r in records), zone)
    assert {m: (a, b, c) for m, a, b, c in rows} == expected


def test_a_repeated_event_id_is_counted_once_and_rejected_records_are_never_merged(spark):
    from consumer.transform import drop_repeated_events

    first = event("2024-05-05T05:05:05.005Z")
    values = [first, first, event("2024-05-06T00:00:00.000Z"), b"junk", b"junk"]
    classified = drop_repeated_events(classify_records(records_frame(spark, values)), "1 hour")
    result = tables(classified)
    assert result.counts == [("2024-05", 2, 2, 0)]
    assert result.rejected == [("not_json_object", 2)]
    every_record = classify_records(records_frame(spark, values))
    assert drop_repeated_events(every_record, None) is every_record


def test_no_event_id_takes_the_key_of_a_rejected_record_or_of_another_id(spark):
    """A rejected record is keyed ``record:<partition>:<offset>``; an event id of that very
    form, or of the escaped form, is still its own event, and its repeat is still dropped."""
    from consumer.transform import drop_repeated_events

    looks_like_a_record = event("2024-05-01T00:00:00Z", event_id="record:0:1")
    values = [
        looks_like_a_record,  # offset 0
        b"junk",  # offset 1 of partition 0: the key record:0:1
        event("2024-05-02T00:00:00Z", event_id="event:record:0:1"),
        looks_like_a_record,
        event("2024-05-03T00:00:00Z", event_id="event:"),
        event("2024-05-04T00:00:00Z", event_id="event:event:"),
    ]
    result = tables(drop_repeated_events(classify_records(records_frame(spark, values)), "1 hour"))
    assert result.counts == [("2024-05", 4, 4, 0)]
    assert result.rejected == [("not_json_object", 1)]


def test_tables_are_sorted_and_failed_is_logins_minus_successful():
    outcome = Row("bucket", "rejected_reason", "records", "successful")
    rows = [
        outcome("2024-03", None, 10, 7),
        outcome(None, "wrong_type", 2, 0),
        outcome("2023-12", None, 5, 5),
        outcome(None, "empty_value", 1, 0),
    ]
    assert tables_from_outcomes(rows) == Tables(
        counts=[("2023-12", 5, 5, 0), ("2024-03", 10, 7, 3)],
        rejected=[("empty_value", 1), ("wrong_type", 2)],
    )
    assert tables_from_outcomes([]) == Tables(counts=[], rejected=[])


def sized_event(size: int) -> bytes:
    """A valid event of exactly ``size`` bytes, padded with a field the job ignores."""
    unpadded = len(event("2024-01-01T00:00:00Z", note=""))
    return event("2024-01-01T00:00:00Z", note="x" * (size - unpadded))


def test_the_edges_of_the_size_limit_the_ids_and_the_schema_version(spark):
    """Each check at its boundary: 16 KiB is allowed and one byte more is not; an empty id
    is no id; the one supported schema version is 1, so 0 is refused like 2."""
    at_limit, over_limit = sized_event(16 * 1024), sized_event(16 * 1024 + 1)
    assert (len(at_limit), len(over_limit)) == (16_384, 16_385)
    values = [
        at_limit,
        over_limit,
        event("2024-01-02T00:00:00Z", event_id=""),
        event("2024-01-03T00:00:00Z", user_id=""),
        event("2024-01-04T00:00:00Z", schema_version=0),
        event("2024-01-05T00:00:00Z", schema_version=-1),
    ]
    result = tables(classify_records(records_frame(spark, values)))
    assert dict(result.rejected) == {
        "oversized": 1,
        "missing_event_id": 1,
        "missing_user_id": 1,
        "unsupported_schema_version": 2,
    }
    assert result.counts == [("2024-01", 1, 1, 0)]
