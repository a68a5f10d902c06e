"""Periods: Spark's bucket of an instant equals the calendar's (Python, not Spark).

ISO weeks are the tricky ones: they start on Monday and belong to the year of their
Thursday, so the first days of January can be in the last week of the year before, and
the last days of December in week 1 of the next; some years have a week 53.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from consumer.transform import bucket_of
from contract.tables import PERIODS, TableError, read_counts
from tests.support.truth import period_of

INSTANTS = [
    datetime(2020, 12, 31, 12, tzinfo=timezone.utc),  # Thursday of 2020-W53
    datetime(2021, 1, 3, 23, 59, 59, 999000, tzinfo=timezone.utc),  # Sunday: still 2020-W53
    datetime(2021, 1, 4, tzinfo=timezone.utc),  # Monday: 2021-W01
    datetime(2024, 12, 29, 23, 0, tzinfo=timezone.utc),  # Sunday 2024-W52 (Monday in Tokyo)
    datetime(2024, 12, 30, tzinfo=timezone.utc),  # Monday: 2025-W01
    datetime(2026, 12, 31, tzinfo=timezone.utc),  # Thursday: 2026-W53
    datetime(2027, 1, 1, tzinfo=timezone.utc),  # Friday: still 2026-W53
    datetime(2024, 2, 29, 15, 30, tzinfo=timezone.utc),  # leap day
]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
@pytest.mark.parametrize("period", list(PERIODS))
def test_spark_buckets_like_the_calendar(spark, period, zone):
    frame = spark.createDataFrame([(i,) for i in INSTANTS], "event_time timestamp")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        got = [r[0] for r in frame.select(bucket_of(frame["event_time"], period)).collect()]
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert got == [period_of(i.astimezone(ZoneInfo(zone)), period) for i in INSTANTS]
    assert all(PERIODS[period].matches(bucket) for bucket in got)


def test_the_iso_week_examples_by_hand():
    """The calendar facts themselves, so a wrong truth cannot agree with a wrong job."""
    utc = timezone.utc
    assert period_of(datetime(2021, 1, 3, tzinfo=utc), "week") == "2020-W53"
    assert period_of(datetime(2024, 12, 30, tzinfo=utc), "week") == "2025-W01"
    assert period_of(datetime(2027, 1, 1, tzinfo=utc), "week") == "2026-W53"
    monday = datetime(2026, 11, 23, tzinfo=utc)
    assert {period_of(monday + timedelta(days=d), "week") for d in range(7)} == {"2026-W48"}


def test_an_unknown_period_is_refused(spark):
    frame = spark.createDataFrame([(INSTANTS[0],)], "event_time timestamp")
    with pytest.raises(ValueError, match="unknown period 'quarter'"):
        bucket_of(frame["event_time"], "quarter")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("month,logins\n", "has the header 'month,logins'"),
        ("week,logins,successful,failed\n2026-11,1,1,0\n", "'2026-11' is not a week"),
        ("day,logins,successful,failed\n2026-11-26,1,x,0\n", "line 2"),
        ("month,logins,successful,failed\n2026-13,1,1,0\n", "'2026-13' is not a month"),
    ],
)
def test_the_table_reader_says_what_is_wrong(tmp_path, text, message):
    table = tmp_path / "t.csv"
    table.write_text(text)
    with pytest.raises(TableError, match=message):
        read_counts(table)


def test_the_table_reader_knows_the_period_by_the_header(tmp_path):
    table = tmp_path / "weekly_logins.csv"
    table.write_text("week,logins,successful,failed\n2026-W01,5,4,1\n2026-W53,2,2,0\n")
    period, counts = read_counts(table)
    assert period.key == "week" and period.csv_name == "weekly_logins.csv"
    assert counts == {"2026-W01": (5, 4, 1), "2026-W53": (2, 2, 0)}
    with pytest.raises(TableError, match="does not exist"):
        read_counts(tmp_path / "missing.csv")
